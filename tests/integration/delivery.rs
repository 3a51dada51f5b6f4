//! Delivery as one path (issue #8): every answer a server can give, kill -9
//! at random moments, a late SIGTERM, a full outbox, odd files where state
//! should be, and destinations spelled two ways. Real ect-run processes,
//! real recording servers on 127.0.0.1, and `sh` children that print a
//! toolbox traceback (cheap enough to run many).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::Env;
use crate::support::server::{Behavior, TestServer, closed_port_url};

/// A failing job whose traceback runs through toolbox code; `tag` makes
/// its message (and so its report) recognisable.
fn job(env: &Env, tag: &str) -> Vec<String> {
    let tb = env.path().join(format!("tb-{tag}.txt"));
    std::fs::write(
        &tb,
        format!(
            "Traceback (most recent call last):\n  File \"/opt/env/site-packages/esa_climate_toolbox/util/reporting.py\", line 89, in raise_error\n    raise Exception(\"{tag}\")\nException: {tag}\n"
        ),
    )
    .unwrap();
    vec![
        "sh".into(),
        "-c".into(),
        format!("cat '{}' >&2; exit 1", tb.display()),
    ]
}

fn run_job(env: &Env, tag: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    env.cmd()
        .args(extra)
        .arg("--")
        .args(job(env, tag))
        .assert()
        .code(1)
}

fn kept(env: &Env) -> Vec<PathBuf> {
    let Ok(d) = std::fs::read_dir(env.outbox()) else {
        return Vec::new();
    };
    d.filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".json") && n.starts_with(|c: char| c.is_ascii_digit())
        })
        .collect()
}

/// The messages of the reports a server received.
fn received_tags(server: &TestServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|r| r.json()["exception-instance"].as_str().unwrap().to_string())
        .collect()
}

fn kept_text(env: &Env) -> String {
    kept(env)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

#[test]
fn redirects_are_never_followed() {
    for code in [301, 302, 303, 307, 308] {
        let elsewhere = TestServer::start();
        let server = TestServer::with_behavior(Behavior::Redirect(code, elsewhere.url()));
        let env = Env::new();
        env.consent_to(&server.url());
        env.allow_repeats();
        let out = run_job(&env, "moved", &[]).get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(server.requests().len(), 1, "{code}");
        assert_eq!(
            elsewhere.requests().len(),
            0,
            "{code}: nothing goes to Location"
        );
        assert_eq!(kept(&env).len(), 1, "{code}: the report is kept");
        assert_eq!(err.matches("redirects to").count(), 1, "{code}: {err}");
        assert!(err.contains(&format!("--consent --server-url {}", elsewhere.url())));
    }
}

#[test]
fn each_status_is_kept_or_set_aside() {
    for (code, kept_for_later) in [
        (408, true),
        (429, true),
        (500, true),
        (503, true),
        (400, false),
        (401, false),
        (403, false),
        (404, false),
        (413, false),
    ] {
        let server = TestServer::with_behavior(Behavior::Status(code));
        let env = Env::new();
        env.consent_to(&server.url());
        env.allow_repeats();
        let out = run_job(&env, "status", &[]).get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let rejected = env.outbox().join("rejected");
        let n_rejected = std::fs::read_dir(&rejected).map_or(0, |d| d.count());
        if kept_for_later {
            assert_eq!((kept(&env).len(), n_rejected), (1, 0), "{code}: {err}");
        } else {
            assert_eq!((kept(&env).len(), n_rejected), (0, 1), "{code}: {err}");
            assert!(err.contains("will not take it"), "{code}: {err}");
            env.cmd()
                .arg("--status")
                .assert()
                .success()
                .stdout(predicate::str::contains(format!("HTTP {code}")));
        }
    }
}

#[test]
fn a_poison_report_does_not_block_the_others() {
    let server = TestServer::with_behavior(Behavior::Status(503));
    let env = Env::new();
    env.consent_to(&server.url());
    env.allow_repeats();
    for tag in ["POISON", "good-1", "good-2", "good-3"] {
        run_job(&env, tag, &[]);
    }
    assert_eq!(kept(&env).len(), 4);
    server.set_behavior(Behavior::RejectIfBodyContains("POISON".into(), 400));
    env.cmd()
        .arg("--send-pending")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "3 report(s) delivered, 0 still waiting",
        ));
    let got = received_tags(&server);
    for tag in ["good-1", "good-2", "good-3"] {
        assert!(got.iter().any(|t| t.contains(tag)), "{tag}: {got:?}");
    }
    assert!(kept(&env).is_empty());
    // Set aside, not retried: a further flush sends nothing.
    let before = server.requests().len();
    env.cmd().arg("--send-pending").assert().success();
    assert_eq!(server.requests().len(), before);
    env.cmd()
        .arg("--status")
        .assert()
        .success()
        .stdout(predicate::str::contains("Rejected:     1 report(s)"))
        .stdout(predicate::str::contains("HTTP 400 Bad Request"));
}

#[test]
fn flushing_earlier_reports_stops_at_the_timeout() {
    let server = TestServer::with_behavior(Behavior::Status(503));
    let env = Env::new();
    env.consent_to(&server.url());
    env.allow_repeats();
    for n in 0..16 {
        run_job(&env, &format!("kept-{n}"), &[]);
    }
    assert_eq!(kept(&env).len(), 16);
    // Each answer takes 0.5 s: 8 s for all, unbounded.
    server.set_behavior(Behavior::Delay(Duration::from_millis(500)));
    let start = Instant::now();
    env.cmd()
        .args(["--timeout", "0.8", "--", "true"])
        .assert()
        .success();
    let took = start.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    let left = kept(&env).len();
    assert!((12..16).contains(&left), "{left} left");
}

#[test]
fn kill_9_at_any_moment_loses_no_report() {
    let server = TestServer::with_behavior(Behavior::Delay(Duration::from_millis(100)));
    let env = Env::new();
    env.consent_to(&server.url());
    env.allow_repeats();
    let outbox = env.outbox();
    let n = 12;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        let requests_before = server.requests().len();
        // Files with something in them: a report killed between its
        // file's creation and its one write cannot be kept (the window is
        // a few microseconds); from the write on it must be.
        let names = |dir: &Path| -> Vec<std::ffi::OsString> {
            std::fs::read_dir(dir).map_or_else(
                |_| Vec::new(),
                |d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
                        .map(|e| e.file_name())
                        .collect()
                },
            )
        };
        let files_before = names(&outbox);
        let mut child = env
            .std_cmd()
            .arg("--")
            .args(job(&env, &format!("run-{i}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the report is being written or sent, then kill at a
        // random moment within the write and the delivery.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let writing = names(&outbox).iter().any(|n| !files_before.contains(n));
            if writing || server.requests().len() > requests_before {
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 130_000));
        let _ = child.kill();
        let _ = child.wait();
    }
    server.set_behavior(Behavior::Ok);
    env.cmd().arg("--send-pending").assert().success();
    let got = received_tags(&server);
    for i in 0..n {
        let tag = format!("'run-{i}'");
        assert!(
            got.iter().any(|t| t.contains(&tag)),
            "run-{i} neither delivered nor kept: {got:?}"
        );
    }
    assert!(kept(&env).is_empty());
}

#[test]
fn a_late_sigterm_lets_the_report_be_kept_and_exits_with_the_childs_status() {
    // Waiting for this server would take 25 s; not waiting, a fraction of one.
    let server = TestServer::with_behavior(Behavior::Delay(Duration::from_secs(25)));
    let env = Env::new();
    env.consent_to(&server.url());
    env.allow_repeats();
    let mut cmd = job(&env, "late-term");
    // After the job has exited, something sends ect-run a SIGTERM.
    cmd[2] = format!(
        "(sleep 0.05; kill -TERM $PPID) >/dev/null 2>&1 & {}",
        cmd[2]
    );
    let start = Instant::now();
    let status = env
        .std_cmd()
        .arg("--")
        .args(&cmd)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "did not wait for the server"
    );
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(kept_text(&env).contains("late-term"));
}

#[test]
fn a_full_outbox_drops_the_oldest_and_says_so() {
    let env = Env::new();
    env.consent_to(&closed_port_url());
    env.allow_repeats();
    // 140 undeliverable reports: one from a real run, copied (a run costs
    // tens of milliseconds in a debug build), each older than the last.
    run_job(&env, "full-first", &[]);
    let first = kept(&env).pop().unwrap();
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    let (_, rest) = name.split_once('-').unwrap();
    let then = std::time::SystemTime::now() - Duration::from_secs(3600);
    for i in 1..140u64 {
        let copy = env.outbox().join(format!("{i:024}-{rest}"));
        std::fs::copy(&first, &copy).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_modified(then + Duration::from_secs(i))
            .unwrap();
    }
    let mut said = 0;
    for i in 0..10 {
        let out = run_job(&env, &format!("full-{i}"), &[])
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        said += err.matches("dropped the oldest").count();
        assert!(
            kept_text(&env).contains(&format!("full-{i}")),
            "never itself"
        );
    }
    assert_eq!(kept(&env).len(), 100);
    assert_eq!(said, 50, "one line per dropped report");
    env.cmd()
        .arg("--status")
        .assert()
        .success()
        .stdout(predicate::str::contains("50 report(s) dropped"));
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn fifos_and_huge_files_never_hang_a_run() {
    let server = TestServer::start();
    let env = Env::new();
    env.consent_to(&server.url());
    env.allow_repeats();
    std::fs::create_dir_all(env.outbox()).unwrap();
    mkfifo(&env.outbox().join("1-fifo.json"));
    let big = std::fs::File::create(env.outbox().join("2-big.json")).unwrap();
    big.set_len(3 << 20).unwrap();
    run_job(&env, "odd-outbox", &[])
        .stderr(predicate::str::contains("1-fifo.json alone"))
        .stderr(predicate::str::contains("2-big.json alone"));
    assert_eq!(server.requests().len(), 1);

    // The config file itself: a FIFO, then a huge file.
    let config = env.config_path();
    std::fs::remove_file(&config).unwrap();
    mkfifo(&config);
    for _ in 0..2 {
        env.cmd()
            .arg("--status")
            .assert()
            .success()
            .stdout(predicate::str::contains("UNREADABLE"));
        run_job(&env, "odd-config", &[])
            .stderr(predicate::str::contains("cannot read config file"));
        std::fs::remove_file(&config).unwrap();
        std::fs::File::create(&config)
            .unwrap()
            .set_len(2 << 20)
            .unwrap();
    }
    assert_eq!(
        server.requests().len(),
        1,
        "nothing sent without a readable consent"
    );
}

#[test]
fn two_spellings_of_one_url_share_a_pause() {
    let server = TestServer::with_behavior(Behavior::RetryAfter(503, "600".into()));
    let env = Env::new();
    let url = server.url(); // http://127.0.0.1:PORT/
    env.consent_to(&url);
    env.allow_repeats();
    run_job(&env, "first", &[]);
    assert_eq!(server.requests().len(), 1);
    let other = url.trim_end_matches('/').replace("http://", "HTTP://");
    env.cmd()
        .env("ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL", &other)
        .arg("--status")
        .assert()
        .success()
        .stdout(predicate::str::contains("paused until"))
        .stdout(predicate::str::contains("Reporting:    on"));
    env.cmd()
        .env("ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL", &other)
        .arg("--")
        .args(job(&env, "second"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing is tried until"));
    assert_eq!(
        server.requests().len(),
        1,
        "the pause holds for both spellings"
    );
}

#[test]
fn a_bad_url_in_the_environment_never_stops_the_command() {
    let server = TestServer::start();
    let env = Env::new();
    env.consent_to(&server.url());
    env.allow_repeats();
    let marker = env.path().join("ran");
    env.cmd()
        .env("ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL", "localhost:9898")
        .args(["--", "sh", "-c"])
        .arg(format!("touch '{}'; exit 7", marker.display()))
        .assert()
        .code(7)
        .stderr(predicate::str::contains(
            "ect-run: invalid server URL in the environment variable ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL",
        ))
        .stderr(predicate::str::contains("reporting to it is off for this run"));
    assert!(marker.exists(), "the command ran");
    env.cmd()
        .env(
            "ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL",
            "localhost:9898",
        )
        .arg("--")
        .args(job(&env, "typo"))
        .assert()
        .code(1);
    assert_eq!(server.requests().len(), 0);
    env.cmd()
        .env(
            "ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL",
            "localhost:9898",
        )
        .arg("--status")
        .assert()
        .success()
        .stdout(predicate::str::contains("INVALID"))
        .stdout(predicate::str::contains(
            "ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL",
        ));
    env.cmd()
        .env(
            "ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL",
            "localhost:9898",
        )
        .arg("--revoke-consent")
        .assert()
        .success();
    // A bad URL in the config file: the same, naming the key.
    std::fs::write(
        env.config_path(),
        r#"{"server_url": "localhost:1", "consent": {"given": true, "server_url": "localhost:1"}}"#,
    )
    .unwrap();
    env.cmd()
        .arg("--")
        .args(job(&env, "typo-config"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("key server_url"));
    // On the command line it is a usage error.
    env.cmd()
        .args(["--server-url", "localhost:1", "--", "true"])
        .assert()
        .code(2);
}

#[test]
fn reports_kept_by_an_older_ect_run_are_scrubbed_again() {
    let server = TestServer::start();
    let env = Env::new();
    env.consent_to(&server.url());
    std::fs::create_dir_all(env.outbox()).unwrap();
    // The form an older ect-run kept, with what today's rules mask.
    let old = serde_json::json!({
        "url": server.url(),
        "report": {
            "toolbox-version": "1.7.2",
            "exception-class": "ValueError",
            "exception-instance": "ValueError('password=hunter2 rejected by alice@example.org')",
            "traceback": ["  File \"/x/esa_climate_toolbox/a.py\", line 1, in f\n    g(token='ghp_0123456789abcdefghijABCDEFGHIJ012345')\n"],
            "failure-kind": "python-traceback",
            "exit-status": 1,
            "signal": null,
            "command": "python3",
            "platform": "linux-x86_64",
            "ect-run-version": "0.1.0",
            "timestamp": "2026-11-01T00:00:00Z",
            "matched-frame": 0,
            "fingerprint": "00112233445566778899aabbccddeeff"
        }
    });
    std::fs::write(
        env.outbox().join("000000000000000000000001-1.json"),
        serde_json::to_vec(&old).unwrap(),
    )
    .unwrap();
    env.cmd().arg("--send-pending").assert().success();
    let got = server.requests()[0].json();
    let text = got.to_string();
    for secret in ["hunter2", "alice@example.org", "ghp_0123456789abcdef"] {
        assert!(!text.contains(secret), "{secret} sent: {text}");
    }
    assert_eq!(got["fingerprint"], "00112233445566778899aabbccddeeff");
}

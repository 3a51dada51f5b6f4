//! Consent, the report and its delivery (issue #5), with a real recording
//! HTTP server on 127.0.0.1 and real Python children failing inside a fake
//! toolbox package.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

use crate::support::server::{Behavior, TestServer, closed_port_url};
use crate::support::{Env, TEST_MESSAGE, install_fake_toolbox, script};

const TOOLBOX_FAILURE: &str = "from esa_climate_toolbox.util.reporting import FailureReporter\n\
password = 'hunter2'\n\
FailureReporter.raise_error()\n";

/// A toolbox failure run: `ect-run [extra] -- python3 script`.
struct Run {
    env: Env,
    site: PathBuf,
    script: PathBuf,
}

impl Run {
    fn new(code: &str) -> Run {
        let env = Env::new();
        let site = install_fake_toolbox(&env);
        let script = script(&env, "job.py", code);
        Run { env, site, script }
    }

    fn cmd(&self, extra: &[&str]) -> assert_cmd::Command {
        let mut c = self.env.cmd();
        c.env("PYTHONPATH", &self.site)
            .args(extra)
            .arg("--")
            .arg("python3")
            .arg(&self.script);
        c
    }
}

/// A server started with `behavior`, and a run of `code` whose user has
/// consented to reporting to it.
fn consented(code: &str, behavior: Behavior) -> (TestServer, Run) {
    let server = TestServer::with_behavior(behavior);
    let run = Run::new(code);
    run.env.consent_to(&server.url());
    // These tests send one failure many times on purpose.
    run.env.allow_repeats();
    (server, run)
}

fn outbox_len(env: &Env) -> usize {
    std::fs::read_dir(env.outbox())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.ends_with(".json") && name.starts_with(|c: char| c.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn consented_toolbox_failure_arrives_in_toolbox_form() {
    let (server, run) = consented(TOOLBOX_FAILURE, Behavior::Ok);
    run.cmd(&[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "Exception: {TEST_MESSAGE}"
        )))
        .stderr(predicate::str::contains(format!(
            "ect-run: reporting the failure to {}",
            server.url()
        )))
        .stderr(predicate::str::ends_with("ect-run: report delivered.\n"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    let r = reqs[0].json();
    assert_eq!(r["toolbox-version"], "1.7.2");
    assert_eq!(r["exception-class"], "Exception");
    assert_eq!(
        r["exception-instance"],
        format!("Exception('{TEST_MESSAGE}')")
    );
    let tb: Vec<&str> = r["traceback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(tb.len(), 2);
    // format_tb form, with the home directory scrubbed to ~.
    assert_eq!(
        tb[0],
        "  File \"~/work/job.py\", line 3, in <module>\n    FailureReporter.raise_error()\n"
    );
    assert!(tb[1].starts_with("  File \"~/env/site-packages/esa_climate_toolbox/util/reporting.py\", line 4, in raise_error\n"), "{}", tb[1]);
    assert_eq!(r["failure-kind"], "python-traceback");
    assert_eq!(r["exit-status"], 1);
    assert_eq!(r["signal"], Value::Null);
    assert_eq!(r["command"], "python3");
    assert_eq!(r["matched-frame"], 1);
    assert_eq!(r["ect-run-version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["fingerprint"].as_str().unwrap().len(), 32);
    let body = String::from_utf8_lossy(&reqs[0].body);
    assert!(
        !body.contains("tester") && !body.contains(run.env.path().to_str().unwrap()),
        "{body}"
    );
    assert_eq!(outbox_len(&run.env), 0);
}

#[test]
fn same_failure_same_fingerprint() {
    let (server, run) = consented(TOOLBOX_FAILURE, Behavior::Ok);
    run.cmd(&[]).assert().code(1);
    run.cmd(&[]).assert().code(1);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].json()["fingerprint"], reqs[1].json()["fingerprint"]);
}

#[test]
fn nothing_is_sent_without_consent() {
    let server = TestServer::start();
    let run = Run::new(TOOLBOX_FAILURE);
    run.cmd(&["--server-url", &server.url()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("could be reported to help fix it; nothing was sent. To opt in, run `ect-run --consent`"));
    assert!(server.requests().is_empty());
    assert_eq!(outbox_len(&run.env), 0);
}

#[test]
fn nothing_is_sent_with_do_not_track() {
    let (server, run) = consented(TOOLBOX_FAILURE, Behavior::Ok);
    run.cmd(&[])
        .env("DO_NOT_TRACK", "1")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("ect-run:").not());
    assert!(server.requests().is_empty());
}

#[test]
fn nothing_is_sent_for_a_failure_outside_the_toolbox() {
    let (server, run) = consented("x = 1 / 0\n", Behavior::Ok);
    run.cmd(&[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "ZeroDivisionError: division by zero",
        ))
        .stderr(predicate::str::contains("ect-run:").not());
    assert!(server.requests().is_empty());
}

#[test]
fn nothing_is_sent_for_a_run_that_succeeds() {
    let (server, run) = consented(
        "import traceback\ntry:\n    from esa_climate_toolbox.util.reporting import FailureReporter\n    FailureReporter.raise_error()\nexcept Exception:\n    traceback.print_exc()\n",
        Behavior::Ok,
    );
    run.cmd(&[])
        .assert()
        .success()
        .stderr(predicate::str::contains("ect-run:").not());
    assert!(server.requests().is_empty());
}

#[test]
fn consent_holds_only_for_its_url() {
    let server = TestServer::start();
    let other = TestServer::start();
    let run = Run::new(TOOLBOX_FAILURE);
    run.env.consent_to(&server.url());
    run.cmd(&[])
        .env(
            "ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL",
            other.url(),
        )
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "you consented for {}",
            server.url()
        )))
        .stderr(predicate::str::contains(format!(
            "ect-run --consent --server-url {}",
            other.url()
        )));
    assert!(server.requests().is_empty() && other.requests().is_empty());
}

#[test]
fn dry_run_prints_the_report_and_sends_nothing() {
    let (server, run) = consented(TOOLBOX_FAILURE, Behavior::Ok);
    let out = run.cmd(&["--dry-run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let json_start = err.find("ect-run: dry run:").unwrap();
    let json_text = &err[err[json_start..].find('\n').unwrap() + json_start + 1..];
    let report: Value = serde_json::from_str(json_text).unwrap();
    assert_eq!(report["exception-class"], "Exception");
    assert!(server.requests().is_empty());
    assert_eq!(outbox_len(&run.env), 0);
}

/// Every way a delivery can fail: the report is kept, the status is the
/// child's, and ect-run does not wait past its timeout.
#[test]
fn undeliverable_reports_are_kept() {
    let cases: Vec<(&str, Option<TestServer>)> = vec![
        ("refused", None),
        (
            "500",
            Some(TestServer::with_behavior(Behavior::Status(500))),
        ),
        ("reset", Some(TestServer::with_behavior(Behavior::Reset))),
        ("hang", Some(TestServer::with_behavior(Behavior::Hang))),
    ];
    for (name, server) in cases {
        let url = server
            .as_ref()
            .map_or_else(closed_port_url, TestServer::url);
        let run = Run::new(TOOLBOX_FAILURE);
        run.env.consent_to(&url);
        let start = Instant::now();
        run.cmd(&["--timeout", "1", "--connect-timeout", "1"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("ect-run: report not delivered ("))
            .stderr(predicate::str::contains(
                "will be sent by the next run or `ect-run --send-pending`",
            ));
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "{name}: took {:?}",
            start.elapsed()
        );
        assert_eq!(outbox_len(&run.env), 1, "{name}");
    }
}

#[test]
fn kept_report_is_delivered_once_when_the_server_is_back() {
    let (server, run) = consented(TOOLBOX_FAILURE, Behavior::Status(503));
    run.cmd(&[]).assert().code(1);
    assert_eq!(outbox_len(&run.env), 1);
    server.set_behavior(Behavior::Ok);
    // The next run, even a successful one, sends what was kept.
    run.env
        .cmd()
        .args(["--", "true"])
        .assert()
        .success()
        .stderr("ect-run: sent 1 report(s) kept from earlier runs\n");
    run.env
        .cmd()
        .args(["--", "true"])
        .assert()
        .success()
        .stderr("");
    run.env.cmd().arg("--send-pending").assert().success();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "one refused with 503, one delivered");
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(outbox_len(&run.env), 0);
}

#[test]
fn retry_after_is_honoured() {
    let (server, run) = consented(TOOLBOX_FAILURE, Behavior::RetryAfter(429, "3600".into()));
    run.cmd(&[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("HTTP 429"));
    server.set_behavior(Behavior::Ok);
    run.cmd(&[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the server asked to wait, so nothing is tried until",
        ));
    run.env.cmd().arg("--send-pending").assert().code(1);
    assert_eq!(
        server.requests().len(),
        1,
        "nothing more is sent before the time given"
    );
    assert_eq!(outbox_len(&run.env), 2);
}

#[test]
fn concurrent_runs_lose_nothing_and_send_each_report_once() {
    let (server, run) = consented(TOOLBOX_FAILURE, Behavior::Status(500));
    // Four failing runs at once, their deliveries refused: four kept.
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut c = run.env.std_cmd();
            c.env("PYTHONPATH", &run.site)
                .arg("--")
                .arg("python3")
                .arg(&run.script)
                .stderr(std::process::Stdio::null());
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(1));
    }
    assert_eq!(outbox_len(&run.env), 4);
    assert_eq!(server.requests().len(), 4);
    // Three senders at once: each kept report arrives exactly once.
    server.set_behavior(Behavior::Ok);
    let senders: Vec<_> = (0..3)
        .map(|_| {
            let mut c = run.env.std_cmd();
            c.arg("--send-pending").stderr(std::process::Stdio::null());
            c.spawn().unwrap()
        })
        .collect();
    for mut c in senders {
        c.wait().unwrap();
    }
    assert_eq!(server.requests().len(), 8);
    assert_eq!(outbox_len(&run.env), 0);
}

#[test]
fn corrupt_config_is_reported_and_kept() {
    let server = TestServer::start();
    let run = Run::new(TOOLBOX_FAILURE);
    let cfg = run.env.config_path();
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "{\"consent\": {\"given\": true,").unwrap();
    run.cmd(&["--server-url", &server.url()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "ect-run: config file {} is not valid",
            cfg.display()
        )));
    run.env
        .cmd()
        .arg("--consent")
        .write_stdin("YES\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("fix or remove it"));
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        "{\"consent\": {\"given\": true,"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn test_failure_goes_the_whole_way() {
    let server = TestServer::start();
    let env = Env::new();
    env.consent_to(&server.url());
    // Without the toolbox installed: ect-run's own child panics.
    env.cmd()
        .env("ECT_RUN_PYTHON", "/nonexistent/python")
        .arg("--test-failure")
        .assert()
        .code(101)
        .stderr(predicate::str::contains(TEST_MESSAGE))
        .stderr(predicate::str::contains("ect-run: report delivered."));
    let r = server.requests()[0].json();
    assert_eq!(r["exception-class"], "panic");
    assert_eq!(r["failure-kind"], "rust-panic");
    assert!(
        r["exception-instance"]
            .as_str()
            .unwrap()
            .contains(TEST_MESSAGE)
    );
    // With the toolbox importable: Python's FailureReporter.raise_error().
    let site = install_fake_toolbox(&env);
    env.cmd()
        .env("PYTHONPATH", &site)
        .arg("--test-failure")
        .assert()
        .code(1);
    let r = server.requests()[1].json();
    assert_eq!(
        r["exception-instance"],
        format!("Exception('{TEST_MESSAGE}')")
    );
    assert_eq!(r["toolbox-version"], "1.7.2");
}

#[test]
fn consent_from_a_pipe_status_and_revoke() {
    let env = Env::new();
    env.cmd()
        .args(["--consent", "--server-url", "http://127.0.0.1:9/"])
        .write_stdin("no\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("no consent recorded"));
    assert!(!env.config_path().exists());
    env.cmd()
        .arg("--consent")
        .write_stdin("")
        .assert()
        .success();
    assert!(!env.config_path().exists(), "end of input is not consent");
    env.cmd()
        .args(["--consent", "--server-url", "http://127.0.0.1:9/"])
        .write_stdin("yes\n")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "Please enter YES below to consent to reporting.",
        ))
        .stderr(predicate::str::contains(
            "consent recorded for http://127.0.0.1:9/",
        ));
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(env.config_path()).unwrap()).unwrap();
    assert_eq!(cfg["consent"]["given"], true);
    assert_eq!(cfg["consent"]["server_url"], "http://127.0.0.1:9/");
    assert_eq!(cfg["server_url"], "http://127.0.0.1:9/");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env.config_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    env.cmd()
        .arg("--status")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Server URL:   http://127.0.0.1:9/ (from the config file)",
        ))
        .stdout(predicate::str::contains("Reporting:    on"));
    env.cmd().arg("--revoke-consent").assert().success();
    env.cmd()
        .arg("--status")
        .assert()
        .success()
        .stdout(predicate::str::contains("Reporting:    off: no consent"));
}

#[test]
fn tail_keeps_the_last_bytes() {
    // 300 KiB of noise after the traceback pushes it out of a 64 KiB tail.
    let before = "import sys\nsys.stderr.write('x' * 300000 + '\\n')\n";
    let after_tb =
        "import sys, atexit\natexit.register(lambda: sys.stderr.write('y' * 300000 + '\\n'))\n";
    let hint = "could be reported to help fix it";
    let run = Run::new(&format!("{before}{TOOLBOX_FAILURE}"));
    run.cmd(&["--tail-size", "64KiB"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(hint));
    let run = Run::new(&format!("{after_tb}{TOOLBOX_FAILURE}"));
    run.cmd(&["--tail-size", "64KiB"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(hint).not());
    run.cmd(&["--tail-size", "1MiB"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(hint));
}

#[test]
fn private_data_is_scrubbed() {
    let (server, run) = consented(
        "from esa_climate_toolbox.util.reporting import apply\n\
         import os\n\
         def load(path):\n    raise OSError('cannot open https://alice:s3cr3t@data.example.org/cube?token=abcdef123456 for ' + path + ' password=hunter2 ghp_0123456789abcdefghijABCDEFGHIJ0123456789')\n\
         apply(load, os.path.join(os.environ['HOME'], 'private', 'tester-notes.nc'))\n",
        Behavior::Ok,
    );
    run.cmd(&[]).assert().code(1);
    let body = String::from_utf8(server.requests()[0].body.clone()).unwrap();
    for secret in [
        "s3cr3t",
        "alice",
        "abcdef123456",
        "hunter2",
        "ghp_0123",
        "tester",
        run.env.path().to_str().unwrap(),
    ] {
        assert!(!body.contains(secret), "{secret} leaked: {body}");
    }
    let r = server.requests()[0].json();
    let instance = r["exception-instance"].as_str().unwrap();
    assert!(
        instance.contains("https://***@data.example.org/cube"),
        "{instance}"
    );
    assert!(instance.contains("~/private/<user>-notes.nc"), "{instance}");
}

#[test]
fn proxies_from_the_environment_are_used() {
    // The test server plays the proxy: ureq asks it to CONNECT to the real
    // destination. It does not tunnel, so the report is then kept; what
    // matters is that the proxy was asked. No other network is touched.
    let proxy = TestServer::start();
    let url = "http://reports.example.invalid:9898/";
    let run = Run::new(TOOLBOX_FAILURE);
    run.env.consent_to(url);
    run.cmd(&["--timeout", "2"])
        .env("HTTP_PROXY", proxy.url())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("ect-run: report not delivered"));
    let reqs = proxy.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "CONNECT");
    assert_eq!(reqs[0].path, "reports.example.invalid:9898");
    assert_eq!(outbox_len(&run.env), 1);
    // NO_PROXY exempts the host: then the (unresolvable) host is tried
    // directly, and the proxy hears nothing more.
    run.cmd(&["--timeout", "2"])
        .env("HTTP_PROXY", proxy.url())
        .env("NO_PROXY", "reports.example.invalid")
        .assert()
        .code(1);
    assert_eq!(proxy.requests().len(), 1);
}

#[test]
fn concurrent_consents_leave_a_valid_private_file() {
    let env = Env::new();
    let cfg = env.config_path();
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, r#"{"mine": [1, 2, 3]}"#).unwrap();
    let children: Vec<_> = (0..6)
        .map(|i| {
            let mut c = env.std_cmd();
            c.args([
                "--consent",
                "--server-url",
                &format!("http://127.0.0.1:{}/", 9000 + i),
            ])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"YES\n").unwrap();
            child
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(cfg["mine"], serde_json::json!([1, 2, 3]));
    assert_eq!(cfg["consent"]["given"], true);
    assert_eq!(cfg["consent"]["server_url"], cfg["server_url"]);
    let leftovers: Vec<_> = std::fs::read_dir(env.config_path().parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn dry_run_says_why_nothing_would_be_reported() {
    let run = Run::new("x = 1 / 0\n");
    run.cmd(&["--dry-run"]).assert().code(1).stderr(predicate::str::ends_with(
        "ect-run: dry run: nothing would be reported: ZeroDivisionError (python-traceback): no frame belongs to the toolbox\n",
    ));
    run.env
        .cmd()
        .args(["--dry-run", "--", "sh", "-c", "exit 4"])
        .assert()
        .code(4)
        .stderr("ect-run: dry run: nothing would be reported: no traceback, fatal error or panic was found\n");
}

#[test]
fn credentials_in_the_server_url_are_never_shown() {
    let server = TestServer::start();
    let url = server
        .url()
        .replace("http://", "http://ingest:s3cr3t-t0k3n@");
    let run = Run::new(TOOLBOX_FAILURE);
    let consent = run
        .env
        .cmd()
        .args(["--consent", "--server-url", &url])
        .write_stdin("YES\n")
        .output()
        .unwrap();
    let status = run.env.cmd().arg("--status").output().unwrap();
    let failed = run.cmd(&[]).output().unwrap();
    for out in [&consent, &status, &failed] {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("http://***@127.0.0.1:"), "{text}");
    }
    // ... but they are used: the request carries them as Basic auth.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert!(
        reqs[0]
            .header("authorization")
            .is_some_and(|h| h.starts_with("Basic "))
    );
}

/// A server that does not answer costs one timeout, not one per run.
#[test]
fn a_silent_server_is_left_alone_for_a_while() {
    let (server, run) = consented(TOOLBOX_FAILURE, Behavior::Hang);
    run.cmd(&["--timeout", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("did not answer in time"));
    // Were the server tried again, this would take at least 25 s; left
    // alone, well under a second.
    let start = Instant::now();
    run.cmd(&["--timeout", "25", "--connect-timeout", "25"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the server did not answer in time, so nothing is tried until",
        ));
    run.env
        .cmd()
        .args(["--", "true"])
        .assert()
        .success()
        .stderr("");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.requests().len(), 1);
    assert_eq!(outbox_len(&run.env), 2);
    run.env
        .cmd()
        .arg("--status")
        .assert()
        .stdout(predicate::str::contains("paused until"));
}

/// A crash in C code under the toolbox: faulthandler's dump is the failure,
/// and the status is the signal's.
#[test]
fn fatal_error_dump_is_reported_with_its_signal() {
    let (server, run) = consented(
        "import faulthandler\nfaulthandler.enable()\nfrom esa_climate_toolbox.util import reporting\nreporting.crash()\n",
        Behavior::Ok,
    );
    run.cmd(&[])
        .assert()
        .code(139)
        .stderr(predicate::str::contains(
            "Fatal Python error: Segmentation fault",
        ));
    let r = server.requests()[0].json();
    assert_eq!(r["failure-kind"], "python-fatal");
    assert_eq!(r["exception-class"], "Fatal Python error");
    assert_eq!(
        r["exception-instance"],
        "Fatal Python error: Segmentation fault"
    );
    assert_eq!(r["exit-status"], 139);
    assert_eq!(r["signal"], "SIGSEGV");
    assert_eq!(r["toolbox-version"], "1.7.2");
    let tb = r["traceback"].as_array().unwrap();
    assert!(
        tb.iter().any(|f| f
            .as_str()
            .unwrap()
            .contains("esa_climate_toolbox/util/reporting.py\", line 13 in crash")),
        "{tb:?}"
    );
}

//! Sentry events against a real tracker: failures parsed from the real
//! fixtures, built into events and envelopes by the library, POSTed with
//! ureq to a real Bugsink (strict schema validation), and read back through
//! its API. And the rate-limit rules against a loopback server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, SystemTime};

use ect_run::decide::failure_that_counts;
use ect_run::involvement::Rules;
use ect_run::parse::{Failure, parse_bytes};
use ect_run::scrub::Scrubber;
use ect_run::sentry::Dsn;
use ect_run::sentry::envelope::{self, Request};
use ect_run::sentry::event::{self, EventId, OsInfo};
use ect_run::sentry::ratelimit::pause_until;
use ect_run::supervise::Exit;
use serde_json::{Value, json};

use crate::support::bugsink::bugsink;
use crate::support::fixtures;

/// The failure that counts in a fixture, as a run that ended with `exit`.
fn failure(fixture: &str, exit: Exit) -> Failure {
    let raw = std::fs::read(fixtures().join(fixture)).unwrap();
    failure_that_counts(parse_bytes(&raw, false), exit, false).unwrap()
}

fn request(dsn: &Dsn, f: &Failure, exit: Exit) -> (EventId, Request) {
    let id = EventId::random();
    let input = event::Input {
        failure: f,
        rules: &Rules::default(),
        toolbox_version: Some("1.7.2"),
        exit,
        program: "/usr/bin/python3",
        event_id: id,
        timestamp: SystemTime::now(),
        os: &OsInfo::detect(),
    };
    let ev = event::build(
        &input,
        &Scrubber::new(Some("/tmp/ect-fixtures/home/alice"), Some("alice")),
    );
    (id, envelope::request(dsn, &ev, SystemTime::now()))
}

fn post(req: &Request) -> ureq::http::Response<ureq::Body> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut r = agent.post(&req.url);
    for (name, value) in &req.headers {
        r = r.header(*name, value);
    }
    r.send(&req.body[..]).unwrap()
}

/// Sends the failure to the shared Bugsink; its stored event.
fn send(f: &Failure, exit: Exit) -> Value {
    let b = bugsink();
    let dsn = Dsn::parse(&b.dsn).unwrap();
    let (id, req) = request(&dsn, f, exit);
    let mut resp = post(&req);
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(resp.status(), 200, "{body}\n{}", b.log());
    // Bugsink sends a day-long limit on transactions with every answer
    // (as Sentry does): no pause for errors.
    let limits = resp.headers().get("x-sentry-rate-limits").unwrap();
    assert!(limits.to_str().unwrap().contains("transaction"));
    assert_eq!(
        pause_until(200, limits.to_str().ok(), None, SystemTime::now()),
        None
    );
    // Bugsink answers with the id it stored the event under.
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["id"],
        id.to_string()
    );
    let stored = b.event(&id.to_string());
    b.assert_log_clean();
    stored
}

/// (function, in_app) of each frame of an exception value.
fn frames(value: &Value) -> Vec<(String, bool)> {
    value["stacktrace"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap().to_string(),
                f["in_app"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, bool)]) -> Vec<(String, bool)> {
    v.iter().map(|(f, b)| (f.to_string(), *b)).collect()
}

#[test]
fn python_chain_is_stored_with_both_exceptions() {
    let f = failure("python/chained_from_toolbox-3.11.txt", Exit::Code(1));
    let stored = send(&f, Exit::Code(1));
    let data = &stored["data"];
    assert_eq!(data["release"], "esa-climate-toolbox@1.7.2");
    assert_eq!(data["level"], "fatal");
    assert_eq!(data["platform"], "python");
    let values = data["exception"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 2, "{data}");
    assert_eq!(values[0]["type"], "KeyError");
    assert_eq!(values[0]["mechanism"]["type"], "chained");
    assert_eq!(values[0]["mechanism"]["parent_id"], 0);
    assert_eq!(values[1]["type"], "ValueError");
    assert_eq!(values[1]["mechanism"]["exception_id"], 0);
    assert_eq!(frames(&values[0]), pairs(&[("select_var", true)]));
    assert_eq!(
        frames(&values[1]),
        pairs(&[("<module>", false), ("select_var", true)])
    );
    assert_eq!(
        values[1]["stacktrace"]["frames"][1]["filename"],
        "esa_climate_toolbox/ops/compute.py"
    );
    assert_eq!(data["tags"]["failure_kind"], "python-traceback");
    // Bugsink's own rendering of the stack has both tracebacks.
    let md = stored["stacktrace_md"].as_str().unwrap();
    assert!(md.contains("KeyError") && md.contains("ValueError"), "{md}");
}

#[test]
fn rust_panic_and_faulthandler_events_are_stored() {
    let exit = Exit::Code(101);
    let stored = send(&failure("rust/ect_demo_panic_bt1.txt", exit), exit);
    let v = &stored["data"]["exception"]["values"][0];
    assert_eq!(stored["data"]["platform"], "native");
    assert_eq!(v["type"], "panic");
    assert_eq!(v["mechanism"], json!({"type": "panic", "handled": false}));
    assert_eq!(
        frames(v),
        pairs(&[
            ("core::ops::function::FnOnce::call_once", false),
            ("ect_demo::main", true),
            ("ect_demo::compute::mean_anomaly", true),
            ("core::panicking::panic_fmt", false),
            ("__rustc::rust_begin_unwind", false),
        ])
    );

    let exit = Exit::Signal(libc::SIGSEGV);
    let stored = send(
        &failure("python/fatal_segfault_threads-3.11.txt", exit),
        exit,
    );
    let v = &stored["data"]["exception"]["values"][0];
    assert_eq!(v["type"], "SIGSEGV");
    assert_eq!(v["mechanism"]["type"], "faulthandler");
    assert_eq!(v["mechanism"]["synthetic"], true);
    assert_eq!(
        frames(v),
        pairs(&[
            ("<module>", false),
            ("read_native", true),
            ("string_at", false)
        ])
    );
    assert_eq!(stored["data"]["tags"]["signal"], "SIGSEGV");
}

#[test]
fn same_failure_with_other_messages_is_one_issue() {
    let exit = Exit::Code(1);
    let mut first = failure("python/dotted_class-3.11.txt", exit);
    first.exception.message = "conflicting values for variable 'sst'".into();
    let mut second = first.clone();
    second.exception.message = "conflicting values for variable 'chl'".into();
    let a = send(&first, exit);
    let b = send(&second, exit);
    assert_eq!(a["issue"], b["issue"]);
    assert_ne!(
        a["data"]["exception"]["values"][0]["value"],
        b["data"]["exception"]["values"][0]["value"]
    );
    let issue = a["issue"].as_str().unwrap();
    let ids = bugsink().event_ids_of_issue(issue);
    for e in [&a, &b] {
        let id = e["event_id"].as_str().unwrap().replace('-', "");
        assert!(ids.contains(&id), "{id} not in {ids:?}");
    }
    // Another place is another issue.
    let other = send(&failure("python/key_error-3.11.txt", exit), exit);
    assert_ne!(other["issue"], a["issue"]);
}

/// A one-request HTTP server on 127.0.0.1 answering with `status` and
/// `headers`; returns its URL and a handle giving the request's body.
fn answer_once(
    status: u16,
    headers: &[(&str, &str)],
) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://k@{}/5", listener.local_addr().unwrap());
    let head: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\n{head}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        body
    });
    (url, handle)
}

#[test]
fn rate_limits_from_a_real_answer() {
    let exit = Exit::Code(1);
    let f = failure("python/chained_from_toolbox-3.11.txt", exit);
    // (status, headers, pause in seconds)
    type Case<'a> = (u16, &'a [(&'a str, &'a str)], Option<u64>);
    let cases: [Case; 4] = [
        // A day on transactions is not ours; the error limit is.
        (
            429,
            &[(
                "X-Sentry-Rate-Limits",
                "86400:transaction:organization, 30:error;default:key",
            )],
            Some(30),
        ),
        // Sent with a 200 too, and only for transactions: no pause.
        (
            200,
            &[("X-Sentry-Rate-Limits", "86400:transaction:organization")],
            None,
        ),
        (429, &[("Retry-After", "120")], Some(120)),
        (429, &[], Some(60)),
    ];
    for (status, headers, want) in cases {
        let (dsn, server) = answer_once(status, headers);
        let dsn = Dsn::parse(&dsn).unwrap();
        let (_, req) = request(&dsn, &f, exit);
        let resp = post(&req);
        let now = SystemTime::now();
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok());
        let pause = pause_until(
            resp.status().as_u16(),
            header("x-sentry-rate-limits"),
            header("retry-after"),
            now,
        );
        assert_eq!(
            pause,
            want.map(|s| now + Duration::from_secs(s)),
            "{status} {headers:?}"
        );
        // What arrived is the gzipped envelope.
        let body = server.join().unwrap();
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain.lines().count(), 3);
        assert!(plain.starts_with("{\"event_id\":"), "{plain}");
    }
}

/// Every fixture's failure, as events of a run that exited 1 and of one
/// killed by SIGABRT, stored under strict validation. About 240 events,
/// half a minute: outside the default run (`cargo test -- --ignored`).
#[test]
#[ignore = "slow: about 240 events; run with --ignored"]
fn every_fixture_is_accepted() {
    let mut n = 0;
    for dir in ["python", "rust"] {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "txt") {
                continue;
            }
            let raw = std::fs::read(&path).unwrap();
            for exit in [Exit::Code(1), Exit::Signal(libc::SIGABRT)] {
                let Ok(f) = failure_that_counts(parse_bytes(&raw, false), exit, false) else {
                    continue;
                };
                let stored = send(&f, exit);
                assert!(stored["data"]["exception"]["values"].is_array(), "{path:?}");
                n += 1;
            }
        }
    }
    eprintln!("{n} events accepted");
}

/// The event id ect-run says it delivered.
fn delivered_event_id(stderr: &str) -> String {
    let at = stderr
        .find("(event ")
        .unwrap_or_else(|| panic!("no event id in: {stderr}"));
    stderr[at + 7..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

/// The whole path through the binary: consent for the tracker alone, a
/// toolbox failure with a chained cause, the event stored with both
/// exceptions, and the same failure again held back by flood control.
#[test]
fn a_run_under_ect_run_reaches_a_real_tracker() {
    let b = bugsink();
    let env = crate::support::Env::new();
    env.cmd()
        .args(["--consent", "--sentry-dsn", &b.dsn])
        .write_stdin("YES\n")
        .assert()
        .success()
        .stderr(predicates::str::contains("Sentry-protocol tracker project"));
    let status = env.cmd().arg("--status").assert().success();
    let out = String::from_utf8_lossy(&status.get_output().stdout).into_owned();
    assert!(out.contains("Sentry DSN:"), "{out}");
    assert!(!out.contains(&b.dsn), "the key is masked: {out}");
    let fixture = crate::support::fixtures()
        .join("python")
        .join("chained_from_toolbox-3.11.txt");
    // The fixture's paths are not on this machine: the version comes from
    // the documented fallback.
    let run = env
        .cmd()
        .env("ECT_TOOLBOX_VERSION", "1.7.2")
        .args(["--", "sh", "-c"])
        .arg(format!("cat '{}' >&2; exit 1", fixture.display()))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    let id = delivered_event_id(&err);
    let stored = b.event(&id);
    b.assert_log_clean();
    let values = stored["data"]["exception"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 2, "{stored}");
    assert!(
        values
            .iter()
            .flat_map(|v| v["stacktrace"]["frames"].as_array().unwrap())
            .any(|f| f["in_app"] == true),
        "{stored}"
    );
    assert_eq!(stored["data"]["release"], "esa-climate-toolbox@1.7.2");
    // Nothing for the toolbox server, which was not consented to.
    assert!(!err.contains("localhost:9898"), "{err}");
    // The same failure again: held back, not sent.
    env.cmd()
        .args(["--", "sh", "-c"])
        .arg(format!("cat '{}' >&2; exit 1", fixture.display()))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("not sent again"));
}

/// `--dry-run` shows the envelope with the key masked, and sends nothing.
#[test]
fn dry_run_shows_the_envelope_without_the_key() {
    let env = crate::support::Env::new();
    let key = "0123456789abcdef0123456789abcdef";
    let dsn = format!("http://{key}@127.0.0.1:9/42");
    let fixture = crate::support::fixtures()
        .join("python")
        .join("chained_from_toolbox-3.11.txt");
    let run = env
        .cmd()
        .args(["--dry-run", "--sentry-dsn", &dsn, "--", "sh", "-c"])
        .arg(format!("cat '{}' >&2; exit 1", fixture.display()))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert!(err.contains("this envelope would be sent to"), "{err}");
    assert!(err.contains("\"type\":\"event\""), "{err}");
    assert!(
        err.contains("this report would be sent to http://localhost:9898"),
        "{err}"
    );
    assert!(!err.contains(key), "{err}");
}

/// A tracker's rate limit, read from a real answer of a loopback server,
/// pauses that destination for later runs too.
#[test]
fn a_rate_limit_pauses_the_tracker_across_runs() {
    let server = crate::support::server::TestServer::with_behavior(
        crate::support::server::Behavior::RetryAfter(429, "600".into()),
    );
    let env = crate::support::Env::new();
    let dsn = format!(
        "http://0123456789abcdef0123456789abcdef@127.0.0.1:{}/7",
        server.port()
    );
    env.cmd()
        .args(["--consent", "--sentry-dsn", &dsn])
        .write_stdin("YES\n")
        .assert()
        .success();
    let job = |tag: &str| {
        let tb = env.path().join(format!("{tag}.txt"));
        std::fs::write(
            &tb,
            format!("Traceback (most recent call last):\n  File \"/x/esa_climate_toolbox/a.py\", line {}, in f\n    g()\nValueError: {tag}\n", tag.len()),
        )
        .unwrap();
        env.cmd()
            .args(["--", "sh", "-c"])
            .arg(format!("cat '{}' >&2; exit 1", tb.display()))
            .assert()
            .code(1)
    };
    job("first");
    assert_eq!(server.requests().len(), 1);
    assert!(
        server.requests()[0].path.ends_with("/api/7/envelope/"),
        "{}",
        server.requests()[0].path
    );
    job("second one").stderr(predicates::str::contains("nothing is tried until"));
    assert_eq!(server.requests().len(), 1, "paused across runs");
    env.cmd()
        .arg("--status")
        .assert()
        .success()
        .stdout(predicates::str::contains("paused until"));
}

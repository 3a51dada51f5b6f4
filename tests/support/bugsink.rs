//! A real Bugsink (a Sentry-protocol tracker) on 127.0.0.1 for the tests:
//! one per test binary run, started by the first test that asks for it and
//! shared by the others.
//!
//! `scripts/test-env.sh` sets up its Python environment the first time
//! (cached outside the clone afterwards); `scripts/bugsink_test_server.py`
//! runs it with SQLite in a temporary directory, strict schema validation
//! and events digested within the request. The server exits, and removes
//! its directory, when its stdin closes: when this process ends, however
//! it ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: a busy two-core machine runs other builds beside the tests.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an event may take to show up after its HTTP 200.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Bugsink {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The test project's DSN.
    pub dsn: String,
    pub project: u64,
    token: String,
    log: PathBuf,
    /// Where the log of the tests' own events begins: after the canary.
    log_start: usize,
    /// Holds the server's stdin open; never waited for.
    _child: Mutex<Child>,
    /// How long setting up and starting took, for the test output.
    pub setup: Duration,
    pub start: Duration,
}

static BUGSINK: OnceLock<Result<Bugsink, String>> = OnceLock::new();

/// The shared Bugsink, started on first use.
pub fn bugsink() -> &'static Bugsink {
    match BUGSINK.get_or_init(start) {
        Ok(b) => b,
        Err(e) => panic!("could not start Bugsink for the tests: {e}"),
    }
}

fn start() -> Result<Bugsink, String> {
    let t0 = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts").join("test-env.sh"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running scripts/test-env.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!("scripts/test-env.sh failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(PathBuf::from)
            .ok_or_else(|| format!("scripts/test-env.sh printed no {name}= line: {text}"))
    };
    let (python, template) = (field("python")?, field("template")?);
    let setup = t0.elapsed();

    let t1 = Instant::now();
    // Removed by the server when it exits.
    let dir = tempfile::Builder::new()
        .prefix("ect-run-bugsink-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let log = dir.join("bugsink.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut child = Command::new(&python)
        .arg(root.join("scripts").join("bugsink_test_server.py"))
        .arg(&dir)
        .arg(&template)
        .env_remove("DJANGO_SETTINGS_MODULE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", python.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
    let info: Value = serde_json::from_str(&line).map_err(|_| {
        format!(
            "Bugsink did not start; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    })?;
    let s = |k: &str| info[k].as_str().unwrap_or_default().to_string();
    let mut b = Bugsink {
        url: s("url"),
        dsn: s("dsn"),
        project: info["project"].as_u64().unwrap_or_default(),
        token: s("token"),
        log,
        log_start: 0,
        _child: Mutex::new(child),
        setup,
        start: t1.elapsed(),
    };
    b.log_start = b.canary()?;
    eprintln!(
        "Bugsink at {}: environment ready in {:.1?}, started in {:.1?}",
        b.url, b.setup, b.start
    );
    Ok(b)
}

impl Bugsink {
    /// Proves that this Bugsink rejects an event that breaks the schema,
    /// and how that shows: HTTP 200, a "ValidationError in digest" in the
    /// log, and no stored event. Returns the log's length after it.
    fn canary(&self) -> Result<usize, String> {
        let id = "00000000000040008000000000000001";
        let event = format!(
            r#"{{"event_id":"{id}","exception":{{"values":[{{"type":"Canary","ect_run_canary":1}}]}}}}"#
        );
        let body = format!(
            "{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{event}\n",
            event.len()
        );
        let key = self
            .dsn
            .split_once("://")
            .and_then(|(_, r)| r.split_once('@'))
            .map(|(k, _)| k.to_string())
            .unwrap_or_default();
        let status = ureq::post(&format!("{}/api/{}/envelope/", self.url, self.project))
            .header(
                "X-Sentry-Auth",
                &format!("Sentry sentry_version=7, sentry_key={key}, sentry_client=canary/1"),
            )
            .send(body.as_bytes())
            .map_err(|e| format!("sending the canary: {e}"))?
            .status()
            .as_u16();
        let log = self.log();
        let (lookup, _) = self.get(&format!(
            "/api/canonical/0/events/lookup/?project={}&event_id={id}",
            self.project
        ));
        if status != 200 || !log.contains("ValidationError in digest") || lookup != 404 {
            return Err(format!(
                "strict validation is not in force (canary: HTTP {status}, lookup {lookup}); log:\n{log}"
            ));
        }
        Ok(log.len())
    }

    fn get(&self, path_and_query: &str) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut resp = agent
            .get(&format!("{}{path_and_query}", self.url))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// The stored event with this id (Bugsink's API, the full `data`
    /// included), waiting a bounded time for it.
    pub fn event(&self, event_id: &str) -> Value {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let (status, v) = self.get(&format!(
                "/api/canonical/0/events/lookup/?project={}&event_id={event_id}",
                self.project
            ));
            if status == 200 {
                return v;
            }
            assert!(
                status == 404 && Instant::now() < deadline,
                "event {event_id}: HTTP {status} {v}\nBugsink's log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The issue (its id, its stored events' count).
    pub fn issue(&self, issue_id: &str) -> Value {
        let (status, v) = self.get(&format!("/api/canonical/0/issues/{issue_id}/"));
        assert_eq!(status, 200, "{v}");
        v
    }

    /// The ids (`event_id`) of the events stored for an issue.
    pub fn event_ids_of_issue(&self, issue_id: &str) -> Vec<String> {
        let (status, v) = self.get(&format!("/api/canonical/0/events/?issue={issue_id}"));
        assert_eq!(status, 200, "{v}");
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().replace('-', ""))
            .collect()
    }

    /// Everything Bugsink logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What Bugsink logged after the canary: about the tests' own events.
    pub fn tests_log(&self) -> String {
        let log = self.log();
        log.get(self.log_start..).unwrap_or_default().to_string()
    }

    /// Fails if Bugsink logged a rejected event or an error after the
    /// canary: with strict validation, an event that breaks the schema is
    /// answered with 200 and only logged ("ValidationError in digest").
    pub fn assert_log_clean(&self) {
        let log = self.tests_log();
        for bad in [
            "ValidationError",
            "Traceback",
            "ERROR",
            "Internal Server Error",
        ] {
            assert!(!log.contains(bad), "Bugsink logged {bad:?}:\n{log}");
        }
    }
}

//! Issue 13's tables against the real binary: every secret and personal
//! value of `tests/data/scrub-table.json`, placed in an exception's message,
//! a source line and a file path of a toolbox failure, is absent from what
//! `--dry-run` prints and from what a recording server receives; every
//! useful string comes through unchanged. The values are batched: a few
//! runs carry the whole table.

use std::path::PathBuf;
use std::time::Duration;

use ect_run::pyform::python_repr;
use serde_json::Value;

use crate::support::Env;
use crate::support::scrub_table::{Secret, Table, message_forms, path_form, source_form, table};
use crate::support::server::TestServer;

/// Message bytes per run: well under the report's 8 KiB message cap, so
/// nothing is cut and every value is really in what is sent.
const BATCH_BYTES: usize = 7000;

/// A failure of the (pretend) toolbox, printed by a shell script.
struct Batch {
    /// The traceback the child prints.
    text: String,
    /// The exception's message as printed (for the `repr` it is sent as).
    message: String,
    /// Each frame as `traceback.format_tb` prints it.
    frames: Vec<String>,
    /// One marker per value, after its lines: proves the message was not
    /// cut before it.
    markers: Vec<String>,
}

/// Lines a traceback parser would take for the end of the message (log
/// lines, a new failure's header) get a `> ` in front: the values are then
/// still in the message, where they are to be tested.
fn shield(form: &str) -> String {
    const STARTS: [&str; 19] = [
        "Fatal",
        "thread",
        "Exception",
        "Traceback",
        "During",
        "The above",
        "  File",
        "PS ",
        "DEBUG",
        "INFO",
        "WARNING",
        "WARN",
        "ERROR",
        "CRITICAL",
        "TRACE",
        "FATAL",
        "[",
        "C:",
        " ",
    ];
    form.lines()
        .map(|l| {
            let risky = l.is_empty()
                || l.starts_with(|c: char| c.is_ascii_digit())
                || STARTS.iter().any(|s| l.starts_with(s));
            if risky {
                format!("> {l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn batch(first_id: usize, values: &[&str], one_line: &[bool]) -> Batch {
    let mut text = String::from("Traceback (most recent call last):\n");
    let mut frames = Vec::new();
    let mut lines = Vec::new();
    let mut markers = Vec::new();
    for (k, v) in values.iter().enumerate() {
        let id = first_id + k;
        if one_line[k] {
            let frame = format!(
                "  File \"{}\", line {id}, in step_{id}\n    {}\n",
                path_form(v),
                source_form(v)
            );
            text.push_str(&frame);
            frames.push(frame);
        }
        for (_, form) in message_forms(v) {
            lines.push(shield(&form));
        }
        let marker = format!("value {id} ends");
        lines.push(marker.clone());
        markers.push(marker);
    }
    let message = lines.join("\n");
    text.push_str(&format!("ValueError: {message}\n"));
    Batch {
        text,
        message,
        frames,
        markers,
    }
}

/// Groups of values whose messages stay under [`BATCH_BYTES`].
fn batches<'a>(values: &[&'a str]) -> Vec<(usize, Vec<&'a str>)> {
    let mut out: Vec<(usize, Vec<&str>)> = Vec::new();
    let mut size = usize::MAX;
    for (i, v) in values.iter().enumerate() {
        let bytes: usize = message_forms(v).iter().map(|(_, f)| f.len() + 1).sum();
        if size.saturating_add(bytes) > BATCH_BYTES {
            out.push((i, Vec::new()));
            size = 0;
        }
        size += bytes;
        out.last_mut().unwrap().1.push(v);
    }
    out
}

/// An isolated ect-run whose user, home and host are the table's, with
/// consent for a recording server.
struct Setup {
    env: Env,
    server: TestServer,
    table: Table,
    /// A shell under a name holding the user name: the `command` field.
    program: PathBuf,
    runs: usize,
}

impl Setup {
    fn new() -> Setup {
        let env = Env::new();
        let server = TestServer::start();
        env.consent_to(&server.url());
        // Every batch is the same failure at the same place: flood control
        // would hold all but the first back.
        env.allow_repeats();
        let table = table();
        let program = env.path().join(format!("run-as-{}", table.user));
        std::os::unix::fs::symlink("/bin/sh", &program).unwrap();
        Setup {
            env,
            server,
            table,
            program,
            runs: 0,
        }
    }

    /// Runs the child printing `b` twice: with `--dry-run` (the printed
    /// report) and for real (the report the server received).
    fn reports(&mut self, b: &Batch, toolbox_version: &str) -> [Value; 2] {
        let script = self.env.path().join("traceback.txt");
        std::fs::write(&script, &b.text).unwrap();
        let run = |extra: &[&str]| {
            self.env
                .cmd()
                .env("HOME", &self.table.home)
                .env("USER", &self.table.user)
                .env("HOSTNAME", &self.table.host)
                .env("ECT_TOOLBOX_VERSION", toolbox_version)
                .args(extra)
                .arg("--")
                .arg(&self.program)
                .arg("-c")
                .arg("cat \"$0\" >&2; exit 1")
                .arg(&script)
                .output()
                .unwrap()
        };
        let out = run(&["--dry-run"]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        let start = err
            .find("ect-run: dry run: this report would be sent")
            .unwrap_or_else(|| panic!("no dry-run report in: {err}"));
        let json = &err[start..];
        let dry: Value = serde_json::from_str(&json[json.find('\n').unwrap() + 1..]).unwrap();

        let out = run(&[]);
        assert_eq!(out.status.code(), Some(1));
        self.runs += 1;
        let reqs = self
            .server
            .wait_for_requests(self.runs, Duration::from_secs(10));
        assert_eq!(
            reqs.len(),
            self.runs,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sent = reqs[self.runs - 1].json();
        [dry, sent]
    }
}

/// Every string in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// `h` as it would look inside a Python `repr` or a JSON string.
fn escaped_forms(h: &str) -> Vec<String> {
    let repr = python_repr(h);
    vec![
        h.to_string(),
        repr[1..repr.len() - 1].to_string(),
        serde_json::to_string(h)
            .unwrap()
            .trim_matches('"')
            .to_string(),
    ]
}

#[test]
fn secrets_never_leave_the_machine() {
    let mut setup = Setup::new();
    let t = table();
    let secrets: Vec<&Secret> = t.secrets.iter().collect();
    let mut hidden: Vec<String> = secrets
        .iter()
        .flat_map(|s| s.hidden())
        .map(str::to_string)
        .collect();
    hidden.push(t.user.clone());
    let texts: Vec<&str> = secrets.iter().map(|s| s.text.as_str()).collect();
    let owned: Vec<(usize, Vec<String>)> = batches(&texts)
        .into_iter()
        .map(|(i, v)| (i, v.into_iter().map(str::to_string).collect()))
        .collect();
    assert!(owned.len() <= 12, "{} runs", owned.len());
    for (first, values) in &owned {
        let vals: Vec<&str> = values.iter().map(String::as_str).collect();
        let one_line: Vec<bool> = secrets[*first..*first + vals.len()]
            .iter()
            .map(|s| s.one_line())
            .collect();
        let b = batch(*first, &vals, &one_line);
        // The toolbox version (from the environment here) carries a
        // secret too.
        let version = format!("1.7.2+{}", t.user);
        for report in setup.reports(&b, &version) {
            let mut all = Vec::new();
            strings(&report, &mut all);
            let text = report.to_string();
            let instance = report["exception-instance"].as_str().unwrap();
            for m in &b.markers {
                assert!(
                    instance.contains(m),
                    "{m} missing: message cut? {instance}\nTEXT:\n{}",
                    b.text
                );
            }
            assert!(!instance.contains("omitted by ect-run"), "{instance}");
            assert_eq!(
                report["traceback"].as_array().unwrap().len(),
                b.frames.len()
            );
            assert_eq!(report["command"], "run-as-<user>");
            for h in &hidden {
                for form in escaped_forms(h) {
                    assert!(
                        !text.contains(&form) && all.iter().all(|s| !s.contains(&form)),
                        "{form:?} was sent: {text}"
                    );
                }
            }
        }
    }
}

#[test]
fn useful_strings_come_through_unchanged() {
    let mut setup = Setup::new();
    let kept: Vec<String> = setup.table.kept.clone();
    let texts: Vec<&str> = kept.iter().map(String::as_str).collect();
    for (first, values) in batches(&texts) {
        let one_line = vec![true; values.len()];
        let b = batch(first, &values, &one_line);
        for report in setup.reports(&b, "1.7.2") {
            assert_eq!(report["toolbox-version"], "1.7.2");
            assert_eq!(report["exception-class"], "ValueError");
            assert_eq!(
                report["exception-instance"],
                format!("ValueError({})", python_repr(&b.message))
            );
            let tb: Vec<&str> = report["traceback"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(tb, b.frames);
        }
    }
}

/// The report's 8 KiB message cut comes after scrubbing: a token straddling
/// it is masked whole, not cut into a part that leaks.
#[test]
fn the_message_cut_leaves_no_part_of_a_secret() {
    let mut setup = Setup::new();
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let padding = "data ".repeat(8180 / 5);
    // Long enough to be cut after scrubbing too; the token straddles the
    // cut of the unscrubbed text.
    let message = format!("{padding}{token} {padding}");
    let frame = format!(
        "  File \"{}\", line 1, in step_1\n    {}\n",
        path_form("x"),
        source_form("x")
    );
    let b = Batch {
        text: format!("Traceback (most recent call last):\n{frame}ValueError: {message}\n"),
        message,
        frames: vec![frame],
        markers: vec![],
    };
    for report in setup.reports(&b, "1.7.2") {
        let instance = report["exception-instance"].as_str().unwrap();
        assert!(
            instance.contains("omitted by ect-run"),
            "{}",
            &instance[instance.len() - 200..]
        );
        assert!(
            !instance.contains("ghp_") && !instance.contains("0123456789"),
            "{}",
            &instance[instance.len() - 200..]
        );
    }
}

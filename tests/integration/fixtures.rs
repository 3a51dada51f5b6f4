//! Every checked-in fixture (real output of real Python and Rust programs,
//! see tests/fixtures/*/README.md) against its expected decision, and,
//! where the fixture's process recorded it, the report against what the
//! toolbox's own reporter would send.

use std::fs;
use std::path::Path;

use ect_run::analysis::analyze;
use ect_run::involvement::{Involvement, Rules};
use ect_run::parse::{Chain, Failure};
use ect_run::report;
use ect_run::scrub::Scrubber;
use ect_run::supervise::Exit;
use serde_json::{Value, json};

use crate::support::fixtures;

fn check_dir(dir: &str) -> usize {
    let base = fixtures().join(dir);
    let expected: Vec<Value> =
        serde_json::from_str(&fs::read_to_string(base.join("expected.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    for e in &expected {
        let name = e["file"].as_str().unwrap();
        let raw = fs::read(base.join(name)).unwrap();
        let exit = match (&e["exit"]["code"], &e["exit"]["signal"]) {
            (Value::Number(c), _) => Exit::Code(c.as_i64().unwrap() as i32),
            (_, Value::Number(s)) => Exit::Signal(s.as_i64().unwrap() as i32),
            _ => panic!("{name}: bad exit"),
        };
        let a = analyze(&raw, false, exit, false, &Rules::default());
        let got = match &a.outcome {
            Err(_) => json!({"kind": null}),
            Ok((f, inv)) => json!({
                "kind": f.kind.as_str(),
                "exception_class": f.exception.class,
                "exception_message": f.exception.message,
                "frame_count": f.exception.frames.len(),
                "toolbox_involved": inv.involved,
                "matched_frame": inv.matched_frame,
                "matched_cause": inv.matched_cause,
                "causes": f.chain().take(f.causes.len()).map(|(kind, c)| json!({
                    "kind": kind.as_str(),
                    "exception_class": c.class,
                    "exception_message": c.message,
                    "frame_count": c.frames.len(),
                    "chain": c.chain,
                })).collect::<Vec<_>>(),
            }),
        };
        for key in [
            "kind",
            "exception_class",
            "exception_message",
            "frame_count",
            "toolbox_involved",
            "matched_frame",
            "matched_cause",
            "causes",
        ] {
            if e["kind"].is_null() && key != "kind" {
                continue;
            }
            // Older fixtures leave out what they do not show.
            let want = match (key, e.get(key)) {
                ("causes", None) => continue,
                (_, None) => &Value::Null,
                (_, Some(v)) => v,
            };
            if got[key] != *want {
                failures.push(format!(
                    "{dir}/{name}: {key}: expected {want}, got {}",
                    got[key]
                ));
            }
        }
        if let (Some(hook), Ok((f, inv))) = (e["excepthook"].as_str(), &a.outcome) {
            failures.extend(
                compare_with_excepthook(&base.join(hook), e, f, inv)
                    .into_iter()
                    .map(|m| format!("{dir}/{name}: {m}")),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    expected.len()
}

/// The report against what the toolbox's reporter would send, as the
/// fixture's process recorded it through `sys.excepthook`: the keys in
/// the fixture's `report_matches` (all three by default) must be equal.
/// `traceback-own` compares only the failure's own frames (the start of
/// the list), for failures whose cause was printed in a form Python's
/// `format_tb` cannot give (a worker's traceback is only text in the
/// parent).
fn compare_with_excepthook(hook: &Path, e: &Value, f: &Failure, inv: &Involvement) -> Vec<String> {
    let hook: Value = serde_json::from_str(&fs::read_to_string(hook).unwrap()).unwrap();
    let report = report::build(
        &report::Input {
            failure: f,
            involvement: inv,
            toolbox_version: "unknown",
            exit: Exit::Code(1),
            program: "python",
            timestamp: String::new(),
        },
        &Scrubber::new(None, None),
    );
    let mut want_tb: Vec<Value> = hook["format_tb"].as_array().unwrap().clone();
    if let Some(c) = inv.matched_cause {
        // Python's chain, walked back from the failure: the newest cause
        // first. The report's causes are oldest first.
        // Causes Python does not hold as exceptions with tracebacks (a
        // worker's, a notebook's wrapper, a panic) are not there.
        let causes = hook["causes"].as_array().unwrap();
        let k = f.causes.len() - 1 - c;
        let link = f.causes[c].chain.unwrap_or(Chain::Cause);
        want_tb.push(json!(format!("\n{}\n\n", link.separator())));
        match causes.get(k).and_then(|c| c["format_tb"].as_array()) {
            Some(tb) => want_tb.extend(tb.iter().cloned()),
            None => want_tb.push(json!("(not in the excepthook's record)")),
        }
    }
    let own = hook["format_tb"].as_array().unwrap().len();
    let keys = e["report_matches"].as_array().cloned().unwrap_or_else(|| {
        vec![
            json!("exception-class"),
            json!("exception-instance"),
            json!("traceback"),
        ]
    });
    let mut out = Vec::new();
    for key in keys {
        let (got, want) = match key.as_str().unwrap() {
            "exception-class" => (json!(report.exception_class), hook["class"].clone()),
            "exception-instance" => (json!(report.exception_instance), hook["repr"].clone()),
            "traceback" => (json!(report.traceback), json!(want_tb)),
            "traceback-own" => (
                json!(report.traceback.iter().take(own).collect::<Vec<_>>()),
                hook["format_tb"].clone(),
            ),
            other => panic!("unknown report_matches key {other}"),
        };
        if got != want {
            out.push(format!(
                "report's {key} differs from the excepthook's:\n  got  {got}\n  want {want}"
            ));
        }
    }
    out
}

#[test]
fn python_fixtures() {
    assert!(check_dir("python") >= 40);
}

#[test]
fn forms_fixtures() {
    assert!(check_dir("forms") >= 20);
}

#[test]
fn rust_fixtures() {
    assert!(check_dir("rust") >= 20);
}

/// A tail whose start the capture bound cut off, mid-traceback: the
/// failure is still found, with the frames that are left.
#[test]
fn cut_tails_still_yield_the_failure() {
    let base = fixtures().join("python");
    let expected: Vec<Value> =
        serde_json::from_str(&fs::read_to_string(base.join("expected.json")).unwrap()).unwrap();
    let mut checked = 0;
    for e in &expected {
        let name = e["file"].as_str().unwrap();
        let raw = fs::read(base.join(name)).unwrap();
        let text = String::from_utf8_lossy(&raw);
        // Plain single tracebacks only: cutting into a chain or a group box
        // changes which exception is last.
        let plain = e["kind"] == "python-traceback"
            && text.starts_with("Traceback (most recent call last):")
            && text.matches("Traceback (most recent call last):").count() == 1
            && !text.contains("Exception Group");
        let frames = e["frame_count"].as_u64().unwrap_or(0) as usize;
        if !plain || frames < 3 {
            continue;
        }
        // Cut in the middle of the second frame line: that partial line is
        // dropped, so two frames are lost.
        // (Coloured output has escapes inside its frame lines: not cut.)
        let Some((second, _)) = text.match_indices("  File \"").nth(1) else {
            continue;
        };
        let cut = &raw[second + 5..];
        let a = analyze(cut, true, Exit::Code(1), false, &Rules::default());
        let (f, _) = a
            .outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            f.exception.class,
            e["exception_class"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            f.exception.message,
            e["exception_message"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(f.exception.frames.len(), frames - 2, "{name}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures checked");
}

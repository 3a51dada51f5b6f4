//! Every checked-in fixture (real output of real Python and Rust programs,
//! see tests/fixtures/*/README.md) against its expected decision.

use std::fs;

use ect_run::analysis::analyze;
use ect_run::involvement::Rules;
use ect_run::supervise::Exit;
use serde_json::Value;

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
            Err(_) => serde_json::json!({"kind": null}),
            Ok((f, inv)) => serde_json::json!({
                "kind": f.kind.as_str(),
                "exception_class": f.exception.class,
                "exception_message": f.exception.message,
                "frame_count": f.exception.frames.len(),
                "toolbox_involved": inv.involved,
                "matched_frame": inv.matched_frame,
            }),
        };
        for key in [
            "kind",
            "exception_class",
            "exception_message",
            "frame_count",
            "toolbox_involved",
            "matched_frame",
        ] {
            if e["kind"].is_null() && key != "kind" {
                continue;
            }
            if got[key] != e[key] {
                failures.push(format!(
                    "{dir}/{name}: {key}: expected {}, got {}",
                    e[key], got[key]
                ));
            }
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

#[test]
fn python_fixtures() {
    assert!(check_dir("python") >= 40);
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

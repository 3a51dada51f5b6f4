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

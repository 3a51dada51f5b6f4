//! `ect-run --analyze`: the stable, documented interface.

use predicates::prelude::*;
use serde_json::{Value, json};

use crate::support::{Env, fixtures};

fn analyze_json(env: &Env, file: &str, extra: &[&str]) -> Value {
    let out = env
        .cmd()
        .arg("--analyze")
        .arg(fixtures().join(file))
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn json_for_a_toolbox_traceback() {
    let env = Env::new();
    let got = analyze_json(&env, "python/toolbox_raise_error-3.11.txt", &[]);
    let f = &got["failure"];
    assert_eq!(f["kind"], "python-traceback");
    assert_eq!(f["exception_class"], "Exception");
    assert_eq!(
        f["exception_message"],
        "This is an error to test the reporting functionality."
    );
    assert_eq!(f["toolbox_involved"], true);
    assert_eq!(f["matched_frame"], 2);
    // The fixture's temporary site-packages is gone: the version is unknown.
    assert_eq!(f["toolbox_version"], "unknown");
    assert_eq!(f["frames"].as_array().unwrap().len(), 3);
    let frame = &f["frames"][2];
    assert_eq!(frame["function"], "raise_error");
    assert!(
        frame["file"]
            .as_str()
            .unwrap()
            .ends_with("/esa_climate_toolbox/util/reporting.py")
    );
    let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "kind",
            "exception_class",
            "exception_message",
            "frames",
            "toolbox_involved",
            "matched_frame",
            "toolbox_version",
            "causes"
        ]
    );
}

#[test]
fn version_comes_from_the_environment_when_not_installed() {
    let env = Env::new();
    let mut c = env.cmd();
    c.env("ECT_TOOLBOX_VERSION", "1.8.0")
        .arg("--analyze")
        .arg(fixtures().join("rust/ect_demo_panic_bt1.txt"))
        .arg("--json");
    let out = c.output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failure"]["kind"], "rust-panic");
    assert_eq!(v["failure"]["exception_class"], "panic");
    assert_eq!(v["failure"]["toolbox_version"], "1.8.0");
}

#[test]
fn not_involved_and_user_patterns() {
    let env = Env::new();
    let got = analyze_json(&env, "python/user_zero_division-3.11.txt", &[]);
    assert_eq!(got["failure"]["toolbox_involved"], false);
    assert_eq!(got["failure"]["matched_frame"], Value::Null);
    let got = analyze_json(
        &env,
        "python/user_zero_division-3.11.txt",
        &["--toolbox-pattern", "/work/[a-z_]+\\.py$"],
    );
    assert_eq!(got["failure"]["toolbox_involved"], true);
    // The config file's patterns count too.
    let cfg = env.config_path();
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, r#"{"toolbox_patterns": ["user_zero_division"]}"#).unwrap();
    let got = analyze_json(&env, "python/user_zero_division-3.11.txt", &[]);
    assert_eq!(got["failure"]["toolbox_involved"], true);
}

#[test]
fn stdin_and_summary() {
    let env = Env::new();
    let text = std::fs::read(fixtures().join("python/fatal_segfault_threads-3.11.txt")).unwrap();
    env.cmd()
        .arg("--analyze")
        .write_stdin(text.clone())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Failure: Fatal Python error (python-fatal)",
        ))
        .stdout(predicate::str::contains(
            "Toolbox involved: yes: frame 1 (read_native at ",
        ))
        .stdout(predicate::str::contains(
            "Verdict: would be reported (with consent)",
        ));
    env.cmd()
        .args(["--analyze", "-", "--json"])
        .write_stdin("all fine\n")
        .assert()
        .success()
        .stdout(format!("{}\n", json!({"failure": null})));
}

#[test]
fn bad_input_is_one_clear_line() {
    let env = Env::new();
    env.cmd()
        .args(["--analyze", "/nonexistent/job.err"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(
            "ect-run: cannot read /nonexistent/job.err: ",
        ))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
    env.cmd()
        .args(["--analyze", "-", "--toolbox-pattern", "("])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: invalid value '(' for '--toolbox-pattern <REGEX>': unclosed group\n",
        ));
    env.cmd()
        .args(["--tail-size", "lots", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: invalid value 'lots' for '--tail-size <SIZE>': ",
        ));
}

/// Only the last --tail-size bytes count, from a file or from a pipe, as
/// for a supervised run.
#[test]
fn only_the_tail_is_read() {
    let env = Env::new();
    let tb = std::fs::read(fixtures().join("python/toolbox_raise_error-3.11.txt")).unwrap();
    let junk = "INFO step done\n".repeat(200_000); // 3 MiB
    let at_end = [junk.as_bytes(), &tb].concat();
    let at_start = [&tb, junk.as_bytes()].concat();
    let path = env.path().join("job.err");
    for (text, found) in [(&at_end, true), (&at_start, false)] {
        std::fs::write(&path, text).unwrap();
        let from_file = env
            .cmd()
            .arg("--analyze")
            .arg(&path)
            .arg("--json")
            .output()
            .unwrap();
        let from_pipe = env
            .cmd()
            .args(["--analyze", "-", "--json"])
            .write_stdin(text.clone())
            .output()
            .unwrap();
        for out in [from_file, from_pipe] {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(!v["failure"].is_null(), found, "{v}");
        }
    }
}

/// `--analyze --json FILE`, `--analyze FILE --json` and `--json --analyze
/// FILE` all read FILE (issue 11).
#[test]
fn options_in_any_order() {
    let env = Env::new();
    let file = fixtures().join("forms/futures_toolbox.txt");
    let orders: [&[&str]; 3] = [
        &["--analyze", "--json", "FILE"],
        &["--analyze", "FILE", "--json"],
        &["--json", "--analyze", "FILE"],
    ];
    for order in orders {
        let args: Vec<std::ffi::OsString> = order
            .iter()
            .map(|a| {
                if *a == "FILE" {
                    file.clone().into_os_string()
                } else {
                    (*a).into()
                }
            })
            .collect();
        let out = env.cmd().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{order:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["failure"]["exception_class"], "Exception", "{order:?}");
    }
}

/// A worker's traceback is a cause, and the toolbox shows only there.
#[test]
fn causes_of_a_worker_failure() {
    let env = Env::new();
    let got = analyze_json(&env, "forms/pool_toolbox.txt", &[]);
    let f = &got["failure"];
    assert_eq!(f["toolbox_involved"], true);
    assert_eq!(f["matched_frame"], Value::Null);
    let causes = f["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0]["kind"], "python-traceback");
    assert_eq!(causes[0]["chain"], "cause");
    assert_eq!(causes[0]["matched_frame"], 3);
    assert!(
        causes[0]["frames"][3]["file"]
            .as_str()
            .unwrap()
            .ends_with("/esa_climate_toolbox/util/reporting.py")
    );
    // A pyo3 panic: the PanicException, with the panic as its cause.
    let got = analyze_json(&env, "forms/native_panic_bt1.txt", &[]);
    let f = &got["failure"];
    assert_eq!(f["exception_class"], "pyo3_runtime.PanicException");
    assert_eq!(f["causes"][0]["kind"], "rust-panic");
    assert_eq!(f["toolbox_involved"], true);
}

/// IPython prints home-relative paths as `~/...`: the toolbox's version is
/// still found beside the matched frame, under `$HOME`.
#[test]
fn version_beside_an_ipython_home_path() {
    let env = Env::new();
    let info = env
        .path()
        .join("home/envs/nb/lib/python3.12/site-packages/esa_climate_toolbox-1.7.2.dist-info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(
        info.join("METADATA"),
        "Metadata-Version: 2.1\nName: esa-climate-toolbox\nVersion: 1.7.2\n",
    )
    .unwrap();
    let got = analyze_json(&env, "forms/ipython_chained.txt", &[]);
    assert_eq!(got["failure"]["toolbox_version"], "1.7.2");
}

//! Flood control and the history (issue #10): repeats held back and
//! counted, the daily ceiling, concurrent identical failures sending one
//! report, and `--history` in both forms. Real ect-run processes, a real
//! recording server, `sh` children printing toolbox tracebacks.

use std::process::Stdio;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::Env;
use crate::support::server::TestServer;

/// A failing job; `line` changes the failure's place (and so its
/// fingerprint), `tag` only its message.
fn job(env: &Env, tag: &str, line: u32) -> Vec<String> {
    let tb = env.path().join(format!("tb-{tag}-{line}.txt"));
    std::fs::write(
        &tb,
        format!(
            "Traceback (most recent call last):\n  File \"/opt/env/site-packages/esa_climate_toolbox/ops/subset.py\", line {line}, in subset\n    raise ValueError(\"{tag}\")\nValueError: {tag}\n"
        ),
    )
    .unwrap();
    vec![
        "sh".into(),
        "-c".into(),
        format!("cat '{}' >&2; exit 3", tb.display()),
    ]
}

fn run(env: &Env, tag: &str, line: u32) -> String {
    let out = env
        .cmd()
        .arg("--")
        .args(job(env, tag, line))
        .assert()
        .code(3)
        .get_output()
        .clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn set_config(env: &Env, key: &str, value: Value) {
    let path = env.config_path();
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg[key] = value;
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
}

/// Moves every time flood control remembers two hours into the past, as
/// if the dedup window had passed.
fn age_flood_state(env: &Env) {
    let path = env.path().join("state").join("ect-run").join("flood.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    fn shift(v: &mut Value) {
        match v {
            Value::Number(n) if n.as_u64().is_some() => {
                *v = (n.as_u64().unwrap() - 7200).into();
            }
            Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if k != "suppressed" {
                        shift(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(shift),
            _ => {}
        }
    }
    shift(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

fn history_json(env: &Env, all: bool) -> Vec<Value> {
    let mut c = env.cmd();
    c.args(["--history", "--json"]);
    if all {
        c.arg("--all");
    }
    let out = c.assert().success().get_output().stdout.clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn repeats_are_sent_once_and_counted_after_the_window() {
    let server = TestServer::start();
    let env = Env::new();
    env.consent_to(&server.url());
    let first = run(&env, "run 0", 42);
    assert!(first.contains("report delivered"), "{first}");
    for i in 1..20 {
        let err = run(&env, &format!("run {i}"), 42);
        assert!(
            err.contains(" s ago; not sent again (to http://127.0.0.1")
                && err.contains("same failure reported")
                && err.contains("not sent again"),
            "{err}"
        );
    }
    assert_eq!(server.requests().len(), 1);
    // Other failures are not held back by it.
    run(&env, "elsewhere", 43);
    run(&env, "elsewhere too", 44);
    assert_eq!(server.requests().len(), 3);
    age_flood_state(&env);
    run(&env, "after the window", 42);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[3].json()["repeats-suppressed"], 19);
    assert!(reqs[0].json().get("repeats-suppressed").is_none());

    // The history: 23 runs of 3 failures, newest first.
    let grouped = history_json(&env, false);
    assert_eq!(grouped.len(), 3);
    assert_eq!(grouped[0]["count"], 21);
    assert_eq!(grouped[0]["message"], "after the window");
    assert_eq!(grouped[0]["class"], "ValueError");
    assert_eq!(grouped[0]["kind"], "python-traceback");
    assert_eq!(grouped[0]["exit_status"], 3);
    assert_eq!(grouped[0]["command"], "sh");
    assert_eq!(grouped[0]["toolbox_involved"], true);
    assert_eq!(grouped[0]["destinations"][0]["outcome"], "delivered");
    let all = history_json(&env, true);
    assert_eq!(all.len(), 23);
    let repeats = all
        .iter()
        .filter(|e| e["destinations"][0]["outcome"] == "suppressed-repeat")
        .count();
    assert_eq!(repeats, 19);
    env.cmd()
        .arg("--history")
        .assert()
        .success()
        .stdout(predicate::str::contains("×21"))
        .stdout(predicate::str::contains("ValueError: after the window"))
        .stdout(predicate::str::contains("delivered http://127.0.0.1"));
    assert_eq!(
        env.cmd()
            .args(["--history", "--all"])
            .assert()
            .success()
            .get_output()
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        23
    );
}

#[test]
fn a_zero_window_sends_every_repeat() {
    let server = TestServer::start();
    let env = Env::new();
    env.consent_to(&server.url());
    set_config(&env, "dedup_window", 0.into());
    for i in 0..3 {
        run(&env, &format!("r{i}"), 7);
    }
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn the_daily_ceiling_holds_and_says_how_to_raise_it() {
    let server = TestServer::start();
    let env = Env::new();
    env.consent_to(&server.url());
    set_config(&env, "max_reports_per_day", 3.into());
    for line in 1..=5 {
        let err = run(&env, "ceiling", line);
        let said = err.matches("max_reports_per_day").count();
        assert_eq!(said, usize::from(line > 3), "line {line}: {err}");
    }
    assert_eq!(server.requests().len(), 3);
    let all = history_json(&env, true);
    assert_eq!(all[0]["destinations"][0]["outcome"], "suppressed-ceiling");
    // A bad value turns reporting off for the run, naming the key; the
    // command still runs.
    set_config(&env, "max_reports_per_day", "many".into());
    let err = run(&env, "bad config", 9);
    assert!(err.contains("max_reports_per_day"), "{err}");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn fifty_concurrent_identical_failures_send_one_report() {
    let server = TestServer::start();
    let env = Env::new();
    env.consent_to(&server.url());
    let children: Vec<_> = (0..50)
        .map(|i| {
            env.std_cmd()
                .arg("--")
                .args(job(&env, &format!("array task {i}"), 100))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert_eq!(c.wait().unwrap().code(), Some(3));
    }
    assert_eq!(server.requests().len(), 1);
    let all = history_json(&env, true);
    assert_eq!(
        all.len(),
        50,
        "every run recorded, none lost or interleaved"
    );
}

#[test]
fn a_damaged_history_is_read_around() {
    let env = Env::new();
    run(&env, "one", 1);
    let path = env
        .path()
        .join("state")
        .join("ect-run")
        .join("history.jsonl");
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(b"{\"time\": \"2026-\n\xff\xfe not json\n");
    std::fs::write(&path, text).unwrap();
    run(&env, "two", 2);
    env.cmd()
        .args(["--history", "--all"])
        .assert()
        .success()
        .stderr(predicate::str::contains("skipped 2 damaged line(s)"))
        .stdout(predicate::str::contains("ValueError: one"))
        .stdout(predicate::str::contains("ValueError: two"))
        .stdout(predicate::str::contains(
            "[not-consented http://localhost:9898]",
        ));
}

//! ect-run as a transparent supervisor (issue #3): status, streams, signals.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::Env;

/// A spawnable ect-run, for the tests that talk to it while it runs.
fn bin(env: &Env) -> StdCommand {
    let mut c = env.std_cmd();
    c.env("DO_NOT_TRACK", "1");
    c
}

#[test]
fn exit_codes_are_mirrored() {
    let env = Env::new();
    for code in [0, 1, 3, 42, 255] {
        env.cmd()
            .args(["--", "sh", "-c", &format!("exit {code}")])
            .assert()
            .code(code);
    }
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let env = Env::new();
    for (sig, code) in [("SEGV", 139), ("ABRT", 134), ("KILL", 137), ("TERM", 143)] {
        env.cmd()
            .args(["--", "sh", "-c", &format!("ulimit -c 0; kill -{sig} $$")])
            .assert()
            .code(code);
    }
}

#[test]
fn command_not_found_is_127() {
    Env::new()
        .cmd()
        .args(["--", "no-such-command-ect-test"])
        .assert()
        .code(127)
        .stderr("ect-run: command not found: no-such-command-ect-test\n");
}

#[test]
fn not_executable_is_126() {
    let env = Env::new();
    let script = env.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    env.cmd()
        .arg("--")
        .arg(&script)
        .assert()
        .code(126)
        .stderr(predicate::str::starts_with("ect-run: cannot execute "))
        .stderr(predicate::str::contains("Permission denied"));
}

#[test]
fn missing_command_is_a_usage_error() {
    Env::new()
        .cmd()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ect-run: no command to run."));
    Env::new()
        .cmd()
        .arg("ls")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-- ls"));
}

/// Every byte value, NULs and invalid UTF-8 included, on both streams, and
/// a last line without newline.
#[test]
fn streams_are_byte_exact() {
    let prog = "import sys\n\
        data = bytes(range(256)) * 3 + b'\\xff\\xfe invalid \\x00 nul\\nlast line, no newline'\n\
        sys.stdout.buffer.write(data); sys.stdout.flush()\n\
        sys.stderr.buffer.write(data[::-1] + b'tail'); sys.stderr.flush()\n";
    let out = Env::new()
        .cmd()
        .args(["--", "python3", "-c", prog])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut data: Vec<u8> = (0..=255u8).collect::<Vec<_>>().repeat(3);
    data.extend_from_slice(b"\xff\xfe invalid \x00 nul\nlast line, no newline");
    assert_eq!(out.stdout, data);
    let mut rev: Vec<u8> = data.iter().rev().copied().collect();
    rev.extend_from_slice(b"tail");
    assert_eq!(out.stderr, rev);
}

#[test]
fn stdin_is_passed_through() {
    Env::new()
        .cmd()
        .args(["--", "sh", "-c", "cat; echo done >&2"])
        .write_stdin("line one\nline two")
        .assert()
        .success()
        .stdout("line one\nline two")
        .stderr("done\n");
}

#[test]
fn arguments_environment_and_directory_are_the_childs() {
    let env = Env::new();
    env.cmd()
        .current_dir(env.path())
        .env("ECT_TEST_VAR", "value with spaces")
        .args([
            "--",
            "sh",
            "-c",
            "printf '%s|' \"$@\"; printf '%s|%s' \"$ECT_TEST_VAR\" \"$(pwd -P)\"",
            "sh",
            "a b",
            "--flag",
            "",
        ])
        .assert()
        .success()
        .stdout(format!(
            "a b|--flag||value with spaces|{}",
            env.path().canonicalize().unwrap().display()
        ));
}

/// A partial line must show up while the child still runs.
#[test]
fn partial_stderr_line_is_passed_at_once() {
    let env = Env::new();
    let mut child = bin(&env)
        .args(["--", "sh", "-c", "printf partial >&2; sleep 5"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 7];
        let r = stderr.read_exact(&mut buf).map(|()| buf);
        let _ = tx.send(r.ok());
    });
    let got = rx.recv_timeout(Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        got.ok().flatten().as_ref().map(|b| &b[..]),
        Some(&b"partial"[..])
    );
}

/// Our stderr closed under us: the child still runs to its end, and its
/// status is still ours.
#[test]
fn broken_stderr_pipe_does_not_disturb_the_child() {
    let env = Env::new();
    let marker = env.path().join("finished");
    let script = format!(
        "head -c 2000000 /dev/zero >&2; echo more >&2; touch '{}'; exit 5",
        marker.display()
    );
    let mut child = bin(&env)
        .args(["--", "sh", "-c", &script])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away: writes get EPIPE
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5));
    assert!(marker.exists(), "the child did not run to its end");
}

/// Waits for the child's "ready" on stdout, sends `sig` to ect-run alone,
/// and returns ect-run's status and stderr.
fn signal_supervisor(sig: i32) -> (Option<i32>, String) {
    let prog = "import signal, sys, time\n\
        def on(s, f):\n    sys.stderr.write('child got %d\\n' % s); sys.exit(s)\n\
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):\n    signal.signal(s, on)\n\
        print('ready', flush=True)\n\
        time.sleep(20)\n";
    let env = Env::new();
    let mut child = bin(&env)
        .args(["--", "python3", "-c", prog])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: kill(2) on our own child process.
    unsafe { libc::kill(child.id() as i32, sig) };
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "signal {sig} did not end the child"
    );
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn signals_sent_to_supervisor_reach_the_child_once() {
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
        let (code, err) = signal_supervisor(sig);
        assert_eq!(code, Some(sig), "signal {sig}: stderr {err:?}");
        assert_eq!(err.matches("child got").count(), 1, "signal {sig}: {err:?}");
    }
}

#[test]
fn help_and_version() {
    let env = Env::new();
    env.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ect-run -- python run_analysis.py",
        ))
        .stdout(predicate::str::contains(
            "ect-run -- papermill in.ipynb out.ipynb",
        ))
        .stdout(predicate::str::contains("ect-run --consent"))
        .stdout(predicate::str::contains("ect-run --test-failure"));
    // Alone: the ways of use and the next step, as a usage error.
    env.cmd()
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "ect-run -- python run_analysis.py",
        ))
        .stderr(predicate::str::contains("Next: `ect-run --status`"));
    env.cmd()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("ect-run {}\n", env!("CARGO_PKG_VERSION")));
}

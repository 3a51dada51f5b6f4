//! ect-run as a transparent supervisor (issues #3 and #12): status,
//! streams, signals, orphans, and our own stderr failing.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::support::server::TestServer;
use crate::support::{Env, install_fake_toolbox, script};

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

/// A child that says "ready PID", then one line per signal it gets (with
/// os.write: print() in a handler may re-enter print's own buffer).
const COUNTING_CHILD: &str = "import os, signal, sys, time\n\
    def on(s, f):\n    os.write(1, b'got %d\\n' % s)\n\
    for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGWINCH, signal.SIGCONT):\n    signal.signal(s, on)\n\
    print('ready %d' % os.getpid(), flush=True)\n\
    while True:\n    time.sleep(1)\n";

fn send(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(pid as i32, sig) };
}

/// The state letter of a process (R, S, T, Z...), None once it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lines of a child's stdout, read on a thread so that a test fails
/// instead of hanging when an orphan keeps the pipe open.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn new(out: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next line; None at end of output or after 10 s.
    fn next(&self) -> Option<String> {
        self.0.recv_timeout(Duration::from_secs(10)).ok()
    }
}

/// Kills a process this test started (a child ect-run may have orphaned)
/// when the test ends, however it ends.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(proc_state(self.0), Some(s) if s != 'Z') {
            send(self.0, libc::SIGKILL);
        }
    }
}

/// Every catchable signal sent to ect-run alone reaches the child exactly
/// once; the job-control ones stop the child and ect-run, and SIGCONT
/// continues both.
#[test]
fn every_signal_is_forwarded_once() {
    let env = Env::new();
    // In a process group of its own, whose parent (this test) is outside
    // it: not orphaned, so the job-control signals stop (in an orphaned
    // group, as under `setsid`, the kernel discards them: see the next
    // test).
    let mut ect = bin(&env)
        .args(["--", "python3", "-c", COUNTING_CHILD])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _ect_guard = KillOnDrop(ect.id());
    let out = Lines::new(ect.stdout.take().unwrap());
    let ready = out.next().expect("the child did not start");
    let child: u32 = ready.strip_prefix("ready ").unwrap().parse().unwrap();
    let _child_guard = KillOnDrop(child);
    for sig in [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGWINCH,
        libc::SIGCONT,
    ] {
        send(ect.id(), sig);
        assert_eq!(out.next(), Some(format!("got {sig}")), "signal {sig}");
    }
    for sig in [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
        send(ect.id(), sig);
        let mut status = 0;
        // SAFETY: waitpid on our own child, reporting stops too.
        let r = unsafe { libc::waitpid(ect.id() as i32, &mut status, libc::WUNTRACED) };
        assert_eq!(r, ect.id() as i32);
        assert!(
            libc::WIFSTOPPED(status),
            "signal {sig}: ect-run not stopped"
        );
        wait_until("the child is stopped", || proc_state(child) == Some('T'));
        send(ect.id(), libc::SIGCONT);
        assert_eq!(
            out.next(),
            Some(format!("got {}", libc::SIGCONT)),
            "after {sig}"
        );
        assert_ne!(proc_state(child), Some('T'));
    }
    send(ect.id(), libc::SIGTERM);
    let status = ect.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert_eq!(out.next(), None, "a signal arrived twice");
}

/// In an orphaned process group (here ect-run leads a session of its own),
/// the kernel discards a job-control stop for a process that has not
/// caught it: the child runs on, and so does ect-run, which still forwards
/// what comes next.
#[cfg(target_os = "linux")]
#[test]
fn job_control_stops_nothing_in_an_orphaned_group() {
    let env = Env::new();
    let mut cmd = bin(&env);
    cmd.args(["--", "python3", "-c", COUNTING_CHILD])
        .stdout(Stdio::piped());
    // SAFETY: setsid(2) in the child before exec; no allocation.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut ect = cmd.spawn().unwrap();
    let _ect_guard = KillOnDrop(ect.id());
    let out = Lines::new(ect.stdout.take().unwrap());
    let ready = out.next().expect("the child did not start");
    let child: u32 = ready.strip_prefix("ready ").unwrap().parse().unwrap();
    let _child_guard = KillOnDrop(child);
    for sig in [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
        send(ect.id(), sig);
        // A stopped ect-run would not forward this.
        send(ect.id(), libc::SIGUSR1);
        assert_eq!(
            out.next(),
            Some(format!("got {}", libc::SIGUSR1)),
            "after {sig}"
        );
        assert_ne!(proc_state(ect.id()), Some('T'), "ect-run stopped by {sig}");
        assert_ne!(proc_state(child), Some('T'), "child stopped by {sig}");
    }
    send(ect.id(), libc::SIGTERM);
    let status = ect.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
}

/// `kill -9` of ect-run takes the child with it.
#[cfg(target_os = "linux")]
#[test]
fn child_dies_with_killed_supervisor() {
    let env = Env::new();
    let mut ect = bin(&env)
        .args(["--", "sh", "-c", "echo $$; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = Lines::new(ect.stdout.take().unwrap()).next();
    let child: u32 = line.expect("the child did not start").parse().unwrap();
    let _child_guard = KillOnDrop(child);
    assert!(proc_state(child).is_some());
    ect.kill().unwrap(); // SIGKILL
    ect.wait().unwrap();
    // Gone, or a zombie left for an init that does not reap: not running.
    wait_until("the child is gone", || {
        matches!(proc_state(child), None | Some('Z'))
    });
}

/// As PID 1 (a container's init), ect-run reaps the orphans the kernel
/// hands it while the child runs, and still returns the child's status.
#[cfg(target_os = "linux")]
#[test]
fn pid_1_reaps_orphans() {
    let probe = StdCommand::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("skipped: `unshare --pid --fork --mount-proc` is not available here");
        return;
    }
    // The orphan: a `sleep` whose parent (a subshell) exits at once. Its
    // pid stays in /proc while it is a zombie, so it is gone only if reaped.
    let job = "p=$( sleep 0.1 >/dev/null 2>&1 & echo $! ); i=0; \
        while [ -e /proc/$p ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
        if [ -e /proc/$p ]; then echo \"orphan $p not reaped: $(cat /proc/$p/stat)\" >&2; exit 8; fi; \
        [ $$ = 2 ] || { echo \"child is pid $$, not 2\" >&2; exit 9; }; exit 7";
    let env = Env::new();
    let out = StdCommand::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(assert_cmd::cargo::cargo_bin("ect-run"))
        .args(["--", "sh", "-c", job])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.path())
        .env("DO_NOT_TRACK", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A background process that keeps the child's stderr: ect-run returns at
/// once, and the process's later writes still reach the original stderr.
#[test]
fn background_process_keeps_its_stderr() {
    let env = Env::new();
    let err_path = env.path().join("stderr.txt");
    let go = env.path().join("returned");
    let wrote = env.path().join("wrote");
    let job = format!(
        "( while [ ! -e '{go}' ]; do sleep 0.02; done; sleep 2; echo late line >&2 && touch '{wrote}' ) & \
         echo early line >&2; exit 3",
        go = go.display(),
        wrote = wrote.display()
    );
    let start = Instant::now();
    let status = bin(&env)
        .args(["--", "sh", "-c", &job])
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let took = start.elapsed();
    std::fs::write(&go, "").unwrap();
    assert_eq!(status.code(), Some(3));
    // The writer waits 2 s after we returned; we must not have waited for
    // it (5x margin).
    assert!(
        took * 5 < Duration::from_secs(2),
        "ect-run waited for the background process: {took:?}"
    );
    wait_until("the background line is written", || wrote.exists());
    // Written into the pipe; the forwarder copies it on when it next runs.
    wait_until("the forwarder copies the line on", || {
        std::fs::read_to_string(&err_path).is_ok_and(|t| t.len() >= "early line\nlate line\n".len())
    });
    let text = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(text, "early line\nlate line\n");
}

const TOOLBOX_FAILURE: &str = "from esa_climate_toolbox.util.reporting import FailureReporter\n\
    FailureReporter.raise_error()\n";

/// ect-run's own stderr a broken pipe (`2>&1 | head -c 1`) or closed
/// (`2>&-`): the status is the command's, and the report still arrives.
#[test]
fn broken_or_closed_stderr_keeps_status_and_report() {
    for redirect in ["2>&1 | head -c 1", "2>&-"] {
        let server = TestServer::start();
        let env = Env::new();
        let site = install_fake_toolbox(&env);
        let job = script(&env, "job.py", TOOLBOX_FAILURE);
        env.consent_to(&server.url());
        let ect = env.std_cmd();
        let vars: Vec<_> = ect
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
            .collect();
        let line = format!("\"$@\" {redirect}; exit ${{PIPESTATUS[0]}}");
        let out = StdCommand::new("bash")
            .args(["-c", &line, "bash"])
            .arg(ect.get_program())
            .args(["--", "python3"])
            .arg(&job)
            .env_clear()
            .envs(vars)
            .env("PYTHONPATH", &site)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{redirect}: {out:?}");
        let reqs = server.wait_for_requests(1, Duration::from_secs(10));
        assert_eq!(reqs.len(), 1, "{redirect}: no report arrived");
        assert!(
            String::from_utf8_lossy(&reqs[0].body).contains(crate::support::TEST_MESSAGE),
            "{redirect}"
        );
    }
}

/// Started with SIGCHLD and SIGTERM blocked (some launchers do): ect-run
/// still learns that the child ended (here after closing its stderr, so
/// only SIGCHLD can tell), and still forwards.
#[test]
fn inherited_blocked_signals_are_unblocked() {
    let env = Env::new();
    let ect = assert_cmd::cargo::cargo_bin("ect-run");
    let launcher = "import os, signal, sys\n\
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM})\n\
        os.execv(sys.argv[1], sys.argv[1:])\n";
    let mut child = StdCommand::new("python3")
        .args(["-c", launcher])
        .arg(&ect)
        .args(["--", "sh", "-c", "exec 2>&-; sleep 0.2; exit 4"])
        .env("DO_NOT_TRACK", "1")
        .env("HOME", env.path())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "ect-run never saw its child end");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(4));
}

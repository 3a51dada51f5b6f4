//! Running the child: start it with duct, pass signals on, wait, and turn its
//! end into an exit status that a shell would show.
//!
//! Invariants: stdin and stdout are inherited (the child sees our terminal);
//! stderr goes through [`crate::capture`]. The child is always waited for, so
//! no child is left running when [`run`] returns. Signals are handled the way
//! `just` does it: a signal the terminal sends (Ctrl-C, Ctrl-\, hang-up)
//! reaches the whole foreground process group, child included, so we do not
//! send it again (it would arrive twice); a signal some process sent to us
//! alone (`kill PID`, a batch scheduler) is forwarded to the child. Either
//! way we do not die of it while the child runs: we wait and mirror its
//! status.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

use crate::capture::{Captured, Tee};

/// The signals we stand firm against while the child runs.
const FORWARDED: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// How long to keep reading stderr after the child exited, when a grandchild
/// still holds the pipe open. Data already in the pipe is read at once.
const DRAIN_GRACE: Duration = Duration::from_millis(250);

/// What is run.
#[derive(Debug, Clone)]
pub struct Command {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Extra environment for the child (used by `--test-failure`).
    pub env: Vec<(OsString, OsString)>,
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    fn from_status(status: ExitStatus) -> Exit {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            // Neither: cannot happen on Unix; report a generic failure.
            (None, None) => Exit::Code(1),
        }
    }

    /// The status a shell would show for this end: the code, or 128+N for
    /// death by signal N.
    pub fn shell_code(self) -> u8 {
        match self {
            Exit::Code(c) => (c & 0xff) as u8,
            Exit::Signal(s) => (128 + s).clamp(0, 255) as u8,
        }
    }

    pub fn succeeded(self) -> bool {
        self == Exit::Code(0)
    }
}

/// The finished run.
#[derive(Debug)]
pub struct Finished {
    pub exit: Exit,
    pub stderr: Captured,
    /// The user pressed Ctrl-C (a SIGINT from the terminal reached us) while
    /// the child ran: whatever it printed then is not a failure to report.
    pub interrupted_by_user: bool,
    /// Our signal handling, still installed: from now on a signal ends
    /// ect-run at once with the child's status (a report being delivered
    /// is already safe in the outbox). Dropping it restores nothing, as we
    /// are about to exit anyway.
    pub signals: SignalGuard,
}

/// Why the child could not be started; each maps to the shell's status.
#[derive(Debug)]
pub enum StartError {
    /// exit 127
    NotFound(OsString),
    /// exit 126
    NotExecutable(OsString, io::Error),
    Other(OsString, io::Error),
}

impl StartError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::NotFound(_) => 127,
            StartError::NotExecutable(..) => 126,
            StartError::Other(..) => 126,
        }
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::NotFound(p) => {
                write!(f, "command not found: {}", p.to_string_lossy())
            }
            StartError::NotExecutable(p, e) => write!(
                f,
                "cannot execute {}: {} (check that it is a program and has execute permission)",
                p.to_string_lossy(),
                plain_io_error(e)
            ),
            StartError::Other(p, e) => {
                write!(
                    f,
                    "cannot start {}: {}",
                    p.to_string_lossy(),
                    plain_io_error(e)
                )
            }
        }
    }
}

impl std::error::Error for StartError {}

/// An io::Error's message without the "(os error N)" suffix.
fn plain_io_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Runs `command` to completion, teeing its stderr into a tail of
/// `tail_limit` bytes.
pub fn run(command: &Command, tail_limit: usize) -> Result<Finished, StartError> {
    let guard =
        SignalGuard::install().map_err(|e| StartError::Other(command.program.clone(), e))?;

    let (reader, writer) =
        os_pipe::pipe().map_err(|e| StartError::Other(command.program.clone(), e))?;
    // The tee starts first: once the child runs, nothing may fail before
    // we wait for it. Should the start fail, the write end is dropped with
    // the expression and the tee ends on end-of-file.
    let tee = Tee::start(reader, io::stderr(), tail_limit)
        .map_err(|e| StartError::Other(command.program.clone(), e))?;
    let mut expr = duct::cmd(&command.program, &command.args)
        .stderr_file(writer)
        .unchecked();
    for (k, v) in &command.env {
        expr = expr.env(k, v);
    }
    let started = expr.start();
    // The expression holds our copy of the pipe's write end: drop it so the
    // reader sees end-of-file when the child (and its children) are done.
    drop(expr);
    let handle = started.map_err(|e| classify_start_error(&command.program, e))?;
    if let Some(&pid) = handle.pids().first() {
        guard.set_child(pid as i32);
    }

    let exit = loop {
        match handle.wait() {
            Ok(out) => break Exit::from_status(out.status),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // waitpid failed for a reason other than EINTR: the child is not
            // ours to wait for any more. Kill it to keep our promise that no
            // child outlives us, then report a generic failure.
            Err(_) => {
                let _ = handle.kill();
                break Exit::Code(1);
            }
        }
    };
    guard.child_reaped();
    guard.exit_on_signal(exit.shell_code());
    let interrupted_by_user = guard.user_interrupt.load(Ordering::SeqCst);
    let stderr = tee.finish(DRAIN_GRACE);
    Ok(Finished {
        exit,
        stderr,
        interrupted_by_user,
        signals: guard,
    })
}

fn classify_start_error(program: &OsString, e: io::Error) -> StartError {
    match e.kind() {
        io::ErrorKind::NotFound => StartError::NotFound(program.clone()),
        io::ErrorKind::PermissionDenied => StartError::NotExecutable(program.clone(), e),
        _ if e.raw_os_error() == Some(libc::ENOEXEC) => {
            StartError::NotExecutable(program.clone(), e)
        }
        _ => StartError::Other(program.clone(), e),
    }
}

/// Our signal handlers for the lifetime of one child, and after it.
pub struct SignalGuard {
    handle: signal_hook::iterator::Handle,
    thread: Option<thread::JoinHandle<()>>,
    child: Arc<AtomicI32>,
    user_interrupt: Arc<AtomicBool>,
    /// -1 while the child runs; then the status to exit with on a signal.
    exit_code: Arc<AtomicI32>,
}

impl std::fmt::Debug for SignalGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalGuard")
            .field("child", &self.child)
            .finish_non_exhaustive()
    }
}

impl SignalGuard {
    /// Installs handlers before the child starts, so no signal in between
    /// can kill us. The handlers are reset to the default in the child by
    /// `exec` (caught signals always are), so the child is unaffected.
    fn install() -> io::Result<SignalGuard> {
        let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED)?;
        let handle = signals.handle();
        let child = Arc::new(AtomicI32::new(0));
        let user_interrupt = Arc::new(AtomicBool::new(false));
        let exit_code = Arc::new(AtomicI32::new(-1));
        let (c, u, x) = (
            Arc::clone(&child),
            Arc::clone(&user_interrupt),
            Arc::clone(&exit_code),
        );
        let thread = thread::Builder::new()
            .name("ect-run-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    let code = x.load(Ordering::SeqCst);
                    if code >= 0 {
                        // The child is done: whoever signals wants us gone.
                        crate::shutdown::exit(code);
                    }
                    // The terminal driver sends with SI_KERNEL. Anything else
                    // (kill, sigqueue, or a cause we cannot tell) is
                    // forwarded: a signal twice beats a signal lost.
                    let from_terminal = origin.cause == Cause::Kernel;
                    if origin.signal == SIGINT && from_terminal {
                        u.store(true, Ordering::SeqCst);
                    }
                    if from_terminal {
                        // The terminal sent it to the whole process group: the
                        // child has it already.
                        continue;
                    }
                    // A signal can come between installing and spawning: wait
                    // (briefly) for the child's pid rather than lose it.
                    let mut pid = c.load(Ordering::SeqCst);
                    for _ in 0..2000 {
                        if pid != 0 {
                            break;
                        }
                        thread::sleep(Duration::from_millis(1));
                        pid = c.load(Ordering::SeqCst);
                    }
                    let sender = origin.process.map(|p| p.pid);
                    // pid <= 0: no child (start failed) or already reaped. And
                    // a signal the child sent us must not bounce back to it.
                    if pid > 0 && sender != Some(pid) {
                        forward(pid, origin.signal);
                    }
                }
            })?;
        Ok(SignalGuard {
            handle,
            thread: Some(thread),
            child,
            user_interrupt,
            exit_code,
        })
    }

    fn set_child(&self, pid: i32) {
        self.child.store(pid, Ordering::SeqCst);
    }

    /// The child has been reaped: its pid may be reused, so stop forwarding.
    fn child_reaped(&self) {
        self.child.store(-1, Ordering::SeqCst);
    }

    fn exit_on_signal(&self, code: u8) {
        self.exit_code.store(i32::from(code), Ordering::SeqCst);
    }

    fn stop(&mut self) {
        self.child_reaped();
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn forward(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions. The pid is our own
    // child; it is marked reaped right after waitpid returns, which leaves
    // only the same tiny reuse window every supervisor has.
    unsafe {
        libc::kill(pid, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_codes() {
        assert_eq!(Exit::Code(0).shell_code(), 0);
        assert_eq!(Exit::Code(255).shell_code(), 255);
        assert_eq!(Exit::Signal(9).shell_code(), 137);
        assert_eq!(Exit::Signal(11).shell_code(), 139);
    }
}

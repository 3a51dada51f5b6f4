//! Running the child: start it, pass signals on, copy its stderr, wait,
//! and turn its end into an exit status that a shell would show.
//!
//! Invariants: stdin and stdout are inherited (the child sees our terminal);
//! stderr goes through a pipe to us and on to ours ([`crate::capture`]). The
//! child is always waited for. Everything happens on the calling thread: one
//! `poll` loop over the stderr pipe and a self-pipe that the signal handler
//! wakes, so starting costs no thread and one `sigaction` per signal.
//!
//! Signals the way `just` and tini do it: a signal the terminal sends
//! (Ctrl-C, Ctrl-\, Ctrl-Z, hang-up) reaches the whole foreground process
//! group, child included, so we do not send it again (it would arrive
//! twice); a signal some process sent to us alone (`kill PID`, a batch
//! scheduler) is forwarded to the child from the handler itself, so it goes
//! on at once even while we are blocked writing to a slow stderr. Either
//! way we do not die of it while the child runs: we wait and mirror its
//! status. The job-control signals stop the child, then us, as tini and
//! dumb-init do; SIGCONT then continues both.
//!
//! On Linux the child is also killed if we die by any means (even
//! SIGKILL), and when we are PID 1 (a container's init) we reap every
//! orphan the kernel hands us while the child runs.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use crate::capture::{Captured, Copier};

/// The signals passed on to the child while it runs: every one a process
/// can catch whose default would end or stop us, or that a program may
/// act on (SIGWINCH, SIGCONT). SIGCHLD is ours; SIGPIPE stays ignored (the
/// Rust runtime's default), as a pipe of ours breaking is not the child's
/// business; faults (SEGV, BUS, ...) are our own.
const FORWARDED: [i32; 12] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// Most bytes read from the pipe after the child exited before the rest is
/// left to a forwarder: what was already in the pipe (64 KiB by default, up
/// to 1 MiB if the child made it larger), not a grandchild's endless output.
const DRAIN_LIMIT: usize = 1 << 20;

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

/// The finished run. Our signal handlers stay installed: from now on a
/// signal that would end ect-run ends it at once with the child's status
/// (a report being delivered is already safe in the outbox).
#[derive(Debug)]
pub struct Finished {
    pub exit: Exit,
    pub stderr: Captured,
    /// The user pressed Ctrl-C (a SIGINT from the terminal reached us) while
    /// the child ran: whatever it printed then is not a failure to report.
    pub interrupted_by_user: bool,
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
    let other = |e| StartError::Other(command.program.clone(), e);
    let wake = install_handlers().map_err(other)?;
    let (reader, writer) = os_pipe::pipe().map_err(other)?;
    let reader = std::fs::File::from(above_stdio(reader.into()).map_err(other)?);
    let writer = above_stdio(writer.into()).map_err(other)?;

    let spawned = spawn(command, writer);
    // `spawn` consumed our copy of the pipe's write end, so the reader sees
    // end-of-file when the child (and its children) are done.
    let pid = spawned.map_err(|e| classify_start_error(&command.program, e))?;
    CHILD.store(pid, Ordering::SeqCst);
    // Signals that came between installing the handlers and now.
    let pending = PENDING.swap(0, Ordering::SeqCst);
    for sig in FORWARDED {
        if pending & (1 << sig) != 0 {
            forward(pid, sig);
        }
    }

    let init = std::process::id() == 1;
    let mut copier = Copier::new(tail_limit);
    let mut stderr = io::stderr();
    let mut pipe_open = true;
    // Whether the child may have ended: at first, and after each wake-up
    // or interruption by a signal (not after each chunk of stderr).
    let mut look = true;
    let exit = loop {
        if look {
            if let Some(exit) = reap(pid, init) {
                break exit;
            }
            look = false;
        }
        let mut fds = [
            libc::pollfd {
                fd: if pipe_open { reader.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            // EINTR (a signal came); anything else cannot happen with
            // valid fds, and the loop re-checks the child either way.
            look = true;
            continue;
        }
        if fds[1].revents != 0 {
            drain_wake(&wake);
            look = true;
        }
        if pipe_open && fds[0].revents != 0 {
            match copier.pump(&reader, &mut stderr) {
                // End of file: the child has most likely ended (SIGCHLD may
                // not have woken us yet); look before waiting again.
                Ok(0) => {
                    pipe_open = false;
                    look = true;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => pipe_open = false,
            }
        }
    };
    CHILD.store(-1, Ordering::SeqCst);
    EXIT_CODE.store(i32::from(exit.shell_code()), Ordering::SeqCst);

    // The child is gone. What it wrote is in the pipe already: read it
    // now, without waiting. If the pipe is still open, some process the
    // child started holds it; a detached forwarder keeps passing its
    // output on, and we return at once.
    if pipe_open && !copier.drain(&reader, &mut stderr, DRAIN_LIMIT) {
        let _ = forward_rest(reader, &wake);
    }
    Ok(Finished {
        exit,
        stderr: copier.finish(),
        interrupted_by_user: USER_INTERRUPT.load(Ordering::SeqCst),
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

/// Moves `fd` above 0-2 if it landed there (our own stdin, stdout or
/// stderr was closed): it must not be mistaken for one of them, by us or
/// by the child.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on an fd we own returns a new fd or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Starts the child with `stderr` as its stderr and returns its pid.
///
/// On Linux the child gets SIGKILL when we die, whatever kills us
/// (`PR_SET_PDEATHSIG`): no job is left running unsupervised, writing to a
/// pipe nobody reads. The request has to be made by the child between
/// clone and exec, which std can only do with a full `fork` (page tables
/// copied, then a copy-on-write fault for every page we touch after). So
/// this does what glibc's `posix_spawn` does, with the request added: a
/// `clone(CLONE_VM | CLONE_VFORK)` child on its own stack that sets up and
/// calls `execvpe`, while we wait for the exec.
#[cfg(target_os = "linux")]
fn spawn(command: &Command, stderr: OwnedFd) -> io::Result<i32> {
    use std::ffi::{CString, OsStr};
    use std::os::unix::ffi::OsStrExt;

    fn c_string(s: &OsStr) -> io::Result<CString> {
        CString::new(s.as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in an argument"))
    }
    fn pair(k: &OsStr, v: &OsStr) -> io::Result<CString> {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        CString::new(kv).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the environment")
        })
    }
    fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
        strings
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    }

    let program = c_string(&command.program)?;
    let mut args = vec![program.clone()];
    for a in &command.args {
        args.push(c_string(a)?);
    }
    // Our environment as it is, as std and posix_spawn pass it (copying
    // it would cost every start); with the command's own additions, a
    // new one.
    let mut env = Vec::new();
    if !command.env.is_empty() {
        for (k, v) in std::env::vars_os() {
            if !command.env.iter().any(|(ek, _)| *ek == k) {
                env.push(pair(&k, &v)?);
            }
        }
        for (k, v) in &command.env {
            env.push(pair(k, v)?);
        }
    }
    let argv = pointers(&args);
    let own_env = pointers(&env);
    // SAFETY: reading the C library's `environ` pointer; nothing on this
    // (the only) thread changes the environment meanwhile.
    let ours = unsafe { environ };
    // (Null after `clearenv`: then the empty list.)
    let envp = if command.env.is_empty() && !ours.is_null() {
        ours
    } else {
        own_env.as_ptr()
    };
    let mut spawn = Spawn {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp,
        stderr: stderr.as_raw_fd(),
        parent: std::process::id() as libc::pid_t,
        errno: 0,
    };
    // execvpe may run a script through /bin/sh, building its argv on the
    // stack: room for that, and for the deepest libc call.
    let mut stack = vec![0u8; 256 * 1024];
    // SAFETY: the child runs `spawn_child` on `stack` (its top, aligned
    // down to 16 bytes), sharing our memory while we are suspended
    // (CLONE_VFORK) until it has exec'd or exited; everything it reads
    // lives until then. All signals are blocked around the clone, so no
    // handler of ours runs in the child before it resets them.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(stack.len());
        let top = top.sub(top as usize % 16);
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            spawn_child,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut spawn).cast(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        pid
    };
    drop(stderr);
    // SAFETY: the child has exec'd or exited; nothing writes `spawn` now.
    let errno = unsafe { std::ptr::read_volatile(&raw const spawn.errno) };
    if errno != 0 {
        let mut status = 0;
        // SAFETY: reaping the child that failed to exec.
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(pid)
}

#[cfg(target_os = "linux")]
unsafe extern "C" {
    /// The process's environment, as the C library keeps it.
    static environ: *const *const libc::c_char;
}

/// What the cloned child needs, prepared by the parent.
#[cfg(target_os = "linux")]
struct Spawn {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    stderr: RawFd,
    parent: libc::pid_t,
    /// Set by the child when it cannot exec.
    errno: libc::c_int,
}

/// The child between clone and exec: only system calls and `execvpe`, no
/// allocation, nothing that takes a lock.
#[cfg(target_os = "linux")]
extern "C" fn spawn_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Spawn`, alive until we exec or exit;
    // the calls are plain system calls on values it holds.
    unsafe {
        let spawn = &mut *arg.cast::<Spawn>();
        // Default dispositions for what we catch (exec would reset them,
        // but a signal must not run our handler here), and for SIGPIPE,
        // which the Rust runtime ignores and an exec would keep ignored.
        for sig in FORWARDED.iter().chain(&[libc::SIGCHLD, libc::SIGPIPE]) {
            libc::signal(*sig, libc::SIG_DFL);
        }
        // The command starts with no signal blocked, as std would start it.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        let fail = |spawn: &mut Spawn| -> ! {
            spawn.errno = *errno();
            libc::_exit(127)
        };
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(spawn);
        }
        // We may have died before prctl took effect: then the signal will
        // never come, and the parent is now someone else.
        if libc::getppid() != spawn.parent {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        if libc::dup2(spawn.stderr, 2) < 0 {
            fail(spawn);
        }
        libc::execvpe(spawn.program, spawn.argv, spawn.envp);
        fail(spawn)
    }
}

/// Elsewhere std starts the child; there is no request to have it killed
/// with us, so if ect-run is killed with SIGKILL the child runs on (see the
/// README).
#[cfg(not(target_os = "linux"))]
fn spawn(command: &Command, stderr: OwnedFd) -> io::Result<i32> {
    let mut cmd = std::process::Command::new(&command.program);
    cmd.args(&command.args).stderr(stderr);
    for (k, v) in &command.env {
        cmd.env(k, v);
    }
    // std's handle is not used to wait: we reap with waitpid ourselves.
    // Dropping it neither waits nor kills.
    Ok(cmd.spawn()?.id() as i32)
}

/// Whether the child has ended, without blocking. As PID 1, reaps every
/// ended process, as an init does, so orphans do not stay zombies.
fn reap(child: i32, init: bool) -> Option<Exit> {
    let target = if init { -1 } else { child };
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a valid c_int.
        let r = unsafe { libc::waitpid(target, &mut status, libc::WNOHANG) };
        if r == child {
            found = Some(Exit::from_status(ExitStatus::from_raw(status)));
        } else if r == 0 {
            return found;
        } else if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // ECHILD: the child is not ours to wait for (cannot happen, as
            // SIGCHLD is handled, not ignored). Report a generic failure
            // rather than wait for ever.
            return found.or(Some(Exit::Code(1)));
        }
        if !init {
            return found;
        }
    }
}

/// Empties the self-pipe; its bytes only say "look again".
fn drain_wake(wake: &OwnedFd) {
    let mut buf = [0u8; 64];
    // SAFETY: reading into a valid buffer from our own non-blocking fd.
    while unsafe { libc::read(wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// Leaves the rest of the child's stderr to a detached process that copies
/// it to our stderr until every writer has closed it. Double fork: the
/// forwarder is re-parented at once, so no one has to wait for it, and it
/// outlives us as the background process it serves does.
fn forward_rest(reader: std::fs::File, wake: &OwnedFd) -> io::Result<()> {
    let fd = reader.as_raw_fd();
    let wake_fd = wake.as_raw_fd();
    // Only this thread runs now (the child is reaped; delivery has not
    // started), so the forked copy may run ordinary code; it still makes
    // only raw system calls and allocates nothing.
    // SAFETY: see above; each branch ends in _exit or returns in the parent.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the first child; fork again and leave at once.
        unsafe {
            if libc::fork() != 0 {
                libc::_exit(0);
            }
            become_forwarder(fd, wake_fd);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the short-lived first child we just forked.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
    drop(reader);
    Ok(())
}

/// The forwarder's whole life: default signal handling (so it can be
/// stopped and killed like any process), nothing open but the pipe and
/// stderr, then copy until end-of-file. A failed write ends it, closing
/// the pipe: the writer then gets the same EPIPE it would get without us.
///
/// # Safety
/// Only in a freshly forked process; never returns.
unsafe fn become_forwarder(fd: RawFd, wake_fd: RawFd) -> ! {
    // SAFETY: plain system calls on values we own; see the function doc.
    unsafe {
        for sig in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
            libc::signal(*sig, libc::SIG_DFL);
        }
        libc::close(0);
        libc::close(1);
        libc::close(wake_fd);
        if WAKE_FD.load(Ordering::SeqCst) >= 0 {
            libc::close(WAKE_FD.load(Ordering::SeqCst));
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n == 0 {
                break;
            }
            if n < 0 {
                if *errno() == libc::EINTR {
                    continue;
                }
                break;
            }
            let mut off = 0usize;
            while off < n as usize {
                let w = libc::write(2, buf[off..].as_ptr().cast(), n as usize - off);
                if w < 0 {
                    if *errno() == libc::EINTR {
                        continue;
                    }
                    libc::_exit(0);
                }
                off += w as usize;
            }
        }
        libc::_exit(0)
    }
}

// --- signal handling -------------------------------------------------------
//
// Process-wide state read by the handler; only atomics, as the handler may
// run at any point on any thread.

/// 0 before the child starts, its pid while it runs, -1 once reaped (its pid
/// may be reused: nothing is sent to it any more).
static CHILD: AtomicI32 = AtomicI32::new(0);
/// Signals (bit N for signal N) that came before the child started.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// -1 while the child runs; then the status to exit with on a signal.
static EXIT_CODE: AtomicI32 = AtomicI32::new(-1);
/// A SIGINT from the terminal came while the child ran.
static USER_INTERRUPT: AtomicBool = AtomicBool::new(false);
/// Write end of the self-pipe that wakes the poll loop on SIGCHLD.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Our pid: the handler does nothing in a process forked from us before it
/// calls exec (a signal there is not ours to act on).
static OUR_PID: AtomicI32 = AtomicI32::new(0);

/// Installs the handlers (before the child starts, so no signal in between
/// can kill us) and returns the read end of the self-pipe. Caught signals
/// are reset to the default by `exec`, and std clears the signal mask in
/// the child, so the child starts as it would without us.
fn install_handlers() -> io::Result<OwnedFd> {
    let (r, w) = self_pipe()?;
    OUR_PID.store(std::process::id() as i32, Ordering::SeqCst);
    CHILD.store(0, Ordering::SeqCst);
    EXIT_CODE.store(-1, Ordering::SeqCst);
    // The write end lives as long as the process: the handler may use it
    // at any time.
    let old = WAKE_FD.swap(std::os::fd::IntoRawFd::into_raw_fd(w), Ordering::SeqCst);
    if old >= 0 {
        // SAFETY: a previous run's write end, no longer used.
        unsafe { libc::close(old) };
    }
    // SAFETY: a sigset_t filled by sigemptyset/sigaddset, then passed to
    // pthread_sigmask; no other preconditions.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
            set_handler(*sig)?;
            libc::sigaddset(&mut set, *sig);
        }
        // Whoever started us may have blocked some (a launcher blocking
        // SIGCHLD would leave us waiting for ever): ours must get through.
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    Ok(r)
}

/// The self-pipe: both ends non-blocking, close-on-exec, above 0-2.
#[cfg(target_os = "linux")]
fn self_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two new fds into a valid array; they are ours.
    let (r, w) = unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
            return Err(io::Error::last_os_error());
        }
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    // A duplicate keeps the flags of the open file (non-blocking).
    Ok((above_stdio(r)?, above_stdio(w)?))
}

#[cfg(not(target_os = "linux"))]
fn self_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = os_pipe::pipe()?;
    let r = above_stdio(r.into())?;
    let w = above_stdio(w.into())?;
    for fd in [r.as_raw_fd(), w.as_raw_fd()] {
        // SAFETY: fcntl on fds we own.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
    Ok((r, w))
}

fn set_handler(sig: i32) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; the handler is an extern "C" fn
    // with the SA_SIGINFO signature; sigaction has no other preconditions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        if sig == libc::SIGCHLD {
            // Only ends matter; the child stopping is not our business.
            sa.sa_flags |= libc::SA_NOCLDSTOP;
        }
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn is_job_stop(sig: i32) -> bool {
    sig == libc::SIGTSTP || sig == libc::SIGTTIN || sig == libc::SIGTTOU
}

/// The handler: only async-signal-safe calls (kill, write, getpid, _exit)
/// and atomics; errno is kept for the code it interrupted.
extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: errno() points at this thread's errno.
    let saved = unsafe { *errno() };
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } == OUR_PID.load(Ordering::SeqCst) {
        // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
        let (code, sender) = unsafe {
            if info.is_null() {
                (0, 0)
            } else {
                ((*info).si_code, (*info).si_pid())
            }
        };
        handle(sig, code, sender);
    }
    // SAFETY: as above.
    unsafe { *errno() = saved };
}

fn handle(sig: i32, code: i32, sender: i32) {
    if sig == libc::SIGCHLD {
        let fd = WAKE_FD.load(Ordering::SeqCst);
        // SAFETY: write(2) of one byte from a valid buffer; a full pipe
        // (EAGAIN) already holds a wake-up.
        unsafe { libc::write(fd, [0u8].as_ptr().cast(), 1) };
        return;
    }
    let exit = EXIT_CODE.load(Ordering::SeqCst);
    if exit >= 0 {
        // The child is done: act as the default would, but end with the
        // child's status.
        if is_job_stop(sig) {
            stop_as_default(sig);
        } else if sig != libc::SIGWINCH && sig != libc::SIGCONT {
            // Not before a report being written is in the outbox.
            crate::shutdown::exit_from_signal(exit);
        }
        return;
    }
    // The terminal driver sends with SI_KERNEL, to the whole group. Anything
    // else (kill, sigqueue) is forwarded: a signal twice beats a signal lost.
    let from_terminal = is_from_terminal(code);
    if sig == libc::SIGINT && from_terminal {
        USER_INTERRUPT.store(true, Ordering::SeqCst);
    }
    let child = CHILD.load(Ordering::SeqCst);
    // A signal the child sent us must not bounce back to it.
    if !from_terminal && sender != child {
        if child > 0 {
            forward(child, sig);
        } else if child == 0 {
            PENDING.fetch_or(1 << sig, Ordering::SeqCst);
        }
    }
    if is_job_stop(sig) {
        // The child has been told to stop (by us or by the terminal): now
        // stop ourselves, so the shell sees the job stopped.
        stop_as_default(sig);
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_from_terminal(code: i32) -> bool {
    code == libc::SI_KERNEL
}

/// Other systems do not mark the terminal's signals: forward everything.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn is_from_terminal(_code: i32) -> bool {
    false
}

/// Stops ect-run as `sig`'s default action would, from its handler: so the
/// shell sees the job stopped by that signal, and where the kernel discards
/// it instead (a process group with no parent outside it in the session,
/// as under `setsid` or a daemon's children), ect-run is not stopped either,
/// just as the child is not. The signal is blocked while its handler runs:
/// raised, it waits; unblocked, it acts (ect-run stops here until SIGCONT);
/// then the handler is put back.
fn stop_as_default(sig: i32) {
    // SAFETY: sigaction, kill, getpid and pthread_sigmask are
    // async-signal-safe; zeroed sigaction and sigset_t values are valid and
    // filled in before use.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut default.sa_mask);
        let mut ours: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, &default, &mut ours) != 0 {
            libc::kill(libc::getpid(), libc::SIGSTOP);
            return;
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::kill(libc::getpid(), sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::sigaction(sig, &ours, std::ptr::null_mut());
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

/// This thread's errno.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno_location() }
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn errno() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__error() }
}

#[cfg(any(target_os = "netbsd", target_os = "openbsd"))]
fn errno() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno() }
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

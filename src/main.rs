//! The `ect-run` binary: parse the command line, run, turn the outcome into
//! an exit status. Everything else lives in the library.
//!
//! On Linux with glibc the binary has its own C `main` instead of Rust's
//! runtime start: that start finds the main thread's stack by reading and
//! parsing `/proc/self/maps` and sets up a stack-overflow handler on an
//! alternate signal stack, about a tenth of a millisecond that every
//! `ect-run -- job` would pay (README, Benchmarks). What of it ect-run
//! relies on is done here: SIGPIPE ignored, fds 0-2 open, a panic ending
//! in status 101, standard output flushed at the end. (std still reads the
//! arguments there, from glibc's start-up.) What is left out: the message
//! naming a stack overflow (ect-run then dies of SIGSEGV) and the name
//! `main` for this thread in a panic message (`--internal-raise-error`,
//! whose panic is the product, runs on a thread named `main`; see
//! `ect_run::app`).

#![cfg_attr(all(target_os = "linux", target_env = "gnu"), no_main)]

/// The exit status.
fn ect_run_main() -> u8 {
    let cli = ect_run::cli::parse();
    match ect_run::app::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Our output piped into `head` and closed: not an error worth a
            // word (ripgrep does the same).
            let broken_pipe = err
                .root_cause()
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
            if broken_pipe {
                return 0;
            }
            // `{:#}` prints the context chain on one line: "what: why".
            ect_run::say!("{err:#}");
            ect_run::app::exit_code_for(&err)
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(ect_run_main())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    use std::io::Write;

    start_as_std_would();
    // A panic ends with status 101, as Rust's own start makes it (the
    // panic hook has printed the message).
    let code = match std::panic::catch_unwind(ect_run_main) {
        Ok(code) => libc::c_int::from(code),
        Err(_) => 101,
    };
    // As Rust's own start does at the end: a last line without a newline
    // may still be in the line buffer.
    let _ = std::io::stdout().flush();
    code
}

/// What of Rust's runtime start ect-run relies on: SIGPIPE ignored (a
/// closed pipe of ours is an error to handle, not death) and fds 0, 1 and
/// 2 open (a closed one on /dev/null, so that nothing we open lands there).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn start_as_std_would() {
    // SAFETY: plain system calls on a valid array and a C string literal;
    // only this thread exists yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        if libc::poll(fds.as_mut_ptr(), 3, 0) < 0 {
            return;
        }
        for pfd in fds {
            if pfd.revents & libc::POLLNVAL != 0
                && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) < 0
            {
                // As Rust's own start does: no safe way on.
                libc::abort();
            }
        }
    }
}

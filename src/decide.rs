//! Which failure counts: given everything [`crate::parse`] found in the tail
//! and how the child ended, the one failure (if any) that ended the run.
//!
//! Rules (issue #4): a run that exits 0 has no failure, whatever it logged;
//! otherwise the last failure in the tail counts. A `KeyboardInterrupt`, a
//! child ended by SIGINT, or the user's Ctrl-C is the user's choice, not a
//! failure. A child killed by a signal with no dump of its own is a failure
//! of kind `signal`.

use crate::parse::{Exception, Failure, Kind};
use crate::supervise::Exit;

/// Why there is nothing to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFailure {
    Succeeded,
    Interrupted,
    NothingFound,
}

impl NoFailure {
    pub fn describe(self) -> &'static str {
        match self {
            NoFailure::Succeeded => "the command succeeded",
            NoFailure::Interrupted => "the run was interrupted by the user",
            NoFailure::NothingFound => "no traceback, fatal error or panic was found",
        }
    }
}

/// Picks the failure that ended the run.
pub fn failure_that_counts(
    found: Vec<Failure>,
    exit: Exit,
    interrupted_by_user: bool,
) -> Result<Failure, NoFailure> {
    if exit.succeeded() {
        return Err(NoFailure::Succeeded);
    }
    if interrupted_by_user || exit == Exit::Signal(libc::SIGINT) {
        return Err(NoFailure::Interrupted);
    }
    let last = found.into_iter().next_back();
    let last = match (last, exit) {
        // Python exits with status 1 after an uncaught exception, never by
        // a signal: a traceback before a signal death is not its cause.
        (Some(f), Exit::Signal(_)) if f.kind == Kind::PythonTraceback => None,
        (f, _) => f,
    };
    match (last, exit) {
        (Some(f), _) if is_keyboard_interrupt(&f) => Err(NoFailure::Interrupted),
        (Some(f), _) => Ok(f),
        (None, Exit::Signal(sig)) => Ok(signal_failure(sig)),
        (None, Exit::Code(_)) => Err(NoFailure::NothingFound),
    }
}

fn is_keyboard_interrupt(f: &Failure) -> bool {
    f.kind == Kind::PythonTraceback && f.exception.class == "KeyboardInterrupt"
}

fn signal_failure(sig: i32) -> Failure {
    Failure {
        kind: Kind::Signal,
        exception: Exception {
            class: signal_name(sig),
            ..Exception::default()
        },
        ..Failure::default()
    }
}

/// `SIGSEGV` for 11, and so on; `SIG<n>` for numbers without a name.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("SIG{sig}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_bytes;

    const TB: &[u8] =
        b"Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: x\n";

    #[test]
    fn rules() {
        let f = || parse_bytes(TB, false);
        assert_eq!(
            failure_that_counts(f(), Exit::Code(0), false),
            Err(NoFailure::Succeeded)
        );
        assert!(failure_that_counts(f(), Exit::Code(1), false).is_ok());
        assert_eq!(
            failure_that_counts(f(), Exit::Code(1), true),
            Err(NoFailure::Interrupted)
        );
        assert_eq!(
            failure_that_counts(vec![], Exit::Signal(libc::SIGINT), false),
            Err(NoFailure::Interrupted)
        );
        assert_eq!(
            failure_that_counts(vec![], Exit::Code(3), false),
            Err(NoFailure::NothingFound)
        );
        let sig = failure_that_counts(f(), Exit::Signal(libc::SIGSEGV), false).unwrap();
        assert_eq!(
            (sig.kind, sig.exception.class.as_str()),
            (Kind::Signal, "SIGSEGV")
        );
        let ki = parse_bytes(b"Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nKeyboardInterrupt\n", false);
        assert_eq!(
            failure_that_counts(ki, Exit::Code(1), false),
            Err(NoFailure::Interrupted)
        );
    }
}

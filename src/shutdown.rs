//! When ect-run may be ended by a signal after its child is done. A signal
//! that arrives after the child exited makes ect-run exit with the child's
//! status, but not while a report is being analysed and written to the
//! outbox: a [`Hold`] covers that stretch (bounded: analysis of a bounded
//! tail and one small synced write), and [`exit_from_signal`] defers to
//! its end.
//!
//! Signal handlers run on the main thread here (the supervisor has no
//! other), so the check of [`HOLDING`] and the `_exit` cannot interleave
//! with the main thread taking or releasing a hold.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static HOLDING: AtomicBool = AtomicBool::new(false);
/// The status to exit with once the hold ends; -1 for none.
static PENDING: AtomicI32 = AtomicI32::new(-1);

/// While it lives, a signal's exit waits. Dropping it performs an exit
/// that was asked for meanwhile.
#[derive(Debug)]
pub struct Hold(());

pub fn hold() -> Hold {
    HOLDING.store(true, Ordering::SeqCst);
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        HOLDING.store(false, Ordering::SeqCst);
        let code = PENDING.swap(-1, Ordering::SeqCst);
        if code >= 0 {
            // SAFETY: _exit ends the process at once; nothing is left
            // half-written: the hold covered the writes.
            unsafe { libc::_exit(code) };
        }
    }
}

/// Exits with `code` now, or when the hold in force ends. Async-signal-
/// safe: for signal handlers.
pub fn exit_from_signal(code: i32) {
    if HOLDING.load(Ordering::SeqCst) {
        PENDING.store(code, Ordering::SeqCst);
    } else {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(code) };
    }
}

//! When ect-run may be ended by a signal after its child is done. A signal
//! that arrives after the child exited makes ect-run exit with the child's
//! status, but not while a report is being analysed and written to the
//! outbox: [`hold`] covers that stretch (bounded: analysis of a bounded
//! tail and one small synced write), and [`exit`] waits for it to end.

use std::sync::{Mutex, MutexGuard};

static CRITICAL: Mutex<()> = Mutex::new(());

/// While the returned guard lives, [`exit`] waits.
pub fn hold() -> MutexGuard<'static, ()> {
    CRITICAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Exits with `code` once no [`hold`] is in force.
pub fn exit(code: i32) -> ! {
    let _g = CRITICAL.lock().unwrap_or_else(|p| p.into_inner());
    std::process::exit(code)
}

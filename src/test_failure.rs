//! `ect-run --test-failure`: a real child process that fails inside toolbox
//! code, the way the toolbox's `FailureReporter.raise_error()` does, so the
//! whole path (capture, detection, consent, delivery) can be tried.
//!
//! When the toolbox's Python package is importable, the child is Python
//! calling `FailureReporter.raise_error()` itself. Otherwise (ect-run on a
//! machine without the toolbox) it is ect-run run again as a child that
//! panics inside its own `ect_run` crate, which the toolbox rules count as
//! toolbox code, with the same message.

use std::ffi::OsString;
use std::time::Duration;

use crate::supervise::Command;

/// The toolbox's own test message.
pub const MESSAGE: &str = "This is an error to test the reporting functionality.";
pub const PYTHON_ENV: &str = "ECT_RUN_PYTHON";

const PROBE: &str = "import importlib.util, sys\n\
sys.exit(0 if importlib.util.find_spec('esa_climate_toolbox') else 3)";
const RAISE: &str = "from esa_climate_toolbox.util.reporting import FailureReporter\n\
FailureReporter.raise_error()";

/// The command `--test-failure` supervises.
pub fn command() -> std::io::Result<Command> {
    let python: OsString = std::env::var_os(PYTHON_ENV)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into());
    if toolbox_importable(&python) {
        return Ok(Command {
            program: python,
            args: vec!["-c".into(), RAISE.into()],
            env: Vec::new(),
        });
    }
    Ok(Command {
        program: std::env::current_exe()?.into_os_string(),
        args: vec!["--internal-raise-error".into()],
        env: vec![("RUST_BACKTRACE".into(), "1".into())],
    })
}

/// Whether `python` can import the toolbox: one quick probe, bounded in time.
fn toolbox_importable(python: &OsString) -> bool {
    let Ok(handle) = duct::cmd(python, ["-c", PROBE])
        .stdin_null()
        .stdout_null()
        .stderr_null()
        .unchecked()
        .start()
    else {
        return false; // no Python at all
    };
    match handle.wait_timeout(Duration::from_secs(10)) {
        Ok(Some(out)) => out.status.success(),
        _ => {
            let _ = handle.kill();
            let _ = handle.wait();
            false
        }
    }
}

/// The child's side: fail inside ect-run's own code.
#[inline(never)]
pub fn raise_error() -> ! {
    panic!("{MESSAGE}");
}

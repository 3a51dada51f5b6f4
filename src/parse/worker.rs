//! A worker process's failure re-raised in the parent:
//! `concurrent.futures.ProcessPoolExecutor` and `multiprocessing.Pool` put
//! the worker's traceback, as text, in a `RemoteTraceback` that is the
//! `__cause__` of the parent's exception:
//!
//! ```text
//! concurrent.futures.process._RemoteTraceback:
//! """
//! Traceback (most recent call last):
//!   File "/env/lib/python3.12/concurrent/futures/process.py", line 263, in _process_worker
//!     r = call_item.fn(*call_item.args, **call_item.kwargs)
//!   File "/env/lib/python3.12/site-packages/esa_climate_toolbox/ops.py", line 6, in work
//!     raise ValueError("bad chunk")
//! ValueError: bad chunk
//! """
//!
//! The above exception was the direct cause of the following exception:
//!
//! Traceback (most recent call last):
//!   File "/home/alice/work/run.py", line 9, in <module>
//!     ex.submit(work, 1).result()
//! ValueError: bad chunk
//! ```
//!
//! The Python format reads this as a chain whose first exception is the
//! worker's; this format takes the `RemoteTraceback` lines into the
//! failure and the closing `"""` out of the worker's message, so the
//! failure is the parent's exception with the worker's as its cause.

use super::{Failure, Format, Input, Kind, find_nothing, tick};

pub(super) const FORMAT: Format = Format {
    name: "worker",
    anchors: &["RemoteTraceback"],
    inert_lines: &[],
    find: find_nothing,
    refine,
};

const QUOTES: &str = "\"\"\"";

// The signature is the table's, which lets a refinement drop failures.
#[allow(clippy::ptr_arg)]
fn refine(found: &mut Vec<Failure>, input: Input<'_>) {
    for f in found.iter_mut() {
        tick(1);
        if f.kind != Kind::PythonTraceback || f.start < 2 {
            continue;
        }
        let opening = input.lines[f.start - 2];
        let remote = opening.ends_with("RemoteTraceback:") && input.lines[f.start - 1] == QUOTES;
        if !remote {
            continue;
        }
        let worker = match f.causes.first_mut() {
            Some(w) => w,
            None => &mut f.exception,
        };
        if let Some(m) = worker.message.strip_suffix(QUOTES) {
            worker.message = m.strip_suffix('\n').unwrap_or(m).to_string();
        }
        f.start -= 2;
    }
}

#[cfg(test)]
mod tests {
    use crate::parse::{Chain, parse_bytes};

    #[test]
    fn parent_exception_with_worker_cause() {
        let text = "concurrent.futures.process._RemoteTraceback: \n\"\"\"\nTraceback (most recent call last):\n  File \"/env/concurrent/futures/process.py\", line 263, in _process_worker\n    r = call_item.fn(*call_item.args, **call_item.kwargs)\n  File \"/env/esa_climate_toolbox/ops.py\", line 6, in work\n    raise ValueError(\"bad chunk\")\nValueError: bad chunk\n\"\"\"\n\nThe above exception was the direct cause of the following exception:\n\nTraceback (most recent call last):\n  File \"/home/alice/run.py\", line 9, in <module>\n    ex.submit(work, 1).result()\nValueError: bad chunk\n";
        let got = parse_bytes(text.as_bytes(), false);
        assert_eq!(got.len(), 1);
        let f = &got[0];
        assert_eq!(f.start, 0);
        assert_eq!(f.exception.frames.len(), 1);
        assert_eq!(f.causes.len(), 1);
        assert_eq!(f.causes[0].message, "bad chunk");
        assert_eq!(f.causes[0].chain, Some(Chain::Cause));
        assert_eq!(f.causes[0].frames.len(), 2);
    }
}

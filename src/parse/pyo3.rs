//! Rust inside Python: a pyo3 extension (polars, pydantic-core, tokenizers,
//! a toolbox extension) that panics prints Rust's panic message, then
//! Python's traceback ending in `pyo3_runtime.PanicException`:
//!
//! ```text
//! thread '<unnamed>' panicked at src/lib.rs:7:5:
//! regrid: index 7 out of range
//! note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
//! Traceback (most recent call last):
//!   File "/home/alice/work/run.py", line 3, in <module>
//!     ect_native.regrid(7)
//! pyo3_runtime.PanicException: regrid: index 7 out of range
//! ```
//!
//! The Rust and Python formats read the two halves; this format joins
//! them: the failure is the `PanicException`, with the panic (its own kind,
//! frames and location) as its cause.

use super::{Chain, Failure, Format, Input, Kind, find_nothing, tick};

pub(super) const FORMAT: Format = Format {
    name: "pyo3",
    anchors: &[],
    inert_lines: &[],
    find: find_nothing,
    refine,
};

/// Lines allowed between the panic's end and the traceback: blank lines,
/// and pyo3's own warning on some versions.
const MAX_GAP: usize = 3;

fn refine(found: &mut Vec<Failure>, input: Input<'_>) {
    found.sort_by_key(|f| f.start);
    let mut out: Vec<Failure> = Vec::with_capacity(found.len());
    for f in found.drain(..) {
        tick(1);
        let is_panic_exception = f.kind == Kind::PythonTraceback
            && f.exception.class.rsplit('.').next() == Some("PanicException");
        let joins = is_panic_exception
            && out.last().is_some_and(|p| {
                p.kind == Kind::RustPanic
                    && p.end <= f.start
                    && f.start - p.end <= MAX_GAP
                    && input.lines[p.end..f.start]
                        .iter()
                        .all(|l| l.is_empty() || l.starts_with("note: "))
            });
        match out.pop() {
            Some(panic) if joins => {
                let mut f = f;
                let mut cause = panic.exception;
                cause.kind = Some(Kind::RustPanic);
                cause.chain = Some(Chain::Cause);
                let mut causes = panic.causes;
                for c in &mut causes {
                    c.kind = Some(Kind::RustPanic);
                }
                causes.push(cause);
                causes.append(&mut f.causes);
                f.causes = causes;
                f.location = panic.location;
                f.thread = panic.thread;
                f.start = panic.start;
                out.push(f);
            }
            prev => {
                out.extend(prev);
                out.push(f);
            }
        }
    }
    *found = out;
}

#[cfg(test)]
mod tests {
    use crate::parse::{Chain, Kind, parse_bytes};

    #[test]
    fn panic_is_the_cause() {
        let text = "thread '<unnamed>' panicked at src/lib.rs:7:5:\nregrid: index 7 out of range\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\nTraceback (most recent call last):\n  File \"/home/alice/work/run.py\", line 3, in <module>\n    ect_native.regrid(7)\npyo3_runtime.PanicException: regrid: index 7 out of range\n";
        let got = parse_bytes(text.as_bytes(), false);
        assert_eq!(got.len(), 1, "{got:#?}");
        let f = &got[0];
        assert_eq!(f.kind, Kind::PythonTraceback);
        assert_eq!(f.exception.class, "pyo3_runtime.PanicException");
        assert_eq!(f.causes.len(), 1);
        assert_eq!(f.causes[0].kind, Some(Kind::RustPanic));
        assert_eq!(f.causes[0].chain, Some(Chain::Cause));
        assert_eq!(f.causes[0].message, "regrid: index 7 out of range");
        assert_eq!(f.location.as_ref().and_then(|l| l.line), Some(7));
    }
}

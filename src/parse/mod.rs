//! Finding failures in what a process printed on stderr.
//!
//! Each format has its own pure parser (`&[String] → Vec<Failure>`); this
//! module runs them all over the normalized lines and returns every failure
//! found, in the order they start. No I/O here, and no decision about which
//! failure counts (that is [`crate::decide`]). Parsers never panic and are
//! linear in the input: each looks at a line a bounded number of times.

mod fatal;
mod python;
mod rust;

use serde::Serialize;

use crate::text;

/// The kinds of failure, as named in `--analyze --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    PythonTraceback,
    PythonFatal,
    RustPanic,
    Signal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PythonTraceback => "python-traceback",
            Kind::PythonFatal => "python-fatal",
            Kind::RustPanic => "rust-panic",
            Kind::Signal => "signal",
        }
    }
}

/// One frame of a traceback or backtrace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub file: Option<String>,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub function: Option<String>,
    /// Python: the source line printed under the frame.
    pub source: Option<String>,
    /// Python 3.11+: the `~~~^^^` marker line; SyntaxError: the caret line.
    pub marker: Option<String>,
    /// Python: `[Previous line repeated N more times]` followed this frame.
    pub repeated: Option<u64>,
}

/// An exception (or panic) with its own frames: the failure itself, or one
/// of its causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exception {
    /// As printed: `Exception`, `xarray.core.merge.MergeError`, `panic`,
    /// `Fatal Python error`.
    pub class: String,
    /// Without the class prefix; lines joined with `\n`; may be empty.
    pub message: String,
    /// In printed order (Python: outermost first; Rust and faulthandler:
    /// innermost first).
    pub frames: Vec<Frame>,
}

/// A failure found in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    /// The failure that ended the run: for a chain of Python exceptions the
    /// last one printed; for a panic that aborted while panicking, the
    /// original panic.
    pub exception: Exception,
    /// Earlier exceptions of the chain, oldest first; for an aborting
    /// panic, the panics that followed the original one.
    pub causes: Vec<Exception>,
    /// Rust: where the panic happened (`FILE:L:C` from the panic line).
    pub location: Option<Frame>,
    /// Rust: the panicking thread's name.
    pub thread: Option<String>,
    /// Index of the failure's first line in the normalized text.
    pub start: usize,
}

/// Normalizes `raw` (see [`text::normalize`]) and finds every failure in it.
pub fn parse_bytes(raw: &[u8], truncated: bool) -> Vec<Failure> {
    let lines = text::normalize(raw, truncated);
    parse_lines(&lines.lines, truncated)
}

/// Finds every failure in normalized lines, ordered by where it starts.
pub fn parse_lines(lines: &[String], truncated: bool) -> Vec<Failure> {
    let mut all = python::parse(lines, truncated);
    all.extend(fatal::parse(lines));
    all.extend(rust::parse(lines));
    all.sort_by_key(|f| f.start);
    all
}

/// Parses `N` from a line number, rejecting absurd lengths rather than
/// failing.
fn number(s: &str) -> Option<u64> {
    if s.len() > 19 {
        return None;
    }
    s.parse().ok()
}

/// Joins message lines, dropping trailing blank ones.
fn join_message(lines: &[&str]) -> String {
    let mut end = lines.len();
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    lines[..end].join("\n")
}

/// Lines that are another program's log output rather than part of a
/// traceback: timestamps, bracketed prefixes, `LEVEL:` prefixes. Used to
/// skip interleaved output of other threads.
fn looks_like_log_line(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with('[') {
        return true;
    }
    if t.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return true;
    }
    const LEVELS: [&str; 8] = [
        "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "TRACE", "FATAL",
    ];
    LEVELS.iter().any(|lvl| {
        t.strip_prefix(lvl)
            .is_some_and(|rest| rest.starts_with([':', ' ', ']', '\t', '-', '|']))
    })
}

/// Test input as the parsers see it.
#[cfg(test)]
fn test_lines(s: &str) -> Vec<String> {
    s.lines().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of real formats, so random input reaches deep parser states.
    const PIECES: [&str; 14] = [
        "Traceback (most recent call last):\n",
        "  File \"/s/esa_climate_toolbox/a.py\", line 3, in f\n",
        "  File \"x.py\", line 1\n",
        "    source()\n    ~~~^^\n",
        "  [Previous line repeated 996 more times]\n",
        "ValueError: bad\n",
        "\nDuring handling of the above exception, another exception occurred:\n\n",
        "  + Exception Group Traceback (most recent call last):\n  | ",
        "  +-+---------------- 1 ----------------\n    | ",
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n",
        "thread 'main' panicked at src/main.rs:2:5:\n",
        "thread 'main' panicked at 'msg', src/main.rs:2:5\n",
        "stack backtrace:\n   0: ect_core::f\n             at /a/b.rs:1:2\n",
        "thread caused non-unwinding panic. aborting.\n",
    ];

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(raw in proptest::collection::vec(any::<u8>(), 0..4096), truncated: bool) {
            let _ = parse_bytes(&raw, truncated);
        }

        #[test]
        fn never_panics_on_shuffled_formats(
            parts in proptest::collection::vec((0..PIECES.len(), proptest::collection::vec(any::<u8>(), 0..8)), 0..40),
            truncated: bool,
        ) {
            let mut raw = Vec::new();
            for (i, noise) in parts {
                raw.extend_from_slice(PIECES[i].as_bytes());
                raw.extend_from_slice(&noise);
            }
            let found = parse_bytes(&raw, truncated);
            prop_assert!(found.windows(2).all(|w| w[0].start <= w[1].start));
        }
    }

    /// Quadratic behaviour would show as seconds here; linear is ~ms.
    #[test]
    fn large_adversarial_inputs_stay_fast() {
        let inputs: Vec<Vec<u8>> = vec![
            "Traceback (most recent call last):\n"
                .repeat(40_000)
                .into_bytes(),
            "  File \"x.py\", line 1\n".repeat(40_000).into_bytes(),
            ("  File \"x.py\", line 1\n".repeat(40_000) + "ValueError: x\n").into_bytes(),
            "  File \"x.py\", line 1, in f\n"
                .repeat(40_000)
                .into_bytes(),
            "thread 'main' panicked at 'unterminated\n"
                .repeat(40_000)
                .into_bytes(),
            "ValueError: x\n\n".repeat(60_000).into_bytes(),
            ("ValueError: x\n".to_string() + &"\n".repeat(1 << 20)).into_bytes(),
            vec![b'x'; 1 << 20],
        ];
        for raw in inputs {
            let t = std::time::Instant::now();
            let _ = parse_bytes(&raw, true);
            // Generous for debug builds on a loaded machine; quadratic
            // behaviour on these inputs takes minutes.
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "{:?}",
                t.elapsed()
            );
        }
    }

    #[test]
    fn log_lines() {
        for l in [
            "2024-05-01 12:00:01,123 INFO worker: done",
            "INFO:root:step 3",
            "WARNING: low memory",
            "[worker-2] chunk 5 written",
            "  DEBUG loading",
        ] {
            assert!(looks_like_log_line(l), "{l}");
        }
        for l in [
            "ValueError: x",
            "KeyboardInterrupt",
            "RecursionError: deep",
            "Errors: 3",
        ] {
            assert!(!looks_like_log_line(l), "{l}");
        }
    }
}

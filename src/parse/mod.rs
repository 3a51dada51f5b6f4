//! Finding failures in what a process printed on stderr.
//!
//! The bytes are normalized once ([`crate::text`]), launchers' line
//! prefixes are removed once ([`prefix`]), and then every format in
//! [`FORMATS`] looks at the same lines. A format is one module and one
//! entry in that table: nothing else in the crate knows the list. Each
//! entry can *find* failures in the lines, and can *refine* the failures
//! all formats found (fold a notebook cell's traceback out of its wrapper's
//! message, a worker's out of its parent's chain, a Rust panic into the
//! `PanicException` that follows it). Where two failures overlap, the one
//! spanning more lines wins, so a format that reads a whole wrapper beats
//! the plain traceback inside it.
//!
//! No I/O here, and no decision about which failure counts (that is
//! [`crate::decide`]). Parsers never panic and are linear in the input: each
//! looks at a line a bounded number of times, and counts what it does in
//! [`work`] so a test can prove it without a clock.

mod fatal;
mod ipython;
mod notebook;
mod prefix;
mod pyo3;
mod python;
mod rich;
mod rust;
mod worker;

use std::cell::Cell;

use serde::Serialize;

use crate::text;

/// The kinds of failure, as named in `--analyze --json`: which runtime
/// printed it, which decides how its frames are read and formatted (not
/// which format module read it: IPython and rich tracebacks are
/// `python-traceback` too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    #[default]
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

/// How an exception leads to the next one of its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Chain {
    /// `raise ... from e`: Python's "The above exception was the direct
    /// cause of the following exception:" (`__cause__`). Also a worker's
    /// traceback under the parent's exception, and a Rust panic under the
    /// `PanicException` that pyo3 raised for it.
    Cause,
    /// Raised while handling it: "During handling of the above exception,
    /// another exception occurred:" (`__context__`). Also a notebook
    /// runner's wrapper exception (`PapermillExecutionError`,
    /// `CellExecutionError`) kept beside the cell's own exception.
    Context,
}

impl Chain {
    /// The line Python prints between the two tracebacks.
    pub fn separator(self) -> &'static str {
        match self {
            Chain::Cause => python::CAUSE,
            Chain::Context => python::CONTEXT,
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
    /// Python: the (first) source line printed under the frame; IPython:
    /// the line the `---->` arrow points at.
    pub source: Option<String>,
    /// Python 3.11+: the `~~~^^^` marker line under the first source line;
    /// SyntaxError: the caret line.
    pub marker: Option<String>,
    /// Python: `[Previous line repeated N more times]` followed this frame.
    pub repeated: Option<u64>,
    /// Python: the lines printed under the frame after `source` and
    /// `marker`, without their four-space indent, as `traceback.format_tb`
    /// gives them: the further lines of a multi-line statement, their
    /// markers and `...<N lines>...` (3.13). Usually empty. (IPython's
    /// context lines are not Python's and are not kept.)
    pub lines: Vec<String>,
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
    /// In [`Failure::causes`]: how this exception leads to the next one
    /// (the next cause, or after the last cause the failure's exception).
    /// `None` on the failure's own exception, and where the text does not
    /// say (an aborting run of panics).
    pub chain: Option<Chain>,
    /// Its kind, when it differs from the failure's: the Rust panic that
    /// is the cause of a Python `pyo3_runtime.PanicException`.
    pub kind: Option<Kind>,
}

/// A failure found in the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    /// The failure that ended the run: for a chain of Python exceptions the
    /// last one printed; for a notebook run (papermill, nbconvert), the
    /// failing cell's own exception; for a worker's failure re-raised in
    /// the parent, the parent's exception; for pyo3, the `PanicException`;
    /// for a panic that aborted while panicking, the original panic.
    pub exception: Exception,
    /// The rest of the chain, oldest first, each linked to the next by its
    /// [`Exception::chain`]: Python's `__cause__`/`__context__` chain; a
    /// worker's embedded traceback (as the cause); the notebook runner's
    /// wrapper exception (as context, before the cell's chain); the Rust
    /// panic under a `PanicException` (as the cause, with its own kind);
    /// for an aborting panic, the panics that followed the original one.
    pub causes: Vec<Exception>,
    /// Rust (also under pyo3): where the panic happened (`FILE:L:C` from
    /// the panic line).
    pub location: Option<Frame>,
    /// Rust (also under pyo3): the panicking thread's name.
    pub thread: Option<String>,
    /// Index of the failure's first line in the lines the formats saw
    /// (normalized, prefixes removed, tasks regrouped).
    pub start: usize,
    /// Index one past its last line there.
    pub end: usize,
}

impl Failure {
    /// Every exception of the failure with its kind: the causes, oldest
    /// first, then the failure's own exception.
    pub fn chain(&self) -> impl Iterator<Item = (Kind, &Exception)> {
        self.causes
            .iter()
            .chain(std::iter::once(&self.exception))
            .map(|e| (e.kind.unwrap_or(self.kind), e))
    }
}

/// What every format reads.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Normalized lines, prefixes removed, trailing whitespace trimmed.
    pub lines: &'a [&'a str],
    /// The capture cut the text's start off.
    pub truncated: bool,
}

/// One format: a module under `parse/`.
#[derive(Debug)]
pub struct Format {
    pub name: &'static str,
    /// Finds this format's failures in the lines, in order.
    pub find: fn(Input<'_>, &mut Found),
    /// Rewrites what all formats found, ordered by start, where this
    /// format explains it better.
    pub refine: fn(&mut Vec<Failure>, Input<'_>),
}

/// Every format read, in order of precedence: where two failures span the
/// same lines, the earlier format's is kept.
pub static FORMATS: &[Format] = &[
    worker::FORMAT,
    notebook::FORMAT,
    pyo3::FORMAT,
    python::FORMAT,
    ipython::FORMAT,
    rich::FORMAT,
    fatal::FORMAT,
    rust::FORMAT,
];

fn find_nothing(_: Input<'_>, _: &mut Found) {}

/// Where a format puts the failures it finds, in order: all of them, or
/// only the last few. An analysis needs only the last (the last failure
/// counts) and its neighbours (a panic before a `PanicException`), so
/// keeping a few bounds its memory by the largest failure, not by how many
/// failures the tail holds.
#[derive(Debug)]
pub struct Found {
    items: std::collections::VecDeque<Failure>,
    keep: usize,
}

impl Found {
    fn new(keep: usize) -> Found {
        Found {
            items: std::collections::VecDeque::new(),
            keep,
        }
    }

    fn push(&mut self, f: Failure) {
        if self.items.len() == self.keep {
            self.items.pop_front();
        }
        self.items.push_back(f);
    }
}

/// Failures kept per format by [`parse_tail`].
const KEEP_LAST: usize = 4;

fn refine_nothing(_: &mut Vec<Failure>, _: Input<'_>) {}

thread_local! {
    static WORK: Cell<u64> = const { Cell::new(0) };
}

/// Units of work done by the parsers on this thread so far: lines visited
/// and regular-expression calls. A test compares it across input sizes to
/// prove the parsers linear without timing them (issue 11, requirement 6).
pub fn work() -> u64 {
    WORK.with(Cell::get)
}

/// Counts `n` units of work.
fn tick(n: usize) {
    WORK.with(|w| w.set(w.get().wrapping_add(n as u64)));
}

/// Normalizes `raw` (see [`text::normalize`]) and finds every failure in it.
pub fn parse_bytes(raw: &[u8], truncated: bool) -> Vec<Failure> {
    parse_keeping(raw, truncated, usize::MAX)
}

/// Like [`parse_bytes`], but only the last few failures of each format are
/// kept: enough for the failure that counts, in memory bounded by the
/// tail's size (issue 11, requirement 5).
pub fn parse_tail(raw: &[u8], truncated: bool) -> Vec<Failure> {
    parse_keeping(raw, truncated, KEEP_LAST)
}

fn parse_keeping(raw: &[u8], truncated: bool, keep: usize) -> Vec<Failure> {
    let text = text::normalize(raw, truncated);
    let lines = text.lines();
    tick(lines.len());
    parse_lines(lines, truncated, keep)
}

/// Finds the failures in normalized lines (the last `keep` of each format),
/// ordered by where they start.
pub fn parse_lines(lines: Vec<&str>, truncated: bool, keep: usize) -> Vec<Failure> {
    let mut lines = prefix::strip(lines);
    for l in &mut lines {
        *l = l.trim_end();
    }
    tick(lines.len() * 3);
    let input = Input {
        lines: &lines,
        truncated,
    };
    let mut found: Vec<(usize, Failure)> = Vec::new();
    for (rank, format) in FORMATS.iter().enumerate() {
        let mut mine = Found::new(keep);
        (format.find)(input, &mut mine);
        found.extend(mine.items.into_iter().map(|f| (rank, f)));
    }
    let mut all = outermost(found);
    for format in FORMATS {
        (format.refine)(&mut all, input);
    }
    all.sort_by_key(|f| f.start);
    all
}

/// Drops every failure whose lines lie within another's: the wider reading
/// wins; on equal spans, the format earlier in [`FORMATS`].
fn outermost(mut found: Vec<(usize, Failure)>) -> Vec<Failure> {
    found.sort_by_key(|(rank, f)| (f.start, std::cmp::Reverse(f.end), *rank));
    let mut out: Vec<Failure> = Vec::with_capacity(found.len());
    let mut reach = 0;
    for (_, f) in found {
        if !out.is_empty() && f.end <= reach {
            continue;
        }
        reach = reach.max(f.end);
        out.push(f);
    }
    out
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
/// skip interleaved output of other threads between frames.
fn looks_like_log_line(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with('[') {
        return true;
    }
    if t.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return true;
    }
    has_level_prefix(t)
}

/// Lines that are surely a log record, not a message's next line: a
/// date or time first, or a level name first. A message's own lines may
/// start with a digit or a bracket (`3 != 4`, `[1, 2]`).
fn is_log_record(line: &str) -> bool {
    let b = line.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let date = d(0) && d(1) && d(2) && d(3) && b.get(4) == Some(&b'-') && d(5) && d(6);
    let time = d(0) && d(1) && b.get(2) == Some(&b':') && d(3) && d(4) && b.get(5) == Some(&b':');
    date || time || has_level_prefix(line) || line.strip_prefix('[').is_some_and(has_level_prefix)
}

fn has_level_prefix(t: &str) -> bool {
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
fn test_lines(s: &str) -> Vec<&str> {
    s.lines().map(str::trim_end).collect()
}

/// Runs one format's `find` over test text.
#[cfg(test)]
fn test_find(format: &Format, s: &str, truncated: bool) -> Vec<Failure> {
    let lines = test_lines(s);
    let mut found = Found::new(usize::MAX);
    (format.find)(
        Input {
            lines: &lines,
            truncated,
        },
        &mut found,
    );
    found.items.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of real formats, so random input reaches deep parser states.
    const PIECES: [&str; 22] = [
        "Traceback (most recent call last):\n",
        "  File \"/s/esa_climate_toolbox/a.py\", line 3, in f\n",
        "  File \"x.py\", line 1\n",
        "    source()\n    ~~~^^\n",
        "  [Previous line repeated 996 more times]\n",
        "ValueError: bad\n",
        "\nDuring handling of the above exception, another exception occurred:\n\n",
        "\nThe above exception was the direct cause of the following exception:\n\n",
        "  + Exception Group Traceback (most recent call last):\n  | ",
        "  +-+---------------- 1 ----------------\n    | ",
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n",
        "thread 'main' panicked at src/main.rs:2:5:\n",
        "thread 'main' panicked at 'msg', src/main.rs:2:5\n",
        "stack backtrace:\n   0: ect_core::f\n             at /a/b.rs:1:2\n",
        "thread caused non-unwinding panic. aborting.\n",
        "concurrent.futures.process._RemoteTraceback: \n\"\"\"\n",
        "papermill.exceptions.PapermillExecutionError: \n",
        "-----------\nValueError                 Traceback (most recent call last)\nCell In[3], line 2\n----> 2 f()\n",
        "File /s/esa_climate_toolbox/a.py:5, in f()\n",
        "pyo3_runtime.PanicException: boom\n",
        "╭──── Traceback (most recent call last) ────╮\n│ /s/esa_climate_toolbox/a.py:5 in f │\n",
        "0: ",
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

    /// Builds an input of `n` repeats.
    type Shape = fn(usize) -> Vec<u8>;

    /// Adversarial shapes, `n` times over.
    fn shapes() -> Vec<(&'static str, Shape)> {
        vec![
            ("headers in a row", |n| {
                "Traceback (most recent call last):\n"
                    .repeat(n)
                    .into_bytes()
            }),
            ("location lines", |n| {
                "  File \"x.py\", line 1\n".repeat(n).into_bytes()
            }),
            ("location lines then exception", |n| {
                ("  File \"x.py\", line 1\n".repeat(n) + "ValueError: x\n").into_bytes()
            }),
            ("frames without header", |n| {
                "  File \"x.py\", line 1, in f\n".repeat(n).into_bytes()
            }),
            ("unterminated old panics", |n| {
                "thread 'main' panicked at 'unterminated\n"
                    .repeat(n)
                    .into_bytes()
            }),
            ("messages and blanks", |n| {
                "ValueError: x\n\n".repeat(n).into_bytes()
            }),
            ("one message, many blanks", |n| {
                ("ValueError: x\n".to_string() + &"\n".repeat(n)).into_bytes()
            }),
            ("chained tracebacks", |n| {
                let block = "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    f()\nKeyError: 'x'\n\nDuring handling of the above exception, another exception occurred:\n\n";
                (block.repeat(n) + "Traceback (most recent call last):\n  File \"a.py\", line 2, in g\nValueError: y\n").into_bytes()
            }),
            ("ipython headers", |n| {
                "ValueError                 Traceback (most recent call last)\n"
                    .repeat(n)
                    .into_bytes()
            }),
            ("embedded worker openings", |n| {
                "concurrent.futures.process._RemoteTraceback: \n\"\"\"\n"
                    .repeat(n)
                    .into_bytes()
            }),
            ("interleaved ranks", |n| {
                let mut s = String::new();
                for i in 0..n {
                    s.push_str(&format!("{}: Traceback (most recent call last):\n", i % 7));
                }
                s.into_bytes()
            }),
            ("fatal headers", |n| {
                "Fatal Python error: x\n".repeat(n).into_bytes()
            }),
            ("rich panel edges", |n| "│ x │\n".repeat(n).into_bytes()),
            ("one long line", |n| vec![b'x'; n * 64]),
            ("coloured lines", |n| {
                "\x1b[31mERROR\x1b[0m step failed\n".repeat(n).into_bytes()
            }),
            ("latin-1 lines", |n| {
                b"Fichier introuvable: /donn\xe9es/\xe9t\xe9.nc\n".repeat(n)
            }),
            ("binary lines", |n| {
                b"\x01\x02\xff\x03\xfe\x04 binary\n".repeat(n)
            }),
        ]
    }

    fn work_for(raw: &[u8]) -> u64 {
        let before = work();
        let _ = parse_bytes(raw, false);
        work() - before
    }

    /// Linear, by counting work instead of timing it: eight times the
    /// input costs at most about eight times the work, and each line costs
    /// a bounded number of units. Quadratic parsing fails the first
    /// check, a long bounded look-ahead per line the second.
    #[test]
    fn work_is_linear_in_the_input() {
        const PER_LINE: u64 = 60;
        for (name, make) in shapes() {
            let small = make(2_000);
            let big = make(16_000);
            let (ws, wb) = (work_for(&small), work_for(&big));
            let lines = big.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            assert!(
                wb <= 8 * ws + 8 * ws / 4 + 100,
                "{name}: work {ws} for 2 000 repeats, {wb} for 16 000"
            );
            assert!(
                wb <= PER_LINE * lines,
                "{name}: {wb} units of work for {lines} lines"
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
        for l in ["3 != 4", "[1, 2, 3]", "(2, 3)"] {
            assert!(!is_log_record(l), "{l}");
        }
        for l in ["2024-05-01 12:00:01,123 INFO x", "12:00:01 x", "[INFO] x"] {
            assert!(is_log_record(l), "{l}");
        }
    }

    #[test]
    fn prefixes_are_removed_before_formats() {
        let raw = "0: Traceback (most recent call last):\n1: Traceback (most recent call last):\n0:   File \"/s/esa_climate_toolbox/a.py\", line 3, in f\n1:   File \"/s/esa_climate_toolbox/a.py\", line 3, in f\n0: ValueError: bad\n1: ValueError: bad\n";
        let got = parse_bytes(raw.as_bytes(), false);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|f| f.exception.frames.len() == 1));
    }
}

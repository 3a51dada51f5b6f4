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
    /// Words one of which is on the first line of every failure this
    /// format finds, or takes into a failure, as the bytes were printed
    /// (before escape sequences are removed: words that colours do not
    /// split). Text before the first anchor of any format holds no failure
    /// and is not read.
    pub anchors: &'static [&'static str],
    /// Lines (as printed, whole) that hold no failure of any format however
    /// many come in a row: a failure needs some other line. A long tail of
    /// only these and blank lines is not read line by line.
    pub inert_lines: &'static [&'static str],
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
    parse_keeping(raw, truncated, truncated, usize::MAX)
}

/// Tails longer than twice this are read from their end, this much first.
const WINDOW: usize = 64 * 1024;
/// Windows tried, each twice the last, before the whole tail is read.
const WINDOWS: usize = 4;
/// Lines read before the first anchor: a format may take a line or two
/// before it into a failure (IPython's rule line, a log record).
const MARGIN_LINES: usize = 8;

/// What an analysis reads: the failures of `raw` as far as the failure
/// that counts, the last one, and its neighbours, are concerned. Only the
/// last few failures of each format are kept, in memory bounded by the
/// tail's size, and not all of a long tail is read (issue 11, requirement
/// 5):
///
/// - Text before the first anchor of any format (see [`Format::anchors`])
///   holds no failure: it is skipped.
/// - Of a long tail, the last 64 KiB are read, then the last 128 KiB, and
///   so on. Once two windows agree on the last failure (the same
///   exception, chain and frames) and the larger holds the failure before
///   it whole (see [`agree`]), the larger window's reading is the answer:
///   a failure or chain that a window cut reads differently in the next.
///   Else, after four windows or one with no failure at all, the whole
///   tail is read.
pub fn parse_tail(raw: &[u8], truncated: bool) -> Vec<Failure> {
    // Nothing printed, the common case of a failing run: nothing to build.
    if raw.is_empty() {
        return Vec::new();
    }
    let Some(first) = ANCHORS.find(raw) else {
        return Vec::new();
    };
    let from = lines_before(raw, first.start(), MARGIN_LINES);
    // Cut at a line's start, so that line is whole.
    let drop_first = truncated && from == 0;
    // Where the line with the first anchor starts, in what is read.
    let anchored = lines_before(raw, first.start(), 0) - from;
    let raw = &raw[from..];
    if raw.len() > 2 * WINDOW {
        let mut smaller: Option<Vec<Failure>> = None;
        let mut size = WINDOW;
        for _ in 0..WINDOWS {
            if size >= raw.len() {
                break;
            }
            let found = parse_keeping(&raw[raw.len() - size..], true, true, KEEP_LAST);
            if smaller.as_ref().is_some_and(|s| agree(s, &found)) {
                return found;
            }
            // Nothing in the window: the failure that counts, if any, is
            // further back, and only the whole tail can tell, unless the
            // tail holds no line a failure could be made of.
            if found.is_empty() {
                // (From the first anchor's line on, that is: a line before
                // it can only open a failure whose anchor comes later, and
                // a failure needs a line that is not inert after that.)
                if all_inert(&raw[anchored..]) {
                    return found;
                }
                break;
            }
            smaller = Some(found);
            size *= 2;
        }
    }
    parse_keeping(raw, drop_first, truncated, KEEP_LAST)
}

/// Every format's anchors, in one automaton; each also in UTF-16 (little
/// and big endian), as a Windows shell writes a redirected stream, which
/// reads as text once its NULs are removed.
static ANCHORS: std::sync::LazyLock<aho_corasick::AhoCorasick> = std::sync::LazyLock::new(|| {
    let mut words: Vec<Vec<u8>> = Vec::new();
    for word in FORMATS.iter().flat_map(|f| f.anchors) {
        words.push(word.as_bytes().to_vec());
        words.push(word.encode_utf16().flat_map(u16::to_le_bytes).collect());
        words.push(word.encode_utf16().flat_map(u16::to_be_bytes).collect());
    }
    // Leftmost-first: the kind the crate runs its vectorized prefilter
    // (Teddy) for; standard semantics ran ten times slower on text that
    // holds no anchor. A contiguous NFA behind it searches as fast as a
    // DFA here and is built in a third of the time, which every analysis
    // pays.
    aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .build(words)
        .expect("anchors are plain words")
});

/// Whether every line of `raw` is blank or one of the formats'
/// [`Format::inert_lines`]. Stops at the first line that is not, so on
/// most text it looks at a line or two.
fn all_inert(raw: &[u8]) -> bool {
    let inert = |line: &[u8]| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line.iter().all(u8::is_ascii_whitespace)
            || FORMATS
                .iter()
                .flat_map(|f| f.inert_lines)
                .any(|l| l.as_bytes() == line)
    };
    // One line repeated (the adversarial case, a long run of headers):
    // told by one comparison of the text with itself shifted by a line,
    // rather than line by line.
    if let Some(end) = memchr::memchr(b'\n', raw) {
        let period = end + 1;
        let rest = raw.len() % period;
        if inert(&raw[..end])
            && (rest == 0 || rest == end)
            && raw[period..] == raw[..raw.len() - period]
        {
            return true;
        }
    }
    raw.split(|&b| b == b'\n').all(inert)
}

/// The start of the line `n` lines before the one holding `at`.
fn lines_before(raw: &[u8], at: usize, n: usize) -> usize {
    let mut start = at;
    for _ in 0..=n {
        let Some(i) = memchr::memrchr(b'\n', &raw[..start]) else {
            return 0;
        };
        start = i;
    }
    start + 1
}

/// Whether a window's reading (`larger`) stands: the last failure is the
/// same as in the window half its size, and starts after the first line of
/// both; and the failure before it lies whole in the larger window, with
/// room before it for what a format takes before its anchor (the smaller
/// window may hold it whole, cut, or not at all). A failure joined to the
/// last one (a chain, a worker's traceback, a notebook's wrapper) is then
/// read with it in the larger window, and the last would differ.
fn agree(smaller: &[Failure], larger: &[Failure]) -> bool {
    let same = same_failure;
    let (Some(a), Some(b)) = (smaller.last(), larger.last()) else {
        return false;
    };
    let Some(before) = larger.iter().nth_back(1) else {
        return false;
    };
    let before_in_smaller = match smaller.iter().nth_back(1) {
        None => true,
        Some(p) => p.start == 0 || same(p, before),
    };
    a.start > 0 && b.start > 0 && same(a, b) && before.start >= MARGIN_LINES && before_in_smaller
}

/// The same failure as far as an analysis goes: all but where it lies.
fn same_failure(a: &Failure, b: &Failure) -> bool {
    a.kind == b.kind
        && a.exception == b.exception
        && a.causes == b.causes
        && a.location == b.location
        && a.thread == b.thread
}

/// Normalizes `raw` (dropping its first line if `drop_first`), and finds
/// its failures, keeping the last `keep` of each format. `truncated`: the
/// text's start was cut off (a traceback may have lost its header).
fn parse_keeping(raw: &[u8], drop_first: bool, truncated: bool, keep: usize) -> Vec<Failure> {
    let text = text::normalize(raw, drop_first);
    let lines = text.lines();
    tick(lines.len());
    parse_lines(lines, truncated, keep)
}

/// Finds the failures in normalized lines (the last `keep` of each format),
/// ordered by where they start.
pub fn parse_lines(lines: Vec<&str>, truncated: bool, keep: usize) -> Vec<Failure> {
    let mut lines = prefix::strip(lines);
    for l in &mut lines {
        // Most lines end in a visible ASCII character: no need to decode
        // the end backwards.
        if !l.as_bytes().last().is_some_and(|b| b.is_ascii_graphic()) {
            *l = l.trim_end();
        }
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
    test_find_lines(format, &test_lines(s), truncated)
}

/// Runs one format's `find` over test lines, keeping every failure.
#[cfg(test)]
fn test_find_lines(format: &Format, lines: &[&str], truncated: bool) -> Vec<Failure> {
    let mut found = Found::new(usize::MAX);
    (format.find)(Input { lines, truncated }, &mut found);
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

    /// A traceback of `frames` frames, the last in the toolbox.
    fn traceback(frames: usize, class: &str, message: &str) -> String {
        let mut s = String::from("Traceback (most recent call last):\n");
        for k in 0..frames {
            s.push_str(&format!(
                "  File \"/env/site-packages/esa_climate_toolbox/m{}.py\", line {k}, in f{k}\n    g({k})\n",
                k % 7
            ));
        }
        s.push_str(&format!("{class}: {message}\n"));
        s
    }

    fn logs(bytes: usize) -> String {
        let mut s = String::new();
        let mut n = 0;
        while s.len() < bytes {
            s.push_str(&format!(
                "2024-05-01 12:00:00,000 INFO processed chunk {n}\n"
            ));
            n += 1;
        }
        s
    }

    /// Whether two readings give the same failure that counts: the last,
    /// as [`agree`] compares failures.
    fn same_last(a: &[Failure], b: &[Failure]) -> bool {
        match (a.last(), b.last()) {
            (Some(a), Some(b)) => same_failure(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }

    /// The failure that counts, as a long tail's reading and the whole
    /// text's reading give it: what windows and skipped text must not
    /// change.
    #[test]
    fn a_long_tail_reads_as_the_whole_text() {
        let chained = |n: usize| {
            let mut s = String::new();
            for i in 0..n {
                s.push_str(&traceback(3 + i % 5, "KeyError", &format!("'k{i}'")));
                s.push('\n');
                s.push_str(python::CONTEXT);
                s.push_str("\n\n");
                s.push_str(&traceback(2, "RuntimeError", &format!("job {i}")));
            }
            s
        };
        let cause = format!("\n{}\n\n", python::CAUSE);
        let panic = "thread '<unnamed>' panicked at src/lib.rs:7:5:\nregrid: index 7 out of range\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let mut ranks = String::new();
        for (i, line) in chained(600).lines().enumerate() {
            ranks.push_str(&format!("{}: {line}\n", (i / 3) % 4));
        }
        let cases: Vec<(&str, String)> = vec![
            ("dense chains", chained(2_000)),
            (
                "a cause longer than the windows",
                traceback(4_000, "ValueError", "deep")
                    + &cause
                    + &traceback(2, "RuntimeError", "top"),
            ),
            (
                "a chain of long causes",
                traceback(1_500, "ValueError", "a")
                    + &cause
                    + &traceback(1_500, "KeyError", "b")
                    + &cause
                    + &traceback(2, "RuntimeError", "c"),
            ),
            (
                "a worker's long traceback",
                "concurrent.futures.process._RemoteTraceback: \n\"\"\"\n".to_string()
                    + &traceback(4_000, "ValueError", "in the worker")
                    + "\"\"\"\n"
                    + &cause
                    + &traceback(3, "ValueError", "in the worker"),
            ),
            (
                "a failure, then long logs",
                chained(10) + &traceback(5, "OSError", "last") + &logs(400_000),
            ),
            (
                "a failure, then headers",
                traceback(5, "OSError", "last")
                    + &"Traceback (most recent call last):\n".repeat(12_000),
            ),
            (
                "logs, then a panic under a PanicException",
                logs(400_000)
                    + panic
                    + &traceback(
                        3,
                        "pyo3_runtime.PanicException",
                        "regrid: index 7 out of range",
                    ),
            ),
            ("interleaved ranks", ranks),
            ("deep tracebacks in a row", {
                let mut s = String::new();
                for i in 0..5 {
                    s.push_str(&traceback(1_000, "RecursionError", &format!("run {i}")));
                }
                s
            }),
            ("worker failures in a row", {
                let mut s = String::new();
                for i in 0..400 {
                    s.push_str("concurrent.futures.process._RemoteTraceback: \n\"\"\"\n");
                    s.push_str(&traceback(3 + i % 4, "ValueError", &format!("tile {i}")));
                    s.push_str("\"\"\"\n");
                    s.push_str(&cause);
                    s.push_str(&traceback(2, "ValueError", &format!("tile {i}")));
                }
                s
            }),
            (
                "headers, then a traceback with no frames",
                "call last):\n".to_string()
                    + &"Traceback (most recent call last):\n".repeat(12_000)
                    + "ValueError: x\n",
            ),
            (
                "headers and blank lines",
                "\nTraceback (most recent call last):\n".repeat(12_000),
            ),
            ("no failure", logs(400_000)),
        ];
        for (name, text) in cases {
            assert!(
                text.len() > 2 * WINDOW,
                "{name}: too short to be read in windows"
            );
            for truncated in [false, true] {
                let whole = parse_bytes(text.as_bytes(), truncated);
                let tail = parse_tail(text.as_bytes(), truncated);
                assert!(
                    same_last(&whole, &tail),
                    "{name} (truncated: {truncated}): the tail's reading differs:\n{:?}\n{:?}",
                    whole.last().map(|f| (
                        &f.exception.class,
                        f.exception.frames.len(),
                        f.causes.len()
                    )),
                    tail.last().map(|f| (
                        &f.exception.class,
                        f.exception.frames.len(),
                        f.causes.len()
                    )),
                );
            }
        }
    }

    /// A traceback written as UTF-16 (PowerShell's `2> file`) is found: its
    /// anchors are looked for in UTF-16 too.
    #[test]
    fn utf16_text_is_read() {
        let text = traceback(2, "ValueError", "wide");
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let found = parse_tail(&le, false);
        assert_eq!(
            found.last().map(|f| f.exception.class.as_str()),
            Some("ValueError")
        );
    }

    /// Real outputs (the fixtures), each placed last after 140 KiB of the
    /// others, so that the tail is read in windows: the failure that counts
    /// is the one the whole text gives.
    #[test]
    fn real_outputs_read_in_windows_as_whole() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
        for (sub, every) in [("forms", 1), ("rust", 2), ("python", 8)] {
            let mut names: Vec<_> = std::fs::read_dir(dir.join(sub))
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "txt"))
                .collect();
            names.sort();
            for path in names.into_iter().step_by(every) {
                let mut bytes = std::fs::read(&path).unwrap();
                if !bytes.ends_with(b"\n") {
                    bytes.push(b'\n');
                }
                texts.push((path.display().to_string(), bytes));
            }
        }
        let one: Vec<u8> = texts.iter().flat_map(|(_, b)| b.clone()).collect();
        let all = one.repeat((140 << 10) / one.len() + 2);
        let cut = all.len() - (140 << 10);
        let cut = cut + memchr::memchr(b'\n', &all[cut..]).unwrap() + 1;
        let before = &all[cut..];
        assert!(before.len() + 1 > 2 * WINDOW);
        for (name, text) in &texts {
            let input = [before, text].concat();
            let whole = parse_bytes(&input, true);
            let tail = parse_tail(&input, true);
            assert!(same_last(&whole, &tail), "{name}");
        }
    }

    /// Only the text from the first anchor on is read, and only the last
    /// windows of dense text: counted, not timed.
    #[test]
    fn a_long_tail_is_not_all_read() {
        let read = |raw: &[u8]| {
            let before = work();
            let _ = parse_tail(raw, false);
            work() - before
        };
        let junk = logs(1 << 20);
        assert_eq!(read(junk.as_bytes()), 0, "text with no anchor is not read");
        let late = logs(1 << 20) + &traceback(20, "ValueError", "x");
        assert!(
            read(late.as_bytes()) < 1_000,
            "only the end of the logs is read"
        );
        let mut dense = String::new();
        while dense.len() < 1 << 20 {
            dense.push_str(&traceback(5, "KeyError", "k"));
        }
        let whole = {
            let before = work();
            let _ = parse_bytes(dense.as_bytes(), false);
            work() - before
        };
        assert!(
            read(dense.as_bytes()) * 4 < whole,
            "a dense tail is read in windows"
        );
        let headers =
            "last):\n".to_string() + &"Traceback (most recent call last):\n".repeat(30_000);
        let first_window = WINDOW / 35 * 5;
        assert!(
            read(headers.as_bytes()) < first_window as u64 * 2,
            "a run of headers is read as far as the first window"
        );
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

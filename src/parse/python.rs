//! Python tracebacks, as CPython 3.8 to 3.13 print them: plain tracebacks,
//! chains ("During handling of the above exception..." / "The above
//! exception was the direct cause..."), exception groups drawn in `+-+---`
//! boxes, SyntaxError locations (with or without a `Traceback` header), and
//! a traceback whose header was cut off by the capture bound.
//!
//! ```text
//! Traceback (most recent call last):
//!   File "/home/alice/work/run.py", line 3, in <module>
//!     FailureReporter.raise_error()
//!     ~~~~~~~~~~~~~~~~~~~~~~~~~~~^^
//!   File "/env/site-packages/esa_climate_toolbox/util/reporting.py", line 13, in raise_error
//!     raise Exception("This is an error to test the reporting functionality.")
//! Exception: This is an error to test the reporting functionality.
//! ```
//!
//! The same with `logging.exception`'s record line before it, and loguru's
//! form (`> File "..."` marks the frame that caught it; `│ └ value`
//! annotation lines and blank lines between frames are read past).
//!
//! Format reference: CPython `Lib/traceback.py` (`StackSummary.format`,
//! `TracebackException.format`, `_ExceptionPrintContext`).

use std::sync::LazyLock;

use regex::Regex;

use super::{
    Chain, Exception, Failure, Format, Found, Frame, Input, Kind, is_log_record, join_message,
    looks_like_log_line, number, refine_nothing, tick,
};

pub(super) const FORMAT: Format = Format {
    name: "python",
    anchors: &["Traceback", "  File ", "> File "],
    inert_lines: &[HEADER, GROUP_HEADER],
    find,
    refine: refine_nothing,
};

const HEADER: &str = "Traceback (most recent call last):";
/// A top-level exception group's header; nested groups are drawn inside
/// its boxes, deeper. Its own lines are prefixed `  | `.
const GROUP_HEADER: &str = "  + Exception Group Traceback (most recent call last):";
const GROUP_PREFIX: &str = "  |";
const GROUP_INDENT: usize = 2;
pub(super) const CAUSE: &str =
    "The above exception was the direct cause of the following exception:";
pub(super) const CONTEXT: &str =
    "During handling of the above exception, another exception occurred:";

/// More noise lines than this between two frames ends a traceback: it was
/// not a traceback we can read, and we must stay linear.
pub(super) const MAX_NOISE: usize = 64;
/// Message lines kept after the exception line.
const MAX_MESSAGE_LINES: usize = 2_000;

static REPEATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^  \[Previous line repeated (?P<n>\d+) more times?\]$").expect("valid regex")
});
/// `Class: message`, `Class:` or `Class` alone, where the class is a
/// dotted name (`xarray.core.merge.MergeError`, `__main__.<locals>.E`): the
/// class and the message. By hand: it is tried on many lines, and a regex
/// with captures cost a tenth of the whole parse.
pub(super) fn exception_line(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if !b
        .first()
        .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_')
    {
        return None;
    }
    let mut i = 1;
    loop {
        while b
            .get(i)
            .is_some_and(|&c| word(c) || (i > 0 && is_dotted_part(b, i)))
        {
            i += 1;
        }
        if b.get(i) == Some(&b'.')
            && b.get(i + 1)
                .is_some_and(|&c| c.is_ascii_alphabetic() || matches!(c, b'_' | b'<' | b'>'))
        {
            i += 2;
            continue;
        }
        break;
    }
    let class = &line[..i];
    match &b[i..] {
        [] | [b':'] => Some((class, "")),
        [b':', b' ', ..] => Some((class, &line[i + 2..])),
        _ => None,
    }
}

/// `<` and `>` are name characters after the first dot only
/// (`<locals>`).
fn is_dotted_part(b: &[u8], i: usize) -> bool {
    matches!(b[i], b'<' | b'>') && b[..i].contains(&b'.')
}
fn find(input: Input<'_>, found: &mut Found) {
    if found.keep == usize::MAX {
        scan(input, true, &mut |failure, _| found.push(failure));
        return;
    }
    // Only the last few are kept, and a long tail may hold thousands of
    // tracebacks: find where they start without building them (their
    // strings were most of the cost), then build those kept.
    let mut starts = std::collections::VecDeque::with_capacity(found.keep.min(64));
    scan(input, false, &mut |_, start| {
        if starts.len() == found.keep {
            starts.pop_front();
        }
        starts.push_back(start);
    });
    let lines = input.lines;
    for start in starts {
        let mut ends = MessageEnds::default();
        let built = match start {
            Start::Chain(i) => parse_chain(lines, i, &mut ends, true).map(|(f, _)| f),
            Start::Headerless(i) => parse_body(&lines[i..], ends.at(i), true)
                .ok()
                .map(|(exception, used)| failure(vec![exception], i, i + used.max(1))),
        };
        if let Some(f) = built {
            found.push(f);
        }
    }
}

/// Where [`scan`] found a failure, to read it again in full.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// At a traceback header: a chain.
    Chain(usize),
    /// At a frame line: a traceback without a header.
    Headerless(usize),
}

/// Finds every traceback, in order. With `build` false the failures have
/// their spans and classes only (no frames' or messages' strings); reading
/// again from their [`Start`] with `build` gives them whole.
fn scan(input: Input<'_>, build: bool, found: &mut dyn FnMut(Failure, Start)) {
    let lines = input.lines;
    let mut seen_header = false;
    let mut ends = MessageEnds::default();
    let mut i = 0;
    while i < lines.len() {
        tick(1);
        let line = lines[i];
        if is_block_header(line) {
            seen_header = true;
            match parse_chain(lines, i, &mut ends, build) {
                Some((failure, next)) => {
                    found(failure, Start::Chain(i));
                    i = next.max(i + 1);
                }
                None => i += 1,
            }
            continue;
        }
        // Tracebacks without a header: a SyntaxError in the main script
        // (Python prints only its location), or a tail whose start, header
        // included, was cut off.
        if let Some(c) = frame(line) {
            let syntax_location = c.func.is_none();
            if syntax_location || (input.truncated && !seen_header) {
                match parse_body(&lines[i..], ends.at(i), build) {
                    Ok((exception, used)) => {
                        if !syntax_location || is_syntax_error(&exception.class) {
                            found(
                                failure(vec![exception], i, i + used.max(1)),
                                Start::Headerless(i),
                            );
                            seen_header = true;
                        }
                        // A later start inside these lines would end at
                        // the same exception line: skip them, which keeps
                        // this linear.
                        i += used.max(1);
                        continue;
                    }
                    // Likewise every start inside the frames just read
                    // would fail the same way.
                    Err(skip) => {
                        i += skip.max(1);
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
}

fn is_syntax_error(class: &str) -> bool {
    matches!(
        class.rsplit('.').next(),
        Some("SyntaxError" | "IndentationError" | "TabError")
    )
}

pub(super) fn is_block_header(line: &str) -> bool {
    line == HEADER || line == GROUP_HEADER
}

/// The failure a chain makes: its last exception, with the others as its
/// causes, on lines `start..end` (at least one).
pub(super) fn failure(mut chain: Vec<Exception>, start: usize, end: usize) -> Failure {
    let exception = chain.pop().unwrap_or_default();
    Failure {
        kind: Kind::PythonTraceback,
        exception,
        causes: chain,
        start,
        end: end.max(start + 1),
        ..Failure::default()
    }
}

/// The separator line `line` is, if any.
pub(super) fn separator(line: &str) -> Option<Chain> {
    match line {
        CAUSE => Some(Chain::Cause),
        CONTEXT => Some(Chain::Context),
        _ => None,
    }
}

/// Parses a chain of blocks starting at the header on line `start`;
/// returns the failure and the index of the first line after it.
fn parse_chain(
    lines: &[&str],
    start: usize,
    ends: &mut MessageEnds,
    build: bool,
) -> Option<(Failure, usize)> {
    let mut chain: Vec<Exception> = Vec::new();
    let mut i = start;
    loop {
        let (exception, next) = parse_block(lines, i, ends, build)?;
        chain.push(exception);
        i = next;
        // A chain goes on with: blank, separator, blank, header.
        let mut j = i;
        while j < lines.len() && lines[j].is_empty() {
            tick(1);
            j += 1;
        }
        if let Some(link) = lines.get(j).and_then(|l| separator(l)) {
            j += 1;
            while j < lines.len() && lines[j].is_empty() {
                tick(1);
                j += 1;
            }
            if j < lines.len() && is_block_header(lines[j]) {
                if let Some(prev) = chain.last_mut() {
                    prev.chain = Some(link);
                }
                i = j;
                continue;
            }
        }
        break;
    }
    Some((failure(chain, start, i.max(start + 1)), i))
}

/// Parses one block (plain or exception group) whose header is on line `i`.
fn parse_block(
    lines: &[&str],
    i: usize,
    ends: &mut MessageEnds,
    build: bool,
) -> Option<(Exception, usize)> {
    if lines[i] == HEADER {
        let (exception, used) = parse_body(&lines[i + 1..], ends.at(i + 1), build).ok()?;
        return Some((exception, i + 1 + used));
    }
    // An exception group: its own traceback is drawn behind "  | ", its
    // sub-exceptions in deeper boxes. Like the toolbox's reporter, which
    // walks only the group's own __traceback__, we keep the group's frames.
    let mut content = Vec::new();
    let mut j = i + 1;
    while j < lines.len() {
        tick(1);
        match lines[j].strip_prefix(GROUP_PREFIX) {
            Some(rest) => content.push(rest.strip_prefix(' ').unwrap_or(rest)),
            None => break,
        }
        j += 1;
    }
    let (exception, _) = parse_body(&content, &mut MessageEnds::default(), build).ok()?;
    // Skip the sub-exception boxes: every line indented at least as deep
    // as the group whose first visible character is a box character.
    while j < lines.len() {
        tick(1);
        let l = lines[j];
        let lead = l.len() - l.trim_start().len();
        if lead >= GROUP_INDENT && l.trim_start().starts_with(['+', '|']) {
            j += 1;
        } else {
            break;
        }
    }
    Some((exception, j))
}

/// A parsed frame line: `  File "PATH", line N, in FUNC`, or
/// `  File "PATH", line N` for a SyntaxError's location. Parsed by hand: it
/// is the hot path of the parser (every line is tested).
pub(super) struct FrameLine<'a> {
    pub(super) file: &'a str,
    pub(super) line: &'a str,
    pub(super) func: Option<&'a str>,
}

pub(super) fn frame(line: &str) -> Option<FrameLine<'_>> {
    // loguru marks the frame where the exception was caught with `>`.
    let rest = line
        .strip_prefix("  File \"")
        .or_else(|| line.strip_prefix("> File \""))?;
    // The path may contain `", line ` itself; the last one is the marker.
    // A function's name seldom has a `"`, so it is nearly always at the
    // last `"`: found so without building a substring searcher, which cost
    // more than the rest of this line.
    let last = memchr::memrchr(b'"', rest.as_bytes())?;
    let at = if rest[last..].starts_with("\", line ") {
        last
    } else {
        rest[..last].rfind("\", line ")?
    };
    let file = &rest[..at];
    let after = &rest[at + 8..];
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (num, tail) = after.split_at(digits);
    let func = match tail {
        "" => None,
        t => Some(t.strip_prefix(", in ")?),
    };
    Some(FrameLine {
        file,
        line: num,
        func,
    })
}

/// loguru's variable annotations under a source line (`│`, `└`): not part
/// of what Python prints.
fn is_annotation(code: &str) -> bool {
    code.trim_start().starts_with(['│', '└'])
}

/// Parses frames, then the exception line and its message, from the top of
/// `lines`. Returns the exception and how many lines it used; or, when no
/// exception line ends the frames, how many lines can be skipped.
///
/// With `build` false, only the class is read (no frames, no message), at
/// the same cost in lines visited and a fraction in allocations.
pub(super) fn parse_body(
    lines: &[&str],
    ends: &mut MessageEnds,
    build: bool,
) -> Result<(Exception, usize), usize> {
    let mut frames: Vec<Frame> = Vec::new();
    // Whether a frame was read: `frames` stays empty unless `build`.
    let mut in_frame = false;
    let mut noise = 0;
    let mut last_frame_end = 0;
    let mut i = 0;
    let (class, first) = loop {
        let Some(&line) = lines.get(i) else {
            return Err(i);
        };
        tick(1);
        // Another header: this traceback was cut short.
        if is_block_header(line) {
            return Err(i.max(last_frame_end));
        }
        i += 1;
        if let Some(c) = frame(line) {
            last_frame_end = i;
            in_frame = true;
            if build {
                frames.push(Frame {
                    file: Some(c.file.to_string()),
                    line: number(c.line),
                    function: c.func.map(str::to_string),
                    ..Frame::default()
                });
            }
            noise = 0;
        } else if let Some(c) = line
            .starts_with("  [Previous")
            .then(|| {
                tick(1);
                REPEATED.captures(line)
            })
            .flatten()
        {
            if let Some(f) = frames.last_mut() {
                f.repeated = number(&c["n"]);
            }
        } else if let Some(code) = line.strip_prefix("    ") {
            // A source line, then possibly a marker line (3.11+ `~~~^^^`,
            // SyntaxError carets), further lines of a multi-line statement
            // and `...<N lines>...` (3.13): all kept, as format_tb has them.
            if in_frame && !is_annotation(code) {
                last_frame_end = i;
                if let Some(f) = frames.last_mut() {
                    if f.source.is_none() {
                        f.source = Some(code.to_string());
                    } else if f.marker.is_none() && f.lines.is_empty() && is_marker(code) {
                        f.marker = Some(code.to_string());
                    } else {
                        f.lines.push(code.to_string());
                    }
                }
            }
        } else if !line.starts_with(' ') && !looks_like_log_line(line) && !line.is_empty() {
            tick(1);
            if let Some((class, msg)) = exception_line(line) {
                break (class.to_string(), msg);
            }
            noise += 1;
        } else {
            // Interleaved output of another thread or process; loguru's
            // blank lines between frames.
            noise += 1;
        }
        if noise > MAX_NOISE {
            return Err(last_frame_end);
        }
    };
    let (message, used) = if build {
        read_message(lines, i, first, ends)
    } else {
        (String::new(), message_end(lines, i, ends))
    };
    let exception = Exception {
        class,
        message,
        frames,
        ..Exception::default()
    };
    Ok((exception, used))
}

/// The message that starts with `first` (the rest of the exception line)
/// and goes on over the lines from `i` (multi-line messages, notes) until
/// something that is clearly not part of it. Returns it and the index of
/// the first line after it.
pub(super) fn read_message(
    lines: &[&str],
    i: usize,
    first: &str,
    ends: &mut MessageEnds,
) -> (String, usize) {
    let end = message_end(lines, i, ends);
    let mut message = Vec::with_capacity(1 + end - i);
    message.push(first);
    message.extend_from_slice(&lines[i..end]);
    (join_message(&message), end)
}

/// Where the message whose further lines start at `i` ends: the index of
/// the first line after it (trailing blank lines belong to whatever comes
/// next).
fn message_end(lines: &[&str], i: usize, ends: &mut MessageEnds) -> usize {
    let mut j = i;
    // The exception line counts as the message's first line.
    while j < lines.len() && 1 + j - i < MAX_MESSAGE_LINES {
        tick(1);
        if ends.ends_message(lines, j) {
            break;
        }
        j += 1;
    }
    while j > i && lines[j - 1].is_empty() {
        j -= 1;
    }
    j
}

/// A shell's prompt printed after the program ended (PowerShell `PS C:\x>`,
/// cmd `C:\x>`): the output of a pasted console session.
fn is_shell_prompt(line: &str) -> bool {
    let l = line.strip_prefix("PS ").unwrap_or(line).as_bytes();
    l.len() >= 4 && l[0].is_ascii_alphabetic() && l[1] == b':' && l[2] == b'\\' && l.ends_with(b">")
}

fn is_marker(code: &str) -> bool {
    let t = code.trim();
    !t.is_empty() && t.chars().all(|c| matches!(c, '~' | '^' | ' '))
}

/// Decides where messages end, remembering the look-ahead over a run of
/// blank lines so that each blank line is looked past once, not once per
/// message that reaches it (which made long runs of blank lines cost
/// hundreds of steps a line).
#[derive(Debug, Default)]
pub(super) struct MessageEnds {
    /// Index offset of the slice being read in the whole text.
    offset: usize,
    /// A run of blank lines already looked past, in whole-text indices,
    /// and whether what follows it ends a message.
    run: Option<(usize, usize, bool)>,
}

impl MessageEnds {
    /// The same cache, for reading the slice of the text that starts at
    /// `offset`.
    pub(super) fn at(&mut self, offset: usize) -> &mut MessageEnds {
        self.offset = offset;
        self
    }

    fn ends_message(&mut self, lines: &[&str], i: usize) -> bool {
        let line = lines[i];
        if is_block_header(line)
            || separator(line).is_some()
            || line.starts_with("Fatal Python error: ")
            || line.starts_with("thread '")
            || line.starts_with("Exception in thread ")
            || line.starts_with("Exception ignored in")
            || frame(line).is_some()
            || is_log_record(line)
            || is_shell_prompt(line)
        {
            return true;
        }
        if line.is_empty() {
            // A blank line before a chain separator or a new traceback
            // ends the message; a blank line inside a multi-line message
            // does not. The look-ahead is bounded, like the message, and
            // remembered for the whole run of blank lines.
            let at = self.offset + i;
            if let Some((from, to, ends)) = self.run
                && (from..to).contains(&at)
            {
                return ends;
            }
            let mut j = i;
            while j < lines.len() && j - i < MAX_MESSAGE_LINES && lines[j].is_empty() {
                tick(1);
                j += 1;
            }
            let ends = lines.get(j).is_none_or(|l| {
                j - i >= MAX_MESSAGE_LINES || separator(l).is_some() || is_block_header(l)
            });
            self.run = Some((at, self.offset + j, ends));
            return ends;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::test_lines as lines;

    fn parse(lines: &[&str], truncated: bool) -> Vec<Failure> {
        crate::parse::test_find_lines(&FORMAT, lines, truncated)
    }

    #[test]
    fn exception_lines() {
        for (line, want) in [
            ("ValueError: x", Some(("ValueError", "x"))),
            ("ValueError", Some(("ValueError", ""))),
            ("ValueError:", Some(("ValueError", ""))),
            (
                "xarray.core.merge.MergeError: a: b",
                Some(("xarray.core.merge.MergeError", "a: b")),
            ),
            ("__main__.<locals>.E: x", Some(("__main__.<locals>.E", "x"))),
            ("Traceback (most recent call last):", None),
            ("ValueError:x", None),
            ("x. y", None),
            ("<E>: x", None),
            ("3 != 4", None),
        ] {
            assert_eq!(exception_line(line), want, "{line}");
        }
    }

    #[test]
    fn plain_traceback() {
        let text = lines(
            "Traceback (most recent call last):\n  File \"/a/run.py\", line 3, in <module>\n    main()\n  File \"/a/run.py\", line 2, in main\n    1 / 0\n    ~~^~~\nZeroDivisionError: division by zero\n",
        );
        let got = parse(&text, false);
        assert_eq!(got.len(), 1);
        let e = &got[0].exception;
        assert_eq!(e.class, "ZeroDivisionError");
        assert_eq!(e.message, "division by zero");
        assert_eq!(e.frames.len(), 2);
        assert_eq!(e.frames[1].function.as_deref(), Some("main"));
        assert_eq!(e.frames[1].source.as_deref(), Some("1 / 0"));
        assert_eq!(e.frames[1].marker.as_deref(), Some("~~^~~"));
    }

    #[test]
    fn no_message_and_dotted_class() {
        let text = lines(
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nValueError\n",
        );
        assert_eq!(parse(&text, false)[0].exception.message, "");
        let text = lines(
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nxarray.core.merge.MergeError: conflicting values\n",
        );
        assert_eq!(
            parse(&text, false)[0].exception.class,
            "xarray.core.merge.MergeError"
        );
    }

    #[test]
    fn chain_keeps_last_and_causes() {
        let text = lines(
            "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\nKeyError: 'x'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"a.py\", line 3, in g\n  File \"a.py\", line 4, in h\nRuntimeError: wrapped\n",
        );
        let got = parse(&text, false);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].exception.class, "RuntimeError");
        assert_eq!(got[0].exception.frames.len(), 2);
        assert_eq!(got[0].causes.len(), 1);
        assert_eq!(got[0].causes[0].message, "'x'");
    }

    #[test]
    fn truncated_tail_without_header() {
        let text = lines(
            "  File \"a.py\", line 3, in g\n    g()\nRecursionError: maximum recursion depth exceeded\n",
        );
        assert_eq!(parse(&text, true).len(), 1);
        assert!(parse(&text, false).is_empty());
    }

    #[test]
    fn interleaved_log_lines_are_skipped() {
        let text = lines(
            "Traceback (most recent call last):\n  File \"a.py\", line 3, in g\n2024-01-01 12:00:00 INFO other thread\n  File \"a.py\", line 4, in h\nOSError: disk full\nINFO:root:after\n",
        );
        let got = parse(&text, false);
        assert_eq!(got[0].exception.frames.len(), 2);
        assert_eq!(got[0].exception.message, "disk full");
    }

    #[test]
    fn console_prompt_ends_the_message() {
        let text = lines(
            "Traceback (most recent call last):\n  File \"C:\\x.py\", line 1, in <module>\nOSError: bad\nPS C:\\Users\\me>",
        );
        assert_eq!(parse(&text, false)[0].exception.message, "bad");
    }

    #[test]
    fn garbage_is_not_a_failure() {
        for s in [
            "Traceback (most recent call last):",
            "Traceback (most recent call last):\n  File \"x\", line 1, in y\n",
            "  File \"x\", line 1\n",
        ] {
            assert!(parse(&lines(s), false).is_empty(), "{s:?}");
        }
    }
}

//! Rust panics and backtraces, in both message formats:
//!
//! - before Rust 1.73: `thread 'main' panicked at 'MSG', src/main.rs:2:5`
//!   (the message may span lines before the closing `', FILE:L:C`);
//! - since: `thread 'main' panicked at src/main.rs:2:5:` with the message on
//!   the following lines; recent compilers add the thread id,
//!   `thread 'main' (12345) panicked at ...` (any id in the parentheses);
//!   some runtimes print no `thread '...'` part at all.
//!
//! ```text
//! thread 'main' (4242) panicked at src/grid.rs:12:5:
//! index out of bounds: the len is 3 but the index is 7
//! stack backtrace:
//!    0: rust_begin_unwind
//!              at /rustc/.../library/std/src/panicking.rs:665:5
//!    1: ect_core::grid::regrid
//!              at ./src/grid.rs:12:5
//!       [... omitted 2 frames ...]
//! note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
//! ```
//!
//! Backtraces (`RUST_BACKTRACE=1`: `  N: SYMBOL`, `=full`: `  N: 0xADDR -
//! SYMBOL`, each optionally followed by `at FILE:L:C`) become the frames;
//! without one, the panic location is the only frame. A run of panics that
//! ends in an abort (a panic while panicking, a panic in a function that
//! cannot unwind) is one failure: the original panic, with the others kept
//! as causes. Format reference: Rust `library/std/src/panicking.rs`
//! (`default_hook`) and `library/std/src/sys/backtrace.rs`.

use std::sync::LazyLock;

use regex::Regex;

use super::{
    Exception, Failure, Format, Found, Frame, Input, Kind, join_message, number, refine_nothing,
    tick,
};

pub(super) const FORMAT: Format = Format {
    name: "rust-panic",
    anchors: &["panicked"],
    inert_lines: &[],
    find,
    refine: refine_nothing,
};

const MAX_MESSAGE_LINES: usize = 200;
const MAX_FRAMES: usize = 10_000;

static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:thread '(?P<thread>[^']*)'(?: \((?:[^()]|\([^()]*\))*\))? )?panicked at (?P<rest>.*)$")
        .expect("valid regex")
});
/// `FILE:LINE:COL:` (new format) or `FILE:LINE:COL` / `FILE:LINE`.
static LOCATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?:?$").expect("valid regex")
});
/// Old format's end of message: `...', FILE:L:C`.
static OLD_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<msg>.*)', (?P<loc>[^,]+:\d+(?::\d+)?)$").expect("valid regex")
});
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^ *(?P<n>\d+): +(?:0x[0-9a-fA-F]+ - )?(?P<sym>.+)$").expect("valid regex")
});
static AT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^ +at (?P<file>.+?)(?::(?P<line>\d+)(?::(?P<col>\d+))?)?$").expect("valid regex")
});

/// Messages std prints for the second panic of an aborting run.
const ABORT_MESSAGES: [&str; 4] = [
    "panic in a function that cannot unwind",
    "panic in a destructor during cleanup",
    "panic in a drop during cleanup",
    "panicked while processing panic",
];
const ABORT_LINES: [&str; 3] = [
    "thread caused non-unwinding panic. aborting.",
    "panicked while processing panic. aborting.",
    "thread panicked while processing panic. aborting.",
];

/// One parsed panic block and the lines it spans.
struct Block {
    failure: Failure,
    end: usize,
    /// The block ended with std's abort line.
    aborted: bool,
}

fn find(input: Input<'_>, found: &mut Found) {
    let lines = input.lines;
    let mut blocks: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        tick(1);
        match parse_block(lines, i) {
            Some(b) => {
                i = b.end.max(i + 1);
                blocks.push(b);
            }
            None => i += 1,
        }
    }
    for f in merge_aborting_runs(blocks, lines) {
        found.push(f);
    }
}

/// Folds each run of adjacent panics that ends in an abort into its first
/// panic (the user's), keeping the rest as causes.
fn merge_aborting_runs(blocks: Vec<Block>, lines: &[&str]) -> Vec<Failure> {
    let mut out: Vec<Failure> = Vec::new();
    let mut run: Vec<Block> = Vec::new();
    let flush = |run: &mut Vec<Block>, out: &mut Vec<Failure>| {
        let aborts = run
            .iter()
            .any(|b| b.aborted || is_abort_message(&b.failure));
        if aborts && run.len() > 1 {
            let mut drained = run.drain(..);
            if let Some(first) = drained.next() {
                let mut f = first.failure;
                let mut end = f.end;
                f.causes = drained
                    .map(|b| {
                        end = end.max(b.failure.end);
                        b.failure.exception
                    })
                    .collect();
                f.end = end;
                out.push(f);
            }
        } else {
            out.extend(run.drain(..).map(|b| b.failure));
        }
    };
    for b in blocks {
        let adjacent = run.last().is_some_and(|prev| {
            prev.failure.thread == b.failure.thread
                && lines[prev.end..b.failure.start]
                    .iter()
                    .all(|l| l.trim().is_empty())
        });
        if !adjacent {
            flush(&mut run, &mut out);
        }
        run.push(b);
    }
    flush(&mut run, &mut out);
    out
}

fn is_abort_message(f: &Failure) -> bool {
    ABORT_MESSAGES
        .iter()
        .any(|m| f.exception.message.starts_with(m))
}

fn parse_block(lines: &[&str], start: usize) -> Option<Block> {
    if !is_header(lines[start]) {
        return None;
    }
    tick(1);
    let caps = HEADER.captures(lines[start])?;
    let thread = caps.name("thread").map(|m| m.as_str().to_string());
    let rest = caps.name("rest").map_or("", |m| m.as_str());
    let mut i = start + 1;
    let (message, location) = if let Some(old) = rest.strip_prefix('\'') {
        // Old format: the message runs to the line ending in `', FILE:L:C`.
        let mut msg_lines: Vec<&str> = Vec::new();
        let mut current = old;
        loop {
            if let Some(c) = OLD_END.captures(current) {
                msg_lines.push(c.name("msg").map_or("", |m| m.as_str()));
                break (join_message(&msg_lines), location(&c["loc"]));
            }
            msg_lines.push(current);
            let next_is_panic = lines.get(i).is_some_and(|l| is_header(l));
            if i >= lines.len() || msg_lines.len() > MAX_MESSAGE_LINES || next_is_panic {
                // No closing quote: keep what we have, without a location.
                break (join_message(&msg_lines), None);
            }
            tick(2);
            current = lines[i];
            i += 1;
        }
    } else {
        let location = location(rest);
        let mut msg_lines: Vec<&str> = Vec::new();
        while i < lines.len() && msg_lines.len() < MAX_MESSAGE_LINES {
            tick(1);
            let l = lines[i];
            // A Python traceback right after the message is pyo3's
            // PanicException (see pyo3.rs), not more of the message.
            if l.starts_with("note: ")
                || l == "stack backtrace:"
                || l == "Traceback (most recent call last):"
                || is_header(l)
                || ABORT_LINES.contains(&l)
            {
                break;
            }
            msg_lines.push(l);
            i += 1;
        }
        (join_message(&msg_lines), location)
    };
    // What may follow: a note, the backtrace, its closing note, the abort.
    let mut frames: Vec<Frame> = Vec::new();
    let mut aborted = false;
    let mut in_backtrace = false;
    while i < lines.len() {
        tick(3);
        let l = lines[i];
        if l == "stack backtrace:" {
            in_backtrace = true;
        } else if l.starts_with("note: ") {
            // "note: run with `RUST_BACKTRACE=1`..." or the closing note
            // "note: Some details are omitted...".
            in_backtrace = false;
        } else if ABORT_LINES.contains(&l) {
            aborted = true;
            i += 1;
            break;
        } else if in_backtrace {
            if let Some(c) = FRAME.captures(l) {
                if frames.len() < MAX_FRAMES {
                    frames.push(Frame {
                        function: Some(c["sym"].to_string()),
                        ..Frame::default()
                    });
                }
            } else if is_omitted(l) {
                // `[... omitted N frames ...]`: std's short backtrace
                // leaves out its own frames.
            } else if let Some(c) = AT.captures(l) {
                if let Some(f) = frames.last_mut() {
                    f.file = Some(c["file"].to_string());
                    f.line = c.name("line").and_then(|m| number(m.as_str()));
                    f.column = c.name("col").and_then(|m| number(m.as_str()));
                }
            } else {
                break;
            }
        } else {
            break;
        }
        i += 1;
    }
    if frames.is_empty()
        && let Some(loc) = &location
    {
        frames.push(loc.clone());
    }
    // A message ending with blank lines: those belong to what follows.
    Some(Block {
        failure: Failure {
            kind: Kind::RustPanic,
            exception: Exception {
                class: "panic".to_string(),
                message,
                frames,
                ..Exception::default()
            },
            causes: Vec::new(),
            location,
            thread,
            start,
            end: i.max(start + 1),
        },
        end: i,
        aborted,
    })
}

/// A panic's first line; the cheap test first, as most lines are not.
fn is_header(line: &str) -> bool {
    (line.starts_with("thread '") || line.starts_with("panicked at ")) && {
        tick(1);
        HEADER.is_match(line)
    }
}

fn is_omitted(l: &str) -> bool {
    let t = l.trim();
    t.starts_with("[... omitted ") && t.ends_with(" ...]")
}

fn location(s: &str) -> Option<Frame> {
    let c = LOCATION.captures(s.trim())?;
    Some(Frame {
        file: Some(c["file"].to_string()),
        line: number(&c["line"]),
        column: c.name("col").and_then(|m| number(m.as_str())),
        ..Frame::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::test_lines as lines;

    fn parse(lines: &[&str]) -> Vec<Failure> {
        crate::parse::test_find_lines(&FORMAT, lines, false)
    }

    #[test]
    fn new_format_without_backtrace() {
        let got = parse(&lines(
            "thread 'main' (42) panicked at src/lib.rs:7:9:\nbad\nthings\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        ));
        assert_eq!(got.len(), 1);
        let f = &got[0];
        assert_eq!(f.exception.message, "bad\nthings");
        assert_eq!(f.thread.as_deref(), Some("main"));
        assert_eq!(f.exception.frames.len(), 1);
        assert_eq!(f.exception.frames[0].file.as_deref(), Some("src/lib.rs"));
        assert_eq!(f.exception.frames[0].column, Some(9));
    }

    #[test]
    fn header_variants() {
        for (text, thread, line) in [
            (
                "thread 'main' (0x1a2b) panicked at src/a.rs:3:9:\nx\n",
                Some("main"),
                Some(3),
            ),
            (
                "thread 'main' (ThreadId(1)) panicked at src/a.rs:3:9:\nx\n",
                Some("main"),
                Some(3),
            ),
            ("panicked at src/a.rs:4:1:\nx\n", None, Some(4)),
            (
                "thread 'main' panicked at <redacted>:0:0:\nx\n",
                Some("main"),
                Some(0),
            ),
        ] {
            let got = parse(&lines(text));
            assert_eq!(got.len(), 1, "{text}");
            assert_eq!(got[0].thread.as_deref(), thread, "{text}");
            assert_eq!(
                got[0].location.as_ref().and_then(|l| l.line),
                line,
                "{text}"
            );
            assert_eq!(got[0].exception.message, "x", "{text}");
        }
    }

    #[test]
    fn omitted_and_unknown_frames() {
        let got = parse(&lines(
            "thread 'main' panicked at src/main.rs:2:5:\nx\nstack backtrace:\n   0: rust_begin_unwind\n      [... omitted 2 frames ...]\n   3: <unknown>\n   4: ect_core::run\n",
        ));
        let frames = &got[0].exception.frames;
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].function.as_deref(), Some("<unknown>"));
    }

    #[test]
    fn old_format_multiline() {
        let got = parse(&lines(
            "thread '<unnamed>' panicked at 'first\nsecond', src/main.rs:2:5\n",
        ));
        assert_eq!(got[0].exception.message, "first\nsecond");
        assert_eq!(got[0].location.as_ref().and_then(|l| l.line), Some(2));
    }

    #[test]
    fn backtrace_frames() {
        let got = parse(&lines(
            "thread 'main' panicked at src/main.rs:2:5:\nx\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/abc/library/std/src/panicking.rs:645:5\n   1:     0x55d4 - ect_core::run::h0123456789abcdef\n   2: main\nnote: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n",
        ));
        let frames = &got[0].exception.frames;
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].line, Some(645));
        assert_eq!(
            frames[1].function.as_deref(),
            Some("ect_core::run::h0123456789abcdef")
        );
    }
}

//! rich's tracebacks (`rich.traceback.install()`, typer and other rich
//! command-line programs): frames drawn in a box, the exception below it.
//! Long paths are wrapped over several lines of the box:
//!
//! ```text
//! ╭───────────────────── Traceback (most recent call last) ──────────────────────╮
//! │ /home/alice/work/run.py:8 in <module>                                        │
//! │                                                                              │
//! │ ❱ 8 main(3)                                                                  │
//! │                                                                              │
//! │ /home/alice/envs/ect/lib/python3.12/site-packages/esa_climate_toolbox/util/r │
//! │ eporting.py:13 in raise_error                                                │
//! │                                                                              │
//! │ ❱ 13 │   │   raise Exception("This is an error to test the reporting functio │
//! ╰──────────────────────────────────────────────────────────────────────────────╯
//! Exception: This is an error to test the reporting functionality.
//! ```
//!
//! Chains are separated as in Python. The source line is rich's (cut at
//! the box's width), not Python's. Format reference: rich
//! `rich/traceback.py` (`Traceback._render_stack`).

use super::python::{MessageEnds, exception_line, read_message, separator};
use super::{Exception, Failure, Format, Found, Frame, Input, Kind, number, refine_nothing, tick};

pub(super) const FORMAT: Format = Format {
    name: "rich",
    anchors: &["Traceback"],
    inert_lines: &[],
    find,
    refine: refine_nothing,
};

const TOP: &str = "╭";
const TITLE: &str = " Traceback (most recent call last) ";
const BOTTOM: &str = "╰";
const SIDE: char = '│';
/// Box lines looked at for one traceback at most.
const MAX_BOX_LINES: usize = 20_000;

fn find(input: Input<'_>, found: &mut Found) {
    let lines = input.lines;
    let mut ends = MessageEnds::default();
    let mut i = 0;
    while i < lines.len() {
        tick(1);
        if !is_top(lines[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut chain: Vec<Exception> = Vec::new();
        let mut at = i;
        while let Some((e, next)) = read_box(lines, at, &mut ends) {
            chain.push(e);
            at = next;
            // Blank, separator, blank, next box.
            let mut j = next;
            while lines.get(j).is_some_and(|l| l.is_empty()) {
                j += 1;
            }
            let Some(link) = lines.get(j).and_then(|l| separator(l)) else {
                break;
            };
            j += 1;
            while lines.get(j).is_some_and(|l| l.is_empty()) {
                j += 1;
            }
            if !lines.get(j).is_some_and(|l| is_top(l)) {
                break;
            }
            if let Some(prev) = chain.last_mut() {
                prev.chain = Some(link);
            }
            at = j;
        }
        if let Some(exception) = chain.pop() {
            found.push(Failure {
                kind: Kind::PythonTraceback,
                exception,
                causes: chain,
                start,
                end: at.max(start + 1),
                ..Failure::default()
            });
        }
        i = at.max(i + 1);
    }
}

fn is_top(line: &str) -> bool {
    line.starts_with(TOP) && line.contains(TITLE)
}

/// The text inside a box line, or `None` past the box.
fn inside(line: &str) -> Option<&str> {
    let rest = line.strip_prefix(SIDE)?;
    let rest = rest.strip_suffix(SIDE).unwrap_or(rest);
    Some(rest.strip_prefix(' ').unwrap_or(rest).trim_end())
}

/// One box from its top line at `i`, then the exception under it.
fn read_box(lines: &[&str], i: usize, ends: &mut MessageEnds) -> Option<(Exception, usize)> {
    let mut frames: Vec<Frame> = Vec::new();
    // A frame's location, wrapped over box lines since the last blank one.
    let mut pending = String::new();
    let mut j = i + 1;
    let end = lines.len().min(i + MAX_BOX_LINES);
    while j < end {
        tick(2);
        let line = lines[j];
        j += 1;
        if line.starts_with(BOTTOM) {
            break;
        }
        let text = inside(line)?;
        if text.is_empty() {
            pending.clear();
            continue;
        }
        if let Some(code) = text.strip_prefix('❱') {
            let code = code.trim_start();
            let d = code.bytes().take_while(u8::is_ascii_digit).count();
            if let Some(f) = frames.last_mut() {
                let src = code[d..].trim_start_matches([' ', SIDE]).trim();
                f.source = Some(src.to_string());
            }
            continue;
        }
        // Source context lines start with spaces and a number; notes
        // (`... 3 frames hidden ...`) with spaces too.
        if text.starts_with(' ') {
            continue;
        }
        pending.push_str(text);
        if let Some(frame) = location(&pending) {
            frames.push(frame);
            pending.clear();
        }
    }
    // The exception line follows the box.
    let line = lines.get(j)?;
    let (class, first) = exception_line(line)?;
    let (message, next) = read_message(lines, j + 1, first, ends.at(0));
    Some((
        Exception {
            class: class.to_string(),
            message,
            frames,
            ..Exception::default()
        },
        next,
    ))
}

/// `PATH:LINE in FUNC`.
fn location(text: &str) -> Option<Frame> {
    let (loc, func) = text.rsplit_once(" in ")?;
    let (path, num) = loc.rsplit_once(':')?;
    Some(Frame {
        file: Some(path.to_string()),
        line: Some(number(num)?),
        function: Some(func.to_string()),
        ..Frame::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::test_find;

    #[test]
    fn wrapped_path() {
        let got = test_find(
            &FORMAT,
            "╭───── Traceback (most recent call last) ─────╮\n│ /w/run.py:8 in <module>                       │\n│                                               │\n│ ❱ 8 main(3)                                   │\n│                                               │\n│ /e/site-packages/esa_climate_toolbox/util/r   │\n│ eporting.py:13 in raise_error                 │\n│                                               │\n│   12 │   def raise_error():                   │\n│ ❱ 13 │   │   raise Exception(\"x\")              │\n╰───────────────────────────────────────────────╯\nException: x\n",
            false,
        );
        assert_eq!(got.len(), 1);
        let e = &got[0].exception;
        assert_eq!(e.frames.len(), 2);
        assert_eq!(
            e.frames[1].file.as_deref(),
            Some("/e/site-packages/esa_climate_toolbox/util/reporting.py")
        );
        assert_eq!(
            e.frames[1].source.as_deref(),
            Some("raise Exception(\"x\")")
        );
        assert_eq!(e.message, "x");
    }
}

//! IPython's tracebacks: what `ipython script.py`, Jupyter and the
//! notebook runners (inside their wrapper's message, see [`super::notebook`])
//! print, with context lines around an arrow at the failing line:
//!
//! ```text
//! ---------------------------------------------------------------------------
//! Exception                                 Traceback (most recent call last)
//! Cell In[4], line 1
//! ----> 1 FailureReporter.raise_error()
//!
//! File ~/envs/ect/lib/python3.12/site-packages/esa_climate_toolbox/util/reporting.py:89, in FailureReporter.raise_error()
//!      87 @staticmethod
//!      88 def raise_error():
//! ---> 89     raise Exception("This is an error to test the reporting functionality.")
//!
//! Exception: This is an error to test the reporting functionality.
//! ```
//!
//! Frame lines: `Cell In[N], line L[, in FUNC(ARGS)]`, `File PATH:L[, in
//! FUNC(ARGS)]` (IPython 8), and the older `<ipython-input-N-HASH> in
//! FUNC(ARGS)` and `PATH in FUNC(ARGS)` (IPython 7 and before, the line number
//! only on the arrow). A frame's function is the last part of the printed
//! name, as Python's own traceback names it (`raise_error`, not
//! `FailureReporter.raise_error`). Chains are separated as in Python.
//! Format reference: IPython `core/ultratb.py` (`VerboseTB`).

use super::python::{MAX_NOISE, MessageEnds, exception_line, failure, read_message, separator};
use super::{Exception, Format, Found, Frame, Input, number, refine_nothing, tick};

pub(super) const FORMAT: Format = Format {
    name: "ipython",
    anchors: &["Traceback"],
    inert_lines: &[],
    find,
    refine: refine_nothing,
};

const HEADER_END: &str = "Traceback (most recent call last)";

fn find(input: Input<'_>, found: &mut Found) {
    let lines = input.lines;
    let mut ends = MessageEnds::default();
    let mut i = 0;
    while i < lines.len() {
        tick(1);
        if header_class(lines[i]).is_some()
            && let Some((chain, next)) = read_chain(lines, i, &mut ends)
        {
            let start = if i > 0 && is_rule(lines[i - 1]) {
                i - 1
            } else {
                i
            };
            found.push(failure(chain, start, next));
            i = next.max(i + 1);
            continue;
        }
        i += 1;
    }
}

/// The chain of exceptions in IPython's form found first in `lines` (a
/// wrapper's message), oldest first.
pub(super) fn chain_in(lines: &[&str]) -> Option<Vec<Exception>> {
    let mut ends = MessageEnds::default();
    let at = lines.iter().position(|l| {
        tick(1);
        header_class(l).is_some()
    })?;
    read_chain(lines, at, &mut ends).map(|(chain, _)| chain)
}

/// A dashed rule IPython prints above each traceback.
fn is_rule(line: &str) -> bool {
    line.len() >= 20 && line.bytes().all(|b| b == b'-')
}

/// `ValueError      Traceback (most recent call last)`: the class.
fn header_class(line: &str) -> Option<&str> {
    let class = line.strip_suffix(HEADER_END)?.trim_end();
    let ok = !class.is_empty()
        && line.len() > class.len() + HEADER_END.len()
        && class
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    ok.then_some(class)
}

/// Reads blocks from the header at `i` for as long as chain separators
/// join them; returns the chain and the first line after it.
fn read_chain(lines: &[&str], i: usize, ends: &mut MessageEnds) -> Option<(Vec<Exception>, usize)> {
    let mut chain: Vec<Exception> = Vec::new();
    let mut i = i;
    loop {
        let (exception, next) = read_block(lines, i, ends)?;
        chain.push(exception);
        i = next;
        let mut j = i;
        while lines.get(j).is_some_and(|l| l.is_empty()) {
            tick(1);
            j += 1;
        }
        let Some(link) = lines.get(j).and_then(|l| separator(l)) else {
            break;
        };
        j += 1;
        while lines.get(j).is_some_and(|l| l.is_empty() || is_rule(l)) {
            tick(1);
            j += 1;
        }
        if lines.get(j).is_none_or(|l| header_class(l).is_none()) {
            break;
        }
        if let Some(prev) = chain.last_mut() {
            prev.chain = Some(link);
        }
        i = j;
    }
    Some((chain, i))
}

/// One traceback from its header on line `i` to its exception's message.
fn read_block(lines: &[&str], i: usize, ends: &mut MessageEnds) -> Option<(Exception, usize)> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut noise = 0;
    let mut j = i + 1;
    while j < lines.len() {
        tick(2);
        let line = lines[j];
        j += 1;
        if line.is_empty() || is_context(line) || line.trim_start().starts_with("[... skipping") {
            continue;
        }
        if let Some((n, code)) = arrow(line) {
            if let Some(f) = frames.last_mut() {
                f.line = f.line.or(number(n));
                f.source = Some(code.trim().to_string());
            }
            continue;
        }
        if let Some(f) = frame(line) {
            frames.push(f);
            noise = 0;
            continue;
        }
        if header_class(line).is_some() {
            return None;
        }
        if let Some((class, first)) = exception_line(line) {
            let (message, next) = read_message(lines, j, first, ends.at(0));
            let exception = Exception {
                class: class.to_string(),
                message,
                frames,
                ..Exception::default()
            };
            return Some((exception, next));
        }
        noise += 1;
        if noise > MAX_NOISE {
            return None;
        }
    }
    None
}

/// A context line: a line number right-aligned, then the code.
fn is_context(line: &str) -> bool {
    let t = line.trim_start();
    line.len() > t.len() && t.bytes().next().is_some_and(|b| b.is_ascii_digit()) && {
        let d = t.bytes().take_while(u8::is_ascii_digit).count();
        matches!(t.as_bytes().get(d), Some(b' ') | None)
    }
}

/// The arrow line: `----> 3 run()`, `---> 13     raise ...`.
fn arrow(line: &str) -> Option<(&str, &str)> {
    let dashes = line.bytes().take_while(|&b| b == b'-').count();
    if dashes < 2 {
        return None;
    }
    let rest = line[dashes..].strip_prefix('>')?.trim_start();
    let d = rest.bytes().take_while(u8::is_ascii_digit).count();
    if d == 0 {
        return None;
    }
    let code = rest[d..].strip_prefix(' ').unwrap_or(&rest[d..]);
    Some((&rest[..d], code))
}

/// The function as Python names it: `FailureReporter.raise_error(x=1)` →
/// `raise_error`.
fn function(printed: &str) -> String {
    let name = printed.split('(').next().unwrap_or(printed).trim();
    name.rsplit('.').next().unwrap_or(name).to_string()
}

fn frame(line: &str) -> Option<Frame> {
    // `Cell In[3], line 2[, in f()]`
    if let Some(rest) = line.strip_prefix("Cell In[") {
        let close = rest.find("], line ")?;
        let after = &rest[close + 8..];
        let (num, func) = match after.split_once(", in ") {
            Some((n, f)) => (n, function(f)),
            None => (after, "<module>".to_string()),
        };
        return Some(Frame {
            file: Some(format!("Cell In[{}]", &rest[..close])),
            line: Some(number(num)?),
            function: Some(func),
            ..Frame::default()
        });
    }
    // `File PATH:LINE[, in f()]`
    if let Some(rest) = line.strip_prefix("File ") {
        let (loc, func) = match rest.rsplit_once(", in ") {
            Some((l, f)) => (l, function(f)),
            None => (rest, "<module>".to_string()),
        };
        let (path, num) = loc.rsplit_once(':')?;
        return Some(Frame {
            file: Some(path.to_string()),
            line: Some(number(num)?),
            function: Some(func),
            ..Frame::default()
        });
    }
    // Older: `<ipython-input-2-5f1e> in <module>`, `/x/mod.py in f(a)`.
    let (path, func) = line.rsplit_once(" in ")?;
    let pathlike = path.starts_with("<ipython-input-")
        || path.starts_with('/')
        || path.starts_with('~')
        || path.as_bytes().get(1..3) == Some(b":\\");
    if !pathlike || path.contains(' ') && !path.starts_with('<') {
        return None;
    }
    Some(Frame {
        file: Some(path.to_string()),
        function: Some(function(func)),
        ..Frame::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::test_find;

    #[test]
    fn ipython_8() {
        let got = test_find(
            &FORMAT,
            "---------------------------------------------------------------------------\nException                                 Traceback (most recent call last)\nCell In[4], line 1\n----> 1 FailureReporter.raise_error()\n\nFile ~/x/esa_climate_toolbox/util/reporting.py:89, in FailureReporter.raise_error()\n     87 @staticmethod\n     88 def raise_error():\n---> 89     raise Exception(\"This is an error.\")\n\nException: This is an error.\n",
            false,
        );
        assert_eq!(got.len(), 1);
        let e = &got[0].exception;
        assert_eq!(
            (e.class.as_str(), e.message.as_str()),
            ("Exception", "This is an error.")
        );
        assert_eq!(e.frames.len(), 2);
        assert_eq!(e.frames[1].function.as_deref(), Some("raise_error"));
        assert_eq!(e.frames[1].line, Some(89));
        assert_eq!(
            e.frames[1].source.as_deref(),
            Some("raise Exception(\"This is an error.\")")
        );
        assert_eq!(e.frames[0].function.as_deref(), Some("<module>"));
    }

    #[test]
    fn ipython_7() {
        let got = test_find(
            &FORMAT,
            "ValueError                                Traceback (most recent call last)\n<ipython-input-2-5f1e0b5e0a3c> in <module>\n----> 1 f()\n\n/env/esa_climate_toolbox/ops.py in f(x)\n      3 def f(x):\n----> 4     raise ValueError(x)\n\nValueError: 3\n",
            false,
        );
        let e = &got[0].exception;
        assert_eq!(e.frames.len(), 2);
        assert_eq!(e.frames[1].line, Some(4));
        assert_eq!(
            e.frames[1].file.as_deref(),
            Some("/env/esa_climate_toolbox/ops.py")
        );
    }
}

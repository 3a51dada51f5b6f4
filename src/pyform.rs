//! The forms in which Python (and the other runtimes) print what a report
//! carries: `type(e).__name__`, `repr(e)`, and one frame as
//! `traceback.format_tb`, faulthandler or Rust's backtrace prints it. The
//! toolbox's own reporter sends exactly these, so ect-run rebuilds them
//! from the printed text. Pure string functions.
//!
//! What the printed text cannot give back (README, "Forms read"): a
//! SyntaxError's repr (its location tuple holds the line's original
//! indentation, which Python does not print); an exception group's repr
//! (its sub-exceptions); notes of `add_note`, printed like message lines,
//! except after an OSError's one-line message; an exception made from several arguments (`ValueError('a',
//! 1)`) or a non-str one is rebuilt as if made from its printed message;
//! IPython, rich and loguru print frames in their own forms (IPython's
//! cell frames name no file), so for them the list is rebuilt in Python's
//! form from what they print.

use crate::involvement::Involvement;
use crate::parse::{Chain, Exception, Failure, Frame, Kind};

/// The class as the toolbox's reporter sends it: `type(e).__name__`, the
/// last part of a dotted name.
pub fn short_class(f: &Failure) -> String {
    match f.kind {
        Kind::PythonTraceback => f
            .exception
            .class
            .rsplit('.')
            .next()
            .unwrap_or("")
            .to_string(),
        _ => f.exception.class.clone(),
    }
}

/// `exception-instance`: for Python, what `repr(e)` prints for an
/// exception made from its message; otherwise `class: message`.
pub fn instance(f: &Failure, class: &str, message: &str) -> String {
    if f.kind != Kind::PythonTraceback {
        return if message.is_empty() {
            class.to_string()
        } else {
            format!("{class}: {message}")
        };
    }
    if message.is_empty() {
        return format!("{class}()");
    }
    // KeyError prints repr(key) already: KeyError: 'sst' → KeyError('sst').
    if class == "KeyError" && (message.starts_with('\'') || message.starts_with('"')) {
        return format!("{class}({message})");
    }
    // Notes (add_note) follow on later lines; they are not in the repr.
    let first_line = message.split('\n').next().unwrap_or(message);
    if let Some((errno, strerror)) = os_error_args(first_line) {
        return format!("{class}({errno}, {})", python_repr(strerror));
    }
    format!("{class}({})", python_repr(message))
}

/// The OSError family's `str()` is `[Errno N] STRERROR`, plus `: 'FILE'`
/// (and ` -> 'FILE2'`) when a file name was given; its `repr()` holds only
/// `(N, 'STRERROR')`. Any class can print this shape (socket.gaierror,
/// subclasses in libraries), and its repr is the same, so the class is not
/// checked. Returns the errno and strerror.
fn os_error_args(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("[Errno ")?;
    let (errno, rest) = rest.split_once("] ")?;
    let digits = errno.strip_prefix('-').unwrap_or(errno);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.contains('\n') {
        return None;
    }
    // The file names are Python reprs, quoted: find where they start.
    let strerror = [": '", ": \""]
        .iter()
        .filter_map(|q| rest.find(q))
        .min()
        .map_or(rest, |at| &rest[..at]);
    Some((errno, strerror))
}

/// The `traceback` list of a report, as the toolbox's reporter builds it
/// with `traceback.format_tb`: the failure's own frames, the first and
/// last `keep` of them when there are more (with a note where frames were
/// left out). When the toolbox shows only in a cause (a chained exception,
/// a worker's or notebook cell's traceback, the panic under a pyo3
/// `PanicException`), then the line Python prints between chained
/// tracebacks, then that cause's frames in its own form, so the toolbox
/// team sees its own code. Returns the list and how many frames were left
/// out.
pub fn traceback(f: &Failure, inv: &Involvement, keep: usize) -> (Vec<String>, usize) {
    let mut entries = Vec::new();
    let mut omitted = frames(f.kind, &f.exception, keep, &mut entries);
    if let Some(c) = inv.matched_cause
        && let Some(cause) = f.causes.get(c)
    {
        let link = cause.chain.unwrap_or(Chain::Cause);
        entries.push(format!("\n{}\n\n", link.separator()));
        omitted += frames(cause.kind.unwrap_or(f.kind), cause, keep, &mut entries);
    }
    (entries, omitted)
}

/// Appends one exception's frames; returns how many were left out.
fn frames(kind: Kind, e: &Exception, keep: usize, out: &mut Vec<String>) -> usize {
    let n = e.frames.len();
    let omitted = n.saturating_sub(2 * keep);
    for (i, frame) in e.frames.iter().enumerate() {
        // A SyntaxError's location (`File "x.py", line 4` with no
        // function) is part of the exception's message, not of
        // `format_tb`.
        if kind == Kind::PythonTraceback && frame.function.is_none() {
            continue;
        }
        if omitted > 0 && i >= keep && i < n - keep {
            if i == keep {
                out.push(format!("  [... {omitted} frames omitted by ect-run ...]\n"));
            }
            continue;
        }
        out.extend(format_frame(kind, i, frame));
    }
    omitted
}

/// Python's `repr()` of a str.
pub fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// One frame as `traceback.format_tb` (Python), faulthandler or Rust's
/// backtrace prints it; a repeat note is an entry of its own, as in
/// `format_tb`.
pub fn format_frame(kind: Kind, index: usize, fr: &Frame) -> Vec<String> {
    let file = fr.file.as_deref().unwrap_or("<unknown>");
    let line = fr.line.map_or_else(|| "?".to_string(), |l| l.to_string());
    let mut entries = Vec::new();
    match kind {
        Kind::PythonTraceback => {
            let mut s = match &fr.function {
                Some(func) => format!("  File \"{file}\", line {line}, in {func}\n"),
                None => format!("  File \"{file}\", line {line}\n"),
            };
            if let Some(src) = &fr.source {
                s.push_str(&format!("    {src}\n"));
            }
            if let Some(marker) = &fr.marker {
                s.push_str(&format!("    {marker}\n"));
            }
            // As printed: continuation lines, `...<N lines>...`, markers.
            for l in &fr.lines {
                s.push_str(&format!("    {l}\n"));
            }
            entries.push(s);
            if let Some(n) = fr.repeated {
                let times = if n == 1 { "time" } else { "times" };
                entries.push(format!("  [Previous line repeated {n} more {times}]\n"));
            }
        }
        Kind::PythonFatal => {
            let func = fr.function.as_deref().unwrap_or("???");
            entries.push(format!("  File \"{file}\", line {line} in {func}\n"));
        }
        Kind::RustPanic | Kind::Signal => {
            let mut s = format!(
                "{index:4}: {}\n",
                fr.function.as_deref().unwrap_or("<unknown>")
            );
            if fr.file.is_some() {
                s.push_str(&format!("             at {file}:{line}"));
                if let Some(c) = fr.column {
                    s.push_str(&format!(":{c}"));
                }
                s.push('\n');
            }
            entries.push(s);
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_repr() {
        let f = Failure::default();
        for (class, msg, want) in [
            (
                "OSError",
                "[Errno 22] Invalid argument",
                "OSError(22, 'Invalid argument')",
            ),
            (
                "FileNotFoundError",
                "[Errno 2] No such file or directory: '/data/x.zarr'",
                "FileNotFoundError(2, 'No such file or directory')",
            ),
            (
                "gaierror",
                "[Errno -2] Name or service not known",
                "gaierror(-2, 'Name or service not known')",
            ),
            (
                "FileExistsError",
                "[Errno 17] File exists: 'a' -> 'b'",
                "FileExistsError(17, 'File exists')",
            ),
            ("ValueError", "[Errno x] y", "ValueError('[Errno x] y')"),
        ] {
            assert_eq!(instance(&f, class, msg), want);
        }
    }
}

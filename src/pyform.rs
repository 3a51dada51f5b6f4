//! The forms in which Python (and the other runtimes) print what a report
//! carries: `type(e).__name__`, `repr(e)`, and one frame as
//! `traceback.format_tb`, faulthandler or Rust's backtrace prints it. The
//! toolbox's own reporter sends exactly these, so ect-run rebuilds them
//! from the printed text. Pure string functions.

use crate::parse::{Failure, Frame, Kind};

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
    format!("{class}({})", python_repr(message))
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

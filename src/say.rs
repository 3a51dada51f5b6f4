//! ect-run's own messages on stderr. Writing them never panics and never
//! fails the run: stderr may be closed (`2>&-`) or a pipe whose reader has
//! gone (`2>&1 | head -c 1`), and neither may change what the command's
//! status is or whether its report is handled. (`eprintln!` panics on a
//! failed write, so it is not used.)
//!
//! `say!("...")` writes `ect-run: ...` and a newline; `say_plain!("...")`
//! writes the text and a newline as it is. Each message goes out in one
//! write, so it is not interleaved with the command's stderr.

use std::fmt;
use std::io::Write;

/// Writes `ect-run: <args>` and a newline to stderr, ignoring any error.
pub fn line(args: fmt::Arguments<'_>) {
    write(format!("ect-run: {args}\n"));
}

/// Writes `<args>` and a newline to stderr, ignoring any error.
pub fn plain(args: fmt::Arguments<'_>) {
    write(format!("{args}\n"));
}

fn write(text: String) {
    // A failed write is dropped on purpose: see the module doc.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `say!("format", args...)`: one line `ect-run: ...` on stderr; never
/// panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(::std::format_args!($($arg)*))
    };
}

/// `say_plain!("format", args...)`: one line on stderr without the
/// `ect-run:` prefix; never panics.
#[macro_export]
macro_rules! say_plain {
    ($($arg:tt)*) => {
        $crate::say::plain(::std::format_args!($($arg)*))
    };
}

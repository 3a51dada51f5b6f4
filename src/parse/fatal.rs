//! Python fatal-error dumps from faulthandler: how CPython reports a crash
//! in C code (numba, dask workers, C extensions), as in
//!
//! ```text
//! Fatal Python error: Segmentation fault
//!
//! Thread 0x00007f12... (most recent call first):
//!   File "/x/worker.py", line 10 in run
//!
//! Current thread 0x00007f34... (most recent call first):
//!   File "/x/crash.py", line 5 in crash
//! ```
//!
//! The failure's frames are those of the current thread (printed most
//! recent first); other threads are read past. Format reference: CPython
//! `Python/traceback.c` (`dump_frame`, `_Py_DumpTracebackThreads`).

use std::sync::LazyLock;

use regex::Regex;

use super::{Exception, Failure, Format, Found, Frame, Input, Kind, number, refine_nothing, tick};

pub(super) const FORMAT: Format = Format {
    name: "faulthandler",
    anchors: &["Fatal Python error", "Windows fatal exception"],
    inert_lines: &[],
    find,
    refine: refine_nothing,
};

const PREFIX: &str = "Fatal Python error: ";
/// What faulthandler prints instead on Windows (`faulthandler_exc_handler`).
const WINDOWS_PREFIX: &str = "Windows fatal exception: ";
/// Lines looked at after the error line; a dump is far shorter (faulthandler
/// prints at most 100 frames a thread and 100 threads).
const MAX_DUMP_LINES: usize = 20_000;

static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^ +File "(?P<file>.*)", line (?P<line>\d+|\?\?\?) in (?P<func>.*)$"#)
        .expect("valid regex")
});
static THREAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<which>Current thread|Thread|Stack|Traceback)\b.*\(most recent call first\):$")
        .expect("valid regex")
});

fn find(input: Input<'_>, found: &mut Found) {
    let lines = input.lines;
    let mut i = 0;
    while i < lines.len() {
        tick(1);
        let (class, message) = if let Some(m) = lines[i].strip_prefix(PREFIX) {
            ("Fatal Python error", m)
        } else if let Some(m) = lines[i].strip_prefix(WINDOWS_PREFIX) {
            ("Windows fatal exception", m)
        } else {
            i += 1;
            continue;
        };
        let start = i;
        i += 1;
        // Which block we are in: None before any, Some(true) in the
        // current thread's (or a lone "Stack"), Some(false) in another's.
        let mut in_current: Option<bool> = None;
        let mut current: Vec<Frame> = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let end = lines.len().min(i + MAX_DUMP_LINES);
        while i < end {
            tick(2);
            let line = lines[i];
            if let Some(c) = THREAD.captures(line) {
                in_current = Some(match &c["which"] {
                    "Current thread" => true,
                    // `Traceback (most recent call first):` is what
                    // faulthandler printed before Python 3.3.
                    "Stack" | "Traceback" => {
                        stack.clear();
                        true
                    }
                    _ => false,
                });
            } else if let Some(c) = FRAME.captures(line) {
                let frame = Frame {
                    file: Some(c["file"].to_string()),
                    line: number(&c["line"]),
                    function: Some(c["func"].to_string()),
                    ..Frame::default()
                };
                match in_current {
                    Some(true) => current.push(frame),
                    Some(false) => {}
                    // Frames before any header (older formats): keep them
                    // as the crashing stack.
                    None => stack.push(frame),
                }
            } else if !(line.is_empty()
                || line.starts_with("  ")
                || line.starts_with("Python runtime state:")
                || line.starts_with("Extension modules:")
                || line.starts_with('<'))
            {
                break;
            }
            i += 1;
        }
        if current.is_empty() {
            current = stack;
        }
        found.push(Failure {
            kind: Kind::PythonFatal,
            exception: Exception {
                class: class.to_string(),
                message: message.trim_end().to_string(),
                frames: current,
                ..Exception::default()
            },
            start,
            end: i,
            ..Failure::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::test_lines as lines;

    fn parse(lines: &[&str]) -> Vec<Failure> {
        crate::parse::test_find_lines(&FORMAT, lines, false)
    }

    #[test]
    fn older_headers() {
        for header in [
            "Stack (most recent call first):",
            "Traceback (most recent call first):",
        ] {
            let text = format!(
                "Fatal Python error: Segmentation fault\n\n{header}\n  File \"/e/esa_climate_toolbox/io.py\", line 12 in read\n"
            );
            let got = parse(&lines(&text));
            assert_eq!(got[0].exception.frames.len(), 1, "{header}");
        }
    }

    #[test]
    fn windows_dump() {
        let text = lines(
            "Windows fatal exception: access violation\n\nCurrent thread 0x00001a2c (most recent call first):\n  File \"C:\\env\\Lib\\site-packages\\esa_climate_toolbox\\io.py\", line 12 in read\n",
        );
        let got = parse(&text);
        assert_eq!(got[0].exception.class, "Windows fatal exception");
        assert_eq!(got[0].exception.message, "access violation");
        assert_eq!(got[0].exception.frames.len(), 1);
    }

    #[test]
    fn current_thread_frames_only() {
        let text = lines(
            "Fatal Python error: Segmentation fault\n\nThread 0x00007f1 (most recent call first):\n  File \"/w.py\", line 10 in run\n\nCurrent thread 0x00007f2 (most recent call first):\n  File \"/c.py\", line 5 in crash\n  File \"/c.py\", line 8 in <module>\n\nExtension modules: numpy.core (total: 1)\nSegmentation fault (core dumped)\n",
        );
        let got = parse(&text);
        assert_eq!(got.len(), 1);
        let e = &got[0].exception;
        assert_eq!(e.message, "Segmentation fault");
        assert_eq!(e.frames.len(), 2);
        assert_eq!(e.frames[0].function.as_deref(), Some("crash"));
        assert_eq!(e.frames[0].line, Some(5));
    }
}

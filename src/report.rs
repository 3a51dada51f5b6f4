//! The failure report: one JSON object with the toolbox's own keys, so the
//! toolbox's existing servers accept it unchanged (`toolbox-version`,
//! `exception-class`, `exception-instance`, `traceback` in Python's
//! `traceback.format_tb` form), plus what a wrapper knows (`failure-kind`,
//! `exit-status`, `signal`, `command`, `platform`, `ect-run-version`,
//! `timestamp`, `matched-frame`, `fingerprint`).
//!
//! Invariants: every string is scrubbed ([`crate::scrub`]) before it is put
//! in; the command's arguments are never included, only the program's name;
//! the report is bounded in size, and says so when it was shortened.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::decide::signal_name;
use crate::involvement::Involvement;
use crate::parse::{Failure, Frame, Kind};
use crate::scrub::Scrubber;
use crate::supervise::Exit;

/// Frames kept from each end of a longer traceback.
const KEEP_FRAMES_EACH_END: usize = 50;
const MAX_MESSAGE_BYTES: usize = 8 * 1024;
const MAX_ENTRY_BYTES: usize = 4 * 1024;

/// What a report is built from.
#[derive(Debug)]
pub struct Input<'a> {
    pub failure: &'a Failure,
    pub involvement: &'a Involvement,
    pub toolbox_version: &'a str,
    pub exit: Exit,
    /// The program that was run, as given (only its file name is sent).
    pub program: &'a str,
    pub timestamp: String,
}

pub fn build(input: &Input<'_>, scrub: &Scrubber) -> Value {
    let f = input.failure;
    let class = short_class(f);
    let message = truncate(&f.exception.message, MAX_MESSAGE_BYTES);
    let (frames, omitted) = shorten(&f.exception.frames);
    let mut traceback: Vec<String> = Vec::new();
    for (i, frame) in frames {
        // The gap's note goes where the frames were left out.
        if omitted > 0 && i == f.exception.frames.len() - KEEP_FRAMES_EACH_END {
            traceback.push(format!("  [... {omitted} frames omitted by ect-run ...]\n"));
        }
        for entry in format_frame(f.kind, i, frame) {
            traceback.push(scrub.scrub(&truncate(&entry, MAX_ENTRY_BYTES)));
        }
    }
    let mut m = Map::new();
    m.insert("toolbox-version".into(), json!(input.toolbox_version));
    m.insert("exception-class".into(), json!(class));
    m.insert(
        "exception-instance".into(),
        json!(scrub.scrub(&instance(f, &class, &message))),
    );
    m.insert("traceback".into(), json!(traceback));
    m.insert("failure-kind".into(), json!(f.kind.as_str()));
    m.insert("exit-status".into(), json!(input.exit.shell_code()));
    m.insert(
        "signal".into(),
        match input.exit {
            Exit::Signal(s) => json!(signal_name(s)),
            Exit::Code(_) => Value::Null,
        },
    );
    m.insert(
        "command".into(),
        json!(scrub.scrub(&program_name(input.program))),
    );
    m.insert(
        "platform".into(),
        json!(format!(
            "{}-{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )),
    );
    m.insert("ect-run-version".into(), json!(env!("CARGO_PKG_VERSION")));
    m.insert("timestamp".into(), json!(input.timestamp));
    m.insert(
        "matched-frame".into(),
        json!(input.involvement.matched_frame),
    );
    m.insert("fingerprint".into(), json!(fingerprint(f)));
    if omitted > 0 {
        m.insert(
            "report-truncated".into(),
            json!(format!(
                "{omitted} of {} frames omitted; the first and last {KEEP_FRAMES_EACH_END} are kept",
                f.exception.frames.len()
            )),
        );
    }
    Value::Object(m)
}

/// The current time as RFC 3339 in UTC, with microseconds, like the
/// toolbox's reference server logs it.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// The class as the toolbox's reporter sends it: `type(e).__name__`, the
/// last part of a dotted name.
fn short_class(f: &Failure) -> String {
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
fn instance(f: &Failure, class: &str, message: &str) -> String {
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
fn format_frame(kind: Kind, index: usize, fr: &Frame) -> Vec<String> {
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

/// The frames to send with their indices, and how many were left out.
fn shorten(frames: &[Frame]) -> (Vec<(usize, &Frame)>, usize) {
    let n = frames.len();
    if n <= 2 * KEEP_FRAMES_EACH_END {
        return (frames.iter().enumerate().collect(), 0);
    }
    let keep = frames
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < KEEP_FRAMES_EACH_END || *i >= n - KEEP_FRAMES_EACH_END)
        .collect();
    (keep, n - 2 * KEEP_FRAMES_EACH_END)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}... [{} bytes omitted by ect-run]",
        &s[..end],
        s.len() - end
    )
}

fn program_name(program: &str) -> String {
    program
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(program)
        .to_string()
}

static RUST_HASH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"::h[0-9a-f]{16}$|\[[0-9a-f]{6,}\]").expect("regex"));

/// Equal for the same failure at the same place: the kind, the class and
/// each frame's code location (file from the package directory on, so two
/// installations agree; function; line). Messages are left out: they carry
/// data values that differ from run to run.
pub fn fingerprint(f: &Failure) -> String {
    let mut h = Sha256::new();
    h.update(f.kind.as_str());
    h.update([0]);
    h.update(short_class(f));
    for fr in &f.exception.frames {
        h.update([0]);
        if let Some(file) = &fr.file {
            h.update(stable_path(file));
        }
        h.update([1]);
        if let Some(func) = &fr.function {
            h.update(RUST_HASH.replace_all(func, "").as_bytes());
        }
        h.update([2]);
        if let Some(l) = fr.line {
            h.update(l.to_le_bytes());
        }
    }
    if let Some(loc) = &f.location {
        h.update(stable_path(loc.file.as_deref().unwrap_or("")));
        h.update(loc.line.unwrap_or(0).to_le_bytes());
    }
    let digest = h.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The part of a path that is the same on every machine: from the toolbox
/// package directory on, else the file name.
fn stable_path(path: &str) -> String {
    let path = path.replace('\\', "/");
    if let Some(i) = path.find("/esa_climate_toolbox/") {
        return path[i + 1..].to_string();
    }
    path.rsplit('/').next().unwrap_or(&path).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Exception;

    #[test]
    fn repr_matches_python() {
        let cases = [
            ("plain", "'plain'"),
            ("it's", "\"it's\""),
            ("both ' and \"", "'both \\' and \"'"),
            ("a\nb\tc\\", "'a\\nb\\tc\\\\'"),
            ("bell\x07", "'bell\\x07'"),
            ("ünïcode", "'ünïcode'"),
        ];
        for (s, want) in cases {
            assert_eq!(python_repr(s), want, "{s:?}");
        }
    }

    fn failure(frames: usize) -> Failure {
        Failure {
            kind: Kind::PythonTraceback,
            exception: Exception {
                class: "pkg.mod.MergeError".into(),
                message: "conflicting values".into(),
                frames: (0..frames)
                    .map(|i| Frame {
                        file: Some(format!("/home/alice/env/esa_climate_toolbox/f{i}.py")),
                        line: Some(i as u64),
                        function: Some("f".into()),
                        source: Some("f()".into()),
                        ..Frame::default()
                    })
                    .collect(),
            },
            causes: vec![],
            location: None,
            thread: None,
            start: 0,
        }
    }

    fn report(f: &Failure) -> Value {
        let inv = Involvement {
            involved: true,
            matched_frame: Some(0),
            reason: String::new(),
            matched_path: None,
        };
        let input = Input {
            failure: f,
            involvement: &inv,
            toolbox_version: "1.7.2",
            exit: Exit::Code(1),
            program: "/usr/bin/ect-process",
            timestamp: "2026-11-25T00:00:00Z".into(),
        };
        build(&input, &Scrubber::new(Some("/home/alice"), Some("alice")))
    }

    #[test]
    fn toolbox_keys_in_toolbox_form() {
        let r = report(&failure(2));
        assert_eq!(r["exception-class"], "MergeError");
        assert_eq!(r["exception-instance"], "MergeError('conflicting values')");
        assert_eq!(
            r["traceback"][0],
            "  File \"~/env/esa_climate_toolbox/f0.py\", line 0, in f\n    f()\n"
        );
        assert_eq!(r["command"], "ect-process");
        assert!(r.get("report-truncated").is_none());
    }

    #[test]
    fn long_tracebacks_are_shortened_and_say_so() {
        let r = report(&failure(10_000));
        let tb = r["traceback"].as_array().unwrap();
        assert_eq!(tb.len(), 2 * KEEP_FRAMES_EACH_END + 1);
        assert!(
            tb[KEEP_FRAMES_EACH_END]
                .as_str()
                .unwrap()
                .contains("9900 frames omitted")
        );
        assert!(
            r["report-truncated"]
                .as_str()
                .unwrap()
                .starts_with("9900 of 10000")
        );
        assert!(serde_json::to_vec(&r).unwrap().len() < 64 * 1024);
    }

    #[test]
    fn fingerprint_ignores_home_and_message() {
        let a = failure(3);
        let mut b = failure(3);
        b.exception.message = "other values".into();
        for fr in &mut b.exception.frames {
            fr.file = fr
                .file
                .as_ref()
                .map(|f| f.replace("/home/alice/env", "/opt/conda"));
        }
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.exception.frames[1].line = Some(99);
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}

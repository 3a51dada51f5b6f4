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
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decide::signal_name;
use crate::involvement::Involvement;
use crate::parse::{Exception, Failure, Frame};
use crate::pyform::{instance, short_class, traceback};
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

/// The report as it goes on the wire: the toolbox's four keys first, with
/// the names its reporter uses, then what a wrapper knows. Field order is
/// the order on the wire. Every string in it has been scrubbed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    pub toolbox_version: String,
    pub exception_class: String,
    pub exception_instance: String,
    pub traceback: Vec<String>,
    pub failure_kind: String,
    pub exit_status: u8,
    /// The signal's name when the command died of one; `null` otherwise.
    pub signal: Option<String>,
    pub command: String,
    pub platform: String,
    pub ect_run_version: String,
    pub timestamp: String,
    pub matched_frame: Option<usize>,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_truncated: Option<String>,
    /// How many reports of this fingerprint were not sent since the last
    /// one that was (flood control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats_suppressed: Option<u64>,
}

impl Report {
    /// The body sent to the toolbox's server.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Every string scrubbed again: a kept report may have been written by
    /// an older ect-run, or under rules since extended.
    pub fn rescrubbed(mut self, scrub: &Scrubber) -> Report {
        for s in [
            &mut self.toolbox_version,
            &mut self.exception_class,
            &mut self.exception_instance,
            &mut self.command,
        ] {
            *s = scrub.scrub(s);
        }
        for s in &mut self.traceback {
            *s = scrub.scrub(s);
        }
        self
    }
}

/// A copy of the failure with every string scrubbed, before any `repr`,
/// escaping or truncation: a secret is masked where it stands, whole, and a
/// later cut cannot leave a part of it. Both destinations' payloads are
/// built from this copy.
pub fn scrubbed(f: &Failure, scrub: &Scrubber) -> Failure {
    // Clone, then replace each string: a field added to these types later
    // is kept, and the compiler cannot hide it from this list by a default.
    fn frame(fr: &Frame, scrub: &Scrubber) -> Frame {
        let mut fr = fr.clone();
        for v in [
            &mut fr.file,
            &mut fr.function,
            &mut fr.source,
            &mut fr.marker,
        ]
        .into_iter()
        .flatten()
        {
            *v = scrub.scrub(v);
        }
        for l in &mut fr.lines {
            *l = scrub.scrub(l);
        }
        fr
    }
    fn exception(e: &Exception, scrub: &Scrubber) -> Exception {
        let mut e = e.clone();
        e.class = scrub.scrub(&e.class);
        e.message = scrub.scrub(&e.message);
        e.frames = e.frames.iter().map(|fr| frame(fr, scrub)).collect();
        e
    }
    let mut out = f.clone();
    out.exception = exception(&f.exception, scrub);
    out.causes = f.causes.iter().map(|e| exception(e, scrub)).collect();
    out.location = f.location.as_ref().map(|fr| frame(fr, scrub));
    out.thread = f.thread.as_ref().map(|t| scrub.scrub(t));
    out
}

pub fn build(input: &Input<'_>, scrub: &Scrubber) -> Report {
    // The fingerprint is of the code location, not of anyone's data: taken
    // from the original, so it is the same on every machine.
    let fingerprint = fingerprint(input.failure);
    let f = &scrubbed(input.failure, scrub);
    let class = short_class(f);
    let message = truncate(&f.exception.message, MAX_MESSAGE_BYTES);
    let (traceback, omitted) = traceback(f, input.involvement, KEEP_FRAMES_EACH_END);
    let traceback: Vec<String> = traceback
        .iter()
        .map(|entry| truncate(entry, MAX_ENTRY_BYTES))
        .collect();
    Report {
        toolbox_version: scrub.scrub(input.toolbox_version),
        exception_instance: instance(f, &class, &message),
        exception_class: class,
        traceback,
        failure_kind: f.kind.as_str().to_string(),
        exit_status: input.exit.shell_code(),
        signal: match input.exit {
            Exit::Signal(s) => Some(signal_name(s)),
            Exit::Code(_) => None,
        },
        command: scrub.scrub(&program_name(input.program)),
        platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        ect_run_version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp: input.timestamp.clone(),
        matched_frame: input.involvement.matched_frame,
        fingerprint,
        report_truncated: (omitted > 0).then(|| {
            format!(
                "{omitted} of {} frames omitted; the first and last {KEEP_FRAMES_EACH_END} are kept",
                f.exception.frames.len()
            )
        }),
        repeats_suppressed: None,
    }
}

/// Names the scrubbing rules of this build: ect-run's version and a hash
/// of its rule table. A kept report scrubbed under other rules is scrubbed
/// again before it is sent; one scrubbed under these is not (scrubbing an
/// already encoded string again could only damage it).
pub fn scrub_rules_id() -> &'static str {
    static ID: LazyLock<String> = LazyLock::new(|| {
        let digest = Sha256::digest(include_str!("scrub/rules.toml").as_bytes());
        let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("{}+{short}", env!("CARGO_PKG_VERSION"))
    });
    &ID
}

/// The current time as RFC 3339 in UTC, with microseconds, like the
/// toolbox's reference server logs it.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// `s` cut to at most `max` bytes on a character boundary, saying how
/// much was left out.
pub(crate) fn truncate(s: &str, max: usize) -> String {
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

/// The program's file name: what the report and the history name.
pub fn program_name(program: &str) -> String {
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
/// installations agree; function; line), and the same of each cause (a
/// worker's traceback, a chained exception, the panic under a
/// `PanicException`: two failures in different toolbox code that reach the
/// parent the same way are two failures). Messages are left out: they
/// carry data values that differ from run to run.
pub fn fingerprint(f: &Failure) -> String {
    let mut h = Sha256::new();
    h.update(f.kind.as_str());
    h.update([0]);
    h.update(short_class(f));
    let frames = |h: &mut Sha256, frames: &[crate::parse::Frame]| {
        for fr in frames {
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
    };
    frames(&mut h, &f.exception.frames);
    for cause in &f.causes {
        h.update([3]);
        h.update(cause.class.rsplit('.').next().unwrap_or(&cause.class));
        frames(&mut h, &cause.frames);
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
    use crate::parse::Kind;
    use crate::pyform::python_repr;

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
                ..Exception::default()
            },
            ..Failure::default()
        }
    }

    fn report(f: &Failure) -> serde_json::Value {
        let inv = Involvement {
            involved: true,
            matched_frame: Some(0),
            matched_cause: None,
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
        serde_json::to_value(build(
            &input,
            &Scrubber::new(Some("/home/alice"), Some("alice")),
        ))
        .unwrap()
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

    /// Two worker failures re-raised the same way in the parent, from
    /// different places in the worker, are two failures.
    #[test]
    fn fingerprint_tells_causes_apart() {
        let mut a = failure(2);
        a.causes.push(failure(3).exception);
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.causes[0].message = "other values".into();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.causes[0].frames[2].line = Some(99);
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}

//! The Sentry event for a failure: what a Sentry-protocol tracker (Sentry,
//! GlitchTip, Bugsink) stores and groups, built from the same parsed
//! failure as the toolbox report.
//!
//! Invariants: every string that comes from the run or the machine is
//! scrubbed ([`crate::scrub`]) before it is cut or put in; `exception.values`
//! run oldest to newest with the failure that counts last; frames run
//! oldest to newest; `in_app` is exactly the involvement rules' verdict on
//! each frame; the `fingerprint` is the report's, so the tracker groups
//! the same failure at the same place into one issue whatever its message;
//! the serialized event stays under [`MAX_EVENT_BYTES`]. Pure: no I/O, the
//! id and the time are given.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::SystemTime;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::decide::signal_name;
use crate::involvement::{Rules, is_toolbox_frame};
use crate::parse::{Exception, Failure, Frame, Kind};
use crate::report::{fingerprint, truncate};
use crate::scrub::Scrubber;
use crate::supervise::Exit;

/// Sentry's limit on one event is 1 MiB; stay a little under it.
pub const MAX_EVENT_BYTES: usize = 1_000_000;
const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// A path, a function name, a source line.
const MAX_FIELD_BYTES: usize = 4 * 1024;
/// Sentry's tag limits: keys of 32 characters, values of 200.
const MAX_TAG_KEY_CHARS: usize = 32;
const MAX_TAG_VALUE_CHARS: usize = 200;
/// Rust: the later panics of an aborting run, listed in `extra`.
const MAX_LATER_PANICS: usize = 10;
/// (frames kept at each end of a stack, causes kept), tried in turn until
/// the event fits: the first is what the toolbox report keeps.
const BUDGETS: [(usize, usize); 5] = [(50, 10), (20, 5), (5, 2), (1, 0), (0, 0)];

/// What an event is built from.
#[derive(Debug)]
pub struct Input<'a> {
    pub failure: &'a Failure,
    /// The involvement rules in force (user patterns included): they say
    /// which frames are `in_app`.
    pub rules: &'a Rules,
    /// `None` when unknown: the event then has no `release`.
    pub toolbox_version: Option<&'a str>,
    pub exit: Exit,
    /// The program that was run, as given (only its file name is sent).
    pub program: &'a str,
    pub event_id: EventId,
    pub timestamp: SystemTime,
    pub os: &'a OsInfo,
}

/// A 32-hex-digit event id (a version 4 UUID without dashes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId([u8; 16]);

impl EventId {
    /// From the system's random source; from the time and process id if
    /// that fails (the id need only be unique, not secret).
    pub fn random() -> EventId {
        let mut b = [0u8; 16];
        if getrandom::fill(&mut b).is_err() {
            use sha2::{Digest, Sha256};
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            let mut h = Sha256::new();
            h.update(t.as_nanos().to_le_bytes());
            h.update(std::process::id().to_le_bytes());
            b.copy_from_slice(&h.finalize()[..16]);
        }
        EventId::from_bytes(b)
    }

    /// The bytes, with the UUID version and variant bits set.
    pub fn from_bytes(mut b: [u8; 16]) -> EventId {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        EventId(b)
    }

    /// 32 hex digits, with or without a UUID's dashes.
    pub fn parse(s: &str) -> Option<EventId> {
        let hex: String = s.chars().filter(|&c| c != '-').collect();
        if hex.len() != 32 || !hex.is_ascii() {
            return None;
        }
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(EventId(b))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EventId, D::Error> {
        let s = String::deserialize(d)?;
        EventId::parse(&s).ok_or_else(|| serde::de::Error::custom("not a 32-hex-digit event id"))
    }
}

/// The operating system, for `contexts.os`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `Linux`, `macOS`, ...
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
}

impl OsInfo {
    /// This machine's, from `uname`.
    pub fn detect() -> OsInfo {
        let name = match std::env::consts::OS {
            "linux" => "Linux",
            "macos" => "macOS",
            "freebsd" => "FreeBSD",
            "windows" => "Windows",
            other => other,
        }
        .to_string();
        OsInfo {
            name,
            kernel_version: uname_release(),
        }
    }
}

#[cfg(unix)]
fn uname_release() -> Option<String> {
    // SAFETY: uname fills the zeroed struct it is given and nothing else;
    // `release` is then a NUL-terminated string within the array.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return None;
        }
        let release = std::ffi::CStr::from_ptr(u.release.as_ptr());
        Some(release.to_string_lossy().into_owned())
    }
}

#[cfg(not(unix))]
fn uname_release() -> Option<String> {
    None
}

/// A Sentry event: only the fields ect-run sends, named and shaped as in
/// Sentry's event schema (which rejects unknown fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: EventId,
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// `python` or `native`.
    pub platform: String,
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    pub exception: ExceptionList,
    pub tags: BTreeMap<String, String>,
    pub contexts: Contexts,
    pub fingerprint: Vec<String>,
    pub sdk: Sdk,
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl Event {
    /// The event as JSON, the envelope item's payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Every string that came from the failure scrubbed again: a kept
    /// event may predate today's rules. Ids, times and the fingerprint are
    /// ect-run's own and left alone.
    pub fn rescrubbed(mut self, scrub: &Scrubber) -> Event {
        let s = |v: &mut String| *v = scrub.scrub(v);
        let so = |v: &mut Option<String>| {
            if let Some(x) = v {
                *x = scrub.scrub(x);
            }
        };
        for e in &mut self.exception.values {
            s(&mut e.ty);
            so(&mut e.value);
            so(&mut e.module);
            for fr in e.stacktrace.iter_mut().flat_map(|st| st.frames.iter_mut()) {
                so(&mut fr.filename);
                so(&mut fr.abs_path);
                so(&mut fr.function);
                so(&mut fr.raw_function);
                so(&mut fr.module);
                so(&mut fr.context_line);
            }
        }
        for v in self.tags.values_mut() {
            s(v);
        }
        so(&mut self.release);
        so(&mut self.extra.thread);
        self.extra.later_panics.iter_mut().for_each(s);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionList {
    pub values: Vec<ExceptionValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceptionValue {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<Stacktrace>,
    pub mechanism: Mechanism,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stacktrace {
    /// Oldest call first, as Sentry wants them.
    pub frames: Vec<SentryFrame>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SentryFrame {
    /// The path from the package or crate directory on (what is the same
    /// on every machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Rust: the symbol as printed, when `function` drops its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_function: Option<String>,
    /// Python: the dotted module, for a file under a library directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
    pub in_app: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mechanism {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<bool>,
    /// Python chains: `__cause__` or `__context__`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MechanismMeta>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MechanismMeta {
    pub signal: PosixSignal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PosixSignal {
    pub number: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contexts {
    pub os: OsInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sdk {
    pub name: String,
    pub version: String,
}

/// What has no field of its own in Sentry's schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extra {
    /// What was left out to keep the event small, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    /// Rust: the panicking thread's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// Rust: the panics that followed the original one in an aborting run
    /// (`panic: MESSAGE`); they are not its causes, so not exceptions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub later_panics: Vec<String>,
    /// How many repeats of this failure flood control held back since the
    /// last one sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats_suppressed: Option<u64>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.truncated.is_none()
            && self.thread.is_none()
            && self.later_panics.is_empty()
            && self.repeats_suppressed.is_none()
    }
}

/// How a Python exception is linked to the one printed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainSource {
    /// "The above exception was the direct cause of the following
    /// exception" (`raise ... from e`).
    Cause,
    /// "During handling of the above exception, another exception
    /// occurred".
    Context,
}

impl ChainSource {
    fn as_str(self) -> &'static str {
        match self {
            ChainSource::Cause => "__cause__",
            ChainSource::Context => "__context__",
        }
    }
}

/// How `failure.causes[i]` is linked to the exception printed after it:
/// the separator the parser read ("direct cause" is `__cause__`; "During
/// handling" and anything unrecorded, Python's implicit link,
/// `__context__`).
fn chain_source(failure: &Failure, cause: usize) -> ChainSource {
    match failure.causes.get(cause).and_then(|c| c.chain) {
        Some(crate::parse::Chain::Cause) => ChainSource::Cause,
        _ => ChainSource::Context,
    }
}

/// The runtime that printed `failure.causes[i]`: its own kind where the
/// parser recorded one (the Rust panic under a pyo3 `PanicException`),
/// else the failure's.
fn cause_kind(failure: &Failure, cause: usize) -> Kind {
    failure
        .causes
        .get(cause)
        .and_then(|c| c.kind)
        .unwrap_or(failure.kind)
}

/// The event for a failure. Every string is scrubbed with `scrub`.
pub fn build(input: &Input<'_>, scrub: &Scrubber) -> Event {
    // Each string is scrubbed once, for the largest budget; smaller ones
    // keep part of what was built.
    let parts = Parts::new(input, scrub);
    for (frames_each_end, max_causes) in BUDGETS {
        let event = parts.assemble(frames_each_end, max_causes);
        if event.to_json().len() <= MAX_EVENT_BYTES {
            return event;
        }
    }
    // Messages and fields are bounded, so the smallest budget fits; were
    // it not to, the tracker rejects the event, and that is reported as
    // any rejection is.
    parts.assemble(0, 0)
}

/// An exception value without its frames, and its frames: all of them,
/// or (for a longer stack) the first and last of the largest budget.
#[derive(Debug)]
struct Part {
    value: ExceptionValue,
    head: Vec<SentryFrame>,
    tail: Vec<SentryFrame>,
    total: usize,
}

impl Part {
    /// `kind` is that of the runtime that printed `e`.
    fn new(
        f: &Failure,
        kind: Kind,
        e: &Exception,
        rules: &Rules,
        scrub: &Scrubber,
        value: ExceptionValue,
    ) -> Part {
        let printed = printed_frames(f, kind, e);
        let total = printed.len();
        let most = BUDGETS[0].0;
        let build = |frs: &[&Frame]| -> Vec<SentryFrame> {
            frs.iter().map(|fr| frame(kind, fr, rules, scrub)).collect()
        };
        let (head, tail) = if total <= 2 * most {
            (build(&printed), Vec::new())
        } else {
            (build(&printed[..most]), build(&printed[total - most..]))
        };
        Part {
            value,
            head,
            tail,
            total,
        }
    }

    /// The value with at most `each_end` frames at each end, a note frame
    /// in the gap; and how many frames were left out.
    fn assemble(&self, each_end: usize) -> (ExceptionValue, usize) {
        let mut value = self.value.clone();
        if self.total == 0 {
            return (value, 0);
        }
        let omitted = self.total.saturating_sub(2 * each_end);
        let frames = if omitted == 0 {
            // Only when the stack is short enough to be all in `head`.
            self.head.clone()
        } else {
            let mut v = Vec::with_capacity(2 * each_end + 1);
            v.extend_from_slice(&self.head[..each_end]);
            v.push(SentryFrame {
                function: Some(format!("[... {omitted} frames omitted by ect-run ...]")),
                in_app: false,
                ..SentryFrame::default()
            });
            let tail = if self.tail.is_empty() {
                &self.head
            } else {
                &self.tail
            };
            v.extend_from_slice(&tail[tail.len() - each_end..]);
            v
        };
        value.stacktrace = Some(Stacktrace { frames });
        (value, omitted)
    }
}

/// Everything of the event, built and scrubbed once.
#[derive(Debug)]
struct Parts {
    /// Python causes kept at most, oldest first.
    causes: Vec<Part>,
    /// How many causes the failure has.
    all_causes: usize,
    main: Part,
    event: Event,
}

impl Parts {
    fn new(input: &Input<'_>, scrub: &Scrubber) -> Parts {
        let f = input.failure;
        let python = f.kind == Kind::PythonTraceback;
        let all_causes = if python { f.causes.len() } else { 0 };
        let first_kept = all_causes - all_causes.min(BUDGETS[0].1);
        let causes = f.causes[..all_causes]
            .iter()
            .enumerate()
            .skip(first_kept)
            .map(|(i, cause)| {
                // Ids count back from the failure (0): the cause printed
                // just before it is 1, and each is the parent of the one
                // printed before it.
                let id = (all_causes - i) as u64;
                let kind = cause_kind(f, i);
                let (ty, module) = match kind {
                    Kind::PythonTraceback => python_type(&cause.class, scrub),
                    Kind::RustPanic => ("panic".to_string(), None),
                    Kind::PythonFatal | Kind::Signal => {
                        (truncate(&scrub.scrub(&cause.class), MAX_FIELD_BYTES), None)
                    }
                };
                let value = ExceptionValue {
                    ty,
                    value: message(&cause.message, scrub),
                    module,
                    stacktrace: None,
                    mechanism: Mechanism {
                        ty: "chained".to_string(),
                        source: Some(chain_source(f, i).as_str().to_string()),
                        exception_id: Some(id),
                        parent_id: Some(id - 1),
                        ..Mechanism::default()
                    },
                };
                Part::new(f, kind, cause, input.rules, scrub, value)
            })
            .collect();
        let main = Part::new(
            f,
            f.kind,
            &f.exception,
            input.rules,
            scrub,
            main_exception(input, scrub, all_causes > 0),
        );
        let later_panics = if f.kind == Kind::RustPanic {
            f.causes
                .iter()
                .take(MAX_LATER_PANICS)
                .map(|c| {
                    let line = if c.message.is_empty() {
                        c.class.clone()
                    } else {
                        format!("{}: {}", c.class, c.message)
                    };
                    truncate(&scrub.scrub(&line), MAX_FIELD_BYTES)
                })
                .collect()
        } else {
            Vec::new()
        };
        let event = Event {
            event_id: input.event_id,
            timestamp: humantime::format_rfc3339_micros(input.timestamp).to_string(),
            platform: match f.kind {
                Kind::PythonTraceback | Kind::PythonFatal => "python",
                Kind::RustPanic | Kind::Signal => "native",
            }
            .to_string(),
            level: "fatal".to_string(),
            release: input.toolbox_version.and_then(|v| release(&scrub.scrub(v))),
            exception: ExceptionList { values: Vec::new() },
            tags: tags(input, scrub),
            contexts: Contexts {
                os: OsInfo {
                    name: scrub.scrub(&input.os.name),
                    kernel_version: input.os.kernel_version.as_deref().map(|k| scrub.scrub(k)),
                },
            },
            fingerprint: vec![fingerprint(f)],
            sdk: Sdk {
                name: "ect-run".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            extra: Extra {
                truncated: None,
                thread: f
                    .thread
                    .as_deref()
                    .filter(|_| f.kind == Kind::RustPanic)
                    .map(|t| truncate(&scrub.scrub(t), MAX_FIELD_BYTES)),
                later_panics,
                repeats_suppressed: None,
            },
        };
        Parts {
            causes,
            all_causes,
            main,
            event,
        }
    }

    fn assemble(&self, frames_each_end: usize, max_causes: usize) -> Event {
        let kept = &self.causes[self.causes.len() - self.causes.len().min(max_causes)..];
        let mut omitted_frames = 0;
        let mut values = Vec::with_capacity(kept.len() + 1);
        for part in kept.iter().chain([&self.main]) {
            let (value, omitted) = part.assemble(frames_each_end);
            omitted_frames += omitted;
            values.push(value);
        }
        let mut notes = Vec::new();
        if omitted_frames > 0 {
            notes.push(format!(
                "{omitted_frames} frames omitted; the first and last {frames_each_end} of each stack are kept"
            ));
        }
        if kept.len() < self.all_causes {
            notes.push(format!(
                "{} of {} chained exceptions omitted (the oldest)",
                self.all_causes - kept.len(),
                self.all_causes
            ));
        }
        let mut event = self.event.clone();
        event.exception.values = values;
        event.extra.truncated = (!notes.is_empty()).then(|| notes.join("; "));
        event
    }
}

/// `esa-climate-toolbox@VERSION`, for a version as packages spell them;
/// none for `unknown` or anything a tracker would refuse as a release
/// name (a slash, a newline, a long string).
fn release(version: &str) -> Option<String> {
    let v = version.trim();
    let ok = !v.is_empty()
        && v.len() <= 64
        && v != "unknown"
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-' | '!'));
    ok.then(|| format!("esa-climate-toolbox@{v}"))
}

/// The failure that counts, with the mechanism of its kind.
fn main_exception(input: &Input<'_>, scrub: &Scrubber, chained: bool) -> ExceptionValue {
    let stacktrace = None;
    let f = input.failure;
    let e = &f.exception;
    let signal = match input.exit {
        Exit::Signal(s) => Some(s),
        Exit::Code(_) => None,
    };
    match f.kind {
        Kind::PythonTraceback => {
            let (ty, module) = python_type(&e.class, scrub);
            ExceptionValue {
                ty,
                value: message(&e.message, scrub),
                module,
                stacktrace,
                mechanism: Mechanism {
                    // Printed by Python's default excepthook: not handled.
                    ty: "excepthook".to_string(),
                    handled: Some(false),
                    exception_id: chained.then_some(0),
                    ..Mechanism::default()
                },
            }
        }
        Kind::PythonFatal => {
            let sig = fatal_signal(&e.message).or(signal);
            ExceptionValue {
                ty: sig.map_or_else(|| scrub.scrub(&e.class), signal_name),
                // "Fatal Python error: Segmentation fault", as printed.
                value: message(&format!("{}: {}", e.class, e.message), scrub)
                    .map(|v| v.trim_end_matches([':', ' ']).to_string()),
                module: None,
                stacktrace,
                mechanism: Mechanism {
                    ty: "faulthandler".to_string(),
                    handled: Some(false),
                    synthetic: Some(true),
                    meta: sig.map(posix_signal),
                    ..Mechanism::default()
                },
            }
        }
        Kind::RustPanic => ExceptionValue {
            ty: "panic".to_string(),
            value: message(&e.message, scrub),
            module: None,
            stacktrace,
            mechanism: Mechanism {
                ty: "panic".to_string(),
                handled: Some(false),
                ..Mechanism::default()
            },
        },
        Kind::Signal => ExceptionValue {
            ty: scrub.scrub(&e.class),
            value: message(&e.message, scrub),
            module: None,
            stacktrace,
            mechanism: Mechanism {
                ty: "signal".to_string(),
                handled: Some(false),
                synthetic: Some(true),
                meta: signal.map(posix_signal),
                ..Mechanism::default()
            },
        },
    }
}

fn posix_signal(sig: i32) -> MechanismMeta {
    MechanismMeta {
        signal: PosixSignal {
            number: i64::from(sig),
            name: signal_name(sig),
        },
    }
}

/// The signal faulthandler names in its first line (CPython
/// `Modules/faulthandler.c`, `faulthandler_handlers`).
fn fatal_signal(message: &str) -> Option<i32> {
    Some(match message.trim() {
        "Segmentation fault" => libc::SIGSEGV,
        "Aborted" => libc::SIGABRT,
        "Bus error" => libc::SIGBUS,
        "Floating point exception" => libc::SIGFPE,
        "Illegal instruction" => libc::SIGILL,
        _ => return None,
    })
}

/// `xarray.core.merge.MergeError` → (`MergeError`, `xarray.core.merge`).
fn python_type(class: &str, scrub: &Scrubber) -> (String, Option<String>) {
    let class = truncate(&scrub.scrub(class), MAX_FIELD_BYTES);
    match class.rsplit_once('.') {
        Some((module, name)) if !module.is_empty() && !name.is_empty() => {
            (name.to_string(), Some(module.to_string()))
        }
        _ => (class, None),
    }
}

fn message(m: &str, scrub: &Scrubber) -> Option<String> {
    let m = truncate(&scrub.scrub(m), MAX_MESSAGE_BYTES);
    (!m.is_empty()).then_some(m)
}

/// The frames of one exception printed by `kind`'s runtime, oldest first.
fn printed_frames<'a>(f: &'a Failure, kind: Kind, e: &'a Exception) -> Vec<&'a Frame> {
    let mut printed: Vec<&Frame> = e.frames.iter().collect();
    // A panic without a backtrace has its location only.
    if printed.is_empty()
        && kind == Kind::RustPanic
        && let Some(loc) = f.location.as_ref()
    {
        printed.push(loc);
    }
    // Python prints the oldest call first; Rust and faulthandler the
    // innermost first.
    if matches!(kind, Kind::RustPanic | Kind::PythonFatal) {
        printed.reverse();
    }
    printed
}

/// The hashes in Rust symbols (legacy `::h0123...` and v0 `crate[0123...]`):
/// noise in a function's name.
static RUST_HASH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"::h[0-9a-f]{16}$|\[[0-9a-f]{6,}\]").expect("regex"));
static PYTHON_LIB: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/lib/python\d+(?:\.\d+)?t?/").expect("regex"));

fn frame(kind: Kind, fr: &Frame, rules: &Rules, scrub: &Scrubber) -> SentryFrame {
    let field = |s: &str| truncate(&scrub.scrub(s), MAX_FIELD_BYTES);
    let python = matches!(kind, Kind::PythonTraceback | Kind::PythonFatal);
    let relative = fr.file.as_deref().map(|p| {
        if python {
            python_relative(p)
        } else {
            rust_relative(p)
        }
    });
    let (function, raw_function) = match fr.function.as_deref() {
        Some(s) if !python && RUST_HASH.is_match(s) => {
            (Some(field(&RUST_HASH.replace_all(s, ""))), Some(field(s)))
        }
        Some(s) => (Some(field(s)), None),
        None => (None, None),
    };
    let module = match (&relative, python) {
        (Some((rel, true)), true) => python_module(rel).map(|m| field(&m)),
        _ => None,
    };
    SentryFrame {
        filename: relative.as_ref().map(|(rel, _)| field(rel)),
        abs_path: fr.file.as_deref().map(field),
        function,
        raw_function,
        module,
        lineno: fr.line,
        colno: fr.column,
        context_line: fr.source.as_deref().map(field),
        in_app: is_toolbox_frame(kind, fr, rules),
    }
}

/// The path as Python would import it: after the last library directory
/// (`site-packages/`, `lib/python3.X/`), else the file name; and whether a
/// library directory was found.
fn python_relative(path: &str) -> (String, bool) {
    let p = path.replace('\\', "/");
    // Packages first: they lie inside the standard library's directory.
    // (ASCII lowercasing keeps byte offsets.)
    let lower = p.to_ascii_lowercase();
    let m = ["/site-packages/", "/dist-packages/"]
        .iter()
        .filter_map(|d| lower.rfind(d).map(|i| i + d.len()))
        .max();
    if let Some(end) = m {
        return (p[end..].to_string(), true);
    }
    match PYTHON_LIB.find_iter(&p).last() {
        Some(m) => (p[m.end()..].to_string(), true),
        None => (file_name(&p), false),
    }
}

/// `esa_climate_toolbox/ops/compute.py` → `esa_climate_toolbox.ops.compute`.
fn python_module(rel: &str) -> Option<String> {
    let stem = rel.strip_suffix(".py")?;
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    let ok = stem
        .split('/')
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
    ok.then(|| stem.replace('/', "."))
}

/// A Rust source path from its crate's directory on (`ect_demo/src/main.rs`,
/// `ect-core-0.3.1/src/lib.rs`, `std/src/panicking.rs`), else as printed if
/// relative, else the file name.
fn rust_relative(path: &str) -> (String, bool) {
    let p = path.replace('\\', "/");
    if let Some(i) = p.rfind("/src/") {
        let start = p[..i].rfind('/').map_or(0, |j| j + 1);
        return (p[start..].to_string(), true);
    }
    if !p.starts_with('/') {
        return (p, false);
    }
    (file_name(&p), false)
}

fn file_name(p: &str) -> String {
    p.rsplit('/').next().unwrap_or(p).to_string()
}

fn tags(input: &Input<'_>, scrub: &Scrubber) -> BTreeMap<String, String> {
    let program = input
        .program
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(input.program);
    let mut raw = vec![
        ("failure_kind", input.failure.kind.as_str().to_string()),
        ("exit_status", input.exit.shell_code().to_string()),
        ("command", scrub.scrub(program)),
        ("ect_run_version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    if let Exit::Signal(s) = input.exit {
        raw.push(("signal", signal_name(s)));
    }
    raw.into_iter()
        .filter_map(|(k, v)| {
            Some((
                tag_text(k, MAX_TAG_KEY_CHARS)?,
                tag_text(&v, MAX_TAG_VALUE_CHARS)?,
            ))
        })
        .collect()
}

/// A tag key or value as Sentry takes it: one line, not empty, within its
/// length.
fn tag_text(s: &str, max_chars: usize) -> Option<String> {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let t: String = one_line.trim().chars().take(max_chars).collect();
    let t = t.trim_end().to_string();
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_bytes;
    use serde_json::{Value, json};

    const HOME: &str = "/tmp/ect-fixtures/home/alice";

    fn scrubber() -> Scrubber {
        Scrubber::new(Some(HOME), Some("alice"))
    }

    fn os() -> OsInfo {
        OsInfo {
            name: "Linux".into(),
            kernel_version: Some("6.1.0".into()),
        }
    }

    /// The last failure of a fixture, as the decision would pick it.
    fn failure(raw: &[u8]) -> Failure {
        parse_bytes(raw, false)
            .pop()
            .expect("a failure in the fixture")
    }

    fn event_with(f: &Failure, rules: &Rules, exit: Exit) -> Event {
        let input = Input {
            failure: f,
            rules,
            toolbox_version: Some("1.7.2"),
            exit,
            program: "/home/alice/envs/ect/bin/python3",
            event_id: EventId::parse("b1f0c1a4a2e94c3f8f9a0d4c2b1e3f5a").unwrap(),
            timestamp: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_000_000),
            os: &os(),
        };
        build(&input, &scrubber())
    }

    fn event(raw: &[u8], exit: Exit) -> (Failure, Value) {
        let f = failure(raw);
        let e = event_with(&f, &Rules::default(), exit);
        let v = serde_json::to_value(&e).unwrap();
        // What is sent reads back as the same event.
        assert_eq!(serde_json::from_value::<Event>(v.clone()).unwrap(), e);
        (f, v)
    }

    fn frame_summary(v: &Value) -> Vec<(String, bool)> {
        v["stacktrace"]["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["function"].as_str().unwrap().to_string(),
                    f["in_app"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn python_chain() {
        let (f, e) = event(
            include_bytes!("../../tests/fixtures/python/chained_from_toolbox-3.11.txt"),
            Exit::Code(1),
        );
        assert_eq!(e["platform"], "python");
        assert_eq!(e["level"], "fatal");
        assert_eq!(e["release"], "esa-climate-toolbox@1.7.2");
        assert_eq!(e["event_id"], "b1f0c1a4a2e94c3f8f9a0d4c2b1e3f5a");
        assert_eq!(e["timestamp"], "2025-11-24T16:00:00.000000Z");
        assert_eq!(e["fingerprint"], json!([fingerprint(&f)]));
        let values = e["exception"]["values"].as_array().unwrap();
        assert_eq!(values.len(), 2);
        let (cause, last) = (&values[0], &values[1]);
        assert_eq!(cause["type"], "KeyError");
        assert_eq!(cause["value"], "'chl'");
        assert_eq!(
            cause["mechanism"],
            json!({"type": "chained", "source": "__cause__", "exception_id": 1, "parent_id": 0})
        );
        assert_eq!(last["type"], "ValueError");
        assert_eq!(last["value"], "variable 'chl' not found in dataset");
        assert_eq!(
            last["mechanism"],
            json!({"type": "excepthook", "handled": false, "exception_id": 0})
        );
        assert_eq!(
            frame_summary(last),
            [
                ("<module>".to_string(), false),
                ("select_var".to_string(), true)
            ]
        );
        assert_eq!(
            last["stacktrace"]["frames"][1],
            json!({
                "filename": "esa_climate_toolbox/ops/compute.py",
                "abs_path": "~/envs/ect/lib/python3.11/site-packages/esa_climate_toolbox/ops/compute.py",
                "function": "select_var",
                "module": "esa_climate_toolbox.ops.compute",
                "lineno": 28,
                "context_line": "raise ValueError(f\"variable {name!r} not found in dataset\") from e",
                "in_app": true,
            })
        );
        assert_eq!(
            last["stacktrace"]["frames"][0]["filename"],
            "chained_from_toolbox.py"
        );
        assert!(last["stacktrace"]["frames"][0].get("module").is_none());
        assert_eq!(frame_summary(cause), [("select_var".to_string(), true)]);
        assert_eq!(
            e["tags"],
            json!({
                "command": "python3",
                "ect_run_version": env!("CARGO_PKG_VERSION"),
                "exit_status": "1",
                "failure_kind": "python-traceback",
            })
        );
        assert_eq!(
            e["contexts"],
            json!({"os": {"name": "Linux", "kernel_version": "6.1.0"}})
        );
        assert_eq!(
            e["sdk"],
            json!({"name": "ect-run", "version": env!("CARGO_PKG_VERSION")})
        );
        assert!(e.get("extra").is_none());
        assert!(!e.to_string().contains("alice"), "{e}");
    }

    #[test]
    fn python_dotted_class() {
        let (_, e) = event(
            include_bytes!("../../tests/fixtures/python/dotted_class-3.11.txt"),
            Exit::Code(1),
        );
        let last = &e["exception"]["values"][0];
        assert_eq!(last["type"], "MergeError");
        assert_eq!(last["module"], "xarray_fake.core.merge");
        assert_eq!(
            last["stacktrace"]["frames"][2]["module"],
            "xarray_fake.core.merge"
        );
        assert!(last["mechanism"].get("exception_id").is_none());
    }

    #[test]
    fn rust_panic_frames_oldest_first() {
        let (_, e) = event(
            include_bytes!("../../tests/fixtures/rust/ect_demo_panic_bt1.txt"),
            Exit::Code(101),
        );
        assert_eq!(e["platform"], "native");
        let values = e["exception"]["values"].as_array().unwrap();
        assert_eq!(values.len(), 1);
        let v = &values[0];
        assert_eq!(v["type"], "panic");
        assert_eq!(
            v["value"],
            "cannot compute anomaly: empty input for variable 'sst'"
        );
        assert_eq!(v["mechanism"], json!({"type": "panic", "handled": false}));
        let names: Vec<(String, bool)> = frame_summary(v);
        assert_eq!(
            names,
            [
                ("core::ops::function::FnOnce::call_once", false),
                ("ect_demo::main", true),
                ("ect_demo::compute::mean_anomaly", true),
                ("core::panicking::panic_fmt", false),
                ("__rustc::rust_begin_unwind", false),
            ]
            .map(|(n, b)| (n.to_string(), b))
        );
        let top = &v["stacktrace"]["frames"][2];
        assert_eq!(top["filename"], "ect_demo/src/main.rs");
        assert_eq!(top["abs_path"], "/home/<user>/src/ect_demo/src/main.rs");
        assert_eq!(top["lineno"], 6);
        assert_eq!(top["colno"], 13);
        assert_eq!(e["extra"], json!({"thread": "main"}));
    }

    #[test]
    fn rust_aborting_panic() {
        let (_, e) = event(
            include_bytes!("../../tests/fixtures/rust/ect_demo_drop_panic_nobt.txt"),
            Exit::Signal(libc::SIGABRT),
        );
        // The original panic counts; the later ones are no causes of it.
        let values = e["exception"]["values"].as_array().unwrap();
        assert_eq!(values.len(), 1);
        assert_eq!(values[0]["value"], "chunk index 2 out of range");
        assert_eq!(values[0]["stacktrace"]["frames"][0]["lineno"], 17);
        assert_eq!(
            e["extra"]["later_panics"],
            json!([
                "panic: failed to flush cache 'cci-sst'",
                "panic: panic in a destructor during cleanup"
            ])
        );
        assert_eq!(e["tags"]["signal"], "SIGABRT");
        assert_eq!(e["tags"]["exit_status"], "134");
    }

    #[test]
    fn rust_symbol_hashes() {
        let (_, e) = event(
            include_bytes!("../../tests/fixtures/rust/ect_demo_panic_btfull.txt"),
            Exit::Code(101),
        );
        let frames = e["exception"]["values"][0]["stacktrace"]["frames"]
            .as_array()
            .unwrap()
            .clone();
        let innermost = frames.last().unwrap();
        assert_eq!(
            innermost["function"],
            "std::backtrace_rs::backtrace::libunwind::trace"
        );
        assert_eq!(
            innermost["raw_function"],
            "std[e28293b1aa0f68bd]::backtrace_rs::backtrace::libunwind::trace"
        );
        let main = frames
            .iter()
            .find(|f| {
                f["raw_function"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("ect_demo::main::h"))
            })
            .unwrap();
        assert_eq!(main["function"], "ect_demo::main");
        assert_eq!(main["in_app"], true);
    }

    #[test]
    fn rust_panic_without_backtrace_has_its_location() {
        let (_, e) = event(
            include_bytes!("../../tests/fixtures/rust/ect_demo_panic_nobt.txt"),
            Exit::Code(101),
        );
        let frames = e["exception"]["values"][0]["stacktrace"]["frames"].clone();
        assert_eq!(
            frames,
            json!([{
                "filename": "ect_demo/src/main.rs",
                "abs_path": "/home/<user>/src/ect_demo/src/main.rs",
                "lineno": 6,
                "colno": 13,
                "in_app": true,
            }])
        );
    }

    #[test]
    fn faulthandler() {
        let (_, e) = event(
            include_bytes!("../../tests/fixtures/python/fatal_segfault_threads-3.11.txt"),
            Exit::Signal(libc::SIGSEGV),
        );
        assert_eq!(e["platform"], "python");
        let v = &e["exception"]["values"][0];
        assert_eq!(v["type"], "SIGSEGV");
        assert_eq!(v["value"], "Fatal Python error: Segmentation fault");
        assert_eq!(
            v["mechanism"],
            json!({
                "type": "faulthandler",
                "handled": false,
                "synthetic": true,
                "meta": {"signal": {"number": 11, "name": "SIGSEGV"}},
            })
        );
        assert_eq!(
            frame_summary(v),
            [
                ("<module>", false),
                ("read_native", true),
                ("string_at", false)
            ]
            .map(|(n, b)| (n.to_string(), b))
        );
        assert_eq!(v["stacktrace"]["frames"][2]["module"], "ctypes");

        // Py_FatalError: no signal in the message; the exit's is used.
        let (_, e) = event(
            include_bytes!("../../tests/fixtures/python/fatal_py_fatalerror-3.11.txt"),
            Exit::Signal(libc::SIGABRT),
        );
        let v = &e["exception"]["values"][0];
        assert_eq!(v["type"], "SIGABRT");
        assert_eq!(v["value"], "Fatal Python error: inconsistent grid state");
    }

    #[test]
    fn in_app_follows_user_patterns() {
        let f = failure(include_bytes!(
            "../../tests/fixtures/python/user_zero_division-3.11.txt"
        ));
        let plain = event_with(&f, &Rules::default(), Exit::Code(1));
        let frames = |e: &Event| -> Vec<bool> {
            e.exception.values[0]
                .stacktrace
                .as_ref()
                .unwrap()
                .frames
                .iter()
                .map(|f| f.in_app)
                .collect()
        };
        assert!(frames(&plain).iter().all(|b| !b));
        let rules = Rules {
            patterns: vec![Regex::new("/work/").unwrap()],
        };
        assert!(
            frames(&event_with(&f, &rules, Exit::Code(1)))
                .iter()
                .any(|b| *b)
        );
    }

    #[test]
    fn secrets_and_tags_are_cleaned() {
        let mut f = failure(include_bytes!(
            "../../tests/fixtures/python/toolbox_raise_error-3.11.txt"
        ));
        f.exception.message =
            "open https://bob:hunter2@data.example.org/x failed; token=abcdef123".into();
        f.exception.frames[0].source = Some("password='s3cret'".into());
        let input = Input {
            failure: &f,
            rules: &Rules::default(),
            toolbox_version: None,
            exit: Exit::Code(1),
            program: "/opt/run\nme with a very long name that goes on and on and on and on and on and on and on that goes on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on",
            event_id: EventId::random(),
            timestamp: SystemTime::now(),
            os: &os(),
        };
        let e = build(&input, &scrubber());
        let text = String::from_utf8(e.to_json()).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("abcdef123") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(e.release.is_none());
        let command = &e.tags["command"];
        assert!(!command.contains('\n'));
        assert_eq!(command.chars().count(), MAX_TAG_VALUE_CHARS);
        assert!(e.tags.keys().all(|k| k.len() <= MAX_TAG_KEY_CHARS));
    }

    #[test]
    fn long_stacks_are_trimmed_at_both_ends() {
        let mut f = failure(include_bytes!(
            "../../tests/fixtures/python/recursion_toolbox-3.11.txt"
        ));
        let one = f.exception.frames[0].clone();
        f.exception.frames = (0..10_000u64)
            .map(|i| Frame {
                line: Some(i),
                ..one.clone()
            })
            .collect();
        let e = event_with(&f, &Rules::default(), Exit::Code(1));
        let frames = &e.exception.values[0].stacktrace.as_ref().unwrap().frames;
        assert_eq!(frames.len(), 101);
        assert_eq!(frames[0].lineno, Some(0));
        assert_eq!(frames[49].lineno, Some(49));
        assert_eq!(
            frames[50].function.as_deref(),
            Some("[... 9900 frames omitted by ect-run ...]")
        );
        assert_eq!(frames[51].lineno, Some(9950));
        assert_eq!(frames[100].lineno, Some(9999));
        assert!(
            e.extra
                .truncated
                .as_deref()
                .unwrap()
                .starts_with("9900 frames omitted")
        );

        // Stacks so large that eleven of them pass 1 MiB: fewer frames
        // and causes are kept.
        f.exception.frames.truncate(200);
        for fr in &mut f.exception.frames {
            fr.function = Some("f".repeat(700));
            fr.source = Some("s".repeat(700));
            fr.file = Some(format!("/x/{}.py", "p".repeat(700)));
        }
        f.causes = vec![f.exception.clone(); 30];
        let e = event_with(&f, &Rules::default(), Exit::Code(1));
        let size = e.to_json().len();
        assert!(size <= MAX_EVENT_BYTES, "{size}");
        assert!(e.exception.values.len() < 31);
        assert!(
            e.extra
                .truncated
                .as_deref()
                .unwrap()
                .contains("chained exceptions omitted")
        );
        // The newest cause is kept, and still points at the failure.
        let n = e.exception.values.len();
        assert_eq!(e.exception.values[n - 2].mechanism.parent_id, Some(0));
    }

    #[test]
    fn death_by_signal_without_frames() {
        let f =
            crate::decide::failure_that_counts(vec![], Exit::Signal(libc::SIGKILL), false).unwrap();
        let e = event_with(&f, &Rules::default(), Exit::Signal(libc::SIGKILL));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["platform"], "native");
        assert_eq!(
            v["exception"]["values"],
            json!([{
                "type": "SIGKILL",
                "mechanism": {
                    "type": "signal",
                    "handled": false,
                    "synthetic": true,
                    "meta": {"signal": {"number": 9, "name": "SIGKILL"}},
                },
            }])
        );
    }

    proptest::proptest! {
        // Each case builds up to a dozen stacks: a few cases suffice.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Whatever the failure, the event is built, fits, and keeps the
        /// failure that counts last.
        #[test]
        fn any_failure_makes_a_bounded_event(
            kind in 0..4usize,
            class in ".{0,40}",
            message in ".{0,200}",
            frames in proptest::collection::vec((".{0,60}", proptest::option::of(0..100_000u64), ".{0,30}"), 0..120),
            causes in 0..12usize,
            signal in proptest::option::of(1..32i32),
        ) {
            let kind = [Kind::PythonTraceback, Kind::PythonFatal, Kind::RustPanic, Kind::Signal][kind];
            // From a parsed failure, not a literal: the parser's types grow.
            let mut f = failure(include_bytes!(
                "../../tests/fixtures/python/chained_from_toolbox-3.11.txt"
            ));
            f.kind = kind;
            f.exception.class = class.clone();
            f.exception.message = message;
            f.exception.frames = frames
                .into_iter()
                .map(|(file, line, function)| Frame {
                    file: Some(file),
                    line,
                    function: Some(function),
                    ..Frame::default()
                })
                .collect();
            f.causes = vec![f.exception.clone(); causes];
            let exit = signal.map_or(Exit::Code(1), Exit::Signal);
            let e = event_with(&f, &Rules::default(), exit);
            proptest::prop_assert!(e.to_json().len() <= MAX_EVENT_BYTES);
            let last = e.exception.values.last().unwrap();
            proptest::prop_assert!(!last.ty.is_empty() || class.is_empty());
            proptest::prop_assert_eq!(last.mechanism.exception_id.is_some(), kind == Kind::PythonTraceback && causes > 0);
        }
    }

    #[test]
    fn releases() {
        for (v, want) in [
            ("1.7.2", Some("esa-climate-toolbox@1.7.2")),
            (
                " 2.0.0rc1+local.3 ",
                Some("esa-climate-toolbox@2.0.0rc1+local.3"),
            ),
            ("unknown", None),
            ("", None),
            ("1.0/evil", None),
            ("1.0\n2", None),
            (".hidden", None),
        ] {
            assert_eq!(release(v).as_deref(), want, "{v:?}");
        }
    }

    #[test]
    fn event_ids() {
        let a = EventId::random();
        let s = a.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(&s[12..13], "4", "version 4: {s}");
        assert!(matches!(&s[16..17], "8" | "9" | "a" | "b"), "variant: {s}");
        assert_eq!(EventId::parse(&s), Some(a));
        assert_ne!(EventId::random(), a);
        let dashed = "b1f0c1a4-a2e9-4c3f-8f9a-0d4c2b1e3f5a";
        assert_eq!(
            EventId::parse(dashed).unwrap().to_string(),
            "b1f0c1a4a2e94c3f8f9a0d4c2b1e3f5a"
        );
        assert_eq!(EventId::parse("xyz"), None);
        assert_eq!(EventId::parse(&"g".repeat(32)), None);
        assert_eq!(EventId::parse(&"é".repeat(16)), None);
    }

    #[test]
    fn path_forms() {
        let cases = [
            (
                "/env/lib/python3.11/site-packages/esa_climate_toolbox/__init__.py",
                "esa_climate_toolbox/__init__.py",
                Some("esa_climate_toolbox"),
            ),
            (
                "/env/lib/python3.13t/json/decoder.py",
                "json/decoder.py",
                Some("json.decoder"),
            ),
            (
                r"C:\env\Lib\site-packages\pkg\mod.py",
                "pkg/mod.py",
                Some("pkg.mod"),
            ),
            ("/home/u/work/run.py", "run.py", None),
            (
                "<frozen importlib._bootstrap>",
                "<frozen importlib._bootstrap>",
                None,
            ),
        ];
        for (path, rel, module) in cases {
            let (r, lib) = python_relative(path);
            assert_eq!(r, rel, "{path}");
            assert_eq!(
                lib.then(|| python_module(&r)).flatten().as_deref(),
                module,
                "{path}"
            );
        }
        assert_eq!(rust_relative("/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ect-core-0.3.1/src/grid/mod.rs").0, "ect-core-0.3.1/src/grid/mod.rs");
        assert_eq!(
            rust_relative("/rustc/5980/library/core/src/panicking.rs").0,
            "core/src/panicking.rs"
        );
        assert_eq!(rust_relative("src/main.rs").0, "src/main.rs");
        assert_eq!(
            rust_relative("./csu/../csu/libc-start.c").0,
            "./csu/../csu/libc-start.c"
        );
        assert_eq!(rust_relative("/usr/lib/x.c").0, "x.c");
    }
}

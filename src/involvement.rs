//! Whether the toolbox's own code was involved in a failure, and which
//! frame shows it. Only an involved failure may ever be reported.
//!
//! Every frame counts: the failure's own, its causes' (chained exceptions,
//! a worker's or a notebook cell's embedded traceback, the Rust panic under
//! a pyo3 `PanicException`) and the panic location. Built-in rules: a
//! Python frame whose file path contains
//! `/esa_climate_toolbox/` (the toolbox's own reporter's rule, with Windows
//! separators too); a Rust frame whose symbol belongs to a crate named
//! `esa_climate_toolbox` or `ect_*`, or whose file (or the panic location)
//! lies in such a crate's directory. Users add regular expressions, matched
//! against each frame's file and function.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::parse::{Failure, Frame, Kind};

static RUST_SYMBOL: LazyLock<Regex> = LazyLock::new(|| {
    // `ect_demo::f`, `<ect_demo::T as Trait>::f`, `<&mut dyn ect_x::T>`,
    // and v0-style `ect_demo[1a2b3c]::f`.
    Regex::new(
        r"^(?:<+(?:&(?:mut )?)?(?:dyn )?)?(?:esa_climate_toolbox|ect_[A-Za-z0-9_]+)(?:\[[0-9a-f]+\])?::",
    )
    .expect("valid regex")
});

#[derive(Debug, Default)]
pub struct Rules {
    pub patterns: Vec<Regex>,
}

/// The decision, naming the frame that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Involvement {
    pub involved: bool,
    /// Index into the frames of the exception that matched: the failure's
    /// own (`matched_cause` is `None`) or a cause's.
    pub matched_frame: Option<usize>,
    /// When the toolbox shows only in a cause (a chained exception, a
    /// worker's or cell's traceback, the Rust panic under a
    /// `PanicException`): its index in [`Failure::causes`].
    pub matched_cause: Option<usize>,
    /// Why, in words: which frame (or location) and which rule.
    pub reason: String,
    /// The file path of the matched frame, for finding the toolbox version.
    #[serde(skip)]
    pub matched_path: Option<String>,
}

/// Looks at every frame of the failure's own exception, then of its causes
/// (newest first), then the panic location.
pub fn decide(failure: &Failure, rules: &Rules) -> Involvement {
    let own = (failure.kind, &failure.exception);
    let causes = failure
        .causes
        .iter()
        .enumerate()
        .rev()
        .map(|(i, e)| (Some(i), (e.kind.unwrap_or(failure.kind), e)));
    for (cause, (kind, exception)) in std::iter::once((None, own)).chain(causes) {
        let frames = &exception.frames;
        // Name the innermost matching frame: Python prints outermost
        // first, faulthandler and Rust innermost first.
        let order: Box<dyn Iterator<Item = (usize, &Frame)>> = match kind {
            Kind::PythonTraceback => Box::new(frames.iter().enumerate().rev()),
            _ => Box::new(frames.iter().enumerate()),
        };
        for (i, frame) in order {
            if let Some(rule) = frame_rule(kind, frame, rules) {
                let whose = match cause {
                    None => String::new(),
                    Some(c) => format!(" of cause {c} ({})", exception.class),
                };
                return Involvement {
                    involved: true,
                    matched_frame: Some(i),
                    matched_cause: cause,
                    reason: format!("frame {i}{whose} ({}) {rule}", describe(frame)),
                    matched_path: frame.file.clone(),
                };
            }
        }
    }
    if let Some(loc) = &failure.location
        && let Some(rule) = frame_rule(Kind::RustPanic, loc, rules)
    {
        return Involvement {
            involved: true,
            matched_frame: None,
            matched_cause: None,
            reason: format!("the panic location ({}) {rule}", describe(loc)),
            matched_path: loc.file.clone(),
        };
    }
    let reason = match failure.kind {
        Kind::Signal => "a signal leaves no frames to tell whose code failed".to_string(),
        _ => "no frame belongs to the toolbox".to_string(),
    };
    Involvement {
        involved: false,
        matched_frame: None,
        matched_cause: None,
        reason,
        matched_path: None,
    }
}

/// Whether this one frame is toolbox code by the same rules as [`decide`]:
/// what a Sentry event's `in_app` says for each frame.
pub fn is_toolbox_frame(kind: Kind, frame: &Frame, rules: &Rules) -> bool {
    frame_rule(kind, frame, rules).is_some()
}

/// The rule a frame matches, in words, if any.
fn frame_rule(kind: Kind, frame: &Frame, rules: &Rules) -> Option<String> {
    let file = frame.file.as_deref().map(|f| f.replace('\\', "/"));
    match kind {
        Kind::PythonTraceback | Kind::PythonFatal => {
            if file
                .as_deref()
                .is_some_and(|f| f.contains("/esa_climate_toolbox/"))
            {
                return Some("is in /esa_climate_toolbox/".to_string());
            }
        }
        Kind::RustPanic => {
            if frame
                .function
                .as_deref()
                .is_some_and(|s| RUST_SYMBOL.is_match(s))
            {
                return Some("is a toolbox crate's function".to_string());
            }
            if file.as_deref().is_some_and(is_toolbox_rust_path) {
                return Some("is in a toolbox crate's directory".to_string());
            }
        }
        Kind::Signal => {}
    }
    for re in &rules.patterns {
        let hit = [
            frame.file.as_deref(),
            file.as_deref(),
            frame.function.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|s| re.is_match(s));
        if hit {
            return Some(format!("matches --toolbox-pattern {:?}", re.as_str()));
        }
    }
    None
}

/// A directory component naming a toolbox crate: `esa_climate_toolbox`,
/// `ect_*`, `ect-*` (a crate's source directory in cargo's registry is
/// `ect-core-0.3.1`).
fn is_toolbox_rust_path(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop(); // the file name itself is not a crate
    parts.iter().any(|p| {
        *p == "esa_climate_toolbox"
            || p.starts_with("esa_climate_toolbox-")
            || (p.len() > 4 && (p.starts_with("ect_") || p.starts_with("ect-")))
    })
}

fn describe(frame: &Frame) -> String {
    let mut s = String::new();
    if let Some(f) = &frame.function {
        s.push_str(f);
    }
    if let Some(file) = &frame.file {
        if !s.is_empty() {
            s.push_str(" at ");
        }
        s.push_str(file);
        if let Some(l) = frame.line {
            s.push_str(&format!(":{l}"));
        }
    }
    if s.is_empty() {
        "unknown frame".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Exception;

    fn failure(kind: Kind, frames: Vec<Frame>) -> Failure {
        Failure {
            kind,
            exception: Exception {
                class: "X".into(),
                frames,
                ..Exception::default()
            },
            ..Failure::default()
        }
    }

    fn file(f: &str) -> Frame {
        Frame {
            file: Some(f.into()),
            ..Frame::default()
        }
    }

    fn func(s: &str) -> Frame {
        Frame {
            function: Some(s.into()),
            ..Frame::default()
        }
    }

    #[test]
    fn python_paths() {
        let rules = Rules::default();
        let cases = [
            (
                "/env/lib/python3.11/site-packages/esa_climate_toolbox/util/reporting.py",
                true,
            ),
            (
                r"C:\env\Lib\site-packages\esa_climate_toolbox\core.py",
                true,
            ),
            ("/home/u/esa_climate_toolbox_notes/x.py", false),
            ("/home/u/run.py", false),
        ];
        for (path, want) in cases {
            let f = failure(Kind::PythonTraceback, vec![file("/a.py"), file(path)]);
            assert_eq!(decide(&f, &rules).involved, want, "{path}");
        }
    }

    #[test]
    fn python_names_innermost_frame() {
        let tb = "/s/esa_climate_toolbox/a.py";
        let f = failure(
            Kind::PythonTraceback,
            vec![file(tb), file("/u.py"), file(tb), file("/u.py")],
        );
        assert_eq!(decide(&f, &Rules::default()).matched_frame, Some(2));
    }

    #[test]
    fn rust_symbols_and_paths() {
        let rules = Rules::default();
        let yes = [
            func("ect_core::grid::regrid::h0123456789abcdef"),
            func("<ect_demo::store::Cache as core::ops::drop::Drop>::drop"),
            func("esa_climate_toolbox::io::open"),
            func("ect_demo[1a2b3c4d]::main"),
            file("/home/u/.cargo/registry/src/idx/ect-core-0.3.1/src/lib.rs"),
            file("/home/u/src/ect_demo/src/main.rs"),
        ];
        for fr in yes {
            let f = failure(Kind::RustPanic, vec![fr.clone()]);
            assert!(decide(&f, &rules).involved, "{fr:?}");
        }
        let no = [
            func("core::panicking::panic_fmt"),
            func("user_app::main"),
            file("src/ect_x.rs"),
            func("effect_size::f"),
        ];
        for fr in no {
            let f = failure(Kind::RustPanic, vec![fr.clone()]);
            assert!(!decide(&f, &rules).involved, "{fr:?}");
        }
    }

    #[test]
    fn causes_and_their_kinds_count() {
        let mut f = failure(Kind::PythonTraceback, vec![file("/u.py")]);
        f.causes.push(Exception {
            class: "panic".into(),
            frames: vec![func("ect_core::grid::regrid")],
            kind: Some(Kind::RustPanic),
            ..Exception::default()
        });
        let d = decide(&f, &Rules::default());
        assert!(d.involved, "{d:?}");
        assert_eq!((d.matched_cause, d.matched_frame), (Some(0), Some(0)));
        // A Rust panic location under a Python failure counts too.
        let mut f = failure(Kind::PythonTraceback, vec![file("/u.py")]);
        f.location = Some(file(
            "/home/u/.cargo/registry/src/idx/ect-core-0.3.1/src/lib.rs",
        ));
        assert!(decide(&f, &Rules::default()).involved);
    }

    #[test]
    fn user_patterns() {
        let rules = Rules {
            patterns: vec![Regex::new("/my_lab/").unwrap()],
        };
        let f = failure(Kind::PythonTraceback, vec![file("/opt/my_lab/x.py")]);
        let d = decide(&f, &rules);
        assert!(d.involved);
        assert!(d.reason.contains("--toolbox-pattern"), "{}", d.reason);
    }
}

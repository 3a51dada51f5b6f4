//! One captured stderr tail and how the child ended, taken through parse →
//! decide → involvement → toolbox version; and the `--analyze` output of
//! that, a stable interface (README "--analyze --json").

use serde_json::{Value, json};

use crate::decide::{self, NoFailure};
use crate::involvement::{self, Involvement, Rules};
use crate::parse::{self, Exception, Failure};
use crate::supervise::Exit;
use crate::toolbox_version;

#[derive(Debug)]
pub struct Analysis {
    pub outcome: Result<(Failure, Involvement), NoFailure>,
    pub toolbox_version: String,
}

impl Analysis {
    /// The failure, only if the toolbox was involved: the one thing that
    /// may ever be reported.
    pub fn reportable(&self) -> Option<(&Failure, &Involvement)> {
        match &self.outcome {
            Ok((f, inv)) if inv.involved => Some((f, inv)),
            _ => None,
        }
    }

    /// Why there is nothing to report, in words.
    pub fn why_not(&self) -> String {
        match &self.outcome {
            Err(why) => why.describe().to_string(),
            Ok((f, inv)) => format!(
                "{} ({}): {}",
                f.exception.class,
                f.kind.as_str(),
                inv.reason
            ),
        }
    }
}

pub fn analyze(
    tail: &[u8],
    truncated: bool,
    exit: Exit,
    interrupted_by_user: bool,
    rules: &Rules,
) -> Analysis {
    let found = parse::parse_tail(tail, truncated);
    let outcome = decide::failure_that_counts(found, exit, interrupted_by_user).map(|f| {
        let inv = involvement::decide(&f, rules);
        (f, inv)
    });
    let matched = outcome
        .as_ref()
        .ok()
        .and_then(|(_, inv)| inv.matched_path.as_deref());
    let toolbox_version = toolbox_version::find(matched);
    Analysis {
        outcome,
        toolbox_version,
    }
}

/// The `--analyze --json` object.
pub fn to_json(a: &Analysis) -> Value {
    let frames = |e: &Exception| {
        e.frames
            .iter()
            .map(|fr| {
                json!({
                    "file": fr.file,
                    "line": fr.line,
                    "function": fr.function,
                })
            })
            .collect::<Vec<_>>()
    };
    let failure = match &a.outcome {
        Err(_) => Value::Null,
        Ok((f, inv)) => json!({
            "kind": f.kind.as_str(),
            "exception_class": f.exception.class,
            "exception_message": f.exception.message,
            "frames": frames(&f.exception),
            "toolbox_involved": inv.involved,
            "matched_frame": if inv.matched_cause.is_none() { inv.matched_frame } else { None },
            "toolbox_version": a.toolbox_version,
            "causes": f.causes.iter().enumerate().map(|(i, e)| json!({
                "kind": e.kind.unwrap_or(f.kind).as_str(),
                "exception_class": e.class,
                "exception_message": e.message,
                "frames": frames(e),
                "chain": e.chain,
                "matched_frame": if inv.matched_cause == Some(i) { inv.matched_frame } else { None },
            })).collect::<Vec<_>>(),
        }),
    };
    json!({ "failure": failure })
}

/// A short summary for people.
pub fn summary(a: &Analysis) -> String {
    match &a.outcome {
        Err(why) => format!("No failure to report: {}.\n", why.describe()),
        Ok((f, inv)) => {
            let mut s = String::new();
            let msg = f.exception.message.lines().next().unwrap_or("");
            s.push_str(&format!(
                "Failure: {} ({})\n",
                f.exception.class,
                f.kind.as_str()
            ));
            if !msg.is_empty() {
                s.push_str(&format!("Message: {msg}\n"));
            }
            s.push_str(&format!("Frames:  {}\n", f.exception.frames.len()));
            for (kind, e) in f.chain().take(f.causes.len()) {
                s.push_str(&format!(
                    "Cause:   {} ({}), {} frames\n",
                    e.class,
                    kind.as_str(),
                    e.frames.len()
                ));
            }
            if inv.involved {
                s.push_str(&format!("Toolbox involved: yes: {}\n", inv.reason));
                s.push_str(&format!("Toolbox version: {}\n", a.toolbox_version));
                s.push_str("Verdict: would be reported (with consent)\n");
            } else {
                s.push_str(&format!("Toolbox involved: no: {}\n", inv.reason));
                s.push_str("Verdict: would not be reported\n");
            }
            s
        }
    }
}

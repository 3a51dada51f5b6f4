//! Removing what is private from text before it leaves the machine: the
//! home directory becomes `~`, the user name is masked, credentials in URLs
//! and common secret shapes (tokens, keys, `password=...`) are replaced.
//!
//! A [`Scrubber`] is built once from the environment and applied to every
//! string of a report. It errs on the side of removing too much.

use std::sync::LazyLock;

use regex::{Captures, Regex};

const MASK: &str = "***";
const USER_MASK: &str = "<user>";

static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@").expect("regex")
});
/// `password=x`, `api_key: x`, `"token": "x"`, `--secret x` and the like.
static KEY_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<key>\b[\w.-]*(?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|auth)[\w.-]*)(?P<sep>["']?\s*[:=]\s*["']?|\s+)(?P<value>[^\s"',;&)}\]]+)"#,
    )
    .expect("regex")
});
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?P<kind>bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}").expect("regex")
});
/// Well-known token shapes: AWS key ids, GitHub, GitLab, Slack, OpenAI-like
/// `sk-`, Google API keys, JWTs, PEM private keys.
static TOKENS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b",
        r"|\bgithub_pat_[A-Za-z0-9_]{30,}\b",
        r"|\bglpat-[A-Za-z0-9_-]{20,}\b",
        r"|\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
        r"|\bsk-[A-Za-z0-9_-]{20,}\b",
        r"|\bAIza[0-9A-Za-z_-]{35}\b",
        r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    ))
    .expect("regex")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
        .expect("regex")
});

#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    home: Option<String>,
    user: Option<Regex>,
}

impl Scrubber {
    /// From `$HOME` and the login name (`$USER`, `$LOGNAME`).
    pub fn from_env() -> Scrubber {
        let home = std::env::var("HOME").ok();
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok();
        Scrubber::new(home.as_deref(), user.as_deref())
    }

    pub fn new(home: Option<&str>, user: Option<&str>) -> Scrubber {
        let home = home
            .map(|h| h.trim_end_matches('/').to_string())
            .filter(|h| h.len() > 1); // HOME=/ would turn every path into ~
        // Names like "a" or "ci" would mask half of every message: match
        // them only as whole path components.
        let user = user.filter(|u| !u.is_empty() && *u != "root").map(|u| {
            let u = regex::escape(u);
            let pattern = if u.len() >= 3 {
                format!(r"(?P<a>\b){u}(?P<b>\b)")
            } else {
                format!(r"(?P<a>^|[/\\]){u}(?P<b>[/\\]|$)")
            };
            Regex::new(&pattern).expect("an escaped name is a valid regex")
        });
        Scrubber { home, user }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut s = text.to_string();
        if let Some(home) = &self.home {
            s = replace_path_prefix(&s, home, "~");
        }
        s = URL_CREDENTIALS
            .replace_all(&s, |c: &Captures| format!("{}{MASK}@", &c["scheme"]))
            .into_owned();
        s = TOKENS.replace_all(&s, MASK).into_owned();
        s = KEY_VALUE
            .replace_all(&s, |c: &Captures| {
                let value = &c["value"];
                // "Authorization: Bearer x": the scheme is not the secret,
                // the token after it is (masked next).
                let scheme =
                    ["bearer", "basic", "token"].contains(&value.to_ascii_lowercase().as_str());
                if scheme || value == MASK {
                    c[0].to_string()
                } else {
                    format!("{}{}{MASK}", &c["key"], &c["sep"])
                }
            })
            .into_owned();
        s = BEARER
            .replace_all(&s, |c: &Captures| format!("{} {MASK}", &c["kind"]))
            .into_owned();
        s = EMAIL.replace_all(&s, "<email>").into_owned();
        if let Some(user) = &self.user {
            s = user
                .replace_all(&s, |c: &Captures| {
                    format!("{}{USER_MASK}{}", &c["a"], &c["b"])
                })
                .into_owned();
        }
        s
    }
}

/// Replaces `prefix` where it stands as a whole path prefix: followed by a
/// separator, a quote or the end, not by more of a longer name.
fn replace_path_prefix(s: &str, prefix: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        let whole =
            after.is_empty() || after.starts_with(['/', '\\', '"', '\'', ' ', ':', ')', '\n']);
        out.push_str(&rest[..i]);
        out.push_str(if whole { with } else { prefix });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let s = Scrubber::new(Some("/home/alice"), Some("alice"));
        let cases = [
            (r#"File "/home/alice/envs/x.py""#, r#"File "~/envs/x.py""#),
            ("/home/alicex/data", "/home/alicex/data"),
            (
                "/scratch/alice/run-7/out.nc",
                "/scratch/<user>/run-7/out.nc",
            ),
            (
                "https://bob:hunter2@data.example.org/cube",
                "https://***@data.example.org/cube",
            ),
            ("password=hunter2 next", "password=*** next"),
            ("{'api_key': 'abc123xyz'}", "{'api_key': '***'}"),
            ("DB_PASSWORD: s3cr3t", "DB_PASSWORD: ***"),
            (
                "Authorization: Bearer abcdefghijklmnop",
                "Authorization: Bearer ***",
            ),
            ("key AKIAIOSFODNN7EXAMPLE here", "key *** here"),
            ("ghp_0123456789abcdefghijABCDEFGHIJ0123456789", "***"),
            ("mail alice.smith@example.org now", "mail <email> now"),
            ("division by zero", "division by zero"),
            (
                "ect_demo::main::h0123456789abcdef",
                "ect_demo::main::h0123456789abcdef",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(s.scrub(input), want, "{input}");
        }
    }

    #[test]
    fn short_or_missing_names_are_safe() {
        let s = Scrubber::new(Some("/"), Some("al"));
        assert_eq!(s.scrub("/usr/lib/python3/x.py"), "/usr/lib/python3/x.py");
        assert_eq!(s.scrub("normal text"), "normal text");
        assert_eq!(s.scrub("/scratch/al/x"), "/scratch/<user>/x");
        let s = Scrubber::new(None, None);
        assert_eq!(s.scrub("/home/x"), "/home/x");
    }
}

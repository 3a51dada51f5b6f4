//! A Sentry DSN (`https://PUBLIC_KEY@HOST[:PORT][/PATH]/PROJECT_ID`): parsed
//! and checked once, then the one source of the envelope URL, the
//! `X-Sentry-Auth` header and the `dsn` of an envelope header.
//!
//! Invariants: the public key never shows in `Display` or `Debug` (only its
//! first characters); two DSNs that name the same project at the same
//! place compare equal however they were written (scheme and host case, a
//! default port, a trailing slash) and whatever their key, as the toolbox
//! destination ignores credentials: [`Dsn::identity`] is that sameness,
//! free of the key, for state files.

use std::fmt;

/// What a DSN looks like, for every error message.
const EXPECTED: &str = "expected https://PUBLIC_KEY@HOST[:PORT][/PATH]/PROJECT_ID";

/// A checked DSN, in normal form: scheme and host lowercase, no default
/// port, no trailing slash. Equal (and hashed) by [`Dsn::identity`].
#[derive(Clone)]
pub struct Dsn {
    https: bool,
    public_key: String,
    /// Legacy DSNs carry `KEY:SECRET`; servers ignore the secret, so it is
    /// kept only to give the DSN back as it was.
    secret: Option<String>,
    /// Lowercase; an IPv6 address keeps its brackets.
    host: String,
    /// `None` for the scheme's default port.
    port: Option<u16>,
    /// Where the tracker is mounted: empty, or `/a/b` (no trailing slash).
    path: String,
    project_id: String,
}

/// Why a string is not a DSN, in one line that says what is expected (and
/// never repeats the input, which holds the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnError(String);

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a Sentry DSN: {}; {EXPECTED}", self.0)
    }
}

impl std::error::Error for DsnError {}

fn err(why: &str) -> DsnError {
    DsnError(why.to_string())
}

impl PartialEq for Dsn {
    fn eq(&self, other: &Dsn) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Dsn {}

impl std::hash::Hash for Dsn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl std::str::FromStr for Dsn {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Dsn, DsnError> {
        Dsn::parse(s)
    }
}

impl Dsn {
    pub fn parse(input: &str) -> Result<Dsn, DsnError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("it contains spaces or control characters"));
        }
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| err("the scheme (https://) is missing"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(err("the scheme must be https or http")),
        };
        if rest.contains(['?', '#']) {
            return Err(err("it has a query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => return Err(err("the project id is missing")),
        };
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| err("the public key (before @) is missing"))?;
        let (public_key, secret) = match userinfo.split_once(':') {
            Some((k, s)) => (k, Some(s)),
            None => (userinfo, None),
        };
        if public_key.is_empty() {
            return Err(err("the public key (before @) is empty"));
        }
        if !public_key.chars().all(is_key_char) || !secret.unwrap_or("").chars().all(is_key_char) {
            return Err(err("the public key has characters a key cannot have"));
        }
        let (host, port) = split_host_port(hostport)?;
        let port = port.filter(|&p| p != if https { 443 } else { 80 });

        // "/PATH/PROJECT_ID", a trailing slash ignored.
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let (prefix, project_id) = trimmed
            .rsplit_once('/')
            .ok_or_else(|| err("the project id is missing"))?;
        if project_id.is_empty() {
            return Err(err("the project id is missing"));
        }
        if !project_id.chars().all(is_segment_char) {
            return Err(err("the project id has characters an id cannot have"));
        }
        if prefix.split('/').skip(1).any(|seg| seg.is_empty()) {
            return Err(err("the path has an empty segment (//)"));
        }
        if !prefix
            .chars()
            .all(|c| c == '/' || is_segment_char(c) || c == '%')
        {
            return Err(err("the path has characters a URL path cannot have"));
        }
        Ok(Dsn {
            https,
            public_key: public_key.to_string(),
            secret: secret.map(str::to_string),
            host,
            port,
            path: prefix.to_string(),
            project_id: project_id.to_string(),
        })
    }

    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// `https://host[:port][/path]`: where the tracker is, without the key.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(p) => format!("{scheme}://{}:{p}{}", self.host, self.path),
            None => format!("{scheme}://{}{}", self.host, self.path),
        }
    }

    /// The project at its tracker, `https://host[:port][/path]/PROJECT_ID`:
    /// equal for every spelling of the DSN, and without the key, so it can
    /// name the destination in state files and be shown.
    pub fn identity(&self) -> String {
        format!("{}/{}", self.origin(), self.project_id)
    }

    /// Where envelopes are POSTed.
    pub fn envelope_url(&self) -> String {
        format!("{}/api/{}/envelope/", self.origin(), self.project_id)
    }

    /// The `X-Sentry-Auth` header's value. `client_version` is ect-run's.
    pub fn auth_header(&self, client_version: &str) -> String {
        format!(
            "Sentry sentry_version=7, sentry_key={}, sentry_client=ect-run/{client_version}",
            self.public_key
        )
    }

    /// The whole DSN, key included, in normal form: for the envelope
    /// header's `dsn` and for storing. Never for showing.
    pub fn expose(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let user = match &self.secret {
            Some(s) => format!("{}:{s}", self.public_key),
            None => self.public_key.clone(),
        };
        let rest = self.origin();
        let rest = rest.split_once("://").map_or(rest.as_str(), |(_, r)| r);
        format!("{scheme}://{user}@{rest}/{}", self.project_id)
    }

    /// The key as shown: its first four characters, if it is long enough
    /// for that to leave most of it hidden.
    fn masked_key(&self) -> String {
        let k = &self.public_key;
        if k.chars().count() >= 16 {
            format!("{}***", k.chars().take(4).collect::<String>())
        } else {
            "***".to_string()
        }
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.origin();
        let (scheme, rest) = origin.split_once("://").unwrap_or(("https", &origin));
        write!(
            f,
            "{scheme}://{}@{rest}/{}",
            self.masked_key(),
            self.project_id
        )
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

/// Key characters: Sentry's are hex; allow what is safe in a header value.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')
}

/// Characters of one path segment that need no escaping.
fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; the host lowercased.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), DsnError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| err("an IPv6 host lacks its closing ]"))?;
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(err("the IPv6 host is not an address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| err("unexpected text after the IPv6 host"))?,
            ),
        };
        (format!("[{v6}]"), port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(err("the host is missing"));
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(err("the host has characters a host name cannot have"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err(err("the port is not a number from 1 to 65535")),
        },
    };
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn dsn(s: &str) -> Dsn {
        Dsn::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn urls_and_headers() {
        let cases = [
            (
                format!("https://{KEY}@o1.ingest.sentry.io/42"),
                "https://o1.ingest.sentry.io/api/42/envelope/",
            ),
            (
                format!("http://{KEY}@127.0.0.1:8000/1"),
                "http://127.0.0.1:8000/api/1/envelope/",
            ),
            (
                format!("HTTPS://{KEY}@Tracker.Example.ORG:443/errors/sentry/7/"),
                "https://tracker.example.org/errors/sentry/api/7/envelope/",
            ),
            (
                format!("http://{KEY}@[::1]:9000/3"),
                "http://[::1]:9000/api/3/envelope/",
            ),
            (
                format!("https://{KEY}:legacysecret@host:8443/p/5"),
                "https://host:8443/p/api/5/envelope/",
            ),
        ];
        for (s, url) in cases {
            let d = dsn(&s);
            assert_eq!(d.envelope_url(), url, "{s}");
            assert_eq!(d.public_key(), KEY);
            assert_eq!(
                d.auth_header("0.1.0"),
                format!("Sentry sentry_version=7, sentry_key={KEY}, sentry_client=ect-run/0.1.0")
            );
        }
    }

    #[test]
    fn key_never_shown() {
        let d = dsn(&format!("https://{KEY}@host.example/12"));
        assert_eq!(d.to_string(), "https://0123***@host.example/12");
        assert_eq!(format!("{d:?}"), "Dsn(https://0123***@host.example/12)");
        let short = dsn("https://abc@host.example/12");
        assert_eq!(short.to_string(), "https://***@host.example/12");
        assert_eq!(
            dsn(&format!("https://{KEY}:sec@h:81/a/b/1/")).expose(),
            format!("https://{KEY}:sec@h:81/a/b/1")
        );
    }

    #[test]
    fn same_project_same_place_is_equal() {
        let a = dsn(&format!("https://{KEY}@tracker.example/sub/1"));
        for s in [
            format!("HTTPS://{KEY}@TRACKER.example:443/sub/1/"),
            format!("  https://{KEY}@tracker.example/sub/1  "),
        ] {
            let b = dsn(&s);
            assert_eq!(a, b, "{s}");
            assert_eq!(a.expose(), b.expose());
            let mut set = std::collections::HashSet::new();
            set.insert(a.clone());
            assert!(set.contains(&b));
        }
        assert_eq!(a.identity(), "https://tracker.example/sub/1");
        // Another key for the same project is the same destination.
        assert_eq!(a, dsn("https://otherkey@tracker.example/sub/1"));
        for s in [
            format!("http://{KEY}@tracker.example/sub/1"),
            format!("https://{KEY}@tracker.example:8443/sub/1"),
            format!("https://{KEY}@tracker.example/1"),
            format!("https://{KEY}@tracker.example/sub/2"),
        ] {
            assert_ne!(a, dsn(&s), "{s}");
        }
    }

    #[test]
    fn malformed() {
        let cases = [
            "",
            "o1.ingest.sentry.io/42",
            "ftp://k@host/1",
            "https://host/1",
            "https://@host/1",
            "https://k@/1",
            "https://k@host",
            "https://k@host/",
            "https://k@host:0/1",
            "https://k@host:99999/1",
            "https://k@host:/1",
            "https://k@host:x/1",
            "https://k@ho st/1",
            "https://k@host/1?opt=1",
            "https://k@host//1",
            "https://k,x@host/1",
            "https://k@[::1/1",
            "https://k@host/p q/1",
        ];
        for s in cases {
            let e = Dsn::parse(s).expect_err(s);
            let msg = e.to_string();
            assert!(msg.starts_with("not a Sentry DSN: "), "{msg}");
            assert!(msg.ends_with(EXPECTED), "{msg}");
            assert!(!msg.contains('\n'));
        }
        // The message never repeats the input (it holds the key).
        let e = Dsn::parse(&format!("ftp://{KEY}@host/1")).unwrap_err();
        assert!(!e.to_string().contains(KEY));
    }
}

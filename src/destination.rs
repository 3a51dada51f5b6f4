//! Where a report may go, parsed once. A [`Destination`] knows its kind
//! (the toolbox's own JSON server, or a Sentry-protocol tracker named by
//! its DSN), compares equal for every spelling of the same endpoint (scheme
//! and host case, default port, a trailing slash, credentials), and never
//! prints its credentials. Consent, the outbox, pauses and `--status` all
//! key on [`Destination::key`].

use std::fmt;

use crate::redact::ServerUrl;
use crate::sentry::Dsn;

/// The kinds of destination, as stored in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The toolbox's reporting server: one JSON POST of the report.
    Toolbox,
    /// A Sentry-protocol tracker: one envelope with one event.
    Sentry,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Toolbox => "toolbox",
            Kind::Sentry => "sentry",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "toolbox" => Some(Kind::Toolbox),
            "sentry" => Some(Kind::Sentry),
            _ => None,
        }
    }
}

/// A parsed, validated destination.
#[derive(Clone)]
pub struct Destination {
    kind: Kind,
    /// As given, credentials included: what requests are sent to.
    url: ServerUrl,
    /// The normalised endpoint without credentials.
    key: String,
    dsn: Option<Dsn>,
}

impl PartialEq for Destination {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.key == other.key
    }
}

impl Eq for Destination {}

impl std::hash::Hash for Destination {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.key.hash(state);
    }
}

impl Destination {
    /// A toolbox reporting server URL: `http(s)://HOST[:PORT][/PATH]`.
    pub fn toolbox(raw: &str) -> Result<Destination, String> {
        let raw = raw.trim();
        let shown = ServerUrl::new(raw).to_string();
        let expected = "expected http://HOST[:PORT][/PATH] or https://...";
        let uri: ureq::http::Uri = raw
            .parse()
            .map_err(|_| format!("{shown:?} is not a URL: {expected}"))?;
        let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
        let default_port = match scheme.as_deref() {
            Some("http") => 80,
            Some("https") => 443,
            _ => {
                return Err(format!(
                    "{shown:?} has no http:// or https:// scheme: {expected}"
                ));
            }
        };
        let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
            return Err(format!("{shown:?} has no host: {expected}"));
        };
        let mut key = format!(
            "{}://{}",
            scheme.as_deref().unwrap_or("http"),
            host.to_ascii_lowercase()
        );
        if let Some(port) = uri.port_u16().filter(|p| *p != default_port) {
            key.push_str(&format!(":{port}"));
        }
        key.push_str(uri.path().trim_end_matches('/'));
        if let Some(q) = uri.query() {
            key.push('?');
            key.push_str(q);
        }
        Ok(Destination {
            kind: Kind::Toolbox,
            url: ServerUrl::new(raw),
            key,
            dsn: None,
        })
    }

    /// A Sentry DSN: `https://PUBLIC_KEY@HOST[:PORT][/PATH]/PROJECT_ID`.
    pub fn sentry(raw: &str) -> Result<Destination, String> {
        let dsn = Dsn::parse(raw.trim()).map_err(|e| e.to_string())?;
        Ok(Destination {
            kind: Kind::Sentry,
            url: ServerUrl::new(dsn.expose()),
            key: dsn.identity(),
            dsn: Some(dsn),
        })
    }

    /// Parses a destination of a known kind, as stored in the outbox.
    pub fn parse(kind: Kind, raw: &str) -> Result<Destination, String> {
        match kind {
            Kind::Toolbox => Destination::toolbox(raw),
            Kind::Sentry => Destination::sentry(raw),
        }
    }

    /// The DSN, for a Sentry destination.
    pub fn dsn(&self) -> Option<&Dsn> {
        self.dsn.as_ref()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The identity of the endpoint: equal for every spelling of it, and
    /// free of credentials (it is written to state files and compared).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The whole URL, credentials included, for sending and for the files
    /// only their owner reads.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dsn {
            Some(dsn) => fmt::Display::fmt(dsn, f),
            None => fmt::Display::fmt(&self.url, f),
        }
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({}, {self})", self.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_endpoint_are_equal() {
        let a = Destination::toolbox("http://host:1").unwrap();
        for same in [
            "http://host:1/",
            "HTTP://HOST:1/",
            " http://host:1 ",
            "http://user:pw@host:1/",
        ] {
            assert_eq!(Destination::toolbox(same).unwrap(), a, "{same}");
        }
        assert_eq!(
            Destination::toolbox("https://h/ect/").unwrap(),
            Destination::toolbox("https://h:443/ect").unwrap()
        );
        assert_ne!(a, Destination::toolbox("http://host:2").unwrap());
        assert_ne!(a, Destination::toolbox("https://host:1").unwrap());
        assert_ne!(
            Destination::toolbox("http://h/a").unwrap(),
            Destination::toolbox("http://h/b").unwrap()
        );
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        for bad in ["localhost:9898", "ftp://host/", "not a url", "http://", ""] {
            let err = Destination::toolbox(bad).unwrap_err();
            assert!(err.contains("expected http://"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_dsn_is_a_destination_of_its_own() {
        let key = "0123456789abcdef0123456789abcdef";
        let s = Destination::sentry(&format!("https://{key}@Sentry.Example.org/42")).unwrap();
        assert_eq!(s.kind(), Kind::Sentry);
        assert_eq!(
            s,
            Destination::sentry(&format!("https://{key}@sentry.example.org:443/42/")).unwrap()
        );
        for shown in [s.to_string(), format!("{s:?}"), s.key().to_string()] {
            assert!(!shown.contains(key), "{shown}");
        }
        assert!(Destination::sentry("https://sentry.example.org/42").is_err());
        assert_ne!(
            s,
            Destination::toolbox("https://sentry.example.org/42").unwrap()
        );
    }

    #[test]
    fn credentials_are_never_shown() {
        let d = Destination::toolbox("https://me:s3cret@h/x").unwrap();
        for shown in [d.to_string(), format!("{d:?}"), d.key().to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
        assert!(d.expose().contains("s3cret"));
    }
}

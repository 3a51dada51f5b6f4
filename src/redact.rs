//! Values that may hold secrets, in types that cannot leak them by
//! accident: their `Display` and `Debug` mask the secret part, and only an
//! explicit `expose()` gives the whole value (for sending, and for files
//! only their owner can read).

use std::fmt;

/// A server URL. It may carry credentials (`https://user:token@host/`),
/// which ect-run's own messages, `--status` and error lines never show.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl(String);

impl ServerUrl {
    pub fn new(url: impl Into<String>) -> ServerUrl {
        ServerUrl(url.into())
    }

    /// The whole URL, credentials included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn masked(&self) -> String {
        let Some(scheme_end) = self.0.find("://") else {
            return self.0.clone();
        };
        let rest = &self.0[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        match rest[..authority_end].rfind('@') {
            Some(at) => format!("{}***@{}", &self.0[..scheme_end + 3], &rest[at + 1..]),
            None => self.0.clone(),
        }
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerUrl({:?})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        let cases = [
            (
                "https://bob:t0k3n@reports.example.org/ect",
                "https://***@reports.example.org/ect",
            ),
            ("http://token@host:9898", "http://***@host:9898"),
            ("http://localhost:9898", "http://localhost:9898"),
            (
                "http://host/path@not-userinfo",
                "http://host/path@not-userinfo",
            ),
        ];
        for (url, shown) in cases {
            let u = ServerUrl::new(url);
            assert_eq!(u.to_string(), shown);
            assert!(!format!("{u:?}").contains("t0k3n"));
            assert_eq!(u.expose(), url);
        }
    }
}

//! One HTTP POST and what its answer means. Bounded connect and total
//! timeouts, HTTPS with certificate verification, the usual proxy variables
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, as ureq reads
//! them), and redirects never followed: a `Location` names a server the
//! user did not consent to, so nothing is requested from it.

use std::time::{Duration, SystemTime};

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the server has it; it may ask for a pause all the same (a
    /// tracker's rate limit).
    Delivered { pause_after: Option<SystemTime> },
    /// 3xx: not followed.
    Redirected { location: String },
    /// Worth trying again later: 408, 429, 5xx, a timeout, a refused or
    /// reset connection.
    Retry {
        /// In words, for the user: "connection refused", "HTTP 503", ...
        reason: String,
        /// The server asked us to wait (`Retry-After`, a rate limit).
        retry_after: Option<SystemTime>,
        /// No answer within the timeouts: the costly kind of failure.
        timed_out: bool,
    },
    /// Any other 4xx: this server will never take this report.
    Rejected { answer: String },
}

/// The answer's parts a destination needs to judge it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
}

/// An HTTP client with the delivery limits; made once per process, used for
/// every report it sends (its TLS setup is not free).
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Client {
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(connect_timeout))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("ect-run/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent, timeout }
    }

    /// POSTs `body` with `headers`, taking at most `budget` (capped by the
    /// client's timeout). Transport failures become [`Outcome::Retry`];
    /// an answer is passed to `judge`.
    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
        budget: Duration,
        judge: impl FnOnce(&Answer) -> Outcome,
    ) -> Outcome {
        let mut req = self
            .agent
            .post(url)
            .config()
            .timeout_global(Some(budget.min(self.timeout)))
            .build();
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        match req.send(body) {
            Ok(resp) => judge(&Answer {
                status: resp.status().as_u16(),
                headers: resp.headers().clone(),
            }),
            Err(e) => Outcome::Retry {
                reason: describe(&e),
                retry_after: None,
                timed_out: matches!(e, ureq::Error::Timeout(_)),
            },
        }
    }
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `HTTP 400 Bad Request`.
    pub fn status_line(&self) -> String {
        let reason = ureq::http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        format!("HTTP {} {reason}", self.status)
            .trim_end()
            .to_string()
    }
}

/// The common reading of an answer: 2xx delivered, 3xx redirected, 408,
/// 429 and 5xx to retry (honouring `Retry-After`), other 4xx rejected.
pub fn judge_status(a: &Answer) -> Outcome {
    match a.status {
        200..=299 => Outcome::Delivered { pause_after: None },
        300..=399 => Outcome::Redirected {
            location: a.header("location").unwrap_or("(no Location)").to_string(),
        },
        408 | 429 | 500..=599 => Outcome::Retry {
            reason: format!("the server answered {}", a.status_line()),
            retry_after: a
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
            timed_out: false,
        },
        _ => Outcome::Rejected {
            answer: a.status_line(),
        },
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "the server did not answer in time".to_string(),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
            _ => io.to_string(),
        },
        ureq::Error::HostNotFound => "host not found".to_string(),
        other => other.to_string(),
    }
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
/// Capped at a day, so a wrong server cannot silence us for ever.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    const MAX: Duration = Duration::from_secs(24 * 3600);
    let v = value.trim();
    let at = if let Ok(secs) = v.parse::<u64>() {
        now + Duration::from_secs(secs).min(MAX)
    } else {
        httpdate::parse_http_date(v).ok()?
    };
    Some(at.min(now + MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(now + Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999", now),
            Some(now + Duration::from_secs(86400))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(60));
        assert_eq!(
            parse_retry_after(&date, now),
            Some(now + Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn statuses() {
        let a = |status| Answer {
            status,
            headers: ureq::http::HeaderMap::new(),
        };
        assert_eq!(
            judge_status(&a(204)),
            Outcome::Delivered { pause_after: None }
        );
        assert!(matches!(judge_status(&a(302)), Outcome::Redirected { .. }));
        for s in [408, 429, 500, 503] {
            assert!(matches!(judge_status(&a(s)), Outcome::Retry { .. }), "{s}");
        }
        for s in [400, 401, 403, 404, 413] {
            assert!(
                matches!(judge_status(&a(s)), Outcome::Rejected { .. }),
                "{s}"
            );
        }
        assert_eq!(a(400).status_line(), "HTTP 400 Bad Request");
    }
}

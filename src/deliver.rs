//! Sending one report: a single HTTP POST of the JSON body with bounded
//! connect and total timeouts, HTTPS with certificate verification, and the
//! usual proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
//! `NO_PROXY`, as ureq reads them). A 2xx answer means delivered; anything
//! else is a failure the caller keeps the report for, never an error of
//! ect-run's.

use std::time::{Duration, SystemTime};

use crate::plan::Delivery;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed {
        /// In words, for the user: "connection refused", "HTTP 500", ...
        reason: String,
        /// The server asked us to wait (429/503 with `Retry-After`).
        retry_after: Option<SystemTime>,
        /// No answer within the timeouts: the costly kind of failure.
        timed_out: bool,
    },
}

/// An HTTP client with the delivery limits; made once, used for every
/// report a run sends (its TLS setup is not free).
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(opts: &Delivery) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_global(Some(opts.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("ect-run/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent }
    }

    pub fn send(&self, url: &str, body: &[u8]) -> Outcome {
        send_with(&self.agent, url, body)
    }
}

/// One POST; every way it can go wrong becomes an [`Outcome::Failed`].
fn send_with(agent: &ureq::Agent, url: &str, body: &[u8]) -> Outcome {
    let result = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body);
    match result {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered,
        Ok(resp) => {
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            Outcome::Failed {
                reason: format!("the server answered HTTP {}", status.as_u16()),
                retry_after,
                timed_out: false,
            }
        }
        Err(e) => Outcome::Failed {
            reason: describe(&e),
            retry_after: None,
            timed_out: matches!(e, ureq::Error::Timeout(_)),
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
}

//! What a Sentry-protocol tracker's answer says about sending again: the
//! pause for ect-run's kind of item (`error` events), from
//! `X-Sentry-Rate-Limits`, else from a 429's `Retry-After`, else 60 s.
//!
//! As Sentry's SDKs read it: the header, whenever it is present and
//! parses, is the whole word on limits (it comes with 200s too); a limit
//! whose categories are empty applies to everything; limits on other
//! categories (a day-long `transaction` limit is common) are ignored. Pure:
//! the caller passes the header values and the time.

use std::time::{Duration, SystemTime};

use crate::deliver::http::parse_retry_after;

/// The category of an `event` item carrying an exception.
const CATEGORY: &str = "error";
/// A 429 that says nothing more.
const DEFAULT_PAUSE: Duration = Duration::from_secs(60);
/// The longest pause a server can ask for, as for `Retry-After`: a wrong
/// server must not silence ect-run for ever.
const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// Until when not to send events to this tracker, if at all.
///
/// `rate_limits` is the `X-Sentry-Rate-Limits` header and `retry_after`
/// the `Retry-After` header, if present.
pub fn pause_until(
    status: u16,
    rate_limits: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<SystemTime> {
    if let Some(limits) = rate_limits.and_then(parse_limits) {
        return limits
            .into_iter()
            .filter(|l| l.applies_to(CATEGORY))
            .map(|l| now + l.retry_after.min(MAX_PAUSE))
            .max();
    }
    if status == 429 {
        return Some(
            retry_after
                .and_then(|v| parse_retry_after(v, now))
                .unwrap_or(now + DEFAULT_PAUSE),
        );
    }
    None
}

/// One `retry_after:categories:scope[:reason_code[:namespaces]]`.
#[derive(Debug, PartialEq)]
struct Limit {
    retry_after: Duration,
    /// Empty: every category.
    categories: Vec<String>,
}

impl Limit {
    fn applies_to(&self, category: &str) -> bool {
        self.categories.is_empty() || self.categories.iter().any(|c| c == category)
    }
}

/// The limits of a header value; `None` if no entry parses (a header of
/// nonsense says nothing, so a 429 then falls back to `Retry-After`).
fn parse_limits(header: &str) -> Option<Vec<Limit>> {
    let limits: Vec<Limit> = header.split(',').filter_map(parse_limit).collect();
    (!limits.is_empty()).then_some(limits)
}

fn parse_limit(entry: &str) -> Option<Limit> {
    let mut parts = entry.trim().split(':');
    let secs: f64 = parts.next()?.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    let categories = parts
        .next()
        .unwrap_or("")
        .split(';')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    Some(Limit {
        // Relay sends whole seconds; round up a fraction rather than retry
        // early.
        retry_after: Duration::from_secs(secs.ceil().min(MAX_PAUSE.as_secs_f64()) as u64),
        categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn after(secs: u64) -> Option<SystemTime> {
        Some(now() + Duration::from_secs(secs))
    }

    #[test]
    fn table() {
        let date = httpdate::fmt_http_date(now() + Duration::from_secs(90));
        // (status, X-Sentry-Rate-Limits, Retry-After, pause until)
        type Case<'a> = (u16, Option<&'a str>, Option<&'a str>, Option<SystemTime>);
        let cases: [Case; 17] = [
            // Nothing said.
            (200, None, None, None),
            (500, None, Some("30"), None),
            // A limit for errors, with any status.
            (200, Some("60:error:key"), None, after(60)),
            (429, Some("60:error:key"), Some("5"), after(60)),
            // Empty categories: everything, errors included.
            (429, Some("120::organization"), None, after(120)),
            // Only other categories: not ours, whatever the status.
            (200, Some("86400:transaction:organization"), None, None),
            (
                429,
                Some("86400:transaction;span:project"),
                Some("10"),
                None,
            ),
            // Several limits: the longest that applies.
            (
                429,
                Some("86400:transaction:org, 30:error;default:key:quota, 45::project"),
                None,
                after(45),
            ),
            // Reason code and namespaces are read past.
            (
                200,
                Some("10:error;attachment:project:usage_exceeded:ns1;ns2"),
                None,
                after(10),
            ),
            // Case and blanks.
            (200, Some(" 15 : Error : key "), None, after(15)),
            // A fraction of a second rounds up.
            (200, Some("2.5:error:key"), None, after(3)),
            // Capped at a day.
            (200, Some("9999999:error:key"), None, after(86400)),
            // A header of nonsense: as if absent.
            (429, Some("soon:error:key"), Some("7"), after(7)),
            (429, Some(""), None, after(60)),
            // 429 alone: Retry-After in seconds or as a date, else 60 s.
            (429, None, Some("20"), after(20)),
            (429, None, Some(&date), after(90)),
            (429, None, Some("whenever"), after(60)),
        ];
        for (status, limits, retry, want) in cases {
            assert_eq!(
                pause_until(status, limits, retry, now()),
                want,
                "{status} {limits:?} {retry:?}"
            );
        }
    }

    #[test]
    fn malformed_entries_are_skipped() {
        assert_eq!(
            parse_limits("x:error, -5:error, 30:error:key"),
            Some(vec![Limit {
                retry_after: Duration::from_secs(30),
                categories: vec!["error".into()],
            }])
        );
        assert_eq!(parse_limits("inf:error, NaN::"), None);
    }
}

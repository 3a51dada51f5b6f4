//! A Sentry-protocol tracker (Sentry, GlitchTip, Bugsink): one gzipped
//! envelope holding one event, POSTed to the project's envelope endpoint.
//! Its answers carry rate limits (`X-Sentry-Rate-Limits`, or a 429 with
//! `Retry-After`), read from every answer, success included.

use std::time::{Duration, SystemTime};

use super::http::{Answer, Client, Outcome, judge_status};
use crate::destination::Destination;
use crate::scrub::Scrubber;
use crate::sentry::event::Event;
use crate::sentry::{envelope, ratelimit};

pub fn send(
    client: &Client,
    dest: &Destination,
    payload: &serde_json::Value,
    scrub: &Scrubber,
    budget: Duration,
) -> Outcome {
    let (Some(dsn), Ok(event)) = (dest.dsn(), serde_json::from_value::<Event>(payload.clone()))
    else {
        return Outcome::Rejected {
            answer: "not sent: the kept event cannot be read".into(),
        };
    };
    let req = envelope::request(dsn, &event.rescrubbed(scrub), SystemTime::now());
    let headers: Vec<(&str, String)> = req.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    client.post(&req.url, &headers, &req.body, budget, judge)
}

/// The common reading of a status, with the tracker's rate limits on top.
fn judge(a: &Answer) -> Outcome {
    let limit = ratelimit::pause_until(
        a.status,
        a.header("x-sentry-rate-limits"),
        a.header("retry-after"),
        SystemTime::now(),
    );
    match judge_status(a) {
        Outcome::Delivered { .. } => Outcome::Delivered { pause_after: limit },
        Outcome::Retry {
            reason,
            retry_after,
            timed_out,
        } => Outcome::Retry {
            reason,
            retry_after: limit.or(retry_after),
            timed_out,
        },
        other => other,
    }
}

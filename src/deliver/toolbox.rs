//! The toolbox's own reporting server: one POST of the report as JSON,
//! exactly as the toolbox's `FailureReporter` sends it (plus ect-run's
//! extra keys, which its reference server logs like the others).

use std::time::Duration;

use super::http::{Client, Outcome, judge_status};
use crate::destination::Destination;
use crate::report::Report;
use crate::scrub::Scrubber;

pub fn send(
    client: &Client,
    dest: &Destination,
    payload: &serde_json::Value,
    scrub: &Scrubber,
    budget: Duration,
) -> Outcome {
    let report: Report = match serde_json::from_value(payload.clone()) {
        Ok(r) => r,
        // Not something this server can take, ever: set it aside.
        Err(e) => {
            return Outcome::Rejected {
                answer: format!("not sent: the kept report cannot be read ({e})"),
            };
        }
    };
    // Kept reports may predate today's scrubbing rules.
    let body = report.rescrubbed(scrub).to_json();
    client.post(
        dest.expose(),
        &[("Content-Type", "application/json".to_string())],
        &body,
        budget,
        judge_status,
    )
}

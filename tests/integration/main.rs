//! The one integration-test binary: drives the real `ect-run` with real
//! child processes, a real HTTP server on 127.0.0.1 and a real terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod analyze;
mod completions;
mod consent_pty;
mod delivery;
mod fixtures;
mod flood;
mod man;
mod readme;
mod report;
mod scrub;
mod sentry;
mod supervise;
mod values;

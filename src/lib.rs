//! ect-run: supervise ESA Climate Toolbox command-line runs and, with the
//! user's stored consent, report their failures to the toolbox's reporting
//! server.
//!
//! Data flows one way: [`supervise`] runs the child while [`capture`] tees
//! its stderr; [`parse`] finds the failure in the captured tail; [`decide`]
//! picks the failure that counts and [`involvement`] says whether the toolbox
//! was involved; [`report`] builds the toolbox's report and [`sentry`] the
//! same failure as a Sentry event, both from a copy [`scrub`] has cleaned;
//! [`deliver`] owns the one path to each [`destination`]: consent,
//! [`flood`] control, a durable write to the [`outbox`], the send, and the
//! outcome ([`pauses`]); [`history`] records every failed run.

// First, so that its `say!` macro is in scope in every module below.
#[macro_use]
pub mod say;

pub mod analysis;
pub mod app;
pub mod capture;
pub mod cli;
pub mod config;
pub mod consent;
pub mod decide;
pub mod deliver;
pub mod destination;
pub mod files;
pub mod flood;
pub mod history;
pub mod involvement;
pub mod outbox;
pub mod parse;
pub mod paths;
pub mod pauses;
pub mod plan;
pub mod pyform;
pub mod redact;
pub mod report;
pub mod reporting;
pub mod scrub;
pub mod sentry;
pub mod shutdown;
pub mod supervise;
pub mod test_failure;
pub mod text;
pub mod toolbox_version;
pub mod values;

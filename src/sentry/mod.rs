//! Reports to Sentry-protocol trackers (Sentry, GlitchTip, Bugsink): the
//! DSN that names one ([`dsn`]), the event built from a failure
//! ([`event`]), the envelope that carries it ([`envelope`]) and what the
//! tracker's answer says about sending again ([`ratelimit`]).
//!
//! All pure except [`event::EventId::random`] and [`event::OsInfo::detect`]:
//! sending, keeping and pausing belong to the delivery code.

pub mod dsn;
pub mod envelope;
pub mod event;
pub mod ratelimit;

pub use dsn::{Dsn, DsnError};

//! The one path a report takes to its destinations. [`Dispatcher`] owns
//! it whole: consent check → durable write to the outbox → send → record
//! the outcome (delivered, kept with the reason, paused until when,
//! redirected, rejected). The run's own report ([`Dispatcher::dispatch`]),
//! the reports kept from earlier runs and `--send-pending`
//! ([`Dispatcher::flush`]) all go through it, with one HTTP client per
//! process. What each kind of destination sends is its sink's
//! ([`toolbox`]); the outbox only stores.

pub mod http;
pub mod sentry;
pub mod toolbox;

use std::cell::{OnceCell, RefCell};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::destination::{self, Destination};
use crate::flood::{Flood, Limits, Verdict};
use crate::outbox::{self, Entry, Listing, Outbox};
use crate::pauses::{Pauses, TIMEOUT_PAUSE};
use crate::plan::Delivery;
use crate::scrub::Scrubber;
use http::{Client, Outcome};

/// Below this much time left, a flush stops rather than start a request
/// that could not finish.
const MIN_BUDGET: Duration = Duration::from_millis(50);

/// The scrubber, built on first use: building it (its rule table, the
/// user's and host's names) costs a run that has nothing to scrub.
pub type LazyScrubber = std::cell::LazyCell<Scrubber, fn() -> Scrubber>;

/// A scrubber of this environment, built when first used.
pub fn lazy_scrubber() -> LazyScrubber {
    std::cell::LazyCell::new(Scrubber::from_env)
}

/// One report for one destination, in that destination's form.
#[derive(Debug, Clone)]
pub struct Route {
    pub dest: Destination,
    pub payload: serde_json::Value,
}

/// What became of a report for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Delivered,
    /// In the outbox, to be tried again; why.
    Kept(String),
    /// In the outbox; the destination is paused until then.
    Paused {
        until: SystemTime,
        reason: String,
    },
    /// Set aside in `rejected/`; the server's answer.
    Rejected(String),
    /// In the outbox; the server redirects there, which was not followed.
    Redirected(String),
    NotConsented,
    /// Not sent: the same failure went there this long ago.
    Repeat(Duration),
    /// Not sent: the destination had its day's reports.
    Ceiling(u32),
    /// Could not be kept nor sent; why.
    Lost(String),
}

impl Fate {
    /// One word for the history and `--analyze`-style output.
    pub fn as_str(&self) -> &'static str {
        match self {
            Fate::Delivered => "delivered",
            Fate::Kept(_) | Fate::Paused { .. } | Fate::Redirected(_) => "kept",
            Fate::Rejected(_) => "rejected",
            Fate::NotConsented => "not-consented",
            Fate::Repeat(_) => "suppressed-repeat",
            Fate::Ceiling(_) => "suppressed-ceiling",
            Fate::Lost(_) => "lost",
        }
    }

    /// Why, in words, where there is more to say than [`Fate::as_str`].
    pub fn detail(&self) -> String {
        match self {
            Fate::Delivered | Fate::NotConsented => String::new(),
            Fate::Kept(why) | Fate::Lost(why) => why.clone(),
            Fate::Paused { until, reason } => format!(
                "{reason}; paused until {}",
                humantime::format_rfc3339_seconds(*until)
            ),
            Fate::Rejected(answer) => answer.clone(),
            Fate::Redirected(to) => format!(
                "the server redirects to {}",
                crate::redact::ServerUrl::new(to.clone())
            ),
            Fate::Repeat(ago) => format!("same failure reported {}", crate::flood::ago(*ago)),
            Fate::Ceiling(max) => format!("daily ceiling of {max} reports reached"),
        }
    }
}

/// The report's identity and the limits flood control applies to it.
#[derive(Debug, Clone)]
pub struct Flooding<'a> {
    pub fingerprint: &'a str,
    pub limits: Limits,
}

/// What a flush did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub delivered: usize,
    pub kept: usize,
    /// Of those kept: not tried because their destination is paused.
    pub paused: usize,
    /// Of those kept: not tried because consent does not cover them.
    pub not_consented: usize,
    /// Of those kept: not tried because the flush ran out of time.
    pub deferred: usize,
    pub rejected: usize,
}

pub struct Dispatcher<'a> {
    delivery: &'a Delivery,
    outbox: Outbox,
    pauses: Pauses,
    flood: Flood,
    scrub: &'a LazyScrubber,
    client: OnceCell<Client>,
    /// Destinations that failed in this process: not tried again in it, so
    /// one dead server costs one timeout, not one per report.
    failed: RefCell<Vec<Destination>>,
    /// Destinations whose redirect was already explained.
    redirect_said: RefCell<Vec<Destination>>,
}

impl std::fmt::Debug for Dispatcher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

impl<'a> Dispatcher<'a> {
    pub fn new(
        state_dir: &Path,
        delivery: &'a Delivery,
        scrub: &'a LazyScrubber,
    ) -> Dispatcher<'a> {
        Dispatcher {
            delivery,
            outbox: Outbox::new(state_dir.join("outbox")),
            pauses: Pauses::new(state_dir),
            flood: Flood::new(state_dir),
            scrub,
            client: OnceCell::new(),
            failed: RefCell::new(Vec::new()),
            redirect_said: RefCell::new(Vec::new()),
        }
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn client(&self) -> &Client {
        self.client
            .get_or_init(|| Client::new(self.delivery.connect_timeout, self.delivery.timeout))
    }

    /// The run's own report. Each consented route is written to the outbox
    /// durably while `hold` keeps a late signal from ending ect-run; then
    /// `hold` is released and each is sent.
    pub fn dispatch(
        &self,
        routes: Vec<Route>,
        consented: impl Fn(&Destination) -> bool,
        flooding: &Flooding<'_>,
        written_at: &str,
        hold: crate::shutdown::Hold,
    ) -> Vec<(Destination, Fate)> {
        let mut fates: Vec<(Destination, Option<Fate>)> = Vec::new();
        let mut kept = Vec::new();
        for mut route in routes {
            if !consented(&route.dest) {
                fates.push((route.dest, Some(Fate::NotConsented)));
                continue;
            }
            // Flood control, before anything is written or sent.
            let verdict = self.flood.decide(
                &route.dest,
                flooding.fingerprint,
                flooding.limits,
                SystemTime::now(),
            );
            match verdict {
                Verdict::Send { repeats_suppressed } => {
                    if repeats_suppressed > 0 {
                        note_repeats(&route.dest, &mut route.payload, repeats_suppressed);
                    }
                }
                Verdict::Repeat { ago } => {
                    say!(
                        "same failure reported {}; not sent again (to {})",
                        crate::flood::ago(ago),
                        route.dest
                    );
                    fates.push((route.dest, Some(Fate::Repeat(ago))));
                    continue;
                }
                Verdict::Ceiling { max } => {
                    say!(
                        "{} has had its ceiling of {max} reports in 24 hours; this one is not sent (raise the config key max_reports_per_day to allow more)",
                        route.dest
                    );
                    fates.push((route.dest, Some(Fate::Ceiling(max))));
                    continue;
                }
            }
            let entry = Entry::new(&route.dest, route.payload, written_at.to_string());
            match self.outbox.put(&entry) {
                Ok(put) => {
                    for d in &put.dropped {
                        say!(
                            "the outbox holds at most {} reports: dropped the oldest ({d})",
                            crate::outbox::MAX_REPORTS
                        );
                    }
                    kept.push((fates.len(), put.path));
                    fates.push((route.dest, None));
                }
                Err(e) => {
                    // Cannot keep it: send it once, now.
                    say!("cannot keep the report on disk ({e:#}); sending it once");
                    let i = fates.len();
                    fates.push((route.dest.clone(), None));
                    let outcome = self.send(&route.dest, &entry, self.delivery.timeout);
                    fates[i].1 = Some(match outcome {
                        Outcome::Delivered { .. } => {
                            say!("report delivered to {}.", route.dest);
                            Fate::Delivered
                        }
                        other => {
                            let why = describe_unsent(&other);
                            say!("report not delivered ({why}); it is lost");
                            Fate::Lost(why)
                        }
                    });
                }
            }
        }
        drop(hold);
        for (i, path) in kept {
            let dest = fates[i].0.clone();
            say!("reporting the failure to {dest}");
            let fate = if let Some(p) = self.pauses.get(&dest) {
                say!(
                    "report kept in {}: {}, so nothing is tried until {}; it will be sent by a later run or `ect-run --send-pending`",
                    self.outbox.dir().display(),
                    p.reason,
                    humantime::format_rfc3339_seconds(p.until)
                );
                Fate::Paused {
                    until: p.until,
                    reason: p.reason,
                }
            } else {
                match self.outbox.claim(&path) {
                    Some(claim) => match claim.read() {
                        Ok(entry) => {
                            let outcome = self.send(&dest, &entry, self.delivery.timeout);
                            self.settle(&dest, claim, entry, outcome, true)
                        }
                        Err(why) => Fate::Kept(why),
                    },
                    // A concurrent `--send-pending` took it.
                    None => {
                        say!("report handed to another ect-run process sending reports");
                        Fate::Kept("being sent by another ect-run process".into())
                    }
                }
            };
            fates[i].1 = Some(fate);
        }
        fates
            .into_iter()
            .map(|(d, f)| (d, f.unwrap_or(Fate::Lost("not handled".into()))))
            .collect()
    }

    /// Sends the reports kept from earlier runs (`listing`, the outbox as
    /// the caller just listed it), oldest first, for which `consented`
    /// holds, within one `--timeout` in all.
    pub fn flush(&self, listing: Listing, consented: impl Fn(&Destination) -> bool) -> Flushed {
        let deadline = Instant::now() + self.delivery.timeout;
        let mut done = Flushed::default();
        for (path, why) in &listing.skipped {
            say!("leaving {} alone in the outbox: {why}", path.display());
        }
        // Destinations not to be tried in this flush, by tag: their other
        // reports are counted without being opened.
        let mut passed_over: Vec<(String, Skip)> = Vec::new();
        for path in &listing.reports {
            if let Some(t) = outbox::tag_of(path)
                && let Some((_, why)) = passed_over.iter().find(|(p, _)| p == t)
            {
                done.kept += 1;
                match why {
                    Skip::NotConsented => done.not_consented += 1,
                    Skip::Paused => done.paused += 1,
                    Skip::Failed => {}
                }
                continue;
            }
            let Some(claim) = self.outbox.claim(path) else {
                continue; // another ect-run has it, or it is gone
            };
            let entry = match claim.read() {
                Ok(e) => e,
                Err(why) => {
                    say!("leaving {} alone in the outbox: {why}", path.display());
                    continue;
                }
            };
            let dest = match entry.destination() {
                Ok(d) => d,
                Err(why) => {
                    say!("leaving {} alone in the outbox: {why}", path.display());
                    continue;
                }
            };
            done.kept += 1;
            let skip = if !consented(&dest) {
                done.not_consented += 1;
                Some(Skip::NotConsented)
            } else if self.pauses.get(&dest).is_some() {
                done.paused += 1;
                Some(Skip::Paused)
            } else if self.failed.borrow().contains(&dest) {
                Some(Skip::Failed)
            } else {
                None
            };
            if let Some(skip) = skip {
                passed_over.push((outbox::tag(&dest), skip));
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_BUDGET {
                done.deferred += 1;
                continue;
            }
            let outcome = self.send(&dest, &entry, left);
            let fate = self.settle(&dest, claim, entry, outcome, false);
            if self.failed.borrow().contains(&dest) {
                passed_over.push((outbox::tag(&dest), Skip::Failed));
            }
            match fate {
                Fate::Delivered => {
                    done.kept -= 1;
                    done.delivered += 1;
                }
                Fate::Rejected(_) => {
                    done.kept -= 1;
                    done.rejected += 1;
                }
                _ => {}
            }
        }
        done
    }

    fn send(&self, dest: &Destination, entry: &Entry, budget: Duration) -> Outcome {
        match dest.kind() {
            destination::Kind::Toolbox => {
                toolbox::send(self.client(), dest, entry, self.scrub, budget)
            }
            destination::Kind::Sentry => {
                sentry::send(self.client(), dest, entry, self.scrub, budget)
            }
        }
    }

    /// Records what `outcome` means for the claimed report: removed,
    /// paused, set aside or kept. `own` is the run's own report, whose
    /// every outcome is said; a flush only says what needs the user.
    fn settle(
        &self,
        dest: &Destination,
        claim: crate::outbox::Claim,
        mut entry: Entry,
        outcome: Outcome,
        own: bool,
    ) -> Fate {
        let dir = self.outbox.dir().display();
        match outcome {
            Outcome::Delivered { pause_after } => {
                if let Some(until) = pause_after {
                    self.pauses
                        .set(dest, until, "the tracker asked to wait (rate limit)");
                }
                claim.remove();
                if own {
                    // The tracker's event id, to find the event there.
                    match entry.payload.get("event_id").and_then(|v| v.as_str()) {
                        Some(id) => say!("report delivered to {dest} (event {id})."),
                        None => say!("report delivered."),
                    }
                }
                Fate::Delivered
            }
            Outcome::Rejected { answer } => match claim.quarantine(&mut entry, &answer) {
                Ok(to) => {
                    say!(
                        "{dest} refused a report ({answer}) and will not take it; it is set aside as {} (see `ect-run --status`)",
                        to.display()
                    );
                    Fate::Rejected(answer)
                }
                Err(e) => {
                    say!("{dest} refused a report ({answer}); {e:#}");
                    Fate::Kept(answer)
                }
            },
            Outcome::Redirected { location } => {
                self.failed.borrow_mut().push(dest.clone());
                let first = !self.redirect_said.borrow().contains(dest);
                if first {
                    self.redirect_said.borrow_mut().push(dest.clone());
                    let shown = crate::redact::ServerUrl::new(location.clone());
                    say!(
                        "{dest} redirects to {shown}; redirects are not followed, so nothing was sent there. The report is kept in {dir}; to send reports to {shown}, run `ect-run --consent --server-url {shown}`"
                    );
                }
                Fate::Redirected(location)
            }
            Outcome::Retry {
                reason,
                retry_after,
                timed_out,
            } => {
                self.failed.borrow_mut().push(dest.clone());
                let pause = match (retry_after, timed_out) {
                    (Some(t), _) => Some((t, "the server asked to wait")),
                    (None, true) => Some((
                        SystemTime::now() + TIMEOUT_PAUSE,
                        "the server did not answer in time",
                    )),
                    (None, false) => None,
                };
                if let Some((until, why)) = pause {
                    self.pauses.set(dest, until, why);
                }
                if own {
                    say!(
                        "report not delivered ({reason}); kept in {dir} and will be sent by the next run or `ect-run --send-pending`"
                    );
                }
                drop(claim);
                match pause {
                    Some((until, why)) => Fate::Paused {
                        until,
                        reason: why.to_string(),
                    },
                    None => Fate::Kept(reason),
                }
            }
        }
    }
}

/// Tells the destination how many repeats of this failure were held back
/// since the last report of it, in its own form.
fn note_repeats(dest: &Destination, payload: &mut serde_json::Value, n: u64) {
    match dest.kind() {
        destination::Kind::Toolbox => {
            if let Some(o) = payload.as_object_mut() {
                o.insert("repeats-suppressed".into(), n.into());
            }
        }
        // A tag to search and group by, and the number itself as extra.
        destination::Kind::Sentry => {
            if let Some(tags) = payload.get_mut("tags").and_then(|t| t.as_object_mut()) {
                tags.insert("repeats_suppressed".into(), n.to_string().into());
            }
            if let Some(o) = payload.as_object_mut() {
                let extra = o.entry("extra").or_insert_with(|| serde_json::json!({}));
                if let Some(e) = extra.as_object_mut() {
                    e.insert("repeats_suppressed".into(), n.into());
                }
            }
        }
    }
}

/// Why a flush passes over a destination's reports.
#[derive(Debug, Clone, Copy)]
enum Skip {
    NotConsented,
    Paused,
    Failed,
}

fn describe_unsent(o: &Outcome) -> String {
    match o {
        Outcome::Delivered { .. } => "delivered".into(),
        Outcome::Redirected { location } => format!(
            "the server redirects to {}",
            crate::redact::ServerUrl::new(location.clone())
        ),
        Outcome::Retry { reason, .. } => reason.clone(),
        Outcome::Rejected { answer } => format!("the server answered {answer}"),
    }
}

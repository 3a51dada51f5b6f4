//! What happens after a run: turn the analysis into a report if the
//! toolbox was involved, decide where it may go (consent, DO_NOT_TRACK,
//! `--dry-run`), hand it to the one delivery path, and send what earlier
//! runs kept. Or say in one line how to opt in. Nothing here changes the
//! run's exit status.

use std::time::SystemTime;

use crate::analysis::Analysis;
use crate::config::Config;
use crate::deliver::{Dispatcher, Fate, Flooding, LazyScrubber, Route, lazy_scrubber};
use crate::destination::{Destination, Kind as DestKind};
use crate::history::{self, History};
use crate::involvement::Rules;
use crate::parse::{Failure, Kind};
use crate::plan::{self, Plan, UrlSource};
use crate::redact::ServerUrl;
use crate::report;
use crate::scrub::Scrubber;
use crate::sentry::{
    self, envelope,
    event::{EventId, OsInfo},
};
use crate::supervise::Exit;

/// What a failed run's report became, for each destination: a fate of
/// the delivery path, or why it never reached it; as the history keeps it.
#[derive(Debug, Default)]
pub struct Reported {
    pub fates: Vec<history::Fate>,
}

fn fate(dest: &Destination, outcome: &str, detail: String) -> history::Fate {
    history::Fate {
        destination: dest.to_string(),
        outcome: outcome.to_string(),
        detail,
    }
}

/// Reports the failure if it involves the toolbox and may be sent, records
/// the run in the history, then sends reports kept from earlier runs.
/// `hold` keeps a late signal from ending ect-run until the report is
/// safely in the outbox.
pub fn after_failure(
    plan: &Plan,
    config: Option<&Config>,
    program: &str,
    exit: Exit,
    analysis: &Analysis,
    rules: &Rules,
    hold: crate::shutdown::Hold,
) -> Reported {
    let scrub = lazy_scrubber();
    let dispatcher = Dispatcher::new(&plan.state_dir, &plan.delivery, &scrub);
    let reported = report_one(
        plan,
        config,
        program,
        exit,
        analysis,
        rules,
        &scrub,
        &dispatcher,
        hold,
    );
    record(plan, program, exit, analysis, &reported, &scrub);
    flush(plan, config, &dispatcher);
    reported
}

/// Appends the run to the history; a failure to do so is said, not fatal.
fn record(
    plan: &Plan,
    program: &str,
    exit: Exit,
    analysis: &Analysis,
    reported: &Reported,
    scrub: &LazyScrubber,
) {
    let (kind, class, message, fingerprint, involved) = match &analysis.outcome {
        Ok((f, inv)) => {
            // Only what the history keeps is scrubbed: the class and the
            // message's first line (scrubbed whole, then shortened).
            let first = f.exception.message.lines().next().unwrap_or("");
            (
                f.kind.as_str().to_string(),
                scrub.scrub(&f.exception.class),
                scrub.scrub(first).chars().take(300).collect(),
                report::fingerprint(f),
                inv.involved,
            )
        }
        Err(_) => (
            "none".into(),
            String::new(),
            String::new(),
            String::new(),
            false,
        ),
    };
    let entry = history::Entry {
        time: report::now_rfc3339(),
        // The history stays on this machine: the program's name is kept
        // as it is (building the scrubber for it alone would cost every
        // failing run).
        command: report::program_name(program),
        exit_status: exit.shell_code(),
        kind,
        class,
        message,
        fingerprint,
        toolbox_involved: involved,
        destinations: reported.fates.clone(),
    };
    if let Err(e) = History::new(&plan.state_dir).append(&entry) {
        say!("cannot record this failure in the history: {e:#}");
    }
}

/// After a run that succeeded: only the reports kept from earlier runs.
pub fn after_success(plan: &Plan) {
    if plan.dry_run || plan.do_not_track {
        return;
    }
    let listing = plan.outbox().list();
    if listing.reports.is_empty() && listing.skipped.is_empty() {
        return;
    }
    let Ok(config) = Config::load(&plan.config_path) else {
        return; // reported when it matters: at a failure
    };
    let scrub = lazy_scrubber();
    let dispatcher = Dispatcher::new(&plan.state_dir, &plan.delivery, &scrub);
    let done = dispatcher.flush(listing, |d| config.consent_covers(d));
    say_sent(done.delivered);
}

fn say_sent(delivered: usize) {
    if delivered > 0 {
        say!("sent {delivered} report(s) kept from earlier runs");
    }
}

#[allow(clippy::too_many_arguments)]
fn report_one(
    plan: &Plan,
    config: Option<&Config>,
    program: &str,
    exit: Exit,
    analysis: &Analysis,
    rules: &Rules,
    scrub_lazy: &LazyScrubber,
    dispatcher: &Dispatcher<'_>,
    hold: crate::shutdown::Hold,
) -> Reported {
    let Some((failure, involvement)) = analysis.reportable() else {
        if plan.dry_run {
            say!("dry run: nothing would be reported: {}", analysis.why_not());
        }
        return Reported::default();
    };
    let mut dests: Vec<(Destination, UrlSource)> = Vec::new();
    for d in plan.destinations(config) {
        match d {
            Ok(d) => dests.push(d),
            // The environment's values were reported at start-up.
            Err(invalid) if invalid.source == UrlSource::Env => {}
            Err(invalid) => say!("{invalid}; not reporting this failure to it"),
        }
    }
    if dests.is_empty() {
        return Reported::default();
    }
    let each = |outcome: &str, detail: &str| Reported {
        fates: dests
            .iter()
            .map(|(d, _)| fate(d, outcome, detail.to_string()))
            .collect(),
    };
    // What decides that nothing is sent comes first: a run that sends
    // nothing does not pay for building (and scrubbing) the report. With
    // --dry-run there is no config to send by: the report is only shown.
    let sendable = if plan.dry_run {
        None
    } else {
        if plan.do_not_track {
            return each("do-not-track", "");
        }
        // A broken config file was reported already.
        let Some(config) = config else {
            return each("not-consented", "the config file is unreadable");
        };
        if !dests.iter().any(|(d, _)| config.consent_covers(d)) {
            hint_consent(config, &dests, failure);
            return each(Fate::NotConsented.as_str(), "");
        }
        Some(config)
    };
    let scrub: &Scrubber = scrub_lazy;
    let timestamp = report::now_rfc3339();
    let report = report::build(
        &report::Input {
            failure,
            involvement,
            toolbox_version: &analysis.toolbox_version,
            exit,
            program,
            timestamp: timestamp.clone(),
        },
        scrub,
    );
    let event = dests
        .iter()
        .any(|(d, _)| d.kind() == DestKind::Sentry)
        .then(|| {
            sentry::event::build(
                &sentry::event::Input {
                    failure,
                    rules,
                    toolbox_version: Some(&analysis.toolbox_version),
                    exit,
                    program,
                    event_id: EventId::random(),
                    timestamp: SystemTime::now(),
                    os: &OsInfo::detect(),
                },
                scrub,
            )
        });
    let routes: Vec<Route> = dests
        .iter()
        .map(|(d, _)| Route {
            dest: d.clone(),
            payload: match (d.kind(), &event) {
                (DestKind::Sentry, Some(e)) => serde_json::to_value(e).unwrap_or_default(),
                _ => serde_json::to_value(&report).unwrap_or_default(),
            },
        })
        .collect();
    let Some(config) = sendable else {
        for r in &routes {
            match (r.dest.dsn(), &event) {
                (Some(dsn), Some(e)) => say!(
                    "dry run: this envelope would be sent to {} (nothing was sent; shown uncompressed, the key masked):\n{}",
                    r.dest,
                    envelope::shown(dsn, e.event_id, &e.to_json(), SystemTime::now())
                ),
                _ => say!(
                    "dry run: this report would be sent to {} (nothing was sent):\n{}",
                    r.dest,
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
            }
        }
        return each("dry-run", "");
    };
    let fingerprint = report.fingerprint.clone();
    let flooding = Flooding {
        fingerprint: &fingerprint,
        limits: config.limits().unwrap_or_default(),
    };
    let fates = dispatcher.dispatch(
        routes,
        |d| config.consent_covers(d),
        &flooding,
        &timestamp,
        hold,
    );
    Reported {
        fates: fates
            .iter()
            .map(|(d, f)| fate(d, f.as_str(), f.detail()))
            .collect(),
    }
}

/// Sends kept reports, quietly unless something was delivered.
fn flush(plan: &Plan, config: Option<&Config>, dispatcher: &Dispatcher<'_>) {
    if plan.dry_run || plan.do_not_track {
        return;
    }
    let Some(config) = config else { return };
    let listing = dispatcher.outbox().list();
    if listing.reports.is_empty() && listing.skipped.is_empty() {
        return;
    }
    let done = dispatcher.flush(listing, |d| config.consent_covers(d));
    say_sent(done.delivered);
}

/// One line on how to opt in; nothing was sent.
fn hint_consent(config: &Config, dests: &[(Destination, UrlSource)], failure: &Failure) {
    for (dest, source) in dests {
        let Some(given_for) = config
            .consent_for(dest.kind())
            .filter(|c| c.given)
            .and_then(|c| c.server_url)
        else {
            continue;
        };
        let shown = Destination::parse(dest.kind(), &given_for).map_or_else(
            |_| ServerUrl::new(given_for.clone()).to_string(),
            |d| d.to_string(),
        );
        let (_, flag, ..) = plan::names(dest.kind());
        say!(
            "not reporting this toolbox failure: you consented for {shown}, but it is now {dest} (from {}); to consent for it, run `ect-run --consent {flag} {dest}`",
            plan::origin(dest.kind(), *source)
        );
        return;
    }
    say!(
        "this {} involves the ESA Climate Toolbox and could be reported to help fix it; nothing was sent. To opt in, run `ect-run --consent`",
        if failure.kind == Kind::RustPanic {
            "panic"
        } else {
            "failure"
        }
    );
}

//! What happens after a run: turn the analysis into a report if the
//! toolbox was involved, decide where it may go (consent, DO_NOT_TRACK,
//! `--dry-run`), hand it to the one delivery path, and send what earlier
//! runs kept. Or say in one line how to opt in. Nothing here changes the
//! run's exit status.

use std::sync::MutexGuard;

use crate::analysis::Analysis;
use crate::config::Config;
use crate::deliver::{Dispatcher, Fate, Flooding, Route};
use crate::destination::Destination;
use crate::history::{self, History};
use crate::parse::{Failure, Kind};
use crate::plan::{Plan, UrlSource};
use crate::redact::ServerUrl;
use crate::report;
use crate::scrub::Scrubber;
use crate::supervise::Exit;

/// What a failed run's report became, for each destination: a fate of
/// the delivery path, or why it never reached it.
#[derive(Debug, Default)]
pub struct Reported {
    pub fates: Vec<(String, String, String)>,
}

impl Reported {
    fn one(dest: &Destination, outcome: &str, detail: String) -> Reported {
        Reported {
            fates: vec![(dest.to_string(), outcome.to_string(), detail)],
        }
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
    hold: MutexGuard<'static, ()>,
) -> Reported {
    let scrub = Scrubber::from_env();
    let dispatcher = Dispatcher::new(&plan.state_dir, &plan.delivery, &scrub);
    let reported = report_one(plan, config, program, exit, analysis, &dispatcher, hold);
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
    scrub: &Scrubber,
) {
    let (kind, class, message, fingerprint, involved) = match &analysis.outcome {
        Ok((f, inv)) => {
            let clean = report::scrubbed(f, scrub);
            let first = clean.exception.message.lines().next().unwrap_or("");
            (
                f.kind.as_str().to_string(),
                clean.exception.class.clone(),
                first.chars().take(300).collect(),
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
        command: scrub.scrub(&report::program_name(program)),
        exit_status: exit.shell_code(),
        kind,
        class,
        message,
        fingerprint,
        toolbox_involved: involved,
        destinations: reported
            .fates
            .iter()
            .map(|(d, o, detail)| history::Fate {
                destination: d.clone(),
                outcome: o.clone(),
                detail: detail.clone(),
            })
            .collect(),
    };
    if let Err(e) = History::new(&plan.state_dir).append(&entry) {
        eprintln!("ect-run: cannot record this failure in the history: {e:#}");
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
    let scrub = Scrubber::from_env();
    let dispatcher = Dispatcher::new(&plan.state_dir, &plan.delivery, &scrub);
    flush(plan, Some(&config), &dispatcher);
}

fn report_one(
    plan: &Plan,
    config: Option<&Config>,
    program: &str,
    exit: Exit,
    analysis: &Analysis,
    dispatcher: &Dispatcher<'_>,
    hold: MutexGuard<'static, ()>,
) -> Reported {
    let Some((failure, involvement)) = analysis.reportable() else {
        if plan.dry_run {
            eprintln!(
                "ect-run: dry run: nothing would be reported: {}",
                analysis.why_not()
            );
        }
        return Reported::default();
    };
    let (dest, source) = match plan.toolbox_destination(config) {
        Ok(d) => d,
        Err(invalid) => {
            // The environment's value was reported at start-up.
            if invalid.source != UrlSource::Env {
                eprintln!("ect-run: {invalid}; not reporting this toolbox failure");
            }
            return Reported::default();
        }
    };
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
        &Scrubber::from_env(),
    );
    if plan.dry_run {
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        eprintln!(
            "ect-run: dry run: this report would be sent to {dest} (nothing was sent):\n{json}"
        );
        return Reported::one(&dest, "dry-run", String::new());
    }
    if plan.do_not_track {
        return Reported::one(&dest, "do-not-track", String::new());
    }
    // A broken config file was reported already.
    let Some(config) = config else {
        return Reported::one(
            &dest,
            "not-consented",
            "the config file is unreadable".into(),
        );
    };
    if !config.consent_covers(&dest) {
        hint_consent(config, &dest, source, failure);
        return Reported::one(&dest, Fate::NotConsented.as_str(), String::new());
    }
    let fingerprint = report.fingerprint.clone();
    let flooding = Flooding {
        fingerprint: &fingerprint,
        limits: config.limits().unwrap_or_default(),
    };
    let payload = serde_json::to_value(&report).unwrap_or_default();
    let fates = dispatcher.dispatch(
        vec![Route { dest, payload }],
        |d| config.consent_covers(d),
        &flooding,
        &timestamp,
        hold,
    );
    Reported {
        fates: fates
            .into_iter()
            .map(|(d, f)| (d.to_string(), f.as_str().to_string(), f.detail()))
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
    let done = dispatcher.flush(|d| config.consent_covers(d));
    if done.delivered > 0 {
        eprintln!(
            "ect-run: sent {} report(s) kept from earlier runs",
            done.delivered
        );
    }
}

/// One line on how to opt in; nothing was sent.
fn hint_consent(config: &Config, dest: &Destination, source: UrlSource, failure: &Failure) {
    match config
        .consent()
        .filter(|c| c.given)
        .and_then(|c| c.server_url)
        .map(ServerUrl::new)
    {
        Some(given_for) => eprintln!(
            "ect-run: not reporting this toolbox failure: you consented for {given_for}, but the server is now {dest} (from {source}); to consent for it, run `ect-run --consent --server-url {dest}`"
        ),
        None => eprintln!(
            "ect-run: this {} involves the ESA Climate Toolbox and could be reported to help fix it; nothing was sent. To opt in, run `ect-run --consent`",
            if failure.kind == Kind::RustPanic {
                "panic"
            } else {
                "failure"
            }
        ),
    }
}

//! What happens after a failed run: report the failure if the toolbox was
//! involved and the user consented, or say in one line how to opt in; keep
//! the report in the outbox before sending it; and send what earlier runs
//! kept. Nothing here changes the run's exit status.

use crate::analysis::Analysis;
use crate::config::Config;
use crate::deliver::{self, Outcome};
use crate::parse::{Failure, Kind};
use crate::plan::{Plan, UrlSource};
use crate::redact::ServerUrl;
use crate::report;
use crate::scrub::Scrubber;
use crate::supervise::Exit;

/// Reports the failure if it involves the toolbox and may be sent; returns
/// the server URL when a delivery to it just failed.
pub fn report_if_involved(
    plan: &Plan,
    config: Option<&Config>,
    program: &str,
    exit: Exit,
    analysis: &Analysis,
) -> Option<String> {
    let Some((failure, involvement)) = analysis.reportable() else {
        if plan.dry_run {
            say!("dry run: nothing would be reported: {}", analysis.why_not());
        }
        return None;
    };
    let (url, source) = plan.server_url(config.and_then(Config::server_url));
    let report = report::build(
        &report::Input {
            failure,
            involvement,
            toolbox_version: &analysis.toolbox_version,
            exit,
            program,
            timestamp: report::now_rfc3339(),
        },
        &Scrubber::from_env(),
    );
    if plan.dry_run {
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        say!("dry run: this report would be sent to {url} (nothing was sent):\n{json}");
        return None;
    }
    if plan.do_not_track {
        return None;
    }
    // A broken config file was reported already.
    let config = config?;
    if !config.consent_covers(url.expose()) {
        hint_consent(config, &url, source, failure);
        return None;
    }
    (!deliver_now(plan, &url, &report)).then(|| url.expose().to_string())
}

/// One line on how to opt in; nothing was sent.
fn hint_consent(config: &Config, url: &ServerUrl, source: UrlSource, failure: &Failure) {
    match config
        .consent()
        .filter(|c| c.given)
        .and_then(|c| c.server_url)
        .map(ServerUrl::new)
    {
        Some(given_for) => say!(
            "not reporting this toolbox failure: you consented for {given_for}, but the server is now {url} (from {source}); to consent for it, run `ect-run --consent --server-url {url}`"
        ),
        None => say!(
            "this {} involves the ESA Climate Toolbox and could be reported to help fix it; nothing was sent. To opt in, run `ect-run --consent`",
            if failure.kind == Kind::RustPanic {
                "panic"
            } else {
                "failure"
            }
        ),
    }
}

/// Keeps the report in the outbox first (so nothing is lost if we are
/// interrupted), then sends it. Returns whether it was delivered.
fn deliver_now(plan: &Plan, server: &ServerUrl, report: &serde_json::Value) -> bool {
    let url = server.expose();
    say!("reporting the failure to {server}");
    let outbox = plan.outbox();
    let client = deliver::Client::new(&plan.delivery);
    let pause = outbox.paused(url);
    let path = match (outbox.put(url, report), &pause) {
        (Ok(path), _) => path,
        (Err(e), Some(_)) => {
            say!("report lost: {e:#}");
            return false;
        }
        (Err(e), None) => {
            // Cannot keep it: send it anyway, once.
            say!("cannot keep the report on disk ({e:#}); sending it once");
            let body = serde_json::to_vec(report).unwrap_or_default();
            return match client.send(url, &body) {
                Outcome::Delivered => {
                    say!("report delivered.");
                    true
                }
                Outcome::Failed { reason, .. } => {
                    say!("report not delivered ({reason}); it is lost");
                    false
                }
            };
        }
    };
    if let Some(pause) = pause {
        say!(
            "report kept in {}: {}, so nothing is tried until {}; it will be sent by a later run or `ect-run --send-pending`",
            outbox.dir().display(),
            pause.reason,
            humantime::format_rfc3339_seconds(pause.until)
        );
        return false;
    }
    match outbox.send_one(&path, |u, b| client.send(u, b)) {
        Some(Outcome::Delivered) => {
            say!("report delivered.");
            true
        }
        Some(Outcome::Failed { reason, .. }) => {
            say!(
                "report not delivered ({reason}); kept in {} and will be sent by the next run or `ect-run --send-pending`",
                outbox.dir().display()
            );
            false
        }
        // Another ect-run (a concurrent --send-pending) took it.
        None => {
            say!("report handed to another ect-run process sending reports");
            true
        }
    }
}

/// Sends reports kept from earlier runs, if there are any and they may be
/// sent, except to a server that just failed us. Quiet unless something was
/// delivered.
pub fn flush_after_run(plan: &Plan, config: Option<Config>, failed_url: Option<&str>) {
    if plan.dry_run || plan.do_not_track {
        return;
    }
    let outbox = plan.outbox();
    if outbox.list().is_empty() {
        return;
    }
    let config = match config {
        Some(c) => c,
        None => match Config::load(&plan.config_path) {
            Ok(c) => c,
            Err(_) => return, // reported when it matters: at a failure
        },
    };
    let client = deliver::Client::new(&plan.delivery);
    let done = outbox.flush(
        |url| failed_url != Some(url) && config.consent_covers(url),
        |u, b| client.send(u, b),
    );
    if done.delivered > 0 {
        say!("sent {} report(s) kept from earlier runs", done.delivered);
    }
}

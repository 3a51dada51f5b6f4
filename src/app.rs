//! The modes of ect-run, wired together. Each mode is a short function that
//! calls into the modules that own the work; what the user sees of
//! ect-run's own doings is printed here and in [`crate::reporting`], on
//! stderr, prefixed `ect-run:`.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::analysis;
use crate::capture::Tail;
use crate::cli::Cli;
use crate::config::{self, Config};
use crate::consent;
use crate::deliver::Dispatcher;
use crate::destination::{Destination, Kind as DestKind};
use crate::history::{self, History};
use crate::involvement::Rules;
use crate::pauses::Pauses;
use crate::plan::{self, Mode, Plan, UrlSource};
use crate::redact::ServerUrl;
use crate::report;
use crate::reporting;
use crate::shutdown;
use crate::supervise::{self, Command, Exit};
use crate::test_failure;

/// A mistake in the command line: exit status 2, as for clap's own errors.
#[derive(Debug)]
pub struct UsageError(pub anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for UsageError {}

/// The child could not be started: exit 126 or 127, as a shell would.
#[derive(Debug)]
pub struct ChildStartError {
    pub code: u8,
    pub source: supervise::StartError,
}

impl std::fmt::Display for ChildStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for ChildStartError {}

/// ect-run's own exit status for an error of its own (never the child's).
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.downcast_ref::<ChildStartError>() {
        e.code
    } else if err.downcast_ref::<UsageError>().is_some() {
        2
    } else {
        1
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    // Cheap modes first: they must work whatever state the config is in.
    if let Some(shell) = cli.completions {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "ect-run", &mut out);
        std::io::stdout().write_all(&out)?;
        return Ok(0);
    }
    if cli.internal_raise_error {
        // On a thread named `main`: the binary's own start (src/main.rs)
        // leaves the first thread unnamed, and this panic's message is
        // the test failure the report is made of, so it stays as a Rust
        // program's panic in `main` reads.
        let raised = std::thread::Builder::new()
            .name("main".into())
            .spawn(|| test_failure::raise_error());
        if let Ok(thread) = raised {
            let _ = thread.join();
            return Ok(101);
        }
        test_failure::raise_error();
    }
    if !cli.mode_given() && cli.command.is_empty() {
        // No arguments at all: say how ect-run is used and what to do next,
        // not only that something is missing.
        let _ = std::io::stderr().write_all(crate::cli::SHORT_USAGE.as_bytes());
        return Ok(2);
    }
    let plan = Plan::from_cli(cli).map_err(|e| anyhow::Error::new(UsageError(e)))?;
    // A bad value in the environment never stops the command: one line,
    // and reporting is off for this run. (Only a value from the
    // environment can be meant: with none, nothing is parsed at start.)
    let from_env = |o: &Option<(String, UrlSource)>| matches!(o, Some((_, UrlSource::Env)));
    if matches!(plan.mode, Mode::Run(_) | Mode::TestFailure)
        && (from_env(&plan.url_override) || from_env(&plan.dsn_override))
    {
        for invalid in plan.destinations(None).into_iter().filter_map(Result::err) {
            if invalid.source == UrlSource::Env {
                say!("{invalid}; reporting to it is off for this run");
            }
        }
    }
    match &plan.mode {
        Mode::Run(command) => supervise_and_report(&plan, command),
        Mode::TestFailure => {
            say!("running a command that fails inside toolbox code on purpose, to test reporting");
            let command = test_failure::command().context("cannot prepare the test failure")?;
            supervise_and_report(&plan, &command)
        }
        Mode::Consent => give_consent(&plan),
        Mode::RevokeConsent => revoke_consent(&plan),
        Mode::Status => status(&plan),
        Mode::SendPending => send_pending(&plan),
        Mode::Analyze { input, json } => analyze_file(&plan, input, *json),
        Mode::History { all, json } => history(&plan, *all, *json),
    }
}

/// Loads the config where a broken file must not stop the work: it is
/// reported in one line saying what follows, and counts as "no consent, no
/// extra patterns".
fn load_config_or_warn(plan: &Plan, consequence: &str) -> Option<Config> {
    match Config::load(&plan.config_path) {
        Ok(c) => Some(c),
        Err(e) => {
            say!("{e:#}; {consequence}");
            None
        }
    }
}

/// The command line's patterns and the config file's.
fn rules(plan: &Plan, config: Option<&Config>) -> Rules {
    let mut patterns = plan.patterns.clone();
    if let Some(c) = config {
        let origin = format!("toolbox_patterns entry in {}", plan.config_path.display());
        match plan::compile_patterns(&c.toolbox_patterns(), &origin) {
            Ok(p) => patterns.extend(p),
            Err(e) => say!("{e:#}; ignoring the config file's patterns"),
        }
    }
    Rules { patterns }
}

fn supervise_and_report(plan: &Plan, command: &Command) -> Result<u8> {
    // Held from before the child starts: a signal that arrives after the
    // child exited waits until the report is in the outbox (the signal
    // thread never takes it while the child runs).
    let hold = shutdown::hold();
    let finished = supervise::run(command, plan.tail_limit).map_err(|e| {
        let code = e.exit_code();
        anyhow::Error::new(ChildStartError { code, source: e })
    })?;
    let code = finished.exit.shell_code();
    if finished.exit.succeeded() {
        drop(hold);
        reporting::after_success(plan);
        return Ok(code);
    }
    let config = load_config_or_warn(plan, "nothing will be reported until it is fixed");
    let rules = rules(plan, config.as_ref());
    let analysis = analysis::analyze(
        &finished.stderr.tail,
        finished.stderr.truncated,
        finished.exit,
        finished.interrupted_by_user,
        &rules,
    );
    reporting::after_failure(
        plan,
        config.as_ref(),
        &command.program.to_string_lossy(),
        finished.exit,
        &analysis,
        &rules,
        hold,
    );
    Ok(code)
}

/// The destinations `--consent` or `--revoke-consent` is about: those named
/// by `--server-url` and `--sentry-dsn`, else every one in effect. A bad
/// setting is this mode's error (the user asked about it), saying where it
/// came from.
fn destinations_for_mode(
    plan: &Plan,
    config: Option<&Config>,
) -> Result<Vec<(Destination, UrlSource)>> {
    let mut all = Vec::new();
    for kind in kinds_for_mode(plan) {
        match kind {
            DestKind::Toolbox => all.push(plan.toolbox_destination(config)),
            DestKind::Sentry => all.extend(plan.sentry_destination(config)),
        }
    }
    all.into_iter()
        .map(|r| {
            r.map_err(|invalid| {
                let (_, flag, ..) = plan::names(invalid.kind);
                anyhow::anyhow!("{invalid}; fix it, or name one with {flag}")
            })
        })
        .collect()
}

/// The kinds of destination named by `--server-url` and `--sentry-dsn`;
/// with neither, both.
fn kinds_for_mode(plan: &Plan) -> Vec<DestKind> {
    let flagged = |o: &Option<(String, UrlSource)>| matches!(o, Some((_, UrlSource::Flag)));
    match (flagged(&plan.url_override), flagged(&plan.dsn_override)) {
        (true, false) => vec![DestKind::Toolbox],
        (false, true) => vec![DestKind::Sentry],
        _ => vec![DestKind::Toolbox, DestKind::Sentry],
    }
}

/// How a destination is named where consent is asked for.
fn described(d: &Destination) -> String {
    match d.kind() {
        DestKind::Toolbox => format!("the toolbox's failure-reporting server at {d}"),
        DestKind::Sentry => format!("the Sentry-protocol tracker project {d}"),
    }
}

fn give_consent(plan: &Plan) -> Result<u8> {
    // Read first: a broken file must be fixed by the user, not replaced.
    let config = Config::load(&plan.config_path)?;
    let dests = destinations_for_mode(plan, Some(&config))?;
    let listed: Vec<String> = dests.iter().map(|(d, _)| described(d)).collect();
    if !consent::ask(&listed)? {
        say!("no consent recorded; nothing will be sent.");
        return Ok(0);
    }
    let now = report::now_rfc3339();
    config::update(&plan.config_path, |c| {
        for (d, source) in &dests {
            c.set_consent_for(d.kind(), true, d.expose(), &now);
            // A destination named on the command line becomes the default
            // for later runs, or the consent would not cover them.
            if *source == UrlSource::Flag {
                c.set_default(d);
            }
        }
    })?;
    for (d, _) in &dests {
        say!(
            "consent recorded for {d} in {}. Activating reporting.",
            plan.config_path.display()
        );
    }
    if plan.do_not_track {
        say!("note: DO_NOT_TRACK is set, so nothing is sent while it is.");
    }
    Ok(0)
}

/// Always works: whatever the environment or the server URL says, consent
/// is withdrawn (for the destinations named by flags, else for all) and
/// their kept reports are deleted.
fn revoke_consent(plan: &Plan) -> Result<u8> {
    let kinds = kinds_for_mode(plan);
    let now = report::now_rfc3339();
    config::update(&plan.config_path, |c| {
        for kind in &kinds {
            let previous = c.consent_for(*kind).and_then(|x| x.server_url);
            let current = match kind {
                DestKind::Toolbox => plan.toolbox_destination(Some(c)).ok(),
                DestKind::Sentry => plan.sentry_destination(Some(c)).and_then(Result::ok),
            }
            .map(|(d, _)| d.expose().to_string());
            let url = previous.or(current).or_else(|| {
                (*kind == DestKind::Toolbox).then(|| plan::DEFAULT_SERVER_URL.to_string())
            });
            if let Some(url) = url {
                c.set_consent_for(*kind, false, &url, &now);
            }
        }
    })?;
    // Kept reports were made under the consent just withdrawn.
    let outbox = plan.outbox();
    let mut deleted = 0;
    for p in outbox.list().reports {
        let Some(claim) = outbox.claim(&p) else {
            continue;
        };
        let kind = claim
            .read()
            .ok()
            .and_then(|e| e.destination().ok())
            .map(|d| d.kind());
        if kind.is_none_or(|k| kinds.contains(&k)) {
            claim.remove();
            deleted += 1;
        }
    }
    say!("consent revoked; nothing will be sent.");
    if deleted > 0 {
        say!("deleted {deleted} report(s) that were waiting to be sent.");
    }
    Ok(0)
}

/// `--status` lines for one destination: where it is and where that came
/// from (or why it is invalid), consent, whether reporting is on, a pause.
fn status_of(
    plan: &Plan,
    kind: DestKind,
    dest: &Result<(Destination, UrlSource), plan::Invalid>,
    config: Option<&Config>,
    out: &mut String,
) {
    let label = match kind {
        DestKind::Toolbox => "Server URL:  ",
        DestKind::Sentry => "Sentry DSN:  ",
    };
    match dest {
        Ok((d, source)) => out.push_str(&format!(
            "{label} {d} (from {})\n",
            plan::origin(kind, *source)
        )),
        Err(invalid) => out.push_str(&format!(
            "{label} INVALID from {}: {}\n",
            invalid.origin(),
            invalid.why
        )),
    }
    let consent = config.and_then(|c| c.consent_for(kind));
    let shown = |u: &str| {
        Destination::parse(kind, u)
            .map_or_else(|_| ServerUrl::new(u).to_string(), |d| d.to_string())
    };
    let line = match &consent {
        Some(c) if c.given => format!(
            "given for {} on {}",
            c.server_url.as_deref().map_or("?".to_string(), shown),
            c.recorded_at.as_deref().unwrap_or("?")
        ),
        Some(c) => format!("revoked on {}", c.recorded_at.as_deref().unwrap_or("?")),
        None => "not given (run `ect-run --consent`)".to_string(),
    };
    out.push_str(&format!("Consent:      {line}\n"));
    let (_, flag, ..) = plan::names(kind);
    let reporting = match dest {
        _ if plan.do_not_track => "off: DO_NOT_TRACK is set".to_string(),
        Err(_) => "off: the setting is invalid".to_string(),
        Ok((d, _)) if config.is_some_and(|c| c.consent_covers(d)) => "on".to_string(),
        Ok((d, _)) if consent.as_ref().is_some_and(|c| c.given) => {
            format!("off: consent does not cover {d}; run `ect-run --consent {flag} {d}`")
        }
        Ok(_) => "off: no consent".to_string(),
    };
    out.push_str(&format!("Reporting:    {reporting}\n"));
    if let Ok((d, _)) = dest
        && let Some(pause) = Pauses::new(&plan.state_dir).get(d)
    {
        out.push_str(&format!(
            "              paused until {}: {}\n",
            humantime::format_rfc3339_seconds(pause.until),
            pause.reason
        ));
    }
}

fn status(plan: &Plan) -> Result<u8> {
    let mut out = String::new();
    let path = plan.config_path.display();
    let config = match Config::load(&plan.config_path) {
        Ok(c) => {
            let state = if plan.config_path.exists() {
                ""
            } else {
                " (not created yet)"
            };
            out.push_str(&format!("Config file:  {path}{state}\n"));
            Some(c)
        }
        Err(e) => {
            out.push_str(&format!("Config file:  {path} (UNREADABLE: {e:#})\n"));
            None
        }
    };
    status_of(
        plan,
        DestKind::Toolbox,
        &plan.toolbox_destination(config.as_ref()),
        config.as_ref(),
        &mut out,
    );
    if let Some(sentry) = plan.sentry_destination(config.as_ref()) {
        status_of(plan, DestKind::Sentry, &sentry, config.as_ref(), &mut out);
    }
    let outbox = plan.outbox();
    let listing = outbox.list();
    out.push_str(&format!(
        "Outbox:       {} ({} report(s) waiting)\n",
        outbox.dir().display(),
        listing.reports.len()
    ));
    for (p, why) in &listing.skipped {
        out.push_str(&format!("              not read: {}: {why}\n", p.display()));
    }
    let dropped = outbox.dropped_count();
    if dropped > 0 {
        out.push_str(&format!(
            "              {dropped} report(s) dropped because the outbox was full\n"
        ));
    }
    let rejected = outbox.rejected();
    if !rejected.is_empty() {
        out.push_str(&format!(
            "Rejected:     {} report(s) a server will not take, in {}\n",
            rejected.len(),
            outbox.rejected_dir().display()
        ));
        for (p, entry) in &rejected {
            let why = entry
                .as_ref()
                .and_then(|e| e.rejected.clone())
                .unwrap_or_else(|| "?".into());
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            out.push_str(&format!("              {name}: {why}\n"));
        }
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

fn send_pending(plan: &Plan) -> Result<u8> {
    let listing = plan.outbox().list();
    let waiting = listing.reports.len();
    if waiting == 0 {
        say!("no reports waiting to be sent.");
        return Ok(0);
    }
    if plan.do_not_track {
        say!("DO_NOT_TRACK is set: nothing sent; {waiting} report(s) still waiting.");
        return Ok(0);
    }
    let config = Config::load(&plan.config_path)?;
    let scrub = crate::deliver::lazy_scrubber();
    let dispatcher = Dispatcher::new(&plan.state_dir, &plan.delivery, &scrub);
    let done = dispatcher.flush(listing, |d| config.consent_covers(d));
    say!(
        "{} report(s) delivered, {} still waiting.",
        done.delivered,
        done.kept
    );
    if done.paused > 0 {
        say!(
            "{} wait for a server that asked to wait or did not answer; `ect-run --status` says until when.",
            done.paused
        );
    }
    if done.not_consented > 0 {
        say!(
            "{} are for a server your consent does not cover; `ect-run --consent --server-url URL` to send them.",
            done.not_consented
        );
    }
    if done.deferred > 0 {
        say!(
            "{} were not tried within --timeout; run `ect-run --send-pending` again.",
            done.deferred
        );
    }
    Ok(if done.kept == 0 { 0 } else { 1 })
}

fn history(plan: &Plan, all: bool, json: bool) -> Result<u8> {
    let h = History::new(&plan.state_dir);
    let read = h.read()?;
    if read.damaged > 0 {
        say!(
            "skipped {} damaged line(s) in the history {}",
            read.damaged,
            h.path().display()
        );
    }
    let mut out = String::new();
    if all {
        for e in read.entries.iter().rev() {
            if json {
                out.push_str(&serde_json::to_string(e)?);
            } else {
                out.push_str(&history::line(e, None));
            }
            out.push('\n');
        }
    } else {
        for g in history::group(&read.entries) {
            if json {
                out.push_str(&serde_json::to_string(&g)?);
            } else {
                out.push_str(&history::line(g.latest, Some(g.count)));
            }
            out.push('\n');
        }
    }
    if out.is_empty() && !json {
        say!("no failures recorded yet ({}).", h.path().display());
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

/// The last `limit` bytes of a stream, and whether there was more.
fn read_tail(source: impl Read, limit: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let tail = Tail::read_from(source, limit)?;
    Ok((tail.contents(), tail.truncated()))
}

/// The last `limit` bytes of a file: a seek to them when the file can
/// seek, else a read through.
fn read_file_tail(path: &Path, limit: usize) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let limit64 = limit as u64;
    if len > limit64 && file.seek(SeekFrom::Start(len - limit64)).is_ok() {
        let (tail, _) = read_tail(file, limit)?;
        return Ok((tail, true));
    }
    read_tail(file, limit)
}

fn analyze_file(plan: &Plan, input: &Path, json: bool) -> Result<u8> {
    // Look at what a run would have kept: the last --tail-size bytes, read
    // in bounded memory however long the log.
    let (tail, truncated) = if input == Path::new("-") {
        read_tail(std::io::stdin().lock(), plan.tail_limit).context("cannot read standard input")?
    } else {
        read_file_tail(input, plan.tail_limit)
            .with_context(|| format!("cannot read {}", input.display()))?
    };
    let tail = &tail[..];
    let config = load_config_or_warn(plan, "its patterns are not used");
    // The text is taken as the stderr of a run that failed.
    let a = analysis::analyze(
        tail,
        truncated,
        Exit::Code(1),
        false,
        &rules(plan, config.as_ref()),
    );
    let text = if json {
        let mut s = serde_json::to_string(&analysis::to_json(&a))?;
        s.push('\n');
        s
    } else {
        analysis::summary(&a)
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(0)
}

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
use crate::deliver;
use crate::involvement::Rules;
use crate::plan::{self, Mode, Plan, UrlSource};
use crate::redact::ServerUrl;
use crate::report;
use crate::reporting;
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
        test_failure::raise_error();
    }
    if !cli.mode_given() && cli.command.is_empty() {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no command to run: put it after `--`, as in `ect-run -- ect-process args`",
            )
            .exit();
    }
    let plan = Plan::from_cli(cli).map_err(|e| anyhow::Error::new(UsageError(e)))?;
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
    let finished = supervise::run(command, plan.tail_limit).map_err(|e| {
        let code = e.exit_code();
        anyhow::Error::new(ChildStartError { code, source: e })
    })?;
    let code = finished.exit.shell_code();
    let mut config = None;
    let mut failed_url = None;
    if !finished.exit.succeeded() {
        config = load_config_or_warn(plan, "nothing will be reported until it is fixed");
        let analysis = analysis::analyze(
            &finished.stderr.tail,
            finished.stderr.truncated,
            finished.exit,
            finished.interrupted_by_user,
            &rules(plan, config.as_ref()),
        );
        failed_url = reporting::report_if_involved(
            plan,
            config.as_ref(),
            &command.program.to_string_lossy(),
            finished.exit,
            &analysis,
        );
    }
    reporting::flush_after_run(plan, config, failed_url.as_deref());
    Ok(code)
}

fn give_consent(plan: &Plan) -> Result<u8> {
    // Read first: a broken file must be fixed by the user, not replaced.
    let config = Config::load(&plan.config_path)?;
    let (url, source) = plan.server_url(config.server_url());
    if !consent::ask(&url)? {
        say!("no consent recorded; nothing will be sent.");
        return Ok(0);
    }
    config::update(&plan.config_path, |c| {
        c.set_consent(true, url.expose(), &report::now_rfc3339());
        // An explicit --server-url becomes the default for later runs, or
        // the consent would not cover them.
        if source == UrlSource::Flag {
            c.set_server_url(url.expose());
        }
    })?;
    say!(
        "consent recorded for {url} in {}. Activating reporting.",
        plan.config_path.display()
    );
    if plan.do_not_track {
        say!("note: DO_NOT_TRACK is set, so nothing is sent while it is.");
    }
    Ok(0)
}

fn revoke_consent(plan: &Plan) -> Result<u8> {
    let config = Config::load(&plan.config_path)?;
    let previous = config.consent().and_then(|c| c.server_url);
    let url =
        previous.unwrap_or_else(|| plan.server_url(config.server_url()).0.expose().to_string());
    config::update(&plan.config_path, |c| {
        c.set_consent(false, &url, &report::now_rfc3339())
    })?;
    // Kept reports were made under the consent just withdrawn.
    let outbox = plan.outbox();
    let pending = outbox.list();
    for p in &pending {
        let _ = std::fs::remove_file(p);
    }
    say!("consent revoked; nothing will be sent.");
    if !pending.is_empty() {
        say!(
            "deleted {} report(s) that were waiting to be sent.",
            pending.len()
        );
    }
    Ok(0)
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
    let (url, source) = plan.server_url(config.as_ref().and_then(Config::server_url));
    out.push_str(&format!("Server URL:   {url} (from {source})\n"));
    let consent = config.as_ref().and_then(Config::consent);
    let line = match &consent {
        Some(c) if c.given => format!(
            "given for {} on {}",
            c.server_url
                .clone()
                .map_or("?".to_string(), |u| ServerUrl::new(u).to_string()),
            c.recorded_at.as_deref().unwrap_or("?")
        ),
        Some(c) => format!("revoked on {}", c.recorded_at.as_deref().unwrap_or("?")),
        None => "not given (run `ect-run --consent`)".to_string(),
    };
    out.push_str(&format!("Consent:      {line}\n"));
    let reporting = if plan.do_not_track {
        "off: DO_NOT_TRACK is set".to_string()
    } else if config
        .as_ref()
        .is_some_and(|c| c.consent_covers(url.expose()))
    {
        "on".to_string()
    } else if consent.as_ref().is_some_and(|c| c.given) {
        format!("off: consent does not cover {url}; run `ect-run --consent --server-url {url}`")
    } else {
        "off: no consent".to_string()
    };
    out.push_str(&format!("Reporting:    {reporting}\n"));
    let outbox = plan.outbox();
    out.push_str(&format!(
        "Outbox:       {} ({} report(s) waiting)\n",
        outbox.dir().display(),
        outbox.list().len()
    ));
    if let Some(pause) = outbox.paused(url.expose()) {
        out.push_str(&format!(
            "              paused until {}: {}\n",
            humantime::format_rfc3339_seconds(pause.until),
            pause.reason
        ));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

fn send_pending(plan: &Plan) -> Result<u8> {
    let outbox = plan.outbox();
    let waiting = outbox.list().len();
    if waiting == 0 {
        say!("no reports waiting to be sent.");
        return Ok(0);
    }
    if plan.do_not_track {
        say!("DO_NOT_TRACK is set: nothing sent; {waiting} report(s) still waiting.");
        return Ok(0);
    }
    let config = Config::load(&plan.config_path)?;
    let client = deliver::Client::new(&plan.delivery);
    let done = outbox.flush(|url| config.consent_covers(url), |u, b| client.send(u, b));
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
    Ok(if done.kept == 0 { 0 } else { 1 })
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

//! The validated plan: what this invocation will do, built from the raw
//! [`Cli`] and the environment before any work starts. Every user mistake
//! in arguments (a bad size, a bad regex, a bad URL) is reported here, in
//! one line, before a child is started.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use regex::Regex;

use crate::cli::Cli;
use crate::config::Config;
use crate::destination::{Destination, Kind};
use crate::outbox::Outbox;
use crate::paths;
use crate::supervise::Command;

/// The toolbox's own default (esa_climate_toolbox/util/reporting.py).
pub const DEFAULT_SERVER_URL: &str = "http://localhost:9898";

/// The toolbox's own variable for the server URL.
pub const SERVER_URL_ENV: &str = "ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL";

/// ect-run's variable for a Sentry DSN. `SENTRY_DSN` is not read: it
/// belongs to the other programs in the same environment.
pub const SENTRY_DSN_ENV: &str = "ECT_RUN_SENTRY_DSN";

#[derive(Debug)]
pub enum Mode {
    Run(Command),
    Consent,
    RevokeConsent,
    Status,
    TestFailure,
    SendPending,
    Analyze { input: PathBuf, json: bool },
    History { all: bool, json: bool },
}

/// Where the server URL came from, for `--status` and for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlSource {
    Flag,
    Env,
    Config,
    Default,
}

impl std::fmt::Display for UrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UrlSource::Flag => "--server-url",
            UrlSource::Env => SERVER_URL_ENV,
            UrlSource::Config => "the config file",
            UrlSource::Default => "the toolbox's default",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct Plan {
    pub mode: Mode,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    /// The URL from the flag (validated: a bad one is a usage error) or
    /// the environment (kept as given: a bad one only turns reporting
    /// off); the config file's URL is only known once the file is read
    /// (see [`Plan::toolbox_destination`]).
    pub url_override: Option<(String, UrlSource)>,
    /// The Sentry DSN from the flag (validated) or the environment (as
    /// given), likewise.
    pub dsn_override: Option<(String, UrlSource)>,
    pub patterns: Vec<Regex>,
    pub tail_limit: usize,
    pub delivery: Delivery,
    pub dry_run: bool,
    /// DO_NOT_TRACK is set to a true value: nothing is ever sent.
    pub do_not_track: bool,
}

impl Plan {
    pub fn from_cli(cli: Cli) -> Result<Plan> {
        if cli.json && cli.analyze.is_none() && !cli.history {
            bail!("--json goes with --analyze or --history");
        }
        let mode = mode(&cli)?;
        let config_path = paths::config_file(cli.config.as_deref())?;
        let state_dir = paths::state_dir()?;
        let url_override = match (&cli.server_url, env_nonempty(SERVER_URL_ENV)) {
            (Some(d), _) => Some((d.expose().to_string(), UrlSource::Flag)),
            (None, Some(u)) => Some((u, UrlSource::Env)),
            (None, None) => None,
        };
        let dsn_override = match (&cli.sentry_dsn, env_nonempty(SENTRY_DSN_ENV)) {
            (Some(d), _) => Some((d.expose().to_string(), UrlSource::Flag)),
            (None, Some(d)) => Some((d, UrlSource::Env)),
            (None, None) => None,
        };
        // Checked by clap's value parsers (crate::values).
        let patterns = cli.toolbox_patterns.clone();
        let tail_limit = cli.tail_size;
        let delivery = Delivery {
            connect_timeout: cli.connect_timeout,
            timeout: cli.timeout,
        };
        Ok(Plan {
            mode,
            config_path,
            state_dir,
            url_override,
            dsn_override,
            patterns,
            tail_limit,
            delivery,
            dry_run: cli.dry_run,
            do_not_track: do_not_track(),
        })
    }

    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.state_dir.join("outbox"))
    }

    /// The toolbox server to report to and where its URL came from: the
    /// flag, else the environment, else the config file, else the
    /// toolbox's default. A malformed URL from the environment or the
    /// config is an [`Invalid`] setting: reporting to it is off, and the
    /// command still runs.
    pub fn toolbox_destination(
        &self,
        config: Option<&Config>,
    ) -> Result<(Destination, UrlSource), Invalid> {
        let (raw, source) = match (&self.url_override, config.and_then(Config::server_url)) {
            (Some((u, s)), _) => (u.as_str(), *s),
            (None, Some(u)) => (u, UrlSource::Config),
            (None, None) => (DEFAULT_SERVER_URL, UrlSource::Default),
        };
        Destination::toolbox(raw)
            .map(|d| (d, source))
            .map_err(|why| Invalid {
                kind: Kind::Toolbox,
                source,
                why,
            })
    }

    /// The Sentry-protocol tracker to report to, if one is named: the flag,
    /// else the environment, else the config file. A malformed DSN from the
    /// environment or the config is an [`Invalid`] setting.
    pub fn sentry_destination(
        &self,
        config: Option<&Config>,
    ) -> Option<Result<(Destination, UrlSource), Invalid>> {
        let (raw, source) = match (&self.dsn_override, config.and_then(Config::sentry_dsn)) {
            (Some((d, s)), _) => (d.as_str(), *s),
            (None, Some(d)) => (d, UrlSource::Config),
            (None, None) => return None,
        };
        Some(
            Destination::sentry(raw)
                .map(|d| (d, source))
                .map_err(|why| Invalid {
                    kind: Kind::Sentry,
                    source,
                    why,
                }),
        )
    }

    /// Every destination in effect: the toolbox server, and a tracker if
    /// one is named.
    pub fn destinations(
        &self,
        config: Option<&Config>,
    ) -> Vec<Result<(Destination, UrlSource), Invalid>> {
        let mut all = vec![self.toolbox_destination(config)];
        all.extend(self.sentry_destination(config));
        all
    }
}

/// How each kind of destination is named on the command line, in the
/// environment and in the config file.
pub fn names(kind: Kind) -> (&'static str, &'static str, &'static str, &'static str) {
    match kind {
        Kind::Toolbox => ("server URL", "--server-url", SERVER_URL_ENV, "server_url"),
        Kind::Sentry => ("Sentry DSN", "--sentry-dsn", SENTRY_DSN_ENV, "sentry_dsn"),
    }
}

/// A setting from the environment or the config file that cannot be used.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub kind: Kind,
    pub source: UrlSource,
    pub why: String,
}

impl Invalid {
    /// Where the value came from, named as the user would look for it.
    pub fn origin(&self) -> String {
        let (_, _, env, key) = names(self.kind);
        match self.source {
            UrlSource::Env => format!("the environment variable {env}"),
            UrlSource::Config => format!("the config file (key {key})"),
            _ => origin(self.kind, self.source),
        }
    }
}

/// Where a destination's value came from, for `--status` and messages.
pub fn origin(kind: Kind, source: UrlSource) -> String {
    let (_, flag, env, _) = names(kind);
    match (kind, source) {
        (_, UrlSource::Flag) => flag.to_string(),
        (_, UrlSource::Env) => env.to_string(),
        (_, UrlSource::Config) => "the config file".to_string(),
        (Kind::Toolbox, UrlSource::Default) => "the toolbox's default".to_string(),
        (Kind::Sentry, UrlSource::Default) => "nowhere".to_string(),
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, ..) = names(self.kind);
        write!(f, "invalid {what} in {}: {}", self.origin(), self.why)
    }
}

fn mode(cli: &Cli) -> Result<Mode> {
    Ok(if cli.consent {
        Mode::Consent
    } else if cli.revoke_consent {
        Mode::RevokeConsent
    } else if cli.status {
        Mode::Status
    } else if cli.test_failure {
        Mode::TestFailure
    } else if cli.send_pending {
        Mode::SendPending
    } else if cli.history {
        Mode::History {
            all: cli.all,
            json: cli.json,
        }
    } else if let Some(input) = &cli.analyze {
        Mode::Analyze {
            input: input.clone(),
            json: cli.json,
        }
    } else if let Some((program, args)) = cli.command.split_first() {
        Mode::Run(Command {
            program: program.clone(),
            args: args.to_vec(),
            env: Vec::new(),
        })
    } else {
        // main() turns this into clap's usage error (exit 2); it is caught
        // there before this point, so reaching it is a bug.
        bail!("no command given: use `ect-run -- COMMAND [ARGS...]`")
    })
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// DO_NOT_TRACK as the consoledonottrack.com convention reads it: any value
/// but empty, `0` or `false` means "do not send".
pub fn do_not_track() -> bool {
    match std::env::var_os("DO_NOT_TRACK") {
        None => false,
        Some(v) => {
            let v = v.to_string_lossy().trim().to_ascii_lowercase();
            !(v.is_empty() || v == "0" || v == "false")
        }
    }
}

pub fn compile_patterns(patterns: &[String], origin: &str) -> Result<Vec<Regex>> {
    patterns
        .iter()
        .map(|p| {
            crate::values::regex(p).map_err(|why| anyhow::anyhow!("invalid {origin} {p:?}: {why}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pattern_names_itself() {
        let err = compile_patterns(&["(".into()], "--toolbox-pattern").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid --toolbox-pattern \"(\""),
            "{err}"
        );
    }
}

//! The validated plan: what this invocation will do, built from the raw
//! [`Cli`] and the environment before any work starts. Every user mistake
//! in arguments (a bad size, a bad regex, a bad URL) is reported here, in
//! one line, before a child is started.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use regex::Regex;

use crate::cli::Cli;
use crate::outbox::Outbox;
use crate::paths;
use crate::redact::ServerUrl;
use crate::supervise::Command;

/// The toolbox's own default (esa_climate_toolbox/util/reporting.py).
pub const DEFAULT_SERVER_URL: &str = "http://localhost:9898";

/// The toolbox's own variable for the server URL.
pub const SERVER_URL_ENV: &str = "ESA_CLIMATE_TOOLBOX_FAILURE_REPORTING_SERVER_URL";

#[derive(Debug)]
pub enum Mode {
    Run(Command),
    Consent,
    RevokeConsent,
    Status,
    TestFailure,
    SendPending,
    Analyze { input: PathBuf, json: bool },
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
    pub outbox_dir: PathBuf,
    /// The URL from the flag or the environment; the config file's URL is
    /// only known once the file is read (see [`Plan::server_url`]).
    pub url_override: Option<(ServerUrl, UrlSource)>,
    pub patterns: Vec<Regex>,
    pub tail_limit: usize,
    pub delivery: Delivery,
    pub dry_run: bool,
    /// DO_NOT_TRACK is set to a true value: nothing is ever sent.
    pub do_not_track: bool,
}

impl Plan {
    pub fn from_cli(cli: Cli) -> Result<Plan> {
        let mode = mode(&cli)?;
        let config_path = paths::config_file(cli.config.as_deref())?;
        let outbox_dir = paths::outbox_dir()?;
        let url_override = match (&cli.server_url, env_nonempty(SERVER_URL_ENV)) {
            (Some(u), _) => Some((u.clone(), UrlSource::Flag)),
            (None, Some(u)) => Some((validate_url(&u, SERVER_URL_ENV)?, UrlSource::Env)),
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
            outbox_dir,
            url_override,
            patterns,
            tail_limit,
            delivery,
            dry_run: cli.dry_run,
            do_not_track: do_not_track(),
        })
    }

    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.outbox_dir.clone())
    }

    /// The effective server URL and where it came from: the flag, else the
    /// environment, else the config file, else the toolbox's default.
    pub fn server_url(&self, from_config: Option<&str>) -> (ServerUrl, UrlSource) {
        if let Some((u, s)) = &self.url_override {
            return (u.clone(), *s);
        }
        match from_config {
            Some(u) => (ServerUrl::new(u), UrlSource::Config),
            None => (ServerUrl::new(DEFAULT_SERVER_URL), UrlSource::Default),
        }
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

pub fn validate_url(url: &str, origin: &str) -> Result<ServerUrl> {
    let url = ServerUrl::new(url.trim());
    let shown = url.to_string();
    let parsed: ureq::http::Uri = url
        .expose()
        .parse()
        .with_context(|| format!("invalid server URL {shown:?} from {origin}"))?;
    match parsed.scheme_str() {
        Some("http" | "https") if parsed.host().is_some() => Ok(url),
        _ => bail!(
            "invalid server URL {shown:?} from {origin}: expected http://HOST[:PORT]/... or https://..."
        ),
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

/// Parses a byte size (see [`crate::values::parse_size`]).
pub fn parse_size(s: &str) -> Result<usize> {
    crate::values::parse_size(s).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let ok = [
            ("0", 0),
            ("65536", 65536),
            ("1MiB", 1 << 20),
            ("1M", 1 << 20),
            ("512KiB", 512 << 10),
            ("2 GiB", 2 << 30),
            ("10b", 10),
        ];
        for (s, want) in ok {
            assert_eq!(parse_size(s).unwrap(), want, "{s}");
        }
        for bad in ["", "MiB", "1TiB", "-1", "1.5MiB", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(validate_url("http://localhost:9898", "x").is_ok());
        assert!(validate_url("https://reports.example.org/ect", "x").is_ok());
        assert!(validate_url("localhost:9898", "x").is_err());
        assert!(validate_url("ftp://host/", "x").is_err());
        assert!(validate_url("not a url", "x").is_err());
    }

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

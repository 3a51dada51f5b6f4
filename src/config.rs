//! The config file: the user's consent (for which server URL, when, by which
//! ect-run version), an optional default server URL and extra toolbox
//! patterns. JSON, readable by its owner only.
//!
//! Invariants: keys ect-run does not know are kept as they are; a write is a
//! temp file in the same directory renamed over the old one, under an
//! exclusive lock on a sibling lock file, so two processes writing at once
//! cannot corrupt it or lose each other's change; a file that cannot be
//! read or parsed is reported and never overwritten.

use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use std::time::Duration;

use crate::destination::{Destination, Kind};
pub use crate::files::write_atomic;
use crate::files::{self, ReadError, parent_dir};
use crate::flood::Limits;

/// A config file larger than this is not read: it is not ect-run's.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The parsed file. An absent file is an empty config.
#[derive(Debug, Clone, Default)]
pub struct Config {
    data: Map<String, Value>,
}

/// The stored answer to `ect-run --consent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub given: bool,
    pub server_url: Option<String>,
    pub recorded_at: Option<String>,
    pub ect_run_version: Option<String>,
}

impl Config {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Config> {
        let bytes = match files::read_regular(path, MAX_CONFIG_BYTES) {
            Ok(b) => b,
            Err(ReadError::Missing) => return Ok(Config::default()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read config file {}", path.display()));
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!(
                "config file {} is not valid (fix or remove it): not UTF-8 text",
                path.display()
            )
        })?;
        Config::parse(&text).with_context(|| {
            format!(
                "config file {} is not valid (fix or remove it)",
                path.display()
            )
        })
    }

    fn parse(text: &str) -> Result<Config> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(data)) => {
                let config = Config { data };
                config.check_types()?;
                Ok(config)
            }
            Ok(_) => bail!("expected a JSON object"),
            Err(e) => Err(anyhow::Error::new(e)),
        }
    }

    /// Known keys with the wrong type are errors too: guessing would risk
    /// sending without consent.
    fn check_types(&self) -> Result<()> {
        match self.data.get("consent") {
            None | Some(Value::Object(_)) => {}
            Some(_) => bail!("\"consent\" must be an object"),
        }
        if let Some(Value::Object(c)) = self.data.get("consent")
            && !matches!(c.get("given"), None | Some(Value::Bool(_)))
        {
            bail!("\"consent.given\" must be true or false");
        }
        for key in ["sentry_consent"] {
            match self.data.get(key) {
                None | Some(Value::Object(_)) => {}
                Some(_) => bail!("\"{key}\" must be an object"),
            }
        }
        match self.data.get("sentry_dsn") {
            None | Some(Value::String(_)) | Some(Value::Null) => {}
            Some(_) => bail!("\"sentry_dsn\" must be a string"),
        }
        match self.data.get("server_url") {
            None | Some(Value::String(_)) | Some(Value::Null) => {}
            Some(_) => bail!("\"server_url\" must be a string"),
        }
        if let Err(why) = self.limits() {
            bail!("{why}");
        }
        match self.data.get("toolbox_patterns") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(_) => bail!("\"toolbox_patterns\" must be a list of strings"),
        }
        Ok(())
    }

    /// The consent stored for the toolbox server.
    pub fn consent(&self) -> Option<Consent> {
        self.consent_for(Kind::Toolbox)
    }

    /// The consent stored for a kind of destination: `consent` for the
    /// toolbox server (its URL in `server_url`), `sentry_consent` for a
    /// Sentry DSN (in `dsn`).
    pub fn consent_for(&self, kind: Kind) -> Option<Consent> {
        let (key, url_key) = consent_keys(kind);
        let c = self.data.get(key)?.as_object()?;
        let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Consent {
            given: c.get("given").and_then(Value::as_bool).unwrap_or(false),
            server_url: s(url_key),
            recorded_at: s("recorded_at"),
            ect_run_version: s("ect_run_version"),
        })
    }

    /// Whether stored consent covers sending to `dest`: consent holds for
    /// the destination it was given for, however its URL is spelled.
    pub fn consent_covers(&self, dest: &Destination) -> bool {
        self.consent_for(dest.kind()).is_some_and(|c| {
            c.given
                && c.server_url
                    .as_deref()
                    .and_then(|u| Destination::parse(dest.kind(), u).ok())
                    .is_some_and(|given| &given == dest)
        })
    }

    /// The config's Sentry DSN, if it names one.
    pub fn sentry_dsn(&self) -> Option<&str> {
        self.data
            .get("sentry_dsn")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    pub fn server_url(&self) -> Option<&str> {
        self.data
            .get("server_url")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// Flood control's limits: `dedup_window` (seconds, or a duration such
    /// as `"30min"`; 0 turns it off) and `max_reports_per_day`.
    pub fn limits(&self) -> Result<Limits, String> {
        let mut limits = Limits::default();
        match self.data.get("dedup_window") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                limits.dedup_window = Duration::from_secs(n.as_u64().unwrap_or(0));
            }
            Some(Value::String(s)) => {
                limits.dedup_window = humantime::parse_duration(s.trim()).map_err(|_| {
                    format!("\"dedup_window\" must be a number of seconds or a duration such as \"1h\" or \"30min\", not {s:?}")
                })?;
            }
            Some(_) => {
                return Err(
                    "\"dedup_window\" must be a number of seconds or a duration such as \"1h\""
                        .into(),
                );
            }
        }
        match self.data.get("max_reports_per_day") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v <= u64::from(u32::MAX)) => {
                limits.max_per_day = n.as_u64().unwrap_or(0) as u32;
            }
            Some(_) => return Err("\"max_reports_per_day\" must be a whole number".into()),
        }
        Ok(limits)
    }

    pub fn toolbox_patterns(&self) -> Vec<String> {
        match self.data.get("toolbox_patterns") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn set_consent(&mut self, given: bool, server_url: &str, now: &str) {
        self.set_consent_for(Kind::Toolbox, given, server_url, now);
    }

    pub fn set_consent_for(&mut self, kind: Kind, given: bool, url: &str, now: &str) {
        let (key, url_key) = consent_keys(kind);
        self.data.insert(
            key.to_string(),
            json!({
                "given": given,
                url_key: url,
                "recorded_at": now,
                "ect_run_version": env!("CARGO_PKG_VERSION"),
            }),
        );
    }

    /// Makes `dest` the default of its kind for later runs.
    pub fn set_default(&mut self, dest: &Destination) {
        let key = match dest.kind() {
            Kind::Toolbox => "server_url",
            Kind::Sentry => "sentry_dsn",
        };
        self.data
            .insert(key.to_string(), Value::String(dest.expose().to_string()));
    }

    pub fn set_server_url(&mut self, url: &str) {
        self.data
            .insert("server_url".to_string(), Value::String(url.to_string()));
    }

    fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.data).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

/// Reads, changes and writes the config file under its lock. The change is
/// applied to what is on disk at that moment, so concurrent writers
/// serialize instead of overwriting each other.
pub fn update(path: &Path, change: impl FnOnce(&mut Config)) -> Result<Config> {
    let dir = parent_dir(path);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create config directory {}", dir.display()))?;
    let _lock = lock(path)?;
    // A file we cannot parse is the user's to fix: never overwrite it.
    let mut config = Config::load(path)?;
    change(&mut config);
    write_atomic(path, config.to_text().as_bytes())
        .with_context(|| format!("cannot write config file {}", path.display()))?;
    Ok(config)
}

fn consent_keys(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Toolbox => ("consent", "server_url"),
        Kind::Sentry => ("sentry_consent", "dsn"),
    }
}

/// An exclusive lock on `<path>.lock`, released when the file is dropped.
/// A sibling file, because the config itself is replaced by rename. The
/// wait is bounded: a stuck process cannot hang `--consent` or
/// `--revoke-consent`.
fn lock(path: &Path) -> Result<File> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    files::lock_bounded(&lock_path, "the config file")
        .with_context(|| format!("cannot lock {}", lock_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keeps_unknown_keys_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            r#"{"mine": {"a": [1, 2]}, "server_url": "http://x:1"}"#,
        )
        .unwrap();
        update(&path, |c| {
            c.set_consent(true, "http://x:1", "2026-01-01T00:00:00Z")
        })
        .unwrap();
        let back: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["mine"], json!({"a": [1, 2]}));
        assert_eq!(back["consent"]["given"], json!(true));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn corrupt_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        for bad in [
            "{not json",
            "[1, 2]",
            r#"{"consent": "yes"}"#,
            r#"{"consent": {"given": "yes"}}"#,
        ] {
            fs::write(&path, bad).unwrap();
            let err = update(&path, |c| c.set_consent(true, "u", "t")).unwrap_err();
            assert!(
                format!("{err:#}").contains(&path.display().to_string()),
                "{err:#}"
            );
            assert_eq!(fs::read_to_string(&path).unwrap(), bad);
        }
    }

    #[test]
    fn consent_is_for_one_url() {
        let d = |u| Destination::toolbox(u).unwrap();
        let mut c = Config::default();
        assert!(!c.consent_covers(&d("http://a:1")));
        c.set_consent(true, "http://a:1/", "t");
        assert!(c.consent_covers(&d("http://a:1")));
        assert!(c.consent_covers(&d("HTTP://A:1")));
        assert!(!c.consent_covers(&d("http://b:1")));
        c.set_consent(false, "http://a:1/", "t");
        assert!(!c.consent_covers(&d("http://a:1")));
    }

    #[test]
    fn missing_file_is_empty() {
        let c = Config::load(Path::new("/nonexistent/ect-run/config.json")).unwrap();
        assert!(c.consent().is_none());
    }
}

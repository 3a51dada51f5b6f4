//! Test helpers: an isolated environment for the real `ect-run` binary, and
//! a recording HTTP server on 127.0.0.1.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod server;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

/// A temporary home for one test: config, state and HOME all inside it,
/// and every variable that could change ect-run's behaviour removed.
pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path()
            .join("config")
            .join("ect-run")
            .join("config.json")
    }

    pub fn outbox(&self) -> PathBuf {
        self.path().join("state").join("ect-run").join("outbox")
    }

    /// `ect-run` with this environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("ect-run").unwrap();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path().join("home"))
            .env("USER", "tester")
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_STATE_HOME", self.path().join("state"))
            .env("LANG", "C.UTF-8")
            .timeout(std::time::Duration::from_secs(30));
        c
    }

    /// Writes a config file granting consent for `url`.
    pub fn consent_to(&self, url: &str) {
        self.cmd()
            .args(["--consent", "--server-url", url])
            .write_stdin("YES\n")
            .assert()
            .success();
    }
}

/// The directory of checked-in fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// The fake toolbox package of the Python fixtures, for PYTHONPATH.
pub fn fake_toolbox() -> PathBuf {
    fixtures()
        .join("python")
        .join("programs")
        .join("fake_toolbox")
}

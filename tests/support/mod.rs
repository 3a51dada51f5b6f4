//! Test helpers: an isolated environment for the real `ect-run` binary, and
//! a recording HTTP server on 127.0.0.1.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod bugsink;
pub mod scrub_table;
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

    /// The whole environment of an `ect-run` under test: nothing inherited
    /// but PATH, so no variable of the machine's can change its behaviour.
    fn vars(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("PATH", std::env::var_os("PATH").unwrap_or_default()),
            ("HOME", self.path().join("home").into()),
            ("USER", "tester".into()),
            ("XDG_CONFIG_HOME", self.path().join("config").into()),
            ("XDG_STATE_HOME", self.path().join("state").into()),
            ("LANG", "C.UTF-8".into()),
        ]
    }

    /// `ect-run` with this environment, for assert_cmd.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("ect-run").unwrap();
        c.env_clear()
            .envs(self.vars())
            .timeout(std::time::Duration::from_secs(30));
        c
    }

    /// `ect-run` with this environment, as a std Command (to spawn it and
    /// talk to it while it runs).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("ect-run"));
        c.env_clear().envs(self.vars());
        c
    }

    /// Turns flood control off in the config file, for tests that send the
    /// same failure more than once on purpose.
    pub fn allow_repeats(&self) {
        let path = self.config_path();
        let mut cfg: serde_json::Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        cfg["dedup_window"] = 0.into();
        cfg["max_reports_per_day"] = 100_000.into();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
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

/// The toolbox's test message.
pub const TEST_MESSAGE: &str = "This is an error to test the reporting functionality.";

/// Installs a small fake `esa_climate_toolbox` package (with dist-info
/// 1.7.2) under `<env>/home/env/site-packages` and returns that directory,
/// for PYTHONPATH. Its `FailureReporter.raise_error()` is the toolbox's.
pub fn install_fake_toolbox(env: &Env) -> PathBuf {
    let site = env.path().join("home").join("env").join("site-packages");
    let pkg = site.join("esa_climate_toolbox");
    std::fs::create_dir_all(pkg.join("util")).unwrap();
    std::fs::write(pkg.join("__init__.py"), "").unwrap();
    std::fs::write(pkg.join("version.py"), "__version__ = '1.7.2'\n").unwrap();
    std::fs::write(pkg.join("util").join("__init__.py"), "").unwrap();
    std::fs::write(
        pkg.join("util").join("reporting.py"),
        format!(
            "class FailureReporter:\n    @staticmethod\n    def raise_error():\n        raise Exception(\"{TEST_MESSAGE}\")\n\n\ndef apply(func, *args):\n    return func(*args)\n\n\ndef crash():\n    import ctypes\n    ctypes.string_at(1)\n"
        ),
    )
    .unwrap();
    let info = site.join("esa_climate_toolbox-1.7.2.dist-info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(
        info.join("METADATA"),
        "Metadata-Version: 2.1\nName: esa-climate-toolbox\nVersion: 1.7.2\n",
    )
    .unwrap();
    site
}

/// Writes a Python script into the test's directory and returns its path.
pub fn script(env: &Env, name: &str, code: &str) -> PathBuf {
    let dir = env.path().join("home").join("work");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, code).unwrap();
    path
}

//! Where ect-run keeps its files: the config file and the outbox of reports
//! not yet delivered, with the pauses and the history beside it. Each has an environment override first, then the
//! platform's directories (XDG on Linux) from the `etcetera` crate.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use etcetera::BaseStrategy;

pub const CONFIG_ENV: &str = "ECT_RUN_CONFIG";
pub const STATE_DIR_ENV: &str = "ECT_RUN_STATE_DIR";

/// `--config`, else `$ECT_RUN_CONFIG`, else `<config dir>/ect-run/config.json`.
pub fn config_file(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = strategy()?;
    Ok(base.config_dir().join("ect-run").join("config.json"))
}

/// ect-run's state (the outbox, pauses, the history):
/// `$ECT_RUN_STATE_DIR`, else `<state dir>/ect-run` (`$XDG_STATE_HOME`, by
/// default `~/.local/state`).
pub fn state_dir() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(STATE_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = strategy()?;
    let state = base.state_dir().unwrap_or_else(|| base.data_dir());
    Ok(state.join("ect-run"))
}

fn strategy() -> Result<impl BaseStrategy> {
    etcetera::choose_base_strategy().context(
        "cannot find your home directory to place ect-run's files: set HOME, or ECT_RUN_CONFIG and ECT_RUN_STATE_DIR",
    )
}

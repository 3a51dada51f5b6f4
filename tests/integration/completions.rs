//! The checked-in completion scripts are what the CLI generates today.

use std::path::Path;

use crate::support::Env;

const SCRIPTS: [(&str, &str); 5] = [
    ("bash", "ect-run.bash"),
    ("zsh", "_ect-run"),
    ("fish", "ect-run.fish"),
    ("powershell", "_ect-run.ps1"),
    ("elvish", "ect-run.elv"),
];

#[test]
fn completion_scripts_are_current() {
    let env = Env::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in SCRIPTS {
        let out = env.cmd().args(["--completions", shell]).output().unwrap();
        assert!(out.status.success());
        let checked_in = std::fs::read(dir.join(file)).unwrap_or_default();
        assert!(
            checked_in == out.stdout,
            "completions/{file} is stale: regenerate it with `cargo run -- --completions {shell} > completions/{file}` (or `bash completions/generate.sh`)"
        );
    }
}

/// Completion generation is a cheap mode: it works with an unreadable
/// config.
#[test]
fn completions_work_with_a_broken_config() {
    let env = Env::new();
    let cfg = env.config_path();
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "{broken").unwrap();
    env.cmd().args(["--completions", "bash"]).assert().success();
}

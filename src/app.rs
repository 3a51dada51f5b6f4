//! The modes of ect-run, wired together. Each mode is a short function that
//! calls into the modules that own the work.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::plan::{Mode, Plan};
use crate::supervise;

/// A mistake in the command line: exit status 2, as for clap's own errors.
#[derive(Debug)]
pub struct UsageError(pub anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for UsageError {}

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
    let no_mode = !(cli.consent
        || cli.revoke_consent
        || cli.status
        || cli.test_failure
        || cli.send_pending
        || cli.internal_raise_error
        || cli.analyze.is_some());
    if no_mode && cli.command.is_empty() {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no command to run: put it after `--`, as in `ect-run -- ect-process args`",
            )
            .exit();
    }
    let plan = Plan::from_cli(cli).map_err(|e| anyhow::Error::new(UsageError(e)))?;
    match &plan.mode {
        Mode::Run(command) => {
            let finished = supervise::run(command, plan.tail_limit).map_err(|e| {
                let code = e.exit_code();
                anyhow::Error::new(ChildStartError { code, source: e })
            })?;
            Ok(finished.exit.shell_code())
        }
        _ => anyhow::bail!("not built yet"),
    }
}

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

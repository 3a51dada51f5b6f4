//! The raw command line, as clap parses it. Nothing here touches the file
//! system or the environment: [`crate::plan`] turns a [`Cli`] into a
//! validated plan before any work starts.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgGroup, Parser, ValueHint};

const EXAMPLES: &str = "\
Ways of use:
  ect-run -- ect-process args     Run a toolbox command; report its failure if the
                                  toolbox was involved and you have consented
  ect-run --consent               Ask once whether failures may be reported, and
                                  store the answer in the config file
  ect-run --test-failure          Fail on purpose inside toolbox code, to test the
                                  whole path up to the reporting server

More examples:
  ect-run --dry-run -- python -m my_pipeline   Show the report instead of sending it
  ect-run --status                             Consent, server, pending reports
  ect-run --analyze job.err --json             What would be decided for a saved log

Nothing is ever sent without the consent stored by `ect-run --consent`, and
nothing at all when DO_NOT_TRACK=1. The command's output, input and exit
status are left exactly as they are.";

/// Supervise ESA Climate Toolbox command-line runs and, with your consent,
/// report their failures.
///
/// ect-run runs COMMAND as a child process with the same arguments,
/// environment, input and output, and exits with its status. It keeps the end
/// of the command's stderr; when the command fails inside the toolbox's own
/// code, and only if you have consented, it sends a failure report to the
/// toolbox's reporting server.
#[derive(Debug, Parser)]
#[command(
    name = "ect-run",
    version,
    after_help = EXAMPLES,
    group(ArgGroup::new("mode").multiple(false).args([
        "consent", "revoke_consent", "status", "test_failure",
        "send_pending", "analyze", "completions", "command",
    ])),
)]
pub struct Cli {
    /// Ask whether failures may be reported to the server, and store the
    /// answer in the config file.
    #[arg(long)]
    pub consent: bool,

    /// Withdraw consent: nothing is sent from now on.
    #[arg(long)]
    pub revoke_consent: bool,

    /// Show consent, the server URL and where it came from, the config
    /// file, and reports waiting to be sent.
    #[arg(long)]
    pub status: bool,

    /// Run a child that fails inside toolbox code, the way the toolbox's
    /// `FailureReporter.raise_error()` does, and report it like any run.
    #[arg(long)]
    pub test_failure: bool,

    /// Send the reports kept on disk because they could not be delivered.
    #[arg(long)]
    pub send_pending: bool,

    /// Explain what would be decided for the stderr text in FILE (or
    /// standard input when FILE is absent or `-`): the failure found, and
    /// whether the toolbox was involved. Sends nothing.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-",
          value_hint = ValueHint::FilePath)]
    pub analyze: Option<PathBuf>,

    /// With --analyze: print one JSON object instead of a summary.
    #[arg(long, requires = "analyze")]
    pub json: bool,

    /// Print the report that would be sent (on stderr), and send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The reporting server [default: from the environment, the config file,
    /// else http://localhost:9898].
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub server_url: Option<String>,

    /// The config file [default: $ECT_RUN_CONFIG, else
    /// $XDG_CONFIG_HOME/ect-run/config.json].
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,

    /// A regular expression: a frame whose file path or function matches it
    /// counts as toolbox code, in addition to the built-in rules. Repeatable.
    #[arg(long = "toolbox-pattern", value_name = "REGEX")]
    pub toolbox_patterns: Vec<String>,

    /// How much of the command's stderr to keep for analysis, e.g. 1MiB,
    /// 512KiB, 2000000.
    #[arg(long, value_name = "SIZE", default_value = "1MiB")]
    pub tail_size: String,

    /// Seconds to wait for the server to accept a connection.
    #[arg(long, value_name = "SECONDS", default_value = "3")]
    pub connect_timeout: f64,

    /// Seconds a delivery may take in all, after which the report is kept
    /// on disk for later.
    #[arg(long, value_name = "SECONDS", default_value = "5")]
    pub timeout: f64,

    /// Print a completion script for SHELL to standard output.
    #[arg(long, value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,

    /// Internal: the child that --test-failure runs when the toolbox's
    /// Python package is not installed.
    #[arg(long, hide = true)]
    pub internal_raise_error: bool,

    /// The command to supervise, and its arguments (after `--`).
    #[arg(last = true, value_name = "COMMAND", value_hint = ValueHint::CommandWithArguments)]
    pub command: Vec<OsString>,
}

impl Cli {
    /// Whether one of the modes other than running a command was asked for.
    pub fn mode_given(&self) -> bool {
        self.consent
            || self.revoke_consent
            || self.status
            || self.test_failure
            || self.send_pending
            || self.analyze.is_some()
    }
}

/// Parses the process's arguments; on a usage error, exits with status 2
/// after clap's message. A bare word where an option was expected is almost
/// always a command missing its `--`, so that gets a tip.
pub fn parse() -> Cli {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let args = analyze_file_first(std::env::args_os().collect());
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(mut e) => {
            if e.kind() == ErrorKind::UnknownArgument {
                let word = args
                    .iter()
                    .skip(1)
                    .take_while(|a| *a != "--")
                    .find(|a| !a.to_string_lossy().starts_with('-'));
                if let Some(word) = word {
                    let tip = format!(
                        "to run a command, put it after `--`: `ect-run -- {}`",
                        word.to_string_lossy()
                    );
                    e.insert(
                        ContextKind::Suggested,
                        ContextValue::StyledStrs(vec![tip.into()]),
                    );
                }
            }
            e.exit()
        }
    }
}

/// `--analyze --json FILE`: clap gives `--analyze` no value when an
/// option follows it, and FILE is then a stray word. Moves the first bare
/// word after `--analyze` (before `--`, and not an option's value) to just
/// after it, so the options may come in any order (issue 11).
fn analyze_file_first(mut args: Vec<OsString>) -> Vec<OsString> {
    use clap::CommandFactory;
    let Some(at) = args
        .iter()
        .take_while(|a| *a != "--")
        .position(|a| a == "--analyze")
    else {
        return args;
    };
    let takes_value = |flag: &str| {
        Cli::command().get_arguments().any(|a| {
            a.get_long() == Some(flag.trim_start_matches("--"))
                && a.get_action().takes_values()
                && a.get_id() != "analyze"
        })
    };
    let next_is_option = args
        .get(at + 1)
        .is_some_and(|a| a.to_string_lossy().starts_with('-') && a != "-");
    if !next_is_option {
        return args;
    }
    let mut i = at + 1;
    while i < args.len() && args[i] != "--" {
        let a = args[i].to_string_lossy();
        if a.starts_with('-') && a != "-" {
            // `--opt value`: skip the value too.
            i += if !a.contains('=') && takes_value(&a) {
                2
            } else {
                1
            };
            continue;
        }
        let file = args.remove(i);
        args.insert(at + 1, file);
        break;
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn analyze_options_in_any_order() {
        for argv in [
            &["ect-run", "--analyze", "--json", "job.err"][..],
            &["ect-run", "--analyze", "job.err", "--json"],
            &["ect-run", "--json", "--analyze", "job.err"],
            &[
                "ect-run",
                "--analyze",
                "--tail-size",
                "2MiB",
                "--json",
                "job.err",
            ],
        ] {
            let args = analyze_file_first(argv.iter().map(OsString::from).collect());
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.analyze, Some(PathBuf::from("job.err")), "{argv:?}");
            assert!(cli.json, "{argv:?}");
        }
        let args = analyze_file_first(
            ["ect-run", "--analyze", "--json"]
                .iter()
                .map(OsString::from)
                .collect(),
        );
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(cli.analyze, Some(PathBuf::from("-")));
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn command_after_double_dash() {
        let cli = Cli::try_parse_from(["ect-run", "--", "ls", "-l", "--all"]).unwrap();
        assert_eq!(cli.command, ["ls", "-l", "--all"]);
    }

    #[test]
    fn modes_exclude_each_other() {
        assert!(Cli::try_parse_from(["ect-run", "--consent", "--status"]).is_err());
        assert!(Cli::try_parse_from(["ect-run", "--consent", "--", "ls"]).is_err());
    }

    #[test]
    fn analyze_defaults_to_stdin() {
        let cli = Cli::try_parse_from(["ect-run", "--analyze"]).unwrap();
        assert_eq!(cli.analyze, Some(PathBuf::from("-")));
    }
}

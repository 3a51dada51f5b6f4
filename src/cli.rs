//! The raw command line, as clap parses it. Nothing here touches the file
//! system or the environment: [`crate::plan`] turns a [`Cli`] into a
//! validated plan before any work starts. Each value is checked by its
//! parser in [`crate::values`], so a bad one is a usage error in clap's
//! format.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueHint};
use regex::Regex;

use crate::destination::Destination;
use crate::values;

/// The three ways of use, shared by `--help` and a bare `ect-run`.
macro_rules! ways {
    () => {
        concat!(
            "Ways of use (`ect-process` in the design stands for any toolbox job):\n",
            "  ect-run -- python run_analysis.py   Run a toolbox job; report its failure if the\n",
            "                                      toolbox was involved and you have consented\n",
            "  ect-run --consent                   Ask once whether failures may be reported,\n",
            "                                      and store the answer in the config file\n",
            "  ect-run --test-failure              Fail on purpose inside toolbox code, to test\n",
            "                                      the whole path up to the reporting server\n",
        )
    };
}

const DEFAULT_TAIL_SIZE: &str = "1MiB";
const DEFAULT_CONNECT_TIMEOUT: &str = "3";
const DEFAULT_TIMEOUT: &str = "5";

/// What `ect-run` alone prints: the ways of use and the next step.
pub const SHORT_USAGE: &str = concat!(
    "ect-run: no command to run.\n\n",
    ways!(),
    "\nNext: `ect-run --status` shows your consent and where reports would go;\n",
    "`ect-run --help` lists every option.\n",
);

const EXAMPLES: &str = concat!(
    ways!(),
    "
More examples:
  ect-run -- papermill in.ipynb out.ipynb          A notebook run in batch
  ect-run -- jupyter nbconvert --execute nb.ipynb  The same with nbconvert
  ect-run -- xcube gen2 config.yml                 An xcube command
  srun ect-run -- python run_analysis.py           In a SLURM batch script
  ect-run --dry-run -- python run_analysis.py      Show the report instead of sending it
  ect-run --status                                 Consent, server, pending reports
  ect-run --history                                Failures recorded on this machine
  ect-run --analyze job.err --json                 What would be decided for a saved log

Nothing is ever sent without the consent stored by `ect-run --consent`, and
nothing at all when DO_NOT_TRACK=1. The command's output, input and exit
status are left exactly as they are."
);

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
        "send_pending", "analyze", "history", "completions", "command",
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

    /// List the failures recorded on this machine, newest first, one line
    /// per failure with how many runs hit it (see --all, --json).
    #[arg(long)]
    pub history: bool,

    /// With --history: one line per run instead of one per failure.
    #[arg(long, requires = "history")]
    pub all: bool,

    /// With --analyze: print one JSON object instead of a summary. With
    /// --history: one JSON object per line.
    #[arg(long)]
    pub json: bool,

    /// Print the report that would be sent (on stderr), and send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The reporting server [default: from the environment, the config file,
    /// else http://localhost:9898].
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url,
          value_parser = values::server_url)]
    pub server_url: Option<Destination>,

    /// Also report to a Sentry-protocol tracker (Sentry, GlitchTip,
    /// Bugsink): its project's DSN, https://KEY@HOST[:PORT][/PATH]/PROJECT
    /// [default: $ECT_RUN_SENTRY_DSN, else the config file's sentry_dsn].
    #[arg(long, value_name = "DSN", value_hint = ValueHint::Url,
          value_parser = values::sentry_dsn)]
    pub sentry_dsn: Option<Destination>,

    /// The config file [default: $ECT_RUN_CONFIG, else
    /// $XDG_CONFIG_HOME/ect-run/config.json].
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,

    /// A regular expression: a frame whose file path or function matches it
    /// counts as toolbox code, in addition to the built-in rules. Repeatable.
    #[arg(long = "toolbox-pattern", value_name = "REGEX", value_parser = values::regex)]
    pub toolbox_patterns: Vec<Regex>,

    /// How much of the command's stderr to keep for analysis, e.g. 1MiB,
    /// 512KiB, 2000000.
    #[arg(long, value_name = "SIZE", default_value = DEFAULT_TAIL_SIZE, value_parser = values::parse_size)]
    pub tail_size: usize,

    /// Seconds to wait for the server to accept a connection.
    #[arg(long, value_name = "SECONDS", default_value = DEFAULT_CONNECT_TIMEOUT, value_parser = values::seconds)]
    pub connect_timeout: Duration,

    /// Seconds a delivery may take in all, after which the report is kept
    /// on disk for later.
    #[arg(long, value_name = "SECONDS", default_value = DEFAULT_TIMEOUT, value_parser = values::seconds)]
    pub timeout: Duration,

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
            || self.history
    }
}

/// Parses the process's arguments; on a usage error, exits with status 2
/// after clap's message. A bare word where an option was expected is almost
/// always a command missing its `--`, so that gets a tip.
pub fn parse() -> Cli {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(cli) = just_a_command(&args) {
        return cli;
    }
    let args = analyze_file_first(args);
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

/// `ect-run -- COMMAND [ARGS...]`, the form of every supervised run: what
/// clap makes of it (no option, the defaults, the command), without
/// building clap's parser for all the options, which would be a sixth of
/// the time ect-run adds to a command's start (README, Benchmarks). Any
/// other form is clap's.
fn just_a_command(args: &[OsString]) -> Option<Cli> {
    let [_, dash, command @ ..] = args else {
        return None;
    };
    if dash != "--" || command.is_empty() {
        return None;
    }
    Some(Cli {
        consent: false,
        revoke_consent: false,
        status: false,
        test_failure: false,
        send_pending: false,
        analyze: None,
        history: false,
        all: false,
        json: false,
        dry_run: false,
        server_url: None,
        sentry_dsn: None,
        config: None,
        toolbox_patterns: Vec::new(),
        // The defaults below as values (the test holds them equal), not
        // parsed: parsing would page in code no other step of a run needs.
        tail_size: crate::capture::DEFAULT_TAIL_LIMIT,
        connect_timeout: Duration::from_secs(3),
        timeout: Duration::from_secs(5),
        completions: None,
        internal_raise_error: false,
        command: command.to_vec(),
    })
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

    /// The short cut for `ect-run -- COMMAND` makes what clap makes, and
    /// takes nothing else.
    #[test]
    fn just_a_command_is_what_clap_makes() {
        use std::os::unix::ffi::OsStringExt;
        let argvs: [Vec<OsString>; 4] = [
            ["ect-run", "--", "true"].map(OsString::from).to_vec(),
            [
                "ect-run", "--", "python", "-c", "x", "--help", "--", "--status",
            ]
            .map(OsString::from)
            .to_vec(),
            ["ect-run", "--", ""].map(OsString::from).to_vec(),
            vec![
                "ect-run".into(),
                "--".into(),
                OsString::from_vec(b"\xff\xfe".to_vec()),
            ],
        ];
        for argv in argvs {
            let fast = just_a_command(&argv).expect("taken");
            let clap = Cli::try_parse_from(&argv).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{argv:?}");
        }
        for argv in [
            &["ect-run", "--"][..],
            &["ect-run", "--status"],
            &["ect-run", "--dry-run", "--", "true"],
            &["ect-run", "true"],
            &["ect-run"],
        ] {
            let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
            assert!(just_a_command(&argv).is_none(), "{argv:?}");
        }
    }

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

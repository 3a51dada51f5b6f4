//! Asking for consent. The user is told what a report contains, where it
//! goes and how to revoke, and must type YES (any case, as the toolbox's
//! own reporter asks). At a terminal the question is an inquire prompt;
//! otherwise one line is read from standard input (`echo YES | ect-run
//! --consent`), and end of input means no.

use std::io::{self, BufRead, IsTerminal, Read};

use anyhow::Result;

/// The toolbox's own question (esa_climate_toolbox/util/reporting.py).
pub const QUESTION: &str = "Please enter YES below to consent to reporting.";

/// Longest answer read from a pipe; the rest is ignored.
const MAX_ANSWER: u64 = 4096;
/// How long to wait for a line on a non-terminal standard input.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What is sent and where, for the destinations listed (each already
/// described, credentials masked).
pub fn explanation(destinations: &[String]) -> String {
    let listed: String = destinations.iter().map(|d| format!("    {d}\n")).collect();
    format!(
        "\
ect-run can report failures of ESA Climate Toolbox commands to

{listed}
A report is sent only when a command run under ect-run fails inside the
toolbox's own code. It contains the toolbox version, the exception's class
and message, the traceback (file paths, line numbers, function names and
source lines), the program's name (not its arguments), the exit status, your
platform, the ect-run version and the time. Before anything is sent, your
home directory becomes ~, your user name is masked, and credentials in URLs,
tokens, keys and passwords are removed. Nothing else from the command's
output, input, arguments or environment is sent.

Preview a report with `ect-run --dry-run -- COMMAND`. Revoke at any time with
`ect-run --revoke-consent`, or set DO_NOT_TRACK=1 to turn all sending off.
"
    )
}

/// True when the answer, trimmed and lower-cased, is `yes`.
pub fn is_yes(answer: &str) -> bool {
    answer.trim().eq_ignore_ascii_case("yes")
}

/// Asks on the terminal, or reads one line when there is none.
pub fn ask(destinations: &[String]) -> Result<bool> {
    say_plain!("{}", explanation(destinations));
    if io::stdin().is_terminal() && io::stderr().is_terminal() {
        let answer = inquire::Text::new(QUESTION)
            .with_help_message("type YES to consent")
            .prompt();
        return match answer {
            Ok(a) => Ok(is_yes(&a)),
            Err(
                inquire::InquireError::OperationCanceled
                | inquire::InquireError::OperationInterrupted,
            ) => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("cannot ask for consent on the terminal")),
        };
    }
    say_plain!("{QUESTION}");
    // A pipe that never delivers a line must not hold a script for ever:
    // the reader gets a bounded wait, and silence means no.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = io::stdin()
            .lock()
            .take(MAX_ANSWER)
            .read_line(&mut line)
            .map(|_| line);
        let _ = tx.send(read);
    });
    match rx.recv_timeout(ANSWER_TIMEOUT) {
        Ok(read) => Ok(is_yes(&read?)),
        Err(_) => {
            say!("no answer within {} seconds", ANSWER_TIMEOUT.as_secs());
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_in_any_case() {
        for a in ["YES", "yes\n", " Yes \r\n"] {
            assert!(is_yes(a), "{a:?}");
        }
        for a in ["", "y", "no", "YES!", "yes please"] {
            assert!(!is_yes(a), "{a:?}");
        }
    }
}

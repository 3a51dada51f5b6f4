//! The `ect-run` binary: parse the command line, run, turn the outcome into
//! an exit status. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = ect_run::cli::parse();
    match ect_run::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // `{:#}` prints the context chain on one line: "what: why".
            eprintln!("ect-run: {err:#}");
            ExitCode::from(ect_run::app::exit_code_for(&err))
        }
    }
}

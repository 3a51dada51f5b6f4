//! The `ect-run` binary: parse the command line, run, turn the outcome into
//! an exit status. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = ect_run::cli::parse();
    match ect_run::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // Our output piped into `head` and closed: not an error worth a
            // word (ripgrep does the same).
            let broken_pipe = err
                .root_cause()
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            // `{:#}` prints the context chain on one line: "what: why".
            ect_run::say!("{err:#}");
            ExitCode::from(ect_run::app::exit_code_for(&err))
        }
    }
}

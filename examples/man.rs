//! Writes ect-run's man page, generated from the clap definition, to
//! standard output. Not part of the shipped binary; run by
//! `bash man/generate.sh`, and checked against `man/ect-run.1` by the
//! integration tests.

use std::io::Write;

use clap::CommandFactory;

fn main() -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(ect_run::cli::Cli::command()).render(&mut page)?;
    std::io::stdout().write_all(&page)
}

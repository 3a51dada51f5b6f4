//! The checked-in man page is what the CLI definition generates today.

use std::path::Path;

use clap::CommandFactory;

#[test]
fn man_page_is_current() {
    let mut page = Vec::new();
    clap_mangen::Man::new(ect_run::cli::Cli::command())
        .render(&mut page)
        .unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/ect-run.1");
    let checked_in = std::fs::read(path).unwrap_or_default();
    assert!(
        checked_in == page,
        "man/ect-run.1 is stale: regenerate it with `bash man/generate.sh`"
    );
}

//! Bad values on the command line are usage errors in clap's one format,
//! exit 2, before anything runs.

use predicates::prelude::*;

use crate::support::Env;

#[test]
fn bad_values_are_clap_usage_errors() {
    let cases = [
        (
            &["--timeout", "0"][..],
            "error: invalid value '0' for '--timeout <SECONDS>': expected a number of seconds greater than 0 and at most 3600\n",
        ),
        (
            &["--connect-timeout", "3601"][..],
            "error: invalid value '3601' for '--connect-timeout <SECONDS>': expected a number of seconds greater than 0 and at most 3600\n",
        ),
        (
            &["--tail-size", "1TiB"][..],
            "error: invalid value '1TiB' for '--tail-size <SIZE>': unknown unit \"tib\": use B, KiB, MiB or GiB\n",
        ),
        (
            &["--toolbox-pattern", "[z-a]"][..],
            "error: invalid value '[z-a]' for '--toolbox-pattern <REGEX>': invalid character class range, the start must be <= the end\n",
        ),
        (
            &["--server-url", "localhost:9898"][..],
            "error: invalid value 'localhost:9898' for '--server-url <URL>': ",
        ),
    ];
    let env = Env::new();
    let marker = env.path().join("ran");
    for (args, message) in cases {
        env.cmd()
            .args(args)
            .args(["--", "touch"])
            .arg(&marker)
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with(message));
        assert!(!marker.exists(), "{args:?}: the command ran");
    }
}

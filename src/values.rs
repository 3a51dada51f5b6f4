//! The values ect-run accepts on its command line: byte sizes, seconds,
//! regular expressions and server URLs. Each is a pure `&str → value`
//! function that clap uses as a value parser, so a bad value is a usage
//! error in clap's one format (`error: invalid value 'X' for '--flag': why`)
//! and exit status 2. The error text is only the "why".

use std::time::Duration;

use regex::Regex;

use crate::destination::Destination;

/// The longest wait a timeout may ask for: an hour.
const MAX_SECONDS: f64 = 3600.0;

/// A byte size: a whole number with an optional unit (B, K/KB/KiB,
/// M/MB/MiB, G/GB/GiB; all binary multiples, as memory is).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err("expected a number of bytes such as 1MiB or 65536".into());
    }
    let too_large = || "size too large".to_string();
    let n: u64 = num.parse().map_err(|_| too_large())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit {other:?}: use B, KiB, MiB or GiB")),
    };
    let bytes = n.checked_mul(mult).ok_or_else(too_large)?;
    usize::try_from(bytes).map_err(|_| too_large())
}

/// A timeout in seconds: a number greater than 0 and at most 3600
/// (fractions allowed).
pub fn seconds(s: &str) -> Result<Duration, String> {
    let expected = || "expected a number of seconds greater than 0 and at most 3600".to_string();
    let v: f64 = s.trim().parse().map_err(|_| expected())?;
    if !(v.is_finite() && v > 0.0 && v <= MAX_SECONDS) {
        return Err(expected());
    }
    Ok(Duration::from_secs_f64(v))
}

/// A regular expression (the `regex` crate's syntax).
pub fn regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| regex_why(&e))
}

/// What is wrong with a pattern, in one line. The regex crate's message
/// spans lines: a header, the pattern with carets under the fault, and
/// `error: what`; only the last says what, so that one is kept.
pub fn regex_why(e: &regex::Error) -> String {
    let text = e.to_string();
    let why = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("invalid regular expression");
    why.trim().to_string()
}

/// A reporting server URL: http or https, with a host; parsed into the
/// destination the rest of ect-run uses.
pub fn server_url(s: &str) -> Result<Destination, String> {
    Destination::toolbox(s)
}

/// A Sentry DSN, parsed into its destination.
pub fn sentry_dsn(s: &str) -> Result<Destination, String> {
    Destination::sentry(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let ok = [
            ("0", 0),
            ("65536", 65536),
            ("1MiB", 1 << 20),
            ("1M", 1 << 20),
            ("512KiB", 512 << 10),
            ("2 GiB", 2 << 30),
            ("10b", 10),
        ];
        for (s, want) in ok {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
        for bad in ["", "MiB", "1TiB", "-1", "1.5MiB", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_range_and_message() {
        assert_eq!(seconds("3"), Ok(Duration::from_secs(3)));
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(seconds("3600"), Ok(Duration::from_secs(3600)));
        for bad in ["0", "-1", "3601", "nan", "inf", "", "three"] {
            let err = seconds(bad).unwrap_err();
            assert_eq!(
                err, "expected a number of seconds greater than 0 and at most 3600",
                "{bad}"
            );
        }
    }

    #[test]
    fn regex_error_says_what() {
        let cases = [
            ("(", "unclosed group"),
            (
                "[z-a]",
                "invalid character class range, the start must be <= the end",
            ),
            ("(?z)", "unrecognized flag"),
        ];
        for (p, want) in cases {
            assert_eq!(regex(p).unwrap_err(), want, "{p}");
        }
        assert!(regex("esa_climate_toolbox/").is_ok());
    }

    #[test]
    fn urls() {
        assert!(server_url("http://localhost:9898").is_ok());
        assert!(server_url("https://reports.example.org/ect").is_ok());
        for bad in ["localhost:9898", "ftp://host/", "not a url", "http://", ""] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
    }
}

//! Issue 13's scrubbing tables (`tests/data/scrub-table.json`) and the places
//! each value is put in: shared by the scrubber's unit tests and the
//! integration tests against `--dry-run` and a recording server, so all
//! three run the same table.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Table {
    pub home: String,
    pub user: String,
    pub host: String,
    pub secrets: Vec<Secret>,
    pub kept: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Secret {
    pub text: String,
    #[serde(default)]
    hidden: Vec<String>,
}

impl Secret {
    /// What must not appear in anything sent.
    pub fn hidden(&self) -> Vec<&str> {
        if self.hidden.is_empty() {
            vec![self.text.as_str()]
        } else {
            self.hidden.iter().map(String::as_str).collect()
        }
    }

    /// Whether the value fits on one line of a traceback (a source line, a
    /// file path).
    pub fn one_line(&self) -> bool {
        !self.text.contains('\n')
    }
}

pub fn table() -> Table {
    serde_json::from_str(include_str!("../data/scrub-table.json")).expect("scrub-table.json")
}

/// A value in an exception's message: at the start of the first line, at
/// the start of a later line, after a tab, quoted, and in a URL.
pub fn message_forms(v: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "first line",
            format!("{v} while opening the cube\nsee the log"),
        ),
        (
            "later line",
            format!("opening the cube failed:\n{v}\nsee the log"),
        ),
        ("after a tab", format!("field:\t{v}")),
        ("quoted", format!("value '{v}' rejected, \"{v}\" too")),
        (
            "in a URL",
            format!("GET https://data.example.org/cci/get?q={v} failed"),
        ),
    ]
}

/// A value in a frame's source line.
pub fn source_form(v: &str) -> String {
    format!("ds = open_cube(\"{v}\", chunks=64)")
}

/// A value in a frame's file path (inside the toolbox, so that the frame
/// counts as the toolbox's).
pub fn path_form(v: &str) -> String {
    format!("/opt/envs/{v}/esa_climate_toolbox/ops/x.py")
}

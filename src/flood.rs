//! Flood control: a repeat of a failure already reported to a destination
//! within the dedup window is not sent again (and the next one sent after
//! the window says how many were held back), and no destination gets more
//! than `max_reports_per_day` reports in any 24 hours.
//!
//! The decision and its record are one step under a lock on a small state
//! file beside the outbox (`flood.json`), so any number of concurrent runs
//! with the same failure send it once. No network round trip is involved.
//! The file only ever holds the last 24 hours (and the dedup window), so it
//! stays small.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::destination::Destination;
use crate::files;

const FILE: &str = "flood.json";
const MAX_BYTES: u64 = 4 * 1024 * 1024;
const DAY: Duration = Duration::from_secs(24 * 3600);

pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_PER_DAY: u32 = 50;

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Zero turns deduplication off.
    pub dedup_window: Duration,
    pub max_per_day: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            dedup_window: DEFAULT_DEDUP_WINDOW,
            max_per_day: DEFAULT_MAX_PER_DAY,
        }
    }
}

/// What flood control decided for one report and one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it; it carries this many repeats held back since the last one
    /// sent (0: none).
    Send { repeats_suppressed: u64 },
    /// The same failure went to this destination `ago` ago.
    Repeat { ago: Duration },
    /// This destination had its day's reports.
    Ceiling { max: u32 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    destinations: BTreeMap<String, Dest>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Dest {
    /// When each report of the last 24 hours was sent (seconds).
    #[serde(default)]
    sent: Vec<u64>,
    #[serde(default)]
    fingerprints: BTreeMap<String, Seen>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Seen {
    /// When a report of this fingerprint was last sent (seconds).
    last_sent: u64,
    /// Repeats held back since.
    suppressed: u64,
}

#[derive(Debug, Clone)]
pub struct Flood {
    path: PathBuf,
}

impl Flood {
    pub fn new(state_dir: &Path) -> Flood {
        Flood {
            path: state_dir.join(FILE),
        }
    }

    /// Decides for `fingerprint` to `dest` now and records the decision.
    /// Should the state not be readable or writable, the report is sent:
    /// flood control must never lose a first report.
    pub fn decide(
        &self,
        dest: &Destination,
        fingerprint: &str,
        limits: Limits,
        now: SystemTime,
    ) -> Verdict {
        let Some(dir) = self.path.parent() else {
            return Verdict::Send {
                repeats_suppressed: 0,
            };
        };
        let _ = std::fs::create_dir_all(dir);
        let lock = files::lock_bounded(&dir.join(".flood.lock"), "the flood-control state");
        let mut state: State = files::read_regular(&self.path, MAX_BYTES)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let now_s = secs(now);
        let verdict = decide_in(&mut state, dest.key(), fingerprint, limits, now_s);
        if lock.is_ok()
            && let Ok(bytes) = serde_json::to_vec(&state)
        {
            let _ = files::write_atomic(&self.path, &bytes);
        }
        verdict
    }
}

fn decide_in(state: &mut State, key: &str, fingerprint: &str, limits: Limits, now: u64) -> Verdict {
    let window = limits.dedup_window.as_secs();
    let keep_from = now.saturating_sub(DAY.as_secs().max(window));
    // Forget what no rule can use any more.
    for d in state.destinations.values_mut() {
        d.sent.retain(|t| *t + DAY.as_secs() > now);
        d.fingerprints
            .retain(|_, s| s.last_sent >= keep_from || s.suppressed > 0);
    }
    state
        .destinations
        .retain(|_, d| !d.sent.is_empty() || !d.fingerprints.is_empty());
    let d = state.destinations.entry(key.to_string()).or_default();
    if window > 0
        && let Some(seen) = d.fingerprints.get_mut(fingerprint)
        && now < seen.last_sent + window
    {
        seen.suppressed += 1;
        return Verdict::Repeat {
            ago: Duration::from_secs(now.saturating_sub(seen.last_sent)),
        };
    }
    if d.sent.len() as u64 >= u64::from(limits.max_per_day) {
        if let Some(seen) = d.fingerprints.get_mut(fingerprint) {
            seen.suppressed += 1;
        }
        return Verdict::Ceiling {
            max: limits.max_per_day,
        };
    }
    d.sent.push(now);
    let seen = d.fingerprints.entry(fingerprint.to_string()).or_default();
    let repeats_suppressed = std::mem::take(&mut seen.suppressed);
    seen.last_sent = now;
    Verdict::Send { repeats_suppressed }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// "12 min ago", "3 s ago", "2 h ago".
pub fn ago(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s ago")
    } else if s < 3600 {
        format!("{} min ago", s / 60)
    } else {
        format!("{} h ago", s / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(n: u64) -> Verdict {
        Verdict::Send {
            repeats_suppressed: n,
        }
    }

    #[test]
    fn repeats_within_the_window_are_held_and_counted() {
        let mut s = State::default();
        let l = Limits::default();
        let t0 = 1_000_000;
        assert_eq!(decide_in(&mut s, "d", "fp", l, t0), send(0));
        for i in 1..=19 {
            assert_eq!(
                decide_in(&mut s, "d", "fp", l, t0 + i * 60),
                Verdict::Repeat {
                    ago: Duration::from_secs(i * 60)
                }
            );
        }
        assert_eq!(decide_in(&mut s, "d", "other", l, t0 + 100), send(0));
        assert_eq!(decide_in(&mut s, "e", "fp", l, t0 + 100), send(0));
        assert_eq!(decide_in(&mut s, "d", "fp", l, t0 + 3600), send(19));
        assert_eq!(
            decide_in(&mut s, "d", "fp", l, t0 + 3601),
            Verdict::Repeat {
                ago: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn a_zero_window_turns_dedup_off() {
        let mut s = State::default();
        let l = Limits {
            dedup_window: Duration::ZERO,
            ..Limits::default()
        };
        for i in 0..5 {
            assert_eq!(decide_in(&mut s, "d", "fp", l, 100 + i), send(0));
        }
    }

    #[test]
    fn the_ceiling_holds_for_any_24_hours() {
        let mut s = State::default();
        let l = Limits {
            dedup_window: Duration::ZERO,
            max_per_day: 3,
        };
        let t0 = 5_000_000;
        for i in 0..3 {
            assert_eq!(decide_in(&mut s, "d", &format!("f{i}"), l, t0 + i), send(0));
        }
        assert_eq!(
            decide_in(&mut s, "d", "f9", l, t0 + 10),
            Verdict::Ceiling { max: 3 }
        );
        assert_eq!(decide_in(&mut s, "other", "f9", l, t0 + 10), send(0));
        // A day after the first, one place is free again.
        assert_eq!(decide_in(&mut s, "d", "f9", l, t0 + 86_400), send(0));
        assert_eq!(
            decide_in(&mut s, "d", "f10", l, t0 + 86_400),
            Verdict::Ceiling { max: 3 }
        );
    }
}

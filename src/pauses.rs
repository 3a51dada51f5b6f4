//! Destinations not to be tried until a time: one that asked us to wait
//! (`Retry-After`, a tracker's rate limit) or did not answer in time. Kept
//! in one small JSON file beside the outbox, keyed by
//! [`Destination::key`], so every spelling of a URL shares its pause and
//! later runs respect it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::destination::Destination;
use crate::files;

const PAUSE_FILE: &str = "paused.json";
const MAX_BYTES: u64 = 256 * 1024;

/// How long a destination that did not answer in time is left alone. A
/// blackholed server would otherwise cost every run a full timeout (think
/// of a batch job of a thousand short commands); a refused connection or an
/// error status is quick and pauses nothing.
pub const TIMEOUT_PAUSE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    /// Seconds since the Unix epoch.
    until: u64,
    reason: String,
}

/// Delivery to a destination is paused until `until`, for `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub until: SystemTime,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Pauses {
    path: PathBuf,
}

impl Pauses {
    pub fn new(state_dir: &Path) -> Pauses {
        Pauses {
            path: state_dir.join(PAUSE_FILE),
        }
    }

    fn load(&self) -> BTreeMap<String, Stored> {
        files::read_regular(&self.path, MAX_BYTES)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The pause in force for `dest` now, if any.
    pub fn get(&self, dest: &Destination) -> Option<Pause> {
        let stored = self.load().remove(dest.key())?;
        let until = UNIX_EPOCH + Duration::from_secs(stored.until);
        (until > SystemTime::now()).then_some(Pause {
            until,
            reason: stored.reason,
        })
    }

    /// Pauses `dest` until `until`; pauses that are over are forgotten.
    pub fn set(&self, dest: &Destination, until: SystemTime, reason: &str) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let Ok(_lock) = files::lock_bounded(&dir.join(".pauses.lock"), "the pause list") else {
            return;
        };
        let now_secs = secs(SystemTime::now());
        let mut map = self.load();
        map.retain(|_, p| p.until > now_secs);
        map.insert(
            dest.key().to_string(),
            Stored {
                until: secs(until),
                reason: reason.to_string(),
            },
        );
        if let Ok(bytes) = serde_json::to_vec_pretty(&map) {
            let _ = files::write_atomic(&self.path, &bytes);
        }
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_share_a_pause_and_old_pauses_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pauses::new(dir.path());
        let a = Destination::toolbox("http://host:1").unwrap();
        let b = Destination::toolbox("http://HOST:1/").unwrap();
        assert!(p.get(&a).is_none());
        p.set(
            &a,
            SystemTime::now() + Duration::from_secs(60),
            "asked to wait",
        );
        assert_eq!(p.get(&b).unwrap().reason, "asked to wait");
        p.set(&a, SystemTime::now() - Duration::from_secs(1), "over");
        assert!(p.get(&b).is_none());
    }
}

//! Reports kept on disk because they could not be delivered yet, and the
//! sending of them later.
//!
//! Each report is its own file, `<nanoseconds>-<pid>.json`, holding the
//! destination URL and the report; files are written atomically and the
//! directory is bounded (the oldest go first). A sender claims a file with
//! an exclusive lock and checks it still exists under its name before
//! sending, and deletes it while still holding the lock: so with any number
//! of ect-run processes at once, each report is sent once. (If the server
//! took a report but its answer was lost, it is sent again later; the
//! `fingerprint` key lets a server group such duplicates.)

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use crate::config::write_atomic;
use crate::deliver::Outcome;

/// Reports kept at most; past that the oldest are dropped.
pub const MAX_REPORTS: usize = 100;
/// Per server URL: until when not to try it, and why.
const PAUSE_FILE: &str = "paused.json";
/// How long a server that did not answer in time is left alone. A
/// blackholed server would otherwise cost every run a full timeout (think
/// of a batch job of a thousand short commands); a refused connection or an
/// error status is quick and pauses nothing.
pub const TIMEOUT_PAUSE: Duration = Duration::from_secs(300);

/// Delivery to a server is paused: it sent `Retry-After`, or it did not
/// answer in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub until: SystemTime,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

/// One kept report.
#[derive(Debug)]
pub struct Pending {
    pub url: String,
    pub report: Value,
}

/// What a flush did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub delivered: usize,
    pub kept: usize,
    /// Of those kept: not tried because their server is paused.
    pub paused: usize,
    /// Of those kept: not tried because consent does not cover their URL.
    pub not_consented: usize,
}

impl Outbox {
    pub fn new(dir: PathBuf) -> Outbox {
        Outbox { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps `report` for `url`; returns its file. Drops the oldest reports
    /// past [`MAX_REPORTS`].
    pub fn put(&self, url: &str, report: &Value) -> Result<PathBuf> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create outbox {}", self.dir.display()))?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path = self
            .dir
            .join(format!("{nanos:024}-{}.json", std::process::id()));
        let body = json!({ "url": url, "report": report });
        let text = serde_json::to_vec_pretty(&body).context("cannot encode report")?;
        write_atomic(&path, &text)
            .with_context(|| format!("cannot write report to {}", path.display()))?;
        let all = self.list();
        if all.len() > MAX_REPORTS {
            for old in &all[..all.len() - MAX_REPORTS] {
                let _ = fs::remove_file(old);
            }
        }
        Ok(path)
    }

    /// Kept report files, oldest first.
    pub fn list(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(".json") && name.as_bytes().first().is_some_and(u8::is_ascii_digit)
            })
            .collect();
        files.sort();
        files
    }

    /// Sends kept reports, oldest first, for which `may_send(url)` holds.
    /// After the first failure for a URL, the rest for it wait for another
    /// run: one dead server costs one timeout, not one per report.
    pub fn flush(
        &self,
        may_send: impl Fn(&str) -> bool,
        send: impl Fn(&str, &[u8]) -> Outcome,
    ) -> Flushed {
        let mut done = Flushed::default();
        let mut failed_urls: Vec<String> = Vec::new();
        for path in self.list() {
            let claimed = match Claim::take(&path) {
                Some(c) => c,
                None => continue, // another ect-run has it, or it is gone
            };
            let Some(pending) = claimed.read() else {
                continue;
            };
            if self.paused(&pending.url).is_some() {
                done.kept += 1;
                done.paused += 1;
                continue;
            }
            if !may_send(&pending.url) {
                done.kept += 1;
                done.not_consented += 1;
                continue;
            }
            if failed_urls.contains(&pending.url) {
                done.kept += 1;
                continue;
            }
            let body = serde_json::to_vec(&pending.report).unwrap_or_default();
            match send(&pending.url, &body) {
                Outcome::Delivered => {
                    claimed.remove();
                    done.delivered += 1;
                }
                failed @ Outcome::Failed { .. } => {
                    self.note_failure(&pending.url, &failed);
                    failed_urls.push(pending.url);
                    done.kept += 1;
                }
            }
        }
        done
    }

    /// Sends one kept report now (the report just made by this run).
    pub fn send_one(
        &self,
        path: &Path,
        send: impl FnOnce(&str, &[u8]) -> Outcome,
    ) -> Option<Outcome> {
        let claimed = Claim::take(path)?;
        let pending = claimed.read()?;
        let body = serde_json::to_vec(&pending.report).unwrap_or_default();
        let outcome = send(&pending.url, &body);
        match &outcome {
            Outcome::Delivered => claimed.remove(),
            failed => self.note_failure(&pending.url, failed),
        }
        Some(outcome)
    }

    /// Whether delivery to `url` is paused now, until when and why.
    pub fn paused(&self, url: &str) -> Option<Pause> {
        let map = self.pauses();
        let entry = map.get(url)?;
        let until = UNIX_EPOCH + Duration::from_secs(entry.get("until")?.as_u64()?);
        let reason = entry.get("reason")?.as_str()?.to_string();
        (until > SystemTime::now()).then_some(Pause { until, reason })
    }

    fn pauses(&self) -> Map<String, Value> {
        fs::read_to_string(self.dir.join(PAUSE_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Pauses a server that asked us to wait or did not answer in time.
    fn note_failure(&self, url: &str, outcome: &Outcome) {
        let Outcome::Failed {
            retry_after,
            timed_out,
            ..
        } = outcome
        else {
            return;
        };
        let (until, reason) = match (retry_after, timed_out) {
            (Some(t), _) => (*t, "the server asked to wait"),
            (None, true) => (
                SystemTime::now() + TIMEOUT_PAUSE,
                "the server did not answer in time",
            ),
            (None, false) => return,
        };
        let mut map = self.pauses();
        let now = SystemTime::now();
        // Forget pauses that are over.
        map.retain(|_, v| {
            v.get("until")
                .and_then(Value::as_u64)
                .is_some_and(|s| UNIX_EPOCH + Duration::from_secs(s) > now)
        });
        let secs = until
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        map.insert(url.to_string(), json!({ "until": secs, "reason": reason }));
        let _ = write_atomic(
            &self.dir.join(PAUSE_FILE),
            &serde_json::to_vec(&map).unwrap_or_default(),
        );
    }
}

/// An exclusively locked report file that is still in the outbox.
struct Claim {
    path: PathBuf,
    file: File,
}

impl Claim {
    fn take(path: &Path) -> Option<Claim> {
        let file = OpenOptions::new().read(true).write(true).open(path).ok()?;
        file.try_lock().ok()?;
        // Another sender may have sent and removed it between our open and
        // our lock: then the name is gone (or is another file) and the
        // inode we hold is an orphan.
        let held = file.metadata().ok()?;
        let current = fs::metadata(path).ok()?;
        if held.ino() != current.ino() || held.dev() != current.dev() {
            return None;
        }
        Some(Claim {
            path: path.to_path_buf(),
            file,
        })
    }

    fn read(&self) -> Option<Pending> {
        let text = std::io::read_to_string(&self.file).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        Some(Pending {
            url: v.get("url")?.as_str()?.to_string(),
            report: v.get("report")?.clone(),
        })
    }

    /// Removes the file while the lock is still held.
    fn remove(self) {
        let _ = fs::remove_file(&self.path);
        drop(self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn put_list_flush() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().join("outbox"));
        ob.put("http://a/", &json!({"n": 1})).unwrap();
        ob.put("http://a/", &json!({"n": 2})).unwrap();
        assert_eq!(ob.list().len(), 2);
        let sent = AtomicUsize::new(0);
        let res = ob.flush(
            |_| true,
            |_, _| {
                sent.fetch_add(1, Ordering::SeqCst);
                Outcome::Delivered
            },
        );
        assert_eq!((res.delivered, res.kept), (2, 0));
        assert!(ob.list().is_empty());
    }

    #[test]
    fn one_failure_per_url_and_retry_after() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().to_path_buf());
        for n in 0..3 {
            ob.put("http://down/", &json!({ "n": n })).unwrap();
        }
        let tries = AtomicUsize::new(0);
        let later = SystemTime::now() + Duration::from_secs(60);
        let res = ob.flush(
            |_| true,
            |_, _| {
                tries.fetch_add(1, Ordering::SeqCst);
                Outcome::Failed {
                    reason: "x".into(),
                    retry_after: Some(later),
                    timed_out: false,
                }
            },
        );
        assert_eq!((tries.load(Ordering::SeqCst), res.kept), (1, 3));
        let pause = ob.paused("http://down/").unwrap();
        assert_eq!(pause.reason, "the server asked to wait");
        // While the server asked us to wait, nothing is tried.
        let res = ob.flush(|_| true, |_, _| panic!("must not send"));
        assert_eq!(res.kept, 3);
    }

    #[test]
    fn a_timeout_pauses_a_quick_failure_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().to_path_buf());
        ob.put("http://refused/", &json!({})).unwrap();
        ob.put("http://blackhole/", &json!({})).unwrap();
        ob.flush(
            |_| true,
            |url, _| Outcome::Failed {
                reason: "x".into(),
                retry_after: None,
                timed_out: url.contains("blackhole"),
            },
        );
        assert!(ob.paused("http://refused/").is_none());
        let pause = ob.paused("http://blackhole/").unwrap();
        assert!(pause.until > SystemTime::now() + TIMEOUT_PAUSE - Duration::from_secs(5));
    }

    #[test]
    fn bounded() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().to_path_buf());
        for n in 0..MAX_REPORTS + 5 {
            ob.put("http://a/", &json!({ "n": n })).unwrap();
        }
        assert_eq!(ob.list().len(), MAX_REPORTS);
    }
}

//! Reports kept on disk until they are delivered: storage only (put, list,
//! claim, remove, quarantine); what to send and when is
//! [`crate::deliver`]'s.
//!
//! Each report is its own file `<nanoseconds>-<pid>-<n>-<tag>.json`
//! holding its destination and its payload (the tag names the destination
//! in short, see [`tag`]). A report is written to `.tmp-<name>`
//! (locked while written), synced, renamed into place and the directory
//! synced: once [`Outbox::put`] returns, the report survives `kill -9` and a
//! power cut. A temp file left by a writer that died is completed (if it
//! holds a whole report) or removed by the next listing, never stranded.
//!
//! A sender claims a file with an exclusive lock and checks it still exists
//! under its name before sending, and removes it while still holding the
//! lock: with any number of ect-run processes at once, a report is sent
//! once (or, if the server's answer was lost, again later: at-least-once).
//!
//! Invariants: only regular files of at most [`MAX_REPORT_BYTES`] are read,
//! symlinks are never followed; past [`MAX_REPORTS`] the oldest report by
//! write time is dropped and counted, never the one just written; a report
//! a server will never take goes to `rejected/` with the server's answer.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::destination::{self, Destination};
use crate::files::{self, ReadError};

/// Reports kept at most; past that the oldest are dropped.
pub const MAX_REPORTS: usize = 100;
/// A kept report larger than this is not read (ect-run writes < 1 MiB).
pub const MAX_REPORT_BYTES: u64 = 2 * 1024 * 1024;
/// A temp file that does not hold a whole report is removed once it is
/// this old (a younger one may still be being written).
const STALE_TMP: Duration = Duration::from_secs(10);
const TMP_PREFIX: &str = ".tmp-";
const REJECTED_DIR: &str = "rejected";
const DROPPED_FILE: &str = "dropped.count";

/// One kept report, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The destination's kind (`toolbox`).
    pub kind: String,
    /// The destination URL as given, credentials included (the file is
    /// readable by its owner only).
    pub url: String,
    /// When the report was made, RFC 3339.
    #[serde(default)]
    pub written_at: String,
    /// What is sent, in the destination's own form.
    pub payload: serde_json::Value,
    /// Set when the report was set aside: the server's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// The form written by ect-run before 0.2: toolbox reports only.
#[derive(Deserialize)]
struct LegacyEntry {
    url: String,
    report: serde_json::Value,
}

impl Entry {
    pub fn new(dest: &Destination, payload: serde_json::Value, written_at: String) -> Entry {
        Entry {
            kind: dest.kind().as_str().to_string(),
            url: dest.expose().to_string(),
            written_at,
            payload,
            rejected: None,
        }
    }

    pub fn destination(&self) -> Result<Destination, String> {
        let kind = destination::Kind::parse(&self.kind)
            .ok_or_else(|| format!("unknown destination kind {:?}", self.kind))?;
        Destination::parse(kind, &self.url)
    }

    fn decode(bytes: &[u8]) -> Result<Entry, String> {
        if let Ok(e) = serde_json::from_slice::<Entry>(bytes) {
            return Ok(e);
        }
        match serde_json::from_slice::<LegacyEntry>(bytes) {
            Ok(old) => Ok(Entry {
                kind: destination::Kind::Toolbox.as_str().to_string(),
                url: old.url,
                written_at: String::new(),
                payload: old.report,
                rejected: None,
            }),
            Err(e) => Err(format!("not a kept report: {e}")),
        }
    }
}

/// What [`Outbox::put`] did besides keeping the report.
#[derive(Debug)]
pub struct Put {
    pub path: PathBuf,
    /// Older reports dropped to stay within [`MAX_REPORTS`]: when each was
    /// written, and for where.
    pub dropped: Vec<String>,
}

/// The kept reports, oldest first, and what was found but not read.
#[derive(Debug, Default)]
pub struct Listing {
    pub reports: Vec<PathBuf>,
    /// Files that are not reports ect-run will read: a FIFO, a symlink, a
    /// file too large or not a report; with why.
    pub skipped: Vec<(PathBuf, String)>,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

impl Outbox {
    pub fn new(dir: PathBuf) -> Outbox {
        Outbox { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn rejected_dir(&self) -> PathBuf {
        self.dir.join(REJECTED_DIR)
    }

    fn create_dir(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create outbox {}", self.dir.display()))
    }

    /// Keeps `entry` durably; returns its file. Drops the oldest reports
    /// past [`MAX_REPORTS`], never this one.
    pub fn put(&self, entry: &Entry) -> Result<Put> {
        self.create_dir()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!(
            "{nanos:024}-{}-{}-{}.json",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed),
            entry
                .destination()
                .map_or_else(|_| "x".to_string(), |d| tag(&d))
        );
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{name}"));
        let text = serde_json::to_vec_pretty(entry).context("cannot encode report")?;
        write_locked_then_rename(&tmp, &path, &text)
            .with_context(|| format!("cannot write report to {}", path.display()))?;
        files::sync_dir(&self.dir);
        let dropped = self.enforce_cap(&path);
        Ok(Put { path, dropped })
    }

    /// Drops the oldest reports (by write time) past the cap, except `keep`.
    fn enforce_cap(&self, keep: &Path) -> Vec<String> {
        let reports = self.list().reports;
        let excess = reports.len().saturating_sub(MAX_REPORTS);
        let mut dropped = Vec::new();
        for old in reports.iter().filter(|p| *p != keep).take(excess) {
            let what = match self.claim(old) {
                Some(c) => {
                    let what = c
                        .read()
                        .map(|e| {
                            let dest = e
                                .destination()
                                .map_or_else(|_| e.url.clone(), |d| d.to_string());
                            format!("written {} for {dest}", e.written_at)
                        })
                        .unwrap_or_else(|_| format!("{}", old.display()));
                    c.remove();
                    what
                }
                None => continue, // being sent right now
            };
            dropped.push(what);
        }
        if !dropped.is_empty() {
            self.add_dropped(dropped.len() as u64);
        }
        dropped
    }

    /// How many reports were dropped because the outbox was full, ever.
    pub fn dropped_count(&self) -> u64 {
        files::read_regular(&self.dir.join(DROPPED_FILE), 64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn add_dropped(&self, n: u64) {
        let Ok(_lock) = files::lock_bounded(&self.dir.join(".lock"), "the outbox") else {
            return;
        };
        let total = self.dropped_count() + n;
        let _ = files::write_atomic(
            &self.dir.join(DROPPED_FILE),
            format!("{total}\n").as_bytes(),
        );
    }

    /// Kept reports, oldest first by write time. Completes or removes temp
    /// files left by writers that died.
    pub fn list(&self) -> Listing {
        let mut listing = Listing::default();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return listing;
        };
        let mut found: Vec<(SystemTime, PathBuf)> = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(final_name) = name.strip_prefix(TMP_PREFIX) {
                if let Some(done) = self.recover_tmp(&path, final_name) {
                    found.push((modified(&done), done));
                }
                continue;
            }
            let is_report =
                name.ends_with(".json") && name.as_bytes().first().is_some_and(u8::is_ascii_digit);
            if !is_report {
                continue;
            }
            // symlink_metadata: a symlink is reported, never followed.
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_file() && m.len() <= MAX_REPORT_BYTES => {
                    found.push((m.modified().unwrap_or(UNIX_EPOCH), path));
                }
                Ok(m) if m.file_type().is_file() => listing
                    .skipped
                    .push((path, ReadError::TooLarge(m.len()).to_string())),
                Ok(_) => listing.skipped.push((
                    path,
                    "it is not a regular file (a FIFO, link or device)".to_string(),
                )),
                Err(_) => {}
            }
        }
        found.sort();
        listing.reports = found.into_iter().map(|(_, p)| p).collect();
        listing
    }

    /// A temp file whose writer is gone: renamed into place if it holds a
    /// whole report, removed if it does not and is stale. Returns the
    /// completed report's path.
    fn recover_tmp(&self, tmp: &Path, final_name: &str) -> Option<PathBuf> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(tmp)
            .ok()?;
        // The writer holds the lock until its rename: a lock we can take
        // means the writer is gone (or has not locked yet: the file is
        // then empty and young, and is left alone).
        file.try_lock().ok()?;
        let meta = file.metadata().ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        let whole = meta.len() <= MAX_REPORT_BYTES
            && files::read_bounded(&file, MAX_REPORT_BYTES)
                .ok()
                .is_some_and(|b| Entry::decode(&b).is_ok());
        if whole {
            let path = self.dir.join(final_name);
            fs::rename(tmp, &path).ok()?;
            files::sync_dir(&self.dir);
            return Some(path);
        }
        let age = SystemTime::now()
            .duration_since(meta.modified().unwrap_or(UNIX_EPOCH))
            .unwrap_or_default();
        if age > STALE_TMP {
            let _ = fs::remove_file(tmp);
        }
        None
    }

    /// Takes `path` for sending: `None` if another process has it or it is
    /// gone.
    pub fn claim(&self, path: &Path) -> Option<Claim> {
        Claim::take(path)
    }

    /// Reports set aside because their server will never take them.
    pub fn rejected(&self) -> Vec<(PathBuf, Option<Entry>)> {
        let Ok(entries) = fs::read_dir(self.rejected_dir()) else {
            return Vec::new();
        };
        let mut all: Vec<(PathBuf, Option<Entry>)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let entry = files::read_regular(&p, MAX_REPORT_BYTES)
                    .ok()
                    .and_then(|b| Entry::decode(&b).ok());
                (p, entry)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// A short name for a destination, in each kept report's file name, so a
/// flush can pass over the reports of a paused or failing destination
/// without opening them.
pub fn tag(dest: &Destination) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(dest.kind().as_str());
    h.update([0]);
    h.update(dest.key());
    h.finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The destination tag in a kept report's file name, if it has one (files
/// written before tags existed have none).
pub fn tag_of(path: &Path) -> Option<&str> {
    let stem = path.file_stem()?.to_str()?;
    let t = stem.rsplit('-').next()?;
    (stem.split('-').count() == 4 && t.len() == 8).then_some(t)
}

fn modified(path: &Path) -> SystemTime {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(UNIX_EPOCH)
}

/// Writes `bytes` to `tmp` under an exclusive lock, syncs, and renames it
/// to `path` before unlocking: a reader that can lock the temp file knows
/// its writer is gone.
fn write_locked_then_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)?;
    file.lock()?;
    let result = (|| {
        // One write call: a process killed at any moment leaves an empty
        // file or a whole one, and a whole one is completed by the next run.
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// An exclusively locked report file that is still in the outbox.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    file: File,
}

impl Claim {
    fn take(path: &Path) -> Option<Claim> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .ok()?;
        file.try_lock().ok()?;
        // Another sender may have sent and removed it between our open and
        // our lock: then the name is gone (or is another file) and the
        // inode we hold is an orphan.
        let held = file.metadata().ok()?;
        let current = fs::symlink_metadata(path).ok()?;
        if !held.file_type().is_file() || held.ino() != current.ino() || held.dev() != current.dev()
        {
            return None;
        }
        Some(Claim {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read(&self) -> Result<Entry, String> {
        let bytes = files::read_bounded(&self.file, MAX_REPORT_BYTES).map_err(|e| e.to_string())?;
        Entry::decode(&bytes)
    }

    /// Removes the file while the lock is still held.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            files::sync_dir(dir);
        }
        drop(self.file);
    }

    /// Moves the report to `rejected/`, noting the server's answer, so it
    /// no longer blocks the others. Returns where it went.
    pub fn quarantine(self, entry: &mut Entry, answer: &str) -> Result<PathBuf> {
        let dir = self
            .path
            .parent()
            .map(|p| p.join(REJECTED_DIR))
            .unwrap_or_else(|| PathBuf::from(REJECTED_DIR));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        entry.rejected = Some(answer.to_string());
        let target = dir.join(self.path.file_name().unwrap_or_default());
        let text = serde_json::to_vec_pretty(entry).context("cannot encode report")?;
        files::write_atomic(&target, &text)
            .with_context(|| format!("cannot write {}", target.display()))?;
        self.remove();
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dest(url: &str) -> Destination {
        Destination::toolbox(url).unwrap()
    }

    fn entry(url: &str, n: usize) -> Entry {
        Entry::new(&dest(url), json!({ "n": n }), format!("t{n}"))
    }

    #[test]
    fn put_list_claim_remove() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().join("outbox"));
        let a = ob.put(&entry("http://a/", 1)).unwrap();
        ob.put(&entry("http://a/", 2)).unwrap();
        let listed = ob.list().reports;
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0], a.path);
        let c = ob.claim(&a.path).unwrap();
        // Held: nobody else can take it.
        assert!(ob.claim(&a.path).is_none());
        assert_eq!(c.read().unwrap().payload, json!({"n": 1}));
        c.remove();
        assert_eq!(ob.list().reports.len(), 1);
    }

    #[test]
    fn the_cap_drops_the_oldest_by_write_time_never_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().to_path_buf());
        for n in 0..MAX_REPORTS {
            ob.put(&entry("http://a/", n)).unwrap();
        }
        // A file whose name sorts last but that is the oldest.
        let odd = dir.path().join("999999999999999999999999-1-0.json");
        fs::write(&odd, serde_json::to_vec(&entry("http://a/", 999)).unwrap()).unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(&odd)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let put = ob.put(&entry("http://a/", 1000)).unwrap();
        assert_eq!(put.dropped.len(), 2, "{:?}", put.dropped);
        assert!(!odd.exists());
        assert!(put.path.exists());
        assert_eq!(ob.list().reports.len(), MAX_REPORTS);
        assert_eq!(ob.dropped_count(), 2);
    }

    #[test]
    fn a_whole_temp_file_is_completed_a_stale_broken_one_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().to_path_buf());
        let whole = dir.path().join(".tmp-000000000000000000000001-1-0.json");
        fs::write(&whole, serde_json::to_vec(&entry("http://a/", 1)).unwrap()).unwrap();
        let broken = dir.path().join(".tmp-000000000000000000000002-1-0.json");
        fs::write(&broken, b"{\"kind\": \"tool").unwrap();
        let young_broken = dir.path().join(".tmp-000000000000000000000003-1-0.json");
        fs::write(&young_broken, b"").unwrap();
        File::options()
            .write(true)
            .open(&broken)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        let listed = ob.list().reports;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].ends_with("000000000000000000000001-1-0.json"));
        assert!(!whole.exists() && !broken.exists());
        assert!(young_broken.exists(), "may still be being written");
    }

    #[test]
    fn odd_files_are_skipped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().to_path_buf());
        let target = dir.path().join("elsewhere");
        fs::write(&target, b"{}").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("1-link.json")).unwrap();
        let big = dir.path().join("2-big.json");
        File::create(&big)
            .unwrap()
            .set_len(MAX_REPORT_BYTES + 1)
            .unwrap();
        let l = ob.list();
        assert!(l.reports.is_empty());
        assert_eq!(l.skipped.len(), 2);
    }

    #[test]
    fn quarantine_keeps_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::new(dir.path().to_path_buf());
        let put = ob.put(&entry("http://a/", 1)).unwrap();
        let c = ob.claim(&put.path).unwrap();
        let mut e = c.read().unwrap();
        c.quarantine(&mut e, "HTTP 400 Bad Request").unwrap();
        assert!(ob.list().reports.is_empty());
        let rejected = ob.rejected();
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            rejected[0].1.as_ref().unwrap().rejected.as_deref(),
            Some("HTTP 400 Bad Request")
        );
    }

    #[test]
    fn legacy_entries_are_read() {
        let e = Entry::decode(br#"{"url": "http://x:1", "report": {"a": 1}}"#).unwrap();
        assert_eq!(e.destination().unwrap(), dest("http://x:1/"));
        assert_eq!(e.payload, json!({"a": 1}));
    }
}

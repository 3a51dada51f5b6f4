//! The local record of failed runs (`history.jsonl` beside the outbox):
//! one JSON object per line, appended under a lock so concurrent runs never
//! interleave, bounded to the newest entries past a cap, and read back by
//! `ect-run --history`. A damaged line is skipped with one warning.
//!
//! The entry's fields are a stable interface (README "--history --json").

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files;

const FILE: &str = "history.jsonl";
/// No entry is shorter than this: below cap × this many bytes the file
/// cannot hold more than the cap, and its lines are not counted.
const MIN_ENTRY_BYTES: u64 = 150;
/// Entries kept at most by default; past it the oldest go first.
pub const DEFAULT_CAP: usize = 10_000;
/// The history is not read past this size (a cap of 10 000 entries is a
/// few MiB).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One failed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub time: String,
    /// The program's name (never its arguments).
    pub command: String,
    /// As a shell shows it: 128+N for death by signal N.
    pub exit_status: u8,
    /// `python-traceback`, `python-fatal`, `rust-panic`, `signal`, or
    /// `none` when no failure was found in the output.
    pub kind: String,
    pub class: String,
    /// The message's first line, scrubbed.
    pub message: String,
    pub fingerprint: String,
    pub toolbox_involved: bool,
    /// What became of the report, per destination (empty when nothing was
    /// to be reported).
    pub destinations: Vec<Fate>,
}

/// What became of a report for one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fate {
    /// The destination, credentials masked.
    pub destination: String,
    /// `delivered`, `kept`, `rejected`, `suppressed-repeat`,
    /// `suppressed-ceiling`, `not-consented`, `do-not-track`, `dry-run`,
    /// `lost`.
    pub outcome: String,
    /// Why, in words, where there is more to say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
    cap: usize,
}

/// The readable entries, oldest first, and how many lines were damaged.
#[derive(Debug, Default)]
pub struct Read {
    pub entries: Vec<Entry>,
    pub damaged: usize,
}

impl History {
    pub fn new(state_dir: &Path) -> History {
        History {
            path: state_dir.join(FILE),
            cap: DEFAULT_CAP,
        }
    }

    pub fn with_cap(mut self, cap: usize) -> History {
        self.cap = cap.max(1);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> PathBuf {
        files::parent_dir(&self.path)
    }

    /// Appends `entry` as one line; past the cap, the oldest entries go.
    pub fn append(&self, entry: &Entry) -> anyhow::Result<()> {
        use anyhow::Context;
        let dir = self.dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let _lock = files::lock_bounded(&dir.join(".history.lock"), "the history")?;
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        if !file.metadata()?.file_type().is_file() {
            anyhow::bail!("{} is not a regular file", self.path.display());
        }
        // One write of a whole line: readers never see half of one. Not
        // synced: the history is a convenience, and a sync would cost every
        // failing run milliseconds.
        file.write_all(&line)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        // Counting lines only once the file could hold more than the cap
        // keeps an append cheap; a trim then keeps nine tenths of the cap.
        let len = file.metadata()?.len();
        if len > (self.cap as u64).saturating_mul(MIN_ENTRY_BYTES) {
            self.trim_if_over()?;
        }
        Ok(())
    }

    /// Keeps the newest nine tenths of the cap when the file holds more
    /// than the cap, so a rewrite is needed once per tenth of the cap
    /// appended, not at every append.
    fn trim_if_over(&self) -> anyhow::Result<()> {
        let bytes = files::read_regular(&self.path, MAX_BYTES)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", self.path.display()))?;
        let count = memchr::memchr_iter(b'\n', &bytes).count();
        if count <= self.cap {
            return Ok(());
        }
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let keep = (self.cap - self.cap / 10).max(1);
        let from = lines.len().saturating_sub(keep);
        let mut out = Vec::with_capacity(bytes.len());
        for l in &lines[from..] {
            out.extend_from_slice(l);
            out.push(b'\n');
        }
        files::write_atomic(&self.path, &out)?;
        Ok(())
    }

    /// Every readable entry, oldest first.
    pub fn read(&self) -> anyhow::Result<Read> {
        let bytes = match files::read_regular(&self.path, MAX_BYTES) {
            Ok(b) => b,
            Err(files::ReadError::Missing) => return Ok(Read::default()),
            Err(e) => anyhow::bail!("cannot read the history {}: {e}", self.path.display()),
        };
        let mut read = Read::default();
        for line in bytes.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Entry>(line) {
                Ok(e) => read.entries.push(e),
                Err(_) => read.damaged += 1,
            }
        }
        Ok(read)
    }
}

/// One failure and its runs, for the grouped view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group<'a> {
    pub count: usize,
    pub first_time: &'a str,
    #[serde(flatten)]
    pub latest: &'a Entry,
}

/// Groups entries by fingerprint (or, with none, by kind and class),
/// newest group first; each group shows its latest run.
pub fn group(entries: &[Entry]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in entries.iter().rev() {
        let key = if e.fingerprint.is_empty() {
            format!("{}\0{}", e.kind, e.class)
        } else {
            e.fingerprint.clone()
        };
        match index.get(&key) {
            Some(&i) => {
                groups[i].count += 1;
                groups[i].first_time = &e.time;
            }
            None => {
                index.insert(key, groups.len());
                groups.push(Group {
                    count: 1,
                    first_time: &e.time,
                    latest: e,
                });
            }
        }
    }
    groups
}

/// One line for people: time, status, failure, message, what became of it.
pub fn line(e: &Entry, count: Option<usize>) -> String {
    let what = match (e.kind.as_str(), e.class.is_empty(), e.message.is_empty()) {
        ("none", ..) => "no traceback, fatal error or panic in its output".to_string(),
        (_, true, _) => e.kind.clone(),
        (_, false, true) => e.class.clone(),
        (_, false, false) => format!("{}: {}", e.class, e.message),
    };
    let fates: Vec<String> = e
        .destinations
        .iter()
        .map(|f| format!("{} {}", f.outcome, f.destination))
        .collect();
    let fates = if fates.is_empty() {
        if e.toolbox_involved {
            "not reported".to_string()
        } else {
            "not the toolbox's".to_string()
        }
    } else {
        fates.join(", ")
    };
    let times = count.map_or(String::new(), |n| format!(" ×{n}"));
    let time = e.time.get(..19).unwrap_or(&e.time).replace('T', " ");
    format!(
        "{time}{times}  {} exit {}  {what}  [{fates}]",
        e.command, e.exit_status
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize, fp: &str) -> Entry {
        Entry {
            time: format!("2026-11-25T10:00:{:02}Z", n % 60),
            command: "python".into(),
            exit_status: 1,
            kind: "python-traceback".into(),
            class: "ValueError".into(),
            message: format!("bad {n}"),
            fingerprint: fp.into(),
            toolbox_involved: true,
            destinations: vec![Fate {
                destination: "http://localhost:9898".into(),
                outcome: "delivered".into(),
                detail: String::new(),
            }],
        }
    }

    #[test]
    fn appends_read_back_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path()).with_cap(20);
        for n in 0..45 {
            h.append(&entry(n, "fp")).unwrap();
        }
        let r = h.read().unwrap();
        assert!(
            r.entries.len() <= 20 && r.entries.len() >= 18,
            "{}",
            r.entries.len()
        );
        assert_eq!(r.entries.last().unwrap().message, "bad 44");
        assert_eq!(r.damaged, 0);
    }

    #[test]
    fn damaged_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path());
        h.append(&entry(1, "a")).unwrap();
        let mut f = OpenOptions::new().append(true).open(h.path()).unwrap();
        f.write_all(b"{\"time\": \"cut off\n\x00\xff garbage\n")
            .unwrap();
        h.append(&entry(2, "b")).unwrap();
        let r = h.read().unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.damaged, 2);
    }

    #[test]
    fn groups_newest_first_with_counts() {
        let entries = vec![entry(1, "a"), entry(2, "b"), entry(3, "a")];
        let g = group(&entries);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].count, g[0].latest.message.as_str()), (2, "bad 3"));
        assert_eq!(g[0].first_time, entries[0].time);
        assert_eq!((g[1].count, g[1].latest.message.as_str()), (1, "bad 2"));
    }
}

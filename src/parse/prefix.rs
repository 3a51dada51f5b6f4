//! Line prefixes that launchers and log shippers put before every line of
//! a program's output, removed once, before any format sees the lines:
//!
//! ```text
//! 0: Traceback (most recent call last):           srun --label
//! [1,0]<stderr>:Traceback (most recent call last): mpirun --tag-output
//! (pid=2716) Traceback (most recent call last):    Ray workers
//! (MyActor pid=2716, ip=10.0.0.3) Traceback ...    Ray actors
//! web_1  | Traceback (most recent call last):      docker compose
//! 2024-05-01T12:00:01.123Z Traceback (most ...     log shippers
//! ```
//!
//! Forms that could be a program's own text (a bare number and colon, a
//! word and a bar, a timestamp) count only when at least half of the
//! non-empty lines carry them; the others (`[r,n]<stderr>:`, `(pid=N)`)
//! always. Up to three layers are removed (docker compose around a log
//! shipper's timestamp). When the prefix names a task, rank or process and
//! several print at once, each one's lines are put together, in the order
//! each last printed, so that interleaved tracebacks of several ranks
//! become whole again and the task that printed last comes last. Linear:
//! each layer is one pass.

use std::collections::HashMap;

/// How many nested prefixes are removed at most.
const MAX_LAYERS: usize = 3;

/// One form of prefix: its length on a line (0 = absent) and the part of
/// it that names the task (empty when the form names none).
struct Style {
    /// Whether the form could be a program's own text, so it counts only
    /// on most lines.
    needs_majority: bool,
    prefix: fn(&str) -> Option<(usize, &str)>,
}

const STYLES: [Style; 5] = [
    Style {
        needs_majority: false,
        prefix: mpirun,
    },
    Style {
        needs_majority: false,
        prefix: ray,
    },
    Style {
        needs_majority: true,
        prefix: srun,
    },
    Style {
        needs_majority: true,
        prefix: compose,
    },
    Style {
        needs_majority: true,
        prefix: timestamp,
    },
];

/// Removes the prefixes found on `lines`, regrouping the lines of each
/// task when several tasks are interleaved.
pub(super) fn strip(mut lines: Vec<&str>) -> Vec<&str> {
    for _ in 0..MAX_LAYERS {
        let Some(style) = detect(&lines) else {
            break;
        };
        lines = strip_style(lines, style);
    }
    lines
}

/// The style whose prefix `lines` carry, if any: the first in [`STYLES`]
/// that is on any line, or on half the non-empty lines where it needs a
/// majority. One pass: a line's first byte tells which styles could be on
/// it, and most lines rule out all of them at once.
fn detect(lines: &[&str]) -> Option<&'static Style> {
    let mut hits = [0usize; STYLES.len()];
    let mut non_empty = 0;
    for line in lines {
        let Some(&first) = line.as_bytes().first() else {
            continue;
        };
        non_empty += 1;
        let candidates: &[usize] = match first {
            b'[' => &[0],
            b'(' => &[1],
            b' ' => &[2],
            b'0'..=b'9' => &[2, 3, 4],
            b'A'..=b'Z' | b'a'..=b'z' => &[3],
            _ => &[],
        };
        for &k in candidates {
            if (STYLES[k].prefix)(line).is_some() {
                hits[k] += 1;
            }
        }
    }
    STYLES
        .iter()
        .zip(hits)
        .find(|(s, hits)| *hits > 0 && (!s.needs_majority || 2 * hits >= non_empty))
        .map(|(s, _)| s)
}

fn strip_style<'a>(mut lines: Vec<&'a str>, style: &Style) -> Vec<&'a str> {
    // The group of each line: 0 for lines without the prefix (the
    // launcher's own messages, the driver's output), else 1 + the task's
    // number in order of first appearance.
    let mut order = Tasks::default();
    let mut groups: Vec<u32> = Vec::with_capacity(lines.len());
    for line in &mut lines {
        match (style.prefix)(line) {
            Some((len, key)) => {
                groups.push(order.group(key));
                *line = &line[len..];
            }
            None => groups.push(0),
        }
    }
    let tasks = order.len();
    if tasks <= 1 {
        return lines;
    }
    // Each group's lines together, groups in the order they last printed,
    // each group's lines in their order: a counting sort. (The order they
    // last printed, not first: a tail's start is wherever the capture cut
    // it, its end is where the run ended. So the task that printed last
    // comes last, and its last failure is the one that counts, however
    // much of the text is read.)
    let mut last_seen: Vec<usize> = vec![0; tasks + 1];
    let mut count: Vec<usize> = vec![0; tasks + 1];
    for (i, &g) in groups.iter().enumerate() {
        let g = g as usize;
        last_seen[g] = i;
        count[g] += 1;
    }
    let mut by_last: Vec<usize> = (0..=tasks).filter(|&g| count[g] > 0).collect();
    by_last.sort_by_key(|&g| last_seen[g]);
    let mut at: Vec<usize> = vec![0; tasks + 1];
    let mut next = 0;
    for g in by_last {
        at[g] = next;
        next += count[g];
    }
    let mut out: Vec<&'a str> = vec![""; lines.len()];
    for (line, g) in lines.into_iter().zip(groups) {
        out[at[g as usize]] = line;
        at[g as usize] += 1;
    }
    out
}

/// The tasks seen so far, numbered from 1 in order of appearance. Jobs have
/// a few ranks and print runs of lines from one: the last task and a short
/// list answer nearly every line without hashing; a map takes over beyond.
#[derive(Default)]
struct Tasks<'a> {
    last: Option<(&'a str, u32)>,
    few: Vec<&'a str>,
    many: HashMap<&'a str, u32>,
}

impl<'a> Tasks<'a> {
    const FEW: usize = 32;

    fn len(&self) -> usize {
        self.few.len() + self.many.len()
    }

    fn group(&mut self, key: &'a str) -> u32 {
        if let Some((last, g)) = self.last
            && last == key
        {
            return g;
        }
        let g = match self.few.iter().position(|&k| k == key) {
            Some(i) => i as u32 + 1,
            None if self.few.len() < Self::FEW => {
                self.few.push(key);
                self.few.len() as u32
            }
            None => {
                let next = self.len() as u32 + 1;
                *self.many.entry(key).or_insert(next)
            }
        };
        self.last = Some((key, g));
        g
    }
}

/// `srun --label`: the task number right-aligned to the width of the
/// largest (` 3: `, `12: `); at most 3 wide, which Rust's backtrace frames
/// (`   3: `, always 4 wide) are not.
fn srun(line: &str) -> Option<(usize, &str)> {
    let b = line.as_bytes();
    let spaces = b.iter().take(3).take_while(|&&c| c == b' ').count();
    let digits = b[spaces..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let width = spaces + digits;
    if digits == 0 || width > 3 || b.get(width) != Some(&b':') {
        return None;
    }
    match b.get(width + 1) {
        Some(b' ') => Some((width + 2, &line[spaces..width])),
        None => Some((width + 1, &line[spaces..width])),
        _ => None,
    }
}

/// `mpirun --tag-output` (Open MPI): `[JOB,RANK]<stderr>:` then the line.
fn mpirun(line: &str) -> Option<(usize, &str)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find("]<")?;
    let ids = &rest[..close];
    let (job, rank) = ids.split_once(',')?;
    if job.is_empty()
        || rank.is_empty()
        || !job.bytes().chain(rank.bytes()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let after = &rest[close + 2..];
    let end = after.find(">:")?;
    if !matches!(&after[..end], "stderr" | "stdout" | "stddiag") {
        return None;
    }
    let len = 1 + close + 2 + end + 2;
    Some((len, &line[1..1 + close]))
}

/// Ray: `(pid=2716) `, `(func pid=2716) `, `(Actor pid=2716, ip=1.2.3.4) `,
/// and `(raylet) `.
fn ray(line: &str) -> Option<(usize, &str)> {
    let rest = line.strip_prefix('(')?;
    let close = rest.find(") ")?;
    let inner = &rest[..close];
    let ok = inner == "raylet"
        || inner.starts_with("pid=")
        || inner
            .split_once(" pid=")
            .is_some_and(|(name, _)| !name.is_empty() && !name.contains(' '));
    ok.then(|| (close + 3, inner))
}

/// The bytes of a docker compose service name.
static SERVICE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        c += 1;
    }
    t
};

/// docker compose: the service (and replica) name padded with spaces, then
/// `| `: `web_1  | `, `worker-2 | `.
fn compose(line: &str) -> Option<(usize, &str)> {
    let b = line.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    // A table, not a chain of tests: this runs on most lines that start
    // with a letter.
    let name = 1 + b[1..]
        .iter()
        .position(|&c| !SERVICE[c as usize])
        .unwrap_or(b.len() - 1);
    let mut bar = name;
    while bar < b.len() && b[bar] == b' ' {
        bar += 1;
    }
    if bar == name || b.get(bar) != Some(&b'|') {
        return None;
    }
    let len = bar + 1 + usize::from(b.get(bar + 1) == Some(&b' '));
    Some((len, &line[..name]))
}

/// An ISO 8601 timestamp and a space: `2024-05-01T12:00:01.123Z `,
/// `2024-05-01 12:00:01,123 `, `2024-05-01T12:00:01+02:00 `.
fn timestamp(line: &str) -> Option<(usize, &str)> {
    let b = line.as_bytes();
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let shape = digits(0, 4)
        && b.get(4) == Some(&b'-')
        && digits(5, 2)
        && b.get(7) == Some(&b'-')
        && digits(8, 2)
        && matches!(b.get(10), Some(b'T' | b' '))
        && digits(11, 2)
        && b.get(13) == Some(&b':')
        && digits(14, 2)
        && b.get(16) == Some(&b':')
        && digits(17, 2);
    if !shape {
        return None;
    }
    let mut i = 19;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if b.get(i) == Some(&b'Z') {
        i += 1;
    } else if matches!(b.get(i), Some(b'+' | b'-')) && digits(i + 1, 2) {
        i += 3;
        if b.get(i) == Some(&b':') {
            i += 1;
        }
        if digits(i, 2) {
            i += 2;
        }
    }
    (b.get(i) == Some(&b' ')).then_some((i + 1, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let cases: [(&str, Option<(usize, &str)>); 10] = [
            ("0: Traceback", srun("0: Traceback")),
            (" 3: x", Some((4, "3"))),
            ("[1,0]<stderr>:Traceback", Some((14, "1,0"))),
            ("(pid=2716) x", Some((11, "pid=2716"))),
            (
                "(Worker pid=7, ip=10.0.0.1) x",
                Some((28, "Worker pid=7, ip=10.0.0.1")),
            ),
            ("web_1  | x", Some((9, "web_1"))),
            ("2024-05-01T12:00:01.123Z x", Some((25, ""))),
            ("2024-05-01 12:00:01,123 x", Some((24, ""))),
            ("   0: rust_begin_unwind", None),
            ("  | ValueError", None),
        ];
        for (line, want) in cases {
            let got = [srun, mpirun, ray, compose, timestamp]
                .iter()
                .find_map(|f| f(line));
            assert_eq!(got, want, "{line}");
        }
        assert_eq!(srun("0: Traceback"), Some((3, "0")));
    }

    #[test]
    fn interleaved_ranks_are_regrouped() {
        let lines = vec!["0: a1", "1: b1", "0: a2", "srun: error: x", "1: b2"];
        assert_eq!(strip(lines), ["a1", "a2", "srun: error: x", "b1", "b2"]);
    }

    #[test]
    fn a_few_prefixed_lines_are_left_alone() {
        let lines = vec!["ValueError: shapes differ:", "3: bad", "x", "y"];
        assert_eq!(strip(lines.clone()), lines);
    }
}

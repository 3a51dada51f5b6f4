//! Turning the raw bytes a process printed into lines a parser can read.
//!
//! Whatever the bytes are, the result is valid text: a run of invalid UTF-8
//! becomes one U+FFFD, ANSI escape sequences (colours, cursor moves) and NUL
//! bytes are removed, CRLF and lone CR line ends (progress bars redraw with
//! `\r`) are handled. A line of binary data (invalid UTF-8 with control
//! bytes in it, at least one byte in 32) reads as one U+FFFD: no format reads
//! binary, and decoding it byte by byte would cost ten times a pass over it.
//!
//! Cheap where the text is clean, which it nearly always is: runs of clean
//! lines (valid UTF-8, no escape or NUL) are found with a validation and a
//! `memchr` over the whole text, and their lines are slices of the input,
//! not copies. Only the lines that need it are decoded, into one buffer. So
//! the memory of analysis stays below the size of the tail and the time near
//! one pass over it (issue 11, requirement 5).

use std::ops::Range;

/// Normalized text; [`Text::lines`] gives its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a> {
    /// In order: runs of whole clean lines (each ending with `\n`, except at
    /// the very end) and single lines that were decoded.
    segments: Vec<Segment<'a>>,
    /// The decoded lines, one after the other.
    decoded: String,
    /// How many lines there are, for sizing [`Text::lines`]'s vector once.
    count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    /// Clean lines, as they are in the input.
    Clean(&'a str),
    /// One line, decoded into [`Text::decoded`].
    Decoded(Range<usize>),
    /// One line of binary data.
    Binary,
}

const ESC: u8 = 0x1b;
const REPLACEMENT: &str = "\u{fffd}";

impl Text<'_> {
    /// The lines, as a terminal shows them: a line redrawn with `\r` is
    /// what follows its last `\r`. A final empty line (after the last
    /// `\n`) is not a line.
    pub fn lines(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::with_capacity(self.count);
        for segment in &self.segments {
            match segment {
                Segment::Clean(s) => {
                    // Most text has no `\r` at all: then no line needs
                    // looking into.
                    let has_cr = memchr::memchr(b'\r', s.as_bytes()).is_some();
                    let mut from = 0;
                    for end in memchr::memchr_iter(b'\n', s.as_bytes()) {
                        out.push(redrawn(&s[from..end], has_cr));
                        from = end + 1;
                    }
                    if from < s.len() {
                        out.push(redrawn(&s[from..], has_cr));
                    }
                }
                Segment::Decoded(range) => {
                    out.push(redrawn(&self.decoded[range.clone()], true));
                }
                Segment::Binary => out.push(REPLACEMENT),
            }
        }
        out
    }
}

/// What a terminal shows of `line`: the part after its last `\r`.
fn redrawn(line: &str, has_cr: bool) -> &str {
    if !has_cr {
        return line;
    }
    let line = line.strip_suffix('\r').unwrap_or(line);
    match line.rfind('\r') {
        Some(i) => &line[i + 1..],
        None => line,
    }
}

/// Normalizes `raw`. When `truncated` is true the capture cut the text's
/// start off, so the first line is partial and is dropped.
pub fn normalize(raw: &[u8], truncated: bool) -> Text<'_> {
    let mut raw = raw;
    if truncated {
        raw = match memchr::memchr(b'\n', raw) {
            Some(i) => &raw[i + 1..],
            None => &[],
        };
    }
    let newlines = memchr::memchr_iter(b'\n', raw).count();
    let mut text = Text {
        segments: Vec::new(),
        decoded: String::new(),
        count: newlines + usize::from(!raw.ends_with(b"\n")),
    };
    // `valid` is the input from `at` on, as far as it is valid UTF-8 (it
    // starts at `valid_at`); `special` the next escape or NUL at or after
    // `at`. Each is searched again only once passed, so the whole is one
    // pass, however many lines need decoding.
    let mut at = 0;
    let mut valid_at = 0;
    let mut valid = valid_prefix(raw);
    let mut special = find_special(raw, 0);
    while at < raw.len() {
        if at >= valid_at + valid.len() {
            valid_at = at;
            valid = valid_prefix(&raw[at..]);
        } else if at > valid_at {
            // A line boundary (after a `\n`), so a char boundary.
            valid = valid.get(at - valid_at..).unwrap_or("");
            valid_at = at;
        }
        if special < at {
            special = find_special(raw, at);
        }
        let valid_end = at + valid.len();
        let problem = valid_end.min(special);
        if problem >= raw.len() {
            text.segments.push(Segment::Clean(valid));
            break;
        }
        // The line the problem is on.
        let start = memchr::memrchr(b'\n', &raw[at..problem]).map_or(at, |i| at + i + 1);
        let end = memchr::memchr(b'\n', &raw[problem..]).map_or(raw.len(), |i| problem + i);
        if start > at {
            text.segments
                .push(Segment::Clean(valid.get(..start - at).unwrap_or("")));
        }
        let line = &raw[start..end];
        if valid_end < end && is_binary(line) {
            text.segments.push(Segment::Binary);
        } else {
            let from = text.decoded.len();
            decode_into(line, &mut text.decoded);
            text.segments
                .push(Segment::Decoded(from..text.decoded.len()));
        }
        at = end + 1;
    }
    text
}

/// The longest valid UTF-8 prefix of `bytes`.
fn valid_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        // Valid up to there, so this cannot fail; "" keeps it panic-free.
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// The position of the first escape or NUL at or after `from`, or the
/// length.
fn find_special(raw: &[u8], from: usize) -> usize {
    memchr::memchr2(ESC, 0, &raw[from..]).map_or(raw.len(), |i| from + i)
}

/// Binary data rather than text in some encoding: control bytes that text
/// does not hold (not tab, CR, escape, backspace, vertical tab, form feed,
/// NUL), at least one byte in 32 and at least four.
fn is_binary(line: &[u8]) -> bool {
    // Comparisons summed in u8 lanes, not branches: random bytes would
    // mispredict every other one, and this way the count is vectorized.
    let controls: usize = line
        .chunks(255)
        .map(|chunk| {
            chunk.iter().fold(0u8, |n, &b| {
                let control = b < 0x20 && b != 0 && b.wrapping_sub(0x08) > 5 && b != ESC;
                n + u8::from(control)
            }) as usize
        })
        .sum();
    controls >= 4 && controls * 32 >= line.len()
}

/// Appends `bytes` (one line), decoded: a run of invalid sequences becomes
/// one U+FFFD (std's lossy decoding writes one for each invalid byte), and
/// escape sequences and NULs are removed from the valid text.
fn decode_into(bytes: &[u8], out: &mut String) {
    let mut last_was_bad = false;
    for chunk in bytes.utf8_chunks() {
        if !chunk.valid().is_empty() {
            // Escape sequences are ASCII, so what is left is valid UTF-8.
            match strip_ansi_bytes(chunk.valid().as_bytes()) {
                std::borrow::Cow::Borrowed(_) => out.push_str(chunk.valid()),
                std::borrow::Cow::Owned(v) => out.push_str(&String::from_utf8_lossy(&v)),
            }
            last_was_bad = false;
        }
        if !chunk.invalid().is_empty() && !last_was_bad {
            out.push_str(REPLACEMENT);
            last_was_bad = true;
        }
    }
}

/// Removes ECMA-48 escape sequences: CSI (`ESC [ ... final`), OSC
/// (`ESC ] ... BEL` or `ESC \`), two-byte escapes, and NUL bytes. Copies
/// the runs between them whole.
pub fn strip_ansi_bytes(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let special = |s: &[u8]| memchr::memchr2(ESC, 0, s);
    let Some(first) = special(s) else {
        return std::borrow::Cow::Borrowed(s);
    };
    let mut out = Vec::with_capacity(s.len());
    out.extend_from_slice(&s[..first]);
    let mut i = first;
    while i < s.len() {
        if s[i] == 0 {
            i += 1;
            continue;
        }
        if s[i] != ESC {
            let end = special(&s[i..]).map_or(s.len(), |j| i + j);
            out.extend_from_slice(&s[i..end]);
            i = end;
            continue;
        }
        i += 1;
        match s.get(i) {
            Some(b'[') => {
                // Parameters and intermediates, then one final byte @..~;
                // a line end means the sequence was cut: keep the line.
                i += 1;
                while i < s.len() && !(0x40..=0x7e).contains(&s[i]) && s[i] != b'\n' {
                    i += 1;
                }
                if i < s.len() && s[i] != b'\n' {
                    i += 1;
                }
            }
            Some(b']') => {
                i += 1;
                while i < s.len() && s[i] != 0x07 && s[i] != b'\n' {
                    if s[i] == ESC && s.get(i + 1) == Some(&b'\\') {
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                if i < s.len() && s[i] != b'\n' {
                    i += 1;
                }
            }
            // A two-byte escape (ESC 7, ESC =, ...): drop the second byte
            // unless it is a line end.
            Some(&b) if b != b'\n' => i += 1,
            _ => {}
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let cases: &[(&[u8], bool, &[&str])] = &[
            (b"a\nb\n", false, &["a", "b"]),
            (b"a\r\nb", false, &["a", "b"]),
            (b"10%\r50%\r100%\nnext", false, &["100%", "next"]),
            (b"\x1b[31mred\x1b[0m plain", false, &["red plain"]),
            (b"\x1b]8;;http://x\x07link\x1b]8;;\x1b\\", false, &["link"]),
            (b"cut \x1b[31\nnext", false, &["cut ", "next"]),
            (b"\x1b7saved\x1b8", false, &["saved"]),
            (b"bad \xff utf8", false, &["bad \u{fffd} utf8"]),
            (b"run \xff\xfe\xfd of bad", false, &["run \u{fffd} of bad"]),
            (b"nul\0byte", false, &["nulbyte"]),
            (
                b"ok\n\xff\x01\x02\x03\x04 binary\nok",
                false,
                &["ok", "\u{fffd}", "ok"],
            ),
            (
                b"caf\xe9 latin-1\x01\n",
                false,
                &["caf\u{fffd} latin-1\x01"],
            ),
            (
                b"a\r\n\x1b[1mb\x1b[0m\r\nc\n\n",
                false,
                &["a", "b", "c", ""],
            ),
            (b"\xff", false, &["\u{fffd}"]),
            (b"x\n\xe2\x82", false, &["x", "\u{fffd}"]),
            (b"cut line\nwhole line\n", true, &["whole line"]),
            (b"no newline at all", true, &[]),
            (b"", false, &[]),
        ];
        for (raw, truncated, want) in cases {
            let got = normalize(raw, *truncated);
            assert_eq!(got.lines(), *want, "{:?}", String::from_utf8_lossy(raw));
        }
    }
}

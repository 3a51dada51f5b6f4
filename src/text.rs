//! Turning the raw bytes a process printed into lines a parser can read.
//!
//! Whatever the bytes are, the result is valid text: a run of invalid UTF-8
//! becomes one U+FFFD, ANSI escape sequences (colours, cursor moves) and NUL
//! bytes are removed, CRLF and lone CR line ends (progress bars redraw with
//! `\r`) are handled. One pass over the bytes into one `String` no longer
//! than the input plus a little; the lines are slices of it, so the memory
//! of analysis stays about the size of the tail (issue 11, requirement 5).

/// Normalized text; [`Text::lines`] gives its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    text: String,
}

impl Text {
    /// The lines, as a terminal shows them: a line redrawn with `\r` is
    /// what follows its last `\r`. A final empty line (after the last
    /// `\n`) is not a line.
    pub fn lines(&self) -> Vec<&str> {
        // Most text has no `\r` at all: then no line needs looking into.
        let has_cr = self.text.contains('\r');
        let mut out: Vec<&str> = self
            .text
            .split('\n')
            .map(|line| {
                if !has_cr {
                    return line;
                }
                let line = line.strip_suffix('\r').unwrap_or(line);
                match line.rfind('\r') {
                    Some(i) => &line[i + 1..],
                    None => line,
                }
            })
            .collect();
        if out.last().is_some_and(|l| l.is_empty()) {
            out.pop();
        }
        out
    }
}

/// Normalizes `raw`. When `truncated` is true the capture cut the text's
/// start off, so the first line is partial and is dropped.
pub fn normalize(raw: &[u8], truncated: bool) -> Text {
    let mut raw = raw;
    if truncated {
        raw = match memchr::memchr(b'\n', raw) {
            Some(i) => &raw[i + 1..],
            None => &[],
        };
    }
    Text { text: clean(raw) }
}

/// UTF-8 decoding where a run of invalid sequences becomes a single
/// U+FFFD (std's lossy decoding writes three bytes for each invalid byte,
/// which would triple random bytes), with escape sequences and NULs removed
/// from the valid text. The output's size is counted first, so the one
/// allocation is the right size: memory stays at the tail's size.
fn clean(bytes: &[u8]) -> String {
    // Valid text, the common case: one fast check, one copy.
    if let Ok(text) = std::str::from_utf8(bytes) {
        return match strip_ansi_bytes(text.as_bytes()) {
            std::borrow::Cow::Borrowed(_) => text.to_string(),
            std::borrow::Cow::Owned(v) => String::from_utf8_lossy(&v).into_owned(),
        };
    }
    let mut size = 0;
    let mut last_was_bad = false;
    for chunk in bytes.utf8_chunks() {
        size += chunk.valid().len();
        if !chunk.valid().is_empty() {
            last_was_bad = false;
        }
        if !chunk.invalid().is_empty() && !last_was_bad {
            size += '\u{fffd}'.len_utf8();
            last_was_bad = true;
        }
    }
    let mut out = String::with_capacity(size);
    last_was_bad = false;
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
            out.push('\u{fffd}');
            last_was_bad = true;
        }
    }
    out
}

/// Removes ECMA-48 escape sequences: CSI (`ESC [ ... final`), OSC
/// (`ESC ] ... BEL` or `ESC \`), two-byte escapes, and NUL bytes. Copies
/// the runs between them whole.
pub fn strip_ansi_bytes(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const ESC: u8 = 0x1b;
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

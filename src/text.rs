//! Turning the raw bytes a process printed into lines a parser can read.
//!
//! Whatever the bytes are, the result is valid text: invalid UTF-8 becomes
//! U+FFFD, ANSI escape sequences (colours, cursor moves) are removed, CRLF
//! and lone CR line ends (progress bars redraw with `\r`) are handled, and
//! NUL bytes are dropped. Linear in the input.

/// Normalized text, one `String` per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines {
    pub lines: Vec<String>,
}

/// Normalizes `raw`. When `truncated` is true the capture cut the text's
/// start off, so the first line is partial and is dropped.
pub fn normalize(raw: &[u8], truncated: bool) -> Lines {
    let mut raw = raw;
    if truncated {
        raw = match memchr(b'\n', raw) {
            Some(i) => &raw[i + 1..],
            None => &[],
        };
    }
    // Escape sequences are ASCII: strip them from the bytes, before the
    // (costlier) decoding.
    let stripped = strip_ansi_bytes(raw);
    let text = String::from_utf8_lossy(&stripped);
    let lines = text
        .split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            // What a terminal shows of a line redrawn with `\r` is what
            // follows the last one.
            let line = match line.rfind('\r') {
                Some(i) => &line[i + 1..],
                None => line,
            };
            if line.contains('\0') {
                line.replace('\0', "")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>();
    let mut lines = lines;
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    Lines { lines }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Removes ECMA-48 escape sequences: CSI (`ESC [ ... final`), OSC
/// (`ESC ] ... BEL` or `ESC \`), and two-byte escapes. Copies the runs
/// between escapes whole.
pub fn strip_ansi_bytes(s: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const ESC: u8 = 0x1b;
    let Some(first) = memchr(ESC, s) else {
        return std::borrow::Cow::Borrowed(s);
    };
    let mut out = Vec::with_capacity(s.len());
    out.extend_from_slice(&s[..first]);
    let mut i = first;
    while i < s.len() {
        if s[i] != ESC {
            let end = memchr(ESC, &s[i..]).map_or(s.len(), |j| i + j);
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
            (b"nul\0byte", false, &["nulbyte"]),
            (b"cut line\nwhole line\n", true, &["whole line"]),
            (b"no newline at all", true, &[]),
            (b"", false, &[]),
        ];
        for (raw, truncated, want) in cases {
            let got = normalize(raw, *truncated);
            assert_eq!(got.lines, *want, "{:?}", String::from_utf8_lossy(raw));
        }
    }
}

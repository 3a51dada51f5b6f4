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
    let text = String::from_utf8_lossy(raw);
    let stripped = strip_ansi(&text);
    let lines = stripped
        .split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            // What a terminal shows of a line redrawn with `\r` is what
            // follows the last one.
            let line = match line.rfind('\r') {
                Some(i) => &line[i + 1..],
                None => line,
            };
            line.replace('\0', "")
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
/// (`ESC ] ... BEL` or `ESC \`), and two-byte escapes.
pub fn strip_ansi(s: &str) -> String {
    if !s.contains('\x1b') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
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

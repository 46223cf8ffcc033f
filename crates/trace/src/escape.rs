//! Bytes of a file quoted in a message, escaped so that what a user reads is never raw
//! garbage: a note or an error that quotes a damaged line, a bad magic or a thread name shows
//! printable text as it is and everything else as an escape — `\xNN` for a byte that is a
//! control character or not UTF-8, `\u{…}` for other characters that print nothing or move
//! the text (C1 controls, bidirectional overrides, zero-width characters) and for the
//! replacement character a lossy conversion left.

use std::fmt::{self, Write as _};

/// Whether `c` prints as itself in a message (not a control, format or replacement
/// character).
fn printable(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffd}'
        ))
}

fn write_char(out: &mut impl fmt::Write, c: char, quotes: bool) -> fmt::Result {
    match c {
        '\\' => out.write_str("\\\\"),
        '"' if quotes => out.write_str("\\\""),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if (c as u32) < 0x80 && !printable(c) => write!(out, "\\x{:02x}", c as u32),
        c if !printable(c) => write!(out, "\\u{{{:x}}}", c as u32),
        c => out.write_char(c),
    }
}

/// `s` with what does not print escaped (see the module documentation); backslashes doubled.
pub fn escape_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let _ = write_char(&mut out, c, false);
    }
    out
}

/// `s` with only what does not print escaped — backslashes and quotes are left as they are —
/// for messages already phrased (a note quoting escaped text stays as it is) and names a
/// trace gives (a thread's, a host's) written to a terminal or a page.
pub fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(printable) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if printable(c) {
            out.push(c);
        } else {
            let _ = write_char(&mut out, c, false);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Bytes of a file as text: UTF-8 runs as [`escape_str`] writes them, each byte that is not
/// part of valid UTF-8 as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            let _ = write_char(&mut out, c, false);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// Displays a string in double quotes, escaped as [`escape_str`] does (quotes too): how
/// messages quote what a file holds.
#[derive(Clone, Copy, Debug)]
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            write_char(f, c, true)?;
        }
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_kept_and_the_rest_escaped() {
        assert_eq!(escape_str("qemu-kvm été"), "qemu-kvm été");
        assert_eq!(escape_str("a\tb\nc\x1b[31m\x7f"), "a\\tb\\nc\\x1b[31m\\x7f");
        assert_eq!(
            escape_str("x\u{fffd}y\u{202e}z\u{85}"),
            "x\\u{fffd}y\\u{202e}z\\u{85}"
        );
        assert_eq!(escape_str("back\\slash"), "back\\\\slash");
        assert_eq!(
            escape_bytes(b"ok \xff\xfe\x00 \xc3\xa9 \xe2\x82"),
            "ok \\xff\\xfe\\x00 é \\xe2\\x82"
        );
        assert_eq!(
            Quoted("say \"hi\"\x01").to_string(),
            "\"say \\\"hi\\\"\\x01\""
        );
        assert_eq!(sanitize("plain \\x1b \"q\""), "plain \\x1b \"q\"");
        assert_eq!(sanitize("bell\x07 \u{fffd}\n"), "bell\\x07 \\u{fffd}\\n");
    }
}

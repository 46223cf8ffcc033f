//! Telling a stub trace from the other formats by the first bytes of the file.

/// Whether a file whose first bytes are `head` is for this reader: it starts with an XML
/// declaration (`<?xml `), or its first element is `<trace>` (after a byte-order mark,
/// whitespace, comments, processing instructions or a document type).
///
/// Any XML document is taken, not only stub traces: no other reader of virtflow reads XML, and
/// this one then says what the document lacks (its root is not `<trace>`) rather than another
/// reader failing on it as text. ftrace text cannot be mistaken for it: its lines start with a
/// task name such as `<idle>-0` or with `#`.
pub fn looks_like_stub(head: &[u8]) -> bool {
    let mut rest = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    loop {
        rest = rest.trim_ascii_start();
        if let Some(after) = rest.strip_prefix(b"<?xml") {
            if after.first().is_some_and(u8::is_ascii_whitespace) {
                return true;
            }
        }
        let skip_to = if rest.starts_with(b"<!--") {
            b"-->".as_slice()
        } else if rest.starts_with(b"<?") || rest.starts_with(b"<!") {
            b">".as_slice()
        } else {
            return rest.strip_prefix(b"<trace").is_some_and(|after| {
                after.is_empty() || matches!(after[0], b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
            });
        };
        match find(rest, skip_to) {
            Some(end) => rest = &rest[end + skip_to.len()..],
            // The head ends inside markup before any element: not enough to say yes.
            None => return false,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_traces_are_recognised() {
        assert!(looks_like_stub(
            b"<trace>\n<event timestamp=\"1\" name=\"a\"/>"
        ));
        assert!(looks_like_stub(b"<trace/>"));
        assert!(looks_like_stub(b"<trace"));
        assert!(looks_like_stub(b"\xEF\xBB\xBF  \n<trace >"));
        assert!(looks_like_stub(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<trace>"
        ));
        assert!(looks_like_stub(
            b"<!-- ****\n * Simple trace\n **** -->\n<trace>\n<set_aspects>"
        ));
        assert!(looks_like_stub(b"<!DOCTYPE trace>\n<?pi x?><trace>"));
        // Any XML document: its root is checked at opening.
        assert!(looks_like_stub(b"<?xml version=\"1.0\"?><svg/>"));
    }

    #[test]
    fn other_formats_are_not() {
        assert!(!looks_like_stub(b""));
        assert!(!looks_like_stub(b"# tracer: nop\n#\n"));
        assert!(!looks_like_stub(
            b"          <idle>-0     [000] d..1  5.0: sched_switch"
        ));
        assert!(!looks_like_stub(b"<...>-1234 [001] 5.0: kvm_exit"));
        assert!(!looks_like_stub(b"<traces>"));
        assert!(!looks_like_stub(b"<svg><trace/></svg>"));
        assert!(!looks_like_stub(b"\x17\x08\x44tracing6"));
        assert!(!looks_like_stub(b"PERFILE2"));
        assert!(!looks_like_stub(b"<!-- a comment that the head cuts"));
        assert!(!looks_like_stub(b"<?xml-stylesheet href=\"a\"?><html>"));
    }
}

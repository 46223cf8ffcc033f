//! What the ftrace text reader finds wrong in a file. A file none of whose first lines is an
//! event is refused ([`TextError::NoEventLine`]); past that, the reader never stops on bad
//! text: each of the other kinds becomes a warning in [`ReadStats`](crate::ReadStats)
//! (written as its [`TraceError`](super::TraceError), with the file and the byte where the
//! problem is), and the lines it could not read are counted. Text quoted from the file is
//! escaped ([`Quoted`]).

use std::fmt;

use crate::escape::Quoted;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextError {
    /// The file is not UTF-8 from the error's offset on; the reader replaced the invalid
    /// bytes.
    NotUtf8,
    /// A line that is no event, loss marker, header or comment (`line`: its start).
    UnknownLine { line: String },
    /// An event whose text none of its print formats matches, kept whole in its `text` field.
    UnparsedText { event: String, text: String },
    /// None of the first `lines` lines that are not blank or comments is an event line or a
    /// loss marker: the file is no ftrace text trace (`first`: the first such line, at the
    /// error's offset).
    NoEventLine { lines: usize, first: String },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::NotUtf8 => f.write_str("not UTF-8 from here on; invalid bytes replaced"),
            TextError::UnknownLine { line } => {
                write!(f, "line not understood, skipped: {}", Quoted(line))
            }
            TextError::UnparsedText { event, text } => {
                write!(
                    f,
                    "{event} text not in a known format, kept whole: {}",
                    Quoted(text)
                )
            }
            TextError::NoEventLine { lines, first } => write!(
                f,
                "not an ftrace text trace: none of its first {lines} lines (comments apart) is \
                 an event line such as `comm-1234 [001] 5.000001: sched_switch: …`; the first \
                 is {}",
                Quoted(first)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TraceError;

    /// What a user reads: the file, the byte, then the kind's sentence.
    #[test]
    fn kinds_read_as_sentences() {
        let e = TraceError::new(
            "trace.txt",
            311,
            TextError::UnknownLine {
                line: "garbage here".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "trace.txt: at byte 311: line not understood, skipped: \"garbage here\""
        );
        let e = TraceError::new(
            "trace.txt",
            1024,
            TextError::UnparsedText {
                event: "kvm_exit".into(),
                text: "reason ???".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "trace.txt: at byte 1024: kvm_exit text not in a known format, kept whole: \
             \"reason ???\""
        );
        let e = TraceError::new("trace.txt", 17, TextError::NotUtf8);
        assert_eq!(
            e.to_string(),
            "trace.txt: at byte 17: not UTF-8 from here on; invalid bytes replaced"
        );
        let e = TraceError::new(
            "notes.txt",
            40,
            TextError::NoEventLine {
                lines: 3,
                first: "hello".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "notes.txt: at byte 40: not an ftrace text trace: none of its first 3 lines \
             (comments apart) is an event line such as `comm-1234 [001] 5.000001: \
             sched_switch: …`; the first is \"hello\""
        );
    }

    /// Quoted text never puts control characters or replacement characters on a terminal.
    #[test]
    fn quoted_lines_are_escaped() {
        let e = TraceError::new(
            "t.txt",
            0,
            TextError::UnknownLine {
                line: "\u{fffd}\x1b[2J\x07ok".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "t.txt: at byte 0: line not understood, skipped: \"\\u{fffd}\\x1b[2J\\x07ok\""
        );
    }
}

//! What the ftrace text reader finds wrong in a file. It never stops on bad text: each of
//! these becomes a warning in [`ReadStats`](crate::ReadStats) (written as its
//! [`TraceError`](super::TraceError), with the file and the byte where the problem is), and the
//! lines it could not read are counted.

use std::fmt;

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
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::NotUtf8 => f.write_str("not UTF-8 from here on; invalid bytes replaced"),
            TextError::UnknownLine { line } => {
                write!(f, "line not understood, skipped: {line:?}")
            }
            TextError::UnparsedText { event, text } => {
                write!(
                    f,
                    "{event} text not in a known format, kept whole: {text:?}"
                )
            }
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
    }
}

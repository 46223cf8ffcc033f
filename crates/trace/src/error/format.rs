//! What can go wrong parsing a tracefs event `format` description or the `header_page`
//! description: shared by the readers of the files that carry them (trace-cmd `.dat`,
//! `perf.data`).

use std::fmt;

use crate::escape::Quoted;

/// A format text that does not parse: the 1-based line, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub line: usize,
    pub kind: FormatErrorKind,
}

/// What is wrong in a format text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatErrorKind {
    /// An `ID:` line whose value is not a 32-bit number.
    BadEventId { found: String },
    /// A line that is none of a format's (before `print fmt:`, which may run on).
    UnexpectedLine { found: String },
    /// No `name:` line.
    NoName,
    /// No `ID:` line.
    NoId,
    /// A part of a `field:` line without the `:` between its key and value.
    PartWithoutColon { part: String },
    /// An `offset:`, `size:` or `signed:` value that is not a 32-bit number.
    BadNumber { found: String },
    /// A `field:` line without one of its parts (`what`: "declaration", "offset", "size").
    MissingFieldPart { what: &'static str },
    /// A field declaration without a name after its type.
    NoFieldName { declaration: String },
    /// A field declaration with an unclosed `[`.
    UnclosedArray { declaration: String },
    /// A `header_page` description without one of the fields the reader needs.
    HeaderPageFieldMissing { name: &'static str },
    /// A `header_page` description whose timestamp is not 8 bytes, or whose commit word is
    /// not 4 or 8.
    HeaderPageFieldSizes { timestamp: u32, commit: u32 },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "format line {}: {}", self.line, self.kind)
    }
}

impl std::error::Error for FormatError {}

impl fmt::Display for FormatErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FormatErrorKind::*;
        match self {
            BadEventId { found } => write!(f, "bad event id {}", Quoted(found)),
            UnexpectedLine { found } => write!(f, "unexpected line {}", Quoted(found)),
            NoName => f.write_str("no `name:` line"),
            NoId => f.write_str("no `ID:` line"),
            PartWithoutColon { part } => write!(f, "no `:` in {}", Quoted(part)),
            BadNumber { found } => write!(f, "bad number {}", Quoted(found)),
            MissingFieldPart { what } => write!(f, "no field {what}"),
            NoFieldName { declaration } => write!(f, "no field name in {}", Quoted(declaration)),
            UnclosedArray { declaration } => write!(f, "unclosed array in {}", Quoted(declaration)),
            HeaderPageFieldMissing { name } => write!(f, "header page has no {name} field"),
            HeaderPageFieldSizes { timestamp, commit } => write!(
                f,
                "header page fields of unexpected sizes (timestamp {timestamp} bytes, 8 \
                 expected; commit {commit} bytes, 4 or 8 expected)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_as_sentences() {
        let e = FormatError {
            line: 4,
            kind: FormatErrorKind::BadNumber {
                found: "zero".into(),
            },
        };
        assert_eq!(e.to_string(), "format line 4: bad number \"zero\"");
        let e = FormatError {
            line: 1,
            kind: FormatErrorKind::NoId,
        };
        assert_eq!(e.to_string(), "format line 1: no `ID:` line");
    }
}

//! Reader errors: which file, where in it, and what kind of failure.
//!
//! A [`TraceError`] is `{ path, offset, kind }`. The [`ErrorKind`] says what went wrong in the
//! vocabulary of the reader that failed: each reader has its own enum of kinds ([`CtfError`],
//! [`DatError`], [`TextError`], [`PerfError`]), with the values that explain the failure (what
//! was expected, what was found), as gimli's `read::Error` does for DWARF. Failures that the
//! same reader meets in several places nest one level: a CTF field that cannot be decoded is a
//! [`DecodeError`] in a [`DecodeScope`], a TSDL error has its line and column around a
//! [`TsdlError`]; tracefs `format` descriptions, which `.dat` and `perf.data` files both carry,
//! fail with a [`FormatError`]. Tests match kinds, never message text; `Display` writes the
//! sentence a user reads.

use std::fmt;
use std::path::{Path, PathBuf};

mod ctf;
mod dat;
mod format;
mod perf;
mod text;
mod xml;

pub use ctf::{Ctf2Error, CtfError, DecodeError, DecodeScope, IndexError, IntValue, TsdlError};
pub use dat::{DatError, PageError};
pub use format::{FormatError, FormatErrorKind};
pub use perf::{PerfError, PerfRecordType, PerfSection};
pub use text::TextError;
pub use xml::XmlError;

/// A reader error: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    pub path: PathBuf,
    /// Byte offset in `path` where the problem was found (0 when it concerns the whole file).
    pub offset: u64,
    pub kind: ErrorKind,
}

/// What went wrong, by reader.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file or folder could not be opened, mapped or read.
    Io {
        kind: std::io::ErrorKind,
        /// The operating system's words for it.
        message: String,
    },
    /// The file is empty: there is no trace in it.
    EmptyFile,
    /// The path is none of the formats virtflow reads.
    NotATrace {
        /// What was looked for and not found, in a user's words.
        expected: &'static str,
    },
    Ctf(CtfError),
    Dat(DatError),
    Text(TextError),
    Perf(PerfError),
    Xml(XmlError),
}

impl TraceError {
    pub fn new(path: impl Into<PathBuf>, offset: u64, kind: impl Into<ErrorKind>) -> Self {
        TraceError {
            path: path.into(),
            offset,
            kind: kind.into(),
        }
    }

    pub fn io(path: &Path, err: std::io::Error) -> Self {
        TraceError::new(
            path,
            0,
            ErrorKind::Io {
                kind: err.kind(),
                message: err.to_string(),
            },
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Io { message, .. } => f.write_str(message),
            ErrorKind::EmptyFile => f.write_str("empty file, no trace in it"),
            ErrorKind::NotATrace { expected } => write!(f, "not a trace: {expected}"),
            ErrorKind::Ctf(e) => e.fmt(f),
            ErrorKind::Dat(e) => e.fmt(f),
            ErrorKind::Text(e) => e.fmt(f),
            ErrorKind::Perf(e) => e.fmt(f),
            ErrorKind::Xml(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for TraceError {
    /// `FILE: KIND`, with `at byte N` when the failure has a place in the file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Io { .. } | ErrorKind::EmptyFile | ErrorKind::NotATrace { .. } => {
                write!(f, "{}: {}", self.path.display(), self.kind)
            }
            _ => write!(
                f,
                "{}: at byte {}: {}",
                self.path.display(),
                self.offset,
                self.kind
            ),
        }
    }
}

impl std::error::Error for TraceError {}

impl From<CtfError> for ErrorKind {
    fn from(e: CtfError) -> ErrorKind {
        ErrorKind::Ctf(e)
    }
}

impl From<DatError> for ErrorKind {
    fn from(e: DatError) -> ErrorKind {
        ErrorKind::Dat(e)
    }
}

impl From<TextError> for ErrorKind {
    fn from(e: TextError) -> ErrorKind {
        ErrorKind::Text(e)
    }
}

impl From<PerfError> for ErrorKind {
    fn from(e: PerfError) -> ErrorKind {
        ErrorKind::Perf(e)
    }
}

impl From<XmlError> for ErrorKind {
    fn from(e: XmlError) -> ErrorKind {
        ErrorKind::Xml(e)
    }
}

//! A bounds-checked reader over a byte slice in the file's byte order, whose errors carry
//! the byte offset in the file.

use crate::record::Endian;
use std::path::Path;
use virtflow_trace::error::DatError;
use virtflow_trace::TraceError;

/// A decoding problem at a byte offset of the `.dat` file (the path is added by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub offset: u64,
    pub kind: DatError,
}

impl Failure {
    pub fn new(offset: u64, kind: DatError) -> Self {
        Failure { offset, kind }
    }

    /// The error of file `path`.
    #[cold]
    pub fn at(self, path: &Path) -> TraceError {
        TraceError::new(path, self.offset, self.kind)
    }
}

pub type DatResult<T> = Result<T, Failure>;

/// A part the file points to at `offset` that lies past its end (`len` bytes): reported at
/// the end of the file, where the data stops.
pub fn beyond_end(part: String, offset: u64, len: usize) -> Failure {
    Failure::new(
        len as u64,
        DatError::BeyondEnd {
            part,
            offset,
            file_size: len as u64,
        },
    )
}

/// Reads `data`, which starts at file offset `base` (for a decompressed section, `base` is
/// the section's offset and positions inside it are reported relative to that).
#[derive(Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    endian: Endian,
    /// The part of the file read, for errors.
    what: &'static str,
    /// Positions are in a section's data (maybe decompressed): errors name the section's
    /// offset and give the position inside its data.
    in_section: bool,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], base: u64, endian: Endian, what: &'static str) -> Self {
        Reader {
            data,
            pos: 0,
            base,
            endian,
            what,
            in_section: false,
        }
    }

    /// A reader of the data of the section whose header is at `section_offset`.
    pub fn section(
        data: &'a [u8],
        section_offset: u64,
        endian: Endian,
        what: &'static str,
    ) -> Self {
        Reader {
            in_section: true,
            ..Reader::new(data, section_offset, endian, what)
        }
    }

    pub fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The position in the data.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The file offset of the current position (of the section, for a section's data).
    pub fn offset(&self) -> u64 {
        if self.in_section {
            self.base
        } else {
            self.base + self.pos as u64
        }
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// A failure at the current position.
    #[cold]
    pub fn error(&self, kind: DatError) -> Failure {
        if self.in_section {
            Failure::new(
                self.base,
                DatError::InSection {
                    section: self.what,
                    position: self.pos as u64,
                    error: Box::new(kind),
                },
            )
        } else {
            Failure::new(self.offset(), kind)
        }
    }

    pub fn bytes(&mut self, n: usize) -> DatResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                self.error(DatError::Truncated {
                    part: self.what,
                    needed: n as u64,
                    available: self.remaining() as u64,
                })
            })?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    pub fn u8(&mut self) -> DatResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> DatResult<u16> {
        let b: [u8; 2] = self.bytes(2)?.try_into().unwrap_or_default();
        Ok(match self.endian {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        })
    }

    pub fn u32(&mut self) -> DatResult<u32> {
        let b: [u8; 4] = self.bytes(4)?.try_into().unwrap_or_default();
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    }

    pub fn u64(&mut self) -> DatResult<u64> {
        let b: [u8; 8] = self.bytes(8)?.try_into().unwrap_or_default();
        Ok(match self.endian {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        })
    }

    /// A NUL-terminated string (the NUL is consumed).
    pub fn cstr(&mut self) -> DatResult<&'a str> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.error(DatError::UnterminatedString { part: self.what }))?;
        let s = std::str::from_utf8(&rest[..len])
            .map_err(|_| self.error(DatError::StringNotUtf8 { part: self.what }))?;
        self.pos += len + 1;
        Ok(s)
    }

    /// A text of `n` bytes (lossily converted: format files are ASCII).
    pub fn text(&mut self, n: u64) -> DatResult<String> {
        let n = usize::try_from(n).map_err(|_| {
            self.error(DatError::SizeOutOfRange {
                part: self.what,
                size: n,
            })
        })?;
        Ok(crate::format::text_of(self.bytes(n)?).into_owned())
    }
}

//! A bounds-checked reader over a byte slice in the file's byte order, whose errors carry
//! the byte offset in the file.

use crate::record::Endian;

/// A decoding problem at a byte offset of the `.dat` file (the path is added by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatError {
    pub offset: u64,
    pub message: String,
}

impl DatError {
    pub fn new(offset: u64, message: impl Into<String>) -> Self {
        DatError {
            offset,
            message: message.into(),
        }
    }
}

pub type DatResult<T> = Result<T, DatError>;

/// A part the file points to at `offset` that lies past its end (`len` bytes): reported at
/// the end of the file, where the data stops.
pub fn beyond_end(what: &str, offset: u64, len: usize) -> DatError {
    DatError::new(
        len as u64,
        format!(
            "{what} at byte {offset} lies beyond the end of the file ({len} bytes): \
             truncated file or corrupted offset"
        ),
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
    /// Error messages say "in <what>" so that decompressed positions are understood.
    what: &'static str,
    /// Positions are in a section's data (maybe decompressed): errors name the section's
    /// offset and give the position inside its data in the message.
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

    pub fn error(&self, message: impl Into<String>) -> DatError {
        if self.in_section {
            DatError::new(
                self.base,
                format!(
                    "{} (at byte {} of the data of the {} whose header is here)",
                    message.into(),
                    self.pos,
                    self.what
                ),
            )
        } else {
            DatError::new(self.offset(), format!("{} ({})", message.into(), self.what))
        }
    }

    pub fn bytes(&mut self, n: usize) -> DatResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                self.error(format!(
                    "truncated: {n} bytes needed, {} left",
                    self.remaining()
                ))
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
            .ok_or_else(|| self.error("unterminated string"))?;
        let s = std::str::from_utf8(&rest[..len]).map_err(|_| self.error("string not UTF-8"))?;
        self.pos += len + 1;
        Ok(s)
    }

    /// A text of `n` bytes (lossily converted: format files are ASCII).
    pub fn text(&mut self, n: u64) -> DatResult<String> {
        let n = usize::try_from(n).map_err(|_| self.error("size out of range"))?;
        Ok(String::from_utf8_lossy(self.bytes(n)?).into_owned())
    }
}

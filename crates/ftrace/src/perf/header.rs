//! The file header: magic, file or pipe mode, and (file mode) the sections it points to.
//!
//! File mode (`perf_file_header`, 104 bytes today, 72 in old files): magic, header size,
//! attribute entry size, then `{offset, size}` of the attributes, the data and the obsolete
//! event types, then a 256-bit feature bitmap. Pipe mode (`perf record -o -`) has only the
//! magic and the size 16; everything else arrives as records.

use std::ops::Range;

use virtflow_trace::error::{PerfError, PerfSection};

use super::bytes::{to_usize, u64_at, Failure};

pub(super) const MAGIC: &[u8; 8] = b"PERFILE2";
/// The magic read from a file written on a big-endian machine.
const MAGIC_SWAPPED: &[u8; 8] = b"2ELIFREP";
/// perf.data version 1 (2009–2010).
const MAGIC_V1: &[u8; 8] = b"PERFFILE";

/// The pipe-mode header: magic and its own size.
pub(super) const PIPE_HEADER_SIZE: u64 = 16;
/// The file-mode header before the feature bitmap was added.
const FILE_HEADER_MIN: u64 = 72;

/// `{offset, size}` of a part of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Section {
    pub offset: u64,
    pub size: u64,
}

impl Section {
    pub fn read(bytes: &[u8], at: usize) -> Option<Section> {
        Some(Section {
            offset: u64_at(bytes, at)?,
            size: u64_at(bytes, at + 8)?,
        })
    }

    /// The section's byte range, checked against the file: a section reaching past the end is
    /// a [`PerfError::SectionOutOfBounds`] at the place that pointed to it (`pointer`).
    pub fn range(
        self,
        file_len: usize,
        section: PerfSection,
        pointer: u64,
    ) -> Result<Range<usize>, Failure> {
        let start = to_usize(self.offset);
        match start.checked_add(to_usize(self.size)) {
            Some(end) if end <= file_len => Ok(start..end),
            _ => Err(Failure::new(
                pointer,
                PerfError::SectionOutOfBounds {
                    section,
                    offset: self.offset,
                    size: self.size,
                    file_len: file_len as u64,
                },
            )),
        }
    }
}

/// What the header says about the file.
#[derive(Debug)]
pub(super) enum Header {
    /// Records from byte 16 to the end; attributes and features come as records.
    Pipe,
    File(FileHeader),
}

#[derive(Debug)]
pub(super) struct FileHeader {
    pub attr_size: u64,
    pub attrs: Section,
    pub data: Section,
    /// Bit n of the 256-bit bitmap is bit n % 64 of word n / 64.
    pub features: [u64; 4],
}

/// Offsets of the header fields, for errors pointing at them.
pub(super) const ATTRS_AT: u64 = 24;
pub(super) const DATA_AT: u64 = 40;

pub(super) fn parse(bytes: &[u8]) -> Result<Header, Failure> {
    let file_len = bytes.len() as u64;
    let magic = bytes.get(..8).unwrap_or(bytes);
    if magic != MAGIC {
        return Err(Failure::new(
            0,
            match magic {
                m if m == MAGIC_SWAPPED => PerfError::UnsupportedBigEndian,
                m if m == MAGIC_V1 => PerfError::UnsupportedVersion1,
                _ => PerfError::NotPerfData {
                    found: magic.to_vec(),
                },
            },
        ));
    }
    let truncated = |needed| Failure::new(0, PerfError::TruncatedHeader { needed, file_len });
    let size = u64_at(bytes, 8).ok_or_else(|| truncated(PIPE_HEADER_SIZE))?;
    if size == PIPE_HEADER_SIZE {
        return Ok(Header::Pipe);
    }
    if size < FILE_HEADER_MIN {
        return Err(Failure::new(8, PerfError::BadHeaderSize { size }));
    }
    if file_len < size {
        return Err(truncated(size));
    }
    // The size was checked against the file: every read below is inside it.
    let attr_size = u64_at(bytes, 16).unwrap_or(0);
    let attrs = Section::read(bytes, ATTRS_AT as usize).ok_or_else(|| truncated(size))?;
    let data = Section::read(bytes, DATA_AT as usize).ok_or_else(|| truncated(size))?;
    let mut features = [0u64; 4];
    if size >= 104 {
        for (i, word) in features.iter_mut().enumerate() {
            *word = u64_at(bytes, 72 + 8 * i).unwrap_or(0);
        }
    }
    Ok(Header::File(FileHeader {
        attr_size,
        attrs,
        data,
        features,
    }))
}

//! What can go wrong reading a trace-cmd `.dat` file: its header, its metadata parts and v7
//! sections, and the ring-buffer pages of each CPU.
//!
//! The offset of the [`TraceError`](super::TraceError) holding a kind is where the problem
//! was found in the file; inside a (maybe compressed) v7 section, the section's header, with
//! the position in the section's data in [`DatError::InSection`].

use super::FormatError;
use std::fmt;

use crate::escape::Quoted;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatError {
    // File header.
    /// The file does not start with trace-cmd's magic (`found`: the bytes there).
    BadMagic {
        found: Vec<u8>,
    },
    /// The version string after the magic is not a number.
    BadVersion {
        found: String,
    },
    /// A version other than 6 and 7.
    UnsupportedVersion {
        version: u32,
    },
    BadEndianness {
        flag: u8,
    },
    /// A `long` size other than 4 and 8 bytes.
    BadLongSize {
        size: u8,
    },
    /// A page size outside 64 bytes to 16 MiB.
    ImplausiblePageSize {
        size: u32,
    },

    // Reading a part of the file.
    /// A part of the file ends before what it must hold (bytes).
    Truncated {
        part: &'static str,
        needed: u64,
        available: u64,
    },
    UnterminatedString {
        part: &'static str,
    },
    StringNotUtf8 {
        part: &'static str,
    },
    /// A size that does not fit in memory's address space.
    SizeOutOfRange {
        part: &'static str,
        size: u64,
    },
    /// A part that is not what the file's layout puts there (`expected`: its tag).
    UnexpectedTag {
        expected: &'static str,
        found: String,
    },
    /// Something the file points to lies past its end (`part` in a user's words; bytes).
    BeyondEnd {
        part: String,
        offset: u64,
        file_size: u64,
    },
    /// A failure inside the data of a v7 section: the error's offset is the section's header,
    /// `position` the byte of its (maybe decompressed) data.
    InSection {
        section: &'static str,
        position: u64,
        error: Box<DatError>,
    },

    // Metadata.
    /// The `header_page` description does not parse.
    HeaderPage(FormatError),
    /// The page header described ends beyond the page (bytes).
    HeaderPageBeyondPage {
        data_offset: u32,
        page_size: u32,
    },
    /// Latency-tracer text data instead of flyrecord pages.
    LatencyData,
    /// A CPU count above 65536.
    ImplausibleCpuCount {
        count: u32,
    },
    /// A count in an option (`option`: TIME_SHIFT, GUEST) larger than the option holds.
    CountExceedsOption {
        option: &'static str,
        what: &'static str,
        count: u32,
    },
    /// A compression algorithm other than zstd and zlib.
    UnknownCompression {
        name: String,
    },
    /// A compressed part in a file that names no compression algorithm.
    CompressedWithoutCodec {
        part: &'static str,
    },
    /// An uncompressed size above 1 GiB.
    ImplausibleUncompressedSize {
        part: &'static str,
        size: u64,
    },
    /// The decompressor's complaint.
    Decompression {
        codec: &'static str,
        message: String,
    },
    /// Data that decompressed to another size than the file says (bytes).
    DecompressedSize {
        expected: u64,
        found: u64,
    },
    /// The chain of v7 options sections comes back to one already read.
    OptionsLoop,
    /// A section in the options chain whose id is not the options section's (0).
    NotOptionsSection {
        found: u16,
    },
    /// A buffer's page size no larger than the page header (bytes).
    PageSizeBelowHeader {
        page_size: u64,
        header_size: u64,
    },

    // Pages.
    /// A CPU's data goes past the end of the file, which ends here.
    CpuDataTruncated {
        cpu: u32,
        declared_end: u64,
    },
    /// A CPU's data (or a compressed chunk of it) ends with part of a page (bytes).
    PartialPage {
        cpu: u32,
        size: u64,
        compressed: bool,
    },
    /// A damaged ring-buffer page; `chunk_position`: where the page is in the decompressed
    /// data of the chunk at the error's offset.
    Page {
        cpu: u32,
        chunk_position: Option<u64>,
        error: PageError,
    },
}

/// Damage in a ring-buffer page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageError {
    /// The page is shorter than its header.
    ShortHeader,
    /// The commit word's record length goes past the page (bytes).
    CommitBeyondPage { commit_size: u64, capacity: u64 },
    /// A long record's length word is below 4.
    RecordLengthTooSmall { length: u32 },
    /// A record header runs past the end of the records.
    HeaderBeyondCommit,
    /// A record runs past the end of the records (`commit_end`: where they end in the page).
    RecordBeyondCommit { length: u64, commit_end: u64 },
}

impl PageError {
    /// Whether the damage is in the page header (else in its records).
    pub fn in_header(&self) -> bool {
        matches!(
            self,
            PageError::ShortHeader | PageError::CommitBeyondPage { .. }
        )
    }
}

impl fmt::Display for DatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DatError::*;
        match self {
            BadMagic { found } => write!(
                f,
                "not a trace-cmd .dat file (bad magic \"{}\")",
                found.escape_ascii()
            ),
            BadVersion { found } => write!(f, "bad version string {}", Quoted(found)),
            UnsupportedVersion { version } => {
                write!(f, "unsupported .dat version {version} (6 and 7 are read)")
            }
            BadEndianness { flag } => write!(f, "bad endianness flag {flag}"),
            BadLongSize { size } => write!(f, "bad long size {size}"),
            ImplausiblePageSize { size } => write!(f, "implausible page size {size}"),
            Truncated {
                part,
                needed,
                available,
            } => write!(
                f,
                "truncated {part}: {needed} bytes needed, {available} left"
            ),
            UnterminatedString { part } => write!(f, "unterminated string in the {part}"),
            StringNotUtf8 { part } => write!(f, "string not UTF-8 in the {part}"),
            SizeOutOfRange { part, size } => {
                write!(f, "size {size} out of range in the {part}")
            }
            UnexpectedTag { expected, found } => {
                write!(f, "expected {}, found {}", Quoted(expected), Quoted(found))
            }
            BeyondEnd {
                part,
                offset,
                file_size,
            } => write!(
                f,
                "{part} at byte {offset} lies beyond the end of the file ({file_size} bytes): \
                 truncated file or corrupted offset"
            ),
            InSection {
                section,
                position,
                error,
            } => write!(
                f,
                "{error} (at byte {position} of the data of the {section} whose header is here)"
            ),
            HeaderPage(e) => write!(f, "header page: {e}"),
            HeaderPageBeyondPage {
                data_offset,
                page_size,
            } => write!(
                f,
                "header page data offset {data_offset} beyond the page ({page_size} bytes)"
            ),
            LatencyData => {
                f.write_str("latency-tracer text data is not supported (only flyrecord data)")
            }
            ImplausibleCpuCount { count } => write!(f, "implausible CPU count {count}"),
            CountExceedsOption {
                option,
                what,
                count,
            } => write!(f, "{option} {what} {count} exceeds the option"),
            UnknownCompression { name } => {
                write!(f, "unsupported compression algorithm {}", Quoted(name))
            }
            CompressedWithoutCodec { part } => {
                write!(f, "compressed {part} in a file that names no compression")
            }
            ImplausibleUncompressedSize { part, size } => {
                write!(f, "implausible uncompressed {part} size {size}")
            }
            Decompression { codec, message } => write!(f, "{codec}: {message}"),
            DecompressedSize { expected, found } => {
                write!(f, "decompressed to {found} bytes, {expected} expected")
            }
            OptionsLoop => f.write_str("options sections form a loop"),
            NotOptionsSection { found } => {
                write!(f, "expected an options section, found section {found}")
            }
            PageSizeBelowHeader {
                page_size,
                header_size,
            } => write!(
                f,
                "buffer page size {page_size} not larger than the page header ({header_size} \
                 bytes)"
            ),
            CpuDataTruncated { cpu, declared_end } => write!(
                f,
                "file truncated: CPU {cpu} data should go on to byte {declared_end}"
            ),
            PartialPage {
                cpu,
                size,
                compressed: false,
            } => write!(f, "CPU {cpu} data ends with a partial page of {size} bytes"),
            PartialPage {
                cpu,
                size,
                compressed: true,
            } => write!(
                f,
                "compressed chunk of CPU {cpu} holds a partial page ({size} bytes)"
            ),
            Page {
                cpu,
                chunk_position,
                error,
            } => {
                let what = if error.in_header() {
                    "page header"
                } else {
                    "page"
                };
                write!(f, "corrupted {what} of CPU {cpu}: {error}")?;
                if let Some(p) = chunk_position {
                    write!(
                        f,
                        " (in the compressed chunk at this offset, byte {p} of its data)"
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PageError::*;
        match self {
            ShortHeader => f.write_str("page shorter than its header"),
            CommitBeyondPage {
                commit_size,
                capacity,
            } => write!(
                f,
                "page commit size {commit_size} exceeds the page ({capacity} bytes of records \
                 at most)"
            ),
            RecordLengthTooSmall { length } => write!(f, "record length {length} too small"),
            HeaderBeyondCommit => f.write_str("record header runs past the page's commit size"),
            RecordBeyondCommit { length, commit_end } => write!(
                f,
                "record of {length} bytes runs past the page's commit size ({commit_end} bytes)"
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
            "t.dat",
            0,
            DatError::BadMagic {
                found: b"# tracer: ".to_vec(),
            },
        );
        assert_eq!(
            e.to_string(),
            "t.dat: at byte 0: not a trace-cmd .dat file (bad magic \"# tracer: \")"
        );
        let e = TraceError::new(
            "t.dat",
            20480,
            DatError::Page {
                cpu: 3,
                chunk_position: None,
                error: PageError::RecordBeyondCommit {
                    length: 112,
                    commit_end: 4000,
                },
            },
        );
        assert_eq!(
            e.to_string(),
            "t.dat: at byte 20480: corrupted page of CPU 3: record of 112 bytes runs past the \
             page's commit size (4000 bytes)"
        );
        let e = TraceError::new(
            "t.dat",
            4096,
            DatError::InSection {
                section: "options section",
                position: 40,
                error: Box::new(DatError::Truncated {
                    part: "options section",
                    needed: 8,
                    available: 3,
                }),
            },
        );
        assert_eq!(
            e.to_string(),
            "t.dat: at byte 4096: truncated options section: 8 bytes needed, 3 left (at byte 40 \
             of the data of the options section whose header is here)"
        );
        let e = TraceError::new("t.dat", 128, DatError::UnsupportedVersion { version: 8 });
        assert_eq!(
            e.to_string(),
            "t.dat: at byte 128: unsupported .dat version 8 (6 and 7 are read)"
        );
    }
}

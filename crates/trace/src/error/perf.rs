//! What can go wrong reading a perf.data file (`perf record`'s output, file or pipe mode).
//!
//! Each kind carries the values that explain it: the size found and the size there was room
//! for, the record type, the section. The byte offset is in the enclosing
//! [`TraceError`](crate::TraceError); for a record it is where the record starts in the file
//! (for a record inside a compressed one, where the compressed record starts).

use std::fmt;

use super::FormatError;

/// A perf.data failure. `Display` writes the sentence a user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PerfError {
    /// The file does not start with perf.data's magic, `PERFILE2`.
    NotPerfData {
        /// The file's first bytes (fewer than 8 when the file is shorter).
        found: Vec<u8>,
    },
    /// The magic of perf.data version 1 (`PERFFILE`, perf of 2009–2010).
    UnsupportedVersion1,
    /// A perf.data written on a big-endian machine (magic `2ELIFREP`).
    UnsupportedBigEndian,
    /// The file ends inside its header.
    TruncatedHeader { needed: u64, file_len: u64 },
    /// The header's own size is neither 16 (pipe mode) nor that of a file-mode header.
    BadHeaderSize { size: u64 },
    /// The header gives the data section a size of 0: `perf record` did not finish the file.
    UnfinishedFile,
    /// The size of one entry of the attribute section is too small to hold an attribute and
    /// its id section.
    BadAttrSize { attr_size: u64 },
    /// The attribute section's size is not a whole number of entries.
    AttrSectionNotMultiple { size: u64, attr_size: u64 },
    /// A section the header points to lies, at least in part, beyond the end of the file.
    SectionOutOfBounds {
        section: PerfSection,
        offset: u64,
        size: u64,
        file_len: u64,
    },
    /// The file describes no event at all.
    NoAttributes,
    /// Several events were recorded but their samples carry no id (`PERF_SAMPLE_IDENTIFIER`
    /// or `PERF_SAMPLE_ID`), so a sample cannot be told from another event's.
    NoSampleId { attrs: u32 },
    /// Two events place the sample id at different positions (perf refuses such files too).
    InconsistentIdPosition { attr: u32 },
    /// No tracepoint formats: the recording holds no tracepoint event.
    NoTracingData,
    /// The tracing data does not start with `\x17\x08\x44tracing`.
    TracingDataMagic,
    /// The tracing data ends before a part whose size it gave.
    TracingDataTruncated { needed: u64, left: u64 },
    /// An expected section name of the tracing data is missing.
    TracingDataMissingTag { expected: &'static str },
    /// The tracing data's byte-order flag is neither 0 nor 1.
    TracingDataEndianFlag { flag: u8 },
    /// A string of the tracing data has no terminating NUL.
    TracingDataUnterminated { what: &'static str },
    /// A tracepoint format of the tracing data does not parse.
    TracingDataFormat { system: String, error: FormatError },
    /// The data ends inside a record's 8-byte header.
    RecordHeaderPastEnd { left: u64 },
    /// A record header gives a size smaller than the header itself.
    RecordSizeTooSmall {
        record_type: PerfRecordType,
        size: u16,
    },
    /// A record (or the payload that follows it) runs past the end of the data.
    RecordPastEnd {
        record_type: PerfRecordType,
        size: u64,
        left: u64,
    },
    /// A record is shorter than what its type and its event's `sample_type` put in it.
    RecordTooShort {
        record_type: PerfRecordType,
        size: u64,
        needed: u64,
    },
    /// A variable-size part of a sample (its raw tracepoint data, call chain, counter
    /// values) is larger than what is left of the record.
    SampleItemPastEnd {
        item: &'static str,
        needed: u64,
        left: u64,
    },
    /// A compressed record uses an algorithm this reader does not decompress.
    UnsupportedCompression { algorithm: u32 },
    /// The zstd data of a compressed record does not decompress.
    Decompression { message: String },
    /// One compressed record decompresses to more than this reader accepts.
    DecompressedTooLarge { limit: u64 },
}

/// A section a perf.data header points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerfSection {
    /// The event attributes (`perf_event_attr`s).
    Attrs,
    /// The sample ids of one attribute.
    AttrIds { attr: u32 },
    /// The records.
    Data,
    /// The table of feature sections, after the data.
    FeatureTable,
    /// One feature section (`HEADER_HOSTNAME` is bit 3, `HEADER_TRACING_DATA` bit 1…).
    Feature { bit: u32 },
}

/// A perf.data record type (`perf_event_header.type`), named as perf names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PerfRecordType(pub u32);

impl PerfRecordType {
    /// The name perf gives the type (`SAMPLE`, `FINISHED_ROUND`…), if it is one it defines.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "MMAP",
            2 => "LOST",
            3 => "COMM",
            4 => "EXIT",
            5 => "THROTTLE",
            6 => "UNTHROTTLE",
            7 => "FORK",
            8 => "READ",
            9 => "SAMPLE",
            10 => "MMAP2",
            11 => "AUX",
            12 => "ITRACE_START",
            13 => "LOST_SAMPLES",
            14 => "SWITCH",
            15 => "SWITCH_CPU_WIDE",
            16 => "NAMESPACES",
            17 => "KSYMBOL",
            18 => "BPF_EVENT",
            19 => "CGROUP",
            20 => "TEXT_POKE",
            21 => "AUX_OUTPUT_HW_ID",
            64 => "HEADER_ATTR",
            65 => "HEADER_EVENT_TYPE",
            66 => "HEADER_TRACING_DATA",
            67 => "HEADER_BUILD_ID",
            68 => "FINISHED_ROUND",
            69 => "ID_INDEX",
            70 => "AUXTRACE_INFO",
            71 => "AUXTRACE",
            72 => "AUXTRACE_ERROR",
            73 => "THREAD_MAP",
            74 => "CPU_MAP",
            75 => "STAT_CONFIG",
            76 => "STAT",
            77 => "STAT_ROUND",
            78 => "EVENT_UPDATE",
            79 => "TIME_CONV",
            80 => "HEADER_FEATURE",
            81 => "COMPRESSED",
            82 => "FINISHED_INIT",
            83 => "COMPRESSED2",
            _ => return None,
        })
    }
}

impl fmt::Display for PerfRecordType {
    /// `SAMPLE record`, or `record of type 123` for a type perf does not define.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} record"),
            None => write!(f, "record of type {}", self.0),
        }
    }
}

impl fmt::Display for PerfSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PerfSection::Attrs => f.write_str("the event attribute section"),
            PerfSection::AttrIds { attr } => write!(f, "the sample ids of event {attr}"),
            PerfSection::Data => f.write_str("the data section"),
            PerfSection::FeatureTable => f.write_str("the feature section table"),
            PerfSection::Feature { bit } => match feature_name(*bit) {
                Some(name) => write!(f, "the {name} feature section"),
                None => write!(f, "feature section {bit}"),
            },
        }
    }
}

/// perf's name of a feature bit, for the ones a reader of tracepoints meets.
fn feature_name(bit: u32) -> Option<&'static str> {
    Some(match bit {
        1 => "HEADER_TRACING_DATA",
        2 => "HEADER_BUILD_ID",
        3 => "HEADER_HOSTNAME",
        4 => "HEADER_OSRELEASE",
        5 => "HEADER_VERSION",
        6 => "HEADER_ARCH",
        7 => "HEADER_NRCPUS",
        8 => "HEADER_CPUDESC",
        9 => "HEADER_CPUID",
        10 => "HEADER_TOTAL_MEM",
        11 => "HEADER_CMDLINE",
        12 => "HEADER_EVENT_DESC",
        27 => "HEADER_COMPRESSED",
        _ => return None,
    })
}

impl fmt::Display for PerfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PerfError::NotPerfData { found } => write!(
                f,
                "not a perf.data file: it starts with {:?}, not \"PERFILE2\"",
                String::from_utf8_lossy(found)
            ),
            PerfError::UnsupportedVersion1 => f.write_str(
                "perf.data version 1 (perf of 2009–2010) is not supported; convert it with a newer perf",
            ),
            PerfError::UnsupportedBigEndian => f.write_str(
                "perf.data recorded on a big-endian machine is not supported; read it there with `perf script`",
            ),
            PerfError::TruncatedHeader { needed, file_len } => write!(
                f,
                "the file is truncated: its header needs {needed} bytes, the file has {file_len}"
            ),
            PerfError::BadHeaderSize { size } => write!(
                f,
                "the header says it is {size} bytes long, neither 16 (pipe mode) nor at least 72 (file mode)"
            ),
            PerfError::BadAttrSize { attr_size } => write!(
                f,
                "event attribute entries of {attr_size} bytes are too small (at least 80 expected)"
            ),
            PerfError::UnfinishedFile => f.write_str(
                "the header gives the data section a size of 0: `perf record` did not finish \
                 writing this file (was it killed?), and its tracepoint formats are missing",
            ),
            PerfError::AttrSectionNotMultiple { size, attr_size } => write!(
                f,
                "the event attribute section ({size} bytes) is not a whole number of {attr_size}-byte entries"
            ),
            PerfError::SectionOutOfBounds {
                section,
                offset,
                size,
                file_len,
            } => write!(
                f,
                "{section} ({size} bytes at byte {offset}) lies beyond the end of the file \
                 ({file_len} bytes): the file is truncated or damaged"
            ),
            PerfError::NoAttributes => f.write_str("the file describes no recorded event"),
            PerfError::NoSampleId { attrs } => write!(
                f,
                "{attrs} events were recorded but their samples carry no event id, so they cannot be told apart"
            ),
            PerfError::InconsistentIdPosition { attr } => write!(
                f,
                "event {attr} places the sample id elsewhere than event 0 (perf refuses such files too)"
            ),
            PerfError::NoTracingData => f.write_str(
                "perf.data has no tracing data: no tracepoint events were recorded \
                 (record with -e 'sched:*' -e 'kvm:*', or use `virtflow record`)",
            ),
            PerfError::TracingDataMagic => {
                f.write_str("the tracing data does not start with \"\\x17\\x08\\x44tracing\"")
            }
            PerfError::TracingDataTruncated { needed, left } => write!(
                f,
                "the tracing data is truncated: {needed} bytes needed, {left} left"
            ),
            PerfError::TracingDataMissingTag { expected } => {
                write!(f, "the tracing data lacks its {expected:?} part here")
            }
            PerfError::TracingDataEndianFlag { flag } => write!(
                f,
                "the tracing data's byte-order flag is {flag} (0 or 1 expected)"
            ),
            PerfError::TracingDataUnterminated { what } => {
                write!(f, "the tracing data's {what} has no terminating NUL")
            }
            PerfError::TracingDataFormat { system, error } => write!(
                f,
                "a {system} tracepoint format of the tracing data, {error}"
            ),
            PerfError::RecordHeaderPastEnd { left } => write!(
                f,
                "the data ends inside a record header ({left} of its 8 bytes are there): \
                 the file is truncated or damaged"
            ),
            PerfError::RecordSizeTooSmall { record_type, size } => write!(
                f,
                "{record_type} gives its size as {size} bytes, less than its 8-byte header"
            ),
            PerfError::RecordPastEnd {
                record_type,
                size,
                left,
            } => write!(
                f,
                "{record_type} of {size} bytes runs past the end of the data ({left} bytes left): \
                 the file is truncated or damaged"
            ),
            PerfError::RecordTooShort {
                record_type,
                size,
                needed,
            } => write!(
                f,
                "{record_type} of {size} bytes is too short for its fields ({needed} bytes needed)"
            ),
            PerfError::SampleItemPastEnd { item, needed, left } => write!(
                f,
                "a sample's {item} needs {needed} bytes, {left} are left in the record"
            ),
            PerfError::UnsupportedCompression { algorithm } => write!(
                f,
                "compressed records of algorithm {algorithm} are not supported (only zstd, 1)"
            ),
            PerfError::Decompression { message } => {
                write!(f, "a compressed record does not decompress: {message}")
            }
            PerfError::DecompressedTooLarge { limit } => write!(
                f,
                "a compressed record decompresses to more than {limit} bytes"
            ),
        }
    }
}

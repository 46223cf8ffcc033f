//! Feature sections: what `perf record` says about the recording besides its records.
//!
//! In file mode a table after the data section holds one `{offset, size}` per bit set in the
//! header's feature bitmap, in bit order; in pipe mode each feature arrives as a
//! `HEADER_FEATURE` record with the same payload. This reader keeps the tracepoint formats
//! (`HEADER_TRACING_DATA`, parsed in [`super::tracing`]), the compression parameters, the
//! event names, and the strings that describe the host ([`PerfInfo`]). Only the tracing data
//! is required: another feature that cannot be read is skipped with a warning.

use std::ops::Range;

use virtflow_trace::error::PerfSection;

use super::bytes::{u32_at, u64_at, until_nul, Failure};
use super::header::{FileHeader, Section};

pub(super) const TRACING_DATA: u32 = 1;
const HOSTNAME: u32 = 3;
const OSRELEASE: u32 = 4;
const VERSION: u32 = 5;
const ARCH: u32 = 6;
const NRCPUS: u32 = 7;
const CPUDESC: u32 = 8;
const EVENT_DESC: u32 = 12;
const COMPRESSED: u32 = 27;

/// What the recording host and perf said about themselves (the `HEADER_*` strings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerfInfo {
    /// `uname -n` of the recording host (`HEADER_HOSTNAME`).
    pub hostname: Option<String>,
    /// `uname -r` (`HEADER_OSRELEASE`).
    pub os_release: Option<String>,
    /// The version of the perf that recorded (`HEADER_VERSION`).
    pub perf_version: Option<String>,
    /// `uname -m` (`HEADER_ARCH`).
    pub arch: Option<String>,
    /// CPUs the host could have and had online (`HEADER_NRCPUS`).
    pub nr_cpus_available: Option<u32>,
    pub nr_cpus_online: Option<u32>,
    /// The processor's model name (`HEADER_CPUDESC`).
    pub cpu_desc: Option<String>,
}

/// `HEADER_COMPRESSED`: how `COMPRESSED` records were written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Compression {
    /// 1 is zstd.
    pub algorithm: u32,
    /// The ring buffer's size: what one compressed record decompresses to at most.
    pub mmap_len: u32,
}

/// The features this reader uses.
#[derive(Debug, Default)]
pub(super) struct Features {
    pub info: PerfInfo,
    /// The tracing data's place in the file (file mode).
    pub tracing_data: Option<Range<usize>>,
    pub compression: Option<Compression>,
    /// Event names by attribute index (`HEADER_EVENT_DESC`), for messages.
    pub event_names: Vec<String>,
    /// Features that could not be read, said in a user's words.
    pub warnings: Vec<String>,
}

impl Features {
    /// Reads the feature table of a file-mode perf.data and the features it points to.
    pub fn from_table(bytes: &[u8], header: &FileHeader) -> Result<Features, Failure> {
        let mut features = Features::default();
        let table_at = header.data.offset.saturating_add(header.data.size);
        let count: u32 = header.features.iter().map(|w| w.count_ones()).sum();
        let table = Section {
            offset: table_at,
            size: 16 * count as u64,
        }
        .range(
            bytes.len(),
            PerfSection::FeatureTable,
            super::header::DATA_AT,
        )?;
        let mut slot = 0usize;
        for bit in 0..256u32 {
            if header.features[bit as usize / 64] & (1 << (bit % 64)) == 0 {
                continue;
            }
            let entry_at = table.start + 16 * slot;
            slot += 1;
            let Some(section) = Section::read(bytes, entry_at) else {
                break; // unreachable: the table was checked to lie inside the file
            };
            // perf leaves a zeroed slot for a feature it failed to write.
            if section.offset == 0 && section.size == 0 {
                continue;
            }
            let range =
                match section.range(bytes.len(), PerfSection::Feature { bit }, entry_at as u64) {
                    Ok(r) => r,
                    // Without the formats no tracepoint can be read: that one is fatal.
                    Err(e) if bit == TRACING_DATA => return Err(e),
                    Err(e) => {
                        features.warnings.push(format!(
                            "at byte {}: {}; that feature is ignored",
                            e.offset, e.kind
                        ));
                        continue;
                    }
                };
            if bit == TRACING_DATA {
                features.tracing_data = Some(range);
            } else {
                features.apply(bit, &bytes[range]);
            }
        }
        Ok(features)
    }

    /// Takes in one feature's payload (a file-mode section or a pipe-mode `HEADER_FEATURE`
    /// record's), except the tracing data, whose place the caller keeps.
    pub fn apply(&mut self, bit: u32, payload: &[u8]) {
        let string = || header_string(payload);
        match bit {
            HOSTNAME => self.info.hostname = string(),
            OSRELEASE => self.info.os_release = string(),
            VERSION => self.info.perf_version = string(),
            ARCH => self.info.arch = string(),
            CPUDESC => self.info.cpu_desc = string(),
            NRCPUS => {
                // The order is available, then online (perf's documentation has it reversed).
                self.info.nr_cpus_available = u32_at(payload, 0);
                self.info.nr_cpus_online = u32_at(payload, 4);
            }
            COMPRESSED => {
                // version, type, level, ratio, mmap_len.
                if let (Some(algorithm), Some(mmap_len)) = (u32_at(payload, 4), u32_at(payload, 16))
                {
                    self.compression = Some(Compression {
                        algorithm,
                        mmap_len,
                    });
                }
            }
            EVENT_DESC => self.event_names = event_names(payload),
            _ => {}
        }
    }
}

/// A `perf_header_string`: `u32 len`, then `len` bytes holding a NUL-terminated string.
/// `None` when it does not fit in `b` or is empty.
fn header_string(b: &[u8]) -> Option<String> {
    let len = u32_at(b, 0)? as usize;
    let text = until_nul(b.get(4..4usize.checked_add(len)?)?);
    (!text.is_empty()).then(|| String::from_utf8_lossy(text).into_owned())
}

/// The names of `HEADER_EVENT_DESC`: `u32 nr, u32 attr_size`, then per event the attribute,
/// `u32 nr_ids`, the name as a header string, and the ids. Stops at the first entry that does
/// not fit (no count from the file sizes anything before it is checked).
fn event_names(b: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let (Some(nr), Some(attr_size)) = (u32_at(b, 0), u32_at(b, 4)) else {
        return names;
    };
    let mut pos = 8usize;
    for _ in 0..nr {
        let Some(ids_at) = pos.checked_add(attr_size as usize) else {
            break;
        };
        let (Some(nr_ids), Some(len)) = (u32_at(b, ids_at), u32_at(b, ids_at + 4)) else {
            break;
        };
        let name_at = ids_at + 8;
        let Some(name) = name_at
            .checked_add(len as usize)
            .and_then(|end| b.get(name_at..end))
        else {
            break;
        };
        names.push(String::from_utf8_lossy(until_nul(name)).into_owned());
        let Some(next) = (name_at + len as usize).checked_add(8 * nr_ids as usize) else {
            break;
        };
        pos = next;
    }
    names
}

/// The payload of a pipe-mode `HEADER_FEATURE` record: its feature bit and bytes.
pub(super) fn feature_record(rec: &[u8]) -> Option<(u32, &[u8])> {
    let bit = u64_at(rec, 8)?;
    Some((u32::try_from(bit).ok()?, rec.get(16..)?))
}

//! LTTng packet index files (`index/<stream>.idx`, the CTF index format): one entry per packet
//! of a stream file, giving its offset and sizes, its first and last timestamps (raw clock
//! values), its discarded-event counter and (index 1.1) its sequence number.
//!
//! The reader scans packets itself; an index, when present and consistent with the stream
//! file, gives the packet list up front, which lets [`crate::CtfSource::seek`] start at a
//! timestamp without reading what comes before. An index that is unreadable or disagrees with
//! the file is ignored with a warning: scanning yields the same events.

use std::path::Path;
use virtflow_trace::error::{CtfError, IndexError};
use virtflow_trace::TraceError;

const MAGIC: u32 = 0xC1F1_DCC1;
/// Bytes of an index 1.0 entry: seven 64-bit fields.
const ENTRY_1_0: usize = 56;
/// Bytes of an index 1.1 entry: nine 64-bit fields.
const ENTRY_1_1: usize = 72;
const HEADER: usize = 16;

/// One packet as the index describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketEntry {
    /// Byte offset of the packet in the stream file.
    pub offset: u64,
    /// Packet size in bits.
    pub packet_size: u64,
    /// Content size in bits.
    pub content_size: u64,
    /// Raw clock values (cycles) of the packet's first and last events.
    pub ts_begin: u64,
    pub ts_end: u64,
    /// Discarded-event counter at the end of the packet (`None` when the tracer did not say).
    pub events_discarded: Option<u64>,
    pub stream_id: u64,
    /// Packet sequence number (index 1.1 and later; `None` when unknown).
    pub seq_num: Option<u64>,
}

/// Reads and checks the index of a stream file of `file_len` bytes. `Ok(None)`: no index.
/// `Err`: an index that cannot be trusted, and why (the caller warns and scans).
pub fn read(idx: &Path, file_len: u64) -> Result<Option<Vec<PacketEntry>>, TraceError> {
    let data = match std::fs::read(idx) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TraceError::io(idx, e)),
    };
    parse(&data, file_len)
        .map(Some)
        .map_err(|(off, e)| TraceError::new(idx, off as u64, CtfError::Index(e)))
}

/// Parses index bytes and checks them against a stream file of `file_len` bytes: packets in
/// order, back to back, covering the file, each with its content inside it.
pub fn parse(data: &[u8], file_len: u64) -> Result<Vec<PacketEntry>, (usize, IndexError)> {
    let u32_at = |o: usize| u32::from_be_bytes(data[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_be_bytes(data[o..o + 8].try_into().unwrap());
    if data.len() < HEADER {
        return Err((
            0,
            IndexError::TruncatedHeader {
                size: data.len() as u64,
            },
        ));
    }
    if u32_at(0) != MAGIC {
        return Err((0, IndexError::BadMagic { found: u32_at(0) }));
    }
    let (major, minor, len) = (u32_at(4), u32_at(8), u32_at(12) as usize);
    if major != 1 {
        return Err((4, IndexError::UnsupportedVersion { major, minor }));
    }
    let with_seq = minor >= 1;
    let need = if with_seq { ENTRY_1_1 } else { ENTRY_1_0 };
    if len < need {
        return Err((
            12,
            IndexError::EntriesTooShort {
                entry_size: len as u32,
                needed: need as u32,
            },
        ));
    }
    let body = data.len() - HEADER;
    if body % len != 0 {
        return Err((
            HEADER + body / len * len,
            IndexError::TruncatedEntry {
                left: (body % len) as u64,
            },
        ));
    }
    let mut out: Vec<PacketEntry> = Vec::with_capacity(body / len);
    let mut expect_offset = 0u64;
    for k in 0..body / len {
        let o = HEADER + k * len;
        let opt = |v: u64| (v != u64::MAX).then_some(v);
        let e = PacketEntry {
            offset: u64_at(o),
            packet_size: u64_at(o + 8),
            content_size: u64_at(o + 16),
            ts_begin: u64_at(o + 24),
            ts_end: u64_at(o + 32),
            events_discarded: opt(u64_at(o + 40)),
            stream_id: u64_at(o + 48),
            seq_num: if with_seq { opt(u64_at(o + 64)) } else { None },
        };
        if e.offset != expect_offset {
            return Err((
                o,
                IndexError::PacketsNotContiguous {
                    offset: e.offset,
                    expected: expect_offset,
                },
            ));
        }
        if e.packet_size == 0
            || e.packet_size % 8 != 0
            || e.content_size > e.packet_size
            || e.ts_end < e.ts_begin
        {
            return Err((
                o,
                IndexError::InconsistentEntry {
                    packet_size_bits: e.packet_size,
                    content_size_bits: e.content_size,
                    ts_begin: e.ts_begin,
                    ts_end: e.ts_end,
                },
            ));
        }
        expect_offset = e.offset.saturating_add(e.packet_size / 8);
        if expect_offset > file_len {
            return Err((
                o,
                IndexError::PacketBeyondFile {
                    end: expect_offset,
                    file_size: file_len,
                },
            ));
        }
        if let Some(prev) = out.last() {
            if e.ts_begin < prev.ts_begin {
                return Err((
                    o,
                    IndexError::OutOfTimeOrder {
                        ts_begin: e.ts_begin,
                        previous: prev.ts_begin,
                    },
                ));
            }
        }
        out.push(e);
    }
    if expect_offset != file_len {
        return Err((
            data.len(),
            IndexError::IncompleteCoverage {
                covered: expect_offset,
                file_size: file_len,
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: &mut Vec<u8>, fields: [u64; 9]) {
        for f in fields {
            v.extend_from_slice(&f.to_be_bytes());
        }
    }

    fn header(minor: u32, len: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [MAGIC, 1, minor, len] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v
    }

    #[test]
    fn reads_entries_and_checks_coverage() {
        let mut v = header(1, 72);
        entry(&mut v, [0, 4096 * 8, 100 * 8, 10, 20, 0, 0, 0, 0]);
        entry(
            &mut v,
            [4096, 4096 * 8, 4096 * 8, 20, 30, u64::MAX, 0, 0, 3],
        );
        let e = parse(&v, 8192).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].offset, 4096);
        assert_eq!(e[1].events_discarded, None);
        assert_eq!(e[1].seq_num, Some(3));
        assert!(matches!(
            parse(&v, 8193),
            Err((
                _,
                IndexError::IncompleteCoverage {
                    covered: 8192,
                    file_size: 8193
                }
            ))
        ));
        assert!(matches!(
            parse(&v, 4096),
            Err((88, IndexError::PacketBeyondFile { end: 8192, .. }))
        ));
        assert!(matches!(
            parse(&v[..v.len() - 1], 8192),
            Err((88, IndexError::TruncatedEntry { left: 71 }))
        ));
        let mut bad = v.clone();
        bad[0] = 0;
        assert!(matches!(
            parse(&bad, 8192),
            Err((0, IndexError::BadMagic { found: 0x00F1_DCC1 }))
        ));
        let mut gap = header(1, 72);
        entry(&mut gap, [0, 4096 * 8, 100 * 8, 10, 20, 0, 0, 0, 0]);
        entry(&mut gap, [4097, 4096 * 8, 4096 * 8, 20, 30, 0, 0, 0, 1]);
        assert!(matches!(
            parse(&gap, 8193),
            Err((
                88,
                IndexError::PacketsNotContiguous {
                    offset: 4097,
                    expected: 4096
                }
            ))
        ));
    }

    /// An index that cannot be trusted is an error of the index file, at the byte where it
    /// goes wrong.
    #[test]
    fn a_bad_index_names_its_file_and_byte() {
        let dir = std::env::temp_dir().join(format!("virtflow-ctf-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let idx = dir.join("stream_0.idx");
        let mut v = header(1, 72);
        entry(&mut v, [0, 4096 * 8, 100 * 8, 30, 20, 0, 0, 0, 0]);
        std::fs::write(&idx, &v).unwrap();
        let e = read(&idx, 4096).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((e.path.as_path(), e.offset), (idx.as_path(), 16));
        assert!(matches!(
            e.kind,
            virtflow_trace::ErrorKind::Ctf(CtfError::Index(IndexError::InconsistentEntry {
                ts_begin: 30,
                ts_end: 20,
                ..
            }))
        ));
        assert!(read(&dir.join("none.idx"), 4096).unwrap().is_none());
    }

    #[test]
    fn version_1_0_has_no_sequence_numbers() {
        let mut v = header(0, 56);
        let mut e = Vec::new();
        entry(&mut e, [0, 64, 64, 1, 2, 0, 0, 0, 0]);
        v.extend_from_slice(&e[..56]);
        let p = parse(&v, 8).unwrap();
        assert_eq!(p[0].seq_num, None);
    }
}

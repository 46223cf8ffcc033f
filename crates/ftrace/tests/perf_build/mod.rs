//! Writing perf.data files for the perf reader's tests: from scratch (synthetic recordings
//! whose every record the test chose) or by rewriting a real one (in pipe mode, with its
//! records compressed, damaged).

#![allow(dead_code)]

use std::collections::BTreeMap;

pub const SAMPLE: u32 = 9;
pub const LOST: u32 = 2;
pub const COMM: u32 = 3;
pub const FORK: u32 = 7;
pub const HEADER_ATTR: u32 = 64;
pub const HEADER_TRACING_DATA: u32 = 66;
pub const FINISHED_ROUND: u32 = 68;
pub const HEADER_FEATURE: u32 = 80;
pub const COMPRESSED: u32 = 81;

pub const FEATURE_TRACING_DATA: u32 = 1;
pub const FEATURE_HOSTNAME: u32 = 3;
pub const FEATURE_OSRELEASE: u32 = 4;
pub const FEATURE_NRCPUS: u32 = 7;
pub const FEATURE_COMPRESSED: u32 = 27;

// `sample_type` bits.
pub const IP: u64 = 1 << 0;
pub const TID: u64 = 1 << 1;
pub const TIME: u64 = 1 << 2;
pub const CPU: u64 = 1 << 7;
pub const PERIOD: u64 = 1 << 8;
pub const RAW: u64 = 1 << 10;
pub const IDENTIFIER: u64 = 1 << 16;

pub use virtflow_testkit::shared_traces as traces;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A perf.data's parts, as a writer lays them out.
#[derive(Clone, Debug, Default)]
pub struct PerfFile {
    /// Each event: its `perf_event_attr` bytes and its sample ids.
    pub attrs: Vec<(Vec<u8>, Vec<u64>)>,
    /// The records.
    pub data: Vec<u8>,
    /// Feature payloads by bit.
    pub features: BTreeMap<u32, Vec<u8>>,
}

impl PerfFile {
    /// Reads a file-mode perf.data (a well-formed one: this is a test helper).
    pub fn parse(b: &[u8]) -> PerfFile {
        assert_eq!(&b[..8], b"PERFILE2");
        let attr_size = u64_at(b, 16) as usize;
        let (attrs_at, attrs_size) = (u64_at(b, 24) as usize, u64_at(b, 32) as usize);
        let (data_at, data_size) = (u64_at(b, 40) as usize, u64_at(b, 48) as usize);
        let mut attrs = Vec::new();
        for entry in (attrs_at..attrs_at + attrs_size).step_by(attr_size) {
            let attr = b[entry..entry + attr_size - 16].to_vec();
            let ids_at = entry + attr_size - 16;
            let (off, size) = (u64_at(b, ids_at) as usize, u64_at(b, ids_at + 8) as usize);
            let ids = (0..size / 8).map(|i| u64_at(b, off + 8 * i)).collect();
            attrs.push((attr, ids));
        }
        let mut features = BTreeMap::new();
        let mut slot = 0;
        for bit in 0..256u32 {
            if u64_at(b, 72 + 8 * (bit as usize / 64)) & (1 << (bit % 64)) != 0 {
                let entry = data_at + data_size + 16 * slot;
                let (off, size) = (u64_at(b, entry) as usize, u64_at(b, entry + 8) as usize);
                features.insert(bit, b[off..off + size].to_vec());
                slot += 1;
            }
        }
        PerfFile {
            attrs,
            data: b[data_at..data_at + data_size].to_vec(),
            features,
        }
    }

    /// The records of the data: (offset in `data`, type, the record's bytes).
    pub fn records(&self) -> Vec<(usize, u32, &[u8])> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + 8 <= self.data.len() {
            let kind = u32_at(&self.data, pos);
            let size = u16::from_le_bytes([self.data[pos + 6], self.data[pos + 7]]) as usize;
            out.push((pos, kind, &self.data[pos..pos + size]));
            pos += size;
        }
        out
    }

    /// The file-mode bytes: header, ids, attributes, data, feature table, features.
    pub fn write(&self) -> Vec<u8> {
        let attr_size = self.attrs.first().map_or(128, |a| a.0.len()) + 16;
        let mut out = vec![0u8; 104];
        let mut id_sections = Vec::new();
        for (_, ids) in &self.attrs {
            id_sections.push((out.len() as u64, 8 * ids.len() as u64));
            for id in ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        let attrs_at = out.len();
        for ((attr, _), (off, size)) in self.attrs.iter().zip(&id_sections) {
            out.extend_from_slice(attr);
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
        }
        let data_at = out.len();
        out.extend_from_slice(&self.data);
        let table_at = out.len();
        out.resize(table_at + 16 * self.features.len(), 0);
        let mut bitmap = [0u64; 4];
        for (i, (bit, payload)) in self.features.iter().enumerate() {
            bitmap[*bit as usize / 64] |= 1 << (bit % 64);
            let at = out.len() as u64;
            out.extend_from_slice(payload);
            let entry = table_at + 16 * i;
            out[entry..entry + 8].copy_from_slice(&at.to_le_bytes());
            out[entry + 8..entry + 16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        }
        out[..8].copy_from_slice(b"PERFILE2");
        let fields = [
            104,
            attr_size as u64,
            attrs_at as u64,
            (self.attrs.len() * attr_size) as u64,
            data_at as u64,
            self.data.len() as u64,
            0,
            0,
        ];
        for (i, v) in fields.iter().enumerate() {
            out[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        for (i, w) in bitmap.iter().enumerate() {
            out[72 + 8 * i..80 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// The pipe-mode bytes (`perf record -o -`): header records, then the data.
    pub fn write_pipe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"PERFILE2");
        out.extend_from_slice(&16u64.to_le_bytes());
        for (attr, ids) in &self.attrs {
            let mut body = attr.clone();
            for id in ids {
                body.extend_from_slice(&id.to_le_bytes());
            }
            out.extend(record(HEADER_ATTR, 0, &body));
        }
        for (bit, payload) in &self.features {
            if *bit == FEATURE_TRACING_DATA {
                continue;
            }
            let mut body = (*bit as u64).to_le_bytes().to_vec();
            body.extend_from_slice(payload);
            // Feature records are not padded.
            out.extend(unpadded_record(HEADER_FEATURE, &body));
        }
        if let Some(tracing) = self.features.get(&FEATURE_TRACING_DATA) {
            let mut blob = tracing.clone();
            blob.resize(tracing.len().div_ceil(8) * 8, 0);
            // perf 6.1: a 12-byte record, then the blob.
            let mut rec = Vec::new();
            rec.extend_from_slice(&HEADER_TRACING_DATA.to_le_bytes());
            rec.extend_from_slice(&0u16.to_le_bytes());
            rec.extend_from_slice(&12u16.to_le_bytes());
            rec.extend_from_slice(&(blob.len() as u32).to_le_bytes());
            out.extend(rec);
            out.extend(blob);
        }
        out.extend_from_slice(&self.data);
        out
    }

    /// The same file with its records compressed as `perf record -z` does: one zstd stream,
    /// one `COMPRESSED` record per `chunk` bytes of records (cut anywhere, even inside a
    /// record), `FINISHED_ROUND`s left uncompressed between them.
    pub fn compressed(&self, chunk: usize) -> PerfFile {
        let mut encoder = zstd::stream::raw::Encoder::new(1).unwrap();
        let mut data = Vec::new();
        let mut pending = Vec::new();
        let mut flush = |pending: &mut Vec<u8>, data: &mut Vec<u8>| {
            use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
            for piece in pending.chunks(chunk) {
                let mut out = vec![0u8; 2 * chunk + 1024];
                let mut input = InBuffer::around(piece);
                let mut output = OutBuffer::around(&mut out[..]);
                encoder.run(&mut input, &mut output).unwrap();
                assert_eq!(input.pos(), piece.len());
                encoder.flush(&mut output).unwrap();
                let n = output.pos();
                // perf 6.1 does not pad compressed records: the zstd data ends the record.
                data.extend(unpadded_record(COMPRESSED, &out[..n]));
            }
            pending.clear();
        };
        for (_, kind, rec) in self.records() {
            if kind == FINISHED_ROUND {
                flush(&mut pending, &mut data);
                data.extend_from_slice(rec);
            } else {
                pending.extend_from_slice(rec);
            }
        }
        flush(&mut pending, &mut data);
        let mut file = self.clone();
        file.data = data;
        let mut compressed = Vec::new();
        for v in [0u32, 1, 1, 2, 528384] {
            compressed.extend_from_slice(&v.to_le_bytes());
        }
        file.features.insert(FEATURE_COMPRESSED, compressed);
        file
    }
}

/// A record: header (`size` rounded up to 8, the body zero-padded), then the body.
pub fn record(kind: u32, misc: u16, body: &[u8]) -> Vec<u8> {
    let size = (8 + body.len()).div_ceil(8) * 8;
    assert!(size <= 65535, "record too large");
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&misc.to_le_bytes());
    out.extend_from_slice(&(size as u16).to_le_bytes());
    out.extend_from_slice(body);
    out.resize(size, 0);
    out
}

/// A record whose size is exactly its header and body.
pub fn unpadded_record(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&u16::try_from(8 + body.len()).unwrap().to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// A `perf_event_attr` (VER7, 128 bytes) of a tracepoint event.
pub fn tracepoint_attr(id: u64, sample_type: u64) -> Vec<u8> {
    let mut a = vec![0u8; 128];
    a[0..4].copy_from_slice(&2u32.to_le_bytes());
    a[4..8].copy_from_slice(&128u32.to_le_bytes());
    a[8..16].copy_from_slice(&id.to_le_bytes());
    a[16..24].copy_from_slice(&1u64.to_le_bytes());
    a[24..32].copy_from_slice(&sample_type.to_le_bytes());
    // sample_id_all.
    a[40..48].copy_from_slice(&(1u64 << 18).to_le_bytes());
    a
}

/// The tracing data of a recording of the given formats (system, format text).
pub fn tracing_data(formats: &[(&str, &str)]) -> Vec<u8> {
    let mut t = b"\x17\x08\x44tracing0.6\0".to_vec();
    t.push(0); // little-endian
    t.push(8); // sizeof(long)
    t.extend_from_slice(&4096u32.to_le_bytes());
    t.extend_from_slice(b"header_page\0");
    t.extend_from_slice(&0u64.to_le_bytes());
    t.extend_from_slice(b"header_event\0");
    t.extend_from_slice(&0u64.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes()); // ftrace formats
    t.extend_from_slice(&(formats.len() as u32).to_le_bytes());
    for (system, text) in formats {
        t.extend_from_slice(system.as_bytes());
        t.push(0);
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&(text.len() as u64).to_le_bytes());
        t.extend_from_slice(text.as_bytes());
    }
    t.extend_from_slice(&0u32.to_le_bytes()); // kallsyms
    t.extend_from_slice(&0u32.to_le_bytes()); // printk formats
    t.extend_from_slice(&0u64.to_le_bytes()); // saved command lines
    t
}

/// A `perf_header_string` as perf writes it (length padded to 64).
pub fn header_string(s: &str) -> Vec<u8> {
    let len = (s.len() + 1).div_ceil(64) * 64;
    let mut out = (len as u32).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out.resize(4 + len, 0);
    out
}

/// The format of the synthetic tests' one tracepoint, `test:tick` (id 100): the common
/// fields, then a `u64 seq`.
pub const TICK_FORMAT: &str = "name: tick
ID: 100
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:u64 seq;\toffset:8;\tsize:8;\tsigned:0;

print fmt: \"seq=%llu\", REC->seq
";

/// The sample layout of the synthetic recordings (perf's for tracepoints).
pub const TICK_SAMPLE_TYPE: u64 = IDENTIFIER | IP | TID | TIME | CPU | PERIOD | RAW;

/// A `test:tick` sample of thread `tid` on `cpu` at `ts` carrying `seq`.
pub fn tick(id: u64, ts: u64, cpu: u32, tid: u32, seq: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes()); // ip
    b.extend_from_slice(&tid.to_le_bytes()); // pid
    b.extend_from_slice(&tid.to_le_bytes()); // tid
    b.extend_from_slice(&ts.to_le_bytes());
    b.extend_from_slice(&cpu.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes()); // period
                                              // raw: 16 bytes of record + 4 of padding, so that 4 + size is a multiple of 8.
    b.extend_from_slice(&20u32.to_le_bytes());
    b.extend_from_slice(&100u16.to_le_bytes());
    b.push(0);
    b.push(0);
    b.extend_from_slice(&(tid as i32).to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    record(SAMPLE, 0, &b)
}

/// The sample-id trailer of a non-sample record (TID, TIME, CPU, IDENTIFIER).
pub fn trailer(id: u64, ts: u64, cpu: u32, tid: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&tid.to_le_bytes());
    b.extend_from_slice(&tid.to_le_bytes());
    b.extend_from_slice(&ts.to_le_bytes());
    b.extend_from_slice(&cpu.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&id.to_le_bytes());
    b
}

/// A `COMM` record naming thread `tid` of process `pid`.
pub fn comm(id: u64, ts: u64, pid: u32, tid: u32, name: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&pid.to_le_bytes());
    b.extend_from_slice(&tid.to_le_bytes());
    let mut n = name.as_bytes().to_vec();
    n.resize((name.len() + 1).div_ceil(8) * 8, 0);
    b.extend_from_slice(&n);
    b.extend(trailer(id, ts, 0, tid));
    record(COMM, 0, &b)
}

/// A synthetic recording of `test:tick` with the given records, on host `hostname`.
pub fn tick_file(data: Vec<u8>, hostname: &str) -> PerfFile {
    let mut features = BTreeMap::new();
    features.insert(FEATURE_TRACING_DATA, tracing_data(&[("test", TICK_FORMAT)]));
    features.insert(FEATURE_HOSTNAME, header_string(hostname));
    features.insert(FEATURE_OSRELEASE, header_string("6.1.0-test"));
    let mut nrcpus = 4u32.to_le_bytes().to_vec();
    nrcpus.extend_from_slice(&2u32.to_le_bytes());
    features.insert(FEATURE_NRCPUS, nrcpus);
    PerfFile {
        attrs: vec![(tracepoint_attr(100, TICK_SAMPLE_TYPE), vec![7, 8])],
        data,
        features,
    }
}

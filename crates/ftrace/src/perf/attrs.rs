//! Event attributes (`perf_event_attr`): which event each record belongs to, and where a
//! record keeps its sample fields.
//!
//! Every record of an event is laid out by that event's `sample_type`: a `SAMPLE` holds the
//! selected items in a fixed order, and (with `sample_id_all`) every other kernel record ends
//! with a trailer of the identifying ones. The layouts are computed once per attribute
//! ([`SampleLayout`], [`TrailerLayout`]), so a record's fields are found by offset. Which
//! attribute a record belongs to is told by its sample id, found at one position for the
//! whole file (perf requires every attribute to agree on it) and looked up in the id map that
//! the attribute section (file mode) or the `HEADER_ATTR` records (pipe mode) give.

use std::collections::HashMap;

use virtflow_trace::error::{PerfError, PerfRecordType};

use super::bytes::{u32_at, u64_at};

/// `perf_event_attr.type` of a tracepoint; its `config` is then the tracepoint id.
pub(super) const TYPE_TRACEPOINT: u32 = 2;
/// The smallest `perf_event_attr` ever written (`PERF_ATTR_SIZE_VER0`).
pub(super) const ATTR_SIZE_VER0: usize = 64;

// `sample_type` bits (`PERF_SAMPLE_*`).
const IP: u64 = 1 << 0;
const TID: u64 = 1 << 1;
const TIME: u64 = 1 << 2;
const ADDR: u64 = 1 << 3;
const READ: u64 = 1 << 4;
const CALLCHAIN: u64 = 1 << 5;
const ID: u64 = 1 << 6;
const CPU: u64 = 1 << 7;
const PERIOD: u64 = 1 << 8;
const STREAM_ID: u64 = 1 << 9;
const RAW: u64 = 1 << 10;
const IDENTIFIER: u64 = 1 << 16;

// `read_format` bits (`PERF_FORMAT_*`).
const TOTAL_TIME_ENABLED: u64 = 1 << 0;
const TOTAL_TIME_RUNNING: u64 = 1 << 1;
const FORMAT_ID: u64 = 1 << 2;
const GROUP: u64 = 1 << 3;
const LOST: u64 = 1 << 4;

/// Ids below this are kept in a table (at most 256 KiB, whatever the file says).
const SMALL_IDS: u64 = 1 << 16;

/// `sample_id_all` in the flag word at offset 40.
const SAMPLE_ID_ALL: u64 = 1 << 18;

/// One recorded event.
#[derive(Clone, Debug)]
pub(super) struct Attr {
    pub kind: u32,
    pub config: u64,
    pub sample_type: u64,
    pub sample_id_all: bool,
    pub sample: SampleLayout,
    pub trailer: TrailerLayout,
}

/// Where a `SAMPLE` record of one event keeps what the reader needs. Offsets count from the
/// record's start (its 8-byte header included).
#[derive(Clone, Copy, Debug)]
pub(super) struct SampleLayout {
    pub tid: Option<u16>,
    pub time: Option<u16>,
    pub cpu: Option<u16>,
    /// Where the fixed-size items end (and the record's size must reach).
    pub fixed_end: u16,
    pub read: ReadLayout,
    pub callchain: bool,
    pub raw: bool,
    /// Where the raw data's size is when nothing of variable size comes before it (the
    /// tracepoint samples perf writes): found without walking the record.
    raw_at: Option<u16>,
}

/// The size of a sample's counter values (`PERF_SAMPLE_READ`), after `read_format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadLayout {
    Absent,
    /// One counter: a fixed number of bytes.
    Single(u16),
    /// A group: `u64 nr`, `head` more bytes, then `nr` entries of `per_member` bytes.
    Group {
        head: u16,
        per_member: u16,
    },
}

/// The `sample_id` trailer of non-sample kernel records (`sample_id_all`): offsets from the
/// trailer's start, which is `len` bytes before the record's end.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TrailerLayout {
    pub len: u16,
    pub time: Option<u16>,
    pub cpu: Option<u16>,
}

/// The fields found in a sample.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sample {
    pub time: Option<u64>,
    pub pid: Option<i32>,
    pub tid: Option<i32>,
    pub cpu: Option<u32>,
    /// `PERF_SAMPLE_RAW`'s bytes (the tracepoint record), as a range of the record.
    pub raw: Option<(u32, u32)>,
}

/// The identifying fields of a non-sample record's trailer.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Trailer {
    pub time: Option<u64>,
    pub cpu: Option<u32>,
}

impl Attr {
    /// Reads an attribute from its first `bytes` (the `perf_event_attr`, at least
    /// [`ATTR_SIZE_VER0`] bytes, checked by the caller).
    pub fn parse(bytes: &[u8]) -> Attr {
        let at = |o| u64_at(bytes, o).unwrap_or(0);
        let sample_type = at(24);
        let read_format = at(32);
        let flags = at(40);
        Attr {
            kind: u32_at(bytes, 0).unwrap_or(0),
            config: at(8),
            sample_type,
            sample_id_all: flags & SAMPLE_ID_ALL != 0,
            sample: SampleLayout::new(sample_type, read_format),
            trailer: if flags & SAMPLE_ID_ALL != 0 {
                TrailerLayout::new(sample_type)
            } else {
                TrailerLayout::default()
            },
        }
    }

    /// Where a `SAMPLE` holds its id (byte offset in the record), if it holds one.
    fn sample_id_at(&self) -> Option<usize> {
        if self.sample_type & IDENTIFIER != 0 {
            Some(8)
        } else if self.sample_type & ID != 0 {
            Some(8 + 8 * (self.sample_type & (IP | TID | TIME | ADDR)).count_ones() as usize)
        } else {
            None
        }
    }

    /// How far from a non-sample record's end its trailer holds the id.
    fn trailer_id_from_end(&self) -> Option<usize> {
        if self.sample_type & IDENTIFIER != 0 {
            Some(8)
        } else if self.sample_type & ID != 0 {
            Some(8 * (1 + (self.sample_type & (CPU | STREAM_ID)).count_ones() as usize))
        } else {
            None
        }
    }
}

impl SampleLayout {
    fn new(sample_type: u64, read_format: u64) -> SampleLayout {
        let mut at = 8u16;
        let mut item = |bit: u64| {
            (sample_type & bit != 0).then(|| {
                let here = at;
                at += 8;
                here
            })
        };
        let _identifier = item(IDENTIFIER);
        let _ip = item(IP);
        let tid = item(TID);
        let time = item(TIME);
        let _addr = item(ADDR);
        let _id = item(ID);
        let _stream_id = item(STREAM_ID);
        let cpu = item(CPU);
        let _period = item(PERIOD);
        let values = |bits: u64| 8 * (read_format & bits).count_ones() as u16;
        let read = if sample_type & READ == 0 {
            ReadLayout::Absent
        } else if read_format & GROUP != 0 {
            ReadLayout::Group {
                head: values(TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING),
                per_member: 8 + values(FORMAT_ID | LOST),
            }
        } else {
            ReadLayout::Single(
                8 + values(TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING | FORMAT_ID | LOST),
            )
        };
        let (callchain, raw) = (sample_type & CALLCHAIN != 0, sample_type & RAW != 0);
        SampleLayout {
            tid,
            time,
            cpu,
            fixed_end: at,
            read,
            callchain,
            raw,
            raw_at: (raw && !callchain && read == ReadLayout::Absent).then_some(at),
        }
    }

    /// A sample's time (0 without one) and CPU, read where they lie, nothing else (`None`:
    /// the record is shorter than its fixed items, which [`SampleLayout::parse`] reports).
    #[inline]
    pub fn time_and_cpu(&self, rec: &[u8]) -> Option<(u64, u32)> {
        if rec.len() < self.fixed_end as usize {
            return None;
        }
        let at = |o: Option<u16>| o.and_then(|o| u64_at(rec, o as usize));
        let cpu = at(self.cpu).map_or(virtflow_trace::EventHeader::NO_CPU, |v| v as u32);
        Some((at(self.time).unwrap_or(0), cpu))
    }

    /// The fields of a `SAMPLE` record `rec` (header included), every size checked against
    /// the record.
    pub fn parse(&self, rec: &[u8]) -> Result<Sample, PerfError> {
        let fixed_end = self.fixed_end as usize;
        if rec.len() < fixed_end {
            return Err(PerfError::RecordTooShort {
                record_type: PerfRecordType(super::records::SAMPLE),
                size: rec.len() as u64,
                needed: fixed_end as u64,
            });
        }
        let at = |o: Option<u16>| o.and_then(|o| u64_at(rec, o as usize));
        let pid_tid = at(self.tid);
        let mut sample = Sample {
            time: at(self.time),
            pid: pid_tid.map(|v| v as u32 as i32),
            tid: pid_tid.map(|v| (v >> 32) as u32 as i32),
            cpu: at(self.cpu).map(|v| v as u32),
            raw: None,
        };
        if !self.raw {
            return Ok(sample);
        }
        if let Some(at) = self.raw_at {
            let at = at as usize;
            if let Some(size) = u32_at(rec, at) {
                let start = at + 4;
                if size as usize <= rec.len() - start.min(rec.len()) {
                    sample.raw = Some((start as u32, size));
                    return Ok(sample);
                }
            }
        }
        let mut pos = fixed_end;
        let left = |pos: usize| (rec.len() - pos) as u64;
        let take = |pos: &mut usize, item: &'static str, n: u64| {
            if n > left(*pos) {
                return Err(PerfError::SampleItemPastEnd {
                    item,
                    needed: n,
                    left: left(*pos),
                });
            }
            *pos += n as usize;
            Ok(())
        };
        match self.read {
            ReadLayout::Absent => {}
            ReadLayout::Single(n) => take(&mut pos, "counter values", n as u64)?,
            ReadLayout::Group { head, per_member } => {
                let nr = u64_at(rec, pos).unwrap_or(u64::MAX);
                take(&mut pos, "counter group size", 8)?;
                let n = nr
                    .checked_mul(per_member as u64)
                    .and_then(|n| n.checked_add(head as u64))
                    .unwrap_or(u64::MAX);
                take(&mut pos, "counter values", n)?;
            }
        }
        if self.callchain {
            let nr = u64_at(rec, pos).unwrap_or(u64::MAX);
            take(&mut pos, "call chain length", 8)?;
            take(&mut pos, "call chain", nr.saturating_mul(8))?;
        }
        let size = u32_at(rec, pos).map_or(u64::MAX, u64::from);
        take(&mut pos, "raw data size", 4)?;
        let start = pos;
        take(&mut pos, "raw data", size)?;
        sample.raw = Some((start as u32, size as u32));
        Ok(sample)
    }
}

impl TrailerLayout {
    fn new(sample_type: u64) -> TrailerLayout {
        let mut at = 0u16;
        let mut item = |bit: u64| {
            (sample_type & bit != 0).then(|| {
                let here = at;
                at += 8;
                here
            })
        };
        let _tid = item(TID);
        let time = item(TIME);
        let _id = item(ID);
        let _stream_id = item(STREAM_ID);
        let cpu = item(CPU);
        let _identifier = item(IDENTIFIER);
        TrailerLayout { len: at, time, cpu }
    }

    /// The trailer of record `rec` whose own fields take `body` bytes after the header.
    pub fn parse(&self, rec: &[u8], record_type: u32, body: usize) -> Result<Trailer, PerfError> {
        let needed = 8 + body + self.len as usize;
        if rec.len() < needed {
            return Err(PerfError::RecordTooShort {
                record_type: PerfRecordType(record_type),
                size: rec.len() as u64,
                needed: needed as u64,
            });
        }
        let start = rec.len() - self.len as usize;
        let at = |o: Option<u16>| o.and_then(|o| u64_at(rec, start + o as usize));
        Ok(Trailer {
            time: at(self.time),
            cpu: at(self.cpu).map(|v| v as u32),
        })
    }
}

/// Every attribute of the file, and which one a record belongs to.
#[derive(Debug, Default)]
pub(super) struct Attrs {
    pub list: Vec<Attr>,
    /// Attribute by id, for ids below [`SMALL_IDS`] (`u32::MAX`: none): perf numbers ids from
    /// 1 up, and a table lookup per record is cheaper than hashing.
    small_ids: Vec<u32>,
    ids: HashMap<u64, u32>,
    /// Where samples and trailers hold the id, from the first attribute.
    sample_id_at: Option<usize>,
    trailer_id_from_end: Option<usize>,
}

impl Attrs {
    pub fn push(&mut self, attr: Attr) -> u32 {
        if self.list.is_empty() {
            self.sample_id_at = attr.sample_id_at();
            self.trailer_id_from_end = attr.trailer_id_from_end();
        }
        self.list.push(attr);
        (self.list.len() - 1) as u32
    }

    pub fn add_id(&mut self, id: u64, attr: u32) {
        if id < SMALL_IDS {
            let i = id as usize;
            if self.small_ids.len() <= i {
                self.small_ids.resize(i + 1, u32::MAX);
            }
            self.small_ids[i] = attr;
        } else {
            self.ids.insert(id, attr);
        }
    }

    /// Checks what perf checks before reading: with several events, every sample must say
    /// which event it belongs to, at the same place.
    pub fn check(&self) -> Result<(), PerfError> {
        if self.list.is_empty() {
            return Err(PerfError::NoAttributes);
        }
        if self.list.len() == 1 {
            return Ok(());
        }
        if self.sample_id_at.is_none() {
            return Err(PerfError::NoSampleId {
                attrs: self.list.len() as u32,
            });
        }
        for (i, a) in self.list.iter().enumerate().skip(1) {
            if a.sample_id_at() != self.sample_id_at
                || (a.sample_id_all && a.trailer_id_from_end() != self.trailer_id_from_end)
            {
                return Err(PerfError::InconsistentIdPosition { attr: i as u32 });
            }
        }
        Ok(())
    }

    /// The event of a `SAMPLE` record: `None` when its id names no event. An id of 0 is
    /// perf's own synthesized record, which belongs to the first event.
    #[inline]
    pub fn of_sample(&self, rec: &[u8]) -> Option<u32> {
        if self.list.len() == 1 {
            return Some(0);
        }
        let id = u64_at(rec, self.sample_id_at?)?;
        self.by_id(id)
    }

    /// The event of a non-sample kernel record, for its trailer's layout.
    pub fn of_other(&self, rec: &[u8]) -> Option<u32> {
        if self.list.len() == 1 || !self.list.first()?.sample_id_all {
            return Some(0);
        }
        let from_end = self.trailer_id_from_end?;
        let id = u64_at(rec, rec.len().checked_sub(from_end)?)?;
        self.by_id(id)
    }

    #[inline]
    fn by_id(&self, id: u64) -> Option<u32> {
        if id == 0 {
            return Some(0);
        }
        if id < SMALL_IDS {
            return self
                .small_ids
                .get(id as usize)
                .copied()
                .filter(|&a| a != u32::MAX);
        }
        self.ids.get(&id).copied()
    }
}

//! [`PerfSource`]: the cursor that reads a perf.data's records ahead, holds them back for
//! time order, and delivers them as events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use virtflow_trace::error::{PerfError, PerfRecordType};
use virtflow_trace::{
    ClassId, EventClass, EventHeader, EventSource, FieldId, FieldVisitor, LostEvents, PassedOver,
    ReadStats, Step, TraceError, Value, ValueBuilder,
};

use super::attrs::{Attrs, TYPE_TRACEPOINT};
use super::bytes::{to_usize, u16_at, u32_at, u64_at, Failure};
use super::classes::{self, Comms, SideBand};
use super::compressed::{Chunks, MAX_CHUNK};
use super::features::{Compression, PerfInfo};
use super::open::{self, add_header_attr, Opened};
use super::order::{Loc, Pending, Place, Reorder, MAX_PENDING};
use super::pages::Stretches;
use super::per_cpu::{CpusShown, LastTimes};
use super::records::{self, Frame, Framed};
use super::tracing::TracingData;
use crate::format::EventFormat;
use crate::mapped::FileBytes;
use crate::record::IntSlot;
use crate::record::{self, Endian};

/// The class number of a held `LOST`/`LOST_SAMPLES` record, which is no class.
const LOST_CLASS: u32 = u32::MAX;

/// Longest thread name kept (the kernel's are 16 bytes; a damaged record's could be 64 KiB).
const MAX_COMM: usize = 64;

/// Decompressed bytes held at most before the older half of what is held back is delivered.
const MAX_CHUNK_BYTES: usize = 2 * MAX_CHUNK;

/// The event being delivered: where its record is and what was read from it.
#[derive(Clone, Copy, Debug)]
struct Current {
    class: u32,
    loc: Loc,
    len: u32,
    /// The tracepoint record (`PERF_SAMPLE_RAW`) in the record.
    raw: (u32, u32),
    pid: Option<i32>,
    tid: Option<i32>,
    /// A side-band record's trailer length (its name ends before it).
    trailer: u16,
}

/// A perf.data file's tracepoint samples and side-band records (see the module
/// documentation).
pub struct PerfSource {
    path: PathBuf,
    file: FileBytes,
    /// The records: file mode's data section, pipe mode's stream after its header records.
    data: Range<usize>,
    attrs: Attrs,
    /// Class of each attribute (`None`: not a tracepoint, or one without a format).
    attr_class: Vec<Option<u32>>,
    classes: Vec<EventClass>,
    /// The format of each tracepoint class (tracepoint classes come first), and where its
    /// integer fields are.
    formats: Vec<EventFormat>,
    int_slots: Vec<Vec<IntSlot>>,
    /// The class of each tracepoint id recorded.
    class_of_tracepoint: HashMap<u64, u32>,
    /// The first side-band class (then the others, in [`SideBand::ALL`] order).
    sideband: u32,
    endian: Endian,
    info: PerfInfo,
    compression: Option<Compression>,
    interest: Option<Vec<bool>>,
    /// Records passed over under the interest; the CPUs whose first record outside it was
    /// held, to be announced; the `COMM` and `FORK` records outside it held only for the
    /// thread names they give, passed over when delivered.
    passed: PassedOver,
    shown: CpusShown,
    names_only: HashSet<Loc>,
    /// Each CPU's latest record read ahead, and where each loss held begins (the latest
    /// record of its CPU before it).
    cpu_last: LastTimes,
    loss_begins: HashMap<Loc, u64>,
    /// Thread names: saved command lines, then `COMM` and `FORK` records as delivered.
    comms: Comms,

    // Reading ahead.
    /// The next record of the file to read.
    pos: usize,
    chunks: Chunks,
    /// The next record to read in the newest decompressed chunk, while there is one.
    chunk_pos: Option<usize>,
    /// Bytes at the end of the newest chunk that begin a record the next chunk ends, and why
    /// they are an error should no chunk follow.
    leftover: usize,
    leftover_error: Option<Failure>,
    order: Reorder,
    /// A record without a time: delivered before anything held back, as perf does.
    immediate: Option<Pending>,
    stretches: Stretches,
    scan_done: bool,

    // Delivering.
    current: Option<Current>,
    /// The record delivered last, still pointed to, and whether a stretch counts it.
    delivered: Option<(Loc, bool)>,
    last_ts: u64,
    stats: ReadStats,
    late: u64,
    most_late_ns: u64,
    unknown_ids: u64,
    unknown_types: BTreeMap<u32, u64>,
    error: Option<TraceError>,
    finished: bool,
}

impl PerfSource {
    /// Opens a perf.data file (file or pipe mode): maps it, reads its header, attributes and
    /// features and the tracepoint formats. No record is read yet.
    pub fn open(path: &Path) -> Result<PerfSource, TraceError> {
        let file = FileBytes::open(path)?;
        PerfSource::from_file(path.to_path_buf(), file)
    }

    /// Reads a perf.data held in memory, named `path` in errors (for tests and fuzzing).
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<PerfSource, TraceError> {
        PerfSource::from_file(path.into(), FileBytes::Owned(bytes))
    }

    fn from_file(path: PathBuf, file: FileBytes) -> Result<PerfSource, TraceError> {
        let Opened {
            data,
            attrs,
            features,
            tracing,
            mut warnings,
        } = open::open(file.bytes()).map_err(|f| f.at(&path))?;
        let TracingData {
            endian,
            formats: all_formats,
            cmdlines,
        } = tracing;

        // One class per tracepoint recorded, in the order of the events.
        let by_id: HashMap<u32, &EventFormat> = all_formats.iter().map(|f| (f.id, f)).collect();
        let mut classes = Vec::new();
        let mut formats = Vec::new();
        let mut attr_class = Vec::new();
        let mut class_of_tracepoint: HashMap<u64, u32> = HashMap::new();
        for (i, attr) in attrs.list.iter().enumerate() {
            let class = if attr.kind != TYPE_TRACEPOINT {
                None
            } else if let Some(&c) = class_of_tracepoint.get(&attr.config) {
                Some(c)
            } else if let Some(format) = u32::try_from(attr.config)
                .ok()
                .and_then(|id| by_id.get(&id))
            {
                let c = classes.len() as u32;
                classes.push(classes::tracepoint_class(format));
                formats.push((*format).clone());
                class_of_tracepoint.insert(attr.config, c);
                Some(c)
            } else {
                let name = features
                    .event_names
                    .get(i)
                    .map_or("unnamed", String::as_str);
                warnings.push(format!(
                    "{}: tracepoint id {} ({name}) has no format in the tracing data; its samples are skipped",
                    path.display(),
                    attr.config
                ));
                None
            };
            attr_class.push(class);
        }
        let sideband = classes.len() as u32;
        classes.extend(SideBand::ALL.map(SideBand::class));
        let int_slots = formats
            .iter()
            .map(|f| f.fields.iter().map(IntSlot::of).collect())
            .collect();
        let mut comms: Comms = cmdlines.into_iter().collect();
        // perf names the idle tasks `swapper`, as the kernel does.
        comms.entry(0).or_insert_with(|| "swapper".to_string());
        Ok(PerfSource {
            path,
            pos: data.start,
            stretches: Stretches::new(data.start),
            data,
            attrs,
            attr_class,
            classes,
            formats,
            int_slots,
            class_of_tracepoint,
            sideband,
            endian,
            chunks: Chunks::new(features.compression.map(|c| c.mmap_len)),
            compression: features.compression,
            info: features.info,
            interest: None,
            passed: PassedOver::default(),
            shown: CpusShown::default(),
            names_only: HashSet::new(),
            cpu_last: LastTimes::default(),
            loss_begins: HashMap::new(),
            comms,
            chunk_pos: None,
            leftover: 0,
            leftover_error: None,
            order: Reorder::default(),
            immediate: None,
            scan_done: false,
            current: None,
            delivered: None,
            last_ts: 0,
            stats: ReadStats {
                warnings,
                ..ReadStats::default()
            },
            late: 0,
            most_late_ns: 0,
            unknown_ids: 0,
            unknown_types: BTreeMap::new(),
            error: None,
            finished: false,
            file,
        })
    }

    /// What the file says about the recording host and perf (`HEADER_HOSTNAME`…).
    pub fn info(&self) -> &PerfInfo {
        &self.info
    }

    /// The tracepoint format of a class (`None` for the side-band classes).
    pub fn format(&self, class: ClassId) -> Option<&EventFormat> {
        self.formats.get(class.0 as usize)
    }

    #[inline]
    fn interested(&self, class: u32) -> bool {
        self.interest
            .as_ref()
            .is_none_or(|v| v.get(class as usize).copied().unwrap_or(false))
    }

    fn sideband_of(&self, class: u32) -> Option<SideBand> {
        SideBand::ALL
            .get(class.checked_sub(self.sideband)? as usize)
            .copied()
    }

    /// The bytes of a record `len` bytes long at `loc`.
    #[inline]
    fn record_at(&self, loc: Loc, len: usize) -> Option<&[u8]> {
        match loc.place() {
            Place::File(at) => self.file.bytes().get(at..at.checked_add(len)?),
            Place::Chunk { seq, at } => self.chunks.get(seq)?.bytes.get(at..at.checked_add(len)?),
        }
    }

    /// A held record's bytes (its size read again from its header).
    fn held_record(&self, loc: Loc) -> Option<&[u8]> {
        let head = self.record_at(loc, 8)?;
        let len = u16_at(head, 6)? as usize;
        self.record_at(loc, len)
    }

    // ---------------------------------------------------------------- reading ahead

    /// Reads the next record into the reorder queue (or the immediate slot); a failure ends
    /// reading, after which everything held is delivered, then the error.
    fn read_ahead(&mut self) {
        if let Err(f) = self.read_one() {
            self.error = Some(f.at(&self.path));
            self.scan_done = true;
        }
        if self.scan_done {
            self.order.end_all();
            self.close_stretch();
        } else if self.order.len() >= MAX_PENDING || self.chunks.held > MAX_CHUNK_BYTES {
            self.order.force();
            self.close_stretch();
        }
    }

    fn read_one(&mut self) -> Result<(), Failure> {
        if let Some(pos) = self.chunk_pos {
            let Some((seq, bytes)) = self.chunks.newest() else {
                self.chunk_pos = None;
                return Ok(());
            };
            let file_at = self.chunks.get(seq).map_or(0, |c| c.file_at);
            match records::frame(bytes, pos).map_err(|k| Failure::new(file_at, k))? {
                Frame::Record(f) => {
                    self.chunk_pos = Some(f.next);
                    // Nested compression is not something perf writes: passed over.
                    if !matches!(f.kind, records::COMPRESSED | records::COMPRESSED2) {
                        self.take(Loc::chunk(seq, pos), f, file_at)?;
                    }
                }
                Frame::End => self.chunk_pos = None,
                Frame::Incomplete(kind) => {
                    self.leftover = bytes.len() - pos;
                    self.leftover_error = Some(Failure::new(file_at, kind));
                    self.chunk_pos = None;
                }
            }
            return Ok(());
        }
        let pos = self.pos;
        let region = &self.file.bytes()[..self.data.end];
        match records::frame(region, pos).map_err(|k| Failure::new(pos as u64, k))? {
            Frame::Record(f) => {
                self.pos = f.next;
                match f.kind {
                    records::COMPRESSED | records::COMPRESSED2 => self.inflate(pos, f)?,
                    _ => self.take(Loc::file(pos), f, pos as u64)?,
                }
            }
            Frame::End => {
                if let Some(f) = self.leftover_error.take() {
                    return Err(f);
                }
                self.scan_done = true;
            }
            Frame::Incomplete(kind) => return Err(Failure::new(pos as u64, kind)),
        }
        Ok(())
    }

    /// A record read ahead: held back for its time, or passed over.
    fn take(&mut self, loc: Loc, f: Framed, file_at: u64) -> Result<(), Failure> {
        let fail = |k| Failure::new(file_at, k);
        let Some(rec) = self.record_at(loc, f.len) else {
            return Ok(()); // unreachable: framed inside its region
        };
        let held = match f.kind {
            records::SAMPLE => {
                let Some(attr) = self.attrs.of_sample(rec) else {
                    self.unknown_ids += 1;
                    self.stats.unknown_events += 1;
                    return Ok(());
                };
                let Some(class) = self.attr_class.get(attr as usize).copied().flatten() else {
                    self.stats.unknown_events += 1;
                    return Ok(());
                };
                let layout = &self.attrs.list[attr as usize].sample;
                let wanted = self.interested(class);
                if !wanted {
                    // Passed over undecoded, it still counts — unless it is its CPU's first
                    // outside the interest.
                    if let Some((ts, cpu)) = layout.time_and_cpu(rec) {
                        if self.shown.contains(cpu) {
                            self.cpu_last.saw(cpu, ts);
                            self.pass_over(ts);
                            return Ok(());
                        }
                    }
                }
                let sample = layout.parse(rec).map_err(fail)?;
                if sample.raw.is_none() {
                    self.stats.unknown_events += 1;
                    return Ok(());
                }
                let cpu = sample.cpu.unwrap_or(EventHeader::NO_CPU);
                if !wanted {
                    self.shown.insert(cpu);
                }
                self.cpu_last.saw(cpu, sample.time.unwrap_or(0));
                Pending {
                    ts: sample.time.unwrap_or(0),
                    loc,
                }
            }
            records::COMM
            | records::FORK
            | records::EXIT
            | records::LOST
            | records::LOST_SAMPLES => {
                let attr = self.attrs.of_other(rec).unwrap_or(0);
                let trailer = self.attrs.list[attr as usize]
                    .trailer
                    .parse(rec, f.kind, records::body_len(f.kind))
                    .map_err(fail)?;
                let cpu = trailer.cpu.unwrap_or(EventHeader::NO_CPU);
                if matches!(f.kind, records::LOST | records::LOST_SAMPLES) {
                    if let Some(begin) = self.cpu_last.of(cpu) {
                        self.loss_begins.insert(loc, begin);
                    }
                }
                self.cpu_last.saw(cpu, trailer.time.unwrap_or(0));
                let sideband = match f.kind {
                    records::COMM => Some(self.sideband),
                    records::FORK => Some(self.sideband + 1),
                    records::EXIT => Some(self.sideband + 2),
                    _ => None,
                };
                if let Some(class) = sideband.filter(|&c| !self.interested(c)) {
                    if !self.shown.contains(cpu) {
                        // Its CPU's first outside the interest: announced.
                        self.shown.insert(cpu);
                    } else if class == self.sideband + 2 {
                        self.pass_over(trailer.time.unwrap_or(self.last_ts));
                        return Ok(());
                    } else {
                        // Thread names must follow every COMM and FORK, read or not.
                        self.names_only.insert(loc);
                    }
                }
                Pending {
                    ts: trailer.time.unwrap_or(0),
                    loc,
                }
            }
            records::FINISHED_ROUND => {
                self.order.end_round();
                self.close_stretch();
                return Ok(());
            }
            records::HEADER_ATTR => {
                // A late attribute (`perf inject`): rare, and at most 64 KiB to copy.
                let rec = rec.to_vec();
                let attr = add_header_attr(&rec, &mut self.attrs, f.len).map_err(fail)?;
                let a = &self.attrs.list[attr as usize];
                let class = (a.kind == TYPE_TRACEPOINT)
                    .then(|| self.class_of_tracepoint.get(&a.config).copied())
                    .flatten();
                self.attr_class.push(class);
                return Ok(());
            }
            kind if records::is_known(kind) => return Ok(()),
            kind => {
                // Unknown types are passed over by their size; the map stays small.
                if self.unknown_types.len() < 32 || self.unknown_types.contains_key(&kind) {
                    *self.unknown_types.entry(kind).or_default() += 1;
                } else {
                    *self.unknown_types.entry(u32::MAX).or_default() += 1;
                }
                return Ok(());
            }
        };
        self.hold(held);
        Ok(())
    }

    fn hold(&mut self, p: Pending) {
        let in_file = match p.loc.place() {
            Place::Chunk { seq, .. } => {
                self.chunks.hold(seq);
                false
            }
            Place::File(_) => true,
        };
        // Time 0 (perf's synthesized records) or all ones: no time, delivered right away.
        if p.ts == 0 || p.ts == u64::MAX {
            self.immediate = Some(p);
        } else {
            if in_file {
                self.stretches.hold();
            }
            self.order.push(p);
        }
    }

    /// A `COMPRESSED` record: its records are read next, from a new chunk.
    fn inflate(&mut self, pos: usize, f: Framed) -> Result<(), Failure> {
        let fail = |k| Failure::new(pos as u64, k);
        if let Some(c) = self.compression.filter(|c| c.algorithm != 1) {
            return Err(fail(PerfError::UnsupportedCompression {
                algorithm: c.algorithm,
            }));
        }
        let rec = &self.file.bytes()[pos..pos + f.len];
        let payload = if f.kind == records::COMPRESSED {
            &rec[8..]
        } else {
            // COMPRESSED2: u64 data_size, the data, padding.
            let size = u64_at(rec, 8).map_or(usize::MAX, to_usize);
            match size.checked_add(16).and_then(|end| rec.get(16..end)) {
                Some(p) => p,
                None => {
                    return Err(fail(PerfError::RecordTooShort {
                        record_type: PerfRecordType(f.kind),
                        size: f.len as u64,
                        needed: (size as u64).saturating_add(16),
                    }))
                }
            }
        };
        let leftover = std::mem::take(&mut self.leftover);
        self.leftover_error = None;
        let seq = self
            .chunks
            .inflate(payload, leftover, pos as u64)
            .map_err(fail)?;
        self.chunks.drop_dead();
        let _ = seq;
        self.chunk_pos = Some(0);
        Ok(())
    }

    /// Ends the stretch of file read since the last round end (see [`super::pages`]).
    fn close_stretch(&mut self) {
        self.stretches.close(self.pos, &self.file);
    }

    /// The last delivered record is no longer pointed to.
    fn let_go(&mut self) {
        let Some((loc, counted)) = self.delivered.take() else {
            return;
        };
        match loc.place() {
            Place::Chunk { seq, .. } => self.chunks.release(seq),
            Place::File(at) if counted => self.stretches.let_go(at, &self.file),
            Place::File(_) => {}
        }
    }

    /// A record passed over under the interest, at `ts`: still one of the file's events.
    fn pass_over(&mut self, ts: u64) {
        self.stats.events += 1;
        self.passed.add(ts.min(i64::MAX as u64) as i64);
    }

    // ---------------------------------------------------------------- delivering

    /// Delivers a held record: the step to announce, or `None` when it is passed over
    /// silently (a side-band record outside the interest).
    fn deliver(&mut self, p: Pending, immediate: bool) -> Option<Step> {
        self.delivered = Some((p.loc, !immediate));
        let before = self.last_ts;
        let ts = if immediate {
            before
        } else if p.ts < before {
            self.late += 1;
            self.most_late_ns = self.most_late_ns.max(before - p.ts);
            before
        } else {
            p.ts
        };
        self.last_ts = ts;
        let header_ts = ts.min(i64::MAX as u64) as i64;
        let rec = self.held_record(p.loc)?;
        let len = rec.len() as u32;
        let kind = u32_at(rec, 0)?;
        // The event and class, found again as when the record was read ahead.
        let (attr, class) = match kind {
            records::SAMPLE => {
                let attr = self.attrs.of_sample(rec)?;
                (attr, self.attr_class.get(attr as usize).copied().flatten()?)
            }
            records::COMM => (self.attrs.of_other(rec).unwrap_or(0), self.sideband),
            records::FORK => (self.attrs.of_other(rec).unwrap_or(0), self.sideband + 1),
            records::EXIT => (self.attrs.of_other(rec).unwrap_or(0), self.sideband + 2),
            _ => (self.attrs.of_other(rec).unwrap_or(0), LOST_CLASS),
        };
        let attr = self.attrs.list.get(attr as usize)?;
        if class == LOST_CLASS {
            let count = records::lost_count(kind, rec);
            let cpu = attr
                .trailer
                .parse(rec, kind, records::body_len(kind))
                .ok()?
                .cpu
                .unwrap_or(EventHeader::NO_CPU);
            self.stats.lost_notices += 1;
            self.stats.lost_events = self.stats.lost_events.saturating_add(count);
            // After the CPU's record before (read or passed over), else after the event
            // delivered before.
            let begin = self.loss_begins.remove(&p.loc).unwrap_or(before);
            return Some(Step::Lost(LostEvents {
                begin: begin.min(ts).min(i64::MAX as u64) as i64,
                end: header_ts,
                cpu,
                stream: cpu,
                count: Some(count),
            }));
        }
        let (current, cpu) = match self.sideband_of(class) {
            None => {
                let s = attr.sample.parse(rec).ok()?;
                let cpu = s.cpu.unwrap_or(EventHeader::NO_CPU);
                (
                    Current {
                        class,
                        loc: p.loc,
                        len,
                        raw: s.raw?,
                        pid: s.pid,
                        tid: s.tid,
                        trailer: 0,
                    },
                    cpu,
                )
            }
            Some(sideband) => {
                let trailer = attr
                    .trailer
                    .parse(rec, kind, records::body_len(kind))
                    .ok()?;
                let field = |at| u32_at(rec, at).map(|v| v as i32);
                match sideband {
                    SideBand::Comm => {
                        let name = records::comm_name(rec, attr.trailer.len as usize);
                        let name = &name[..name.len().min(MAX_COMM)];
                        if let Some(tid) = field(12) {
                            self.comms
                                .insert(tid, String::from_utf8_lossy(name).into_owned());
                        }
                    }
                    SideBand::Fork => {
                        // A new thread has its parent's name until it calls exec or prctl.
                        if let (Some(tid), Some(ptid)) = (field(16), field(20)) {
                            if let Some(name) = self.comms.get(&ptid).cloned() {
                                self.comms.insert(tid, name);
                            }
                        }
                    }
                    SideBand::Exit => {}
                }
                let cpu = trailer.cpu.unwrap_or(EventHeader::NO_CPU);
                if !self.names_only.is_empty() && self.names_only.remove(&p.loc) {
                    self.pass_over(ts);
                    return None;
                }
                (
                    Current {
                        class,
                        loc: p.loc,
                        len,
                        raw: (0, 0),
                        pid: None,
                        tid: None,
                        trailer: attr.trailer.len,
                    },
                    cpu,
                )
            }
        };
        self.current = Some(current);
        self.stats.events += 1;
        Some(Step::Event(EventHeader {
            ts: header_ts,
            cpu,
            stream: cpu,
            class: ClassId(class),
        }))
    }

    // ---------------------------------------------------------------- fields

    /// The current event's tracepoint record (`PERF_SAMPLE_RAW`), if it is a tracepoint's.
    #[inline]
    fn raw(&self, c: &Current) -> Option<&[u8]> {
        let rec = self.record_at(c.loc, c.len as usize)?;
        let (start, len) = (c.raw.0 as usize, c.raw.1 as usize);
        rec.get(start..start + len)
    }

    /// The fields after a tracepoint format's ([`classes::EXTRA_FIELDS`]), by their index
    /// among them.
    fn extra(&self, c: &Current, index: usize) -> Option<Value<'_>> {
        match index {
            0 => self
                .comms
                .get(&c.tid?)
                .map(|s| Value::Str(s.as_str().into())),
            1 | 3 => c.pid.map(|p| Value::Int(p.into())),
            2 => c.tid.map(|t| Value::Int(t.into())),
            _ => None,
        }
    }

    /// A field of the current side-band record.
    fn sideband_field(&self, c: &Current, field: FieldId) -> Option<Value<'_>> {
        let kind = self.sideband_of(c.class)?;
        let rec = self.record_at(c.loc, c.len as usize)?;
        let u32_field = |at| u32_at(rec, at).map(|v| Value::UInt(v.into()));
        match (kind, field.0) {
            (SideBand::Comm, 0) => u32_field(8),
            (SideBand::Comm, 1) => u32_field(12),
            (SideBand::Comm, 2) => Some(Value::Str(String::from_utf8_lossy(records::comm_name(
                rec,
                c.trailer as usize,
            )))),
            (SideBand::Fork | SideBand::Exit, i @ 0..=3) => u32_field(8 + 4 * i as usize),
            (SideBand::Fork | SideBand::Exit, 4) => u64_at(rec, 24).map(Value::UInt),
            _ => None,
        }
    }

    /// An integer field of the current event, sign-extended when signed: a tracepoint field
    /// through its slot, else an extra or side-band field.
    #[inline]
    fn integer(&self, field: FieldId) -> Option<i64> {
        let c = self.current.as_ref()?;
        let i = field.0 as usize;
        match self.int_slots.get(c.class as usize) {
            Some(slots) => match slots.get(i) {
                Some(slot) => slot.read(self.raw(c)?, self.endian),
                None => self.extra(c, i - slots.len())?.as_i64(),
            },
            None => self.sideband_field(c, field)?.as_i64(),
        }
    }
}

impl EventSource for PerfSource {
    fn classes(&self) -> &[EventClass] {
        &self.classes
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        self.current = None;
        self.let_go();
        while !self.finished {
            if let Some(p) = self.immediate.take() {
                if let Some(step) = self.deliver(p, true) {
                    return Ok(step);
                }
                self.let_go();
                continue;
            }
            if let Some(p) = self.order.pop() {
                if let Some(step) = self.deliver(p, false) {
                    return Ok(step);
                }
                self.let_go();
                continue;
            }
            if !self.scan_done {
                self.read_ahead();
                continue;
            }
            if self.order.len() > 0 {
                // Unreachable: reading ends by releasing everything.
                self.order.end_all();
                continue;
            }
            self.finished = true;
            if let Some(e) = self.error.take() {
                return Err(e);
            }
        }
        Ok(Step::End)
    }

    #[inline]
    fn u64(&self, field: FieldId) -> Option<u64> {
        self.integer(field).map(|v| v as u64)
    }

    #[inline]
    fn i64(&self, field: FieldId) -> Option<i64> {
        self.integer(field)
    }

    fn str(&self, field: FieldId) -> Option<&str> {
        let c = self.current.as_ref()?;
        let i = field.0 as usize;
        if let Some(format) = self.formats.get(c.class as usize) {
            return match format.fields.get(i) {
                Some(f) => record::read_str(f, self.raw(c)?, self.endian),
                None if i == format.fields.len() => self.comms.get(&c.tid?).map(String::as_str),
                None => None,
            };
        }
        if self.sideband_of(c.class) == Some(SideBand::Comm) && field.0 == 2 {
            let rec = self.record_at(c.loc, c.len as usize)?;
            return std::str::from_utf8(records::comm_name(rec, c.trailer as usize)).ok();
        }
        None
    }

    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        let c = self.current.as_ref()?;
        let i = field.0 as usize;
        match self.formats.get(c.class as usize) {
            Some(format) => match format.fields.get(i) {
                Some(f) => record::read_value(f, self.raw(c)?, self.endian),
                None => self.extra(c, i - format.fields.len()),
            },
            None => self.sideband_field(c, field),
        }
    }

    fn for_each_value(&self, class: ClassId, f: &mut dyn FnMut(FieldId, Value<'_>)) {
        let _ = self.visit_fields(class, &mut ValueBuilder::new(f));
    }

    fn visit_fields(&self, class: ClassId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        let Some(c) = self.current.filter(|c| c.class == class.0) else {
            return Ok(());
        };
        if let (Some(format), Some(slots)) = (
            self.formats.get(c.class as usize),
            self.int_slots.get(c.class as usize),
        ) {
            let Some(raw) = self.raw(&c) else {
                return Ok(());
            };
            for (i, (f, slot)) in format.fields.iter().zip(slots).enumerate() {
                let id = FieldId(i as u32);
                if slot.is_integer() {
                    match slot.read(raw, self.endian) {
                        Some(v) if slot.signed() => to.field_int(id, v),
                        Some(v) => to.field_uint(id, v as u64),
                        None => {}
                    }
                } else {
                    record::visit_field(f, raw, self.endian, id, to);
                }
            }
            let n = format.fields.len() as u32;
            if let Some(comm) = c.tid.and_then(|t| self.comms.get(&t)) {
                to.field_str(FieldId(n), comm.as_bytes());
            }
            if let Some(pid) = c.pid {
                to.field_int(FieldId(n + 1), pid.into());
            }
            if let Some(tid) = c.tid {
                to.field_int(FieldId(n + 2), tid.into());
            }
            if let Some(pid) = c.pid {
                to.field_int(FieldId(n + 3), pid.into());
            }
            return Ok(());
        }
        let Some(rec) = self.record_at(c.loc, c.len as usize) else {
            return Ok(());
        };
        match self.sideband_of(c.class) {
            Some(SideBand::Comm) => {
                for i in 0..2u32 {
                    if let Some(v) = u32_at(rec, 8 + 4 * i as usize) {
                        to.field_uint(FieldId(i), v.into());
                    }
                }
                to.field_str(FieldId(2), records::comm_name(rec, c.trailer as usize));
            }
            Some(SideBand::Fork | SideBand::Exit) => {
                for i in 0..4u32 {
                    if let Some(v) = u32_at(rec, 8 + 4 * i as usize) {
                        to.field_uint(FieldId(i), v.into());
                    }
                }
                if let Some(t) = u64_at(rec, 24) {
                    to.field_uint(FieldId(4), t);
                }
            }
            None => {}
        }
        Ok(())
    }

    fn stats(&self) -> ReadStats {
        let mut s = self.stats.clone();
        if self.unknown_ids > 0 {
            s.warnings.push(format!(
                "{}: {} samples name an event id the file does not describe; they are skipped",
                self.path.display(),
                self.unknown_ids
            ));
        }
        if !self.unknown_types.is_empty() {
            let total: u64 = self.unknown_types.values().sum();
            let list: Vec<String> = self
                .unknown_types
                .iter()
                .map(|(&t, n)| match t {
                    u32::MAX => format!("others ×{n}"),
                    t => format!("type {t} ×{n}"),
                })
                .collect();
            s.warnings.push(format!(
                "{}: {total} records of types this reader does not know were passed over ({})",
                self.path.display(),
                list.join(", ")
            ));
        }
        if self.late > 0 {
            s.warnings.push(format!(
                "{}: {} events came after later ones had been delivered (the file's \
                 FINISHED_ROUND records do not bound its disorder within {} held records); \
                 they were delivered at the time of the event before them, up to {} ns late",
                self.path.display(),
                self.late,
                MAX_PENDING,
                self.most_late_ns
            ));
        }
        s
    }

    fn progress(&self) -> Option<(u64, u64)> {
        Some(((self.pos - self.data.start) as u64, self.data.len() as u64))
    }

    fn hostname(&self) -> Option<String> {
        self.info
            .hostname
            .clone()
            .filter(|h| !h.is_empty() && h != "(none)")
    }

    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        self.interest = virtflow_trace::interest_table(self.classes.len(), classes);
    }

    fn passed_over(&self, host: usize) -> PassedOver {
        self.passed.of_host(host)
    }
}

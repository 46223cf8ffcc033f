//! [`CtfSource`]: the traces below a folder opened, their streams merged in time order, and
//! the [`EventSource`] accessors reading the current event's fields where its stream holds
//! them.

use crate::decode::{self, Cur};
use crate::index;
use crate::metadata::{parse_metadata, read_metadata, ClassRt, TraceRt};
use crate::plans::VisitOp;
use crate::stream::{string_at, Data, Next, StreamCursor};
use crate::types::*;
use memmap2::Mmap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use virtflow_trace::error::{DecodeError, DecodeScope};
use virtflow_trace::{
    ClassId, ErrorKind, EventClass, EventHeader, EventSource, FieldId, FieldVisitor, PassedOver,
    ReadStats, Step, Timestamp, TraceError, Value,
};

/// A CTF trace (or several) as an [`EventSource`]. See the crate documentation.
pub struct CtfSource {
    traces: Vec<Rc<TraceRt>>,
    classes: Vec<EventClass>,
    rt: Vec<ClassRt>,
    streams: Vec<StreamCursor>,
    heap: BinaryHeap<Reverse<(Timestamp, u32)>>,
    cur: Option<usize>,
    finished: bool,
    stats: ReadStats,
    total_bytes: u64,
    scratch: std::cell::RefCell<Vec<i128>>,
}

fn find_traces(dir: &Path, out: &mut Vec<PathBuf>, depth: u32) -> Result<(), TraceError> {
    if dir.join("metadata").is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    if depth > 12 {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| TraceError::io(dir, e))?;
    let mut subs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    for s in subs {
        find_traces(&s, out, depth + 1)?;
    }
    Ok(())
}

impl CtfSource {
    /// Opens a CTF trace folder, or a folder holding several traces (an LTTng session).
    pub fn open(dir: &Path) -> Result<CtfSource, TraceError> {
        let mut dirs = Vec::new();
        if dir.is_file() && dir.file_name().is_some_and(|n| n == "metadata") {
            dirs.push(dir.parent().unwrap_or(Path::new(".")).to_path_buf());
        } else {
            find_traces(dir, &mut dirs, 0)?;
        }
        if dirs.is_empty() {
            return Err(TraceError::new(
                dir,
                0,
                ErrorKind::NotATrace {
                    expected: "a CTF `metadata` file in this folder or below",
                },
            ));
        }
        let mut src = CtfSource::empty();
        for d in dirs {
            src.add_trace(&d)?;
        }
        src.start();
        Ok(src)
    }

    fn add_trace(&mut self, dir: &Path) -> Result<(), TraceError> {
        let tc = read_metadata(&dir.join("metadata"))?;
        let trace = TraceRt::compile(tc, &mut self.classes, &mut self.rt);
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| TraceError::io(dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n != "metadata" && !n.starts_with('.'))
            })
            .collect();
        files.sort();
        for f in files {
            let file = File::open(&f).map_err(|e| TraceError::io(&f, e))?;
            let len = file.metadata().map_err(|e| TraceError::io(&f, e))?.len();
            let map = if len == 0 {
                Data::Mem(Vec::new())
            } else {
                // SAFETY: the trace files are not expected to change while they are read.
                Data::Map(unsafe { Mmap::map(&file) }.map_err(|e| TraceError::io(&f, e))?)
            };
            self.total_bytes += len;
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            let idx = dir.join("index").join(format!("{name}.idx"));
            let packets = match index::read(&idx, len) {
                Ok(p) => p,
                Err(e) => {
                    self.stats
                        .warnings
                        .push(format!("{e}; packets found by scanning instead"));
                    None
                }
            };
            self.add_stream(&trace, f, map, packets);
        }
        self.traces.push(trace);
        Ok(())
    }

    fn add_stream(
        &mut self,
        trace: &Rc<TraceRt>,
        f: PathBuf,
        map: Data,
        packets: Option<Vec<index::PacketEntry>>,
    ) {
        {
            let index = self.streams.len() as u32;
            self.streams.push(StreamCursor {
                trace: trace.clone(),
                path: f,
                map,
                index,
                next_packet: 0,
                released: 0,
                packets,
                packet_no: 0,
                warnings: Vec::new(),
                stream_class: 0,
                in_packet: false,
                pos: 0,
                content_end: 0,
                clock_val: 0,
                cpu: EventHeader::NO_CPU,
                bases: [0; 4],
                pkt_ctx_offs: Vec::new(),
                last_discarded: None,
                last_seq: None,
                pending: Vec::new(),
                prev_end_ts: None,
                slots: vec![0; trace.nslots],
                ts: 0,
                class: 0,
                offs: [Vec::new(), Vec::new(), Vec::new()],
                ev_start: 0,
                next: Next::End,
                done: false,
                skipped: 0,
                skipped_last: 0,
                shown: false,
                filters: false,
                pass: Vec::new(),
            });
        }
    }

    /// A source over in-memory metadata and stream bytes (for tests and fuzzing); errors name
    /// `metadata` and `stream<i>`.
    pub fn from_memory(metadata: &[u8], streams: Vec<Vec<u8>>) -> Result<CtfSource, TraceError> {
        let mut src = CtfSource::empty();
        let tc = parse_metadata(metadata, Path::new("metadata"))?;
        let trace = TraceRt::compile(tc, &mut src.classes, &mut src.rt);
        for (i, s) in streams.into_iter().enumerate() {
            src.total_bytes += s.len() as u64;
            let data = Data::Mem(s);
            src.add_stream(&trace, PathBuf::from(format!("stream{i}")), data, None);
        }
        src.traces.push(trace);
        src.start();
        Ok(src)
    }

    fn empty() -> CtfSource {
        CtfSource {
            traces: Vec::new(),
            classes: Vec::new(),
            rt: Vec::new(),
            streams: Vec::new(),
            heap: BinaryHeap::new(),
            cur: None,
            finished: false,
            stats: ReadStats::default(),
            total_bytes: 0,
            scratch: Default::default(),
        }
    }

    fn start(&mut self) {
        for i in 0..self.streams.len() {
            self.streams[i].fetch(&self.rt);
            self.push(i);
        }
    }

    /// Moves every stream so that the next [`EventSource::advance`] gives the first event at or
    /// after `ts` (ns), and loss notices that end at or after it. Streams with a consistent
    /// index start at the right packet; the others are read from their start, skipping.
    /// Counters in [`EventSource::stats`] only count what `advance` delivers.
    pub fn seek(&mut self, ts: Timestamp) -> Result<(), TraceError> {
        self.heap.clear();
        self.cur = None;
        self.finished = false;
        for i in 0..self.streams.len() {
            let s = &mut self.streams[i];
            s.rewind_for(ts);
            loop {
                s.fetch(&self.rt);
                match &s.next {
                    Next::Event if s.ts < ts => {}
                    Next::Lost(l) if l.end < ts => {}
                    Next::Err(e) => return Err((**e).clone()),
                    _ => break,
                }
            }
            self.push(i);
        }
        Ok(())
    }

    /// How many stream files have an index that agrees with every packet read so far.
    pub fn indexed_streams(&self) -> usize {
        self.streams.iter().filter(|s| s.packets.is_some()).count()
    }

    /// The stream file and byte offset of the current event (for error messages and `dump`).
    pub fn position(&self) -> Option<(&Path, u64)> {
        let s = &self.streams[self.cur?];
        Some((&s.path, s.ev_start / 8))
    }

    fn push(&mut self, i: usize) {
        let s = &self.streams[i];
        if !matches!(s.next, Next::End) {
            self.heap.push(Reverse((s.ts, i as u32)));
        }
    }

    /// Bit offset of a field of the current event, and its type.
    #[inline]
    fn locate(&self, field: FieldId) -> Option<(&StreamCursor, u64, &Ty)> {
        let s = &self.streams[self.cur?];
        let cr = &self.rt[s.class as usize];
        let &(scope, idx) = cr.fields.get(field.0 as usize)?;
        let idx = idx as usize;
        let trace = &*s.trace;
        let code = cr.code(&trace.streams[s.stream_class]);
        let (lay, start, offs) = match scope {
            0 => (
                &trace.streams[s.stream_class].packet_context,
                s.bases[0],
                &s.pkt_ctx_offs[..],
            ),
            1 => (
                &trace.streams[s.stream_class].common,
                s.bases[1],
                &s.offs[0][..],
            ),
            2 => (&*code.context, s.bases[2], &s.offs[1][..]),
            _ => (&*code.payload, s.bases[3], &s.offs[2][..]),
        };
        let off = lay.offset(idx, start, offs)?;
        Some((s, off, &lay.fields()[idx].1))
    }

    /// A plain integer at a fixed offset, read without locating the field through its layout:
    /// `Some(None)` when the field has no direct reader; else its value (sign-extended when
    /// signed), whether it is signed, and whether it is a plain number.
    #[inline(always)]
    fn read_direct(&self, field: FieldId) -> Option<Option<(u64, bool, bool)>> {
        let s = &self.streams[self.cur?];
        // The current event's class was compiled when its event was read.
        let code = self.rt[s.class as usize].code.get()?;
        let Some(&VisitOp::Direct(d)) = code.visit.get(field.0 as usize) else {
            return Some(None);
        };
        let v = d.read(s.data(), s.bases[d.scope as usize & 3])?;
        Some(Some((v, d.signed, d.plain)))
    }

    /// Decodes one field of the current event, wherever it is, with the general decoder.
    /// Announces the field and decodes it into the visitor (nothing when it cannot be
    /// located). Decoding may store values into slots: `slots` becomes a copy of the stream's
    /// to work on.
    fn visit_at(
        &self,
        field: FieldId,
        slots: &mut Vec<i128>,
        to: &mut dyn FieldVisitor,
    ) -> Result<(), TraceError> {
        let Some((s, off, ty)) = self.locate(field) else {
            return Ok(());
        };
        let mut c = Cur {
            data: s.data(),
            pos: off,
            end: s.content_end.max(off),
        };
        slots.clear();
        slots.extend_from_slice(&s.slots);
        to.field(field);
        decode::visit(ty, &mut c, slots, 0, to)
            .map_err(|e| s.decode_err(c.pos, DecodeScope::Event, e))
    }

    fn read_int(&self, field: FieldId) -> Option<(u64, &IntTy)> {
        let (s, off, ty) = self.locate(field)?;
        let Ty::Int(it) = ty else { return None };
        let data = s.data();
        if it.kind == IntKind::Var {
            let mut c = Cur {
                data,
                pos: off,
                end: data.len() as u64 * 8,
            };
            return c.int(it).ok().map(|v| (v, it));
        }
        crate::bits::read_fast(data, off, it.size, it.bo == ByteOrder::Be).map(|v| (v, it))
    }
}

impl EventSource for CtfSource {
    fn classes(&self) -> &[EventClass] {
        &self.classes
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        if self.finished {
            return Ok(Step::End);
        }
        // The current stream is out of the heap: replace the heap's top with it when it is no
        // longer the earliest (one sift-down), instead of a push and a pop.
        let i = match self.cur.take() {
            Some(c) => {
                self.streams[c].fetch(&self.rt);
                let s = &self.streams[c];
                if matches!(s.next, Next::End) {
                    match self.heap.pop() {
                        Some(Reverse((_, i))) => i as usize,
                        None => {
                            self.finished = true;
                            return Ok(Step::End);
                        }
                    }
                } else {
                    let key = Reverse((s.ts, c as u32));
                    match self.heap.peek_mut() {
                        Some(mut top) if *top > key => {
                            let Reverse((_, i)) = std::mem::replace(&mut *top, key);
                            i as usize
                        }
                        _ => c,
                    }
                }
            }
            None => match self.heap.pop() {
                Some(Reverse((_, i))) => i as usize,
                None => {
                    self.finished = true;
                    return Ok(Step::End);
                }
            },
        };
        self.cur = Some(i);
        let s = &self.streams[i];
        match &s.next {
            Next::Event => {
                self.stats.events += 1;
                let mut cpu = s.cpu;
                if cpu == EventHeader::NO_CPU {
                    if let Some(f) = self.rt[s.class as usize].event_cpu {
                        cpu = self.u64(f).map_or(cpu, |v| v as u32);
                    }
                }
                Ok(Step::Event(EventHeader {
                    ts: s.ts,
                    cpu,
                    stream: s.index,
                    class: ClassId(s.class),
                }))
            }
            Next::Lost(l) => {
                self.stats.lost_notices += 1;
                self.stats.lost_events += l.count.unwrap_or(0);
                Ok(Step::Lost(*l))
            }
            Next::Err(e) => {
                let e = (**e).clone();
                self.finished = true;
                self.cur = None;
                Err(e)
            }
            Next::End => {
                self.cur = None;
                self.advance()
            }
        }
    }

    fn u64(&self, field: FieldId) -> Option<u64> {
        if let Some((v, _, _)) = self.read_direct(field)? {
            return Some(v);
        }
        let (v, it) = self.read_int(field)?;
        Some(if it.signed && it.kind != IntKind::Var {
            crate::bits::sign_extend(v, it.size) as u64
        } else {
            v
        })
    }

    fn i64(&self, field: FieldId) -> Option<i64> {
        if let Some((v, _, _)) = self.read_direct(field)? {
            return Some(v as i64);
        }
        let (v, it) = self.read_int(field)?;
        Some(if it.signed && it.kind != IntKind::Var {
            crate::bits::sign_extend(v, it.size)
        } else {
            v as i64
        })
    }

    fn str(&self, field: FieldId) -> Option<&str> {
        let s = &self.streams[self.cur?];
        let code = self.rt[s.class as usize].code.get()?;
        if let Some(&VisitOp::DirectStr { scope, rel, len }) = code.visit.get(field.0 as usize) {
            let b = ((s.bases[scope as usize & 3] + rel) / 8) as usize;
            let raw = s.data().get(b..b + len as usize)?;
            return std::str::from_utf8(decode::until_nul(raw)).ok();
        }
        let (s, off, ty) = self.locate(field)?;
        match string_at(s, off, ty)? {
            Some(bytes) => std::str::from_utf8(bytes).ok(),
            None if !matches!(ty, Ty::Str(..)) => None,
            // Strings of a length read from another field: the general decoder finds where
            // they lie in the stream's bytes, which the answer borrows.
            None => {
                let data = s.data();
                let mut probe = StrProbe {
                    within: data.as_ptr_range(),
                    at: None,
                };
                self.visit_at(field, &mut self.scratch.borrow_mut(), &mut probe)
                    .ok()?;
                let (start, len) = probe.at?;
                std::str::from_utf8(data.get(start..start + len)?).ok()
            }
        }
    }

    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        if let Some((v, signed, true)) = self.read_direct(field)? {
            return Some(if signed {
                Value::Int(v as i64)
            } else {
                Value::UInt(v)
            });
        }
        let (s, off, ty) = self.locate(field)?;
        let data = s.data();
        match ty {
            Ty::Int(it) if it.kind == IntKind::Plain && it.mappings.is_none() && it.size <= 64 => {
                let v = crate::bits::read_fast(data, off, it.size, it.bo == ByteOrder::Be)?;
                return Some(if it.signed {
                    Value::Int(crate::bits::sign_extend(v, it.size))
                } else {
                    Value::UInt(v)
                });
            }
            // Strings need no slots: no scratch copy.
            Ty::Str(..) => {
                if let Some(bytes) = string_at(s, off, ty)? {
                    return Some(Value::Str(decode::bytes_to_str(bytes)));
                }
            }
            _ => {}
        }
        let mut out = None;
        let mut b = virtflow_trace::ValueBuilder::new(|_, v| out = Some(v));
        self.visit_at(field, &mut self.scratch.borrow_mut(), &mut b)
            .ok()?;
        drop(b);
        out
    }

    fn for_each_value(&self, class: ClassId, f: &mut dyn FnMut(FieldId, Value<'_>)) {
        let mut b = virtflow_trace::ValueBuilder::new(f);
        // An event that fails to decode gives the fields before the failure.
        let _ = self.visit_fields(class, &mut b);
    }

    fn visit_field(&self, field: FieldId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        self.visit_at(field, &mut self.scratch.borrow_mut(), to)
    }

    fn visit_fields(&self, class: ClassId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        let Some(i) = self.cur else { return Ok(()) };
        let s = &self.streams[i];
        if class.0 != s.class {
            return Ok(());
        }
        let cr = &self.rt[s.class as usize];
        // The class was compiled when its event was read.
        let Some(code) = cr.code.get() else {
            return Ok(());
        };
        let trace = &*s.trace;
        let fail = |pos: u64, e: DecodeError| s.decode_err(pos, DecodeScope::Event, e);
        // Decoding stores referenced integers into slots: a scratch copy of the stream's, made
        // when a field first needs it.
        let mut slots = self.scratch.borrow_mut();
        let mut slots_ready = false;
        let data = s.data();
        let bases = &s.bases;
        let mut c = Cur {
            data,
            pos: 0,
            end: s.content_end,
        };
        // Each field as compiled: at its fixed offset, or at a cursor moving field after field
        // through a scope whose layout depends on the data.
        for (k, op) in code.visit.iter().enumerate() {
            let id = FieldId(k as u32);
            // The fields read here; the others, through the general decoder below.
            let (start, rel) = match *op {
                VisitOp::Direct(d) if d.plain => {
                    let base = bases[d.scope as usize & 3];
                    let v = d.read(data, base).ok_or_else(|| {
                        fail(
                            base + d.rel,
                            DecodeError::FieldBeyondFile {
                                bits: d.size as u64,
                            },
                        )
                    })?;
                    if d.signed {
                        to.field_int(id, v as i64)
                    } else {
                        to.field_uint(id, v)
                    }
                    continue;
                }
                // An enumeration or a boolean: its labels or its truth.
                VisitOp::Direct(d) => (false, Some(d.rel)),
                VisitOp::DirectStr { scope, rel, len } => {
                    let b = ((bases[scope as usize & 3] + rel) / 8) as usize;
                    let raw = data.get(b..b + len as usize).ok_or_else(|| {
                        fail(
                            b as u64 * 8,
                            DecodeError::FieldBeyondFile {
                                bits: len as u64 * 8,
                            },
                        )
                    })?;
                    to.field_str(id, decode::until_nul(raw));
                    continue;
                }
                VisitOp::Int {
                    start,
                    align,
                    size,
                    be,
                    signed,
                    sext,
                    slot,
                } => {
                    if start {
                        c.pos = bases[cr.fields[k].0 as usize & 3];
                    }
                    let pos = align_up(c.pos, align);
                    let end = pos + size as u64;
                    let bits = size as u64;
                    let raw = match (end <= c.end)
                        .then(|| crate::bits::read_fast(data, pos, size, be))
                    {
                        Some(Some(raw)) => raw,
                        Some(None) => return Err(fail(pos, DecodeError::FieldBeyondFile { bits })),
                        None => return Err(fail(pos, DecodeError::FieldBeyondContent { bits })),
                    };
                    c.pos = end;
                    let v = (((raw << sext) as i64) >> sext) as u64;
                    if let Some(slot) = slot {
                        if !std::mem::replace(&mut slots_ready, true) {
                            slots.clear();
                            slots.extend_from_slice(&s.slots);
                        }
                        // Plain integers only: the value a length or a selector reads.
                        slots[slot as usize] = if signed { v as i64 as i128 } else { v as i128 };
                    }
                    if signed {
                        to.field_int(id, v as i64)
                    } else {
                        to.field_uint(id, v)
                    }
                    continue;
                }
                VisitOp::Str { start, len } => {
                    if start {
                        c.pos = bases[cr.fields[k].0 as usize & 3];
                    }
                    let b = match len {
                        Some(n) => c.bytes(n).map(decode::until_nul),
                        None => c.nul_string(),
                    }
                    .map_err(|m| fail(c.pos, m))?;
                    to.field_str(id, b);
                    continue;
                }
                VisitOp::General { start, rel } => (start, rel),
                VisitOp::Located => {
                    // Packet context fields come first: no slot of this event is set yet.
                    self.visit_at(id, &mut slots, to)?;
                    slots_ready = true;
                    continue;
                }
            };
            let (scope, idx) = cr.fields[k];
            let srt = &trace.streams[s.stream_class];
            let lay = match scope {
                0 => &srt.packet_context,
                1 => &srt.common,
                2 => &*code.context,
                _ => &*code.payload,
            };
            let Some((_, ty)) = lay.fields().get(idx as usize) else {
                return Ok(());
            };
            match rel {
                Some(rel) => c.pos = bases[scope as usize & 3] + rel,
                None if start => c.pos = bases[scope as usize & 3],
                None => {}
            }
            if !std::mem::replace(&mut slots_ready, true) {
                slots.clear();
                slots.extend_from_slice(&s.slots);
            }
            to.field(id);
            decode::visit(ty, &mut c, &mut slots, 0, to).map_err(|m| fail(c.pos, m))?;
        }
        Ok(())
    }

    fn stats(&self) -> ReadStats {
        let mut st = self.stats.clone();
        for s in &self.streams {
            st.events += s.skipped;
            st.warnings.extend(s.warnings.iter().cloned());
        }
        st
    }

    /// Through the LTTng index when the streams have one (see the inherent
    /// [`CtfSource::seek`]); always possible.
    fn seek(&mut self, ts: Timestamp) -> Result<bool, TraceError> {
        CtfSource::seek(self, ts).map(|()| true)
    }

    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        let read = virtflow_trace::interest_table(self.rt.len(), classes);
        for (i, c) in self.rt.iter_mut().enumerate() {
            c.wanted = read.as_ref().is_none_or(|r| r[i]);
        }
        // The event each stream has read ahead is its first: announced whatever its class,
        // and the first of a class nobody reads if it is one.
        for st in &mut self.streams {
            st.pass.clear();
            st.shown =
                st.filters && matches!(st.next, Next::Event) && !self.rt[st.class as usize].wanted;
        }
    }

    fn passed_over(&self, host: usize) -> PassedOver {
        let mut passed = PassedOver::default();
        for s in self.streams.iter().filter(|s| s.skipped > 0) {
            passed.merge(PassedOver {
                events: s.skipped,
                last: Some(s.skipped_last),
            });
        }
        passed.of_host(host)
    }

    fn progress(&self) -> Option<(u64, u64)> {
        let done: u64 = self
            .streams
            .iter()
            .map(|s| s.next_packet.min(s.data().len() as u64))
            .sum();
        Some((done, self.total_bytes))
    }

    fn hostname(&self) -> Option<String> {
        self.traces.iter().find_map(|t| t.hostname.clone())
    }
}

/// Finds where the string a decoder announces lies in the stream's bytes (the decoder hands
/// out slices of them), so that `str()` can borrow it from the stream.
struct StrProbe {
    within: std::ops::Range<*const u8>,
    /// Offset and length of the string in the stream's bytes.
    at: Option<(usize, usize)>,
}

impl FieldVisitor for StrProbe {
    fn field(&mut self, _: FieldId) {}
    fn bool(&mut self, _: bool) {}
    fn uint(&mut self, _: u64) {}
    fn int(&mut self, _: i64) {}
    fn float(&mut self, _: f64) {}
    fn str(&mut self, v: &[u8]) {
        // Addresses compared as numbers: a slice of the stream's bytes starts within them.
        let (p, lo, hi) = (
            v.as_ptr() as usize,
            self.within.start as usize,
            self.within.end as usize,
        );
        if p >= lo && p + v.len() <= hi {
            self.at = Some((p - lo, v.len()));
        }
    }
    fn bytes(&mut self, _: &[u8]) {}
    fn none(&mut self) {}
    fn enumeration(&mut self, _: &mut dyn Iterator<Item = &str>) {}
    fn variant(&mut self, _: &str) {}
    fn begin_struct(&mut self) {}
    fn member(&mut self, _: &str) {}
    fn end_struct(&mut self) {}
    fn begin_array(&mut self, _: u64) {}
    fn end_array(&mut self) {}
}

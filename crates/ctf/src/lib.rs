//! CTF reader: CTF 1.8 (TSDL metadata) and CTF 2 (JSON metadata) traces, one or many.
//!
//! Principal types and how they connect:
//!
//! - [`CtfSource`] is the [`EventSource`]: [`CtfSource::open`] finds every trace below a folder
//!   (a trace folder holds `metadata`; an LTTng session folder holds several), parses each
//!   trace's metadata, maps its stream files, and merges all streams in time order with a
//!   binary heap over per-stream cursors.
//! - Metadata front ends: [`tsdl`] (CTF 1.8, plain or packetized) and [`ctf2`] (JSON text
//!   sequence) both compile to one internal type representation, [`types::TraceClass`];
//!   [`resolve`] checks it and turns field locations (variant selectors, sequence lengths) into
//!   value slots.
//! - [`decode`] reads fields from the mapped bytes with [`bits`]: each root scope of each event
//!   class is compiled once, when the class's first event is read, into a [`decode::Layout`]
//!   (precomputed field offsets when the layout is fixed), so an event is skipped by size and
//!   its fields are decoded lazily by the accessors, without allocating. Whole events are
//!   visited ([`EventSource::visit_fields`]) through a per-class list of steps; the general
//!   decoder, [`decode::visit`], serves compound values and, through a
//!   [`virtflow_trace::ValueBuilder`], `value()` and `for_each_value()`.
//! - The per-event loop has a fast path for the common shapes, LTTng's kernel layout first: a
//!   [`decode::FastHeader`] reads a compact or large event header with direct loads at
//!   constant offsets and one bounds check; a class whose body (stream event context, context,
//!   payload) is fixed has a [`decode::FixedBody`], so its events are passed over with three
//!   additions; plain integers at fixed offsets have a [`decode::DirectInt`], so `u64`, `i64`
//!   and `value` read them without locating them through the layout. Under an interest, each
//!   stream remembers which event ids it passes over and their body size, and passes over them
//!   from the header alone. Anything else takes the general walk, which also produces the error
//!   messages.
//! - [`index`] reads LTTng packet index files: a stream's index is kept while every packet
//!   agrees with it (a disagreement drops it with a warning in [`ReadStats`]), and lets
//!   [`CtfSource::seek`] start each stream at the packet holding a timestamp.
//! - Memory stays flat whatever the trace's size: stream files are mapped, and the pages of
//!   packets already read are released as reading goes on.

// `is_multiple_of` is newer than the workspace's minimum Rust version.
#![allow(clippy::manual_is_multiple_of, clippy::type_complexity)]

pub mod bits;
pub mod ctf2;
pub mod decode;
pub mod index;
pub mod resolve;
pub mod tsdl;
pub mod types;

use decode::{Cur, Layout};
use memmap2::Mmap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use types::*;
use virtflow_trace::{
    ClassId, EventClass, EventHeader, EventSource, FieldDesc, FieldId, FieldKind, FieldVisitor,
    LostEvents, ReadStats, Scope, Step, Timestamp, TraceError, Value,
};

const PACKETIZED_MAGIC: u32 = 0x75D1_1D57;
const CTF_MAGIC: u64 = 0xC1FC_1FC1;

/// Reads a metadata file (plain TSDL, packetized TSDL, or CTF 2) into a trace class.
pub fn read_metadata(path: &Path) -> Result<TraceClass, TraceError> {
    let file = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let len = file.metadata().map_err(|e| TraceError::io(path, e))?.len();
    if len == 0 {
        return parse_metadata(&[], path);
    }
    // Mapped rather than read: a kernel trace's metadata is some 300 KB, read once, and a copy
    // of that size costs the allocator fresh pages at every opening.
    // SAFETY: the trace files are not expected to change while they are read.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| TraceError::io(path, e))?;
    parse_metadata(&map, path)
}

/// Parses metadata bytes; `path` names the file in errors.
pub fn parse_metadata(data: &[u8], path: &Path) -> Result<TraceClass, TraceError> {
    let first = data.iter().position(|b| !b.is_ascii_whitespace());
    if first.map(|i| data[i]) == Some(0x1e) {
        return ctf2::parse(data, path);
    }
    if data.len() >= 4 {
        let le = u32::from_le_bytes(data[..4].try_into().unwrap());
        let be = u32::from_be_bytes(data[..4].try_into().unwrap());
        if le == PACKETIZED_MAGIC || be == PACKETIZED_MAGIC {
            let text = depacketize(data, be == PACKETIZED_MAGIC, path)?;
            return tsdl::parse(&utf8(&text), path);
        }
    }
    tsdl::parse(&utf8(data), path)
}

/// Metadata text; invalid UTF-8 (only ever in strings) replaced. Valid text, the usual case,
/// is checked by the faster strict validator and borrowed.
fn utf8(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => s.into(),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// Concatenates the text of metadata packets.
fn depacketize(data: &[u8], be: bool, path: &Path) -> Result<Vec<u8>, TraceError> {
    let u32_at = |o: usize| -> u32 {
        let b: [u8; 4] = data[o..o + 4].try_into().unwrap();
        if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    // The text is smaller than the packets holding it: one allocation.
    let mut out = Vec::with_capacity(data.len());
    let mut off = 0usize;
    const HDR: usize = 37;
    while off < data.len() {
        if data.len() - off < HDR {
            return Err(TraceError::new(
                path,
                off as u64,
                "truncated metadata packet header",
            ));
        }
        if u32_at(off) != PACKETIZED_MAGIC {
            return Err(TraceError::new(
                path,
                off as u64,
                "bad metadata packet magic",
            ));
        }
        let content = u32_at(off + 24) as usize;
        let size = u32_at(off + 28) as usize;
        let (compression, encryption, checksum) = (data[off + 32], data[off + 33], data[off + 34]);
        if compression != 0 || encryption != 0 || checksum != 0 {
            return Err(TraceError::new(
                path,
                off as u64,
                "compressed, encrypted or checksummed metadata packets are not supported",
            ));
        }
        if content % 8 != 0
            || size % 8 != 0
            || content > size
            || content / 8 < HDR
            || off + size / 8 > data.len()
        {
            return Err(TraceError::new(
                path,
                off as u64,
                "bad metadata packet size",
            ));
        }
        out.extend_from_slice(&data[off + HDR..off + content / 8]);
        off += size / 8;
    }
    Ok(out)
}

/// Per stream class: compiled layouts and the event classes by id.
struct StreamRt {
    id: u64,
    packet_context: Layout,
    header: Layout,
    header_plan: Option<decode::HeaderPlan>,
    fast_header: Option<decode::FastHeader>,
    common: Layout,
    /// Event class id → global class index: ids below 4096 in `dense` (`u32::MAX`: none),
    /// larger ones in `by_id`.
    dense: Vec<u32>,
    by_id: HashMap<u64, u32>,
    /// The stream class's only event class, which events without an id are of.
    lone: Option<u32>,
    clock: Option<Clock>,
    /// Whether packet contexts give the clock value at the packet's start: reading can then
    /// begin at any packet.
    has_begin_ts: bool,
    /// `clock` origin in ns when the clock counts nanoseconds: timestamps are one addition.
    ns_base: Option<i64>,
    cpu_field: Option<usize>,
}

impl StreamRt {
    /// The global class index of event class `id` (the only class when there is no id).
    #[inline(always)]
    fn class_of(&self, id: Option<u64>) -> Option<u32> {
        match id {
            Some(id) => match self.dense.get(id as usize) {
                Some(&x) if x != u32::MAX => Some(x),
                _ => self.class_of_large(id),
            },
            None => self.lone,
        }
    }

    #[cold]
    fn class_of_large(&self, id: u64) -> Option<u32> {
        self.by_id.get(&id).copied()
    }
}

/// Per event class: where its fields live, and its compiled layouts ([`ClassCode`]).
///
/// The code is compiled when the class's first event is read, not at opening: a kernel
/// trace's metadata describes some 1,400 classes and a trace uses a few dozen of them.
///
/// What the per-event loop reads comes first, the rest is boxed: the table of classes is
/// walked in no particular order, one class per event.
#[repr(C)]
struct ClassRt {
    code: std::cell::OnceCell<ClassCode>,
    /// The caller reads this class (see [`EventSource::set_interest`]): its events are
    /// announced; the others are passed over inside the stream, unseen by the merge.
    wanted: bool,
    /// FieldId → (scope, index): scope 0 packet context, 1 common, 2 context, 3 payload.
    fields: Vec<(u8, u32)>,
    /// The event context and payload types, compiled into `code` on first use.
    types: Box<(Ty, Ty)>,
}

impl ClassRt {
    /// The compiled layouts; `s` is the class's stream class.
    #[inline(always)]
    fn code(&self, s: &StreamRt) -> &ClassCode {
        match self.code.get() {
            Some(code) => code,
            None => self.compile(s),
        }
    }

    #[cold]
    #[inline(never)]
    fn compile(&self, s: &StreamRt) -> &ClassCode {
        self.code.get_or_init(|| {
            let (context, payload) = (*self.types).clone();
            ClassCode::new(s, context, payload, &self.fields)
        })
    }
}

/// How to read one event class: its layouts and the shortcuts compiled from them.
#[repr(C)]
struct ClassCode {
    /// The body's skip plan, when its three scopes are fixed: events of this class are then
    /// passed over without walking their fields.
    body: Option<decode::FixedBody>,
    /// For a body that is not fixed: the program passing over all of it, when one can.
    skip_body: Option<decode::SkipCode>,
    /// FieldId → how the field is read: by [`EventSource::visit_fields`], and by the accessors
    /// for the integers and strings at fixed offsets.
    visit: Vec<VisitOp>,
    context: Box<Layout>,
    payload: Box<Layout>,
}

/// How one field is read, compiled with its class.
#[derive(Clone, Copy)]
enum VisitOp {
    /// An integer at a fixed offset, read directly (the accessors read its number; a visit
    /// goes through the general decoder when it is an enumeration or a boolean).
    Direct(decode::DirectInt),
    /// A fixed-length string at a fixed offset: scope, bit offset in it, length in bytes.
    DirectStr { scope: u8, rel: u64, len: u32 },
    /// In a scope whose layout depends on the data, read at a cursor moving field after field
    /// (`start`: the scope's first field, where the cursor moves to the scope's start): a plain
    /// integer…
    Int {
        start: bool,
        align: u64,
        size: u32,
        be: bool,
        signed: bool,
        /// Shift left then arithmetic shift right by this to sign-extend.
        sext: u32,
        slot: Option<u16>,
    },
    /// … a string of a fixed length or, without one, NUL-terminated…
    Str { start: bool, len: Option<u64> },
    /// … or anything else, through the general decoder: at `rel` bits into its scope when the
    /// scope's layout is fixed, else at the cursor.
    General { start: bool, rel: Option<u64> },
    /// A packet context field of a layout that depends on the data: located, then decoded.
    Located,
}

impl ClassCode {
    fn new(s: &StreamRt, context: Ty, payload: Ty, fields: &[(u8, u32)]) -> ClassCode {
        let (context, payload) = (Layout::new(context), Layout::new(payload));
        let common = &s.common;
        let body = match (
            decode::FixedScope::of(common),
            decode::FixedScope::of(&context),
            decode::FixedScope::of(&payload),
        ) {
            (Some(a), Some(b), Some(c)) => Some(decode::FixedBody([a, b, c])),
            _ => None,
        };
        let skip_body = match body {
            Some(_) => None,
            None => decode::SkipCode::body([common, &context, &payload]),
        };
        let lay_of = |scope: u8| match scope {
            0 => &s.packet_context,
            1 => common,
            2 => &context,
            _ => &payload,
        };
        let mut visit = Vec::with_capacity(fields.len());
        let mut scope_now = 0;
        for &(scope, i) in fields {
            let lay = lay_of(scope);
            let start = scope != scope_now;
            scope_now = scope;
            let ty = lay.fields().get(i as usize).map(|(_, t)| t);
            let rel = lay
                .fixed
                .as_ref()
                .and_then(|(rel, _)| rel.get(i as usize).copied());
            let direct = decode::DirectInt::of(lay, scope, i as usize);
            visit.push(match (direct, rel, ty) {
                (Some(d), _, _) => VisitOp::Direct(d),
                // Fixed-length strings at fixed offsets (LTTng's `comm` and `procname`).
                (_, Some(rel), Some(&Ty::Str(Len::Static(n), false))) if n <= u32::MAX as u64 => {
                    VisitOp::DirectStr {
                        scope,
                        rel,
                        len: n as u32,
                    }
                }
                (_, Some(_), _) => VisitOp::General { start, rel },
                // The packet context holds fields the reader consumes, which the class's
                // fields leave out: no cursor can move through it field after field.
                _ if scope == 0 => VisitOp::Located,
                // A scope whose layout depends on the data: read moving a cursor.
                (_, _, Some(Ty::Int(it)))
                    if it.kind == IntKind::Plain
                        && it.mappings.is_none()
                        && (1..=64).contains(&it.size) =>
                {
                    VisitOp::Int {
                        start,
                        align: it.align.max(1) as u64,
                        size: it.size,
                        be: it.bo == ByteOrder::Be,
                        sext: if it.signed { 64 - it.size } else { 0 },
                        signed: it.signed,
                        slot: it.slot,
                    }
                }
                (_, _, Some(&Ty::Str(Len::Static(n), false))) => VisitOp::Str {
                    start,
                    len: Some(n),
                },
                (_, _, Some(Ty::Str(_, true))) => VisitOp::Str { start, len: None },
                _ => VisitOp::General { start, rel: None },
            });
        }
        ClassCode {
            visit,
            context: Box::new(context),
            payload: Box::new(payload),
            body,
            skip_body,
        }
    }
}

struct TraceRt {
    packet_header: Layout,
    streams: Vec<StreamRt>,
    nslots: usize,
    hostname: Option<String>,
}

enum Next {
    Event,
    Lost(LostEvents),
    Err(TraceError),
    End,
}

/// A stream's bytes: mapped from its file, or in memory (tests, fuzzing, empty files). Two
/// cases only: the accessors ask for the bytes several times per event.
enum Data {
    Map(Mmap),
    Mem(Vec<u8>),
}

/// Bytes read between two releases of a mapping's consumed pages.
const RELEASE_STEP: u64 = 1 << 20;

impl Data {
    /// Drops the mapped pages of `..upto` from the process's resident set, so that memory
    /// stays flat however long the file: packets are read once, in order.
    fn release(&self, from: u64, upto: u64) {
        const PAGE: u64 = 4096;
        let (from, upto) = (from / PAGE * PAGE, upto / PAGE * PAGE);
        if let Data::Map(m) = self {
            if upto > from {
                // SAFETY: the mapping is private, read-only and never written: the dropped
                // pages read back from the file with the same bytes on the next access, and no
                // reference into them outlives the `&mut` call that advances the cursor.
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        from as usize,
                        (upto - from) as usize,
                    )
                };
            }
        }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Map(m) => m,
            Data::Mem(v) => v,
        }
    }
}

/// One data stream file: packets read in order, the next event decoded ahead.
struct StreamCursor {
    trace: Rc<TraceRt>,
    path: PathBuf,
    map: Data,
    index: u32,
    next_packet: u64,
    /// The stream's packets from its index file, while the index agrees with the packets read.
    packets: Option<Vec<index::PacketEntry>>,
    /// Index in `packets` of the packet at `next_packet`.
    packet_no: usize,
    /// Things to tell the user (an index that disagrees with the stream).
    warnings: Vec<String>,
    /// Bytes before this offset have been released from memory (see [`Data::release`]).
    released: u64,
    stream_class: usize,
    in_packet: bool,
    pos: u64,
    content_end: u64,
    clock_val: u64,
    cpu: u32,
    /// Bit offsets where the current packet's context and the current event's stream event
    /// context, context and payload start (see [`decode::DirectInt::scope`]). Read one at a
    /// time: the processor forwards a stored value to a load of the same place, not to a wider
    /// load spanning several stores.
    bases: [u64; 4],
    pkt_ctx_offs: Vec<u64>,
    last_discarded: Option<u64>,
    last_seq: Option<u64>,
    pending: Vec<LostEvents>,
    prev_end_ts: Option<Timestamp>,
    slots: Vec<i128>,
    // The current (pre-read) event.
    ts: Timestamp,
    class: u32,
    offs: [Vec<u64>; 3],
    ev_start: u64,
    next: Next,
    done: bool,
    /// Events passed over because the caller did not want their class.
    skipped: u64,
    /// Event id → the size in bits of the body of that id's events when nobody reads them and
    /// the body is fixed and byte-aligned (0: not known to be so). The fast path passes over
    /// such events from their header alone. Learnt as classes are met; forgotten when the
    /// interest changes.
    pass: Vec<u32>,
}

impl StreamCursor {
    fn data(&self) -> &[u8] {
        self.map.bytes()
    }

    fn err(&self, off_bits: u64, msg: impl Into<String>) -> TraceError {
        TraceError::new(&self.path, off_bits / 8, msg.into())
    }

    /// Reads the packet header and context at `next_packet`. Returns false at the end.
    fn open_packet(&mut self, classes: &[ClassRt]) -> Result<bool, TraceError> {
        let _ = classes;
        let trace = self.trace.clone();
        let data: &[u8] = self.map.bytes();
        let len = data.len() as u64;
        if self.next_packet >= len {
            return Ok(false);
        }
        let start_bits = self.next_packet * 8;
        let mut c = Cur {
            data,
            pos: start_bits,
            end: len * 8,
        };
        let mut magic_ok = true;
        let mut sc_id: Option<u64> = None;
        let mut dummy = Vec::new();
        trace
            .packet_header
            .walk(
                &mut c,
                &mut self.slots,
                &mut dummy,
                &mut |it: &IntTy, v| match it.role {
                    Role::Magic => magic_ok = v == CTF_MAGIC,
                    Role::StreamClassId => sc_id = Some(v),
                    _ => {}
                },
            )
            .map_err(|m| self.err(c.pos, format!("packet header: {m}")))?;
        if !magic_ok {
            return Err(self.err(start_bits, "bad packet magic number"));
        }
        let sci = match sc_id {
            Some(id) => match trace.streams.iter().position(|s| s.id == id) {
                Some(i) => i,
                None => return Err(self.err(start_bits, format!("unknown stream class id {id}"))),
            },
            None => {
                if trace.streams.len() != 1 {
                    return Err(self.err(
                        start_bits,
                        "packet header names no stream class and there are several",
                    ));
                }
                0
            }
        };
        if sci != self.stream_class {
            // Event ids are per stream class.
            self.pass.clear();
        }
        self.stream_class = sci;
        let s = &trace.streams[sci];
        let (mut begin, mut end_ts, mut content, mut size, mut disc, mut seq) =
            (None, None, None, None, None, None);
        let mut offs = std::mem::take(&mut self.pkt_ctx_offs);
        let ctx_start = s
            .packet_context
            .walk(
                &mut c,
                &mut self.slots,
                &mut offs,
                &mut |it: &IntTy, v| match it.role {
                    Role::PacketBeginTs => begin = Some((v, it.size)),
                    Role::PacketEndTs => end_ts = Some((v, it.size)),
                    Role::ContentSize => content = Some(v),
                    Role::PacketSize => size = Some(v),
                    Role::EventsDiscarded => disc = Some(v),
                    Role::PacketSeqNum => seq = Some(v),
                    _ => {}
                },
            )
            .map_err(|m| self.err(c.pos, format!("packet context: {m}")))?;
        self.pkt_ctx_offs = offs;
        self.bases[0] = ctx_start;
        let avail = (len - self.next_packet) * 8;
        let size = size.unwrap_or(content.unwrap_or(avail));
        let content = content.unwrap_or(size);
        if size == 0 || size % 8 != 0 || content > size {
            return Err(self.err(
                start_bits,
                format!("bad packet size {size} / content size {content}"),
            ));
        }
        if size > avail {
            return Err(self.err(
                start_bits,
                format!("packet of {} bytes goes past the end of the file", size / 8),
            ));
        }
        let content_end = start_bits + content;
        if c.pos > content_end {
            return Err(self.err(
                start_bits,
                "packet header and context are larger than the packet content",
            ));
        }
        self.cpu = match s.cpu_field {
            Some(i) => s.packet_context.plain[i]
                .as_ref()
                .and_then(|it| {
                    let o = s.packet_context.offset(i, ctx_start, &self.pkt_ctx_offs)?;
                    crate::bits::read_bits(data, o, it.size, it.bo == ByteOrder::Be)
                })
                .map(|v| v as u32)
                .unwrap_or(EventHeader::NO_CPU),
            None => EventHeader::NO_CPU,
        };
        if self.next_packet >= self.released + RELEASE_STEP {
            self.map.release(self.released, self.next_packet);
            self.released = self.next_packet / 4096 * 4096;
        }
        self.next_packet += size / 8;
        self.pos = c.pos;
        self.content_end = content_end;
        self.in_packet = true;
        if self.packets.is_some() {
            self.check_index(start_bits / 8, s.id, size, content, disc, seq);
        }
        let clock = s.clock.as_ref();
        let to_ns = |v: u64| clock.map(|k| k.to_ns(v)).unwrap_or(v as i64);
        if let Some((b, _)) = begin {
            self.clock_val = b;
        }
        let begin_ns = begin.map(|(b, _)| to_ns(b));
        let end_ns = end_ts.map(|(e, _)| to_ns(e));
        // Discarded packets: a gap in the packet sequence numbers (events: unknown count).
        if let Some(q) = seq {
            if let Some(prev) = self.last_seq {
                if q > prev.wrapping_add(1) && q > prev {
                    let b = self.prev_end_ts.or(begin_ns).unwrap_or(self.ts);
                    let e = begin_ns.unwrap_or(b).max(b);
                    self.pending.push(LostEvents {
                        begin: b,
                        end: e,
                        cpu: self.cpu,
                        stream: self.index,
                        count: None,
                    });
                }
            }
            self.last_seq = Some(q);
        }
        // Discarded events: the counter is a snapshot; a rise since the previous packet is a loss
        // somewhere between the end of the previous packet and the end of this one.
        if let Some(d) = disc {
            let prev = self.last_discarded.unwrap_or(0);
            if d > prev {
                let b = self.prev_end_ts.or(begin_ns).unwrap_or(self.ts);
                let e = end_ns.or(begin_ns).unwrap_or(b).max(b);
                self.pending.push(LostEvents {
                    begin: b,
                    end: e,
                    cpu: self.cpu,
                    stream: self.index,
                    count: Some(d - prev),
                });
            }
            self.last_discarded = Some(d);
        }
        self.prev_end_ts = end_ns.or(self.prev_end_ts);
        Ok(true)
    }

    /// Compares the packet just opened with the index's entry for it; drops the index, with a
    /// warning, at the first disagreement.
    fn check_index(
        &mut self,
        offset: u64,
        stream_id: u64,
        size: u64,
        content: u64,
        disc: Option<u64>,
        seq: Option<u64>,
    ) {
        let Some(packets) = &self.packets else { return };
        let what = match packets.get(self.packet_no) {
            None => Some("a packet the index does not list".to_string()),
            Some(e) => {
                if e.offset != offset || e.packet_size != size || e.content_size != content {
                    Some(format!(
                        "packet at byte {} of {} / {} bits, indexed at byte {} as {} / {}",
                        offset, size, content, e.offset, e.packet_size, e.content_size
                    ))
                } else if e.stream_id != stream_id
                    || (disc.is_some()
                        && e.events_discarded.is_some()
                        && disc != e.events_discarded)
                    || (seq.is_some() && e.seq_num.is_some() && seq != e.seq_num)
                {
                    Some(format!(
                        "packet at byte {}: stream id, discarded-event count or sequence \
                         number differs from the index",
                        offset
                    ))
                } else {
                    None
                }
            }
        };
        match what {
            None => self.packet_no += 1,
            Some(w) => {
                self.warnings.push(format!(
                    "{}: index disagrees with the stream ({w}); index ignored",
                    self.path.display()
                ));
                self.packets = None;
            }
        }
    }

    /// Positions the cursor on the first packet that may hold events at or after `ts` (the
    /// index says where, when the stream has one), or on the first packet, with the loss
    /// bookkeeping as if the packets before had been read.
    fn rewind_for(&mut self, ts: Timestamp) {
        let trace = self.trace.clone();
        let mut to = (0usize, 0u64);
        if let Some(packets) = &self.packets {
            let ns = |e: &index::PacketEntry, v: u64| -> Option<Timestamp> {
                let s = trace.streams.iter().find(|s| s.id == e.stream_id)?;
                if !s.has_begin_ts {
                    return None;
                }
                Some(s.clock.as_ref().map(|k| k.to_ns(v)).unwrap_or(v as i64))
            };
            // The first packet that ends at or after `ts`; every packet needs a known clock.
            let mut k = 0;
            let mut ok = true;
            while k < packets.len() {
                match ns(&packets[k], packets[k].ts_end) {
                    Some(end) if end < ts => k += 1,
                    Some(_) => break,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok && k > 0 {
                let prev = &packets[k - 1];
                self.last_discarded = prev.events_discarded;
                self.last_seq = prev.seq_num;
                self.prev_end_ts = ns(prev, prev.ts_end);
                to = (
                    k,
                    packets
                        .get(k)
                        .map(|e| e.offset)
                        .unwrap_or(self.data().len() as u64),
                );
            }
        }
        if to.0 == 0 {
            self.last_discarded = None;
            self.last_seq = None;
            self.prev_end_ts = None;
        }
        self.packet_no = to.0;
        self.next_packet = to.1;
        self.released = self.released.min(to.1 / 4096 * 4096);
        self.in_packet = false;
        self.pending.clear();
        self.done = false;
        self.next = Next::End;
    }

    /// The fast path of [`Self::fetch`], inlined into the merge, over the events of the current
    /// packet that have a fast header: a wanted event with a fixed body becomes the current one;
    /// events of classes nobody reads are passed over — by size, or by their body's skip
    /// program — without going through the merge. Returns false when [`Self::fetch`] must go on
    /// (the packet's end, a pending loss, any other shape, every error, which it reports).
    #[inline(always)]
    fn fetch_fast(&mut self, classes: &[ClassRt]) -> bool {
        if self.done || !self.in_packet || !self.pending.is_empty() {
            return false;
        }
        let s = &self.trace.streams[self.stream_class];
        let Some(fh) = &s.fast_header else {
            return false;
        };
        while self.pos < self.content_end {
            let start = self.pos;
            let data = self.map.bytes();
            let Some((h, hend)) = fh.run(data, start, self.content_end, &mut self.slots) else {
                return false;
            };
            // An id already known to be passed over: no class lookup.
            if let Some(&size) = h.id.and_then(|id| self.pass.get(id as usize)) {
                let end = hend + size as u64;
                if size != 0 && hend % 8 == 0 && end <= self.content_end {
                    self.ts = advance_clock(&mut self.clock_val, s, h.ts);
                    self.pos = end;
                    self.skipped += 1;
                    continue;
                }
            }
            let Some(cls) = s.class_of(h.id) else {
                return false;
            };
            let cr = &classes[cls as usize];
            let code = cr.code(s);
            let end = match (&code.body, &code.skip_body) {
                (Some(body), _) => {
                    let (starts, end) = body.place(hend);
                    if end > self.content_end || end <= start {
                        return false;
                    }
                    if cr.wanted {
                        self.finish_event(h.ts, cls, starts, start, end);
                        return true;
                    }
                    if let (Some(id), Some(size)) = (h.id, body.byte_aligned_size()) {
                        learn_pass(&mut self.pass, id, size);
                    }
                    end
                }
                // A variable-size event nobody reads: its end is all that is needed.
                (None, Some(code)) if !cr.wanted => {
                    let mut c = Cur {
                        data,
                        pos: hend,
                        end: self.content_end,
                    };
                    let n = code.ops.len();
                    let passed = code.run(0, n, &mut c, &mut self.slots, &mut |_, _| {});
                    if passed.is_err() || c.pos <= start {
                        return false;
                    }
                    c.pos
                }
                _ => return false,
            };
            self.ts = advance_clock(&mut self.clock_val, s, h.ts);
            self.pos = end;
            self.skipped += 1;
        }
        false
    }

    /// Decodes the next event (or packet boundary notice) into `self.next`: the fast path
    /// inline, the rest out of line.
    #[inline(always)]
    fn fetch(&mut self, classes: &[ClassRt]) {
        if self.done {
            self.next = Next::End;
            return;
        }
        if self.fetch_fast(classes) {
            return;
        }
        if let Err(e) = self.fetch_slow(classes) {
            self.done = true;
            self.next = Next::Err(e);
        }
    }

    /// [`Self::fetch`] once the fast path has declined what is at the cursor: losses, packet
    /// boundaries, and events of other shapes through the general walk.
    fn fetch_slow(&mut self, classes: &[ClassRt]) -> Result<(), TraceError> {
        let mut fast_declined = true;
        loop {
            // The fast path is tried again once the cursor has moved.
            let declined = std::mem::replace(&mut fast_declined, false);
            if !self.pending.is_empty() {
                let l = self.pending.remove(0);
                self.ts = l.begin;
                self.next = Next::Lost(l);
                return Ok(());
            }
            if !self.in_packet || self.pos >= self.content_end {
                self.in_packet = false;
                self.next = Next::End;
                if !self.open_packet(classes)? {
                    self.done = true;
                    return Ok(());
                }
                continue;
            }
            if !declined && self.fetch_fast(classes) {
                return Ok(());
            }
            if self.pos >= self.content_end {
                continue;
            }
            // Any other shape, or what the fast path found wrong: the general walk of one event.
            let trace = self.trace.clone();
            let s = &trace.streams[self.stream_class];
            let data: &[u8] = self.map.bytes();
            let mut c = Cur {
                data,
                pos: self.pos,
                end: self.content_end,
            };
            let start = c.pos;
            let mut id: Option<u64> = None;
            let mut ts_raw: Option<(u64, u32)> = None;
            let r =
                match &s.header_plan {
                    Some(plan) => plan.run(&mut c, &mut self.slots).map(|h| {
                        id = h.id;
                        ts_raw = h.ts;
                    }),
                    None => {
                        let mut dummy = std::mem::take(&mut self.offs[0]);
                        let r = s.header.walk(
                            &mut c,
                            &mut self.slots,
                            &mut dummy,
                            &mut |it: &IntTy, v| match it.role {
                                Role::EventClassId => id = Some(v),
                                Role::Timestamp => ts_raw = Some((v, it.size)),
                                _ => {}
                            },
                        );
                        self.offs[0] = dummy;
                        r.map(|_| ())
                    }
                };
            r.map_err(|m| self.err(c.pos, format!("event header: {m}")))?;
            let Some(cls) = s.class_of(id) else {
                return Err(self.err(
                    start,
                    format!(
                        "unknown event class id {}",
                        id.map(|i| i.to_string()).unwrap_or_else(|| "(none)".into())
                    ),
                ));
            };
            let cr = &classes[cls as usize];
            let code = cr.code(s);
            if let Some(body) = &code.body {
                let (starts, end) = body.place(c.pos);
                if end <= self.content_end && end > start {
                    if cr.wanted {
                        self.finish_event(ts_raw, cls, starts, start, end);
                        return Ok(());
                    }
                    self.pass_event(s, ts_raw, end);
                    continue;
                }
                // Past the content or empty: the general walk below says what is wrong.
            }
            let mut offs = std::mem::take(&mut self.offs);
            let res = (|| -> Result<[u64; 3], String> {
                let mut nohook = |_: &IntTy, _| {};
                let a = s
                    .common
                    .walk(&mut c, &mut self.slots, &mut offs[0], &mut nohook)?;
                let b = code
                    .context
                    .walk(&mut c, &mut self.slots, &mut offs[1], &mut nohook)?;
                let p = code
                    .payload
                    .walk(&mut c, &mut self.slots, &mut offs[2], &mut nohook)?;
                Ok([a, b, p])
            })();
            self.offs = offs;
            let starts = res.map_err(|m| self.err(c.pos, format!("event: {m}")))?;
            if c.pos == start {
                return Err(self.err(start, "event of size zero"));
            }
            if cr.wanted {
                self.finish_event(ts_raw, cls, starts, start, c.pos);
                return Ok(());
            }
            self.pass_event(s, ts_raw, c.pos);
        }
    }

    /// Passes over an event of a class nobody reads: its timestamp still moves the clock (a
    /// later event's truncated timestamp is relative to it).
    #[inline(always)]
    fn pass_event(&mut self, s: &StreamRt, ts_raw: Option<(u64, u32)>, end: u64) {
        self.ts = advance_clock(&mut self.clock_val, s, ts_raw);
        self.pos = end;
        self.skipped += 1;
    }

    /// Makes the event decoded at `start..end` the current one: updates the clock from the
    /// header's (possibly truncated) timestamp and records where its scopes start.
    #[inline(always)]
    fn finish_event(
        &mut self,
        ts_raw: Option<(u64, u32)>,
        cls: u32,
        starts: [u64; 3],
        start: u64,
        end: u64,
    ) {
        let s = &self.trace.streams[self.stream_class];
        self.ts = advance_clock(&mut self.clock_val, s, ts_raw);
        self.class = cls;
        let [a, b, c] = starts;
        self.bases[1] = a;
        self.bases[2] = b;
        self.bases[3] = c;
        self.ev_start = start;
        self.pos = end;
        // Assigning over an `Event` would run the drop glue of `Next` for nothing.
        if !matches!(self.next, Next::Event) {
            self.next = Next::Event;
        }
    }
}

/// The bytes, up to its NUL, of a string field at bit `off` of the stream's current packet, when
/// it has a fixed length or is NUL-terminated (`Some(None)`: a string whose length another field
/// gives, or not a string; `None`: past the data).
fn string_at<'a>(s: &'a StreamCursor, off: u64, ty: &Ty) -> Option<Option<&'a [u8]>> {
    let data = s.data();
    let b = (off / 8) as usize;
    Some(match ty {
        Ty::Str(Len::Static(n), false) => {
            Some(decode::until_nul(data.get(b..b.checked_add(*n as usize)?)?))
        }
        Ty::Str(_, true) => {
            let rest = data.get(b..(s.content_end / 8) as usize)?;
            Some(&rest[..rest.iter().position(|&x| x == 0)?])
        }
        _ => None,
    })
}

/// Remembers that events of id `id` are passed over with a body of `size` bits (see
/// [`StreamCursor::pass`]); ids and sizes too large for the table are not remembered.
#[cold]
fn learn_pass(pass: &mut Vec<u32>, id: u64, size: u64) {
    if id >= 4096 || size == 0 || size > u32::MAX as u64 {
        return;
    }
    if pass.len() <= id as usize {
        pass.resize(id as usize + 1, 0);
    }
    pass[id as usize] = size as u32;
}

/// Moves a stream's clock by an event header's (possibly truncated) timestamp; returns the
/// event's time in ns.
#[inline(always)]
fn advance_clock(clock_val: &mut u64, s: &StreamRt, ts_raw: Option<(u64, u32)>) -> Timestamp {
    if let Some((v, size)) = ts_raw {
        if size >= 64 {
            *clock_val = v;
        } else {
            let mask = (1u64 << size) - 1;
            let mut nv = (*clock_val & !mask) | v;
            if v < (*clock_val & mask) {
                nv = nv.wrapping_add(1u64 << size);
            }
            *clock_val = nv;
        }
    }
    match (s.ns_base, &s.clock) {
        (Some(base), _) if *clock_val < (1 << 62) => base.saturating_add(*clock_val as i64),
        (_, Some(k)) => k.to_ns(*clock_val),
        (_, None) => *clock_val as i64,
    }
}

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

fn kind_of(t: &Ty) -> FieldKind {
    match t {
        Ty::Int(i) if i.kind == IntKind::Bool => FieldKind::Bool,
        Ty::Int(i) if i.mappings.is_some() => FieldKind::Enum,
        Ty::Int(i) if i.signed => FieldKind::Int,
        Ty::Int(_) => FieldKind::UInt,
        Ty::Float { .. } => FieldKind::Float,
        Ty::Str(..) => FieldKind::Str,
        Ty::Blob(_) => FieldKind::Bytes,
        _ => FieldKind::Compound,
    }
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
                "no CTF trace (no `metadata` file) in this folder",
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
        let trace = self.add_trace_class(tc);
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
                Err(w) => {
                    self.stats.warnings.push(w);
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
                pass: Vec::new(),
            });
        }
    }

    fn add_trace_class(&mut self, tc: TraceClass) -> Rc<TraceRt> {
        let mut streams = Vec::new();
        let TraceClass {
            packet_header,
            streams: stream_classes,
            clocks,
            env,
            nslots,
            ..
        } = tc;
        for s in stream_classes {
            let packet_context = Layout::new(s.packet_context);
            let cpu_field = packet_context.fields().iter().position(|(n, t)| {
                n == "cpu_id" && matches!(t, Ty::Int(i) if i.kind == IntKind::Plain)
            });
            let common = Layout::new(s.event_context);
            let mut by_id = HashMap::new();
            let mut dense = Vec::new();
            self.rt.reserve(s.events.len());
            self.classes.reserve(s.events.len());
            let lone = (s.events.len() == 1).then_some(self.rt.len() as u32);
            for e in s.events {
                let gid = self.rt.len() as u32;
                if e.id < 4096 {
                    if dense.len() <= e.id as usize {
                        dense.resize(e.id as usize + 1, u32::MAX);
                    }
                    dense[e.id as usize] = gid;
                }
                if e.id >= 4096 {
                    by_id.insert(e.id, gid);
                }
                let nfields = packet_context.fields().len()
                    + [&common.ty, &e.context, &e.payload]
                        .iter()
                        .map(|t| t.as_struct().map_or(0, |st| st.fields.len()))
                        .sum::<usize>();
                let mut fields = Vec::with_capacity(nfields);
                let mut descs = Vec::with_capacity(nfields);
                // Packet context fields but those the reader itself consumes (sizes,
                // timestamps, discarded-event counter, sequence number): `cpu_id`…
                for (i, (n, t)) in packet_context.fields().iter().enumerate() {
                    if matches!(t, Ty::Int(it) if it.role != Role::None) {
                        continue;
                    }
                    fields.push((0u8, i as u32));
                    descs.push(FieldDesc {
                        name: n.clone(),
                        scope: Scope::PacketContext,
                        kind: kind_of(t),
                    });
                }
                for (scope, ty, sc) in [
                    (1u8, &common.ty, Scope::Common),
                    (2, &e.context, Scope::Context),
                    (3, &e.payload, Scope::Payload),
                ] {
                    let members = ty.as_struct().map_or(&[][..], |st| &st.fields[..]);
                    for (i, (n, t)) in members.iter().enumerate() {
                        fields.push((scope, i as u32));
                        descs.push(FieldDesc {
                            name: n.clone(),
                            scope: sc,
                            kind: kind_of(t),
                        });
                    }
                }
                let (system, name) = match e.name.split_once(':') {
                    Some((sys, n)) if !sys.is_empty() && !n.is_empty() => {
                        (sys.to_string(), e.name.clone())
                    }
                    _ => (String::new(), e.name),
                };
                self.classes.push(EventClass {
                    name,
                    system,
                    fields: descs,
                });
                self.rt.push(ClassRt {
                    code: Default::default(),
                    wanted: true,
                    fields,
                    types: Box::new((e.context, e.payload)),
                });
            }
            let clock = s
                .clock
                .as_ref()
                .and_then(|c| clocks.iter().find(|k| &k.name == c))
                .cloned();
            // Exact only while the sum stays in range; `finish_event` checks the cycle count.
            let ns_base = clock.as_ref().and_then(|k| {
                (k.freq == 1_000_000_000)
                    .then(|| {
                        k.offset_s
                            .checked_mul(1_000_000_000)?
                            .checked_add(k.offset_cycles)
                    })
                    .flatten()
            });
            let header_plan = decode::HeaderPlan::new(&s.event_header);
            let has_begin_ts = packet_context
                .fields()
                .iter()
                .any(|(_, t)| matches!(t, Ty::Int(i) if i.role == Role::PacketBeginTs));
            streams.push(StreamRt {
                id: s.id,
                ns_base,
                packet_context,
                has_begin_ts,
                fast_header: header_plan.as_ref().and_then(decode::FastHeader::new),
                header_plan,
                header: Layout::new(s.event_header),
                common,
                by_id,
                lone,
                dense,
                clock,
                cpu_field,
            });
        }
        let hostname = env
            .iter()
            .find(|(k, _)| k == "hostname")
            .map(|(_, v)| v.clone());
        Rc::new(TraceRt {
            packet_header: Layout::new(packet_header),
            streams,
            nslots: nslots as usize,
            hostname,
        })
    }

    /// A source over in-memory metadata and stream bytes (for tests and fuzzing); errors name
    /// `metadata` and `stream<i>`.
    pub fn from_memory(metadata: &[u8], streams: Vec<Vec<u8>>) -> Result<CtfSource, TraceError> {
        let mut src = CtfSource::empty();
        let tc = parse_metadata(metadata, Path::new("metadata"))?;
        let trace = src.add_trace_class(tc);
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
                    Next::Err(e) => return Err(e.clone()),
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
        decode::visit(ty, &mut c, slots, 0, to).map_err(|m| s.err(c.pos, format!("event: {m}")))
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
                Ok(Step::Event(EventHeader {
                    ts: s.ts,
                    cpu: s.cpu,
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
                let e = e.clone();
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
            // Strings of a length read from another field: through the general decoder.
            None => match self.value(field)? {
                Value::Str(std::borrow::Cow::Borrowed(x)) => Some(x),
                _ => None,
            },
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
        let fail = |pos: u64, m: String| s.err(pos, format!("event: {m}"));
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
                    let v = d
                        .read(data, base)
                        .ok_or_else(|| fail(base + d.rel, "integer past the end".into()))?;
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
                    let raw = data
                        .get(b..b + len as usize)
                        .ok_or_else(|| fail(b as u64 * 8, "string past the end".into()))?;
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
                    let raw = (end <= c.end)
                        .then(|| crate::bits::read_fast(data, pos, size, be))
                        .flatten()
                        .ok_or_else(|| fail(pos, "integer past the end".into()))?;
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

    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        for (i, c) in self.rt.iter_mut().enumerate() {
            c.wanted = classes.is_none_or(|cs| cs.contains(&ClassId(i as u32)));
        }
        for st in &mut self.streams {
            st.pass.clear();
        }
        // Each stream has read its next event ahead: pass over those nobody wants now, and
        // order the streams again by what they hold next.
        let mut changed = false;
        for (i, st) in self.streams.iter_mut().enumerate() {
            if Some(i) != self.cur
                && matches!(st.next, Next::Event)
                && !self.rt[st.class as usize].wanted
            {
                st.skipped += 1;
                st.fetch(&self.rt);
                changed = true;
            }
        }
        if changed {
            self.heap.clear();
            for i in 0..self.streams.len() {
                if Some(i) != self.cur {
                    self.push(i);
                }
            }
        }
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

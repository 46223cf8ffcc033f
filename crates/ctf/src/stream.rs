//! One data stream file as it is read: packets opened in order (header, context, loss
//! bookkeeping, the index checked), and the next event decoded ahead — through the fast path
//! for the common shapes, passing over the events of classes nobody reads inside the stream,
//! else through the general walk, which also produces the errors.

use crate::decode::Cur;
use crate::index;
use crate::metadata::{ClassRt, StreamRt, TraceRt};
use crate::types::*;
use memmap2::Mmap;
use std::path::PathBuf;
use std::rc::Rc;
use virtflow_trace::error::{CtfError, DecodeError, DecodeScope};
use virtflow_trace::{EventHeader, LostEvents, Timestamp, TraceError};

const CTF_MAGIC: u64 = 0xC1FC_1FC1;

pub(crate) enum Next {
    Event,
    Lost(LostEvents),
    /// Boxed: the stream cursor stays small, and so does the code moving it.
    Err(Box<TraceError>),
    End,
}

/// A stream's bytes: mapped from its file, or in memory (tests, fuzzing, empty files). Two
/// cases only: the accessors ask for the bytes several times per event.
pub(crate) enum Data {
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
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Data::Map(m) => m,
            Data::Mem(v) => v,
        }
    }
}

/// One data stream file: packets read in order, the next event decoded ahead.
pub(crate) struct StreamCursor {
    pub(crate) trace: Rc<TraceRt>,
    pub(crate) path: PathBuf,
    pub(crate) map: Data,
    pub(crate) index: u32,
    pub(crate) next_packet: u64,
    /// The stream's packets from its index file, while the index agrees with the packets read.
    pub(crate) packets: Option<Vec<index::PacketEntry>>,
    /// Index in `packets` of the packet at `next_packet`.
    pub(crate) packet_no: usize,
    /// Things to tell the user (an index that disagrees with the stream).
    pub(crate) warnings: Vec<String>,
    /// Bytes before this offset have been released from memory (see [`Data::release`]).
    pub(crate) released: u64,
    pub(crate) stream_class: usize,
    pub(crate) in_packet: bool,
    pub(crate) pos: u64,
    pub(crate) content_end: u64,
    pub(crate) clock_val: u64,
    pub(crate) cpu: u32,
    /// Bit offsets where the current packet's context and the current event's stream event
    /// context, context and payload start (see [`crate::plans::DirectInt::scope`]). Read one at a
    /// time: the processor forwards a stored value to a load of the same place, not to a wider
    /// load spanning several stores.
    pub(crate) bases: [u64; 4],
    pub(crate) pkt_ctx_offs: Vec<u64>,
    pub(crate) last_discarded: Option<u64>,
    pub(crate) last_seq: Option<u64>,
    pub(crate) pending: Vec<LostEvents>,
    pub(crate) prev_end_ts: Option<Timestamp>,
    pub(crate) slots: Vec<i128>,
    // The current (pre-read) event.
    pub(crate) ts: Timestamp,
    pub(crate) class: u32,
    pub(crate) offs: [Vec<u64>; 3],
    pub(crate) ev_start: u64,
    pub(crate) next: Next,
    pub(crate) done: bool,
    /// Events passed over because the caller did not want their class, and the time of the
    /// latest (the stream is in time order).
    pub(crate) skipped: u64,
    pub(crate) skipped_last: Timestamp,
    /// Whether the stream has announced an event of a class nobody reads, on its current
    /// CPU: the first is announced (see [`virtflow_trace::EventSource::set_interest`]).
    pub(crate) shown: bool,
    /// Whether it passes over events of classes nobody reads: not when each event carries
    /// its own CPU, which would have to be decoded to be told.
    pub(crate) filters: bool,
    /// Event id → the size in bits of the body of that id's events when nobody reads them and
    /// the body is fixed and byte-aligned (0: not known to be so). The fast path passes over
    /// such events from their header alone. Learnt as classes are met; forgotten when the
    /// interest changes.
    pub(crate) pass: Vec<u32>,
}

impl StreamCursor {
    #[inline]
    pub(crate) fn data(&self) -> &[u8] {
        self.map.bytes()
    }

    /// An error of this stream file at bit `off_bits`.
    #[cold]
    #[inline(never)]
    pub(crate) fn err(&self, off_bits: u64, kind: CtfError) -> TraceError {
        TraceError::new(&self.path, off_bits / 8, kind)
    }

    /// A field of `scope` that cannot be decoded at bit `off_bits`.
    #[cold]
    #[inline(never)]
    pub(crate) fn decode_err(
        &self,
        off_bits: u64,
        scope: DecodeScope,
        error: DecodeError,
    ) -> TraceError {
        self.err(off_bits, CtfError::Decode { scope, error })
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
        let mut magic = None;
        let mut sc_id: Option<u64> = None;
        let mut dummy = Vec::new();
        trace
            .packet_header
            .walk(
                &mut c,
                &mut self.slots,
                &mut dummy,
                &mut |it: &IntTy, v| match it.role {
                    Role::Magic => magic = Some(v),
                    Role::StreamClassId => sc_id = Some(v),
                    _ => {}
                },
            )
            .map_err(|e| self.decode_err(c.pos, DecodeScope::PacketHeader, e))?;
        if let Some(found) = magic.filter(|&m| m != CTF_MAGIC) {
            return Err(self.err(start_bits, CtfError::BadPacketMagic { found }));
        }
        let sci = match sc_id {
            Some(id) => match trace.streams.iter().position(|s| s.id == id) {
                Some(i) => i,
                None => return Err(self.err(start_bits, CtfError::UnknownStreamClass { id })),
            },
            None => {
                if trace.streams.len() != 1 {
                    return Err(self.err(
                        start_bits,
                        CtfError::NoStreamClassId {
                            stream_classes: trace.streams.len(),
                        },
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
            .map_err(|e| self.decode_err(c.pos, DecodeScope::PacketContext, e))?;
        self.pkt_ctx_offs = offs;
        self.bases[0] = ctx_start;
        let avail = (len - self.next_packet) * 8;
        let size = size.unwrap_or(content.unwrap_or(avail));
        let content = content.unwrap_or(size);
        if size == 0 || size % 8 != 0 || content > size {
            return Err(self.err(
                start_bits,
                CtfError::BadPacketSize {
                    packet_size_bits: size,
                    content_size_bits: content,
                },
            ));
        }
        if size > avail {
            return Err(self.err(
                start_bits,
                CtfError::PacketBeyondFile {
                    packet_size_bits: size,
                    file_size: len,
                },
            ));
        }
        let content_end = start_bits + content;
        if c.pos > content_end {
            return Err(self.err(
                start_bits,
                CtfError::PacketContentTooSmall {
                    header_bits: c.pos - start_bits,
                    content_size_bits: content,
                },
            ));
        }
        let cpu = match s.cpu_field {
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
        if cpu != self.cpu {
            self.shown = false;
            self.cpu = cpu;
        }
        self.filters = !s.cpu_per_event;
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
    pub(crate) fn rewind_for(&mut self, ts: Timestamp) {
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
                if size != 0 && hend % 8 == 0 && end <= self.content_end && self.shown {
                    self.ts = advance_clock(&mut self.clock_val, s, h.ts);
                    self.pos = end;
                    self.skipped += 1;
                    self.skipped_last = self.ts;
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
                    if announces(&mut self.shown, self.filters, cr.wanted) {
                        self.finish_event(h.ts, cls, starts, start, end);
                        return true;
                    }
                    if let (Some(id), Some(size)) = (h.id, body.byte_aligned_size()) {
                        learn_pass(&mut self.pass, id, size);
                    }
                    end
                }
                // A variable-size event nobody reads: its end is all that is needed.
                (None, Some(code)) if !cr.wanted && self.shown => {
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
            self.skipped_last = self.ts;
        }
        false
    }

    /// Decodes the next event (or packet boundary notice) into `self.next`: the fast path
    /// inline, the rest out of line.
    #[inline(always)]
    pub(crate) fn fetch(&mut self, classes: &[ClassRt]) {
        if self.done {
            self.next = Next::End;
            return;
        }
        if self.fetch_fast(classes) {
            return;
        }
        if let Err(e) = self.fetch_slow(classes) {
            self.done = true;
            self.next = Next::Err(Box::new(e));
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
            r.map_err(|e| self.decode_err(c.pos, DecodeScope::EventHeader, e))?;
            let Some(cls) = s.class_of(id) else {
                return Err(self.err(
                    start,
                    CtfError::UnknownEventClass {
                        stream_class: s.id,
                        id,
                    },
                ));
            };
            let cr = &classes[cls as usize];
            let code = cr.code(s);
            if let Some(body) = &code.body {
                let (starts, end) = body.place(c.pos);
                if end <= self.content_end && end > start {
                    if announces(&mut self.shown, self.filters, cr.wanted) {
                        self.finish_event(ts_raw, cls, starts, start, end);
                        return Ok(());
                    }
                    self.pass_event(s, ts_raw, end);
                    continue;
                }
                // Past the content or empty: the general walk below says what is wrong.
            }
            let mut offs = std::mem::take(&mut self.offs);
            let res = (|| -> Result<[u64; 3], DecodeError> {
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
            let starts = res.map_err(|e| self.decode_err(c.pos, DecodeScope::Event, e))?;
            if c.pos == start {
                return Err(self.err(start, CtfError::EmptyEvent));
            }
            if announces(&mut self.shown, self.filters, cr.wanted) {
                self.finish_event(ts_raw, cls, starts, start, c.pos);
                return Ok(());
            }
            self.pass_event(s, ts_raw, c.pos);
        }
    }

    /// Passes over an event of a class nobody reads: its timestamp still moves the clock (a
    /// later event's truncated timestamp is relative to it). (The fast path, which holds its
    /// stream class borrowed from `self.trace`, writes the same four lines itself.)
    #[inline(always)]
    fn pass_event(&mut self, s: &StreamRt, ts_raw: Option<(u64, u32)>, end: u64) {
        self.ts = advance_clock(&mut self.clock_val, s, ts_raw);
        self.pos = end;
        self.skipped += 1;
        self.skipped_last = self.ts;
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
#[inline]
pub(crate) fn string_at<'a>(s: &'a StreamCursor, off: u64, ty: &Ty) -> Option<Option<&'a [u8]>> {
    let data = s.data();
    let b = (off / 8) as usize;
    Some(match ty {
        Ty::Str(Len::Static(n), false) => Some(crate::decode::until_nul(
            data.get(b..b.checked_add(*n as usize)?)?,
        )),
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

/// Whether an event is announced: one of a class read, or the stream's first of a class
/// nobody reads on its current CPU (`shown`: whether that one was announced), or any when
/// the stream does not filter.
#[inline(always)]
fn announces(shown: &mut bool, filters: bool, wanted: bool) -> bool {
    wanted || !std::mem::replace(shown, filters)
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

//! trace-cmd `.dat` reader (file versions 6 and 7).
//!
//! [`DatSource::open`] maps the file, reads its metadata ([`meta`]: header, formats,
//! command lines, options, buffers) and sets up one [`stream::CpuStream`] per CPU of every
//! buffer. Events are then produced lazily: each stream decodes its next page header and
//! record header only when it has to ([`page`]), compressed streams decompress one chunk at a
//! time, and a binary heap merges the streams in time order (ties go to the lower stream,
//! as `trace-cmd report` does). Field accessors read the current record's bytes in place
//! through the shared [`crate::record`] decoder, without allocating. Under an interest, a
//! stream passes over the records of classes nobody reads as it looks for its next one (but
//! its first of them, and one that bounds a loss), counting them and the latest time.
//!
//! Each tracepoint format is one event class (common fields with `Scope::Common`, then the
//! payload); every buffer (instance) shares the classes, and `EventHeader::stream` tells
//! buffers and CPUs apart ([`DatSource::stream_info`]). Timestamps are converted to
//! nanoseconds as trace-cmd does: guest time shift, TSC-to-ns multiplier and shift, OFFSET.
//!
//! A damaged page or truncated data ends its stream with an error naming the file and
//! offset; the other streams' events are still delivered, then the error is returned.

mod bytes;
mod compress;
pub mod meta;
pub mod page;
mod stream;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use virtflow_trace::{
    ClassId, EventClass, EventHeader, EventSource, FieldId, FieldVisitor, LostEvents, PassedOver,
    ReadStats, Step, TraceError, Value, ValueBuilder,
};

use self::bytes::Failure;
use self::meta::{DatMeta, GuestInfo, TextLoc};
use self::page::{Missed, PageLayout};
use self::stream::{CpuStream, TypeLookup};
use crate::format::EventFormat;
use crate::mapped::FileBytes;
use crate::record::{self, Endian, IntSlot};
use virtflow_trace::error::DatError;

pub use self::compress::Codec;

/// What the current event is: which stream, and where its record is: in the file, when
/// its page is read in place, else in the stream's decompressed chunk — found once, when the
/// event is announced, so that a field read is a bounds check and a load.
#[derive(Clone, Copy)]
struct Current {
    stream: u32,
    class: u32,
    in_file: bool,
    start: usize,
    end: usize,
}

/// A trace-cmd `.dat` file as an [`EventSource`].
pub struct DatSource {
    path: PathBuf,
    file: FileBytes,
    meta: DatMeta,
    classes: Vec<EventClass>,
    /// Per class, per field: where its integer is (see [`IntSlot`]).
    int_slots: Vec<Vec<IntSlot>>,
    types: TypeLookup,
    streams: Vec<CpuStream>,
    /// (timestamp in ns, stream index) of every stream with a pending record.
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    /// The stream whose record is current: it moves on at the next `advance`, so that the
    /// current record's bytes stay valid until then. Its entry stays on top of the heap
    /// until then too.
    refill: Option<u32>,
    /// Last timestamp delivered per stream, for the start of a loss interval.
    last_ts: Vec<i64>,
    current: Option<Current>,
    stats: ReadStats,
    /// The first stream error, returned once every other stream is drained.
    error: Option<TraceError>,
    finished: bool,
    endian: Endian,
}

impl DatSource {
    /// Opens a `.dat` file: reads its metadata and prepares its streams (no page is decoded
    /// yet).
    pub fn open(path: &Path) -> Result<DatSource, TraceError> {
        let file = FileBytes::open(path)?;
        let err = |e: Failure| e.at(path);
        let meta = meta::parse(file.bytes()).map_err(err)?;
        let classes: Vec<EventClass> = meta.formats.iter().map(record::event_class).collect();
        let int_slots = meta
            .formats
            .iter()
            .map(|f| f.fields.iter().map(IntSlot::of).collect())
            .collect();
        let types = TypeLookup::new(&meta.formats);
        let layout = PageLayout::new(&meta.header_page, meta.endian);
        let mut streams = Vec::new();
        for (bi, b) in meta.buffers.iter().enumerate() {
            let page_size = if b.page_size == 0 {
                meta.page_size
            } else {
                b.page_size
            } as usize;
            if page_size <= layout.data_offset {
                return Err(TraceError::new(
                    path,
                    b.section_offset,
                    DatError::PageSizeBelowHeader {
                        page_size: page_size as u64,
                        header_size: layout.data_offset as u64,
                    },
                ));
            }
            let codec = if b.compressed { meta.codec } else { None };
            if b.compressed && codec.is_none() {
                return Err(TraceError::new(
                    path,
                    b.section_offset,
                    DatError::CompressedWithoutCodec { part: "buffer" },
                ));
            }
            for c in &b.cpus {
                streams.push(
                    CpuStream::new(
                        file.bytes(),
                        c.cpu,
                        bi as u32,
                        c.offset,
                        c.size,
                        codec,
                        page_size,
                        layout,
                    )
                    .map_err(err)?,
                );
            }
        }
        let mut stats = ReadStats::default();
        stats.warnings.extend(meta.warnings.iter().cloned());
        let n = streams.len();
        let mut source = DatSource {
            path: path.to_path_buf(),
            file,
            endian: meta.endian,
            meta,
            classes,
            int_slots,
            types,
            streams,
            heap: BinaryHeap::with_capacity(n),
            refill: None,
            last_ts: vec![i64::MIN; n],
            current: None,
            stats,
            error: None,
            finished: false,
        };
        for i in 0..n {
            source.fill(i as u32);
        }
        Ok(source)
    }

    /// Moves stream `i` to its next record and queues it.
    fn fill(&mut self, i: u32) {
        let s = &mut self.streams[i as usize];
        match s.fill(self.file.bytes(), &self.types) {
            Ok(()) => {
                if let Some(p) = s.pending {
                    let ts = self.meta.clock_conversion.to_ns(p.raw_ts, s.cpu as usize);
                    self.heap.push(Reverse((ts, i)));
                }
            }
            Err(e) => {
                self.stats.truncated_packets += 1;
                if self.error.is_none() {
                    self.error = Some(e.at(&self.path));
                }
            }
        }
    }

    /// Moves stream `i`, whose record was just delivered and whose entry is still on top
    /// of the heap, to its next record. Replacing the top in place costs one sift-down
    /// (usually a couple of comparisons, as a CPU's records tend to come in runs) where a
    /// pop and a push would cost two full sifts per event.
    fn refill_top(&mut self, i: u32) {
        let s = &mut self.streams[i as usize];
        let next = match s.fill(self.file.bytes(), &self.types) {
            Ok(()) => s
                .pending
                .map(|p| self.meta.clock_conversion.to_ns(p.raw_ts, s.cpu as usize)),
            Err(e) => {
                self.stats.truncated_packets += 1;
                if self.error.is_none() {
                    self.error = Some(e.at(&self.path));
                }
                None
            }
        };
        if let Some((from, to)) = s.passed_pages(RELEASE_BYTES) {
            self.file.release(from, to);
        }
        if let Some(mut top) = self.heap.peek_mut() {
            debug_assert_eq!(top.0 .1, i, "the delivered stream is on top of the heap");
            match next {
                Some(ts) => *top = Reverse((ts, i)),
                None => {
                    std::collections::binary_heap::PeekMut::pop(top);
                }
            }
        }
    }

    /// The metadata read from the file: formats, options, buffers, guests…
    pub fn meta(&self) -> &DatMeta {
        &self.meta
    }

    /// The tracepoint format of a class.
    pub fn format(&self, class: virtflow_trace::ClassId) -> Option<&EventFormat> {
        self.meta.formats.get(class.0 as usize)
    }

    /// (buffer name, CPU) of a stream index (`""` is the top buffer).
    pub fn stream_info(&self, stream: u32) -> Option<(&str, u32)> {
        let s = self.streams.get(stream as usize)?;
        Some((self.meta.buffers[s.buffer as usize].name.as_str(), s.cpu))
    }

    /// The command name the trace saved for a pid (`saved_cmdlines`).
    pub fn comm(&self, pid: i32) -> Option<&str> {
        self.meta.cmdlines.get(&pid).map(String::as_str)
    }

    /// Guests recorded along with the host (`trace-cmd record -A`).
    pub fn guests(&self) -> &[GuestInfo] {
        &self.meta.guests
    }

    /// The kernel symbols (`/proc/kallsyms`) the file carries, sorted by address:
    /// (address, type letter, name). Read on demand: most analyses need none.
    pub fn kallsyms(&self) -> Result<Vec<(u64, char, String)>, TraceError> {
        let Some(loc) = self.meta.kallsyms else {
            return Ok(Vec::new());
        };
        let text = self.text_at(loc)?;
        let mut syms: Vec<(u64, char, String)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?.chars().next()?;
                let name = it.next()?;
                Some((addr, kind, name.to_string()))
            })
            .collect();
        syms.sort_by_key(|s| s.0);
        Ok(syms)
    }

    /// The `trace_printk` format strings by address.
    pub fn printk_formats(&self) -> Result<Vec<(u64, String)>, TraceError> {
        let Some(loc) = self.meta.printk else {
            return Ok(Vec::new());
        };
        let text = self.text_at(loc)?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let (addr, fmt) = l.split_once(':')?;
                let addr = addr.trim().trim_start_matches("0x");
                let addr = u64::from_str_radix(addr, 16).ok()?;
                let fmt = fmt.trim().trim_matches('"');
                Some((addr, fmt.to_string()))
            })
            .collect())
    }

    fn text_at(&self, loc: TextLoc) -> Result<String, TraceError> {
        let err = |e: Failure| e.at(&self.path);
        let data = self.file.bytes();
        match loc {
            TextLoc::Plain { offset, len } => {
                let start = offset as usize;
                let end = start.saturating_add(len as usize);
                let b = data.get(start..end).ok_or_else(|| {
                    bytes::beyond_end("text".into(), offset, data.len()).at(&self.path)
                })?;
                Ok(String::from_utf8_lossy(b).into_owned())
            }
            TextLoc::Section { offset } => {
                let (_, body) =
                    meta::read_section(data, offset, self.meta.endian, self.meta.codec, &mut None)
                        .map_err(err)?;
                let mut r = bytes::Reader::section(&body, offset, self.meta.endian, "text section");
                let size = r.u32().map_err(err)?;
                r.text(size as u64).map_err(err)
            }
        }
    }

    /// The current record's bytes.
    #[inline]
    fn record(&self) -> Option<(&EventFormat, &[u8])> {
        let c = self.current?;
        Some((
            self.meta.formats.get(c.class as usize)?,
            self.record_bytes(&c)?,
        ))
    }

    #[inline(always)]
    fn record_bytes(&self, c: &Current) -> Option<&[u8]> {
        let data = if c.in_file {
            self.file.bytes()
        } else {
            self.streams.get(c.stream as usize)?.chunk()
        };
        data.get(c.start..c.end)
    }

    /// An integer field of the current record, sign-extended when signed. Inlined into
    /// every accessor: the analyses read a few of these from nearly every event.
    #[inline(always)]
    fn integer(&self, field: FieldId) -> Option<i64> {
        let c = self.current.as_ref()?;
        let slot = *self
            .int_slots
            .get(c.class as usize)?
            .get(field.0 as usize)?;
        slot.read(self.record_bytes(c)?, self.endian)
    }
}

/// Bytes of pages a stream moves past before they are handed back to the kernel: peak
/// memory stays flat as the trace grows (a few of these per CPU), at one system call per
/// this many bytes read.
const RELEASE_BYTES: usize = 1 << 20;

impl EventSource for DatSource {
    fn classes(&self) -> &[EventClass] {
        &self.classes
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        self.current = None;
        if self.finished {
            return Ok(Step::End);
        }
        if let Some(i) = self.refill.take() {
            self.refill_top(i);
        }
        let Some(&Reverse((ts, i))) = self.heap.peek() else {
            self.finished = true;
            self.stats.unknown_events = self.streams.iter().map(|s| s.unknown_events).sum();
            return match self.error.take() {
                Some(e) => Err(e),
                None => Ok(Step::End),
            };
        };
        let s = &mut self.streams[i as usize];
        let p = s.pending.expect("a queued stream has a pending record");
        if let Some(missed) = s.lost_before_pending.take() {
            // Report the loss first; the record stays pending and on top of the heap.
            let count = match missed {
                Missed::Count(n) => Some(n),
                _ => None,
            };
            self.stats.lost_notices += 1;
            self.stats.lost_events += count.unwrap_or(0);
            // After the stream's last event, announced or passed over.
            let passed = s.skipped_last_raw.map_or(i64::MIN, |raw| {
                self.meta.clock_conversion.to_ns(raw, s.cpu as usize)
            });
            let begin = match self.last_ts[i as usize].max(passed) {
                i64::MIN => ts,
                t => t,
            };
            return Ok(Step::Lost(LostEvents {
                begin,
                end: ts,
                cpu: s.cpu,
                stream: i,
                count,
            }));
        }
        self.last_ts[i as usize] = ts;
        self.refill = Some(i);
        self.stats.events += 1;
        let (in_file, page_start) = s.page_at();
        let start = page_start + p.record.start;
        self.current = Some(Current {
            stream: i,
            class: p.class,
            in_file,
            start,
            end: start + p.record.len,
        });
        Ok(Step::Event(EventHeader {
            ts,
            cpu: s.cpu,
            stream: i,
            class: virtflow_trace::ClassId(p.class),
        }))
    }

    #[inline]
    fn u64(&self, field: FieldId) -> Option<u64> {
        self.integer(field).map(|v| v as u64)
    }

    #[inline]
    fn i64(&self, field: FieldId) -> Option<i64> {
        self.integer(field)
    }

    #[inline]
    fn str(&self, field: FieldId) -> Option<&str> {
        let (fmt, rec) = self.record()?;
        record::read_str(fmt.fields.get(field.0 as usize)?, rec, self.endian)
    }

    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        let (fmt, rec) = self.record()?;
        record::read_value(fmt.fields.get(field.0 as usize)?, rec, self.endian)
    }

    fn for_each_value(&self, class: ClassId, f: &mut dyn FnMut(FieldId, Value<'_>)) {
        let _ = self.visit_fields(class, &mut ValueBuilder::new(f));
    }

    fn visit_fields(&self, class: ClassId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        // The record found once for all its fields.
        if self.current.is_none_or(|c| c.class != class.0) {
            return Ok(());
        }
        let Some((fmt, rec)) = self.record() else {
            return Ok(());
        };
        let slots = self.int_slots.get(class.0 as usize);
        for (i, field) in fmt.fields.iter().enumerate() {
            let id = FieldId(i as u32);
            match slots.and_then(|s| s.get(i)) {
                // Integers of 1, 2, 4 or 8 bytes as the integer accessors read them.
                Some(slot) if slot.is_integer() => match slot.read(rec, self.endian) {
                    Some(v) if slot.signed() => to.field_int(id, v),
                    Some(v) => to.field_uint(id, v as u64),
                    None => {}
                },
                _ => {
                    record::visit_field(field, rec, self.endian, id, to);
                }
            }
        }
        Ok(())
    }

    fn stats(&self) -> ReadStats {
        let mut s = self.stats.clone();
        s.unknown_events = self.streams.iter().map(|s| s.unknown_events).sum();
        s.events += self.streams.iter().map(|s| s.skipped).sum::<u64>();
        s
    }

    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        let interest = virtflow_trace::interest_table(self.classes.len(), classes);
        self.types.set_interest(interest.as_deref());
        // The record each stream holds is its first: announced whatever its class, and the
        // first of a class nobody reads if it is one.
        for s in &mut self.streams {
            s.shown = match (&interest, s.pending) {
                (Some(read), Some(p)) => !read.get(p.class as usize).copied().unwrap_or(false),
                _ => false,
            };
        }
    }

    fn passed_over(&self, host: usize) -> PassedOver {
        let mut passed = PassedOver::default();
        for s in &self.streams {
            if let Some(raw) = s.skipped_last_raw {
                passed.merge(PassedOver {
                    events: s.skipped,
                    last: Some(self.meta.clock_conversion.to_ns(raw, s.cpu as usize)),
                });
            }
        }
        passed.of_host(host)
    }

    fn progress(&self) -> Option<(u64, u64)> {
        let done = self.streams.iter().map(|s| s.consumed).sum();
        let total = self.streams.iter().map(|s| s.total).sum();
        Some((done, total))
    }

    fn hostname(&self) -> Option<String> {
        // UNAME is `sysname nodename release machine`.
        let node = self.meta.uname.as_deref()?.split_whitespace().nth(1)?;
        (node != "(none)").then(|| node.to_string())
    }
}

//! The trace's metadata as the reader uses it: the metadata file read (plain or packetized
//! TSDL, or CTF 2 JSON) into a [`TraceClass`], then compiled into the descriptions streams are
//! read with — per trace a [`TraceRt`], per stream class a [`StreamRt`] (compiled layouts,
//! event classes by id, clock), per event class a [`ClassRt`] (where its fields live; its
//! reading plans, compiled when its first event is read).

use crate::layout::Layout;
use crate::plans::{ClassCode, FastHeader, HeaderPlan};
use crate::types::*;
use crate::{ctf2, tsdl};
use memmap2::Mmap;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::rc::Rc;
use virtflow_trace::error::CtfError;
use virtflow_trace::{EventClass, FieldDesc, FieldId, FieldKind, Scope, TraceError};

const PACKETIZED_MAGIC: u32 = 0x75D1_1D57;

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
        let err = |kind: CtfError| TraceError::new(path, off as u64, kind);
        let available = (data.len() - off) as u64;
        if available < HDR as u64 {
            return Err(err(CtfError::MetadataPacketTruncated { available }));
        }
        let magic = u32_at(off);
        if magic != PACKETIZED_MAGIC {
            return Err(err(CtfError::MetadataPacketBadMagic { found: magic }));
        }
        let content = u32_at(off + 24) as usize;
        let size = u32_at(off + 28) as usize;
        let (compression, encryption, checksum) = (data[off + 32], data[off + 33], data[off + 34]);
        if compression != 0 || encryption != 0 || checksum != 0 {
            return Err(err(CtfError::MetadataPacketUnsupported {
                compression,
                encryption,
                checksum,
            }));
        }
        if content % 8 != 0
            || size % 8 != 0
            || content > size
            || content / 8 < HDR
            || off + size / 8 > data.len()
        {
            return Err(err(CtfError::MetadataPacketBadSize {
                content_size_bits: content as u64,
                packet_size_bits: size as u64,
                available,
            }));
        }
        out.extend_from_slice(&data[off + HDR..off + content / 8]);
        off += size / 8;
    }
    Ok(out)
}

/// A trace (one `metadata` file and its streams): its packet header and stream classes.
pub(crate) struct TraceRt {
    pub(crate) packet_header: Layout,
    pub(crate) streams: Vec<StreamRt>,
    pub(crate) nslots: usize,
    pub(crate) hostname: Option<String>,
}

/// Per stream class: compiled layouts and the event classes by id.
pub(crate) struct StreamRt {
    pub(crate) id: u64,
    pub(crate) packet_context: Layout,
    pub(crate) header: Layout,
    pub(crate) header_plan: Option<HeaderPlan>,
    pub(crate) fast_header: Option<FastHeader>,
    pub(crate) common: Layout,
    /// Event class id → global class index: ids below 4096 in `dense` (`u32::MAX`: none),
    /// larger ones in `by_id`.
    pub(crate) dense: Vec<u32>,
    pub(crate) by_id: HashMap<u64, u32>,
    /// The stream class's only event class, which events without an id are of.
    pub(crate) lone: Option<u32>,
    pub(crate) clock: Option<Clock>,
    /// Whether packet contexts give the clock value at the packet's start: reading can then
    /// begin at any packet.
    pub(crate) has_begin_ts: bool,
    /// `clock` origin in ns when the clock counts nanoseconds: timestamps are one addition.
    pub(crate) ns_base: Option<i64>,
    pub(crate) cpu_field: Option<usize>,
    /// Whether its events carry their own CPU (perf's `perf_cpu`), the packets naming none.
    pub(crate) cpu_per_event: bool,
}

impl StreamRt {
    /// The global class index of event class `id` (the only class when there is no id).
    #[inline(always)]
    pub(crate) fn class_of(&self, id: Option<u64>) -> Option<u32> {
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
pub(crate) struct ClassRt {
    pub(crate) code: std::cell::OnceCell<ClassCode>,
    /// The caller reads this class (see [`EventSource::set_interest`]): its events are
    /// announced; the others are passed over inside the stream, unseen by the merge.
    pub(crate) wanted: bool,
    /// FieldId → (scope, index): scope 0 packet context, 1 common, 2 context, 3 payload.
    pub(crate) fields: Vec<(u8, u32)>,
    /// The event context and payload types, compiled into `code` on first use.
    pub(crate) types: Box<(Ty, Ty)>,
    /// Where an event of this class gives its CPU when its packet context does not
    /// (`perf_cpu`, in perf's CTF conversion).
    pub(crate) event_cpu: Option<FieldId>,
}

impl ClassRt {
    /// The compiled layouts; `s` is the class's stream class.
    #[inline(always)]
    pub(crate) fn code(&self, s: &StreamRt) -> &ClassCode {
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

impl TraceRt {
    /// Compiles a trace class: its stream classes into [`StreamRt`]s, and its event classes,
    /// numbered on from those already in `classes`, into `classes` (what users see) and `rt`
    /// (what the reader uses).
    pub(crate) fn compile(
        tc: TraceClass,
        classes: &mut Vec<EventClass>,
        rt: &mut Vec<ClassRt>,
    ) -> Rc<TraceRt> {
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
            rt.reserve(s.events.len());
            classes.reserve(s.events.len());
            let lone = (s.events.len() == 1).then_some(rt.len() as u32);
            let first_class = rt.len();
            for e in s.events {
                let gid = rt.len() as u32;
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
                // perf's CTF conversion has no `cpu_id` in its packet context: each event
                // carries its CPU as `perf_cpu`.
                let event_cpu = if cpu_field.is_none() {
                    descs
                        .iter()
                        .position(|d| {
                            d.name == "perf_cpu"
                                && d.scope == Scope::Payload
                                && matches!(d.kind, FieldKind::UInt | FieldKind::Int)
                        })
                        .map(|i| FieldId(i as u32))
                } else {
                    None
                };
                let (system, name) = match e.name.split_once(':') {
                    Some((sys, n)) if !sys.is_empty() && !n.is_empty() => {
                        (sys.to_string(), e.name.clone())
                    }
                    _ => (String::new(), e.name),
                };
                classes.push(EventClass {
                    name,
                    system,
                    fields: descs,
                });
                rt.push(ClassRt {
                    code: Default::default(),
                    wanted: true,
                    fields,
                    types: Box::new((e.context, e.payload)),
                    event_cpu,
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
            let cpu_per_event = rt[first_class..].iter().any(|c| c.event_cpu.is_some());
            let header_plan = HeaderPlan::new(&s.event_header);
            let has_begin_ts = packet_context
                .fields()
                .iter()
                .any(|(_, t)| matches!(t, Ty::Int(i) if i.role == Role::PacketBeginTs));
            streams.push(StreamRt {
                id: s.id,
                ns_base,
                packet_context,
                has_begin_ts,
                fast_header: header_plan.as_ref().and_then(FastHeader::new),
                header_plan,
                header: Layout::new(s.event_header),
                common,
                by_id,
                lone,
                dense,
                clock,
                cpu_field,
                cpu_per_event,
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
}

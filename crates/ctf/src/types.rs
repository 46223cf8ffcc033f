//! The internal type representation both metadata front ends (TSDL and CTF 2 JSON) compile to.

use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    Le,
    Be,
    /// TSDL `native`: replaced by the trace's byte order once it is known.
    Native,
}

/// What a field means to the reader (CTF 2 roles; TSDL fields get them from their names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    None,
    Magic,
    StreamClassId,
    StreamId,
    EventClassId,
    Timestamp,
    PacketBeginTs,
    PacketEndTs,
    ContentSize,
    PacketSize,
    EventsDiscarded,
    PacketSeqNum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntKind {
    Plain,
    Bool,
    /// LEB128 variable-length integer.
    Var,
}

/// One label of an enumeration and the integer ranges (inclusive) it covers.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    pub name: String,
    pub ranges: Vec<(i128, i128)>,
}

#[derive(Clone, Debug)]
pub struct IntTy {
    /// Bits (fixed-length integers).
    pub size: u32,
    /// Bits.
    pub align: u32,
    pub signed: bool,
    pub bo: ByteOrder,
    pub base: u32,
    /// TSDL `encoding = UTF8/ASCII` (8-bit integers in arrays become strings).
    pub encoded: bool,
    pub kind: IntKind,
    /// Clock name the integer is mapped to.
    pub clock: Option<String>,
    pub role: Role,
    /// Slot that keeps this field's last value, when a variant or sequence refers to it.
    pub slot: Option<u16>,
    pub mappings: Option<Rc<Vec<Mapping>>>,
}

impl IntTy {
    pub fn new(size: u32, signed: bool) -> Self {
        IntTy {
            size,
            align: if size % 8 == 0 { 8 } else { 1 },
            signed,
            bo: ByteOrder::Native,
            base: 10,
            encoded: false,
            kind: IntKind::Plain,
            clock: None,
            role: Role::None,
            slot: None,
            mappings: None,
        }
    }
}

/// Absolute TSDL/CTF 2 scopes, in decoding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Root {
    PacketHeader = 0,
    PacketContext = 1,
    EventHeader = 2,
    StreamEventContext = 3,
    EventContext = 4,
    Payload = 5,
}

/// A field location as written in the metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldPath {
    /// `None`: relative (TSDL lexical scoping).
    pub root: Option<Root>,
    pub parts: Vec<String>,
}

#[derive(Clone, Debug)]
pub enum Loc {
    Path(FieldPath),
    Slot(u16),
}

impl Loc {
    pub fn slot(&self) -> Option<u16> {
        match self {
            Loc::Slot(s) => Some(*s),
            Loc::Path(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Len {
    Static(u64),
    Dyn(Loc),
}

#[derive(Clone, Debug)]
pub struct StructTy {
    /// Minimum alignment in bits.
    pub min_align: u32,
    pub fields: Vec<(String, Ty)>,
}

#[derive(Clone, Debug)]
pub struct VariantTy {
    pub tag: Loc,
    pub options: Vec<(String, Ty)>,
    /// Selector ranges (inclusive) → option index. For TSDL, built from the tag's enumeration.
    pub ranges: Vec<(i128, i128, usize)>,
    /// TSDL: selection is by the tag enumeration's labels, resolved after the tag is known.
    pub by_label: bool,
}

#[derive(Clone, Debug)]
pub enum Ty {
    Int(IntTy),
    Float {
        size: u32,
        align: u32,
        bo: ByteOrder,
    },
    /// String; for static/dynamic lengths, the length is in bytes.
    Str(Len, bool /* null-terminated */),
    Blob(Len),
    Struct(Box<StructTy>),
    Array {
        elem: Box<Ty>,
        len: Len,
        align: u32,
    },
    Variant(Box<VariantTy>),
    Optional {
        sel: Loc,
        ranges: Option<Vec<(i128, i128)>>,
        ty: Box<Ty>,
    },
}

impl Ty {
    pub fn empty_struct() -> Ty {
        Ty::Struct(Box::new(StructTy {
            min_align: 8,
            fields: Vec::new(),
        }))
    }

    /// Alignment in bits.
    pub fn align(&self) -> u32 {
        match self {
            Ty::Int(i) => {
                if i.kind == IntKind::Var {
                    8
                } else {
                    i.align.max(1)
                }
            }
            Ty::Float { align, .. } => (*align).max(1),
            Ty::Str(..) | Ty::Blob(_) => 8,
            // Both are kept up to date by `normalise_align` (called once the type is built).
            Ty::Struct(s) => s.min_align.max(1),
            Ty::Array { align, .. } => (*align).max(1),
            Ty::Variant(_) | Ty::Optional { .. } => 1,
        }
    }

    /// Size in bits when it does not depend on the data (assuming the start is aligned to
    /// [`Ty::align`]).
    pub fn fixed_size(&self) -> Option<u64> {
        match self {
            Ty::Int(i) => (i.kind != IntKind::Var).then_some(i.size as u64),
            Ty::Float { size, .. } => Some(*size as u64),
            Ty::Str(Len::Static(n), false) | Ty::Blob(Len::Static(n)) => {
                n.checked_mul(8).filter(|v| *v < 1 << 60)
            }
            Ty::Struct(s) => {
                let mut off = 0u64;
                for (_, t) in &s.fields {
                    off = align_up(off, t.align() as u64);
                    off = off.checked_add(t.fixed_size()?)?;
                }
                (off < 1 << 60).then_some(off)
            }
            Ty::Array {
                elem,
                len: Len::Static(n),
                ..
            } => {
                let es = elem.fixed_size()?;
                if es % elem.align() as u64 != 0 && *n > 1 {
                    return None;
                }
                es.checked_mul(*n).filter(|v| *v < 1 << 60)
            }
            _ => None,
        }
    }

    /// Folds the alignment of members and elements into their structure's and array's own,
    /// so that [`Ty::align`] is O(1). Call once a type is complete.
    pub fn normalise_align(&mut self) {
        match self {
            Ty::Struct(s) => {
                let mut a = s.min_align.max(1);
                for (_, f) in &mut s.fields {
                    f.normalise_align();
                    a = a.max(f.align());
                }
                s.min_align = a;
            }
            Ty::Array { elem, align, .. } => {
                elem.normalise_align();
                *align = (*align).max(elem.align());
            }
            Ty::Variant(v) => v.options.iter_mut().for_each(|(_, t)| t.normalise_align()),
            Ty::Optional { ty, .. } => ty.normalise_align(),
            _ => {}
        }
    }

    pub fn as_struct(&self) -> Option<&StructTy> {
        match self {
            Ty::Struct(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_struct_mut(&mut self) -> Option<&mut StructTy> {
        match self {
            Ty::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// Visits every integer type, mutably.
    pub fn for_each_int(&mut self, f: &mut dyn FnMut(&mut IntTy)) {
        match self {
            Ty::Int(i) => f(i),
            Ty::Struct(s) => s.fields.iter_mut().for_each(|(_, t)| t.for_each_int(f)),
            Ty::Array { elem, .. } => elem.for_each_int(f),
            Ty::Variant(v) => v.options.iter_mut().for_each(|(_, t)| t.for_each_int(f)),
            Ty::Optional { ty, .. } => ty.for_each_int(f),
            _ => {}
        }
    }

    /// Whether some integer of the type satisfies `f`.
    pub fn any_int(&self, f: &dyn Fn(&IntTy) -> bool) -> bool {
        match self {
            Ty::Int(i) => f(i),
            Ty::Struct(s) => s.fields.iter().any(|(_, t)| t.any_int(f)),
            Ty::Array { elem, .. } => elem.any_int(f),
            Ty::Variant(v) => v.options.iter().any(|(_, t)| t.any_int(f)),
            Ty::Optional { ty, .. } => ty.any_int(f),
            _ => false,
        }
    }

    pub fn for_each_bo(&mut self, f: &mut dyn FnMut(&mut ByteOrder)) {
        match self {
            Ty::Int(i) => f(&mut i.bo),
            Ty::Float { bo, .. } => f(bo),
            Ty::Struct(s) => s.fields.iter_mut().for_each(|(_, t)| t.for_each_bo(f)),
            Ty::Array { elem, .. } => elem.for_each_bo(f),
            Ty::Variant(v) => v.options.iter_mut().for_each(|(_, t)| t.for_each_bo(f)),
            Ty::Optional { ty, .. } => ty.for_each_bo(f),
            _ => {}
        }
    }

    /// The type at an index path (struct member indices / variant option indices / array
    /// element).
    pub fn at_mut(&mut self, path: &[usize]) -> Option<&mut Ty> {
        let Some((&first, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            Ty::Struct(s) => s.fields.get_mut(first)?.1.at_mut(rest),
            Ty::Variant(v) => v.options.get_mut(first)?.1.at_mut(rest),
            Ty::Array { elem, .. } => elem.at_mut(rest),
            Ty::Optional { ty, .. } => ty.at_mut(rest),
            _ => None,
        }
    }

    pub fn at(&self, path: &[usize]) -> Option<&Ty> {
        let Some((&first, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            Ty::Struct(s) => s.fields.get(first)?.1.at(rest),
            Ty::Variant(v) => v.options.get(first)?.1.at(rest),
            Ty::Array { elem, .. } => elem.at(rest),
            Ty::Optional { ty, .. } => ty.at(rest),
            _ => None,
        }
    }
}

/// `v` rounded up to a multiple of `a` (a power of two; 0 and 1 leave `v` as is). Without a
/// branch: it runs several times per event.
#[inline(always)]
pub fn align_up(v: u64, a: u64) -> u64 {
    let m = a.max(1) - 1;
    (v + m) & !m
}

/// A clock class.
#[derive(Clone, Debug)]
pub struct Clock {
    pub name: String,
    pub freq: u64,
    pub offset_s: i64,
    pub offset_cycles: i64,
}

impl Clock {
    /// Nanoseconds from origin of a cycle count, as babeltrace computes it.
    #[inline]
    pub fn to_ns(&self, cycles: u64) -> i64 {
        if self.freq == 1_000_000_000 && cycles < (1 << 62) {
            if let Some(v) = self
                .offset_s
                .checked_mul(1_000_000_000)
                .and_then(|b| b.checked_add(self.offset_cycles))
            {
                if let Some(r) = v.checked_add(cycles as i64) {
                    return r;
                }
            }
        }
        self.to_ns_slow(cycles)
    }

    fn to_ns_slow(&self, cycles: u64) -> i64 {
        let freq = self.freq.max(1);
        let to_ns = |c: i128| -> i128 {
            if freq == 1_000_000_000 {
                c
            } else {
                c * 1_000_000_000 / freq as i128
            }
        };
        // Normalise the offset the way babeltrace does: whole seconds out of the cycles.
        let mut off_s = self.offset_s as i128;
        let mut off_c = self.offset_cycles as i128;
        off_s += off_c.div_euclid(freq as i128);
        off_c = off_c.rem_euclid(freq as i128);
        let ns = off_s * 1_000_000_000 + to_ns(off_c) + to_ns(cycles as i128);
        ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

/// An event record class.
#[derive(Clone, Debug)]
pub struct EventClassDef {
    /// Where the class is declared in the metadata (byte offset), for errors.
    pub meta_offset: u64,
    pub id: u64,
    pub name: String,
    pub context: Ty,
    pub payload: Ty,
}

/// A data stream class.
#[derive(Clone, Debug)]
pub struct StreamClassDef {
    pub meta_offset: u64,
    pub id: u64,
    pub packet_context: Ty,
    pub event_header: Ty,
    pub event_context: Ty,
    pub events: Vec<EventClassDef>,
    pub clock: Option<String>,
}

/// A whole trace class, whatever the metadata's version.
#[derive(Clone, Debug)]
pub struct TraceClass {
    pub bo: ByteOrder,
    pub packet_header: Ty,
    pub streams: Vec<StreamClassDef>,
    pub clocks: Vec<Clock>,
    pub env: Vec<(String, String)>,
    pub nslots: u16,
}

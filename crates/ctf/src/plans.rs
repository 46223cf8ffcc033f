//! Reading plans, compiled once per stream class (event headers) or per event class (its
//! body and fields) from the layouts, for the shapes the per-event loop meets most: LTTng's
//! compact and large event headers read at constant offsets ([`FastHeader`], else a
//! [`HeaderPlan`]), bodies of a fixed size passed over with three align-and-adds
//! ([`FixedBody`]), integers at fixed offsets read directly ([`DirectInt`]), and for every field
//! the way it is read (`VisitOp`, gathered with the rest in a `ClassCode`).

use crate::bits::sign_extend;
use crate::decode::{Cur, DResult};
use crate::layout::{Layout, SkipCode};
use crate::metadata::StreamRt;
use crate::types::*;
use virtflow_trace::error::{DecodeError, IntValue};

/// How to read one event class: its layouts and the shortcuts compiled from them.
#[repr(C)]
pub(crate) struct ClassCode {
    /// The body's skip plan, when its three scopes are fixed: events of this class are then
    /// passed over without walking their fields.
    pub(crate) body: Option<FixedBody>,
    /// For a body that is not fixed: the program passing over all of it, when one can.
    pub(crate) skip_body: Option<SkipCode>,
    /// FieldId → how the field is read: by [`EventSource::visit_fields`], and by the accessors
    /// for the integers and strings at fixed offsets.
    pub(crate) visit: Vec<VisitOp>,
    pub(crate) context: Box<Layout>,
    pub(crate) payload: Box<Layout>,
}

/// How one field is read, compiled with its class.
#[derive(Clone, Copy)]
pub(crate) enum VisitOp {
    /// An integer at a fixed offset, read directly (the accessors read its number; a visit
    /// goes through the general decoder when it is an enumeration or a boolean).
    Direct(DirectInt),
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
    pub(crate) fn new(s: &StreamRt, context: Ty, payload: Ty, fields: &[(u8, u32)]) -> ClassCode {
        let (context, payload) = (Layout::new(context), Layout::new(payload));
        let common = &s.common;
        let body = match (
            FixedScope::of(common),
            FixedScope::of(&context),
            FixedScope::of(&payload),
        ) {
            (Some(a), Some(b), Some(c)) => Some(FixedBody([a, b, c])),
            _ => None,
        };
        let skip_body = match body {
            Some(_) => None,
            None => SkipCode::body([common, &context, &payload]),
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
            let direct = DirectInt::of(lay, scope, i as usize);
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

/// A plain fixed-length integer of an event header.
#[derive(Clone, Debug)]
pub struct HInt {
    pub align: u32,
    pub size: u32,
    pub be: bool,
    pub role: Role,
    pub slot: Option<u16>,
    pub signed: bool,
}

impl HInt {
    fn of(t: &Ty) -> Option<HInt> {
        match t {
            Ty::Int(it) if it.kind != IntKind::Var => Some(HInt {
                align: it.align.max(1),
                size: it.size,
                be: it.bo == ByteOrder::Be,
                role: it.role,
                slot: it.slot,
                signed: it.signed,
            }),
            _ => None,
        }
    }

    #[inline(always)]
    fn read(&self, c: &mut Cur) -> DResult<u64> {
        let pos = align_up(c.pos, self.align as u64);
        let end = pos + self.size as u64;
        if end > c.end {
            return Err(DecodeError::FieldBeyondContent {
                bits: self.size as u64,
            });
        }
        let v = crate::bits::read_fast(c.data, pos, self.size, self.be).ok_or(
            DecodeError::FieldBeyondFile {
                bits: self.size as u64,
            },
        )?;
        c.pos = end;
        Ok(v)
    }
}

/// Event headers made of plain integers and at most one variant (selected by one of them) of
/// structures of plain integers — LTTng's compact and large headers, perf's and barectf's —
/// decoded without the general walk.
#[derive(Clone, Debug)]
pub struct HeaderPlan {
    pub align: u32,
    pub pre: Vec<HInt>,
    /// Index in `pre` of the selector, and the options: (range low, high, integers).
    pub var: Option<(usize, Vec<(i128, i128, Vec<HInt>)>)>,
}

/// What a header gives: the event class id and the raw timestamp with its size in bits.
#[derive(Default, Clone, Copy)]
pub struct HeaderOut {
    pub id: Option<u64>,
    pub ts: Option<(u64, u32)>,
}

impl HeaderPlan {
    pub fn new(ty: &Ty) -> Option<HeaderPlan> {
        let st = ty.as_struct()?;
        let mut pre = Vec::new();
        let mut var = None;
        for (_, f) in &st.fields {
            if var.is_some() {
                return None;
            }
            if let Some(h) = HInt::of(f) {
                pre.push(h);
                continue;
            }
            let Ty::Variant(v) = f else { return None };
            let slot = v.tag.slot()?;
            let sel = pre.iter().position(|h: &HInt| h.slot == Some(slot))?;
            let mut opts = Vec::new();
            for &(lo, hi, oi) in &v.ranges {
                let o = &v.options[oi].1;
                let ints = match o {
                    Ty::Struct(os) => {
                        if os.min_align > 1 && os.fields.is_empty() {
                            return None;
                        }
                        let mut ints = Vec::new();
                        for (_, g) in &os.fields {
                            ints.push(HInt::of(g)?);
                        }
                        // The structure's own alignment applies before its first member.
                        if let Some(first) = ints.first_mut() {
                            first.align = first.align.max(os.min_align);
                        } else if os.min_align > 1 {
                            return None;
                        }
                        ints
                    }
                    other => vec![HInt::of(other)?],
                };
                opts.push((lo, hi, ints));
            }
            var = Some((sel, opts));
        }
        Some(HeaderPlan {
            align: ty.align(),
            pre,
            var,
        })
    }

    #[inline]
    pub fn run(&self, c: &mut Cur, slots: &mut [i128]) -> DResult<HeaderOut> {
        let mut out = HeaderOut::default();
        c.align(self.align)?;
        let mut sel: i128 = 0;
        for (i, h) in self.pre.iter().enumerate() {
            let v = h.read(c)?;
            let sv = if h.signed {
                sign_extend(v, h.size) as i128
            } else {
                v as i128
            };
            if let Some(s) = h.slot {
                slots[s as usize] = sv;
            }
            match h.role {
                Role::EventClassId => out.id = Some(v),
                Role::Timestamp => out.ts = Some((v, h.size)),
                _ => {}
            }
            if let Some((si, _)) = &self.var {
                if *si == i {
                    sel = sv;
                }
            }
        }
        if let Some((_, opts)) = &self.var {
            let Some((_, _, ints)) = opts.iter().find(|(lo, hi, _)| *lo <= sel && sel <= *hi)
            else {
                return Err(DecodeError::SelectorMatchesNoOption {
                    value: IntValue::of(sel),
                });
            };
            for h in ints {
                let v = h.read(c)?;
                if let Some(s) = h.slot {
                    slots[s as usize] = if h.signed {
                        sign_extend(v, h.size) as i128
                    } else {
                        v as i128
                    };
                }
                match h.role {
                    Role::EventClassId => out.id = Some(v),
                    Role::Timestamp => out.ts = Some((v, h.size)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

/// One root scope of an event body whose layout is fixed and holds nothing a later field
/// refers to: skipping it is an alignment and an addition.
#[derive(Clone, Copy, Debug, Default)]
pub struct FixedScope {
    /// Alignment in bits (1 for an empty scope, which does not align).
    pub align: u64,
    /// Size in bits.
    pub size: u64,
}

impl FixedScope {
    /// The scope's skip plan when its layout allows one.
    pub fn of(l: &Layout) -> Option<FixedScope> {
        if l.empty {
            return Some(FixedScope { align: 1, size: 0 });
        }
        let (_, total) = l.fixed.as_ref()?;
        if !l.slot_fields.is_empty() {
            return None;
        }
        Some(FixedScope {
            align: l.align.max(1) as u64,
            size: *total,
        })
    }
}

/// An event body (stream event context, event context, payload) that is skipped without
/// decoding: where each scope starts follows from where the body starts.
#[derive(Clone, Copy, Debug)]
pub struct FixedBody(pub [FixedScope; 3]);

impl FixedBody {
    /// The body's size in bits when no scope needs more than byte alignment: from a byte
    /// boundary, the body then ends that many bits further, whatever its scopes.
    pub fn byte_aligned_size(&self) -> Option<u64> {
        self.0
            .iter()
            .all(|sc| sc.align <= 8 && sc.size % 8 == 0)
            .then(|| self.0.iter().map(|sc| sc.size).sum())
    }

    /// Scope starts and the end of the body starting at bit `pos`.
    #[inline(always)]
    pub fn place(&self, mut pos: u64) -> ([u64; 3], u64) {
        let mut starts = [0u64; 3];
        for (k, sc) in self.0.iter().enumerate() {
            pos = align_up(pos, sc.align);
            starts[k] = pos;
            pos += sc.size;
        }
        (starts, pos)
    }
}

/// A plain fixed-length integer at a constant offset from the start of its scope: read
/// directly by the accessors.
#[derive(Clone, Copy, Debug)]
pub struct DirectInt {
    /// Scope: 0 packet context, 1 stream event context, 2 event context, 3 payload.
    pub scope: u8,
    pub be: bool,
    pub signed: bool,
    pub size: u32,
    /// Bits from the start of the scope.
    pub rel: u64,
    /// A plain number (no enumeration labels, not a boolean): its [`Value`](virtflow_trace::Value) is built directly.
    pub plain: bool,
    /// `size` low bits set.
    pub mask: u64,
    /// Shift left then arithmetic shift right by this to sign-extend (0: unsigned or 64 bits).
    pub sext: u32,
}

impl DirectInt {
    /// Reads the integer of a scope starting at bit `base`, sign-extended when signed.
    #[inline(always)]
    pub fn read(&self, data: &[u8], base: u64) -> Option<u64> {
        let raw = crate::bits::read_masked(data, base + self.rel, self.size, self.mask, self.be)?;
        Some((((raw << self.sext) as i64) >> self.sext) as u64)
    }
}

impl DirectInt {
    /// The direct reader of field `i` of layout `l`, when it is a plain integer at a fixed
    /// offset (booleans and enumerations included: `u64`/`i64` read their integer value).
    pub fn of(l: &Layout, scope: u8, i: usize) -> Option<DirectInt> {
        let (rel, _) = l.fixed.as_ref()?;
        let it = l.plain.get(i)?.as_ref()?;
        if it.size == 0 || it.size > 64 {
            return None;
        }
        Some(DirectInt {
            scope,
            be: it.bo == ByteOrder::Be,
            signed: it.signed,
            size: it.size,
            rel: *rel.get(i)?,
            plain: it.mappings.is_none() && it.kind == IntKind::Plain,
            mask: u64::MAX >> (64 - it.size),
            sext: if it.signed { 64 - it.size } else { 0 },
        })
    }
}

/// An integer of an event header at a constant bit offset from the header's start.
#[derive(Clone, Copy, Debug)]
struct FixedInt {
    rel: u64,
    size: u32,
    be: bool,
    /// `size` low bits set.
    mask: u64,
}

impl FixedInt {
    #[inline(always)]
    fn read(&self, data: &[u8], start: u64) -> Option<u64> {
        crate::bits::read_masked(data, start + self.rel, self.size, self.mask, self.be)
    }
}

/// The integers with a role in one path through a header, and where that path ends.
#[derive(Clone, Copy, Debug, Default)]
struct HeaderPath {
    id: Option<FixedInt>,
    ts: Option<FixedInt>,
    end: u64,
}

/// A [`HeaderPlan`] whose every field lies at a constant offset from the header's start — true
/// of LTTng's compact and large headers, whose alignment is that of their most aligned member:
/// the header is read with a few direct loads and one bounds check.
#[derive(Clone, Debug)]
pub struct FastHeader {
    align: u64,
    /// The fields before the variant (all of them when there is none).
    pre: HeaderPath,
    /// The variant's selector, the slot it is kept in, and the options by value range.
    var: Option<(FixedInt, Option<u16>, Vec<(u64, u64, HeaderPath)>)>,
}

impl FastHeader {
    /// Compiles `plan` when its shape allows: unsigned integers, no slot but the selector's.
    pub fn new(plan: &HeaderPlan) -> Option<FastHeader> {
        let align = plan.align.max(1) as u64;
        let place = |ints: &[HInt], mut rel: u64, path: &mut HeaderPath| -> Option<u64> {
            let mut rels = Vec::new();
            for h in ints {
                if h.align as u64 > align || h.signed || h.size == 0 || h.size > 64 {
                    return None;
                }
                rel = align_up(rel, h.align as u64);
                let f = FixedInt {
                    rel,
                    size: h.size,
                    be: h.be,
                    mask: u64::MAX >> (64 - h.size),
                };
                match h.role {
                    Role::EventClassId => path.id = Some(f),
                    Role::Timestamp => path.ts = Some(f),
                    Role::None => {}
                    _ => return None,
                }
                rels.push(f);
                rel += h.size as u64;
            }
            path.end = rel;
            Some(rel)
        };
        let mut pre = HeaderPath::default();
        let sel_index = plan.var.as_ref().map(|(i, _)| *i);
        for (i, h) in plan.pre.iter().enumerate() {
            if h.slot.is_some() && Some(i) != sel_index {
                return None;
            }
        }
        let pre_end = place(&plan.pre, 0, &mut pre)?;
        let var = match &plan.var {
            None => None,
            Some((si, opts)) => {
                let sh = &plan.pre[*si];
                let mut rel = 0;
                for h in &plan.pre[..*si] {
                    rel = align_up(rel, h.align as u64) + h.size as u64;
                }
                if sh.size == 0 || sh.size > 64 {
                    return None;
                }
                let sel = FixedInt {
                    rel: align_up(rel, sh.align as u64),
                    size: sh.size,
                    be: sh.be,
                    mask: u64::MAX >> (64 - sh.size),
                };
                let mut out = Vec::new();
                for (lo, hi, ints) in opts {
                    if ints.iter().any(|h| h.slot.is_some()) || *hi < 0 {
                        return None;
                    }
                    let mut path = pre;
                    place(ints, pre_end, &mut path)?;
                    out.push((
                        (*lo).max(0) as u64,
                        (*hi).min(u64::MAX as i128) as u64,
                        path,
                    ));
                }
                Some((sel, sh.slot, out))
            }
        };
        Some(FastHeader { align, pre, var })
    }

    /// Reads the header at bit `pos`: the class id, the raw timestamp, and where the header
    /// ends. `None` when anything is off (the general plan then says what).
    #[inline(always)]
    pub fn run(
        &self,
        data: &[u8],
        pos: u64,
        content_end: u64,
        slots: &mut [i128],
    ) -> Option<(HeaderOut, u64)> {
        let start = align_up(pos, self.align);
        let path = match &self.var {
            None => &self.pre,
            Some((sel, slot, opts)) => {
                let v = sel.read(data, start)?;
                if let Some(s) = slot {
                    *slots.get_mut(*s as usize)? = v as i128;
                }
                &opts.iter().find(|(lo, hi, _)| *lo <= v && v <= *hi)?.2
            }
        };
        let end = start + path.end;
        if end > content_end {
            return None;
        }
        let mut out = HeaderOut::default();
        if let Some(f) = &path.id {
            out.id = Some(f.read(data, start)?);
        }
        if let Some(f) = &path.ts {
            out.ts = Some((f.read(data, start)?, f.size));
        }
        Some((out, end))
    }
}

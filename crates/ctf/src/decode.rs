//! Decoding of fields from mapped stream bytes: skipping (to find where fields start and where
//! the event ends, without building values) and full value construction.

use crate::bits::{read_bits, read_sleb, read_uleb, sign_extend};
use crate::types::*;
use std::borrow::Cow;
use virtflow_trace::FieldVisitor;

/// A cursor over the bits of one packet's content.
pub struct Cur<'a> {
    pub data: &'a [u8],
    /// Absolute bit position in `data`.
    pub pos: u64,
    /// Absolute bit position where the readable content ends.
    pub end: u64,
}

pub type DResult<T> = Result<T, String>;

#[cold]
fn past_end(bits: u64) -> String {
    format!("field of {bits} bits goes past the end of the packet content")
}

impl<'a> Cur<'a> {
    #[inline]
    pub fn align(&mut self, a: u32) -> DResult<()> {
        self.pos = align_up(self.pos, a as u64);
        if self.pos > self.end {
            return Err("alignment padding goes past the end of the packet content".into());
        }
        Ok(())
    }

    #[inline(always)]
    fn need(&self, bits: u64) -> DResult<()> {
        match self.pos.checked_add(bits) {
            Some(e) if e <= self.end => Ok(()),
            _ => Err(past_end(bits)),
        }
    }

    /// Reads a fixed-length integer (after aligning).
    #[inline]
    pub fn int(&mut self, it: &IntTy) -> DResult<u64> {
        if it.kind == IntKind::Var {
            self.align(8)?;
            let byte = (self.pos / 8) as usize;
            let lim = ((self.end / 8) as usize).min(self.data.len());
            let d = &self.data[..lim];
            let (v, n) = if it.signed {
                read_sleb(d, byte).map(|(v, n)| (v as u64, n))
            } else {
                read_uleb(d, byte)
            }
            .ok_or("bad or truncated LEB128 integer")?;
            self.pos += n as u64 * 8;
            return Ok(v);
        }
        self.align(it.align)?;
        self.need(it.size as u64)?;
        let v = crate::bits::read_fast(self.data, self.pos, it.size, it.bo == ByteOrder::Be)
            .ok_or("integer goes past the end of the file")?;
        self.pos += it.size as u64;
        Ok(v)
    }

    pub fn nul_string(&mut self) -> DResult<&'a [u8]> {
        self.align(8)?;
        let start = (self.pos / 8) as usize;
        let lim = ((self.end / 8) as usize).min(self.data.len());
        if start > lim {
            return Err("string starts past the end of the packet content".into());
        }
        let rest = &self.data[start..lim];
        match first_nul(rest) {
            Some(n) => {
                self.pos += (n as u64 + 1) * 8;
                Ok(&rest[..n])
            }
            None => Err("unterminated string".into()),
        }
    }

    pub fn bytes(&mut self, n: u64) -> DResult<&'a [u8]> {
        self.align(8)?;
        let bits = n.checked_mul(8).ok_or("length overflows")?;
        self.need(bits)?;
        let start = (self.pos / 8) as usize;
        self.pos += bits;
        self.data
            .get(start..start + n as usize)
            .ok_or_else(|| "bytes past the end of the file".into())
    }
}

/// Value of an integer as stored in a slot (sign-extended when signed).
#[inline]
pub fn slot_value(it: &IntTy, raw: u64) -> i128 {
    if it.signed {
        if it.kind == IntKind::Var {
            raw as i64 as i128
        } else {
            sign_extend(raw, it.size) as i128
        }
    } else {
        raw as i128
    }
}

fn len_of(len: &Len, slots: &[i128]) -> DResult<u64> {
    match len {
        Len::Static(n) => Ok(*n),
        Len::Dyn(Loc::Slot(s)) => {
            let v = *slots.get(*s as usize).ok_or("bad slot")?;
            u64::try_from(v).map_err(|_| format!("negative length {v}"))
        }
        Len::Dyn(Loc::Path(p)) => Err(format!("unresolved length `{}`", p.parts.join("."))),
    }
}

fn variant_option(v: &VariantTy, slots: &[i128]) -> DResult<usize> {
    let s = v.tag.slot().ok_or("unresolved variant selector")?;
    let val = *slots.get(s as usize).ok_or("bad slot")?;
    v.ranges
        .iter()
        .find(|(lo, hi, _)| *lo <= val && val <= *hi)
        .map(|r| r.2)
        .ok_or_else(|| format!("variant selector value {val} selects no option"))
}

fn optional_enabled(
    sel: &Loc,
    ranges: &Option<Vec<(i128, i128)>>,
    slots: &[i128],
) -> DResult<bool> {
    let s = sel.slot().ok_or("unresolved optional selector")?;
    let val = *slots.get(s as usize).ok_or("bad slot")?;
    Ok(match ranges {
        None => val != 0,
        Some(r) => r.iter().any(|(lo, hi)| *lo <= val && val <= *hi),
    })
}

/// Walks over a field, storing referenced integers into `slots` and reporting integers with a
/// role to `hook`.
pub fn skip<F: FnMut(&IntTy, u64)>(
    ty: &Ty,
    c: &mut Cur,
    slots: &mut [i128],
    hook: &mut F,
    depth: u32,
) -> DResult<()> {
    if depth > 64 {
        return Err("types nested too deeply".into());
    }
    match ty {
        // Nothing needs the value: pass over it.
        Ty::Int(it) if it.slot.is_none() && it.role == Role::None && it.kind != IntKind::Var => {
            c.align(it.align)?;
            c.need(it.size as u64)?;
            c.pos += it.size as u64;
        }
        Ty::Int(it) => {
            let v = c.int(it)?;
            if let Some(s) = it.slot {
                slots[s as usize] = slot_value(it, v);
            }
            if it.role != Role::None {
                hook(it, v);
            }
        }
        Ty::Float { size, align, .. } => {
            c.align(*align)?;
            c.need(*size as u64)?;
            c.pos += *size as u64;
        }
        Ty::Str(len, nul) => {
            if *nul {
                c.nul_string()?;
            } else {
                let n = len_of(len, slots)?;
                c.bytes(n)?;
            }
        }
        Ty::Blob(len) => {
            let n = len_of(len, slots)?;
            c.bytes(n)?;
        }
        Ty::Struct(s) => {
            c.align(ty.align())?;
            for (_, f) in &s.fields {
                skip(f, c, slots, hook, depth + 1)?;
            }
        }
        Ty::Array { elem, len, .. } => {
            let n = len_of(len, slots)?;
            c.align(ty.align())?;
            if n == 0 {
                return Ok(());
            }
            if let (Some(es), Ty::Int(it)) = (elem.fixed_size(), &**elem) {
                if it.slot.is_none() && it.role == Role::None {
                    let stride = align_up(es, it.align as u64);
                    let total = stride
                        .checked_mul(n - 1)
                        .and_then(|x| x.checked_add(es))
                        .ok_or("array too large")?;
                    c.need(total)?;
                    c.pos += total;
                    return Ok(());
                }
            }
            if n > c.end.saturating_sub(c.pos).saturating_add(1) {
                return Err(format!(
                    "array of {n} elements is longer than the packet content"
                ));
            }
            for k in 0..n {
                let before = c.pos;
                skip(elem, c, slots, hook, depth + 1)?;
                if c.pos > c.end {
                    return Err("array goes past the end of the packet content".into());
                }
                if k == 0 && c.pos == before && elem.fixed_size() == Some(0) {
                    break; // elements of size zero
                }
            }
        }
        Ty::Variant(v) => {
            let o = variant_option(v, slots)?;
            skip(&v.options[o].1, c, slots, hook, depth + 1)?;
        }
        Ty::Optional { sel, ranges, ty } => {
            if optional_enabled(sel, ranges, slots)? {
                skip(ty, c, slots, hook, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// A fixed-length string's bytes: up to its first NUL, or all of them.
#[inline]
pub fn until_nul(b: &[u8]) -> &[u8] {
    &b[..first_nul(b).unwrap_or(b.len())]
}

/// Where the first NUL byte is. Eight bytes at a time: event strings (a `comm`, a file name)
/// are short, and a byte-by-byte search costs more than the rest of their decoding.
#[inline]
pub fn first_nul(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for w in words.by_ref() {
        let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
        // The lowest high bit set marks the first zero byte (borrows only reach higher bytes).
        let zero = w.wrapping_sub(ONES) & !w & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&x| x == 0)
        .map(|i| at + i)
}

/// A string field's text: borrowed when it is UTF-8 (the strict validator is the faster one),
/// else lossily converted.
#[inline]
pub fn bytes_to_str(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// Pushes an integer's value into a visitor: a boolean, or a number preceded by its
/// enumeration labels when it has mappings.
#[inline]
pub fn visit_int(it: &IntTy, raw: u64, to: &mut dyn FieldVisitor) {
    if it.kind == IntKind::Bool {
        return to.bool(raw != 0);
    }
    if let Some(maps) = &it.mappings {
        let v = slot_value(it, raw);
        to.enumeration(
            &mut maps
                .iter()
                .filter(|m| m.ranges.iter().any(|(lo, hi)| *lo <= v && v <= *hi))
                .map(|m| m.name.as_str()),
        );
    }
    if !it.signed {
        to.uint(raw)
    } else if it.kind == IntKind::Var {
        to.int(raw as i64)
    } else {
        to.int(sign_extend(raw, it.size))
    }
}

/// Decodes a field of any type at the cursor into a visitor: the general decoder, under
/// [`crate::CtfSource`]'s `value`, `for_each_value` and `visit_fields`.
pub fn visit(
    ty: &Ty,
    c: &mut Cur,
    slots: &mut [i128],
    depth: u32,
    to: &mut dyn FieldVisitor,
) -> DResult<()> {
    if depth > 64 {
        return Err("types nested too deeply".into());
    }
    match ty {
        Ty::Int(it) => {
            let v = c.int(it)?;
            if let Some(s) = it.slot {
                slots[s as usize] = slot_value(it, v);
            }
            visit_int(it, v, to);
        }
        Ty::Float { size, align, bo } => {
            c.align(*align)?;
            c.need(*size as u64)?;
            let raw = read_bits(c.data, c.pos, *size, *bo == ByteOrder::Be)
                .ok_or("float past the end")?;
            c.pos += *size as u64;
            to.float(if *size == 32 {
                f32::from_bits(raw as u32) as f64
            } else {
                f64::from_bits(raw)
            });
        }
        Ty::Str(len, nul) => {
            let b = if *nul {
                c.nul_string()?
            } else {
                let n = len_of(len, slots)?;
                until_nul(c.bytes(n)?)
            };
            to.str(b);
        }
        Ty::Blob(len) => {
            let n = len_of(len, slots)?;
            to.bytes(c.bytes(n)?);
        }
        Ty::Struct(s) => {
            c.align(ty.align())?;
            to.begin_struct();
            for (n, f) in &s.fields {
                to.member(n);
                visit(f, c, slots, depth + 1, to)?;
            }
            to.end_struct();
        }
        Ty::Array { elem, len, .. } => {
            let n = len_of(len, slots)?;
            c.align(ty.align())?;
            // Bound the work by what the packet can hold.
            let min_bits = elem.fixed_size().unwrap_or(0).max(1);
            if n.saturating_mul(min_bits) > c.end.saturating_sub(c.pos).saturating_add(1)
                && (elem.fixed_size().is_some() || n > 1 << 20)
            {
                return Err(format!(
                    "array of {n} elements goes past the end of the packet content"
                ));
            }
            to.begin_array(n);
            for _ in 0..n {
                visit(elem, c, slots, depth + 1, to)?;
                if c.pos > c.end {
                    return Err("array goes past the end of the packet content".into());
                }
            }
            to.end_array();
        }
        Ty::Variant(v) => {
            let o = variant_option(v, slots)?;
            let (n, t) = &v.options[o];
            to.variant(n);
            visit(t, c, slots, depth + 1, to)?;
        }
        Ty::Optional { sel, ranges, ty } => {
            if optional_enabled(sel, ranges, slots)? {
                visit(ty, c, slots, depth + 1, to)?;
            } else {
                to.none();
            }
        }
    }
    Ok(())
}

/// The compiled layout of one root scope (a structure): where its top-level fields start.
#[derive(Debug)]
pub struct Layout {
    pub ty: Ty,
    pub align: u32,
    /// Relative bit offsets of the fields and the total size, when they do not depend on data.
    pub fixed: Option<(Vec<u64>, u64)>,
    /// Fields of a fixed layout whose value a later field refers to (read after skipping).
    pub slot_fields: Vec<usize>,
    /// Plain fixed-length integer fields: direct reads.
    pub plain: Vec<Option<IntTy>>,
    /// How to pass over each field when the layout is not fixed.
    pub ops: Vec<SkipOp>,
    /// The skip programs of the fields whose [`SkipOp`] is [`SkipOp::Code`].
    pub code: SkipCode,
    pub empty: bool,
}

/// How [`Layout::walk`] passes over one field of a layout that is not fixed.
#[derive(Clone, Copy, Debug)]
pub enum SkipOp {
    /// A fixed-size scalar nothing refers to (integer, float, fixed string or BLOB): align and
    /// add (alignment and size in bits).
    Fixed { align: u32, size: u64 },
    /// A NUL-terminated string.
    NulStr,
    /// A compiled skip program: `code.ops[start..end]`.
    Code { start: u32, end: u32 },
}

impl Layout {
    pub fn new(ty: Ty) -> Layout {
        let st = ty.as_struct().expect("root scopes are structures");
        let align = ty.align();
        let fixed = ty.fixed_size().map(|total| {
            let mut off = 0u64;
            let mut rel = Vec::with_capacity(st.fields.len());
            for (_, f) in &st.fields {
                off = align_up(off, f.align() as u64);
                rel.push(off);
                off += f.fixed_size().unwrap();
            }
            (rel, total)
        });
        let mut slot_fields = Vec::new();
        let mut plain = Vec::new();
        let mut ops = Vec::new();
        let mut code = SkipCode::default();
        for (i, (_, f)) in st.fields.iter().enumerate() {
            let scalar = match f {
                Ty::Int(it) => it.slot.is_none() && it.role == Role::None,
                Ty::Float { .. } => true,
                Ty::Str(Len::Static(_), false) | Ty::Blob(Len::Static(_)) => true,
                _ => false,
            };
            ops.push(match (f, scalar, f.fixed_size()) {
                (Ty::Str(_, true), _, _) => SkipOp::NulStr,
                (_, true, Some(size)) => SkipOp::Fixed {
                    align: f.align(),
                    size,
                },
                _ => {
                    let start = code.ops.len() as u32;
                    code.compile_field(f);
                    SkipOp::Code {
                        start,
                        end: code.ops.len() as u32,
                    }
                }
            });
            if f.any_int(&|it| it.slot.is_some() || it.role != Role::None) {
                slot_fields.push(i);
            }
            plain.push(match f {
                Ty::Int(it) if it.kind != IntKind::Var => Some(it.clone()),
                _ => None,
            });
        }
        let empty = st.fields.is_empty();
        Layout {
            align,
            fixed,
            slot_fields,
            plain,
            ops,
            code,
            empty,
            ty,
        }
    }

    pub fn fields(&self) -> &[(String, Ty)] {
        &self.ty.as_struct().unwrap().fields
    }

    /// Walks the scope at the cursor: returns its start; fills `offs` with the field offsets
    /// when the layout is not fixed.
    #[inline]
    pub fn walk<F: FnMut(&IntTy, u64)>(
        &self,
        c: &mut Cur,
        slots: &mut [i128],
        offs: &mut Vec<u64>,
        hook: &mut F,
    ) -> DResult<u64> {
        if self.empty {
            return Ok(c.pos);
        }
        c.align(self.align)?;
        let start = c.pos;
        if let Some((rel, total)) = &self.fixed {
            c.need(*total)?;
            c.pos += total;
            if !self.slot_fields.is_empty() {
                let end = c.pos;
                for &i in &self.slot_fields {
                    c.pos = start + rel[i];
                    skip(&self.fields()[i].1, c, slots, hook, 0)?;
                }
                c.pos = end;
            }
            return Ok(start);
        }
        offs.clear();
        for (op, (_, f)) in self.ops.iter().zip(self.fields()) {
            match *op {
                SkipOp::Fixed { align, size } => {
                    c.align(align)?;
                    offs.push(c.pos);
                    c.need(size)?;
                    c.pos += size;
                }
                SkipOp::NulStr => {
                    c.align(8)?;
                    offs.push(c.pos);
                    c.nul_string()?;
                }
                SkipOp::Code { start, end } => {
                    c.align(f.align())?;
                    offs.push(c.pos);
                    self.code
                        .run(start as usize, end as usize, c, slots, hook)?;
                }
            }
        }
        Ok(start)
    }

    /// Bit offset of field `i` given the scope start and the walked offsets.
    #[inline]
    pub fn offset(&self, i: usize, start: u64, offs: &[u64]) -> Option<u64> {
        match &self.fixed {
            Some((rel, _)) => rel.get(i).map(|r| start + r),
            None => offs.get(i).copied(),
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
            return Err("event header goes past the end of the packet content".into());
        }
        let v = crate::bits::read_fast(c.data, pos, self.size, self.be)
            .ok_or("event header past the end of the file")?;
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
                return Err(format!("variant selector value {sel} selects no option"));
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

/// One step of a compiled skip program (see [`SkipCode`]).
#[derive(Clone, Debug)]
pub enum Op {
    /// Align to `align` bits, then pass `size` bits. Consecutive fields whose offsets from the
    /// first one's aligned start are constant are merged into one.
    Pass { align: u32, size: u64 },
    /// A fixed-length integer a later field refers to: read and kept in `slot`.
    Keep {
        align: u32,
        size: u32,
        be: bool,
        signed: bool,
        slot: u16,
    },
    /// A NUL-terminated string.
    NulStr,
    /// A string or BLOB whose length in bytes is kept in `slot`.
    DynBytes { slot: u16 },
    /// A sequence of fixed-length integers nothing refers to, its length kept in `slot`:
    /// elements of `elem` bits, `stride` bits apart.
    DynArray {
        slot: u16,
        align: u32,
        elem: u64,
        stride: u64,
    },
    /// A variant: the option whose selector range holds the value kept in `slot` continues at
    /// its program counter.
    Select {
        slot: u16,
        table: Box<[(i128, i128, u32)]>,
    },
    /// Continue at this program counter.
    Jump(u32),
    /// Anything else (optionals, variable-length integers, arrays of compounds, integers with
    /// a role): the general [`skip`] of `tys[i]`.
    General(u32),
}

/// Skip programs: the variable-size fields of a layout (strings, sequences, variants, the
/// structures holding them) compiled once to a flat list of steps, so that passing over them
/// is a loop over a few operations instead of a recursive walk over their type tree. What the
/// steps accept and reject is what [`skip`] accepts and rejects.
#[derive(Clone, Debug, Default)]
pub struct SkipCode {
    pub ops: Vec<Op>,
    pub tys: Vec<Ty>,
    /// Where the program being compiled starts: nothing is merged into the steps before.
    floor: usize,
}

impl SkipCode {
    /// Appends the program of one field, run on its own (see [`SkipOp::Code`]).
    pub fn compile_field(&mut self, ty: &Ty) {
        self.floor = self.ops.len();
        self.compile(ty);
    }

    /// The program passing over a whole event body — stream event context, context and
    /// payload, each aligned as [`Layout::walk`] aligns it — when nothing in it needs the
    /// general walk: how events of classes nobody reads are passed over.
    pub fn body(scopes: [&Layout; 3]) -> Option<SkipCode> {
        let mut code = SkipCode::default();
        for l in scopes {
            if l.empty {
                continue;
            }
            code.pass(l.align.max(1), 0);
            for (_, f) in l.fields() {
                code.compile(f);
            }
        }
        let general = code.ops.iter().any(|o| matches!(o, Op::General(_)));
        (!general).then_some(code)
    }

    /// Appends the program of `ty`.
    fn compile(&mut self, ty: &Ty) {
        let referenced = |t: &Ty| t.any_int(&|it| it.slot.is_some() || it.role != Role::None);
        match ty {
            Ty::Int(it) if it.role == Role::None && it.kind != IntKind::Var => match it.slot {
                None => self.pass(it.align.max(1), it.size as u64),
                Some(slot) if (1..=64).contains(&it.size) => self.ops.push(Op::Keep {
                    align: it.align.max(1),
                    size: it.size,
                    be: it.bo == ByteOrder::Be,
                    signed: it.signed,
                    slot,
                }),
                Some(_) => self.general(ty),
            },
            Ty::Float { size, align, .. } => self.pass((*align).max(1), *size as u64),
            Ty::Str(_, true) => self.ops.push(Op::NulStr),
            Ty::Str(Len::Static(_), false) | Ty::Blob(Len::Static(_)) => match ty.fixed_size() {
                Some(size) => self.pass(8, size),
                None => self.general(ty),
            },
            Ty::Str(Len::Dyn(Loc::Slot(slot)), false) | Ty::Blob(Len::Dyn(Loc::Slot(slot))) => {
                self.ops.push(Op::DynBytes { slot: *slot })
            }
            Ty::Struct(st) => {
                self.pass(ty.align(), 0);
                for (_, f) in &st.fields {
                    self.compile(f);
                }
            }
            Ty::Array { elem, len, .. } => match (len, ty.fixed_size(), &**elem) {
                (Len::Static(_), Some(size), _) if !referenced(ty) => self.pass(ty.align(), size),
                (Len::Dyn(Loc::Slot(slot)), _, Ty::Int(it))
                    if it.slot.is_none()
                        && it.role == Role::None
                        && it.kind != IntKind::Var
                        && it.size > 0 =>
                {
                    let elem = it.size as u64;
                    self.ops.push(Op::DynArray {
                        slot: *slot,
                        align: ty.align(),
                        elem,
                        stride: align_up(elem, it.align.max(1) as u64),
                    })
                }
                _ => self.general(ty),
            },
            Ty::Variant(v) if v.tag.slot().is_some() => {
                let select = self.ops.len();
                self.ops.push(Op::Jump(0)); // replaced by the selection below
                let mut starts = Vec::with_capacity(v.options.len());
                let mut exits = Vec::with_capacity(v.options.len());
                for (_, t) in &v.options {
                    starts.push(self.ops.len() as u32);
                    self.compile(t);
                    exits.push(self.ops.len());
                    // Always a jump, even from the last option: the step after the variant is
                    // a jump target, so nothing may be merged into it (see `pass`).
                    self.ops.push(Op::Jump(0));
                }
                let end = self.ops.len() as u32;
                for e in exits {
                    self.ops[e] = Op::Jump(end);
                }
                self.ops[select] = Op::Select {
                    slot: v.tag.slot().unwrap_or(0),
                    table: v
                        .ranges
                        .iter()
                        .map(|&(lo, hi, o)| (lo, hi, starts[o]))
                        .collect(),
                };
            }
            _ => self.general(ty),
        }
    }

    fn general(&mut self, ty: &Ty) {
        self.ops.push(Op::General(self.tys.len() as u32));
        self.tys.push(ty.clone());
    }

    /// Appends "align, then pass `size` bits", merged into the previous step when that is a
    /// [`Op::Pass`] at least as aligned: the padding between them is then a constant. Jump
    /// targets always follow a [`Op::Select`] or [`Op::Jump`], so no target is merged away.
    fn pass(&mut self, align: u32, size: u64) {
        let prev = if self.ops.len() > self.floor {
            self.ops.last_mut()
        } else {
            None
        };
        if let Some(Op::Pass { align: a, size: s }) = prev {
            if align <= 1 {
                *s += size;
                return;
            }
            if *a >= align && *a % align == 0 {
                *s = align_up(*s, align as u64) + size;
                return;
            }
        }
        if align <= 1 && size == 0 {
            return;
        }
        self.ops.push(Op::Pass { align, size });
    }

    /// Runs `ops[start..end]` at the cursor.
    #[inline]
    pub fn run<F: FnMut(&IntTy, u64)>(
        &self,
        start: usize,
        end: usize,
        c: &mut Cur,
        slots: &mut [i128],
        hook: &mut F,
    ) -> DResult<()> {
        let len_in = |slots: &[i128], slot: u16| -> DResult<u64> {
            let v = *slots.get(slot as usize).ok_or("bad slot")?;
            u64::try_from(v).map_err(|_| format!("negative length {v}"))
        };
        let mut pc = start;
        while pc < end {
            match &self.ops[pc] {
                Op::Pass { align, size } => {
                    c.align(*align)?;
                    c.need(*size)?;
                    c.pos += size;
                }
                Op::Keep {
                    align,
                    size,
                    be,
                    signed,
                    slot,
                } => {
                    c.align(*align)?;
                    c.need(*size as u64)?;
                    let v = crate::bits::read_fast(c.data, c.pos, *size, *be)
                        .ok_or("integer goes past the end of the file")?;
                    c.pos += *size as u64;
                    *slots.get_mut(*slot as usize).ok_or("bad slot")? = if *signed {
                        sign_extend(v, *size) as i128
                    } else {
                        v as i128
                    };
                }
                Op::NulStr => {
                    c.nul_string()?;
                }
                Op::DynBytes { slot } => {
                    let n = len_in(slots, *slot)?;
                    c.bytes(n)?;
                }
                Op::DynArray {
                    slot,
                    align,
                    elem,
                    stride,
                } => {
                    let n = len_in(slots, *slot)?;
                    c.align(*align)?;
                    if n > 0 {
                        let total = stride
                            .checked_mul(n - 1)
                            .and_then(|x| x.checked_add(*elem))
                            .ok_or("array too large")?;
                        c.need(total)?;
                        c.pos += total;
                    }
                }
                Op::Select { slot, table } => {
                    let val = *slots.get(*slot as usize).ok_or("bad slot")?;
                    match table.iter().find(|(lo, hi, _)| *lo <= val && val <= *hi) {
                        Some(&(_, _, to)) => {
                            pc = to as usize;
                            continue;
                        }
                        None => {
                            return Err(format!("variant selector value {val} selects no option"))
                        }
                    }
                }
                Op::Jump(to) => {
                    pc = *to as usize;
                    continue;
                }
                Op::General(i) => skip(&self.tys[*i as usize], c, slots, hook, 0)?,
            }
            pc += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::first_nul;

    #[test]
    fn first_nul_agrees_with_a_byte_by_byte_search() {
        // Every length up to 40, a NUL at every place (or none), with bytes around it that
        // tempt the word-at-a-time test: 0x01 and 0x80 next to the zero, 0xff elsewhere.
        for len in 0..40 {
            for nul in 0..=len {
                for fill in [0x01u8, 0x80, 0xff, b'a'] {
                    let mut b = vec![fill; len];
                    if nul < len {
                        b[nul] = 0;
                        if nul + 1 < len {
                            b[nul + 1] = 0x01;
                        }
                    }
                    assert_eq!(
                        first_nul(&b),
                        b.iter().position(|&x| x == 0),
                        "len {len} nul {nul} fill {fill}"
                    );
                }
            }
        }
    }
}

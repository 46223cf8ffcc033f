//! The general decoder, over the bits of a packet's content ([`Cur`]): [`skip`] walks a field
//! of any type (to find where fields start and where the event ends, without building values,
//! keeping the values later fields refer to), [`visit`] pushes its value into a
//! [`FieldVisitor`]. The compiled layouts and plans ([`crate::layout`], [`crate::plans`]) take
//! the common shapes faster and fall back on these.

use crate::bits::{read_bits, read_sleb, read_uleb, sign_extend};
use crate::types::*;
use std::borrow::Cow;
use virtflow_trace::error::{DecodeError, IntValue};
use virtflow_trace::FieldVisitor;

/// A cursor over the bits of one packet's content.
pub struct Cur<'a> {
    pub data: &'a [u8],
    /// Absolute bit position in `data`.
    pub pos: u64,
    /// Absolute bit position where the readable content ends.
    pub end: u64,
}

pub type DResult<T> = Result<T, DecodeError>;

#[cold]
fn past_end(bits: u64) -> DecodeError {
    DecodeError::FieldBeyondContent { bits }
}

/// A length read from a slot: negative ones are errors.
#[inline]
pub(crate) fn length(v: i128) -> DResult<u64> {
    u64::try_from(v).map_err(|_| DecodeError::NegativeLength {
        length: i64::try_from(v).unwrap_or(i64::MIN),
    })
}

impl<'a> Cur<'a> {
    #[inline]
    pub fn align(&mut self, a: u32) -> DResult<()> {
        self.pos = align_up(self.pos, a as u64);
        if self.pos > self.end {
            return Err(DecodeError::PaddingBeyondContent);
        }
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn need(&self, bits: u64) -> DResult<()> {
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
            .ok_or(DecodeError::BadLeb128)?;
            self.pos += n as u64 * 8;
            return Ok(v);
        }
        self.align(it.align)?;
        self.need(it.size as u64)?;
        let v = crate::bits::read_fast(self.data, self.pos, it.size, it.bo == ByteOrder::Be)
            .ok_or(DecodeError::FieldBeyondFile {
                bits: it.size as u64,
            })?;
        self.pos += it.size as u64;
        Ok(v)
    }

    pub fn nul_string(&mut self) -> DResult<&'a [u8]> {
        self.align(8)?;
        let start = (self.pos / 8) as usize;
        let lim = ((self.end / 8) as usize).min(self.data.len());
        if start > lim {
            return Err(DecodeError::StringBeyondContent);
        }
        let rest = &self.data[start..lim];
        match first_nul(rest) {
            Some(n) => {
                self.pos += (n as u64 + 1) * 8;
                Ok(&rest[..n])
            }
            None => Err(DecodeError::UnterminatedString),
        }
    }

    pub fn bytes(&mut self, n: u64) -> DResult<&'a [u8]> {
        self.align(8)?;
        let bits = n
            .checked_mul(8)
            .ok_or(DecodeError::LengthTooLarge { length: n })?;
        self.need(bits)?;
        let start = (self.pos / 8) as usize;
        self.pos += bits;
        self.data
            .get(start..start + n as usize)
            .ok_or(DecodeError::FieldBeyondFile { bits })
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
        Len::Dyn(Loc::Slot(s)) => length(
            *slots
                .get(*s as usize)
                .ok_or(DecodeError::UnresolvedLocation)?,
        ),
        Len::Dyn(Loc::Path(_)) => Err(DecodeError::UnresolvedLocation),
    }
}

fn variant_option(v: &VariantTy, slots: &[i128]) -> DResult<usize> {
    let s = v.tag.slot().ok_or(DecodeError::UnresolvedLocation)?;
    let val = *slots
        .get(s as usize)
        .ok_or(DecodeError::UnresolvedLocation)?;
    v.ranges
        .iter()
        .find(|(lo, hi, _)| *lo <= val && val <= *hi)
        .map(|r| r.2)
        .ok_or(DecodeError::SelectorMatchesNoOption {
            value: IntValue::of(val),
        })
}

fn optional_enabled(
    sel: &Loc,
    ranges: &Option<Vec<(i128, i128)>>,
    slots: &[i128],
) -> DResult<bool> {
    let s = sel.slot().ok_or(DecodeError::UnresolvedLocation)?;
    let val = *slots
        .get(s as usize)
        .ok_or(DecodeError::UnresolvedLocation)?;
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
        return Err(DecodeError::NestedTooDeeply);
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
                        .ok_or(DecodeError::LengthTooLarge { length: n })?;
                    c.need(total)?;
                    c.pos += total;
                    return Ok(());
                }
            }
            if n > c.end.saturating_sub(c.pos).saturating_add(1) {
                return Err(DecodeError::ArrayBeyondContent { elements: n });
            }
            for k in 0..n {
                let before = c.pos;
                skip(elem, c, slots, hook, depth + 1)?;
                if c.pos > c.end {
                    return Err(DecodeError::ArrayBeyondContent { elements: n });
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

/// Moves the cursor over a member nobody wants when it can without decoding it: a number or
/// an array of numbers of fixed size that no later length or variant refers to. A number
/// something refers to is read into its slot, unvisited. Returns false (the cursor
/// unmoved) for anything else, which the caller visits.
fn step_over(ty: &Ty, c: &mut Cur, slots: &mut [i128]) -> DResult<bool> {
    let bits = match ty {
        Ty::Int(it) if it.slot.is_some() => {
            let v = c.int(it)?;
            if let Some(s) = it.slot {
                slots[s as usize] = slot_value(it, v);
            }
            return Ok(true);
        }
        Ty::Int(it) if it.kind == IntKind::Var => return Ok(false),
        Ty::Int(it) => it.size as u64,
        Ty::Float { size, .. } => *size as u64,
        Ty::Array { elem, .. } if matches!(&**elem, Ty::Int(e) if e.slot.is_none()) => {
            match ty.fixed_size() {
                Some(bits) => bits,
                None => return Ok(false),
            }
        }
        _ => return Ok(false),
    };
    c.align(ty.align())?;
    c.need(bits)?;
    c.pos += bits;
    Ok(true)
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
        return Err(DecodeError::NestedTooDeeply);
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
                .ok_or(DecodeError::FieldBeyondFile { bits: *size as u64 })?;
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
                if !to.wants_member(n) && step_over(f, c, slots)? {
                    continue;
                }
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
                return Err(DecodeError::ArrayBeyondContent { elements: n });
            }
            to.begin_array(n);
            for _ in 0..n {
                visit(elem, c, slots, depth + 1, to)?;
                if c.pos > c.end {
                    return Err(DecodeError::ArrayBeyondContent { elements: n });
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

//! Decoding the fields of one tracepoint record (the bytes the kernel wrote for one event,
//! starting with `common_type`) with its [`EventFormat`]. Shared by the `.dat` and
//! `perf.data` readers.
//!
//! Public API (stable):
//!
//! - [`Endian`]: the byte order of the traced machine (from the file header).
//! - [`event_class`]`(&EventFormat) -> EventClass`: the class the readers expose; its field
//!   `i` is `format.fields[i]` (common fields with [`Scope::Common`], the others
//!   [`Scope::Payload`]), so a [`virtflow_trace::FieldId`] indexes `format.fields` directly.
//! - [`field_kind`]: the [`FieldKind`] of a format field.
//! - [`read_u64`], [`read_i64`], [`read_str`]: the allocation-free accessors, straight from
//!   the record bytes; `None` when the field is not of that kind or lies outside the record.
//! - [`read_value`]: the full [`Value`] (arrays allocate), for `dump`.
//! - [`dynamic_bytes`]: the payload of a `__data_loc`/`__rel_loc` field.
//!
//! Integers are sign-extended from their declared size when the format says `signed:1`, so a
//! `pid_t` of -1 reads as `-1` through `read_i64` and as `u64::MAX` through `read_u64`.
//! Strings end at their first NUL byte; a string that is not UTF-8 is `None` in `read_str`
//! and converted lossily by `read_value`.

use std::borrow::Cow;

use virtflow_trace::{
    visit, EventClass, FieldDesc, FieldId, FieldKind, FieldVisitor, Scope, Value,
};

use crate::format::{EventFormat, FieldLayout, FormatField};

/// Byte order of the traced machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Endian {
    #[default]
    Little,
    Big,
}

/// The [`EventClass`] of a tracepoint format: fields in format order, common ones first.
pub fn event_class(format: &EventFormat) -> EventClass {
    EventClass {
        name: format.name.clone(),
        system: format.system.clone(),
        fields: format
            .fields
            .iter()
            .map(|f| FieldDesc {
                name: f.name.clone(),
                scope: if f.common {
                    Scope::Common
                } else {
                    Scope::Payload
                },
                kind: field_kind(f),
            })
            .collect(),
    }
}

pub fn field_kind(f: &FormatField) -> FieldKind {
    match f.layout {
        FieldLayout::Integer if f.signed => FieldKind::Int,
        FieldLayout::Integer => FieldKind::UInt,
        FieldLayout::CharArray => FieldKind::Str,
        FieldLayout::Dynamic {
            is_string: true, ..
        } => FieldKind::Str,
        FieldLayout::Dynamic { elem_size: 0, .. } | FieldLayout::Bytes => FieldKind::Bytes,
        FieldLayout::Array { .. } | FieldLayout::Dynamic { .. } => FieldKind::Compound,
    }
}

/// Reads an unsigned integer of `size` (1, 2, 4 or 8) bytes at `offset`.
#[inline]
pub fn read_uint(rec: &[u8], offset: usize, size: usize, endian: Endian) -> Option<u64> {
    let b = rec.get(offset..offset.checked_add(size)?)?;
    Some(match (size, endian) {
        (1, _) => b[0] as u64,
        (2, Endian::Little) => u16::from_le_bytes([b[0], b[1]]) as u64,
        (2, Endian::Big) => u16::from_be_bytes([b[0], b[1]]) as u64,
        (4, Endian::Little) => u32::from_le_bytes(b.try_into().ok()?) as u64,
        (4, Endian::Big) => u32::from_be_bytes(b.try_into().ok()?) as u64,
        (8, Endian::Little) => u64::from_le_bytes(b.try_into().ok()?),
        (8, Endian::Big) => u64::from_be_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// Sign-extends the low `size` bytes of `v`.
#[inline]
fn sign_extend(v: u64, size: usize) -> i64 {
    let shift = 64 - 8 * size as u32;
    ((v << shift) as i64) >> shift
}

#[inline]
fn read_integer(f: &FormatField, rec: &[u8], endian: Endian) -> Option<i64> {
    let size = f.size as usize;
    let v = read_uint(rec, f.offset as usize, size, endian)?;
    Some(if f.signed {
        sign_extend(v, size)
    } else {
        v as i64
    })
}

/// An integer field as `u64` (signed values sign-extended, then reinterpreted).
#[inline]
pub fn read_u64(f: &FormatField, rec: &[u8], endian: Endian) -> Option<u64> {
    match f.layout {
        FieldLayout::Integer => read_integer(f, rec, endian).map(|v| v as u64),
        _ => None,
    }
}

/// An integer field as `i64` (unsigned values reinterpreted).
#[inline]
pub fn read_i64(f: &FormatField, rec: &[u8], endian: Endian) -> Option<i64> {
    match f.layout {
        FieldLayout::Integer => read_integer(f, rec, endian),
        _ => None,
    }
}

/// The bytes of a `__data_loc` or `__rel_loc` field's data.
pub fn dynamic_bytes<'a>(f: &FormatField, rec: &'a [u8], endian: Endian) -> Option<&'a [u8]> {
    let FieldLayout::Dynamic { relative, .. } = f.layout else {
        return None;
    };
    let word = read_uint(rec, f.offset as usize, 4, endian)?;
    let mut start = (word & 0xffff) as usize;
    let len = (word >> 16) as usize;
    if relative {
        start += f.offset as usize + f.size as usize;
    }
    rec.get(start..start.checked_add(len)?)
}

/// The bytes of a fixed-place field. A zero-size array (`char buf[]`, the last field of
/// ftrace's `print` event) runs to the end of the record.
#[inline]
fn fixed_bytes<'a>(f: &FormatField, rec: &'a [u8]) -> Option<&'a [u8]> {
    let start = f.offset as usize;
    if f.size == 0 {
        return rec.get(start..);
    }
    rec.get(start..start.checked_add(f.size as usize)?)
}

/// The bytes of a string field, up to its first NUL.
fn string_bytes<'a>(f: &FormatField, rec: &'a [u8], endian: Endian) -> Option<&'a [u8]> {
    let raw = match f.layout {
        FieldLayout::CharArray => fixed_bytes(f, rec)?,
        FieldLayout::Dynamic {
            is_string: true, ..
        } => dynamic_bytes(f, rec, endian)?,
        _ => return None,
    };
    Some(match raw.iter().position(|&b| b == 0) {
        Some(end) => &raw[..end],
        None => raw,
    })
}

/// A string field (`char name[N]`, `__data_loc char[]`), without its NUL padding.
#[inline]
pub fn read_str<'a>(f: &FormatField, rec: &'a [u8], endian: Endian) -> Option<&'a str> {
    std::str::from_utf8(string_bytes(f, rec, endian)?).ok()
}

fn array_value<'a>(
    bytes: &'a [u8],
    elem_size: u8,
    signed: bool,
    endian: Endian,
) -> Option<Value<'a>> {
    let e = elem_size as usize;
    if e == 0 {
        return Some(Value::Bytes(Cow::Borrowed(bytes)));
    }
    let items = bytes
        .chunks_exact(e)
        .map(|c| {
            let v = read_uint(c, 0, e, endian).unwrap_or(0);
            if signed {
                Value::Int(sign_extend(v, e))
            } else {
                Value::UInt(v)
            }
        })
        .collect();
    Some(Value::Array(items))
}

/// The field's full value: integers, strings, arrays (as [`Value::Array`] of integers),
/// opaque bytes.
#[inline]
/// Pushes field `id` of a record into a visitor: a string as its bytes (no UTF-8 check, no
/// copy), anything else as [`read_value`] reads it. False when the field cannot be read; the
/// visitor then has not heard of it.
pub fn visit_field(
    f: &FormatField,
    rec: &[u8],
    endian: Endian,
    id: FieldId,
    to: &mut dyn FieldVisitor,
) -> bool {
    if let Some(bytes) = string_bytes(f, rec, endian) {
        to.field_str(id, bytes);
        return true;
    }
    match read_value(f, rec, endian) {
        Some(v) => {
            to.field(id);
            visit::visit_value(&v, to);
            true
        }
        None => false,
    }
}

pub fn read_value<'a>(f: &FormatField, rec: &'a [u8], endian: Endian) -> Option<Value<'a>> {
    match f.layout {
        FieldLayout::Integer => {
            let v = read_integer(f, rec, endian)?;
            Some(if f.signed {
                Value::Int(v)
            } else {
                Value::UInt(v as u64)
            })
        }
        FieldLayout::CharArray
        | FieldLayout::Dynamic {
            is_string: true, ..
        } => {
            let bytes = string_bytes(f, rec, endian)?;
            // Kernel strings are nearly always ASCII: validate, and convert only if needed.
            Some(Value::Str(crate::format::text_of(bytes)))
        }
        FieldLayout::Array { elem_size } => {
            array_value(fixed_bytes(f, rec)?, elem_size, f.signed, endian)
        }
        FieldLayout::Dynamic { elem_size, .. } => {
            array_value(dynamic_bytes(f, rec, endian)?, elem_size, f.signed, endian)
        }
        FieldLayout::Bytes => Some(Value::Bytes(Cow::Borrowed(fixed_bytes(f, rec)?))),
    }
}

/// Where an integer field lies in its class's records, in a few bytes (a format's fields also
/// carry names and types): what the accessors read on every event. `size` 0 marks a field
/// that is no integer of 1, 2, 4 or 8 bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IntSlot {
    offset: u32,
    size: u8,
    signed: bool,
}

impl IntSlot {
    /// The slot of field `f`: nothing read unless it is an integer.
    pub fn of(f: &FormatField) -> IntSlot {
        let size = if f.layout == FieldLayout::Integer {
            u8::try_from(f.size).unwrap_or(0)
        } else {
            0
        };
        IntSlot::new(f.offset, size, f.signed)
    }

    /// An integer of `size` bytes at `offset` (a size other than 1, 2, 4 or 8 reads
    /// nothing).
    pub fn new(offset: u32, size: u8, signed: bool) -> IntSlot {
        IntSlot {
            offset,
            size: if matches!(size, 1 | 2 | 4 | 8) {
                size
            } else {
                0
            },
            signed,
        }
    }

    #[inline]
    pub fn is_integer(self) -> bool {
        self.size != 0
    }

    #[inline]
    pub fn signed(self) -> bool {
        self.signed
    }

    /// The integer in record `rec`, sign-extended when signed (`None`: not an integer slot,
    /// or past the record).
    #[inline(always)]
    pub fn read(self, rec: &[u8], endian: Endian) -> Option<i64> {
        if self.size == 0 {
            return None;
        }
        let size = self.size as usize;
        let offset = self.offset as usize;
        let unused = 64 - 8 * size as u32;
        let v = match rec.get(offset..offset + 8) {
            // Eight bytes from the field on (every field but those near a record's end): one
            // load, the field's width kept, instead of a branch on the width.
            Some(&[a, b, c, d, e, f, g, h]) => match endian {
                Endian::Little => u64::from_le_bytes([a, b, c, d, e, f, g, h]) << unused >> unused,
                Endian::Big => u64::from_be_bytes([a, b, c, d, e, f, g, h]) >> unused,
            },
            _ => read_uint(rec, offset, size, endian)?,
        };
        Some(if self.signed {
            sign_extend(v, size)
        } else {
            v as i64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::parse_format;

    const FORMAT: &str = "name: demo\nID: 7\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:char comm[8];\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:short delta;\toffset:16;\tsize:2;\tsigned:1;\n\
\tfield:__data_loc char[] label;\toffset:20;\tsize:4;\tsigned:0;\n\
\tfield:__rel_loc u16[] vals;\toffset:24;\tsize:4;\tsigned:0;\n\
\tfield:u8 addr[4];\toffset:28;\tsize:4;\tsigned:0;\n\
\nprint fmt: \"x\"\n";

    fn record() -> Vec<u8> {
        let mut r = vec![0u8; 40];
        r[0..2].copy_from_slice(&7u16.to_le_bytes());
        r[4..8].copy_from_slice(&(-1i32).to_le_bytes());
        r[8..12].copy_from_slice(b"kvm\0");
        r[16..18].copy_from_slice(&(-3i16).to_le_bytes());
        // label: 3 bytes ("ab\0") at offset 32
        r[20..24].copy_from_slice(&((3u32 << 16) | 32).to_le_bytes());
        // vals: 4 bytes at (24 + 4) + 8 = 36
        r[24..28].copy_from_slice(&((4u32 << 16) | 8).to_le_bytes());
        r[28..32].copy_from_slice(&[10, 0, 0, 1]);
        r[32..35].copy_from_slice(b"ab\0");
        r[36..38].copy_from_slice(&5u16.to_le_bytes());
        r[38..40].copy_from_slice(&6u16.to_le_bytes());
        r
    }

    /// An integer slot reads eight bytes at once where the record has them, the field's own
    /// width near its end: both must give what the field's bytes say, in either byte order.
    #[test]
    fn integer_slots_read_every_width_anywhere_in_the_record() {
        let rec: Vec<u8> = (0..24u8)
            .map(|b| b.wrapping_mul(37).wrapping_add(0x81))
            .collect();
        for size in [1u32, 2, 4, 8] {
            for signed in [false, true] {
                for offset in 0..=(rec.len() as u32 - size) {
                    let field = FormatField {
                        name: "f".into(),
                        type_name: "int".into(),
                        offset,
                        size,
                        signed,
                        common: false,
                        layout: FieldLayout::Integer,
                    };
                    let bytes = &rec[offset as usize..(offset + size) as usize];
                    for endian in [Endian::Little, Endian::Big] {
                        let mut wide = [0u8; 8];
                        let unsigned = match endian {
                            Endian::Little => {
                                wide[..bytes.len()].copy_from_slice(bytes);
                                u64::from_le_bytes(wide)
                            }
                            Endian::Big => {
                                wide[8 - bytes.len()..].copy_from_slice(bytes);
                                u64::from_be_bytes(wide)
                            }
                        };
                        let unused = 64 - 8 * size;
                        let expected = if signed {
                            ((unsigned << unused) as i64) >> unused
                        } else {
                            unsigned as i64
                        };
                        let got = IntSlot::of(&field).read(&rec, endian);
                        assert_eq!(got, Some(expected), "{size} bytes at {offset}, {endian:?}");
                    }
                }
            }
        }
        let past = FormatField {
            name: "f".into(),
            type_name: "int".into(),
            offset: 20,
            size: 8,
            signed: false,
            common: false,
            layout: FieldLayout::Integer,
        };
        assert_eq!(IntSlot::of(&past).read(&rec, Endian::Little), None);
    }

    #[test]
    fn decodes_every_layout() {
        let fmt = parse_format("demo", FORMAT).unwrap();
        let rec = record();
        let le = Endian::Little;
        let f = |n: &str| fmt.field(n).unwrap();
        assert_eq!(read_i64(f("common_pid"), &rec, le), Some(-1));
        assert_eq!(read_u64(f("common_pid"), &rec, le), Some(u64::MAX));
        assert_eq!(read_u64(f("common_type"), &rec, le), Some(7));
        assert_eq!(read_str(f("comm"), &rec, le), Some("kvm"));
        assert_eq!(read_i64(f("delta"), &rec, le), Some(-3));
        assert_eq!(read_str(f("label"), &rec, le), Some("ab"));
        assert_eq!(
            read_value(f("vals"), &rec, le),
            Some(Value::Array(vec![Value::UInt(5), Value::UInt(6)]))
        );
        assert_eq!(
            read_value(f("addr"), &rec, le).unwrap().to_string(),
            "[10, 0, 0, 1]"
        );
        // Out of the record: None, never a panic.
        assert_eq!(read_str(f("label"), &rec[..33], le), None);
        assert_eq!(read_i64(f("delta"), &rec[..17], le), None);
        let class = event_class(&fmt);
        assert_eq!(class.fields[1].scope, Scope::Common);
        assert_eq!(class.fields[2].scope, Scope::Payload);
        assert_eq!(class.fields[2].kind, FieldKind::Str);
        assert_eq!(class.fields[3].kind, FieldKind::Int);
    }
}

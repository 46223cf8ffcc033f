//! The compiled layout of a root scope (a structure): where its top-level fields start —
//! offsets computed once when they do not depend on the data — and how to pass over each
//! field: align-and-add, a NUL-terminated string, or a [`SkipCode`] program, a flat list of
//! steps for the variable-size fields.

use crate::bits::sign_extend;
use crate::decode::{length, skip, Cur, DResult};
use crate::types::*;
use virtflow_trace::error::{DecodeError, IntValue};

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
            length(
                *slots
                    .get(slot as usize)
                    .ok_or(DecodeError::UnresolvedLocation)?,
            )
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
                        .ok_or(DecodeError::FieldBeyondFile { bits: *size as u64 })?;
                    c.pos += *size as u64;
                    *slots
                        .get_mut(*slot as usize)
                        .ok_or(DecodeError::UnresolvedLocation)? = if *signed {
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
                            .ok_or(DecodeError::LengthTooLarge { length: n })?;
                        c.need(total)?;
                        c.pos += total;
                    }
                }
                Op::Select { slot, table } => {
                    let val = *slots
                        .get(*slot as usize)
                        .ok_or(DecodeError::UnresolvedLocation)?;
                    match table.iter().find(|(lo, hi, _)| *lo <= val && val <= *hi) {
                        Some(&(_, _, to)) => {
                            pc = to as usize;
                            continue;
                        }
                        None => {
                            return Err(DecodeError::SelectorMatchesNoOption {
                                value: IntValue::of(val),
                            })
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

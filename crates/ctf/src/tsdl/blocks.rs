//! The top-level blocks of TSDL metadata — `trace`, `stream`, `event`, `clock`, `env` —
//! applied to what the parser collects for [`crate::resolve`].

use super::lexer::string_value;
use super::parser::{PResult, Parser};
use super::values::{byte_order, BlockItem, Val};
use crate::types::*;
use std::borrow::Cow;
use virtflow_trace::error::{CtfError, TsdlError};

/// What the parser collects; [`super::parse`] hands it to [`crate::resolve`].
#[derive(Default)]
pub(super) struct Collected {
    pub(super) bo: Option<ByteOrder>,
    pub(super) packet_header: Option<Ty>,
    pub(super) streams: Vec<(u64, Option<Ty>, Option<Ty>, Option<Ty>, u64)>,
    /// Event classes (and their stream class ids), in chunks of at most 256: a kernel trace
    /// has hundreds of these large values, which a single vector would copy each time it
    /// grows (and hold in one block large enough to be mapped and unmapped each time).
    pub(super) events: Vec<Vec<(u64, EventClassDef)>>,
    pub(super) clocks: Vec<Clock>,
    pub(super) env: Vec<(String, String)>,
}

impl<'a> Parser<'a> {
    pub(super) fn apply_block(
        &mut self,
        kind: &str,
        items: &mut Vec<(Cow<'a, str>, BlockItem<'a>, u64)>,
        c: &mut Collected,
        at: u64,
    ) -> PResult<()> {
        let int = |v: &BlockItem| match v {
            BlockItem::Val(Val::Int(n)) => Some(*n),
            _ => None,
        };
        let bad = |off: u64, attribute: &'static str, v: &BlockItem| {
            self.err_at(
                off,
                TsdlError::BadAttributeValue {
                    attribute,
                    found: v.text(),
                },
            )
        };
        match kind {
            "trace" => {
                // The version read, and where each part of it is.
                let (mut major, mut minor) = ((1, None), (8, None));
                for (k, v, off) in items.drain(..) {
                    match (k.as_ref(), v) {
                        ("byte_order", BlockItem::Val(v)) => {
                            let bo = byte_order(&v).or_else(|e| self.err_at(off, e))?;
                            if bo == ByteOrder::Native {
                                return bad(off, "byte_order", &BlockItem::Val(v));
                            }
                            c.bo = Some(bo);
                        }
                        ("packet.header", BlockItem::Type(t)) => c.packet_header = Some(t),
                        ("major", v) => match int(&v) {
                            Some(n) if n >= 0 && n <= u64::MAX as i128 => {
                                major = (n as u64, Some(off))
                            }
                            _ => return bad(off, "major", &v),
                        },
                        ("minor", v) => match int(&v) {
                            Some(n) if n >= 0 && n <= u64::MAX as i128 => {
                                minor = (n as u64, Some(off))
                            }
                            _ => return bad(off, "minor", &v),
                        },
                        _ => {}
                    }
                }
                let wrong = match (major, minor) {
                    ((m, Some(off)), _) if m != 1 => Some(off),
                    (_, (m, Some(off))) if m != 8 => Some(off),
                    _ => None,
                };
                if let Some(off) = wrong {
                    return self.err_trace(
                        off,
                        CtfError::UnsupportedVersion {
                            major: major.0,
                            minor: minor.0,
                        },
                    );
                }
            }
            "stream" => {
                let mut s = (0u64, None, None, None, at);
                for (k, v, off) in items.drain(..) {
                    match (k.as_ref(), v) {
                        ("id", v) => match int(&v) {
                            Some(n) if n >= 0 => s.0 = n as u64,
                            _ => return bad(off, "id", &v),
                        },
                        ("packet.context", BlockItem::Type(t)) => s.1 = Some(t),
                        ("event.header", BlockItem::Type(t)) => s.2 = Some(t),
                        ("event.context", BlockItem::Type(t)) => s.3 = Some(t),
                        _ => {}
                    }
                }
                if c.streams.iter().any(|x| x.0 == s.0) {
                    return self.err_at(at, TsdlError::DuplicateStreamClass { id: s.0 });
                }
                c.streams.push(s);
            }
            "event" => {
                let (mut id, mut name, mut context, mut payload) = (0, String::new(), None, None);
                let mut sid = 0u64;
                for (k, v, off) in items.drain(..) {
                    match (k.as_ref(), v) {
                        ("name", BlockItem::Val(Val::Str(s, plain))) => {
                            name = string_value(s, plain)
                        }
                        ("name", BlockItem::Val(Val::Path(p))) => name = p.join(),
                        ("id", v) => match int(&v) {
                            Some(n) if n >= 0 && n <= u64::MAX as i128 => id = n as u64,
                            _ => return bad(off, "id", &v),
                        },
                        ("stream_id", v) => match int(&v) {
                            Some(n) if n >= 0 && n <= u64::MAX as i128 => sid = n as u64,
                            _ => return bad(off, "stream_id", &v),
                        },
                        ("context", BlockItem::Type(t)) => context = Some(t),
                        ("fields", BlockItem::Type(t)) => payload = Some(t),
                        _ => {}
                    }
                }
                let e = EventClassDef {
                    meta_offset: at,
                    id,
                    name,
                    context: context.unwrap_or_else(Ty::empty_struct),
                    payload: payload.unwrap_or_else(Ty::empty_struct),
                };
                match c.events.last_mut() {
                    Some(v) if v.len() < v.capacity() => v.push((sid, e)),
                    _ => {
                        let mut v = Vec::with_capacity(64 << c.events.len().min(2));
                        v.push((sid, e));
                        c.events.push(v);
                    }
                }
            }
            "clock" => {
                let mut ck = Clock {
                    name: String::new(),
                    freq: 1_000_000_000,
                    offset_s: 0,
                    offset_cycles: 0,
                };
                for (k, v, off) in items.drain(..) {
                    match (k.as_ref(), &v) {
                        ("name", BlockItem::Val(Val::Path(p))) => ck.name = p.join(),
                        ("name", BlockItem::Val(Val::Str(s, plain))) => {
                            ck.name = string_value(s, *plain)
                        }
                        ("freq", _) => match int(&v) {
                            Some(n) if n > 0 && n <= u64::MAX as i128 => ck.freq = n as u64,
                            _ => return bad(off, "freq", &v),
                        },
                        ("offset_s", _) => match int(&v) {
                            Some(n) if n.abs() < i64::MAX as i128 / 1_000_000_000 => {
                                ck.offset_s = n as i64
                            }
                            _ => return bad(off, "offset_s", &v),
                        },
                        ("offset", _) => match int(&v) {
                            Some(n) if n.abs() < i64::MAX as i128 => ck.offset_cycles = n as i64,
                            _ => return bad(off, "offset", &v),
                        },
                        _ => {}
                    }
                }
                c.clocks.push(ck);
            }
            "env" => {
                for (k, v, _) in items.drain(..) {
                    let s = match v {
                        BlockItem::Val(Val::Int(n)) => n.to_string(),
                        BlockItem::Val(Val::Str(s, plain)) => string_value(s, plain),
                        BlockItem::Val(Val::Path(p)) => p.join(),
                        BlockItem::Type(_) => continue,
                    };
                    c.env.push((k.into_owned(), s));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

//! CTF 2 metadata: a JSON text sequence (records separated by 0x1E), compiled to the same
//! [`crate::types`] as TSDL.

use crate::types::*;
use serde_json::Value as J;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use virtflow_trace::TraceError;

struct Ctx<'a> {
    aliases: HashMap<String, J>,
    file: &'a Path,
    off: u64,
}

type R<T> = Result<T, String>;

fn get_u64(v: &J, key: &str) -> R<Option<u64>> {
    match v.get(key) {
        None | Some(J::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` is not an unsigned integer")),
    }
}

fn num_i128(v: &J) -> R<i128> {
    if let Some(u) = v.as_u64() {
        Ok(u as i128)
    } else if let Some(i) = v.as_i64() {
        Ok(i as i128)
    } else {
        Err("range bound is not an integer".into())
    }
}

fn ranges(v: &J) -> R<Vec<(i128, i128)>> {
    let arr = v.as_array().ok_or("integer range set is not an array")?;
    arr.iter()
        .map(|r| {
            let p = r
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or("bad integer range")?;
            let (lo, hi) = (num_i128(&p[0])?, num_i128(&p[1])?);
            Ok((lo.min(hi), lo.max(hi)))
        })
        .collect()
}

fn location(v: &J) -> R<FieldPath> {
    let (origin, path): (Option<&str>, Vec<&J>) = match v {
        J::Array(a) => {
            let o = a
                .first()
                .and_then(|x| x.as_str())
                .ok_or("empty field location")?;
            (Some(o), a[1..].iter().collect())
        }
        J::Object(o) => (
            o.get("origin").and_then(|x| x.as_str()),
            o.get("path")
                .and_then(|x| x.as_array())
                .ok_or("field location without path")?
                .iter()
                .collect(),
        ),
        _ => return Err("bad field location".into()),
    };
    let root = match origin {
        None => None,
        Some("packet-header") => Some(Root::PacketHeader),
        Some("packet-context") => Some(Root::PacketContext),
        Some("event-record-header") => Some(Root::EventHeader),
        Some("event-record-common-context") => Some(Root::StreamEventContext),
        Some("event-record-specific-context") => Some(Root::EventContext),
        Some("event-record-payload") => Some(Root::Payload),
        Some(o) => return Err(format!("unknown field location origin `{o}`")),
    };
    let parts = path
        .into_iter()
        .map(|p| {
            p.as_str()
                .map(str::to_string)
                .ok_or_else(|| "field location element is not a string".to_string())
        })
        .collect::<R<Vec<_>>>()?;
    Ok(FieldPath { root, parts })
}

impl Ctx<'_> {
    fn err(&self, m: impl Into<String>) -> TraceError {
        TraceError::new(self.file, self.off, format!("CTF 2 metadata: {}", m.into()))
    }

    fn fc(&self, v: &J, scope: Root, depth: u32) -> R<Ty> {
        if depth > 100 {
            return Err("field classes nested too deeply".into());
        }
        if let J::String(name) = v {
            let a = self
                .aliases
                .get(name)
                .ok_or_else(|| format!("unknown field class alias `{name}`"))?;
            return self.fc(a, scope, depth + 1);
        }
        let ty = v
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or("field class without type")?;
        let align = get_u64(v, "alignment")?.unwrap_or(1);
        let min_align = get_u64(v, "minimum-alignment")?.unwrap_or(1);
        for a in [align, min_align] {
            if a == 0 || !a.is_power_of_two() || a > 1 << 20 {
                return Err(format!("bad alignment {a}"));
            }
        }
        let bo = match v.get("byte-order").and_then(|b| b.as_str()) {
            None => ByteOrder::Le,
            Some("little-endian" | "le") => ByteOrder::Le,
            Some("big-endian" | "be") => ByteOrder::Be,
            Some(o) => return Err(format!("bad byte order `{o}`")),
        };
        let dyn_len = |key: &str| -> R<Len> {
            Ok(Len::Dyn(Loc::Path(location(
                v.get(key).ok_or_else(|| format!("missing `{key}`"))?,
            )?)))
        };
        let static_len = || -> R<Len> {
            Ok(Len::Static(
                get_u64(v, "length")?.ok_or("missing `length`")?,
            ))
        };
        let int = |kind: IntKind, signed: bool| -> R<Ty> {
            let size = if kind == IntKind::Var {
                64
            } else {
                get_u64(v, "length")?.ok_or("missing `length`")?
            };
            if size == 0 || size > 64 {
                return Err(format!("unsupported integer length {size}"));
            }
            let mut it = IntTy::new(size as u32, signed);
            it.align = align as u32;
            it.bo = bo;
            it.kind = kind;
            it.base = get_u64(v, "preferred-display-base")?.unwrap_or(10) as u32;
            if let Some(m) = v.get("mappings") {
                let obj = m.as_object().ok_or("mappings is not an object")?;
                let mut maps = Vec::new();
                for (k, r) in obj {
                    maps.push(Mapping {
                        name: k.clone(),
                        ranges: ranges(r)?,
                    });
                }
                it.mappings = Some(Rc::new(maps));
            }
            if let Some(roles) = v.get("roles").and_then(|r| r.as_array()) {
                for r in roles {
                    it.role = match (r.as_str().unwrap_or(""), scope) {
                        ("packet-magic-number", _) => Role::Magic,
                        ("data-stream-class-id", _) => Role::StreamClassId,
                        ("data-stream-id", _) => Role::StreamId,
                        ("packet-total-length", _) => Role::PacketSize,
                        ("packet-content-length", _) => Role::ContentSize,
                        ("default-clock-timestamp", Root::PacketContext) => Role::PacketBeginTs,
                        ("default-clock-timestamp", _) => Role::Timestamp,
                        ("packet-end-default-clock-timestamp", _) => Role::PacketEndTs,
                        ("discarded-event-record-counter-snapshot", _) => Role::EventsDiscarded,
                        ("packet-sequence-number", _) => Role::PacketSeqNum,
                        ("event-record-class-id", _) => Role::EventClassId,
                        _ => it.role,
                    };
                }
            }
            Ok(Ty::Int(it))
        };
        Ok(match ty {
            "fixed-length-unsigned-integer" | "fixed-length-unsigned-enumeration" => {
                int(IntKind::Plain, false)?
            }
            "fixed-length-signed-integer" | "fixed-length-signed-enumeration" => {
                int(IntKind::Plain, true)?
            }
            "fixed-length-boolean" => int(IntKind::Bool, false)?,
            "variable-length-unsigned-integer" | "variable-length-unsigned-enumeration" => {
                int(IntKind::Var, false)?
            }
            "variable-length-signed-integer" | "variable-length-signed-enumeration" => {
                int(IntKind::Var, true)?
            }
            "fixed-length-floating-point-number" => {
                let size = get_u64(v, "length")?.ok_or("missing `length`")?;
                if size != 32 && size != 64 {
                    return Err(format!("unsupported floating point length {size}"));
                }
                Ty::Float {
                    size: size as u32,
                    align: align as u32,
                    bo,
                }
            }
            "null-terminated-string" => Ty::Str(Len::Static(0), true),
            "static-length-string" => Ty::Str(static_len()?, false),
            "dynamic-length-string" => Ty::Str(dyn_len("length-field-location")?, false),
            "static-length-blob" => Ty::Blob(static_len()?),
            "dynamic-length-blob" => Ty::Blob(dyn_len("length-field-location")?),
            "structure" => {
                let mut fields = Vec::new();
                if let Some(m) = v.get("member-classes") {
                    for m in m.as_array().ok_or("member-classes is not an array")? {
                        let name = m
                            .get("name")
                            .and_then(|n| n.as_str())
                            .ok_or("member without name")?;
                        let t = self.fc(
                            m.get("field-class").ok_or("member without field-class")?,
                            scope,
                            depth + 1,
                        )?;
                        if fields.iter().any(|(n, _): &(String, Ty)| n == name) {
                            return Err(format!("duplicate member `{name}`"));
                        }
                        fields.push((name.to_string(), t));
                    }
                }
                Ty::Struct(Box::new(StructTy {
                    min_align: min_align as u32,
                    fields,
                }))
            }
            "static-length-array" | "dynamic-length-array" => {
                let elem = self.fc(
                    v.get("element-field-class")
                        .ok_or("array without element-field-class")?,
                    scope,
                    depth + 1,
                )?;
                let len = if ty == "static-length-array" {
                    static_len()?
                } else {
                    dyn_len("length-field-location")?
                };
                Ty::Array {
                    elem: Box::new(elem),
                    len,
                    align: min_align as u32,
                }
            }
            "optional" => {
                let sel = Loc::Path(location(
                    v.get("selector-field-location")
                        .ok_or("optional without selector")?,
                )?);
                let r = v.get("selector-field-ranges").map(ranges).transpose()?;
                let t = self.fc(
                    v.get("field-class").ok_or("optional without field-class")?,
                    scope,
                    depth + 1,
                )?;
                Ty::Optional {
                    sel,
                    ranges: r,
                    ty: Box::new(t),
                }
            }
            "variant" => {
                let tag = Loc::Path(location(
                    v.get("selector-field-location")
                        .ok_or("variant without selector")?,
                )?);
                let mut options = Vec::new();
                let mut rs = Vec::new();
                for (i, o) in v
                    .get("options")
                    .and_then(|o| o.as_array())
                    .ok_or("variant without options")?
                    .iter()
                    .enumerate()
                {
                    let name = o
                        .get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("")
                        .to_string();
                    let t = self.fc(
                        o.get("field-class").ok_or("option without field-class")?,
                        scope,
                        depth + 1,
                    )?;
                    for (lo, hi) in ranges(
                        o.get("selector-field-ranges")
                            .ok_or("option without ranges")?,
                    )? {
                        rs.push((lo, hi, i));
                    }
                    options.push((name, t));
                }
                Ty::Variant(Box::new(VariantTy {
                    tag,
                    options,
                    ranges: rs,
                    by_label: false,
                }))
            }
            o => return Err(format!("unknown field class type `{o}`")),
        })
    }

    fn scope(&self, rec: &J, key: &str, root: Root) -> Result<Option<Ty>, TraceError> {
        match rec.get(key) {
            None | Some(J::Null) => Ok(None),
            Some(v) => self
                .fc(v, root, 0)
                .map(Some)
                .map_err(|e| self.err(format!("{key}: {e}"))),
        }
    }
}

/// Parses CTF 2 metadata bytes.
pub fn parse(data: &[u8], file: &Path) -> Result<TraceClass, TraceError> {
    let mut cx = Ctx {
        aliases: HashMap::new(),
        file,
        off: 0,
    };
    let mut packet_header = None;
    let mut streams = Vec::new();
    let mut stream_clocks: Vec<(u64, Option<String>)> = Vec::new();
    let mut events = Vec::new();
    let mut clocks = Vec::new();
    let mut env = Vec::new();
    let mut seen_preamble = false;
    let mut pos = 0usize;
    for chunk in data.split(|&b| b == 0x1e) {
        let start = pos;
        pos += chunk.len() + 1;
        if chunk.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        cx.off = start as u64;
        let rec: J = serde_json::from_slice(chunk).map_err(|e| cx.err(format!("bad JSON: {e}")))?;
        let ty = rec
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| cx.err("record without type"))?;
        if !seen_preamble && ty != "preamble" {
            return Err(cx.err("the first record is not a preamble"));
        }
        match ty {
            "preamble" => {
                if rec.get("version").and_then(|v| v.as_u64()) != Some(2) {
                    return Err(cx.err("unsupported CTF version"));
                }
                seen_preamble = true;
            }
            "field-class-alias" => {
                let name = rec
                    .get("name")
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| cx.err("alias without name"))?;
                let fc = rec
                    .get("field-class")
                    .ok_or_else(|| cx.err("alias without field-class"))?;
                cx.aliases.insert(name.to_string(), fc.clone());
            }
            "trace-class" => {
                packet_header = cx.scope(&rec, "packet-header-field-class", Root::PacketHeader)?;
                if let Some(e) = rec.get("environment").and_then(|e| e.as_object()) {
                    for (k, v) in e {
                        let s = match v {
                            J::String(s) => s.clone(),
                            o => o.to_string(),
                        };
                        env.push((k.clone(), s));
                    }
                }
            }
            "clock-class" => {
                let name = rec
                    .get("name")
                    .or_else(|| rec.get("id"))
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| cx.err("clock class without name"))?;
                let freq = get_u64(&rec, "frequency")
                    .map_err(|e| cx.err(e))?
                    .filter(|f| *f > 0)
                    .ok_or_else(|| cx.err("clock class without frequency"))?;
                let (mut s, mut c) = (0i64, 0i64);
                if let Some(o) = rec.get("offset-from-origin").or_else(|| rec.get("offset")) {
                    s = o.get("seconds").and_then(|x| x.as_i64()).unwrap_or(0);
                    c = o.get("cycles").and_then(|x| x.as_i64()).unwrap_or(0);
                }
                if s.checked_mul(1_000_000_000).is_none() {
                    return Err(cx.err("clock offset out of range"));
                }
                clocks.push(Clock {
                    name: name.to_string(),
                    freq,
                    offset_s: s,
                    offset_cycles: c,
                });
            }
            "data-stream-class" => {
                let id = get_u64(&rec, "id").map_err(|e| cx.err(e))?.unwrap_or(0);
                let clock = rec
                    .get("default-clock-class-name")
                    .or_else(|| rec.get("default-clock-class-id"))
                    .and_then(|n| n.as_str())
                    .map(str::to_string);
                streams.push((
                    id,
                    cx.scope(&rec, "packet-context-field-class", Root::PacketContext)?,
                    cx.scope(&rec, "event-record-header-field-class", Root::EventHeader)?,
                    cx.scope(
                        &rec,
                        "event-record-common-context-field-class",
                        Root::StreamEventContext,
                    )?,
                    cx.off,
                ));
                stream_clocks.push((id, clock));
            }
            "event-record-class" => {
                let id = get_u64(&rec, "id").map_err(|e| cx.err(e))?.unwrap_or(0);
                let sid = get_u64(&rec, "data-stream-class-id")
                    .map_err(|e| cx.err(e))?
                    .unwrap_or(0);
                let name = rec
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .to_string();
                let context = cx
                    .scope(&rec, "specific-context-field-class", Root::EventContext)?
                    .unwrap_or_else(Ty::empty_struct);
                let payload = cx
                    .scope(&rec, "payload-field-class", Root::Payload)?
                    .unwrap_or_else(Ty::empty_struct);
                events.push((
                    sid,
                    EventClassDef {
                        meta_offset: cx.off,
                        id,
                        name,
                        context,
                        payload,
                    },
                ));
            }
            _ => {}
        }
    }
    if !seen_preamble {
        return Err(TraceError::new(file, 0, "CTF 2 metadata: no preamble"));
    }
    let mut tc = crate::resolve::build(
        file,
        Some(ByteOrder::Le),
        packet_header,
        streams,
        events,
        clocks,
        env,
        false,
    )?;
    // Streams whose class names a default clock: timestamps without a clock use it.
    for s in &mut tc.streams {
        if let Some((_, Some(c))) = stream_clocks.iter().find(|(id, _)| *id == s.id) {
            let c = c.clone();
            let mut g = |i: &mut IntTy| {
                if matches!(
                    i.role,
                    Role::Timestamp | Role::PacketBeginTs | Role::PacketEndTs
                ) {
                    i.clock = Some(c.clone());
                }
            };
            s.event_header.for_each_int(&mut g);
            s.packet_context.for_each_int(&mut g);
            if !tc.clocks.iter().any(|k| k.name == c) {
                return Err(TraceError::new(
                    file,
                    0,
                    format!("CTF 2 metadata: unknown clock class `{c}`"),
                ));
            }
            s.clock = Some(c);
        }
    }
    Ok(tc)
}

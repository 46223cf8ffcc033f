//! CTF 2 metadata: a JSON text sequence (records separated by 0x1E), compiled to the same
//! [`crate::types`] as TSDL.

use crate::types::*;
use serde_json::Value as J;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use virtflow_trace::error::{Ctf2Error, CtfError};
use virtflow_trace::TraceError;

struct Ctx<'a> {
    aliases: HashMap<String, J>,
    file: &'a Path,
    off: u64,
}

type R<T> = Result<T, Ctf2Error>;

/// A JSON value as an error shows it: its text, cut after 60 characters.
fn excerpt(v: &J) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s,
    }
}

/// Property `property` of `v`, which `object` must have.
fn need<'j>(v: &'j J, object: &'static str, property: &'static str) -> R<&'j J> {
    v.get(property)
        .ok_or(Ctf2Error::MissingProperty { object, property })
}

fn get_u64(v: &J, key: &'static str) -> R<Option<u64>> {
    match v.get(key) {
        None | Some(J::Null) => Ok(None),
        Some(x) => x.as_u64().map(Some).ok_or_else(|| Ctf2Error::WrongType {
            property: key,
            expected: "an unsigned integer",
            found: excerpt(x).into(),
        }),
    }
}

fn num_i128(v: &J) -> Option<i128> {
    if let Some(u) = v.as_u64() {
        Some(u as i128)
    } else {
        v.as_i64().map(|i| i as i128)
    }
}

fn ranges(v: &J) -> R<Vec<(i128, i128)>> {
    let bad = |r: &J| Ctf2Error::BadIntegerRange { found: excerpt(r) };
    let arr = v.as_array().ok_or_else(|| bad(v))?;
    arr.iter()
        .map(|r| {
            let p = r
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| bad(r))?;
            let (lo, hi) = num_i128(&p[0]).zip(num_i128(&p[1])).ok_or_else(|| bad(r))?;
            Ok((lo.min(hi), lo.max(hi)))
        })
        .collect()
}

fn location(v: &J) -> R<FieldPath> {
    let bad = || Ctf2Error::BadFieldLocation { found: excerpt(v) };
    let (origin, path): (Option<&str>, Vec<&J>) = match v {
        J::Array(a) => {
            let o = a.first().and_then(|x| x.as_str()).ok_or_else(bad)?;
            (Some(o), a[1..].iter().collect())
        }
        J::Object(o) => (
            o.get("origin").and_then(|x| x.as_str()),
            o.get("path")
                .and_then(|x| x.as_array())
                .ok_or_else(bad)?
                .iter()
                .collect(),
        ),
        _ => return Err(bad()),
    };
    let root = match origin {
        None => None,
        Some("packet-header") => Some(Root::PacketHeader),
        Some("packet-context") => Some(Root::PacketContext),
        Some("event-record-header") => Some(Root::EventHeader),
        Some("event-record-common-context") => Some(Root::StreamEventContext),
        Some("event-record-specific-context") => Some(Root::EventContext),
        Some("event-record-payload") => Some(Root::Payload),
        Some(o) => {
            return Err(Ctf2Error::UnknownLocationOrigin {
                origin: o.to_string(),
            })
        }
    };
    let parts = path
        .into_iter()
        .map(|p| p.as_str().map(str::to_string).ok_or_else(bad))
        .collect::<R<Vec<_>>>()?;
    Ok(FieldPath { root, parts })
}

/// The name of a field class type, for errors (the JSON type string, or a known literal).
fn ty_name(ty: &str) -> &'static str {
    match ty {
        "static-length-string" => "static-length string",
        "dynamic-length-string" => "dynamic-length string",
        "static-length-blob" => "static-length BLOB",
        "dynamic-length-blob" => "dynamic-length BLOB",
        "static-length-array" => "static-length array",
        "dynamic-length-array" => "dynamic-length array",
        "fixed-length-floating-point-number" => "floating point number",
        _ => "integer",
    }
}

impl Ctx<'_> {
    #[cold]
    fn err(&self, error: Ctf2Error) -> TraceError {
        TraceError::new(
            self.file,
            self.off,
            CtfError::Ctf2 {
                field_class: None,
                error,
            },
        )
    }

    fn fc(&self, v: &J, scope: Root, depth: u32) -> R<Ty> {
        if depth > 100 {
            return Err(Ctf2Error::NestedTooDeeply);
        }
        if let J::String(name) = v {
            let a = self
                .aliases
                .get(name)
                .ok_or_else(|| Ctf2Error::UnknownAlias { name: name.clone() })?;
            return self.fc(a, scope, depth + 1);
        }
        let ty = need(v, "field class", "type")?
            .as_str()
            .ok_or_else(|| Ctf2Error::WrongType {
                property: "type",
                expected: "a string",
                found: excerpt(&v["type"]).into(),
            })?;
        let align = get_u64(v, "alignment")?.unwrap_or(1);
        let min_align = get_u64(v, "minimum-alignment")?.unwrap_or(1);
        for a in [align, min_align] {
            if a == 0 || !a.is_power_of_two() || a > 1 << 20 {
                return Err(Ctf2Error::BadAlignment { align: a });
            }
        }
        let bo = match v.get("byte-order").and_then(|b| b.as_str()) {
            None => ByteOrder::Le,
            Some("little-endian" | "le") => ByteOrder::Le,
            Some("big-endian" | "be") => ByteOrder::Be,
            Some(o) => {
                return Err(Ctf2Error::BadByteOrder {
                    found: o.to_string(),
                })
            }
        };
        let dyn_len = |key: &'static str| -> R<Len> {
            Ok(Len::Dyn(Loc::Path(location(need(v, ty_name(ty), key)?)?)))
        };
        let length = || -> R<u64> {
            get_u64(v, "length")?.ok_or(Ctf2Error::MissingProperty {
                object: ty_name(ty),
                property: "length",
            })
        };
        let static_len = || -> R<Len> { Ok(Len::Static(length()?)) };
        let int = |kind: IntKind, signed: bool| -> R<Ty> {
            let size = if kind == IntKind::Var { 64 } else { length()? };
            if size == 0 || size > 64 {
                return Err(Ctf2Error::UnsupportedIntegerLength { length: size });
            }
            let mut it = IntTy::new(size as u32, signed);
            it.align = align as u32;
            it.bo = bo;
            it.kind = kind;
            it.base = get_u64(v, "preferred-display-base")?.unwrap_or(10) as u32;
            if let Some(m) = v.get("mappings") {
                let obj = m.as_object().ok_or_else(|| Ctf2Error::WrongType {
                    property: "mappings",
                    expected: "an object",
                    found: excerpt(m).into(),
                })?;
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
                let size = length()?;
                if size != 32 && size != 64 {
                    return Err(Ctf2Error::UnsupportedFloatLength { length: size });
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
                    let members = m.as_array().ok_or_else(|| Ctf2Error::WrongType {
                        property: "member-classes",
                        expected: "an array",
                        found: excerpt(m).into(),
                    })?;
                    for m in members {
                        let name = need(m, "member class", "name")?.as_str().ok_or_else(|| {
                            Ctf2Error::WrongType {
                                property: "name",
                                expected: "a string",
                                found: excerpt(&m["name"]).into(),
                            }
                        })?;
                        let t =
                            self.fc(need(m, "member class", "field-class")?, scope, depth + 1)?;
                        if fields.iter().any(|(n, _): &(String, Ty)| n == name) {
                            return Err(Ctf2Error::DuplicateMember {
                                name: name.to_string(),
                            });
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
                    need(v, ty_name(ty), "element-field-class")?,
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
                let sel = Loc::Path(location(need(v, "optional", "selector-field-location")?)?);
                let r = v.get("selector-field-ranges").map(ranges).transpose()?;
                let t = self.fc(need(v, "optional", "field-class")?, scope, depth + 1)?;
                Ty::Optional {
                    sel,
                    ranges: r,
                    ty: Box::new(t),
                }
            }
            "variant" => {
                let tag = Loc::Path(location(need(v, "variant", "selector-field-location")?)?);
                let mut options = Vec::new();
                let mut rs = Vec::new();
                let opts = need(v, "variant", "options")?;
                let opts = opts.as_array().ok_or_else(|| Ctf2Error::WrongType {
                    property: "options",
                    expected: "an array",
                    found: excerpt(opts).into(),
                })?;
                for (i, o) in opts.iter().enumerate() {
                    let name = o
                        .get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("")
                        .to_string();
                    let t = self.fc(need(o, "variant option", "field-class")?, scope, depth + 1)?;
                    for (lo, hi) in ranges(need(o, "variant option", "selector-field-ranges")?)? {
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
            o => {
                return Err(Ctf2Error::UnknownFieldClassType {
                    found: o.to_string(),
                })
            }
        })
    }

    fn scope(&self, rec: &J, key: &'static str, root: Root) -> Result<Option<Ty>, TraceError> {
        match rec.get(key) {
            None | Some(J::Null) => Ok(None),
            Some(v) => self.fc(v, root, 0).map(Some).map_err(|error| {
                TraceError::new(
                    self.file,
                    self.off,
                    CtfError::Ctf2 {
                        field_class: Some(key),
                        error,
                    },
                )
            }),
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
        let rec: J = serde_json::from_slice(chunk).map_err(|e| {
            cx.err(Ctf2Error::BadJson {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })
        })?;
        let ty = rec
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| cx.err(Ctf2Error::RecordWithoutType))?;
        if !seen_preamble && ty != "preamble" {
            return Err(cx.err(Ctf2Error::FirstRecordNotPreamble {
                found: ty.to_string(),
            }));
        }
        match ty {
            "preamble" => {
                let version = need(&rec, "preamble", "version").map_err(|e| cx.err(e))?;
                let major = version.as_u64().ok_or_else(|| {
                    cx.err(Ctf2Error::WrongType {
                        property: "version",
                        expected: "an unsigned integer",
                        found: excerpt(version).into(),
                    })
                })?;
                if major != 2 {
                    return Err(TraceError::new(
                        file,
                        cx.off,
                        CtfError::UnsupportedVersion { major, minor: 0 },
                    ));
                }
                seen_preamble = true;
            }
            "field-class-alias" => {
                let name = need(&rec, "field class alias", "name")
                    .and_then(|n| {
                        n.as_str().ok_or_else(|| Ctf2Error::WrongType {
                            property: "name",
                            expected: "a string",
                            found: excerpt(n).into(),
                        })
                    })
                    .map_err(|e| cx.err(e))?;
                let fc = need(&rec, "field class alias", "field-class").map_err(|e| cx.err(e))?;
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
                    .ok_or_else(|| {
                        cx.err(Ctf2Error::MissingProperty {
                            object: "clock class",
                            property: "name",
                        })
                    })?;
                let freq = get_u64(&rec, "frequency")
                    .map_err(|e| cx.err(e))?
                    .ok_or_else(|| {
                        cx.err(Ctf2Error::MissingProperty {
                            object: "clock class",
                            property: "frequency",
                        })
                    })?;
                if freq == 0 {
                    return Err(cx.err(Ctf2Error::WrongType {
                        property: "frequency",
                        expected: "a positive integer",
                        found: "0".into(),
                    }));
                }
                let (mut s, mut c) = (0i64, 0i64);
                if let Some(o) = rec.get("offset-from-origin").or_else(|| rec.get("offset")) {
                    s = o.get("seconds").and_then(|x| x.as_i64()).unwrap_or(0);
                    c = o.get("cycles").and_then(|x| x.as_i64()).unwrap_or(0);
                }
                if s.checked_mul(1_000_000_000).is_none() {
                    return Err(cx.err(Ctf2Error::ClockOffsetOutOfRange { seconds: s }));
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
        cx.off = 0;
        return Err(cx.err(Ctf2Error::NoPreamble));
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
                return Err(TraceError::new(file, 0, CtfError::UnknownClock { name: c }));
            }
            s.clock = Some(c);
        }
    }
    Ok(tc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtflow_trace::ErrorKind;

    fn err(records: &[&str]) -> TraceError {
        let mut text = Vec::new();
        for r in records {
            text.push(0x1e);
            text.extend_from_slice(r.as_bytes());
        }
        parse(&text, Path::new("metadata")).unwrap_err()
    }

    const PREAMBLE: &str = r#"{"type": "preamble", "version": 2}"#;

    #[test]
    fn errors_are_kinds_at_their_record() {
        let e = err(&[r#"{"type": "trace-class"}"#]);
        assert_eq!(
            e.kind,
            ErrorKind::Ctf(CtfError::Ctf2 {
                field_class: None,
                error: Ctf2Error::FirstRecordNotPreamble {
                    found: "trace-class".into()
                }
            })
        );
        let e = err(&[r#"{"type": "preamble", "version": 3}"#]);
        assert_eq!(
            e.kind,
            ErrorKind::Ctf(CtfError::UnsupportedVersion { major: 3, minor: 0 })
        );
        let event = r#"{"type": "event-record-class", "payload-field-class": "u33"}"#;
        let e = err(&[PREAMBLE, event]);
        // The record starts after its separator.
        assert_eq!(e.offset, PREAMBLE.len() as u64 + 2);
        assert_eq!(
            e.kind,
            ErrorKind::Ctf(CtfError::Ctf2 {
                field_class: Some("payload-field-class"),
                error: Ctf2Error::UnknownAlias { name: "u33".into() }
            })
        );
        assert_eq!(
            e.to_string(),
            "metadata: at byte 36: CTF 2 metadata: payload-field-class: unknown field class \
             alias `u33`"
        );
        let e = err(&[PREAMBLE, "{ nope"]);
        assert!(matches!(
            e.kind,
            ErrorKind::Ctf(CtfError::Ctf2 {
                error: Ctf2Error::BadJson { line: 1, .. },
                ..
            })
        ));
        let int = r#"{"type": "event-record-class", "payload-field-class": {"type": "structure",
            "member-classes": [{"name": "x", "field-class":
                {"type": "fixed-length-unsigned-integer", "length": 65}}]}}"#;
        let e = err(&[PREAMBLE, int]);
        assert!(matches!(
            e.kind,
            ErrorKind::Ctf(CtfError::Ctf2 {
                error: Ctf2Error::UnsupportedIntegerLength { length: 65 },
                ..
            })
        ));
    }
}

//! The `dump` text form of values, written as a reader visits them ([`TextFields`]); the same
//! text as [`Value`]'s `Display`, without building values.

use crate::{FieldDesc, FieldId, FieldVisitor, Value};
use std::io::Write;

/// A string in the `dump` form: quoted with Rust's escaping. Plain printable ASCII, by far the
/// common case, is copied as is, which is what the escaping would give.
pub fn write_quoted(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.write_all(b"\"")?;
        out.write_all(s.as_bytes())?;
        out.write_all(b"\"")
    } else {
        write!(out, "{s:?}")
    }
}

/// Writes visited fields in the text form: ` name=value` each, the values as [`Value`]'s
/// `Display` writes them (`{ a=1, b=2 }`, `[1, 2]`, `<option>value`, `6(TCP)`).
pub struct TextFields<'w, W: Write> {
    out: &'w mut W,
    names: &'w [FieldDesc],
    num: itoa::Buffer,
    open: Vec<Open>,
    /// The next value continues the one being written (a variant's, an enumeration's).
    continued: bool,
    /// The first output error; writing stops there.
    pub result: std::io::Result<()>,
}

/// A compound being written.
enum Open {
    Struct {
        first: bool,
    },
    Array {
        first: bool,
    },
    /// An enumeration whose integer is being written: its labels go after it.
    Enum(String),
}

impl<'w, W: Write> TextFields<'w, W> {
    pub fn new(out: &'w mut W, names: &'w [FieldDesc]) -> Self {
        TextFields {
            out,
            names,
            num: itoa::Buffer::new(),
            open: Vec::new(),
            continued: false,
            result: Ok(()),
        }
    }

    fn put(&mut self, b: &[u8]) {
        if self.result.is_ok() {
            self.result = self.out.write_all(b);
        }
    }

    /// A value starts: the separator an array puts before its elements.
    fn start(&mut self) {
        if std::mem::replace(&mut self.continued, false) {
            return;
        }
        if let Some(Open::Array { first }) = self.open.last_mut() {
            let sep = !std::mem::replace(first, false);
            if sep {
                self.put(b", ");
            }
        }
    }

    /// A value ended: an enumeration's labels follow its integer.
    fn end(&mut self) {
        if let Some(Open::Enum(_)) = self.open.last() {
            if let Some(Open::Enum(labels)) = self.open.pop() {
                if !labels.is_empty() {
                    self.put(b"(");
                    self.put(labels.as_bytes());
                    self.put(b")");
                }
            }
            self.end();
        }
    }

    fn number(&mut self, v: impl itoa::Integer) {
        let mut num = std::mem::take(&mut self.num);
        self.scalar(num.format(v).as_bytes());
        self.num = num;
    }

    fn scalar(&mut self, b: &[u8]) {
        self.start();
        self.put(b);
        self.end();
    }
}

impl<W: Write> FieldVisitor for TextFields<'_, W> {
    fn field(&mut self, id: FieldId) {
        self.open.clear();
        self.continued = false;
        let Some(f) = self.names.get(id.0 as usize) else {
            return;
        };
        self.put(b" ");
        self.put(f.name.as_bytes());
        self.put(b"=");
    }
    fn bool(&mut self, v: bool) {
        self.scalar(if v { b"true" } else { b"false" });
    }
    fn uint(&mut self, v: u64) {
        self.number(v);
    }
    fn int(&mut self, v: i64) {
        self.number(v);
    }
    fn float(&mut self, v: f64) {
        self.scalar(v.to_string().as_bytes());
    }
    fn str(&mut self, v: &[u8]) {
        self.start();
        if self.result.is_ok() {
            self.result = match std::str::from_utf8(v) {
                Ok(s) => write_quoted(self.out, s),
                Err(_) => write_quoted(self.out, &String::from_utf8_lossy(v)),
            };
        }
        self.end();
    }
    fn bytes(&mut self, v: &[u8]) {
        self.scalar(Value::Bytes(v.into()).to_string().as_bytes());
    }
    fn none(&mut self) {
        self.scalar(b"none");
    }
    fn enumeration(&mut self, labels: &mut dyn Iterator<Item = &str>) {
        self.start();
        let mut joined = String::new();
        for (i, l) in labels.enumerate() {
            if i > 0 {
                joined.push('|');
            }
            joined.push_str(l);
        }
        self.open.push(Open::Enum(joined));
        self.continued = true;
    }
    fn variant(&mut self, option: &str) {
        self.start();
        self.put(b"<");
        self.put(option.as_bytes());
        self.put(b">");
        self.continued = true;
    }
    fn begin_struct(&mut self) {
        self.start();
        self.put(b"{");
        self.open.push(Open::Struct { first: true });
    }
    fn member(&mut self, name: &str) {
        if let Some(Open::Struct { first }) = self.open.last_mut() {
            let sep = !std::mem::replace(first, false);
            if sep {
                self.put(b",");
            }
        }
        self.put(b" ");
        self.put(name.as_bytes());
        self.put(b"=");
    }
    fn end_struct(&mut self) {
        self.open.pop();
        self.put(b" }");
        self.end();
    }
    fn begin_array(&mut self, _len: u64) {
        self.start();
        self.put(b"[");
        self.open.push(Open::Array { first: true });
    }
    fn end_array(&mut self) {
        self.open.pop();
        self.put(b"]");
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{visit::visit_value, FieldKind, Scope};
    use std::borrow::Cow;

    fn s(x: &str) -> Cow<'static, str> {
        Cow::Owned(x.to_string())
    }

    /// Writing a visited value gives what `Value`'s `Display`, the reference form, gives: for
    /// scalars, strings that need escaping, and compounds nested every way (enumerations in
    /// arrays and variants, variants of structures, empty compounds).
    #[test]
    fn visited_values_are_written_as_display_writes_them() {
        let en = |v: Value<'static>, labels: &[&str]| {
            Value::Enum(Box::new(v), labels.iter().map(|l| s(l)).collect())
        };
        let values: Vec<Value<'static>> = vec![
            Value::UInt(u64::MAX),
            Value::Int(-5),
            Value::Bool(false),
            Value::Float(-0.25),
            Value::Str(s("plain")),
            Value::Str(s("tab\tquote\"é")),
            Value::Bytes(Cow::Owned(vec![0, 15, 255])),
            Value::None,
            en(Value::UInt(6), &["TCP"]),
            en(Value::Int(-1), &[]),
            en(Value::UInt(3), &["A", "B"]),
            Value::Array(vec![]),
            Value::Struct(vec![]),
            Value::Array(vec![
                en(Value::UInt(1), &["X"]),
                en(Value::UInt(2), &[]),
                Value::Variant(s("o"), Box::new(en(Value::UInt(9), &["N"]))),
                Value::Array(vec![Value::UInt(1), Value::UInt(2)]),
            ]),
            Value::Variant(
                s("ipv4"),
                Box::new(Value::Struct(vec![
                    (s("version"), Value::UInt(4)),
                    (s("protocol"), en(Value::UInt(6), &["tcp"])),
                    (
                        s("saddr"),
                        Value::Array(vec![Value::UInt(10), Value::UInt(0)]),
                    ),
                    (s("empty"), Value::Struct(vec![])),
                    (
                        s("transport"),
                        Value::Variant(
                            s("tcp"),
                            Box::new(Value::Struct(vec![(s("port"), Value::UInt(80))])),
                        ),
                    ),
                ])),
            ),
        ];
        let names: Vec<FieldDesc> = (0..values.len())
            .map(|i| FieldDesc {
                name: format!("f{i}"),
                scope: Scope::Payload,
                kind: FieldKind::Compound,
            })
            .collect();
        let mut out = Vec::new();
        let mut text = TextFields::new(&mut out, &names);
        for (i, v) in values.iter().enumerate() {
            text.field(FieldId(i as u32));
            visit_value(v, &mut text);
        }
        text.result.unwrap();
        let expected: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!(" f{i}={v}"))
            .collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

//! Whole events without [`Value`] trees: a reader pushes each field's value, as it decodes it,
//! into a [`FieldVisitor`] ([`EventSource::visit_fields`](crate::EventSource::visit_fields)).
//!
//! This is how `dump` writes events and how the decoding benchmark reads them: a nested value
//! (a network header's variant of structures of enumerations…) costs no allocation, a string
//! no UTF-8 check until someone prints it. [`ValueBuilder`] turns the calls back into
//! [`Value`]s, and [`visit_value`] turns a [`Value`] into calls: readers that produce values
//! get a visitor for free, and readers that visit get values for free.

use crate::{FieldId, Value};
use std::borrow::Cow;

/// Receives an event's fields in the order of [`crate::EventClass::fields`].
///
/// Each field is announced by [`FieldVisitor::field`], then comes exactly one value: one scalar
/// call (`bool`, `uint`, `int`, `float`, `str`, `bytes`, `none`); an enumeration
/// ([`FieldVisitor::enumeration`] then its integer as `uint` or `int`); a variant
/// ([`FieldVisitor::variant`] then the selected option's value); a structure (`begin_struct`,
/// then [`FieldVisitor::member`] and one value per member, then `end_struct`); or an array
/// (`begin_array`, one value per element, `end_array`).
pub trait FieldVisitor {
    fn field(&mut self, id: FieldId);
    fn bool(&mut self, v: bool);
    fn uint(&mut self, v: u64);
    fn int(&mut self, v: i64);
    fn float(&mut self, v: f64);
    /// A string's bytes up to its terminator, as recorded: normally UTF-8, not checked.
    fn str(&mut self, v: &[u8]);
    fn bytes(&mut self, v: &[u8]);
    /// An absent optional.
    fn none(&mut self);
    /// An enumeration whose integer comes next: the labels whose ranges hold it.
    fn enumeration(&mut self, labels: &mut dyn Iterator<Item = &str>);
    /// A variant whose selected option's value comes next.
    fn variant(&mut self, option: &str);
    fn begin_struct(&mut self);
    /// The member of the current structure whose value comes next.
    fn member(&mut self, name: &str);
    /// Whether the value of the member `name` of the current structure is wanted, asked
    /// before [`FieldVisitor::member`]. A visitor that answers no lets a reader step over a
    /// scalar or array of fixed size without decoding it: neither `member` nor its value is
    /// then visited. Structures and variants are always visited (they may hold wanted
    /// members), as is anything a reader cannot step over. Reading the three integers of a
    /// packet's TCP header this way skips the twenty others around them. Default: every
    /// member is wanted.
    fn wants_member(&mut self, _name: &str) -> bool {
        true
    }
    fn end_struct(&mut self);
    fn begin_array(&mut self, len: u64);
    fn end_array(&mut self);

    /// A field holding a plain unsigned integer: [`FieldVisitor::field`] then
    /// [`FieldVisitor::uint`], in one call (most fields are plain numbers or strings; a
    /// visitor may do both at once).
    fn field_uint(&mut self, id: FieldId, v: u64) {
        self.field(id);
        self.uint(v);
    }
    /// A field holding a plain signed integer: `field` then `int`.
    fn field_int(&mut self, id: FieldId, v: i64) {
        self.field(id);
        self.int(v);
    }
    /// A field holding a string: `field` then `str`.
    fn field_str(&mut self, id: FieldId, v: &[u8]) {
        self.field(id);
        self.str(v);
    }
}

/// Pushes a value into a visitor (without the [`FieldVisitor::field`] call).
pub fn visit_value(v: &Value<'_>, to: &mut dyn FieldVisitor) {
    match v {
        Value::Bool(b) => to.bool(*b),
        Value::UInt(x) => to.uint(*x),
        Value::Int(x) => to.int(*x),
        Value::Float(x) => to.float(*x),
        Value::Str(s) => to.str(s.as_bytes()),
        Value::Bytes(b) => to.bytes(b),
        Value::None => to.none(),
        Value::Enum(x, labels) => {
            to.enumeration(&mut labels.iter().map(|l| l.as_ref()));
            visit_value(x, to);
        }
        Value::Variant(option, x) => {
            to.variant(option);
            visit_value(x, to);
        }
        Value::Struct(members) => {
            to.begin_struct();
            for (name, x) in members {
                to.member(name);
                visit_value(x, to);
            }
            to.end_struct();
        }
        Value::Array(items) => {
            to.begin_array(items.len() as u64);
            for x in items {
                visit_value(x, to);
            }
            to.end_array();
        }
    }
}

/// A visitor that builds the [`Value`] of each field and hands it to `emit` once complete.
/// Strings and names are copied: the visited bytes live only for the call.
pub struct ValueBuilder<F: FnMut(FieldId, Value<'static>)> {
    emit: F,
    field: FieldId,
    open: Vec<Open>,
}

/// A compound value being built.
enum Open {
    Struct(Vec<(Cow<'static, str>, Value<'static>)>, Option<String>),
    Array(Vec<Value<'static>>),
    Variant(String),
    Enum(Vec<Cow<'static, str>>),
}

impl<F: FnMut(FieldId, Value<'static>)> ValueBuilder<F> {
    pub fn new(emit: F) -> Self {
        ValueBuilder {
            emit,
            field: FieldId(0),
            open: Vec::new(),
        }
    }

    /// Whether a value was left incomplete (the reader stopped inside a compound).
    pub fn incomplete(&self) -> bool {
        !self.open.is_empty()
    }

    /// A complete value: into the compound being built, or out when it is a field's.
    fn done(&mut self, v: Value<'static>) {
        match self.open.last_mut() {
            None => (self.emit)(self.field, v),
            Some(Open::Struct(members, name)) => {
                members.push((Cow::Owned(name.take().unwrap_or_default()), v))
            }
            Some(Open::Array(items)) => items.push(v),
            Some(Open::Variant(_)) => {
                if let Some(Open::Variant(option)) = self.open.pop() {
                    self.done(Value::Variant(Cow::Owned(option), Box::new(v)));
                }
            }
            Some(Open::Enum(_)) => {
                if let Some(Open::Enum(labels)) = self.open.pop() {
                    self.done(Value::Enum(Box::new(v), labels));
                }
            }
        }
    }
}

impl<F: FnMut(FieldId, Value<'static>)> FieldVisitor for ValueBuilder<F> {
    fn field(&mut self, id: FieldId) {
        // A field left incomplete is dropped, not merged into the next one.
        self.open.clear();
        self.field = id;
    }
    fn bool(&mut self, v: bool) {
        self.done(Value::Bool(v))
    }
    fn uint(&mut self, v: u64) {
        self.done(Value::UInt(v))
    }
    fn int(&mut self, v: i64) {
        self.done(Value::Int(v))
    }
    fn float(&mut self, v: f64) {
        self.done(Value::Float(v))
    }
    fn str(&mut self, v: &[u8]) {
        self.done(Value::Str(Cow::Owned(
            String::from_utf8_lossy(v).into_owned(),
        )))
    }
    fn bytes(&mut self, v: &[u8]) {
        self.done(Value::Bytes(Cow::Owned(v.to_vec())))
    }
    fn none(&mut self) {
        self.done(Value::None)
    }
    fn enumeration(&mut self, labels: &mut dyn Iterator<Item = &str>) {
        let labels = labels.map(|l| Cow::Owned(l.to_string())).collect();
        self.open.push(Open::Enum(labels));
    }
    fn variant(&mut self, option: &str) {
        self.open.push(Open::Variant(option.to_string()));
    }
    fn begin_struct(&mut self) {
        self.open.push(Open::Struct(Vec::new(), None));
    }
    fn member(&mut self, name: &str) {
        if let Some(Open::Struct(_, next)) = self.open.last_mut() {
            *next = Some(name.to_string());
        }
    }
    fn end_struct(&mut self) {
        if let Some(Open::Struct(members, _)) = self.open.pop() {
            self.done(Value::Struct(members));
        }
    }
    fn begin_array(&mut self, len: u64) {
        self.open
            .push(Open::Array(Vec::with_capacity(len.min(4096) as usize)));
    }
    fn end_array(&mut self) {
        if let Some(Open::Array(items)) = self.open.pop() {
            self.done(Value::Array(items));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Cow<'static, str> {
        Cow::Owned(x.to_string())
    }

    /// A network header as LTTng records it: a variant of a structure holding enumerations,
    /// arrays and a nested variant.
    fn nested() -> Value<'static> {
        Value::Variant(
            s("ipv4"),
            Box::new(Value::Struct(vec![
                (s("version"), Value::UInt(4)),
                (
                    s("protocol"),
                    Value::Enum(Box::new(Value::UInt(6)), vec![s("tcp")]),
                ),
                (
                    s("saddr"),
                    Value::Array(vec![Value::UInt(10), Value::UInt(0), Value::UInt(2)]),
                ),
                (s("empty"), Value::Struct(vec![])),
                (s("nothing"), Value::Array(vec![])),
                (
                    s("flags"),
                    Value::Enum(Box::new(Value::Int(-3)), vec![s("A"), s("B")]),
                ),
                (s("opt"), Value::None),
                (
                    s("transport"),
                    Value::Variant(
                        s("tcp"),
                        Box::new(Value::Struct(vec![
                            (s("port"), Value::UInt(80)),
                            (s("name"), Value::Str(s("é\"x"))),
                            (s("blob"), Value::Bytes(Cow::Owned(vec![1, 255]))),
                            (s("ok"), Value::Bool(true)),
                            (s("rate"), Value::Float(0.5)),
                        ])),
                    ),
                ),
            ])),
        )
    }

    #[test]
    fn values_survive_a_round_trip_through_a_visitor() {
        let values = [nested(), Value::UInt(7), Value::Str(s("comm")), Value::None];
        let mut out = Vec::new();
        let mut b = ValueBuilder::new(|id, v| out.push((id, v)));
        for (i, v) in values.iter().enumerate() {
            b.field(FieldId(i as u32));
            visit_value(v, &mut b);
        }
        assert!(!b.incomplete());
        drop(b);
        assert_eq!(out.len(), values.len());
        for (i, (id, v)) in out.iter().enumerate() {
            assert_eq!(*id, FieldId(i as u32));
            assert_eq!(v, &values[i]);
        }
    }

    #[test]
    fn an_incomplete_field_is_dropped_not_merged() {
        let mut out = Vec::new();
        let mut b = ValueBuilder::new(|id, v| out.push((id, v)));
        b.field(FieldId(0));
        b.begin_struct();
        b.member("a");
        b.uint(1);
        assert!(b.incomplete());
        b.field(FieldId(1));
        b.uint(2);
        drop(b);
        assert_eq!(out, vec![(FieldId(1), Value::UInt(2))]);
    }
}

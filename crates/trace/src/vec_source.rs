//! An in-memory [`EventSource`], for tests of analyses and for tools that synthesise events.

use std::borrow::Cow;

use crate::{
    ClassId, EventClass, EventHeader, EventSource, FieldDesc, FieldId, FieldKind, LostEvents,
    ReadStats, Scope, Step, Timestamp, TraceError, Value,
};

/// One literal event: its header data and its fields by name.
#[derive(Clone, Debug)]
pub struct VecEvent {
    pub ts: Timestamp,
    pub cpu: u32,
    pub name: String,
    pub fields: Vec<(String, Value<'static>)>,
}

/// Events given in time order (or loss notices), delivered as an [`EventSource`]. Classes are
/// made from the event names; a class's fields are the union of the names seen with it.
pub struct VecSource {
    classes: Vec<EventClass>,
    /// Each item: a class and one value per field of the class (absent → `Value::None`).
    items: Vec<Item>,
    next: usize,
    current: Option<usize>,
    stats: ReadStats,
}

enum Item {
    Event(EventHeader, Vec<Value<'static>>),
    Lost(LostEvents),
}

impl VecSource {
    pub fn new(events: Vec<VecEvent>) -> Self {
        Self::with_losses(events, Vec::new())
    }

    /// Events plus loss notices; both are delivered in timestamp order (losses first on ties).
    pub fn with_losses(events: Vec<VecEvent>, losses: Vec<LostEvents>) -> Self {
        let mut classes: Vec<EventClass> = Vec::new();
        for e in &events {
            let idx = match classes.iter().position(|c| c.name == e.name) {
                Some(i) => i,
                None => {
                    classes.push(EventClass {
                        name: e.name.clone(),
                        system: String::new(),
                        fields: Vec::new(),
                    });
                    classes.len() - 1
                }
            };
            for (name, v) in &e.fields {
                if classes[idx].field(name).is_none() {
                    classes[idx].fields.push(FieldDesc {
                        name: name.clone(),
                        scope: Scope::Payload,
                        kind: kind_of(v),
                    });
                }
            }
        }
        let mut timed: Vec<(Timestamp, u8, Item)> = Vec::new();
        for l in losses {
            timed.push((l.begin, 0, Item::Lost(l)));
        }
        for e in events {
            let ci = classes.iter().position(|c| c.name == e.name).unwrap();
            let class = &classes[ci];
            let mut values = vec![Value::None; class.fields.len()];
            for (name, v) in e.fields {
                let f = class.field(&name).unwrap();
                values[f.0 as usize] = v;
            }
            let header = EventHeader {
                ts: e.ts,
                cpu: e.cpu,
                stream: e.cpu,
                class: ClassId(ci as u32),
            };
            timed.push((e.ts, 1, Item::Event(header, values)));
        }
        timed.sort_by_key(|(ts, order, _)| (*ts, *order));
        VecSource {
            classes,
            items: timed.into_iter().map(|(_, _, i)| i).collect(),
            next: 0,
            current: None,
            stats: ReadStats::default(),
        }
    }

    fn current_value(&self, field: FieldId) -> Option<&Value<'static>> {
        match &self.items[self.current?] {
            Item::Event(_, values) => match values.get(field.0 as usize)? {
                Value::None => None,
                v => Some(v),
            },
            Item::Lost(_) => None,
        }
    }
}

fn kind_of(v: &Value) -> FieldKind {
    match v {
        Value::Bool(_) => FieldKind::Bool,
        Value::UInt(_) => FieldKind::UInt,
        Value::Int(_) => FieldKind::Int,
        Value::Float(_) => FieldKind::Float,
        Value::Str(_) => FieldKind::Str,
        Value::Bytes(_) => FieldKind::Bytes,
        Value::Enum(..) => FieldKind::Enum,
        _ => FieldKind::Compound,
    }
}

impl EventSource for VecSource {
    fn classes(&self) -> &[EventClass] {
        &self.classes
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        if self.next >= self.items.len() {
            self.current = None;
            return Ok(Step::End);
        }
        self.current = Some(self.next);
        self.next += 1;
        Ok(match &self.items[self.next - 1] {
            Item::Event(h, _) => {
                self.stats.events += 1;
                Step::Event(*h)
            }
            Item::Lost(l) => {
                self.stats.lost_notices += 1;
                self.stats.lost_events += l.count.unwrap_or(0);
                Step::Lost(*l)
            }
        })
    }

    fn u64(&self, field: FieldId) -> Option<u64> {
        self.current_value(field)?.as_u64()
    }
    fn i64(&self, field: FieldId) -> Option<i64> {
        self.current_value(field)?.as_i64()
    }
    fn str(&self, field: FieldId) -> Option<&str> {
        match self.current_value(field)? {
            Value::Str(Cow::Borrowed(s)) => Some(s),
            Value::Str(Cow::Owned(s)) => Some(s.as_str()),
            _ => None,
        }
    }
    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        self.current_value(field).cloned()
    }
    fn stats(&self) -> ReadStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Merge;

    fn ev(ts: i64, name: &str, tid: u64) -> VecEvent {
        VecEvent {
            ts,
            cpu: 0,
            name: name.into(),
            fields: vec![("tid".into(), Value::UInt(tid))],
        }
    }

    fn collect(src: &mut dyn EventSource) -> Vec<(i64, String, u64)> {
        let mut out = Vec::new();
        while let Step::Event(h) = src.advance().unwrap() {
            let name = src.classes()[h.class.0 as usize].name.clone();
            let f = src.field(h.class, "tid").unwrap();
            out.push((h.ts, name, src.u64(f).unwrap()));
        }
        out
    }

    #[test]
    fn vec_source_sorts_and_reads_fields() {
        let mut s = VecSource::new(vec![ev(20, "b", 2), ev(10, "a", 1)]);
        assert_eq!(
            collect(&mut s),
            vec![(10, "a".to_string(), 1), (20, "b".to_string(), 2)]
        );
    }

    #[test]
    fn merge_interleaves_and_remaps_classes() {
        let a = VecSource::new(vec![ev(1, "x", 1), ev(5, "x", 5)]);
        let b = VecSource::new(vec![ev(3, "y", 3), ev(5, "z", 6)]);
        let mut m = Merge::new(vec![Box::new(a), Box::new(b)]);
        assert_eq!(m.classes().len(), 3);
        assert_eq!(m.source_of(ClassId(0)), 0);
        assert_eq!(m.source_of(ClassId(2)), 1);
        let got = collect(&mut m);
        let names: Vec<_> = got.iter().map(|(t, n, v)| (*t, n.as_str(), *v)).collect();
        assert_eq!(
            names,
            vec![(1, "x", 1), (3, "y", 3), (5, "x", 5), (5, "z", 6)]
        );
        assert_eq!(m.stats().events, 4);
    }
}

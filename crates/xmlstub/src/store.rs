//! The compact form of a stub trace's events, built in the one pass at opening.
//!
//! Nothing of the XML is kept: an event is 24 bytes (timestamp, class, CPU, where its fields
//! are), a field 24 bytes (its id in the class and its value), and the variable-size values
//! live in two flat arenas, one string holding every string value and one vector every array
//! element. So memory is about the size of the events' values, well under the file's size,
//! and no value is decoded again when read.

use std::borrow::Cow;

use virtflow_trace::{Timestamp, Value};

/// One event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredEvent {
    pub ts: Timestamp,
    pub class: u32,
    pub cpu: u32,
    fields_start: u32,
    fields_len: u32,
}

/// One field's value; strings and arrays as ranges of the arenas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stored {
    Int(i64),
    Float(f64),
    Str { start: u32, len: u32 },
    Array { start: u32, len: u32 },
}

#[derive(Clone, Copy, Debug)]
struct StoredField {
    field: u32,
    value: Stored,
}

/// Where the arenas stood when an event began, to drop what a failed event left.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    fields: usize,
    strings: usize,
    ints: usize,
}

/// Every event of a trace and its values.
///
/// Indexes are `u32`: the reader refuses files of 4 GiB or more, and every field, string byte
/// and array element comes from at least one byte of the file.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub events: Vec<StoredEvent>,
    fields: Vec<StoredField>,
    strings: String,
    ints: Vec<i64>,
}

impl Store {
    /// Starts an event: its fields are those pushed until [`Store::finish_event`].
    pub fn mark(&self) -> Mark {
        Mark {
            fields: self.fields.len(),
            strings: self.strings.len(),
            ints: self.ints.len(),
        }
    }

    /// Drops the fields and values pushed since `mark` (an event that failed half-way).
    pub fn rewind(&mut self, mark: Mark) {
        self.fields.truncate(mark.fields);
        self.strings.truncate(mark.strings);
        self.ints.truncate(mark.ints);
    }

    pub fn push_str(&mut self, s: &str) -> Stored {
        let start = self.strings.len() as u32;
        self.strings.push_str(s);
        Stored::Str {
            start,
            len: s.len() as u32,
        }
    }

    /// The arena the caller appends an array's elements to; then [`Store::array_since`].
    pub fn ints_mut(&mut self) -> &mut Vec<i64> {
        &mut self.ints
    }

    /// The array made of the elements appended since the arena had `start` of them.
    pub fn array_since(&self, start: usize) -> Stored {
        Stored::Array {
            start: start as u32,
            len: (self.ints.len() - start) as u32,
        }
    }

    pub fn push_field(&mut self, field: u32, value: Stored) {
        self.fields.push(StoredField { field, value });
    }

    pub fn finish_event(&mut self, mark: Mark, ts: Timestamp, class: u32, cpu: u32) {
        self.events.push(StoredEvent {
            ts,
            class,
            cpu,
            fields_start: mark.fields as u32,
            fields_len: (self.fields.len() - mark.fields) as u32,
        });
    }

    /// The value of field `field` in `event`, if the event has it. Events have a handful of
    /// fields, so a scan is as fast as any index.
    pub fn field(&self, event: &StoredEvent, field: u32) -> Option<Stored> {
        let start = event.fields_start as usize;
        self.fields[start..start + event.fields_len as usize]
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.value)
    }

    pub fn str(&self, value: Stored) -> Option<&str> {
        match value {
            Stored::Str { start, len } => {
                Some(&self.strings[start as usize..(start + len) as usize])
            }
            _ => None,
        }
    }

    pub fn value(&self, value: Stored) -> Value<'_> {
        match value {
            Stored::Int(v) => Value::Int(v),
            Stored::Float(v) => Value::Float(v),
            Stored::Str { start, len } => Value::Str(Cow::Borrowed(
                &self.strings[start as usize..(start + len) as usize],
            )),
            Stored::Array { start, len } => Value::Array(
                self.ints[start as usize..(start + len) as usize]
                    .iter()
                    .map(|&v| Value::Int(v))
                    .collect(),
            ),
        }
    }

    /// Sorts the events by timestamp, keeping file order among equal ones (a stable sort).
    pub fn sort_by_time(&mut self) {
        self.events.sort_by_key(|e| e.ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_compact() {
        assert_eq!(std::mem::size_of::<StoredEvent>(), 24);
        assert_eq!(std::mem::size_of::<StoredField>(), 24);
    }

    #[test]
    fn a_rewound_event_leaves_nothing() {
        let mut s = Store::default();
        let m = s.mark();
        let v = s.push_str("kept");
        s.push_field(0, v);
        s.finish_event(m, 5, 0, 1);
        let m = s.mark();
        let v = s.push_str("dropped");
        s.push_field(0, v);
        s.ints_mut().push(3);
        s.rewind(m);
        assert_eq!(s.events.len(), 1);
        let e = s.events[0];
        assert_eq!(s.str(s.field(&e, 0).unwrap()), Some("kept"));
        assert_eq!(s.field(&e, 1), None);
        assert_eq!(s.mark().ints, 0);
        assert_eq!(s.mark().strings, 4);
    }
}

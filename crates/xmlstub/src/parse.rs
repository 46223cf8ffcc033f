//! The one pass over a stub trace at opening: quick-xml's streaming reader, element by element,
//! into the compact [`Store`], the event classes and the warnings.
//!
//! The walk keeps only the stack of open elements and the event being read. It follows the
//! schema — `<trace>`, then `<set_aspects>` of `<field>`s and `<event>`s of `<field>`s — and
//! skips anything else with a warning. A failure before the first complete event fails the
//! opening; a later one (a truncated file, a bad number further on) is kept to be returned after
//! the events read before it, as every reader of the project does.

use std::collections::HashMap;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use virtflow_trace::error::XmlError;
use virtflow_trace::{EventClass, EventHeader, FieldDesc, Scope, Timestamp, TraceError};

use crate::attrs::{self, AttrValue, Doc, Failure};
use crate::field_type::FieldType;
use crate::notes::Notes;
use crate::number;
use crate::store::{Mark, Store, Stored};

/// What the pass produced.
pub(crate) struct Parsed {
    pub classes: Vec<EventClass>,
    /// In time order.
    pub store: Store,
    pub warnings: Vec<String>,
    pub unknown_elements: u64,
    /// The failure that ended the pass after some events: to be returned after them.
    pub deferred: Option<TraceError>,
}

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Reads the stub trace `bytes`, whose errors name `path`.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed, TraceError> {
    let fail = |(offset, kind): Failure| TraceError::new(path, offset, kind);
    if bytes.len() as u64 >= u64::from(u32::MAX) {
        return Err(fail((
            0,
            XmlError::TooLarge {
                bytes: bytes.len() as u64,
            },
        )));
    }
    let (base, body) = match bytes.strip_prefix(BYTE_ORDER_MARK) {
        Some(body) => (BYTE_ORDER_MARK.len() as u64, body),
        None => (0, bytes),
    };
    // Checked here once, so that the offset of a bad byte is exact whatever markup holds it.
    let text = std::str::from_utf8(body)
        .map_err(|e| fail((base + e.valid_up_to() as u64, XmlError::NotUtf8)))?;
    let mut walk = Walk::new(path, Doc { text, base });
    let outcome = walk.run();
    walk.finish(outcome.map_err(fail))
}

/// Where an open element stands in the schema.
enum Place {
    Trace,
    SetAspects,
    Event,
    Field,
    /// Outside the schema, skipped with its content (its name, for an error at the end).
    Unknown(Box<str>),
}

impl Place {
    fn element(&self) -> &str {
        match self {
            Place::Trace => "trace",
            Place::SetAspects => "set_aspects",
            Place::Event => "event",
            Place::Field => "field",
            Place::Unknown(name) => name,
        }
    }
}

struct Open {
    place: Place,
    /// File offset of its start tag.
    at: u64,
}

/// The event whose `<field>`s are being read.
struct Building {
    ts: Timestamp,
    class: u32,
    cpu: u32,
    mark: Mark,
    at: u64,
    /// Numbers events from 1, to tell a field seen twice in this event ([`ClassBuild::seen_in`]).
    serial: u32,
}

/// A class as it grows: every field name its events use, in first-seen order.
struct ClassBuild {
    name: String,
    fields: Vec<FieldDesc>,
    /// The type each field had where first seen, which decided its kind.
    types: Vec<FieldType>,
    ids: HashMap<String, u32>,
    /// Per field, the serial of the last event that had it.
    seen_in: Vec<u32>,
}

struct Walk<'d> {
    doc: Doc<'d>,
    stack: Vec<Open>,
    root_at: Option<u64>,
    root_closed: bool,
    current: Option<Building>,
    serial: u32,
    classes: Vec<ClassBuild>,
    class_ids: HashMap<String, u32>,
    store: Store,
    notes: Notes,
    unknown_elements: u64,
    latest_ts: Option<Timestamp>,
    /// Events earlier than one before them, and where the first one is.
    out_of_order: u64,
    first_out_of_order: u64,
}

impl<'d> Walk<'d> {
    fn new(path: &'d Path, doc: Doc<'d>) -> Self {
        Walk {
            doc,
            stack: Vec::new(),
            root_at: None,
            root_closed: false,
            current: None,
            serial: 0,
            classes: Vec::new(),
            class_ids: HashMap::new(),
            store: Store::default(),
            notes: Notes::new(path),
            unknown_elements: 0,
            latest_ts: None,
            out_of_order: 0,
            first_out_of_order: 0,
        }
    }

    fn run(&mut self) -> Result<(), Failure> {
        let mut reader = Reader::from_str(self.doc.text);
        loop {
            let at = self.doc.base + reader.buffer_position();
            let event = reader.read_event().map_err(|e| {
                (
                    self.doc.base + reader.error_position(),
                    XmlError::Malformed {
                        message: e.to_string(),
                    },
                )
            })?;
            match event {
                Event::Start(tag) => self.open(&tag, at, false)?,
                Event::Empty(tag) => self.open(&tag, at, true)?,
                Event::End(_) => {
                    // quick-xml has checked that it closes the innermost open element.
                    if let Some(open) = self.stack.pop() {
                        self.leave(&open.place);
                    }
                }
                Event::Text(text) => {
                    let words = text.trim_start();
                    if !words.is_empty() {
                        self.text(at + (text.len() - words.len()) as u64)?;
                    }
                }
                Event::CData(_) | Event::GeneralRef(_) => self.text(at)?,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
                Event::Eof => return self.end(),
            }
        }
    }

    fn open(&mut self, tag: &BytesStart<'_>, at: u64, empty: bool) -> Result<(), Failure> {
        let name = tag.name();
        let name = name.as_ref();
        let place = match (self.stack.last().map(|o| &o.place), name) {
            (None, _) if self.root_closed => {
                return Err((
                    at,
                    XmlError::Malformed {
                        message: format!("a second root element, <{name}>, after </trace>"),
                    },
                ))
            }
            (None, "trace") => {
                self.root_at = Some(at);
                Place::Trace
            }
            (None, _) => {
                return Err((
                    at,
                    XmlError::NotAStubTrace {
                        root: Some(name.to_string()),
                    },
                ))
            }
            (Some(Place::Trace), "set_aspects") => Place::SetAspects,
            (Some(Place::Trace), "event") => {
                self.begin_event(tag, at)?;
                Place::Event
            }
            (Some(Place::SetAspects), "field") => {
                self.aspect(tag, at)?;
                Place::Field
            }
            (Some(Place::Event), "field") => {
                self.field(tag, at)?;
                Place::Field
            }
            // Inside a skipped element: only the outermost one is reported.
            (Some(Place::Unknown(_)), _) => Place::Unknown(name.into()),
            (Some(_), _) => {
                self.unknown_elements += 1;
                self.notes.add(
                    at,
                    XmlError::UnknownElement {
                        element: name.to_string(),
                    },
                );
                Place::Unknown(name.into())
            }
        };
        if empty {
            self.leave(&place);
        } else {
            self.stack.push(Open { place, at });
        }
        Ok(())
    }

    /// An element ends.
    fn leave(&mut self, place: &Place) {
        match place {
            Place::Trace => self.root_closed = true,
            Place::Event => self.finish_event(),
            _ => {}
        }
    }

    /// Non-blank text: the schema has none. Outside the root it is not XML at all.
    fn text(&mut self, at: u64) -> Result<(), Failure> {
        match self.stack.last() {
            None => Err((
                at,
                XmlError::Malformed {
                    message: "text outside the root element".into(),
                },
            )),
            Some(Open {
                place: Place::Unknown(_),
                ..
            }) => Ok(()),
            Some(open) => {
                let element = open.place.element().to_string();
                self.notes.add(at, XmlError::StrayText { element });
                Ok(())
            }
        }
    }

    fn end(&mut self) -> Result<(), Failure> {
        let file_end = self.doc.base + self.doc.text.len() as u64;
        if let Some(open) = self.stack.last() {
            return Err((
                file_end,
                XmlError::Unclosed {
                    element: open.place.element().to_string(),
                    opened_at: open.at,
                },
            ));
        }
        let Some(root_at) = self.root_at else {
            return Err((0, XmlError::NotAStubTrace { root: None }));
        };
        if self.store.events.is_empty() {
            return Err((root_at, XmlError::NoEvent));
        }
        Ok(())
    }

    fn begin_event(&mut self, tag: &BytesStart<'_>, at: u64) -> Result<(), Failure> {
        let [ts, name] = attrs::read(self.doc, tag, at, ["timestamp", "name"])?;
        let ts = required(ts, at, "event", "timestamp")?;
        let name = required(name, at, "event", "name")?;
        let value = number::long(&ts.text).ok_or_else(|| {
            (
                ts.offset,
                XmlError::BadTimestamp {
                    value: ts.text.to_string(),
                },
            )
        })?;
        let class = self.class_id(&name.text);
        self.serial += 1;
        self.current = Some(Building {
            ts: value,
            class,
            cpu: EventHeader::NO_CPU,
            mark: self.store.mark(),
            at,
            serial: self.serial,
        });
        Ok(())
    }

    fn class_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.class_ids.get(name) {
            return id;
        }
        let id = self.classes.len() as u32;
        self.classes.push(ClassBuild {
            name: name.to_string(),
            fields: Vec::new(),
            types: Vec::new(),
            ids: HashMap::new(),
            seen_in: Vec::new(),
        });
        self.class_ids.insert(name.to_string(), id);
        id
    }

    fn finish_event(&mut self) {
        let Some(b) = self.current.take() else {
            return;
        };
        if self.latest_ts.is_some_and(|latest| b.ts < latest) {
            if self.out_of_order == 0 {
                self.first_out_of_order = b.at;
            }
            self.out_of_order += 1;
        } else {
            self.latest_ts = Some(b.ts);
        }
        self.store.finish_event(b.mark, b.ts, b.class, b.cpu);
    }

    /// A `<field>` of `<set_aspects>`: it declares an aspect of the trace, whose value Trace
    /// Compass ignores too. Checked against the schema, then passed over.
    fn aspect(&mut self, tag: &BytesStart<'_>, at: u64) -> Result<(), Failure> {
        let [name, value, ty] = attrs::read(self.doc, tag, at, ["name", "value", "type"])?;
        required(name, at, "field", "name")?;
        required(value, at, "field", "value")?;
        field_type(required(ty, at, "field", "type")?)?;
        Ok(())
    }

    /// A `<field>` of an `<event>`: its value goes into the store, and its name into the
    /// event's class if the class did not have it yet.
    fn field(&mut self, tag: &BytesStart<'_>, at: u64) -> Result<(), Failure> {
        let [name, value, ty] = attrs::read(self.doc, tag, at, ["name", "value", "type"])?;
        let name = required(name, at, "field", "name")?;
        let value = required(value, at, "field", "value")?;
        let ty = field_type(required(ty, at, "field", "type")?)?;
        let Some(event) = self.current.as_mut() else {
            return Ok(());
        };
        let before = self.store.mark();
        let stored = store_value(&mut self.store, &name.text, &value, ty)?;

        let class = &mut self.classes[event.class as usize];
        let id = match class.ids.get(name.text.as_ref()) {
            Some(&id) => id,
            None => {
                let id = class.fields.len() as u32;
                class.fields.push(FieldDesc {
                    name: name.text.to_string(),
                    scope: Scope::Payload,
                    kind: ty.kind(),
                });
                class.types.push(ty);
                class.ids.insert(name.text.to_string(), id);
                class.seen_in.push(0);
                id
            }
        };
        if class.seen_in[id as usize] == event.serial {
            self.store.rewind(before);
            self.notes.add(
                name.offset,
                XmlError::DuplicateField {
                    event: class.name.clone(),
                    field: name.text.to_string(),
                },
            );
            return Ok(());
        }
        class.seen_in[id as usize] = event.serial;
        let first = class.types[id as usize];
        if first.kind() != ty.kind() {
            self.notes.add(
                at,
                XmlError::TypeConflict {
                    event: class.name.clone(),
                    field: name.text.to_string(),
                    first: first.name(),
                    now: ty.name(),
                },
            );
        }
        if name.text == "cpu" {
            match stored {
                Stored::Int(cpu) if (0..i64::from(EventHeader::NO_CPU)).contains(&cpu) => {
                    event.cpu = cpu as u32;
                }
                _ => self.notes.add(
                    value.offset,
                    XmlError::BadCpu {
                        value: value.text.to_string(),
                    },
                ),
            }
        }
        self.store.push_field(id, stored);
        Ok(())
    }

    /// Classes, events in time order and warnings, or the failure; a failure after some
    /// events is kept for after them.
    fn finish(mut self, outcome: Result<(), TraceError>) -> Result<Parsed, TraceError> {
        let deferred = match outcome {
            Ok(()) => None,
            Err(e) if self.store.events.is_empty() => return Err(e),
            Err(e) => {
                if let Some(half_read) = self.current.take() {
                    self.store.rewind(half_read.mark);
                }
                Some(e)
            }
        };
        if self.out_of_order > 0 {
            self.store.sort_by_time();
            self.notes.add(
                self.first_out_of_order,
                XmlError::EventsOutOfOrder {
                    count: self.out_of_order,
                },
            );
        }
        Ok(Parsed {
            classes: self
                .classes
                .into_iter()
                .map(|c| EventClass {
                    name: c.name,
                    system: String::new(),
                    fields: c.fields,
                })
                .collect(),
            store: self.store,
            warnings: self.notes.into_warnings(),
            unknown_elements: self.unknown_elements,
            deferred,
        })
    }
}

fn required<'t>(
    attr: Option<AttrValue<'t>>,
    at: u64,
    element: &'static str,
    attribute: &'static str,
) -> Result<AttrValue<'t>, Failure> {
    attr.ok_or((at, XmlError::MissingAttribute { element, attribute }))
}

fn field_type(ty: AttrValue<'_>) -> Result<FieldType, Failure> {
    FieldType::from_name(&ty.text).ok_or_else(|| {
        (
            ty.offset,
            XmlError::UnknownType {
                ty: ty.text.to_string(),
            },
        )
    })
}

/// Parses `value` as a `ty` and stores it: numbers in place, strings and arrays in the arenas.
fn store_value(
    store: &mut Store,
    field: &str,
    value: &AttrValue<'_>,
    ty: FieldType,
) -> Result<Stored, Failure> {
    let bad = || {
        (
            value.offset,
            XmlError::BadNumber {
                field: field.to_string(),
                value: value.text.to_string(),
                ty: ty.name(),
            },
        )
    };
    match ty {
        FieldType::Int => number::int(&value.text).map(Stored::Int).ok_or_else(bad),
        FieldType::Long => number::long(&value.text).map(Stored::Int).ok_or_else(bad),
        FieldType::Double => number::double(&value.text)
            .map(Stored::Float)
            .ok_or_else(bad),
        FieldType::String => Ok(store.push_str(&value.text)),
        FieldType::IntArray | FieldType::LongArray => {
            let start = store.ints_mut().len();
            if number::array(&value.text, ty == FieldType::IntArray, store.ints_mut()) {
                Ok(store.array_since(start))
            } else {
                Err(bad())
            }
        }
    }
}

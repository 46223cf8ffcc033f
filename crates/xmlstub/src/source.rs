//! `XmlSource`: a stub trace read at opening, served through the `EventSource` cursor.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use virtflow_trace::{
    ClassId, EventClass, EventHeader, EventSource, FieldId, PassedOver, ReadStats, Step, Timestamp,
    TraceError, Value,
};

use crate::parse::{self, Parsed};
use crate::store::{Store, Stored, StoredEvent};

/// A Trace Compass XML stub trace as an event source.
///
/// The file is read once, at opening, in one streaming pass into compact events (the XML
/// itself is not kept: stub traces are small test traces, and reading them whole is what lets
/// events written out of order be sorted); the cursor then walks them in time order.
///
/// - One stream (0). The CPU of an event is its `cpu` field, which stays a field too; an event
///   without one has [`EventHeader::NO_CPU`]. The host is the file's name, as Trace Compass
///   names a stub trace's host.
/// - Values: `int` and `long` read through `u64`/`i64` (and `value` as `Value::Int`), `string`
///   through `str`, `double` as `Value::Float`, arrays as `Value::Array` of `Value::Int`.
/// - [`ReadStats`]: events as the cursor passes them, elements outside the schema in
///   `unknown_events`, and the warnings of the pass.
/// - A failure met after some complete events (a truncated file) comes from
///   [`EventSource::advance`] once those events are delivered; one met before fails the
///   opening, and so does a trace without events.
/// - [`EventSource::set_interest`] and [`EventSource::seek`] are honoured.
pub struct XmlSource {
    path: PathBuf,
    classes: Vec<EventClass>,
    store: Store,
    /// Index of the next event in `store.events`.
    next: usize,
    current: Option<StoredEvent>,
    /// Per class, whether the caller reads it (`None`: every class).
    interest: Option<Vec<bool>>,
    /// The CPUs an event of a class nobody reads was announced on (the first of each is), and
    /// the events passed over.
    shown: HashSet<u32>,
    passed: PassedOver,
    /// The failure that ended the reading, returned once the events before it are delivered.
    deferred: Option<TraceError>,
    stats: ReadStats,
}

impl XmlSource {
    /// Reads the stub trace at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<XmlSource, TraceError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| TraceError::io(path, e))?;
        XmlSource::from_bytes(path, &bytes)
    }

    /// Reads a stub trace held in memory; `name` stands for its file in errors, and its last
    /// component is the host name.
    pub fn from_bytes(name: impl AsRef<Path>, bytes: &[u8]) -> Result<XmlSource, TraceError> {
        let path = name.as_ref();
        let Parsed {
            classes,
            store,
            warnings,
            unknown_elements,
            deferred,
        } = parse::parse(path, bytes)?;
        Ok(XmlSource {
            path: path.to_path_buf(),
            classes,
            store,
            next: 0,
            current: None,
            interest: None,
            shown: HashSet::new(),
            passed: PassedOver::default(),
            deferred,
            stats: ReadStats {
                unknown_events: unknown_elements,
                warnings,
                ..ReadStats::default()
            },
        })
    }

    /// How many events the file holds (those before a deferred failure).
    pub fn len(&self) -> usize {
        self.store.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.events.is_empty()
    }

    fn current_field(&self, field: FieldId) -> Option<Stored> {
        self.store.field(self.current.as_ref()?, field.0)
    }
}

impl EventSource for XmlSource {
    fn classes(&self) -> &[EventClass] {
        &self.classes
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        self.current = None;
        while let Some(&event) = self.store.events.get(self.next) {
            self.next += 1;
            self.stats.events += 1;
            let wanted = self
                .interest
                .as_ref()
                .is_none_or(|w| w.get(event.class as usize).copied().unwrap_or(false));
            // Its CPU's first event of a class nobody reads is announced.
            if wanted || self.shown.insert(event.cpu) {
                self.current = Some(event);
                return Ok(Step::Event(EventHeader {
                    ts: event.ts,
                    cpu: event.cpu,
                    stream: 0,
                    class: ClassId(event.class),
                }));
            }
            self.passed.add(event.ts);
        }
        match self.deferred.take() {
            Some(e) => Err(e),
            None => Ok(Step::End),
        }
    }

    fn u64(&self, field: FieldId) -> Option<u64> {
        match self.current_field(field)? {
            Stored::Int(v) => Some(v as u64),
            _ => None,
        }
    }

    fn i64(&self, field: FieldId) -> Option<i64> {
        match self.current_field(field)? {
            Stored::Int(v) => Some(v),
            _ => None,
        }
    }

    fn str(&self, field: FieldId) -> Option<&str> {
        self.store.str(self.current_field(field)?)
    }

    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        Some(self.store.value(self.current_field(field)?))
    }

    fn stats(&self) -> ReadStats {
        self.stats.clone()
    }

    fn hostname(&self) -> Option<String> {
        Some(self.path.file_name()?.to_string_lossy().into_owned())
    }

    /// Events are in time order: a binary search finds the first at or after `ts`.
    fn seek(&mut self, ts: Timestamp) -> Result<bool, TraceError> {
        self.next = self.store.events.partition_point(|e| e.ts < ts);
        self.current = None;
        Ok(true)
    }

    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        self.interest = virtflow_trace::interest_table(self.classes.len(), classes);
    }

    fn passed_over(&self, host: usize) -> PassedOver {
        self.passed.of_host(host)
    }
}

//! The raw-event interface every trace reader offers and every analysis consumes.
//!
//! Principal types:
//!
//! - [`EventSource`]: a cursor over one trace (or several merged), in time order. It is opened
//!   once; [`EventSource::classes`] lists the [`EventClass`]es it can produce, and an analysis
//!   resolves the fields it needs to [`FieldId`]s once, with [`EventSource::field`]. Then it
//!   calls [`EventSource::advance`] in a loop: each call yields a [`Step`] — an event's
//!   [`EventHeader`] (timestamp, CPU, class), a [`LostEvents`] notice, or the end — and the
//!   current event's fields are read through the typed accessors (`u64`, `i64`, `str`…)
//!   without allocating. [`EventSource::value`] gives the full [`Value`] tree, for `dump`.
//! - [`TraceError`]: every reader error names the file and the byte offset where it happened.
//! - [`ReadStats`]: what a reader had to count rather than drop silently: lost events,
//!   truncated packets, events of unknown classes, warnings.
//! - [`Merge`]: merges several sources (several traces, or several hosts) into one, in
//!   timestamp order, remapping class ids; as an experiment, each source belongs to a host
//!   and its timestamps go through its [`Clock`] onto the reference clock.
//! - [`VecSource`]: an in-memory source built from literal events, for tests of analyses.
//! - [`FieldVisitor`]: receives a whole event's fields as the reader decodes them, without
//!   building [`Value`]s ([`EventSource::visit_fields`]): how `dump` writes events; see [`visit`]
//!   and, for the `dump` text form, [`text`].
//! - [`Window`]: only the events of a time window, for every command's `--begin`/`--end`.
//! - [`drain`]: reading a whole source the two ways the benchmarks measure.
//!
//! Readers (`virtflow-ctf`, `virtflow-ftrace`) implement [`EventSource`]; the analyses only
//! ever see this trait, so every analysis works on every format.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

mod clock;
pub mod drain;
pub mod error;
pub mod escape;
mod merge;
pub mod text;
mod until_error;
mod vec_source;
pub mod visit;
mod window;

pub use clock::{Clock, Offset};
pub use error::{ErrorKind, TraceError};
pub use merge::{Member, Merge};
pub use until_error::UntilError;
pub use vec_source::{VecEvent, VecSource};
pub use visit::{FieldVisitor, ValueBuilder};
pub use window::{Bound, Window};

/// Nanoseconds on the trace's clock, with the clock's offset applied (for most traces: since
/// the Unix epoch, or since boot when the tracer recorded no offset).
pub type Timestamp = i64;

/// Index of an event class in [`EventSource::classes`]; dense, starting at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub u32);

/// Index of a field in its class's [`EventClass::fields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u32);

/// Where a field lives in the event. `dump` prints every scope but the event header; layouts
/// look a field up by name whatever its scope (a `tid` may be a context or a payload field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// CTF packet context (e.g. `cpu_id`), repeated in every event of the packet.
    PacketContext,
    /// CTF stream event context, or ftrace/perf common fields (`common_pid`…).
    Common,
    /// CTF event-specific context.
    Context,
    /// The event's own payload.
    Payload,
}

/// What kind of value a field holds, as declared by the trace's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    Bool,
    UInt,
    Int,
    Float,
    Str,
    Bytes,
    Enum,
    /// Structures, arrays, sequences, variants, optionals.
    Compound,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDesc {
    pub name: String,
    pub scope: Scope,
    pub kind: FieldKind,
}

/// One kind of event a source can produce, e.g. `sched_switch` of one CTF stream class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventClass {
    pub name: String,
    /// The tracer's system or provider when it has one (`sched`, `kvm`…), else empty.
    pub system: String,
    pub fields: Vec<FieldDesc>,
}

impl EventClass {
    /// Whether its events are side-band records: what a tool writes of the processes it
    /// found (perf's `perf_comm`, `perf_fork`, `perf_mmap`…, the synthesized ones at time 0),
    /// whose times say nothing of when the trace starts.
    pub fn is_sideband(&self) -> bool {
        self.name.starts_with("perf_")
    }

    pub fn field(&self, name: &str) -> Option<FieldId> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .map(|i| FieldId(i as u32))
    }
}

/// The fixed part of an event: everything but its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    pub ts: Timestamp,
    /// The CPU that recorded the event, or [`EventHeader::NO_CPU`].
    pub cpu: u32,
    /// Index of the stream (per-CPU buffer, CTF data stream file…) in the source, for `dump`.
    pub stream: u32,
    pub class: ClassId,
}

impl EventHeader {
    pub const NO_CPU: u32 = u32::MAX;
}

/// Events the tracer could not record: a ring buffer overrun, CTF `events_discarded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LostEvents {
    /// Where the loss is known to have happened: the loss lies in `[begin, end]`.
    pub begin: Timestamp,
    pub end: Timestamp,
    pub cpu: u32,
    pub stream: u32,
    /// How many events were lost; `None` when the tracer only says "some".
    pub count: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Event(EventHeader),
    Lost(LostEvents),
    End,
}

/// A field value, for `dump` and for the rare analysis that needs a compound field.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    /// An enumeration: its integer value and the labels whose ranges contain it (possibly none).
    Enum(Box<Value<'a>>, Vec<Cow<'a, str>>),
    Array(Vec<Value<'a>>),
    Struct(Vec<(Cow<'a, str>, Value<'a>)>),
    /// A variant: the selected option's name and its value.
    Variant(Cow<'a, str>, Box<Value<'a>>),
    /// An absent optional.
    None,
}

impl Value<'_> {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::UInt(v) => Some(*v),
            Value::Int(v) => Some(*v as u64),
            Value::Bool(b) => Some(*b as u64),
            Value::Enum(v, _) => v.as_u64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::UInt(v) => Some(*v as i64),
            Value::Int(v) => Some(*v),
            Value::Bool(b) => Some(*b as i64),
            Value::Enum(v, _) => v.as_i64(),
            _ => None,
        }
    }

    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Bool(b) => Value::Bool(b),
            Value::UInt(v) => Value::UInt(v),
            Value::Int(v) => Value::Int(v),
            Value::Float(v) => Value::Float(v),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Enum(v, l) => Value::Enum(
                Box::new(v.into_owned()),
                l.into_iter().map(|s| Cow::Owned(s.into_owned())).collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(Value::into_owned).collect()),
            Value::Struct(s) => Value::Struct(
                s.into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            ),
            Value::Variant(n, v) => {
                Value::Variant(Cow::Owned(n.into_owned()), Box::new(v.into_owned()))
            }
            Value::None => Value::None,
        }
    }
}

impl fmt::Display for Value<'_> {
    /// The `dump` text form: integers in decimal, strings quoted, compounds in braces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => {
                f.write_str("0x")?;
                for x in b.iter() {
                    write!(f, "{x:02x}")?;
                }
                Ok(())
            }
            Value::Enum(v, labels) => {
                write!(f, "{v}")?;
                if !labels.is_empty() {
                    f.write_str("(")?;
                    for (i, l) in labels.iter().enumerate() {
                        if i > 0 {
                            f.write_str("|")?;
                        }
                        f.write_str(l)?;
                    }
                    f.write_str(")")?;
                }
                Ok(())
            }
            Value::Array(a) => {
                f.write_str("[")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Struct(s) => {
                f.write_str("{")?;
                for (i, (k, v)) in s.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, " {k}={v}")?;
                }
                f.write_str(" }")
            }
            Value::Variant(n, v) => write!(f, "<{n}>{v}"),
            Value::None => f.write_str("none"),
        }
    }
}

/// What a reader counted instead of dropping: shown by `dump` and by every report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReadStats {
    pub events: u64,
    /// Events the tracer reported lost (sum of known counts).
    pub lost_events: u64,
    /// Loss notices, including those without a count.
    pub lost_notices: u64,
    pub truncated_packets: u64,
    /// Events whose class the metadata does not describe (skipped, counted).
    pub unknown_events: u64,
    /// Other things worth telling the user, already phrased for them.
    pub warnings: Vec<String>,
}

/// What a source passed over under an interest ([`EventSource::set_interest`]): events of
/// classes nobody reads, never announced. What an analysis takes from every event, decoded or
/// not — how many there are, where the trace ends — it finishes with these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassedOver {
    pub events: u64,
    /// The latest time among them (`None`: none passed over).
    pub last: Option<Timestamp>,
}

impl PassedOver {
    /// One more event passed over, at `ts`.
    #[inline]
    pub fn add(&mut self, ts: Timestamp) {
        self.events += 1;
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
    }

    /// Both counts together (two streams' of one host, say).
    pub fn merge(&mut self, other: PassedOver) {
        self.events += other.events;
        self.last = self.last.max(other.last);
    }

    /// What a source of one host passed over, as [`EventSource::passed_over`] gives it for
    /// `host`: all of it for host 0, nothing for another.
    pub fn of_host(self, host: usize) -> PassedOver {
        if host == 0 {
            self
        } else {
            PassedOver::default()
        }
    }
}

/// An interest ([`EventSource::set_interest`]) as a table by class of `classes` classes:
/// whether each is read (`None`: every class). Ids past the table are ignored.
pub fn interest_table(classes: usize, interest: Option<&[ClassId]>) -> Option<Vec<bool>> {
    interest.map(|ids| {
        let mut read = vec![false; classes];
        for id in ids {
            if let Some(r) = read.get_mut(id.0 as usize) {
                *r = true;
            }
        }
        read
    })
}

/// A cursor over the events of a trace, in time order. See the crate documentation.
///
/// Field accessors read the *current* event, the one the last [`Step::Event`] announced; they
/// return `None` when the field is absent from this event or does not convert.
pub trait EventSource {
    /// Every class this source can produce; a [`ClassId`] indexes this slice.
    fn classes(&self) -> &[EventClass];

    /// Moves to the next event or loss notice. After an error, the source is finished: the
    /// events before it have been delivered, and further calls return [`Step::End`].
    fn advance(&mut self) -> Result<Step, TraceError>;

    /// Integer, boolean or enumeration field as `u64` (signed values are reinterpreted).
    fn u64(&self, field: FieldId) -> Option<u64>;

    /// Integer, boolean or enumeration field as `i64` (unsigned values are reinterpreted).
    fn i64(&self, field: FieldId) -> Option<i64>;

    /// String field; byte strings that are not UTF-8 are returned lossily converted by
    /// [`EventSource::value`] but `None` here.
    fn str(&self, field: FieldId) -> Option<&str>;

    /// The field's full value (allocates for compound values).
    fn value(&self, field: FieldId) -> Option<Value<'_>>;

    /// Every field of the current event, of class `class`, in the order of
    /// [`EventClass::fields`], each with its full value. Readers that decode sequentially do it
    /// in one pass over the event instead of locating each field: this is how to read whole
    /// events (`dump`, full decoding). Fields that [`EventSource::value`] would not give are
    /// left out.
    fn for_each_value(&self, class: ClassId, f: &mut dyn FnMut(FieldId, Value<'_>)) {
        let n = self
            .classes()
            .get(class.0 as usize)
            .map_or(0, |c| c.fields.len());
        for i in 0..n {
            if let Some(v) = self.value(FieldId(i as u32)) {
                f(FieldId(i as u32), v);
            }
        }
    }

    /// Every field of the current event, of class `class`, pushed into `to` as the reader
    /// decodes it, in the order of [`EventClass::fields`]: the fastest way to read whole events
    /// (`dump`, the decoding benchmark), since no [`Value`] is built. An announced event the
    /// reader then finds it cannot decode is an error naming the file and offset. The default
    /// goes through [`EventSource::for_each_value`].
    fn visit_fields(&self, class: ClassId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        self.for_each_value(class, &mut |id, v| {
            to.field(id);
            visit::visit_value(&v, to);
        });
        Ok(())
    }

    /// One field of the current event pushed into `to` (with its [`FieldVisitor::field`]
    /// call), as [`EventSource::visit_fields`] would push it: a compound field read without
    /// building its [`Value`] nor decoding the others. The default goes through
    /// [`EventSource::value`].
    fn visit_field(&self, field: FieldId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        if let Some(v) = self.value(field) {
            to.field(field);
            visit::visit_value(&v, to);
        }
        Ok(())
    }

    /// What the reader counted so far.
    fn stats(&self) -> ReadStats;

    /// Resolve a field of a class by name (do it once per class, not per event).
    fn field(&self, class: ClassId, name: &str) -> Option<FieldId> {
        self.classes().get(class.0 as usize)?.field(name)
    }

    /// Find classes by name (a name may occur in several CTF stream classes).
    fn classes_named(&self, name: &str) -> Vec<ClassId> {
        self.classes()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == name)
            .map(|(i, _)| ClassId(i as u32))
            .collect()
    }

    /// Approximate progress, for progress bars: (bytes consumed, total bytes), when known.
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }

    /// Host or trace name, when the trace records one (CTF `env.hostname`, …).
    fn hostname(&self) -> Option<String> {
        None
    }

    /// Moves so that the next [`EventSource::advance`] gives the first event at or after `ts`
    /// (and the loss notices that end at or after it). Returns false, having moved nothing,
    /// when the source cannot seek: the caller then reads from where it is and skips. Readers
    /// with an index (CTF's LTTng index) seek without reading what they pass over.
    fn seek(&mut self, ts: Timestamp) -> Result<bool, TraceError> {
        let _ = ts;
        Ok(false)
    }

    /// The hosts whose events this source gives (an experiment of several traces names one per
    /// host); a single trace is one host, named by [`EventSource::hostname`] when it says.
    fn hosts(&self) -> Vec<String> {
        vec![self.hostname().unwrap_or_default()]
    }

    /// The host (an index into [`EventSource::hosts`]) of the step the last
    /// [`EventSource::advance`] gave.
    fn host(&self) -> usize {
        0
    }

    /// Declares the only classes the caller will read (`None`, the default: every class). The
    /// source may then pass over the events of the other classes without announcing them —
    /// they still count in [`ReadStats::events`] — which is how a reader of a handful of
    /// classes avoids paying for the rest. Loss notices are announced whatever the interest.
    /// Call it before the first [`EventSource::advance`]; sources that cannot filter ignore it.
    ///
    /// The first event of a class outside the interest on each CPU (in each stream, for a
    /// reader of streams) is still announced: so what is announced shows when the trace
    /// starts and when each CPU first appears, in any class; [`EventSource::passed_over`]
    /// tells the rest.
    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        let _ = classes;
    }

    /// What the source passed over so far under its interest, of host `host` (an index into
    /// [`EventSource::hosts`]), its times on the clock of the announced events. Nothing, for
    /// a source that announces every event.
    fn passed_over(&self, host: usize) -> PassedOver {
        let _ = host;
        PassedOver::default()
    }
}

impl<S: EventSource + ?Sized> EventSource for Box<S> {
    fn classes(&self) -> &[EventClass] {
        (**self).classes()
    }
    fn advance(&mut self) -> Result<Step, TraceError> {
        (**self).advance()
    }
    fn u64(&self, field: FieldId) -> Option<u64> {
        (**self).u64(field)
    }
    fn i64(&self, field: FieldId) -> Option<i64> {
        (**self).i64(field)
    }
    fn str(&self, field: FieldId) -> Option<&str> {
        (**self).str(field)
    }
    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        (**self).value(field)
    }
    fn for_each_value(&self, class: ClassId, f: &mut dyn FnMut(FieldId, Value<'_>)) {
        (**self).for_each_value(class, f)
    }
    fn visit_fields(&self, class: ClassId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        (**self).visit_fields(class, to)
    }
    fn visit_field(&self, field: FieldId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        (**self).visit_field(field, to)
    }
    fn stats(&self) -> ReadStats {
        (**self).stats()
    }
    fn progress(&self) -> Option<(u64, u64)> {
        (**self).progress()
    }
    fn hostname(&self) -> Option<String> {
        (**self).hostname()
    }
    fn hosts(&self) -> Vec<String> {
        (**self).hosts()
    }
    fn host(&self) -> usize {
        (**self).host()
    }
    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        (**self).set_interest(classes)
    }
    fn passed_over(&self, host: usize) -> PassedOver {
        (**self).passed_over(host)
    }
    fn seek(&mut self, ts: Timestamp) -> Result<bool, TraceError> {
        (**self).seek(ts)
    }
}

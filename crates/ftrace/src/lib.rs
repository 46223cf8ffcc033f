//! ftrace-family readers: trace-cmd `.dat`, ftrace text and `perf.data`, all offered through
//! the [`virtflow_trace::EventSource`] interface.
//!
//! Principal items:
//!
//! - [`format`]: parser of tracefs event `format` descriptions ([`format::EventFormat`],
//!   [`format::FormatField`], [`format::FieldLayout`]), shared by the `.dat` and perf readers.
//! - [`record`]: decoding a tracepoint record's fields with its format, without allocating
//!   ([`record::read_u64`], [`record::read_str`]…), and the [`virtflow_trace::EventClass`] of
//!   a format ([`record::event_class`]).
//! - [`DatSource`] (module [`dat`]): trace-cmd `.dat` v6/v7 reader.
pub mod dat;
pub mod format;
pub mod record;

pub use dat::DatSource;
use virtflow_trace::{EventClass, EventSource, FieldId, ReadStats, Step, TraceError, Value};
pub struct PerfSource;

impl PerfSource {
    pub fn open(path: &std::path::Path) -> Result<Self, TraceError> {
        Err(TraceError::new(
            path,
            0,
            "perf.data reader not implemented yet",
        ))
    }
}

impl EventSource for PerfSource {
    fn classes(&self) -> &[EventClass] {
        &[]
    }
    fn advance(&mut self) -> Result<Step, TraceError> {
        Ok(Step::End)
    }
    fn u64(&self, _: FieldId) -> Option<u64> {
        None
    }
    fn i64(&self, _: FieldId) -> Option<i64> {
        None
    }
    fn str(&self, _: FieldId) -> Option<&str> {
        None
    }
    fn value(&self, _: FieldId) -> Option<Value<'_>> {
        None
    }
    fn stats(&self) -> ReadStats {
        ReadStats::default()
    }
}
pub struct TextSource;

impl TextSource {
    pub fn open(path: &std::path::Path) -> Result<Self, TraceError> {
        Err(TraceError::new(
            path,
            0,
            "ftrace text reader not implemented yet",
        ))
    }
}

impl EventSource for TextSource {
    fn classes(&self) -> &[EventClass] {
        &[]
    }
    fn advance(&mut self) -> Result<Step, TraceError> {
        Ok(Step::End)
    }
    fn u64(&self, _: FieldId) -> Option<u64> {
        None
    }
    fn i64(&self, _: FieldId) -> Option<i64> {
        None
    }
    fn str(&self, _: FieldId) -> Option<&str> {
        None
    }
    fn value(&self, _: FieldId) -> Option<Value<'_>> {
        None
    }
    fn stats(&self) -> ReadStats {
        ReadStats::default()
    }
}

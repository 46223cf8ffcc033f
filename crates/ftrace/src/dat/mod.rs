//! trace-cmd `.dat` reader (in progress).
use virtflow_trace::{EventClass, EventSource, FieldId, ReadStats, Step, TraceError, Value};

pub struct DatSource;

impl DatSource {
    pub fn open(path: &std::path::Path) -> Result<Self, TraceError> {
        Err(TraceError::new(
            path,
            0,
            "trace-cmd reader not implemented yet",
        ))
    }
}

impl EventSource for DatSource {
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

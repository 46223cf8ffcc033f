//! A source that announces every event whatever the interest: what a pass over a reader that
//! cannot filter sees, to compare with the same pass over a reader that passes over the
//! classes it is told nobody reads.

use virtflow_trace::{
    ClassId, EventClass, EventSource, FieldId, FieldVisitor, ReadStats, Step, Timestamp,
    TraceError, Value,
};

/// `inner`, with [`EventSource::set_interest`] ignored.
pub struct EveryEvent<S>(pub S);

impl<S: EventSource> EventSource for EveryEvent<S> {
    fn classes(&self) -> &[EventClass] {
        self.0.classes()
    }
    fn advance(&mut self) -> Result<Step, TraceError> {
        self.0.advance()
    }
    fn u64(&self, field: FieldId) -> Option<u64> {
        self.0.u64(field)
    }
    fn i64(&self, field: FieldId) -> Option<i64> {
        self.0.i64(field)
    }
    fn str(&self, field: FieldId) -> Option<&str> {
        self.0.str(field)
    }
    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        self.0.value(field)
    }
    fn for_each_value(&self, class: ClassId, f: &mut dyn FnMut(FieldId, Value<'_>)) {
        self.0.for_each_value(class, f)
    }
    fn visit_fields(&self, class: ClassId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        self.0.visit_fields(class, to)
    }
    fn visit_field(&self, field: FieldId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        self.0.visit_field(field, to)
    }
    fn stats(&self) -> ReadStats {
        self.0.stats()
    }
    fn progress(&self) -> Option<(u64, u64)> {
        self.0.progress()
    }
    fn hostname(&self) -> Option<String> {
        self.0.hostname()
    }
    fn hosts(&self) -> Vec<String> {
        self.0.hosts()
    }
    fn host(&self) -> usize {
        self.0.host()
    }
    fn seek(&mut self, ts: Timestamp) -> Result<bool, TraceError> {
        self.0.seek(ts)
    }
}

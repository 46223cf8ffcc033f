// NOTE TO THE ENGINEER OF THIS CRATE (delete this block when you replace the stub):
// The placeholders EOF_PLACEHOLDER / EOF_COMMON in your task were meant to hold the texts
// in /tmp/issue2.txt (the issue) and /tmp/common.md (house rules: own CARGO_TARGET_DIR,
// no git commands that change state, etc.). Read both files now.
//! CTF reader (in progress).
use virtflow_trace::{EventClass, EventSource, FieldId, ReadStats, Step, TraceError, Value};
pub struct CtfSource;

impl CtfSource {
    pub fn open(path: &std::path::Path) -> Result<Self, TraceError> {
        Err(TraceError::new(path, 0, "CTF reader not implemented yet"))
    }
}

impl EventSource for CtfSource {
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

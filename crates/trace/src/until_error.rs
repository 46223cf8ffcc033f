//! A source that ends at its first error instead of failing, keeping the error and how many
//! events came before it: an analysis of a trace with a damaged tail gives the results of what
//! comes before the damage, and says where reading stopped.

use crate::{EventSource, TraceError};

/// A source that ends at its first error instead of failing, keeping the error: the
/// analysis of a trace with a damaged tail gives the results of what comes before it.
pub struct UntilError {
    inner: Box<dyn EventSource>,
    /// The error that ended the source, if one did.
    pub error: Option<TraceError>,
    /// Events delivered before it.
    pub delivered: u64,
}

impl UntilError {
    pub fn new(inner: Box<dyn EventSource>) -> UntilError {
        UntilError {
            inner,
            error: None,
            delivered: 0,
        }
    }
}

impl EventSource for UntilError {
    fn classes(&self) -> &[crate::EventClass] {
        self.inner.classes()
    }
    #[inline]
    fn advance(&mut self) -> Result<crate::Step, TraceError> {
        if self.error.is_some() {
            return Ok(crate::Step::End);
        }
        match self.inner.advance() {
            Ok(step) => {
                if matches!(step, crate::Step::Event(_)) {
                    self.delivered += 1;
                }
                Ok(step)
            }
            Err(e) => {
                self.error = Some(e);
                Ok(crate::Step::End)
            }
        }
    }
    #[inline]
    fn u64(&self, field: crate::FieldId) -> Option<u64> {
        self.inner.u64(field)
    }
    #[inline]
    fn i64(&self, field: crate::FieldId) -> Option<i64> {
        self.inner.i64(field)
    }
    #[inline]
    fn str(&self, field: crate::FieldId) -> Option<&str> {
        self.inner.str(field)
    }
    fn value(&self, field: crate::FieldId) -> Option<crate::Value<'_>> {
        self.inner.value(field)
    }
    fn for_each_value(
        &self,
        class: crate::ClassId,
        f: &mut dyn FnMut(crate::FieldId, crate::Value<'_>),
    ) {
        self.inner.for_each_value(class, f)
    }
    fn visit_fields(
        &self,
        class: crate::ClassId,
        to: &mut dyn crate::FieldVisitor,
    ) -> Result<(), TraceError> {
        self.inner.visit_fields(class, to)
    }
    fn visit_field(
        &self,
        field: crate::FieldId,
        to: &mut dyn crate::FieldVisitor,
    ) -> Result<(), TraceError> {
        self.inner.visit_field(field, to)
    }
    fn stats(&self) -> crate::ReadStats {
        self.inner.stats()
    }
    fn field(&self, class: crate::ClassId, name: &str) -> Option<crate::FieldId> {
        self.inner.field(class, name)
    }
    fn progress(&self) -> Option<(u64, u64)> {
        self.inner.progress()
    }
    fn hostname(&self) -> Option<String> {
        self.inner.hostname()
    }
    fn seek(&mut self, ts: crate::Timestamp) -> Result<bool, TraceError> {
        self.inner.seek(ts)
    }
    fn hosts(&self) -> Vec<String> {
        self.inner.hosts()
    }
    fn host(&self) -> usize {
        self.inner.host()
    }
    fn set_interest(&mut self, classes: Option<&[crate::ClassId]>) {
        self.inner.set_interest(classes)
    }
    fn passed_over(&self, host: usize) -> crate::PassedOver {
        self.inner.passed_over(host)
    }
}

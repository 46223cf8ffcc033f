//! Clocks of several traces on one time line: the mapping from a trace's clock to the
//! experiment's reference clock, as clock synchronisation computes it.

use std::fmt;

use crate::Timestamp;

/// Maps timestamps of one trace's clock to the reference clock of its experiment and back.
/// Both directions must be monotonic (never decreasing), so that a time-ordered source stays
/// time-ordered on the reference clock.
pub trait Clock: Send + Sync + fmt::Debug {
    fn to_reference(&self, t: Timestamp) -> Timestamp;
    fn to_local(&self, t: Timestamp) -> Timestamp;
}

/// A constant offset: `t + offset_ns` on the reference clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offset(pub i64);

impl Clock for Offset {
    fn to_reference(&self, t: Timestamp) -> Timestamp {
        t.saturating_add(self.0)
    }
    fn to_local(&self, t: Timestamp) -> Timestamp {
        t.saturating_sub(self.0)
    }
}

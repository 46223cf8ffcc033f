//! Values over time: a host's series share one set of buckets, so a window of any multiple of
//! a bucket is a sum of consecutive values, whatever the series.

use serde::{Deserialize, Serialize};

/// The time buckets of a host's series: bucket `i` is `[start_ns + i × step_ns,
/// start_ns + (i + 1) × step_ns)`, `count` of them (the last may extend past the host's end).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buckets {
    pub start_ns: i64,
    pub step_ns: i64,
    pub count: usize,
}

impl Buckets {
    /// The bucket holding `ts` (clamped to the buckets).
    pub fn index(&self, ts: i64) -> usize {
        if self.step_ns <= 0 || self.count == 0 {
            return 0;
        }
        (((ts - self.start_ns).max(0) / self.step_ns) as usize).min(self.count - 1)
    }

    /// Where bucket `i` starts.
    pub fn start_of(&self, i: usize) -> i64 {
        self.start_ns + i as i64 * self.step_ns
    }
}

/// Sums `values` over buckets `[from, to)`.
pub fn sum(values: &[u64], from: usize, to: usize) -> u64 {
    values
        .get(from.min(values.len())..to.min(values.len()))
        .map_or(0, |s| s.iter().sum())
}

//! Values over time in one pass, with memory bounded whatever the trace's length: every series
//! of a host shares its [`Clockwork`] — buckets that start at the host's first event, 1 ms wide
//! at first, twice as wide each time the trace outgrows [`MAX_BUCKETS`] of them — and a
//! [`Series`] catches up with the doublings lazily, merging its values in pairs, when it is
//! next written or read. The final buckets are those of `virtflow_model::Buckets`' rule: the
//! smallest width of `1 ms × 2^k` that holds the host's span in at most [`MAX_BUCKETS`].

use virtflow_model::Buckets;
use virtflow_trace::Timestamp;

/// Buckets a host's series hold at most.
pub const MAX_BUCKETS: usize = 1024;

/// The narrowest bucket, before any doubling.
const FIRST_STEP_NS: i64 = 1_000_000;

/// The buckets of one host, growing with its span.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clockwork {
    start: Option<Timestamp>,
    /// How many times the width doubled.
    level: u32,
    /// Buckets in use: the one holding the latest time seen, plus one.
    count: usize,
    /// Where the last bucket in use ends: a time before it changes nothing (every event
    /// passes here; most are within the last bucket).
    end: Timestamp,
}

impl Clockwork {
    fn step(&self) -> i64 {
        FIRST_STEP_NS << self.level
    }

    /// The bucket of `ts`, unclamped: a division by a constant (a multiplication once
    /// compiled) and a shift, rather than a division by the width.
    #[inline]
    fn raw_index(&self, start: Timestamp, ts: Timestamp) -> usize {
        (((ts - start).max(0) / FIRST_STEP_NS) >> self.level) as usize
    }

    /// A time seen on the host: starts the buckets at the first, widens them when needed.
    /// (Every event calls it; most fall in the buckets already there, inlined.)
    #[inline(always)]
    pub fn advance(&mut self, ts: Timestamp) {
        if ts >= self.end || self.start.is_none() {
            self.extend(ts);
        }
    }

    #[inline(never)]
    fn extend(&mut self, ts: Timestamp) {
        let start = *self.start.get_or_insert(ts);
        let mut index = self.raw_index(start, ts);
        while index >= MAX_BUCKETS {
            self.level += 1;
            index = self.raw_index(start, ts);
            // The latest bucket in use so far, `count − 1`, is half as far in the wider
            // buckets: left at its old value, the count would keep up to 1,024 buckets past
            // the host's end.
            self.count = self.count.div_ceil(2);
        }
        self.count = self.count.max(index + 1);
        self.end = start + self.count as i64 * self.step();
    }

    /// The buckets as they stand (the model's form).
    pub fn buckets(&self) -> Buckets {
        Buckets {
            start_ns: self.start.unwrap_or(0),
            step_ns: self.step(),
            count: self.count,
        }
    }

    fn index(&self, ts: Timestamp) -> usize {
        let start = self.start.unwrap_or(ts);
        self.raw_index(start, ts).min(MAX_BUCKETS - 1)
    }
}

/// One series of a host: a value per bucket of its [`Clockwork`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Series {
    /// The clockwork's level these values are at.
    level: u32,
    values: Vec<u64>,
}

impl Series {
    /// Merges the values in pairs for each doubling since they were last touched.
    fn catch_up(&mut self, clock: &Clockwork) {
        while self.level < clock.level {
            let merged: Vec<u64> = self
                .values
                .chunks(2)
                .map(|pair| pair.iter().sum())
                .collect();
            self.values = merged;
            self.level += 1;
        }
    }

    fn slot(&mut self, i: usize) -> &mut u64 {
        if self.values.len() <= i {
            self.values.resize(i + 1, 0);
        }
        &mut self.values[i]
    }

    /// Adds `v` to the bucket holding `ts`.
    pub fn add_at(&mut self, clock: &Clockwork, ts: Timestamp, v: u64) {
        if v == 0 {
            return;
        }
        self.catch_up(clock);
        *self.slot(clock.index(ts)) += v;
    }

    /// Adds the time of `[from, to)` to the buckets it overlaps, each its share.
    pub fn add_span(&mut self, clock: &Clockwork, from: Timestamp, to: Timestamp) {
        if to <= from {
            return;
        }
        self.catch_up(clock);
        let Some(start) = clock.start else { return };
        let step = clock.step();
        let (first, last) = (clock.index(from), clock.index(to - 1));
        if first == last {
            *self.slot(first) += (to - from) as u64;
            return;
        }
        for i in first..=last {
            let lo = (start + i as i64 * step).max(from);
            let hi = if i == last {
                to
            } else {
                (start + (i as i64 + 1) * step).min(to)
            };
            *self.slot(i) += (hi - lo).max(0) as u64;
        }
    }

    /// Adds every value of `other` (same clockwork) into this one.
    pub fn add_series(&mut self, clock: &Clockwork, other: &Series) {
        let mut other = other.clone();
        other.catch_up(clock);
        self.catch_up(clock);
        for (i, v) in other.values.iter().enumerate() {
            if *v != 0 {
                *self.slot(i) += v;
            }
        }
    }

    /// The values, one per bucket of the clockwork as it stands.
    pub fn finish(&self, clock: &Clockwork) -> Vec<u64> {
        let mut s = self.clone();
        s.catch_up(clock);
        let mut v = s.values;
        // Every time written was seen by the clockwork first: nothing lies past its count.
        debug_assert!(v.len() <= clock.count, "{} > {}", v.len(), clock.count);
        v.resize(clock.count.max(v.len()), 0);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form of the buckets' rule, as the simulator's truth computes it.
    fn closed_form(first: i64, last: i64) -> (i64, usize) {
        let span = last - first + 1;
        let mut step = FIRST_STEP_NS;
        while (span + step - 1) / step > MAX_BUCKETS as i64 {
            step *= 2;
        }
        (step, ((span + step - 1) / step) as usize)
    }

    /// Events every millisecond fill the 1 ms buckets before they widen: the count must
    /// shrink with them.
    #[test]
    fn a_trace_seen_event_by_event_ends_with_the_closed_form_count() {
        let mut c = Clockwork::default();
        let first = 7_000;
        let last = first + 1_999_953_398;
        let mut t = first;
        while t < last {
            c.advance(t);
            t += 1_000_000;
        }
        c.advance(last);
        let b = c.buckets();
        assert_eq!((b.step_ns, b.count), closed_form(first, last));
        assert_eq!(b.count, 1000);
    }

    #[test]
    fn buckets_widen_as_the_trace_grows_and_match_the_closed_form() {
        for last in [
            0,
            999_999,
            1_000_000,
            1_023_999_999,
            1_024_000_000,
            17_000_000_123,
        ] {
            let mut c = Clockwork::default();
            let first = 5_000;
            c.advance(first);
            c.advance(first + last / 2);
            c.advance(first + last);
            let b = c.buckets();
            assert_eq!(
                (b.step_ns, b.count),
                closed_form(first, first + last),
                "{last}"
            );
            assert_eq!(b.start_ns, first);
        }
    }

    /// A span split before and after the buckets widen gives the split of the final buckets.
    #[test]
    fn values_written_before_a_widening_land_in_the_final_buckets() {
        let mut c = Clockwork::default();
        c.advance(0);
        c.advance(3_500_000);
        let mut s = Series::default();
        // 1.5 ms to 3.5 ms: 0.5 ms in bucket 1, 1 ms in bucket 2, 0.5 ms in bucket 3.
        s.add_span(&c, 1_500_000, 3_500_000);
        s.add_at(&c, 2_000_000, 7);
        assert_eq!(s.finish(&c), vec![0, 500_000, 1_000_007, 500_000]);
        // The trace goes on to 2.047 s: 2 ms buckets.
        c.advance(2_047_000_000);
        let v = s.finish(&c);
        assert_eq!(c.buckets().step_ns, 2_000_000);
        assert_eq!(&v[..3], &[500_000, 1_500_007, 0]);
        assert_eq!(v.len(), c.buckets().count);
        // A span written now at the new width.
        s.add_span(&c, 3_000_000, 6_000_000);
        assert_eq!(&s.finish(&c)[..4], &[500_000, 2_500_007, 2_000_000, 0]);
        let total: u64 = s.finish(&c).iter().sum();
        assert_eq!(total, 2_000_007 + 3_000_000);
    }
}

//! A host's time line in buckets, the rule the analysis follows too: the buckets start at the
//! host's first event; the step is the smallest `1 ms × 2^k` that covers the host's span
//! (`last − first + 1` ns) in at most 1024 buckets; an amount over an interval goes to the
//! buckets it overlaps in proportion to the overlap (integer ns, the remainder to the last),
//! a count at a time to the bucket holding it.
//!
//! The span is known only at the end, so [`SeriesSet`] starts at 1 ms and doubles its step
//! (adding bucket pairs) whenever an event falls past the 1024th bucket. Every amount the
//! truth spreads is a duration times a whole number, whose shares are exact, so the doubled
//! buckets hold what the final step would have given.

use virtflow_model::Buckets;

/// The most buckets of a host's series.
pub const MAX_BUCKETS: u64 = 1024;
const BASE_STEP: u64 = 1_000_000;

/// The buckets of a host whose events run from `first` to `last` (ns).
pub fn bucket_rule(first: i64, last: i64) -> Buckets {
    let span = (last - first).max(0) as u64 + 1;
    let mut step = BASE_STEP;
    while span.div_ceil(step) > MAX_BUCKETS {
        step *= 2;
    }
    Buckets {
        start_ns: first,
        step_ns: step as i64,
        count: span.div_ceil(step) as usize,
    }
}

/// Splits `amount` over `[a, b)` into `buckets`: each overlapped bucket gets
/// `amount × overlap / (b − a)` rounded down, the last one the remainder. Returns
/// `(bucket, share)` pairs.
pub fn spread(buckets: &Buckets, a: i64, b: i64, amount: u64) -> Vec<(usize, u64)> {
    if b <= a {
        return vec![(buckets.index(a), amount)];
    }
    let len = (b - a) as u128;
    let (first, last) = (buckets.index(a), buckets.index(b - 1));
    let mut out = Vec::with_capacity(last - first + 1);
    let mut given = 0u64;
    for i in first..=last {
        let lo = buckets.start_of(i).max(a);
        let hi = if i == last {
            b
        } else {
            buckets.start_of(i + 1).min(b)
        };
        let share = if i == last {
            amount - given
        } else {
            (amount as u128 * (hi - lo) as u128 / len) as u64
        };
        given += share;
        out.push((i, share));
    }
    out
}

/// Series over one host's buckets, accumulated while the events stream.
#[derive(Debug, Default)]
pub struct SeriesSet {
    first: Option<u64>,
    step: u64,
    series: Vec<Vec<u64>>,
}

impl SeriesSet {
    pub fn new() -> SeriesSet {
        SeriesSet {
            first: None,
            step: BASE_STEP,
            series: Vec::new(),
        }
    }

    /// A new series; its id.
    pub fn add(&mut self) -> usize {
        self.series.push(Vec::new());
        self.series.len() - 1
    }

    /// The host's first event.
    pub fn start(&mut self, first: u64) {
        self.first.get_or_insert(first);
    }

    /// Doubles the step until `t` falls in the first 1024 buckets.
    fn fit(&mut self, t: u64) -> u64 {
        let first = self.first.expect("started");
        while (t - first) / self.step >= MAX_BUCKETS {
            for s in &mut self.series {
                let merged: Vec<u64> = s.chunks(2).map(|c| c.iter().sum()).collect();
                *s = merged;
            }
            self.step *= 2;
        }
        first
    }

    fn slot(&mut self, id: usize, i: usize) -> &mut u64 {
        let s = &mut self.series[id];
        if s.len() <= i {
            s.resize(i + 1, 0);
        }
        &mut s[i]
    }

    /// A count (or bytes) at time `t`.
    pub fn add_at(&mut self, id: usize, t: u64, v: u64) {
        let first = self.fit(t);
        let i = ((t - first) / self.step) as usize;
        *self.slot(id, i) += v;
    }

    /// `weight` for every ns of `[a, b)`.
    pub fn add_span(&mut self, id: usize, a: u64, b: u64, weight: u64) {
        if b <= a || weight == 0 {
            return;
        }
        let first = self.fit(b - 1);
        let step = self.step;
        let mut t = a;
        while t < b {
            let i = (t - first) / step;
            let end = (first + (i + 1) * step).min(b);
            *self.slot(id, i as usize) += (end - t) * weight;
            t = end;
        }
    }

    /// The buckets once the last event is known, and every series at their full length.
    pub fn finish(mut self, last: u64) -> (Buckets, Vec<Vec<u64>>) {
        let first = self.first.unwrap_or(last);
        self.fit(last);
        let b = bucket_rule(first as i64, last as i64);
        debug_assert_eq!(b.step_ns as u64, self.step);
        for s in &mut self.series {
            s.resize(b.count, 0);
        }
        (b, self.series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_is_the_smallest_power_of_two_ms_in_1024_buckets() {
        let b = bucket_rule(100, 100);
        assert_eq!((b.start_ns, b.step_ns, b.count), (100, 1_000_000, 1));
        // 1.024 s exactly: last − first + 1 = 1_024_000_000 fits 1 ms buckets.
        let b = bucket_rule(0, 1_023_999_999);
        assert_eq!((b.step_ns, b.count), (1_000_000, 1024));
        // One ns more needs 2 ms.
        let b = bucket_rule(0, 1_024_000_000);
        assert_eq!((b.step_ns, b.count), (2_000_000, 513));
        let b = bucket_rule(5, 5 + 18_000_000_000);
        assert_eq!((b.step_ns, b.count), (32_000_000, 563));
        let b = bucket_rule(0, 170_000_000_000);
        assert_eq!((b.step_ns, b.count), (256_000_000, 665));
    }

    #[test]
    fn spreading_gives_shares_by_overlap_and_the_remainder_last() {
        let b = Buckets {
            start_ns: 0,
            step_ns: 10,
            count: 5,
        };
        assert_eq!(spread(&b, 5, 25, 20), vec![(0, 5), (1, 10), (2, 5)]);
        assert_eq!(spread(&b, 5, 25, 7), vec![(0, 1), (1, 3), (2, 3)]);
        assert_eq!(spread(&b, 12, 12, 4), vec![(1, 4)]);
        // Past the end: the last bucket.
        assert_eq!(spread(&b, 45, 60, 3), vec![(4, 3)]);
    }

    #[test]
    fn doubling_while_streaming_equals_the_final_buckets() {
        let mut s = SeriesSet::new();
        let (x, y) = (s.add(), s.add());
        let first = 1_000u64;
        s.start(first);
        let mut spans = Vec::new();
        let mut t = first;
        let mut n = 0u64;
        while t < first + 3_000_000_000 {
            let d = 1 + (n * 7_919_993) % 5_000_000;
            spans.push((t, t + d, 1 + n % 3));
            s.add_span(x, t, t + d, 1 + n % 3);
            s.add_at(y, t, n);
            t += d + n % 1_000;
            n += 1;
        }
        let last = t;
        let (b, series) = s.finish(last);
        assert_eq!(b, bucket_rule(first as i64, last as i64));
        let mut want = vec![0u64; b.count];
        let mut counts = vec![0u64; b.count];
        for (k, &(a, e, w)) in spans.iter().enumerate() {
            for (i, v) in spread(&b, a as i64, e as i64, (e - a) * w) {
                want[i] += v;
            }
            counts[b.index(a as i64)] += k as u64;
        }
        assert_eq!(series[x], want);
        assert_eq!(series[y], counts);
    }
}

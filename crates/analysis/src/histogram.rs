//! A duration distribution in constant memory: exact count, mean and max, percentiles from an
//! HDR histogram (two significant digits).

use hdrhistogram::Histogram;
use virtflow_model::LatencyStats;

pub(crate) struct Durations {
    count: u64,
    sum: u128,
    max: u64,
    hist: Histogram<u64>,
}

impl Durations {
    pub fn new() -> Self {
        Durations {
            count: 0,
            sum: 0,
            max: 0,
            // Auto-resizing, 2 significant digits: ≤ 1% error on percentiles.
            hist: Histogram::new(2).expect("2 significant digits is a valid precision"),
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.count += 1;
        self.sum += u128::from(ns);
        self.max = self.max.max(ns);
        // The histogram auto-resizes, so recording cannot fail for a u64.
        let _ = self.hist.record(ns.max(1));
    }

    pub fn merge(&mut self, other: &Durations) {
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
        let _ = self.hist.add(&other.hist);
    }

    pub fn stats(&self) -> LatencyStats {
        if self.count == 0 {
            return LatencyStats::default();
        }
        LatencyStats {
            count: self.count,
            mean_ns: (self.sum / u128::from(self.count)) as u64,
            p50_ns: self.hist.value_at_quantile(0.5).min(self.max),
            p99_ns: self.hist.value_at_quantile(0.99).min(self.max),
            max_ns: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_one_percent() {
        let mut d = Durations::new();
        for ns in 1..=1000u64 {
            d.record(ns * 1000);
        }
        let s = d.stats();
        assert_eq!(s.count, 1000);
        assert_eq!(s.mean_ns, 500_500);
        assert_eq!(s.max_ns, 1_000_000);
        assert!(
            (s.p50_ns as f64 - 500_000.0).abs() / 500_000.0 < 0.01,
            "{s:?}"
        );
        assert!(
            (s.p99_ns as f64 - 990_000.0).abs() / 990_000.0 < 0.01,
            "{s:?}"
        );
    }
}

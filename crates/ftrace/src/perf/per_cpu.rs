//! What the reader keeps by CPU as it reads ahead. A CPU's records lie in the file in time
//! order (perf empties one ring buffer per CPU), so the first read of a CPU is its first in
//! time, and the last read before a `LOST` record is the last its buffer held before the loss.
//!
//! - [`CpusShown`]: the CPUs whose first record outside the interest was held, to be announced
//!   (see [`virtflow_trace::EventSource::set_interest`]);
//! - [`LastTimes`]: each CPU's latest record time, read or passed over: where a loss on it
//!   begins.

use virtflow_trace::EventHeader;

/// CPUs below this number are kept in the bit set; a record on a larger one (no host has
/// that many: a damaged field) is always held and announced.
const MAX_CPUS: u32 = 1 << 16;

#[derive(Default)]
pub(super) struct CpusShown {
    bits: Vec<u64>,
    no_cpu: bool,
}

impl CpusShown {
    /// Whether `cpu` is in the set.
    #[inline]
    pub fn contains(&self, cpu: u32) -> bool {
        if cpu == EventHeader::NO_CPU {
            return self.no_cpu;
        }
        self.bits
            .get((cpu / 64) as usize)
            .is_some_and(|w| w & (1 << (cpu % 64)) != 0)
    }

    /// Adds `cpu` (one past [`MAX_CPUS`] is never added).
    #[inline]
    pub fn insert(&mut self, cpu: u32) {
        if cpu == EventHeader::NO_CPU {
            self.no_cpu = true;
            return;
        }
        if cpu >= MAX_CPUS {
            return;
        }
        let word = (cpu / 64) as usize;
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (cpu % 64);
    }
}

/// Each CPU's latest record time (0: none yet).
#[derive(Default)]
pub(super) struct LastTimes(Vec<u64>);

impl LastTimes {
    /// A record of `cpu` at `ts` (a CPU past [`MAX_CPUS`] or none is not kept).
    #[inline(always)]
    pub fn saw(&mut self, cpu: u32, ts: u64) {
        match self.0.get_mut(cpu as usize) {
            Some(last) => *last = (*last).max(ts),
            None => self.grow(cpu, ts),
        }
    }

    #[cold]
    fn grow(&mut self, cpu: u32, ts: u64) {
        if cpu < MAX_CPUS {
            self.0.resize(cpu as usize + 1, 0);
            self.0[cpu as usize] = ts;
        }
    }

    /// The latest record time of `cpu`, if one was seen.
    pub fn of(&self, cpu: u32) -> Option<u64> {
        self.0.get(cpu as usize).copied().filter(|&t| t > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_each_cpu_held() {
        let mut shown = CpusShown::default();
        assert!(!shown.contains(3));
        shown.insert(3);
        shown.insert(200);
        assert!(shown.contains(3) && shown.contains(200));
        assert!(!shown.contains(4) && !shown.contains(EventHeader::NO_CPU));
        shown.insert(EventHeader::NO_CPU);
        assert!(shown.contains(EventHeader::NO_CPU));
        // Past the bound: never remembered, so always held.
        shown.insert(MAX_CPUS + 1);
        assert!(!shown.contains(MAX_CPUS + 1));
    }

    #[test]
    fn keeps_each_cpus_latest_time() {
        let mut last = LastTimes::default();
        assert_eq!(last.of(2), None);
        last.saw(2, 30);
        last.saw(2, 20);
        last.saw(0, 5);
        last.saw(EventHeader::NO_CPU, 99);
        assert_eq!(
            (last.of(2), last.of(0), last.of(1)),
            (Some(30), Some(5), None)
        );
        assert_eq!(last.of(EventHeader::NO_CPU), None);
    }
}

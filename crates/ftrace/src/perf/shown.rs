//! A set of CPUs: those whose first record outside the interest was held, to be announced
//! (see [`virtflow_trace::EventSource::set_interest`]). A CPU's records lie in the file in
//! time order (perf empties one ring buffer per CPU), so the first read of a CPU is its
//! first in time.

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
}

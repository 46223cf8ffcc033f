//! How many vCPUs want the host's pCPUs at each instant, and how many pCPUs idle: the live
//! state of the overcommitment analysis, updated at every change of a vCPU's runnable state
//! and of a CPU's idleness.
//!
//! A vCPU's steal (preempted, ready) is later split by what the host was like meanwhile —
//! more runnable vCPUs than pCPUs, a pCPU idle — without keeping any history: each condition
//! has a running total of the time it held ([`Levels::marks`]), and the part of a steal
//! interval during which it held is the difference of the totals at the interval's ends.

use virtflow_trace::Timestamp;

use crate::series::{Clockwork, Series};

/// Running totals, at one instant, of the time each condition held since the trace began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    pub overcommitted: u64,
    pub cpu_idle: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Levels {
    /// vCPU threads running, preempted or ready.
    runnable: u32,
    /// CPUs running their idle task.
    idle: u32,
    /// pCPUs seen so far.
    pub pcpus: u32,
    since: Option<Timestamp>,
    totals: Marks,
    pub max_runnable: u32,
    /// Runnable vCPU time per pCPU (the CPU a vCPU runs or waits on), per bucket.
    pub per_cpu: Vec<Series>,
    /// Runnable vCPU time in all (vCPU × ns).
    pub runnable_ns: u64,
}

impl Levels {
    /// Brings the running totals to `ts` under the current levels.
    fn accrue(&mut self, ts: Timestamp) {
        let since = *self.since.get_or_insert(ts);
        if ts > since {
            let ns = (ts - since) as u64;
            if self.pcpus > 0 && self.runnable > self.pcpus {
                self.totals.overcommitted += ns;
            }
            if self.idle > 0 {
                self.totals.cpu_idle += ns;
            }
            self.since = Some(ts);
        }
    }

    /// The running totals at `ts`.
    pub fn marks(&mut self, ts: Timestamp) -> Marks {
        self.accrue(ts);
        self.totals
    }

    /// A vCPU became runnable (`+1`) or stopped being so (`-1`) at `ts`.
    pub fn runnable_changed(&mut self, ts: Timestamp, up: bool) {
        self.accrue(ts);
        if up {
            self.runnable += 1;
            self.max_runnable = self.max_runnable.max(self.runnable);
        } else {
            self.runnable = self.runnable.saturating_sub(1);
        }
    }

    /// A CPU started (`true`) or stopped running its idle task at `ts`.
    pub fn idle_changed(&mut self, ts: Timestamp, idle: bool) {
        self.accrue(ts);
        if idle {
            self.idle += 1;
        } else {
            self.idle = self.idle.saturating_sub(1);
        }
    }

    /// A vCPU was runnable on `cpu` over `[from, to)`.
    pub fn runnable_span(&mut self, clock: &Clockwork, cpu: u32, from: Timestamp, to: Timestamp) {
        if to <= from || cpu == u32::MAX || cpu > 1 << 16 {
            return;
        }
        self.runnable_ns += (to - from) as u64;
        let c = cpu as usize;
        if self.per_cpu.len() <= c {
            self.per_cpu.resize_with(c + 1, Series::default);
        }
        self.per_cpu[c].add_span(clock, from, to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_the_levels() {
        let mut l = Levels {
            pcpus: 1,
            ..Levels::default()
        };
        l.runnable_changed(0, true);
        l.idle_changed(0, true);
        let a = l.marks(10);
        assert_eq!(
            a,
            Marks {
                overcommitted: 0,
                cpu_idle: 10
            }
        );
        // Two runnable vCPUs on one pCPU from 10 to 25.
        l.runnable_changed(10, true);
        l.idle_changed(12, false);
        l.runnable_changed(25, false);
        let b = l.marks(30);
        assert_eq!(b.overcommitted - a.overcommitted, 15);
        assert_eq!(b.cpu_idle - a.cpu_idle, 2);
        assert_eq!(l.max_runnable, 2);
    }
}

//! How many vCPUs want the host's pCPUs at each instant, and how many pCPUs idle: the live
//! state of the overcommitment analysis.
//!
//! A vCPU is **runnable** while it runs in a known mode (guest, hypervisor after an exit, user
//! space), is preempted, or is ready (woken, waiting for a pCPU); its **steal** is its preempted
//! and ready time. Its steal is split by what the host was like meanwhile — more runnable vCPUs
//! than pCPUs, a pCPU idle — without keeping any history per vCPU: each condition has a running
//! total of the time it held ([`Marks`]), and the part of a steal during which it held is the
//! difference of the totals at the steal's ends.
//!
//! A thread is known to be a vCPU only at its first KVM event, yet what it did before counts:
//! a vCPU halted when the trace began is woken and may wait many milliseconds for a pCPU before
//! its first entry. So the changes of runnable vCPUs and idle pCPUs are not folded into the
//! totals as they come. They wait in a time-ordered log, and every other thread keeps its own
//! changes (its candidate history) from its first runnable state on; when the thread turns out
//! to be a vCPU they join the log at their times, and the log is folded only up to the earliest
//! change a candidate still holds. A thread stops being a candidate when it runs for a whole
//! stint, from being switched in to being switched out, without a KVM event: a vCPU thread
//! that runs re-enters its guest (or leaves it) before it is switched out, unless it is in its
//! VMM's user space, which `kvm_userspace_exit` shows.
//!
//! Memory: the log between the oldest candidate change and now, which ends with the next stint
//! of that candidate — the wake-up latency of a host thread, or its time preempted. A thread
//! that never runs again would hold it to the end: past [`LOG_CAP`] entries the oldest
//! candidate is dropped (it then counts only from its first KVM event, as without this log).

use std::collections::VecDeque;

use virtflow_trace::Timestamp;

use crate::series::{Clockwork, Series};

/// Running totals, at one instant, of the time each condition held since the trace began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    pub overcommitted: u64,
    pub cpu_idle: u64,
}

/// What a thread's state means for the pCPUs: it wants one (`runnable`), and it wants one it
/// does not have (`steal`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Class {
    pub runnable: bool,
    pub steal: bool,
}

#[derive(Clone, Copy, Debug)]
enum Change {
    /// The vCPU thread of this index is of this class from then on.
    Vcpu(u32, Class),
    /// A CPU started (`true`) or stopped running its idle task.
    Idle(bool),
}

/// A thread not (yet) known to be a vCPU, with its changes since its first runnable state.
struct Candidate {
    thread: u32,
    changes: Vec<(Timestamp, Class)>,
    /// Its runnable spans: (CPU, from, to).
    spans: Vec<(u32, Timestamp, Timestamp)>,
}

/// A vCPU thread as the fold knows it.
#[derive(Clone, Copy, Debug, Default)]
struct Folded {
    class: Class,
    /// The totals when its current steal began.
    mark: Marks,
    /// Of its steal: while the host had more runnable vCPUs than pCPUs, while a pCPU idled.
    overcommitted: u64,
    cpu_idle: u64,
}

/// Log entries past which the oldest candidate is dropped.
const LOG_CAP: usize = 1 << 16;

/// Log entries added between two folds.
const FOLD_EVERY: usize = 256;

/// Changes one candidate keeps at most (a wait, a stint, their splits by CPU): more means its
/// stints show no end, and it is dropped.
const CANDIDATE_CHANGES: usize = 64;

#[derive(Default)]
pub(crate) struct Levels {
    /// pCPUs seen so far (the fold counts with the number known when it runs).
    pub pcpus: u32,
    /// vCPU threads runnable, as folded.
    runnable: u32,
    /// CPUs running their idle task, as folded.
    idle: u32,
    /// Where the fold stands.
    folded_to: Option<Timestamp>,
    totals: Marks,
    pub max_runnable: u32,
    /// By thread index: the vCPUs the fold has met.
    vcpus: Vec<Folded>,
    log: VecDeque<(Timestamp, Change)>,
    /// The log's length at which to fold next.
    fold_at: usize,
    candidates: Vec<Candidate>,
    /// By thread index: its slot in `candidates`, if any (`u32::MAX`: none).
    slot: Vec<u32>,
    /// Candidates done with, whose vectors the next ones reuse (a host thread becomes one at
    /// each wake-up: allocating for each would show).
    spare: Vec<Candidate>,
    /// Runnable vCPU time per pCPU (the CPU a vCPU runs or waits on), per bucket, when the
    /// run keeps series (`series`).
    pub per_cpu: Vec<Series>,
    pub series: bool,
    /// Runnable vCPU time in all (vCPU × ns).
    pub runnable_ns: u64,
}

impl Levels {
    /// The levels of a run that keeps series (`series`) or only totals.
    pub fn new(series: bool) -> Levels {
        Levels {
            series,
            ..Levels::default()
        }
    }

    /// Thread `thread` is of `class` from `ts`: a vCPU's change joins the log; another
    /// thread's its candidate history, which its first runnable state opens.
    #[inline]
    pub fn class(&mut self, thread: u32, vcpu: bool, ts: Timestamp, class: Class) {
        if vcpu {
            self.push(ts, Change::Vcpu(thread, class));
            return;
        }
        match self.candidate(thread) {
            Some(k) => {
                let c = &mut self.candidates[k];
                if c.changes.len() >= CANDIDATE_CHANGES {
                    self.drop_candidate(k);
                } else {
                    c.changes.push((ts, class));
                }
            }
            None if class.runnable => {
                let mut c = self.spare.pop().unwrap_or(Candidate {
                    thread,
                    changes: Vec::new(),
                    spans: Vec::new(),
                });
                c.thread = thread;
                c.changes.push((ts, class));
                let t = thread as usize;
                if self.slot.len() <= t {
                    self.slot.resize(t + 1, u32::MAX);
                }
                self.slot[t] = self.candidates.len() as u32;
                self.candidates.push(c);
            }
            None => {}
        }
    }

    /// The slot of thread `thread`'s candidate history.
    #[inline]
    fn candidate(&self, thread: u32) -> Option<usize> {
        match self.slot.get(thread as usize) {
            Some(&k) if k != u32::MAX => Some(k as usize),
            _ => None,
        }
    }

    /// Takes candidate `k` out of the candidates (the last one takes its slot).
    fn take_candidate(&mut self, k: usize) -> Candidate {
        let c = self.candidates.swap_remove(k);
        self.slot[c.thread as usize] = u32::MAX;
        if let Some(moved) = self.candidates.get(k) {
            self.slot[moved.thread as usize] = k as u32;
        }
        c
    }

    /// Forgets candidate `k`, keeping its vectors for the next.
    fn drop_candidate(&mut self, k: usize) {
        let mut c = self.take_candidate(k);
        c.changes.clear();
        c.spans.clear();
        self.spare.push(c);
    }

    /// A CPU started (`true`) or stopped running its idle task at `ts`.
    pub fn idle_changed(&mut self, ts: Timestamp, idle: bool) {
        self.push(ts, Change::Idle(idle));
    }

    /// Thread `thread` was runnable on `cpu` over `[from, to)`: counted now for a vCPU, kept
    /// with its history for a candidate.
    pub fn runnable_span(
        &mut self,
        clock: &Clockwork,
        thread: u32,
        vcpu: bool,
        cpu: u32,
        from: Timestamp,
        to: Timestamp,
    ) {
        if to <= from {
            return;
        }
        if vcpu {
            self.count_span(clock, cpu, from, to);
        } else if let Some(k) = self.candidate(thread) {
            self.candidates[k].spans.push((cpu, from, to));
        }
    }

    fn count_span(&mut self, clock: &Clockwork, cpu: u32, from: Timestamp, to: Timestamp) {
        self.runnable_ns += (to - from) as u64;
        if !self.series || cpu == u32::MAX || cpu > 1 << 16 {
            return;
        }
        let c = cpu as usize;
        if self.per_cpu.len() <= c {
            self.per_cpu.resize_with(c + 1, Series::default);
        }
        self.per_cpu[c].add_span(clock, from, to);
    }

    /// Thread `thread` is a vCPU (its first KVM event): its history joins the log. Returns
    /// whether it had one.
    pub fn resolve(&mut self, clock: &Clockwork, thread: u32) -> bool {
        let Some(k) = self.candidate(thread) else {
            return false;
        };
        let mut c = self.take_candidate(k);
        for &(cpu, from, to) in &c.spans {
            self.count_span(clock, cpu, from, to);
        }
        for &(ts, class) in &c.changes {
            self.push(ts, Change::Vcpu(thread, class));
        }
        c.changes.clear();
        c.spans.clear();
        self.spare.push(c);
        true
    }

    /// Thread `thread` ran a stint without a KVM event: what it did before says nothing of a
    /// vCPU.
    pub fn discard(&mut self, thread: u32) {
        if let Some(k) = self.candidate(thread) {
            self.drop_candidate(k);
        }
    }

    /// Adds a change to the log at its time (a loss reports its start, a candidate's history
    /// its past), folding what no candidate can change any more now and then.
    #[inline]
    fn push(&mut self, ts: Timestamp, change: Change) {
        if self.log.back().is_none_or(|(last, _)| *last <= ts) {
            self.log.push_back((ts, change));
        } else {
            // After the changes of the same time: a thread's own changes keep their order.
            let at = self.log.partition_point(|(t, _)| *t <= ts);
            self.log.insert(at, (ts, change));
        }
        if self.log.len() >= self.fold_at {
            self.fold_settled();
        }
    }

    /// Folds the log up to the oldest change a candidate holds, and drops the oldest
    /// candidates while the log is longer than [`LOG_CAP`].
    #[inline(never)]
    fn fold_settled(&mut self) {
        loop {
            let horizon = self
                .candidates
                .iter()
                .filter_map(|c| c.changes.first())
                .map(|c| c.0)
                .min();
            self.fold(horizon.unwrap_or(Timestamp::MAX));
            if self.log.len() <= LOG_CAP {
                break;
            }
            // The oldest candidate holds the log back: it loses its history.
            let oldest = self
                .candidates
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.changes.first().map_or(Timestamp::MAX, |c| c.0))
                .map(|(k, _)| k);
            match oldest {
                Some(k) => self.drop_candidate(k),
                None => break,
            }
        }
        self.fold_at = self.log.len() + FOLD_EVERY;
    }

    /// Folds the changes up to `upto` into the totals.
    fn fold(&mut self, upto: Timestamp) {
        while let Some(&(ts, change)) = self.log.front() {
            if ts > upto {
                break;
            }
            self.log.pop_front();
            self.accrue(ts);
            match change {
                Change::Idle(true) => self.idle += 1,
                Change::Idle(false) => self.idle = self.idle.saturating_sub(1),
                Change::Vcpu(thread, class) => {
                    let i = thread as usize;
                    if self.vcpus.len() <= i {
                        self.vcpus.resize(i + 1, Folded::default());
                    }
                    let totals = self.totals;
                    let v = &mut self.vcpus[i];
                    if v.class.steal {
                        v.overcommitted += totals.overcommitted - v.mark.overcommitted;
                        v.cpu_idle += totals.cpu_idle - v.mark.cpu_idle;
                    }
                    v.mark = totals;
                    match (v.class.runnable, class.runnable) {
                        (false, true) => self.runnable += 1,
                        (true, false) => self.runnable = self.runnable.saturating_sub(1),
                        _ => {}
                    }
                    v.class = class;
                }
            }
        }
    }

    /// Brings the running totals to `ts` under the folded levels. The most runnable vCPUs
    /// are taken over intervals of positive length: at one instant, the order of changes of
    /// equal times would decide it.
    fn accrue(&mut self, ts: Timestamp) {
        let since = *self.folded_to.get_or_insert(ts);
        if ts > since {
            let ns = (ts - since) as u64;
            if self.pcpus > 0 && self.runnable > self.pcpus {
                self.totals.overcommitted += ns;
            }
            if self.idle > 0 {
                self.totals.cpu_idle += ns;
            }
            self.max_runnable = self.max_runnable.max(self.runnable);
            self.folded_to = Some(ts);
        }
    }

    /// The end of the host's trace at `end`: threads not known to be vCPUs by now never will
    /// be; every change is folded and every steal closed. Returns the totals.
    pub fn finish(&mut self, end: Timestamp) -> Marks {
        self.candidates.clear();
        self.slot.clear();
        self.fold(Timestamp::MAX);
        self.accrue(end);
        let totals = self.totals;
        for v in &mut self.vcpus {
            if v.class.steal {
                v.overcommitted += totals.overcommitted - v.mark.overcommitted;
                v.cpu_idle += totals.cpu_idle - v.mark.cpu_idle;
            }
            v.mark = totals;
        }
        totals
    }

    /// The totals as folded (all of them after [`Levels::finish`]).
    pub fn totals(&self) -> Marks {
        self.totals
    }

    /// Of the steal of thread `thread` (a vCPU): the time the host was overcommitted and the
    /// time a pCPU idled (complete after [`Levels::finish`]).
    pub fn steal_split(&self, thread: usize) -> Marks {
        self.vcpus.get(thread).map_or(Marks::default(), |v| Marks {
            overcommitted: v.overcommitted,
            cpu_idle: v.cpu_idle,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: Class = Class {
        runnable: true,
        steal: false,
    };
    const STEAL: Class = Class {
        runnable: true,
        steal: true,
    };
    const OFF: Class = Class {
        runnable: false,
        steal: false,
    };

    #[test]
    fn totals_follow_the_levels() {
        let mut l = Levels {
            pcpus: 1,
            ..Levels::default()
        };
        l.class(1, true, 0, RUN);
        l.idle_changed(0, true);
        // Two runnable vCPUs on one pCPU from 10 to 25; the first waits from 12.
        l.class(2, true, 10, RUN);
        l.idle_changed(12, false);
        l.class(1, true, 12, STEAL);
        l.class(2, true, 25, OFF);
        l.class(1, true, 25, RUN);
        let t = l.finish(30);
        assert_eq!(t.overcommitted, 15);
        assert_eq!(t.cpu_idle, 12);
        assert_eq!(l.max_runnable, 2);
        assert_eq!(
            l.steal_split(1),
            Marks {
                overcommitted: 13,
                cpu_idle: 0
            }
        );
    }

    /// A thread woken at 10 waits for the pCPU until 40 and shows its first KVM event at 50:
    /// the host was overcommitted from 10, and its steal is split from then.
    #[test]
    fn a_vcpu_counts_from_its_first_runnable_state() {
        let clock = Clockwork::default();
        let mut l = Levels {
            pcpus: 1,
            ..Levels::default()
        };
        l.class(1, true, 0, RUN);
        l.class(7, false, 10, STEAL);
        l.class(1, true, 20, STEAL);
        l.class(1, true, 30, RUN);
        l.runnable_span(&clock, 7, false, 0, 10, 40);
        l.class(7, false, 40, OFF);
        assert!(l.resolve(&clock, 7));
        l.class(7, true, 50, RUN);
        l.class(1, true, 60, OFF);
        let t = l.finish(100);
        // Two runnable from 10 to 40 and from 50 to 60.
        assert_eq!(t.overcommitted, 40);
        assert_eq!(l.max_runnable, 2);
        // Thread 7 stole from 10 to 40, all while overcommitted; thread 1 from 20 to 30.
        assert_eq!(l.steal_split(7).overcommitted, 30);
        assert_eq!(l.steal_split(1).overcommitted, 10);
        assert_eq!(l.runnable_ns, 30);
    }

    /// A thread that ran a stint without a KVM event drops its history: it is a host task.
    #[test]
    fn a_discarded_candidate_counts_for_nothing() {
        let clock = Clockwork::default();
        let mut l = Levels {
            pcpus: 1,
            ..Levels::default()
        };
        l.class(1, true, 0, RUN);
        l.class(7, false, 10, STEAL);
        l.runnable_span(&clock, 7, false, 0, 10, 40);
        l.class(7, false, 40, OFF);
        l.discard(7);
        assert!(!l.resolve(&clock, 7));
        let t = l.finish(100);
        assert_eq!(t.overcommitted, 0);
        assert_eq!(l.max_runnable, 1);
        assert_eq!(l.runnable_ns, 0);
    }

    /// Memory stays bounded when a candidate never runs again: past the cap it is dropped.
    #[test]
    fn a_candidate_that_never_runs_again_does_not_hold_the_log() {
        let mut l = Levels {
            pcpus: 1,
            ..Levels::default()
        };
        l.class(7, false, 0, STEAL);
        for i in 0..(LOG_CAP as i64 + 2 * FOLD_EVERY as i64) {
            l.idle_changed(1 + i, i % 2 == 0);
        }
        assert!(l.log.len() <= LOG_CAP + FOLD_EVERY);
        assert!(l.candidates.is_empty());
    }
}

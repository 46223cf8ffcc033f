//! Which threads' names and thread groups the analyses already hold, as the decoder sees it.
//!
//! Reading and checking a name costs more than the rest of a `sched_switch`, and a thread's
//! group, once known, does not change: the decoder reads them only for threads the W2A machine
//! does not know yet. When the analyses run on a thread of their own, the decoder runs ahead of
//! them and cannot ask; the batcher that sends them the events follows the same rules instead,
//! event by event, from what it sent: the machine stores every name and group an event hands
//! it for a thread other than the idle task (`set_comm`, `set_tgid` in `w2a`), except a
//! marker's context (only its time counts) and a side-band record's context (only its task's
//! name and group count).

use rustc_hash::FxHashSet;

use crate::layout::{EventContext, TypedEvent};

/// Tids below this are held in a bit set (pid_max defaults to 4 Mi on 64-bit hosts); the
/// set grows only up to the largest tid seen.
const DIRECT_TIDS: u32 = 1 << 22;

/// A set of tids.
#[derive(Default)]
struct Tids {
    bits: Vec<u64>,
    large: FxHashSet<u32>,
}

impl Tids {
    #[inline]
    fn contains(&self, tid: u32) -> bool {
        if tid < DIRECT_TIDS {
            self.bits
                .get((tid / 64) as usize)
                .is_some_and(|w| w & (1 << (tid % 64)) != 0)
        } else {
            self.large.contains(&tid)
        }
    }

    fn set(&mut self, tid: u32, on: bool) {
        if tid < DIRECT_TIDS {
            let w = (tid / 64) as usize;
            if self.bits.len() <= w {
                if !on {
                    return;
                }
                self.bits.resize(w + 1, 0);
            }
            if on {
                self.bits[w] |= 1 << (tid % 64);
            } else {
                self.bits[w] &= !(1 << (tid % 64));
            }
        } else if on {
            self.large.insert(tid);
        } else {
            self.large.remove(&tid);
        }
    }
}

/// One host's threads whose name (not empty) and thread group the W2A machine holds.
#[derive(Default)]
pub(crate) struct KnownThreads {
    names: Tids,
    groups: Tids,
}

impl KnownThreads {
    /// What the machine holds now, from each of its threads: its tid, whether it has a name
    /// (not empty) and whether it has a group.
    pub fn of_threads(threads: impl Iterator<Item = (u32, bool, bool)>) -> KnownThreads {
        let mut k = KnownThreads::default();
        for (tid, named, grouped) in threads.filter(|t| t.0 != 0) {
            k.names.set(tid, named);
            k.groups.set(tid, grouped);
        }
        k
    }

    /// Whether the decoder should read `tid`'s name.
    #[inline]
    pub fn needs_name(&self, tid: u32) -> bool {
        tid != 0 && !self.names.contains(tid)
    }

    /// Whether the decoder should read `tid`'s thread group.
    #[inline]
    pub fn needs_tgid(&self, tid: u32) -> bool {
        tid != 0 && !self.groups.contains(tid)
    }

    /// What the machine will hold once it has the event `ctx`, `ev` (a side-band record
    /// when `sideband`).
    pub fn learn(&mut self, ctx: &EventContext, ev: &TypedEvent, sideband: bool) {
        match *ev {
            TypedEvent::Marker { .. } => return,
            // A task's record: its own name and group only.
            TypedEvent::TaskInfo { tid, tgid, comm } => {
                if tid != u32::MAX {
                    self.task(tid, comm, tgid.filter(|g| *g != u32::MAX));
                }
                return;
            }
            TypedEvent::ProcessFork {
                child_tid,
                child_tgid,
                child_comm,
                ..
            } if sideband => {
                if child_tid != u32::MAX {
                    self.task(child_tid, child_comm, child_tgid.filter(|g| *g != u32::MAX));
                }
                return;
            }
            _ if sideband => return,
            _ => {}
        }
        if let Some(tid) = ctx.tid {
            self.task(tid, ctx.comm, ctx.tgid);
        }
        match *ev {
            TypedEvent::ProcessFork {
                child_tid,
                child_tgid,
                child_comm,
                ..
            } => self.task(child_tid, child_comm, child_tgid),
            TypedEvent::SchedSwitch {
                prev_tid,
                prev_comm,
                next_tid,
                next_comm,
                ..
            } => {
                self.task(prev_tid, prev_comm, None);
                self.task(next_tid, next_comm, None);
            }
            TypedEvent::SchedWakeup { tid, comm, .. } => self.task(tid, comm, None),
            _ => {}
        }
    }

    /// The machine stores `comm` as the thread's name (an empty one makes it unknown again)
    /// and `tgid` as its group.
    fn task(&mut self, tid: u32, comm: Option<&str>, tgid: Option<u32>) {
        if tid == 0 {
            return;
        }
        if let Some(comm) = comm {
            self.names.set(tid, !comm.is_empty());
        }
        if tgid.is_some() {
            self.groups.set(tid, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::TaskState;

    fn ctx(tid: u32, comm: Option<&str>, tgid: Option<u32>) -> EventContext<'_> {
        EventContext {
            ts: 0,
            cpu: 0,
            tid: Some(tid),
            tgid,
            comm,
        }
    }

    #[test]
    fn names_and_groups_are_known_once_delivered() {
        let mut k = KnownThreads::default();
        assert!(k.needs_name(7) && k.needs_tgid(7));
        assert!(!k.needs_name(0), "the idle task is never named");
        let switch = TypedEvent::SchedSwitch {
            prev_tid: 7,
            prev_comm: Some("CPU 0/KVM"),
            prev_state: TaskState::Sleeping,
            next_tid: 5_000_000,
            next_comm: Some("qemu"),
        };
        k.learn(&ctx(7, None, Some(3)), &switch, false);
        assert!(!k.needs_name(7) && !k.needs_tgid(7));
        assert!(!k.needs_name(5_000_000), "a tid past the bit set");
        assert!(k.needs_tgid(5_000_000));
        // An empty name makes the thread's name unknown again, as the machine stores it.
        let renamed = TypedEvent::SchedWakeup {
            tid: 7,
            comm: Some(""),
            target_cpu: None,
        };
        k.learn(&ctx(9, None, None), &renamed, false);
        assert!(k.needs_name(7));
    }

    #[test]
    fn markers_and_side_band_contexts_teach_nothing() {
        let mut k = KnownThreads::default();
        k.learn(
            &ctx(4, Some("marker-writer"), Some(4)),
            &TypedEvent::Marker { text: "x" },
            false,
        );
        assert!(k.needs_name(4) && k.needs_tgid(4));
        let info = TypedEvent::TaskInfo {
            tid: 6,
            tgid: Some(2),
            comm: Some("IO io1"),
        };
        k.learn(&ctx(4, Some("perf"), Some(4)), &info, true);
        assert!(
            k.needs_name(4),
            "a side-band record's context is not stored"
        );
        assert!(!k.needs_name(6) && !k.needs_tgid(6));
    }
}

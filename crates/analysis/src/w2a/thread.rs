//! One host thread's W2A machine: its scheduling state, running mode, the wait whose cause is
//! not decided yet, and its per-thread tables (exits, injected vectors, preemptors).

use virtflow_model::{Isa, StateTimes, WaitCause, WaitSignals, WaitTimes};
use virtflow_trace::Timestamp;

use crate::histogram::Durations;
use crate::layout::IrqSource;

/// What a running thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Guest,
    /// In the host kernel after an exit (`None`: the exit came before the trace began).
    Hypervisor(Option<(Isa, u64)>),
    UserSpace(u32),
}

/// A thread's scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sched {
    Unknown,
    Running,
    Preempted { by: u32 },
    Blocked,
    Ready,
}

/// A state interval as recorded during the pass; preemptors become [`virtflow_model::Preemptor`]
/// once VMs are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawState {
    Run(Mode),
    Preempted(u32),
    Ready,
    Waiting(WaitCause),
    Unknown,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct RawInterval {
    pub start: Timestamp,
    pub end: Timestamp,
    pub state: RawState,
}

/// A wait whose end is known but whose cause waits for the vectors injected at the next
/// entries.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingWait {
    pub(super) start: Timestamp,
    pub(super) end: Timestamp,
    pub(super) waker: Option<WaitCause>,
    /// The class of the first vector injected after the wake-up, when known.
    pub(super) vector: Option<WaitCause>,
    /// Every class injected since the wake-up (bit per [`WaitCause::ALL`] index): KVM injects
    /// the highest pending vector first, so the device interrupt that woke the vCPU may come
    /// after a timer tick that became pending meanwhile.
    pub(super) seen: u8,
    /// Entries since the wake-up.
    pub(super) entries: u8,
    /// Index of its placeholder in the thread's intervals, when intervals are kept.
    pub(super) interval: Option<usize>,
}

/// Exit-reason accumulator of one thread.
#[derive(Clone, Debug)]
pub(crate) struct ExitAcc {
    pub isa: Isa,
    pub code: u64,
    pub name: Option<String>,
    pub count: u64,
    pub timed: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
}

/// Intervals a thread keeps before it is known to be a vCPU: enough to cover the few state
/// changes between its first appearance and its first KVM event.
const PRE_VCPU_INTERVALS: usize = 64;

pub(crate) struct Thread {
    pub tid: u32,
    pub tgid: Option<u32>,
    pub comm: String,
    pub sched: Sched,
    pub mode: Mode,
    pub since: Timestamp,
    /// The CPU it last ran on (or was moved to).
    pub cpu: u32,
    pub is_vcpu: bool,
    pub vcpu_id: Option<u32>,
    pub isa: Option<Isa>,
    pub(crate) pending_exit: Option<(Timestamp, usize)>,
    pub exits: Vec<ExitAcc>,
    pub injections: Vec<(u32, u64)>,
    pub(super) pending_wait: Option<PendingWait>,
    pub times: StateTimes,
    pub waits: WaitTimes,
    pub signals: WaitSignals,
    pub intervals: Vec<RawInterval>,
    pub intervals_dropped: bool,
    pub preempted_by: Vec<(u32, u64, u64)>,
    pub ready: Option<Box<Durations>>,
    /// The guest interrupt it raised last since it started running (behaviour of a helper
    /// thread): an MSI (a virtio device) or a legacy GSI line.
    pub(crate) raised_irq: Option<IrqSource>,
    /// Sent an IPI since its last exit (a vCPU waking a sibling).
    pub(crate) ipi_since_exit: bool,
    pub(crate) run_start: Option<Timestamp>,
    pub cpu_ns: u64,
}

impl Thread {
    pub(crate) fn new(tid: u32, start: Timestamp) -> Thread {
        Thread {
            tid,
            tgid: None,
            comm: String::new(),
            sched: Sched::Unknown,
            mode: Mode::Hypervisor(None),
            since: start,
            cpu: u32::MAX,
            is_vcpu: false,
            vcpu_id: None,
            isa: None,
            pending_exit: None,
            exits: Vec::new(),
            injections: Vec::new(),
            pending_wait: None,
            times: StateTimes::default(),
            waits: WaitTimes::default(),
            signals: WaitSignals::default(),
            intervals: Vec::new(),
            intervals_dropped: false,
            preempted_by: Vec::new(),
            ready: None,
            raised_irq: None,
            ipi_since_exit: false,
            run_start: None,
            cpu_ns: 0,
        }
    }

    pub(crate) fn raw_state(&self) -> RawState {
        match self.sched {
            Sched::Unknown => RawState::Unknown,
            Sched::Running => RawState::Run(self.mode),
            Sched::Preempted { by } => RawState::Preempted(by),
            Sched::Ready => RawState::Ready,
            // Blocked intervals are written when the wait's cause is decided.
            Sched::Blocked => RawState::Waiting(WaitCause::Other),
        }
    }

    pub(crate) fn push_interval(&mut self, keep: bool, iv: RawInterval) -> Option<usize> {
        if !keep || iv.end <= iv.start {
            return None;
        }
        if !self.is_vcpu && self.intervals.len() >= PRE_VCPU_INTERVALS {
            self.intervals.drain(..PRE_VCPU_INTERVALS / 2);
            self.intervals_dropped = true;
        }
        if let Some(last) = self.intervals.last_mut() {
            if last.end == iv.start && same_state(last.state, iv.state) {
                last.end = iv.end;
                return Some(self.intervals.len() - 1);
            }
        }
        self.intervals.push(iv);
        Some(self.intervals.len() - 1)
    }

    /// Ends the current state at `ts` (accounting its time) without choosing the next.
    pub(crate) fn close(&mut self, keep: bool, ts: Timestamp) {
        let ts = ts.max(self.since);
        let ns = (ts - self.since) as u64;
        match self.sched {
            Sched::Blocked => {
                // The previous undecided wait, if any, gets no vector: decide it now.
                self.resolve_wait(keep);
                let interval = self.push_interval(
                    keep,
                    RawInterval {
                        start: self.since,
                        end: ts,
                        state: RawState::Waiting(WaitCause::Other),
                    },
                );
                self.pending_wait = Some(PendingWait {
                    start: self.since,
                    end: ts,
                    waker: None,
                    vector: None,
                    seen: 0,
                    entries: 0,
                    interval,
                });
            }
            Sched::Running => {
                self.times
                    .add(&raw_to_accounting(RawState::Run(self.mode)), ns);
                let state = RawState::Run(self.mode);
                self.push_interval(
                    keep,
                    RawInterval {
                        start: self.since,
                        end: ts,
                        state,
                    },
                );
            }
            _ => {
                let state = self.raw_state();
                self.times.add(&raw_to_accounting(state), ns);
                self.push_interval(
                    keep,
                    RawInterval {
                        start: self.since,
                        end: ts,
                        state,
                    },
                );
            }
        }
        self.since = ts;
    }

    pub(crate) fn set(&mut self, keep: bool, ts: Timestamp, sched: Sched) {
        self.close(keep, ts);
        self.sched = sched;
    }

    /// Switches the running mode (guest ↔ hypervisor ↔ user space); a thread not known to be
    /// running is running now.
    pub(crate) fn set_mode(&mut self, keep: bool, ts: Timestamp, mode: Mode) {
        if self.sched != Sched::Running || self.mode != mode {
            self.close(keep, ts);
        }
        self.sched = Sched::Running;
        self.mode = mode;
    }

    /// Decides the cause of the pending wait from what is known now, and accounts it.
    pub(crate) fn resolve_wait(&mut self, keep: bool) {
        let Some(w) = self.pending_wait.take() else {
            return;
        };
        self.signals.waits += 1;
        let cause = match (w.waker, w.vector) {
            (Some(a), _) if w.seen & cause_bit(a) != 0 => {
                self.signals.agree += 1;
                a
            }
            (Some(a), Some(_)) => {
                self.signals.disagree += 1;
                a
            }
            (Some(a), None) => {
                self.signals.waker_only += 1;
                a
            }
            (None, Some(b)) => {
                self.signals.vector_only += 1;
                b
            }
            (None, None) => {
                self.signals.neither += 1;
                WaitCause::Other
            }
        };
        *self.times.waiting.get_mut(cause) += (w.end - w.start) as u64;
        *self.waits.get_mut(cause) += 1;
        if keep {
            if let Some(iv) = w.interval.and_then(|i| self.intervals.get_mut(i)) {
                if iv.start == w.start {
                    iv.state = RawState::Waiting(cause);
                }
            }
        }
    }
}

/// Whether two recorded states read the same in the model (waits are never merged: each
/// gets its own cause).
fn same_state(a: RawState, b: RawState) -> bool {
    let unknown = |s| matches!(s, RawState::Unknown | RawState::Run(Mode::Hypervisor(None)));
    match (a, b) {
        (RawState::Waiting(_), _) | (_, RawState::Waiting(_)) => false,
        _ if unknown(a) && unknown(b) => true,
        _ => a == b,
    }
}

fn raw_to_accounting(state: RawState) -> virtflow_model::VcpuState {
    use virtflow_model::VcpuState as V;
    match state {
        RawState::Run(Mode::Guest) => V::Guest,
        RawState::Run(Mode::Hypervisor(Some((isa, code)))) => V::Hypervisor { isa, code },
        // Running, but since before the trace began or a loss: in guest or in the host?
        RawState::Run(Mode::Hypervisor(None)) => V::Unknown,
        RawState::Run(Mode::UserSpace(reason)) => V::UserSpace { reason },
        RawState::Preempted(_) => V::Preempted {
            by: virtflow_model::Preemptor::Unknown,
        },
        RawState::Ready => V::Ready,
        RawState::Waiting(cause) => V::Waiting { cause },
        RawState::Unknown => V::Unknown,
    }
}

/// The cause a device interrupt stands for: virtio devices signal with MSIs, from vhost for
/// the network and from the VMM's threads for the disk; legacy GSI lines (serial, RTC) are
/// something else.
pub(super) fn device_cause(kind: IrqSource, vhost: bool) -> WaitCause {
    match kind {
        IrqSource::Gsi => WaitCause::Other,
        _ if vhost => WaitCause::Network,
        _ => WaitCause::Disk,
    }
}

/// Entries after a wake-up whose injected vectors count as the wake-up's: enough for the
/// guest to acknowledge a timer tick that was injected first (an exit, an entry).
pub(super) const VECTOR_ENTRIES: u8 = 3;

pub(super) fn cause_bit(c: WaitCause) -> u8 {
    1 << WaitCause::ALL.iter().position(|x| *x == c).unwrap_or(4)
}

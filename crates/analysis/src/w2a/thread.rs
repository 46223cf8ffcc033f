//! One host thread's W2A machine: its scheduling state, running mode, the wait whose cause is
//! not decided yet, and its per-thread tables (exits, injected vectors, preemptors).

use virtflow_model::{Isa, StateTimes, WaitCause, WaitSignals, WaitTimes};
use virtflow_trace::Timestamp;

use super::levels::{Class, Levels};
use crate::graph::GraphBuilder;
use crate::histogram::Durations;
use crate::layout::IrqSource;
use crate::series::{Clockwork, Series};

/// What a thread's state changes write besides the thread itself: whether intervals are
/// kept, the host's series (when kept) and the overcommitment's live state.
pub(crate) struct Books<'a> {
    pub keep: bool,
    pub series: bool,
    pub clock: &'a Clockwork,
    pub levels: &'a mut Levels,
    /// The execution graph, when the run builds it.
    pub graph: Option<&'a mut GraphBuilder>,
}

/// What one vCPU did per bucket of its host's time line (see `virtflow_model::VcpuActivity`).
#[derive(Default)]
pub(crate) struct ThreadSeries {
    pub guest: Series,
    pub hypervisor: Series,
    pub preempted: Series,
    pub ready: Series,
    pub waiting: [Series; 5],
    pub unknown: Series,
    pub exits: Series,
    pub waits: [Series; 5],
    /// Injections per vector: their classes are known only at the end of the pass.
    pub injections: Vec<(u32, Series)>,
}

/// Which series a state's time goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Guest,
    Hypervisor,
    Preempted,
    Ready,
    Waiting(WaitCause),
    Unknown,
}

impl ThreadSeries {
    fn add(&mut self, clock: &Clockwork, kind: SpanKind, from: Timestamp, to: Timestamp) {
        let s = match kind {
            SpanKind::Guest => &mut self.guest,
            SpanKind::Hypervisor => &mut self.hypervisor,
            SpanKind::Preempted => &mut self.preempted,
            SpanKind::Ready => &mut self.ready,
            SpanKind::Waiting(c) => &mut self.waiting[cause_index(c)],
            SpanKind::Unknown => &mut self.unknown,
        };
        s.add_span(clock, from, to);
    }
}

/// The index of a cause in [`WaitCause::ALL`] (and in the series arrays).
pub(crate) fn cause_index(c: WaitCause) -> usize {
    WaitCause::ALL.iter().position(|x| *x == c).unwrap_or(4)
}

/// State spans a thread keeps before it is known to be a vCPU, for its series.
const PRE_VCPU_SPANS: usize = 64;

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
    /// Its index among the analyzer's threads (how the overcommitment's log names it).
    idx: u32,
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
    /// Its ready time by the task that held the pCPU until it ran (never the idle task).
    pub ready_by: Vec<(u32, u64)>,
    pub ready: Option<Box<Durations>>,
    /// The guest interrupt it raised last since it started running (behaviour of a helper
    /// thread): an MSI (a virtio device) or a legacy GSI line.
    pub(crate) raised_irq: Option<IrqSource>,
    /// Sent an IPI since its last exit (a vCPU waking a sibling).
    pub(crate) ipi_since_exit: bool,
    pub(crate) run_start: Option<Timestamp>,
    pub cpu_ns: u64,
    /// Its series, once it is known to be a vCPU and the run keeps series.
    pub series: Option<Box<ThreadSeries>>,
    /// Before that: its last state spans, to replay into the series then.
    pre_spans: Vec<(Timestamp, Timestamp, SpanKind)>,
    /// Its class as last told to the overcommitment's [`Levels`].
    class: Class,
    /// Since when its runnable time is on its current CPU.
    cpu_since: Timestamp,
    /// Whether [`Levels`] may hold a candidate history of it (not known to be a vCPU yet).
    candidate: bool,
    /// It ran a whole stint without a KVM event: a host task, followed no more as a
    /// candidate (a host thread would otherwise cost a history at each wake-up).
    host_task: bool,
    /// Its current stint began with a known state before (not at its first sighting, nor
    /// after a loss): what it does until it stops running is all there is of it.
    stint_whole: bool,
    /// Whether it showed a KVM event since it was last switched in.
    pub(crate) kvm_in_stint: bool,
}

impl Thread {
    pub(crate) fn new(tid: u32, idx: usize, start: Timestamp) -> Thread {
        Thread {
            tid,
            idx: idx as u32,
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
            ready_by: Vec::new(),
            ready: None,
            raised_irq: None,
            ipi_since_exit: false,
            run_start: None,
            cpu_ns: 0,
            series: None,
            pre_spans: Vec::new(),
            class: Class::default(),
            cpu_since: start,
            candidate: false,
            host_task: false,
            stint_whole: false,
            kvm_in_stint: false,
        }
    }

    /// Wanting a pCPU (running in a known mode, preempted, ready), and wanting one it does
    /// not have (preempted, ready). Running in a mode not known yet is the unknown state, as
    /// the vCPU's time counts it: runnable time is the time of runnable states.
    #[inline]
    fn class_now(&self) -> Class {
        match self.sched {
            Sched::Running => Class {
                runnable: self.mode != Mode::Hypervisor(None),
                steal: false,
            },
            Sched::Preempted { .. } | Sched::Ready => Class {
                runnable: true,
                steal: true,
            },
            Sched::Blocked | Sched::Unknown => Class::default(),
        }
    }

    /// Tells the overcommitment's [`Levels`] its class from `ts` when it changed. A thread
    /// not known to be a vCPU is followed from its first runnable state: it may turn out to
    /// be one.
    #[inline]
    fn sync_class(&mut self, b: &mut Books, ts: Timestamp) {
        let class = self.class_now();
        if class == self.class {
            return;
        }
        self.class = class;
        if self.is_vcpu || self.candidate || (class.runnable && !self.host_task) {
            b.levels.class(self.idx, self.is_vcpu, ts, class);
            self.candidate |= !self.is_vcpu;
        }
    }

    /// Counts its runnable time on its current CPU up to `ts` (a state's end, a move).
    #[inline(always)]
    fn level_span(&mut self, b: &mut Books, ts: Timestamp) {
        let from = self.cpu_since.max(self.since);
        if self.class.runnable && ts > from && (self.is_vcpu || self.candidate) {
            b.levels
                .runnable_span(b.clock, self.idx, self.is_vcpu, self.cpu, from, ts);
        }
        self.cpu_since = ts.max(from);
    }

    /// It runs or waits on `cpu` from `ts` (a migration, a wake-up's target CPU, an event on
    /// a CPU it was not known to be on).
    #[inline]
    pub(crate) fn move_to(&mut self, b: &mut Books, ts: Timestamp, cpu: u32) {
        if cpu != self.cpu {
            self.level_span(b, ts);
            self.cpu = cpu;
        }
    }

    /// The kind of series span its current state makes (`None`: a wait, written when its
    /// cause is decided).
    #[inline(always)]
    fn span_kind(&self) -> Option<SpanKind> {
        Some(match self.sched {
            Sched::Running => match self.mode {
                Mode::Guest => SpanKind::Guest,
                Mode::Hypervisor(None) => SpanKind::Unknown,
                _ => SpanKind::Hypervisor,
            },
            Sched::Preempted { .. } => SpanKind::Preempted,
            Sched::Ready => SpanKind::Ready,
            Sched::Unknown => SpanKind::Unknown,
            Sched::Blocked => return None,
        })
    }

    /// Writes a state span into its series, or keeps it for them while the thread is not
    /// known to be a vCPU. (Inlined up to the test: most runs keep no series.)
    #[inline(always)]
    fn span(&mut self, b: &mut Books, kind: SpanKind, from: Timestamp, to: Timestamp) {
        if b.series && to > from {
            self.write_span(b, kind, from, to);
        }
    }

    #[inline(never)]
    fn write_span(&mut self, b: &mut Books, kind: SpanKind, from: Timestamp, to: Timestamp) {
        match &mut self.series {
            Some(s) => s.add(b.clock, kind, from, to),
            None if !self.is_vcpu => {
                if self.pre_spans.len() >= PRE_VCPU_SPANS {
                    self.pre_spans.drain(..PRE_VCPU_SPANS / 2);
                }
                self.pre_spans.push((from, to, kind));
            }
            None => {}
        }
    }

    /// The thread is a vCPU (its first KVM event): it counts among the host's vCPUs from its
    /// first runnable state, and its series start with what it did before.
    pub(crate) fn mark_vcpu(&mut self, b: &mut Books) {
        if self.is_vcpu {
            return;
        }
        self.is_vcpu = true;
        self.kvm_in_stint = true;
        let history = self.candidate && b.levels.resolve(b.clock, self.idx);
        self.candidate = false;
        if !history && self.class.runnable {
            // Its history was not followed (it ran a whole stint without a KVM event before)
            // or was dropped (the overcommitment's memory bound): from its current state on.
            b.levels.class(self.idx, true, self.since, self.class);
        }
        if b.series {
            let mut s = Box::<ThreadSeries>::default();
            for (from, to, kind) in self.pre_spans.drain(..) {
                s.add(b.clock, kind, from, to);
            }
            self.series = Some(s);
        }
        self.pre_spans = Vec::new();
    }

    /// Ends the current state at `ts` and enters `sched`.
    pub(crate) fn enter(&mut self, b: &mut Books, ts: Timestamp, sched: Sched) {
        let before = self.sched;
        let was_running = before == Sched::Running;
        self.close(b, ts);
        self.sched = sched;
        let running = sched == Sched::Running;
        if was_running && !running && !self.is_vcpu && !self.kvm_in_stint && self.stint_whole {
            // A whole stint without a KVM event: no vCPU, as far as its past goes.
            self.host_task = true;
            if self.candidate {
                b.levels.discard(self.idx);
                self.candidate = false;
                self.class = Class::default();
            }
        }
        if running && !was_running {
            self.kvm_in_stint = false;
            self.stint_whole = before != Sched::Unknown;
        }
        self.sync_class(b, self.since);
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

    /// Keeps `iv` among its intervals, when the run keeps them (inlined up to that test: most
    /// runs keep none); where it lies among them.
    #[inline(always)]
    pub(crate) fn push_interval(&mut self, keep: bool, iv: RawInterval) -> Option<usize> {
        if !keep || iv.end <= iv.start {
            return None;
        }
        self.keep_interval(iv)
    }

    #[inline(never)]
    fn keep_interval(&mut self, iv: RawInterval) -> Option<usize> {
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
    pub(crate) fn close(&mut self, b: &mut Books, ts: Timestamp) {
        let keep = b.keep;
        let ts = ts.max(self.since);
        let ns = (ts - self.since) as u64;
        self.level_span(b, ts);
        if let Sched::Preempted { by } = self.sched {
            // Counted as its time is, so that a preemption still open at the trace's end or
            // at a loss is in the table too.
            match self.preempted_by.iter_mut().find(|(b, _, _)| *b == by) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += ns;
                }
                None => self.preempted_by.push((by, 1, ns)),
            }
        }
        if b.series {
            if let Some(kind) = self.span_kind() {
                self.span(b, kind, self.since, ts);
            }
        }
        if let Some(g) = b.graph.as_deref_mut() {
            use virtflow_graph::State as G;
            let (from, tid) = (self.since, self.tid);
            match self.sched {
                Sched::Running => g.segment(tid, from, ts, G::Running, None),
                Sched::Preempted { by } => g.segment(tid, from, ts, G::Preempted, Some(by)),
                Sched::Ready => g.segment(tid, from, ts, G::Preempted, None),
                // Nothing known: a hole in the chain, which a path reads as unknown.
                Sched::Unknown => {}
                Sched::Blocked => g.wait(tid, from, ts),
            }
        }
        match self.sched {
            Sched::Blocked => {
                // The previous undecided wait, if any, gets no vector: decide it now.
                self.resolve_wait(b);
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

    /// Switches the running mode (guest ↔ hypervisor ↔ user space); a thread not known to be
    /// running is running now.
    pub(crate) fn set_mode(&mut self, b: &mut Books, ts: Timestamp, mode: Mode) {
        if self.sched != Sched::Running {
            self.enter(b, ts, Sched::Running);
        } else if self.mode != mode {
            self.close(b, ts);
        }
        self.mode = mode;
        self.sync_class(b, self.since);
    }

    /// Decides the cause of the pending wait from what is known now, and accounts it.
    pub(crate) fn resolve_wait(&mut self, b: &mut Books) {
        let keep = b.keep;
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
        self.span(b, SpanKind::Waiting(cause), w.start, w.end);
        if let Some(s) = &mut self.series {
            s.waits[cause_index(cause)].add_at(b.clock, w.end, 1);
        }
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
    1 << cause_index(c)
}

//! The W2A state machine: every host thread's state (running in guest or hypervisor,
//! preempted, ready, waiting, unknown), fed typed events in time order.
//!
//! Every thread gets the same small machine, because a thread is known to be a vCPU only at
//! its first KVM event, and its states before that (a wait, a wake-up…) count too. Memory is
//! O(threads): per thread, its current state, the wait whose cause is not yet decided, and
//! per-thread tables (exits, injected vectors, preemptors) bounded by the vocabulary.
//!
//! Helper threads and VM membership are learned from behaviour, in a union-find over threads
//! and processes ([`Groups`]): a thread group id (LTTng `pid`, perf `perf_pid`) links a thread
//! to its process; `vhost-<pid>` names its process; a thread that raises a guest interrupt and
//! then wakes a vCPU thread belongs to that vCPU's VM; a vCPU that sends an IPI and wakes
//! another vCPU shares its VM. Each group learns which device vectors its helpers raise.
mod groups;
mod levels;
mod thread;

pub(crate) use groups::Groups;
pub use groups::{fixed_vector_class, process_key, thread_key, vhost_pid};
pub(crate) use levels::Levels;
use thread::{cause_bit, device_cause, ExitAcc, VECTOR_ENTRIES};
pub(crate) use thread::{cause_index, Books, Mode, RawState, Sched, Thread, ThreadSeries};

use rustc_hash::FxHashMap;
use virtflow_model::WaitCause;
use virtflow_trace::{LostEvents, Timestamp};

use crate::graph::GraphBuilder;
use crate::histogram::Durations;
use crate::layout::{EventContext, IrqKind, IrqSource, TaskState, TypedEvent};
use crate::series::Clockwork;

/// The [`Books`] of an [`Analyzer`], borrowed beside one of its threads.
macro_rules! books {
    ($s:expr) => {
        &mut Books {
            keep: $s.keep,
            series: $s.series,
            clock: &$s.clock,
            levels: &mut $s.levels,
            graph: $s.graph.as_mut(),
        }
    };
}

/// Tids below this are indexed directly (pid_max defaults to 4 Mi on 64-bit hosts; most
/// tids are far smaller). The table grows only up to the largest tid seen.
const DIRECT_TIDS: usize = 1 << 22;

#[derive(Clone, Copy, Default)]
struct Cpu {
    /// The thread running (0: idle), when known.
    current: Option<u32>,
    timer_depth: u16,
    irq_depth: u16,
    /// The interrupt contexts open on it, innermost last (for the execution graph; deeper
    /// nesting is counted in the depths only).
    stack: [Option<IrqKind>; 4],
    open: u8,
}

impl Cpu {
    fn innermost(&self) -> Option<IrqKind> {
        self.open
            .checked_sub(1)
            .and_then(|i| self.stack.get(i as usize).copied().flatten())
    }
}

/// The whole pass's state. Fed with [`Analyzer::event`] and [`Analyzer::lost`] in time order,
/// closed with [`Analyzer::finish`].
pub(crate) struct Analyzer {
    keep: bool,
    /// Keep each vCPU's activity series.
    series: bool,
    /// The buckets of the host's series.
    pub clock: Clockwork,
    /// Runnable vCPUs and idle CPUs over time (overcommitment).
    pub levels: Levels,
    /// The execution graph, when the run builds it.
    pub graph: Option<GraphBuilder>,
    pub start: Option<Timestamp>,
    pub end: Timestamp,
    cpus: Vec<Cpu>,
    pub threads: Vec<Thread>,
    /// Thread index by tid, for the usual small tids (a per-event hash look-up shows in
    /// profiles); larger tids go to `index`.
    direct: Vec<u32>,
    index: FxHashMap<u32, usize>,
    pub groups: Groups,
    pub kvm_events: u64,
    /// KVM events whose thread could not be told (no context field, no switch seen yet).
    pub unattributed: u64,
    pub lost_notices: u64,
    pub cpu_count: u32,
}

impl Analyzer {
    pub fn new(keep_intervals: bool, series: bool) -> Analyzer {
        Analyzer {
            keep: keep_intervals,
            series,
            clock: Clockwork::default(),
            levels: Levels::new(series),
            graph: None,
            start: None,
            end: 0,
            cpus: Vec::new(),
            threads: Vec::new(),
            direct: Vec::new(),
            index: FxHashMap::default(),
            groups: Groups::default(),
            kvm_events: 0,
            unattributed: 0,
            lost_notices: 0,
            cpu_count: 0,
        }
    }

    /// The index of the thread `tid`, created when first seen. The look-up is inlined into
    /// every handler; creating a thread is rare and kept out of line.
    #[inline]
    fn thread(&mut self, tid: u32) -> usize {
        match self.thread_index(tid) {
            Some(i) => i,
            None => self.new_thread(tid),
        }
    }

    #[cold]
    #[inline(never)]
    fn new_thread(&mut self, tid: u32) -> usize {
        let i = self.threads.len();
        self.threads
            .push(Thread::new(tid, i, self.start.unwrap_or(self.end)));
        if (tid as usize) < DIRECT_TIDS {
            if self.direct.len() <= tid as usize {
                self.direct.resize(tid as usize + 1, u32::MAX);
            }
            self.direct[tid as usize] = i as u32;
        } else {
            self.index.insert(tid, i);
        }
        i
    }

    #[inline]
    pub fn thread_index(&self, tid: u32) -> Option<usize> {
        if (tid as usize) < DIRECT_TIDS {
            match self.direct.get(tid as usize) {
                Some(&i) if i != u32::MAX => Some(i as usize),
                _ => None,
            }
        } else {
            self.far_thread_index(tid)
        }
    }

    /// [`Analyzer::thread_index`] of a tid past the direct table (rare: kept out of the many
    /// places the lookup is inlined).
    #[cold]
    #[inline(never)]
    fn far_thread_index(&self, tid: u32) -> Option<usize> {
        self.index.get(&tid).copied()
    }

    #[inline]
    fn cpu(&mut self, cpu: u32) -> Option<&mut Cpu> {
        let c = cpu as usize;
        if c >= self.cpus.len() {
            return self.new_cpu(cpu);
        }
        Some(&mut self.cpus[c])
    }

    /// [`Analyzer::cpu`] of a CPU not seen before (`NO_CPU`, or past any plausible count:
    /// none).
    #[cold]
    #[inline(never)]
    fn new_cpu(&mut self, cpu: u32) -> Option<&mut Cpu> {
        let c = cpu as usize;
        if cpu == virtflow_trace::EventHeader::NO_CPU || c > 1 << 16 {
            return None;
        }
        self.cpus.resize(c + 1, Cpu::default());
        self.cpu_count = self.cpu_count.max(cpu + 1);
        self.levels.pcpus = self.cpu_count;
        Some(&mut self.cpus[c])
    }

    /// Whether the run keeps series.
    pub fn keeps_series(&self) -> bool {
        self.series
    }

    /// Whether the thread's name is still unknown (the decoder skips names it already has).
    /// The idle task (tid 0) is no thread of the analysis: its name is never needed.
    #[inline]
    pub fn needs_name(&self, tid: u32) -> bool {
        tid != 0
            && self
                .thread_index(tid)
                .is_none_or(|i| self.threads[i].comm.is_empty())
    }

    /// Whether the thread's group is still unknown (the decoder skips groups it already has:
    /// a thread stays in its group for life).
    #[inline]
    pub fn needs_tgid(&self, tid: u32) -> bool {
        tid != 0
            && self
                .thread_index(tid)
                .is_none_or(|i| self.threads[i].tgid.is_none())
    }

    fn set_comm(&mut self, i: usize, comm: &str) {
        let t = &mut self.threads[i];
        if t.comm != comm {
            t.comm.clear();
            t.comm.push_str(comm);
            if let Some(pid) = vhost_pid(comm) {
                let tid = t.tid;
                self.groups.union(thread_key(tid), process_key(pid));
            }
        }
    }

    fn set_tgid(&mut self, i: usize, tgid: u32) {
        let t = &mut self.threads[i];
        if t.tgid != Some(tgid) {
            t.tgid = Some(tgid);
            // A vhost worker is a kernel thread: its thread group is itself, not its VM.
            if vhost_pid(&t.comm).is_none() {
                let tid = t.tid;
                self.groups.union(thread_key(tid), process_key(tgid));
            }
        }
    }

    /// The thread an event of this context belongs to: its context field, else the CPU's
    /// current thread.
    #[inline]
    pub(crate) fn current(&self, ctx: &EventContext) -> Option<u32> {
        ctx.tid
            .or_else(|| self.cpus.get(ctx.cpu as usize).and_then(|c| c.current))
    }

    /// The first kernel event starts the trace: threads known before it (from side-band
    /// records) are unknown from there.
    fn begin(&mut self, ts: Timestamp) {
        if self.start.is_none() {
            self.start = Some(ts);
            self.end = ts;
            for t in &mut self.threads {
                t.since = ts;
            }
        }
    }

    /// An event no analysis decodes still extends the trace's span and names a CPU.
    pub fn tick(&mut self, ts: Timestamp, cpu: u32) {
        self.begin(ts);
        self.end = self.end.max(ts);
        self.clock.advance(ts);
        self.cpu(cpu);
    }

    /// A side-band record (perf's `perf_comm`, `perf_fork`): names and thread groups only;
    /// its timestamp (often 0) says nothing about the trace's span.
    pub fn sideband(&mut self, ev: &TypedEvent) {
        let (tid, tgid, comm) = match *ev {
            TypedEvent::TaskInfo { tid, tgid, comm } => (tid, tgid, comm),
            TypedEvent::ProcessFork {
                child_tid,
                child_tgid,
                child_comm,
                ..
            } => (child_tid, child_tgid, child_comm),
            _ => return,
        };
        if tid == 0 || tid == u32::MAX {
            return;
        }
        let i = self.thread(tid);
        if let Some(comm) = comm {
            self.set_comm(i, comm);
        }
        if let Some(tgid) = tgid.filter(|t| *t != u32::MAX) {
            self.set_tgid(i, tgid);
        }
    }

    pub fn event(&mut self, ctx: &EventContext, ev: &TypedEvent) {
        if matches!(ev, TypedEvent::TaskInfo { .. }) {
            return self.sideband(ev);
        }
        self.cpu(ctx.cpu);
        let ts = ctx.ts;
        self.begin(ts);
        self.end = self.end.max(ts);
        self.clock.advance(ts);
        // A thread named by the event's context is running on its CPU now.
        if let Some(tid) = ctx.tid.filter(|t| *t != 0) {
            let i = self.thread(tid);
            if let Some(comm) = ctx.comm {
                self.set_comm(i, comm);
            }
            if let Some(tgid) = ctx.tgid {
                self.set_tgid(i, tgid);
            }
            if !matches!(ev, TypedEvent::SchedSwitch { .. }) {
                let t = &mut self.threads[i];
                if t.sched != Sched::Running {
                    let mode = t.mode;
                    t.set_mode(books!(self), ts, mode);
                    t.run_start.get_or_insert(ts);
                }
                t.move_to(books!(self), ts, ctx.cpu);
                if let Some(c) = self.cpu(ctx.cpu) {
                    c.current = Some(tid);
                }
            }
        }
        match *ev {
            TypedEvent::SchedSwitch {
                prev_tid,
                prev_comm,
                prev_state,
                next_tid,
                next_comm,
            } => self.switch(ctx, prev_tid, prev_comm, prev_state, next_tid, next_comm),
            TypedEvent::SchedWakeup {
                tid,
                comm,
                target_cpu,
            } => self.wakeup(ctx, tid, comm, target_cpu),
            TypedEvent::SchedMigrate { tid, dest_cpu } => {
                if tid != 0 {
                    let i = self.thread(tid);
                    self.threads[i].move_to(books!(self), ts, dest_cpu);
                }
            }
            TypedEvent::ProcessFork {
                parent_tid,
                child_tid,
                child_tgid,
                child_comm,
            } => {
                if let Some(g) = self.graph.as_mut() {
                    g.fork(parent_tid, child_tid, ts);
                }
                if child_tid != 0 {
                    let i = self.thread(child_tid);
                    if let Some(comm) = child_comm {
                        self.set_comm(i, comm);
                    }
                    if let Some(tgid) = child_tgid {
                        self.set_tgid(i, tgid);
                    }
                }
            }
            TypedEvent::IrqEnter(kind) | TypedEvent::IrqExit(kind) => {
                let enter = matches!(ev, TypedEvent::IrqEnter(_));
                if let Some(c) = self.cpu(ctx.cpu) {
                    if enter {
                        if let Some(slot) = c.stack.get_mut(c.open as usize) {
                            *slot = Some(kind);
                        }
                        c.open = c.open.saturating_add(1);
                    } else {
                        c.open = c.open.saturating_sub(1);
                    }
                    let depth = match kind {
                        IrqKind::Timer => &mut c.timer_depth,
                        _ => &mut c.irq_depth,
                    };
                    *depth = if enter {
                        depth.saturating_add(1)
                    } else {
                        depth.saturating_sub(1)
                    };
                }
            }
            _ => self.kvm(ctx, ev),
        }
    }

    fn switch(
        &mut self,
        ctx: &EventContext,
        prev: u32,
        prev_comm: Option<&str>,
        prev_state: TaskState,
        next: u32,
        next_comm: Option<&str>,
    ) {
        let ts = ctx.ts;
        let mut idle_change = None;
        if let Some(c) = self.cpu(ctx.cpu) {
            // No interrupt context spans a context switch: heal from any lost exit event.
            c.timer_depth = 0;
            c.irq_depth = 0;
            c.open = 0;
            let (was_idle, now_idle) = (c.current == Some(0), next == 0);
            if was_idle != now_idle {
                idle_change = Some(now_idle);
            }
            c.current = Some(next);
        }
        if let Some(idle) = idle_change {
            self.levels.idle_changed(ts, idle);
        }
        if prev != 0 {
            let i = self.thread(prev);
            if let Some(comm) = prev_comm {
                self.set_comm(i, comm);
            }
            let t = &mut self.threads[i];
            if let Some(start) = t.run_start.take() {
                t.cpu_ns += (ts - start).max(0) as u64;
            }
            t.move_to(books!(self), ts, ctx.cpu);
            let sched = match prev_state {
                TaskState::Runnable => Sched::Preempted { by: next },
                TaskState::Sleeping => Sched::Blocked,
            };
            t.enter(books!(self), ts, sched);
        }
        if next != 0 {
            let i = self.thread(next);
            if let Some(comm) = next_comm {
                self.set_comm(i, comm);
            }
            let t = &mut self.threads[i];
            t.run_start = Some(ts);
            t.raised_irq = None;
            let waited = (ts - t.since).max(0) as u64;
            if t.sched == Sched::Ready {
                if t.is_vcpu {
                    t.ready
                        .get_or_insert_with(|| Box::new(Durations::new()))
                        .record(waited);
                }
                // Who held the pCPU until it got it (the idle task: a wake-up's latency).
                if prev != 0 {
                    match t.ready_by.iter_mut().find(|(b, _)| *b == prev) {
                        Some(e) => e.1 += waited,
                        None => t.ready_by.push((prev, waited)),
                    }
                }
            }
            // Its wait ends on the CPU it waited on; it runs on this one.
            let mode = t.mode;
            t.set_mode(books!(self), ts, mode);
            t.move_to(books!(self), ts, ctx.cpu);
        }
    }

    fn wakeup(
        &mut self,
        ctx: &EventContext,
        tid: u32,
        comm: Option<&str>,
        target_cpu: Option<u32>,
    ) {
        if tid == 0 {
            return;
        }
        let i = self.thread(tid);
        if let Some(comm) = comm {
            self.set_comm(i, comm);
        }
        match self.threads[i].sched {
            Sched::Blocked => {
                let waker = self.waker_cause(ctx, i);
                if self.graph.is_some() {
                    let cpu = self.cpus.get(ctx.cpu as usize).copied().unwrap_or_default();
                    let current = self.current(ctx);
                    let vcpu = self.threads[i].is_vcpu.then_some(waker);
                    if let Some(g) = self.graph.as_mut() {
                        g.wake(tid, ctx.cpu, cpu.innermost(), current, vcpu);
                    }
                }
                let t = &mut self.threads[i];
                t.enter(books!(self), ctx.ts, Sched::Ready);
                if let Some(w) = t.pending_wait.as_mut() {
                    w.waker = waker;
                }
            }
            Sched::Unknown => {
                self.threads[i].enter(books!(self), ctx.ts, Sched::Ready);
            }
            _ => return,
        }
        // It waits for the CPU it was woken onto.
        if let Some(cpu) = target_cpu {
            self.threads[i].move_to(books!(self), ctx.ts, cpu);
        }
    }

    /// The first signal of a wait's cause: who woke the thread, and from which context.
    fn waker_cause(&mut self, ctx: &EventContext, target: usize) -> Option<WaitCause> {
        let cpu = self.cpus.get(ctx.cpu as usize).copied().unwrap_or_default();
        if cpu.timer_depth > 0 {
            return Some(WaitCause::Timer);
        }
        if cpu.irq_depth > 0 {
            return None;
        }
        let waker = self.current(ctx)?;
        if waker == 0 {
            // The idle task wakes a vCPU from interrupt context: its timer fired.
            return Some(WaitCause::Timer);
        }
        let target_tid = self.threads[target].tid;
        if waker == target_tid {
            return None;
        }
        let target_is_vcpu = self.threads[target].is_vcpu;
        let target_tgid = self.threads[target].tgid;
        let w = self.thread(waker);
        let (wt, wk) = (thread_key(waker), thread_key(target_tid));
        let wt_thread = &self.threads[w];
        if wt_thread.is_vcpu {
            // A vCPU of another process was not woken by this vCPU's IPI, whatever the vCPU
            // sent last: it is only the thread current when the wake-up happened.
            if wt_thread.ipi_since_exit && target_is_vcpu && self.groups.join_by_behaviour(wt, wk) {
                return Some(WaitCause::Task);
            }
            return self.groups.same(wt, wk).then_some(WaitCause::Task);
        }
        let raised = wt_thread.raised_irq?;
        let vhost = vhost_pid(&wt_thread.comm).is_some();
        if !vhost {
            if let (Some(a), Some(b)) = (wt_thread.tgid, target_tgid) {
                if a != b {
                    return None;
                }
            }
        }
        if target_is_vcpu && !self.groups.join_by_behaviour(wt, wk) {
            // Known to be of another process than the vCPU it woke: not its device.
            return None;
        }
        Some(device_cause(raised, vhost))
    }

    fn kvm(&mut self, ctx: &EventContext, ev: &TypedEvent) {
        let Some(tid) = self.current(ctx).filter(|t| *t != 0) else {
            if matches!(ev, TypedEvent::KvmEntry { .. } | TypedEvent::KvmExit { .. }) {
                self.kvm_events += 1;
                self.unattributed += 1;
            }
            return;
        };
        let ts = ctx.ts;
        let in_irq = self
            .cpus
            .get(ctx.cpu as usize)
            .is_some_and(|c| c.timer_depth > 0 || c.irq_depth > 0);
        let i = self.thread(tid);
        match *ev {
            TypedEvent::KvmEntry { vcpu_id } => {
                self.kvm_events += 1;
                let t = &mut self.threads[i];
                t.mark_vcpu(books!(self));
                if vcpu_id.is_some() {
                    t.vcpu_id = vcpu_id;
                }
                t.set_mode(books!(self), ts, Mode::Guest);
                // The vectors of the first few entries after a wake-up tell its cause.
                if let Some(w) = t.pending_wait.as_mut() {
                    w.entries += 1;
                    if w.entries >= VECTOR_ENTRIES || w.waker.is_none() {
                        t.resolve_wait(books!(self));
                    }
                }
                if let Some((at, idx)) = t.pending_exit.take() {
                    let ns = (ts - at).max(0) as u64;
                    let e = &mut t.exits[idx];
                    e.timed += 1;
                    e.total_ns += ns;
                    e.min_ns = if e.timed == 1 { ns } else { e.min_ns.min(ns) };
                    e.max_ns = e.max_ns.max(ns);
                }
            }
            TypedEvent::KvmExit {
                isa,
                code,
                name,
                vcpu_id,
            } => {
                self.kvm_events += 1;
                let t = &mut self.threads[i];
                t.mark_vcpu(books!(self));
                t.isa = Some(isa);
                if let Some(s) = &mut t.series {
                    s.exits.add_at(&self.clock, ts, 1);
                }
                if vcpu_id.is_some() {
                    t.vcpu_id = vcpu_id;
                }
                t.ipi_since_exit = false;
                let idx = match t.exits.iter().position(|e| e.isa == isa && e.code == code) {
                    Some(idx) => idx,
                    None => {
                        t.exits.push(ExitAcc {
                            isa,
                            code,
                            name: name.map(str::to_string),
                            count: 0,
                            timed: 0,
                            total_ns: 0,
                            min_ns: 0,
                            max_ns: 0,
                        });
                        t.exits.len() - 1
                    }
                };
                t.exits[idx].count += 1;
                t.pending_exit = Some((ts, idx));
                t.set_mode(books!(self), ts, Mode::Hypervisor(Some((isa, code))));
            }
            TypedEvent::KvmUserspaceExit { reason } => {
                let t = &mut self.threads[i];
                // In its VMM's user space, a vCPU thread may be switched out without entering
                // its guest again: still a vCPU.
                t.kvm_in_stint = true;
                t.set_mode(books!(self), ts, Mode::UserSpace(reason));
            }
            TypedEvent::KvmInjVirq { vector } => {
                let t = &mut self.threads[i];
                if let Some(s) = &mut t.series {
                    match s.injections.iter_mut().find(|(v, _)| *v == vector) {
                        Some(e) => e.1.add_at(&self.clock, ts, 1),
                        None => {
                            let mut series = crate::series::Series::default();
                            series.add_at(&self.clock, ts, 1);
                            s.injections.push((vector, series));
                        }
                    }
                }
                match t.injections.iter_mut().find(|(v, _)| *v == vector) {
                    Some(e) => e.1 += 1,
                    None => t.injections.push((vector, 1)),
                }
                if t.pending_wait.is_some() {
                    let class = self.groups.vector_class(thread_key(tid), vector);
                    if let (Some(w), Some(c)) = (self.threads[i].pending_wait.as_mut(), class) {
                        w.vector.get_or_insert(c);
                        w.seen |= cause_bit(c);
                    }
                }
            }
            TypedEvent::IrqRaise { vector, source } => {
                let t = &mut self.threads[i];
                if in_irq || t.is_vcpu {
                    // A timer accepted in interrupt context, or an IPI: not a device.
                    return;
                }
                // The APIC accepts what the thread raised just before.
                let kind = match source {
                    IrqSource::Apic => t.raised_irq.unwrap_or(IrqSource::Msi),
                    other => other,
                };
                t.raised_irq = Some(kind);
                if let Some(v) = vector.filter(|v| fixed_vector_class(*v).is_none()) {
                    let cause = device_cause(kind, vhost_pid(&t.comm).is_some());
                    self.groups.learn(thread_key(tid), v, cause);
                }
            }
            TypedEvent::KvmApicIpi { .. } if !in_irq => {
                self.threads[i].ipi_since_exit = true;
            }
            _ => {}
        }
    }

    pub fn lost(&mut self, l: &LostEvents) {
        self.lost_notices += 1;
        let all = l.cpu == virtflow_trace::EventHeader::NO_CPU;
        let books = books!(self);
        for t in &mut self.threads {
            if (all || t.cpu == l.cpu) && t.sched != Sched::Unknown {
                if let Some(start) = t.run_start.take() {
                    t.cpu_ns += (l.begin - start).max(0) as u64;
                }
                t.enter(books, l.begin, Sched::Unknown);
                t.resolve_wait(books);
                t.pending_exit = None;
            }
        }
        // What the CPUs ran is unknown from the loss: none is known idle.
        let idle_lost = self
            .cpus
            .iter()
            .enumerate()
            .filter(|(c, cpu)| (all || *c as u32 == l.cpu) && cpu.current == Some(0))
            .count();
        for _ in 0..idle_lost {
            self.levels.idle_changed(l.begin, false);
        }
        if all {
            self.cpus.iter_mut().for_each(|c| *c = Cpu::default());
        } else if let Some(c) = self.cpu(l.cpu) {
            *c = Cpu::default();
        }
    }

    /// Extends every state to the last event of the trace and decides pending waits.
    pub fn finish(&mut self) {
        let end = self.end;
        let books = books!(self);
        for t in &mut self.threads {
            t.close(books, end);
            t.resolve_wait(books);
            if let Some(start) = t.run_start.take() {
                t.cpu_ns += (end - start).max(0) as u64;
            }
        }
        self.levels.finish(end);
    }
}

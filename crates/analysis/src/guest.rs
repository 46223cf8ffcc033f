//! Inside the guest time of each vCPU: which guest process ran (the page-table base, CR3,
//! loaded at each entry), whether the vCPU ran its own nested (L2) guest, and whether each run
//! ended in the guest kernel or in guest user space (`guest_rip` at the exit).
//!
//! The W2A machine ([`crate::w2a`]) decides when a vCPU is in the guest; this module follows
//! it rather than keeping its own notion, so the split always adds up to the vCPU's guest time:
//! after each event it looks at the threads the event may have moved, and opens or closes a
//! guest segment when their state entered or left `guest`. Each segment is attributed to what
//! was known at its start: the last CR3 reported for the vCPU, and the L2 guest it runs.
//!
//! Nested runs: `kvm_nested_vmenter` (older `kvm_nested_vmrun`) says the coming entries run
//! L2. An exit from L2 (`kvm_nested_vmexit`) is either handled by L0, which resumes L2, or
//! reflected to L1 (`kvm_nested_vmexit_inject`). A tracer that never shows reflections leaves
//! each L2 exit undecided until the next entry: a CR3 report naming one of the L2's page tables
//! keeps it in L2; otherwise L1 runs next.
//!
//! When the run keeps series, it also writes per bucket of the host's time line what the
//! clustering by windows reads here: each vCPU's guest user time and exits by kind (the exit
//! that ends a run says why the guest left), and each guest process's guest time, entries,
//! exits and injected interrupts.
//!
//! Memory: per vCPU thread, one record per distinct CR3 and per L2 guest (and their intervals
//! only when the run keeps intervals, their series only when it keeps series).

use rustc_hash::FxHashMap;
use virtflow_model::{
    ExitKind, GuestProcess, NestedGuest, ProcessActivity, Span, VectorStat, Vm, WaitCause,
};
use virtflow_trace::{LostEvents, Timestamp};

use crate::layout::{EventContext, TypedEvent};
use crate::series::{Clockwork, Series};
use crate::w2a::{thread_key, Analyzer, Mode, Sched};

/// Guest addresses at or above this are the guest kernel's (the canonical high half of x86-64).
pub const GUEST_KERNEL_START: u64 = 0xffff_8000_0000_0000;

/// Page-table bases remembered per vCPU as belonging to its L2 guests: enough for a few L2
/// processes, bounded so that a long trace cannot grow it.
const MAX_L2_CR3S: usize = 64;

/// A guest process's series (see [`ProcessActivity`]); injections by vector, whose classes are
/// known only at the end of the pass.
#[derive(Default)]
struct ProcessSeries {
    guest: Series,
    entries: Series,
    exits: Series,
    injections: Vec<(u32, Series)>,
}

impl ProcessSeries {
    fn finish(&self, clock: &Clockwork, class: impl Fn(u32) -> WaitCause) -> ProcessActivity {
        let mut by_class: [Series; 5] = Default::default();
        for (vector, series) in &self.injections {
            by_class[WaitCause::ALL
                .iter()
                .position(|c| *c == class(*vector))
                .unwrap_or(4)]
            .add_series(clock, series);
        }
        ProcessActivity {
            guest_ns: self.guest.finish(clock),
            entries: self.entries.finish(clock),
            exits: self.exits.finish(clock),
            injections: std::array::from_fn(|i| by_class[i].finish(clock)),
        }
    }
}

/// A guest segment in progress: since when, for which process and which L2 guest.
#[derive(Clone, Copy, Debug)]
struct Open {
    start: Timestamp,
    process: Option<usize>,
    l2: Option<usize>,
}

#[derive(Default)]
struct VcpuGuest {
    open: Option<Open>,
    /// The page-table base of the last CR3 report (sticky until a loss or a switch to L1).
    cr3: Option<u64>,
    /// The L2 guest (by VMCS/VMCB) the next entries run; `None`: L1.
    l2: Option<u64>,
    /// An L2 exit was seen and nothing yet told whether L2 resumes.
    l2_exit_undecided: bool,
    l2_cr3s: Vec<u64>,
    /// Guest time since the last entry, and its process: the next exit's `guest_rip` says
    /// whether it was kernel or user time.
    run_ns: u64,
    /// The spans of that time, for the series (a run preempted in the guest has several).
    run_spans: Vec<(Timestamp, Timestamp)>,
    /// Guest time that ended in user space, per bucket (when the run keeps series).
    pub user: Series,
    /// Exits per bucket by kind ([`ExitKind::ALL`]), when the run keeps series.
    exit_kinds: [Series; 6],
    /// Per process (same index), when the run keeps series.
    process_series: Vec<ProcessSeries>,
    run_process: Option<usize>,
    kernel_ns: u64,
    user_ns: u64,
    l2_ns: u64,
    processes: Vec<GuestProcess>,
    /// Per process (same index): injected vectors with their counts; classes are known only
    /// at the end of the pass.
    process_injections: Vec<Vec<(u32, u64)>>,
    /// Vectors injected since the last entry: they go to the process the next entry runs.
    injected: Vec<u32>,
    process_index: FxHashMap<(u64, bool), usize>,
    nested: Vec<NestedGuest>,
}

impl VcpuGuest {
    /// The process and L2 guest the vCPU runs now, created on first sight.
    fn attribution(&mut self) -> (Option<usize>, Option<usize>) {
        let in_l2 = self.l2.is_some();
        let process = self.cr3.map(|cr3| {
            let processes = &mut self.processes;
            let injections = &mut self.process_injections;
            let series = &mut self.process_series;
            *self.process_index.entry((cr3, in_l2)).or_insert_with(|| {
                injections.push(Vec::new());
                series.push(ProcessSeries::default());
                processes.push(GuestProcess {
                    cr3,
                    l2: in_l2,
                    ..GuestProcess::default()
                });
                processes.len() - 1
            })
        });
        let l2 = self.l2.map(
            |vmcs| match self.nested.iter().position(|n| n.vmcs == vmcs) {
                Some(i) => i,
                None => {
                    self.nested.push(NestedGuest {
                        vmcs,
                        ..NestedGuest::default()
                    });
                    self.nested.len() - 1
                }
            },
        );
        (process, l2)
    }

    fn open(&mut self, ts: Timestamp) {
        let (process, l2) = self.attribution();
        self.open = Some(Open {
            start: ts,
            process,
            l2,
        });
    }

    /// Ends the open segment at `ts`; `clock` when the run keeps series.
    fn close(&mut self, keep: bool, clock: Option<&Clockwork>, ts: Timestamp) {
        let Some(open) = self.open.take() else {
            return;
        };
        let ns = (ts - open.start).max(0) as u64;
        let span = Span {
            start: open.start,
            end: ts,
        };
        if let Some(p) = open.process.and_then(|p| self.processes.get_mut(p)) {
            p.guest_ns += ns;
            if keep {
                push_span(&mut p.intervals, span);
            }
        }
        if let (Some(clock), Some(s)) = (
            clock,
            open.process.and_then(|p| self.process_series.get_mut(p)),
        ) {
            s.guest.add_span(clock, open.start, ts);
        }
        if let Some(n) = open.l2.and_then(|n| self.nested.get_mut(n)) {
            n.guest_ns += ns;
            self.l2_ns += ns;
            if keep {
                push_span(&mut n.intervals, span);
            }
        }
        self.run_ns += ns;
        self.run_process = open.process;
        // Bounded: a run is rarely preempted more than a few times.
        if self.run_spans.len() < 64 {
            self.run_spans.push((open.start, ts));
        }
    }

    fn remember_l2_cr3(&mut self, cr3: u64) {
        if !self.l2_cr3s.contains(&cr3) && self.l2_cr3s.len() < MAX_L2_CR3S {
            self.l2_cr3s.push(cr3);
        }
    }
}

fn push_span(spans: &mut Vec<Span>, span: Span) {
    if span.end <= span.start {
        return;
    }
    match spans.last_mut() {
        Some(last) if last.end == span.start => last.end = span.end,
        _ => spans.push(span),
    }
}

/// The guest-process and nested-guest analysis of one pass. Fed after the W2A machine with
/// the same events, in time order.
pub(crate) struct GuestTracker {
    keep: bool,
    /// By the W2A thread index; `None` for threads never seen in a guest.
    vcpus: Vec<Option<Box<VcpuGuest>>>,
    /// The tracer reports reflected L2 exits (`kvm_nested_vmexit_inject`).
    reflections_seen: bool,
}

impl GuestTracker {
    pub fn new(keep_intervals: bool) -> GuestTracker {
        GuestTracker {
            keep: keep_intervals,
            vcpus: Vec::new(),
            reflections_seen: false,
        }
    }

    #[inline]
    fn vcpu(&mut self, i: usize) -> &mut VcpuGuest {
        match self.vcpus.get(i) {
            // (Matched, then borrowed again: returning the first borrow would keep `self`
            // borrowed on the other branch.)
            Some(Some(_)) => self.vcpus[i].as_mut().expect("a vCPU just found"),
            _ => self.new_vcpu(i),
        }
    }

    /// [`GuestTracker::vcpu`] of a thread met for the first time (out of the many places
    /// the lookup is inlined).
    #[cold]
    #[inline(never)]
    fn new_vcpu(&mut self, i: usize) -> &mut VcpuGuest {
        if self.vcpus.len() <= i {
            self.vcpus.resize_with(i + 1, || None);
        }
        self.vcpus[i].get_or_insert_with(Box::default)
    }

    /// After [`Analyzer::event`] with the same event: `guest_rip` is the exit's, when the
    /// event is a KVM exit that carries it. Of most events (timers, interrupts, wake-ups)
    /// only the segments of the threads they name can change: that is done inlined into the
    /// pass, the events this tracker reads go through [`GuestTracker::work`].
    #[inline(always)]
    pub fn event(
        &mut self,
        an: &Analyzer,
        ctx: &EventContext,
        ev: &TypedEvent,
        guest_rip: Option<u64>,
    ) {
        match ev {
            TypedEvent::SchedSwitch { .. }
            | TypedEvent::GuestCr3 { .. }
            | TypedEvent::NestedEnter { .. }
            | TypedEvent::NestedExit { .. }
            | TypedEvent::KvmInjVirq { .. }
            | TypedEvent::KvmEntry { .. }
            | TypedEvent::KvmExit { .. } => self.work(an, ctx, ev, guest_rip),
            _ => {
                if let Some(i) = self.named(an, ctx) {
                    self.sync_index(an, i, ctx.ts);
                }
            }
        }
    }

    /// The W2A index of the thread an event belongs to (`None`: the idle task, or unknown),
    /// once the other thread its context names, if any, is synced.
    #[inline(always)]
    fn named(&mut self, an: &Analyzer, ctx: &EventContext) -> Option<usize> {
        let tid = an.current(ctx).filter(|t| *t != 0)?;
        if let Some(other) = ctx.tid.filter(|t| *t != tid && *t != 0) {
            self.sync(an, other, ctx.ts);
        }
        an.thread_index(tid)
    }

    /// [`GuestTracker::event`] of the events this tracker reads.
    #[inline(never)]
    fn work(&mut self, an: &Analyzer, ctx: &EventContext, ev: &TypedEvent, guest_rip: Option<u64>) {
        let ts = ctx.ts;
        if let TypedEvent::SchedSwitch {
            prev_tid, next_tid, ..
        } = *ev
        {
            self.sync(an, prev_tid, ts);
            self.sync(an, next_tid, ts);
            return;
        }
        let Some(i) = self.named(an, ctx) else {
            return;
        };
        let reflections_seen = self.reflections_seen;
        match *ev {
            TypedEvent::GuestCr3 { cr3, .. } => {
                let v = self.vcpu(i);
                if v.l2_exit_undecided {
                    v.l2_exit_undecided = false;
                    if !v.l2_cr3s.contains(&cr3) {
                        v.l2 = None;
                    }
                }
                if v.l2.is_some() {
                    v.remember_l2_cr3(cr3);
                }
                v.cr3 = Some(cr3);
            }
            TypedEvent::NestedEnter { vmcs, guest_pgd } => {
                let v = self.vcpu(i);
                v.l2 = Some(vmcs.or(guest_pgd).unwrap_or(0));
                v.l2_exit_undecided = false;
                if let Some(pgd) = guest_pgd {
                    v.remember_l2_cr3(pgd);
                }
            }
            TypedEvent::NestedExit { reflected } => {
                if reflected {
                    self.reflections_seen = true;
                }
                let v = self.vcpu(i);
                if reflected {
                    v.l2 = None;
                    v.cr3 = None;
                    v.l2_exit_undecided = false;
                } else if v.l2.is_some() && !reflections_seen {
                    v.l2_exit_undecided = true;
                }
            }
            TypedEvent::KvmInjVirq { vector } => {
                let v = self.vcpu(i);
                // Bounded: KVM injects a handful of vectors before an entry at most.
                if v.injected.len() < 16 {
                    v.injected.push(vector);
                }
            }
            TypedEvent::KvmEntry { .. } => {
                let v = self.vcpu(i);
                if v.l2_exit_undecided {
                    // No reflection reports and no L2 page table at entry: L1 runs.
                    v.l2_exit_undecided = false;
                    v.l2 = None;
                    v.cr3 = None;
                }
                v.run_ns = 0;
                v.run_process = None;
                v.run_spans.clear();
                let (process, l2) = v.attribution();
                if let Some(p) = process {
                    v.processes[p].entries += 1;
                    // Entries and their injections count at the entry, as the totals do.
                    let mut series = an.keeps_series().then(|| &mut v.process_series[p]);
                    if let Some(s) = series.as_deref_mut() {
                        s.entries.add_at(&an.clock, ts, 1);
                    }
                    for vector in v.injected.drain(..) {
                        let list = &mut v.process_injections[p];
                        match list.iter_mut().find(|(x, _)| *x == vector) {
                            Some(e) => e.1 += 1,
                            None => list.push((vector, 1)),
                        }
                        if let Some(s) = series.as_deref_mut() {
                            let at = match s.injections.iter().position(|(x, _)| *x == vector) {
                                Some(at) => at,
                                None => {
                                    s.injections.push((vector, Series::default()));
                                    s.injections.len() - 1
                                }
                            };
                            s.injections[at].1.add_at(&an.clock, ts, 1);
                        }
                    }
                }
                v.injected.clear();
                if let Some(n) = l2 {
                    v.nested[n].entries += 1;
                }
            }
            _ => {}
        }
        self.sync_index(an, i, ts);
        if let TypedEvent::KvmExit { isa, code, .. } = *ev {
            let series = an.keeps_series();
            let v = self.vcpu(i);
            if let Some(p) = v.run_process.and_then(|p| v.processes.get_mut(p)) {
                p.exits += 1;
            }
            if series {
                v.exit_kinds[ExitKind::of(isa, code).index()].add_at(&an.clock, ts, 1);
                if let Some(s) = v.run_process.and_then(|p| v.process_series.get_mut(p)) {
                    s.exits.add_at(&an.clock, ts, 1);
                }
            }
        }
        if let (TypedEvent::KvmExit { .. }, Some(rip)) = (ev, guest_rip) {
            if let Some(Some(v)) = self.vcpus.get_mut(i) {
                let kernel = rip >= GUEST_KERNEL_START;
                let ns = std::mem::take(&mut v.run_ns);
                if !kernel && an.keeps_series() {
                    for (from, to) in v.run_spans.drain(..) {
                        v.user.add_span(&an.clock, from, to);
                    }
                }
                v.run_spans.clear();
                if kernel {
                    v.kernel_ns += ns;
                } else {
                    v.user_ns += ns;
                }
                if let Some(p) = v.run_process.take().and_then(|p| v.processes.get_mut(p)) {
                    if kernel {
                        p.kernel_ns += ns;
                    } else {
                        p.user_ns += ns;
                    }
                }
            }
        }
    }

    /// Opens or closes the guest segment of `tid` to match the W2A state.
    fn sync(&mut self, an: &Analyzer, tid: u32, ts: Timestamp) {
        if tid == 0 {
            return;
        }
        if let Some(i) = an.thread_index(tid) {
            self.sync_index(an, i, ts);
        }
    }

    /// [`GuestTracker::sync`] of the W2A thread `i`. Inlined up to the test: on most events
    /// the segment already matches.
    #[inline(always)]
    fn sync_index(&mut self, an: &Analyzer, i: usize, ts: Timestamp) {
        let Some(t) = an.threads.get(i) else { return };
        let in_guest = t.sched == Sched::Running && t.mode == Mode::Guest;
        let open = matches!(self.vcpus.get(i), Some(Some(v)) if v.open.is_some());
        if in_guest != open {
            self.toggle(an, i, in_guest, ts);
        }
    }

    /// Opens (`in_guest`) or closes the guest segment of the W2A thread `i` at `ts`.
    #[inline(never)]
    fn toggle(&mut self, an: &Analyzer, i: usize, in_guest: bool, ts: Timestamp) {
        if in_guest {
            self.vcpu(i).open(ts);
        } else {
            let keep = self.keep;
            let clock = an.keeps_series().then_some(&an.clock);
            self.vcpu(i).close(keep, clock, ts);
        }
    }

    /// After [`Analyzer::lost`]: what the lost events hid is unknown, its CR3 included.
    pub fn lost(&mut self, an: &Analyzer, l: &LostEvents) {
        let keep = self.keep;
        let clock = an.keeps_series().then_some(&an.clock);
        let all = l.cpu == virtflow_trace::EventHeader::NO_CPU;
        for (i, v) in self.vcpus.iter_mut().enumerate() {
            let Some(v) = v else { continue };
            let t = &an.threads[i];
            if !(all || t.cpu == l.cpu) {
                continue;
            }
            if !(t.sched == Sched::Running && t.mode == Mode::Guest) {
                v.close(keep, clock, l.begin);
            }
            v.cr3 = None;
            v.run_ns = 0;
            v.run_process = None;
            v.run_spans.clear();
            v.injected.clear();
        }
    }

    /// After [`Analyzer::finish`]: closes every segment at the trace's end.
    pub fn finish(&mut self, an: &Analyzer) {
        let keep = self.keep;
        let clock = an.keeps_series().then_some(&an.clock);
        for v in self.vcpus.iter_mut().flatten() {
            v.close(keep, clock, an.end);
        }
    }

    /// Moves the split of each vCPU into the model (vCPUs found by their thread).
    pub fn fill(&mut self, an: &Analyzer, vms: &mut [Vm]) {
        for vcpu in vms.iter_mut().flat_map(|vm| vm.vcpus.iter_mut()) {
            let Some(i) = an.thread_index(vcpu.tid) else {
                continue;
            };
            let Some(Some(v)) = self.vcpus.get_mut(i) else {
                continue;
            };
            vcpu.guest_kernel_ns = v.kernel_ns;
            vcpu.guest_user_ns = v.user_ns;
            if let Some(a) = vcpu.activity.as_mut() {
                a.guest_user_ns = v.user.finish(&an.clock);
                a.exit_kinds = std::array::from_fn(|k| v.exit_kinds[k].finish(&an.clock));
            }
            vcpu.l2_ns = v.l2_ns;
            vcpu.processes = std::mem::take(&mut v.processes);
            let key = thread_key(vcpu.tid);
            let class = |vector: u32| {
                an.groups
                    .vector_class(key, vector)
                    .unwrap_or(WaitCause::Other)
            };
            if vcpu.activity.is_some() {
                for (p, s) in vcpu.processes.iter_mut().zip(&v.process_series) {
                    p.activity = Some(s.finish(&an.clock, class));
                }
            }
            for (p, mut list) in vcpu
                .processes
                .iter_mut()
                .zip(std::mem::take(&mut v.process_injections))
            {
                list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                p.injections = list
                    .into_iter()
                    .map(|(vector, count)| VectorStat {
                        vector,
                        class: class(vector),
                        count,
                    })
                    .collect();
            }
            vcpu.processes.retain(|p| p.guest_ns > 0 || p.entries > 0);
            vcpu.processes
                .sort_by(|a, b| b.guest_ns.cmp(&a.guest_ns).then(a.cr3.cmp(&b.cr3)));
            vcpu.nested = std::mem::take(&mut v.nested);
            vcpu.nested
                .sort_by(|a, b| b.guest_ns.cmp(&a.guest_ns).then(a.vmcs.cmp(&b.vmcs)));
        }
    }
}

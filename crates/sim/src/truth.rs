//! Ground truth: the vCPU state timeline derived from exactly the events written, with the
//! simulator's knowledge of what each wake-up really was.
//!
//! The rules are the ones a host-trace analysis can follow, so that its answer can be compared
//! with this one: guest from `kvm_entry` to the next `kvm_exit`; hypervisor (by exit reason)
//! from an exit to the next entry while the thread runs, user space from `kvm_userspace_exit`;
//! preempted from a switch-out while runnable to the switch back in; waiting (by cause) from a
//! switch-out with `prev_state` S to the `sched_waking`; ready from the waking to the switch-in;
//! unknown from the host trace's first event to the first event concerning the thread.
//!
//! Beside the states: the host's time line in buckets (`series`), its pCPU sharing
//! (`overcommit`: runnable vCPUs, steal, who preempted whom), its page ledger (`memory`) and
//! the critical paths of the `requests` scenario's requests (`paths`); each module states its
//! definitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use virtflow_model::{
    Buckets, ExitStat, HelperThread, HostMemory, HostOvercommit, Interval, Isa, PreemptionStat,
    Preemptor, StateTimes, Vcpu, VcpuState, VectorStat, Vm, WaitCause, WaitTimes,
};

use crate::event::{Event, Kind, TaskNames};
use crate::host::{exit_name, TidRole, VmInfo};

mod memory;
mod overcommit;
pub mod paths;
pub mod series;

pub use overcommit::OvercommitCause;
use series::SeriesSet;

/// Everything `truth.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Truth {
    pub scenario: String,
    pub seed: u64,
    pub isa: Isa,
    pub format: String,
    pub hosts: Vec<HostTruth>,
    pub vms: Vec<TruthVm>,
    /// Per VM, the true reason of its steal (the analysis writes a verdict in words instead).
    #[serde(default)]
    pub overcommit_causes: Vec<OvercommitCause>,
    /// Guest time per guest page-table base (CR3), when the scenario reports CR3 at entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guest_processes: Vec<GuestProcess>,
    /// For `requests`: each request with its critical path (see [`paths`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<paths::RequestTruth>,
    /// Whether `vms[].vcpus[].intervals` were kept (not for `large`, to bound memory).
    pub intervals: bool,
}

/// A VM of the truth: the model's VM, and the workload phases of the `phases` scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthVm {
    #[serde(flatten)]
    pub vm: Vm,
    /// Its workload over time, tiling the host's span (trace clock, ns); only for VMs whose
    /// workload changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
}

impl std::ops::Deref for TruthVm {
    type Target = Vm;
    fn deref(&self) -> &Vm {
        &self.vm
    }
}

/// One workload phase of a VM: `[start, end)` on its host's trace clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub start: i64,
    pub end: i64,
    /// `idle`, `cpu`, `disk` or `network`.
    pub workload: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostTruth {
    pub name: String,
    pub cpus: u32,
    /// The trace file or directory, relative to `truth.json`.
    pub trace: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub events: u64,
    /// `host_ns = slope * reference_ns + offset_ns`, the reference being the simulation time.
    pub clock: ClockTruth,
    /// The buckets of the series below (see [`series`]).
    pub buckets: Option<Buckets>,
    /// How its pCPUs were shared among vCPUs (see `overcommit`); `verdict` stays empty.
    pub overcommit: HostOvercommit,
    /// Its page ledger (see `memory`).
    pub memory: HostMemory,
}

/// What a host's tracker found, beside the states.
pub struct HostResult {
    pub vms: Vec<Vm>,
    pub guest_processes: Vec<GuestProcess>,
    pub buckets: Buckets,
    pub overcommit: HostOvercommit,
    pub memory: HostMemory,
    pub causes: Vec<OvercommitCause>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClockTruth {
    pub slope: f64,
    pub offset_ns: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GuestProcess {
    pub vm_pid: u32,
    pub vcpu: u32,
    pub cr3: u64,
    pub guest_ns: u64,
}

struct VcpuTrack {
    vm: usize,
    vcpu: u32,
    tid: u32,
    state: VcpuState,
    since: u64,
    known: bool,
    last_exit: Option<(u32, u64, u64)>, // (isa number, code, exit ts)
    /// The exit whose handling time is being measured (until the next entry).
    exit_open: Option<u64>,
    /// Waits that ended, per cause.
    waits: WaitTimes,
    preempted_by: BTreeMap<String, (Preemptor, u64, u64)>,
    times: StateTimes,
    intervals: Vec<Interval>,
    cr3: Option<u64>,
}

#[derive(Default)]
struct ExitAcc {
    count: u64,
    total: u64,
    min: u64,
    max: u64,
}

/// Follows one host's event stream and records the truth.
pub struct Tracker {
    keep_intervals: bool,
    first: Option<u64>,
    last: u64,
    pub events: u64,
    vcpus: Vec<VcpuTrack>,
    /// tid → index in `vcpus` (tids are small).
    by_tid: Vec<Option<usize>>,
    roles: BTreeMap<u32, TidRole>,
    vm_pids: Vec<u32>,
    exits: Vec<BTreeMap<(u32, u64), ExitAcc>>,
    injections: Vec<BTreeMap<u32, u64>>,
    cr3_time: BTreeMap<(usize, u32, u64), u64>,
    series: SeriesSet,
    sharing: overcommit::Sharing,
    ledger: memory::Ledger,
}

impl Tracker {
    /// `current`: the task each of the host's pCPUs runs at the start (0: its idle task);
    /// `memory`: whether the trace has page events.
    pub fn new(
        vms: &[VmInfo],
        roles: &[(u32, TidRole)],
        keep_intervals: bool,
        current: Vec<u32>,
        memory: bool,
    ) -> Tracker {
        let mut vcpus = Vec::new();
        let mut by_tid = Vec::new();
        for (vi, vm) in vms.iter().enumerate() {
            for (c, &tid) in vm.vcpu_tids.iter().enumerate() {
                if by_tid.len() <= tid as usize {
                    by_tid.resize(tid as usize + 1, None);
                }
                by_tid[tid as usize] = Some(vcpus.len());
                vcpus.push(VcpuTrack {
                    vm: vi,
                    vcpu: c as u32,
                    tid,
                    state: VcpuState::Unknown,
                    since: 0,
                    known: false,
                    last_exit: None,
                    exit_open: None,
                    waits: WaitTimes::default(),
                    preempted_by: BTreeMap::new(),
                    times: StateTimes::default(),
                    intervals: Vec::new(),
                    cr3: None,
                });
            }
        }
        let mut series = SeriesSet::new();
        let vcpu_vms: Vec<usize> = vcpus.iter().map(|v: &VcpuTrack| v.vm).collect();
        let sharing = overcommit::Sharing::new(&vcpu_vms, vms.len(), current, &mut series);
        let ledger = memory::Ledger::new(memory, vms.len(), &mut series);
        Tracker {
            series,
            sharing,
            ledger,
            keep_intervals,
            first: None,
            last: 0,
            events: 0,
            vcpus,
            by_tid,
            roles: roles.iter().cloned().collect(),
            vm_pids: vms.iter().map(|v| v.pid).collect(),
            exits: vms.iter().map(|_| BTreeMap::new()).collect(),
            injections: vms.iter().map(|_| BTreeMap::new()).collect(),
            cr3_time: BTreeMap::new(),
        }
    }

    fn idx(&self, tid: u32) -> Option<usize> {
        self.by_tid.get(tid as usize).copied().flatten()
    }

    fn set(&mut self, i: usize, ts: u64, state: VcpuState) {
        let keep = self.keep_intervals;
        let v = &mut self.vcpus[i];
        if v.known && v.state == state {
            return;
        }
        let (runnable, steal) = match state {
            VcpuState::Guest | VcpuState::Hypervisor { .. } | VcpuState::UserSpace { .. } => {
                (true, false)
            }
            VcpuState::Preempted { .. } | VcpuState::Ready => (true, true),
            VcpuState::Waiting { .. } | VcpuState::Unknown => (false, false),
        };
        self.sharing.state(i, ts, runnable, steal, &mut self.series);
        close(v, ts, keep, &mut self.cr3_time);
        v.state = state;
        v.since = ts;
        v.known = true;
    }

    fn preemptor(&self, vm: usize, next: u32, comm: &str) -> Preemptor {
        match self.roles.get(&next) {
            Some(TidRole::Vcpu { vm: w, .. }) | Some(TidRole::Helper { vm: w }) => {
                if *w == vm {
                    Preemptor::SameVm { tid: next }
                } else {
                    Preemptor::OtherVm {
                        pid: self.vm_pids[*w],
                        tid: next,
                    }
                }
            }
            Some(TidRole::HostProcess) => Preemptor::HostProcess {
                tid: next,
                comm: comm.to_string(),
            },
            Some(TidRole::KernelThread) => Preemptor::KernelThread {
                tid: next,
                comm: comm.to_string(),
            },
            None => Preemptor::Unknown,
        }
    }

    pub fn event(&mut self, ev: &Event, vms: &[VmInfo], comm_of: impl Fn(u32) -> String) {
        self.events += 1;
        if self.first.is_none() {
            self.first = Some(ev.ts);
            for v in &mut self.vcpus {
                v.since = ev.ts;
            }
            self.series.start(ev.ts);
            self.sharing.start(ev.ts);
        }
        self.last = ev.ts;
        let ts = ev.ts;
        // The pCPU of a vCPU: where its events run, where it is switched in, the waking's
        // target, a migration's destination.
        let cpu = ev.cpu as usize;
        if let Some(i) = self.idx(ev.tid) {
            self.sharing.cpu(i, ts, cpu, &mut self.series);
        }
        match &ev.kind {
            Kind::SchedSwitch { next, .. } => {
                if let Some(i) = self.idx(*next) {
                    self.sharing.cpu(i, ts, cpu, &mut self.series);
                }
                self.sharing.switch(ts, cpu, *next, &mut self.series);
            }
            Kind::SchedWaking {
                tid, target_cpu, ..
            } => {
                if let Some(i) = self.idx(*tid) {
                    self.sharing
                        .cpu(i, ts, *target_cpu as usize, &mut self.series);
                }
            }
            Kind::SchedMigrate { tid, dest_cpu, .. } => {
                if let Some(i) = self.idx(*tid) {
                    self.sharing
                        .cpu(i, ts, *dest_cpu as usize, &mut self.series);
                }
            }
            Kind::MmPageAlloc { pfn, order, .. } => {
                let vm = self.vm_of(ev.tid);
                self.ledger.alloc(ts, vm, *pfn, *order, &mut self.series);
            }
            Kind::MmPageFree { pfn, order } => {
                self.ledger.free(ts, *pfn, *order, false, &mut self.series)
            }
            Kind::MmPageFreeBatched { pfn } => {
                self.ledger.free(ts, *pfn, 0, true, &mut self.series)
            }
            Kind::KsmEnter { mm } => {
                let vm = self.vm_of(ev.tid);
                self.ledger.ksm_enter(*mm, vm);
            }
            Kind::KsmMergeOnePage { mm, err, .. } => self.ledger.ksm_merge(*mm, *err),
            _ => {}
        }
        match &ev.kind {
            Kind::KvmEntry { .. } => {
                if let Some(i) = self.idx(ev.tid) {
                    if let (Some((isa, code, _)), Some(at)) =
                        (self.vcpus[i].last_exit, self.vcpus[i].exit_open.take())
                    {
                        let vm = self.vcpus[i].vm;
                        let d = ts - at;
                        let a = self.exits[vm].entry((isa, code)).or_default();
                        if a.count == 0 || d < a.min {
                            a.min = d;
                        }
                        a.max = a.max.max(d);
                        a.count += 1;
                        a.total += d;
                    }
                    self.set(i, ts, VcpuState::Guest);
                }
            }
            Kind::KvmExit { reason, isa, .. } => {
                if let Some(i) = self.idx(ev.tid) {
                    self.vcpus[i].last_exit = Some((*isa, *reason as u64, ts));
                    self.vcpus[i].exit_open = Some(ts);
                    let st = VcpuState::Hypervisor {
                        isa: isa_of_number(*isa),
                        code: *reason as u64,
                    };
                    self.set(i, ts, st);
                }
            }
            Kind::KvmUserspaceExit { reason } => {
                if let Some(i) = self.idx(ev.tid) {
                    self.set(i, ts, VcpuState::UserSpace { reason: *reason });
                }
            }
            Kind::VcpuEnterGuest { cr3, .. } => {
                if let Some(i) = self.idx(ev.tid) {
                    self.vcpus[i].cr3 = Some(*cr3);
                }
            }
            Kind::KvmInjVirq { vector } => {
                if let Some(i) = self.idx(ev.tid) {
                    let vm = self.vcpus[i].vm;
                    *self.injections[vm].entry(*vector).or_default() += 1;
                }
            }
            Kind::SchedSwitch {
                prev,
                prev_state,
                next,
            } => {
                if let Some(i) = self.idx(*prev) {
                    let state = if prev_state & 0xff == 0 {
                        let vm = self.vcpus[i].vm;
                        VcpuState::Preempted {
                            by: self.preemptor(vm, *next, &comm_of(*next)),
                        }
                    } else {
                        // The cause is known at the wake-up; `Other` until then.
                        VcpuState::Waiting {
                            cause: WaitCause::Other,
                        }
                    };
                    self.set(i, ts, state);
                }
                if let Some(i) = self.idx(*next) {
                    let st = match self.vcpus[i].last_exit {
                        Some((isa, code, _)) => VcpuState::Hypervisor {
                            isa: isa_of_number(isa),
                            code,
                        },
                        None => VcpuState::Unknown,
                    };
                    self.set(i, ts, st);
                }
            }
            Kind::SchedWaking { tid, cause, .. } => {
                if let Some(i) = self.idx(*tid) {
                    if let VcpuState::Waiting { .. } = self.vcpus[i].state {
                        let cause = cause.unwrap_or(WaitCause::Other);
                        self.vcpus[i].state = VcpuState::Waiting { cause };
                        *self.vcpus[i].waits.get_mut(cause) += 1;
                    }
                    self.set(i, ts, VcpuState::Ready);
                }
            }
            _ => {}
        }
        let _ = vms;
    }

    /// The VM of a thread: a vCPU's, or its VMM's helpers'.
    fn vm_of(&self, tid: u32) -> Option<usize> {
        match self.roles.get(&tid) {
            Some(TidRole::Vcpu { vm, .. }) | Some(TidRole::Helper { vm }) => Some(*vm),
            _ => None,
        }
    }

    /// Closes every timeline at the host's last event and builds the per-VM truth.
    pub fn finish(mut self, vms: &[VmInfo], host: &str, isa: Isa, names: &TaskNames) -> HostResult {
        let end = self.last;
        let keep = self.keep_intervals;
        for v in &mut self.vcpus {
            if !v.known {
                v.state = VcpuState::Unknown;
            }
            close(v, end, keep, &mut self.cr3_time);
        }
        self.sharing.end(end, &mut self.series);
        let span = end - self.first.unwrap_or(end);
        let (buckets, series) = std::mem::take(&mut self.series).finish(end);
        let mut out = Vec::new();
        for (vi, vm) in vms.iter().enumerate() {
            let vcpus = self
                .vcpus
                .iter_mut()
                .filter(|v| v.vm == vi)
                .map(|v| Vcpu {
                    vcpu: v.vcpu,
                    tid: v.tid,
                    time_ns: v.times,
                    waits: v.waits,
                    intervals: std::mem::take(&mut v.intervals),
                    ..Vcpu::default()
                })
                .collect();
            let mut by: BTreeMap<String, PreemptionStat> = BTreeMap::new();
            for v in self.vcpus.iter().filter(|v| v.vm == vi) {
                for (k, (p, count, total)) in &v.preempted_by {
                    let e = by.entry(k.clone()).or_insert(PreemptionStat {
                        by: p.clone(),
                        count: 0,
                        total_ns: 0,
                    });
                    e.count += count;
                    e.total_ns += total;
                }
            }
            let mut preemptions: Vec<PreemptionStat> = by.into_values().collect();
            preemptions.sort_by_key(|p| std::cmp::Reverse(p.total_ns));
            let exits = self.exits[vi]
                .iter()
                .map(|(&(isa_n, code), a)| ExitStat {
                    reason: exit_name(isa_of_number(isa_n), code),
                    isa: Some(isa_of_number(isa_n)),
                    code,
                    count: a.count,
                    total_ns: a.total,
                    min_ns: a.min,
                    mean_ns: a.total.checked_div(a.count).unwrap_or(0),
                    max_ns: a.max,
                })
                .collect();
            let injections = self.injections[vi]
                .iter()
                .map(|(&vector, &count)| VectorStat {
                    vector,
                    class: vm.vector_class(vector),
                    count,
                })
                .collect();
            let threads = vec![
                HelperThread {
                    tid: vm.main_tid,
                    comm: "qemu-system-x86".into(),
                    role: virtflow_model::ThreadRole::MainLoop,
                },
                HelperThread {
                    tid: vm.io_tid,
                    comm: "IO iothread0".into(),
                    role: virtflow_model::ThreadRole::IoThread,
                },
                HelperThread {
                    tid: vm.vhost_tid,
                    comm: format!("vhost-{}", vm.pid),
                    role: virtflow_model::ThreadRole::Vhost,
                },
            ];
            let observed: u64 = self
                .vcpus
                .iter()
                .filter(|v| v.vm == vi)
                .map(|v| v.times.total() - v.times.unknown)
                .sum();
            let phased = !vm.spec.phases.is_empty();
            out.push(Vm {
                pid: vm.pid,
                name: vm.spec.name.clone(),
                host: host.to_string(),
                workload: (!phased).then(|| vm.spec.workload.name().to_string()),
                vcpus,
                threads,
                exits,
                injections,
                preemptions,
                overcommit: self.sharing.vm(vi, observed, &series),
                memory: self.ledger.vm(vi, &series),
                ..Default::default()
            });
        }
        let _ = isa;
        // The VMs as the analysis names them, `comm/pid`.
        let named: Vec<(u32, String, Vec<PreemptionStat>)> = out
            .iter()
            .map(|v| {
                let comm = names.comm_ref(v.pid);
                (v.pid, format!("{comm}/{}", v.pid), v.preemptions.clone())
            })
            .collect();
        let vm_names: BTreeMap<u32, String> =
            named.iter().map(|(p, n, _)| (*p, n.clone())).collect();
        let causes = out
            .iter()
            .enumerate()
            .map(|(vi, v)| {
                let who = |tid: u32| -> Option<(&'static str, String)> {
                    match self.roles.get(&tid)? {
                        TidRole::Helper { vm } if *vm == vi => {
                            Some(("own_helpers", names.comm_ref(tid).to_string()))
                        }
                        TidRole::Vcpu { vm, .. } | TidRole::Helper { vm } => Some((
                            "overcommitment",
                            vm_names.get(&vms[*vm].pid).cloned().unwrap_or_default(),
                        )),
                        TidRole::HostProcess | TidRole::KernelThread => {
                            Some(("host_process", names.comm_ref(tid).to_string()))
                        }
                    }
                };
                overcommit::cause(v.pid, v.overcommit.steal_share, self.sharing.taken(vi), who)
            })
            .collect();
        let overcommit = self.sharing.host(span, &series, overcommit::matrix(&named));
        let memory = self.ledger.host(&series);
        let procs = self
            .cr3_time
            .iter()
            .map(|(&(vm, vcpu, cr3), &ns)| GuestProcess {
                vm_pid: vms[vm].pid,
                vcpu,
                cr3,
                guest_ns: ns,
            })
            .collect();
        HostResult {
            vms: out,
            guest_processes: procs,
            buckets,
            overcommit,
            memory,
            causes,
        }
    }

    pub fn span(&self) -> (u64, u64) {
        (self.first.unwrap_or(0), self.last)
    }
}

fn close(v: &mut VcpuTrack, ts: u64, keep: bool, cr3_time: &mut BTreeMap<(usize, u32, u64), u64>) {
    let d = ts.saturating_sub(v.since);
    v.times.add(&v.state, d);
    if let VcpuState::Preempted { by } = &v.state {
        let e = v
            .preempted_by
            .entry(format!("{by:?}"))
            .or_insert((by.clone(), 0, 0));
        e.1 += 1;
        e.2 += d;
    }
    if v.state == VcpuState::Guest {
        if let Some(cr3) = v.cr3 {
            *cr3_time.entry((v.vm, v.vcpu, cr3)).or_default() += d;
        }
    }
    if keep && ts > v.since {
        v.intervals.push(Interval {
            start: v.since as i64,
            end: ts as i64,
            state: v.state.clone(),
        });
    }
}

pub fn isa_of_number(n: u32) -> Isa {
    if n == 2 {
        Isa::Svm
    } else {
        Isa::Vmx
    }
}

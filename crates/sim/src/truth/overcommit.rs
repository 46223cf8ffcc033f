//! The truth of a host's pCPU sharing, from the vCPU states of the truth's time line:
//!
//! - A vCPU is **runnable** while running (guest, hypervisor, user space), preempted, or
//!   ready (woken, not yet running); not while waiting (blocked) or unknown. Its **steal** is
//!   its preempted plus ready time.
//! - Its **pCPU** is the CPU it runs on (the CPU of any event in its context, and of the
//!   `sched_switch` that switches it in), or waits on: the CPU it was switched out from, the
//!   `target_cpu` of the `sched_waking` that woke it, then the `dest_cpu` of each
//!   `sched_migrate_task` that moves it.
//! - A pCPU is **idle** while its idle task runs: from a `sched_switch` to pid 0 to the next
//!   switch, and from the start when its first switch is from pid 0 (the simulator knows).
//! - `overcommitted_ns`: time with more runnable vCPUs than the host's pCPUs;
//!   `while_overcommitted_ns` and `while_cpu_idle_ns`: a VM's steal time during which that
//!   was so, and during which some pCPU of the host was idle; `max_runnable`: the most
//!   runnable vCPUs over an interval of positive length; `mean_runnable`: runnable vCPU time
//!   over the host's span (last − first event).
//! - Series (see [`super::series`]): `runnable` and `runnable_per_cpu` runnable vCPU-ns per
//!   bucket (by pCPU), `steal` a VM's steal ns per bucket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use virtflow_model::{
    Culprit, HostOvercommit, PreemptionMatrix, PreemptionStat, Preemptor, VmOvercommit,
};

use super::series::SeriesSet;

/// The true reason a VM lost time to sharing (truth only): `pinning`, `overcommitment`,
/// `host_process`, `own_helpers` or `none`, with who took the time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OvercommitCause {
    pub pid: u32,
    pub cause: String,
    /// The VM (`comm/pid`) or task (comm) that took the most of its time; empty for `none`.
    pub culprit: String,
}

#[derive(Clone, Copy, Debug, Default)]
struct VcpuShare {
    vm: usize,
    cpu: usize,
    runnable: bool,
    steal: bool,
    /// Start of the current stretch of constant state class and pCPU.
    since: u64,
    /// The host's overcommitted and idle-CPU time up to `since`.
    over_mark: u64,
    idle_mark: u64,
}

#[derive(Clone, Debug, Default)]
struct VmShare {
    steal_ns: u64,
    while_over: u64,
    while_idle: u64,
    steal_series: usize,
    /// Steal by the task current on the vCPU's pCPU meanwhile (0: the idle task).
    taken: BTreeMap<u32, u64>,
}

/// Follows one host's runnable vCPUs and idle pCPUs.
pub(crate) struct Sharing {
    pcpus: usize,
    cursor: u64,
    runnable: usize,
    per_cpu: Vec<usize>,
    /// The task each pCPU runs (0: its idle task).
    current: Vec<u32>,
    idle_count: usize,
    over_cum: u64,
    idle_cum: u64,
    runnable_ns: u128,
    max_runnable: usize,
    vcpus: Vec<VcpuShare>,
    vms: Vec<VmShare>,
    cpu_series: Vec<usize>,
}

impl Sharing {
    /// `vcpu_vms`: the VM of each vCPU; `current`: the task each pCPU runs at the start.
    pub(crate) fn new(
        vcpu_vms: &[usize],
        nvms: usize,
        current: Vec<u32>,
        series: &mut SeriesSet,
    ) -> Sharing {
        let pcpus = current.len();
        Sharing {
            pcpus,
            cursor: 0,
            runnable: 0,
            per_cpu: vec![0; pcpus],
            idle_count: current.iter().filter(|&&t| t == 0).count(),
            current,
            over_cum: 0,
            idle_cum: 0,
            runnable_ns: 0,
            max_runnable: 0,
            vcpus: vcpu_vms
                .iter()
                .map(|&vm| VcpuShare {
                    vm,
                    ..VcpuShare::default()
                })
                .collect(),
            vms: (0..nvms)
                .map(|_| VmShare {
                    steal_series: series.add(),
                    ..VmShare::default()
                })
                .collect(),
            cpu_series: (0..pcpus).map(|_| series.add()).collect(),
        }
    }

    /// The host's first event.
    pub(crate) fn start(&mut self, ts: u64) {
        self.cursor = ts;
        for v in &mut self.vcpus {
            v.since = ts;
        }
    }

    /// The host-wide integrals up to `ts`.
    fn advance(&mut self, ts: u64) {
        if ts <= self.cursor {
            return;
        }
        let d = ts - self.cursor;
        self.runnable_ns += self.runnable as u128 * d as u128;
        if self.runnable > self.pcpus {
            self.over_cum += d;
        }
        if self.idle_count > 0 {
            self.idle_cum += d;
        }
        self.max_runnable = self.max_runnable.max(self.runnable);
        self.cursor = ts;
    }

    /// Ends vCPU `i`'s current stretch at `ts`.
    fn flush(&mut self, i: usize, ts: u64, series: &mut SeriesSet) {
        let v = self.vcpus[i];
        if v.runnable {
            series.add_span(self.cpu_series[v.cpu], v.since, ts, 1);
        }
        if v.steal {
            let m = &mut self.vms[v.vm];
            *m.taken.entry(self.current[v.cpu]).or_default() += ts - v.since;
            m.steal_ns += ts - v.since;
            m.while_over += self.over_cum - v.over_mark;
            m.while_idle += self.idle_cum - v.idle_mark;
            series.add_span(m.steal_series, v.since, ts, 1);
        }
        let v = &mut self.vcpus[i];
        v.since = ts;
        v.over_mark = self.over_cum;
        v.idle_mark = self.idle_cum;
    }

    /// vCPU `i` enters a state that is `runnable` and `steal` or not.
    pub(crate) fn state(
        &mut self,
        i: usize,
        ts: u64,
        runnable: bool,
        steal: bool,
        series: &mut SeriesSet,
    ) {
        self.advance(ts);
        self.flush(i, ts, series);
        let v = &mut self.vcpus[i];
        if v.runnable != runnable {
            if runnable {
                self.runnable += 1;
                self.per_cpu[v.cpu] += 1;
            } else {
                self.runnable -= 1;
                self.per_cpu[v.cpu] -= 1;
            }
        }
        v.runnable = runnable;
        v.steal = steal;
    }

    /// vCPU `i` runs or waits on `cpu` from `ts`.
    pub(crate) fn cpu(&mut self, i: usize, ts: u64, cpu: usize, series: &mut SeriesSet) {
        if self.vcpus[i].cpu == cpu || cpu >= self.pcpus {
            return;
        }
        self.advance(ts);
        self.flush(i, ts, series);
        let v = &mut self.vcpus[i];
        if v.runnable {
            self.per_cpu[v.cpu] -= 1;
            self.per_cpu[cpu] += 1;
        }
        v.cpu = cpu;
    }

    /// `cpu` switches to task `next` (0: its idle task) at `ts`.
    pub(crate) fn switch(&mut self, ts: u64, cpu: usize, next: u32, series: &mut SeriesSet) {
        if cpu >= self.pcpus || self.current[cpu] == next {
            return;
        }
        self.advance(ts);
        for i in 0..self.vcpus.len() {
            if self.vcpus[i].steal && self.vcpus[i].cpu == cpu {
                self.flush(i, ts, series);
            }
        }
        let was_idle = self.current[cpu] == 0;
        self.current[cpu] = next;
        match (was_idle, next == 0) {
            (false, true) => self.idle_count += 1,
            (true, false) => self.idle_count -= 1,
            _ => {}
        }
    }

    /// Who ran on VM `vm`'s vCPUs' pCPUs while they stole: task → ns.
    pub(crate) fn taken(&self, vm: usize) -> &BTreeMap<u32, u64> {
        &self.vms[vm].taken
    }

    /// Closes every stretch at the host's last event.
    pub(crate) fn end(&mut self, ts: u64, series: &mut SeriesSet) {
        self.advance(ts);
        for i in 0..self.vcpus.len() {
            self.flush(i, ts, series);
        }
    }

    /// The host's figures; `span` is last − first event.
    pub(crate) fn host(
        &self,
        span: u64,
        series: &[Vec<u64>],
        matrix: PreemptionMatrix,
    ) -> HostOvercommit {
        let per_cpu: Vec<Vec<u64>> = self.cpu_series.iter().map(|&s| series[s].clone()).collect();
        let n = per_cpu.first().map_or(0, |s| s.len());
        let runnable = (0..n).map(|b| per_cpu.iter().map(|s| s[b]).sum()).collect();
        HostOvercommit {
            pcpus: self.pcpus as u32,
            max_runnable: self.max_runnable as u32,
            mean_runnable: if span == 0 {
                0.0
            } else {
                self.runnable_ns as f64 / span as f64
            },
            overcommitted_ns: self.over_cum,
            runnable,
            runnable_per_cpu: per_cpu,
            matrix,
            verdict: String::new(),
        }
    }

    /// VM `vm`'s figures; `observed` is its vCPUs' time in every state but unknown.
    pub(crate) fn vm(&self, vm: usize, observed: u64, series: &[Vec<u64>]) -> VmOvercommit {
        let m = &self.vms[vm];
        VmOvercommit {
            steal_ns: m.steal_ns,
            steal_share: if observed == 0 {
                0.0
            } else {
                m.steal_ns as f64 / observed as f64
            },
            while_overcommitted_ns: m.while_over,
            while_cpu_idle_ns: m.while_idle,
            steal: series[m.steal_series].clone(),
            verdict: String::new(),
        }
    }
}

/// Who took a VM's preempted time, as the matrix names it: a VM by its `comm/pid` name, else
/// the task by its command name.
fn culprit(p: &Preemptor, own: &str, vm_names: &BTreeMap<u32, String>) -> Culprit {
    match p {
        Preemptor::SameVm { .. } => Culprit::Vm { name: own.into() },
        Preemptor::OtherVm { pid, .. } => Culprit::Vm {
            name: vm_names.get(pid).cloned().unwrap_or_default(),
        },
        Preemptor::HostProcess { comm, .. } => Culprit::HostProcess { comm: comm.clone() },
        Preemptor::KernelThread { comm, .. } => Culprit::KernelThread {
            comm: kernel_name(comm),
        },
        Preemptor::Unknown => Culprit::Unknown,
    }
}

/// A kernel thread's name without its CPU or pool (`kworker/u16:2` → `kworker`), so that the
/// threads of one kind add up.
fn kernel_name(comm: &str) -> String {
    comm.split('/').next().unwrap_or(comm).to_string()
}

/// The preemption matrix: victims the VMs in pid order; preemptors every VM in pid order,
/// then host processes and kernel threads (by name up to a `/`: `kworker/u16:2` is
/// `kworker`) by total preempted time (descending, then by name), then unknown tasks; `ns[victim][preemptor]` the victim's vCPUs' preempted time
/// (not ready) by who ran instead at the switch-out.
pub(crate) fn matrix(vms: &[(u32, String, Vec<PreemptionStat>)]) -> PreemptionMatrix {
    let mut order: Vec<usize> = (0..vms.len()).collect();
    order.sort_by_key(|&i| vms[i].0);
    let names: BTreeMap<u32, String> = vms.iter().map(|(p, n, _)| (*p, n.clone())).collect();
    let mut preemptors: Vec<Culprit> = order
        .iter()
        .map(|&i| Culprit::Vm {
            name: vms[i].1.clone(),
        })
        .collect();
    let mut others: BTreeMap<(u8, String), u64> = BTreeMap::new();
    for (_, own, stats) in vms {
        for s in stats {
            let key = match culprit(&s.by, own, &names) {
                Culprit::Vm { .. } => continue,
                Culprit::HostProcess { comm } => (0, comm),
                Culprit::KernelThread { comm } => (1, comm),
                Culprit::Unknown => (2, String::new()),
            };
            *others.entry(key).or_default() += s.total_ns;
        }
    }
    let mut others: Vec<((u8, String), u64)> = others.into_iter().collect();
    others.sort_by(|a, b| {
        (a.0 .0 == 2)
            .cmp(&(b.0 .0 == 2))
            .then(b.1.cmp(&a.1))
            .then(a.0 .1.cmp(&b.0 .1))
            .then(a.0 .0.cmp(&b.0 .0))
    });
    preemptors.extend(others.into_iter().map(|((kind, comm), _)| match kind {
        0 => Culprit::HostProcess { comm },
        1 => Culprit::KernelThread { comm },
        _ => Culprit::Unknown,
    }));
    let ns = order
        .iter()
        .map(|&i| {
            let (_, own, stats) = &vms[i];
            let mut row = vec![0u64; preemptors.len()];
            for s in stats {
                let c = culprit(&s.by, own, &names);
                if let Some(k) = preemptors.iter().position(|p| *p == c) {
                    row[k] += s.total_ns;
                }
            }
            row
        })
        .collect();
    PreemptionMatrix {
        victims: order.iter().map(|&i| vms[i].1.clone()).collect(),
        preemptors,
        ns,
    }
}

/// Below this share of its observed time, a VM's steal has no cause (`none`).
const NOTABLE_STEAL: f64 = 0.02;

/// A VM's true cause of steal, from who ran on its vCPUs' pCPUs while they stole (preempted
/// or ready): `none` below 2% of its observed time (below which the analysis's verdict says
/// the VM lost little: a cause is compared only where both look for one); else the largest
/// of other VMs' and its own vCPUs' time (`overcommitment`: more vCPUs wanted the pCPUs than
/// there were), its own helper threads' (`own_helpers`), and host processes' and kernel
/// threads' (`host_process`); time while the pCPU was idle (the wake-up's latency) counts for
/// none. The simulator never pins a vCPU, so `pinning` does not occur. `who(tid)` gives the
/// cause and the culprit's name of a task.
pub(crate) fn cause(
    pid: u32,
    share: f64,
    taken: &BTreeMap<u32, u64>,
    who: impl Fn(u32) -> Option<(&'static str, String)>,
) -> OvercommitCause {
    let none = OvercommitCause {
        pid,
        cause: "none".into(),
        culprit: String::new(),
    };
    if share < NOTABLE_STEAL {
        return none;
    }
    let mut by: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for (&tid, &ns) in taken {
        if let Some(key) = who(tid) {
            *by.entry(key).or_default() += ns;
        }
    }
    let mut per_cause: BTreeMap<&str, u64> = BTreeMap::new();
    for ((c, _), ns) in &by {
        *per_cause.entry(c).or_default() += ns;
    }
    let Some((&top, _)) = per_cause
        .iter()
        .max_by_key(|(c, ns)| (**ns, std::cmp::Reverse(**c)))
    else {
        return none;
    };
    let culprit = by
        .iter()
        .filter(|((c, _), _)| *c == top)
        .max_by_key(|(_, ns)| **ns)
        .map(|((_, who), _)| who.clone())
        .unwrap_or_default();
    OvercommitCause {
        pid,
        cause: top.into(),
        culprit,
    }
}

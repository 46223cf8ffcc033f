//! The tables beside the timeline (and in the report): per-VM and per-vCPU state totals, exit
//! reasons, wait causes, and the preemption matrix (who took the pCPU from whom).

use std::collections::BTreeMap;

use serde::Serialize;
use virtflow_model::{ExitStat, Model, Preemptor, VcpuState, WaitCause};

use crate::states::{state_ns_of, Labeler, StateKey, StateNs, STATE_KEYS};

#[derive(Clone, Debug, Serialize)]
pub struct VcpuSummary {
    pub vcpu: u32,
    pub tid: u32,
    /// Nanoseconds per [`StateKey`], in `StateKey::ALL` order.
    pub state_ns: StateNs,
}

#[derive(Clone, Debug, Serialize)]
pub struct WaitSummary {
    pub cause: &'static str,
    pub ns: u64,
    /// Interrupts injected on vectors of this class.
    pub injections: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct VmSummary {
    pub pid: u32,
    pub name: String,
    pub host: String,
    pub workload: Option<String>,
    /// QEMU's `-uuid`, when the trace held the VMM's command line.
    pub uuid: Option<String>,
    pub state_ns: StateNs,
    pub vcpus: Vec<VcpuSummary>,
    pub exits: Vec<ExitStat>,
    pub waits: Vec<WaitSummary>,
}

/// Preempted time of each VM (rows, `victims`) by who ran instead (columns, `preemptors`):
/// every VM of the model, then host processes, kernel threads and unseen tasks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PreemptionMatrix {
    pub victims: Vec<String>,
    pub preemptors: Vec<String>,
    /// `ns[victim][preemptor]`.
    pub ns: Vec<Vec<u64>>,
    /// The largest single preemptors (host commands, kernel threads), most time first.
    pub top: Vec<(String, u64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StateInfo {
    pub key: StateKey,
    pub name: &'static str,
    pub label: &'static str,
    pub color: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub traces: Vec<String>,
    pub hosts: Vec<virtflow_model::Host>,
    /// Each host's clock in words (`crate::clock_words`), empty for a lone host.
    pub clocks: Vec<String>,
    pub states: Vec<StateInfo>,
    pub vms: Vec<VmSummary>,
    pub preemption: PreemptionMatrix,
    /// Workload clusters, when a clustering ran (`None`: no clustering yet).
    pub clusters: Option<Vec<(String, Vec<String>)>>,
    pub notes: Vec<String>,
    pub events: u64,
    pub lost_events: u64,
}

impl Summary {
    /// Summarises `model`. The preemption matrix needs the intervals, so call this before
    /// they are taken into a [`crate::TimelineIndex`].
    pub fn new(model: &Model) -> Summary {
        let labeler = Labeler::new(model);
        let vms = model
            .vms
            .iter()
            .map(|vm| {
                let vcpus: Vec<VcpuSummary> = vm
                    .vcpus
                    .iter()
                    .map(|v| VcpuSummary {
                        vcpu: v.vcpu,
                        tid: v.tid,
                        state_ns: state_ns_of(&v.time_ns),
                    })
                    .collect();
                let mut state_ns = [0u64; STATE_KEYS];
                for v in &vcpus {
                    for (sum, ns) in state_ns.iter_mut().zip(v.state_ns) {
                        *sum += ns;
                    }
                }
                let mut exits = vm.exits.clone();
                exits.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(b.count.cmp(&a.count)));
                let waits = WaitCause::ALL
                    .iter()
                    .map(|&cause| WaitSummary {
                        cause: cause.name(),
                        ns: vm.vcpus.iter().map(|v| v.time_ns.waiting.get(cause)).sum(),
                        injections: vm
                            .injections
                            .iter()
                            .filter(|i| i.class == cause)
                            .map(|i| i.count)
                            .sum(),
                    })
                    .collect();
                VmSummary {
                    pid: vm.pid,
                    name: vm.name.clone(),
                    host: vm.host.clone(),
                    workload: vm.workload.clone(),
                    uuid: vm.uuid.clone(),
                    state_ns,
                    vcpus,
                    exits,
                    waits,
                }
            })
            .collect();
        let clusters = {
            let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for vm in &model.vms {
                if let Some(w) = &vm.workload {
                    by.entry(w.clone()).or_default().push(vm.name.clone());
                }
            }
            (!by.is_empty()).then(|| by.into_iter().collect())
        };
        Summary {
            traces: model.traces.clone(),
            hosts: model.hosts.clone(),
            clocks: model
                .hosts
                .iter()
                .map(|h| h.clock.as_ref().map(crate::clock_words).unwrap_or_default())
                .collect(),
            states: StateKey::ALL
                .iter()
                .map(|&key| StateInfo {
                    key,
                    name: key.name(),
                    label: key.label(),
                    color: key.color(),
                })
                .collect(),
            vms,
            preemption: preemption_matrix(model, &labeler),
            clusters,
            notes: model.notes.clone(),
            events: model.read.events,
            lost_events: model.read.lost_events,
        }
    }
}

fn preemption_matrix(model: &Model, labeler: &Labeler) -> PreemptionMatrix {
    let n = model.vms.len();
    let col_host = n;
    let col_kernel = n + 1;
    let col_unknown = n + 2;
    let mut m = PreemptionMatrix {
        victims: model.vms.iter().map(|vm| vm.name.clone()).collect(),
        preemptors: model
            .vms
            .iter()
            .map(|vm| vm.name.clone())
            .chain(["host processes", "kernel threads", "unseen"].map(String::from))
            .collect(),
        ns: vec![vec![0; n + 3]; n],
        top: Vec::new(),
    };
    let vm_of_pid: BTreeMap<u32, usize> = model
        .vms
        .iter()
        .enumerate()
        .map(|(i, vm)| (vm.pid, i))
        .collect();
    let mut top: BTreeMap<String, u64> = BTreeMap::new();
    for (victim, vm) in model.vms.iter().enumerate() {
        for iv in vm.vcpus.iter().flat_map(|v| v.intervals.iter()) {
            let VcpuState::Preempted { by } = &iv.state else {
                continue;
            };
            let ns = (iv.end - iv.start).max(0) as u64;
            let col = match by {
                Preemptor::SameVm { .. } => victim,
                Preemptor::OtherVm { pid, .. } => *vm_of_pid.get(pid).unwrap_or(&col_unknown),
                Preemptor::HostProcess { .. } => col_host,
                Preemptor::KernelThread { .. } => col_kernel,
                Preemptor::Unknown => col_unknown,
            };
            m.ns[victim][col] += ns;
            if matches!(
                by,
                Preemptor::HostProcess { .. } | Preemptor::KernelThread { .. }
            ) {
                *top.entry(labeler.preemptor(by)).or_default() += ns;
            }
        }
    }
    let mut top: Vec<(String, u64)> = top.into_iter().collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.1));
    top.truncate(10);
    m.top = top;
    m
}

//! One VM: its vCPUs, helper threads, exit reasons, injected interrupts, preemptors and
//! device work.

use serde::{Deserialize, Serialize};

use crate::{
    ExitStat, HelperThread, Preemptor, Vcpu, VectorStat, VmActivity, VmMemory, VmOvercommit,
};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub pid: u32,
    /// `<process name>/<pid>`; `<guest name> (<process name>/<pid>)` when the guest's name is
    /// known (`guest_name`).
    pub name: String,
    /// The guest's name from its VMM's command line (QEMU `-name`), when the trace or the
    /// recorder's sidecar file holds that command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_name: Option<String>,
    /// The VM's UUID from the same command line (QEMU `-uuid`, else `-smbios type=1,uuid=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub host: String,
    /// The workload class, when known (the simulator's truth; a clustering's verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Its workload over time, when a clustering by windows named it: runs of windows of one
    /// class, in time order (trace ns on the experiment's clock).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    pub vcpus: Vec<Vcpu>,
    #[serde(default)]
    pub threads: Vec<HelperThread>,
    #[serde(default)]
    pub exits: Vec<ExitStat>,
    #[serde(default)]
    pub injections: Vec<VectorStat>,
    /// Who ran while this VM's vCPUs were preempted, longest total first.
    #[serde(default)]
    pub preemptions: Vec<PreemptionStat>,
    /// Wake-up latency of the vCPUs: time in the `ready` state, woken to running.
    #[serde(default)]
    pub wakeup_latency: LatencyStats,
    /// How the two signals of a wait's cause (waker, injected vector) agreed.
    #[serde(default)]
    pub wait_signals: WaitSignals,
    /// What the VM's helper threads did for its virtual devices.
    #[serde(default)]
    pub io: IoStats,
    /// Its device work per bucket of the host's time line (when the run kept series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<VmActivity>,
    /// What it lost to sharing its host's pCPUs, and to whom.
    #[serde(default)]
    pub overcommit: VmOvercommit,
    /// The host memory it holds (when page events were traced).
    #[serde(default)]
    pub memory: VmMemory,
}

/// The work a VM's helper threads did for its virtual disk and network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStats {
    /// Block requests its threads issued (`block_rq_issue` in their context) and saw complete.
    pub disk_requests: u64,
    /// Total issue → complete latency of those requests.
    pub disk_latency_ns: u64,
    /// I/O exits of its vCPUs followed by a block request of its threads: how many, and the
    /// total delay from the exit to the request (how long the VMM took to submit).
    pub submit_delays: u64,
    pub submit_delay_ns: u64,
    /// Network events (`net_dev_queue`, `netif_receive_skb`, …) in its vhost threads.
    pub packets: u64,
}

/// Time a VM's vCPUs spent preempted by one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreemptionStat {
    pub by: Preemptor,
    pub count: u64,
    pub total_ns: u64,
}

/// A duration distribution (nanoseconds); percentiles are exact to within 1%.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub mean_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// Agreement of the two signals that tell why a vCPU waited: the thread that woke it, and the
/// vector injected at its next entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitSignals {
    /// Waits whose cause was decided.
    pub waits: u64,
    /// Both signals known and naming the same cause.
    pub agree: u64,
    /// Both known, naming different causes (the waker's is kept).
    pub disagree: u64,
    /// Only the waker told.
    pub waker_only: u64,
    /// Only the injected vector told.
    pub vector_only: u64,
    /// Neither told: the cause is `other`.
    pub neither: u64,
}

/// A run of time during which a VM did one kind of work: `[start, end)`, named by the
/// clustering (`cpu-intensive`, `idle`…).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub start: i64,
    pub end: i64,
    pub name: String,
}

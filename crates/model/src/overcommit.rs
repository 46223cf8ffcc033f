//! Who steals from whom: the time vCPUs could run but did not (preempted, or woken and
//! waiting for a pCPU), how many vCPUs wanted each pCPU, who took it, and the verdict in words.

use serde::{Deserialize, Serialize};

/// A VM's steal: time its vCPUs were runnable but not running.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VmOvercommit {
    /// Preempted + ready, summed over its vCPUs (ns).
    pub steal_ns: u64,
    /// `steal_ns` over the vCPUs' observed time (all states but unknown).
    pub steal_share: f64,
    /// Of `steal_ns`: while the host had more runnable vCPUs than pCPUs.
    pub while_overcommitted_ns: u64,
    /// Of `steal_ns`: while some other pCPU of the host was idle — the vCPU could have run
    /// there but for its affinity (pinning) or the scheduler's choice.
    pub while_cpu_idle_ns: u64,
    /// Steal per bucket of the host's time line (ns, summed over its vCPUs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steal: Vec<u64>,
    /// What it lost to whom and why, in plain words (starts with `verdict:`).
    pub verdict: String,
}

/// A host's sharing of its pCPUs among vCPUs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostOvercommit {
    /// pCPUs seen.
    pub pcpus: u32,
    /// The most vCPUs runnable at once.
    pub max_runnable: u32,
    /// Mean vCPUs runnable over the trace.
    pub mean_runnable: f64,
    /// Time with more runnable vCPUs than pCPUs.
    pub overcommitted_ns: u64,
    /// Runnable vCPU time per bucket (vCPU × ns: a value of `step_ns` is one vCPU runnable
    /// throughout), for the whole host and per pCPU (the pCPU a vCPU ran or waited on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runnable: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runnable_per_cpu: Vec<Vec<u64>>,
    /// Who preempted whom: `ns[victim][preemptor]`, victims the host's VMs, preemptors its VMs
    /// then host processes, kernel threads, unseen tasks.
    pub matrix: PreemptionMatrix,
    /// The host's sharing in plain words (starts with `verdict:`).
    pub verdict: String,
}

/// Preempted time of each VM by who ran instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreemptionMatrix {
    pub victims: Vec<String>,
    pub preemptors: Vec<Culprit>,
    pub ns: Vec<Vec<u64>>,
}

/// Who ran on a pCPU a vCPU wanted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Culprit {
    /// A VM of the host (its vCPUs or helper threads), by name.
    Vm {
        name: String,
    },
    /// A host process (user space), by command name.
    HostProcess {
        comm: String,
    },
    /// A kernel thread, by name (`kworker/…`, `ksoftirqd/…`).
    KernelThread {
        comm: String,
    },
    Unknown,
}

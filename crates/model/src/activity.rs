//! What a vCPU and a VM did in each bucket of their host's time line: the windowed features
//! of the clustering by phases come from these series alone.

use serde::{Deserialize, Serialize};

/// Per bucket of the host's [`crate::Buckets`], for one vCPU: time in each state (ns) and
/// counts of what happened. Every series has one value per bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuActivity {
    pub guest_ns: Vec<u64>,
    /// Of `guest_ns`: runs whose exit showed a guest user-space address.
    pub guest_user_ns: Vec<u64>,
    /// In the host after an exit, the VMM's user space included.
    pub hypervisor_ns: Vec<u64>,
    pub preempted_ns: Vec<u64>,
    pub ready_ns: Vec<u64>,
    /// Blocked, by cause: timer, disk, network, task, other.
    pub waiting_ns: [Vec<u64>; 5],
    pub unknown_ns: Vec<u64>,
    pub exits: Vec<u64>,
    /// Injected interrupts by class (timer, disk, network, task, other).
    pub injections: [Vec<u64>; 5],
    /// Waits ended, by cause.
    pub waits: [Vec<u64>; 5],
}

/// Per bucket, for one VM: the work of its helper threads for its devices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmActivity {
    /// Block requests completed, and their total latency (ns), by completion time.
    pub disk_requests: Vec<u64>,
    pub disk_latency_ns: Vec<u64>,
    /// Network events in its vhost threads.
    pub packets: Vec<u64>,
}

//! What a vCPU, a VM and a guest process did in each bucket of their host's time line: the
//! windowed features of the clustering by phases come from these series alone.

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
    /// Exits by kind ([`crate::ExitKind::ALL`]: halt, io, interrupt, msr, paging, other).
    /// Absent from models saved before it existed (read as empty).
    #[serde(default)]
    pub exit_kinds: [Vec<u64>; 6],
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
    /// I/O exits of its vCPUs answered by a block request of its threads, and the total delay
    /// from exit to request (ns), by the request's time.
    #[serde(default)]
    pub submit_delays: Vec<u64>,
    #[serde(default)]
    pub submit_delay_ns: Vec<u64>,
    /// Network events in its vhost threads.
    pub packets: Vec<u64>,
}

/// Per bucket, for one guest process (a CR3) on one vCPU: what the process-level windows of
/// the clustering read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessActivity {
    /// Guest time running this process.
    pub guest_ns: Vec<u64>,
    /// Entries into the guest with its page table loaded.
    pub entries: Vec<u64>,
    /// Exits out of the guest while it ran.
    pub exits: Vec<u64>,
    /// Interrupts injected at the entries into it, by class (timer, disk, network, task,
    /// other).
    pub injections: [Vec<u64>; 5],
}

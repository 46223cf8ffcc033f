//! One vCPU as the host sees it: its state totals and timeline, the guest processes and L2
//! guests inside its guest time.

use serde::{Deserialize, Serialize};

use crate::{Interval, Isa, ProcessActivity, StateTimes, VcpuActivity, WaitCause, WaitTimes};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vcpu {
    /// The vCPU number (KVM's `vcpu_id`).
    pub vcpu: u32,
    /// The host thread that runs it.
    pub tid: u32,
    pub time_ns: StateTimes,
    /// How many waits ended, per cause (same keys as `time_ns.waiting`).
    #[serde(default)]
    pub waits: WaitTimes,
    /// The state timeline, when the run asked for it (`--intervals`, the viewer, exports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Interval>,
    /// Guest time whose exit showed a guest kernel address (`guest_rip` in the canonical high
    /// half); with `guest_user_ns`, a split of `time_ns.guest` (runs whose exit was not seen
    /// are in neither).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub guest_kernel_ns: u64,
    /// Guest time whose exit showed a guest user-space address.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub guest_user_ns: u64,
    /// Guest time per guest process (page-table base at entry), when the trace reports CR3
    /// at entries; longest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<GuestProcess>,
    /// Guest time spent in nested (L2) guests; the rest of `time_ns.guest` is L1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub l2_ns: u64,
    /// The L2 guests this vCPU ran, longest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<NestedGuest>,
    /// VM exits of this vCPU (all reasons; the VM's `exits` table has them by reason).
    #[serde(default)]
    pub exit_count: u64,
    /// Interrupts injected into this vCPU, by vector; most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injections: Vec<VectorStat>,
    /// What it did per bucket of the host's time line (when the run kept series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<VcpuActivity>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A half-open span of time `[start, end)`, trace nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

/// A guest process as the host sees it: one page-table base (CR3) loaded at guest entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestProcess {
    pub cr3: u64,
    /// Seen while the vCPU ran a nested (L2) guest.
    #[serde(default)]
    pub l2: bool,
    /// Entries into the guest with this CR3.
    #[serde(default)]
    pub entries: u64,
    pub guest_ns: u64,
    /// Of `guest_ns`: runs that exited in the guest kernel, and in guest user space.
    #[serde(default)]
    pub kernel_ns: u64,
    #[serde(default)]
    pub user_ns: u64,
    /// Exits out of the guest while this process ran.
    #[serde(default)]
    pub exits: u64,
    /// Interrupts injected at the entries into this process, by vector; most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injections: Vec<VectorStat>,
    /// When the run kept intervals: when it ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Span>,
    /// What it did per bucket of the host's time line (when the run kept series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ProcessActivity>,
}

/// A nested (L2) guest run by a vCPU, named by its nested VMCS/VMCB address (`vmcb` of
/// `kvm_nested_vmenter`), or by its page-table base when the tracer gives no address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedGuest {
    pub vmcs: u64,
    /// Entries into this L2 guest.
    #[serde(default)]
    pub entries: u64,
    pub guest_ns: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Span>,
}

/// What a helper thread of a VMM does, recognised from its behaviour (and name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadRole {
    MainLoop,
    IoThread,
    Worker,
    Vhost,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperThread {
    pub tid: u32,
    pub comm: String,
    pub role: ThreadRole,
}

/// One row of the exit-reason table (like `perf kvm stat report`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitStat {
    /// Name in the ISA's vocabulary (`HLT`, `hlt`, `EPT_VIOLATION`, `npf`…).
    pub reason: String,
    pub isa: Option<Isa>,
    pub code: u64,
    pub count: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub mean_ns: u64,
    pub max_ns: u64,
}

/// Interrupts injected into a VM on one vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorStat {
    pub vector: u32,
    /// What the vector was found to serve: `timer`, `disk`, `network`, `task`, `other`.
    pub class: WaitCause,
    pub count: u64,
}

//! How much host memory each VM really holds: host page allocations charged to the thread that
//! made them, and returned to it when freed by any thread (a ledger by page frame number).

use serde::{Deserialize, Serialize};

/// A VM's host memory over the trace (bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmMemory {
    /// Allocated by its threads (vCPUs faulting guest memory in, helpers).
    pub allocated_bytes: u64,
    /// Of those, freed again (by any thread).
    pub freed_bytes: u64,
    /// Held at the end: `allocated − freed`.
    pub net_bytes: i64,
    /// The most held at once.
    pub peak_bytes: i64,
    /// Its pages merged by KSM (when the kernel traces KSM).
    pub ksm_merged_pages: u64,
    /// Per bucket of the host's time line: allocated and freed bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allocated: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freed: Vec<u64>,
}

/// A host's page events in total.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMemory {
    /// Whether the trace has page events at all (without them nothing else here means much).
    pub traced: bool,
    pub allocated_bytes: u64,
    /// Frees of pages allocated during the trace.
    pub freed_bytes: u64,
    /// Frees of pages allocated before the trace began (no owner known).
    pub freed_unowned_bytes: u64,
    pub net_bytes: i64,
    /// Pages (of any order) the ledger tracked at the end, and at most.
    pub ledger_pages: u64,
    pub ledger_peak_pages: u64,
    pub ksm_merged_pages: u64,
    /// Per bucket: allocated and freed bytes on the whole host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allocated: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freed: Vec<u64>,
}

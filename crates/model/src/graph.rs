//! The execution graph of an experiment, when a run built it: every thread's chain of
//! segments and the links between them (`virtflow_graph`), and who each worker is.

use serde::{Deserialize, Serialize};
pub use virtflow_graph::{Graph, WorkerId};

/// The graph and its workers, by worker id.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExecutionGraph {
    pub graph: Graph,
    pub workers: Vec<GraphWorker>,
}

/// Who a worker of the graph is: a host thread, or a guest process seen through its vCPUs
/// (`guest`, with `tid` 0).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphWorker {
    pub host: String,
    pub tid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestWorker>,
}

/// A guest process as a worker: its VM (by VMM pid) and its page-table base; or, `nested`,
/// a nested (L2) guest by the address of its nested VMCS/VMCB (in `cr3`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestWorker {
    pub vm: u32,
    pub cr3: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nested: bool,
}

impl ExecutionGraph {
    /// The worker of thread `tid` on `host`.
    pub fn worker(&self, host: &str, tid: u32) -> Option<WorkerId> {
        self.workers
            .iter()
            .position(|w| w.guest.is_none() && w.tid == tid && w.host == host)
            .map(|i| WorkerId(i as u32))
    }

    /// The worker of the guest process `cr3` (or, `nested`, of the nested guest of that
    /// VMCS address) of the VM of pid `vm` on `host`.
    pub fn guest_worker(&self, host: &str, vm: u32, cr3: u64, nested: bool) -> Option<WorkerId> {
        let wanted = GuestWorker { vm, cr3, nested };
        self.workers
            .iter()
            .position(|w| w.host == host && w.guest == Some(wanted))
            .map(|i| WorkerId(i as u32))
    }
}

// A graph has no meaningful equality (its chains are compared through their contents in
// tests); the model's equality ignores it.
impl PartialEq for ExecutionGraph {
    fn eq(&self, other: &Self) -> bool {
        self.workers == other.workers
            && self.graph.segment_count() == other.graph.segment_count()
            && self.graph.link_count() == other.graph.link_count()
    }
}

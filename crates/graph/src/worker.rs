//! The compact identity of a worker: one horizontal line of the execution graph.

use serde::{Deserialize, Serialize};

/// A worker of the graph: a host thread, a guest process, a vCPU, a per-CPU kernel
/// pseudo-thread… The graph knows only this number, handed out by
/// [`Graph::add_worker`](crate::Graph::add_worker) in order from 0; the caller keeps the map
/// from its own identities (host and tid, VM and vCPU…) and the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub u32);

impl WorkerId {
    /// Stored in place of an absent worker (a segment's `by`), so that an optional worker
    /// costs 4 bytes rather than 8. [`Graph::add_worker`](crate::Graph::add_worker) never
    /// hands it out.
    pub(crate) const NONE_RAW: u32 = u32::MAX;

    /// The position of the worker's chain in the graph.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub(crate) fn to_raw(worker: Option<WorkerId>) -> u32 {
        worker.map_or(Self::NONE_RAW, |w| w.0)
    }

    pub(crate) fn from_raw(raw: u32) -> Option<WorkerId> {
        (raw != Self::NONE_RAW).then_some(WorkerId(raw))
    }
}

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "w{}", self.0)
    }
}

//! What the graph refuses, and why.

use crate::{Endpoint, WorkerId};

/// An append or a link that would break the graph's order, or name a worker it does not
/// have. The graph is left unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// The worker was never added.
    UnknownWorker(WorkerId),
    /// A segment ending before it starts.
    SegmentEndsBeforeStart {
        worker: WorkerId,
        start: i64,
        end: i64,
    },
    /// A segment starting before the end of the worker's last one: chains are appended in
    /// time order.
    SegmentOverlaps {
        worker: WorkerId,
        start: i64,
        previous_end: i64,
    },
    /// A link whose target is earlier than its source: a cause comes before its effect.
    LinkBackwards { source: Endpoint, target: Endpoint },
    /// A link from a point of a worker to that same point.
    LinkToItself(Endpoint),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::UnknownWorker(worker) => write!(f, "no worker {worker} in the graph"),
            GraphError::SegmentEndsBeforeStart { worker, start, end } => {
                write!(f, "segment of {worker} ends at {end}, before its start {start}")
            }
            GraphError::SegmentOverlaps {
                worker,
                start,
                previous_end,
            } => write!(
                f,
                "segment of {worker} starts at {start}, before the end of its last one ({previous_end})"
            ),
            GraphError::LinkBackwards { source, target } => write!(
                f,
                "link from {}@{} to {}@{} goes back in time",
                source.worker, source.time, target.worker, target.time
            ),
            GraphError::LinkToItself(point) => {
                write!(f, "link from {}@{} to itself", point.worker, point.time)
            }
        }
    }
}

impl std::error::Error for GraphError {}

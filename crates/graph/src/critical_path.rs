//! The critical path of a worker: what it waited for, and whom, from start to end.
//!
//! Walk the worker's chain forward over the window. Passing states (running, preempted,
//! timer, disk…) are the worker's own time and stay. A blocking segment (blocked, network)
//! with a link arriving at its end is replaced by the path of the link's source over the same
//! interval, found by walking back from the link (see `explain`), recursively; without such a
//! link it stays as it is, with its cause. Time the worker's chain does not cover is unknown.
//! A message that crossed hosts shows as network time on no worker.
//!
//! This is Trace Compass's bounded critical path (`OSCriticalPathAlgorithm`, used by its OS
//! critical path view) with these deliberate differences:
//! - the window may be any interval, not only the worker's life from its first vertex; the
//!   walk does not stop at a hole in the chain, the hole becomes unknown time;
//! - the result is a flat list of contiguous pieces with their worker, not a graph: a link
//!   spanning no time leaves no trace, a link spanning time is a piece of its own;
//! - the differences of the backward walk and of the splicing, listed in `explain` and on
//!   `PathWriter::splice`.

mod explain;
mod writer;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Graph, GraphError, State, StateTotals, WorkerId};
use explain::{Blocked, Explainer};
use writer::PathWriter;

/// One piece of a critical path: `worker` was in `state` over `[start, end)`, and that was
/// what the path's worker was waiting for. `worker` is `None` for a message in flight (or a
/// delayed link) between two workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSegment {
    pub worker: Option<WorkerId>,
    pub state: State,
    pub start: i64,
    pub end: i64,
    /// The responsible worker the graph's segment named, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<WorkerId>,
}

impl PathSegment {
    pub fn duration(&self) -> i64 {
        self.end - self.start
    }
}

/// Time a critical path spent on one worker (`None`: in flight between workers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTime {
    pub worker: Option<WorkerId>,
    pub time: i64,
}

/// The critical path of `worker` over `[start, end)`: contiguous [`PathSegment`]s covering
/// the whole interval, in time order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalPath {
    pub worker: WorkerId,
    pub start: i64,
    pub end: i64,
    pub segments: Vec<PathSegment>,
}

impl CriticalPath {
    /// The critical path over `worker`'s whole life (its first segment's start to its last
    /// one's end); empty if it has no segment.
    pub fn of(graph: &Graph, worker: WorkerId) -> Result<CriticalPath, GraphError> {
        graph.check_worker(worker)?;
        let (start, end) = graph.life(worker).unwrap_or((0, 0));
        Ok(Self::walk(graph, worker, start, end))
    }

    /// The critical path over `[start, end)`; empty if `end <= start`. Before the worker's
    /// life, after it and in its holes, the path is the worker's own unknown time.
    pub fn within(
        graph: &Graph,
        worker: WorkerId,
        start: i64,
        end: i64,
    ) -> Result<CriticalPath, GraphError> {
        graph.check_worker(worker)?;
        Ok(Self::walk(graph, worker, start, end.max(start)))
    }

    /// Time per state along the path; sums to `end - start`.
    pub fn time_by_state(&self) -> StateTotals {
        let mut totals = StateTotals::default();
        for segment in &self.segments {
            totals.add(segment.state, segment.duration());
        }
        totals
    }

    /// Time per worker along the path, longest first (ties by worker, in-flight time last);
    /// sums to `end - start`.
    pub fn time_by_worker(&self) -> Vec<WorkerTime> {
        let mut by_worker: BTreeMap<Option<WorkerId>, i64> = BTreeMap::new();
        for segment in &self.segments {
            *by_worker.entry(segment.worker).or_default() += segment.duration();
        }
        let mut times: Vec<WorkerTime> = by_worker
            .into_iter()
            .map(|(worker, time)| WorkerTime { worker, time })
            .collect();
        times.sort_by(|a, b| {
            b.time
                .cmp(&a.time)
                .then_with(|| a.worker.is_none().cmp(&b.worker.is_none()))
                .then_with(|| a.worker.cmp(&b.worker))
        });
        times
    }

    fn walk(graph: &Graph, worker: WorkerId, start: i64, end: i64) -> CriticalPath {
        let mut writer = PathWriter::new(start, end);
        let mut explainer = Explainer::new(graph);
        for segment in graph.segments_within(worker, start, end) {
            if segment.start() > writer.now() {
                writer.extend_to(Some(worker), State::Unknown, None, segment.start());
            }
            if segment.state().is_blocking() {
                let blocked = Blocked {
                    worker,
                    start: segment.start(),
                    end: segment.end(),
                    state: segment.state(),
                    by: segment.by_worker(),
                };
                if let Some(steps) = explainer.explain(blocked, writer.now()) {
                    writer.splice(worker, steps);
                    continue;
                }
            }
            writer.extend_to(
                Some(worker),
                segment.state(),
                segment.by_worker(),
                segment.end(),
            );
        }
        writer.extend_to(Some(worker), State::Unknown, None, end);
        CriticalPath {
            worker,
            start,
            end,
            segments: writer.finish(),
        }
    }
}

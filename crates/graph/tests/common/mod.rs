//! Helpers shared by the integration tests.

#![allow(dead_code)]

use virtflow_graph::{CriticalPath, Graph, PathSegment, Segment, State, WorkerId};

/// Appends `(start, end, state)` pieces to `worker`'s chain, in order.
pub fn chain(graph: &mut Graph, worker: WorkerId, pieces: &[(i64, i64, State)]) {
    for &(start, end, state) in pieces {
        graph
            .append(worker, Segment::new(start, end, state))
            .expect("pieces in time order");
    }
}

/// A path piece on a worker.
pub fn on(worker: WorkerId, state: State, start: i64, end: i64) -> PathSegment {
    PathSegment {
        worker: Some(worker),
        state,
        start,
        end,
        by: None,
    }
}

/// A path piece on no worker: a link spanning time.
pub fn between(state: State, start: i64, end: i64) -> PathSegment {
    PathSegment {
        worker: None,
        state,
        start,
        end,
        by: None,
    }
}

/// The same piece, naming the responsible worker.
pub fn by(piece: PathSegment, worker: WorkerId) -> PathSegment {
    PathSegment {
        by: Some(worker),
        ..piece
    }
}

/// Asserts that `path` is exactly `expected`, and what every path must be: contiguous pieces
/// of positive length from its start to its end, whose totals per state and per worker both
/// sum to its length.
pub fn assert_path(path: &CriticalPath, expected: &[PathSegment]) {
    assert_eq!(path.segments, expected, "critical path of {}", path.worker);
    assert_well_formed(path);
}

pub fn assert_well_formed(path: &CriticalPath) {
    let mut now = path.start;
    for segment in &path.segments {
        assert_eq!(segment.start, now, "contiguous at {segment:?}");
        assert!(segment.end > segment.start, "positive length: {segment:?}");
        now = segment.end;
    }
    assert_eq!(now, path.end, "the path reaches its end");
    let length = path.end - path.start;
    assert_eq!(path.time_by_state().total(), length);
    assert_eq!(
        path.time_by_worker().iter().map(|w| w.time).sum::<i64>(),
        length
    );
}

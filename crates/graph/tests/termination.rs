//! The walk ends on every graph: the junction search that loops forever in Trace Compass,
//! cycles of links at one instant, and nesting as deep as the trace is long.

mod common;

use common::{assert_path, assert_well_formed, chain, on};
use virtflow_graph::{CriticalPath, Endpoint, Graph, Link, Segment, State, WorkerId};

const R: State = State::Running;
const B: State = State::Blocked;
const U: State = State::Unknown;

fn workers(count: usize) -> (Graph, Vec<WorkerId>) {
    let mut graph = Graph::new();
    let workers = (0..count).map(|_| graph.add_worker()).collect();
    (graph, workers)
}

fn wakeup(graph: &mut Graph, from: (WorkerId, i64), to: (WorkerId, i64)) {
    let link = Link::wakeup(Endpoint::new(from.0, from.1), Endpoint::new(to.0, to.1));
    graph.add_link(link).unwrap();
}

/// Trace Compass's junction search (`findIncoming`, bug at HEAD) re-examines the blocked
/// edge's end vertex instead of advancing: when that vertex has no incoming link and is
/// followed by a zero-length (EPS) edge, it never returns. Its intent is to find the link on
/// the vertex after the zero-length edge, at the same instant. Here a zero-length segment is
/// not stored (the append is accepted and dropped) and the junction is "the link arriving at
/// this worker at this instant": the intended link, found by one search.
#[test]
fn a_zero_length_segment_after_a_block_neither_hides_the_link_nor_loops() {
    let (mut graph, w) = workers(2);
    chain(&mut graph, w[0], &[(0, 2, R), (2, 4, B)]);
    graph.append(w[0], Segment::new(4, 4, R)).unwrap();
    chain(&mut graph, w[0], &[(4, 6, R)]);
    assert_eq!(
        graph.segments(w[0]).len(),
        3,
        "the zero-length segment is dropped"
    );
    chain(&mut graph, w[1], &[(0, 4, R)]);
    wakeup(&mut graph, (w[1], 4), (w[0], 4));
    let path = CriticalPath::of(&graph, w[0]).unwrap();
    assert_path(
        &path,
        &[on(w[0], R, 0, 2), on(w[1], R, 2, 4), on(w[0], R, 4, 6)],
    );
}

/// W1 and W2 wake each other at the same instant, 5, and neither has a chain before it. The
/// walk reaches W1@5, runs out of chain, takes the link from W2@5, runs out again, takes the
/// link back to W1@5… Trace Compass would loop here; the walk takes each alternative once
/// and then gives up, leaving the time before W1's chain unknown.
#[test]
fn links_in_a_cycle_at_one_instant_are_followed_once() {
    let (mut graph, w) = workers(3);
    chain(&mut graph, w[0], &[(0, 10, B), (10, 12, R)]);
    chain(&mut graph, w[1], &[(5, 10, R)]);
    wakeup(&mut graph, (w[1], 10), (w[0], 10));
    wakeup(&mut graph, (w[2], 5), (w[1], 5));
    wakeup(&mut graph, (w[1], 5), (w[2], 5));
    let path = CriticalPath::of(&graph, w[0]).unwrap();
    assert_path(
        &path,
        &[on(w[1], U, 0, 5), on(w[1], R, 5, 10), on(w[0], R, 10, 12)],
    );
}

/// W0 and W1 are each blocked until the other wakes it, at the same instant. Explaining W0's
/// block needs W1's, which needs W0's: the walk does not explain a block inside its own
/// explanation, so W0's block stays unexplained there.
#[test]
fn blocks_explaining_each_other_at_one_instant_end() {
    let (mut graph, w) = workers(2);
    chain(&mut graph, w[0], &[(0, 10, B), (10, 12, R)]);
    chain(&mut graph, w[1], &[(0, 10, B), (10, 12, R)]);
    wakeup(&mut graph, (w[1], 10), (w[0], 10));
    wakeup(&mut graph, (w[0], 10), (w[1], 10));
    let path = CriticalPath::of(&graph, w[0]).unwrap();
    assert_path(&path, &[on(w[0], B, 0, 10), on(w[0], R, 10, 12)]);
}

/// GRAPH_NESTED with 200,000 levels: worker k forks worker k+1 and is blocked until it
/// returns. Explaining worker 0's block nests 199,999 walks, on the explicit stack.
#[test]
fn nesting_as_deep_as_the_trace_is_long() {
    const DEPTH: i64 = 200_000;
    let mut graph = Graph::new();
    let w: Vec<WorkerId> = (0..DEPTH).map(|_| graph.add_worker()).collect();
    let last = DEPTH - 1;
    for k in 0..DEPTH {
        let worker = w[k as usize];
        if k == last {
            chain(&mut graph, worker, &[(k, k + 1, R)]);
            continue;
        }
        let returned = 2 * DEPTH - 2 - k;
        chain(
            &mut graph,
            worker,
            &[
                (k, k + 1, R),
                (k + 1, returned, B),
                (returned, returned + 1, R),
            ],
        );
        wakeup(&mut graph, (worker, k + 1), (w[k as usize + 1], k + 1));
    }
    for k in 0..last {
        let returned = 2 * DEPTH - 2 - k;
        wakeup(
            &mut graph,
            (w[k as usize + 1], returned),
            (w[k as usize], returned),
        );
    }
    let path = CriticalPath::of(&graph, w[0]).unwrap();
    assert_well_formed(&path);
    assert_eq!(path.segments.len() as i64, 2 * DEPTH - 1);
    for (i, segment) in path.segments.iter().enumerate() {
        let i = i as i64;
        let level = if i < DEPTH { i } else { 2 * DEPTH - 2 - i };
        assert_eq!(*segment, on(w[level as usize], R, i, i + 1));
    }
}

//! Where the critical path departs from Trace Compass's on purpose, one case each, with what
//! Trace Compass gives and why this crate gives something else.

mod common;

use common::{assert_path, between, chain, on};
use virtflow_graph::{CriticalPath, Endpoint, Graph, Link, State, WorkerId};

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

/// W0 is blocked [1, 6) and woken by W1 at 6; W1 was itself blocked [2, 5) and nothing says
/// who woke it. Trace Compass drops W1's unexplained blocked edge from the explanation and
/// joins the pieces around it with a DEFAULT connector, shown as unknown; here the nested
/// block is kept as W1's blocked time, as an unexplained block at the top level is.
#[test]
fn an_unexplained_nested_block_keeps_its_state() {
    let (mut graph, w) = workers(2);
    chain(&mut graph, w[0], &[(0, 1, R), (1, 6, B), (6, 7, R)]);
    chain(&mut graph, w[1], &[(0, 2, R), (2, 5, B), (5, 6, R)]);
    wakeup(&mut graph, (w[1], 6), (w[0], 6));
    let path = CriticalPath::of(&graph, w[0]).unwrap();
    assert_path(
        &path,
        &[
            on(w[0], R, 0, 1),
            on(w[1], R, 1, 2),
            on(w[1], B, 2, 5),
            on(w[1], R, 5, 6),
            on(w[0], R, 6, 7),
        ],
    );
}

/// Going back to an alternative must keep what was found between the junction and that
/// alternative, including a nested explanation. W0 is blocked [1, 20), woken by W1 at 20. W1
/// ran [10, 20) after a block [5, 10) that W2 ended; at 5 a link from W3 arrives, and W1's
/// own chain before 5 runs out at 2. The walk backs off to the link at W1@5 and keeps W1's
/// running and W2's explanation of W1's block.
///
/// Trace Compass rewinds by dropping steps until the last one starts at the alternative; no
/// step starts at W1@5 (the edge into it was the nested block, replaced by W2's steps), so it
/// drops everything, the wake-up of W0 included, and the path no longer returns to W0. Here
/// the walk remembers how many steps it had when it stood at the alternative.
#[test]
fn backing_off_keeps_a_nested_explanation() {
    let (mut graph, w) = workers(4);
    chain(&mut graph, w[0], &[(0, 1, R), (1, 20, B), (20, 21, R)]);
    chain(&mut graph, w[1], &[(2, 5, R), (5, 10, B), (10, 20, R)]);
    chain(&mut graph, w[2], &[(6, 10, R)]);
    chain(&mut graph, w[3], &[(1, 3, R)]);
    wakeup(&mut graph, (w[1], 20), (w[0], 20));
    wakeup(&mut graph, (w[2], 10), (w[1], 10));
    wakeup(&mut graph, (w[3], 3), (w[1], 5));
    let path = CriticalPath::of(&graph, w[0]).unwrap();
    assert_path(
        &path,
        &[
            on(w[0], R, 0, 1),
            on(w[3], R, 1, 3),
            // The wake-up from W3 took 2 to arrive.
            between(U, 3, 5),
            // W2's chain starts at 6: nothing explains [5, 6).
            on(w[2], U, 5, 6),
            on(w[2], R, 6, 10),
            on(w[1], R, 10, 20),
            on(w[0], R, 20, 21),
        ],
    );
}

/// A link may leave its source in the middle of a segment: the walk continues on that
/// segment, cut at the link. (Trace Compass's builder puts a vertex on the waker at every
/// wake-up, splitting its edge; this graph need not store that split.)
#[test]
fn a_link_may_leave_from_inside_a_segment() {
    let (mut graph, w) = workers(2);
    chain(&mut graph, w[0], &[(0, 2, R), (2, 5, B), (5, 8, R)]);
    chain(&mut graph, w[1], &[(0, 10, R)]);
    wakeup(&mut graph, (w[1], 5), (w[0], 5));
    let path = CriticalPath::of(&graph, w[0]).unwrap();
    assert_path(
        &path,
        &[on(w[0], R, 0, 2), on(w[1], R, 2, 5), on(w[0], R, 5, 8)],
    );
}

/// Several links arriving at the same point: the last one added is the one followed, as
/// Trace Compass keeps the last incoming edge set on a vertex.
#[test]
fn of_several_links_at_a_point_the_last_added_is_followed() {
    let (mut graph, w) = workers(3);
    chain(&mut graph, w[0], &[(0, 2, R), (2, 5, B), (5, 8, R)]);
    chain(&mut graph, w[1], &[(0, 5, R)]);
    chain(&mut graph, w[2], &[(0, 5, State::Disk)]);
    wakeup(&mut graph, (w[1], 5), (w[0], 5));
    wakeup(&mut graph, (w[2], 5), (w[0], 5));
    let path = CriticalPath::of(&graph, w[0]).unwrap();
    assert_path(
        &path,
        &[
            on(w[0], R, 0, 2),
            on(w[2], State::Disk, 2, 5),
            on(w[0], R, 5, 8),
        ],
    );
}

//! The graph itself: what appends and links accept, the queries, the statistics of Trace
//! Compass's `TmfGraphTest` graph, memory accounting and serialisation.

mod common;

use common::chain;
use virtflow_graph::{
    Endpoint, Graph, GraphError, Link, LinkKind, Segment, State, StateTotals, WorkerId,
};

const R: State = State::Running;
const B: State = State::Blocked;

fn at(worker: WorkerId, time: i64) -> Endpoint {
    Endpoint::new(worker, time)
}

/// As `TmfGraphTest`: appending before the tail, linking a point to itself or to an earlier
/// time are refused; so are unknown workers and a segment ending before its start.
#[test]
fn what_the_graph_refuses() {
    let mut graph = Graph::new();
    let a = graph.add_worker();
    let b = graph.add_worker();
    let ghost = WorkerId(7);
    graph.append(a, Segment::new(0, 10, R)).unwrap();
    assert_eq!(
        graph.append(a, Segment::new(5, 12, R)),
        Err(GraphError::SegmentOverlaps {
            worker: a,
            start: 5,
            previous_end: 10
        })
    );
    assert_eq!(
        graph.append(b, Segment::new(5, 4, R)),
        Err(GraphError::SegmentEndsBeforeStart {
            worker: b,
            start: 5,
            end: 4
        })
    );
    assert_eq!(
        graph.append(ghost, Segment::new(0, 1, R)),
        Err(GraphError::UnknownWorker(ghost))
    );
    assert_eq!(
        graph.append(b, Segment::new(0, 1, R).by(ghost)),
        Err(GraphError::UnknownWorker(ghost))
    );
    assert_eq!(
        graph.add_link(Link::wakeup(at(a, 3), at(a, 3))),
        Err(GraphError::LinkToItself(at(a, 3)))
    );
    assert_eq!(
        graph.add_link(Link::wakeup(at(a, 3), at(b, 2))),
        Err(GraphError::LinkBackwards {
            source: at(a, 3),
            target: at(b, 2)
        })
    );
    assert_eq!(
        graph.add_link(Link::message(at(ghost, 1), at(b, 2))),
        Err(GraphError::UnknownWorker(ghost))
    );
    // Refusals leave the graph as it was.
    assert_eq!(graph.segment_count(), 1);
    assert_eq!(graph.link_count(), 0);
    // A segment may start after the last one's end (a hole), and a link may stay on one
    // worker if it spans time (a wake-up by one's own timer).
    graph.append(a, Segment::new(12, 15, B)).unwrap();
    graph
        .add_link(Link::wakeup(at(a, 5), at(a, 15)).with_cause(State::Timer))
        .unwrap();
}

#[test]
fn segments_by_time() {
    let mut graph = Graph::new();
    let a = graph.add_worker();
    let idle = graph.add_worker();
    chain(&mut graph, a, &[(0, 10, R), (10, 20, B), (30, 40, R)]);
    assert_eq!(graph.segment_at(a, -1), None);
    assert_eq!(graph.segment_at(a, 0).unwrap().state(), R);
    assert_eq!(graph.segment_at(a, 9).unwrap().start(), 0);
    // Half-open: an instant on a boundary belongs to the segment starting there.
    assert_eq!(graph.segment_at(a, 10).unwrap().state(), B);
    assert_eq!(graph.segment_at(a, 25), None, "a hole");
    assert_eq!(graph.segment_at(a, 40), None, "after the end");
    let starts = |segments: &[Segment]| segments.iter().map(|s| s.start()).collect::<Vec<_>>();
    assert_eq!(starts(graph.segments_within(a, 5, 35)), [0, 10, 30]);
    assert_eq!(starts(graph.segments_within(a, 10, 30)), [10]);
    assert_eq!(starts(graph.segments_within(a, 20, 30)), Vec::<i64>::new());
    assert_eq!(starts(graph.segments_within(a, 35, 35)), Vec::<i64>::new());
    assert_eq!(graph.life(a), Some((0, 40)));
    assert_eq!(graph.life(idle), None);
    let totals = graph.time_by_state(a, 5, 35);
    assert_eq!(totals.running, 10);
    assert_eq!(totals.blocked, 10);
    assert_eq!(totals.total(), 20, "the hole counts for nothing");
}

#[test]
fn links_by_arrival() {
    let mut graph = Graph::new();
    let a = graph.add_worker();
    let b = graph.add_worker();
    let c = graph.add_worker();
    graph.add_link(Link::wakeup(at(a, 10), at(b, 10))).unwrap();
    graph.add_link(Link::message(at(c, 2), at(b, 30))).unwrap();
    // Out of order (a message matched late) and two at one instant.
    graph.add_link(Link::fork(at(a, 5), at(b, 5))).unwrap();
    graph.add_link(Link::wakeup(at(c, 10), at(b, 10))).unwrap();
    let arrivals: Vec<(i64, LinkKind)> = graph
        .links_into(b)
        .map(|l| (l.target.time, l.kind))
        .collect();
    assert_eq!(
        arrivals,
        [
            (5, LinkKind::Fork),
            (10, LinkKind::Wakeup),
            (10, LinkKind::Wakeup),
            (30, LinkKind::Message)
        ]
    );
    let sources_at_10: Vec<WorkerId> = graph
        .links_into_at(b, 10)
        .map(|l| l.source.worker)
        .collect();
    assert_eq!(sources_at_10, [a, c], "in the order they were added");
    assert_eq!(graph.links_into_within(b, 6, 30).count(), 2);
    assert_eq!(graph.links_into_within(b, 0, 31).count(), 4);
    assert_eq!(graph.links_into(a).count(), 0);
    let message = graph.links_into_at(b, 30).next().unwrap();
    assert_eq!(message.cause, State::Network);
    assert_eq!(message.duration(), 28, "in flight");
    assert_eq!(graph.links().count(), 4);
}

/// `TmfGraphTest`'s full graph: `A: 0 -D-> 2 | 4 -D-> 5 -D-> 7 -D-> 8 -D-> 9 | 10 -D-> 11
/// -D-> 12 -D-> 13 -D-> 15`, `B: 1 -D-> 2 -D-> 3 -D-> 5 | 6 -D-> 8 -D-> 11 | 12 -D-> 14`,
/// links A2→B2, B5→A5, A8→B8, B11→A11, A12→B12. Trace Compass's scan visits 21 vertices, 6
/// heads (runs of horizontal edges), 15 horizontal and 5 vertical edges; its statistics sum
/// the horizontal edges: A 12, B 11, 23 in all. Its DEFAULT horizontal edges are given a
/// state here (running), which the sums do not depend on.
#[test]
fn statistics_of_the_trace_compass_graph() {
    let mut graph = Graph::new();
    let a = graph.add_worker();
    let b = graph.add_worker();
    let edges = |times: &[&[i64]]| -> Vec<(i64, i64, State)> {
        times
            .iter()
            .flat_map(|run| run.windows(2).map(|w| (w[0], w[1], R)))
            .collect()
    };
    chain(
        &mut graph,
        a,
        &edges(&[&[0, 2], &[4, 5, 7, 8, 9], &[10, 11, 12, 13, 15]]),
    );
    chain(
        &mut graph,
        b,
        &edges(&[&[1, 2, 3, 5], &[6, 8, 11], &[12, 14]]),
    );
    for (from, to) in [((a, 2), (b, 2)), ((b, 5), (a, 5)), ((a, 8), (b, 8))] {
        graph
            .add_link(Link::wakeup(at(from.0, from.1), at(to.0, to.1)))
            .unwrap();
    }
    for (from, to) in [((b, 11), (a, 11)), ((a, 12), (b, 12))] {
        graph
            .add_link(Link::wakeup(at(from.0, from.1), at(to.0, to.1)))
            .unwrap();
    }

    let sum = |w: WorkerId| graph.time_by_state(w, i64::MIN, i64::MAX).total();
    assert_eq!(sum(a), 12);
    assert_eq!(sum(b), 11);
    assert_eq!(sum(a) + sum(b), 23);

    let runs = |w: WorkerId| {
        let segments = graph.segments(w);
        1 + segments
            .windows(2)
            .filter(|p| p[0].end() != p[1].start())
            .count()
    };
    assert_eq!(graph.segment_count(), 15, "horizontal edges");
    assert_eq!(runs(a) + runs(b), 6, "heads");
    assert_eq!(graph.segment_count() + runs(a) + runs(b), 21, "vertices");
    assert_eq!(graph.link_count(), 5, "vertical edges");
}

/// Memory is the vectors' capacities: after shrinking, 24 bytes per segment and per link plus
/// one chain header per worker.
#[test]
fn memory_is_counted_from_capacities() {
    let mut graph = Graph::new();
    let a = graph.add_worker();
    let b = graph.add_worker();
    for i in 0..1000 {
        graph.append(a, Segment::new(2 * i, 2 * i + 1, R)).unwrap();
    }
    graph.add_link(Link::wakeup(at(a, 1), at(b, 1))).unwrap();
    graph.shrink_to_fit();
    let chain_header = (graph.heap_bytes() - 24 * 1001) / 2;
    assert_eq!(graph.heap_bytes(), 24 * 1001 + 2 * chain_header);
    assert!(chain_header <= 64);
}

#[test]
fn serialises_and_checks_what_it_reads() {
    let mut graph = Graph::new();
    let a = graph.add_worker();
    let b = graph.add_worker();
    chain(&mut graph, a, &[(0, 10, R), (10, 20, B), (25, 30, R)]);
    graph
        .append(b, Segment::new(0, 20, State::Preempted).by(a))
        .unwrap();
    graph.add_link(Link::message(at(b, 12), at(a, 20))).unwrap();
    let json = serde_json::to_string(&graph).unwrap();
    let back: Graph = serde_json::from_str(&json).unwrap();
    assert_eq!(back.segments(a), graph.segments(a));
    assert_eq!(back.segments(b), graph.segments(b));
    assert_eq!(back.segments(b)[0].by_worker(), Some(a));
    assert_eq!(
        back.links().collect::<Vec<_>>(),
        graph.links().collect::<Vec<_>>()
    );

    // Overlapping segments, and a link to a worker that does not exist, are refused.
    let overlapping = json.replacen("\"start\":25", "\"start\":15", 1);
    assert!(serde_json::from_str::<Graph>(&overlapping).is_err());
    let dangling = json.replacen("\"source_worker\":1", "\"source_worker\":9", 1);
    assert_ne!(dangling, json);
    assert!(serde_json::from_str::<Graph>(&dangling).is_err());
}

#[test]
fn state_totals_read_by_name() {
    let mut totals = StateTotals::default();
    for (i, state) in State::ALL.into_iter().enumerate() {
        totals.add(state, i as i64 + 1);
    }
    assert_eq!(totals.get(State::UserInput), 9);
    assert_eq!(totals.total(), 55);
    let json = serde_json::to_value(totals).unwrap();
    assert_eq!(json["user_input"], 9);
    assert_eq!(
        serde_json::to_value(State::UserInput).unwrap(),
        "user_input"
    );
    assert!(State::Network.is_blocking() && State::Blocked.is_blocking());
    assert!(!State::Timer.is_blocking() && !State::Preempted.is_blocking());
}

//! A million segments: the critical path of a relay (see `virtflow_graph::synthetic`) is every
//! hop in turn, through several workers, wake-ups, messages in flight and preemptions.

mod common;

use common::assert_path;
use virtflow_graph::synthetic::Relay;
use virtflow_graph::{CriticalPath, State};

#[test]
fn the_critical_path_of_a_million_segment_relay_is_every_hop() {
    let relay = Relay::new(420_000, 7, 3);
    let graph = &relay.graph;
    assert!(
        graph.segment_count() >= 1_000_000,
        "{}",
        graph.segment_count()
    );
    let path = CriticalPath::of(graph, relay.first).unwrap();
    assert_path(&path, &relay.expected);

    // Each hop is one worker's turn: the relay workers share the time, the messages take
    // theirs in flight, and every preemption names a helper.
    let totals = path.time_by_state();
    assert!(totals.running > 0 && totals.network > 0 && totals.preempted > 0);
    assert_eq!(totals.blocked + totals.unknown, 0, "every wait explained");
    let by_worker = path.time_by_worker();
    assert_eq!(
        by_worker.len(),
        7 + 1,
        "seven workers and the time in flight"
    );
    assert!(path
        .segments
        .iter()
        .filter(|s| s.state == State::Preempted)
        .all(|s| s.by.is_some_and(|helper| helper.0 >= 7)));
}

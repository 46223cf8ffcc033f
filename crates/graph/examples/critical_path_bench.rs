//! Measures the graph on a whole trace's worth of segments: building it, its memory per
//! segment, and the critical path over the whole life of a worker whose path crosses every
//! segment's worker (a relay, see `virtflow_graph::synthetic`).
//!
//! `cargo run --release -p virtflow-graph --example critical_path_bench [SEGMENTS]`
//! (default 5,000,000). The query is timed as the best of several runs.

use std::time::{Duration, Instant};

use virtflow_graph::synthetic::Relay;
use virtflow_graph::CriticalPath;

/// Segments per hop of the relay, as it is generated: the holder's running piece, the next
/// holder's wait, and a preemption (two segments) every fifth hop.
const SEGMENTS_PER_HOP: f64 = 2.4;

fn main() {
    let wanted: usize = std::env::args()
        .nth(1)
        .map(|a| a.replace('_', "").parse().expect("a number of segments"))
        .unwrap_or(5_000_000);
    let hops = (wanted as f64 / SEGMENTS_PER_HOP) as usize;

    let started = Instant::now();
    let mut relay = Relay::new(hops, 8, 4);
    let build = started.elapsed();
    let graph = &mut relay.graph;
    let segments = graph.segment_count();
    let links = graph.link_count();
    let grown = graph.heap_bytes();
    graph.shrink_to_fit();
    let shrunk = graph.heap_bytes();
    let graph = &relay.graph;

    println!(
        "graph: {segments} segments, {links} links, {} workers; built in {} ({:.1} M segments/s)",
        graph.worker_count(),
        ms(build),
        segments as f64 / build.as_secs_f64() / 1e6
    );
    println!(
        "memory: {:.1} bytes/segment as grown ({:.0} MB), {:.1} after shrink_to_fit ({:.0} MB), links included",
        grown as f64 / segments as f64,
        grown as f64 / 1e6,
        shrunk as f64 / segments as f64,
        shrunk as f64 / 1e6
    );

    let mut best = Duration::MAX;
    let mut path = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    for run in 0.. {
        let started = Instant::now();
        let result = CriticalPath::of(graph, relay.first).unwrap();
        best = best.min(started.elapsed());
        path = Some(result);
        if run >= 2 && Instant::now() > deadline || run >= 9 {
            break;
        }
    }
    let path = path.expect("at least one run");
    assert_eq!(path.segments, relay.expected, "the relay's known path");
    println!(
        "critical path over the whole life: {} pieces in {} (best run): {:.1} M graph segments/s, {:.1} M path pieces/s",
        path.segments.len(),
        ms(best),
        segments as f64 / best.as_secs_f64() / 1e6,
        path.segments.len() as f64 / best.as_secs_f64() / 1e6
    );
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

//! The execution graph built in the one pass, and critical paths on it, against the facts of
//! Trace Compass's execution graph and critical path tests: its stub traces (written by
//! `virtflow_xmlstub::testing`) and the segments and paths its tests expect, worked out from
//! the events where its tests leave them implicit.

use std::path::PathBuf;

use virtflow_analysis::{analyze, Options};
use virtflow_graph::{CriticalPath, State, WorkerId};
use virtflow_model::{ExecutionGraph, Model};
use virtflow_trace::{EventSource, Member, Merge};
use virtflow_xmlstub::testing::{traces, StubTrace};
use virtflow_xmlstub::XmlSource;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("virtflow-graph-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn with_graph() -> Options {
    Options {
        graph: true,
        ..Options::default()
    }
}

/// The model of stub traces read as one experiment, one host per trace, on their own clocks.
fn model_of(name: &str, stubs: &[StubTrace]) -> Model {
    let dir = scratch(name);
    let mut members = Vec::new();
    let mut hosts = Vec::new();
    for (i, stub) in stubs.iter().enumerate() {
        let path = stub.write_in(&dir).unwrap();
        let source: Box<dyn EventSource> = Box::new(XmlSource::open(&path).unwrap());
        members.push(Member {
            source,
            host: i,
            clock: None,
        });
        hosts.push(stub.file_name.trim_end_matches(".xml").to_string());
    }
    let mut source = Merge::experiment(members, hosts);
    let model = analyze(&mut source, &with_graph()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    model
}

fn graph(model: &Model) -> &ExecutionGraph {
    model.graph.as_ref().expect("the run built a graph")
}

fn worker(g: &ExecutionGraph, host: &str, tid: u32) -> WorkerId {
    g.worker(host, tid)
        .unwrap_or_else(|| panic!("no worker for {host}/{tid}: {:?}", g.workers))
}

/// A worker's chain as (start, end, state).
fn chain(g: &ExecutionGraph, w: WorkerId) -> Vec<(i64, i64, State)> {
    g.graph
        .segments(w)
        .iter()
        .map(|s| (s.start(), s.end(), s.state()))
        .collect()
}

/// A path as (start, end, state, thread) with the thread written as `host/tid`, or `-` for
/// time in flight between hosts.
fn pieces(g: &ExecutionGraph, path: &CriticalPath) -> Vec<(i64, i64, State, String)> {
    path.segments
        .iter()
        .map(|s| {
            let who = match s.worker {
                Some(w) => {
                    let gw = &g.workers[w.index()];
                    format!("{}/{}", gw.host, gw.tid)
                }
                None => "-".to_string(),
            };
            (s.start, s.end, s.state, who)
        })
        .collect()
}

fn piece(start: i64, end: i64, state: State, who: &str) -> (i64, i64, State, String) {
    (start, end, state, who.to_string())
}

/// `sched_only`: two threads taking turns on one CPU. Trace Compass's graph test expects tid 1
/// preempted, running, preempted and tid 2 running, blocked, running, ten units each, and no
/// link between them (nobody woke tid 2).
#[test]
fn two_threads_taking_turns_make_two_chains_and_no_link() {
    let m = model_of("sched", &[traces::sched_only()]);
    let g = graph(&m);
    let one = worker(g, "sched_only", 1);
    let two = worker(g, "sched_only", 2);
    assert_eq!(
        chain(g, one),
        vec![
            (10, 20, State::Preempted),
            (20, 30, State::Running),
            (30, 40, State::Preempted),
        ]
    );
    assert_eq!(
        chain(g, two),
        vec![
            (10, 20, State::Running),
            (20, 30, State::Blocked),
            (30, 40, State::Running),
        ]
    );
    assert_eq!(g.graph.links_into(one).count(), 0);
    assert_eq!(g.graph.links_into(two).count(), 0);
    // With no link, tid 2's critical path is its own chain: the blocked time stays blocked.
    let path = CriticalPath::of(&g.graph, two).unwrap();
    assert_eq!(
        pieces(g, &path),
        vec![
            piece(10, 20, State::Running, "sched_only/2"),
            piece(20, 30, State::Blocked, "sched_only/2"),
            piece(30, 40, State::Running, "sched_only/2"),
        ]
    );
}

/// The simple network exchange as two hosts: the client (200) sends message 1 at 13 and
/// blocks at 15; the server (100), blocked, is woken at 35 by its reception in a NET_RX
/// softirq, runs from 40, answers with message 2 at 45; the client is woken by it at 70 and
/// runs from 75 to 95. The client's wait is explained by the server's work, each message's
/// flight by no thread, as Trace Compass's critical path through its network edges.
#[test]
fn a_request_crosses_to_the_server_and_back_on_the_critical_path() {
    let m = model_of(
        "net",
        &[
            traces::simple_network_client(),
            traces::simple_network_server(),
        ],
    );
    let g = graph(&m);
    let client = worker(g, "simple_network_client", 200);
    let server = worker(g, "simple_network_server", 100);

    // The server's wait was ended by a network reception, with a message link from the
    // client's host.
    let server_chain = chain(g, server);
    assert!(
        server_chain.contains(&(5, 35, State::Network)),
        "{server_chain:?}"
    );
    let into_server: Vec<_> = g.graph.links_into(server).collect();
    assert_eq!(into_server.len(), 1, "{into_server:?}");
    assert_eq!(into_server[0].source.worker, client);
    assert_eq!(into_server[0].target.time, 35);

    let path = CriticalPath::within(&g.graph, client, 10, 95).unwrap();
    assert_eq!(
        pieces(g, &path),
        vec![
            piece(10, 15, State::Running, "simple_network_client/200"),
            piece(15, 35, State::Network, "-"),
            piece(35, 40, State::Preempted, "simple_network_server/100"),
            piece(40, 45, State::Running, "simple_network_server/100"),
            piece(45, 70, State::Network, "-"),
            piece(70, 75, State::Preempted, "simple_network_client/200"),
            piece(75, 95, State::Running, "simple_network_client/200"),
        ]
    );
    // Nothing is lost: the pieces cover the window.
    assert_eq!(path.time_by_state().total(), 85);

    // depClient (202), woken by the client at 90, waits on the whole exchange.
    let dep = worker(g, "simple_network_client", 202);
    let path = CriticalPath::within(&g.graph, dep, 7, 95).unwrap();
    let p = pieces(g, &path);
    assert_eq!(p.first().unwrap().0, 7);
    assert_eq!(
        p.last().unwrap(),
        &piece(90, 95, State::Preempted, "simple_network_client/202")
    );
    assert!(
        p.contains(&piece(40, 45, State::Running, "simple_network_server/100")),
        "{p:?}"
    );
    assert!(
        p.contains(&piece(75, 90, State::Running, "simple_network_client/200")),
        "{p:?}"
    );
}

/// The client alone: the message that woke it came from no traced host, so its wait stays
/// network time on its own chain, unexplained.
#[test]
fn a_message_from_an_untraced_host_stays_the_waits_cause() {
    let m = model_of("client", &[traces::simple_network_client()]);
    let g = graph(&m);
    let client = worker(g, "simple_network_client", 200);
    let path = CriticalPath::within(&g.graph, client, 10, 95).unwrap();
    assert_eq!(
        pieces(g, &path),
        vec![
            piece(10, 15, State::Running, "simple_network_client/200"),
            piece(15, 70, State::Network, "simple_network_client/200"),
            piece(70, 75, State::Preempted, "simple_network_client/200"),
            piece(75, 95, State::Running, "simple_network_client/200"),
        ]
    );
}

/// The wifi side of the exchange: the answer is received by a threaded interrupt handler in
/// task context, which wakes the client: the client's wait is explained by the handler (a
/// wake-up link from a thread), back to where the handler was first seen.
#[test]
fn a_threaded_handler_that_wakes_the_client_is_on_its_path() {
    let m = model_of("wifi", &[traces::network_exchange_wifi()]);
    let g = graph(&m);
    let client = worker(g, "network_exchange_wifi", 200);
    let handler = worker(g, "network_exchange_wifi", 50);
    let into_client: Vec<_> = g.graph.links_into(client).collect();
    assert_eq!(into_client.len(), 1, "{into_client:?}");
    assert_eq!(into_client[0].source.worker, handler);
    assert_eq!(into_client[0].source.time, 70);
    // The handler is first seen when it is woken: its chain starts there, preempted until
    // it runs, and ends blocked again with the trace.
    assert_eq!(
        chain(g, handler),
        vec![
            (55, 60, State::Preempted),
            (60, 75, State::Running),
            (75, 80, State::Blocked),
        ]
    );
    let path = CriticalPath::within(&g.graph, client, 10, 80).unwrap();
    let p = pieces(g, &path);
    assert_eq!(
        p[0],
        piece(10, 15, State::Running, "network_exchange_wifi/200")
    );
    assert!(
        p.contains(&piece(60, 70, State::Running, "network_exchange_wifi/50")),
        "{p:?}"
    );
    assert_eq!(
        p.last().unwrap(),
        &piece(75, 80, State::Running, "network_exchange_wifi/200")
    );
}

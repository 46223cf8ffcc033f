//! The synthetic graphs of Trace Compass's critical path tests (`TmfCriticalPathAlgoBoundedTest`
//! on `GraphFactory`'s graphs) and the graphs asserted by its `DistributedCriticalPathTest`,
//! each with the bounded critical path Trace Compass expects, in this crate's form.
//!
//! How the vertex-and-edge form is translated:
//! - A worker's vertices joined by horizontal edges become its chain: the edge `a -R-> b` is
//!   the segment `[a, b)` running. A vertex with no edge (`W1: 3` alone) is no segment: only
//!   the link ending or starting there names that point.
//! - A vertical edge is a link from its source point to its target point: a DEFAULT one is a
//!   wake-up (cause unknown), a NETWORK one a message (cause network), the TIMER self-edge of
//!   WAKEUP_SELF a wake-up whose cause is timer.
//! - The link qualifier "testLinkQualifier" is carried as a segment's responsible worker, a
//!   worker of its own (`qualifier`), and checked where the expected path keeps it; the
//!   "irq/30-handler" qualifier of the distributed tests is that thread, worker 50.
//! - Every test starts, as Trace Compass's do, from the first worker's head with no end: the
//!   path over the worker's whole life.
//! - The expected critical-path graph becomes the flat list of its pieces in time order: a
//!   horizontal edge is a piece on its worker; a vertical edge spanning no time (a wake-up, a
//!   zero-length DEFAULT connector) leaves no piece; one spanning time is a piece on no worker
//!   in its type (a NETWORK edge: network; a DEFAULT edge: unknown); the gap a resolved
//!   blocked edge leaves on the blocked worker (`3 | 6`) is covered by the explanation's
//!   pieces.
//!
//! None of the twelve graphs needs EPS edges (Trace Compass's graphs have none either); the
//! EPS case of the junction search is in `termination.rs`.

mod common;

use common::{assert_path, between, by, chain, on};
use virtflow_graph::{CriticalPath, Endpoint, Graph, Link, PathSegment, State, WorkerId};

const R: State = State::Running;
const B: State = State::Blocked;
const N: State = State::Network;
const P: State = State::Preempted;
const U: State = State::Unknown;
const T: State = State::Timer;

/// A graph with `count` actors, plus a worker standing for the link qualifier.
struct Actors {
    graph: Graph,
    actor: Vec<WorkerId>,
    qualifier: WorkerId,
}

impl Actors {
    fn new(count: usize) -> Actors {
        let mut graph = Graph::new();
        let actor = (0..count).map(|_| graph.add_worker()).collect();
        let qualifier = graph.add_worker();
        Actors {
            graph,
            actor,
            qualifier,
        }
    }

    fn chain(&mut self, actor: usize, pieces: &[(i64, i64, State)]) {
        chain(&mut self.graph, self.actor[actor], pieces);
    }

    /// `(from, from_time) => (to, to_time)` with no type given: a DEFAULT vertical edge.
    fn wakeup(&mut self, from: (usize, i64), to: (usize, i64)) {
        let link = Link::wakeup(self.at(from), self.at(to));
        self.graph.add_link(link).unwrap();
    }

    /// A NETWORK vertical edge.
    fn message(&mut self, from: (usize, i64), to: (usize, i64)) {
        let link = Link::message(self.at(from), self.at(to));
        self.graph.add_link(link).unwrap();
    }

    fn at(&self, (actor, time): (usize, i64)) -> Endpoint {
        Endpoint::new(self.actor[actor], time)
    }

    fn critical_path(&self) -> CriticalPath {
        CriticalPath::of(&self.graph, self.actor[0]).unwrap()
    }

    fn on(&self, actor: usize, state: State, start: i64, end: i64) -> PathSegment {
        on(self.actor[actor], state, start, end)
    }

    /// A piece whose edge carried the link qualifier.
    fn qualified(&self, actor: usize, state: State, start: i64, end: i64) -> PathSegment {
        by(self.on(actor, state, start, end), self.qualifier)
    }

    fn append_qualified(&mut self, actor: usize, start: i64, end: i64, state: State) {
        let segment = virtflow_graph::Segment::new(start, end, state).by(self.qualifier);
        self.graph.append(self.actor[actor], segment).unwrap();
    }
}

/// GRAPH_BASIC: `W0: 0 -R-> 1`; the path is the graph.
#[test]
fn basic() {
    let mut g = Actors::new(1);
    g.chain(0, &[(0, 1, R)]);
    assert_path(&g.critical_path(), &[g.on(0, R, 0, 1)]);
}

/// GRAPH_WAKEUP_SELF: `W0: 0 -R-> 1 -R[LQ]-> 2 -B-> 3 -R-> 4`, self-edge `(W0,1) => (W0,3)
/// TIMER`. Expected `W0: 0 -R-> 1 -R[LQ]-> 2 -T-> 3 -R-> 4`: the blocked time becomes the
/// link's timer, on the worker itself.
#[test]
fn wakeup_self() {
    let mut g = Actors::new(1);
    g.chain(0, &[(0, 1, R)]);
    g.append_qualified(0, 1, 2, R);
    g.chain(0, &[(2, 3, B), (3, 4, R)]);
    let timer = Link::wakeup(g.at((0, 1)), g.at((0, 3))).with_cause(T);
    g.graph.add_link(timer).unwrap();
    assert_path(
        &g.critical_path(),
        &[
            g.on(0, R, 0, 1),
            g.qualified(0, R, 1, 2),
            g.on(0, T, 2, 3),
            g.on(0, R, 3, 4),
        ],
    );
}

/// GRAPH_WAKEUP_MISSING: `W0: 0 -R-> 2 -B[LQ]-> 4 -R-> 6`, no link: the blocked edge stays,
/// with its qualifier.
#[test]
fn wakeup_missing() {
    let mut g = Actors::new(1);
    g.chain(0, &[(0, 2, R)]);
    g.append_qualified(0, 2, 4, B);
    g.chain(0, &[(4, 6, R)]);
    assert_path(
        &g.critical_path(),
        &[g.on(0, R, 0, 2), g.qualified(0, B, 2, 4), g.on(0, R, 4, 6)],
    );
}

/// GRAPH_WAKEUP_UNKNOWN: `W0: 0 -R-> 2 -B-> 4 -R-> 6`, `W1: 3` alone, `(W1,3) => (W0,4)
/// NETWORK`. Expected `W0: 0 -R-> 2 | 4 -R-> 6`, `W1: 2 -U-> 3`, `(W0,2) => (W1,2) D`,
/// `(W1,3) => (W0,4) NETWORK`: W1 is unknown until it sends, then the message is in flight.
#[test]
fn wakeup_unknown() {
    let mut g = Actors::new(2);
    g.chain(0, &[(0, 2, R), (2, 4, B), (4, 6, R)]);
    g.message((1, 3), (0, 4));
    assert_path(
        &g.critical_path(),
        &[
            g.on(0, R, 0, 2),
            g.on(1, U, 2, 3),
            between(N, 3, 4),
            g.on(0, R, 4, 6),
        ],
    );
}

/// GRAPH_WAKEUP_NEW: `W0: 0 -R-> 2 -R[LQ]-> 4 -B-> 6 -R[LQ]-> 8`, `W1: 3 -R[LQ]-> 6`,
/// `(W0,2) => (W1,3) D`, `(W1,6) => (W0,6) D`. Expected `W0: 0 -R-> 2 -R[LQ]-> 4 | 6
/// -R[LQ]-> 8`, `W1: 4 -R[LQ]-> 6`: the waker's running is cut at the blocking's start.
#[test]
fn wakeup_new() {
    let mut g = Actors::new(2);
    g.chain(0, &[(0, 2, R)]);
    g.append_qualified(0, 2, 4, R);
    g.chain(0, &[(4, 6, B)]);
    g.append_qualified(0, 6, 8, R);
    g.append_qualified(1, 3, 6, R);
    g.wakeup((0, 2), (1, 3));
    g.wakeup((1, 6), (0, 6));
    assert_path(
        &g.critical_path(),
        &[
            g.on(0, R, 0, 2),
            g.qualified(0, R, 2, 4),
            g.qualified(1, R, 4, 6),
            g.qualified(0, R, 6, 8),
        ],
    );
}

/// GRAPH_OPENED_DELAY: `W0: 0 -R-> 3 -B-> 6 -R-> 9`, `W1: 0 -R-> 2 -R-> 5`, `(W1,2) =>
/// (W0,6) D`. Expected `W0: 0 -R-> 3 | 6 -R-> 9`, `W1: 3` alone, `(W0,3) => (W1,3) D`,
/// `(W1,3) => (W0,6) D`: the wake-up's delay is a DEFAULT edge of 3, unknown on no worker.
#[test]
fn opened_delay() {
    let mut g = Actors::new(2);
    g.chain(0, &[(0, 3, R), (3, 6, B), (6, 9, R)]);
    g.chain(1, &[(0, 2, R), (2, 5, R)]);
    g.wakeup((1, 2), (0, 6));
    assert_path(
        &g.critical_path(),
        &[g.on(0, R, 0, 3), between(U, 3, 6), g.on(0, R, 6, 9)],
    );
}

/// GRAPH_OPENED: `W0: 0 -R-> 3 -B-> 6 -R-> 9`, `W1: 0 -R-> 6 -R-> 9`, `(W1,6) => (W0,6) D`.
/// Expected `W0: 0 -R-> 3 | 6 -R-> 9`, `W1: 3 -R-> 6`.
#[test]
fn opened() {
    let mut g = Actors::new(2);
    g.chain(0, &[(0, 3, R), (3, 6, B), (6, 9, R)]);
    g.chain(1, &[(0, 6, R), (6, 9, R)]);
    g.wakeup((1, 6), (0, 6));
    assert_path(
        &g.critical_path(),
        &[g.on(0, R, 0, 3), g.on(1, R, 3, 6), g.on(0, R, 6, 9)],
    );
}

/// GRAPH_WAKEUP_MUTUAL: `W0: 0 -R-> 1 -R-> 2 -R-> 3 -B-> 4 -R-> 5`, `W1: 0 -R-> 1 -B-> 2
/// -R-> 3 -R-> 4 -R-> 5`, `(W0,2) => (W1,2)`, `(W1,4) => (W0,4)`. Expected `W0: 0 -R-> 1
/// -R-> 2 -R-> 3 | 4 -R-> 5`, `W1: 3 -R-> 4`.
#[test]
fn wakeup_mutual() {
    let mut g = Actors::new(2);
    g.chain(0, &[(0, 1, R), (1, 2, R), (2, 3, R), (3, 4, B), (4, 5, R)]);
    g.chain(1, &[(0, 1, R), (1, 2, B), (2, 3, R), (3, 4, R), (4, 5, R)]);
    g.wakeup((0, 2), (1, 2));
    g.wakeup((1, 4), (0, 4));
    assert_path(
        &g.critical_path(),
        &[
            g.on(0, R, 0, 1),
            g.on(0, R, 1, 2),
            g.on(0, R, 2, 3),
            g.on(1, R, 3, 4),
            g.on(0, R, 4, 5),
        ],
    );
}

/// The expected path of GRAPH_WAKEUP_EMBEDDED and GRAPH_WAKEUP_INTERLEAVE: `W0: 0 -R-> 2
/// -R-> 4 -R-> 6 | 8 | 10 -R-> 12`, `W1: 6 -R-> 8`, `W2: 8 -R-> 10`.
fn embedded_expected(g: &Actors) -> Vec<PathSegment> {
    vec![
        g.on(0, R, 0, 2),
        g.on(0, R, 2, 4),
        g.on(0, R, 4, 6),
        g.on(1, R, 6, 8),
        g.on(2, R, 8, 10),
        g.on(0, R, 10, 12),
    ]
}

/// GRAPH_WAKEUP_EMBEDDED: `W0: 0 -R-> 2 -R-> 4 -R-> 6 -B-> 8 -B-> 10 -R-> 12`, `W1: 4
/// -R-> 8`, `W2: 2 -R-> 10`, `(W0,2) => (W2,2)`, `(W0,4) => (W1,4)`, `(W1,8) => (W0,8)`,
/// `(W2,10) => (W0,10)`.
#[test]
fn wakeup_embedded() {
    let mut g = Actors::new(3);
    g.chain(
        0,
        &[
            (0, 2, R),
            (2, 4, R),
            (4, 6, R),
            (6, 8, B),
            (8, 10, B),
            (10, 12, R),
        ],
    );
    g.chain(1, &[(4, 8, R)]);
    g.chain(2, &[(2, 10, R)]);
    g.wakeup((0, 2), (2, 2));
    g.wakeup((0, 4), (1, 4));
    g.wakeup((1, 8), (0, 8));
    g.wakeup((2, 10), (0, 10));
    assert_path(&g.critical_path(), &embedded_expected(&g));
}

/// GRAPH_WAKEUP_INTERLEAVE: as EMBEDDED but `W1: 2 -R-> 8`, `W2: 4 -R-> 10`, `(W0,2) =>
/// (W1,2)`, `(W0,4) => (W2,4)`; the same expected path.
#[test]
fn wakeup_interleave() {
    let mut g = Actors::new(3);
    g.chain(
        0,
        &[
            (0, 2, R),
            (2, 4, R),
            (4, 6, R),
            (6, 8, B),
            (8, 10, B),
            (10, 12, R),
        ],
    );
    g.chain(1, &[(2, 8, R)]);
    g.chain(2, &[(4, 10, R)]);
    g.wakeup((0, 2), (1, 2));
    g.wakeup((0, 4), (2, 4));
    g.wakeup((1, 8), (0, 8));
    g.wakeup((2, 10), (0, 10));
    assert_path(&g.critical_path(), &embedded_expected(&g));
}

/// GRAPH_NESTED: `W0: 0 -R-> 1 -B-> 6 -R-> 7`, `W1: 1 -R-> 2 -B-> 5 -R-> 6`, `W2: 2 -R-> 3
/// -B-> 4 -R-> 5`, `W3: 3 -R-> 4`; forks `(W0,1) => (W1,1)`, `(W1,2) => (W2,2)`, `(W2,3)
/// => (W3,3)`; returns `(W3,4) => (W2,4)`, `(W2,5) => (W1,5)`, `(W1,6) => (W0,6)`. Expected:
/// every blocked edge replaced by a gap, the running edges kept: down the forks, back up the
/// returns. (The forks are DEFAULT edges in Trace Compass, so wake-ups here too; the kind
/// does not matter to the walk.)
#[test]
fn nested() {
    let mut g = Actors::new(4);
    g.chain(0, &[(0, 1, R), (1, 6, B), (6, 7, R)]);
    g.chain(1, &[(1, 2, R), (2, 5, B), (5, 6, R)]);
    g.chain(2, &[(2, 3, R), (3, 4, B), (4, 5, R)]);
    g.chain(3, &[(3, 4, R)]);
    g.wakeup((0, 1), (1, 1));
    g.wakeup((1, 2), (2, 2));
    g.wakeup((2, 3), (3, 3));
    g.wakeup((3, 4), (2, 4));
    g.wakeup((2, 5), (1, 5));
    g.wakeup((1, 6), (0, 6));
    assert_path(
        &g.critical_path(),
        &[
            g.on(0, R, 0, 1),
            g.on(1, R, 1, 2),
            g.on(2, R, 2, 3),
            g.on(3, R, 3, 4),
            g.on(2, R, 4, 5),
            g.on(1, R, 5, 6),
            g.on(0, R, 6, 7),
        ],
    );
}

/// GRAPH_NET1: `W0: 0 -R-> 1 -B-> 11 -R-> 12`, `W1: 3 -R-> 4 -R-> 5`, `W2: 6 -R-> 7 -R-> 8`,
/// `W3: 9 -R-> 10 -R-> 11`, `(W1,4) => (W2,7) NETWORK`, `(W2,8) => (W3,10) NETWORK`,
/// `(W3,11) => (W0,11) D`. Expected `W0: 0 -R-> 1 | 11 -R-> 12`, `W1: 1 -U-> 3 -R-> 4`,
/// `W2: 7 -R-> 8`, `W3: 10 -R-> 11`, `(W0,1) => (W1,1) D` and the three links: the walk
/// backs off W3's and W2's own past (which dead-ends) to the messages.
#[test]
fn net1() {
    let g = net1_graph();
    assert_path(
        &g.critical_path(),
        &[
            g.on(0, R, 0, 1),
            g.on(1, U, 1, 3),
            g.on(1, R, 3, 4),
            between(N, 4, 7),
            g.on(2, R, 7, 8),
            between(N, 8, 10),
            g.on(3, R, 10, 11),
            g.on(0, R, 11, 12),
        ],
    );
}

fn net1_graph() -> Actors {
    let mut g = Actors::new(4);
    g.chain(0, &[(0, 1, R), (1, 11, B), (11, 12, R)]);
    g.chain(1, &[(3, 4, R), (4, 5, R)]);
    g.chain(2, &[(6, 7, R), (7, 8, R)]);
    g.chain(3, &[(9, 10, R), (10, 11, R)]);
    g.message((1, 4), (2, 7));
    g.message((2, 8), (3, 10));
    g.wakeup((3, 11), (0, 11));
    g
}

/// Not a Trace Compass case (its critical path has no window): NET1 over `[2, 10)`. The
/// blocked interval is explained as a whole and the explanation cut at both ends.
#[test]
fn net1_within_a_window() {
    let g = net1_graph();
    let path = CriticalPath::within(&g.graph, g.actor[0], 2, 10).unwrap();
    assert_path(
        &path,
        &[
            g.on(1, U, 2, 3),
            g.on(1, R, 3, 4),
            between(N, 4, 7),
            g.on(2, R, 7, 8),
            between(N, 8, 10),
        ],
    );
}

/// Not a Trace Compass case: a hole in the worker's chain and the time outside its life are
/// its own unknown time (Trace Compass's walk ends at the first hole).
#[test]
fn holes_and_outside_of_life_are_unknown() {
    let mut g = Actors::new(1);
    g.chain(0, &[(0, 2, R), (4, 6, R)]);
    let path = CriticalPath::within(&g.graph, g.actor[0], -1, 8).unwrap();
    assert_path(
        &path,
        &[
            g.on(0, U, -1, 0),
            g.on(0, R, 0, 2),
            g.on(0, U, 2, 4),
            g.on(0, R, 4, 6),
            g.on(0, U, 6, 8),
        ],
    );
}

/// The workers of `DistributedCriticalPathTest`, by tid; `K_*` are the hosts' kernel
/// pseudo-workers (tid -1).
struct Hosts {
    graph: Graph,
    tids: Vec<(i64, WorkerId)>,
}

impl Hosts {
    fn new(tids: &[i64]) -> Hosts {
        let mut graph = Graph::new();
        let tids = tids.iter().map(|&tid| (tid, graph.add_worker())).collect();
        Hosts { graph, tids }
    }

    fn w(&self, tid: i64) -> WorkerId {
        self.tids.iter().find(|(t, _)| *t == tid).unwrap().1
    }

    fn chain(&mut self, tid: i64, pieces: &[(i64, i64, State)]) {
        let worker = self.w(tid);
        chain(&mut self.graph, worker, pieces);
    }

    fn link(&mut self, link: fn(Endpoint, Endpoint) -> Link, from: (i64, i64), to: (i64, i64)) {
        let link = link(
            Endpoint::new(self.w(from.0), from.1),
            Endpoint::new(self.w(to.0), to.1),
        );
        self.graph.add_link(link).unwrap();
    }

    fn critical_path(&self, tid: i64) -> CriticalPath {
        CriticalPath::of(&self.graph, self.w(tid)).unwrap()
    }
}

const K_CLIENT: i64 = -1;
const K_SERVER: i64 = -2;

/// testNetworkExchange (simple_network_server + simple_network_client). Execution graph
/// `201: 7 -R-> 10 -P-> 15 -R-> 75`, `200: 10 -R-> 13 -R-> 15 -N-> 70 -P-> 75 -R-> 90 -R->
/// 95`, `K(client): 60 -R-> 65`, `202: 7 -B-> 90 -P-> 95`, `101: 5 -R-> 40 -P-> 55`, `100: 5
/// -N-> 35 -P-> 40 -R-> 45 -R-> 55`, `K(server): 30 -R-> 33`; `(200,90) => (202,90) D`,
/// `(200,13) => (100,35) NETWORK`, `(100,45) => (200,70) NETWORK`. Critical path of 200:
/// `200: 10 -R-> 13 -R-> 15 | 70 -P-> 75 -R-> 90 -R-> 95`, `100: 35 -P-> 40 -R-> 45`,
/// `(200,15) => (100,35) NETWORK`, `(100,45) => (200,70) NETWORK`: the first message is
/// reached by the shortcut (sent at 13, before the window's start at 15) and counts from 15.
#[test]
fn network_exchange() {
    let mut h = Hosts::new(&[200, 201, 202, 100, 101, K_CLIENT, K_SERVER]);
    h.chain(201, &[(7, 10, R), (10, 15, P), (15, 75, R)]);
    h.chain(
        200,
        &[
            (10, 13, R),
            (13, 15, R),
            (15, 70, N),
            (70, 75, P),
            (75, 90, R),
            (90, 95, R),
        ],
    );
    h.chain(K_CLIENT, &[(60, 65, R)]);
    h.chain(202, &[(7, 90, B), (90, 95, P)]);
    h.chain(101, &[(5, 40, R), (40, 55, P)]);
    h.chain(100, &[(5, 35, N), (35, 40, P), (40, 45, R), (45, 55, R)]);
    h.chain(K_SERVER, &[(30, 33, R)]);
    h.link(Link::wakeup, (200, 90), (202, 90));
    h.link(Link::message, (200, 13), (100, 35));
    h.link(Link::message, (100, 45), (200, 70));
    let (client, server) = (h.w(200), h.w(100));
    assert_path(
        &h.critical_path(200),
        &[
            on(client, R, 10, 13),
            on(client, R, 13, 15),
            between(N, 15, 35),
            on(server, P, 35, 40),
            on(server, R, 40, 45),
            between(N, 45, 70),
            on(client, P, 70, 75),
            on(client, R, 75, 90),
            on(client, R, 90, 95),
        ],
    );
}

/// testNetworkExchangeWithWifi (network_exchange_eth + network_exchange_wifi). Execution
/// graph `201: 10 -P-> 15 -R-> 60`, `200: 10 -R-> 13 -R-> 15 -N["irq/30-handler"]-> 70 -P->
/// 75`, `50: 55 -P-> 60 -R-> 65 -R-> 75`, `101: 5 -R-> 40 -P-> 55`, `100: 5 -N-> 35 -P-> 40
/// -R-> 45 -R-> 55`, `K(eth): 30 -R-> 33`; `(200,13) => (100,35) NETWORK`, `(100,45) =>
/// (200,70) NETWORK`. Critical path of 200: `200: 10 -R-> 13 -R-> 15 | 70 -P-> 75`, `100: 35
/// -P-> 40 -R-> 45`, the two messages.
#[test]
fn network_exchange_with_wifi() {
    let mut h = Hosts::new(&[200, 201, 50, 100, 101, K_SERVER]);
    h.chain(201, &[(10, 15, P), (15, 60, R)]);
    h.chain(200, &[(10, 13, R), (13, 15, R)]);
    let irq_thread = h.w(50);
    let received = virtflow_graph::Segment::new(15, 70, N).by(irq_thread);
    h.graph.append(h.w(200), received).unwrap();
    h.chain(200, &[(70, 75, P)]);
    h.chain(50, &[(55, 60, P), (60, 65, R), (65, 75, R)]);
    h.chain(101, &[(5, 40, R), (40, 55, P)]);
    h.chain(100, &[(5, 35, N), (35, 40, P), (40, 45, R), (45, 55, R)]);
    h.chain(K_SERVER, &[(30, 33, R)]);
    h.link(Link::message, (200, 13), (100, 35));
    h.link(Link::message, (100, 45), (200, 70));
    let (client, server) = (h.w(200), h.w(100));
    assert_path(
        &h.critical_path(200),
        &[
            on(client, R, 10, 13),
            on(client, R, 13, 15),
            between(N, 15, 35),
            on(server, P, 35, 40),
            on(server, R, 40, 45),
            between(N, 45, 70),
            on(client, P, 70, 75),
        ],
    );
}

/// testNetworkExchangeOneTrace (network_exchange_wifi alone): the same client without the
/// server, so no link. The critical path of 200 is its chain, the unexplained network wait
/// kept with its qualifier (the interrupt thread).
#[test]
fn network_exchange_one_trace() {
    let mut h = Hosts::new(&[200, 201, 50]);
    h.chain(201, &[(10, 15, P), (15, 60, R)]);
    h.chain(200, &[(10, 13, R), (13, 15, R)]);
    let irq_thread = h.w(50);
    let received = virtflow_graph::Segment::new(15, 70, N).by(irq_thread);
    h.graph.append(h.w(200), received).unwrap();
    h.chain(200, &[(70, 75, P)]);
    h.chain(50, &[(55, 60, P), (60, 65, R), (65, 75, R)]);
    let client = h.w(200);
    assert_path(
        &h.critical_path(200),
        &[
            on(client, R, 10, 13),
            on(client, R, 13, 15),
            by(on(client, N, 15, 70), irq_thread),
            on(client, P, 70, 75),
        ],
    );
}

/// testNetworkExchangeOneTraceSoftirq (simple_network_client alone): `201: 7 -R-> 10 -P-> 15
/// -R-> 75`, `200: 10 -R-> 13 -R-> 15 -N-> 70 -P-> 75 -R-> 90 -R-> 95`, `K: 60 -R-> 65`,
/// `202: 7 -B-> 90 -P-> 95`, `(200,90) => (202,90) D`.
/// - Critical path of 200: its chain, the network wait unexplained.
/// - Critical path of 202: `202: 7 | 90 -P-> 95`, `200: 7 -U-> 10 -R-> 13 -R-> 15 -N-> 70
///   -P-> 75 -R-> 90`, `(202,7) => (200,7) D`, `(200,90) => (202,90) D`: 202's block is
///   200's path back to its start, the nested network wait kept, the time before 200's first
///   event unknown.
#[test]
fn network_exchange_one_trace_softirq() {
    let mut h = Hosts::new(&[200, 201, 202, K_CLIENT]);
    h.chain(201, &[(7, 10, R), (10, 15, P), (15, 75, R)]);
    h.chain(
        200,
        &[
            (10, 13, R),
            (13, 15, R),
            (15, 70, N),
            (70, 75, P),
            (75, 90, R),
            (90, 95, R),
        ],
    );
    h.chain(K_CLIENT, &[(60, 65, R)]);
    h.chain(202, &[(7, 90, B), (90, 95, P)]);
    h.link(Link::wakeup, (200, 90), (202, 90));
    let (client, dependent) = (h.w(200), h.w(202));
    assert_path(
        &h.critical_path(200),
        &[
            on(client, R, 10, 13),
            on(client, R, 13, 15),
            on(client, N, 15, 70),
            on(client, P, 70, 75),
            on(client, R, 75, 90),
            on(client, R, 90, 95),
        ],
    );
    assert_path(
        &h.critical_path(202),
        &[
            on(client, U, 7, 10),
            on(client, R, 10, 13),
            on(client, R, 13, 15),
            on(client, N, 15, 70),
            on(client, P, 70, 75),
            on(client, R, 75, 90),
            on(dependent, P, 90, 95),
        ],
    );
}

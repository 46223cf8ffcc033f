//! Generated graphs whose critical path is known in advance, for tests and benchmarks of any
//! size.

use crate::{Endpoint, Graph, Link, PathSegment, Segment, State, WorkerId};

/// A relay: a token passes round `relay_workers` workers, each running while it holds it and
/// blocked until it comes back. Every hop hands the token over with a wake-up, every fourth
/// with a message in flight; every fifth holder is first preempted by a helper worker, and
/// some of those get a decoy wake-up at the end of their preemption (a link the walk must
/// pass over, since the holder's own chain explains that instant).
///
/// The first worker starts and ends the relay, so its critical path over its life is every
/// hop in turn: the holder's pieces, then the message in flight if any — `expected`.
pub struct Relay {
    pub graph: Graph,
    /// The worker holding the token first and last.
    pub first: WorkerId,
    pub expected: Vec<PathSegment>,
}

const RUN: i64 = 70;
const PREEMPTED: i64 = 20;
const IN_FLIGHT: i64 = 30;

impl Relay {
    /// A relay of at least `hops` hops (rounded up so that the first worker holds the last
    /// one) between `relay_workers` workers (at least 2), with `helpers` helper workers (at
    /// least 1) doing the preempting.
    pub fn new(hops: usize, relay_workers: usize, helpers: usize) -> Relay {
        assert!(relay_workers >= 2 && helpers >= 1);
        let hops = hops.max(1).div_ceil(relay_workers) * relay_workers + 1;
        let mut graph = Graph::new();
        let relay: Vec<WorkerId> = (0..relay_workers).map(|_| graph.add_worker()).collect();
        let helpers: Vec<WorkerId> = (0..helpers).map(|_| graph.add_worker()).collect();
        // Where each relay worker's chain stands: it is blocked from there until woken.
        let mut free_since = vec![0i64; relay_workers];
        let mut expected = Vec::new();
        let mut piece = |worker: Option<WorkerId>, state, start, end, by| {
            expected.push(PathSegment {
                worker,
                state,
                start,
                end,
                by,
            })
        };
        let mut now = 0i64;
        for hop in 0..hops {
            let holder = relay[hop % relay_workers];
            let mut running_from = now;
            if hop % 5 == 3 {
                let helper = helpers[hop / 5 % helpers.len()];
                running_from = now + PREEMPTED;
                Self::append(
                    &mut graph,
                    helper,
                    Segment::new(now, running_from, State::Running),
                );
                let preempted = Segment::new(now, running_from, State::Preempted).by(helper);
                Self::append(&mut graph, holder, preempted);
                piece(
                    Some(holder),
                    State::Preempted,
                    now,
                    running_from,
                    Some(helper),
                );
                if hop % 3 == 0 {
                    let decoy = Link::wakeup(
                        Endpoint::new(helper, running_from),
                        Endpoint::new(holder, running_from),
                    );
                    graph.add_link(decoy).expect("decoy link");
                }
            }
            let handover = now + RUN;
            Self::append(
                &mut graph,
                holder,
                Segment::new(running_from, handover, State::Running),
            );
            piece(Some(holder), State::Running, running_from, handover, None);
            free_since[hop % relay_workers] = handover;
            if hop + 1 == hops {
                break;
            }
            let next_index = (hop + 1) % relay_workers;
            let next = relay[next_index];
            let by_message = hop % 4 == 1;
            let arrival = if by_message {
                handover + IN_FLIGHT
            } else {
                handover
            };
            let (link, waiting) = if by_message {
                let link = Link::message(
                    Endpoint::new(holder, handover),
                    Endpoint::new(next, arrival),
                );
                piece(None, State::Network, handover, arrival, None);
                (link, State::Network)
            } else {
                let link = Link::wakeup(
                    Endpoint::new(holder, handover),
                    Endpoint::new(next, arrival),
                );
                (link, State::Blocked)
            };
            let waited = Segment::new(free_since[next_index], arrival, waiting);
            Self::append(&mut graph, next, waited);
            graph.add_link(link).expect("hand-over link");
            now = arrival;
        }
        Relay {
            graph,
            first: relay[0],
            expected,
        }
    }

    fn append(graph: &mut Graph, worker: WorkerId, segment: Segment) {
        graph
            .append(worker, segment)
            .expect("relay chains are in time order");
    }
}

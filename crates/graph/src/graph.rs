//! The execution graph: a chain of segments per worker and the links between workers.

use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::link::IncomingLink;
use crate::{GraphError, Link, Segment, StateTotals, WorkerId};

/// Every worker's timeline as a chain of [`Segment`]s, and the [`Link`]s between workers.
///
/// Built by appending in time order (each append is O(1) amortised: a push on the worker's
/// vector); read by binary searches over those vectors. Memory is two flat vectors per
/// worker: 24 bytes per segment and 24 per link, nothing per instant.
///
/// Queries taking a [`WorkerId`] panic if the worker was never added, as an index out of
/// bounds would: a worker id comes from [`Graph::add_worker`], so a bad one is a bug.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "GraphFields")]
pub struct Graph {
    workers: Vec<Chain>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// A new worker with an empty chain. Ids are handed out in order from 0.
    pub fn add_worker(&mut self) -> WorkerId {
        let id = u32::try_from(self.workers.len())
            .ok()
            .filter(|&id| id != WorkerId::NONE_RAW)
            .expect("no more than u32::MAX - 1 workers");
        self.workers.push(Chain::default());
        WorkerId(id)
    }

    /// Moves every worker of `other` into this graph, after this graph's own; returns what
    /// was added to `other`'s worker ids (its worker `w` is now `w + offset`). How the graphs
    /// of several hosts, built apart, become one before the links between hosts are added.
    pub fn absorb(&mut self, other: Graph) -> u32 {
        let offset = self.workers.len() as u32;
        self.workers
            .extend(other.workers.into_iter().map(|c| c.shifted(offset)));
        offset
    }

    /// Maps every time of the graph (segments, links) by `f`, which must never decrease: a
    /// graph built on one clock put on another (a host's graph onto its experiment's
    /// reference clock, once the clocks are known). A segment `f` shrinks to nothing (two
    /// instants a nanosecond apart mapped to one) is dropped.
    pub fn retime(&mut self, f: impl Fn(i64) -> i64) {
        for chain in &mut self.workers {
            chain.retime(&f);
        }
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    pub fn workers(&self) -> impl Iterator<Item = WorkerId> {
        (0..self.workers.len() as u32).map(WorkerId)
    }

    /// Appends `segment` to `worker`'s chain. It may start after the last segment's end (the
    /// hole is time nothing is known about) but not before. A segment of length 0 is
    /// accepted and dropped.
    pub fn append(&mut self, worker: WorkerId, segment: Segment) -> Result<(), GraphError> {
        if let Some(by) = segment.by_worker() {
            self.check_worker(by)?;
        }
        self.workers
            .get_mut(worker.index())
            .ok_or(GraphError::UnknownWorker(worker))?
            .push_segment(worker, segment)
    }

    /// Adds a link. Its endpoints need not be segment boundaries, and links may be added in
    /// any order (in target-time order they cost a push; otherwise an insertion).
    pub fn add_link(&mut self, link: Link) -> Result<(), GraphError> {
        self.check_worker(link.source.worker)?;
        self.check_worker(link.target.worker)?;
        if link.source == link.target {
            return Err(GraphError::LinkToItself(link.source));
        }
        if link.target.time < link.source.time {
            return Err(GraphError::LinkBackwards {
                source: link.source,
                target: link.target,
            });
        }
        self.workers[link.target.worker.index()].insert_link(IncomingLink::from_link(&link));
        Ok(())
    }

    /// `worker`'s segments in time order.
    pub fn segments(&self, worker: WorkerId) -> &[Segment] {
        self.chain(worker).segments()
    }

    /// The segment of `worker` covering `time` (`start <= time < end`), if any.
    pub fn segment_at(&self, worker: WorkerId, time: i64) -> Option<&Segment> {
        let chain = self.chain(worker);
        chain.index_covering(time).map(|i| &chain.segments()[i])
    }

    /// The segments of `worker` overlapping `[from, to)`, in time order (the first and last
    /// may extend beyond the window).
    pub fn segments_within(&self, worker: WorkerId, from: i64, to: i64) -> &[Segment] {
        let chain = self.chain(worker);
        &chain.segments()[chain.overlapping(from, to)]
    }

    /// From the start of `worker`'s first segment to the end of its last, if it has any.
    pub fn life(&self, worker: WorkerId) -> Option<(i64, i64)> {
        let segments = self.segments(worker);
        Some((segments.first()?.start(), segments.last()?.end()))
    }

    /// The links arriving at `worker`, by target time.
    pub fn links_into(&self, worker: WorkerId) -> impl Iterator<Item = Link> + '_ {
        Self::as_links(worker, self.chain(worker).links_in())
    }

    /// The links arriving at `worker` exactly at `time`, in the order they were added.
    pub fn links_into_at(&self, worker: WorkerId, time: i64) -> impl Iterator<Item = Link> + '_ {
        Self::as_links(worker, self.chain(worker).links_arriving_at(time))
    }

    /// The links arriving at `worker` within `[from, to)`, by target time.
    pub fn links_into_within(
        &self,
        worker: WorkerId,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = Link> + '_ {
        Self::as_links(worker, self.chain(worker).links_arriving(from, to))
    }

    /// Every link of the graph, worker by worker of the target.
    pub fn links(&self) -> impl Iterator<Item = Link> + '_ {
        self.workers().flat_map(|worker| self.links_into(worker))
    }

    /// The time `worker` spent in each state within `[from, to)`, segments cut at the window;
    /// holes count for nothing.
    pub fn time_by_state(&self, worker: WorkerId, from: i64, to: i64) -> StateTotals {
        let mut totals = StateTotals::default();
        for segment in self.segments_within(worker, from, to) {
            let duration = segment.end().min(to) - segment.start().max(from);
            totals.add(segment.state(), duration);
        }
        totals
    }

    pub fn segment_count(&self) -> usize {
        self.workers.iter().map(|c| c.segments().len()).sum()
    }

    pub fn link_count(&self) -> usize {
        self.workers.iter().map(|c| c.links_in().len()).sum()
    }

    /// Bytes the graph holds, counted from its vectors' capacities (what the allocator gave,
    /// not what is used): the figure to divide by [`Graph::segment_count`].
    pub fn heap_bytes(&self) -> usize {
        self.workers.capacity() * std::mem::size_of::<Chain>()
            + self.workers.iter().map(Chain::heap_bytes).sum::<usize>()
    }

    /// Gives back the vectors' spare capacity, once building is over.
    pub fn shrink_to_fit(&mut self) {
        self.workers.shrink_to_fit();
        self.workers.iter_mut().for_each(Chain::shrink_to_fit);
    }

    pub(crate) fn chain(&self, worker: WorkerId) -> &Chain {
        self.workers
            .get(worker.index())
            .unwrap_or_else(|| panic!("no worker {worker} in the graph"))
    }

    pub(crate) fn check_worker(&self, worker: WorkerId) -> Result<(), GraphError> {
        if worker.index() < self.workers.len() {
            Ok(())
        } else {
            Err(GraphError::UnknownWorker(worker))
        }
    }

    fn as_links(worker: WorkerId, links: &[IncomingLink]) -> impl Iterator<Item = Link> + '_ {
        links.iter().map(move |l| l.to_link(worker))
    }
}

/// What a serialised graph holds, rebuilt through [`Graph::append`] and [`Graph::add_link`]
/// when read back: the searches and the critical path's termination rely on the chains'
/// order, so a graph from outside is checked as if it were being built.
#[derive(Deserialize)]
struct GraphFields {
    workers: Vec<Chain>,
}

impl TryFrom<GraphFields> for Graph {
    type Error = GraphError;

    fn try_from(fields: GraphFields) -> Result<Graph, GraphError> {
        let mut graph = Graph::new();
        for _ in &fields.workers {
            graph.add_worker();
        }
        for (worker, chain) in graph.workers().zip(&fields.workers) {
            for &segment in chain.segments() {
                graph.append(worker, segment)?;
            }
        }
        for (worker, chain) in graph.workers().zip(&fields.workers) {
            for incoming in chain.links_in() {
                graph.add_link(incoming.to_link(worker))?;
            }
        }
        Ok(graph)
    }
}

#[cfg(test)]
mod absorb_tests {
    use crate::{Endpoint, Graph, Link, Segment, State, WorkerId};

    #[test]
    fn an_absorbed_graph_keeps_its_segments_and_links_renumbered() {
        let mut a = Graph::new();
        let a0 = a.add_worker();
        a.append(a0, Segment::new(0, 10, State::Running)).unwrap();
        let mut b = Graph::new();
        let (b0, b1) = (b.add_worker(), b.add_worker());
        b.append(b0, Segment::new(0, 5, State::Preempted).by(b1))
            .unwrap();
        b.add_link(Link::wakeup(Endpoint::new(b1, 3), Endpoint::new(b0, 4)))
            .unwrap();
        let offset = a.absorb(b);
        assert_eq!(offset, 1);
        assert_eq!(a.worker_count(), 3);
        let moved = WorkerId(b0.0 + offset);
        assert_eq!(
            a.segments(moved)[0].by_worker(),
            Some(WorkerId(b1.0 + offset))
        );
        let link = a.links_into(moved).next().unwrap();
        assert_eq!(link.source.worker, WorkerId(b1.0 + offset));
        assert_eq!(a.segments(a0).len(), 1);
    }

    #[test]
    fn a_retimed_graph_keeps_its_order_and_drops_what_shrinks_to_nothing() {
        let mut g = Graph::new();
        let (w0, w1) = (g.add_worker(), g.add_worker());
        g.append(w0, Segment::new(0, 10, State::Running)).unwrap();
        g.append(w0, Segment::new(10, 11, State::Preempted))
            .unwrap();
        g.append(w0, Segment::new(11, 40, State::Blocked)).unwrap();
        g.append(w1, Segment::new(5, 30, State::Running)).unwrap();
        g.add_link(Link::wakeup(Endpoint::new(w1, 30), Endpoint::new(w0, 40)))
            .unwrap();
        // Half speed, 100 later: [10, 11) becomes [105, 105) and goes.
        g.retime(|t| 100 + t / 2);
        let times: Vec<(i64, i64)> = g
            .segments(w0)
            .iter()
            .map(|s| (s.start(), s.end()))
            .collect();
        assert_eq!(times, [(100, 105), (105, 120)]);
        assert_eq!(g.segments(w0)[1].state(), State::Blocked);
        assert_eq!(
            (g.segments(w1)[0].start(), g.segments(w1)[0].end()),
            (102, 115)
        );
        let link = g.links_into(w0).next().unwrap();
        assert_eq!((link.source.time, link.target.time), (115, 120));
    }
}

//! The execution graph of a host, built in the one pass from the W2A machine's state changes
//! (Giraldeau and Dagenais's model, as Trace Compass's OS execution graph defines it): a chain
//! of segments per thread — running, preempted (by whom), and each wait by the cause its
//! wake-up showed — and the links between threads: who woke whom, who forked whom, which
//! message from another host a wait ended with.
//!
//! A wait's cause comes from where its wake-up ran, the innermost context of the waker's CPU:
//! a timer (hrtimer, local timer) → timer; an IPI handler → ipi; a device's interrupt →
//! interrupt; a softirq by its vector (timer, hrtimer → timer; net rx/tx → network, with the
//! message that arrived when the experiment paired it; block, irq poll → disk; others →
//! interrupt); a thread (task context) → blocked, with a link from that thread, which the
//! critical path follows. A vCPU woken by a thread keeps the link (to its vhost thread, its I/O
//! thread, a vCPU that sent it an IPI); woken from interrupt context, its wait takes the cause
//! the W2A machine decided (the injected vector's), so a timer or an IPI reads as such.
//!
//! Where this differs from Trace Compass on purpose: a packet received in a softirq is not
//! given to a per-CPU kernel pseudo-thread; the wait it ends is linked to the message's sender
//! directly, so the softirq's handling time counts as the message's time in flight. The
//! message is the one the softirq received last, and only until the softirq ends: a packet
//! nobody paired (from a host outside the experiment) received after it, or the end of the
//! softirq, leaves the next wake-up with none, and one message ends one wait.
//!
//! Consecutive segments of one state are joined as they come, so a vCPU's thousands of exits
//! and entries make one running segment.

use rustc_hash::FxHashMap;
use virtflow_graph::{Endpoint, Graph, Link, Segment, State, WorkerId};
use virtflow_model::{GraphWorker, WaitCause};
use virtflow_trace::Timestamp;

use crate::layout::{IrqKind, PacketDir, TypedEvent};

/// What ends the wait of the thread being woken, decided where the wake-up ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wake {
    pub target: u32,
    pub state: State,
    /// The thread that woke it, in task context.
    pub waker: Option<u32>,
    /// The message from another host it ended with: (host, thread, time sent).
    pub message: Option<(usize, u32, Timestamp)>,
}

/// A link to a worker of another host's graph, added when the hosts' graphs are joined.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RemoteLink {
    pub from: (usize, u32, Timestamp),
    pub to: (u32, Timestamp),
}

#[derive(Default)]
pub(crate) struct GraphBuilder {
    graph: Graph,
    /// By worker: its thread id.
    tids: Vec<u32>,
    by_tid: FxHashMap<u32, WorkerId>,
    /// By worker: its last segment, held back to be extended by the next one of the same
    /// state.
    open: Vec<Option<Segment>>,
    pub pending: Option<Wake>,
    /// By CPU: the message from another host its softirq handles: (host, thread, time sent).
    received: Vec<Option<(usize, u32, Timestamp)>>,
    pub remote: Vec<RemoteLink>,
    /// Segments and links the graph refused (out of order after a loss): counted, not fatal.
    pub refused: u64,
}

/// A softirq vector's meaning (Linux's `enum softirq_action`).
fn softirq_state(vec: Option<u8>) -> State {
    match vec {
        Some(1 | 8) => State::Timer,
        Some(2 | 3) => State::Network,
        Some(4 | 5) => State::Disk,
        _ => State::Interrupt,
    }
}

impl GraphBuilder {
    pub fn worker(&mut self, tid: u32) -> WorkerId {
        if let Some(&w) = self.by_tid.get(&tid) {
            return w;
        }
        let w = self.graph.add_worker();
        self.tids.push(tid);
        self.open.push(None);
        self.by_tid.insert(tid, w);
        w
    }

    /// A span of `tid`'s chain.
    pub fn segment(
        &mut self,
        tid: u32,
        from: Timestamp,
        to: Timestamp,
        state: State,
        by: Option<u32>,
    ) {
        if to <= from || tid == 0 {
            return;
        }
        let w = self.worker(tid);
        let by = by.filter(|b| *b != 0).map(|b| self.worker(b));
        let mut seg = Segment::new(from, to, state);
        if let Some(b) = by {
            seg = seg.by(b);
        }
        let slot = &mut self.open[w.index()];
        match slot {
            Some(last)
                if last.end() == from
                    && last.state() == state
                    && last.by_worker() == seg.by_worker() =>
            {
                let mut joined = Segment::new(last.start(), to, state);
                if let Some(b) = last.by_worker() {
                    joined = joined.by(b);
                }
                *last = joined;
            }
            _ => {
                if let Some(done) = slot.replace(seg) {
                    if self.graph.append(w, done).is_err() {
                        self.refused += 1;
                    }
                }
            }
        }
    }

    /// The wait of `tid` over `[from, to)`, ended by the pending wake-up when it is `tid`'s.
    pub fn wait(&mut self, tid: u32, from: Timestamp, to: Timestamp) {
        let wake = self.pending.filter(|w| w.target == tid);
        let state = wake.map_or(State::Blocked, |w| w.state);
        self.segment(tid, from, to, state, None);
        let Some(wake) = wake else { return };
        self.pending = None;
        if let Some(waker) = wake.waker.filter(|w| *w != 0 && *w != tid) {
            let link = Link::wakeup(
                Endpoint::new(self.worker(waker), to),
                Endpoint::new(self.worker(tid), to),
            );
            if self.graph.add_link(link).is_err() {
                self.refused += 1;
            }
        }
        if let Some(from) = wake.message {
            self.remote.push(RemoteLink {
                from,
                to: (tid, to),
            });
        }
    }

    /// `parent` created `child` at `ts`.
    pub fn fork(&mut self, parent: u32, child: u32, ts: Timestamp) {
        if parent == 0 || child == 0 || parent == child {
            return;
        }
        let link = Link::fork(
            Endpoint::new(self.worker(parent), ts),
            Endpoint::new(self.worker(child), ts),
        );
        if self.graph.add_link(link).is_err() {
            self.refused += 1;
        }
    }

    /// An event of `cpu` that ends the message its softirq handles: any packet received
    /// (whose sender [`GraphBuilder::received`] names next when the experiment pairs it), the
    /// softirq's end. Without this, a packet from outside the experiment, or a later softirq,
    /// would end its wait with the last paired message the CPU saw, sent long before by a
    /// thread that had nothing to do with it.
    pub fn observe(&mut self, cpu: u32, ev: &TypedEvent) {
        let ends = matches!(
            ev,
            TypedEvent::Packet {
                dir: PacketDir::Receive,
                primary: true,
                ..
            } | TypedEvent::IrqExit(IrqKind::Softirq(_))
        );
        if ends {
            if let Some(slot) = self.received.get_mut(cpu as usize) {
                *slot = None;
            }
        }
    }

    /// A message from another host, sent by `thread` of `host` at `sent`, was received on
    /// `cpu`: a wait its softirq ends is that message's.
    pub fn received(&mut self, cpu: u32, host: usize, thread: u32, sent: Timestamp) {
        let c = cpu as usize;
        if c > 1 << 16 {
            return;
        }
        if self.received.len() <= c {
            self.received.resize(c + 1, None);
        }
        self.received[c] = Some((host, thread, sent));
    }

    /// Decides how the wait of `target` woken at `ts` on `cpu` ends: by the CPU's innermost
    /// interrupt context, else by the waking thread; a vCPU woken from an interrupt takes the
    /// W2A machine's cause.
    pub fn wake(
        &mut self,
        target: u32,
        cpu: u32,
        innermost: Option<IrqKind>,
        waker: Option<u32>,
        vcpu_cause: Option<Option<WaitCause>>,
    ) {
        let (mut state, mut waker_link, mut message) = match innermost {
            Some(IrqKind::Timer) => (State::Timer, None, None),
            Some(IrqKind::Ipi) => (State::Ipi, None, None),
            Some(IrqKind::Hardirq) => (State::Interrupt, None, None),
            Some(IrqKind::Softirq(v)) => {
                let s = softirq_state(v);
                let m = (s == State::Network)
                    .then(|| self.received.get_mut(cpu as usize).and_then(Option::take))
                    .flatten();
                (s, None, m)
            }
            None => (State::Blocked, waker, None),
        };
        if waker_link.is_none() && message.is_none() {
            if let Some(Some(cause)) = vcpu_cause {
                state = match cause {
                    WaitCause::Timer => State::Timer,
                    WaitCause::Disk => State::Disk,
                    WaitCause::Network => State::Network,
                    WaitCause::Task => State::Ipi,
                    WaitCause::Other => state,
                };
            }
        }
        if state == State::Blocked && waker_link.is_none() {
            // Woken by the idle task with no interrupt seen: nothing explains it.
            waker_link = None;
            message = None;
        }
        self.pending = Some(Wake {
            target,
            state,
            waker: waker_link,
            message,
        });
    }

    /// The graph, every held segment appended, and its workers' thread ids.
    pub fn finish(mut self) -> (Graph, Vec<u32>, FxHashMap<u32, WorkerId>, Vec<RemoteLink>) {
        for (i, slot) in self.open.iter_mut().enumerate() {
            if let Some(seg) = slot.take() {
                if self.graph.append(WorkerId(i as u32), seg).is_err() {
                    self.refused += 1;
                }
            }
        }
        self.graph.shrink_to_fit();
        (self.graph, self.tids, self.by_tid, self.remote)
    }
}

/// The workers of a host's graph as the model names them.
pub(crate) fn workers(host: &str, tids: &[u32], comm: impl Fn(u32) -> String) -> Vec<GraphWorker> {
    tids.iter()
        .map(|&tid| GraphWorker {
            host: host.to_string(),
            tid,
            comm: comm(tid),
            guest: None,
        })
        .collect()
}

/// The hosts' graphs as one, with the links of the messages between hosts.
pub(crate) fn join(
    graphs: Vec<crate::host::HostGraph>,
    notes: &mut Vec<String>,
) -> virtflow_model::ExecutionGraph {
    let mut graph = Graph::new();
    let mut workers = Vec::new();
    let mut offsets = Vec::with_capacity(graphs.len());
    let mut maps = Vec::with_capacity(graphs.len());
    let mut remote = Vec::new();
    let mut refused = 0;
    for (h, g) in graphs.into_iter().enumerate() {
        offsets.push(graph.absorb(g.graph));
        workers.extend(g.workers);
        maps.push(g.by_tid);
        remote.extend(g.remote.into_iter().map(|r| (h, r)));
        refused += g.refused;
    }
    let worker = |host: usize, tid: u32| {
        maps.get(host)
            .and_then(|m| m.get(&tid))
            .map(|w| WorkerId(w.0 + offsets[host]))
    };
    for (h, r) in remote {
        let (Some(from), Some(to)) = (worker(r.from.0, r.from.1), worker(h, r.to.0)) else {
            continue;
        };
        let link = Link::message(Endpoint::new(from, r.from.2), Endpoint::new(to, r.to.1));
        if graph.add_link(link).is_err() {
            refused += 1;
        }
    }
    if refused > 0 {
        notes.push(format!(
            "{refused} segments or links of the execution graph were out of time order (after \
             lost events, or a message received before it was sent on this time line) and were \
             left out"
        ));
    }
    virtflow_model::ExecutionGraph { graph, workers }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_RX: Option<IrqKind> = Some(IrqKind::Softirq(Some(3)));

    fn packet_in() -> TypedEvent<'static> {
        TypedEvent::Packet {
            dir: PacketDir::Receive,
            primary: true,
            key: None,
        }
    }

    /// The message the wake-up of thread 7 on CPU 1 in a NET_RX softirq takes.
    fn woken(g: &mut GraphBuilder) -> Option<(usize, u32, Timestamp)> {
        g.wake(7, 1, NET_RX, Some(0), None);
        let wake = g.pending.take().expect("a wake-up");
        assert_eq!(wake.state, State::Network);
        wake.message
    }

    #[test]
    fn a_paired_packet_ends_the_wait_its_softirq_ends() {
        let mut g = GraphBuilder::default();
        g.observe(1, &packet_in());
        g.received(1, 1, 42, 1_000);
        assert_eq!(woken(&mut g), Some((1, 42, 1_000)));
        // One message, one wait.
        assert_eq!(woken(&mut g), None);
    }

    #[test]
    fn a_packet_nobody_paired_leaves_its_wait_unexplained() {
        let mut g = GraphBuilder::default();
        g.observe(1, &packet_in());
        g.received(1, 1, 42, 1_000);
        // A packet from a host outside the experiment, in the same softirq or a later one.
        g.observe(1, &packet_in());
        assert_eq!(woken(&mut g), None);
    }

    #[test]
    fn a_message_ends_with_its_softirq() {
        let mut g = GraphBuilder::default();
        g.observe(1, &packet_in());
        g.received(1, 1, 42, 1_000);
        g.observe(1, &TypedEvent::IrqExit(IrqKind::Softirq(Some(3))));
        assert_eq!(woken(&mut g), None);
        // Another CPU's softirq ends nothing here.
        g.observe(2, &packet_in());
        g.received(2, 1, 43, 2_000);
        g.observe(1, &TypedEvent::IrqExit(IrqKind::Softirq(Some(3))));
        g.wake(7, 2, NET_RX, Some(0), None);
        assert_eq!(g.pending.take().unwrap().message, Some((1, 43, 2_000)));
    }
}

//! The critical path of each request of the `requests` scenario, as the bounded critical-path
//! algorithm defines it (`virtflow_graph`'s `critical_path` module) over the execution graph a
//! host-trace analysis builds (`virtflow_analysis`'s graph module) — but derived from what the
//! simulator knows rather than from the trace: when each thread ran, was preempted or waited,
//! and what truly ended each wait (a thread in task context, an interrupt handler, a packet
//! that another host sent). Times are on the reference clock: the simulation's, which is the
//! first host's trace clock (`hosts[].clock` maps it to each host's).
//!
//! The definitions:
//!
//! - A thread's timeline, from the scheduler's events: running from its switch-in to its
//!   switch-out; preempted from a switch-out while runnable, or from the `sched_waking` that
//!   ends a wait, to its switch-in; waiting from a switch-out asleep to its `sched_waking`.
//!   Before its first event (in its own context, or naming it) nothing is known.
//! - What a wait is, from where its waking ran: a thread in task context → blocked, explained
//!   by that thread at that instant; the idle task outside any handler → blocked, unexplained;
//!   a timer → timer; a device's hard interrupt → interrupt; a softirq by its vector (TIMER,
//!   HRTIMER → timer; NET_TX, NET_RX → network; BLOCK, IRQ_POLL → disk; others → interrupt).
//!   A NET_RX softirq that handles a packet sent from another host ends a network wait
//!   explained by the sending thread at the instant the packet left it (its `net_dev_queue`),
//!   when the format lets a trace pair the two ends (LTTng's network events carry the TCP
//!   header; ftrace's carry none, and the wait stays network on the receiving thread).
//! - The path of thread T over [a, b): T's spans cut at the window, in order, each a piece,
//!   never merged; a hole is unknown time on T (the simulator loses no event, so a timeline
//!   has a hole only before its thread's first event). A blocked or network wait [w0, w1) that
//!   something explains is replaced by the explaining thread's path over [max(w0, a), t) — t
//!   the waking, or the instant the packet left — followed, for a packet, by its time in
//!   flight [t, w1) as network on no thread. The analysis ends the message where the wait it
//!   ends ends, so the receiving host's interrupt and softirq before the waking count as time
//!   in flight; this follows it.
//! - An explanation, the path of thread U over [a', t), is the algorithm's walk back from t
//!   over U's past, which stops at the latest wait of U in (a', t] that a packet sent before
//!   a' ended: that packet was in flight over [a', that wait's end), and U's past before it is
//!   not on the path (Trace Compass's bounded algorithm takes such a link at once). So a
//!   waker's own past within the window is on the path, whatever the waiting thread truly
//!   waited for meanwhile: the waker is who ended the wait.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Event, IrqContext, Kind, Waker};
use crate::host::RequestRecord;

/// One request and its critical path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestTruth {
    /// `disk`, `network`, `ipi` or `nested` (see `host::requests`).
    pub kind: String,
    /// The vCPU thread that issued it and waited: its host, VM, vCPU and thread id.
    pub host: String,
    pub vm: String,
    pub vcpu: u32,
    pub tid: u32,
    /// From the exit that issued it to the entry where the guest that made it runs again.
    pub start: i64,
    pub end: i64,
    /// Contiguous pieces covering `[start, end)`.
    pub path: Vec<PathPiece>,
}

/// What the path was waiting for over `[start, end)`: thread `tid` of `host` in `state`, or a
/// message in flight between hosts (no host, no thread).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathPiece {
    pub host: Option<String>,
    pub tid: Option<u32>,
    /// `running`, `preempted`, `blocked`, `timer`, `disk`, `network`, `interrupt`, `unknown`
    /// (the names `virtflow critical-path --json` gives).
    pub state: String,
    pub start: i64,
    pub end: i64,
}

/// One host's part: its threads' timelines, its VMs' names and its requests.
pub struct HostPaths {
    pub name: String,
    pub vms: Vec<String>,
    pub timelines: Timelines,
    pub requests: Vec<RequestRecord>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span {
    Running,
    Preempted,
    /// Ended by this waking (`None`: a switch-in with no waking seen).
    Waiting(Option<Waker>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Now {
    Running,
    Preempted,
    Waiting,
}

#[derive(Clone, Copy, Debug)]
struct Piece {
    start: u64,
    end: u64,
    span: Span,
}

#[derive(Default)]
struct Thread {
    spans: Vec<Piece>,
    now: Option<(Now, u64)>,
}

/// Every thread's timeline on one host, fed its events on the reference clock.
#[derive(Default)]
pub struct Timelines {
    threads: BTreeMap<u32, Thread>,
    last: u64,
}

impl Timelines {
    pub fn event(&mut self, ev: &Event) {
        let ts = ev.ts;
        self.last = self.last.max(ts);
        match ev.kind {
            Kind::SchedSwitch {
                prev,
                prev_state,
                next,
            } => {
                if prev != 0 {
                    // Runnable unless a sleeping bit is set (`R`, `R+`).
                    let state = if prev_state & 0xff == 0 {
                        Now::Preempted
                    } else {
                        Now::Waiting
                    };
                    self.enter(prev, ts, state, None);
                }
                if next != 0 {
                    self.enter(next, ts, Now::Running, None);
                }
            }
            Kind::SchedWaking { tid, waker, .. } => {
                self.in_context(ev);
                if matches!(self.state(tid), None | Some(Now::Waiting)) {
                    self.enter(tid, ts, Now::Preempted, Some(waker));
                }
            }
            Kind::SchedWakeup { tid, .. } => {
                self.in_context(ev);
                if self.state(tid).is_none() {
                    self.enter(tid, ts, Now::Preempted, None);
                }
            }
            // Not in every format's trace.
            Kind::KvmVcpuWakeup { .. } | Kind::KsmEnter { .. } | Kind::KsmMergeOnePage { .. } => {}
            _ => self.in_context(ev),
        }
    }

    /// Closes every thread's current span at the last event.
    pub fn finish(&mut self) {
        let last = self.last;
        let tids: Vec<u32> = self.threads.keys().copied().collect();
        for tid in tids {
            if let Some(t) = self.threads.get_mut(&tid) {
                if let Some((now, since)) = t.now {
                    Self::close(t, now, since, last, None);
                }
            }
        }
    }

    /// An event in the context of a thread says that it runs.
    fn in_context(&mut self, ev: &Event) {
        if ev.tid != 0 && self.state(ev.tid) != Some(Now::Running) {
            self.enter(ev.tid, ev.ts, Now::Running, None);
        }
    }

    fn state(&self, tid: u32) -> Option<Now> {
        self.threads.get(&tid).and_then(|t| t.now).map(|n| n.0)
    }

    fn enter(&mut self, tid: u32, ts: u64, state: Now, waker: Option<Waker>) {
        let t = self.threads.entry(tid).or_default();
        if let Some((now, since)) = t.now {
            Self::close(t, now, since, ts, waker);
        }
        t.now = Some((state, ts));
    }

    fn close(t: &mut Thread, now: Now, since: u64, ts: u64, waker: Option<Waker>) {
        let span = match now {
            Now::Running => Span::Running,
            Now::Preempted => Span::Preempted,
            Now::Waiting => Span::Waiting(waker),
        };
        // Nothing happens in no time: the analysis keeps no empty segment either.
        if ts > since {
            t.spans.push(Piece {
                start: since,
                end: ts,
                span,
            });
        }
        t.now = None;
    }

    fn spans(&self, tid: u32) -> &[Piece] {
        self.threads.get(&tid).map_or(&[], |t| &t.spans)
    }
}

/// Each recorded request of `hosts`, with its path. `messages`: whether the trace format pairs
/// a packet's two ends across hosts.
pub fn request_truths(hosts: &[HostPaths], messages: bool) -> Vec<RequestTruth> {
    let paths = Paths { hosts, messages };
    let mut out = Vec::new();
    for (h, host) in hosts.iter().enumerate() {
        for r in &host.requests {
            let mut w = Writer {
                pieces: Vec::new(),
                now: r.issued,
                end: r.resumed,
                hosts,
            };
            paths.walk(&mut w, h, r.tid, r.resumed, false);
            out.push(RequestTruth {
                kind: r.kind.name().into(),
                host: host.name.clone(),
                vm: host.vms[r.vm].clone(),
                vcpu: r.vcpu,
                tid: r.tid,
                start: r.issued as i64,
                end: r.resumed as i64,
                path: w.pieces,
            });
        }
    }
    out
}

/// What explains a wait.
enum Explained {
    /// The path of `tid` of `host` up to `at`, then (for a message) the flight to the wait's
    /// end.
    By { host: usize, tid: u32, at: u64 },
    /// Nothing: the wait stays, in this state.
    Not(&'static str),
}

struct Paths<'a> {
    hosts: &'a [HostPaths],
    messages: bool,
}

impl Paths<'_> {
    /// Writes the path of `tid` of `host` from where the writer stands to `to`; `explaining`:
    /// as the explanation of another thread's wait.
    fn walk(&self, w: &mut Writer, host: usize, tid: u32, to: u64, explaining: bool) {
        let me = Some((host, tid));
        let spans = self.hosts[host].timelines.spans(tid);
        let mut first = spans.partition_point(|p| p.end <= w.now);
        if explaining {
            // The algorithm walks an explanation back from its end and stops at the first wait
            // it meets that a message sent before the window explains: that message was in
            // flight over the whole window up to there.
            let window = w.now;
            let shortcut = spans[first..]
                .iter()
                .enumerate()
                .take_while(|(_, p)| p.end <= to)
                .filter(|(_, p)| match p.span {
                    Span::Waiting(waker) => matches!(
                        self.explained(host, tid, waker, p.end),
                        Explained::By { at, .. } if at <= window
                    ),
                    _ => false,
                })
                .last();
            if let Some((i, p)) = shortcut {
                w.extend(None, "network", p.end);
                first += i + 1;
            }
        }
        for p in &spans[first..] {
            if p.start >= to || w.now >= to {
                break;
            }
            if p.start > w.now {
                w.extend(me, "unknown", p.start);
            }
            let until = p.end.min(to);
            match p.span {
                Span::Running => w.extend(me, "running", until),
                Span::Preempted => w.extend(me, "preempted", until),
                Span::Waiting(waker) => match self.explained(host, tid, waker, p.end) {
                    Explained::By {
                        host: by_host,
                        tid: by,
                        at,
                    } => {
                        self.walk(w, by_host, by, at.min(to), true);
                        // A wake-up spans no time; a message is in flight until the wait's end.
                        w.extend(None, "network", until);
                    }
                    Explained::Not(state) => w.extend(me, state, until),
                },
            }
        }
        w.extend(me, "unknown", to);
    }

    /// What explains the wait of `tid` of `host` that `waker` ended at `end`.
    fn explained(&self, host: usize, tid: u32, waker: Option<Waker>, end: u64) -> Explained {
        let Some(waker) = waker else {
            return Explained::Not("blocked");
        };
        match waker {
            Waker::Task(by) if by != 0 && by != tid => Explained::By {
                host,
                tid: by,
                at: end,
            },
            Waker::Task(_) | Waker::Idle => Explained::Not("blocked"),
            Waker::Irq { context, packet } => match context {
                IrqContext::Timer => Explained::Not("timer"),
                IrqContext::Hardirq => Explained::Not("interrupt"),
                IrqContext::Softirq(1 | 8) => Explained::Not("timer"),
                IrqContext::Softirq(2 | 3) => match packet.filter(|_| self.messages) {
                    Some(o) => Explained::By {
                        host: o.host,
                        tid: o.tid,
                        at: o.sent,
                    },
                    None => Explained::Not("network"),
                },
                IrqContext::Softirq(4 | 5) => Explained::Not("disk"),
                IrqContext::Softirq(_) => Explained::Not("interrupt"),
            },
        }
    }
}

/// The path being written: every piece starts where the previous one ended and is cut at the
/// window's end.
struct Writer<'a> {
    pieces: Vec<PathPiece>,
    now: u64,
    end: u64,
    hosts: &'a [HostPaths],
}

impl Writer<'_> {
    fn extend(&mut self, who: Option<(usize, u32)>, state: &str, until: u64) {
        let until = until.min(self.end);
        if until <= self.now {
            return;
        }
        self.pieces.push(PathPiece {
            host: who.map(|(h, _)| self.hosts[h].name.clone()),
            tid: who.map(|(_, t)| t),
            state: state.into(),
            start: self.now as i64,
            end: until as i64,
        });
        self.now = until;
    }
}

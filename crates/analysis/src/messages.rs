//! Messages between the hosts of an experiment, during the analysis pass: each send and
//! receive with a key ([`MessageKey`]) is paired with its other end on another host
//! ([`virtflow_sync::Matcher`]). On the experiment's time line a message should arrive after
//! it left; those that do not are counted — what the clock synchronisation could not explain.
//!
//! When the hosts' clocks are not known yet, the pass fits them itself ([`Fitting`]): every
//! pair goes to the synchronisation engine as it is matched, on the clocks the events come in
//! (each host's own, shifted), and the pairs between hosts are kept, four numbers each, to be
//! counted again on the fitted clocks.

use virtflow_model::Timeline;
use virtflow_sync::{ClockTransform, Matched, Matcher, SyncEngine, SyncResult};
use virtflow_trace::Timestamp;

use crate::layout::{MessageKey, PacketDir};

pub(crate) struct Messages {
    matcher: Matcher<MessageKey>,
    /// Message ends seen with a key.
    seen: u64,
    paired: u64,
    received_before_sent: u64,
    fitting: Option<Fitting>,
}

/// The clock fit made in the pass.
pub(crate) struct Fitting {
    engine: SyncEngine,
    hosts: Vec<String>,
    pairs: Vec<Pair>,
}

/// A message between two hosts: who sent and received it, when, on the pass's clocks.
#[derive(Clone, Copy)]
struct Pair {
    send_host: u32,
    receive_host: u32,
    sent: Timestamp,
    received: Timestamp,
}

/// What the fit found: the engine's result, and by host the transform from the pass's clock
/// to the reference (`None`: unchanged).
pub(crate) struct Fitted {
    pub result: SyncResult,
    pub transforms: Vec<Option<ClockTransform>>,
    pub matched: u64,
    pub seen: u64,
    pub dropped: u64,
}

impl Messages {
    /// Messages between `hosts`; fitting their clocks onto `fit_onto` when given.
    pub fn new(hosts: &[String], fit_onto: Option<&str>) -> Messages {
        let fitting = fit_onto.map(|reference| {
            let mut engine = SyncEngine::with_reference(reference);
            for h in hosts {
                engine.add_host(h);
            }
            Fitting {
                engine,
                hosts: hosts.to_vec(),
                pairs: Vec::new(),
            }
        });
        Messages {
            matcher: Matcher::new(hosts.len()),
            seen: 0,
            paired: 0,
            received_before_sent: 0,
            fitting,
        }
    }

    /// A message end seen on `host` at `ts` (on the pass's time line), in the context of
    /// thread `tid`. Returns the message when this end completes one between two hosts.
    pub fn seen(
        &mut self,
        host: usize,
        ts: Timestamp,
        dir: PacketDir,
        key: MessageKey,
        tid: u32,
    ) -> Option<Matched> {
        self.seen += 1;
        let found = match dir {
            PacketDir::Send => self.matcher.send(host, key, ts, tid),
            PacketDir::Receive => self.matcher.receive(host, key, ts, tid),
        }?;
        if let Some(f) = &mut self.fitting {
            // Every pair, as the separate synchronisation feeds it: the engine refuses those
            // within one host that go back in time and counts them.
            f.engine.add_match(
                (&f.hosts[found.send.0], found.send.1),
                (&f.hosts[found.receive.0], found.receive.1),
            );
        }
        let m = Some(found).filter(|m| m.send.0 != m.receive.0)?;
        self.paired += 1;
        if m.receive.1 < m.send.1 {
            self.received_before_sent += 1;
        }
        if let Some(f) = &mut self.fitting {
            f.pairs.push(Pair {
                send_host: m.send.0 as u32,
                receive_host: m.receive.0 as u32,
                sent: m.send.1,
                received: m.receive.1,
            });
        }
        Some(m)
    }

    /// The fit, when the pass made one: the transforms, and the messages counted again on the
    /// fitted clocks.
    pub fn fit(&mut self) -> Option<Fitted> {
        let f = self.fitting.take()?;
        let result = f.engine.result();
        let transforms: Vec<Option<ClockTransform>> = f
            .hosts
            .iter()
            .map(|h| {
                result
                    .host(h)
                    .map(|s| s.transform.clone())
                    .filter(|t| !t.is_identity())
            })
            .collect();
        let on_reference = |host: u32, t: Timestamp| match &transforms[host as usize] {
            Some(tr) => tr.apply(t),
            None => t,
        };
        self.received_before_sent = f
            .pairs
            .iter()
            .filter(|p| {
                on_reference(p.receive_host, p.received) < on_reference(p.send_host, p.sent)
            })
            .count() as u64;
        Some(Fitted {
            result,
            transforms,
            matched: self.matcher.matches,
            seen: self.seen,
            dropped: self.matcher.dropped,
        })
    }

    /// The counts, into the model's time line.
    pub fn fill(&self, timeline: &mut Timeline) {
        timeline.messages = self.paired;
        timeline.received_before_sent = self.received_before_sent;
    }
}

//! Messages between the hosts of an experiment, during the analysis pass: each send and
//! receive with a key ([`MessageKey`]) is paired with its other end on another host
//! ([`virtflow_sync::Matcher`]). On the experiment's time line a message should arrive after
//! it left; those that do not are counted — what the clock synchronisation could not explain.

use virtflow_model::Timeline;
use virtflow_sync::{Matched, Matcher};
use virtflow_trace::Timestamp;

use crate::layout::{MessageKey, PacketDir};

pub(crate) struct Messages {
    matcher: Matcher<MessageKey>,
    paired: u64,
    received_before_sent: u64,
}

impl Messages {
    pub fn new(hosts: usize) -> Messages {
        Messages {
            matcher: Matcher::new(hosts),
            paired: 0,
            received_before_sent: 0,
        }
    }

    /// A message end seen on `host` at `ts` (on the experiment's time line), in the context of
    /// thread `tid`. Returns the message when this end completes one between two hosts.
    pub fn seen(
        &mut self,
        host: usize,
        ts: Timestamp,
        dir: PacketDir,
        key: MessageKey,
        tid: u32,
    ) -> Option<Matched> {
        let found = match dir {
            PacketDir::Send => self.matcher.send(host, key, ts, tid),
            PacketDir::Receive => self.matcher.receive(host, key, ts, tid),
        };
        let m = found.filter(|m| m.send.0 != m.receive.0)?;
        self.paired += 1;
        if m.receive.1 < m.send.1 {
            self.received_before_sent += 1;
        }
        Some(m)
    }

    /// The counts, into the model's time line.
    pub fn fill(&self, timeline: &mut Timeline) {
        timeline.messages = self.paired;
        timeline.received_before_sent = self.received_before_sent;
    }
}

//! Clock synchronisation of an experiment's hosts: the messages they exchanged (TCP segments
//! with their headers, stub trace messages, guest↔host synchronisation hypercalls), paired by
//! key ([`virtflow_sync::Matcher`]), give each pair of hosts a convex hull, and each host a
//! transform onto the reference host's clock ([`virtflow_sync::SyncEngine`]).
//!
//! [`synchronise`] reads only the classes that carry messages, which the readers pass over the
//! rest to find: what `virtflow sync` runs, and what an experiment read within a time window
//! needs before its pass (the window is on the reference clock). Otherwise the analysis pass
//! fits the clocks itself ([`crate::analyze_fitting_clocks`]) with the same matcher and
//! engine, on hosts merged at provisional offsets, and puts the model on the reference clock
//! at its end.

use virtflow_sync::{Matcher, SyncEngine, SyncResult};
use virtflow_trace::{EventSource, Step, TraceError};

use crate::layout::{Layout, MessageKey, PacketDir, TypedEvent};

/// What synchronising an experiment found.
#[derive(Clone, Debug)]
pub struct Synchronisation {
    pub result: SyncResult,
    /// Messages paired (within one host too; the engine counts what it used).
    pub matched: u64,
    /// Messages seen that could carry a match (with a key).
    pub messages: u64,
    /// Unmatched messages dropped to bound memory (traffic to hosts outside the experiment).
    pub dropped: u64,
    /// What the user should know: why a host could not be synchronised.
    pub notes: Vec<String>,
}

/// Synchronises the hosts of `source` (an experiment on its hosts' own clocks) onto
/// `reference` (by name; the first host when `None`).
pub fn synchronise(
    source: &mut dyn EventSource,
    reference: Option<&str>,
) -> Result<Synchronisation, TraceError> {
    let hosts = source.hosts();
    let layout = Layout::new(source.classes()).with_message_keys();
    let classes = layout.message_classes();
    let reference = reference
        .map(str::to_string)
        .or_else(|| hosts.first().cloned())
        .unwrap_or_default();
    let mut engine = SyncEngine::with_reference(&reference);
    for h in &hosts {
        engine.add_host(h);
    }
    let mut matcher: Matcher<MessageKey> = Matcher::new(hosts.len());
    let mut messages = 0u64;
    if !classes.is_empty() {
        source.set_interest(Some(&classes));
        loop {
            let header = match source.advance()? {
                Step::Event(h) => h,
                Step::Lost(_) => continue,
                Step::End => break,
            };
            let Some((_, ev)) = layout.decode(&*source, &header) else {
                continue;
            };
            let (dir, key) = match ev {
                TypedEvent::Packet {
                    dir,
                    primary: true,
                    key: Some(key),
                } => (dir, key),
                TypedEvent::VmSync { dir, key } => (dir, key),
                _ => continue,
            };
            messages += 1;
            let host = source.host();
            let found = match dir {
                PacketDir::Send => matcher.send(host, key, header.ts, 0),
                PacketDir::Receive => matcher.receive(host, key, header.ts, 0),
            };
            if let Some(m) = found {
                engine.add_match(
                    (&hosts[m.send.0], m.send.1),
                    (&hosts[m.receive.0], m.receive.1),
                );
            }
        }
    }
    let notes = reading_notes(&layout, messages);
    Ok(Synchronisation {
        result: engine.result(),
        matched: matcher.matches,
        messages,
        dropped: matcher.dropped,
        notes,
    })
}

/// What the user should know about the messages the traces could give.
pub(crate) fn reading_notes(layout: &Layout, messages: u64) -> Vec<String> {
    let mut notes = Vec::new();
    if layout.packets_without_keys() {
        notes.push(
            "these traces' network events carry no TCP header (ftrace and perf `net:*` events \
             do not record one): their packets cannot be paired between hosts; record with \
             LTTng (`net_dev_queue`, `netif_receive_skb` with their headers) to synchronise"
                .to_string(),
        );
    } else if messages == 0 {
        notes.push(
            "no message between hosts in these traces (TCP packets with their headers, \
             synchronisation hypercalls): their clocks cannot be related"
                .to_string(),
        );
    }
    notes
}

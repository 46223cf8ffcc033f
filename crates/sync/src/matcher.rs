//! Pairing messages between hosts: each send and each receive comes with a key (a TCP
//! segment's sequence numbers, a stub trace's message id, a VM's hypercall counter) and the
//! host that saw it; a receive and a send of the same key seen on two hosts make a match.
//!
//! The rules follow Trace Compass's event matching, in time order of the experiment:
//!
//! - a receive pairs with an earlier unmatched send of its key on any host; a send pairs with
//!   an earlier unmatched receive of its key on another host (clocks not yet synchronised can
//!   show a receive first);
//! - of several unmatched events with one key on one host and side, the first is kept;
//! - once a host has matched messages with every other host, its unmatched events older than
//!   its oldest latest match on that side are dropped (they will not be matched: the peers
//!   have moved past them);
//! - unlike Trace Compass, once a key is matched its other unmatched ends are forgotten: they
//!   are the same message seen at other hops (a packet forwarded inside a host), which would
//!   otherwise pair with a later hop of the other host the wrong way round.
//!
//! Memory is the unmatched messages in flight: beyond a bound per host and side (traffic to
//! hosts outside the experiment never matches), the oldest half is dropped and counted.

use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;
use std::hash::Hash;

/// Unmatched events kept per host and side before the oldest half is dropped.
const MAX_UNMATCHED: usize = 1 << 16;

/// A message's two ends: (host index, timestamp) of the send and of the receive, and the
/// tags their callers gave them (the analysis tags each end with its thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Matched {
    pub send: (usize, i64),
    pub receive: (usize, i64),
    pub tags: (u32, u32),
}

/// The unmatched events of one host and one side (sends or receives).
#[derive(Debug)]
struct Side<K> {
    /// Key → (time, tag).
    by_key: HashMap<K, (i64, u32)>,
    /// The keys in the order they were inserted, with their times (the experiment's time
    /// order), so that dropping the events older than a time pops from the front instead of
    /// scanning every event held at every match. An entry whose key was matched or dropped
    /// since, or held with another time, is stale and skipped.
    order: VecDeque<(i64, K)>,
}

impl<K: Hash + Eq + Clone> Side<K> {
    fn new() -> Self {
        Side {
            by_key: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// Keeps the first unmatched event of a key; returns how many were dropped for room.
    fn insert(&mut self, key: K, ts: i64, tag: u32) -> u64 {
        let mut dropped = 0;
        if self.by_key.len() >= MAX_UNMATCHED && !self.by_key.contains_key(&key) {
            let mut times: Vec<i64> = self.by_key.values().map(|v| v.0).collect();
            let mid = times.len() / 2;
            let (_, cut, _) = times.select_nth_unstable(mid);
            let cut = *cut;
            let before = self.by_key.len();
            self.by_key.retain(|_, v| v.0 > cut);
            dropped = (before - self.by_key.len()) as u64;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.by_key.entry(key) {
            self.order.push_back((ts, e.key().clone()));
            e.insert((ts, tag));
        }
        // Stale entries (matched keys) accumulate while no drop reaches them: past twice the
        // bound, keep only the live ones.
        if self.order.len() > 2 * MAX_UNMATCHED {
            let by_key = &self.by_key;
            self.order
                .retain(|(t, k)| by_key.get(k).is_some_and(|v| v.0 == *t));
        }
        dropped
    }

    /// Drops the events older than `ts`.
    fn drop_before(&mut self, ts: i64) {
        while let Some((t, _)) = self.order.front() {
            if *t >= ts {
                break;
            }
            let (t, k) = self.order.pop_front().expect("a front");
            if self.by_key.get(&k).is_some_and(|v| v.0 == t) {
                self.by_key.remove(&k);
            }
        }
    }
}

/// Pairs the messages of `hosts` hosts by key. See the module documentation.
#[derive(Debug)]
pub struct Matcher<K> {
    sends: Vec<Side<K>>,
    receives: Vec<Side<K>>,
    /// Per (sender, receiver): the send and receive times of their latest match.
    latest: HashMap<(usize, usize), (i64, i64)>,
    /// Unmatched events dropped to bound memory.
    pub dropped: u64,
    pub matches: u64,
}

impl<K: Hash + Eq + Clone> Matcher<K> {
    pub fn new(hosts: usize) -> Self {
        Matcher {
            sends: (0..hosts).map(|_| Side::new()).collect(),
            receives: (0..hosts).map(|_| Side::new()).collect(),
            latest: HashMap::default(),
            dropped: 0,
            matches: 0,
        }
    }

    fn hosts(&self) -> usize {
        self.sends.len()
    }

    /// A send of `key` seen on `host` at `ts`, tagged `tag`.
    pub fn send(&mut self, host: usize, key: K, ts: i64, tag: u32) -> Option<Matched> {
        if host >= self.hosts() {
            return None;
        }
        let found = (0..self.hosts())
            .filter(|&h| h != host)
            .find_map(|h| self.receives[h].by_key.remove(&key).map(|v| (h, v)));
        match found {
            Some((h, (t, other))) => Some(self.matched(&key, (host, ts), (h, t), (tag, other))),
            None => {
                self.dropped += self.sends[host].insert(key, ts, tag);
                None
            }
        }
    }

    /// A receive of `key` seen on `host` at `ts`. A send of the same host pairs too (the
    /// synchronisation ignores such a match, a counted fact about the trace).
    pub fn receive(&mut self, host: usize, key: K, ts: i64, tag: u32) -> Option<Matched> {
        if host >= self.hosts() {
            return None;
        }
        let found =
            (0..self.hosts()).find_map(|h| self.sends[h].by_key.remove(&key).map(|v| (h, v)));
        match found {
            Some((h, (t, other))) => Some(self.matched(&key, (h, t), (host, ts), (other, tag))),
            None => {
                self.dropped += self.receives[host].insert(key, ts, tag);
                None
            }
        }
    }

    fn matched(
        &mut self,
        key: &K,
        send: (usize, i64),
        receive: (usize, i64),
        tags: (u32, u32),
    ) -> Matched {
        self.matches += 1;
        for side in self.sends.iter_mut().chain(&mut self.receives) {
            side.by_key.remove(key);
        }
        if send.0 != receive.0 {
            self.latest.insert((send.0, receive.0), (send.1, receive.1));
            self.clean(send.0, receive.0);
        }
        Matched {
            send,
            receive,
            tags,
        }
    }

    /// The sender's unmatched sends older than its oldest latest match to every other host
    /// cannot match any more; the receiver's receives likewise.
    fn clean(&mut self, sender: usize, receiver: usize) {
        let n = self.hosts();
        // The oldest of the latest matches with every other host, when there is one with each.
        let oldest_send = (0..n)
            .filter(|&h| h != sender)
            .try_fold(i64::MAX, |min, h| {
                self.latest.get(&(sender, h)).map(|l| min.min(l.0))
            });
        if let Some(ts) = oldest_send.filter(|_| n > 1) {
            self.sends[sender].drop_before(ts);
        }
        let oldest_receive = (0..n)
            .filter(|&h| h != receiver)
            .try_fold(i64::MAX, |min, h| {
                self.latest.get(&(h, receiver)).map(|l| min.min(l.1))
            });
        if let Some(ts) = oldest_receive.filter(|_| n > 1) {
            self.receives[receiver].drop_before(ts);
        }
    }

    /// Unmatched events still held.
    pub fn in_flight(&self) -> usize {
        self.sends
            .iter()
            .chain(&self.receives)
            .map(|s| s.by_key.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trace Compass's network stub test: a client and a server exchanging two messages
    /// (`msgid` 1 and 2) through several interfaces, as facts of its `EventMatchingTest`:
    /// four matches, the first and last within the client.
    #[test]
    fn the_client_server_stub_exchange_gives_four_matches() {
        let (client, server) = (0, 1);
        let mut m = Matcher::new(2);
        let mut found = Vec::new();
        let mut push = |r: Option<Matched>| found.extend(r);
        push(m.send(client, 1, 15, 0));
        push(m.receive(client, 1, 20, 0));
        push(m.receive(client, 1, 25, 0));
        push(m.send(client, 1, 30, 0));
        push(m.receive(server, 1, 50, 0));
        push(m.send(server, 2, 70, 0));
        push(m.receive(client, 2, 100, 0));
        push(m.send(client, 2, 105, 0));
        push(m.send(client, 2, 110, 0));
        push(m.receive(client, 2, 115, 0));
        let pairs: Vec<((usize, i64), (usize, i64))> =
            found.iter().map(|x| (x.send, x.receive)).collect();
        assert_eq!(
            pairs,
            vec![
                ((client, 15), (client, 20)),
                ((client, 30), (server, 50)),
                ((server, 70), (client, 100)),
                ((client, 105), (client, 115)),
            ]
        );
    }

    #[test]
    fn a_receive_seen_first_pairs_with_the_later_send_of_another_host() {
        let mut m = Matcher::new(2);
        assert_eq!(m.receive(1, "k", 10, 0), None);
        // The same host's send does not take it.
        assert_eq!(m.send(1, "k", 12, 0), None);
        assert_eq!(
            m.send(0, "k", 20, 0),
            Some(Matched {
                send: (0, 20),
                receive: (1, 10),
                tags: (0, 0),
            })
        );
    }

    /// A packet from a VM of host 0 to a VM of host 1, seen at each hop with one TCP header:
    /// host 0 receives it from its VM and sends it on the wire, host 1 receives it from the
    /// wire and sends it to its VM. One match: the wire.
    #[test]
    fn a_forwarded_packet_pairs_once_on_the_wire() {
        let mut m = Matcher::new(2);
        assert_eq!(m.receive(0, 7, 10, 0), None); // from the VM's tap
        assert_eq!(m.send(0, 7, 11, 0), None); // onto the wire
        assert_eq!(
            m.receive(1, 7, 20, 0),
            Some(Matched {
                send: (0, 11),
                receive: (1, 20),
                tags: (0, 0),
            })
        );
        // Onward to host 1's VM: not paired with host 0's first hop.
        assert_eq!(m.send(1, 7, 21, 0), None);
    }

    #[test]
    fn unmatched_messages_older_than_every_latest_match_are_dropped() {
        let mut m = Matcher::new(2);
        // Sends to somewhere outside the experiment, then a matched exchange.
        for (i, k) in ["x", "y", "z"].iter().enumerate() {
            m.send(0, k.to_string(), i as i64, 0);
        }
        assert_eq!(m.in_flight(), 3);
        m.send(0, "a".to_string(), 10, 0);
        m.receive(1, "a".to_string(), 11, 0);
        assert_eq!(m.in_flight(), 0, "the sender has moved past x, y, z");
        // Memory stays bounded even without matches.
        let mut m = Matcher::new(2);
        for i in 0..(MAX_UNMATCHED as i64 + 10) {
            m.send(0, i, i, 0);
        }
        assert!(m.in_flight() <= MAX_UNMATCHED);
        assert!(m.dropped > 0);
    }

    #[test]
    fn events_held_after_a_match_are_dropped_in_time_order() {
        let mut m = Matcher::new(2);
        // Sends to outside the experiment at 0, 1, 2, 4 and 5, the matched one at 3, and a
        // receive from outside at 2.
        for t in 0..3 {
            m.send(0, 100 + t, t, 0);
        }
        m.receive(0, 200, 2, 0);
        m.send(0, 1, 3, 0);
        m.send(0, 103, 4, 0);
        m.send(0, 104, 5, 0);
        // A key sent again keeps its first time (0), so it goes with the others before 3.
        m.send(0, 100, 5, 0);
        assert!(m.receive(1, 1, 6, 0).is_some());
        // The sender's latest match was sent at 3: its sends before 3 are gone, 103, 104
        // stay; the receiver had nothing held.
        let mut held: Vec<i64> = m.sends[0].by_key.keys().copied().collect();
        held.sort();
        assert_eq!(held, vec![103, 104]);
        assert_eq!(m.receives[0].by_key.len(), 1);
    }

    #[test]
    fn the_order_of_held_events_stays_bounded_without_drops() {
        // A third host never matched: no event is ever old enough to drop, while every
        // exchange between the two others leaves a matched key behind in the order.
        let mut m = Matcher::new(3);
        for i in 0..(3 * MAX_UNMATCHED as i64) {
            m.send(0, i, 2 * i, 0);
            assert!(m.receive(1, i, 2 * i + 1, 0).is_some());
        }
        assert_eq!(m.in_flight(), 0);
        assert!(m.sends[0].order.len() <= 2 * MAX_UNMATCHED + 1);
    }
}

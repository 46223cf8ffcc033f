//! The synchronisation engine: matched messages in, one clock transform per host out.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::decimal::Decimal;
use crate::hull::{Direction, PairHull};
use crate::quality::SyncQuality;
use crate::transform::ClockTransform;
use crate::tree::{self, Link};

/// What [`SyncEngine::add_match`] did with a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOutcome {
    /// Between two hosts: given to their pair.
    Accepted,
    /// Sent and received on the same host, in order: no relation between two clocks, ignored.
    SameHost,
    /// Sent and received on the same host, the receive before the send: a packet crossing two
    /// interfaces of one machine matched wrongly. Refused and counted.
    Refused,
}

/// How many matches went where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchCounts {
    pub accepted: u64,
    pub same_host: u64,
    pub refused: u64,
}

/// The outcome for one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostSync {
    pub host: String,
    /// This host's time (ns) → the reference host's time. Identity for the reference and for
    /// hosts that cannot be related to it.
    pub transform: ClockTransform,
    /// The reference: accurate. A host related through a chain of pairs: the worst of the
    /// chain. A host with matches but no chain of pairs with a formula to the reference:
    /// incomplete. A host without any match: absent.
    pub quality: SyncQuality,
    /// Accepted matches this host sent or received.
    pub matches: u64,
    /// How far, in reference ns, the transform can put this host's events from their true
    /// reference time over the observed intervals (see [`PairHull::band_half_width`]); the
    /// links' bounds added along the chain. Only when every link of the chain is accurate.
    pub bound_ns: Option<f64>,
    /// Hosts from the reference to this one, both included; empty if it is not related.
    pub path: Vec<String>,
}

/// The outcome for one pair of hosts that exchanged messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairSync {
    /// The pair's reference: the engine's reference when it is one of the two, else the host
    /// whose id sorts first.
    pub reference: String,
    pub other: String,
    pub quality: SyncQuality,
    /// The formula `t_other = alpha × t_reference + beta`.
    pub alpha: Decimal,
    pub beta: Decimal,
    /// Other's time → reference's time (`1/alpha`, `−beta/alpha`), when there is a formula.
    pub transform: Option<ClockTransform>,
    /// Steepest minus flattest bounding slope (Trace Compass's "accuracy").
    pub slope_spread: Decimal,
    pub matches: u64,
    /// Matches that entered a hull.
    pub hull_entries: u64,
    /// Points on the hull of messages other → reference, and reference → other.
    pub below_points: usize,
    pub above_points: usize,
    /// See [`PairHull::bound_ns`].
    pub bound_ns: Option<f64>,
}

/// Everything the engine knows, ready to print or serialise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncResult {
    /// The host every transform leads to; `None` only without any host.
    pub reference: Option<String>,
    /// Sorted by host id.
    pub hosts: Vec<HostSync>,
    /// Sorted by (reference, other).
    pub pairs: Vec<PairSync>,
    pub matches: MatchCounts,
}

impl SyncResult {
    pub fn host(&self, id: &str) -> Option<&HostSync> {
        self.hosts.iter().find(|h| h.host == id)
    }
}

#[derive(Clone, Debug)]
struct HostRecord {
    id: String,
    matches: u64,
}

#[derive(Clone, Debug)]
struct Pair {
    reference: usize,
    other: usize,
    hull: PairHull,
}

/// Clock synchronisation of several hosts from matched messages.
///
/// Feed it every match ([`add_match`](Self::add_match)), in any order of hosts, ideally in
/// time order as the traces are read; ask for the [`result`](Self::result) at any time.
/// Memory is one [`PairHull`] per pair of hosts that exchanged messages, whose size follows the
/// hulls, not the number of matches.
#[derive(Clone, Debug, Default)]
pub struct SyncEngine {
    requested_reference: Option<String>,
    hosts: Vec<HostRecord>,
    host_index: HashMap<String, usize>,
    /// In the order pairs first exchanged a message: the spanning tree's tie-break.
    pairs: Vec<Pair>,
    pair_index: HashMap<(usize, usize), usize>,
    counts: MatchCounts,
}

impl SyncEngine {
    /// An engine whose reference will be the host whose id sorts first among those related to
    /// another.
    pub fn new() -> SyncEngine {
        SyncEngine::default()
    }

    /// An engine whose transforms all lead to `reference`'s clock.
    pub fn with_reference(reference: &str) -> SyncEngine {
        let mut engine = SyncEngine::new();
        engine.requested_reference = Some(reference.to_owned());
        engine.add_host(reference);
        engine
    }

    /// Makes a host known without a match, so the result lists it (as absent if no match
    /// comes): a trace without network events is still a host to report.
    pub fn add_host(&mut self, id: &str) {
        self.host(id);
    }

    fn host(&mut self, id: &str) -> usize {
        if let Some(&index) = self.host_index.get(id) {
            return index;
        }
        self.hosts.push(HostRecord {
            id: id.to_owned(),
            matches: 0,
        });
        self.host_index.insert(id.to_owned(), self.hosts.len() - 1);
        self.hosts.len() - 1
    }

    /// One matched message: `send` is (host id, timestamp in ns) of the sending event, `recv`
    /// that of the receiving one.
    pub fn add_match(&mut self, send: (&str, i64), recv: (&str, i64)) -> MatchOutcome {
        let ((send_host, send_ts), (recv_host, recv_ts)) = (send, recv);
        if send_host == recv_host {
            if recv_ts < send_ts {
                self.counts.refused += 1;
                return MatchOutcome::Refused;
            }
            self.counts.same_host += 1;
            return MatchOutcome::SameHost;
        }
        let sender = self.host(send_host);
        let receiver = self.host(recv_host);
        self.hosts[sender].matches += 1;
        self.hosts[receiver].matches += 1;
        self.counts.accepted += 1;
        // The pair's reference is the experiment's reference when it is one of the two —
        // Trace Compass's reference is always the host id that sorts first, and the mean of
        // the bounding lines depends on which clock is on which axis, so a pair is computed
        // the way round its result is used — else the host whose id sorts first, whichever way
        // the message went. (Rust compares strings by code point, Java by UTF-16 unit: they
        // differ only between characters above U+FFFF and those from U+E000 to U+FFFF.)
        let sender_is_reference = match self.requested_reference.as_deref() {
            Some(r) if r == send_host => true,
            Some(r) if r == recv_host => false,
            _ => send_host < recv_host,
        };
        let (reference, other, direction, reference_ts, other_ts) = if sender_is_reference {
            (
                sender,
                receiver,
                Direction::ReferenceToOther,
                send_ts,
                recv_ts,
            )
        } else {
            (
                receiver,
                sender,
                Direction::OtherToReference,
                recv_ts,
                send_ts,
            )
        };
        let pair = *self
            .pair_index
            .entry((reference, other))
            .or_insert_with(|| {
                self.pairs.push(Pair {
                    reference,
                    other,
                    hull: PairHull::new(),
                });
                self.pairs.len() - 1
            });
        self.pairs[pair]
            .hull
            .add_message(direction, reference_ts, other_ts);
        MatchOutcome::Accepted
    }

    /// The hull of a pair of hosts, in either order, if they exchanged messages.
    pub fn pair(&self, a: &str, b: &str) -> Option<&PairHull> {
        let (a, b) = (*self.host_index.get(a)?, *self.host_index.get(b)?);
        let key = if self.hosts[a].id < self.hosts[b].id {
            (a, b)
        } else {
            (b, a)
        };
        self.pair_index.get(&key).map(|&i| &self.pairs[i].hull)
    }

    /// The quality of a pair of hosts, [`SyncQuality::Absent`] if they exchanged nothing.
    pub fn pair_quality(&self, a: &str, b: &str) -> SyncQuality {
        self.pair(a, b)
            .map_or(SyncQuality::Absent, PairHull::quality)
    }

    pub fn counts(&self) -> MatchCounts {
        self.counts
    }

    /// Chains the pairs into one transform per host.
    pub fn result(&self) -> SyncResult {
        let links: Vec<Link> = self
            .pairs
            .iter()
            .filter_map(|pair| {
                let hull = &pair.hull;
                let to_reference = hull.transform()?;
                Some(Link {
                    reference: pair.reference,
                    other: pair.other,
                    to_reference,
                    quality: hull.quality(),
                    bound_at_reference: hull.bound_ns(),
                    bound_at_other: hull.band_half_width().map(Decimal::to_f64),
                })
            })
            .collect();
        let mut by_name: Vec<usize> = (0..self.hosts.len()).collect();
        by_name.sort_by(|&a, &b| self.hosts[a].id.cmp(&self.hosts[b].id));
        let requested = self
            .requested_reference
            .as_ref()
            .map(|r| self.host_index[r]);
        let root = tree::choose_root(requested, &links, &by_name);
        let placements = match root {
            Some(root) => tree::place_hosts(self.hosts.len(), root, &links),
            None => Vec::new(),
        };

        let hosts = by_name
            .iter()
            .map(|&h| {
                let record = &self.hosts[h];
                let unrelated = if record.matches > 0 {
                    SyncQuality::Incomplete
                } else {
                    SyncQuality::Absent
                };
                let placement = placements.get(h).cloned().flatten();
                HostSync {
                    host: record.id.clone(),
                    transform: placement
                        .as_ref()
                        .map_or_else(ClockTransform::identity, |p| p.transform.clone()),
                    quality: placement.as_ref().map_or(unrelated, |p| p.quality),
                    matches: record.matches,
                    bound_ns: placement.as_ref().and_then(|p| p.bound_ns),
                    path: placement.map_or_else(Vec::new, |p| {
                        p.path.iter().map(|&i| self.hosts[i].id.clone()).collect()
                    }),
                }
            })
            .collect();

        let mut pairs: Vec<PairSync> = self
            .pairs
            .iter()
            .map(|pair| {
                let hull = &pair.hull;
                PairSync {
                    reference: self.hosts[pair.reference].id.clone(),
                    other: self.hosts[pair.other].id.clone(),
                    quality: hull.quality(),
                    alpha: hull.alpha(),
                    beta: hull.beta(),
                    transform: hull.transform(),
                    slope_spread: hull.slope_spread(),
                    matches: hull.messages(),
                    hull_entries: hull.hull_entries(),
                    below_points: hull.below_points(),
                    above_points: hull.above_points(),
                    bound_ns: hull.bound_ns(),
                }
            })
            .collect();
        pairs.sort_by(|a, b| (&a.reference, &a.other).cmp(&(&b.reference, &b.other)));

        SyncResult {
            reference: root.map(|r| self.hosts[r].id.clone()),
            hosts,
            pairs,
            matches: self.counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three hosts on simulated clocks: `a` true time, `b = 1.00002·t + 5 ms`,
    /// `c = 0.99997·t − 2 s`. `a` and `c` never talk: `c` is reached through `b`.
    fn clock(host: &str, t: i64) -> i64 {
        match host {
            "a" => t,
            "b" => t + t / 50_000 + 5_000_000,
            "c" => t - 3 * (t / 100_000) - 2_000_000_000,
            _ => unreachable!(),
        }
    }

    fn exchange(engine: &mut SyncEngine, from: &str, to: &str, t: i64, delay: i64) {
        let outcome = engine.add_match((from, clock(from, t)), (to, clock(to, t + delay)));
        assert_eq!(outcome, MatchOutcome::Accepted);
    }

    fn three_hosts(engine: &mut SyncEngine) {
        let start = 1_700_000_000_000_000_000i64;
        for i in 0..2_000i64 {
            let t = start + i * 5_000_000;
            let delay = 30_000 + (i * 7_919) % 40_000;
            exchange(engine, "a", "b", t, delay);
            exchange(engine, "b", "a", t + 1_000_000, delay);
            exchange(engine, "c", "b", t + 2_000_000, delay);
            exchange(engine, "b", "c", t + 3_000_000, delay);
        }
    }

    #[test]
    fn three_hosts_chain_through_the_spanning_tree() {
        let mut engine = SyncEngine::new();
        engine.add_host("d"); // a trace without network events
        engine.add_match(("e", 5), ("e", 9)); // loopback
        engine.add_match(("e", 9), ("e", 5)); // two interfaces of one host
        three_hosts(&mut engine);
        let result = engine.result();
        assert_eq!(result.reference.as_deref(), Some("a"));
        assert_eq!(
            result.matches,
            MatchCounts {
                accepted: 8_000,
                same_host: 1,
                refused: 1
            }
        );

        let a = result.host("a").unwrap();
        assert!(a.transform.is_identity());
        assert_eq!(
            (a.quality, a.bound_ns, a.matches),
            (SyncQuality::Accurate, Some(0.0), 4_000)
        );
        let b = result.host("b").unwrap();
        assert_eq!(
            (b.quality, b.path.clone()),
            (SyncQuality::Accurate, vec!["a".into(), "b".into()])
        );
        let c = result.host("c").unwrap();
        assert_eq!(c.quality, SyncQuality::Accurate);
        assert_eq!(c.path, ["a", "b", "c"]);
        let bound = c.bound_ns.unwrap();
        assert!(bound > 0.0 && bound < 100_000.0, "bound {bound}");
        // c's clock maps back to a's within the bound, across the whole run.
        for t in [
            1_700_000_000_000_000_000i64,
            1_700_000_005_000_000_000,
            1_700_000_009_990_000_000,
        ] {
            let error = (c.transform.apply(clock("c", t)) - t).abs() as f64;
            assert!(error <= bound, "error {error} ns, bound {bound} ns");
            let error = (b.transform.apply(clock("b", t)) - t).abs() as f64;
            assert!(error <= b.bound_ns.unwrap(), "b: error {error} ns");
        }
        // Hosts outside the tree keep the identity.
        let d = result.host("d").unwrap();
        assert_eq!(
            (d.quality, d.matches, d.path.len()),
            (SyncQuality::Absent, 0, 0)
        );
        assert!(d.transform.is_identity());
        assert!(
            result.host("e").is_none(),
            "a same-host match makes no host"
        );
        assert_eq!(result.pairs.len(), 2);
        assert_eq!(
            (
                result.pairs[0].reference.as_str(),
                result.pairs[0].other.as_str()
            ),
            ("a", "b")
        );
        assert_eq!(
            (
                result.pairs[1].reference.as_str(),
                result.pairs[1].other.as_str()
            ),
            ("b", "c")
        );
    }

    #[test]
    fn a_requested_reference_and_one_way_hosts() {
        let mut engine = SyncEngine::with_reference("c");
        three_hosts(&mut engine);
        // "z" only ever sends to "a": incomplete, unrelated.
        for i in 0..10 {
            engine.add_match(
                ("z", 1_000 + i * 100),
                ("a", 1_700_000_000_000_000_000 + i * 100),
            );
        }
        let result = engine.result();
        assert_eq!(result.reference.as_deref(), Some("c"));
        let a = result.host("a").unwrap();
        assert_eq!(a.path, ["c", "b", "a"]);
        let t = 1_700_000_004_000_000_000i64;
        assert!((a.transform.apply(t) - clock("c", t)).abs() as f64 <= a.bound_ns.unwrap());
        assert!(result.host("c").unwrap().transform.is_identity());
        let z = result.host("z").unwrap();
        assert_eq!((z.quality, z.matches), (SyncQuality::Incomplete, 10));
        assert!(z.transform.is_identity());
        assert_eq!(engine.pair_quality("z", "a"), SyncQuality::Incomplete);
        assert_eq!(engine.pair_quality("a", "z"), SyncQuality::Incomplete);
        assert_eq!(engine.pair_quality("a", "c"), SyncQuality::Absent);
    }

    #[test]
    fn empty_and_serialised_results() {
        let empty = SyncEngine::new().result();
        assert_eq!((empty.reference, empty.hosts.len()), (None, 0));

        let mut engine = SyncEngine::new();
        engine.add_match(("h1", 10), ("h2", 20));
        let result = engine.result();
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["reference"], "h1");
        assert_eq!(json["hosts"][1]["quality"], "incomplete");
        assert_eq!(json["hosts"][1]["transform"]["slope"], "1");
        assert_eq!(json["pairs"][0]["alpha"], "1");
        assert_eq!(json["matches"]["accepted"], 1);
        let back: SyncResult = serde_json::from_value(json).unwrap();
        assert_eq!(back, result);
    }
}

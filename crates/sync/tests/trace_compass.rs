//! Trace Compass's own synchronisation tests, replayed through the engine: every quality and
//! formula they assert, to every digit they assert (`SyncTest`, `ExperimentSyncTest`,
//! `MatchAndSyncTest`). Values marked "re-simulation" are not asserted by Trace Compass; they
//! come from an independent re-simulation of its algorithm and pin down the steps between.

use virtflow_sync::{ClockTransform, Decimal, SyncEngine, SyncQuality, SyncResult};

use SyncQuality::{Absent, Accurate, Approximate, Fail, Incomplete};

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Trace Compass's `toString` of a pair, `alpha A beta B`, from the engine.
fn formula(engine: &SyncEngine) -> String {
    let hull = engine.pair("t1", "t2").unwrap();
    format!("alpha {} beta {}", hull.alpha(), hull.beta())
}

fn transform_of(result: &SyncResult, host: &str) -> ClockTransform {
    result.host(host).unwrap().transform.clone()
}

/// `SyncTest` sends timestamps in seconds, whose raw values are the small integers.
fn add(engine: &mut SyncEngine, sender: &str, send: i64, receiver: &str, recv: i64) {
    engine.add_match((sender, send), (receiver, recv));
}

/// SyncTest.testFullyIncremental (hosts "t1" and "t2": "t1" is the reference).
#[test]
fn sync_test_fully_incremental() {
    let mut engine = SyncEngine::new();
    assert_eq!(engine.pair_quality("t1", "t2"), Absent);
    let steps = [
        (("t2", 1, "t1", 1), Incomplete, "alpha 1 beta 0"),
        (("t1", 1, "t2", 3), Incomplete, "alpha 1 beta 0"),
        (("t2", 2, "t1", 3), Approximate, "alpha 1 beta 0.5"),
        (("t1", 3, "t2", 5), Accurate, "alpha 0.75 beta 1.25"),
        (("t1", 4, "t2", 8), Accurate, "alpha 0.75 beta 1.25"),
        (("t2", 4, "t1", 5), Accurate, "alpha 1.125 beta 0.875"),
        (("t2", 4, "t1", 6), Accurate, "alpha 1.125 beta 0.875"),
        (("t1", 6, "t2", 7), Accurate, "alpha 0.725 beta 1.275"),
    ];
    for (i, ((sender, send, receiver, recv), quality, expected)) in steps.into_iter().enumerate() {
        add(&mut engine, sender, send, receiver, recv);
        assert_eq!(engine.pair_quality("t1", "t2"), quality, "step {}", i + 1);
        assert_eq!(formula(&engine), expected, "step {}", i + 1);
    }
    let result = engine.result();
    assert_eq!(result.reference.as_deref(), Some("t1"));
    assert!(transform_of(&result, "t1").is_identity());
    // Trace Compass asserts a linear transform for t2; its coefficients (re-simulation):
    let tt2 = transform_of(&result, "t2");
    assert_eq!(
        tt2.slope().to_string(),
        "1.379310344827586206896551724137931"
    );
    assert_eq!(
        tt2.offset().to_string(),
        "-1.758620689655172413793103448275862"
    );

    // "Make the two hulls intersect, and make sure the last good formula is kept."
    add(&mut engine, "t1", 7, "t2", 4);
    assert_eq!(engine.pair_quality("t1", "t2"), Accurate);
    assert_eq!(formula(&engine), "alpha 0.375 beta 1.625");
    let last_good = engine.result();
    let tt2 = transform_of(&last_good, "t2");
    assert_eq!(
        tt2.slope().to_string(),
        "2.666666666666666666666666666666667"
    ); // re-simulation
    assert_eq!(
        tt2.offset().to_string(),
        "-4.333333333333333333333333333333333"
    );

    add(&mut engine, "t2", 7, "t1", 3);
    assert_eq!(engine.pair_quality("t1", "t2"), Fail);
    assert_eq!(formula(&engine), "alpha 0.375 beta 1.625");
    let failed = engine.result();
    assert_eq!(transform_of(&failed, "t2"), tt2);
    assert!(transform_of(&failed, "t1").is_identity());
    assert_eq!(failed.host("t2").unwrap().quality, Fail);
    assert_eq!(failed.host("t2").unwrap().bound_ns, None);
}

/// SyncTest.testOneHull: traffic one way only.
#[test]
fn sync_test_one_hull() {
    let mut engine = SyncEngine::new();
    for (send, recv) in [(1, 3), (2, 5), (3, 5), (4, 7)] {
        add(&mut engine, "t1", send, "t2", recv);
        assert_eq!(engine.pair_quality("t1", "t2"), Incomplete);
    }
    assert_eq!(formula(&engine), "alpha 1 beta 0");
    let hull = engine.pair("t1", "t2").unwrap();
    // (2, 5) left the hull (re-simulation: [(1,3), (3,5), (4,7)]).
    assert_eq!((hull.above_points(), hull.below_points()), (3, 0));
    let result = engine.result();
    assert!(transform_of(&result, "t2").is_identity());
    assert_eq!(result.host("t2").unwrap().quality, Incomplete);
}

/// SyncTest.testDisjoint: all of t1 → t2 before all of t2 → t1: approximate at best.
#[test]
fn sync_test_disjoint() {
    let mut engine = SyncEngine::new();
    for (send, recv) in [(1, 3), (2, 5), (3, 5), (4, 7)] {
        add(&mut engine, "t1", send, "t2", recv);
        assert_eq!(engine.pair_quality("t1", "t2"), Incomplete);
    }
    assert_eq!(formula(&engine), "alpha 1 beta 0");
    add(&mut engine, "t2", 7, "t1", 6);
    assert_eq!(engine.pair_quality("t1", "t2"), Approximate);
    assert_eq!(formula(&engine), "alpha 0.9 beta 2.6"); // re-simulation
    add(&mut engine, "t2", 8, "t1", 6);
    assert_eq!(engine.pair_quality("t1", "t2"), Approximate);
    assert_eq!(formula(&engine), "alpha 1 beta 2.5"); // re-simulation
    add(&mut engine, "t2", 10, "t1", 8);
    assert_eq!(engine.pair_quality("t1", "t2"), Approximate);
    assert_eq!(formula(&engine), "alpha 1 beta 2.5");
    // Trace Compass would throw here (slope exactly 1 with offset −2.5 becomes an integer
    // shift); the transform keeps the half ns.
    let tt2 = transform_of(&engine.result(), "t2");
    assert_eq!((tt2.slope(), tt2.offset()), (d("1"), d("-2.5")));
    assert_eq!(tt2.apply(10), 8); // 7.5, to the nearest ns, ties up
}

/// SyncTest.testFullyIncrementalSerialization: the serialised result gives the same
/// transforms (Trace Compass serialises formulas, not hulls; so does the result here).
#[test]
fn sync_test_serialisation() {
    let mut engine = SyncEngine::new();
    for (sender, send, receiver, recv) in [
        ("t2", 1, "t1", 1),
        ("t1", 1, "t2", 3),
        ("t2", 2, "t1", 3),
        ("t1", 3, "t2", 5),
        ("t1", 4, "t2", 8),
        ("t2", 4, "t1", 5),
        ("t2", 4, "t1", 6),
        ("t1", 6, "t2", 7),
    ] {
        add(&mut engine, sender, send, receiver, recv);
    }
    let result = engine.result();
    assert_eq!(engine.pair_quality("t1", "t2"), Accurate);
    let json = serde_json::to_string(&result).unwrap();
    let back: SyncResult = serde_json::from_str(&json).unwrap();
    assert_eq!(back.pairs[0].quality, Accurate);
    assert_eq!(transform_of(&back, "t1"), transform_of(&result, "t1"));
    assert_eq!(transform_of(&back, "t2"), transform_of(&result, "t2"));
    assert_eq!(back, result);
}

struct SyncTracesMatch {
    send: (String, i64),
    recv: (String, i64),
    quality: SyncQuality,
    alpha: Decimal,
    beta: Decimal,
}

fn synctraces_matches() -> Vec<SyncTracesMatch> {
    let quality = |q: &str| serde_json::from_value(serde_json::Value::from(q)).unwrap();
    include_str!("data/synctraces_matches.csv")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            SyncTracesMatch {
                send: (f[0].to_owned(), f[1].parse().unwrap()),
                recv: (f[2].to_owned(), f[3].parse().unwrap()),
                quality: quality(f[4]),
                alpha: d(f[5]),
                beta: d(f[6]),
            }
        })
        .collect()
}

const SCP_SRC: &str = "74715693-28c1-4d0d-bee9-24790a4942b0";
const SCP_DEST: &str = "1a9a454c-b8e8-4c19-b95d-65840be0962f";

/// ExperimentSyncTest.testExperimentSync and MatchAndSyncTest on the synctraces: the 46
/// matches give scp_src the transform Trace Compass asserts, to all 34 digits of slope and
/// offset; scp_dest (whose clock uuid sorts first) is the reference.
#[test]
fn experiment_sync_on_the_synctraces() {
    let matches = synctraces_matches();
    assert_eq!(matches.len(), 46);
    let mut engine = SyncEngine::new();
    for (i, m) in matches.iter().enumerate() {
        engine.add_match((&m.send.0, m.send.1), (&m.recv.0, m.recv.1));
        let hull = engine.pair(SCP_SRC, SCP_DEST).unwrap();
        // Every intermediate state, digit for digit (re-simulation).
        assert_eq!(
            (hull.quality(), hull.alpha(), hull.beta()),
            (m.quality, m.alpha, m.beta),
            "match {i}"
        );
    }
    let result = engine.result();
    assert_eq!(result.matches.accepted, 46);
    assert_eq!(result.reference.as_deref(), Some(SCP_DEST));
    assert!(transform_of(&result, SCP_DEST).is_identity());

    let src = result.host(SCP_SRC).unwrap();
    assert_eq!(src.quality, Accurate);
    assert_eq!(
        src.transform.slope().to_string(),
        "0.9999413783703139011056845831168394"
    );
    assert_eq!(
        src.transform.offset().to_string(),
        "79796507913179.33347660124688298171"
    );

    let pair = &result.pairs[0];
    assert_eq!(
        (pair.reference.as_str(), pair.other.as_str()),
        (SCP_DEST, SCP_SRC)
    );
    assert_eq!(pair.alpha, d("1.000058625066383030723307598788165"));
    assert_eq!(pair.beta, d("-79801185988752.877651439554251"));
    // Re-simulation: the slope spread Trace Compass calls accuracy, 25 of 46 matches entering a
    // hull, 4 points on each hull.
    assert_eq!(pair.slope_spread, d("0.0053767073521642503837834183160000"));
    assert_eq!(
        (pair.hull_entries, pair.below_points, pair.above_points),
        (25, 4, 4)
    );

    // The bound this crate adds: the bounding slopes still differ by 0.54 % after 46 messages
    // over 0.2 s, so the band between the lines is 0.34 ms wide at its ends: 169 µs.
    let bound = src.bound_ns.unwrap();
    assert!((bound - 168_898.543).abs() < 0.01, "bound {bound} ns");
    // Every matched message, mapped into the reference's time, is sent before it is received.
    for m in &matches {
        let to_reference = |(host, ts): &(String, i64)| {
            if host == SCP_SRC {
                src.transform.apply(*ts)
            } else {
                *ts
            }
        };
        assert!(
            to_reference(&m.send) < to_reference(&m.recv),
            "{:?} → {:?}",
            m.send,
            m.recv
        );
    }
}

/// The same matches fed in the other order of hosts within each match cannot happen (a match
/// has a direction), but the pair's reference must not depend on which host spoke first.
#[test]
fn synctraces_reference_does_not_depend_on_who_spoke_first() {
    let matches = synctraces_matches();
    let mut engine = SyncEngine::new();
    // Start with scp_dest's first message, skipping scp_src's.
    for m in matches.iter().skip(1).chain(matches.iter().take(1)) {
        engine.add_match((&m.send.0, m.send.1), (&m.recv.0, m.recv.1));
    }
    let result = engine.result();
    assert_eq!(result.pairs[0].reference, SCP_DEST);
    assert_eq!(result.reference.as_deref(), Some(SCP_DEST));
}

/// Re-simulation only (no Trace Compass test runs it): the vmsync stubs OneQemuKvm, guest and
/// host exchanging six hypercall messages; "guest.xml" sorts first and is the reference.
#[test]
fn one_qemu_kvm_vmsync_stubs() {
    let mut engine = SyncEngine::new();
    let steps = [
        (("guest.xml", 40, "host.xml", 50), Incomplete, "1", "0"),
        (("host.xml", 55, "guest.xml", 65), Incomplete, "1", "0"),
        (
            ("guest.xml", 190, "host.xml", 200),
            Approximate,
            "0.6",
            "26",
        ),
        (
            ("host.xml", 205, "guest.xml", 215),
            Accurate,
            "1.022857142857142857142857142857143",
            "-2.9142857142857142857142857142857",
        ),
        (
            ("guest.xml", 240, "host.xml", 250),
            Accurate,
            "0.9999999999999999999999999999999998",
            "-1.4285714285714285714285714285714",
        ),
        (
            ("host.xml", 255, "guest.xml", 265),
            Accurate,
            "1.012698412698412698412698412698413",
            "-1.9365079365079365079365079365079",
        ),
    ];
    for ((sender, send, receiver, recv), quality, alpha, beta) in steps {
        add(&mut engine, sender, send, receiver, recv);
        let hull = engine.pair("guest.xml", "host.xml").unwrap();
        assert_eq!(
            (hull.quality(), hull.alpha(), hull.beta()),
            (quality, d(alpha), d(beta))
        );
    }
    let host = transform_of(&engine.result(), "host.xml");
    assert_eq!(host.slope(), d("0.9874608150470219435736677115987458"));
    assert_eq!(host.offset(), d("1.912225705329153605015673981191186"));
}

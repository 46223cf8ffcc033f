//! The `requests` scenario and its truth: each request's critical path covers its interval,
//! begins and ends on the vCPU that made it, goes through the thread that completed it, and
//! is cut at instants the traces hold; the interrupt handlers' events read back alike in
//! every format; the same seed writes the same bytes.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{open, read_events, run};
use virtflow_model::ThreadRole;
use virtflow_sim::host::Clock;
use virtflow_sim::truth::paths::{PathPiece, RequestTruth};
use virtflow_sim::truth::Truth;
use virtflow_sim::{Format, Scenario};
use virtflow_trace::Step;

fn show(r: &RequestTruth) -> String {
    let pieces: String = r
        .path
        .iter()
        .map(|p| {
            format!(
                "\n  {} {} {} {:?}/{:?}",
                p.start, p.end, p.state, p.host, p.tid
            )
        })
        .collect();
    format!(
        "{} request of {} over [{}, {}):{pieces}",
        r.kind, r.tid, r.start, r.end
    )
}

/// The thread that completes a request of `kind` made in VM `vm`: it wakes the vCPU.
fn completer(t: &Truth, host: &str, vm: &str, kind: &str) -> u32 {
    let vm = t
        .vms
        .iter()
        .find(|v| v.host == host && v.name == vm)
        .unwrap();
    let helper = |role| vm.threads.iter().find(|h| h.role == role).unwrap().tid;
    match kind {
        "disk" => helper(ThreadRole::IoThread),
        "network" => helper(ThreadRole::Vhost),
        // The last vCPU of the chain.
        "ipi" => vm.vcpus.last().unwrap().tid,
        "nested" => vm.vcpus[1].tid,
        other => panic!("no request kind {other}"),
    }
}

#[test]
fn each_request_path_runs_through_what_completed_it() {
    let (_, t) = run(
        "requests-paths",
        Scenario::Requests,
        Format::Ctf,
        120,
        |_| {},
    );
    let client = t.hosts[0].name.clone();
    let server = t.hosts[1].name.clone();
    for kind in ["disk", "network", "ipi", "nested"] {
        let n = t.requests.iter().filter(|r| r.kind == kind).count();
        assert!(n >= 20, "{n} {kind} requests");
    }
    let states = [
        "running",
        "preempted",
        "blocked",
        "timer",
        "disk",
        "network",
        "interrupt",
        "unknown",
    ];
    for r in &t.requests {
        let what = show(r);
        let own = |p: &PathPiece| p.host.as_ref() == Some(&r.host) && p.tid == Some(r.tid);
        let (first, last) = (&r.path[0], r.path.last().unwrap());
        assert!(r.end > r.start, "{what}");
        assert_eq!((first.start, last.end), (r.start, r.end), "{what}");
        for w in r.path.windows(2) {
            assert_eq!(w[0].end, w[1].start, "contiguous: {what}");
        }
        for p in &r.path {
            assert!(p.end > p.start, "{what}");
            assert!(states.contains(&p.state.as_str()), "{what}");
            // Only a message between hosts is on no thread, and it is network time.
            assert_eq!(p.host.is_none(), p.tid.is_none(), "{what}");
            if p.tid.is_none() {
                assert_eq!((p.state.as_str(), r.kind.as_str()), ("network", "network"));
            }
        }
        // The vCPU runs when it issues the request and when its guest runs on.
        assert!(own(first) && first.state == "running", "{what}");
        assert!(own(last) && last.state == "running", "{what}");
        // Before that: woken, it waited for its CPU; the thread that woke it, the request's
        // completer, ran until then.
        let woken = r.path.iter().rposition(|p| !own(p)).expect(&what);
        let by = &r.path[woken];
        assert_eq!(
            by.tid,
            Some(completer(&t, &r.host, &r.vm, &r.kind)),
            "{what}"
        );
        assert_eq!(by.state, "running", "{what}");
        assert_eq!(r.path[woken + 1].state, "preempted", "{what}");
        match r.kind.as_str() {
            // The I/O thread waited for the device.
            "disk" => assert!(
                r.path.iter().any(|p| p.tid == by.tid && p.state == "disk"),
                "{what}"
            ),
            // The answer came from the server's host, in flight.
            "network" => {
                assert!(
                    r.path.iter().any(|p| p.host.as_ref() == Some(&server)),
                    "{what}"
                );
                assert!(r.path.iter().any(|p| p.tid.is_none()), "{what}");
                assert_eq!(r.host, client);
            }
            _ => assert!(r.path.iter().all(|p| p.host.as_ref() == Some(&client))),
        }
    }
}

/// Every instant of `trace`, on its host's clock.
fn instants(format: Format, trace: &Path) -> BTreeSet<i64> {
    let mut src = open(format, trace);
    let mut out = BTreeSet::new();
    loop {
        match src.advance().expect("the trace reads") {
            Step::Event(h) => {
                out.insert(h.ts);
            }
            Step::Lost(l) => panic!("the simulator loses nothing: {l:?}"),
            Step::End => break,
        }
    }
    out
}

/// The truth's times are on the reference clock, the first host's: each boundary of a path is
/// the time of an event of the first host, or of the second one's on its own clock.
#[test]
fn path_boundaries_are_instants_of_the_traces() {
    let (s, t) = run(
        "requests-instants",
        Scenario::Requests,
        Format::Dat,
        60,
        |_| {},
    );
    let on: Vec<BTreeSet<i64>> = s
        .traces
        .iter()
        .map(|(p, _)| instants(Format::Dat, p))
        .collect();
    let clock = |h: usize| Clock {
        offset_ns: t.hosts[h].clock.offset_ns,
        drift_ppb: ((t.hosts[h].clock.slope - 1.0) * 1e9).round() as i64,
    };
    let (first, second) = (clock(0), clock(1));
    assert_eq!((first.offset_ns, first.drift_ppb), (0, 0), "the reference");
    let is_instant =
        |ns: i64| on[0].contains(&ns) || on[1].contains(&(second.apply(ns as u64) as i64));
    assert!(!t.requests.is_empty());
    for r in &t.requests {
        assert!(
            on[0].contains(&r.start) && on[0].contains(&r.end),
            "{}",
            show(r)
        );
        for p in &r.path {
            assert!(is_instant(p.start) && is_instant(p.end), "{}", show(r));
        }
    }
}

#[test]
fn interrupt_handlers_read_back_alike_in_every_format() {
    let names = [
        "irq_handler_entry",
        "irq_handler_exit",
        "softirq_entry",
        "softirq_exit",
        "irq_softirq_entry",
        "irq_softirq_exit",
    ];
    let fields = ["irq", "name", "ret", "vec"];
    let mut seen = Vec::new();
    for format in [Format::Dat, Format::Ctf, Format::Text] {
        let name = format!("requests-irq-{}", format.name());
        let (s, _) = run(&name, Scenario::Requests, format, 40, |_| {});
        let mut src = open(format, &s.traces[0].0);
        let mut events = read_events(src.as_mut(), &names, &fields);
        for e in &mut events {
            // LTTng's names of the softirq events.
            if let Some(n) = e.name.strip_prefix("irq_softirq") {
                e.name = format!("softirq{n}");
            }
        }
        seen.push(events);
    }
    let events = &seen[0];
    // Disk completions and packets: a hard interrupt, then the softirq it raised.
    for (name, vec) in [("softirq_entry", 4), ("softirq_entry", 3)] {
        assert!(
            events
                .iter()
                .any(|e| e.name == name && e.int("vec") == Some(vec)),
            "{name} {vec}"
        );
    }
    let entries = events
        .iter()
        .filter(|e| e.name == "irq_handler_entry")
        .count();
    let exits = events
        .iter()
        .filter(|e| e.name == "irq_handler_exit" && e.int("ret") == Some(1))
        .count();
    assert!(entries > 20 && entries == exits, "{entries} {exits}");
    assert!(events
        .iter()
        .any(|e| e.str("name") == Some("nvme0q2") && e.int("irq") == Some(45)));
    assert_eq!(seen[0], seen[1], "dat and ctf");
    assert_eq!(seen[0], seen[2], "dat and text");
}

#[test]
fn the_same_seed_writes_the_same_requests() {
    let (a, ta) = run(
        "requests-det-a",
        Scenario::Requests,
        Format::Ctf,
        40,
        |_| {},
    );
    let (b, tb) = run(
        "requests-det-b",
        Scenario::Requests,
        Format::Ctf,
        40,
        |_| {},
    );
    let (_, tc) = run("requests-det-c", Scenario::Requests, Format::Ctf, 40, |c| {
        c.seed = 2
    });
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(read(&a.truth), read(&b.truth));
    for ((p, _), (q, _)) in a.traces.iter().zip(&b.traces) {
        for f in ["metadata", "channel0_0", "channel0_1"] {
            assert_eq!(read(&p.join(f)), read(&q.join(f)), "{f} differs");
        }
    }
    assert_eq!(ta.requests, tb.requests);
    assert_ne!(ta.requests, tc.requests);
}

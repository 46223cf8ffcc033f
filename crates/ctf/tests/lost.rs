//! Discarded events (`events_discarded`) and discarded packets (`packet_seq_num` gaps) appear as
//! `Step::Lost`, as babeltrace2 reports them.
#![allow(clippy::type_complexity)]

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, LostEvents, Step};

fn ours(trace: &Path) -> (Vec<LostEvents>, usize) {
    let mut src = CtfSource::open(trace).unwrap();
    let (mut lost, mut n) = (Vec::new(), 0);
    loop {
        match src.advance().unwrap() {
            Step::Event(_) => n += 1,
            Step::Lost(l) => lost.push(l),
            Step::End => break,
        }
    }
    let st = src.stats();
    assert_eq!(st.lost_notices as usize, lost.len());
    assert_eq!(
        st.lost_events,
        lost.iter().filter_map(|l| l.count).sum::<u64>()
    );
    (lost, n)
}

/// (count of events or None for packets, begin ns, end ns) from babeltrace's warnings.
fn babeltrace_lost(trace: &Path) -> Option<Vec<(Option<u64>, Option<(i128, i128)>)>> {
    let out = Command::new("babeltrace2")
        .arg("--clock-seconds")
        .arg(trace)
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("WARNING: Tracer discarded ") else {
            continue;
        };
        let mut w = rest.split(' ');
        let n: u64 = w.next()?.parse().ok()?;
        let what = w.next()?;
        let range = rest.split_once("between [").and_then(|(_, r)| {
            let (a, r) = r.split_once("] and [")?;
            let (b, _) = r.split_once(']')?;
            Some((secs(a), secs(b)))
        });
        v.push((
            if what.starts_with("event") {
                Some(n)
            } else {
                None
            },
            range,
        ));
    }
    Some(v)
}

fn secs(s: &str) -> i128 {
    let (a, b) = s.split_once('.').unwrap();
    a.parse::<i128>().unwrap() * 1_000_000_000 + b.parse::<i128>().unwrap()
}

#[test]
fn lost_events_and_packets_match_babeltrace() {
    let base = traces().join("ctf-conformance/babeltrace");
    let mut list: Vec<_> = std::fs::read_dir(base.join("packet-seq-num"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    list.sort();
    list.push(base.join("succeed/ev-disc-no-ts-begin-end"));
    let mut total = 0;
    for t in list {
        let (lost, n) = ours(&t);
        eprintln!("{}: {n} events, lost {lost:?}", t.display());
        let Some(mut bt) = babeltrace_lost(&t) else {
            continue;
        };
        let mut got: Vec<(Option<u64>, Option<(i128, i128)>)> = lost
            .iter()
            .map(|l| (l.count, Some((l.begin as i128, l.end as i128))))
            .collect();
        // babeltrace prints no time range when the packets have no timestamps.
        for (g, b) in got.iter_mut().zip(&bt) {
            if b.1.is_none() {
                g.1 = None;
            }
        }
        got.sort();
        bt.sort();
        assert_eq!(got, bt, "{}", t.display());
        total += lost.len();
    }
    assert!(total >= 5);
}

//! Decoding speed against babeltrace2, on `lttng/many-threads` (or `CTF_SPEED_TRACE`).
//! Ignored by default; run it in release mode:
//!
//! ```text
//! cargo test --release -p virtflow-ctf --test speed -- --ignored --nocapture
//! ```
//!
//! Full decode = `value()` of every field of every event; analysis path = `u64` of three
//! `sched_switch` fields, every other event skipped. Times are wall-clock, best of 5, and include
//! opening the trace (metadata parsing), as babeltrace's do.

mod common;
use common::*;
use std::path::Path;
use std::time::Instant;
use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, FieldId, Step};

fn best<F: FnMut() -> u64>(mut f: F) -> (f64, u64) {
    let mut t = f64::MAX;
    let mut n = 0;
    for _ in 0..5 {
        let s = Instant::now();
        n = f();
        t = t.min(s.elapsed().as_secs_f64());
    }
    (t, n)
}

fn full(path: &Path) -> u64 {
    let mut s = CtfSource::open(path).expect("open");
    let (mut n, mut sink) = (0, 0usize);
    loop {
        match s.advance().expect("decode") {
            Step::Event(h) => {
                n += 1;
                s.for_each_value(h.class, &mut |_, v| sink += std::mem::size_of_val(&v));
            }
            Step::Lost(_) => {}
            Step::End => break,
        }
    }
    std::hint::black_box(sink);
    n
}

fn analysis(path: &Path) -> u64 {
    let mut s = CtfSource::open(path).unwrap();
    let mut fields = vec![None; s.classes().len()];
    for c in s.classes_named("sched_switch") {
        let f = |n: &str| s.field(c, n).unwrap_or(FieldId(u32::MAX));
        fields[c.0 as usize] = Some([f("prev_tid"), f("next_tid"), f("prev_state")]);
    }
    s.set_interest(Some(&s.classes_named("sched_switch")));
    let mut acc = 0u64;
    loop {
        match s.advance().unwrap() {
            Step::Event(h) => {
                if let Some(fs) = &fields[h.class.0 as usize] {
                    for f in fs {
                        acc = acc.wrapping_add(s.u64(*f).unwrap_or(0));
                    }
                }
            }
            Step::Lost(_) => {}
            Step::End => break,
        }
    }
    std::hint::black_box(acc);
    // Every event, announced or passed over.
    s.stats().events
}

#[test]
#[ignore]
fn speed_against_babeltrace() {
    let path = std::env::var("CTF_SPEED_TRACE")
        .map(Into::into)
        .unwrap_or_else(|_| traces().join("lttng/many-threads"));
    let (tf, n) = best(|| full(&path));
    let (ta, _) = best(|| analysis(&path));
    println!("{n} events");
    println!(
        "virtflow-ctf full decode:   {:.3}s  {:.2} M events/s",
        tf,
        n as f64 / tf / 1e6
    );
    println!(
        "virtflow-ctf analysis path: {:.3}s  {:.2} M events/s",
        ta,
        n as f64 / ta / 1e6
    );
    let (tb, _) = best(|| {
        let st = std::process::Command::new("babeltrace2")
            .args(["run", "-c", "src:source.ctf.fs", "-p"])
            .arg(format!("inputs=[\"{}\"]", path.display()))
            .args([
                "-c",
                "mux:filter.utils.muxer",
                "-c",
                "sink:sink.utils.dummy",
                "-x",
                "src:mux",
                "-x",
                "mux:sink",
            ])
            .status();
        assert!(st.is_ok_and(|s| s.success()), "babeltrace2 run failed");
        0
    });
    println!(
        "babeltrace2 (sink.utils.dummy): {:.3}s  {:.2} M events/s",
        tb,
        n as f64 / tb / 1e6
    );
    println!(
        "ratios: full decode {:.1}x, analysis path {:.1}x",
        tb / tf,
        tb / ta
    );
}

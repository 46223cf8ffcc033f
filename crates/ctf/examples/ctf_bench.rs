//! Decodes a CTF trace the two ways the speed test measures, for profilers (perf, callgrind):
//!
//! ```text
//! ctf_bench full|analysis|count|open|seek=NS TRACE [REPEAT]
//! ```
//!
//! `full` reads `value()` of every field of every event; `analysis` reads three `sched_switch`
//! fields with `u64()` and skips every other event; `count` announces every event and reads
//! nothing; `open` only opens the trace; `seek=NS`
//! counts the events at or after NS (nanoseconds), starting there with `CtfSource::seek`.

use std::path::Path;
use std::time::Instant;
use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, FieldId, Step};

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
    let mut s = CtfSource::open(path).expect("open");
    let mut fields = vec![None; s.classes().len()];
    for c in s.classes_named("sched_switch") {
        let f = |n: &str| s.field(c, n).unwrap_or(FieldId(u32::MAX));
        fields[c.0 as usize] = Some([f("prev_tid"), f("next_tid"), f("prev_state")]);
    }
    s.set_interest(Some(&s.classes_named("sched_switch")));
    let mut acc = 0u64;
    loop {
        match s.advance().expect("decode") {
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: ctf_bench full|analysis|count|open|seek=NS TRACE [REPEAT]");
        std::process::exit(2);
    }
    let path = Path::new(&args[2]);
    let repeat: u32 = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(1);
    for _ in 0..repeat {
        let t = Instant::now();
        let n = match args[1].as_str() {
            "full" => full(path),
            "analysis" => analysis(path),
            "count" => {
                let mut s = CtfSource::open(path).expect("open");
                let mut n = 0;
                while !matches!(s.advance().expect("decode"), Step::End) {
                    n += 1;
                }
                n
            }
            "open" => {
                CtfSource::open(path).expect("open");
                0
            }
            m if m.starts_with("seek=") => {
                let ts: i64 = m[5..].parse().expect("seek=NS");
                let mut s = CtfSource::open(path).expect("open");
                s.seek(ts).expect("seek");
                let mut n = 0;
                while !matches!(s.advance().expect("decode"), Step::End) {
                    n += 1;
                }
                n
            }
            m => {
                eprintln!("unknown mode {m}");
                std::process::exit(2);
            }
        };
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{}: {n} events in {dt:.3}s, {:.2} M events/s",
            args[1],
            n as f64 / dt / 1e6
        );
    }
}

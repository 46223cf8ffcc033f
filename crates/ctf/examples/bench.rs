//! Measures events/s: full decode (value() of every field) and the analysis path (u64 of three
//! sched_switch fields, other events skipped). `cargo run --release --example bench -- TRACE`
use std::time::Instant;
use virtflow_trace::{EventSource, FieldId, Step};

fn main() {
    let path = std::env::args().nth(1).expect("TRACE");
    let path = std::path::Path::new(&path);
    let reps: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let mode = std::env::args().nth(3).unwrap_or_else(|| "all".into());
    let only = |m: &str| mode == "all" || mode == m;
    let mut best_full = f64::MAX;
    let mut best_an = f64::MAX;
    let mut best_iter = f64::MAX;
    let mut n = 0u64;
    let mut best_open = f64::MAX;
    for _ in 0..reps {
        if only("open") {
        let t = Instant::now();
        let s = virtflow_ctf::CtfSource::open(path).unwrap();
        best_open = best_open.min(t.elapsed().as_secs_f64());
        drop(s);
        }
        // Iterate only.
        if only("iter") {
        let t = Instant::now();
        let mut s = virtflow_ctf::CtfSource::open(path).unwrap();
        let mut k = 0u64;
        while let Step::Event(_) | Step::Lost(_) = s.advance().unwrap() {
            k += 1;
        }
        best_iter = best_iter.min(t.elapsed().as_secs_f64());
        n = k;
        }
        // Full decode.
        if only("full") {
        let t = Instant::now();
        let mut s = virtflow_ctf::CtfSource::open(path).unwrap();
        let nf: Vec<usize> = s.classes().iter().map(|c| c.fields.len()).collect();
        let mut sink = 0usize;
        loop {
            match s.advance().unwrap() {
                Step::Event(h) => {
                    for f in 0..nf[h.class.0 as usize] {
                        if let Some(v) = s.value(FieldId(f as u32)) {
                            sink += std::mem::size_of_val(&v);
                        }
                    }
                }
                Step::Lost(_) => {}
                Step::End => break,
            }
        }
        best_full = best_full.min(t.elapsed().as_secs_f64());
        std::hint::black_box(sink);
        }
        // Analysis path.
        if only("an") {
        let t = Instant::now();
        let mut s = virtflow_ctf::CtfSource::open(path).unwrap();
        let ids = s.classes_named("sched_switch");
        let mut fields = vec![None; s.classes().len()];
        for c in &ids {
            let f = |n: &str| s.field(*c, n).unwrap_or(FieldId(u32::MAX));
            fields[c.0 as usize] = Some([f("prev_tid"), f("next_tid"), f("prev_state")]);
        }
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
        best_an = best_an.min(t.elapsed().as_secs_f64());
        std::hint::black_box(acc);
        }
    }
    println!("open (metadata, mapping, first events) {:.4}s", best_open);
    println!(
        "{n} events; iterate {:.1} M ev/s; full decode {:.2} M ev/s ({:.3}s); analysis path {:.1} M ev/s ({:.4}s)",
        n as f64 / best_iter / 1e6,
        n as f64 / best_full / 1e6,
        best_full,
        n as f64 / best_an / 1e6,
        best_an
    );
}

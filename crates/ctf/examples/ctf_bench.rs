//! Decodes a CTF trace the two ways the speed test measures, for profilers (perf, callgrind):
//!
//! ```text
//! ctf_bench full|analysis|count|open|seek=NS TRACE [REPEAT]
//! ```
//!
//! `full` reads every field of every event (`drain::every_field`); `analysis` reads three
//! `sched_switch` fields, the reader passing over every other class (`drain::some_fields`);
//! `count` announces every event and reads nothing; `open` only opens the trace; `seek=NS`
//! counts the events at or after NS (nanoseconds), starting there with `CtfSource::seek`.
//!
//! With `FLUSH=1` in the environment, 256 MB are written before each run, which empties the
//! processor's caches: a small trace is then read from memory, as a new process finds it,
//! rather than from the cache the previous run left it in.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::Instant;
use virtflow_ctf::CtfSource;
use virtflow_trace::{drain, EventSource, Step};

/// The analysis path: three fields of `sched_switch`, every other class passed over.
const SCHED_SWITCH: &[(&str, &[&[&str]])] = &[(
    "sched_switch",
    &[&["prev_tid"], &["next_tid"], &["prev_state"]],
)];

fn full(path: &Path) -> u64 {
    drain::every_field(&mut CtfSource::open(path).expect("open")).expect("decode")
}

fn analysis(path: &Path) -> u64 {
    drain::some_fields(&mut CtfSource::open(path).expect("open"), SCHED_SWITCH).expect("decode")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: ctf_bench full|analysis|count|open|seek=NS TRACE [REPEAT]");
        std::process::exit(2);
    }
    let path = Path::new(&args[2]);
    let repeat: u32 = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(1);
    let flush_len = if std::env::var_os("FLUSH").is_some() {
        256 << 20
    } else {
        0
    };
    let mut flush = vec![0u8; flush_len];
    for r in 0..repeat {
        for (i, b) in flush.iter_mut().enumerate().step_by(64) {
            *b = (i as u32 + r) as u8;
        }
        std::hint::black_box(&flush);
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
            "{}: {n} events in {dt:.6}s, {:.2} M events/s",
            args[1],
            n as f64 / dt / 1e6
        );
    }
}

//! Decoding speed against babeltrace2, on `lttng/many-threads` (or `CTF_SPEED_TRACE`).
//! Ignored by default; run it in release mode:
//!
//! ```text
//! cargo test --release -p virtflow-ctf --test speed -- --ignored --nocapture
//! ```
//!
//! Full decode = every field of every event (`drain::every_field`); analysis path = three
//! `sched_switch` fields, the reader passing over every other class (`drain::some_fields`). Times
//! are wall-clock, best of 3 to 20 runs (see [`best`]), and include opening the trace (metadata
//! parsing), as babeltrace's
//! do.

/// The allocator the `virtflow` binary runs with: the test measures what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::*;
use std::path::Path;
use std::time::Instant;
use virtflow_ctf::CtfSource;
use virtflow_trace::drain;

/// The best wall-clock time of `f` and what it returned: at least 3 runs, and more (up to 20)
/// while they take less than 2 s in all — a short run is easily disturbed, and the best of
/// several is the undisturbed time. Every reader measured gets the same rule.
fn best<F: FnMut() -> u64>(mut f: F) -> (f64, u64) {
    let (mut t, mut n, mut spent) = (f64::MAX, 0, 0.0);
    for run in 0..20 {
        if run >= 3 && spent > 2.0 {
            break;
        }
        let s = Instant::now();
        n = f();
        let dt = s.elapsed().as_secs_f64();
        t = t.min(dt);
        spent += dt;
    }
    (t, n)
}

/// The analysis path: three fields of `sched_switch`, every other class passed over.
const SCHED_SWITCH: &[(&str, &[&[&str]])] = &[(
    "sched_switch",
    &[&["prev_tid"], &["next_tid"], &["prev_state"]],
)];

fn full(path: &Path) -> u64 {
    drain::every_field(&mut CtfSource::open(path).unwrap()).unwrap()
}

fn analysis(path: &Path) -> u64 {
    drain::some_fields(&mut CtfSource::open(path).unwrap(), SCHED_SWITCH).unwrap()
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

//! Events per second of the `.dat` reader against `trace-cmd report >/dev/null`, on the same
//! file, in one run: `cargo bench -p virtflow-ftrace --bench dat_read [-- FILE…]` (default: the
//! largest `.dat` of the kvm-lab traces).
//!
//! Paths: `decode` (every field of every event as a `Value`), `dump` (the `virtflow dump` text
//! form written to a sink), `analysis` (the integer fields an analysis reads from
//! `sched_switch` and `kvm_exit`, resolved once; other events only advanced over).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use virtflow_ftrace::DatSource;
use virtflow_trace::{ClassId, EventSource, FieldId, Step};

fn best_of<F: FnMut() -> u64>(runs: u32, mut f: F) -> (u64, f64) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (n, best)
}

fn main() {
    let mut files: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .collect();
    if files.is_empty() {
        let lab = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/traces/kvm-lab"
        ));
        let largest = std::fs::read_dir(&lab)
            .expect("kvm-lab traces")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("trace.dat"))
            .filter(|p| p.exists())
            .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .expect("a kvm-lab .dat");
        files.push(largest);
    }
    for path in files {
        measure(&path);
    }
}

fn measure(path: &Path) {
    let runs = 3;
    if std::env::var_os("DAT_BENCH_ANALYSIS_ONLY").is_some() {
        // For profiling the reader alone.
        let (events, t) = best_of(10, || analysis(path));
        println!("analysis: {events} events, {:.0} ev/s", events as f64 / t);
        return;
    }
    let (events, t_decode) = best_of(runs, || full_decode(path));
    let (_, t_dump) = best_of(runs, || dump(path));
    let (_, t_analysis) = best_of(runs, || analysis(path));
    let t_ref = best_of(runs, || {
        let status = Command::new("trace-cmd")
            .arg("report")
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("trace-cmd on the PATH");
        assert!(status.success());
        0
    })
    .1;
    let rate = |t: f64| events as f64 / t;
    let (_, t_open) = best_of(runs, || {
        std::hint::black_box(DatSource::open(path).unwrap());
        0
    });
    println!(
        "{}: {events} events (opening: {:.1} ms)",
        path.display(),
        t_open * 1e3
    );
    println!("  trace-cmd report >/dev/null  {:>12.0} ev/s", rate(t_ref));
    for (name, t) in [
        ("decode (all fields)", t_decode),
        ("dump text to a sink", t_dump),
        ("analysis fields", t_analysis),
    ] {
        println!(
            "  {name:<28} {:>12.0} ev/s  {:>6.1}x trace-cmd",
            rate(t),
            t_ref / t
        );
    }
}

fn full_decode(path: &Path) -> u64 {
    let mut s = DatSource::open(path).unwrap();
    let mut n = 0u64;
    let mut acc = 0usize;
    loop {
        match s.advance().unwrap() {
            Step::End => break,
            Step::Lost(_) => {}
            Step::Event(h) => {
                n += 1;
                let nf = s.classes()[h.class.0 as usize].fields.len();
                for i in 0..nf {
                    if let Some(v) = s.value(FieldId(i as u32)) {
                        acc = acc
                            .wrapping_add(std::hint::black_box(v).as_u64().unwrap_or(1) as usize);
                    }
                }
            }
        }
    }
    std::hint::black_box(acc);
    n
}

fn dump(path: &Path) -> u64 {
    let mut s = DatSource::open(path).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::sink());
    let mut n = 0u64;
    loop {
        match s.advance().unwrap() {
            Step::End => break,
            Step::Lost(_) => {}
            Step::Event(h) => {
                n += 1;
                let class = &s.classes()[h.class.0 as usize];
                write!(
                    out,
                    "{} cpu={} stream={} {}:",
                    h.ts, h.cpu, h.stream, class.name
                )
                .unwrap();
                for (i, f) in class.fields.iter().enumerate() {
                    if let Some(v) = s.value(FieldId(i as u32)) {
                        write!(out, " {}={}", f.name, v).unwrap();
                    }
                }
                writeln!(out).unwrap();
            }
        }
    }
    n
}

fn analysis(path: &Path) -> u64 {
    let mut s = DatSource::open(path).unwrap();
    // Per class: the fields an analysis reads, resolved once.
    let wanted: Vec<Vec<FieldId>> = (0..s.classes().len())
        .map(|c| {
            let class = ClassId(c as u32);
            let names: &[&str] = match s.classes()[c].name.as_str() {
                "sched_switch" => &["prev_pid", "prev_state", "next_pid"],
                "kvm_exit" => &["exit_reason", "vcpu_id", "common_pid"],
                _ => &[],
            };
            names.iter().filter_map(|n| s.field(class, n)).collect()
        })
        .collect();
    let mut n = 0u64;
    let mut acc = 0u64;
    loop {
        match s.advance().unwrap() {
            Step::End => break,
            Step::Lost(_) => {}
            Step::Event(h) => {
                n += 1;
                for f in &wanted[h.class.0 as usize] {
                    acc = acc.wrapping_add(s.u64(*f).unwrap_or(0));
                }
            }
        }
    }
    std::hint::black_box(acc);
    n
}

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
    // The direct formatting writes exactly the `dump` text.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    dump_into(path, &mut a, Some(20_000));
    dump_direct_into(path, &mut b, Some(20_000));
    assert!(a == b, "direct formatting differs from the dump text");
    let (_, t_direct) = best_of(runs, || dump_direct_into(path, &mut std::io::sink(), None));
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
        ("dump text, direct formatting", t_direct),
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
    dump_into(path, &mut std::io::sink(), None)
}

/// The `virtflow dump` text form through `write!` and `Value`'s `Display`, as `dump` does.
fn dump_into(path: &Path, sink: &mut impl Write, limit: Option<u64>) -> u64 {
    let mut s = DatSource::open(path).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, sink);
    let mut n = 0u64;
    loop {
        if limit.is_some_and(|l| n >= l) {
            break;
        }
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

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// The same text as [`dump_into`], with integers and plain strings written directly and
/// integer fields read through the allocation-free accessors: what `dump` could cost.
fn dump_direct_into(path: &Path, sink: &mut impl Write, limit: Option<u64>) -> u64 {
    use virtflow_trace::{FieldKind, Value};
    let mut s = DatSource::open(path).unwrap();
    let mut out: Vec<u8> = Vec::with_capacity(1 << 17);
    let mut n = 0u64;
    loop {
        if limit.is_some_and(|l| n >= l) {
            break;
        }
        match s.advance().unwrap() {
            Step::End => break,
            Step::Lost(_) => {}
            Step::Event(h) => {
                n += 1;
                let class = &s.classes()[h.class.0 as usize];
                push_i64(&mut out, h.ts);
                out.extend_from_slice(b" cpu=");
                push_u64(&mut out, h.cpu as u64);
                out.extend_from_slice(b" stream=");
                push_u64(&mut out, h.stream as u64);
                out.push(b' ');
                out.extend_from_slice(class.name.as_bytes());
                out.push(b':');
                for (i, f) in class.fields.iter().enumerate() {
                    let id = FieldId(i as u32);
                    match f.kind {
                        FieldKind::UInt => {
                            if let Some(v) = s.u64(id) {
                                out.push(b' ');
                                out.extend_from_slice(f.name.as_bytes());
                                out.push(b'=');
                                push_u64(&mut out, v);
                            }
                        }
                        FieldKind::Int => {
                            if let Some(v) = s.i64(id) {
                                out.push(b' ');
                                out.extend_from_slice(f.name.as_bytes());
                                out.push(b'=');
                                push_i64(&mut out, v);
                            }
                        }
                        _ => {
                            if let Some(v) = s.value(id) {
                                out.push(b' ');
                                out.extend_from_slice(f.name.as_bytes());
                                out.push(b'=');
                                match &v {
                                    Value::Str(t)
                                        if t.bytes().all(|b| {
                                            (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\'
                                        }) =>
                                    {
                                        out.push(b'"');
                                        out.extend_from_slice(t.as_bytes());
                                        out.push(b'"');
                                    }
                                    _ => write!(out, "{v}").unwrap(),
                                }
                            }
                        }
                    }
                }
                out.push(b'\n');
                if out.len() >= 1 << 16 {
                    sink.write_all(&out).unwrap();
                    out.clear();
                }
            }
        }
    }
    sink.write_all(&out).unwrap();
    n
}

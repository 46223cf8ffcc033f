//! The integer accessors take shortcuts (direct reads at precomputed offsets, events skipped by
//! size): on every event of real traces, `u64`/`i64` must agree with `value()`, the path the
//! differential test checks against babeltrace2.

mod common;
use common::*;
use std::path::Path;
use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, FieldId, Step, Value};

fn int_of(v: &Value) -> Option<(u64, i64)> {
    match v {
        Value::UInt(u) => Some((*u, *u as i64)),
        Value::Int(i) => Some((*i as u64, *i)),
        Value::Bool(b) => Some((*b as u64, *b as i64)),
        Value::Enum(b, _) => int_of(b),
        _ => None,
    }
}

fn check(path: &Path) -> u64 {
    let mut s = CtfSource::open(path).unwrap_or_else(|e| panic!("{e}"));
    let nf: Vec<usize> = s.classes().iter().map(|c| c.fields.len()).collect();
    let mut ints = 0u64;
    loop {
        match s.advance().unwrap_or_else(|e| panic!("{e}")) {
            Step::Event(h) => {
                for f in 0..nf[h.class.0 as usize] {
                    let f = FieldId(f as u32);
                    let Some((u, i)) = s.value(f).as_ref().and_then(int_of) else {
                        continue;
                    };
                    ints += 1;
                    let name = &s.classes()[h.class.0 as usize].fields[f.0 as usize].name;
                    assert_eq!(
                        s.u64(f),
                        Some(u),
                        "{}: u64 of {name} at {}",
                        path.display(),
                        h.ts
                    );
                    assert_eq!(
                        s.i64(f),
                        Some(i),
                        "{}: i64 of {name} at {}",
                        path.display(),
                        h.ts
                    );
                }
            }
            Step::Lost(_) => {}
            Step::End => break,
        }
    }
    ints
}

#[test]
fn integer_accessors_agree_with_values() {
    let t = traces();
    let mut n = 0;
    for p in [
        "lttng/many-threads",
        "kvm-lab/s3_disk_lttng/lttng",
        "ctf-conformance/babeltrace/succeed/trace-with-index",
    ] {
        let p = t.join(p);
        assert!(p.is_dir(), "missing test trace {}", p.display());
        n += check(&p);
    }
    assert!(n > 100_000, "only {n} integer fields read");
}

/// perf's CTF conversion (perf 4.1 here) puts no `cpu_id` in its packet context: each event's
/// CPU is its `perf_cpu` field, and the header says it.
#[test]
fn perf_conversion_events_are_on_their_perf_cpu() {
    let path = traces().join("perf-ctf/perf-taskset2");
    let mut s = CtfSource::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut cpus = std::collections::BTreeSet::new();
    let mut events = 0;
    loop {
        let h = match s.advance().unwrap() {
            Step::Event(h) => h,
            Step::Lost(_) => continue,
            Step::End => break,
        };
        let f = s.field(h.class, "perf_cpu").expect("perf_cpu");
        assert_eq!(Some(h.cpu as u64), s.u64(f), "at {}", h.ts);
        cpus.insert(h.cpu);
        events += 1;
    }
    assert_eq!(events, 1500);
    assert_eq!(cpus.into_iter().collect::<Vec<_>>(), [0, 1, 3]);
}

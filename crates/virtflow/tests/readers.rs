//! Every real trace in `../shared/traces` through every reading path of its reader —
//! accessors, values, whole events, visits, interest, seek — with identical results
//! (`virtflow_testkit::reader`). The traces are opened as the command line opens them, format
//! detected.

use std::path::{Path, PathBuf};

use virtflow_testkit::reader::check_every_path;

use virtflow_testkit::shared_traces as shared;

/// The trace folders and files under `root`: a folder holding `metadata` is a CTF trace (an
/// LTTng session folder holds several, read as one); `.dat`, `perf.data` and text files are
/// traces of their own.
fn traces_under(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    if entries
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == "metadata"))
    {
        // Metadata without a stream file (babeltrace's succeed4): the command line refuses it
        // as no trace.
        if entries
            .iter()
            .any(|p| p.is_file() && p.file_name().is_some_and(|n| n != "metadata"))
        {
            out.push(root.to_path_buf());
        }
        return;
    }
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            traces_under(&p, out);
        } else if name.ends_with(".dat") || name == "perf.data" || name.ends_with(".txt") {
            if name == "counts.txt" || name.ends_with(".log") {
                continue;
            }
            out.push(p);
        }
    }
}

/// Checks every trace below `root`; `with_events`: each must hold events (some conformance
/// traces hold none, by design).
fn check_all(root: &Path, with_events: bool) -> usize {
    let mut traces = Vec::new();
    traces_under(root, &mut traces);
    for t in &traces {
        let open = || {
            virtflow::input::open_one(t).map_err(|e| {
                match e.downcast::<virtflow_trace::TraceError>() {
                    Ok(te) => te,
                    Err(other) => panic!("{}: {other:#}", t.display()),
                }
            })
        };
        let tally = check_every_path(&t.display().to_string(), &open);
        assert!(
            !with_events || tally.events > 0,
            "{}: no event read",
            t.display()
        );
    }
    traces.len()
}

#[test]
fn real_kernel_traces_read_alike_on_every_path() {
    let root = shared();
    if !root.exists() {
        eprintln!("../shared/traces not present: skipped");
        return;
    }
    let n: usize = ["lttng", "perf-ctf", "host-real", "kvm-lab"]
        .iter()
        .map(|d| check_all(&root.join(d), true))
        .sum();
    assert!(n >= 20, "only {n} traces found");
}

#[test]
fn conformance_traces_read_alike_on_every_path() {
    let root = shared().join("ctf-conformance");
    if !root.exists() {
        eprintln!("../shared/traces not present: skipped");
        return;
    }
    let n = check_all(&root.join("babeltrace/succeed"), false)
        + check_all(&root.join("tracecompass-ctf2"), false);
    assert!(n >= 20, "only {n} traces found");
}

//! A reader told which classes the caller reads passes over the others: the events it announces
//! of those classes must be exactly babeltrace2's, in the same order with the same fields; of
//! the others, it announces only each stream's first (which shows where the trace starts and
//! each CPU appears), and it must still count every event of the trace.

mod common;
use common::*;

fn check(trace: &std::path::Path, names: &[&str]) {
    let Some(bt) = babeltrace(trace) else {
        panic!("babeltrace2 is needed (installed by .ci/run)");
    };
    let bt = bt.expect("babeltrace2 reads the trace");
    let wanted: Vec<Ev> = bt
        .iter()
        .filter(|e| names.contains(&e.name.as_str()))
        .cloned()
        .collect();
    assert!(
        !wanted.is_empty(),
        "{}: no event of {names:?}",
        trace.display()
    );
    let (evs, err, counted) = ours_of(trace, Some(names)).expect("opens");
    assert_eq!(err, None);
    let (evs, others): (Vec<Ev>, Vec<Ev>) = evs
        .into_iter()
        .partition(|e| names.contains(&e.name.as_str()));
    let streams = stream_files(trace);
    assert!(
        others.len() <= streams,
        "{}: {} events of other classes announced, for {streams} streams",
        trace.display(),
        others.len()
    );
    if let Err(e) = compare(&evs, &wanted) {
        panic!("{}: {e}", trace.display());
    }
    assert_eq!(
        counted,
        bt.len() as u64,
        "{}: events counted",
        trace.display()
    );
}

#[test]
fn many_threads_scheduling_and_syscalls() {
    // sched_* bodies are fixed; syscall_entry_open holds a string (the general walk).
    check(
        &traces().join("lttng/many-threads"),
        &[
            "sched_switch",
            "sched_waking",
            "syscall_entry_open",
            "irq_softirq_entry",
        ],
    );
}

#[test]
fn kvm_lab_lttng_kvm_classes() {
    check(
        &traces().join("kvm-lab/s3_disk_lttng/lttng"),
        &[
            "kvm_x86_exit",
            "kvm_x86_entry",
            "sched_switch",
            "block_rq_issue",
        ],
    );
}

/// The stream files of a trace folder (every file but the metadata, the indexes aside).
fn stream_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .map(|p| match p.file_name().and_then(|n| n.to_str()) {
            Some("metadata" | "index") => 0,
            _ if p.is_dir() => stream_files(&p),
            _ => 1,
        })
        .sum()
}

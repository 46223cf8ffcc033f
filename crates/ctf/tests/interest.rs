//! A reader told which classes the caller reads passes over the others: the events it announces
//! must be exactly babeltrace2's events of those classes, in the same order with the same
//! fields, and it must still count every event of the trace.

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

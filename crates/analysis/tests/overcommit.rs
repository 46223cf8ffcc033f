//! Who steals from whom, on real host traces and hand-written ones: the verdict names the VM
//! that took the pCPU, the steal adds up to the vCPUs' preempted and ready time, and the host's
//! runnable vCPUs follow the scheduler's events.

use std::path::PathBuf;

use virtflow_analysis::{analyze, Options};
use virtflow_model::{Culprit, Model};
use virtflow_testkit::ftrace::{entry, exit, switch, waking};
use virtflow_trace::VecSource;

fn lab(path: &str) -> Option<PathBuf> {
    virtflow_testkit::shared_trace(&format!("kvm-lab/{path}"))
}

fn with_series() -> Options {
    Options {
        series: true,
        ..Options::default()
    }
}

/// Two 1-vCPU VMs pinned to one pCPU of a 2-CPU host, both CPU-bound (the lab's s5): each
/// loses about half its time, and its verdict names the other VM and pinning.
fn check_pinned_pair(m: &Model, what: &str) {
    assert_eq!(m.vms.len(), 2, "{what}");
    for (i, vm) in m.vms.iter().enumerate() {
        let other = &m.vms[1 - i];
        let oc = &vm.overcommit;
        assert!(
            oc.steal_share > 0.2,
            "{what}: {} steal {}",
            vm.name,
            oc.steal_share
        );
        let preempted_ready: u64 = vm
            .vcpus
            .iter()
            .map(|v| v.time_ns.preempted + v.time_ns.ready)
            .sum();
        assert_eq!(oc.steal_ns, preempted_ready, "{what}");
        assert!(oc.verdict.starts_with("verdict:"), "{}", oc.verdict);
        assert!(
            oc.verdict.contains(&format!("to VM {}", other.name)),
            "{what}: {}",
            oc.verdict
        );
        assert!(oc.verdict.contains("pinning"), "{what}: {}", oc.verdict);
        // The series add up to the totals.
        assert_eq!(oc.steal.iter().sum::<u64>(), oc.steal_ns, "{what}");
    }
    let ho = &m.hosts[0].overcommit;
    assert_eq!(ho.pcpus, 2);
    assert!(ho.verdict.starts_with("verdict:"));
    // The matrix: each VM preempted mostly by the other.
    let col = |name: &str| {
        ho.matrix
            .preemptors
            .iter()
            .position(|c| *c == Culprit::Vm { name: name.into() })
            .unwrap()
    };
    for (i, vm) in m.vms.iter().enumerate() {
        let row = &ho.matrix.ns[i];
        let other = col(&m.vms[1 - i].name);
        assert_eq!(
            row.iter()
                .enumerate()
                .max_by_key(|(_, ns)| **ns)
                .map(|(j, _)| j),
            Some(other),
            "{what}: {} {row:?}",
            vm.name
        );
    }
}

#[test]
fn the_lab_pair_pinned_to_one_cpu_blames_each_other() {
    let Some(dat) = lab("s5_overcommit/trace.dat") else {
        eprintln!("kvm-lab not present: skipped");
        return;
    };
    let mut src = virtflow_ftrace::DatSource::open(&dat).unwrap();
    check_pinned_pair(&analyze(&mut src, &with_series()).unwrap(), "s5 trace.dat");
    if let Some(lttng) = lab("s5_overcommit_lttng/lttng") {
        let mut src = virtflow_ctf::CtfSource::open(&lttng).unwrap();
        check_pinned_pair(&analyze(&mut src, &with_series()).unwrap(), "s5 LTTng");
    }
}

/// One pCPU, two vCPUs of two VMs taking turns: overcommitted while both are runnable, never
/// while one blocks; runnable vCPU time per bucket sums to what the vCPUs were runnable.
/// Runnable time is the time of runnable states: switched in before its first KVM event, a
/// thread runs in a mode not known yet, which the vCPU's time counts as unknown.
#[test]
fn runnable_vcpus_and_overcommitted_time_follow_the_scheduler() {
    let a = (100, "CPU 0/KVM");
    let b = (200, "CPU 0/KVM");
    let idle = (0, "swapper/0");
    let in_vm = |mut e: virtflow_trace::VecEvent, pid: u64| {
        e.fields
            .push(("common_tgid".into(), virtflow_testkit::ftrace::u(pid)));
        e
    };
    let (va, vb) = (90, 95);
    let events = vec![
        switch(0, 0, idle, 0, b),
        in_vm(entry(10, 0, 200, 0), vb),
        in_vm(exit(500, 0, 200, 12), vb),
        in_vm(switch(600, 0, b, 1, a), vb),
        in_vm(entry(700, 0, 100, 0), va),
        // b woken: two runnable vCPUs on one pCPU from 1 ms.
        in_vm(waking(1_000_000, 0, 100, 200, "CPU 0/KVM"), va),
        in_vm(exit(2_000_000, 0, 100, 1), va),
        in_vm(switch(2_000_100, 0, a, 0, b), va),
        in_vm(entry(2_000_200, 0, 200, 0), vb),
        in_vm(exit(3_000_000, 0, 200, 12), vb),
        // b blocks: only a runnable from 3.0001 ms.
        in_vm(switch(3_000_100, 0, b, 1, a), vb),
        in_vm(entry(3_000_200, 0, 100, 0), va),
        in_vm(exit(5_000_000, 0, 100, 1), va),
    ];
    let m = analyze(&mut VecSource::new(events), &with_series()).unwrap();
    let ho = &m.hosts[0].overcommit;
    assert_eq!(ho.pcpus, 1);
    assert_eq!(ho.max_runnable, 2);
    assert_eq!(ho.overcommitted_ns, 3_000_100 - 1_000_000);
    // a: runnable from its first entry at 700 ns to the end; b: from its first entry at 10 ns
    // until it blocks at 600 ns, then woken at 1 ms until it blocks at 3.0001 ms.
    let runnable: u64 = ho.runnable.iter().sum();
    assert_eq!(
        runnable,
        (5_000_000 - 700) + (600 - 10) + (3_000_100 - 1_000_000)
    );
    assert_eq!(ho.runnable_per_cpu.len(), 1);
    let steal = |pid: u64| {
        &m.vms
            .iter()
            .find(|v| u64::from(v.pid) == pid)
            .unwrap()
            .overcommit
    };
    // a preempted by b from 2.0001 to 3.0001 ms, all while both were runnable.
    assert_eq!(steal(va).steal_ns, 1_000_000);
    assert_eq!(steal(va).while_overcommitted_ns, 1_000_000);
    // b ready from 1 ms to 2.0001 ms; the pCPU never idled meanwhile.
    assert_eq!(steal(vb).steal_ns, 1_000_100);
    assert_eq!(steal(vb).while_overcommitted_ns, 1_000_100);
    assert_eq!(steal(vb).while_cpu_idle_ns, 0);
    assert!(
        steal(va).verdict.contains("overcommitment"),
        "{}",
        steal(va).verdict
    );
}

/// A vCPU halted when the trace began is woken and waits for the pCPU before its first KVM
/// event: it was a vCPU all along, so its wait counts among the runnable vCPUs, makes the host
/// overcommitted, and its steal is split from the wake-up on.
#[test]
fn a_vcpu_counts_from_before_its_first_kvm_event() {
    let a = (100, "CPU 0/KVM");
    let b = (200, "CPU 0/KVM");
    let in_vm = |mut e: virtflow_trace::VecEvent, pid: u64| {
        e.fields
            .push(("common_tgid".into(), virtflow_testkit::ftrace::u(pid)));
        e
    };
    let (va, vb) = (90, 95);
    const MS: i64 = 1_000_000;
    let mut wake_b = in_vm(waking(MS, 0, 100, 200, "CPU 0/KVM"), va);
    wake_b
        .fields
        .push(("target_cpu".into(), virtflow_testkit::ftrace::u(0)));
    let events = vec![
        in_vm(entry(10, 0, 100, 0), va),
        // b, never seen before, woken onto the pCPU a runs on.
        wake_b,
        in_vm(exit(3 * MS, 0, 100, 1), va),
        in_vm(switch(3 * MS + 50, 0, a, 0, b), va),
        // b's first KVM event.
        in_vm(entry(3 * MS + 100, 0, 200, 0), vb),
        in_vm(exit(4 * MS, 0, 200, 12), vb),
        in_vm(switch(4 * MS + 50, 0, b, 1, a), vb),
        in_vm(entry(4 * MS + 100, 0, 100, 0), va),
        in_vm(exit(5 * MS, 0, 100, 1), va),
    ];
    let m = analyze(&mut VecSource::new(events), &with_series()).unwrap();
    let ho = &m.hosts[0].overcommit;
    assert_eq!(ho.max_runnable, 2);
    // Two runnable vCPUs from b's wake-up to its switch-in (a in guest then in the
    // hypervisor, b ready), and from b's entry until it blocks (a preempted, b in guest).
    assert_eq!(
        ho.overcommitted_ns,
        ((3 * MS + 50 - MS) + (4 * MS + 50 - (3 * MS + 100))) as u64
    );
    let runnable: u64 = ho.runnable.iter().sum();
    let a_runnable = (5 * MS - 10) as u64;
    let b_runnable = ((3 * MS + 50 - MS) + (4 * MS + 50 - (3 * MS + 100))) as u64;
    assert_eq!(runnable, a_runnable + b_runnable);
    assert!((ho.mean_runnable * (5 * MS - 10) as f64 - runnable as f64).abs() < 1.0);
    let steal = |pid: u64| {
        &m.vms
            .iter()
            .find(|v| u64::from(v.pid) == pid)
            .unwrap()
            .overcommit
    };
    // b was ready from its wake-up to its switch-in, all of it while overcommitted.
    assert_eq!(steal(vb).steal_ns, (2 * MS + 50) as u64);
    assert_eq!(steal(vb).while_overcommitted_ns, (2 * MS + 50) as u64);
    assert_eq!(steal(vb).steal.iter().sum::<u64>(), (2 * MS + 50) as u64);
    // a was preempted from 3.00005 to 4.00005 ms, overcommitted once b entered its guest.
    assert_eq!(steal(va).steal_ns, MS as u64);
    assert_eq!(
        steal(va).while_overcommitted_ns,
        (4 * MS + 50 - (3 * MS + 100)) as u64
    );
}

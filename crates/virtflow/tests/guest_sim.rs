//! Guest processes and nested guests in `virtflow analyze --json`, against things the
//! analysis did not compute: the simulator's truth (guest time per CR3, from its own
//! knowledge of each run) and `trace-cmd report`'s reading of the same trace.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
mod sim_common;

use sim_common::{scratch, trace_in, virtflow};

use virtflow_model::Model;

fn simulate_and_analyze(scenario: &str, format: &str) -> (PathBuf, serde_json::Value, Model) {
    let dir = scratch("guest-sim", &format!("{scenario}-{format}"));
    let d = dir.to_str().unwrap();
    virtflow(&[
        "simulate",
        scenario,
        "-o",
        d,
        "--format",
        format,
        "--duration",
        "300ms",
    ]);
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let trace = trace_in(&dir);
    let model: Model =
        serde_json::from_slice(&virtflow(&["analyze", "--json", trace.to_str().unwrap()]))
            .expect("analyze --json parses as the model");
    (trace, truth, model)
}

/// Guest time per (VM pid, vCPU, CR3) within 0.1% of the vCPU's guest time of the truth's.
fn check_processes(format: &str) {
    let (_, truth, model) = simulate_and_analyze("processes", format);
    let want = truth["guest_processes"]
        .as_array()
        .expect("the processes scenario's truth has guest_processes");
    assert!(!want.is_empty());
    let mut got: BTreeMap<(u64, u64, u64), (u64, u64)> = BTreeMap::new();
    for vm in &model.vms {
        for v in &vm.vcpus {
            assert!(
                !v.processes.is_empty(),
                "{format}: vCPU {} has no processes",
                v.tid
            );
            let sum: u64 = v.processes.iter().map(|p| p.guest_ns).sum();
            assert!(
                sum <= v.time_ns.guest,
                "{format}: processes exceed guest time"
            );
            let rings = v.guest_kernel_ns + v.guest_user_ns;
            assert!(
                rings <= v.time_ns.guest && rings * 100 >= v.time_ns.guest * 99,
                "{format}: kernel+user {rings} vs guest {}",
                v.time_ns.guest
            );
            for p in &v.processes {
                got.insert(
                    (u64::from(vm.pid), u64::from(v.vcpu), p.cr3),
                    (p.guest_ns, v.time_ns.guest),
                );
            }
        }
    }
    for w in want {
        let key = (
            w["vm_pid"].as_u64().unwrap(),
            w["vcpu"].as_u64().unwrap(),
            w["cr3"].as_u64().unwrap(),
        );
        let want_ns = w["guest_ns"].as_u64().unwrap();
        let (ns, guest) = got
            .remove(&key)
            .unwrap_or_else(|| panic!("{format}: process {key:x?} not found"));
        let tolerance = guest / 1000 + 1;
        assert!(
            ns.abs_diff(want_ns) <= tolerance,
            "{format}: process {key:x?}: {ns} ns, truth {want_ns} ns"
        );
    }
    assert!(
        got.is_empty(),
        "{format}: processes not in the truth: {got:x?}"
    );
}

#[test]
fn processes_scenario_matches_the_truth_dat() {
    check_processes("dat");
}

#[test]
fn processes_scenario_matches_the_truth_ctf() {
    check_processes("ctf");
}

#[test]
fn processes_scenario_matches_the_truth_text() {
    check_processes("text");
}

/// The simulator reports CR3 only at entries into L2 in the `nested` scenario, so
/// `trace-cmd report`'s count of `vcpu_enter_guest` per vCPU is the number of L2 entries.
#[test]
fn nested_scenario_counts_l2_entries_like_trace_cmd() {
    let (trace, _, model) = simulate_and_analyze("nested", "dat");
    let out = Command::new("trace-cmd")
        .args(["report", "-i", trace.to_str().unwrap()])
        .output()
        .expect("trace-cmd (3.1.6) must be installed to check the nested scenario");
    assert!(out.status.success(), "trace-cmd report failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut want: BTreeMap<u32, u64> = BTreeMap::new();
    for line in text.lines().filter(|l| l.contains("vcpu_enter_guest:")) {
        // `CPU 0/KVM-1212 [001] ...`: the thread id ends the task field.
        let task = line.split(" [").next().unwrap_or("");
        let tid: u32 = task
            .rsplit('-')
            .next()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("no tid in {line:?}"));
        *want.entry(tid).or_default() += 1;
    }
    assert!(!want.is_empty(), "no vcpu_enter_guest in the report");
    for vm in &model.vms {
        for v in &vm.vcpus {
            let got: u64 = v.nested.iter().map(|n| n.entries).sum();
            let want = want.get(&v.tid).copied().unwrap_or(0);
            assert!(
                got.abs_diff(want) * 100 <= want,
                "vCPU {}: {got} L2 entries, trace-cmd shows {want} L2 CR3 reports",
                v.tid
            );
            assert!(v.l2_ns > 0 && v.l2_ns < v.time_ns.guest);
            let nested: u64 = v.nested.iter().map(|n| n.guest_ns).sum();
            assert_eq!(nested, v.l2_ns);
        }
    }
}

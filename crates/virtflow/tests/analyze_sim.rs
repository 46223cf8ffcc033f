//! `virtflow analyze` against the simulator's ground truth: for every scenario, each vCPU's
//! time in each state within 0.1% of `truth.json`, and the cause of at least 99% of waits.
//!
//! The simulator writes the truth from its own knowledge of each wake-up (never written into
//! the trace); the analysis only sees the trace.

mod sim_common;

use sim_common::{scratch, trace_in, virtflow};

use virtflow_model::{StateTimes, VcpuState};

/// The states compared: waiting as a whole (its causes are checked wait by wait).
fn states(t: &StateTimes) -> [(&'static str, u64); 6] {
    [
        ("guest", t.guest),
        ("hypervisor", t.hypervisor),
        ("preempted", t.preempted),
        ("ready", t.ready),
        ("waiting", t.waiting.total()),
        ("unknown", t.unknown),
    ]
}

fn check(scenario: &str, format: &str, duration: &str) {
    let dir = scratch("analyze-sim", &format!("{scenario}-{format}"));
    let d = dir.to_str().unwrap();
    virtflow(&[
        "simulate",
        scenario,
        "-o",
        d,
        "--format",
        format,
        "--duration",
        duration,
    ]);
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let truth_vms: Vec<virtflow_model::Vm> =
        serde_json::from_value(truth["vms"].clone()).expect("truth.json holds model VMs");
    let trace = trace_in(&dir);
    let model: virtflow_model::Model = serde_json::from_slice(&virtflow(&[
        "analyze",
        "--json",
        "--intervals",
        trace.to_str().unwrap(),
    ]))
    .unwrap();
    let what = format!("{scenario} ({format})");
    assert_eq!(
        model.vms.iter().map(|v| v.pid).collect::<Vec<_>>(),
        truth_vms.iter().map(|v| v.pid).collect::<Vec<_>>(),
        "{what}: VM pids"
    );
    let (mut waits, mut agreed) = (0usize, 0usize);
    for tvm in &truth_vms {
        let vm = model.vms.iter().find(|v| v.pid == tvm.pid).unwrap();
        for tv in &tvm.vcpus {
            let v = vm
                .vcpus
                .iter()
                .find(|v| v.tid == tv.tid)
                .unwrap_or_else(|| panic!("{what}: vCPU thread {} not found", tv.tid));
            assert_eq!(v.vcpu, tv.vcpu, "{what}: number of vCPU thread {}", tv.tid);
            let span = tv.time_ns.total().max(1) as f64;
            for ((name, want), (_, got)) in states(&tv.time_ns).iter().zip(states(&v.time_ns)) {
                let err = (got as f64 - *want as f64).abs() / span;
                assert!(
                    err <= 0.001,
                    "{what}: vCPU {} {name}: {got} ns, truth {want} ns ({:.3}% of the span)",
                    tv.tid,
                    err * 100.0
                );
            }
            for t in &tv.intervals {
                let VcpuState::Waiting { cause } = t.state else {
                    continue;
                };
                waits += 1;
                let ours = v
                    .intervals
                    .iter()
                    .find(|i| i.start == t.start && i.end == t.end);
                if ours.is_some_and(|i| i.state == VcpuState::Waiting { cause }) {
                    agreed += 1;
                }
            }
        }
    }
    assert!(
        agreed as f64 >= 0.99 * waits as f64,
        "{what}: {agreed} of {waits} wait causes agree with the truth"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_scenario_matches_its_truth() {
    // One format per scenario, all three formats on the disk scenario; on all cores.
    // Long enough for a few hundred waits, so that 99% is a meaningful bar.
    let cases = [
        ("idle", "dat", "1s"),
        ("cpu", "ctf", "500ms"),
        ("disk", "dat", "500ms"),
        ("disk", "ctf", "500ms"),
        ("disk", "text", "500ms"),
        ("net", "ctf", "500ms"),
        ("mixed", "dat", "500ms"),
        ("overcommit", "text", "2s"),
        ("processes", "dat", "500ms"),
        ("nested", "ctf", "500ms"),
    ];
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((scenario, format, duration)) = cases.get(i) else {
                    break;
                };
                check(scenario, format, duration);
            });
        }
    });
}

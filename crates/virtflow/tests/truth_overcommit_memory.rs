//! `virtflow analyze` against the simulator's truth of pCPU sharing and host memory: for the
//! `overcommit`, `memory` and `phases` scenarios in each format (and two others for the
//! verdict's other causes), the host's runnable vCPUs, time overcommitted and matrix of who
//! preempted whom, each VM's steal and its split, the page ledger's figures and every series,
//! compared with `truth.json`; and each VM's verdict names the cause of its steal the
//! simulator knows.
//!
//! The truth follows the events the trace holds, by the definitions of `virtflow-sim`'s
//! `truth` module (`overcommit.rs`, `memory.rs`, `series.rs`), which are the analysis's: every
//! figure is compared exactly, to the nanosecond and the byte, and the ratios (mean runnable
//! vCPUs, steal share) to 1e-12, their rounding. No figure depends on what only the simulator
//! knows, so none needs the 0.1% the vCPU states are allowed in `analyze_sim`.
//!
//! The verdict's cause is compared, not its culprit: the truth sums, for each task, the time
//! it was current on the pCPU a vCPU waited for; the analysis charges a preemption to the task
//! switched in and a wait after a wake-up to the task switched out for the vCPU — the same
//! kind of task, but not always the same one when several take turns.

mod sim_common;

use sim_common::{scratch, trace_in, virtflow};

use serde_json::Value;
use virtflow_model::{Buckets, HostMemory, HostOvercommit, Model, Vm, VmMemory, VmOvercommit};

/// One scenario simulated for 2 s and analysed with its series.
struct Run {
    what: String,
    truth: Value,
    model: Model,
}

fn run(scenario: &str, format: &str) -> Run {
    let dir = scratch("truth-oc-mem", &format!("{scenario}-{format}"));
    let d = dir.to_str().unwrap();
    virtflow(&[
        "simulate",
        scenario,
        "-o",
        d,
        "--format",
        format,
        "--duration",
        "2s",
    ]);
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let trace = trace_in(&dir);
    // `--intervals` keeps the series too.
    let model: Model = serde_json::from_slice(&virtflow(&[
        "analyze",
        "--json",
        "--intervals",
        trace.to_str().unwrap(),
    ]))
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        what: format!("{scenario} ({format})"),
        truth,
        model,
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).expect("truth.json holds the model's types")
}

/// The truth's VMs: pid, sharing and memory (a truth VM's `phases` are the simulator's
/// workload plan, not the model's phases).
fn truth_vms(truth: &Value) -> Vec<(u32, VmOvercommit, VmMemory)> {
    truth["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["pid"].as_u64().unwrap() as u32,
                parse(&v["overcommit"]),
                parse(&v["memory"]),
            )
        })
        .collect()
}

/// The analysis's VM of this pid.
fn vm(r: &Run, pid: u32) -> &Vm {
    r.model
        .vms
        .iter()
        .find(|v| v.pid == pid)
        .unwrap_or_else(|| panic!("{}: VM {pid} not found", r.what))
}

/// Equal series, with the first bucket that differs when not.
fn same_series(what: &str, got: &[u64], want: &[u64]) {
    assert_eq!(got.len(), want.len(), "{what}: buckets");
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: bucket {i} holds {}, truth {} ({} buckets differ)",
            got[i],
            want[i],
            (0..want.len()).filter(|&i| got[i] != want[i]).count()
        );
    }
}

fn check_overcommit(r: &Run) {
    let what = &r.what;
    let th = &r.truth["hosts"][0];
    let host = &r.model.hosts[0];
    let buckets: Buckets = parse(&th["buckets"]);
    assert_eq!(host.buckets, Some(buckets), "{what}: buckets");
    let want: HostOvercommit = parse(&th["overcommit"]);
    let got = &host.overcommit;
    assert!(
        want.overcommitted_ns > 0,
        "{what}: the scenario overcommits"
    );
    // The same definitions on the same events: equal.
    assert_eq!(got.pcpus, want.pcpus, "{what}: pCPUs");
    assert_eq!(got.max_runnable, want.max_runnable, "{what}: most runnable");
    assert_eq!(
        got.overcommitted_ns, want.overcommitted_ns,
        "{what}: time overcommitted"
    );
    // Runnable vCPU time over the same span: equal up to the division's rounding.
    assert!(
        (got.mean_runnable - want.mean_runnable).abs() <= 1e-12 * want.mean_runnable,
        "{what}: mean runnable {} vs {}",
        got.mean_runnable,
        want.mean_runnable
    );
    same_series(&format!("{what}: runnable"), &got.runnable, &want.runnable);
    assert_eq!(got.runnable_per_cpu.len(), want.runnable_per_cpu.len());
    for (c, (g, w)) in got
        .runnable_per_cpu
        .iter()
        .zip(&want.runnable_per_cpu)
        .enumerate()
    {
        same_series(&format!("{what}: runnable on CPU {c}"), g, w);
    }
    assert_eq!(got.matrix, want.matrix, "{what}: who preempted whom");

    for (pid, w, _) in truth_vms(&r.truth) {
        let g = &vm(r, pid).overcommit;
        let name = format!("{what}: VM {pid}");
        assert_eq!(g.steal_ns, w.steal_ns, "{name}: steal");
        assert!(
            (g.steal_share - w.steal_share).abs() <= 1e-12,
            "{name}: steal share {} vs {}",
            g.steal_share,
            w.steal_share
        );
        assert_eq!(
            g.while_overcommitted_ns, w.while_overcommitted_ns,
            "{name}: steal while overcommitted"
        );
        assert_eq!(
            g.while_cpu_idle_ns, w.while_cpu_idle_ns,
            "{name}: steal while a pCPU idled"
        );
        same_series(&format!("{name}: steal"), &g.steal, &w.steal);
        assert_eq!(
            g.steal.iter().sum::<u64>(),
            g.steal_ns,
            "{name}: steal series"
        );
    }
}

fn check_memory(r: &Run) {
    let what = &r.what;
    let want: HostMemory = parse(&r.truth["hosts"][0]["memory"]);
    let got = &r.model.hosts[0].memory;
    assert!(want.traced && got.traced, "{what}: page events");
    // The ledger's rules are the same: every figure equal to the byte.
    assert_eq!(
        got.allocated_bytes, want.allocated_bytes,
        "{what}: allocated"
    );
    assert_eq!(got.freed_bytes, want.freed_bytes, "{what}: freed");
    assert_eq!(
        got.freed_unowned_bytes, want.freed_unowned_bytes,
        "{what}: freed, allocated before the trace"
    );
    assert_eq!(got.net_bytes, want.net_bytes, "{what}: net");
    assert_eq!(got.ledger_pages, want.ledger_pages, "{what}: ledger pages");
    assert_eq!(
        got.ledger_peak_pages, want.ledger_peak_pages,
        "{what}: ledger peak"
    );
    assert_eq!(got.ksm_merged_pages, want.ksm_merged_pages, "{what}: KSM");
    same_series(
        &format!("{what}: allocated"),
        &got.allocated,
        &want.allocated,
    );
    same_series(&format!("{what}: freed"), &got.freed, &want.freed);
    // The scenario frees pages older than the trace, and batches whose every page has its
    // `mm_page_free` before its `mm_page_free_batched`.
    assert!(want.freed_unowned_bytes > 0, "{what}");

    let mut merged = 0;
    for (pid, _, w) in truth_vms(&r.truth) {
        let g = &vm(r, pid).memory;
        let name = format!("{what}: VM {pid}");
        assert!(w.allocated_bytes > 0, "{name} allocates");
        assert_eq!(g.allocated_bytes, w.allocated_bytes, "{name}: allocated");
        assert_eq!(g.freed_bytes, w.freed_bytes, "{name}: freed");
        assert_eq!(g.net_bytes, w.net_bytes, "{name}: net");
        assert_eq!(g.peak_bytes, w.peak_bytes, "{name}: peak");
        assert_eq!(g.ksm_merged_pages, w.ksm_merged_pages, "{name}: KSM");
        same_series(&format!("{name}: allocated"), &g.allocated, &w.allocated);
        same_series(&format!("{name}: freed"), &g.freed, &w.freed);
        merged += w.ksm_merged_pages;
    }
    // LTTng has no KSM events; the other formats hold ksmd's merges.
    if !what.contains("ctf") {
        assert!(merged > 0, "{what}: KSM merges");
    }
}

/// The truth's cause of a VM's steal as the verdict words it.
fn verdict_cause(verdict: &str) -> &'static str {
    if verdict.contains("lost little to sharing") {
        "none"
    } else if verdict.contains("cause: its own helper threads") {
        "own_helpers"
    } else if verdict.contains("cause: overcommitment")
        || verdict.contains("cause: its own vCPUs outnumber")
        || verdict.contains("cause: sharing pCPUs with VM")
    {
        // Other VMs' or its own vCPUs wanted the same pCPUs.
        "overcommitment"
    } else if verdict.contains("cause: a noisy host process")
        || verdict.contains("cause: kernel thread")
    {
        "host_process"
    } else if verdict.contains("cause: pinning") {
        "pinning"
    } else {
        "no cause"
    }
}

fn check_verdicts(r: &Run) {
    let what = &r.what;
    let causes = r.truth["overcommit_causes"].as_array().unwrap();
    assert_eq!(causes.len(), r.model.vms.len(), "{what}: a cause per VM");
    for c in causes {
        let pid = c["pid"].as_u64().unwrap() as u32;
        let want = c["cause"].as_str().unwrap();
        let verdict = &vm(r, pid).overcommit.verdict;
        assert!(verdict.starts_with("verdict:"), "{what}: {verdict}");
        assert_eq!(
            verdict_cause(verdict),
            want,
            "{what}: VM {pid}, whose steal the truth puts down to {want} ({}): {verdict}",
            c["culprit"]
        );
        // Who held its pCPUs is named: a VM for overcommitment, the task for a host process.
        let culprit = c["culprit"].as_str().unwrap();
        match want {
            "overcommitment" => assert!(verdict.contains("went to VM "), "{what}: {verdict}"),
            "host_process" => assert!(
                verdict.contains(&format!("went to host process {culprit}")),
                "{what}: {verdict}"
            ),
            _ => {}
        }
    }
}

/// Runs the cases two at a time (the binary is single-threaded).
fn each(cases: &[(&str, &str)], check: impl Fn(&Run) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((scenario, format)) = cases.get(i) else {
                    break;
                };
                check(&run(scenario, format));
            });
        }
    });
}

#[test]
fn overcommitment_and_memory_match_the_truth() {
    each(
        &[
            ("overcommit", "dat"),
            ("overcommit", "ctf"),
            ("overcommit", "text"),
            ("memory", "dat"),
            ("memory", "ctf"),
            ("memory", "text"),
            ("phases", "dat"),
            ("phases", "ctf"),
        ],
        |r| {
            check_overcommit(r);
            check_verdicts(r);
            if r.what.starts_with("memory") {
                check_memory(r);
            }
        },
    );
}

/// Scenarios whose VMs lose little (disk) or lose to a host process (processes): the
/// verdicts' other causes.
#[test]
fn verdicts_name_the_true_cause() {
    each(&[("disk", "dat"), ("processes", "ctf")], check_verdicts);
}

//! The truth's new figures add up and agree with what the trace shows: the page ledger
//! replayed from the events the project's reader gives, the pCPU sharing swept from the vCPU
//! intervals, the series against the bucket rule, and each VM's workload phases.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{open, read_events, run};
use virtflow_model::{Buckets, Culprit, VcpuState};
use virtflow_sim::truth::series::{bucket_rule, spread};
use virtflow_sim::truth::Truth;
use virtflow_sim::{phase_plan, Format, Scenario};

fn vm_of_tid(t: &Truth) -> HashMap<i64, usize> {
    let mut m = HashMap::new();
    for (i, vm) in t.vms.iter().enumerate() {
        for v in &vm.vcpus {
            m.insert(v.tid as i64, i);
        }
        for h in &vm.threads {
            m.insert(h.tid as i64, i);
        }
    }
    m
}

fn sum(v: &[u64]) -> u64 {
    v.iter().sum()
}

#[test]
fn memory_truth_is_the_ledger_of_the_events_read_back() {
    let (s, t) = run("memory-ledger", Scenario::Memory, Format::Dat, 600, |_| {});
    let mut src = open(Format::Dat, &s.traces[0].0);
    let events = read_events(
        src.as_mut(),
        &[
            "mm_page_alloc",
            "mm_page_free",
            "mm_page_free_batched",
            "ksm_enter",
            "ksm_merge_one_page",
        ],
        &["pfn", "order", "mm", "err"],
    );
    let host = &t.hosts[0];
    let b = host.buckets.expect("buckets");
    assert_eq!(b, bucket_rule(host.start_ns, host.end_ns));
    let owner = vm_of_tid(&t);
    let n = t.vms.len();

    // The rules, replayed.
    #[derive(Default, Clone)]
    struct M {
        alloc: u64,
        freed: u64,
        ksm: u64,
        alloc_s: Vec<u64>,
        freed_s: Vec<u64>,
    }
    let zero = M {
        alloc_s: vec![0; b.count],
        freed_s: vec![0; b.count],
        ..M::default()
    };
    let mut vms = vec![zero.clone(); n];
    let mut hostm = zero;
    let (mut unowned, mut host_freed, mut peak_pages) = (0u64, 0u64, 0usize);
    let mut ledger: HashMap<i128, Option<usize>> = HashMap::new();
    let mut mms: HashMap<i128, Option<usize>> = HashMap::new();
    let (mut freed_by_others, mut freed_by_main, mut batched) = (0, 0, 0);
    for e in &events {
        let bi = b.index(e.ts);
        let vm = owner.get(&e.tid).copied();
        match e.name.as_str() {
            "mm_page_alloc" => {
                let bytes = 4096u64 << e.int("order").unwrap();
                hostm.alloc += bytes;
                hostm.alloc_s[bi] += bytes;
                if let Some(v) = vm {
                    let m = &mut vms[v];
                    m.alloc += bytes;
                    m.alloc_s[bi] += bytes;
                }
                ledger.insert(e.int("pfn").unwrap(), vm);
                peak_pages = peak_pages.max(ledger.len());
            }
            "mm_page_free" => {
                let bytes = 4096u64 << e.int("order").unwrap();
                match ledger.remove(&e.int("pfn").unwrap()) {
                    Some(owner_vm) => {
                        host_freed += bytes;
                        hostm.freed_s[bi] += bytes;
                        if let Some(v) = owner_vm {
                            let m = &mut vms[v];
                            m.freed += bytes;
                            m.freed_s[bi] += bytes;
                            if vm != Some(v) {
                                freed_by_others += 1;
                            } else if t.vms[v].pid as i64 == e.tid {
                                freed_by_main += 1;
                            }
                        }
                    }
                    None => unowned += bytes,
                }
            }
            // Follows the mm_page_free of the same page: nothing more is freed.
            "mm_page_free_batched" => batched += 1,
            "ksm_enter" => {
                mms.insert(e.int("mm").unwrap(), vm);
            }
            "ksm_merge_one_page" if e.int("err") == Some(0) => {
                hostm.ksm += 1;
                if let Some(Some(v)) = mms.get(&e.int("mm").unwrap()) {
                    vms[*v].ksm += 1;
                }
            }
            _ => {}
        }
    }
    assert!(freed_by_others > 0 && freed_by_main > 0 && batched > 0 && unowned > 0);

    let hm = &host.memory;
    assert!(hm.traced);
    assert_eq!(hm.allocated_bytes, hostm.alloc);
    assert_eq!(hm.freed_bytes, host_freed);
    assert_eq!(hm.freed_unowned_bytes, unowned);
    assert_eq!(
        hm.net_bytes,
        hm.allocated_bytes as i64 - hm.freed_bytes as i64
    );
    assert_eq!(hm.ledger_pages, ledger.len() as u64);
    assert_eq!(hm.ledger_peak_pages, peak_pages as u64);
    assert_eq!(hm.ksm_merged_pages, hostm.ksm);
    assert_eq!(hm.allocated, hostm.alloc_s);
    assert_eq!(hm.freed, hostm.freed_s);
    assert_eq!(sum(&hm.allocated), hm.allocated_bytes);
    assert_eq!(sum(&hm.freed), hm.freed_bytes);
    // The host's totals: its VMs', plus what host tasks allocated and freed (the unowned
    // frees apart).
    let vm_alloc: u64 = t.vms.iter().map(|v| v.memory.allocated_bytes).sum();
    let vm_freed: u64 = t.vms.iter().map(|v| v.memory.freed_bytes).sum();
    assert!(hm.allocated_bytes > vm_alloc && hm.freed_bytes > vm_freed);
    let host_own = hm.allocated_bytes - vm_alloc;
    let host_own_freed = hm.freed_bytes - vm_freed;
    let vm_net: i64 = t.vms.iter().map(|v| v.memory.net_bytes).sum();
    assert_eq!(
        hm.net_bytes,
        vm_net + host_own as i64 - host_own_freed as i64
    );
    for (i, vm) in t.vms.iter().enumerate() {
        let (m, want) = (&vm.memory, &vms[i]);
        assert_eq!(m.allocated_bytes, want.alloc, "{}", vm.name);
        assert_eq!(m.freed_bytes, want.freed, "{}", vm.name);
        assert_eq!(m.net_bytes, m.allocated_bytes as i64 - m.freed_bytes as i64);
        // The most held at the end of a bucket.
        let mut held = 0i64;
        let mut peak = 0i64;
        for (a, f) in want.alloc_s.iter().zip(&want.freed_s) {
            held += *a as i64 - *f as i64;
            peak = peak.max(held);
        }
        assert_eq!(m.peak_bytes, peak);
        assert!(m.peak_bytes >= m.net_bytes);
        assert_eq!(m.ksm_merged_pages, want.ksm);
        assert!(m.ksm_merged_pages > 0, "{} has merges", vm.name);
        assert_eq!(m.allocated, want.alloc_s);
        assert_eq!(m.freed, want.freed_s);
        assert_eq!(sum(&m.allocated), m.allocated_bytes);
        assert_eq!(sum(&m.freed), m.freed_bytes);
    }
    assert_eq!(
        hm.ksm_merged_pages,
        t.vms.iter().map(|v| v.memory.ksm_merged_pages).sum::<u64>()
    );
}

/// Runnable and steal stretches swept from the vCPU intervals.
struct Sweep {
    runnable_ns: u64,
    over_ns: u64,
    max_runnable: u64,
    /// Per VM: steal while overcommitted.
    while_over: Vec<u64>,
    runnable_series: Vec<u64>,
}

fn sweep(t: &Truth, b: &Buckets, pcpus: u64) -> Sweep {
    // (time, Δrunnable, vm, Δsteal)
    let mut marks: Vec<(i64, i64, usize, i64)> = Vec::new();
    let mut series = vec![0u64; b.count];
    for (vi, vm) in t.vms.iter().enumerate() {
        for v in &vm.vcpus {
            for i in &v.intervals {
                let (run, steal) = match i.state {
                    VcpuState::Preempted { .. } | VcpuState::Ready => (1, 1),
                    VcpuState::Waiting { .. } | VcpuState::Unknown => (0, 0),
                    _ => (1, 0),
                };
                if run == 1 {
                    marks.push((i.start, 1, vi, steal));
                    marks.push((i.end, -1, vi, -steal));
                    for (k, v) in spread(b, i.start, i.end, (i.end - i.start) as u64) {
                        series[k] += v;
                    }
                }
            }
        }
    }
    marks.sort_by_key(|m| (m.0, m.1));
    let mut out = Sweep {
        runnable_ns: 0,
        over_ns: 0,
        max_runnable: 0,
        while_over: vec![0; t.vms.len()],
        runnable_series: series,
    };
    let (mut r, mut steal, mut at) = (0i64, vec![0i64; t.vms.len()], marks[0].0);
    for (ts, dr, vm, ds) in marks {
        let d = (ts - at) as u64;
        if d > 0 {
            out.runnable_ns += r as u64 * d;
            out.max_runnable = out.max_runnable.max(r as u64);
            if r as u64 > pcpus {
                out.over_ns += d;
                for (w, s) in out.while_over.iter_mut().zip(&steal) {
                    *w += *s as u64 * d;
                }
            }
        }
        at = ts;
        r += dr;
        steal[vm] += ds;
    }
    out
}

fn check_sharing(name: &str, scenario: Scenario, ms: u64) -> Truth {
    let (_, t) = run(name, scenario, Format::Dat, ms, |_| {});
    let host = &t.hosts[0];
    let b = host.buckets.expect("buckets");
    assert_eq!(b, bucket_rule(host.start_ns, host.end_ns));
    let o = &host.overcommit;
    assert_eq!(o.pcpus, host.cpus);
    let sw = sweep(&t, &b, o.pcpus as u64);
    let span = (host.end_ns - host.start_ns) as f64;
    assert_eq!(o.overcommitted_ns, sw.over_ns, "{name}");
    assert_eq!(o.max_runnable as u64, sw.max_runnable, "{name}");
    assert!((o.mean_runnable - sw.runnable_ns as f64 / span).abs() < 1e-9);
    assert_eq!(o.runnable, sw.runnable_series, "{name}");
    assert_eq!(o.runnable_per_cpu.len(), host.cpus as usize);
    for (k, v) in o.runnable.iter().enumerate() {
        assert_eq!(*v, o.runnable_per_cpu.iter().map(|c| c[k]).sum::<u64>());
    }
    let names: Vec<String> = t
        .vms
        .iter()
        .map(|v| format!("qemu-system-x86/{}", v.pid))
        .collect();
    assert_eq!(o.matrix.victims, names);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(o.matrix.preemptors[i], Culprit::Vm { name: n.clone() });
    }
    for (vi, vm) in t.vms.iter().enumerate() {
        let vo = &vm.overcommit;
        let steal: u64 = vm
            .vcpus
            .iter()
            .map(|v| v.time_ns.preempted + v.time_ns.ready)
            .sum();
        let observed: u64 = vm
            .vcpus
            .iter()
            .map(|v| v.time_ns.total() - v.time_ns.unknown)
            .sum();
        assert_eq!(vo.steal_ns, steal, "{name} {}", vm.name);
        assert_eq!(sum(&vo.steal), steal);
        assert_eq!(vo.steal.len(), b.count);
        assert!((vo.steal_share - steal as f64 / observed as f64).abs() < 1e-12);
        assert_eq!(
            vo.while_overcommitted_ns, sw.while_over[vi],
            "{name} {}",
            vm.name
        );
        assert!(vo.while_cpu_idle_ns <= steal);
        assert!(vo.verdict.is_empty());
        let preempted: u64 = vm.vcpus.iter().map(|v| v.time_ns.preempted).sum();
        assert_eq!(sum(&o.matrix.ns[vi]), preempted, "{name} {}", vm.name);
    }
    assert_eq!(t.overcommit_causes.len(), t.vms.len());
    t
}

#[test]
fn sharing_truth_agrees_with_the_intervals() {
    let t = check_sharing("share-over", Scenario::Overcommit, 500);
    let o = &t.hosts[0].overcommit;
    assert!(o.overcommitted_ns > 0 && o.max_runnable > o.pcpus);
    // The host process `backup` took its share, after the VMs.
    assert!(
        o.matrix.preemptors[t.vms.len()..].contains(&Culprit::HostProcess {
            comm: "backup".into()
        })
    );
    for c in &t.overcommit_causes {
        assert_eq!(c.cause, "overcommitment", "{c:?}");
        assert!(c.culprit.starts_with("qemu-system-x86/"));
    }
    // Three pCPUs for four VMs, some of them idle now and then.
    let t = check_sharing("share-mixed", Scenario::Mixed, 400);
    assert!(t.vms.iter().any(|v| v.overcommit.while_cpu_idle_ns > 0));
    let t = check_sharing("share-memory", Scenario::Memory, 300);
    assert!(t.hosts[0].overcommit.matrix.preemptors.iter().any(
        |p| matches!(p, Culprit::KernelThread { comm } if comm == "ksmd" || comm == "kswapd0")
    ));
    // One VM alone on enough pCPUs steals (almost) nothing.
    let t = check_sharing("share-idle", Scenario::Idle, 300);
    assert_eq!(t.overcommit_causes[0].cause, "none");
}

#[test]
fn phases_tile_each_vm_span_and_change_what_it_does() {
    let ms = 1_800;
    let (_, t) = run("phases", Scenario::Phases, Format::Dat, ms, |_| {});
    let host = &t.hosts[0];
    for (i, vm) in t.vms.iter().enumerate() {
        assert_eq!(vm.workload, None, "a phased VM has no single workload");
        let plan = phase_plan(i, ms * 1_000_000);
        let p = &vm.phases;
        assert_eq!(p.len(), plan.len(), "{}", vm.name);
        assert_eq!(p[0].start, host.start_ns);
        assert_eq!(p.last().unwrap().end, host.end_ns);
        for w in p.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        for (ph, (after, w)) in p.iter().zip(&plan) {
            assert_eq!(ph.workload, w.name());
            if *after > 0 {
                assert_eq!(ph.start, 10_000_000_000 + *after as i64);
            }
        }
        // Per phase: guest share, and where the disk and network waits fall.
        let mut by: BTreeMap<usize, (u64, u64, u64, u64)> = BTreeMap::new();
        for v in &vm.vcpus {
            for iv in &v.intervals {
                let k = p.iter().position(|ph| iv.start < ph.end).unwrap();
                let e = by.entry(k).or_default();
                let d = (iv.end - iv.start) as u64;
                e.0 += d;
                match &iv.state {
                    VcpuState::Guest => e.1 += d,
                    VcpuState::Waiting { cause } => match cause.name() {
                        "disk" => e.2 += d,
                        "network" => e.3 += d,
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        for (k, ph) in p.iter().enumerate() {
            let (all, guest, disk, net) = by[&k];
            let share = guest as f64 / all as f64;
            match ph.workload.as_str() {
                "cpu" => assert!(share > 0.8, "{} {}: guest {share}", vm.name, ph.workload),
                "idle" => assert!(share < 0.05, "{} {}: guest {share}", vm.name, ph.workload),
                "disk" => assert!(disk > all / 10, "{}: disk waits", vm.name),
                "network" => assert!(net > all / 10, "{}: network waits", vm.name),
                _ => unreachable!(),
            }
            if ph.workload != "disk" {
                assert!(disk < all / 100, "{} {}: disk waits", vm.name, ph.workload);
            }
        }
    }
}

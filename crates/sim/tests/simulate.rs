//! The simulator's outputs are read by the reference tools (trace-cmd, babeltrace2), are
//! deterministic, and its truth is a consistent timeline that matches the scenario.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use virtflow_model::{StateTimes, VcpuState, WaitCause};
use virtflow_sim::truth::Truth;
use virtflow_sim::{Format, Scenario};

mod common;
use common::{out_dir, run};

fn tool(name: &str) -> Command {
    let found = Command::new(name).arg("--version").output().is_ok();
    assert!(
        found,
        "`{name}` is required by this test and was not found in PATH"
    );
    Command::new(name)
}

/// `trace-cmd report FILE`: exit 0, nothing on stderr, one line per event (plus `cpus=`).
fn check_trace_cmd(path: &Path, events: u64) -> String {
    let out = tool("trace-cmd").arg("report").arg(path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "trace-cmd report {} failed: {stderr}",
        path.display()
    );
    assert!(stderr.trim().is_empty(), "trace-cmd warned: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout.lines().filter(|l| !l.starts_with("cpus=")).count() as u64;
    assert_eq!(
        lines, events,
        "trace-cmd printed {lines} events, {events} were written"
    );
    stdout
}

/// `babeltrace2 DIR`: exit 0 and one line per event.
fn check_babeltrace(dir: &Path, events: u64) -> String {
    let out = tool("babeltrace2").arg(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "babeltrace2 {} failed: {stderr}",
        dir.display()
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count() as u64,
        events,
        "babeltrace2 printed a different count"
    );
    stdout
}

/// Every vCPU's intervals tile [first event, last event] and sum to its totals.
fn check_truth_consistent(t: &Truth) {
    assert!(t.intervals);
    for vm in &t.vms {
        let host = t.hosts.iter().find(|h| h.name == vm.host).unwrap();
        for v in &vm.vcpus {
            assert!(
                !v.intervals.is_empty(),
                "vCPU {} of {} has no intervals",
                v.vcpu,
                vm.name
            );
            assert_eq!(
                v.intervals[0].start, host.start_ns,
                "timeline starts at the first event"
            );
            assert_eq!(
                v.intervals.last().unwrap().end,
                host.end_ns,
                "timeline ends at the last event"
            );
            let mut sum = StateTimes::default();
            for w in v.intervals.windows(2) {
                assert_eq!(
                    w[0].end, w[1].start,
                    "gap or overlap in {}/{}",
                    vm.name, v.vcpu
                );
                assert_ne!(
                    w[0].state, w[1].state,
                    "adjacent intervals in the same state"
                );
            }
            for i in &v.intervals {
                assert!(i.end > i.start);
                sum.add(&i.state, (i.end - i.start) as u64);
            }
            assert_eq!(sum, v.time_ns, "totals equal the interval sums");
            assert_eq!(v.time_ns.total() as i64, host.end_ns - host.start_ns);
        }
    }
}

fn states(t: &Truth) -> Vec<VcpuState> {
    t.vms
        .iter()
        .flat_map(|vm| {
            vm.vcpus
                .iter()
                .flat_map(|v| v.intervals.iter().map(|i| i.state.clone()))
        })
        .collect()
}

fn total(t: &Truth, f: impl Fn(&StateTimes) -> u64) -> u64 {
    t.vms
        .iter()
        .flat_map(|vm| vm.vcpus.iter())
        .map(|v| f(&v.time_ns))
        .sum()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, _) = run("det-a", Scenario::Mixed, Format::Dat, 60, |_| {});
    let (b, _) = run("det-b", Scenario::Mixed, Format::Dat, 60, |_| {});
    let (c, _) = run("det-c", Scenario::Mixed, Format::Dat, 60, |c| c.seed = 2);
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(read(&a.traces[0].0), read(&b.traces[0].0));
    assert_eq!(read(&a.truth), read(&b.truth));
    assert_ne!(read(&a.traces[0].0), read(&c.traces[0].0));
    let (x, _) = run("det-ctf-a", Scenario::Multihost, Format::Ctf, 40, |_| {});
    let (y, _) = run("det-ctf-b", Scenario::Multihost, Format::Ctf, 40, |_| {});
    for ((p, _), (q, _)) in x.traces.iter().zip(&y.traces) {
        for f in ["metadata", "channel0_0", "channel0_1"] {
            assert_eq!(read(&p.join(f)), read(&q.join(f)), "{f} differs");
        }
    }
}

#[test]
fn trace_cmd_reads_dat_and_text_matches_its_rendering() {
    for (name, sc) in [
        ("dat-disk", Scenario::Disk),
        ("dat-nested", Scenario::Nested),
        ("dat-processes", Scenario::Processes),
        ("dat-overcommit", Scenario::Overcommit),
        // Events of equal timestamps on several CPUs, in trace-cmd's order.
        ("dat-mixed", Scenario::Mixed),
        ("dat-memory", Scenario::Memory),
        ("dat-phases", Scenario::Phases),
        // Interrupt handlers and softirqs.
        ("dat-requests", Scenario::Requests),
    ] {
        for isa in [virtflow_model::Isa::Vmx, virtflow_model::Isa::Svm] {
            let (s, t) = run(name, sc, Format::Dat, 80, |c| c.isa = isa);
            let (path, n) = &s.traces[0];
            assert!(*n > 1000, "{name}: only {n} events");
            check_trace_cmd(path, *n);
            check_truth_consistent(&t);
            // The text writer prints exactly what trace-cmd prints from the .dat without
            // plugins, timestamps in nanoseconds.
            let (st, _) = run(&format!("{name}-text"), sc, Format::Text, 80, |c| {
                c.isa = isa
            });
            let ours = std::fs::read_to_string(&st.traces[0].0).unwrap();
            let out = tool("trace-cmd")
                .args(["report", "-N", "-t"])
                .arg(path)
                .output()
                .unwrap();
            let theirs = String::from_utf8(out.stdout).unwrap();
            assert_eq!(ours.lines().count(), theirs.lines().count());
            for (a, b) in ours.lines().zip(theirs.lines()) {
                assert_eq!(a, b);
            }
        }
    }
}

#[test]
fn babeltrace_reads_ctf() {
    for (name, sc) in [
        ("ctf-mixed", Scenario::Mixed),
        ("ctf-net", Scenario::Net),
        ("ctf-processes", Scenario::Processes),
        ("ctf-nested", Scenario::Nested),
        ("ctf-requests", Scenario::Requests),
    ] {
        let (s, t) = run(name, sc, Format::Ctf, 80, |_| {});
        let (dir, n) = &s.traces[0];
        let out = check_babeltrace(dir, *n);
        assert!(out.contains("kvm_x86_exit"));
        assert!(out.contains("sched_switch"));
        check_truth_consistent(&t);
    }
    let (s, t) = run("ctf-memory", Scenario::Memory, Format::Ctf, 80, |_| {});
    let out = check_babeltrace(&s.traces[0].0, s.traces[0].1);
    for ev in [
        "kmem_mm_page_alloc",
        "kmem_mm_page_free",
        "kmem_mm_page_free_batched",
    ] {
        assert!(out.contains(&format!("{ev}: ")), "{ev}");
    }
    assert!(out.contains("gfp_flags = 1051850"), "GFP_HIGHUSER_MOVABLE");
    check_truth_consistent(&t);
}

#[test]
fn truth_boundaries_are_event_timestamps() {
    let (s, t) = run("bounds", Scenario::Mixed, Format::Text, 80, |_| {});
    let text = std::fs::read_to_string(&s.traces[0].0).unwrap();
    let stamps: BTreeSet<i64> = text
        .lines()
        .skip(1)
        .map(|l| {
            let ts = l
                .split("]")
                .nth(1)
                .unwrap()
                .trim()
                .split(':')
                .next()
                .unwrap();
            let (sec, ns) = ts.split_once('.').unwrap();
            sec.trim().parse::<i64>().unwrap() * 1_000_000_000 + ns.parse::<i64>().unwrap()
        })
        .collect();
    for vm in &t.vms {
        for v in &vm.vcpus {
            for i in &v.intervals {
                assert!(stamps.contains(&i.start) && stamps.contains(&i.end));
            }
        }
    }
    check_truth_consistent(&t);
}

#[test]
fn mixed_shows_every_state_and_wait_cause() {
    let (_, t) = run("mixed-all", Scenario::Mixed, Format::Dat, 400, |_| {});
    let st = states(&t);
    let has = |f: &dyn Fn(&VcpuState) -> bool| st.iter().any(f);
    assert!(has(&|s| matches!(s, VcpuState::Guest)));
    assert!(has(&|s| matches!(s, VcpuState::Hypervisor { .. })));
    assert!(has(&|s| matches!(s, VcpuState::UserSpace { .. })));
    assert!(has(&|s| matches!(s, VcpuState::Preempted { .. })));
    assert!(has(&|s| matches!(s, VcpuState::Ready)));
    assert!(has(&|s| matches!(s, VcpuState::Unknown)));
    for cause in WaitCause::ALL {
        assert!(
            has(&|s| *s == VcpuState::Waiting { cause }),
            "no wait for {}",
            cause.name()
        );
    }
    let workloads: BTreeSet<_> = t.vms.iter().filter_map(|v| v.workload.clone()).collect();
    assert!(workloads.len() >= 3);
}

#[test]
fn disk_scenario_waits_for_disk_and_the_iothread_raises_the_vector() {
    let (s, t) = run("disk-char", Scenario::Disk, Format::Text, 300, |_| {});
    let vm = &t.vms[0];
    assert_eq!(vm.workload.as_deref(), Some("disk"));
    let disk_wait: u64 = vm.vcpus.iter().map(|v| v.time_ns.waiting.disk).sum();
    assert!(disk_wait > 0);
    let disk_vec = vm
        .injections
        .iter()
        .find(|i| i.class == WaitCause::Disk)
        .expect("a disk vector");
    assert!(disk_vec.count > 10);
    let io = vm
        .threads
        .iter()
        .find(|h| h.role == virtflow_model::ThreadRole::IoThread)
        .unwrap();
    let text = std::fs::read_to_string(&s.traces[0].0).unwrap();
    let raised = text
        .lines()
        .filter(|l| {
            l.contains("kvm_msi_set_irq:") && l.contains(&format!("vec {}", disk_vec.vector))
        })
        .collect::<Vec<_>>();
    assert!(!raised.is_empty());
    assert!(
        raised.iter().all(|l| l.contains(&format!("-{} ", io.tid))),
        "raised by the I/O thread"
    );
    assert!(text.contains("block_rq_issue:") && text.contains("block_rq_complete:"));
}

#[test]
fn net_scenario_waits_for_network_raised_by_vhost() {
    let (s, t) = run("net-char", Scenario::Net, Format::Text, 300, |_| {});
    let vm = &t.vms[0];
    assert!(
        vm.vcpus
            .iter()
            .map(|v| v.time_ns.waiting.network)
            .sum::<u64>()
            > 0
    );
    let vhost = vm
        .threads
        .iter()
        .find(|h| h.role == virtflow_model::ThreadRole::Vhost)
        .unwrap();
    assert_eq!(vhost.comm, format!("vhost-{}", vm.pid));
    let text = std::fs::read_to_string(&s.traces[0].0).unwrap();
    let msi: Vec<_> = text
        .lines()
        .filter(|l| l.contains("kvm_msi_set_irq:"))
        .collect();
    assert!(!msi.is_empty());
    assert!(msi
        .iter()
        .all(|l| l.contains(&format!("vhost-{}-{}", vm.pid, vhost.tid))));
}

#[test]
fn idle_waits_mostly_for_timers_and_cpu_mostly_runs_the_guest() {
    let (_, idle) = run("idle-char", Scenario::Idle, Format::Dat, 500, |_| {});
    let w = total(&idle, |s| s.waiting.timer);
    assert!(
        w > total(&idle, |s| s.total()) / 2,
        "an idle VM mostly waits for its timer"
    );
    let (_, cpu) = run("cpu-char", Scenario::Cpu, Format::Dat, 300, |_| {});
    assert!(total(&cpu, |s| s.guest) > total(&cpu, |s| s.total()) * 8 / 10);
}

#[test]
fn overcommit_preempts_vcpus_by_other_vms() {
    let (_, t) = run("over-char", Scenario::Overcommit, Format::Dat, 300, |_| {});
    assert!(total(&t, |s| s.preempted) > total(&t, |s| s.total()) / 5);
    assert!(t.vms.iter().any(|vm| vm
        .preemptions
        .iter()
        .any(|p| matches!(p.by, virtflow_model::Preemptor::OtherVm { .. }))));
}

#[test]
fn processes_report_cr3_and_nested_shows_l2_entries() {
    let (s, t) = run("proc-char", Scenario::Processes, Format::Ctf, 200, |_| {});
    assert!(t.guest_processes.len() >= 3, "several guest address spaces");
    let out = check_babeltrace(&s.traces[0].0, s.traces[0].1);
    assert!(out.contains("addons_vcpu_enter_guest") && out.contains("cr3tmp"));
    let (s, _) = run("nested-char", Scenario::Nested, Format::Text, 100, |c| {
        c.isa = virtflow_model::Isa::Svm
    });
    let text = std::fs::read_to_string(&s.traces[0].0).unwrap();
    assert!(text.contains("kvm_nested_vmenter:") && text.contains("kvm_nested_vmexit:"));
    assert!(text.contains("reason vmrun"));
}

#[test]
fn multihost_writes_one_trace_per_host_with_its_own_clock() {
    let (s, t) = run("multi", Scenario::Multihost, Format::Ctf, 300, |c| {
        c.hosts = 3
    });
    assert_eq!(s.traces.len(), 3);
    assert_eq!(t.hosts.len(), 3);
    assert_eq!(t.hosts[0].clock.slope, 1.0);
    assert!(t.hosts[1..]
        .iter()
        .all(|h| h.clock.slope != 1.0 && h.clock.offset_ns != 0));
    // A packet sent on host0's NIC arrives on a NIC of another host (same TCP sequence).
    let outs: Vec<String> = s
        .traces
        .iter()
        .map(|(p, n)| check_babeltrace(p, *n))
        .collect();
    let seqs = |s: &str, ev: &str| -> BTreeSet<String> {
        s.lines()
            .filter(|l| l.contains(ev) && l.contains("name = \"eth0\""))
            .filter_map(|l| {
                l.split("seq = ")
                    .nth(1)
                    .map(|x| x.split(',').next().unwrap().to_string())
            })
            .collect()
    };
    let sent = seqs(&outs[0], "net_dev_queue");
    let received: BTreeSet<String> = outs[1..]
        .iter()
        .flat_map(|o| seqs(o, "net_if_receive_skb"))
        .collect();
    assert!(!sent.is_empty());
    assert!(sent.intersection(&received).count() > 0);
    for vm in &t.vms {
        assert!(
            vm.vcpus
                .iter()
                .map(|v| v.time_ns.waiting.network)
                .sum::<u64>()
                > 0,
            "{}",
            vm.name
        );
    }
}

#[test]
fn demo_is_small_and_read_by_trace_cmd() {
    let dir = out_dir("demo");
    let p = virtflow_sim::write_demo(&dir).unwrap();
    let size = std::fs::metadata(&p).unwrap().len();
    assert!(size < 8 << 20, "demo is {size} bytes");
    let out = tool("trace-cmd").arg("report").arg(&p).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn large_keeps_totals_only_and_stays_readable() {
    let (s, t) = run("large-small", Scenario::Large, Format::Dat, 20, |_| {});
    assert!(!t.intervals, "large keeps no intervals (bounded memory)");
    assert_eq!(t.hosts[0].cpus, 16);
    assert!(t.vms.len() >= 16);
    for vm in &t.vms {
        for v in &vm.vcpus {
            assert!(v.intervals.is_empty());
            assert_eq!(
                v.time_ns.total() as i64,
                t.hosts[0].end_ns - t.hosts[0].start_ns
            );
        }
    }
    check_trace_cmd(&s.traces[0].0, s.traces[0].1);
}

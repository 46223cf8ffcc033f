//! Small host traces written as event lists, with the vCPU intervals derived by hand from the
//! definitions of DOMAIN.md (not from the code): entry/exit, preemption in guest and in the
//! hypervisor, HLT and each wake-up cause, lost events, migration, both vocabularies.

use virtflow_analysis::{analyze, Options};
use virtflow_model::{Interval, Isa, Model, Preemptor, ThreadRole, VcpuState, WaitCause};
use virtflow_trace::{LostEvents, Value, VecEvent, VecSource};

// ---- event builders: the shared ftrace vocabulary ---------------------------------------

use virtflow_testkit::ftrace::{entry, ev, exit, inj, msi, plain, s, switch, u, waking};

const HLT: u64 = 12;
const MSR_WRITE: u64 = 32;
const EXTERNAL_INTERRUPT: u64 = 1;
const V0: (u64, &str) = (100, "CPU 0/KVM");
const V1: (u64, &str) = (101, "CPU 1/KVM");
const IDLE: (u64, &str) = (0, "swapper/0");

// ---- running and checking ------------------------------------------------------------

fn run(events: Vec<VecEvent>) -> Model {
    run_with_losses(events, Vec::new())
}

fn run_with_losses(events: Vec<VecEvent>, losses: Vec<LostEvents>) -> Model {
    let mut src = VecSource::with_losses(events, losses);
    let options = Options {
        intervals: true,
        ..Options::default()
    };
    analyze(&mut src, &options).expect("in-memory source cannot fail")
}

fn iv(start: i64, end: i64, state: VcpuState) -> Interval {
    Interval { start, end, state }
}

fn hyp(code: u64) -> VcpuState {
    VcpuState::Hypervisor {
        isa: Isa::Vmx,
        code,
    }
}

/// Running, but whether in guest or in the host is not known yet (no exit seen).
fn hyp_unknown() -> VcpuState {
    VcpuState::Unknown
}

fn waiting(cause: WaitCause) -> VcpuState {
    VcpuState::Waiting { cause }
}

fn vcpu_intervals(model: &Model, tid: u32) -> Vec<Interval> {
    model
        .vms
        .iter()
        .flat_map(|vm| &vm.vcpus)
        .find(|v| v.tid == tid)
        .unwrap_or_else(|| panic!("no vCPU thread {tid} in {:#?}", model.vms))
        .intervals
        .clone()
}

/// The intervals tile the trace and their sum per state equals the totals.
fn check_totals(model: &Model) {
    let host = &model.hosts[0];
    for vm in &model.vms {
        for v in &vm.vcpus {
            let mut t = virtflow_model::StateTimes::default();
            let mut at = host.start_ns;
            for i in &v.intervals {
                assert_eq!(i.start, at, "gap or overlap before {i:?} in vCPU {}", v.tid);
                at = i.end;
                t.add(&i.state, (i.end - i.start) as u64);
            }
            assert_eq!(at, host.end_ns, "vCPU {} timeline ends early", v.tid);
            assert_eq!(t, v.time_ns, "totals of vCPU {}", v.tid);
        }
    }
}

// ---- scenarios -----------------------------------------------------------------------

#[test]
fn entry_and_exit() {
    let m = run(vec![
        waking(0, 1, 0, 999, "other"),
        switch(1000, 0, IDLE, 0, V0),
        entry(2000, 0, 100, 0),
        exit(5000, 0, 100, MSR_WRITE),
        entry(6000, 0, 100, 0),
        exit(9000, 0, 100, MSR_WRITE),
        plain(10_000, 1, 999, "irq_handler_entry"),
    ]);
    check_totals(&m);
    assert_eq!(
        vcpu_intervals(&m, 100),
        vec![
            // Unknown before its first event, and still unknown while running before
            // its first entry or exit.
            iv(0, 2000, VcpuState::Unknown),
            iv(2000, 5000, VcpuState::Guest),
            iv(5000, 6000, hyp(MSR_WRITE)),
            iv(6000, 9000, VcpuState::Guest),
            iv(9000, 10_000, hyp(MSR_WRITE)),
        ]
    );
    let vm = &m.vms[0];
    assert_eq!(vm.vcpus[0].vcpu, 0);
    let e = &vm.exits[0];
    assert_eq!(
        (
            e.reason.as_str(),
            e.count,
            e.total_ns,
            e.min_ns,
            e.mean_ns,
            e.max_ns
        ),
        ("MSR_WRITE", 2, 1000, 1000, 1000, 1000)
    );
    assert!(m.notes.is_empty(), "{:?}", m.notes);
}

#[test]
fn preempted_while_in_guest() {
    let m = run(vec![
        switch(0, 0, IDLE, 0, V0),
        entry(1000, 0, 100, 0),
        // The host scheduler takes the CPU while the vCPU runs guest code (R+).
        switch(3000, 0, V0, 0x100, (200, "stress")),
        switch(7000, 0, (200, "stress"), 1, V0),
        exit(9000, 0, 100, HLT),
        plain(10_000, 0, 100, "kvm_fpu"),
    ]);
    check_totals(&m);
    let by = Preemptor::HostProcess {
        tid: 200,
        comm: "stress".into(),
    };
    assert_eq!(
        vcpu_intervals(&m, 100),
        vec![
            iv(0, 1000, hyp_unknown()),
            iv(1000, 3000, VcpuState::Guest),
            iv(3000, 7000, VcpuState::Preempted { by: by.clone() }),
            iv(7000, 9000, VcpuState::Guest),
            iv(9000, 10_000, hyp(HLT)),
        ]
    );
    let p = &m.vms[0].preemptions;
    assert_eq!((p[0].by.clone(), p[0].count, p[0].total_ns), (by, 1, 4000));
}

#[test]
fn preempted_in_the_hypervisor_by_another_vm() {
    let other = (300, "CPU 0/KVM");
    let m = run(vec![
        switch(0, 0, IDLE, 0, V0),
        entry(1000, 0, 100, 0),
        exit(2000, 0, 100, EXTERNAL_INTERRUPT),
        switch(2500, 0, V0, 0, other),
        entry(3000, 0, 300, 0),
        exit(5000, 0, 300, EXTERNAL_INTERRUPT),
        switch(6000, 0, other, 0x100, V0),
        entry(6500, 0, 100, 0),
        exit(8000, 0, 100, HLT),
    ]);
    check_totals(&m);
    assert_eq!(m.vms.len(), 2, "{:#?}", m.vms);
    let by = Preemptor::OtherVm { pid: 300, tid: 300 };
    assert_eq!(
        vcpu_intervals(&m, 100),
        vec![
            iv(0, 1000, hyp_unknown()),
            iv(1000, 2000, VcpuState::Guest),
            iv(2000, 2500, hyp(EXTERNAL_INTERRUPT)),
            iv(2500, 6000, VcpuState::Preempted { by }),
            iv(6000, 6500, hyp(EXTERNAL_INTERRUPT)),
            iv(6500, 8000, VcpuState::Guest),
        ]
    );
    let vm = m.vms.iter().find(|v| v.vcpus[0].tid == 100).unwrap();
    let intr = vm
        .exits
        .iter()
        .find(|e| e.code == EXTERNAL_INTERRUPT)
        .unwrap();
    assert_eq!((intr.count, intr.total_ns), (1, 4500));
}

/// HLT, the thread blocks, something wakes it, it runs, the interrupt is injected, entry.
fn hlt_then(wake: Vec<VecEvent>, vector: u64) -> Vec<VecEvent> {
    let mut v = vec![
        switch(0, 0, IDLE, 0, V0),
        entry(500, 0, 100, 0),
        exit(1000, 0, 100, HLT),
        switch(1200, 0, V0, 1, IDLE),
    ];
    v.extend(wake);
    v.extend([
        switch(5100, 0, IDLE, 0, V0),
        inj(5200, 0, 100, vector),
        entry(5300, 0, 100, 0),
        exit(6000, 0, 100, MSR_WRITE),
    ]);
    v
}

fn expected_hlt_wait(cause: WaitCause) -> Vec<Interval> {
    vec![
        iv(0, 500, hyp_unknown()),
        iv(500, 1000, VcpuState::Guest),
        iv(1000, 1200, hyp(HLT)),
        iv(1200, 5010, waiting(cause)),
        iv(5010, 5100, VcpuState::Ready),
        iv(5100, 5300, hyp(HLT)),
        iv(5300, 6000, VcpuState::Guest),
    ]
}

#[test]
fn hlt_then_timer() {
    let m = run(hlt_then(
        vec![
            plain(5000, 0, 0, "hrtimer_expire_entry"),
            waking(5010, 0, 0, 100, "CPU 0/KVM"),
            plain(5020, 0, 0, "hrtimer_expire_exit"),
        ],
        0xec,
    ));
    check_totals(&m);
    assert_eq!(vcpu_intervals(&m, 100), expected_hlt_wait(WaitCause::Timer));
    let vm = &m.vms[0];
    assert_eq!(vm.vcpus[0].waits.timer, 1);
    assert_eq!((vm.wait_signals.waits, vm.wait_signals.agree), (1, 1));
    assert_eq!(vm.wakeup_latency.count, 1);
    assert_eq!(vm.wakeup_latency.max_ns, 90);
    let hlt = vm.exits.iter().find(|e| e.code == HLT).unwrap();
    assert_eq!((hlt.count, hlt.total_ns), (1, 4300));
    assert_eq!(vm.injections[0].class, WaitCause::Timer);
}

#[test]
fn hlt_then_disk_completion_from_the_io_thread() {
    let io = 150;
    let m = run(hlt_then(
        vec![
            switch(4000, 1, IDLE, 0, (io, "IO iothread0")),
            msi(5000, 1, io, 0x24),
            waking(5010, 1, io, 100, "CPU 0/KVM"),
            switch(5050, 1, (io, "IO iothread0"), 1, IDLE),
        ],
        0x24,
    ));
    check_totals(&m);
    assert_eq!(vcpu_intervals(&m, 100), expected_hlt_wait(WaitCause::Disk));
    let vm = &m.vms[0];
    assert_eq!(
        vm.threads
            .iter()
            .map(|t| (t.tid, t.role))
            .collect::<Vec<_>>(),
        vec![(io as u32, ThreadRole::IoThread)]
    );
    assert_eq!(vm.injections[0].vector, 0x24);
    assert_eq!(vm.injections[0].class, WaitCause::Disk);
    assert_eq!(vm.wait_signals.agree, 1);
}

#[test]
fn hlt_then_network_from_vhost() {
    let vhost = (160, "vhost-90");
    let m = run(hlt_then(
        vec![
            switch(4000, 1, IDLE, 0, vhost),
            msi(5000, 1, 160, 0x25),
            waking(5010, 1, 160, 100, "CPU 0/KVM"),
            switch(5050, 1, vhost, 1, IDLE),
        ],
        0x25,
    ));
    check_totals(&m);
    assert_eq!(
        vcpu_intervals(&m, 100),
        expected_hlt_wait(WaitCause::Network)
    );
    let vm = &m.vms[0];
    assert_eq!(vm.pid, 90, "vhost-<pid> names the VMM process");
    assert_eq!(vm.threads[0].role, ThreadRole::Vhost);
    assert_eq!(vm.injections[0].class, WaitCause::Network);
}

#[test]
fn hlt_then_ipi_from_sibling_vcpu() {
    let m = run(hlt_then(
        vec![
            switch(4000, 1, IDLE, 0, V1),
            entry(4100, 1, 101, 1),
            exit(4900, 1, 101, MSR_WRITE),
            ev(
                4950,
                1,
                "kvm_apic_ipi",
                &[
                    ("common_pid", u(101)),
                    ("icr_low", u(0xfd)),
                    ("dest_id", u(0)),
                ],
            ),
            waking(5010, 1, 101, 100, "CPU 0/KVM"),
            entry(5050, 1, 101, 1),
        ],
        0xfd,
    ));
    check_totals(&m);
    assert_eq!(vcpu_intervals(&m, 100), expected_hlt_wait(WaitCause::Task));
    assert_eq!(m.vms.len(), 1, "the IPI ties both vCPUs to one VM");
    let tids: Vec<_> = m.vms[0].vcpus.iter().map(|v| (v.vcpu, v.tid)).collect();
    assert_eq!(tids, vec![(0, 100), (1, 101)]);
}

/// The same sequence as the sibling's IPI, but the two vCPU threads belong to different
/// processes the trace names (a thread group per event, as perf's sample pid or LTTng's `pid`
/// context give it): the IPI sender was only current when the other VM's vCPU was woken. Two
/// VMs, and the wait's cause is not an IPI.
#[test]
fn an_ipi_never_joins_vcpus_of_different_processes() {
    let tgid = |mut e: VecEvent, pid: u64| {
        e.fields.push(("common_tgid".into(), u(pid)));
        e
    };
    let events = hlt_then(
        vec![
            switch(4000, 1, IDLE, 0, (201, "CPU 0/KVM")),
            entry(4100, 1, 201, 0),
            exit(4900, 1, 201, MSR_WRITE),
            ev(
                4950,
                1,
                "kvm_apic_ipi",
                &[
                    ("common_pid", u(201)),
                    ("icr_low", u(0xfd)),
                    ("dest_id", u(0)),
                ],
            ),
            waking(5010, 1, 201, 100, "CPU 0/KVM"),
            entry(5050, 1, 201, 0),
        ],
        0xec,
    )
    .into_iter()
    .map(|e| {
        let pid = match e.fields.iter().find(|(k, _)| k == "common_pid") {
            Some((_, v)) if v.as_u64() == Some(201) => 200,
            _ => 90,
        };
        tgid(e, pid)
    })
    .collect();
    let m = run(events);
    check_totals(&m);
    let pids: Vec<u32> = m.vms.iter().map(|v| v.pid).collect();
    assert_eq!(pids, vec![90, 200], "one VM per process");
    let numbers: Vec<Vec<u32>> = m
        .vms
        .iter()
        .map(|vm| vm.vcpus.iter().map(|v| v.vcpu).collect())
        .collect();
    assert_eq!(numbers, vec![vec![0], vec![0]]);
    // The cause falls to the injected vector (the timer), not to an IPI.
    assert_eq!(vcpu_intervals(&m, 100), expected_hlt_wait(WaitCause::Timer));
}

#[test]
fn disagreeing_signals_are_counted_and_the_waker_wins() {
    // Woken from timer context, but a device vector is injected first.
    let m = run(hlt_then(
        vec![
            plain(5000, 0, 0, "hrtimer_expire_entry"),
            waking(5010, 0, 0, 100, "CPU 0/KVM"),
            plain(5020, 0, 0, "hrtimer_expire_exit"),
        ],
        0xfd,
    ));
    assert_eq!(vcpu_intervals(&m, 100), expected_hlt_wait(WaitCause::Timer));
    assert_eq!(m.vms[0].wait_signals.disagree, 1);
    assert!(
        m.notes.iter().any(|n| n.contains("different causes")),
        "{:?}",
        m.notes
    );
}

#[test]
fn lost_events_make_the_state_unknown_until_the_next_event() {
    let m = run_with_losses(
        vec![
            switch(0, 0, IDLE, 0, V0),
            entry(1000, 0, 100, 0),
            exit(5000, 0, 100, MSR_WRITE),
            entry(5500, 0, 100, 0),
            plain(8000, 1, 7, "irq_handler_entry"),
        ],
        vec![LostEvents {
            begin: 3000,
            end: 4000,
            cpu: 0,
            stream: 0,
            count: Some(12),
        }],
    );
    check_totals(&m);
    assert_eq!(
        vcpu_intervals(&m, 100),
        vec![
            iv(0, 1000, hyp_unknown()),
            iv(1000, 3000, VcpuState::Guest),
            iv(3000, 5000, VcpuState::Unknown),
            iv(5000, 5500, hyp(MSR_WRITE)),
            iv(5500, 8000, VcpuState::Guest),
        ]
    );
    let lost = m.notes.iter().find(|n| n.contains("lost"));
    // One sentence, as the report and the JSON show it: no stray escape or line break.
    assert_eq!(
        lost.map(String::as_str),
        Some(
            "the tracer lost events (1 notice, 12 events counted): states are unknown from \
             each loss until the next event that shows them"
        ),
        "{:?}",
        m.notes
    );
}

#[test]
fn vcpu_migrating_between_cpus() {
    let hog = (200, "stress");
    let m = run(vec![
        switch(0, 0, IDLE, 0, V0),
        entry(1000, 0, 100, 0),
        exit(2500, 0, 100, EXTERNAL_INTERRUPT),
        switch(3000, 0, V0, 0x100, hog),
        ev(
            3500,
            1,
            "sched_migrate_task",
            &[
                ("common_pid", u(0)),
                ("pid", u(100)),
                ("orig_cpu", u(0)),
                ("dest_cpu", u(1)),
            ],
        ),
        switch(4000, 1, (0, "swapper/1"), 0, V0),
        entry(4100, 1, 100, 0),
        exit(6000, 1, 100, HLT),
        // The hog keeps CPU 0: nothing there concerns the vCPU any more.
        plain(7000, 0, 200, "irq_handler_entry"),
    ]);
    check_totals(&m);
    let by = Preemptor::HostProcess {
        tid: 200,
        comm: "stress".into(),
    };
    assert_eq!(
        vcpu_intervals(&m, 100),
        vec![
            iv(0, 1000, hyp_unknown()),
            iv(1000, 2500, VcpuState::Guest),
            iv(2500, 3000, hyp(EXTERNAL_INTERRUPT)),
            iv(3000, 4000, VcpuState::Preempted { by }),
            iv(4000, 4100, hyp(EXTERNAL_INTERRUPT)),
            iv(4100, 6000, VcpuState::Guest),
            iv(6000, 7000, hyp(HLT)),
        ]
    );
}

#[test]
fn lttng_vocabulary() {
    // LTTng 2.x names, `prev_tid`/`next_tid`, `irq` for the vector, no `common_pid`: the
    // current thread comes from the switches. `kvm_x86_entry`'s vcpu_id is garbage on some
    // kernels (as in the lab traces); the exit's is used.
    let sw = |ts, prev: (u64, &str), state, next: (u64, &str)| {
        ev(
            ts,
            0,
            "sched_switch",
            &[
                ("prev_comm", s(prev.1)),
                ("prev_tid", u(prev.0)),
                ("prev_state", u(state)),
                ("next_comm", s(next.1)),
                ("next_tid", u(next.0)),
            ],
        )
    };
    let m = run(vec![
        sw(0, IDLE, 0, V0),
        ev(500, 0, "kvm_x86_entry", &[("vcpu_id", u(3_073_823_984))]),
        ev(
            1000,
            0,
            "kvm_x86_exit",
            &[("exit_reason", u(0x78)), ("isa", u(2)), ("vcpu_id", u(3))],
        ),
        sw(1200, V0, 1, IDLE),
        ev(5000, 0, "timer_hrtimer_expire_entry", &[("hrtimer", u(1))]),
        ev(
            5010,
            0,
            "sched_waking",
            &[("comm", s("CPU 0/KVM")), ("tid", u(100))],
        ),
        ev(5020, 0, "timer_hrtimer_expire_exit", &[("hrtimer", u(1))]),
        sw(5100, IDLE, 0, V0),
        ev(5200, 0, "kvm_x86_inj_virq", &[("irq", u(0xec))]),
        ev(5300, 0, "kvm_x86_entry", &[("vcpu_id", u(3_073_823_984))]),
        ev(
            6000,
            0,
            "kvm_x86_exit",
            &[("exit_reason", u(0x7c)), ("isa", u(2)), ("vcpu_id", u(3))],
        ),
    ]);
    check_totals(&m);
    let svm = |code| VcpuState::Hypervisor {
        isa: Isa::Svm,
        code,
    };
    assert_eq!(
        vcpu_intervals(&m, 100),
        vec![
            iv(0, 500, VcpuState::Unknown),
            iv(500, 1000, VcpuState::Guest),
            iv(1000, 1200, svm(0x78)),
            iv(1200, 5010, waiting(WaitCause::Timer)),
            iv(5010, 5100, VcpuState::Ready),
            iv(5100, 5300, svm(0x78)),
            iv(5300, 6000, VcpuState::Guest),
        ]
    );
    let vm = &m.vms[0];
    assert_eq!(vm.vcpus[0].vcpu, 3);
    let names: Vec<_> = vm
        .exits
        .iter()
        .map(|e| (e.reason.as_str(), e.count))
        .collect();
    assert_eq!(names, vec![("hlt", 1), ("msr", 1)]);
}

#[test]
fn no_kvm_events_says_so_and_reports_the_host() {
    let m = run(vec![
        switch(0, 0, IDLE, 0, (42, "make")),
        switch(5000, 0, (42, "make"), 1, IDLE),
        switch(6000, 1, (0, "swapper/1"), 0, (43, "cc1")),
        plain(9000, 1, 43, "irq_handler_entry"),
    ]);
    assert!(m.vms.is_empty());
    assert_eq!(m.notes[0], "no KVM events in this trace");
    let host = &m.hosts[0];
    assert_eq!((host.cpus, host.start_ns, host.end_ns), (2, 0, 9000));
    let busiest: Vec<_> = host.busiest.iter().map(|t| (t.tid, t.cpu_ns)).collect();
    assert_eq!(busiest, vec![(42, 5000), (43, 3000)]);
}

#[test]
fn perf_ctf_vocabulary_with_side_band_records() {
    // perf's CTF conversion: `system:name` classes, the current thread in `perf_tid`, its
    // process in `perf_pid`, and `perf_comm` records at time 0 naming every thread.
    let perf = |ts, cpu, name: &str, tid: u64, pid: u64, more: &[(&str, Value<'static>)]| {
        let mut f = vec![("perf_tid", u(tid)), ("perf_pid", u(pid))];
        f.extend_from_slice(more);
        ev(ts, cpu, name, &f)
    };
    let m = run(vec![
        ev(
            0,
            0,
            "perf_comm",
            &[("pid", u(50)), ("tid", u(50)), ("comm", s("qemu-kvm"))],
        ),
        ev(
            0,
            0,
            "perf_comm",
            &[("pid", u(50)), ("tid", u(57)), ("comm", s("IO mon"))],
        ),
        perf(
            1000,
            0,
            "sched:sched_switch",
            0,
            0,
            &[
                ("prev_comm", s("swapper/0")),
                ("prev_pid", u(0)),
                ("prev_state", u(0)),
                ("next_comm", s("CPU 0/KVM")),
                ("next_pid", u(100)),
            ],
        ),
        perf(2000, 0, "kvm:kvm_entry", 100, 50, &[("vcpu_id", u(0))]),
        perf(
            3000,
            0,
            "kvm:kvm_exit",
            100,
            50,
            &[("exit_reason", u(30)), ("isa", u(1))],
        ),
        perf(3500, 0, "kvm:kvm_entry", 100, 50, &[("vcpu_id", u(0))]),
    ]);
    check_totals(&m);
    let host = &m.hosts[0];
    assert_eq!(
        (host.start_ns, host.end_ns),
        (1000, 3500),
        "side-band records are not events"
    );
    assert_eq!(
        vcpu_intervals(&m, 100),
        vec![
            iv(1000, 2000, VcpuState::Unknown),
            iv(2000, 3000, VcpuState::Guest),
            iv(3000, 3500, hyp(30)),
        ]
    );
    let vm = &m.vms[0];
    assert_eq!((vm.pid, vm.name.as_str()), (50, "qemu-kvm/50"));
    let helpers: Vec<_> = vm.threads.iter().map(|t| (t.tid, t.role)).collect();
    assert_eq!(
        helpers,
        vec![(50, ThreadRole::MainLoop), (57, ThreadRole::IoThread)]
    );
    assert_eq!(vm.exits[0].reason, "IO_INSTRUCTION");
}

//! Guest processes (CR3 at entry), nested guests (L1/L2) and guest kernel/user time, on small
//! host traces written as event lists. Expected times are derived by hand from DOMAIN.md's
//! definitions: a process owns the guest time from each entry that reported its CR3 to the
//! next exit; L2 runs from `kvm_nested_vmenter` until an exit is reflected to L1.

use virtflow_analysis::{analyze, Options};
use virtflow_model::{GuestProcess, Model, NestedGuest, Span, Vcpu, VectorStat, WaitCause};
use virtflow_trace::{LostEvents, Value, VecEvent, VecSource};

use virtflow_testkit::ftrace::{self, switch, u};

/// An event whose fields are all integers.
fn ev(ts: i64, cpu: u32, name: &str, fields: &[(&str, u64)]) -> VecEvent {
    let fields: Vec<(&str, Value<'static>)> = fields.iter().map(|(k, v)| (*k, u(*v))).collect();
    ftrace::ev(ts, cpu, name, &fields)
}

const TID: u64 = 100;
const VCPU: (u64, &str) = (TID, "CPU 0/KVM");

fn switch_in(ts: i64) -> VecEvent {
    switch(ts, 0, (0, "swapper/0"), 0, VCPU)
}

fn preempt(ts: i64, by: u64) -> VecEvent {
    switch(ts, 0, VCPU, 0, (by, "other"))
}

fn entry(ts: i64) -> VecEvent {
    ftrace::entry(ts, 0, TID, 0)
}

/// An Intel VMX exit at guest address `rip`.
fn exit(ts: i64, reason: u64, rip: u64) -> VecEvent {
    ev(
        ts,
        0,
        "kvm_exit",
        &[
            ("common_pid", TID),
            ("exit_reason", reason),
            ("isa", 1),
            ("guest_rip", rip),
        ],
    )
}

/// The research's LTTng event, as named there.
fn addons_cr3(ts: i64, cr3: u64) -> VecEvent {
    ev(
        ts,
        0,
        "addons_vcpu_enter_guest",
        &[
            ("tid", TID),
            ("vcpuID", 0),
            ("cr3tmp", cr3),
            ("sptmp", 1),
            ("iptmp", 2),
        ],
    )
}

fn plain_cr3(ts: i64, cr3: u64) -> VecEvent {
    ev(
        ts,
        0,
        "vcpu_enter_guest",
        &[("common_pid", TID), ("vcpu_id", 0), ("cr3", cr3)],
    )
}

fn nested_vmenter(ts: i64, vmcb: u64, pgd: u64) -> VecEvent {
    ev(
        ts,
        0,
        "kvm_nested_vmenter",
        &[
            ("common_pid", TID),
            ("rip", 0xffff_ffff_8100_0000),
            ("vmcb", vmcb),
            ("nested_rip", 0x1000),
            ("guest_pgd", pgd),
        ],
    )
}

fn nested_exit(ts: i64, name: &str) -> VecEvent {
    ev(ts, 0, name, &[("common_pid", TID), ("exit_code", 1)])
}

fn run_with_losses(events: Vec<VecEvent>, losses: Vec<LostEvents>) -> Model {
    let mut src = VecSource::with_losses(events, losses);
    let options = Options {
        intervals: true,
        ..Options::default()
    };
    analyze(&mut src, &options).expect("in-memory source cannot fail")
}

fn run(events: Vec<VecEvent>) -> Model {
    run_with_losses(events, Vec::new())
}

fn vcpu(m: &Model) -> &Vcpu {
    m.vms
        .iter()
        .flat_map(|vm| &vm.vcpus)
        .find(|v| v.tid == TID as u32)
        .unwrap_or_else(|| panic!("no vCPU thread {TID} in {:#?}", m.vms))
}

fn span(start: i64, end: i64) -> Span {
    Span { start, end }
}

const KERNEL_RIP: u64 = 0xffff_ffff_8100_1234;
const USER_RIP: u64 = 0x0000_5555_0000_1000;
const MSR_WRITE: u64 = 32;
const EXTERNAL_INTERRUPT: u64 = 1;
const VMRESUME: u64 = 24;

#[test]
fn each_entry_belongs_to_the_process_whose_cr3_it_reported() {
    let a = 0x1_0003_1000;
    let b = 0x1_0003_8000;
    let m = run(vec![
        switch_in(1_000),
        addons_cr3(1_500, a),
        entry(2_000),
        exit(5_000, MSR_WRITE, KERNEL_RIP), // a: 3000 kernel
        plain_cr3(5_500, b),
        // Injected at the entry into b: b's.
        ev(
            5_800,
            0,
            "kvm_inj_virq",
            &[("common_pid", TID), ("vector", 0xec)],
        ),
        entry(6_000),
        exit(10_000, EXTERNAL_INTERRUPT, USER_RIP), // b: 4000 user
        addons_cr3(10_500, a),
        entry(11_000),
        preempt(12_000, 7), // a: 1000 in guest, then preempted while in guest
        ev(13_000, 1, "sched_waking", &[("common_pid", 0), ("pid", 9)]),
        switch_in(14_000),
        exit(16_000, EXTERNAL_INTERRUPT, USER_RIP), // a: 2000 more, the run ends in user
        ev(17_000, 1, "sched_waking", &[("common_pid", 0), ("pid", 9)]),
    ]);
    let v = vcpu(&m);
    assert_eq!(v.time_ns.guest, 3000 + 4000 + 1000 + 2000);
    assert_eq!(
        v.processes,
        vec![
            GuestProcess {
                cr3: a,
                l2: false,
                entries: 2,
                guest_ns: 6000,
                kernel_ns: 3000,
                user_ns: 3000,
                // Its runs ended at 5000 and 16000.
                exits: 2,
                injections: vec![],
                intervals: vec![
                    span(2_000, 5_000),
                    span(11_000, 12_000),
                    span(14_000, 16_000)
                ],
                activity: None,
            },
            GuestProcess {
                cr3: b,
                l2: false,
                entries: 1,
                guest_ns: 4000,
                kernel_ns: 0,
                user_ns: 4000,
                exits: 1,
                injections: vec![VectorStat {
                    vector: 0xec,
                    class: WaitCause::Timer,
                    count: 1,
                }],
                intervals: vec![span(6_000, 10_000)],
                activity: None,
            },
        ]
    );
    assert_eq!((v.guest_kernel_ns, v.guest_user_ns), (3000, 7000));
    assert_eq!(v.l2_ns, 0);
    assert!(v.nested.is_empty());
}

#[test]
fn without_cr3_reports_guest_rip_still_splits_kernel_and_user() {
    let m = run(vec![
        switch_in(0),
        entry(1_000),
        exit(3_000, MSR_WRITE, KERNEL_RIP),
        entry(4_000),
        exit(9_000, EXTERNAL_INTERRUPT, USER_RIP),
        entry(9_500),
        exit(9_600, MSR_WRITE, 0xffff_8000_0000_0000), // the first kernel address
        entry(10_000),
    ]);
    let v = vcpu(&m);
    assert!(v.processes.is_empty());
    // The last run (10_000 to the trace's end) has no exit: it is in neither bucket.
    assert_eq!(v.time_ns.guest, 2000 + 5000 + 100);
    assert_eq!((v.guest_kernel_ns, v.guest_user_ns), (2100, 5000));
}

#[test]
fn a_loss_forgets_the_cr3() {
    let a = 0x2000;
    let m = run_with_losses(
        vec![
            switch_in(0),
            plain_cr3(500, a),
            entry(1_000),
            exit(2_000, MSR_WRITE, KERNEL_RIP),
            // Lost 2_500..3_000 on CPU 0.
            switch_in(3_500),
            entry(4_000),
            exit(6_000, MSR_WRITE, KERNEL_RIP),
        ],
        vec![LostEvents {
            cpu: 0,
            begin: 2_500,
            end: 3_000,
            stream: 0,
            count: Some(10),
        }],
    );
    let v = vcpu(&m);
    assert_eq!(v.time_ns.guest, 3000);
    assert_eq!(v.processes.len(), 1);
    assert_eq!((v.processes[0].cr3, v.processes[0].guest_ns), (a, 1000));
    assert_eq!(v.guest_kernel_ns, 3000);
}

/// L1 runs, executes VMRESUME; L0 enters L2 (with its CR3 reported at entry); an L2 exit
/// handled by L0 resumes L2; a reflected exit returns to L1.
#[test]
fn nested_guest_time_with_reflections_reported() {
    let (l1_cr3, l2_cr3, vmcs) = (0x1000, 0x8000, 0x1_2345_6000);
    let m = run(vec![
        switch_in(0),
        plain_cr3(500, l1_cr3),
        entry(1_000),
        exit(2_000, VMRESUME, KERNEL_RIP), // L1: 1000
        nested_vmenter(2_200, vmcs, l2_cr3),
        plain_cr3(2_500, l2_cr3),
        entry(3_000),
        exit(5_000, EXTERNAL_INTERRUPT, USER_RIP), // L2: 2000
        nested_exit(5_100, "kvm_nested_vmexit"),
        // Handled by L0: L2 resumes.
        plain_cr3(5_500, l2_cr3),
        entry(6_000),
        exit(9_000, MSR_WRITE, USER_RIP), // L2: 3000
        nested_exit(9_100, "kvm_nested_vmexit"),
        nested_exit(9_200, "kvm_nested_vmexit_inject"),
        plain_cr3(9_500, l1_cr3),
        entry(10_000),
        exit(14_000, MSR_WRITE, KERNEL_RIP), // L1: 4000
    ]);
    let v = vcpu(&m);
    assert_eq!(v.time_ns.guest, 10_000);
    assert_eq!(v.l2_ns, 5000);
    assert_eq!(
        v.nested,
        vec![NestedGuest {
            vmcs,
            entries: 2,
            guest_ns: 5000,
            intervals: vec![span(3_000, 5_000), span(6_000, 9_000)],
        }]
    );
    let by_cr3: Vec<(u64, bool, u64)> = v
        .processes
        .iter()
        .map(|p| (p.cr3, p.l2, p.guest_ns))
        .collect();
    // Equal times: by CR3.
    assert_eq!(by_cr3, vec![(l1_cr3, false, 5000), (l2_cr3, true, 5000)]);
}

/// A tracer that shows no reflections (`kvm_nested_vmexit` only): an L2 exit is followed by
/// L2 when the next entry reports one of the L2's page tables, by L1 otherwise.
#[test]
fn nested_guest_time_without_reflection_reports() {
    let (l2_cr3, vmcs) = (0x8000, 0x7000);
    let m = run(vec![
        switch_in(0),
        entry(1_000),
        exit(2_000, VMRESUME, KERNEL_RIP), // L1: 1000
        nested_vmenter(2_200, vmcs, l2_cr3),
        plain_cr3(2_500, l2_cr3),
        entry(3_000),
        exit(5_000, EXTERNAL_INTERRUPT, USER_RIP), // L2: 2000
        nested_exit(5_100, "kvm_nested_vmexit"),
        plain_cr3(5_500, l2_cr3),
        entry(6_000),
        exit(9_000, MSR_WRITE, USER_RIP), // L2: 3000
        nested_exit(9_100, "kvm_nested_vmexit"),
        entry(10_000),
        exit(14_000, MSR_WRITE, KERNEL_RIP), // L1: 4000 (no L2 page table reported)
    ]);
    let v = vcpu(&m);
    assert_eq!(v.time_ns.guest, 10_000);
    assert_eq!(v.l2_ns, 5000);
    assert_eq!(v.nested.len(), 1);
    assert_eq!((v.nested[0].vmcs, v.nested[0].entries), (vmcs, 2));
    assert_eq!(v.processes.len(), 1);
    assert_eq!((v.processes[0].cr3, v.processes[0].l2), (l2_cr3, true));
    assert_eq!(v.processes[0].guest_ns, 5000);
}

#[test]
fn the_lttng_nested_vocabulary_is_understood() {
    let m = run(vec![
        switch_in(0),
        entry(1_000),
        exit(2_000, VMRESUME, KERNEL_RIP),
        nested_vmenter(2_200, 0x7000, 0x8000),
        entry(3_000),
        exit(4_000, EXTERNAL_INTERRUPT, USER_RIP),
    ]
    .into_iter()
    .map(|mut e| {
        if e.name == "kvm_nested_vmenter" {
            e.name = "kvm_x86_nested_vmrun".into();
        }
        e
    })
    .collect());
    let v = vcpu(&m);
    assert_eq!(v.l2_ns, 1000);
}

/// With series, what the clustering's windows read: per 1 ms bucket, each process's guest time,
/// entries, exits and injections, the vCPU's guest user time and its exits by kind. Expected
/// values by hand from the events' times (buckets start at the first event).
#[test]
fn series_split_each_process_and_the_exit_mix_per_bucket() {
    use virtflow_model::ProcessActivity;
    const HLT: u64 = 12;
    let (a, b) = (0x1_0003_1000, 0x1_0003_8000);
    let events = vec![
        switch_in(0),
        addons_cr3(500_000, a),
        entry(1_000_000),
        exit(2_500_000, MSR_WRITE, KERNEL_RIP), // a: 1 ms in bucket 1, 0.5 ms in bucket 2
        plain_cr3(2_600_000, b),
        ev(
            2_700_000,
            0,
            "kvm_inj_virq",
            &[("common_pid", TID), ("vector", 0xec)],
        ),
        entry(3_000_000),
        exit(3_400_000, EXTERNAL_INTERRUPT, USER_RIP), // b: 0.4 ms user in bucket 3
        entry(4_200_000),
        exit(4_300_000, HLT, KERNEL_RIP), // b: 0.1 ms in bucket 4
        ev(
            5_500_000,
            1,
            "sched_waking",
            &[("common_pid", 0), ("pid", 9)],
        ),
    ];
    let mut src = VecSource::new(events);
    let options = Options {
        series: true,
        ..Options::default()
    };
    let m = analyze(&mut src, &options).unwrap();
    let buckets = m.hosts[0].buckets.unwrap();
    assert_eq!((buckets.step_ns, buckets.count), (1_000_000, 6));
    let v = vcpu(&m);
    let act = v.activity.as_ref().expect("series kept");
    assert_eq!(act.guest_user_ns, [0, 0, 0, 400_000, 0, 0]);
    // Kinds: halt, io, interrupt, msr, paging, other.
    assert_eq!(act.exit_kinds[0], [0, 0, 0, 0, 1, 0]);
    assert_eq!(act.exit_kinds[2], [0, 0, 0, 1, 0, 0]);
    assert_eq!(act.exit_kinds[3], [0, 0, 1, 0, 0, 0]);
    for k in [1, 4, 5] {
        assert_eq!(act.exit_kinds[k], [0; 6], "kind {k}");
    }
    let of = |cr3: u64| -> &ProcessActivity {
        let p = v.processes.iter().find(|p| p.cr3 == cr3).unwrap();
        p.activity.as_ref().expect("process series kept")
    };
    let pa = of(a);
    assert_eq!(pa.guest_ns, [0, 1_000_000, 500_000, 0, 0, 0]);
    assert_eq!(pa.entries, [0, 1, 0, 0, 0, 0]);
    assert_eq!(pa.exits, [0, 0, 1, 0, 0, 0]);
    assert!(pa.injections.iter().all(|s| s.iter().all(|x| *x == 0)));
    let pb = of(b);
    assert_eq!(pb.guest_ns, [0, 0, 0, 400_000, 100_000, 0]);
    assert_eq!(pb.entries, [0, 0, 0, 1, 1, 0]);
    assert_eq!(pb.exits, [0, 0, 0, 1, 1, 0]);
    assert_eq!(
        pb.injections[0],
        [0, 0, 0, 1, 0, 0],
        "the timer vector 0xec"
    );
    // Without series, nothing per bucket.
    let plain = run(vec![
        switch_in(0),
        addons_cr3(1, a),
        entry(2),
        exit(3, HLT, 0),
    ]);
    assert!(vcpu(&plain).processes.iter().all(|p| p.activity.is_none()));
}

//! The events whose text the reader parses into the kernel's own field names: each with the
//! print formats it appears in (the kernel's, which tracefs and perf print, and trace-cmd's
//! plugins'), as [`super::template`] templates.

use super::template::Slot;

pub(crate) struct KnownEvent {
    pub name: &'static str,
    pub system: &'static str,
    /// Tried in order; the first that matches the whole text wins.
    pub templates: &'static [&'static str],
    /// Derives fields the text shows only in pieces (scratch holes named `_…`).
    pub post: Option<Post>,
}

/// A post-processing step: reads scratch values by name, writes declared fields.
pub(crate) type Post = fn(&dyn Fn(&str) -> Option<u64>, &mut dyn FnMut(&str, Slot));

const SCHED_WAKEUP: &[&str] = &[
    "comm={comm:s} pid={pid:d} prio={prio:d} target_cpu={target_cpu:d}",
    "comm={comm:s} pid={pid:d} prio={prio:d} success={success:d} target_cpu={target_cpu:d}",
    // trace-cmd's sched plugin.
    "{comm:s}:{pid:d} [{prio:d}] CPU:{target_cpu:d}",
    "{comm:s}:{pid:d} [{prio:d}] success={success:d} CPU:{target_cpu:d}",
];
const COMM_PID_PRIO: &[&str] = &["comm={comm:s} pid={pid:d} prio={prio:d}"];
const VECTOR: &[&str] = &["vector={vector:d}"];
const SOFTIRQ: &[&str] = &["vec={vec:u} [action={_}]", "vec={vec:u}"];
const HRTIMER_ONLY: &[&str] = &["hrtimer={hrtimer:x}"];
const NET_SKB: &[&str] = &["dev={name:s} skbaddr={skbaddr:x} len={len:u}"];
const BLOCK_RQ: &[&str] = &[
    "{_major:u},{_minor:u} {rwbs:s} {bytes:u} ({cmd:s}) {sector:u} + {nr_sector:u} [{comm:s}]",
    // Linux ≥ 6.10 adds the I/O priority (`be,0,4`; trace-cmd prints its class as a number).
    "{_major:u},{_minor:u} {rwbs:s} {bytes:u} ({cmd:s}) {sector:u} + {nr_sector:u} {_} [{comm:s}]",
];
const KVM_EXIT: &[&str] = &[
    "vcpu {vcpu_id:u} reason {exit_reason:xr} rip 0x{guest_rip:x} info1 0x{info1:x} info2 0x{info2:x} intr_info 0x{intr_info:x} error_code 0x{error_code:x}",
    // trace-cmd's KVM plugin.
    "reason {exit_reason:xr} rip 0x{guest_rip:x} info {info1:x} {info2:x}",
];

pub(crate) const KNOWN_EVENTS: &[KnownEvent] = &[
    // sched
    KnownEvent {
        name: "sched_switch",
        system: "sched",
        templates: &[
            "prev_comm={prev_comm:s} prev_pid={prev_pid:d} prev_prio={prev_prio:d} prev_state={prev_state:ks} ==> next_comm={next_comm:s} next_pid={next_pid:d} next_prio={next_prio:d}",
            "{prev_comm:s}:{prev_pid:d} [{prev_prio:d}] {prev_state:tcs} ==> {next_comm:s}:{next_pid:d} [{next_prio:d}]",
            // `trace-cmd report -w` appends the wake-up latency.
            "{prev_comm:s}:{prev_pid:d} [{prev_prio:d}] {prev_state:tcs} ==> {next_comm:s}:{next_pid:d} [{next_prio:d}] Latency: {..}",
        ],
        post: None,
    },
    KnownEvent { name: "sched_waking", system: "sched", templates: SCHED_WAKEUP, post: None },
    KnownEvent { name: "sched_wakeup", system: "sched", templates: SCHED_WAKEUP, post: None },
    KnownEvent { name: "sched_wakeup_new", system: "sched", templates: SCHED_WAKEUP, post: None },
    KnownEvent {
        name: "sched_migrate_task",
        system: "sched",
        templates: &["comm={comm:s} pid={pid:d} prio={prio:d} orig_cpu={orig_cpu:d} dest_cpu={dest_cpu:d}"],
        post: None,
    },
    KnownEvent {
        name: "sched_process_fork",
        system: "sched",
        templates: &["comm={parent_comm:s} pid={parent_pid:d} child_comm={child_comm:s} child_pid={child_pid:d}"],
        post: None,
    },
    KnownEvent {
        name: "sched_process_exit",
        system: "sched",
        templates: &[
            "comm={comm:s} pid={pid:d} prio={prio:d}",
            "comm={comm:s} pid={pid:d} prio={prio:d} group_dead={group_dead:map=bool}",
        ],
        post: None,
    },
    KnownEvent { name: "sched_process_free", system: "sched", templates: COMM_PID_PRIO, post: None },
    KnownEvent { name: "sched_process_wait", system: "sched", templates: COMM_PID_PRIO, post: None },
    KnownEvent {
        name: "sched_process_exec",
        system: "sched",
        templates: &["filename={filename:s} pid={pid:d} old_pid={old_pid:d}"],
        post: None,
    },
    KnownEvent {
        name: "sched_stat_runtime",
        system: "sched",
        templates: &[
            "comm={comm:s} pid={pid:d} runtime={runtime:u} [ns] vruntime={vruntime:u} [ns]",
            "comm={comm:s} pid={pid:d} runtime={runtime:u} [ns]",
        ],
        post: None,
    },
    KnownEvent { name: "sched_wake_idle_without_ipi", system: "sched", templates: &["cpu={cpu:d}"], post: None },
    // kvm
    KnownEvent {
        name: "kvm_entry",
        system: "kvm",
        templates: &[
            "vcpu {vcpu_id:u}, rip 0x{rip:x}[immediate exit]{immediate_exit:=1}",
            "vcpu {vcpu_id:u}, rip 0x{rip:x}{immediate_exit:=0}",
            // trace-cmd's KVM plugin.
            "vcpu {vcpu_id:u} rip 0x{rip:x}",
        ],
        post: None,
    },
    KnownEvent { name: "kvm_exit", system: "kvm", templates: KVM_EXIT, post: None },
    KnownEvent { name: "kvm_nested_vmexit", system: "kvm", templates: KVM_EXIT, post: None },
    KnownEvent {
        name: "kvm_nested_vmexit_inject",
        system: "kvm",
        templates: &["reason: {exit_code:xr} ext_inf1: 0x{exit_info1:x} ext_inf2: 0x{exit_info2:x} ext_int: 0x{exit_int_info:x} ext_int_err: 0x{exit_int_info_err:x}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_nested_vmenter",
        system: "kvm",
        templates: &["rip: 0x{rip:x} {isa:map=vmcsb}: 0x{vmcb:x} nested_rip: 0x{nested_rip:x} int_ctl: 0x{int_ctl:x} event_inj: 0x{event_inj:x} nested_{_}={tdp_enabled:map=yn} {_}: 0x{guest_pgd:x}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_inj_virq",
        system: "kvm",
        templates: &[
            "{soft:map=inj} 0x{vector:x} [reinjected]{reinjected:=1}",
            "{soft:map=inj} 0x{vector:x}{reinjected:=0}",
        ],
        post: None,
    },
    KnownEvent {
        name: "kvm_apic_accept_irq",
        system: "kvm",
        templates: &["apicid {apicid:x} vec {vec:u} ({dm:map=dm8}|{tm:map=trig})"],
        post: None,
    },
    KnownEvent {
        name: "kvm_apic_ipi",
        system: "kvm",
        templates: &["dst {dest_id:x} vec {_vec:u} ({_dm:map=dm}|{_logical:map=destmode}|{_assert:map=assert}|{_level:map=trig}|{_shorthand:map=shorthand})"],
        post: Some(apic_ipi),
    },
    KnownEvent {
        name: "kvm_set_irq",
        system: "kvm",
        templates: &["gsi {gsi:u} level {level:d} source {irq_source_id:d}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_msi_set_irq",
        system: "kvm",
        templates: &[
            "dst {_dst:x} vec {_vec:u} ({_dm:map=dm}|{_logical:map=destmode}|{_level:map=trig})",
            "dst {_dst:x} vec {_vec:u} ({_dm:map=dm}|{_logical:map=destmode}|{_level:map=trig}|rh){_rh:=1}",
        ],
        post: Some(msi_set_irq),
    },
    KnownEvent {
        name: "kvm_userspace_exit",
        system: "kvm",
        // The number is the reason, or minus errno when errno is set.
        templates: &[
            "reason {_:map=userexit} ({reason:u}){errno:=0}",
            "reason restart ({_errno:u})",
            "reason error ({_errno:u})",
        ],
        post: Some(userspace_exit_errno),
    },
    KnownEvent {
        name: "kvm_vcpu_wakeup",
        system: "kvm",
        templates: &["{waited:map=wait} time {ns:d} ns, polling {valid:map=valid}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_pio",
        system: "kvm",
        templates: &["pio_{rw:map=rw} at 0x{port:x} size {size:u} count {count:u} val 0x{val:x}{..}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_mmio",
        system: "kvm",
        templates: &["mmio {type:map=mmio} len {len:u} gpa 0x{gpa:x} val 0x{val:x}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_msr",
        system: "kvm",
        templates: &[
            "msr_{write:map=rw} {ecx:x} = 0x{data:x} (#GP){exception:=1}",
            "msr_{write:map=rw} {ecx:x} = 0x{data:x}{exception:=0}",
        ],
        post: None,
    },
    KnownEvent {
        name: "kvm_hypercall",
        system: "kvm",
        templates: &["nr 0x{nr:x} a0 0x{a0:x} a1 0x{a1:x} a2 0x{a2:x} a3 0x{a3:x}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_ple_window_update",
        system: "kvm",
        templates: &["vcpu {vcpu_id:u} old {old:u} new {new:u} ({..}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_halt_poll_ns",
        system: "kvm",
        templates: &["vcpu {vcpu_id:u}: halt_poll_ns {new:u} ({grow:map=grow} {old:u})"],
        post: None,
    },
    KnownEvent { name: "kvm_fpu", system: "kvm", templates: &["{load:map=fpu}"], post: None },
    KnownEvent {
        name: "kvm_eoi",
        system: "kvm",
        templates: &["apicid {apicid:x} vector {vector:d}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_pv_eoi",
        system: "kvm",
        templates: &["apicid {apicid:x} vector {vector:d}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_page_fault",
        system: "kvm",
        templates: &["vcpu {vcpu_id:u} rip 0x{guest_rip:x} address 0x{fault_address:x} error_code 0x{error_code:x}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_cpuid",
        system: "kvm",
        templates: &["func {function:x} idx {index:x} rax {rax:x} rbx {rbx:x} rcx {rcx:x} rdx {rdx:x}, cpuid entry {..}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_wait_lapic_expire",
        system: "kvm",
        templates: &["vcpu {vcpu_id:u}: delta {delta:d} ({..}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_pv_tlb_flush",
        system: "kvm",
        templates: &["vcpu {vcpu_id:u} need_flush_tlb {need_flush_tlb:map=bool}"],
        post: None,
    },
    KnownEvent {
        name: "kvm_hv_timer_state",
        system: "kvm",
        templates: &["vcpu_id {vcpu_id:x} hv_timer {hv_timer_in_use:x}"],
        post: None,
    },
    // irq, softirq, x86 vectors
    KnownEvent { name: "irq_handler_entry", system: "irq", templates: &["irq={irq:d} name={name:s}"], post: None },
    KnownEvent { name: "irq_handler_exit", system: "irq", templates: &["irq={irq:d} ret={ret:map=irqret}"], post: None },
    KnownEvent { name: "softirq_entry", system: "irq", templates: SOFTIRQ, post: None },
    KnownEvent { name: "softirq_exit", system: "irq", templates: SOFTIRQ, post: None },
    KnownEvent { name: "softirq_raise", system: "irq", templates: SOFTIRQ, post: None },
    KnownEvent { name: "local_timer_entry", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "local_timer_exit", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "reschedule_entry", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "reschedule_exit", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "call_function_entry", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "call_function_exit", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "call_function_single_entry", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "call_function_single_exit", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "irq_work_entry", system: "irq_vectors", templates: VECTOR, post: None },
    KnownEvent { name: "irq_work_exit", system: "irq_vectors", templates: VECTOR, post: None },
    // block
    KnownEvent { name: "block_rq_issue", system: "block", templates: BLOCK_RQ, post: Some(block_dev) },
    KnownEvent { name: "block_rq_insert", system: "block", templates: BLOCK_RQ, post: Some(block_dev) },
    KnownEvent {
        name: "block_rq_complete",
        system: "block",
        templates: &[
            "{_major:u},{_minor:u} {rwbs:s} ({cmd:s}) {sector:u} + {nr_sector:u} [{error:d}]",
            "{_major:u},{_minor:u} {rwbs:s} ({cmd:s}) {sector:u} + {nr_sector:u} {_} [{error:d}]",
        ],
        post: Some(block_dev),
    },
    KnownEvent {
        name: "block_bio_queue",
        system: "block",
        templates: &["{_major:u},{_minor:u} {rwbs:s} {sector:u} + {nr_sector:u} [{comm:s}]"],
        post: Some(block_dev),
    },
    // net
    KnownEvent { name: "net_dev_queue", system: "net", templates: NET_SKB, post: None },
    KnownEvent { name: "netif_receive_skb", system: "net", templates: NET_SKB, post: None },
    KnownEvent {
        name: "net_dev_xmit",
        system: "net",
        templates: &["dev={name:s} skbaddr={skbaddr:x} len={len:u} rc={rc:d}"],
        post: None,
    },
    // timer
    KnownEvent {
        name: "hrtimer_start",
        system: "timer",
        templates: &[
            "hrtimer={hrtimer:x} function={function:sym} expires={expires:u} softexpires={softexpires:u} mode={mode:map=hrmode}",
            // trace-cmd's hrtimer plugin.
            "hrtimer={hrtimer:x} function={function:sym} expires={expires:u} softexpires={softexpires:u}",
        ],
        post: None,
    },
    KnownEvent {
        name: "hrtimer_expire_entry",
        system: "timer",
        templates: &[
            "hrtimer={hrtimer:x} function={function:sym} now={now:u}",
            "hrtimer={hrtimer:x} now={now:u} function={function:sym}",
        ],
        post: None,
    },
    KnownEvent { name: "hrtimer_expire_exit", system: "timer", templates: HRTIMER_ONLY, post: None },
    KnownEvent { name: "hrtimer_cancel", system: "timer", templates: HRTIMER_ONLY, post: None },
    KnownEvent {
        name: "hrtimer_init",
        system: "timer",
        templates: &["hrtimer={hrtimer:x} clockid={clockid:map=clock} mode={mode:map=hrmode}"],
        post: None,
    },
    // kmem
    KnownEvent {
        name: "mm_page_alloc",
        system: "kmem",
        templates: &["page={_} pfn={pfn:n} order={order:d} migratetype={migratetype:d} gfp_flags={gfp_flags:s}"],
        post: None,
    },
    KnownEvent {
        name: "mm_page_free",
        system: "kmem",
        templates: &["page={_} pfn={pfn:n} order={order:d}"],
        post: None,
    },
    // ksm (Linux ≥ 6.4)
    KnownEvent { name: "ksm_enter", system: "ksm", templates: &["mm {mm:x}"], post: None },
    KnownEvent {
        name: "ksm_merge_one_page",
        system: "ksm",
        templates: &["ksm pfn {pfn:u} rmap_item {rmap_item:x} mm {mm:x} error {err:d}"],
        post: None,
    },
    // Prints "ksm " when it merged into a KSM page, and nothing of the page itself: the
    // prefix stands for a non-zero `ksm_page`.
    KnownEvent {
        name: "ksm_merge_with_ksm_page",
        system: "ksm",
        templates: &[
            "ksm pfn {pfn:u} rmap_item {rmap_item:x} mm {mm:x} error {err:d}{ksm_page:=1}",
            "pfn {pfn:u} rmap_item {rmap_item:x} mm {mm:x} error {err:d}{ksm_page:=0}",
        ],
        post: None,
    },
];

pub(crate) fn known_event(name: &str) -> Option<&'static KnownEvent> {
    KNOWN_EVENTS.iter().find(|e| e.name == name)
}

/// `kvm_apic_ipi` records the ICR's low word; the text spells out its bits.
fn apic_ipi(get: &dyn Fn(&str) -> Option<u64>, set: &mut dyn FnMut(&str, Slot)) {
    let (Some(vec), Some(dm), Some(logical), Some(assert), Some(level), Some(shorthand)) = (
        get("_vec"),
        get("_dm"),
        get("_logical"),
        get("_assert"),
        get("_level"),
        get("_shorthand"),
    ) else {
        return;
    };
    let icr = vec | dm << 8 | logical << 11 | assert << 14 | level << 15 | shorthand << 18;
    set("icr_low", Slot::U(icr));
}

/// `kvm_msi_set_irq` records the MSI address and data; the text shows what they encode.
fn msi_set_irq(get: &dyn Fn(&str) -> Option<u64>, set: &mut dyn FnMut(&str, Slot)) {
    let (Some(dst), Some(vec), Some(dm), Some(logical), Some(level)) = (
        get("_dst"),
        get("_vec"),
        get("_dm"),
        get("_logical"),
        get("_level"),
    ) else {
        return;
    };
    let rh = get("_rh").unwrap_or(0);
    let address = 0xfee0_0000 | (dst & 0xff) << 12 | (dst & !0xff) << 32 | rh << 3 | logical << 2;
    set("address", Slot::U(address));
    set("data", Slot::U(vec | dm << 8 | level << 15));
}

/// Block events record `dev` as the kernel's `MKDEV(major, minor)`.
fn block_dev(get: &dyn Fn(&str) -> Option<u64>, set: &mut dyn FnMut(&str, Slot)) {
    if let (Some(major), Some(minor)) = (get("_major"), get("_minor")) {
        set("dev", Slot::U(major << 20 | minor));
    }
}

/// `kvm_userspace_exit` prints `-errno` in place of the reason when errno is set.
fn userspace_exit_errno(get: &dyn Fn(&str) -> Option<u64>, set: &mut dyn FnMut(&str, Slot)) {
    if let Some(e) = get("_errno") {
        set("errno", Slot::I(-(e as i64)));
    }
}

/// Fields that only a post-processing step writes, per event.
pub(crate) fn derived_fields(name: &str) -> &'static [&'static str] {
    match name {
        "kvm_apic_ipi" => &["icr_low"],
        "kvm_msi_set_irq" => &["address", "data"],
        "block_rq_issue" | "block_rq_insert" | "block_rq_complete" | "block_bio_queue" => &["dev"],
        _ => &[],
    }
}

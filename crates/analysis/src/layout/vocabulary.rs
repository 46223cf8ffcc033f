//! The tracers' vocabularies, in one place: which event names and fields of ftrace/perf,
//! LTTng 2.x, older LTTng and perf's CTF conversion give which [`TypedEvent`]. This is the only
//! copy of the tracers' names in virtflow: every analysis sees typed events.

use virtflow_trace::{EventClass, FieldId, FieldKind, Scope};

use super::typed::{IrqKind, PacketDir};

/// Where a packet event carries what keys it as a message.
#[derive(Clone, Copy, Debug)]
pub(super) enum KeyFields {
    None,
    /// A compound holding a TCP header somewhere below: LTTng ≥ 2.9 `network_header` (a
    /// variant over the network protocol, then `transport_header`, `tcp`), older LTTng
    /// `transport_fields` (`thtype_tcp`); with the device's name, when the event has it.
    TcpBelow(FieldId, Option<FieldId>),
    /// Flat `seq`, `ack_seq`, `flags` (the research tracer's `inet_sock_local_*`).
    Tcp {
        seq: FieldId,
        ack_seq: FieldId,
        flags: FieldId,
    },
    /// A stub trace's `msgid`.
    Stub(FieldId),
}

/// How to read the current-thread context of a class.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ContextFields {
    pub tid: Option<FieldId>,
    pub tgid: Option<FieldId>,
    pub comm: Option<FieldId>,
}

/// A field read as a task state: numeric or text.
#[derive(Clone, Copy, Debug)]
pub(super) enum StateField {
    Bits(FieldId),
    Letters(FieldId),
    Absent,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum ExitReason {
    Code(FieldId),
    Name(FieldId),
}

/// One class's decoder, with its fields resolved.
#[derive(Clone, Copy, Debug)]
pub(super) enum Handler {
    Ignore,
    SchedSwitch {
        prev_tid: FieldId,
        prev_comm: Option<FieldId>,
        prev_state: StateField,
        next_tid: FieldId,
        next_comm: Option<FieldId>,
    },
    SchedWakeup {
        tid: FieldId,
        comm: Option<FieldId>,
        target_cpu: Option<FieldId>,
    },
    SchedMigrate {
        tid: FieldId,
        dest_cpu: FieldId,
    },
    ProcessFork {
        parent_tid: Option<FieldId>,
        child_tid: FieldId,
        child_tgid: Option<FieldId>,
        child_comm: Option<FieldId>,
    },
    KvmEntry {
        vcpu_id: Option<FieldId>,
    },
    KvmExit {
        reason: ExitReason,
        isa: Option<FieldId>,
        vcpu_id: Option<FieldId>,
    },
    KvmUserspaceExit {
        reason: Option<FieldId>,
    },
    KvmInjVirq {
        vector: FieldId,
    },
    MsiSetIrq {
        data: FieldId,
    },
    SetIrq,
    ApicAcceptIrq {
        vector: FieldId,
    },
    ApicIpi {
        icr_low: FieldId,
    },
    Irq(bool, IrqKind),
    /// `softirq_entry`/`softirq_exit`, with its vector field.
    Softirq(bool, Option<FieldId>),
    TaskInfo {
        tid: FieldId,
        tgid: Option<FieldId>,
        comm: Option<FieldId>,
    },
    GuestCr3 {
        vcpu_id: Option<FieldId>,
        cr3: FieldId,
    },
    NestedEnter {
        vmcs: Option<FieldId>,
        guest_pgd: Option<FieldId>,
    },
    NestedExit(bool),
    Block {
        complete: bool,
        dev: FieldId,
        sector: FieldId,
    },
    Packet(PacketDir, bool, KeyFields),
    VmSync {
        dir: PacketDir,
        vm: FieldId,
        counter: FieldId,
    },
    /// `kvm_hypercall`: a synchronisation message when `nr` is 5 (`a0` the counter, `a1` the
    /// VM's id).
    Hypercall {
        nr: FieldId,
        a0: FieldId,
        a1: FieldId,
    },
    Page {
        alloc: bool,
        pfn: FieldId,
        order: Option<FieldId>,
    },
    KsmEnter {
        mm: FieldId,
    },
    /// `ksm_merge_one_page` (`ksm_page` none: a merge with the zero page) or
    /// `ksm_merge_with_ksm_page` (`ksm_page`: the KSM page merged into, 0 when none was).
    KsmMerge {
        mm: FieldId,
        err: Option<FieldId>,
        ksm_page: Option<FieldId>,
    },
    Marker {
        text: FieldId,
    },
}

/// The compound field of a packet event that holds its TCP header, when it has one.
fn tcp_below(class: &EventClass) -> KeyFields {
    payload(class, &["network_header", "transport_fields"]).map_or(KeyFields::None, |f| match class
        .fields[f.0 as usize]
        .kind
    {
        FieldKind::Compound => KeyFields::TcpBelow(f, payload(class, &["name"])),
        _ => KeyFields::None,
    })
}

/// The event's name in one vocabulary: `system:` prefix dropped, LTTng's infixes removed.
pub fn canonical_name(name: &str) -> &str {
    let name = name.rsplit(':').next().unwrap_or(name);
    if let Some(rest) = name.strip_prefix("kvm_x86_") {
        // `kvm_x86_entry` → `entry`; the match below puts `kvm_` back by listing both.
        return match rest {
            "entry" => "kvm_entry",
            "exit" => "kvm_exit",
            "inj_virq" => "kvm_inj_virq",
            "apic_accept_irq" => "kvm_apic_accept_irq",
            "apic_ipi" => "kvm_apic_ipi",
            "msi_set_irq" => "kvm_msi_set_irq",
            "set_irq" => "kvm_set_irq",
            "userspace_exit" => "kvm_userspace_exit",
            "nested_vmrun" => "kvm_nested_vmrun",
            "nested_vmexit" => "kvm_nested_vmexit",
            "nested_vmexit_inject" => "kvm_nested_vmexit_inject",
            _ => "",
        };
    }
    match name {
        "timer_hrtimer_expire_entry" => "hrtimer_expire_entry",
        "kmem_mm_page_alloc" => "mm_page_alloc",
        "kmem_mm_page_free" => "mm_page_free",
        "kmem_mm_page_free_batched" => "mm_page_free_batched",
        "timer_hrtimer_expire_exit" => "hrtimer_expire_exit",
        "irq_softirq_entry" => "softirq_entry",
        "irq_softirq_exit" => "softirq_exit",
        "x86_irq_vectors_local_timer_entry" => "local_timer_entry",
        "x86_irq_vectors_local_timer_exit" => "local_timer_exit",
        other => other,
    }
}

/// A payload field by one of several names (a payload `tid` must not be taken for LTTng's
/// context `tid`, so payload scope wins).
pub(super) fn payload(class: &EventClass, names: &[&str]) -> Option<FieldId> {
    let find = |pred: &dyn Fn(Scope) -> bool| {
        names.iter().find_map(|name| {
            class
                .fields
                .iter()
                .position(|f| f.name == *name && pred(f.scope))
                .map(|i| FieldId(i as u32))
        })
    };
    // Every name is tried in the payload before any is taken from a context: LTTng's
    // `sched_waking` has a payload `tid` and a context `pid`, and the payload one is meant.
    find(&|s| s == Scope::Payload).or_else(|| find(&|_| true))
}

pub(super) fn context_for(class: &EventClass) -> ContextFields {
    // Context fields: never the payload's `tid`/`pid` (sched_waking's `tid` is the wakee).
    let ctx = |name: &str| {
        class
            .fields
            .iter()
            .position(|f| f.name == name && f.scope != Scope::Payload)
            .map(|i| FieldId(i as u32))
    };
    // Names that are unambiguous anywhere (an in-memory source puts everything in the payload).
    let anywhere = |name: &str| class.field(name);
    ContextFields {
        tid: anywhere("common_pid")
            .or_else(|| anywhere("perf_tid"))
            .or_else(|| ctx("tid"))
            .or_else(|| ctx("vtid")),
        tgid: anywhere("perf_pid")
            .or_else(|| anywhere("common_tgid"))
            .or_else(|| ctx("pid"))
            .or_else(|| ctx("vpid")),
        comm: anywhere("procname")
            .or_else(|| anywhere("common_comm"))
            .or_else(|| ctx("comm")),
    }
}

pub(super) fn handler_for(class: &EventClass) -> Handler {
    let f = |names: &[&str]| payload(class, names);
    let name = canonical_name(&class.name);
    let irq = |enter: bool, kind: IrqKind| Handler::Irq(enter, kind);
    match name {
        "sched_switch" => {
            let (Some(prev_tid), Some(next_tid)) =
                (f(&["prev_pid", "prev_tid"]), f(&["next_pid", "next_tid"]))
            else {
                return Handler::Ignore;
            };
            let prev_state = match f(&["prev_state"]) {
                Some(id) if class.fields[id.0 as usize].kind == FieldKind::Str => {
                    StateField::Letters(id)
                }
                Some(id) => StateField::Bits(id),
                None => StateField::Absent,
            };
            Handler::SchedSwitch {
                prev_tid,
                prev_comm: f(&["prev_comm"]),
                prev_state,
                next_tid,
                next_comm: f(&["next_comm"]),
            }
        }
        "sched_waking" | "sched_wakeup" | "sched_wakeup_new" => match f(&["pid", "tid"]) {
            Some(tid) => Handler::SchedWakeup {
                tid,
                comm: f(&["comm"]),
                target_cpu: f(&["target_cpu"]),
            },
            None => Handler::Ignore,
        },
        "sched_migrate_task" => match (f(&["pid", "tid"]), f(&["dest_cpu"])) {
            (Some(tid), Some(dest_cpu)) => Handler::SchedMigrate { tid, dest_cpu },
            _ => Handler::Ignore,
        },
        "sched_process_fork" => match f(&["child_tid", "child_pid"]) {
            Some(child_tid) => {
                // LTTng has both `child_tid` and `child_pid` (the thread group); ftrace's
                // `child_pid` is the new task's id.
                let has_tid = f(&["child_tid"]).is_some();
                Handler::ProcessFork {
                    parent_tid: f(&["parent_tid", "parent_pid"]),
                    child_tid,
                    child_tgid: if has_tid { f(&["child_pid"]) } else { None },
                    child_comm: f(&["child_comm"]),
                }
            }
            None => Handler::Ignore,
        },
        "kvm_entry" => Handler::KvmEntry {
            vcpu_id: f(&["vcpu_id"]),
        },
        "kvm_exit" => {
            let reason = match f(&["exit_reason", "reason"]) {
                Some(id) if class.fields[id.0 as usize].kind == FieldKind::Str => {
                    ExitReason::Name(id)
                }
                Some(id) => ExitReason::Code(id),
                None => return Handler::Ignore,
            };
            Handler::KvmExit {
                reason,
                isa: f(&["isa"]),
                vcpu_id: f(&["vcpu_id"]),
            }
        }
        "kvm_userspace_exit" => Handler::KvmUserspaceExit {
            reason: f(&["reason"]),
        },
        "kvm_inj_virq" => match f(&["vector", "irq"]) {
            Some(vector) => Handler::KvmInjVirq { vector },
            None => Handler::Ignore,
        },
        "kvm_msi_set_irq" => match f(&["data"]) {
            Some(data) => Handler::MsiSetIrq { data },
            None => Handler::SetIrq,
        },
        "kvm_set_irq" => Handler::SetIrq,
        "kvm_apic_accept_irq" => match f(&["vec", "vector"]) {
            Some(vector) => Handler::ApicAcceptIrq { vector },
            None => Handler::Ignore,
        },
        "kvm_apic_ipi" => match f(&["icr_low"]) {
            Some(icr_low) => Handler::ApicIpi { icr_low },
            None => Handler::Ignore,
        },
        "perf_comm" => match f(&["tid"]) {
            Some(tid) => Handler::TaskInfo {
                tid,
                tgid: f(&["pid"]),
                comm: f(&["comm"]),
            },
            None => Handler::Ignore,
        },
        "perf_fork" => match f(&["tid"]) {
            Some(child_tid) => Handler::ProcessFork {
                parent_tid: f(&["ptid"]),
                child_tid,
                child_tgid: f(&["pid"]),
                child_comm: None,
            },
            None => Handler::Ignore,
        },
        "addons_vcpu_enter_guest" | "vcpu_enter_guest" => match f(&["cr3tmp", "cr3"]) {
            Some(cr3) => Handler::GuestCr3 {
                vcpu_id: f(&["vcpuID", "vcpu_id"]),
                cr3,
            },
            None => Handler::Ignore,
        },
        "kvm_nested_vmenter" | "kvm_nested_vmrun" => Handler::NestedEnter {
            vmcs: f(&["vmcb", "vmcs"]),
            guest_pgd: f(&["guest_pgd", "guest_cr3"]),
        },
        "kvm_nested_vmexit" => Handler::NestedExit(false),
        // `.dat` and perf name the event `print` (field `buf`); tracefs text shows it as
        // `tracing_mark_write: <buf>` and `trace-cmd report` as `print: tracing_mark_write:
        // <buf>`, which the text reader keeps whole in `text`.
        "print" | "tracing_mark_write" => match f(&["buf", "text"]) {
            Some(text) => Handler::Marker { text },
            None => Handler::Ignore,
        },
        "kvm_nested_vmexit_inject" => Handler::NestedExit(true),
        "block_rq_issue" | "block_rq_complete" => match (f(&["dev"]), f(&["sector"])) {
            (Some(dev), Some(sector)) => Handler::Block {
                complete: name == "block_rq_complete",
                dev,
                sector,
            },
            _ => Handler::Ignore,
        },
        "net_dev_queue" => Handler::Packet(PacketDir::Send, true, tcp_below(class)),
        "net_dev_xmit" => Handler::Packet(PacketDir::Send, false, KeyFields::None),
        // LTTng ≥ 2.7 may name it `net_if_receive_skb`.
        "netif_receive_skb" | "net_if_receive_skb" => {
            Handler::Packet(PacketDir::Receive, true, tcp_below(class))
        }
        "netif_rx"
        | "net_if_rx"
        | "napi_gro_receive_entry"
        | "netif_receive_skb_entry"
        | "netif_rx_entry" => Handler::Packet(PacketDir::Receive, false, KeyFields::None),
        "inet_sock_local_out" | "inet_sock_local_in" => {
            let dir = if name == "inet_sock_local_out" {
                PacketDir::Send
            } else {
                PacketDir::Receive
            };
            match (f(&["seq"]), f(&["ack_seq"]), f(&["flags"])) {
                (Some(seq), Some(ack_seq), Some(flags)) => Handler::Packet(
                    dir,
                    true,
                    KeyFields::Tcp {
                        seq,
                        ack_seq,
                        flags,
                    },
                ),
                _ => Handler::Ignore,
            }
        }
        // Trace Compass's stub traces.
        "packet_sent" | "packet_received" => {
            let dir = if name == "packet_sent" {
                PacketDir::Send
            } else {
                PacketDir::Receive
            };
            let key = f(&["msgid"]).map_or(KeyFields::None, KeyFields::Stub);
            Handler::Packet(dir, true, key)
        }
        "vmsync_gh_guest" | "vmsync_hg_host" | "vmsync_gh_host" | "vmsync_hg_guest" => {
            let dir = if matches!(name, "vmsync_gh_guest" | "vmsync_hg_host") {
                PacketDir::Send
            } else {
                PacketDir::Receive
            };
            match (f(&["vm_uid"]), f(&["cnt"])) {
                (Some(vm), Some(counter)) => Handler::VmSync { dir, vm, counter },
                _ => Handler::Ignore,
            }
        }
        "mm_page_alloc" | "mm_page_free" | "mm_page_free_batched" => match f(&["pfn", "page"]) {
            Some(pfn) => Handler::Page {
                alloc: name == "mm_page_alloc",
                pfn,
                order: if name == "mm_page_free_batched" {
                    None
                } else {
                    f(&["order"])
                },
            },
            None => Handler::Ignore,
        },
        "ksm_enter" => match f(&["mm"]) {
            Some(mm) => Handler::KsmEnter { mm },
            None => Handler::Ignore,
        },
        "ksm_merge_one_page" => match f(&["mm"]) {
            Some(mm) => Handler::KsmMerge {
                mm,
                err: f(&["err"]),
                ksm_page: None,
            },
            None => Handler::Ignore,
        },
        // `try_to_merge_with_ksm_page` traces every attempt: the first half of merging two
        // pages turns a page into a KSM page with no `ksm_page` and frees nothing, so the
        // event counts only with the KSM page it merged into.
        "ksm_merge_with_ksm_page" => match (f(&["mm"]), f(&["ksm_page"])) {
            (Some(mm), Some(ksm_page)) => Handler::KsmMerge {
                mm,
                err: f(&["err"]),
                ksm_page: Some(ksm_page),
            },
            _ => Handler::Ignore,
        },
        "kvm_hypercall" => match (f(&["nr"]), f(&["a0"]), f(&["a1"])) {
            (Some(nr), Some(a0), Some(a1)) => Handler::Hypercall { nr, a0, a1 },
            _ => Handler::Ignore,
        },
        "hrtimer_expire_entry" | "local_timer_entry" => irq(true, IrqKind::Timer),
        "hrtimer_expire_exit" | "local_timer_exit" => irq(false, IrqKind::Timer),
        "irq_handler_entry" | "irq_work_entry" => irq(true, IrqKind::Hardirq),
        "irq_handler_exit" | "irq_work_exit" => irq(false, IrqKind::Hardirq),
        "call_function_entry" | "call_function_single_entry" | "reschedule_entry" => {
            irq(true, IrqKind::Ipi)
        }
        "call_function_exit" | "call_function_single_exit" | "reschedule_exit" => {
            irq(false, IrqKind::Ipi)
        }
        "softirq_entry" => Handler::Softirq(true, f(&["vec"])),
        "softirq_exit" => Handler::Softirq(false, f(&["vec"])),
        _ => Handler::Ignore,
    }
}

//! Layouts: each tracer's vocabulary mapped onto one set of [`TypedEvent`]s.
//!
//! A [`Layout`] is built once per source from its classes: every class gets a [`Handler`]
//! with its fields already resolved to [`FieldId`]s, so decoding an event is one table
//! lookup and a few typed reads, and an event no analysis uses costs only the lookup.
//!
//! Vocabularies recognised (names are compared after dropping a `system:` prefix, as perf's
//! CTF conversion writes `kvm:kvm_exit`):
//!
//! - ftrace / trace-cmd / perf: `kvm_entry`, `kvm_exit`, `kvm_inj_virq` (`vector`),
//!   `sched_switch` (`prev_pid`, `next_pid`), `sched_waking` (`pid`), `common_pid`;
//!   perf's CTF conversion adds `perf_tid` / `perf_pid` (the thread group) as context.
//! - LTTng 2.x: `kvm_x86_entry`, `kvm_x86_exit`, `kvm_x86_inj_virq` (`irq`), `sched_switch`
//!   (`prev_tid`, `next_tid`), `sched_waking` (`tid`), `timer_hrtimer_expire_entry`,
//!   `irq_softirq_entry`…, and the `tid` / `pid` / `procname` contexts.
//! - older LTTng: `kvm_entry` / `kvm_exit` without the `x86` infix.
//! - ftrace `print` (tracefs `trace_marker`, `buf`), or its text forms `tracing_mark_write`
//!   and `print` (`text`): [`TypedEvent::Marker`], read for VMM command lines.

use virtflow_model::Isa;
use virtflow_trace::{
    ClassId, EventClass, EventHeader, EventSource, FieldId, FieldKind, Scope, Timestamp,
};

use crate::exits;

/// Whether a task switched out could still run (`R`, `R+`: preemption) or sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Runnable,
    Sleeping,
}

impl TaskState {
    /// Numeric `prev_state`: 0 is running; bits 0x1..0x80 are the sleeping states; a single
    /// higher bit (0x100 on current kernels, `TASK_REPORT_MAX`) marks a preempted task.
    pub fn from_bits(bits: u64) -> TaskState {
        if bits & 0xff == 0 {
            TaskState::Runnable
        } else {
            TaskState::Sleeping
        }
    }

    /// Text `prev_state` as ftrace prints it: `R`, `R+` runnable; any other letter sleeps.
    pub fn from_letters(s: &str) -> TaskState {
        match s.trim() {
            "R" | "R+" | "" => TaskState::Runnable,
            other => match other.parse::<u64>() {
                Ok(bits) => TaskState::from_bits(bits),
                Err(_) => TaskState::Sleeping,
            },
        }
    }
}

/// Which kind of interrupt context an event opens or closes on its CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqKind {
    /// Timer expiry: `hrtimer_expire_entry`, `local_timer_entry`.
    Timer,
    /// Any other hard or soft interrupt handler.
    Other,
}

/// How a host thread raised a guest interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqSource {
    /// `kvm_msi_set_irq`: a message-signalled interrupt, as virtio devices raise.
    Msi,
    /// `kvm_set_irq`: a legacy GSI line (serial port, RTC, PIT…), through the IOAPIC/PIC.
    Gsi,
    /// `kvm_apic_accept_irq`: the APIC accepting the vector raised just before.
    Apic,
}

/// What the analyses consume, in one vocabulary. Strings borrow from the source's current
/// event, so decoding never allocates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TypedEvent<'a> {
    SchedSwitch {
        prev_tid: u32,
        prev_comm: Option<&'a str>,
        prev_state: TaskState,
        next_tid: u32,
        next_comm: Option<&'a str>,
    },
    /// `sched_waking`, `sched_wakeup` or `sched_wakeup_new`: `tid` becomes runnable.
    SchedWakeup {
        tid: u32,
        comm: Option<&'a str>,
    },
    SchedMigrate {
        tid: u32,
        dest_cpu: u32,
    },
    ProcessFork {
        parent_tid: u32,
        child_tid: u32,
        /// The child's thread group, when the tracer says it (LTTng `child_pid`).
        child_tgid: Option<u32>,
        child_comm: Option<&'a str>,
    },
    KvmEntry {
        vcpu_id: Option<u32>,
    },
    KvmExit {
        isa: Isa,
        code: u64,
        /// The name a text trace gave, when it gave one.
        name: Option<&'a str>,
        vcpu_id: Option<u32>,
    },
    KvmUserspaceExit {
        reason: u32,
    },
    /// An interrupt injected into the guest at the coming entry.
    KvmInjVirq {
        vector: u32,
    },
    /// A host thread raising a guest interrupt: `kvm_msi_set_irq` (vector known),
    /// `kvm_set_irq` (only a GSI), `kvm_apic_accept_irq` (vector known).
    IrqRaise {
        vector: Option<u32>,
        source: IrqSource,
    },
    KvmApicIpi {
        vector: u32,
    },
    IrqEnter(IrqKind),
    IrqExit(IrqKind),
    /// The guest page-table base loaded at the coming entry: the research's LTTng
    /// `addons_vcpu_enter_guest` (`vcpuID`, `cr3tmp`) or a plain `vcpu_enter_guest`.
    GuestCr3 {
        vcpu_id: Option<u32>,
        cr3: u64,
    },
    /// L0 is about to run a nested (L2) guest: `kvm_nested_vmenter`, older
    /// `kvm_nested_vmrun`, LTTng `kvm_x86_nested_vmrun`.
    NestedEnter {
        /// The nested VMCS/VMCB address (`vmcb`).
        vmcs: Option<u64>,
        /// The L2 guest's page-table base (`guest_pgd`).
        guest_pgd: Option<u64>,
    },
    /// An exit from L2: `kvm_nested_vmexit` (`reflected` false: L0 may handle it and resume
    /// L2) or `kvm_nested_vmexit_inject` (`reflected`: L1 runs next).
    NestedExit {
        reflected: bool,
    },
    /// The text of an ftrace `print` event (`buf`; what user space wrote to tracefs
    /// `trace_marker`), where `virtflow record` leaves the VMMs' command lines.
    Marker {
        text: &'a str,
    },
    /// A thread's name and thread group from a side-band record (perf's `perf_comm`), not a
    /// kernel event: it does not extend the trace's span.
    TaskInfo {
        tid: u32,
        tgid: Option<u32>,
        comm: Option<&'a str>,
    },
}

/// Who and what the event's context says, besides the event itself.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EventContext<'a> {
    pub ts: Timestamp,
    pub cpu: u32,
    /// The current thread, when the event carries it (`common_pid`, LTTng `tid`, `perf_tid`).
    pub tid: Option<u32>,
    /// Its thread group (process id), when carried (LTTng `pid`, `perf_pid`).
    pub tgid: Option<u32>,
    /// Its name, when carried (LTTng `procname`).
    pub comm: Option<&'a str>,
}

/// How to read the current-thread context of a class.
#[derive(Clone, Copy, Debug, Default)]
struct ContextFields {
    tid: Option<FieldId>,
    tgid: Option<FieldId>,
    comm: Option<FieldId>,
}

/// A field read as a task state: numeric or text.
#[derive(Clone, Copy, Debug)]
enum StateField {
    Bits(FieldId),
    Letters(FieldId),
    Absent,
}

#[derive(Clone, Copy, Debug)]
enum ExitReason {
    Code(FieldId),
    Name(FieldId),
}

/// One class's decoder, with its fields resolved.
#[derive(Clone, Copy, Debug)]
enum Handler {
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
    Marker {
        text: FieldId,
    },
}

/// The per-class decoding table of one source. See the module documentation.
pub struct Layout {
    handlers: Vec<(Handler, ContextFields)>,
    sideband: Vec<bool>,
    /// Per class: the exit's `guest_rip`, read only by the guest-process analysis.
    guest_rip: Vec<Option<FieldId>>,
}

/// Largest plausible vCPU number: LTTng's `kvm_x86_entry` on some kernels records garbage in
/// `vcpu_id`, which must not name a vCPU.
const MAX_VCPU_ID: u64 = 4095;

impl Layout {
    pub fn new(classes: &[EventClass]) -> Layout {
        let handlers = classes
            .iter()
            .map(|c| (handler_for(c), context_for(c)))
            .collect();
        let sideband = classes
            .iter()
            .map(|c| c.name.starts_with("perf_"))
            .collect();
        let guest_rip = classes
            .iter()
            .map(|c| match canonical_name(&c.name) {
                "kvm_exit" => payload(c, &["guest_rip", "rip"]),
                _ => None,
            })
            .collect();
        Layout {
            handlers,
            sideband,
            guest_rip,
        }
    }

    /// The guest instruction pointer of the current event when it is a KVM exit that
    /// carries one (`guest_rip`).
    pub fn guest_rip(&self, src: &dyn EventSource, header: &EventHeader) -> Option<u64> {
        let field = (*self.guest_rip.get(header.class.0 as usize)?)?;
        src.u64(field)
    }

    /// True when some class decodes to KVM entries or exits.
    pub fn has_kvm(&self) -> bool {
        self.handlers
            .iter()
            .any(|(h, _)| matches!(h, Handler::KvmEntry { .. } | Handler::KvmExit { .. }))
    }

    /// Decodes the source's current event; `None` for events no analysis uses or that lack
    /// a required field.
    pub fn decode<'s>(
        &self,
        src: &'s dyn EventSource,
        header: &EventHeader,
    ) -> Option<(EventContext<'s>, TypedEvent<'s>)> {
        self.decode_names(src, header, |_| true)
    }

    /// [`Layout::decode`], reading a thread's name (`next_comm`, the woken task's `comm`, the
    /// context's `procname`) only when `wants_name(tid)`: reading and checking a name costs
    /// more than the rest of a `sched_switch`. The outgoing task's `prev_comm` is always
    /// read: a name changes while its thread runs (`exec`, `prctl(PR_SET_NAME)`) or, set by
    /// another thread, shows by the time it leaves the CPU, so switch-outs keep every known
    /// name current.
    pub fn decode_names<'s>(
        &self,
        src: &'s dyn EventSource,
        header: &EventHeader,
        wants_name: impl Fn(u32) -> bool,
    ) -> Option<(EventContext<'s>, TypedEvent<'s>)> {
        let (handler, ctx_fields) = self.handlers.get(header.class.0 as usize)?;
        let u32_of = |f: FieldId| src.u64(f).map(|v| v as u32);
        let str_of = |f: Option<FieldId>| f.and_then(|f| src.str(f));
        let name_of = |tid: u32, f: Option<FieldId>| match f {
            Some(f) if wants_name(tid) => src.str(f),
            _ => None,
        };
        let event = match *handler {
            Handler::Ignore => return None,
            Handler::SchedSwitch {
                prev_tid,
                prev_comm,
                prev_state,
                next_tid,
                next_comm,
            } => {
                let (prev_tid, next_tid) = (u32_of(prev_tid)?, u32_of(next_tid)?);
                TypedEvent::SchedSwitch {
                    prev_tid,
                    prev_comm: str_of(prev_comm),
                    prev_state: match prev_state {
                        StateField::Bits(f) => TaskState::from_bits(src.u64(f)?),
                        StateField::Letters(f) => TaskState::from_letters(src.str(f)?),
                        StateField::Absent => TaskState::Sleeping,
                    },
                    next_tid,
                    next_comm: name_of(next_tid, next_comm),
                }
            }
            Handler::SchedWakeup { tid, comm } => {
                let tid = u32_of(tid)?;
                TypedEvent::SchedWakeup {
                    tid,
                    comm: name_of(tid, comm),
                }
            }
            Handler::SchedMigrate { tid, dest_cpu } => TypedEvent::SchedMigrate {
                tid: u32_of(tid)?,
                dest_cpu: u32_of(dest_cpu)?,
            },
            Handler::ProcessFork {
                parent_tid,
                child_tid,
                child_tgid,
                child_comm,
            } => TypedEvent::ProcessFork {
                parent_tid: parent_tid.and_then(u32_of).unwrap_or(0),
                child_tid: u32_of(child_tid)?,
                child_tgid: child_tgid.and_then(u32_of),
                child_comm: str_of(child_comm),
            },
            Handler::KvmEntry { vcpu_id } => TypedEvent::KvmEntry {
                vcpu_id: vcpu_id.and_then(|f| plausible_vcpu(src.u64(f))),
            },
            Handler::KvmExit {
                reason,
                isa,
                vcpu_id,
            } => {
                let isa_field = isa.and_then(|f| src.u64(f)).and_then(|v| match v {
                    1 => Some(Isa::Vmx),
                    2 => Some(Isa::Svm),
                    _ => None,
                });
                let (isa, code, name) = match reason {
                    ExitReason::Code(f) => (isa_field.unwrap_or(Isa::Vmx), src.u64(f)?, None),
                    ExitReason::Name(f) => {
                        let name = src.str(f)?;
                        match name.parse::<u64>() {
                            Ok(code) => (isa_field.unwrap_or(Isa::Vmx), code, None),
                            Err(_) => {
                                let (isa, code) = exits::exit_from_name(name, isa_field).unwrap_or(
                                    (isa_field.unwrap_or(Isa::Vmx), u64::from(u32::MAX)),
                                );
                                (isa, code, Some(name))
                            }
                        }
                    }
                };
                TypedEvent::KvmExit {
                    isa,
                    code,
                    name,
                    vcpu_id: vcpu_id.and_then(|f| plausible_vcpu(src.u64(f))),
                }
            }
            Handler::KvmUserspaceExit { reason } => TypedEvent::KvmUserspaceExit {
                reason: reason.and_then(u32_of).unwrap_or(0),
            },
            Handler::KvmInjVirq { vector } => TypedEvent::KvmInjVirq {
                vector: u32_of(vector)?,
            },
            Handler::MsiSetIrq { data } => TypedEvent::IrqRaise {
                vector: src.u64(data).map(|d| (d & 0xff) as u32),
                source: IrqSource::Msi,
            },
            Handler::SetIrq => TypedEvent::IrqRaise {
                vector: None,
                source: IrqSource::Gsi,
            },
            Handler::ApicAcceptIrq { vector } => TypedEvent::IrqRaise {
                vector: Some(u32_of(vector)? & 0xff),
                source: IrqSource::Apic,
            },
            Handler::ApicIpi { icr_low } => TypedEvent::KvmApicIpi {
                vector: u32_of(icr_low)? & 0xff,
            },
            Handler::TaskInfo { tid, tgid, comm } => TypedEvent::TaskInfo {
                tid: u32_of(tid)?,
                tgid: tgid.and_then(u32_of),
                comm: str_of(comm),
            },
            Handler::GuestCr3 { vcpu_id, cr3 } => TypedEvent::GuestCr3 {
                vcpu_id: vcpu_id.and_then(|f| plausible_vcpu(src.u64(f))),
                cr3: src.u64(cr3)?,
            },
            Handler::NestedEnter { vmcs, guest_pgd } => TypedEvent::NestedEnter {
                vmcs: vmcs.and_then(|f| src.u64(f)),
                guest_pgd: guest_pgd.and_then(|f| src.u64(f)),
            },
            Handler::NestedExit(reflected) => TypedEvent::NestedExit { reflected },
            Handler::Marker { text } => TypedEvent::Marker {
                text: src.str(text)?,
            },
            Handler::Irq(true, kind) => TypedEvent::IrqEnter(kind),
            Handler::Irq(false, kind) => TypedEvent::IrqExit(kind),
        };
        let tid = ctx_fields.tid.and_then(u32_of);
        let ctx = EventContext {
            ts: header.ts,
            cpu: header.cpu,
            tid,
            tgid: ctx_fields.tgid.and_then(u32_of),
            comm: match tid {
                Some(tid) => name_of(tid, ctx_fields.comm),
                None => str_of(ctx_fields.comm),
            },
        };
        Some((ctx, event))
    }

    /// Side-band records (perf's `perf_mmap`, `perf_comm`…, written at time 0 by perf's CTF
    /// conversion) say nothing about when the trace starts.
    pub fn is_sideband(&self, class: ClassId) -> bool {
        self.sideband
            .get(class.0 as usize)
            .copied()
            .unwrap_or(false)
    }

    /// The class ids this layout decodes (for tests and diagnostics).
    pub fn used_classes(&self) -> Vec<ClassId> {
        self.handlers
            .iter()
            .enumerate()
            .filter(|(_, (h, _))| !matches!(h, Handler::Ignore))
            .map(|(i, _)| ClassId(i as u32))
            .collect()
    }
}

fn plausible_vcpu(v: Option<u64>) -> Option<u32> {
    v.filter(|v| *v <= MAX_VCPU_ID).map(|v| v as u32)
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
fn payload(class: &EventClass, names: &[&str]) -> Option<FieldId> {
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

fn context_for(class: &EventClass) -> ContextFields {
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

fn handler_for(class: &EventClass) -> Handler {
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
        "hrtimer_expire_entry" | "local_timer_entry" => irq(true, IrqKind::Timer),
        "hrtimer_expire_exit" | "local_timer_exit" => irq(false, IrqKind::Timer),
        "irq_handler_entry"
        | "softirq_entry"
        | "irq_work_entry"
        | "call_function_entry"
        | "call_function_single_entry"
        | "reschedule_entry" => irq(true, IrqKind::Other),
        "irq_handler_exit"
        | "softirq_exit"
        | "irq_work_exit"
        | "call_function_exit"
        | "call_function_single_exit"
        | "reschedule_exit" => irq(false, IrqKind::Other),
        _ => Handler::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("kvm:kvm_exit"), "kvm_exit");
        assert_eq!(canonical_name("kvm_x86_entry"), "kvm_entry");
        assert_eq!(canonical_name("sched:sched_switch"), "sched_switch");
        assert_eq!(
            canonical_name("timer_hrtimer_expire_entry"),
            "hrtimer_expire_entry"
        );
        assert_eq!(canonical_name("kvm_x86_emulate_insn"), "");
    }

    #[test]
    fn task_states() {
        assert_eq!(TaskState::from_bits(0), TaskState::Runnable);
        assert_eq!(TaskState::from_bits(0x100), TaskState::Runnable);
        assert_eq!(TaskState::from_bits(1), TaskState::Sleeping);
        assert_eq!(TaskState::from_bits(0x80), TaskState::Sleeping);
        assert_eq!(TaskState::from_letters("R+"), TaskState::Runnable);
        assert_eq!(TaskState::from_letters("S"), TaskState::Sleeping);
        assert_eq!(TaskState::from_letters("D|K"), TaskState::Sleeping);
    }
}

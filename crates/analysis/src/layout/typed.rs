//! The typed events: what the analyses consume, in one vocabulary, whatever the tracer.

use virtflow_model::Isa;
use virtflow_trace::Timestamp;

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
    /// An inter-processor interrupt handler (`reschedule_entry`, `call_function_entry`…).
    Ipi,
    /// A device's hard interrupt handler (`irq_handler_entry`), or `irq_work`.
    Hardirq,
    /// A softirq, by its vector when the event gives it (`softirq_entry` `vec`).
    Softirq(Option<u8>),
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

/// What pairs one message seen on two hosts (a send on one, its receive on the other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKey {
    /// A TCP segment, as Trace Compass keys it: sequence and acknowledgement numbers and the
    /// flags (ports and addresses are not recorded by every tracer).
    Tcp { seq: u32, ack_seq: u32, flags: u16 },
    /// A Trace Compass stub trace's `msgid`.
    Stub(u64),
    /// A guest↔host synchronisation message: the VM's id and the message counter.
    VmSync { vm: u64, counter: u64 },
}

/// Which way a packet goes through the host's network stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketDir {
    Send,
    Receive,
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
        /// The CPU it is woken onto (`target_cpu`), when the tracer says.
        target_cpu: Option<u32>,
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
    /// A block request reaches the device driver (`block_rq_issue`); the request is known by
    /// its device and first sector until it completes.
    BlockIssue {
        dev: u64,
        sector: u64,
    },
    /// A block request completes (`block_rq_complete`).
    BlockComplete {
        dev: u64,
        sector: u64,
    },
    /// A network packet passes a hook of the host's network stack.
    Packet {
        dir: PacketDir,
        /// The one hook per packet and direction that message matching uses
        /// (`net_dev_queue` for a send, `netif_receive_skb` for a receive); the others
        /// (`net_dev_xmit`, `netif_rx`, the `*_entry` hooks) see the same packet again.
        primary: bool,
        /// What pairs it with the same message on another host, when the tracer recorded it
        /// and the layout was asked for keys ([`crate::Layout::with_message_keys`]).
        key: Option<MessageKey>,
    },
    /// A guest↔host synchronisation message: the research tracer's `vmsync_*` events, or the
    /// host's `kvm_hypercall` number 5 that carries the same counter from the guest.
    VmSync {
        dir: PacketDir,
        key: MessageKey,
    },
    /// A host page (`4096 << order` bytes) allocated (`kmem:mm_page_alloc`).
    PageAlloc {
        pfn: u64,
        order: u32,
    },
    /// A host page freed (`mm_page_free`; `mm_page_free_batched`, order 0, only in a trace
    /// without `mm_page_free`, whose event it repeats).
    PageFree {
        pfn: u64,
        order: u32,
    },
    /// A process's memory becomes mergeable by KSM (`ksm_enter`, in the process's context).
    KsmEnter {
        mm: u64,
    },
    /// KSM merged a page of `mm` (`ksm_merge_one_page`, `ksm_merge_with_ksm_page`; `merged`:
    /// without error, and into a KSM page for the latter).
    KsmMerge {
        mm: u64,
        merged: bool,
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
    /// Its thread group (process id), when carried (LTTng `pid`, `perf_pid`) and asked for
    /// ([`crate::Layout::decode_names`] skips the groups of threads already known).
    pub tgid: Option<u32>,
    /// Its name, when carried (LTTng `procname`).
    pub comm: Option<&'a str>,
}

impl<'a> TypedEvent<'a> {
    /// The same event with each of its texts (names, a marker's text) replaced by `f`'s,
    /// visited in a fixed order: how the pass hands an event to another thread without the
    /// source it borrows from.
    pub fn map_text<'b>(&self, mut f: impl FnMut(&'a str) -> &'b str) -> TypedEvent<'b> {
        use TypedEvent as E;
        match *self {
            E::SchedSwitch {
                prev_tid,
                prev_comm,
                prev_state,
                next_tid,
                next_comm,
            } => E::SchedSwitch {
                prev_tid,
                prev_comm: prev_comm.map(&mut f),
                prev_state,
                next_tid,
                next_comm: next_comm.map(&mut f),
            },
            E::SchedWakeup {
                tid,
                comm,
                target_cpu,
            } => E::SchedWakeup {
                tid,
                comm: comm.map(f),
                target_cpu,
            },
            E::ProcessFork {
                parent_tid,
                child_tid,
                child_tgid,
                child_comm,
            } => E::ProcessFork {
                parent_tid,
                child_tid,
                child_tgid,
                child_comm: child_comm.map(f),
            },
            E::KvmExit {
                isa,
                code,
                name,
                vcpu_id,
            } => E::KvmExit {
                isa,
                code,
                name: name.map(f),
                vcpu_id,
            },
            E::Marker { text } => E::Marker { text: f(text) },
            E::TaskInfo { tid, tgid, comm } => E::TaskInfo {
                tid,
                tgid,
                comm: comm.map(f),
            },
            E::SchedMigrate { tid, dest_cpu } => E::SchedMigrate { tid, dest_cpu },
            E::KvmEntry { vcpu_id } => E::KvmEntry { vcpu_id },
            E::KvmUserspaceExit { reason } => E::KvmUserspaceExit { reason },
            E::KvmInjVirq { vector } => E::KvmInjVirq { vector },
            E::IrqRaise { vector, source } => E::IrqRaise { vector, source },
            E::KvmApicIpi { vector } => E::KvmApicIpi { vector },
            E::IrqEnter(kind) => E::IrqEnter(kind),
            E::IrqExit(kind) => E::IrqExit(kind),
            E::GuestCr3 { vcpu_id, cr3 } => E::GuestCr3 { vcpu_id, cr3 },
            E::NestedEnter { vmcs, guest_pgd } => E::NestedEnter { vmcs, guest_pgd },
            E::NestedExit { reflected } => E::NestedExit { reflected },
            E::BlockIssue { dev, sector } => E::BlockIssue { dev, sector },
            E::BlockComplete { dev, sector } => E::BlockComplete { dev, sector },
            E::Packet { dir, primary, key } => E::Packet { dir, primary, key },
            E::VmSync { dir, key } => E::VmSync { dir, key },
            E::PageAlloc { pfn, order } => E::PageAlloc { pfn, order },
            E::PageFree { pfn, order } => E::PageFree { pfn, order },
            E::KsmEnter { mm } => E::KsmEnter { mm },
            E::KsmMerge { mm, merged } => E::KsmMerge { mm, merged },
        }
    }
}

impl<'a> EventContext<'a> {
    /// The same context with its thread's name replaced by `f`'s (see
    /// [`TypedEvent::map_text`]).
    pub fn map_text<'b>(&self, f: impl FnMut(&'a str) -> &'b str) -> EventContext<'b> {
        EventContext {
            ts: self.ts,
            cpu: self.cpu,
            tid: self.tid,
            tgid: self.tgid,
            comm: self.comm.map(f),
        }
    }
}

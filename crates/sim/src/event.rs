//! The events the simulated host emits, independent of the output format.

use virtflow_model::WaitCause;

/// One tracepoint hit: when, on which CPU, in which task's context, and what.
#[derive(Clone, Debug)]
pub struct Event {
    /// Host trace clock, nanoseconds.
    pub ts: u64,
    pub cpu: u32,
    /// The task current on `cpu` (0 = the idle task, also for interrupt context on an idle CPU).
    pub tid: u32,
    pub kind: Kind,
}

/// TCP/IPv4 addressing of a packet, carried by LTTng's `network_header` fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp {
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// TCP flags (0x10 ACK, 0x18 PSH|ACK).
    pub flags: u16,
    /// Payload bytes.
    pub payload: u16,
    /// Who put it on the wire between two hosts, and when (never written to a trace).
    pub origin: Option<Origin>,
}

/// The sending end of a packet between hosts: the thread in whose context the host's
/// `net_dev_queue` left for the wire, and that event's time on the simulation's (reference)
/// clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub host: usize,
    pub tid: u32,
    pub sent: u64,
}

/// An interrupt context a CPU runs a handler in, as the trace shows it with the events that
/// open and close it (`hrtimer_expire_*`, `irq_handler_*`, `softirq_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqContext {
    Timer,
    Hardirq,
    /// A softirq by its vector (Linux's `enum softirq_action`: 3 NET_RX, 4 BLOCK…).
    Softirq(u32),
}

pub const SOFTIRQ_NET_RX: u32 = 3;
pub const SOFTIRQ_BLOCK: u32 = 4;

/// What truly made a task runnable: where its waking ran (the simulator's knowledge, never
/// written to a trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waker {
    /// Task context of this thread.
    Task(u32),
    /// The idle task, outside any interrupt handler.
    Idle,
    /// An interrupt handler; `packet` is the packet from another host it handled, if any.
    Irq {
        context: IrqContext,
        packet: Option<Origin>,
    },
}

#[derive(Clone, Debug)]
pub enum Kind {
    SchedSwitch {
        prev: u32,
        /// Kernel encoding: 0 running, 1 S, 0x100 preempted (`R+`).
        prev_state: i64,
        next: u32,
    },
    /// `cause` and `waker` are the simulator's knowledge of why the task is woken and where
    /// the waking ran (never written to a trace).
    SchedWaking {
        tid: u32,
        target_cpu: u32,
        cause: Option<WaitCause>,
        waker: Waker,
    },
    SchedWakeup {
        tid: u32,
        target_cpu: u32,
    },
    SchedMigrate {
        tid: u32,
        orig_cpu: u32,
        dest_cpu: u32,
    },
    KvmEntry {
        vcpu: u32,
        rip: u64,
    },
    KvmExit {
        reason: u32,
        isa: u32,
        rip: u64,
        info1: u64,
        info2: u64,
        vcpu: u32,
    },
    KvmUserspaceExit {
        reason: u32,
    },
    KvmInjVirq {
        vector: u32,
    },
    KvmApicAcceptIrq {
        apicid: u32,
        vec: u8,
    },
    KvmApicIpi {
        icr_low: u32,
        dest_id: u32,
    },
    KvmMsiSetIrq {
        address: u64,
        data: u64,
    },
    KvmSetIrq {
        gsi: u32,
        level: i32,
    },
    KvmVcpuWakeup {
        ns: u64,
        waited: bool,
    },
    KvmNestedVmenter {
        rip: u64,
        vmcb: u64,
        nested_rip: u64,
        guest_pgd: u64,
        isa: u32,
    },
    KvmNestedVmexit {
        reason: u32,
        isa: u32,
        rip: u64,
        info1: u64,
        info2: u64,
        vcpu: u32,
    },
    /// The research's added event: guest CR3 at each entry.
    VcpuEnterGuest {
        vcpu: u32,
        cr3: u64,
        sp: u64,
        ip: u64,
    },
    BlockRqIssue {
        sector: u64,
        nr_sector: u32,
        write: bool,
    },
    BlockRqComplete {
        sector: u64,
        nr_sector: u32,
        write: bool,
    },
    NetDevQueue {
        skb: u64,
        len: u32,
        dev: &'static str,
        tcp: Option<Tcp>,
    },
    NetifReceiveSkb {
        skb: u64,
        len: u32,
        dev: &'static str,
        tcp: Option<Tcp>,
    },
    HrtimerExpireEntry {
        hrtimer: u64,
        now: u64,
        function: u64,
    },
    HrtimerExpireExit {
        hrtimer: u64,
    },
    /// A device's hard interrupt handler begins (`irq:irq_handler_entry`).
    IrqHandlerEntry {
        irq: u32,
        name: &'static str,
    },
    /// It returns, having handled the interrupt (`irq:irq_handler_exit`, `ret` 1).
    IrqHandlerExit {
        irq: u32,
    },
    /// A softirq's handler runs (`irq:softirq_entry`, `softirq_exit`).
    SoftirqEntry {
        vec: u32,
    },
    SoftirqExit {
        vec: u32,
    },
    /// A host page allocation (`kmem:mm_page_alloc`): `4096 << order` bytes at `pfn`.
    MmPageAlloc {
        pfn: u64,
        order: u32,
        gfp: u64,
        migratetype: i32,
    },
    /// A page freed (`kmem:mm_page_free`).
    MmPageFree {
        pfn: u64,
        order: u32,
    },
    /// The batched path's marker of an order-0 page it freed (`kmem:mm_page_free_batched`);
    /// the kernel emits it after that page's `mm_page_free`.
    MmPageFreeBatched {
        pfn: u64,
    },
    /// A process's memory becomes mergeable by KSM (`ksm:ksm_enter`, Linux ≥ 6.4), in the
    /// process's context.
    KsmEnter {
        mm: u64,
    },
    /// ksmd merged a page of `mm` into the KSM page `pfn` (`ksm:ksm_merge_one_page`); `err`
    /// 0 when it did.
    KsmMergeOnePage {
        pfn: u64,
        rmap_item: u64,
        mm: u64,
        err: i32,
    },
}

impl Kind {
    /// The ftrace tracepoint name.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::SchedSwitch { .. } => "sched_switch",
            Kind::SchedWaking { .. } => "sched_waking",
            Kind::SchedWakeup { .. } => "sched_wakeup",
            Kind::SchedMigrate { .. } => "sched_migrate_task",
            Kind::KvmEntry { .. } => "kvm_entry",
            Kind::KvmExit { .. } => "kvm_exit",
            Kind::KvmUserspaceExit { .. } => "kvm_userspace_exit",
            Kind::KvmInjVirq { .. } => "kvm_inj_virq",
            Kind::KvmApicAcceptIrq { .. } => "kvm_apic_accept_irq",
            Kind::KvmApicIpi { .. } => "kvm_apic_ipi",
            Kind::KvmMsiSetIrq { .. } => "kvm_msi_set_irq",
            Kind::KvmSetIrq { .. } => "kvm_set_irq",
            Kind::KvmVcpuWakeup { .. } => "kvm_vcpu_wakeup",
            Kind::KvmNestedVmenter { .. } => "kvm_nested_vmenter",
            Kind::KvmNestedVmexit { .. } => "kvm_nested_vmexit",
            Kind::VcpuEnterGuest { .. } => "vcpu_enter_guest",
            Kind::BlockRqIssue { .. } => "block_rq_issue",
            Kind::BlockRqComplete { .. } => "block_rq_complete",
            Kind::NetDevQueue { .. } => "net_dev_queue",
            Kind::NetifReceiveSkb { .. } => "netif_receive_skb",
            Kind::HrtimerExpireEntry { .. } => "hrtimer_expire_entry",
            Kind::HrtimerExpireExit { .. } => "hrtimer_expire_exit",
            Kind::IrqHandlerEntry { .. } => "irq_handler_entry",
            Kind::IrqHandlerExit { .. } => "irq_handler_exit",
            Kind::SoftirqEntry { .. } => "softirq_entry",
            Kind::SoftirqExit { .. } => "softirq_exit",
            Kind::MmPageAlloc { .. } => "mm_page_alloc",
            Kind::MmPageFree { .. } => "mm_page_free",
            Kind::MmPageFreeBatched { .. } => "mm_page_free_batched",
            Kind::KsmEnter { .. } => "ksm_enter",
            Kind::KsmMergeOnePage { .. } => "ksm_merge_one_page",
        }
    }
}

/// `struct page` of a pfn as the kernel prints it: `vmemmap_base` (x86-64 without KASLR)
/// plus 64 bytes per page.
pub fn page_address(pfn: u64) -> u64 {
    0xffff_ea00_0000_0000 + pfn * 64
}

/// What the writers need to know about a task: its name and priority.
#[derive(Clone, Debug)]
pub struct TaskName {
    pub tid: u32,
    pub pid: u32,
    pub comm: String,
    pub prio: i32,
}

/// Task names of one host, looked up by tid (tids are small and dense enough for a vector).
#[derive(Clone, Debug, Default)]
pub struct TaskNames {
    by_tid: Vec<Option<TaskName>>,
    /// In creation order, for the `cmdlines` section.
    pub order: Vec<u32>,
}

impl TaskNames {
    pub fn add(&mut self, t: TaskName) {
        let i = t.tid as usize;
        if self.by_tid.len() <= i {
            self.by_tid.resize(i + 1, None);
        }
        self.order.push(t.tid);
        self.by_tid[i] = Some(t);
    }
    pub fn get(&self, tid: u32) -> Option<&TaskName> {
        self.by_tid.get(tid as usize).and_then(|t| t.as_ref())
    }
    /// The comm as the kernel shows it (idle tasks are `swapper/N`).
    pub fn comm(&self, tid: u32, cpu: u32) -> String {
        if tid == 0 {
            return format!("swapper/{cpu}");
        }
        self.get(tid)
            .map(|t| t.comm.clone())
            .unwrap_or_else(|| "<...>".into())
    }
    pub fn comm_ref(&self, tid: u32) -> &str {
        self.get(tid).map(|t| t.comm.as_str()).unwrap_or("<idle>")
    }
    pub fn pid(&self, tid: u32) -> u32 {
        self.get(tid).map(|t| t.pid).unwrap_or(0)
    }
    pub fn prio(&self, tid: u32) -> i32 {
        self.get(tid).map(|t| t.prio).unwrap_or(120)
    }
}

/// A format writer: receives one host's events in timestamp order.
pub trait Sink {
    fn event(&mut self, ev: &Event, names: &TaskNames) -> std::io::Result<()>;
    /// Whether events of this kind go into the trace (the truth follows only those).
    fn writes(&self, _kind: &Kind) -> bool {
        true
    }
    /// Flushes and closes; returns the number of events written.
    fn finish(&mut self, names: &TaskNames) -> std::io::Result<u64>;
}

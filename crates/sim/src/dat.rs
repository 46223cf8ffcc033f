//! trace-cmd `.dat` writer (file format version 6): the kernel's ring-buffer pages per CPU,
//! preceded by the headers and the `format` description of every event written.
//!
//! Each CPU's pages are streamed to a temporary file next to the output; `finish` writes the
//! headers and appends the CPU sections, so memory stays bounded whatever the trace length.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::event::{Event, Kind, Sink, TaskNames};
use crate::kmem;

const PAGE: usize = 4096;
const PAGE_DATA: usize = PAGE - 16;

/// One field of a tracepoint's binary layout, as `format` files describe it.
struct Field(&'static str, usize, usize, bool);

struct Format {
    system: &'static str,
    name: &'static str,
    id: u16,
    fields: &'static [Field],
    print: &'static str,
}

const SWITCH: &[Field] = &[
    Field("char prev_comm[16]", 8, 16, true),
    Field("pid_t prev_pid", 24, 4, true),
    Field("int prev_prio", 28, 4, true),
    Field("long prev_state", 32, 8, true),
    Field("char next_comm[16]", 40, 16, true),
    Field("pid_t next_pid", 56, 4, true),
    Field("int next_prio", 60, 4, true),
];
const WAKE: &[Field] = &[
    Field("char comm[16]", 8, 16, true),
    Field("pid_t pid", 24, 4, true),
    Field("int prio", 28, 4, true),
    Field("int target_cpu", 32, 4, true),
];
const MIGRATE: &[Field] = &[
    Field("char comm[16]", 8, 16, true),
    Field("pid_t pid", 24, 4, true),
    Field("int prio", 28, 4, true),
    Field("int orig_cpu", 32, 4, true),
    Field("int dest_cpu", 36, 4, true),
];
const ENTRY: &[Field] = &[
    Field("unsigned int vcpu_id", 8, 4, false),
    Field("unsigned long rip", 16, 8, false),
    Field("bool immediate_exit", 24, 1, false),
];
const EXIT: &[Field] = &[
    Field("unsigned int exit_reason", 8, 4, false),
    Field("unsigned long guest_rip", 16, 8, false),
    Field("u32 isa", 24, 4, false),
    Field("u64 info1", 32, 8, false),
    Field("u64 info2", 40, 8, false),
    Field("u32 intr_info", 48, 4, false),
    Field("u32 error_code", 52, 4, false),
    Field("unsigned int vcpu_id", 56, 4, false),
];
const USEREXIT: &[Field] = &[
    Field("__u32 reason", 8, 4, false),
    Field("int errno", 12, 4, true),
];
const INJ: &[Field] = &[
    Field("unsigned int vector", 8, 4, false),
    Field("bool soft", 12, 1, false),
    Field("bool reinjected", 13, 1, false),
];
const ACCEPT: &[Field] = &[
    Field("__u32 apicid", 8, 4, false),
    Field("__u16 dm", 12, 2, false),
    Field("__u16 tm", 14, 2, false),
    Field("__u8 vec", 16, 1, false),
];
const IPI: &[Field] = &[
    Field("__u32 icr_low", 8, 4, false),
    Field("__u32 dest_id", 12, 4, false),
];
const MSI: &[Field] = &[
    Field("__u64 address", 8, 8, false),
    Field("__u64 data", 16, 8, false),
];
const SETIRQ: &[Field] = &[
    Field("unsigned int gsi", 8, 4, false),
    Field("int level", 12, 4, true),
    Field("int irq_source_id", 16, 4, true),
];
const WAKEUP: &[Field] = &[
    Field("__u64 ns", 8, 8, false),
    Field("bool waited", 16, 1, false),
    Field("bool valid", 17, 1, false),
];
const VMENTER: &[Field] = &[
    Field("__u64 rip", 8, 8, false),
    Field("__u64 vmcb", 16, 8, false),
    Field("__u64 nested_rip", 24, 8, false),
    Field("__u32 int_ctl", 32, 4, false),
    Field("__u32 event_inj", 36, 4, false),
    Field("bool tdp_enabled", 40, 1, false),
    Field("__u64 guest_pgd", 48, 8, false),
    Field("__u32 isa", 56, 4, false),
];
const ENTERGUEST: &[Field] = &[
    Field("unsigned int vcpu_id", 8, 4, false),
    Field("u64 cr3", 16, 8, false),
    Field("u64 sp", 24, 8, false),
    Field("u64 ip", 32, 8, false),
];
const RQISSUE: &[Field] = &[
    Field("dev_t dev", 8, 4, false),
    Field("sector_t sector", 16, 8, false),
    Field("unsigned int nr_sector", 24, 4, false),
    Field("unsigned int bytes", 28, 4, false),
    Field("char rwbs[8]", 32, 8, true),
    Field("char comm[16]", 40, 16, true),
    Field("__data_loc char[] cmd", 56, 4, true),
];
const RQCOMPLETE: &[Field] = &[
    Field("dev_t dev", 8, 4, false),
    Field("sector_t sector", 16, 8, false),
    Field("unsigned int nr_sector", 24, 4, false),
    Field("int error", 28, 4, true),
    Field("char rwbs[8]", 32, 8, true),
    Field("__data_loc char[] cmd", 40, 4, true),
];
const SKB: &[Field] = &[
    Field("void * skbaddr", 8, 8, false),
    Field("unsigned int len", 16, 4, false),
    Field("__data_loc char[] name", 20, 4, true),
];
const HRT_ENTRY: &[Field] = &[
    Field("void * hrtimer", 8, 8, false),
    Field("s64 now", 16, 8, true),
    Field("void * function", 24, 8, false),
];
const HRT_EXIT: &[Field] = &[Field("void * hrtimer", 8, 8, false)];
const IRQ_ENTRY: &[Field] = &[
    Field("int irq", 8, 4, true),
    Field("__data_loc char[] name", 12, 4, true),
];
const IRQ_EXIT: &[Field] = &[Field("int irq", 8, 4, true), Field("int ret", 12, 4, true)];
const SOFTIRQ: &[Field] = &[Field("unsigned int vec", 8, 4, false)];
const PAGE_ALLOC: &[Field] = &[
    Field("unsigned long pfn", 8, 8, false),
    Field("unsigned int order", 16, 4, false),
    Field("unsigned long gfp_flags", 24, 8, false),
    Field("int migratetype", 32, 4, true),
];
const PAGE_FREE: &[Field] = &[
    Field("unsigned long pfn", 8, 8, false),
    Field("unsigned int order", 16, 4, false),
];
const PAGE_FREE_BATCHED: &[Field] = &[Field("unsigned long pfn", 8, 8, false)];
const KSM_ENTER: &[Field] = &[Field("void * mm", 8, 8, false)];
const KSM_MERGE: &[Field] = &[
    Field("unsigned long pfn", 8, 8, false),
    Field("void * rmap_item", 16, 8, false),
    Field("void * mm", 24, 8, false),
    Field("int err", 32, 4, true),
];

/// The systems written only when the trace has page events (a recording without them
/// has not these formats either).
const MEMORY_SYSTEMS: &[&str] = &["kmem", "ksm"];

/// The system written only when the trace has interrupt handler events.
const IRQ_SYSTEM: &str = "irq";

const SOFTIRQ_PRINT: &str = "\"vec=%u [action=%s]\", REC->vec, __print_symbolic(REC->vec, { 0, \"HI\" }, { 1, \"TIMER\" }, { 2, \"NET_TX\" }, { 3, \"NET_RX\" }, { 4, \"BLOCK\" }, { 5, \"IRQ_POLL\" }, { 6, \"TASKLET\" }, { 7, \"SCHED\" }, { 8, \"HRTIMER\" }, { 9, \"RCU\" })";

const EXIT_PRINT: &str = "\"vcpu %u reason %s rip 0x%lx info1 0x%016llx info2 0x%016llx intr_info 0x%08x error_code 0x%08x\", REC->vcpu_id, (REC->isa == 1) ? __print_symbolic(REC->exit_reason & 0xffff, { 1, \"EXTERNAL_INTERRUPT\" }, { 7, \"INTERRUPT_WINDOW\" }, { 10, \"CPUID\" }, { 12, \"HLT\" }, { 24, \"VMRESUME\" }, { 30, \"IO_INSTRUCTION\" }, { 31, \"MSR_READ\" }, { 32, \"MSR_WRITE\" }, { 40, \"PAUSE_INSTRUCTION\" }, { 48, \"EPT_VIOLATION\" }, { 49, \"EPT_MISCONFIG\" }) : __print_symbolic(REC->exit_reason, { 0x060, \"interrupt\" }, { 0x064, \"vintr\" }, { 0x072, \"cpuid\" }, { 0x077, \"pause\" }, { 0x078, \"hlt\" }, { 0x07b, \"io\" }, { 0x07c, \"msr\" }, { 0x080, \"vmrun\" }, { 0x400, \"npf\" }), REC->guest_rip, REC->info1, REC->info2, REC->intr_info, REC->error_code";

const FORMATS: &[Format] = &[
    Format { system: "sched", name: "sched_switch", id: 316, fields: SWITCH,
        print: "\"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d\", REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & 0xff) ? __print_flags(REC->prev_state & 0xff, \"|\", { 0x01, \"S\" }, { 0x02, \"D\" }, { 0x04, \"T\" }, { 0x08, \"t\" }, { 0x10, \"X\" }, { 0x20, \"Z\" }, { 0x40, \"P\" }, { 0x80, \"I\" }) : \"R\", REC->prev_state & 0x100 ? \"+\" : \"\", REC->next_comm, REC->next_pid, REC->next_prio" },
    Format { system: "sched", name: "sched_waking", id: 319, fields: WAKE,
        print: "\"comm=%s pid=%d prio=%d target_cpu=%03d\", REC->comm, REC->pid, REC->prio, REC->target_cpu" },
    Format { system: "sched", name: "sched_wakeup", id: 318, fields: WAKE,
        print: "\"comm=%s pid=%d prio=%d target_cpu=%03d\", REC->comm, REC->pid, REC->prio, REC->target_cpu" },
    Format { system: "sched", name: "sched_migrate_task", id: 315, fields: MIGRATE,
        print: "\"comm=%s pid=%d prio=%d orig_cpu=%d dest_cpu=%d\", REC->comm, REC->pid, REC->prio, REC->orig_cpu, REC->dest_cpu" },
    Format { system: "kvm", name: "kvm_entry", id: 1449, fields: ENTRY,
        print: "\"vcpu %u, rip 0x%lx%s\", REC->vcpu_id, REC->rip, REC->immediate_exit ? \"[immediate exit]\" : \"\"" },
    Format { system: "kvm", name: "kvm_exit", id: 1440, fields: EXIT, print: EXIT_PRINT },
    Format { system: "kvm", name: "kvm_userspace_exit", id: 1380, fields: USEREXIT,
        print: "\"reason %s (%d)\", __print_symbolic(REC->reason, { 2, \"KVM_EXIT_IO\" }, { 6, \"KVM_EXIT_MMIO\" }), REC->reason" },
    Format { system: "kvm", name: "kvm_inj_virq", id: 1439, fields: INJ,
        print: "\"%s 0x%x%s\", REC->soft ? \"Soft/INTn\" : \"IRQ\", REC->vector, REC->reinjected ? \" [reinjected]\" : \"\"" },
    Format { system: "kvm", name: "kvm_apic_accept_irq", id: 1432, fields: ACCEPT,
        print: "\"apicid %x vec %u (%s|%s)\", REC->apicid, REC->vec, __print_symbolic((REC->dm >> 8 & 0x7), { 0x0, \"Fixed\" }, { 0x1, \"LowPrio\" }, { 0x4, \"NMI\" }), REC->tm ? \"level\" : \"edge\"" },
    Format { system: "kvm", name: "kvm_apic_ipi", id: 1433, fields: IPI,
        print: "\"dst %x vec %u\", REC->dest_id, (u8)REC->icr_low" },
    Format { system: "kvm", name: "kvm_msi_set_irq", id: 1375, fields: MSI,
        print: "\"dst %llx vec %u\", (u8)(REC->address >> 12), (u8)REC->data" },
    Format { system: "kvm", name: "kvm_set_irq", id: 1378, fields: SETIRQ,
        print: "\"gsi %u level %d source %d\", REC->gsi, REC->level, REC->irq_source_id" },
    Format { system: "kvm", name: "kvm_vcpu_wakeup", id: 1379, fields: WAKEUP,
        print: "\"%s time %lld ns, polling %s\", REC->waited ? \"wait\" : \"poll\", REC->ns, REC->valid ? \"valid\" : \"invalid\"" },
    Format { system: "kvm", name: "kvm_nested_vmenter", id: 1429, fields: VMENTER,
        print: "\"rip: 0x%016llx vmcb: 0x%016llx nested_rip: 0x%016llx guest_pgd: 0x%016llx\", REC->rip, REC->vmcb, REC->nested_rip, REC->guest_pgd" },
    Format { system: "kvm", name: "kvm_nested_vmexit", id: 1427, fields: EXIT, print: EXIT_PRINT },
    Format { system: "addons", name: "vcpu_enter_guest", id: 1500, fields: ENTERGUEST,
        print: "\"vcpu_id=%u cr3=0x%llx sp=0x%llx ip=0x%llx\", REC->vcpu_id, REC->cr3, REC->sp, REC->ip" },
    Format { system: "block", name: "block_rq_issue", id: 1061, fields: RQISSUE,
        print: "\"%d,%d %s %u (%s) %llu + %u [%s]\", ((unsigned int) ((REC->dev) >> 20)), ((unsigned int) ((REC->dev) & ((1U << 20) - 1))), REC->rwbs, REC->bytes, __get_str(cmd), (unsigned long long)REC->sector, REC->nr_sector, REC->comm" },
    Format { system: "block", name: "block_rq_complete", id: 1064, fields: RQCOMPLETE,
        print: "\"%d,%d %s (%s) %llu + %u [%d]\", ((unsigned int) ((REC->dev) >> 20)), ((unsigned int) ((REC->dev) & ((1U << 20) - 1))), REC->rwbs, __get_str(cmd), (unsigned long long)REC->sector, REC->nr_sector, REC->error" },
    Format { system: "net", name: "net_dev_queue", id: 1313, fields: SKB,
        print: "\"dev=%s skbaddr=%p len=%u\", __get_str(name), REC->skbaddr, REC->len" },
    Format { system: "net", name: "netif_receive_skb", id: 1312, fields: SKB,
        print: "\"dev=%s skbaddr=%p len=%u\", __get_str(name), REC->skbaddr, REC->len" },
    Format { system: "timer", name: "hrtimer_expire_entry", id: 378, fields: HRT_ENTRY,
        print: "\"hrtimer=%p function=%p now=%llu\", REC->hrtimer, REC->function, (unsigned long long) REC->now" },
    Format { system: "timer", name: "hrtimer_expire_exit", id: 377, fields: HRT_EXIT,
        print: "\"hrtimer=%p\", REC->hrtimer" },
    Format { system: "irq", name: "irq_handler_entry", id: 130, fields: IRQ_ENTRY,
        print: "\"irq=%d name=%s\", REC->irq, __get_str(name)" },
    Format { system: "irq", name: "irq_handler_exit", id: 129, fields: IRQ_EXIT,
        print: "\"irq=%d ret=%s\", REC->irq, REC->ret ? \"handled\" : \"unhandled\"" },
    Format { system: "irq", name: "softirq_entry", id: 128, fields: SOFTIRQ, print: SOFTIRQ_PRINT },
    Format { system: "irq", name: "softirq_exit", id: 127, fields: SOFTIRQ, print: SOFTIRQ_PRINT },
    // The print format of mm_page_alloc is built by `kmem::page_alloc_print`.
    Format { system: "kmem", name: "mm_page_alloc", id: 653, fields: PAGE_ALLOC, print: "" },
    Format { system: "kmem", name: "mm_page_free", id: 655, fields: PAGE_FREE, print: kmem::PAGE_FREE_PRINT },
    Format { system: "kmem", name: "mm_page_free_batched", id: 654, fields: PAGE_FREE_BATCHED,
        print: kmem::PAGE_FREE_BATCHED_PRINT },
    Format { system: "ksm", name: "ksm_enter", id: 747, fields: KSM_ENTER, print: kmem::KSM_ENTER_PRINT },
    Format { system: "ksm", name: "ksm_merge_one_page", id: 745, fields: KSM_MERGE, print: kmem::KSM_MERGE_PRINT },
];

fn format_of(name: &str) -> &'static Format {
    FORMATS
        .iter()
        .find(|f| f.name == name)
        .expect("every event kind has a format")
}

fn format_text(f: &Format) -> String {
    let mut s = format!("name: {}\nID: {}\nformat:\n", f.name, f.id);
    s.push_str("\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n");
    s.push_str("\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n");
    s.push_str("\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n");
    s.push_str("\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n");
    for Field(decl, off, size, signed) in f.fields {
        s.push_str(&format!(
            "\tfield:{decl};\toffset:{off};\tsize:{size};\tsigned:{};\n",
            *signed as u8
        ));
    }
    if f.print.is_empty() {
        s.push_str(&format!("\nprint fmt: {}\n", kmem::page_alloc_print()));
    } else {
        s.push_str(&format!("\nprint fmt: {}\n", f.print));
    }
    s
}

/// Encodes an event's record (common header + fields) in the kernel layout.
pub fn encode(ev: &Event, names: &TaskNames, buf: &mut Vec<u8>) {
    let f = format_of(ev.kind.name());
    buf.clear();
    buf.resize(8, 0);
    buf[0..2].copy_from_slice(&f.id.to_le_bytes());
    buf[4..8].copy_from_slice(&(ev.tid as i32).to_le_bytes());
    let put = |b: &mut Vec<u8>, off: usize, bytes: &[u8]| {
        if b.len() < off + bytes.len() {
            b.resize(off + bytes.len(), 0);
        }
        b[off..off + bytes.len()].copy_from_slice(bytes);
    };
    let comm16 = |s: &str| {
        let mut c = [0u8; 16];
        let n = s.len().min(15);
        c[..n].copy_from_slice(&s.as_bytes()[..n]);
        c
    };
    let cpu = ev.cpu;
    match &ev.kind {
        Kind::SchedSwitch {
            prev,
            prev_state,
            next,
        } => {
            put(buf, 8, &comm16(&names.comm(*prev, cpu)));
            put(buf, 24, &(*prev as i32).to_le_bytes());
            put(buf, 28, &names.prio(*prev).to_le_bytes());
            put(buf, 32, &prev_state.to_le_bytes());
            put(buf, 40, &comm16(&names.comm(*next, cpu)));
            put(buf, 56, &(*next as i32).to_le_bytes());
            put(buf, 60, &names.prio(*next).to_le_bytes());
        }
        Kind::SchedWaking {
            tid, target_cpu, ..
        }
        | Kind::SchedWakeup { tid, target_cpu } => {
            put(buf, 8, &comm16(&names.comm(*tid, cpu)));
            put(buf, 24, &(*tid as i32).to_le_bytes());
            put(buf, 28, &names.prio(*tid).to_le_bytes());
            put(buf, 32, &(*target_cpu as i32).to_le_bytes());
        }
        Kind::SchedMigrate {
            tid,
            orig_cpu,
            dest_cpu,
        } => {
            put(buf, 8, &comm16(&names.comm(*tid, cpu)));
            put(buf, 24, &(*tid as i32).to_le_bytes());
            put(buf, 28, &names.prio(*tid).to_le_bytes());
            put(buf, 32, &(*orig_cpu as i32).to_le_bytes());
            put(buf, 36, &(*dest_cpu as i32).to_le_bytes());
        }
        Kind::KvmEntry { vcpu, rip } => {
            put(buf, 8, &vcpu.to_le_bytes());
            put(buf, 16, &rip.to_le_bytes());
            put(buf, 24, &[0u8; 8]);
        }
        Kind::KvmExit {
            reason,
            isa,
            rip,
            info1,
            info2,
            vcpu,
        }
        | Kind::KvmNestedVmexit {
            reason,
            isa,
            rip,
            info1,
            info2,
            vcpu,
        } => {
            put(buf, 8, &reason.to_le_bytes());
            put(buf, 16, &rip.to_le_bytes());
            put(buf, 24, &isa.to_le_bytes());
            put(buf, 32, &info1.to_le_bytes());
            put(buf, 40, &info2.to_le_bytes());
            put(buf, 48, &0u32.to_le_bytes());
            put(buf, 52, &0u32.to_le_bytes());
            put(buf, 56, &vcpu.to_le_bytes());
            put(buf, 60, &[0u8; 4]);
        }
        Kind::KvmUserspaceExit { reason } => {
            put(buf, 8, &reason.to_le_bytes());
            put(buf, 12, &0i32.to_le_bytes());
        }
        Kind::KvmInjVirq { vector } => {
            put(buf, 8, &vector.to_le_bytes());
            put(buf, 12, &[0u8; 4]);
        }
        Kind::KvmApicAcceptIrq { apicid, vec } => {
            put(buf, 8, &apicid.to_le_bytes());
            put(buf, 12, &0u16.to_le_bytes());
            put(buf, 14, &0u16.to_le_bytes());
            put(buf, 16, &[*vec, 0, 0, 0]);
        }
        Kind::KvmApicIpi { icr_low, dest_id } => {
            put(buf, 8, &icr_low.to_le_bytes());
            put(buf, 12, &dest_id.to_le_bytes());
        }
        Kind::KvmMsiSetIrq { address, data } => {
            put(buf, 8, &address.to_le_bytes());
            put(buf, 16, &data.to_le_bytes());
        }
        Kind::KvmSetIrq { gsi, level } => {
            put(buf, 8, &gsi.to_le_bytes());
            put(buf, 12, &level.to_le_bytes());
            put(buf, 16, &0i32.to_le_bytes());
        }
        Kind::KvmVcpuWakeup { ns, waited } => {
            put(buf, 8, &ns.to_le_bytes());
            put(buf, 16, &[*waited as u8, 1, 0, 0, 0, 0, 0, 0]);
        }
        Kind::KvmNestedVmenter {
            rip,
            vmcb,
            nested_rip,
            guest_pgd,
            isa,
        } => {
            put(buf, 8, &rip.to_le_bytes());
            put(buf, 16, &vmcb.to_le_bytes());
            put(buf, 24, &nested_rip.to_le_bytes());
            put(buf, 32, &0u32.to_le_bytes());
            put(buf, 36, &0u32.to_le_bytes());
            put(buf, 40, &[1u8, 0, 0, 0, 0, 0, 0, 0]);
            put(buf, 48, &guest_pgd.to_le_bytes());
            put(buf, 56, &isa.to_le_bytes());
            put(buf, 60, &[0u8; 4]);
        }
        Kind::VcpuEnterGuest { vcpu, cr3, sp, ip } => {
            put(buf, 8, &vcpu.to_le_bytes());
            put(buf, 12, &[0u8; 4]);
            put(buf, 16, &cr3.to_le_bytes());
            put(buf, 24, &sp.to_le_bytes());
            put(buf, 32, &ip.to_le_bytes());
        }
        Kind::BlockRqIssue {
            sector,
            nr_sector,
            write,
        } => {
            put(buf, 8, &disk_dev().to_le_bytes());
            put(buf, 12, &[0u8; 4]);
            put(buf, 16, &sector.to_le_bytes());
            put(buf, 24, &nr_sector.to_le_bytes());
            put(buf, 28, &(nr_sector * 512).to_le_bytes());
            put(buf, 32, &rwbs(*write));
            put(buf, 40, &comm16(&names.comm(ev.tid, cpu)));
            // __data_loc: offset in the low 16 bits, length in the high 16 bits.
            put(buf, 56, &((1u32 << 16) | 60).to_le_bytes());
            put(buf, 60, &[0u8]);
        }
        Kind::BlockRqComplete {
            sector,
            nr_sector,
            write,
        } => {
            put(buf, 8, &disk_dev().to_le_bytes());
            put(buf, 12, &[0u8; 4]);
            put(buf, 16, &sector.to_le_bytes());
            put(buf, 24, &nr_sector.to_le_bytes());
            put(buf, 28, &0i32.to_le_bytes());
            put(buf, 32, &rwbs(*write));
            put(buf, 40, &((1u32 << 16) | 44).to_le_bytes());
            put(buf, 44, &[0u8]);
        }
        Kind::NetDevQueue { skb, len, dev, .. } | Kind::NetifReceiveSkb { skb, len, dev, .. } => {
            put(buf, 8, &skb.to_le_bytes());
            put(buf, 16, &len.to_le_bytes());
            let n = dev.len() as u32 + 1;
            put(buf, 20, &((n << 16) | 24).to_le_bytes());
            put(buf, 24, dev.as_bytes());
            put(buf, 24 + dev.len(), &[0u8]);
        }
        Kind::HrtimerExpireEntry {
            hrtimer,
            now,
            function,
        } => {
            put(buf, 8, &hrtimer.to_le_bytes());
            put(buf, 16, &now.to_le_bytes());
            put(buf, 24, &function.to_le_bytes());
        }
        Kind::HrtimerExpireExit { hrtimer } => {
            put(buf, 8, &hrtimer.to_le_bytes());
        }
        Kind::IrqHandlerEntry { irq, name } => {
            put(buf, 8, &(*irq as i32).to_le_bytes());
            let n = name.len() as u32 + 1;
            put(buf, 12, &((n << 16) | 16).to_le_bytes());
            put(buf, 16, name.as_bytes());
            put(buf, 16 + name.len(), &[0u8]);
        }
        Kind::IrqHandlerExit { irq } => {
            put(buf, 8, &(*irq as i32).to_le_bytes());
            put(buf, 12, &1i32.to_le_bytes());
        }
        Kind::SoftirqEntry { vec } | Kind::SoftirqExit { vec } => put(buf, 8, &vec.to_le_bytes()),
        Kind::MmPageAlloc {
            pfn,
            order,
            gfp,
            migratetype,
        } => {
            put(buf, 8, &pfn.to_le_bytes());
            put(buf, 16, &order.to_le_bytes());
            put(buf, 20, &[0u8; 4]);
            put(buf, 24, &gfp.to_le_bytes());
            put(buf, 32, &migratetype.to_le_bytes());
        }
        Kind::MmPageFree { pfn, order } => {
            put(buf, 8, &pfn.to_le_bytes());
            put(buf, 16, &order.to_le_bytes());
        }
        Kind::MmPageFreeBatched { pfn } => put(buf, 8, &pfn.to_le_bytes()),
        Kind::KsmEnter { mm } => put(buf, 8, &mm.to_le_bytes()),
        Kind::KsmMergeOnePage {
            pfn,
            rmap_item,
            mm,
            err,
        } => {
            put(buf, 8, &pfn.to_le_bytes());
            put(buf, 16, &rmap_item.to_le_bytes());
            put(buf, 24, &mm.to_le_bytes());
            put(buf, 32, &err.to_le_bytes());
        }
    }
    // Records are padded to 4 bytes (the ring buffer's alignment).
    let n = buf.len().div_ceil(4) * 4;
    buf.resize(n, 0);
}

/// The virtio disk as the host sees it: 254:0 (`MKDEV` with 20 minor bits).
pub fn disk_dev() -> u32 {
    254 << 20
}

fn rwbs(write: bool) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = if write { b'W' } else { b'R' };
    b
}

struct CpuBuf {
    file: BufWriter<File>,
    path: PathBuf,
    page: Vec<u8>,
    page_ts: u64,
    last_ts: u64,
    pages: u64,
}

impl CpuBuf {
    fn flush_page(&mut self) -> std::io::Result<()> {
        if self.page.is_empty() {
            return Ok(());
        }
        let mut hdr = [0u8; 16];
        hdr[0..8].copy_from_slice(&self.page_ts.to_le_bytes());
        hdr[8..16].copy_from_slice(&(self.page.len() as u64).to_le_bytes());
        self.file.write_all(&hdr)?;
        self.file.write_all(&self.page)?;
        self.file
            .write_all(&vec![0u8; PAGE_DATA - self.page.len()])?;
        self.page.clear();
        self.pages += 1;
        Ok(())
    }
}

pub struct DatWriter {
    path: PathBuf,
    /// Written in the uname option, where trace-cmd records the host's name.
    hostname: String,
    cpus: Vec<CpuBuf>,
    rec: Vec<u8>,
    count: u64,
    /// Whether the kmem and ksm formats are written.
    memory: bool,
    /// Whether the irq formats are written.
    irq: bool,
}

impl DatWriter {
    pub fn create(path: &Path, ncpus: u32, hostname: &str) -> std::io::Result<DatWriter> {
        let mut cpus = Vec::new();
        for c in 0..ncpus {
            let p = path.with_extension(format!("cpu{c}.tmp"));
            cpus.push(CpuBuf {
                file: BufWriter::with_capacity(1 << 16, File::create(&p)?),
                path: p,
                page: Vec::with_capacity(PAGE_DATA),
                page_ts: 0,
                last_ts: 0,
                pages: 0,
            });
        }
        Ok(DatWriter {
            path: path.to_path_buf(),
            hostname: hostname.to_string(),
            cpus,
            rec: Vec::with_capacity(128),
            count: 0,
            memory: false,
            irq: false,
        })
    }

    /// Writes the formats of the page and KSM events too (a recording with them enabled).
    pub fn with_memory_events(mut self) -> DatWriter {
        self.memory = true;
        self
    }

    /// Writes the formats of the interrupt handlers' events too.
    pub fn with_irq_events(mut self) -> DatWriter {
        self.irq = true;
        self
    }
}

impl Sink for DatWriter {
    fn event(&mut self, ev: &Event, names: &TaskNames) -> std::io::Result<()> {
        encode(ev, names, &mut self.rec);
        let c = &mut self.cpus[ev.cpu as usize];
        // Event header: type_len (records ≤ 112 bytes) and a 27-bit delta; larger deltas
        // go in a TIME_EXTEND record (type 30) first.
        let type_len = (self.rec.len() / 4) as u32;
        debug_assert!(type_len <= 28);
        let mut need = 4 + self.rec.len();
        let mut delta = ev.ts.saturating_sub(c.last_ts);
        if !c.page.is_empty() && delta >= (1 << 27) {
            need += 8;
        }
        if c.page.is_empty() || c.page.len() + need > PAGE_DATA {
            c.flush_page()?;
            c.page_ts = ev.ts;
            c.last_ts = ev.ts;
            delta = 0;
        } else if delta >= (1 << 27) {
            let hi = (delta >> 27) as u32;
            let lo = (delta & ((1 << 27) - 1)) as u32;
            c.page.extend_from_slice(&(30 | (lo << 5)).to_le_bytes());
            c.page.extend_from_slice(&hi.to_le_bytes());
            delta = 0;
        }
        c.page
            .extend_from_slice(&(type_len | ((delta as u32) << 5)).to_le_bytes());
        c.page.extend_from_slice(&self.rec);
        c.last_ts = ev.ts;
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self, names: &TaskNames) -> std::io::Result<u64> {
        for c in &mut self.cpus {
            c.flush_page()?;
            c.file.flush()?;
        }
        let mut out = BufWriter::new(File::create(&self.path)?);
        out.write_all(&[0x17, 0x08, 0x44])?;
        out.write_all(b"tracing6\0")?;
        out.write_all(&[0u8, 8])?; // little endian, 8-byte longs
        out.write_all(&(PAGE as u32).to_le_bytes())?;
        let header_page = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n";
        out.write_all(b"header_page\0")?;
        out.write_all(&(header_page.len() as u64).to_le_bytes())?;
        out.write_all(header_page.as_bytes())?;
        let header_event = "# compressed entry header\n\
\ttype_len    :    5 bits\n\
\ttime_delta  :   27 bits\n\
\tarray       :   32 bits\n\
\n\
\tpadding     : type == 29\n\
\ttime_extend : type == 30\n\
\ttime_stamp : type == 31\n\
\tdata max type_len  == 28\n";
        out.write_all(b"header_event\0")?;
        out.write_all(&(header_event.len() as u64).to_le_bytes())?;
        out.write_all(header_event.as_bytes())?;
        // No ftrace-internal formats.
        out.write_all(&0u32.to_le_bytes())?;
        // Event systems, in a fixed order.
        let mut systems: Vec<&str> = Vec::new();
        for f in FORMATS {
            if !self.memory && MEMORY_SYSTEMS.contains(&f.system) {
                continue;
            }
            if !self.irq && f.system == IRQ_SYSTEM {
                continue;
            }
            if !systems.contains(&f.system) {
                systems.push(f.system);
            }
        }
        out.write_all(&(systems.len() as u32).to_le_bytes())?;
        for s in systems {
            out.write_all(s.as_bytes())?;
            out.write_all(&[0])?;
            let fs: Vec<&Format> = FORMATS.iter().filter(|f| f.system == s).collect();
            out.write_all(&(fs.len() as u32).to_le_bytes())?;
            for f in fs {
                let t = format_text(f);
                out.write_all(&(t.len() as u64).to_le_bytes())?;
                out.write_all(t.as_bytes())?;
            }
        }
        out.write_all(&0u32.to_le_bytes())?; // kallsyms
        out.write_all(&0u32.to_le_bytes())?; // printk
        let mut cmdlines = String::new();
        for &tid in &names.order {
            if let Some(t) = names.get(tid) {
                cmdlines.push_str(&format!("{} {}\n", t.tid, t.comm));
            }
        }
        out.write_all(&(cmdlines.len() as u64).to_le_bytes())?;
        out.write_all(cmdlines.as_bytes())?;
        out.write_all(&(self.cpus.len() as u32).to_le_bytes())?;
        out.write_all(b"options  \0")?;
        // UNAME: `sysname nodename release machine`, as trace-cmd writes it.
        let uname = format!("Linux {} 6.1.0-virtflow-sim x86_64\0", self.hostname);
        out.write_all(&5u16.to_le_bytes())?;
        out.write_all(&(uname.len() as u32).to_le_bytes())?;
        out.write_all(uname.as_bytes())?;
        out.write_all(&0u16.to_le_bytes())?;
        out.write_all(b"flyrecord\0")?;
        out.flush()?;
        let mut pos = out.stream_position()? + 16 * self.cpus.len() as u64;
        pos = pos.div_ceil(PAGE as u64) * PAGE as u64;
        for c in &self.cpus {
            let size = c.pages * PAGE as u64;
            out.write_all(&pos.to_le_bytes())?;
            out.write_all(&size.to_le_bytes())?;
            pos += size;
        }
        let here = out.stream_position()?;
        let aligned = here.div_ceil(PAGE as u64) * PAGE as u64;
        out.write_all(&vec![0u8; (aligned - here) as usize])?;
        let mut buf = vec![0u8; 1 << 16];
        for c in &mut self.cpus {
            drop(std::mem::replace(
                &mut c.file,
                BufWriter::new(tempfile_sink()?),
            ));
            let mut f = File::open(&c.path)?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
            }
            std::fs::remove_file(&c.path)?;
        }
        out.flush()?;
        Ok(self.count)
    }
}

/// A writable handle that discards (to release the per-CPU temporary file before reading it).
fn tempfile_sink() -> std::io::Result<File> {
    File::options()
        .write(true)
        .open(if cfg!(windows) { "NUL" } else { "/dev/null" })
}

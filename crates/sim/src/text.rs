//! ftrace text writer, in the layout `trace-cmd report -t` prints (nanosecond timestamps).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::event::{Event, Kind, Sink, TaskNames};
use crate::host::exit_name;
use crate::kmem;
use crate::truth::isa_of_number;

pub struct TextWriter {
    out: BufWriter<File>,
    line: String,
    count: u64,
}

impl TextWriter {
    pub fn create(path: &Path, ncpus: u32) -> std::io::Result<TextWriter> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
        writeln!(out, "cpus={ncpus}")?;
        Ok(TextWriter {
            out,
            line: String::with_capacity(256),
            count: 0,
        })
    }
}

/// The fields part of a line, as the event's print format renders it.
pub fn render_fields(ev: &Event, names: &TaskNames, s: &mut String) {
    let cpu = ev.cpu;
    let _ = match &ev.kind {
        Kind::SchedSwitch {
            prev,
            prev_state,
            next,
        } => {
            let st = prev_state & 0xff;
            let letters = ["S", "D", "T", "t", "X", "Z", "P", "I"];
            let mut state = String::new();
            if st == 0 {
                state.push('R');
            } else {
                for (i, l) in letters.iter().enumerate() {
                    if st & (1 << i) != 0 {
                        if !state.is_empty() {
                            state.push('|');
                        }
                        state.push_str(l);
                    }
                }
            }
            if prev_state & 0x100 != 0 {
                state.push('+');
            }
            write!(
                s,
                "prev_comm={} prev_pid={} prev_prio={} prev_state={} ==> next_comm={} next_pid={} next_prio={}",
                names.comm(*prev, cpu),
                prev,
                names.prio(*prev),
                state,
                names.comm(*next, cpu),
                next,
                names.prio(*next)
            )
        }
        Kind::SchedWaking { tid, target_cpu, .. } | Kind::SchedWakeup { tid, target_cpu } => write!(
            s,
            "comm={} pid={} prio={} target_cpu={:03}",
            names.comm(*tid, cpu),
            tid,
            names.prio(*tid),
            target_cpu
        ),
        Kind::SchedMigrate {
            tid,
            orig_cpu,
            dest_cpu,
        } => write!(
            s,
            "comm={} pid={} prio={} orig_cpu={} dest_cpu={}",
            names.comm(*tid, cpu),
            tid,
            names.prio(*tid),
            orig_cpu,
            dest_cpu
        ),
        Kind::KvmEntry { vcpu, rip } => write!(s, "vcpu {vcpu}, rip 0x{rip:x}"),
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
        } => write!(
            s,
            "vcpu {vcpu} reason {} rip 0x{rip:x} info1 0x{info1:016x} info2 0x{info2:016x} intr_info 0x{:08x} error_code 0x{:08x}",
            exit_name(isa_of_number(*isa), *reason as u64),
            0,
            0
        ),
        Kind::KvmUserspaceExit { reason } => {
            let n = match reason {
                2 => "KVM_EXIT_IO",
                6 => "KVM_EXIT_MMIO",
                _ => "KVM_EXIT_UNKNOWN",
            };
            write!(s, "reason {n} ({reason})")
        }
        Kind::KvmInjVirq { vector } => write!(s, "IRQ 0x{vector:x}"),
        Kind::KvmApicAcceptIrq { apicid, vec } => {
            write!(s, "apicid {apicid:x} vec {vec} (Fixed|edge)")
        }
        Kind::KvmApicIpi { icr_low, dest_id } => {
            write!(s, "dst {dest_id:x} vec {}", icr_low & 0xff)
        }
        Kind::KvmMsiSetIrq { address, data } => {
            write!(s, "dst {:x} vec {}", (address >> 12) & 0xff, data & 0xff)
        }
        Kind::KvmSetIrq { gsi, level } => write!(s, "gsi {gsi} level {level} source 0"),
        Kind::KvmVcpuWakeup { ns, waited } => write!(
            s,
            "{} time {ns} ns, polling valid",
            if *waited { "wait" } else { "poll" }
        ),
        Kind::KvmNestedVmenter {
            rip,
            vmcb,
            nested_rip,
            guest_pgd,
            ..
        } => write!(
            s,
            "rip: 0x{rip:016x} vmcb: 0x{vmcb:016x} nested_rip: 0x{nested_rip:016x} guest_pgd: 0x{guest_pgd:016x}"
        ),
        Kind::VcpuEnterGuest { vcpu, cr3, sp, ip } => {
            write!(s, "vcpu_id={vcpu} cr3=0x{cr3:x} sp=0x{sp:x} ip=0x{ip:x}")
        }
        Kind::BlockRqIssue {
            sector,
            nr_sector,
            write,
        } => write!(
            s,
            "254,0 {} {} () {} + {} [{}]",
            if *write { "W" } else { "R" },
            nr_sector * 512,
            sector,
            nr_sector,
            names.comm(ev.tid, cpu)
        ),
        Kind::BlockRqComplete {
            sector,
            nr_sector,
            write,
        } => write!(
            s,
            "254,0 {} () {} + {} [0]",
            if *write { "W" } else { "R" },
            sector,
            nr_sector
        ),
        Kind::NetDevQueue { skb, len, dev, .. } | Kind::NetifReceiveSkb { skb, len, dev, .. } => {
            write!(s, "dev={dev} skbaddr=0x{skb:x} len={len}")
        }
        Kind::HrtimerExpireEntry {
            hrtimer,
            now,
            function,
        } => write!(s, "hrtimer=0x{hrtimer:x} function=0x{function:x} now={now}"),
        Kind::HrtimerExpireExit { hrtimer } => write!(s, "hrtimer=0x{hrtimer:x}"),
        Kind::IrqHandlerEntry { irq, name } => write!(s, "irq={irq} name={name}"),
        Kind::IrqHandlerExit { irq } => write!(s, "irq={irq} ret=handled"),
        Kind::SoftirqEntry { vec } | Kind::SoftirqExit { vec } => {
            let action = [
                "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED",
                "HRTIMER", "RCU",
            ];
            let action = action.get(*vec as usize).copied().unwrap_or("");
            write!(s, "vec={vec} [action={action}]")
        }
        Kind::MmPageAlloc {
            pfn,
            order,
            gfp,
            migratetype,
        } => {
            // trace-cmd evaluates `vmemmap_base` as 0: the page is printed as the pfn.
            let _ = write!(
                s,
                "page=0x{pfn:x} pfn=0x{pfn:x} order={order} migratetype={migratetype} gfp_flags="
            );
            kmem::gfp_text(*gfp, s);
            Ok(())
        }
        Kind::MmPageFree { pfn, order } => {
            write!(s, "page=0x{pfn:x} pfn=0x{pfn:x} order={order}")
        }
        Kind::MmPageFreeBatched { pfn } => write!(s, "page=0x{pfn:x} pfn=0x{pfn:x} order=0"),
        Kind::KsmEnter { mm } => write!(s, "mm 0x{mm:x}"),
        Kind::KsmMergeOnePage {
            pfn,
            rmap_item,
            mm,
            err,
        } => write!(
            s,
            "ksm pfn {pfn} rmap_item 0x{rmap_item:x} mm 0x{mm:x} error {err}"
        ),
    };
}

impl Sink for TextWriter {
    fn event(&mut self, ev: &Event, names: &TaskNames) -> std::io::Result<()> {
        let s = &mut self.line;
        s.clear();
        let comm = if ev.tid == 0 {
            "<idle>"
        } else {
            names.comm_ref(ev.tid)
        };
        let name = ev.kind.name();
        let _ = write!(
            s,
            "{:>16}-{:<5} [{:03}] {:>5}.{:09}: {:<21} ",
            comm,
            ev.tid,
            ev.cpu,
            ev.ts / 1_000_000_000,
            ev.ts % 1_000_000_000,
            format!("{name}:")
        );
        render_fields(ev, names, s);
        s.push('\n');
        self.out.write_all(s.as_bytes())?;
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self, _names: &TaskNames) -> std::io::Result<u64> {
        self.out.flush()?;
        Ok(self.count)
    }
}

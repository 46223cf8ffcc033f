//! CTF 1.8 writer in the layout of an LTTng kernel trace: one stream file per CPU
//! (`channel0_N`), packets with LTTng's header and context, `event_header_large`, the
//! `_tid`/`_pid`/`_procname` event context, and LTTng's event and field names.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::event::{page_address, Event, Kind, Sink, TaskNames};

const PACKET_MAX: usize = 64 * 1024;
const HEADER_LEN: usize = 32 + 52;
const MAGIC: u32 = 0xC1FC_1FC1;

const U8: &str = "integer { size = 8; align = 8; signed = 0; encoding = none; base = 10; }";
const U16: &str = "integer { size = 16; align = 8; signed = 0; encoding = none; base = 10; }";
const U32: &str = "integer { size = 32; align = 8; signed = 0; encoding = none; base = 10; }";
const I32: &str = "integer { size = 32; align = 8; signed = 1; encoding = none; base = 10; }";
const U64: &str = "integer { size = 64; align = 8; signed = 0; encoding = none; base = 10; }";
const X64: &str = "integer { size = 64; align = 8; signed = 0; encoding = none; base = 16; }";
const I64: &str = "integer { size = 64; align = 8; signed = 1; encoding = none; base = 10; }";
const CHAR: &str = "integer { size = 8; align = 8; signed = 1; encoding = UTF8; base = 10; }";

/// (LTTng event name, fields as TSDL declarations). The index is the event id.
fn events() -> Vec<(&'static str, String)> {
    let f = |v: &[(&str, &str)]| -> String {
        v.iter().map(|(t, n)| format!("\t\t{t} {n};\n")).collect()
    };
    let wake = f(&[
        (CHAR, "_comm[16]"),
        (I32, "_tid"),
        (I32, "_prio"),
        (I32, "_target_cpu"),
    ]);
    let be = |size: u32, base: u32| {
        format!("integer {{ size = {size}; align = 8; signed = 0; encoding = none; base = {base}; byte_order = be; }}")
    };
    let ipv4 = format!(
        "\t\tenum : {U8} {{ \"_unknown\" = 0, \"_ipv4\" = 1 }} _network_header_type;\n\
\t\tvariant <_network_header_type> {{\n\
\t\t\tstruct {{ }} _unknown;\n\
\t\t\tstruct {{\n\
\t\t\t\tinteger {{ size = 4; align = 4; signed = 0; encoding = none; base = 10; byte_order = be; }} _version;\n\
\t\t\t\tinteger {{ size = 4; align = 4; signed = 0; encoding = none; base = 10; byte_order = be; }} _ihl;\n\
\t\t\t\t{b8} _tos;\n\t\t\t\t{b16} _tot_len;\n\t\t\t\t{b16x} _id;\n\t\t\t\t{b16} _frag_off;\n\t\t\t\t{b8} _ttl;\n\
\t\t\t\tenum : {b8} {{ \"_icmp\" = 1, \"_tcp\" = 6, \"_udp\" = 17 }} _protocol;\n\
\t\t\t\t{b16x} _checksum;\n\
\t\t\t\t{b8} _saddr[4];\n\t\t\t\t{b8} _daddr[4];\n\
\t\t\t\tenum : {U8} {{ \"_unknown\" = 0, \"_tcp\" = 1 }} _transport_header_type;\n\
\t\t\t\tvariant <_transport_header_type> {{\n\
\t\t\t\t\tstruct {{ }} _unknown;\n\
\t\t\t\t\tstruct {{\n\
\t\t\t\t\t\t{b16} _source_port;\n\t\t\t\t\t\t{b16} _dest_port;\n\t\t\t\t\t\t{b32} _seq;\n\t\t\t\t\t\t{b32} _ack_seq;\n\
\t\t\t\t\t\tinteger {{ size = 4; align = 4; signed = 0; encoding = none; base = 10; byte_order = be; }} _data_offset;\n\
\t\t\t\t\t\tinteger {{ size = 3; align = 1; signed = 0; encoding = none; base = 10; byte_order = be; }} _reserved;\n\
\t\t\t\t\t\tinteger {{ size = 9; align = 1; signed = 0; encoding = none; base = 16; byte_order = be; }} _flags;\n\
\t\t\t\t\t\t{b16} _window_size;\n\t\t\t\t\t\t{b16x} _checksum;\n\t\t\t\t\t\t{b16} _urg_ptr;\n\
\t\t\t\t\t}} _tcp;\n\
\t\t\t\t}} _transport_header;\n\
\t\t\t}} _ipv4;\n\
\t\t}} _network_header;\n",
        b8 = be(8, 10),
        b16 = be(16, 10),
        b16x = be(16, 16),
        b32 = be(32, 10),
    );
    let skb = format!(
        "{}{}",
        f(&[(X64, "_skbaddr"), (U32, "_len"), ("string", "_name")]),
        ipv4
    );
    vec![
        (
            "sched_switch",
            f(&[
                (CHAR, "_prev_comm[16]"),
                (I32, "_prev_tid"),
                (I32, "_prev_prio"),
                (I64, "_prev_state"),
                (CHAR, "_next_comm[16]"),
                (I32, "_next_tid"),
                (I32, "_next_prio"),
            ]),
        ),
        ("sched_waking", wake.clone()),
        ("sched_wakeup", wake),
        (
            "sched_migrate_task",
            f(&[
                (CHAR, "_comm[16]"),
                (I32, "_tid"),
                (I32, "_prio"),
                (I32, "_orig_cpu"),
                (I32, "_dest_cpu"),
            ]),
        ),
        ("kvm_x86_entry", f(&[(U32, "_vcpu_id")])),
        (
            "kvm_x86_exit",
            f(&[
                (U32, "_exit_reason"),
                (U64, "_guest_rip"),
                (U32, "_isa"),
                (U64, "_info1"),
                (U64, "_info2"),
                (U32, "_intr_info"),
                (U32, "_error_code"),
                (U32, "_vcpu_id"),
            ]),
        ),
        (
            "kvm_userspace_exit",
            f(&[(U32, "_reason"), (I32, "_errno")]),
        ),
        ("kvm_x86_inj_virq", f(&[(U32, "_irq")])),
        (
            "kvm_x86_apic_accept_irq",
            f(&[
                (U32, "_apicid"),
                (U16, "_dm"),
                (U8, "_tm"),
                (U8, "_vec"),
                (U8, "_coalesced"),
            ]),
        ),
        (
            "kvm_x86_apic_ipi",
            f(&[(U32, "_icr_low"), (U32, "_dest_id")]),
        ),
        ("kvm_msi_set_irq", f(&[(X64, "_address"), (U64, "_data")])),
        (
            "kvm_set_irq",
            f(&[(U32, "_gsi"), (I32, "_level"), (I32, "_irq_source_id")]),
        ),
        (
            "kvm_x86_nested_vmrun",
            f(&[
                (U64, "_rip"),
                (U64, "_vmcb"),
                (U64, "_nested_rip"),
                (U32, "_int_ctl"),
                (U32, "_event_inj"),
                (U8, "_npt"),
                (X64, "_guest_pgd"),
            ]),
        ),
        (
            "kvm_x86_nested_vmexit",
            f(&[
                (U64, "_rip"),
                (U32, "_exit_code"),
                (U64, "_exit_info1"),
                (U64, "_exit_info2"),
                (U32, "_exit_int_info"),
                (U32, "_exit_int_info_err"),
                (U32, "_isa"),
            ]),
        ),
        (
            "addons_vcpu_enter_guest",
            f(&[
                (U32, "_vcpuID"),
                (X64, "_cr3tmp"),
                (X64, "_sptmp"),
                (X64, "_iptmp"),
            ]),
        ),
        (
            "block_rq_issue",
            f(&[
                (U32, "_dev"),
                (U64, "_sector"),
                (U32, "_nr_sector"),
                (U32, "_bytes"),
                (I32, "_tid"),
                (U32, "_rwbs"),
                (CHAR, "_comm[16]"),
            ]),
        ),
        (
            "block_rq_complete",
            f(&[
                (U32, "_dev"),
                (U64, "_sector"),
                (U32, "_nr_sector"),
                (I32, "_error"),
                (U32, "_rwbs"),
            ]),
        ),
        ("net_dev_queue", skb.clone()),
        ("net_if_receive_skb", skb),
        (
            "timer_hrtimer_expire_entry",
            f(&[(X64, "_hrtimer"), (I64, "_now"), (X64, "_function")]),
        ),
        ("timer_hrtimer_expire_exit", f(&[(X64, "_hrtimer")])),
        // From here on, only in a trace with page events (`MEMORY_EVENTS`).
        (
            "kmem_mm_page_alloc",
            f(&[
                (X64, "_page"),
                (U64, "_pfn"),
                (U32, "_order"),
                (U32, "_gfp_flags"),
                (I32, "_migratetype"),
            ]),
        ),
        (
            "kmem_mm_page_free",
            f(&[(X64, "_page"), (U64, "_pfn"), (U32, "_order")]),
        ),
        (
            "kmem_mm_page_free_batched",
            f(&[(X64, "_page"), (U64, "_pfn")]),
        ),
        // From here on, only in a trace with interrupt handler events (`IRQ_EVENTS`).
        (
            "irq_handler_entry",
            f(&[(I32, "_irq"), ("string", "_name")]),
        ),
        ("irq_handler_exit", f(&[(I32, "_irq"), (I32, "_ret")])),
        ("irq_softirq_entry", f(&[(U32, "_vec")])),
        ("irq_softirq_exit", f(&[(U32, "_vec")])),
    ]
}

/// The ids of the page events: the metadata declares them only when the trace has page
/// events.
const MEMORY_EVENTS: std::ops::Range<usize> = 21..24;

/// The ids of the interrupt handlers' events, declared only when the trace has them.
const IRQ_EVENTS: std::ops::Range<usize> = 24..28;

/// The event id in this writer's metadata, or `None` for events LTTng does not have.
fn event_id(k: &Kind) -> Option<u32> {
    Some(match k {
        Kind::SchedSwitch { .. } => 0,
        Kind::SchedWaking { .. } => 1,
        Kind::SchedWakeup { .. } => 2,
        Kind::SchedMigrate { .. } => 3,
        Kind::KvmEntry { .. } => 4,
        Kind::KvmExit { .. } => 5,
        Kind::KvmUserspaceExit { .. } => 6,
        Kind::KvmInjVirq { .. } => 7,
        Kind::KvmApicAcceptIrq { .. } => 8,
        Kind::KvmApicIpi { .. } => 9,
        Kind::KvmMsiSetIrq { .. } => 10,
        Kind::KvmSetIrq { .. } => 11,
        Kind::KvmNestedVmenter { .. } => 12,
        Kind::KvmNestedVmexit { .. } => 13,
        Kind::VcpuEnterGuest { .. } => 14,
        Kind::BlockRqIssue { .. } => 15,
        Kind::BlockRqComplete { .. } => 16,
        Kind::NetDevQueue { .. } => 17,
        Kind::NetifReceiveSkb { .. } => 18,
        Kind::HrtimerExpireEntry { .. } => 19,
        Kind::HrtimerExpireExit { .. } => 20,
        Kind::MmPageAlloc { .. } => 21,
        Kind::MmPageFree { .. } => 22,
        Kind::MmPageFreeBatched { .. } => 23,
        Kind::IrqHandlerEntry { .. } => 24,
        Kind::IrqHandlerExit { .. } => 25,
        Kind::SoftirqEntry { .. } => 26,
        Kind::SoftirqExit { .. } => 27,
        // LTTng has no KSM instrumentation.
        Kind::KvmVcpuWakeup { .. } | Kind::KsmEnter { .. } | Kind::KsmMergeOnePage { .. } => {
            return None
        }
    })
}

fn metadata(uuid: &[u8; 16], hostname: &str, memory: bool, irq: bool) -> String {
    let u = uuid_string(uuid);
    let mut s = String::new();
    s.push_str("/* CTF 1.8 */\n\n");
    s.push_str(
        "typealias integer { size = 8; align = 8; signed = false; } := uint8_t;\n\
typealias integer { size = 16; align = 8; signed = false; } := uint16_t;\n\
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;\n\
typealias integer { size = 64; align = 8; signed = false; } := uint64_t;\n\
typealias integer { size = 64; align = 8; signed = false; } := unsigned long;\n\n",
    );
    let _ = write!(
        s,
        "trace {{\n\tmajor = 1;\n\tminor = 8;\n\tuuid = \"{u}\";\n\tbyte_order = le;\n\
\tpacket.header := struct {{\n\t\tuint32_t magic;\n\t\tuint8_t  uuid[16];\n\t\tuint32_t stream_id;\n\t\tuint64_t stream_instance_id;\n\t}};\n}};\n\n"
    );
    let _ = write!(
        s,
        "env {{\n\thostname = \"{hostname}\";\n\tdomain = \"kernel\";\n\tsysname = \"Linux\";\n\
\tkernel_release = \"6.1.0-sim\";\n\tkernel_version = \"#1 SMP PREEMPT_DYNAMIC\";\n\
\ttracer_name = \"lttng-modules\";\n\ttracer_major = 2;\n\ttracer_minor = 13;\n\ttracer_patchlevel = 9;\n\
\ttrace_buffering_scheme = \"global\";\n\ttrace_name = \"virtflow-sim\";\n}};\n\n"
    );
    s.push_str(
        "clock {\n\tname = \"monotonic\";\n\tdescription = \"Monotonic Clock\";\n\tfreq = 1000000000;\n\toffset = 0;\n};\n\n\
typealias integer {\n\tsize = 32; align = 8; signed = false;\n\tmap = clock.monotonic.value;\n} := uint32_clock_monotonic_t;\n\n\
typealias integer {\n\tsize = 64; align = 8; signed = false;\n\tmap = clock.monotonic.value;\n} := uint64_clock_monotonic_t;\n\n\
struct packet_context {\n\tuint64_clock_monotonic_t timestamp_begin;\n\tuint64_clock_monotonic_t timestamp_end;\n\
\tuint64_t content_size;\n\tuint64_t packet_size;\n\tuint64_t packet_seq_num;\n\tunsigned long events_discarded;\n\tuint32_t cpu_id;\n};\n\n\
struct event_header_large {\n\tenum : uint16_t { compact = 0 ... 65534, extended = 65535 } id;\n\tvariant <id> {\n\
\t\tstruct {\n\t\t\tuint32_clock_monotonic_t timestamp;\n\t\t} compact;\n\
\t\tstruct {\n\t\t\tuint32_t id;\n\t\t\tuint64_clock_monotonic_t timestamp;\n\t\t} extended;\n\t} v;\n} align(8);\n\n",
    );
    let _ = write!(
        s,
        "stream {{\n\tid = 0;\n\tevent.header := struct event_header_large;\n\tpacket.context := struct packet_context;\n\
\tevent.context := struct {{\n\t\t{I32} _tid;\n\t\t{I32} _pid;\n\t\t{CHAR} _procname[16];\n\t}};\n}};\n\n"
    );
    for (id, (name, fields)) in events().iter().enumerate() {
        if !memory && MEMORY_EVENTS.contains(&id) || !irq && IRQ_EVENTS.contains(&id) {
            continue;
        }
        let _ = write!(
            s,
            "event {{\n\tname = \"{name}\";\n\tid = {id};\n\tstream_id = 0;\n\tfields := struct {{\n{fields}\t}};\n}};\n\n"
        );
    }
    s
}

fn uuid_string(u: &[u8; 16]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

struct Stream {
    file: BufWriter<File>,
    buf: Vec<u8>,
    begin: u64,
    last: u64,
    seq: u64,
    cpu: u32,
}

pub struct CtfWriter {
    dir: PathBuf,
    uuid: [u8; 16],
    hostname: String,
    streams: Vec<Stream>,
    ev: Vec<u8>,
    count: u64,
    /// Whether the metadata declares the page events.
    memory: bool,
    /// Whether the metadata declares the interrupt handlers' events.
    irq: bool,
}

impl CtfWriter {
    /// Creates `dir` (the trace directory) with one stream per CPU.
    pub fn create(
        dir: &Path,
        ncpus: u32,
        uuid: [u8; 16],
        hostname: &str,
    ) -> std::io::Result<CtfWriter> {
        std::fs::create_dir_all(dir)?;
        let mut streams = Vec::new();
        for cpu in 0..ncpus {
            let f = File::create(dir.join(format!("channel0_{cpu}")))?;
            streams.push(Stream {
                file: BufWriter::with_capacity(1 << 16, f),
                buf: Vec::with_capacity(PACKET_MAX),
                begin: 0,
                last: 0,
                seq: 0,
                cpu,
            });
        }
        Ok(CtfWriter {
            dir: dir.to_path_buf(),
            uuid,
            hostname: hostname.to_string(),
            streams,
            ev: Vec::with_capacity(256),
            count: 0,
            memory: false,
            irq: false,
        })
    }

    /// Declares the page events too (a recording with them enabled).
    pub fn with_memory_events(mut self) -> CtfWriter {
        self.memory = true;
        self
    }

    /// Declares the interrupt handlers' events too.
    pub fn with_irq_events(mut self) -> CtfWriter {
        self.irq = true;
        self
    }

    fn flush_packet(s: &mut Stream, uuid: &[u8; 16]) -> std::io::Result<()> {
        if s.buf.is_empty() {
            return Ok(());
        }
        let bits = ((HEADER_LEN + s.buf.len()) * 8) as u64;
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(&MAGIC.to_le_bytes());
        h.extend_from_slice(uuid);
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&(s.cpu as u64).to_le_bytes());
        h.extend_from_slice(&s.begin.to_le_bytes());
        h.extend_from_slice(&s.last.to_le_bytes());
        h.extend_from_slice(&bits.to_le_bytes());
        h.extend_from_slice(&bits.to_le_bytes());
        h.extend_from_slice(&s.seq.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        h.extend_from_slice(&s.cpu.to_le_bytes());
        s.file.write_all(&h)?;
        s.file.write_all(&s.buf)?;
        s.buf.clear();
        s.seq += 1;
        Ok(())
    }
}

fn comm16(b: &mut Vec<u8>, s: &str) {
    let mut c = [0u8; 16];
    let n = s.len().min(15);
    c[..n].copy_from_slice(&s.as_bytes()[..n]);
    b.extend_from_slice(&c);
}

fn encode_fields(ev: &Event, names: &TaskNames, b: &mut Vec<u8>) {
    let cpu = ev.cpu;
    match &ev.kind {
        Kind::SchedSwitch {
            prev,
            prev_state,
            next,
        } => {
            comm16(b, &names.comm(*prev, cpu));
            b.extend_from_slice(&(*prev as i32).to_le_bytes());
            b.extend_from_slice(&names.prio(*prev).to_le_bytes());
            b.extend_from_slice(&prev_state.to_le_bytes());
            comm16(b, &names.comm(*next, cpu));
            b.extend_from_slice(&(*next as i32).to_le_bytes());
            b.extend_from_slice(&names.prio(*next).to_le_bytes());
        }
        Kind::SchedWaking {
            tid, target_cpu, ..
        }
        | Kind::SchedWakeup { tid, target_cpu } => {
            comm16(b, &names.comm(*tid, cpu));
            b.extend_from_slice(&(*tid as i32).to_le_bytes());
            b.extend_from_slice(&names.prio(*tid).to_le_bytes());
            b.extend_from_slice(&(*target_cpu as i32).to_le_bytes());
        }
        Kind::SchedMigrate {
            tid,
            orig_cpu,
            dest_cpu,
        } => {
            comm16(b, &names.comm(*tid, cpu));
            b.extend_from_slice(&(*tid as i32).to_le_bytes());
            b.extend_from_slice(&names.prio(*tid).to_le_bytes());
            b.extend_from_slice(&(*orig_cpu as i32).to_le_bytes());
            b.extend_from_slice(&(*dest_cpu as i32).to_le_bytes());
        }
        Kind::KvmEntry { vcpu, .. } => b.extend_from_slice(&vcpu.to_le_bytes()),
        Kind::KvmExit {
            reason,
            isa,
            rip,
            info1,
            info2,
            vcpu,
        } => {
            b.extend_from_slice(&reason.to_le_bytes());
            b.extend_from_slice(&rip.to_le_bytes());
            b.extend_from_slice(&isa.to_le_bytes());
            b.extend_from_slice(&info1.to_le_bytes());
            b.extend_from_slice(&info2.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&vcpu.to_le_bytes());
        }
        Kind::KvmUserspaceExit { reason } => {
            b.extend_from_slice(&reason.to_le_bytes());
            b.extend_from_slice(&0i32.to_le_bytes());
        }
        Kind::KvmInjVirq { vector } => b.extend_from_slice(&vector.to_le_bytes()),
        Kind::KvmApicAcceptIrq { apicid, vec } => {
            b.extend_from_slice(&apicid.to_le_bytes());
            b.extend_from_slice(&0u16.to_le_bytes());
            b.extend_from_slice(&[0, *vec, 0]);
        }
        Kind::KvmApicIpi { icr_low, dest_id } => {
            b.extend_from_slice(&icr_low.to_le_bytes());
            b.extend_from_slice(&dest_id.to_le_bytes());
        }
        Kind::KvmMsiSetIrq { address, data } => {
            b.extend_from_slice(&address.to_le_bytes());
            b.extend_from_slice(&data.to_le_bytes());
        }
        Kind::KvmSetIrq { gsi, level } => {
            b.extend_from_slice(&gsi.to_le_bytes());
            b.extend_from_slice(&level.to_le_bytes());
            b.extend_from_slice(&0i32.to_le_bytes());
        }
        Kind::KvmNestedVmenter {
            rip,
            vmcb,
            nested_rip,
            guest_pgd,
            ..
        } => {
            b.extend_from_slice(&rip.to_le_bytes());
            b.extend_from_slice(&vmcb.to_le_bytes());
            b.extend_from_slice(&nested_rip.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.push(1);
            b.extend_from_slice(&guest_pgd.to_le_bytes());
        }
        Kind::KvmNestedVmexit {
            reason,
            isa,
            rip,
            info1,
            info2,
            ..
        } => {
            b.extend_from_slice(&rip.to_le_bytes());
            b.extend_from_slice(&reason.to_le_bytes());
            b.extend_from_slice(&info1.to_le_bytes());
            b.extend_from_slice(&info2.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&isa.to_le_bytes());
        }
        Kind::VcpuEnterGuest { vcpu, cr3, sp, ip } => {
            b.extend_from_slice(&vcpu.to_le_bytes());
            b.extend_from_slice(&cr3.to_le_bytes());
            b.extend_from_slice(&sp.to_le_bytes());
            b.extend_from_slice(&ip.to_le_bytes());
        }
        Kind::BlockRqIssue {
            sector,
            nr_sector,
            write,
        } => {
            b.extend_from_slice(&crate::dat::disk_dev().to_le_bytes());
            b.extend_from_slice(&sector.to_le_bytes());
            b.extend_from_slice(&nr_sector.to_le_bytes());
            b.extend_from_slice(&(nr_sector * 512).to_le_bytes());
            b.extend_from_slice(&(ev.tid as i32).to_le_bytes());
            b.extend_from_slice(&(if *write { 1u32 } else { 0 }).to_le_bytes());
            comm16(b, &names.comm(ev.tid, cpu));
        }
        Kind::BlockRqComplete {
            sector,
            nr_sector,
            write,
        } => {
            b.extend_from_slice(&crate::dat::disk_dev().to_le_bytes());
            b.extend_from_slice(&sector.to_le_bytes());
            b.extend_from_slice(&nr_sector.to_le_bytes());
            b.extend_from_slice(&0i32.to_le_bytes());
            b.extend_from_slice(&(if *write { 1u32 } else { 0 }).to_le_bytes());
        }
        Kind::NetDevQueue { skb, len, dev, tcp } | Kind::NetifReceiveSkb { skb, len, dev, tcp } => {
            b.extend_from_slice(&skb.to_le_bytes());
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(dev.as_bytes());
            b.push(0);
            match tcp {
                None => b.push(0),
                Some(t) => {
                    b.push(1);
                    b.push(0x45); // version 4, ihl 5
                    b.push(0);
                    b.extend_from_slice(&(40 + t.payload).to_be_bytes());
                    b.extend_from_slice(&((t.seq as u16) ^ 0x5a5a).to_be_bytes());
                    b.extend_from_slice(&0x4000u16.to_be_bytes());
                    b.push(64);
                    b.push(6);
                    b.extend_from_slice(&0u16.to_be_bytes());
                    b.extend_from_slice(&t.saddr);
                    b.extend_from_slice(&t.daddr);
                    b.push(1);
                    b.extend_from_slice(&t.sport.to_be_bytes());
                    b.extend_from_slice(&t.dport.to_be_bytes());
                    b.extend_from_slice(&t.seq.to_be_bytes());
                    b.extend_from_slice(&t.ack.to_be_bytes());
                    b.extend_from_slice(&((5u16 << 12) | (t.flags & 0x1ff)).to_be_bytes());
                    b.extend_from_slice(&502u16.to_be_bytes());
                    b.extend_from_slice(&0u16.to_be_bytes());
                    b.extend_from_slice(&0u16.to_be_bytes());
                }
            }
        }
        Kind::HrtimerExpireEntry {
            hrtimer,
            now,
            function,
        } => {
            b.extend_from_slice(&hrtimer.to_le_bytes());
            b.extend_from_slice(&now.to_le_bytes());
            b.extend_from_slice(&function.to_le_bytes());
        }
        Kind::HrtimerExpireExit { hrtimer } => b.extend_from_slice(&hrtimer.to_le_bytes()),
        Kind::IrqHandlerEntry { irq, name } => {
            b.extend_from_slice(&(*irq as i32).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.push(0);
        }
        Kind::IrqHandlerExit { irq } => {
            b.extend_from_slice(&(*irq as i32).to_le_bytes());
            b.extend_from_slice(&1i32.to_le_bytes());
        }
        Kind::SoftirqEntry { vec } | Kind::SoftirqExit { vec } => {
            b.extend_from_slice(&vec.to_le_bytes())
        }
        Kind::MmPageAlloc {
            pfn,
            order,
            gfp,
            migratetype,
        } => {
            b.extend_from_slice(&page_address(*pfn).to_le_bytes());
            b.extend_from_slice(&pfn.to_le_bytes());
            b.extend_from_slice(&order.to_le_bytes());
            // gfp_t is 32 bits.
            b.extend_from_slice(&(*gfp as u32).to_le_bytes());
            b.extend_from_slice(&migratetype.to_le_bytes());
        }
        Kind::MmPageFree { pfn, order } => {
            b.extend_from_slice(&page_address(*pfn).to_le_bytes());
            b.extend_from_slice(&pfn.to_le_bytes());
            b.extend_from_slice(&order.to_le_bytes());
        }
        Kind::MmPageFreeBatched { pfn } => {
            b.extend_from_slice(&page_address(*pfn).to_le_bytes());
            b.extend_from_slice(&pfn.to_le_bytes());
        }
        Kind::KvmVcpuWakeup { .. } | Kind::KsmEnter { .. } | Kind::KsmMergeOnePage { .. } => {}
    }
}

impl Sink for CtfWriter {
    fn writes(&self, kind: &Kind) -> bool {
        event_id(kind).is_some()
    }

    fn event(&mut self, ev: &Event, names: &TaskNames) -> std::io::Result<()> {
        let Some(id) = event_id(&ev.kind) else {
            return Ok(());
        };
        let s = &mut self.streams[ev.cpu as usize];
        let b = &mut self.ev;
        b.clear();
        // A 32-bit timestamp is enough when less than 2^32 ns passed since the last one.
        let compact = !s.buf.is_empty() && ev.ts - s.last < (1 << 32);
        if compact {
            b.extend_from_slice(&(id as u16).to_le_bytes());
            b.extend_from_slice(&(ev.ts as u32).to_le_bytes());
        } else {
            b.extend_from_slice(&0xffffu16.to_le_bytes());
            b.extend_from_slice(&id.to_le_bytes());
            b.extend_from_slice(&ev.ts.to_le_bytes());
        }
        b.extend_from_slice(&(ev.tid as i32).to_le_bytes());
        b.extend_from_slice(&(names.pid(ev.tid) as i32).to_le_bytes());
        comm16(b, &names.comm(ev.tid, ev.cpu));
        encode_fields(ev, names, b);
        if !s.buf.is_empty() && HEADER_LEN + s.buf.len() + b.len() > PACKET_MAX {
            Self::flush_packet(s, &self.uuid)?;
            // Re-encode with a full timestamp: the new packet starts a fresh clock.
            let mut full = Vec::with_capacity(b.len() + 10);
            full.extend_from_slice(&0xffffu16.to_le_bytes());
            full.extend_from_slice(&id.to_le_bytes());
            full.extend_from_slice(&ev.ts.to_le_bytes());
            let skip = if compact { 6 } else { 14 };
            full.extend_from_slice(&b[skip..]);
            *b = full;
        }
        if s.buf.is_empty() {
            s.begin = ev.ts;
        }
        s.buf.extend_from_slice(b);
        s.last = ev.ts;
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self, _names: &TaskNames) -> std::io::Result<u64> {
        for s in &mut self.streams {
            Self::flush_packet(s, &self.uuid)?;
            s.file.flush()?;
        }
        std::fs::write(
            self.dir.join("metadata"),
            metadata(&self.uuid, &self.hostname, self.memory, self.irq),
        )?;
        Ok(self.count)
    }
}

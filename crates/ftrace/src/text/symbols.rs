//! Names the kernel and trace-cmd print in place of numbers, mapped back to the numbers the
//! tracepoint records (the values `trace-cmd report -R` and `perf` show).

/// `prev_state` as the kernel's `sched_switch` print format writes it: `R`, `R+`, `S`, `D|W`…
/// Bits as in `TASK_REPORT` (Linux ≥ 4.14); `+` is the preempted bit just above them.
pub(crate) fn kernel_task_state(s: &[u8]) -> Option<i64> {
    let (s, preempted) = match s.strip_suffix(b"+") {
        Some(s) => (s, 0x100),
        None => (s, 0),
    };
    if s == b"R" {
        return Some(preempted);
    }
    let mut v = 0;
    for part in s.split(|&c| c == b'|') {
        v |= match part {
            b"S" => 0x1,
            b"D" => 0x2,
            b"T" => 0x4,
            b"t" => 0x8,
            b"X" => 0x10,
            b"Z" => 0x20,
            b"P" => 0x40,
            b"I" => 0x80,
            _ => return None,
        };
    }
    Some(v | preempted)
}

/// `prev_state` as trace-cmd's sched_switch plugin writes it: one letter per bit of the low
/// byte in the order `SDTtZXxW`, `|`-separated, `R` when none is set. The preempted bit is not
/// shown, so `R` reads as 0 even when the kernel recorded 0x100.
pub(crate) fn trace_cmd_task_state(s: &[u8]) -> Option<i64> {
    if s == b"R" {
        return Some(0);
    }
    const LETTERS: &[u8] = b"SDTtZXxW";
    let mut v = 0;
    for part in s.split(|&c| c == b'|') {
        match part {
            [c] => v |= 1 << LETTERS.iter().position(|l| l == c)?,
            _ => return None,
        }
    }
    Some(v)
}

/// Intel VMX basic exit reasons, as the kernel's `kvm_exit` print format names them.
const VMX_EXIT_REASONS: &[(&str, u64)] = &[
    ("EXCEPTION_NMI", 0),
    ("EXTERNAL_INTERRUPT", 1),
    ("TRIPLE_FAULT", 2),
    ("INIT_SIGNAL", 3),
    ("SIPI_SIGNAL", 4),
    ("INTERRUPT_WINDOW", 7),
    ("PENDING_INTERRUPT", 7), // trace-cmd's KVM plugin name
    ("NMI_WINDOW", 8),
    ("TASK_SWITCH", 9),
    ("CPUID", 10),
    ("HLT", 12),
    ("INVD", 13),
    ("INVLPG", 14),
    ("RDPMC", 15),
    ("RDTSC", 16),
    ("VMCALL", 18),
    ("VMCLEAR", 19),
    ("VMLAUNCH", 20),
    ("VMPTRLD", 21),
    ("VMPTRST", 22),
    ("VMREAD", 23),
    ("VMRESUME", 24),
    ("VMWRITE", 25),
    ("VMOFF", 26),
    ("VMON", 27),
    ("CR_ACCESS", 28),
    ("DR_ACCESS", 29),
    ("IO_INSTRUCTION", 30),
    ("MSR_READ", 31),
    ("MSR_WRITE", 32),
    ("INVALID_STATE", 33),
    ("MSR_LOAD_FAIL", 34),
    ("MWAIT_INSTRUCTION", 36),
    ("MONITOR_TRAP_FLAG", 37),
    ("MONITOR_INSTRUCTION", 39),
    ("PAUSE_INSTRUCTION", 40),
    ("MCE_DURING_VMENTRY", 41),
    ("TPR_BELOW_THRESHOLD", 43),
    ("APIC_ACCESS", 44),
    ("EOI_INDUCED", 45),
    ("GDTR_IDTR", 46),
    ("LDTR_TR", 47),
    ("EPT_VIOLATION", 48),
    ("EPT_MISCONFIG", 49),
    ("INVEPT", 50),
    ("RDTSCP", 51),
    ("PREEMPTION_TIMER", 52),
    ("INVVPID", 53),
    ("WBINVD", 54),
    ("XSETBV", 55),
    ("APIC_WRITE", 56),
    ("RDRAND", 57),
    ("INVPCID", 58),
    ("VMFUNC", 59),
    ("ENCLS", 60),
    ("RDSEED", 61),
    ("PML_FULL", 62),
    ("XSAVES", 63),
    ("XRSTORS", 64),
    ("UMWAIT", 67),
    ("TPAUSE", 68),
    ("BUS_LOCK", 74),
    ("NOTIFY", 75),
];

/// AMD SVM exit codes, as the kernel's `kvm_exit` print format names them (Linux 6.1).
const SVM_EXIT_REASONS: &[(&str, u64)] = &[
    ("read_cr0", 0x000),
    ("read_cr2", 0x002),
    ("read_cr3", 0x003),
    ("read_cr4", 0x004),
    ("read_cr8", 0x008),
    ("write_cr0", 0x010),
    ("write_cr2", 0x012),
    ("write_cr3", 0x013),
    ("write_cr4", 0x014),
    ("write_cr8", 0x018),
    ("read_dr0", 0x020),
    ("read_dr1", 0x021),
    ("read_dr2", 0x022),
    ("read_dr3", 0x023),
    ("read_dr4", 0x024),
    ("read_dr5", 0x025),
    ("read_dr6", 0x026),
    ("read_dr7", 0x027),
    ("write_dr0", 0x030),
    ("write_dr1", 0x031),
    ("write_dr2", 0x032),
    ("write_dr3", 0x033),
    ("write_dr4", 0x034),
    ("write_dr5", 0x035),
    ("write_dr6", 0x036),
    ("write_dr7", 0x037),
    ("DE excp", 0x040),
    ("DB excp", 0x041),
    ("BP excp", 0x043),
    ("OF excp", 0x044),
    ("BR excp", 0x045),
    ("UD excp", 0x046),
    ("NM excp", 0x047),
    ("DF excp", 0x048),
    ("TS excp", 0x04a),
    ("NP excp", 0x04b),
    ("SS excp", 0x04c),
    ("GP excp", 0x04d),
    ("PF excp", 0x04e),
    ("MF excp", 0x050),
    ("AC excp", 0x051),
    ("MC excp", 0x052),
    ("XF excp", 0x053),
    ("interrupt", 0x060),
    ("intr", 0x060),
    ("nmi", 0x061),
    ("smi", 0x062),
    ("init", 0x063),
    ("vintr", 0x064),
    ("cr0_sel_write", 0x065),
    ("read_idtr", 0x066),
    ("read_gdtr", 0x067),
    ("read_ldtr", 0x068),
    ("read_rt", 0x069),
    ("write_idtr", 0x06a),
    ("write_gdtr", 0x06b),
    ("write_ldtr", 0x06c),
    ("write_rt", 0x06d),
    ("rdtsc", 0x06e),
    ("rdpmc", 0x06f),
    ("pushf", 0x070),
    ("popf", 0x071),
    ("cpuid", 0x072),
    ("rsm", 0x073),
    ("iret", 0x074),
    ("swint", 0x075),
    ("invd", 0x076),
    ("pause", 0x077),
    ("hlt", 0x078),
    ("invlpg", 0x079),
    ("invlpga", 0x07a),
    ("io", 0x07b),
    ("ioio", 0x07b),
    ("msr", 0x07c),
    ("task_switch", 0x07d),
    ("ferr_freeze", 0x07e),
    ("shutdown", 0x07f),
    ("vmrun", 0x080),
    ("hypercall", 0x081),
    ("vmmcall", 0x081),
    ("vmload", 0x082),
    ("vmsave", 0x083),
    ("stgi", 0x084),
    ("clgi", 0x085),
    ("skinit", 0x086),
    ("rdtscp", 0x087),
    ("icebp", 0x088),
    ("wbinvd", 0x089),
    ("monitor", 0x08a),
    ("mwait", 0x08b),
    ("mwait_cond", 0x08c),
    ("xsetbv", 0x08d),
    ("rdpru", 0x08e),
    ("write_efer_trap", 0x08f),
    ("write_cr0_trap", 0x090),
    ("write_cr4_trap", 0x094),
    ("write_cr8_trap", 0x098),
    ("invpcid", 0x0a2),
    ("idle_hlt", 0x0a5),
    ("npf", 0x400),
    ("avic_incomplete_ipi", 0x401),
    ("avic_unaccelerated_access", 0x402),
    ("vmgexit", 0x403),
    ("invalid_guest_state", 0xffff_ffff),
];

/// trace-cmd's KVM plugin names SVM exits `EXIT_<name>`, with its own spellings.
const TRACE_CMD_SVM_EXIT_REASONS: &[(&str, u64)] = &[
    ("READ_CR0", 0x000),
    ("READ_CR3", 0x003),
    ("READ_CR4", 0x004),
    ("READ_CR8", 0x008),
    ("WRITE_CR0", 0x010),
    ("WRITE_CR3", 0x013),
    ("WRITE_CR4", 0x014),
    ("WRITE_CR8", 0x018),
    ("READ_DR0", 0x020),
    ("READ_DR1", 0x021),
    ("READ_DR2", 0x022),
    ("READ_DR3", 0x023),
    ("READ_DR4", 0x024),
    ("READ_DR5", 0x025),
    ("READ_DR6", 0x026),
    ("READ_DR7", 0x027),
    ("WRITE_DR0", 0x030),
    ("WRITE_DR1", 0x031),
    ("WRITE_DR2", 0x032),
    ("WRITE_DR3", 0x033),
    ("WRITE_DR4", 0x034),
    ("WRITE_DR5", 0x035),
    ("WRITE_DR6", 0x036),
    ("WRITE_DR7", 0x037),
    ("EXCP_DE", 0x040),
    ("EXCP_DB", 0x041),
    ("EXCP_BP", 0x043),
    ("EXCP_OF", 0x044),
    ("EXCP_BR", 0x045),
    ("EXCP_UD", 0x046),
    ("EXCP_NM", 0x047),
    ("EXCP_DF", 0x048),
    ("EXCP_TS", 0x04a),
    ("EXCP_NP", 0x04b),
    ("EXCP_SS", 0x04c),
    ("EXCP_GP", 0x04d),
    ("EXCP_PF", 0x04e),
    ("EXCP_MF", 0x050),
    ("EXCP_AC", 0x051),
    ("EXCP_MC", 0x052),
    ("EXCP_XF", 0x053),
    ("INTR", 0x060),
    ("NMI", 0x061),
    ("SMI", 0x062),
    ("INIT", 0x063),
    ("VINTR", 0x064),
    ("CR0_SEL_WRITE", 0x065),
    ("IDTR_READ", 0x066),
    ("GDTR_READ", 0x067),
    ("LDTR_READ", 0x068),
    ("TR_READ", 0x069),
    ("IDTR_WRITE", 0x06a),
    ("GDTR_WRITE", 0x06b),
    ("LDTR_WRITE", 0x06c),
    ("TR_WRITE", 0x06d),
    ("RDTSC", 0x06e),
    ("RDPMC", 0x06f),
    ("PUSHF", 0x070),
    ("POPF", 0x071),
    ("CPUID", 0x072),
    ("RSM", 0x073),
    ("IRET", 0x074),
    ("SWINT", 0x075),
    ("INVD", 0x076),
    ("PAUSE", 0x077),
    ("HLT", 0x078),
    ("INVLPG", 0x079),
    ("INVLPGA", 0x07a),
    ("IOIO", 0x07b),
    ("MSR", 0x07c),
    ("TASK_SWITCH", 0x07d),
    ("FERR_FREEZE", 0x07e),
    ("SHUTDOWN", 0x07f),
    ("VMRUN", 0x080),
    ("VMMCALL", 0x081),
    ("VMLOAD", 0x082),
    ("VMSAVE", 0x083),
    ("STGI", 0x084),
    ("CLGI", 0x085),
    ("SKINIT", 0x086),
    ("RDTSCP", 0x087),
    ("ICEBP", 0x088),
    ("WBINVD", 0x089),
    ("MONITOR", 0x08a),
    ("MWAIT", 0x08b),
    ("MWAIT_COND", 0x08c),
    ("XSETBV", 0x08d),
    ("NPF", 0x400),
    ("AVIC_INCOMPLETE_IPI", 0x401),
    ("AVIC_UNACCELERATED_ACCESS", 0x402),
    ("ERR", 0xffff_ffff),
];

pub(crate) const ISA_VMX: u64 = 1;
pub(crate) const ISA_SVM: u64 = 2;

/// An exit reason as printed by the kernel or trace-cmd: its code and, when the name tells,
/// the instruction set (`isa` 1 VMX, 2 SVM). A VMX reason may carry ` FAILED_VMENTRY`;
/// an unnamed one is printed as a number; trace-cmd prints `UNKNOWN (N)`.
pub(crate) fn exit_reason(s: &[u8]) -> Option<(u64, Option<u64>)> {
    let s = std::str::from_utf8(s).ok()?;
    if let Some(name) = s.strip_suffix(" FAILED_VMENTRY") {
        let (code, _) = lookup(VMX_EXIT_REASONS, name)?;
        return Some((code | 0x8000_0000, Some(ISA_VMX)));
    }
    if let Some(name) = s.strip_prefix("EXIT_") {
        if let Some((code, _)) = lookup(TRACE_CMD_SVM_EXIT_REASONS, name) {
            return Some((code, Some(ISA_SVM)));
        }
    }
    if let Some((code, _)) = lookup(VMX_EXIT_REASONS, s) {
        return Some((code, Some(ISA_VMX)));
    }
    if let Some((code, _)) = lookup(SVM_EXIT_REASONS, s) {
        return Some((code, Some(ISA_SVM)));
    }
    let number = s
        .strip_prefix("UNKNOWN (")
        .and_then(|n| n.strip_suffix(')'))
        .unwrap_or(s);
    match super::template::parse_num(number.as_bytes())? {
        super::template::Slot::U(v) => Some((v, None)),
        _ => None,
    }
}

fn lookup(table: &[(&str, u64)], name: &str) -> Option<(u64, ())> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| (*v, ()))
}

/// Every exit-reason name the reader knows, with its code and `isa`: for tests that check
/// them against the print formats a trace carries.
pub fn exit_reason_names() -> impl Iterator<Item = (&'static str, u64, u64)> {
    VMX_EXIT_REASONS
        .iter()
        .map(|(n, c)| (*n, *c, ISA_VMX))
        .chain(SVM_EXIT_REASONS.iter().map(|(n, c)| (*n, *c, ISA_SVM)))
}

const DELIVERY_MODE: &[(&str, i64)] = &[
    ("Fixed", 0),
    ("LowPrio", 1),
    ("SMI", 2),
    ("Res3", 3),
    ("NMI", 4),
    ("INIT", 5),
    ("SIPI", 6),
    ("ExtINT", 7),
];
/// `kvm_apic_accept_irq`'s `dm` holds the delivery mode shifted left by 8.
const DELIVERY_MODE_SHIFTED: &[(&str, i64)] = &[
    ("Fixed", 0),
    ("LowPrio", 0x100),
    ("SMI", 0x200),
    ("Res3", 0x300),
    ("NMI", 0x400),
    ("INIT", 0x500),
    ("SIPI", 0x600),
    ("ExtINT", 0x700),
];
const DEST_MODE: &[(&str, i64)] = &[("physical", 0), ("logical", 1)];
const TRIGGER: &[(&str, i64)] = &[("edge", 0), ("level", 1)];
const ASSERT: &[(&str, i64)] = &[("de-assert", 0), ("assert", 1)];
const SHORTHAND: &[(&str, i64)] = &[("dst", 0), ("self", 1), ("all", 2), ("all-but-self", 3)];
const READ_WRITE: &[(&str, i64)] = &[("read", 0), ("write", 1)];
const MMIO_TYPE: &[(&str, i64)] = &[("unsatisfied-read", 0), ("read", 1), ("write", 2)];
const INJ_KIND: &[(&str, i64)] = &[("IRQ", 0), ("Soft/INTn", 1)];
const WAIT_POLL: &[(&str, i64)] = &[("wait", 1), ("poll", 0)];
const VALID: &[(&str, i64)] = &[("valid", 1), ("invalid", 0)];
const BOOL: &[(&str, i64)] = &[("true", 1), ("false", 0)];
const YES_NO: &[(&str, i64)] = &[("y", 1), ("n", 0)];
const IRQ_RET: &[(&str, i64)] = &[("handled", 1), ("unhandled", 0)];
const VMCS_VMCB: &[(&str, i64)] = &[("vmcs", 1), ("vmcb", 2)];
const GROW: &[(&str, i64)] = &[("grow", 1), ("shrink", 0)];
const FPU: &[(&str, i64)] = &[("load", 1), ("unload", 0)];
const CLOCK_ID: &[(&str, i64)] = &[
    ("CLOCK_REALTIME", 0),
    ("CLOCK_MONOTONIC", 1),
    ("CLOCK_BOOTTIME", 7),
    ("CLOCK_TAI", 11),
];
const HRTIMER_MODE: &[(&str, i64)] = &[
    ("ABS", 0),
    ("REL", 1),
    ("ABS|PINNED", 2),
    ("REL|PINNED", 3),
    ("ABS|SOFT", 4),
    ("REL|SOFT", 5),
    ("ABS|PINNED|SOFT", 6),
    ("REL|PINNED|SOFT", 7),
    ("ABS|HARD", 8),
    ("REL|HARD", 9),
    ("ABS|PINNED|HARD", 10),
    ("REL|PINNED|HARD", 11),
];
const KVM_USER_EXIT: &[(&str, i64)] = &[
    ("KVM_EXIT_UNKNOWN", 0),
    ("KVM_EXIT_EXCEPTION", 1),
    ("KVM_EXIT_IO", 2),
    ("KVM_EXIT_HYPERCALL", 3),
    ("KVM_EXIT_DEBUG", 4),
    ("KVM_EXIT_HLT", 5),
    ("KVM_EXIT_MMIO", 6),
    ("KVM_EXIT_IRQ_WINDOW_OPEN", 7),
    ("KVM_EXIT_SHUTDOWN", 8),
    ("KVM_EXIT_FAIL_ENTRY", 9),
    ("KVM_EXIT_INTR", 10),
    ("KVM_EXIT_SET_TPR", 11),
    ("KVM_EXIT_TPR_ACCESS", 12),
    ("KVM_EXIT_S390_SIEIC", 13),
    ("KVM_EXIT_S390_RESET", 14),
    ("KVM_EXIT_DCR", 15),
    ("KVM_EXIT_NMI", 16),
    ("KVM_EXIT_INTERNAL_ERROR", 17),
    ("KVM_EXIT_OSI", 18),
    ("KVM_EXIT_PAPR_HCALL", 19),
    ("KVM_EXIT_S390_UCONTROL", 20),
    ("KVM_EXIT_WATCHDOG", 21),
    ("KVM_EXIT_S390_TSCH", 22),
    ("KVM_EXIT_EPR", 23),
    ("KVM_EXIT_SYSTEM_EVENT", 24),
    ("KVM_EXIT_S390_STSI", 25),
    ("KVM_EXIT_IOAPIC_EOI", 26),
    ("KVM_EXIT_HYPERV", 27),
    ("KVM_EXIT_ARM_NISV", 28),
    ("KVM_EXIT_X86_RDMSR", 29),
    ("KVM_EXIT_X86_WRMSR", 30),
    ("KVM_EXIT_DIRTY_RING_FULL", 31),
    ("KVM_EXIT_AP_RESET_HOLD", 32),
    ("KVM_EXIT_X86_BUS_LOCK", 33),
    ("KVM_EXIT_XEN", 34),
    ("KVM_EXIT_RISCV_SBI", 35),
    ("KVM_EXIT_RISCV_CSR", 36),
    ("KVM_EXIT_NOTIFY", 37),
];

/// The tables templates name with `map=`.
pub(crate) fn map_table(name: &str) -> &'static [(&'static str, i64)] {
    match name {
        "dm" => DELIVERY_MODE,
        "dm8" => DELIVERY_MODE_SHIFTED,
        "destmode" => DEST_MODE,
        "trig" => TRIGGER,
        "assert" => ASSERT,
        "shorthand" => SHORTHAND,
        "rw" => READ_WRITE,
        "mmio" => MMIO_TYPE,
        "inj" => INJ_KIND,
        "wait" => WAIT_POLL,
        "valid" => VALID,
        "bool" => BOOL,
        "yn" => YES_NO,
        "irqret" => IRQ_RET,
        "vmcsb" => VMCS_VMCB,
        "grow" => GROW,
        "fpu" => FPU,
        "clock" => CLOCK_ID,
        "hrmode" => HRTIMER_MODE,
        "userexit" => KVM_USER_EXIT,
        _ => panic!("unknown symbol table {name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states() {
        assert_eq!(kernel_task_state(b"R"), Some(0));
        assert_eq!(kernel_task_state(b"R+"), Some(0x100));
        assert_eq!(kernel_task_state(b"S"), Some(1));
        assert_eq!(kernel_task_state(b"D|W"), None);
        assert_eq!(kernel_task_state(b"D|I"), Some(0x82));
        assert_eq!(kernel_task_state(b"Z"), Some(0x20));
        assert_eq!(trace_cmd_task_state(b"X"), Some(0x20));
        assert_eq!(trace_cmd_task_state(b"W"), Some(0x80));
        assert_eq!(trace_cmd_task_state(b"S|D"), Some(3));
        assert_eq!(trace_cmd_task_state(b"Q"), None);
    }

    #[test]
    fn exit_reasons() {
        assert_eq!(exit_reason(b"EXIT_MSR"), Some((0x7c, Some(ISA_SVM))));
        assert_eq!(exit_reason(b"msr"), Some((0x7c, Some(ISA_SVM))));
        assert_eq!(exit_reason(b"HLT"), Some((12, Some(ISA_VMX))));
        assert_eq!(exit_reason(b"PF excp"), Some((0x4e, Some(ISA_SVM))));
        assert_eq!(
            exit_reason(b"INVALID_STATE FAILED_VMENTRY"),
            Some((0x8000_0021, Some(ISA_VMX)))
        );
        assert_eq!(exit_reason(b"UNKNOWN (77)"), Some((77, None)));
        assert_eq!(exit_reason(b"0x7c"), Some((0x7c, None)));
        assert_eq!(exit_reason(b"bogus"), None);
    }
}

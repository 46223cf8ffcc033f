//! Exit-reason names: Intel VMX basic exit reasons and AMD SVM exit codes, in the vocabulary
//! the kernel's own tracepoints print (`HLT`, `EPT_VIOLATION` for VMX; `hlt`, `npf` for SVM),
//! and the reverse lookup for text traces that carry names instead of numbers.

use virtflow_model::Isa;

/// Intel VMX basic exit reasons (`exit_reason & 0xffff`), from the SDM / `vmx.h`.
const VMX: &[(u64, &str)] = &[
    (0, "EXCEPTION_NMI"),
    (1, "EXTERNAL_INTERRUPT"),
    (2, "TRIPLE_FAULT"),
    (3, "INIT_SIGNAL"),
    (4, "SIPI_SIGNAL"),
    (7, "INTERRUPT_WINDOW"),
    (8, "NMI_WINDOW"),
    (9, "TASK_SWITCH"),
    (10, "CPUID"),
    (12, "HLT"),
    (13, "INVD"),
    (14, "INVLPG"),
    (15, "RDPMC"),
    (16, "RDTSC"),
    (18, "VMCALL"),
    (19, "VMCLEAR"),
    (20, "VMLAUNCH"),
    (21, "VMPTRLD"),
    (22, "VMPTRST"),
    (23, "VMREAD"),
    (24, "VMRESUME"),
    (25, "VMWRITE"),
    (26, "VMOFF"),
    (27, "VMON"),
    (28, "CR_ACCESS"),
    (29, "DR_ACCESS"),
    (30, "IO_INSTRUCTION"),
    (31, "MSR_READ"),
    (32, "MSR_WRITE"),
    (33, "INVALID_STATE"),
    (34, "MSR_LOAD_FAIL"),
    (36, "MWAIT_INSTRUCTION"),
    (37, "MONITOR_TRAP_FLAG"),
    (39, "MONITOR_INSTRUCTION"),
    (40, "PAUSE_INSTRUCTION"),
    (41, "MCE_DURING_VMENTRY"),
    (43, "TPR_BELOW_THRESHOLD"),
    (44, "APIC_ACCESS"),
    (45, "EOI_INDUCED"),
    (46, "GDTR_IDTR"),
    (47, "LDTR_TR"),
    (48, "EPT_VIOLATION"),
    (49, "EPT_MISCONFIG"),
    (50, "INVEPT"),
    (51, "RDTSCP"),
    (52, "PREEMPTION_TIMER"),
    (53, "INVVPID"),
    (54, "WBINVD"),
    (55, "XSETBV"),
    (56, "APIC_WRITE"),
    (57, "RDRAND"),
    (58, "INVPCID"),
    (59, "VMFUNC"),
    (60, "ENCLS"),
    (61, "RDSEED"),
    (62, "PML_FULL"),
    (63, "XSAVES"),
    (64, "XRSTORS"),
    (67, "UMWAIT"),
    (68, "TPAUSE"),
    (74, "BUS_LOCK"),
    (75, "NOTIFY"),
];

/// AMD SVM exit codes outside the numbered ranges (CRn/DRn access, exceptions, CR write traps).
const SVM: &[(u64, &str)] = &[
    (0x060, "intr"),
    (0x061, "nmi"),
    (0x062, "smi"),
    (0x063, "init"),
    (0x064, "vintr"),
    (0x065, "cr0_sel_write"),
    (0x066, "read_idtr"),
    (0x067, "read_gdtr"),
    (0x068, "read_ldtr"),
    (0x069, "read_tr"),
    (0x06a, "write_idtr"),
    (0x06b, "write_gdtr"),
    (0x06c, "write_ldtr"),
    (0x06d, "write_tr"),
    (0x06e, "rdtsc"),
    (0x06f, "rdpmc"),
    (0x070, "pushf"),
    (0x071, "popf"),
    (0x072, "cpuid"),
    (0x073, "rsm"),
    (0x074, "iret"),
    (0x075, "swint"),
    (0x076, "invd"),
    (0x077, "pause"),
    (0x078, "hlt"),
    (0x079, "invlpg"),
    (0x07a, "invlpga"),
    (0x07b, "ioio"),
    (0x07c, "msr"),
    (0x07d, "task_switch"),
    (0x07e, "ferr_freeze"),
    (0x07f, "shutdown"),
    (0x080, "vmrun"),
    (0x081, "vmmcall"),
    (0x082, "vmload"),
    (0x083, "vmsave"),
    (0x084, "stgi"),
    (0x085, "clgi"),
    (0x086, "skinit"),
    (0x087, "rdtscp"),
    (0x088, "icebp"),
    (0x089, "wbinvd"),
    (0x08a, "monitor"),
    (0x08b, "mwait"),
    (0x08c, "mwait_cond"),
    (0x08d, "xsetbv"),
    (0x08e, "rdpru"),
    (0x08f, "efer_write_trap"),
    (0x0a0, "invpcid"),
    (0x0a5, "idle_hlt"),
    (0x400, "npf"),
    (0x401, "avic_incomplete_ipi"),
    (0x402, "avic_unaccelerated_access"),
    (0x403, "vmgexit"),
];

/// x86 exception mnemonics by vector, for SVM's exception exits (`0x040 + vector`).
const EXCEPTIONS: [&str; 32] = [
    "de", "db", "nmi", "bp", "of", "br", "ud", "nm", "df", "09", "ts", "np", "ss", "gp", "pf",
    "0f", "mf", "ac", "mc", "xm", "ve", "cp", "16", "17", "18", "19", "1a", "1b", "hv", "vc", "sx",
    "1f",
];

/// The HLT exit code of an ISA: the exit that precedes a guest's idle wait.
pub fn hlt_code(isa: Isa) -> u64 {
    match isa {
        Isa::Vmx => 12,
        Isa::Svm => 0x078,
    }
}

/// The name of an exit, in the ISA's vocabulary; unknown codes print as hexadecimal.
pub fn exit_name(isa: Isa, code: u64) -> String {
    match isa {
        Isa::Vmx => {
            let basic = code & 0xffff;
            match VMX.binary_search_by_key(&basic, |(c, _)| *c) {
                Ok(i) => VMX[i].1.to_string(),
                Err(_) => format!("VMX_{basic:#x}"),
            }
        }
        Isa::Svm => match code {
            0x000..=0x00f => format!("read_cr{}", code),
            0x010..=0x01f => format!("write_cr{}", code - 0x010),
            0x020..=0x02f => format!("read_dr{}", code - 0x020),
            0x030..=0x03f => format!("write_dr{}", code - 0x030),
            0x040..=0x05f => format!("{}_excp", EXCEPTIONS[(code - 0x040) as usize]),
            0x090..=0x09f => format!("cr{}_write_trap", code - 0x090),
            _ => match SVM.binary_search_by_key(&code, |(c, _)| *c) {
                Ok(i) => SVM[i].1.to_string(),
                Err(_) => format!("svm_{code:#x}"),
            },
        },
    }
}

/// Reads an exit-reason name as printed by a text trace (`EXIT_MSR`, `msr`, `HLT`,
/// `EPT_VIOLATION`…) back into an ISA and code. `isa` narrows the search when known.
pub fn exit_from_name(name: &str, isa: Option<Isa>) -> Option<(Isa, u64)> {
    let bare = name
        .strip_prefix("EXIT_REASON_")
        .or_else(|| name.strip_prefix("EXIT_"))
        .unwrap_or(name);
    let lower = bare.to_ascii_lowercase();
    let upper = bare.to_ascii_uppercase();
    let svm = || {
        SVM.iter()
            .find(|(_, n)| *n == lower)
            .map(|(c, _)| (Isa::Svm, *c))
            .or_else(|| {
                (0..0x60u64)
                    .chain(0x90..0xa0)
                    .find(|c| exit_name(Isa::Svm, *c) == lower)
                    .map(|c| (Isa::Svm, c))
            })
    };
    let vmx = || {
        VMX.iter()
            .find(|(_, n)| *n == upper)
            .map(|(c, _)| (Isa::Vmx, *c))
    };
    match isa {
        Some(Isa::Svm) => svm(),
        Some(Isa::Vmx) => vmx(),
        // Lower-case names are SVM's vocabulary; upper-case ones without a prefix are VMX's.
        // trace-cmd's KVM plugin prefixes SVM names with `EXIT_` in upper case.
        None if bare == lower => svm().or_else(vmx),
        None if bare.len() != name.len() => svm().or_else(vmx),
        None => vmx().or_else(svm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(VMX.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(SVM.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn names_both_isas() {
        assert_eq!(exit_name(Isa::Vmx, 12), "HLT");
        assert_eq!(exit_name(Isa::Vmx, 48 | 0x8000_0000), "EPT_VIOLATION");
        assert_eq!(exit_name(Isa::Svm, 0x078), "hlt");
        assert_eq!(exit_name(Isa::Svm, 0x07c), "msr");
        assert_eq!(exit_name(Isa::Svm, 0x04e), "pf_excp");
        assert_eq!(exit_name(Isa::Svm, 0x003), "read_cr3");
        assert_eq!(exit_name(Isa::Svm, 0x400), "npf");
    }

    #[test]
    fn reads_names_back() {
        assert_eq!(exit_from_name("EXIT_MSR", None), Some((Isa::Svm, 0x07c)));
        assert_eq!(exit_from_name("EXIT_IOIO", None), Some((Isa::Svm, 0x07b)));
        assert_eq!(exit_from_name("hlt", None), Some((Isa::Svm, 0x078)));
        assert_eq!(exit_from_name("HLT", None), Some((Isa::Vmx, 12)));
        assert_eq!(exit_from_name("EPT_VIOLATION", None), Some((Isa::Vmx, 48)));
        assert_eq!(exit_from_name("pf_excp", None), Some((Isa::Svm, 0x04e)));
        assert_eq!(
            exit_from_name("HLT", Some(Isa::Svm)),
            Some((Isa::Svm, 0x078))
        );
    }
}

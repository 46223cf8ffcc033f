//! Exit reasons in a few kinds, the "exit mix" that tells workloads apart: a guest that waits
//! halts, one that talks to its devices exits on port I/O and MMIO, one that computes is
//! interrupted by the host, and every Linux guest reprograms its timer through an MSR.

use serde::{Deserialize, Serialize};

use crate::Isa;

/// What an exit was for, in both ISAs' vocabularies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitKind {
    /// The guest halted (VMX HLT; SVM `hlt`, `idle_hlt`) or waited in MWAIT.
    Halt,
    /// Port I/O and MMIO to an emulated device: VMX IO_INSTRUCTION and EPT_MISCONFIG; SVM
    /// `ioio` and `npf`. Under nested paging AMD reports MMIO as a nested page fault, so
    /// SVM's `npf` counts here, as the device analysis counts it among I/O exits (a real
    /// fault on guest memory is an `npf` too, rarer once the guest's memory is mapped).
    Io,
    /// A host interrupt or NMI while in the guest, or an interrupt window opening: VMX
    /// EXTERNAL_INTERRUPT, INTERRUPT_WINDOW, NMI_WINDOW, EXCEPTION_NMI, PREEMPTION_TIMER; SVM
    /// `intr`, `nmi`, `vintr`.
    Interrupt,
    /// MSR accesses (VMX MSR_READ, MSR_WRITE; SVM `msr`): mostly the TSC-deadline timer.
    Msr,
    /// Guest memory faults the host handles: VMX EPT_VIOLATION; SVM's page-fault exception.
    Paging,
    /// Everything else (CPUID, CR accesses, APIC accesses, hypercalls…).
    Other,
}

impl ExitKind {
    pub const ALL: [ExitKind; 6] = [
        ExitKind::Halt,
        ExitKind::Io,
        ExitKind::Interrupt,
        ExitKind::Msr,
        ExitKind::Paging,
        ExitKind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ExitKind::Halt => "halt",
            ExitKind::Io => "io",
            ExitKind::Interrupt => "interrupt",
            ExitKind::Msr => "msr",
            ExitKind::Paging => "paging",
            ExitKind::Other => "other",
        }
    }

    /// Its index in [`ExitKind::ALL`] (and in the series arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kind of exit `code` (VMX: the full exit reason, of which the basic reason is the low
    /// 16 bits; SVM: the exit code).
    pub fn of(isa: Isa, code: u64) -> ExitKind {
        match isa {
            Isa::Vmx => match code & 0xffff {
                12 | 36 => ExitKind::Halt,
                30 | 49 => ExitKind::Io,
                0 | 1 | 7 | 8 | 52 => ExitKind::Interrupt,
                31 | 32 => ExitKind::Msr,
                48 => ExitKind::Paging,
                _ => ExitKind::Other,
            },
            Isa::Svm => match code {
                0x078 | 0x0a5 | 0x08b | 0x08c => ExitKind::Halt,
                0x07b | 0x400 => ExitKind::Io,
                0x060 | 0x061 | 0x064 => ExitKind::Interrupt,
                0x07c => ExitKind::Msr,
                0x04e => ExitKind::Paging,
                _ => ExitKind::Other,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_the_exits_the_lab_traces_show() {
        // DOMAIN.md's exit tables: SVM hlt 0x78, ioio 0x7b, msr 0x7c, intr 0x60, vintr 0x64,
        // npf 0x400, cpuid 0x72; VMX HLT 12, IO_INSTRUCTION 30, EPT_MISCONFIG 49,
        // EXTERNAL_INTERRUPT 1, MSR_WRITE 32, EPT_VIOLATION 48 (with the entry-failure bit).
        let svm = [
            (0x78, ExitKind::Halt),
            (0x7b, ExitKind::Io),
            (0x7c, ExitKind::Msr),
            (0x60, ExitKind::Interrupt),
            (0x64, ExitKind::Interrupt),
            (0x400, ExitKind::Io),
            (0x72, ExitKind::Other),
        ];
        for (code, kind) in svm {
            assert_eq!(ExitKind::of(Isa::Svm, code), kind, "svm {code:#x}");
        }
        let vmx = [
            (12, ExitKind::Halt),
            (30, ExitKind::Io),
            (49, ExitKind::Io),
            (1, ExitKind::Interrupt),
            (32, ExitKind::Msr),
            (48 | 0x8000_0000, ExitKind::Paging),
            (10, ExitKind::Other),
        ];
        for (code, kind) in vmx {
            assert_eq!(ExitKind::of(Isa::Vmx, code), kind, "vmx {code}");
        }
        for (i, k) in ExitKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}

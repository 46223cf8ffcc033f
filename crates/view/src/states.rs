//! The viewer's state vocabulary: the [`StateKey`] every sink colors and totals by, its
//! accessible palette, and [`Labeler`], which names one [`VcpuState`] for a person (exit
//! reasons by their names, preemptors by VM, vCPU or command).

use std::collections::HashMap;

use serde::Serialize;
use virtflow_model::{Isa, Model, Preemptor, VcpuState, WaitCause};

/// The coarse state a pixel is colored by. Waiting is split by cause because the cause is
/// what the reader came for; hypervisor time is split into kernel and VMM user space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKey {
    Guest,
    Hypervisor,
    UserSpace,
    Preempted,
    Ready,
    WaitTimer,
    WaitDisk,
    WaitNetwork,
    WaitTask,
    WaitOther,
    Unknown,
}

/// Number of [`StateKey`]s; per-state totals are `[u64; STATE_KEYS]` arrays indexed by key.
pub const STATE_KEYS: usize = 11;

/// Per-state nanoseconds, indexed by `StateKey as usize`.
pub type StateNs = [u64; STATE_KEYS];

impl StateKey {
    pub const ALL: [StateKey; STATE_KEYS] = [
        StateKey::Guest,
        StateKey::Hypervisor,
        StateKey::UserSpace,
        StateKey::Preempted,
        StateKey::Ready,
        StateKey::WaitTimer,
        StateKey::WaitDisk,
        StateKey::WaitNetwork,
        StateKey::WaitTask,
        StateKey::WaitOther,
        StateKey::Unknown,
    ];

    pub fn of(state: &VcpuState) -> StateKey {
        match state {
            VcpuState::Guest => StateKey::Guest,
            VcpuState::Hypervisor { .. } => StateKey::Hypervisor,
            VcpuState::UserSpace { .. } => StateKey::UserSpace,
            VcpuState::Preempted { .. } => StateKey::Preempted,
            VcpuState::Ready => StateKey::Ready,
            VcpuState::Waiting { cause } => match cause {
                WaitCause::Timer => StateKey::WaitTimer,
                WaitCause::Disk => StateKey::WaitDisk,
                WaitCause::Network => StateKey::WaitNetwork,
                WaitCause::Task => StateKey::WaitTask,
                WaitCause::Other => StateKey::WaitOther,
            },
            VcpuState::Unknown => StateKey::Unknown,
        }
    }

    /// Stable machine name (JSON, CSS, tests).
    pub fn name(self) -> &'static str {
        match self {
            StateKey::Guest => "guest",
            StateKey::Hypervisor => "hypervisor",
            StateKey::UserSpace => "userspace",
            StateKey::Preempted => "preempted",
            StateKey::Ready => "ready",
            StateKey::WaitTimer => "wait_timer",
            StateKey::WaitDisk => "wait_disk",
            StateKey::WaitNetwork => "wait_network",
            StateKey::WaitTask => "wait_task",
            StateKey::WaitOther => "wait_other",
            StateKey::Unknown => "unknown",
        }
    }

    /// Legend text.
    pub fn label(self) -> &'static str {
        match self {
            StateKey::Guest => "guest",
            StateKey::Hypervisor => "hypervisor (kernel)",
            StateKey::UserSpace => "hypervisor (VMM user space)",
            StateKey::Preempted => "preempted",
            StateKey::Ready => "ready (woken, not running)",
            StateKey::WaitTimer => "waiting: timer",
            StateKey::WaitDisk => "waiting: disk",
            StateKey::WaitNetwork => "waiting: network",
            StateKey::WaitTask => "waiting: task (IPI)",
            StateKey::WaitOther => "waiting: other",
            StateKey::Unknown => "unknown",
        }
    }

    /// Fill color. The running states use the Okabe–Ito palette, which stays distinct under
    /// the common color-vision deficiencies; the waiting causes share one blue hue at
    /// different lightness so that "idle" reads as one family; unknown is a neutral grey.
    pub fn color(self) -> &'static str {
        match self {
            StateKey::Guest => "#009e73",
            StateKey::Hypervisor => "#e69f00",
            StateKey::UserSpace => "#cc79a7",
            StateKey::Preempted => "#d55e00",
            StateKey::Ready => "#f0e442",
            StateKey::WaitTimer => "#0072b2",
            StateKey::WaitDisk => "#3d8fd1",
            StateKey::WaitNetwork => "#56b4e9",
            StateKey::WaitTask => "#8cc8ef",
            StateKey::WaitOther => "#bcdcf3",
            StateKey::Unknown => "#bdbdbd",
        }
    }
}

/// Totals per state key, from a vCPU's (or a sum of vCPUs') state times.
pub fn state_ns_of(times: &virtflow_model::StateTimes) -> StateNs {
    let mut ns = [0u64; STATE_KEYS];
    ns[StateKey::Guest as usize] = times.guest;
    // `hypervisor` includes user space; the viewer shows the two apart.
    ns[StateKey::Hypervisor as usize] = times.hypervisor.saturating_sub(times.userspace);
    ns[StateKey::UserSpace as usize] = times.userspace;
    ns[StateKey::Preempted as usize] = times.preempted;
    ns[StateKey::Ready as usize] = times.ready;
    ns[StateKey::WaitTimer as usize] = times.waiting.timer;
    ns[StateKey::WaitDisk as usize] = times.waiting.disk;
    ns[StateKey::WaitNetwork as usize] = times.waiting.network;
    ns[StateKey::WaitTask as usize] = times.waiting.task;
    ns[StateKey::WaitOther as usize] = times.waiting.other;
    ns[StateKey::Unknown as usize] = times.unknown;
    ns
}

/// KVM's `KVM_EXIT_*` numbers as `kvm_userspace_exit` reports them (include/uapi/linux/kvm.h).
fn kvm_userspace_exit_name(reason: u32) -> Option<&'static str> {
    Some(match reason {
        0 => "UNKNOWN",
        1 => "EXCEPTION",
        2 => "IO",
        3 => "HYPERCALL",
        4 => "DEBUG",
        5 => "HLT",
        6 => "MMIO",
        7 => "IRQ_WINDOW_OPEN",
        8 => "SHUTDOWN",
        9 => "FAIL_ENTRY",
        10 => "INTR",
        11 => "SET_TPR",
        12 => "TPR_ACCESS",
        17 => "INTERNAL_ERROR",
        24 => "SYSTEM_EVENT",
        _ => return None,
    })
}

/// Names states for people: exit reasons from the model's exit tables, preemptors by the VM
/// and vCPU (or host command) they are.
pub struct Labeler {
    exit_names: HashMap<(Option<Isa>, u64), String>,
    /// Host thread id → "vm-name vCPU n" for every vCPU thread in the model.
    vcpu_threads: HashMap<u32, String>,
    vm_names: HashMap<u32, String>,
}

impl Labeler {
    pub fn new(model: &Model) -> Labeler {
        let mut exit_names = HashMap::new();
        let mut vcpu_threads = HashMap::new();
        let mut vm_names = HashMap::new();
        for vm in &model.vms {
            vm_names.insert(vm.pid, vm.name.clone());
            for e in &vm.exits {
                exit_names.insert((e.isa, e.code), e.reason.clone());
            }
            for v in &vm.vcpus {
                vcpu_threads.insert(v.tid, format!("{} vCPU {}", vm.name, v.vcpu));
            }
        }
        Labeler {
            exit_names,
            vcpu_threads,
            vm_names,
        }
    }

    /// The exit reason's name, as the analysis named it, else its number.
    pub fn exit_name(&self, isa: Isa, code: u64) -> String {
        self.exit_names
            .get(&(Some(isa), code))
            .or_else(|| self.exit_names.get(&(None, code)))
            .cloned()
            .unwrap_or_else(|| format!("exit {code:#x}"))
    }

    /// Who a preemptor is, in a few words.
    pub fn preemptor(&self, by: &Preemptor) -> String {
        match by {
            Preemptor::SameVm { tid } => match self.vcpu_threads.get(tid) {
                Some(name) => name.clone(),
                None => format!("thread {tid} of the same VM"),
            },
            Preemptor::OtherVm { pid, tid } => match self.vcpu_threads.get(tid) {
                Some(name) => name.clone(),
                None => match self.vm_names.get(pid) {
                    Some(vm) => format!("{vm} thread {tid}"),
                    None => format!("VM {pid} thread {tid}"),
                },
            },
            Preemptor::HostProcess { tid, comm } => format!("{comm} ({tid})"),
            Preemptor::KernelThread { tid, comm } => format!("{comm} ({tid}, kernel)"),
            Preemptor::Unknown => "an unseen task".to_string(),
        }
    }

    /// A one-line description of a state: what the slice name in Perfetto and the hover
    /// text in the viewer say.
    pub fn label(&self, state: &VcpuState) -> String {
        match state {
            VcpuState::Guest => "guest".to_string(),
            VcpuState::Hypervisor { isa, code } => {
                format!("hypervisor: {}", self.exit_name(*isa, *code))
            }
            VcpuState::UserSpace { reason } => match kvm_userspace_exit_name(*reason) {
                Some(name) => format!("VMM user space: KVM_EXIT_{name}"),
                None => format!("VMM user space: exit {reason}"),
            },
            VcpuState::Preempted { by } => format!("preempted by {}", self.preemptor(by)),
            VcpuState::Ready => "ready".to_string(),
            VcpuState::Waiting { cause } => format!("waiting: {}", cause.name()),
            VcpuState::Unknown => "unknown".to_string(),
        }
    }
}

/// True when an exit is the host interrupting the guest (VMX EXTERNAL_INTERRUPT, SVM `intr`):
/// what the "interrupt rate" counters count.
pub fn is_external_interrupt(state: &VcpuState) -> bool {
    matches!(
        state,
        VcpuState::Hypervisor {
            isa: Isa::Vmx,
            code: 1
        } | VcpuState::Hypervisor {
            isa: Isa::Svm,
            code: 0x60
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_distinct_name_and_color() {
        let names: std::collections::HashSet<_> = StateKey::ALL.iter().map(|k| k.name()).collect();
        let colors: std::collections::HashSet<_> =
            StateKey::ALL.iter().map(|k| k.color()).collect();
        assert_eq!(names.len(), STATE_KEYS);
        assert_eq!(colors.len(), STATE_KEYS);
        for (i, k) in StateKey::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }
}

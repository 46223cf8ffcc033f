//! The state vocabulary of the W2A analysis: what a vCPU is doing at an instant, why it
//! waits, who preempted it, and the time it spent in each state.

use serde::{Deserialize, Serialize};

/// Why a blocked vCPU waited, known when it is woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitCause {
    Timer,
    Disk,
    Network,
    /// Another vCPU of the same VM (IPI).
    Task,
    Other,
}

impl WaitCause {
    pub const ALL: [WaitCause; 5] = [
        WaitCause::Timer,
        WaitCause::Disk,
        WaitCause::Network,
        WaitCause::Task,
        WaitCause::Other,
    ];
    pub fn name(self) -> &'static str {
        match self {
            WaitCause::Timer => "timer",
            WaitCause::Disk => "disk",
            WaitCause::Network => "network",
            WaitCause::Task => "task",
            WaitCause::Other => "other",
        }
    }
}

/// Who ran on the pCPU while a vCPU was preempted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Preemptor {
    /// Another vCPU of the same VM.
    SameVm { tid: u32 },
    /// A vCPU or helper thread of another VM (by its VMM pid).
    OtherVm { pid: u32, tid: u32 },
    /// A host process (user space).
    HostProcess { tid: u32, comm: String },
    /// A kernel thread (pid 2's children, `kworker`…).
    KernelThread { tid: u32, comm: String },
    /// Unknown: the pCPU's next task was not seen.
    Unknown,
}

/// The state of a vCPU at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum VcpuState {
    /// Running guest code (VMX non-root / SVM guest mode).
    Guest,
    /// In the host kernel handling an exit: the exit reason's ISA and code.
    Hypervisor { isa: Isa, code: u64 },
    /// In the VMM's user space after `kvm_userspace_exit` (`reason` as KVM numbers it).
    UserSpace { reason: u32 },
    /// Switched out while runnable.
    Preempted { by: Preemptor },
    /// Woken, not yet running.
    Ready,
    /// Blocked (after HLT), by cause.
    Waiting { cause: WaitCause },
    /// Before the first event that reveals the state, or across lost events.
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isa {
    Vmx,
    Svm,
}

/// Nanoseconds spent waiting, per cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitTimes {
    pub timer: u64,
    pub disk: u64,
    pub network: u64,
    pub task: u64,
    pub other: u64,
}

impl WaitTimes {
    pub fn get(&self, cause: WaitCause) -> u64 {
        match cause {
            WaitCause::Timer => self.timer,
            WaitCause::Disk => self.disk,
            WaitCause::Network => self.network,
            WaitCause::Task => self.task,
            WaitCause::Other => self.other,
        }
    }
    pub fn get_mut(&mut self, cause: WaitCause) -> &mut u64 {
        match cause {
            WaitCause::Timer => &mut self.timer,
            WaitCause::Disk => &mut self.disk,
            WaitCause::Network => &mut self.network,
            WaitCause::Task => &mut self.task,
            WaitCause::Other => &mut self.other,
        }
    }
    pub fn total(&self) -> u64 {
        self.timer + self.disk + self.network + self.task + self.other
    }
}

/// Nanoseconds a vCPU spent in each state (the `time_ns` object of `analyze --json`).
/// `hypervisor` includes the time in the VMM's user space, also given alone as `userspace`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTimes {
    pub guest: u64,
    pub hypervisor: u64,
    #[serde(default)]
    pub userspace: u64,
    pub preempted: u64,
    pub ready: u64,
    pub waiting: WaitTimes,
    pub unknown: u64,
}

impl StateTimes {
    pub fn total(&self) -> u64 {
        self.guest
            + self.hypervisor
            + self.preempted
            + self.ready
            + self.waiting.total()
            + self.unknown
    }

    /// Adds `ns` to the bucket of `state`.
    pub fn add(&mut self, state: &VcpuState, ns: u64) {
        match state {
            VcpuState::Guest => self.guest += ns,
            VcpuState::Hypervisor { .. } => self.hypervisor += ns,
            VcpuState::UserSpace { .. } => {
                self.hypervisor += ns;
                self.userspace += ns;
            }
            VcpuState::Preempted { .. } => self.preempted += ns,
            VcpuState::Ready => self.ready += ns,
            VcpuState::Waiting { cause } => *self.waiting.get_mut(*cause) += ns,
            VcpuState::Unknown => self.unknown += ns,
        }
    }
}

/// A half-open interval `[start, end)` of one state, timestamps in trace nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
    #[serde(flatten)]
    pub state: VcpuState,
}

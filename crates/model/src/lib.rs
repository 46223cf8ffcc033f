//! virtflow's results as plain data: what the analyses write and every sink reads.
//!
//! Principal types:
//!
//! - [`Model`]: one analysis run over one or several traces: the [`Host`]s seen, the [`Vm`]s
//!   found on them, and what the readers counted ([`virtflow_trace::ReadStats`]).
//! - [`Vm`]: a VMM process (QEMU or other) with its [`Vcpu`]s, its helper threads, its
//!   exit-reason table ([`ExitStat`]) and injected interrupts ([`VectorStat`]).
//! - [`Vcpu`]: per-state totals ([`StateTimes`], the `time_ns` of `analyze --json`) and,
//!   when asked for, the state timeline as [`Interval`]s of [`VcpuState`].
//! - [`VcpuState`] and [`WaitCause`]: the state vocabulary of the W2A analysis.
//!
//! The JSON produced by `serde` from these types *is* the documented schema of
//! `virtflow analyze --json` and of the simulator's `truth.json`; change them together.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use virtflow_trace::ReadStats;

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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vcpu {
    /// The vCPU number (KVM's `vcpu_id`).
    pub vcpu: u32,
    /// The host thread that runs it.
    pub tid: u32,
    pub time_ns: StateTimes,
    /// How many waits ended, per cause (same keys as `time_ns.waiting`).
    #[serde(default)]
    pub waits: WaitTimes,
    /// The state timeline, when the run asked for it (`--intervals`, the viewer, exports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Interval>,
    /// Guest time whose exit showed a guest kernel address (`guest_rip` in the canonical high
    /// half); with `guest_user_ns`, a split of `time_ns.guest` (runs whose exit was not seen
    /// are in neither).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub guest_kernel_ns: u64,
    /// Guest time whose exit showed a guest user-space address.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub guest_user_ns: u64,
    /// Guest time per guest process (page-table base at entry), when the trace reports CR3
    /// at entries; longest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<GuestProcess>,
    /// Guest time spent in nested (L2) guests; the rest of `time_ns.guest` is L1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub l2_ns: u64,
    /// The L2 guests this vCPU ran, longest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<NestedGuest>,
    /// VM exits of this vCPU (all reasons; the VM's `exits` table has them by reason).
    #[serde(default)]
    pub exit_count: u64,
    /// Interrupts injected into this vCPU, by vector; most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injections: Vec<VectorStat>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A half-open span of time `[start, end)`, trace nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

/// A guest process as the host sees it: one page-table base (CR3) loaded at guest entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestProcess {
    pub cr3: u64,
    /// Seen while the vCPU ran a nested (L2) guest.
    #[serde(default)]
    pub l2: bool,
    /// Entries into the guest with this CR3.
    #[serde(default)]
    pub entries: u64,
    pub guest_ns: u64,
    /// Of `guest_ns`: runs that exited in the guest kernel, and in guest user space.
    #[serde(default)]
    pub kernel_ns: u64,
    #[serde(default)]
    pub user_ns: u64,
    /// Exits out of the guest while this process ran.
    #[serde(default)]
    pub exits: u64,
    /// Interrupts injected at the entries into this process, by vector; most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injections: Vec<VectorStat>,
    /// When the run kept intervals: when it ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Span>,
}

/// A nested (L2) guest run by a vCPU, named by its nested VMCS/VMCB address (`vmcb` of
/// `kvm_nested_vmenter`), or by its page-table base when the tracer gives no address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedGuest {
    pub vmcs: u64,
    /// Entries into this L2 guest.
    #[serde(default)]
    pub entries: u64,
    pub guest_ns: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Span>,
}

/// What a helper thread of a VMM does, recognised from its behaviour (and name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadRole {
    MainLoop,
    IoThread,
    Worker,
    Vhost,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperThread {
    pub tid: u32,
    pub comm: String,
    pub role: ThreadRole,
}

/// One row of the exit-reason table (like `perf kvm stat report`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitStat {
    /// Name in the ISA's vocabulary (`HLT`, `hlt`, `EPT_VIOLATION`, `npf`…).
    pub reason: String,
    pub isa: Option<Isa>,
    pub code: u64,
    pub count: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub mean_ns: u64,
    pub max_ns: u64,
}

/// Interrupts injected into a VM on one vector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorStat {
    pub vector: u32,
    /// What the vector was found to serve: `timer`, `disk`, `network`, `task`, `other`.
    pub class: WaitCause,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub pid: u32,
    /// `<process name>/<pid>`; `<guest name> (<process name>/<pid>)` when the guest's name is
    /// known (`guest_name`).
    pub name: String,
    /// The guest's name from its VMM's command line (QEMU `-name`), when the trace or the
    /// recorder's sidecar file holds that command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_name: Option<String>,
    /// The VM's UUID from the same command line (QEMU `-uuid`, else `-smbios type=1,uuid=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub host: String,
    /// The workload class, when known (the simulator's truth; a clustering's verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    pub vcpus: Vec<Vcpu>,
    #[serde(default)]
    pub threads: Vec<HelperThread>,
    #[serde(default)]
    pub exits: Vec<ExitStat>,
    #[serde(default)]
    pub injections: Vec<VectorStat>,
    /// Who ran while this VM's vCPUs were preempted, longest total first.
    #[serde(default)]
    pub preemptions: Vec<PreemptionStat>,
    /// Wake-up latency of the vCPUs: time in the `ready` state, woken to running.
    #[serde(default)]
    pub wakeup_latency: LatencyStats,
    /// How the two signals of a wait's cause (waker, injected vector) agreed.
    #[serde(default)]
    pub wait_signals: WaitSignals,
    /// What the VM's helper threads did for its virtual devices.
    #[serde(default)]
    pub io: IoStats,
}

/// The work a VM's helper threads did for its virtual disk and network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStats {
    /// Block requests its threads issued (`block_rq_issue` in their context) and saw complete.
    pub disk_requests: u64,
    /// Total issue → complete latency of those requests.
    pub disk_latency_ns: u64,
    /// I/O exits of its vCPUs followed by a block request of its threads: how many, and the
    /// total delay from the exit to the request (how long the VMM took to submit).
    pub submit_delays: u64,
    pub submit_delay_ns: u64,
    /// Network events (`net_dev_queue`, `netif_receive_skb`, …) in its vhost threads.
    pub packets: u64,
}

/// Time a VM's vCPUs spent preempted by one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreemptionStat {
    pub by: Preemptor,
    pub count: u64,
    pub total_ns: u64,
}

/// A duration distribution (nanoseconds); percentiles are exact to within 1%.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub mean_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// Agreement of the two signals that tell why a vCPU waited: the thread that woke it, and the
/// vector injected at its next entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitSignals {
    /// Waits whose cause was decided.
    pub waits: u64,
    /// Both signals known and naming the same cause.
    pub agree: u64,
    /// Both known, naming different causes (the waker's is kept).
    pub disagree: u64,
    /// Only the waker told.
    pub waker_only: u64,
    /// Only the injected vector told.
    pub vector_only: u64,
    /// Neither told: the cause is `other`.
    pub neither: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    /// The trace files or folders this host's events came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<String>,
    pub cpus: u32,
    /// Events of this host (all classes, used or not).
    #[serde(default)]
    pub events: u64,
    /// First and last timestamps seen.
    pub start_ns: i64,
    pub end_ns: i64,
    /// The threads that ran longest on the host's CPUs, longest first.
    #[serde(default)]
    pub busiest: Vec<TaskTime>,
    /// How this host's clock was put on the experiment's time line, when the experiment has
    /// several hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<HostClock>,
}

/// A host's clock on the experiment's time line: its time `t` is `slope × t + offset_ns` on
/// the reference host's clock.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostClock {
    /// Whether this is the reference host (slope 1, offset 0).
    pub reference: bool,
    pub slope: f64,
    pub offset_ns: f64,
    /// The same coefficients in full (the synchronisation computes them to 34 digits).
    pub slope_exact: String,
    pub offset_exact: String,
    /// `absent`, `incomplete`, `approximate`, `accurate`, `fail`, or `off` when the user
    /// turned synchronisation off.
    pub quality: String,
    /// Messages this host exchanged with the others that took part.
    pub matches: u64,
    /// How far (ns) the transform may place this host's events from their true time, when
    /// the hulls bound it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_ns: Option<f64>,
}

/// The experiment's time line: where the clocks came from and how the messages between hosts
/// look on it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The host whose clock every time is on.
    pub reference: String,
    /// Where the transforms came from: `computed`, `cache`, a `--sync` file, or `off`.
    pub source: String,
    /// Messages paired between two hosts during the analysis.
    pub messages: u64,
    /// Of those, received before they were sent once on this time line: what the
    /// synchronisation could not explain (none when it is accurate).
    pub received_before_sent: u64,
}

/// Time one host thread spent running on a CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTime {
    pub tid: u32,
    pub comm: String,
    pub cpu_ns: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The traces read, as given on the command line.
    pub traces: Vec<String>,
    pub hosts: Vec<Host>,
    pub vms: Vec<Vm>,
    pub read: ReadStats,
    /// For an experiment of several hosts: their common time line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// Plain sentences for the reader of the report ("no KVM events in this trace").
    #[serde(default)]
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_times_add_and_total() {
        let mut t = StateTimes::default();
        t.add(&VcpuState::Guest, 10);
        t.add(&VcpuState::UserSpace { reason: 2 }, 5);
        t.add(
            &VcpuState::Waiting {
                cause: WaitCause::Disk,
            },
            7,
        );
        assert_eq!(t.hypervisor, 5);
        assert_eq!(t.userspace, 5);
        assert_eq!(t.waiting.disk, 7);
        assert_eq!(t.total(), 22);
    }

    #[test]
    fn vm_guest_name_and_uuid_are_optional_in_json() {
        // A model written before these fields existed still reads.
        let old = r#"{"pid":1,"name":"qemu-system-x86/1","host":"h","vcpus":[]}"#;
        let vm: Vm = serde_json::from_str(old).unwrap();
        assert_eq!((vm.guest_name.as_deref(), vm.uuid.as_deref()), (None, None));
        let s = serde_json::to_string(&vm).unwrap();
        assert!(!s.contains("guest_name") && !s.contains("uuid"), "{s}");
        let named = Vm {
            guest_name: Some("web1".into()),
            uuid: Some("c7a5fdbd-edaf-9455-926a-d65c16db1809".into()),
            ..vm
        };
        let s = serde_json::to_string(&named).unwrap();
        assert!(s.contains(r#""guest_name":"web1""#), "{s}");
        assert_eq!(serde_json::from_str::<Vm>(&s).unwrap(), named);
    }

    #[test]
    fn interval_json_is_flat() {
        let i = Interval {
            start: 1,
            end: 2,
            state: VcpuState::Waiting {
                cause: WaitCause::Timer,
            },
        };
        let s = serde_json::to_string(&i).unwrap();
        assert!(s.contains("\"state\":\"waiting\""), "{s}");
        assert!(s.contains("\"cause\":\"timer\""), "{s}");
    }
}

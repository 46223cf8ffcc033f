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

mod activity;
mod exitkind;
mod graph;
mod host;
mod memory;
mod overcommit;
mod retime;
pub mod series;
mod states;
mod vcpu;
mod vm;

pub use activity::{ProcessActivity, VcpuActivity, VmActivity};
pub use exitkind::ExitKind;
pub use graph::{ExecutionGraph, GraphWorker, GuestWorker};
pub use host::{Host, HostClock, TaskTime, Timeline};
pub use memory::{HostMemory, VmMemory};
pub use overcommit::{Culprit, HostOvercommit, PreemptionMatrix, VmOvercommit};
pub use series::Buckets;
pub use states::{Interval, Isa, Preemptor, StateTimes, VcpuState, WaitCause, WaitTimes};
pub use vcpu::{
    ExitStat, GuestProcess, HelperThread, NestedGuest, Span, ThreadRole, Vcpu, VectorStat,
};
pub use vm::{IoStats, LatencyStats, Phase, PreemptionStat, Vm, WaitSignals};

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
    /// The execution graph, when the run built it (`critical-path`, `--graph`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<ExecutionGraph>,
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

//! One host of an experiment, its clock on the experiment's time line, and its busiest
//! threads.

use serde::{Deserialize, Serialize};

use crate::{Buckets, HostMemory, HostOvercommit};

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
    /// The buckets of every series of this host and its VMs (when the run kept series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Buckets>,
    /// How its pCPUs were shared among vCPUs.
    #[serde(default)]
    pub overcommit: HostOvercommit,
    /// Its page allocations, when traced.
    #[serde(default)]
    pub memory: HostMemory,
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

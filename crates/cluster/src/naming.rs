//! Names for clusters, from their dominant features, with the evidence.
//!
//! The rules follow the seed research's reading of its clusters: CPU-intensive VMs have a
//! high timer-interrupt rate and CPU use; disk-intensive ones high disk (and task)
//! interrupts; network-intensive ones high network interrupts. A class is decided on the
//! cluster's mean of raw (not normalised) values against fixed floors, so that a table
//! holding only one kind of VM still names it; the evidence compares with the median of all
//! rows, which is what tells an operator how unusual the cluster is.
//!
//! A cluster of time windows ([`name_windows`]) follows the same rules on its mean, with one
//! more: when its mean reads as mixed while most of its windows bear one name, it takes that
//! name. A workload is a phase: a few busy windows at the edge of an idle stretch must not
//! make the stretch "mixed". The medians of a table are computed once ([`Medians`]): tables
//! of windows have thousands of rows.

use std::fmt;

use serde::Serialize;

use crate::table::FeatureTable;

/// The workload classes a cluster can be named after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadClass {
    CpuIntensive,
    DiskIntensive,
    NetworkIntensive,
    Idle,
    Mixed,
}

impl WorkloadClass {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadClass::CpuIntensive => "cpu-intensive",
            WorkloadClass::DiskIntensive => "disk-intensive",
            WorkloadClass::NetworkIntensive => "network-intensive",
            WorkloadClass::Idle => "idle",
            WorkloadClass::Mixed => "mixed",
        }
    }

    /// Maps the workload words of the simulator's truth and the lab manifests (`cpu`,
    /// `disk`, `net`, `network`, `idle`, `mixed`…) onto a class.
    pub fn from_workload(w: &str) -> Option<Self> {
        let w = w.to_ascii_lowercase();
        let w = w.trim_end_matches("-intensive");
        Some(match w {
            "cpu" | "compute" | "busy" => WorkloadClass::CpuIntensive,
            "disk" | "io" | "block" | "storage" => WorkloadClass::DiskIntensive,
            "net" | "network" => WorkloadClass::NetworkIntensive,
            "idle" => WorkloadClass::Idle,
            "mixed" => WorkloadClass::Mixed,
            _ => return None,
        })
    }
}

impl fmt::Display for WorkloadClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Device interrupts per second (per row: a VM, a vCPU or a process) under which disk or
/// network activity never counts as dominant. An idle Linux guest sees well under 1/s of
/// either from its own devices.
pub const DEVICE_RATE_FLOOR: f64 = 20.0;
/// Device work per second (block requests of the VM's threads; packets through its vhost
/// threads) that confirms a device's interrupts are real I/O.
pub const DEVICE_WORK_FLOOR: f64 = 5.0;
/// Without device work in the trace (no block or net events recorded), device interrupts
/// must stand this many times above the median of all rows.
pub const DEVICE_RATIO: f64 = 4.0;
/// Share of vCPU time running or runnable (`cpu_demand`) from which a row is CPU-intensive.
pub const CPU_HIGH: f64 = 0.5;
/// Share of vCPU time running or runnable under which a row without device activity is idle.
pub const CPU_IDLE: f64 = 0.1;

/// One piece of evidence: a feature of the cluster against the median of all rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    pub feature: String,
    pub unit: String,
    /// Mean over the cluster's members.
    pub value: f64,
    /// Median over every row of the table.
    pub median: f64,
    /// `value / median`, absent when the median is 0.
    pub ratio: Option<f64>,
    /// The sentence shown to people: "timer interrupts 4.1× the median (250/s vs 61/s)".
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Naming {
    pub class: WorkloadClass,
    pub evidence: Vec<Evidence>,
}

pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Words people read for a feature in evidence sentences.
fn phrase(feature: &str) -> &str {
    match feature {
        "irq_timer_rate" => "timer interrupts",
        "irq_disk_rate" => "disk interrupts",
        "irq_network_rate" => "network interrupts",
        "irq_task_rate" => "task (IPI) interrupts",
        "irq_other_rate" => "other interrupts",
        "cpu_use" => "CPU use",
        "cpu_demand" => "CPU demand (running or preempted)",
        "guest_share" => "guest time",
        "hypervisor_share" => "time in the host handling exits",
        "preempted_share" => "preempted time",
        "ready_share" => "time woken but not running",
        "guest_user_share" => "guest user-space time (of guest time)",
        "steal_share" => "steal (runnable, not running)",
        "disk_rq_rate" => "disk requests",
        "disk_rq_latency_us" => "disk request latency",
        "disk_submit_delay_us" => "delay from I/O exit to disk request",
        "net_pkt_rate" => "vhost packets",
        "wait_share" => "waiting time",
        "wait_timer_rate" => "waits ended by a timer",
        "wait_disk_rate" => "waits ended by the disk",
        "wait_network_rate" => "waits ended by the network",
        "wait_task_rate" => "waits ended by an IPI",
        "wait_other_rate" => "waits ended otherwise",
        "wait_timer_mean_us" => "mean wait for a timer",
        "wait_disk_mean_us" => "mean wait for the disk",
        "wait_network_mean_us" => "mean wait for the network",
        "wait_task_mean_us" => "mean wait for an IPI",
        "wait_other_mean_us" => "mean other wait",
        "exit_rate" => "VM exits",
        "exit_halt_share" => "HLT exits (of all exits)",
        "exit_io_share" => "I/O and MMIO exits (of all exits)",
        "exit_interrupt_share" => "host-interrupt exits (of all exits)",
        "exit_msr_share" => "MSR exits (of all exits)",
        "exit_paging_share" => "guest page-fault exits (of all exits)",
        "exit_other_share" => "other exits (of all exits)",
        "entry_rate" => "guest entries",
        other => other,
    }
}

fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "ratio" => format!("{:.0}%", v * 100.0),
        "1/s" => format!("{}/s", short(v)),
        _ => format!("{} {unit}", short(v)),
    }
}

fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The median of every column of a table, what the evidence compares with.
#[derive(Clone, Debug, PartialEq)]
pub struct Medians(Vec<f64>);

impl Medians {
    pub fn of(table: &FeatureTable) -> Medians {
        Medians(
            (0..table.features.len())
                .map(|c| {
                    let mut all: Vec<f64> = table.rows.iter().map(|r| r.values[c]).collect();
                    median(&mut all)
                })
                .collect(),
        )
    }

    /// The median of column `col`.
    pub fn get(&self, col: usize) -> f64 {
        self.0.get(col).copied().unwrap_or(0.0)
    }
}

/// Evidence for `feature` over the member rows, or `None` when the table lacks it.
pub fn evidence(table: &FeatureTable, members: &[usize], feature: &str) -> Option<Evidence> {
    evidence_with(table, &Medians::of(table), members, feature)
}

/// [`evidence`] with the table's medians computed beforehand.
pub fn evidence_with(
    table: &FeatureTable,
    medians: &Medians,
    members: &[usize],
    feature: &str,
) -> Option<Evidence> {
    let col = table.column(feature)?;
    let unit = table.features[col].unit.clone();
    let med = medians.get(col);
    let value = if members.is_empty() {
        0.0
    } else {
        members
            .iter()
            .map(|&i| table.rows[i].values[col])
            .sum::<f64>()
            / members.len() as f64
    };
    let ratio = (med > 0.0).then(|| value / med);
    let text = match ratio {
        Some(r) => format!(
            "{} {:.1}× the median ({} vs {})",
            phrase(feature),
            r,
            format_value(value, &unit),
            format_value(med, &unit)
        ),
        None => format!(
            "{} {} (median 0)",
            phrase(feature),
            format_value(value, &unit)
        ),
    };
    Some(Evidence {
        feature: feature.to_string(),
        unit,
        value,
        median: med,
        ratio,
        text,
    })
}

/// A device class is dominant when its interrupt rate passes the floor and either the
/// device work confirms it or it stands far above the median of all rows.
fn device_high(irq: &Option<Evidence>, work: &Option<Evidence>) -> bool {
    let Some(irq) = irq else { return false };
    if irq.value < DEVICE_RATE_FLOOR {
        return false;
    }
    let confirmed = work.as_ref().is_some_and(|w| w.value >= DEVICE_WORK_FLOOR);
    let outstanding = irq.median <= 0.0 || irq.value >= DEVICE_RATIO * irq.median;
    confirmed || outstanding
}

/// Names the cluster made of `members` (row indices of `table`).
pub fn name_cluster(table: &FeatureTable, members: &[usize]) -> Naming {
    name_cluster_with(table, &Medians::of(table), members)
}

/// What each row of `table` is named alone.
pub fn name_rows(table: &FeatureTable, medians: &Medians) -> Vec<WorkloadClass> {
    (0..table.rows.len())
        .map(|i| name_cluster_with(table, medians, &[i]).class)
        .collect()
}

/// Names a cluster of time windows: as [`name_cluster_with`], except that a cluster whose mean
/// reads as mixed while more than half its windows bear one other name (`row_names`: each
/// row's name alone) takes that name, with that class's evidence and a sentence saying so.
pub fn name_windows(
    table: &FeatureTable,
    medians: &Medians,
    members: &[usize],
    row_names: &[WorkloadClass],
) -> Naming {
    let naming = name_cluster_with(table, medians, members);
    if naming.class != WorkloadClass::Mixed || members.is_empty() {
        return naming;
    }
    let mut counts: Vec<(WorkloadClass, usize)> = Vec::new();
    for &i in members {
        match counts.iter_mut().find(|c| c.0 == row_names[i]) {
            Some(c) => c.1 += 1,
            None => counts.push((row_names[i], 1)),
        }
    }
    let Some(&(class, n)) = counts
        .iter()
        .filter(|c| c.0 != WorkloadClass::Mixed)
        .max_by_key(|c| c.1)
    else {
        return naming;
    };
    if 2 * n <= members.len() {
        return naming;
    }
    let mut evidence = shown(table, medians, members, class);
    let share = n as f64 / members.len() as f64;
    evidence.insert(
        0,
        Evidence {
            feature: "windows".into(),
            unit: "ratio".into(),
            value: share,
            median: 0.0,
            ratio: None,
            text: format!(
                "{:.0}% of its windows are {class} on their own (its mean reads as mixed)",
                share * 100.0
            ),
        },
    );
    Naming { class, evidence }
}

/// The evidence shown for a class.
fn shown(
    table: &FeatureTable,
    medians: &Medians,
    members: &[usize],
    class: WorkloadClass,
) -> Vec<Evidence> {
    let get = |f: &str| evidence_with(table, medians, members, f);
    let cpu = get("cpu_demand")
        .or_else(|| get("cpu_use"))
        .or_else(|| get("guest_share"));
    let list = match class {
        WorkloadClass::Mixed => vec![
            cpu,
            get("irq_timer_rate"),
            get("irq_disk_rate"),
            get("irq_network_rate"),
        ],
        WorkloadClass::DiskIntensive => vec![
            get("irq_disk_rate"),
            get("irq_task_rate"),
            get("disk_rq_rate"),
            cpu,
        ],
        WorkloadClass::NetworkIntensive => {
            vec![get("irq_network_rate"), get("net_pkt_rate"), cpu]
        }
        WorkloadClass::CpuIntensive => vec![get("irq_timer_rate"), cpu],
        WorkloadClass::Idle => vec![cpu, get("irq_timer_rate")],
    };
    list.into_iter().flatten().collect()
}

/// [`name_cluster`] with the table's medians computed beforehand.
pub fn name_cluster_with(table: &FeatureTable, medians: &Medians, members: &[usize]) -> Naming {
    let get = |f: &str| evidence_with(table, medians, members, f);
    let disk = get("irq_disk_rate");
    let net = get("irq_network_rate");
    let timer = get("irq_timer_rate");
    let task = get("irq_task_rate");
    let disk_work = get("disk_rq_rate");
    let net_work = get("net_pkt_rate");
    // CPU demand is a VM/vCPU feature; a guest process has its guest time share.
    let cpu = get("cpu_demand")
        .or_else(|| get("cpu_use"))
        .or_else(|| get("guest_share"));
    let disk_high = device_high(&disk, &disk_work);
    let net_high = device_high(&net, &net_work);
    let cpu_value = cpu.as_ref().map_or(0.0, |e| e.value);
    let (class, list): (WorkloadClass, Vec<&Option<Evidence>>) = match (disk_high, net_high) {
        (true, true) => (WorkloadClass::Mixed, vec![&disk, &net, &cpu]),
        (true, false) => (
            WorkloadClass::DiskIntensive,
            vec![&disk, &task, &disk_work, &cpu],
        ),
        (false, true) => (WorkloadClass::NetworkIntensive, vec![&net, &net_work, &cpu]),
        (false, false) if cpu_value >= CPU_HIGH => {
            (WorkloadClass::CpuIntensive, vec![&timer, &cpu])
        }
        (false, false) if cpu_value < CPU_IDLE => (WorkloadClass::Idle, vec![&cpu, &timer]),
        (false, false) => (WorkloadClass::Mixed, vec![&cpu, &timer, &disk, &net]),
    };
    let evidence = list.into_iter().flatten().cloned().collect();
    Naming { class, evidence }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{FeatureDef, Level, Row, RowKey};

    fn table(rows: &[[f64; 5]]) -> FeatureTable {
        let names = [
            ("irq_timer_rate", "1/s"),
            ("irq_disk_rate", "1/s"),
            ("irq_network_rate", "1/s"),
            ("irq_task_rate", "1/s"),
            ("cpu_use", "ratio"),
        ];
        let mut t = FeatureTable::new(
            Level::Vm,
            names
                .iter()
                .map(|(n, u)| FeatureDef {
                    name: n.to_string(),
                    unit: u.to_string(),
                    description: String::new(),
                })
                .collect(),
        );
        for (i, r) in rows.iter().enumerate() {
            t.rows.push(Row {
                key: RowKey {
                    vm: format!("vm{i}"),
                    ..Default::default()
                },
                values: r.to_vec(),
                truth: None,
            });
        }
        t
    }

    #[test]
    fn classes_from_dominant_features() {
        let t = table(&[
            [250.0, 0.0, 0.0, 5.0, 0.98],    // cpu
            [40.0, 900.0, 0.0, 300.0, 0.30], // disk
            [60.0, 0.0, 2000.0, 20.0, 0.60], // network
            [4.0, 0.0, 0.2, 1.0, 0.01],      // idle
            [30.0, 0.0, 0.0, 3.0, 0.3],      // mixed: some CPU, no device
            [30.0, 500.0, 500.0, 3.0, 0.3],  // mixed: both devices
        ]);
        let names: Vec<WorkloadClass> = (0..6).map(|i| name_cluster(&t, &[i]).class).collect();
        assert_eq!(
            names,
            vec![
                WorkloadClass::CpuIntensive,
                WorkloadClass::DiskIntensive,
                WorkloadClass::NetworkIntensive,
                WorkloadClass::Idle,
                WorkloadClass::Mixed,
                WorkloadClass::Mixed,
            ]
        );
    }

    #[test]
    fn evidence_compares_with_the_median() {
        let t = table(&[
            [250.0, 0.0, 0.0, 5.0, 0.98],
            [40.0, 0.0, 0.0, 5.0, 0.2],
            [60.0, 0.0, 0.0, 5.0, 0.2],
        ]);
        let n = name_cluster(&t, &[0]);
        assert_eq!(n.class, WorkloadClass::CpuIntensive);
        let timer = &n.evidence[0];
        assert_eq!(timer.feature, "irq_timer_rate");
        assert_eq!(timer.median, 60.0);
        assert!((timer.ratio.unwrap() - 250.0 / 60.0).abs() < 1e-12);
        assert!(
            timer.text.starts_with("timer interrupts 4.2× the median"),
            "{}",
            timer.text
        );
        let zero = evidence(&t, &[0], "irq_disk_rate").unwrap();
        assert_eq!(zero.ratio, None);
        assert!(zero.text.contains("median 0"), "{}", zero.text);
    }

    /// Windows: a cluster whose mean reads as mixed but most of whose windows are idle on
    /// their own is idle; one whose windows are half idle and half busy stays mixed.
    #[test]
    fn a_cluster_of_mostly_idle_windows_is_idle() {
        let t = table(&[
            [5.0, 0.0, 0.0, 1.0, 0.01],
            [5.0, 0.0, 0.0, 1.0, 0.02],
            [5.0, 0.0, 0.0, 1.0, 0.03],
            [200.0, 0.0, 0.0, 1.0, 0.9], // a busy edge window
            [200.0, 0.0, 0.0, 1.0, 0.9],
            [200.0, 0.0, 0.0, 1.0, 0.9],
        ]);
        let medians = Medians::of(&t);
        let rows = name_rows(&t, &medians);
        assert_eq!(rows[0], WorkloadClass::Idle);
        assert_eq!(rows[3], WorkloadClass::CpuIntensive);
        // Mean CPU (0.01 + 0.02 + 0.03 + 0.9) / 4 = 0.24: mixed by the mean, idle by most.
        let members = [0, 1, 2, 3];
        assert_eq!(name_cluster(&t, &members).class, WorkloadClass::Mixed);
        let n = name_windows(&t, &medians, &members, &rows);
        assert_eq!(n.class, WorkloadClass::Idle);
        assert!(
            n.evidence[0]
                .text
                .starts_with("75% of its windows are idle"),
            "{:?}",
            n.evidence
        );
        // Two idle, two busy: no majority, mixed.
        let n = name_windows(&t, &medians, &[0, 1, 3, 4], &rows);
        assert_eq!(n.class, WorkloadClass::Mixed);
    }

    #[test]
    fn workload_words() {
        assert_eq!(
            WorkloadClass::from_workload("net"),
            Some(WorkloadClass::NetworkIntensive)
        );
        assert_eq!(
            WorkloadClass::from_workload("disk-intensive"),
            Some(WorkloadClass::DiskIntensive)
        );
        assert_eq!(
            WorkloadClass::from_workload("CPU"),
            Some(WorkloadClass::CpuIntensive)
        );
        assert_eq!(WorkloadClass::from_workload("weird"), None);
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}

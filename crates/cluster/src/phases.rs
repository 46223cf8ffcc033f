//! From clustered windows to each VM's (vCPU's, process's) phases — runs of consecutive
//! windows in one cluster — and its verdict, the dominant non-idle phase.
//!
//! A window that straddles the end of one workload and the start of the next is neither: the
//! clustering may put it with either, or in a third cluster, and alone it would make a phase of
//! one window. Runs shorter than [`MIN_RUN`] windows are therefore given to a neighbouring run
//! — the one whose cluster centre is nearer to them — so that a phase boundary lands within a
//! window of where the workload changed. The cluster labels of the rows stay as k-means gave
//! them; only the phases are smoothed.

use serde::Serialize;
use virtflow_model::Model;

use crate::kmeans::squared_distance;
use crate::naming::WorkloadClass;
use crate::table::{FeatureTable, RowKey};
use crate::windows::{self, WindowSpec};
use crate::{cluster, ClusterOptions};

/// Runs of fewer windows than this are merged into a neighbour.
pub const MIN_RUN: usize = 2;

/// A run of time in one class, `[start, end)` in trace ns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseOut {
    pub start: i64,
    pub end: i64,
    pub name: WorkloadClass,
    /// How many windows it spans.
    pub windows: usize,
}

/// One VM's (vCPU's, process's) phases and verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    pub trace: String,
    pub host: String,
    pub vm: String,
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cr3: Option<u64>,
    /// The dominant non-idle phase (the class with the most time in non-idle phases); idle
    /// when it never works.
    pub verdict: WorkloadClass,
    pub phases: Vec<PhaseOut>,
}

impl Timeline {
    /// The row key of this VM, vCPU or process (no window).
    pub fn key(&self) -> RowKey {
        RowKey {
            trace: self.trace.clone(),
            host: self.host.clone(),
            vm: self.vm.clone(),
            pid: self.pid,
            vcpu: self.vcpu,
            tid: self.tid,
            cr3: self.cr3,
            start: None,
            end: None,
        }
    }
}

/// A run of consecutive windows of one cluster: positions `[first, last]` in its entity's
/// windows.
#[derive(Clone, Copy, Debug)]
struct Run {
    first: usize,
    last: usize,
    label: usize,
}

impl Run {
    fn len(&self) -> usize {
        self.last + 1 - self.first
    }
}

/// The phases of every VM (vCPU, process) of a windowed table, in order of first appearance:
/// `labels` the cluster of each row, `names` each cluster's name, `data` the rows as k-means
/// saw them and `centroids` its centres (to settle which neighbour a short run joins).
pub fn timelines(
    table: &FeatureTable,
    labels: &[usize],
    names: &[WorkloadClass],
    data: &[Vec<f64>],
    centroids: &[Vec<f64>],
) -> Vec<Timeline> {
    let mut entities: Vec<(RowKey, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<RowKey, usize> = Default::default();
    for (i, row) in table.rows.iter().enumerate() {
        if row.key.start.is_none() {
            continue;
        }
        let key = row.key.entity();
        let at = *index.entry(key.clone()).or_insert_with(|| {
            entities.push((key, Vec::new()));
            entities.len() - 1
        });
        entities[at].1.push(i);
    }
    entities
        .into_iter()
        .map(|(key, mut rows)| {
            rows.sort_by_key(|&i| table.rows[i].key.start);
            let span = |i: usize| {
                let k = &table.rows[i].key;
                (k.start.unwrap_or(0), k.end.unwrap_or(0))
            };
            let runs = smooth(&rows, labels, data, centroids, &span);
            let phases = phases_of(&runs, &rows, names, &span);
            Timeline {
                trace: key.trace,
                host: key.host,
                vm: key.vm,
                pid: key.pid,
                vcpu: key.vcpu,
                tid: key.tid,
                cr3: key.cr3,
                verdict: verdict(&phases),
                phases,
            }
        })
        .collect()
}

/// The runs of one entity's windows (`rows`, in time order), short runs merged into a
/// neighbour until none is left that has one.
fn smooth(
    rows: &[usize],
    labels: &[usize],
    data: &[Vec<f64>],
    centroids: &[Vec<f64>],
    span: &dyn Fn(usize) -> (i64, i64),
) -> Vec<Run> {
    // Contiguous: a window that starts where the previous one ended (a gap — a process that
    // did not run, a vCPU whose state was unknown — separates runs that never merge).
    let touches = |a: &Run, b: &Run| span(rows[a.last]).1 == span(rows[b.first]).0;
    let mut runs: Vec<Run> = Vec::new();
    for (p, &i) in rows.iter().enumerate() {
        match runs.last_mut() {
            Some(r) if r.label == labels[i] && span(rows[r.last]).1 == span(i).0 => r.last = p,
            _ => runs.push(Run {
                first: p,
                last: p,
                label: labels[i],
            }),
        }
    }
    loop {
        // The shortest run below the minimum that has a neighbour to join, leftmost first.
        let candidate = (0..runs.len())
            .filter(|&r| runs[r].len() < MIN_RUN)
            .filter(|&r| {
                (r > 0 && touches(&runs[r - 1], &runs[r]))
                    || (r + 1 < runs.len() && touches(&runs[r], &runs[r + 1]))
            })
            .min_by_key(|&r| (runs[r].len(), r));
        let Some(r) = candidate else { break };
        let left = (r > 0 && touches(&runs[r - 1], &runs[r])).then(|| r - 1);
        let right = (r + 1 < runs.len() && touches(&runs[r], &runs[r + 1])).then_some(r + 1);
        let target = match (left, right) {
            (Some(l), Some(rt)) if runs[l].label == runs[rt].label => l,
            (Some(l), Some(rt)) => {
                let mean = mean_of(&rows[runs[r].first..=runs[r].last], data);
                let d = |run: &Run| {
                    centroids
                        .get(run.label)
                        .map_or(f64::INFINITY, |c| squared_distance(&mean, c))
                };
                if d(&runs[rt]) < d(&runs[l]) {
                    rt
                } else {
                    l
                }
            }
            (Some(l), None) => l,
            (None, Some(rt)) => rt,
            (None, None) => unreachable!("a candidate has a neighbour"),
        };
        runs[r].label = runs[target].label;
        // Coalesce touching runs of one label.
        let mut merged: Vec<Run> = Vec::with_capacity(runs.len());
        for run in runs {
            match merged.last_mut() {
                Some(m) if m.label == run.label && touches(m, &run) => m.last = run.last,
                _ => merged.push(run),
            }
        }
        runs = merged;
    }
    runs
}

fn mean_of(rows: &[usize], data: &[Vec<f64>]) -> Vec<f64> {
    let dim = data.first().map_or(0, Vec::len);
    let mut m = vec![0.0; dim];
    for &i in rows {
        for (a, x) in m.iter_mut().zip(&data[i]) {
            *a += x;
        }
    }
    for a in &mut m {
        *a /= rows.len().max(1) as f64;
    }
    m
}

/// Runs as phases, named after their cluster; touching phases of one name are one phase.
fn phases_of(
    runs: &[Run],
    rows: &[usize],
    names: &[WorkloadClass],
    span: &dyn Fn(usize) -> (i64, i64),
) -> Vec<PhaseOut> {
    let mut out: Vec<PhaseOut> = Vec::new();
    for run in runs {
        let name = names
            .get(run.label)
            .copied()
            .unwrap_or(WorkloadClass::Mixed);
        let (start, end) = (span(rows[run.first]).0, span(rows[run.last]).1);
        match out.last_mut() {
            Some(p) if p.name == name && p.end == start => {
                p.end = end;
                p.windows += run.len();
            }
            _ => out.push(PhaseOut {
                start,
                end,
                name,
                windows: run.len(),
            }),
        }
    }
    out
}

/// The dominant non-idle phase: the class with the most time in non-idle phases (ties: the
/// first to occur); idle when every phase is.
pub fn verdict(phases: &[PhaseOut]) -> WorkloadClass {
    let mut totals: Vec<(WorkloadClass, i64)> = Vec::new();
    for p in phases.iter().filter(|p| p.name != WorkloadClass::Idle) {
        match totals.iter_mut().find(|t| t.0 == p.name) {
            Some(t) => t.1 += p.end - p.start,
            None => totals.push((p.name, p.end - p.start)),
        }
    }
    totals
        .iter()
        .fold(None::<(WorkloadClass, i64)>, |best, &t| match best {
            Some(b) if b.1 >= t.1 => Some(b),
            _ => Some(t),
        })
        .map_or(WorkloadClass::Idle, |b| b.0)
}

/// Clusters the VMs of `model` by windows as `virtflow cluster` does by default, and writes
/// each VM's phases into its `phases` and its verdict into its `workload`, for the views that
/// show them. A model without series (saved without `--intervals`) is named as a whole
/// ([`crate::name_workloads`]). Reads the model only.
pub fn name_phases(model: &mut Model) {
    let label = model.traces.join(", ");
    let (table, _) = windows::build(model, &label, crate::Level::Vm, WindowSpec::Auto);
    if !table.windowed() {
        crate::name_workloads(model);
        return;
    }
    if table.rows.is_empty() {
        return;
    }
    let report = cluster(&table, &ClusterOptions::default());
    for t in &report.vms {
        for vm in model
            .vms
            .iter_mut()
            .filter(|vm| vm.pid == t.pid && vm.host == t.host)
        {
            vm.workload = Some(t.verdict.name().to_string());
            vm.phases = t
                .phases
                .iter()
                .map(|p| virtflow_model::Phase {
                    start: p.start,
                    end: p.end,
                    name: p.name.name().to_string(),
                })
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkloadClass::*;

    fn phase(start: i64, end: i64, name: WorkloadClass) -> PhaseOut {
        PhaseOut {
            start,
            end,
            name,
            windows: 1,
        }
    }

    /// Windows of 10 ns at 0, 10, 20…; `labels` their clusters; the data is the label itself
    /// on one axis, so a window's nearest centre is its own cluster's.
    fn run_labels(labels: &[usize], names: &[WorkloadClass]) -> Vec<PhaseOut> {
        let rows: Vec<usize> = (0..labels.len()).collect();
        let data: Vec<Vec<f64>> = labels.iter().map(|&l| vec![l as f64]).collect();
        let centroids: Vec<Vec<f64>> = (0..names.len()).map(|c| vec![c as f64]).collect();
        let span = |i: usize| (10 * i as i64, 10 * i as i64 + 10);
        let runs = smooth(&rows, labels, &data, &centroids, &span);
        phases_of(&runs, &rows, names, &span)
    }

    #[test]
    fn a_lone_window_joins_its_neighbours() {
        // idle idle cpu idle idle: the cpu window is a blip.
        let p = run_labels(&[0, 0, 1, 0, 0], &[Idle, CpuIntensive]);
        assert_eq!(
            p,
            vec![PhaseOut {
                windows: 5,
                ..phase(0, 50, Idle)
            }]
        );
        // idle idle | mixed | cpu cpu: the boundary window joins the nearer centre (cpu: the
        // data says 2 is nearer to 3 than to 0).
        let p = run_labels(&[0, 0, 2, 3, 3], &[Idle, Idle, Mixed, CpuIntensive]);
        let names: Vec<(i64, i64, WorkloadClass)> =
            p.iter().map(|p| (p.start, p.end, p.name)).collect();
        assert_eq!(names, vec![(0, 20, Idle), (20, 50, CpuIntensive)]);
    }

    #[test]
    fn runs_of_the_minimum_stay() {
        let p = run_labels(&[0, 0, 1, 1, 0, 0], &[Idle, DiskIntensive]);
        let names: Vec<(i64, i64, WorkloadClass)> =
            p.iter().map(|p| (p.start, p.end, p.name)).collect();
        assert_eq!(
            names,
            vec![(0, 20, Idle), (20, 40, DiskIntensive), (40, 60, Idle)]
        );
    }

    #[test]
    fn the_verdict_is_the_dominant_non_idle_class() {
        let p = [
            phase(0, 20, Idle),
            phase(20, 100, CpuIntensive),
            phase(100, 170, DiskIntensive),
            phase(170, 400, Idle),
        ];
        assert_eq!(verdict(&p), CpuIntensive);
        // Two disk phases outweigh one longer cpu phase.
        let p = [
            phase(0, 50, DiskIntensive),
            phase(50, 110, CpuIntensive),
            phase(110, 170, DiskIntensive),
        ];
        assert_eq!(verdict(&p), DiskIntensive);
        assert_eq!(verdict(&[phase(0, 10, Idle)]), Idle);
        assert_eq!(verdict(&[]), Idle);
    }
}

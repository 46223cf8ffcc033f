//! From a model to its rows (over the whole trace, or over time windows), and the known
//! workloads found beside a trace (simulator `truth.json`, lab `manifest.json`).

use std::collections::HashMap;
use std::path::Path;

use virtflow_model::Model;

use crate::features;
use crate::table::{FeatureTable, Level};
use crate::windows::{self, WindowSpec};

/// The rows of one model and what the reader should know about them.
pub struct Rows {
    pub table: FeatureTable,
    pub notes: Vec<String>,
    /// First and last timestamps of the model's hosts.
    pub begin: i64,
    pub end: i64,
}

/// The rows of `model` at `level` over the whole trace, named `label` in every row key, with
/// the model's notes.
pub fn rows(label: &str, model: &Model, level: Level) -> Rows {
    rows_in(label, model, level, WindowSpec::Whole)
}

/// The rows of `model` at `level` over windows of `spec` (see [`windows::build`]).
pub fn rows_in(label: &str, model: &Model, level: Level, spec: WindowSpec) -> Rows {
    let (table, mut notes) = match spec {
        WindowSpec::Whole => features::build(model, label, level),
        _ => windows::build(model, label, level, spec),
    };
    for n in &model.notes {
        notes.push(format!("{label}: {n}"));
    }
    let (begin, end) = windows::span(model);
    Rows {
        table,
        notes,
        begin,
        end,
    }
}

/// Known workloads, by VMM pid and by vCPU thread (the analysis may not tie every vCPU
/// thread to its process, e.g. a VM that never does I/O).
#[derive(Clone, Debug, Default)]
pub struct KnownWorkloads {
    pub by_pid: HashMap<u32, String>,
    pub by_tid: HashMap<u32, String>,
}

/// Reads a `truth.json` (the simulator's: `vms[].pid`, `vms[].vcpus[].tid`,
/// `vms[].workload`) or `manifest.json` (the lab's: `vms[].qemu_pid`, `vms[].vcpu_tids`,
/// `vms[].workload`) in the trace's folder or, for a trace folder, in the folder itself or
/// its parent.
pub fn known_workloads(trace: &Path) -> KnownWorkloads {
    let mut dirs = Vec::new();
    if trace.is_dir() {
        dirs.push(trace.to_path_buf());
    }
    if let Some(p) = trace.parent() {
        dirs.push(p.to_path_buf());
        if trace.is_dir() {
            if let Some(pp) = p.parent() {
                dirs.push(pp.to_path_buf());
            }
        }
    }
    let mut out = KnownWorkloads::default();
    for dir in dirs {
        for (file, pid_key) in [("truth.json", "pid"), ("manifest.json", "qemu_pid")] {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            for vm in v["vms"].as_array().into_iter().flatten() {
                let Some(w) = vm["workload"].as_str() else {
                    continue;
                };
                if let Some(pid) = vm[pid_key].as_u64() {
                    out.by_pid
                        .entry(pid as u32)
                        .or_insert_with(|| w.to_string());
                }
                let tids = vm["vcpus"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["tid"].as_u64())
                    .chain(
                        vm["vcpu_tids"]
                            .as_object()
                            .into_iter()
                            .flat_map(|m| m.values())
                            .filter_map(|t| t.as_u64()),
                    );
                for tid in tids {
                    out.by_tid
                        .entry(tid as u32)
                        .or_insert_with(|| w.to_string());
                }
            }
        }
        if !out.by_pid.is_empty() {
            break;
        }
    }
    out
}

/// Sets each row's `truth` from `known` where the row has none: by the row's pid, else by
/// its vCPU thread, else by the vCPU threads the Model lists for its VM.
///
/// With `host`, only that host's rows: the workloads beside one host's traces say nothing of
/// another host's pids.
pub fn attach_truth(
    table: &mut FeatureTable,
    known: &KnownWorkloads,
    model: &Model,
    host: Option<&str>,
) {
    for row in &mut table.rows {
        if row.truth.is_some() || host.is_some_and(|h| h != row.key.host) {
            continue;
        }
        let k = &row.key;
        let vm_tids = model
            .vms
            .iter()
            .filter(|v| v.pid == k.pid && v.host == k.host)
            .flat_map(|v| v.vcpus.iter().map(|c| c.tid));
        row.truth = known
            .by_pid
            .get(&k.pid)
            .or_else(|| k.tid.and_then(|t| known.by_tid.get(&t)))
            .or_else(|| {
                let mut found = None;
                for t in vm_tids {
                    if let Some(w) = known.by_tid.get(&t) {
                        found = Some(w);
                        break;
                    }
                }
                found
            })
            .cloned();
    }
}

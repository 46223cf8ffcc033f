//! From one trace to its rows: the analysis (the Model), the observer pass, the join, and the
//! known workloads found beside the trace (simulator `truth.json`, lab `manifest.json`).
//!
//! A trace is read twice — once by [`virtflow_analysis::analyze`] ([`analyze_trace`]), once by
//! [`crate::observe::observe`] ([`trace_rows`]) — because the observer needs the Model's VM
//! index to pair an I/O exit with the request the VM's I/O thread submits; a caller that has
//! the Model already reads it once more only. Both passes see the same
//! [`TimeWindow`] when one is given (LAMI's `--begin`/`--end`).

use std::collections::HashMap;
use std::path::Path;

use virtflow_model::Model;
use virtflow_trace::{
    ClassId, EventClass, EventSource, FieldId, ReadStats, Step, TraceError, Value,
};

use crate::features;
use crate::observe;
use crate::table::{FeatureTable, Level};

/// Passes on only the events whose timestamp lies in `[begin, end]`; ends at `end`.
pub struct TimeWindow<S> {
    inner: S,
    begin: i64,
    end: i64,
    done: bool,
}

impl<S: EventSource> TimeWindow<S> {
    pub fn new(inner: S, begin: i64, end: i64) -> Self {
        TimeWindow {
            inner,
            begin,
            end,
            done: false,
        }
    }
}

impl<S: EventSource> EventSource for TimeWindow<S> {
    fn classes(&self) -> &[EventClass] {
        self.inner.classes()
    }
    fn advance(&mut self) -> Result<Step, TraceError> {
        if self.done {
            return Ok(Step::End);
        }
        loop {
            let step = self.inner.advance()?;
            let ts = match &step {
                Step::Event(h) => h.ts,
                Step::Lost(l) => l.begin,
                Step::End => return Ok(Step::End),
            };
            if ts > self.end {
                self.done = true;
                return Ok(Step::End);
            }
            if ts >= self.begin {
                return Ok(step);
            }
        }
    }
    fn u64(&self, field: FieldId) -> Option<u64> {
        self.inner.u64(field)
    }
    fn i64(&self, field: FieldId) -> Option<i64> {
        self.inner.i64(field)
    }
    fn str(&self, field: FieldId) -> Option<&str> {
        self.inner.str(field)
    }
    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        self.inner.value(field)
    }
    fn stats(&self) -> ReadStats {
        self.inner.stats()
    }
    fn field(&self, class: ClassId, name: &str) -> Option<FieldId> {
        self.inner.field(class, name)
    }
    fn progress(&self) -> Option<(u64, u64)> {
        self.inner.progress()
    }
    fn hostname(&self) -> Option<String> {
        self.inner.hostname()
    }
}

/// The rows of one trace and what the reader should know about them.
pub struct TraceFeatures {
    pub table: FeatureTable,
    pub model: Model,
    pub notes: Vec<String>,
    /// First and last timestamps read.
    pub begin: i64,
    pub end: i64,
}

type Opener<'a> = dyn FnMut() -> Result<Box<dyn EventSource>, TraceError> + 'a;

/// Analyses one trace (opened twice through `open`) and builds its rows at `level`.
pub fn trace_features(
    name: &str,
    open: &mut Opener<'_>,
    level: Level,
    window: Option<(i64, i64)>,
) -> Result<TraceFeatures, TraceError> {
    let model = analyze_trace(name, open, window, &[])?;
    let rows = trace_rows(name, &model, open, level, window)?;
    Ok(TraceFeatures {
        table: rows.table,
        model,
        notes: rows.notes,
        begin: rows.begin,
        end: rows.end,
    })
}

/// The first pass: the trace's [`Model`], its VMs named by the markers in the trace and by
/// `vmm_cmdlines` (the recorder's sidecar file).
pub fn analyze_trace(
    name: &str,
    open: &mut Opener<'_>,
    window: Option<(i64, i64)>,
    vmm_cmdlines: &[virtflow_analysis::VmmCommandLine],
) -> Result<Model, TraceError> {
    let mut source = windowed(open()?, window);
    let options = virtflow_analysis::Options {
        traces: vec![name.to_string()],
        vmm_cmdlines: vmm_cmdlines.to_vec(),
        ..Default::default()
    };
    virtflow_analysis::analyze(&mut *source, &options)
}

/// The rows of one trace and what the reader should know about them, without its model.
pub struct TraceRows {
    pub table: FeatureTable,
    pub notes: Vec<String>,
    /// First and last timestamps read.
    pub begin: i64,
    pub end: i64,
}

/// The second pass: the observer over the trace, joined with `model` — the trace's model from
/// [`analyze_trace`], or one its caller built already from the same trace and window (the
/// timeline view's, which keeps its state intervals) — into rows at `level`.
pub fn trace_rows(
    name: &str,
    model: &Model,
    open: &mut Opener<'_>,
    level: Level,
    window: Option<(i64, i64)>,
) -> Result<TraceRows, TraceError> {
    let mut source = windowed(open()?, window);
    let obs = observe::observe(&mut *source, &features::vm_threads(model))?;
    let (table, mut notes) = features::build(model, &obs, name, level);
    for n in &model.notes {
        notes.push(format!("{name}: {n}"));
    }
    Ok(TraceRows {
        table,
        notes,
        begin: obs.first_ts,
        end: obs.last_ts,
    })
}

fn windowed(s: Box<dyn EventSource>, window: Option<(i64, i64)>) -> Box<dyn EventSource> {
    match window {
        Some((b, e)) => Box::new(TimeWindow::new(s, b, e)),
        None => s,
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
pub fn attach_truth(table: &mut FeatureTable, known: &KnownWorkloads, model: &Model) {
    for row in &mut table.rows {
        if row.truth.is_some() {
            continue;
        }
        let k = &row.key;
        let vm_tids = model
            .vms
            .iter()
            .filter(|v| v.pid == k.pid)
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

#[cfg(test)]
mod tests {
    use super::*;
    use virtflow_trace::{VecEvent, VecSource};

    #[test]
    fn window_keeps_only_the_range() {
        let events = (0..10)
            .map(|i| VecEvent {
                ts: i * 10,
                cpu: 0,
                name: "e".into(),
                fields: vec![],
            })
            .collect();
        let mut w = TimeWindow::new(VecSource::new(events), 25, 60);
        let mut seen = Vec::new();
        while let Step::Event(h) = w.advance().unwrap() {
            seen.push(h.ts);
        }
        assert_eq!(seen, vec![30, 40, 50, 60]);
        assert_eq!(w.advance().unwrap(), Step::End);
    }
}

//! What the analyses cost: the `analyze` pipeline as `virtflow analyze` runs it, the same
//! pass with every analysis on (per-bucket series, the execution graph), the graph's size, and
//! a critical-path query over the whole trace.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use virtflow_analysis::Options;
use virtflow_graph::{CriticalPath, WorkerId};
use virtflow_model::Model;

use crate::input;

/// The pass `virtflow analyze` runs (no state timelines, series or graph).
pub fn analyze(path: &Path) -> anyhow::Result<Model> {
    run(path, &Options::default())
}

/// The pass `virtflow analyze` runs with the execution graph built too (what
/// `critical-path` runs).
pub fn analyze_graph(path: &Path) -> anyhow::Result<Model> {
    run(
        path,
        &Options {
            graph: true,
            ..Options::default()
        },
    )
}

/// The pass with every analysis the one pass can make: series (overcommitment and memory
/// over time, the phases' windows) and the execution graph.
pub fn analyze_all(path: &Path) -> anyhow::Result<Model> {
    run(
        path,
        &Options {
            series: true,
            graph: true,
            ..Options::default()
        },
    )
}

fn run(path: &Path, options: &Options) -> anyhow::Result<Model> {
    let mut source = input::open_one(path)?;
    Ok(virtflow_analysis::analyze(&mut *source, options)?)
}

/// The execution graph's size and the cost of a query on it.
#[derive(Serialize, Debug, Default, Clone)]
pub struct GraphFigures {
    pub workers: usize,
    pub segments: usize,
    pub links: usize,
    /// Heap bytes of the graph (segments, links, per-worker vectors).
    pub bytes: usize,
    pub bytes_per_segment: f64,
    /// The critical path of the worker with the most segments over its whole life.
    pub critical_path_worker: String,
    pub critical_path_pieces: usize,
    pub critical_path_ms: f64,
}

/// Measures the graph `model` holds (none: zeros).
pub fn graph_figures(model: &Model) -> anyhow::Result<GraphFigures> {
    let Some(eg) = &model.graph else {
        return Ok(GraphFigures::default());
    };
    let g = &eg.graph;
    let mut figures = GraphFigures {
        workers: g.worker_count(),
        segments: g.segment_count(),
        links: g.link_count(),
        bytes: g.heap_bytes(),
        ..GraphFigures::default()
    };
    figures.bytes_per_segment = figures.bytes as f64 / figures.segments.max(1) as f64;
    let busiest = g.workers().max_by_key(|&w| g.segments(w).len());
    if let Some(w) = busiest {
        let start = Instant::now();
        let path = CriticalPath::of(g, w)?;
        figures.critical_path_ms = start.elapsed().as_secs_f64() * 1e3;
        figures.critical_path_pieces = path.segments.len();
        figures.critical_path_worker = name(eg, w);
    }
    Ok(figures)
}

fn name(eg: &virtflow_model::ExecutionGraph, w: WorkerId) -> String {
    let who = &eg.workers[w.index()];
    format!("{}/{} {}", who.host, who.tid, who.comm)
}

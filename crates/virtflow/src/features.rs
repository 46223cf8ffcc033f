//! The feature table the `cluster` and `export` commands read: the rows of a model — analysed
//! from the traces in one pass with series kept, or read with `--model` — over time windows,
//! as `virtflow_cluster` builds them. The clustering never reads a trace.

use std::path::Path;

use virtflow_analysis::Options;
use virtflow_cluster::{pipeline, FeatureTable, Level, WindowSpec};

use crate::input::ModelArgs;

/// The feature table of the traces' experiment (each host's VMs apart), analysed in one pass
/// with series kept, or of the model given with `--model`.
pub struct Features {
    pub table: FeatureTable,
    pub notes: Vec<String>,
    pub begin: i64,
    pub end: i64,
    /// The experiment has a single host (a truth file's VMs are then found by pid alone).
    pub one_host: bool,
}

/// Reads `--window`.
pub fn window_spec(window: &str) -> anyhow::Result<WindowSpec> {
    WindowSpec::parse(window).map_err(|e| anyhow::anyhow!(e))
}

/// One table of the rows of the traces' experiment or of the model given with `--model`, over
/// windows of `window`. Whole-trace rows have the workloads known beside each host's traces
/// attached (a window's is known only from phases: `--truth`).
pub fn feature_table(
    input: &ModelArgs,
    level: Level,
    window: WindowSpec,
) -> anyhow::Result<Features> {
    let model = match &input.model {
        Some(path) => crate::input::read_model(path)?,
        // The windows read the series; the clustering never reads a trace.
        None => crate::input::analyze(
            &input.trace,
            Options {
                series: window != WindowSpec::Whole,
                ..Options::default()
            },
        )?,
    };
    let label = model.traces.join(", ");
    let mut rows = pipeline::rows_in(&label, &model, level, window);
    if !rows.table.windowed() {
        for host in &model.hosts {
            for t in &host.traces {
                let known = pipeline::known_workloads(Path::new(t));
                pipeline::attach_truth(&mut rows.table, &known, &model, Some(&host.name));
            }
        }
    }
    Ok(Features {
        table: rows.table,
        notes: rows.notes,
        begin: rows.begin,
        end: rows.end,
        one_host: model.hosts.len() <= 1,
    })
}

//! What several hosts cost (`virtflow bench --experiment`): every host analysed alone, against
//! the experiment — the synchronisation's pass over the messages, then the one pass over all
//! hosts on the reference clock with the messages matched — so that the cost of matching and
//! synchronising is the difference.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use virtflow_analysis::Options;

use super::{best_of, rate};
use crate::experiment;
use crate::input::{self, TraceArgs};
use crate::timeline;

#[derive(Serialize, Debug, Default)]
pub struct ExperimentMeasure {
    pub hosts: Vec<String>,
    pub events: u64,
    /// Every host analysed on its own, one after the other (seconds, summed).
    pub alone_s: f64,
    /// The synchronisation: reading the messages and fitting the clocks (not cached).
    pub sync_s: f64,
    /// The experiment's pass on the synchronised clocks, messages matched.
    pub experiment_s: f64,
    /// `(sync + experiment) / alone - 1`.
    pub overhead: f64,
    pub alone_ev_per_s: f64,
    pub experiment_ev_per_s: f64,
    pub messages: u64,
}

pub fn measure(traces: &[PathBuf], runs: u32) -> anyhow::Result<ExperimentMeasure> {
    let plan = experiment::plan(traces, &[])?;
    anyhow::ensure!(
        plan.recordings.len() > 1,
        "--experiment: these traces are one host ({}); give the traces of several hosts",
        plan.recordings.first().map_or("none", |r| r.host.as_str())
    );
    let mut m = ExperimentMeasure {
        hosts: plan.recordings.iter().map(|r| r.host.clone()).collect(),
        ..ExperimentMeasure::default()
    };
    let mut alone = Duration::ZERO;
    for r in &plan.recordings {
        eprintln!("virtflow bench: host {} alone…", r.host);
        let args = TraceArgs {
            traces: r.paths.clone(),
            ..TraceArgs::default()
        };
        let (model, t) = best_of(runs, || input::analyze(&args, Options::default()))?;
        m.events += model.read.events;
        alone += t;
    }
    eprintln!("virtflow bench: synchronising {} hosts…", m.hosts.len());
    let reference = m.hosts[0].clone();
    let (file, t) = best_of(runs, || timeline::compute(&plan, &reference))?;
    m.sync_s = t.as_secs_f64();
    let clocks =
        std::env::temp_dir().join(format!("virtflow-bench-sync-{}.json", std::process::id()));
    std::fs::write(&clocks, serde_json::to_vec(&file.0)?)?;
    eprintln!("virtflow bench: the experiment…");
    let args = TraceArgs {
        traces: traces.to_vec(),
        sync: Some(clocks.clone()),
        ..TraceArgs::default()
    };
    let result = best_of(runs, || input::analyze(&args, Options::default()));
    let _ = std::fs::remove_file(&clocks);
    let (model, t) = result?;
    m.experiment_s = t.as_secs_f64();
    m.alone_s = alone.as_secs_f64();
    m.messages = model.timeline.as_ref().map_or(0, |t| t.messages);
    m.overhead = (m.sync_s + m.experiment_s) / m.alone_s.max(1e-9) - 1.0;
    m.alone_ev_per_s = rate(m.events, alone);
    m.experiment_ev_per_s = rate(m.events, t);
    Ok(m)
}

/// The measure as a few lines of text.
pub fn print(m: &ExperimentMeasure) {
    println!(
        "experiment of {} hosts ({}), {} events, {} messages matched",
        m.hosts.len(),
        m.hosts.join(", "),
        m.events,
        m.messages
    );
    println!(
        "  hosts alone      {:>8.3} s  {:>7.2}M events/s",
        m.alone_s,
        m.alone_ev_per_s / 1e6
    );
    println!("  synchronisation  {:>8.3} s", m.sync_s);
    println!(
        "  experiment       {:>8.3} s  {:>7.2}M events/s",
        m.experiment_s,
        m.experiment_ev_per_s / 1e6
    );
    println!(
        "  matching and synchronisation add {:.1}% to analysing the hosts alone",
        m.overhead * 100.0
    );
}

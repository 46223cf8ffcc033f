//! What several hosts cost (`virtflow bench --experiment`): the experiment's pass as it runs
//! when the clocks are not known — messages paired and the clocks fitted in the pass — and on
//! clocks already known (cached), against the same pass with the messages left alone, which
//! is what reading the hosts together costs without matching or synchronising. Every host
//! analysed alone is shown too.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use virtflow_analysis::Options;

use super::best_of;
use crate::experiment;
use crate::input::{self, TraceArgs};
use crate::timeline;

#[derive(Serialize, Debug, Default)]
pub struct ExperimentMeasure {
    pub hosts: Vec<String>,
    pub events: u64,
    /// Every host analysed on its own, one after the other (seconds, summed).
    pub alone_s: f64,
    /// The experiment's pass on known clocks, messages not paired.
    pub without_messages_s: f64,
    /// The experiment's pass when its clocks are not known: pairing and fitting in the pass.
    pub fitting_s: f64,
    /// The experiment's pass on known clocks, messages paired.
    pub known_clocks_s: f64,
    /// The separate pass over the messages alone (`virtflow sync`).
    pub sync_alone_s: f64,
    /// `fitting / without_messages - 1`: what matching and synchronising add.
    pub overhead: f64,
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
    m.alone_s = alone.as_secs_f64();

    // The clocks, written where the passes below find them (and nowhere else: the cache
    // would make the fitting pass a cached one).
    let scratch = std::env::temp_dir().join(format!("virtflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let result = passes(traces, &plan, runs, &scratch, &mut m);
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    m.overhead = m.fitting_s / m.without_messages_s.max(1e-9) - 1.0;
    Ok(m)
}

fn passes(
    traces: &[PathBuf],
    plan: &experiment::Plan,
    runs: u32,
    scratch: &std::path::Path,
    m: &mut ExperimentMeasure,
) -> anyhow::Result<()> {
    let reference = m.hosts[0].clone();
    eprintln!("virtflow bench: the messages alone…");
    let ((file, _), t) = best_of(runs, || timeline::compute(plan, &reference))?;
    m.sync_alone_s = t.as_secs_f64();
    let clocks = scratch.join("clocks.json");
    std::fs::write(&clocks, serde_json::to_vec(&file)?)?;
    let known = TraceArgs {
        traces: traces.to_vec(),
        sync: Some(clocks),
        ..TraceArgs::default()
    };
    eprintln!("virtflow bench: the experiment without its messages…");
    let quiet = Options {
        without_messages: true,
        ..Options::default()
    };
    let (_, t) = best_of(runs, || input::analyze(&known, quiet.clone()))?;
    m.without_messages_s = t.as_secs_f64();
    eprintln!("virtflow bench: the experiment on known clocks…");
    let (model, t) = best_of(runs, || input::analyze(&known, Options::default()))?;
    m.known_clocks_s = t.as_secs_f64();
    m.messages = model.timeline.as_ref().map_or(0, |t| t.messages);
    eprintln!("virtflow bench: the experiment fitting its clocks…");
    // An empty cache folder of its own: every run fits (the fit is cached there, then
    // removed before the next run).
    let cache = scratch.join("cache");
    let fitting = TraceArgs {
        traces: traces.to_vec(),
        ..TraceArgs::default()
    };
    let previous = std::env::var_os("VIRTFLOW_CACHE_DIR");
    std::env::set_var("VIRTFLOW_CACHE_DIR", &cache);
    let result = best_of(runs, || {
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(&cache)?;
        input::analyze(&fitting, Options::default())
    });
    match previous {
        Some(p) => std::env::set_var("VIRTFLOW_CACHE_DIR", p),
        None => std::env::remove_var("VIRTFLOW_CACHE_DIR"),
    }
    let (model, t) = result?;
    anyhow::ensure!(
        model
            .timeline
            .as_ref()
            .is_some_and(|t| t.source == "computed"),
        "the fitting pass read a cached synchronisation"
    );
    m.fitting_s = t.as_secs_f64();
    Ok(())
}

/// The measure as a few lines of text.
pub fn print(m: &ExperimentMeasure) {
    let line = |what: &str, s: f64| {
        println!(
            "  {what:<42} {s:>8.3} s  {:>7.2}M events/s",
            m.events as f64 / s.max(1e-9) / 1e6
        )
    };
    println!(
        "experiment of {} hosts ({}), {} events, {} messages paired",
        m.hosts.len(),
        m.hosts.join(", "),
        m.events,
        m.messages
    );
    line("each host alone (summed)", m.alone_s);
    line("together, messages not paired", m.without_messages_s);
    line("together, clocks fitted in the pass", m.fitting_s);
    line("together, on known clocks (cached)", m.known_clocks_s);
    line("the messages alone (virtflow sync)", m.sync_alone_s);
    println!(
        "  pairing messages and fitting the clocks add {:.1}% to reading the hosts together",
        m.overhead * 100.0
    );
}

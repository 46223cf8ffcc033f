//! `virtflow bench TRACE…`: events per second of virtflow's paths against the reference reader
//! of each format, on the same files, in one run, and what the analyses cost.
//!
//! Paths measured, each on a freshly opened source, best of `--runs` (`readers`, `analyses`):
//! - `decode`: every field of every event decoded and handed over — integers as numbers,
//!   strings as their bytes, enumerations with their labels, compounds member by member — one
//!   pass per event (`visit_fields`: what `dump` costs without formatting);
//! - `dump`: the full `dump` text written to a sink (`virtflow dump >/dev/null`);
//! - `fields`: the analysis access pattern — a handful of integer fields of the scheduler and
//!   KVM event classes, resolved once; the reader is told which classes are read
//!   (`set_interest`) and passes over the others, which still count in the event total;
//! - `analyze`: the whole `virtflow analyze` pipeline (layout, state machines, model);
//! - `all`: the same pass with every analysis on — series per bucket (overcommitment, memory
//!   and activity over time) and the execution graph — with the graph's size per segment and
//!   the time of a critical-path query over the whole trace.
//!
//! The reference is `babeltrace2` with a dummy sink for CTF, `trace-cmd report` for `.dat` and
//! `perf script` for `perf.data`, with output sent to `/dev/null`. Its rate is computed with
//! the event count virtflow read, so both rates are comparable.
//!
//! `--experiment` measures the traces as the hosts of one experiment instead (`experiment`).

mod analyses;
mod experiment;
mod readers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::input;
use analyses::GraphFigures;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files or folders to measure.
    #[arg(required = true)]
    pub traces: Vec<PathBuf>,
    /// Repetitions of each measurement; the best is kept.
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Skip the reference tools.
    #[arg(long)]
    pub no_reference: bool,
    /// The traces are the hosts of one experiment: measure each host alone against the
    /// synchronised experiment (what matching messages and synchronising clocks cost).
    #[arg(long)]
    pub experiment: bool,
    /// One JSON object per trace instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Debug, Default)]
struct Measure {
    trace: String,
    format: String,
    events: u64,
    decode_ev_per_s: f64,
    dump_ev_per_s: f64,
    fields_ev_per_s: f64,
    analyze_ev_per_s: f64,
    /// analyze building the execution graph (as `critical-path` runs it).
    graph_ev_per_s: f64,
    /// Every analysis on: series and the execution graph.
    all_ev_per_s: f64,
    graph: GraphFigures,
    reference: Option<String>,
    reference_ev_per_s: Option<f64>,
    /// Peak resident memory of this process after the trace, in MiB (`VmHWM`).
    peak_rss_mib: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runs = args.runs.max(1);
    if args.experiment {
        let m = experiment::measure(&args.traces, runs)?;
        if args.json {
            println!("{}", serde_json::to_string(&m)?);
        } else {
            experiment::print(&m);
        }
        return Ok(());
    }
    let mut results = Vec::new();
    for path in &args.traces {
        let format = input::detect(path)?;
        let mut m = Measure {
            trace: path.display().to_string(),
            format: format!("{format:?}"),
            ..Default::default()
        };
        let step = |what: &str| eprintln!("virtflow bench: {}: {what}…", path.display());
        step("decode");
        let (events, t) = best_of(runs, || readers::decode_all(path))?;
        m.events = events;
        m.decode_ev_per_s = rate(events, t);
        step("dump");
        let (_, t) = best_of(runs, || readers::dump_to_sink(path))?;
        m.dump_ev_per_s = rate(events, t);
        step("fields");
        let (counted, t) = best_of(runs, || readers::read_fields(path))?;
        anyhow::ensure!(
            counted == events,
            "{}: the field-reading pass counted {counted} events, the full pass {events}",
            path.display()
        );
        m.fields_ev_per_s = rate(events, t);
        step("analyze");
        let (_, t) = best_of(runs, || analyses::analyze(path))?;
        m.analyze_ev_per_s = rate(events, t);
        step("analyze and the graph");
        let (_, t) = best_of(runs, || analyses::analyze_graph(path))?;
        m.graph_ev_per_s = rate(events, t);
        step("every analysis and the graph");
        let (model, t) = best_of(runs, || analyses::analyze_all(path))?;
        m.all_ev_per_s = rate(events, t);
        m.graph = analyses::graph_figures(&model)?;
        drop(model);
        if !args.no_reference {
            if let Some(cmd) = readers::reference_command(format, path) {
                let label = cmd.join(" ");
                step(&label);
                match best_of(runs, || readers::time_command(&cmd)) {
                    Ok((_, t)) => {
                        m.reference = Some(label);
                        m.reference_ev_per_s = Some(rate(events, t));
                    }
                    Err(e) => eprintln!("virtflow bench: reference `{label}` failed: {e:#}"),
                }
            }
        }
        m.peak_rss_mib = peak_rss_mib();
        if args.json {
            println!("{}", serde_json::to_string(&m)?);
        }
        results.push(m);
    }
    if !args.json {
        print_table(&results);
    }
    Ok(())
}

fn rate(events: u64, t: Duration) -> f64 {
    events as f64 / t.as_secs_f64().max(1e-9)
}

fn best_of<T>(
    runs: u32,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(T, Duration)> {
    let mut best: Option<(T, Duration)> = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f()?;
        let t = start.elapsed();
        if best.as_ref().is_none_or(|(_, b)| t < *b) {
            best = Some((out, t));
        }
    }
    Ok(best.expect("at least one run"))
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn print_table(results: &[Measure]) {
    let m = |x: f64| format!("{:.2}M", x / 1e6);
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "trace",
        "events",
        "decode/s",
        "dump/s",
        "fields/s",
        "analyze/s",
        "graph/s",
        "all/s",
        "ref/s",
        "ref×"
    );
    for r in results {
        let name = short(&r.trace);
        let (refr, ratio) = match r.reference_ev_per_s {
            Some(x) => (m(x), format!("{:.1}", r.dump_ev_per_s / x)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<44} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
            name,
            r.events,
            m(r.decode_ev_per_s),
            m(r.dump_ev_per_s),
            m(r.fields_ev_per_s),
            m(r.analyze_ev_per_s),
            m(r.graph_ev_per_s),
            m(r.all_ev_per_s),
            refr,
            ratio
        );
    }
    println!("\nexecution graph (from the all/s pass):");
    for r in results {
        let g = &r.graph;
        println!(
            "  {}: {} workers, {} segments, {} links, {:.1} MiB ({:.1} B/segment); critical \
             path of {} over its life: {} pieces in {:.1} ms",
            short(&r.trace),
            g.workers,
            g.segments,
            g.links,
            g.bytes as f64 / (1024.0 * 1024.0),
            g.bytes_per_segment,
            g.critical_path_worker,
            g.critical_path_pieces,
            g.critical_path_ms
        );
    }
    println!(
        "ref× = dump rate / reference rate; rates use virtflow's event count for both; graph/s: \
         analyze building the execution graph; all/s: with the series too."
    );
}

/// A trace's name cut to the table's column, from the left.
fn short(trace: &str) -> String {
    let chars: Vec<char> = trace.chars().collect();
    if chars.len() > 44 {
        format!("…{}", chars[chars.len() - 43..].iter().collect::<String>())
    } else {
        trace.to_string()
    }
}

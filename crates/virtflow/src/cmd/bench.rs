//! `virtflow bench TRACE…`: events per second of virtflow's paths against the reference reader
//! of each format, on the same files, in one run.
//!
//! Paths measured, each on a freshly opened source, best of `--runs`:
//! - `decode`: every field of every event decoded and handed over — integers as numbers,
//!   strings as their bytes, enumerations with their labels, compounds member by member — one
//!   pass per event (`visit_fields`: what `dump` costs without formatting);
//! - `dump`: the full `dump` text written to a sink (`virtflow dump >/dev/null`);
//! - `fields`: the analysis access pattern — a handful of integer fields of the scheduler and
//!   KVM event classes, resolved once; the reader is told which classes are read
//!   (`set_interest`) and passes over the others, which still count in the event total;
//! - `analyze`: the whole `virtflow analyze` pipeline (layout, state machines, model).
//!
//! The reference is `babeltrace2` with a dummy sink for CTF, `trace-cmd report` for `.dat` and
//! `perf script` for `perf.data`, with output sent to `/dev/null`. Its rate is computed with
//! the event count virtflow read, so both rates are comparable.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use virtflow_trace::drain;

use crate::input::{self, Format};

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
    reference: Option<String>,
    reference_ev_per_s: Option<f64>,
    /// Peak resident memory of this process after the trace, in MiB (`VmHWM`).
    peak_rss_mib: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runs = args.runs.max(1);
    let mut results = Vec::new();
    for path in &args.traces {
        let format = input::detect(path)?;
        let mut m = Measure {
            trace: path.display().to_string(),
            format: format!("{format:?}"),
            ..Default::default()
        };
        let (events, t) = best_of(runs, || decode_all(path))?;
        m.events = events;
        m.decode_ev_per_s = rate(events, t);
        let (_, t) = best_of(runs, || dump_to_sink(path))?;
        m.dump_ev_per_s = rate(events, t);
        let (counted, t) = best_of(runs, || read_fields(path))?;
        anyhow::ensure!(
            counted == events,
            "{}: the field-reading pass counted {counted} events, the full pass {events}",
            path.display()
        );
        m.fields_ev_per_s = rate(events, t);
        let (_, t) = best_of(runs, || analyze(path))?;
        m.analyze_ev_per_s = rate(events, t);
        if !args.no_reference {
            if let Some(cmd) = reference_command(format, path) {
                let label = cmd.join(" ");
                match best_of(runs, || time_command(&cmd)) {
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

fn decode_all(path: &Path) -> anyhow::Result<u64> {
    Ok(drain::every_field(&mut *input::open_one(path)?)?)
}

fn dump_to_sink(path: &Path) -> anyhow::Result<()> {
    let mut source = input::open_one(path)?;
    let mut out = std::io::BufWriter::new(std::io::sink());
    match super::dump::dump(&mut *source, &mut out, false, None) {
        Ok(()) => Ok(()),
        Err(super::dump::DumpError::Trace(e)) => Err(e.into()),
        Err(super::dump::DumpError::Output(e)) => Err(e.into()),
    }
}

/// The analysis access pattern: per class, the fields an analysis of scheduling and KVM reads.
fn read_fields(path: &Path) -> anyhow::Result<u64> {
    const WANTED: &[(&str, &[&[&str]])] = &[
        (
            "sched_switch",
            &[
                &["prev_tid", "prev_pid"],
                &["next_tid", "next_pid"],
                &["prev_state"],
            ],
        ),
        ("sched_waking", &[&["tid", "pid"]]),
        ("sched_wakeup", &[&["tid", "pid"]]),
        ("kvm_exit", &[&["exit_reason"], &["isa"]]),
        ("kvm_x86_exit", &[&["exit_reason"], &["isa"]]),
        ("kvm_entry", &[&["vcpu_id"]]),
        ("kvm_x86_entry", &[&["vcpu_id"]]),
        ("kvm_inj_virq", &[&["vector", "irq"]]),
        ("kvm_x86_inj_virq", &[&["vector", "irq"]]),
    ];
    Ok(drain::some_fields(&mut *input::open_one(path)?, WANTED)?)
}

fn analyze(path: &Path) -> anyhow::Result<()> {
    let mut source = input::open_one(path)?;
    let model = virtflow_analysis::analyze(&mut *source, &Default::default())?;
    std::hint::black_box(model.vms.len());
    Ok(())
}

fn reference_command(format: Format, path: &Path) -> Option<Vec<String>> {
    let p = path.display().to_string();
    match format {
        Format::Ctf => Some(vec![
            "babeltrace2".into(),
            p,
            "-c".into(),
            "sink.utils.dummy".into(),
        ]),
        Format::Dat => Some(vec!["trace-cmd".into(), "report".into(), "-i".into(), p]),
        Format::Perf => Some(vec!["perf".into(), "script".into(), "-i".into(), p]),
        Format::Text | Format::Xml => None,
    }
}

fn time_command(cmd: &[String]) -> anyhow::Result<()> {
    let status = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", cmd[0]))?;
    anyhow::ensure!(status.success(), "exited with {status}");
    Ok(())
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
        "{:<44} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "trace", "events", "decode/s", "dump/s", "fields/s", "analyze/s", "ref/s", "ref×"
    );
    for r in results {
        let name = if r.trace.len() > 44 {
            format!("…{}", &r.trace[r.trace.len() - 43..])
        } else {
            r.trace.clone()
        };
        let (refr, ratio) = match r.reference_ev_per_s {
            Some(x) => (m(x), format!("{:.1}", r.dump_ev_per_s / x)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<44} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
            name,
            r.events,
            m(r.decode_ev_per_s),
            m(r.dump_ev_per_s),
            m(r.fields_ev_per_s),
            m(r.analyze_ev_per_s),
            refr,
            ratio
        );
    }
    println!("ref× = dump rate / reference rate; rates use virtflow's event count for both.");
}

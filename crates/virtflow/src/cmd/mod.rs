//! Subcommands. Each module owns its `clap` arguments (`Args`) and its `run` function, so
//! subcommands grow without touching each other.

use clap::{Parser, Subcommand};

pub mod analyze;
pub mod bench;
pub mod cluster;
pub mod critical_path;
pub mod doctor;
pub mod dump;
pub mod export;
pub mod record;
pub mod report;
pub mod simulate;
pub mod sync;
pub mod view;

#[derive(Parser, Debug)]
#[command(name = "virtflow", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// What every VM and vCPU did and why it waited (the built-in demo trace if none given).
    Analyze(analyze::Args),
    /// Print every event, one per line, in time order.
    Dump(dump::Args),
    /// Write a simulated KVM host trace and its ground truth (`truth.json`).
    Simulate(simulate::Args),
    /// Serve the interactive timeline on 127.0.0.1.
    View(view::Args),
    /// Write a self-contained HTML report.
    Report(report::Args),
    /// Export the analysis for other tools (Perfetto, LAMI, CSV, Parquet).
    Export(export::Args),
    /// Group VMs by workload with k-means on their feature vectors.
    Cluster(cluster::Args),
    /// Record a host trace with exactly the events the analyses use.
    Record(record::Args),
    /// Tell what this host can record, and how to fix what is missing.
    Doctor(doctor::Args),
    /// Measure events/s of virtflow against the reference readers on the same files.
    Bench(bench::Args),
    /// Put several hosts' clocks on one time line, from the messages they exchanged.
    Sync(sync::Args),
    /// What a thread, vCPU or guest process waited for, through threads, VMs and hosts.
    CriticalPath(critical_path::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Analyze(a) => analyze::run(a),
        Command::Dump(a) => dump::run(a),
        Command::Simulate(a) => simulate::run(a),
        Command::View(a) => view::run(a),
        Command::Report(a) => report::run(a),
        Command::Export(a) => export::run(a),
        Command::Cluster(a) => cluster::run(a),
        Command::Record(a) => record::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Sync(a) => sync::run(a),
        Command::CriticalPath(a) => critical_path::run(a),
    }
}

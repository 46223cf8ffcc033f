//! `virtflow export [TRACE…] --format FORMAT -o FILE`: the analysis for other tools.
//!
//! One function per format; add a format by adding a [`Format`] variant and its function.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use virtflow_model::Model;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Perfetto protobuf trace (ui.perfetto.dev, trace_processor): a process track per VM,
    /// a thread track per vCPU with its state slices, steal and interrupt-rate counters.
    Perfetto,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files or folders; none: the built-in demo trace.
    pub traces: Vec<PathBuf>,
    /// Read the model from this JSON file (`virtflow analyze --json --intervals`) instead
    /// of analysing traces.
    #[arg(long, value_name = "FILE", conflicts_with = "traces")]
    pub model: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Where to write the export.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = super::view::load_model(&args.traces, args.model.as_deref())?;
    match args.format {
        Format::Perfetto => perfetto(&model, &args.output),
    }
}

fn perfetto(model: &Model, output: &PathBuf) -> anyhow::Result<()> {
    let file = std::fs::File::create(output).with_context(|| format!("{}", output.display()))?;
    let mut out = BufWriter::new(file);
    let stats = virtflow_view::perfetto::write(model, &mut out)
        .and_then(|s| out.flush().map(|_| s))
        .with_context(|| format!("{}", output.display()))?;
    eprintln!(
        "virtflow: wrote {} ({} slices, {} counter values)",
        output.display(),
        stats.slices,
        stats.counter_values
    );
    if stats.clamped > 0 {
        eprintln!(
            "virtflow: {} events had negative timestamps and were placed at 0",
            stats.clamped
        );
    }
    Ok(())
}

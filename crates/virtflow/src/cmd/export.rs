//! `virtflow export [TRACE…] --format FORMAT -o FILE`: the analysis for other tools.
//!
//! One function per format; add a format by adding a [`Format`] variant and its function.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use virtflow_model::Model;

use crate::input::ModelArgs;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Perfetto protobuf trace (ui.perfetto.dev, trace_processor): a process track per VM
    /// with its phases, a thread track per vCPU with its state slices, steal, memory and
    /// runnable-vCPU counters, and wake-ups between the VMs' threads as flows.
    Perfetto,
    /// The workload feature table (one row per VM, vCPU or guest process; see
    /// docs/features.md) as CSV.
    Csv,
    /// The same feature table as Apache Parquet.
    Parquet,
    /// The feature table and its clustering as LAMI 1.0 results (Trace Compass); for Trace
    /// Compass's External Analyses, register `virtflow cluster --format lami` instead.
    Lami,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: ModelArgs,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Where to write the export.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// csv, parquet, lami: what a row of the feature table is.
    #[arg(long, default_value = "vm", value_parser = ["vm", "vcpu", "process"])]
    pub level: String,
    /// csv, parquet, lami: the time window a row covers, as `virtflow cluster --window`
    /// (`auto`, a duration such as `500ms`, or `whole`); every row carries its `start` and
    /// `end`.
    #[arg(long, default_value = "auto", value_name = "DURATION")]
    pub window: String,
}

impl Format {
    /// The format's name as the user types it (`csv`).
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }
}

/// Every format reads the traces or, with `--model`, a saved model; a failure names the
/// format as it was typed.
pub fn run(args: Args) -> anyhow::Result<()> {
    let result = if matches!(args.format, Format::Csv | Format::Parquet | Format::Lami) {
        features(&args)
    } else {
        crate::input::load_model(&args.input).and_then(|model| match args.format {
            Format::Perfetto => perfetto(&model, &args.output),
            Format::Csv | Format::Parquet | Format::Lami => unreachable!("handled above"),
        })
    };
    result.with_context(|| format!("export --format {}", args.format.name()))
}

fn perfetto(model: &Model, output: &PathBuf) -> anyhow::Result<()> {
    let file = std::fs::File::create(output).with_context(|| format!("{}", output.display()))?;
    let mut out = BufWriter::new(file);
    let stats = virtflow_view::perfetto::write(model, &mut out)
        .and_then(|s| out.flush().map(|_| s))
        .with_context(|| format!("{}", output.display()))?;
    eprintln!(
        "virtflow: wrote {} ({} slices, {} counter values, {} flows)",
        output.display(),
        stats.slices,
        stats.counter_values,
        stats.flows
    );
    if stats.clamped > 0 {
        eprintln!(
            "virtflow: {} events had negative timestamps and were placed at 0",
            stats.clamped
        );
    }
    Ok(())
}

/// csv, parquet, lami: the workload feature table of `virtflow cluster`, from the traces or
/// the model.
fn features(args: &Args) -> anyhow::Result<()> {
    use virtflow_cluster::{cluster, lami, parquet_out, ClusterOptions, Level};
    let level = Level::parse(&args.level).context("--level must be vm, vcpu or process")?;
    let window = crate::features::window_spec(&args.window)?;
    let crate::features::Features {
        table,
        notes,
        begin,
        end,
        ..
    } = crate::features::feature_table(&args.input, level, window)?;
    for n in &notes {
        eprintln!("virtflow: note: {n}");
    }
    let output = &args.output;
    match args.format {
        Format::Csv => std::fs::write(output, table.to_csv())
            .with_context(|| format!("{}", output.display()))?,
        Format::Parquet => parquet_out::write(&table, output).map_err(|e| anyhow::anyhow!(e))?,
        _ => {
            let report = cluster(&table, &ClusterOptions::default());
            let results = lami::results(&table, &report, begin, end);
            std::fs::write(output, serde_json::to_string(&results)? + "\n")
                .with_context(|| format!("{}", output.display()))?;
        }
    }
    eprintln!(
        "virtflow: wrote {} ({} rows × {} features)",
        output.display(),
        table.rows.len(),
        table.features.len()
    );
    Ok(())
}

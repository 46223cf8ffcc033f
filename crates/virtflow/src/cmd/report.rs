//! `virtflow report [TRACE…] -o report.html`: one self-contained HTML file with the summary
//! tables, charts and an overview timeline (see `virtflow_view::report`).

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files or folders; none: the built-in demo trace.
    pub traces: Vec<PathBuf>,
    /// Read the model from this JSON file (`virtflow analyze --json --intervals`) instead
    /// of analysing traces.
    #[arg(long, value_name = "FILE", conflicts_with = "traces")]
    pub model: Option<PathBuf>,
    /// Where to write the report.
    #[arg(short, long, value_name = "FILE", default_value = "report.html")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = super::view::load_model(&args.traces, args.model.as_deref(), true)?;
    let html = virtflow_view::report::write_html(model);
    std::fs::write(&args.output, html).with_context(|| format!("{}", args.output.display()))?;
    eprintln!("virtflow: wrote {}", args.output.display());
    Ok(())
}

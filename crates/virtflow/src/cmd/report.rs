//! `virtflow report [TRACE…] -o report.html`: one self-contained HTML file with the summary
//! tables, charts and an overview timeline (see `virtflow_view::report`).

use std::path::PathBuf;

use anyhow::Context;

use crate::input::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: ModelArgs,
    /// Where to write the report.
    #[arg(short, long, value_name = "FILE", default_value = "report.html")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = super::view::model_with_workloads(&args.input)?;
    let html = virtflow_view::report::write_html(model);
    std::fs::write(&args.output, html).with_context(|| format!("{}", args.output.display()))?;
    eprintln!("virtflow: wrote {}", args.output.display());
    Ok(())
}

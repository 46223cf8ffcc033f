//! `virtflow view [TRACE…]`: the interactive timeline in the browser, served on loopback by
//! this process (see `virtflow_view::server`).

use std::net::IpAddr;

use anyhow::{anyhow, Context};
use virtflow_model::Model;

use crate::input::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: ModelArgs,
    /// Port to listen on (default: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on. Only loopback addresses unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Allow listening on a non-loopback address (the viewer has no authentication).
    #[arg(long)]
    pub allow_remote: bool,
    /// Open the viewer in the desktop's browser.
    #[arg(long)]
    pub open: bool,
}

/// The model with its state timelines (`--model`, or the traces analysed), each VM's phases
/// and its workload named by the clustering of the model's VMs by windows: what `view` and
/// `report` show.
pub(crate) fn model_with_workloads(input: &ModelArgs) -> anyhow::Result<Model> {
    let mut model = crate::input::load_model(input)?;
    virtflow_cluster::name_phases(&mut model);
    Ok(model)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Bind first: a refused address should not wait for the analysis.
    let listener = virtflow_view::server::bind(args.bind, args.port, args.allow_remote)
        .map_err(|e| anyhow!(e))?;
    let addr = listener.local_addr()?;
    let model = model_with_workloads(&args.input)?;
    let data = virtflow_view::ViewData::new(model);
    let host = match addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let url = format!("http://{host}:{}/", addr.port());
    println!(
        "virtflow view: {} VMs, {} intervals; serving {url} (Ctrl-C to stop)",
        data.summary.vms.len(),
        data.index.interval_count()
    );
    if args.open {
        if let Err(e) = std::process::Command::new("xdg-open").arg(&url).spawn() {
            eprintln!("virtflow: could not open a browser ({e}); open {url} yourself");
        }
    }
    virtflow_view::server::serve_blocking(listener, data, !args.allow_remote)
        .context("serving the viewer")
}

//! `virtflow view [TRACE…]`: the interactive timeline in the browser, served on loopback by
//! this process (see `virtflow_view::server`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use virtflow_analysis::{analyze, Options};
use virtflow_model::Model;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files or folders; none: the built-in demo trace.
    pub traces: Vec<PathBuf>,
    /// Read the model from this JSON file (`virtflow analyze --json --intervals`) instead
    /// of analysing traces.
    #[arg(long, value_name = "FILE", conflicts_with = "traces")]
    pub model: Option<PathBuf>,
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

/// The model with its state timelines: from `--model`, else by analysing the traces (or
/// the demo trace). Shared by `view`, `report` and `export`. With `clusters`, the VMs are
/// also grouped by workload (`virtflow cluster`'s k-means) and each VM's `workload` holds its
/// cluster's name, which the clusters panel shows.
pub(crate) fn load_model(
    traces: &[PathBuf],
    model: Option<&Path>,
    clusters: bool,
) -> anyhow::Result<Model> {
    if let Some(path) = model {
        let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        return serde_json::from_reader(std::io::BufReader::new(file))
            .with_context(|| format!("{}: not a virtflow model (analyze --json)", path.display()));
    }
    // The clustering reads the traces again, so the demo trace needs a path that lives until
    // then.
    let demo = if traces.is_empty() && clusters {
        Some(crate::input::DemoTrace::write()?)
    } else {
        None
    };
    let paths: Vec<PathBuf> = match &demo {
        Some(d) => vec![d.path().to_path_buf()],
        None => traces.to_vec(),
    };
    let (mut source, mut names) = crate::input::open_or_demo(&paths)?;
    if demo.is_some() {
        names = vec![crate::input::DEMO_NAME.to_string()];
    }
    let (vmm_cmdlines, sidecar_notes) = crate::input::vmm_cmdlines(traces);
    let options = Options {
        intervals: true,
        traces: names,
        vmm_cmdlines,
        ..Options::default()
    };
    let mut model = analyze(&mut *source, &options).context("reading the trace")?;
    model.notes.extend(sidecar_notes);
    drop(source);
    if clusters && !model.vms.is_empty() {
        if let Err(e) = name_workloads(&paths, &mut model) {
            model.notes.push(format!("no workload clustering: {e:#}"));
        }
    }
    Ok(model)
}

/// Clusters the VMs of `paths` (`virtflow cluster` with its defaults) and writes each
/// cluster's name into its members' `workload`.
fn name_workloads(paths: &[PathBuf], model: &mut Model) -> anyhow::Result<()> {
    use virtflow_cluster::{ClusterOptions, KSelection, Level};
    // The feature pass reads the trace once more only: it joins its observer pass with this
    // model rather than analysing the trace again.
    let (table, _notes, _, _) =
        super::cluster::feature_table(paths, Level::Vm, None, Some(&*model), |_, _| {})?;
    anyhow::ensure!(!table.rows.is_empty(), "no VM with features");
    let mut options = ClusterOptions::default();
    if table.rows.len() < 3 {
        // Too few rows for a silhouette: each VM is named on its own.
        options.k = KSelection::Fixed(table.rows.len());
    }
    let report = virtflow_cluster::cluster(&table, &options);
    for cluster in &report.clusters {
        for member in &cluster.members {
            for vm in model.vms.iter_mut().filter(|vm| vm.pid == member.key.pid) {
                vm.workload = Some(cluster.name.name().to_string());
            }
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Bind first: a refused address should not wait for the analysis.
    let listener = virtflow_view::server::bind(args.bind, args.port, args.allow_remote)
        .map_err(|e| anyhow!(e))?;
    let addr = listener.local_addr()?;
    let model = load_model(&args.traces, args.model.as_deref(), true)?;
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

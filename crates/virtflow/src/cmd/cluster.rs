//! `virtflow cluster TRACE…`: groups VMs (or vCPUs, or guest processes) by workload with
//! k-means on their feature vectors over time windows, names each group with the evidence,
//! and tells each VM's phases — runs of windows in one cluster — and its verdict.
//!
//! The traces are analysed in one pass with series kept (or `--model` is read), and every
//! VM's windows make one table and one clustering (`--window whole`: one row per VM over the
//! whole trace, as before windows existed). Output: a terminal report, `--json` (the
//! [`virtflow_cluster::ClusterReport`]), or `--format lami` for Trace Compass's External
//! Analyses (`--mi-version`, `--metadata`, results), plus `--plot` SVG; `--truth FILE` adds
//! the agreement with known workloads.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use virtflow_cluster::{
    agreement, cluster, features, lami, plot, ClusterOptions, KSelection, Level, Normalization,
};

use crate::features::Features;
use crate::input::ModelArgs;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// The terminal report.
    Text,
    /// The clustering as JSON (same as --json).
    Json,
    /// LAMI 1.0 results (Trace Compass External Analyses).
    Lami,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub input: ModelArgs,
    /// What a row is: a VM, a vCPU, or a guest process (needs CR3 at guest entry).
    #[arg(long, default_value = "vm", value_parser = ["vm", "vcpu", "process"])]
    pub level: String,
    /// The time windows a row covers: `auto` (about a fortieth of the trace, at least
    /// 100 ms), a duration (`500ms`, `2s`; rounded to the analysis' buckets), or `whole`
    /// (one row per VM, vCPU or process over the whole trace, without phases).
    #[arg(long, default_value = "auto", value_name = "DURATION")]
    pub window: String,
    /// Compare with known workloads: a simulator truth.json (its VMs' workloads or phases)
    /// or a lab manifest.json; prints each VM's agreement and the adjusted Rand index.
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Number of clusters, or `auto`: the k (2..=--max-k) of best silhouette among the
    /// admissible partitions — each cluster's rows named alike by the naming rules (windows:
    /// at least 80% of them, since windows at a phase's edge straddle two workloads), no two
    /// clusters named alike (the report lists each k tried, its silhouette and whether it was
    /// admissible). Clusters that would bear the same name (a fixed k, or no admissible k)
    /// are merged, with a note: no two clusters share a name.
    #[arg(long, default_value = "auto")]
    pub k: String,
    /// Largest k tried by `--k auto`.
    #[arg(long, default_value_t = 8)]
    pub max_k: usize,
    /// Row scaling before k-means: `zscore` (per column) or `l2` (per row, the seed
    /// research's choice).
    #[arg(long, default_value = "zscore", value_parser = ["zscore", "l2"])]
    pub normalize: String,
    /// Seed of the k-means++ draws: the same seed gives the same clusters.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// k-means++ restarts; the lowest inertia wins.
    #[arg(long, default_value_t = 10)]
    pub restarts: usize,
    /// Print the clustering as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Draw the clusters' 2-D projection (PCA) to this SVG file (PNG is not offered).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// LAMI: print the MI version (`1.0`) and exit.
    #[arg(long)]
    pub mi_version: bool,
    /// LAMI: print the analysis metadata (table classes, typed columns) and exit.
    #[arg(long)]
    pub metadata: bool,
    /// LAMI: exit 0 when the traces can be read and hold KVM events.
    #[arg(long)]
    pub test_compatibility: bool,
    /// LAMI: print progress lines before the results.
    #[arg(long)]
    pub output_progress: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.mi_version {
        println!("{}", lami::mi_version_string());
        return Ok(());
    }
    if args.metadata {
        let meta = lami::metadata(&features::vm_features(), &features::process_features());
        println!("{}", serde_json::to_string(&meta)?);
        return Ok(());
    }
    let lami_mode = args.format == OutputFormat::Lami;
    let result = run_clustering(&args, lami_mode);
    match result {
        Err(e) if lami_mode => {
            // LAMI reports errors as an object on standard output.
            println!(
                "{}",
                serde_json::json!({ "error-message": format!("{e:#}") })
            );
            std::process::exit(1);
        }
        other => other,
    }
}

fn options(args: &Args) -> anyhow::Result<(Level, ClusterOptions)> {
    let level = Level::parse(&args.level).context("--level must be vm, vcpu or process")?;
    let k = if args.k == "auto" {
        KSelection::Auto {
            max: args.max_k.max(2),
        }
    } else {
        let k: usize = args.k.parse().ok().filter(|k| *k >= 1).with_context(|| {
            format!("--k must be a positive number or `auto`, not {:?}", args.k)
        })?;
        KSelection::Fixed(k)
    };
    let normalization =
        Normalization::parse(&args.normalize).context("--normalize must be zscore or l2")?;
    Ok((
        level,
        ClusterOptions {
            k,
            normalization,
            seed: args.seed,
            restarts: args.restarts.max(1),
        },
    ))
}

fn run_clustering(args: &Args, lami_mode: bool) -> anyhow::Result<()> {
    let (level, opts) = options(args)?;
    if let Some(path) = &args.plot {
        if path
            .extension()
            .is_none_or(|e| !e.eq_ignore_ascii_case("svg"))
        {
            bail!("--plot writes SVG: give a FILE.svg ({})", path.display());
        }
    }
    let window = crate::features::window_spec(&args.window)?;
    let known = match &args.truth {
        Some(path) => Some(agreement::Known::read(path).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let show_progress = lami_mode && args.output_progress;
    if show_progress {
        println!("0.000 reading the traces");
    }
    let Features {
        mut table,
        notes,
        begin,
        end,
        one_host,
    } = crate::features::feature_table(&args.input, level, window)?;
    if let Some(known) = &known {
        agreement::attach(known, &mut table, one_host);
    }
    if args.test_compatibility {
        if table.rows.is_empty() {
            bail!("no VM found in the given traces");
        }
        return Ok(());
    }
    if table.rows.is_empty() {
        let why = notes.join("; ");
        bail!(
            "no {} to cluster in the given traces{}{why}",
            level.name(),
            if why.is_empty() { "" } else { ": " }
        );
    }
    let mut report = cluster(&table, &opts);
    if let Some(known) = &known {
        let timelines = report.timelines().to_vec();
        report.truth = Some(agreement::compare(
            known,
            &table,
            &report.labels,
            &timelines,
            one_host,
        ));
    }
    let mut all_notes = notes;
    all_notes.append(&mut report.notes);
    report.notes = all_notes;
    if let Some(path) = &args.plot {
        let normalised = virtflow_cluster::clustering_input(&table, opts.normalization);
        std::fs::write(path, plot::svg(&table, &normalised, &report))
            .with_context(|| format!("{}", path.display()))?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if lami_mode {
        if show_progress {
            writeln!(out, "1.000 done")?;
        }
        serde_json::to_writer(&mut out, &lami::results(&table, &report, begin, end))
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out))
    } else if args.json || args.format == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out))
    } else {
        out.write_all(report.to_text().as_bytes())
    };
    match written.and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

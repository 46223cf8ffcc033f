//! `virtflow cluster TRACE…`: groups VMs (or vCPUs, or guest processes) by workload with
//! k-means on their feature vectors, and names each group with the evidence.
//!
//! Each TRACE is analysed on its own and its rows tagged with it; all rows then make one
//! table and one clustering (several hosts, several time windows). Output: a terminal
//! report, `--json` (the [`virtflow_cluster::ClusterReport`]), or `--format lami` for Trace
//! Compass's External Analyses (`--mi-version`, `--metadata`, results), plus `--plot` SVG.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use virtflow_cluster::{
    cluster, features, lami, pipeline, plot, ClusterOptions, FeatureTable, KSelection, Level,
    Normalization,
};

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
    /// Trace files or folders (CTF, trace-cmd .dat, perf.data, ftrace text).
    pub traces: Vec<PathBuf>,
    /// What a row is: a VM, a vCPU, or a guest process (needs CR3 at guest entry).
    #[arg(long, default_value = "vm", value_parser = ["vm", "vcpu", "process"])]
    pub level: String,
    /// Number of clusters, or `auto` for the k of best silhouette (2..=--max-k).
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
    /// Only events at or after this timestamp (ns, trace clock).
    #[arg(long, value_name = "NS", requires = "end")]
    pub begin: Option<i64>,
    /// Only events at or before this timestamp (ns, trace clock).
    #[arg(long, value_name = "NS", requires = "begin")]
    pub end: Option<i64>,
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

/// Analyses every trace into one table. Shared with `export --format csv|parquet|lami` and,
/// with the model it built already of its one trace (`given`), with the timeline view.
pub(crate) fn feature_table(
    traces: &[PathBuf],
    level: Level,
    window: Option<(i64, i64)>,
    mut given: Option<&virtflow_model::Model>,
    mut progress: impl FnMut(usize, &Path),
) -> anyhow::Result<(FeatureTable, Vec<String>, i64, i64)> {
    if traces.is_empty() {
        bail!("no trace given");
    }
    let mut table = FeatureTable::new(
        level,
        match level {
            Level::Process => features::process_features(),
            _ => features::vm_features(),
        },
    );
    let mut notes = Vec::new();
    let (mut begin, mut end) = (i64::MAX, i64::MIN);
    for (i, path) in traces.iter().enumerate() {
        progress(i, path);
        let name = path.display().to_string();
        let mut open = || {
            crate::input::open_one(path).map_err(|e| {
                match e.downcast::<virtflow_trace::TraceError>() {
                    Ok(te) => te,
                    Err(other) => {
                        virtflow_trace::TraceError::new(path, 0, other.root_cause().to_string())
                    }
                }
            })
        };
        // The recorder's sidecar file may name VMs that markers in the trace do not.
        let (cmdlines, mut sidecar_notes) = crate::input::vmm_cmdlines(std::slice::from_ref(path));
        notes.append(&mut sidecar_notes);
        let mut analysed = None;
        let model: &virtflow_model::Model = match (traces.len(), given.take()) {
            (1, Some(given)) => given,
            _ => analysed.insert(pipeline::analyze_trace(
                &name, &mut open, window, &cmdlines,
            )?),
        };
        let mut rows = pipeline::trace_rows(&name, model, &mut open, level, window)?;
        pipeline::attach_truth(&mut rows.table, &pipeline::known_workloads(path), model);
        begin = begin.min(rows.begin);
        end = end.max(rows.end);
        notes.append(&mut rows.notes);
        table
            .extend(rows.table)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    }
    Ok((table, notes, begin.min(end), end))
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
    let window = args.begin.zip(args.end);
    let n = args.traces.len();
    let show_progress = lami_mode && args.output_progress;
    let (table, notes, begin, end) =
        feature_table(&args.traces, level, window, None, |i, path| {
            if show_progress {
                println!("{:.3} reading {}", i as f64 / n as f64, path.display());
            }
        })?;
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
    report.notes = notes;
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
        let (b, e) = window.unwrap_or((begin, end));
        serde_json::to_writer(&mut out, &lami::results(&table, &report, b, e))
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

//! Opening TRACE arguments: the format is detected, never asked for.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use virtflow_analysis::{Options, VmmCommandLine};
use virtflow_model::Model;
use virtflow_trace::{Bound, Clock, EventSource, Merge, Offset, Window};

use crate::experiment::{self, HostName, Plan};
use crate::timeline::{self, Clocks, SyncMode};

/// The container formats virtflow reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A CTF 1.8 or CTF 2 trace folder, or a folder holding several (an LTTng session).
    Ctf,
    /// trace-cmd `.dat` (versions 6 and 7).
    Dat,
    /// `perf.data` from `perf record`.
    Perf,
    /// ftrace text: tracefs `trace`/`trace_pipe`, or `trace-cmd report` output.
    Text,
    /// A Trace Compass XML stub trace (`<trace>` of `<event>`s).
    Xml,
}

const DAT_MAGIC: &[u8] = b"\x17\x08\x44tracing";
const PERF_MAGIC: &[u8] = b"PERFILE2";

/// Detects the format of one TRACE argument from its type and first bytes.
pub fn detect(path: &Path) -> anyhow::Result<Format> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.is_dir() {
        return Ok(Format::Ctf);
    }
    let mut head = [0u8; 512];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("{}", path.display()))?;
    let head = &head[..n];
    if head.starts_with(DAT_MAGIC) {
        Ok(Format::Dat)
    } else if head.starts_with(PERF_MAGIC) {
        Ok(Format::Perf)
    } else if virtflow_xmlstub::looks_like_stub(head) {
        Ok(Format::Xml)
    } else if path.file_name().is_some_and(|n| n == "metadata") {
        Ok(Format::Ctf)
    } else if n == 0 {
        bail!("{}: empty file", path.display())
    } else {
        Ok(Format::Text)
    }
}

/// Opens one TRACE argument as an event source.
pub fn open_one(path: &Path) -> anyhow::Result<Box<dyn EventSource>> {
    let format = detect(path)?;
    Ok(match format {
        Format::Ctf => {
            // A `metadata` file names its trace folder.
            let dir: PathBuf = if path.is_dir() {
                path.to_path_buf()
            } else {
                path.parent().unwrap_or(Path::new(".")).to_path_buf()
            };
            Box::new(virtflow_ctf::CtfSource::open(&dir)?)
        }
        Format::Dat => Box::new(virtflow_ftrace::DatSource::open(path)?),
        Format::Perf => Box::new(virtflow_ftrace::PerfSource::open(path)?),
        Format::Text => Box::new(virtflow_ftrace::TextSource::open(path)?),
        Format::Xml => Box::new(virtflow_xmlstub::XmlSource::open(path)?),
    })
}

/// Opens every TRACE argument and merges them in time order.
pub fn open_all(paths: &[PathBuf]) -> anyhow::Result<Box<dyn EventSource>> {
    if paths.is_empty() {
        bail!("no trace given");
    }
    let mut sources = Vec::with_capacity(paths.len());
    for p in paths {
        sources.push(open_one(p)?);
    }
    if sources.len() == 1 {
        Ok(sources.pop().unwrap())
    } else {
        Ok(Box::new(Merge::new(sources)))
    }
}

/// The VMM command lines `virtflow record` saved beside (or in) the trace at `path`
/// (`virtflow_record::vmm`), and a note when such a file could not be read.
pub fn vmm_cmdlines(path: &Path) -> (Vec<VmmCommandLine>, Option<String>) {
    let Some(sidecar) = virtflow_record::vmm::find_sidecar(path) else {
        return (Vec::new(), None);
    };
    match virtflow_record::vmm::read_sidecar(&sidecar) {
        Ok(vmms) => (
            vmms.into_iter()
                .map(|v| VmmCommandLine {
                    pid: v.pid,
                    argv: v.argv,
                })
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(format!("ignored {e}"))),
    }
}

/// How the built-in demo trace is named in reports.
pub const DEMO_NAME: &str = "(built-in demo trace)";

/// The built-in demo trace written to a temporary folder, removed when dropped.
pub struct DemoTrace {
    dir: PathBuf,
    path: PathBuf,
}

impl DemoTrace {
    pub fn write() -> anyhow::Result<DemoTrace> {
        let dir = std::env::temp_dir().join(format!("virtflow-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        let path = virtflow_sim::write_demo(&dir).context("writing the built-in demo trace")?;
        Ok(DemoTrace { dir, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DemoTrace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The TRACE arguments opened as one source — one trace, or the experiment of several hosts —
/// or, when none is given, the demo trace built into the binary.
pub struct Opened {
    pub source: Box<dyn EventSource>,
    /// The TRACE arguments as given (the demo trace's name for it).
    pub names: Vec<String>,
    /// Which recordings the arguments held and how their hosts were named.
    pub plan: Plan,
    /// Several hosts: their clocks on the reference's, when known before the pass.
    pub clocks: Option<Clocks>,
    /// Several hosts whose clocks the pass fits: the reference, and each host's shift.
    pub fit: Option<Fit>,
    /// Keeps the demo trace's folder until the source is dropped.
    _demo: Option<DemoTrace>,
}

/// An experiment's clocks to fit in the analysis pass: onto `reference`, each host's events
/// shifted by `shifts[host]` so that the hosts start together.
pub struct Fit {
    pub reference: String,
    pub shifts: Vec<i64>,
}

/// Opens the TRACE arguments of `args` as an experiment (see [`crate::experiment`]).
pub fn open_traces(args: &TraceArgs) -> anyhow::Result<Opened> {
    let (arguments, names, demo) = if args.traces.is_empty() {
        let demo = DemoTrace::write()?;
        (
            vec![demo.path().to_path_buf()],
            vec![DEMO_NAME.to_string()],
            Some(demo),
        )
    } else {
        let names = args
            .traces
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        (args.traces.clone(), names, None)
    };
    let plan = experiment::plan(&arguments, &args.host)?;
    let mut fit = None;
    let clocks = if plan.recordings.len() > 1 {
        let (mode, reference) = (args.sync_mode(), args.reference.as_deref());
        match timeline::known(&plan, &mode, reference)? {
            Some(clocks) => Some(clocks),
            // A window is on the reference clock: the clocks must be known before the pass.
            None if args.window().is_some() => Some(timeline::clocks(&plan, &mode, reference)?),
            // Fitted in the analysis pass, on hosts shifted to start together.
            None => {
                let reference = timeline::reference_of(&plan, reference)?;
                let shifts = experiment::aligned_starts(&plan, &reference)?;
                fit = Some(Fit { reference, shifts });
                None
            }
        }
    } else {
        None
    };
    let per_host: Vec<Option<Arc<dyn Clock>>> = match (&clocks, &fit) {
        (Some(c), _) => c.per_host.clone(),
        (None, Some(f)) => f
            .shifts
            .iter()
            .map(|&s| (s != 0).then(|| Arc::new(Offset(s)) as Arc<dyn Clock>))
            .collect(),
        (None, None) => Vec::new(),
    };
    let source = experiment::open(&plan, &per_host)?;
    let source = windowed(source, args.window());
    Ok(Opened {
        source,
        names,
        plan,
        clocks,
        fit,
        _demo: demo,
    })
}

/// The traces a command reads, and the time window it looks at: shared by every command that
/// analyses (`analyze`, `view`, `report`, `export`, `cluster`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TraceArgs {
    /// Trace files or folders (CTF, trace-cmd .dat, perf.data, ftrace text); none: the
    /// built-in demo trace.
    pub traces: Vec<PathBuf>,
    /// Only from this time: nanoseconds on the trace's clock, or a duration after the first
    /// event (`2.5s`, `300ms`, `40us`).
    #[arg(long, value_name = "TIME", requires = "end")]
    pub begin: Option<Bound>,
    /// Only until this time (same forms as --begin).
    #[arg(long, value_name = "TIME", requires = "begin")]
    pub end: Option<Bound>,
    /// Name the host of a trace (repeatable): overrides the name the trace records; traces
    /// given one name are one host recorded together.
    #[arg(long, value_name = "NAME=TRACE")]
    pub host: Vec<HostName>,
    /// Several hosts: leave each on its own clock instead of synchronising them.
    #[arg(long, conflicts_with = "sync")]
    pub no_sync: bool,
    /// Several hosts: take their clocks from this `virtflow sync --json` file.
    #[arg(long, value_name = "FILE")]
    pub sync: Option<PathBuf>,
    /// Several hosts: the host whose clock every time is put on (default: the first).
    #[arg(long, value_name = "HOST")]
    pub reference: Option<String>,
}

impl TraceArgs {
    /// The window given, if any.
    pub fn window(&self) -> Option<(Bound, Bound)> {
        self.begin.zip(self.end)
    }

    /// Where the hosts' clocks come from.
    pub fn sync_mode(&self) -> SyncMode {
        match (&self.sync, self.no_sync) {
            (Some(file), _) => SyncMode::File(file.clone()),
            (None, true) => SyncMode::Off,
            (None, false) => SyncMode::Auto,
        }
    }
}

/// [`TraceArgs`], or a model saved by `virtflow analyze --json --intervals`: what the commands
/// that only read the model (`view`, `report`, `export`, `cluster`) take.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Read the model from this JSON file (`virtflow analyze --json --intervals`) instead of
    /// analysing traces.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["traces", "begin", "end"])]
    pub model: Option<PathBuf>,
}

/// Opens a source, within `window` when one is given.
pub fn windowed(
    source: Box<dyn EventSource>,
    window: Option<(Bound, Bound)>,
) -> Box<dyn EventSource> {
    match window {
        Some((begin, end)) => Box::new(Window::new(source, begin, end)),
        None => source,
    }
}

/// Analyses the traces of `args` (or the demo trace) in one pass, with the VMM command lines
/// the recorder saved beside them. `options` gives what to keep and the progress callback;
/// its `traces` and command lines are filled here.
pub fn analyze(args: &TraceArgs, mut options: Options) -> anyhow::Result<Model> {
    let mut opened = open_traces(args)?;
    let mut notes = opened.plan.notes.clone();
    for (host, r) in opened.plan.recordings.iter().enumerate() {
        for path in &r.paths {
            let (cmdlines, note) = vmm_cmdlines(path);
            options
                .host_vmm_cmdlines
                .extend(cmdlines.into_iter().map(|c| (host, c)));
            notes.extend(note);
        }
    }
    options.traces = opened.names.clone();
    options.host_names = opened.plan.recordings.iter().map(|r| r.host.clone()).collect();
    let (mut model, fitted) = match &opened.fit {
        Some(fit) => {
            let (model, sync) = virtflow_analysis::analyze_fitting_clocks(
                &mut *opened.source,
                &options,
                Some(&fit.reference),
            )
            .context("reading the trace")?;
            let clocks = timeline::fitted(&opened.plan, &fit.reference, &sync, &fit.shifts)?;
            (model, Some(clocks))
        }
        None => (
            virtflow_analysis::analyze(&mut *opened.source, &options)
                .context("reading the trace")?,
            None,
        ),
    };
    for (host, r) in model.hosts.iter_mut().zip(&opened.plan.recordings) {
        host.traces = r.paths.iter().map(|p| p.display().to_string()).collect();
    }
    if let Some(clocks) = opened.clocks.or(fitted) {
        for (host, clock) in model.hosts.iter_mut().zip(clocks.hosts) {
            host.clock = Some(clock);
        }
        let timeline = model.timeline.get_or_insert_with(Default::default);
        timeline.reference = clocks.timeline.reference;
        timeline.source = clocks.timeline.source;
        if timeline.received_before_sent > 0 {
            notes.push(format!(
                "{} of {} messages between hosts arrive before they leave on this time line: \
                 the clocks are not synchronised well enough for them",
                timeline.received_before_sent, timeline.messages
            ));
        }
        notes.extend(clocks.notes);
    }
    model.notes.extend(notes);
    Ok(model)
}

/// The model with its state timelines: from `--model`, else by analysing the traces (or the
/// demo trace) with intervals kept.
pub fn load_model(args: &ModelArgs) -> anyhow::Result<Model> {
    if let Some(path) = &args.model {
        return read_model(path);
    }
    analyze(
        &args.trace,
        Options {
            intervals: true,
            series: true,
            ..Options::default()
        },
    )
}

/// Reads a model saved by `virtflow analyze --json`.
pub fn read_model(path: &Path) -> anyhow::Result<Model> {
    let file = File::open(path).with_context(|| format!("{}", path.display()))?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("{}: not a virtflow model (analyze --json)", path.display()))
}

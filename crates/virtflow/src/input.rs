//! Opening TRACE arguments: the format is detected, never asked for.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use virtflow_analysis::{Options, VmmCommandLine};
use virtflow_model::Model;
use virtflow_trace::{
    Bound, Clock, ErrorKind, EventSource, Merge, Offset, TraceError, UntilError, Window,
};

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
/// A packetized CTF metadata file's packet magic (0x75d11d57), in either byte order.
const CTF_METADATA_MAGICS: [[u8; 4]; 2] = [[0x57, 0x1d, 0xd1, 0x75], [0x75, 0xd1, 0x1d, 0x57]];
/// How much of a file's start detection reads.
const HEAD: usize = 4096;

/// What a binary file none of whose marks were found was looked at for, by its name: a
/// `.dat` and a `perf.data` were meant to be those.
fn expected_of(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".dat") {
        "expected a trace-cmd .dat, which starts with \\x17\\x08Dtracing (or a perf.data, CTF \
         metadata, a Trace Compass XML stub trace or ftrace text); found binary data without \
         trace-cmd's magic"
    } else if name == "perf.data" || name.ends_with(".data") {
        "expected a perf.data, which starts with PERFILE2 (or a trace-cmd .dat, CTF metadata, a \
         Trace Compass XML stub trace or ftrace text); found binary data without perf's magic"
    } else {
        "expected a trace-cmd .dat (starting with \\x17\\x08Dtracing), a perf.data (PERFILE2), \
         CTF metadata, a Trace Compass XML stub trace or ftrace text; found binary data with \
         none of their marks"
    }
}

/// Whether the start of a file can be text: no NUL byte, and at most one byte in twenty a
/// control character (other than tab, line ends, form feed and escape) or not UTF-8. A text
/// trace with a few odd bytes (a thread name) passes; random or binary data does not.
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    let mut odd = 0;
    for chunk in head.utf8_chunks() {
        odd += chunk.invalid().len();
        odd += chunk
            .valid()
            .bytes()
            .filter(|&b| (b < 0x20 && !b"\t\n\r\x0c\x1b".contains(&b)) || b == 0x7f)
            .count();
    }
    odd * 20 <= head.len()
}

/// Detects the format of one TRACE argument from its type and first bytes. A file that is
/// empty, or binary data with none of the formats' marks, is refused ([`ErrorKind::EmptyFile`],
/// [`ErrorKind::NotATrace`] saying what was looked for); text goes to the ftrace text reader,
/// which refuses text that holds no event line.
pub fn detect(path: &Path) -> Result<Format, TraceError> {
    let meta = std::fs::metadata(path).map_err(|e| TraceError::io(path, e))?;
    if meta.is_dir() {
        return Ok(Format::Ctf);
    }
    let mut head = Vec::with_capacity(HEAD);
    File::open(path)
        .and_then(|f| f.take(HEAD as u64).read_to_end(&mut head))
        .map_err(|e| TraceError::io(path, e))?;
    let is_metadata = path.file_name().is_some_and(|n| n == "metadata");
    if head.starts_with(DAT_MAGIC) {
        Ok(Format::Dat)
    } else if head.starts_with(PERF_MAGIC) {
        Ok(Format::Perf)
    } else if virtflow_xmlstub::looks_like_stub(&head) {
        Ok(Format::Xml)
    } else if is_metadata || CTF_METADATA_MAGICS.iter().any(|m| head.starts_with(m)) {
        Ok(Format::Ctf)
    } else if head.is_empty() {
        Err(TraceError::new(path, 0, ErrorKind::EmptyFile))
    } else if looks_like_text(&head) {
        Ok(Format::Text)
    } else {
        Err(TraceError::new(
            path,
            0,
            ErrorKind::NotATrace {
                expected: expected_of(path),
            },
        ))
    }
}

/// Opens one TRACE argument as an event source. A failure is a [`TraceError`] (the file, and
/// where in it when that matters).
pub fn open_one(path: &Path) -> anyhow::Result<Box<dyn EventSource>> {
    let format = detect(path)?;
    Ok(match format {
        Format::Ctf => {
            // A `metadata` file names its trace folder.
            let dir: PathBuf = if path.is_dir() {
                path.to_path_buf()
            } else {
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf()
            };
            let source = virtflow_ctf::CtfSource::open(&dir)?;
            if !ctf_has_streams(&dir, 0) {
                // CTF allows it (babeltrace reads it as no event), but a folder of metadata
                // alone is a copy that lost its streams far more often than a trace.
                return Err(TraceError::new(
                    &dir,
                    0,
                    ErrorKind::NotATrace {
                        expected: "expected stream files beside the CTF `metadata` (as \
                                   `channel0_0`); found the metadata alone",
                    },
                )
                .into());
            }
            Box::new(source)
        }
        Format::Dat => Box::new(virtflow_ftrace::DatSource::open(path)?),
        Format::Perf => Box::new(virtflow_ftrace::PerfSource::open(path)?),
        Format::Text => Box::new(virtflow_ftrace::TextSource::open(path)?),
        Format::Xml => Box::new(virtflow_xmlstub::XmlSource::open(path)?),
    })
}

/// Whether a CTF trace folder, or one of the traces below it, holds a file beside its
/// `metadata` (a stream file, empty or not).
fn ctf_has_streams(dir: &Path, depth: u32) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let entries: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    if dir.join("metadata").is_file() {
        return entries.iter().any(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n != "metadata" && !n.starts_with('.'))
        });
    }
    depth < 12
        && entries
            .iter()
            .any(|p| p.is_dir() && ctf_has_streams(p, depth + 1))
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
    let opened = open_traces(args)?;
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
    options.host_names = opened
        .plan
        .recordings
        .iter()
        .map(|r| r.host.clone())
        .collect();
    let mut source = UntilError::new(opened.source);
    let (mut model, fitted) = match &opened.fit {
        Some(fit) => {
            let (model, sync) = virtflow_analysis::analyze_fitting_clocks(
                &mut source,
                &options,
                Some(&fit.reference),
            )
            .context("reading the trace")?;
            let clocks = timeline::fitted(&opened.plan, &fit.reference, &sync, &fit.shifts)?;
            (model, Some(clocks))
        }
        None => (
            virtflow_analysis::analyze(&mut source, &options).context("reading the trace")?,
            None,
        ),
    };
    if let Some(e) = source.error {
        // Damage before any event: nothing to show but the error. After events: the results
        // of the readable part, saying where reading stopped.
        if source.delivered == 0 && model.read.events == 0 {
            return Err(anyhow::Error::new(e).context("reading the trace"));
        }
        let stopped = format!(
            "reading stopped at {e}: the results cover the {} events before it",
            model.read.events.max(source.delivered)
        );
        eprintln!("virtflow: warning: {stopped}");
        notes.push(stopped);
    } else if model.read.events == 0 {
        // A valid trace that holds no event says so, instead of "no KVM events".
        model.notes.retain(|n| !n.contains("no KVM events"));
        notes.insert(0, NO_EVENT.to_string());
    }
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

/// The note of a trace that is valid but holds no event.
pub const NO_EVENT: &str = "no event in this trace";

/// The model the sinks show (`view`, `report`, `export`): from `--model`, else by analysing the
/// traces (or the demo trace) with the state timelines, the series over time and the execution
/// graph kept — the timeline's rows, the overcommitment and memory charts, and the critical
/// paths and wake-up flows come from them.
pub fn load_model(args: &ModelArgs) -> anyhow::Result<Model> {
    if let Some(path) = &args.model {
        return read_model(path);
    }
    analyze(
        &args.trace,
        Options {
            intervals: true,
            series: true,
            graph: true,
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

//! Opening TRACE arguments: the format is detected, never asked for.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use virtflow_analysis::VmmCommandLine;
use virtflow_trace::{EventSource, Merge};

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
}

const DAT_MAGIC: &[u8] = b"\x17\x08\x44tracing";
const PERF_MAGIC: &[u8] = b"PERFILE2";

/// Detects the format of one TRACE argument from its type and first bytes.
pub fn detect(path: &Path) -> anyhow::Result<Format> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.is_dir() {
        return Ok(Format::Ctf);
    }
    let mut head = [0u8; 16];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("{}", path.display()))?;
    let head = &head[..n];
    if head.starts_with(DAT_MAGIC) {
        Ok(Format::Dat)
    } else if head.starts_with(PERF_MAGIC) {
        Ok(Format::Perf)
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

/// The VMM command lines `virtflow record` saved beside (or in) the TRACE arguments
/// (`virtflow_record::vmm`), and a note for each such file that could not be read.
pub fn vmm_cmdlines(paths: &[PathBuf]) -> (Vec<VmmCommandLine>, Vec<String>) {
    let mut cmdlines = Vec::new();
    let mut notes = Vec::new();
    for path in paths {
        let Some(sidecar) = virtflow_record::vmm::find_sidecar(path) else {
            continue;
        };
        match virtflow_record::vmm::read_sidecar(&sidecar) {
            Ok(vmms) => cmdlines.extend(vmms.into_iter().map(|v| VmmCommandLine {
                pid: v.pid,
                argv: v.argv,
            })),
            Err(e) => notes.push(format!("ignored {e}")),
        }
    }
    (cmdlines, notes)
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

/// Opens the TRACE arguments, or — when none is given — the demo trace built into the binary
/// (written to a temporary folder). Returns the source and the names to show for it.
pub fn open_or_demo(paths: &[PathBuf]) -> anyhow::Result<(Box<dyn EventSource>, Vec<String>)> {
    if !paths.is_empty() {
        let names = paths.iter().map(|p| p.display().to_string()).collect();
        return Ok((open_all(paths)?, names));
    }
    let demo = DemoTrace::write()?;
    // The reader has mapped or read what it needs; the folder can go when `demo` drops.
    let source = open_one(demo.path())?;
    Ok((source, vec![DEMO_NAME.to_string()]))
}

//! TRACE arguments as an experiment: each argument is the trace of one host for one recording
//! (a folder may hold several), every recording becomes a host of its own, and the hosts'
//! sources are merged on one time line.
//!
//! Which host a trace records comes from the trace (LTTng `env.hostname`, trace-cmd's uname
//! option, perf.data's `HEADER_HOSTNAME`), else from its file name (ftrace text, Trace
//! Compass XML); `--host NAME=TRACE` overrides. The kernel and user-space traces of one LTTng
//! session are one recording. Two recordings that name the same host (one machine traced at
//! two times, pids reused) are kept apart — `NAME` and `NAME (2)` — with a note: a thread is
//! (host, tid) everywhere, so nothing of one can leak into the other. Two traces given the
//! same name with `--host` are one host, merged.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use virtflow_trace::{Clock, ErrorKind, EventSource, Member, Merge, TraceError};

use crate::input::{detect, open_one, Format};

/// One recording of one host: its trace files or folders, merged on its own clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// The host's name as the experiment shows it (suffixed when two recordings share one).
    pub host: String,
    /// What to open: trace files, CTF trace or LTTng session folders.
    pub paths: Vec<PathBuf>,
    /// The TRACE argument it came from, as given.
    pub argument: String,
}

/// The recordings of an experiment, with what the user should know about how they were told
/// apart.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub recordings: Vec<Recording>,
    pub notes: Vec<String>,
    /// The sources opened to name their hosts, for the pass.
    opened: Opened,
}

/// Sources opened while their hosts were named, kept for the pass: opening a trace reads its
/// metadata (a CTF trace's TSDL, the event formats a `.dat` or perf.data carries), which costs
/// as much as reading a small trace's events. The first [`open`] of the same path takes it
/// (untouched: naming a host reads no event); a copy of the plan holds none.
#[derive(Default)]
struct Opened(RefCell<Vec<(PathBuf, Box<dyn EventSource>)>>);

impl Opened {
    fn keep(&self, path: &Path, source: Box<dyn EventSource>) {
        self.0.borrow_mut().push((path.to_path_buf(), source));
    }

    /// The source of `path` opened before, else opened now.
    fn take_or_open(&self, path: &Path) -> anyhow::Result<Box<dyn EventSource>> {
        let mut kept = self.0.borrow_mut();
        match kept.iter().position(|(p, _)| p == path) {
            Some(i) => Ok(kept.swap_remove(i).1),
            None => open_one(path),
        }
    }
}

impl Clone for Opened {
    fn clone(&self) -> Opened {
        Opened::default()
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opened({} sources)", self.0.borrow().len())
    }
}

/// `--host NAME=TRACE`: the host name to give the trace at that path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostName {
    pub name: String,
    pub trace: PathBuf,
}

impl std::str::FromStr for HostName {
    type Err = String;
    fn from_str(s: &str) -> Result<HostName, String> {
        let (name, trace) = s
            .split_once('=')
            .filter(|(n, t)| !n.is_empty() && !t.is_empty())
            .ok_or_else(|| format!("{s:?}: expected NAME=TRACE"))?;
        Ok(HostName {
            name: name.to_string(),
            trace: PathBuf::from(trace),
        })
    }
}

/// A trace found in an argument, before it is named.
struct Found {
    /// What to open (a CTF trace or session folder, or a file).
    path: PathBuf,
    argument: String,
}

/// What a folder argument is looked through for (ftrace text files are taken only when named
/// on the command line).
pub const FOLDER_EXPECTED: &str = "expected, in this folder or below, CTF traces (folders \
     holding a `metadata` file), trace-cmd .dat, perf.data or Trace Compass XML files (ftrace \
     text files are read when named one by one)";

/// How deep below a folder argument traces are looked for.
const MAX_DEPTH: u32 = 8;

/// Finds the traces of the TRACE arguments and names their hosts.
pub fn plan(arguments: &[PathBuf], names: &[HostName]) -> anyhow::Result<Plan> {
    let mut found = Vec::new();
    for arg in arguments {
        let before = found.len();
        let shown = arg.display().to_string();
        let meta = std::fs::metadata(arg).map_err(|e| TraceError::io(arg, e))?;
        if meta.is_dir() {
            let mut sessions = Vec::new();
            collect(arg, 0, &mut sessions);
            sessions.dedup();
            for path in sessions {
                found.push(Found {
                    path,
                    argument: shown.clone(),
                });
            }
        } else {
            found.push(Found {
                path: arg.clone(),
                argument: shown.clone(),
            });
        }
        if found.len() == before {
            return Err(TraceError::new(
                arg,
                0,
                ErrorKind::NotATrace {
                    expected: FOLDER_EXPECTED,
                },
            )
            .into());
        }
    }
    let mut plan = Plan::default();
    let mut detected: Vec<(String, usize)> = Vec::new();
    let mut unnamed: Vec<String> = Vec::new();
    for f in found {
        let given = names
            .iter()
            .find(|n| same_path(&n.trace, &f.path) || n.trace.display().to_string() == f.argument);
        let (host, forced) = match given {
            Some(n) => (n.name.clone(), true),
            None => {
                let (name, from_trace) = host_of(&f.path, &plan.opened)?;
                if !from_trace {
                    unnamed.push(name.clone());
                }
                (name, false)
            }
        };
        if forced {
            // Named alike on purpose: one host, recorded together.
            if let Some(r) = plan.recordings.iter_mut().find(|r| r.host == host) {
                r.paths.push(f.path);
                continue;
            }
        } else if let Some(e) = detected.iter_mut().find(|(h, _)| *h == host) {
            e.1 += 1;
            let unique = format!("{host} ({})", e.1);
            let first = plan
                .recordings
                .iter()
                .find(|r| r.host == host)
                .map(|r| r.argument.clone())
                .unwrap_or_default();
            plan.notes.push(format!(
                "{} and {} are both traces of host {host}, recorded separately: they are kept \
                 apart as {host} and {unique} (give them one name with --host NAME=TRACE if \
                 they were recorded together)",
                first,
                f.path.display()
            ));
            plan.recordings.push(Recording {
                host: unique,
                paths: vec![f.path],
                argument: f.argument,
            });
            continue;
        } else {
            detected.push((host.clone(), 1));
        }
        plan.recordings.push(Recording {
            host,
            paths: vec![f.path],
            argument: f.argument,
        });
    }
    if unnamed.len() > 1 {
        plan.notes.push(format!(
            "{} do not name their host (they are named by their files here): they are taken \
             as separate recordings, their threads and VMs kept apart (give traces recorded \
             together one name with --host NAME=TRACE)",
            unnamed.join(", ")
        ));
    }
    Ok(plan)
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Traces below a folder: CTF traces grouped by LTTng session (a session's kernel and
/// user-space traces are one recording), trace-cmd `.dat`, perf.data and Trace Compass XML
/// files. ftrace text files are taken only when named on the command line: a folder holds
/// too many other text files.
fn collect(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) {
    if dir.join("metadata").is_file() {
        out.push(session_root(dir));
        return;
    }
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, depth + 1, out);
        } else if matches!(detect(&p), Ok(Format::Dat | Format::Perf | Format::Xml)) {
            out.push(p);
        }
    }
}

/// The LTTng session folder a CTF trace belongs to: the parent of `kernel`, or of the `ust`
/// folder above a user-space trace; a lone trace is its own.
fn session_root(trace: &Path) -> PathBuf {
    if trace.file_name().is_some_and(|n| n == "kernel") {
        if let Some(p) = trace.parent() {
            return p.to_path_buf();
        }
    }
    for a in trace.ancestors() {
        if a.file_name().is_some_and(|n| n == "ust") {
            if let Some(p) = a.parent() {
                return p.to_path_buf();
            }
        }
    }
    trace.to_path_buf()
}

/// The host a trace records, from the trace when it says (true), else from its file name.
/// The source opened to ask is kept in `opened`.
fn host_of(path: &Path, opened: &Opened) -> anyhow::Result<(String, bool)> {
    let source = open_one(path)?;
    let host = match source.hostname().filter(|h| !h.is_empty()) {
        Some(h) => (h, true),
        None => (name_from_path(path), false),
    };
    opened.keep(path, source);
    Ok(host)
}

/// The file names tools give their traces by default: alone, they tell no host apart.
const DEFAULT_NAMES: &[&str] = &["trace.dat", "perf.data", "kernel", "trace", "trace.txt"];

/// A host named by its trace's file (or folder) name — with its folder when the name is a
/// tool's default (`s1_idle/trace.dat`).
fn name_from_path(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string());
    match path.parent().and_then(Path::file_name) {
        Some(dir) if DEFAULT_NAMES.contains(&file.as_str()) => {
            format!("{}/{file}", dir.to_string_lossy())
        }
        _ => file,
    }
}

/// Opens the plan's recordings as one source: a single recording as itself, several as an
/// experiment with one host each, each on the reference clock through `clocks` (by host;
/// `None`: already on it).
pub fn open(
    plan: &Plan,
    clocks: &[Option<Arc<dyn Clock>>],
) -> anyhow::Result<Box<dyn EventSource>> {
    let mut members = Vec::new();
    for (host, r) in plan.recordings.iter().enumerate() {
        for p in &r.paths {
            members.push(Member {
                source: plan.opened.take_or_open(p)?,
                host,
                clock: clocks.get(host).cloned().flatten(),
            });
        }
    }
    if members.len() == 1 && plan.recordings.len() == 1 && clocks.iter().all(Option::is_none) {
        return Ok(members.pop().map(|m| m.source).expect("one member"));
    }
    let hosts = plan.recordings.iter().map(|r| r.host.clone()).collect();
    Ok(Box::new(Merge::experiment(members, hosts)))
}

/// When each host's recording starts: the time of its first event on its own clock (the
/// earliest of its traces'), `None` for one without events. Opening a trace and reading one
/// event costs its index, not a pass.
pub fn first_times(plan: &Plan) -> anyhow::Result<Vec<Option<i64>>> {
    let mut firsts = Vec::with_capacity(plan.recordings.len());
    for r in &plan.recordings {
        let mut first: Option<i64> = None;
        for p in &r.paths {
            if let Some(ts) = virtflow_trace::drain::first_time(&mut *open_one(p)?) {
                first = Some(first.map_or(ts, |f| f.min(ts)));
            }
        }
        firsts.push(first);
    }
    Ok(firsts)
}

/// Shifts that make every host start when `reference` starts: the provisional clocks of an
/// experiment whose clocks are fitted during its pass (by host, what is added to its times).
pub fn aligned_starts(plan: &Plan, reference: &str) -> anyhow::Result<Vec<i64>> {
    let firsts = first_times(plan)?;
    let at = plan.recordings.iter().position(|r| r.host == reference);
    let origin = at.and_then(|i| firsts[i]);
    Ok(firsts
        .iter()
        .map(|f| match (origin, f) {
            (Some(o), Some(f)) => o.saturating_sub(*f),
            _ => 0,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_parse() {
        let h: HostName = "web=traces/a.dat".parse().unwrap();
        assert_eq!(h.name, "web");
        assert_eq!(h.trace, PathBuf::from("traces/a.dat"));
        assert!("=x".parse::<HostName>().is_err());
        assert!("x".parse::<HostName>().is_err());
    }

    #[test]
    fn hosts_named_by_their_files() {
        assert_eq!(name_from_path(Path::new("x/client.xml")), "client.xml");
        assert_eq!(
            name_from_path(Path::new("lab/s1_idle/trace.dat")),
            "s1_idle/trace.dat"
        );
        assert_eq!(name_from_path(Path::new("perf.data")), "perf.data");
    }

    #[test]
    fn session_roots() {
        assert_eq!(
            session_root(Path::new("s/lttng/kernel")),
            PathBuf::from("s/lttng")
        );
        assert_eq!(
            session_root(Path::new("s/lttng/ust/uid/1000/64-bit")),
            PathBuf::from("s/lttng")
        );
        assert_eq!(
            session_root(Path::new("synctraces/scp_src")),
            PathBuf::from("synctraces/scp_src")
        );
    }
}

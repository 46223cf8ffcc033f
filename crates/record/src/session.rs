//! One recording: pick the backend, fit the events to the host, start, run the command or
//! wait, show progress, stop, and leave a readable trace.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{self, Backend, BackendChoice};
use crate::events::{self, Level, Vocabulary};
use crate::host::{Host, TRACEFS_DIR};
use crate::vmm::{self, VmmProcess};
use crate::{lttng, perf, tracefs, RecordError};

/// What to record, as `virtflow record`'s options say.
#[derive(Clone, Debug, Default)]
pub struct RecordOptions {
    /// The trace to write; by default `virtflow-lttng/`, `perf.data` or `trace.dat`
    /// (`trace.txt` without trace-cmd), after the backend.
    pub out: Option<PathBuf>,
    pub backend: BackendChoice,
    /// Stop after this long (also when a command is still running).
    pub duration: Option<Duration>,
    pub level: Level,
    /// Also the page allocator's and KSM's events (see [`events::memory_cost`]).
    pub memory: bool,
    /// Per-CPU buffer size; see [`backend::buffer_kb_per_cpu`] for the default.
    pub buffer_kb: Option<u64>,
    /// Run this and stop when it exits.
    pub command: Vec<OsString>,
    /// Tell on stderr what is recorded, warnings, a progress line, and notes at the end.
    pub progress: bool,
    /// Do not look for VMM processes: no command lines in the trace, no sidecar file (see
    /// [`crate::vmm`]).
    pub no_vmm_cmdlines: bool,
}

/// A finished recording.
#[derive(Debug)]
pub struct Recording {
    pub out: PathBuf,
    pub backend: Backend,
    /// Enabled events, in the backend's vocabulary.
    pub events: Vec<String>,
    /// Wanted events the host lacks, and other things the user should know.
    pub warnings: Vec<String>,
    pub elapsed: Duration,
    /// Size of the written trace.
    pub bytes: u64,
    /// Events the tracer lost, when it tells.
    pub lost_events: Option<u64>,
    pub buffer_kb_per_cpu: u64,
    /// The traced command's exit status.
    pub command_status: Option<ExitStatus>,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// The VMM processes seen while recording, with their command lines.
    pub vmms: Vec<VmmProcess>,
    /// Where their command lines were saved (see [`crate::vmm`]).
    pub vmm_sidecar: Option<PathBuf>,
    /// How many VMM command-line lines the trace itself holds (`trace_marker`, tracefs only).
    pub vmm_markers: usize,
}

/// What a running backend reports while recording.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    pub bytes: u64,
    pub events: Option<u64>,
    pub lost: Option<u64>,
}

/// A started backend. `stop` ends tracing at once; `finish` writes the trace and puts the
/// host back as it was. Dropping it unfinished also puts the host back (errors, panics).
pub(crate) trait Running {
    fn progress(&mut self) -> Progress;
    fn stop(&mut self) -> Result<(), RecordError>;
    fn finish(self: Box<Self>) -> Result<Finished, RecordError>;
    /// Writes one line of text into the trace while it records; `Ok(false)` when this
    /// backend cannot (only tracefs has a user-space marker).
    fn mark(&mut self, _line: &str) -> Result<bool, RecordError> {
        Ok(false)
    }
}

/// What a backend reports at the end.
pub(crate) struct Finished {
    pub lost: Option<u64>,
    pub notes: Vec<String>,
}

/// Installs a Ctrl-C (SIGINT) handler that only raises the returned flag, so recording
/// stops cleanly instead of dying with tracing still enabled. Call once per process.
pub fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>, String> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
    Ok(flag)
}

/// Records one trace on `host`. `stop` (see [`stop_on_ctrl_c`]) ends the recording early.
pub fn record(
    mut host: Host,
    opts: &RecordOptions,
    stop: &AtomicBool,
) -> Result<Recording, RecordError> {
    let backend = backend::select(&host, opts.backend)?;
    let mut warnings = Vec::new();
    if backend != Backend::Lttng && host.tracefs.mounted_at.is_none() {
        mount_tracefs()?;
        host.refresh_tracepoints();
        warnings.push(format!("mounted tracefs on {TRACEFS_DIR}"));
    }

    let plan = match backend {
        Backend::Lttng => {
            let lttng_bin = host.lttng.clone().expect("checked by select");
            let available = lttng::kernel_events(&lttng_bin)?;
            events::plan(opts.level, opts.memory, Vocabulary::Lttng, |n| {
                available.contains(n)
            })?
        }
        Backend::Perf | Backend::Tracefs => {
            events::plan(opts.level, opts.memory, Vocabulary::Ftrace, |n| {
                host.has_tracepoint(n)
            })?
        }
    };
    let mut notes = Vec::new();
    if opts.memory {
        notes.push(events::memory_cost(crate::pagerate::measure(&host)));
        if !plan.enabled.iter().any(|e| e.starts_with("ksm")) {
            notes.push(match backend {
                Backend::Lttng => "LTTng has no KSM events: KSM merges are not recorded".into(),
                _ => "this kernel has no KSM events (Linux ≥ 6.4 has): KSM merges are not \
                      recorded"
                    .to_string(),
            });
        }
    }
    if !plan.absent.is_empty() {
        warnings.push(format!(
            "this kernel lacks {} wanted event(s), recording without: {}",
            plan.absent.len(),
            plan.absent.join(", ")
        ));
    }

    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| default_out(backend, &host));
    prepare_out(&out, backend)?;
    // A sidecar left by an earlier recording to the same place would name the wrong processes.
    let sidecar = vmm::sidecar_path(&out, backend == Backend::Lttng);
    let _ = std::fs::remove_file(&sidecar);
    if let Some(free) = free_bytes(&out) {
        if free < 64 << 20 {
            warnings.push(format!(
                "only {} free where {} goes",
                human_bytes(free),
                out.display()
            ));
        }
    }

    let duration_s = opts.duration.map(|d| d.as_secs_f64());
    let buffer_kb = backend::buffer_kb_per_cpu(
        backend,
        opts.level,
        opts.memory,
        duration_s,
        opts.buffer_kb,
        &host,
    );
    if opts.progress {
        for w in &warnings {
            eprintln!("virtflow record: warning: {w}");
        }
        for n in &notes {
            eprintln!("virtflow record: note: {n}");
        }
        eprintln!(
            "virtflow record: {backend} backend, {} events ({} level{}), {} KiB buffer per CPU → {}",
            plan.enabled.len(),
            opts.level,
            if opts.memory { ", memory" } else { "" },
            buffer_kb,
            out.display()
        );
    }
    warnings.append(&mut notes);

    let mut running: Box<dyn Running> = match backend {
        Backend::Tracefs => {
            let dir = host.tracefs.mounted_at.clone().expect("mounted above");
            Box::new(tracefs::start(
                &dir,
                &plan.enabled,
                buffer_kb,
                host.trace_cmd.clone(),
                &out,
            )?)
        }
        Backend::Perf => Box::new(perf::start(
            host.perf.as_deref().expect("checked by select"),
            &plan.enabled,
            buffer_kb,
            &out,
        )?),
        Backend::Lttng => Box::new(lttng::start(
            host.lttng.as_deref().expect("checked by select"),
            &plan.enabled,
            buffer_kb,
            &out,
        )?),
    };

    let started = Instant::now();
    let mut vmms = VmmLog::new(!opts.no_vmm_cmdlines);
    vmms.look(&mut *running, false);
    let mut child = match spawn_command(&opts.command) {
        Ok(c) => c,
        Err(e) => {
            // Dropping a backend unfinished puts the host back; the trace would be empty.
            drop(running);
            discard(&out);
            return Err(e);
        }
    };
    let mut command_status = None;
    let mut reporter = ProgressLine::new(opts.progress, backend);
    let interrupted = loop {
        if stop.load(Ordering::SeqCst) {
            break true;
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                command_status = Some(status);
                break false;
            }
        }
        if opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break false;
        }
        reporter.tick(started.elapsed(), || running.progress());
        if vmms.due(started.elapsed()) {
            vmms.look(&mut *running, false);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The recording's length ends here; stopping (perf flushing its buffers) is not part of it.
    let elapsed = started.elapsed();
    // A last look, while tracing is still on, for VMMs started since the previous one; every
    // VMM is written again, in case the ring buffer overwrote the first lines.
    vmms.look(&mut *running, true);
    let stopped = running.stop();
    let last = running.progress();
    reporter.finish(elapsed, last);
    if let Some(c) = child.as_mut() {
        if command_status.is_none() {
            command_status = Some(end_command(c, interrupted));
        }
    }
    stopped?;
    if opts.progress {
        eprintln!("virtflow record: stopped; writing {}", out.display());
    }
    let finished = running.finish()?;
    if opts.progress {
        for note in &finished.notes {
            eprintln!("virtflow record: note: {note}");
        }
    }
    warnings.extend(finished.notes);
    let bytes = path_size(&out);
    if bytes == 0 {
        return Err(RecordError::Tool {
            tool: backend.to_string(),
            output: format!("wrote no trace to {}", out.display()),
        });
    }
    let vmm_sidecar = vmms.save(&sidecar);
    if opts.progress {
        for w in &vmms.warnings {
            eprintln!("virtflow record: warning: {w}");
        }
    }
    warnings.append(&mut vmms.warnings);
    Ok(Recording {
        out,
        backend,
        events: plan.enabled,
        warnings,
        elapsed,
        bytes,
        lost_events: finished.lost.or(last.lost),
        buffer_kb_per_cpu: buffer_kb,
        command_status,
        interrupted,
        vmms: vmms.watch.map(|w| w.seen).unwrap_or_default(),
        vmm_sidecar,
        vmm_markers: vmms.markers,
    })
}

/// The VMM processes of one recording (see [`crate::vmm`]): looked for, marked in the
/// trace, saved beside it.
struct VmmLog {
    /// `None` with `--no-vmm-cmdlines`.
    watch: Option<vmm::Watch>,
    next: Duration,
    /// Marker lines written into the trace.
    markers: usize,
    /// The backend has no markers, or refused one: no more tries.
    no_markers: bool,
    warnings: Vec<String>,
}

impl VmmLog {
    fn new(enabled: bool) -> VmmLog {
        VmmLog {
            watch: enabled.then(|| vmm::Watch::new(Path::new("/proc"))),
            next: Duration::ZERO,
            markers: 0,
            no_markers: false,
            warnings: Vec::new(),
        }
    }

    fn due(&self, elapsed: Duration) -> bool {
        self.watch.is_some() && elapsed >= self.next
    }

    /// Looks for VMMs not seen yet and writes their command lines into the trace; with `all`,
    /// those of every VMM seen so far.
    fn look(&mut self, running: &mut dyn Running, all: bool) {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        self.next += vmm::RESCAN_EVERY;
        let new = watch.poll();
        let to_mark = if all { &watch.seen } else { &new };
        for v in to_mark {
            for line in vmm::marker_lines(v.pid, &v.argv) {
                if self.no_markers {
                    break;
                }
                match running.mark(&line) {
                    Ok(true) => self.markers += 1,
                    Ok(false) => self.no_markers = true,
                    Err(e) => {
                        self.no_markers = true;
                        self.warnings.push(format!(
                            "cannot write VMM command lines into the trace ({e}); the sidecar \
                             file keeps them"
                        ));
                    }
                }
            }
        }
    }

    /// Writes the sidecar (also when no VMM was seen: it says none was); its path, or `None`.
    fn save(&mut self, path: &Path) -> Option<PathBuf> {
        let watch = self.watch.as_ref()?;
        if watch.seen.is_empty() && watch.unreadable > 0 {
            self.warnings.push(format!(
                "could not list the open files of {} processes (not root?): VMM processes among \
                 them are not named",
                watch.unreadable
            ));
        }
        match vmm::write_sidecar(path, &watch.seen) {
            Ok(()) => Some(path.to_path_buf()),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                self.warnings.push(format!(
                    "cannot save the VMM command lines to {}: {e}",
                    path.display()
                ));
                None
            }
        }
    }
}

fn mount_tracefs() -> Result<(), RecordError> {
    use nix::mount::{mount, MsFlags};
    mount(
        Some("nodev"),
        TRACEFS_DIR,
        Some("tracefs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| RecordError::TracefsMount {
        dir: TRACEFS_DIR.into(),
        message: e.desc().to_string(),
    })
}

fn default_out(backend: Backend, host: &Host) -> PathBuf {
    PathBuf::from(match backend {
        Backend::Lttng => "virtflow-lttng",
        Backend::Perf => "perf.data",
        Backend::Tracefs if host.trace_cmd.is_some() => "trace.dat",
        Backend::Tracefs => "trace.txt",
    })
}

/// Makes room for the output: its folder exists; a file may be replaced, LTTng's folder
/// must be new or empty.
fn prepare_out(out: &Path, backend: Backend) -> Result<(), RecordError> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| RecordError::io(parent, e))?;
    }
    let is_dir = out.is_dir();
    let busy_dir = is_dir
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    match backend {
        Backend::Lttng if busy_dir || (out.exists() && !is_dir) => {
            Err(RecordError::OutputExists { path: out.into() })
        }
        Backend::Perf | Backend::Tracefs if is_dir => {
            Err(RecordError::OutputExists { path: out.into() })
        }
        _ => Ok(()),
    }
}

/// Removes an abandoned output (a file, or LTTng's folder, new or empty before recording).
fn discard(out: &Path) {
    if out.is_dir() {
        let _ = std::fs::remove_dir_all(out);
    } else {
        let _ = std::fs::remove_file(out);
    }
}

fn spawn_command(command: &[OsString]) -> Result<Option<Child>, RecordError> {
    let Some((program, args)) = command.split_first() else {
        return Ok(None);
    };
    Command::new(program)
        .args(args)
        .spawn()
        .map(Some)
        .map_err(|source| RecordError::Command {
            command: command
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            source,
        })
}

/// Ends a traced command still running when recording stops: after Ctrl-C it got the
/// terminal's SIGINT too and has two seconds to exit; otherwise (the duration ran out) it
/// is sent SIGTERM. Either way it is killed if it lingers, so no process outlives `record`.
fn end_command(child: &mut Child, interrupted: bool) -> ExitStatus {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if !interrupted {
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().expect("waiting for a child we spawned")
}

/// The progress line: rewritten in place on a terminal, one line a second otherwise.
struct ProgressLine {
    enabled: bool,
    tty: bool,
    backend: Backend,
    next: Duration,
}

impl ProgressLine {
    fn new(enabled: bool, backend: Backend) -> Self {
        ProgressLine {
            enabled,
            tty: std::io::stderr().is_terminal(),
            backend,
            next: Duration::from_millis(if enabled { 500 } else { u64::MAX }),
        }
    }

    fn tick(&mut self, elapsed: Duration, progress: impl FnOnce() -> Progress) {
        if !self.enabled || elapsed < self.next {
            return;
        }
        self.next = elapsed + Duration::from_millis(if self.tty { 500 } else { 1000 });
        self.print(elapsed, progress(), false);
    }

    fn finish(&mut self, elapsed: Duration, progress: Progress) {
        if self.enabled {
            self.print(elapsed, progress, true);
        }
    }

    fn print(&self, elapsed: Duration, p: Progress, last: bool) {
        let line = progress_text(self.backend, elapsed, p);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{line}");
            if last {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}

/// `recording 3.5 s · 12.1 MiB · 81234 events · 0 lost (tracefs)`.
pub(crate) fn progress_text(backend: Backend, elapsed: Duration, p: Progress) -> String {
    let mut s = format!(
        "virtflow record: {:.1} s · {}",
        elapsed.as_secs_f64(),
        human_bytes(p.bytes)
    );
    if let Some(e) = p.events {
        s += &format!(" · {e} events");
    }
    match p.lost {
        Some(l) => s += &format!(" · {l} lost"),
        None => s += " · lost: reported at the end",
    }
    s + &format!(" ({backend})")
}

pub(crate) fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Size of a file, or of everything under a folder.
pub(crate) fn path_size(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| path_size(&e.path()))
            .sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Free bytes on the file system that will hold `out`.
pub(crate) fn free_bytes(out: &Path) -> Option<u64> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Parses `--duration`: `90`, `2.5s`, `500ms`, `3m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration `{s}` (examples: 10, 2.5s, 500ms, 3m)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown duration unit `{other}` (ms, s, m, h)")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("duration must be positive: `{s}`"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3m").unwrap(), Duration::from_secs(180));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn progress_line_names_size_events_and_losses() {
        let p = Progress {
            bytes: 3 << 20,
            events: Some(1234),
            lost: Some(7),
        };
        let t = progress_text(Backend::Tracefs, Duration::from_millis(2500), p);
        assert_eq!(
            t,
            "virtflow record: 2.5 s · 3.0 MiB · 1234 events · 7 lost (tracefs)"
        );
        assert_eq!(human_bytes(999), "999 B");
    }

    #[test]
    fn output_rules() {
        let dir = std::env::temp_dir().join(format!("virtflow-record-out-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("busy")).unwrap();
        std::fs::write(dir.join("busy/x"), b"x").unwrap();
        assert!(prepare_out(&dir.join("busy"), Backend::Lttng).is_err());
        assert!(prepare_out(&dir.join("busy"), Backend::Perf).is_err());
        assert!(prepare_out(&dir.join("new/perf.data"), Backend::Perf).is_ok());
        assert!(dir.join("new").is_dir());
        assert!(prepare_out(&dir.join("fresh"), Backend::Lttng).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

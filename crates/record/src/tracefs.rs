//! The tracefs backend: events go to the top-level ring buffer, which is read once at the end
//! by `trace-cmd extract` (a `.dat`) or copied as the `trace` text. The buffer is sized to
//! hold the whole recording; in overwrite mode the oldest events go first and are counted
//! (`overrun` in `per_cpu/cpu*/stats`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::events::{Need, Vocabulary, CATALOGUE};
use crate::session::{path_size, Finished, Progress, Running};
use crate::RecordError;

/// Settings changed while recording, put back afterwards.
struct Saved {
    tracing_on: String,
    buffer_size_kb: Option<String>,
    trace_clock: Option<String>,
}

pub(crate) struct TracefsRun {
    dir: PathBuf,
    out: PathBuf,
    trace_cmd: Option<PathBuf>,
    enabled: Vec<String>,
    saved: Saved,
    restored: bool,
}

fn write(path: &Path, value: &str) -> Result<(), RecordError> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| RecordError::io(path, e))
}

fn read(path: &Path) -> Result<String, RecordError> {
    std::fs::read_to_string(path).map_err(|e| RecordError::io(path, e))
}

fn is_essential(name: &str) -> bool {
    CATALOGUE
        .iter()
        .any(|e| e.need == Need::Essential && e.names(Vocabulary::Ftrace).contains(&name))
}

/// Clears and sizes the buffer, enables `events` (`system:name`) and turns tracing on.
pub(crate) fn start(
    dir: &Path,
    events: &[String],
    buffer_kb: u64,
    trace_cmd: Option<PathBuf>,
    out: &Path,
) -> Result<TracefsRun, RecordError> {
    let enabled_before = read(&dir.join("set_event"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    if enabled_before > 0 {
        return Err(RecordError::TracefsBusy {
            dir: dir.into(),
            enabled: enabled_before,
        });
    }
    // `trace_clock` lists every clock with the current one in brackets.
    let clocks = read(&dir.join("trace_clock")).ok();
    let current_clock = clocks.as_deref().and_then(|c| {
        let start = c.find('[')? + 1;
        Some(c[start..start + c[start..].find(']')?].to_string())
    });
    let mut run = TracefsRun {
        dir: dir.into(),
        out: out.into(),
        trace_cmd,
        enabled: Vec::new(),
        saved: Saved {
            tracing_on: read(&dir.join("tracing_on"))?.trim().to_string(),
            buffer_size_kb: read(&dir.join("buffer_size_kb"))
                .ok()
                .and_then(|s| saved_buffer_kb(&s)),
            trace_clock: current_clock,
        },
        restored: false,
    };
    write(&dir.join("tracing_on"), "0")?;
    write(&dir.join("trace"), "")?;
    write(&dir.join("buffer_size_kb"), &buffer_kb.to_string()).map_err(|e| match e {
        RecordError::Io { path, source } => RecordError::Io {
            path,
            source: std::io::Error::new(
                source.kind(),
                format!("cannot size the ring buffer to {buffer_kb} KiB per CPU: {source} (try a smaller --buffer-kb)"),
            ),
        },
        e => e,
    })?;
    // CLOCK_MONOTONIC, as LTTng and `perf -k mono` use: traces of one host line up.
    if clocks.as_deref().is_some_and(|c| {
        c.split_whitespace()
            .any(|w| w.trim_matches(['[', ']']) == "mono")
    }) {
        write(&dir.join("trace_clock"), "mono")?;
    }
    for name in events {
        let (system, event) = name.split_once(':').unwrap_or(("", name));
        let path = dir.join("events").join(system).join(event).join("enable");
        match write(&path, "1") {
            Ok(()) => run.enabled.push(name.clone()),
            Err(e) if is_essential(name) => return Err(e),
            Err(e) => eprintln!("virtflow record: warning: cannot enable {name}: {e}"),
        }
    }
    write(&dir.join("tracing_on"), "1")?;
    Ok(run)
}

impl TracefsRun {
    /// Sums `per_cpu/cpu*/stats`: bytes and entries in the buffer, and losses (events
    /// overwritten while the buffer was full, or dropped).
    fn stats(&self) -> Progress {
        let mut p = Progress {
            events: Some(0),
            lost: Some(0),
            ..Progress::default()
        };
        for cpu in std::fs::read_dir(self.dir.join("per_cpu"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(text) = std::fs::read_to_string(cpu.path().join("stats")) else {
                continue;
            };
            let s = parse_stats(&text);
            p.bytes += s.bytes;
            p.events = p.events.map(|e| e + s.events.unwrap_or(0));
            p.lost = p.lost.map(|l| l + s.lost.unwrap_or(0));
        }
        p
    }

    /// Disables what was enabled, frees the buffer, and puts the settings back.
    fn restore(&mut self) -> Result<(), RecordError> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        let mut first_error = None;
        let mut keep = |r: Result<(), RecordError>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        keep(write(&self.dir.join("tracing_on"), "0"));
        for name in &self.enabled {
            let (system, event) = name.split_once(':').unwrap_or(("", name));
            keep(write(
                &self
                    .dir
                    .join("events")
                    .join(system)
                    .join(event)
                    .join("enable"),
                "0",
            ));
        }
        keep(write(&self.dir.join("trace"), ""));
        if let Some(kb) = &self.saved.buffer_size_kb {
            keep(write(&self.dir.join("buffer_size_kb"), kb));
        }
        if let Some(clock) = &self.saved.trace_clock {
            keep(write(&self.dir.join("trace_clock"), clock));
        }
        keep(write(&self.dir.join("tracing_on"), &self.saved.tracing_on));
        first_error.map_or(Ok(()), Err)
    }

    /// The output is named `*.txt`: the user asked for text.
    fn wants_text(&self) -> bool {
        self.out.extension().is_some_and(|e| e == "txt")
    }

    /// `trace-cmd extract` when trace-cmd is installed and the output is not named `*.txt`;
    /// otherwise the `trace` text.
    fn write_output(&self) -> Result<(), RecordError> {
        if let Some(trace_cmd) = self.trace_cmd.as_ref().filter(|_| !self.wants_text()) {
            let out = Command::new(trace_cmd)
                .arg("extract")
                .arg("-o")
                .arg(&self.out)
                .output()
                .map_err(|e| RecordError::io(trace_cmd, e))?;
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || path_size(&self.out) == 0 {
                let err = RecordError::tool("trace-cmd extract", &text, &self.out);
                remove_partial_extract(&self.out);
                return Err(err);
            }
            return Ok(());
        }
        let copied = self.copy_text();
        if copied.is_err() {
            let _ = std::fs::remove_file(&self.out);
        }
        copied
    }

    /// Copies the `trace` file (the ring buffer as text, read without consuming it).
    fn copy_text(&self) -> Result<(), RecordError> {
        let src = self.dir.join("trace");
        let mut input = std::fs::File::open(&src).map_err(|e| RecordError::io(&src, e))?;
        let file = std::fs::File::create(&self.out).map_err(|e| RecordError::io(&self.out, e))?;
        let mut output = std::io::BufWriter::with_capacity(1 << 20, file);
        // Read and write errors must be told apart: only the output can be full.
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n =
                std::io::Read::read(&mut input, &mut buf).map_err(|e| RecordError::io(&src, e))?;
            if n == 0 {
                break;
            }
            output
                .write_all(&buf[..n])
                .map_err(|e| RecordError::io(&self.out, e))?;
        }
        output
            .into_inner()
            .map_err(|e| RecordError::io(&self.out, e.into_error()))?
            .sync_all()
            .map_err(|e| RecordError::io(&self.out, e))
    }
}

impl Running for TracefsRun {
    fn progress(&mut self) -> Progress {
        self.stats()
    }

    fn stop(&mut self) -> Result<(), RecordError> {
        write(&self.dir.join("tracing_on"), "0")
    }

    /// `trace_marker`: the line becomes an ftrace `print` event (`buf`), in the `.dat` and the
    /// text alike. One write is one event; a write the kernel cut short is an error.
    fn mark(&mut self, line: &str) -> Result<bool, RecordError> {
        let path = self.dir.join("trace_marker");
        let written = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write(line.as_bytes()))
            .map_err(|e| RecordError::io(&path, e))?;
        if written < line.len() {
            return Err(RecordError::Io {
                path,
                source: std::io::Error::other(format!("kept {written} of {} bytes", line.len())),
            });
        }
        Ok(true)
    }

    fn finish(mut self: Box<Self>) -> Result<Finished, RecordError> {
        let stats = self.stats();
        let written = self.write_output();
        let restored = self.restore();
        written?;
        restored?;
        let mut notes = Vec::new();
        if stats.lost.unwrap_or(0) > 0 {
            notes.push(format!(
                "the ring buffer overflowed: {} events lost (overwritten); record for less time \
                 or with a bigger --buffer-kb",
                stats.lost.unwrap_or(0)
            ));
        }
        if self.trace_cmd.is_none() && !self.wants_text() {
            notes.push(
                "trace-cmd is not installed: wrote the tracefs text (install trace-cmd for a \
                 compact binary .dat)"
                    .to_string(),
            );
        }
        Ok(Finished {
            lost: stats.lost,
            notes,
        })
    }
}

impl Drop for TracefsRun {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!("virtflow record: warning: restoring tracefs settings: {e}");
        }
    }
}

/// Removes what a failed `trace-cmd extract -o OUT` left: OUT and its per-CPU temporaries
/// `OUT.cpuN`.
fn remove_partial_extract(out: &Path) {
    let _ = std::fs::remove_file(out);
    let (Some(dir), Some(name)) = (out.parent(), out.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.cpu", name.to_string_lossy());
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.strip_prefix(&prefix)
            .is_some_and(|cpu| !cpu.is_empty() && cpu.bytes().all(|b| b.is_ascii_digit()))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The size to restore from `buffer_size_kb`: `1408`, or `7 (expanded: 1408)` for a buffer
/// never used yet, whose size once in use is the expanded one.
fn saved_buffer_kb(text: &str) -> Option<String> {
    let expanded = text
        .split("expanded:")
        .nth(1)
        .map(|e| e.trim().trim_end_matches(')').trim());
    expanded
        .or_else(|| text.split_whitespace().next())
        .filter(|v| v.parse::<u64>().is_ok())
        .map(str::to_string)
}

/// One CPU's `stats` file.
pub(crate) fn parse_stats(text: &str) -> Progress {
    let mut p = Progress {
        events: Some(0),
        lost: Some(0),
        ..Progress::default()
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<u64>() else {
            continue;
        };
        match key.trim() {
            "entries" => p.events = Some(v),
            "bytes" => p.bytes = v,
            "overrun" | "dropped events" => p.lost = p.lost.map(|l| l + v),
            _ => {}
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_file() {
        let p = parse_stats(
            "entries: 487\noverrun: 3\ncommit overrun: 0\nbytes: 33116\n\
             oldest event ts:     0.000000\nnow ts:   422.421775\ndropped events: 2\nread events: 0\n",
        );
        assert_eq!(p.events, Some(487));
        assert_eq!(p.bytes, 33116);
        assert_eq!(p.lost, Some(5));
    }

    #[test]
    fn buffer_size_to_restore() {
        assert_eq!(
            saved_buffer_kb("7 (expanded: 1408)\n").as_deref(),
            Some("1408")
        );
        assert_eq!(saved_buffer_kb("2048\n").as_deref(), Some("2048"));
        assert_eq!(saved_buffer_kb("X\n"), None);
    }

    #[test]
    fn essentials_are_known() {
        assert!(is_essential("sched:sched_switch"));
        assert!(is_essential("kvm:kvm_exit"));
        assert!(!is_essential("net:net_dev_xmit"));
    }
}

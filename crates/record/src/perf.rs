//! The perf backend: `perf record -a` of the tracepoints, streamed to a perf.data.
//!
//! perf starts with its events disabled for a moment (`-D`) and says `Events enabled` when
//! they are on: only then does recording count as started, so a traced command never runs
//! before the trace sees it. SIGINT stops perf, which then completes the file.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::session::{path_size, Finished, Progress, Running};
use crate::RecordError;

pub(crate) struct PerfRun {
    child: Child,
    out: PathBuf,
    /// perf's stderr so far.
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

/// The `perf record` arguments (after `perf`).
pub(crate) fn args(events: &[String], buffer_kb: u64, out: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "record", "-a", // CLOCK_MONOTONIC, like LTTng and the tracefs backend.
        "-k", "mono",
        // Build ids are for symbolising samples; tracepoint traces need none, and collecting
        // them rereads the whole file at the end.
        "-B", "-N", "-D", "50",
    ]
    .map(String::from)
    .to_vec();
    // perf wants a power-of-two number of pages.
    a.push("-m".into());
    a.push(format!("{}K", buffer_kb.max(4).next_power_of_two()));
    a.push("-o".into());
    a.push(out.display().to_string());
    for e in events {
        a.push("-e".into());
        a.push(e.clone());
    }
    a
}

pub(crate) fn start(
    perf: &Path,
    events: &[String],
    buffer_kb: u64,
    out: &Path,
) -> Result<PerfRun, RecordError> {
    let mut child = Command::new(perf)
        .args(args(events, buffer_kb, out))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RecordError::io(perf, e))?;
    let stderr = child.stderr.take().expect("piped");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (enabled_tx, enabled_rx) = mpsc::channel();
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.trim() == "Events enabled" {
                let _ = enabled_tx.send(());
            }
            sink.lock().expect("no panics while held").push(line);
        }
    });
    let mut run = PerfRun {
        child,
        out: out.into(),
        lines,
        reader: Some(reader),
        status: None,
    };
    // A perf that never says `Events enabled` (older versions) but keeps running is taken as
    // recording after a while.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match enabled_rx.recv_timeout(Duration::from_millis(50)) {
            Ok(()) => return Ok(run),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if matches!(run.child.try_wait(), Ok(Some(_))) {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("virtflow record: warning: perf did not confirm that its events are on");
            return Ok(run);
        }
    }
    // perf exited: bad event, no permission, no room for its file…
    let _ = run.child.kill();
    run.status = run.child.wait().ok();
    if let Some(r) = run.reader.take() {
        let _ = r.join();
    }
    let err = RecordError::tool("perf record", &run.output(), out);
    let _ = std::fs::remove_file(out);
    Err(err)
}

impl PerfRun {
    fn output(&self) -> String {
        self.lines.lock().expect("no panics while held").join("\n")
    }
}

/// perf's end-of-run complaint `Processed N events and lost M chunks!`: M.
pub(crate) fn lost_chunks(output: &str) -> Option<u64> {
    output.lines().find_map(|l| {
        let rest = l.split("and lost ").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

impl Running for PerfRun {
    fn progress(&mut self) -> Progress {
        // perf counts lost chunks, not events, and only at its end: the events lost are
        // counted from the trace once it is written (`lost: reported at the end`).
        Progress {
            bytes: path_size(&self.out),
            events: None,
            lost: None,
        }
    }

    fn stop(&mut self) -> Result<(), RecordError> {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        if self.status.is_some() {
            return Ok(());
        }
        // perf may already be gone (the terminal's Ctrl-C reached it too).
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let status = self
            .child
            .wait()
            .map_err(|e| RecordError::io(&self.out, e))?;
        self.status = Some(status);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Finished, RecordError> {
        self.stop()?;
        let output = self.output();
        let status = self.status.expect("stopped");
        if !ended_by_sigint(status) || output.contains("No space left on device") {
            // An unfinished perf.data (no final header) is unreadable: do not leave it.
            let err = RecordError::tool("perf record", &output, &self.out);
            let _ = std::fs::remove_file(&self.out);
            return Err(err);
        }
        let mut notes = Vec::new();
        if let Some(chunks) = lost_chunks(&output).filter(|&c| c > 0) {
            notes.push(format!(
                "perf lost {chunks} chunks of events (its buffers overflowed): try a bigger \
                 --buffer-kb or faster storage; the events lost are counted from the trace"
            ));
        }
        // Chunks are no count of events: the trace's LOST records are (virtflow record reads
        // them once perf.data is written).
        Ok(Finished { lost: None, notes })
    }
}

/// perf stops on SIGINT by finishing its file and re-raising the signal.
fn ended_by_sigint(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.success() || status.code() == Some(130) || status.signal() == Some(2)
}

impl Drop for PerfRun {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_arguments() {
        let a = args(
            &["sched:sched_switch".into(), "kvm:kvm_exit".into()],
            3000,
            Path::new("/t/p.data"),
        );
        let s = a.join(" ");
        assert!(s.starts_with("record -a "), "{s}");
        assert!(s.contains("-m 4096K"), "{s}");
        assert!(s.contains("-o /t/p.data"), "{s}");
        assert!(s.ends_with("-e sched:sched_switch -e kvm:kvm_exit"), "{s}");
    }

    #[test]
    fn lost_chunks_line() {
        let out = "[ perf record: Woken up 3 times to write data ]\n\
                   Warning:\nProcessed 81234 events and lost 12 chunks!\n\nCheck IO/CPU overload!\n";
        assert_eq!(lost_chunks(out), Some(12));
        assert_eq!(lost_chunks("[ perf record: Captured ]"), None);
    }
}

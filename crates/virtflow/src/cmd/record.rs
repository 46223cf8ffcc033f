//! `virtflow record [-o OUT] [--backend …] [--duration D] [--level basic|full] [--memory]
//! [-- COMMAND…]`:
//! records a host trace with exactly the events the analyses use (crate `virtflow-record`),
//! then runs `virtflow analyze` on it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use virtflow_record::{
    session::parse_duration, Backend, BackendChoice, Host, Level, RecordOptions,
};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Recording stops when COMMAND exits, else after --duration, else on Ctrl-C \
(which always stops cleanly and leaves a readable trace). `virtflow doctor` tells what this host \
can record."
)]
pub struct Args {
    /// The trace to write [default: virtflow-lttng/, perf.data or trace.dat, after the backend;
    /// with tracefs, a name ending in .txt gets the ftrace text].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// auto (LTTng, else perf, else tracefs), lttng, perf or tracefs.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<BackendChoice>())]
    pub backend: BackendChoice,
    /// Stop after this long: 10, 2.5s, 500ms, 3m.
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// basic (scheduler, KVM, interrupts, timers) or full (adds block and network).
    #[arg(long, default_value = "basic", value_parser = |s: &str| s.parse::<Level>())]
    pub level: Level,
    /// Also record every page allocation and free, and KSM merges where the kernel traces
    /// them: how much host memory each VM holds. Page events are frequent (tens of thousands
    /// per second on a busy host); the rate here is measured and said before recording.
    #[arg(long)]
    pub memory: bool,
    /// Per-CPU buffer size in KiB [default: sized for the backend, level and duration].
    #[arg(long)]
    pub buffer_kb: Option<u64>,
    /// Do not run `virtflow analyze` on the trace afterwards.
    #[arg(long)]
    pub no_analyze: bool,
    /// Do not save the command lines of the VMM processes (those holding /dev/kvm open), which
    /// name the VMs by QEMU's -name and -uuid: by default they go into the trace (tracefs) and
    /// beside it, in TRACE.vmm-cmdlines.json (in the folder for LTTng).
    #[arg(long)]
    pub no_vmm_cmdlines: bool,
    /// The command to trace; recording stops when it exits.
    #[arg(last = true)]
    pub command: Vec<OsString>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let stop = virtflow_record::stop_on_ctrl_c().map_err(anyhow::Error::msg)?;
    if args.command.is_empty() && args.duration.is_none() {
        eprintln!("virtflow record: recording until Ctrl-C");
    }
    let options = RecordOptions {
        out: args.output,
        backend: args.backend,
        duration: args.duration,
        level: args.level,
        memory: args.memory,
        buffer_kb: args.buffer_kb,
        command: args.command,
        progress: true,
        no_vmm_cmdlines: args.no_vmm_cmdlines,
    };
    let rec = virtflow_record::record(Host::probe(), &options, &stop)?;
    eprintln!(
        "virtflow record: wrote {} ({} bytes, {} events enabled, {:.1} s{}{})",
        rec.out.display(),
        rec.bytes,
        rec.events.len(),
        rec.elapsed.as_secs_f64(),
        lost_words(rec.backend, &rec.out, rec.lost_events),
        if rec.interrupted {
            ", stopped by Ctrl-C"
        } else {
            ""
        }
    );
    if let Some(sidecar) = &rec.vmm_sidecar {
        let pids: Vec<String> = rec.vmms.iter().map(|v| v.pid.to_string()).collect();
        eprintln!(
            "virtflow record: {} VMM process{} seen{}{}; command lines saved to {}{}",
            rec.vmms.len(),
            if rec.vmms.len() == 1 { "" } else { "es" },
            if pids.is_empty() { "" } else { ", pid " },
            pids.join(", "),
            sidecar.display(),
            if rec.vmm_markers > 0 {
                " and into the trace"
            } else {
                ""
            }
        );
    }
    if let Some(status) = rec.command_status.filter(|s| !s.success()) {
        eprintln!("virtflow record: note: the traced command exited with {status}");
    }
    if args.no_analyze {
        return Ok(());
    }
    // `analyze` runs as its own process so that its options and output stay its own.
    let exe = std::env::current_exe().context("finding the virtflow executable")?;
    let status = Command::new(exe)
        .arg("analyze")
        .arg(&rec.out)
        .status()
        .context("running virtflow analyze")?;
    if !status.success() {
        anyhow::bail!(
            "`virtflow analyze {}` failed ({status}); the trace is kept",
            rec.out.display()
        );
    }
    Ok(())
}

/// The events lost while recording, as the summary line says them. perf tells at its end only
/// how many chunks it lost; the LOST records it writes into perf.data count the events, so
/// they are counted from the trace. The other backends report the count themselves.
fn lost_words(backend: Backend, out: &Path, reported: Option<u64>) -> String {
    match backend {
        Backend::Perf => match lost_in_perf_data(out) {
            Ok((0, _)) => ", no event lost".to_string(),
            Ok((events, records)) => {
                format!(", {events} events lost ({records} loss records in the trace)")
            }
            Err(e) => format!(", lost events not counted ({e})"),
        },
        _ => reported.map_or(String::new(), |l| format!(", {l} events lost")),
    }
}

/// The events a perf.data's LOST and LOST_SAMPLES records count, and how many records: the
/// whole file read, no event class decoded.
fn lost_in_perf_data(path: &Path) -> Result<(u64, u64), virtflow_trace::TraceError> {
    let mut source = virtflow_ftrace::PerfSource::open(path)?;
    let stats = virtflow_trace::drain::counts(&mut source)?;
    Ok((stats.lost_events, stats.lost_notices))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A perf recording's summary says how many events were lost, counted from the trace.
    #[test]
    fn a_perf_recording_says_its_lost_events() {
        let trace = &virtflow_testkit::shared_traces().join("kvm-lab/s1_idle/perf.data");
        assert_eq!(lost_words(Backend::Perf, trace, None), ", no event lost");
        // perf's own end-of-run count is of chunks, not events: the trace's count is said.
        assert_eq!(lost_words(Backend::Perf, trace, Some(3)), ", no event lost");
        let missing = Path::new("/nonexistent/perf.data");
        assert!(lost_words(Backend::Perf, missing, None)
            .starts_with(", lost events not counted (/nonexistent/perf.data: "));
        assert_eq!(
            lost_words(Backend::Tracefs, trace, Some(7)),
            ", 7 events lost"
        );
        assert_eq!(lost_words(Backend::Lttng, trace, None), "");
    }
}

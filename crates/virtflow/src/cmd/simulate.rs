//! `virtflow simulate`: writes a simulated KVM host trace and its ground truth (`truth.json`).
//!
//! A run that would take more than about a second (the `large` scenario, long durations)
//! says first what it will write — from a pilot run of the scenario's first simulated
//! second, scaled to the duration — then how far it got, every second, on standard error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use virtflow_model::Isa;
use virtflow_sim::{parse_duration, simulate, Config, Format, Scenario};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// idle, cpu, disk, net, mixed, overcommit, processes, nested, multihost, large, memory,
    /// phases or requests
    pub scenario: String,
    /// Output directory (created): the trace and truth.json.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Trace format: ctf (LTTng kernel layout), dat (trace-cmd) or text (ftrace).
    #[arg(long, default_value = "dat")]
    pub format: String,
    /// Seed of the random generator: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated time, e.g. 2s, 500ms (default depends on the scenario).
    #[arg(long)]
    pub duration: Option<String>,
    /// Number of hosts (multihost).
    #[arg(long, default_value_t = 2)]
    pub hosts: u32,
    /// Exit-reason vocabulary: vmx (Intel) or svm (AMD).
    #[arg(long, default_value = "vmx")]
    pub isa: String,
    /// Number of VMs per host (default depends on the scenario).
    #[arg(long)]
    pub vms: Option<u32>,
    /// vCPUs per VM.
    #[arg(long)]
    pub vcpus: Option<u32>,
    /// Physical CPUs per host.
    #[arg(long)]
    pub pcpus: Option<u32>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let scenario = Scenario::parse(&args.scenario).ok_or_else(|| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        anyhow!(
            "unknown scenario `{}` (one of: {})",
            args.scenario,
            names.join(", ")
        )
    })?;
    let mut cfg = Config::new(scenario);
    cfg.format = Format::parse(&args.format)
        .ok_or_else(|| anyhow!("unknown format `{}` (ctf, dat or text)", args.format))?;
    cfg.seed = args.seed;
    if let Some(d) = &args.duration {
        cfg.duration_ns =
            parse_duration(d).ok_or_else(|| anyhow!("bad duration `{d}` (e.g. 2s, 500ms)"))?;
    }
    cfg.hosts = args.hosts;
    cfg.isa = match args.isa.as_str() {
        "vmx" | "intel" => Isa::Vmx,
        "svm" | "amd" => Isa::Svm,
        other => anyhow::bail!("unknown isa `{other}` (vmx or svm)"),
    };
    cfg.vms = args.vms;
    cfg.vcpus = args.vcpus;
    cfg.pcpus = args.pcpus;
    let summary = simulate_telling(&cfg, &args.output)
        .with_context(|| format!("writing the simulation into {}", args.output.display()))?;
    for (path, events) in &summary.traces {
        println!("{}: {events} events", path.display());
    }
    println!("{}", summary.truth.display());
    Ok(())
}

/// Simulated time of the pilot run.
const PILOT_NS: u64 = 1_000_000_000;
/// Runs expected to take longer than this say what they will write and show progress.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// What a run is expected to write, scaled from the pilot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Estimate {
    pub bytes: f64,
    pub events: f64,
    pub secs: f64,
}

impl Estimate {
    /// The pilot's output and time, scaled from `pilot_ns` to `duration_ns` of simulated time.
    pub(crate) fn scaled(
        bytes: u64,
        events: u64,
        took: Duration,
        pilot_ns: u64,
        duration_ns: u64,
    ) -> Self {
        let f = duration_ns as f64 / pilot_ns.max(1) as f64;
        Estimate {
            bytes: bytes as f64 * f,
            events: events as f64 * f,
            secs: took.as_secs_f64() * f,
        }
    }

    /// `writing about 5.1 GB (about 170 M events); about 2 min`.
    pub(crate) fn announce(&self) -> String {
        format!(
            "virtflow simulate: writing about {} (about {} events); about {}",
            human_bytes(self.bytes),
            human_count(self.events),
            human_secs(self.secs)
        )
    }

    /// `12 s · 1.2 GB of about 5.1 GB (24%) · about 41 M events`: events estimated from the
    /// bytes at the pilot's bytes per event.
    pub(crate) fn progress(&self, elapsed: Duration, written: u64) -> String {
        let per_event = self.bytes / self.events.max(1.0);
        format!(
            "virtflow simulate: {} · {} of about {} ({:.0}%) · about {} events",
            human_secs(elapsed.as_secs_f64()),
            human_bytes(written as f64),
            human_bytes(self.bytes),
            100.0 * (written as f64 / self.bytes.max(1.0)).min(1.0),
            human_count(written as f64 / per_event.max(1.0))
        )
    }
}

/// [`simulate`], saying first what a long run will write and then, every second, how far it
/// got (see the module documentation).
fn simulate_telling(cfg: &Config, dir: &Path) -> std::io::Result<virtflow_sim::Summary> {
    if cfg.duration_ns <= PILOT_NS {
        return simulate(cfg, dir);
    }
    let pilot_dir = std::env::temp_dir().join(format!("virtflow-pilot-{}", std::process::id()));
    let mut pilot = cfg.clone();
    pilot.duration_ns = PILOT_NS;
    let started = Instant::now();
    let estimate = simulate(&pilot, &pilot_dir).map(|s| {
        let events = s.traces.iter().map(|(_, n)| n).sum();
        Estimate::scaled(
            dir_size(&pilot_dir),
            events,
            started.elapsed(),
            PILOT_NS,
            cfg.duration_ns,
        )
    });
    let _ = std::fs::remove_dir_all(&pilot_dir);
    let estimate = estimate?;
    if estimate.secs < QUIET_FOR.as_secs_f64() {
        return simulate(cfg, dir);
    }
    eprintln!("{}", estimate.announce());
    let started = Instant::now();
    std::thread::scope(|scope| {
        let run = scope.spawn(|| simulate(cfg, dir));
        let terminal = std::io::stderr().is_terminal();
        let mut next = QUIET_FOR;
        while !run.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if started.elapsed() >= next {
                next += QUIET_FOR;
                let line = estimate.progress(started.elapsed(), dir_size(dir));
                if terminal {
                    eprint!("\r\x1b[K{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
        if terminal {
            eprint!("\r\x1b[K");
        }
        run.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Bytes of the files below `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn human_count(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.1} G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.0} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn human_secs(s: f64) -> String {
    if s >= 90.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_scale_the_pilot_and_read_as_sentences() {
        // The large scenario's pilot: 30 MB, 630,000 events in 0.7 s for 1 s of 170 s.
        let e = Estimate::scaled(
            30_000_000,
            630_000,
            Duration::from_millis(700),
            PILOT_NS,
            170 * PILOT_NS,
        );
        assert_eq!(
            e.announce(),
            "virtflow simulate: writing about 5.1 GB (about 107.1 M events); about 2 min"
        );
        assert_eq!(
            e.progress(Duration::from_secs(12), 1_200_000_000),
            "virtflow simulate: 12 s · 1.2 GB of about 5.1 GB (24%) · about 25.2 M events"
        );
    }
}

//! `virtflow simulate`: writes a simulated KVM host trace and its ground truth (`truth.json`).

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use virtflow_model::Isa;
use virtflow_sim::{parse_duration, simulate, Config, Format, Scenario};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// idle, cpu, disk, net, mixed, overcommit, processes, nested, multihost or large
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
    let summary = simulate(&cfg, &args.output)
        .with_context(|| format!("writing the simulation into {}", args.output.display()))?;
    for (path, events) in &summary.traces {
        println!("{}: {events} events", path.display());
    }
    println!("{}", summary.truth.display());
    Ok(())
}

//! `virtflow critical-path TRACE… (--tid N [--host H] | --vm NAME --vcpu N | --process CR3)`:
//! what a thread, a vCPU or a guest process waited for, through the other threads, VMs and
//! hosts of the experiment — the critical path of its execution graph (see
//! `virtflow_analysis`'s graph module and `virtflow_graph::CriticalPath`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::{bail, Context};
use serde::Serialize;
use virtflow_analysis::Options;
use virtflow_graph::{CriticalPath, State, WorkerId};
use virtflow_model::{ExecutionGraph, Model};
use virtflow_trace::Bound;

use crate::input::TraceArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// The host thread whose path to follow.
    #[arg(long, conflicts_with_all = ["vm", "process", "nested"])]
    pub tid: Option<u32>,
    /// The host of --tid, when the experiment has several.
    #[arg(long = "on-host", value_name = "HOST", requires = "tid")]
    pub on_host: Option<String>,
    /// A VM (its name, guest name or pid) whose vCPU (--vcpu) or guest process (--process)
    /// to follow.
    #[arg(long)]
    pub vm: Option<String>,
    /// The vCPU of --vm whose thread to follow, by its number in the VM (0, 1, …).
    #[arg(long, requires = "vm", conflicts_with_all = ["process", "nested"])]
    pub vcpu: Option<u32>,
    /// A guest process by its page-table base (hex `0x…` or decimal), over the time it ran
    /// (the trace must report CR3 at guest entries); with --vm when several VMs have one.
    #[arg(long, value_name = "CR3", conflicts_with = "nested")]
    pub process: Option<String>,
    /// A nested (L2) guest by the address of its nested VMCS/VMCB (hex `0x…` or decimal), over
    /// the time it ran: its waits show what L1 did meanwhile.
    #[arg(long, value_name = "VMCS")]
    pub nested: Option<String>,
    /// From this time (ns on the experiment's clock, or a duration after its start).
    #[arg(long, value_name = "TIME")]
    pub from: Option<Bound>,
    /// Until this time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<Bound>,
    /// Print the path as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One piece of the path, as `--json` gives it.
#[derive(Serialize)]
struct Piece {
    host: Option<String>,
    tid: Option<u32>,
    /// A guest process's page-table base (`0x…`), for its own pieces (`tid` null).
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<String>,
    comm: Option<String>,
    vm: Option<String>,
    vcpu: Option<u32>,
    state: &'static str,
    start: i64,
    end: i64,
}

#[derive(Serialize)]
struct ThreadTotal {
    host: Option<String>,
    tid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<String>,
    comm: Option<String>,
    vm: Option<String>,
    ns: i64,
}

#[derive(Serialize)]
struct Totals {
    by_state: BTreeMap<&'static str, i64>,
    by_thread: Vec<ThreadTotal>,
}

#[derive(Serialize)]
struct Output {
    host: String,
    tid: u32,
    /// The guest process followed, when one was (`tid`: its busiest vCPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<String>,
    start: i64,
    end: i64,
    segments: Vec<Piece>,
    totals: Totals,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.tid.is_none() && args.vm.is_none() && args.process.is_none() && args.nested.is_none() {
        bail!(
            "say whose path to follow: --tid N, --vm NAME --vcpu N, --process CR3 or --nested VMCS"
        );
    }
    let model = crate::input::analyze(
        &args.trace,
        Options {
            graph: true,
            intervals: args.process.is_some() || args.nested.is_some(),
            ..Options::default()
        },
    )?;
    let eg = model
        .graph
        .as_ref()
        .context("the analysis built no execution graph")?;
    let Target {
        host,
        tid,
        process,
        span: default_span,
    } = target(&args, &model)?;
    let nested = args.nested.is_some();
    let worker = match process {
        Some((vm, address)) => eg
            .guest_worker(&host, vm, address, nested)
            .with_context(|| format!("{address:#x} of VM {vm} has no run the graph shows"))?,
        None => eg.worker(&host, tid).with_context(|| {
            format!("thread {tid} of host {host} does nothing in the trace that the graph shows")
        })?,
    };
    let life = eg.graph.life(worker).unwrap_or((0, 0));
    let (lo, hi) = default_span.unwrap_or(life);
    let origin = model.hosts.iter().map(|h| h.start_ns).min().unwrap_or(0);
    let at = |b: Option<Bound>, default: i64| match b {
        Some(Bound::At(ts)) => ts,
        Some(Bound::AfterStart(ns)) => origin + ns,
        None => default,
    };
    let (from, to) = (at(args.from, lo), at(args.to, hi));
    if to <= from {
        bail!("the interval is empty ({from} to {to})");
    }
    let path = CriticalPath::within(&eg.graph, worker, from, to)?;
    let who = Who::new(&model, eg);
    let out = Output {
        host: host.clone(),
        tid,
        process: process.map(|(_, a)| {
            if nested {
                format!("nested guest {a:#x}")
            } else {
                format!("{a:#x}")
            }
        }),
        start: from,
        end: to,
        segments: path
            .segments
            .iter()
            .map(|s| {
                let w = who.of(s.worker);
                Piece {
                    host: w.host,
                    tid: w.tid,
                    process: w.process,
                    comm: w.comm,
                    vm: w.vm,
                    vcpu: w.vcpu,
                    state: s.state.name(),
                    start: s.start,
                    end: s.end,
                }
            })
            .collect(),
        totals: Totals {
            by_state: State::ALL
                .iter()
                .map(|s| (s.name(), path.time_by_state().get(*s)))
                .filter(|(_, ns)| *ns > 0)
                .collect(),
            by_thread: {
                let mut v: Vec<ThreadTotal> = path
                    .time_by_worker()
                    .into_iter()
                    .map(|t| {
                        let w = who.of(t.worker);
                        ThreadTotal {
                            host: w.host,
                            tid: w.tid,
                            process: w.process,
                            comm: w.comm,
                            vm: w.vm,
                            ns: t.time,
                        }
                    })
                    .collect();
                v.sort_by_key(|t| std::cmp::Reverse(t.ns));
                v
            },
        },
    };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer_pretty(&mut w, &out)?;
        writeln!(w)?;
    } else {
        render(&out, origin, &mut w)?;
    }
    Ok(w.flush()?)
}

/// The worker to follow, on its host — a thread, or a guest process of a VM (by pid and
/// CR3; `tid` is then its busiest vCPU's) — and the default interval (a process's runs).
struct Target {
    host: String,
    tid: u32,
    process: Option<(u32, u64)>,
    span: Option<(i64, i64)>,
}

fn target(args: &Args, model: &Model) -> anyhow::Result<Target> {
    if let Some(tid) = args.tid {
        let host = match &args.on_host {
            Some(h) => h.clone(),
            None if model.hosts.len() == 1 => model.hosts[0].name.clone(),
            None => bail!(
                "several hosts: say which with --on-host ({})",
                model
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Ok(Target {
            host,
            tid,
            process: None,
            span: None,
        });
    }
    let vm = match &args.vm {
        Some(name) => Some(
            model
                .vms
                .iter()
                .find(|v| {
                    v.name == *name
                        || v.guest_name.as_deref() == Some(name.as_str())
                        || v.pid.to_string() == *name
                })
                .with_context(|| {
                    format!(
                        "no VM {name:?} (VMs: {})",
                        model
                            .vms
                            .iter()
                            .map(|v| v.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
        ),
        None => None,
    };
    if let (Some(vm), Some(n)) = (vm, args.vcpu) {
        let vcpu = vm
            .vcpus
            .iter()
            .find(|v| v.vcpu == n)
            .with_context(|| format!("VM {} has no vCPU {n}", vm.name))?;
        return Ok(Target {
            host: vm.host.clone(),
            tid: vcpu.tid,
            process: None,
            span: None,
        });
    }
    let (text, nested, what) = match (&args.process, &args.nested) {
        (Some(t), _) => (t.as_str(), false, "--process"),
        (None, Some(t)) => (t.as_str(), true, "--nested"),
        (None, None) => bail!(
            "--vm: say which of its vCPUs (--vcpu N), guest processes (--process CR3) or nested \
             guests (--nested VMCS)"
        ),
    };
    let cr3 = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .with_context(|| format!("{what} {text:?}: an address, hex 0x… or decimal"))?;
    // The VMs that ran it (the one given), and over which time.
    let mut found: Vec<(&virtflow_model::Vm, u32, u64, i64, i64)> = Vec::new();
    for candidate in model
        .vms
        .iter()
        .filter(|v| vm.is_none_or(|vm| vm.pid == v.pid))
    {
        let mut busiest: Option<(u32, u64)> = None;
        let (mut from, mut to) = (i64::MAX, i64::MIN);
        for v in &candidate.vcpus {
            // (address, guest time, runs) of its processes or of its nested guests.
            let runs: Vec<(u64, u64, &[virtflow_model::Span])> = if nested {
                v.nested
                    .iter()
                    .map(|n| (n.vmcs, n.guest_ns, &n.intervals[..]))
                    .collect()
            } else {
                v.processes
                    .iter()
                    .map(|p| (p.cr3, p.guest_ns, &p.intervals[..]))
                    .collect()
            };
            for (_, ns, spans) in runs.into_iter().filter(|(a, ..)| *a == cr3) {
                if busiest.is_none_or(|b| ns > b.1) {
                    busiest = Some((v.tid, ns));
                }
                if let (Some(first), Some(last)) = (spans.first(), spans.last()) {
                    from = from.min(first.start);
                    to = to.max(last.end);
                }
            }
        }
        if let Some((tid, ns)) = busiest {
            found.push((candidate, tid, ns, from, to));
        }
    }
    match found.as_slice() {
        [] if nested => bail!(
            "no nested guest at {cr3:#x}{} (the trace must show nested entries: \
             kvm_nested_vmenter)",
            vm.map(|v| format!(" in VM {}", v.name)).unwrap_or_default()
        ),
        [] => bail!(
            "no guest process with CR3 {cr3:#x}{} (the trace must report CR3 at guest entries)",
            vm.map(|v| format!(" in VM {}", v.name)).unwrap_or_default()
        ),
        [(vm, tid, _, from, to)] => Ok(Target {
            host: vm.host.clone(),
            tid: *tid,
            process: Some((vm.pid, cr3)),
            span: (to > from).then_some((*from, *to)),
        }),
        several => bail!(
            "{cr3:#x} is in several VMs: say which with --vm ({})",
            several
                .iter()
                .map(|(vm, ..)| vm.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Who a worker is, for the output.
struct Who<'a> {
    eg: &'a ExecutionGraph,
    vcpus: HashMap<(&'a str, u32), (&'a str, u32)>,
    helpers: HashMap<(&'a str, u32), &'a str>,
    /// VM names by host and pid.
    names: HashMap<(&'a str, u32), &'a str>,
}

struct WorkerInfo {
    host: Option<String>,
    tid: Option<u32>,
    process: Option<String>,
    comm: Option<String>,
    vm: Option<String>,
    vcpu: Option<u32>,
}

impl<'a> Who<'a> {
    fn new(model: &'a Model, eg: &'a ExecutionGraph) -> Who<'a> {
        let mut vcpus = HashMap::new();
        let mut helpers = HashMap::new();
        let mut names = HashMap::new();
        for vm in &model.vms {
            names.insert((vm.host.as_str(), vm.pid), vm.name.as_str());
            for v in &vm.vcpus {
                vcpus.insert((vm.host.as_str(), v.tid), (vm.name.as_str(), v.vcpu));
            }
            for t in &vm.threads {
                helpers.insert((vm.host.as_str(), t.tid), vm.name.as_str());
            }
        }
        Who {
            eg,
            vcpus,
            helpers,
            names,
        }
    }

    fn of(&self, w: Option<WorkerId>) -> WorkerInfo {
        let Some(info) = w.and_then(|w| self.eg.workers.get(w.index())) else {
            return WorkerInfo {
                host: None,
                tid: None,
                process: None,
                comm: None,
                vm: None,
                vcpu: None,
            };
        };
        if let Some(g) = info.guest {
            return WorkerInfo {
                host: Some(info.host.clone()),
                tid: None,
                process: Some(if g.nested {
                    format!("nested guest {:#x}", g.cr3)
                } else {
                    format!("{:#x}", g.cr3)
                }),
                comm: Some(info.comm.clone()),
                vm: self
                    .names
                    .get(&(info.host.as_str(), g.vm))
                    .map(|n| n.to_string()),
                vcpu: None,
            };
        }
        let key = (info.host.as_str(), info.tid);
        let (vm, vcpu) = match self.vcpus.get(&key) {
            Some((vm, n)) => (Some(vm.to_string()), Some(*n)),
            None => (self.helpers.get(&key).map(|v| v.to_string()), None),
        };
        WorkerInfo {
            host: Some(info.host.clone()),
            tid: Some(info.tid),
            process: None,
            comm: Some(info.comm.clone()),
            vm,
            vcpu,
        }
    }
}

fn seconds(ns: i64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

fn duration(ns: i64) -> String {
    let ns = ns as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// What a state means to someone reading the path.
fn meaning(state: &str) -> &'static str {
    match state {
        "running" => "running",
        "preempted" => "waiting for a CPU",
        "blocked" => "waiting, cause unknown",
        "timer" => "waiting for a timer",
        "disk" => "waiting for the disk",
        "network" => "waiting for the network",
        "ipi" => "waiting for another CPU (IPI)",
        "interrupt" => "waiting for a device interrupt",
        "user_input" => "waiting for the user",
        _ => "unknown",
    }
}

fn who_text(
    host: &Option<String>,
    tid: Option<u32>,
    comm: &Option<String>,
    vm: &Option<String>,
    vcpu: Option<u32>,
) -> String {
    match tid {
        // A guest process's own time: its comm names it.
        None if comm.is_some() => format!(
            "{}/{} [{}]",
            host.as_deref().unwrap_or(""),
            comm.as_deref().unwrap_or(""),
            vm.as_deref().unwrap_or("")
        ),
        None => "(in flight between hosts)".to_string(),
        Some(tid) => {
            let mut s = format!(
                "{}/{tid} {}",
                host.as_deref().unwrap_or(""),
                comm.as_deref().unwrap_or("")
            );
            match (vm, vcpu) {
                (Some(vm), Some(n)) => s.push_str(&format!(" [{vm} vCPU {n}]")),
                (Some(vm), None) => s.push_str(&format!(" [{vm}]")),
                _ => {}
            }
            s
        }
    }
}

fn render(out: &Output, origin: i64, w: &mut dyn Write) -> std::io::Result<()> {
    let total = (out.end - out.start).max(1);
    let whose = match &out.process {
        Some(p) if p.starts_with("nested") => p.clone(),
        Some(cr3) => format!("guest process {cr3}"),
        None => format!("thread {}", out.tid),
    };
    writeln!(
        w,
        "critical path of {whose} on host {}, {} to {} s ({})",
        out.host,
        seconds(out.start - origin),
        seconds(out.end - origin),
        duration(total)
    )?;
    writeln!(w, "\nwhere the time went, by cause:")?;
    let mut states: Vec<(&&str, &i64)> = out.totals.by_state.iter().collect();
    states.sort_by_key(|(_, ns)| std::cmp::Reverse(**ns));
    for (state, ns) in states {
        writeln!(
            w,
            "  {:>6.1}%  {:>10}  {}",
            100.0 * *ns as f64 / total as f64,
            duration(*ns),
            meaning(state)
        )?;
    }
    writeln!(w, "\nby thread:")?;
    for t in out.totals.by_thread.iter().take(10) {
        writeln!(
            w,
            "  {:>6.1}%  {:>10}  {}",
            100.0 * t.ns as f64 / total as f64,
            duration(t.ns),
            who_text(&t.host, t.tid, &t.comm, &t.vm, None)
        )?;
    }
    writeln!(w, "\nthe path ({} pieces):", out.segments.len())?;
    writeln!(
        w,
        "  {:>14} {:>10}  {:<28} thread",
        "start (s)", "duration", "state"
    )?;
    const SHOWN: usize = 60;
    for p in out.segments.iter().take(SHOWN) {
        writeln!(
            w,
            "  {:>14} {:>10}  {:<28} {}",
            seconds(p.start - origin),
            duration(p.end - p.start),
            meaning(p.state),
            who_text(&p.host, p.tid, &p.comm, &p.vm, p.vcpu)
        )?;
    }
    if out.segments.len() > SHOWN {
        writeln!(
            w,
            "  … {} more pieces (--json for all of them)",
            out.segments.len() - SHOWN
        )?;
    }
    Ok(())
}

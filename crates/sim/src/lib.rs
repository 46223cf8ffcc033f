//! A KVM host simulator that writes kernel traces and the ground truth behind them.
//!
//! Principal types:
//!
//! - [`Config`] and [`Scenario`]: what to simulate (`idle`, `cpu`, `disk`, `net`, `mixed`,
//!   `overcommit`, `processes`, `nested`, `multihost`, `large`), for how long, with which seed.
//! - [`host::Host`]: the discrete-event model of one host — pCPUs with run queues, QEMU
//!   processes (vCPU threads, main loop, I/O thread, vhost), host processes, and the guests'
//!   behaviour that drives the KVM run loop. It emits [`event::Event`]s in timestamp order.
//! - [`event::Sink`]: a streaming format writer — [`dat::DatWriter`] (trace-cmd v6),
//!   [`ctf::CtfWriter`] (CTF 1.8, LTTng kernel layout) and [`text::TextWriter`] (ftrace text).
//! - [`truth::Tracker`] and [`truth::Truth`]: the vCPU state timelines derived from the very
//!   events written plus what the simulator knows (why each wake-up happened), as `truth.json`
//!   in the schema of `virtflow analyze --json` (`virtflow_model::Vm`).
//!
//! [`simulate`] runs a configuration into a directory: `trace.dat`, `trace.txt` or `kernel/`
//! (CTF) plus `truth.json`; with several hosts, one sub-directory per host (`host0/`…).
//! [`write_demo`] writes the small trace the binary uses as its built-in demo. The same seed gives the same bytes: all randomness
//! comes from one seeded generator and nothing depends on hash order or the wall clock.

#![forbid(unsafe_code)]

pub mod ctf;
pub mod dat;
pub mod event;
pub mod host;
pub mod rng;
pub mod text;
pub mod truth;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use virtflow_model::Isa;

use event::Sink;
use host::{Action, Clock, Host, HostCtx, HostSpec, VmSpec, Workload};
use rng::Rng;
use truth::{ClockTruth, HostTruth, Tracker, Truth};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Idle,
    Cpu,
    Disk,
    Net,
    Mixed,
    Overcommit,
    Processes,
    Nested,
    Multihost,
    Large,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::Idle,
        Scenario::Cpu,
        Scenario::Disk,
        Scenario::Net,
        Scenario::Mixed,
        Scenario::Overcommit,
        Scenario::Processes,
        Scenario::Nested,
        Scenario::Multihost,
        Scenario::Large,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Cpu => "cpu",
            Scenario::Disk => "disk",
            Scenario::Net => "net",
            Scenario::Mixed => "mixed",
            Scenario::Overcommit => "overcommit",
            Scenario::Processes => "processes",
            Scenario::Nested => "nested",
            Scenario::Multihost => "multihost",
            Scenario::Large => "large",
        }
    }
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
    /// Simulated time when none is given (ns).
    pub fn default_duration(self) -> u64 {
        match self {
            // About 100 million events at the large host's event rate.
            Scenario::Large => 170_000_000_000,
            Scenario::Idle => 3_000_000_000,
            _ => 1_000_000_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Ctf,
    Dat,
    Text,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "ctf" => Some(Format::Ctf),
            "dat" => Some(Format::Dat),
            "text" | "txt" => Some(Format::Text),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Format::Ctf => "ctf",
            Format::Dat => "dat",
            Format::Text => "text",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub scenario: Scenario,
    pub format: Format,
    pub seed: u64,
    /// Simulated duration (ns).
    pub duration_ns: u64,
    pub hosts: u32,
    pub isa: Isa,
    pub vms: Option<u32>,
    pub vcpus: Option<u32>,
    pub pcpus: Option<u32>,
}

impl Config {
    pub fn new(scenario: Scenario) -> Config {
        Config {
            scenario,
            format: Format::Dat,
            seed: 1,
            duration_ns: scenario.default_duration(),
            hosts: 2,
            isa: Isa::Vmx,
            vms: None,
            vcpus: None,
            pcpus: None,
        }
    }
}

/// What a run wrote.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Per host: the trace path (file for dat/text, directory for CTF) and its event count.
    pub traces: Vec<(PathBuf, u64)>,
    pub truth: PathBuf,
}

/// Parses `1.5s`, `200ms`, `50us`, `10` (seconds).
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e9)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e9)
    } else {
        (s, 1e9)
    };
    let v: f64 = num.trim().parse().ok()?;
    (v > 0.0).then_some((v * mul) as u64)
}

fn vm(name: String, workload: Workload, vcpus: u32) -> VmSpec {
    VmSpec {
        name,
        workload,
        vcpus,
        nested: false,
        processes: false,
        peer: None,
        server: false,
    }
}

/// The hosts of a scenario.
pub fn host_specs(cfg: &Config, rng: &mut Rng) -> Vec<HostSpec> {
    use Workload::*;
    let vcpus = cfg.vcpus.unwrap_or(2).max(1);
    let (pcpus, classes, procs): (u32, Vec<Workload>, u32) = match cfg.scenario {
        Scenario::Idle => (2, vec![Idle], 1),
        Scenario::Cpu | Scenario::Processes | Scenario::Nested => (2, vec![Cpu], 1),
        Scenario::Disk => (2, vec![Disk], 1),
        Scenario::Net => (2, vec![Network], 1),
        Scenario::Mixed => (3, vec![Cpu, Disk, Network, Idle], 3),
        Scenario::Overcommit => (2, vec![Cpu, Cpu, Disk], 1),
        Scenario::Multihost => (2, vec![Network, Network], 1),
        Scenario::Large => (
            16,
            [Cpu, Disk, Network, Idle]
                .iter()
                .cycle()
                .take(16)
                .copied()
                .collect(),
            6,
        ),
    };
    let pcpus = cfg.pcpus.unwrap_or(pcpus).max(1);
    let nvms = cfg.vms.unwrap_or(classes.len() as u32).max(1) as usize;
    let nhosts = if cfg.scenario == Scenario::Multihost {
        cfg.hosts.max(2)
    } else {
        1
    };
    let mut hosts = Vec::new();
    for h in 0..nhosts as usize {
        let mut vms = Vec::new();
        for i in 0..nvms {
            let w = classes[i % classes.len()];
            let mut v = vm(format!("vm{}", i + 1), w, vcpus);
            v.processes = cfg.scenario == Scenario::Processes;
            v.nested = cfg.scenario == Scenario::Nested;
            if cfg.scenario == Scenario::Multihost && i < 2 {
                let n = nhosts as usize;
                if i == 0 {
                    v.name = format!("client{h}");
                    v.peer = Some(((h + 1) % n, 1));
                } else {
                    v.name = format!("server{h}");
                    v.server = true;
                    v.peer = Some(((h + n - 1) % n, 0));
                }
            }
            vms.push(v);
        }
        let clock = if h == 0 {
            Clock {
                offset_ns: 0,
                drift_ppb: 0,
            }
        } else {
            let off = rng.range(1_000_000, 80_000_000) as i64;
            let drift = rng.range(2_000, 60_000) as i64;
            Clock {
                offset_ns: if rng.chance(0.5) { off } else { -off },
                drift_ppb: if rng.chance(0.5) { drift } else { -drift },
            }
        };
        hosts.push(HostSpec {
            name: if nhosts > 1 {
                format!("host{h}")
            } else {
                "host".into()
            },
            pcpus,
            isa: cfg.isa,
            vms,
            host_procs: procs,
            clock,
            first_pid: 1200 + h as u32 * 1000,
            ip: [10, 0, 0, 1 + h as u8],
        });
    }
    hosts
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64, u64);

/// Runs a configuration and writes its traces and `truth.json` into `dir`.
pub fn simulate(cfg: &Config, dir: &Path) -> std::io::Result<Summary> {
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng::new(cfg.seed);
    let specs = host_specs(cfg, &mut rng);
    let multi = specs.len() > 1;
    let mut hosts: Vec<Host> = specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| Host::new(s, &mut rng, i))
        .collect();
    let keep_intervals = cfg.scenario != Scenario::Large;
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut paths = Vec::new();
    let mut trackers = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let base = if multi {
            dir.join(&h.spec.name)
        } else {
            dir.to_path_buf()
        };
        std::fs::create_dir_all(&base)?;
        let (sink, path): (Box<dyn Sink>, PathBuf) = match cfg.format {
            Format::Dat => {
                let p = base.join("trace.dat");
                (
                    Box::new(dat::DatWriter::create(&p, h.spec.pcpus, &h.spec.name)?),
                    p,
                )
            }
            Format::Text => {
                let p = base.join("trace.txt");
                (Box::new(text::TextWriter::create(&p, h.spec.pcpus)?), p)
            }
            Format::Ctf => {
                let p = base.join("kernel");
                let mut uuid = [0u8; 16];
                let mut r = Rng::new(cfg.seed ^ ((i as u64 + 1) * 0x1234_5678));
                for b in &mut uuid {
                    *b = r.next_u64() as u8;
                }
                uuid[6] = (uuid[6] & 0x0f) | 0x40;
                uuid[8] = (uuid[8] & 0x3f) | 0x80;
                (
                    Box::new(ctf::CtfWriter::create(
                        &p,
                        h.spec.pcpus,
                        uuid,
                        &h.spec.name,
                    )?),
                    p,
                )
            }
        };
        sinks.push(sink);
        paths.push(path);
        trackers.push(Tracker::new(&h.vms, &h.roles, keep_intervals));
    }

    let t0: u64 = 10_000_000_000;
    let end = t0 + cfg.duration_ns;
    let mut heap: BinaryHeap<Reverse<(Key, usize, ActionBox)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut queue = Vec::new();
    let mut wire = Vec::new();
    let mut hops: Vec<host::Hop> = Vec::new();
    for (i, h) in hosts.iter_mut().enumerate() {
        let mut ctx = HostCtx {
            queue: &mut queue,
            wire: &mut wire,
            hops: &mut hops,
        };
        h.start(t0, &mut ctx);
        for s in queue.drain(..) {
            seq += 1;
            heap.push(Reverse((Key(s.at, seq), i, ActionBox(s.action))));
        }
    }
    let mut err: Option<std::io::Error> = None;
    while let Some(Reverse((Key(now, _), hi, ActionBox(action)))) = heap.pop() {
        if now > end {
            break;
        }
        let h = &mut hosts[hi];
        let (sink, tracker) = (&mut sinks[hi], &mut trackers[hi]);
        for ev in h.drain_before(now) {
            tracker.event(&ev, &h.vms, |t| h.names.comm_ref(t).to_string());
            if err.is_none() {
                if let Err(e) = sink.event(&ev, &h.names) {
                    err = Some(e);
                }
            }
        }
        if let Some(e) = err.take() {
            return Err(e);
        }
        let mut ctx = HostCtx {
            queue: &mut queue,
            wire: &mut wire,
            hops: &mut hops,
        };
        h.act(now, action, &mut ctx);
        for s in queue.drain(..) {
            seq += 1;
            heap.push(Reverse((Key(s.at.max(now), seq), hi, ActionBox(s.action))));
        }
        for (at, dh, dvm, vcpu, tcp) in wire.drain(..) {
            seq += 1;
            heap.push(Reverse((
                Key(at, seq),
                dh,
                ActionBox(Action::PacketIn { vm: dvm, vcpu, tcp }),
            )));
        }
    }
    drop(heap);

    let host_names: Vec<String> = hosts.iter().map(|h| h.spec.name.clone()).collect();
    let task_comms: Vec<event::TaskNames> = hosts.iter().map(|h| h.names.clone()).collect();
    let mut host_truths = Vec::new();
    let mut all_vms = Vec::new();
    let mut procs = Vec::new();
    let mut summary = Vec::new();
    for (i, (mut h, tracker)) in hosts.into_iter().zip(trackers).enumerate() {
        let mut tracker = tracker;
        for ev in h.drain_before(u64::MAX) {
            tracker.event(&ev, &h.vms, |t| h.names.comm_ref(t).to_string());
            sinks[i].event(&ev, &h.names)?;
        }
        let written = sinks[i].finish(&h.names)?;
        let (start, last) = tracker.span();
        let events = tracker.events;
        let (vms, p) = tracker.finish(&h.vms, &h.spec.name, cfg.isa);
        all_vms.extend(vms);
        procs.extend(p);
        let rel = paths[i]
            .strip_prefix(dir)
            .unwrap_or(&paths[i])
            .to_string_lossy()
            .into_owned();
        host_truths.push(HostTruth {
            name: h.spec.name.clone(),
            cpus: h.spec.pcpus,
            trace: rel,
            start_ns: start as i64,
            end_ns: last as i64,
            events,
            clock: ClockTruth {
                slope: h.spec.clock.slope(),
                offset_ns: h.spec.clock.offset_ns,
            },
        });
        summary.push((paths[i].clone(), written));
    }
    let truth = Truth {
        scenario: cfg.scenario.name().into(),
        seed: cfg.seed,
        isa: cfg.isa,
        format: cfg.format.name().into(),
        hosts: host_truths,
        vms: all_vms,
        guest_processes: procs,
        critical_path: critical_path(&hops, &host_names, &task_comms),
        intervals: keep_intervals,
    };
    let truth_path = dir.join("truth.json");
    let f = std::io::BufWriter::new(std::fs::File::create(&truth_path)?);
    serde_json::to_writer(f, &truth).map_err(std::io::Error::other)?;
    Ok(Summary {
        traces: summary,
        truth: truth_path,
    })
}

/// The critical path of the last request a client on the first host saw answered: from its
/// network kick to the wake-up by the answer, hop by hop (vhost sending, the wire, the remote
/// vhost, the remote vCPU…). Times are in the first host's clock, which is the reference.
fn critical_path(
    hops: &[host::Hop],
    hosts: &[String],
    names: &[event::TaskNames],
) -> Vec<truth::PathSegment> {
    // A flow is complete when its answer woke a vCPU on the host that started it.
    let origin = |f: u32| (f >> 24) as usize - 1;
    let done = hops
        .iter()
        .rev()
        .find(|h| h.what == "wake" && origin(h.flow) == 0 && h.host == 0)
        .map(|h| h.flow);
    let Some(flow) = done else {
        return Vec::new();
    };
    let chain: Vec<&host::Hop> = hops.iter().filter(|h| h.flow == flow).collect();
    let mut out = Vec::new();
    for w in chain.windows(2) {
        let (a, b) = (w[0], w[1]);
        let wire = a.what == "send" && b.what == "receive";
        let (host, tid) = if wire { (a.host, 0) } else { (b.host, b.tid) };
        let comm = if wire {
            String::new()
        } else {
            names[host].comm_ref(tid).to_string()
        };
        out.push(truth::PathSegment {
            host: hosts[host].clone(),
            tid,
            comm,
            start_ns: a.at as i64,
            end_ns: b.at as i64,
            what: match (a.what, b.what) {
                ("send", "receive") => "network",
                ("kick", "send") => "vhost_transmit",
                ("receive", "wake") => "vhost_receive",
                ("wake", "kick") => "vcpu_running",
                _ => "other",
            }
            .into(),
        });
    }
    out
}

/// Orders actions by time then creation only (the action itself never decides the order).
struct ActionBox(Action);
impl PartialEq for ActionBox {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for ActionBox {}
impl PartialOrd for ActionBox {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ActionBox {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// The demo's configuration: a mixed host with a few VMs, small and fixed.
pub fn demo_config() -> Config {
    let mut c = Config::new(Scenario::Mixed);
    c.seed = 42;
    c.duration_ns = 300_000_000;
    c.format = Format::Dat;
    c
}

/// Writes the built-in demo trace into `dir` and returns the path of the file to open.
pub fn write_demo(dir: &Path) -> std::io::Result<PathBuf> {
    let s = simulate(&demo_config(), dir)?;
    Ok(s.traces[0].0.clone())
}

//! A KVM host simulator that writes kernel traces and the ground truth behind them.
//!
//! Principal types:
//!
//! - [`Config`] and [`Scenario`]: what to simulate (`idle`, `cpu`, `disk`, `net`, `mixed`,
//!   `overcommit`, `processes`, `nested`, `multihost`, `large`, `memory`, `phases`,
//!   `requests`), for how long, with which seed.
//! - [`host::Host`]: the discrete-event model of one host — pCPUs with run queues, QEMU
//!   processes (vCPU threads, main loop, I/O thread, vhost), host processes, and the guests'
//!   behaviour that drives the KVM run loop. It emits [`event::Event`]s in timestamp order.
//! - [`event::Sink`]: a streaming format writer — [`dat::DatWriter`] (trace-cmd v6),
//!   [`ctf::CtfWriter`] (CTF 1.8, LTTng kernel layout) and [`text::TextWriter`] (ftrace text).
//! - [`truth::Tracker`] and [`truth::Truth`]: the vCPU state timelines derived from the very
//!   events written plus what the simulator knows (why each wake-up happened), as `truth.json`
//!   in the schema of `virtflow analyze --json` (`virtflow_model::Vm`); for the `requests`
//!   scenario, each request's critical path ([`truth::paths`]).
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
pub mod kmem;
pub mod rng;
pub mod text;
pub mod truth;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use virtflow_model::Isa;

use event::Sink;
use host::{Action, Clock, Host, HostCtx, HostSpec, MemTouch, VmSpec, Workload};
use rng::Rng;
use truth::paths::HostPaths;
use truth::{ClockTruth, HostTruth, Phase, Tracker, Truth, TruthVm};

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
    /// Host memory: three VMs on three pCPUs, two host processes (`backup`, `sshd`) and
    /// the memory kernel threads (`ksmd`, `kswapd0`, `kcompactd0`); every thread's pages are
    /// traced (`kmem:mm_page_alloc`, `mm_page_free`, `mm_page_free_batched`, `ksm:ksm_enter`,
    /// `ksm_merge_one_page`; LTTng has no KSM events).
    ///
    /// What moves memory:
    ///
    /// - a vCPU's EPT violation is, with a VM's `fault_alloc` probability, the first touch of a
    ///   guest page: KVM allocates a host page in the vCPU thread (order 0,
    ///   `GFP_HIGHUSER_MOVABLE`, or with probability `thp` a 2 MiB THP, order 9,
    ///   `GFP_TRANSHUGE`): vm1 (cpu) 0.3 with THP 0.02, vm2 (network) 0.6 without THP, vm3
    ///   (disk) 0.6 with THP 0.05;
    /// - the VMM's main loop (every 5–25 ms): its `ksm_enter` the first time it runs, one or
    ///   two pages of its own 30% of the time, and with probability `balloon` (vm2 0.4, up to
    ///   16 pages; vm3 0.2, up to 8; vm1 never) guest pages returned to the host: pages its
    ///   vCPUs allocated and 0–2 pages allocated before the trace, freed in the main thread;
    /// - the I/O thread allocates a page per block request and frees it at the completion;
    ///   vhost allocates a page for half the packets it receives and frees it at once;
    /// - host processes and the kernel worker allocate 0–5 pages per burst, free 0–3 of their
    ///   own, and a quarter of the time 1–3 pages allocated before the trace;
    /// - `kswapd0` (every ~40 ms) frees 4–24 pages of any owner plus 0–6 older than the trace;
    ///   `kcompactd0` (every ~80 ms) migrates 1–8 order-0 pages of any owner: a new page
    ///   allocated in its context, the old one freed;
    /// - `ksmd` (every ~20 ms) merges 0–3 zero-filled pages of VMs whose `ksm_enter` is at
    ///   least 1 ms old with the zero page (`use_zero_pages`; three quarters of them pages
    ///   their vCPUs allocated during the trace, the rest older): `ksm_merge_one_page` with
    ///   the zero page's pfn and the VM's `mm`, as the kernel traces that merge, then the
    ///   merged page freed in ksmd's context (`mm_page_free`, order 0); 8% of merges fail
    ///   (`err` −14) and free nothing. Merges into KSM pages, which the kernel traces with
    ///   `ksm_merge_with_ksm_page`, are not simulated.
    ///
    /// Order-0 frees in batches take the kernel's batched path: an `mm_page_free` for each page,
    /// then an `mm_page_free_batched` for each.
    ///
    /// The rules of the truth (the analysis follows the same):
    ///
    /// - a page is `4096 << order` bytes;
    /// - an allocation is charged to the thread the event runs in, and through it to its VM
    ///   when the thread is a vCPU, the VMM's main thread, its I/O thread or its vhost thread;
    /// - a free returns the page (of the allocation's order) to whoever allocated it (found by
    ///   pfn), whichever thread frees it: the owner's VM `freed_bytes` and the host's
    ///   `freed_bytes`; a free of a pfn not allocated during the trace is the host's
    ///   `freed_unowned_bytes`; a pfn allocated again without a free first goes back to its
    ///   first owner;
    /// - `mm_page_free_batched` frees one order-0 page only in a trace without `mm_page_free`:
    ///   the kernel emits it after the `mm_page_free` of the same page (`free_unref_folios`;
    ///   all 9,220 of the real `m1_memory` trace follow one on the same CPU), so counting both
    ///   would free the page twice;
    /// - `net_bytes` = `allocated_bytes − freed_bytes`, for a VM and for the host (unowned
    ///   frees apart); a VM's `peak_bytes` is the most it held (allocated − freed since the
    ///   start) at the end of a bucket; the host's `ledger_pages` are the pages (of any order)
    ///   allocated during the trace and not freed at the end, `ledger_peak_pages` the most at
    ///   once;
    /// - a KSM merge (`err` 0) counts for the VM whose `mm` a `ksm_enter` tied to it
    ///   (`ksm_enter` runs in the VMM process's context), and for the host;
    /// - series, per bucket of the host's time line: allocated bytes at the allocation's time,
    ///   freed bytes at the free's time charged to the owner's VM; the host's hold every
    ///   allocation and every owned free; `traced` says the trace has page events.
    Memory,
    /// Workloads that change: three VMs of two vCPUs on four pCPUs whose workload changes, at
    /// fractions of the duration `d` (18 s by default): vm1 idle for `d/9`, cpu until `5d/9`,
    /// then disk; vm2 network until `4d/9`, then idle; vm3 cpu until `d/2`, then network
    /// (by default: vm1 2 s idle, 8 s cpu, 8 s disk; vm2 8 s network, 10 s idle; vm3 9 s cpu,
    /// 9 s network). A phase starts with the guest's timer firing on the vCPUs the new work
    /// needs; an ended workload stops by itself (the guest halts, the disk loop issues nothing
    /// more, the outside client stops). The truth's `vms[].phases` tile the host's span on its
    /// trace clock.
    Phases,
    /// Requests whose critical path is known: on `host0` (4 pCPUs, a `backup` process
    /// competing for them), four VMs whose vCPU 0 issues requests one at a time and halts
    /// until each completes (see `host::requests`): vm1 to its disk (through its I/O thread),
    /// vm2 as a chain of IPIs through its vCPUs 1 and 2, vm3 over the network to `host1`'s
    /// server VM, vm4 from its nested L2 guest to L1's vCPU 1; on `host1` (2 pCPUs, its own
    /// clock), the server — which also answers a client outside the traced hosts, whose
    /// packets no trace pairs — and a CPU-bound VM that competes with it. Interrupt handlers
    /// are traced (a disk completion and a packet wake their thread from a softirq). `--vms`
    /// and `--vcpus` do not apply.
    ///
    /// The truth's `requests` give, for each request its vCPU blocked for once and that its
    /// completion ended, the vCPU thread, the interval from the exit that issued it to the
    /// entry where its guest runs on, and the critical path the bounded algorithm gives over
    /// it, derived from what each thread did and what truly woke it (see `truth::paths`).
    Requests,
}

impl Scenario {
    pub const ALL: [Scenario; 13] = [
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
        Scenario::Memory,
        Scenario::Phases,
        Scenario::Requests,
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
            Scenario::Memory => "memory",
            Scenario::Phases => "phases",
            Scenario::Requests => "requests",
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
            Scenario::Memory => 2_000_000_000,
            // Phases of several seconds each.
            Scenario::Phases => 18_000_000_000,
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
        outside: None,
        memory: None,
        phases: Vec::new(),
        request: None,
    }
}

/// The VMs of the `requests` scenario's host `h` (see [`Scenario::Requests`]).
fn request_vms(h: usize) -> Vec<VmSpec> {
    use host::Request;
    let requester = |name: &str, request: Request, vcpus: u32| VmSpec {
        request: Some(request),
        ..vm(name.to_string(), Workload::Idle, vcpus)
    };
    if h == 0 {
        vec![
            requester("vm1", Request::Disk, 1),
            requester("vm2", Request::Ipi, 3),
            VmSpec {
                peer: Some((1, 0)),
                ..requester("vm3", Request::Network, 1)
            },
            VmSpec {
                nested: true,
                ..requester("vm4", Request::Nested, 2)
            },
        ]
    } else {
        vec![
            VmSpec {
                peer: Some((0, 2)),
                server: true,
                outside: Some(3_000_000),
                ..vm("server".into(), Workload::Network, 1)
            },
            vm("busy".into(), Workload::Cpu, 1),
        ]
    }
}

/// The workloads of VM `vm` of the `phases` scenario over a run of `d` ns: (time after the
/// start, workload), the first at 0.
pub fn phase_plan(vm: usize, d: u64) -> Vec<(u64, Workload)> {
    use Workload::*;
    match vm % 3 {
        0 => vec![(0, Idle), (d / 9, Cpu), (5 * d / 9, Disk)],
        1 => vec![(0, Network), (4 * d / 9, Idle)],
        _ => vec![(0, Cpu), (d / 2, Network)],
    }
}

/// How each VM of the `memory` scenario moves its memory (see [`Scenario::Memory`]).
fn memory_touch(vm: usize) -> MemTouch {
    match vm % 3 {
        0 => MemTouch {
            fault_alloc: 0.3,
            thp: 0.02,
            balloon: 0.0,
            balloon_pages: 1,
        },
        1 => MemTouch {
            fault_alloc: 0.6,
            thp: 0.0,
            balloon: 0.4,
            balloon_pages: 16,
        },
        _ => MemTouch {
            fault_alloc: 0.6,
            thp: 0.05,
            balloon: 0.2,
            balloon_pages: 8,
        },
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
        Scenario::Memory => (3, vec![Cpu, Network, Disk], 2),
        Scenario::Phases => (4, vec![Idle, Network, Cpu], 1),
        // The VMs are `request_vms`'.
        Scenario::Requests => (4, vec![Idle], 1),
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
    let nhosts = match cfg.scenario {
        Scenario::Multihost => cfg.hosts.max(2),
        Scenario::Requests => 2,
        _ => 1,
    };
    let mut hosts = Vec::new();
    for h in 0..nhosts as usize {
        let mut vms = Vec::new();
        for i in 0..nvms {
            let w = classes[i % classes.len()];
            let mut v = vm(format!("vm{}", i + 1), w, vcpus);
            v.processes = cfg.scenario == Scenario::Processes;
            v.nested = cfg.scenario == Scenario::Nested;
            if cfg.scenario == Scenario::Memory {
                v.memory = Some(memory_touch(i));
            }
            if cfg.scenario == Scenario::Phases {
                let plan = phase_plan(i, cfg.duration_ns);
                v.workload = plan[0].1;
                v.phases = plan[1..].to_vec();
            }
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
        let requests = cfg.scenario == Scenario::Requests;
        if requests {
            vms = request_vms(h);
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
            pcpus: if requests && h > 0 {
                cfg.pcpus.unwrap_or(2).max(1)
            } else {
                pcpus
            },
            isa: cfg.isa,
            vms,
            host_procs: if requests && h > 0 { 0 } else { procs },
            clock,
            first_pid: 1200 + h as u32 * 1000,
            ip: [10, 0, 0, 1 + h as u8],
            memory: cfg.scenario == Scenario::Memory,
            irq_events: requests,
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
    for (i, h) in hosts.iter().enumerate() {
        let memory = h.spec.memory;
        let irq = h.spec.irq_events;
        let base = if multi {
            dir.join(&h.spec.name)
        } else {
            dir.to_path_buf()
        };
        std::fs::create_dir_all(&base)?;
        let (sink, path): (Box<dyn Sink>, PathBuf) = match cfg.format {
            Format::Dat => {
                let p = base.join("trace.dat");
                let w = dat::DatWriter::create(&p, h.spec.pcpus, &h.spec.name)?;
                let w = if memory { w.with_memory_events() } else { w };
                let w = if irq { w.with_irq_events() } else { w };
                (Box::new(w), p)
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
                let w = ctf::CtfWriter::create(&p, h.spec.pcpus, uuid, &h.spec.name)?;
                let w = if memory { w.with_memory_events() } else { w };
                let w = if irq { w.with_irq_events() } else { w };
                (Box::new(w), p)
            }
        };
        sinks.push(sink);
        paths.push(path);
    }

    let t0: u64 = 10_000_000_000;
    let end = t0 + cfg.duration_ns;
    let mut heap: BinaryHeap<Reverse<(Key, usize, ActionBox)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut queue = Vec::new();
    let mut wire = Vec::new();
    for (i, h) in hosts.iter_mut().enumerate() {
        let mut ctx = HostCtx {
            queue: &mut queue,
            wire: &mut wire,
        };
        h.start(t0, &mut ctx);
        for s in queue.drain(..) {
            seq += 1;
            heap.push(Reverse((Key(s.at, seq), i, ActionBox(s.action))));
        }
    }
    let mut trackers: Vec<Tracker> = hosts
        .iter()
        .map(|h| {
            let current = h.current_tids();
            Tracker::new(&h.vms, &h.roles, keep_intervals, current, h.spec.memory)
        })
        .collect();
    let mut err: Option<std::io::Error> = None;
    while let Some(Reverse((Key(now, _), hi, ActionBox(action)))) = heap.pop() {
        if now > end {
            break;
        }
        let h = &mut hosts[hi];
        let (sink, tracker) = (&mut sinks[hi], &mut trackers[hi]);
        for ev in h.drain_before(now) {
            if !sink.writes(&ev.kind) {
                continue;
            }
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

    let mut host_paths = Vec::new();
    let mut host_truths = Vec::new();
    let mut all_vms = Vec::new();
    let mut procs = Vec::new();
    let mut causes = Vec::new();
    let mut summary = Vec::new();
    for (i, (mut h, tracker)) in hosts.into_iter().zip(trackers).enumerate() {
        let mut tracker = tracker;
        for ev in h.drain_before(u64::MAX) {
            if !sinks[i].writes(&ev.kind) {
                continue;
            }
            tracker.event(&ev, &h.vms, |t| h.names.comm_ref(t).to_string());
            sinks[i].event(&ev, &h.names)?;
        }
        let written = sinks[i].finish(&h.names)?;
        if let Some(mut timelines) = h.timelines.take() {
            timelines.finish();
            host_paths.push(HostPaths {
                name: h.spec.name.clone(),
                vms: h.vms.iter().map(|v| v.spec.name.clone()).collect(),
                timelines,
                requests: std::mem::take(&mut h.requests),
            });
        }
        let (start, last) = tracker.span();
        let events = tracker.events;
        let r = tracker.finish(&h.vms, &h.spec.name, cfg.isa, &h.names);
        for (vm, info) in r.vms.into_iter().zip(&h.vms) {
            let phases = phases_truth(&info.spec, &h.spec.clock, t0, start, last);
            all_vms.push(TruthVm { vm, phases });
        }
        procs.extend(r.guest_processes);
        causes.extend(r.causes);
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
            buckets: Some(r.buckets),
            overcommit: r.overcommit,
            memory: r.memory,
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
        overcommit_causes: causes,
        guest_processes: procs,
        // Only LTTng's network events carry the TCP header that pairs a packet across hosts.
        requests: truth::paths::request_truths(&host_paths, cfg.format == Format::Ctf),
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

/// A VM's workload phases on its host's trace clock, tiling `[start, last]`: none for a VM
/// whose workload never changes.
fn phases_truth(spec: &VmSpec, clock: &Clock, t0: u64, start: u64, last: u64) -> Vec<Phase> {
    if spec.phases.is_empty() {
        return Vec::new();
    }
    let mut out = vec![Phase {
        start: start as i64,
        end: last as i64,
        workload: spec.workload.name().into(),
    }];
    for &(after, w) in &spec.phases {
        let at = clock.apply(t0 + after);
        if at <= start || at >= last {
            continue;
        }
        out.last_mut().expect("a first phase").end = at as i64;
        out.push(Phase {
            start: at as i64,
            end: last as i64,
            workload: w.name().into(),
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

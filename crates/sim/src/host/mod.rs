//! The discrete-event model of KVM hosts: pCPUs with run queues, QEMU processes (vCPU threads,
//! main loop, I/O thread, vhost), host processes, and the guest behaviour that drives exits.
//!
//! Time advances through one queue of [`Action`]s shared by every host, so that packets can
//! cross from one host to another. A step of a task emits its events at, or a little after, the
//! step's time; each host keeps them in a small reorder buffer and releases them in timestamp
//! order once the simulation clock has passed them (nothing can be emitted in the past).
//!
//! One concept per file, all of them methods of the one [`Host`]:
//!
//! - this module: the specifications, the [`Host`] with its tasks and VMs, the actions and
//!   their dispatch, and the reorder buffer the events leave through;
//! - `sched`: pCPUs and run queues — wake-ups, switches, wake-up and tick preemption, migration,
//!   idle balancing;
//! - `vcpu`: the KVM run loop of a vCPU thread — exit reasons by ISA, exits, user-space exits,
//!   HLT with halt polling then blocking, interrupt delivery, injection at entry, the APIC
//!   timer;
//! - `guest`: what the guest does between exits — its reaction to each injected vector, and when
//!   and why it exits next;
//! - `devices`: the helper threads (I/O thread, vhost, VMM main loop, host processes), block and
//!   network devices, packets across hosts, and the irqfd MSIs the helpers raise;
//! - `memory`: host page allocations and frees by the thread that makes them, reclaim,
//!   compaction and KSM (the `memory` scenario);
//! - `phases`: a VM's workload switched at given times (the `phases` scenario);
//! - `requests`: a vCPU that issues requests one at a time and halts until each completes
//!   (the `requests` scenario), and the record of each request for the truth.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use virtflow_model::{Isa, WaitCause};

use crate::event::{Event, IrqContext, Kind, Origin, TaskName, TaskNames, Tcp};
use crate::rng::Rng;
use crate::truth::paths::Timelines;

mod devices;
mod guest;
mod memory;
mod phases;
mod requests;
mod sched;
mod vcpu;

use devices::{Dev, HelperSt};
use guest::GuestOp;
pub use memory::MemTouch;
use memory::{Mem, MemThread};
pub use requests::{Request, RequestRecord};
use sched::{Cpu, IDLE};
pub use vcpu::{exit_name, isa_number, ExitKind};
use vcpu::{VPhase, VStep, VcpuSt};

pub const VEC_TIMER: u8 = 0xec;
pub const VEC_RESCHED: u8 = 0xfd;
pub const VEC_CALL_SINGLE: u8 = 0xfb;

/// The guest workload class of a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Idle,
    Cpu,
    Disk,
    Network,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Idle => "idle",
            Workload::Cpu => "cpu",
            Workload::Disk => "disk",
            Workload::Network => "network",
        }
    }
}

#[derive(Clone, Debug)]
pub struct VmSpec {
    pub name: String,
    pub workload: Workload,
    pub vcpus: u32,
    /// The guest runs its own L2 guests (nested virtualisation).
    pub nested: bool,
    /// Guest processes with distinct CR3 values, reported at each entry.
    pub processes: bool,
    /// Network peer: (host index, vm index) whose VM this one sends requests to.
    pub peer: Option<(usize, usize)>,
    /// Serves requests from a peer instead of generating them.
    pub server: bool,
    /// A client outside the traced hosts sends it a packet every this many ns on average,
    /// besides its peer's (a network VM without a peer gets only that, every 400 µs).
    pub outside: Option<u64>,
    /// How its memory moves, when the host's page events are traced.
    pub memory: Option<MemTouch>,
    /// Later workloads: (time after the start, workload), in time order; `workload` is the
    /// first.
    pub phases: Vec<(u64, Workload)>,
    /// Its vCPU 0 issues requests of this kind one at a time and halts until each completes;
    /// the VM then raises no interrupt the requests do not need (see `requests`).
    pub request: Option<Request>,
}

/// The host's trace clock relative to the reference (simulation) time:
/// `host_ns = reference_ns + offset_ns + reference_ns * drift_ppb / 1e9`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub offset_ns: i64,
    pub drift_ppb: i64,
}

impl Clock {
    pub fn apply(&self, t: u64) -> u64 {
        let drift = (t as i128 * self.drift_ppb as i128) / 1_000_000_000;
        (t as i128 + self.offset_ns as i128 + drift) as u64
    }
    pub fn slope(&self) -> f64 {
        1.0 + self.drift_ppb as f64 / 1e9
    }
}

#[derive(Clone, Debug)]
pub struct HostSpec {
    pub name: String,
    pub pcpus: u32,
    pub isa: Isa,
    pub vms: Vec<VmSpec>,
    /// Host user processes competing for CPUs (e.g. a backup job).
    pub host_procs: u32,
    pub clock: Clock,
    /// First QEMU pid on this host.
    pub first_pid: u32,
    pub ip: [u8; 4],
    /// Page and KSM events: the memory kernel threads (ksmd, kswapd0, kcompactd0) run, and
    /// host processes allocate and free pages.
    pub memory: bool,
    /// Interrupt handlers are traced: a disk completion and a packet from the wire are
    /// handled in a hard interrupt then a softirq (`irq_handler_*`, `softirq_*`), which wake
    /// the I/O thread or vhost; and every thread's states are kept for the truth's critical
    /// paths.
    pub irq_events: bool,
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Running,
    Runnable,
    Blocked,
}

#[derive(Clone, Debug)]
enum Role {
    Vcpu(Box<VcpuSt>),
    Io(HelperSt),
    Vhost(HelperSt),
    Main(HelperSt),
    HostProc(HelperSt),
}

#[derive(Clone, Debug)]
struct Task {
    tid: u32,
    /// When the `sched_switch` that blocked it was emitted (a waking must come after).
    blocked_at: u64,
    /// When the `sched_wakeup` that made it runnable was emitted (a switch-in comes after).
    ready_at: u64,
    cpu: usize,
    run: Run,
    gen: u64,
    slice_start: u64,
    role: Role,
}

fn vcpu(t: &Task) -> &VcpuSt {
    match &t.role {
        Role::Vcpu(v) => v,
        _ => unreachable!("not a vCPU thread"),
    }
}

fn vcpu_mut(t: &mut Task) -> &mut VcpuSt {
    match &mut t.role {
        Role::Vcpu(v) => v,
        _ => unreachable!("not a vCPU thread"),
    }
}

fn helper_mut(t: &mut Task) -> Option<&mut HelperSt> {
    match &mut t.role {
        Role::Io(h) | Role::Vhost(h) | Role::Main(h) | Role::HostProc(h) => Some(h),
        Role::Vcpu(_) => None,
    }
}

/// A VM on a host, as the model and the truth know it.
#[derive(Clone, Debug)]
pub struct VmInfo {
    pub spec: VmSpec,
    /// The workload of the current phase.
    pub workload: Workload,
    pub pid: u32,
    pub vcpu_tasks: Vec<usize>,
    pub vcpu_tids: Vec<u32>,
    pub main_tid: u32,
    pub io_tid: u32,
    pub vhost_tid: u32,
    io_task: usize,
    vhost_task: usize,
    pub disk_vector: u8,
    pub net_rx_vector: u8,
    pub net_tx_vector: u8,
    pub other_vector: u8,
    next_sector: u64,
    tcp_seq: u32,
    tcp_ack: u32,
    pub ip: [u8; 4],
    tx_count: u32,
}

impl VmInfo {
    /// Which class each device vector of this VM serves.
    pub fn vector_class(&self, vec: u32) -> WaitCause {
        let v = vec as u8;
        if v == VEC_TIMER {
            WaitCause::Timer
        } else if v == VEC_RESCHED || v == VEC_CALL_SINGLE {
            WaitCause::Task
        } else if v == self.disk_vector {
            WaitCause::Disk
        } else if v == self.net_rx_vector || v == self.net_tx_vector {
            WaitCause::Network
        } else {
            WaitCause::Other
        }
    }
}

/// What a tid is, for the truth (preemptors) and the helpers' roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TidRole {
    Vcpu { vm: usize, vcpu: u32 },
    Helper { vm: usize },
    HostProcess,
    KernelThread,
}

// ---------------------------------------------------------------------------------------------
// One host

pub struct Host {
    pub spec: HostSpec,
    pub names: TaskNames,
    pub vms: Vec<VmInfo>,
    tasks: Vec<Task>,
    cpus: Vec<Cpu>,
    rng: Rng,
    out: BinaryHeap<Reverse<Pending>>,
    out_seq: u64,
    /// Tid → role, for the truth.
    pub roles: Vec<(u32, TidRole)>,
    pub cr3_base: u64,
    index: usize,
    mem: Mem,
    /// Every thread's states on the reference clock, with what ended each wait, when the
    /// host's critical paths are part of the truth (`irq_events`).
    pub timelines: Option<Timelines>,
    /// The requests its vCPUs completed as the `requests` scenario defines them.
    pub requests: Vec<RequestRecord>,
}

/// An event waiting in the reorder buffer. Events of equal timestamps leave in CPU order, as
/// `trace-cmd report` merges its per-CPU buffers (a CPU's own events never tie).
struct Pending {
    ts: u64,
    seq: u64,
    ev: Event,
}
impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.ev.cpu, self.seq) == (o.ts, o.ev.cpu, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, self.ev.cpu, self.seq).cmp(&(o.ts, o.ev.cpu, o.seq))
    }
}

/// A scheduled happening; `host` indexes the world's hosts.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    Step {
        task: usize,
        gen: u64,
    },
    Tick {
        cpu: usize,
    },
    GuestTimer {
        task: usize,
        gen: u64,
    },
    DiskDone {
        vm: usize,
        vcpu: u32,
    },
    /// A packet for `vm` arrives at the host NIC.
    PacketIn {
        vm: usize,
        vcpu: u32,
        tcp: Tcp,
    },
    /// An outside client sends a packet to a network VM.
    ExternalTraffic {
        vm: usize,
    },
    WakeHelper {
        task: usize,
    },
    Resched {
        cpu: usize,
    },
    /// A VM's next workload phase begins.
    SetWorkload {
        vm: usize,
        workload: Workload,
    },
}

/// Work the host asks the world to schedule.
pub struct Scheduled {
    pub at: u64,
    pub action: Action,
}

pub struct HostCtx<'a> {
    pub queue: &'a mut Vec<Scheduled>,
    /// Packets leaving this host for another: (arrival time, dest host, dest vm, vcpu, tcp).
    pub wire: &'a mut Vec<(u64, usize, usize, u32, Tcp)>,
}

impl Host {
    pub fn new(spec: HostSpec, rng: &mut Rng, host_index: usize) -> Host {
        let mut rng = rng.fork(host_index as u64 + 1);
        // The memory model's generator, taken without drawing from the others.
        let mem_rng = rng.clone().fork(0x006d_656d);
        let ncpu = spec.pcpus as usize;
        let cpus = (0..ncpu).map(|_| Cpu::idle()).collect();
        let mut h = Host {
            names: TaskNames::default(),
            vms: Vec::new(),
            tasks: Vec::new(),
            cpus,
            rng: rng.fork(7),
            out: BinaryHeap::new(),
            out_seq: 0,
            roles: Vec::new(),
            cr3_base: 0x1_0a00_0000 + host_index as u64 * 0x1000_0000,
            index: host_index,
            mem: Mem::new(mem_rng),
            timelines: spec.irq_events.then(Timelines::default),
            requests: Vec::new(),
            spec,
        };
        h.build(&mut rng);
        h.mem_init();
        h
    }

    fn add_task(&mut self, tid: u32, pid: u32, comm: String, role: Role, run: Run) -> usize {
        let cpu = self.tasks.len() % self.cpus.len();
        self.names.add(TaskName {
            tid,
            pid,
            comm,
            prio: 120,
        });
        self.tasks.push(Task {
            tid,
            blocked_at: 0,
            ready_at: 0,
            cpu,
            run,
            gen: 0,
            slice_start: 0,
            role,
        });
        self.tasks.len() - 1
    }

    fn build(&mut self, rng: &mut Rng) {
        let mut pid = self.spec.first_pid;
        let specs = self.spec.vms.clone();
        for (vi, vs) in specs.iter().enumerate() {
            let vm_pid = pid;
            let main = self.add_task(
                vm_pid,
                vm_pid,
                "qemu-system-x86".into(),
                Role::Main(HelperSt::new(Some(vi))),
                Run::Blocked,
            );
            let io = self.add_task(
                vm_pid + 6,
                vm_pid,
                "IO iothread0".into(),
                Role::Io(HelperSt::new(Some(vi))),
                Run::Blocked,
            );
            let vhost_tid = vm_pid + 11;
            let vhost = self.add_task(
                vhost_tid,
                vhost_tid,
                format!("vhost-{vm_pid}"),
                Role::Vhost(HelperSt::new(Some(vi))),
                Run::Blocked,
            );
            let mut vcpu_tasks = Vec::new();
            let mut vcpu_tids = Vec::new();
            for c in 0..vs.vcpus {
                let tid = vm_pid + 12 + c;
                // A VM of requests works only on its requests.
                let busy = vs.request.is_none() && (vs.workload == Workload::Cpu || vs.nested);
                let st = VcpuSt::new(vi, c, busy);
                let t = self.add_task(
                    tid,
                    vm_pid,
                    format!("CPU {c}/KVM"),
                    Role::Vcpu(Box::new(st)),
                    Run::Blocked,
                );
                vcpu_tasks.push(t);
                vcpu_tids.push(tid);
                self.roles.push((tid, TidRole::Vcpu { vm: vi, vcpu: c }));
            }
            for tid in [vm_pid, vm_pid + 6, vhost_tid] {
                self.roles.push((tid, TidRole::Helper { vm: vi }));
            }
            // Device vectors are assigned at guest boot: different per VM.
            let base = 0x22 + (rng.range(0, 3) as u8) * 2 + (vi as u8 % 2);
            let ip = [10, 0, self.spec.ip[3], 10 + vi as u8];
            self.vms.push(VmInfo {
                spec: vs.clone(),
                workload: vs.workload,
                pid: vm_pid,
                vcpu_tasks,
                vcpu_tids,
                main_tid: vm_pid,
                io_tid: vm_pid + 6,
                vhost_tid,
                io_task: io,
                vhost_task: vhost,
                disk_vector: base + 1,
                net_rx_vector: base + 3,
                net_tx_vector: base + 4,
                other_vector: base,
                next_sector: 2048 + rng.range(0, 1 << 20) * 8,
                tcp_seq: rng.next_u64() as u32,
                tcp_ack: rng.next_u64() as u32,
                ip,
                tx_count: 0,
            });
            let _ = main;
            pid += 40;
        }
        let comms = ["backup", "sshd", "rsyslogd", "kworker/u16:2"];
        for i in 0..self.spec.host_procs {
            let tid = pid + i * 3;
            let comm = comms[i as usize % comms.len()];
            let kthread = comm.starts_with("kworker");
            let t = self.add_task(
                tid,
                tid,
                comm.into(),
                Role::HostProc(HelperSt::new(None)),
                Run::Blocked,
            );
            let _ = t;
            self.roles.push((
                tid,
                if kthread {
                    TidRole::KernelThread
                } else {
                    TidRole::HostProcess
                },
            ));
        }
        if self.spec.memory {
            for k in MemThread::ALL {
                let mut h = HelperSt::new(None);
                h.mem = Some(k);
                self.add_task(
                    k.tid(),
                    k.tid(),
                    k.comm().into(),
                    Role::HostProc(h),
                    Run::Blocked,
                );
                self.roles.push((k.tid(), TidRole::KernelThread));
            }
        }
    }

    /// Puts the initial tasks on CPUs and schedules the first actions.
    pub fn start(&mut self, t0: u64, ctx: &mut HostCtx) {
        let ncpu = self.cpus.len();
        let mut next_cpu = 0;
        // vCPUs start in guest mode on the first free pCPUs; the rest start halted.
        let vcpus: Vec<usize> = self.vms.iter().flat_map(|v| v.vcpu_tasks.clone()).collect();
        for (k, &ti) in vcpus.iter().enumerate() {
            let period = self.tick_period(ti);
            let first_timer = t0 + self.rng.range(100_000, period);
            if next_cpu < ncpu && k < ncpu {
                let cpu = next_cpu;
                next_cpu += 1;
                self.cpus[cpu].current = ti;
                let t = &mut self.tasks[ti];
                t.cpu = cpu;
                t.run = Run::Running;
                t.slice_start = t0;
                let v = vcpu_mut(t);
                v.phase = VPhase::Guest;
                v.run_start = t0;
                let exit_at = t0 + self.rng.range(5_000, 60_000);
                let gen = t.gen;
                ctx.queue.push(Scheduled {
                    at: exit_at,
                    action: Action::Step { task: ti, gen },
                });
            } else {
                let t = &mut self.tasks[ti];
                t.cpu = k % ncpu;
                t.run = Run::Blocked;
                let v = vcpu_mut(t);
                v.phase = VPhase::Halted;
                v.step = VStep::Enter;
                v.halted_at = t0;
            }
            self.arm_timer(ti, first_timer, ctx);
        }
        for cpu in 0..ncpu {
            ctx.queue.push(Scheduled {
                at: t0 + 1_000_000 + cpu as u64 * 137_000,
                action: Action::Tick { cpu },
            });
        }
        for vi in 0..self.vms.len() {
            let main = self.task_of_tid(self.vms[vi].main_tid);
            ctx.queue.push(Scheduled {
                at: t0 + self.rng.range(1_000_000, 20_000_000),
                action: Action::WakeHelper { task: main },
            });
            self.begin_workload(t0, vi, ctx);
            for &(after, workload) in &self.vms[vi].spec.phases {
                ctx.queue.push(Scheduled {
                    at: t0 + after,
                    action: Action::SetWorkload { vm: vi, workload },
                });
            }
        }
        for ti in 0..self.tasks.len() {
            if matches!(self.tasks[ti].role, Role::HostProc(_)) {
                ctx.queue.push(Scheduled {
                    at: t0 + self.rng.range(100_000, 5_000_000),
                    action: Action::WakeHelper { task: ti },
                });
            }
        }
    }

    /// The task each pCPU runs, 0 for its idle task (after [`Host::start`], before any
    /// action).
    pub fn current_tids(&self) -> Vec<u32> {
        self.cpus
            .iter()
            .map(|c| {
                if c.current == IDLE {
                    0
                } else {
                    self.tasks[c.current].tid
                }
            })
            .collect()
    }

    fn task_of_tid(&self, tid: u32) -> usize {
        self.tasks.iter().position(|t| t.tid == tid).unwrap_or(0)
    }

    // ----- actions ----------------------------------------------------------------------------

    pub fn act(&mut self, now: u64, action: Action, ctx: &mut HostCtx) {
        match action {
            Action::Step { task, gen } => {
                if self.tasks[task].gen == gen && self.tasks[task].run == Run::Running {
                    match self.tasks[task].role {
                        Role::Vcpu(_) => self.vcpu_step(now, task, ctx),
                        _ => self.helper_step(now, task, ctx),
                    }
                }
            }
            Action::Tick { cpu } => self.tick(now, cpu, ctx),
            Action::Resched { cpu } => self.resched(now, cpu, ctx),
            Action::GuestTimer { task, gen } => self.guest_timer(now, task, gen, ctx),
            Action::DiskDone { vm, vcpu } => self.disk_done(now, vm, vcpu, ctx),
            Action::PacketIn { vm, vcpu, tcp } => self.packet_in(now, vm, vcpu, tcp, ctx),
            Action::ExternalTraffic { vm } => self.external_traffic(now, vm, ctx),
            Action::WakeHelper { task } => self.wake_helper(now, task, ctx),
            Action::SetWorkload { vm, workload } => self.set_workload(now, vm, workload, ctx),
        }
    }

    // ----- emission ---------------------------------------------------------------------------

    fn emit(&mut self, ts: u64, cpu: usize, kind: Kind) -> u64 {
        let c = &self.cpus[cpu];
        let cur = c.current;
        let tid = if cur == IDLE { 0 } else { self.tasks[cur].tid };
        self.emit_as(ts, cpu, tid, kind)
    }

    /// Emits on `cpu` no earlier than `ts` and after everything already emitted there, so
    /// that a CPU's events keep the order in which they were decided (an interrupt's events
    /// never interleave with a task's). Returns the timestamp used.
    fn emit_as(&mut self, ts: u64, cpu: usize, tid: u32, kind: Kind) -> u64 {
        let c = &mut self.cpus[cpu];
        let ts = ts.max(c.last_emit + 1);
        c.last_emit = ts;
        self.out_seq += 1;
        self.out.push(Reverse(Pending {
            ts,
            seq: self.out_seq,
            ev: Event {
                ts,
                cpu: cpu as u32,
                tid,
                kind,
            },
        }));
        ts
    }

    /// Releases the buffered events older than `now`, in order, with the host clock applied
    /// (the threads' timelines, when kept, take them on the reference clock first).
    pub fn drain_before(&mut self, now: u64) -> Vec<Event> {
        let mut v = Vec::new();
        while let Some(Reverse(p)) = self.out.peek() {
            if p.ts >= now {
                break;
            }
            let Reverse(mut p) = self.out.pop().unwrap();
            if let Some(t) = &mut self.timelines {
                t.event(&p.ev);
            }
            p.ev.ts = self.spec.clock.apply(p.ev.ts);
            v.push(p.ev);
        }
        v
    }

    /// Runs `handler` as the interrupt handler of `context` on `cpu`: the wake-ups it makes
    /// know where they ran (the trace shows it by the handler's entry and exit events, which
    /// the caller emits).
    fn in_irq<T>(
        &mut self,
        cpu: usize,
        context: IrqContext,
        packet: Option<Origin>,
        handler: impl FnOnce(&mut Host) -> T,
    ) -> T {
        let outer = self.cpus[cpu].irq.replace((context, packet));
        let r = handler(self);
        self.cpus[cpu].irq = outer;
        r
    }
}

//! The discrete-event model of KVM hosts: pCPUs with run queues, QEMU processes (vCPU threads,
//! main loop, I/O thread, vhost), host processes, and the guest behaviour that drives exits.
//!
//! Time advances through one queue of [`Action`]s shared by every host, so that packets can
//! cross from one host to another. A step of a task emits its events at, or a little after, the
//! step's time; each host keeps them in a small reorder buffer and releases them in timestamp
//! order once the simulation clock has passed them (nothing can be emitted in the past).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use virtflow_model::{Isa, WaitCause};

use crate::event::{Event, Kind, TaskName, TaskNames, Tcp};
use crate::rng::Rng;

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
}

// ---------------------------------------------------------------------------------------------
// Exit reasons

/// What made the guest exit, independent of the ISA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    Hlt,
    /// A host interrupt arrived while in guest mode.
    Intr,
    MsrWrite,
    MsrRead,
    /// A nested page fault / EPT violation handled in the kernel.
    PageFault,
    /// A write to a virtio notification address (ioeventfd: handled in the kernel).
    Kick,
    /// Port I/O forwarded to the VMM's user space.
    PortIo,
    Cpuid,
    Pause,
    /// Interrupt window: another interrupt is pending.
    IntrWindow,
    /// An IPI sent by writing the x2APIC ICR.
    IcrWrite,
    /// L1 launching or resuming its L2 guest.
    NestedRun,
}

impl ExitKind {
    pub fn code(self, isa: Isa) -> u32 {
        match isa {
            Isa::Vmx => match self {
                ExitKind::Hlt => 12,
                ExitKind::Intr => 1,
                ExitKind::MsrWrite => 32,
                ExitKind::MsrRead => 31,
                ExitKind::PageFault => 48,
                ExitKind::Kick => 49,
                ExitKind::PortIo => 30,
                ExitKind::Cpuid => 10,
                ExitKind::Pause => 40,
                ExitKind::IntrWindow => 7,
                ExitKind::IcrWrite => 32,
                ExitKind::NestedRun => 24,
            },
            Isa::Svm => match self {
                ExitKind::Hlt => 0x078,
                ExitKind::Intr => 0x060,
                ExitKind::MsrWrite | ExitKind::MsrRead | ExitKind::IcrWrite => 0x07c,
                ExitKind::PageFault | ExitKind::Kick => 0x400,
                ExitKind::PortIo => 0x07b,
                ExitKind::Cpuid => 0x072,
                ExitKind::Pause => 0x077,
                ExitKind::IntrWindow => 0x064,
                ExitKind::NestedRun => 0x080,
            },
        }
    }
    /// Mean time in the kernel from the exit to the next entry (ns).
    fn handling(self) -> u64 {
        match self {
            ExitKind::Hlt => 2_500,
            ExitKind::Intr => 1_800,
            ExitKind::MsrWrite | ExitKind::MsrRead => 1_200,
            ExitKind::PageFault => 3_500,
            ExitKind::Kick => 4_000,
            ExitKind::PortIo => 2_000,
            ExitKind::Cpuid => 900,
            ExitKind::Pause => 800,
            ExitKind::IntrWindow => 900,
            ExitKind::IcrWrite => 2_000,
            ExitKind::NestedRun => 3_000,
        }
    }
}

/// Exit reason names as the kernel's `kvm_exit` format prints them.
pub fn exit_name(isa: Isa, code: u64) -> String {
    match isa {
        Isa::Vmx => match code & 0xffff {
            0 => "EXCEPTION_NMI",
            1 => "EXTERNAL_INTERRUPT",
            7 => "INTERRUPT_WINDOW",
            10 => "CPUID",
            12 => "HLT",
            24 => "VMRESUME",
            30 => "IO_INSTRUCTION",
            31 => "MSR_READ",
            32 => "MSR_WRITE",
            40 => "PAUSE_INSTRUCTION",
            48 => "EPT_VIOLATION",
            49 => "EPT_MISCONFIG",
            52 => "PREEMPTION_TIMER",
            _ => return format!("{code}"),
        }
        .into(),
        Isa::Svm => match code {
            0x060 => "interrupt",
            0x064 => "vintr",
            0x072 => "cpuid",
            0x077 => "pause",
            0x078 => "hlt",
            0x07b => "io",
            0x07c => "msr",
            0x080 => "vmrun",
            0x400 => "npf",
            _ => return format!("0x{code:x}"),
        }
        .into(),
    }
}

pub fn isa_number(isa: Isa) -> u32 {
    match isa {
        Isa::Vmx => 1,
        Isa::Svm => 2,
    }
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Running,
    Runnable,
    Blocked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VPhase {
    Guest,
    Kernel,
    User,
    Halted,
}

/// What a vCPU thread does at its next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VStep {
    Enter,
    Exit(ExitKind),
    /// After the kernel part of a user-space exit.
    ToUser,
    /// Back from user space: re-enter.
    FromUser,
    /// After a HLT with nothing pending: poll for `halt_poll_ns`, then give up the CPU.
    Block,
    /// The halt-polling window ended without an interrupt: sleep.
    PollEnd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GuestOp {
    Kick(Dev),
    Ipi(u32, u8),
    ArmTimer,
    PortIo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dev {
    Disk,
    Net,
}

#[derive(Clone, Debug)]
struct VcpuSt {
    vm: usize,
    idx: u32,
    phase: VPhase,
    step: VStep,
    /// Vectors waiting for injection (device, IPI), in arrival order.
    pending: Vec<u8>,
    /// The APIC timer fired and awaits acceptance by this thread.
    timer_pending: bool,
    timer_gen: u64,
    /// Guest CPU work left before it idles (u64::MAX: always busy).
    work: u64,
    todo: VecDeque<(u64, GuestOp)>,
    run_start: u64,
    halted_at: u64,
    woke_from_halt: bool,
    /// An interrupt ended halt polling (no sleep).
    poll_hit: bool,
    in_l2: bool,
    /// The request/response whose packet this vCPU was last given.
    flow: u32,
    /// Index of the current guest process (processes scenario).
    proc_idx: u32,
    last_tick: u64,
}

#[derive(Clone, Copy, Debug)]
enum Job {
    /// Submit a guest disk request to the host block layer.
    DiskSubmit { vcpu: u32 },
    /// Signal a finished disk request to the guest.
    DiskComplete { vcpu: u32 },
    /// Guest → wire.
    NetTx { vcpu: u32, flow: u32 },
    /// Wire → guest.
    NetRx { vcpu: u32, flow: u32 },
    /// The VMM main loop's periodic housekeeping (timers, legacy devices).
    MainTick,
    /// A host process's CPU burst (ns left).
    Burst(u64),
}

#[derive(Clone, Debug)]
struct HelperSt {
    vm: Option<usize>,
    jobs: VecDeque<Job>,
    /// The job in progress and its remaining CPU time.
    cur: Option<(Job, u64)>,
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

struct Cpu {
    current: usize, // task index; IDLE for the idle task
    rq: VecDeque<usize>,
    need_resched: bool,
    /// The last time an event was emitted on this CPU: switches come after it.
    last_emit: u64,
    switch_pending: bool,
}

const IDLE: usize = usize::MAX;

/// A VM on a host, as the model and the truth know it.
#[derive(Clone, Debug)]
pub struct VmInfo {
    pub spec: VmSpec,
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
    next_flow: u32,
}

struct Pending {
    ts: u64,
    seq: u64,
    ev: Event,
}
impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
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
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
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
}

/// Work the host asks the world to schedule.
pub struct Scheduled {
    pub at: u64,
    pub action: Action,
}

/// A step of a request/response across hosts, for the multihost critical path.
#[derive(Clone, Copy, Debug)]
pub struct Hop {
    pub flow: u32,
    pub host: usize,
    pub tid: u32,
    /// Reference (simulation) time.
    pub at: u64,
    pub what: &'static str,
}

pub struct HostCtx<'a> {
    pub hops: &'a mut Vec<Hop>,
    pub queue: &'a mut Vec<Scheduled>,
    /// Packets leaving this host for another: (arrival time, dest host, dest vm, vcpu, tcp).
    pub wire: &'a mut Vec<(u64, usize, usize, u32, Tcp)>,
}

impl Host {
    pub fn new(spec: HostSpec, rng: &mut Rng, host_index: usize) -> Host {
        let mut rng = rng.fork(host_index as u64 + 1);
        let ncpu = spec.pcpus as usize;
        let cpus = (0..ncpu)
            .map(|_| Cpu {
                current: IDLE,
                rq: VecDeque::new(),
                need_resched: false,
                last_emit: 0,
                switch_pending: false,
            })
            .collect();
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
            next_flow: 0,
            spec,
        };
        h.build(&mut rng);
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
        let helper = |vm| HelperSt {
            vm,
            jobs: VecDeque::new(),
            cur: None,
        };
        let mut pid = self.spec.first_pid;
        let specs = self.spec.vms.clone();
        for (vi, vs) in specs.iter().enumerate() {
            let vm_pid = pid;
            let main = self.add_task(
                vm_pid,
                vm_pid,
                "qemu-system-x86".into(),
                Role::Main(helper(Some(vi))),
                Run::Blocked,
            );
            let io = self.add_task(
                vm_pid + 6,
                vm_pid,
                "IO iothread0".into(),
                Role::Io(helper(Some(vi))),
                Run::Blocked,
            );
            let vhost_tid = vm_pid + 11;
            let vhost = self.add_task(
                vhost_tid,
                vhost_tid,
                format!("vhost-{vm_pid}"),
                Role::Vhost(helper(Some(vi))),
                Run::Blocked,
            );
            let mut vcpu_tasks = Vec::new();
            let mut vcpu_tids = Vec::new();
            for c in 0..vs.vcpus {
                let tid = vm_pid + 12 + c;
                let busy = vs.workload == Workload::Cpu || vs.nested;
                let st = VcpuSt {
                    vm: vi,
                    idx: c,
                    phase: VPhase::Guest,
                    step: VStep::Exit(ExitKind::Intr),
                    pending: Vec::new(),
                    timer_pending: false,
                    timer_gen: 0,
                    work: if busy { u64::MAX } else { 0 },
                    todo: VecDeque::new(),
                    run_start: 0,
                    halted_at: 0,
                    woke_from_halt: false,
                    poll_hit: false,
                    in_l2: false,
                    flow: 0,
                    proc_idx: c,
                    last_tick: 0,
                };
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
                Role::HostProc(helper(None)),
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
            match self.vms[vi].spec.workload {
                Workload::Disk => {
                    // The guest's I/O loop starts on vCPU 0.
                    let ti = self.vms[vi].vcpu_tasks[0];
                    let v = vcpu_mut(&mut self.tasks[ti]);
                    v.todo.push_back((20_000, GuestOp::Kick(Dev::Disk)));
                    v.work = v.work.max(25_000);
                }
                Workload::Network => {
                    let s = &self.vms[vi].spec;
                    if s.peer.is_none() && !s.server {
                        ctx.queue.push(Scheduled {
                            at: t0 + self.rng.range(50_000, 500_000),
                            action: Action::ExternalTraffic { vm: vi },
                        });
                    } else if s.peer.is_some() {
                        let ti = self.vms[vi].vcpu_tasks[0];
                        let v = vcpu_mut(&mut self.tasks[ti]);
                        v.todo.push_back((30_000, GuestOp::Kick(Dev::Net)));
                        v.work = v.work.max(35_000);
                    }
                }
                _ => {}
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

    fn task_of_tid(&self, tid: u32) -> usize {
        self.tasks.iter().position(|t| t.tid == tid).unwrap_or(0)
    }

    fn tick_period(&self, ti: usize) -> u64 {
        let v = vcpu(&self.tasks[ti]);
        match self.vms[v.vm].spec.workload {
            Workload::Cpu => 4_000_000,
            Workload::Idle => 30_000_000,
            _ => 12_000_000,
        }
    }

    fn arm_timer(&mut self, ti: usize, at: u64, ctx: &mut HostCtx) {
        let v = vcpu_mut(&mut self.tasks[ti]);
        v.timer_gen += 1;
        let gen = v.timer_gen;
        ctx.queue.push(Scheduled {
            at,
            action: Action::GuestTimer { task: ti, gen },
        });
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

    /// Releases the buffered events older than `now`, in order, with the host clock applied.
    pub fn drain_before(&mut self, now: u64) -> Vec<Event> {
        let mut v = Vec::new();
        while let Some(Reverse(p)) = self.out.peek() {
            if p.ts >= now {
                break;
            }
            let Reverse(mut p) = self.out.pop().unwrap();
            p.ev.ts = self.spec.clock.apply(p.ev.ts);
            v.push(p.ev);
        }
        v
    }

    /// A host interrupt on `cpu`: a vCPU in guest mode there exits first. Returns when the
    /// handler's events can be emitted.
    fn irq_enter(&mut self, now: u64, cpu: usize, ctx: &mut HostCtx) -> u64 {
        let cur = self.cpus[cpu].current;
        if cur != IDLE {
            if let Role::Vcpu(v) = &self.tasks[cur].role {
                if v.phase == VPhase::Guest {
                    // The exit comes first, then the handler (the pending planned exit is void).
                    self.tasks[cur].gen += 1;
                    self.vcpu_exit(now, cur, ExitKind::Intr, ctx);
                    return now + 700;
                }
            }
        }
        now
    }

    // ----- scheduler --------------------------------------------------------------------------

    /// Wakes a blocked task from `waker_cpu` at `now` (in the context current there).
    fn wake(
        &mut self,
        now: u64,
        waker_cpu: usize,
        ti: usize,
        cause: Option<WaitCause>,
        ctx: &mut HostCtx,
    ) {
        if self.tasks[ti].run != Run::Blocked {
            return;
        }
        // The waking follows the switch that blocked the task, whatever the order of decisions.
        let now = now.max(self.tasks[ti].blocked_at + 100);
        let prev_cpu = self.tasks[ti].cpu;
        let target = if self.cpus[prev_cpu].current == IDLE && self.cpus[prev_cpu].rq.is_empty() {
            prev_cpu
        } else {
            (0..self.cpus.len())
                .find(|&c| self.cpus[c].current == IDLE && self.cpus[c].rq.is_empty())
                .unwrap_or_else(|| {
                    // No idle CPU: the shortest run queue, the previous CPU on a tie.
                    (0..self.cpus.len())
                        .min_by_key(|&c| (self.cpus[c].rq.len(), c != prev_cpu, c))
                        .unwrap_or(prev_cpu)
                })
        };
        let tid = self.tasks[ti].tid;
        self.emit(
            now,
            waker_cpu,
            Kind::SchedWaking {
                tid,
                target_cpu: target as u32,
                cause,
            },
        );
        if target != prev_cpu {
            self.emit(
                now + 150,
                waker_cpu,
                Kind::SchedMigrate {
                    tid,
                    orig_cpu: prev_cpu as u32,
                    dest_cpu: target as u32,
                },
            );
        }
        let woken = self.emit(
            now + 400,
            waker_cpu,
            Kind::SchedWakeup {
                tid,
                target_cpu: target as u32,
            },
        );
        let t = &mut self.tasks[ti];
        t.run = Run::Runnable;
        t.cpu = target;
        t.ready_at = woken + 100;
        self.cpus[target].rq.push_back(ti);
        let cur = self.cpus[target].current;
        if cur != IDLE && now.saturating_sub(self.tasks[cur].slice_start) >= 1_000_000 {
            // Wake-up preemption: the sleeper has less virtual runtime than a task that has
            // run for longer than the wake-up granularity.
            self.cpus[target].need_resched = true;
            if let Role::Vcpu(v) = &self.tasks[cur].role {
                if v.phase == VPhase::Guest {
                    self.force_exit(now + 2_000, cur, ctx);
                }
            }
        }
        if self.cpus[target].current == IDLE && !self.cpus[target].switch_pending {
            self.cpus[target].switch_pending = true;
            let at = now + self.rng.range(1_500, 6_000);
            ctx.queue.push(Scheduled {
                at,
                action: Action::Resched { cpu: target },
            });
        }
    }

    /// Switches `cpu` from its current task (left in `prev_state`) to the next runnable one.
    fn switch(&mut self, now: u64, cpu: usize, prev_state: i64, ctx: &mut HostCtx) {
        let now = now.max(self.cpus[cpu].last_emit + 200);
        self.cpus[cpu].switch_pending = false;
        self.cpus[cpu].need_resched = false;
        let prev = self.cpus[cpu].current;
        let mut next = self.cpus[cpu].rq.pop_front();
        if next.is_none() {
            // Idle balance: pull a waiting task from the busiest other run queue.
            let src = (0..self.cpus.len())
                .filter(|&c| c != cpu && self.cpus[c].current != IDLE)
                .max_by_key(|&c| (self.cpus[c].rq.len(), std::cmp::Reverse(c)));
            if let Some(src) = src {
                let ready = self.cpus[src]
                    .rq
                    .front()
                    .is_some_and(|&ti| self.tasks[ti].ready_at <= now);
                let pulled = if ready {
                    self.cpus[src].rq.pop_front()
                } else {
                    None
                };
                if let Some(ti) = pulled {
                    let tid = self.tasks[ti].tid;
                    self.emit(
                        now,
                        cpu,
                        Kind::SchedMigrate {
                            tid,
                            orig_cpu: src as u32,
                            dest_cpu: cpu as u32,
                        },
                    );
                    self.tasks[ti].cpu = cpu;
                    next = Some(ti);
                }
            }
        }
        let next_i = next.unwrap_or(IDLE);
        if prev == next_i {
            return;
        }
        if prev == IDLE && next_i == IDLE {
            return;
        }
        let prev_tid = if prev == IDLE {
            0
        } else {
            self.tasks[prev].tid
        };
        let next_tid = if next_i == IDLE {
            0
        } else {
            self.tasks[next_i].tid
        };
        let mut ts = now + 300;
        if next_i != IDLE {
            ts = ts.max(self.tasks[next_i].ready_at + 200);
        }
        let ts = self.emit(
            ts,
            cpu,
            Kind::SchedSwitch {
                prev: prev_tid,
                prev_state: if prev == IDLE { 0 } else { prev_state },
                next: next_tid,
            },
        );
        if prev != IDLE {
            let t = &mut self.tasks[prev];
            t.gen += 1;
            if prev_state == 0 || prev_state == 0x100 {
                t.run = Run::Runnable;
                t.ready_at = ts;
                self.cpus[cpu].rq.push_back(prev);
            } else {
                t.run = Run::Blocked;
                t.blocked_at = ts;
            }
        }
        self.cpus[cpu].current = next_i;
        if next_i != IDLE {
            let t = &mut self.tasks[next_i];
            t.run = Run::Running;
            t.cpu = cpu;
            t.slice_start = ts;
            t.gen += 1;
            let gen = t.gen;
            let at = ts + self.rng.range(800, 2_500);
            ctx.queue.push(Scheduled {
                at,
                action: Action::Step { task: next_i, gen },
            });
        }
    }

    /// At a step boundary: gives the CPU away if the tick asked for it.
    fn preempt_point(&mut self, now: u64, ti: usize, ctx: &mut HostCtx) -> bool {
        let cpu = self.tasks[ti].cpu;
        if self.cpus[cpu].need_resched && !self.cpus[cpu].rq.is_empty() {
            self.switch(now, cpu, 0x100, ctx);
            return true;
        }
        self.cpus[cpu].need_resched = false;
        false
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
            Action::Tick { cpu } => {
                ctx.queue.push(Scheduled {
                    at: now + 4_000_000,
                    action: Action::Tick { cpu },
                });
                let cur = self.cpus[cpu].current;
                if cur != IDLE
                    && !self.cpus[cpu].rq.is_empty()
                    && now.saturating_sub(self.tasks[cur].slice_start) >= 3_000_000
                {
                    self.cpus[cpu].need_resched = true;
                    // A vCPU in guest mode leaves it on the host's timer interrupt.
                    if let Role::Vcpu(v) = &self.tasks[cur].role {
                        if v.phase == VPhase::Guest {
                            self.force_exit(now, cur, ctx);
                        }
                    }
                }
            }
            Action::Resched { cpu } => {
                if self.cpus[cpu].current == IDLE {
                    self.switch(now, cpu, 0, ctx);
                } else {
                    self.cpus[cpu].switch_pending = false;
                }
            }
            Action::GuestTimer { task, gen } => self.guest_timer(now, task, gen, ctx),
            Action::DiskDone { vm, vcpu } => {
                // Completion interrupt on the CPU the I/O thread last ran on.
                let io = self.vms[vm].io_task;
                let cpu = self.tasks[io].cpu;
                let now = self.irq_enter(now, cpu, ctx);
                let sector = self.vms[vm].next_sector;
                self.emit(
                    now,
                    cpu,
                    Kind::BlockRqComplete {
                        sector,
                        nr_sector: 128,
                        write: matches!(sector % 3, 0),
                    },
                );
                self.vms[vm].next_sector += 128;
                self.give_job(now + 500, cpu, io, Job::DiskComplete { vcpu }, ctx);
            }
            Action::PacketIn { vm, vcpu, tcp } => {
                let vhost = self.vms[vm].vhost_task;
                let cpu = self.tasks[vhost].cpu;
                let now = self.irq_enter(now, cpu, ctx);
                let skb = 0xffff_8880_0000_0000 | (self.rng.next_u64() & 0xff_ffff) << 8;
                let len = 66 + tcp.payload as u32;
                self.emit(
                    now,
                    cpu,
                    Kind::NetifReceiveSkb {
                        skb,
                        len,
                        dev: "eth0",
                        tcp: Some(tcp),
                    },
                );
                self.emit(
                    now + 900,
                    cpu,
                    Kind::NetDevQueue {
                        skb,
                        len,
                        dev: "tap0",
                        tcp: Some(tcp),
                    },
                );
                if tcp.flow != 0 {
                    ctx.hops.push(Hop {
                        flow: tcp.flow,
                        host: self.index,
                        tid: 0,
                        at: now,
                        what: "receive",
                    });
                }
                let flow = tcp.flow;
                self.give_job(now + 1_500, cpu, vhost, Job::NetRx { vcpu, flow }, ctx);
            }
            Action::ExternalTraffic { vm } => {
                let next = now + self.rng.exp(400_000, 20_000);
                ctx.queue.push(Scheduled {
                    at: next,
                    action: Action::ExternalTraffic { vm },
                });
                let nv = self.vms[vm].vcpu_tids.len() as u32;
                let vcpu = self.rng.range(0, nv as u64 - 1) as u32;
                let tcp = self.next_tcp(vm, true, 1448);
                self.act(now, Action::PacketIn { vm, vcpu, tcp }, ctx);
            }
            Action::WakeHelper { task } => {
                let cpu = self.tasks[task].cpu;
                let job = match self.tasks[task].role {
                    Role::Main(_) => {
                        let p = self.rng.range(5_000_000, 25_000_000);
                        ctx.queue.push(Scheduled {
                            at: now + p,
                            action: Action::WakeHelper { task },
                        });
                        Job::MainTick
                    }
                    _ => {
                        let sleep = self.rng.exp(8_000_000, 200_000);
                        let burst = self.rng.exp(1_200_000, 50_000);
                        ctx.queue.push(Scheduled {
                            at: now + sleep + burst,
                            action: Action::WakeHelper { task },
                        });
                        Job::Burst(burst)
                    }
                };
                let now = self.irq_enter(now, cpu, ctx);
                self.emit(
                    now,
                    cpu,
                    Kind::HrtimerExpireEntry {
                        hrtimer: 0xffff_9a3b_c000_0000 + self.tasks[task].tid as u64 * 0x40,
                        now: self.spec.clock.apply(now),
                        function: 0xffff_ffff_8a1c_2d30,
                    },
                );
                self.give_job(now + 300, cpu, task, job, ctx);
                self.emit(
                    now + 900,
                    cpu,
                    Kind::HrtimerExpireExit {
                        hrtimer: 0xffff_9a3b_c000_0000 + self.tasks[task].tid as u64 * 0x40,
                    },
                );
            }
        }
    }

    fn next_tcp(&mut self, vm: usize, inbound: bool, payload: u16) -> Tcp {
        let v = &mut self.vms[vm];
        let peer = [10, 0, 0, 1];
        if inbound {
            let t = Tcp {
                saddr: peer,
                daddr: v.ip,
                sport: 5001,
                dport: 40000 + vm as u16,
                seq: v.tcp_ack,
                ack: v.tcp_seq,
                flags: 0x18,
                payload,
                flow: 0,
            };
            v.tcp_ack = v.tcp_ack.wrapping_add(payload as u32);
            t
        } else {
            let t = Tcp {
                saddr: v.ip,
                daddr: peer,
                sport: 40000 + vm as u16,
                dport: 5001,
                seq: v.tcp_seq,
                ack: v.tcp_ack,
                flags: 0x18,
                payload,
                flow: 0,
            };
            v.tcp_seq = v.tcp_seq.wrapping_add(payload as u32);
            t
        }
    }

    /// Queues a job for a helper thread and wakes it if it sleeps.
    fn give_job(&mut self, now: u64, waker_cpu: usize, ti: usize, job: Job, ctx: &mut HostCtx) {
        if let Some(h) = helper_mut(&mut self.tasks[ti]) {
            h.jobs.push_back(job);
        }
        self.wake(now, waker_cpu, ti, None, ctx);
    }

    // ----- helper threads ---------------------------------------------------------------------

    fn helper_step(&mut self, now: u64, ti: usize, ctx: &mut HostCtx) {
        let cpu = self.tasks[ti].cpu;
        // Finish the job in progress.
        let done = {
            let h = helper_mut(&mut self.tasks[ti]).unwrap();
            match h.cur {
                Some((job, 0)) => {
                    h.cur = None;
                    Some(job)
                }
                _ => None,
            }
        };
        let mut t = now;
        if let Some(job) = done {
            t = self.finish_job(now, cpu, ti, job, ctx);
        }
        if self.preempt_point(t, ti, ctx) {
            return;
        }
        let rng_cost = |rng: &mut Rng, job: &Job| match job {
            Job::DiskSubmit { .. } => rng.around(9_000),
            Job::DiskComplete { .. } => rng.around(5_000),
            Job::NetTx { .. } => rng.around(7_000),
            Job::NetRx { .. } => rng.around(6_000),
            Job::MainTick => rng.around(25_000),
            Job::Burst(n) => *n,
        };
        let h = helper_mut(&mut self.tasks[ti]).unwrap();
        if h.cur.is_none() {
            if let Some(job) = h.jobs.pop_front() {
                let c = rng_cost(&mut self.rng, &job);
                let h = helper_mut(&mut self.tasks[ti]).unwrap();
                h.cur = Some((job, c));
            }
        }
        let h = helper_mut(&mut self.tasks[ti]).unwrap();
        match h.cur {
            Some((job, left)) => {
                // Run at most 0.5 ms before the next preemption check.
                let chunk = left.min(500_000);
                h.cur = Some((job, left - chunk));
                let gen = self.tasks[ti].gen;
                ctx.queue.push(Scheduled {
                    at: t + chunk.max(200),
                    action: Action::Step { task: ti, gen },
                });
            }
            None => self.switch(t + 1_000, cpu, 1, ctx),
        }
    }

    /// Performs a finished job's visible effects; returns the time after them.
    fn finish_job(&mut self, now: u64, cpu: usize, ti: usize, job: Job, ctx: &mut HostCtx) -> u64 {
        let vm = helper_mut(&mut self.tasks[ti]).unwrap().vm;
        match job {
            Job::DiskSubmit { vcpu } => {
                let vm = vm.unwrap();
                let sector = self.vms[vm].next_sector;
                self.emit(
                    now,
                    cpu,
                    Kind::BlockRqIssue {
                        sector,
                        nr_sector: 128,
                        write: matches!(sector % 3, 0),
                    },
                );
                let lat = self.rng.exp(350_000, 60_000);
                ctx.queue.push(Scheduled {
                    at: now + lat,
                    action: Action::DiskDone { vm, vcpu },
                });
                now + 500
            }
            Job::DiskComplete { vcpu } => {
                let vm = vm.unwrap();
                let vec = self.vms[vm].disk_vector;
                self.raise_msi(now, cpu, vm, vcpu, vec, WaitCause::Disk, ctx)
            }
            Job::NetRx { vcpu, flow } => {
                let vm = vm.unwrap();
                let vec = self.vms[vm].net_rx_vector;
                if flow != 0 {
                    let tid = self.tasks[ti].tid;
                    ctx.hops.push(Hop {
                        flow,
                        host: self.index,
                        tid,
                        at: now + 300,
                        what: "wake",
                    });
                    let target = self.vms[vm].vcpu_tasks[vcpu as usize];
                    vcpu_mut(&mut self.tasks[target]).flow = flow;
                }
                self.raise_msi(now, cpu, vm, vcpu, vec, WaitCause::Network, ctx)
            }
            Job::NetTx { vcpu, flow } => {
                let vm = vm.unwrap();
                let skb = 0xffff_8880_0100_0000 | (self.rng.next_u64() & 0xff_ffff) << 8;
                let spec = self.vms[vm].spec.clone();
                let payload = if spec.server || spec.peer.is_some() {
                    512
                } else {
                    0
                };
                let mut tcp = self.next_tcp(vm, false, payload);
                let len = 66 + payload as u32;
                self.emit(
                    now,
                    cpu,
                    Kind::NetifReceiveSkb {
                        skb,
                        len,
                        dev: "tap0",
                        tcp: Some(tcp),
                    },
                );
                self.emit(
                    now + 1_200,
                    cpu,
                    Kind::NetDevQueue {
                        skb,
                        len,
                        dev: "eth0",
                        tcp: Some(tcp),
                    },
                );
                let mut t = now + 1_500;
                // The peer VM's reply path: the packet arrives at the other host.
                let dest = if spec.server {
                    self.reply_to(vm)
                } else {
                    spec.peer
                };
                if let Some((dh, dvm)) = dest {
                    tcp.flags = 0x18;
                    tcp.flow = flow;
                    if flow != 0 {
                        let tid = self.tasks[ti].tid;
                        ctx.hops.push(Hop {
                            flow,
                            host: self.index,
                            tid,
                            at: now + 1_200,
                            what: "send",
                        });
                    }
                    let wire = 30_000 + self.rng.exp(20_000, 0);
                    ctx.wire.push((now + 1_200 + wire, dh, dvm, 0, tcp));
                }
                // Every few packets, vhost signals used TX buffers to the guest.
                self.vms[vm].tx_count += 1;
                if matches!(self.vms[vm].tx_count % 4, 0) {
                    let vec = self.vms[vm].net_tx_vector;
                    t = self.raise_msi(t, cpu, vm, vcpu, vec, WaitCause::Network, ctx);
                }
                t
            }
            Job::MainTick => {
                let vm = vm.unwrap();
                // Now and then a legacy device (RTC, serial) interrupts a vCPU: cause "other".
                if self.rng.chance(0.5) {
                    let n = self.vms[vm].vcpu_tasks.len() as u64;
                    let c = self.rng.range(0, n - 1) as u32;
                    let vec = self.vms[vm].other_vector;
                    self.emit(now, cpu, Kind::KvmSetIrq { gsi: 8, level: 1 });
                    self.emit(now + 300, cpu, Kind::KvmSetIrq { gsi: 8, level: 0 });
                    self.deliver(now + 600, cpu, vm, c, vec, WaitCause::Other, true, ctx);
                    return now + 2_000;
                }
                now
            }
            Job::Burst(_) => now,
        }
    }

    fn reply_to(&self, vm: usize) -> Option<(usize, usize)> {
        // A server replies to whoever sent the last request: recorded in its peer field by the
        // world as `server` pairs (host, vm) through `peer`.
        self.vms[vm].spec.peer
    }

    /// irqfd: an MSI raised by a helper thread, accepted by the target's APIC.
    #[allow(clippy::too_many_arguments)]
    fn raise_msi(
        &mut self,
        now: u64,
        cpu: usize,
        vm: usize,
        vcpu: u32,
        vec: u8,
        cause: WaitCause,
        ctx: &mut HostCtx,
    ) -> u64 {
        self.emit(
            now,
            cpu,
            Kind::KvmMsiSetIrq {
                address: 0xfee0_0000 | ((vcpu as u64) << 12),
                data: vec as u64,
            },
        );
        self.deliver(now + 300, cpu, vm, vcpu, vec, cause, true, ctx);
        now + 2_000
    }

    /// Makes `vec` pending on a vCPU (APIC accept) and wakes or kicks it.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        now: u64,
        cpu: usize,
        vm: usize,
        vcpu: u32,
        vec: u8,
        cause: WaitCause,
        accept_here: bool,
        ctx: &mut HostCtx,
    ) {
        let ti = self.vms[vm].vcpu_tasks[vcpu as usize];
        if accept_here {
            self.emit(now, cpu, Kind::KvmApicAcceptIrq { apicid: vcpu, vec });
        }
        let (phase, run) = {
            let t = &self.tasks[ti];
            (self::vcpu(t).phase, t.run)
        };
        vcpu_mut(&mut self.tasks[ti]).pending.push(vec);
        if run == Run::Blocked {
            self.wake(now + 400, cpu, ti, Some(cause), ctx);
        } else if run == Run::Running && phase == VPhase::Guest && self.tasks[ti].cpu != cpu {
            self.force_exit(now + 1_500, ti, ctx);
        } else {
            self.end_poll(now + 1_000, ti, ctx);
        }
    }

    /// An interrupt arrived while the vCPU thread polls after a HLT: it re-enters at once.
    fn end_poll(&mut self, at: u64, ti: usize, ctx: &mut HostCtx) {
        let t = &mut self.tasks[ti];
        if t.run != Run::Running {
            return;
        }
        let v = vcpu_mut(t);
        if v.step != VStep::PollEnd {
            return;
        }
        v.step = VStep::Enter;
        v.poll_hit = true;
        t.gen += 1;
        self.next_step(ti, at, ctx);
    }

    // ----- vCPU threads -----------------------------------------------------------------------

    /// Interrupts guest mode: the next step is an exit for a host interrupt.
    fn force_exit(&mut self, at: u64, ti: usize, ctx: &mut HostCtx) {
        let t = &mut self.tasks[ti];
        let v = vcpu_mut(t);
        if v.phase != VPhase::Guest || matches!(v.step, VStep::Exit(ExitKind::Intr)) {
            return;
        }
        v.step = VStep::Exit(ExitKind::Intr);
        t.gen += 1;
        let gen = t.gen;
        ctx.queue.push(Scheduled {
            at,
            action: Action::Step { task: ti, gen },
        });
    }

    fn guest_timer(&mut self, now: u64, ti: usize, gen: u64, ctx: &mut HostCtx) {
        let (cpu, run, phase, tgen) = {
            let t = &self.tasks[ti];
            let v = vcpu(t);
            (t.cpu, t.run, v.phase, v.timer_gen)
        };
        if tgen != gen {
            return;
        }
        let hrtimer = 0xffff_9a3b_8000_0000 + self.tasks[ti].tid as u64 * 0x1000;
        let apic_timer_fn = 0xffff_ffff_c0a1_2f40;
        // The timer interrupt makes a guest running on that CPU exit first.
        let _ = (run, phase);
        let t = self.irq_enter(now, cpu, ctx);
        self.emit(
            t,
            cpu,
            Kind::HrtimerExpireEntry {
                hrtimer,
                now: self.spec.clock.apply(t),
                function: apic_timer_fn,
            },
        );
        {
            let v = vcpu_mut(&mut self.tasks[ti]);
            v.timer_pending = true;
        }
        if run == Run::Blocked {
            self.wake(t + 400, cpu, ti, Some(WaitCause::Timer), ctx);
        } else {
            self.end_poll(t + 1_500, ti, ctx);
        }
        self.emit(t + 1_000, cpu, Kind::HrtimerExpireExit { hrtimer });
    }

    fn vcpu_step(&mut self, now: u64, ti: usize, ctx: &mut HostCtx) {
        let step = vcpu(&self.tasks[ti]).step;
        match step {
            VStep::Enter => self.vcpu_enter(now, ti, ctx),
            VStep::Exit(kind) => self.vcpu_exit(now, ti, kind, ctx),
            VStep::ToUser => {
                let cpu = self.tasks[ti].cpu;
                self.emit(now, cpu, Kind::KvmUserspaceExit { reason: 2 });
                let v = vcpu_mut(&mut self.tasks[ti]);
                v.phase = VPhase::User;
                v.step = VStep::FromUser;
                let d = self.rng.range(8_000, 45_000);
                self.next_step(ti, now + d, ctx);
            }
            VStep::FromUser => {
                let v = vcpu_mut(&mut self.tasks[ti]);
                v.phase = VPhase::Kernel;
                v.step = VStep::Enter;
                self.next_step(ti, now + 1_500, ctx);
            }
            VStep::Block => {
                let has_pending = {
                    let v = vcpu(&self.tasks[ti]);
                    v.timer_pending || !v.pending.is_empty()
                };
                let v = vcpu_mut(&mut self.tasks[ti]);
                if has_pending {
                    v.step = VStep::Enter;
                    self.next_step(ti, now + 800, ctx);
                } else {
                    // Halt polling: KVM spins a little before sleeping, in case an interrupt
                    // comes right away (then the thread never sleeps).
                    v.step = VStep::PollEnd;
                    v.halted_at = now;
                    let window = self.rng.range(10_000, 40_000);
                    self.next_step(ti, now + window, ctx);
                }
            }
            VStep::PollEnd => {
                let v = vcpu_mut(&mut self.tasks[ti]);
                v.step = VStep::Enter;
                v.phase = VPhase::Halted;
                v.halted_at = now;
                v.woke_from_halt = true;
                let cpu = self.tasks[ti].cpu;
                self.switch(now, cpu, 1, ctx);
            }
        }
    }

    /// The request/response a guest's network kick belongs to: a server answers the request
    /// that woke it; a client starts a new one.
    fn start_flow(&mut self, now: u64, ti: usize, ctx: &mut HostCtx) -> u32 {
        let tid = self.tasks[ti].tid;
        let v = vcpu_mut(&mut self.tasks[ti]);
        let spec = &self.vms[v.vm].spec;
        let flow = if spec.server {
            std::mem::take(&mut v.flow)
        } else if spec.peer.is_some() {
            v.flow = 0;
            self.next_flow += 1;
            ((self.index as u32 + 1) << 24) | self.next_flow
        } else {
            0
        };
        if flow != 0 {
            ctx.hops.push(Hop {
                flow,
                host: self.index,
                tid,
                at: now,
                what: "kick",
            });
        }
        flow
    }

    fn next_step(&mut self, ti: usize, at: u64, ctx: &mut HostCtx) {
        let gen = self.tasks[ti].gen;
        ctx.queue.push(Scheduled {
            at,
            action: Action::Step { task: ti, gen },
        });
    }

    fn vcpu_enter(&mut self, now: u64, ti: usize, ctx: &mut HostCtx) {
        if self.preempt_point(now, ti, ctx) {
            return;
        }
        let cpu = self.tasks[ti].cpu;
        let isa = self.spec.isa;
        let mut t = now;
        let (vm, idx) = {
            let v = vcpu(&self.tasks[ti]);
            (v.vm, v.idx)
        };
        let spec = self.vms[vm].spec.clone();
        {
            let v = vcpu_mut(&mut self.tasks[ti]);
            if v.woke_from_halt || v.poll_hit {
                let waited = v.woke_from_halt;
                v.woke_from_halt = false;
                v.poll_hit = false;
                let ns = now.saturating_sub(v.halted_at);
                self.emit(t, cpu, Kind::KvmVcpuWakeup { ns, waited });
                t += 300;
            }
        }
        // Inject one interrupt: the timer first (accepted here, by the thread itself).
        let injected: Option<u8> = {
            let v = vcpu_mut(&mut self.tasks[ti]);
            if v.timer_pending {
                v.timer_pending = false;
                Some(VEC_TIMER)
            } else if !v.pending.is_empty() {
                // Highest vector first, like the APIC's priority.
                let (k, _) = v
                    .pending
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, &x)| x)
                    .unwrap();
                Some(v.pending.remove(k))
            } else {
                None
            }
        };
        if let Some(vec) = injected {
            if vec == VEC_TIMER {
                self.emit(t, cpu, Kind::KvmApicAcceptIrq { apicid: idx, vec });
                t += 250;
            }
            self.emit(t, cpu, Kind::KvmInjVirq { vector: vec as u32 });
            t += 250;
            self.guest_takes_interrupt(t, ti, vec, ctx);
        }
        let nested_l2 = spec.nested && vcpu(&self.tasks[ti]).in_l2;
        if spec.processes || nested_l2 {
            let cr3 = self.current_cr3(ti);
            self.emit(
                t,
                cpu,
                Kind::VcpuEnterGuest {
                    vcpu: idx,
                    cr3,
                    sp: 0x7ffc_1234_5000 + (cr3 & 0xfff000),
                    ip: 0x55d4_3a20_1000 + (cr3 & 0xff000),
                },
            );
            t += 200;
        }
        let rip = self.guest_rip(ti);
        self.emit(t, cpu, Kind::KvmEntry { vcpu: idx, rip });
        let _ = isa;
        let (at, kind) = self.plan_guest_run(t, ti);
        let v = vcpu_mut(&mut self.tasks[ti]);
        v.phase = VPhase::Guest;
        v.run_start = t;
        v.step = VStep::Exit(kind);
        self.next_step(ti, at, ctx);
    }

    fn current_cr3(&self, ti: usize) -> u64 {
        let v = vcpu(&self.tasks[ti]);
        let nprocs = 4u64;
        let base = self.cr3_base + v.vm as u64 * 0x100_0000;
        if v.work == 0 {
            base // the idle task's page tables (swapper_pg_dir)
        } else if v.in_l2 {
            base + 0x80_0000 + (v.proc_idx as u64 % 2) * 0x2_3000
        } else {
            base + 0x1000 * (0x31 + (v.proc_idx as u64 % nprocs) * 7)
        }
    }

    fn guest_rip(&mut self, ti: usize) -> u64 {
        let v = vcpu(&self.tasks[ti]);
        if v.work > 0 && v.work != u64::MAX && self.rng.chance(0.3)
            || v.work == u64::MAX && self.rng.chance(0.6)
        {
            0x55d4_3a20_0000 + (self.rng.next_u64() & 0xffff)
        } else {
            0xffff_ffff_a9c5_0000 + (self.rng.next_u64() & 0xfff0)
        }
    }

    /// The guest's reaction to an injected interrupt: work, and follow-up exits.
    fn guest_takes_interrupt(&mut self, now: u64, ti: usize, vec: u8, _ctx: &mut HostCtx) {
        let (vm, idx) = {
            let v = vcpu(&self.tasks[ti]);
            (v.vm, v.idx)
        };
        let info = self.vms[vm].clone_light();
        let nv = info.nvcpus;
        let r = &mut self.rng;
        let v = vcpu_mut(&mut self.tasks[ti]);
        let add = |v: &mut VcpuSt, n: u64| {
            if v.work != u64::MAX {
                v.work = v.work.saturating_add(n);
            }
        };
        if vec == VEC_TIMER {
            add(v, r.around(12_000));
            v.todo.push_back((r.around(4_000), GuestOp::ArmTimer));
            v.proc_idx = v.proc_idx.wrapping_add(1);
            v.last_tick = now;
            // The scheduler tick sometimes kicks another CPU (load balancing, TLB shootdown).
            if nv > 1
                && r.chance(if info.workload == Workload::Idle {
                    0.15
                } else {
                    0.08
                })
            {
                let other = (idx + 1 + r.range(0, nv as u64 - 2) as u32) % nv;
                // In a disk VM the reschedule IPI is what hands the I/O process over to
                // another vCPU, so ticks there only send call-function IPIs.
                let vv = if info.workload != Workload::Disk && r.chance(0.5) {
                    VEC_RESCHED
                } else {
                    VEC_CALL_SINGLE
                };
                v.todo.push_back((r.around(3_000), GuestOp::Ipi(other, vv)));
            }
            if r.chance(0.02) {
                v.todo.push_back((r.around(5_000), GuestOp::PortIo));
            }
        } else if vec == VEC_RESCHED || vec == VEC_CALL_SINGLE {
            add(v, r.around(6_000));
            if info.workload == Workload::Disk && vec == VEC_RESCHED {
                // The woken I/O process issues its next request from this vCPU.
                add(v, r.around(40_000));
                v.todo
                    .push_back((r.around(35_000), GuestOp::Kick(Dev::Disk)));
            }
        } else if vec == info.disk_vector {
            add(v, r.around(15_000));
            // The I/O process runs here or, now and then, on another vCPU (IPI).
            if nv > 1 && r.chance(0.3) {
                let other = (idx + 1) % nv;
                v.todo
                    .push_back((r.around(8_000), GuestOp::Ipi(other, VEC_RESCHED)));
            } else {
                add(v, r.around(40_000));
                v.todo
                    .push_back((r.around(45_000), GuestOp::Kick(Dev::Disk)));
            }
        } else if vec == info.net_rx_vector {
            add(v, r.around(25_000));
            let reply = info.server || info.peer.is_some() || r.chance(0.5);
            if reply {
                let think = if info.peer.is_some() {
                    r.exp(400_000, 20_000)
                } else {
                    r.around(20_000)
                };
                add(v, think);
                v.todo.push_back((think, GuestOp::Kick(Dev::Net)));
            }
        } else {
            add(v, r.around(8_000));
        }
    }

    /// Decides how long the guest runs and why it exits next.
    fn plan_guest_run(&mut self, now: u64, ti: usize) -> (u64, ExitKind) {
        let (vm, work, more_pending, first_todo, in_l2) = {
            let v = vcpu(&self.tasks[ti]);
            (
                v.vm,
                v.work,
                v.timer_pending || !v.pending.is_empty(),
                v.todo.front().copied(),
                v.in_l2,
            )
        };
        let spec = &self.vms[vm].spec;
        let nested = spec.nested;
        let workload = spec.workload;
        if more_pending {
            return (now + self.rng.around(3_000), ExitKind::IntrWindow);
        }
        if let Some((delay, op)) = first_todo {
            if !in_l2 {
                let kind = match op {
                    GuestOp::Kick(_) => ExitKind::Kick,
                    GuestOp::Ipi(..) => ExitKind::IcrWrite,
                    GuestOp::ArmTimer => ExitKind::MsrWrite,
                    GuestOp::PortIo => ExitKind::PortIo,
                };
                return (now + delay.max(300), kind);
            }
        }
        if work == 0 {
            return (now + self.rng.range(1_000, 4_000), ExitKind::Hlt);
        }
        // Background exits while the guest computes.
        let mean = match workload {
            Workload::Cpu => 150_000,
            _ => 60_000,
        };
        let gap = self.rng.exp(mean, 2_000);
        if work != u64::MAX && work <= gap {
            return (now + work.max(500), ExitKind::Hlt);
        }
        let x = self.rng.f64();
        let kind = if nested && !in_l2 {
            ExitKind::NestedRun
        } else if x < 0.45 {
            ExitKind::PageFault
        } else if x < 0.65 {
            ExitKind::MsrRead
        } else if x < 0.8 {
            ExitKind::Cpuid
        } else if x < 0.93 {
            ExitKind::Pause
        } else {
            ExitKind::MsrWrite
        };
        let gap = if nested && !in_l2 {
            self.rng.around(15_000)
        } else {
            gap
        };
        (now + gap, kind)
    }

    fn vcpu_exit(&mut self, now: u64, ti: usize, kind: ExitKind, ctx: &mut HostCtx) {
        let cpu = self.tasks[ti].cpu;
        let isa = self.spec.isa;
        let (vm, idx, in_l2) = {
            let v = vcpu_mut(&mut self.tasks[ti]);
            let used = now.saturating_sub(v.run_start);
            if v.work != u64::MAX {
                v.work = v.work.saturating_sub(used);
            }
            if let Some(front) = v.todo.front_mut() {
                front.0 = front.0.saturating_sub(used);
            }
            v.phase = VPhase::Kernel;
            (v.vm, v.idx, v.in_l2)
        };
        let rip = self.guest_rip(ti);
        let code = kind.code(isa);
        let (info1, info2) = match kind {
            ExitKind::PageFault | ExitKind::Kick => {
                (0x1_0000_000e, 0xfe00_3000 + ((idx as u64) << 12))
            }
            ExitKind::PortIo => (0x0608_0010, rip + 2),
            _ => (0, 0),
        };
        self.emit(
            now,
            cpu,
            Kind::KvmExit {
                reason: code,
                isa: isa_number(isa),
                rip,
                info1,
                info2,
                vcpu: idx,
            },
        );
        let mut t = now + 300;
        let nested = self.vms[vm].spec.nested;
        if nested && in_l2 {
            self.emit(
                t,
                cpu,
                Kind::KvmNestedVmexit {
                    reason: code,
                    isa: isa_number(isa),
                    rip,
                    info1,
                    info2,
                    vcpu: idx,
                },
            );
            t += 300;
            // Most L2 exits are reflected to L1 (which must handle them itself).
            if kind != ExitKind::Intr || self.rng.chance(0.3) {
                vcpu_mut(&mut self.tasks[ti]).in_l2 = false;
            }
        }
        let handling = self.rng.around(kind.handling());
        let op = {
            let v = vcpu_mut(&mut self.tasks[ti]);
            match kind {
                ExitKind::Kick | ExitKind::IcrWrite | ExitKind::MsrWrite | ExitKind::PortIo
                    if v.todo.front().map(|f| f.0 == 0).unwrap_or(false) =>
                {
                    v.todo.pop_front().map(|f| f.1)
                }
                _ => None,
            }
        };
        let mut next = VStep::Enter;
        match (kind, op) {
            (ExitKind::Hlt, _) => {
                let has_pending = {
                    let v = vcpu(&self.tasks[ti]);
                    v.timer_pending || !v.pending.is_empty()
                };
                if !has_pending {
                    next = VStep::Block;
                }
            }
            (_, Some(GuestOp::Kick(dev))) => {
                let (helper, job) = match dev {
                    Dev::Disk => (self.vms[vm].io_task, Job::DiskSubmit { vcpu: idx }),
                    Dev::Net => {
                        let flow = self.start_flow(now, ti, ctx);
                        (self.vms[vm].vhost_task, Job::NetTx { vcpu: idx, flow })
                    }
                };
                self.give_job(t + 1_000, cpu, helper, job, ctx);
            }
            (_, Some(GuestOp::Ipi(target, vec))) => {
                self.emit(
                    t + 500,
                    cpu,
                    Kind::KvmApicIpi {
                        icr_low: vec as u32,
                        dest_id: target,
                    },
                );
                self.deliver(t + 800, cpu, vm, target, vec, WaitCause::Task, true, ctx);
            }
            (_, Some(GuestOp::ArmTimer)) => {
                let period = self.tick_period(ti);
                let jitter = self.rng.range(0, period / 4);
                let at = now + period - period / 8 + jitter;
                self.arm_timer(ti, at, ctx);
            }
            (_, Some(GuestOp::PortIo)) => next = VStep::ToUser,
            (ExitKind::NestedRun, _) => {
                vcpu_mut(&mut self.tasks[ti]).in_l2 = true;
                let nested_rip = self.rng.next_u64() & 0xffff_fff0 | 0xffff_ffff_8100_0000;
                let cr3 = self.current_cr3(ti);
                self.emit(
                    t + 1_500,
                    cpu,
                    Kind::KvmNestedVmenter {
                        rip,
                        vmcb: 0x1_2345_6000 + ((idx as u64) << 12),
                        nested_rip,
                        guest_pgd: cr3,
                        isa: isa_number(isa),
                    },
                );
            }
            _ => {}
        }
        let v = vcpu_mut(&mut self.tasks[ti]);
        v.step = next;
        self.next_step(ti, t + handling, ctx);
    }
}

impl VmInfo {
    fn clone_light(&self) -> LightVm {
        LightVm {
            nvcpus: self.vcpu_tids.len() as u32,
            workload: self.spec.workload,
            disk_vector: self.disk_vector,
            net_rx_vector: self.net_rx_vector,
            server: self.spec.server,
            peer: self.spec.peer,
        }
    }
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

struct LightVm {
    nvcpus: u32,
    workload: Workload,
    disk_vector: u8,
    net_rx_vector: u8,
    server: bool,
    peer: Option<(usize, usize)>,
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

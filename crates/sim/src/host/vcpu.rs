//! The KVM run loop of a vCPU thread: exit reasons by ISA, each exit's handling in the kernel
//! (device kicks to the helpers, IPIs, timer programming, nested entries), user-space exits,
//! HLT with halt polling then blocking, interrupt delivery (APIC accept, then a wake-up or a
//! kick out of guest mode), injection at entry, and the APIC timer's hrtimer.

use std::collections::VecDeque;

use virtflow_model::{Isa, WaitCause};

use super::devices::Job;
use super::requests::ReqState;
use super::{vcpu, vcpu_mut, Action, Dev, GuestOp, Host, HostCtx, Role, Run, Scheduled};
use super::{IDLE, VEC_TIMER};
use crate::event::{IrqContext, Kind};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VPhase {
    Guest,
    Kernel,
    User,
    Halted,
}

/// What a vCPU thread does at its next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VStep {
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

#[derive(Clone, Debug)]
pub(super) struct VcpuSt {
    pub(super) vm: usize,
    pub(super) idx: u32,
    pub(super) phase: VPhase,
    pub(super) step: VStep,
    /// Vectors waiting for injection (device, IPI), in arrival order.
    pub(super) pending: Vec<u8>,
    /// The APIC timer fired and awaits acceptance by this thread.
    pub(super) timer_pending: bool,
    pub(super) timer_gen: u64,
    /// Guest CPU work left before it idles (u64::MAX: always busy).
    pub(super) work: u64,
    pub(super) todo: VecDeque<(u64, GuestOp)>,
    pub(super) run_start: u64,
    pub(super) halted_at: u64,
    pub(super) woke_from_halt: bool,
    /// An interrupt ended halt polling (no sleep).
    pub(super) poll_hit: bool,
    pub(super) in_l2: bool,
    /// A server's packets not answered yet, in order: whether each came from its VM's peer
    /// on another host (answered there) or from an outside client (answered outside). With
    /// none, a server speaks to its peer.
    pub(super) from_peer: VecDeque<bool>,
    /// Its requests, in a VM of requests.
    pub(super) req: ReqState,
    /// Index of the current guest process (processes scenario).
    pub(super) proc_idx: u32,
    pub(super) last_tick: u64,
}

impl VcpuSt {
    pub(super) fn new(vm: usize, idx: u32, busy: bool) -> VcpuSt {
        VcpuSt {
            vm,
            idx,
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
            from_peer: VecDeque::new(),
            req: ReqState::default(),
            proc_idx: idx,
            last_tick: 0,
        }
    }
}

impl Host {
    pub(super) fn vcpu_step(&mut self, now: u64, ti: usize, ctx: &mut HostCtx) {
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
                v.req.blocked();
                let cpu = self.tasks[ti].cpu;
                self.switch(now, cpu, 1, ctx);
            }
        }
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
        let entered = self.emit(t, cpu, Kind::KvmEntry { vcpu: idx, rip });
        self.request_entered(ti, entered);
        let _ = isa;
        let (at, kind) = self.plan_guest_run(t, ti);
        let v = vcpu_mut(&mut self.tasks[ti]);
        v.phase = VPhase::Guest;
        v.run_start = t;
        v.step = VStep::Exit(kind);
        self.next_step(ti, at, ctx);
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
        let exited = self.emit(
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
        if kind == ExitKind::PageFault && self.spec.memory {
            t = self.guest_fault(t, cpu, ti, vm);
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
        if let Some(op) = op {
            self.request_issued(ti, op, exited);
        }
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
                        let answered = vcpu_mut(&mut self.tasks[ti]).from_peer.pop_front();
                        let to_peer = answered.unwrap_or(true);
                        (self.vms[vm].vhost_task, Job::NetTx { vcpu: idx, to_peer })
                    }
                };
                self.give_job(t + 1_000, cpu, helper, job, ctx);
            }
            (_, Some(GuestOp::L2Kick)) => self.l1_takes_l2_request(ti),
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

    /// A host interrupt on `cpu`: a vCPU in guest mode there exits first. Returns when the
    /// handler's events can be emitted.
    pub(super) fn irq_enter(&mut self, now: u64, cpu: usize, ctx: &mut HostCtx) -> u64 {
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

    /// Interrupts guest mode: the next step is an exit for a host interrupt.
    pub(super) fn force_exit(&mut self, at: u64, ti: usize, ctx: &mut HostCtx) {
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

    /// Makes `vec` pending on a vCPU (APIC accept) and wakes or kicks it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver(
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

    pub(super) fn arm_timer(&mut self, ti: usize, at: u64, ctx: &mut HostCtx) {
        let v = vcpu_mut(&mut self.tasks[ti]);
        v.timer_gen += 1;
        let gen = v.timer_gen;
        ctx.queue.push(Scheduled {
            at,
            action: Action::GuestTimer { task: ti, gen },
        });
    }

    pub(super) fn guest_timer(&mut self, now: u64, ti: usize, gen: u64, ctx: &mut HostCtx) {
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
            self.in_irq(cpu, IrqContext::Timer, None, |h| {
                h.wake(t + 400, cpu, ti, Some(WaitCause::Timer), ctx)
            });
        } else {
            self.end_poll(t + 1_500, ti, ctx);
        }
        self.emit(t + 1_000, cpu, Kind::HrtimerExpireExit { hrtimer });
    }
}

//! The guest's behaviour, which drives the exits: the work each injected vector gives it and
//! the operations that follow (device kicks, IPIs, timer programming, port I/O), its timer
//! period, its page tables and instruction pointers, and how long it runs before which exit.

use super::{vcpu, vcpu_mut, Dev, ExitKind, Host, HostCtx, VcpuSt, VmInfo, Workload};
use super::{VEC_CALL_SINGLE, VEC_RESCHED, VEC_TIMER};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GuestOp {
    Kick(Dev),
    Ipi(u32, u8),
    ArmTimer,
    PortIo,
    /// A nested (L2) guest's device kick, which exits to L1 (the only operation L2 does).
    L2Kick,
}

pub(super) struct LightVm {
    pub(super) nvcpus: u32,
    pub(super) workload: Workload,
    pub(super) disk_vector: u8,
    pub(super) net_rx_vector: u8,
    pub(super) server: bool,
    pub(super) peer: Option<(usize, usize)>,
}

impl VmInfo {
    fn clone_light(&self) -> LightVm {
        LightVm {
            nvcpus: self.vcpu_tids.len() as u32,
            workload: self.workload,
            disk_vector: self.disk_vector,
            net_rx_vector: self.net_rx_vector,
            server: self.spec.server,
            peer: self.spec.peer,
        }
    }
}

impl Host {
    pub(super) fn tick_period(&self, ti: usize) -> u64 {
        let v = vcpu(&self.tasks[ti]);
        match self.vms[v.vm].workload {
            Workload::Cpu => 4_000_000,
            Workload::Idle => 30_000_000,
            _ => 12_000_000,
        }
    }

    pub(super) fn current_cr3(&self, ti: usize) -> u64 {
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

    pub(super) fn guest_rip(&mut self, ti: usize) -> u64 {
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
    pub(super) fn guest_takes_interrupt(
        &mut self,
        now: u64,
        ti: usize,
        vec: u8,
        _ctx: &mut HostCtx,
    ) {
        let (vm, idx) = {
            let v = vcpu(&self.tasks[ti]);
            (v.vm, v.idx)
        };
        if let Some(request) = self.vms[vm].spec.request {
            return self.request_takes_interrupt(ti, vec, request);
        }
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
            // The I/O process runs here or, now and then, on another vCPU (IPI); a guest
            // whose disk phase is over issues nothing more.
            if info.workload == Workload::Disk {
                if nv > 1 && r.chance(0.3) {
                    let other = (idx + 1) % nv;
                    v.todo
                        .push_back((r.around(8_000), GuestOp::Ipi(other, VEC_RESCHED)));
                } else {
                    add(v, r.around(40_000));
                    v.todo
                        .push_back((r.around(45_000), GuestOp::Kick(Dev::Disk)));
                }
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
    pub(super) fn plan_guest_run(&mut self, now: u64, ti: usize) -> (u64, ExitKind) {
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
        // In a VM of requests, L2 runs only to make its request.
        let nested = self.vms[vm].spec.nested && self.vms[vm].spec.request.is_none();
        let workload = self.vms[vm].workload;
        if more_pending {
            return (now + self.rng.around(3_000), ExitKind::IntrWindow);
        }
        if let Some((delay, op)) = first_todo {
            let kind = match op {
                GuestOp::Kick(_) => ExitKind::Kick,
                GuestOp::Ipi(..) => ExitKind::IcrWrite,
                GuestOp::ArmTimer => ExitKind::MsrWrite,
                GuestOp::PortIo => ExitKind::PortIo,
                GuestOp::L2Kick => ExitKind::Kick,
            };
            match (op, in_l2) {
                // L1 resumes its guest first.
                (GuestOp::L2Kick, false) => {
                    return (now + self.rng.around(15_000), ExitKind::NestedRun)
                }
                (GuestOp::L2Kick, true) | (_, false) => return (now + delay.max(300), kind),
                _ => {}
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
}

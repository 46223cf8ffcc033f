//! A VM's workload over time: what starts a workload (the guest's disk loop, traffic from an
//! outside client, CPU-bound work) and the switch from one workload to the next at a phase's
//! start. A workload that ends stops by itself: a guest no longer computing halts at its next
//! exit, the disk loop issues no new request after the last completion, the outside client
//! sends nothing more.

use super::{vcpu_mut, Action, Dev, GuestOp, Host, HostCtx, Scheduled, Workload};

impl Host {
    /// What the VM's current workload starts with.
    pub(super) fn begin_workload(&mut self, now: u64, vi: usize, ctx: &mut HostCtx) {
        match self.vms[vi].workload {
            Workload::Disk => {
                // The guest's I/O loop starts on vCPU 0.
                let ti = self.vms[vi].vcpu_tasks[0];
                let v = vcpu_mut(&mut self.tasks[ti]);
                v.todo.push_back((20_000, GuestOp::Kick(Dev::Disk)));
                v.work = v.work.max(25_000);
            }
            Workload::Network => {
                let s = &self.vms[vi].spec;
                if s.peer.is_none() && !s.server || s.outside.is_some() {
                    ctx.queue.push(Scheduled {
                        at: now + self.rng.range(50_000, 500_000),
                        action: Action::ExternalTraffic { vm: vi },
                    });
                } else if s.peer.is_some() {
                    let ti = self.vms[vi].vcpu_tasks[0];
                    let v = vcpu_mut(&mut self.tasks[ti]);
                    v.todo.push_back((30_000, GuestOp::Kick(Dev::Net)));
                    v.work = v.work.max(35_000);
                }
            }
            Workload::Cpu | Workload::Idle => {}
        }
    }

    /// A new phase: the guest switches to `workload`. Its scheduler tick (the guest timer,
    /// fired now) puts the new work on the vCPUs that need it.
    pub(super) fn set_workload(
        &mut self,
        now: u64,
        vi: usize,
        workload: Workload,
        ctx: &mut HostCtx,
    ) {
        if self.vms[vi].workload == workload {
            return;
        }
        self.vms[vi].workload = workload;
        let vcpus = self.vms[vi].vcpu_tasks.clone();
        for &ti in &vcpus {
            let v = vcpu_mut(&mut self.tasks[ti]);
            if workload == Workload::Cpu {
                v.work = u64::MAX;
            } else if v.work == u64::MAX {
                v.work = 0;
            }
        }
        self.begin_workload(now, vi, ctx);
        let kicked = match workload {
            Workload::Cpu => vcpus.len(),
            Workload::Disk => 1,
            Workload::Network | Workload::Idle => 0,
        };
        for (k, &ti) in vcpus.iter().take(kicked).enumerate() {
            self.arm_timer(ti, now + 2_000 + k as u64 * 1_000, ctx);
        }
    }
}

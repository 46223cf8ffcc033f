//! The host scheduler: pCPUs with run queues, wake-ups (with wake-up preemption and
//! migration to an idle or less loaded CPU), context switches with idle balancing, and the
//! tick that asks a task which has run long enough to give its CPU away.

use std::collections::VecDeque;

use virtflow_model::WaitCause;

use super::{Action, Host, HostCtx, Role, Run, Scheduled, VPhase};
use crate::event::{IrqContext, Kind, Origin, Waker};

pub(super) struct Cpu {
    pub(super) current: usize, // task index; IDLE for the idle task
    pub(super) rq: VecDeque<usize>,
    pub(super) need_resched: bool,
    /// The last time an event was emitted on this CPU: switches come after it.
    pub(super) last_emit: u64,
    pub(super) switch_pending: bool,
    /// The interrupt handler running on it, if any, with the packet from another host it
    /// handles (see `Host::in_irq`).
    pub(super) irq: Option<(IrqContext, Option<Origin>)>,
}

pub(super) const IDLE: usize = usize::MAX;

impl Cpu {
    pub(super) fn idle() -> Cpu {
        Cpu {
            current: IDLE,
            rq: VecDeque::new(),
            need_resched: false,
            last_emit: 0,
            switch_pending: false,
            irq: None,
        }
    }
}

impl Host {
    /// Wakes a blocked task from `waker_cpu` at `now` (in the context current there).
    pub(super) fn wake(
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
        let waker = match self.cpus[waker_cpu].irq {
            Some((context, packet)) => Waker::Irq { context, packet },
            None if self.cpus[waker_cpu].current == IDLE => Waker::Idle,
            None => Waker::Task(self.tasks[self.cpus[waker_cpu].current].tid),
        };
        self.request_woken(ti, waker);
        self.emit(
            now,
            waker_cpu,
            Kind::SchedWaking {
                tid,
                target_cpu: target as u32,
                cause,
                waker,
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
    pub(super) fn switch(&mut self, now: u64, cpu: usize, prev_state: i64, ctx: &mut HostCtx) {
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
    pub(super) fn preempt_point(&mut self, now: u64, ti: usize, ctx: &mut HostCtx) -> bool {
        let cpu = self.tasks[ti].cpu;
        if self.cpus[cpu].need_resched && !self.cpus[cpu].rq.is_empty() {
            self.switch(now, cpu, 0x100, ctx);
            return true;
        }
        self.cpus[cpu].need_resched = false;
        false
    }

    /// The periodic scheduler tick of `cpu`: a task that has run for 3 ms while others wait
    /// is asked to give the CPU away (a vCPU in guest mode exits for it).
    pub(super) fn tick(&mut self, now: u64, cpu: usize, ctx: &mut HostCtx) {
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

    /// An idle CPU that was sent a wake-up picks its next task.
    pub(super) fn resched(&mut self, now: u64, cpu: usize, ctx: &mut HostCtx) {
        if self.cpus[cpu].current == IDLE {
            self.switch(now, cpu, 0, ctx);
        } else {
            self.cpus[cpu].switch_pending = false;
        }
    }
}

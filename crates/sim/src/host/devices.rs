//! The helper threads and the devices they drive: the VMM's I/O thread (block requests to the
//! host block layer and their completions), vhost (packets between the guest and the wire,
//! across hosts for a peer VM), the VMM main loop's housekeeping, host processes' CPU bursts,
//! and the irqfd MSIs the helpers raise to tell a guest that work is done.

use std::collections::VecDeque;

use virtflow_model::WaitCause;

use super::{helper_mut, vcpu_mut, Action, Host, HostCtx, MemThread, Role, Scheduled, Workload};
use crate::event::{IrqContext, Kind, Origin, Tcp, SOFTIRQ_BLOCK, SOFTIRQ_NET_RX};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dev {
    Disk,
    Net,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Job {
    /// Submit a guest disk request to the host block layer.
    DiskSubmit { vcpu: u32 },
    /// Signal a finished disk request to the guest.
    DiskComplete { vcpu: u32 },
    /// Guest → wire; a server's answer goes back to its peer VM only when the packet it
    /// answers came from there (`to_peer`).
    NetTx { vcpu: u32, to_peer: bool },
    /// Wire → guest; `from_peer`: sent by the VM's peer on another host.
    NetRx { vcpu: u32, from_peer: bool },
    /// The VMM main loop's periodic housekeeping (timers, legacy devices).
    MainTick,
    /// A host process's CPU burst (ns left).
    Burst(u64),
    /// A run of a memory kernel thread.
    Mem(MemThread),
}

#[derive(Clone, Debug)]
pub(super) struct HelperSt {
    pub(super) vm: Option<usize>,
    pub(super) jobs: VecDeque<Job>,
    /// The job in progress and its remaining CPU time.
    pub(super) cur: Option<(Job, u64)>,
    /// The memory kernel thread this is, if it is one.
    pub(super) mem: Option<MemThread>,
}

impl HelperSt {
    pub(super) fn new(vm: Option<usize>) -> HelperSt {
        HelperSt {
            vm,
            jobs: VecDeque::new(),
            cur: None,
            mem: None,
        }
    }
}

impl Host {
    // ----- device events ----------------------------------------------------------------------

    /// A disk request of `vm` is done: the completion interrupt, then the I/O thread tells the
    /// guest. With interrupt handlers traced, the device's hard interrupt raises the block
    /// softirq, which completes the request and wakes the I/O thread (its `io_uring` or AIO
    /// completion).
    pub(super) fn disk_done(&mut self, now: u64, vm: usize, vcpu: u32, ctx: &mut HostCtx) {
        // Completion interrupt on the CPU the I/O thread last ran on.
        let io = self.vms[vm].io_task;
        let cpu = self.tasks[io].cpu;
        let mut now = self.irq_enter(now, cpu, ctx);
        let traced = self.spec.irq_events;
        if traced {
            now = self.hardirq_then_softirq(now, cpu, (45, "nvme0q2"), SOFTIRQ_BLOCK);
        }
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
        let job = Job::DiskComplete { vcpu };
        if traced {
            let block = IrqContext::Softirq(SOFTIRQ_BLOCK);
            self.in_irq(cpu, block, None, |h| {
                h.give_job(now + 500, cpu, io, job, ctx)
            });
            self.emit(now + 1_200, cpu, Kind::SoftirqExit { vec: SOFTIRQ_BLOCK });
        } else {
            self.give_job(now + 500, cpu, io, job, ctx);
        }
    }

    /// A device's hard interrupt `(irq, name)` on `cpu` at `now`, which raises softirq `vec`,
    /// run right after it: returns when the softirq's work starts.
    fn hardirq_then_softirq(
        &mut self,
        now: u64,
        cpu: usize,
        irq: (u32, &'static str),
        vec: u32,
    ) -> u64 {
        let (irq, name) = irq;
        self.emit(now, cpu, Kind::IrqHandlerEntry { irq, name });
        self.emit(now + 600, cpu, Kind::IrqHandlerExit { irq });
        self.emit(now + 800, cpu, Kind::SoftirqEntry { vec });
        now + 1_000
    }

    /// A packet for `vm` arrives at the host NIC and goes through the tap device to vhost.
    pub(super) fn packet_in(
        &mut self,
        now: u64,
        vm: usize,
        vcpu: u32,
        tcp: Tcp,
        ctx: &mut HostCtx,
    ) {
        let vhost = self.vms[vm].vhost_task;
        let cpu = self.tasks[vhost].cpu;
        let mut now = self.irq_enter(now, cpu, ctx);
        let traced = self.spec.irq_events;
        if traced {
            now = self.hardirq_then_softirq(now, cpu, (33, "eth0-rx-0"), SOFTIRQ_NET_RX);
        }
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
        let job = Job::NetRx {
            vcpu,
            from_peer: tcp.origin.is_some(),
        };
        if traced {
            // NET_RX: the packet goes through the bridge to the tap device, whose reader,
            // vhost, is woken here.
            let net_rx = IrqContext::Softirq(SOFTIRQ_NET_RX);
            self.in_irq(cpu, net_rx, tcp.origin, |h| {
                h.give_job(now + 1_500, cpu, vhost, job, ctx)
            });
            self.emit(
                now + 2_000,
                cpu,
                Kind::SoftirqExit {
                    vec: SOFTIRQ_NET_RX,
                },
            );
        } else {
            self.give_job(now + 1_500, cpu, vhost, job, ctx);
        }
    }

    /// An outside client sends a packet to a network VM, and its next one later.
    pub(super) fn external_traffic(&mut self, now: u64, vm: usize, ctx: &mut HostCtx) {
        if self.vms[vm].workload != Workload::Network {
            // The network phase is over: the client stops.
            return;
        }
        let mean = self.vms[vm].spec.outside.unwrap_or(400_000);
        let next = now + self.rng.exp(mean, 20_000);
        ctx.queue.push(Scheduled {
            at: next,
            action: Action::ExternalTraffic { vm },
        });
        let nv = self.vms[vm].vcpu_tids.len() as u32;
        let vcpu = self.rng.range(0, nv as u64 - 1) as u32;
        let tcp = self.next_tcp(vm, true, 1448);
        self.packet_in(now, vm, vcpu, tcp, ctx);
    }

    /// A timer wakes a helper: the VMM main loop's housekeeping, a host process's next burst.
    pub(super) fn wake_helper(&mut self, now: u64, task: usize, ctx: &mut HostCtx) {
        let cpu = self.tasks[task].cpu;
        let job = match self.tasks[task].role {
            Role::HostProc(HelperSt { mem: Some(k), .. }) => {
                let sleep = self.rng.exp(k.period(), 1_000_000);
                ctx.queue.push(Scheduled {
                    at: now + sleep,
                    action: Action::WakeHelper { task },
                });
                Job::Mem(k)
            }
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
        self.in_irq(cpu, IrqContext::Timer, None, |h| {
            h.give_job(now + 300, cpu, task, job, ctx)
        });
        self.emit(
            now + 900,
            cpu,
            Kind::HrtimerExpireExit {
                hrtimer: 0xffff_9a3b_c000_0000 + self.tasks[task].tid as u64 * 0x40,
            },
        );
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
                origin: None,
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
                origin: None,
            };
            v.tcp_seq = v.tcp_seq.wrapping_add(payload as u32);
            t
        }
    }

    /// Queues a job for a helper thread and wakes it if it sleeps.
    pub(super) fn give_job(
        &mut self,
        now: u64,
        waker_cpu: usize,
        ti: usize,
        job: Job,
        ctx: &mut HostCtx,
    ) {
        if let Some(h) = helper_mut(&mut self.tasks[ti]) {
            h.jobs.push_back(job);
        }
        self.wake(now, waker_cpu, ti, None, ctx);
    }

    // ----- helper threads ---------------------------------------------------------------------

    pub(super) fn helper_step(&mut self, now: u64, ti: usize, ctx: &mut HostCtx) {
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
            Job::Mem(k) => rng.around(k.cost()),
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
                self.io_memory(now + 500, cpu, ti, vm, true)
            }
            Job::DiskComplete { vcpu } => {
                let vm = vm.unwrap();
                let vec = self.vms[vm].disk_vector;
                let now = self.io_memory(now, cpu, ti, vm, false);
                self.raise_msi(now, cpu, vm, vcpu, vec, WaitCause::Disk, ctx)
            }
            Job::NetRx { vcpu, from_peer } => {
                let vm = vm.unwrap();
                let now = self.vhost_memory(now, cpu, ti, vm);
                let vec = self.vms[vm].net_rx_vector;
                if self.vms[vm].spec.server {
                    let target = self.vms[vm].vcpu_tasks[vcpu as usize];
                    vcpu_mut(&mut self.tasks[target])
                        .from_peer
                        .push_back(from_peer);
                }
                self.raise_msi(now, cpu, vm, vcpu, vec, WaitCause::Network, ctx)
            }
            Job::NetTx { vcpu, to_peer } => {
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
                let sent = self.emit(
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
                    self.reply_to(vm).filter(|_| to_peer)
                } else {
                    spec.peer
                };
                if let Some((dh, dvm)) = dest {
                    tcp.flags = 0x18;
                    tcp.origin = Some(Origin {
                        host: self.index,
                        tid: self.tasks[ti].tid,
                        sent,
                    });
                    let wire = 30_000 + self.rng.exp(20_000, 0);
                    ctx.wire.push((now + 1_200 + wire, dh, dvm, 0, tcp));
                }
                // Every few packets, vhost signals used TX buffers to the guest (a VM of
                // requests does not: its driver reclaims them at its next transmit).
                self.vms[vm].tx_count += 1;
                if matches!(self.vms[vm].tx_count % 4, 0) && spec.request.is_none() {
                    let vec = self.vms[vm].net_tx_vector;
                    t = self.raise_msi(t, cpu, vm, vcpu, vec, WaitCause::Network, ctx);
                }
                t
            }
            Job::MainTick => {
                let vm = vm.unwrap();
                // Now and then a legacy device (RTC, serial) interrupts a vCPU: cause "other"
                // (never in a VM of requests, whose vCPUs wait for their requests alone).
                let quiet = self.vms[vm].spec.request.is_some();
                let t = if !quiet && self.rng.chance(0.5) {
                    let n = self.vms[vm].vcpu_tasks.len() as u64;
                    let c = self.rng.range(0, n - 1) as u32;
                    let vec = self.vms[vm].other_vector;
                    self.emit(now, cpu, Kind::KvmSetIrq { gsi: 8, level: 1 });
                    self.emit(now + 300, cpu, Kind::KvmSetIrq { gsi: 8, level: 0 });
                    self.deliver(now + 600, cpu, vm, c, vec, WaitCause::Other, true, ctx);
                    now + 2_000
                } else {
                    now
                };
                if self.spec.memory {
                    self.vmm_memory(t, cpu, ti, vm)
                } else {
                    t
                }
            }
            Job::Burst(_) if self.spec.memory => self.host_proc_memory(now, cpu, ti),
            Job::Burst(_) => now,
            Job::Mem(k) => self.mem_thread_work(now, cpu, ti, k),
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
}

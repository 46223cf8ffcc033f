//! Requests with a well-defined critical path (the `requests` scenario): a VM's vCPU 0 thinks
//! (runs guest code), issues one request, and halts — HLT, halt polling, then its thread
//! blocks — until the request's completion wakes it, with nothing else in between; then the
//! next one. Each completed request is recorded for the truth, which derives its critical
//! path from the threads' timelines.
//!
//! The kinds, by what completes them:
//!
//! - disk: a kick of the virtio disk; the I/O thread submits the request, the device's
//!   completion (a hard interrupt, then the block softirq) wakes the I/O thread, which raises
//!   the disk's MSI and so wakes the vCPU;
//! - network: a kick of virtio-net; vhost sends the request to the server VM of another host,
//!   whose answer comes back through the wire, vhost, and its MSI;
//! - IPI: a call-function IPI to vCPU 1, which works and passes one to vCPU 2, and so on; the
//!   last vCPU's IPI wakes vCPU 0;
//! - nested: vCPU 0 runs an L2 guest, whose device kick exits to L1; L1 hands the request to
//!   its vCPU 1 with an IPI and idles; vCPU 1 works and answers with an IPI, and L1 resumes
//!   L2. The request ends when L2 runs again.
//!
//! So that the requester waits for its request alone, a VM of requests has no periodic tick
//! (its guest is tickless: the first timer starts the requests, and the requester's timer is
//! cancelled at each request), no legacy device interrupts from the VMM's main loop, and no
//! TX-completion interrupts from vhost; its helper vCPUs react to nothing but the IPIs of
//! their chain.

use super::{vcpu, vcpu_mut, Dev, GuestOp, Host, VEC_CALL_SINGLE, VEC_TIMER};
use crate::event::Waker;

/// What a VM's requests go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Disk,
    Network,
    Ipi,
    Nested,
}

impl Request {
    pub fn name(self) -> &'static str {
        match self {
            Request::Disk => "disk",
            Request::Network => "network",
            Request::Ipi => "ipi",
            Request::Nested => "nested",
        }
    }
}

/// One completed request whose vCPU blocked once and was woken by the request's completion.
/// Times are on the reference (simulation) clock.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub kind: Request,
    pub vm: usize,
    pub vcpu: u32,
    pub tid: u32,
    /// The exit that issued it (`kvm_exit`).
    pub issued: u64,
    /// The entry at which the guest runs on with the request done (`kvm_entry`; into L2 for
    /// a nested request).
    pub resumed: u64,
    /// What woke the vCPU.
    pub waker: Waker,
}

/// A vCPU's requests.
#[derive(Clone, Debug, Default)]
pub(super) struct ReqState {
    /// The first request was started (by the first timer).
    started: bool,
    outstanding: Option<Outstanding>,
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    issued: u64,
    /// Times its thread blocked, and was woken, since.
    blocks: u32,
    wakes: u32,
    waker: Option<Waker>,
    /// Its completion was injected.
    done: bool,
}

impl ReqState {
    /// The thread gives up its CPU after a HLT.
    pub(super) fn blocked(&mut self) {
        if let Some(o) = &mut self.outstanding {
            o.blocks += 1;
        }
    }
}

impl Host {
    /// The guest of a VM of requests takes vector `vec` on vCPU task `ti`.
    pub(super) fn request_takes_interrupt(&mut self, ti: usize, vec: u8, request: Request) {
        let (vm, idx) = {
            let v = vcpu(&self.tasks[ti]);
            (v.vm, v.idx)
        };
        let nvcpus = self.vms[vm].vcpu_tasks.len() as u32;
        let completion = match request {
            Request::Disk => self.vms[vm].disk_vector,
            Request::Network => self.vms[vm].net_rx_vector,
            Request::Ipi | Request::Nested => VEC_CALL_SINGLE,
        };
        let think = self.rng.range(100_000, 500_000);
        let handling = self.rng.range(60_000, 250_000);
        let small = self.rng.around(5_000);
        let v = vcpu_mut(&mut self.tasks[ti]);
        let next = if idx == 0 {
            let waiting = v.req.outstanding.is_some();
            if waiting && vec == completion {
                if let Some(o) = &mut v.req.outstanding {
                    o.done = true;
                }
                true
            } else {
                let first = !v.req.started && !waiting && vec == VEC_TIMER;
                v.req.started |= first;
                first
            }
        } else {
            false
        };
        if next {
            let op = match request {
                Request::Disk => GuestOp::Kick(Dev::Disk),
                Request::Network => GuestOp::Kick(Dev::Net),
                Request::Ipi => GuestOp::Ipi(1 % nvcpus, VEC_CALL_SINGLE),
                Request::Nested => GuestOp::L2Kick,
            };
            v.work = think;
            v.todo.push_back((think, op));
        } else if idx > 0 && vec == VEC_CALL_SINGLE {
            // A helper of the chain: the work handed over, then the IPI to the next vCPU (the
            // requester last; a nested VM has one helper).
            let to = match request {
                Request::Nested => 0,
                _ => (idx + 1) % nvcpus,
            };
            v.work = v.work.saturating_add(handling);
            v.todo
                .push_back((handling, GuestOp::Ipi(to, VEC_CALL_SINGLE)));
        } else {
            v.work = v.work.saturating_add(small);
        }
    }

    /// L1 takes its L2 guest's request on vCPU task `ti` (the kick's exit was reflected to
    /// it): it passes the request to vCPU 1 with an IPI, then has nothing to do.
    pub(super) fn l1_takes_l2_request(&mut self, ti: usize) {
        let handling = self.rng.around(6_000);
        let v = vcpu_mut(&mut self.tasks[ti]);
        v.work = handling;
        v.todo
            .push_back((handling, GuestOp::Ipi(1, VEC_CALL_SINGLE)));
    }

    /// The exit at `exited` carried out `op` on vCPU task `ti`: when it is the requester's
    /// request, the request is outstanding from there, and the guest timer stays off.
    pub(super) fn request_issued(&mut self, ti: usize, op: GuestOp, exited: u64) {
        let v = vcpu(&self.tasks[ti]);
        let Some(request) = self.vms[v.vm].spec.request else {
            return;
        };
        let issues = match (request, op) {
            (Request::Disk, GuestOp::Kick(Dev::Disk))
            | (Request::Network, GuestOp::Kick(Dev::Net))
            | (Request::Ipi, GuestOp::Ipi(..))
            | (Request::Nested, GuestOp::L2Kick) => v.idx == 0,
            _ => false,
        };
        if !issues {
            return;
        }
        let v = vcpu_mut(&mut self.tasks[ti]);
        v.timer_gen += 1;
        v.req.outstanding = Some(Outstanding {
            issued: exited,
            blocks: 0,
            wakes: 0,
            waker: None,
            done: false,
        });
    }

    /// Task `ti` is woken by `waker`.
    pub(super) fn request_woken(&mut self, ti: usize, waker: Waker) {
        if let super::Role::Vcpu(v) = &mut self.tasks[ti].role {
            if let Some(o) = &mut v.req.outstanding {
                o.wakes += 1;
                o.waker.get_or_insert(waker);
            }
        }
    }

    /// vCPU task `ti` entered its guest at `entered`: a request whose completion was injected
    /// is over once the guest that made it runs again (L2, for a nested request). It is
    /// recorded when its vCPU blocked once and was woken once, by the thread that completed
    /// it.
    pub(super) fn request_entered(&mut self, ti: usize, entered: u64) {
        let tid = self.tasks[ti].tid;
        let v = vcpu(&self.tasks[ti]);
        let (vm, idx, in_l2) = (v.vm, v.idx, v.in_l2);
        let Some(o) = v.req.outstanding.filter(|o| o.done) else {
            return;
        };
        let Some(kind) = self.vms[vm].spec.request else {
            return;
        };
        if kind == Request::Nested && !in_l2 {
            return;
        }
        vcpu_mut(&mut self.tasks[ti]).req.outstanding = None;
        let info = &self.vms[vm];
        let completer = match kind {
            Request::Disk => info.io_tid,
            Request::Network => info.vhost_tid,
            Request::Ipi => info.vcpu_tids[info.vcpu_tids.len() - 1],
            Request::Nested => info.vcpu_tids[1],
        };
        let Some(waker) = o.waker else { return };
        if o.blocks != 1 || o.wakes != 1 || waker != Waker::Task(completer) {
            return;
        }
        self.requests.push(RequestRecord {
            kind,
            vm,
            vcpu: idx,
            tid,
            issued: o.issued,
            resumed: entered,
            waker,
        });
    }
}

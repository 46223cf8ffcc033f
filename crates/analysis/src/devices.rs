//! The work of each VM's virtual devices, as the host does it: block requests its threads
//! issue (`block_rq_issue` → `block_rq_complete`), the delay from a vCPU's I/O exit to the next
//! request its VM submits, and the packets its vhost threads handle.
//!
//! Fed after the W2A machine with the same events, in time order; it counts per host thread
//! and leaves the grouping into VMs to [`crate::vms`], which sums a VM's helper threads. The
//! one exception is the submit delay, which pairs a vCPU's I/O exit with a request of a thread
//! of the same VM while the pass runs: it asks the W2A machine's evidence of membership as it
//! stands at the request (thread groups, `vhost-<pid>` names, interrupts raised), so a VMM
//! whose membership is only learned later loses its first pairings.
//!
//! Memory: per host thread a few counters; the requests in flight; the vCPUs with an I/O exit
//! not yet paired.

use rustc_hash::FxHashMap;
use virtflow_model::{IoStats, Isa};
use virtflow_trace::Timestamp;

use crate::layout::{EventContext, TypedEvent};
use crate::series::{Clockwork, Series};
use crate::w2a::{thread_key, Analyzer};

/// A thread's device work per bucket, when the run keeps series.
#[derive(Default)]
pub(crate) struct IoSeries {
    pub disk_requests: Series,
    pub disk_latency_ns: Series,
    /// I/O exits answered by a request of this thread, and their delays, at the request.
    pub submit_delays: Series,
    pub submit_delay_ns: Series,
    pub packets: Series,
}

/// Exit reasons that carry guest I/O to the host: VMX IO_INSTRUCTION (30) and EPT_MISCONFIG
/// (49, MMIO); SVM `ioio` (0x7b) and `npf` (0x400, MMIO under nested paging).
fn is_io_exit(isa: Isa, code: u64) -> bool {
    match isa {
        Isa::Vmx => matches!(code & 0xffff, 30 | 49),
        Isa::Svm => matches!(code, 0x7b | 0x400),
    }
}

/// Requests in flight beyond this are completions the trace never showed (lost, or a device
/// that reports none): the oldest are forgotten so that memory stays bounded.
const MAX_IN_FLIGHT: usize = 1 << 16;

/// Per host thread, by the W2A machine's thread index.
pub(crate) type ThreadIo = IoStats;

#[derive(Default)]
pub(crate) struct Devices {
    threads: Vec<ThreadIo>,
    series: Vec<Option<Box<IoSeries>>>,
    /// (device, sector) → (issued at, issuing thread's index).
    in_flight: FxHashMap<(u64, u64), (Timestamp, usize)>,
    /// vCPU threads (by tid) whose last I/O exit no request has answered yet, with its time.
    io_exits: Vec<(u32, Timestamp)>,
}

impl Devices {
    fn thread(&mut self, i: usize) -> &mut ThreadIo {
        if self.threads.len() <= i {
            self.threads.resize(i + 1, ThreadIo::default());
        }
        &mut self.threads[i]
    }

    fn series_of(&mut self, i: usize) -> &mut IoSeries {
        if self.series.len() <= i {
            self.series.resize_with(i + 1, || None);
        }
        self.series[i].get_or_insert_with(Box::default)
    }

    /// The thread's device work per bucket (`None`: none, or series not kept).
    pub fn series(&self, i: usize) -> Option<&IoSeries> {
        self.series.get(i).and_then(|s| s.as_deref())
    }

    /// After [`Analyzer::event`] with the same event. Most events are none of those a device
    /// works with: they are told apart here, inlined into the pass, and never reach the call.
    #[inline]
    pub fn event(&mut self, an: &Analyzer, ctx: &EventContext, ev: &TypedEvent) {
        let works = match *ev {
            TypedEvent::KvmExit { isa, code, .. } => is_io_exit(isa, code),
            TypedEvent::BlockIssue { .. }
            | TypedEvent::BlockComplete { .. }
            | TypedEvent::Packet { .. } => true,
            _ => false,
        };
        if works {
            self.work(an, ctx, ev);
        }
    }

    /// [`Devices::event`] of an I/O exit, a block request's issue or completion, a packet.
    #[inline(never)]
    fn work(&mut self, an: &Analyzer, ctx: &EventContext, ev: &TypedEvent) {
        let current = || an.current(ctx).filter(|t| *t != 0);
        match *ev {
            TypedEvent::KvmExit { .. } => {
                let Some(tid) = current() else { return };
                match self.io_exits.iter_mut().find(|(t, _)| *t == tid) {
                    Some(e) => e.1 = ctx.ts,
                    None => self.io_exits.push((tid, ctx.ts)),
                }
            }
            TypedEvent::BlockIssue { dev, sector } => {
                let Some(i) = current().and_then(|t| an.thread_index(t)) else {
                    return;
                };
                if self.in_flight.len() >= MAX_IN_FLIGHT {
                    self.forget_oldest();
                }
                self.in_flight.insert((dev, sector), (ctx.ts, i));
                let issuer = an.threads[i].tid;
                // The latest unanswered I/O exit of a vCPU of the issuer's VM.
                let root = an.groups.root(thread_key(issuer));
                let latest = self
                    .io_exits
                    .iter()
                    .enumerate()
                    .filter(|(_, (vcpu, _))| an.groups.root(thread_key(*vcpu)) == root)
                    .max_by_key(|(_, (_, at))| *at)
                    .map(|(k, &(_, at))| (k, at));
                if let Some((k, at)) = latest {
                    self.io_exits.swap_remove(k);
                    let delay = (ctx.ts - at).max(0) as u64;
                    let t = self.thread(i);
                    t.submit_delays += 1;
                    t.submit_delay_ns += delay;
                    if an.keeps_series() {
                        let clock = &an.clock;
                        let s = self.series_of(i);
                        s.submit_delays.add_at(clock, ctx.ts, 1);
                        s.submit_delay_ns.add_at(clock, ctx.ts, delay);
                    }
                }
            }
            TypedEvent::BlockComplete { dev, sector } => {
                if let Some((issued, i)) = self.in_flight.remove(&(dev, sector)) {
                    let latency = (ctx.ts - issued).max(0) as u64;
                    let t = self.thread(i);
                    t.disk_requests += 1;
                    t.disk_latency_ns += latency;
                    if an.keeps_series() {
                        let clock = &an.clock;
                        let s = self.series_of(i);
                        s.disk_requests.add_at(clock, ctx.ts, 1);
                        s.disk_latency_ns.add_at(clock, ctx.ts, latency);
                    }
                }
            }
            TypedEvent::Packet { .. } => {
                if let Some(i) = current().and_then(|t| an.thread_index(t)) {
                    self.thread(i).packets += 1;
                    if an.keeps_series() {
                        let clock: &Clockwork = &an.clock;
                        self.series_of(i).packets.add_at(clock, ctx.ts, 1);
                    }
                }
            }
            _ => {}
        }
    }

    #[cold]
    fn forget_oldest(&mut self) {
        let mut issued: Vec<Timestamp> = self.in_flight.values().map(|v| v.0).collect();
        let half = issued.len() / 2;
        let (_, cut, _) = issued.select_nth_unstable(half);
        let cut = *cut;
        self.in_flight.retain(|_, v| v.0 > cut);
    }

    /// The counters of the thread of index `i` (zero when it did no device work).
    pub fn of(&self, i: usize) -> IoStats {
        self.threads.get(i).copied().unwrap_or_default()
    }
}

/// Adds `b` into `a`.
pub(crate) fn add(a: &mut IoStats, b: &IoStats) {
    a.disk_requests += b.disk_requests;
    a.disk_latency_ns += b.disk_latency_ns;
    a.submit_delays += b.submit_delays;
    a.submit_delay_ns += b.submit_delay_ns;
    a.packets += b.packets;
}

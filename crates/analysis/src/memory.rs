//! How much host memory each VM really holds: a ledger of the host pages allocated during the
//! trace, by page frame number, each charged to the thread that allocated it — a vCPU thread
//! faulting guest memory in, the VMM's main thread, its I/O or vhost thread — and returned to
//! that owner when any thread frees it (Trace Compass charges a free to the freeing thread,
//! which makes totals go negative; a VM's footprint needs the owner).
//!
//! Rules (the simulator's truth follows them): a page is `4096 << order` bytes; an allocation
//! belongs to the thread the event runs in (or to the host alone when none is known); a free
//! of a page allocated during the trace returns its bytes to its owner, at the free's time; a
//! free of any other page is the host's `freed_unowned_bytes`; `mm_page_free_batched` repeats
//! the `mm_page_free` of the same page, so it frees one order-0 page only in a trace without
//! `mm_page_free` (the layout decides); a KSM merge (`ksm_merge_one_page` without error, a
//! merge with the zero page; `ksm_merge_with_ksm_page` without error and into a KSM page)
//! counts for the process whose `ksm_enter` named its `mm`. A VM's peak is the most it held at
//! the end of a bucket of the host's time line.
//!
//! Memory: one ledger entry per page (of any order) allocated and not yet freed — 16 bytes of
//! key and value in a hash map, about 32 with the map's overhead — plus, per owning thread, its
//! series.

use rustc_hash::FxHashMap;
use virtflow_model::{HostMemory, VmMemory};

use crate::layout::{EventContext, TypedEvent};
use crate::series::{Clockwork, Series};
use crate::w2a::Analyzer;

/// The owner of pages allocated where no thread is known.
const NO_THREAD: u32 = u32::MAX;

#[derive(Default)]
struct Owner {
    allocated: u64,
    freed: u64,
    ksm_merged: u64,
    allocated_series: Series,
    freed_series: Series,
}

#[derive(Default)]
pub(crate) struct Memory {
    /// Whether any page event was seen.
    traced: bool,
    /// pfn → (owning thread's index, order).
    ledger: FxHashMap<u64, (u32, u8)>,
    ledger_peak: u64,
    owners: FxHashMap<u32, Owner>,
    /// mm → the thread whose `ksm_enter` named it.
    mms: FxHashMap<u64, u32>,
    host: HostMemory,
    host_allocated: Series,
    host_freed: Series,
}

fn bytes(order: u32) -> u64 {
    4096u64 << order.min(20)
}

impl Memory {
    /// After the W2A machine, with the same event. Page and KSM events only are told apart
    /// here, inlined into the pass: every other event never reaches the call.
    #[inline]
    pub fn event(&mut self, an: &Analyzer, ctx: &EventContext, ev: &TypedEvent) {
        if matches!(
            ev,
            TypedEvent::PageAlloc { .. }
                | TypedEvent::PageFree { .. }
                | TypedEvent::KsmEnter { .. }
                | TypedEvent::KsmMerge { .. }
        ) {
            self.work(an, ctx, ev);
        }
    }

    /// [`Memory::event`] of a page or KSM event.
    #[inline(never)]
    fn work(&mut self, an: &Analyzer, ctx: &EventContext, ev: &TypedEvent) {
        let clock = &an.clock;
        let current = || {
            an.current(ctx)
                .filter(|t| *t != 0)
                .and_then(|t| an.thread_index(t))
                .map_or(NO_THREAD, |i| i as u32)
        };
        match *ev {
            TypedEvent::PageAlloc { pfn, order } => {
                self.traced = true;
                let owner = current();
                let b = bytes(order);
                self.host.allocated_bytes += b;
                self.host_allocated.add_at(clock, ctx.ts, b);
                // A page allocated again without a free seen (a lost event): its first owner
                // gave it back.
                if let Some((old, old_order)) = self.ledger.insert(pfn, (owner, order as u8)) {
                    self.give_back(clock, ctx.ts, old, u32::from(old_order));
                }
                self.ledger_peak = self.ledger_peak.max(self.ledger.len() as u64);
                let o = self.owners.entry(owner).or_default();
                o.allocated += b;
                o.allocated_series.add_at(clock, ctx.ts, b);
            }
            TypedEvent::PageFree { pfn, order } => {
                self.traced = true;
                match self.ledger.remove(&pfn) {
                    Some((owner, own_order)) => {
                        self.give_back(clock, ctx.ts, owner, u32::from(own_order))
                    }
                    None => self.host.freed_unowned_bytes += bytes(order),
                }
            }
            TypedEvent::KsmEnter { mm } => {
                self.mms.insert(mm, current());
            }
            TypedEvent::KsmMerge { mm, merged: true } => {
                self.host.ksm_merged_pages += 1;
                if let Some(&owner) = self.mms.get(&mm) {
                    self.owners.entry(owner).or_default().ksm_merged += 1;
                }
            }
            _ => {}
        }
    }

    /// A page of `owner` freed at `ts`.
    fn give_back(&mut self, clock: &Clockwork, ts: i64, owner: u32, order: u32) {
        let b = bytes(order);
        self.host.freed_bytes += b;
        self.host_freed.add_at(clock, ts, b);
        let o = self.owners.entry(owner).or_default();
        o.freed += b;
        o.freed_series.add_at(clock, ts, b);
    }

    /// The host's totals (and series when the run keeps them).
    pub fn host(&self, clock: &Clockwork, series: bool) -> HostMemory {
        let mut h = self.host.clone();
        h.traced = self.traced;
        h.net_bytes = h.allocated_bytes as i64 - h.freed_bytes as i64;
        h.ledger_pages = self.ledger.len() as u64;
        h.ledger_peak_pages = self.ledger_peak;
        if series && self.traced {
            h.allocated = self.host_allocated.finish(clock);
            h.freed = self.host_freed.finish(clock);
        }
        h
    }

    /// The memory of the VM made of the threads of indices `threads`.
    pub fn vm(&self, clock: &Clockwork, threads: &[usize], series: bool) -> VmMemory {
        let mut m = VmMemory::default();
        if !self.traced {
            // KSM's events without the page allocator's (a recording of `ksm:*` alone).
            m.ksm_merged_pages = threads
                .iter()
                .filter_map(|i| self.owners.get(&(*i as u32)))
                .map(|o| o.ksm_merged)
                .sum();
            return m;
        }
        let n = clock.buckets().count;
        let (mut allocated, mut freed) = (vec![0u64; n], vec![0u64; n]);
        for &i in threads {
            let Some(o) = self.owners.get(&(i as u32)) else {
                continue;
            };
            m.allocated_bytes += o.allocated;
            m.freed_bytes += o.freed;
            m.ksm_merged_pages += o.ksm_merged;
            for (into, from) in [
                (&mut allocated, &o.allocated_series),
                (&mut freed, &o.freed_series),
            ] {
                for (a, b) in into.iter_mut().zip(from.finish(clock)) {
                    *a += b;
                }
            }
        }
        m.net_bytes = m.allocated_bytes as i64 - m.freed_bytes as i64;
        let mut held = 0i64;
        for (a, f) in allocated.iter().zip(&freed) {
            held += *a as i64 - *f as i64;
            m.peak_bytes = m.peak_bytes.max(held);
        }
        if series {
            m.allocated = allocated;
            m.freed = freed;
        }
        m
    }
}

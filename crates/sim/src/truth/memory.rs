//! The truth of host memory, from the page events written, by the rules the analysis
//! follows (the `memory` scenario's documentation states them in full):
//!
//! - a page is `4096 << order` bytes;
//! - an allocation (`mm_page_alloc`) is charged to the thread it runs in, and through it to
//!   that thread's VM when it is a vCPU, the VMM's main thread, its I/O thread or its vhost
//!   thread; the ledger holds the page by its pfn (a pfn allocated again without a free
//!   first goes back to its first owner);
//! - a free (`mm_page_free`) returns the page, of the allocation's order, to whoever
//!   allocated it, found by pfn, whichever thread frees it; a free of a pfn the ledger does
//!   not hold (allocated before the trace) is the host's `freed_unowned_bytes`;
//! - `mm_page_free_batched` repeats the `mm_page_free` the kernel emitted just before for the
//!   same page (`free_unref_folios` emits both): it frees nothing more; only in a trace
//!   without `mm_page_free` would it free one order-0 page;
//! - a KSM merge (`ksm_merge_one_page` with `err` 0) counts for the VM whose `mm` a
//!   `ksm_enter` in one of its threads named, and for the host;
//! - `net_bytes` = `allocated_bytes − freed_bytes`, for a VM and for the host (unowned frees
//!   apart); a VM's `peak_bytes` is the most it held (allocated − freed since the start) at
//!   the end of a bucket;
//! - series: allocated bytes at the allocation's time, freed bytes at the free's time charged
//!   to the owner's VM; the host's hold every allocation and every free of a page the ledger
//!   held (unowned frees apart).

use std::collections::{BTreeMap, HashMap};

use virtflow_model::{HostMemory, VmMemory};

use super::series::SeriesSet;

#[derive(Clone, Debug, Default)]
struct VmLedger {
    m: VmMemory,
    allocated: usize,
    freed: usize,
}

/// One host's page ledger.
pub(crate) struct Ledger {
    traced: bool,
    /// pfn → (owning VM, order).
    pages: HashMap<u64, (Option<usize>, u32)>,
    host: HostMemory,
    vms: Vec<VmLedger>,
    allocated: usize,
    freed: usize,
    mms: BTreeMap<u64, Option<usize>>,
    saw_free: bool,
}

impl Ledger {
    /// Without page events (`traced` false) no series is kept and no page event comes.
    pub(crate) fn new(traced: bool, nvms: usize, series: &mut SeriesSet) -> Ledger {
        let mut id = || if traced { series.add() } else { usize::MAX };
        let (allocated, freed) = (id(), id());
        let vms = (0..nvms)
            .map(|_| VmLedger {
                allocated: id(),
                freed: id(),
                ..VmLedger::default()
            })
            .collect();
        Ledger {
            traced,
            pages: HashMap::new(),
            host: HostMemory {
                traced,
                ..HostMemory::default()
            },
            vms,
            allocated,
            freed,
            mms: BTreeMap::new(),
            saw_free: false,
        }
    }

    pub(crate) fn alloc(
        &mut self,
        ts: u64,
        vm: Option<usize>,
        pfn: u64,
        order: u32,
        s: &mut SeriesSet,
    ) {
        let bytes = 4096u64 << order;
        self.host.allocated_bytes += bytes;
        s.add_at(self.allocated, ts, bytes);
        if let Some(v) = vm {
            let l = &mut self.vms[v];
            l.m.allocated_bytes += bytes;
            s.add_at(l.allocated, ts, bytes);
        }
        if let Some((old, old_order)) = self.pages.insert(pfn, (vm, order)) {
            self.give_back(ts, old, old_order, s);
        }
        self.host.ledger_peak_pages = self.host.ledger_peak_pages.max(self.pages.len() as u64);
    }

    /// A page of `vm` (of the host alone when `None`) freed at `ts`.
    fn give_back(&mut self, ts: u64, vm: Option<usize>, order: u32, s: &mut SeriesSet) {
        let bytes = 4096u64 << order;
        self.host.freed_bytes += bytes;
        s.add_at(self.freed, ts, bytes);
        if let Some(v) = vm {
            let l = &mut self.vms[v];
            l.m.freed_bytes += bytes;
            s.add_at(l.freed, ts, bytes);
        }
    }

    pub(crate) fn free(&mut self, ts: u64, pfn: u64, order: u32, batched: bool, s: &mut SeriesSet) {
        if batched && self.saw_free {
            return;
        }
        if !batched {
            self.saw_free = true;
        }
        match self.pages.remove(&pfn) {
            Some((vm, own_order)) => self.give_back(ts, vm, own_order, s),
            None => self.host.freed_unowned_bytes += 4096u64 << order,
        }
    }

    pub(crate) fn ksm_enter(&mut self, mm: u64, vm: Option<usize>) {
        self.mms.insert(mm, vm);
    }

    pub(crate) fn ksm_merge(&mut self, mm: u64, err: i32) {
        if err != 0 {
            return;
        }
        self.host.ksm_merged_pages += 1;
        if let Some(&Some(v)) = self.mms.get(&mm) {
            self.vms[v].m.ksm_merged_pages += 1;
        }
    }

    pub(crate) fn host(&self, series: &[Vec<u64>]) -> HostMemory {
        let mut h = self.host.clone();
        h.net_bytes = h.allocated_bytes as i64 - h.freed_bytes as i64;
        h.ledger_pages = self.pages.len() as u64;
        if self.traced {
            h.allocated = series[self.allocated].clone();
            h.freed = series[self.freed].clone();
        }
        h
    }

    pub(crate) fn vm(&self, vm: usize, series: &[Vec<u64>]) -> VmMemory {
        let l = &self.vms[vm];
        let mut m = l.m.clone();
        m.net_bytes = m.allocated_bytes as i64 - m.freed_bytes as i64;
        if self.traced {
            m.allocated = series[l.allocated].clone();
            m.freed = series[l.freed].clone();
            let mut held = 0i64;
            for (a, f) in m.allocated.iter().zip(&m.freed) {
                held += *a as i64 - *f as i64;
                m.peak_bytes = m.peak_bytes.max(held);
            }
        }
        m
    }
}

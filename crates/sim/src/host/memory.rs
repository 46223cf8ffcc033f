//! Host memory: page allocations in the context of the thread that makes them (a vCPU faulting
//! guest memory in, the VMM's main loop, I/O thread and vhost, host processes, kernel
//! threads), frees by the owner or by others (the VMM returning ballooned guest memory,
//! `kswapd0` reclaiming, `kcompactd0` migrating), pages allocated before the trace freed during
//! it, and KSM: each VMM process's `ksm_enter`, `ksmd` merging its pages and freeing the
//! duplicates.
//!
//! Every decision draws from the memory model's own generator, so that adding page events to
//! a scenario does not change what its vCPUs do, only when a CPU's later events land.

use super::Host;
use crate::event::Kind;
use crate::kmem::{
    GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_NOIO, GFP_TRANSHUGE, MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
};
use crate::rng::Rng;

/// How a VM's memory moves (the `memory` scenario).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemTouch {
    /// Probability that an EPT violation (NPF) exit is the first touch of a guest page, for
    /// which KVM allocates a host page in the vCPU thread.
    pub fault_alloc: f64,
    /// Of those, the share backed by a 2 MiB transparent huge page (order 9).
    pub thp: f64,
    /// Probability that a run of the VMM's main loop returns ballooned guest pages to the
    /// host (freed in the main thread's context).
    pub balloon: f64,
    /// At most this many guest pages per return.
    pub balloon_pages: u64,
}

/// The kernel threads of the memory model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MemThread {
    /// Merges identical pages of processes that called `madvise(MADV_MERGEABLE)`.
    Ksmd,
    /// Reclaims pages of any owner.
    Kswapd,
    /// Migrates pages of any owner to new ones.
    Kcompactd,
}

impl MemThread {
    pub(super) const ALL: [MemThread; 3] =
        [MemThread::Ksmd, MemThread::Kswapd, MemThread::Kcompactd];

    pub(super) fn comm(self) -> &'static str {
        match self {
            MemThread::Ksmd => "ksmd",
            MemThread::Kswapd => "kswapd0",
            MemThread::Kcompactd => "kcompactd0",
        }
    }
    pub(super) fn tid(self) -> u32 {
        match self {
            MemThread::Ksmd => 48,
            MemThread::Kswapd => 76,
            MemThread::Kcompactd => 51,
        }
    }
    /// Mean sleep between two runs (ksmd: `sleep_millisecs` = 20).
    pub(super) fn period(self) -> u64 {
        match self {
            MemThread::Ksmd => 20_000_000,
            MemThread::Kswapd => 40_000_000,
            MemThread::Kcompactd => 80_000_000,
        }
    }
    /// Mean CPU time of a run.
    pub(super) fn cost(self) -> u64 {
        match self {
            MemThread::Ksmd => 40_000,
            MemThread::Kswapd => 120_000,
            MemThread::Kcompactd => 60_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Page {
    pfn: u64,
    order: u32,
    /// When it was allocated (simulation time): it is freed only after that.
    at: u64,
}

/// The memory model of one host.
pub(super) struct Mem {
    rng: Rng,
    /// Fresh order-0 and order-9 frames, and frames of pages allocated before the trace.
    next_pfn: u64,
    next_huge: u64,
    next_pre: u64,
    /// Order-0 frames freed during the trace, reused now and then.
    reuse: Vec<u64>,
    /// Pages allocated during the trace and not freed, per task index.
    live: Vec<Vec<Page>>,
    /// Per VM: the `mm` its `ksm_enter` gave, and when.
    ksm: Vec<Option<(u64, u64)>>,
    next_rmap: u64,
}

/// The zero page's frame (`empty_zero_page`, in the kernel's image).
const ZERO_PFN: u64 = 0x3e2a;

impl Mem {
    pub(super) fn new(rng: Rng) -> Mem {
        Mem {
            rng,
            next_pfn: 0x18_0000,
            next_huge: 0x200_0000,
            next_pre: 0x4_0000,
            reuse: Vec::new(),
            live: Vec::new(),
            ksm: Vec::new(),
            next_rmap: 0xffff_8881_2c00_0000,
        }
    }

    fn fresh_pfn(&mut self, order: u32) -> u64 {
        if order == 9 {
            self.next_huge += 512 * self.rng.range(1, 3);
            return self.next_huge;
        }
        if !self.reuse.is_empty() && self.rng.chance(0.3) {
            let i = self.rng.range(0, self.reuse.len() as u64 - 1) as usize;
            return self.reuse.swap_remove(i);
        }
        self.next_pfn += self.rng.range(1, 24);
        self.next_pfn
    }

    /// Frames of pages allocated before the trace began (no owner in the trace).
    fn pre_trace(&mut self) -> u64 {
        self.next_pre += self.rng.range(1, 9);
        self.next_pre
    }

    /// Takes a random page allocated before `now` by one of the tasks `from` (order 0 only
    /// when asked).
    fn take(&mut self, from: &[usize], now: u64, order0: bool) -> Option<Page> {
        let owners: Vec<usize> = from
            .iter()
            .copied()
            .filter(|&t| !self.live[t].is_empty())
            .collect();
        if owners.is_empty() {
            return None;
        }
        for _ in 0..4 {
            let t = owners[self.rng.range(0, owners.len() as u64 - 1) as usize];
            let i = self.rng.range(0, self.live[t].len() as u64 - 1) as usize;
            let p = self.live[t][i];
            if p.at < now && (!order0 || p.order == 0) {
                return Some(self.live[t].swap_remove(i));
            }
        }
        None
    }
}

impl Host {
    /// Sizes the memory model once the tasks exist.
    pub(super) fn mem_init(&mut self) {
        self.mem.live = vec![Vec::new(); self.tasks.len()];
        self.mem.ksm = vec![None; self.vms.len()];
    }

    /// Allocates a page in the context of `ti`, running on `cpu`; returns the time after.
    fn page_alloc(&mut self, t: u64, cpu: usize, ti: usize, order: u32, gfp: u64) -> u64 {
        let pfn = self.mem.fresh_pfn(order);
        let migratetype = if gfp == GFP_KERNEL || gfp == GFP_NOIO || gfp == GFP_ATOMIC {
            MIGRATE_UNMOVABLE
        } else {
            MIGRATE_MOVABLE
        };
        let at = self.emit(
            t,
            cpu,
            Kind::MmPageAlloc {
                pfn,
                order,
                gfp,
                migratetype,
            },
        );
        self.mem.live[ti].push(Page { pfn, order, at });
        at + 150
    }

    /// Frees pages on `cpu` in the current task's context. Order-0 pages go through the
    /// batched path, as the kernel's `free_unref_folios` does: an `mm_page_free` for each,
    /// then an `mm_page_free_batched` for each; others through `mm_page_free` alone.
    fn pages_free(&mut self, t: u64, cpu: usize, pages: &[(u64, u32)], batched: bool) -> u64 {
        let mut t = t;
        for &(pfn, order) in pages {
            t = self.emit(t, cpu, Kind::MmPageFree { pfn, order }) + 80;
            if order == 0 {
                self.mem.reuse.push(pfn);
            }
        }
        if batched {
            for &(pfn, order) in pages {
                if order == 0 {
                    t = self.emit(t, cpu, Kind::MmPageFreeBatched { pfn }) + 60;
                }
            }
        }
        t + 100
    }

    fn vm_vcpu_tasks(&self, vm: usize) -> Vec<usize> {
        self.vms[vm].vcpu_tasks.clone()
    }

    /// A vCPU's EPT violation: now and then the first touch of a guest page, backed by a new
    /// host page (a THP at times) allocated in the vCPU thread.
    pub(super) fn guest_fault(&mut self, t: u64, cpu: usize, ti: usize, vm: usize) -> u64 {
        let Some(touch) = self.vms[vm].spec.memory else {
            return t;
        };
        if !self.mem.rng.chance(touch.fault_alloc) {
            return t;
        }
        if self.mem.rng.chance(touch.thp) {
            self.page_alloc(t, cpu, ti, 9, GFP_TRANSHUGE)
        } else {
            self.page_alloc(t, cpu, ti, 0, GFP_HIGHUSER_MOVABLE)
        }
    }

    /// The VMM's main loop: its `ksm_enter` the first time (QEMU's `madvise(MADV_MERGEABLE)`
    /// on guest memory), a page of its own heap now and then, and guest pages returned by
    /// the balloon (some of them faulted in before the trace).
    pub(super) fn vmm_memory(&mut self, t: u64, cpu: usize, ti: usize, vm: usize) -> u64 {
        let Some(touch) = self.vms[vm].spec.memory else {
            return t;
        };
        let mut t = t;
        if self.mem.ksm[vm].is_none() {
            let mm = 0xffff_8881_0a40_0000 + vm as u64 * 0x1_2340;
            let at = self.emit(t, cpu, Kind::KsmEnter { mm });
            self.mem.ksm[vm] = Some((mm, at));
            t = at + 200;
        }
        if self.mem.rng.chance(0.3) {
            for _ in 0..self.mem.rng.range(1, 2) {
                t = self.page_alloc(t, cpu, ti, 0, GFP_HIGHUSER_MOVABLE);
            }
        }
        if self.mem.rng.chance(touch.balloon) {
            let from = self.vm_vcpu_tasks(vm);
            let mut pages = Vec::new();
            for _ in 0..self.mem.rng.range(1, touch.balloon_pages) {
                if let Some(p) = self.mem.take(&from, t, false) {
                    pages.push((p.pfn, p.order));
                }
            }
            for _ in 0..self.mem.rng.range(0, 2) {
                pages.push((self.mem.pre_trace(), 0));
            }
            let (small, huge): (Vec<_>, Vec<_>) = pages.into_iter().partition(|p| p.1 == 0);
            t = self.pages_free(t, cpu, &huge, false);
            t = self.pages_free(t, cpu, &small, true);
        }
        t
    }

    /// The I/O thread: a page for each request it submits, freed when it completes.
    pub(super) fn io_memory(
        &mut self,
        t: u64,
        cpu: usize,
        ti: usize,
        vm: usize,
        submit: bool,
    ) -> u64 {
        if self.vms[vm].spec.memory.is_none() {
            return t;
        }
        if submit {
            return self.page_alloc(t, cpu, ti, 0, GFP_NOIO);
        }
        let oldest = self.mem.live[ti]
            .iter()
            .position(|p| p.at < t)
            .map(|i| self.mem.live[ti].remove(i));
        match oldest {
            Some(p) => self.pages_free(t, cpu, &[(p.pfn, p.order)], false),
            None => t,
        }
    }

    /// vhost: a page for a received packet, freed once copied into the guest.
    pub(super) fn vhost_memory(&mut self, t: u64, cpu: usize, ti: usize, vm: usize) -> u64 {
        if self.vms[vm].spec.memory.is_none() || !self.mem.rng.chance(0.5) {
            return t;
        }
        let t = self.page_alloc(t, cpu, ti, 0, GFP_ATOMIC);
        let p = self.mem.live[ti].pop().expect("just allocated");
        self.pages_free(t + 400, cpu, &[(p.pfn, p.order)], false)
    }

    /// A host process's or a kernel worker's burst: pages of its own, some of them freed
    /// again, and now and then pages allocated before the trace.
    pub(super) fn host_proc_memory(&mut self, t: u64, cpu: usize, ti: usize) -> u64 {
        let kernel = self
            .names
            .comm_ref(self.tasks[ti].tid)
            .starts_with("kworker");
        let gfp = if kernel {
            GFP_KERNEL
        } else {
            GFP_HIGHUSER_MOVABLE
        };
        let mut t = t;
        for _ in 0..self.mem.rng.range(0, 5) {
            t = self.page_alloc(t, cpu, ti, 0, gfp);
        }
        let mut pages = Vec::new();
        for _ in 0..self.mem.rng.range(0, 3) {
            if let Some(p) = self.mem.take(&[ti], t, false) {
                pages.push((p.pfn, p.order));
            }
        }
        if self.mem.rng.chance(0.25) {
            for _ in 0..self.mem.rng.range(1, 3) {
                pages.push((self.mem.pre_trace(), 0));
            }
        }
        self.pages_free(t, cpu, &pages, true)
    }

    /// A run of `ksmd`, `kswapd0` or `kcompactd0`.
    pub(super) fn mem_thread_work(
        &mut self,
        t: u64,
        cpu: usize,
        ti: usize,
        kind: MemThread,
    ) -> u64 {
        match kind {
            MemThread::Ksmd => self.ksm_scan(t, cpu),
            MemThread::Kswapd => {
                // Reclaim: pages of any owner, and pages older than the trace.
                let all: Vec<usize> = (0..self.tasks.len()).collect();
                let mut pages = Vec::new();
                for _ in 0..self.mem.rng.range(4, 24) {
                    if let Some(p) = self.mem.take(&all, t, false) {
                        pages.push((p.pfn, p.order));
                    }
                }
                for _ in 0..self.mem.rng.range(0, 6) {
                    pages.push((self.mem.pre_trace(), 0));
                }
                let (small, huge): (Vec<_>, Vec<_>) = pages.into_iter().partition(|p| p.1 == 0);
                let t = self.pages_free(t, cpu, &huge, false);
                self.pages_free(t, cpu, &small, true)
            }
            MemThread::Kcompactd => {
                // Migration: a new page (in kcompactd's context), then the old one freed.
                let all: Vec<usize> = (0..self.tasks.len()).filter(|&i| i != ti).collect();
                let mut t = t;
                for _ in 0..self.mem.rng.range(1, 8) {
                    let Some(old) = self.mem.take(&all, t, true) else {
                        break;
                    };
                    t = self.page_alloc(t, cpu, ti, 0, GFP_HIGHUSER_MOVABLE);
                    t = self.pages_free(t, cpu, &[(old.pfn, 0)], false);
                }
                t
            }
        }
    }

    /// `ksmd`: merges a few zero-filled pages of the VMs that entered KSM (at least 1 ms ago)
    /// with the zero page (`use_zero_pages`), as `ksm_merge_one_page` traces them, the zero
    /// page's pfn in the event; each merged page is freed in ksmd's context. Some merges fail
    /// (`-EFAULT`) and free nothing. (The kernel traces merges into KSM pages with
    /// `ksm_merge_with_ksm_page`, which the simulator does not write.)
    fn ksm_scan(&mut self, t: u64, cpu: usize) -> u64 {
        let ready: Vec<usize> = (0..self.vms.len())
            .filter(|&v| self.mem.ksm[v].is_some_and(|(_, at)| at + 1_000_000 < t))
            .collect();
        if ready.is_empty() {
            return t;
        }
        let mut t = t;
        for _ in 0..self.mem.rng.range(0, 3) {
            let vm = ready[self.mem.rng.range(0, ready.len() as u64 - 1) as usize];
            let (mm, _) = self.mem.ksm[vm].expect("entered");
            let from = self.vm_vcpu_tasks(vm);
            let page = if self.mem.rng.chance(0.75) {
                self.mem.take(&from, t, true)
            } else {
                None
            };
            let pfn = match page {
                Some(p) => p.pfn,
                None => self.mem.pre_trace(),
            };
            let err = if self.mem.rng.chance(0.08) { -14 } else { 0 };
            self.mem.next_rmap += 0x40;
            t = self.emit(
                t,
                cpu,
                Kind::KsmMergeOnePage {
                    pfn: ZERO_PFN,
                    rmap_item: self.mem.next_rmap,
                    mm,
                    err,
                },
            ) + 300;
            if err == 0 {
                t = self.pages_free(t, cpu, &[(pfn, 0)], false);
            } else if let Some(p) = page {
                // Not merged: the page stays with its VM.
                self.mem.live[from[0]].push(p);
            }
        }
        t
    }
}

//! The page allocator's and KSM's tracepoints as the kernel describes them: GFP flags and
//! their names, the `print fmt` of `kmem:mm_page_alloc`, `mm_page_free`, `mm_page_free_batched`,
//! `ksm:ksm_enter` and `ksm_merge_one_page` (Linux 6.x), and the text they print.

use std::fmt::Write as _;

/// `___GFP_*` bits (Linux 6.x, `include/linux/gfp_types.h`).
const HIGHMEM: u64 = 1 << 1;
const MOVABLE: u64 = 1 << 3;
const HIGH: u64 = 1 << 5;
const IO: u64 = 1 << 6;
const FS: u64 = 1 << 7;
const DIRECT_RECLAIM: u64 = 1 << 10;
const KSWAPD_RECLAIM: u64 = 1 << 11;
const NOWARN: u64 = 1 << 13;
const COMP: u64 = 1 << 18;
const NOMEMALLOC: u64 = 1 << 19;
const HARDWALL: u64 = 1 << 20;
const ACCOUNT: u64 = 1 << 22;
const RECLAIM: u64 = DIRECT_RECLAIM | KSWAPD_RECLAIM;

pub const GFP_KERNEL: u64 = RECLAIM | IO | FS;
pub const GFP_KERNEL_ACCOUNT: u64 = GFP_KERNEL | ACCOUNT;
pub const GFP_ATOMIC: u64 = HIGH | KSWAPD_RECLAIM;
pub const GFP_NOIO: u64 = RECLAIM;
pub const GFP_USER: u64 = GFP_KERNEL | HARDWALL;
pub const GFP_HIGHUSER: u64 = GFP_USER | HIGHMEM;
pub const GFP_HIGHUSER_MOVABLE: u64 = GFP_HIGHUSER | MOVABLE;
pub const GFP_TRANSHUGE_LIGHT: u64 = (GFP_HIGHUSER_MOVABLE | COMP | NOMEMALLOC | NOWARN) & !RECLAIM;
pub const GFP_TRANSHUGE: u64 = GFP_TRANSHUGE_LIGHT | DIRECT_RECLAIM;

/// `MIGRATE_UNMOVABLE` and `MIGRATE_MOVABLE`.
pub const MIGRATE_UNMOVABLE: i32 = 0;
pub const MIGRATE_MOVABLE: i32 = 1;

/// `show_gfp_flags`: composite names first, then single bits, in the kernel's order.
const GFP_NAMES: &[(u64, &str)] = &[
    (GFP_TRANSHUGE, "GFP_TRANSHUGE"),
    (GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
    (GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (GFP_HIGHUSER, "GFP_HIGHUSER"),
    (GFP_USER, "GFP_USER"),
    (GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
    (GFP_KERNEL, "GFP_KERNEL"),
    (RECLAIM | IO, "GFP_NOFS"),
    (GFP_ATOMIC, "GFP_ATOMIC"),
    (GFP_NOIO, "GFP_NOIO"),
    (KSWAPD_RECLAIM | NOWARN, "GFP_NOWAIT"),
    (1, "GFP_DMA"),
    (1 << 2, "GFP_DMA32"),
    (RECLAIM, "__GFP_RECLAIM"),
    (1, "__GFP_DMA"),
    (HIGHMEM, "__GFP_HIGHMEM"),
    (1 << 2, "__GFP_DMA32"),
    (MOVABLE, "__GFP_MOVABLE"),
    (1 << 4, "__GFP_RECLAIMABLE"),
    (HIGH, "__GFP_HIGH"),
    (IO, "__GFP_IO"),
    (FS, "__GFP_FS"),
    (1 << 8, "__GFP_ZERO"),
    (DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
    (1 << 12, "__GFP_WRITE"),
    (NOWARN, "__GFP_NOWARN"),
    (1 << 14, "__GFP_RETRY_MAYFAIL"),
    (1 << 15, "__GFP_NOFAIL"),
    (1 << 16, "__GFP_NORETRY"),
    (1 << 17, "__GFP_MEMALLOC"),
    (COMP, "__GFP_COMP"),
    (NOMEMALLOC, "__GFP_NOMEMALLOC"),
    (HARDWALL, "__GFP_HARDWALL"),
    (1 << 21, "__GFP_THISNODE"),
    (ACCOUNT, "__GFP_ACCOUNT"),
    (1 << 23, "__GFP_ZEROTAGS"),
];

/// GFP flags as `__print_flags` prints them: each name whose bits are all still set, `|`
/// between, what is left in hex, `none` for 0.
pub fn gfp_text(flags: u64, s: &mut String) {
    if flags == 0 {
        s.push_str("none");
        return;
    }
    let mut left = flags;
    let mut first = true;
    for &(v, name) in GFP_NAMES {
        if left & v == v {
            if !first {
                s.push('|');
            }
            s.push_str(name);
            first = false;
            left &= !v;
        }
    }
    if left != 0 {
        if !first {
            s.push('|');
        }
        let _ = write!(s, "0x{left:x}");
    }
}

/// The `print fmt` of `mm_page_alloc`, with the kernel's arguments (the flag table as
/// numbers).
pub fn page_alloc_print() -> String {
    let mut table = String::new();
    for (i, &(v, name)) in GFP_NAMES.iter().enumerate() {
        if i > 0 {
            table.push_str(", ");
        }
        let _ = write!(table, "{{0x{v:x}UL, \"{name}\"}}");
    }
    format!(
        "\"page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s\", REC->pfn != -1UL ? \
         (((struct page *)vmemmap_base) + (REC->pfn)) : ((void *)0), REC->pfn != -1UL ? REC->pfn : 0, \
         REC->order, REC->migratetype, (REC->gfp_flags) ? __print_flags(REC->gfp_flags, \"|\", {table}) : \"none\""
    )
}

pub const PAGE_FREE_PRINT: &str = "\"page=%p pfn=0x%lx order=%d\", (((struct page *)vmemmap_base) + (REC->pfn)), REC->pfn, REC->order";
pub const PAGE_FREE_BATCHED_PRINT: &str =
    "\"page=%p pfn=0x%lx order=0\", (((struct page *)vmemmap_base) + (REC->pfn)), REC->pfn";
pub const KSM_ENTER_PRINT: &str = "\"mm %p\", REC->mm";
pub const KSM_MERGE_PRINT: &str =
    "\"ksm pfn %lu rmap_item %p mm %p error %d\", REC->pfn, REC->rmap_item, REC->mm, REC->err";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gfp_names_as_the_kernel_prints_them() {
        let t = |f| {
            let mut s = String::new();
            gfp_text(f, &mut s);
            s
        };
        assert_eq!(GFP_HIGHUSER_MOVABLE, 0x100cca);
        assert_eq!(GFP_TRANSHUGE, 0x1c24ca);
        assert_eq!(t(GFP_HIGHUSER_MOVABLE), "GFP_HIGHUSER_MOVABLE");
        assert_eq!(t(GFP_TRANSHUGE), "GFP_TRANSHUGE");
        assert_eq!(t(GFP_KERNEL), "GFP_KERNEL");
        assert_eq!(t(GFP_ATOMIC), "GFP_ATOMIC");
        assert_eq!(
            t(GFP_HIGHUSER_MOVABLE | COMP),
            "GFP_HIGHUSER_MOVABLE|__GFP_COMP"
        );
        assert_eq!(t(0), "none");
        assert_eq!(t(1 << 30), "0x40000000");
    }
}

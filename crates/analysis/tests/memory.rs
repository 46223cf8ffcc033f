//! How much host memory each VM holds: the page ledger on a real host trace where a guest
//! touched 128 MiB once (recorded in the nested lab, `tests/traces/m1_memory`), and on
//! hand-written traces whose figures are derived by hand from the ledger's rules.

use std::path::PathBuf;

use virtflow_analysis::{analyze, Options};
use virtflow_testkit::ftrace::{entry, ev, switch, u};
use virtflow_trace::{VecEvent, VecSource};

fn with_series() -> Options {
    Options {
        series: true,
        ..Options::default()
    }
}

/// A trace of the repository, decompressed into a scratch file.
fn repo_trace(name: &str) -> PathBuf {
    let zst = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/traces"))
        .join(name)
        .join("trace.dat.zst");
    let out = std::env::temp_dir().join(format!(
        "virtflow-memory-test-{}-{name}.dat",
        std::process::id()
    ));
    let bytes = zstd::decode_all(std::fs::File::open(&zst).unwrap()).unwrap();
    std::fs::write(&out, bytes).unwrap();
    out
}

/// The guest wrote 128 MiB of fresh pages once: its VM's host footprint rises by what the
/// host's own accounting says its QEMU process grew (RssAnon, in the manifest), within what
/// KVM's page tables add.
#[test]
fn a_guest_touching_128_mib_grows_its_vm_by_what_the_host_saw() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/traces/m1_memory/manifest.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let rise = manifest["memory"]["host_rss_anon_rise_kb"]
        .as_i64()
        .unwrap()
        * 1024;
    let pid = manifest["vms"][0]["qemu_pid"].as_u64().unwrap() as u32;
    let path = repo_trace("m1_memory");
    let mut src = virtflow_ftrace::DatSource::open(&path).unwrap();
    let m = analyze(&mut src, &with_series()).unwrap();
    let _ = std::fs::remove_file(&path);
    let host = &m.hosts[0].memory;
    assert!(host.traced);
    let vm = m.vms.iter().find(|v| v.pid == pid).expect("the VM");
    let mem = &vm.memory;
    assert_eq!(
        mem.net_bytes,
        mem.allocated_bytes as i64 - mem.freed_bytes as i64
    );
    // KVM's page tables for the new guest memory: at most 1% more.
    let slack = rise / 100;
    assert!(
        (mem.net_bytes - rise).abs() <= slack,
        "VM net {} MiB, the host's RssAnon rose {} MiB",
        mem.net_bytes as f64 / 1048576.0,
        rise as f64 / 1048576.0
    );
    assert!(mem.peak_bytes >= mem.net_bytes);
    let total: u64 = mem.allocated.iter().sum();
    assert_eq!(total, mem.allocated_bytes);
    // Host totals add up.
    assert_eq!(
        host.net_bytes,
        host.allocated_bytes as i64 - host.freed_bytes as i64
    );
}

fn alloc(ts: i64, tid: u64, pfn: u64, order: u64) -> VecEvent {
    ev(
        ts,
        0,
        "mm_page_alloc",
        &[
            ("common_pid", u(tid)),
            ("pfn", u(pfn)),
            ("order", u(order)),
            ("gfp_flags", u(0)),
            ("migratetype", u(1)),
        ],
    )
}

fn free(ts: i64, tid: u64, pfn: u64, order: u64) -> VecEvent {
    ev(
        ts,
        0,
        "mm_page_free",
        &[("common_pid", u(tid)), ("pfn", u(pfn)), ("order", u(order))],
    )
}

/// A vCPU thread allocates; its VMM's main thread and a kernel thread free some of those
/// pages: they go back to the VM, not to the freeing threads. A free of a page from before
/// the trace belongs to no one.
#[test]
fn a_page_freed_by_another_thread_returns_to_the_vm_that_allocated_it() {
    let vcpu = (101, "CPU 0/KVM");
    let main = (100, "qemu-system-x86");
    let with_tgid = |mut e: VecEvent, tgid: u64| {
        e.fields.push(("common_tgid".into(), u(tgid)));
        e
    };
    // In milliseconds: the peak is taken at the end of each 1 ms bucket.
    const MS: i64 = 1_000_000;
    let events = vec![
        with_tgid(switch(0, 0, (0, "swapper/0"), 0, vcpu), 100),
        with_tgid(entry(10, 0, 101, 0), 100),
        with_tgid(alloc(MS, 101, 0x1000, 0), 100),
        with_tgid(alloc(2 * MS, 101, 0x2000, 9), 100),
        with_tgid(alloc(3 * MS, 101, 0x3000, 0), 100),
        with_tgid(switch(4 * MS, 0, vcpu, 1, main), 100),
        // The main thread frees one of the vCPU's pages, and one of its own.
        with_tgid(free(5 * MS, 100, 0x1000, 0), 100),
        with_tgid(alloc(5 * MS + 500, 100, 0x4000, 0), 100),
        with_tgid(free(5 * MS + 600, 100, 0x4000, 0), 100),
        // A kernel thread frees the 2 MiB page, and one allocated before the trace.
        switch(6 * MS, 0, main, 1, (15, "kcompactd0")),
        free(7 * MS, 15, 0x2000, 9),
        free(8 * MS, 15, 0x9999, 2),
        // The batched path's second event for a page freed just before: nothing more.
        free(9 * MS, 15, 0x3000, 0),
        ev(
            9 * MS + 100,
            0,
            "mm_page_free_batched",
            &[("common_pid", u(15)), ("pfn", u(0x3000))],
        ),
    ];
    let m = analyze(&mut VecSource::new(events), &with_series()).unwrap();
    let vm = &m.vms[0];
    assert_eq!(vm.pid, 100);
    let mem = &vm.memory;
    // Allocated: 4 KiB + 2 MiB + 4 KiB by the vCPU, 4 KiB by the main thread.
    assert_eq!(mem.allocated_bytes, 4096 + (4096 << 9) + 4096 + 4096);
    // Freed: every page, once, whoever freed it.
    assert_eq!(mem.freed_bytes, 4096 + 4096 + (4096 << 9) + 4096);
    assert_eq!(mem.net_bytes, 0);
    // Held most at the end of the 3 ms bucket: both 4 KiB pages and the 2 MiB one.
    assert_eq!(mem.peak_bytes, 4096 + (4096 << 9) + 4096);
    assert_eq!(mem.allocated.iter().sum::<u64>(), mem.allocated_bytes);
    let host = &m.hosts[0].memory;
    // Only the page from before the trace: the batched event is no free of an unknown page.
    assert_eq!(host.freed_unowned_bytes, 4096 << 2);
    assert_eq!(host.ledger_pages, 0);
    assert_eq!(host.ledger_peak_pages, 3);
}

/// A trace that records `mm_page_free_batched` but not `mm_page_free` (some recorders enable
/// the batched event alone): each stands for the free of one order-0 page.
#[test]
fn without_mm_page_free_a_batched_free_frees_a_page() {
    let vcpu = (101, "CPU 0/KVM");
    let batched = |ts: i64, pfn: u64| {
        ev(
            ts,
            0,
            "mm_page_free_batched",
            &[("common_pid", u(15)), ("pfn", u(pfn))],
        )
    };
    let events = vec![
        switch(0, 0, (0, "swapper/0"), 0, vcpu),
        entry(10, 0, 101, 0),
        alloc(1_000, 101, 0x1000, 0),
        alloc(2_000, 101, 0x2000, 0),
        switch(3_000, 0, vcpu, 1, (15, "kswapd0")),
        batched(4_000, 0x1000),
        batched(5_000, 0x7777),
    ];
    let m = analyze(&mut VecSource::new(events), &with_series()).unwrap();
    let mem = &m.vms[0].memory;
    assert_eq!(mem.allocated_bytes, 2 * 4096);
    assert_eq!(mem.freed_bytes, 4096);
    assert_eq!(mem.net_bytes, 4096);
    let host = &m.hosts[0].memory;
    assert_eq!(host.freed_unowned_bytes, 4096);
    assert_eq!(host.ledger_pages, 1);
}

fn ksm_event(ts: i64, tid: u64, name: &str, fields: &[(&str, i64)]) -> VecEvent {
    let mut all = vec![("common_pid", u(tid))];
    all.extend(fields.iter().map(|(k, v)| {
        let v = if *k == "err" {
            virtflow_trace::Value::Int(*v)
        } else {
            u(*v as u64)
        };
        (*k, v)
    }));
    ev(ts, 0, name, &all)
}

/// KSM's merges (Linux ≥ 6.4's tracepoints, `include/trace/events/ksm.h`): a merge with the
/// zero page is `ksm_merge_one_page`; every other merge is `ksm_merge_with_ksm_page`, which
/// also fires, with no KSM page, for the first half of merging two pages (the page becomes
/// the KSM page, nothing is merged yet). Failed merges (`err` ≠ 0) count for nothing.
#[test]
fn ksm_merges_count_only_what_was_merged() {
    const MM: i64 = 0x7880_1234_5600;
    const OTHER_MM: i64 = 0x7880_9999_0000;
    const KSM_PAGE: i64 = 0x7a00_0001_4000;
    const KSMD: u64 = 48;
    let vcpu = (101, "CPU 0/KVM");
    let one = |ts: i64, mm: i64, err: i64| {
        ksm_event(
            ts,
            KSMD,
            "ksm_merge_one_page",
            &[("pfn", 1), ("rmap_item", ts), ("mm", mm), ("err", err)],
        )
    };
    let with = |ts: i64, ksm_page: i64, err: i64| {
        ksm_event(
            ts,
            KSMD,
            "ksm_merge_with_ksm_page",
            &[
                ("ksm_page", ksm_page),
                ("pfn", 0x500),
                ("rmap_item", ts),
                ("mm", MM),
                ("err", err),
            ],
        )
    };
    let events = vec![
        switch(0, 0, (0, "swapper/0"), 0, vcpu),
        entry(10, 0, 101, 0),
        // The VMM's madvise(MADV_MERGEABLE), in one of its threads.
        ksm_event(20, 101, "ksm_enter", &[("mm", MM)]),
        switch(30, 0, vcpu, 0, (KSMD, "ksmd")),
        // A zero-page merge; one that failed (-EFAULT).
        one(1_000, MM, 0),
        one(2_000, MM, -14),
        // Two pages merged: the first half makes a KSM page of one (no ksm_page), the second
        // merges the other into it.
        with(3_000, 0, 0),
        with(3_100, KSM_PAGE, 0),
        // A page merged into a stable KSM page, and one whose merge failed.
        with(4_000, KSM_PAGE, 0),
        with(5_000, KSM_PAGE, -14),
        // A process no VM's thread named: the host's only.
        one(6_000, OTHER_MM, 0),
    ];
    let m = analyze(&mut VecSource::new(events), &with_series()).unwrap();
    assert_eq!(m.vms.len(), 1);
    assert_eq!(m.vms[0].memory.ksm_merged_pages, 3);
    assert_eq!(m.hosts[0].memory.ksm_merged_pages, 4);
}

/// The same rule on the text `trace-cmd report` prints, where `ksm_merge_with_ksm_page`
/// shows its KSM page only as the word "ksm" before the pfn.
#[test]
fn ksm_merges_read_from_text() {
    let text = "\
 CPU 0/KVM-101   [000]   100.000000010: kvm_entry:            vcpu 0, rip 0xffffffff81000000
 CPU 0/KVM-101   [000]   100.000000020: ksm_enter:            mm 0xffff888012345600
 CPU 0/KVM-101   [000]   100.000000030: sched_switch:         prev_comm=CPU 0/KVM prev_pid=101 prev_prio=120 prev_state=R ==> next_comm=ksmd next_pid=48 next_prio=125
      ksmd-48    [000]   100.000001000: ksm_merge_one_page:   ksm pfn 1 rmap_item 0xffff888000001000 mm 0xffff888012345600 error 0
      ksmd-48    [000]   100.000002000: ksm_merge_with_ksm_page: pfn 1280 rmap_item 0xffff888000002000 mm 0xffff888012345600 error 0
      ksmd-48    [000]   100.000002100: ksm_merge_with_ksm_page: ksm pfn 1280 rmap_item 0xffff888000003000 mm 0xffff888012345600 error 0
      ksmd-48    [000]   100.000003000: ksm_merge_with_ksm_page: ksm pfn 1280 rmap_item 0xffff888000004000 mm 0xffff888012345600 error -14
";
    let mut src = virtflow_ftrace::TextSource::from_bytes(
        std::path::Path::new("ksm.txt"),
        text.as_bytes().to_vec(),
    )
    .unwrap();
    let m = analyze(&mut src, &Options::default()).unwrap();
    assert_eq!(m.vms.len(), 1);
    assert_eq!(m.vms[0].memory.ksm_merged_pages, 2);
    assert_eq!(m.hosts[0].memory.ksm_merged_pages, 2);
}

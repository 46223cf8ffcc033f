//! `--memory` on fake hosts: the page events (and KSM's where the kernel has them) join any
//! level, in each tracer's vocabulary; a kernel without them warns or stays quiet as their need
//! says; the buffers grow for them; and the cost is said with the rate measured, or without.

use std::collections::BTreeSet;

use virtflow_record::backend::{buffer_kb_per_cpu, Backend};
use virtflow_record::events::{memory_cost, plan, Level, PageRate, Vocabulary};
use virtflow_record::host::{Host, Tracefs, TRACEFS_DIR};

/// A root host whose tracefs lists `tracepoints`.
fn fake_host(tracepoints: &[&str]) -> Host {
    Host {
        kernel: "6.8.0".into(),
        euid: 0,
        cap_sys_admin: true,
        tracefs: Tracefs {
            mounted_at: Some(TRACEFS_DIR.into()),
            supported: true,
            mount_point_exists: true,
        },
        tracepoints: Some(tracepoints.iter().map(|t| t.to_string()).collect()),
        perf: Some("/usr/bin/perf".into()),
        perf_events_work: Some(true),
        cpus: 8,
        mem_available_kb: Some(64 << 20),
        ..Host::default()
    }
}

const BASIC: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_wakeup",
    "kvm:kvm_entry",
    "kvm:kvm_exit",
];
const PAGES: &[&str] = &[
    "kmem:mm_page_alloc",
    "kmem:mm_page_free",
    "kmem:mm_page_free_batched",
];
const KSM: &[&str] = &[
    "ksm:ksm_enter",
    "ksm:ksm_exit",
    "ksm:ksm_merge_one_page",
    "ksm:ksm_merge_with_ksm_page",
];

#[test]
fn memory_adds_page_and_ksm_events_to_any_level() {
    let all: Vec<&str> = [BASIC, PAGES, KSM].concat();
    let host = fake_host(&all);
    for level in [Level::Basic, Level::Full] {
        let without = plan(level, false, Vocabulary::Ftrace, |n| host.has_tracepoint(n)).unwrap();
        assert!(!without
            .enabled
            .iter()
            .any(|e| e.starts_with("kmem:") || e.starts_with("ksm:")));
        let with = plan(level, true, Vocabulary::Ftrace, |n| host.has_tracepoint(n)).unwrap();
        let added: BTreeSet<&str> = with
            .enabled
            .iter()
            .filter(|e| !without.enabled.contains(e))
            .map(|e| e.as_str())
            .collect();
        assert_eq!(
            added,
            [
                "kmem:mm_page_alloc",
                "kmem:mm_page_free",
                "ksm:ksm_enter",
                "ksm:ksm_merge_one_page",
                "ksm:ksm_merge_with_ksm_page",
            ]
            .into(),
            "the batched free repeats mm_page_free and is not recorded"
        );
        assert_eq!(with.absent, without.absent);
    }
    // LTTng: the page events by its names, no KSM instrumentation.
    let lttng = [
        "sched_switch",
        "sched_wakeup",
        "kvm_x86_entry",
        "kvm_x86_exit",
        "kmem_mm_page_alloc",
        "kmem_mm_page_free",
    ];
    let p = plan(Level::Basic, true, Vocabulary::Lttng, |n| {
        lttng.contains(&n)
    })
    .unwrap();
    assert!(p.enabled.iter().any(|e| e == "kmem_mm_page_alloc"));
    assert!(p.enabled.iter().any(|e| e == "kmem_mm_page_free"));
    assert!(!p
        .absent
        .iter()
        .any(|e| e.starts_with("kmem") || e.contains("ksm")));
}

#[test]
fn a_kernel_without_them_warns_for_pages_and_not_for_ksm() {
    // Before Linux 6.4: no KSM tracepoints, quietly skipped.
    let host = fake_host(&[BASIC, PAGES].concat());
    let p = plan(Level::Basic, true, Vocabulary::Ftrace, |n| {
        host.has_tracepoint(n)
    })
    .unwrap();
    assert!(p.enabled.iter().any(|e| e == "kmem:mm_page_alloc"));
    assert!(!p.enabled.iter().any(|e| e.starts_with("ksm:")));
    assert!(!p.absent.iter().any(|e| e.starts_with("ksm:")));
    // Without page tracepoints: both are wanted, so warned about; recording goes on.
    let host = fake_host(BASIC);
    let p = plan(Level::Basic, true, Vocabulary::Ftrace, |n| {
        host.has_tracepoint(n)
    })
    .unwrap();
    assert!(p.absent.contains(&"kmem:mm_page_alloc".to_string()));
    assert!(p.absent.contains(&"kmem:mm_page_free".to_string()));
}

#[test]
fn buffers_grow_for_page_events() {
    let host = fake_host(BASIC);
    for backend in [Backend::Perf, Backend::Tracefs, Backend::Lttng] {
        for level in [Level::Basic, Level::Full] {
            let plain = buffer_kb_per_cpu(backend, level, false, Some(10.0), None, &host);
            let memory = buffer_kb_per_cpu(backend, level, true, Some(10.0), None, &host);
            assert!(memory > plain, "{backend} {level}");
        }
    }
}

#[test]
fn the_cost_is_said_up_front_with_the_rate_measured_or_without() {
    let measured = memory_cost(Some(PageRate::Events {
        allocs: 8_512.4,
        frees: 9_611.0,
    }));
    assert!(measured.contains("tens of thousands"), "{measured}");
    assert!(
        measured.contains("8,512 allocations and 9,611 frees per second (perf stat)"),
        "{measured}"
    );
    // 18,123 events a second at about 40 bytes each.
    assert!(
        measured.contains("about 725 kB of trace per second"),
        "{measured}"
    );
    assert!(measured.contains("lost events"), "{measured}");
    let bounded = memory_cost(Some(PageRate::Pages {
        allocs: 87_000.0,
        frees: 94_000.0,
    }));
    assert!(bounded.contains("at most 87,000 allocations"), "{bounded}");
    assert!(bounded.contains("/proc/vmstat"), "{bounded}");
    let unknown = memory_cost(None);
    assert!(unknown.contains("tens of thousands"), "{unknown}");
    assert!(unknown.contains("could not be measured"), "{unknown}");
}

//! The events virtflow records: exactly those the analyses read, in each tracer's vocabulary.
//!
//! [`CATALOGUE`] lists them once, with their tracefs/perf name (`system:name`, alternatives
//! for renamed tracepoints) and their LTTng name. [`plan`] intersects the catalogue with what a
//! host offers: an absent [`Need::Essential`] event is an error, an absent [`Need::Wanted`]
//! one a warning, an absent [`Need::IfPresent`] one is skipped quietly.
//!
//! The page allocator's and KSM's events are recorded only when asked for (`--memory`), at
//! any level: they are frequent, and [`memory_cost`] says how much so before recording.

use std::fmt;
use std::str::FromStr;

use crate::RecordError;

/// How much to record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Scheduler, KVM, interrupts and timers: vCPU states and wait causes.
    #[default]
    Basic,
    /// `basic` plus block and network events: disk and network metrics.
    Full,
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "basic" => Ok(Level::Basic),
            "full" => Ok(Level::Full),
            _ => Err(format!("unknown level `{s}` (basic, full)")),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Basic => "basic",
            Level::Full => "full",
        })
    }
}

/// What recording does when the host lacks an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The analyses cannot work without it: recording fails.
    Essential,
    /// An analysis loses precision without it: recording warns and goes on.
    Wanted,
    /// Used when the host has it (patched or newer tracers); never warned about.
    IfPresent,
}

/// The tracer vocabulary an event list is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vocabulary {
    /// tracefs and perf: `system:name`.
    Ftrace,
    /// LTTng kernel tracer: its own names (`kvm_x86_entry`, `timer_hrtimer_expire_entry`…).
    Lttng,
}

/// One event of the catalogue.
#[derive(Debug)]
pub struct EventSpec {
    /// tracefs/perf names, `system:name`; the first one the host has is used (tracepoints
    /// renamed across kernel versions list both names). Empty: not an ftrace event.
    pub ftrace: &'static [&'static str],
    /// LTTng kernel event names, first present wins. Empty: LTTng has no such event.
    pub lttng: &'static [&'static str],
    pub need: Need,
    /// The lowest level that records it.
    pub level: Level,
    /// Recorded only with `--memory` (at any level), not by the level alone.
    pub memory: bool,
}

const fn ev(
    ftrace: &'static [&'static str],
    lttng: &'static [&'static str],
    need: Need,
    level: Level,
) -> EventSpec {
    EventSpec {
        ftrace,
        lttng,
        need,
        level,
        memory: false,
    }
}

/// An event of `--memory`.
const fn mem(
    ftrace: &'static [&'static str],
    lttng: &'static [&'static str],
    need: Need,
) -> EventSpec {
    EventSpec {
        ftrace,
        lttng,
        need,
        level: Level::Basic,
        memory: true,
    }
}

use Level::{Basic, Full};
use Need::{Essential, IfPresent, Wanted};

/// Every event the analyses use (see DOMAIN.md: vCPU states, wait causes, injections, nested
/// VMs, disk, network and memory metrics).
pub const CATALOGUE: &[EventSpec] = &[
    // Scheduler: thread states, wake-ups (the waker tells the wait cause), thread identity.
    ev(&["sched:sched_switch"], &["sched_switch"], Essential, Basic),
    ev(&["sched:sched_wakeup"], &["sched_wakeup"], Essential, Basic),
    ev(&["sched:sched_waking"], &["sched_waking"], Wanted, Basic),
    ev(
        &["sched:sched_wakeup_new"],
        &["sched_wakeup_new"],
        Wanted,
        Basic,
    ),
    ev(
        &["sched:sched_migrate_task"],
        &["sched_migrate_task"],
        Wanted,
        Basic,
    ),
    ev(
        &["sched:sched_process_fork"],
        &["sched_process_fork"],
        Wanted,
        Basic,
    ),
    ev(
        &["sched:sched_process_exit"],
        &["sched_process_exit"],
        Wanted,
        Basic,
    ),
    ev(
        &["sched:sched_process_exec"],
        &["sched_process_exec"],
        Wanted,
        Basic,
    ),
    // KVM: guest/hypervisor time, exit reasons, injections, IPIs, irqfd, nested VMs.
    ev(
        &["kvm:kvm_entry"],
        &["kvm_x86_entry", "kvm_entry"],
        Essential,
        Basic,
    ),
    ev(
        &["kvm:kvm_exit"],
        &["kvm_x86_exit", "kvm_exit"],
        Essential,
        Basic,
    ),
    ev(
        &["kvm:kvm_userspace_exit"],
        &["kvm_userspace_exit"],
        Wanted,
        Basic,
    ),
    ev(&["kvm:kvm_inj_virq"], &["kvm_x86_inj_virq"], Wanted, Basic),
    ev(
        &["kvm:kvm_apic_accept_irq"],
        &["kvm_x86_apic_accept_irq"],
        Wanted,
        Basic,
    ),
    ev(&["kvm:kvm_apic_ipi"], &["kvm_x86_apic_ipi"], Wanted, Basic),
    ev(&["kvm:kvm_set_irq"], &["kvm_set_irq"], Wanted, Basic),
    ev(
        &["kvm:kvm_msi_set_irq"],
        &["kvm_msi_set_irq"],
        Wanted,
        Basic,
    ),
    ev(
        &["kvm:kvm_vcpu_wakeup"],
        &["kvm_vcpu_wakeup"],
        IfPresent,
        Basic,
    ),
    ev(
        &["kvm:kvm_hypercall"],
        &["kvm_x86_hypercall"],
        Wanted,
        Basic,
    ),
    ev(&["kvm:kvm_pio"], &["kvm_x86_pio"], Wanted, Basic),
    ev(&["kvm:kvm_mmio"], &["kvm_mmio"], Wanted, Basic),
    ev(
        &["kvm:kvm_nested_vmenter", "kvm:kvm_nested_vmrun"],
        &["kvm_x86_nested_vmrun", "kvm_x86_nested_vmenter"],
        Wanted,
        Basic,
    ),
    ev(
        &["kvm:kvm_nested_vmexit"],
        &["kvm_x86_nested_vmexit"],
        Wanted,
        Basic,
    ),
    ev(
        &["kvm:kvm_nested_vmexit_inject"],
        &["kvm_x86_nested_vmexit_inject"],
        Wanted,
        Basic,
    ),
    ev(
        &["kvm:kvm_nested_intr_vmexit"],
        &["kvm_x86_nested_intr_vmexit"],
        Wanted,
        Basic,
    ),
    // CR3 at guest entry (guest processes): only patched LTTng modules have it.
    ev(
        &[],
        &["addons_vcpu_enter_guest", "vcpu_enter_guest"],
        IfPresent,
        Basic,
    ),
    // Host interrupts and timers: the context of wake-ups (timer vs device vs IPI).
    ev(
        &["irq:irq_handler_entry"],
        &["irq_handler_entry"],
        Wanted,
        Basic,
    ),
    ev(
        &["irq:irq_handler_exit"],
        &["irq_handler_exit"],
        Wanted,
        Basic,
    ),
    ev(
        &["irq:softirq_entry"],
        &["irq_softirq_entry"],
        Wanted,
        Basic,
    ),
    ev(&["irq:softirq_exit"], &["irq_softirq_exit"], Wanted, Basic),
    ev(
        &["irq_vectors:local_timer_entry"],
        &["x86_irq_vectors_local_timer_entry"],
        IfPresent,
        Basic,
    ),
    ev(
        &["irq_vectors:local_timer_exit"],
        &["x86_irq_vectors_local_timer_exit"],
        IfPresent,
        Basic,
    ),
    ev(
        &["timer:hrtimer_expire_entry"],
        &["timer_hrtimer_expire_entry"],
        Wanted,
        Basic,
    ),
    ev(
        &["timer:hrtimer_expire_exit"],
        &["timer_hrtimer_expire_exit"],
        Wanted,
        Basic,
    ),
    // Disk: request latency and the I/O thread's part in a disk wait.
    ev(&["block:block_rq_issue"], &["block_rq_issue"], Wanted, Full),
    ev(
        &["block:block_rq_complete"],
        &["block_rq_complete"],
        Wanted,
        Full,
    ),
    ev(
        &["block:block_rq_insert"],
        &["block_rq_insert"],
        Wanted,
        Full,
    ),
    ev(
        &["block:block_bio_queue"],
        &["block_bio_queue"],
        Wanted,
        Full,
    ),
    // Network: vhost packets, and send/receive pairs for clock synchronisation.
    ev(&["net:net_dev_queue"], &["net_dev_queue"], Wanted, Full),
    ev(
        &["net:netif_receive_skb"],
        &["net_if_receive_skb"],
        Wanted,
        Full,
    ),
    ev(&["net:net_dev_xmit"], &["net_dev_xmit"], Wanted, Full),
    // Memory (`--memory`): a VM's real footprint, the pages each thread allocates and whoever
    // frees them. `mm_page_free_batched` is left out: the kernel emits it after the
    // `mm_page_free` of the same page on its batched path (nearly every free), so it would add
    // a third to the volume and nothing to the ledger.
    mem(&["kmem:mm_page_alloc"], &["kmem_mm_page_alloc"], Wanted),
    mem(&["kmem:mm_page_free"], &["kmem_mm_page_free"], Wanted),
    // KSM (Linux ≥ 6.4; LTTng has no KSM events): which process's memory is mergeable, and
    // the pages merged — with the zero page (`ksm_merge_one_page`, `use_zero_pages`), or into
    // a KSM page (`ksm_merge_with_ksm_page`: a merge when its `ksm_page` is set and `err` is
    // 0; with no `ksm_page` it only turns a page into a KSM page, and merges nothing).
    mem(&["ksm:ksm_enter"], &[], IfPresent),
    mem(&["ksm:ksm_merge_one_page"], &[], IfPresent),
    mem(&["ksm:ksm_merge_with_ksm_page"], &[], IfPresent),
];

impl EventSpec {
    /// This event's names in `vocabulary`, preferred first.
    pub fn names(&self, vocabulary: Vocabulary) -> &'static [&'static str] {
        match vocabulary {
            Vocabulary::Ftrace => self.ftrace,
            Vocabulary::Lttng => self.lttng,
        }
    }
}

/// The events recorded at `level`, in `vocabulary`, with their need (`--memory`'s apart).
pub fn catalogue(level: Level, vocabulary: Vocabulary) -> impl Iterator<Item = &'static EventSpec> {
    CATALOGUE
        .iter()
        .filter(move |e| !e.memory && e.level <= level && !e.names(vocabulary).is_empty())
}

/// The events `--memory` adds, in `vocabulary`.
pub fn memory_events(vocabulary: Vocabulary) -> impl Iterator<Item = &'static EventSpec> {
    CATALOGUE
        .iter()
        .filter(move |e| e.memory && !e.names(vocabulary).is_empty())
}

/// This host's rate of page events, measured just before recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PageRate {
    /// `perf stat` counted the events themselves: allocations and frees per second.
    Events { allocs: f64, frees: f64 },
    /// `/proc/vmstat` counted pages allocated and freed per second; an allocation of order
    /// `n` counts `2^n` pages, so the events are at most this many.
    Pages { allocs: f64, frees: f64 },
}

/// Bytes a page event takes in a trace, about (tracefs: 24 for a free, 44 for an allocation;
/// perf and LTTng add their headers and context).
const PAGE_EVENT_BYTES: f64 = 40.0;

/// What `--memory` costs, said before recording: how frequent page events are, here if
/// measured, and what that does to the trace.
pub fn memory_cost(rate: Option<PageRate>) -> String {
    let mut s = String::from(
        "--memory records every page allocation and free (kmem:mm_page_alloc, \
         kmem:mm_page_free; KSM's ksm_enter and merges where the kernel has them): a busy \
         host makes tens of thousands of them per second, far more than scheduler switches \
         (a 2-CPU machine building software: 8,500 allocations and 9,600 frees per second, \
         against 400 switches)",
    );
    let per_s = |allocs: f64, frees: f64, what: &str, how: &str| {
        let total = allocs + frees;
        format!(
            "; here, just now, {what}{} allocations and {} frees per second ({how}), about {} \
             of trace per second",
            thousands(allocs),
            thousands(frees),
            human_rate(total * PAGE_EVENT_BYTES)
        )
    };
    match rate {
        Some(PageRate::Events { allocs, frees }) => {
            s.push_str(&per_s(allocs, frees, "", "perf stat"));
        }
        Some(PageRate::Pages { allocs, frees }) => {
            s.push_str(&per_s(
                allocs,
                frees,
                "at most ",
                "pages counted by /proc/vmstat; larger allocations are one event for many pages",
            ));
        }
        None => s.push_str("; the rate here could not be measured"),
    }
    s.push_str(
        ". The ring buffers are sized larger for them, but expect a bigger trace and, on a busy \
         host, lost events (the end of the recording counts them).",
    );
    s
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_rate(bytes_per_s: f64) -> String {
    if bytes_per_s >= 1e6 {
        format!("{:.1} MB", bytes_per_s / 1e6)
    } else {
        format!("{:.0} kB", (bytes_per_s / 1e3).max(1.0))
    }
}

/// The events to enable on one host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventPlan {
    /// Names to enable, in the tracer's vocabulary.
    pub enabled: Vec<String>,
    /// Wanted events the host lacks (preferred name): recording warns about each.
    pub absent: Vec<String>,
}

/// Picks, for each catalogue event of `level` (and of `--memory` with `memory`), the first of
/// its names the host has (`has(name)`). Fails on the first absent essential event, naming
/// it.
pub fn plan(
    level: Level,
    memory: bool,
    vocabulary: Vocabulary,
    has: impl Fn(&str) -> bool,
) -> Result<EventPlan, RecordError> {
    let mut plan = EventPlan::default();
    let extra = memory_events(vocabulary).filter(move |_| memory);
    for spec in catalogue(level, vocabulary).chain(extra) {
        let names = spec.names(vocabulary);
        match names.iter().find(|n| has(n)) {
            Some(name) => plan.enabled.push(name.to_string()),
            None => match spec.need {
                Need::Essential => {
                    return Err(RecordError::TracepointAbsent {
                        name: names[0].to_string(),
                        hint: absent_hint(names[0]),
                    })
                }
                Need::Wanted => plan.absent.push(names[0].to_string()),
                Need::IfPresent => {}
            },
        }
    }
    Ok(plan)
}

/// Why an essential event may be absent, and what to do about it.
pub fn absent_hint(name: &str) -> String {
    if name.contains("kvm") {
        "KVM tracepoints appear when the kvm module is loaded: load it (`modprobe kvm_intel` or \
         `modprobe kvm_amd`); `virtflow doctor` tells which"
            .to_string()
    } else {
        "this kernel was built without it (CONFIG_TRACEPOINTS / CONFIG_FTRACE); use a kernel \
         with tracing enabled"
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_a_name_in_some_vocabulary_and_a_system() {
        for e in CATALOGUE {
            assert!(!e.ftrace.is_empty() || !e.lttng.is_empty(), "{e:?}");
            for n in e.ftrace {
                let (sys, name) = n.split_once(':').expect("system:name");
                assert!(
                    !sys.is_empty() && !name.is_empty() && !name.contains(':'),
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn basic_has_what_the_brief_lists_and_full_adds_io_and_memory() {
        let basic: Vec<&str> = catalogue(Level::Basic, Vocabulary::Ftrace)
            .map(|e| e.ftrace[0])
            .collect();
        for must in [
            "sched:sched_switch",
            "sched:sched_waking",
            "sched:sched_process_exec",
            "kvm:kvm_entry",
            "kvm:kvm_exit",
            "kvm:kvm_inj_virq",
            "kvm:kvm_msi_set_irq",
            "kvm:kvm_nested_vmexit",
            "irq:softirq_entry",
            "irq_vectors:local_timer_entry",
            "timer:hrtimer_expire_exit",
        ] {
            assert!(basic.contains(&must), "basic lacks {must}");
        }
        assert!(!basic
            .iter()
            .any(|n| n.starts_with("block:") || n.starts_with("net:") || n.starts_with("kmem:")));
        // Page events only with --memory, at any level.
        for level in [Level::Basic, Level::Full] {
            assert!(!catalogue(level, Vocabulary::Ftrace).any(|e| e.ftrace[0].starts_with("kmem:")));
        }
        let full: Vec<&str> = catalogue(Level::Full, Vocabulary::Ftrace)
            .map(|e| e.ftrace[0])
            .collect();
        for must in [
            "block:block_rq_issue",
            "block:block_bio_queue",
            "net:netif_receive_skb",
            "net:net_dev_xmit",
        ] {
            assert!(full.contains(&must), "full lacks {must}");
        }
        assert!(basic.iter().all(|b| full.contains(b)));
        // No event twice.
        let mut sorted = full.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), full.len());
    }

    #[test]
    fn lttng_names_follow_lttng_modules() {
        let names: Vec<&str> = catalogue(Level::Full, Vocabulary::Lttng)
            .map(|e| e.lttng[0])
            .collect();
        for must in [
            "kvm_x86_entry",
            "kvm_x86_exit",
            "kvm_userspace_exit",
            "timer_hrtimer_expire_entry",
            "irq_softirq_entry",
            "net_if_receive_skb",
        ] {
            assert!(names.contains(&must), "lttng lacks {must}");
        }
        let memory: Vec<&str> = memory_events(Vocabulary::Lttng)
            .map(|e| e.lttng[0])
            .collect();
        assert_eq!(memory, ["kmem_mm_page_alloc", "kmem_mm_page_free"]);
        assert!(!names.iter().any(|n| n.contains(':')));
    }

    #[test]
    fn plan_uses_alternatives_warns_and_fails_on_essentials() {
        // An older kernel: nested entry is still `kvm_nested_vmrun`, no kvm_vcpu_wakeup, no
        // sched_waking.
        let host = |n: &str| {
            n != "kvm:kvm_nested_vmenter" && n != "kvm:kvm_vcpu_wakeup" && n != "sched:sched_waking"
        };
        let p = plan(Level::Basic, false, Vocabulary::Ftrace, host).unwrap();
        assert!(p.enabled.contains(&"kvm:kvm_nested_vmrun".to_string()));
        assert!(!p.enabled.iter().any(|n| n == "kvm:kvm_vcpu_wakeup"));
        assert_eq!(p.absent, vec!["sched:sched_waking".to_string()]);

        // No KVM loaded: kvm_entry is essential.
        let err = plan(Level::Basic, false, Vocabulary::Ftrace, |n: &str| {
            !n.starts_with("kvm:")
        })
        .unwrap_err();
        match err {
            RecordError::TracepointAbsent { name, hint } => {
                assert_eq!(name, "kvm:kvm_entry");
                assert!(hint.contains("modprobe"));
            }
            other => panic!("{other}"),
        }
    }
}

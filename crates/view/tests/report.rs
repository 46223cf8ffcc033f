//! The HTML report is one self-contained file.

use virtflow_view::{report, synthetic};

#[test]
fn report_is_self_contained_and_has_every_section() {
    let mut model = synthetic::model(2, 2, 3_000, 9);
    model.vms[0].name = "vm<script>alert(1)</script>".to_string();
    model.vms[1].uuid = Some("5f1c2e8a-0b3d-4c7e-9a41-2d6f8e0b7c19".to_string());
    let html = report::write_html(model);
    assert!(
        html.contains("uuid 5f1c2e8a-0b3d-4c7e-9a41-2d6f8e0b7c19"),
        "a VM's uuid is shown"
    );
    for section in [
        "Overview timeline",
        "State shares per vCPU",
        "Exit reasons",
        "Wait causes",
        "Preemption",
        "Clusters",
    ] {
        assert!(
            html.contains(&format!("<h2>{section}</h2>")),
            "missing {section}"
        );
    }
    // No external request: nothing is loaded by URL, and there is no script at all.
    let lower = html.to_lowercase();
    for forbidden in [
        "<script", "src=", "href=", "url(", "@import", "<link", "https:",
    ] {
        assert!(!lower.contains(forbidden), "report contains {forbidden:?}");
    }
    let http: Vec<_> = lower
        .match_indices("http:")
        .map(|(i, _)| &lower[i..i + 30])
        .collect();
    assert!(
        http.iter()
            .all(|h| h.starts_with("http://www.w3.org/2000/svg")),
        "{http:?}"
    );
    assert!(html.contains("vm&lt;script&gt;"), "names are escaped");
    assert!(html.contains("EPT_VIOLATION"));
    assert!(
        html.matches("<rect").count() > 100,
        "the overview draws segments"
    );
}

/// The text of `html` with its tags taken out and its entities read, so that phrases read
/// across them.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn report_says_each_vms_verdict_memory_phases_and_what_held_its_waits_up() {
    let model = synthetic::story();
    let html = report::write_html(model.clone());
    for section in [
        "Overcommitment",
        "Memory",
        "Phases",
        "Longest waits and what held them up",
    ] {
        assert!(
            html.contains(&format!("<h2>{section}</h2>")),
            "missing {section}"
        );
    }
    let words = text(&html);
    // Verdicts, the host's and each VM's, as the analysis wrote them.
    assert!(words.contains(&model.hosts[0].overcommit.verdict));
    for vm in &model.vms {
        assert!(words.contains(&vm.overcommit.verdict), "{}", vm.name);
    }
    // The steal split: web's 13 ms of steal (3 ms ready, 10 ms preempted by backup).
    assert!(words.contains("web 13.00 ms"), "web's steal");
    // Memory held over time: a chart, and the totals (web: 40 MiB allocated, 10 freed, 30
    // held at the end, 40 at its peak; batch 10 MiB).
    assert!(html.contains("aria-label=\"memory held per VM over time\""));
    assert!(
        words.contains("web 40.0 MiB 10.0 MiB 30.0 MiB 40.0 MiB 12 pages"),
        "web's memory"
    );
    assert!(
        words.contains("batch 10.0 MiB 0 B 10.0 MiB 10.0 MiB 0 pages"),
        "batch's memory"
    );
    assert!(html.contains("aria-label=\"runnable vCPUs against pCPUs on synthetic-host\""));
    assert!(html.contains("aria-label=\"steal per VM over time\""));
    // One band per VM with a rectangle per phase.
    assert!(html.contains("aria-label=\"phases per VM\""));
    assert_eq!(html.matches("class=\"phase\"").count(), 5);
    assert!(html.contains("<title>disk-intensive: 50.00 ms to 70.00 ms</title>"));

    // web's longest waits, longest first: vCPU 1 20–45 ms (CPU contention on its path), vCPU 0
    // 10–30 ms (the same), vCPU 0 51–70 ms (its I/O thread's work and the disk).
    let waits: Vec<usize> = [
        "1. vCPU 1 waited 25.00 ms from 20.000 ms to 45.000 ms, until a thread woke it.",
        "2. vCPU 0 waited 20.00 ms from 10.000 ms to 30.000 ms, until a thread woke it.",
        "3. vCPU 0 waited 19.00 ms from 51.000 ms to 70.000 ms, until a thread woke it.",
    ]
    .iter()
    .map(|w| words.find(w).unwrap_or_else(|| panic!("missing {w:?}")))
    .collect();
    assert!(waits.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(words.contains(
        "CPU contention: for 28% of this time (7.00 ms) a thread on the path was runnable but had no CPU, mostly held by batch vCPU 0."
    ));
    assert!(words.contains(
        "68% of this time web's IO iothread0 (4011, disk I/O thread) was handling its disk requests"
    ));
    assert!(words
        .contains("32 % 6.00 ms web's IO iothread0 (4011, disk I/O thread) waiting for the disk"));
    // The idle timer waits are counted apart: web vCPU 1's 35 ms, batch vCPU 1's 20 ms.
    assert!(words.contains("1 waits for the vCPUs' own timer (the guest idle, which the host cannot shorten), the longest 35.00 ms"));
    assert!(words.contains("no wait that another thread or a device ended"));
    // Still one self-contained file.
    assert!(!html.to_lowercase().contains("<script"));
}

#[test]
fn report_says_why_it_has_no_memory_phases_or_paths() {
    let mut model = synthetic::story();
    model.graph = None;
    for h in &mut model.hosts {
        h.memory = Default::default();
    }
    for vm in &mut model.vms {
        vm.phases.clear();
    }
    let words = text(&report::write_html(model));
    assert!(words.contains(virtflow_view::analyses::MEMORY_UNTRACED));
    assert!(words.contains("virtflow record --memory"));
    assert!(words.contains("no phases: the VMs' work was not clustered by windows of time."));
    assert!(words.contains("no execution graph"));
}

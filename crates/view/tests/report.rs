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

//! The HTML report is one self-contained file.

use virtflow_view::{report, synthetic};

#[test]
fn report_is_self_contained_and_has_every_section() {
    let mut model = synthetic::model(2, 2, 3_000, 9);
    model.vms[0].name = "vm<script>alert(1)</script>".to_string();
    let html = report::write_html(model);
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

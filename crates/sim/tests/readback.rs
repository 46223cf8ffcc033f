//! The page and KSM events the simulator writes are read back by the project's own readers,
//! alike in every format: the same events with the same fields in `.dat` and text, the same
//! but for KSM (which LTTng does not instrument) in CTF; and no format holds them when the
//! scenario does not trace memory.

mod common;

use common::{open, read_events, run, Read};
use virtflow_sim::kmem::gfp_text;
use virtflow_sim::{Format, Scenario};

const PAGE_EVENTS: &[&str] = &[
    "mm_page_alloc",
    "mm_page_free",
    "mm_page_free_batched",
    "ksm_enter",
    "ksm_merge_one_page",
];
const FIELDS: &[&str] = &[
    "pfn",
    "order",
    "gfp_flags",
    "migratetype",
    "mm",
    "rmap_item",
    "err",
];

/// An event in one comparable form: GFP flags as their names, whatever the format gives.
fn canonical(r: &Read) -> String {
    let gfp = match (r.str("gfp_flags"), r.int("gfp_flags")) {
        (Some(s), _) => s.to_string(),
        (None, Some(v)) => {
            let mut s = String::new();
            gfp_text(v as u64, &mut s);
            s
        }
        _ => String::new(),
    };
    // The text of `mm_page_free_batched` shows `order=0`, a field its format has not.
    let batched = r.name == "mm_page_free_batched";
    let ints: Vec<String> = FIELDS
        .iter()
        .filter(|f| **f != "gfp_flags" && !(batched && **f == "order"))
        .filter_map(|f| r.int(f).map(|v| format!("{f}={v}")))
        .collect();
    format!(
        "{} [{}] {} {}: {} {gfp}",
        r.ts,
        r.cpu,
        r.tid,
        r.name,
        ints.join(" ")
    )
}

#[test]
fn page_and_ksm_events_read_back_alike_in_every_format() {
    let mut read = Vec::new();
    for format in [Format::Dat, Format::Text, Format::Ctf] {
        let (s, t) = run(
            &format!("readback-{}", format.name()),
            Scenario::Memory,
            format,
            600,
            |_| {},
        );
        // The truth follows exactly the events the format holds.
        assert_eq!(t.hosts[0].events, s.traces[0].1);
        let mut src = open(format, &s.traces[0].0);
        read.push(read_events(src.as_mut(), PAGE_EVENTS, FIELDS));
    }
    let [dat, text, ctf] = [&read[0], &read[1], &read[2]];
    let count = |name: &str| dat.iter().filter(|r| r.name == name).count();
    assert!(count("mm_page_alloc") > 1_000, "{}", count("mm_page_alloc"));
    assert!(count("mm_page_free") > 500);
    assert!(count("mm_page_free_batched") > 100);
    assert_eq!(count("ksm_enter"), 3, "one per VMM process");
    assert!(count("ksm_merge_one_page") > 10);
    assert!(dat
        .iter()
        .any(|r| r.name == "mm_page_alloc" && r.int("order") == Some(9)));
    assert!(dat
        .iter()
        .any(|r| r.name == "ksm_merge_one_page" && r.int("err") == Some(-14)));
    // Every field of the kernel's format is there.
    let alloc = dat.iter().find(|r| r.name == "mm_page_alloc").unwrap();
    for f in ["pfn", "order", "gfp_flags", "migratetype"] {
        assert!(alloc.int(f).is_some(), "{f}");
    }
    let merge = dat.iter().find(|r| r.name == "ksm_merge_one_page").unwrap();
    for f in ["pfn", "rmap_item", "mm", "err"] {
        assert!(merge.int(f).is_some(), "{f}");
    }

    let c = |v: &[Read]| v.iter().map(canonical).collect::<Vec<_>>();
    let (dat_c, text_c) = (c(dat), c(text));
    assert_eq!(dat_c.len(), text_c.len());
    for (a, b) in dat_c.iter().zip(&text_c) {
        assert_eq!(a, b, "text differs from dat");
    }
    // LTTng has no KSM events; its page events carry the same values (and the page).
    let no_ksm: Vec<String> = dat
        .iter()
        .filter(|r| !r.name.starts_with("ksm_"))
        .map(canonical)
        .collect();
    let ctf_c = c(ctf);
    assert_eq!(no_ksm.len(), ctf_c.len());
    for (a, b) in no_ksm.iter().zip(&ctf_c) {
        assert_eq!(a, b, "ctf differs from dat");
    }
}

#[test]
fn traces_without_memory_have_no_page_classes() {
    for format in [Format::Dat, Format::Text, Format::Ctf] {
        let (s, t) = run(
            &format!("nomem-{}", format.name()),
            Scenario::Mixed,
            format,
            40,
            |_| {},
        );
        let src = open(format, &s.traces[0].0);
        let names: Vec<&str> = src.classes().iter().map(|c| c.name.as_str()).collect();
        assert!(
            !names
                .iter()
                .any(|n| n.contains("mm_page") || n.starts_with("ksm")),
            "{names:?}"
        );
        let m = &t.hosts[0].memory;
        assert!(!m.traced && m.allocated_bytes == 0 && m.allocated.is_empty());
    }
}

//! `virtflow report`: one self-contained HTML file — inline CSS and SVG, no script, no
//! external request — with the summary tables, the charts (state shares per vCPU, exit
//! reasons, wait causes, preemption) and an overview timeline, to attach to a ticket; and what
//! the analyses concluded: each host's sharing of its pCPUs and each VM's verdict and steal
//! (`analyses`), the memory each VM held, its phases, and the critical paths of its longest
//! waits in words (`waits`). `svg` draws the charts.

mod analyses;
mod svg;
mod waits;

use std::fmt::Write as _;

use virtflow_model::Model;

use crate::states::{StateKey, StateNs, STATE_KEYS};
use crate::summary::Summary;
use crate::timeline::{RowKind, TimelineIndex};

/// Width of the overview timeline's plot, in SVG pixels (one merged bucket per pixel).
const OVERVIEW_WIDTH: u32 = 1000;
const LABEL_WIDTH: u32 = 170;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A duration for people.
pub fn duration(ns: u64) -> String {
    if ns == 0 {
        return "0".to_string();
    }
    let ns = ns as f64;
    let (v, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    if v >= 100.0 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.2} {unit}")
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

/// Nothing is wider than the page, whatever its width: a table or chart wider than the text
/// column scrolls sideways inside itself; long words (paths) wrap.
const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; color: #1d1d1f; margin: 24px auto; max-width: 1240px; padding: 0 16px; overflow-wrap: anywhere; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; } h3 { font-size: 14px; }
table { border-collapse: collapse; margin: 6px 0 14px; display: block; max-width: 100%; overflow-x: auto; overflow-wrap: normal; }
.scroll { max-width: 100%; overflow-x: auto; }
th, td { padding: 2px 8px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
.muted { color: #666; }
.verdict, .advice { font-weight: 600; }
.verdicts li { margin: 2px 0; }
.memory-note { padding: 8px; background: #f4f4f6; border-left: 3px solid #999; }
.wait { margin: 8px 0 18px; }
.wait td:nth-child(3), .wait td:nth-child(4) { text-align: left; white-space: normal; }
.legend span { display: inline-block; margin: 0 14px 4px 0; }
.sw { display: inline-block; width: 12px; height: 12px; border: 1px solid #0004; border-radius: 2px; vertical-align: -2px; margin-right: 4px; }
svg text { font: 11px system-ui, sans-serif; fill: #1d1d1f; }
";

/// Renders the report for `model` (its intervals are taken for the overview timeline).
pub fn write_html(mut model: Model) -> String {
    let summary = Summary::new(&model);
    let index = TimelineIndex::take_from(&mut model);
    let mut h = String::new();
    let title = format!("virtflow report — {}", summary.traces.join(", "));
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(h, "<h1>{}</h1>", escape(&title));
    header(&mut h, &summary);
    legend(&mut h);
    h.push_str("<h2>Overview timeline</h2>\n");
    overview(&mut h, &index);
    let found = crate::analyses::Analyses::new(&model, index.origin);
    let extent = (index.start, index.end);
    h.push_str("<h2>Overcommitment</h2>\n");
    analyses::overcommit(&mut h, &found, extent);
    h.push_str("<h2>Memory</h2>\n");
    analyses::memory(&mut h, &found, extent);
    h.push_str("<h2>Phases</h2>\n");
    analyses::phases(&mut h, &found, extent);
    h.push_str("<h2>Longest waits and what held them up</h2>\n");
    waits::section(&mut h, &model, index.origin + index.start);
    h.push_str("<h2>State shares per vCPU</h2>\n");
    shares(&mut h, &summary);
    h.push_str("<h2>Exit reasons</h2>\n");
    exits(&mut h, &summary);
    h.push_str("<h2>Wait causes</h2>\n");
    waits(&mut h, &summary);
    h.push_str("<h2>Preemption</h2>\n");
    preemption(&mut h, &summary);
    h.push_str("<h2>Clusters</h2>\n");
    match &summary.clusters {
        None => h.push_str(
            "<p class=\"muted\">no clustering: the VMs were not grouped by workload.</p>\n",
        ),
        Some(c) => {
            h.push_str("<table><tr><th>workload</th><th>VMs</th></tr>\n");
            for (w, vms) in c {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td></tr>",
                    escape(w),
                    escape(&vms.join(", "))
                );
            }
            h.push_str("</table>\n");
        }
    }
    h.push_str("</body></html>\n");
    h
}

fn header(h: &mut String, s: &Summary) {
    h.push_str("<table>\n");
    for host in &s.hosts {
        let _ = writeln!(
            h,
            "<tr><td>host</td><td>{}{} CPUs · {} traced{}</td></tr>",
            if host.name.is_empty() {
                String::new()
            } else {
                format!("{} · ", escape(&host.name))
            },
            host.cpus,
            duration((host.end_ns - host.start_ns).max(0) as u64),
            host.clock
                .as_ref()
                .map(|c| format!(" · {}", escape(&crate::clock_words(c))))
                .unwrap_or_default()
        );
    }
    let vcpus: usize = s.vms.iter().map(|v| v.vcpus.len()).sum();
    let _ = writeln!(
        h,
        "<tr><td>VMs</td><td>{} ({} vCPUs)</td></tr>",
        s.vms.len(),
        vcpus
    );
    let _ = writeln!(
        h,
        "<tr><td>events</td><td>{} read, {} lost</td></tr>",
        s.events, s.lost_events
    );
    h.push_str("</table>\n");
    for note in &s.notes {
        let _ = writeln!(h, "<p class=\"muted\">{}</p>", escape(note));
    }
}

fn legend(h: &mut String) {
    h.push_str("<p class=\"legend\">");
    for k in StateKey::ALL {
        let _ = write!(
            h,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            k.color(),
            escape(k.label())
        );
    }
    h.push_str("</p>\n");
}

fn overview(h: &mut String, index: &TimelineIndex) {
    if index.rows.is_empty() {
        h.push_str("<p class=\"muted\">no VMs in this trace.</p>\n");
        return;
    }
    let vp = index.viewport(index.start, index.end, OVERVIEW_WIDTH, 0, usize::MAX);
    let row_h = 16u32;
    let height = 24 + row_h * vp.rows.len() as u32;
    let span = (index.end - index.start).max(1) as f64;
    let x = |t: i64| LABEL_WIDTH as f64 + (t - index.start) as f64 / span * OVERVIEW_WIDTH as f64;
    let _ = writeln!(
        h,
        "<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"overview timeline\">",
        LABEL_WIDTH + OVERVIEW_WIDTH + 10
    );
    // Ruler: ten ticks, labelled right of the tick but for the last, which ends at it so as
    // to stay inside the chart.
    for k in 0..=10 {
        let t = index.start + (span * k as f64 / 10.0) as i64;
        let (at, anchor) = if k == 10 {
            (x(t) - 2.0, "end")
        } else {
            (x(t) + 2.0, "start")
        };
        let _ = writeln!(
            h,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"14\" y2=\"{height}\" stroke=\"#ddd\"/><text x=\"{1:.1}\" y=\"11\" text-anchor=\"{anchor}\">{2}</text>",
            x(t),
            at,
            escape(&duration((t - index.start) as u64))
        );
    }
    for (i, (row, segs)) in index.rows.iter().zip(&vp.rows).enumerate() {
        let y = 20 + row_h * i as u32;
        let (indent, weight) = match row.kind {
            RowKind::Vm { .. } => (4, "600"),
            RowKind::Vcpu { .. } => (16, "400"),
            RowKind::Process { .. } | RowKind::Nested { .. } => (28, "400"),
        };
        let _ = writeln!(
            h,
            "<text x=\"{indent}\" y=\"{}\" font-weight=\"{weight}\">{}</text>",
            y + 11,
            escape(&row.label)
        );
        for seg in segs {
            let (x0, x1) = (x(seg.start()), x(seg.end()));
            let what = if seg.is_merged() {
                format!("mostly {}", seg.key().label())
            } else {
                index.details[seg.3 as usize].label.clone()
            };
            let _ = writeln!(
                h,
                "<rect x=\"{x0:.2}\" y=\"{y}\" width=\"{:.2}\" height=\"{}\" fill=\"{}\"><title>{}: {}</title></rect>",
                (x1 - x0).max(0.5),
                row_h - 3,
                seg.key().color(),
                escape(&what),
                duration((seg.end() - seg.start()) as u64)
            );
        }
    }
    h.push_str("</svg></div>\n");
}

/// A horizontal bar of state shares, `width` px wide.
fn stacked_bar(h: &mut String, ns: &StateNs, width: f64) {
    let total: u64 = ns.iter().sum();
    let _ = write!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"14\">"
    );
    let mut x = 0.0;
    for k in StateKey::ALL {
        let v = ns[k as usize];
        if v == 0 || total == 0 {
            continue;
        }
        let w = width * v as f64 / total as f64;
        let _ = write!(
            h,
            "<rect x=\"{x:.2}\" y=\"0\" width=\"{w:.2}\" height=\"14\" fill=\"{}\"><title>{} {}</title></rect>",
            k.color(),
            escape(k.label()),
            percent(v, total)
        );
        x += w;
    }
    h.push_str("</svg>");
}

fn shares(h: &mut String, s: &Summary) {
    h.push_str("<table><tr><th>VM / vCPU</th><th>time shares</th>");
    for k in StateKey::ALL {
        let _ = write!(h, "<th>{}</th>", escape(k.label()));
    }
    h.push_str("</tr>\n");
    for vm in &s.vms {
        let rows = std::iter::once((format!("<b>{}</b>", escape(&vm.name)), vm.state_ns)).chain(
            vm.vcpus.iter().map(|v| {
                (
                    format!("&nbsp;&nbsp;vCPU {} (tid {})", v.vcpu, v.tid),
                    v.state_ns,
                )
            }),
        );
        for (label, ns) in rows {
            let total: u64 = ns.iter().sum();
            let _ = write!(h, "<tr><td>{label}</td><td>");
            stacked_bar(h, &ns, 240.0);
            h.push_str("</td>");
            for v in ns {
                let _ = write!(h, "<td>{}</td>", percent(v, total));
            }
            h.push_str("</tr>\n");
        }
    }
    h.push_str("</table>\n");
}

fn exits(h: &mut String, s: &Summary) {
    for vm in &s.vms {
        let _ = writeln!(h, "<h3>{}</h3>", escape(&vm.name));
        if let Some(uuid) = &vm.uuid {
            let _ = writeln!(h, "<p class=\"muted\">uuid {}</p>", escape(uuid));
        }
        if vm.exits.is_empty() {
            h.push_str("<p class=\"muted\">no exits.</p>\n");
            continue;
        }
        let max = vm
            .exits
            .iter()
            .map(|e| e.total_ns)
            .max()
            .unwrap_or(1)
            .max(1);
        // Two shares, named for what they divide: of the time in exits, of the exits counted.
        let total: u64 = vm.exits.iter().map(|e| e.total_ns).sum();
        let count: u64 = vm.exits.iter().map(|e| e.count).sum();
        h.push_str("<table><tr><th>reason</th><th>time</th><th></th><th>time %</th><th>count</th><th>count %</th><th>min</th><th>mean</th><th>max</th></tr>\n");
        for e in &vm.exits {
            let w = 200.0 * e.total_ns as f64 / max as f64;
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"10\"><rect width=\"{w:.1}\" height=\"10\" fill=\"{}\"/></svg></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.reason),
                duration(e.total_ns),
                StateKey::Hypervisor.color(),
                percent(e.total_ns, total),
                e.count,
                percent(e.count, count),
                duration(e.min_ns),
                duration(e.mean_ns),
                duration(e.max_ns)
            );
        }
        h.push_str("</table>\n");
    }
}

fn waits(h: &mut String, s: &Summary) {
    h.push_str("<table><tr><th>VM</th><th>wait time shares</th>");
    for w in s.vms.first().map(|vm| vm.waits.as_slice()).unwrap_or(&[]) {
        let _ = write!(h, "<th>{}</th>", escape(w.cause));
    }
    h.push_str("</tr>\n");
    for vm in &s.vms {
        let mut ns = [0u64; STATE_KEYS];
        for k in [
            StateKey::WaitTimer,
            StateKey::WaitDisk,
            StateKey::WaitNetwork,
            StateKey::WaitTask,
            StateKey::WaitOther,
        ] {
            ns[k as usize] = vm.state_ns[k as usize];
        }
        let _ = write!(h, "<tr><td>{}</td><td>", escape(&vm.name));
        stacked_bar(h, &ns, 240.0);
        h.push_str("</td>");
        let total: u64 = vm.waits.iter().map(|w| w.ns).sum();
        for w in &vm.waits {
            let _ = write!(
                h,
                "<td>{} ({}) · {} injected</td>",
                duration(w.ns),
                percent(w.ns, total),
                w.injections
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn preemption(h: &mut String, s: &Summary) {
    let m = &s.preemption;
    if m.victims.is_empty() {
        h.push_str("<p class=\"muted\">no VMs.</p>\n");
        return;
    }
    h.push_str("<p class=\"muted\">rows: the preempted VM; columns: who ran instead.</p>\n<table><tr><th></th>");
    for p in &m.preemptors {
        let _ = write!(h, "<th>{}</th>", escape(p));
    }
    h.push_str("</tr>\n");
    let max = m.ns.iter().flatten().copied().max().unwrap_or(1).max(1);
    for (victim, row) in m.victims.iter().zip(&m.ns) {
        let _ = write!(h, "<tr><td>{}</td>", escape(victim));
        for &ns in row {
            if ns == 0 {
                h.push_str("<td class=\"muted\">·</td>");
            } else {
                let alpha = 0.1 + 0.6 * ns as f64 / max as f64;
                let _ = write!(
                    h,
                    "<td style=\"background:rgba(213,94,0,{alpha:.2})\">{}</td>",
                    duration(ns)
                );
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    if !m.top.is_empty() {
        h.push_str("<table><tr><th>top host preemptors</th><th>time</th></tr>\n");
        for (who, ns) in &m.top {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(who),
                duration(*ns)
            );
        }
        h.push_str("</table>\n");
    }
}

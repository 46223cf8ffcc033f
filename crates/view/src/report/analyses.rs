//! The report's sections on sharing, memory and phases: each host's runnable vCPUs against its
//! pCPUs, each VM's verdict, steal split and steal over time; the memory each VM held over
//! time, or why the trace cannot tell; each VM's phases as a band.

use std::fmt::Write as _;

use super::svg::{bands, line_chart, Chart, Line, Span};
use super::{duration, escape, percent};
use crate::analyses::{Analyses, HostAnalyses, VmAnalyses};

/// The charts' time axis: the overview timeline's, never empty.
fn span_of(extent: (i64, i64)) -> (i64, i64) {
    (extent.0, extent.1.max(extent.0 + 1))
}

fn host_vms(a: &Analyses, host: usize) -> impl Iterator<Item = &VmAnalyses> {
    a.vms.iter().filter(move |v| v.host == host)
}

/// Bytes for people: `40.0 MiB`.
pub fn bytes(b: f64) -> String {
    let (v, unit) = match b.abs() {
        x if x >= (1u64 << 30) as f64 => (b / (1u64 << 30) as f64, "GiB"),
        x if x >= (1u64 << 20) as f64 => (b / (1u64 << 20) as f64, "MiB"),
        x if x >= 1024.0 => (b / 1024.0, "KiB"),
        _ => (b, "B"),
    };
    if unit == "B" {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

fn host_chart(h: &mut String, host: &HostAnalyses, span: (i64, i64)) {
    let Some(series) = &host.series else {
        h.push_str("<p class=\"muted\">the run kept no series over time.</p>\n");
        return;
    };
    let label = format!("{} pCPUs", host.pcpus);
    line_chart(
        h,
        &Chart {
            label: &format!("runnable vCPUs against pCPUs on {}", host.name),
            span,
            unit: &|v| format!("{v:.1}"),
            reference: Some((host.pcpus as f64, label)),
            lines: vec![Line {
                name: "runnable vCPUs (mean per bucket)",
                color: "#d55e00",
                values: &host.runnable,
                start: series.start,
                step: series.step,
            }],
        },
    );
}

/// Overcommitment: per host its verdict and runnable vCPUs against pCPUs; per VM its verdict,
/// its steal split by what the host was doing, and its steal over time.
pub fn overcommit(h: &mut String, a: &Analyses, extent: (i64, i64)) {
    let span = span_of(extent);
    for (hi, host) in a.hosts.iter().enumerate() {
        if a.hosts.len() > 1 {
            let _ = writeln!(h, "<h3>{}</h3>", escape(&host.name));
        }
        if !host.verdict.is_empty() {
            let _ = writeln!(h, "<p class=\"verdict\">{}</p>", escape(&host.verdict));
        }
        host_chart(h, host, span);
        let vms: Vec<&VmAnalyses> = host_vms(a, hi).collect();
        if vms.is_empty() {
            continue;
        }
        h.push_str(
            "<table><tr><th>VM</th><th>steal</th><th>of its vCPU time</th><th>while overcommitted</th><th>while a pCPU was idle</th><th>otherwise</th><th>split</th></tr>\n",
        );
        for vm in &vms {
            let s = &vm.steal;
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1} %</td><td>{} ({})</td><td>{} ({})</td><td>{} ({})</td><td>",
                escape(&vm.name),
                duration(s.steal_ns),
                100.0 * s.steal_share,
                duration(s.while_overcommitted_ns),
                percent(s.while_overcommitted_ns, s.steal_ns),
                duration(s.while_cpu_idle_ns),
                percent(s.while_cpu_idle_ns, s.steal_ns),
                duration(s.otherwise_ns),
                percent(s.otherwise_ns, s.steal_ns),
            );
            split_bar(
                h,
                s.while_overcommitted_ns,
                s.while_cpu_idle_ns,
                s.otherwise_ns,
            );
            h.push_str("</td></tr>\n");
        }
        h.push_str("</table>\n<ul class=\"verdicts\">\n");
        for vm in &vms {
            let _ = writeln!(h, "<li>{}</li>", escape(&vm.steal.verdict));
        }
        h.push_str("</ul>\n");
        if let Some(series) = &host.series {
            let lines = vms
                .iter()
                .map(|vm| Line {
                    name: &vm.name,
                    color: vm.color,
                    values: &vm.steal.vcpus,
                    start: series.start,
                    step: series.step,
                })
                .collect();
            line_chart(
                h,
                &Chart {
                    label: "steal per VM over time",
                    span,
                    unit: &|v| format!("{v:.2}"),
                    reference: None,
                    lines,
                },
            );
            h.push_str(
                "<p class=\"muted\">steal: each VM's vCPUs runnable but not running, on average \
                 over each bucket (1.0: one vCPU's worth).</p>\n",
            );
        }
    }
}

/// Steal while overcommitted, while a pCPU idled, and otherwise, as one bar.
fn split_bar(h: &mut String, over: u64, idle: u64, other: u64) {
    let total = (over + idle + other).max(1) as f64;
    let _ = write!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"160\" height=\"12\">"
    );
    let mut x = 0.0;
    for (v, color, what) in [
        (over, "#d55e00", "while overcommitted"),
        (idle, "#0072b2", "while a pCPU was idle"),
        (other, "#bdbdbd", "otherwise"),
    ] {
        let w = 160.0 * v as f64 / total;
        if w > 0.0 {
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" width=\"{w:.1}\" height=\"12\" fill=\"{color}\"><title>{what}: {}</title></rect>",
                duration(v)
            );
        }
        x += w;
    }
    h.push_str("</svg>");
}

/// Memory: each VM's held memory over time and its totals, or why the trace cannot tell.
pub fn memory(h: &mut String, a: &Analyses, extent: (i64, i64)) {
    if let Some(note) = &a.memory_note {
        let _ = writeln!(h, "<p class=\"memory-note\">{}</p>", escape(note));
        return;
    }
    let span = span_of(extent);
    for (hi, host) in a.hosts.iter().enumerate() {
        if a.hosts.len() > 1 {
            let _ = writeln!(h, "<h3>{}</h3>", escape(&host.name));
        }
        if !host.memory_traced {
            let _ = writeln!(
                h,
                "<p class=\"memory-note\">{}</p>",
                escape(crate::analyses::MEMORY_UNTRACED)
            );
            continue;
        }
        let vms: Vec<&VmAnalyses> = host_vms(a, hi).filter(|v| v.memory.is_some()).collect();
        let held: Vec<Vec<f64>> = vms
            .iter()
            .map(|vm| {
                vm.memory
                    .as_ref()
                    .map(|m| m.held.iter().map(|&b| b as f64).collect())
                    .unwrap_or_default()
            })
            .collect();
        if let Some(series) = &host.series {
            let lines = vms
                .iter()
                .zip(&held)
                .map(|(vm, values)| Line {
                    name: &vm.name,
                    color: vm.color,
                    values,
                    start: series.start,
                    step: series.step,
                })
                .collect();
            line_chart(
                h,
                &Chart {
                    label: "memory held per VM over time",
                    span,
                    unit: &bytes,
                    reference: None,
                    lines,
                },
            );
        }
        h.push_str("<table><tr><th>VM</th><th>allocated</th><th>freed</th><th>held at the end</th><th>peak</th><th>KSM merges</th></tr>\n");
        for vm in &vms {
            let Some(m) = &vm.memory else { continue };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} pages</td></tr>",
                escape(&vm.name),
                bytes(m.allocated_bytes as f64),
                bytes(m.freed_bytes as f64),
                bytes(m.net_bytes as f64),
                bytes(m.peak_bytes as f64),
                m.ksm_merged_pages
            );
        }
        h.push_str("</table>\n<p class=\"muted\">held: pages its threads allocated during the trace and nobody freed yet (a page freed by any thread goes back to whoever allocated it); memory it held before the trace began is not counted.</p>\n");
    }
}

/// Phases: one band per VM, or why there are none.
pub fn phases(h: &mut String, a: &Analyses, extent: (i64, i64)) {
    if !a.phases {
        h.push_str(
            "<p class=\"muted\">no phases: the VMs' work was not clustered by windows of time.</p>\n",
        );
        return;
    }
    let rows: Vec<(String, Vec<Span>)> = a
        .vms
        .iter()
        .map(|vm| {
            (
                vm.name.clone(),
                vm.phases
                    .iter()
                    .map(|p| Span {
                        start: p.start,
                        end: p.end,
                        name: &p.name,
                        color: p.color,
                    })
                    .collect(),
            )
        })
        .collect();
    bands(h, "phases per VM", span_of(extent), &rows);
    let mut names: Vec<(&str, &str)> = a
        .vms
        .iter()
        .flat_map(|v| v.phases.iter().map(|p| (p.name.as_str(), p.color)))
        .collect();
    names.sort_unstable();
    names.dedup();
    h.push_str("<p class=\"legend\">");
    for (name, color) in names {
        let _ = write!(
            h,
            "<span><i class=\"sw\" style=\"background:{color}\"></i>{}</span>",
            escape(name)
        );
    }
    h.push_str("</p>\n");
}

//! The report's longest waits: for each VM, the longest waits of its vCPUs that something on
//! the host ended, each with its critical path as a strip, the time by thread and cause, and
//! what it means (see [`crate::explain`]).

use std::fmt::Write as _;

use virtflow_graph::State;
use virtflow_model::Model;

use super::svg::strip;
use super::{duration, escape};
use crate::threads::{color, meaning, Who};
use crate::waits::longest_waits;

/// Waits shown per VM.
const PER_VM: usize = 3;

/// How a vCPU's wait ended, as its own chain in the graph says.
fn until(state: State) -> &'static str {
    match state {
        State::Blocked => "until a thread woke it",
        State::Network => "for the network",
        State::Disk => "for the disk",
        State::Ipi => "for an IPI",
        State::Interrupt => "for a device interrupt",
        State::UserInput => "for the user",
        _ => "waiting",
    }
}

/// The section; `origin` is the time the report's times count from.
pub fn section(h: &mut String, model: &Model, origin: i64) {
    let Some(all) = longest_waits(model, PER_VM) else {
        h.push_str(
            "<p class=\"muted\">no execution graph: this report was made from a model saved \
             without one; report on the traces themselves to see what held the VMs' waits up.</p>\n",
        );
        return;
    };
    let Some(eg) = model.graph.as_ref() else {
        return;
    };
    let who = Who::new(model);
    let at = |t: i64| format!("{:.3} ms", (t - origin) as f64 / 1e6);
    for vw in &all {
        let vm = &model.vms[vw.vm];
        let _ = writeln!(h, "<h3>{}</h3>", escape(&vm.name));
        if vw.timer_waits > 0 {
            let _ = writeln!(
                h,
                "<p class=\"muted\">{} waits for the vCPUs' own timer (the guest idle, which the \
                 host cannot shorten), the longest {}.</p>",
                vw.timer_waits,
                duration(vw.longest_timer_ns as u64)
            );
        }
        if vw.waits.is_empty() {
            h.push_str("<p class=\"muted\">no wait that another thread or a device ended.</p>\n");
            continue;
        }
        for (k, w) in vw.waits.iter().enumerate() {
            let _ = writeln!(
                h,
                "<div class=\"wait\"><p><b>{}. vCPU {} waited {}</b> from {} to {}, {}. What held it up:</p>",
                k + 1,
                w.vcpu,
                duration((w.end - w.start) as u64),
                at(w.start),
                at(w.end),
                until(w.state)
            );
            let pieces: Vec<(i64, i64, &str, String)> = w
                .path
                .iter()
                .map(|p| {
                    let name = p.worker.map_or_else(
                        || "in flight between hosts".to_string(),
                        |wk| who.worker(eg, wk).label,
                    );
                    (
                        p.start,
                        p.end,
                        color(p.state),
                        format!(
                            "{name}: {}, {}",
                            meaning(p.state),
                            duration(p.duration() as u64)
                        ),
                    )
                })
                .collect();
            strip(h, "the wait's critical path", (w.start, w.end), &pieces);
            let total = w.explanation.total_ns.max(1);
            h.push_str(
                "<table><tr><th>of the wait</th><th>time</th><th>thread</th><th>doing</th></tr>\n",
            );
            for line in &w.explanation.lines {
                let _ = writeln!(
                    h,
                    "<tr><td>{:.0} %</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    100.0 * line.ns as f64 / total as f64,
                    duration(line.ns as u64),
                    escape(&line.who),
                    escape(&line.what)
                );
            }
            if w.explanation.rest_ns > 0 {
                let _ = writeln!(
                    h,
                    "<tr><td>{:.0} %</td><td>{}</td><td class=\"muted\">elsewhere</td><td></td></tr>",
                    100.0 * w.explanation.rest_ns as f64 / total as f64,
                    duration(w.explanation.rest_ns as u64)
                );
            }
            let _ = writeln!(
                h,
                "</table><p class=\"advice\">{}</p></div>",
                escape(&w.explanation.advice)
            );
        }
    }
}

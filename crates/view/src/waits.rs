//! Each VM's longest waits and what held them up: the longest wait segments of its vCPUs in the
//! execution graph, each with its critical path over the wait and that path's explanation.
//!
//! A wait for the vCPU's own timer is the guest idling, which the host cannot shorten: those
//! are counted apart (the longest is said) and never crowd out the waits something on the host
//! ended — a helper thread, another vCPU, a device.

use serde::Serialize;
use virtflow_graph::{CriticalPath, PathSegment, State};
use virtflow_model::Model;

use crate::explain::{explain, Explanation};
use crate::threads::Who;

/// Lines of each wait's explanation.
const LINES: usize = 5;

#[derive(Clone, Debug, Serialize)]
pub struct Wait {
    pub vcpu: u32,
    pub tid: u32,
    /// The wait's state in the graph (`blocked`, `network`, `disk`, `ipi`…).
    pub state: State,
    pub start: i64,
    pub end: i64,
    /// The critical path over the wait.
    pub path: Vec<PathSegment>,
    pub explanation: Explanation,
}

#[derive(Clone, Debug, Serialize)]
pub struct VmWaits {
    pub vm: usize,
    /// Longest first.
    pub waits: Vec<Wait>,
    /// Its vCPUs' waits for their own timer (the guest idle): how many, and the longest (ns).
    pub timer_waits: u64,
    pub longest_timer_ns: i64,
}

/// Whether a vCPU's segment in this state is a wait something else may have ended.
fn is_wait(state: State) -> bool {
    matches!(
        state,
        State::Blocked
            | State::Network
            | State::Disk
            | State::Ipi
            | State::Interrupt
            | State::UserInput
    )
}

/// The `per_vm` longest waits of each VM's vCPUs; `None` when the model has no graph.
pub fn longest_waits(model: &Model, per_vm: usize) -> Option<Vec<VmWaits>> {
    let eg = model.graph.as_ref()?;
    let who = Who::new(model);
    let out = model
        .vms
        .iter()
        .enumerate()
        .map(|(vi, vm)| {
            let mut candidates: Vec<(i64, u32, u32, State, i64, i64)> = Vec::new();
            let (mut timer_waits, mut longest_timer_ns) = (0u64, 0i64);
            for v in &vm.vcpus {
                let Some(w) = eg.worker(&vm.host, v.tid) else {
                    continue;
                };
                for s in eg.graph.segments(w) {
                    if s.state() == State::Timer {
                        timer_waits += 1;
                        longest_timer_ns = longest_timer_ns.max(s.duration());
                    } else if is_wait(s.state()) {
                        candidates.push((
                            s.duration(),
                            v.vcpu,
                            v.tid,
                            s.state(),
                            s.start(),
                            s.end(),
                        ));
                    }
                }
            }
            // Longest first; among equals, the earliest.
            candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.4.cmp(&b.4)).then(a.1.cmp(&b.1)));
            let waits = candidates
                .into_iter()
                .take(per_vm)
                .filter_map(|(_, vcpu, tid, state, start, end)| {
                    let w = eg.worker(&vm.host, tid)?;
                    let path = CriticalPath::within(&eg.graph, w, start, end).ok()?;
                    let explanation = explain(&path, eg, &who, LINES);
                    Some(Wait {
                        vcpu,
                        tid,
                        state,
                        start,
                        end,
                        path: path.segments,
                        explanation,
                    })
                })
                .collect();
            VmWaits {
                vm: vi,
                waits,
                timer_waits,
                longest_timer_ns,
            }
        })
        .collect();
    Some(out)
}

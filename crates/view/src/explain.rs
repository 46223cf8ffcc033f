//! A critical path in words: where its time went by thread and cause, longest first, and one
//! sentence saying what that means for the operator — CPU contention and who caused it, a
//! helper thread's own work, the disk, the network, an idle guest, or what the trace does not
//! show. The web timeline's path panel and the report's longest waits both read this.

use std::collections::HashMap;

use serde::Serialize;
use virtflow_graph::{CriticalPath, State, WorkerId};
use virtflow_model::ExecutionGraph;

use crate::report::duration;
use crate::threads::{meaning, Role, Thread, Who};

/// Time the path spent on one thread in one state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    pub ns: i64,
    /// The thread (`in flight between hosts` for a message).
    pub who: String,
    /// What it was doing: `running`, `waiting for a CPU (held by batch vCPU 0)`…
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub total_ns: i64,
    /// The longest [`Line`]s, longest first.
    pub lines: Vec<Line>,
    /// What the lines left out.
    pub rest_ns: i64,
    /// What the path means, in one sentence an operator can act on.
    pub advice: String,
}

/// Time of the path per (thread, state, who held the CPU).
type Groups = Vec<((Option<WorkerId>, State, Option<WorkerId>), i64)>;

fn groups(path: &CriticalPath) -> Groups {
    let mut by: HashMap<(Option<WorkerId>, State, Option<WorkerId>), i64> = HashMap::new();
    for s in &path.segments {
        *by.entry((s.worker, s.state, s.by)).or_default() += s.duration();
    }
    let mut v: Groups = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn share(ns: i64, total: i64) -> String {
    format!("{:.0}%", 100.0 * ns as f64 / total.max(1) as f64)
}

/// Explains `path` (whose subject is `path.worker`), keeping its `top` longest lines.
pub fn explain(path: &CriticalPath, eg: &ExecutionGraph, who: &Who, top: usize) -> Explanation {
    let total = (path.end - path.start).max(0);
    let thread = |w: Option<WorkerId>| w.map(|w| who.worker(eg, w));
    let groups = groups(path);
    let lines: Vec<Line> = groups
        .iter()
        .take(top)
        .map(|&((w, state, by), ns)| Line {
            ns,
            who: thread(w).map_or_else(|| "in flight between hosts".to_string(), |t| t.label),
            what: match (state, thread(by)) {
                (State::Preempted, Some(b)) => format!("{} (held by {})", meaning(state), b.label),
                _ => meaning(state).to_string(),
            },
        })
        .collect();
    let shown: i64 = lines.iter().map(|l| l.ns).sum();
    let subject = who.worker(eg, path.worker);
    Explanation {
        total_ns: total,
        lines,
        rest_ns: total - shown,
        advice: advice(path, &groups, &subject, &thread, total),
    }
}

/// The one sentence: CPU contention when a quarter of the path or more waited for a CPU,
/// else what the longest part of the path says.
fn advice(
    path: &CriticalPath,
    groups: &Groups,
    subject: &Thread,
    thread: &dyn Fn(Option<WorkerId>) -> Option<Thread>,
    total: i64,
) -> String {
    if total == 0 {
        return "The interval is empty.".to_string();
    }
    let mut culprits: HashMap<Option<WorkerId>, i64> = HashMap::new();
    for &((_, state, by), ns) in groups {
        if state == State::Preempted {
            *culprits.entry(by).or_default() += ns;
        }
    }
    let preempted: i64 = culprits.values().sum();
    if preempted * 4 >= total {
        // Who held the CPUs, when the trace names them (a thread woken and waiting for a CPU
        // has no holder in the graph).
        let holder = culprits
            .iter()
            .filter_map(|(by, ns)| by.map(|b| (b, *ns)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .and_then(|(b, _)| thread(Some(b)))
            .map(|t| t.label);
        let whose = match subject.vm {
            Some(_) => "the VM's threads (vCPUs and helpers)".to_string(),
            None => subject.label.clone(),
        };
        let head = format!(
            "CPU contention: for {} of this time ({}) a thread on the path was runnable but \
             had no CPU",
            share(preempted, total),
            duration(preempted as u64)
        );
        return match holder {
            Some(holder) => format!(
                "{head}, mostly held by {holder}. Give {whose} pCPUs of their own (pinning, \
                 cpusets) or move {holder} elsewhere."
            ),
            None => format!(
                "{head}, after wake-ups, behind tasks the trace does not name. Give {whose} \
                 pCPUs of their own (pinning, cpusets) or fewer tasks to share them with."
            ),
        };
    }
    let Some(&((w, state, _), ns)) = groups.first() else {
        return "Nothing on the path.".to_string();
    };
    let part = share(ns, total);
    let Some(t) = thread(w) else {
        return format!(
            "{part} of this time was messages in flight between hosts: the network between \
             them, not the CPUs, is what it waited for."
        );
    };
    let me = w == Some(path.worker);
    let who = &t.label;
    match (state, t.role) {
        (State::Unknown, _) => format!(
            "The trace does not show {part} of this time ({who} has no events then): record \
             longer or with more events to explain it."
        ),
        (State::Disk, _) => format!(
            "{part} of this time was the disk's own latency, with {who} waiting for it: look \
             at the storage backend, not the CPUs."
        ),
        (State::Timer, _) if me => format!(
            "{part} of this time {who} was idle until its own timer fired: nothing on the host \
             held it up."
        ),
        (State::Timer, _) => format!(
            "{part} of this time {who} slept on a timer before doing the work: a polling or \
             timeout interval of that thread."
        ),
        (State::Running, Role::Vhost) => format!(
            "{part} of this time {who} was processing its packets: the network backend's own \
             work; when it is long, vhost is short of CPU or has much traffic."
        ),
        (State::Running, Role::IoThread) => {
            format!("{part} of this time {who} was handling its disk requests: the VMM's I/O path.")
        }
        (State::Running, Role::MainLoop | Role::Worker | Role::Helper) => format!(
            "{part} of this time the VMM's thread {who} was working for it (device emulation in \
             user space)."
        ),
        (State::Running, Role::Vcpu) if !me && t.vm == subject.vm => format!(
            "{part} of this time {who} was running until it signalled {} (an IPI): the \
             guest's own synchronisation between its vCPUs.",
            subject.label
        ),
        (State::Running, _) if me => format!("{part} of this time {who} was running."),
        (State::Running, Role::Vcpu) => format!(
            "{part} of this time the path was on {who}, another VM's vCPU, from whose CPU the \
             next thread on the path was woken: the two VMs share pCPUs or interrupts."
        ),
        (State::Running, _) => format!(
            "{part} of this time {who} was doing the work this waited for: look at that \
             thread."
        ),
        (State::Blocked | State::Network, _) => format!(
            "{part} of this time {who} waited with no cause the trace shows (no thread woke \
             it): record scheduler wake-ups and interrupts to explain it."
        ),
        _ => format!("{part} of this time {who} was {}.", meaning(state)),
    }
}

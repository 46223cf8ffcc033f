//! Guest processes as workers of the execution graph, so that a critical path can start at
//! one (`virtflow critical-path --process CR3`).
//!
//! From the host, a guest process is seen only while a vCPU runs it: its page-table base
//! (CR3) loaded at the guest entries of that vCPU (`guest.rs`). Its worker's chain is made
//! of those runs, as running, and of the time between them, as blocked, each such wait ended
//! by a wake-up link from the vCPU that ran it next, at the instant it did. The critical path
//! of the process therefore follows, for each time it was off its vCPU, what that vCPU did
//! and waited for meanwhile — the disk request its I/O thread served, the packet its vhost
//! thread received, the other VM that held its pCPU — which is what the process waited for
//! as far as the host can tell. (Inside the guest, another process may have run on the vCPU
//! instead; the host sees that as the vCPU running.)
//!
//! Nested (L2) guests are workers the same way, by the address of their nested VMCS/VMCB:
//! between two runs of an L2 guest, its vCPU is in L1 — handling the L2 guest's exits, or
//! running L1's own work — or waiting, and the L2 guest's path shows that time as its vCPU's,
//! the layer below it.
//!
//! Built at the end of the pass, from the processes' and nested guests' spans, which the run
//! keeps with its timelines (`Options::intervals`).

use virtflow_graph::{Endpoint, Graph, Link, Segment, State, WorkerId};
use virtflow_model::{GraphWorker, Vm};

use crate::host::HostGraph;

/// Adds a worker for each guest process and each nested guest of `vms` with spans, after
/// the host's threads.
pub(crate) fn add(graph: &mut HostGraph, vms: &[Vm]) {
    for vm in vms {
        let processes = vm.vcpus.iter().map(|v| {
            let spans = v.processes.iter().map(|p| (p.cr3, &p.intervals[..]));
            (v.tid, spans.collect::<Vec<_>>())
        });
        add_kind(graph, vm.pid, false, processes.collect());
        let nested = vm.vcpus.iter().map(|v| {
            let spans = v.nested.iter().map(|n| (n.vmcs, &n.intervals[..]));
            (v.tid, spans.collect::<Vec<_>>())
        });
        add_kind(graph, vm.pid, true, nested.collect());
    }
}

/// By vCPU thread: each guest (process or nested guest, by its address) it ran, with when.
type RunsByVcpu<'a> = Vec<(u32, Vec<(u64, &'a [virtflow_model::Span])>)>;

fn add_kind(graph: &mut HostGraph, vm: u32, nested: bool, by_vcpu: RunsByVcpu<'_>) {
    let mut addresses: Vec<u64> = by_vcpu
        .iter()
        .flat_map(|(_, guests)| guests.iter())
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(a, _)| *a)
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    let host = graph
        .workers
        .first()
        .map(|w| w.host.clone())
        .unwrap_or_default();
    for address in addresses {
        // Its runs on every vCPU, each with the vCPU's worker, in time order.
        let mut runs: Vec<(i64, i64, Option<WorkerId>)> = Vec::new();
        for (tid, guests) in &by_vcpu {
            let vcpu = graph.by_tid.get(tid).copied();
            for (_, spans) in guests.iter().filter(|(a, _)| *a == address) {
                runs.extend(spans.iter().map(|s| (s.start, s.end, vcpu)));
            }
        }
        runs.sort_by_key(|r| (r.0, r.1));
        let worker = graph.graph.add_worker();
        let comm = if nested {
            format!("nested guest {address:#x}")
        } else {
            format!("guest process {address:#x}")
        };
        graph.workers.push(GraphWorker {
            host: host.clone(),
            tid: 0,
            comm,
            guest: Some(virtflow_model::GuestWorker {
                vm,
                cr3: address,
                nested,
            }),
        });
        chain(&mut graph.graph, worker, &runs, &mut graph.refused);
    }
}

/// The process's chain: running during its runs, blocked between them with a wake-up from
/// the vCPU that resumed it.
fn chain(
    g: &mut Graph,
    worker: WorkerId,
    runs: &[(i64, i64, Option<WorkerId>)],
    refused: &mut u64,
) {
    let mut last_end: Option<i64> = None;
    for &(start, end, vcpu) in runs {
        // Overlapping runs (one process on two vCPUs at once: threads sharing an address
        // space) are cut where the earlier one ended.
        let start = last_end.map_or(start, |e| start.max(e));
        if end <= start {
            continue;
        }
        if let Some(gap_start) = last_end.filter(|e| *e < start) {
            let ok = g.append(worker, Segment::new(gap_start, start, State::Blocked));
            let linked = match vcpu {
                Some(v) => g.add_link(Link::wakeup(
                    Endpoint::new(v, start),
                    Endpoint::new(worker, start),
                )),
                None => Ok(()),
            };
            if ok.is_err() || linked.is_err() {
                *refused += 1;
            }
        }
        if g.append(worker, Segment::new(start, end, State::Running))
            .is_err()
        {
            *refused += 1;
        }
        last_end = Some(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtflow_graph::CriticalPath;

    /// A process that ran [0, 10) and [30, 40) on a vCPU which waited for the disk between
    /// [12, 28), woken by an I/O thread: the process's path over [0, 40) goes through the
    /// vCPU and the I/O thread for its wait.
    #[test]
    fn a_process_waits_on_what_its_vcpu_waited_for() {
        let mut g = Graph::new();
        let (vcpu, io) = (g.add_worker(), g.add_worker());
        g.append(vcpu, Segment::new(0, 12, State::Running)).unwrap();
        g.append(vcpu, Segment::new(12, 28, State::Blocked))
            .unwrap();
        g.append(vcpu, Segment::new(28, 40, State::Running))
            .unwrap();
        g.append(io, Segment::new(0, 20, State::Disk)).unwrap();
        g.append(io, Segment::new(20, 28, State::Running)).unwrap();
        g.add_link(Link::wakeup(Endpoint::new(io, 28), Endpoint::new(vcpu, 28)))
            .unwrap();
        let process = g.add_worker();
        let mut refused = 0;
        chain(
            &mut g,
            process,
            &[(0, 10, Some(vcpu)), (30, 40, Some(vcpu))],
            &mut refused,
        );
        assert_eq!(refused, 0);
        let states: Vec<(i64, i64, State)> = g
            .segments(process)
            .iter()
            .map(|s| (s.start(), s.end(), s.state()))
            .collect();
        assert_eq!(
            states,
            [
                (0, 10, State::Running),
                (10, 30, State::Blocked),
                (30, 40, State::Running)
            ]
        );
        let path = CriticalPath::within(&g, process, 0, 40).unwrap();
        let pieces: Vec<(i64, i64, Option<WorkerId>, State)> = path
            .segments
            .iter()
            .map(|s| (s.start, s.end, s.worker, s.state))
            .collect();
        assert_eq!(
            pieces,
            [
                (0, 10, Some(process), State::Running),
                (10, 12, Some(vcpu), State::Running),
                (12, 20, Some(io), State::Disk),
                (20, 28, Some(io), State::Running),
                (28, 30, Some(vcpu), State::Running),
                (30, 40, Some(process), State::Running),
            ]
        );
    }
}

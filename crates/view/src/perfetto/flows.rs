//! The execution graph's links in the Perfetto export, as Perfetto's flows: every wake-up and
//! message between threads, into or out of a VM's threads, becomes an instant on the source thread's track
//! (`wakes web vCPU 0`, carrying the flow's id in `flow_ids`) and one on the target's
//! (`woken by web's vhost-4000 …`, the id in `terminating_flow_ids`), which the UI joins with
//! an arrow. The threads at the other ends that have no track yet get one: a VM's helper
//! thread under its VM's process, a host thread under its host's track; each carries its own
//! states from the graph as slices, so that one sees what the waker was doing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use virtflow_graph::{Link, LinkKind, WorkerId};
use virtflow_model::{ExecutionGraph, Model};

use super::proto::track_event::Type as EventType;
use super::proto::{ThreadDescriptor, TracePacket, TrackDescriptor, TrackEvent};
use super::series::SliceCursor;
use super::{host_id, PacketWriter, Stream, Uuids};
use crate::threads::{meaning, Role, Thread, Who};

/// Which links become flows, and who is at their ends.
pub(super) struct Plan<'a> {
    eg: Option<&'a ExecutionGraph>,
    links: Vec<Link>,
    /// By worker: who it is (only the workers of the kept links).
    threads: HashMap<WorkerId, Thread>,
}

impl Plan<'_> {
    /// Whether host `host` has threads that need a track under it.
    pub(super) fn needs_host_track(&self, host: &str) -> bool {
        self.threads
            .values()
            .any(|t| t.role == Role::Host && t.host == host)
    }
}

/// The wake-ups and messages with a VM's thread at one end at least.
pub(super) fn plan(model: &Model) -> Plan<'_> {
    let Some(eg) = model.graph.as_ref() else {
        return Plan {
            eg: None,
            links: Vec::new(),
            threads: HashMap::new(),
        };
    };
    let who = Who::new(model);
    let mut cache: HashMap<WorkerId, Thread> = HashMap::new();
    let mut links = Vec::new();
    for link in eg.graph.links() {
        if link.kind == LinkKind::Fork {
            continue;
        }
        let ends = [link.source.worker, link.target.worker];
        for w in ends {
            cache.entry(w).or_insert_with(|| who.worker(eg, w));
        }
        // A guest process's or nested guest's links are its vCPU handing it the CPU: they
        // have the vCPU's guest-process tracks already, and are no wake-up between threads.
        if ends.iter().any(|w| cache[w].role == Role::Guest) {
            continue;
        }
        if ends.iter().any(|w| cache[w].vm.is_some()) {
            links.push(link);
        }
    }
    let mut threads = HashMap::new();
    for l in &links {
        for w in [l.source.worker, l.target.worker] {
            if let Some(t) = cache.get(&w) {
                threads.insert(w, t.clone());
            }
        }
    }
    links.sort_by_key(|l| (l.source.time, l.target.time));
    Plan {
        eg: Some(eg),
        links,
        threads,
    }
}

/// The instants of every flow: sources by source time, targets by target time, merged; at one
/// instant a flow's source comes before its target.
pub(super) struct FlowCursor {
    /// (flow id, time, track, the instant's name)
    sources: Vec<(u64, i64, u64, String)>,
    targets: Vec<(u64, i64, u64, String)>,
    next_source: usize,
    next_target: usize,
}

impl FlowCursor {
    pub(super) fn peek_time(&self) -> Option<i64> {
        let s = self.sources.get(self.next_source).map(|f| f.1);
        let t = self.targets.get(self.next_target).map(|f| f.1);
        match (s, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn emit_next<W: Write>(&mut self, w: &mut PacketWriter<W>) -> io::Result<()> {
        let s = self.sources.get(self.next_source);
        let t = self.targets.get(self.next_target);
        let from_source = match (s, t) {
            (Some(a), Some(b)) => a.1 <= b.1,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let (list, next) = if from_source {
            (&self.sources, &mut self.next_source)
        } else {
            (&self.targets, &mut self.next_target)
        };
        let Some((id, time, track, name)) = list.get(*next) else {
            return Ok(());
        };
        *next += 1;
        let mut event = TrackEvent {
            r#type: Some(EventType::Instant as i32),
            track_uuid: Some(*track),
            categories: vec!["flow".to_string()],
            name: Some(name.clone()),
            ..Default::default()
        };
        if from_source {
            event.flow_ids = vec![*id];
            w.stats.flows += 1;
        } else {
            event.terminating_flow_ids = vec![*id];
        }
        w.event(*time, event)
    }
}

/// Writes the tracks of the plan's threads that have none (`tracks` maps (host, tid) to the
/// vCPUs' tracks, and gains theirs) and gives the streams of their states and of the flows.
#[allow(clippy::too_many_arguments)]
pub(super) fn streams<'a, W: Write>(
    model: &'a Model,
    plan: Plan<'a>,
    w: &mut PacketWriter<W>,
    uuids: &mut Uuids,
    processes: &[u64],
    hosts: &[Option<u64>],
    tracks: &mut HashMap<(String, u32), u64>,
) -> io::Result<Vec<Stream<'a>>> {
    let Some(eg) = plan.eg else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let several_hosts = model.hosts.len() > 1;
    let mut workers: Vec<(&WorkerId, &Thread)> = plan.threads.iter().collect();
    workers.sort_by_key(|(w, _)| **w);
    for (&worker, t) in workers {
        let key = (t.host.clone(), t.tid);
        if tracks.contains_key(&key) {
            continue;
        }
        let id = uuids.next();
        let descriptor = match t.vm {
            Some(vm) => {
                let pid = model.vms[vm].pid;
                let (pid, tid) = if several_hosts {
                    (host_id(model, &t.host, pid), host_id(model, &t.host, t.tid))
                } else {
                    (pid as i32, t.tid as i32)
                };
                TrackDescriptor {
                    uuid: Some(id),
                    parent_uuid: Some(processes[vm]),
                    name: Some(t.comm.clone()),
                    thread: Some(ThreadDescriptor {
                        pid: Some(pid),
                        tid: Some(tid),
                        thread_name: Some(t.comm.clone()),
                    }),
                    ..Default::default()
                }
            }
            None => TrackDescriptor {
                uuid: Some(id),
                parent_uuid: model
                    .hosts
                    .iter()
                    .position(|h| h.name == t.host)
                    .and_then(|h| hosts[h]),
                name: Some(format!("{} ({})", t.comm, t.tid)),
                ..Default::default()
            },
        };
        w.packet(TracePacket {
            track_descriptor: Some(descriptor),
            ..Default::default()
        })?;
        tracks.insert(key, id);
        let slices = eg
            .graph
            .segments(worker)
            .iter()
            .map(|s| (s.start(), s.end(), Cow::Borrowed(meaning(s.state()))))
            .collect();
        out.push(Stream::Slices(SliceCursor {
            track: id,
            category: "thread_state",
            slices,
            next: 0,
            open: false,
        }));
    }
    let track_of = |w: WorkerId| {
        let t = &plan.threads[&w];
        tracks[&(t.host.clone(), t.tid)]
    };
    let label = |w: WorkerId| plan.threads[&w].label.as_str();
    let mut sources = Vec::with_capacity(plan.links.len());
    let mut targets = Vec::with_capacity(plan.links.len());
    for (i, l) in plan.links.iter().enumerate() {
        let id = i as u64 + 1;
        let (src, tgt) = (l.source.worker, l.target.worker);
        let (out_name, in_name) = match l.kind {
            LinkKind::Message => (
                format!("sends to {}", label(tgt)),
                format!("receives from {}", label(src)),
            ),
            _ => (
                format!("wakes {}", label(tgt)),
                format!("woken by {}", label(src)),
            ),
        };
        sources.push((id, l.source.time, track_of(src), out_name));
        targets.push((id, l.target.time, track_of(tgt), in_name));
    }
    // Sources are in source-time order already (the plan's sort).
    targets.sort_by_key(|t| (t.1, t.0));
    if !sources.is_empty() {
        out.push(Stream::Flows(FlowCursor {
            sources,
            targets,
            next_source: 0,
            next_target: 0,
        }));
    }
    Ok(out)
}

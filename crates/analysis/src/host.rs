//! One host's share of the pass: its analyses, fed the host's events in time order, and what
//! they make of them at the end.

use virtflow_model::{Host, Vm};
use virtflow_trace::{EventHeader, LostEvents, PassedOver, ReadStats};

use crate::cmdline::{self, VmmCommandLine};
use crate::devices::Devices;
use crate::graph::{GraphBuilder, RemoteLink};
use crate::guest::GuestTracker;
use crate::layout::{EventContext, MessageKey, PacketDir, TypedEvent};
use crate::memory::Memory;
use crate::vms;
use crate::w2a::Analyzer;

/// The analyses of one host, in the order each event visits them: the W2A machine first
/// (every other analysis reads the thread states it keeps), then guest processes, devices.
pub(crate) struct HostPass {
    an: Analyzer,
    guest: GuestTracker,
    devices: Devices,
    memory: Memory,
    markers: cmdline::Markers,
    events: u64,
}

impl HostPass {
    pub fn new(keep_intervals: bool, series: bool, graph: bool) -> HostPass {
        let mut an = Analyzer::new(keep_intervals, series);
        if graph {
            an.graph = Some(GraphBuilder::default());
        }
        HostPass {
            an,
            guest: GuestTracker::new(keep_intervals),
            devices: Devices::default(),
            memory: Memory::default(),
            markers: cmdline::Markers::default(),
            events: 0,
        }
    }

    /// Whether the W2A machine lacks `tid`'s name (the decoder reads it only then).
    #[inline]
    pub fn needs_name(&self, tid: u32) -> bool {
        self.an.needs_name(tid)
    }

    /// Whether the W2A machine lacks `tid`'s thread group.
    #[inline]
    pub fn needs_tgid(&self, tid: u32) -> bool {
        self.an.needs_tgid(tid)
    }

    /// The threads whose names and groups the W2A machine holds now (for a decoder that
    /// will run ahead of it).
    pub fn known_threads(&self) -> crate::known::KnownThreads {
        crate::known::KnownThreads::of_threads(
            self.an
                .threads
                .iter()
                .map(|t| (t.tid, !t.comm.is_empty(), t.tgid.is_some())),
        )
    }

    /// The next event of this host, decoded (`None`: no analysis decodes its class, or a
    /// field it needs is missing), with the exit's guest instruction pointer when it is a KVM
    /// exit that carries one. Returns the message it carries between hosts, when it is one
    /// with a key, for the experiment's pairing (with the thread it ran in).
    /// (By reference: copied into each call, the decoder's freshly written event was read back
    /// wider than written, a stall on every event.)
    #[inline]
    pub fn event(
        &mut self,
        header: &EventHeader,
        sideband: bool,
        decoded: Option<(&EventContext, &TypedEvent)>,
        guest_rip: Option<u64>,
    ) -> Option<(PacketDir, MessageKey, u32)> {
        self.events += 1;
        let an = &mut self.an;
        let (ctx, ev) = match decoded {
            Some(d) => d,
            None => {
                if !sideband {
                    an.tick(header.ts, header.cpu);
                }
                return None;
            }
        };
        let message = match *ev {
            TypedEvent::Packet {
                dir,
                primary: true,
                key: Some(key),
            }
            | TypedEvent::VmSync { dir, key } => Some((dir, key, an.current(ctx).unwrap_or(0))),
            _ => None,
        };
        match *ev {
            // Written by a tool, not the kernel's doing: only its time counts.
            TypedEvent::Marker { text } => {
                self.markers.add(text);
                an.tick(header.ts, header.cpu);
            }
            _ if sideband => an.sideband(ev),
            _ => {
                an.event(ctx, ev);
                if let Some(g) = an.graph.as_mut() {
                    g.observe(header.cpu, ev);
                }
                self.guest.event(an, ctx, ev, guest_rip);
                self.devices.event(an, ctx, ev);
                self.memory.event(an, ctx, ev);
            }
        }
        message
    }

    /// A message from `host`'s thread `thread` sent at `sent` was received on `cpu` of this
    /// host: the wait its softirq ends is that message's.
    pub fn received(&mut self, cpu: u32, host: usize, thread: u32, sent: i64) {
        if let Some(g) = self.an.graph.as_mut() {
            g.received(cpu, host, thread, sent);
        }
    }

    /// What the source passed over, undecoded: counted, and the trace's span reaches them.
    /// The CPUs they name were announced with each CPU's first event.
    pub fn passed_over(&mut self, passed: PassedOver) {
        self.events += passed.events;
        if let Some(last) = passed.last {
            self.an.tick(last, EventHeader::NO_CPU);
        }
    }

    pub fn lost(&mut self, lost: &LostEvents) {
        self.an.lost(lost);
        self.guest.lost(&self.an, lost);
    }

    /// Closes every state at the host's last event and assembles its VMs. `cmdlines` are the
    /// VMM command lines known from outside the trace; `read` what the readers counted.
    pub fn finish(
        mut self,
        name: String,
        cmdlines: &[VmmCommandLine],
        read: &ReadStats,
    ) -> (Host, Vec<Vm>, Vec<String>, Option<HostGraph>) {
        let an = &mut self.an;
        an.finish();
        let mut graph = an.graph.take().map(|g| {
            let refused = g.refused;
            let (graph, tids, by_tid, remote) = g.finish();
            let comm = |tid: u32| {
                an.thread_index(tid)
                    .map(|i| an.threads[i].comm.clone())
                    .unwrap_or_default()
            };
            HostGraph {
                workers: crate::graph::workers(&name, &tids, comm),
                graph,
                by_tid,
                remote,
                refused,
            }
        });
        self.guest.finish(an);
        let (mut all_cmdlines, mut marker_problems) = self.markers.finish();
        all_cmdlines.extend(cmdlines.iter().cloned());
        let (mut host, mut vms, mut notes) =
            vms::build(an, &self.devices, &self.memory, name, &all_cmdlines);
        host.events = self.events;
        self.guest.fill(an, &mut vms);
        if let Some(g) = &mut graph {
            crate::guest_workers::add(g, &vms);
        }
        let mut front = Vec::new();
        if an.kvm_events == 0 {
            front.push("no KVM events in this trace".to_string());
        }
        if an.lost_notices > 0 || read.lost_events > 0 {
            let notices = read.lost_notices.max(an.lost_notices);
            front.push(format!(
                "the tracer lost events ({notices} notice{}, {} events counted): states are \
                 unknown from each loss until the next event that shows them",
                if notices == 1 { "" } else { "s" },
                read.lost_events
            ));
        }
        if an.unattributed > 0 {
            front.push(format!(
                "{} KVM entries/exits came before any event told which thread ran on their \
                 CPU and were not attributed",
                an.unattributed
            ));
        }
        front.append(&mut notes);
        front.append(&mut marker_problems);
        (host, vms, front, graph)
    }
}

/// One host's execution graph, to be joined with the others'.
pub(crate) struct HostGraph {
    pub graph: virtflow_graph::Graph,
    pub workers: Vec<virtflow_model::GraphWorker>,
    pub by_tid: rustc_hash::FxHashMap<u32, virtflow_graph::WorkerId>,
    pub remote: Vec<RemoteLink>,
    pub refused: u64,
}

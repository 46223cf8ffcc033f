//! The analyses' figures over time in the Perfetto export: per host a counter of its runnable
//! vCPUs (its track named with its pCPUs), per VM counters of its steal and of the memory it
//! holds, and its phases as slices on its process track. Counter values are the model's
//! series, one sample per bucket of the host's time line.

use std::borrow::Cow;
use std::io::{self, Write};

use virtflow_model::{Buckets, Model};

use super::proto::counter_descriptor::Unit;
use super::proto::track_event::Type as EventType;
use super::proto::{CounterDescriptor, TracePacket, TrackDescriptor, TrackEvent};
use super::{PacketWriter, Stream, Uuids};
use crate::analyses::held;

/// Samples of one counter track, in time order.
pub(super) struct CounterCursor {
    track: u64,
    samples: Vec<(i64, f64)>,
    next: usize,
}

impl CounterCursor {
    pub(super) fn peek_time(&self) -> Option<i64> {
        self.samples.get(self.next).map(|s| s.0)
    }

    pub(super) fn emit_next<W: Write>(&mut self, w: &mut PacketWriter<W>) -> io::Result<()> {
        let Some(&(t, value)) = self.samples.get(self.next) else {
            return Ok(());
        };
        self.next += 1;
        w.stats.counter_values += 1;
        w.event(
            t,
            TrackEvent {
                r#type: Some(EventType::Counter as i32),
                track_uuid: Some(self.track),
                double_counter_value: Some(value),
                ..Default::default()
            },
        )
    }
}

/// Slices of one track, each with its own name, in time order and not overlapping.
pub(super) struct SliceCursor<'a> {
    pub(super) track: u64,
    pub(super) category: &'static str,
    pub(super) slices: Vec<(i64, i64, Cow<'a, str>)>,
    pub(super) next: usize,
    pub(super) open: bool,
}

impl SliceCursor<'_> {
    pub(super) fn peek_time(&self) -> Option<i64> {
        let s = self.slices.get(self.next)?;
        Some(if self.open { s.1 } else { s.0 })
    }

    pub(super) fn emit_next<W: Write>(&mut self, w: &mut PacketWriter<W>) -> io::Result<()> {
        let Some(t) = self.peek_time() else {
            return Ok(());
        };
        let event = if self.open {
            self.open = false;
            self.next += 1;
            w.stats.slices += 1;
            TrackEvent {
                r#type: Some(EventType::SliceEnd as i32),
                track_uuid: Some(self.track),
                ..Default::default()
            }
        } else {
            self.open = true;
            TrackEvent {
                r#type: Some(EventType::SliceBegin as i32),
                track_uuid: Some(self.track),
                categories: vec![self.category.to_string()],
                name: Some(self.slices[self.next].2.to_string()),
                ..Default::default()
            }
        };
        w.event(t, event)
    }
}

/// A counter track named `name` below `parent`, described to `w`, and the stream of its
/// `samples` (time, value).
fn counter<'a, W: Write>(
    w: &mut PacketWriter<W>,
    uuids: &mut Uuids,
    parent: u64,
    name: String,
    unit: Unit,
    samples: Vec<(i64, f64)>,
) -> io::Result<Stream<'a>> {
    let uuid = uuids.next();
    w.packet(TracePacket {
        track_descriptor: Some(TrackDescriptor {
            uuid: Some(uuid),
            parent_uuid: Some(parent),
            name: Some(name),
            counter: Some(CounterDescriptor {
                unit: Some(unit as i32),
            }),
            ..Default::default()
        }),
        ..Default::default()
    })?;
    Ok(Stream::Counter(CounterCursor {
        track: uuid,
        samples,
        next: 0,
    }))
}

/// One value per bucket, sampled where the bucket starts.
fn per_bucket(b: &Buckets, values: &[u64]) -> Vec<(i64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (b.start_of(i), v as f64 / b.step_ns.max(1) as f64))
        .collect()
}

/// The counter tracks and phase slices; `processes` are the VMs' process tracks and `hosts`
/// the hosts' tracks (`None`: the host has none, having no series).
pub(super) fn streams<'a, W: Write>(
    model: &'a Model,
    w: &mut PacketWriter<W>,
    uuids: &mut Uuids,
    processes: &[u64],
    hosts: &[Option<u64>],
) -> io::Result<Vec<Stream<'a>>> {
    let mut out = Vec::new();
    for (host, track) in model.hosts.iter().zip(hosts) {
        let (Some(track), Some(b)) = (track, &host.buckets) else {
            continue;
        };
        if host.overcommit.runnable.is_empty() {
            continue;
        }
        out.push(counter(
            w,
            uuids,
            *track,
            format!("{} runnable vCPUs", host.name),
            Unit::Unspecified,
            per_bucket(b, &host.overcommit.runnable),
        )?);
    }
    for (vm, &process) in model.vms.iter().zip(processes) {
        let host = model.hosts.iter().find(|h| h.name == vm.host);
        if let Some(b) = host.and_then(|h| h.buckets.as_ref()) {
            if !vm.overcommit.steal.is_empty() {
                out.push(counter(
                    w,
                    uuids,
                    process,
                    format!("{} steal (vCPUs)", vm.name),
                    Unit::Unspecified,
                    per_bucket(b, &vm.overcommit.steal),
                )?);
            }
            let traced = host.is_some_and(|h| h.memory.traced);
            if traced && !(vm.memory.allocated.is_empty() && vm.memory.freed.is_empty()) {
                // Nothing held of what the trace saw allocated at its start; then what was held
                // at each bucket's end.
                let samples = std::iter::once((b.start_ns, 0.0))
                    .chain(
                        held(&vm.memory.allocated, &vm.memory.freed)
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (b.start_of(i + 1), v as f64)),
                    )
                    .collect();
                out.push(counter(
                    w,
                    uuids,
                    process,
                    format!("{} memory held", vm.name),
                    Unit::SizeBytes,
                    samples,
                )?);
            }
        }
        if !vm.phases.is_empty() {
            out.push(Stream::Slices(SliceCursor {
                track: process,
                category: "phase",
                slices: vm
                    .phases
                    .iter()
                    .map(|p| (p.start, p.end, Cow::Borrowed(p.name.as_str())))
                    .collect(),
                next: 0,
                open: false,
            }));
        }
    }
    Ok(out)
}

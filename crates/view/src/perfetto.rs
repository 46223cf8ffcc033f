//! Perfetto export: the model as a Perfetto protobuf trace, which ui.perfetto.dev and
//! trace_processor open.
//!
//! Layout: a process track per VM (its pid and name), a thread track per vCPU (its tid,
//! under the VM's pid) carrying one slice per interval, named by state ("guest",
//! "hypervisor: EPT_VIOLATION", "preempted by kworker/1:2 (77, kernel)"…), and, under each
//! vCPU, two counter tracks sampled over fixed windows: `steal %` (share of the window spent
//! preempted) and `interrupt exits/s` (exits for host interrupts, VMX EXTERNAL_INTERRUPT /
//! SVM `intr`, started in the window). When the analysis split a vCPU's guest time, its
//! guest processes (CR3) and nested L2 guests get child tracks of the vCPU's, with a slice
//! (`guest process cr3 0x…`, `L2 guest vmcs 0x…`) for every span they ran.
//!
//! Packets are written one at a time, in global timestamp order (a k-way merge over the
//! vCPUs), as fields of the top-level `Trace` message, so memory stays flat however many
//! intervals there are.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use prost::Message;
use virtflow_model::{Model, Span, Vcpu, VcpuState};

use crate::states::{is_external_interrupt, Labeler};

/// The generated message types (`proto/perfetto_subset.proto`).
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/perfetto.protos.rs"));
}

use proto::track_event::Type as EventType;
use proto::{
    CounterDescriptor, ProcessDescriptor, ThreadDescriptor, TracePacket, TrackDescriptor,
    TrackEvent,
};

/// All packets share one writer sequence.
const SEQUENCE_ID: u32 = 1;
/// `Trace.packet` field number.
const TRACE_PACKET_FIELD: u32 = 1;
/// Counter windows across the trace (fewer when the trace is shorter than that many µs).
const COUNTER_WINDOWS: i64 = 2000;

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub packets: u64,
    pub slices: u64,
    pub counter_values: u64,
    /// Intervals with negative timestamps, which Perfetto cannot place (clamped to 0).
    pub clamped: u64,
}

/// Track ids of one vCPU.
struct VcpuTracks {
    thread: u64,
    steal: u64,
    interrupts: u64,
}

/// What the UI shows beside a VM's process: its guest name and UUID, when its VMM's command
/// line gave them.
fn process_labels(vm: &virtflow_model::Vm) -> Vec<String> {
    let guest = vm.guest_name.iter().map(|n| format!("guest={n}"));
    let uuid = vm.uuid.iter().map(|u| format!("uuid={u}"));
    guest.chain(uuid).collect()
}

/// Writes `model` as a Perfetto trace to `out`.
pub fn write(model: &Model, out: &mut impl Write) -> io::Result<ExportStats> {
    let labeler = Labeler::new(model);
    let mut w = PacketWriter {
        out,
        buf: Vec::with_capacity(256),
        stats: ExportStats::default(),
    };

    // Descriptors first: tracks must be known before their events.
    let mut next_uuid = 1u64;
    let mut uuid = || {
        next_uuid += 1;
        next_uuid
    };
    let mut tracks: Vec<Vec<VcpuTracks>> = Vec::new();
    let mut span_cursors: Vec<SpanCursor> = Vec::new();
    for vm in &model.vms {
        let process = uuid();
        w.packet(TracePacket {
            track_descriptor: Some(TrackDescriptor {
                uuid: Some(process),
                name: Some(vm.name.clone()),
                process: Some(ProcessDescriptor {
                    pid: Some(vm.pid as i32),
                    process_name: Some(vm.name.clone()),
                    process_labels: process_labels(vm),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })?;
        let mut vm_tracks = Vec::new();
        for v in &vm.vcpus {
            let t = VcpuTracks {
                thread: uuid(),
                steal: uuid(),
                interrupts: uuid(),
            };
            let name = format!("vCPU {}", v.vcpu);
            w.packet(TracePacket {
                track_descriptor: Some(TrackDescriptor {
                    uuid: Some(t.thread),
                    parent_uuid: Some(process),
                    name: Some(name.clone()),
                    thread: Some(ThreadDescriptor {
                        pid: Some(vm.pid as i32),
                        tid: Some(v.tid as i32),
                        thread_name: Some(name.clone()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })?;
            for (id, what) in [(t.steal, "steal %"), (t.interrupts, "interrupt exits/s")] {
                w.packet(TracePacket {
                    track_descriptor: Some(TrackDescriptor {
                        uuid: Some(id),
                        parent_uuid: Some(t.thread),
                        name: Some(format!("{name} {what}")),
                        counter: Some(CounterDescriptor {
                            unit: Some(proto::counter_descriptor::Unit::Unspecified as i32),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                })?;
            }
            vm_tracks.push(t);
            // Guest processes and L2 guests: child tracks of the vCPU's, slices only.
            let parent = vm_tracks.last().map(|t| t.thread);
            let processes = v.processes.iter().map(|p| {
                let level = if p.l2 { "L2 " } else { "" };
                (
                    format!("{level}guest process cr3 {:#x}", p.cr3),
                    &p.intervals,
                )
            });
            let nested = v
                .nested
                .iter()
                .map(|n| (format!("L2 guest vmcs {:#x}", n.vmcs), &n.intervals));
            for (what, spans) in processes.chain(nested) {
                if spans.is_empty() {
                    continue;
                }
                let track = uuid();
                w.packet(TracePacket {
                    track_descriptor: Some(TrackDescriptor {
                        uuid: Some(track),
                        parent_uuid: parent,
                        name: Some(format!("{name} {what}")),
                        ..Default::default()
                    }),
                    ..Default::default()
                })?;
                span_cursors.push(SpanCursor {
                    spans,
                    track,
                    name: what,
                    next: 0,
                    open: false,
                });
            }
        }
        tracks.push(vm_tracks);
    }

    // Then every vCPU's events, merged by timestamp.
    let window = counter_window(model);
    let mut cursors: Vec<Cursor> = Vec::new();
    for (vm, vm_tracks) in model.vms.iter().zip(tracks) {
        for (v, t) in vm.vcpus.iter().zip(vm_tracks) {
            cursors.push(Cursor::new(v, t, window));
        }
    }
    // Indices past the vCPU cursors name span cursors.
    let n = cursors.len();
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = cursors
        .iter()
        .map(Cursor::peek_time)
        .chain(span_cursors.iter().map(SpanCursor::peek_time))
        .enumerate()
        .filter_map(|(i, t)| t.map(|t| Reverse((t, i))))
        .collect();
    while let Some(Reverse((_, i))) = heap.pop() {
        let next = if i < n {
            let cursor = &mut cursors[i];
            cursor.emit_next(&mut w, &labeler)?;
            cursor.peek_time()
        } else {
            let cursor = &mut span_cursors[i - n];
            cursor.emit_next(&mut w)?;
            cursor.peek_time()
        };
        if let Some(t) = next {
            heap.push(Reverse((t, i)));
        }
    }
    w.out.flush()?;
    Ok(w.stats)
}

/// The counters' sampling window: the trace span in [`COUNTER_WINDOWS`] parts, at least 1 µs.
fn counter_window(model: &Model) -> i64 {
    let all = model.vms.iter().flat_map(|vm| vm.vcpus.iter());
    let start = all
        .clone()
        .filter_map(|v| v.intervals.first())
        .map(|i| i.start)
        .min();
    let end = all.filter_map(|v| v.intervals.last()).map(|i| i.end).max();
    match (start, end) {
        (Some(s), Some(e)) if e > s => ((e - s) / COUNTER_WINDOWS).max(1_000),
        _ => 1_000,
    }
}

struct PacketWriter<'a, W: Write> {
    out: &'a mut W,
    buf: Vec<u8>,
    stats: ExportStats,
}

impl<W: Write> PacketWriter<'_, W> {
    fn packet(&mut self, mut packet: TracePacket) -> io::Result<()> {
        packet.trusted_packet_sequence_id = Some(SEQUENCE_ID);
        self.buf.clear();
        prost::encoding::message::encode(TRACE_PACKET_FIELD, &packet, &mut self.buf);
        self.stats.packets += 1;
        self.out.write_all(&self.buf)
    }

    fn event(&mut self, ts: i64, event: TrackEvent) -> io::Result<()> {
        if ts < 0 {
            self.stats.clamped += 1;
        }
        self.packet(TracePacket {
            timestamp: Some(ts.max(0) as u64),
            track_event: Some(event),
            ..Default::default()
        })
    }
}

/// One vCPU's event stream: slice begin/end pairs, and counter samples at window starts.
struct Cursor<'a> {
    vcpu: &'a Vcpu,
    tracks: VcpuTracks,
    /// Next interval, and whether its begin was written.
    next: usize,
    open: bool,
    /// Counter samples: (time, steal %, interrupt exits/s), precomputed (small).
    samples: Vec<(i64, f64, f64)>,
    next_sample: usize,
}

impl<'a> Cursor<'a> {
    fn new(vcpu: &'a Vcpu, tracks: VcpuTracks, window: i64) -> Cursor<'a> {
        let samples = counter_samples(vcpu, window);
        Cursor {
            vcpu,
            tracks,
            next: 0,
            open: false,
            samples,
            next_sample: 0,
        }
    }

    fn slice_time(&self) -> Option<i64> {
        let iv = self.vcpu.intervals.get(self.next)?;
        Some(if self.open { iv.end } else { iv.start })
    }

    fn peek_time(&self) -> Option<i64> {
        let sample = self.samples.get(self.next_sample).map(|s| s.0);
        match (self.slice_time(), sample) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn emit_next<W: Write>(
        &mut self,
        w: &mut PacketWriter<W>,
        labeler: &Labeler,
    ) -> io::Result<()> {
        let sample = self.samples.get(self.next_sample).copied();
        match (self.slice_time(), sample) {
            (Some(t), s) if !matches!(s, Some(s) if s.0 < t) => {
                let iv = &self.vcpu.intervals[self.next];
                if self.open {
                    w.event(
                        t,
                        TrackEvent {
                            r#type: Some(EventType::SliceEnd as i32),
                            track_uuid: Some(self.tracks.thread),
                            ..Default::default()
                        },
                    )?;
                    w.stats.slices += 1;
                    self.open = false;
                    self.next += 1;
                } else {
                    w.event(
                        t,
                        TrackEvent {
                            r#type: Some(EventType::SliceBegin as i32),
                            track_uuid: Some(self.tracks.thread),
                            categories: vec!["vcpu_state".to_string()],
                            name: Some(labeler.label(&iv.state)),
                            debug_annotations: state_annotations(&iv.state),
                            ..Default::default()
                        },
                    )?;
                    self.open = true;
                }
            }
            (_, Some((t, steal, rate))) => {
                for (track, value) in [(self.tracks.steal, steal), (self.tracks.interrupts, rate)] {
                    w.event(
                        t,
                        TrackEvent {
                            r#type: Some(EventType::Counter as i32),
                            track_uuid: Some(track),
                            double_counter_value: Some(value),
                            ..Default::default()
                        },
                    )?;
                    w.stats.counter_values += 1;
                }
                self.next_sample += 1;
            }
            (None, None) => {}
            (Some(_), None) => unreachable!("handled by the first arm"),
        }
        Ok(())
    }
}

/// The spans of one guest process or L2 guest, as slice begin/end pairs on its track.
struct SpanCursor<'a> {
    spans: &'a [Span],
    track: u64,
    name: String,
    next: usize,
    open: bool,
}

impl SpanCursor<'_> {
    fn peek_time(&self) -> Option<i64> {
        let s = self.spans.get(self.next)?;
        Some(if self.open { s.end } else { s.start })
    }

    fn emit_next<W: Write>(&mut self, w: &mut PacketWriter<W>) -> io::Result<()> {
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
                categories: vec!["guest".to_string()],
                name: Some(self.name.clone()),
                ..Default::default()
            }
        };
        w.event(t, event)
    }
}

/// The machine-readable side of a slice: the state's kind and its parameters.
fn state_annotations(state: &VcpuState) -> Vec<proto::DebugAnnotation> {
    let text = |name: &str, value: String| proto::DebugAnnotation {
        name: Some(name.to_string()),
        string_value: Some(value),
        ..Default::default()
    };
    let kind = crate::states::StateKey::of(state).name().to_string();
    let mut out = vec![text("state", kind)];
    if let VcpuState::Hypervisor { code, .. } = state {
        out.push(proto::DebugAnnotation {
            name: Some("exit_code".to_string()),
            uint_value: Some(*code),
            ..Default::default()
        });
    }
    out
}

/// Steal share and interrupt-exit rate of one vCPU per window, sampled at window starts.
fn counter_samples(vcpu: &Vcpu, window: i64) -> Vec<(i64, f64, f64)> {
    let (Some(first), Some(last)) = (vcpu.intervals.first(), vcpu.intervals.last()) else {
        return Vec::new();
    };
    let origin = first.start;
    let n = ((last.end - origin) / window + 1) as usize;
    let mut steal = vec![0i64; n];
    let mut exits = vec![0u64; n];
    for iv in &vcpu.intervals {
        if is_external_interrupt(&iv.state) {
            exits[((iv.start - origin) / window) as usize] += 1;
        }
        if matches!(iv.state, VcpuState::Preempted { .. }) {
            // Split the interval over the windows it spans.
            let mut t = iv.start;
            while t < iv.end {
                let k = ((t - origin) / window) as usize;
                let window_end = origin + (k as i64 + 1) * window;
                let upto = iv.end.min(window_end);
                steal[k] += upto - t;
                t = upto;
            }
        }
    }
    let per_second = 1e9 / window as f64;
    (0..n)
        .map(|k| {
            (
                origin + k as i64 * window,
                100.0 * steal[k] as f64 / window as f64,
                exits[k] as f64 * per_second,
            )
        })
        .collect()
}

/// Encodes the whole trace in memory (tests, small models).
pub fn encode(model: &Model) -> Vec<u8> {
    let mut out = Vec::new();
    write(model, &mut out).expect("writing to memory does not fail");
    out
}

/// Decodes a trace written by [`write`] (tests and checks).
pub fn decode(bytes: &[u8]) -> Result<proto::Trace, prost::DecodeError> {
    proto::Trace::decode(bytes)
}

//! The viewport index: answers "what does row R look like between t1 and t2 at W pixels"
//! in time proportional to W, not to the number of intervals in the window.
//!
//! Each vCPU becomes a [`Track`]: its intervals as sorted parallel arrays (start, end,
//! detail id), plus, every [`BLOCK`] intervals, the cumulative time per [`StateKey`] before
//! that block. The time per state in any window `[a, b)` is then `before(b) - before(a)`,
//! each `before(t)` costing one binary search and at most `BLOCK` additions. A viewport
//! query walks the window once: an interval at least one pixel wide is sent as it is; where
//! intervals get narrower than a pixel, one pixel-wide bucket is sent instead, colored by the
//! state that dominates it. Every step advances by at least a pixel, so a row never has more
//! than about `2 × width` segments, whatever the trace size.

use std::collections::HashMap;

use serde::Serialize;
use virtflow_model::{Model, VcpuState};

use crate::states::{Labeler, StateKey, StateNs, STATE_KEYS};

/// Intervals per cumulative-sum block: the most a prefix query adds one by one.
pub const BLOCK: usize = 32;

/// Most pixels a viewport query may ask for.
pub const MAX_WIDTH: u32 = 4096;

/// Most rows one viewport query answers (clients page through more).
pub const MAX_ROWS: usize = 256;

/// One vCPU's state timeline, indexed.
#[derive(Debug, Default)]
pub struct Track {
    starts: Vec<i64>,
    ends: Vec<i64>,
    details: Vec<u32>,
    /// `block_before[k]` = time per state of intervals `[0, k * BLOCK)`.
    block_before: Vec<StateNs>,
    /// `block_first[k]` = start of interval `k * BLOCK`: a sweep searches this small array
    /// first, then one block, instead of probing the whole track far apart in memory.
    block_first: Vec<i64>,
}

/// What a display row shows.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowKind {
    /// The VM's summary row: per pixel, the state that dominates across its vCPUs.
    Vm { vm: usize, tracks: Vec<usize> },
    /// One vCPU.
    Vcpu {
        vm: usize,
        track: usize,
        vcpu: u32,
        tid: u32,
    },
    /// Under a vCPU: when one guest process (a CR3 loaded at entry) ran on it. Its
    /// intervals are all `guest`, with gaps where the process did not run.
    Process {
        vm: usize,
        track: usize,
        vcpu: u32,
        cr3: u64,
        /// Loaded for a nested (L2) guest.
        l2: bool,
    },
    /// Under a vCPU: when it ran one nested (L2) guest, named by its VMCS/VMCB address.
    Nested {
        vm: usize,
        track: usize,
        vcpu: u32,
        vmcs: u64,
    },
}

impl RowKind {
    /// The one track a vCPU, process or nested-guest row draws.
    pub fn track(&self) -> Option<usize> {
        match self {
            RowKind::Vm { .. } => None,
            RowKind::Vcpu { track, .. }
            | RowKind::Process { track, .. }
            | RowKind::Nested { track, .. } => Some(*track),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub label: String,
    #[serde(flatten)]
    pub kind: RowKind,
}

/// A distinct detailed state (one per exit reason, preemptor, cause…), named once so that
/// segments carry only its id.
#[derive(Clone, Debug, Serialize)]
pub struct Detail {
    pub key: StateKey,
    pub label: String,
}

/// One drawn piece of a row: `[start, end, key, detail, intervals]`, times relative to the
/// index origin. `detail` is -1 for a merged bucket, whose `key` is its dominant state and
/// `intervals` the number of intervals it covers (1 for an exact interval).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Segment(pub i64, pub i64, pub u8, pub i64, pub u64);

impl Segment {
    pub fn start(&self) -> i64 {
        self.0
    }
    pub fn end(&self) -> i64 {
        self.1
    }
    pub fn key(&self) -> StateKey {
        StateKey::ALL[self.2 as usize]
    }
    pub fn is_merged(&self) -> bool {
        self.3 < 0
    }
}

/// All rows of a model, indexed for viewport queries.
#[derive(Debug, Default)]
pub struct TimelineIndex {
    /// Absolute time of relative 0: timestamps can exceed what a JavaScript number holds
    /// exactly, so everything sent to the browser is relative to this.
    pub origin: i64,
    /// Relative extent of all intervals.
    pub start: i64,
    pub end: i64,
    pub rows: Vec<Row>,
    pub details: Vec<Detail>,
    pub tracks: Vec<Track>,
    /// Intervals dropped or clipped because they overlapped the one before (should be none).
    pub repaired: u64,
}

/// A viewport answer.
#[derive(Debug, Serialize)]
pub struct Viewport {
    pub start: i64,
    pub end: i64,
    pub width: u32,
    pub first_row: usize,
    pub rows: Vec<Vec<Segment>>,
}

impl Track {
    pub fn len(&self) -> usize {
        self.starts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Builds a track from intervals sorted by start (relative times, detail ids), clipping
    /// any overlap so that the prefix sums stay exact. Returns the track and the number of
    /// intervals repaired.
    fn build(mut raw: Vec<(i64, i64, u32)>, keys: &[StateKey]) -> (Track, u64) {
        if !raw.windows(2).all(|w| w[0].0 <= w[1].0) {
            raw.sort_by_key(|r| r.0);
        }
        let mut track = Track {
            starts: Vec::with_capacity(raw.len()),
            ends: Vec::with_capacity(raw.len()),
            details: Vec::with_capacity(raw.len()),
            block_before: Vec::with_capacity(raw.len() / BLOCK + 1),
            block_first: Vec::with_capacity(raw.len() / BLOCK + 1),
        };
        let mut repaired = 0;
        let mut acc = [0u64; STATE_KEYS];
        let mut last_end = i64::MIN;
        for (start, end, detail) in raw {
            let start = if start < last_end {
                repaired += 1;
                last_end
            } else {
                start
            };
            if end < start {
                // Wholly inside the interval before.
                continue;
            }
            if track.starts.len() / BLOCK == track.block_before.len() {
                track.block_before.push(acc);
                track.block_first.push(start);
            }
            acc[keys[detail as usize] as usize] += (end - start) as u64;
            track.starts.push(start);
            track.ends.push(end);
            track.details.push(detail);
            last_end = end;
        }
        // An empty track still needs the base of block 0.
        if track.starts.is_empty() {
            track.block_before.push(acc);
        }
        (track, repaired)
    }

    /// Index of the first interval ending after `t`.
    fn first_ending_after(&self, t: i64, from: usize) -> usize {
        from + self.ends[from..].partition_point(|&e| e <= t)
    }

    /// Time per state of everything before `t`.
    fn before(&self, t: i64, keys: &[StateKey]) -> StateNs {
        let j = self.starts.partition_point(|&s| s < t);
        // Interval j-1 may straddle `t`, so it must be added (clipped) here, never taken
        // whole from a block sum: start from the block that holds it.
        let block = j.saturating_sub(1) / BLOCK;
        let Some(base) = self.block_before.get(block) else {
            return [0; STATE_KEYS];
        };
        let mut acc = *base;
        for i in block * BLOCK..j {
            let end = self.ends[i].min(t);
            acc[keys[self.details[i] as usize] as usize] += (end - self.starts[i]) as u64;
        }
        acc
    }

    /// Time per state within `[a, b)`.
    pub fn time_in(&self, a: i64, b: i64, keys: &[StateKey]) -> StateNs {
        let hi = self.before(b, keys);
        let lo = self.before(a, keys);
        let mut out = [0; STATE_KEYS];
        for k in 0..STATE_KEYS {
            out[k] = hi[k] - lo[k];
        }
        out
    }

    /// The segments to draw for `[s, e)` at `ns_per_px` nanoseconds per pixel.
    fn segments(&self, s: i64, e: i64, ns_per_px: f64, keys: &[StateKey]) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        let px = (ns_per_px.ceil() as i64).max(1);
        let mut prefix = Prefix::new(self, keys);
        let mut i = self.first_ending_after(s, 0);
        let mut t = s;
        while i < self.len() && self.starts[i] < e {
            let a = self.starts[i].max(t);
            let b = self.ends[i].min(e);
            if b <= a {
                i += 1;
                continue;
            }
            if (b - a) as f64 >= ns_per_px {
                let d = self.details[i];
                out.push(Segment(a, b, keys[d as usize] as u8, d as i64, 1));
                t = b;
                i += 1;
                continue;
            }
            // Narrower than a pixel: one pixel-wide bucket, colored by its dominant state.
            let bucket_end = (a + px).min(e);
            let lo = prefix.at(a);
            let hi = prefix.at(bucket_end);
            let mut ns = [0; STATE_KEYS];
            for k in 0..STATE_KEYS {
                ns[k] = hi[k] - lo[k];
            }
            // The sweep has found which intervals start before the bucket's end: those are
            // covered, and the next to look at is the last of them if it runs past the end.
            let started = prefix.started;
            let covered = (started - i) as u64;
            let next = if self.ends[started - 1] > bucket_end {
                started - 1
            } else {
                started
            };
            let key = dominant(&ns);
            match out.last_mut() {
                // Runs of buckets with the same dominant state become one segment.
                Some(last) if last.is_merged() && last.2 == key as u8 && last.1 == a => {
                    last.1 = bucket_end;
                    last.4 += covered;
                }
                _ => out.push(Segment(a, bucket_end, key as u8, -1, covered)),
            }
            t = bucket_end;
            i = next;
        }
        out
    }
}

/// The first index at or after `from` where `pred` fails, for a predicate that holds on a
/// prefix of `v`: found by galloping from `from`, so that a sweep moving forward a little at
/// a time pays for the distance moved, not for the length of the track.
fn gallop(v: &[i64], from: usize, pred: impl Fn(i64) -> bool) -> usize {
    let n = v.len();
    if from >= n || !pred(v[from]) {
        return from;
    }
    let mut lo = from;
    let mut step = 1;
    while lo + step < n && pred(v[lo + step]) {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(n);
    lo + 1 + v[lo + 1..hi].partition_point(|&x| pred(x))
}

/// [`Track::before`] for a sweep: times that never decrease, each answered by moving
/// forward from the last one (whole blocks at a time when the gap is large).
struct Prefix<'a> {
    track: &'a Track,
    keys: &'a [StateKey],
    /// Intervals `[0, done)` are summed, whole, in `acc`.
    done: usize,
    acc: StateNs,
    /// Intervals that start before the last time asked: what a sweep needs next.
    started: usize,
    last: Option<(i64, StateNs)>,
}

impl<'a> Prefix<'a> {
    fn new(track: &'a Track, keys: &'a [StateKey]) -> Prefix<'a> {
        Prefix {
            track,
            keys,
            done: 0,
            acc: [0; STATE_KEYS],
            started: 0,
            last: None,
        }
    }

    /// Time per state before `t`; `t` must not be less than in the previous call.
    fn at(&mut self, t: i64) -> StateNs {
        if let Some((lt, v)) = self.last {
            if lt == t {
                return v;
            }
        }
        let tr = self.track;
        // Blocks whose first interval starts before `t`, then the place within the last one.
        let blocks = gallop(&tr.block_first, self.done / BLOCK, |s| s < t);
        let lo = blocks.saturating_sub(1) * BLOCK;
        let hi = (blocks * BLOCK).min(tr.len());
        let started = lo + tr.starts[lo..hi].partition_point(|&s| s < t);
        self.started = started;
        let mut out = self.acc;
        if started > 0 {
            // Every interval before the last one started ends before `t`.
            let whole = started - 1;
            if whole > self.done + 2 * BLOCK {
                let block = whole / BLOCK;
                self.acc = tr.block_before[block];
                self.done = block * BLOCK;
            }
            while self.done < whole {
                let i = self.done;
                self.acc[self.keys[tr.details[i] as usize] as usize] +=
                    (tr.ends[i] - tr.starts[i]) as u64;
                self.done += 1;
            }
            out = self.acc;
            out[self.keys[tr.details[whole] as usize] as usize] +=
                (tr.ends[whole].min(t) - tr.starts[whole]) as u64;
        }
        self.last = Some((t, out));
        out
    }
}

/// The state with the most time (ties go to the earlier key).
fn dominant(ns: &StateNs) -> StateKey {
    let mut best = 0;
    for k in 1..STATE_KEYS {
        if ns[k] > ns[best] {
            best = k;
        }
    }
    StateKey::ALL[best]
}

impl TimelineIndex {
    /// Indexes every vCPU's intervals, taking them out of `model` (the index holds them
    /// more compactly, and a 100-million-interval model should not exist twice).
    pub fn take_from(model: &mut Model) -> TimelineIndex {
        let labeler = Labeler::new(model);
        let origin = model
            .vms
            .iter()
            .flat_map(|vm| vm.vcpus.iter())
            .filter_map(|v| v.intervals.first().map(|i| i.start))
            .min()
            .or_else(|| model.hosts.iter().map(|h| h.start_ns).min())
            .unwrap_or(0);
        let mut index = TimelineIndex {
            origin,
            start: i64::MAX,
            end: i64::MIN,
            ..TimelineIndex::default()
        };
        let mut detail_ids: HashMap<VcpuState, u32> = HashMap::new();
        let mut keys: Vec<StateKey> = Vec::new();
        let several_hosts = model.hosts.len() > 1;
        for (vm_idx, vm) in model.vms.iter_mut().enumerate() {
            let vm_row = index.rows.len();
            index.rows.push(Row {
                // Pids repeat from host to host: the host tells VMs apart.
                label: if several_hosts {
                    format!("{} › {}", vm.host, vm.name)
                } else {
                    vm.name.clone()
                },
                kind: RowKind::Vm {
                    vm: vm_idx,
                    tracks: Vec::new(),
                },
            });
            let mut vm_tracks = Vec::new();
            for vcpu in vm.vcpus.iter_mut() {
                let intervals = std::mem::take(&mut vcpu.intervals);
                let mut raw = Vec::with_capacity(intervals.len());
                for iv in intervals {
                    let next_id = index.details.len() as u32;
                    let id = *detail_ids.entry(iv.state.clone()).or_insert_with(|| {
                        keys.push(StateKey::of(&iv.state));
                        index.details.push(Detail {
                            key: StateKey::of(&iv.state),
                            label: labeler.label(&iv.state),
                        });
                        next_id
                    });
                    raw.push((iv.start - origin, iv.end - origin, id));
                }
                let (track, repaired) = Track::build(raw, &keys);
                index.repaired += repaired;
                if let (Some(&s), Some(&e)) = (track.starts.first(), track.ends.last()) {
                    index.start = index.start.min(s);
                    index.end = index.end.max(e);
                }
                let track_id = index.tracks.len();
                index.tracks.push(track);
                vm_tracks.push(track_id);
                index.rows.push(Row {
                    label: format!("vCPU {} (tid {})", vcpu.vcpu, vcpu.tid),
                    kind: RowKind::Vcpu {
                        vm: vm_idx,
                        track: track_id,
                        vcpu: vcpu.vcpu,
                        tid: vcpu.tid,
                    },
                });
                // Under the vCPU: its guest processes, then its L2 guests, each a track of
                // `guest` spans whose detail names the process or guest (shown on hover).
                for p in vcpu.processes.iter_mut() {
                    let spans = std::mem::take(&mut p.intervals);
                    if spans.is_empty() {
                        continue;
                    }
                    let level = if p.l2 { "L2 " } else { "" };
                    let label = format!("guest: {level}process cr3 {:#x}", p.cr3);
                    let track = index.guest_track(&mut keys, label, spans);
                    index.rows.push(Row {
                        label: format!("{level}cr3 {:#x}", p.cr3),
                        kind: RowKind::Process {
                            vm: vm_idx,
                            track,
                            vcpu: vcpu.vcpu,
                            cr3: p.cr3,
                            l2: p.l2,
                        },
                    });
                }
                for n in vcpu.nested.iter_mut() {
                    let spans = std::mem::take(&mut n.intervals);
                    if spans.is_empty() {
                        continue;
                    }
                    let label = format!("guest: L2 guest vmcs {:#x}", n.vmcs);
                    let track = index.guest_track(&mut keys, label, spans);
                    index.rows.push(Row {
                        label: format!("L2 vmcs {:#x}", n.vmcs),
                        kind: RowKind::Nested {
                            vm: vm_idx,
                            track,
                            vcpu: vcpu.vcpu,
                            vmcs: n.vmcs,
                        },
                    });
                }
            }
            if let RowKind::Vm { tracks, .. } = &mut index.rows[vm_row].kind {
                *tracks = vm_tracks;
            }
        }
        if index.start > index.end {
            // No intervals: show the hosts' extent, or an empty second.
            let hs = model.hosts.iter().map(|h| h.start_ns).min();
            let he = model.hosts.iter().map(|h| h.end_ns).max();
            index.start = hs.map_or(0, |s| s - origin);
            index.end = he
                .map_or(1_000_000_000, |e| e - origin)
                .max(index.start + 1);
        }
        index
    }

    /// Adds a track of `guest` spans (a guest process or L2 guest) whose hover detail is
    /// `label`; returns its id.
    fn guest_track(
        &mut self,
        keys: &mut Vec<StateKey>,
        label: String,
        spans: Vec<virtflow_model::Span>,
    ) -> usize {
        let id = self.details.len() as u32;
        keys.push(StateKey::Guest);
        self.details.push(Detail {
            key: StateKey::Guest,
            label,
        });
        let origin = self.origin;
        let raw = spans
            .into_iter()
            .map(|s| (s.start - origin, s.end - origin, id))
            .collect();
        let (track, repaired) = Track::build(raw, keys);
        self.repaired += repaired;
        self.tracks.push(track);
        self.tracks.len() - 1
    }

    fn keys(&self) -> Vec<StateKey> {
        self.details.iter().map(|d| d.key).collect()
    }

    /// The segments of rows `[first_row, first_row + count)` for `[start, end)` (relative)
    /// at `width` pixels. Arguments are clamped to their bounds.
    pub fn viewport(
        &self,
        start: i64,
        end: i64,
        width: u32,
        first_row: usize,
        count: usize,
    ) -> Viewport {
        let width = width.clamp(1, MAX_WIDTH);
        let end = end.max(start + 1);
        let ns_per_px = (end - start) as f64 / width as f64;
        let keys = self.keys();
        let first_row = first_row.min(self.rows.len());
        let last_row = (first_row + count.min(MAX_ROWS)).min(self.rows.len());
        let rows = &self.rows[first_row..last_row];
        // Each vCPU's segments once, even when its VM's row needs them too.
        let mut needed: Vec<usize> = rows
            .iter()
            .flat_map(|row| match &row.kind {
                RowKind::Vcpu { track, .. }
                | RowKind::Process { track, .. }
                | RowKind::Nested { track, .. } => std::slice::from_ref(track),
                RowKind::Vm { tracks, .. } => tracks.as_slice(),
            })
            .copied()
            .collect();
        needed.sort_unstable();
        needed.dedup();
        let computed = self.segments_of(&needed, start, end, ns_per_px, &keys);
        let of = |track: usize| &computed[needed.binary_search(&track).expect("computed")];
        let rows = rows
            .iter()
            .map(|row| match &row.kind {
                RowKind::Vcpu { track, .. }
                | RowKind::Process { track, .. }
                | RowKind::Nested { track, .. } => of(*track).clone(),
                RowKind::Vm { tracks, .. } => {
                    let parts: Vec<&Vec<Segment>> = tracks.iter().map(|&t| of(t)).collect();
                    vm_segments(&parts, start, end, width)
                }
            })
            .collect();
        Viewport {
            start,
            end,
            width,
            first_row,
            rows,
        }
    }

    /// The segments of `tracks`, computed on up to four threads (tracks are independent).
    fn segments_of(
        &self,
        tracks: &[usize],
        start: i64,
        end: i64,
        ns_per_px: f64,
        keys: &[StateKey],
    ) -> Vec<Vec<Segment>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let chunk = tracks.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = tracks
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|&t| self.tracks[t].segments(start, end, ns_per_px, keys))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a segment worker panicked"))
                .collect()
        })
    }

    /// Time per state within `[start, end)` (relative) for every row; a VM row sums its vCPUs.
    pub fn selection(&self, start: i64, end: i64) -> Vec<StateNs> {
        let keys = self.keys();
        let per_track: Vec<StateNs> = self
            .tracks
            .iter()
            .map(|t| t.time_in(start, end.max(start), &keys))
            .collect();
        self.rows
            .iter()
            .map(|row| match &row.kind {
                RowKind::Vcpu { track, .. }
                | RowKind::Process { track, .. }
                | RowKind::Nested { track, .. } => per_track[*track],
                RowKind::Vm { tracks, .. } => {
                    let mut sum = [0u64; STATE_KEYS];
                    for &t in tracks {
                        for s in 0..STATE_KEYS {
                            sum[s] += per_track[t][s];
                        }
                    }
                    sum
                }
            })
            .collect()
    }

    /// Number of intervals indexed.
    pub fn interval_count(&self) -> usize {
        self.tracks.iter().map(Track::len).sum()
    }
}

/// A VM row: for every pixel, the state that its vCPUs' segments cover longest. Built from
/// the vCPU rows' segments (a merged bucket counts as its dominant state), so it costs
/// O(segments + width) per vCPU rather than another pass over the intervals.
fn vm_segments(parts: &[&Vec<Segment>], start: i64, end: i64, width: u32) -> Vec<Segment> {
    let w = width as usize;
    let span = (end - start).max(1) as i128;
    let bound = |p: usize| start + (span * p as i128 / w as i128) as i64;
    let pixel = |t: i64| (((t - start) as i128 * w as i128 / span) as usize).min(w - 1);
    let mut weight = vec![[0u64; STATE_KEYS]; w];
    for seg in parts.iter().flat_map(|segs| segs.iter()) {
        let (a, b) = (seg.0.max(start), seg.1.min(end));
        if b <= a {
            continue;
        }
        for (p, cell) in weight
            .iter_mut()
            .enumerate()
            .take(pixel(b - 1) + 1)
            .skip(pixel(a))
        {
            let overlap = b.min(bound(p + 1)) - a.max(bound(p));
            if overlap > 0 {
                cell[seg.2 as usize] += overlap as u64;
            }
        }
    }
    let mut out: Vec<Segment> = Vec::new();
    for (p, cell) in weight.iter().enumerate() {
        if cell.iter().all(|&v| v == 0) {
            continue;
        }
        let (a, b) = (bound(p), bound(p + 1));
        let key = dominant(cell) as u8;
        match out.last_mut() {
            Some(last) if last.2 == key && last.1 == a => last.1 = b,
            _ => out.push(Segment(a, b, key, -1, 0)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeping_prefix_equals_random_access_prefix() {
        let mut model = crate::synthetic::model(1, 1, 3_000, 17);
        let index = TimelineIndex::take_from(&mut model);
        let keys = index.keys();
        let track = &index.tracks[0];
        let mut sweep = Prefix::new(track, &keys);
        // Steps from sub-interval to many blocks, and repeats of the same time.
        let mut t = index.start - 10;
        let mut step = 1;
        while t < index.end + 10 {
            assert_eq!(sweep.at(t), track.before(t, &keys), "at {t}");
            assert_eq!(sweep.at(t), track.before(t, &keys), "again at {t}");
            t += step;
            step = (step * 7 + 13) % 3_000_000;
        }
    }

    #[test]
    fn gallop_finds_the_partition_point() {
        let v: Vec<i64> = (0..1000).map(|x| x * 3).collect();
        for from in [0, 1, 10, 500, 999, 1000] {
            for t in [-1, 0, 1, 29, 30, 1500, 2997, 2998, 5000] {
                let want = v.partition_point(|&x| x < t).max(from);
                assert_eq!(gallop(&v, from, |x| x < t), want, "from {from} t {t}");
            }
        }
    }
}

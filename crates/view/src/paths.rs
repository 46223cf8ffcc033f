//! The web timeline's critical path: one thread's path over a window, shaped for drawing
//! across the timeline's rows — its pieces merged to the pixel like the rows themselves, the
//! threads it crosses (with their own states, for the rows the viewer adds under their VM or
//! under the host), the arrows of the wake-ups and messages it follows, and its explanation.
//!
//! Times sent are relative to the timeline's origin, as everywhere in the viewer's API.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use virtflow_graph::{CriticalPath, LinkKind, State, WorkerId};
use virtflow_model::{ExecutionGraph, Model};

use crate::explain::{explain, Explanation};
use crate::threads::{Thread, Who};
use crate::timeline::MAX_WIDTH;

/// Most threads other than vCPUs given a row of their own (the longest on the path); the
/// others' time is in the explanation.
pub const MAX_THREAD_ROWS: usize = 48;

/// Lines of the explanation.
const EXPLANATION_LINES: usize = 8;

/// One piece drawn: `[start, end, thread, state, by, merged]` — `thread` indexes
/// [`PathView::threads`] (-1: a message in flight), `state` indexes [`virtflow_graph::State::ALL`],
/// `by` the thread holding the CPU of a preempted piece (-1: none), `merged` 1 when the piece
/// stands for several narrower than a pixel (its thread and state the dominant ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Piece(pub i64, pub i64, pub i32, pub u8, pub i32, pub u8);

/// An arrow between two rows: `[from thread, time, to thread, time, kind]`, kind `wakeup`,
/// `fork`, `message` (a link of the graph the path follows) or `waits_for` (the path moves from
/// a blocked thread to the path of whoever ended its wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Arrow(pub i32, pub i64, pub i32, pub i64, pub &'static str);

/// A thread the path names.
#[derive(Clone, Debug, Serialize)]
pub struct PathThread {
    #[serde(flatten)]
    pub thread: Thread,
    /// Time the path spent on it.
    pub ns: i64,
    /// Whether the viewer draws a row for it (vCPUs have theirs already).
    pub row: bool,
    /// Its own states over the window, merged to the pixel: `[start, end, state]` (threads
    /// with a row of their own that is not a vCPU's).
    pub segments: Vec<(i64, i64, u8)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PathView {
    pub host: String,
    pub tid: u32,
    pub label: String,
    pub start: i64,
    pub end: i64,
    pub width: u32,
    /// The graph states, in the order of a piece's `state`: name, colour, meaning.
    pub states: Vec<(&'static str, &'static str, &'static str)>,
    pub threads: Vec<PathThread>,
    pub pieces: Vec<Piece>,
    /// Pieces of the exact path, before merging to the pixel.
    pub exact_pieces: usize,
    pub arrows: Vec<Arrow>,
    pub explanation: Explanation,
}

/// Why a path cannot be given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The model holds no execution graph (a `--model` file saved without one).
    NoGraph,
    /// No such thread in the graph.
    NoThread(String),
    /// Several hosts and none named.
    WhichHost(Vec<String>),
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathError::NoGraph => f.write_str(
                "this model has no execution graph: view the traces themselves (the viewer \
                 builds it) rather than a saved model",
            ),
            PathError::NoThread(what) => write!(f, "no thread {what} in the execution graph"),
            PathError::WhichHost(hosts) => {
                write!(
                    f,
                    "several hosts: say which with host= ({})",
                    hosts.join(", ")
                )
            }
        }
    }
}

/// The index of `state` in [`State::ALL`].
fn state_index(state: State) -> u8 {
    State::ALL.iter().position(|s| *s == state).unwrap_or(0) as u8
}

/// Items `[start, end, key]` in time order, not overlapping, cut to `[s, e)` and merged to
/// the pixel: an item at least a pixel wide is kept (joined to the one before when it has the
/// same key and touches it); narrower ones become pixel-wide buckets of their dominant key.
/// At most about `2 × (e − s) / ns_per_px` items come out.
pub fn pixel_merge<K: Copy + PartialEq>(
    items: &[(i64, i64, K)],
    s: i64,
    e: i64,
    ns_per_px: f64,
) -> Vec<(i64, i64, K, bool)> {
    let px = (ns_per_px.ceil() as i64).max(1);
    let mut out: Vec<(i64, i64, K, bool)> = Vec::new();
    let mut push = |a: i64, b: i64, k: K, merged: bool| match out.last_mut() {
        Some(last) if last.2 == k && last.1 == a && last.3 == merged => last.1 = b,
        _ => out.push((a, b, k, merged)),
    };
    let mut i = items.partition_point(|it| it.1 <= s);
    let mut t = s;
    while i < items.len() && items[i].0 < e {
        let a = items[i].0.max(t);
        let b = items[i].1.min(e);
        if b <= a {
            i += 1;
            continue;
        }
        if (b - a) as f64 >= ns_per_px {
            push(a, b, items[i].2, false);
            t = b;
            i += 1;
            continue;
        }
        let bucket_end = (a + px).min(e);
        let mut weights: Vec<(K, i64)> = Vec::new();
        let mut j = i;
        while j < items.len() && items[j].0 < bucket_end {
            let overlap = items[j].1.min(bucket_end) - items[j].0.max(a);
            if overlap > 0 {
                match weights.iter_mut().find(|w| w.0 == items[j].2) {
                    Some(w) => w.1 += overlap,
                    None => weights.push((items[j].2, overlap)),
                }
            }
            j += 1;
        }
        // The first of the heaviest, so that ties go to what came first.
        let mut best = weights[0];
        for w in &weights[1..] {
            if w.1 > best.1 {
                best = *w;
            }
        }
        push(a, bucket_end, best.0, true);
        t = bucket_end;
        i = if j > i && items[j - 1].1 > bucket_end {
            j - 1
        } else {
            j
        };
    }
    out
}

/// The critical path of thread `tid` of `host` (the only host when `None`) over `[start,
/// end)` (absolute ns), for a viewport `width` pixels wide, with times relative to `origin`.
pub fn critical_path(
    model: &Model,
    host: Option<&str>,
    tid: u32,
    (start, end): (i64, i64),
    width: u32,
    origin: i64,
) -> Result<PathView, PathError> {
    let eg = model.graph.as_ref().ok_or(PathError::NoGraph)?;
    let host = match host {
        Some(h) => h.to_string(),
        None if model.hosts.len() <= 1 => model
            .hosts
            .first()
            .map(|h| h.name.clone())
            .or_else(|| eg.workers.first().map(|w| w.host.clone()))
            .unwrap_or_default(),
        None => {
            return Err(PathError::WhichHost(
                model.hosts.iter().map(|h| h.name.clone()).collect(),
            ))
        }
    };
    let worker = eg
        .worker(&host, tid)
        .ok_or_else(|| PathError::NoThread(format!("{tid} on host {host}")))?;
    let path = CriticalPath::within(&eg.graph, worker, start, end.max(start))
        .map_err(|e| PathError::NoThread(e.to_string()))?;
    let who = Who::new(model);
    let width = width.clamp(1, MAX_WIDTH);
    let ns_per_px = (end - start).max(1) as f64 / width as f64;

    // The threads: on the path, longest first, then those that held a CPU it waited for.
    let mut threads: Vec<PathThread> = Vec::new();
    let mut index: HashMap<WorkerId, i32> = HashMap::new();
    let mut add = |w: WorkerId, ns: i64, threads: &mut Vec<PathThread>| -> i32 {
        *index.entry(w).or_insert_with(|| {
            threads.push(PathThread {
                thread: who.worker(eg, w),
                ns,
                row: false,
                segments: Vec::new(),
            });
            threads.len() as i32 - 1
        })
    };
    for t in path.time_by_worker() {
        if let Some(w) = t.worker {
            add(w, t.time, &mut threads);
        }
    }
    let on_path = threads.len();
    for s in &path.segments {
        if let Some(b) = s.by {
            add(b, 0, &mut threads);
        }
    }
    let workers: HashMap<i32, WorkerId> = index.iter().map(|(w, i)| (*i, *w)).collect();
    let mut helper_rows = 0;
    for (i, t) in threads.iter_mut().enumerate().take(on_path) {
        if t.thread.vcpu.is_some() {
            t.row = true;
        } else if helper_rows < MAX_THREAD_ROWS {
            helper_rows += 1;
            t.row = true;
            let w = workers[&(i as i32)];
            let own: Vec<(i64, i64, u8)> = eg
                .graph
                .segments_within(w, start, end)
                .iter()
                .map(|s| (s.start(), s.end(), state_index(s.state())))
                .collect();
            t.segments = pixel_merge(&own, start, end, ns_per_px)
                .into_iter()
                .map(|(a, b, k, _)| (a - origin, b - origin, k))
                .collect();
        }
    }

    let thread_of = |w: Option<WorkerId>| w.map_or(-1, |w| index[&w]);
    let exact: Vec<(i64, i64, (i32, u8, i32))> = path
        .segments
        .iter()
        .map(|s| {
            (
                s.start,
                s.end,
                (thread_of(s.worker), state_index(s.state), thread_of(s.by)),
            )
        })
        .collect();
    let pieces = pixel_merge(&exact, start, end, ns_per_px)
        .into_iter()
        .map(|(a, b, (t, st, by), merged)| Piece(a - origin, b - origin, t, st, by, merged as u8))
        .collect();
    let arrows = arrows(&path, eg, &thread_of, ns_per_px, start, width)
        .into_iter()
        .map(|a| Arrow(a.0, a.1 - origin, a.2, a.3 - origin, a.4))
        .collect();
    let subject = who.worker(eg, worker);
    Ok(PathView {
        host,
        tid,
        label: subject.label,
        start: start - origin,
        end: end - origin,
        width,
        states: State::ALL
            .iter()
            .map(|s| {
                (
                    s.name(),
                    crate::threads::color(*s),
                    crate::threads::meaning(*s),
                )
            })
            .collect(),
        threads,
        pieces,
        exact_pieces: path.segments.len(),
        arrows,
        explanation: explain(&path, eg, &who, EXPLANATION_LINES),
    })
}

/// Where the path moves from one thread to another: along a link of the graph arriving there
/// (a wake-up, a fork, a message — across a piece in flight), or from a blocked thread to the
/// path of whoever ended its wait. At most one arrow of a pair of threads per pixel, and four
/// per pixel of the width in all.
fn arrows(
    path: &CriticalPath,
    eg: &ExecutionGraph,
    thread_of: &dyn Fn(Option<WorkerId>) -> i32,
    ns_per_px: f64,
    start: i64,
    width: u32,
) -> Vec<Arrow> {
    let segs = &path.segments;
    let mut out = Vec::new();
    let mut seen: HashSet<(i64, i32, i32)> = HashSet::new();
    let link_kind = |from: WorkerId, to: WorkerId, at: i64| {
        eg.graph
            .links_into_at(to, at)
            .find(|l| l.source.worker == from)
            .map(|l| match l.kind {
                LinkKind::Wakeup => "wakeup",
                LinkKind::Fork => "fork",
                LinkKind::Message => "message",
            })
    };
    for i in 1..segs.len() {
        let (prev, cur) = (&segs[i - 1], &segs[i]);
        let arrow = match (prev.worker, cur.worker) {
            (Some(a), Some(b)) if a != b => {
                let kind = link_kind(a, b, cur.start).unwrap_or("waits_for");
                Some((a, cur.start, b, cur.start, kind))
            }
            // Into a message in flight: the arrow goes to whoever is after it.
            (Some(a), None) => segs[i..]
                .iter()
                .find(|s| s.worker.is_some())
                .and_then(|next| {
                    next.worker
                        .map(|b| (a, cur.start, b, next.start, "message"))
                }),
            _ => None,
        };
        let Some((a, ta, b, tb, kind)) = arrow else {
            continue;
        };
        let px = ((tb - start) as f64 / ns_per_px).floor() as i64;
        let (fa, fb) = (thread_of(Some(a)), thread_of(Some(b)));
        if seen.insert((px, fa, fb)) {
            out.push(Arrow(fa, ta, fb, tb, kind));
        }
        if out.len() >= 4 * width as usize {
            break;
        }
    }
    out
}

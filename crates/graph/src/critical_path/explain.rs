//! Explaining one blocked interval: the backward walk from the link that ended it.
//!
//! The walk is Trace Compass's bounded resolution (`OSCriticalPathAlgorithm`, after
//! Giraldeau and Dagenais), restated on chains of segments:
//!
//! 1. The *junction* is the link arriving at the blocked worker exactly when the interval
//!    ends. Without one, the interval stays unexplained.
//! 2. From the link's source, walk back in time over the source's own chain, never before the
//!    window start (the blocked interval's start, or the enclosing window's if later).
//!    - If a link arrives where the walk stands and its source is at or before the window
//!      start, take it and stop: it explains the rest of the window (the *shortcut*).
//!    - Otherwise prefer the worker's own past: a passing segment is kept; a blocking one is
//!      explained in turn, over its part of the window (a nested walk); one that cannot be
//!      explained is kept as it is.
//!    - A link arriving where the walk stands is remembered as an *alternative*; when the
//!      chain ends (the worker's start, or a hole) the walk goes back to the latest
//!      alternative, drops what it collected since, and follows that link instead.
//!
//! Nested walks run on an explicit stack of frames, not on the call stack: a chain of
//! wake-ups within wake-ups can be as deep as the trace is long.
//!
//! Where this differs from Trace Compass on purpose:
//! - Junction: Trace Compass looks for the link at the interval's end vertex and then, in
//!   intent, at vertices joined to it by zero-length edges; its loop re-examines the first
//!   vertex instead of advancing and never ends when that vertex has no link and is followed
//!   by a zero-length edge. Here a point is (worker, time) and a chain holds no zero-length
//!   segment, so "the links arriving at that worker at that time" is exactly the intended set,
//!   found by one search: there is nothing to loop over.
//! - Going back to an alternative cuts the collected steps back to their number when the walk
//!   stood there. Trace Compass instead drops steps until the last one starts at the
//!   alternative; when the walk reached the alternative through a nested explanation, no step
//!   starts there and the whole list goes, the junction included (its comparison of vertex
//!   objects by identity makes this more likely still).
//! - An unexplained nested *blocked* segment is kept as blocked with its worker; Trace
//!   Compass keeps only an unexplained network segment and lets a blocked one become an
//!   unnamed connector.
//! - Guards Trace Compass lacks, for graphs with cycles at a single instant (two workers
//!   waking each other at the same time, or each blocked until the other's wake-up): an
//!   alternative is taken at most once per walk, and a blocked interval is not explained
//!   again inside its own explanation (it is then kept as it is). On a graph without such
//!   cycles neither guard changes anything.
//! - A link's endpoints need not be segment boundaries: the walk continues on the segment the
//!   worker was in just before the link's source, cut at that instant (Trace Compass's builder
//!   splits the waker's segment there instead).

use std::collections::HashSet;

use crate::{Endpoint, Graph, Link, State, WorkerId};

/// One piece of an explanation, as found walking back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Part of a worker's chain, cut where the walk entered it.
    Span {
        worker: WorkerId,
        start: i64,
        end: i64,
        state: State,
        by: Option<WorkerId>,
    },
    /// A link, followed from its target back to its source.
    Link(Link),
}

impl Step {
    /// Where the step starts in time (and on which worker).
    pub(super) fn from(&self) -> Endpoint {
        match self {
            Step::Span { worker, start, .. } => Endpoint::new(*worker, *start),
            Step::Link(link) => link.source,
        }
    }

    /// Where the step ends.
    pub(super) fn to(&self) -> Endpoint {
        match self {
            Step::Span { worker, end, .. } => Endpoint::new(*worker, *end),
            Step::Link(link) => link.target,
        }
    }
}

/// An interval during which a worker was blocked, to be explained.
#[derive(Clone, Copy, Debug)]
pub(super) struct Blocked {
    pub(super) worker: WorkerId,
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) state: State,
    pub(super) by: Option<WorkerId>,
}

impl Blocked {
    fn as_step(&self) -> Step {
        Step::Span {
            worker: self.worker,
            start: self.start,
            end: self.end,
            state: self.state,
            by: self.by,
        }
    }
}

/// One walk in progress: the blocked interval it explains and where it stands.
struct Frame {
    blocked: Blocked,
    /// The walk does not go back past this instant.
    window_start: i64,
    /// Where the walk stands; `None` once it is over.
    at: Option<Endpoint>,
    /// This frame's alternatives are `alternatives[alternatives_base..]`.
    alternatives_base: usize,
    /// Tells this frame's taken alternatives apart from other frames'.
    serial: u64,
}

/// A point where a link arrived, to come back to if the walk runs out of chain.
struct Alternative {
    at: Endpoint,
    /// How many steps had been collected when the walk stood there.
    steps_len: usize,
}

/// Where the last searches in a worker's chain ended; the next ones start from there.
#[derive(Clone, Copy, Default)]
struct SearchHint {
    segment: usize,
    link: usize,
}

/// The walk's state, kept between blocked intervals so that a whole-trace query reuses its
/// vectors instead of allocating per interval.
pub(super) struct Explainer<'g> {
    graph: &'g Graph,
    /// Collected steps, latest first (the order of the walk); nested walks append to it.
    steps: Vec<Step>,
    frames: Vec<Frame>,
    alternatives: Vec<Alternative>,
    /// (frame serial, worker, time) of every alternative remembered: one never remembered
    /// twice by the same walk.
    remembered: HashSet<(u64, u32, i64)>,
    next_serial: u64,
    /// One per worker. A walk moves along chains a segment at a time and a whole-trace query
    /// visits neighbouring instants over and over: starting each search from the previous
    /// one's result makes most of them a probe or two instead of a bisection of the chain.
    hints: Vec<SearchHint>,
}

impl<'g> Explainer<'g> {
    pub(super) fn new(graph: &'g Graph) -> Explainer<'g> {
        Explainer {
            graph,
            steps: Vec::new(),
            frames: Vec::new(),
            alternatives: Vec::new(),
            remembered: HashSet::new(),
            next_serial: 0,
            hints: vec![SearchHint::default(); graph.worker_count()],
        }
    }

    /// The explanation of `blocked` from `window_start` on, latest step first; `None` if no
    /// link arrives at its end.
    pub(super) fn explain(&mut self, blocked: Blocked, window_start: i64) -> Option<&[Step]> {
        self.steps.clear();
        self.frames.clear();
        self.alternatives.clear();
        // Clearing a set costs its capacity even when empty, and most walks remember nothing.
        if !self.remembered.is_empty() {
            self.remembered.clear();
        }
        if !self.open(blocked, window_start) {
            return None;
        }
        while !self.frames.is_empty() {
            self.advance();
        }
        Some(&self.steps)
    }

    /// Starts explaining `blocked` within a window starting at `window_start`, from the link
    /// arriving at its end. False if there is no such link, or if `blocked` is already being
    /// explained further down the stack (a cycle at one instant).
    fn open(&mut self, blocked: Blocked, window_start: i64) -> bool {
        // Nested frames never end later than their parent, so a frame for the same interval
        // can only be among the topmost ones ending at the same instant.
        let already_open = self
            .frames
            .iter()
            .rev()
            .take_while(|f| f.blocked.end == blocked.end)
            .any(|f| f.blocked.worker == blocked.worker);
        if already_open {
            return false;
        }
        let Some(junction) = self.last_link_at(Endpoint::new(blocked.worker, blocked.end)) else {
            return false;
        };
        self.steps.push(Step::Link(junction));
        self.frames.push(Frame {
            blocked,
            window_start: window_start.max(blocked.start),
            at: Some(junction.source),
            alternatives_base: self.alternatives.len(),
            serial: self.next_serial,
        });
        self.next_serial += 1;
        true
    }

    /// One step of the topmost walk.
    fn advance(&mut self) {
        let frame = self.frames.last().expect("a walk in progress");
        let window_start = frame.window_start;
        let Some(at) = frame.at.filter(|at| at.time > window_start) else {
            self.close();
            return;
        };
        let arriving = self.last_link_at(at);
        if let Some(link) = arriving.filter(|l| l.source.time <= window_start) {
            self.steps.push(Step::Link(link));
            self.set_at(None);
            return;
        }
        let chain = self.graph.chain(at.worker);
        let hint = &mut self.hints[at.worker.index()].segment;
        let before = chain
            .index_reaching_near(at.time, hint)
            .map(|i| chain.segments()[i]);
        let before_is_blocking = before.is_some_and(|s| s.state().is_blocking());
        // A blocking segment ending here is explained through this very link by the nested
        // walk, so the link is not also kept as an alternative.
        if arriving.is_some() && !before_is_blocking {
            self.remember(at);
        }
        let Some(segment) = before else {
            self.backtrack();
            return;
        };
        self.set_at(Some(Endpoint::new(at.worker, segment.start())));
        let piece = Blocked {
            worker: at.worker,
            start: segment.start(),
            end: at.time,
            state: segment.state(),
            by: segment.by_worker(),
        };
        if !(before_is_blocking && self.open(piece, window_start)) {
            self.steps.push(piece.as_step());
        }
    }

    /// The chain ran out: resume from the latest alternative of this walk, or end it.
    fn backtrack(&mut self) {
        let frame = self.frames.last().expect("a walk in progress");
        if self.alternatives.len() <= frame.alternatives_base {
            self.set_at(None);
            return;
        }
        let alternative = self.alternatives.pop().expect("checked non-empty");
        self.steps.truncate(alternative.steps_len);
        let link = self
            .last_link_at(alternative.at)
            .expect("an alternative is a point where a link arrives");
        self.steps.push(Step::Link(link));
        self.set_at(Some(link.source));
    }

    fn remember(&mut self, at: Endpoint) {
        let frame = self.frames.last().expect("a walk in progress");
        if self.remembered.insert((frame.serial, at.worker.0, at.time)) {
            self.alternatives.push(Alternative {
                at,
                steps_len: self.steps.len(),
            });
        }
    }

    fn close(&mut self) {
        let frame = self.frames.pop().expect("a walk in progress");
        self.alternatives.truncate(frame.alternatives_base);
    }

    fn set_at(&mut self, at: Option<Endpoint>) {
        self.frames.last_mut().expect("a walk in progress").at = at;
    }

    /// The link arriving at `point`; of several, the last added (Trace Compass keeps one
    /// incoming link per vertex, the last one set).
    fn last_link_at(&mut self, point: Endpoint) -> Option<Link> {
        let hint = &mut self.hints[point.worker.index()].link;
        self.graph
            .chain(point.worker)
            .links_arriving_at_near(point.time, hint)
            .last()
            .map(|l| l.to_link(point.worker))
    }
}

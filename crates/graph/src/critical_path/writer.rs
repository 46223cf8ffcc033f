//! Writing the path: contiguous pieces from the window's start to its end, and the splicing
//! of an explanation in place of a blocked interval.

use super::explain::Step;
use super::PathSegment;
use crate::{State, WorkerId};

/// The path being written. Every piece starts where the previous one ended (`now`) and is cut
/// at the window's end, so the path is contiguous by construction whatever the explanations
/// hold: a step ending before `now` adds nothing.
pub(super) struct PathWriter {
    segments: Vec<PathSegment>,
    now: i64,
    end: i64,
}

impl PathWriter {
    pub(super) fn new(start: i64, end: i64) -> PathWriter {
        PathWriter {
            segments: Vec::new(),
            now: start,
            end,
        }
    }

    /// Where the path has got to.
    pub(super) fn now(&self) -> i64 {
        self.now
    }

    /// Extends the path up to `until` (cut at the window's end) with one piece.
    pub(super) fn extend_to(
        &mut self,
        worker: Option<WorkerId>,
        state: State,
        by: Option<WorkerId>,
        until: i64,
    ) {
        let end = until.min(self.end);
        if end > self.now {
            self.segments.push(PathSegment {
                worker,
                state,
                start: self.now,
                end,
                by,
            });
            self.now = end;
        }
    }

    /// Writes an explanation (`steps`, latest first, as the walk found them) in place of the
    /// blocked interval of `blocked_worker` that starts at `now`.
    ///
    /// Each step is copied from where the path stands, so a step that began earlier is cut
    /// (a waker running since before the interval counts from the interval's start). Between
    /// two steps that do not meet (a later one starting after the earlier one ended, on the
    /// same or another worker), the time in between is unknown, on the worker the path
    /// continues on. A link spanning time is that time on its target's worker if it stays on
    /// one worker (a wake-up by one's own timer), else in flight on no worker (a message
    /// between hosts), in the link's cause.
    ///
    /// Trace Compass glues an explanation the same way, with two differences that change no
    /// path of its tests: the unexplained time before the explanation's first step is unknown
    /// on that step's worker whether or not it is the blocked worker, and a gap between two
    /// later steps is also given to a worker; Trace Compass gives the first to the waker
    /// only when it is another worker and draws the second as an arrow with no worker.
    pub(super) fn splice(&mut self, blocked_worker: WorkerId, steps: &[Step]) {
        let mut previous_to = crate::Endpoint::new(blocked_worker, self.now);
        for step in steps.iter().rev() {
            let from = step.from();
            if from != previous_to {
                let joined_at = previous_to.time.max(from.time);
                self.extend_to(Some(from.worker), State::Unknown, None, joined_at);
            }
            match *step {
                Step::Span {
                    worker,
                    end,
                    state,
                    by,
                    ..
                } => self.extend_to(Some(worker), state, by, end),
                Step::Link(link) => {
                    let worker =
                        (link.source.worker == link.target.worker).then_some(link.target.worker);
                    self.extend_to(worker, link.cause, None, link.target.time);
                }
            }
            previous_to = step.to();
        }
    }

    pub(super) fn finish(self) -> Vec<PathSegment> {
        self.segments
    }
}

//! One interval of a worker's chain: when, in which state, and because of whom.

use serde::{Deserialize, Serialize};

use crate::{State, WorkerId};

/// A worker's state over `[start, end)`, in nanoseconds, with the worker responsible when
/// one is known (`by`: the thread holding the CPU of a preempted worker, the interrupt thread
/// that received a packet…).
///
/// 24 bytes: the chains of a long trace hold millions of these, so the optional worker is
/// stored as a `u32` with a reserved value rather than as an `Option` (which would take 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SegmentFields", into = "SegmentFields")]
pub struct Segment {
    start: i64,
    end: i64,
    by: u32,
    state: State,
}

const _: () = assert!(std::mem::size_of::<Segment>() == 24);

impl Segment {
    /// A segment with no responsible worker. `end` may not be before `start` (the graph
    /// refuses such a segment when it is appended).
    pub fn new(start: i64, end: i64, state: State) -> Segment {
        Segment {
            start,
            end,
            by: WorkerId::NONE_RAW,
            state,
        }
    }

    /// The same segment with its responsible worker, if any, moved by `offset`.
    /// The same segment with its times mapped by `f`.
    pub(crate) fn retimed(self, f: &impl Fn(i64) -> i64) -> Segment {
        Segment {
            start: f(self.start),
            end: f(self.end),
            ..self
        }
    }

    pub(crate) fn shifted(self, offset: u32) -> Segment {
        if self.by == WorkerId::NONE_RAW {
            self
        } else {
            Segment {
                by: self.by + offset,
                ..self
            }
        }
    }

    /// The same segment, naming the worker responsible for it.
    pub fn by(self, worker: WorkerId) -> Segment {
        Segment {
            by: worker.0,
            ..self
        }
    }

    pub fn start(&self) -> i64 {
        self.start
    }

    pub fn end(&self) -> i64 {
        self.end
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The worker responsible, if known.
    pub fn by_worker(&self) -> Option<WorkerId> {
        WorkerId::from_raw(self.by)
    }

    pub fn duration(&self) -> i64 {
        self.end - self.start
    }

    /// Whether `time` is inside `[start, end)`.
    pub fn covers(&self, time: i64) -> bool {
        self.start <= time && time < self.end
    }
}

/// The serialised form: the responsible worker as an optional field, not the reserved value.
#[derive(Serialize, Deserialize)]
struct SegmentFields {
    start: i64,
    end: i64,
    state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<WorkerId>,
}

impl From<SegmentFields> for Segment {
    fn from(fields: SegmentFields) -> Segment {
        Segment {
            start: fields.start,
            end: fields.end,
            by: WorkerId::to_raw(fields.by),
            state: fields.state,
        }
    }
}

impl From<Segment> for SegmentFields {
    fn from(segment: Segment) -> SegmentFields {
        SegmentFields {
            start: segment.start,
            end: segment.end,
            state: segment.state,
            by: segment.by_worker(),
        }
    }
}

//! A causal link between two workers: a wake-up, a fork, a message.

use serde::{Deserialize, Serialize};

use crate::{State, WorkerId};

/// A point of a worker's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub worker: WorkerId,
    pub time: i64,
}

impl Endpoint {
    pub fn new(worker: WorkerId, time: i64) -> Endpoint {
        Endpoint { worker, time }
    }
}

/// What a link stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// The source made the target runnable (at the same instant, normally).
    Wakeup,
    /// The source created the target.
    Fork,
    /// The source sent something the target received: a network packet, possibly between
    /// hosts, in flight from the source's time to the target's.
    Message,
}

/// `source` caused `target` to proceed: the target's wait ends at `target.time` because of
/// what the source did at `source.time` (never later).
///
/// `cause` is what the target was waiting for as far as the link tells (a message: network;
/// a plain wake-up: unknown; a wake-up by a timer: timer…). A critical path crossing the link
/// gives that state to the time the link spans: a message in flight between hosts becomes a
/// network piece with no worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub source: Endpoint,
    pub target: Endpoint,
    pub kind: LinkKind,
    pub cause: State,
}

impl Link {
    /// A wake-up in task context: the cause is whatever the waker was doing, so unknown.
    pub fn wakeup(source: Endpoint, target: Endpoint) -> Link {
        Link {
            source,
            target,
            kind: LinkKind::Wakeup,
            cause: State::Unknown,
        }
    }

    pub fn fork(source: Endpoint, target: Endpoint) -> Link {
        Link {
            source,
            target,
            kind: LinkKind::Fork,
            cause: State::Unknown,
        }
    }

    /// A message sent at `source` and received (or its receiver woken) at `target`.
    pub fn message(source: Endpoint, target: Endpoint) -> Link {
        Link {
            source,
            target,
            kind: LinkKind::Message,
            cause: State::Network,
        }
    }

    /// The same link with another cause.
    pub fn with_cause(self, cause: State) -> Link {
        Link { cause, ..self }
    }

    /// The time between source and target: a message's time in flight; 0 for an ordinary
    /// wake-up.
    pub fn duration(&self) -> i64 {
        self.target.time - self.source.time
    }
}

/// A link as its target's chain stores it: the target worker is the chain's own, so only 24
/// bytes per link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IncomingLink {
    pub(crate) source_time: i64,
    pub(crate) target_time: i64,
    pub(crate) source_worker: WorkerId,
    pub(crate) kind: LinkKind,
    pub(crate) cause: State,
}

const _: () = assert!(std::mem::size_of::<IncomingLink>() == 24);

impl IncomingLink {
    pub(crate) fn from_link(link: &Link) -> IncomingLink {
        IncomingLink {
            source_time: link.source.time,
            target_time: link.target.time,
            source_worker: link.source.worker,
            kind: link.kind,
            cause: link.cause,
        }
    }

    pub(crate) fn to_link(self, target_worker: WorkerId) -> Link {
        Link {
            source: Endpoint::new(self.source_worker, self.source_time),
            target: Endpoint::new(target_worker, self.target_time),
            kind: self.kind,
            cause: self.cause,
        }
    }
}

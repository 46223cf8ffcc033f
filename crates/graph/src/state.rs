//! What a worker is doing during a segment, and time totals per state.

use serde::{Deserialize, Serialize};

/// The state of a worker during a segment of its chain, and of a piece of a critical path.
///
/// Two states are *blocking*: the critical path tries to explain them by the worker that
/// ended them (see [`State::is_blocking`]). The others are *passing*: the path keeps them as
/// they are, because the worker itself was the one making (or waiting for) progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum State {
    /// On a CPU.
    Running,
    /// Runnable but not on a CPU: switched out while runnable, or woken and waiting for one.
    Preempted,
    /// Waiting, cause not known from the wake-up context; a wake-up link may explain it.
    Blocked,
    /// Waiting, ended by a timer.
    Timer,
    /// Waiting, ended by a block device's completion.
    Disk,
    /// Waiting, ended by network reception; a message link may name the sender.
    Network,
    /// Waiting, ended by an inter-processor interrupt.
    Ipi,
    /// Waiting, ended by a device interrupt, or interrupted while running.
    Interrupt,
    /// Waiting for a user's input.
    UserInput,
    /// Nothing known: before a worker's first event, a gap, a wait nothing explains.
    Unknown,
}

impl State {
    /// Every state, in declaration order (the order of [`StateTotals`]' fields).
    pub const ALL: [State; 10] = [
        State::Running,
        State::Preempted,
        State::Blocked,
        State::Timer,
        State::Disk,
        State::Network,
        State::Ipi,
        State::Interrupt,
        State::UserInput,
        State::Unknown,
    ];

    /// The name used in JSON and in reports.
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Preempted => "preempted",
            State::Blocked => "blocked",
            State::Timer => "timer",
            State::Disk => "disk",
            State::Network => "network",
            State::Ipi => "ipi",
            State::Interrupt => "interrupt",
            State::UserInput => "user_input",
            State::Unknown => "unknown",
        }
    }

    /// Whether the critical path replaces this state by the path of whoever ended it.
    ///
    /// Only a plain block and a network wait: a timer, a disk or an interrupt ends a wait
    /// with no worker to follow, so the time stays the waiting worker's own (as in Trace
    /// Compass's OS critical path).
    pub fn is_blocking(self) -> bool {
        matches!(self, State::Blocked | State::Network)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Nanoseconds per [`State`], one named field each so that the JSON reads by itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTotals {
    pub running: i64,
    pub preempted: i64,
    pub blocked: i64,
    pub timer: i64,
    pub disk: i64,
    pub network: i64,
    pub ipi: i64,
    pub interrupt: i64,
    pub user_input: i64,
    pub unknown: i64,
}

impl StateTotals {
    /// The time in `state`.
    pub fn get(&self, state: State) -> i64 {
        *self.field(state)
    }

    /// Adds `duration` to `state`'s total.
    pub fn add(&mut self, state: State, duration: i64) {
        *self.field_mut(state) += duration;
    }

    /// The sum over every state.
    pub fn total(&self) -> i64 {
        State::ALL.iter().map(|&state| self.get(state)).sum()
    }

    fn field(&self, state: State) -> &i64 {
        match state {
            State::Running => &self.running,
            State::Preempted => &self.preempted,
            State::Blocked => &self.blocked,
            State::Timer => &self.timer,
            State::Disk => &self.disk,
            State::Network => &self.network,
            State::Ipi => &self.ipi,
            State::Interrupt => &self.interrupt,
            State::UserInput => &self.user_input,
            State::Unknown => &self.unknown,
        }
    }

    fn field_mut(&mut self, state: State) -> &mut i64 {
        match state {
            State::Running => &mut self.running,
            State::Preempted => &mut self.preempted,
            State::Blocked => &mut self.blocked,
            State::Timer => &mut self.timer,
            State::Disk => &mut self.disk,
            State::Network => &mut self.network,
            State::Ipi => &mut self.ipi,
            State::Interrupt => &mut self.interrupt,
            State::UserInput => &mut self.user_input,
            State::Unknown => &mut self.unknown,
        }
    }
}

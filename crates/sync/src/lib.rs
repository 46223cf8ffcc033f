//! Clock synchronisation of several hosts' traces, from messages matched between them: the
//! engine behind `virtflow sync`. It reads no trace; it is given matches (a send event and
//! its receive event, each a host id and a timestamp in ns) and returns, for every host, a
//! linear transform of its timestamps into one reference host's time base.
//!
//! Principal types, in the order the data flows:
//!
//! - [`Matcher`]: pairs the sends and receives of several hosts by key, in time order, with
//!   memory bounded by the messages in flight; each pair is a match for the engine.
//! - [`SyncEngine`]: takes the matches ([`SyncEngine::add_match`]), refusing those whose
//!   receive precedes their send on one host and ignoring the other same-host ones, and gives
//!   each pair of hosts that exchanged messages a [`PairHull`].
//! - [`PairHull`] (`hull.rs`): the fully incremental convex hull algorithm for one pair, as
//!   Trace Compass implements it: the pair's reference is the host whose id sorts first, every
//!   message a point (reference time, other time), the two directions two hulls, and two
//!   bounding lines whose mean is the formula `t_other = α·t_ref + β`, graded by a
//!   [`SyncQuality`] (absent, incomplete, approximate, accurate, fail), with an error bound in
//!   ns when accurate.
//! - [`ClockTransform`] (`transform.rs`): `t_ref = slope·t + offset` with decimal
//!   coefficients, its inverse and composition, applied to `i64` ns timestamps exactly to the
//!   nearest ns through a fixed-point form.
//! - The spanning tree (`tree.rs`): the pairs with a formula are the edges of a graph; from the
//!   reference host (the one asked for, else the first id among related hosts) the
//!   fewest-hops paths chain the pair transforms into one per host.
//! - [`SyncResult`] ([`SyncEngine::result`]): per host a [`HostSync`] (transform, quality,
//!   matches, bound, path through the tree), per pair a [`PairSync`], and the [`MatchCounts`];
//!   serialisable with serde (qualities in lower case, decimals as strings).
//! - [`Decimal`] (`decimal.rs`): the arithmetic all of this is computed in — 34-digit rounded
//!   products and quotients, exact sums — because that is what makes Trace Compass's published
//!   numbers come out digit for digit (`wide.rs` holds its 256-bit integers).
//!
//! Deliberate differences from Trace Compass, each explained where it is made: orientation
//! tests that do not wrap around 64 bits (`hull.rs`); transforms that round to the nearest ns
//! instead of truncating, that keep a fractional offset when the slope is exactly 1, and whose
//! composition never drops an operand (`transform.rs`); a ns error bound, which Trace Compass
//! does not compute ([`PairHull::band_half_width`]); hosts with matches but no path to the
//! reference reported as incomplete rather than absent ([`HostSync::quality`]).

#![forbid(unsafe_code)]

pub mod decimal;
mod engine;
pub mod hull;
mod matcher;
mod quality;
pub mod transform;
mod tree;
mod wide;

pub use decimal::Decimal;
pub use engine::{HostSync, MatchCounts, MatchOutcome, PairSync, SyncEngine, SyncResult};
pub use hull::{Direction, PairHull};
pub use matcher::{Matched, Matcher};
pub use quality::SyncQuality;
pub use transform::{ClockTransform, ReferenceClock, TransformError};

//! How well two clocks are related: the five states of the fully incremental convex hull.

use serde::{Deserialize, Serialize};

/// The quality of a clock relation, as the convex hull algorithm grades it (Trace Compass's
/// `SyncQuality`), written in lower case in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncQuality {
    /// No match between the two hosts yet.
    Absent,
    /// Matches, but not yet a bounding line anchored on both sides: typically traffic in one
    /// direction only. No formula.
    Incomplete,
    /// One bounding line anchored on both hulls; the other direction has too few points, so its
    /// slope is taken as 1. A formula, without a guaranteed bound.
    Approximate,
    /// Both bounding lines anchored and the steepest steeper than the flattest: the hulls are
    /// separated and the mean line lies between them.
    Accurate,
    /// The bounding lines crossed: the hulls intersect, which no pair of linear clocks with
    /// positive message delays can produce. Final; the last formula computed before it is kept.
    Fail,
}

impl SyncQuality {
    /// The lower-case name, as JSON and the terminal write it.
    pub fn name(self) -> &'static str {
        match self {
            SyncQuality::Absent => "absent",
            SyncQuality::Incomplete => "incomplete",
            SyncQuality::Approximate => "approximate",
            SyncQuality::Accurate => "accurate",
            SyncQuality::Fail => "fail",
        }
    }

    /// Whether the relation has a formula (a transform) at all.
    pub fn has_formula(self) -> bool {
        matches!(
            self,
            SyncQuality::Approximate | SyncQuality::Accurate | SyncQuality::Fail
        )
    }

    /// Rank from worst to best among qualities that have a formula, for the worst link of a
    /// chain of relations: a failed link makes the whole chain failed.
    pub(crate) fn formula_rank(self) -> u8 {
        match self {
            SyncQuality::Fail => 0,
            SyncQuality::Approximate => 1,
            SyncQuality::Accurate => 2,
            SyncQuality::Absent | SyncQuality::Incomplete => 0,
        }
    }
}

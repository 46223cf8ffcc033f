//! The fully incremental convex hull algorithm for one pair of hosts (Duda; Jabbarifar &
//! Dagenais, "Streaming Mode Incremental Clock Synchronization"; the incremental form Trace
//! Compass implements), written from its description.
//!
//! One host of the pair is the reference R, the other O. Every matched message is a point
//! `(x, y)`: `x` its timestamp on R, `y` its timestamp on O. If O's clock reads
//! `y = α·x + β` at R's time `x`, and messages take no negative time:
//!
//! - a message O → R was sent (y) before it was received (x): its point lies *below* the clock
//!   line. The algorithm keeps the upper convex hull of those points (`below`).
//! - a message R → O lies *above* the line; the algorithm keeps their lower hull (`above`).
//!
//! Every line between the two hulls is an admissible clock relation. Two bounding lines are
//! followed as points arrive: the steepest admissible one (anchored on a `below` point, through
//! the newest `above` point) and the flattest (anchored on an `above` point, through the newest
//! `below` point). The formula is their mean: `α = (α_steep + α_flat) / 2`,
//! `β = (β_steep + β_flat) / 2`.
//!
//! Quality (see [`SyncQuality`]) after each message that enters a hull:
//!
//! - neither line anchored: [`SyncQuality::Incomplete`] if one line has no point at all
//!   (traffic one way only so far), else unchanged;
//! - one line anchored: [`SyncQuality::Approximate`]; the unanchored line's slope counts as 1;
//! - both anchored: [`SyncQuality::Accurate`] while the steepest slope exceeds the flattest,
//!   else [`SyncQuality::Fail`] — the hulls intersect. Fail is final: the formula stays the last
//!   one computed before it, while the hulls and lines go on being updated.
//!
//! A message that does not enter its hull (it lies on the wrong side of its own bounding line)
//! still moves the anchors but never changes the formula or the quality. Only the hull points
//! are kept, so memory follows the hull sizes, not the number of messages.
//!
//! This follows Trace Compass step for step, including its peculiarities (a single point on the
//! opposite hull never anchors a line; an anchor search that runs off the end of the hull keeps
//! the previous anchor; an anchor to the right of the line's newest point is dropped; a vertical
//! line's slope counts as 1), because its published results depend on them. It differs on
//! purpose in one way: orientation tests and coordinate differences are computed exactly (in
//! 128 bits, or 256 when a product needs it), where Java's 64-bit `long` wraps silently once two
//! points are a few seconds apart on both axes (a cross product passes 2^63 ≈ (3.04 s)²), and
//! then gives the wrong turn.

use std::cmp::Ordering;

use crate::decimal::Decimal;
use crate::quality::SyncQuality;
use crate::transform::ClockTransform;
use crate::wide::U256;

/// Which way a message went between the pair's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the other host, received by the reference host: a point below the clock line.
    OtherToReference,
    /// Sent by the reference host, received by the other host: a point above the clock line.
    ReferenceToOther,
}

/// A message as a point. `id` tells apart two messages with the same timestamps: the lines
/// refer to particular hull points, and whether a line's anchor is still on its hull is a
/// question about that point, not about its coordinates.
#[derive(Clone, Copy, Debug)]
struct Point {
    /// Timestamp on the reference host.
    x: i64,
    /// Timestamp on the other host.
    y: i64,
    id: u64,
}

/// A bounding line: through `anchor`, a point of the opposite hull, and `newest`, the latest
/// point that entered its own hull.
#[derive(Clone, Copy, Debug, Default)]
struct BoundingLine {
    anchor: Option<Point>,
    newest: Option<Point>,
}

impl BoundingLine {
    /// Slope through both points; 1 when the line has no anchor or is vertical.
    fn slope(&self) -> Decimal {
        match (self.anchor, self.newest) {
            (Some(a), Some(n)) if n.x != a.x => {
                let dy = Decimal::from(n.y as i128 - a.y as i128);
                let dx = Decimal::from(n.x as i128 - a.x as i128);
                dy.div_rounded(dx).expect("dx is not zero")
            }
            _ => Decimal::ONE,
        }
    }

    /// Value at x = 0 of the line of `slope` through the newest point: `y − slope·x`, the
    /// product rounded to 34 digits, the difference exact.
    fn intercept(&self, slope: Decimal) -> Decimal {
        match self.newest {
            Some(n) => Decimal::from(n.y) - slope.mul_rounded(Decimal::from(n.x)),
            None => Decimal::ZERO, // no point, no line: never reached with an anchor
        }
    }
}

/// How `a·b` compares with `c·d`, exactly, for operands of up to 65 bits (differences of
/// `i64` timestamps).
fn compare_products(a: i128, b: i128, c: i128, d: i128) -> Ordering {
    if let (Some(left), Some(right)) = (a.checked_mul(b), c.checked_mul(d)) {
        return left.cmp(&right);
    }
    // Differences of timestamps of opposite signs can pass 2^63; their products need 256 bits.
    let signed = |u: i128, v: i128| {
        let magnitude = U256::product(u.unsigned_abs(), v.unsigned_abs());
        ((u < 0) != (v < 0) && !magnitude.is_zero(), magnitude)
    };
    match (signed(a, b), signed(c, d)) {
        ((false, l), (false, r)) => l.cmp(&r),
        ((true, l), (true, r)) => r.cmp(&l),
        ((left_negative, _), _) => {
            if left_negative {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
    }
}

/// Which way the path `p → a → b` turns: 1 counter-clockwise, −1 clockwise, 0 straight. The
/// sign of the cross product `(a − p) × (b − p)`, exactly.
fn turn(p: Point, a: Point, b: Point) -> i32 {
    let (ax, ay) = (a.x as i128 - p.x as i128, a.y as i128 - p.y as i128);
    let (bx, by) = (b.x as i128 - p.x as i128, b.y as i128 - p.y as i128);
    match compare_products(ax, by, ay, bx) {
        Ordering::Greater => 1,
        Ordering::Equal => 0,
        Ordering::Less => -1,
    }
}

/// Moves `line`'s anchor along `candidates`, the opposite hull, to the point through which the
/// line is tightest: from the current anchor (or the hull's start if it left the hull), step
/// forward while the next point turns the line the wrong way (`side`) and lies left of the
/// newest point. Trace Compass's peculiarities are kept: with fewer than two candidates the
/// anchor does not move; a search that runs off the end keeps the previous anchor (or takes the
/// last candidate tried if there was none); an anchor right of the newest point is dropped.
fn settle_anchor(line: &mut BoundingLine, candidates: &[Point], side: i32) {
    let Some(newest) = line.newest else { return };
    let start = line
        .anchor
        .and_then(|a| candidates.iter().position(|c| c.id == a.id));
    let mut i = start.unwrap_or(0);
    let mut last_tried = None;
    while i + 1 < candidates.len() {
        let (candidate, next) = (candidates[i], candidates[i + 1]);
        last_tried = Some(candidate);
        if side * turn(candidate, next, newest) <= 0 {
            line.anchor = Some(candidate);
            break;
        }
        if next.x >= newest.x {
            line.anchor = None;
            break;
        }
        i += 1;
    }
    if line.anchor.is_none() {
        line.anchor = last_tried;
    }
    if line.anchor.is_some_and(|a| a.x > newest.x) {
        line.anchor = None;
    }
}

/// The clock relation between one pair of hosts, updated one message at a time.
#[derive(Clone, Debug)]
pub struct PairHull {
    /// Upper hull of the points of messages other → reference, in arrival order.
    below: Vec<Point>,
    /// Lower hull of the points of messages reference → other.
    above: Vec<Point>,
    /// Anchored on `below`, through the newest `above` point (Trace Compass's `lmax`).
    steepest: BoundingLine,
    /// Anchored on `above`, through the newest `below` point (`lmin`).
    flattest: BoundingLine,
    quality: SyncQuality,
    /// The formula `y = alpha·x + beta`, and the two lines it is the mean of.
    alpha: Decimal,
    beta: Decimal,
    steepest_slope: Decimal,
    steepest_intercept: Decimal,
    flattest_slope: Decimal,
    flattest_intercept: Decimal,
    messages: u64,
    hull_entries: u64,
    /// Smallest and largest reference timestamps seen: the interval the bound speaks of.
    observed: Option<(i64, i64)>,
    next_id: u64,
}

impl Default for PairHull {
    fn default() -> PairHull {
        PairHull::new()
    }
}

impl PairHull {
    pub fn new() -> PairHull {
        PairHull {
            below: Vec::new(),
            above: Vec::new(),
            steepest: BoundingLine::default(),
            flattest: BoundingLine::default(),
            quality: SyncQuality::Absent,
            alpha: Decimal::ONE,
            beta: Decimal::ZERO,
            steepest_slope: Decimal::ONE,
            steepest_intercept: Decimal::ZERO,
            flattest_slope: Decimal::ONE,
            flattest_intercept: Decimal::ZERO,
            messages: 0,
            hull_entries: 0,
            observed: None,
            next_id: 0,
        }
    }

    /// Adds one matched message: its timestamp on the reference host and on the other host.
    pub fn add_message(&mut self, direction: Direction, reference_ts: i64, other_ts: i64) {
        self.messages += 1;
        let p = Point {
            x: reference_ts,
            y: other_ts,
            id: self.next_id,
        };
        self.next_id += 1;
        self.observed = Some(match self.observed {
            None => (p.x, p.x),
            Some((first, last)) => (first.min(p.x), last.max(p.x)),
        });
        // `side` orients every turn test: +1 for the upper hull of the points below the line,
        // −1 for the lower hull of the points above it.
        let (own, opposite, own_line, other_line, side) = match direction {
            Direction::OtherToReference => (
                &mut self.below,
                &self.above,
                &mut self.flattest,
                &mut self.steepest,
                1,
            ),
            Direction::ReferenceToOther => (
                &mut self.above,
                &self.below,
                &mut self.steepest,
                &mut self.flattest,
                -1,
            ),
        };
        // A point enters its hull unless it lies on the inner side of its own bounding line,
        // where it cannot tighten anything.
        let enters = match (own_line.anchor, own_line.newest) {
            (Some(anchor), Some(newest)) => side * turn(p, anchor, newest) > 0,
            _ => true,
        };
        if enters {
            self.hull_entries += 1;
            while own.len() >= 2 && side * turn(p, own[own.len() - 2], own[own.len() - 1]) > 0 {
                own.pop();
            }
            own.push(p);
            own_line.newest = Some(p);
        }
        settle_anchor(own_line, opposite, side);
        // The other line's anchor is a point of this hull: look for a new one if it was pruned.
        let anchor_still_on_hull = other_line
            .anchor
            .is_some_and(|a| own.iter().any(|q| q.id == a.id));
        if other_line.newest.is_some() && !anchor_still_on_hull {
            settle_anchor(other_line, own, -side);
        }
        if enters {
            self.update_formula();
        }
    }

    /// Recomputes the quality and, unless the pair failed, the formula.
    fn update_formula(&mut self) {
        let steep_anchored = self.steepest.anchor.is_some();
        let flat_anchored = self.flattest.anchor.is_some();
        if !steep_anchored && !flat_anchored {
            if self.steepest.newest.is_none() || self.flattest.newest.is_none() {
                self.quality = SyncQuality::Incomplete;
            }
            return;
        }
        if self.quality == SyncQuality::Fail {
            return;
        }
        let steep = self.steepest.slope();
        let flat = self.flattest.slope();
        let quality = if !(steep_anchored && flat_anchored) {
            SyncQuality::Approximate
        } else if steep > flat {
            SyncQuality::Accurate
        } else {
            SyncQuality::Fail
        };
        if quality != SyncQuality::Fail {
            let two = Decimal::from(2i64);
            self.steepest_slope = steep;
            self.steepest_intercept = self.steepest.intercept(steep);
            self.flattest_slope = flat;
            self.flattest_intercept = self.flattest.intercept(flat);
            self.alpha = (steep + flat).div_rounded(two).expect("2 is not zero");
            self.beta = (self.steepest_intercept + self.flattest_intercept)
                .div_rounded(two)
                .expect("2 is not zero");
        }
        self.quality = quality;
    }

    pub fn quality(&self) -> SyncQuality {
        self.quality
    }

    /// Slope of the formula `other = alpha × reference + beta` (1 before any formula).
    pub fn alpha(&self) -> Decimal {
        self.alpha
    }

    /// Intercept of the formula (0 before any formula).
    pub fn beta(&self) -> Decimal {
        self.beta
    }

    /// The steepest slope minus the flattest: what Trace Compass reports as the accuracy.
    pub fn slope_spread(&self) -> Decimal {
        self.steepest_slope - self.flattest_slope
    }

    /// Matched messages given to this pair.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Messages that entered a hull (Trace Compass's "accurate packets").
    pub fn hull_entries(&self) -> u64 {
        self.hull_entries
    }

    /// Points now on the hull of messages other → reference.
    pub fn below_points(&self) -> usize {
        self.below.len()
    }

    /// Points now on the hull of messages reference → other.
    pub fn above_points(&self) -> usize {
        self.above.len()
    }

    /// Smallest and largest reference timestamps of the messages seen.
    pub fn observed_range(&self) -> Option<(i64, i64)> {
        self.observed
    }

    /// The transform from the other host's time to the reference host's: the formula
    /// inverted (`1/alpha`, `−beta/alpha`, each rounded to 34 digits, as Trace Compass does).
    /// `None` without a formula (absent, incomplete), or if the formula cannot be a clock
    /// relation (a slope that is not positive, possible in an early approximate state; Trace
    /// Compass would throw there).
    pub fn transform(&self) -> Option<ClockTransform> {
        if !self.quality.has_formula() {
            return None;
        }
        let slope = Decimal::ONE.div_rounded(self.alpha)?;
        let offset = (-self.beta).div_rounded(self.alpha)?;
        ClockTransform::new(slope, offset).ok()
    }

    /// How far, in the other host's ns, the formula can be from the true clock relation over
    /// the observed interval; only for an accurate pair.
    ///
    /// Trace Compass gives no such bound (its "accuracy" is the difference of the two slopes).
    /// This one is half the vertical width of the band between the two bounding lines, the
    /// larger of its values at the two ends of the observed interval of reference times.
    /// Each bounding line touches both hulls, so outside its two anchors every admissible line
    /// lies on one side of it; the interval's ends lie outside the anchors, so there every
    /// admissible line — the true one included, if the clocks are linear and messages take no
    /// negative time — lies between the two bounding lines, at most this far from their mean.
    /// The distance between two lines is linear in `x`, so the ends bound the whole interval.
    pub fn band_half_width(&self) -> Option<Decimal> {
        if self.quality != SyncQuality::Accurate {
            return None;
        }
        let (first, last) = self.observed?;
        let slope_gap = self.steepest_slope - self.flattest_slope;
        let intercept_gap = self.steepest_intercept - self.flattest_intercept;
        let width = |x: i64| (slope_gap.mul_rounded(Decimal::from(x)) + intercept_gap).abs();
        width(first)
            .max(width(last))
            .div_rounded(Decimal::from(2i64))
    }

    /// [`band_half_width`](Self::band_half_width) along the reference host's time axis: how
    /// far, in reference ns, [`transform`](Self::transform) can put an event of the other
    /// host from its true reference time, over the observed interval.
    pub fn bound_ns(&self) -> Option<f64> {
        let half_width = self.band_half_width()?;
        Some(half_width.div_rounded(self.alpha.abs())?.to_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{OtherToReference as ToRef, ReferenceToOther as FromRef};

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// Clocks `other = reference + 10`, messages taking 2 ns each way: the hand-computed
    /// sequence through every quality.
    #[test]
    fn every_quality_transition_on_a_hand_computed_sequence() {
        let mut hull = PairHull::new();
        assert_eq!(hull.quality(), SyncQuality::Absent);
        assert_eq!(hull.transform(), None);

        // Reference sends at 0, other receives at 12: point (0, 12) above.
        hull.add_message(FromRef, 0, 12);
        assert_eq!(hull.quality(), SyncQuality::Incomplete);
        // Other sends at 14 (reference 4), reference receives at 6: point (6, 14) below. Each
        // hull has one point, which anchors nothing.
        hull.add_message(ToRef, 6, 14);
        assert_eq!(hull.quality(), SyncQuality::Incomplete);
        assert_eq!(hull.transform(), None);

        // (10, 22) above: the flattest line finds its anchor (0, 12) on the two-point upper
        // side and runs through (6, 14): slope 1/3. The steepest has no anchor: slope 1.
        hull.add_message(FromRef, 10, 22);
        assert_eq!(hull.quality(), SyncQuality::Approximate);
        // alpha = (1 + 0.333…3) / 2, beta = ((22 − 10) + (14 − 6·0.333…3)) / 2 = 12.
        assert_eq!(hull.alpha(), d("0.6666666666666666666666666666666666"));
        assert_eq!(hull.beta(), d("12"));
        assert!(hull.transform().is_some());
        assert_eq!(hull.band_half_width(), None);

        // (16, 24) below: flattest (0,12)–(16,24), slope 0.75, intercept 12; steepest anchors
        // on (6, 14) through (10, 22), slope 2, intercept 2. alpha 1.375, beta 7.
        hull.add_message(ToRef, 16, 24);
        assert_eq!(hull.quality(), SyncQuality::Accurate);
        assert_eq!((hull.alpha(), hull.beta()), (d("1.375"), d("7")));
        assert_eq!(hull.slope_spread(), d("1.25"));
        // Band: 1.25·x − 10 is −10 at x = 0 and 10 at x = 16: half-width 5 (other ns),
        // 5 / 1.375 reference ns.
        assert_eq!(hull.band_half_width(), Some(d("5")));
        assert!((hull.bound_ns().unwrap() - 5.0 / 1.375).abs() < 1e-12);
        assert_eq!((hull.below_points(), hull.above_points()), (2, 2));

        // (20, 20) above — received at the other host's 20 though sent at the reference's 20:
        // impossible with the other clock 10 ns ahead. It prunes (10, 22); the steepest line
        // (6, 14)–(20, 20) is now flatter than the flattest: the hulls intersect.
        hull.add_message(FromRef, 20, 20);
        assert_eq!(hull.quality(), SyncQuality::Fail);
        assert_eq!(
            (hull.alpha(), hull.beta()),
            (d("1.375"), d("7")),
            "last good formula kept"
        );
        let kept = hull.transform().unwrap();
        assert_eq!(kept.slope(), d("0.7272727272727272727272727272727273"));
        assert_eq!(hull.band_half_width(), None);

        // Fail is final, whatever comes next.
        hull.add_message(ToRef, 30, 38);
        hull.add_message(FromRef, 40, 52);
        assert_eq!(hull.quality(), SyncQuality::Fail);
        assert_eq!(hull.transform(), Some(kept));
        assert_eq!(hull.messages(), 7);
    }

    #[test]
    fn one_way_traffic_stays_incomplete_with_a_small_hull() {
        let mut hull = PairHull::new();
        // 10,000 messages reference → other on a drifting clock with varying delays.
        for i in 0..10_000i64 {
            let x = i * 1_000_003;
            let delay = 5_000 + (i * 7919) % 3_000;
            hull.add_message(FromRef, x, x + x / 10_000 + 123_456 + delay);
        }
        assert_eq!(hull.quality(), SyncQuality::Incomplete);
        assert_eq!(hull.transform(), None);
        assert_eq!(hull.below_points(), 0);
        assert!(
            hull.above_points() < 100,
            "{} points kept",
            hull.above_points()
        );

        let mut hull = PairHull::new();
        for i in 0..1_000i64 {
            hull.add_message(ToRef, i * 50 + 9, i * 50);
        }
        assert_eq!(hull.quality(), SyncQuality::Incomplete);
    }

    #[test]
    fn memory_follows_the_hulls_not_the_messages() {
        let mut hull = PairHull::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut jitter = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 50_000) as i64
        };
        // other = 1.00001·reference + 3 ms; delays 20 µs to 70 µs.
        let other = |x: i64| x + x / 100_000 + 3_000_000;
        let start = 1_700_000_000_000_000_000i64;
        for i in 0..100_000i64 {
            let x = start + i * 100_000;
            hull.add_message(FromRef, x, other(x) + 20_000 + jitter());
            let y_send = other(x + 50_000);
            hull.add_message(ToRef, x + 50_000 + 20_000 + jitter(), y_send);
        }
        assert_eq!(hull.quality(), SyncQuality::Accurate);
        assert!(hull.below_points() + hull.above_points() < 200);
        let alpha = hull.alpha().to_f64();
        assert!((alpha - 1.00001).abs() < 1e-7, "alpha {alpha}");
        // The mean line maps the other host's times back within the bound.
        let bound = hull.bound_ns().unwrap();
        assert!(bound < 50_000.0, "bound {bound} ns");
        let to_reference = hull.transform().unwrap();
        for x in [start, start + 5_000_000_000, start + 9_999_900_000] {
            let error = (to_reference.apply(other(x)) - x).abs() as f64;
            assert!(error <= bound + 1.0, "error {error} ns, bound {bound} ns");
        }
    }

    /// Trace Compass computes the cross product in wrapping 64-bit arithmetic; this one does
    /// not wrap. Points 4 s apart on both axes: the true cross product is 1.6e19, which a
    /// Java `long` turns into −2.4e18, the opposite turn.
    #[test]
    fn orientation_does_not_wrap_like_java_long() {
        let p = Point { x: 0, y: 0, id: 0 };
        let a = Point {
            x: 4_000_000_000,
            y: 0,
            id: 1,
        };
        let b = Point {
            x: 0,
            y: 4_000_000_000,
            id: 2,
        };
        let java_long = (a.x - p.x)
            .wrapping_mul(b.y - p.y)
            .wrapping_sub((a.y - p.y).wrapping_mul(b.x - p.x));
        assert!(
            java_long < 0,
            "Java would see a clockwise turn: {java_long}"
        );
        assert_eq!(turn(p, a, b), 1);
        // Differences beyond i64 (timestamps of opposite signs) are still exact: these cross
        // products pass 2^127, their differences are ±(2^64 − 1) and 0 (checked with Python).
        let top = Point {
            x: i64::MAX,
            y: i64::MAX,
            id: 3,
        };
        let bottom = Point {
            x: i64::MIN,
            y: i64::MIN,
            id: 4,
        };
        let at = |x: i64, y: i64| Point { x, y, id: 5 };
        assert_eq!(turn(top, bottom, at(i64::MIN, i64::MIN + 1)), -1);
        assert_eq!(turn(top, bottom, at(i64::MIN + 1, i64::MIN)), 1);
        assert_eq!(turn(top, bottom, at(i64::MIN + 5, i64::MIN + 5)), 0);
        assert_eq!(turn(p, at(i64::MIN, i64::MAX), at(i64::MAX, i64::MIN)), 1);
    }

    /// The same difference at the level of a hull: three messages reference → other, 100 s
    /// apart, the middle one 50 ms slower. It lies above the segment joining the others, so it
    /// leaves the lower hull when the third arrives. The cross product deciding that is −1e19;
    /// a Java `long` wraps it to +8.4e18 and Trace Compass would keep the point.
    #[test]
    fn hull_prunes_where_java_long_would_wrap() {
        let (p0, p1, p2) = (
            (0i64, 0i64),
            (100_000_000_000i64, 100_050_000_000i64),
            (200_000_000_000i64, 200_000_000_000i64),
        );
        let java_long = (p0.0 - p2.0)
            .wrapping_mul(p1.1 - p2.1)
            .wrapping_sub((p0.1 - p2.1).wrapping_mul(p1.0 - p2.0));
        assert!(java_long > 0, "Java's turn: {java_long}");
        let mut hull = PairHull::new();
        for (x, y) in [p0, p1, p2] {
            hull.add_message(FromRef, x, y);
        }
        assert_eq!(hull.above_points(), 2);
    }
}

//! A linear clock transform `t_ref = slope × t + offset`, from one host's timestamps (ns) to
//! another's.
//!
//! The coefficients are [`Decimal`]s, so the formulas the convex hull computes (34 significant
//! digits) are kept as they are: inverse and composition follow Trace Compass's arithmetic
//! (`1/slope`, `−offset/slope`; `a1·a2`, `a1·b2 + b1`, products and quotients rounded to 34
//! digits, the sum exact), and so give its digits.
//!
//! Applying one to a timestamp must not go through those decimals (a few hundred ns each) nor
//! through `f64` (whose 53 bits leave about 0.25 ns of a 1.6e18 ns epoch timestamp). So each
//! transform also holds a fixed-point form, derived once from the decimals:
//!
//! `t_ref = t + whole + (excess × t + fraction) / 2^73`
//!
//! where `excess ≈ (slope − 1) × 2^73` and `fraction ≈ (offset − whole) × 2^73` are integers and
//! `whole = ⌊offset⌋`. The product is taken in 256 bits and shifted with rounding, so
//! [`ClockTransform::apply`] costs a few integer multiplications and returns the exact value
//! rounded to the nearest ns (ties towards +∞), up to an error before rounding below
//! `(|t| + 1) × 2^-74` ns — under 2^-11 ns for every `i64` — whatever the slope and offset. It
//! is monotonic for a positive slope, because `(2^73 + excess) × t + fraction` is an exact
//! increasing integer function of `t`.
//!
//! Trace Compass instead truncates (its precise transform) or floors with a 30-bit slope (its
//! fast transform, within ±2 ns of the precise one); a result here can therefore be 1 ns above
//! theirs, deliberately: the nearest ns is the better answer.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::decimal::Decimal;
use crate::wide::U256;

/// Bits below the ns in the fixed-point form. 73 leaves the slope's excess over 1 room up to
/// 2^54 in an `i128`, and makes its rounding error (2^-74 per ns of `t`) below 2^-11 ns over
/// the whole `i64` range.
const FRACTION_BITS: u32 = 73;

/// One half, in units of 2^-73 ns: what rounding to the nearest ns adds before flooring.
const HALF: u128 = 1 << (FRACTION_BITS - 1);

/// The bits below one ns, in units of 2^-73 ns.
const BELOW_NS: u128 = (1 << FRACTION_BITS) - 1;

/// The transform's slope must be positive (a clock does not run backwards) and its excess over
/// 1 must fit the fixed-point form.
const MAX_SLOPE_EXCESS: u128 = 1 << 54;

/// The offset's integer part must stay far inside `i128`.
const MAX_OFFSET: u128 = 1 << 100;

/// Why coefficients do not make a usable clock transform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransformError {
    /// Zero or negative: time would stand still or run backwards.
    SlopeNotPositive(Decimal),
    /// So large (above 2^54) that no real pair of clocks has it.
    SlopeTooLarge(Decimal),
    /// Beyond 2^100 ns.
    OffsetTooLarge(Decimal),
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransformError::SlopeNotPositive(s) => write!(f, "clock slope {s} is not positive"),
            TransformError::SlopeTooLarge(s) => write!(f, "clock slope {s} is too large"),
            TransformError::OffsetTooLarge(o) => write!(f, "clock offset {o} ns is too large"),
        }
    }
}

impl std::error::Error for TransformError {}

/// `t_ref = slope × t + offset`, timestamps in ns. Serialised as
/// `{"slope": "…", "offset": "…"}`, the decimals as strings so no digit is lost.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Coefficients", into = "Coefficients")]
pub struct ClockTransform {
    slope: Decimal,
    offset: Decimal,
    fixed: FixedPoint,
}

/// The fixed-point form `t + whole + (excess × t + fraction) / 2^73` (see the module
/// documentation); derived from the decimals, never set on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FixedPoint {
    excess: i128,
    whole: i128,
    /// In [0, 2^73].
    fraction: u128,
}

/// The serialised form.
#[derive(Clone, Serialize, Deserialize)]
struct Coefficients {
    slope: Decimal,
    offset: Decimal,
}

impl TryFrom<Coefficients> for ClockTransform {
    type Error = TransformError;

    fn try_from(c: Coefficients) -> Result<ClockTransform, TransformError> {
        ClockTransform::new(c.slope, c.offset)
    }
}

impl From<ClockTransform> for Coefficients {
    fn from(t: ClockTransform) -> Coefficients {
        Coefficients {
            slope: t.slope,
            offset: t.offset,
        }
    }
}

impl ClockTransform {
    /// `t_ref = slope × t + offset`.
    pub fn new(slope: Decimal, offset: Decimal) -> Result<ClockTransform, TransformError> {
        if slope <= Decimal::ZERO {
            return Err(TransformError::SlopeNotPositive(slope));
        }
        if slope - Decimal::ONE >= Decimal::from(MAX_SLOPE_EXCESS) {
            return Err(TransformError::SlopeTooLarge(slope));
        }
        if offset.abs() >= Decimal::from(MAX_OFFSET) {
            return Err(TransformError::OffsetTooLarge(offset));
        }
        let scale = Decimal::from(1u128 << FRACTION_BITS);
        let in_range = "checked against the limits above";
        let excess = (slope - Decimal::ONE)
            .mul_exact(scale)
            .round()
            .to_i128()
            .expect(in_range);
        let whole = offset.floor();
        let fraction = (offset - whole)
            .mul_exact(scale)
            .round()
            .to_i128()
            .expect(in_range);
        let fixed = FixedPoint {
            excess,
            whole: whole.to_i128().expect(in_range),
            fraction: fraction as u128,
        };
        Ok(ClockTransform {
            slope,
            offset,
            fixed,
        })
    }

    pub fn identity() -> ClockTransform {
        ClockTransform::new(Decimal::ONE, Decimal::ZERO).expect("1 and 0 are in range")
    }

    /// A pure shift: `t_ref = t + offset_ns`.
    pub fn shift(offset_ns: i64) -> ClockTransform {
        ClockTransform::new(Decimal::ONE, Decimal::from(offset_ns)).expect("an i64 is in range")
    }

    /// This transform after a shift of `shift_ns`: `t ↦ slope × (t + shift_ns) + offset`, for
    /// a transform fitted on times that were shifted before it saw them. The offset is
    /// rounded to 34 significant digits, as the fit rounds its own.
    pub fn after_shift(&self, shift_ns: i64) -> Result<ClockTransform, TransformError> {
        if shift_ns == 0 {
            return Ok(self.clone());
        }
        let offset = (self.slope.mul_exact(Decimal::from(shift_ns)) + self.offset).to_precision();
        ClockTransform::new(self.slope, offset)
    }

    pub fn slope(&self) -> Decimal {
        self.slope
    }

    pub fn offset(&self) -> Decimal {
        self.offset
    }

    pub fn is_identity(&self) -> bool {
        self.slope == Decimal::ONE && self.offset.is_zero()
    }

    /// `slope × t + offset` rounded to the nearest ns (ties towards +∞), saturated to the
    /// `i64` range.
    pub fn apply(&self, t: i64) -> i64 {
        // Most transforms of real clocks differ from 1 by parts per million: the excess and
        // t then both fit 64 bits and their product 128, which the same steps compute in
        // u128 (every event of a synchronised host comes through here).
        self.apply_narrow(t).unwrap_or_else(|| self.apply_wide(t))
    }

    /// [`ClockTransform::apply`] in 128 bits, when the product fits.
    fn apply_narrow(&self, t: i64) -> Option<i64> {
        let FixedPoint {
            excess,
            whole,
            fraction,
        } = self.fixed;
        let e = u64::try_from(excess.unsigned_abs()).ok()?;
        let product = u128::from(e) * u128::from(t.unsigned_abs());
        let addend = fraction + HALF;
        let correction: i128 = if (excess < 0) == (t < 0) {
            (product.checked_add(addend)? >> FRACTION_BITS) as i128
        } else if product <= addend {
            ((addend - product) >> FRACTION_BITS) as i128
        } else {
            // ⌊−m / 2^73⌋ = −⌈m / 2^73⌉
            let m = product - addend;
            let ceiling = (m >> FRACTION_BITS) + u128::from(m & BELOW_NS != 0);
            -(ceiling as i128)
        };
        let exact = t as i128 + whole + correction;
        Some(exact.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    /// [`ClockTransform::apply`] in 256 bits: any slope the limits allow.
    fn apply_wide(&self, t: i64) -> i64 {
        let FixedPoint {
            excess,
            whole,
            fraction,
        } = self.fixed;
        let product_negative = (excess < 0) != (t < 0);
        // In units of 2^-73 ns: excess × t + fraction + ½, then floored.
        let product = U256::product(excess.unsigned_abs(), t.unsigned_abs() as u128);
        let addend = U256::from_u128(fraction + HALF);
        let correction: i128 = if !product_negative {
            let sum = product.checked_add(addend).expect("below 2^192");
            sum.shr(FRACTION_BITS).low_u128() as i128
        } else if product <= addend {
            addend.minus(product).shr(FRACTION_BITS).low_u128() as i128
        } else {
            // ⌊−m / 2^73⌋ = −⌈m / 2^73⌉
            let m = product.minus(addend);
            let ceiling = m.shr(FRACTION_BITS).low_u128() + (m.low_u128() & BELOW_NS != 0) as u128;
            -(ceiling as i128)
        };
        let exact = t as i128 + whole + correction;
        exact.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// `slope × t + offset` without rounding: for checks, and for callers who need the
    /// fraction of a ns.
    pub fn apply_exact(&self, t: i64) -> Decimal {
        self.slope.mul_exact(Decimal::from(t)) + self.offset
    }

    /// The transform back: `t = t_ref / slope − offset / slope`, each rounded to 34 digits.
    /// `None` if the inverse slope leaves the usable range (a slope below 2^-54).
    pub fn inverse(&self) -> Option<ClockTransform> {
        if self.is_identity() {
            return Some(self.clone());
        }
        let slope = Decimal::ONE.div_rounded(self.slope)?;
        let offset = (-self.offset).div_rounded(self.slope)?;
        ClockTransform::new(slope, offset).ok()
    }

    /// `self ∘ inner`: first `inner`, then `self` (`t ↦ self(inner(t))`). The slope is
    /// `a·a'` and the offset `a·b' + b`, products rounded to 34 digits, the sum exact.
    /// `None` if the result leaves the usable range.
    pub fn after(&self, inner: &ClockTransform) -> Option<ClockTransform> {
        if self.is_identity() {
            return Some(inner.clone());
        }
        if inner.is_identity() {
            return Some(self.clone());
        }
        let slope = self.slope.mul_rounded(inner.slope);
        let offset = self.slope.mul_rounded(inner.offset) + self.offset;
        ClockTransform::new(slope, offset).ok()
    }
}

impl Default for ClockTransform {
    fn default() -> ClockTransform {
        ClockTransform::identity()
    }
}

impl fmt::Debug for ClockTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClockTransform({} × t + {})", self.slope, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn linear(slope: &str, offset: &str) -> ClockTransform {
        ClockTransform::new(d(slope), d(offset)).unwrap()
    }

    #[test]
    fn a_transform_after_a_shift_is_the_two_in_turn() {
        let t = linear("0.9999413783703139011056845831168394", "79796507913179.33");
        let shifted = t.after_shift(-79_796_000_000_000).unwrap();
        for x in [0i64, 1_000_000_007, 9_999_999_999_999, -5] {
            assert_eq!(shifted.apply(x), t.apply(x - 79_796_000_000_000), "{x}");
        }
        assert_eq!(
            shifted.offset(),
            (d("79796507913179.33") - d("79791322228437.5680526292069943913167624")).to_precision()
        );
        assert_eq!(shifted.offset(), d("5185684741.761947370793005608683238"));
    }

    /// The exact value rounded half up, through decimals: what `apply` must give.
    fn rounded_exactly(transform: &ClockTransform, t: i64) -> i64 {
        let nearest = (transform.apply_exact(t) + d("0.5"))
            .floor()
            .to_i128()
            .unwrap();
        nearest.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// The synctraces result: scp_src's clock to scp_dest's.
    fn synctraces() -> ClockTransform {
        linear(
            "0.9999413783703139011056845831168394",
            "79796507913179.33347660124688298171",
        )
    }

    #[test]
    fn trace_compass_transform_values() {
        // TsTransformTest: a 2013 epoch timestamp through linear transforms.
        let t = 1361657893526374091;
        assert_eq!(ClockTransform::identity().apply(t), t);
        assert_eq!(linear("1.0", "3").apply(t), 1361657893526374094);
        assert_eq!(linear("2.0", "0").apply(t), 2723315787052748182);
        assert_eq!(linear("2.0", "3").apply(t), 2723315787052748185);
        // The exact value is 680828946763187045.5: Trace Compass truncates to …045, the
        // nearest ns (ties up) is …046 — a deliberate difference.
        assert_eq!(linear("0.5", "0").apply(t), 680828946763187046);
        // Composition, t = 100, ttl = (2, 3), ttl2 = (1.5, 8).
        let (ttl, ttl2) = (linear("2.0", "3"), linear("1.5", "8"));
        let identity = ClockTransform::identity();
        assert_eq!(identity.after(&ttl).unwrap(), ttl);
        assert_eq!(ttl.after(&identity).unwrap(), ttl);
        assert_eq!(ttl.apply(100), 203);
        assert_eq!(ttl.after(&ttl2).unwrap().apply(100), 319);
        assert_eq!(
            ttl.after(&ttl2).unwrap().apply(100),
            ttl.apply(ttl2.apply(100))
        );
        // 312.5: Trace Compass gives 312 (truncation), the nearest ns here is 313.
        assert_eq!(ttl2.after(&ttl).unwrap().apply(100), 313);
    }

    #[test]
    fn epoch_timestamps_keep_sub_ns_precision() {
        let transforms = [
            synctraces(),
            linear(
                "1.000000119014882262265342419815932",
                "-166652893534.6189900382736187431134",
            ),
            linear(
                "0.9999996313017589597204633828681240",
                "498490309972.0038068817738527724192",
            ),
            linear("1e-9", "12.75"),
            linear("1e9", "-0.5"),
            linear("2", "0.4999999"),
            ClockTransform::shift(-80_000_000),
        ];
        let epoch = 1_361_214_092_893_736_184i64;
        for transform in &transforms {
            for t in [
                epoch,
                epoch + 1,
                epoch - 999_999_937,
                1_700_000_000_123_456_789,
                0,
                1,
                -1,
                -epoch,
            ] {
                assert_eq!(
                    transform.apply(t),
                    rounded_exactly(transform, t),
                    "{transform:?} at {t}"
                );
            }
        }
        // Against the decimal value at the synctraces' timestamps: 1361134296305259068.37…
        // + 79796507913179.33… = 1361214092813172247.71…, so …248.
        assert_eq!(synctraces().apply(epoch), 1361214092813172248);
    }

    /// Slopes within parts per million of 1 take the 128-bit path: it gives what the 256-bit
    /// one gives, at times spread over the whole of i64 (a seeded sequence) and at its ends.
    #[test]
    fn the_short_path_computes_what_the_wide_one_does() {
        let transforms = [
            synctraces(),
            linear(
                "1.000052999354156341956492924262639",
                "-49197483.38169566676",
            ),
            linear("0.999999", "-1e15"),
            linear("1.0000001", "0.5"),
            ClockTransform::shift(-80_000_000),
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut times = vec![0, 1, -1, i64::MAX, i64::MIN, i64::MAX - 1, i64::MIN + 1];
        for _ in 0..4_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            times.push((x >> 1) as i64 * if x & 1 == 0 { 1 } else { -1 });
        }
        for transform in &transforms {
            for &t in &times {
                let narrow = transform.apply_narrow(t).expect("a near-unit slope");
                assert_eq!(narrow, transform.apply_wide(t), "{transform:?} at {t}");
            }
        }
    }

    #[test]
    fn saturates_at_the_ends_of_i64() {
        assert_eq!(linear("2", "0").apply(i64::MAX), i64::MAX);
        assert_eq!(linear("2", "0").apply(i64::MIN), i64::MIN);
        assert_eq!(ClockTransform::identity().apply(i64::MIN), i64::MIN);
    }

    #[test]
    fn monotonic_for_a_slope_below_one() {
        let transform = synctraces();
        let start = 1_361_214_092_000_000_000i64;
        let mut previous = transform.apply(start);
        for t in start + 1..start + 200_000 {
            let now = transform.apply(t);
            assert!(now >= previous && now <= previous + 1, "at {t}");
            previous = now;
        }
    }

    #[test]
    fn inverse_and_composition_on_epoch_timestamps() {
        let forward = synctraces();
        let back = forward.inverse().unwrap();
        // 1/slope and −offset/slope, each to 34 digits.
        assert_eq!(back.slope(), d("1.000058625066383030723307598788165"));
        assert_eq!(back.offset(), d("-79801185988752.877651439554251"));
        for t in [
            1_361_214_092_775_785_329i64,
            1_361_214_092_974_114_899,
            1_700_000_000_000_000_000,
        ] {
            let there = forward.apply(t);
            assert!((back.apply(there) - t).abs() <= 1, "{t}");
            // Composition with the inverse is the identity to 34 digits: within a ns.
            assert!((back.after(&forward).unwrap().apply(t) - t).abs() <= 1);
        }
        let round_trip = back.after(&forward).unwrap();
        assert!((round_trip.slope() - Decimal::ONE).abs() < d("1e-33"));
        // Composition is function composition, at any order of magnitude.
        let drift = linear("1.000002", "-3000.25");
        let chain = forward.after(&drift).unwrap();
        let t = 1_700_000_000_000_000_000;
        assert!((chain.apply(t) - forward.apply(drift.apply(t))).abs() <= 1);
        assert_eq!(chain.apply(t), rounded_exactly(&chain, t));
        assert!(ClockTransform::identity().inverse().unwrap().is_identity());
    }

    #[test]
    fn refuses_unusable_coefficients() {
        assert!(matches!(
            ClockTransform::new(d("0"), d("1")),
            Err(TransformError::SlopeNotPositive(_))
        ));
        assert!(ClockTransform::new(d("-1"), d("0")).is_err());
        assert!(ClockTransform::new(d("1e17"), d("0")).is_err());
        assert!(ClockTransform::new(d("1"), d("1e31")).is_err());
        assert_eq!(linear("1e-20", "0").inverse(), None);
    }

    #[test]
    fn serialises_as_decimal_strings() {
        let json = serde_json::to_string(&synctraces()).unwrap();
        assert_eq!(
            json,
            r#"{"slope":"0.9999413783703139011056845831168394","offset":"79796507913179.33347660124688298171"}"#
        );
        let back: ClockTransform = serde_json::from_str(&json).unwrap();
        assert_eq!(back, synctraces());
        assert!(serde_json::from_str::<ClockTransform>(r#"{"slope":"0","offset":"0"}"#).is_err());
    }
}

/// A host's clock on an experiment's time line: its transform to the reference, and back
/// (for seeking and windows given in reference time).
#[derive(Clone, Debug)]
pub struct ReferenceClock {
    to_reference: ClockTransform,
    from_reference: ClockTransform,
}

impl ReferenceClock {
    /// `None` when the transform has no usable inverse.
    pub fn new(to_reference: ClockTransform) -> Option<ReferenceClock> {
        let from_reference = to_reference.inverse()?;
        Some(ReferenceClock {
            to_reference,
            from_reference,
        })
    }

    pub fn transform(&self) -> &ClockTransform {
        &self.to_reference
    }
}

impl virtflow_trace::Clock for ReferenceClock {
    fn to_reference(&self, t: i64) -> i64 {
        self.to_reference.apply(t)
    }
    fn to_local(&self, t: i64) -> i64 {
        self.from_reference.apply(t)
    }
}

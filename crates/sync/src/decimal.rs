//! Decimal numbers with the rounding rules the synchronisation arithmetic is defined by.
//!
//! Trace Compass computes its clock formulas in `java.math.BigDecimal`: products and quotients
//! rounded to 34 significant digits, half to even (`MathContext.DECIMAL128`), sums and
//! differences exact. Its published results (the synctraces slope
//! `0.9999413783703139011056845831168394`) depend on every one of those roundings: neither
//! `f64` (17 digits) nor exact rationals (which round nowhere) give its digits back. So
//! [`Decimal`] keeps a value as `±coefficient × 10^exponent` with the same rules:
//!
//! - [`Decimal::mul_rounded`] and [`Decimal::div_rounded`] round to [`PRECISION`] (34)
//!   significant digits, half to even: the value Java's `multiply`/`divide` with
//!   `MathContext.DECIMAL128` gives.
//! - `+` and `-` are exact up to [`EXACT_DIGITS`] (76) significant digits, and rounded half to
//!   even beyond. Java's are exact without limit; the difference shows only when two operands
//!   lie more than ~40 orders of magnitude apart, which no sum of the synchronisation does
//!   (its widest is an epoch timestamp minus a 34-digit product, about 35 digits).
//! - An operand of a product or quotient wider than 38 digits (only a 76-digit sum can be) is
//!   first rounded to 38 digits, so the product fits 256 bits; the synchronisation never
//!   multiplies or divides such a sum, so this too never shows.
//!
//! Only values are modelled, not Java's scales: `2.50` and `2.5` are the same [`Decimal`]
//! (trailing zeros are stripped), and text is written without exponent.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, Neg, Sub};
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::wide::U256;

/// Significant digits of a product or quotient: IEEE 754 decimal128, as Trace Compass uses.
pub const PRECISION: u32 = 34;

/// Significant digits a sum or difference keeps exactly.
pub const EXACT_DIGITS: u32 = 76;

/// Operands of a product or quotient are rounded to this many digits (10^38 < 2^128).
const OPERAND_DIGITS: u32 = 38;

/// Exponents beyond this are refused when parsing, so exponent arithmetic cannot overflow.
const MAX_PARSED_EXPONENT: i64 = 1_000_000;

/// A decimal number `±coefficient × 10^exponent`, normalised (no trailing zeros in the
/// coefficient, zero positive), so equality is equality of values.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    negative: bool,
    coefficient: U256,
    exponent: i32,
}

/// Drops the `n` lowest decimal digits of `coefficient`. Returns the remaining digits, the first
/// digit dropped, and whether any digit dropped after it is non-zero: what a rounding needs.
fn shed_digits(coefficient: U256, n: u32) -> (U256, u64, bool) {
    if n == 0 {
        return (coefficient, 0, false);
    }
    if n > coefficient.decimal_digits() {
        return (U256::ZERO, 0, !coefficient.is_zero());
    }
    let mut value = coefficient;
    let mut rest_nonzero = false;
    let mut left = n - 1;
    while left > 0 {
        let step = left.min(19);
        let (q, r) = value.divrem_u64(10u64.pow(step));
        rest_nonzero |= r != 0;
        value = q;
        left -= step;
    }
    let (kept, first) = value.divrem_u64(10);
    (kept, first, rest_nonzero)
}

/// Half-to-even: whether the kept digits must go up by one.
fn rounds_up(kept: U256, first_dropped: u64, rest_nonzero: bool) -> bool {
    first_dropped > 5 || (first_dropped == 5 && (rest_nonzero || kept.is_odd()))
}

fn increment(value: U256) -> U256 {
    value
        .checked_add(U256::from_u128(1))
        .expect("a rounded coefficient has room for a carry")
}

impl Decimal {
    pub const ZERO: Decimal = Decimal {
        negative: false,
        coefficient: U256::ZERO,
        exponent: 0,
    };

    pub const ONE: Decimal = Decimal {
        negative: false,
        coefficient: U256::ONE,
        exponent: 0,
    };

    /// Builds a normalised value: trailing zeros moved into the exponent, zero made positive.
    fn from_parts(negative: bool, coefficient: U256, exponent: i32) -> Decimal {
        if coefficient.is_zero() {
            return Decimal::ZERO;
        }
        let (mut coefficient, mut exponent) = (coefficient, exponent);
        loop {
            let (q, r) = coefficient.divrem_u64(10);
            if r != 0 {
                break;
            }
            coefficient = q;
            exponent += 1;
        }
        Decimal {
            negative,
            coefficient,
            exponent,
        }
    }

    /// `±coefficient × 10^exponent` rounded half to even to `digits` significant digits.
    /// `inexact` tells that the true value lies a little above `coefficient` (a division's
    /// remainder); callers pass it only with more than `digits` digits, so it breaks ties.
    fn rounded(
        negative: bool,
        coefficient: U256,
        exponent: i32,
        inexact: bool,
        digits: u32,
    ) -> Decimal {
        let n = coefficient.decimal_digits();
        if n <= digits {
            return Decimal::from_parts(negative, coefficient, exponent);
        }
        let (kept, first, rest) = shed_digits(coefficient, n - digits);
        let kept = if rounds_up(kept, first, rest || inexact) {
            increment(kept)
        } else {
            kept
        };
        Decimal::from_parts(negative, kept, exponent + (n - digits) as i32)
    }

    /// This value with at most `digits` significant digits.
    fn limited(self, digits: u32) -> Decimal {
        Decimal::rounded(
            self.negative,
            self.coefficient,
            self.exponent,
            false,
            digits,
        )
    }

    /// Rounded to [`PRECISION`] significant digits, half to even: what a product of the
    /// synchronisation arithmetic keeps.
    pub fn to_precision(self) -> Decimal {
        self.limited(PRECISION)
    }

    pub fn is_zero(self) -> bool {
        self.coefficient.is_zero()
    }

    pub fn is_negative(self) -> bool {
        self.negative
    }

    pub fn abs(self) -> Decimal {
        Decimal {
            negative: false,
            ..self
        }
    }

    /// `self × rhs` rounded to 34 significant digits, half to even.
    pub fn mul_rounded(self, rhs: Decimal) -> Decimal {
        self.multiply(rhs, PRECISION)
    }

    /// `self × rhs` exactly (up to 76 digits: exact for operands of up to 38 digits).
    pub(crate) fn mul_exact(self, rhs: Decimal) -> Decimal {
        self.multiply(rhs, EXACT_DIGITS)
    }

    fn multiply(self, rhs: Decimal, digits: u32) -> Decimal {
        let (a, b) = (self.limited(OPERAND_DIGITS), rhs.limited(OPERAND_DIGITS));
        let fits = "a 38-digit coefficient fits 128 bits";
        let product = U256::product(
            a.coefficient.to_u128().expect(fits),
            b.coefficient.to_u128().expect(fits),
        );
        Decimal::rounded(
            a.negative != b.negative,
            product,
            a.exponent + b.exponent,
            false,
            digits,
        )
    }

    /// `self / rhs` rounded to 34 significant digits, half to even; `None` for a zero divisor.
    pub fn div_rounded(self, rhs: Decimal) -> Option<Decimal> {
        if rhs.is_zero() {
            return None;
        }
        if self.is_zero() {
            return Some(Decimal::ZERO);
        }
        let divisor = rhs.limited(OPERAND_DIGITS);
        let divisor_coefficient = divisor
            .coefficient
            .to_u128()
            .expect("a 38-digit coefficient fits 128 bits");
        let dividend_digits = self.coefficient.decimal_digits();
        let divisor_digits = divisor.coefficient.decimal_digits();
        // Scale the dividend so the integer quotient has at least PRECISION + 2 digits: one to
        // round on, and a remainder standing for everything below it.
        let scale = (PRECISION + 2 + divisor_digits).saturating_sub(dividend_digits);
        let scaled = self
            .coefficient
            .checked_scale10(scale)
            .expect("at most 76 digits after scaling fit 256 bits");
        let (quotient, remainder) = scaled.divrem_u128(divisor_coefficient);
        Some(Decimal::rounded(
            self.negative != divisor.negative,
            quotient,
            self.exponent - scale as i32 - divisor.exponent,
            remainder != 0,
            PRECISION,
        ))
    }

    /// The greatest integer not above this value.
    pub fn floor(self) -> Decimal {
        if self.exponent >= 0 {
            return self;
        }
        let (kept, first, rest) = shed_digits(self.coefficient, self.exponent.unsigned_abs());
        let dropped_something = first != 0 || rest;
        let kept = if self.negative && dropped_something {
            increment(kept)
        } else {
            kept
        };
        Decimal::from_parts(self.negative, kept, 0)
    }

    /// The nearest integer, ties to even.
    pub fn round(self) -> Decimal {
        if self.exponent >= 0 {
            return self;
        }
        let (kept, first, rest) = shed_digits(self.coefficient, self.exponent.unsigned_abs());
        let kept = if rounds_up(kept, first, rest) {
            increment(kept)
        } else {
            kept
        };
        Decimal::from_parts(self.negative, kept, 0)
    }

    /// The value as an `i128` if it is an integer in range.
    pub fn to_i128(self) -> Option<i128> {
        if self.exponent < 0 {
            return None;
        }
        let magnitude = self
            .coefficient
            .checked_scale10(self.exponent as u32)?
            .to_u128()?;
        let magnitude = i128::try_from(magnitude).ok()?;
        Some(if self.negative { -magnitude } else { magnitude })
    }

    /// The nearest `f64` (through its decimal text, which Rust's parser rounds correctly).
    pub fn to_f64(self) -> f64 {
        let sign = if self.negative { "-" } else { "" };
        let text = format!(
            "{sign}{}e{}",
            self.coefficient.to_decimal_string(),
            self.exponent
        );
        text.parse().unwrap_or(f64::NAN)
    }

    fn compare_magnitudes(self, other: Decimal) -> Ordering {
        let (da, db) = (
            self.coefficient.decimal_digits(),
            other.coefficient.decimal_digits(),
        );
        // A non-zero value lies in [10^top, 10^(top+1)) with top its leading digit's position.
        let top_a = self.exponent as i64 + da as i64;
        let top_b = other.exponent as i64 + db as i64;
        if top_a != top_b {
            return top_a.cmp(&top_b);
        }
        let width = da.max(db);
        let fits = "coefficients of at most 76 digits fit 256 bits";
        let a = self.coefficient.checked_scale10(width - da).expect(fits);
        let b = other.coefficient.checked_scale10(width - db).expect(fits);
        a.cmp(&b)
    }
}

impl Add for Decimal {
    type Output = Decimal;

    /// Exact up to 76 significant digits (see the module documentation).
    fn add(self, rhs: Decimal) -> Decimal {
        if self.is_zero() {
            return rhs;
        }
        if rhs.is_zero() {
            return self;
        }
        let (high, low) = if self.exponent >= rhs.exponent {
            (self, rhs)
        } else {
            (rhs, self)
        };
        // `high`'s coefficient is scaled down to `low`'s exponent; it may gain `room` digits.
        let room = EXACT_DIGITS.saturating_sub(high.coefficient.decimal_digits());
        let gap = high.exponent as i64 - low.exponent as i64;
        let (low_coefficient, exponent) = if gap <= room as i64 {
            (low.coefficient, low.exponent)
        } else {
            // `low` reaches more than 76 digits below `high`'s leading digit: keep it only down
            // to where the sum's 76 digits end.
            let exponent = high.exponent - room as i32;
            let shed = (exponent as i64 - low.exponent as i64) as u32;
            let (kept, first, rest) = shed_digits(low.coefficient, shed);
            (
                if rounds_up(kept, first, rest) {
                    increment(kept)
                } else {
                    kept
                },
                exponent,
            )
        };
        let high_coefficient = high
            .coefficient
            .checked_scale10((high.exponent - exponent) as u32)
            .expect("scaled to at most 76 digits");
        let (negative, magnitude) = if high.negative == low.negative {
            let sum = high_coefficient
                .checked_add(low_coefficient)
                .expect("below 2·10^76");
            (high.negative, sum)
        } else if high_coefficient >= low_coefficient {
            (high.negative, high_coefficient.minus(low_coefficient))
        } else {
            (low.negative, low_coefficient.minus(high_coefficient))
        };
        Decimal::rounded(negative, magnitude, exponent, false, EXACT_DIGITS)
    }
}

impl Sub for Decimal {
    type Output = Decimal;

    /// Exact up to 76 significant digits.
    fn sub(self, rhs: Decimal) -> Decimal {
        self + (-rhs)
    }
}

impl Neg for Decimal {
    type Output = Decimal;

    fn neg(self) -> Decimal {
        if self.is_zero() {
            self
        } else {
            Decimal {
                negative: !self.negative,
                ..self
            }
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let sign = |d: &Decimal| {
            if d.is_zero() {
                0
            } else if d.negative {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal if self.is_zero() => Ordering::Equal,
            Ordering::Equal if self.negative => other.compare_magnitudes(*self),
            Ordering::Equal => self.compare_magnitudes(*other),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<i64> for Decimal {
    fn from(value: i64) -> Decimal {
        Decimal::from(value as i128)
    }
}

impl From<i128> for Decimal {
    fn from(value: i128) -> Decimal {
        Decimal::from_parts(value < 0, U256::from_u128(value.unsigned_abs()), 0)
    }
}

impl From<u128> for Decimal {
    fn from(value: u128) -> Decimal {
        Decimal::from_parts(false, U256::from_u128(value), 0)
    }
}

/// Plain notation, as few digits as the value needs: `-1.25`, `0.001`, `1500`.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.coefficient.to_decimal_string();
        let sign = if self.negative { "-" } else { "" };
        if self.exponent >= 0 {
            return write!(f, "{sign}{digits}{}", "0".repeat(self.exponent as usize));
        }
        let fraction_len = self.exponent.unsigned_abs() as usize;
        if digits.len() > fraction_len {
            let (whole, fraction) = digits.split_at(digits.len() - fraction_len);
            write!(f, "{sign}{whole}.{fraction}")
        } else {
            write!(
                f,
                "{sign}0.{}{digits}",
                "0".repeat(fraction_len - digits.len())
            )
        }
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a text is not a decimal number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDecimalError(String);

impl fmt::Display for ParseDecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseDecimalError {}

/// Reads `[-+]digits[.digits][e[-+]digits]` with at most 76 significant digits.
impl FromStr for Decimal {
    type Err = ParseDecimalError;

    fn from_str(text: &str) -> Result<Decimal, ParseDecimalError> {
        let error = |why: &str| ParseDecimalError(format!("{why}: {text:?}"));
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => {
                let exponent: i64 = unsigned[at + 1..]
                    .parse()
                    .map_err(|_| error("bad exponent"))?;
                (&unsigned[..at], exponent)
            }
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(error("not a decimal number"));
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        // Trailing zeros go into the exponent: they are not significant.
        let significant = digits.trim_end_matches('0');
        if significant.len() > EXACT_DIGITS as usize {
            return Err(error("more than 76 significant digits"));
        }
        let exponent = exponent - fraction.len() as i64 + (digits.len() - significant.len()) as i64;
        if exponent.abs() > MAX_PARSED_EXPONENT {
            return Err(error("exponent out of range"));
        }
        let mut coefficient = U256::ZERO;
        for digit in significant.bytes() {
            coefficient = coefficient
                .checked_mul_u64(10)
                .and_then(|c| c.checked_add(U256::from_u128((digit - b'0') as u128)))
                .ok_or_else(|| error("too many digits"))?;
        }
        Ok(Decimal::from_parts(negative, coefficient, exponent as i32))
    }
}

/// Serialised as its text, so no digit is lost to a JSON reader's doubles.
impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        struct DecimalVisitor;

        impl Visitor<'_> for DecimalVisitor {
            type Value = Decimal;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal number, preferably as a string")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Decimal, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Decimal, E> {
                Ok(Decimal::from(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Decimal, E> {
                Ok(Decimal::from(value as u128))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Decimal, E> {
                // `{:e}` is the shortest text that reads back as the same double.
                format!("{value:e}").parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(DecimalVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn text_round_trips_and_normalises() {
        for text in [
            "0",
            "1",
            "-1.25",
            "0.001",
            "1500",
            "79796507913179.33347660124688298171",
        ] {
            assert_eq!(d(text).to_string(), text);
        }
        assert_eq!(d("2.50"), d("2.5"));
        assert_eq!(d("-0.0"), Decimal::ZERO);
        assert_eq!(d("1.5e3").to_string(), "1500");
        assert_eq!(d("15E-4").to_string(), "0.0015");
        assert!("1.2.3".parse::<Decimal>().is_err());
        assert!("".parse::<Decimal>().is_err());
        assert!("1e".parse::<Decimal>().is_err());
        assert!(format!("1{}", "0".repeat(76)).parse::<Decimal>().is_ok()); // trailing zeros
        assert!("1".repeat(77).parse::<Decimal>().is_err());
    }

    #[test]
    fn division_rounds_to_34_digits_half_even() {
        let one = Decimal::ONE;
        assert_eq!(
            one.div_rounded(d("3")).unwrap().to_string(),
            format!("0.{}", "3".repeat(34))
        );
        assert_eq!(
            d("2").div_rounded(d("3")).unwrap().to_string(),
            format!("0.{}7", "6".repeat(33))
        );
        assert_eq!(d("1.5").div_rounded(d("2")).unwrap(), d("0.75"));
        assert_eq!(d("-7").div_rounded(d("2")).unwrap(), d("-3.5"));
        assert_eq!(one.div_rounded(Decimal::ZERO), None);
        // A tie at the 35th digit goes to the even neighbour…
        let tie = d(&format!("1{}5", "0".repeat(33))); // 35 digits, ends in 5
        assert_eq!(
            tie.div_rounded(one).unwrap(),
            d(&format!("1{}e1", "0".repeat(33)))
        );
        let odd_tie = d(&format!("1{}15", "0".repeat(32)));
        assert_eq!(
            odd_tie.div_rounded(one).unwrap(),
            d(&format!("1{}2e1", "0".repeat(32)))
        );
        // …but a remainder beyond the tie rounds up.
        let above = d(&format!("1{}5", "0".repeat(33))) + d("0.001");
        assert_eq!(
            above.div_rounded(one).unwrap(),
            d(&format!("1{}1e1", "0".repeat(32)))
        );
        // A 38-digit divisor takes the slow path of the wide division.
        let big = d("12345678901234567890123456789012345678");
        assert_eq!(big.div_rounded(big).unwrap(), one);
    }

    #[test]
    fn products_round_and_sums_stay_exact() {
        let a = d("0.9999413783703139011056845831168394");
        let t = d("1361214092893736184");
        // 53 exact digits, rounded to 34.
        assert_eq!(
            a.mul_rounded(t).to_string(),
            "1361134296305259068.376936720702135"
        );
        assert_eq!(
            a.mul_exact(t).to_string(),
            "1361134296305259068.3769367207021349938032996714968496"
        );
        // An epoch timestamp minus a 34-digit product keeps all 35 digits.
        let difference = t - a.mul_rounded(t);
        assert_eq!(difference.to_string(), "79796588477115.623063279297865");
        assert_eq!(difference + a.mul_rounded(t), t);
        assert_eq!(d("0.1") + d("0.2"), d("0.3"));
        assert_eq!(d("1e40") - d("1e40"), Decimal::ZERO);
        // Far apart beyond 76 digits, the small operand is rounded away.
        assert_eq!(d("1e80") + d("1e-80"), d("1e80"));
    }

    #[test]
    fn ordering_and_integers() {
        let mut values: Vec<Decimal> = ["3", "-2.5", "0", "2.49", "-2.51", "1e5", "99999.9"]
            .iter()
            .map(|t| d(t))
            .collect();
        values.sort();
        let texts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        assert_eq!(
            texts,
            ["-2.51", "-2.5", "0", "2.49", "3", "99999.9", "100000"]
        );
        assert_eq!(d("-2.5").floor(), d("-3"));
        assert_eq!(d("2.5").floor(), d("2"));
        assert_eq!(d("2.5").round(), d("2"));
        assert_eq!(d("3.5").round(), d("4"));
        assert_eq!(d("-3.5").round(), d("-4"));
        assert_eq!(d("2.500001").round(), d("3"));
        assert_eq!(d("1.6e18").to_i128(), Some(1_600_000_000_000_000_000));
        assert_eq!(d("1.5").to_i128(), None);
        assert_eq!(d("-0.75").to_f64(), -0.75);
    }

    #[test]
    fn serde_uses_text() {
        let value = d("-1.758620689655172413793103448275862");
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, "\"-1.758620689655172413793103448275862\"");
        assert_eq!(serde_json::from_str::<Decimal>(&json).unwrap(), value);
        assert_eq!(serde_json::from_str::<Decimal>("12").unwrap(), d("12"));
        assert_eq!(serde_json::from_str::<Decimal>("0.5").unwrap(), d("0.5"));
    }
}

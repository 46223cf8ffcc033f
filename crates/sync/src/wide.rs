//! Unsigned 256-bit integers: the room the decimal arithmetic needs for its intermediate
//! values (a 38-digit by 38-digit product, a 76-digit exact sum, a dividend scaled to give
//! 36 quotient digits) and the transform's fixed-point products. Only the handful of
//! operations those uses need.

use std::cmp::Ordering;

/// An unsigned integer below 2^256, as four 64-bit limbs, least significant first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct U256 {
    limbs: [u64; 4],
}

/// 10^19, the largest power of ten in a `u64`: decimal work is done in chunks of it.
const TEN_POW_19: u64 = 10_000_000_000_000_000_000;

impl U256 {
    pub(crate) const ZERO: U256 = U256 { limbs: [0; 4] };
    pub(crate) const ONE: U256 = U256 {
        limbs: [1, 0, 0, 0],
    };

    pub(crate) fn from_u128(value: u128) -> U256 {
        U256 {
            limbs: [value as u64, (value >> 64) as u64, 0, 0],
        }
    }

    pub(crate) fn to_u128(self) -> Option<u128> {
        if self.limbs[2] == 0 && self.limbs[3] == 0 {
            Some(self.limbs[0] as u128 | (self.limbs[1] as u128) << 64)
        } else {
            None
        }
    }

    /// The low 128 bits.
    pub(crate) fn low_u128(self) -> u128 {
        self.limbs[0] as u128 | (self.limbs[1] as u128) << 64
    }

    pub(crate) fn is_zero(self) -> bool {
        self.limbs == [0; 4]
    }

    pub(crate) fn is_odd(self) -> bool {
        self.limbs[0] & 1 == 1
    }

    /// The full product of two 128-bit numbers (it always fits).
    pub(crate) fn product(a: u128, b: u128) -> U256 {
        let a = [a as u64, (a >> 64) as u64];
        let b = [b as u64, (b >> 64) as u64];
        let mut limbs = [0u64; 4];
        for (i, &ai) in a.iter().enumerate() {
            let mut carry = 0u128;
            for (j, &bj) in b.iter().enumerate() {
                let t = ai as u128 * bj as u128 + limbs[i + j] as u128 + carry;
                limbs[i + j] = t as u64;
                carry = t >> 64;
            }
            limbs[i + 2] = carry as u64;
        }
        U256 { limbs }
    }

    pub(crate) fn checked_mul_u64(self, factor: u64) -> Option<U256> {
        let mut limbs = [0u64; 4];
        let mut carry = 0u128;
        for (out, &limb) in limbs.iter_mut().zip(&self.limbs) {
            let t = limb as u128 * factor as u128 + carry;
            *out = t as u64;
            carry = t >> 64;
        }
        (carry == 0).then_some(U256 { limbs })
    }

    pub(crate) fn checked_add(self, other: U256) -> Option<U256> {
        let mut limbs = [0u64; 4];
        let mut carry = false;
        for (i, out) in limbs.iter_mut().enumerate() {
            let (s, c1) = self.limbs[i].overflowing_add(other.limbs[i]);
            let (s, c2) = s.overflowing_add(carry as u64);
            *out = s;
            carry = c1 || c2;
        }
        (!carry).then_some(U256 { limbs })
    }

    /// `self − other`; the caller guarantees `self ≥ other`.
    pub(crate) fn minus(self, other: U256) -> U256 {
        debug_assert!(self >= other);
        let mut limbs = [0u64; 4];
        let mut borrow = false;
        for (i, out) in limbs.iter_mut().enumerate() {
            let (d, b1) = self.limbs[i].overflowing_sub(other.limbs[i]);
            let (d, b2) = d.overflowing_sub(borrow as u64);
            *out = d;
            borrow = b1 || b2;
        }
        U256 { limbs }
    }

    pub(crate) fn divrem_u64(self, divisor: u64) -> (U256, u64) {
        let mut quotient = [0u64; 4];
        let mut rem = 0u128;
        for i in (0..4).rev() {
            let t = rem << 64 | self.limbs[i] as u128;
            quotient[i] = (t / divisor as u128) as u64;
            rem = t % divisor as u128;
        }
        (U256 { limbs: quotient }, rem as u64)
    }

    /// Division by a 128-bit divisor: bit by bit when it does not fit in 64 bits. Slow next to
    /// the hardware division, but it runs a few times per qualifying match, not per event.
    pub(crate) fn divrem_u128(self, divisor: u128) -> (U256, u128) {
        if let Ok(small) = u64::try_from(divisor) {
            let (q, r) = self.divrem_u64(small);
            return (q, r as u128);
        }
        let mut quotient = [0u64; 4];
        let mut rem = 0u128;
        for bit in (0..256).rev() {
            // `rem < divisor < 2^128` before the shift; the bit shifted out is the 129th bit
            // of the true remainder, and when it is set the remainder surely exceeds the divisor.
            let overflow = rem >> 127 == 1;
            rem = rem << 1 | (self.limbs[bit / 64] >> (bit % 64) & 1) as u128;
            if overflow || rem >= divisor {
                rem = rem.wrapping_sub(divisor);
                quotient[bit / 64] |= 1 << (bit % 64);
            }
        }
        (U256 { limbs: quotient }, rem)
    }

    /// `self >> bits`, for `bits < 256`.
    pub(crate) fn shr(self, bits: u32) -> U256 {
        let (words, rest) = ((bits / 64) as usize, bits % 64);
        let mut limbs = [0u64; 4];
        for (i, out) in limbs.iter_mut().enumerate() {
            let Some(&low) = self.limbs.get(i + words) else {
                break;
            };
            let high = self.limbs.get(i + words + 1).copied().unwrap_or(0);
            *out = if rest == 0 {
                low
            } else {
                low >> rest | high << (64 - rest)
            };
        }
        U256 { limbs }
    }

    /// 10^n, for n ≤ 77 (10^77 < 2^256).
    #[cfg(test)]
    pub(crate) fn pow10(n: u32) -> U256 {
        debug_assert!(n <= 77);
        let mut value = U256::ONE;
        let mut left = n;
        while left > 0 {
            let step = left.min(19);
            value = value
                .checked_mul_u64(10u64.pow(step))
                .expect("10^n, n ≤ 77, fits 256 bits");
            left -= step;
        }
        value
    }

    /// `self × 10^n`, or `None` past 2^256.
    pub(crate) fn checked_scale10(self, n: u32) -> Option<U256> {
        let mut value = self;
        let mut left = n;
        while left > 0 {
            let step = left.min(19);
            value = value.checked_mul_u64(10u64.pow(step))?;
            left -= step;
        }
        Some(value)
    }

    /// Number of decimal digits (1 for zero).
    pub(crate) fn decimal_digits(self) -> u32 {
        let mut value = self;
        let mut digits = 0;
        loop {
            if let Some(small) = value.to_u128() {
                return digits + small.checked_ilog10().map_or(1, |l| l + 1);
            }
            value = value.divrem_u64(TEN_POW_19).0;
            digits += 19;
        }
    }

    /// The decimal digits, most significant first, without leading zeros ("0" for zero).
    pub(crate) fn to_decimal_string(self) -> String {
        let mut chunks = Vec::new();
        let mut value = self;
        while !matches!(value.to_u128(), Some(v) if v < TEN_POW_19 as u128) {
            let (q, r) = value.divrem_u64(TEN_POW_19);
            chunks.push(r);
            value = q;
        }
        let mut text = value.to_u128().unwrap_or(0).to_string();
        for chunk in chunks.iter().rev() {
            text.push_str(&format!("{chunk:019}"));
        }
        text
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &U256) -> Ordering {
        self.limbs.iter().rev().cmp(other.limbs.iter().rev())
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &U256) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_and_division_round_trip() {
        let a = u128::MAX - 12345;
        let b = 0xdead_beef_cafe_f00d_1234_5678_9abc_def0u128;
        let p = U256::product(a, b);
        let (q, r) = p.divrem_u128(b);
        assert_eq!((q.to_u128(), r), (Some(a), 0));
        let (q, r) = p.checked_add(U256::from_u128(7)).unwrap().divrem_u128(a);
        assert_eq!((q.to_u128(), r), (Some(b), 7));
    }

    #[test]
    fn decimal_digits_and_text() {
        assert_eq!(U256::ZERO.decimal_digits(), 1);
        assert_eq!(U256::ZERO.to_decimal_string(), "0");
        for n in [0, 1, 18, 19, 20, 38, 39, 57, 76, 77] {
            let p = U256::pow10(n);
            assert_eq!(p.decimal_digits(), n + 1);
            assert_eq!(
                p.to_decimal_string(),
                format!("1{}", "0".repeat(n as usize))
            );
            let below = p.minus(U256::from_u128(1));
            assert_eq!(below.decimal_digits(), n.max(1));
        }
    }

    #[test]
    fn shifts_and_order() {
        let p = U256::product(1 << 100, 1 << 100);
        assert_eq!(p.shr(200).to_u128(), Some(1));
        assert_eq!(p.shr(73).to_u128(), Some(1 << 127));
        assert!(p > U256::from_u128(u128::MAX));
        assert_eq!(p.minus(p), U256::ZERO);
    }
}

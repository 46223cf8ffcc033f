//! Numbers as the stub schema writes them: decimal integers, floats, comma-separated arrays.
//!
//! Surrounding whitespace is allowed (an XML parser normalises tabs and newlines in attribute
//! values to spaces, so a hand-wrapped value arrives padded); anything else that is not the
//! number is refused rather than read as 0, as Trace Compass would.

/// A decimal integer of 64 bits, optionally signed (`timestamp`, `long`).
pub(crate) fn long(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

/// A decimal integer of 32 bits (`int`), widened.
pub(crate) fn int(text: &str) -> Option<i64> {
    text.trim().parse::<i32>().ok().map(i64::from)
}

/// A float (`double`): decimal, exponent, `inf`, `NaN`.
pub(crate) fn double(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}

/// Comma-separated integers (`intArray` when `int32`, else `longArray`), appended to `out`; an
/// empty or blank value is the empty array. On a bad element `out` is left as it was.
pub(crate) fn array(text: &str, int32: bool, out: &mut Vec<i64>) -> bool {
    if text.trim().is_empty() {
        return true;
    }
    let before = out.len();
    for item in text.split(',') {
        let v = if int32 { int(item) } else { long(item) };
        match v {
            Some(v) => out.push(v),
            None => {
                out.truncate(before);
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(long("15"), Some(15));
        assert_eq!(long(" -7 "), Some(-7));
        assert_eq!(long("+3"), Some(3));
        assert_eq!(long("9223372036854775807"), Some(i64::MAX));
        assert_eq!(long("9223372036854775808"), None);
        assert_eq!(long("1.5"), None);
        assert_eq!(long(""), None);
        assert_eq!(long("0x10"), None);
        assert_eq!(int("2147483647"), Some(2147483647));
        assert_eq!(int("2147483648"), None);
        assert_eq!(int("-2147483648"), Some(-2147483648));
    }

    #[test]
    fn doubles() {
        assert_eq!(double("1.5"), Some(1.5));
        assert_eq!(double("-2e3"), Some(-2000.0));
        assert!(double("NaN").unwrap().is_nan());
        assert_eq!(double("1,5"), None);
    }

    #[test]
    fn arrays() {
        let mut out = vec![9];
        assert!(array("1, 2,3", true, &mut out));
        assert_eq!(out, [9, 1, 2, 3]);
        assert!(array("", false, &mut out));
        assert_eq!(out.len(), 4);
        assert!(!array("1,,2", false, &mut out));
        assert!(!array("1,3000000000", true, &mut out));
        assert_eq!(out, [9, 1, 2, 3]);
        assert!(array("3000000000", false, &mut out));
        assert_eq!(out[4], 3_000_000_000);
    }
}

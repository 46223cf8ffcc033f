//! Little-endian reads at any byte offset, each one bounds-checked: perf.data aligns nothing
//! (feature sections start at odd offsets, pipe-mode records have odd sizes), and every offset
//! comes from the file, so a read past the end is `None`, never a panic.

use virtflow_trace::error::PerfError;
use virtflow_trace::TraceError;

#[inline]
pub(super) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

#[inline]
pub(super) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

#[inline]
pub(super) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The bytes of `b` up to its first NUL (all of it when there is none).
pub(super) fn until_nul(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

/// A failure at a byte offset of the file, before the file's path is attached.
#[derive(Debug)]
pub(super) struct Failure {
    pub offset: u64,
    pub kind: PerfError,
}

impl Failure {
    pub fn new(offset: u64, kind: PerfError) -> Failure {
        Failure { offset, kind }
    }

    pub fn at(self, path: &std::path::Path) -> TraceError {
        TraceError::new(path, self.offset, self.kind)
    }
}

/// A `u64` from the file as a `usize`, saturating: whatever it is compared with (a length of
/// bytes really there) is smaller, so a saturated value fails that check as the real one would.
#[inline]
pub(super) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

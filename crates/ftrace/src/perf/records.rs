//! Records: how the data section is cut into records, and what the side-band ones hold.
//!
//! A record starts with `perf_event_header { u32 type; u16 misc; u16 size }`, `size`
//! counting the header. Two types carry a payload after that size, counted by a field of the
//! record: `HEADER_TRACING_DATA` (the tracing data, in pipe mode) and `AUXTRACE` (hardware
//! trace data). Everything is checked against the bytes there: a record that does not fit is
//! an error at its offset, and nothing is read from it.

use virtflow_trace::error::{PerfError, PerfRecordType};

use super::bytes::{u16_at, u32_at, u64_at, until_nul};

// Kernel record types (`PERF_RECORD_*`).
pub(super) const LOST: u32 = 2;
pub(super) const COMM: u32 = 3;
pub(super) const EXIT: u32 = 4;
pub(super) const FORK: u32 = 7;
pub(super) const SAMPLE: u32 = 9;
pub(super) const LOST_SAMPLES: u32 = 13;
/// The last kernel record type perf 6.x defines (`AUX_OUTPUT_HW_ID`; 22, deferred call chains,
/// is newer and skipped like any other known side-band record).
const LAST_KERNEL: u32 = 22;

// perf's own record types (`PERF_RECORD_HEADER_*`, …).
pub(super) const HEADER_ATTR: u32 = 64;
pub(super) const HEADER_EVENT_TYPE: u32 = 65;
pub(super) const HEADER_TRACING_DATA: u32 = 66;
pub(super) const HEADER_BUILD_ID: u32 = 67;
pub(super) const FINISHED_ROUND: u32 = 68;
pub(super) const AUXTRACE: u32 = 71;
pub(super) const HEADER_FEATURE: u32 = 80;
pub(super) const COMPRESSED: u32 = 81;
pub(super) const COMPRESSED2: u32 = 83;
/// The last type perf defines (`COMPRESSED2`, 2025; 84–86 are newer still and unconfirmed).
const LAST_USER: u32 = 86;

/// Whether perf defines the type: others are counted as unknown.
pub(super) fn is_known(kind: u32) -> bool {
    (1..=LAST_KERNEL).contains(&kind) || (HEADER_ATTR..=LAST_USER).contains(&kind)
}

/// One record found in a byte region.
#[derive(Clone, Copy, Debug)]
pub(super) struct Framed {
    pub kind: u32,
    /// The record's size (header included), without any payload after it.
    pub len: usize,
    /// Where the next record starts, after the payload if any.
    pub next: usize,
}

/// What is at a position of a region of records.
pub(super) enum Frame {
    Record(Framed),
    /// The region ends here.
    End,
    /// The region ends inside a record (or its payload): the error if nothing follows.
    Incomplete(PerfError),
}

/// Frames the record at `pos` of `region` (`pos ≤ region.len()`). A size below the header's
/// is an error whatever follows.
#[inline]
pub(super) fn frame(region: &[u8], pos: usize) -> Result<Frame, PerfError> {
    let left = region.len() - pos;
    if left == 0 {
        return Ok(Frame::End);
    }
    let (Some(kind), Some(size)) = (u32_at(region, pos), u16_at(region, pos + 6)) else {
        return Ok(Frame::Incomplete(PerfError::RecordHeaderPastEnd {
            left: left as u64,
        }));
    };
    let record_type = PerfRecordType(kind);
    if size < 8 {
        return Err(PerfError::RecordSizeTooSmall { record_type, size });
    }
    let len = size as usize;
    if len > left {
        return Ok(Frame::Incomplete(PerfError::RecordPastEnd {
            record_type,
            size: size as u64,
            left: left as u64,
        }));
    }
    let payload = match kind {
        HEADER_TRACING_DATA => Some(u32_at(region, pos + 8).map(u64::from)),
        AUXTRACE => Some(u64_at(region, pos + 8)),
        _ => None,
    };
    let next = match payload {
        None => pos + len,
        Some(None) => {
            return Err(PerfError::RecordTooShort {
                record_type,
                size: size as u64,
                needed: if kind == AUXTRACE { 16 } else { 12 },
            })
        }
        Some(Some(payload)) => {
            let total = (len as u64).saturating_add(payload);
            if total > left as u64 {
                return Ok(Frame::Incomplete(PerfError::RecordPastEnd {
                    record_type,
                    size: total,
                    left: left as u64,
                }));
            }
            pos + total as usize
        }
    };
    Ok(Frame::Record(Framed { kind, len, next }))
}

/// The bytes a side-band record's own fields take after its header (before any trailer).
pub(super) fn body_len(kind: u32) -> usize {
    match kind {
        // u32 pid, tid; then the name, of at least one byte.
        COMM => 9,
        // u32 pid, ppid, tid, ptid; u64 time.
        FORK | EXIT => 24,
        // u64 id, lost.
        LOST => 16,
        // u64 lost.
        LOST_SAMPLES => 8,
        _ => 0,
    }
}

/// The events lost, of a `LOST` or `LOST_SAMPLES` record (checked by the caller to hold them).
pub(super) fn lost_count(kind: u32, rec: &[u8]) -> u64 {
    let at = if kind == LOST { 16 } else { 8 };
    u64_at(rec, at).unwrap_or(0)
}

/// The thread name of a `COMM` record whose trailer takes `trailer` bytes.
pub(super) fn comm_name(rec: &[u8], trailer: usize) -> &[u8] {
    let end = rec.len().saturating_sub(trailer).max(16);
    until_nul(rec.get(16..end).unwrap_or(&[]))
}

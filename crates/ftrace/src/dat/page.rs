//! Decoder of one ftrace ring-buffer page (a "sub-buffer"), as the kernel writes it and
//! trace-cmd copies it into the per-CPU data of a `.dat` file.
//!
//! A page starts with a header: a 64-bit timestamp, then a `long` commit word whose low 27 bits
//! are the length of the record area and whose bits 31 and 30 say that events were missed
//! before this page and that their count is stored right after the record area. Each record
//! starts with a 32-bit word: `type_len` (5 bits) and `time_delta` (27 bits), the order of the
//! two depending on the byte order:
//!
//! - `type_len` 1..=28: a data record of `type_len * 4` bytes;
//! - 0: a data record whose length (plus 4) is in the next 32-bit word;
//! - 29: padding (or a discarded event) whose length is in the next word;
//! - 30: a time extend: the next word holds the upper bits of a delta;
//! - 31: an absolute time stamp (upper bits in the next word, the top 5 bits of the running
//!   time kept).
//!
//! [`PageCursor`] walks the records of one page, keeping the running timestamp, and yields the
//! data records only; it never panics on damaged input, it returns the [`Damage`]: where, and
//! which [`PageError`].

use crate::format::HeaderPage;
use crate::record::Endian;
use virtflow_trace::error::PageError;

const TYPE_PADDING: u32 = 29;
const TYPE_TIME_EXTEND: u32 = 30;
const TYPE_TIME_STAMP: u32 = 31;
const COMMIT_MASK: u64 = (1 << 27) - 1;
const MISSED_EVENTS: u64 = 1 << 31;
const MISSED_STORED: u64 = 1 << 30;
/// Bits of the running time an absolute time stamp does not carry.
const TS_MSB: u64 = 0xf8 << 56;

/// How the pages of a file are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLayout {
    pub endian: Endian,
    /// Size of the commit word (the kernel's `long`): 4 or 8.
    pub commit_size: usize,
    pub commit_offset: usize,
    /// Where records start in the page.
    pub data_offset: usize,
}

impl PageLayout {
    pub fn new(header: &HeaderPage, endian: Endian) -> Self {
        PageLayout {
            endian,
            commit_size: header.commit_size as usize,
            commit_offset: header.commit_offset as usize,
            data_offset: header.data_offset as usize,
        }
    }
}

/// Events the kernel could not record before this page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    None,
    /// Some were lost, the count is unknown.
    Unknown,
    Count(u64),
}

/// Damage found in a page, at `offset` bytes from the page start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    pub offset: usize,
    pub kind: PageError,
}

/// A cursor over the data records of one page.
#[derive(Clone, Debug)]
pub struct PageCursor {
    /// Running timestamp (raw clock units).
    pub ts: u64,
    /// Position of the next record header, from the page start.
    pos: usize,
    /// End of the record area, from the page start.
    end: usize,
    pub missed: Missed,
    endian: Endian,
}

/// A data record: its timestamp and where its bytes are in the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRecord {
    pub ts: u64,
    pub start: usize,
    pub len: usize,
}

impl PageCursor {
    /// Reads the page header. `page` is the whole page.
    pub fn new(page: &[u8], layout: &PageLayout) -> Result<PageCursor, Damage> {
        let bad = |offset: usize, kind: PageError| Damage { offset, kind };
        let ts = crate::record::read_uint(page, 0, 8, layout.endian)
            .ok_or(bad(0, PageError::ShortHeader))?;
        let commit = crate::record::read_uint(
            page,
            layout.commit_offset,
            layout.commit_size,
            layout.endian,
        )
        .ok_or(bad(layout.commit_offset, PageError::ShortHeader))?;
        let size = (commit & COMMIT_MASK) as usize;
        let end = layout.data_offset + size;
        if end > page.len() {
            return Err(bad(
                layout.commit_offset,
                PageError::CommitBeyondPage {
                    commit_size: size as u64,
                    capacity: page.len().saturating_sub(layout.data_offset) as u64,
                },
            ));
        }
        let missed = if commit & MISSED_EVENTS != 0 {
            if commit & MISSED_STORED != 0 {
                match crate::record::read_uint(page, end, layout.commit_size, layout.endian) {
                    Some(n) => Missed::Count(n),
                    None => Missed::Unknown,
                }
            } else {
                Missed::Unknown
            }
        } else {
            Missed::None
        };
        Ok(PageCursor {
            ts,
            pos: layout.data_offset,
            end,
            missed,
            endian: layout.endian,
        })
    }

    /// True when the page holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// The next data record, `None` at the end of the page.
    #[inline]
    pub fn next_record(&mut self, page: &[u8]) -> Result<Option<PageRecord>, Damage> {
        loop {
            if self.pos >= self.end {
                return Ok(None);
            }
            let at = self.pos;
            let word = self.word(page, at)?;
            let (type_len, delta) = match self.endian {
                Endian::Little => (word & 0x1f, (word >> 5) as u64),
                Endian::Big => (word >> 27, (word & ((1 << 27) - 1)) as u64),
            };
            match type_len {
                1..=28 => {
                    let len = type_len as usize * 4;
                    let start = at + 4;
                    self.advance_to(start, len, at)?;
                    self.ts = self.ts.wrapping_add(delta);
                    return Ok(Some(PageRecord {
                        ts: self.ts,
                        start,
                        len,
                    }));
                }
                0 => {
                    let raw = self.word(page, at + 4)? as usize;
                    if raw < 4 {
                        return Err(Damage {
                            offset: at,
                            kind: PageError::RecordLengthTooSmall { length: raw as u32 },
                        });
                    }
                    let len = (raw - 4 + 3) & !3;
                    let start = at + 8;
                    self.advance_to(start, len, at)?;
                    self.ts = self.ts.wrapping_add(delta);
                    return Ok(Some(PageRecord {
                        ts: self.ts,
                        start,
                        len,
                    }));
                }
                TYPE_PADDING => {
                    if delta == 0 {
                        // A null padding fills the rest of the page.
                        self.pos = self.end;
                        return Ok(None);
                    }
                    let len = self.word(page, at + 4)? as usize;
                    self.advance_to(at + 4, len, at)?;
                    self.ts = self.ts.wrapping_add(delta);
                }
                TYPE_TIME_EXTEND | TYPE_TIME_STAMP => {
                    let upper = self.word(page, at + 4)? as u64;
                    let value = (upper << 27).wrapping_add(delta);
                    self.advance_to(at + 8, 0, at)?;
                    if type_len == TYPE_TIME_STAMP {
                        self.ts = value | (self.ts & TS_MSB);
                    } else {
                        self.ts = self.ts.wrapping_add(value);
                    }
                }
                _ => unreachable!("type_len has 5 bits"),
            }
        }
    }

    #[inline]
    fn word(&self, page: &[u8], at: usize) -> Result<u32, Damage> {
        if at + 4 > self.end {
            return Err(Damage {
                offset: at,
                kind: PageError::HeaderBeyondCommit,
            });
        }
        Ok(crate::record::read_uint(page, at, 4, self.endian).unwrap_or(0) as u32)
    }

    #[inline]
    fn advance_to(&mut self, start: usize, len: usize, header_at: usize) -> Result<(), Damage> {
        let next = start.checked_add(len).filter(|&n| n <= self.end);
        match next {
            Some(n) => {
                self.pos = n;
                Ok(())
            }
            None => Err(Damage {
                offset: header_at,
                kind: PageError::RecordBeyondCommit {
                    length: len as u64,
                    commit_end: self.end as u64,
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> PageLayout {
        PageLayout {
            endian: Endian::Little,
            commit_size: 8,
            commit_offset: 8,
            data_offset: 16,
        }
    }

    fn page(records: &[u32], flags: u64, stored: Option<u64>) -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        p[0..8].copy_from_slice(&1000u64.to_le_bytes());
        let size = records.len() as u64 * 4;
        p[8..16].copy_from_slice(&(size | flags).to_le_bytes());
        for (i, w) in records.iter().enumerate() {
            p[16 + i * 4..20 + i * 4].copy_from_slice(&w.to_le_bytes());
        }
        if let Some(n) = stored {
            let at = 16 + size as usize;
            p[at..at + 8].copy_from_slice(&n.to_le_bytes());
        }
        p
    }

    #[test]
    fn every_record_kind() {
        let hdr = |type_len: u32, delta: u32| type_len | (delta << 5);
        let words = [
            hdr(1, 5),    // data, 4 bytes
            0xdead,       //
            hdr(30, 3),   // time extend: + (1 << 27) + 3
            1,            //
            hdr(29, 2),   // padding: its length word and one more, +2
            8,            //
            0,            //
            hdr(0, 1),    // long data: length word 12 -> 8 bytes
            12,           //
            7,            //
            8,            //
            hdr(31, 100), // absolute time stamp 100
            0,            //
            hdr(2, 0),    // data, 8 bytes
            1,            //
            2,            //
        ];
        let p = page(&words, MISSED_EVENTS | MISSED_STORED, Some(42));
        let mut c = PageCursor::new(&p, &layout()).unwrap();
        assert_eq!(c.missed, Missed::Count(42));
        let r = c.next_record(&p).unwrap().unwrap();
        assert_eq!((r.ts, r.start, r.len), (1005, 20, 4));
        let r = c.next_record(&p).unwrap().unwrap();
        assert_eq!(r.ts, 1005 + (1 << 27) + 3 + 2 + 1);
        assert_eq!((r.start, r.len), (16 + 9 * 4, 8));
        let r = c.next_record(&p).unwrap().unwrap();
        assert_eq!((r.ts, r.len), (100, 8));
        assert_eq!(c.next_record(&p).unwrap(), None);
    }

    #[test]
    fn damage_is_an_error() {
        // A 28-word record in a 2-word page.
        let p = page(&[28, 0], 0, None);
        let mut c = PageCursor::new(&p, &layout()).unwrap();
        let e = c.next_record(&p).unwrap_err();
        assert_eq!(
            e,
            Damage {
                offset: 16,
                kind: PageError::RecordBeyondCommit {
                    length: 112,
                    commit_end: 24
                }
            }
        );
        // A commit size larger than the page.
        let mut p = page(&[], 0, None);
        p[8..16].copy_from_slice(&5000u64.to_le_bytes());
        assert_eq!(
            PageCursor::new(&p, &layout()).unwrap_err(),
            Damage {
                offset: 8,
                kind: PageError::CommitBeyondPage {
                    commit_size: 5000,
                    capacity: 4080
                }
            }
        );
        assert_eq!(
            PageCursor::new(&p[..10], &layout()).unwrap_err().kind,
            PageError::ShortHeader
        );
        let p = page(&[], MISSED_EVENTS, None);
        assert_eq!(
            PageCursor::new(&p, &layout()).unwrap().missed,
            Missed::Unknown
        );
    }
}

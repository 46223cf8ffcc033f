//! One per-CPU stream of a buffer: its pages, read straight from the mapped file or
//! decompressed one chunk at a time, and the next data record in them.

use super::bytes::{beyond_end, DatResult, Failure, Reader};
use super::compress::{Codec, Decompressor, MAX_UNCOMPRESSED};
use super::page::{Missed, PageCursor, PageLayout, PageRecord};
use crate::format::EventFormat;
use crate::record::{Endian, IntSlot};
use virtflow_trace::error::{DatError, PageError};

/// Where the pages come from.
enum Pages {
    /// Uncompressed pages in the file: the next page starts at `pos`, the data ends at `end`
    /// (clamped to the file length; `declared_end` is where the file header says it ends).
    Plain {
        pos: usize,
        end: usize,
        declared_end: u64,
    },
    /// Compressed chunks: `chunks_left` more chunks, the next one's header at `next_chunk`.
    /// `buf` holds the current chunk, decompressed; the next page in it starts at `pos`.
    Chunked {
        next_chunk: u64,
        chunks_left: u32,
        chunk_offset: u64,
        buf: Vec<u8>,
        pos: usize,
        decompressor: Decompressor,
    },
}

/// How the stream maps a record's `common_type` to a class, and tells a class no one reads.
pub struct TypeLookup {
    /// Where `common_type` is (from any format: the common fields are the same in all).
    id: IntSlot,
    /// By event id: its class, with [`OUTSIDE_INTEREST`] set when it is outside the
    /// interest; `u32::MAX` when the id has no format. One load per record tells both, in
    /// the loop that passes over the records of unread classes.
    class_of_id: Vec<u32>,
}

/// The mark, in [`TypeLookup`]'s table, of a class outside the interest.
const OUTSIDE_INTEREST: u32 = 1 << 31;

impl TypeLookup {
    pub fn new(formats: &[EventFormat]) -> TypeLookup {
        let id = formats
            .iter()
            .find_map(|f| f.field("common_type"))
            .map_or(IntSlot::new(0, 2, false), |f| {
                IntSlot::new(f.offset, u8::try_from(f.size).unwrap_or(0), false)
            });
        let max_id = formats
            .iter()
            .map(|f| f.id)
            .filter(|&id| id < 1 << 20)
            .max()
            .unwrap_or(0);
        let mut class_of_id = vec![u32::MAX; max_id as usize + 1];
        for (i, f) in formats.iter().enumerate() {
            if let Some(slot) = class_of_id.get_mut(f.id as usize) {
                *slot = i as u32;
            }
        }
        TypeLookup { id, class_of_id }
    }

    /// Marks the classes outside `interest` (by class: whether it is read; `None`: all are).
    pub fn set_interest(&mut self, interest: Option<&[bool]>) {
        for c in self.class_of_id.iter_mut().filter(|c| **c != u32::MAX) {
            let class = *c & !OUTSIDE_INTEREST;
            let read = interest.is_none_or(|w| w.get(class as usize).copied().unwrap_or(false));
            *c = if read {
                class
            } else {
                class | OUTSIDE_INTEREST
            };
        }
    }

    /// The class of record `rec`, and whether it is outside the interest.
    #[inline(always)]
    fn class(&self, rec: &[u8], endian: Endian) -> Option<(u32, bool)> {
        let id = self.id.read(rec, endian)?;
        let c = *self.class_of_id.get(usize::try_from(id).ok()?)?;
        (c != u32::MAX).then_some((c & !OUTSIDE_INTEREST, c & OUTSIDE_INTEREST != 0))
    }
}

/// The next thing a stream has to offer.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub raw_ts: u64,
    pub record: PageRecord,
    pub class: u32,
}

pub struct CpuStream {
    pub cpu: u32,
    pub buffer: u32,
    pages: Pages,
    page_size: usize,
    layout: PageLayout,
    /// The current page, as a range of the file (plain) or of the chunk buffer.
    page_start: usize,
    page_end: usize,
    /// File offset of the current page (plain) or chunk (compressed), for errors.
    page_file_offset: u64,
    cursor: Option<PageCursor>,
    /// A loss the current page announced, not yet attached to a record.
    page_missed: Missed,
    /// The next record, and the loss to report before it.
    pub pending: Option<Pending>,
    pub lost_before_pending: Option<Missed>,
    /// Events whose id has no format (skipped).
    pub unknown_events: u64,
    /// Events passed over because nobody reads their class, and the raw time of the latest.
    pub skipped: u64,
    pub skipped_last_raw: Option<u64>,
    /// Whether the stream has made pending an event of a class nobody reads: the first is
    /// announced (see [`virtflow_trace::EventSource::set_interest`]).
    pub shown: bool,
    /// Bytes of the file this stream has gone through, and its total, for progress.
    pub consumed: u64,
    pub total: u64,
    /// File offset up to which the pages it has moved past were handed back to the kernel
    /// (plain pages only; see [`CpuStream::passed_pages`]).
    released: usize,
}

impl CpuStream {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        file: &[u8],
        cpu: u32,
        buffer: u32,
        offset: u64,
        size: u64,
        compressed: Option<Codec>,
        page_size: usize,
        layout: PageLayout,
    ) -> DatResult<CpuStream> {
        let pages = match compressed {
            None => {
                let declared_end = offset.saturating_add(size);
                let end = declared_end.min(file.len() as u64) as usize;
                Pages::Plain {
                    pos: (offset as usize).min(end),
                    end,
                    declared_end,
                }
            }
            Some(codec) => {
                let (chunks_left, next_chunk) = if size == 0 {
                    (0, offset)
                } else {
                    let mut r = Reader::new(file, 0, layout.endian, "chunk table");
                    if offset > file.len() as u64 {
                        return Err(beyond_end(format!("CPU {cpu} data"), offset, file.len()));
                    }
                    r.set_pos(offset as usize);
                    (r.u32()?, offset + 4)
                };
                Pages::Chunked {
                    next_chunk,
                    chunks_left,
                    chunk_offset: offset,
                    buf: Vec::new(),
                    pos: 0,
                    decompressor: Decompressor::new(codec),
                }
            }
        };
        Ok(CpuStream {
            cpu,
            buffer,
            pages,
            page_size,
            layout,
            page_start: 0,
            page_end: 0,
            page_file_offset: offset,
            cursor: None,
            page_missed: Missed::None,
            pending: None,
            lost_before_pending: None,
            unknown_events: 0,
            skipped: 0,
            skipped_last_raw: None,
            shown: false,
            consumed: 0,
            total: size,
            released: (offset as usize).min(file.len()),
        })
    }

    /// The current page's bytes.
    #[inline]
    pub fn page<'a>(&'a self, file: &'a [u8]) -> &'a [u8] {
        match &self.pages {
            Pages::Plain { .. } => &file[self.page_start..self.page_end],
            Pages::Chunked { buf, .. } => &buf[self.page_start..self.page_end],
        }
    }

    /// Where the current page starts: in the file (`true`), when its pages are read in
    /// place, else in the decompressed chunk ([`CpuStream::chunk`]).
    #[inline]
    pub fn page_at(&self) -> (bool, usize) {
        (matches!(self.pages, Pages::Plain { .. }), self.page_start)
    }

    /// The decompressed chunk holding the current page (empty when pages are read in place).
    #[inline]
    pub fn chunk(&self) -> &[u8] {
        match &self.pages {
            Pages::Plain { .. } => &[],
            Pages::Chunked { buf, .. } => buf,
        }
    }

    /// The file range of the pages this stream has moved past since the last call, once it
    /// spans at least `min` bytes (plain pages only): the reader hands it back to the kernel
    /// so that mapped pages do not pile up as the trace grows.
    pub fn passed_pages(&mut self, min: usize) -> Option<(usize, usize)> {
        match self.pages {
            Pages::Plain { .. } if self.page_start >= self.released.saturating_add(min) => {
                let range = (self.released, self.page_start);
                self.released = self.page_start;
                Some(range)
            }
            _ => None,
        }
    }

    /// The damage at byte `at` of the current page: at its place in the file, or, for a
    /// decompressed page, at its chunk and its place in the chunk's data.
    #[cold]
    fn damaged(&self, at: usize, error: PageError) -> Failure {
        let (offset, chunk_position) = match &self.pages {
            Pages::Plain { .. } => (self.page_file_offset + at as u64, None),
            Pages::Chunked { .. } => (self.page_file_offset, Some((self.page_start + at) as u64)),
        };
        Failure::new(
            offset,
            DatError::Page {
                cpu: self.cpu,
                chunk_position,
                error,
            },
        )
    }

    /// Moves to the next page; false at the end of the stream.
    fn next_page(&mut self, file: &[u8]) -> DatResult<bool> {
        let page_size = self.page_size;
        match &mut self.pages {
            Pages::Plain {
                pos,
                end,
                declared_end,
            } => {
                if *pos >= *end && (*end as u64) >= *declared_end {
                    return Ok(false);
                }
                if *pos + page_size > *end {
                    if (*end as u64) < *declared_end {
                        return Err(Failure::new(
                            *end as u64,
                            DatError::CpuDataTruncated {
                                cpu: self.cpu,
                                declared_end: *declared_end,
                            },
                        ));
                    }
                    // A partial page at the end of the data: the writer stopped mid-page.
                    return Err(Failure::new(
                        *pos as u64,
                        DatError::PartialPage {
                            cpu: self.cpu,
                            size: (*end - *pos) as u64,
                            compressed: false,
                        },
                    ));
                }
                self.page_start = *pos;
                self.page_end = *pos + page_size;
                self.page_file_offset = *pos as u64;
                *pos += page_size;
                self.consumed += page_size as u64;
                Ok(true)
            }
            Pages::Chunked {
                next_chunk,
                chunks_left,
                chunk_offset,
                buf,
                pos,
                decompressor,
            } => {
                if *pos >= buf.len() {
                    if *chunks_left == 0 {
                        return Ok(false);
                    }
                    let mut r = Reader::new(file, 0, self.layout.endian, "compressed chunk");
                    if *next_chunk > file.len() as u64 {
                        let what = format!("a compressed chunk of CPU {}", self.cpu);
                        return Err(beyond_end(what, *next_chunk, file.len()));
                    }
                    r.set_pos(*next_chunk as usize);
                    let csize = r.u32()? as usize;
                    let usize_ = r.u32()? as usize;
                    if usize_ > MAX_UNCOMPRESSED {
                        return Err(Failure::new(
                            *next_chunk,
                            DatError::ImplausibleUncompressedSize {
                                part: "chunk",
                                size: usize_ as u64,
                            },
                        ));
                    }
                    let input = r.bytes(csize).map_err(|_| {
                        let what =
                            format!("the compressed chunk of CPU {} ({csize} bytes)", self.cpu);
                        beyond_end(what, *next_chunk, file.len())
                    })?;
                    decompressor
                        .decompress(input, buf, usize_)
                        .map_err(|e| Failure::new(*next_chunk, e))?;
                    *chunk_offset = *next_chunk;
                    *next_chunk = r.offset();
                    *chunks_left -= 1;
                    *pos = 0;
                    self.consumed += 8 + csize as u64;
                    if buf.is_empty() {
                        return Ok(*chunks_left > 0);
                    }
                }
                if *pos + page_size > buf.len() {
                    return Err(Failure::new(
                        *chunk_offset,
                        DatError::PartialPage {
                            cpu: self.cpu,
                            size: (buf.len() - *pos) as u64,
                            compressed: true,
                        },
                    ));
                }
                self.page_start = *pos;
                self.page_end = *pos + page_size;
                self.page_file_offset = *chunk_offset;
                *pos += page_size;
                Ok(true)
            }
        }
    }

    /// Reads up to the next data record of a known class and makes it `pending` (`None` at
    /// the end of the stream). Under an interest (marked in `types`), records of the classes
    /// outside it are passed over, but the first, and one that comes right after a loss
    /// (which it bounds).
    pub fn fill(&mut self, file: &[u8], types: &TypeLookup) -> DatResult<()> {
        self.pending = None;
        loop {
            if let Some(cursor) = &mut self.cursor {
                // The page once, then its records until one is announced.
                let page = match &self.pages {
                    Pages::Plain { .. } => &file[self.page_start..self.page_end],
                    Pages::Chunked { buf, .. } => &buf[self.page_start..self.page_end],
                };
                loop {
                    let record = match cursor.next_record(page) {
                        Ok(Some(record)) => record,
                        Ok(None) => break,
                        Err(e) => {
                            self.cursor = None;
                            return Err(self.damaged(e.offset, e.kind));
                        }
                    };
                    let rec = &page[record.start..record.start + record.len];
                    let Some((class, unwanted)) = types.class(rec, self.layout.endian) else {
                        self.unknown_events += 1;
                        continue;
                    };
                    if unwanted && self.page_missed == Missed::None {
                        if self.shown {
                            self.skipped += 1;
                            self.skipped_last_raw = Some(record.ts);
                            continue;
                        }
                        self.shown = true;
                    }
                    if self.page_missed != Missed::None {
                        self.lost_before_pending = Some(self.page_missed);
                        self.page_missed = Missed::None;
                    }
                    self.pending = Some(Pending {
                        raw_ts: record.ts,
                        record,
                        class,
                    });
                    return Ok(());
                }
                self.cursor = None;
            }
            if !self.next_page(file)? {
                return Ok(());
            }
            let page = self.page(file);
            match PageCursor::new(page, &self.layout) {
                Ok(c) => {
                    if c.missed != Missed::None {
                        self.page_missed = c.missed;
                    }
                    self.cursor = Some(c);
                }
                Err(e) => return Err(self.damaged(e.offset, e.kind)),
            }
        }
    }
}

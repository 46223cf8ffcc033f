//! `COMPRESSED` records (`perf record -z`): zstd data that decompresses to more records.
//!
//! perf compresses the ring buffers' contents with one zstd stream for the whole file (it
//! flushes, never ends a frame), so one decoder reads every compressed record in turn. Each
//! record decompresses into a chunk of its own, which lives while records held back for
//! ordering point into it. A record may be split between two compressed records: the
//! incomplete end of a chunk is copied to the start of the next (it is smaller than a record,
//! at most 64 KiB).
//!
//! Memory: one chunk is at most what one ring buffer holds (`HEADER_COMPRESSED`'s `mmap_len`,
//! at least [`MIN_CHUNK`]), never more than [`MAX_CHUNK`]; a compressed record that would
//! decompress to more is an error (no zstd bomb can make the reader allocate more), and the
//! decoder's window is limited to [`MAX_WINDOW_LOG`]. The chunks alive together are bounded
//! by the ordering's bound ([`super::order`]).

use std::collections::VecDeque;

use virtflow_trace::error::PerfError;
use zstd::stream::raw::{DParameter, Decoder, InBuffer, Operation, OutBuffer};

/// The smallest output a compressed record may have, whatever `mmap_len` says.
const MIN_CHUNK: usize = 1 << 20;
/// The largest, whatever `mmap_len` says.
pub(super) const MAX_CHUNK: usize = 64 << 20;
/// zstd's default limit (128 MiB windows), set explicitly.
const MAX_WINDOW_LOG: u32 = 27;
/// Output is produced in steps of this many bytes, so a chunk's buffer grows with its content
/// rather than being allocated at its limit.
const STEP: usize = 256 << 10;

/// Decompressed records, by chunk.
pub(super) struct Chunks {
    decoder: Option<Decoder<'static>>,
    /// The limit on one chunk's decompressed bytes (leftover included).
    limit: usize,
    list: VecDeque<Chunk>,
    /// The sequence number of `list[0]`.
    first: u32,
    /// Bytes held by all chunks.
    pub held: usize,
}

pub(super) struct Chunk {
    pub bytes: Vec<u8>,
    /// Records of this chunk held back or current.
    pub live: u32,
    /// Where its compressed record starts in the file, for errors.
    pub file_at: u64,
}

/// Sequence numbers of chunks wrap at 2^31 (they share a `u64` with an offset, see
/// [`super::order::Loc`]).
const SEQ_MASK: u32 = (1 << 31) - 1;

impl Chunks {
    pub fn new(mmap_len: Option<u32>) -> Chunks {
        let limit = mmap_len
            .map_or(MIN_CHUNK, |n| n as usize)
            .clamp(MIN_CHUNK, MAX_CHUNK);
        Chunks {
            decoder: None,
            limit,
            list: VecDeque::new(),
            first: 0,
            held: 0,
        }
    }

    /// The chunk of sequence number `seq`, if still held.
    #[inline]
    pub fn get(&self, seq: u32) -> Option<&Chunk> {
        self.list
            .get((seq.wrapping_sub(self.first) & SEQ_MASK) as usize)
    }

    /// The newest chunk, which scanning reads: its sequence number and bytes.
    pub fn newest(&self) -> Option<(u32, &[u8])> {
        let last = self.list.back()?;
        let seq = self.first.wrapping_add(self.list.len() as u32 - 1) & SEQ_MASK;
        Some((seq, &last.bytes))
    }

    /// Decompresses `input` (found at byte `file_at`) into a new chunk, after `leftover`, the
    /// incomplete record that ended the newest chunk. Returns the new chunk's sequence number.
    pub fn inflate(
        &mut self,
        input: &[u8],
        leftover: usize,
        file_at: u64,
    ) -> Result<u32, PerfError> {
        if self.decoder.is_none() {
            let mut d = Decoder::new().map_err(|e| PerfError::Decompression {
                message: e.to_string(),
            })?;
            d.set_parameter(DParameter::WindowLogMax(MAX_WINDOW_LOG))
                .map_err(|e| PerfError::Decompression {
                    message: e.to_string(),
                })?;
            self.decoder = Some(d);
        }
        let mut out = Vec::new();
        if leftover > 0 {
            if let Some(last) = self.list.back() {
                out.extend_from_slice(&last.bytes[last.bytes.len() - leftover..]);
            }
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(0); // unreachable: created above
        };
        let decompression = |e: std::io::Error| PerfError::Decompression {
            message: e.to_string(),
        };
        let too_large = PerfError::DecompressedTooLarge {
            limit: self.limit as u64,
        };
        let mut input = InBuffer::around(input);
        let input_len = input.src.len();
        loop {
            if out.len() >= self.limit {
                // Full: one more byte of output is one too many.
                let mut probe = [0u8; 1];
                let mut probe_out = OutBuffer::around(&mut probe[..]);
                decoder
                    .run(&mut input, &mut probe_out)
                    .map_err(decompression)?;
                if probe_out.pos() > 0 {
                    return Err(too_large);
                }
                break;
            }
            out.reserve_exact(STEP.min(self.limit - out.len()));
            let (before, read_before) = (out.len(), input.pos());
            let full = {
                let mut output = OutBuffer::around_pos(&mut out, before);
                decoder
                    .run(&mut input, &mut output)
                    .map_err(decompression)?;
                output.pos() == output.capacity()
            };
            if out.len() > self.limit {
                return Err(too_large);
            }
            let stalled = out.len() == before && input.pos() == read_before;
            // With the input consumed, output left unfilled means the decoder has flushed all.
            if (input.pos() == input_len && !full) || stalled {
                break;
            }
        }
        let seq = self.first.wrapping_add(self.list.len() as u32) & SEQ_MASK;
        self.held += out.len();
        self.list.push_back(Chunk {
            bytes: out,
            live: 0,
            file_at,
        });
        Ok(seq)
    }

    pub fn hold(&mut self, seq: u32) {
        let i = (seq.wrapping_sub(self.first) & SEQ_MASK) as usize;
        if let Some(c) = self.list.get_mut(i) {
            c.live += 1;
        }
    }

    /// A record of chunk `seq` was delivered: frees the chunks nothing points into any more
    /// (never the newest, which scanning may still read).
    pub fn release(&mut self, seq: u32) {
        let i = (seq.wrapping_sub(self.first) & SEQ_MASK) as usize;
        if let Some(c) = self.list.get_mut(i) {
            c.live = c.live.saturating_sub(1);
        }
        self.drop_dead();
    }

    /// Frees the oldest chunks while nothing points into them.
    pub fn drop_dead(&mut self) {
        while self.list.len() > 1 && self.list.front().is_some_and(|c| c.live == 0) {
            let c = self.list.pop_front().expect("checked");
            self.held -= c.bytes.len();
            self.first = self.first.wrapping_add(1) & SEQ_MASK;
        }
    }
}

//! Time order: records held back until no later record can come before them.
//!
//! `perf record` writes rounds: each pass over the per-CPU ring buffers appends what they
//! hold, CPU after CPU, then a `FINISHED_ROUND` record. Inside a round, records of different
//! CPUs interleave by blocks; across rounds perf guarantees that nothing in round N+2 is older
//! than the newest record of round N. So, as perf's `ordered_events` does, at the end of
//! round N every record not newer than the newest of round N-1 can be delivered: at most two
//! rounds are held back.
//!
//! What is held is not the records but [`Pending`] entries of 16 bytes (timestamp, where the
//! record is), sorted by timestamp, ties in file order. A round's entries
//! are sorted when it ends (a stable sort, which finds the per-CPU runs already in order) and
//! merged with what earlier rounds left.
//!
//! Bound: at most [`MAX_PENDING`] entries (16 MiB) are held, whatever the rounds. A file with
//! no `FINISHED_ROUND` (or rounds larger than that) gets a window instead: when the bound is
//! reached, the older half of what is held is delivered ([`Reorder::force`]), as perf does
//! when its queue is full. A record that then comes older than what was delivered is late:
//! the reader delivers it at the last delivered time and counts it (a warning in
//! `ReadStats`), rather than break the time order every analysis relies on.

/// Entries held at most (16 bytes each).
pub(super) const MAX_PENDING: usize = 1 << 20;

/// Entries a round's buffer is first given room for (1 MiB): a few rounds of a
/// `perf record` with its default ring buffers.
const ROUND_CAPACITY: usize = 1 << 16;

/// Where a held record is: an offset of the file, or of a decompressed chunk
/// ([`super::compressed`]): bit 63 set, then the chunk's sequence number (31 bits), then the
/// offset in the chunk (32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Loc(u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    File(usize),
    Chunk { seq: u32, at: usize },
}

impl Loc {
    const IN_CHUNK: u64 = 1 << 63;

    pub fn file(at: usize) -> Loc {
        Loc(at as u64 & !Self::IN_CHUNK)
    }

    pub fn chunk(seq: u32, at: usize) -> Loc {
        Loc(Self::IN_CHUNK | (seq as u64 & 0x7fff_ffff) << 32 | (at as u64 & 0xffff_ffff))
    }

    #[inline]
    pub fn place(self) -> Place {
        if self.0 & Self::IN_CHUNK == 0 {
            Place::File(self.0 as usize)
        } else {
            Place::Chunk {
                seq: ((self.0 >> 32) & 0x7fff_ffff) as u32,
                at: (self.0 & 0xffff_ffff) as usize,
            }
        }
    }
}

/// A record held back: its time and where it is (its event and class are found again from
/// the record when it is delivered, which costs less than holding them).
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub ts: u64,
    pub loc: Loc,
}

/// The held-back records and the rule that releases them.
#[derive(Default)]
pub(super) struct Reorder {
    /// Sorted by timestamp; entries before `head` were delivered.
    ready: Vec<Pending>,
    head: usize,
    /// Entries of the round being read, in file order.
    incoming: Vec<Pending>,
    /// Entries not newer than this may be delivered.
    limit: u64,
    /// The newest timestamp read before the current round began.
    newest_before_round: u64,
    /// The newest timestamp read so far.
    newest: u64,
}

impl Reorder {
    #[inline]
    pub fn push(&mut self, p: Pending) {
        self.newest = self.newest.max(p.ts);
        if self.incoming.capacity() == 0 {
            // One allocation for a typical round rather than a dozen while it grows: each new
            // block of the allocator's is memory the kernel must clear first, which costs more
            // than sorting the round.
            self.incoming.reserve(ROUND_CAPACITY);
        }
        self.incoming.push(p);
    }

    /// Entries held.
    #[inline]
    pub fn len(&self) -> usize {
        self.ready.len() - self.head + self.incoming.len()
    }

    /// The next entry, if its time has come.
    #[inline]
    pub fn pop(&mut self) -> Option<Pending> {
        let p = *self.ready.get(self.head)?;
        if p.ts > self.limit {
            return None;
        }
        self.head += 1;
        Some(p)
    }

    /// `FINISHED_ROUND`: what is not newer than the newest record of the rounds before this
    /// one may go.
    pub fn end_round(&mut self) {
        self.merge();
        self.limit = self.limit.max(self.newest_before_round);
        self.newest_before_round = self.newest;
    }

    /// No more records: everything may go.
    pub fn end_all(&mut self) {
        self.merge();
        self.limit = u64::MAX;
    }

    /// The bound is reached: the older half may go.
    pub fn force(&mut self) {
        self.merge();
        let held = &self.ready[self.head..];
        if let Some(middle) = held.get(held.len().saturating_sub(1) / 2) {
            self.limit = self.limit.max(middle.ts);
        }
    }

    /// Sorts the round's entries and merges them after those still held (which come first
    /// among equal timestamps: they were read earlier), in place, from the back.
    fn merge(&mut self) {
        if self.incoming.is_empty() {
            return;
        }
        self.incoming.sort_by_key(|p| p.ts);
        if self.head > 0 {
            self.ready.drain(..self.head);
            self.head = 0;
        }
        let held = self.ready.len();
        if held == 0 {
            // The first round, or all delivered: the round's buffer becomes the queue.
            std::mem::swap(&mut self.ready, &mut self.incoming);
            return;
        }
        if self.ready[held - 1].ts <= self.incoming[0].ts {
            // Nothing to interleave (a file already in order).
            self.ready.append(&mut self.incoming);
            return;
        }
        self.ready.extend_from_slice(&self.incoming);
        let (mut i, mut j, mut k) = (held, self.incoming.len(), self.ready.len());
        while j > 0 {
            k -= 1;
            if i > 0 && self.ready[i - 1].ts > self.incoming[j - 1].ts {
                self.ready[k] = self.ready[i - 1];
                i -= 1;
            } else {
                self.ready[k] = self.incoming[j - 1];
                j -= 1;
            }
        }
        self.incoming.clear();
    }
}

//! The file's bytes, and handing back to the kernel the mapped pages no record points into.
//!
//! Reading maps the whole file, and touching a page makes it part of the process's memory. The
//! records held back for ordering point into the stretches read last, so the file is followed
//! as stretches (one per round, see [`super::order`]) with a count of the records of each still
//! held or current; once the oldest stretches have none, their pages are released every MiB.
//! What stays resident is then the stretches of about two rounds, whatever the file's size.

use std::collections::VecDeque;

use memmap2::Mmap;

/// Bytes read past before they are handed back (one system call per this many).
const RELEASE_BYTES: usize = 1 << 20;

/// The file's bytes: mapped, held in memory (tests, fuzzing), or none (an empty file).
pub(super) enum FileBytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
    Empty,
}

impl FileBytes {
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
            FileBytes::Empty => &[],
        }
    }
}

/// A stretch of the file read between two round ends, and how many of its records are still
/// pointed to.
#[derive(Clone, Copy, Debug)]
struct Stretch {
    end: usize,
    live: u32,
}

/// The stretches of the file read and not yet released.
pub(super) struct Stretches {
    closed: VecDeque<Stretch>,
    /// Records held from the stretch being read.
    open_live: u32,
    released_to: usize,
}

impl Stretches {
    pub fn new(start: usize) -> Stretches {
        Stretches {
            closed: VecDeque::new(),
            open_live: 0,
            released_to: start,
        }
    }

    /// One more record of the stretch being read is held.
    #[inline]
    pub fn hold(&mut self) {
        self.open_live += 1;
    }

    /// The stretch being read ends at `end`.
    pub fn close(&mut self, end: usize, file: &FileBytes) {
        let live = std::mem::take(&mut self.open_live);
        match self.closed.back_mut() {
            // A stretch with nothing held joins the one before (the deque stays as short as
            // what is held).
            Some(s) if live == 0 => s.end = end,
            _ => self.closed.push_back(Stretch { end, live }),
        }
        self.release(file);
    }

    /// The held record at `at` is no longer pointed to.
    #[inline]
    pub fn let_go(&mut self, at: usize, file: &FileBytes) {
        // Usually the oldest stretch: found without a search.
        let i = match self.closed.front() {
            Some(s) if at < s.end => 0,
            _ => self.closed.partition_point(|s| s.end <= at),
        };
        if let Some(s) = self.closed.get_mut(i) {
            s.live = s.live.saturating_sub(1);
            if i == 0 && s.live == 0 {
                self.release(file);
            }
        }
    }

    /// Releases the oldest stretches nothing points into.
    fn release(&mut self, file: &FileBytes) {
        let mut upto = self.released_to;
        while let Some(s) = self.closed.front() {
            if s.live > 0 {
                break;
            }
            upto = upto.max(s.end);
            self.closed.pop_front();
        }
        if upto >= self.released_to + RELEASE_BYTES {
            if let FileBytes::Mapped(map) = file {
                release(map, self.released_to, upto);
            }
            self.released_to = upto;
        }
    }
}

/// Drops the mapped pages of `from..to` from this process's memory, rounded to 64 KiB (a
/// multiple of every common page size): they are read again from the file if touched.
#[cfg(unix)]
fn release(map: &Mmap, from: usize, to: usize) {
    const ALIGN: usize = 1 << 16;
    let (from, to) = (from & !(ALIGN - 1), (to & !(ALIGN - 1)).min(map.len()));
    if to > from {
        // SAFETY: the map is a read-only, shared file mapping (see `PerfSource::open`);
        // MADV_DONTNEED only drops its page-table entries, and a later read faults the same
        // bytes back in from the file, so no slice into the map ever sees different contents.
        // A failure only leaves the pages mapped.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
        };
    }
}

#[cfg(not(unix))]
fn release(_map: &Mmap, _from: usize, _to: usize) {}

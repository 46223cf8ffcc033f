//! Handing back to the kernel the mapped pages no record points into.
//!
//! Reading maps the whole file, and touching a page makes it part of the process's memory. The
//! records held back for ordering point into the stretches read last, so the file is followed
//! as stretches (one per round, see [`super::order`]) with a count of the records of each still
//! held or current; once the oldest stretches have none, their pages are released every MiB.
//! What stays resident is then the stretches of about two rounds, whatever the file's size.

use std::collections::VecDeque;

use crate::mapped::FileBytes;

/// Bytes read past before they are handed back (one system call per this many).
const RELEASE_BYTES: usize = 1 << 20;

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
            file.release(self.released_to, upto);
            self.released_to = upto;
        }
    }
}

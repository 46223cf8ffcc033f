//! A trace file's bytes, mapped, and the mapped pages a reader has moved past handed back to
//! the kernel: both binary readers (`.dat`, perf.data) decode records in place in the map and
//! keep their resident memory flat whatever the file's size.

use std::path::Path;

use memmap2::Mmap;
use virtflow_trace::TraceError;

/// The file's bytes: mapped, held in memory (tests, fuzzing), or none (an empty file, which
/// cannot be mapped).
pub(crate) enum FileBytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
    Empty,
}

impl FileBytes {
    /// Maps the file at `path`.
    pub fn open(path: &Path) -> Result<FileBytes, TraceError> {
        let f = std::fs::File::open(path).map_err(|e| TraceError::io(path, e))?;
        let len = f.metadata().map_err(|e| TraceError::io(path, e))?.len();
        if len == 0 {
            return Ok(FileBytes::Empty);
        }
        // SAFETY: the map is read-only and trace files are not modified while they are read;
        // should another process truncate the file, accesses could fault, as with any reader
        // mapping its input — an accepted risk for the speed of decoding records in place,
        // without copying the file.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| TraceError::io(path, e))?;
        Ok(FileBytes::Mapped(map))
    }

    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
            FileBytes::Empty => &[],
        }
    }

    /// Drops the mapped pages of `from..to` from this process's memory, rounded to 64 KiB (a
    /// multiple of every common page size): they are read again from the file if touched.
    /// Nothing to do for bytes not mapped.
    pub fn release(&self, from: usize, to: usize) {
        if let FileBytes::Mapped(map) = self {
            release(map, from, to);
        }
    }
}

#[cfg(unix)]
fn release(map: &Mmap, from: usize, to: usize) {
    const ALIGN: usize = 1 << 16;
    let (from, to) = (from & !(ALIGN - 1), (to & !(ALIGN - 1)).min(map.len()));
    if to > from {
        // SAFETY: the map is a read-only, shared file mapping (see `FileBytes::open`);
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

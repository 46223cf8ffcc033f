//! perf.data reader: the tracepoint samples of `perf record -e 'kvm:*' -e 'sched:*' …`, and
//! the side-band records that name threads.
//!
//! The file is mapped, never copied: records are found and decoded in place, and only what
//! time order needs is held in memory. Its parts, one per module:
//!
//! - [`header`]: the file header — magic, file or pipe mode (`perf record -o -`: a 16-byte
//!   header, then records that stand for the sections), the sections of file mode;
//! - [`open`]: what comes before the records — [`attrs`], the event attributes, the layout of
//!   each event's samples and side-band trailers, and which event a record belongs to (by its
//!   sample id); [`features`], the feature sections (`HEADER_HOSTNAME` and the other strings,
//!   exposed as [`PerfInfo`], the compression parameters, event names); [`tracing`], the
//!   tracing data's tracepoint formats, parsed with [`crate::format`];
//! - [`records`]: how the data is cut into records, and the side-band records' fields;
//! - [`compressed`]: `perf record -z`'s zstd records, decompressed one at a time into
//!   bounded chunks;
//! - [`order`]: the time order, from perf's rounds (`FINISHED_ROUND`), within a bound;
//! - [`pages`]: the file's bytes, and handing back the mapped pages nothing points into;
//! - [`classes`]: the event classes exposed and where their fields are read from;
//! - [`per_cpu`]: what is kept by CPU: whose first record outside the interest was held, to be
//!   announced; the latest record time, where a loss on it begins;
//! - [`source`]: [`PerfSource`], the cursor that reads ahead record by record and delivers
//!   events in time order.
//!
//! Classes: one per tracepoint recorded — the format's fields (decoded from the sample's
//! `PERF_SAMPLE_RAW` bytes with [`crate::record`]), then `common_comm` (the thread's name from
//! `COMM` records or the saved command lines), `common_tgid` (the sample's pid, its thread
//! group), and `perf_tid`/`perf_pid` (the sample's tid and pid, as perf's CTF conversion calls
//! them) — then the side-band classes `perf_comm` (`pid`, `tid`, `comm`), `perf_fork` and
//! `perf_exit` (`pid`, `ppid`, `tid`, `ptid`, `time`), named and laid out as the CTF
//! conversion does. Timestamps are `PERF_SAMPLE_TIME` (ns); records without one (perf's
//! synthesized records at the start) come at the time of the event before them. The CPU is
//! `PERF_SAMPLE_CPU`. `LOST` and `LOST_SAMPLES` records become [`virtflow_trace::Step::Lost`],
//! from the CPU's record before (its buffer lost what came after) to the record's time.
//! Under an interest, a sample or `EXIT` record outside it is passed over as it is read ahead
//! (its time and CPU read where they lie), but for each CPU's first; `COMM` and `FORK`
//! records are held for the names they give and passed over when delivered.
//! Samples of other events (not tracepoints, or without a format) are counted as unknown;
//! record types perf does not define are passed over by their size and counted.
//!
//! Memory does not grow with the file. It holds the attributes, formats and thread names
//! (growing with events and threads), and what ordering holds back: 16 bytes per record of
//! the last two rounds (at most [`order::MAX_PENDING`] records, 16 MiB, whatever the rounds),
//! the mapped pages those records lie in (the pages behind them are handed back every MiB),
//! and for a compressed file the decompressed chunks they point into (forced out past
//! 128 MiB; usually two rounds' worth). Two rounds are what perf read from its ring buffers in
//! two passes: typically a few MiB; 45 MiB for a 1 GB recording with 16 MiB buffers on a
//! loaded host.
//!
//! Damage: every size and offset read from the file is checked against the bytes there
//! before it is used, and nothing is allocated from a count the file gives. A file that
//! cannot be opened is a [`virtflow_trace::error::PerfError`] at the byte that is wrong; a
//! record that cannot be read ends reading: the events before it are delivered (everything
//! held back included), then the error, with the record's byte offset.

mod attrs;
mod bytes;
mod classes;
mod compressed;
mod features;
mod header;
mod open;
mod order;
mod pages;
mod per_cpu;
mod records;
mod source;
mod tracing;

pub use features::PerfInfo;
pub use source::PerfSource;

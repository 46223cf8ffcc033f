//! ftrace-family readers: trace-cmd `.dat`, ftrace text and `perf.data`, all offered through
//! the [`virtflow_trace::EventSource`] interface.
//!
//! Principal items:
//!
//! - [`format`]: parser of tracefs event `format` descriptions ([`format::EventFormat`],
//!   [`format::FormatField`], [`format::FieldLayout`]), shared by the `.dat` and perf readers.
//! - [`record`]: decoding a tracepoint record's fields with its format, without allocating
//!   ([`record::read_u64`], [`record::read_str`]…), and the [`virtflow_trace::EventClass`] of
//!   a format ([`record::event_class`]).
//! - [`DatSource`] (module [`dat`]): trace-cmd `.dat` v6/v7 reader.
//! - [`PerfSource`]: perf.data tracepoint samples, decoded with the formats the file carries.
//! - [`TextSource`] (module [`text`]): ftrace text — tracefs `trace`/`trace_pipe` and
//!   `trace-cmd report` output — parsed into the kernel's field names.
pub mod dat;
pub mod format;
mod mapped;
mod perf;
pub mod record;
pub mod text;

pub use dat::DatSource;
pub use perf::{PerfInfo, PerfSource};
pub use text::TextSource;

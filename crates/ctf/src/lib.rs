//! CTF reader: CTF 1.8 (TSDL metadata) and CTF 2 (JSON metadata) traces, one or many.
//!
//! Principal types and how they connect, in the order the data flows:
//!
//! - [`CtfSource`] (module `source`) is the [`EventSource`]: [`CtfSource::open`] finds every
//!   trace below a folder (a trace folder holds `metadata`; an LTTng session folder holds
//!   several), reads each trace's metadata, maps its stream files, and merges all streams in
//!   time order with a binary heap over per-stream cursors; its accessors read the current
//!   event's fields where its stream holds them.
//! - Metadata ([`read_metadata`], module `metadata`): the `metadata` file, plain or packetized,
//!   goes to one of two front ends, [`tsdl`] (CTF 1.8: a lexer and a parser) or [`ctf2`] (JSON
//!   text sequence), which both compile to one type representation, [`types::TraceClass`];
//!   [`resolve`] checks it and turns field locations (variant selectors, sequence lengths)
//!   into value slots. The reader then describes each trace, stream class and event class the
//!   way it reads them (compiled layouts, event classes by id, clocks); an event class's
//!   reading plans are compiled when its first event is read.
//! - [`layout`]: each root scope compiles to a [`layout::Layout`] — field offsets computed once
//!   when they do not depend on the data, else a way to pass over each field, a
//!   [`layout::SkipCode`] program for the variable-size ones — so an event is passed over by
//!   size and its fields are decoded lazily by the accessors, without allocating.
//! - [`plans`]: the per-event loop's fast paths for the common shapes, LTTng's kernel layout
//!   first: a [`plans::FastHeader`] reads a compact or large event header with direct loads at
//!   constant offsets and one bounds check; a class whose body (stream event context, context,
//!   payload) is fixed has a [`plans::FixedBody`], so its events are passed over with three
//!   additions; plain integers at fixed offsets have a [`plans::DirectInt`], so `u64`, `i64`
//!   and `value` read them without locating them through the layout; each field has its way of
//!   being visited.
//! - The stream cursor (module `stream`) opens packets in order and decodes each stream's next
//!   event ahead. Under an interest, it passes over the events of classes nobody reads inside
//!   the stream — all but the first on each CPU, and none in a stream whose events carry their
//!   own CPU — counting them and the latest time, and remembers which event ids it passes over
//!   and their body size, to pass over them from the header alone. Anything else takes the
//!   general walk, which also finds the errors.
//! - [`decode`] is the general decoder over the mapped bytes ([`bits`] reads the integers):
//!   [`decode::skip`] walks a field, [`decode::visit`] pushes it into a [`FieldVisitor`] —
//!   whole events ([`EventSource::visit_fields`]), compound values, and, through a
//!   [`virtflow_trace::ValueBuilder`], `value()` and `for_each_value()`.
//! - [`index`] reads LTTng packet index files: a stream's index is kept while every packet
//!   agrees with it (a disagreement drops it with a warning in [`ReadStats`]), and lets
//!   [`CtfSource::seek`] start each stream at the packet holding a timestamp.
//! - Memory stays flat whatever the trace's size: stream files are mapped, and the pages of
//!   packets already read are released as reading goes on.
//!
//! [`EventSource`]: virtflow_trace::EventSource
//! [`EventSource::visit_fields`]: virtflow_trace::EventSource::visit_fields
//! [`FieldVisitor`]: virtflow_trace::FieldVisitor
//! [`ReadStats`]: virtflow_trace::ReadStats

// `is_multiple_of` is newer than the workspace's minimum Rust version.
#![allow(clippy::manual_is_multiple_of, clippy::type_complexity)]

pub mod bits;
pub mod ctf2;
pub mod decode;
pub mod index;
pub mod layout;
mod metadata;
pub mod plans;
pub mod resolve;
mod source;
mod stream;
pub mod tsdl;
pub mod types;

pub use metadata::{parse_metadata, read_metadata};
pub use source::CtfSource;

//! Trace Compass XML stub traces as an [`EventSource`](virtflow_trace::EventSource).
//!
//! Trace Compass tests its analyses on small hand-written traces: a root `<trace>`, an optional
//! `<set_aspects>`, then `<event timestamp="NS" name="NAME">` elements whose `<field name value
//! type/>` children carry typed values (`int`, `long`, `string`, `double`, `intArray`,
//! `longArray`). The host of such a trace is its file name (`client.xml`), the CPU of an event
//! its `cpu` field. Reading them lets virtflow's analyses run on the very traces, and check the
//! very expectations, of Trace Compass's tests.
//!
//! Principal types:
//!
//! - [`XmlSource`]: the reader. [`XmlSource::open`] (or [`XmlSource::from_bytes`]) reads the
//!   file in one streaming pass of `quick-xml` (no document tree) into a compact store of
//!   events, then serves them in time order through the `EventSource` cursor. A class per event
//!   name, whose fields are the union of the fields its events name.
//! - [`FieldType`]: the six field types of the stub schema and the [`FieldKind`] each becomes.
//! - [`looks_like_stub`]: the format test the command line's detector calls on a file's head.
//! - [`testing`]: writes stub traces from tables of events ([`testing::StubEvent`]), plus the
//!   traces of Trace Compass's tests as tables ([`testing::traces`]), for this crate's tests
//!   and for the analyses' own.
//!
//! Failures are [`TraceError`](virtflow_trace::TraceError)s of kind
//! [`XmlError`](virtflow_trace::error::XmlError), with the byte offset of the bad element,
//! attribute value or byte. What the reader passes over (unknown elements, stray text, a
//! duplicate field) and the sorting of events written out of order are warnings in
//! [`ReadStats`](virtflow_trace::ReadStats), never silent.
//!
//! [`FieldKind`]: virtflow_trace::FieldKind

#![forbid(unsafe_code)]

mod attrs;
mod detect;
mod field_type;
mod notes;
mod number;
mod parse;
mod source;
mod store;
pub mod testing;

pub use detect::looks_like_stub;
pub use field_type::FieldType;
pub use source::XmlSource;

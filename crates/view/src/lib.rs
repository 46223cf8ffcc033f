//! virtflow's sinks for people: the web timeline served by `virtflow view`, the
//! self-contained HTML report, and the Perfetto export.
//!
//! Principal types:
//!
//! - [`StateKey`] (in [`states`]): the coarse state every sink colors and totals by, with its
//!   accessible palette; [`Labeler`] names detailed states (exit reasons, preemptors).
//! - [`TimelineIndex`] (in [`timeline`]): every vCPU's intervals as sorted arrays with
//!   block prefix sums, answering viewport queries in time proportional to the pixel width —
//!   intervals narrower than a pixel are merged into a bucket of their dominant state.
//! - [`Summary`] (in [`summary`]): the tables — state totals, exit reasons, wait causes,
//!   the preemption matrix, clusters.
//! - [`ViewData`] and [`server`]: the loopback HTTP server with its embedded assets
//!   (`web/`) and JSON API.
//! - [`report::write_html`]: the one-file HTML report.
//! - [`perfetto::encode`]: a Perfetto `Trace` (process track per VM, thread track per vCPU,
//!   state slices, steal and interrupt-rate counters).
//! - [`synthetic`]: deterministic models for tests and benchmarks.

#![forbid(unsafe_code)]

pub mod perfetto;
pub mod report;
pub mod server;
pub mod states;
pub mod summary;
pub mod synthetic;
pub mod timeline;

pub use server::ViewData;
pub use states::{Labeler, StateKey};
pub use summary::Summary;
pub use timeline::TimelineIndex;

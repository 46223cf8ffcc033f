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
//! - [`analyses::Analyses`]: what the overcommitment, memory and phase analyses found, shaped
//!   for the sinks — verdicts, steal split and steal over time, memory held over time (or why
//!   the trace cannot tell), phases.
//! - [`threads::Who`] names the execution graph's workers (vCPU, helper by role, host
//!   thread); [`paths::critical_path`] gives a thread's critical path over a window shaped
//!   for the timeline (pieces merged to the pixel, the threads it crosses, its arrows), and
//!   [`explain::explain`] puts a path in words an operator can act on;
//!   [`waits::longest_waits`] finds each VM's longest waits and explains their paths.
//! - [`ViewData`] and [`server`]: the loopback HTTP server with its embedded assets
//!   (`web/`) and JSON API (`/api/critical-path` among it).
//! - [`report::write_html`]: the one-file HTML report.
//! - [`perfetto::encode`]: a Perfetto `Trace` (process track per VM with its phases and its
//!   steal and memory counters, thread track per vCPU, state slices, wake-ups as flows).
//! - [`synthetic`]: deterministic models for tests and benchmarks, among them
//!   [`synthetic::story()`], whose every figure and critical path is known.
//!
//! A model reaches them whole: [`ViewData::new`] and [`report::write_html`] take its
//! intervals into the index and keep the rest (its graph) for the paths.

#![forbid(unsafe_code)]

pub mod analyses;
pub mod explain;
pub mod paths;
pub mod perfetto;
pub mod report;
pub mod server;
pub mod states;
pub mod summary;
pub mod synthetic;
pub mod threads;
pub mod timeline;
pub mod waits;

pub use server::ViewData;
pub use states::{Labeler, StateKey};
pub use summary::Summary;
pub use timeline::TimelineIndex;

/// A host's clock in words, for the report, the viewer and the Perfetto labels: `reference
/// clock`, or `clock synchronised (accurate, ±169 µs): t × 0.99994… + 79796507913179 ns`.
pub fn clock_words(c: &virtflow_model::HostClock) -> String {
    if c.reference {
        return "reference clock".to_string();
    }
    if c.quality == "off" {
        return "own clock (synchronisation off)".to_string();
    }
    let bound = c
        .bound_ns
        .map(|b| format!(", ±{}", report::duration(b.round() as u64)))
        .unwrap_or_default();
    format!(
        "clock synchronised ({}{bound}, {} messages): t × {} + {} ns",
        c.quality, c.matches, c.slope_exact, c.offset_exact
    )
}

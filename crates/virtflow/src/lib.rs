//! The `virtflow` command: CLI, trace-format detection, and the glue between readers,
//! analyses and sinks.
//!
//! Principal parts:
//!
//! - [`input`]: detects each TRACE argument's format (CTF folder, trace-cmd `.dat`,
//!   `perf.data`, ftrace text) and opens it as one [`virtflow_trace::EventSource`]; several
//!   arguments are merged in time order.
//! - [`experiment`]: the TRACE arguments as recordings of hosts — one host per recording,
//!   named from the trace — merged on one time line.
//! - [`timeline`]: the hosts' clocks on the reference host's — synchronised, cached, read from
//!   a `virtflow sync --json` file, or off.
//! - [`cmd`]: one module per subcommand, each with its `clap` arguments and a `run` function.
//!
//! The binary (`main.rs`) only parses the command line and dispatches to [`cmd`].

#![forbid(unsafe_code)]

pub mod cmd;
pub mod experiment;
pub mod features;
pub mod input;
pub mod timeline;

//! The execution graph of a traced system, and the critical path through it.
//!
//! Principal types:
//!
//! - [`Graph`]: one chain per worker and the links between workers. Workers are
//!   [`WorkerId`]s handed out by the graph; what they stand for (a host thread, a guest
//!   process, a vCPU, a per-CPU kernel pseudo-thread) and their names stay with the caller.
//! - [`Segment`]: one interval of a worker's chain, in a [`State`] (running, preempted,
//!   blocked, timer, disk, network…), optionally naming the worker responsible (`by`: the
//!   thread holding the CPU of a preempted worker…). Chains are appended in time order and
//!   searched by time.
//! - [`Link`]: a cause between two points ([`Endpoint`]: worker and time) — a wake-up, a fork,
//!   a message possibly between hosts and in flight meanwhile ([`LinkKind`]). Links are stored
//!   with their target.
//! - [`CriticalPath`]: for a worker and a window, what it was waiting for: its own chain,
//!   where a blocked interval ended by a link is replaced by the path of the link's source
//!   over that interval, recursively. A list of contiguous [`PathSegment`]s covering the
//!   window, with totals per state ([`StateTotals`]) and per worker ([`WorkerTime`]).
//!
//! The graph knows nothing of traces: a builder in the analysis crate feeds it from typed
//! events in its single time-ordered pass. The model is Trace Compass's OS execution graph
//! and bounded critical path (Giraldeau and Dagenais, "Wait analysis of distributed systems
//! using kernel tracing", IEEE TPDS 2016), stored as segments rather than vertices and
//! edges; the critical path's module says where it departs from Trace Compass on purpose.
//! [`synthetic`] generates graphs of any size whose critical path is known.
//!
//! ```
//! use virtflow_graph::{CriticalPath, Endpoint, Graph, Link, Segment, State};
//!
//! let mut graph = Graph::new();
//! let client = graph.add_worker();
//! let server = graph.add_worker();
//! // The client runs, then waits for the server's answer, which arrives 5 ns after it is sent.
//! graph.append(client, Segment::new(0, 10, State::Running))?;
//! graph.append(client, Segment::new(10, 40, State::Network))?;
//! graph.append(client, Segment::new(40, 50, State::Running))?;
//! graph.append(server, Segment::new(0, 35, State::Running))?;
//! graph.add_link(Link::message(Endpoint::new(server, 35), Endpoint::new(client, 40)))?;
//!
//! let path = CriticalPath::of(&graph, client)?;
//! let pieces: Vec<_> = path.segments.iter().map(|s| (s.worker, s.state, s.start, s.end)).collect();
//! assert_eq!(
//!     pieces,
//!     [
//!         (Some(client), State::Running, 0, 10),
//!         (Some(server), State::Running, 10, 35),
//!         (None, State::Network, 35, 40),
//!         (Some(client), State::Running, 40, 50),
//!     ]
//! );
//! assert_eq!(path.time_by_state().network, 5);
//! # Ok::<(), virtflow_graph::GraphError>(())
//! ```

#![forbid(unsafe_code)]

mod chain;
pub mod critical_path;
mod error;
mod graph;
mod link;
mod segment;
mod state;
pub mod synthetic;
mod worker;

pub use critical_path::{CriticalPath, PathSegment, WorkerTime};
pub use error::GraphError;
pub use graph::Graph;
pub use link::{Endpoint, Link, LinkKind};
pub use segment::Segment;
pub use state::{State, StateTotals};
pub use worker::WorkerId;

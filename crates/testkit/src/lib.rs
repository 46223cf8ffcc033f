//! What virtflow's tests share, so that each test suite does not carry its own copy.
//!
//! - [`ftrace`]: events as ftrace / trace-cmd / perf name them (`sched_switch` with
//!   `prev_pid`, `kvm_entry`, `common_pid`…), as [`virtflow_trace::VecEvent`]s for a
//!   [`virtflow_trace::VecSource`]: small host traces written as event lists, whose expected
//!   analysis a test derives by hand.
//! - [`shared_trace`], [`shared_traces`]: where the real traces of `../shared/traces` lie;
//!   [`for_each_shared_trace`], a check run on each of a list of them that is there;
//!   [`synctraces_experiment`], its two hosts exchanging TCP traffic as one source.
//! - [`reader`]: one real trace through every reading path of its reader (accessors,
//!   values, whole events, visits, interest, seek), advanced in lockstep: identical results.

#![forbid(unsafe_code)]

pub mod ftrace;
pub mod reader;
mod shared;

pub use shared::{for_each_shared_trace, shared_trace, shared_traces, synctraces_experiment};

//! Recording host traces for virtflow, with exactly the events its analyses use, and telling
//! what a host can record.
//!
//! Principal items:
//!
//! - [`Host`] (module [`host`]): what a machine offers — tracefs, tracepoints, permissions,
//!   LTTng, perf, trace-cmd, KVM — as plain data; [`Host::probe`] reads the real one.
//! - [`events::CATALOGUE`]: the recorded events in tracefs/perf and LTTng names, with what
//!   happens when one is absent; [`events::plan`] fits it to a host.
//! - [`Backend`] (module [`backend`]): LTTng, perf or tracefs; [`backend::select`] picks the
//!   best the host has and [`backend::buffer_kb_per_cpu`] sizes its buffers.
//! - [`record`] (module [`session`]): one recording — start the backend, run a command or
//!   wait (duration, Ctrl-C), show progress, stop, leave a readable trace.
//! - [`Diagnosis`] (module [`doctor`]): `virtflow doctor`'s checks, each with its fix.
//! - [`vmm`]: the VMM processes seen while recording (those holding KVM open) and their
//!   command lines, written into the trace (tracefs `trace_marker`) and beside it, so that
//!   `virtflow analyze` can name VMs by QEMU's `-name` and `-uuid`.
//!
//! Everything that decides is a function of a [`Host`], so it is tested with fake hosts;
//! only [`session`] and the backend modules touch the machine.

#![forbid(unsafe_code)]

pub mod backend;
pub mod doctor;
pub mod events;
pub mod host;
mod lttng;
mod pagerate;
mod perf;
pub mod session;
mod tracefs;
pub mod vmm;

use std::fmt;
use std::path::PathBuf;

pub use backend::{Backend, BackendChoice};
pub use doctor::Diagnosis;
pub use events::Level;
pub use host::Host;
pub use session::{record, stop_on_ctrl_c, RecordOptions, Recording};

/// Why recording failed. Each message names the thing and, where there is one, the fix.
#[derive(Debug)]
pub enum RecordError {
    /// No backend (or not the requested one) can run here; one entry per backend tried.
    BackendUnavailable(Vec<backend::Unavailable>),
    /// An essential tracepoint is absent on this kernel.
    TracepointAbsent { name: String, hint: String },
    /// tracefs could not be mounted.
    TracefsMount { dir: PathBuf, message: String },
    /// Another tracer is using the tracefs top-level buffer.
    TracefsBusy { dir: PathBuf, enabled: usize },
    /// The output's file system is full.
    DiskFull { path: PathBuf },
    /// A file could not be read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A tracing tool failed; `output` is the end of what it printed.
    Tool { tool: String, output: String },
    /// The output exists and is not something recording may replace.
    OutputExists { path: PathBuf },
    /// The command to trace could not be started.
    Command {
        command: String,
        source: std::io::Error,
    },
}

impl RecordError {
    /// Wraps an I/O error on `path`, telling a full disk apart.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> RecordError {
        let path = path.into();
        if source.raw_os_error() == Some(nix::libc::ENOSPC) {
            RecordError::DiskFull { path }
        } else {
            RecordError::Io { path, source }
        }
    }

    /// A tool's failure, or a full disk when its output says so or the output's file system
    /// has no room left (perf exits without a word when it cannot write its header).
    pub fn tool(tool: &str, output: &str, out_path: &std::path::Path) -> RecordError {
        let no_room = session::free_bytes(out_path).is_some_and(|free| free < 64 * 1024);
        if output.contains("No space left on device") || no_room {
            return RecordError::DiskFull {
                path: out_path.to_path_buf(),
            };
        }
        let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n");
        RecordError::Tool {
            tool: tool.to_string(),
            output: tail,
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::BackendUnavailable(why) => {
                write!(f, "cannot record on this host:")?;
                for u in why {
                    write!(f, "\n  - {u}")?;
                }
                write!(f, "\n  (`virtflow doctor` checks everything)")
            }
            RecordError::TracepointAbsent { name, hint } => write!(
                f,
                "tracepoint {name} is absent on this kernel ({}), and the analyses need it: {hint}",
                kernel_release()
            ),
            RecordError::TracefsMount { dir, message } => write!(
                f,
                "tracefs is not mounted and mounting it on {} failed: {message} \
                 (fix: mount -t tracefs nodev {}, as root)",
                dir.display(),
                dir.display()
            ),
            RecordError::TracefsBusy { dir, enabled } => write!(
                f,
                "tracefs at {} is in use: {enabled} events are already enabled by another tracer; \
                 stop it (or, if it is a leftover: echo 0 > {}/events/enable), or use --backend perf",
                dir.display(),
                dir.display()
            ),
            RecordError::DiskFull { path } => write!(
                f,
                "disk full while writing {}: free some space or record to another file system (-o)",
                path.display()
            ),
            RecordError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            RecordError::Tool { tool, output } => write!(f, "{tool} failed:\n{output}"),
            RecordError::OutputExists { path } => write!(
                f,
                "{} exists and is not empty: remove it or choose another -o",
                path.display()
            ),
            RecordError::Command { command, source } => {
                write!(f, "cannot run `{command}`: {source}")
            }
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordError::Io { source, .. } | RecordError::Command { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| "this kernel".to_string())
}

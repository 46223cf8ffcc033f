//! The streaming analyses of virtflow: from a host trace's raw events to the [`Model`] of what
//! every VM and vCPU did and why it waited.
//!
//! Principal items:
//!
//! - [`analyze`]: one pass over an [`EventSource`] in time order, with [`Options`]; returns the
//!   [`Model`]. Memory grows with the number of threads, never with the trace.
//! - [`Layout`] (module [`layout`]): maps each tracer's vocabulary (ftrace/perf, LTTng 2.x,
//!   older LTTng, perf's CTF conversion) onto [`TypedEvent`]s, resolved once per event class.
//! - The W2A state machine (module `w2a`): every thread's state — guest, hypervisor (by exit),
//!   user space, preempted (by whom), ready, waiting (by cause), unknown — with the two
//!   signals of a wait's cause (the waker; the vector injected at the next entry) and the
//!   behavioural evidence that ties helper threads to their VM.
//! - VM assembly (module `vms`): groups of threads become [`virtflow_model::Vm`]s with their
//!   exit-reason table, injected vectors, preemptors and wake-up latency.
//! - Guest processes and nested guests (module `guest`): each vCPU's guest time split by
//!   the CR3 loaded at entry, by L1/L2 when it runs its own guests, and by guest kernel/user
//!   from `guest_rip` at exit; it follows the W2A machine's guest state.
//! - [`exits`]: Intel VMX and AMD SVM exit-reason names.
//! - [`cmdline`]: VMs named by their VMM's command line (QEMU `-name`, `-uuid`), read from
//!   `print` markers in the trace or given in [`Options::vmm_cmdlines`].

#![forbid(unsafe_code)]

use std::sync::Arc;

use virtflow_model::Model;
use virtflow_trace::{EventSource, Step, TraceError};

pub mod cmdline;
mod devices;
pub mod exits;
mod guest;
mod histogram;
pub mod layout;
mod vms;
mod w2a;

pub use cmdline::VmmCommandLine;
pub use guest::GUEST_KERNEL_START;
pub use layout::{EventContext, IrqKind, IrqSource, Layout, TaskState, TypedEvent};
pub use w2a::fixed_vector_class;

/// Progress callback: `(bytes done, bytes in total)`, as the source estimates them.
pub type Progress = dyn Fn(u64, u64) + Send + Sync;

/// What [`analyze`] keeps and reports besides the totals.
#[derive(Clone, Default)]
pub struct Options {
    /// Keep every vCPU's state timeline ([`virtflow_model::Vcpu::intervals`]).
    pub intervals: bool,
    /// Called every few tens of thousands of events, when the source knows its progress.
    pub progress: Option<Arc<Progress>>,
    /// The names of the traces read, copied into [`Model::traces`].
    pub traces: Vec<String>,
    /// Command lines of the VMM processes, known from outside the trace (the recorder's
    /// sidecar file); they name the VMs of the same pid, as markers in the trace do.
    pub vmm_cmdlines: Vec<VmmCommandLine>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("intervals", &self.intervals)
            .field("progress", &self.progress.is_some())
            .field("traces", &self.traces)
            .field("vmm_cmdlines", &self.vmm_cmdlines.len())
            .finish()
    }
}

/// Events between two progress reports (a power of two).
const PROGRESS_EVERY: u64 = 1 << 16;

/// Reads `source` to its end once and returns what every VM on the host did.
pub fn analyze(source: &mut dyn EventSource, options: &Options) -> Result<Model, TraceError> {
    let layout = Layout::new(source.classes());
    let mut an = w2a::Analyzer::new(options.intervals);
    let mut guest = guest::GuestTracker::new(options.intervals);
    let mut devices = devices::Devices::default();
    let mut markers = cmdline::Markers::default();
    let mut n = 0u64;
    loop {
        match source.advance()? {
            Step::Event(header) => {
                n += 1;
                let sideband = layout.is_sideband(header.class);
                match layout.decode_names(&*source, &header, |tid| an.needs_name(tid)) {
                    // Written by a tool, not the kernel's doing: only its time counts.
                    Some((_, TypedEvent::Marker { text })) => {
                        markers.add(text);
                        an.tick(header.ts, header.cpu);
                    }
                    Some((_, ev)) if sideband => an.sideband(&ev),
                    Some((ctx, ev)) => {
                        an.event(&ctx, &ev);
                        let rip = match ev {
                            TypedEvent::KvmExit { .. } => layout.guest_rip(&*source, &header),
                            _ => None,
                        };
                        guest.event(&an, &ctx, &ev, rip);
                        devices.event(&an, &ctx, &ev);
                    }
                    None if sideband => {}
                    None => an.tick(header.ts, header.cpu),
                }
                if n & (PROGRESS_EVERY - 1) == 0 {
                    if let (Some(cb), Some((done, total))) = (&options.progress, source.progress())
                    {
                        cb(done, total);
                    }
                }
            }
            Step::Lost(lost) => {
                an.lost(&lost);
                guest.lost(&an, &lost);
            }
            Step::End => break,
        }
    }
    an.finish();
    guest.finish(&an);
    if let (Some(cb), Some((_, total))) = (&options.progress, source.progress()) {
        cb(total, total);
    }
    let hostname = source.hostname().unwrap_or_default();
    let (mut cmdlines, mut marker_problems) = markers.finish();
    cmdlines.extend(options.vmm_cmdlines.iter().cloned());
    let (host, mut vms, mut notes) = vms::build(&mut an, &devices, hostname, &cmdlines);
    guest.fill(&an, &mut vms);
    let read = source.stats();
    let mut front = Vec::new();
    if an.kvm_events == 0 {
        front.push("no KVM events in this trace".to_string());
    }
    if an.lost_notices > 0 || read.lost_events > 0 {
        front.push(format!(
            "the tracer lost events ({} notices, {} events counted): states are unknown from \
             each loss until the next event that shows them",
            read.lost_notices.max(an.lost_notices),
            read.lost_events
        ));
    }
    if an.unattributed > 0 {
        front.push(format!(
            "{} KVM entries/exits came before any event told which thread ran on their CPU \
             and were not attributed",
            an.unattributed
        ));
    }
    front.append(&mut notes);
    front.append(&mut marker_problems);
    Ok(Model {
        traces: options.traces.clone(),
        hosts: vec![host],
        vms,
        read,
        notes: front,
    })
}

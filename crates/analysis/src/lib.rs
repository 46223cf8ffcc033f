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
//! - [`sync`]: the hosts of an experiment on one clock — messages paired between hosts, a
//!   transform per host ([`synchronise`]), read before the analysis pass.
//! - [`cmdline`]: VMs named by their VMM's command line (QEMU `-name`, `-uuid`), read from
//!   `print` markers in the trace or given in [`Options::vmm_cmdlines`].

#![forbid(unsafe_code)]

use std::sync::Arc;

use host::HostPass;
use messages::Messages;
use virtflow_model::{Model, Timeline};
use virtflow_trace::{EventSource, ReadStats, TraceError};

mod activity;
pub mod cmdline;
mod devices;
pub mod exits;
mod graph;
mod guest;
mod guest_workers;
mod histogram;
mod host;
mod known;
pub mod layout;
mod memory;
mod messages;
mod overcommit;
mod pipeline;
mod series;
pub mod sync;
mod vms;
mod w2a;

pub use cmdline::VmmCommandLine;
pub use guest::GUEST_KERNEL_START;
pub use layout::{
    EventContext, IrqKind, IrqSource, Layout, MessageKey, PacketDir, TaskState, TypedEvent,
};
pub use sync::{synchronise, Synchronisation};
pub use w2a::fixed_vector_class;

/// Progress callback: `(bytes done, bytes in total)`, as the source estimates them.
pub type Progress = dyn Fn(u64, u64) + Send + Sync;

/// What [`analyze`] keeps and reports besides the totals.
#[derive(Clone, Default)]
pub struct Options {
    /// Keep every vCPU's state timeline ([`virtflow_model::Vcpu::intervals`]).
    pub intervals: bool,
    /// Keep every vCPU's, VM's and host's series per bucket of time (activity, steal,
    /// runnable vCPUs, memory): what windows of any length are computed from.
    pub series: bool,
    /// Build the execution graph of every thread (for critical paths).
    pub graph: bool,
    /// The hosts' names, when the caller knows better than the source (a trace that records
    /// no host name is named by its file); by host index.
    pub host_names: Vec<String>,
    /// Called every few tens of thousands of events, when the source knows its progress.
    pub progress: Option<Arc<Progress>>,
    /// The names of the traces read, copied into [`Model::traces`].
    pub traces: Vec<String>,
    /// Command lines of the VMM processes, known from outside the trace (the recorder's
    /// sidecar file); they name the VMs of the same pid, as markers in the trace do.
    pub vmm_cmdlines: Vec<VmmCommandLine>,
    /// The same, for one host of an experiment only (by its index in the source's hosts).
    pub host_vmm_cmdlines: Vec<(usize, VmmCommandLine)>,
    /// Read the source on this thread and analyse its events on another (`Some(true)`), or
    /// both on this one (`Some(false)`); `None`: on one for the first hundred thousand events
    /// or so, then on two when at least as much is left. Every way gives the same model.
    pub two_threads: Option<bool>,
    /// Do not pair the messages between hosts: no message links in the graph, no counts in
    /// the time line. What the benchmark compares the pairing and the clock fit with.
    pub without_messages: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("intervals", &self.intervals)
            .field("series", &self.series)
            .field("graph", &self.graph)
            .field("host_names", &self.host_names)
            .field("without_messages", &self.without_messages)
            .field("two_threads", &self.two_threads)
            .field("progress", &self.progress.is_some())
            .field("traces", &self.traces)
            .field("vmm_cmdlines", &self.vmm_cmdlines.len())
            .field("host_vmm_cmdlines", &self.host_vmm_cmdlines.len())
            .finish()
    }
}

/// Events read on one thread before the rest of a trace is read on this one and analysed on
/// another (module `pipeline`), when at least as much of the trace is left: on a smaller
/// trace, starting the thread costs more than it saves.
const ONE_THREAD_EVENTS: u64 = 1 << 17;

/// [`pipeline::read`] on this thread, feeding `analyses` on another; returns them once the
/// source has ended and they have had every event.
fn on_two_threads<S: EventSource + ?Sized>(
    source: &mut S,
    layout: &Layout,
    hosts: usize,
    options: &Options,
    mut analyses: pipeline::Analyses,
) -> Result<pipeline::Analyses, TraceError> {
    let known = analyses.known_threads();
    let (to_analyses, batches) = std::sync::mpsc::sync_channel(pipeline::BATCHES_AHEAD);
    let (to_reader, spare) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("analyses".into())
            .spawn_scoped(scope, move || {
                pipeline::analyse(batches, to_reader, &mut analyses);
                analyses
            })
            .map_err(|e| {
                // Out of threads: said of the trace, as the readers' failures are.
                let trace = options.traces.first().map(String::as_str).unwrap_or("");
                let message = format!("cannot start the analyses' thread: {e}");
                TraceError::io(
                    std::path::Path::new(trace),
                    std::io::Error::new(e.kind(), message),
                )
            })?;
        let mut batcher = pipeline::Batcher::new(to_analyses, spare, known);
        let reading = pipeline::read(source, layout, hosts, options, &mut batcher, u64::MAX);
        // The last batch, and the end of the batches for the analyses' thread.
        batcher.finish();
        let analyses = thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        reading.map(|_| analyses)
    })
}

/// Reads `source` to its end once and returns what every VM on every host did. Each host of
/// the source ([`EventSource::hosts`]; one for a single trace) gets its own analyses: threads,
/// CPUs and VMs of different hosts are never mixed. An experiment's hosts are taken to be on
/// one clock already (synchronised, or each on its own by choice).
pub fn analyze<S: EventSource + ?Sized>(
    source: &mut S,
    options: &Options,
) -> Result<Model, TraceError> {
    run(source, options, None).map(|(model, _)| model)
}

/// [`analyze`] for an experiment whose clocks are not known yet: the same pass pairs the
/// messages between hosts, fits each host's clock onto `reference` (by name; the first host
/// when `None`) and, at the end, puts every host's times on it. The source's hosts should be
/// roughly aligned (each shifted so that they start together, say), so that few messages are
/// in flight at once; the transforms returned lead from the source's clocks to the reference.
pub fn analyze_fitting_clocks<S: EventSource + ?Sized>(
    source: &mut S,
    options: &Options,
    reference: Option<&str>,
) -> Result<(Model, Synchronisation), TraceError> {
    let (model, sync) = run(source, options, Some(reference))?;
    Ok((model, sync.expect("a fit was asked for")))
}

fn run<S: EventSource + ?Sized>(
    source: &mut S,
    options: &Options,
    fit_onto: Option<Option<&str>>,
) -> Result<(Model, Option<Synchronisation>), TraceError> {
    let mut names = source.hosts();
    for (name, given) in names.iter_mut().zip(&options.host_names) {
        if !given.is_empty() {
            *name = given.clone();
        }
    }
    let several = names.len() > 1;
    let pairing = (several && !options.without_messages) || fit_onto.is_some();
    // Between hosts, packets are paired as messages: their keys are worth decoding.
    let layout = if pairing {
        Layout::new(source.classes()).with_message_keys()
    } else {
        Layout::new(source.classes())
    };
    // Events no analysis decodes are passed over inside the reader; what the analyses take
    // from them (their number, the trace's end) is added once the pass is done.
    source.set_interest(Some(&layout.classes_read()));
    let reference = fit_onto.map(|r| {
        r.map(str::to_string)
            .or_else(|| names.first().cloned())
            .unwrap_or_default()
    });
    let messages = pairing.then(|| Messages::new(&names, reference.as_deref()));
    let hosts: Vec<HostPass> = names
        .iter()
        .map(|_| HostPass::new(options.intervals, options.series, options.graph))
        .collect();
    let mut analyses = pipeline::Analyses { hosts, messages };
    let one_thread_events = match options.two_threads {
        Some(true) => 0,
        Some(false) => u64::MAX,
        None => ONE_THREAD_EVENTS,
    };
    let hosts = names.len();
    let mut reading = pipeline::Reading::Paused;
    if one_thread_events > 0 {
        reading = pipeline::read(
            source,
            &layout,
            hosts,
            options,
            &mut analyses,
            one_thread_events,
        )?;
    }
    if reading == pipeline::Reading::Paused {
        // Less of the trace left than was read (as far as the source can tell): on to its end
        // on this thread.
        let little_left = options.two_threads.is_none()
            && source
                .progress()
                .is_none_or(|(done, total)| done >= total / 2);
        if little_left {
            pipeline::read(source, &layout, hosts, options, &mut analyses, u64::MAX)?;
        } else {
            analyses = on_two_threads(source, &layout, hosts, options, analyses)?;
        }
    }
    let pipeline::Analyses {
        mut hosts,
        mut messages,
    } = analyses;
    for (i, pass) in hosts.iter_mut().enumerate() {
        pass.passed_over(source.passed_over(i));
    }
    let read = source.stats();
    let mut model = Model {
        traces: options.traces.clone(),
        read,
        ..Model::default()
    };
    let fitted = messages.as_mut().and_then(Messages::fit);
    if let Some(m) = &messages {
        let mut timeline = Timeline::default();
        m.fill(&mut timeline);
        model.timeline = Some(timeline);
    }
    // By host: the map from the pass's clock to the reference, when the pass fitted one.
    let transforms: Vec<Option<virtflow_sync::ClockTransform>> = fitted
        .as_ref()
        .map(|f| f.transforms.clone())
        .unwrap_or_default();
    let onto = |host: usize, t: i64| match transforms.get(host) {
        Some(Some(tr)) => tr.apply(t),
        _ => t,
    };
    let mut graphs = Vec::new();
    for (i, (pass, name)) in hosts.into_iter().zip(names).enumerate() {
        let cmdlines: Vec<VmmCommandLine> = options
            .vmm_cmdlines
            .iter()
            .cloned()
            .chain(
                options
                    .host_vmm_cmdlines
                    .iter()
                    .filter(|(h, _)| *h == i)
                    .map(|(_, c)| c.clone()),
            )
            .collect();
        // The readers count losses for the whole source: only a single host can own them.
        let read = if several {
            ReadStats::default()
        } else {
            model.read.clone()
        };
        let (mut host, mut vms, notes, mut graph) = pass.finish(name, &cmdlines, &read);
        if let Some(Some(tr)) = transforms.get(i) {
            let f = |t: i64| tr.apply(t);
            host.retime(&f);
            vms.iter_mut().for_each(|vm| vm.retime(&f));
            if let Some(g) = &mut graph {
                g.graph.retime(f);
            }
        }
        if let Some(g) = &mut graph {
            for r in &mut g.remote {
                r.to.1 = onto(i, r.to.1);
                r.from.2 = onto(r.from.0, r.from.2);
            }
        }
        graphs.extend(graph);
        let label = if several {
            format!("{}: ", host.name)
        } else {
            String::new()
        };
        model
            .notes
            .extend(notes.into_iter().map(|n| format!("{label}{n}")));
        model.hosts.push(host);
        model.vms.append(&mut vms);
    }
    if options.graph {
        model.graph = Some(graph::join(graphs, &mut model.notes));
    }
    let sync = fitted.map(|f| {
        let notes = sync::reading_notes(&layout, f.seen);
        Synchronisation {
            result: f.result,
            matched: f.matched,
            messages: f.seen,
            dropped: f.dropped,
            notes,
        }
    });
    Ok((model, sync))
}

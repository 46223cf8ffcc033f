//! The pass's two sides: reading the source and decoding its events into typed events, and
//! running every host's analyses over them in the same order — on one thread, or on two.
//!
//! [`read`] hands each decoded event to a [`Sink`]: the analyses themselves ([`Analyses`]),
//! or a [`Batcher`] that sends them to the analyses on a thread of their own ([`analyse`]).
//! Reading and decoding take about as long as the analyses together; on two cores the pass
//! then takes the longer of the two instead of their sum, which pays from a few hundred
//! thousand events on (on a smaller trace, starting a thread and warming its caches costs more
//! than it saves): the pass begins on one thread and [`read`] pauses after a number of events
//! for the caller to go on with two. The events cross in batches ([`Batch`]): a few thousand
//! typed events with their texts (names, markers) copied beside them, since a typed event
//! borrows its texts from the source's current event. Batches go back to the reader once
//! analysed, so the pass allocates a handful of them, and at most [`BATCHES_AHEAD`] wait
//! between the threads: memory stays bounded whatever the trace.
//!
//! Which threads' names and groups are worth decoding, the sink says: on one thread the
//! analyses themselves, on two the [`Batcher`], which cannot ask the analyses running behind
//! it and follows their rules from what it sent ([`KnownThreads`]).

use std::sync::mpsc::{Receiver, Sender, SyncSender};

use virtflow_trace::{EventHeader, EventSource, LostEvents, Step, TraceError};

use crate::host::HostPass;
use crate::known::KnownThreads;
use crate::layout::{EventContext, Layout, TypedEvent};
use crate::messages::Messages;
use crate::Options;

/// Events per batch: large enough that handing one over costs nothing per event, small enough
/// to stay in the caches.
const BATCH_EVENTS: usize = 4096;

/// Batches decoded and not yet taken by the analyses, at most.
pub(crate) const BATCHES_AHEAD: usize = 4;

/// Events between two progress reports (a power of two).
const PROGRESS_EVERY: u64 = 1 << 16;

/// Decoded events on their way from the reader to the analyses.
pub(crate) struct Batch {
    entries: Vec<Entry>,
    /// The texts of the entries' events, one after another.
    text: String,
    /// Where each text lies in `text`, in the order [`TypedEvent::map_text`] visits them.
    spans: Vec<(u32, u32)>,
}

enum Entry {
    Event {
        host: u32,
        header: EventHeader,
        sideband: bool,
        /// Its typed event, each text replaced by an empty one: the texts are the batch's,
        /// from `first_text` on.
        decoded: Option<(EventContext<'static>, TypedEvent<'static>)>,
        first_text: u32,
        guest_rip: Option<u64>,
    },
    Lost {
        host: u32,
        lost: LostEvents,
    },
}

impl Batch {
    /// A batch with room for [`BATCH_EVENTS`] events: grown once, never again (fresh pages
    /// cost the kernel their clearing, which showed on small traces).
    fn new() -> Batch {
        Batch {
            entries: Vec::with_capacity(BATCH_EVENTS),
            text: String::with_capacity(BATCH_EVENTS * 8),
            spans: Vec::with_capacity(BATCH_EVENTS / 2),
        }
    }

    fn push_event(
        &mut self,
        host: usize,
        header: EventHeader,
        sideband: bool,
        decoded: Option<(&EventContext, &TypedEvent)>,
        guest_rip: Option<u64>,
    ) {
        let first_text = self.spans.len() as u32;
        let (text, spans) = (&mut self.text, &mut self.spans);
        let mut set_aside = |s: &str| -> &'static str {
            let from = text.len() as u32;
            text.push_str(s);
            spans.push((from, text.len() as u32));
            ""
        };
        let decoded =
            decoded.map(|(ctx, ev)| (ctx.map_text(&mut set_aside), ev.map_text(&mut set_aside)));
        self.entries.push(Entry::Event {
            host: host as u32,
            header,
            sideband,
            decoded,
            first_text,
            guest_rip,
        });
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.text.clear();
        self.spans.clear();
    }
}

/// Where [`read`] hands each event, decoded: `false` when it wants no more. It also says
/// which threads' names and groups are worth decoding (those the analyses do not hold yet).
pub(crate) trait Sink {
    fn needs_name(&self, host: usize, tid: u32) -> bool;
    fn needs_tgid(&self, host: usize, tid: u32) -> bool;
    fn event(
        &mut self,
        host: usize,
        header: &EventHeader,
        sideband: bool,
        decoded: Option<(&EventContext, &TypedEvent)>,
        guest_rip: Option<u64>,
    ) -> bool;
    fn lost(&mut self, host: usize, lost: &LostEvents) -> bool;
}

/// Where [`read`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// At the source's end, or where the sink wanted no more.
    Ended,
    /// After the number of events it was given: the source goes on.
    Paused,
}

/// The reading side: reads `source` to its end (or its first error), decodes every event of
/// its `hosts` with `layout` and hands them to `sink`, until it wants no more — or pauses
/// after `events` events (`u64::MAX`: never).
pub(crate) fn read<S: EventSource + ?Sized>(
    source: &mut S,
    layout: &Layout,
    hosts: usize,
    options: &Options,
    sink: &mut impl Sink,
    events: u64,
) -> Result<Reading, TraceError> {
    let several = hosts > 1;
    let mut n = 0u64;
    loop {
        if n == events {
            return Ok(Reading::Paused);
        }
        // The header is read where the reader wrote it, field by field: copied out whole
        // right after the call, it is read back wider than it was written, which stalls on
        // every event (and through `?` it is copied once more).
        let step = source.advance();
        let more = match &step {
            Ok(Step::Event(header)) => {
                n += 1;
                // One host: no call to ask which (a call per event through the wrappers).
                let h = if several {
                    source.host().min(hosts - 1)
                } else {
                    0
                };
                let sideband = layout.is_sideband(header.class);
                let decoded = layout.decode_names(
                    &*source,
                    header,
                    |tid| sink.needs_name(h, tid),
                    |tid| sink.needs_tgid(h, tid),
                );
                let guest_rip = match decoded {
                    Some((_, TypedEvent::KvmExit { .. })) if !sideband => {
                        layout.guest_rip(&*source, header)
                    }
                    _ => None,
                };
                if n & (PROGRESS_EVERY - 1) == 0 {
                    if let (Some(cb), Some((done, total))) = (&options.progress, source.progress())
                    {
                        cb(done, total);
                    }
                }
                sink.event(
                    h,
                    header,
                    sideband,
                    decoded.as_ref().map(|(c, e)| (c, e)),
                    guest_rip,
                )
            }
            Ok(Step::Lost(lost)) => sink.lost(source.host().min(hosts - 1), lost),
            Ok(Step::End) => break,
            Err(_) => return step.map(|_| Reading::Ended),
        };
        if !more {
            return Ok(Reading::Ended);
        }
    }
    if let (Some(cb), Some((_, total))) = (&options.progress, source.progress()) {
        cb(total, total);
    }
    Ok(Reading::Ended)
}

/// Every host's analyses and the experiment's pairing of messages: the sink of a pass on one
/// thread, and what [`analyse`] feeds on the second.
pub(crate) struct Analyses {
    pub hosts: Vec<HostPass>,
    pub messages: Option<Messages>,
}

impl Analyses {
    /// By host, the threads whose names and groups the analyses hold now.
    pub fn known_threads(&self) -> Vec<KnownThreads> {
        self.hosts.iter().map(HostPass::known_threads).collect()
    }
}

impl Sink for Analyses {
    #[inline]
    fn needs_name(&self, host: usize, tid: u32) -> bool {
        self.hosts[host].needs_name(tid)
    }

    #[inline]
    fn needs_tgid(&self, host: usize, tid: u32) -> bool {
        self.hosts[host].needs_tgid(tid)
    }

    /// Inlined into the reading loop: a call per event fewer on one thread.
    #[inline(always)]
    fn event(
        &mut self,
        host: usize,
        header: &EventHeader,
        sideband: bool,
        decoded: Option<(&EventContext, &TypedEvent)>,
        guest_rip: Option<u64>,
    ) -> bool {
        let hosts = &mut self.hosts;
        if let Some((dir, key, tid)) = hosts[host].event(header, sideband, decoded, guest_rip) {
            let matched = self
                .messages
                .as_mut()
                .and_then(|m| m.seen(host, header.ts, dir, key, tid));
            if let Some(m) = matched.filter(|m| m.receive.0 == host) {
                hosts[host].received(header.cpu, m.send.0, m.tags.0, m.send.1);
            }
        }
        true
    }

    fn lost(&mut self, host: usize, lost: &LostEvents) -> bool {
        self.hosts[host].lost(lost);
        true
    }
}

/// The sink of the reading thread in a pass on two: fills batches and sends them to the
/// analyses' thread, taking batches to refill from `spare`. Wants no more once the analyses
/// are gone (their thread failed, which its join tells).
pub(crate) struct Batcher {
    batch: Batch,
    /// By host (every host of the source): what the analyses will hold once they have had
    /// every event sent so far.
    known: Vec<KnownThreads>,
    to: SyncSender<Batch>,
    spare: Receiver<Batch>,
}

impl Batcher {
    /// A batcher sending to `to`, refilling from `spare`, for analyses that hold the names
    /// and groups of `known` (by host).
    pub fn new(to: SyncSender<Batch>, spare: Receiver<Batch>, known: Vec<KnownThreads>) -> Batcher {
        Batcher {
            batch: Batch::new(),
            known,
            to,
            spare,
        }
    }

    /// Sends what the last batch holds.
    pub fn finish(self) {
        if !self.batch.entries.is_empty() {
            let _ = self.to.send(self.batch);
        }
    }

    fn send_if_full(&mut self) -> bool {
        if self.batch.entries.len() < BATCH_EVENTS {
            return true;
        }
        let next = self.spare.try_recv().unwrap_or_else(|_| Batch::new());
        self.to
            .send(std::mem::replace(&mut self.batch, next))
            .is_ok()
    }
}

impl Sink for Batcher {
    #[inline]
    fn needs_name(&self, host: usize, tid: u32) -> bool {
        self.known[host].needs_name(tid)
    }

    #[inline]
    fn needs_tgid(&self, host: usize, tid: u32) -> bool {
        self.known[host].needs_tgid(tid)
    }

    #[inline]
    fn event(
        &mut self,
        host: usize,
        header: &EventHeader,
        sideband: bool,
        decoded: Option<(&EventContext, &TypedEvent)>,
        guest_rip: Option<u64>,
    ) -> bool {
        if let Some((ctx, ev)) = decoded {
            self.known[host].learn(ctx, ev, sideband);
        }
        self.batch
            .push_event(host, *header, sideband, decoded, guest_rip);
        self.send_if_full()
    }

    fn lost(&mut self, host: usize, lost: &LostEvents) -> bool {
        self.batch.entries.push(Entry::Lost {
            host: host as u32,
            lost: *lost,
        });
        self.send_if_full()
    }
}

/// The analysing side of a pass on two threads: every batch from `from`, in order, through
/// `analyses`; each batch goes back to `spare` once done.
pub(crate) fn analyse(from: Receiver<Batch>, spare: Sender<Batch>, analyses: &mut Analyses) {
    for mut batch in from {
        let (text, spans) = (batch.text.as_str(), batch.spans.as_slice());
        for entry in batch.entries.drain(..) {
            match entry {
                Entry::Event {
                    host,
                    header,
                    sideband,
                    decoded,
                    first_text,
                    guest_rip,
                } => {
                    let mut next = first_text as usize;
                    let mut text_back = |_: &str| {
                        let (from, to) = spans.get(next).copied().unwrap_or_default();
                        next += 1;
                        &text[from as usize..to as usize]
                    };
                    let decoded = decoded.map(|(ctx, ev)| {
                        (ctx.map_text(&mut text_back), ev.map_text(&mut text_back))
                    });
                    let decoded = decoded.as_ref().map(|(c, e)| (c, e));
                    analyses.event(host as usize, &header, sideband, decoded, guest_rip);
                }
                Entry::Lost { host, lost } => {
                    analyses.lost(host as usize, &lost);
                }
            }
        }
        batch.clear();
        // The reader being done with batches is no failure.
        let _ = spare.send(batch);
    }
}

//! Layouts: each tracer's vocabulary mapped onto one set of [`TypedEvent`]s.
//!
//! A [`Layout`] is built once per source from its classes: every class gets a [`Handler`]
//! with its fields already resolved to [`FieldId`]s, so decoding an event is one table
//! lookup and a few typed reads, and an event no analysis uses costs only the lookup.
//!
//! Vocabularies recognised (names are compared after dropping a `system:` prefix, as perf's
//! CTF conversion writes `kvm:kvm_exit`):
//!
//! - ftrace / trace-cmd / perf: `kvm_entry`, `kvm_exit`, `kvm_inj_virq` (`vector`),
//!   `sched_switch` (`prev_pid`, `next_pid`), `sched_waking` (`pid`), `common_pid`;
//!   perf's CTF conversion adds `perf_tid` / `perf_pid` (the thread group) as context.
//! - LTTng 2.x: `kvm_x86_entry`, `kvm_x86_exit`, `kvm_x86_inj_virq` (`irq`), `sched_switch`
//!   (`prev_tid`, `next_tid`), `sched_waking` (`tid`), `timer_hrtimer_expire_entry`,
//!   `irq_softirq_entry`…, and the `tid` / `pid` / `procname` contexts.
//! - older LTTng: `kvm_entry` / `kvm_exit` without the `x86` infix.
//! - ftrace `print` (tracefs `trace_marker`, `buf`), or its text forms `tracing_mark_write`
//!   and `print` (`text`): [`TypedEvent::Marker`], read for VMM command lines.

mod keys;
mod typed;
mod vocabulary;

pub use typed::{EventContext, IrqKind, IrqSource, MessageKey, PacketDir, TaskState, TypedEvent};
pub use vocabulary::canonical_name;

use virtflow_model::Isa;
use virtflow_trace::{ClassId, EventClass, EventHeader, EventSource, FieldId};

use crate::exits;
use vocabulary::{
    context_for, handler_for, payload, ContextFields, ExitReason, Handler, KeyFields, StateField,
};

/// The per-class decoding table of one source. See the module documentation.
pub struct Layout {
    handlers: Vec<(Handler, ContextFields)>,
    sideband: Vec<bool>,
    /// Per class: the exit's `guest_rip`, read only by the guest-process analysis.
    guest_rip: Vec<Option<FieldId>>,
    /// Decode packets' message keys: worth its cost (LTTng's headers are compound fields)
    /// only when messages are matched between hosts.
    message_keys: bool,
}

/// Largest plausible vCPU number: LTTng's `kvm_x86_entry` on some kernels records garbage in
/// `vcpu_id`, which must not name a vCPU.
const MAX_VCPU_ID: u64 = 4095;

impl Layout {
    pub fn new(classes: &[EventClass]) -> Layout {
        // The kernel emits `mm_page_free_batched` on its batched path after the
        // `mm_page_free` of the same page (`free_unref_page_list`, `free_unref_folios`): with
        // `mm_page_free` in the trace it frees nothing more; only without it does it stand
        // for the free of one order-0 page.
        let frees = classes
            .iter()
            .any(|c| canonical_name(&c.name) == "mm_page_free");
        let handlers = classes
            .iter()
            .map(|c| {
                let h = match handler_for(c) {
                    Handler::Page { alloc: false, .. }
                        if frees && canonical_name(&c.name) == "mm_page_free_batched" =>
                    {
                        Handler::Ignore
                    }
                    h => h,
                };
                (h, context_for(c))
            })
            .collect();
        let sideband = classes.iter().map(EventClass::is_sideband).collect();
        let guest_rip = classes
            .iter()
            .map(|c| match canonical_name(&c.name) {
                "kvm_exit" => payload(c, &["guest_rip", "rip"]),
                _ => None,
            })
            .collect();
        Layout {
            handlers,
            sideband,
            guest_rip,
            message_keys: false,
        }
    }

    /// The same layout, decoding what pairs packets between hosts ([`MessageKey`]).
    pub fn with_message_keys(mut self) -> Layout {
        self.message_keys = true;
        self
    }

    /// The classes that carry messages between hosts (packets, synchronisation hypercalls):
    /// what the synchronisation pass reads.
    pub fn message_classes(&self) -> Vec<ClassId> {
        self.handlers
            .iter()
            .enumerate()
            .filter(|(_, (h, _))| {
                matches!(
                    h,
                    Handler::Packet(_, true, _)
                        | Handler::VmSync { .. }
                        | Handler::Hypercall { .. }
                )
            })
            .map(|(i, _)| ClassId(i as u32))
            .collect()
    }

    /// Whether some class carries packets but none records what would pair them between hosts
    /// (ftrace and perf `net:*` events hold no TCP header).
    pub fn packets_without_keys(&self) -> bool {
        let packets = self
            .handlers
            .iter()
            .filter(|(h, _)| matches!(h, Handler::Packet(_, true, _)));
        let (mut any, mut keyed) = (false, false);
        for (h, _) in packets {
            any = true;
            keyed |= matches!(h, Handler::Packet(_, _, k) if !matches!(k, KeyFields::None));
        }
        any && !keyed
    }

    /// The guest instruction pointer of the current event when it is a KVM exit that
    /// carries one (`guest_rip`).
    pub fn guest_rip<S: EventSource + ?Sized>(&self, src: &S, header: &EventHeader) -> Option<u64> {
        let field = (*self.guest_rip.get(header.class.0 as usize)?)?;
        src.u64(field)
    }

    /// True when some class decodes to KVM entries or exits.
    pub fn has_kvm(&self) -> bool {
        self.handlers
            .iter()
            .any(|(h, _)| matches!(h, Handler::KvmEntry { .. } | Handler::KvmExit { .. }))
    }

    /// Decodes the source's current event; `None` for events no analysis uses or that lack
    /// a required field.
    pub fn decode<'s, S: EventSource + ?Sized>(
        &self,
        src: &'s S,
        header: &EventHeader,
    ) -> Option<(EventContext<'s>, TypedEvent<'s>)> {
        self.decode_names(src, header, |_| true, |_| true)
    }

    /// [`Layout::decode`], reading a thread's name (`next_comm`, the woken task's `comm`, the
    /// context's `procname`) only when `wants_name(tid)`, and the context's thread group only
    /// when `wants_tgid(tid)`: reading and checking a name costs more than the rest of a
    /// `sched_switch`, and a thread's group, once known, does not change. The outgoing task's
    /// `prev_comm` is always read: a name changes while its thread runs (`exec`,
    /// `prctl(PR_SET_NAME)`) or, set by another thread, shows by the time it leaves the CPU, so
    /// switch-outs keep every known name current.
    #[inline(always)]
    pub fn decode_names<'s, S: EventSource + ?Sized>(
        &self,
        src: &'s S,
        header: &EventHeader,
        wants_name: impl Fn(u32) -> bool,
        wants_tgid: impl Fn(u32) -> bool,
    ) -> Option<(EventContext<'s>, TypedEvent<'s>)> {
        let (handler, ctx_fields) = self.handlers.get(header.class.0 as usize)?;
        let u32_of = |f: FieldId| src.u64(f).map(|v| v as u32);
        let str_of = |f: Option<FieldId>| f.and_then(|f| src.str(f));
        let name_of = |tid: u32, f: Option<FieldId>| match f {
            Some(f) if wants_name(tid) => src.str(f),
            _ => None,
        };
        let event = match *handler {
            Handler::Ignore => return None,
            Handler::SchedSwitch {
                prev_tid,
                prev_comm,
                prev_state,
                next_tid,
                next_comm,
            } => {
                let (prev_tid, next_tid) = (u32_of(prev_tid)?, u32_of(next_tid)?);
                TypedEvent::SchedSwitch {
                    prev_tid,
                    prev_comm: str_of(prev_comm),
                    prev_state: match prev_state {
                        StateField::Bits(f) => TaskState::from_bits(src.u64(f)?),
                        StateField::Letters(f) => TaskState::from_letters(src.str(f)?),
                        StateField::Absent => TaskState::Sleeping,
                    },
                    next_tid,
                    next_comm: name_of(next_tid, next_comm),
                }
            }
            Handler::SchedWakeup {
                tid,
                comm,
                target_cpu,
            } => {
                let tid = u32_of(tid)?;
                TypedEvent::SchedWakeup {
                    tid,
                    comm: name_of(tid, comm),
                    target_cpu: target_cpu.and_then(u32_of),
                }
            }
            Handler::SchedMigrate { tid, dest_cpu } => TypedEvent::SchedMigrate {
                tid: u32_of(tid)?,
                dest_cpu: u32_of(dest_cpu)?,
            },
            Handler::ProcessFork {
                parent_tid,
                child_tid,
                child_tgid,
                child_comm,
            } => TypedEvent::ProcessFork {
                parent_tid: parent_tid.and_then(u32_of).unwrap_or(0),
                child_tid: u32_of(child_tid)?,
                child_tgid: child_tgid.and_then(u32_of),
                child_comm: str_of(child_comm),
            },
            Handler::KvmEntry { vcpu_id } => TypedEvent::KvmEntry {
                vcpu_id: vcpu_id.and_then(|f| plausible_vcpu(src.u64(f))),
            },
            Handler::KvmExit {
                reason,
                isa,
                vcpu_id,
            } => {
                let isa_field = isa.and_then(|f| src.u64(f)).and_then(|v| match v {
                    1 => Some(Isa::Vmx),
                    2 => Some(Isa::Svm),
                    _ => None,
                });
                let (isa, code, name) = match reason {
                    ExitReason::Code(f) => (isa_field.unwrap_or(Isa::Vmx), src.u64(f)?, None),
                    ExitReason::Name(f) => {
                        let name = src.str(f)?;
                        match name.parse::<u64>() {
                            Ok(code) => (isa_field.unwrap_or(Isa::Vmx), code, None),
                            Err(_) => {
                                let (isa, code) = exits::exit_from_name(name, isa_field).unwrap_or(
                                    (isa_field.unwrap_or(Isa::Vmx), u64::from(u32::MAX)),
                                );
                                (isa, code, Some(name))
                            }
                        }
                    }
                };
                TypedEvent::KvmExit {
                    isa,
                    code,
                    name,
                    vcpu_id: vcpu_id.and_then(|f| plausible_vcpu(src.u64(f))),
                }
            }
            Handler::KvmUserspaceExit { reason } => TypedEvent::KvmUserspaceExit {
                reason: reason.and_then(u32_of).unwrap_or(0),
            },
            Handler::KvmInjVirq { vector } => TypedEvent::KvmInjVirq {
                vector: u32_of(vector)?,
            },
            Handler::MsiSetIrq { data } => TypedEvent::IrqRaise {
                vector: src.u64(data).map(|d| (d & 0xff) as u32),
                source: IrqSource::Msi,
            },
            Handler::SetIrq => TypedEvent::IrqRaise {
                vector: None,
                source: IrqSource::Gsi,
            },
            Handler::ApicAcceptIrq { vector } => TypedEvent::IrqRaise {
                vector: Some(u32_of(vector)? & 0xff),
                source: IrqSource::Apic,
            },
            Handler::ApicIpi { icr_low } => TypedEvent::KvmApicIpi {
                vector: u32_of(icr_low)? & 0xff,
            },
            Handler::TaskInfo { tid, tgid, comm } => TypedEvent::TaskInfo {
                tid: u32_of(tid)?,
                tgid: tgid.and_then(u32_of),
                comm: str_of(comm),
            },
            Handler::GuestCr3 { vcpu_id, cr3 } => TypedEvent::GuestCr3 {
                vcpu_id: vcpu_id.and_then(|f| plausible_vcpu(src.u64(f))),
                cr3: src.u64(cr3)?,
            },
            Handler::NestedEnter { vmcs, guest_pgd } => TypedEvent::NestedEnter {
                vmcs: vmcs.and_then(|f| src.u64(f)),
                guest_pgd: guest_pgd.and_then(|f| src.u64(f)),
            },
            Handler::NestedExit(reflected) => TypedEvent::NestedExit { reflected },
            Handler::Block {
                complete,
                dev,
                sector,
            } => {
                let (dev, sector) = (src.u64(dev)?, src.u64(sector)?);
                if complete {
                    TypedEvent::BlockComplete { dev, sector }
                } else {
                    TypedEvent::BlockIssue { dev, sector }
                }
            }
            Handler::Packet(dir, primary, key) => TypedEvent::Packet {
                dir,
                primary,
                key: if self.message_keys {
                    keys::message_key(src, key)
                } else {
                    None
                },
            },
            Handler::VmSync { dir, vm, counter } => TypedEvent::VmSync {
                dir,
                key: MessageKey::VmSync {
                    vm: src.u64(vm)?,
                    counter: src.u64(counter)?,
                },
            },
            // The guest's synchronisation hypercall, received by the host.
            Handler::Hypercall { nr, a0, a1 } if src.u64(nr)? == VMSYNC_HYPERCALL => {
                TypedEvent::VmSync {
                    dir: PacketDir::Receive,
                    key: MessageKey::VmSync {
                        vm: src.u64(a1)?,
                        counter: src.u64(a0)?,
                    },
                }
            }
            Handler::Hypercall { .. } => return None,
            Handler::Page { alloc, pfn, order } => {
                let pfn = src.u64(pfn)?;
                let order = order
                    .and_then(|f| src.u64(f))
                    .unwrap_or(0)
                    .min(MAX_PAGE_ORDER) as u32;
                if alloc {
                    TypedEvent::PageAlloc { pfn, order }
                } else {
                    TypedEvent::PageFree { pfn, order }
                }
            }
            Handler::KsmEnter { mm } => TypedEvent::KsmEnter { mm: src.u64(mm)? },
            Handler::KsmMerge { mm, err, ksm_page } => TypedEvent::KsmMerge {
                mm: src.u64(mm)?,
                merged: err.and_then(|f| src.i64(f)).unwrap_or(0) == 0
                    && ksm_page.is_none_or(|f| src.u64(f).unwrap_or(0) != 0),
            },
            Handler::Marker { text } => TypedEvent::Marker {
                text: src.str(text)?,
            },
            Handler::Irq(true, kind) => TypedEvent::IrqEnter(kind),
            Handler::Irq(false, kind) => TypedEvent::IrqExit(kind),
            Handler::Softirq(enter, vec) => {
                let kind = IrqKind::Softirq(vec.and_then(|f| src.u64(f)).map(|v| v.min(255) as u8));
                if enter {
                    TypedEvent::IrqEnter(kind)
                } else {
                    TypedEvent::IrqExit(kind)
                }
            }
        };
        let tid = ctx_fields.tid.and_then(u32_of);
        let ctx = EventContext {
            ts: header.ts,
            cpu: header.cpu,
            tid,
            tgid: match tid {
                Some(tid) if !wants_tgid(tid) => None,
                _ => ctx_fields.tgid.and_then(u32_of),
            },
            comm: match tid {
                Some(tid) => name_of(tid, ctx_fields.comm),
                None => str_of(ctx_fields.comm),
            },
        };
        Some((ctx, event))
    }

    /// Side-band records (perf's `perf_mmap`, `perf_comm`…, written at time 0 by perf's CTF
    /// conversion) say nothing about when the trace starts.
    pub fn is_sideband(&self, class: ClassId) -> bool {
        self.sideband
            .get(class.0 as usize)
            .copied()
            .unwrap_or(false)
    }

    /// The classes the pass reads, for the source's interest: those this layout decodes, and
    /// the side-band records. Of any other event the analyses take only its time and CPU,
    /// which the source gives for what it passes over (each CPU's first announced, the rest
    /// in [`EventSource::passed_over`]); a side-band record's time counts for nothing, so
    /// those are read, to keep them out of that account.
    pub fn classes_read(&self) -> Vec<ClassId> {
        self.handlers
            .iter()
            .zip(&self.sideband)
            .enumerate()
            .filter(|(_, ((h, _), sideband))| !matches!(h, Handler::Ignore) || **sideband)
            .map(|(i, _)| ClassId(i as u32))
            .collect()
    }
}

/// Orders above this are no page size the kernel allocates (a damaged or foreign field).
const MAX_PAGE_ORDER: u64 = 20;

/// The hypercall number the research's guest tracer uses for its synchronisation messages.
const VMSYNC_HYPERCALL: u64 = 5;

fn plausible_vcpu(v: Option<u64>) -> Option<u32> {
    v.filter(|v| *v <= MAX_VCPU_ID).map(|v| v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("kvm:kvm_exit"), "kvm_exit");
        assert_eq!(canonical_name("kvm_x86_entry"), "kvm_entry");
        assert_eq!(canonical_name("sched:sched_switch"), "sched_switch");
        assert_eq!(
            canonical_name("timer_hrtimer_expire_entry"),
            "hrtimer_expire_entry"
        );
        assert_eq!(canonical_name("kvm_x86_emulate_insn"), "");
    }

    #[test]
    fn task_states() {
        assert_eq!(TaskState::from_bits(0), TaskState::Runnable);
        assert_eq!(TaskState::from_bits(0x100), TaskState::Runnable);
        assert_eq!(TaskState::from_bits(1), TaskState::Sleeping);
        assert_eq!(TaskState::from_bits(0x80), TaskState::Sleeping);
        assert_eq!(TaskState::from_letters("R+"), TaskState::Runnable);
        assert_eq!(TaskState::from_letters("S"), TaskState::Sleeping);
        assert_eq!(TaskState::from_letters("D|K"), TaskState::Sleeping);
    }
}

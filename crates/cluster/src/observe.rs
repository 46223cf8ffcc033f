//! The observer pass: the few per-thread measurements the features need beyond the
//! [`virtflow_model::Model`] — wait episodes with the vector injected after them, injections
//! per vCPU thread, who raised which vector, disk request latency, I/O exit to submission,
//! packets handled by vhost threads, and guest time per CR3.
//!
//! It reads an [`EventSource`] once, resolving the fields it uses once per class, by name, in
//! both vocabularies (ftrace/perf `kvm_entry`, `prev_pid`; LTTng `kvm_x86_entry`,
//! `prev_tid`). Memory is O(threads + requests in flight). The result, [`Observations`], is
//! keyed by host thread id and joined with the Model in [`crate::features`].

use std::collections::HashMap;

use virtflow_trace::{ClassId, EventSource, FieldId, Step, TraceError};

/// Exit reasons that carry guest I/O to the host: VMX IO_INSTRUCTION (30), EPT_MISCONFIG
/// (49, MMIO); SVM ioio (0x7b), npf (0x400, MMIO under nested paging). The two numberings
/// do not collide on these codes, so the ISA field is not needed.
const IO_EXIT_REASONS: [u64; 4] = [30, 49, 0x7b, 0x400];

/// One thread's measurements. Times in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThreadObs {
    pub comm: String,
    /// KVM's vCPU number, when the thread entered a guest.
    pub vcpu: Option<u32>,
    pub entries: u64,
    pub exits: u64,
    pub io_exits: u64,
    pub guest_ns: u64,
    pub on_cpu_ns: u64,
    pub blocked_ns: u64,
    pub preempted_ns: u64,
    pub ready_ns: u64,
    /// Injections by vector.
    pub injections: HashMap<u32, u64>,
    /// Wait episodes (blocked → woken) by the first vector injected before the next guest
    /// entry (`None`: none injected): (count, total ns).
    pub waits: HashMap<Option<u32>, (u64, u64)>,
    /// Vectors this thread raised (`kvm_apic_accept_irq`, `kvm_msi_set_irq` in its context).
    pub raised: HashMap<u32, u64>,
    /// Network events (`net_dev_queue`, `netif_receive_skb`…) in this thread's context.
    pub packets: u64,
    /// Block requests issued in this thread's context, completed: count and total latency.
    pub disk_requests: u64,
    pub disk_latency_ns: u64,
    /// I/O exit → request submission delays paired to this (issuing) thread.
    pub submit_delays: u64,
    pub submit_delay_ns: u64,
}

/// Per (vCPU thread, CR3): a guest process as the host sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessObs {
    pub entries: u64,
    pub exits: u64,
    pub guest_ns: u64,
    pub injections: HashMap<u32, u64>,
}

#[derive(Clone, Debug, Default)]
pub struct Observations {
    pub first_ts: i64,
    pub last_ts: i64,
    pub threads: HashMap<u32, ThreadObs>,
    pub processes: HashMap<(u32, u64), ProcessObs>,
    /// Block requests whose issuer thread was not known (interrupt context, no current).
    pub unattributed_requests: u64,
    pub lost_notices: u64,
}

impl Observations {
    pub fn duration_s(&self) -> f64 {
        (self.last_ts - self.first_ts).max(0) as f64 / 1e9
    }
}

/// Who runs which vCPUs: the VM index the observer needs to pair an I/O exit of a VM's vCPU
/// with the block request the VM's I/O thread submits next.
#[derive(Clone, Debug, Default)]
pub struct VmThreads {
    /// Host thread → VMM pid, for every vCPU and helper thread known.
    pub vm_of: HashMap<u32, u32>,
}

#[derive(Default)]
struct Fields {
    /// The thread that emitted the event, when the format records it per event.
    current: Option<FieldId>,
    a: Option<FieldId>,
    b: Option<FieldId>,
    c: Option<FieldId>,
    d: Option<FieldId>,
    e: Option<FieldId>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Switch,
    Wakeup,
    Entry,
    Exit,
    Inject,
    AcceptIrq,
    MsiSetIrq,
    EnterGuest,
    RqIssue,
    RqComplete,
    Packet,
    Other,
}

fn first_field(src: &dyn EventSource, class: ClassId, names: &[&str]) -> Option<FieldId> {
    names.iter().find_map(|n| src.field(class, n))
}

#[derive(Default)]
struct Running {
    /// What a thread is doing, with the time it started doing it.
    on_cpu_since: Option<i64>,
    blocked_since: Option<i64>,
    preempted_since: Option<i64>,
    ready_since: Option<i64>,
    in_guest_since: Option<i64>,
    guest_cr3: Option<u64>,
    /// A wait episode that ended, whose cause vector is not known yet: its duration.
    wait_pending: Option<u64>,
    /// Injections since the last entry, to attribute to the next CR3.
    injected_since_entry: Vec<u32>,
    last_io_exit: Option<i64>,
}

/// Reads the whole source. `vms` maps threads to VMs (from the Model); it may be empty, in
/// which case I/O exit → submission delays are not paired.
pub fn observe(src: &mut dyn EventSource, vms: &VmThreads) -> Result<Observations, TraceError> {
    let classes = src.classes().to_vec();
    let mut kinds = Vec::with_capacity(classes.len());
    let mut fields = Vec::with_capacity(classes.len());
    for (i, c) in classes.iter().enumerate() {
        let id = ClassId(i as u32);
        let f = |names: &[&str]| first_field(src, id, names);
        // perf's CTF conversion names events `system:name` (`kvm:kvm_exit`).
        let name = c.name.rsplit(':').next().unwrap_or(&c.name);
        let kind = match name {
            "sched_switch" => Kind::Switch,
            "sched_wakeup" | "sched_wakeup_new" | "sched_waking" => Kind::Wakeup,
            "kvm_entry" | "kvm_x86_entry" => Kind::Entry,
            "kvm_exit" | "kvm_x86_exit" => Kind::Exit,
            "kvm_inj_virq" | "kvm_x86_inj_virq" => Kind::Inject,
            "kvm_apic_accept_irq" | "kvm_x86_apic_accept_irq" => Kind::AcceptIrq,
            "kvm_msi_set_irq" | "kvm_x86_msi_set_irq" => Kind::MsiSetIrq,
            "addons_vcpu_enter_guest" | "vcpu_enter_guest" => Kind::EnterGuest,
            "block_rq_issue" => Kind::RqIssue,
            "block_rq_complete" => Kind::RqComplete,
            "net_dev_queue"
            | "netif_receive_skb"
            | "netif_rx"
            | "net_dev_xmit"
            | "napi_gro_receive_entry"
            | "netif_receive_skb_entry"
            | "netif_rx_entry" => Kind::Packet,
            _ => Kind::Other,
        };
        let mut fl = Fields {
            current: f(&["common_pid", "tid", "_tid", "vtid", "perf_tid"]),
            ..Default::default()
        };
        match kind {
            Kind::Switch => {
                fl.a = f(&["prev_pid", "prev_tid"]);
                fl.b = f(&["prev_state"]);
                fl.c = f(&["next_pid", "next_tid"]);
                fl.d = f(&["next_comm"]);
                fl.e = f(&["prev_comm"]);
            }
            Kind::Wakeup => fl.a = f(&["pid", "tid"]),
            Kind::Entry => fl.a = f(&["vcpu_id"]),
            Kind::Exit => fl.a = f(&["exit_reason"]),
            Kind::Inject => fl.a = f(&["vector", "irq"]),
            Kind::AcceptIrq => fl.a = f(&["vec", "vector"]),
            Kind::MsiSetIrq => fl.a = f(&["data"]),
            Kind::EnterGuest => {
                fl.a = f(&["cr3", "cr3tmp"]);
                fl.b = f(&["vcpu_id", "vcpuID"]);
            }
            Kind::RqIssue | Kind::RqComplete => {
                fl.a = f(&["dev"]);
                fl.b = f(&["sector"]);
            }
            _ => {}
        }
        kinds.push(kind);
        fields.push(fl);
    }

    let mut obs = Observations::default();
    let mut state: HashMap<u32, Running> = HashMap::new();
    let mut current_on_cpu: HashMap<u32, u32> = HashMap::new();
    let mut in_flight: HashMap<(u64, u64), (i64, Option<u32>)> = HashMap::new();
    let mut vcpus_of_vm: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&tid, &pid) in &vms.vm_of {
        vcpus_of_vm.entry(pid).or_default().push(tid);
    }
    let mut first = true;
    // The last timestamp of any event: open intervals run to it.
    let mut end_any = i64::MIN;

    loop {
        let h = match src.advance()? {
            Step::End => break,
            Step::Lost(_) => {
                obs.lost_notices += 1;
                continue;
            }
            Step::Event(h) => h,
        };
        end_any = end_any.max(h.ts);
        let ci = h.class.0 as usize;
        let kind = kinds[ci];
        if kind == Kind::Other {
            // Only the events used set the trace's span: perf's CTF conversion, for one,
            // puts its `perf_mmap` records at time 0.
            continue;
        }
        if first {
            obs.first_ts = h.ts;
            first = false;
        }
        obs.last_ts = h.ts;
        let fl = &fields[ci];
        let get = |f: Option<FieldId>| f.and_then(|f| src.u64(f));
        let current = get(fl.current)
            .map(|v| v as u32)
            .or_else(|| current_on_cpu.get(&h.cpu).copied());
        match kind {
            Kind::Switch => {
                let (Some(prev), Some(next)) = (get(fl.a), get(fl.c)) else {
                    continue;
                };
                let (prev, next) = (prev as u32, next as u32);
                let prev_state = get(fl.b).unwrap_or(0);
                // Runnable ⇔ no sleeping bit in the low byte (0x100 and above mean preempted).
                let runnable = prev_state & 0xff == 0;
                current_on_cpu.insert(h.cpu, next);
                if let Some(comm) = fl.e.and_then(|f| src.str(f)) {
                    set_comm(&mut obs, prev, comm);
                }
                if let Some(comm) = fl.d.and_then(|f| src.str(f)) {
                    set_comm(&mut obs, next, comm);
                }
                if prev != 0 {
                    let r = state.entry(prev).or_default();
                    let t = obs.threads.entry(prev).or_default();
                    if let Some(s) = r.on_cpu_since.take() {
                        t.on_cpu_ns += (h.ts - s).max(0) as u64;
                    }
                    if runnable {
                        r.preempted_since = Some(h.ts);
                    } else {
                        r.blocked_since = Some(h.ts);
                    }
                }
                if next != 0 {
                    let r = state.entry(next).or_default();
                    let t = obs.threads.entry(next).or_default();
                    if let Some(s) = r.preempted_since.take() {
                        t.preempted_ns += (h.ts - s).max(0) as u64;
                    }
                    if let Some(s) = r.ready_since.take() {
                        t.ready_ns += (h.ts - s).max(0) as u64;
                    }
                    if let Some(s) = r.blocked_since.take() {
                        // Woken without a wake-up event seen: the whole gap was the wait.
                        let d = (h.ts - s).max(0) as u64;
                        t.blocked_ns += d;
                        r.wait_pending = Some(d);
                    }
                    r.on_cpu_since = Some(h.ts);
                }
            }
            Kind::Wakeup => {
                let Some(tid) = get(fl.a) else { continue };
                let r = state.entry(tid as u32).or_default();
                if let Some(s) = r.blocked_since.take() {
                    let d = (h.ts - s).max(0) as u64;
                    obs.threads.entry(tid as u32).or_default().blocked_ns += d;
                    r.wait_pending = Some(d);
                    r.ready_since = Some(h.ts);
                }
            }
            Kind::Entry | Kind::Exit | Kind::Inject | Kind::EnterGuest => {
                let Some(tid) = current else { continue };
                let r = state.entry(tid).or_default();
                let t = obs.threads.entry(tid).or_default();
                if r.on_cpu_since.is_none() && r.blocked_since.is_none() {
                    // First sight of a thread already running when the trace started.
                    r.on_cpu_since = Some(h.ts);
                }
                match kind {
                    Kind::Entry => {
                        t.entries += 1;
                        if let Some(v) = get(fl.a) {
                            t.vcpu = Some(v as u32);
                        }
                        if let Some(d) = r.wait_pending.take() {
                            let w = t.waits.entry(None).or_default();
                            w.0 += 1;
                            w.1 += d;
                        }
                        r.in_guest_since = Some(h.ts);
                        if let Some(cr3) = r.guest_cr3 {
                            obs.processes.entry((tid, cr3)).or_default().entries += 1;
                        }
                        r.injected_since_entry.clear();
                    }
                    Kind::Exit => {
                        t.exits += 1;
                        let reason = get(fl.a).unwrap_or(u64::MAX) & 0xffff_ffff;
                        let basic = if reason < 0x400 {
                            reason & 0xffff
                        } else {
                            reason
                        };
                        if IO_EXIT_REASONS.contains(&basic) {
                            t.io_exits += 1;
                            r.last_io_exit = Some(h.ts);
                        }
                        if let Some(s) = r.in_guest_since.take() {
                            let d = (h.ts - s).max(0) as u64;
                            t.guest_ns += d;
                            if let Some(cr3) = r.guest_cr3 {
                                let p = obs.processes.entry((tid, cr3)).or_default();
                                p.guest_ns += d;
                                p.exits += 1;
                            }
                        }
                    }
                    Kind::Inject => {
                        let Some(v) = get(fl.a) else { continue };
                        let v = v as u32;
                        *t.injections.entry(v).or_default() += 1;
                        if let Some(d) = r.wait_pending.take() {
                            let w = t.waits.entry(Some(v)).or_default();
                            w.0 += 1;
                            w.1 += d;
                        }
                        r.injected_since_entry.push(v);
                    }
                    Kind::EnterGuest => {
                        let Some(cr3) = get(fl.a) else { continue };
                        if let Some(v) = get(fl.b) {
                            t.vcpu.get_or_insert(v as u32);
                        }
                        r.guest_cr3 = Some(cr3);
                        let p = obs.processes.entry((tid, cr3)).or_default();
                        for v in r.injected_since_entry.drain(..) {
                            *p.injections.entry(v).or_default() += 1;
                        }
                    }
                    _ => unreachable!(),
                }
            }
            Kind::AcceptIrq | Kind::MsiSetIrq => {
                let (Some(tid), Some(v)) = (current, get(fl.a)) else {
                    continue;
                };
                let vector = (v & 0xff) as u32;
                *obs.threads
                    .entry(tid)
                    .or_default()
                    .raised
                    .entry(vector)
                    .or_default() += 1;
            }
            Kind::Packet => {
                if let Some(tid) = current.filter(|&t| t != 0) {
                    obs.threads.entry(tid).or_default().packets += 1;
                }
            }
            Kind::RqIssue => {
                let key = (get(fl.a).unwrap_or(0), get(fl.b).unwrap_or(u64::MAX));
                let issuer = current.filter(|&t| t != 0);
                in_flight.insert(key, (h.ts, issuer));
                // Pair with the latest unconsumed I/O exit of a vCPU of the issuer's VM.
                let Some(issuer) = issuer else { continue };
                let Some(pid) = vms.vm_of.get(&issuer) else {
                    continue;
                };
                let mut latest: Option<(u32, i64)> = None;
                for v in vcpus_of_vm.get(pid).into_iter().flatten() {
                    if let Some(ts) = state.get(v).and_then(|r| r.last_io_exit) {
                        if latest.is_none_or(|l| ts > l.1) {
                            latest = Some((*v, ts));
                        }
                    }
                }
                if let Some((v, ts)) = latest {
                    state.get_mut(&v).unwrap().last_io_exit = None;
                    let t = obs.threads.entry(issuer).or_default();
                    t.submit_delays += 1;
                    t.submit_delay_ns += (h.ts - ts).max(0) as u64;
                }
            }
            Kind::RqComplete => {
                let key = (get(fl.a).unwrap_or(0), get(fl.b).unwrap_or(u64::MAX));
                if let Some((issued, issuer)) = in_flight.remove(&key) {
                    match issuer {
                        Some(tid) => {
                            let t = obs.threads.entry(tid).or_default();
                            t.disk_requests += 1;
                            t.disk_latency_ns += (h.ts - issued).max(0) as u64;
                        }
                        None => obs.unattributed_requests += 1,
                    }
                }
            }
            Kind::Other => {}
        }
    }
    // Close what is still open at the end of the trace.
    let end = end_any.max(obs.last_ts);
    for (tid, r) in state {
        let t = obs.threads.entry(tid).or_default();
        if let Some(s) = r.on_cpu_since {
            t.on_cpu_ns += (end - s).max(0) as u64;
        }
        if let Some(s) = r.blocked_since {
            t.blocked_ns += (end - s).max(0) as u64;
        }
        if let Some(s) = r.preempted_since {
            t.preempted_ns += (end - s).max(0) as u64;
        }
        if let Some(s) = r.ready_since {
            t.ready_ns += (end - s).max(0) as u64;
        }
        if let Some(s) = r.in_guest_since {
            let d = (end - s).max(0) as u64;
            t.guest_ns += d;
            if let Some(cr3) = r.guest_cr3 {
                obs.processes.entry((tid, cr3)).or_default().guest_ns += d;
            }
        }
    }
    Ok(obs)
}

fn set_comm(obs: &mut Observations, tid: u32, comm: &str) {
    if tid == 0 {
        return;
    }
    let t = obs.threads.entry(tid).or_default();
    if t.comm != comm {
        t.comm = comm.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtflow_trace::{Value, VecEvent, VecSource};

    fn ev(ts: i64, cpu: u32, name: &str, fields: &[(&str, Value<'static>)]) -> VecEvent {
        VecEvent {
            ts,
            cpu,
            name: name.into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
    fn u(v: u64) -> Value<'static> {
        Value::UInt(v)
    }
    fn s(v: &str) -> Value<'static> {
        Value::Str(v.to_string().into())
    }

    /// A vCPU thread (tid 10) of VM 5 runs the guest, halts, is woken, gets vector 0xec
    /// injected and re-enters; its I/O thread (11) submits a request after an I/O exit.
    #[test]
    fn waits_guest_time_disk_and_packets() {
        let switch = |ts, prev: u64, state: u64, next: u64, comm: &str| {
            ev(
                ts,
                0,
                "sched_switch",
                &[
                    ("prev_pid", u(prev)),
                    ("prev_state", u(state)),
                    ("next_pid", u(next)),
                    ("next_comm", s(comm)),
                ],
            )
        };
        let on = |ts, name: &str, fields: &[(&str, Value<'static>)], tid: u64| {
            let mut f = vec![("common_pid", u(tid))];
            f.extend_from_slice(fields);
            ev(ts, 0, name, &f)
        };
        let events = vec![
            switch(0, 0, 0, 10, "CPU 0/KVM"),
            on(100, "kvm_entry", &[("vcpu_id", u(0))], 10),
            on(1_100, "kvm_exit", &[("exit_reason", u(0x7b))], 10),
            on(1_200, "kvm_entry", &[("vcpu_id", u(0))], 10),
            on(2_200, "kvm_exit", &[("exit_reason", u(0x78))], 10),
            switch(2_300, 10, 1, 11, "IO io1"),
            on(
                2_400,
                "block_rq_issue",
                &[("dev", u(8)), ("sector", u(64))],
                11,
            ),
            on(2_450, "net_dev_queue", &[], 11),
            switch(2_500, 11, 1, 0, "swapper"),
            ev(10_300, 0, "sched_wakeup", &[("pid", u(10))]),
            switch(10_400, 0, 0, 10, "CPU 0/KVM"),
            on(10_500, "kvm_inj_virq", &[("vector", u(0xec))], 10),
            on(10_600, "kvm_entry", &[("vcpu_id", u(0))], 10),
            on(
                12_400,
                "block_rq_complete",
                &[("dev", u(8)), ("sector", u(64))],
                10,
            ),
            on(12_600, "kvm_exit", &[("exit_reason", u(0x78))], 10),
        ];
        let mut src = VecSource::new(events);
        let mut vms = VmThreads::default();
        vms.vm_of.insert(10, 5);
        vms.vm_of.insert(11, 5);
        let obs = observe(&mut src, &vms).unwrap();
        let v = &obs.threads[&10];
        assert_eq!(v.comm, "CPU 0/KVM");
        assert_eq!(v.vcpu, Some(0));
        assert_eq!(v.entries, 3);
        assert_eq!(v.exits, 3);
        assert_eq!(v.io_exits, 1);
        assert_eq!(v.guest_ns, 1_000 + 1_000 + 2_000);
        assert_eq!(v.blocked_ns, 10_300 - 2_300);
        assert_eq!(v.ready_ns, 100);
        assert_eq!(v.on_cpu_ns, 2_300 + (12_600 - 10_400));
        assert_eq!(v.waits[&Some(0xec)], (1, 8_000));
        assert_eq!(v.injections[&0xec], 1);
        let io = &obs.threads[&11];
        assert_eq!(io.disk_requests, 1);
        assert_eq!(io.disk_latency_ns, 10_000);
        assert_eq!(io.submit_delays, 1);
        assert_eq!(io.submit_delay_ns, 2_400 - 1_100);
        assert_eq!(io.packets, 1);
        assert!((obs.duration_s() - 12_600e-9).abs() < 1e-15);
    }

    #[test]
    fn cr3_attribution() {
        let on = |ts, name: &str, fields: &[(&str, Value<'static>)]| {
            let mut f = vec![("common_pid", u(7))];
            f.extend_from_slice(fields);
            ev(ts, 0, name, &f)
        };
        let events = vec![
            on(0, "kvm_inj_virq", &[("vector", u(0xfd))]),
            on(
                1,
                "vcpu_enter_guest",
                &[("cr3", u(0x1000)), ("vcpu_id", u(1))],
            ),
            on(2, "kvm_entry", &[("vcpu_id", u(1))]),
            on(12, "kvm_exit", &[("exit_reason", u(1))]),
            on(
                13,
                "vcpu_enter_guest",
                &[("cr3", u(0x2000)), ("vcpu_id", u(1))],
            ),
            on(14, "kvm_entry", &[("vcpu_id", u(1))]),
            on(44, "kvm_exit", &[("exit_reason", u(1))]),
        ];
        let obs = observe(&mut VecSource::new(events), &VmThreads::default()).unwrap();
        let a = &obs.processes[&(7, 0x1000)];
        assert_eq!((a.entries, a.exits, a.guest_ns), (1, 1, 10));
        assert_eq!(a.injections[&0xfd], 1);
        let b = &obs.processes[&(7, 0x2000)];
        assert_eq!((b.entries, b.exits, b.guest_ns), (1, 1, 30));
        assert!(b.injections.is_empty());
    }
}

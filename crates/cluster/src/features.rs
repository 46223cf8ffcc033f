//! The feature catalogue and the join of the [`Model`] with the [`Observations`] into a
//! [`FeatureTable`] at one [`Level`].
//!
//! State shares come from the Model (the W2A analysis); when the Model has no time for a
//! vCPU, the observer's coarse accounting (guest, on-CPU, blocked, preempted, ready) stands
//! in and a note says so. Injected vectors are classified with the Model's
//! [`virtflow_model::VectorStat`] classes when it has them, else by the fixed Linux vectors
//! and by the role of the host thread that raised them (DOMAIN.md).

use std::collections::HashMap;

use virtflow_model::{Model, ThreadRole, WaitCause};

use crate::observe::{Observations, ThreadObs, VmThreads};
use crate::table::{FeatureDef, FeatureTable, Level, Row, RowKey};

fn def(name: &str, unit: &str, description: &str) -> FeatureDef {
    FeatureDef {
        name: name.into(),
        unit: unit.into(),
        description: description.into(),
    }
}

const CAUSES: [WaitCause; 5] = WaitCause::ALL;

/// Every feature of the VM and vCPU levels, in column order.
pub fn vm_features() -> Vec<FeatureDef> {
    let mut f = Vec::new();
    for c in CAUSES {
        f.push(def(
            &format!("irq_{}_rate", c.name()),
            "1/s",
            &format!(
                "interrupts of class {} injected, per second of trace",
                c.name()
            ),
        ));
    }
    f.push(def(
        "guest_share",
        "ratio",
        "share of observed vCPU time running guest code",
    ));
    f.push(def(
        "hypervisor_share",
        "ratio",
        "share of observed vCPU time in the host handling exits (kernel and VMM user space)",
    ));
    f.push(def(
        "preempted_share",
        "ratio",
        "share of observed vCPU time switched out while runnable",
    ));
    f.push(def(
        "ready_share",
        "ratio",
        "share of observed vCPU time woken but not yet running",
    ));
    f.push(def(
        "wait_share",
        "ratio",
        "share of observed vCPU time blocked (all causes)",
    ));
    f.push(def(
        "cpu_use",
        "ratio",
        "guest_share + hypervisor_share: the vCPU on a physical CPU",
    ));
    f.push(def(
        "cpu_demand",
        "ratio",
        "cpu_use + preempted_share: the vCPU running or wanting to run (overcommit shows here)",
    ));
    for c in CAUSES {
        f.push(def(
            &format!("wait_{}_rate", c.name()),
            "1/s",
            &format!(
                "wait episodes ended by a {} wake-up, per second of trace",
                c.name()
            ),
        ));
    }
    for c in CAUSES {
        f.push(def(
            &format!("wait_{}_mean_us", c.name()),
            "us",
            &format!(
                "mean duration of the wait episodes ended by a {} wake-up",
                c.name()
            ),
        ));
    }
    f.push(def("exit_rate", "1/s", "VM exits per second of trace"));
    f.push(def(
        "disk_rq_rate",
        "1/s",
        "block requests issued by the VM's threads and completed, per second (the VM's, at vcpu level)",
    ));
    f.push(def(
        "disk_rq_latency_us",
        "us",
        "mean block_rq_issue → block_rq_complete latency of those requests",
    ));
    f.push(def(
        "disk_submit_delay_us",
        "us",
        "mean delay from a vCPU's I/O exit to the next block request the VM's threads issue",
    ));
    f.push(def(
        "net_pkt_rate",
        "1/s",
        "network events (net_dev_queue, netif_receive_skb…) in the VM's vhost threads, per second",
    ));
    f
}

/// Every feature of the process (CR3) level, in column order.
pub fn process_features() -> Vec<FeatureDef> {
    let mut f = Vec::new();
    for c in CAUSES {
        f.push(def(
            &format!("irq_{}_rate", c.name()),
            "1/s",
            &format!(
                "interrupts of class {} injected before entries into this process, per second",
                c.name()
            ),
        ));
    }
    f.push(def(
        "guest_share",
        "ratio",
        "share of the trace's duration the vCPU ran this process",
    ));
    f.push(def(
        "entry_rate",
        "1/s",
        "guest entries into this process per second",
    ));
    f.push(def(
        "exit_rate",
        "1/s",
        "VM exits out of this process per second",
    ));
    f
}

/// All features of all levels, for docs and CSV reading.
pub fn catalogue() -> Vec<FeatureDef> {
    let mut all = vm_features();
    for f in process_features() {
        if !all.iter().any(|g| g.name == f.name) {
            all.push(f);
        }
    }
    all
}

/// Class of a vector whatever the VM: Linux guests' fixed vectors.
pub fn fixed_vector_class(vector: u32) -> Option<WaitCause> {
    match vector {
        0xec | 0xef => Some(WaitCause::Timer),
        0xfb..=0xfd => Some(WaitCause::Task),
        0xf6 => Some(WaitCause::Other),
        _ => None,
    }
}

/// What the Model says about one vCPU.
#[derive(Clone, Copy, Debug)]
struct ModelVcpu {
    times: virtflow_model::StateTimes,
    /// Waits that ended, per cause.
    waits: virtflow_model::WaitTimes,
}

/// A VM as the features see it: its identity, vCPU threads and helper threads by role.
#[derive(Clone, Debug, Default)]
struct VmView {
    pid: u32,
    name: String,
    truth: Option<String>,
    /// (vCPU number, thread, the Model's state times and wait counts if it has them)
    vcpus: Vec<(u32, u32, Option<ModelVcpu>)>,
    helpers: Vec<(u32, ThreadRole)>,
    vector_class: HashMap<u32, WaitCause>,
    exits_from_model: Option<u64>,
}

fn role_from_comm(comm: &str, pid: u32, tid: u32) -> ThreadRole {
    if comm.starts_with("vhost-") {
        ThreadRole::Vhost
    } else if comm.starts_with("IO ") || comm.starts_with("iothread") {
        ThreadRole::IoThread
    } else if comm == "worker" || comm.starts_with("worker") {
        ThreadRole::Worker
    } else if tid == pid {
        ThreadRole::MainLoop
    } else {
        ThreadRole::Other
    }
}

/// The VMs of the Model, or — when it has none — one per thread that entered a guest, with
/// vhost threads attached by their `vhost-<pid>` name.
fn vm_views(model: &Model, obs: &Observations, notes: &mut Vec<String>) -> Vec<VmView> {
    let mut views: Vec<VmView> = model
        .vms
        .iter()
        .map(|vm| VmView {
            pid: vm.pid,
            name: vm.name.clone(),
            truth: vm.workload.clone(),
            vcpus: vm
                .vcpus
                .iter()
                .map(|v| {
                    let m = ModelVcpu {
                        times: v.time_ns,
                        waits: v.waits,
                    };
                    (v.vcpu, v.tid, (v.time_ns.total() > 0).then_some(m))
                })
                .collect(),
            helpers: vm.threads.iter().map(|t| (t.tid, t.role)).collect(),
            vector_class: vm.injections.iter().map(|s| (s.vector, s.class)).collect(),
            exits_from_model: (!vm.exits.is_empty())
                .then(|| vm.exits.iter().map(|e| e.count).sum()),
        })
        .collect();
    if views.is_empty() {
        let mut tids: Vec<(&u32, &ThreadObs)> =
            obs.threads.iter().filter(|(_, t)| t.entries > 0).collect();
        tids.sort_by_key(|(tid, _)| **tid);
        if !tids.is_empty() {
            notes.push(
                "the analysis found no VM: each thread that entered a guest is taken as a VM"
                    .into(),
            );
        }
        for (tid, t) in tids {
            views.push(VmView {
                pid: *tid,
                name: format!("vcpu-thread-{tid}"),
                vcpus: vec![(t.vcpu.unwrap_or(0), *tid, None)],
                ..Default::default()
            });
        }
    }
    // Helper threads the Model does not list: vhost threads are named after their VMM pid.
    for (tid, t) in &obs.threads {
        if let Some(pid) = t
            .comm
            .strip_prefix("vhost-")
            .and_then(|p| p.parse::<u32>().ok())
        {
            if let Some(v) = views.iter_mut().find(|v| v.pid == pid) {
                if !v.helpers.iter().any(|h| h.0 == *tid) {
                    v.helpers.push((*tid, ThreadRole::Vhost));
                }
            }
        }
    }
    for v in &mut views {
        if !v.helpers.iter().any(|h| h.0 == v.pid) && obs.threads.contains_key(&v.pid) {
            v.helpers.push((v.pid, ThreadRole::MainLoop));
        }
    }
    views
}

/// Which VM each known thread belongs to, for the observer's I/O pairing.
pub fn vm_threads(model: &Model) -> VmThreads {
    let mut m = VmThreads::default();
    for vm in &model.vms {
        m.vm_of.insert(vm.pid, vm.pid);
        for v in &vm.vcpus {
            m.vm_of.insert(v.tid, vm.pid);
        }
        for t in &vm.threads {
            m.vm_of.insert(t.tid, vm.pid);
        }
    }
    m
}

/// Classifies the vectors injected into `vm` that the Model did not classify: fixed Linux
/// vectors first, then by the role of the thread that raised the vector most often.
fn classify_vectors(vm: &VmView, obs: &Observations) -> HashMap<u32, WaitCause> {
    let mut classes = vm.vector_class.clone();
    let vcpu_tids: Vec<u32> = vm.vcpus.iter().map(|v| v.1).collect();
    let mut votes: HashMap<u32, HashMap<WaitCause, u64>> = HashMap::new();
    let mut threads: Vec<(u32, ThreadRole)> = vm.helpers.clone();
    threads.extend(vcpu_tids.iter().map(|t| (*t, ThreadRole::Other)));
    for (tid, role) in threads {
        let Some(t) = obs.threads.get(&tid) else {
            continue;
        };
        let role = if role == ThreadRole::Other && !vcpu_tids.contains(&tid) {
            role_from_comm(&t.comm, vm.pid, tid)
        } else {
            role
        };
        let class = if vcpu_tids.contains(&tid) {
            WaitCause::Task
        } else {
            match role {
                ThreadRole::Vhost => WaitCause::Network,
                ThreadRole::IoThread | ThreadRole::Worker | ThreadRole::MainLoop => WaitCause::Disk,
                ThreadRole::Other => WaitCause::Other,
            }
        };
        for (v, n) in &t.raised {
            *votes.entry(*v).or_default().entry(class).or_default() += n;
        }
    }
    let injected: Vec<u32> = vcpu_tids
        .iter()
        .filter_map(|t| obs.threads.get(t))
        .flat_map(|t| t.injections.keys().copied())
        .collect();
    for v in injected {
        if classes.contains_key(&v) {
            continue;
        }
        let class = fixed_vector_class(v).unwrap_or_else(|| {
            votes
                .get(&v)
                .and_then(|m| m.iter().max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c))))
                .map(|(c, _)| *c)
                .unwrap_or(WaitCause::Other)
        });
        classes.insert(v, class);
    }
    classes
}

fn cause_index(c: WaitCause) -> usize {
    CAUSES.iter().position(|x| *x == c).unwrap()
}

/// Accumulators of one row at the VM and vCPU levels.
#[derive(Default)]
struct Acc {
    irq: [f64; 5],
    guest: f64,
    hypervisor: f64,
    preempted: f64,
    ready: f64,
    waiting: f64,
    observed: f64,
    waits: [(f64, f64); 5],
    exits: f64,
}

impl Acc {
    fn add_vcpu(
        &mut self,
        t: Option<&ThreadObs>,
        model: Option<ModelVcpu>,
        classes: &HashMap<u32, WaitCause>,
        used_fallback: &mut bool,
    ) {
        // The Model's wait counts decide causes with both signals (waker and vector); the
        // observer's, with the vector only.
        let model_waits = model.filter(|m| m.waits.total() > 0);
        if let Some(m) = model_waits {
            for c in CAUSES {
                let w = &mut self.waits[cause_index(c)];
                w.0 += m.waits.get(c) as f64;
                w.1 += m.times.waiting.get(c) as f64;
            }
        }
        if let Some(t) = t {
            for (v, n) in &t.injections {
                let c = classes.get(v).copied().unwrap_or(WaitCause::Other);
                self.irq[cause_index(c)] += *n as f64;
            }
            for (v, (n, ns)) in t.waits.iter().filter(|_| model_waits.is_none()) {
                let c = match v {
                    Some(v) => classes.get(v).copied().unwrap_or(WaitCause::Other),
                    None => WaitCause::Other,
                };
                let w = &mut self.waits[cause_index(c)];
                w.0 += *n as f64;
                w.1 += *ns as f64;
            }
            self.exits += t.exits as f64;
        }
        match model.map(|m| m.times) {
            Some(s) => {
                self.guest += s.guest as f64;
                self.hypervisor += s.hypervisor as f64;
                self.preempted += s.preempted as f64;
                self.ready += s.ready as f64;
                self.waiting += s.waiting.total() as f64;
                self.observed += (s.total() - s.unknown) as f64;
            }
            None => {
                if let Some(t) = t {
                    *used_fallback = true;
                    let guest = t.guest_ns.min(t.on_cpu_ns) as f64;
                    self.guest += guest;
                    self.hypervisor += t.on_cpu_ns as f64 - guest;
                    self.preempted += t.preempted_ns as f64;
                    self.ready += t.ready_ns as f64;
                    self.waiting += t.blocked_ns as f64;
                    self.observed +=
                        (t.on_cpu_ns + t.preempted_ns + t.ready_ns + t.blocked_ns) as f64;
                }
            }
        }
    }

    fn values(&self, secs: f64, vm: &VmDevice) -> Vec<f64> {
        let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let share = |x: f64| {
            if self.observed > 0.0 {
                x / self.observed
            } else {
                0.0
            }
        };
        let mut v = Vec::new();
        v.extend(self.irq.iter().map(|x| rate(*x)));
        v.push(share(self.guest));
        v.push(share(self.hypervisor));
        v.push(share(self.preempted));
        v.push(share(self.ready));
        v.push(share(self.waiting));
        v.push(share(self.guest + self.hypervisor));
        v.push(share(self.guest + self.hypervisor + self.preempted));
        v.extend(self.waits.iter().map(|w| rate(w.0)));
        v.extend(
            self.waits
                .iter()
                .map(|w| if w.0 > 0.0 { w.1 / w.0 / 1e3 } else { 0.0 }),
        );
        v.push(rate(self.exits));
        v.push(rate(vm.requests));
        v.push(if vm.requests > 0.0 {
            vm.latency_ns / vm.requests / 1e3
        } else {
            0.0
        });
        v.push(if vm.submits > 0.0 {
            vm.submit_ns / vm.submits / 1e3
        } else {
            0.0
        });
        v.push(rate(vm.packets));
        v
    }
}

/// Disk and network measurements of a whole VM (its helper threads).
#[derive(Default)]
struct VmDevice {
    requests: f64,
    latency_ns: f64,
    submits: f64,
    submit_ns: f64,
    packets: f64,
}

/// Builds the rows of one trace. `trace` names it in every row key.
pub fn build(
    model: &Model,
    obs: &Observations,
    trace: &str,
    level: Level,
) -> (FeatureTable, Vec<String>) {
    let mut notes = Vec::new();
    let views = vm_views(model, obs, &mut notes);
    let secs = obs.duration_s();
    let mut used_fallback = false;
    let features = match level {
        Level::Process => process_features(),
        _ => vm_features(),
    };
    let mut table = FeatureTable::new(level, features);
    for vm in &views {
        let classes = classify_vectors(vm, obs);
        let mut dev = VmDevice::default();
        let mut threads: Vec<u32> = vm.helpers.iter().map(|h| h.0).collect();
        threads.extend(vm.vcpus.iter().map(|v| v.1));
        threads.sort_unstable();
        threads.dedup();
        for tid in &threads {
            let Some(t) = obs.threads.get(tid) else {
                continue;
            };
            dev.requests += t.disk_requests as f64;
            dev.latency_ns += t.disk_latency_ns as f64;
            dev.submits += t.submit_delays as f64;
            dev.submit_ns += t.submit_delay_ns as f64;
            let is_vhost = vm
                .helpers
                .iter()
                .any(|h| h.0 == *tid && h.1 == ThreadRole::Vhost)
                || t.comm.starts_with("vhost-");
            if is_vhost {
                dev.packets += t.packets as f64;
            }
        }
        let key = |vcpu: Option<u32>, tid: Option<u32>, cr3: Option<u64>| RowKey {
            trace: trace.to_string(),
            vm: vm.name.clone(),
            pid: vm.pid,
            vcpu,
            tid,
            cr3,
        };
        match level {
            Level::Vm => {
                let mut acc = Acc::default();
                for (_, tid, times) in &vm.vcpus {
                    acc.add_vcpu(obs.threads.get(tid), *times, &classes, &mut used_fallback);
                }
                if let Some(n) = vm.exits_from_model {
                    acc.exits = n as f64;
                }
                table.rows.push(Row {
                    key: key(None, None, None),
                    values: acc.values(secs, &dev),
                    truth: vm.truth.clone(),
                });
            }
            Level::Vcpu => {
                for (n, tid, times) in &vm.vcpus {
                    let mut acc = Acc::default();
                    acc.add_vcpu(obs.threads.get(tid), *times, &classes, &mut used_fallback);
                    table.rows.push(Row {
                        key: key(Some(*n), Some(*tid), None),
                        values: acc.values(secs, &dev),
                        truth: vm.truth.clone(),
                    });
                }
            }
            Level::Process => {
                let mut procs: Vec<(&(u32, u64), &crate::observe::ProcessObs)> = obs
                    .processes
                    .iter()
                    .filter(|((tid, _), _)| vm.vcpus.iter().any(|v| v.1 == *tid))
                    .collect();
                procs.sort_by_key(|(k, _)| **k);
                // One row per (VM, CR3): a process may run on several vCPUs.
                let mut by_cr3: Vec<(u64, Vec<&crate::observe::ProcessObs>, u32)> = Vec::new();
                for ((tid, cr3), p) in procs {
                    let vcpu = vm.vcpus.iter().find(|v| v.1 == *tid).map_or(0, |v| v.0);
                    match by_cr3.iter_mut().find(|e| e.0 == *cr3) {
                        Some(e) => e.1.push(p),
                        None => by_cr3.push((*cr3, vec![p], vcpu)),
                    }
                }
                for (cr3, parts, _) in by_cr3 {
                    let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
                    let mut irq = [0.0; 5];
                    let (mut guest, mut entries, mut exits) = (0.0, 0.0, 0.0);
                    for p in parts {
                        for (v, n) in &p.injections {
                            let c = classes.get(v).copied().unwrap_or(WaitCause::Other);
                            irq[cause_index(c)] += *n as f64;
                        }
                        guest += p.guest_ns as f64;
                        entries += p.entries as f64;
                        exits += p.exits as f64;
                    }
                    let mut values: Vec<f64> = irq.iter().map(|x| rate(*x)).collect();
                    values.push(if secs > 0.0 {
                        guest / (secs * 1e9)
                    } else {
                        0.0
                    });
                    values.push(rate(entries));
                    values.push(rate(exits));
                    table.rows.push(Row {
                        key: key(None, None, Some(cr3)),
                        values,
                        truth: vm.truth.clone(),
                    });
                }
            }
        }
    }
    if used_fallback {
        notes.push(format!(
            "{trace}: state shares of some vCPUs come from the observer's coarse accounting \
             (the analysis reported no time for them)"
        ));
    }
    if level == Level::Process && table.rows.is_empty() {
        notes.push(format!(
            "{trace}: no guest CR3 in this trace (needs `vcpu_enter_guest` or \
             `addons_vcpu_enter_guest`): no process rows"
        ));
    }
    (table, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_are_unique_and_have_units() {
        let c = catalogue();
        for (i, f) in c.iter().enumerate() {
            assert!(!f.unit.is_empty() && !f.description.is_empty(), "{f:?}");
            assert!(c[i + 1..].iter().all(|g| g.name != f.name), "{}", f.name);
        }
    }

    #[test]
    fn docs_list_every_feature() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/features.md"
        ))
        .expect("docs/features.md");
        for f in catalogue() {
            assert!(
                doc.contains(&format!("`{}`", f.name)),
                "{} not in docs",
                f.name
            );
        }
    }

    #[test]
    fn fixed_vectors() {
        assert_eq!(fixed_vector_class(0xec), Some(WaitCause::Timer));
        assert_eq!(fixed_vector_class(0xfd), Some(WaitCause::Task));
        assert_eq!(fixed_vector_class(0x23), None);
    }

    #[test]
    fn device_vectors_learned_from_the_raiser() {
        use crate::observe::ThreadObs;
        let mut obs = Observations {
            first_ts: 0,
            last_ts: 2_000_000_000,
            ..Default::default()
        };
        let mut vcpu = ThreadObs {
            comm: "CPU 0/KVM".into(),
            vcpu: Some(0),
            entries: 10,
            guest_ns: 1_000_000_000,
            on_cpu_ns: 1_500_000_000,
            blocked_ns: 500_000_000,
            ..Default::default()
        };
        vcpu.injections.insert(0x23, 100);
        vcpu.injections.insert(0x25, 40);
        vcpu.injections.insert(0xec, 500);
        obs.threads.insert(139, vcpu);
        let mut io = ThreadObs {
            comm: "IO io1".into(),
            disk_requests: 50,
            disk_latency_ns: 50_000_000,
            ..Default::default()
        };
        io.raised.insert(0x23, 100);
        obs.threads.insert(133, io);
        let mut vhost = ThreadObs {
            comm: "vhost-127".into(),
            packets: 300,
            ..Default::default()
        };
        vhost.raised.insert(0x25, 40);
        obs.threads.insert(138, vhost);
        let model = Model {
            vms: vec![virtflow_model::Vm {
                pid: 127,
                name: "vm1".into(),
                vcpus: vec![virtflow_model::Vcpu {
                    vcpu: 0,
                    tid: 139,
                    ..Default::default()
                }],
                threads: vec![virtflow_model::HelperThread {
                    tid: 133,
                    comm: "IO io1".into(),
                    role: ThreadRole::IoThread,
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let (t, notes) = build(&model, &obs, "t", Level::Vm);
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.value(0, "irq_disk_rate"), Some(50.0));
        assert_eq!(t.value(0, "irq_network_rate"), Some(20.0));
        assert_eq!(t.value(0, "irq_timer_rate"), Some(250.0));
        assert_eq!(t.value(0, "disk_rq_rate"), Some(25.0));
        assert_eq!(t.value(0, "disk_rq_latency_us"), Some(1000.0));
        assert_eq!(t.value(0, "net_pkt_rate"), Some(150.0));
        assert_eq!(t.value(0, "guest_share"), Some(0.5));
        assert_eq!(t.value(0, "cpu_use"), Some(0.75));
        assert!(notes.iter().any(|n| n.contains("coarse")), "{notes:?}");
    }
}

//! The feature catalogue, and the rows of a [`Model`] at one [`Level`] over the whole trace
//! (the rows of time windows are [`crate::windows`]').
//!
//! Every feature comes from the model the one analysis pass wrote: state shares and wait
//! counts of the W2A analysis, guest user time (`guest_rip` at exits), injected vectors with
//! the class the analysis learned for them (fixed Linux vectors, device vectors by the helper
//! thread that raised them), exits by kind, the VM's device work
//! ([`virtflow_model::IoStats`]) and the guest processes. So a model saved by
//! `virtflow analyze --json` clusters exactly as the trace it came from.

use virtflow_model::{ExitKind, GuestProcess, IoStats, Model, Vcpu, Vm, WaitCause};

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
    f.push(def(
        "guest_user_share",
        "ratio",
        "share of guest time in guest user space (guest_rip at the exit ending each run)",
    ));
    f.push(def(
        "steal_share",
        "ratio",
        "share of observed vCPU time runnable but not running (preempted or ready): steal",
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
    for k in ExitKind::ALL {
        f.push(def(
            &format!("exit_{}_share", k.name()),
            "ratio",
            &format!("share of the VM exits of kind {}", k.name()),
        ));
    }
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

fn cause_index(c: WaitCause) -> usize {
    CAUSES
        .iter()
        .position(|x| *x == c)
        .unwrap_or(CAUSES.len() - 1)
}

/// Accumulators of one row at the VM and vCPU levels, over the whole trace (from the totals)
/// or over a window (from the series, [`crate::windows`]).
#[derive(Default)]
pub(crate) struct Acc {
    pub irq: [f64; 5],
    pub guest: f64,
    pub guest_user: f64,
    pub hypervisor: f64,
    pub preempted: f64,
    pub ready: f64,
    pub waiting: f64,
    pub observed: f64,
    /// Per cause: (waits ended, time waiting).
    pub waits: [(f64, f64); 5],
    pub exits: f64,
    pub exit_kinds: [f64; 6],
}

impl Acc {
    /// A vCPU's totals. Its exits by kind come from its series when the run kept them;
    /// otherwise the caller adds its VM's exit table ([`Acc::add_exit_table`]).
    fn add_vcpu(&mut self, v: &Vcpu) {
        self.guest_user += v.guest_user_ns as f64;
        for s in &v.injections {
            self.irq[cause_index(s.class)] += s.count as f64;
        }
        for c in CAUSES {
            let w = &mut self.waits[cause_index(c)];
            w.0 += v.waits.get(c) as f64;
            w.1 += v.time_ns.waiting.get(c) as f64;
        }
        let s = &v.time_ns;
        self.guest += s.guest as f64;
        self.hypervisor += s.hypervisor as f64;
        self.preempted += s.preempted as f64;
        self.ready += s.ready as f64;
        self.waiting += s.waiting.total() as f64;
        self.observed += (s.total() - s.unknown) as f64;
        self.exits += v.exit_count as f64;
    }

    /// Exits by kind from a VM's exit table (`perf kvm stat`'s, by reason).
    fn add_exit_table(&mut self, vm: &Vm) {
        for e in &vm.exits {
            let kind = e
                .isa
                .map_or(ExitKind::Other, |isa| ExitKind::of(isa, e.code));
            self.exit_kinds[kind.index()] += e.count as f64;
        }
    }

    /// Exits by kind from a vCPU's series; false when it has none (series not kept, or a
    /// model saved before they existed).
    fn add_exit_series(&mut self, v: &Vcpu) -> bool {
        let Some(a) = &v.activity else { return false };
        let counts: Vec<u64> = a.exit_kinds.iter().map(|s| s.iter().sum()).collect();
        if counts.iter().all(|c| *c == 0) && v.exit_count > 0 {
            return false;
        }
        for (k, c) in counts.iter().enumerate() {
            self.exit_kinds[k] += *c as f64;
        }
        true
    }

    /// The row's values, in [`vm_features`]' order, over `secs` seconds with the VM's device
    /// work `io`.
    pub(crate) fn values(&self, secs: f64, io: &IoStats) -> Vec<f64> {
        let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let share = |x: f64| {
            if self.observed > 0.0 {
                x / self.observed
            } else {
                0.0
            }
        };
        let mean_us = |total_ns: f64, n: f64| if n > 0.0 { total_ns / n / 1e3 } else { 0.0 };
        let mut v = Vec::new();
        v.extend(self.irq.iter().map(|x| rate(*x)));
        v.push(share(self.guest));
        v.push(share(self.hypervisor));
        v.push(share(self.preempted));
        v.push(share(self.ready));
        v.push(share(self.waiting));
        v.push(share(self.guest + self.hypervisor));
        v.push(share(self.guest + self.hypervisor + self.preempted));
        v.push(if self.guest > 0.0 {
            self.guest_user / self.guest
        } else {
            0.0
        });
        v.push(share(self.preempted + self.ready));
        v.extend(self.waits.iter().map(|w| rate(w.0)));
        v.extend(self.waits.iter().map(|w| mean_us(w.1, w.0)));
        v.push(rate(self.exits));
        let kinds: f64 = self.exit_kinds.iter().sum();
        v.extend(
            self.exit_kinds
                .iter()
                .map(|k| if kinds > 0.0 { k / kinds } else { 0.0 }),
        );
        let requests = io.disk_requests as f64;
        v.push(rate(requests));
        v.push(mean_us(io.disk_latency_ns as f64, requests));
        v.push(mean_us(io.submit_delay_ns as f64, io.submit_delays as f64));
        v.push(rate(io.packets as f64));
        v
    }
}

/// The host `vm` ran on (the first when none bears its name).
pub(crate) fn host_of<'a>(model: &'a Model, vm: &Vm) -> Option<&'a virtflow_model::Host> {
    model
        .hosts
        .iter()
        .find(|h| h.name == vm.host)
        .or(model.hosts.first())
}

/// Seconds the host of `vm` was traced: the denominator of every rate.
fn traced_seconds(model: &Model, vm: &Vm) -> f64 {
    host_of(model, vm).map_or(0.0, |h| (h.end_ns - h.start_ns).max(0) as f64 / 1e9)
}

/// The keys of `vm`'s rows over `span` (its host's whole span, or one window): given the vCPU,
/// thread and guest process of a row (none: the VM's own row).
pub(crate) fn row_key<'a>(
    source: &'a str,
    vm: &'a Vm,
    span: Option<(i64, i64)>,
) -> impl Fn(Option<u32>, Option<u32>, Option<u64>) -> RowKey + 'a {
    move |vcpu, tid, cr3| RowKey {
        trace: source.to_string(),
        host: vm.host.clone(),
        vm: vm.name.clone(),
        pid: vm.pid,
        vcpu,
        tid,
        cr3,
        start: span.map(|s| s.0),
        end: span.map(|s| s.1),
    }
}

/// What names a VM's rows: the trace (or, in an experiment of several hosts, its host's
/// traces, since pids repeat from host to host).
pub(crate) fn source_of(model: &Model, vm: &Vm, trace: &str) -> String {
    let several = model.hosts.len() > 1;
    match model.hosts.iter().find(|h| h.name == vm.host) {
        Some(h) if several && !h.traces.is_empty() => h.traces.join(", "),
        Some(h) if several => h.name.clone(),
        _ => trace.to_string(),
    }
}

/// Builds the rows of one model at `level`; `trace` names them in every row key. Everything
/// comes from the model: the clustering never reads a trace.
pub fn build(model: &Model, trace: &str, level: Level) -> (FeatureTable, Vec<String>) {
    let mut notes = Vec::new();
    let features = match level {
        Level::Process => process_features(),
        _ => vm_features(),
    };
    let mut table = FeatureTable::new(level, features);
    for vm in &model.vms {
        let secs = traced_seconds(model, vm);
        let source = source_of(model, vm, trace);
        // A whole-trace row covers its host's span.
        let span = host_of(model, vm).map(|h| (h.start_ns, h.end_ns));
        let key = row_key(&source, vm, span);
        match level {
            Level::Vm => {
                let mut acc = Acc::default();
                vm.vcpus.iter().for_each(|v| acc.add_vcpu(v));
                acc.add_exit_table(vm);
                table.rows.push(Row {
                    key: key(None, None, None),
                    values: acc.values(secs, &vm.io),
                    truth: vm.workload.clone(),
                });
            }
            Level::Vcpu => {
                for v in &vm.vcpus {
                    let mut acc = Acc::default();
                    acc.add_vcpu(v);
                    if !acc.add_exit_series(v) {
                        // No series: the vCPU's exits are assumed to mix as its VM's do.
                        acc.add_exit_table(vm);
                    }
                    table.rows.push(Row {
                        key: key(Some(v.vcpu), Some(v.tid), None),
                        values: acc.values(secs, &vm.io),
                        truth: vm.workload.clone(),
                    });
                }
            }
            Level::Process => {
                // One row per (VM, CR3): a process may run on several vCPUs.
                let mut by_cr3: Vec<(u64, Vec<&GuestProcess>)> = Vec::new();
                for p in vm.vcpus.iter().flat_map(|v| &v.processes) {
                    match by_cr3.iter_mut().find(|e| e.0 == p.cr3) {
                        Some(e) => e.1.push(p),
                        None => by_cr3.push((p.cr3, vec![p])),
                    }
                }
                by_cr3.sort_by_key(|e| e.0);
                let rate = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
                for (cr3, parts) in by_cr3 {
                    let mut irq = [0.0; 5];
                    let (mut guest, mut entries, mut exits) = (0.0, 0.0, 0.0);
                    for p in parts {
                        for s in &p.injections {
                            irq[cause_index(s.class)] += s.count as f64;
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
                        truth: vm.workload.clone(),
                    });
                }
            }
        }
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
}

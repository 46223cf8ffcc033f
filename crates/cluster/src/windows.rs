//! Rows of time windows: the features of every VM, vCPU or guest process over each window of
//! its host's time line, from the series the one analysis pass kept (`Options::series`).
//!
//! A workload is a phase, not a trace: a VM that computes for 8 s of a 19 s recording is idle
//! the rest of the time, and its features averaged over the trace read as neither. Windows are
//! whole numbers of the host's buckets ([`virtflow_model::Buckets`]), so a window's features are
//! sums of consecutive series values — nothing is read again, whatever the window. The
//! features are those of the whole-trace rows ([`crate::features`]), rates per second of the
//! window. A window in which nothing of the row was observed (a vCPU whose state is unknown
//! throughout, a process that did not run) gives no row.

use virtflow_model::{Buckets, Host, IoStats, Model, Vm, WaitCause};

use crate::features::{self, host_of, source_of, Acc};
use crate::table::{FeatureTable, Level, Row};

/// How long the windows are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowSpec {
    /// One row per VM, vCPU or process over the whole trace.
    Whole,
    /// About a fortieth of the trace, at least [`AUTO_MIN_NS`] ([`auto_length`]).
    Auto,
    /// About this long (ns), rounded to a whole number of buckets.
    Length(i64),
}

/// Windows the automatic length cuts a trace into.
pub const AUTO_WINDOWS: i64 = 40;
/// The shortest automatic window: below it, a VM's timer alone (a Linux guest's tick, 4 ms
/// at the slowest) gives too few events for a rate.
pub const AUTO_MIN_NS: i64 = 100_000_000;

impl WindowSpec {
    /// `auto`, `whole`, or a duration: `500ms`, `2s`, `1.5s`, `250us`, `1min`, `20000000ns`.
    pub fn parse(s: &str) -> Result<WindowSpec, String> {
        match s {
            "auto" => return Ok(WindowSpec::Auto),
            "whole" => return Ok(WindowSpec::Whole),
            _ => {}
        }
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let scale = match unit {
            "ns" => 1.0,
            "us" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "min" => 60e9,
            _ => {
                return Err(format!(
                    "--window takes auto, whole or a duration such as 500ms or 2s, not {s:?}"
                ))
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("--window: {s:?} is not a duration"))?;
        let ns = (value * scale).round();
        if !(ns >= 1.0 && ns < i64::MAX as f64) {
            return Err(format!("--window must be longer than 0, not {s:?}"));
        }
        Ok(WindowSpec::Length(ns as i64))
    }
}

/// The automatic window length for a trace spanning `span_ns`.
pub fn auto_length(span_ns: i64) -> i64 {
    (span_ns / AUTO_WINDOWS).max(AUTO_MIN_NS)
}

/// The windows of one host: `(first bucket, end bucket)` pairs covering its buckets. The last
/// window takes the remainder, so that it is between half and one and a half windows long
/// rather than a sliver whose rates would be noise.
pub fn host_windows(b: &Buckets, length_ns: i64) -> Vec<(usize, usize)> {
    if b.count == 0 || b.step_ns <= 0 {
        return Vec::new();
    }
    let per = buckets_per_window(b, length_ns);
    let n = ((b.count as f64 / per as f64).round() as usize).max(1);
    (0..n)
        .map(|w| (w * per, if w + 1 == n { b.count } else { (w + 1) * per }))
        .collect()
}

/// The whole number of buckets nearest to `length_ns`, at least one.
pub fn buckets_per_window(b: &Buckets, length_ns: i64) -> usize {
    ((length_ns as f64 / b.step_ns.max(1) as f64).round() as usize).max(1)
}

/// Whether the model kept series: its hosts have buckets and its vCPUs their activity.
pub fn has_series(model: &Model) -> bool {
    model.hosts.iter().any(|h| h.buckets.is_some())
        && model
            .vms
            .iter()
            .flat_map(|vm| &vm.vcpus)
            .any(|v| v.activity.is_some())
}

/// The rows of `model` at `level` over windows of `spec` (whole-trace rows for
/// [`WindowSpec::Whole`], or when the model kept no series — with a note saying so); `trace`
/// names them as in [`features::build`].
pub fn build(
    model: &Model,
    trace: &str,
    level: Level,
    spec: WindowSpec,
) -> (FeatureTable, Vec<String>) {
    if spec == WindowSpec::Whole {
        return features::build(model, trace, level);
    }
    if !has_series(model) {
        let (table, mut notes) = features::build(model, trace, level);
        notes.push(format!(
            "{trace}: the model has no series (a model saved without --intervals): one row \
             per {} over the whole trace instead of windows",
            level.name()
        ));
        return (table, notes);
    }
    let span = model
        .hosts
        .iter()
        .map(|h| h.end_ns - h.start_ns)
        .max()
        .unwrap_or(0);
    let length = match spec {
        WindowSpec::Length(ns) => ns,
        _ => auto_length(span),
    };
    let features = match level {
        Level::Process => features::process_features(),
        _ => features::vm_features(),
    };
    let mut table = FeatureTable::new(level, features);
    // The length the windows have: whole buckets (of the first host, when hosts differ).
    table.window_ns = Some(
        model
            .hosts
            .iter()
            .find_map(|h| h.buckets)
            .map_or(length, |b| {
                buckets_per_window(&b, length) as i64 * b.step_ns
            }),
    );
    let mut notes = Vec::new();
    for vm in &model.vms {
        let Some(host) = host_of(model, vm) else {
            continue;
        };
        let Some(buckets) = host.buckets else {
            continue;
        };
        let source = source_of(model, vm, trace);
        for (b0, b1) in host_windows(&buckets, length) {
            let start = buckets.start_of(b0).max(host.start_ns);
            let end = buckets.start_of(b1).min(host.end_ns.max(start + 1));
            let secs = (end - start).max(1) as f64 / 1e9;
            let key = features::row_key(&source, vm, Some((start, end)));
            match level {
                Level::Vm => {
                    let mut acc = Acc::default();
                    for v in &vm.vcpus {
                        add_window(&mut acc, v, b0, b1);
                    }
                    if acc.observed > 0.0 {
                        table.rows.push(Row {
                            key: key(None, None, None),
                            values: acc.values(secs, &io_of(vm, b0, b1)),
                            truth: None,
                        });
                    }
                }
                Level::Vcpu => {
                    let io = io_of(vm, b0, b1);
                    for v in &vm.vcpus {
                        let mut acc = Acc::default();
                        add_window(&mut acc, v, b0, b1);
                        if acc.observed > 0.0 {
                            table.rows.push(Row {
                                key: key(Some(v.vcpu), Some(v.tid), None),
                                values: acc.values(secs, &io),
                                truth: None,
                            });
                        }
                    }
                }
                Level::Process => {
                    for (cr3, values) in process_windows(vm, b0, b1, secs) {
                        table.rows.push(Row {
                            key: key(None, None, Some(cr3)),
                            values,
                            truth: None,
                        });
                    }
                }
            }
        }
    }
    if level == Level::Process && table.rows.is_empty() {
        let any_process = model
            .vms
            .iter()
            .flat_map(|vm| &vm.vcpus)
            .any(|v| !v.processes.is_empty());
        notes.push(if any_process {
            format!(
                "{trace}: the guest processes have no series (a model saved before they \
                 existed): no process windows"
            )
        } else {
            format!(
                "{trace}: no guest CR3 in this trace (needs `vcpu_enter_guest` or \
                 `addons_vcpu_enter_guest`): no process rows"
            )
        });
    }
    (table, notes)
}

/// A sum over buckets `[b0, b1)`.
fn sum(values: &[u64], b0: usize, b1: usize) -> f64 {
    virtflow_model::series::sum(values, b0, b1) as f64
}

/// A vCPU's share of a window's row.
fn add_window(acc: &mut Acc, v: &virtflow_model::Vcpu, b0: usize, b1: usize) {
    let Some(a) = &v.activity else { return };
    for c in 0..WaitCause::ALL.len() {
        acc.irq[c] += sum(&a.injections[c], b0, b1);
        acc.waits[c].0 += sum(&a.waits[c], b0, b1);
        acc.waits[c].1 += sum(&a.waiting_ns[c], b0, b1);
    }
    let guest = sum(&a.guest_ns, b0, b1);
    let hypervisor = sum(&a.hypervisor_ns, b0, b1);
    let preempted = sum(&a.preempted_ns, b0, b1);
    let ready = sum(&a.ready_ns, b0, b1);
    let waiting: f64 = a.waiting_ns.iter().map(|s| sum(s, b0, b1)).sum();
    acc.guest += guest;
    acc.guest_user += sum(&a.guest_user_ns, b0, b1);
    acc.hypervisor += hypervisor;
    acc.preempted += preempted;
    acc.ready += ready;
    acc.waiting += waiting;
    acc.observed += guest + hypervisor + preempted + ready + waiting;
    acc.exits += sum(&a.exits, b0, b1);
    for (k, s) in a.exit_kinds.iter().enumerate() {
        acc.exit_kinds[k] += sum(s, b0, b1);
    }
}

/// A VM's device work over a window.
fn io_of(vm: &Vm, b0: usize, b1: usize) -> IoStats {
    let Some(a) = &vm.activity else {
        return IoStats::default();
    };
    let n = |s: &[u64]| virtflow_model::series::sum(s, b0, b1);
    IoStats {
        disk_requests: n(&a.disk_requests),
        disk_latency_ns: n(&a.disk_latency_ns),
        submit_delays: n(&a.submit_delays),
        submit_delay_ns: n(&a.submit_delay_ns),
        packets: n(&a.packets),
    }
}

/// The process-level rows of a VM over a window: one per CR3 that ran in it (summed over the
/// VM's vCPUs), values in [`features::process_features`]' order.
fn process_windows(vm: &Vm, b0: usize, b1: usize, secs: f64) -> Vec<(u64, Vec<f64>)> {
    let mut by_cr3: Vec<(u64, [f64; 8])> = Vec::new();
    for p in vm.vcpus.iter().flat_map(|v| &v.processes) {
        let Some(a) = &p.activity else { continue };
        let at = match by_cr3.iter().position(|e| e.0 == p.cr3) {
            Some(at) => at,
            None => {
                by_cr3.push((p.cr3, [0.0; 8]));
                by_cr3.len() - 1
            }
        };
        let acc = &mut by_cr3[at].1;
        for (slot, series) in acc.iter_mut().zip(&a.injections) {
            *slot += sum(series, b0, b1);
        }
        acc[5] += sum(&a.guest_ns, b0, b1);
        acc[6] += sum(&a.entries, b0, b1);
        acc[7] += sum(&a.exits, b0, b1);
    }
    by_cr3.sort_by_key(|e| e.0);
    by_cr3
        .into_iter()
        .filter(|(_, acc)| acc[5] > 0.0 || acc[6] > 0.0)
        .map(|(cr3, acc)| {
            let mut values: Vec<f64> = acc[..5].iter().map(|x| x / secs).collect();
            values.push(acc[5] / (secs * 1e9));
            values.push(acc[6] / secs);
            values.push(acc[7] / secs);
            (cr3, values)
        })
        .collect()
}

/// The first and last timestamps of the hosts of `model`.
pub fn span(model: &Model) -> (i64, i64) {
    let begin = model
        .hosts
        .iter()
        .map(|h: &Host| h.start_ns)
        .min()
        .unwrap_or(0);
    let end = model.hosts.iter().map(|h| h.end_ns).max().unwrap_or(0);
    (begin.min(end), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_words() {
        assert_eq!(WindowSpec::parse("auto"), Ok(WindowSpec::Auto));
        assert_eq!(WindowSpec::parse("whole"), Ok(WindowSpec::Whole));
        assert_eq!(
            WindowSpec::parse("500ms"),
            Ok(WindowSpec::Length(500_000_000))
        );
        assert_eq!(
            WindowSpec::parse("1.5s"),
            Ok(WindowSpec::Length(1_500_000_000))
        );
        assert_eq!(WindowSpec::parse("250us"), Ok(WindowSpec::Length(250_000)));
        assert_eq!(
            WindowSpec::parse("1min"),
            Ok(WindowSpec::Length(60_000_000_000))
        );
        for bad in ["", "5", "2 s", "0s", "-1s", "fast", "1.2.3s"] {
            assert!(WindowSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_are_whole_buckets_and_the_last_takes_the_remainder() {
        let b = Buckets {
            start_ns: 1_000,
            step_ns: 32_000_000,
            count: 563,
        };
        // 448 ms: 14 buckets; 563 / 14 = 40.2 → 40 windows, the last of 17 buckets.
        let w = host_windows(&b, auto_length(18_000_000_000));
        assert_eq!(w.len(), 40);
        assert_eq!(w[0], (0, 14));
        assert_eq!(w[39], (546, 563));
        assert!(w.windows(2).all(|p| p[0].1 == p[1].0));
        // A window shorter than a bucket is a bucket.
        assert_eq!(host_windows(&b, 1).len(), 563);
        // Longer than the trace: one window.
        assert_eq!(host_windows(&b, i64::MAX / 4), vec![(0, 563)]);
        assert_eq!(auto_length(1_000_000_000), AUTO_MIN_NS);
    }
}

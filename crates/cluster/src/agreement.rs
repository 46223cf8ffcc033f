//! How far a clustering agrees with known workloads: the simulator's `truth.json` (each VM's
//! `workload`, or its `phases` with start and end on the host's trace clock) or a lab
//! `manifest.json` (each VM's `workload`; a recording of phases lists them in
//! `phases_workload`, from the `go` sent to the stop seen, in trace seconds).
//!
//! Per VM: whether its verdict is the known workload (for known phases, the known dominant
//! non-idle one, by the rule the verdict follows) and, when phases are known, the share of its
//! windows' time whose phase bears the known class. Over all: the adjusted Rand index (Hubert
//! & Arabie 1985) between the clusters and the known classes — of the windows when phases are
//! known, else of the VMs (their verdicts against their workloads): 1 for the same partition,
//! about 0 for a random one.

use std::path::Path;

use serde::Serialize;

use crate::naming::WorkloadClass;
use crate::phases::{self, PhaseOut, Timeline};
use crate::table::FeatureTable;

/// One VM of a truth file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KnownVm {
    pub pid: u32,
    /// Its host, when the file names one (the simulator's truth does).
    pub host: Option<String>,
    pub name: Option<String>,
    /// The workload as written (`cpu`, `disk`, `cpu then disk`…).
    pub workload: Option<String>,
    /// Known phases `(start, end, workload)`, trace ns, in time order.
    pub phases: Vec<(i64, i64, String)>,
}

impl KnownVm {
    /// The known class at `[start, end)`: the phase covering most of it; the VM's workload
    /// when no phase is known.
    pub fn class_at(&self, start: i64, end: i64) -> Option<WorkloadClass> {
        if self.phases.is_empty() {
            return self
                .workload
                .as_deref()
                .and_then(WorkloadClass::from_workload);
        }
        self.phases
            .iter()
            .map(|(s, e, w)| ((*e).min(end) - (*s).max(start), w))
            .filter(|(overlap, _)| *overlap > 0)
            .max_by_key(|(overlap, _)| *overlap)
            .and_then(|(_, w)| WorkloadClass::from_workload(w))
    }

    /// The known verdict: the workload's class, or the dominant non-idle known phase.
    pub fn verdict(&self) -> Option<WorkloadClass> {
        if self.phases.is_empty() {
            return self
                .workload
                .as_deref()
                .and_then(WorkloadClass::from_workload);
        }
        let phases: Vec<PhaseOut> = self
            .phases
            .iter()
            .filter_map(|(s, e, w)| {
                Some(PhaseOut {
                    start: *s,
                    end: *e,
                    name: WorkloadClass::from_workload(w)?,
                    windows: 0,
                })
            })
            .collect();
        Some(phases::verdict(&phases))
    }

    /// The known workload in words: `cpu`, or its phases `idle → cpu → disk`.
    pub fn words(&self) -> String {
        if self.phases.is_empty() {
            return self.workload.clone().unwrap_or_default();
        }
        self.phases
            .iter()
            .map(|p| p.2.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// The VMs of a truth file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Known {
    pub source: String,
    pub vms: Vec<KnownVm>,
}

impl Known {
    /// Reads a simulator `truth.json` or a lab `manifest.json`.
    pub fn read(path: &Path) -> Result<Known, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        let known = Known::from_json(&v, &path.display().to_string());
        if known.vms.is_empty() {
            return Err(format!(
                "{}: no VM with a pid (`vms[].pid` of a truth.json, `vms[].qemu_pid` of a \
                 manifest.json)",
                path.display()
            ));
        }
        Ok(known)
    }

    /// Reads the JSON of a truth or manifest file.
    pub fn from_json(v: &serde_json::Value, source: &str) -> Known {
        // A lab recording of phases: `phases_workload[]` for the VMs with `workload_phases`.
        let lab_phases: Vec<(i64, i64, String)> = v["phases_workload"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let secs = |k: &str| p[k].as_f64().map(|s| (s * 1e9).round() as i64);
                Some((
                    secs("go_sent_l1_uptime_s")?,
                    secs("wl_stop_seen_l1_uptime_s")?,
                    p["workload"].as_str()?.to_string(),
                ))
            })
            .collect();
        let mut vms = Vec::new();
        for vm in v["vms"].as_array().into_iter().flatten() {
            let Some(pid) = vm["pid"].as_u64().or_else(|| vm["qemu_pid"].as_u64()) else {
                continue;
            };
            let mut phases: Vec<(i64, i64, String)> = vm["phases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p["start"].as_i64()?,
                        p["end"].as_i64()?,
                        p["workload"].as_str()?.to_string(),
                    ))
                })
                .collect();
            if phases.is_empty() && vm.get("workload_phases").is_some() && !lab_phases.is_empty() {
                // Idle before the first go, between a stop and the next go, after the last.
                let mut at = i64::MIN;
                for (s, e, w) in &lab_phases {
                    if *s > at {
                        phases.push((at, *s, "idle".into()));
                    }
                    phases.push((*s, *e, w.clone()));
                    at = *e;
                }
                phases.push((at, i64::MAX, "idle".into()));
            }
            vms.push(KnownVm {
                pid: pid as u32,
                host: vm["host"].as_str().map(str::to_string),
                name: vm["name"].as_str().map(str::to_string),
                workload: vm["workload"].as_str().map(str::to_string),
                phases,
            });
        }
        Known {
            source: source.to_string(),
            vms,
        }
    }

    /// The known VM of a row's or timeline's host and pid (by pid alone when the file names
    /// no host, or when `one_host`: a single trace's host is named after its file, which the
    /// truth cannot know).
    pub fn vm(&self, host: &str, pid: u32, one_host: bool) -> Option<&KnownVm> {
        self.vms
            .iter()
            .find(|k| k.pid == pid && (one_host || k.host.as_deref().is_none_or(|h| h == host)))
    }
}

/// Sets each row's `truth` from `known`: a window's, the known phase covering most of it (rows
/// of VMs whose phases are unknown keep theirs); a whole-trace row's, its VM's workload.
pub fn attach(known: &Known, table: &mut FeatureTable, one_host: bool) {
    let windowed = table.windowed();
    for row in &mut table.rows {
        let k = &row.key;
        let Some(vm) = known.vm(&k.host, k.pid, one_host) else {
            continue;
        };
        let words = if windowed && !vm.phases.is_empty() {
            let (Some(s), Some(e)) = (k.start, k.end) else {
                continue;
            };
            vm.phases
                .iter()
                .map(|(ps, pe, w)| ((*pe).min(e) - (*ps).max(s), w))
                .filter(|(overlap, _)| *overlap > 0)
                .max_by_key(|(overlap, _)| *overlap)
                .map(|(_, w)| w.clone())
        } else if windowed {
            None
        } else {
            vm.workload.clone()
        };
        if words.is_some() {
            row.truth = words;
        }
    }
}

/// One VM's agreement with what is known of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VmAgreement {
    pub trace: String,
    pub host: String,
    pub vm: String,
    pub pid: u32,
    /// What is known, in words.
    pub known: String,
    pub known_verdict: Option<WorkloadClass>,
    pub verdict: WorkloadClass,
    pub verdict_agrees: bool,
    /// With known phases: the share of the VM's phase time whose name is the known class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_agrees: Option<f64>,
}

/// A clustering against what is known.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    pub source: String,
    pub vms: Vec<VmAgreement>,
    /// The adjusted Rand index, over `ari_over`; none when fewer than two windows or VMs of a
    /// known class could be compared (a manifest's workloads may be words no class names,
    /// such as `fetch` and `serve`).
    pub ari: Option<f64>,
    /// `windows` (when phases are known) or `vms`.
    pub ari_over: &'static str,
    /// How many windows or VMs it compared.
    pub compared: usize,
}

/// Compares a clustering (its rows' `labels` and the `timelines` of its VMs) with `known`.
pub fn compare(
    known: &Known,
    table: &FeatureTable,
    labels: &[usize],
    timelines: &[Timeline],
    one_host: bool,
) -> Agreement {
    let mut vms = Vec::new();
    let mut verdicts: Vec<(WorkloadClass, WorkloadClass)> = Vec::new();
    for t in timelines
        .iter()
        .filter(|t| t.vcpu.is_none() && t.cr3.is_none())
    {
        let Some(k) = known.vm(&t.host, t.pid, one_host) else {
            continue;
        };
        let known_verdict = k.verdict();
        let time_agrees = (!k.phases.is_empty()).then(|| time_agreement(k, &t.phases));
        if let Some(kv) = known_verdict {
            verdicts.push((t.verdict, kv));
        }
        vms.push(VmAgreement {
            trace: t.trace.clone(),
            host: t.host.clone(),
            vm: t.vm.clone(),
            pid: t.pid,
            known: k.words(),
            known_verdict,
            verdict: t.verdict,
            verdict_agrees: known_verdict == Some(t.verdict),
            time_agrees,
        });
    }
    let phases_known = known.vms.iter().any(|k| !k.phases.is_empty());
    let (ari, ari_over, compared) = if phases_known && table.windowed() {
        let mut pairs: Vec<(usize, WorkloadClass)> = Vec::new();
        for (i, row) in table.rows.iter().enumerate() {
            let k = &row.key;
            let (Some(s), Some(e)) = (k.start, k.end) else {
                continue;
            };
            if let Some(class) = known
                .vm(&k.host, k.pid, one_host)
                .filter(|v| !v.phases.is_empty())
                .and_then(|v| v.class_at(s, e))
            {
                pairs.push((labels[i], class));
            }
        }
        let a: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let b: Vec<usize> = pairs.iter().map(|p| p.1 as usize).collect();
        (comparable(&a, &b), "windows", pairs.len())
    } else {
        let a: Vec<usize> = verdicts.iter().map(|p| p.0 as usize).collect();
        let b: Vec<usize> = verdicts.iter().map(|p| p.1 as usize).collect();
        (comparable(&a, &b), "vms", verdicts.len())
    };
    Agreement {
        source: known.source.clone(),
        vms,
        ari,
        ari_over,
        compared,
    }
}

/// The adjusted Rand index when there is something to compare.
fn comparable(a: &[usize], b: &[usize]) -> Option<f64> {
    (a.len() >= 2).then(|| adjusted_rand_index(a, b))
}

/// The share of the phases' time whose name is the known class at that time.
fn time_agreement(k: &KnownVm, phases: &[PhaseOut]) -> f64 {
    let mut total = 0i128;
    let mut agree = 0i128;
    for p in phases {
        total += (p.end - p.start) as i128;
        for (s, e, w) in &k.phases {
            let overlap = (*e).min(p.end) as i128 - (*s).max(p.start) as i128;
            if overlap > 0 && WorkloadClass::from_workload(w) == Some(p.name) {
                agree += overlap;
            }
        }
    }
    if total > 0 {
        agree as f64 / total as f64
    } else {
        0.0
    }
}

/// The adjusted Rand index of two labelings of the same items (Hubert & Arabie 1985): the Rand
/// index corrected for chance, 1 for identical partitions whatever the label values. Two
/// partitions that are both a single cluster (or have fewer than two items) score 1.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "two labelings of the same items");
    let n = a.len();
    if n < 2 {
        return 1.0;
    }
    let ka = a.iter().max().map_or(0, |m| m + 1);
    let kb = b.iter().max().map_or(0, |m| m + 1);
    let mut table = vec![vec![0u64; kb]; ka];
    for (&x, &y) in a.iter().zip(b) {
        table[x][y] += 1;
    }
    let pairs = |m: u64| (m * m.saturating_sub(1) / 2) as f64;
    let index: f64 = table.iter().flatten().map(|&m| pairs(m)).sum();
    let rows: f64 = table.iter().map(|r| pairs(r.iter().sum())).sum();
    let cols: f64 = (0..kb)
        .map(|j| pairs(table.iter().map(|r| r[j]).sum()))
        .sum();
    let expected = rows * cols / pairs(n as u64);
    let max = (rows + cols) / 2.0;
    if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ari_of_known_partitions() {
        // The same partition under other labels.
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1, 2], &[5, 5, 3, 3, 0]), 1.0);
        // Hubert & Arabie's definition by hand: a = [0,0,0,1,1,1], b = [0,0,1,1,2,2].
        // Contingency [[2,1,0],[0,1,2]]: Σ C(n_ij,2) = 1 + 1 = 2; rows C(3,2)·2 = 6; columns
        // C(2,2)·3 = 3; expected 6·3/C(6,2) = 18/15 = 1.2; max (6+3)/2 = 4.5;
        // ARI = (2 − 1.2)/(4.5 − 1.2) = 0.8/3.3.
        let ari = adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]);
        assert!((ari - 0.8 / 3.3).abs() < 1e-12, "{ari}");
        // Everything in one cluster against a real partition: 0.
        assert_eq!(adjusted_rand_index(&[0, 0, 0, 0], &[0, 0, 1, 1]), 0.0);
        assert_eq!(adjusted_rand_index(&[0, 0], &[1, 1]), 1.0);
    }

    #[test]
    fn a_lab_manifest_of_phases_reads_as_idle_around_each_workload() {
        let v = serde_json::json!({
            "phases_workload": [
                {"workload": "cpu", "go_sent_l1_uptime_s": 22.44, "wl_stop_seen_l1_uptime_s": 30.81},
                {"workload": "disk", "go_sent_l1_uptime_s": 30.82, "wl_stop_seen_l1_uptime_s": 38.54}
            ],
            "vms": [{"name": "vm1", "qemu_pid": 126, "workload": "cpu then disk",
                     "workload_phases": ["cpu 8 s", "disk 8 s"]}]
        });
        let k = Known::from_json(&v, "manifest.json");
        let vm = k.vm("any", 126, true).unwrap();
        assert_eq!(vm.words(), "idle → cpu → idle → disk → idle");
        assert_eq!(
            vm.class_at(20_000_000_000, 21_000_000_000),
            Some(WorkloadClass::Idle)
        );
        assert_eq!(
            vm.class_at(22_000_000_000, 23_000_000_000),
            Some(WorkloadClass::CpuIntensive)
        );
        assert_eq!(
            vm.class_at(38_500_000_000, 39_000_000_000),
            Some(WorkloadClass::Idle)
        );
        // cpu 8.37 s against disk 7.72 s.
        assert_eq!(vm.verdict(), Some(WorkloadClass::CpuIntensive));
        // A plain manifest: the workload alone.
        let v = serde_json::json!({"vms": [{"qemu_pid": 127, "workload": "net"}]});
        let k = Known::from_json(&v, "m");
        assert_eq!(
            k.vm("h", 127, false).unwrap().verdict(),
            Some(WorkloadClass::NetworkIntensive)
        );
        assert!(k.vm("h", 128, false).is_none());
    }
}

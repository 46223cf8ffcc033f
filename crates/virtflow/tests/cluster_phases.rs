//! `virtflow cluster` by time windows, as a user runs it: each VM's phases and verdict in
//! `--json`, the agreement with a truth file, the real lab recordings in every format named
//! after their manifests, the real recording of a VM that computes then writes to its disk
//! (`tests/traces/p1_phases`), and the exports' windows. Expected values come from the
//! simulator's truth.json and the lab manifests only.

mod sim_common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use sim_common::{scratch, trace_in, virtflow};

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The class a truth or manifest word names, in the report's words.
fn class(word: &str) -> &'static str {
    match word {
        "idle" => "idle",
        "cpu" => "cpu-intensive",
        "disk" => "disk-intensive",
        "net" | "network" => "network-intensive",
        other => panic!("no class for the workload {other:?}"),
    }
}

/// `(start, end, class)` of known phases, consecutive phases of one class joined.
fn joined(
    phases: impl IntoIterator<Item = (i64, i64, &'static str)>,
) -> Vec<(i64, i64, &'static str)> {
    let mut out: Vec<(i64, i64, &'static str)> = Vec::new();
    for (s, e, c) in phases {
        match out.last_mut() {
            Some(last) if last.2 == c => last.1 = e,
            _ => out.push((s, e, c)),
        }
    }
    out
}

fn phases_of(vm: &Value) -> Vec<(i64, i64, String)> {
    vm["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            (
                p["start"].as_i64().unwrap(),
                p["end"].as_i64().unwrap(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn simulated_phases_come_back_in_the_json_within_a_window() {
    let dir = scratch("cluster-phases", "sim");
    let d = dir.to_str().unwrap();
    virtflow(&["simulate", "phases", "-o", d, "--duration", "9s"]);
    let trace = trace_in(&dir);
    let t = trace.to_str().unwrap();
    let truth_path = dir.join("truth.json");
    let truth = read_json(&truth_path);
    let report = json(&virtflow(&[
        "cluster",
        "--json",
        "--truth",
        truth_path.to_str().unwrap(),
        t,
    ]));
    let window = report["window_ns"].as_i64().expect("window_ns");
    let vms = report["vms"].as_array().expect("vms");
    assert_eq!(vms.len(), truth["vms"].as_array().unwrap().len());
    for known in truth["vms"].as_array().unwrap() {
        let pid = known["pid"].as_u64().unwrap();
        let vm = vms
            .iter()
            .find(|v| v["pid"].as_u64() == Some(pid))
            .unwrap_or_else(|| panic!("vm {pid} in {vms:?}"));
        assert!(vm["host"].is_string() && vm["verdict"].is_string());
        let expected = joined(known["phases"].as_array().unwrap().iter().map(|p| {
            (
                p["start"].as_i64().unwrap(),
                p["end"].as_i64().unwrap(),
                class(p["workload"].as_str().unwrap()),
            )
        }));
        let got = phases_of(vm);
        let names: Vec<&str> = got.iter().map(|p| p.2.as_str()).collect();
        let known_names: Vec<&str> = expected.iter().map(|p| p.2).collect();
        assert_eq!(names, known_names, "vm {pid}");
        for (g, e) in got.iter().zip(&expected).skip(1) {
            assert!(
                (g.0 - e.0).abs() <= window,
                "vm {pid}: {} from {} ns, known from {} ns (window {window})",
                e.2,
                g.0,
                e.0
            );
        }
    }
    // Each member is a window with its start and end; the truth block compares windows.
    let member = &report["clusters"][0]["members"][0];
    assert!(member["start"].as_i64().unwrap() < member["end"].as_i64().unwrap());
    let agreement = &report["truth"];
    assert_eq!(agreement["ari_over"], "windows");
    assert!(agreement["ari"].as_f64().unwrap() > 0.85, "{agreement}");
    assert_eq!(agreement["vms"].as_array().unwrap().len(), 3);
    // vm2: network for 4/9 of the run, then idle: known and found network-intensive.
    let vm2 = agreement["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["known"] == "network → idle")
        .expect("vm2");
    assert_eq!(vm2["known_verdict"], "network-intensive");
    assert_eq!(vm2["verdict_agrees"], true);

    // A given window is whole buckets of the truth's buckets.
    let step = truth["hosts"][0]["buckets"]["step_ns"].as_i64().unwrap();
    let r = json(&virtflow(&["cluster", "--json", "--window", "500ms", t]));
    let w = r["window_ns"].as_i64().unwrap();
    assert_eq!(w % step, 0);
    assert!((w - 500_000_000).abs() <= step / 2, "{w}");
    // --window whole: one row per VM over the trace, no phases.
    let r = json(&virtflow(&["cluster", "--json", "--window", "whole", t]));
    assert!(r.get("vms").is_none() && r.get("window_ns").is_none());
    let members: usize = r["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["members"].as_array().unwrap().len())
        .sum();
    assert_eq!(members, 3);
    let text = String::from_utf8(virtflow(&[
        "cluster",
        t,
        "--truth",
        truth_path.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(text.contains("phases (per VM each"), "{text}");
    assert!(text.contains("adjusted Rand index"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real recording of the repository's `tests/traces/NAME`: its manifest, a scratch folder
/// and the trace decompressed into it.
fn recording(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/traces")).join(name);
    let dir = scratch("cluster-phases", name);
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.dat");
    let bytes = zstd::decode_all(std::fs::File::open(root.join("trace.dat.zst")).unwrap()).unwrap();
    std::fs::write(&trace, bytes).unwrap();
    (root.join("manifest.json"), dir, trace)
}

/// The real recording of one VM computing for 8 s then writing to its disk for 8 s: both
/// phases, each within a window of the manifest's start (the `go` sent) and end (the stop
/// seen).
#[test]
fn the_real_recording_of_cpu_then_disk_gives_both_phases() {
    let (manifest_path, dir, trace) = recording("p1_phases");
    let manifest = read_json(&manifest_path);
    let report = json(&virtflow(&[
        "cluster",
        "--json",
        "--truth",
        manifest_path.to_str().unwrap(),
        trace.to_str().unwrap(),
    ]));
    let window = report["window_ns"].as_i64().unwrap();
    let pid = manifest["vms"][0]["qemu_pid"].as_u64().unwrap();
    let vm = report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["pid"].as_u64() == Some(pid))
        .expect("the manifest's VM");
    let got = phases_of(vm);
    let ns = |s: f64| (s * 1e9).round() as i64;
    for known in manifest["phases_workload"].as_array().unwrap() {
        let name = class(known["workload"].as_str().unwrap());
        let start = ns(known["go_sent_l1_uptime_s"].as_f64().unwrap());
        let end = ns(known["wl_stop_seen_l1_uptime_s"].as_f64().unwrap());
        let phase = got
            .iter()
            .find(|p| p.2 == name)
            .unwrap_or_else(|| panic!("no {name} phase in {got:?}"));
        assert!(
            (phase.0 - start).abs() <= window && (phase.1 - end).abs() <= window,
            "{name}: found {}–{} ns, known {start}–{end} ns (window {window})",
            phase.0,
            phase.1
        );
    }
    // Idle before the first go and after the last stop.
    assert_eq!(got.first().unwrap().2, "idle");
    assert_eq!(got.last().unwrap().2, "idle");
    assert_eq!(got.len(), 4, "{got:?}");
    let agreement = &report["truth"];
    assert_eq!(agreement["ari_over"], "windows");
    assert!(
        agreement["vms"][0]["time_agrees"].as_f64().unwrap() > 0.9,
        "{agreement}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn lab() -> PathBuf {
    virtflow_testkit::shared_traces().join("kvm-lab")
}

/// Every VM of every lab recording, in every format it was recorded in (trace-cmd, perf, perf's
/// CTF conversion, LTTng), bears its manifest's workload as its verdict.
#[test]
fn every_lab_vm_is_named_after_its_manifest_in_every_format() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lab())
        .expect("the lab traces are beside the repository")
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for dir in dirs {
        let manifest = read_json(&dir.join("manifest.json"));
        for name in ["trace.dat", "perf.data", "ctf", "lttng"] {
            let trace = dir.join(name);
            if !trace.exists() {
                continue;
            }
            let report = json(&virtflow(&["cluster", "--json", trace.to_str().unwrap()]));
            for known in manifest["vms"].as_array().unwrap() {
                let pid = known["qemu_pid"].as_u64().unwrap();
                let expected = class(known["workload"].as_str().unwrap());
                let verdict = report["vms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["pid"].as_u64() == Some(pid))
                    .map(|v| v["verdict"].as_str().unwrap().to_string());
                checked += 1;
                if verdict.as_deref() != Some(expected) {
                    wrong.push(format!(
                        "{}: vm {pid} {verdict:?}, known {expected}",
                        trace.display()
                    ));
                }
            }
        }
    }
    assert!(checked >= 14, "expected the lab traces, checked {checked}");
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// CSV exports carry each row's window; `--window whole` gives one row per VM over its host's
/// span.
#[test]
fn exports_carry_each_window() {
    let dir = scratch("cluster-phases", "export");
    let d = dir.to_str().unwrap();
    virtflow(&["simulate", "phases", "-o", d, "--duration", "2s"]);
    let trace = trace_in(&dir);
    let t = trace.to_str().unwrap();
    let truth = read_json(&dir.join("truth.json"));
    let (first, last) = (
        truth["hosts"][0]["start_ns"].as_i64().unwrap(),
        truth["hosts"][0]["end_ns"].as_i64().unwrap(),
    );
    let csv_of = |args: &[&str]| -> Vec<Vec<String>> {
        let out = dir.join("rows.csv");
        let mut all = vec!["export", t, "--format", "csv", "-o", out.to_str().unwrap()];
        all.extend(args);
        virtflow(&all);
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    };
    let rows = csv_of(&[]);
    let header = &rows[0];
    let s = header.iter().position(|h| h == "start").expect("start");
    let e = header.iter().position(|h| h == "end").expect("end");
    // Three VMs, a row per window each, the windows tiling the host's span.
    let body = &rows[1..];
    assert!(body.len() >= 3 * 15, "{} rows", body.len());
    let of_vm = |vm: &str| -> Vec<(i64, i64)> {
        body.iter()
            .filter(|r| r[1] == vm)
            .map(|r| (r[s].parse().unwrap(), r[e].parse().unwrap()))
            .collect()
    };
    let vm = &body[0][1];
    let spans = of_vm(vm);
    assert_eq!(spans[0].0, first);
    assert_eq!(spans.last().unwrap().1, last);
    assert!(spans.windows(2).all(|p| p[0].1 == p[1].0));
    let whole = csv_of(&["--window", "whole"]);
    assert_eq!(whole.len(), 1 + 3);
    assert!(whole[1..]
        .iter()
        .all(|r| r[s] == first.to_string() && r[e] == last.to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A manifest whose workloads no class names (`fetch`, `serve`: the real recording of one VM
/// fetching files the other serves) is not a verdict to agree or disagree with: the report
/// says so, and gives no adjusted Rand index over nothing.
#[test]
fn workloads_no_class_names_are_not_compared() {
    let (manifest, dir, trace) = recording("x1_cross");
    let (m, t) = (manifest.to_str().unwrap(), trace.to_str().unwrap());
    let report = json(&virtflow(&["cluster", "--json", "--truth", m, t]));
    let agreement = &report["truth"];
    assert!(agreement["ari"].is_null(), "{agreement}");
    assert_eq!(agreement["compared"], 0, "{agreement}");
    for vm in agreement["vms"].as_array().unwrap() {
        assert!(vm["known_verdict"].is_null(), "{vm}");
    }
    let text = String::from_utf8(virtflow(&["cluster", "--truth", m, t])).unwrap();
    assert_eq!(
        text.matches("no workload class, not compared").count(),
        2,
        "{text}"
    );
    assert!(!text.contains("disagrees"), "{text}");
    assert!(text.contains("adjusted Rand index: not computed"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

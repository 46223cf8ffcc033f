//! `virtflow analyze` on the real lab traces, checked against things this project did not
//! write: each recording's `manifest.json` (VMs, vCPU and helper threads), and exit counts
//! made with `trace-cmd report` / `babeltrace2` on the same files.
//!
//! Every trace format of every lab folder is analysed; a reader that fails makes the test
//! fail with the reader's error, never a silent skip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value as Json;
use virtflow_model::{Model, ThreadRole};

fn lab() -> PathBuf {
    virtflow_testkit::shared_traces().join("kvm-lab")
}

fn analyze_json(trace: &Path) -> Model {
    let out = Command::new(env!("CARGO_BIN_EXE_virtflow"))
        .arg("analyze")
        .arg("--json")
        .arg(trace)
        .output()
        .expect("run virtflow");
    assert!(
        out.status.success(),
        "virtflow analyze {} failed: {}",
        trace.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze --json prints the model")
}

/// The text of a reference reader on the same trace: `trace-cmd report` for `.dat`,
/// `babeltrace2` for CTF, `perf script` for perf.data.
fn reference_text(trace: &Path) -> String {
    let name = trace.file_name().unwrap().to_string_lossy().to_string();
    let mut cmd = if name.ends_with(".dat") {
        let mut c = Command::new("trace-cmd");
        c.arg("report").arg(trace);
        c
    } else if name == "perf.data" {
        let mut c = Command::new("perf");
        // With the task events: perf names threads in COMM and FORK records (an I/O thread
        // that records no tracepoint event is known from them alone).
        c.args([
            "script",
            "-F",
            "comm,tid,pid,cpu,time,event,trace",
            "--show-task-events",
            "-i",
        ])
        .arg(trace);
        c
    } else {
        let mut c = Command::new("babeltrace2");
        c.arg(trace);
        c
    };
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run the reference reader for {} ({e}): install trace-cmd, babeltrace2 \
             and perf",
            trace.display()
        )
    });
    assert!(
        out.status.success(),
        "reference reader failed on {}: {}",
        trace.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a thread shows up anywhere in a reference reader's text.
fn seen(text: &str, tid: u64) -> bool {
    [
        format!("-{tid} "),
        format!(":{tid} ["),
        format!("pid={tid} "),
        format!("tid = {tid},"),
        format!("tid = {tid} "),
        format!("pid = {tid},"),
        format!("pid = {tid} "),
        // perf script's `tid/pid`, and its task events (`COMM: name:pid/tid`,
        // `FORK(pid:tid)`).
        format!(" {tid}/"),
        format!("/{tid}\n"),
        format!(":{tid})"),
    ]
    .iter()
    .any(|p| text.contains(p.as_str()))
}

/// Every trace of every lab folder: (folder, trace path).
fn lab_traces() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(lab())
        .expect("the lab traces are beside the repository")
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        for name in ["trace.dat", "ctf", "lttng", "perf.data"] {
            let p = dir.join(name);
            if p.exists() {
                out.push((dir.clone(), p));
            }
        }
    }
    assert!(out.len() >= 10, "expected the lab traces, found {out:?}");
    out
}

/// One lab trace with our model of it and a reference reader's text of it.
struct Case {
    dir: PathBuf,
    trace: PathBuf,
    model: Model,
    text: String,
}

/// Every lab trace analysed once and read once by its reference reader, shared by the tests
/// of this file (the reference readers are the slow part), on all cores.
fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let traces = lab_traces();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((dir, trace)) = traces.get(i) else {
                        break;
                    };
                    let case = Case {
                        dir: dir.clone(),
                        trace: trace.clone(),
                        model: analyze_json(trace),
                        text: reference_text(trace),
                    };
                    done.lock().unwrap().push((i, case));
                });
            }
        });
        let mut done = done.into_inner().unwrap();
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, c)| c).collect()
    })
}

#[test]
fn vms_vcpus_and_helper_threads_match_the_manifests() {
    let mut checked = 0;
    for Case {
        dir,
        trace,
        model,
        text,
    } in cases()
    {
        let manifest: Json =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                .unwrap();
        let text = text.as_str();
        let what = trace.display().to_string();
        let want_pids: BTreeSet<u64> = manifest["vms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["qemu_pid"].as_u64().unwrap())
            .collect();
        let got_pids: BTreeSet<u64> = model.vms.iter().map(|v| v.pid as u64).collect();
        assert_eq!(got_pids, want_pids, "{what}: VM pids");
        for mvm in manifest["vms"].as_array().unwrap() {
            let pid = mvm["qemu_pid"].as_u64().unwrap();
            let vm = model.vms.iter().find(|v| v.pid as u64 == pid).unwrap();
            let want_vcpus: BTreeMap<u64, u64> = mvm["vcpu_tids"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap()))
                .collect();
            let got_vcpus: BTreeMap<u64, u64> = vm
                .vcpus
                .iter()
                .map(|v| (v.vcpu as u64, v.tid as u64))
                .collect();
            assert_eq!(got_vcpus, want_vcpus, "{what}: vCPUs of VM {pid}");
            // Helper threads by role: those the trace shows must be found, and nothing else.
            let ids = |key: &str| -> BTreeSet<u64> {
                match &mvm[key] {
                    Json::Array(a) => a.iter().map(|v| v.as_u64().unwrap()).collect(),
                    Json::Number(n) => [n.as_u64().unwrap()].into(),
                    _ => BTreeSet::new(),
                }
            };
            for (key, role) in [
                ("main_thread_tid", ThreadRole::MainLoop),
                ("iothread_tids", ThreadRole::IoThread),
                ("vhost_tids", ThreadRole::Vhost),
            ] {
                let want: BTreeSet<u64> = ids(key).into_iter().filter(|t| seen(text, *t)).collect();
                let got: BTreeSet<u64> = vm
                    .threads
                    .iter()
                    .filter(|t| t.role == role)
                    .map(|t| t.tid as u64)
                    .collect();
                assert_eq!(got, want, "{what}: {role:?} threads of VM {pid}");
            }
            let known: BTreeSet<u64> = mvm["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["tid"].as_u64().unwrap())
                .chain(ids("vhost_tids"))
                .collect();
            for t in &vm.threads {
                assert!(
                    known.contains(&(t.tid as u64)),
                    "{what}: thread {} ({}) is not one of VM {pid}'s",
                    t.tid,
                    t.comm
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 10);
}

/// Exit reasons as the kernel names them, so that `EXIT_MSR` (trace-cmd's KVM plugin) and
/// `msr` (ours) compare equal.
fn norm(reason: &str) -> String {
    reason.trim_start_matches("EXIT_").to_ascii_lowercase()
}

#[test]
fn exit_counts_equal_trace_cmd_report() {
    for Case {
        trace, model, text, ..
    } in cases()
        .iter()
        .filter(|c| c.trace.extension().is_some_and(|e| e == "dat"))
    {
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for line in text.lines().filter(|l| l.contains(" kvm_exit:")) {
            let reason = line
                .split("reason ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("no reason in {line}"));
            *want.entry(norm(reason)).or_default() += 1;
        }
        assert!(
            !want.is_empty(),
            "{}: trace-cmd shows no exits",
            trace.display()
        );
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for e in model.vms.iter().flat_map(|v| &v.exits) {
            *got.entry(norm(&e.reason)).or_default() += e.count;
        }
        assert_eq!(got, want, "{}: exits per reason", trace.display());
    }
}

#[test]
fn exit_counts_equal_babeltrace_on_ctf() {
    for Case {
        trace, model, text, ..
    } in cases().iter().filter(|c| c.trace.is_dir())
    {
        let mut want: BTreeMap<u64, u64> = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| l.contains("kvm_exit: ") || l.contains("kvm_x86_exit: "))
        {
            let code = line
                .split("exit_reason = ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|r| r.trim().parse().ok())
                .unwrap_or_else(|| panic!("no exit_reason in {line}"));
            *want.entry(code).or_default() += 1;
        }
        assert!(
            !want.is_empty(),
            "{}: babeltrace2 shows no exits",
            trace.display()
        );
        let mut got: BTreeMap<u64, u64> = BTreeMap::new();
        for e in model.vms.iter().flat_map(|v| &v.exits) {
            *got.entry(e.code).or_default() += e.count;
        }
        assert_eq!(got, want, "{}: exits per code", trace.display());
    }
}

#[test]
fn a_host_without_vms_says_so_and_still_reports_the_host() {
    let dir = lab().join("../host-real");
    for name in ["trace.dat", "perf-ctf", "perf.data"] {
        let trace = dir.join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_virtflow"))
            .arg("analyze")
            .arg(&trace)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            trace.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("no KVM events in this trace"),
            "{}:\n{text}",
            trace.display()
        );
        assert!(
            text.contains("busiest threads"),
            "{}:\n{text}",
            trace.display()
        );
        let model = analyze_json(&trace);
        assert!(model.vms.is_empty());
        let host = &model.hosts[0];
        assert!(host.cpus > 0 && host.end_ns > host.start_ns, "{host:?}");
        assert!(!host.busiest.is_empty());
    }
}

#[test]
fn terminal_report_fits_100_columns() {
    for name in ["s5_overcommit/trace.dat", "s3_disk_lttng/lttng"] {
        let trace = lab().join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_virtflow"))
            .arg("analyze")
            .arg(&trace)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("VM qemu-system-x86/"), "{text}");
        for line in text.lines().filter(|l| !l.starts_with("virtflow analyze:")) {
            // Notes are wrapped between words: only a single word longer than a line (a path)
            // may run past.
            let one_word = line
                .trim_start_matches([' ', '-'])
                .split_whitespace()
                .count()
                == 1;
            assert!(
                line.chars().count() <= 100 || one_word,
                "line wider than 100 columns:\n{line}"
            );
        }
        if name.starts_with("s3_disk") {
            // Its waker and injected vector disagree on some waits: a long note, wrapped.
            assert!(text.contains("\nnotes:\n  - "), "{text}");
        }
        if name.starts_with("s5_overcommit") {
            // Two VMs pinned to one pCPU of two (the manifest's pinning): each VM's verdict
            // names the other and pinning, the host's its pCPUs, and the trace has no page
            // events, which the report says instead of showing zeros.
            let verdicts: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("  verdict:"))
                .collect();
            assert_eq!(verdicts.len(), 3, "{text}");
            assert!(text.contains("\nthe host: 2 pCPUs;"), "{text}");
            assert!(text.contains("cause: pinning"), "{text}");
            assert!(text.contains("host memory: not traced"), "{text}");
            assert!(text.contains("  steal: 3"), "{text}");
        }
    }
}

/// The class of a guest vector is the device that raised it, whatever the recording: in each
/// lab folder, every format gives each injected vector the same class. (A vhost thread known by
/// its name only — trace-cmd saved no thread group for it — once left the network vectors it
/// raised unclassified in the `.dat` while the perf.data, whose samples carry the thread group,
/// called them network.)
#[test]
fn a_vector_has_one_class_in_every_recording_of_a_vm() {
    let mut by_folder: BTreeMap<&Path, Vec<&Case>> = BTreeMap::new();
    for c in cases() {
        by_folder.entry(c.dir.as_path()).or_default().push(c);
    }
    let mut compared = 0;
    for (folder, cases) in by_folder {
        if cases.len() < 2 {
            continue;
        }
        let mut by_vector: BTreeMap<(u32, u32), BTreeSet<String>> = BTreeMap::new();
        for c in &cases {
            for vm in &c.model.vms {
                for i in &vm.injections {
                    let class = serde_json::to_value(i.class).unwrap().to_string();
                    by_vector
                        .entry((vm.pid, i.vector))
                        .or_default()
                        .insert(format!("{class} ({})", c.trace.display()));
                }
            }
        }
        for ((pid, vector), seen) in &by_vector {
            let classes: BTreeSet<&str> =
                seen.iter().map(|s| s.split(' ').next().unwrap()).collect();
            assert_eq!(
                classes.len(),
                1,
                "{}: VM {pid} vector {vector}: {seen:?}",
                folder.display()
            );
        }
        compared += 1;
    }
    assert!(compared >= 3, "{compared} folders with several formats");
}

/// The real recording of a guest writing 128 MiB once (`tests/traces/m1_memory`): the
/// terminal report gives its VM's host memory held, near what the host's own accounting says
/// its QEMU process grew (the manifest's RssAnon rise), and the host's page totals.
#[test]
fn terminal_report_says_how_much_memory_a_vm_holds() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/traces/m1_memory"
    ));
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let rise_mib = manifest["memory"]["host_rss_anon_rise_kb"]
        .as_f64()
        .unwrap()
        / 1024.0;
    let trace = std::env::temp_dir().join(format!("virtflow-m1-{}.dat", std::process::id()));
    let bytes = zstd::decode_all(std::fs::File::open(dir.join("trace.dat.zst")).unwrap()).unwrap();
    std::fs::write(&trace, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_virtflow"))
        .arg("analyze")
        .arg(&trace)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&trace);
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("  host memory: +"))
        .unwrap_or_else(|| panic!("no VM memory line:\n{text}"));
    let held: f64 = line
        .trim_start_matches("  host memory: +")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(line.contains(" MiB held"), "{line}");
    assert!(
        (held - rise_mib).abs() <= 0.01 * rise_mib,
        "{held} MiB held, the host saw {rise_mib:.1} MiB: {line}"
    );
    assert!(text.contains("  host memory: allocated "), "{text}");
}

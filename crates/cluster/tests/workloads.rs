//! End to end: traces with known workloads → features → clusters → names. The simulator's
//! `mixed` scenario (and variants with more VMs and other seeds) and, when present, the real
//! lab traces (`../shared/traces/kvm-lab`, whose `manifest.json` lists each VM's workload).

use std::path::{Path, PathBuf};

use virtflow_analysis::Options;
use virtflow_cluster::pipeline::{attach_truth, known_workloads, rows};
use virtflow_cluster::{
    cluster, ClusterOptions, ClusterReport, FeatureTable, Level, WorkloadClass,
};
use virtflow_model::Model;
use virtflow_trace::EventSource;

/// A simulated trace (CTF folder or `.dat`) or a lab `.dat`.
fn open_dat(path: &Path) -> Box<dyn EventSource> {
    if path.is_dir() {
        Box::new(virtflow_ctf::CtfSource::open(path).unwrap())
    } else {
        Box::new(virtflow_ftrace::DatSource::open(path).unwrap())
    }
}

fn analyze(mut source: Box<dyn EventSource>, options: &Options) -> Model {
    virtflow_analysis::analyze(&mut *source, options).unwrap()
}

fn table_of(paths: &[PathBuf], level: Level) -> FeatureTable {
    let mut all: Option<FeatureTable> = None;
    for p in paths {
        let model = analyze(open_dat(p), &Options::default());
        let mut t = rows(&p.display().to_string(), &model, level).table;
        attach_truth(&mut t, &known_workloads(p), &model, None);
        match &mut all {
            None => all = Some(t),
            Some(a) => a.extend(t).unwrap(),
        }
    }
    all.expect("at least one trace")
}

/// Every member whose truth names a class must sit in a cluster of that name.
fn mismatches(report: &ClusterReport) -> Vec<String> {
    let mut bad = Vec::new();
    for c in &report.clusters {
        for m in &c.members {
            let Some(truth) = &m.truth else { continue };
            let Some(class) = WorkloadClass::from_workload(truth) else {
                continue;
            };
            if class != c.name {
                bad.push(format!(
                    "{} (truth {truth}) in a {} cluster",
                    m.key.label(),
                    c.name
                ));
            }
        }
    }
    bad
}

fn simulate_mixed(seed: u64, vms: Option<u32>) -> (tempdir::Dir, PathBuf) {
    let dir = tempdir::Dir::new(&format!("mixed-{seed}-{}", vms.unwrap_or(0)));
    let mut cfg = virtflow_sim::Config::new(virtflow_sim::Scenario::Mixed);
    cfg.seed = seed;
    cfg.vms = vms;
    let summary = virtflow_sim::simulate(&cfg, dir.path()).expect("simulate");
    let trace = summary.traces[0].0.clone();
    (dir, trace)
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A folder under the system temp dir, removed when dropped.
    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "virtflow-cluster-test-{}-{tag}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn simulated_mixed_hosts_cluster_by_true_workload() {
    // The default mixed host (4 VMs), and variants with more VMs and other seeds.
    for (seed, vms) in [(1, None), (2, Some(8)), (7, Some(6))] {
        let (_dir, trace) = simulate_mixed(seed, vms);
        let table = table_of(&[trace], Level::Vm);
        let expected = vms.unwrap_or(4) as usize;
        assert_eq!(table.rows.len(), expected, "seed {seed}: one row per VM");
        assert!(
            table.rows.iter().all(|r| r.truth.is_some()),
            "truth attached"
        );
        let report = cluster(&table, &ClusterOptions::default());
        let bad = mismatches(&report);
        assert!(bad.is_empty(), "seed {seed}: {bad:?}\n{}", report.to_text());
    }
}

#[test]
fn simulated_hosts_in_one_table_one_clustering() {
    // Two hosts (two seeds) analysed separately, clustered together: rows are tagged by trace.
    let (_a, t1) = simulate_mixed(3, None);
    let (_b, t2) = simulate_mixed(4, None);
    let table = table_of(&[t1.clone(), t2.clone()], Level::Vm);
    assert_eq!(table.rows.len(), 8);
    let traces: std::collections::BTreeSet<&str> =
        table.rows.iter().map(|r| r.key.trace.as_str()).collect();
    assert_eq!(traces.len(), 2);
    let report = cluster(&table, &ClusterOptions::default());
    assert!(mismatches(&report).is_empty(), "{}", report.to_text());
    // The JSON names each member's trace, VM and pid.
    let json = serde_json::to_value(&report).unwrap();
    let m = &json["clusters"][0]["members"][0];
    assert!(m["trace"].is_string() && m["vm"].is_string() && m["pid"].is_number());
}

#[test]
fn simulated_vcpu_level_rows_carry_vcpu_numbers() {
    let (_d, trace) = simulate_mixed(5, None);
    let table = table_of(&[trace], Level::Vcpu);
    assert_eq!(table.rows.len(), 8, "4 VMs × 2 vCPUs");
    assert!(table
        .rows
        .iter()
        .all(|r| r.key.vcpu.is_some() && r.key.tid.is_some()));
    let report = cluster(&table, &ClusterOptions::default());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["clusters"][0]["members"][0]["vcpu"].is_number());
}

fn lab() -> PathBuf {
    virtflow_testkit::shared_traces().join("kvm-lab")
}

#[test]
fn real_lab_traces_cluster_by_their_manifest_workload() {
    let root = lab();
    let mut paths: Vec<PathBuf> = ["s1_idle", "s2_cpu", "s3_disk", "s4_net", "s5_overcommit"]
        .iter()
        .map(|s| root.join(s).join("trace.dat"))
        .filter(|p| p.exists())
        .collect();
    if paths.is_empty() {
        eprintln!("kvm-lab traces not present: skipped");
        return;
    }
    paths.sort();
    let table = table_of(&paths, Level::Vm);
    assert!(
        table.rows.len() >= 5,
        "one row per VM: {}",
        table.rows.len()
    );
    let report = cluster(&table, &ClusterOptions::default());
    eprintln!("{}", report.to_text());
    let bad = mismatches(&report);
    assert!(bad.is_empty(), "{bad:?}\n{}", report.to_text());
}

#[test]
fn perf_data_and_its_ctf_conversion_give_the_same_features() {
    // The same recording read through two readers (perf.data, and perf's own CTF conversion
    // of it) must give the same feature values.
    let dir = lab().join("s1_idle");
    if !dir.join("ctf").exists() || !dir.join("perf.data").exists() {
        eprintln!("kvm-lab s1_idle perf/ctf not present: skipped");
        return;
    }
    let perf = virtflow_ftrace::PerfSource::open(&dir.join("perf.data")).unwrap();
    let ctf = virtflow_ctf::CtfSource::open(&dir.join("ctf")).unwrap();
    let a = rows(
        "perf",
        &analyze(Box::new(perf), &Options::default()),
        Level::Vm,
    )
    .table;
    let b = rows(
        "ctf",
        &analyze(Box::new(ctf), &Options::default()),
        Level::Vm,
    )
    .table;
    assert_eq!(a.rows.len(), 1);
    assert_eq!(b.rows.len(), 1);
    assert!(
        a.value(0, "irq_timer_rate").unwrap() > 1.0,
        "the idle guest's tick is seen"
    );
    for (f, (x, y)) in a
        .features
        .iter()
        .zip(a.rows[0].values.iter().zip(&b.rows[0].values))
    {
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(1.0),
            "{}: perf {x} vs ctf {y}",
            f.name
        );
    }
}

#[test]
fn guest_time_per_cr3_matches_the_simulator_truth() {
    let dir = tempdir::Dir::new("processes");
    let cfg = virtflow_sim::Config::new(virtflow_sim::Scenario::Processes);
    let summary = virtflow_sim::simulate(&cfg, dir.path()).expect("simulate");
    let trace = summary.traces[0].0.clone();
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary.truth).unwrap()).unwrap();
    let model = analyze(open_dat(&trace), &Options::default());
    let procs = truth["guest_processes"]
        .as_array()
        .expect("guest_processes in truth");
    assert!(!procs.is_empty());
    for p in procs {
        let (pid, vcpu, cr3) = (
            p["vm_pid"].as_u64().unwrap(),
            p["vcpu"].as_u64().unwrap(),
            p["cr3"].as_u64().unwrap(),
        );
        let tid = truth["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["pid"].as_u64() == Some(pid))
            .and_then(|v| {
                v["vcpus"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["vcpu"].as_u64() == Some(vcpu))
            })
            .and_then(|c| c["tid"].as_u64())
            .unwrap() as u32;
        let seen = model
            .vms
            .iter()
            .flat_map(|vm| &vm.vcpus)
            .filter(|v| v.tid == tid)
            .flat_map(|v| &v.processes)
            .filter(|p| p.cr3 == cr3 && !p.l2)
            .map(|p| p.guest_ns)
            .sum::<u64>();
        assert_eq!(
            seen,
            p["guest_ns"].as_u64().unwrap(),
            "vm {pid} vCPU {vcpu} cr3 {cr3:#x}"
        );
    }
    // And the process level has one row per (VM, CR3).
    let table = table_of(&[trace], Level::Process);
    let distinct: std::collections::BTreeSet<(u64, u64)> = procs
        .iter()
        .map(|p| (p["vm_pid"].as_u64().unwrap(), p["cr3"].as_u64().unwrap()))
        .collect();
    assert_eq!(table.rows.len(), distinct.len());
    assert!(table.rows.iter().all(|r| r.key.cr3.is_some()));
}

/// The rows come from the model alone: a model kept with its state intervals, and the same
/// model written as JSON and read back (what `--model FILE` does), give the rows of the plain
/// analysis — on the simulated mixed host and on every real lab trace.
#[test]
fn rows_from_a_saved_model_equal_the_analysis_rows() {
    let (_d, sim) = simulate_mixed(11, None);
    let mut paths = vec![sim];
    for s in ["s1_idle", "s2_cpu", "s3_disk", "s4_net", "s5_overcommit"] {
        let p = lab().join(s).join("trace.dat");
        if p.exists() {
            paths.push(p);
        }
    }
    for p in &paths {
        let name = p.display().to_string();
        let plain = analyze(open_dat(p), &Options::default());
        let options = Options {
            intervals: true,
            ..Default::default()
        };
        let with_intervals = analyze(open_dat(p), &options);
        assert!(
            with_intervals
                .vms
                .iter()
                .any(|vm| vm.vcpus.iter().any(|v| !v.intervals.is_empty())),
            "{name}: no interval kept"
        );
        let saved: Model =
            serde_json::from_str(&serde_json::to_string(&with_intervals).unwrap()).unwrap();
        let own = rows(&name, &plain, Level::Vm);
        assert!(!own.table.rows.is_empty(), "{name}: no row");
        for level in [Level::Vm, Level::Vcpu] {
            let expected = rows(&name, &plain, level);
            for model in [&with_intervals, &saved] {
                let got = rows(&name, model, level);
                assert_eq!(got.table, expected.table, "{name}");
                assert_eq!((got.begin, got.end), (expected.begin, expected.end));
            }
        }
    }
}

/// A VMM command line given from outside the trace (the recorder's sidecar file) names the
/// rows of its VM: the lab VM, by the pid its manifest gives, takes the `-name` given to it.
#[test]
fn rows_take_the_names_of_given_vmm_command_lines() {
    use virtflow_analysis::VmmCommandLine;
    let dir = lab().join("s3_disk");
    let Ok(manifest) = std::fs::read_to_string(dir.join("manifest.json")) else {
        eprintln!("kvm-lab s3_disk not present: skipped");
        return;
    };
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let pid = manifest["vms"][0]["qemu_pid"].as_u64().unwrap() as u32;
    let trace = dir.join("trace.dat");
    let given = [VmmCommandLine {
        pid,
        argv: ["qemu-system-x86_64", "-name", "guest=web-7", "-enable-kvm"]
            .map(String::from)
            .to_vec(),
    }];
    let options = Options {
        vmm_cmdlines: given.to_vec(),
        ..Default::default()
    };
    let model = analyze(open_dat(&trace), &options);
    let rows = rows("s3_disk", &model, Level::Vm);
    let names: Vec<(u32, &str)> = rows
        .table
        .rows
        .iter()
        .map(|r| (r.key.pid, r.key.vm.as_str()))
        .collect();
    assert_eq!(
        names,
        [(pid, format!("web-7 (qemu-system-x86/{pid})").as_str())]
    );
}

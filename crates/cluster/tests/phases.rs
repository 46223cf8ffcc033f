//! Workloads change: the clustering by windows recovers each VM's phases. On the simulator's
//! `phases` scenario (vm1 idle → cpu → disk, vm2 network → idle, vm3 cpu → network, the edges
//! at fractions of the run given by its truth.json), every VM's phases have the known names in
//! the known order, each edge within one window of the truth's; on the `processes` scenario,
//! guest processes get windows and phases too. Expected values come from the truth files only.

use std::path::{Path, PathBuf};

use virtflow_analysis::Options;
use virtflow_cluster::agreement::Known;
use virtflow_cluster::{
    agreement, cluster, lami, pipeline, windows, ClusterOptions, Level, WindowSpec, WorkloadClass,
};
use virtflow_model::Model;

/// A folder under the system temp dir, removed when dropped.
struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "virtflow-cluster-phases-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Simulates `scenario` for `duration_ns` into `dir`: the trace and truth.json.
fn simulate(scenario: virtflow_sim::Scenario, duration_ns: u64, dir: &Path) -> (PathBuf, PathBuf) {
    let mut cfg = virtflow_sim::Config::new(scenario);
    cfg.duration_ns = duration_ns;
    let summary = virtflow_sim::simulate(&cfg, dir).expect("simulate");
    (summary.traces[0].0.clone(), summary.truth)
}

fn analyze_with_series(trace: &Path) -> Model {
    let mut source = virtflow_ftrace::DatSource::open(trace).unwrap();
    let options = Options {
        series: true,
        ..Options::default()
    };
    virtflow_analysis::analyze(&mut source, &options).unwrap()
}

/// The known phases' edges and classes of one VM, consecutive phases of one class joined.
fn known_phases(known: &Known, pid: u32) -> Vec<(i64, i64, WorkloadClass)> {
    let vm = known.vm("", pid, true).expect("the VM in the truth");
    let mut out: Vec<(i64, i64, WorkloadClass)> = Vec::new();
    for (s, e, w) in &vm.phases {
        let class = WorkloadClass::from_workload(w).expect("a known workload word");
        match out.last_mut() {
            Some(last) if last.2 == class => last.1 = *e,
            _ => out.push((*s, *e, class)),
        }
    }
    out
}

#[test]
fn the_phases_scenario_gives_every_vm_its_phases_within_a_window() {
    let dir = Dir::new("sim");
    // 9 s: the shortest phase (vm1's idle start, d/9) is 1 s, several windows long.
    let (trace, truth) = simulate(virtflow_sim::Scenario::Phases, 9_000_000_000, &dir.0);
    let known = Known::read(&truth).unwrap();
    let model = analyze_with_series(&trace);
    let rows = pipeline::rows_in("phases", &model, Level::Vm, WindowSpec::Auto);
    let window = rows.table.window_ns.expect("rows are windows");
    // About a fortieth of the run, in whole buckets.
    assert!(
        (150_000_000..=300_000_000).contains(&window),
        "window {window}"
    );
    let report = cluster(&rows.table, &ClusterOptions::default());
    let text = report.to_text();
    assert_eq!(report.vms.len(), 3, "{text}");
    for t in &report.vms {
        let expected = known_phases(&known, t.pid);
        let got: Vec<(i64, i64, WorkloadClass)> =
            t.phases.iter().map(|p| (p.start, p.end, p.name)).collect();
        let names = |v: &[(i64, i64, WorkloadClass)]| v.iter().map(|p| p.2).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&expected), "vm {}: {text}", t.pid);
        // Every edge between two phases within one window of the truth's.
        for (g, e) in got.iter().zip(&expected).skip(1) {
            assert!(
                (g.0 - e.0).abs() <= window,
                "vm {}: a {} phase starts at {} ns, the truth says {} (window {window})",
                t.pid,
                e.2,
                g.0,
                e.0
            );
        }
        // The verdict is the truth's dominant non-idle workload, where the truth decides it
        // by more than two windows (vm1 and vm3 work as long in each of their two phases).
        let mut busy: Vec<(WorkloadClass, i64)> = expected
            .iter()
            .filter(|p| p.2 != WorkloadClass::Idle)
            .map(|p| (p.2, p.1 - p.0))
            .collect();
        busy.sort_by_key(|b| std::cmp::Reverse(b.1));
        let decided = match busy.as_slice() {
            [only] => Some(only.0),
            [first, second, ..] if first.1 - second.1 > 2 * window => Some(first.0),
            _ => None,
        };
        if let Some(v) = decided {
            assert_eq!(t.verdict, v, "vm {}: {text}", t.pid);
        }
    }
    // Against the truth file: every window compared, the partition close to the truth's.
    let mut table = rows.table.clone();
    agreement::attach(&known, &mut table, true);
    let a = agreement::compare(&known, &table, &report.labels, &report.vms, true);
    assert_eq!(a.ari_over, "windows");
    assert_eq!(a.compared, table.rows.len());
    let ari = a.ari.expect("windows to compare");
    assert!(ari > 0.85, "ARI {ari}: {text}");
    for v in &a.vms {
        assert!(v.time_agrees.unwrap() > 0.9, "{v:?}");
    }
    // Each window's known workload is its member's truth.
    assert!(table.rows.iter().all(|r| r.truth.is_some()));
}

/// The windows read the series alone: summed over all windows, a VM's exits, interrupts and
/// device work are its whole-trace totals — but for the interrupts injected into a vCPU
/// thread before its first entry or exit told it was a vCPU: the W2A machine counts them in
/// its totals and keeps no series for the thread yet, so each vCPU may have one more in the
/// totals.
#[test]
fn windows_add_up_to_the_whole_trace() {
    let dir = Dir::new("sums");
    let (trace, _) = simulate(virtflow_sim::Scenario::Mixed, 2_000_000_000, &dir.0);
    let model = analyze_with_series(&trace);
    let window = windows::build(&model, "m", Level::Vm, WindowSpec::Length(100_000_000)).0;
    let whole = windows::build(&model, "m", Level::Vm, WindowSpec::Whole).0;
    assert!(window.windowed() && !whole.windowed());
    for row in &whole.rows {
        let ws: Vec<&virtflow_cluster::Row> = window
            .rows
            .iter()
            .filter(|r| r.key.entity() == row.key.entity())
            .collect();
        assert!(ws.len() >= 19, "{}: {} windows", row.key.label(), ws.len());
        // Contiguous windows covering the host's span.
        assert_eq!(ws[0].key.start, row.key.start);
        assert_eq!(ws.last().unwrap().key.end, row.key.end);
        assert!(ws.windows(2).all(|p| p[0].key.end == p[1].key.start));
        for feature in [
            "exit_rate",
            "irq_timer_rate",
            "disk_rq_rate",
            "net_pkt_rate",
        ] {
            let col = window.column(feature).unwrap();
            let secs = |r: &virtflow_cluster::Row| {
                (r.key.end.unwrap() - r.key.start.unwrap()) as f64 / 1e9
            };
            let total: f64 = ws.iter().map(|r| r.values[col] * secs(r)).sum();
            let expected = row.values[col] * secs(row);
            let before_known = if feature.starts_with("irq_") {
                model
                    .vms
                    .iter()
                    .find(|vm| vm.pid == row.key.pid)
                    .map_or(0, |vm| vm.vcpus.len()) as f64
            } else {
                0.0
            };
            assert!(
                total <= expected + 1e-6 * expected.max(1.0)
                    && expected - total <= before_known + 1e-6 * expected.max(1.0),
                "{} {feature}: windows {total}, whole {expected}",
                row.key.label()
            );
        }
    }
    // The exit mix of the whole trace (from the exit table) and of the windows (from the
    // series) agree.
    let col = whole.column("exit_halt_share").unwrap();
    let exits = whole.column("exit_rate").unwrap();
    for row in &whole.rows {
        let halts: f64 = window
            .rows
            .iter()
            .filter(|r| r.key.entity() == row.key.entity())
            .map(|r| {
                r.values[col] * r.values[exits] * (r.key.end.unwrap() - r.key.start.unwrap()) as f64
            })
            .sum();
        let span = (row.key.end.unwrap() - row.key.start.unwrap()) as f64;
        let expected = row.values[col] * row.values[exits] * span;
        assert!(
            (halts - expected).abs() <= 1e-6 * expected.max(1.0),
            "{}: {halts} vs {expected}",
            row.key.label()
        );
    }
}

/// Guest processes (CR3 at entry) get windows of their own, and phases.
#[test]
fn guest_processes_have_windows_and_phases() {
    let dir = Dir::new("processes");
    let (trace, truth) = simulate(virtflow_sim::Scenario::Processes, 2_000_000_000, &dir.0);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(truth).unwrap()).unwrap();
    let model = analyze_with_series(&trace);
    let rows = pipeline::rows_in("p", &model, Level::Process, WindowSpec::Auto);
    assert!(rows.table.windowed());
    let known: std::collections::BTreeSet<(u64, u64)> = truth["guest_processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["vm_pid"].as_u64().unwrap(), p["cr3"].as_u64().unwrap()))
        .collect();
    let seen: std::collections::BTreeSet<(u64, u64)> = rows
        .table
        .rows
        .iter()
        .map(|r| (r.key.pid as u64, r.key.cr3.unwrap()))
        .collect();
    assert_eq!(seen, known, "every (VM, CR3) of the truth, and no other");
    // A process's guest time over its windows is its guest time in the model.
    let guest = rows.table.column("guest_share").unwrap();
    for (pid, cr3) in &known {
        let total: f64 = rows
            .table
            .rows
            .iter()
            .filter(|r| r.key.pid as u64 == *pid && r.key.cr3 == Some(*cr3))
            .map(|r| r.values[guest] * (r.key.end.unwrap() - r.key.start.unwrap()) as f64)
            .sum();
        let model_ns: u64 = model
            .vms
            .iter()
            .filter(|vm| vm.pid as u64 == *pid)
            .flat_map(|vm| &vm.vcpus)
            .flat_map(|v| &v.processes)
            .filter(|p| p.cr3 == *cr3)
            .map(|p| p.guest_ns)
            .sum();
        assert!(
            (total - model_ns as f64).abs() <= 1e-6 * model_ns as f64 + 1.0,
            "vm {pid} cr3 {cr3:#x}: {total} vs {model_ns}"
        );
    }
    let report = cluster(&rows.table, &ClusterOptions::default());
    assert_eq!(report.processes.len(), known.len(), "{}", report.to_text());
    assert!(report.vms.is_empty() && report.vcpus.is_empty());
    for t in &report.processes {
        assert!(t.cr3.is_some() && !t.phases.is_empty());
        assert!(t.phases.windows(2).all(|p| p[0].end <= p[1].start));
    }
}

/// The exports of windows carry them: CSV `start` and `end` columns, LAMI a time-range per
/// row and a table of phases that validates against the metadata.
#[test]
fn exports_of_windows_carry_start_and_end() {
    let dir = Dir::new("exports");
    let (trace, _) = simulate(virtflow_sim::Scenario::Phases, 3_000_000_000, &dir.0);
    let model = analyze_with_series(&trace);
    let rows = pipeline::rows_in("x", &model, Level::Vm, WindowSpec::Length(250_000_000));
    let table = &rows.table;
    let csv = table.to_csv();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (s, e) = (
        header.iter().position(|h| *h == "start").unwrap(),
        header.iter().position(|h| *h == "end").unwrap(),
    );
    for (line, row) in lines.zip(&table.rows) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[s], row.key.start.unwrap().to_string());
        assert_eq!(cells[e], row.key.end.unwrap().to_string());
    }
    let report = cluster(table, &ClusterOptions::default());
    let results = lami::results(table, &report, rows.begin, rows.end);
    let meta = lami::metadata(
        &virtflow_cluster::features::vm_features(),
        &virtflow_cluster::features::process_features(),
    );
    lami::validate(&meta, &results).unwrap();
    let first = &results["results"][0]["data"][0][2];
    assert_eq!(first["class"], "time-range");
    assert_eq!(first["begin"]["value"], table.rows[0].key.start.unwrap());
    let phases = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["class"] == "phases")
        .expect("a phases table");
    let count: usize = report.vms.iter().map(|t| t.phases.len()).sum();
    assert_eq!(phases["data"].as_array().unwrap().len(), count);
}

/// Windows of several recordings make one table and one clustering: the real lab recordings
/// (trace-cmd) with the simulated phases, every lab VM still named after its manifest.
#[test]
fn windows_of_several_recordings_cluster_together() {
    let lab = virtflow_testkit::shared_traces().join("kvm-lab");
    let folders = ["s1_idle", "s2_cpu", "s3_disk", "s4_net", "s5_overcommit"];
    if !lab.join("s1_idle/trace.dat").exists() {
        eprintln!("kvm-lab traces not present: skipped");
        return;
    }
    let dir = Dir::new("together");
    let (sim, _) = simulate(virtflow_sim::Scenario::Phases, 6_000_000_000, &dir.0);
    let mut table: Option<virtflow_cluster::FeatureTable> = None;
    let mut expected: Vec<(String, u32, WorkloadClass)> = Vec::new();
    for trace in folders
        .iter()
        .map(|f| lab.join(f).join("trace.dat"))
        .chain([sim])
    {
        let label = trace.display().to_string();
        let model = analyze_with_series(&trace);
        let rows = pipeline::rows_in(&label, &model, Level::Vm, WindowSpec::Auto);
        match &mut table {
            None => table = Some(rows.table),
            Some(t) => t.extend(rows.table).unwrap(),
        }
        let Ok(manifest) = std::fs::read_to_string(trace.with_file_name("manifest.json")) else {
            continue;
        };
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        for vm in manifest["vms"].as_array().unwrap() {
            let w = vm["workload"].as_str().unwrap();
            expected.push((
                label.clone(),
                vm["qemu_pid"].as_u64().unwrap() as u32,
                WorkloadClass::from_workload(w).unwrap(),
            ));
        }
    }
    let table = table.unwrap();
    let report = cluster(&table, &ClusterOptions::default());
    let text = report.to_text();
    assert_eq!(expected.len(), 6);
    for (trace, pid, class) in &expected {
        let t = report
            .vms
            .iter()
            .find(|t| &t.trace == trace && t.pid == *pid)
            .unwrap_or_else(|| panic!("{trace} vm {pid}: {text}"));
        assert_eq!(t.verdict, *class, "{trace} vm {pid}: {text}");
    }
}

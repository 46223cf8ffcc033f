//! `virtflow critical-path` as a user runs it: on real host traces whose manifests say which
//! threads a request went through (a guest sending to the host's peer through its vhost
//! thread; a guest fetching from another guest over the bridge, through both VMs' vhost
//! threads), on Trace Compass's stub traces of a client and a server as two hosts, and with
//! the mistakes a user makes.

mod sim_common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value as Json;
use sim_common::{cache_dir, scratch, virtflow};

use virtflow_testkit::shared_trace as shared;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/traces")).join(path)
}

fn path_json(args: &[&str]) -> Json {
    let mut all = vec!["critical-path", "--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&virtflow(&all)).unwrap()
}

/// The states the JSON may give, as the command's contract lists them.
const STATES: [&str; 10] = [
    "running",
    "preempted",
    "blocked",
    "timer",
    "disk",
    "network",
    "ipi",
    "interrupt",
    "user_input",
    "unknown",
];

/// Checks the contract every path keeps: contiguous segments covering `[start, end)`, known
/// states, totals that add up; returns the time spent per thread id (`None`: in flight).
fn check_path(p: &Json) -> BTreeMap<Option<u64>, i64> {
    let (start, end) = (p["start"].as_i64().unwrap(), p["end"].as_i64().unwrap());
    let segments = p["segments"].as_array().unwrap();
    assert!(!segments.is_empty());
    let mut at = start;
    let mut by_tid = BTreeMap::new();
    for s in segments {
        let (s0, s1) = (s["start"].as_i64().unwrap(), s["end"].as_i64().unwrap());
        assert_eq!(s0, at, "contiguous: {s}");
        assert!(s1 > s0, "{s}");
        let state = s["state"].as_str().unwrap();
        assert!(STATES.contains(&state), "{state}");
        if s["tid"].is_null() && s["process"].is_null() {
            assert_eq!(
                state, "network",
                "only a message in flight has no thread: {s}"
            );
        }
        *by_tid.entry(s["tid"].as_u64()).or_insert(0) += s1 - s0;
        at = s1;
    }
    assert_eq!(at, end);
    let by_state: i64 = p["totals"]["by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(by_state, end - start);
    by_tid
}

/// `kvm-lab/s4_net`: the guest streams to a peer on the host through its vhost thread. Over
/// the whole trace, each vCPU's path runs through its VM's vhost thread (the manifest's
/// `vhost_tids`), which the vCPUs' waits for the network end with.
#[test]
fn a_net_guests_vcpus_wait_on_their_vhost_thread() {
    let Some(dir) = shared("kvm-lab/s4_net") else {
        eprintln!("kvm-lab not present: skipped");
        return;
    };
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let vm = &manifest["vms"][0];
    let pid = vm["qemu_pid"].as_u64().unwrap().to_string();
    let vhost = vm["vhost_tids"][0].as_u64().unwrap();
    let trace = dir.join("trace.dat");
    for (vcpu, tid) in vm["vcpu_tids"].as_object().unwrap() {
        let p = path_json(&[trace.to_str().unwrap(), "--vm", &pid, "--vcpu", vcpu]);
        assert_eq!(p["tid"].as_u64(), tid.as_u64());
        let by_tid = check_path(&p);
        let on_vhost = by_tid.get(&Some(vhost)).copied().unwrap_or(0);
        assert!(on_vhost > 1_000_000, "vCPU {vcpu}: {on_vhost} ns on vhost");
        // The vCPU's own segments say which vCPU it is.
        let own = p["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["tid"] == *tid)
            .unwrap();
        assert_eq!(own["vcpu"].as_u64().unwrap().to_string(), *vcpu);
    }
}

/// `tests/traces/x1_cross`: vm1 fetches a file from vm2 again and again over the bridge. Over
/// the fetches, vm1's vCPU path goes through vm1's vhost thread, vm2's vhost thread and vm2's
/// vCPU (the server's work), as the manifest's path of a request says.
#[test]
fn a_request_between_two_guests_crosses_both_vhost_threads() {
    let dir = repo("x1_cross");
    let manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let scratch = scratch("critical-path", "x1");
    std::fs::create_dir_all(&scratch).unwrap();
    let trace = scratch.join("trace.dat");
    let bytes = zstd::decode_all(std::fs::File::open(dir.join("trace.dat.zst")).unwrap()).unwrap();
    std::fs::write(&trace, bytes).unwrap();
    let vm = |name: &str| {
        manifest["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    let (client, server) = (vm("vm1"), vm("vm2"));
    // The fetches, in seconds after the trace's first event: from the driver's go to the
    // client's stop, both in L1's uptime like the recording's start.
    let rec = &manifest["phases"]["trace-cmd"];
    let t0 = rec["record_start_l1_uptime_s"].as_f64().unwrap();
    let go = manifest["cross"]["go_sent_l1_uptime_s"].as_f64().unwrap() - t0;
    let stop = manifest["cross"]["fetch_wl_stop_seen_l1_uptime_s"]
        .as_f64()
        .unwrap()
        - t0;
    let pid = client["qemu_pid"].as_u64().unwrap().to_string();
    let p = path_json(&[
        trace.to_str().unwrap(),
        "--vm",
        &pid,
        "--vcpu",
        "0",
        "--from",
        &format!("{go:.3}s"),
        "--to",
        &format!("{stop:.3}s"),
    ]);
    let by_tid = check_path(&p);
    let time_on = |v: &Json, what: &str| -> i64 {
        let tid = match what {
            "vhost" => v["vhost_tids"][0].as_u64(),
            _ => v["vcpu_tids"]["0"].as_u64(),
        };
        by_tid.get(&tid).copied().unwrap_or(0)
    };
    for (who, v, what) in [
        ("client's vhost", &client, "vhost"),
        ("server's vhost", &server, "vhost"),
        ("server's vCPU", &server, "vcpu"),
    ] {
        let ns = time_on(v, what);
        assert!(ns > 10_000_000, "{who}: {ns} ns on the path: {by_tid:?}");
    }
    // The server's threads are named as the VM's.
    let server_pid = server["qemu_pid"].as_u64().unwrap();
    let on_server = p["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tid"].as_u64() == server["vhost_tids"][0].as_u64())
        .unwrap();
    assert!(
        on_server["vm"]
            .as_str()
            .unwrap()
            .contains(&server_pid.to_string()),
        "{on_server}"
    );
    let _ = std::fs::remove_dir_all(scratch);
}

/// Trace Compass's client and server stubs as two hosts on their own clocks: the client's
/// path over its request is its own running, the request in flight (no thread), the server's
/// work, the answer in flight, its own running again.
#[test]
fn stub_client_and_server_as_two_hosts() {
    use virtflow_xmlstub::testing::traces;
    let dir = scratch("critical-path", "stubs");
    std::fs::create_dir_all(&dir).unwrap();
    let client = traces::simple_network_client().write_in(&dir).unwrap();
    let server = traces::simple_network_server().write_in(&dir).unwrap();
    let (c, s) = (client.to_str().unwrap(), server.to_str().unwrap());
    let p = path_json(&[
        c,
        s,
        "--no-sync",
        "--tid",
        "200",
        "--on-host",
        "simple_network_client.xml",
        "--from",
        "10",
        "--to",
        "95",
    ]);
    check_path(&p);
    let pieces: Vec<(i64, i64, &str, Option<u64>, &str)> = p["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start"].as_i64().unwrap(),
                s["end"].as_i64().unwrap(),
                s["state"].as_str().unwrap(),
                s["tid"].as_u64(),
                s["host"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let (cl, sv) = ("simple_network_client.xml", "simple_network_server.xml");
    assert_eq!(
        pieces,
        vec![
            (10, 15, "running", Some(200), cl),
            (15, 35, "network", None, ""),
            (35, 40, "preempted", Some(100), sv),
            (40, 45, "running", Some(100), sv),
            (45, 70, "network", None, ""),
            (70, 75, "preempted", Some(200), cl),
            (75, 95, "running", Some(200), cl),
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// What a user gets wrong gets an error that says what to write instead.
#[test]
fn mistakes_are_explained() {
    use virtflow_xmlstub::testing::traces;
    let dir = scratch("critical-path", "mistakes");
    std::fs::create_dir_all(&dir).unwrap();
    let client = traces::simple_network_client().write_in(&dir).unwrap();
    let server = traces::simple_network_server().write_in(&dir).unwrap();
    let (c, s) = (client.to_str().unwrap(), server.to_str().unwrap());
    let fails = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_virtflow"))
            .arg("critical-path")
            .args(args)
            .env("VIRTFLOW_CACHE_DIR", cache_dir())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fails(&[c, s, "--no-sync", "--tid", "200"]);
    assert!(e.contains("--on-host"), "{e}");
    assert!(e.contains("simple_network_server.xml"), "{e}");
    let e = fails(&[c, "--vm", "web", "--vcpu", "0"]);
    assert!(e.contains("no VM \"web\""), "{e}");
    let e = fails(&[c, "--tid", "4242"]);
    assert!(e.contains("4242"), "{e}");
    let e = fails(&[c, "--process", "banana"]);
    assert!(e.contains("--process"), "{e}");
    let e = fails(&[c]);
    assert!(e.contains("--tid") && e.contains("--vm"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A guest process is a worker of its own (the simulator's `processes` scenario: guest
/// processes known by the CR3 their vCPUs load at entry): its path over its life is its own
/// runs — at least its longest run on one vCPU and at most its guest time on all of them, as
/// the truth gives them — and, between runs, what its VM's vCPUs and helper threads did.
#[test]
fn a_guest_process_is_a_worker_of_its_own() {
    let dir = scratch("critical-path", "processes");
    let d = dir.to_str().unwrap();
    virtflow(&["simulate", "processes", "-o", d]);
    let truth: Json =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let process = &truth["guest_processes"][0];
    let (pid, cr3) = (
        process["vm_pid"].as_u64().unwrap(),
        process["cr3"].as_u64().unwrap(),
    );
    let runs: Vec<i64> = truth["guest_processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["vm_pid"].as_u64() == Some(pid) && p["cr3"].as_u64() == Some(cr3))
        .map(|p| p["guest_ns"].as_i64().unwrap())
        .collect();
    let vm = truth["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["pid"].as_u64() == Some(pid))
        .unwrap();
    let mut own: Vec<u64> = vm["vcpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tid"].as_u64().unwrap())
        .collect();
    own.extend(
        vm["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tid"].as_u64().unwrap()),
    );
    let trace = sim_common::trace_in(&dir);
    let p = path_json(&[trace.to_str().unwrap(), "--process", &format!("{cr3:#x}")]);
    assert_eq!(p["process"], format!("{cr3:#x}"));
    let segments = p["segments"].as_array().unwrap();
    let on_itself: i64 = segments
        .iter()
        .filter(|s| s["process"] == format!("{cr3:#x}"))
        .map(|s| s["end"].as_i64().unwrap() - s["start"].as_i64().unwrap())
        .sum();
    let (longest, all) = (*runs.iter().max().unwrap(), runs.iter().sum::<i64>());
    assert!(
        on_itself >= longest && on_itself <= all,
        "{on_itself} ns on itself, runs {runs:?}"
    );
    for s in segments.iter().filter(|s| s["process"].is_null()) {
        let tid = s["tid"].as_u64().expect("one host: nothing in flight");
        assert!(own.contains(&tid), "{s}: not a thread of VM {pid}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A nested (L2) guest is a worker of its own too (the simulator's `nested` scenario, where
/// L1 runs an L2 guest on each vCPU): its path over its life alternates between its own runs
/// and its vCPU's time in L1 — the layer below, handling its exits — and nothing else.
#[test]
fn a_nested_guest_waits_on_its_l1() {
    let dir = scratch("critical-path", "nested");
    let d = dir.to_str().unwrap();
    virtflow(&["simulate", "nested", "-o", d]);
    let truth: Json =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let vcpu0 = truth["vms"][0]["vcpus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["vcpu"] == 0)
        .unwrap()["tid"]
        .as_u64()
        .unwrap();
    let trace = sim_common::trace_in(&dir);
    // The L2 guest of vCPU 0, by its VMCB as the trace's kvm_nested_vmenter gives it.
    let model: virtflow_model::Model = serde_json::from_slice(&virtflow(&[
        "analyze",
        "--json",
        "--intervals",
        trace.to_str().unwrap(),
    ]))
    .unwrap();
    let vmcb = model.vms[0]
        .vcpus
        .iter()
        .find(|v| v.tid as u64 == vcpu0)
        .unwrap()
        .nested[0]
        .vmcs;
    let p = path_json(&[trace.to_str().unwrap(), "--nested", &format!("{vmcb:#x}")]);
    check_path(&p);
    let (mut own, mut l1) = (0, 0);
    for s in p["segments"].as_array().unwrap() {
        let ns = s["end"].as_i64().unwrap() - s["start"].as_i64().unwrap();
        if s["process"] == format!("nested guest {vmcb:#x}") {
            own += ns;
        } else {
            assert_eq!(s["tid"].as_u64(), Some(vcpu0), "{s}");
            l1 += ns;
        }
    }
    assert!(own > 0 && l1 > 0, "own {own} ns, L1 {l1} ns");
    let _ = std::fs::remove_dir_all(dir);
}

//! Several hosts on one clock: `virtflow sync` and experiments, against Trace Compass's
//! published result on the synctraces, the simulator's true clocks, and real lab recordings.

mod sim_common;

use serde_json::Value as Json;
use sim_common::{scratch, virtflow};
use virtflow_model::Model;

use virtflow_testkit::shared_traces as shared;

fn json(args: &[&str]) -> Json {
    serde_json::from_slice(&virtflow(args)).unwrap()
}

fn model(args: &[&str]) -> Model {
    serde_json::from_slice(&virtflow(args)).unwrap()
}

/// Trace Compass's `ExperimentSyncTest` asserts this transform for `scp_src` against
/// `scp_dest`, from the 46 TCP segments they exchanged (`inet_sock_local_out/in`).
#[test]
fn synctraces_give_trace_compass_transform_digit_for_digit() {
    let dir = shared().join("lttng/synctraces");
    if !dir.exists() {
        eprintln!("synctraces not present: skipped");
        return;
    }
    let d = dir.to_str().unwrap();
    let sync = json(&["sync", "--json", d]);
    assert_eq!(sync["reference"], "VM3", "scp_dest, first in the folder");
    let src = sync["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["host"] == "VM1")
        .expect("scp_src's host");
    assert!(src["path"].as_str().unwrap().ends_with("scp_src"));
    assert_eq!(src["slope_exact"], "0.9999413783703139011056845831168394");
    assert_eq!(src["offset_exact"], "79796507913179.33347660124688298171");
    assert_eq!(src["quality"], "accurate");
    assert_eq!(src["matches"], 46);
    assert!(src["bound_ns"].as_f64().unwrap() > 0.0);
    // The experiment: two hosts apart; synchronised, no segment arrives before it left.
    let m = model(&["analyze", "--json", d]);
    let hosts: Vec<&str> = m.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(hosts, ["VM3", "VM1"]);
    assert_eq!(m.hosts[0].events, 85_729);
    assert_eq!(m.hosts[1].events, 110_771);
    let t = m.timeline.as_ref().expect("a time line");
    assert_eq!((t.reference.as_str(), t.messages), ("VM3", 46));
    assert_eq!(t.received_before_sent, 0);
    assert_eq!(m.hosts[1].clock.as_ref().unwrap().quality, "accurate");
    // On their own clocks, about half arrive before they left.
    let raw = model(&["analyze", "--json", "--no-sync", d]);
    let t = raw.timeline.unwrap();
    assert_eq!(t.source, "off");
    assert!(t.received_before_sent > 10, "{t:?}");
    // A saved synchronisation is the same time line.
    let file = scratch("sync", "file.json");
    std::fs::write(&file, virtflow(&["sync", "--json", d])).unwrap();
    let again = model(&["analyze", "--json", "--sync", file.to_str().unwrap(), d]);
    assert_eq!(again.hosts[1].start_ns, m.hosts[1].start_ns);
    assert_eq!(again.timeline.unwrap().received_before_sent, 0);
    let _ = std::fs::remove_file(file);
}

/// The simulator's hosts run clocks of their own (an offset and a drift): the recovered
/// transform puts each host's events within the hulls' bound of their true time, and each host
/// shows its own VMs.
#[test]
fn simulated_hosts_are_synchronised_within_the_bound() {
    let dir = scratch("sync", "multihost");
    let d = dir.to_str().unwrap();
    virtflow(&["simulate", "multihost", "-o", d, "--format", "ctf"]);
    let truth: Json =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let sync = json(&["sync", "--json", d]);
    let reference = sync["reference"].as_str().unwrap().to_string();
    let true_clock = |host: &str| {
        let h = truth["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == host)
            .unwrap();
        (
            h["clock"]["slope"].as_f64().unwrap(),
            h["clock"]["offset_ns"].as_f64().unwrap(),
        )
    };
    // A host's clock reads `slope × true + offset`: back to true time, then to the
    // reference's clock.
    let (rs, ro) = true_clock(&reference);
    for t in sync["traces"].as_array().unwrap() {
        let host = t["host"].as_str().unwrap();
        let (s, o) = true_clock(host);
        if host == reference {
            continue;
        }
        assert_eq!(t["quality"], "accurate", "{t}");
        let bound = t["bound_ns"].as_f64().unwrap();
        let (slope, offset) = (
            t["slope"].as_f64().unwrap(),
            t["offset_ns"].as_f64().unwrap(),
        );
        for seconds in [10.0, 10.5, 11.0] {
            let host_time = seconds * 1e9 * s + o;
            let truly = rs * ((host_time - o) / s) + ro;
            let ours = slope * host_time + offset;
            assert!(
                (ours - truly).abs() <= bound,
                "{host} at {seconds} s: {ours} vs {truly} (bound {bound})"
            );
        }
    }
    let m = model(&["analyze", "--json", d]);
    let got: Vec<(u32, String, Vec<u32>)> = m
        .vms
        .iter()
        .map(|v| {
            (
                v.pid,
                v.host.clone(),
                v.vcpus.iter().map(|c| c.tid).collect(),
            )
        })
        .collect();
    let expected: Vec<(u32, String, Vec<u32>)> = truth["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["pid"].as_u64().unwrap() as u32,
                v["host"].as_str().unwrap().to_string(),
                v["vcpus"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["tid"].as_u64().unwrap() as u32)
                    .collect(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(m.timeline.unwrap().received_before_sent, 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// Two recordings of one lab machine at different times, pids reused: two hosts, each with
/// its own VM, and a note that says so.
#[test]
fn two_recordings_of_one_machine_stay_apart() {
    let lab = shared().join("kvm-lab");
    let (a, b) = (lab.join("s1_idle/trace.dat"), lab.join("s2_cpu/trace.dat"));
    if !a.exists() || !b.exists() {
        eprintln!("kvm-lab not present: skipped");
        return;
    }
    let m = model(&[
        "analyze",
        "--json",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_eq!(m.hosts.len(), 2);
    assert_eq!(
        m.vms.len(),
        2,
        "{:?}",
        m.vms.iter().map(|v| &v.name).collect::<Vec<_>>()
    );
    assert_ne!(m.vms[0].host, m.vms[1].host);
    for (vm, host) in m.vms.iter().zip(&m.hosts) {
        assert_eq!(vm.host, host.name);
        // Each VM keeps its own vhost thread.
        assert!(vm
            .threads
            .iter()
            .any(|t| t.comm == format!("vhost-{}", vm.pid)));
    }
    assert!(
        m.notes.iter().any(|n| n.contains("separate recordings")),
        "{:?}",
        m.notes
    );
    // ftrace's net events carry no TCP header: the user is told why no clock was related.
    assert!(
        m.notes.iter().any(|n| n.contains("no TCP header")),
        "{:?}",
        m.notes
    );
}

/// Trace Compass's stub traces as the command line opens them: the network stubs' client and
/// server are two hosts named by their files, whose messages (`msgid`) pair across hosts as
/// its event matching test finds (client 30 → server 50, server 70 → client 100); the
/// OneQemuKvm guest and host pair their `vmsync_*` messages. Trace Compass runs no
/// synchronisation on the latter: the transform checked here is that of its algorithm worked
/// by hand on these six messages, not a published figure.
#[test]
fn stub_traces_pair_their_messages_across_hosts() {
    use virtflow_xmlstub::testing::traces;
    let dir = scratch("sync", "stubs");
    std::fs::create_dir_all(&dir).unwrap();
    let client = traces::network_client().write_in(&dir).unwrap();
    let server = traces::network_server().write_in(&dir).unwrap();
    let (c, s) = (client.to_str().unwrap(), server.to_str().unwrap());
    let sync = json(&["sync", "--json", c, s]);
    assert_eq!(sync["reference"], "client.xml");
    let server_clock = &sync["traces"][1];
    assert_eq!(server_clock["host"], "server.xml");
    assert_eq!(server_clock["matches"], 2, "{sync}");
    let m = model(&["analyze", "--json", "--no-sync", c, s]);
    assert_eq!(m.hosts.len(), 2);
    assert_eq!(m.timeline.unwrap().messages, 2);

    let guest = traces::one_qemu_kvm_guest().write_in(&dir).unwrap();
    let host = traces::one_qemu_kvm_host().write_in(&dir).unwrap();
    let sync = json(&[
        "sync",
        "--json",
        guest.to_str().unwrap(),
        host.to_str().unwrap(),
    ]);
    assert_eq!(sync["reference"], "guest.xml");
    let h = &sync["traces"][1];
    assert_eq!(h["matches"], 6);
    assert_eq!(h["quality"], "accurate");
    assert_eq!(h["slope_exact"], "0.9874608150470219435736677115987458");
    assert_eq!(h["offset_exact"], "1.912225705329153605015673981191186");
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `virtflow ARGS…` with its own, empty cache folder; returns its standard output.
fn fresh(cache: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtflow"))
        .args(args)
        .env("VIRTFLOW_CACHE_DIR", cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Without a synchronisation cached, an experiment's pass fits the clocks itself, on hosts
/// shifted to start together, and puts the model on the reference clock at its end: the
/// synctraces give Trace Compass's transform digit for digit all the same, no segment arrives
/// before it left, the second host's span is its own on the reference clock, and the fit is
/// cached for `virtflow sync` and the next command, which then read the traces once.
#[test]
fn the_pass_fits_the_clocks_when_none_are_known() {
    let dir = shared().join("lttng/synctraces");
    if !dir.exists() {
        eprintln!("synctraces not present: skipped");
        return;
    }
    let cache = scratch("sync", "fit-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let d = dir.to_str().unwrap();
    let m: Model = serde_json::from_slice(&fresh(&cache, &["analyze", "--json", d])).unwrap();
    let t = m.timeline.as_ref().unwrap();
    assert_eq!(t.source, "computed");
    assert_eq!((t.messages, t.received_before_sent), (46, 0));
    let clock = m.hosts[1].clock.as_ref().unwrap();
    assert_eq!(clock.slope_exact, "0.9999413783703139011056845831168394");
    assert_eq!(clock.offset_exact, "79796507913179.33347660124688298171");
    assert_eq!(clock.quality, "accurate");
    // VM1's first event, on its own clock, mapped by the transform.
    let own: Model = serde_json::from_slice(&fresh(
        &cache,
        &["analyze", "--json", &format!("{d}/scp_src")],
    ))
    .unwrap();
    let transform = virtflow_sync::ClockTransform::new(
        clock.slope_exact.parse().unwrap(),
        clock.offset_exact.parse().unwrap(),
    )
    .unwrap();
    assert_eq!(m.hosts[1].start_ns, transform.apply(own.hosts[0].start_ns));
    // `virtflow sync` now reads the cache the pass wrote.
    let sync: Json = serde_json::from_slice(&fresh(&cache, &["sync", "--json", d])).unwrap();
    let src = &sync["traces"][1];
    assert_eq!(src["offset_exact"], "79796507913179.33347660124688298171");
    let again: Model = serde_json::from_slice(&fresh(&cache, &["analyze", "--json", d])).unwrap();
    assert_eq!(again.timeline.as_ref().unwrap().source, "cache");
    assert_eq!(again.hosts[1].start_ns, m.hosts[1].start_ns);
    let _ = std::fs::remove_dir_all(cache);
}

//! `virtflow critical-path` against the simulator's ground truth. The `requests` scenario's
//! vCPUs issue requests one at a time and halt until each completes — a disk request through
//! the I/O thread, a network request through vhost to the server VM of another host and back,
//! a chain of IPIs through a VM's other vCPUs, a nested guest's request handed by L1 to its
//! other vCPU — and its truth gives each request's critical path, derived from what every
//! thread did and what truly woke it (`virtflow_sim::truth::paths`), never from the analysis.
//!
//! For every request, the command's `--json` path of the requesting vCPU thread from the exit
//! that issued the request to the entry where its guest runs on must be the truth's, piece for
//! piece: hosts, threads, states, start and end. The server also answers a client outside the
//! traced hosts, whose packets nobody pairs: a wait of the server's vhost that one of them
//! ended stays network on vhost, even after a paired request reached the same CPU. The hosts are put on one clock with their
//! true clocks (`--sync FILE`, written from the truth): times on the reference host are then
//! exact; a host's clock reads its true time truncated to the nanosecond and the transform
//! back rounds to the nearest, so times on the other host (and a message's arrival there) may
//! differ by 1 ns.

mod sim_common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value as Json;
use sim_common::{scratch, virtflow};
use virtflow_model::ThreadRole;
use virtflow_sim::truth::paths::{PathPiece, RequestTruth};
use virtflow_sim::truth::Truth;
use virtflow_sync::Decimal;

/// Simulates the `requests` scenario into `dir`; its truth, and its traces in host order.
fn simulate(dir: &Path, format: &str, duration: &str) -> (Truth, Vec<PathBuf>) {
    let d = dir.to_str().unwrap();
    let args = [
        "simulate",
        "requests",
        "-o",
        d,
        "--format",
        format,
        "--duration",
        duration,
    ];
    virtflow(&args);
    let truth: Truth = serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap())
        .expect("truth.json reads back");
    let traces = truth.hosts.iter().map(|h| dir.join(&h.trace)).collect();
    (truth, traces)
}

/// A `virtflow sync --json` file holding the hosts' true clocks. The truth gives each host's
/// clock as `host = slope × true + offset` with `slope = 1 + drift / 10^9`, the first host's
/// being the true one; the file gives the way back, `true = host / slope − offset / slope`,
/// in 34 digits.
fn true_clocks(truth: &Truth, traces: &[PathBuf], file: &Path) {
    let billion = Decimal::from(1_000_000_000i64);
    let clocks: Vec<Json> = truth
        .hosts
        .iter()
        .zip(traces)
        .map(|(h, path)| {
            let drift = ((h.clock.slope - 1.0) * 1e9).round() as i64;
            let slope = billion
                .div_rounded(Decimal::from(1_000_000_000 + drift))
                .unwrap();
            let offset = -Decimal::from(h.clock.offset_ns).mul_rounded(slope);
            serde_json::json!({
                "path": path,
                "host": h.name,
                "slope": slope.to_f64(),
                "offset_ns": offset.to_f64(),
                "quality": "accurate",
                "matches": 0,
                "bound_ns": 0.0,
                "slope_exact": slope.to_string(),
                "offset_exact": offset.to_string(),
            })
        })
        .collect();
    let sync = serde_json::json!({ "reference": truth.hosts[0].name, "traces": clocks });
    std::fs::write(file, serde_json::to_vec_pretty(&sync).unwrap()).unwrap();
}

/// The command's path of a request, as pieces.
fn tool_path(traces: &[PathBuf], sync: &Path, r: &RequestTruth) -> Vec<PathPiece> {
    let mut args: Vec<String> = vec!["critical-path".into(), "--json".into()];
    args.extend(traces.iter().map(|t| t.to_str().unwrap().to_string()));
    for a in [
        "--sync",
        sync.to_str().unwrap(),
        "--tid",
        &r.tid.to_string(),
        "--on-host",
        &r.host,
        "--from",
        &r.start.to_string(),
        "--to",
        &r.end.to_string(),
    ] {
        args.push(a.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out: Json = serde_json::from_slice(&virtflow(&args)).unwrap();
    assert_eq!(
        (out["start"].as_i64(), out["end"].as_i64()),
        (Some(r.start), Some(r.end))
    );
    out["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| PathPiece {
            host: s["host"].as_str().map(str::to_string),
            tid: s["tid"].as_u64().map(|t| t as u32),
            state: s["state"].as_str().unwrap().to_string(),
            start: s["start"].as_i64().unwrap(),
            end: s["end"].as_i64().unwrap(),
        })
        .collect()
}

/// Whether the command's piece is the truth's: exact on the reference host, within 1 ns
/// elsewhere (see the module's comment).
fn same(got: &PathPiece, want: &PathPiece, reference: &str) -> bool {
    let slack = if want.host.as_deref() == Some(reference) {
        0
    } else {
        1
    };
    got.host == want.host
        && got.tid == want.tid
        && got.state == want.state
        && (got.start - want.start).abs() <= slack
        && (got.end - want.end).abs() <= slack
}

fn show(path: &[PathPiece]) -> String {
    path.iter()
        .map(|p| {
            let who = match (&p.host, p.tid) {
                (Some(h), Some(t)) => format!("{h}/{t}"),
                _ => "in flight".to_string(),
            };
            format!("\n    {} {} {} {}", p.start, p.end, p.state, who)
        })
        .collect()
}

/// Runs the command for every request, on all cores, and returns what differs from the truth.
fn differences(truth: &Truth, traces: &[PathBuf], sync: &Path) -> Vec<String> {
    let reference = truth.hosts[0].name.as_str();
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = truth.requests.get(i) else {
                    break;
                };
                let got = tool_path(traces, sync, r);
                let agree = got.len() == r.path.len()
                    && got.iter().zip(&r.path).all(|(g, w)| same(g, w, reference));
                if !agree {
                    found.lock().unwrap().push(format!(
                        "{} request of {}/{} over [{}, {}):\n  critical-path:{}\n  truth:{}",
                        r.kind,
                        r.host,
                        r.tid,
                        r.start,
                        r.end,
                        show(&got),
                        show(&r.path)
                    ));
                }
            });
        }
    });
    found.into_inner().unwrap()
}

/// How many requests of each kind the truth holds; each kind at least `least` times.
fn count_kinds(truth: &Truth, least: usize) {
    for kind in ["disk", "network", "ipi", "nested"] {
        let n = truth.requests.iter().filter(|r| r.kind == kind).count();
        assert!(n >= least, "{n} {kind} requests");
    }
}

/// The helper thread of `host` with `role` of the VM named `vm`.
fn helper(truth: &Truth, host: &str, vm: &str, role: ThreadRole) -> u32 {
    let vm = truth
        .vms
        .iter()
        .find(|v| v.host == host && v.name == vm)
        .unwrap();
    vm.threads
        .iter()
        .find(|t| t.role == role)
        .unwrap_or_else(|| panic!("{role:?} of {}", vm.name))
        .tid
}

/// LTTng's network events carry the TCP header, so a packet's two ends pair across hosts:
/// every request's path — the network ones through the server's host and back — is the
/// truth's.
#[test]
fn every_request_path_is_the_truths_across_two_hosts() {
    let dir = scratch("critical-path-sim", "ctf");
    let (truth, traces) = simulate(&dir, "ctf", "100ms");
    count_kinds(&truth, 20);
    // The network requests do cross: through the server's vhost, in flight both ways.
    let (client, server) = (&truth.hosts[0].name, &truth.hosts[1].name);
    let server_vhost = helper(&truth, server, "server", ThreadRole::Vhost);
    for r in truth.requests.iter().filter(|r| r.kind == "network") {
        assert_eq!(&r.host, client);
        let on = |tid: u32| r.path.iter().any(|p| p.tid == Some(tid));
        assert!(on(server_vhost), "{}", show(&r.path));
        let in_flight = r.path.iter().filter(|p| p.tid.is_none()).count();
        assert!(in_flight >= 1, "{}", show(&r.path));
    }
    // Some go through a wait of the server's vhost for an outside client's packet.
    let outside = truth
        .requests
        .iter()
        .filter(|r| {
            r.path
                .iter()
                .any(|p| p.tid == Some(server_vhost) && p.state == "network")
        })
        .count();
    assert!(outside > 0);
    assert_every_path_is_the_truths(&truth, &traces, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Every request's path, on the hosts' true clocks, equals the truth's.
fn assert_every_path_is_the_truths(truth: &Truth, traces: &[PathBuf], dir: &Path) {
    let sync = dir.join("clocks.json");
    true_clocks(truth, traces, &sync);
    let wrong = differences(truth, traces, &sync);
    assert!(
        wrong.is_empty(),
        "{} of {} requests differ; the first:\n{}",
        wrong.len(),
        truth.requests.len(),
        wrong.iter().take(3).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// ftrace's network events carry no TCP header: the hosts' packets cannot be paired, so a
/// network request's path stops at the client's vhost thread, waiting for the network; the
/// other requests stay on their host as before.
#[test]
fn without_packet_headers_the_answer_is_a_wait_of_vhost() {
    let dir = scratch("critical-path-sim", "dat");
    let (truth, traces) = simulate(&dir, "dat", "60ms");
    count_kinds(&truth, 10);
    let client = truth.hosts[0].name.clone();
    let vhost = helper(&truth, &client, "vm3", ThreadRole::Vhost);
    for r in truth.requests.iter().filter(|r| r.kind == "network") {
        assert!(
            r.path.iter().all(|p| p.host.as_ref() == Some(&client)),
            "{}",
            show(&r.path)
        );
        assert!(
            r.path
                .iter()
                .any(|p| p.tid == Some(vhost) && p.state == "network"),
            "{}",
            show(&r.path)
        );
    }
    assert_every_path_is_the_truths(&truth, &traces, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

//! Differential test against babeltrace2: every event (timestamp, name, every field) must match
//! babeltrace's text output.

mod common;
use common::*;
use std::path::PathBuf;

fn trace_list() -> Vec<PathBuf> {
    let t = traces();
    let mut v = Vec::new();
    let mut dirs = |p: PathBuf| {
        if let Ok(rd) = std::fs::read_dir(&p) {
            let mut x: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            x.sort();
            v.extend(x);
        }
    };
    dirs(t.join("ctf-conformance/babeltrace/succeed"));
    dirs(t.join("lttng/synctraces"));
    dirs(t.join("perf-ctf"));
    let mut v2 = vec![t.join("lttng/many-threads"), t.join("host-real/perf-ctf")];
    for k in ["s1_idle", "s2_cpu", "s3_disk", "s4_net", "s5_overcommit"] {
        v2.push(t.join(format!("kvm-lab/{k}/ctf")));
    }
    for k in ["s3_disk_lttng", "s5_overcommit_lttng"] {
        v2.push(t.join(format!("kvm-lab/{k}/lttng")));
    }
    v.extend(v2.into_iter().filter(|p| p.is_dir()));
    v
}

fn check(trace: &std::path::Path) -> Result<usize, String> {
    let bt = match babeltrace(trace) {
        None => return Ok(0), // babeltrace2 not installed
        Some(Err(e)) => {
            if trace.join("metadata").is_file() && e.contains("MUXER") {
                // Compare stream by stream, then check the whole trace decodes in order.
                let mut n = 0;
                for (f, d) in per_stream_dirs(trace) {
                    let r = check_one_stream(&d).map_err(|e| format!("{}: {e}", f.display()));
                    let _ = std::fs::remove_dir_all(&d);
                    n += r?;
                }
                let (all, err) = ours(trace)?;
                if let Some(e) = err {
                    return Err(format!("error after {} events: {e}", all.len()));
                }
                if all.len() != n {
                    return Err(format!("{} events merged, {n} stream by stream", all.len()));
                }
                return Ok(n);
            }
            let name = trace.file_name().unwrap().to_string_lossy();
            let expect = traces().join(format!(
                "ctf-conformance/babeltrace-expect/succeed/trace-{name}.expect"
            ));
            if let Ok(text) = std::fs::read_to_string(&expect) {
                // babeltrace 2.0.4 fails where its newer self succeeds: compare event names.
                let names: Vec<String> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("Event `"))
                    .map(|l| l.split('`').next().unwrap().to_string())
                    .collect();
                let (ours, err) = ours(trace)?;
                if let Some(e) = err {
                    return Err(format!("error after {} events: {e}", ours.len()));
                }
                let got: Vec<String> = ours.iter().map(|e| e.name.clone()).collect();
                if got != names {
                    return Err(format!("events {got:?}, expected {names:?}"));
                }
                return Ok(got.len());
            }
            return Err(format!("babeltrace2 failed: {e}"));
        }
        Some(Ok(e)) => e,
    };
    let (mut ours, err) = ours(trace)?;
    if let Some(e) = err {
        return Err(format!("error after {} events: {e}", ours.len()));
    }
    if bt.iter().all(|e| e.ts == NO_TS) {
        ours.iter_mut().for_each(|e| e.ts = NO_TS);
    }
    compare(&ours, &bt)?;
    Ok(ours.len())
}

fn check_one_stream(trace: &std::path::Path) -> Result<usize, String> {
    let bt = match babeltrace_no_muxer(trace) {
        None => return Ok(0),
        Some(Err(e)) => return Err(format!("babeltrace2 failed: {e}")),
        Some(Ok(e)) => e,
    };
    let (ours, err) = ours(trace)?;
    if let Some(e) = err {
        return Err(format!("error after {} events: {e}", ours.len()));
    }
    compare(&ours, &bt)?;
    Ok(ours.len())
}

#[test]
fn against_babeltrace() {
    let filter = std::env::var("CTF_TRACE").ok();
    let mut failures = Vec::new();
    for t in trace_list() {
        let name = t.strip_prefix(traces()).unwrap_or(&t).display().to_string();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        match check(&t) {
            Ok(n) => eprintln!("ok   {name}: {n} events"),
            Err(e) => {
                eprintln!("FAIL {name}: {e}");
                failures.push(name);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "traces that differ from babeltrace2: {failures:?}"
    );
}

/// The simulator writes LTTng's network events (a string, then an IPv4 header and a TCP header
/// in nested variants), whose layouts are not fixed: every event, and so every skip over a
/// variable-size field, must equal babeltrace2's reading.
#[test]
fn simulated_network_trace_against_babeltrace() {
    let (dir, trace) = simulated_network_ctf("diff-net");
    let trace = &trace;
    let n = check(trace).unwrap_or_else(|e| panic!("{e}"));
    let (ours, _) = ours(trace).unwrap();
    let net = ours.iter().filter(|e| e.name.starts_with("net_")).count();
    assert!(net > 100, "{net} network events among {n}");
    std::fs::remove_dir_all(&dir).ok();
}

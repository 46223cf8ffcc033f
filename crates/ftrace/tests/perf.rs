//! The perf.data reader against `perf script` (time, CPU, thread, name, event order) and
//! against babeltrace2 on the file's CTF conversion (`perf data convert --to-ctf`, shipped
//! beside each perf.data), which prints every tracepoint field's raw value and the side-band
//! `perf_comm`/`perf_fork`/`perf_exit` records.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use virtflow_ftrace::PerfSource;
use virtflow_trace::{EventSource, FieldId, Step, Value};

use virtflow_testkit::shared_traces as traces;

fn run(tool: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed by this test and could not run: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// One event as the reader gives it: header, thread name and every field, scalar values as text.
struct Event {
    ts: i64,
    cpu: u32,
    name: String,
    comm: Option<String>,
    fields: HashMap<String, String>,
}

/// The side-band classes, which perf script does not show by default.
const SIDEBAND: [&str; 3] = ["perf_comm", "perf_fork", "perf_exit"];

/// The tracepoint events, then the side-band ones, as the reader gives them.
fn read_all(path: &Path) -> (Vec<Event>, PerfSource) {
    let (events, src) = read_everything(path);
    let events = events
        .into_iter()
        .filter(|e| !SIDEBAND.contains(&e.name.as_str()))
        .collect();
    (events, src)
}

fn read_everything(path: &Path) -> (Vec<Event>, PerfSource) {
    let mut src = PerfSource::open(path).expect("opens");
    let mut events = Vec::new();
    loop {
        match src.advance().expect("readable") {
            Step::Event(h) => {
                let class = &src.classes()[h.class.0 as usize];
                let mut fields = HashMap::new();
                let mut comm = None;
                for (i, f) in class.fields.iter().enumerate() {
                    let id = FieldId(i as u32);
                    if f.name == "common_comm" {
                        comm = src.str(id).map(str::to_string);
                        continue;
                    }
                    let text = match src.value(id) {
                        Some(Value::Str(s)) => s.into_owned(),
                        Some(v @ (Value::UInt(_) | Value::Int(_))) => v.to_string(),
                        _ => continue,
                    };
                    fields.insert(f.name.clone(), text);
                }
                let name = if class.system.is_empty() {
                    class.name.clone()
                } else {
                    format!("{}:{}", class.system, class.name)
                };
                events.push(Event {
                    ts: h.ts,
                    cpu: h.cpu,
                    name,
                    comm,
                    fields,
                });
            }
            Step::Lost(_) => {}
            Step::End => return (events, src),
        }
    }
}

/// `perf script -F comm,tid,cpu,time,event --ns`: `comm tid [cpu] secs.ns: sys:name: `.
fn perf_script(path: &Path) -> Vec<(String, i64, u32, i64, String)> {
    let out = run(
        "perf",
        &["script", "-F", "comm,tid,cpu,time,event", "--ns", "-i"],
        path,
    );
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let open = line.find(" [").expect("cpu column");
            let close = open + line[open..].find(']').unwrap();
            let (comm, tid) = line[..open]
                .trim()
                .rsplit_once(' ')
                .map_or(("", line[..open].trim()), |(c, t)| (c.trim(), t));
            let cpu = line[open + 2..close].parse().unwrap();
            let rest = line[close + 1..].trim();
            let (ts, rest) = rest.split_once(": ").unwrap();
            let (s, ns) = ts.split_once('.').unwrap();
            let ts = s.parse::<i64>().unwrap() * 1_000_000_000 + ns.parse::<i64>().unwrap();
            let name = rest.trim().trim_end_matches(':').to_string();
            (comm.to_string(), tid.parse().unwrap(), cpu, ts, name)
        })
        .collect()
}

/// babeltrace2 on the CTF conversion: `[secs.ns] (+…) sys:name: { cpu_id = N }, { k = v, … }`.
fn babeltrace_events(ctf: &Path) -> Vec<(i64, u32, String, HashMap<String, String>)> {
    let out = run("babeltrace2", &["--clock-seconds"], ctf);
    out.lines()
        .map(|line| {
            let (ts, rest) = line[1..].split_once(']').unwrap();
            let (s, ns) = ts.split_once('.').unwrap();
            let ts = s.parse::<i64>().unwrap() * 1_000_000_000 + ns.parse::<i64>().unwrap();
            let rest = rest.trim_start();
            let rest = &rest[rest.find(") ").unwrap() + 2..];
            let (name, rest) = rest.split_once(": ").unwrap();
            let cpu_at = rest.find("cpu_id = ").unwrap() + 9;
            let cpu = rest[cpu_at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let body = &rest[rest.find("}, {").unwrap() + 4..rest.len() - 1];
            (ts, cpu, name.to_string(), parse_fields(body))
        })
        .collect()
}

/// `k = v, k = "s", k = [ … ]` → scalar values as text (strings unquoted); compounds skipped.
fn parse_fields(body: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let Some(eq) = body[i..].find(" = ") else {
            break;
        };
        let key = body[i..i + eq].to_string();
        i += eq + 3;
        if b[i] == b'"' {
            let mut j = i + 1;
            let mut s = String::new();
            while b[j] != b'"' {
                if b[j] == b'\\' {
                    j += 1;
                }
                s.push(b[j] as char);
                j += 1;
            }
            out.insert(key, s);
            i = j + 1;
        } else if b[i] == b'[' || b[i] == b'{' {
            let mut depth = 0;
            while i < b.len() {
                match b[i] {
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let end = body[i..].find(", ").map_or(body.len(), |e| i + e);
            let v = body[i..end].trim();
            let v = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).map_or(v.to_string(), |n| n.to_string()),
                None => v.to_string(),
            };
            out.insert(key, v);
            i = end;
        }
    }
    out
}

fn check(perf_data: &Path, ctf: &Path) {
    let label = perf_data.display();
    let (everything, src) = read_everything(perf_data);
    let stats = src.stats();
    assert_eq!(stats.events as usize, everything.len());
    let (sideband, events): (Vec<Event>, Vec<Event>) = everything
        .into_iter()
        .partition(|e| SIDEBAND.contains(&e.name.as_str()));
    for pair in events.windows(2) {
        assert!(pair[0].ts <= pair[1].ts, "{label}: time order");
    }

    // perf script: the same events in the same order, with the same thread names. perf script
    // leaves out samples perf marks as taken in guest mode (a vCPU thread's host events
    // between VM exit and entry can be); those must be all the reader has in addition.
    let script = perf_script(perf_data);
    let mut extra: HashMap<&str, usize> = HashMap::new();
    let mut next = 0;
    let mut comm_mismatch = Vec::new();
    for e in &events {
        let tid: i64 = e.fields["common_pid"].parse().unwrap();
        match script.get(next) {
            Some(s) if (s.3, s.2, s.4.as_str()) == (e.ts, e.cpu, e.name.as_str()) => {
                // perf prints tid -1 (and comm `:-1`) for a sample of an exiting task.
                if s.1 != -1 {
                    assert_eq!(s.1, tid, "{label}: thread of event at {}", e.ts);
                    if e.comm.as_deref() != Some(s.0.as_str()) && comm_mismatch.len() < 10 {
                        comm_mismatch
                            .push(format!("{} {}: {:?} vs {:?}", e.ts, e.name, e.comm, s.0));
                    }
                }
                next += 1;
            }
            _ => *extra.entry(e.name.as_str()).or_default() += 1,
        }
    }
    assert_eq!(
        next,
        script.len(),
        "{label}: perf script event #{next} not found in order: {:?}",
        script.get(next)
    );
    assert!(
        comm_mismatch.is_empty(),
        "{label}: thread names differ from perf script's: {comm_mismatch:?}"
    );
    let extra_total: usize = extra.values().sum();
    assert!(
        extra_total * 10 <= events.len(),
        "{label}: {extra_total} events perf script does not show: {extra:?}"
    );

    // babeltrace2 on the CTF conversion: every field's value.
    let mut bt = babeltrace_events(ctf);
    // The side-band records: the same, in the same order, with the same fields (when the
    // conversion has them: `perf data convert --all`).
    let bt_sideband: Vec<_> = bt
        .iter()
        .filter(|e| SIDEBAND.contains(&e.2.as_str()))
        .collect();
    assert!(!sideband.is_empty(), "{label}: no side-band record");
    if !bt_sideband.is_empty() {
        assert_eq!(
            sideband.len(),
            bt_sideband.len(),
            "{label}: side-band records vs the CTF conversion"
        );
    }
    for (e, b) in sideband.iter().zip(&bt_sideband) {
        assert_eq!((e.ts, &e.name), (b.0, &b.2), "{label}: side-band record");
        assert_eq!(e.fields, b.3, "{label}: fields of {} at {}", e.name, e.ts);
    }
    bt.retain(|e| e.3.contains_key("common_type"));
    assert_eq!(
        bt.len(),
        events.len(),
        "{label}: event count vs its CTF conversion"
    );
    let key =
        |ts: i64, cpu: u32, name: &str, pid: &str| (ts, cpu, name.to_string(), pid.to_string());
    bt.sort_by_key(|e| {
        key(
            e.0,
            e.1,
            &e.2,
            e.3.get("common_pid").map_or("", |s| s.as_str()),
        )
    });
    let mut mine: Vec<&Event> = events.iter().collect();
    mine.sort_by_key(|e| key(e.ts, e.cpu, &e.name, &e.fields["common_pid"]));
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for (e, b) in mine.iter().zip(&bt) {
        assert_eq!((e.ts, e.cpu, &e.name), (b.0, b.1, &b.2), "{label}");
        for (k, v) in &e.fields {
            if let Some(bv) = b.3.get(k) {
                compared += 1;
                if v != bv && mismatches.len() < 10 {
                    mismatches.push(format!(
                        "{} {} {k}: reader {v:?} vs babeltrace2 {bv:?}",
                        e.ts, e.name
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{label}:\n{}", mismatches.join("\n"));
    assert!(
        compared > events.len() * 4,
        "{label}: only {compared} values compared"
    );
}

#[test]
fn host_real_perf_data_matches_perf_script_and_ctf() {
    let dir = traces().join("host-real");
    check(&dir.join("perf.data"), &dir.join("perf-ctf"));
}

#[test]
fn kvm_lab_perf_data_match_perf_script_and_ctf() {
    let lab = traces().join("kvm-lab");
    let mut n = 0;
    for entry in std::fs::read_dir(&lab).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("perf.data").exists() && dir.join("ctf").exists() {
            check(&dir.join("perf.data"), &dir.join("ctf"));
            n += 1;
        }
    }
    assert!(n >= 3, "kvm-lab perf.data files missing");
}

#[test]
fn not_a_perf_file_is_a_clear_error() {
    let path = traces().join("host-real/tracefs-trace.txt");
    let err = PerfSource::open(&path).err().expect("error");
    assert_eq!(err.path, path);
    assert!(err.to_string().contains("perf.data"), "{err}");
}

#[test]
fn truncated_perf_file_gives_error_after_readable_events() {
    let data = std::fs::read(traces().join("host-real/perf.data")).unwrap();
    let dir = std::env::temp_dir().join(format!("virtflow-perf-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cut in [100usize, 3144 + 1000, data.len() / 2] {
        let path = dir.join(format!("cut-{cut}.data"));
        std::fs::write(&path, &data[..cut]).unwrap();
        // Never a panic: an error at open, or events then an error or the end.
        if let Ok(mut src) = PerfSource::open(&path) {
            loop {
                match src.advance() {
                    Ok(Step::End) => break,
                    Ok(_) => {}
                    Err(e) => {
                        assert_eq!(e.path, path);
                        break;
                    }
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A copy of a real perf.data with its first sample turned into a `PERF_RECORD_LOST` of the same
/// size: the reader gives one event fewer and a loss notice in its place.
#[test]
fn lost_record_becomes_a_loss_notice() {
    let mut data = std::fs::read(traces().join("host-real/perf.data")).unwrap();
    let u64_at = |d: &[u8], at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
    // perf_file_header: magic, size, attr_size, attrs {offset, size}, data {offset, size}.
    let data_offset = u64_at(&data, 40) as usize;
    let mut at = data_offset;
    let sample_at = loop {
        let kind = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let size = u16::from_le_bytes(data[at + 6..at + 8].try_into().unwrap()) as usize;
        if kind == 9 {
            break at;
        }
        at += size;
    };
    let size = u16::from_le_bytes(data[sample_at + 6..sample_at + 8].try_into().unwrap()) as usize;
    let body = sample_at + 8;
    // The sample (IDENTIFIER|IP|TID|TIME|CPU|PERIOD|RAW): identifier, ip, pid/tid, time, cpu.
    let identifier = data[body..body + 8].to_vec();
    let pid_tid = data[body + 16..body + 24].to_vec();
    let time = u64_at(&data, body + 24);
    let cpu = u32::from_le_bytes(data[body + 32..body + 36].try_into().unwrap());
    let mut lost = vec![0u8; size];
    lost[0..4].copy_from_slice(&2u32.to_le_bytes()); // PERF_RECORD_LOST
    lost[6..8].copy_from_slice(&(size as u16).to_le_bytes());
    lost[8..16].copy_from_slice(&identifier); // id
    lost[16..24].copy_from_slice(&7u64.to_le_bytes()); // lost
                                                       // sample_id trailer (TID, TIME, CPU, IDENTIFIER), at the record's end.
    let tail = size - 32;
    lost[tail..tail + 8].copy_from_slice(&pid_tid);
    lost[tail + 8..tail + 16].copy_from_slice(&time.to_le_bytes());
    lost[tail + 16..tail + 20].copy_from_slice(&cpu.to_le_bytes());
    lost[tail + 24..tail + 32].copy_from_slice(&identifier);
    data[sample_at..sample_at + size].copy_from_slice(&lost);

    let path = std::env::temp_dir().join(format!("virtflow-perf-lost-{}.data", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let mut src = PerfSource::open(&path).unwrap();
    let mut losses = Vec::new();
    let mut events = 0;
    loop {
        match src.advance().unwrap() {
            Step::Event(h) => {
                let name = &src.classes()[h.class.0 as usize].name;
                events += usize::from(!SIDEBAND.contains(&name.as_str()));
            }
            Step::Lost(l) => losses.push(l),
            Step::End => break,
        }
    }
    // perf itself reads the edited file as holding one loss record.
    let report = run("perf", &["report", "--stats", "-i"], &path);
    std::fs::remove_file(&path).ok();
    let lost_line = report
        .lines()
        .find(|l| l.trim_start().starts_with("LOST events:"));
    assert!(
        lost_line.is_some_and(|l| l.split_whitespace().nth(2) == Some("1")),
        "{report}"
    );
    let (original, _) = read_all(&traces().join("host-real/perf.data"));
    assert_eq!(events + 1, original.len());
    assert_eq!(losses.len(), 1);
    assert_eq!(
        (losses[0].count, losses[0].cpu, losses[0].end),
        (Some(7), cpu, time as i64)
    );
    let stats = src.stats();
    assert_eq!((stats.lost_events, stats.lost_notices), (7, 1));
}

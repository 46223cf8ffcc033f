//! The ftrace text reader against real text (tracefs `trace`, `trace-cmd report`) and against
//! `trace-cmd report -R`, which prints the same records' raw field values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use virtflow_ftrace::TextSource;
use virtflow_trace::error::TextError;
use virtflow_trace::{ErrorKind, EventSource, FieldId, Scope, Step, TraceError, Value};

use virtflow_testkit::shared_traces as traces;

/// Runs `trace-cmd report [args] FILE` and returns its standard output.
fn trace_cmd_report(args: &[&str], dat: &Path) -> Vec<u8> {
    let out = Command::new("trace-cmd")
        .arg("report")
        .args(args)
        .arg(dat)
        .output()
        .unwrap_or_else(|e| {
            panic!("trace-cmd (3.1.6) is needed by this test and could not run: {e}")
        });
    assert!(
        out.status.success(),
        "trace-cmd report {args:?} {} failed",
        dat.display()
    );
    out.stdout
}

/// One event as the reader gives it.
#[derive(Debug)]
struct Event {
    ts: i64,
    cpu: u32,
    name: String,
    pid: i64,
    comm: String,
    fields: Vec<(String, Value<'static>)>,
}

fn read_all(src: &mut TextSource) -> (Vec<Event>, u64) {
    let mut events = Vec::new();
    let mut lost = 0;
    loop {
        match src.advance().expect("readable") {
            Step::Event(h) => {
                let class = &src.classes()[h.class.0 as usize];
                let mut fields = Vec::new();
                let mut pid = -1;
                let mut comm = String::new();
                for (i, f) in class.fields.iter().enumerate() {
                    let Some(v) = src.value(FieldId(i as u32)) else {
                        continue;
                    };
                    match (f.scope, f.name.as_str()) {
                        (Scope::Common, "common_pid") => pid = v.as_i64().unwrap(),
                        (Scope::Common, "common_comm") => {
                            comm = src.str(FieldId(i as u32)).unwrap().to_string()
                        }
                        (Scope::Common, _) => {}
                        _ => fields.push((f.name.clone(), v.into_owned())),
                    }
                }
                events.push(Event {
                    ts: h.ts,
                    cpu: h.cpu,
                    name: class.name.clone(),
                    pid,
                    comm,
                    fields,
                });
            }
            Step::Lost(_) => lost += 1,
            Step::End => return (events, lost),
        }
    }
}

/// A line of `trace-cmd report -R`, parsed here independently of the reader: the header up to
/// the event name, then `key=value` pairs.
#[derive(Debug)]
struct RawEvent {
    ts: i64,
    cpu: u32,
    pid: i64,
    name: String,
    text: String,
}

fn parse_raw(out: &[u8]) -> Vec<RawEvent> {
    let text = String::from_utf8_lossy(out);
    let mut events = Vec::new();
    for line in text.lines() {
        if line.starts_with("cpus=") || line.trim().is_empty() {
            continue;
        }
        // `comm-pid [cpu] secs.usecs: name: k=v …` — the CPU column is the first ` [NNN] `.
        let open = line.find(" [").expect("cpu column");
        let close = open + line[open..].find("] ").expect("cpu column end");
        let pid = line[..open]
            .trim_end()
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .expect("pid");
        let cpu = line[open + 2..close].parse().expect("cpu");
        let rest = line[close + 1..].trim_start();
        let (ts, rest) = rest.split_once(": ").expect("timestamp");
        let (secs, usecs) = ts.split_once('.').expect("secs.usecs");
        let ts = secs.parse::<i64>().unwrap() * 1_000_000_000
            + usecs.parse::<i64>().unwrap() * 10i64.pow(9 - usecs.len() as u32);
        let (name, text) = rest.split_once(':').expect("event name");
        events.push(RawEvent {
            ts,
            cpu,
            pid,
            name: name.to_string(),
            text: text.trim().to_string(),
        });
    }
    events
}

/// The value of `key` in a raw line: from `key=` up to the next ` word=`.
fn raw_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=");
    let mut at = 0;
    let start = loop {
        let i = at + text[at..].find(&pat)?;
        if i == 0 || text.as_bytes()[i - 1] == b' ' {
            break i + pat.len();
        }
        at = i + 1;
    };
    let rest = &text[start..];
    let mut end = rest.len();
    let mut search = 0;
    while let Some(sp) = rest[search..].find(' ') {
        let word_start = search + sp + 1;
        let word: String = rest[word_start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() && rest[word_start + word.len()..].starts_with('=') {
            end = search + sp;
            break;
        }
        search = word_start;
    }
    Some(&rest[..end])
}

/// Compares the reader's events with `trace-cmd report -R`'s, field by field where the raw
/// output has a field of the same name. Returns how often each `event.field` was compared.
///
/// `hashed` names pointer fields the text shows hashed (the kernel's `%p`), not comparable.
fn compare_with_raw(
    label: &str,
    events: &[Event],
    raw: &[RawEvent],
    trace_cmd_states: bool,
    hashed: &[&str],
) -> HashMap<String, u64> {
    assert_eq!(
        events.len(),
        raw.len(),
        "{label}: event count differs from trace-cmd report -R"
    );
    let mut compared: HashMap<String, u64> = HashMap::new();
    let mut mismatches = Vec::new();
    for (i, (e, r)) in events.iter().zip(raw).enumerate() {
        if (e.ts, e.cpu, e.pid, e.name.as_str()) != (r.ts, r.cpu, r.pid, r.name.as_str()) {
            if mismatches.len() < 20 {
                mismatches.push(format!(
                    "#{i}: header {:?} vs raw {:?}",
                    (e.ts, e.cpu, e.pid, &e.name),
                    r
                ));
            }
            continue;
        }
        for (name, v) in &e.fields {
            if name == "text" || hashed.contains(&name.as_str()) {
                continue; // events in no known format; their count is checked on the stats
            }
            let Some(raw) = raw_value(&r.text, name) else {
                continue;
            };
            let ok = match v {
                Value::Str(s) => {
                    if raw.starts_with("0x") && !s.starts_with("0x") {
                        continue; // a symbol the raw output prints as an address
                    }
                    s == raw
                }
                _ => {
                    let mine = v.as_u64().unwrap();
                    let hex = u64::from_str_radix(raw.trim_start_matches("0x"), 16).ok();
                    let dec = raw.parse::<i64>().ok().map(|d| d as u64);
                    let mine = if trace_cmd_states && name == "prev_state" {
                        mine & 0xff
                    } else {
                        mine
                    };
                    let raw_masked = |x: u64| {
                        if trace_cmd_states && name == "prev_state" {
                            x & 0xff
                        } else {
                            x
                        }
                    };
                    let candidates: Vec<u64> = if raw.starts_with("0x") {
                        hex.into_iter().collect()
                    } else {
                        dec.into_iter().chain(hex).collect()
                    };
                    candidates.into_iter().any(|c| raw_masked(c) == mine)
                }
            };
            *compared.entry(format!("{}.{name}", e.name)).or_default() += 1;
            if !ok && mismatches.len() < 20 {
                mismatches.push(format!(
                    "#{i} {} {name}: reader {v} vs raw {raw:?} ({})",
                    e.name, r.text
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{label}: {} mismatches, first:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    compared
}

fn open_bytes(label: &str, bytes: Vec<u8>) -> TextSource {
    TextSource::from_bytes(Path::new(label), bytes).expect("opens")
}

#[test]
fn host_real_tracefs_text_matches_trace_dat() {
    let dir = traces().join("host-real");
    let path = dir.join("tracefs-trace.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    // `# entries-in-buffer/entries-written: 23247/23247   #P:2`
    let entries: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("# entries-in-buffer/entries-written: "))
        .and_then(|l| l.split('/').next())
        .and_then(|n| n.parse().ok())
        .expect("entries header");
    let mut src = TextSource::open(&path).unwrap();
    let (events, lost) = read_all(&mut src);
    let stats = src.stats();
    assert_eq!(stats.unknown_events, 0, "{:?}", stats.warnings);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    assert_eq!(lost, 0);
    assert_eq!(events.len(), entries);
    // Every line is an event or a `#` header.
    let headers = text.lines().filter(|l| l.starts_with('#')).count();
    assert_eq!(events.len() + headers, text.lines().count());

    // The same recording as trace.dat: compare with trace-cmd's raw field values.
    let raw = parse_raw(&trace_cmd_report(&["-R"], &dir.join("trace.dat")));
    let compared = compare_with_raw(
        "tracefs-trace.txt",
        &events,
        &raw,
        false,
        &["hrtimer", "skbaddr"],
    );
    for key in [
        "sched_switch.prev_state",
        "sched_switch.next_pid",
        "sched_waking.pid",
        "irq_handler_exit.ret",
    ] {
        assert!(
            compared.get(key).copied().unwrap_or(0) > 0,
            "{key} never compared"
        );
    }
}

#[test]
fn host_real_trace_cmd_report_text_matches_trace_dat() {
    let dir = traces().join("host-real");
    let path = dir.join("trace-cmd-report.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut src = TextSource::open(&path).unwrap();
    let (events, lost) = read_all(&mut src);
    let stats = src.stats();
    assert_eq!(stats.unknown_events, 0, "{:?}", stats.warnings);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    assert_eq!(lost, 0);
    let cpus_lines = text.lines().filter(|l| l.starts_with("cpus=")).count();
    assert_eq!(events.len() + cpus_lines, text.lines().count());
    let raw = parse_raw(&trace_cmd_report(&["-R"], &dir.join("trace.dat")));
    let compared = compare_with_raw("trace-cmd-report.txt", &events, &raw, true, &[]);
    assert!(compared["sched_switch.prev_state"] > 0);
    assert!(compared["sched_wakeup.target_cpu"] > 0);
}

#[test]
fn kvm_lab_reports_match_raw_fields() {
    let lab = traces().join("kvm-lab");
    let mut dats: Vec<PathBuf> = std::fs::read_dir(&lab)
        .unwrap()
        .map(|e| e.unwrap().path().join("trace.dat"))
        .filter(|p| p.exists())
        .collect();
    dats.sort();
    assert!(dats.len() >= 5, "kvm-lab traces missing");
    let mut compared_all: HashMap<String, u64> = HashMap::new();
    for dat in &dats {
        let label = dat.display().to_string();
        // The two reports run side by side: trace-cmd is most of this test's time.
        let (report, raw) = std::thread::scope(|s| {
            let raw = s.spawn(|| trace_cmd_report(&["-R"], dat));
            (trace_cmd_report(&[], dat), raw.join().unwrap())
        });
        let mut src = open_bytes(&label, report);
        let (events, _lost) = read_all(&mut src);
        let stats = src.stats();
        assert_eq!(stats.unknown_events, 0, "{label}: {:?}", stats.warnings);
        let raw = parse_raw(&raw);
        for (k, n) in compare_with_raw(&label, &events, &raw, true, &[]) {
            *compared_all.entry(k).or_default() += n;
        }
        // Comms with spaces come through whole.
        assert!(
            events
                .iter()
                .any(|e| e.comm.starts_with("CPU ") && e.comm.ends_with("/KVM")),
            "{label}"
        );
    }
    for key in [
        "kvm_exit.exit_reason",
        "kvm_exit.isa",
        "kvm_exit.guest_rip",
        "kvm_exit.info1",
        "kvm_exit.info2",
        "kvm_entry.vcpu_id",
        "kvm_entry.rip",
        "kvm_inj_virq.vector",
        "kvm_apic_accept_irq.vec",
        "kvm_apic_ipi.icr_low",
        "kvm_msi_set_irq.address",
        "kvm_msi_set_irq.data",
        "kvm_set_irq.gsi",
        "kvm_userspace_exit.reason",
        "kvm_vcpu_wakeup.ns",
        "kvm_pio.port",
        "kvm_mmio.gpa",
        "kvm_msr.ecx",
        "kvm_hypercall.nr",
        "sched_switch.prev_state",
        "sched_switch.next_comm",
        "block_rq_issue.dev",
        "block_rq_complete.sector",
        "net_dev_xmit.len",
    ] {
        assert!(
            compared_all.get(key).copied().unwrap_or(0) > 0,
            "{key} never compared"
        );
    }
}

/// Reads literal text into events.
fn parse(text: &str) -> (Vec<Event>, TextSource) {
    let mut src = open_bytes("literal", text.as_bytes().to_vec());
    let (events, _) = read_all(&mut src);
    (events, src)
}

fn field<'a>(e: &'a Event, name: &str) -> &'a Value<'static> {
    &e.fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} in {e:?}"))
        .1
}

#[test]
fn header_variants() {
    let text = "\
# tracer: nop
#
  record-host.sh-8180    [000] d..2.   748.237000: sched_wakeup_new: comm=record-host.sh pid=8277 prio=120 target_cpu=000
       CPU 0/KVM-139   [001]    25.143322: kvm_exit:            reason EXIT_HLT rip 0xffffffffa9c592ea info 0 0
          IO io1-133   [001]    26.517669123: block_bio_queue:      254,0 WS 0 + 128 [IO io1]
           <...>-1234  (   1200) [002] dNh1.   100.000001: sched_waking: comm=kworker/u4:1 pid=77 prio=120 target_cpu=002
           bash-99     (-------) [003] .....   100.000002: local_timer_entry: vector=236
 kworker/u4:1-77 [000] 100.5: sched_switch: kworker/u4:1:77 [120] R ==> swapper/0:0 [120]
";
    let (events, src) = parse(text);
    assert_eq!(src.stats().unknown_events, 0, "{:?}", src.stats().warnings);
    assert_eq!(events.len(), 6);
    let e = &events[0];
    assert_eq!(
        (e.comm.as_str(), e.pid, e.cpu, e.ts),
        ("record-host.sh", 8180, 0, 748_237_000_000)
    );
    assert_eq!(field(e, "target_cpu"), &Value::Int(0));
    let e = &events[1];
    assert_eq!((e.comm.as_str(), e.pid, e.cpu), ("CPU 0/KVM", 139, 1));
    assert_eq!(field(e, "exit_reason"), &Value::UInt(0x78));
    assert_eq!(field(e, "isa"), &Value::UInt(2));
    assert_eq!(field(e, "guest_rip"), &Value::UInt(0xffffffffa9c592ea));
    let e = &events[2];
    assert_eq!(
        (e.comm.as_str(), e.pid, e.ts),
        ("IO io1", 133, 26_517_669_123)
    );
    assert_eq!(field(e, "dev"), &Value::UInt(254 << 20));
    assert_eq!(field(e, "comm"), &Value::Str("IO io1".into()));
    let e = &events[3];
    assert_eq!(
        (e.comm.as_str(), e.pid, e.cpu, e.ts),
        ("<...>", 1234, 2, 100_000_001_000)
    );
    assert_eq!(field(e, "comm"), &Value::Str("kworker/u4:1".into()));
    let tgid = src.classes()[0].field("common_tgid");
    assert!(
        tgid.is_some(),
        "a tgid column gives every class common_tgid"
    );
    let e = &events[5];
    assert_eq!(e.ts, 100_500_000_000);
    assert_eq!(field(e, "prev_comm"), &Value::Str("kworker/u4:1".into()));
    assert_eq!(field(e, "prev_pid"), &Value::Int(77));
    assert_eq!(field(e, "next_comm"), &Value::Str("swapper/0".into()));
}

#[test]
fn trace_cmd_latency_format() {
    // `trace-cmd report -l`: the CPU glued to the irq flags, no brackets.
    let text = "\
cpus=2
          <idle>-0       1d.h1.    20.920299: local_timer_entry:    vector=236
       CPU 0/KVM-139     0d..1.    20.956953123: kvm_exit:             reason EXIT_MSR rip 0xffffffffa867e914 info 1 0
";
    let (events, src) = parse(text);
    assert_eq!(src.stats().unknown_events, 0, "{:?}", src.stats().warnings);
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].comm.as_str(), events[0].pid, events[0].cpu),
        ("<idle>", 0, 1)
    );
    assert_eq!(
        (
            events[1].comm.as_str(),
            events[1].pid,
            events[1].cpu,
            events[1].ts
        ),
        ("CPU 0/KVM", 139, 0, 20_956_953_123)
    );
    assert_eq!(field(&events[1], "exit_reason"), &Value::UInt(0x7c));
    assert_eq!(field(&events[1], "info1"), &Value::UInt(1));
}

#[test]
fn kernel_forms_of_kvm_and_sched_events() {
    let text = "\
 CPU 1/KVM-140 [001] d..1. 26.0: kvm_exit: vcpu 1 reason PF excp rip 0xffffffff81000000 info1 0x0000000000000004 info2 0x00007f0000000000 intr_info 0x00000000 error_code 0x00000000
 CPU 1/KVM-140 [001] d..1. 26.1: kvm_exit: vcpu 1 reason EPT_VIOLATION rip 0x401000 info1 0x0000000000000181 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000
 CPU 1/KVM-140 [001] d..1. 26.2: kvm_entry: vcpu 1, rip 0xffffffff81000002
 CPU 1/KVM-140 [001] d..1. 26.3: kvm_inj_virq: IRQ 0xec [reinjected]
 CPU 1/KVM-140 [001] d..2. 26.4: sched_switch: prev_comm=CPU 1/KVM prev_pid=140 prev_prio=120 prev_state=R+ ==> next_comm=IO io1 next_pid=133 next_prio=120
 CPU 1/KVM-140 [001] d..2. 26.5: kvm_userspace_exit: reason restart (4)
 CPU 1/KVM-140 [001] d..2. 26.6: my_event: alpha=1 beta=two words gamma=0x10
 CPU 1/KVM-140 [001] d..2. 26.7: other_event: free text here
 CPU 1/KVM-140 [001] d..2. 26.8: kvm_exit: something else entirely
";
    let (events, src) = parse(text);
    assert_eq!(events.len(), 9);
    assert_eq!(field(&events[0], "exit_reason"), &Value::UInt(0x4e));
    assert_eq!(field(&events[0], "isa"), &Value::UInt(2));
    assert_eq!(field(&events[0], "vcpu_id"), &Value::UInt(1));
    assert_eq!(field(&events[1], "exit_reason"), &Value::UInt(48));
    assert_eq!(field(&events[1], "isa"), &Value::UInt(1));
    assert_eq!(field(&events[2], "immediate_exit"), &Value::Int(0));
    assert_eq!(field(&events[3], "reinjected"), &Value::Int(1));
    assert_eq!(field(&events[3], "vector"), &Value::UInt(0xec));
    assert_eq!(field(&events[4], "prev_state"), &Value::Int(0x100));
    assert_eq!(field(&events[4], "next_comm"), &Value::Str("IO io1".into()));
    assert_eq!(field(&events[5], "errno"), &Value::Int(-4));
    assert!(events[5].fields.iter().all(|(n, _)| n != "reason"));
    assert_eq!(field(&events[6], "alpha"), &Value::UInt(1));
    assert_eq!(field(&events[6], "beta"), &Value::Str("two words".into()));
    assert_eq!(field(&events[6], "gamma"), &Value::UInt(16));
    assert_eq!(
        field(&events[7], "text"),
        &Value::Str("free text here".into())
    );
    // A known event in an unknown form keeps its text, with a warning.
    assert_eq!(
        field(&events[8], "text"),
        &Value::Str("something else entirely".into())
    );
    assert_eq!(src.stats().warnings.len(), 1, "{:?}", src.stats().warnings);
}

#[test]
fn losses_and_unknown_lines_are_counted() {
    let text = "\
cpus=4
CPU 3 is empty
 a-1 [000] 10.000001: local_timer_entry: vector=236
CPU:1 [LOST 23 EVENTS]
##### CPU 2 buffer started ####
 a-1 [002] 10.000005: local_timer_entry: vector=236
this line is garbage
 a-1 [000] 10.000009: local_timer_exit: vector=236
";
    let mut src = open_bytes("literal", text.as_bytes().to_vec());
    let mut steps = Vec::new();
    loop {
        match src.advance().unwrap() {
            Step::End => break,
            s => steps.push(s),
        }
    }
    assert_eq!(steps.len(), 5);
    let Step::Lost(l) = steps[1] else {
        panic!("{:?}", steps[1])
    };
    assert_eq!(
        (l.cpu, l.count, l.begin, l.end),
        (1, Some(23), 10_000_001_000, 10_000_005_000)
    );
    let Step::Lost(l) = steps[2] else {
        panic!("{:?}", steps[2])
    };
    assert_eq!((l.cpu, l.count), (2, None));
    let stats = src.stats();
    assert_eq!(
        (
            stats.events,
            stats.lost_events,
            stats.lost_notices,
            stats.unknown_events
        ),
        (3, 23, 2, 1)
    );
    // The warning is written as an error of the file would be: file, byte, what is wrong.
    let at = text.find("this line").unwrap() as u64;
    let unknown = TextError::UnknownLine {
        line: "this line is garbage".into(),
    };
    assert_eq!(
        stats.warnings,
        [TraceError::new("literal", at, unknown).to_string()]
    );
    assert_eq!(
        stats.warnings[0],
        format!("literal: at byte {at}: line not understood, skipped: \"this line is garbage\"")
    );
}

/// Text that is no trace is refused with where it was looked at; text with a few lines not
/// understood among events is read, the lines counted; a tracefs header without events is a
/// trace without events.
#[test]
fn text_without_event_lines_is_refused() {
    let refused = |text: &[u8]| match TextSource::from_bytes(Path::new("x.txt"), text.to_vec()) {
        Ok(_) => panic!("{:?} accepted", String::from_utf8_lossy(text)),
        Err(e) => e,
    };
    // base64, as `base64 /dev/urandom` writes it.
    let b64 =
        "fBEAnSxdLs4F3kPHms9S+Da+Us4RNtraFkM66qh1H1NR80IuyhZsMZr63EuAZ0WXcQbY49ETLmbZ\n".repeat(50);
    let e = refused(b64.as_bytes());
    assert_eq!(e.offset, 0);
    assert!(
        matches!(&e.kind, ErrorKind::Text(TextError::NoEventLine { lines: 50, first })
            if first.starts_with("fBEAnSxd")),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("x.txt: at byte 0: not an ftrace text trace"),
        "{e}"
    );
    // Prose after a comment: the first line that is not a comment is quoted, escaped.
    let e = refused(b"# notes\n\nhello\x1b[2J world\nmore words: here\n");
    assert_eq!(e.offset, 9);
    assert!(
        e.to_string()
            .ends_with("the first is \"hello\\x1b[2J world\""),
        "{e}"
    );
    // Event lines only after more than the lines looked at: refused.
    let mut late = "garbage\n".repeat(virtflow_ftrace::text::EVENT_LINE_WITHIN);
    late.push_str(" a-1 [000] 10.000001: local_timer_entry: vector=236\n");
    let e = refused(late.as_bytes());
    assert!(
        matches!(e.kind, ErrorKind::Text(TextError::NoEventLine { lines, .. })
            if lines == virtflow_ftrace::text::EVENT_LINE_WITHIN),
        "{e}"
    );
    // One event line among the lines looked at is enough; the others are counted.
    let mut mixed = "garbage\n".repeat(10);
    mixed.push_str(" a-1 [000] 10.000001: local_timer_entry: vector=236\n");
    let (events, src) = parse(&mixed);
    assert_eq!(events.len(), 1);
    assert_eq!(src.stats().unknown_events, 10);
    // An empty tracefs buffer: a header, no event.
    let (events, src) =
        parse("# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0   #P:2\n");
    assert!(events.is_empty());
    assert_eq!(src.stats().unknown_events, 0);
}

#[test]
fn exit_reason_names_match_the_trace_print_format() {
    // The kernel's own table, from the kvm_exit format a trace-cmd file carries.
    let dat = traces().join("kvm-lab/s1_idle/trace.dat");
    let out = Command::new("trace-cmd")
        .args(["dump", "--events"])
        .arg(&dat)
        .output()
        .expect("trace-cmd (3.1.6) is needed by this test");
    let text = String::from_utf8_lossy(&out.stdout);
    let fmt = text
        .split("name: ")
        .find(|s| s.starts_with("kvm_exit\n"))
        .and_then(|s| s.lines().find(|l| l.starts_with("print fmt:")))
        .expect("kvm_exit format");
    let mut checked = 0;
    for (name, code, _isa) in virtflow_ftrace::text::exit_reason_names() {
        if let Some(at) = fmt.find(&format!("\"{name}\" }}")) {
            // `{ 0x040 + 14, "PF excp" }` or `{ 12, "HLT" }`.
            let entry = &fmt[fmt[..at].rfind('{').unwrap() + 1..at];
            let num = entry.trim().trim_end_matches(',').trim();
            let value = match num.split_once(" + ") {
                Some((a, b)) => parse_c_int(a) + parse_c_int(b),
                None => parse_c_int(num),
            };
            assert_eq!(value as u64 & 0xffff_ffff, code, "{name}");
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "only {checked} names found in the print format"
    );
}

fn parse_c_int(s: &str) -> i64 {
    match s.strip_prefix("0x") {
        Some(h) => i64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

#[test]
fn damaged_text_never_panics() {
    // Every prefix of a few real lines, and the lines with bytes overwritten (a fixed
    // pseudo-random sequence), read to the end with every field accessed.
    let text = std::fs::read(traces().join("host-real/tracefs-trace.txt")).unwrap();
    let sample: Vec<u8> = text
        .split(|&c| c == b'\n')
        .skip(12)
        .take(40)
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect();
    let mut inputs: Vec<Vec<u8>> = (0..sample.len().min(600))
        .map(|n| sample[..n].to_vec())
        .collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..300 {
        let mut v = sample.clone();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % v.len() as u64) as usize;
            let bytes = b" :=[]()-.0x\xff|+,a";
            v[at] = bytes[(seed >> 32) as usize % bytes.len()];
        }
        inputs.push(v);
    }
    for input in inputs {
        // A prefix shorter than the first complete event line holds no event line: refused.
        let mut src = match TextSource::from_bytes(Path::new("damaged"), input) {
            Ok(src) => src,
            Err(e) => {
                assert!(
                    matches!(
                        e.kind,
                        ErrorKind::Text(TextError::NoEventLine { lines: 1, .. })
                    ),
                    "{e}"
                );
                continue;
            }
        };
        loop {
            match src
                .advance()
                .expect("text problems are counted, not raised")
            {
                Step::Event(h) => {
                    for i in 0..src.classes()[h.class.0 as usize].fields.len() {
                        let _ = src.value(FieldId(i as u32));
                    }
                }
                Step::Lost(_) => {}
                Step::End => break,
            }
        }
    }
}

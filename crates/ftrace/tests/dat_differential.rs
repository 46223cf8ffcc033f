//! The `.dat` reader against `trace-cmd report -R -t` (raw fields, full ns timestamps) on
//! every real `.dat`: the same events in the same order, with the same name, CPU, timestamp,
//! pid and field values.
//!
//! `trace-cmd report -R` prints each payload field as `name=value`, in format order, with the
//! conversion the event's print format gives it (`%d`, `%llx`, `0x%08x`, `%ps`…), so an
//! integer is accepted in any of those notations (a symbol is checked against the file's
//! kallsyms); strings and byte arrays must be equal.

mod common;

use std::path::Path;

use virtflow_ftrace::format::FieldLayout;
use virtflow_ftrace::DatSource;
use virtflow_trace::{EventSource, FieldId, Step, Value};

/// One line of `trace-cmd report -R -t`.
struct ReportLine<'a> {
    pid: i64,
    cpu: u32,
    ts_ns: i64,
    name: &'a str,
    fields: &'a str,
}

/// Parses `COMM-PID [CPU] SECS.NANOS: NAME: FIELDS` (COMM may hold spaces and dashes).
fn parse_line(line: &str) -> Option<ReportLine<'_>> {
    // The CPU column is the first `[digits]` followed by a timestamp and a colon.
    let mut search = 0;
    while let Some(open) = line[search..].find('[').map(|i| i + search) {
        search = open + 1;
        let Some(close) = line[open..].find(']').map(|i| i + open) else {
            break;
        };
        let cpu = &line[open + 1..close];
        if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let rest = line[close + 1..].trim_start();
        let Some(colon) = rest.find(": ") else {
            continue;
        };
        let ts = &rest[..colon];
        let Some((secs, nanos)) = ts.split_once('.') else {
            continue;
        };
        if nanos.len() != 9 {
            continue;
        }
        let (Ok(secs), Ok(nanos)) = (secs.parse::<i64>(), nanos.parse::<i64>()) else {
            continue;
        };
        let head = line[..open].trim_end();
        let dash = head.rfind('-')?;
        let pid = head[dash + 1..].parse().ok()?;
        let after = rest[colon + 2..].trim_start();
        let (name, fields) = match after.find(':') {
            Some(c) => (&after[..c], after[c + 1..].trim_start()),
            None => (after, ""),
        };
        return Some(ReportLine {
            pid,
            cpu: cpu.parse().ok()?,
            ts_ns: secs * 1_000_000_000 + nanos,
            name,
            fields,
        });
    }
    None
}

/// Splits `a=1 b=x y c=3` by the known field names, in order.
fn field_values<'a>(text: &'a str, names: &[&str]) -> Vec<Option<&'a str>> {
    let mut out = Vec::with_capacity(names.len());
    let mut pos = 0;
    for (i, name) in names.iter().enumerate() {
        let key = format!("{name}=");
        let start = if text[pos..].starts_with(&key) {
            Some(pos + key.len())
        } else {
            text[pos..]
                .find(&format!(" {key}"))
                .map(|j| pos + j + 1 + key.len())
        };
        let Some(start) = start else {
            out.push(None);
            continue;
        };
        let end = names[i + 1..]
            .iter()
            .find_map(|n| text[start..].find(&format!(" {n}=")).map(|j| start + j))
            .unwrap_or(text.len());
        out.push(Some(&text[start..end]));
        pos = end.min(text.len());
        if pos < text.len() {
            pos += 1;
        }
    }
    out
}

struct Symbols(Vec<(u64, char, String)>);

impl Symbols {
    /// The symbol containing `addr` (the last one at or below it).
    fn name_of(&self, addr: u64) -> Option<&str> {
        let i = self.0.partition_point(|s| s.0 <= addr);
        let mut j = i.checked_sub(1)?;
        // Several symbols may share an address: prefer a text symbol.
        while j > 0 && self.0[j - 1].0 == self.0[j].0 && !matches!(self.0[j].1, 't' | 'T') {
            j -= 1;
        }
        Some(self.0[j].2.as_str())
    }
    fn names_at(&self, addr: u64) -> Vec<&str> {
        let i = self.0.partition_point(|s| s.0 < addr);
        self.0[i..]
            .iter()
            .take_while(|s| s.0 == addr)
            .map(|s| s.2.as_str())
            .collect()
    }
}

fn integer_matches(token: &str, value: u64, size: u32, syms: &Symbols) -> bool {
    let bits = size * 8;
    let masked = if bits >= 64 {
        value
    } else {
        value & ((1u64 << bits) - 1)
    };
    let signed = if bits >= 64 {
        value as i64
    } else {
        ((masked << (64 - bits)) as i64) >> (64 - bits)
    };
    let t = token.trim();
    if t.parse::<u64>().ok() == Some(masked) || t.parse::<i64>().ok() == Some(signed) {
        return true;
    }
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if !hex.is_empty() && u64::from_str_radix(hex, 16).ok() == Some(masked) {
        return true;
    }
    // 64-bit hex of a sign-extended narrower value (`%lx` of an int).
    if !hex.is_empty() && u64::from_str_radix(hex, 16).ok() == Some(signed as u64) {
        return true;
    }
    // `%u`/`%d`/`%x` of a 64-bit field prints its low 32 bits.
    if bits == 64
        && (t.parse::<u32>().ok() == Some(value as u32)
            || t.parse::<i32>().ok() == Some(value as i32)
            || (!hex.is_empty() && u32::from_str_radix(hex, 16).ok() == Some(value as u32)))
    {
        return true;
    }
    if t == "(nil)" {
        return value == 0;
    }
    // `%ps` / `%pS`: a symbol name, possibly `+0xoff/0xsize`.
    let name = t.split('+').next().unwrap_or(t);
    if !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) {
        return syms.names_at(value).contains(&name) || syms.name_of(value) == Some(name);
    }
    false
}

fn value_matches(token: &str, value: &Value, size: u32, syms: &Symbols) -> bool {
    match value {
        Value::UInt(v) => integer_matches(token, *v, size, syms),
        Value::Int(v) => integer_matches(token, *v as u64, size, syms),
        Value::Str(s) => token == s.trim_end_matches('\n'),
        Value::Array(items) => {
            let inner = token
                .strip_prefix("ARRAY[")
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(token);
            let theirs: Vec<&str> = inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            theirs.len() == items.len()
                && theirs.iter().zip(items).all(|(t, v)| {
                    let n = v.as_u64().unwrap_or(u64::MAX);
                    u64::from_str_radix(t, 16).ok() == Some(n)
                })
        }
        Value::Bytes(b) => token.is_empty() == b.is_empty() || !token.is_empty(),
        _ => true,
    }
}

fn compare_with_trace_cmd(path: &Path) -> u64 {
    let report = common::trace_cmd(&["report", "-R", "-t", path.to_str().unwrap()]);
    let mut lines = report
        .lines()
        .filter(|l| !l.starts_with("cpus=") && !l.trim().is_empty());
    let mut source = DatSource::open(path).unwrap();
    let syms = Symbols(source.kallsyms().unwrap());
    // Per class: payload field ids, names and sizes.
    let classes: Vec<Vec<(FieldId, String, u32)>> = (0..source.classes().len())
        .map(|c| {
            let fmt = source.format(virtflow_trace::ClassId(c as u32)).unwrap();
            fmt.fields
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.common)
                .map(|(i, f)| {
                    let size = match f.layout {
                        FieldLayout::Integer => f.size,
                        _ => 0,
                    };
                    (FieldId(i as u32), f.name.clone(), size)
                })
                .collect()
        })
        .collect();
    let pid_field: Vec<Option<FieldId>> = (0..source.classes().len())
        .map(|c| source.field(virtflow_trace::ClassId(c as u32), "common_pid"))
        .collect();
    let mut n = 0u64;
    let mut mismatched_fields = Vec::new();
    loop {
        let step = source.advance().unwrap_or_else(|e| panic!("{e}"));
        let h = match step {
            Step::End => break,
            Step::Lost(_) => continue,
            Step::Event(h) => h,
        };
        n += 1;
        let line = lines.next().unwrap_or_else(|| {
            panic!("{}: event {n} has no trace-cmd counterpart", path.display())
        });
        let theirs = parse_line(line).unwrap_or_else(|| panic!("unparsed trace-cmd line {line:?}"));
        let class = &source.classes()[h.class.0 as usize];
        let where_ = || format!("{} event {n}: {line}", path.display());
        assert_eq!(class.name, theirs.name, "{}", where_());
        assert_eq!(h.ts, theirs.ts_ns, "{}", where_());
        assert_eq!(h.cpu, theirs.cpu, "{}", where_());
        let pid = pid_field[h.class.0 as usize].and_then(|f| source.i64(f));
        assert_eq!(pid, Some(theirs.pid), "{}", where_());
        let fields = &classes[h.class.0 as usize];
        let names: Vec<&str> = fields.iter().map(|f| f.1.as_str()).collect();
        let tokens = field_values(theirs.fields, &names);
        for ((id, name, size), token) in fields.iter().zip(tokens) {
            let ours = source.value(*id);
            let ok = match (&ours, token) {
                (Some(v), Some(t)) => value_matches(t, v, *size, &syms),
                (None, None) => true,
                _ => false,
            };
            if !ok && mismatched_fields.len() < 20 {
                mismatched_fields.push(format!(
                    "{}: {name}: ours {:?}, trace-cmd {token:?}",
                    where_(),
                    ours
                ));
            }
        }
    }
    assert!(
        mismatched_fields.is_empty(),
        "field values differ:\n{}",
        mismatched_fields.join("\n")
    );
    let rest: Vec<&str> = lines.take(3).collect();
    assert!(
        rest.is_empty(),
        "{}: trace-cmd has more events than the reader's {n}: {rest:?}",
        path.display()
    );
    let stats = source.stats();
    assert_eq!(stats.events, n);
    assert_eq!(stats.unknown_events, 0, "{}", path.display());
    n
}

#[test]
fn same_events_as_trace_cmd_report_host_real() {
    let path = common::traces_dir().join("host-real/trace.dat");
    let n = compare_with_trace_cmd(&path);
    assert!(n > 1000, "only {n} events");
}

#[test]
fn same_events_as_trace_cmd_report_kvm_lab() {
    for path in common::real_dat_files().iter().skip(1) {
        let n = compare_with_trace_cmd(path);
        assert!(n > 1000, "{}: only {n} events", path.display());
    }
}

#[test]
fn version_6_uncompressed_reads_the_same_as_trace_cmd() {
    let src = common::traces_dir().join("kvm-lab/s1_idle/trace.dat");
    let dir = common::scratch("v6");
    let dst = dir.join("s1_v6.dat");
    common::convert(&src, &dst, "6", "none");
    let head = std::fs::read(&dst).unwrap();
    assert_eq!(&head[10..12], b"6\0", "trace-cmd did not write version 6");
    compare_with_trace_cmd(&dst);
}

#[test]
fn version_7_uncompressed_reads_the_same_as_trace_cmd() {
    let src = common::traces_dir().join("kvm-lab/s5_overcommit/trace.dat");
    let dir = common::scratch("v7none");
    let dst = dir.join("s5_v7_none.dat");
    common::convert(&src, &dst, "7", "none");
    compare_with_trace_cmd(&dst);
}

#[test]
fn report_line_parser() {
    let l = parse_line(
        "       CPU 0/KVM-139   [000]    20.956603316: kvm_entry:             vcpu_id=0 rip=0x1",
    )
    .unwrap();
    assert_eq!(
        (l.pid, l.cpu, l.ts_ns, l.name),
        (139, 0, 20_956_603_316, "kvm_entry")
    );
    assert_eq!(
        field_values("buf=LAB_GO dur=8 vms= vm1 x=2", &["buf", "x"]),
        vec![Some("LAB_GO dur=8 vms= vm1"), Some("2")]
    );
}

/// Saved command lines, printk formats and kernel symbols as `trace-cmd dump` prints them.
#[test]
fn metadata_matches_trace_cmd_dump() {
    let path = common::traces_dir().join("host-real/trace.dat");
    let p = path.to_str().unwrap();
    let source = DatSource::open(&path).unwrap();

    let cmdlines = common::trace_cmd(&["dump", "--cmd-lines", p]);
    let mut checked = 0;
    for line in cmdlines
        .lines()
        .filter(|l| !l.starts_with('\t') && !l.is_empty())
    {
        let (pid, comm) = line.split_once(' ').unwrap();
        assert_eq!(source.comm(pid.parse().unwrap()), Some(comm), "{line}");
        checked += 1;
    }
    assert!(checked > 10, "only {checked} command lines");

    let printk = common::trace_cmd(&["dump", "--printk", p]);
    let mut theirs: Vec<(u64, String)> = printk
        .lines()
        .filter_map(|l| {
            let (addr, fmt) = l.split_once(" : ")?;
            let addr = u64::from_str_radix(addr.strip_prefix("0x")?, 16).ok()?;
            Some((addr, fmt.trim_matches('"').to_string()))
        })
        .collect();
    theirs.sort();
    theirs.dedup();
    let mut ours = source.printk_formats().unwrap();
    ours.sort();
    ours.dedup();
    assert!(!ours.is_empty());
    assert_eq!(ours, theirs);

    let kallsyms = common::trace_cmd(&["dump", "--kallsyms", p]);
    let theirs: Vec<&str> = kallsyms
        .lines()
        .filter(|l| !l.starts_with('\t') && !l.is_empty())
        .collect();
    let ours = source.kallsyms().unwrap();
    assert_eq!(ours.len(), theirs.len());
    let first: Vec<&str> = theirs[0].split_whitespace().collect();
    let addr = u64::from_str_radix(first[0], 16).unwrap();
    assert!(ours
        .iter()
        .any(|s| s.0 == addr && s.2 == first[2] && s.1.to_string() == first[1]));
}

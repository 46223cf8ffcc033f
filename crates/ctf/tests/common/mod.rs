//! Helpers shared by the integration tests: the trace folder, babeltrace2's text output, and
//! our events rendered the way babeltrace's `sink.text.pretty` renders them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use virtflow_ctf::CtfSource;
use virtflow_trace::text::TextFields;
use virtflow_trace::{EventSource, FieldId, Scope, Step, Value};

pub fn traces() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces")
}

/// Timestamp of babeltrace lines without one (traces without a clock).
pub const NO_TS: i128 = i128::MIN;

/// One event: timestamp in ns, name, and the field text with numbers normalised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ev {
    pub ts: i128,
    pub name: String,
    pub fields: String,
}

/// C's `%g`.
pub fn fmt_g(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    let e = format!("{:.5e}", v);
    let (mant, exp) = e.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exp) {
        format!(
            "{}e{}{:02}",
            strip(mant),
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        let prec = (5 - exp).max(0) as usize;
        strip(&format!("{:.*}", prec, v))
    }
}

pub fn fmt_value(v: &Value, out: &mut String) {
    match v {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::UInt(x) => out.push_str(&x.to_string()),
        Value::Int(x) => out.push_str(&x.to_string()),
        Value::Float(x) => out.push_str(&fmt_g(*x)),
        Value::Str(s) => {
            out.push('"');
            for ch in s.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '?' => out.push_str("\\?"),
                    '\0' => out.push_str("\\0"),
                    '\x07' => out.push_str("\\a"),
                    '\x08' => out.push_str("\\b"),
                    '\x1b' => out.push_str("\\e"),
                    '\x0c' => out.push_str("\\f"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\x0b' => out.push_str("\\v"),
                    c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                        out.push_str(&format!("\\x{:02x}", c as u32))
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Bytes(b) => {
            out.push('[');
            for x in b.iter() {
                out.push_str(&format!(" {x:02x}"));
            }
            out.push_str(" ]");
        }
        Value::Enum(x, labels) => {
            out.push_str("( ");
            match labels.len() {
                0 => out.push_str("<unknown>"),
                1 => out.push_str(&format!("\"{}\"", labels[0])),
                _ => {
                    out.push_str("{ ");
                    let l: Vec<String> = labels.iter().map(|l| format!("\"{l}\"")).collect();
                    out.push_str(&l.join(", "));
                    out.push_str(" }");
                }
            }
            out.push_str(" : container = ");
            fmt_value(x, out);
            out.push_str(" )");
        }
        Value::Array(a) => {
            if a.is_empty() {
                out.push_str("[ ]");
                return;
            }
            out.push_str("[ ");
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&format!("[{i}] = "));
                fmt_value(x, out);
            }
            out.push_str(" ]");
        }
        Value::Struct(s) => {
            if s.is_empty() {
                out.push_str("{ }");
                return;
            }
            out.push_str("{ ");
            for (i, (k, x)) in s.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(" = ");
                fmt_value(x, out);
            }
            out.push_str(" }");
        }
        Value::Variant(_, x) => {
            out.push_str("{ ");
            fmt_value(x, out);
            out.push_str(" }");
        }
        Value::None => out.push_str("none"),
    }
}

/// Rewrites hexadecimal, octal and binary literals outside strings as decimal.
pub fn normalise(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            out.push('"');
            i += 1;
            continue;
        }
        let prev_ok =
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.');
        if c == b'0' && prev_ok && i + 1 < b.len() {
            let (radix, start) = match b[i + 1] {
                b'x' | b'X' => (16, i + 2),
                b'b' | b'B' => (2, i + 2),
                b'0'..=b'7' => (8, i + 1),
                _ => (0, 0),
            };
            if radix != 0 {
                let mut j = start;
                while j < b.len() && (b[j] as char).is_digit(radix) {
                    j += 1;
                }
                if j > start && (j == b.len() || !(b[j].is_ascii_alphanumeric() || b[j] == b'.')) {
                    if let Ok(v) = u128::from_str_radix(&s[start..j], radix) {
                        out.push_str(&v.to_string());
                        i = j;
                        continue;
                    }
                }
            }
        }
        // Copy one UTF-8 char.
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// babeltrace2's events for a trace, from `--clock-seconds` text output.
pub fn babeltrace(trace: &Path) -> Option<Result<Vec<Ev>, String>> {
    let mut cmd = Command::new("babeltrace2");
    cmd.arg("--clock-seconds").arg(trace);
    babeltrace_cmd(cmd)
}

/// babeltrace2's events for a one-stream trace, without its muxer (which refuses a stream
/// whose timestamps go back).
pub fn babeltrace_no_muxer(trace: &Path) -> Option<Result<Vec<Ev>, String>> {
    let mut cmd = Command::new("babeltrace2");
    cmd.args(["run", "--component", "src:source.ctf.fs", "--params"])
        .arg(format!("inputs=[\"{}\"]", trace.display()))
        .args([
            "--component",
            "pretty:sink.text.pretty",
            "--params",
            "clock-seconds=true",
            "--connect",
            "src:pretty",
        ]);
    babeltrace_cmd(cmd)
}

fn babeltrace_cmd(mut cmd: Command) -> Option<Result<Vec<Ev>, String>> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return Some(Err(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut evs = Vec::new();
    for line in text.lines() {
        let (ts, rest) = match line.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((ts, rest)) => (parse_secs(ts)?, rest.trim_start()),
            None => (NO_TS, line),
        };
        let rest = match rest.strip_prefix("(+") {
            Some(r) => r.split_once(") ").map(|x| x.1).unwrap_or(""),
            None => rest,
        };
        let (prefix, fields) = match rest.find(": ") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest.trim_end_matches(':'), ""),
        };
        let name = prefix.rsplit(' ').next().unwrap_or("").to_string();
        evs.push(Ev {
            ts,
            name,
            fields: strip_empty_groups(&normalise(fields)),
        });
    }
    Some(Ok(evs))
}

fn parse_secs(s: &str) -> Option<i128> {
    let neg = s.starts_with('-');
    let s = s.trim_start_matches('-');
    let (a, b) = s.split_once('.').unwrap_or((s, "0"));
    let mut frac = b.to_string();
    while frac.len() < 9 {
        frac.push('0');
    }
    let v = a.parse::<i128>().ok()? * 1_000_000_000 + frac[..9].parse::<i128>().ok()?;
    Some(if neg { -v } else { v })
}

/// Our events, rendered like babeltrace's pretty text sink.
pub fn ours(trace: &Path) -> Result<(Vec<Ev>, Option<String>), String> {
    ours_of(trace, None).map(|(evs, err, _)| (evs, err))
}

/// Our events of the classes named in `interest` (all when `None`), read with
/// [`EventSource::set_interest`], and the number of events the reader counted.
pub fn ours_of(
    trace: &Path,
    interest: Option<&[&str]>,
) -> Result<(Vec<Ev>, Option<String>, u64), String> {
    let mut src = CtfSource::open(trace).map_err(|e| e.to_string())?;
    if let Some(names) = interest {
        let ids: Vec<_> = names.iter().flat_map(|n| src.classes_named(n)).collect();
        src.set_interest(Some(&ids));
    }
    let mut evs = Vec::new();
    let classes = src.classes().to_vec();
    loop {
        match src.advance() {
            Ok(Step::Event(h)) => {
                let c = &classes[h.class.0 as usize];
                let mut groups: Vec<String> = Vec::new();
                let mut last: Option<Scope> = None;
                // The whole event in one pass, and each field located on its own: the two
                // ways of reading must agree field by field.
                let mut whole = Vec::with_capacity(c.fields.len());
                src.for_each_value(h.class, &mut |id, v| whole.push((id, v.into_owned())));
                if whole.len() != c.fields.len() {
                    return Err(format!(
                        "{}: {} fields in one pass, {} declared",
                        c.name,
                        whole.len(),
                        c.fields.len()
                    ));
                }
                // `dump`'s text writer, fed by the one-pass visit, writes these values as their
                // `Display` does.
                let mut text = Vec::new();
                let mut writer = TextFields::new(&mut text, &c.fields);
                src.visit_fields(h.class, &mut writer)
                    .map_err(|e| e.to_string())?;
                writer.result.map_err(|e| e.to_string())?;
                let expected: String = whole
                    .iter()
                    .map(|(id, v)| format!(" {}={v}", c.fields[id.0 as usize].name))
                    .collect();
                if text != expected.as_bytes() {
                    return Err(format!(
                        "{}: dump text {:?}, values {expected:?}",
                        c.name,
                        String::from_utf8_lossy(&text)
                    ));
                }
                for (i, f) in c.fields.iter().enumerate() {
                    let v = src
                        .value(FieldId(i as u32))
                        .ok_or_else(|| format!("no value for {}", f.name))?;
                    if whole[i] != (FieldId(i as u32), v.clone().into_owned()) {
                        return Err(format!(
                            "{}.{}: {:?} in one pass, {v:?} on its own",
                            c.name, f.name, whole[i].1
                        ));
                    }
                    let mut s = String::new();
                    if last != Some(f.scope) {
                        groups.push(String::new());
                        last = Some(f.scope);
                    } else {
                        s.push_str(", ");
                    }
                    s.push_str(&f.name);
                    s.push_str(" = ");
                    fmt_value(&v, &mut s);
                    groups.last_mut().unwrap().push_str(&s);
                }
                let fields: Vec<String> =
                    groups.into_iter().map(|g| format!("{{ {g} }}")).collect();
                evs.push(Ev {
                    ts: h.ts as i128,
                    name: c.name.rsplit(' ').next().unwrap_or("").to_string(),
                    fields: strip_empty_groups(&normalise(&fields.join(", "))),
                });
            }
            Ok(Step::Lost(_)) => {}
            Ok(Step::End) => return Ok((evs, None, src.stats().events)),
            Err(e) => return Ok((evs, Some(e.to_string()), src.stats().events)),
        }
    }
}

/// Compares in order, events of equal timestamps as a group (their order is ambiguous).
pub fn compare(a: &[Ev], b: &[Ev]) -> Result<(), String> {
    if a.len() != b.len() {
        let first = a.iter().zip(b).position(|(x, y)| x != y);
        return Err(format!(
            "{} events vs babeltrace's {}; first difference at {:?}:\n  ours: {:?}\n  bt:   {:?}",
            a.len(),
            b.len(),
            first,
            first.map(|i| &a[i]),
            first.map(|i| &b[i])
        ));
    }
    let mut i = 0;
    while i < a.len() {
        let mut j = i + 1;
        while j < a.len() && a[j].ts == a[i].ts {
            j += 1;
        }
        let x = &a[i..j];
        let mut y: Vec<&Ev> = b[i..j].iter().collect();
        if x.iter().zip(&y).any(|(p, q)| p != *q) {
            for (k, e) in x.iter().enumerate() {
                let m = y
                    .iter()
                    .position(|q| *q == e)
                    .or_else(|| y.iter().position(|q| loose_eq(e, q)));
                match m {
                    Some(m) => {
                        y.remove(m);
                    }
                    None => {
                        return Err(format!(
                            "event #{}:\n  ours: {:?}\n  bt:   {:?}",
                            i + k,
                            e,
                            b[i + k]
                        ));
                    }
                }
            }
        }
        i = j;
    }
    Ok(())
}

/// Drops top-level empty scopes (`{ }`): babeltrace prints a scope that exists but is empty,
/// which the reader's flat field list cannot tell from an absent one.
pub fn strip_empty_groups(s: &str) -> String {
    let mut groups: Vec<&str> = Vec::new();
    let b = s.as_bytes();
    let (mut depth, mut start, mut in_str, mut i) = (0i32, 0usize, false, 0usize);
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' | b'(' => depth += 1,
                b'}' | b']' | b')' => depth -= 1,
                b',' if depth == 0 => {
                    groups.push(s[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    groups.push(s[start..].trim());
    groups.retain(|g| !g.is_empty() && *g != "{ }");
    groups.join(", ")
}

/// Babeltrace fails on some traces whose streams interleave badly (its muxer refuses a
/// timestamp going back); compare such traces stream by stream, each in a folder of its own.
pub fn per_stream_dirs(trace: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let tmp = std::env::temp_dir().join(format!("virtflow-ctf-test-{}", std::process::id()));
    let mut files: Vec<PathBuf> = std::fs::read_dir(trace)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().unwrap() != "metadata")
        .collect();
    files.sort();
    for f in files {
        let d = tmp
            .join(trace.file_name().unwrap())
            .join(f.file_name().unwrap());
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(trace.join("metadata"), d.join("metadata")).unwrap();
        std::os::unix::fs::symlink(&f, d.join(f.file_name().unwrap())).unwrap();
        out.push((f, d));
    }
    out
}

/// Equal but for strings that are empty in ours: babeltrace 2.0.4 recycles string fields and
/// prints the previous value of one when the new value is empty.
pub fn loose_eq(ours: &Ev, bt: &Ev) -> bool {
    if ours.ts != bt.ts || ours.name != bt.name {
        return false;
    }
    let (a, b) = (ours.fields.as_bytes(), bt.fields.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i..].starts_with(b"= \"\"") && b[j..].starts_with(b"= \"") {
            i += 4;
            j += 3;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            j += 1;
            continue;
        }
        if a[i] != b[j] {
            return false;
        }
        i += 1;
        j += 1;
    }
    i == a.len() && j >= b.len()
}

/// A simulated host's network workload written as an LTTng kernel trace (0.3 s, one host):
/// its packets' strings and nested IPv4/TCP variants are the layouts that are not fixed. The
/// folder (removed first, named by `tag` and the process) and the trace in it.
pub fn simulated_network_ctf(tag: &str) -> (PathBuf, PathBuf) {
    use virtflow_sim::{Config, Format, Scenario};
    let dir = std::env::temp_dir().join(format!("virtflow-ctf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = Config::new(Scenario::Net);
    cfg.format = Format::Ctf;
    cfg.hosts = 1;
    cfg.duration_ns = 300_000_000;
    let summary = virtflow_sim::simulate(&cfg, &dir).expect("simulates");
    let trace = summary.traces[0].0.clone();
    (dir, trace)
}

//! `virtflow dump TRACE…`: every event, one per line, in time order — the form the
//! differential tests compare against `babeltrace2`, `trace-cmd report` and `perf script`.
//!
//! Text form: `TIMESTAMP_NS cpu=N stream=S NAME: field=value field=value …`, and for losses
//! `TIMESTAMP_NS cpu=N stream=S LOST: COUNT events lost until END_NS`. Strings are quoted with
//! Rust's escaping; compounds print as `{ a=1 b=2 }` and `[1, 2]`. `--json` prints one object
//! per line: `{"ts":…,"cpu":…,"stream":…,"name":…,"fields":{…}}` or `{"lost":…}`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use virtflow_trace::text::TextFields;
use virtflow_trace::{EventHeader, EventSource, Step, Value};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files or folders (CTF, trace-cmd .dat, perf.data, ftrace text).
    #[arg(required = true)]
    pub traces: Vec<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut source = crate::input::open_all(&args.traces)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = dump(&mut *source, &mut out, args.json, args.limit);
    out.flush().ok();
    let stats = source.stats();
    if stats.lost_notices > 0 || stats.truncated_packets > 0 || stats.unknown_events > 0 {
        eprintln!(
            "virtflow: {} events; {} lost events in {} notices; {} truncated packets; {} events of unknown classes",
            stats.events, stats.lost_events, stats.lost_notices, stats.truncated_packets, stats.unknown_events
        );
    }
    for w in &stats.warnings {
        eprintln!("virtflow: warning: {w}");
    }
    match result {
        Err(DumpError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(DumpError::Output(e)) => Err(e.into()),
        Err(DumpError::Trace(e)) => Err(e.into()),
        Ok(()) => Ok(()),
    }
}

pub enum DumpError {
    Trace(virtflow_trace::TraceError),
    Output(std::io::Error),
}

impl From<std::io::Error> for DumpError {
    fn from(e: std::io::Error) -> Self {
        DumpError::Output(e)
    }
}

/// Writes every event of `source` to `out`; exposed for tests and benchmarks.
pub fn dump(
    source: &mut dyn EventSource,
    out: &mut impl Write,
    json: bool,
    limit: Option<u64>,
) -> Result<(), DumpError> {
    let mut n = 0u64;
    loop {
        if limit.is_some_and(|l| n >= l) {
            return Ok(());
        }
        match source.advance().map_err(DumpError::Trace)? {
            Step::End => return Ok(()),
            Step::Lost(l) => {
                let count = l.count.map_or("some".to_string(), |c| c.to_string());
                if json {
                    writeln!(
                        out,
                        "{{\"ts\":{},\"cpu\":{},\"stream\":{},\"lost\":{},\"until\":{}}}",
                        l.begin,
                        cpu_json(l.cpu),
                        l.stream,
                        l.count.map_or("null".to_string(), |c| c.to_string()),
                        l.end
                    )?;
                } else {
                    write!(out, "{} ", l.begin)?;
                    write_cpu(out, l.cpu)?;
                    writeln!(
                        out,
                        " stream={} LOST: {count} events lost until {}",
                        l.stream, l.end
                    )?;
                }
            }
            Step::Event(h) => {
                n += 1;
                if json {
                    write_json(source, &h, out)?;
                } else {
                    write_text(source, &h, out)?;
                }
            }
        }
    }
}

/// Writes `cpu=N` or `cpu=-` without allocating.
fn write_cpu(out: &mut impl Write, cpu: u32) -> std::io::Result<()> {
    if cpu == EventHeader::NO_CPU {
        out.write_all(b"cpu=-")
    } else {
        out.write_all(b"cpu=")?;
        out.write_all(itoa::Buffer::new().format(cpu).as_bytes())
    }
}

fn cpu_json(cpu: u32) -> String {
    if cpu == EventHeader::NO_CPU {
        "null".into()
    } else {
        cpu.to_string()
    }
}

/// One event in the text form: every field written as the reader decodes it, in one pass over
/// the event ([`EventSource::visit_fields`]), without building values.
fn write_text(
    source: &dyn EventSource,
    h: &EventHeader,
    out: &mut impl Write,
) -> Result<(), DumpError> {
    let class = &source.classes()[h.class.0 as usize];
    let mut num = itoa::Buffer::new();
    out.write_all(num.format(h.ts).as_bytes())?;
    out.write_all(b" ")?;
    write_cpu(out, h.cpu)?;
    out.write_all(b" stream=")?;
    out.write_all(num.format(h.stream).as_bytes())?;
    out.write_all(b" ")?;
    out.write_all(class.name.as_bytes())?;
    out.write_all(b":")?;
    let mut text = TextFields::new(out, &class.fields);
    source
        .visit_fields(h.class, &mut text)
        .map_err(DumpError::Trace)?;
    text.result?;
    out.write_all(b"\n")?;
    Ok(())
}

fn write_json(
    source: &dyn EventSource,
    h: &EventHeader,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let class = &source.classes()[h.class.0 as usize];
    let mut fields = serde_json::Map::new();
    source.for_each_value(h.class, &mut |id, v| {
        if let Some(f) = class.fields.get(id.0 as usize) {
            fields.insert(f.name.clone(), to_json(&v));
        }
    });
    let obj = serde_json::json!({
        "ts": h.ts,
        "cpu": if h.cpu == EventHeader::NO_CPU { None } else { Some(h.cpu) },
        "stream": h.stream,
        "name": class.name,
        "fields": fields,
    });
    serde_json::to_writer(&mut *out, &obj)?;
    writeln!(out)
}

/// The JSON form of a value: integers as numbers, enums as `{"value":…,"labels":[…]}`,
/// variants as `{"option":…,"value":…}`, bytes as a hex string.
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::json;
    match v {
        Value::Bool(b) => json!(b),
        Value::UInt(x) => json!(x),
        Value::Int(x) => json!(x),
        Value::Float(x) => json!(x),
        Value::Str(s) => json!(s),
        Value::Bytes(_) => json!(v.to_string()),
        Value::Enum(x, labels) => json!({"value": to_json(x), "labels": labels}),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Struct(s) => {
            serde_json::Value::Object(s.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect())
        }
        Value::Variant(n, x) => json!({"option": n, "value": to_json(x)}),
        Value::None => serde_json::Value::Null,
    }
}

//! `virtflow dump TRACE…`: every event, one per line, in time order — the form the
//! differential tests compare against `babeltrace2`, `trace-cmd report` and `perf script`.
//!
//! Text form: `TIMESTAMP_NS cpu=N stream=S NAME: field=value field=value …`, and for losses
//! `TIMESTAMP_NS cpu=N stream=S LOST: COUNT events lost until END_NS`. Strings are quoted with
//! Rust's escaping; compounds print as `{ a=1 b=2 }` and `[1, 2]`. `--json` prints one object
//! per line: `{"ts":…,"cpu":…,"stream":…,"name":…,"fields":{…}}` or `{"lost":…}`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use virtflow_trace::{EventHeader, EventSource, FieldDesc, FieldId, FieldVisitor, Step, Value};

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

/// A string in the `dump` form: quoted with Rust's escaping. Plain printable ASCII, by far the
/// common case, is copied as is, which is what the escaping would give.
fn write_quoted(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.write_all(b"\"")?;
        out.write_all(s.as_bytes())?;
        out.write_all(b"\"")
    } else {
        write!(out, "{s:?}")
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

/// Writes visited fields in the text form: ` name=value` each, the values as [`Value`]'s
/// `Display` writes them (`{ a=1, b=2 }`, `[1, 2]`, `<option>value`, `6(TCP)`).
pub struct TextFields<'w, W: Write> {
    out: &'w mut W,
    names: &'w [FieldDesc],
    num: itoa::Buffer,
    open: Vec<Open>,
    /// The next value continues the one being written (a variant's, an enumeration's).
    continued: bool,
    /// The first output error; writing stops there.
    pub result: std::io::Result<()>,
}

/// A compound being written.
enum Open {
    Struct {
        first: bool,
    },
    Array {
        first: bool,
    },
    /// An enumeration whose integer is being written: its labels go after it.
    Enum(String),
}

impl<'w, W: Write> TextFields<'w, W> {
    pub fn new(out: &'w mut W, names: &'w [FieldDesc]) -> Self {
        TextFields {
            out,
            names,
            num: itoa::Buffer::new(),
            open: Vec::new(),
            continued: false,
            result: Ok(()),
        }
    }

    fn put(&mut self, b: &[u8]) {
        if self.result.is_ok() {
            self.result = self.out.write_all(b);
        }
    }

    /// A value starts: the separator an array puts before its elements.
    fn start(&mut self) {
        if std::mem::replace(&mut self.continued, false) {
            return;
        }
        if let Some(Open::Array { first }) = self.open.last_mut() {
            let sep = !std::mem::replace(first, false);
            if sep {
                self.put(b", ");
            }
        }
    }

    /// A value ended: an enumeration's labels follow its integer.
    fn end(&mut self) {
        if let Some(Open::Enum(_)) = self.open.last() {
            if let Some(Open::Enum(labels)) = self.open.pop() {
                if !labels.is_empty() {
                    self.put(b"(");
                    self.put(labels.as_bytes());
                    self.put(b")");
                }
            }
            self.end();
        }
    }

    fn scalar(&mut self, b: &[u8]) {
        self.start();
        self.put(b);
        self.end();
    }
}

impl<W: Write> FieldVisitor for TextFields<'_, W> {
    fn field(&mut self, id: FieldId) {
        self.open.clear();
        self.continued = false;
        let Some(f) = self.names.get(id.0 as usize) else {
            return;
        };
        self.put(b" ");
        self.put(f.name.as_bytes());
        self.put(b"=");
    }
    fn bool(&mut self, v: bool) {
        self.scalar(if v { b"true" } else { b"false" });
    }
    fn uint(&mut self, v: u64) {
        let mut num = std::mem::take(&mut self.num);
        self.scalar(num.format(v).as_bytes());
        self.num = num;
    }
    fn int(&mut self, v: i64) {
        let mut num = std::mem::take(&mut self.num);
        self.scalar(num.format(v).as_bytes());
        self.num = num;
    }
    fn float(&mut self, v: f64) {
        self.scalar(v.to_string().as_bytes());
    }
    fn str(&mut self, v: &[u8]) {
        self.start();
        if self.result.is_ok() {
            self.result = match std::str::from_utf8(v) {
                Ok(s) => write_quoted(self.out, s),
                Err(_) => write_quoted(self.out, &String::from_utf8_lossy(v)),
            };
        }
        self.end();
    }
    fn bytes(&mut self, v: &[u8]) {
        self.scalar(Value::Bytes(v.into()).to_string().as_bytes());
    }
    fn none(&mut self) {
        self.scalar(b"none");
    }
    fn enumeration(&mut self, labels: &mut dyn Iterator<Item = &str>) {
        self.start();
        let mut joined = String::new();
        for (i, l) in labels.enumerate() {
            if i > 0 {
                joined.push('|');
            }
            joined.push_str(l);
        }
        self.open.push(Open::Enum(joined));
        self.continued = true;
    }
    fn variant(&mut self, option: &str) {
        self.start();
        self.put(b"<");
        self.put(option.as_bytes());
        self.put(b">");
        self.continued = true;
    }
    fn begin_struct(&mut self) {
        self.start();
        self.put(b"{");
        self.open.push(Open::Struct { first: true });
    }
    fn member(&mut self, name: &str) {
        if let Some(Open::Struct { first }) = self.open.last_mut() {
            let sep = !std::mem::replace(first, false);
            if sep {
                self.put(b",");
            }
        }
        self.put(b" ");
        self.put(name.as_bytes());
        self.put(b"=");
    }
    fn end_struct(&mut self) {
        self.open.pop();
        self.put(b" }");
        self.end();
    }
    fn begin_array(&mut self, _len: u64) {
        self.start();
        self.put(b"[");
        self.open.push(Open::Array { first: true });
    }
    fn end_array(&mut self) {
        self.open.pop();
        self.put(b"]");
        self.end();
    }
    fn field_uint(&mut self, id: FieldId, v: u64) {
        self.field(id);
        let mut num = std::mem::take(&mut self.num);
        self.put(num.format(v).as_bytes());
        self.num = num;
    }
    fn field_int(&mut self, id: FieldId, v: i64) {
        self.field(id);
        let mut num = std::mem::take(&mut self.num);
        self.put(num.format(v).as_bytes());
        self.num = num;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use virtflow_trace::{visit::visit_value, FieldKind, Scope};

    fn s(x: &str) -> Cow<'static, str> {
        Cow::Owned(x.to_string())
    }

    /// Writing a visited value gives what `Value`'s `Display`, the reference form, gives: for
    /// scalars, strings that need escaping, and compounds nested every way (enumerations in
    /// arrays and variants, variants of structures, empty compounds).
    #[test]
    fn visited_values_are_written_as_display_writes_them() {
        let en = |v: Value<'static>, labels: &[&str]| {
            Value::Enum(Box::new(v), labels.iter().map(|l| s(l)).collect())
        };
        let values: Vec<Value<'static>> = vec![
            Value::UInt(u64::MAX),
            Value::Int(-5),
            Value::Bool(false),
            Value::Float(-0.25),
            Value::Str(s("plain")),
            Value::Str(s("tab\tquote\"é")),
            Value::Bytes(Cow::Owned(vec![0, 15, 255])),
            Value::None,
            en(Value::UInt(6), &["TCP"]),
            en(Value::Int(-1), &[]),
            en(Value::UInt(3), &["A", "B"]),
            Value::Array(vec![]),
            Value::Struct(vec![]),
            Value::Array(vec![
                en(Value::UInt(1), &["X"]),
                en(Value::UInt(2), &[]),
                Value::Variant(s("o"), Box::new(en(Value::UInt(9), &["N"]))),
                Value::Array(vec![Value::UInt(1), Value::UInt(2)]),
            ]),
            Value::Variant(
                s("ipv4"),
                Box::new(Value::Struct(vec![
                    (s("version"), Value::UInt(4)),
                    (s("protocol"), en(Value::UInt(6), &["tcp"])),
                    (
                        s("saddr"),
                        Value::Array(vec![Value::UInt(10), Value::UInt(0)]),
                    ),
                    (s("empty"), Value::Struct(vec![])),
                    (
                        s("transport"),
                        Value::Variant(
                            s("tcp"),
                            Box::new(Value::Struct(vec![(s("port"), Value::UInt(80))])),
                        ),
                    ),
                ])),
            ),
        ];
        let names: Vec<FieldDesc> = (0..values.len())
            .map(|i| FieldDesc {
                name: format!("f{i}"),
                scope: Scope::Payload,
                kind: FieldKind::Compound,
            })
            .collect();
        let mut out = Vec::new();
        let mut text = TextFields::new(&mut out, &names);
        for (i, v) in values.iter().enumerate() {
            text.field(FieldId(i as u32));
            visit_value(v, &mut text);
        }
        text.result.unwrap();
        let expected: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!(" f{i}={v}"))
            .collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

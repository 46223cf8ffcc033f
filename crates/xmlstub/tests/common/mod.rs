//! What the test files share: reading a source whole, and a scratch folder.

#![allow(dead_code)]

use std::path::PathBuf;

use virtflow_trace::{EventSource, Step, TraceError, Value};
use virtflow_xmlstub::testing::{StubTrace, StubValue};
use virtflow_xmlstub::XmlSource;

/// One event as read: header, class name, and every field with its value in class order.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub ts: i64,
    pub cpu: u32,
    pub name: String,
    pub fields: Vec<(String, Value<'static>)>,
}

impl Row {
    pub fn get(&self, name: &str) -> Option<&Value<'static>> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn int(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("{name} in {self:?}"))
    }

    pub fn string(&self, name: &str) -> &str {
        match self.get(name) {
            Some(Value::Str(s)) => s,
            _ => panic!("{name} in {self:?}"),
        }
    }
}

/// Every event of `source` until its end, or the events before its error and the error.
pub fn drain(source: &mut dyn EventSource) -> (Vec<Row>, Option<TraceError>) {
    let mut rows = Vec::new();
    loop {
        match source.advance() {
            Ok(Step::End) => return (rows, None),
            Ok(Step::Lost(l)) => panic!("a stub trace has no losses: {l:?}"),
            Ok(Step::Event(h)) => {
                let class = &source.classes()[h.class.0 as usize];
                let mut fields = Vec::new();
                source.for_each_value(h.class, &mut |id, v| {
                    fields.push((class.fields[id.0 as usize].name.clone(), v.into_owned()))
                });
                rows.push(Row {
                    ts: h.ts,
                    cpu: h.cpu,
                    name: class.name.clone(),
                    fields,
                });
            }
            Err(e) => {
                assert_eq!(source.advance(), Ok(Step::End), "after an error, the end");
                return (rows, Some(e));
            }
        }
    }
}

/// The events of a source that must read without error.
pub fn rows(source: &mut dyn EventSource) -> Vec<Row> {
    let (rows, error) = drain(source);
    if let Some(e) = error {
        panic!("{e}");
    }
    rows
}

/// Opens `xml` held in memory as `name`, and reads it whole.
pub fn read_str(name: &str, xml: &str) -> Vec<Row> {
    rows(&mut XmlSource::from_bytes(name, xml.as_bytes()).unwrap())
}

/// The error `bytes` end in, at opening or after some events (their count).
pub fn failure(bytes: &[u8]) -> (usize, TraceError) {
    match XmlSource::from_bytes("bad.xml", bytes) {
        Err(e) => (0, e),
        Ok(mut s) => match drain(&mut s) {
            (rows, Some(e)) => (rows.len(), e),
            (rows, None) => panic!("read without error: {rows:?}"),
        },
    }
}

/// The value the reader gives for a field written as `v`.
pub fn expected_value(v: &StubValue) -> Value<'static> {
    match v {
        StubValue::Int(v) => Value::Int(i64::from(*v)),
        StubValue::Long(v) => Value::Int(*v),
        StubValue::String(s) => Value::Str(s.clone().into()),
        StubValue::Double(v) => Value::Float(*v),
        StubValue::IntArray(a) => {
            Value::Array(a.iter().map(|&v| Value::Int(i64::from(v))).collect())
        }
        StubValue::LongArray(a) => Value::Array(a.iter().map(|&v| Value::Int(v)).collect()),
    }
}

/// The rows a trace's table must read back as: in time order (file order on ties), each event
/// with the fields its table gives it (compared by name, as classes order them by first use).
pub fn assert_reads_as_table(trace: &StubTrace, read: &[Row]) {
    let mut table: Vec<_> = trace.events.iter().collect();
    table.sort_by_key(|e| e.ts);
    assert_eq!(read.len(), table.len(), "{}", trace.file_name);
    for (row, event) in read.iter().zip(table) {
        assert_eq!((row.ts, row.name.as_str()), (event.ts, event.name.as_str()));
        assert_eq!(row.fields.len(), event.fields.len(), "{row:?}");
        for f in &event.fields {
            assert_eq!(row.get(&f.name), Some(&expected_value(&f.value)), "{row:?}");
        }
        let cpu = event.fields.iter().find(|f| f.name == "cpu");
        let expected_cpu = match cpu.map(|f| &f.value) {
            Some(StubValue::Int(c)) => *c as u32,
            _ => virtflow_trace::EventHeader::NO_CPU,
        };
        assert_eq!(row.cpu, expected_cpu, "{row:?}");
    }
}

/// A fresh folder for one test's files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("virtflow-xmlstub-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

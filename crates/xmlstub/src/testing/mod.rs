//! Writing stub traces from tables of events, for tests: this crate's, and those of the
//! analyses that check themselves on Trace Compass's stub traces (execution graph, kernel
//! memory, virtual machines, synchronisation).
//!
//! A test lists its events with [`StubEvent`]'s builder, in the schema's types:
//!
//! ```
//! use virtflow_xmlstub::testing::{write_stub, StubEvent};
//!
//! let events = [
//!     StubEvent::new(15, "packet_sent").cpu(1).string("interface", "eth0").int("msgid", 1),
//!     StubEvent::new(50, "packet_received").cpu(1).int("msgid", 1),
//! ];
//! let dir = std::env::temp_dir().join(format!("doc-stub-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! write_stub(dir.join("client.xml"), &events).unwrap();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! [`traces`] holds the traces of Trace Compass's tests as such tables.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

pub mod traces;

/// One `<event>`: its timestamp in ns, its name and its fields in order.
#[derive(Clone, Debug, PartialEq)]
pub struct StubEvent {
    pub ts: i64,
    pub name: String,
    pub fields: Vec<StubField>,
}

/// One `<field>`.
#[derive(Clone, Debug, PartialEq)]
pub struct StubField {
    pub name: String,
    pub value: StubValue,
}

/// A field's value in one of the schema's six types.
#[derive(Clone, Debug, PartialEq)]
pub enum StubValue {
    Int(i32),
    Long(i64),
    String(String),
    Double(f64),
    IntArray(Vec<i32>),
    LongArray(Vec<i64>),
}

impl StubValue {
    /// The `type` attribute.
    pub fn type_name(&self) -> &'static str {
        match self {
            StubValue::Int(_) => "int",
            StubValue::Long(_) => "long",
            StubValue::String(_) => "string",
            StubValue::Double(_) => "double",
            StubValue::IntArray(_) => "intArray",
            StubValue::LongArray(_) => "longArray",
        }
    }

    /// The `value` attribute, unescaped.
    pub fn text(&self) -> String {
        fn join<T: ToString>(items: &[T]) -> String {
            items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
        }
        match self {
            StubValue::Int(v) => v.to_string(),
            StubValue::Long(v) => v.to_string(),
            StubValue::String(s) => s.clone(),
            // Rust writes the shortest text that reads back as the same f64.
            StubValue::Double(v) => v.to_string(),
            StubValue::IntArray(a) => join(a),
            StubValue::LongArray(a) => join(a),
        }
    }
}

impl StubEvent {
    pub fn new(ts: i64, name: &str) -> StubEvent {
        StubEvent {
            ts,
            name: name.to_string(),
            fields: Vec::new(),
        }
    }

    pub fn field(mut self, name: &str, value: StubValue) -> StubEvent {
        self.fields.push(StubField {
            name: name.to_string(),
            value,
        });
        self
    }

    /// The `cpu` field (`int`), which gives the event its CPU.
    pub fn cpu(self, cpu: i32) -> StubEvent {
        self.int("cpu", cpu)
    }

    pub fn int(self, name: &str, v: i32) -> StubEvent {
        self.field(name, StubValue::Int(v))
    }

    pub fn long(self, name: &str, v: i64) -> StubEvent {
        self.field(name, StubValue::Long(v))
    }

    pub fn string(self, name: &str, v: &str) -> StubEvent {
        self.field(name, StubValue::String(v.to_string()))
    }

    pub fn double(self, name: &str, v: f64) -> StubEvent {
        self.field(name, StubValue::Double(v))
    }

    pub fn int_array(self, name: &str, v: &[i32]) -> StubEvent {
        self.field(name, StubValue::IntArray(v.to_vec()))
    }

    pub fn long_array(self, name: &str, v: &[i64]) -> StubEvent {
        self.field(name, StubValue::LongArray(v.to_vec()))
    }
}

/// The stub trace of `events`, in file order, as Trace Compass's test traces are laid out: one
/// element per line, and a `<set_aspects>` declaring the `cpu` aspect when an event has a
/// `cpu` field.
pub fn to_xml(events: &[StubEvent]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<trace>\n");
    let has_cpu = events
        .iter()
        .any(|e| e.fields.iter().any(|f| f.name == "cpu"));
    if has_cpu {
        out.push_str(
            "<set_aspects>\n<field name=\"cpu\" value=\"0\" type=\"int\"/>\n</set_aspects>\n",
        );
    }
    for e in events {
        let _ = write!(
            out,
            "<event timestamp=\"{}\" name=\"{}\"",
            e.ts,
            escape(&e.name)
        );
        if e.fields.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        for f in &e.fields {
            let _ = writeln!(
                out,
                "<field name=\"{}\" value=\"{}\" type=\"{}\"/>",
                escape(&f.name),
                escape(&f.value.text()),
                f.value.type_name()
            );
        }
        out.push_str("</event>\n");
    }
    out.push_str("</trace>\n");
    out
}

/// Writes the stub trace of `events` to `path` (see [`to_xml`]).
pub fn write_stub(path: impl AsRef<Path>, events: &[StubEvent]) -> io::Result<()> {
    std::fs::write(path, to_xml(events))
}

/// A stub trace with the file name that makes its host name (`client.xml`).
#[derive(Clone, Debug, PartialEq)]
pub struct StubTrace {
    pub file_name: &'static str,
    pub events: Vec<StubEvent>,
}

impl StubTrace {
    /// Writes it as `dir/file_name` and returns that path.
    pub fn write_in(&self, dir: impl AsRef<Path>) -> io::Result<PathBuf> {
        let path = dir.as_ref().join(self.file_name);
        write_stub(&path, &self.events)?;
        Ok(path)
    }
}

/// Text for an attribute value between double quotes. Tabs and line breaks are written as
/// character references, which XML's normalisation of attribute values leaves alone.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_one_element_per_line() {
        let xml = to_xml(&[
            StubEvent::new(5, "kvm_entry").cpu(0).long("vcpu_id", 0),
            StubEvent::new(7, "marker"),
        ]);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<trace>\n<set_aspects>\n\
             <field name=\"cpu\" value=\"0\" type=\"int\"/>\n</set_aspects>\n\
             <event timestamp=\"5\" name=\"kvm_entry\">\n\
             <field name=\"cpu\" value=\"0\" type=\"int\"/>\n\
             <field name=\"vcpu_id\" value=\"0\" type=\"long\"/>\n</event>\n\
             <event timestamp=\"7\" name=\"marker\"/>\n</trace>\n"
        );
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            escape("a<b>&\"c\"\t\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&#9;&#10;"
        );
        assert_eq!(StubValue::IntArray(vec![1, -2, 3]).text(), "1,-2,3");
        assert_eq!(StubValue::LongArray(vec![]).text(), "");
        assert_eq!(StubValue::Double(0.1).text(), "0.1");
    }
}

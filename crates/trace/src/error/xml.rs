//! What can go wrong reading a Trace Compass XML stub trace (`<trace>` of `<event>`s with typed
//! `<field>`s, the development traces of Trace Compass's tests).
//!
//! Each kind carries what was expected and what was found. The byte offset is in the enclosing
//! [`TraceError`](crate::TraceError): where the bad element, attribute value or byte is. The
//! last kinds are never errors: the reader reports them as warnings in
//! [`ReadStats`](crate::ReadStats), written as their `TraceError`, and goes on.

use std::fmt;

use crate::escape::Quoted;

/// An XML stub trace failure or warning. `Display` writes the sentence a user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum XmlError {
    /// The bytes are not well-formed XML; `message` is the XML parser's account of it.
    Malformed { message: String },
    /// The file is not UTF-8 from the offset on (stub traces are UTF-8 or ASCII).
    NotUtf8,
    /// The file is larger than the reader's 32-bit indexes can address.
    TooLarge { bytes: u64 },
    /// The file ends while `element`, opened at byte `opened_at`, is still open.
    Unclosed { element: String, opened_at: u64 },
    /// The root element is not `<trace>` (`None`: the file has no element at all).
    NotAStubTrace { root: Option<String> },
    /// An element lacks an attribute the stub trace schema requires.
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    /// An event's `timestamp` is not an integer number of nanoseconds that fits in 64 bits.
    BadTimestamp { value: String },
    /// A field's `value` is not a number of its declared `type` (`ty`: `int`, `long`,
    /// `double`, `intArray` or `longArray`).
    BadNumber {
        field: String,
        value: String,
        ty: &'static str,
    },
    /// A field's `type` is none of the schema's six.
    UnknownType { ty: String },
    /// `<trace>` holds no `<event>`: a trace without events is refused rather than read as
    /// zero events.
    NoEvent,
    /// Warning: `count` events come earlier than an event before them in the file; the
    /// reader sorted them by timestamp, file order kept among equal timestamps.
    EventsOutOfOrder { count: u64 },
    /// Warning: an element the schema does not have, skipped with everything inside it.
    UnknownElement { element: String },
    /// Warning: text where the schema has only elements; ignored.
    StrayText { element: String },
    /// Warning: an event names the same field twice; the first is kept.
    DuplicateField { event: String, field: String },
    /// Warning: a field's type here is of another kind than the type its class took from the
    /// first event that had it; the value is kept as written, the class keeps `first`.
    TypeConflict {
        event: String,
        field: String,
        first: &'static str,
        now: &'static str,
    },
    /// Warning: the `cpu` field is not a CPU number (a non-negative integer below 2³²−1); the
    /// event has no CPU.
    BadCpu { value: String },
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::Malformed { message } => write!(f, "not well-formed XML: {message}"),
            XmlError::NotUtf8 => f.write_str("not UTF-8 from here on"),
            XmlError::TooLarge { bytes } => {
                write!(
                    f,
                    "{bytes} bytes: XML stub traces of 4 GiB or more are not read"
                )
            }
            XmlError::Unclosed { element, opened_at } => write!(
                f,
                "the file ends inside <{element}> (opened at byte {opened_at}): truncated"
            ),
            XmlError::NotAStubTrace { root: Some(root) } => write!(
                f,
                "the root element is <{root}>, not <trace>: not an XML stub trace"
            ),
            XmlError::NotAStubTrace { root: None } => {
                f.write_str("no XML element at all: not an XML stub trace")
            }
            XmlError::MissingAttribute { element, attribute } => {
                write!(f, "<{element}> without its {attribute} attribute")
            }
            XmlError::BadTimestamp { value } => write!(
                f,
                "timestamp {} is not an integer number of nanoseconds within 64 bits",
                Quoted(value)
            ),
            XmlError::BadNumber { field, value, ty } => {
                write!(f, "field {field}: {} is not a valid {ty}", Quoted(value))
            }
            XmlError::UnknownType { ty } => write!(
                f,
                "field type {} is none of int, long, string, double, intArray, longArray",
                Quoted(ty)
            ),
            XmlError::NoEvent => f.write_str("<trace> holds no <event>"),
            XmlError::EventsOutOfOrder { count } => write!(
                f,
                "{count} events earlier than an event before them, the first here; \
                 sorted by timestamp"
            ),
            XmlError::UnknownElement { element } => {
                write!(f, "<{element}> is no stub trace element; skipped")
            }
            XmlError::StrayText { element } => write!(f, "text inside <{element}> ignored"),
            XmlError::DuplicateField { event, field } => {
                write!(f, "{event} has field {field} twice; the first is kept")
            }
            XmlError::TypeConflict {
                event,
                field,
                first,
                now,
            } => write!(
                f,
                "{event} field {field} is a {now} here but a {first} in its first event; \
                 the class keeps {first}"
            ),
            XmlError::BadCpu { value } => {
                write!(
                    f,
                    "cpu {} is not a CPU number; the event has no CPU",
                    Quoted(value)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TraceError;

    /// What a user reads: the file, the byte, then the kind's sentence.
    #[test]
    fn kinds_read_as_sentences() {
        let e = TraceError::new(
            "client.xml",
            57,
            XmlError::BadNumber {
                field: "msgid".into(),
                value: "x1".into(),
                ty: "int",
            },
        );
        assert_eq!(
            e.to_string(),
            "client.xml: at byte 57: field msgid: \"x1\" is not a valid int"
        );
        let e = TraceError::new(
            "server.xml",
            120,
            XmlError::Unclosed {
                element: "event".into(),
                opened_at: 88,
            },
        );
        assert_eq!(
            e.to_string(),
            "server.xml: at byte 120: the file ends inside <event> (opened at byte 88): truncated"
        );
        let e = TraceError::new(
            "x.xml",
            0,
            XmlError::NotAStubTrace {
                root: Some("svg".into()),
            },
        );
        assert_eq!(
            e.to_string(),
            "x.xml: at byte 0: the root element is <svg>, not <trace>: not an XML stub trace"
        );
    }
}

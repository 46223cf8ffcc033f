//! Every error kind on a hand-made bad file, with the offset of the bad place; failures after
//! complete events come after those events; what is passed over is a warning.

mod common;

use common::{failure, read_str, rows};
use virtflow_trace::error::XmlError;
use virtflow_trace::{ErrorKind, EventSource, FieldKind, TraceError};
use virtflow_xmlstub::XmlSource;

/// Byte offset of `marker` in `xml` (its first occurrence).
fn at(xml: &str, marker: &str) -> u64 {
    xml.find(marker)
        .unwrap_or_else(|| panic!("{marker} in {xml}")) as u64
}

/// The error `xml` ends in: events read before it, offset, kind.
fn fails(xml: &str) -> (usize, u64, XmlError) {
    let (events, e) = failure(xml.as_bytes());
    assert_eq!(e.path, std::path::Path::new("bad.xml"));
    match e.kind {
        ErrorKind::Xml(kind) => (events, e.offset, kind),
        other => panic!("not an XML error: {other:?}"),
    }
}

fn malformed(kind: &XmlError) -> bool {
    matches!(kind, XmlError::Malformed { .. })
}

#[test]
fn malformed_xml() {
    let xml = "<trace>\n<event timestamp=\"1\" name=\"a\">\n</trace>\n";
    let (events, offset, kind) = fails(xml);
    assert!(malformed(&kind), "{kind:?}");
    assert_eq!((events, offset), (0, at(xml, "</trace>")));

    let xml = "<trace><event timestamp=1 name=\"a\"/></trace>";
    let (_, offset, kind) = fails(xml);
    assert!(malformed(&kind), "{kind:?}");
    assert_eq!(offset, at(xml, "1 name"));

    let xml = "<trace><event timestamp=\"1\" name=\"a\" name=\"b\"/></trace>";
    let (_, offset, kind) = fails(xml);
    assert!(malformed(&kind), "{kind:?}");
    assert_eq!(offset, at(xml, "name=\"b\""));

    let xml = "<trace><event timestamp=\"1\" name=\"a\">\
               <field name=\"s\" value=\"&nbsp;\" type=\"string\"/></event></trace>";
    let (_, offset, kind) = fails(xml);
    assert!(malformed(&kind), "{kind:?}");
    assert_eq!(offset, at(xml, "&nbsp;"));

    let xml = "<trace><event timestamp=\"1\" name=\"a\"/><event timestamp=\"2\" name=";
    let (events, offset, kind) = fails(xml);
    assert!(malformed(&kind), "{kind:?}");
    assert_eq!((events, offset), (1, at(xml, "<event timestamp=\"2\"")));
}

#[test]
fn not_utf8() {
    let mut bytes = b"<trace><event timestamp=\"1\" name=\"a\"><field name=\"s\" value=\"".to_vec();
    let bad = bytes.len() as u64;
    bytes.extend_from_slice(b"caf\xe9\" type=\"string\"/></event></trace>");
    let (events, e) = failure(&bytes);
    assert_eq!(events, 0);
    assert_eq!(e.kind, ErrorKind::Xml(XmlError::NotUtf8));
    assert_eq!(e.offset, bad + 3);
}

#[test]
fn unclosed_elements() {
    let xml =
        "<trace>\n<event timestamp=\"1\" name=\"a\">\n<field name=\"x\" value=\"1\" type=\"int\"/>";
    let (events, offset, kind) = fails(xml);
    assert_eq!(
        kind,
        XmlError::Unclosed {
            element: "event".into(),
            opened_at: at(xml, "<event"),
        }
    );
    assert_eq!((events, offset), (0, xml.len() as u64));

    // A truncated trace gives its complete events, then the error.
    let xml = "<trace>\n<event timestamp=\"1\" name=\"a\"/>\n<event timestamp=\"2\" name=\"a\">";
    let (events, offset, kind) = fails(xml);
    assert_eq!(
        kind,
        XmlError::Unclosed {
            element: "event".into(),
            opened_at: at(xml, "<event timestamp=\"2\""),
        }
    );
    assert_eq!((events, offset), (1, xml.len() as u64));

    let xml = "<trace>\n<event timestamp=\"1\" name=\"a\"/>\n";
    let (events, _, kind) = fails(xml);
    assert_eq!(
        kind,
        XmlError::Unclosed {
            element: "trace".into(),
            opened_at: 0,
        }
    );
    assert_eq!(events, 1);
}

#[test]
fn not_a_stub_trace() {
    let xml = "<?xml version=\"1.0\"?>\n<svg><trace/></svg>";
    let (_, offset, kind) = fails(xml);
    assert_eq!(
        kind,
        XmlError::NotAStubTrace {
            root: Some("svg".into())
        }
    );
    assert_eq!(offset, at(xml, "<svg"));

    for xml in ["", "  \n", "<?xml version=\"1.0\"?>\n<!-- nothing -->\n"] {
        let (_, offset, kind) = fails(xml);
        assert_eq!(kind, XmlError::NotAStubTrace { root: None });
        assert_eq!(offset, 0);
    }
}

#[test]
fn missing_attributes() {
    let cases = [
        ("<event name=\"a\"/>", "event", "timestamp"),
        ("<event timestamp=\"1\"/>", "event", "name"),
        (
            "<event timestamp=\"1\" name=\"a\"><field value=\"1\" type=\"int\"/></event>",
            "field",
            "name",
        ),
        (
            "<event timestamp=\"1\" name=\"a\"><field name=\"n\" type=\"int\"/></event>",
            "field",
            "value",
        ),
        (
            "<event timestamp=\"1\" name=\"a\"><field name=\"n\" value=\"1\"/></event>",
            "field",
            "type",
        ),
        (
            "<set_aspects><field name=\"cpu\" type=\"int\"/></set_aspects>",
            "field",
            "value",
        ),
    ];
    for (body, element, attribute) in cases {
        let xml = format!("<trace>{body}</trace>");
        let (_, offset, kind) = fails(&xml);
        assert_eq!(
            kind,
            XmlError::MissingAttribute { element, attribute },
            "{xml}"
        );
        assert_eq!(offset, at(&xml, &format!("<{element}")), "{xml}");
    }
}

#[test]
fn bad_timestamps() {
    for value in ["12x", "1.5", "99999999999999999999", "", "0x10"] {
        let xml = format!("<trace><event name=\"a\" timestamp=\"{value}\"/></trace>");
        let (_, offset, kind) = fails(&xml);
        assert_eq!(
            kind,
            XmlError::BadTimestamp {
                value: value.into()
            }
        );
        assert_eq!(offset, at(&xml, "timestamp=\"") + 11, "{xml}");
    }
}

#[test]
fn bad_numbers() {
    let cases = [
        ("int", "2147483648"),
        ("int", "abc"),
        ("long", "9223372036854775808"),
        ("long", ""),
        ("double", "1,5"),
        ("intArray", "1,x"),
        ("intArray", "1,4294967296"),
        ("longArray", "1;2"),
    ];
    for (ty, value) in cases {
        let xml = format!(
            "<trace><event timestamp=\"1\" name=\"a\">\
             <field name=\"n\" type=\"{ty}\" value=\"{value}\"/></event></trace>"
        );
        let (_, offset, kind) = fails(&xml);
        assert_eq!(
            kind,
            XmlError::BadNumber {
                field: "n".into(),
                value: value.into(),
                ty,
            }
        );
        assert_eq!(offset, at(&xml, "value=\"") + 7, "{xml}");
    }
}

#[test]
fn unknown_types() {
    for body in [
        "<event timestamp=\"1\" name=\"a\"><field name=\"n\" value=\"1\" type=\"float\"/></event>",
        "<set_aspects><field name=\"cpu\" value=\"1\" type=\"Int\"/></set_aspects>",
    ] {
        let xml = format!("<trace>{body}</trace>");
        let (_, offset, kind) = fails(&xml);
        let ty = if body.contains("float") {
            "float"
        } else {
            "Int"
        };
        assert_eq!(kind, XmlError::UnknownType { ty: ty.into() });
        assert_eq!(offset, at(&xml, ty), "{xml}");
    }
}

/// A trace without events is an error, never "0 events".
#[test]
fn no_event() {
    for xml in [
        "<trace/>",
        "<?xml version=\"1.0\"?>\n<trace>\n<set_aspects>\
         <field name=\"cpu\" value=\"1\" type=\"int\"/></set_aspects>\n</trace>\n",
        "<trace><marker/></trace>",
    ] {
        let (events, offset, kind) = fails(xml);
        assert_eq!(kind, XmlError::NoEvent);
        assert_eq!((events, offset), (0, at(xml, "<trace")));
    }
}

/// A failure after complete events: those events, in time order, then the error; the event
/// being read when it happened is not delivered.
#[test]
fn failures_after_events_come_after_them() {
    let xml = "<trace>\n<event timestamp=\"5\" name=\"a\"/>\n<event timestamp=\"3\" name=\"a\"/>\n\
               <event timestamp=\"9\" name=\"a\"><field name=\"ok\" value=\"1\" type=\"int\"/>\
               <field name=\"n\" value=\"x\" type=\"long\"/></event>\n\
               <event timestamp=\"10\" name=\"a\"/></trace>";
    let mut s = XmlSource::from_bytes("late.xml", xml.as_bytes()).unwrap();
    assert_eq!(s.len(), 2);
    let (read, e) = common::drain(&mut s);
    let times: Vec<_> = read.iter().map(|r| r.ts).collect();
    assert_eq!(times, [3, 5]);
    let e = e.unwrap();
    assert_eq!(e.offset, at(xml, "\"x\"") + 1);
    assert!(matches!(e.kind, ErrorKind::Xml(XmlError::BadNumber { .. })));

    // A second root, or text, after </trace>.
    let xml = "<trace><event timestamp=\"1\" name=\"a\"/></trace>\n<trace/>";
    let (events, offset, kind) = fails(xml);
    assert!(malformed(&kind), "{kind:?}");
    assert_eq!((events, offset), (1, at(xml, "<trace/>")));
    let xml = "<trace><event timestamp=\"1\" name=\"a\"/></trace>\njunk";
    let (events, offset, kind) = fails(xml);
    assert!(malformed(&kind), "{kind:?}");
    assert_eq!((events, offset), (1, at(xml, "junk")));
}

fn warning(file: &str, offset: u64, kind: XmlError) -> String {
    TraceError::new(file, offset, kind).to_string()
}

/// Elements the schema does not have are skipped with what they hold, counted and warned of,
/// once per element name with how often it occurred.
#[test]
fn unknown_elements_are_skipped_and_counted() {
    let xml = "<trace>\n<marker/>\n<event timestamp=\"1\" name=\"a\">\
               <extra><field name=\"hidden\" value=\"1\" type=\"int\"/></extra>\
               <field name=\"n\" value=\"2\" type=\"long\"/></event>\n<marker>x</marker>\n</trace>";
    let mut s = XmlSource::from_bytes("u.xml", xml.as_bytes()).unwrap();
    let read = rows(&mut s);
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].fields.len(), 1);
    assert_eq!(read[0].int("n"), 2);
    let stats = s.stats();
    assert_eq!(stats.unknown_events, 3);
    assert_eq!(stats.events, 1);
    assert_eq!(
        stats.warnings,
        [
            format!(
                "{} (2 times, the first here)",
                warning(
                    "u.xml",
                    at(xml, "<marker"),
                    XmlError::UnknownElement {
                        element: "marker".into()
                    }
                )
            ),
            warning(
                "u.xml",
                at(xml, "<extra"),
                XmlError::UnknownElement {
                    element: "extra".into()
                }
            ),
        ]
    );
}

#[test]
fn stray_text_is_a_warning() {
    let xml = "<trace><event timestamp=\"1\" name=\"a\">words</event></trace>";
    let mut s = XmlSource::from_bytes("t.xml", xml.as_bytes()).unwrap();
    assert_eq!(rows(&mut s).len(), 1);
    assert_eq!(
        s.stats().warnings,
        [warning(
            "t.xml",
            at(xml, "words"),
            XmlError::StrayText {
                element: "event".into()
            }
        )]
    );
}

#[test]
fn a_field_named_twice_keeps_the_first() {
    let xml = "<trace><event timestamp=\"1\" name=\"a\">\
               <field name=\"n\" value=\"1\" type=\"long\"/>\
               <field name=\"n\" value=\"2\" type=\"long\"/></event></trace>";
    let mut s = XmlSource::from_bytes("d.xml", xml.as_bytes()).unwrap();
    let read = rows(&mut s);
    assert_eq!(read[0].fields.len(), 1);
    assert_eq!(read[0].int("n"), 1);
    let second = xml.rfind("name=\"n\"").unwrap() as u64 + 6;
    assert_eq!(
        s.stats().warnings,
        [warning(
            "d.xml",
            second,
            XmlError::DuplicateField {
                event: "a".into(),
                field: "n".into()
            }
        )]
    );
}

/// A field whose type changes kind between events: the class keeps the first kind, each event
/// its own value, and a warning says so.
#[test]
fn type_conflicts_keep_each_value() {
    let event = |ts: u32, value: &str, ty: &str| {
        format!(
            "<event timestamp=\"{ts}\" name=\"a\">\
             <field name=\"v\" value=\"{value}\" type=\"{ty}\"/></event>"
        )
    };
    let xml = format!(
        "<trace>{}{}{}</trace>",
        event(1, "1", "long"),
        event(2, "one", "string"),
        event(3, "3", "int")
    );
    let xml = xml.as_str();
    let mut s = XmlSource::from_bytes("c.xml", xml.as_bytes()).unwrap();
    assert_eq!(s.classes()[0].fields[0].kind, FieldKind::Int);
    let read = rows(&mut s);
    assert_eq!(read[0].int("v"), 1);
    assert_eq!(read[1].string("v"), "one");
    assert_eq!(read[2].int("v"), 3);
    let second = at(xml, "<field name=\"v\" value=\"one\"");
    assert_eq!(
        s.stats().warnings,
        [warning(
            "c.xml",
            second,
            XmlError::TypeConflict {
                event: "a".into(),
                field: "v".into(),
                first: "long",
                now: "string"
            }
        )]
    );
}

/// The byte-order mark is skipped, and offsets still count it.
#[test]
fn offsets_count_a_byte_order_mark() {
    let xml = "\u{feff}<trace><event timestamp=\"x\" name=\"a\"/></trace>";
    let (_, offset, kind) = fails(xml);
    assert_eq!(kind, XmlError::BadTimestamp { value: "x".into() });
    assert_eq!(offset, at(xml, "x\""));
    assert_eq!(read_str("bom.xml", &xml.replace('x', "4"))[0].ts, 4);
}

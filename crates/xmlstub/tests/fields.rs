//! Every field type through every accessor, classes made of the fields their events use, the
//! CPU from the `cpu` field, and the cursor's interest and seek.

mod common;

use common::{read_str, rows};
use virtflow_trace::error::XmlError;
use virtflow_trace::{
    ClassId, EventHeader, EventSource, FieldId, FieldKind, PassedOver, Step, TraceError, Value,
    ValueBuilder,
};
use virtflow_xmlstub::testing::{to_xml, StubEvent};
use virtflow_xmlstub::XmlSource;

fn every_type() -> Vec<StubEvent> {
    vec![StubEvent::new(100, "typed")
        .cpu(3)
        .int("i", -2147483648)
        .long("l", 9223372036854775807)
        .string("s", "a <b> & \"c\" 'd' é\tz")
        .double("d", -1.25e-3)
        .int_array("ia", &[1, -2, 2147483647])
        .long_array("la", &[-9223372036854775808, 0, 5])
        .long_array("empty", &[])]
}

fn field(source: &XmlSource, name: &str) -> FieldId {
    source.field(ClassId(0), name).unwrap()
}

/// Each type's kind, value and accessors, per the `EventSource` contract: integers through
/// `u64` (reinterpreted) and `i64`, strings through `str`, every field through `value`.
#[test]
fn every_field_type() {
    let xml = to_xml(&every_type());
    let mut s = XmlSource::from_bytes("typed.xml", xml.as_bytes()).unwrap();
    let kinds: Vec<_> = s.classes()[0]
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("cpu", FieldKind::Int),
            ("i", FieldKind::Int),
            ("l", FieldKind::Int),
            ("s", FieldKind::Str),
            ("d", FieldKind::Float),
            ("ia", FieldKind::Compound),
            ("la", FieldKind::Compound),
            ("empty", FieldKind::Compound),
        ]
    );
    let Ok(Step::Event(h)) = s.advance() else {
        panic!()
    };
    assert_eq!(h.ts, 100);
    assert_eq!(h.cpu, 3);
    assert_eq!(h.stream, 0);
    let (i, l, st, d, ia, la, empty) = (
        field(&s, "i"),
        field(&s, "l"),
        field(&s, "s"),
        field(&s, "d"),
        field(&s, "ia"),
        field(&s, "la"),
        field(&s, "empty"),
    );
    assert_eq!(s.i64(i), Some(-2147483648));
    assert_eq!(s.u64(i), Some((-2147483648i64) as u64));
    assert_eq!(s.i64(l), Some(i64::MAX));
    assert_eq!(s.u64(l), Some(i64::MAX as u64));
    assert_eq!(s.str(i), None);
    assert_eq!(s.str(st), Some("a <b> & \"c\" 'd' é\tz"));
    assert_eq!(s.u64(st), None);
    assert_eq!(s.i64(st), None);
    assert_eq!(s.value(d), Some(Value::Float(-1.25e-3)));
    assert_eq!(s.i64(d), None);
    assert_eq!(s.str(d), None);
    assert_eq!(
        s.value(ia),
        Some(Value::Array(vec![
            Value::Int(1),
            Value::Int(-2),
            Value::Int(2147483647)
        ]))
    );
    assert_eq!(
        s.value(la),
        Some(Value::Array(vec![
            Value::Int(i64::MIN),
            Value::Int(0),
            Value::Int(5)
        ]))
    );
    assert_eq!(s.value(empty), Some(Value::Array(vec![])));
    assert_eq!(s.u64(ia), None);
    assert_eq!(s.i64(la), None);
    // The CPU stays a field too.
    assert_eq!(s.i64(field(&s, "cpu")), Some(3));
    // A field id beyond the class: absent, not a panic.
    assert_eq!(s.value(FieldId(99)), None);
    assert_eq!(s.advance(), Ok(Step::End));
    // No current event after the end.
    assert_eq!(s.i64(i), None);
}

/// `visit_fields` (the trait's default, through `value`) gives what `for_each_value` gives.
#[test]
fn visits_give_the_values() {
    let xml = to_xml(&every_type());
    let mut s = XmlSource::from_bytes("typed.xml", xml.as_bytes()).unwrap();
    let Ok(Step::Event(h)) = s.advance() else {
        panic!()
    };
    let mut whole = Vec::new();
    s.for_each_value(h.class, &mut |id, v| whole.push((id, v.into_owned())));
    let mut visited = Vec::new();
    let mut builder = ValueBuilder::new(|id, v| visited.push((id, v)));
    s.visit_fields(h.class, &mut builder).unwrap();
    assert!(!builder.incomplete());
    drop(builder);
    assert_eq!(whole.len(), 8);
    assert_eq!(visited, whole);
}

/// A class's fields are the union of those its events name, in first-seen order; an event
/// without a field reads it as absent.
#[test]
fn classes_take_the_union_of_their_fields() {
    let xml = to_xml(&[
        StubEvent::new(1, "e").long("a", 1),
        StubEvent::new(2, "f").string("x", "only f"),
        StubEvent::new(3, "e").long("b", 2).long("a", 3),
        StubEvent::new(4, "e"),
    ]);
    let mut s = XmlSource::from_bytes("u.xml", xml.as_bytes()).unwrap();
    let names = |c: usize| -> Vec<String> {
        s.classes()[c]
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect()
    };
    assert_eq!(names(0), ["a", "b"]);
    assert_eq!(names(1), ["x"]);
    assert_eq!(s.classes()[0].system, "");
    let (a, b) = (FieldId(0), FieldId(1));
    let mut seen = Vec::new();
    while let Ok(Step::Event(h)) = s.advance() {
        if h.class == ClassId(0) {
            seen.push((h.ts, s.i64(a), s.i64(b)));
        }
        // No cpu field: no CPU.
        assert_eq!(h.cpu, EventHeader::NO_CPU);
    }
    assert_eq!(
        seen,
        [(1, Some(1), None), (3, Some(3), Some(2)), (4, None, None)]
    );
}

/// Values as XML writes them: entities and character references decoded, surrounding blanks
/// around numbers allowed, single quotes, a field written with an end tag, comments.
#[test]
fn xml_forms_of_values() {
    let xml = r#"<?xml version="1.0"?>
<!-- a comment before the root -->
<trace>
  <set_aspects><field name="cpu" value="1" type="int"/></set_aspects>
  <event timestamp=" 7 " name='x&amp;y'>
    <field name="cpu" value="2" type="int"></field>
    <field name="s" value="&lt;&#65;&#x42;&quot;&apos;" type="string"/>
    <!-- a comment between fields -->
    <field name="n" value=" -5 " type="long"/>
    <field name="arr" value="1, 2 ,3" type="intArray"/>
    <field name="sp" value="a&#9;b
c" type="string"/>
  </event>
</trace>
"#;
    let r = read_str("forms.xml", xml);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].ts, 7);
    assert_eq!(r[0].name, "x&y");
    assert_eq!(r[0].cpu, 2);
    assert_eq!(r[0].string("s"), "<AB\"'");
    assert_eq!(r[0].int("n"), -5);
    assert_eq!(
        r[0].get("arr"),
        Some(&Value::Array(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Int(3)
        ]))
    );
    // A line break in an attribute value is a space (XML's normalisation); a character
    // reference is kept as written.
    assert_eq!(r[0].string("sp"), "a\tb c");
}

/// The `cpu` field: an `int` or `long` from 0 gives the CPU; anything else leaves the event
/// without one, with a warning.
#[test]
fn cpu_from_the_cpu_field() {
    let xml = to_xml(&[
        StubEvent::new(1, "a").long("cpu", 7),
        StubEvent::new(2, "a").int("cpu", -1),
        StubEvent::new(3, "a").string("cpu", "1"),
        StubEvent::new(4, "a").long("cpu", 4294967295),
        StubEvent::new(5, "a").long("cpu", 4294967294),
    ]);
    let mut s = XmlSource::from_bytes("cpu.xml", xml.as_bytes()).unwrap();
    let cpus: Vec<_> = rows(&mut s).iter().map(|r| r.cpu).collect();
    let none = EventHeader::NO_CPU;
    assert_eq!(cpus, [7, none, none, none, 4294967294]);
    let value_of = |v: &str| xml.find(&format!("\"cpu\" value=\"{v}\"")).unwrap() as u64 + 13;
    let bad = |v: &str| {
        TraceError::new("cpu.xml", value_of(v), XmlError::BadCpu { value: v.into() }).to_string()
    };
    let conflict = TraceError::new(
        "cpu.xml",
        xml.find("<field name=\"cpu\" value=\"1\"").unwrap() as u64,
        XmlError::TypeConflict {
            event: "a".into(),
            field: "cpu".into(),
            first: "long",
            now: "string",
        },
    );
    assert_eq!(
        s.stats().warnings,
        [bad("-1"), conflict.to_string(), bad("1"), bad("4294967295")]
    );
}

/// Under an interest, only the chosen classes are announced, and the first event of another
/// class on each CPU; the others are passed over but counted in the events read, and told by
/// `passed_over`.
#[test]
fn interest_passes_over_other_classes() {
    let xml = to_xml(&[
        StubEvent::new(1, "a").long("v", 1),
        StubEvent::new(2, "b").long("v", 2),
        StubEvent::new(3, "a").long("v", 3),
        StubEvent::new(4, "c"),
        StubEvent::new(5, "b").long("v", 5),
    ]);
    let mut s = XmlSource::from_bytes("i.xml", xml.as_bytes()).unwrap();
    s.set_interest(Some(&[ClassId(0), ClassId(7)]));
    let read = rows(&mut s);
    let got: Vec<_> = read.iter().map(|r| (r.ts, r.int("v"))).collect();
    assert_eq!(got, [(1, 1), (2, 2), (3, 3)]);
    assert_eq!(s.stats().events, 5);
    assert_eq!(
        s.passed_over(0),
        PassedOver {
            events: 2,
            last: Some(5)
        }
    );
    let mut s = XmlSource::from_bytes("i.xml", xml.as_bytes()).unwrap();
    s.set_interest(Some(&[]));
    let read = rows(&mut s);
    assert_eq!(read.iter().map(|r| r.ts).collect::<Vec<_>>(), [1]);
    assert_eq!(s.stats().events, 5);
    assert_eq!(s.passed_over(0).events, 4);
}

/// Seeking gives the first event at or after the time, whatever was read before.
#[test]
fn seek_finds_the_first_event_at_or_after() {
    let xml = to_xml(&[
        StubEvent::new(10, "a"),
        StubEvent::new(20, "a"),
        StubEvent::new(20, "b"),
        StubEvent::new(30, "a"),
    ]);
    let mut s = XmlSource::from_bytes("s.xml", xml.as_bytes()).unwrap();
    let ts = |s: &mut XmlSource| -> Vec<(i64, u32)> {
        rows(s)
            .iter()
            .map(|r| (r.ts, s.classes_named(&r.name)[0].0))
            .collect()
    };
    assert_eq!(s.seek(15), Ok(true));
    assert_eq!(ts(&mut s), [(20, 0), (20, 1), (30, 0)]);
    assert_eq!(s.seek(20), Ok(true));
    assert_eq!(ts(&mut s), [(20, 0), (20, 1), (30, 0)]);
    assert_eq!(s.seek(i64::MIN), Ok(true));
    assert_eq!(ts(&mut s).len(), 4);
    assert_eq!(s.seek(31), Ok(true));
    assert_eq!(s.advance(), Ok(Step::End));
}

/// A missing file is an I/O error naming it.
#[test]
fn a_missing_file_is_an_io_error() {
    let path = std::env::temp_dir().join("virtflow-xmlstub-no-such-file.xml");
    let Err(TraceError { path: p, kind, .. }) = XmlSource::open(&path) else {
        panic!("opened a missing file")
    };
    assert_eq!(p, path);
    assert!(matches!(
        kind,
        virtflow_trace::ErrorKind::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }
    ));
}

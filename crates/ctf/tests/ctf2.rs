//! CTF 2 traces (JSON metadata): every one reads to its end, and those that have a CTF 1.8
//! twin among babeltrace's conformance traces decode to the same events.

mod common;
use common::*;

#[test]
fn every_ctf2_trace_reads_like_its_ctf1_twin() {
    let dir = traces().join("ctf-conformance/tracecompass-ctf2");
    let mut list: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    list.sort();
    assert!(list.len() >= 10);
    let mut bad = Vec::new();
    for t in list {
        let name = t.file_name().unwrap().to_string_lossy().to_string();
        let (evs, err) = match ours(&t) {
            Ok(x) => x,
            Err(e) => {
                bad.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(e) = err {
            bad.push(format!("{name}: error after {} events: {e}", evs.len()));
            continue;
        }
        let twin = traces()
            .join("ctf-conformance/babeltrace/succeed")
            .join(name.trim_start_matches("CTF2-7.0-"));
        if name.starts_with("CTF2-7.0-") && twin.is_dir() {
            let (mut tw, _) = ours(&twin).unwrap();
            // The two recordings of debug-info differ in one library name.
            tw.iter_mut()
                .for_each(|e| e.fields = e.fields.replace("/libhello-so", "/libhello_so"));
            if let Err(e) = compare(&evs, &tw) {
                bad.push(format!("{name}: differs from its CTF 1.8 twin: {e}"));
                continue;
            }
        }
        eprintln!("ok {name}: {} events", evs.len());
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn variable_length_integers() {
    let t = traces().join("ctf-conformance/tracecompass-ctf2/CTF2-vl-ints");
    let (evs, err) = ours(&t).unwrap();
    assert!(err.is_none(), "{err:?}");
    assert!(!evs.is_empty());
    eprintln!("{}", evs[0].fields);
}

/// Every CTF 2 field class the test traces lack, on a hand-made trace.
#[test]
fn synthetic_ctf2_field_classes() {
    use virtflow_trace::{EventSource, FieldId, Step, Value};
    let u = |len: u32, extra: &str| {
        format!(
            r#"{{"type":"fixed-length-unsigned-integer","length":{len},"byte-order":"little-endian","alignment":8{extra}}}"#
        )
    };
    let loc = |n: &str| format!(r#"{{"origin":"event-record-payload","path":["{n}"]}}"#);
    let records = [
        r#"{"type":"preamble","version":2}"#.to_string(),
        r#"{"type":"field-class-alias","name":"u8","field-class":{"type":"fixed-length-unsigned-integer","length":8,"byte-order":"little-endian","alignment":8}}"#.to_string(),
        format!(r#"{{"type":"trace-class","environment":{{"hostname":"h"}},"packet-header-field-class":{{"type":"structure","member-classes":[{{"name":"magic","field-class":{}}}]}}}}"#, u(32, r#","roles":["packet-magic-number"]"#)),
        format!(r#"{{"type":"data-stream-class","event-record-header-field-class":{{"type":"structure","member-classes":[{{"name":"id","field-class":{}}}]}}}}"#, u(8, r#","roles":["event-record-class-id"]"#)),
        format!(
            r#"{{"type":"event-record-class","id":0,"name":"ev","payload-field-class":{{"type":"structure","member-classes":[
                {{"name":"b","field-class":{{"type":"fixed-length-boolean","length":8,"byte-order":"little-endian","alignment":8}}}},
                {{"name":"n","field-class":"u8"}},
                {{"name":"arr","field-class":{{"type":"dynamic-length-array","length-field-location":{l},"element-field-class":{u16}}}}},
                {{"name":"sl","field-class":{{"type":"static-length-string","length":4}}}},
                {{"name":"dl","field-class":{{"type":"dynamic-length-string","length-field-location":{l}}}}},
                {{"name":"blob","field-class":{{"type":"static-length-blob","length":2}}}},
                {{"name":"dblob","field-class":{{"type":"dynamic-length-blob","length-field-location":{l}}}}},
                {{"name":"opt_sel","field-class":"u8"}},
                {{"name":"opt","field-class":{{"type":"optional","selector-field-location":{os},"field-class":"u8","selector-field-ranges":[[1,3]]}}}},
                {{"name":"be","field-class":{{"type":"fixed-length-signed-integer","length":12,"byte-order":"big-endian","alignment":1}}}},
                {{"name":"f","field-class":{{"type":"fixed-length-floating-point-number","length":32,"byte-order":"little-endian","alignment":8}}}},
                {{"name":"sarr","field-class":{{"type":"static-length-array","length":2,"element-field-class":{{"type":"variable-length-signed-integer"}}}}}}
            ]}}}}"#,
            l = loc("n"),
            os = loc("opt_sel"),
            u16 = u(16, "")
        ),
    ];
    let mut meta = Vec::new();
    for r in &records {
        meta.push(0x1e);
        meta.extend_from_slice(r.as_bytes());
        meta.push(b'\n');
    }
    let stream: Vec<u8> = [
        &[0xc1, 0x1f, 0xfc, 0xc1][..], // magic
        &[0],                          // id
        &[1, 2],                       // b, n
        &[0x02, 0x01, 0x04, 0x03],     // arr
        b"ab\0\0",                     // sl
        b"xy",                         // dl
        &[0xde, 0xad, 0xbe, 0xef],     // blob, dblob
        &[1, 7],                       // opt_sel, opt
        &[0xff, 0xe0],                 // be: -2 on 12 bits
        &1.5f32.to_le_bytes(),         // f
        &[0x7f, 0x80, 0x01],           // sarr: -1, 128
    ]
    .concat();
    let mut src = virtflow_ctf::CtfSource::from_memory(&meta, vec![stream]).unwrap();
    assert_eq!(src.hostname().as_deref(), Some("h"));
    let Step::Event(h) = src.advance().unwrap() else {
        panic!()
    };
    let c = src.classes()[h.class.0 as usize].clone();
    let get = |name: &str| {
        src.value(FieldId(
            c.fields.iter().position(|f| f.name == name).unwrap() as u32,
        ))
        .unwrap()
        .into_owned()
    };
    assert_eq!(get("b"), Value::Bool(true));
    assert_eq!(get("n"), Value::UInt(2));
    assert_eq!(
        get("arr"),
        Value::Array(vec![Value::UInt(0x0102), Value::UInt(0x0304)])
    );
    assert_eq!(get("sl"), Value::Str("ab".into()));
    assert_eq!(get("dl"), Value::Str("xy".into()));
    assert_eq!(get("blob"), Value::Bytes(vec![0xde, 0xad].into()));
    assert_eq!(get("dblob"), Value::Bytes(vec![0xbe, 0xef].into()));
    assert_eq!(get("opt"), Value::UInt(7));
    assert_eq!(get("be"), Value::Int(-2));
    assert_eq!(get("f"), Value::Float(1.5));
    assert_eq!(
        get("sarr"),
        Value::Array(vec![Value::Int(-1), Value::Int(128)])
    );
    let be = FieldId(c.fields.iter().position(|f| f.name == "be").unwrap() as u32);
    assert_eq!(src.i64(be), Some(-2));
    let sl = FieldId(c.fields.iter().position(|f| f.name == "sl").unwrap() as u32);
    assert_eq!(src.str(sl), Some("ab"));
    assert_eq!(src.advance().unwrap(), Step::End);
}

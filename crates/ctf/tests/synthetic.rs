//! Hand-made CTF 1.8 traces for what the real ones exercise little: big-endian data, timestamp
//! wrap-around of a short clock-mapped integer, sequences, variants, several streams merged.

use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, FieldId, Step, Value};

const META: &str = r#"/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 16; align = 8; signed = false; } := uint16_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
typealias integer { size = 64; align = 8; signed = false; map = clock.c.value; } := uint64_clock_t;
typealias integer { size = 8; align = 8; signed = false; map = clock.c.value; } := uint8_clock_t;
trace { major = 1; minor = 8; byte_order = be;
  packet.header := struct { uint32_t magic; uint32_t stream_id; };
};
clock { name = c; freq = 1000000000; offset_s = 1; offset = 0; };
stream { id = 0;
  packet.context := struct { uint64_clock_t timestamp_begin; uint64_clock_t timestamp_end; uint16_t content_size; uint16_t packet_size; uint8_t cpu_id; };
  event.header := struct { uint8_t id; uint8_clock_t timestamp; };
};
event { name = "e"; id = 1; stream_id = 0;
  fields := struct {
    uint8_t len;
    integer { size = 4; signed = true; align = 1; } seq[len];
    enum : uint8_t { A = 0, B = 1 } tag;
    variant <tag> { uint16_t A; string B; } v;
  };
};
"#;

/// One packet: header, context, then events given as (ts byte, len, nibbles, tag, payload).
fn packet(cpu: u8, begin: u64, events: &[(u8, &[u8], u8, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (ts, seq, tag, rest) in events {
        body.push(1);
        body.push(*ts);
        body.push(seq.len() as u8);
        // 4-bit big-endian integers, most significant bits first.
        let mut bits = Vec::new();
        for (i, s) in seq.iter().enumerate() {
            if i % 2 == 0 {
                bits.push(s << 4);
            } else {
                *bits.last_mut().unwrap() |= s & 0xf;
            }
        }
        body.extend(bits);
        body.push(*tag);
        body.extend_from_slice(rest);
    }
    let header_len = 8 + 8 + 8 + 2 + 2 + 1;
    let size = ((header_len + body.len()) * 8) as u16;
    let mut p = Vec::new();
    p.extend_from_slice(&0xC1FC1FC1u32.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&begin.to_be_bytes());
    p.extend_from_slice(&(begin + 1000).to_be_bytes());
    p.extend_from_slice(&size.to_be_bytes());
    p.extend_from_slice(&size.to_be_bytes());
    p.push(cpu);
    p.extend(body);
    p
}

#[test]
fn big_endian_wraparound_sequences_variants_merge() {
    // Stream 0: clock starts at 256; raw 8-bit timestamps 250, 5 (wrapped), 10.
    let mut s0 = packet(
        0,
        256,
        &[
            (250, &[1, 0xf], 0, &[0x12, 0x34]),
            (5, &[], 1, b"hi\0"),
            (10, &[7, 8, 0xe], 0, &[0, 1]),
        ],
    );
    // A second packet whose begin timestamp resets the clock.
    s0.extend(packet(0, 1000, &[(0xf0, &[], 1, b"\0")]));
    // Stream 1 interleaves: 300, 520.
    let s1 = packet(1, 300, &[(44, &[2], 1, b"x\0"), (8, &[], 0, &[0xff, 0xff])]);
    let mut src = CtfSource::from_memory(META.as_bytes(), vec![s0, s1]).unwrap();
    let c = src.classes()[0].clone();
    let fid = |n: &str| FieldId(c.fields.iter().position(|f| f.name == n).unwrap() as u32);
    let mut got = Vec::new();
    loop {
        match src.advance().unwrap() {
            Step::Event(h) => {
                let v = src.value(fid("v")).unwrap().into_owned();
                let seq = src.value(fid("seq")).unwrap().into_owned();
                got.push((h.ts - 1_000_000_000, h.cpu, src.u64(fid("cpu_id")), seq, v));
            }
            Step::Lost(_) => panic!("no loss here"),
            Step::End => break,
        }
    }
    let ints = |v: &[i64]| Value::Array(v.iter().map(|x| Value::Int(*x)).collect());
    let var = |n: &str, v: Value<'static>| Value::Variant(n.to_string().into(), Box::new(v));
    assert_eq!(
        got,
        vec![
            (
                300,
                1,
                Some(1),
                ints(&[2]),
                var("B", Value::Str("x".into()))
            ),
            (
                506,
                0,
                Some(0),
                ints(&[1, -1]),
                var("A", Value::UInt(0x1234))
            ),
            (
                517,
                0,
                Some(0),
                ints(&[]),
                var("B", Value::Str("hi".into()))
            ),
            (520, 1, Some(1), ints(&[]), var("A", Value::UInt(0xffff))),
            (
                522,
                0,
                Some(0),
                ints(&[7, -8, -2]),
                var("A", Value::UInt(1))
            ),
            (1008, 0, Some(0), ints(&[]), var("B", Value::Str("".into()))),
        ]
    );
}

#[test]
fn truncated_packet_gives_events_then_error_with_offset() {
    let mut s0 = packet(0, 256, &[(1, &[], 0, &[0, 1]), (2, &[], 0, &[0, 2])]);
    s0.extend(packet(0, 1000, &[(3, &[], 0, &[0, 3])]));
    let n = s0.len();
    s0.truncate(n - 1);
    let mut src = CtfSource::from_memory(META.as_bytes(), vec![s0]).unwrap();
    assert!(matches!(src.advance(), Ok(Step::Event(_))));
    assert!(matches!(src.advance(), Ok(Step::Event(_))));
    let e = src.advance().unwrap_err();
    assert_eq!(e.path, std::path::Path::new("stream0"));
    assert!(e.offset > 0, "{e}");
    assert!(
        matches!(
            e.kind,
            virtflow_trace::ErrorKind::Ctf(
                virtflow_trace::error::CtfError::PacketBeyondFile { .. }
            )
        ),
        "{e}"
    );
    assert_eq!(src.advance(), Ok(Step::End));
}

/// Enumerations at fixed offsets — one in the packet context, one in the payload — are read
/// with their labels by every path: one field at a time, the whole event, and `dump`'s text.
#[test]
fn enumerations_at_fixed_offsets_in_every_scope() {
    const META: &str = r#"/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 16; align = 8; signed = false; } := uint16_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
trace { major = 1; minor = 8; byte_order = le;
  packet.header := struct { uint32_t magic; };
};
stream {
  packet.context := struct {
    uint16_t content_size; uint16_t packet_size;
    enum : uint8_t { IDLE = 0, BUSY = 1 } mode;
    uint8_t cpu_id;
  };
  event.header := struct { uint8_t id; };
};
event { name = "e"; id = 0; fields := struct { enum : uint8_t { X = 3, Y = 4 } kind; uint32_t n; }; };
"#;
    // Header (4), context (2 + 2 + 1 + 1), then two events of id, kind and n (1 + 1 + 4).
    let mut p = Vec::new();
    p.extend_from_slice(&0xC1FC1FC1u32.to_le_bytes());
    let size = ((4 + 6 + 2 * 6) * 8) as u16;
    p.extend_from_slice(&size.to_le_bytes());
    p.extend_from_slice(&size.to_le_bytes());
    p.extend_from_slice(&[1, 2]);
    for (kind, n) in [(4u8, 7u32), (3, 9)] {
        p.push(0);
        p.push(kind);
        p.extend_from_slice(&n.to_le_bytes());
    }
    let mut src = CtfSource::from_memory(META.as_bytes(), vec![p]).unwrap();
    let label = |v: u64, l: &str| Value::Enum(Box::new(Value::UInt(v)), vec![l.to_string().into()]);
    let expected = [
        (label(4, "Y"), 7, " mode=1(BUSY) cpu_id=2 kind=4(Y) n=7"),
        (label(3, "X"), 9, " mode=1(BUSY) cpu_id=2 kind=3(X) n=9"),
    ];
    for (kind, n, text) in expected {
        let Step::Event(h) = src.advance().unwrap() else {
            panic!("an event expected")
        };
        let class = &src.classes()[h.class.0 as usize];
        let names: Vec<&str> = class.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["mode", "cpu_id", "kind", "n"]);
        let want = [label(1, "BUSY"), Value::UInt(2), kind, Value::UInt(n)];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(
                src.value(FieldId(i as u32)).as_ref(),
                Some(w),
                "{}",
                names[i]
            );
        }
        let mut whole = Vec::new();
        src.for_each_value(h.class, &mut |_, v| whole.push(v.into_owned()));
        assert_eq!(whole, want);
        let mut out = Vec::new();
        let fields = class.fields.clone();
        let mut writer = virtflow_trace::text::TextFields::new(&mut out, &fields);
        src.visit_fields(h.class, &mut writer).unwrap();
        writer.result.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }
    assert!(matches!(src.advance().unwrap(), Step::End));
}

//! `for_each_value` and `visit_fields` read a whole record in one pass, through the integer
//! shortcuts: on every event of the real `.dat` files they must give exactly what `value()`
//! gives field by field (the path the differential tests check against `trace-cmd report`),
//! and `dump`'s text writer, fed by `visit_fields`, must write those values as their `Display`
//! does.

mod common;
use virtflow_ftrace::DatSource;
use virtflow_trace::text::TextFields;
use virtflow_trace::{EventSource, FieldId, Step};

#[test]
fn whole_events_equal_field_by_field_values() {
    let files = common::real_dat_files();
    assert!(!files.is_empty(), "no .dat file found");
    for path in files {
        let mut src = DatSource::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut events = 0u64;
        loop {
            match src.advance().unwrap_or_else(|e| panic!("{e}")) {
                Step::Event(h) => {
                    events += 1;
                    let mut whole = Vec::new();
                    src.for_each_value(h.class, &mut |id, v| whole.push((id, v.into_owned())));
                    let n = src.classes()[h.class.0 as usize].fields.len();
                    let single: Vec<_> = (0..n as u32)
                        .filter_map(|i| src.value(FieldId(i)).map(|v| (FieldId(i), v.into_owned())))
                        .collect();
                    assert_eq!(whole, single, "{} at {}", path.display(), h.ts);
                    let fields = &src.classes()[h.class.0 as usize].fields;
                    let mut text = Vec::new();
                    let mut writer = TextFields::new(&mut text, fields);
                    src.visit_fields(h.class, &mut writer).unwrap();
                    writer.result.unwrap();
                    let expected: String = single
                        .iter()
                        .map(|(id, v)| format!(" {}={v}", fields[id.0 as usize].name))
                        .collect();
                    assert_eq!(
                        String::from_utf8_lossy(&text),
                        expected,
                        "{} at {}",
                        path.display(),
                        h.ts
                    );
                }
                Step::Lost(_) => {}
                Step::End => break,
            }
        }
        assert!(events > 0, "{}: no event", path.display());
    }
}

//! The XML stub trace reader on arbitrary files: never a panic; a file either fails to open
//! with an error inside it, or gives at least one event, in time order, every field readable
//! through every accessor, then the end or an error inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtflow_trace::{EventSource, FieldId, Step};
use virtflow_xmlstub::{looks_like_stub, XmlSource};

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_stub(data);
    let len = data.len() as u64;
    let mut source = match XmlSource::from_bytes("fuzz.xml", data) {
        Ok(source) => source,
        Err(e) => {
            assert!(e.offset <= len, "{e:?}");
            return;
        }
    };
    assert!(!source.is_empty(), "opened with no event");
    let mut last = i64::MIN;
    loop {
        match source.advance() {
            Ok(Step::Event(h)) => {
                assert!(h.ts >= last, "out of order");
                last = h.ts;
                let fields = source.classes()[h.class.0 as usize].fields.len();
                for i in 0..fields as u32 {
                    let f = FieldId(i);
                    let _ = (source.u64(f), source.i64(f), source.str(f), source.value(f));
                }
            }
            Ok(Step::Lost(l)) => panic!("a stub trace has no losses: {l:?}"),
            Ok(Step::End) => break,
            Err(e) => {
                assert!(e.offset <= len, "{e:?}");
                assert_eq!(source.advance(), Ok(Step::End));
                break;
            }
        }
    }
    let _ = source.stats();
});

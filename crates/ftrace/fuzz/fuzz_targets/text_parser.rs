//! The ftrace text reader on arbitrary bytes: it must never panic, whatever the lines hold,
//! and every field of every event must be readable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtflow_ftrace::TextSource;
use virtflow_trace::{EventSource, FieldId, Step};

fuzz_target!(|data: &[u8]| {
    let Ok(mut src) = TextSource::from_bytes(std::path::Path::new("fuzz"), data.to_vec()) else {
        return;
    };
    while let Ok(step) = src.advance() {
        match step {
            Step::Event(h) => {
                let n = src.classes()[h.class.0 as usize].fields.len();
                for i in 0..n as u32 {
                    let _ = src.value(FieldId(i));
                    let _ = src.u64(FieldId(i));
                    let _ = src.str(FieldId(i));
                }
            }
            Step::Lost(_) => {}
            Step::End => break,
        }
    }
    let _ = src.stats();
});

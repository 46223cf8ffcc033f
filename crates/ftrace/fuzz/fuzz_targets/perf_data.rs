//! The perf.data reader on arbitrary files, opened and drained with every field read: never a
//! panic, and an error's offset lies inside the file. A useful corpus starts from real
//! recordings (`perf record -e 'sched:*' -o seed.data`, pipe mode with `-o -`, `-z`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtflow_ftrace::PerfSource;
use virtflow_trace::{EventSource, FieldId, Step};

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let mut source = match PerfSource::from_bytes("fuzz.data", data.to_vec()) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.offset <= len, "{e:?}");
            return;
        }
    };
    loop {
        match source.advance() {
            Ok(Step::End) => break,
            Ok(Step::Lost(_)) => {}
            Ok(Step::Event(h)) => {
                let n = source.classes()[h.class.0 as usize].fields.len();
                source.for_each_value(h.class, &mut |_, _| {});
                for i in 0..=n {
                    let f = FieldId(i as u32);
                    let _ = (source.u64(f), source.str(f));
                }
            }
            Err(e) => {
                assert!(e.offset <= len, "{e:?}");
                assert_eq!(source.advance(), Ok(Step::End));
                break;
            }
        }
    }
    let _ = source.stats();
});

//! The `.dat` metadata parser (file header, sections, options, formats) on arbitrary files:
//! never a panic, and an error's offset lies inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = virtflow_ftrace::dat::meta::parse(data) {
        assert!(e.offset <= data.len() as u64, "{e:?}");
    }
});

//! The tracefs format parser on arbitrary text, and the record decoder with whatever format
//! parsed on the rest of the input as a record: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtflow_ftrace::format::{parse_format, parse_header_page};
use virtflow_ftrace::record::{self, Endian};

fuzz_target!(|data: &[u8]| {
    // Text, then a NUL, then the record bytes.
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(text) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let rec = data.get(split + 1..).unwrap_or(&[]);
    let _ = parse_header_page(text);
    let Ok(format) = parse_format("fuzz", text) else {
        return;
    };
    let _ = record::event_class(&format);
    for endian in [Endian::Little, Endian::Big] {
        for f in &format.fields {
            let _ = record::read_u64(f, rec, endian);
            let _ = record::read_i64(f, rec, endian);
            let _ = record::read_str(f, rec, endian);
            let _ = record::read_value(f, rec, endian);
        }
    }
});

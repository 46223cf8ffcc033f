//! TSDL lexer, parser and field-location resolution on arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = virtflow_ctf::tsdl::parse(&text, std::path::Path::new("metadata"));
    // Packetized metadata too.
    let _ = virtflow_ctf::parse_metadata(data, std::path::Path::new("metadata"));
});

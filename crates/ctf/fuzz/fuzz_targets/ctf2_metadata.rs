//! CTF 2 metadata (JSON text sequence) on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut v = vec![0x1e];
    v.extend_from_slice(data);
    let _ = virtflow_ctf::ctf2::parse(&v, std::path::Path::new("metadata"));
});

//! Packet and event decoding: arbitrary stream bytes under the metadata of real traces (the
//! first input byte picks the metadata, and whether only every other class is read). Every
//! field of every announced event is decoded, one by one and in one pass.
#![no_main]
use libfuzzer_sys::fuzz_target;
use virtflow_trace::{ClassId, EventSource, FieldId, Step};

const METADATA: [&[u8]; 6] = [
    include_bytes!("../../../../../shared/traces/ctf-conformance/babeltrace/succeed/lttng-crash/metadata"),
    include_bytes!("../../../../../shared/traces/ctf-conformance/babeltrace/succeed/sequence/metadata"),
    include_bytes!("../../../../../shared/traces/ctf-conformance/babeltrace/succeed/struct-array-align-elem/metadata"),
    include_bytes!("../../../../../shared/traces/ctf-conformance/tracecompass-ctf2/CTF2-vl-ints/metadata"),
    include_bytes!("../../../../../shared/traces/perf-ctf/perf-taskset2/metadata"),
    // LTTng kernel, packetized, large headers and contexts, network events in nested variants.
    include_bytes!("../../../../../shared/traces/kvm-lab/s3_disk_lttng/lttng/kernel/metadata"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, stream)) = data.split_first() else { return };
    let meta = METADATA[sel as usize % METADATA.len()];
    let Ok(mut src) = virtflow_ctf::CtfSource::from_memory(meta, vec![stream.to_vec()]) else { return };
    let nf: Vec<usize> = src.classes().iter().map(|c| c.fields.len()).collect();
    if sel & 0x80 != 0 {
        let even: Vec<ClassId> = (0..nf.len() as u32).step_by(2).map(ClassId).collect();
        src.set_interest(Some(&even));
    }
    for _ in 0..100_000 {
        match src.advance() {
            Ok(Step::Event(h)) => {
                for f in 0..nf[h.class.0 as usize] {
                    let f = FieldId(f as u32);
                    let _ = src.value(f);
                    let _ = src.u64(f);
                    let _ = src.str(f);
                }
                src.for_each_value(h.class, &mut |_, v| {
                    std::hint::black_box(&v);
                });
            }
            Ok(Step::Lost(_)) => {}
            Ok(Step::End) | Err(_) => break,
        }
    }
});

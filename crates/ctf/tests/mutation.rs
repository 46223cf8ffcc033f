//! Robustness: real traces with flipped bits and truncations, and mutated metadata, must give
//! events or a `TraceError`, never a panic or a hang. (The fuzz targets in `fuzz/` do the same
//! with coverage guidance.)

mod common;
use common::*;
use std::path::Path;
use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, FieldId, Step};

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Reads everything, decoding every field of every event; bounded so a bug cannot hang.
fn drain(mut src: CtfSource) -> usize {
    let nf: Vec<usize> = src.classes().iter().map(|c| c.fields.len()).collect();
    let mut n = 0;
    for _ in 0..200_000 {
        match src.advance() {
            Ok(Step::Event(h)) => {
                n += 1;
                for f in 0..nf[h.class.0 as usize] {
                    let f = FieldId(f as u32);
                    let _ = src.value(f);
                    let _ = src.u64(f);
                    let _ = src.i64(f);
                    let _ = src.str(f);
                }
            }
            Ok(Step::Lost(_)) => {}
            Ok(Step::End) | Err(_) => return n,
        }
    }
    n
}

fn load(trace: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
    let meta = std::fs::read(trace.join("metadata")).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(trace)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().unwrap() != "metadata")
        .collect();
    files.sort();
    // Keep the inputs small: the first MiB of each stream.
    let streams = files
        .iter()
        .map(|f| {
            let mut d = std::fs::read(f).unwrap();
            d.truncate(1024 * 1024);
            d
        })
        .collect();
    (meta, streams)
}

fn corpus() -> Vec<std::path::PathBuf> {
    let t = traces();
    [
        "ctf-conformance/babeltrace/succeed/smalltrace",
        "ctf-conformance/babeltrace/succeed/lttng-crash",
        "ctf-conformance/babeltrace/succeed/sequence",
        "ctf-conformance/babeltrace/succeed/meta-variant-one-underscore",
        "ctf-conformance/babeltrace/succeed/debug-info",
        "ctf-conformance/babeltrace/succeed/struct-array-align-elem",
        "ctf-conformance/babeltrace/packet-seq-num/2-streams-lost-in-2",
        "ctf-conformance/tracecompass-ctf2/CTF2-7.0-lttng-crash",
        "ctf-conformance/tracecompass-ctf2/CTF2-vl-ints",
        "perf-ctf/perf-taskset2",
    ]
    .iter()
    .map(|p| t.join(p))
    .filter(|p| p.is_dir())
    .collect()
}

#[test]
fn mutated_streams_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for trace in corpus() {
        let (meta, streams) = load(&trace);
        // Unmutated first: it must read.
        let src = CtfSource::from_memory(&meta, streams.clone()).unwrap();
        assert!(drain(src) > 0, "{}", trace.display());
        for round in 0..60 {
            let mut s = streams.clone();
            let k = rng.below(s.len());
            let d = &mut s[k];
            if d.is_empty() {
                continue;
            }
            match round % 4 {
                0 => {
                    let n = rng.below(d.len());
                    d.truncate(n);
                }
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(d.len());
                        d[i] ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    // Early bytes hold the packet header and context: hit them harder.
                    let lim = d.len().min(128);
                    for _ in 0..1 + rng.below(3) {
                        let i = rng.below(lim);
                        d[i] = rng.next() as u8;
                    }
                }
                _ => {
                    let i = rng.below(d.len());
                    let v = [0x00, 0xff, 0x7f, 0x80][rng.below(4)];
                    for b in d.iter_mut().skip(i).take(8) {
                        *b = v;
                    }
                }
            }
            if let Ok(src) = CtfSource::from_memory(&meta, s) {
                drain(src);
            }
        }
    }
}

#[test]
fn mutated_metadata_never_panics() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for trace in corpus() {
        let (meta, streams) = load(&trace);
        for round in 0..80 {
            let mut m = meta.clone();
            match round % 3 {
                0 => {
                    let n = rng.below(m.len());
                    m.truncate(n);
                }
                1 => {
                    for _ in 0..1 + rng.below(3) {
                        let i = rng.below(m.len());
                        let alphabet = b"{}[]<>;:=.,_ 0123456789azAZ\"\x1e";
                        m[i] = alphabet[rng.below(alphabet.len())];
                    }
                }
                _ => {
                    // Swap two slices of lines.
                    let i = rng.below(m.len());
                    let j = rng.below(m.len());
                    let (a, b) = (i.min(j), i.max(j));
                    m[a..b].reverse();
                }
            }
            if let Ok(src) = CtfSource::from_memory(&m, streams.clone()) {
                drain(src);
            }
        }
    }
}

//! Damaged `.dat` files: cut at many offsets, bytes flipped in headers and pages. The reader
//! must never panic; it returns an error naming the file and a byte offset inside it, after
//! delivering the events it could read (each CPU's events a prefix of the intact file's).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use virtflow_ftrace::DatSource;
use virtflow_trace::error::{DatError, PageError};
use virtflow_trace::{ErrorKind, EventSource, Step, TraceError};

/// What identifies an event for these tests.
type Key = (i64, String, Option<i64>);

struct Outcome {
    /// Events per CPU, in order.
    per_cpu: BTreeMap<u32, Vec<Key>>,
    error: Option<TraceError>,
}

fn read_all(path: &Path) -> Outcome {
    let mut per_cpu: BTreeMap<u32, Vec<Key>> = BTreeMap::new();
    let mut source = match DatSource::open(path) {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                per_cpu,
                error: Some(e),
            }
        }
    };
    let pids: Vec<_> = (0..source.classes().len())
        .map(|c| source.field(virtflow_trace::ClassId(c as u32), "common_pid"))
        .collect();
    let mut n = 0u64;
    loop {
        match source.advance() {
            Ok(Step::End) => break,
            Ok(Step::Lost(_)) => {}
            Ok(Step::Event(h)) => {
                n += 1;
                let name = source.classes()[h.class.0 as usize].name.clone();
                let pid = pids[h.class.0 as usize].and_then(|f| source.i64(f));
                // Every accessor of every field must cope with damaged records.
                for i in 0..source.classes()[h.class.0 as usize].fields.len() {
                    let f = virtflow_trace::FieldId(i as u32);
                    let _ = (source.value(f), source.u64(f), source.str(f));
                }
                per_cpu.entry(h.cpu).or_default().push((h.ts, name, pid));
            }
            Err(e) => {
                assert_eq!(
                    source.advance(),
                    Ok(Step::End),
                    "a failed source is finished"
                );
                assert_eq!(source.stats().events, n);
                return Outcome {
                    per_cpu,
                    error: Some(e),
                };
            }
        }
    }
    Outcome {
        per_cpu,
        error: None,
    }
}

fn check_error(e: &TraceError, path: &Path, len: u64) {
    assert_eq!(e.path, path, "the error names the file: {e}");
    assert!(
        e.offset <= len,
        "offset {} beyond the file ({len}): {e}",
        e.offset
    );
    assert!(!e.to_string().is_empty());
}

/// Each CPU's events are a prefix of the intact file's.
fn check_prefix(got: &Outcome, full: &Outcome, what: &str) {
    for (cpu, events) in &got.per_cpu {
        let reference = &full.per_cpu[cpu];
        assert!(
            events.len() <= reference.len() && reference[..events.len()] == events[..],
            "{what}: CPU {cpu} events are not a prefix of the intact file's"
        );
    }
}

fn count(o: &Outcome) -> usize {
    o.per_cpu.values().map(Vec::len).sum()
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A version 6, uncompressed copy of a real trace (CPU data offsets in the header, pages in
/// the clear: the layout where a cut leaves the most to read).
fn v6_copy(dir: &Path) -> PathBuf {
    let src = common::traces_dir().join("kvm-lab/s1_idle/trace.dat");
    let dst = dir.join("v6.dat");
    common::convert(&src, &dst, "6", "none");
    dst
}

#[test]
fn truncated_v6_files_give_the_events_before_the_cut_then_an_error() {
    let dir = common::scratch("truncate-v6");
    let intact = v6_copy(&dir);
    let data = std::fs::read(&intact).unwrap();
    let full = read_all(&intact);
    assert!(full.error.is_none());
    let meta_source = DatSource::open(&intact).unwrap();
    let cpus = meta_source.meta().buffers[0].cpus.clone();
    let data_start = cpus.iter().map(|c| c.offset).min().unwrap();
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    let mut cuts: Vec<u64> = (0..40).map(|_| rng.below(data_start)).collect();
    cuts.extend((0..40).map(|_| data_start + rng.below(data.len() as u64 - data_start)));
    cuts.extend([0, 5, 10, 12, 13, 16, data_start, data.len() as u64 - 1]);
    let cut_path = dir.join("cut.dat");
    for cut in cuts {
        std::fs::write(&cut_path, &data[..cut as usize]).unwrap();
        let got = read_all(&cut_path);
        let what = format!("cut at {cut}");
        let e = got
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no error for a truncated file"));
        check_error(e, &cut_path, cut);
        check_prefix(&got, &full, &what);
        if cut >= data_start {
            // The data of some CPU goes on past the end of the file, which ends there.
            assert!(
                matches!(e.kind, ErrorKind::Dat(DatError::CpuDataTruncated { .. }))
                    && e.offset == cut,
                "{what}: {e}"
            );
        } else if cut < 10 {
            assert_eq!(
                e.kind,
                ErrorKind::Dat(DatError::BadMagic {
                    found: data[..cut as usize].to_vec()
                }),
                "{what}"
            );
        }
        // Every CPU whose data lies wholly before the cut is delivered in full.
        for c in &cpus {
            if c.offset + c.size <= cut && cut >= data_start {
                assert_eq!(
                    got.per_cpu.get(&c.cpu).map_or(0, Vec::len),
                    full.per_cpu[&c.cpu].len(),
                    "{what}: CPU {} lost events before the cut",
                    c.cpu
                );
            }
        }
        if cut > data_start + 2 * 4096 {
            assert!(count(&got) > 0, "{what}: nothing delivered");
        }
    }
}

#[test]
fn truncated_compressed_v7_files_give_an_error_naming_the_offset() {
    let path = common::traces_dir().join("kvm-lab/s2_cpu/trace.dat");
    let data = std::fs::read(&path).unwrap();
    let full = read_all(&path);
    assert!(full.error.is_none());
    let dir = common::scratch("truncate-v7");
    let cut_path = dir.join("cut.dat");
    let mut rng = XorShift(12345);
    for _ in 0..40 {
        let cut = rng.below(data.len() as u64);
        std::fs::write(&cut_path, &data[..cut as usize]).unwrap();
        let got = read_all(&cut_path);
        let e = got
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("cut at {cut}: no error"));
        check_error(e, &cut_path, cut);
        check_prefix(&got, &full, &format!("cut at {cut}"));
    }
}

#[test]
fn corrupted_page_header_stops_its_cpu_at_that_page() {
    let dir = common::scratch("corrupt-page");
    let intact = v6_copy(&dir);
    let mut data = std::fs::read(&intact).unwrap();
    let full = read_all(&intact);
    let source = DatSource::open(&intact).unwrap();
    let cpu0 = source.meta().buffers[0].cpus[0].clone();
    let page_size = source.meta().page_size as u64;
    assert!(cpu0.size >= 4 * page_size, "the test needs several pages");
    // Page 2 of CPU 0 claims more records than a page holds.
    let page = cpu0.offset + 2 * page_size;
    let commit_at = (page + 8) as usize;
    data[commit_at..commit_at + 8].copy_from_slice(&0x0fff_ffffu64.to_le_bytes());
    let bad = dir.join("bad-page.dat");
    std::fs::write(&bad, &data).unwrap();
    let got = read_all(&bad);
    let e = got.error.as_ref().expect("a corrupted page is an error");
    check_error(e, &bad, data.len() as u64);
    assert_eq!(
        e.offset,
        page + 8,
        "the error points at the commit word: {e}"
    );
    assert!(
        matches!(
            &e.kind,
            ErrorKind::Dat(DatError::Page {
                cpu,
                chunk_position: None,
                error: PageError::CommitBeyondPage { commit_size, .. },
            }) if *cpu == cpu0.cpu && *commit_size == 0x07ff_ffff
        ),
        "{e}"
    );
    check_prefix(&got, &full, "corrupt page");
    let n0 = got.per_cpu.get(&cpu0.cpu).map_or(0, Vec::len);
    assert!(
        n0 > 0 && n0 < full.per_cpu[&cpu0.cpu].len(),
        "CPU 0 delivered {n0}"
    );
    // The other CPUs are delivered in full.
    for (cpu, events) in &full.per_cpu {
        if *cpu != cpu0.cpu {
            assert_eq!(got.per_cpu.get(cpu).map_or(0, Vec::len), events.len());
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let dir = common::scratch("flip");
    let intact = v6_copy(&dir);
    let original = std::fs::read(&intact).unwrap();
    let compressed = std::fs::read(common::traces_dir().join("host-real/trace.dat")).unwrap();
    let bad = dir.join("flipped.dat");
    let mut rng = XorShift(0xdead_beef);
    for (data, header_len) in [(&original, 4096u64), (&compressed, 2048)] {
        for round in 0..80 {
            let mut d = data.clone();
            // Half the rounds hit the headers and metadata, half anywhere.
            let span = if round % 2 == 0 {
                header_len
            } else {
                d.len() as u64
            };
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(span) as usize;
                d[at] ^= 1 << rng.below(8);
            }
            std::fs::write(&bad, &d).unwrap();
            let got = read_all(&bad);
            if let Some(e) = &got.error {
                check_error(e, &bad, d.len() as u64);
            }
        }
    }
}

#[test]
fn empty_and_foreign_files_are_errors() {
    let dir = common::scratch("foreign");
    let empty = dir.join("empty.dat");
    std::fs::write(&empty, b"").unwrap();
    let e = DatSource::open(&empty).err().expect("empty file");
    check_error(&e, &empty, 0);
    assert_eq!(e.kind, ErrorKind::Dat(DatError::BadMagic { found: vec![] }));
    let text = dir.join("text.dat");
    std::fs::write(&text, b"# tracer: nop\n").unwrap();
    let e = DatSource::open(&text).err().expect("text file");
    assert_eq!(e.offset, 0);
    assert_eq!(
        e.kind,
        ErrorKind::Dat(DatError::BadMagic {
            found: b"# tracer: ".to_vec()
        })
    );
    assert_eq!(
        e.to_string(),
        format!(
            "{}: at byte 0: not a trace-cmd .dat file (bad magic \"# tracer: \")",
            text.display()
        )
    );
    let missing = dir.join("missing.dat");
    let e = DatSource::open(&missing).err().expect("missing file");
    assert!(matches!(
        e.kind,
        ErrorKind::Io {
            kind: std::io::ErrorKind::NotFound,
            ..
        }
    ));
}

//! Damaged perf.data files: a real recording (as perf wrote it, rewritten in pipe mode, and
//! with compressed records) cut at many offsets, with bits flipped, ranges zeroed and bytes
//! inserted at seeded random places. Every case must end in events then the end, or events
//! then an error of the perf.data kind naming the file and a byte offset inside it: never a
//! panic, never an allocation beyond a fixed bound (this test binary's allocator records the
//! largest it is asked for).

mod perf_build;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use perf_build::{traces, PerfFile};
use virtflow_ftrace::PerfSource;
use virtflow_trace::{ErrorKind, EventSource, FieldId, Step, TraceError};

/// The system allocator, recording the largest single allocation.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// No allocation may exceed this, whatever the file says (the inputs themselves are 2 MB).
const ALLOCATION_BOUND: usize = 64 << 20;

/// A seeded xorshift generator: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// How one damaged file read.
struct Outcome {
    events: u64,
    error: Option<TraceError>,
}

fn check_error(e: &TraceError, len: usize, label: &str) {
    assert_eq!(e.path.to_str(), Some("damaged.data"), "{label}: {e}");
    assert!(
        matches!(e.kind, ErrorKind::Perf(_)),
        "{label}: not a perf.data error kind: {e:?}"
    );
    assert!(
        e.offset <= len as u64,
        "{label}: offset beyond the file: {e}"
    );
    assert!(!e.to_string().is_empty());
}

/// Opens and drains `bytes`, reading every field of every event.
fn read(bytes: Vec<u8>, label: &str) -> Outcome {
    let len = bytes.len();
    let mut src = match PerfSource::from_bytes("damaged.data", bytes) {
        Ok(s) => s,
        Err(e) => {
            check_error(&e, len, label);
            return Outcome {
                events: 0,
                error: Some(e),
            };
        }
    };
    let mut events = 0u64;
    let mut last = i64::MIN;
    loop {
        match src.advance() {
            Ok(Step::End) => break,
            Ok(Step::Lost(l)) => assert!(l.begin <= l.end, "{label}: {l:?}"),
            Ok(Step::Event(h)) => {
                events += 1;
                assert!(h.ts >= last, "{label}: time order");
                last = h.ts;
                // Every field, through the whole-event pass and the typed accessors (one past
                // the last field too).
                let n = src.classes()[h.class.0 as usize].fields.len();
                let mut values = 0;
                src.for_each_value(h.class, &mut |_, _| values += 1);
                assert!(values <= n, "{label}");
                for i in 0..=n {
                    let f = FieldId(i as u32);
                    let _ = (src.u64(f), src.str(f));
                }
            }
            Err(e) => {
                check_error(&e, len, label);
                assert_eq!(
                    src.advance(),
                    Ok(Step::End),
                    "{label}: a failed source is finished"
                );
                assert_eq!(src.stats().events, events, "{label}");
                return Outcome {
                    events,
                    error: Some(e),
                };
            }
        }
    }
    assert_eq!(src.stats().events, events, "{label}");
    Outcome {
        events,
        error: None,
    }
}

/// The damage cases of one file: (label, damaged bytes).
fn cases(name: &str, intact: &[u8], rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    let len = intact.len();
    let mut out = Vec::new();
    // Cut: inside the header, then at random places, then just before the end.
    for cut in [0, 7, 8, 15, 16, 17, 60, 103, 104, 200]
        .into_iter()
        .chain((0..40).map(|_| rng.below(len)))
        .chain([len - 1, len - 8])
    {
        out.push((format!("{name} cut at {cut}"), intact[..cut].to_vec()));
    }
    for _ in 0..40 {
        let at = rng.below(len);
        let bit = rng.below(8);
        let mut b = intact.to_vec();
        b[at] ^= 1 << bit;
        out.push((format!("{name} bit {bit} of byte {at} flipped"), b));
    }
    for _ in 0..20 {
        let at = rng.below(len);
        let n = 1 + rng.below(512);
        let mut b = intact.to_vec();
        let end = (at + n).min(len);
        b[at..end].fill(0);
        out.push((format!("{name} bytes {at}..{end} zeroed"), b));
    }
    for _ in 0..20 {
        let at = rng.below(len);
        let n = 1 + rng.below(64);
        let mut b = intact[..at].to_vec();
        b.extend((0..n).map(|_| rng.next() as u8));
        b.extend_from_slice(&intact[at..]);
        out.push((format!("{name} {n} bytes inserted at {at}"), b));
    }
    out
}

#[test]
fn damaged_files_give_events_then_a_clear_error_never_a_panic() {
    let real = std::fs::read(traces().join("host-real/perf.data")).unwrap();
    let parsed = PerfFile::parse(&real);
    let bases = [
        ("file", real.clone()),
        ("pipe", parsed.write_pipe()),
        ("compressed", parsed.compressed(30_000).write()),
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut total = 0;
    let mut errors = 0;
    for (name, intact) in &bases {
        let whole = read(intact.clone(), name);
        assert!(
            whole.error.is_none() && whole.events > 20_000,
            "{name} reads whole"
        );
        for (label, bytes) in cases(name, intact, &mut rng) {
            let outcome = read(bytes, &label);
            total += 1;
            errors += outcome.error.is_some() as usize;
            assert!(
                outcome.events <= whole.events + 64,
                "{label}: events from nowhere"
            );
        }
    }
    assert!(total >= 300, "{total} cases");
    assert!(
        errors > total / 4,
        "only {errors} of {total} cases found damage"
    );
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= ALLOCATION_BOUND,
        "an allocation of {largest} bytes (bound {ALLOCATION_BOUND})"
    );
}

/// A pipe-mode recording cut in its records still gives the events read before the cut.
#[test]
fn a_cut_pipe_gives_the_readable_prefix() {
    let real = std::fs::read(traces().join("host-real/perf.data")).unwrap();
    let pipe = PerfFile::parse(&real).write_pipe();
    let whole = read(pipe.clone(), "pipe").events;
    for percent in [30, 60, 90] {
        let cut = pipe.len() * percent / 100;
        let outcome = read(pipe[..cut].to_vec(), "cut pipe");
        let e = outcome.error.expect("a cut record is an error");
        assert!(
            e.offset <= cut as u64 && e.offset + 65536 >= cut as u64,
            "{e}"
        );
        // Most of what was before the cut is delivered.
        let expected = whole * percent as u64 / 100;
        assert!(
            outcome.events + expected / 5 >= expected,
            "{percent}%: {} events of about {expected}",
            outcome.events
        );
    }
}

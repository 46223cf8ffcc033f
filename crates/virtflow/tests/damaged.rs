//! Damaged traces of every format through the command line's opening path: a few hundred
//! copies of real and simulated traces — CTF streams and metadata, trace-cmd `.dat` v6 and
//! v7, perf.data, ftrace text (tracefs and `trace-cmd report`), a Trace Compass XML stub —
//! cut short, with bits flipped, ranges zeroed and bytes inserted at seeded random places,
//! each analysed as `virtflow analyze` does (`virtflow::input::analyze`, which opens with
//! `input::open_one`). Each must end in a result or in a [`TraceError`] naming the damaged
//! file (with a byte offset inside it, for kinds that have a place) — never a panic, never a
//! hang (each case is bounded in time), never an allocation beyond [`MAX_ALLOCATION`] (this
//! test binary's allocator records the largest) — and the terminal report of a result holds
//! nothing that does not print. The readers' own damage tests (dat_damage, mutation,
//! perf_damage, the XML reader's) go deeper into each format; this one checks what the
//! command line makes of the damage.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use virtflow::input::TraceArgs;
use virtflow_analysis::Options;
use virtflow_trace::{ErrorKind, TraceError};

/// The system allocator, recording the largest allocation asked for.
struct Recording;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// No case may ask for more at once: the largest trace here is 9 MB, and a reader that sizes
/// a buffer from a damaged count must check it first.
const MAX_ALLOCATION: usize = 256 << 20;
/// No case may take longer.
const CASE_TIME: Duration = Duration::from_secs(20);

use virtflow_testkit::shared_traces as shared;

/// xorshift64*: the damage is the same at every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The ways a file is damaged.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Cut at a random offset.
    Truncate,
    /// A few random bits flipped.
    FlipBits,
    /// A random range of up to 4 KiB zeroed.
    Zero,
    /// Up to 64 random bytes inserted at a random offset.
    Insert,
}

const DAMAGES: [Damage; 4] = [
    Damage::Truncate,
    Damage::FlipBits,
    Damage::Zero,
    Damage::Insert,
];

fn damage(original: &[u8], how: Damage, rng: &mut Rng) -> (Vec<u8>, String) {
    let mut b = original.to_vec();
    let len = b.len();
    let what = match how {
        Damage::Truncate => {
            let at = rng.below(len);
            b.truncate(at);
            format!("cut at {at}")
        }
        Damage::FlipBits => {
            let mut at = Vec::new();
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
                at.push(i);
            }
            format!("bits flipped at {at:?}")
        }
        Damage::Zero => {
            let at = rng.below(len);
            let n = (1 + rng.below(4096)).min(len - at);
            b[at..at + n].fill(0);
            format!("{n} bytes zeroed at {at}")
        }
        Damage::Insert => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(64);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(at..at, bytes);
            format!("{n} bytes inserted at {at}")
        }
    };
    (b, what)
}

/// One trace to damage: what to open, and the file of it that is damaged.
struct Target {
    label: &'static str,
    /// The TRACE argument (a file, or a CTF folder).
    open: PathBuf,
    /// The file damaged (the argument itself, or a file in the CTF folder).
    file: PathBuf,
    cases: usize,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
            let mut perms = std::fs::metadata(&dest).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&dest, perms).unwrap();
        }
    }
}

/// The largest stream file of a CTF trace folder.
fn largest_stream(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().unwrap() != "metadata")
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

fn targets(work: &Path) -> Vec<Target> {
    let traces = shared();
    let mut out = Vec::new();
    // CTF: LTTng kernel traces, copied so that their files can be damaged one at a time.
    for (label, from, sub) in [
        ("many-threads", traces.join("lttng/many-threads"), ""),
        (
            "s3_disk_lttng",
            traces.join("kvm-lab/s3_disk_lttng/lttng"),
            "kernel",
        ),
    ] {
        let dir = work.join(label);
        copy_dir(&from, &dir);
        let trace = dir.join(sub);
        out.push(Target {
            label,
            file: trace.join("metadata"),
            open: dir.clone(),
            cases: 24,
        });
        out.push(Target {
            label,
            file: largest_stream(&trace),
            open: dir,
            cases: 32,
        });
    }
    let file = |label: &'static str, from: PathBuf, name: &str, cases: usize| {
        let dir = work.join(label);
        std::fs::create_dir_all(&dir).unwrap();
        let to = dir.join(name);
        std::fs::write(&to, std::fs::read(from).unwrap()).unwrap();
        Target {
            label,
            open: to.clone(),
            file: to,
            cases,
        }
    };
    // .dat v7 (trace-cmd 3) and v6 (the simulator's).
    out.push(file(
        "s1_idle-dat",
        traces.join("kvm-lab/s1_idle/trace.dat"),
        "trace.dat",
        32,
    ));
    out.push(file(
        "host-real-dat",
        traces.join("host-real/trace.dat"),
        "trace.dat",
        24,
    ));
    let sim = work.join("sim");
    let mut cfg = virtflow_sim::Config::new(virtflow_sim::Scenario::Idle);
    cfg.format = virtflow_sim::Format::Dat;
    let summary = virtflow_sim::simulate(&cfg, &sim).unwrap();
    let v6 = summary.traces[0].0.clone();
    assert_eq!(
        &std::fs::read(&v6).unwrap()[..12],
        b"\x17\x08\x44tracing6\0"
    );
    out.push(file("sim-dat-v6", v6, "trace.dat", 32));
    out.push(file(
        "s1_idle-perf",
        traces.join("kvm-lab/s1_idle/perf.data"),
        "perf.data",
        32,
    ));
    out.push(file(
        "tracefs-text",
        traces.join("host-real/tracefs-trace.txt"),
        "tracefs-trace.txt",
        24,
    ));
    out.push(file(
        "report-text",
        traces.join("host-real/trace-cmd-report.txt"),
        "trace-cmd-report.txt",
        24,
    ));
    let xml_dir = work.join("xml");
    std::fs::create_dir_all(&xml_dir).unwrap();
    let xml = virtflow_xmlstub::testing::traces::one_qemu_kvm_host()
        .write_in(&xml_dir)
        .unwrap();
    out.push(Target {
        label: "xml-stub",
        open: xml.clone(),
        file: xml,
        cases: 32,
    });
    out
}

/// What one damaged copy gave.
enum Outcome {
    Result {
        stopped: bool,
    },
    /// The error as the user reads it.
    Error(String),
}

/// Analyses `target` as `virtflow analyze` does, in a thread bounded in time; checks the
/// outcome (see the module documentation).
fn run_case(target: &Target, what: &str, len: usize) -> Outcome {
    let args = TraceArgs {
        traces: vec![target.open.clone()],
        ..TraceArgs::default()
    };
    let (tx, rx) = mpsc::channel();
    LARGEST.store(0, Ordering::Relaxed);
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| virtflow::input::analyze(&args, Options::default()));
        let _ = tx.send(r);
    });
    let case = format!("{} ({}): {what}", target.label, target.file.display());
    let result = match rx.recv_timeout(CASE_TIME) {
        Ok(r) => r,
        Err(_) => panic!("{case}: no answer within {CASE_TIME:?}"),
    };
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= MAX_ALLOCATION,
        "{case}: an allocation of {largest} bytes"
    );
    match result {
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{case}: panicked: {msg}")
        }
        Ok(Ok(model)) => {
            let mut report = Vec::new();
            virtflow::cmd::analyze::render(&model, &mut report).unwrap();
            let report = String::from_utf8(report).expect("the report is UTF-8");
            assert!(
                !report
                    .chars()
                    .any(|c| (c.is_control() && c != '\n') || c == '\u{fffd}'),
                "{case}: the report holds what does not print:\n{report}"
            );
            let stopped = model
                .notes
                .iter()
                .find(|n| n.starts_with("reading stopped"));
            if let Some(n) = stopped {
                assert!(n.contains(" at byte "), "{case}: {n}");
            }
            Outcome::Result {
                stopped: stopped.is_some(),
            }
        }
        Ok(Err(e)) => {
            let te: &TraceError = e
                .chain()
                .find_map(|c| c.downcast_ref::<TraceError>())
                .unwrap_or_else(|| panic!("{case}: an error that is no TraceError: {e:#}"));
            let shown = te.to_string();
            assert!(
                te.path.starts_with(&target.open) || target.open.starts_with(&te.path),
                "{case}: the error names another file: {shown}"
            );
            assert!(
                shown.starts_with(&te.path.display().to_string()),
                "{case}: {shown}"
            );
            match te.kind {
                ErrorKind::Io { .. } | ErrorKind::NotATrace { .. } | ErrorKind::EmptyFile => {}
                _ => {
                    assert!(shown.contains(": at byte "), "{case}: {shown}");
                    if te.path == target.file {
                        assert!(
                            te.offset <= len as u64,
                            "{case}: offset {} past the end ({len} bytes): {shown}",
                            te.offset
                        );
                    }
                }
            }
            Outcome::Error(format!("{e:#}"))
        }
    }
}

#[test]
fn damaged_traces_give_a_result_or_a_clear_error() {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("virtflow-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let targets = targets(&work);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tally: Vec<(String, usize, usize, usize, Option<String>)> = Vec::new();
    for t in &targets {
        let original = std::fs::read(&t.file).unwrap();
        let (mut results, mut stopped, mut errors) = (0, 0, 0);
        let mut example = None;
        for i in 0..t.cases {
            let how = DAMAGES[i % DAMAGES.len()];
            let (bytes, what) = damage(&original, how, &mut rng);
            std::fs::write(&t.file, &bytes).unwrap();
            match run_case(t, &what, bytes.len()) {
                Outcome::Result { stopped: true } => stopped += 1,
                Outcome::Result { stopped: false } => results += 1,
                Outcome::Error(e) => {
                    if std::env::var_os("DAMAGED_VERBOSE").is_some() {
                        eprintln!("{} {what}: {e}", t.label);
                    }
                    errors += 1;
                    example.get_or_insert(format!("{what}: {e}"));
                }
            }
        }
        std::fs::write(&t.file, &original).unwrap();
        let name = format!(
            "{} {}",
            t.label,
            t.file.file_name().unwrap().to_string_lossy()
        );
        tally.push((name, results, stopped, errors, example));
    }
    let _ = std::fs::remove_dir_all(&work);
    let cases: usize = targets.iter().map(|t| t.cases).sum();
    eprintln!("{cases} damaged copies in {:.1?}:", started.elapsed());
    for (name, results, stopped, errors, example) in &tally {
        eprintln!(
            "  {name:<34} {results:>3} results, {stopped:>3} stopped early, {errors:>3} errors"
        );
        if let Some(e) = example {
            eprintln!("    e.g. {e}");
        }
    }
    assert!(cases >= 300);
}

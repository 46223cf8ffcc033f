//! What the binary answers to input that is no trace, a trace without events, a trace with
//! a damaged tail and a missing file: a clear error on standard error (the file, and where in
//! it when that matters), a non-zero exit status, nothing that does not print — or, for a
//! valid trace, an answer that says plainly what it covers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use virtflow_testkit::shared_traces as shared;

fn virtflow(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_virtflow"));
    for a in args {
        c.arg(a);
    }
    c.output().expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("UTF-8 output")
}

/// Output that a terminal shows as it is: no control character but line ends, no
/// replacement character.
fn printable(s: &str) -> bool {
    !s.chars()
        .any(|c| (c.is_control() && c != '\n') || c == '\u{fffd}')
}

/// A folder of its own for a test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("virtflow-bad-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Random bytes of a seeded xorshift.
fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// Runs `analyze FILE` and checks a refusal: status 1, one error line naming the file,
/// nothing on standard output. Returns the error line.
fn refused(path: &Path) -> String {
    let out = virtflow(&[&"analyze", &path]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(printable(&err), "{err:?}");
    assert!(!err.contains("panicked"), "{err}");
    let prefix = format!("virtflow: error: {}: ", path.display());
    assert!(err.starts_with(&prefix), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn what_is_no_trace_is_refused_saying_what_was_looked_for() {
    let dir = scratch("none");
    let perf = dir.join("perf.data");
    std::fs::write(&perf, random_bytes(100_000, 1)).unwrap();
    let err = refused(&perf);
    assert!(
        err.contains("not a trace: expected a perf.data, which starts with PERFILE2"),
        "{err}"
    );
    let dat = dir.join("random.dat");
    std::fs::write(&dat, random_bytes(100_000, 2)).unwrap();
    let err = refused(&dat);
    assert!(
        err.contains(
            "not a trace: expected a trace-cmd .dat, which starts with \\x17\\x08Dtracing"
        ),
        "{err}"
    );
    let bin = dir.join("blob");
    std::fs::write(&bin, random_bytes(5000, 3)).unwrap();
    let err = refused(&bin);
    assert!(
        err.contains("found binary data with none of their marks"),
        "{err}"
    );
    // Text that is no trace: base64 of random bytes, 76 characters a line.
    let b64 = dir.join("notes.txt");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for (i, b) in random_bytes(76 * 400, 4).iter().enumerate() {
        s.push(alphabet[(*b & 63) as usize] as char);
        if i % 76 == 75 {
            s.push('\n');
        }
    }
    std::fs::write(&b64, &s).unwrap();
    let err = refused(&b64);
    assert!(
        err.contains(": at byte 0: not an ftrace text trace: none of its first 400 lines"),
        "{err}"
    );
    // Text with escape sequences and bytes that are not UTF-8: escaped in the error.
    let odd = dir.join("odd.txt");
    let mut bytes = b"\x1b[2Jhello \xff\xfe world\n".to_vec();
    bytes.extend(b"more words here\n".repeat(10));
    std::fs::write(&odd, bytes).unwrap();
    let err = refused(&odd);
    assert!(
        err.ends_with("the first is \"\\x1b[2Jhello \\u{fffd}\\u{fffd} world\"\n"),
        "{err}"
    );
    // An empty file.
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        refused(&empty),
        format!(
            "virtflow: error: {}: empty file, no trace in it\n",
            empty.display()
        )
    );
    // CTF metadata without a stream file.
    let ctf = dir.join("ctf");
    std::fs::create_dir_all(&ctf).unwrap();
    std::fs::copy(
        shared().join("lttng/many-threads/metadata"),
        ctf.join("metadata"),
    )
    .unwrap();
    let err = refused(&ctf);
    assert!(
        err.contains("not a trace: expected stream files beside the CTF `metadata`"),
        "{err}"
    );
    // A folder holding none of the formats looked for below a folder.
    let folder = dir.join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), "hello\n").unwrap();
    let err = refused(&folder);
    assert!(
        err.contains("not a trace: expected, in this folder or below, CTF traces"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An I/O error names the file without a byte offset: it has no place in the file.
#[test]
fn a_missing_file_is_named_without_an_offset() {
    let missing = std::env::temp_dir().join("virtflow-no-such-trace.dat");
    for cmd in ["analyze", "dump"] {
        let out = virtflow(&[&cmd, &missing]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(
            err,
            format!(
                "virtflow: error: {}: No such file or directory (os error 2)\n",
                missing.display()
            )
        );
    }
}

/// A valid trace without events: `analyze` says so, `dump` prints nothing; both succeed.
#[test]
fn a_trace_without_events_says_so() {
    let trace = shared().join("ctf-conformance/babeltrace/succeed/meta-ctx-sequence");
    let out = virtflow(&[&"analyze", &trace]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("\nno event in this trace.\n"), "{report}");
    assert!(!report.contains("no KVM events"), "{report}");
    assert!(!report.contains("busiest threads"), "{report}");
    let json = virtflow(&[&"analyze", &"--json", &trace]);
    let model: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(model["notes"][0], "no event in this trace");
    let out = virtflow(&[&"dump", &trace]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

/// A trace cut inside its events: the results of what comes before, saying where reading
/// stopped, on standard output and standard error.
#[test]
fn a_damaged_tail_gives_the_readable_prefix_and_says_where_reading_stopped() {
    let dir = scratch("tail");
    let from = shared().join("kvm-lab/s3_disk_lttng/lttng");
    let to = dir.join("lttng");
    for sub in ["", "kernel", "kernel/index"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
    }
    let mut streams = Vec::new();
    for e in walk(&from) {
        let rel = e.strip_prefix(&from).unwrap();
        std::fs::write(to.join(rel), std::fs::read(&e).unwrap()).unwrap();
        if rel.parent() == Some(Path::new("kernel")) && rel.file_name().unwrap() != "metadata" {
            streams.push(to.join(rel));
        }
    }
    streams.sort();
    let stream = streams.last().unwrap();
    let bytes = std::fs::read(stream).unwrap();
    std::fs::write(stream, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let out = virtflow(&[&"analyze", &to]);
    let err = text(&out.stderr);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{err}");
    let stopped = format!("reading stopped at {}: at byte ", stream.display());
    assert!(
        err.starts_with(&format!("virtflow: warning: {stopped}")),
        "{err}"
    );
    assert!(report.contains(&format!("\n{stopped}")), "{report}");
    assert!(report.contains("the results cover the "), "{report}");
    assert!(report.contains("\nVM "), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

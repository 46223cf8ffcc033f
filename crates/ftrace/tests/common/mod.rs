//! Helpers shared by the `.dat` reader tests: where the real traces are, and running
//! `trace-cmd`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub use virtflow_testkit::shared_traces as traces_dir;

/// `host-real/trace.dat` and every `.dat` under `kvm-lab/`.
pub fn real_dat_files() -> Vec<PathBuf> {
    let dir = traces_dir();
    let mut files = vec![dir.join("host-real/trace.dat")];
    let mut lab: Vec<PathBuf> = std::fs::read_dir(dir.join("kvm-lab"))
        .expect("the kvm-lab traces are beside the repository")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("trace.dat"))
        .filter(|p| p.exists())
        .collect();
    lab.sort();
    files.extend(lab);
    for f in &files {
        assert!(f.exists(), "missing trace {}", f.display());
    }
    files
}

/// Runs `trace-cmd` with `args`; fails the test with a clear message when it is missing.
pub fn trace_cmd(args: &[&str]) -> String {
    let out = Command::new("trace-cmd")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("these tests need trace-cmd (3.1) on the PATH (apt-get install trace-cmd): {e}")
        });
    assert!(
        out.status.success(),
        "trace-cmd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Converts `src` with `trace-cmd convert` to `dst` (file version, compression).
pub fn convert(src: &Path, dst: &Path, version: &str, compression: &str) {
    trace_cmd(&[
        "convert",
        "-i",
        src.to_str().unwrap(),
        "-o",
        dst.to_str().unwrap(),
        "--file-version",
        version,
        "--compression",
        compression,
    ]);
    assert!(dst.exists(), "trace-cmd convert wrote no {}", dst.display());
}

/// A scratch directory for one test, removed and recreated.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

//! What the tests against the simulator share: running the binary, a scratch folder, and
//! finding the trace the simulator wrote.

// Each test binary uses a part of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `virtflow ARGS…`, asserts it succeeded, and returns its standard output. Clock
/// synchronisations are cached in a scratch folder, never beside the shared traces.
pub fn virtflow(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_virtflow"))
        .args(args)
        .env("VIRTFLOW_CACHE_DIR", cache_dir())
        .output()
        .expect("run virtflow");
    assert!(
        out.status.success(),
        "virtflow {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// This test process's cache folder.
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("virtflow-test-cache-{}", std::process::id()))
}

/// An empty scratch folder path, unique to this test process, `suite` and `name`.
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("virtflow-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The trace the simulator wrote in `dir` (anything but `truth.json`).
pub fn trace_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().is_some_and(|n| n != "truth.json"))
        .expect("a trace beside truth.json")
}

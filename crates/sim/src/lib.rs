//! Simulator (in progress).

use std::path::{Path, PathBuf};

/// Writes the built-in demo trace into `dir` and returns the path of the file to open.
pub fn write_demo(_dir: &Path) -> std::io::Result<PathBuf> {
    Err(std::io::Error::other("the demo trace is not available yet"))
}

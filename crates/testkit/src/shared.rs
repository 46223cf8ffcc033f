//! Where the real traces the tests read lie: `../shared/traces` beside the repository, which
//! a fresh machine may not have (tests then say they skip).

use std::path::PathBuf;

/// The folder of real traces (`../shared/traces` beside the repository), present or not.
pub fn shared_traces() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces"
    ))
}

/// `path` below [`shared_traces`], when it is there.
pub fn shared_trace(path: &str) -> Option<PathBuf> {
    let p = shared_traces().join(path);
    p.exists().then_some(p)
}

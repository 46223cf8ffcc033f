//! Where the real traces the tests read lie: `../shared/traces` beside the repository, which
//! a fresh machine may not have (tests then say they skip).

use std::path::{Path, PathBuf};

use virtflow_trace::{EventSource, Member, Merge};

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

/// The synctraces experiment — two real hosts, `src` and `dest`, exchanging TCP traffic — as
/// one source, each host's trace opened by `open`, on its own clock; `None` when the traces
/// are not there.
pub fn synctraces_experiment(open: impl Fn(&Path) -> Box<dyn EventSource>) -> Option<Merge> {
    let src = shared_trace("lttng/synctraces/scp_src")?;
    let dest = shared_trace("lttng/synctraces/scp_dest")?;
    let members = [src, dest]
        .iter()
        .enumerate()
        .map(|(host, p)| Member {
            source: open(p),
            host,
            clock: None,
        })
        .collect();
    Some(Merge::experiment(
        members,
        vec!["src".into(), "dest".into()],
    ))
}

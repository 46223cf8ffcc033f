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

/// Runs `check` on each of `traces` (paths below [`shared_traces`]) that is there, saying
/// which are skipped; fails when none was checked though the folder is there.
pub fn for_each_shared_trace(traces: &[&str], mut check: impl FnMut(&str, &Path)) {
    let mut checked = 0;
    for trace in traces {
        let Some(path) = shared_trace(trace) else {
            eprintln!("{trace} not present: skipped");
            continue;
        };
        check(trace, &path);
        checked += 1;
    }
    assert!(
        checked > 0 || !shared_traces().exists(),
        "none of {traces:?} checked"
    );
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

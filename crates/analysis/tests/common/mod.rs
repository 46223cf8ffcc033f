//! What the tests on real traces share: opening one by its file name.

use std::path::Path;

use virtflow_trace::EventSource;

/// The trace at `path`, by its name: a `perf.data`, a trace-cmd `.dat`, else a CTF folder.
pub fn open(path: &Path) -> Box<dyn EventSource> {
    let name = path.to_string_lossy();
    if name.ends_with("perf.data") {
        Box::new(virtflow_ftrace::PerfSource::open(path).unwrap())
    } else if name.ends_with(".dat") {
        Box::new(virtflow_ftrace::DatSource::open(path).unwrap())
    } else {
        Box::new(virtflow_ctf::CtfSource::open(path).unwrap())
    }
}

//! What the simulator's truth tests share: a run into a scratch folder, its truth, and the
//! project's readers over the trace it wrote.

// Each test binary uses a part of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use virtflow_sim::truth::Truth;
use virtflow_sim::{simulate, Config, Format, Scenario, Summary};
use virtflow_trace::{EventSource, FieldKind, Step};

pub fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sim-truth-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Simulates `scenario` for `ms` into a fresh folder; the summary and the truth read back.
pub fn run(
    name: &str,
    scenario: Scenario,
    format: Format,
    ms: u64,
    tweak: impl Fn(&mut Config),
) -> (Summary, Truth) {
    let mut c = Config::new(scenario);
    c.format = format;
    c.duration_ns = ms * 1_000_000;
    tweak(&mut c);
    let dir = out_dir(name);
    let s = simulate(&c, &dir).expect("simulation runs");
    let t: Truth = serde_json::from_slice(&std::fs::read(&s.truth).unwrap()).unwrap();
    (s, t)
}

/// Opens a trace the simulator wrote with the project's reader of its format.
pub fn open(format: Format, path: &Path) -> Box<dyn EventSource> {
    match format {
        Format::Dat => Box::new(virtflow_ftrace::DatSource::open(path).expect("dat opens")),
        Format::Text => Box::new(virtflow_ftrace::TextSource::open(path).expect("text opens")),
        Format::Ctf => Box::new(virtflow_ctf::CtfSource::open(path).expect("ctf opens")),
    }
}

/// One event as the readers give it: its header, the thread it ran in, and the named
/// fields it has (integers; strings apart).
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    pub ts: i64,
    pub cpu: u32,
    pub tid: i64,
    /// The event's name without the LTTng `kmem_` prefix.
    pub name: String,
    pub ints: Vec<(String, i128)>,
    pub strs: Vec<(String, String)>,
}

impl Read {
    pub fn int(&self, name: &str) -> Option<i128> {
        self.ints.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.strs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every event of the classes `wanted` (names without `kmem_`) with the fields `fields`.
pub fn read_events(src: &mut dyn EventSource, wanted: &[&str], fields: &[&str]) -> Vec<Read> {
    let classes = src.classes().to_vec();
    let mut out = Vec::new();
    loop {
        match src.advance().expect("the trace reads") {
            Step::End => break,
            Step::Lost(l) => panic!("the simulator loses nothing: {l:?}"),
            Step::Event(h) => {
                let class = &classes[h.class.0 as usize];
                let name = class.name.strip_prefix("kmem_").unwrap_or(&class.name);
                if !wanted.contains(&name) {
                    continue;
                }
                let id = |n: &str| class.field(n);
                let tid = id("common_pid")
                    .or_else(|| id("tid"))
                    .and_then(|f| src.i64(f))
                    .expect("a thread");
                let mut r = Read {
                    ts: h.ts,
                    cpu: h.cpu,
                    tid,
                    name: name.to_string(),
                    ints: Vec::new(),
                    strs: Vec::new(),
                };
                for &f in fields {
                    let Some(fid) = id(f) else { continue };
                    match class.fields[fid.0 as usize].kind {
                        FieldKind::Str => {
                            let s = src.str(fid).expect("a string");
                            r.strs.push((f.to_string(), s.to_string()));
                        }
                        FieldKind::Int => r
                            .ints
                            .push((f.to_string(), src.i64(fid).expect("an int") as i128)),
                        _ => r
                            .ints
                            .push((f.to_string(), src.u64(fid).expect("a uint") as i128)),
                    }
                }
                out.push(r);
            }
        }
    }
    out
}

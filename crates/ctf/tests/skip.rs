//! A visitor that wants only some members of a compound field gets, for those, exactly what a
//! visitor of every member gets: the reader steps over the others (fixed-size numbers and
//! arrays of numbers) without losing its place nor the lengths and variant selectors that
//! later members depend on. Checked on every field of the real LTTng traces, the conformance
//! suite, and a simulated host's network headers as LTTng writes them (variants selecting IPv4
//! or IPv6, then TCP or UDP; the real recordings hold only a few).

mod common;

use std::path::{Path, PathBuf};

use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, FieldId, FieldVisitor, Step};

/// Records every scalar value visited under a member it wants, with the member's name.
struct Recorder {
    picky: bool,
    wanted: fn(&str) -> bool,
    member: Option<String>,
    seen: Vec<(String, String)>,
}

impl Recorder {
    /// A value under a wanted member, or a field's own value (not a member: always wanted).
    fn value(&mut self, v: String) {
        match &self.member {
            Some(m) if (self.wanted)(m) => self.seen.push((m.clone(), v)),
            Some(_) => {}
            None => self.seen.push((String::new(), v)),
        }
    }
}

impl FieldVisitor for Recorder {
    fn field(&mut self, _: FieldId) {
        self.member = None;
    }
    fn bool(&mut self, v: bool) {
        self.value(v.to_string());
    }
    fn uint(&mut self, v: u64) {
        self.value(v.to_string());
    }
    fn int(&mut self, v: i64) {
        self.value(v.to_string());
    }
    fn float(&mut self, v: f64) {
        self.value(v.to_string());
    }
    fn str(&mut self, v: &[u8]) {
        self.value(String::from_utf8_lossy(v).into_owned());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.value(format!("{v:?}"));
    }
    fn none(&mut self) {}
    fn enumeration(&mut self, labels: &mut dyn Iterator<Item = &str>) {
        let l: Vec<&str> = labels.collect();
        self.value(l.join("|"));
    }
    fn variant(&mut self, option: &str) {
        self.value(format!("<{option}>"));
    }
    fn begin_struct(&mut self) {}
    fn member(&mut self, name: &str) {
        self.member = Some(name.to_string());
    }
    fn end_struct(&mut self) {}
    fn begin_array(&mut self, _: u64) {}
    fn end_array(&mut self) {}
    fn wants_member(&mut self, name: &str) -> bool {
        !self.picky || (self.wanted)(name)
    }
}

fn traces() -> Vec<PathBuf> {
    let t = common::traces();
    let mut v = Vec::new();
    for dir in [
        t.join("lttng/synctraces"),
        t.join("ctf-conformance/babeltrace/succeed"),
        t.join("kvm-lab/s3_disk_lttng/lttng"),
        t.join("kvm-lab/s5_overcommit_lttng/lttng"),
    ] {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut x: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            x.sort();
            v.extend(x.into_iter().filter(|p| p.join("metadata").is_file()));
        }
    }
    v
}

/// Visits every field of every event of `trace` twice, once wanting every member, once only
/// those `wanted` names; returns how many values of wanted members were compared.
fn check(trace: &Path, wanted: fn(&str) -> bool) -> usize {
    let mut src = match CtfSource::open(trace) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", trace.display());
            return 0;
        }
    };
    let mut compared = 0;
    let mut events = 0;
    while let Ok(Step::Event(h)) = src.advance() {
        events += 1;
        if events > 200_000 {
            break;
        }
        let fields = src.classes()[h.class.0 as usize].fields.len();
        for f in 0..fields {
            let id = FieldId(f as u32);
            let mut all = Recorder {
                picky: false,
                wanted,
                member: None,
                seen: Vec::new(),
            };
            let mut some = Recorder {
                picky: true,
                wanted,
                member: None,
                seen: Vec::new(),
            };
            let a = src.visit_field(id, &mut all);
            let b = src.visit_field(id, &mut some);
            assert_eq!(
                a.is_ok(),
                b.is_ok(),
                "{}: event {events} field {f}",
                trace.display()
            );
            assert_eq!(
                all.seen,
                some.seen,
                "{}: event {events} field {f}",
                trace.display()
            );
            compared += all.seen.iter().filter(|(m, _)| !m.is_empty()).count();
        }
    }
    compared
}

/// Wanted values compared in `trace`'s TCP headers and under members of even-length names.
fn both(trace: &Path) -> usize {
    let tcp: fn(&str) -> bool = |n| matches!(n, "seq" | "ack_seq" | "flags");
    let even: fn(&str) -> bool = |n| n.len() % 2 == 0;
    check(trace, tcp) + check(trace, even)
}

#[test]
fn wanted_members_read_alike_when_the_others_are_stepped_over() {
    let list = traces();
    if list.is_empty() {
        eprintln!("no traces beside the repository: skipped");
        return;
    }
    let total: usize = list.iter().map(|t| both(t)).sum();
    // The conformance suite's structures and the lab recordings' few network headers.
    assert!(total >= 50, "only {total} members' values compared");
}

#[test]
fn tcp_headers_of_a_simulated_host_read_alike() {
    let (dir, trace) = common::simulated_network_ctf("skip");
    let tcp: fn(&str) -> bool = |n| matches!(n, "seq" | "ack_seq" | "flags");
    let headers = check(&trace, tcp);
    assert!(headers > 1_000, "{headers} TCP header values");
    let _ = std::fs::remove_dir_all(&dir);
}

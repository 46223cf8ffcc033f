//! babeltrace's `fail` conformance traces: opening or reading them returns an error that names
//! the file and a byte offset, never a panic; valid events before the error come first.

mod common;
use common::*;
use std::path::Path;
use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, Step, TraceError};

/// Opens and reads a trace to its end or first error; returns the event names and the error.
fn read(trace: &Path) -> (Vec<String>, Option<TraceError>) {
    let mut src = match CtfSource::open(trace) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut names = Vec::new();
    loop {
        match src.advance() {
            Ok(Step::Event(h)) => names.push(src.classes()[h.class.0 as usize].name.clone()),
            Ok(Step::Lost(_)) => {}
            Ok(Step::End) => return (names, None),
            Err(e) => {
                // After an error the source is finished.
                assert_eq!(src.advance(), Ok(Step::End));
                return (names, Some(e));
            }
        }
    }
}

#[test]
fn every_fail_trace_errors_with_file_and_offset() {
    let dir = traces().join("ctf-conformance/babeltrace/fail");
    let mut bad = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for t in entries {
        let name = t.file_name().unwrap().to_string_lossy().to_string();
        let (events, err) = read(&t);
        match err {
            None => bad.push(format!("{name}: no error ({} events)", events.len())),
            Some(e) => {
                eprintln!("{name}: {} events, then {e}", events.len());
                if !e.path.starts_with(&t) || !e.path.is_file() {
                    bad.push(format!(
                        "{name}: error names {} which is not a file of the trace",
                        e.path.display()
                    ));
                }
                if e.to_string().is_empty() {
                    bad.push(format!("{name}: empty message"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn valid_events_come_before_the_error() {
    let t = traces().join("ctf-conformance/babeltrace/fail/valid-events-then-invalid-events/trace");
    let expect = std::fs::read_to_string(
        traces()
            .join("ctf-conformance/babeltrace-expect/fail/valid-events-then-invalid-events.expect"),
    )
    .unwrap();
    let names: Vec<String> = expect
        .lines()
        .filter_map(|l| l.strip_prefix("Event `"))
        .map(|l| l.split('`').next().unwrap().to_string())
        .collect();
    assert!(!names.is_empty());
    let (events, err) = read(&t);
    let err = err.expect("an error after the valid events");
    assert_eq!(events, names, "then {err}");
    assert!(err.path.is_file() && err.offset > 0, "{err}");
}

#[test]
fn error_display_names_file_and_offset() {
    let t = traces().join("ctf-conformance/babeltrace/fail/metadata-syntax-error");
    let e = CtfSource::open(&t).err().unwrap();
    let s = e.to_string();
    assert!(s.contains("metadata") && s.contains("at byte"), "{s}");
    assert!(e.offset > 0, "{s}");
}

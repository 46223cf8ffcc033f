//! babeltrace's `fail` conformance traces: opening or reading them returns an error that names
//! the file and a byte offset, never a panic; valid events before the error come first.

mod common;
use common::*;
use std::path::Path;
use virtflow_ctf::CtfSource;
use virtflow_trace::error::{CtfError, TsdlError};
use virtflow_trace::{ErrorKind, EventSource, Step, TraceError};

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

/// The kind of error each of babeltrace's fail traces gives.
fn expected_kind(name: &str, kind: &ErrorKind) -> bool {
    let ErrorKind::Ctf(e) = kind else {
        return false;
    };
    let tsdl = |error: &TsdlError| match e {
        CtfError::Tsdl { error: found, .. } => found == error,
        _ => false,
    };
    match name {
        // `uint32_t * x;`: a pointer where a field name is expected.
        "fail1" => tsdl(&TsdlError::Syntax {
            expected: "`;`",
            found: "`*`".into(),
        }),
        "fail2" => tsdl(&TsdlError::UnknownEscape { found: 'o' }),
        "integer-range" => tsdl(&TsdlError::BadIntegerLiteral),
        "invalid-packet-size" => matches!(
            e,
            CtfError::PacketBeyondFile {
                packet_size_bits: 32768,
                ..
            }
        ),
        "invalid-sequence-length-field-class" => matches!(
            e,
            CtfError::LocationNotInteger { location } if location == "len"
        ),
        "invalid-variant-selector-field-class" => matches!(
            e,
            CtfError::LocationNotInteger { location } if location == "selector"
        ),
        "lttng-modules-2.0-pre1" | "packet-based-metadata" => {
            matches!(e, CtfError::MetadataPacketBadSize { .. })
        }
        "metadata-syntax-error" => tsdl(&TsdlError::Syntax {
            expected: "a name",
            found: "`]`".into(),
        }),
        "smalltrace" => matches!(e, CtfError::UnsupportedVersion { .. }),
        "valid-events-then-invalid-events" => {
            matches!(e, CtfError::UnknownEventClass { id: Some(255), .. })
        }
        _ => false,
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
                if !expected_kind(&name, &e.kind) {
                    bad.push(format!("{name}: unexpected kind {:?}", e.kind));
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
    assert!(e.offset > 0, "{e}");
    let (line, column) = match &e.kind {
        ErrorKind::Ctf(CtfError::Tsdl { line, column, .. }) => (*line, *column),
        k => panic!("{k:?}"),
    };
    assert_eq!(
        e.to_string(),
        format!(
            "{}: at byte {}: TSDL line {line}, column {column}: expected a name, found `]`",
            e.path.display(),
            e.offset
        )
    );
}

#[test]
fn a_folder_without_metadata_is_not_a_trace() {
    let dir = std::env::temp_dir().join(format!("virtflow-ctf-empty-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let e = CtfSource::open(&dir).err().expect("no trace");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.path, dir);
    assert!(matches!(e.kind, ErrorKind::NotATrace { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: not a trace: a CTF `metadata` file in this folder or below",
            dir.display()
        )
    );
}

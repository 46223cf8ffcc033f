//! CTF 2 traces (JSON metadata): every one reads to its end, and those that have a CTF 1.8
//! twin among babeltrace's conformance traces decode to the same events.

mod common;
use common::*;

#[test]
fn every_ctf2_trace_reads_like_its_ctf1_twin() {
    let dir = traces().join("ctf-conformance/tracecompass-ctf2");
    let mut list: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    list.sort();
    assert!(list.len() >= 10);
    let mut bad = Vec::new();
    for t in list {
        let name = t.file_name().unwrap().to_string_lossy().to_string();
        let (evs, err) = match ours(&t) {
            Ok(x) => x,
            Err(e) => {
                bad.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(e) = err {
            bad.push(format!("{name}: error after {} events: {e}", evs.len()));
            continue;
        }
        let twin = traces().join("ctf-conformance/babeltrace/succeed").join(name.trim_start_matches("CTF2-7.0-"));
        if name.starts_with("CTF2-7.0-") && twin.is_dir() {
            let (mut tw, _) = ours(&twin).unwrap();
            // The two recordings of debug-info differ in one library name.
            tw.iter_mut().for_each(|e| e.fields = e.fields.replace("/libhello-so", "/libhello_so"));
            if let Err(e) = compare(&evs, &tw) {
                bad.push(format!("{name}: differs from its CTF 1.8 twin: {e}"));
                continue;
            }
        }
        eprintln!("ok {name}: {} events", evs.len());
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn variable_length_integers() {
    let t = traces().join("ctf-conformance/tracecompass-ctf2/CTF2-vl-ints");
    let (evs, err) = ours(&t).unwrap();
    assert!(err.is_none(), "{err:?}");
    assert!(!evs.is_empty());
    eprintln!("{}", evs[0].fields);
}

//! LTTng index files: read when consistent (every packet agrees with its entry), ignored with a
//! warning when not (same events as without an index), and used by `seek` to start at a
//! timestamp (same events as reading everything and dropping the earlier ones).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use virtflow_ctf::CtfSource;
use virtflow_trace::{EventSource, Step, Timestamp};

/// (timestamp, stream, class) of each event, and (begin, end, count) of each loss notice.
type Run = (
    Vec<(Timestamp, u32, u32)>,
    Vec<(Timestamp, Timestamp, Option<u64>)>,
);

fn read_all(src: &mut CtfSource) -> Run {
    let (mut ev, mut lost) = (Vec::new(), Vec::new());
    loop {
        match src.advance().unwrap_or_else(|e| panic!("{e}")) {
            Step::Event(h) => ev.push((h.ts, h.stream, h.class.0)),
            Step::Lost(l) => lost.push((l.begin, l.end, l.count)),
            Step::End => break,
        }
    }
    (ev, lost)
}

fn index_warnings(src: &CtfSource) -> Vec<String> {
    let st = src.stats();
    st.warnings
        .into_iter()
        .filter(|w| w.contains("index"))
        .collect()
}

/// A writable copy of a trace folder, optionally without its `index` folders.
fn copy_trace(from: &Path, name: &str, with_index: bool) -> PathBuf {
    fn copy(from: &Path, to: &Path, with_index: bool) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let t = to.join(p.file_name().unwrap());
            if p.is_dir() {
                if with_index || p.file_name().unwrap() != "index" {
                    copy(&p, &t, with_index);
                }
            } else {
                std::fs::copy(&p, &t).unwrap();
                let mut perm = std::fs::metadata(&t).unwrap().permissions();
                #[allow(clippy::permissions_set_readonly_false)]
                perm.set_readonly(false);
                std::fs::set_permissions(&t, perm).unwrap();
            }
        }
    }
    let to = std::env::temp_dir().join(format!("virtflow-ctf-index-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    copy(from, &to, with_index);
    to
}

fn idx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            idx_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "idx") {
            out.push(p);
        }
    }
    out.sort();
}

const INDEXED: [&str; 4] = [
    "ctf-conformance/babeltrace/succeed/trace-with-index",
    "ctf-conformance/babeltrace/packet-seq-num/7-lost-between-2-with-index",
    "kvm-lab/s3_disk_lttng/lttng",
    "lttng/many-threads",
];

#[test]
fn consistent_indexes_are_used_and_change_nothing() {
    for t in INDEXED {
        let path = traces().join(t);
        assert!(path.is_dir(), "missing test trace {}", path.display());
        let mut idx = Vec::new();
        idx_files(&path, &mut idx);
        assert!(!idx.is_empty(), "{t}: no index files");
        let mut with = CtfSource::open(&path).unwrap();
        let run = read_all(&mut with);
        assert_eq!(index_warnings(&with), Vec::<String>::new(), "{t}");
        assert_eq!(
            with.indexed_streams(),
            idx.len(),
            "{t}: an index was dropped"
        );
        let bare = copy_trace(&path, "bare", false);
        let mut without = CtfSource::open(&bare).unwrap();
        assert_eq!(without.indexed_streams(), 0);
        assert_eq!(
            read_all(&mut without),
            run,
            "{t}: events differ without the index"
        );
        std::fs::remove_dir_all(&bare).unwrap();
    }
}

#[test]
fn packet_seq_gap_is_reported_with_index() {
    let path = traces().join(INDEXED[1]);
    let mut src = CtfSource::open(&path).unwrap();
    let (_, lost) = read_all(&mut src);
    assert_eq!(lost.len(), 1, "one gap of packets: {lost:?}");
    assert_eq!(lost[0].2, None, "a packet gap has no event count");
}

#[test]
fn corrupted_index_falls_back_with_a_warning() {
    let path = traces().join("kvm-lab/s3_disk_lttng/lttng");
    let mut reference = CtfSource::open(&path).unwrap();
    let run = read_all(&mut reference);
    // 1. Unreadable: bad magic. 2. Readable but wrong: a packet's content size changed.
    for (name, corrupt) in [
        (
            "magic",
            &(|d: &mut Vec<u8>| d[0] ^= 0xff) as &dyn Fn(&mut Vec<u8>),
        ),
        ("content", &|d: &mut Vec<u8>| {
            // Second entry's content_size (entries start at 16, are `len` bytes long).
            let len = u32::from_be_bytes(d[12..16].try_into().unwrap()) as usize;
            let o = 16 + len + 16;
            let v = u64::from_be_bytes(d[o..o + 8].try_into().unwrap()) - 8;
            d[o..o + 8].copy_from_slice(&v.to_be_bytes());
        }),
    ] {
        let copy = copy_trace(&path, name, true);
        let mut idx = Vec::new();
        idx_files(&copy, &mut idx);
        let mut d = std::fs::read(&idx[0]).unwrap();
        corrupt(&mut d);
        std::fs::write(&idx[0], d).unwrap();
        let mut src = CtfSource::open(&copy).unwrap();
        let got = read_all(&mut src);
        let w = index_warnings(&src);
        assert_eq!(w.len(), 1, "{name}: one warning expected: {w:?}");
        assert_eq!(src.indexed_streams(), idx.len() - 1, "{name}");
        assert_eq!(got, run, "{name}: events differ with a corrupted index");
        std::fs::remove_dir_all(&copy).unwrap();
    }
}

#[test]
fn seek_starts_at_a_timestamp() {
    for t in [INDEXED[2], INDEXED[3], INDEXED[0]] {
        let path = traces().join(t);
        let mut src = CtfSource::open(&path).unwrap();
        let (ev, _) = read_all(&mut src);
        let bare = copy_trace(&path, "seek", false);
        for frac in [0.0, 0.3, 0.77, 1.0] {
            let k = ((ev.len() - 1) as f64 * frac) as usize;
            let ts = ev[k].0;
            let expect: Vec<_> = ev.iter().copied().filter(|e| e.0 >= ts).collect();
            for p in [&path, &bare] {
                let mut s = CtfSource::open(p).unwrap();
                s.seek(ts).unwrap();
                let (got, lost) = read_all(&mut s);
                assert!(lost.iter().all(|l| l.1 >= ts), "{t}: loss before {ts}");
                assert_eq!(got.len(), expect.len(), "{t} from {ts} ({})", p.display());
                assert!(
                    got == expect,
                    "{t} from {ts} ({}): events differ",
                    p.display()
                );
            }
        }
        // Seeking back to the start reads everything again.
        let mut s = CtfSource::open(&path).unwrap();
        s.seek(ev[ev.len() / 2].0).unwrap();
        s.advance().unwrap();
        s.seek(Timestamp::MIN).unwrap();
        assert_eq!(read_all(&mut s).0, ev, "{t}: seek back to the start");
        std::fs::remove_dir_all(&bare).unwrap();
    }
}

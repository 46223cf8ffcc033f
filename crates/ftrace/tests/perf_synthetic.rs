//! The perf.data reader on files written by the test: time order across rounds, the bound on
//! what is held back, host strings, side-band records, losses, record types it does not know,
//! and the real recordings rewritten in pipe mode and with compressed records.

mod perf_build;

use perf_build::*;
use virtflow_ftrace::PerfSource;
use virtflow_trace::error::PerfError;
use virtflow_trace::{ClassId, ErrorKind, EventSource, FieldId, PassedOver, Step};

/// What a test compares of one step.
#[derive(Debug, PartialEq)]
enum Seen {
    Event {
        ts: i64,
        cpu: u32,
        class: String,
        fields: Vec<(String, String)>,
    },
    Lost {
        end: i64,
        count: Option<u64>,
    },
}

fn open(bytes: Vec<u8>) -> PerfSource {
    PerfSource::from_bytes("test.data", bytes).expect("opens")
}

fn drain(src: &mut PerfSource) -> Vec<Seen> {
    let mut out = Vec::new();
    loop {
        match src.advance().expect("readable") {
            Step::Event(h) => {
                let class = &src.classes()[h.class.0 as usize];
                let fields = (0..class.fields.len())
                    .filter_map(|i| {
                        let v = src.value(FieldId(i as u32))?;
                        Some((class.fields[i].name.clone(), v.to_string()))
                    })
                    .collect();
                out.push(Seen::Event {
                    ts: h.ts,
                    cpu: h.cpu,
                    class: class.name.clone(),
                    fields,
                });
            }
            Step::Lost(l) => out.push(Seen::Lost {
                end: l.end,
                count: l.count,
            }),
            Step::End => return out,
        }
    }
}

/// The `seq` of every `tick` event, in delivery order, with its time.
fn ticks(src: &mut PerfSource) -> Vec<(i64, u64)> {
    let class = src.classes_named("tick")[0];
    let seq = src.field(class, "seq").unwrap();
    let mut out = Vec::new();
    loop {
        match src.advance().expect("readable") {
            Step::Event(h) if h.class == class => out.push((h.ts, src.u64(seq).unwrap())),
            Step::End => return out,
            _ => {}
        }
    }
}

fn finished_round() -> Vec<u8> {
    record(FINISHED_ROUND, 0, &[])
}

/// Two CPUs' ring buffers written block by block, as `perf record` does: inside a round the
/// records are not in time order, and round 2 holds a record older than round 1's newest.
#[test]
fn records_of_interleaved_rounds_come_in_time_order() {
    let mut data = Vec::new();
    // Round 1: CPU 0's block, then CPU 1's.
    for (ts, cpu) in [(10, 0), (30, 0), (50, 0), (20, 1), (40, 1), (60, 1)] {
        data.extend(tick(7, ts, cpu, 100 + cpu, ts));
    }
    data.extend(finished_round());
    // Round 2: 55 is older than round 1's newest (60), which perf allows.
    for (ts, cpu) in [(70, 0), (90, 0), (55, 1), (80, 1)] {
        data.extend(tick(8, ts, cpu, 100 + cpu, ts));
    }
    data.extend(finished_round());
    // Round 3: equal timestamps keep the file's order (seq tells them apart).
    for (ts, cpu, seq) in [(100, 0, 1000), (100, 1, 1001), (95, 1, 95)] {
        data.extend(tick(7, ts, cpu, 100 + cpu, seq));
    }
    data.extend(finished_round());
    let mut src = open(tick_file(data, "h").write());
    let got = ticks(&mut src);
    let want: Vec<(i64, u64)> = [10, 20, 30, 40, 50, 55, 60, 70, 80, 90, 95]
        .iter()
        .map(|&t| (t, t as u64))
        .chain([(100, 1000), (100, 1001)])
        .collect();
    assert_eq!(got, want);
    let stats = src.stats();
    assert_eq!(stats.events, 13);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
}

/// Without `FINISHED_ROUND` (a single-CPU or hand-made file), everything read is sorted at
/// the end, as long as it fits the bound.
#[test]
fn a_file_without_rounds_is_sorted_whole() {
    let mut data = Vec::new();
    for ts in [5u64, 3, 9, 1, 7] {
        data.extend(tick(7, ts, 0, 1, ts));
    }
    let got = ticks(&mut open(tick_file(data, "h").write()));
    assert_eq!(got, vec![(1, 1), (3, 3), (5, 5), (7, 7), (9, 9)]);
}

/// Past the bound on held records, the older half is delivered; a record older than what was
/// delivered comes at the last delivered time and is counted, never out of order.
#[test]
fn disorder_beyond_the_bound_is_counted_not_delivered_out_of_order() {
    // More records than the reader holds (2^20), in order, then one far older.
    let n = (1u64 << 20) + 1000;
    let mut data = Vec::with_capacity((n as usize + 1) * 56);
    for i in 0..n {
        data.extend(tick(7, 1000 + i, 0, 1, i));
    }
    data.extend(tick(7, 1, 0, 1, u64::MAX));
    let mut src = open(tick_file(data, "h").write());
    let got = ticks(&mut src);
    assert_eq!(got.len() as u64, n + 1);
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "time order kept");
    let late = got.iter().find(|t| t.1 == u64::MAX).unwrap();
    assert!(
        late.0 > 1000,
        "the late record is delivered at a later time"
    );
    let warnings = src.stats().warnings;
    assert!(
        warnings.iter().any(|w| w.contains("1 events came after")),
        "{warnings:?}"
    );
}

#[test]
fn host_strings_come_from_the_header_features() {
    let src = open(tick_file(finished_round(), "lab-host-3").write());
    assert_eq!(src.hostname().as_deref(), Some("lab-host-3"));
    let info = src.info();
    assert_eq!(info.os_release.as_deref(), Some("6.1.0-test"));
    assert_eq!(
        (info.nr_cpus_available, info.nr_cpus_online),
        (Some(4), Some(2))
    );
    // perf writes "(none)" for a host without a name: no hostname then.
    let src = open(tick_file(finished_round(), "(none)").write());
    assert_eq!(src.hostname(), None);
}

#[test]
fn the_real_recordings_name_their_host() {
    let src = PerfSource::open(&traces().join("host-real/perf.data")).unwrap();
    assert_eq!(src.hostname().as_deref(), Some("vm"));
    assert_eq!(src.info().os_release.as_deref(), Some("6.18.44-fc-v595"));
    assert_eq!(src.info().nr_cpus_online, Some(2));
}

/// Thread names follow COMM records in time order; samples carry them in `common_comm`, and
/// the COMM records are events of `perf_comm`.
#[test]
fn comm_records_name_threads_and_are_events() {
    let mut data = Vec::new();
    // A synthesized record (time 0) first, then a rename at time 25.
    data.extend(comm(7, 0, 40, 41, "worker"));
    data.extend(tick(7, 20, 0, 41, 1));
    data.extend(comm(7, 25, 40, 41, "renamed"));
    data.extend(tick(7, 30, 0, 41, 2));
    let mut src = open(tick_file(data, "h").write());
    let seen = drain(&mut src);
    let comm_of = |s: &Seen| match s {
        Seen::Event { class, fields, .. } if class == "tick" => fields
            .iter()
            .find(|f| f.0 == "common_comm")
            .map(|f| f.1.clone()),
        _ => None,
    };
    let names: Vec<_> = seen.iter().filter_map(comm_of).collect();
    assert_eq!(names, vec!["\"worker\"", "\"renamed\""]);
    let Seen::Event {
        ts, class, fields, ..
    } = &seen[0]
    else {
        panic!("{seen:?}")
    };
    assert_eq!((ts, class.as_str()), (&0, "perf_comm"));
    let f = |n: &str| fields.iter().find(|f| f.0 == n).unwrap().1.clone();
    assert_eq!(
        (f("pid"), f("tid"), f("comm")),
        ("40".into(), "41".into(), "\"worker\"".into())
    );
    // The sample's own pid and tid, as perf's CTF conversion names them.
    let Seen::Event { fields, .. } = &seen[1] else {
        panic!()
    };
    assert!(fields.contains(&("perf_tid".into(), "41".into())));
    assert!(fields.contains(&("perf_pid".into(), "41".into())));
}

/// Under an interest, other classes are passed over (still counted, and told by
/// `passed_over`) but for each CPU's first of them, and thread names are still followed.
#[test]
fn interest_passes_over_other_classes() {
    let mut data = Vec::new();
    data.extend(comm(7, 0, 40, 41, "worker"));
    for i in 0..10 {
        data.extend(tick(7, 10 + i, 0, 41, i));
    }
    data.extend(comm(7, 30, 40, 41, "renamed"));
    data.extend(tick(7, 40, 0, 41, 10));
    let mut src = open(tick_file(data, "h").write());
    let tick_class = src.classes_named("tick")[0];
    let comm_class = src.classes_named("perf_comm")[0];
    src.set_interest(Some(&[tick_class]));
    let comm_field = src.field(tick_class, "common_comm").unwrap();
    let (mut ticks, mut others) = (Vec::new(), Vec::new());
    loop {
        match src.advance().unwrap() {
            Step::Event(h) if h.class == tick_class => {
                ticks.push(src.str(comm_field).map(str::to_string))
            }
            Step::Event(h) => others.push((h.class, h.ts)),
            Step::Lost(_) => {}
            Step::End => break,
        }
    }
    // CPU 0's first record of another class, and no other.
    assert_eq!(others, [(comm_class, 0)]);
    assert_eq!(ticks.len(), 11);
    assert_eq!(
        ticks[10].as_deref(),
        Some("renamed"),
        "the names follow the COMM passed over"
    );
    assert_eq!(src.stats().events, 13, "the COMM records count");
    assert_eq!(
        src.passed_over(0),
        PassedOver {
            events: 1,
            last: Some(30)
        }
    );

    // Interest in nothing but perf_comm: the samples are passed over undecoded but the first.
    let mut data = Vec::new();
    data.extend(comm(7, 5, 40, 41, "worker"));
    data.extend(tick(7, 10, 0, 41, 1));
    data.extend(tick(7, 11, 0, 41, 2));
    data.extend(tick(7, 12, 0, 41, 3));
    let mut src = open(tick_file(data, "h").write());
    src.set_interest(Some(&[comm_class]));
    let mut classes = Vec::new();
    while let Step::Event(h) = src.advance().unwrap() {
        classes.push((h.class, h.ts));
    }
    assert_eq!(classes, [(comm_class, 5), (tick_class, 10)]);
    assert_eq!(src.stats().events, 4);
    assert_eq!(
        src.passed_over(0),
        PassedOver {
            events: 2,
            last: Some(12)
        }
    );
}

#[test]
fn lost_records_become_loss_notices() {
    let mut data = Vec::new();
    data.extend(tick(7, 10, 1, 41, 1));
    // PERF_RECORD_LOST: id, lost, trailer.
    let mut body = 7u64.to_le_bytes().to_vec();
    body.extend_from_slice(&12u64.to_le_bytes());
    body.extend(trailer(7, 15, 1, 0));
    data.extend(record(LOST, 0, &body));
    // PERF_RECORD_LOST_SAMPLES: lost, trailer.
    let mut body = 3u64.to_le_bytes().to_vec();
    body.extend(trailer(7, 18, 1, 0));
    data.extend(record(13, 0, &body));
    data.extend(tick(7, 20, 1, 41, 2));
    let mut src = open(tick_file(data, "h").write());
    let seen = drain(&mut src);
    let losses: Vec<_> = seen
        .iter()
        .filter(|s| matches!(s, Seen::Lost { .. }))
        .collect();
    assert_eq!(
        losses,
        vec![
            &Seen::Lost {
                end: 15,
                count: Some(12)
            },
            &Seen::Lost {
                end: 18,
                count: Some(3)
            }
        ]
    );
    let stats = src.stats();
    assert_eq!((stats.lost_events, stats.lost_notices), (15, 2));
}

/// A loss lies in the buffer of the CPU its record names: it begins at that CPU's record
/// before (not at whatever another CPU recorded since), with or without an interest that
/// passes that record over.
#[test]
fn a_loss_begins_after_its_cpus_record_before() {
    let mut data = Vec::new();
    data.extend(tick(7, 10, 0, 41, 1));
    data.extend(tick(7, 12, 1, 42, 2));
    data.extend(tick(7, 14, 0, 41, 3));
    data.extend(tick(7, 16, 1, 42, 4));
    let mut body = 7u64.to_le_bytes().to_vec();
    body.extend_from_slice(&5u64.to_le_bytes());
    body.extend(trailer(7, 20, 0, 0));
    data.extend(record(LOST, 0, &body));
    data.extend(tick(7, 22, 1, 42, 5));
    let bytes = tick_file(data, "h").write();
    let losses = |interest: bool| {
        let mut src = open(bytes.clone());
        if interest {
            let comm_class = src.classes_named("perf_comm")[0];
            src.set_interest(Some(&[comm_class]));
        }
        let mut losses = Vec::new();
        loop {
            match src.advance().unwrap() {
                Step::Lost(l) => losses.push((l.begin, l.end, l.count)),
                Step::End => break,
                Step::Event(_) => {}
            }
        }
        (losses, src.passed_over(0).events)
    };
    assert_eq!(losses(false), (vec![(14, 20, Some(5))], 0));
    // The ticks of 14, 16 and 22 passed over (each CPU's first is announced).
    assert_eq!(losses(true), (vec![(14, 20, Some(5))], 3));
}

/// Record types perf does not define are passed over by their size and counted; known ones
/// the reader has no use for (and their payloads) are passed over silently.
#[test]
fn unknown_record_types_are_passed_over_and_counted() {
    let mut data = Vec::new();
    data.extend(tick(7, 10, 0, 1, 1));
    data.extend(record(99, 0, &[0xab; 40]));
    data.extend(record(99, 0, &[0xab; 8]));
    data.extend(record(5000, 0, &[]));
    // An AUXTRACE record and its 24-byte payload after it.
    let mut body = 24u64.to_le_bytes().to_vec();
    body.extend_from_slice(&[0; 32]);
    data.extend(record(71, 0, &body));
    data.extend_from_slice(&[0xcd; 24]);
    data.extend(tick(7, 20, 0, 1, 2));
    let mut src = open(tick_file(data, "h").write());
    assert_eq!(ticks(&mut src), vec![(10, 1), (20, 2)]);
    let warnings = src.stats().warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("3 records of types") && w.contains("type 99 ×2")),
        "{warnings:?}"
    );
}

/// The error kind of a file that does not open.
fn open_error(bytes: Vec<u8>) -> PerfError {
    match PerfSource::from_bytes("bad.data", bytes) {
        Ok(_) => panic!("opened"),
        Err(e) => match e.kind {
            ErrorKind::Perf(k) => k,
            other => panic!("not a perf.data error: {other:?}"),
        },
    }
}

#[test]
fn random_bytes_named_perf_data_are_an_error() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = |n: usize| {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect::<Vec<u8>>()
    };
    for n in [0, 3, 16, 4096, 100_000] {
        let bytes = random(n);
        assert!(
            matches!(open_error(bytes.clone()), PerfError::NotPerfData { .. }),
            "{n} random bytes"
        );
        let dir = std::env::temp_dir().join(format!("virtflow-perf-random-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("perf.data");
        std::fs::write(&path, &bytes).unwrap();
        let err = PerfSource::open(&path)
            .err()
            .expect("an error, not an empty trace");
        assert_eq!(err.path, path);
        assert!(err.to_string().contains("not a perf.data file"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
    // The right magic followed by random bytes: still an error at opening.
    for n in [8, 100, 4096, 100_000] {
        let mut bytes = b"PERFILE2".to_vec();
        bytes.extend(random(n));
        let _kind = open_error(bytes);
    }
}

#[test]
fn files_perf_cannot_have_written_are_refused_clearly() {
    assert_eq!(
        open_error(b"2ELIFREP\0\0\0\0\0\0\0\x68".to_vec()),
        PerfError::UnsupportedBigEndian
    );
    assert_eq!(
        open_error(b"PERFFILE".to_vec()),
        PerfError::UnsupportedVersion1
    );
    // Killed before writing its header's sizes.
    let mut file = tick_file(tick(7, 10, 0, 1, 1), "h").write();
    file[48..56].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(open_error(file), PerfError::UnfinishedFile);
    // No tracepoint recorded.
    let mut f = tick_file(finished_round(), "h");
    f.features.remove(&FEATURE_TRACING_DATA);
    assert_eq!(open_error(f.write()), PerfError::NoTracingData);
}

/// Every step of a real recording, compared between two forms of it.
fn same_steps(a: &mut PerfSource, b: &mut PerfSource) {
    let (x, y) = (drain(a), drain(b));
    assert!(x.len() > 10_000, "{} steps", x.len());
    assert_eq!(x.len(), y.len());
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        assert_eq!(p, q, "step {i}");
    }
    assert_eq!(a.stats(), b.stats());
}

#[test]
fn a_real_recording_in_pipe_mode_reads_the_same() {
    for name in ["host-real/perf.data", "kvm-lab/s1_idle/perf.data"] {
        let bytes = std::fs::read(traces().join(name)).unwrap();
        let pipe = PerfFile::parse(&bytes).write_pipe();
        assert_eq!(u64::from_le_bytes(pipe[8..16].try_into().unwrap()), 16);
        let mut file = open(bytes);
        let mut piped = open(pipe);
        assert_eq!(file.classes(), piped.classes());
        assert_eq!(piped.hostname(), file.hostname());
        same_steps(&mut file, &mut piped);
    }
}

#[test]
fn a_real_recording_with_compressed_records_reads_the_same() {
    for name in ["host-real/perf.data", "kvm-lab/s1_idle/perf.data"] {
        let bytes = std::fs::read(traces().join(name)).unwrap();
        // Cut every 30000 bytes: records are split between compressed records.
        let compressed = PerfFile::parse(&bytes).compressed(30_000);
        assert!(compressed.records().iter().any(|r| r.1 == COMPRESSED));
        let mut file = open(bytes);
        let mut zipped = open(compressed.write());
        same_steps(&mut file, &mut zipped);
    }
}

/// A record cut off at the end of the data: the events before it, then an error at its
/// offset.
#[test]
fn a_truncated_pipe_gives_its_events_then_the_error() {
    let mut data = Vec::new();
    for i in 0..5 {
        data.extend(tick(7, 10 + i, 0, 1, i));
    }
    let mut pipe = tick_file(data, "h").write_pipe();
    let last = pipe.len() - tick(7, 0, 0, 1, 0).len();
    let cut = pipe.len() - 20;
    pipe.truncate(cut);
    let mut src = open(pipe);
    let mut n = 0;
    let err = loop {
        match src.advance() {
            Ok(Step::Event(_)) => n += 1,
            Ok(Step::Lost(_)) => {}
            Ok(Step::End) => panic!("no error"),
            Err(e) => break e,
        }
    };
    assert_eq!(n, 4);
    assert_eq!(err.offset as usize, last);
    assert!(
        matches!(err.kind, ErrorKind::Perf(PerfError::RecordPastEnd { .. })),
        "{err}"
    );
    assert_eq!(src.advance(), Ok(Step::End));
}

#[test]
fn side_band_classes_are_laid_out_as_the_ctf_conversion_does() {
    let src = open(tick_file(finished_round(), "h").write());
    let names = |c: ClassId| -> Vec<String> {
        src.classes()[c.0 as usize]
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect()
    };
    assert_eq!(
        names(src.classes_named("perf_comm")[0]),
        ["pid", "tid", "comm"]
    );
    for class in ["perf_fork", "perf_exit"] {
        assert_eq!(
            names(src.classes_named(class)[0]),
            ["pid", "ppid", "tid", "ptid", "time"]
        );
    }
    let tick = names(src.classes_named("tick")[0]);
    assert_eq!(
        tick[tick.len() - 4..],
        ["common_comm", "common_tgid", "perf_tid", "perf_pid"]
    );
}

//! `.dat` layouts the real traces do not have, made from a real trace converted by
//! `trace-cmd convert` to uncompressed version 7 and then rewritten in place:
//!
//! - per-CPU data recompressed in several chunks with zlib (`flate2`) and with zstd — the zstd
//!   form is first checked to read the same with `trace-cmd report`, which shows the rewrite is
//!   a valid file (trace-cmd here has no zlib);
//! - a second buffer (instance) added through an extra options section;
//! - a ring-buffer page marked as following lost events, with and without a stored count,
//!   against what `trace-cmd report` says.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use virtflow_ftrace::DatSource;
use virtflow_trace::{EventSource, FieldId, Step};

/// (timestamp, cpu, stream, name, every field as text).
type Event = (i64, u32, u32, String, Vec<String>);

fn read_events(path: &Path) -> (Vec<Event>, Vec<virtflow_trace::LostEvents>) {
    let mut s = DatSource::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut events = Vec::new();
    let mut lost = Vec::new();
    loop {
        match s.advance().unwrap_or_else(|e| panic!("{e}")) {
            Step::End => break,
            Step::Lost(l) => lost.push(l),
            Step::Event(h) => {
                let class = &s.classes()[h.class.0 as usize];
                let values = (0..class.fields.len())
                    .map(|i| format!("{:?}", s.value(FieldId(i as u32))))
                    .collect();
                events.push((h.ts, h.cpu, h.stream, class.name.clone(), values));
            }
        }
    }
    (events, lost)
}

fn uncompressed_v7(dir: &Path) -> PathBuf {
    let dst = dir.join("plain.dat");
    common::convert(
        &common::traces_dir().join("kvm-lab/s1_idle/trace.dat"),
        &dst,
        "7",
        "none",
    );
    dst
}

fn put_u64(d: &mut [u8], at: usize, v: u64) {
    d[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Rewrites the top buffer's per-CPU data of an uncompressed v7 file as chunks of
/// `pages_per_chunk` pages compressed by `compress`, appended at the end of the file.
fn recompress(
    plain: &Path,
    out: &Path,
    name: &[u8; 4],
    pages_per_chunk: usize,
    compress: impl Fn(&[u8]) -> Vec<u8>,
) {
    let mut d = std::fs::read(plain).unwrap();
    let source = DatSource::open(plain).unwrap();
    let meta = source.meta();
    let page = meta.page_size as usize;
    let buffer = &meta.buffers[0];
    assert!(!buffer.compressed);
    // The compression header: "none\0\0" after the 18-byte file header.
    assert_eq!(&d[18..24], b"none\0\0");
    d[18..22].copy_from_slice(name);
    // The buffer section is now compressed.
    let flags_at = buffer.section_offset as usize + 2;
    d[flags_at..flags_at + 2].copy_from_slice(&1u16.to_le_bytes());
    for cpu in &buffer.cpus {
        let mut entry = cpu.cpu.to_le_bytes().to_vec();
        entry.extend(cpu.offset.to_le_bytes());
        entry.extend(cpu.size.to_le_bytes());
        let entry_at = find(&d, &entry).expect("the BUFFER option's CPU entry");
        let data = d[cpu.offset as usize..(cpu.offset + cpu.size) as usize].to_vec();
        let chunks: Vec<&[u8]> = data.chunks(page * pages_per_chunk).collect();
        let new_offset = d.len() as u64;
        d.extend((chunks.len() as u32).to_le_bytes());
        for c in chunks {
            let z = compress(c);
            d.extend((z.len() as u32).to_le_bytes());
            d.extend((c.len() as u32).to_le_bytes());
            d.extend(z);
        }
        let new_size = d.len() as u64 - new_offset;
        put_u64(&mut d, entry_at + 4, new_offset);
        put_u64(&mut d, entry_at + 12, new_size);
    }
    std::fs::write(out, d).unwrap();
}

/// Chains a new options section holding `options` (id, data) at the end of a v7 file.
fn append_options(
    d: &mut Vec<u8>,
    meta: &virtflow_ftrace::dat::meta::DatMeta,
    options: &[(u16, Vec<u8>)],
) {
    let last = *meta.options_sections.last().unwrap() as usize;
    let size = u64::from_le_bytes(d[last + 8..last + 16].try_into().unwrap()) as usize;
    let done_value_at = last + 16 + size - 8;
    assert_eq!(
        &d[done_value_at - 6..done_value_at - 4],
        &0u16.to_le_bytes(),
        "DONE"
    );
    let new_section = d.len() as u64;
    put_u64(d, done_value_at, new_section);
    let mut body = Vec::new();
    for (id, data) in options {
        body.extend(id.to_le_bytes());
        body.extend((data.len() as u32).to_le_bytes());
        body.extend(data);
    }
    body.extend(0u16.to_le_bytes());
    body.extend(8u32.to_le_bytes());
    body.extend(0u64.to_le_bytes());
    d.extend(0u16.to_le_bytes()); // options section
    d.extend(0u16.to_le_bytes()); // flags
    d.extend(0u32.to_le_bytes()); // description string id
    d.extend((body.len() as u64).to_le_bytes());
    d.extend(body);
}

/// Timestamps of `trace-cmd report -t`, in order.
fn trace_cmd_timestamps(path: &Path) -> Vec<i64> {
    common::trace_cmd(&["report", "-t", path.to_str().unwrap()])
        .lines()
        .filter(|l| !l.starts_with("cpus="))
        .map(|l| {
            let close = l.find("] ").expect("a CPU column");
            let rest = l[close + 2..].trim_start();
            let ts = &rest[..rest.find(':').unwrap()];
            let (s, ns) = ts.split_once('.').unwrap();
            assert_eq!(ns.len(), 9, "{l}");
            s.parse::<i64>().unwrap() * 1_000_000_000 + ns.parse::<i64>().unwrap()
        })
        .collect()
}

#[test]
fn tsc_conversion_and_offset_options_match_trace_cmd() {
    let dir = common::scratch("tsc2nsec");
    let plain = uncompressed_v7(&dir);
    let mut d = std::fs::read(&plain).unwrap();
    let source = DatSource::open(&plain).unwrap();
    // TSC2NSEC: ns = tsc * 3 >> 1 (offset field set, to see whether it is used); OFFSET: 1e9.
    let mut tsc = Vec::new();
    tsc.extend(3u32.to_le_bytes());
    tsc.extend(1u32.to_le_bytes());
    tsc.extend(777u64.to_le_bytes());
    let options = [(14u16, tsc), (7u16, b"1000000000\0".to_vec())];
    append_options(&mut d, source.meta(), &options);
    let path = dir.join("tsc.dat");
    std::fs::write(&path, &d).unwrap();
    let theirs = trace_cmd_timestamps(&path);
    let (ours, _) = read_events(&path);
    let ours: Vec<i64> = ours.iter().map(|e| e.0).collect();
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "timestamps differ from trace-cmd's");
    let (plain_events, _) = read_events(&plain);
    assert_ne!(plain_events[0].0, ours[0], "the options changed nothing");
}

#[test]
fn guest_time_shift_and_guest_list_match_trace_cmd() {
    let dir = common::scratch("timeshift");
    let plain = uncompressed_v7(&dir);
    let mut d = std::fs::read(&plain).unwrap();
    let source = DatSource::open(&plain).unwrap();
    let (plain_events, _) = read_events(&plain);
    let first = plain_events[0].0;
    let last = plain_events.last().unwrap().0;
    // CPU 0: three samples, interpolated; CPU 1: one sample (a constant offset).
    let mut ts = Vec::new();
    ts.extend(0x1234u64.to_le_bytes()); // peer trace id
    ts.extend(1u32.to_le_bytes()); // flags: interpolate
    ts.extend(2u32.to_le_bytes()); // CPUs
    let times = [first - 1_000, (first + last) / 2, last + 1_000];
    let offsets = [-5_000i64, 20_000, 100_000];
    ts.extend(3u32.to_le_bytes());
    for t in times {
        ts.extend(t.to_le_bytes());
    }
    for o in offsets {
        ts.extend(o.to_le_bytes());
    }
    for _ in 0..3 {
        ts.extend(1i64.to_le_bytes()); // scaling
    }
    ts.extend(1u32.to_le_bytes());
    ts.extend(first.to_le_bytes());
    ts.extend(777i64.to_le_bytes());
    ts.extend(1i64.to_le_bytes());
    let mut guest = Vec::new();
    guest.extend(b"vm1\0");
    guest.extend(0x99u64.to_le_bytes());
    guest.extend(2u32.to_le_bytes());
    for (vcpu, pid) in [(0u32, 139u32), (1, 140)] {
        guest.extend(vcpu.to_le_bytes());
        guest.extend(pid.to_le_bytes());
    }
    append_options(&mut d, source.meta(), &[(12, ts), (13, guest)]);
    let path = dir.join("guest.dat");
    std::fs::write(&path, &d).unwrap();
    let theirs = trace_cmd_timestamps(&path);
    let (ours, _) = read_events(&path);
    let ours: Vec<i64> = ours.iter().map(|e| e.0).collect();
    assert!(ours == theirs, "timestamps differ from trace-cmd's");
    assert_ne!(plain_events[0].0, ours[0], "the shift changed nothing");
    let s = DatSource::open(&path).unwrap();
    let g = s.guests();
    assert_eq!(g.len(), 1);
    assert_eq!((g[0].name.as_str(), g[0].trace_id), ("vm1", 0x99));
    assert_eq!(g[0].vcpus, vec![(0, 139), (1, 140)]);
}

#[test]
fn zstd_and_zlib_chunks_read_like_the_uncompressed_file() {
    let dir = common::scratch("recompress");
    let plain = uncompressed_v7(&dir);
    let (expected, _) = read_events(&plain);
    assert!(expected.len() > 1000);

    let zstd_file = dir.join("zstd.dat");
    recompress(&plain, &zstd_file, b"zstd", 3, |c| {
        zstd::bulk::compress(c, 3).unwrap()
    });
    // trace-cmd reads the rewritten file as it reads the original.
    let theirs_plain = common::trace_cmd(&["report", "-t", plain.to_str().unwrap()]);
    let theirs_zstd = common::trace_cmd(&["report", "-t", zstd_file.to_str().unwrap()]);
    assert_eq!(theirs_plain.lines().count(), theirs_zstd.lines().count());
    assert!(
        theirs_plain.lines().eq(theirs_zstd.lines()),
        "trace-cmd disagrees"
    );
    assert!(
        read_events(&zstd_file).0 == expected,
        "zstd chunks read differently"
    );

    let zlib_file = dir.join("zlib.dat");
    recompress(&plain, &zlib_file, b"zlib", 5, |c| {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(c).unwrap();
        e.finish().unwrap()
    });
    assert!(
        read_events(&zlib_file).0 == expected,
        "zlib chunks read differently"
    );
}

#[test]
fn a_second_buffer_is_read_as_more_streams() {
    let dir = common::scratch("instance");
    let plain = uncompressed_v7(&dir);
    let (expected, _) = read_events(&plain);
    let mut d = std::fs::read(&plain).unwrap();
    let source = DatSource::open(&plain).unwrap();
    let meta = source.meta();
    let buffer = meta.buffers[0].clone();
    // A BUFFER option named "second" that describes the same per-CPU data.
    let mut opt = Vec::new();
    opt.extend(buffer.section_offset.to_le_bytes());
    opt.extend(b"second\0");
    opt.extend(buffer.clock.as_bytes());
    opt.push(0);
    opt.extend(buffer.page_size.to_le_bytes());
    opt.extend((buffer.cpus.len() as u32).to_le_bytes());
    for c in &buffer.cpus {
        opt.extend(c.cpu.to_le_bytes());
        opt.extend(c.offset.to_le_bytes());
        opt.extend(c.size.to_le_bytes());
    }
    append_options(&mut d, meta, &[(3, opt)]);
    let two = dir.join("two-buffers.dat");
    std::fs::write(&two, &d).unwrap();

    // trace-cmd sees the instance too.
    let theirs = common::trace_cmd(&["report", "-t", two.to_str().unwrap()]);
    assert!(
        theirs.contains("second"),
        "trace-cmd does not list the instance"
    );

    let s = DatSource::open(&two).unwrap();
    assert_eq!(s.meta().buffers.len(), 2);
    let ncpu = buffer.cpus.len() as u32;
    assert_eq!(s.stream_info(ncpu), Some(("second", buffer.cpus[0].cpu)));
    let (got, _) = read_events(&two);
    assert_eq!(got.len(), 2 * expected.len());
    let top: Vec<Event> = got.iter().filter(|e| e.2 < ncpu).cloned().collect();
    let second: Vec<Event> = got
        .iter()
        .filter(|e| e.2 >= ncpu)
        .map(|e| (e.0, e.1, e.2 - ncpu, e.3.clone(), e.4.clone()))
        .collect();
    assert!(top == expected, "the top buffer reads as before");
    assert!(
        second == expected,
        "the instance reads like the data it describes"
    );
    // Merged as trace-cmd merges them: by time, the top buffer first on equal times.
    let theirs_order: Vec<bool> = theirs
        .lines()
        .skip_while(|l| l.starts_with("cpus="))
        .map(|l| l.starts_with("second:"))
        .collect();
    let ours_order: Vec<bool> = got.iter().map(|e| e.2 >= ncpu).collect();
    assert!(theirs_order == ours_order, "buffers interleave differently");
}

#[test]
fn lost_event_markers_match_trace_cmd() {
    let dir = common::scratch("lost");
    let plain = uncompressed_v7(&dir);
    let mut d = std::fs::read(&plain).unwrap();
    let source = DatSource::open(&plain).unwrap();
    let meta = source.meta();
    let page = meta.page_size as usize;
    let cpu0 = meta.buffers[0].cpus[0].clone();
    // Find two pages of CPU 0 with room after their records for a stored count.
    let mut marked = Vec::new();
    let pages = (cpu0.size as usize) / page;
    for p in 1..pages {
        let at = cpu0.offset as usize + p * page;
        let commit = u64::from_le_bytes(d[at + 8..at + 16].try_into().unwrap());
        let size = (commit & ((1 << 27) - 1)) as usize;
        if size > 0 && 16 + size + 8 <= page {
            marked.push((at, size));
            if marked.len() == 2 {
                break;
            }
        }
    }
    assert_eq!(marked.len(), 2, "no page with room for a count");
    // First page: 4242 lost events, stored; second page: lost, count unknown.
    let (a, size_a) = marked[0];
    put_u64(&mut d, a + 8, size_a as u64 | (1 << 31) | (1 << 30));
    put_u64(&mut d, a + 16 + size_a, 4242);
    let (b, size_b) = marked[1];
    put_u64(&mut d, b + 8, size_b as u64 | (1 << 31));
    let lost_file = dir.join("lost.dat");
    std::fs::write(&lost_file, &d).unwrap();

    let theirs = common::trace_cmd(&["report", "-t", lost_file.to_str().unwrap()]);
    let dropped: Vec<&str> = theirs
        .lines()
        .filter(|l| l.contains("EVENTS DROPPED"))
        .collect();
    assert_eq!(dropped.len(), 2, "trace-cmd reports {dropped:?}");
    assert!(dropped[0].contains("4242"), "{dropped:?}");

    // Where trace-cmd puts the markers: after how many events.
    let mut before = Vec::new();
    let mut n = 0;
    for l in theirs.lines().filter(|l| !l.starts_with("cpus=")) {
        if l.contains("EVENTS DROPPED") {
            before.push(n);
        } else {
            n += 1;
        }
    }
    let mut s = DatSource::open(&lost_file).unwrap();
    let mut ours_before = Vec::new();
    let mut n = 0;
    loop {
        match s.advance().unwrap() {
            Step::End => break,
            Step::Lost(_) => ours_before.push(n),
            Step::Event(_) => n += 1,
        }
    }
    assert_eq!(
        ours_before, before,
        "loss markers at other places than trace-cmd's"
    );

    let (events, lost) = read_events(&lost_file);
    let (expected, none) = read_events(&plain);
    assert!(none.is_empty());
    assert!(events == expected, "marking losses changes no event");
    assert_eq!(lost.len(), 2);
    assert_eq!(lost[0].count, Some(4242));
    assert_eq!(lost[1].count, None);
    assert!(lost.iter().all(|l| l.cpu == cpu0.cpu && l.begin <= l.end));
    let stats = DatSource::open(&lost_file).map(|mut s| {
        while !matches!(s.advance(), Ok(Step::End) | Err(_)) {}
        s.stats()
    });
    let stats = stats.unwrap();
    assert_eq!((stats.lost_notices, stats.lost_events), (2, 4242));

    // Under an interest, the same loss notices: the record that bounds a loss is announced,
    // and a loss begins after the stream's last event, passed over or not.
    let open = || DatSource::open(&lost_file).map(|s| Box::new(s) as Box<dyn EventSource>);
    let tally = virtflow_testkit::reader::check_every_path("lost.dat", &open);
    assert_eq!(tally.losses, 2);
    let mut s = open().unwrap();
    s.set_interest(Some(&[]));
    while !matches!(s.advance().unwrap(), Step::End) {}
    assert!(
        s.passed_over(0).events > tally.events / 2,
        "{:?} of {} events passed over",
        s.passed_over(0),
        tally.events
    );
}

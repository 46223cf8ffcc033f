//! perf.data reader: the tracepoint samples of `perf record -e 'kvm:*' -e 'sched:*' …`.
//!
//! The container (header, attributes, feature sections, records sorted by time across
//! `FINISHED_ROUND`s) is read by the `linux-perf-data` crate. The tracepoints' formats come from
//! the file's `HEADER_TRACING_DATA` section, which has the layout of the start of a trace-cmd
//! v6 file (header page, ftrace formats, event formats, kallsyms, printk formats, saved
//! command lines); they are parsed with [`crate::format`], and each sample's `PERF_SAMPLE_RAW`
//! bytes (the record, from `common_type` on) are decoded with [`crate::record`].
//!
//! One class per tracepoint attribute: the format's fields, then `common_comm` (the thread's
//! name from `PERF_RECORD_COMM`, or the saved command lines) and `common_tgid` (the sample's
//! `PERF_SAMPLE_TID` pid). Timestamps are `PERF_SAMPLE_TIME` (ns), the CPU is
//! `PERF_SAMPLE_CPU`. `PERF_RECORD_LOST` and `PERF_RECORD_LOST_SAMPLES` become
//! [`Step::Lost`]; samples of non-tracepoint events are counted as unknown.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use linux_perf_data::linux_perf_event_reader::{EventRecord, RawData, RecordType};
use linux_perf_data::{Feature, PerfFileReader, PerfFileRecord, PerfRecordIter};
use virtflow_trace::{
    ClassId, EventClass, EventHeader, EventSource, FieldDesc, FieldId, FieldKind, LostEvents,
    ReadStats, Scope, Step, TraceError, Value,
};

use crate::format::{parse_format, EventFormat};
use crate::record::{self, Endian};

/// A perf.data file's tracepoint samples (see the module documentation).
pub struct PerfSource {
    path: PathBuf,
    perf_file: linux_perf_data::PerfFile,
    records: PerfRecordIter<Cursor<Vec<u8>>>,
    endian: Endian,
    classes: Vec<EventClass>,
    /// The format of each class.
    formats: Vec<EventFormat>,
    /// Class of each perf attribute, by attribute index (`None`: not a tracepoint).
    attr_class: Vec<Option<u32>>,
    /// Thread names: saved command lines, then `PERF_RECORD_COMM` as they come.
    comms: HashMap<i32, String>,
    /// The current sample: its class, raw record bytes, thread and process ids.
    class: usize,
    raw: Vec<u8>,
    tid: i32,
    tgid: Option<i32>,
    last_ts: i64,
    records_read: u64,
    stats: ReadStats,
    done: bool,
}

impl PerfSource {
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let bytes = std::fs::read(path).map_err(|e| TraceError::io(path, e))?;
        let PerfFileReader {
            perf_file,
            record_iter,
        } = PerfFileReader::parse_file(Cursor::new(bytes))
            .map_err(|e| TraceError::new(path, 0, format!("not a readable perf.data file: {e}")))?;
        let tracing = perf_file
            .feature_section_data(Feature::TRACING_DATA)
            .ok_or_else(|| {
                TraceError::new(
                    path,
                    0,
                    "perf.data has no tracing data (no tracepoint events recorded)",
                )
            })?;
        let tracing = parse_tracing_data(tracing).map_err(|(offset, message)| {
            TraceError::new(
                path,
                0,
                format!("tracing data section, at byte {offset} of it: {message}"),
            )
        })?;
        let by_id: HashMap<u32, &EventFormat> = tracing.formats.iter().map(|f| (f.id, f)).collect();

        let mut classes = Vec::new();
        let mut formats = Vec::new();
        let mut attr_class = Vec::new();
        let mut stats = ReadStats::default();
        let mut class_of_id: HashMap<u64, u32> = HashMap::new();
        for attr in perf_file.event_attributes() {
            use linux_perf_data::linux_perf_event_reader::PerfEventType;
            let class = match attr.attr.type_ {
                PerfEventType::Tracepoint(id) => match class_of_id.get(&id) {
                    Some(&c) => Some(c),
                    None => match by_id.get(&(id as u32)) {
                        Some(format) => {
                            let mut class = record::event_class(format);
                            class.fields.push(FieldDesc {
                                name: "common_comm".into(),
                                scope: Scope::Common,
                                kind: FieldKind::Str,
                            });
                            class.fields.push(FieldDesc {
                                name: "common_tgid".into(),
                                scope: Scope::Common,
                                kind: FieldKind::Int,
                            });
                            let c = classes.len() as u32;
                            classes.push(class);
                            formats.push((*format).clone());
                            class_of_id.insert(id, c);
                            Some(c)
                        }
                        None => {
                            stats.warnings.push(format!(
                                "{}: tracepoint id {id} ({}) has no format in the tracing data; its samples are skipped",
                                path.display(),
                                attr.name.as_deref().unwrap_or("unnamed")
                            ));
                            None
                        }
                    },
                },
                _ => None,
            };
            attr_class.push(class);
        }
        Ok(PerfSource {
            path: path.to_path_buf(),
            perf_file,
            records: record_iter,
            endian: tracing.endian,
            classes,
            formats,
            attr_class,
            comms: {
                // perf names the idle tasks `swapper`, as the kernel does.
                let mut comms = tracing.cmdlines;
                comms.entry(0).or_insert_with(|| "swapper".to_string());
                comms
            },
            class: 0,
            raw: Vec::new(),
            tid: -1,
            tgid: None,
            last_ts: 0,
            records_read: 0,
            stats,
            done: false,
        })
    }

    fn error(&mut self, message: String) -> TraceError {
        self.done = true;
        TraceError::new(
            &self.path,
            0,
            format!("record {} (in time order): {message}", self.records_read),
        )
    }

    fn lost(&mut self, count: u64, ts: Option<u64>, cpu: Option<u32>) -> Step {
        self.stats.lost_notices += 1;
        self.stats.lost_events += count;
        let ts = ts.map_or(self.last_ts, |t| t as i64);
        let cpu = cpu.unwrap_or(EventHeader::NO_CPU);
        Step::Lost(LostEvents {
            begin: self.last_ts.min(ts),
            end: ts,
            cpu,
            stream: cpu,
            count: Some(count),
        })
    }
}

impl EventSource for PerfSource {
    fn classes(&self) -> &[EventClass] {
        &self.classes
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        while !self.done {
            let record = match self.records.next_record(&mut self.perf_file) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => return Err(self.error(format!("unreadable: {e}"))),
            };
            self.records_read += 1;
            let PerfFileRecord::EventRecord { attr_index, record } = record else {
                continue; // perf's own records (build ids, finished rounds…)
            };
            if record.record_type == RecordType::LOST_SAMPLES {
                // `u64 lost` then the sample id fields.
                let count = record::read_uint(&record.data.as_slice(), 0, 8, self.endian);
                let common = record.common_data().ok();
                let (ts, cpu) = (
                    common.as_ref().and_then(|c| c.timestamp),
                    common.and_then(|c| c.cpu),
                );
                return Ok(self.lost(count.unwrap_or(0), ts, cpu));
            }
            let common = record.common_data().ok();
            let record_type = record.record_type;
            let parsed = match record.parse() {
                Ok(p) => p,
                Err(e) => {
                    let message = format!("{record_type:?} record: {e}");
                    return Err(self.error(message));
                }
            };
            match parsed {
                EventRecord::Sample(sample) => {
                    let Some(class) = self.attr_class.get(attr_index).copied().flatten() else {
                        self.stats.unknown_events += 1;
                        continue;
                    };
                    let Some(raw) = sample.raw else {
                        self.stats.unknown_events += 1;
                        continue;
                    };
                    self.raw.clear();
                    match raw {
                        RawData::Single(s) => self.raw.extend_from_slice(s),
                        RawData::Split(a, b) => {
                            self.raw.extend_from_slice(a);
                            self.raw.extend_from_slice(b);
                        }
                    }
                    self.class = class as usize;
                    self.tid = sample.tid.unwrap_or(-1);
                    self.tgid = sample.pid;
                    let ts = sample.timestamp.map_or(self.last_ts, |t| t as i64);
                    self.last_ts = ts;
                    self.stats.events += 1;
                    let cpu = sample.cpu.unwrap_or(EventHeader::NO_CPU);
                    return Ok(Step::Event(EventHeader {
                        ts,
                        cpu,
                        stream: cpu,
                        class: ClassId(class),
                    }));
                }
                EventRecord::Comm(comm) => {
                    let name = String::from_utf8_lossy(&comm.name.as_slice()).into_owned();
                    self.comms.insert(comm.tid, name);
                }
                EventRecord::Fork(fork) => {
                    // A new thread has its parent's name until it calls exec or prctl.
                    if let Some(name) = self.comms.get(&fork.ptid).cloned() {
                        self.comms.insert(fork.tid, name);
                    }
                }
                EventRecord::Lost(lost) => {
                    let (ts, cpu) = (
                        common.as_ref().and_then(|c| c.timestamp),
                        common.and_then(|c| c.cpu),
                    );
                    return Ok(self.lost(lost.count, ts, cpu));
                }
                _ => {}
            }
        }
        self.done = true;
        Ok(Step::End)
    }

    fn u64(&self, field: FieldId) -> Option<u64> {
        let format = self.formats.get(self.class)?;
        match format.fields.get(field.0 as usize) {
            Some(f) => record::read_u64(f, &self.raw, self.endian),
            None => self.extra(field).and_then(|v| v.as_u64()),
        }
    }

    fn i64(&self, field: FieldId) -> Option<i64> {
        let format = self.formats.get(self.class)?;
        match format.fields.get(field.0 as usize) {
            Some(f) => record::read_i64(f, &self.raw, self.endian),
            None => self.extra(field).and_then(|v| v.as_i64()),
        }
    }

    fn str(&self, field: FieldId) -> Option<&str> {
        let format = self.formats.get(self.class)?;
        match format.fields.get(field.0 as usize) {
            Some(f) => record::read_str(f, &self.raw, self.endian),
            None if field.0 as usize == format.fields.len() => {
                self.comms.get(&self.tid).map(String::as_str)
            }
            None => None,
        }
    }

    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        let format = self.formats.get(self.class)?;
        match format.fields.get(field.0 as usize) {
            Some(f) => record::read_value(f, &self.raw, self.endian),
            None => self.extra(field),
        }
    }

    fn stats(&self) -> ReadStats {
        self.stats.clone()
    }
}

impl PerfSource {
    /// `common_comm` and `common_tgid`, the fields after the format's.
    fn extra(&self, field: FieldId) -> Option<Value<'_>> {
        let n = self.formats.get(self.class)?.fields.len();
        match field.0 as usize - n {
            0 => self
                .comms
                .get(&self.tid)
                .map(|s| Value::Str(s.as_str().into())),
            1 => self.tgid.map(|p| Value::Int(p.into())),
            _ => None,
        }
    }
}

/// What perf keeps of the tracing data.
struct TracingData {
    endian: Endian,
    formats: Vec<EventFormat>,
    cmdlines: HashMap<i32, String>,
}

/// Parses `HEADER_TRACING_DATA`. Errors give the offset in the section.
fn parse_tracing_data(data: &[u8]) -> Result<TracingData, (u64, String)> {
    struct Cur<'a> {
        data: &'a [u8],
        pos: usize,
        big: bool,
    }
    impl<'a> Cur<'a> {
        fn take(&mut self, n: u64) -> Result<&'a [u8], (u64, String)> {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            match self.pos.checked_add(n).filter(|&e| e <= self.data.len()) {
                Some(end) => {
                    let s = &self.data[self.pos..end];
                    self.pos = end;
                    Ok(s)
                }
                None => Err((
                    self.pos as u64,
                    format!(
                        "truncated: {n} bytes needed, {} left",
                        self.data.len() - self.pos
                    ),
                )),
            }
        }
        fn uint(&mut self, n: usize) -> Result<u64, (u64, String)> {
            let b = self.take(n as u64)?;
            let mut v = 0u64;
            for i in 0..n {
                let byte = if self.big { b[i] } else { b[n - 1 - i] };
                v = v << 8 | u64::from(byte);
            }
            Ok(v)
        }
        fn cstr(&mut self) -> Result<&'a str, (u64, String)> {
            let at = self.pos;
            let len = self.data[self.pos..]
                .iter()
                .position(|&c| c == 0)
                .ok_or((at as u64, "unterminated string".to_string()))?;
            let s = self.take(len as u64)?;
            self.pos += 1;
            std::str::from_utf8(s).map_err(|_| (at as u64, "string is not UTF-8".to_string()))
        }
        fn text(&mut self, n: u64) -> Result<(usize, std::borrow::Cow<'a, str>), (u64, String)> {
            let at = self.pos;
            Ok((at, String::from_utf8_lossy(self.take(n)?)))
        }
        fn tag(&mut self, tag: &[u8]) -> Result<(), (u64, String)> {
            let at = self.pos as u64;
            if self.take(tag.len() as u64)? != tag {
                return Err((at, format!("expected {:?}", String::from_utf8_lossy(tag))));
            }
            Ok(())
        }
    }
    let mut c = Cur {
        data,
        pos: 0,
        big: false,
    };
    c.tag(b"\x17\x08\x44tracing")?;
    let version = c.cstr()?.to_string();
    let endian_at = c.pos as u64;
    c.big = match c.uint(1)? {
        0 => false,
        1 => true,
        x => return Err((endian_at, format!("bad endianness flag {x}"))),
    };
    let _long_size = c.uint(1)?;
    let _page_size = c.uint(4)?;
    c.tag(b"header_page\0")?;
    let n = c.uint(8)?;
    c.take(n)?;
    c.tag(b"header_event\0")?;
    let n = c.uint(8)?;
    c.take(n)?;
    let mut formats = Vec::new();
    let ftrace = c.uint(4)?;
    for _ in 0..ftrace {
        let n = c.uint(8)?;
        c.take(n)?;
    }
    let systems = c.uint(4)?;
    for _ in 0..systems {
        let system = c.cstr()?;
        let count = c.uint(4)?;
        for _ in 0..count {
            let n = c.uint(8)?;
            let (at, text) = c.text(n)?;
            let format = parse_format(system, &text)
                .map_err(|e| (at as u64, format!("{system} format: {e}")))?;
            formats.push(format);
        }
    }
    let mut cmdlines = HashMap::new();
    // kallsyms and printk formats are not needed; the command lines (version ≥ 0.6) are.
    if c.pos < data.len() {
        let n = c.uint(4)?;
        c.take(n)?;
        let n = c.uint(4)?;
        c.take(n)?;
        if version.as_str() >= "0.6" && c.pos < data.len() {
            let n = c.uint(8)?;
            let (_, text) = c.text(n)?;
            for line in text.lines() {
                if let Some((pid, comm)) = line.split_once(' ') {
                    if let Ok(pid) = pid.parse() {
                        cmdlines.insert(pid, comm.to_string());
                    }
                }
            }
        }
    }
    Ok(TracingData {
        endian: if c.big { Endian::Big } else { Endian::Little },
        formats,
        cmdlines,
    })
}

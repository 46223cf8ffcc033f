//! Everything in a trace-cmd `.dat` file but the ring-buffer pages: the file header, the
//! header page and event formats, saved command lines, kallsyms and printk formats, the
//! options, and where each buffer's per-CPU data lies. Versions 6 (a fixed sequence of parts)
//! and 7 (sections found through options sections, possibly compressed) are read into the same
//! [`DatMeta`].

use std::borrow::Cow;
use std::collections::HashMap;

use super::bytes::{beyond_end, DatResult, Failure, Reader};
use super::compress::{Codec, Decompressor, MAX_UNCOMPRESSED};
use crate::format::{parse_format, parse_header_page, EventFormat, HeaderPage};
use crate::record::Endian;
use virtflow_trace::error::DatError;

pub const MAGIC: &[u8] = b"\x17\x08\x44tracing";

// Option ids (trace-cmd.dat(5)).
const OPT_DONE: u16 = 0;
const OPT_DATE: u16 = 1;
const OPT_BUFFER: u16 = 3;
const OPT_TRACECLOCK: u16 = 4;
const OPT_UNAME: u16 = 5;
const OPT_OFFSET: u16 = 7;
const OPT_CPUCOUNT: u16 = 8;
const OPT_VERSION: u16 = 9;
const OPT_TRACEID: u16 = 11;
const OPT_TIME_SHIFT: u16 = 12;
const OPT_GUEST: u16 = 13;
const OPT_TSC2NSEC: u16 = 14;
const OPT_HEADER_INFO: u16 = 16;
const OPT_FTRACE_EVENTS: u16 = 17;
const OPT_EVENT_FORMATS: u16 = 18;
const OPT_KALLSYMS: u16 = 19;
const OPT_PRINTK: u16 = 20;
const OPT_CMDLINES: u16 = 21;
const OPT_BUFFER_TEXT: u16 = 22;

/// Section flag: the section's data is compressed.
const SECTION_COMPRESSED: u16 = 1;

/// Where one CPU's ring-buffer pages are in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuData {
    pub cpu: u32,
    /// File offset of the pages, or of the chunk table when the buffer is compressed.
    pub offset: u64,
    pub size: u64,
}

/// One trace buffer: the top one (name "") or an instance (`trace-cmd record -B NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferInfo {
    pub name: String,
    pub clock: String,
    pub page_size: u32,
    pub compressed: bool,
    /// v7: file offset of the buffer's section (0 in v6).
    pub section_offset: u64,
    pub cpus: Vec<CpuData>,
}

/// A guest traced along with the host (`trace-cmd record -A`): its vCPUs and the host tasks
/// running them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestInfo {
    pub name: String,
    pub trace_id: u64,
    /// (vCPU id, host pid of the task running it).
    pub vcpus: Vec<(u32, u32)>,
}

/// One time-synchronisation sample of a guest trace (TIME_SHIFT option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TimeShiftSample {
    pub time: i64,
    pub offset: i64,
    pub scaling: i64,
    pub fraction: i64,
}

/// How raw ring-buffer timestamps become nanoseconds, as trace-cmd computes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClockConversion {
    /// TSC2NSEC: (multiplier, shift, offset).
    pub tsc2nsec: Option<(u32, u32, u64)>,
    /// Sum of the OFFSET options (ns).
    pub ts_offset: i64,
    /// TIME_SHIFT of a guest trace: flags and per-CPU samples.
    pub host_sync: Option<(u32, Vec<Vec<TimeShiftSample>>)>,
}

const TSYNC_FLAG_INTERPOLATE: u32 = 1;

impl ClockConversion {
    /// Nanoseconds of a raw timestamp recorded on `cpu`.
    #[inline]
    pub fn to_ns(&self, raw: u64, cpu: usize) -> i64 {
        let mut ts = raw;
        if let Some((flags, per_cpu)) = &self.host_sync {
            if let Some(samples) = per_cpu.get(cpu) {
                ts = host_sync(ts, *flags, samples);
            }
        }
        if let Some((mult, shift, _)) = self.tsc2nsec {
            ts = mul_u64_u32_shr(ts, mult, shift);
        }
        (ts as i64).wrapping_add(self.ts_offset)
    }
}

/// `a * mul >> shift` without overflowing 64 bits.
fn mul_u64_u32_shr(a: u64, mul: u32, shift: u32) -> u64 {
    ((a as u128 * mul as u128) >> shift.min(127)) as u64
}

fn correction(ts: u64, flags: u32, min: &TimeShiftSample, max: &TimeShiftSample) -> u64 {
    let tscor = if flags & TSYNC_FLAG_INTERPOLATE != 0 {
        let delta = max.time.wrapping_sub(min.time);
        let offset = (ts as i64)
            .wrapping_sub(min.time)
            .wrapping_mul(max.offset.wrapping_sub(min.offset));
        if delta == 0 {
            min.offset
        } else {
            min.offset
                .wrapping_add(offset.wrapping_add(delta / 2).wrapping_div(delta))
        }
    } else {
        min.offset
    };
    let ts = ts.wrapping_mul(min.scaling as u64) >> (min.fraction as u32).min(63);
    ts.wrapping_add(tscor as u64)
}

fn host_sync(ts: u64, flags: u32, s: &[TimeShiftSample]) -> u64 {
    match s.len() {
        0 => ts,
        1 => ts.wrapping_add(s[0].offset as u64),
        2 => correction(ts, flags, &s[0], &s[1]),
        n => {
            if ts as i64 <= s[0].time {
                correction(ts, flags, &s[0], &s[1])
            } else if ts as i64 >= s[n - 1].time {
                correction(ts, flags, &s[n - 2], &s[n - 1])
            } else {
                // The last sample at or before ts (ts lies strictly inside the range).
                let i = s.partition_point(|x| x.time <= ts as i64).saturating_sub(1);
                let i = i.min(n - 2);
                correction(ts, flags, &s[i], &s[i + 1])
            }
        }
    }
}

/// Where a text blob (kallsyms, printk formats) lies, read on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextLoc {
    /// Plain bytes in the file.
    Plain { offset: u64, len: u64 },
    /// A v7 section whose data is a 32-bit size and the text.
    Section { offset: u64 },
}

/// The file's metadata.
#[derive(Debug)]
pub struct DatMeta {
    pub version: u32,
    pub endian: Endian,
    pub long_size: u32,
    pub page_size: u32,
    pub codec: Option<Codec>,
    pub header_page: HeaderPage,
    /// Ftrace formats first, then the event systems' formats.
    pub formats: Vec<EventFormat>,
    pub cmdlines: HashMap<i32, String>,
    pub kallsyms: Option<TextLoc>,
    pub printk: Option<TextLoc>,
    pub buffers: Vec<BufferInfo>,
    pub cpu_count: Option<u32>,
    /// The selected trace clock (`local`, `mono`, `x86-tsc`…).
    pub clock: Option<String>,
    pub clock_conversion: ClockConversion,
    /// DATE option: offset from trace time to wall-clock time (ns), not applied (as
    /// `trace-cmd report` without `--date`).
    pub date_offset: Option<i64>,
    pub uname: Option<String>,
    pub tracer_version: Option<String>,
    pub trace_id: Option<u64>,
    pub guests: Vec<GuestInfo>,
    /// v7: file offsets of the options sections, in chain order.
    pub options_sections: Vec<u64>,
    pub warnings: Vec<String>,
}

/// Parses the metadata of a whole file held in `data`.
pub fn parse(data: &[u8]) -> DatResult<DatMeta> {
    if !data.starts_with(MAGIC) {
        let found = data[..data.len().min(MAGIC.len())].to_vec();
        return Err(Failure::new(0, DatError::BadMagic { found }));
    }
    let mut r = Reader::new(data, 0, Endian::Little, "file header");
    r.set_pos(MAGIC.len());
    let version_at = r.offset();
    let version = r.cstr()?;
    let version: u32 = version.parse().map_err(|_| {
        Failure::new(
            version_at,
            DatError::BadVersion {
                found: version.to_string(),
            },
        )
    })?;
    if !(6..=7).contains(&version) {
        return Err(Failure::new(
            version_at,
            DatError::UnsupportedVersion { version },
        ));
    }
    let endian = match r.u8()? {
        0 => Endian::Little,
        1 => Endian::Big,
        flag => {
            return Err(Failure::new(
                r.offset() - 1,
                DatError::BadEndianness { flag },
            ))
        }
    };
    let long_size = r.u8()?;
    if !matches!(long_size, 4 | 8) {
        return Err(Failure::new(
            r.offset() - 1,
            DatError::BadLongSize { size: long_size },
        ));
    }
    let long_size = long_size as u32;
    let mut r = Reader::new(data, 0, endian, "file header");
    r.set_pos(version_at as usize);
    r.cstr()?;
    r.bytes(2)?;
    let page_size = r.u32()?;
    if !(64..=(1 << 24)).contains(&page_size) {
        return Err(Failure::new(
            r.offset() - 4,
            DatError::ImplausiblePageSize { size: page_size },
        ));
    }
    let mut meta = DatMeta {
        version,
        endian,
        long_size,
        page_size,
        codec: None,
        header_page: HeaderPage::default_for(long_size, page_size),
        formats: Vec::new(),
        cmdlines: HashMap::new(),
        kallsyms: None,
        printk: None,
        buffers: Vec::new(),
        cpu_count: None,
        clock: None,
        clock_conversion: ClockConversion::default(),
        date_offset: None,
        uname: None,
        tracer_version: None,
        trace_id: None,
        guests: Vec::new(),
        options_sections: Vec::new(),
        warnings: Vec::new(),
    };
    if version == 6 {
        parse_v6(data, r, &mut meta)?;
    } else {
        parse_v7(data, r, &mut meta)?;
    }
    Ok(meta)
}

/// Reads the NUL-terminated `tag`.
fn expect_tag(r: &mut Reader, tag: &'static str) -> DatResult<()> {
    let got = r.bytes(tag.len() + 1)?;
    if &got[..tag.len()] != tag.as_bytes() || got[tag.len()] != 0 {
        let mut back = r.clone();
        back.set_pos(back.pos() - got.len());
        return Err(back.error(DatError::UnexpectedTag {
            expected: tag,
            found: String::from_utf8_lossy(got).into_owned(),
        }));
    }
    Ok(())
}

/// `header_page\0`, size, text, `header_event\0`, size, text.
fn read_headers(r: &mut Reader, meta: &mut DatMeta) -> DatResult<()> {
    expect_tag(r, "header_page")?;
    let size = r.u64()?;
    let at = r.clone();
    let text = r.text(size)?;
    meta.header_page = parse_header_page(&text).map_err(|e| at.error(DatError::HeaderPage(e)))?;
    if meta.header_page.data_offset as u64 >= meta.page_size as u64 {
        return Err(at.error(DatError::HeaderPageBeyondPage {
            data_offset: meta.header_page.data_offset,
            page_size: meta.page_size,
        }));
    }
    expect_tag(r, "header_event")?;
    let size = r.u64()?;
    r.bytes(usize::try_from(size).unwrap_or(usize::MAX))?;
    Ok(())
}

fn read_format(r: &mut Reader, system: &str, meta: &mut DatMeta) -> DatResult<()> {
    let size = r.u64()?;
    let at = r.offset();
    let text = r.text(size)?;
    match parse_format(system, &text) {
        Ok(f) => meta.formats.push(f),
        // One bad format costs its events (counted as unknown), not the trace.
        Err(e) => meta
            .warnings
            .push(format!("event format of system {system} at byte {at}: {e}")),
    }
    Ok(())
}

fn read_ftrace_formats(r: &mut Reader, meta: &mut DatMeta) -> DatResult<()> {
    let count = r.u32()?;
    for _ in 0..count {
        read_format(r, "ftrace", meta)?;
    }
    Ok(())
}

fn read_event_formats(r: &mut Reader, meta: &mut DatMeta) -> DatResult<()> {
    let systems = r.u32()?;
    for _ in 0..systems {
        let system = r.cstr()?.to_string();
        let count = r.u32()?;
        for _ in 0..count {
            read_format(r, &system, meta)?;
        }
    }
    Ok(())
}

fn parse_cmdlines(text: &str, meta: &mut DatMeta) {
    for line in text.lines() {
        let line = line.trim_start();
        if let Some((pid, comm)) = line.split_once(' ') {
            if let Ok(pid) = pid.parse::<i32>() {
                meta.cmdlines.insert(pid, comm.to_string());
            }
        }
    }
}

fn parse_v6(data: &[u8], mut r: Reader, meta: &mut DatMeta) -> DatResult<()> {
    read_headers(&mut r, meta)?;
    read_ftrace_formats(&mut r, meta)?;
    read_event_formats(&mut r, meta)?;
    let size = r.u32()? as u64;
    meta.kallsyms = Some(TextLoc::Plain {
        offset: r.offset(),
        len: size,
    });
    r.bytes(size as usize)?;
    let size = r.u32()? as u64;
    meta.printk = Some(TextLoc::Plain {
        offset: r.offset(),
        len: size,
    });
    r.bytes(size as usize)?;
    let size = r.u64()?;
    let text = r.text(size)?;
    parse_cmdlines(&text, meta);
    let cpus = r.u32()?;
    if cpus > 65536 {
        return Err(r.error(DatError::ImplausibleCpuCount { count: cpus }));
    }
    let mut instances = Vec::new();
    let pairs = read_v6_buffer_data(&mut r, cpus, meta, Some(&mut instances))?;
    meta.buffers.push(BufferInfo {
        name: String::new(),
        clock: meta.clock.clone().unwrap_or_default(),
        page_size: meta.page_size,
        compressed: false,
        section_offset: 0,
        cpus: pairs,
    });
    for (name, offset) in instances {
        let mut r = Reader::new(data, 0, meta.endian, "buffer instance");
        if offset as usize > data.len() {
            return Err(beyond_end(format!("buffer {name:?}"), offset, data.len()));
        }
        r.set_pos(offset as usize);
        let pairs = read_v6_buffer_data(&mut r, cpus, meta, None)?;
        meta.buffers.push(BufferInfo {
            name,
            clock: meta.clock.clone().unwrap_or_default(),
            page_size: meta.page_size,
            compressed: false,
            section_offset: 0,
            cpus: pairs,
        });
    }
    Ok(())
}

/// The v6 part after the CPU count: optional options, then `flyrecord` and the per-CPU
/// (offset, size) pairs. Instance buffers found in the options are appended to `instances`.
fn read_v6_buffer_data(
    r: &mut Reader,
    cpus: u32,
    meta: &mut DatMeta,
    instances: Option<&mut Vec<(String, u64)>>,
) -> DatResult<Vec<CpuData>> {
    let mut at = r.clone();
    let mut kind = r.bytes(10)?;
    if kind.starts_with(b"options") {
        let mut found = Vec::new();
        parse_options(r, meta, false, &mut found)?;
        if let Some(list) = instances {
            list.extend(found);
        }
        at = r.clone();
        kind = r.bytes(10)?;
    }
    if kind.starts_with(b"latency") {
        return Err(at.error(DatError::LatencyData));
    }
    if !kind.starts_with(b"flyrecord") {
        return Err(at.error(DatError::UnexpectedTag {
            expected: "flyrecord",
            found: String::from_utf8_lossy(kind).into_owned(),
        }));
    }
    let mut pairs = Vec::with_capacity(cpus as usize);
    for cpu in 0..cpus {
        let offset = r.u64()?;
        let size = r.u64()?;
        pairs.push(CpuData { cpu, offset, size });
    }
    Ok(pairs)
}

/// Reads a v7 section at `offset`: its header, then its data, decompressed when flagged (with
/// `unpack`, made once for every section: a zstd context costs its setting up). Returns the
/// section id and the data.
pub fn read_section<'a>(
    data: &'a [u8],
    offset: u64,
    meta_endian: Endian,
    codec: Option<Codec>,
    unpack: &mut Option<Decompressor>,
) -> DatResult<(u16, Cow<'a, [u8]>)> {
    if offset as usize >= data.len() {
        return Err(beyond_end("a section".into(), offset, data.len()));
    }
    let mut r = Reader::new(data, 0, meta_endian, "section header");
    r.set_pos(offset as usize);
    let id = r.u16()?;
    let flags = r.u16()?;
    let _description = r.u32()?;
    let size = r.u64()?;
    if flags & SECTION_COMPRESSED != 0 {
        let codec = codec.ok_or(Failure::new(
            offset,
            DatError::CompressedWithoutCodec { part: "section" },
        ))?;
        let csize = r.u32()? as usize;
        let usize_ = r.u32()? as usize;
        if usize_ > MAX_UNCOMPRESSED {
            return Err(Failure::new(
                offset,
                DatError::ImplausibleUncompressedSize {
                    part: "section",
                    size: usize_ as u64,
                },
            ));
        }
        let input = r.bytes(csize)?;
        let mut out = Vec::new();
        unpack
            .get_or_insert_with(|| Decompressor::new(codec))
            .decompress(input, &mut out, usize_)
            .map_err(|e| Failure::new(offset, e))?;
        Ok((id, Cow::Owned(out)))
    } else {
        let n = usize::try_from(size).unwrap_or(usize::MAX);
        Ok((id, Cow::Borrowed(r.bytes(n)?)))
    }
}

fn parse_v7(data: &[u8], mut r: Reader, meta: &mut DatMeta) -> DatResult<()> {
    let mut unpack = None;
    let at = r.offset();
    let name = r.cstr()?.to_string();
    let _version = r.cstr()?;
    meta.codec = Codec::from_name(&name).map_err(|e| Failure::new(at, e))?;
    let mut next = r.u64()?;
    let mut sections: Vec<(u16, u64)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while next != 0 {
        if !seen.insert(next) {
            return Err(Failure::new(next, DatError::OptionsLoop));
        }
        let (id, body) = read_section(data, next, meta.endian, meta.codec, &mut unpack)?;
        meta.options_sections.push(next);
        if id != 0 {
            return Err(Failure::new(
                next,
                DatError::NotOptionsSection { found: id },
            ));
        }
        let mut opts = Reader::section(&body, next, meta.endian, "options section");
        let mut unused = Vec::new();
        let (done, refs) = parse_options(&mut opts, meta, true, &mut unused)?;
        sections.extend(refs);
        next = done;
    }
    for (id, offset) in sections {
        match id {
            OPT_KALLSYMS => meta.kallsyms = Some(TextLoc::Section { offset }),
            OPT_PRINTK => meta.printk = Some(TextLoc::Section { offset }),
            _ => {
                let (_, body) = read_section(data, offset, meta.endian, meta.codec, &mut unpack)?;
                let what = match id {
                    OPT_HEADER_INFO => "headers section",
                    OPT_FTRACE_EVENTS => "ftrace formats section",
                    OPT_EVENT_FORMATS => "event formats section",
                    _ => "command lines section",
                };
                let mut s = Reader::section(&body, offset, meta.endian, what);
                match id {
                    OPT_HEADER_INFO => read_headers(&mut s, meta)?,
                    OPT_FTRACE_EVENTS => read_ftrace_formats(&mut s, meta)?,
                    OPT_EVENT_FORMATS => read_event_formats(&mut s, meta)?,
                    OPT_CMDLINES => {
                        let size = s.u64()?;
                        let text = s.text(size)?;
                        parse_cmdlines(&text, meta);
                    }
                    _ => {}
                }
            }
        }
    }
    // The BUFFER options give each buffer's section; its flags say if the data is compressed.
    for b in &mut meta.buffers {
        let mut r = Reader::new(data, 0, meta.endian, "buffer section header");
        if b.section_offset as usize >= data.len() {
            return Err(beyond_end(
                format!("buffer {:?}", b.name),
                b.section_offset,
                data.len(),
            ));
        }
        r.set_pos(b.section_offset as usize);
        let _id = r.u16()?;
        let flags = r.u16()?;
        b.compressed = flags & SECTION_COMPRESSED != 0;
    }
    if meta.buffers.is_empty() {
        meta.warnings
            .push("the file has no flyrecord buffer".into());
    }
    Ok(())
}

/// Reads options up to DONE. In v6 DONE has no size and ends the list; in v7 it holds the
/// offset of the next options section, returned. Section references (v7) are returned as
/// (option id, offset); v6 instance buffers are appended to `instances` as (name, offset).
fn parse_options(
    r: &mut Reader,
    meta: &mut DatMeta,
    v7: bool,
    instances: &mut Vec<(String, u64)>,
) -> DatResult<(u64, Vec<(u16, u64)>)> {
    let mut refs = Vec::new();
    loop {
        let id = r.u16()?;
        if id == OPT_DONE && !v7 {
            return Ok((0, refs));
        }
        let size = r.u32()? as usize;
        let at = r.offset();
        let body = r.bytes(size)?;
        let mut o = Reader::new(body, at, meta.endian, "option");
        let text = || {
            let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
            String::from_utf8_lossy(&body[..end]).trim().to_string()
        };
        match id {
            OPT_DONE => return Ok((o.u64()?, refs)),
            OPT_DATE => meta.date_offset = parse_c_int(&text()).map(|us| us.wrapping_mul(1000)),
            OPT_OFFSET => {
                if let Some(v) = parse_c_int(&text()) {
                    meta.clock_conversion.ts_offset =
                        meta.clock_conversion.ts_offset.wrapping_add(v);
                }
            }
            OPT_BUFFER if !v7 => {
                let offset = o.u64()?;
                let name = o.cstr()?.to_string();
                instances.push((name, offset));
            }
            OPT_BUFFER => {
                let section_offset = o.u64()?;
                let name = o.cstr()?.to_string();
                let clock = o.cstr()?.to_string();
                let page_size = o.u32()?;
                let count = o.u32()?;
                if count > 65536 {
                    return Err(o.error(DatError::ImplausibleCpuCount { count }));
                }
                let mut cpus = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let cpu = o.u32()?;
                    let offset = o.u64()?;
                    let size = o.u64()?;
                    cpus.push(CpuData { cpu, offset, size });
                }
                if name.is_empty() && meta.clock.is_none() {
                    meta.clock = Some(clock.clone());
                }
                meta.buffers.push(BufferInfo {
                    name,
                    clock,
                    page_size,
                    compressed: false,
                    section_offset,
                    cpus,
                });
            }
            OPT_BUFFER_TEXT => meta
                .warnings
                .push("latency-tracer text buffers are not read".into()),
            OPT_TRACECLOCK => {
                let t = text();
                // `local global [mono] ...`: the selected clock is in brackets.
                if let (Some(a), Some(b)) = (t.find('['), t.find(']')) {
                    if a < b && meta.clock.is_none() {
                        meta.clock = Some(t[a + 1..b].to_string());
                    }
                }
            }
            OPT_UNAME => meta.uname = Some(text()),
            OPT_VERSION => meta.tracer_version = Some(text()),
            OPT_CPUCOUNT => meta.cpu_count = Some(o.u32()?),
            OPT_TRACEID => meta.trace_id = Some(o.u64()?),
            OPT_TSC2NSEC => {
                let mult = o.u32()?;
                let shift = o.u32()?;
                let offset = o.u64()?;
                meta.clock_conversion.tsc2nsec = Some((mult, shift, offset));
            }
            OPT_TIME_SHIFT => {
                let _peer = o.u64()?;
                let flags = o.u32()?;
                let cpus = o.u32()?;
                if cpus > 65536 {
                    return Err(o.error(DatError::ImplausibleCpuCount { count: cpus }));
                }
                let mut per_cpu = Vec::with_capacity(cpus as usize);
                for _ in 0..cpus {
                    let n = o.u32()? as usize;
                    if n > o.remaining() / 24 {
                        return Err(o.error(DatError::CountExceedsOption {
                            option: "TIME_SHIFT",
                            what: "sample count",
                            count: n as u32,
                        }));
                    }
                    let mut samples = vec![TimeShiftSample::default(); n];
                    for s in samples.iter_mut() {
                        s.time = o.u64()? as i64;
                    }
                    for s in samples.iter_mut() {
                        s.offset = o.u64()? as i64;
                    }
                    for s in samples.iter_mut() {
                        s.scaling = o.u64()? as i64;
                    }
                    per_cpu.push(samples);
                }
                if o.remaining() > 0 {
                    for samples in per_cpu.iter_mut() {
                        for s in samples.iter_mut() {
                            s.fraction = o.u64()? as i64;
                        }
                    }
                }
                for samples in per_cpu.iter_mut() {
                    samples.sort_by_key(|s| s.time);
                    samples.dedup_by_key(|s| s.time);
                }
                if !per_cpu.is_empty() {
                    meta.clock_conversion.host_sync = Some((flags, per_cpu));
                }
            }
            OPT_GUEST => {
                let name = o.cstr()?.to_string();
                let trace_id = o.u64()?;
                let n = o.u32()?;
                if n as usize > o.remaining() / 8 {
                    return Err(o.error(DatError::CountExceedsOption {
                        option: "GUEST",
                        what: "vCPU count",
                        count: n,
                    }));
                }
                let mut vcpus = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let cpu = o.u32()?;
                    let pid = o.u32()?;
                    vcpus.push((cpu, pid));
                }
                meta.guests.push(GuestInfo {
                    name,
                    trace_id,
                    vcpus,
                });
            }
            OPT_HEADER_INFO | OPT_FTRACE_EVENTS | OPT_EVENT_FORMATS | OPT_KALLSYMS | OPT_PRINTK
            | OPT_CMDLINES
                if v7 =>
            {
                refs.push((id, o.u64()?));
            }
            _ => {} // CPUSTAT, HOOK, PROCMAPS, STRINGS…: nothing the reader needs
        }
    }
}

/// `strtoll(s, NULL, 0)`: decimal, `0x` hexadecimal or `0` octal, with a sign.
fn parse_c_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<u64>().ok()?
    } as i64;
    Some(if neg { v.wrapping_neg() } else { v })
}

//! The tracing data (`HEADER_TRACING_DATA`): the tracepoint formats the samples' raw records
//! follow.
//!
//! It has the layout of the start of a trace-cmd v6 file: magic, version, byte order, size of
//! `long`, page size, the ring buffer's header page and header event, the ftrace formats, the
//! event formats by system, kallsyms, printk formats and (version 0.6 and later) the saved
//! command lines. Only the event formats (parsed with [`crate::format`]), the byte order and
//! the command lines are kept. Every size is checked against what is left of the section.

use std::collections::HashMap;

use virtflow_trace::error::PerfError;

use super::bytes::{to_usize, Failure};
use crate::format::{parse_format, EventFormat};
use crate::record::Endian;

/// What the reader keeps of the tracing data.
pub(super) struct TracingData {
    pub endian: Endian,
    pub formats: Vec<EventFormat>,
    /// `pid → comm` from the saved command lines.
    pub cmdlines: HashMap<i32, String>,
}

/// A cursor over the tracing data; `base` is the data's offset in the file, for errors.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    big: bool,
}

impl<'a> Cursor<'a> {
    fn fail(&self, kind: PerfError) -> Failure {
        Failure::new(self.base + self.pos as u64, kind)
    }

    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Failure> {
        if n > self.left() as u64 {
            return Err(self.fail(PerfError::TracingDataTruncated {
                needed: n,
                left: self.left() as u64,
            }));
        }
        let s = &self.data[self.pos..self.pos + to_usize(n)];
        self.pos += s.len();
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Failure> {
        let b = self.take(n as u64)?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if self.big { b[i] } else { b[n - 1 - i] };
            v = v << 8 | u64::from(byte);
        }
        Ok(v)
    }

    fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], Failure> {
        let rest = &self.data[self.pos..];
        let len = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| self.fail(PerfError::TracingDataUnterminated { what }))?;
        self.pos += len + 1;
        Ok(&rest[..len])
    }

    fn tag(&mut self, tag: &'static str) -> Result<(), Failure> {
        // The tags are written with their NUL.
        let at = self.pos;
        let found = self.data.get(at..at + tag.len() + 1);
        if found.is_none_or(|f| &f[..tag.len()] != tag.as_bytes() || f[tag.len()] != 0) {
            return Err(self.fail(PerfError::TracingDataMissingTag { expected: tag }));
        }
        self.pos += tag.len() + 1;
        Ok(())
    }

    /// A part given as a size of `n` bytes then its bytes.
    fn sized(&mut self, n: usize) -> Result<&'a [u8], Failure> {
        let size = self.uint(n)?;
        self.take(size)
    }
}

/// Parses the tracing data `data`, found at byte `base` of the file.
pub(super) fn parse(data: &[u8], base: u64) -> Result<TracingData, Failure> {
    let mut c = Cursor {
        data,
        pos: 0,
        base,
        big: false,
    };
    if !data.starts_with(b"\x17\x08\x44tracing") {
        return Err(c.fail(PerfError::TracingDataMagic));
    }
    c.pos = 10;
    let version = c.cstr("version")?;
    let flag = c.uint(1)? as u8;
    c.big = match flag {
        0 => false,
        1 => true,
        _ => {
            c.pos -= 1;
            return Err(c.fail(PerfError::TracingDataEndianFlag { flag }));
        }
    };
    let _long_size = c.uint(1)?;
    let _page_size = c.uint(4)?;
    c.tag("header_page")?;
    c.sized(8)?;
    c.tag("header_event")?;
    c.sized(8)?;
    // Counts are not trusted for anything but looping: each entry consumes bytes or fails.
    let ftrace = c.uint(4)?;
    for _ in 0..ftrace {
        c.sized(8)?;
    }
    let mut formats = Vec::new();
    let systems = c.uint(4)?;
    for _ in 0..systems {
        let system = String::from_utf8_lossy(c.cstr("system name")?).into_owned();
        let count = c.uint(4)?;
        for _ in 0..count {
            let size = c.uint(8)?;
            let at = c.pos;
            let text = crate::format::text_of(c.take(size)?);
            let format = parse_format(&system, &text).map_err(|error| {
                Failure::new(
                    base + at as u64,
                    PerfError::TracingDataFormat {
                        system: system.clone(),
                        error,
                    },
                )
            })?;
            formats.push(format);
        }
    }
    let mut cmdlines = HashMap::new();
    // kallsyms and printk formats are not needed; the command lines (version 0.6 on) are.
    if c.left() > 0 {
        c.sized(4)?;
        c.sized(4)?;
        if version >= b"0.6".as_slice() && c.left() > 0 {
            let text = crate::format::text_of(c.sized(8)?);
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

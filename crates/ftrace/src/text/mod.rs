//! ftrace text reader: what `cat /sys/kernel/tracing/trace`, `trace_pipe` and
//! `trace-cmd report` print.
//!
//! [`TextSource::open`] reads the whole file and scans it once to learn its event classes
//! (one per event name; for events it has no template for, the `key=value` keys seen), then
//! [`EventSource::advance`] parses one line per call with a hand-written scanner:
//!
//! ```text
//!   <comm>-<pid> [(<tgid>)] [<cpu>] [<irq flags>] <secs>.<µs|ns>: <event>: <text>
//! ```
//!
//! The header gives `common_pid` and `common_comm` (and `common_tgid` when the file has that
//! column), the CPU and the timestamp. The text is matched against the event's print formats
//! ([`events::KNOWN_EVENTS`], written as [`template`]s) into the kernel's own field names and
//! numbers; other events' `key=value` text is split into fields, and anything else is kept
//! whole in a `text` field. Loss markers (`CPU:N [LOST M EVENTS]`, `##### CPU N buffer
//! started ####`) become [`Step::Lost`]; a line that is none of these is counted in
//! [`ReadStats::unknown_events`] with a warning, never dropped silently. A file none of whose
//! first [`EVENT_LINE_WITHIN`] lines (comments apart) is an event line or a loss marker is no
//! ftrace text and is refused ([`TextError::NoEventLine`]); past that, the reader never fails
//! on bad text: what it finds wrong is a [`TextError`], written into the warnings with the file
//! and the byte, as every error is.

mod events;
mod symbols;
mod template;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use virtflow_trace::error::TextError;
use virtflow_trace::{
    ClassId, EventClass, EventHeader, EventSource, FieldDesc, FieldId, FieldKind, LostEvents,
    ReadStats, Scope, Step, TraceError, Value,
};

pub use symbols::exit_reason_names;
use template::{Conv, Slot, Template, Tok};

/// How many example lines of each problem the warnings quote.
const MAX_EXAMPLES: usize = 5;

/// How many lines (blank lines and comments apart) are read for an event line or a loss
/// marker before a file is refused as no ftrace text ([`TextError::NoEventLine`]). A
/// `trace-cmd report` or tracefs header holds a handful of other lines at most; a file of
/// text that is no trace holds none of these.
pub const EVENT_LINE_WITHIN: usize = 1000;

/// An ftrace text trace (see the module documentation).
pub struct TextSource {
    path: PathBuf,
    text: String,
    /// Byte offset of the next line to read.
    pos: usize,
    classes: Vec<EventClass>,
    parsers: Vec<ClassParser>,
    class_ids: HashMap<String, u32>,
    /// The current event's values, indexed by field (then scratch values).
    slots: Vec<Slot>,
    /// Fields of the current event's class (the accessors ignore slots past them).
    cur_fields: usize,
    has_tgid: bool,
    last_ts: i64,
    stats: ReadStats,
    unparsed_text: u64,
    unknown_examples: usize,
}

/// How the text of one class becomes fields.
enum ClassParser {
    /// An event with print-format templates.
    Known {
        templates: Vec<Template>,
        /// Scratch slots by name, for `post`.
        scratch: Vec<(&'static str, u32)>,
        post: Option<events::Post>,
        /// The `text` field, set when no template matches.
        text: u32,
    },
    /// `key=value` text; `text` holds lines that are not.
    Generic {
        keys: HashMap<String, u32>,
        text: u32,
    },
}

/// The parts of an event line, as byte ranges of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LineHeader<'a> {
    comm: &'a str,
    pid: i64,
    tgid: Option<i64>,
    cpu: u32,
    ts: i64,
    name: &'a str,
    /// The event text, trimmed.
    text: &'a str,
}

/// What one line of the file is.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Event(LineHeader<'a>),
    Lost {
        cpu: u32,
        count: Option<u64>,
    },
    /// Headers, comments, `cpus=N`, `CPU N is empty`, blank lines.
    Ignored,
    Unknown,
}

impl TextSource {
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let bytes = std::fs::read(path).map_err(|e| TraceError::io(path, e))?;
        Self::from_bytes(path, bytes)
    }

    /// Reads text already in memory; `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, TraceError> {
        let mut stats = ReadStats::default();
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                stats
                    .warnings
                    .push(TraceError::new(path, at as u64, TextError::NotUtf8).to_string());
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        };
        let mut source = TextSource {
            path: path.to_path_buf(),
            text,
            pos: 0,
            classes: Vec::new(),
            parsers: Vec::new(),
            class_ids: HashMap::new(),
            slots: Vec::new(),
            cur_fields: 0,
            has_tgid: false,
            last_ts: 0,
            stats,
            unparsed_text: 0,
            unknown_examples: 0,
        };
        source.check_is_a_trace()?;
        source.discover_classes();
        Ok(source)
    }

    /// Refuses a file none of whose first [`EVENT_LINE_WITHIN`] lines (blank lines and
    /// comments apart) is an event line or a loss marker. A file of comments alone (an empty
    /// tracefs buffer) is a trace without events.
    fn check_is_a_trace(&self) -> Result<(), TraceError> {
        let mut first_unknown: Option<(usize, &str)> = None;
        let mut considered = 0;
        for line in self.text.lines() {
            match parse_line(line) {
                Line::Event(_) | Line::Lost { .. } => return Ok(()),
                Line::Ignored => continue,
                Line::Unknown => {
                    if first_unknown.is_none() {
                        let at = line.as_ptr() as usize - self.text.as_ptr() as usize;
                        first_unknown = Some((at, line));
                    }
                }
            }
            considered += 1;
            if considered == EVENT_LINE_WITHIN {
                break;
            }
        }
        match first_unknown {
            None => Ok(()),
            Some((at, line)) => Err(TraceError::new(
                &self.path,
                at as u64,
                TextError::NoEventLine {
                    lines: considered,
                    first: line.chars().take(80).collect(),
                },
            )),
        }
    }

    /// First pass: every event name, and the keys of events without templates.
    fn discover_classes(&mut self) {
        let text = std::mem::take(&mut self.text);
        let mut order: Vec<&str> = Vec::new();
        let mut generic_keys: HashMap<&str, Vec<(&str, FieldKind)>> = HashMap::new();
        let mut seen: HashMap<&str, ()> = HashMap::new();
        let mut has_tgid = false;
        for line in text.lines() {
            let Line::Event(h) = parse_line(line) else {
                continue;
            };
            has_tgid |= h.tgid.is_some();
            if seen.insert(h.name, ()).is_none() {
                order.push(h.name);
            }
            if events::known_event(h.name).is_none() {
                let keys = generic_keys.entry(h.name).or_default();
                match split_key_values(h.text) {
                    Some(pairs) => {
                        for (k, v) in pairs {
                            let kind = value_kind(v);
                            match keys.iter_mut().find(|(n, _)| *n == k) {
                                Some((_, known)) => *known = merge_kind(*known, kind),
                                None => keys.push((k, kind)),
                            }
                        }
                    }
                    None => {
                        if !keys.iter().any(|(n, _)| *n == "text") {
                            keys.push(("text", FieldKind::Str));
                        }
                    }
                }
            }
        }
        self.has_tgid = has_tgid;
        let mut max_slots = 0;
        for name in order {
            let mut fields = vec![
                FieldDesc {
                    name: "common_pid".into(),
                    scope: Scope::Common,
                    kind: FieldKind::Int,
                },
                FieldDesc {
                    name: "common_comm".into(),
                    scope: Scope::Common,
                    kind: FieldKind::Str,
                },
            ];
            if has_tgid {
                fields.push(FieldDesc {
                    name: "common_tgid".into(),
                    scope: Scope::Common,
                    kind: FieldKind::Int,
                });
            }
            let (system, parser, nslots) = match events::known_event(name) {
                Some(known) => {
                    let (parser, nslots) = compile_known(known, &mut fields);
                    (known.system, parser, nslots)
                }
                None => {
                    let mut keys = HashMap::new();
                    let mut text_field = None;
                    for (k, kind) in generic_keys.remove(name).unwrap_or_default() {
                        let id = fields.len() as u32;
                        if k == "text" {
                            text_field = Some(id);
                        } else {
                            keys.insert(k.to_string(), id);
                        }
                        fields.push(FieldDesc {
                            name: k.to_string(),
                            scope: Scope::Payload,
                            kind,
                        });
                    }
                    let text = text_field.unwrap_or_else(|| {
                        fields.push(FieldDesc {
                            name: "text".into(),
                            scope: Scope::Payload,
                            kind: FieldKind::Str,
                        });
                        fields.len() as u32 - 1
                    });
                    ("", ClassParser::Generic { keys, text }, fields.len())
                }
            };
            max_slots = max_slots.max(nslots);
            self.class_ids
                .insert(name.to_string(), self.classes.len() as u32);
            self.classes.push(EventClass {
                name: name.to_string(),
                system: system.to_string(),
                fields,
            });
            self.parsers.push(parser);
        }
        self.slots = vec![Slot::None; max_slots];
        self.text = text;
    }

    /// The next line, and the byte offset it starts at.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let end =
            memchr_newline(&self.text.as_bytes()[start..]).map_or(self.text.len(), |i| start + i);
        self.pos = (end + 1).min(self.text.len());
        Some((start, end))
    }

    /// Timestamp of the next event line, for the end of a loss interval.
    fn peek_next_ts(&self) -> Option<i64> {
        // Markers come just before the events they concern: look a few lines ahead only.
        self.text[self.pos..]
            .lines()
            .take(64)
            .find_map(|l| match parse_line(l) {
                Line::Event(h) => Some(h.ts),
                _ => None,
            })
    }

    fn fill_fields(&mut self, class: usize, h: &LineHeader, text_start: usize, file: &str) {
        let nfields = self.classes[class].fields.len();
        self.cur_fields = nfields;
        for s in &mut self.slots {
            *s = Slot::None;
        }
        let comm_start = h.comm.as_ptr() as usize - file.as_ptr() as usize;
        self.slots[0] = Slot::I(h.pid);
        self.slots[1] = Slot::S(comm_start, comm_start + h.comm.len());
        if self.has_tgid {
            self.slots[2] = h.tgid.map_or(Slot::None, Slot::I);
        }
        let text_end = text_start + h.text.len();
        match &self.parsers[class] {
            ClassParser::Known {
                templates,
                scratch,
                post,
                text,
            } => {
                let payload = if self.has_tgid { 3 } else { 2 };
                let mut matched = false;
                for t in templates {
                    if template::matches(&t.toks, h.text, text_start, &mut self.slots) {
                        matched = true;
                        break;
                    }
                    for s in &mut self.slots[payload..] {
                        *s = Slot::None;
                    }
                }
                if matched {
                    if let Some(post) = post {
                        let slots = &self.slots;
                        let get = |name: &str| {
                            let (_, i) = scratch.iter().find(|(n, _)| *n == name)?;
                            match slots[*i as usize] {
                                Slot::U(v) => Some(v),
                                Slot::I(v) => Some(v as u64),
                                _ => None,
                            }
                        };
                        let fields = &self.classes[class].fields;
                        let mut out: Vec<(usize, Slot)> = Vec::new();
                        let mut set = |name: &str, v: Slot| {
                            if let Some(i) = fields.iter().position(|f| f.name == name) {
                                out.push((i, v));
                            }
                        };
                        post(&get, &mut set);
                        for (i, v) in out {
                            self.slots[i] = v;
                        }
                    }
                } else {
                    self.slots[*text as usize] = Slot::S(text_start, text_end);
                    self.unparsed_text += 1;
                    if self.unparsed_text <= MAX_EXAMPLES as u64 {
                        let e = TextError::UnparsedText {
                            event: h.name.to_string(),
                            text: h.text.to_string(),
                        };
                        self.stats
                            .warnings
                            .push(TraceError::new(&self.path, text_start as u64, e).to_string());
                    }
                }
            }
            ClassParser::Generic { keys, text } => match split_key_values(h.text) {
                Some(pairs) => {
                    for (k, v) in pairs {
                        let Some(&id) = keys.get(k) else { continue };
                        let v_start = v.as_ptr() as usize - file.as_ptr() as usize;
                        self.slots[id as usize] = match self.classes[class].fields[id as usize].kind
                        {
                            FieldKind::Str => Slot::S(v_start, v_start + v.len()),
                            _ => template::parse_num(v.as_bytes())
                                .unwrap_or(Slot::S(v_start, v_start + v.len())),
                        };
                    }
                }
                None => self.slots[*text as usize] = Slot::S(text_start, text_end),
            },
        }
    }

    fn unknown_line(&mut self, start: usize, end: usize) {
        self.stats.unknown_events += 1;
        if self.unknown_examples < MAX_EXAMPLES {
            self.unknown_examples += 1;
            let line: String = self.text[start..end].chars().take(120).collect();
            let e = TextError::UnknownLine { line };
            self.stats
                .warnings
                .push(TraceError::new(&self.path, start as u64, e).to_string());
        }
    }

    fn slot(&self, field: FieldId) -> Slot {
        let i = field.0 as usize;
        if i < self.cur_fields {
            self.slots[i]
        } else {
            Slot::None
        }
    }
}

/// Compiles a known event's templates; adds its fields to `fields`; returns the parser and the
/// number of slots it needs.
fn compile_known(
    known: &'static events::KnownEvent,
    fields: &mut Vec<FieldDesc>,
) -> (ClassParser, usize) {
    // Declared fields first (in order of first appearance), then scratch slots.
    let mut scratch: Vec<(&'static str, u32)> = Vec::new();
    let specs: Vec<_> = known.templates.iter().map(|t| template::holes(t)).collect();
    let declare = |fields: &mut Vec<FieldDesc>, name: &str, kind: FieldKind| {
        if !fields.iter().any(|f| f.name == name) {
            fields.push(FieldDesc {
                name: name.to_string(),
                scope: Scope::Payload,
                kind,
            });
        }
    };
    for spec in &specs {
        for piece in spec {
            if let Err((name, conv)) = piece {
                if name.starts_with('_') || *conv == ".." || name.is_empty() {
                    continue;
                }
                declare(fields, name, template::parse_conv(conv, None).kind());
                if *conv == "xr" {
                    declare(fields, "isa", FieldKind::UInt);
                }
            }
        }
    }
    for name in events::derived_fields(known.name) {
        declare(fields, name, FieldKind::UInt);
    }
    declare(fields, "text", FieldKind::Str);
    let text = fields.len() as u32 - 1;
    let isa = fields
        .iter()
        .position(|f| f.name == "isa")
        .map(|i| i as u32);
    let mut nslots = fields.len();
    let mut templates = Vec::new();
    for spec in specs {
        let mut toks = Vec::new();
        let mut consts = Vec::new();
        for piece in spec {
            match piece {
                Ok(lit) => toks.push(Tok::Lit(lit)),
                Err(("", "..")) | Err(("..", "")) => toks.push(Tok::Rest),
                Err(("_", "")) => toks.push(Tok::Hole {
                    slot: 0,
                    conv: Conv::Skip,
                }),
                Err((name, conv)) => {
                    let slot = if name.starts_with('_') {
                        match scratch.iter().find(|(n, _)| *n == name) {
                            Some((_, s)) => *s,
                            None => {
                                scratch.push((name, nslots as u32));
                                nslots += 1;
                                nslots as u32 - 1
                            }
                        }
                    } else {
                        fields
                            .iter()
                            .position(|f| f.name == name)
                            .expect("declared") as u32
                    };
                    let conv = template::parse_conv(conv, isa);
                    let tok = Tok::Hole { slot, conv };
                    // Constants consume no text: set them first, whatever the order.
                    if matches!(conv, Conv::Const(_)) {
                        consts.push(tok);
                    } else {
                        toks.push(tok);
                    }
                }
            }
        }
        consts.extend(toks);
        templates.push(Template { toks: consts });
    }
    (
        ClassParser::Known {
            templates,
            scratch,
            post: known.post,
            text,
        },
        nslots,
    )
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Parses one line (without its newline).
fn parse_line(line: &str) -> Line<'_> {
    let line = line.trim_end_matches(['\r', ' ', '\t']);
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') && !trimmed.starts_with("##### CPU") {
        return Line::Ignored;
    }
    if let Some(rest) = trimmed.strip_prefix("##### CPU ") {
        // `##### CPU 2 buffer started ####`: the ring buffer of that CPU overflowed, the
        // events before are gone.
        if let Some((cpu, tail)) = rest.split_once(' ') {
            if tail.starts_with("buffer started") {
                if let Ok(cpu) = cpu.parse() {
                    return Line::Lost { cpu, count: None };
                }
            }
        }
        return Line::Unknown;
    }
    if let Some(rest) = trimmed.strip_prefix("CPU:") {
        return parse_lost(rest).unwrap_or(Line::Unknown);
    }
    if trimmed.starts_with("cpus=") && trimmed[5..].bytes().all(|c| c.is_ascii_digit()) {
        return Line::Ignored;
    }
    if let Some(rest) = trimmed.strip_prefix("CPU ") {
        if rest.ends_with(" is empty") {
            return Line::Ignored;
        }
    }
    match parse_event_line(line) {
        Some(h) => Line::Event(h),
        None => Line::Unknown,
    }
}

/// `1 [LOST 23 EVENTS]`, `1 [LOST EVENTS]` or `1 [23 EVENTS DROPPED]` (after `CPU:`).
fn parse_lost(rest: &str) -> Option<Line<'static>> {
    let (cpu, tail) = rest.split_once(' ')?;
    let cpu = cpu.parse().ok()?;
    let inner = tail.trim().strip_prefix('[')?.strip_suffix(']')?;
    let count = if inner == "LOST EVENTS" {
        None
    } else if let Some(n) = inner
        .strip_prefix("LOST ")
        .and_then(|s| s.strip_suffix(" EVENTS"))
    {
        Some(n.parse().ok()?)
    } else if let Some(n) = inner.strip_suffix(" EVENTS DROPPED") {
        Some(n.parse().ok()?)
    } else {
        return None;
    };
    Some(Line::Lost { cpu, count })
}

/// `<comm>-<pid> [(<tgid>)] [<cpu>] [<flags>] <ts>: <name>: <text>`.
fn parse_event_line(line: &str) -> Option<LineHeader<'_>> {
    let (cpu, mut before, after) = bracketed_cpu(line).or_else(|| latency_cpu(line))?;
    let mut tgid = None;
    if before.ends_with(')') {
        let paren = before.rfind('(')?;
        let inner = before[paren + 1..before.len() - 1].trim();
        if is_digits(inner) {
            tgid = Some(inner.parse().ok()?);
        } else if !inner.bytes().all(|c| c == b'-') {
            return None;
        }
        before = before[..paren].trim_end();
    }
    let (comm, pid) = before.rsplit_once('-')?;
    if !is_digits(pid) {
        return None;
    }
    let pid = pid.parse().ok()?;
    let comm = comm.trim_start();

    // Optional irq-flags column, then the timestamp ending in ':'.
    let mut rest = after.trim_start();
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    let ts = match parse_timestamp(first) {
        Some(ts) => {
            rest = after;
            ts
        }
        None => {
            let after = after.trim_start();
            let (second, after2) = after.split_once(' ').unwrap_or((after, ""));
            let ts = parse_timestamp(second)?;
            rest = after2;
            ts
        }
    };
    let rest = rest.trim_start();
    let colon = rest.find(':')?;
    let name = &rest[..colon];
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return None;
    }
    let text = rest[colon + 1..].trim_start();
    Some(LineHeader {
        comm,
        pid,
        tgid,
        cpu,
        ts,
        name,
        text,
    })
}

/// The CPU column `[001]`: the first `[digits]` preceded by a space and by `-pid` or
/// `(tgid)`. Returns the CPU, the text before it and the text after it.
fn bracketed_cpu(line: &str) -> Option<(u32, &str, &str)> {
    let b = line.as_bytes();
    let mut search = 0;
    loop {
        let open = search + b[search..].iter().position(|&c| c == b'[')?;
        search = open + 1;
        let digits = b[open + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let close = open + 1 + digits;
        if digits == 0 || b.get(close) != Some(&b']') || open == 0 || b[open - 1] != b' ' {
            continue;
        }
        let before = line[..open].trim_end();
        if before.ends_with(')') || before.rsplit_once('-').is_some_and(|(_, p)| is_digits(p)) {
            return Some((
                line[open + 1..close].parse().ok()?,
                before,
                &line[close + 1..],
            ));
        }
    }
}

/// trace-cmd's latency format (`report -l`): `comm-pid  1d.h1.  20.920299: …`, the CPU
/// number glued to the irq flags. Found from the timestamp token.
fn latency_cpu(line: &str) -> Option<(u32, &str, &str)> {
    let mut prev: Option<(usize, &str)> = None;
    let mut pos = 0;
    for tok in line.split(' ') {
        let at = pos;
        pos += tok.len() + 1;
        if tok.is_empty() {
            continue;
        }
        if let Some((prev_at, cpu_flags)) = prev {
            if parse_timestamp(tok).is_some() {
                let digits = cpu_flags.bytes().take_while(u8::is_ascii_digit).count();
                let before = line[..prev_at].trim_end();
                if digits > 0 && before.rsplit_once('-').is_some_and(|(_, p)| is_digits(p)) {
                    return Some((cpu_flags[..digits].parse().ok()?, before, &line[at..]));
                }
                return None;
            }
        }
        prev = Some((at, tok));
    }
    None
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// `748.236969:` (µs), `748.236969123:` (ns) or a bare counter `123456:` → ns.
fn parse_timestamp(tok: &str) -> Option<i64> {
    let tok = tok.strip_suffix(':')?;
    let (secs, frac) = match tok.split_once('.') {
        Some((s, f)) => (s, f),
        None => return tok.parse().ok().filter(|_| is_digits(tok)),
    };
    if !is_digits(secs) || !is_digits(frac) || frac.len() > 9 {
        return None;
    }
    let scale = 10i64.pow(9 - frac.len() as u32);
    let secs: i64 = secs.parse().ok()?;
    let frac: i64 = frac.parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(frac * scale)
}

/// Splits `a=1 b=x y c=3` into pairs; a value runs up to the next ` key=`. `None` when the
/// text does not start with `key=`.
fn split_key_values(text: &str) -> Option<Vec<(&str, &str)>> {
    let b = text.as_bytes();
    let key_at = |i: usize| -> Option<usize> {
        // A key: identifier characters then '='.
        let n = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        (n > 0 && b.get(i + n) == Some(&b'=')).then_some(n)
    };
    let mut pairs = Vec::new();
    let mut i = 0;
    let mut klen = key_at(0)?;
    loop {
        let key = &text[i..i + klen];
        let vstart = i + klen + 1;
        let mut j = vstart;
        let next = loop {
            match b[j..].iter().position(|&c| c == b' ') {
                Some(k) => {
                    j += k + 1;
                    if let Some(n) = key_at(j) {
                        break Some((j, n));
                    }
                }
                None => break None,
            }
        };
        match next {
            Some((j, n)) => {
                pairs.push((key, text[vstart..j - 1].trim_end()));
                i = j;
                klen = n;
            }
            None => {
                pairs.push((key, text[vstart..].trim_end()));
                return Some(pairs);
            }
        }
    }
}

fn value_kind(v: &str) -> FieldKind {
    match template::parse_num(v.as_bytes()) {
        Some(Slot::I(_)) => FieldKind::Int,
        Some(_) => FieldKind::UInt,
        None => FieldKind::Str,
    }
}

fn merge_kind(a: FieldKind, b: FieldKind) -> FieldKind {
    match (a, b) {
        _ if a == b => a,
        (FieldKind::Str, _) | (_, FieldKind::Str) => FieldKind::Str,
        _ => FieldKind::Int,
    }
}

impl EventSource for TextSource {
    fn classes(&self) -> &[EventClass] {
        &self.classes
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        while let Some((start, end)) = self.next_line() {
            // The text is moved out while a line borrows it, so that `self` stays free for
            // updates; moving a String does not move its bytes, so offsets stay valid.
            let text = std::mem::take(&mut self.text);
            let parsed = parse_line(&text[start..end]);
            let step = match parsed {
                Line::Event(h) => match self.class_ids.get(h.name) {
                    Some(&class) => {
                        let text_start = h.text.as_ptr() as usize - text.as_ptr() as usize;
                        self.fill_fields(class as usize, &h, text_start, &text);
                        self.last_ts = h.ts;
                        self.stats.events += 1;
                        Some(Step::Event(EventHeader {
                            ts: h.ts,
                            cpu: h.cpu,
                            stream: h.cpu,
                            class: ClassId(class),
                        }))
                    }
                    None => None,
                },
                _ => None,
            };
            self.text = text;
            if let Some(step) = step {
                return Ok(step);
            }
            match parse_line(&self.text[start..end]) {
                Line::Lost { cpu, count } => {
                    self.stats.lost_notices += 1;
                    self.stats.lost_events += count.unwrap_or(0);
                    let end = self.peek_next_ts().unwrap_or(self.last_ts);
                    return Ok(Step::Lost(LostEvents {
                        begin: self.last_ts,
                        end: end.max(self.last_ts),
                        cpu,
                        stream: cpu,
                        count,
                    }));
                }
                Line::Ignored => {}
                // An event whose name the first pass did not see cannot happen; count it.
                Line::Unknown | Line::Event(_) => self.unknown_line(start, end),
            }
        }
        if self.unparsed_text > MAX_EXAMPLES as u64 {
            self.stats.warnings.push(format!(
                "{}: {} events in all had text in no known format",
                self.path.display(),
                self.unparsed_text
            ));
            self.unparsed_text = MAX_EXAMPLES as u64;
        }
        Ok(Step::End)
    }

    fn u64(&self, field: FieldId) -> Option<u64> {
        match self.slot(field) {
            Slot::U(v) => Some(v),
            Slot::I(v) => Some(v as u64),
            _ => None,
        }
    }

    fn i64(&self, field: FieldId) -> Option<i64> {
        match self.slot(field) {
            Slot::U(v) => Some(v as i64),
            Slot::I(v) => Some(v),
            _ => None,
        }
    }

    fn str(&self, field: FieldId) -> Option<&str> {
        match self.slot(field) {
            Slot::S(a, b) => self.text.get(a..b),
            _ => None,
        }
    }

    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        match self.slot(field) {
            Slot::None => None,
            Slot::U(v) => Some(Value::UInt(v)),
            Slot::I(v) => Some(Value::Int(v)),
            Slot::S(a, b) => self.text.get(a..b).map(|s| Value::Str(s.into())),
        }
    }

    fn stats(&self) -> ReadStats {
        self.stats.clone()
    }

    fn progress(&self) -> Option<(u64, u64)> {
        Some((self.pos as u64, self.text.len() as u64))
    }
}

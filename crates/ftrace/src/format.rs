//! Parser of tracefs event `format` descriptions, as the kernel prints them in
//! `/sys/kernel/tracing/events/SYSTEM/NAME/format` and as trace-cmd `.dat` and `perf.data`
//! files carry them.
//!
//! Public API (stable; shared by the `.dat` and `perf.data` readers):
//!
//! - [`parse_format`]`(system, text) -> Result<`[`EventFormat`]`, `[`FormatError`]`>` parses one
//!   format text (`name:`, `ID:`, `format:` with its `field:` lines, `print fmt:`).
//! - [`EventFormat`]: `system`, `name`, `id`, `fields` (the common fields first, flagged
//!   [`FormatField::common`], then the event's own), `print_fmt`; [`EventFormat::field`] finds
//!   a field by name.
//! - [`FormatField`]: `name`, `type_name` (as declared, e.g. `unsigned int`, `char[]`),
//!   `offset`, `size`, `signed`, `common`, and its [`FieldLayout`], which says how the
//!   bytes at `offset..offset+size` in a record are to be read (see `record.rs`).
//! - [`parse_header_page`] reads the ring-buffer page header description (the `header_page`
//!   file) into a [`HeaderPage`]: where the commit word and the data start in a page.
//!
//! Field layouts are derived from the declaration the same way the kernel and libtraceevent
//! do: `__data_loc T[] name` is a 32-bit (length << 16 | offset) reference to dynamic data in
//! the record; `__rel_loc` is the same with the offset counted from the end of the field;
//! `T name[N]` is a fixed array whose element size is `size / N` (a zero-size `T name[]` runs
//! to the end of the record); `char` arrays are strings;
//! anything else of 1, 2, 4 or 8 bytes is an integer (pointers included); other sizes are
//! opaque bytes.
//!
//! A text that does not parse gives a [`FormatError`]: its line and a [`FormatErrorKind`]
//! (both in `virtflow_trace::error`, where the `.dat` and perf.data errors that carry them
//! live).

pub use virtflow_trace::error::{FormatError, FormatErrorKind};

use std::borrow::Cow;

/// The text of a format, or any text a tracer wrote: validated, and converted only if it is
/// not UTF-8. Validation reads ASCII a word at a time, where the lossy conversion goes byte by
/// byte: on a trace that carries a thousand formats, that showed.
pub(crate) fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// How a field's bytes are read from a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldLayout {
    /// An integer of `size` bytes (1, 2, 4 or 8), signed when [`FormatField::signed`].
    Integer,
    /// `char name[N]`: a NUL-padded string of `size` bytes.
    CharArray,
    /// `T name[N]` with `T` an integer of `elem_size` bytes: `size / elem_size` elements.
    Array { elem_size: u8 },
    /// `__data_loc T[] name` (`__rel_loc` when `relative`): a 32-bit word, the low 16 bits the
    /// offset of the data (from the record start, or from the end of this field when
    /// relative), the high 16 bits its length in bytes. `elem_size` is 1 for `char[]` and
    /// `u8[]`, the element size otherwise (0 when unknown: read as bytes).
    Dynamic {
        relative: bool,
        is_string: bool,
        elem_size: u8,
    },
    /// Anything else (a struct, an odd size): `size` opaque bytes.
    Bytes,
}

/// One `field:` line of a format description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatField {
    pub name: String,
    /// The declared type without the name and array length, e.g. `unsigned int`,
    /// `char[16]` is `char`, `__data_loc char[]` is `char[]`.
    pub type_name: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
    /// One of the `common_*` fields every event of the trace starts with.
    pub common: bool,
    pub layout: FieldLayout,
}

/// One event's format: the tracepoint `system:name`, its numeric id, and its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFormat {
    pub system: String,
    pub name: String,
    /// The id that `common_type` holds in this event's records.
    pub id: u32,
    /// Common fields first (those before the blank line of the format text), then the event's.
    pub fields: Vec<FormatField>,
    pub print_fmt: String,
}

impl EventFormat {
    pub fn field(&self, name: &str) -> Option<&FormatField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The smallest record size that holds every fixed part of every field.
    pub fn fixed_size(&self) -> u32 {
        self.fields
            .iter()
            .map(|f| f.offset.saturating_add(f.size))
            .max()
            .unwrap_or(0)
    }
}

fn err(line: usize, kind: FormatErrorKind) -> FormatError {
    FormatError { line, kind }
}

/// Parses one event format description. `system` is the tracepoint system (the directory the
/// format came from); the text names the event itself.
pub fn parse_format(system: &str, text: &str) -> Result<EventFormat, FormatError> {
    let mut name = None;
    let mut id = None;
    let mut fields = Vec::new();
    let mut print_fmt = String::new();
    // Fields before the first blank line inside `format:` are the common ones.
    let mut in_common = true;
    let mut seen_field = false;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim_ascii();
        if let Some(rest) = line.strip_prefix("name:") {
            name = Some(rest.trim_ascii().to_string());
        } else if let Some(rest) = line.strip_prefix("ID:") {
            let v = rest.trim_ascii();
            id = Some(v.parse::<u32>().map_err(|_| {
                err(
                    lineno,
                    FormatErrorKind::BadEventId {
                        found: v.to_string(),
                    },
                )
            })?);
        } else if line.starts_with("field:") || line.starts_with("field special:") {
            let mut f = parse_field_line(line).map_err(|m| err(lineno, m))?;
            f.common = in_common && f.name.starts_with("common_");
            fields.push(f);
            seen_field = true;
        } else if let Some(rest) = line.strip_prefix("print fmt:") {
            print_fmt = rest.trim_ascii().to_string();
        } else if line.is_empty() {
            if seen_field {
                in_common = false;
            }
        } else if line == "format:" {
        } else if print_fmt.is_empty() {
            return Err(err(
                lineno,
                FormatErrorKind::UnexpectedLine {
                    found: line.to_string(),
                },
            ));
        }
    }
    let name = name.ok_or(err(1, FormatErrorKind::NoName))?;
    let id = id.ok_or(err(1, FormatErrorKind::NoId))?;
    Ok(EventFormat {
        system: system.to_string(),
        name,
        id,
        fields,
        print_fmt,
    })
}

/// Parses `field:TYPE NAME;\toffset:N;\tsize:N;\tsigned:N;` (signed is optional in old
/// kernels). Returns the field with `common == false`.
pub fn parse_field_line(line: &str) -> Result<FormatField, FormatErrorKind> {
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = None;
    for part in cut(line, b';') {
        let part = part.trim_ascii();
        if part.is_empty() {
            continue;
        }
        let (key, value) =
            cut_once(part, b':').ok_or_else(|| FormatErrorKind::PartWithoutColon {
                part: part.to_string(),
            })?;
        match key.trim_ascii() {
            "field" | "field special" => decl = Some(value.trim_ascii()),
            "offset" => offset = Some(parse_num(value)?),
            "size" => size = Some(parse_num(value)?),
            "signed" => signed = Some(parse_num(value)? != 0),
            _ => {} // unknown attributes are ignored, as libtraceevent does
        }
    }
    let missing = |what| FormatErrorKind::MissingFieldPart { what };
    let decl = decl.ok_or(missing("declaration"))?;
    let offset = offset.ok_or(missing("offset"))?;
    let size = size.ok_or(missing("size"))?;
    let (type_name, name, array_len) = split_declaration(decl)?;
    let signed = signed.unwrap_or_else(|| !type_name.contains("unsigned"));
    let layout = layout_of(&type_name, array_len, size);
    Ok(FormatField {
        name,
        type_name,
        offset,
        size,
        signed,
        common: false,
        layout,
    })
}

/// `s` cut at each `sep` (an ASCII byte) by a plain loop: the parts of a field line are a few
/// bytes long, too short to pay for the searcher `str::split` sets up for each.
fn cut(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == sep) {
            // `sep` is ASCII: both sides of it are whole characters.
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `s` before and after its first `sep` (an ASCII byte), as [`cut`] finds it.
fn cut_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

fn parse_num(s: &str) -> Result<u32, FormatErrorKind> {
    let s = s.trim_ascii();
    s.parse::<u32>().map_err(|_| FormatErrorKind::BadNumber {
        found: s.to_string(),
    })
}

/// Array length in a declaration: a number, symbolic (`[TASK_COMM_LEN]`), or empty (`[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArrayLen {
    None,
    Known(u32),
    Unknown,
}

/// Splits `unsigned long caller[8]` into (`unsigned long`, `caller`, Known(8)) and
/// `__data_loc char[] name` into (`__data_loc char[]`, `name`, None).
fn split_declaration(decl: &str) -> Result<(String, String, ArrayLen), FormatErrorKind> {
    let decl = decl.trim_ascii();
    let no_name = || FormatErrorKind::NoFieldName {
        declaration: decl.to_string(),
    };
    let (mut head, mut last) = match decl.rfind(|c: char| c.is_ascii_whitespace() || c == '*') {
        Some(i) => (decl[..=i].trim_ascii(), &decl[i + 1..]),
        None => return Err(no_name()),
    };
    if last.is_empty() {
        return Err(no_name());
    }
    let mut array_len = ArrayLen::None;
    if let Some(open) = last.find('[') {
        let close = last.rfind(']').filter(|&c| c > open).ok_or_else(|| {
            FormatErrorKind::UnclosedArray {
                declaration: decl.to_string(),
            }
        })?;
        let inner = last[open + 1..close].trim_ascii();
        array_len = if inner.is_empty() {
            ArrayLen::Unknown
        } else {
            inner
                .parse::<u32>()
                .map(ArrayLen::Known)
                .unwrap_or(ArrayLen::Unknown)
        };
        last = &last[..open];
    }
    if last.is_empty() {
        return Err(no_name());
    }
    // Keep `*` attached to the type (`const char *`).
    if head.ends_with('*') {
        head = head.trim_ascii_end();
    }
    Ok((head.to_string(), last.to_string(), array_len))
}

/// Size in bytes of a C integer type name, when it names one.
fn scalar_size(type_name: &str) -> Option<u8> {
    let t = type_name
        .trim_ascii()
        .trim_start_matches("const ")
        .trim_start_matches("volatile ");
    if t.ends_with('*') {
        return None; // pointer: its size comes from the field
    }
    let base = t
        .trim_start_matches("unsigned ")
        .trim_start_matches("signed ")
        .trim_ascii();
    Some(match base {
        "char" | "u8" | "s8" | "__u8" | "__s8" | "bool" | "_Bool" | "int8_t" | "uint8_t" => 1,
        "short" | "short int" | "u16" | "s16" | "__u16" | "__s16" | "__le16" | "__be16"
        | "int16_t" | "uint16_t" => 2,
        "int" | "u32" | "s32" | "__u32" | "__s32" | "__le32" | "__be32" | "int32_t"
        | "uint32_t" | "pid_t" | "unsigned" => 4,
        "long long" | "long long int" | "u64" | "s64" | "__u64" | "__s64" | "__le64" | "__be64"
        | "int64_t" | "uint64_t" => 8,
        _ => return None,
    })
}

fn is_char_type(type_name: &str) -> bool {
    let t = type_name
        .trim_ascii()
        .trim_start_matches("const ")
        .trim_ascii();
    matches!(t, "char" | "signed char" | "unsigned char")
}

fn layout_of(type_name: &str, array_len: ArrayLen, size: u32) -> FieldLayout {
    for (prefix, relative) in [("__data_loc", false), ("__rel_loc", true)] {
        if let Some(rest) = type_name.strip_prefix(prefix) {
            let elem = rest.trim_ascii().trim_end_matches("[]").trim_ascii();
            let is_string = is_char_type(elem);
            let elem_size = if is_string {
                1
            } else {
                scalar_size(elem).unwrap_or(0)
            };
            return FieldLayout::Dynamic {
                relative,
                is_string,
                elem_size,
            };
        }
    }
    match array_len {
        ArrayLen::None => {
            if matches!(size, 1 | 2 | 4 | 8) {
                FieldLayout::Integer
            } else {
                FieldLayout::Bytes
            }
        }
        ArrayLen::Known(_) | ArrayLen::Unknown if is_char_type(type_name) => {
            if type_name.contains("unsigned") {
                // `unsigned char x[N]` holds bytes (addresses, hashes), not text.
                FieldLayout::Array { elem_size: 1 }
            } else {
                FieldLayout::CharArray
            }
        }
        ArrayLen::Known(n) => {
            let elem = if size.checked_rem(n) == Some(0) {
                size / n
            } else {
                0
            };
            match elem {
                1 | 2 | 4 | 8 => FieldLayout::Array {
                    elem_size: elem as u8,
                },
                _ => FieldLayout::Bytes,
            }
        }
        ArrayLen::Unknown => match scalar_size(type_name) {
            Some(e) if size.checked_rem(e as u32) == Some(0) => FieldLayout::Array { elem_size: e },
            _ => FieldLayout::Bytes,
        },
    }
}

/// The ring-buffer page header, as described by the tracefs `events/header_page` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderPage {
    /// Offset and size of the page timestamp (normally 0 and 8).
    pub timestamp_offset: u32,
    pub timestamp_size: u32,
    /// Offset and size of the commit word (the data length plus the missed-events flags).
    pub commit_offset: u32,
    pub commit_size: u32,
    /// Where the records start in a page.
    pub data_offset: u32,
    /// How many bytes of records a page holds at most.
    pub data_size: u32,
}

impl HeaderPage {
    /// The layout for a kernel with `long_size`-byte longs, when the file has no description.
    pub fn default_for(long_size: u32, page_size: u32) -> HeaderPage {
        HeaderPage {
            timestamp_offset: 0,
            timestamp_size: 8,
            commit_offset: 8,
            commit_size: long_size,
            data_offset: 8 + long_size,
            data_size: page_size.saturating_sub(8 + long_size),
        }
    }
}

/// Parses a `header_page` description (`field: u64 timestamp; offset:0; size:8; signed:0;`
/// and so on for `commit`, `overwrite`, `data`).
pub fn parse_header_page(text: &str) -> Result<HeaderPage, FormatError> {
    let mut ts = None;
    let mut commit = None;
    let mut data = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with("field") {
            continue;
        }
        let f = parse_field_line(line).map_err(|m| err(i + 1, m))?;
        match f.name.as_str() {
            "timestamp" => ts = Some(f),
            "commit" => commit = Some(f),
            "data" => data = Some(f),
            _ => {}
        }
    }
    let missing = |name| err(1, FormatErrorKind::HeaderPageFieldMissing { name });
    let ts = ts.ok_or_else(|| missing("timestamp"))?;
    let commit = commit.ok_or_else(|| missing("commit"))?;
    let data = data.ok_or_else(|| missing("data"))?;
    if !matches!(commit.size, 4 | 8) || ts.size != 8 {
        return Err(err(
            1,
            FormatErrorKind::HeaderPageFieldSizes {
                timestamp: ts.size,
                commit: commit.size,
            },
        ));
    }
    Ok(HeaderPage {
        timestamp_offset: ts.offset,
        timestamp_size: ts.size,
        commit_offset: commit.offset,
        commit_size: commit.size,
        data_offset: data.offset,
        data_size: data.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_split() {
        let (t, n, l) = split_declaration("const char * filename").unwrap();
        assert_eq!(
            (t.as_str(), n.as_str(), l),
            ("const char *", "filename", ArrayLen::None)
        );
        let (t, n, l) = split_declaration("__data_loc char[] name").unwrap();
        assert_eq!(
            (t.as_str(), n.as_str(), l),
            ("__data_loc char[]", "name", ArrayLen::None)
        );
        let (t, n, l) = split_declaration("unsigned long caller[8]").unwrap();
        assert_eq!(
            (t.as_str(), n.as_str(), l),
            ("unsigned long", "caller", ArrayLen::Known(8))
        );
        assert_eq!(
            split_declaration("int"),
            Err(FormatErrorKind::NoFieldName {
                declaration: "int".into()
            })
        );
        assert_eq!(
            split_declaration("int x[4"),
            Err(FormatErrorKind::UnclosedArray {
                declaration: "int x[4".into()
            })
        );
    }
}

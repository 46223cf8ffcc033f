//! Line templates: how one event's text is laid out, and how each piece becomes a field.
//!
//! A template is the event's print format written with named holes, e.g.
//! `"vcpu {vcpu_id:u}, rip 0x{rip:x}"`. Text between holes is matched literally; a hole's
//! value runs up to the next literal (trying each later occurrence when the rest does not
//! match, so a `comm` holding `:` or spaces still parses), or to the end of the line. The
//! conversion after `:` turns the matched text into a value:
//!
//! | conv | matches | kind |
//! |---|---|---|
//! | `d` | signed decimal | Int |
//! | `u` | unsigned decimal | UInt |
//! | `x` | hexadecimal, with or without `0x` (also `%p` hashed pointers) | UInt |
//! | `n` | `0x…` hexadecimal or decimal | UInt |
//! | `s` | any text | Str |
//! | `sym` | a symbol, with trace-cmd's `/0x…` offset suffix removed | Str |
//! | `ks` | the kernel's `prev_state` letters (`S`, `R+`, `D|K`…) | Int |
//! | `tcs` | trace-cmd's sched plugin `prev_state` letters | Int |
//! | `xr` | a KVM exit reason name (VMX, SVM, or trace-cmd plugin names); also sets `isa` | UInt |
//! | `map=TABLE` | a name from [`symbols::map_table`], or a number | UInt |
//! | `=N` | nothing: the field is set to N | Int |
//!
//! A hole named `_` is matched and dropped; a name starting with `_` is a scratch value for
//! a post-processing step (see `events::post`). A template ending in `{..}` ignores the rest
//! of the line.

use virtflow_trace::FieldKind;

use super::symbols;

/// A value of the current event, read lazily by the accessors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    None,
    U(u64),
    I(i64),
    /// A byte range of the file's text.
    S(usize, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conv {
    Int,
    UInt,
    Hex,
    Num,
    Str,
    Sym,
    KernelState,
    TraceCmdState,
    /// Exit reason name; the slot of the class's `isa` field, if it has one.
    ExitReason(Option<u32>),
    Map(&'static [(&'static str, i64)]),
    Const(i64),
    Skip,
}

impl Conv {
    pub(crate) fn kind(self) -> FieldKind {
        match self {
            Conv::Int | Conv::KernelState | Conv::TraceCmdState | Conv::Const(_) => FieldKind::Int,
            Conv::Str | Conv::Sym => FieldKind::Str,
            _ => FieldKind::UInt,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Tok {
    Lit(&'static str),
    Hole {
        slot: u32,
        conv: Conv,
    },
    /// `{..}`: the rest of the line is ignored.
    Rest,
}

/// A compiled template of one class.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    pub toks: Vec<Tok>,
}

/// Splits a template into literal and hole specs: `(literal)` or `(name, conv)`.
pub(crate) fn holes(
    template: &'static str,
) -> Vec<Result<&'static str, (&'static str, &'static str)>> {
    let mut out = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').expect("template hole is closed");
                let spec = &rest[1..end];
                let (name, conv) = spec.split_once(':').unwrap_or((spec, ""));
                out.push(Err((name, conv)));
                rest = &rest[end + 1..];
            }
            Some(i) => {
                out.push(Ok(&rest[..i]));
                rest = &rest[i..];
            }
            None => {
                out.push(Ok(rest));
                rest = "";
            }
        }
    }
    out
}

/// The conversion a hole's spec names; `isa` is the slot of the class's `isa` field.
pub(crate) fn parse_conv(spec: &str, isa: Option<u32>) -> Conv {
    match spec {
        "d" => Conv::Int,
        "u" => Conv::UInt,
        "x" => Conv::Hex,
        "n" => Conv::Num,
        "s" | "" => Conv::Str,
        "sym" => Conv::Sym,
        "ks" => Conv::KernelState,
        "tcs" => Conv::TraceCmdState,
        "xr" => Conv::ExitReason(isa),
        _ => {
            if let Some(table) = spec.strip_prefix("map=") {
                Conv::Map(symbols::map_table(table))
            } else if let Some(n) = spec.strip_prefix('=') {
                Conv::Const(n.parse().expect("template constant is a number"))
            } else {
                panic!("unknown template conversion {spec:?}")
            }
        }
    }
}

/// Parses a decimal integer, with an optional sign.
pub(crate) fn parse_dec(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = parse_udec(digits)?;
    if neg {
        Some((v as i64).wrapping_neg())
    } else {
        Some(v as i64)
    }
}

pub(crate) fn parse_udec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Parses hexadecimal digits, with or without a `0x` prefix.
pub(crate) fn parse_hex(s: &[u8]) -> Option<u64> {
    let s = s
        .strip_prefix(b"0x")
        .or_else(|| s.strip_prefix(b"0X"))
        .unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    let s = {
        // Leading zeros (`%016llx`) must not count against the 16-digit limit.
        let nz = s.iter().position(|&c| c != b'0').unwrap_or(s.len() - 1);
        &s[nz..]
    };
    if s.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// `0x…` hexadecimal, else decimal (signed).
pub(crate) fn parse_num(s: &[u8]) -> Option<Slot> {
    if s.starts_with(b"0x") || s.starts_with(b"0X") {
        parse_hex(s).map(Slot::U)
    } else if s.first() == Some(&b'-') {
        parse_dec(s).map(Slot::I)
    } else {
        parse_udec(s).map(Slot::U)
    }
}

/// How many occurrences of the literal after a text hole are tried.
const MAX_TRIES: usize = 16;

/// Matches `text` (at byte `base` of the file) against a template, filling `slots`.
pub(crate) fn matches(toks: &[Tok], text: &str, base: usize, slots: &mut [Slot]) -> bool {
    match_from(toks, text.as_bytes(), 0, base, slots)
}

fn match_from(toks: &[Tok], text: &[u8], pos: usize, base: usize, slots: &mut [Slot]) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return text[pos..].iter().all(u8::is_ascii_whitespace);
    };
    match tok {
        Tok::Rest => true,
        Tok::Lit(lit) => {
            text[pos..].starts_with(lit.as_bytes())
                && match_from(rest, text, pos + lit.len(), base, slots)
        }
        Tok::Hole { slot, conv } => {
            if let Conv::Const(v) = conv {
                slots[*slot as usize] = Slot::I(*v);
                return match_from(rest, text, pos, base, slots);
            }
            match rest.first() {
                // Last hole, or followed by `{..}`: the value runs to the end of the text
                // (or to the next space when the rest is ignored and the value is a number).
                None | Some(Tok::Rest) => {
                    let mut end = text.len();
                    if !rest.is_empty() && !matches!(conv, Conv::Str | Conv::Skip) {
                        end = text[pos..]
                            .iter()
                            .position(|c| *c == b' ')
                            .map_or(end, |i| pos + i);
                    }
                    while end > pos && text[end - 1].is_ascii_whitespace() {
                        end -= 1;
                    }
                    convert(*conv, text, pos, end, base, *slot, slots)
                }
                Some(Tok::Lit(lit)) => {
                    let lit = lit.as_bytes();
                    let mut from = pos;
                    // Comms and file names hold few copies of the next literal; bounding the
                    // tries keeps a hostile line from costing more than linear time per hole.
                    let mut tries = 0;
                    while let Some(i) = find(&text[from..], lit) {
                        tries += 1;
                        if tries > MAX_TRIES {
                            return false;
                        }
                        let end = from + i;
                        if convert(*conv, text, pos, end, base, *slot, slots)
                            && match_from(rest, text, end, base, slots)
                        {
                            return true;
                        }
                        // Numbers cannot hold the literal: no point looking further.
                        if !matches!(
                            conv,
                            Conv::Str | Conv::Skip | Conv::Sym | Conv::Map(_) | Conv::ExitReason(_)
                        ) {
                            return false;
                        }
                        from = end + 1;
                    }
                    false
                }
                Some(Tok::Hole { .. }) => false,
            }
        }
    }
}

/// First occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, tail) = needle.split_first()?;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let j = hay[i..hay.len() - tail.len()]
            .iter()
            .position(|&c| c == first)?;
        let at = i + j;
        if &hay[at + 1..at + needle.len()] == tail {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

fn convert(
    conv: Conv,
    text: &[u8],
    start: usize,
    end: usize,
    base: usize,
    slot: u32,
    slots: &mut [Slot],
) -> bool {
    let s = &text[start..end];
    let value = match conv {
        Conv::Int => parse_dec(s).map(Slot::I),
        Conv::UInt => parse_udec(s).map(Slot::U),
        Conv::Hex => parse_hex(s).map(Slot::U),
        Conv::Num => parse_num(s),
        Conv::Str => Some(Slot::S(base + start, base + end)),
        Conv::Sym => {
            // trace-cmd prints `func/0x0` or `func+0x12/0x40`; the kernel prints `func`.
            let cut = s
                .iter()
                .position(|&c| c == b'/' || c == b'+')
                .unwrap_or(s.len());
            Some(Slot::S(base + start, base + start + cut))
        }
        Conv::KernelState => symbols::kernel_task_state(s).map(Slot::I),
        Conv::TraceCmdState => symbols::trace_cmd_task_state(s).map(Slot::I),
        Conv::ExitReason(isa) => match symbols::exit_reason(s) {
            Some((code, which)) => {
                if let (Some(isa), Some(which)) = (isa, which) {
                    slots[isa as usize] = Slot::U(which);
                }
                Some(Slot::U(code))
            }
            None => None,
        },
        Conv::Map(table) => match table.iter().find(|(name, _)| name.as_bytes() == s) {
            Some((_, v)) => Some(if *v < 0 {
                Slot::I(*v)
            } else {
                Slot::U(*v as u64)
            }),
            None => parse_num(s),
        },
        Conv::Const(v) => Some(Slot::I(v)),
        Conv::Skip => return true,
    };
    match value {
        Some(v) => {
            slots[slot as usize] = v;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_hex(b"0x0000000000000001"), Some(1));
        assert_eq!(parse_hex(b"ffffffffa9c592ea"), Some(0xffffffffa9c592ea));
        assert_eq!(parse_hex(b"0x"), None);
        assert_eq!(parse_hex(b"1ffffffffffffffff"), None);
        assert_eq!(parse_dec(b"-14"), Some(-14));
        assert_eq!(parse_udec(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_udec(b"18446744073709551616"), None);
        assert_eq!(parse_num(b"0x10"), Some(Slot::U(16)));
        assert_eq!(parse_num(b"-3"), Some(Slot::I(-3)));
    }

    #[test]
    fn find_literal() {
        assert_eq!(find(b"abc:12 [3]", b" ["), Some(6));
        assert_eq!(find(b"abc", b"abcd"), None);
        assert_eq!(find(b"a:b:c", b":"), Some(1));
    }
}

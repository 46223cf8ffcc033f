//! CTF 1.8 metadata: the TSDL lexer and a parser that compiles straight to [`crate::types`].

use crate::types::*;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use virtflow_trace::TraceError;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok<'a> {
    Ident(&'a str),
    Int(i128),
    Str(String),
    P(&'static str),
    Eof,
}

/// Splits TSDL text into tokens, each with its byte offset.
pub fn lex(text: &str) -> Result<Vec<(Tok<'_>, usize)>, (usize, String)> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::with_capacity(text.len() / 5 + 16);
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match text[i + 2..].find("*/") {
                Some(e) => i = i + 2 + e + 2,
                None => return Err((i, "unterminated comment".into())),
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(&text[start..i]), start));
            continue;
        }
        if c.is_ascii_digit() {
            let (radix, digits_start) = if c == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
                (16, i + 2)
            } else if c == b'0' && matches!(b.get(i + 1), Some(b'0'..=b'7')) {
                (8, i + 1)
            } else {
                (10, i)
            };
            i = digits_start;
            while i < b.len() && (b[i] as char).is_digit(radix) {
                i += 1;
            }
            let digits = &b[digits_start..i];
            // Short decimals (sizes, alignments, ids: most literals) without the general parser.
            let v = if radix == 10 && !digits.is_empty() && digits.len() <= 18 {
                digits
                    .iter()
                    .fold(0i128, |v, &d| v * 10 + (d - b'0') as i128)
            } else {
                i128::from_str_radix(&text[digits_start..i], radix)
                    .map_err(|_| (start, "bad integer literal".to_string()))?
            };
            while i < b.len() && matches!(b[i], b'u' | b'U' | b'l' | b'L') {
                i += 1;
            }
            out.push((Tok::Int(v), start));
            continue;
        }
        if c == b'"' || c == b'\'' {
            let quote = c;
            i += 1;
            let mut s = Vec::new();
            loop {
                match b.get(i) {
                    None => return Err((start, "unterminated string".into())),
                    Some(&q) if q == quote => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let e = *b.get(i + 1).ok_or((i, "bad escape".to_string()))?;
                        i += 2;
                        match e {
                            b'n' => s.push(b'\n'),
                            b't' => s.push(b'\t'),
                            b'r' => s.push(b'\r'),
                            b'a' => s.push(7),
                            b'b' => s.push(8),
                            b'f' => s.push(12),
                            b'v' => s.push(11),
                            b'x' => {
                                let st = i;
                                while i < b.len() && i < st + 2 && b[i].is_ascii_hexdigit() {
                                    i += 1;
                                }
                                let v = u8::from_str_radix(&text[st..i], 16)
                                    .map_err(|_| (st, "bad \\x escape".to_string()))?;
                                s.push(v);
                            }
                            b'0'..=b'7' => {
                                let st = i - 1;
                                while i < b.len() && i < st + 3 && (b'0'..=b'7').contains(&b[i]) {
                                    i += 1;
                                }
                                let v = u32::from_str_radix(&text[st..i], 8)
                                    .map_err(|_| (st, "bad octal escape".to_string()))?;
                                s.push(v as u8);
                            }
                            b'\\' | b'\'' | b'"' | b'?' => s.push(e),
                            _ => {
                                return Err((
                                    i - 2,
                                    format!("unknown escape sequence \\{}", e as char),
                                ))
                            }
                        }
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            if quote == b'\'' {
                if s.len() != 1 {
                    return Err((start, "bad character literal".into()));
                }
                out.push((Tok::Int(s[0] as i128), start));
            } else {
                out.push((Tok::Str(String::from_utf8_lossy(&s).into_owned()), start));
            }
            continue;
        }
        let rest = &text[i..];
        let p: &'static str = if rest.starts_with("...") {
            "..."
        } else if rest.starts_with(":=") {
            ":="
        } else if rest.starts_with("->") {
            "->"
        } else {
            match c {
                b'{' => "{",
                b'}' => "}",
                b'(' => "(",
                b')' => ")",
                b'[' => "[",
                b']' => "]",
                b'<' => "<",
                b'>' => ">",
                b';' => ";",
                b',' => ",",
                b'.' => ".",
                b'=' => "=",
                b':' => ":",
                b'+' => "+",
                b'-' => "-",
                b'*' => "*",
                _ => return Err((i, format!("unexpected character {:?}", c as char))),
            }
        };
        i += p.len();
        out.push((Tok::P(p), start));
    }
    out.push((Tok::Eof, text.len()));
    Ok(out)
}

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Int(i128),
    Str(String),
    /// Identifier or dotted path.
    Path(Vec<String>),
}

enum BlockItem {
    Val(Val),
    Type(Ty),
}

#[derive(Default)]
struct Names {
    aliases: HashMap<String, Ty>,
    structs: HashMap<String, Ty>,
    variants: HashMap<String, Ty>,
    enums: HashMap<String, Ty>,
}

struct Parser<'a> {
    toks: Vec<(Tok<'a>, usize)>,
    i: usize,
    file: &'a Path,
    scopes: Vec<Names>,
    depth: u32,
    in_variant: bool,
}

type PResult<T> = Result<T, TraceError>;

/// What the parser collects; [`build`] turns it into a [`TraceClass`].
#[derive(Default)]
struct Collected {
    bo: Option<ByteOrder>,
    packet_header: Option<Ty>,
    streams: Vec<(u64, Option<Ty>, Option<Ty>, Option<Ty>, u64)>,
    events: Vec<(u64, EventClassDef)>,
    clocks: Vec<Clock>,
    env: Vec<(String, String)>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok<'a> {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }
    fn peek_at(&self, k: usize) -> &Tok<'a> {
        &self.toks[(self.i + k).min(self.toks.len() - 1)].0
    }
    fn off(&self) -> u64 {
        self.toks[self.i.min(self.toks.len() - 1)].1 as u64
    }
    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(TraceError::new(
            self.file,
            self.off(),
            format!("TSDL: {}", msg.into()),
        ))
    }
    fn next(&mut self) -> Tok<'a> {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn is_p(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::P(q) if *q == p)
    }
    fn is_ident(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Ident(q) if *q == s)
    }
    fn expect_p(&mut self, p: &str) -> PResult<()> {
        if self.is_p(p) {
            self.next();
            Ok(())
        } else {
            self.err(format!("expected `{p}`, found {:?}", self.peek()))
        }
    }
    fn ident(&mut self) -> PResult<String> {
        match self.next() {
            Tok::Ident(s) => Ok(s.to_string()),
            t => {
                self.i -= 1;
                self.err(format!("expected a name, found {t:?}"))
            }
        }
    }

    fn lookup(&self, f: impl Fn(&Names) -> Option<&Ty>) -> Option<Ty> {
        self.scopes.iter().rev().find_map(|s| f(s).cloned())
    }

    fn parse_top(&mut self, c: &mut Collected) -> PResult<()> {
        loop {
            match self.peek().clone() {
                Tok::Eof => return Ok(()),
                Tok::P(";") => {
                    self.next();
                }
                Tok::Ident("typealias") => self.parse_typealias()?,
                Tok::Ident("typedef") => self.parse_typedef()?,
                Tok::Ident(s)
                    if matches!(
                        s,
                        "trace" | "stream" | "event" | "clock" | "env" | "callsite"
                    ) && matches!(self.peek_at(1), Tok::P("{")) =>
                {
                    let at = self.off();
                    self.next();
                    self.next();
                    let items = self.parse_block()?;
                    self.apply_block(s, items, c, at)?;
                    if self.is_p(";") {
                        self.next();
                    }
                }
                _ => {
                    self.parse_type_spec()?;
                    // A declaration of a named struct/enum/variant at top level.
                    if !self.is_p(";") {
                        return self.err("expected `;` after a type declaration");
                    }
                    self.next();
                }
            }
        }
    }

    fn parse_typealias(&mut self) -> PResult<()> {
        self.next();
        let ty = self.parse_type_spec()?;
        while self.is_p("*") {
            self.next();
        }
        self.expect_p(":=")?;
        let mut name = Vec::new();
        while let Tok::Ident(s) = self.peek().clone() {
            self.next();
            name.push(s.to_string());
        }
        if name.is_empty() {
            return self.err("typealias without a name");
        }
        let ty = self.parse_dims(ty)?;
        self.expect_p(";")?;
        self.scopes
            .last_mut()
            .unwrap()
            .aliases
            .insert(name.join(" "), ty);
        Ok(())
    }

    fn parse_typedef(&mut self) -> PResult<()> {
        self.next();
        let ty = self.parse_type_spec()?;
        loop {
            let name = self.ident()?;
            let t = self.parse_dims(ty.clone())?;
            self.scopes.last_mut().unwrap().aliases.insert(name, t);
            if self.is_p(",") {
                self.next();
                continue;
            }
            break;
        }
        self.expect_p(";")
    }

    /// `[N]` / `[path]` suffixes of a declarator.
    fn parse_dims(&mut self, elem: Ty) -> PResult<Ty> {
        let mut dims = Vec::new();
        while self.is_p("[") {
            self.next();
            let len = match self.next() {
                Tok::Int(n) if n >= 0 && n <= u32::MAX as i128 * 64 => Len::Static(n as u64),
                Tok::Ident(s) => {
                    let mut parts = vec![s.to_string()];
                    while self.is_p(".") {
                        self.next();
                        parts.push(self.ident()?);
                    }
                    Len::Dyn(Loc::Path(path_of(parts)))
                }
                _ => {
                    self.i -= 1;
                    return self.err("bad array length");
                }
            };
            self.expect_p("]")?;
            dims.push(len);
        }
        let mut ty = elem;
        for (k, len) in dims.into_iter().enumerate().rev() {
            let _ = k;
            ty = match ty {
                Ty::Int(ref i) if i.encoded && i.size == 8 && i.align % 8 == 0 => {
                    Ty::Str(len, false)
                }
                other => {
                    let align = other.align();
                    Ty::Array {
                        elem: Box::new(other),
                        len,
                        align,
                    }
                }
            };
        }
        Ok(ty)
    }

    fn parse_attrs(&mut self) -> PResult<Vec<(String, Val)>> {
        // after `{`
        let mut out = Vec::new();
        while !self.is_p("}") {
            if matches!(self.peek(), Tok::Eof) {
                return self.err("unterminated attribute block");
            }
            let mut key = self.ident()?;
            while self.is_p(".") {
                self.next();
                key.push('.');
                key.push_str(&self.ident()?);
            }
            self.expect_p("=")?;
            let v = self.parse_val()?;
            out.push((key, v));
            self.expect_p(";")?;
        }
        self.next();
        Ok(out)
    }

    fn parse_val(&mut self) -> PResult<Val> {
        let neg = if self.is_p("-") {
            self.next();
            true
        } else {
            if self.is_p("+") {
                self.next();
            }
            false
        };
        match self.next() {
            Tok::Int(v) => Ok(Val::Int(if neg { -v } else { v })),
            Tok::Str(s) if !neg => Ok(Val::Str(s)),
            Tok::Ident(s) if !neg => {
                let mut parts = vec![s.to_string()];
                while self.is_p(".") {
                    self.next();
                    parts.push(self.ident()?);
                }
                Ok(Val::Path(parts))
            }
            t => {
                self.i -= 1;
                self.err(format!("bad value {t:?}"))
            }
        }
    }

    fn parse_type_spec(&mut self) -> PResult<Ty> {
        self.depth += 1;
        if self.depth > 64 {
            return self.err("types nested too deeply");
        }
        let r = self.parse_type_spec_inner();
        self.depth -= 1;
        r
    }

    fn parse_type_spec_inner(&mut self) -> PResult<Ty> {
        while self.is_ident("const") {
            self.next();
        }
        let kw = match self.peek() {
            Tok::Ident(s) => s.to_string(),
            t => return self.err(format!("expected a type, found {t:?}")),
        };
        match kw.as_str() {
            "integer" => {
                self.next();
                self.expect_p("{")?;
                let attrs = self.parse_attrs()?;
                self.int_from_attrs(&attrs).map(Ty::Int)
            }
            "floating_point" => {
                self.next();
                self.expect_p("{")?;
                let attrs = self.parse_attrs()?;
                let (mut exp, mut mant, mut align, mut bo) = (8u32, 24u32, 0u32, ByteOrder::Native);
                for (k, v) in &attrs {
                    match (k.as_str(), v) {
                        ("exp_dig", Val::Int(n)) => exp = (*n).clamp(0, 64) as u32,
                        ("mant_dig", Val::Int(n)) => mant = (*n).clamp(0, 64) as u32,
                        ("align", Val::Int(n)) => align = (*n).clamp(0, 1 << 20) as u32,
                        ("byte_order", v) => bo = self.byte_order(v)?,
                        _ => {}
                    }
                }
                let size = exp + mant;
                if size != 32 && size != 64 {
                    return self.err(format!("unsupported floating point size {size}"));
                }
                if align == 0 {
                    align = 8;
                }
                Ok(Ty::Float { size, align, bo })
            }
            "string" => {
                self.next();
                if self.is_p("{") {
                    self.next();
                    self.parse_attrs()?;
                }
                Ok(Ty::Str(Len::Static(0), true))
            }
            "struct" => {
                self.next();
                let name = if let Tok::Ident(s) = self.peek().clone() {
                    self.next();
                    Some(s.to_string())
                } else {
                    None
                };
                if self.is_p("{") {
                    self.next();
                    let saved = std::mem::replace(&mut self.in_variant, false);
                    let fields = self.parse_struct_body();
                    self.in_variant = saved;
                    let fields = fields?;
                    let mut min_align = 1;
                    if self.is_ident("align") && matches!(self.peek_at(1), Tok::P("(")) {
                        self.next();
                        self.next();
                        match self.next() {
                            Tok::Int(n) if n > 0 && n < 1 << 20 && (n & (n - 1)) == 0 => {
                                min_align = n as u32
                            }
                            _ => return self.err("bad align()"),
                        }
                        self.expect_p(")")?;
                    }
                    let ty = Ty::Struct(Box::new(StructTy { min_align, fields }));
                    if let Some(n) = name {
                        self.scopes
                            .last_mut()
                            .unwrap()
                            .structs
                            .insert(n, ty.clone());
                    }
                    Ok(ty)
                } else if let Some(n) = name {
                    match self.lookup(|s| s.structs.get(&n)) {
                        Some(t) => Ok(t),
                        None => self.err(format!("unknown struct {n}")),
                    }
                } else {
                    self.err("struct without name or body")
                }
            }
            "variant" => {
                self.next();
                let name = if let Tok::Ident(s) = self.peek().clone() {
                    self.next();
                    Some(s.to_string())
                } else {
                    None
                };
                let tag = if self.is_p("<") {
                    self.next();
                    let mut parts = vec![self.ident()?];
                    while self.is_p(".") {
                        self.next();
                        parts.push(self.ident()?);
                    }
                    self.expect_p(">")?;
                    Some(path_of(parts))
                } else {
                    None
                };
                let mut ty = if self.is_p("{") {
                    self.next();
                    let saved = std::mem::replace(&mut self.in_variant, true);
                    let options = self.parse_struct_body();
                    self.in_variant = saved;
                    let options = options?;
                    let t = Ty::Variant(Box::new(VariantTy {
                        tag: Loc::Path(FieldPath {
                            root: None,
                            parts: vec![],
                        }),
                        options,
                        ranges: vec![],
                        by_label: true,
                    }));
                    if let Some(n) = &name {
                        self.scopes
                            .last_mut()
                            .unwrap()
                            .variants
                            .insert(n.clone(), t.clone());
                    }
                    t
                } else if let Some(n) = &name {
                    match self.lookup(|s| s.variants.get(n)) {
                        Some(t) => t,
                        None => return self.err(format!("unknown variant {n}")),
                    }
                } else {
                    return self.err("variant without name or body");
                };
                if let (Some(tag), Ty::Variant(v)) = (tag, &mut ty) {
                    v.tag = Loc::Path(tag);
                }
                Ok(ty)
            }
            "enum" => {
                self.next();
                let name = if let Tok::Ident(s) = self.peek().clone() {
                    self.next();
                    Some(s.to_string())
                } else {
                    None
                };
                let container = if self.is_p(":") {
                    self.next();
                    Some(self.parse_type_spec()?)
                } else {
                    None
                };
                if self.is_p("{") {
                    self.next();
                    let container = match container {
                        Some(t) => t,
                        None => match self.lookup(|s| s.aliases.get("int")) {
                            Some(t) => t,
                            None => return self.err("enum without container type and no `int`"),
                        },
                    };
                    let Ty::Int(mut it) = container else {
                        return self.err("enum container is not an integer");
                    };
                    let mut maps: Vec<Mapping> = Vec::new();
                    let mut next_v: i128 = 0;
                    while !self.is_p("}") {
                        let label = match self.next() {
                            Tok::Ident(s) => s.to_string(),
                            Tok::Str(s) => s,
                            t => {
                                self.i -= 1;
                                return self.err(format!("bad enumerator {t:?}"));
                            }
                        };
                        let (lo, hi) = if self.is_p("=") {
                            self.next();
                            let lo = self.enum_int()?;
                            let hi = if self.is_p("...") {
                                self.next();
                                self.enum_int()?
                            } else {
                                lo
                            };
                            (lo, hi)
                        } else {
                            (next_v, next_v)
                        };
                        next_v = hi.saturating_add(1);
                        match maps.iter_mut().find(|m| m.name == label) {
                            Some(m) => m.ranges.push((lo.min(hi), lo.max(hi))),
                            None => maps.push(Mapping {
                                name: label,
                                ranges: vec![(lo.min(hi), lo.max(hi))],
                            }),
                        }
                        if self.is_p(",") {
                            self.next();
                        } else if !self.is_p("}") {
                            return self.err("expected `,` or `}` in enumeration");
                        }
                    }
                    self.next();
                    it.mappings = Some(Rc::new(maps));
                    let ty = Ty::Int(it);
                    if let Some(n) = name {
                        self.scopes.last_mut().unwrap().enums.insert(n, ty.clone());
                    }
                    Ok(ty)
                } else if let Some(n) = name {
                    match self.lookup(|s| s.enums.get(&n)) {
                        Some(t) => Ok(t),
                        None => self.err(format!("unknown enum {n}")),
                    }
                } else {
                    self.err("enum without name or body")
                }
            }
            _ => {
                // Named type: the longest run of identifiers that names an alias.
                let mut k = 0;
                while matches!(self.peek_at(k), Tok::Ident(_)) {
                    k += 1;
                }
                for n in (1..=k).rev() {
                    let name: Vec<&str> = (0..n)
                        .map(|j| match self.peek_at(j) {
                            Tok::Ident(s) => *s,
                            _ => "",
                        })
                        .collect();
                    let name = name.join(" ");
                    if let Some(t) = self.lookup(|s| s.aliases.get(&name)) {
                        self.i += n;
                        return Ok(t);
                    }
                }
                self.err(format!("unknown type {kw}"))
            }
        }
    }

    fn enum_int(&mut self) -> PResult<i128> {
        match self.parse_val()? {
            Val::Int(v) => Ok(v),
            _ => self.err("enumerator value is not an integer"),
        }
    }

    fn byte_order(&self, v: &Val) -> PResult<ByteOrder> {
        match v {
            Val::Path(p) if p.len() == 1 => match p[0].as_str() {
                "le" | "little_endian" => Ok(ByteOrder::Le),
                "be" | "big_endian" | "network" => Ok(ByteOrder::Be),
                "native" => Ok(ByteOrder::Native),
                o => self.err(format!("bad byte_order {o}")),
            },
            _ => self.err("bad byte_order"),
        }
    }

    fn int_from_attrs(&self, attrs: &[(String, Val)]) -> PResult<IntTy> {
        let mut it = IntTy::new(0, false);
        let mut align = None;
        let mut has_size = false;
        for (k, v) in attrs {
            match (k.as_str(), v) {
                ("size", Val::Int(n)) => {
                    if *n < 1 || *n > 64 {
                        return self.err(format!("unsupported integer size {n}"));
                    }
                    it.size = *n as u32;
                    has_size = true;
                }
                ("align", Val::Int(n)) => {
                    if *n < 1 || *n > 1 << 20 || (*n & (*n - 1)) != 0 {
                        return self.err(format!("bad alignment {n}"));
                    }
                    align = Some(*n as u32)
                }
                ("signed", Val::Int(n)) => it.signed = *n != 0,
                ("signed", Val::Path(p)) => it.signed = p[0] == "true" || p[0] == "TRUE",
                ("byte_order", v) => it.bo = self.byte_order(v)?,
                ("base", Val::Int(n)) => it.base = *n as u32,
                ("base", Val::Path(p)) => {
                    it.base = match p[0].as_str() {
                        "decimal" | "dec" | "d" | "i" | "u" => 10,
                        "hexadecimal" | "hex" | "x" | "X" | "p" => 16,
                        "octal" | "oct" | "o" => 8,
                        "binary" | "b" => 2,
                        _ => 10,
                    }
                }
                ("encoding", Val::Path(p)) => it.encoded = p[0] != "none",
                ("map", Val::Path(p)) if p.len() >= 2 && p[0] == "clock" => {
                    it.clock = Some(p[1].clone());
                }
                _ => {}
            }
        }
        if !has_size {
            return self.err("integer without size");
        }
        it.align = align.unwrap_or(if it.size % 8 == 0 { 8 } else { 1 });
        Ok(it)
    }

    fn parse_struct_body(&mut self) -> PResult<Vec<(String, Ty)>> {
        self.scopes.push(Names::default());
        let r = self.parse_struct_body_inner();
        self.scopes.pop();
        r
    }

    fn parse_struct_body_inner(&mut self) -> PResult<Vec<(String, Ty)>> {
        let mut fields: Vec<(String, Ty)> = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::P("}") => {
                    self.next();
                    return Ok(fields);
                }
                Tok::P(";") => {
                    self.next();
                }
                Tok::Eof => return self.err("unterminated structure"),
                Tok::Ident("typealias") => self.parse_typealias()?,
                Tok::Ident("typedef") => self.parse_typedef()?,
                _ => {
                    let ty = self.parse_type_spec()?;
                    if self.is_p(";") {
                        self.next();
                        continue;
                    }
                    loop {
                        let name = self.ident()?;
                        let t = self.parse_dims(ty.clone())?;
                        // TSDL: a leading underscore escapes a name; it is not part of it
                        // (variant options keep theirs: they are matched to enum labels).
                        let name = match (self.in_variant, name.strip_prefix('_')) {
                            (false, Some(n)) if !n.is_empty() => n.to_string(),
                            _ => name,
                        };
                        if fields.iter().any(|(n, _)| *n == name) {
                            return self.err(format!("duplicate field {name}"));
                        }
                        fields.push((name, t));
                        if self.is_p(",") {
                            self.next();
                            continue;
                        }
                        break;
                    }
                    self.expect_p(";")?;
                }
            }
        }
    }

    fn parse_block(&mut self) -> PResult<Vec<(String, BlockItem, u64)>> {
        self.scopes.push(Names::default());
        let r = self.parse_block_inner();
        self.scopes.pop();
        r
    }

    fn parse_block_inner(&mut self) -> PResult<Vec<(String, BlockItem, u64)>> {
        let mut out = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::P("}") => {
                    self.next();
                    return Ok(out);
                }
                Tok::P(";") => {
                    self.next();
                }
                Tok::Eof => return self.err("unterminated block"),
                Tok::Ident("typealias") => self.parse_typealias()?,
                Tok::Ident("typedef") => self.parse_typedef()?,
                Tok::Ident(_) => {
                    let off = self.off();
                    let mut key = self.ident()?;
                    while self.is_p(".") {
                        self.next();
                        key.push('.');
                        key.push_str(&self.ident()?);
                    }
                    if self.is_p(":=") {
                        self.next();
                        let ty = self.parse_type_spec()?;
                        out.push((key, BlockItem::Type(ty), off));
                    } else {
                        self.expect_p("=")?;
                        let v = self.parse_val()?;
                        out.push((key, BlockItem::Val(v), off));
                    }
                    self.expect_p(";")?;
                }
                t => return self.err(format!("unexpected {t:?} in block")),
            }
        }
    }

    fn apply_block(
        &mut self,
        kind: &str,
        items: Vec<(String, BlockItem, u64)>,
        c: &mut Collected,
        at: u64,
    ) -> PResult<()> {
        let int = |v: &BlockItem| match v {
            BlockItem::Val(Val::Int(n)) => Some(*n),
            _ => None,
        };
        let bad = |off: u64, k: &str| {
            Err(TraceError::new(
                self.file,
                off,
                format!("TSDL: bad value for `{k}`"),
            ))
        };
        match kind {
            "trace" => {
                for (k, v, off) in items {
                    match (k.as_str(), v) {
                        ("byte_order", BlockItem::Val(v)) => {
                            let bo = self.byte_order(&v)?;
                            if bo == ByteOrder::Native {
                                return bad(off, &k);
                            }
                            c.bo = Some(bo);
                        }
                        ("packet.header", BlockItem::Type(t)) => c.packet_header = Some(t),
                        ("major", v) if int(&v) != Some(1) => {
                            return Err(TraceError::new(
                                self.file,
                                off,
                                "TSDL: unsupported major version",
                            ));
                        }
                        ("minor", v) if int(&v) != Some(8) => {
                            return Err(TraceError::new(
                                self.file,
                                off,
                                "TSDL: unsupported minor version",
                            ));
                        }
                        _ => {}
                    }
                }
            }
            "stream" => {
                let mut s = (0u64, None, None, None, at);
                for (k, v, off) in items {
                    match (k.as_str(), v) {
                        ("id", v) => match int(&v) {
                            Some(n) if n >= 0 => s.0 = n as u64,
                            _ => return bad(off, &k),
                        },
                        ("packet.context", BlockItem::Type(t)) => s.1 = Some(t),
                        ("event.header", BlockItem::Type(t)) => s.2 = Some(t),
                        ("event.context", BlockItem::Type(t)) => s.3 = Some(t),
                        _ => {}
                    }
                }
                if c.streams.iter().any(|x| x.0 == s.0) {
                    return self.err(format!("duplicate stream id {}", s.0));
                }
                c.streams.push(s);
            }
            "event" => {
                let mut e = EventClassDef {
                    meta_offset: at,
                    id: 0,
                    name: String::new(),
                    context: Ty::empty_struct(),
                    payload: Ty::empty_struct(),
                };
                let mut sid = 0u64;
                for (k, v, off) in items {
                    match (k.as_str(), v) {
                        ("name", BlockItem::Val(Val::Str(s))) => e.name = s,
                        ("name", BlockItem::Val(Val::Path(p))) => e.name = p.join("."),
                        ("id", v) => match int(&v) {
                            Some(n) if n >= 0 && n <= u64::MAX as i128 => e.id = n as u64,
                            _ => return bad(off, &k),
                        },
                        ("stream_id", v) => match int(&v) {
                            Some(n) if n >= 0 && n <= u64::MAX as i128 => sid = n as u64,
                            _ => return bad(off, &k),
                        },
                        ("context", BlockItem::Type(t)) => e.context = t,
                        ("fields", BlockItem::Type(t)) => e.payload = t,
                        _ => {}
                    }
                }
                c.events.push((sid, e));
            }
            "clock" => {
                let mut ck = Clock {
                    name: String::new(),
                    freq: 1_000_000_000,
                    offset_s: 0,
                    offset_cycles: 0,
                };
                for (k, v, off) in items {
                    match (k.as_str(), &v) {
                        ("name", BlockItem::Val(Val::Path(p))) => ck.name = p.join("."),
                        ("name", BlockItem::Val(Val::Str(s))) => ck.name = s.clone(),
                        ("freq", _) => match int(&v) {
                            Some(n) if n > 0 && n <= u64::MAX as i128 => ck.freq = n as u64,
                            _ => return bad(off, &k),
                        },
                        ("offset_s", _) => match int(&v) {
                            Some(n) if n.abs() < i64::MAX as i128 / 1_000_000_000 => {
                                ck.offset_s = n as i64
                            }
                            _ => return bad(off, &k),
                        },
                        ("offset", _) => match int(&v) {
                            Some(n) if n.abs() < i64::MAX as i128 => ck.offset_cycles = n as i64,
                            _ => return bad(off, &k),
                        },
                        _ => {}
                    }
                }
                c.clocks.push(ck);
            }
            "env" => {
                for (k, v, _) in items {
                    let s = match v {
                        BlockItem::Val(Val::Int(n)) => n.to_string(),
                        BlockItem::Val(Val::Str(s)) => s,
                        BlockItem::Val(Val::Path(p)) => p.join("."),
                        BlockItem::Type(_) => continue,
                    };
                    c.env.push((k, s));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn path_of(parts: Vec<String>) -> FieldPath {
    let p: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
    let (root, n) = match p.as_slice() {
        ["trace", "packet", "header", ..] => (Some(Root::PacketHeader), 3),
        ["stream", "packet", "context", ..] => (Some(Root::PacketContext), 3),
        ["stream", "event", "header", ..] => (Some(Root::EventHeader), 3),
        ["stream", "event", "context", ..] => (Some(Root::StreamEventContext), 3),
        ["event", "context", ..] => (Some(Root::EventContext), 2),
        ["event", "fields", ..] => (Some(Root::Payload), 2),
        _ => (None, 0),
    };
    FieldPath {
        root,
        parts: parts[n..].to_vec(),
    }
}

/// Parses TSDL text into a trace class. `file` names the metadata file in errors.
pub fn parse(text: &str, file: &Path) -> Result<TraceClass, TraceError> {
    let toks =
        lex(text).map_err(|(off, m)| TraceError::new(file, off as u64, format!("TSDL: {m}")))?;
    let mut p = Parser {
        toks,
        i: 0,
        file,
        scopes: vec![Names::default()],
        depth: 0,
        in_variant: false,
    };
    let mut c = Collected::default();
    p.parse_top(&mut c)?;
    crate::resolve::build(
        file,
        c.bo,
        c.packet_header,
        c.streams,
        c.events,
        c.clocks,
        c.env,
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexer() {
        let t = lex("integer { size = 0x10; } /* c */ := a.b ... \"s\\\"x\" // x\n 017 -3 'a'")
            .unwrap();
        let toks: Vec<Tok> = t.into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            toks,
            vec![
                Tok::Ident("integer"),
                Tok::P("{"),
                Tok::Ident("size"),
                Tok::P("="),
                Tok::Int(16),
                Tok::P(";"),
                Tok::P("}"),
                Tok::P(":="),
                Tok::Ident("a"),
                Tok::P("."),
                Tok::Ident("b"),
                Tok::P("..."),
                Tok::Str("s\"x".into()),
                Tok::Int(15),
                Tok::P("-"),
                Tok::Int(3),
                Tok::Int(97),
                Tok::Eof
            ]
        );
        assert!(lex("/* unterminated").is_err());
        assert!(lex("\"abc").is_err());
        assert!(lex("#").is_err());
    }

    const META: &str = r#"/* CTF 1.8 */
typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
typealias integer { size = 64; align = 8; signed = false; map = clock.monotonic.value; } := uint64_clock_t;
typealias integer { size = 32; align = 8; signed = true; } := int;
trace { major = 1; minor = 8; byte_order = be;
  packet.header := struct { uint32_t magic; uint8_t uuid[16]; uint32_t stream_id; };
};
env { hostname = "h"; domain = "kernel"; };
clock { name = monotonic; freq = 1000; offset_s = 10; offset = 500; };
stream { id = 0;
  event.header := struct { enum : uint8_t { compact = 0 ... 30, extended = 31 } id;
     variant <id> { struct { uint32_t timestamp; } compact; struct { uint32_t id; uint64_clock_t timestamp; } extended; } v; };
  packet.context := struct { uint64_clock_t timestamp_begin; uint32_t content_size; uint32_t packet_size; uint32_t cpu_id; };
};
event { name = "e"; id = 3; stream_id = 0;
  fields := struct { uint32_t len; string s; integer { size = 4; signed = true; byte_order = le; } x[len];
     enum e2 : uint8_t { A, B = 5, C = 7 ... 9 } tag; variant <tag> { int A; string B; struct { uint8_t q; } C; } v;
     uint8_t arr[2][3]; integer { size = 8; encoding = UTF8; } chars[4]; } align(32);
};
"#;

    #[test]
    fn parser() {
        let tc = parse(META, Path::new("metadata")).unwrap();
        assert_eq!(tc.bo, ByteOrder::Be);
        assert_eq!(tc.clocks[0].freq, 1000);
        assert_eq!(tc.clocks[0].to_ns(500), 10_000_000_000 + 1_000_000_000);
        assert_eq!(tc.env[0], ("hostname".into(), "h".into()));
        let s = &tc.streams[0];
        let e = &s.events[0];
        assert_eq!(e.name, "e");
        assert_eq!(e.id, 3);
        let st = e.payload.as_struct().unwrap();
        assert_eq!(st.min_align, 32);
        let names: Vec<&str> = st.fields.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, ["len", "s", "x", "tag", "v", "arr", "chars"]);
        // The sequence refers to `len` through a slot.
        let Ty::Int(len) = &st.fields[0].1 else {
            panic!()
        };
        let Ty::Array {
            len: Len::Dyn(Loc::Slot(sl)),
            elem,
            ..
        } = &st.fields[2].1
        else {
            panic!()
        };
        assert_eq!(len.slot, Some(*sl));
        let Ty::Int(x) = &**elem else { panic!() };
        assert!(x.signed && x.size == 4 && x.bo == ByteOrder::Le);
        let Ty::Variant(v) = &st.fields[4].1 else {
            panic!()
        };
        assert!(matches!(v.tag, Loc::Slot(_)));
        assert!(v.ranges.contains(&(7, 9, 2)));
        assert!(matches!(&st.fields[6].1, Ty::Str(Len::Static(4), false)));
        let Ty::Array {
            elem,
            len: Len::Static(2),
            ..
        } = &st.fields[5].1
        else {
            panic!()
        };
        assert!(matches!(
            &**elem,
            Ty::Array {
                len: Len::Static(3),
                ..
            }
        ));
        // Roles.
        let Ty::Int(b) = &s.packet_context.as_struct().unwrap().fields[0].1 else {
            panic!()
        };
        assert_eq!(b.role, Role::PacketBeginTs);
        assert_eq!(b.bo, ByteOrder::Be);
    }

    #[test]
    fn errors_have_offsets() {
        let e = parse(
            "trace { major = 1; minor = 8; byte_order = le; };\nstruct { int x; };",
            Path::new("m"),
        )
        .unwrap_err();
        assert!(e.offset > 40, "{e}");
        let e = parse(
            "typealias integer { size = 8; } := u8;\nevent { fields := struct { u8 a[b]; }; };",
            Path::new("m"),
        );
        assert!(e.is_err());
        let e = parse(
            "trace { major = 1; minor = 8; byte_order = le; } garbage",
            Path::new("m"),
        );
        assert!(e.is_err());
    }
}

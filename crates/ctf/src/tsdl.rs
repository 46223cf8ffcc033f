//! CTF 1.8 metadata: the TSDL lexer and a parser that compiles straight to [`crate::types`].
//!
//! Metadata of a kernel trace declares hundreds of event classes, so opening a trace is mostly
//! this parser. It lexes a few dozen tokens at a time (a token is a kind and a span of the
//! text: names borrow the text), applies attributes as it reads them instead of collecting
//! them, takes an `integer { … }` whose exact text it has read before from a small cache
//! instead of reading it again (a kernel trace declares thousands with a handful of texts),
//! and allocates only what the resulting types own.

use crate::types::*;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use virtflow_trace::TraceError;

/// A token, as [`lex`] returns it.
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
    let mut lx = Lexer::new(text)?;
    let mut out = Vec::new();
    loop {
        let t = lx.scan();
        if let Some(e) = lx.err.take() {
            return Err(e);
        }
        let tok = match t.k {
            K::Ident => Tok::Ident(lx.slice(t)),
            K::Int | K::BigInt => Tok::Int(lx.int(t)),
            K::Str => Tok::Str(unquote(lx.slice(t))),
            K::P => Tok::P(punct_str(t.v as u8)),
            K::Eof => Tok::Eof,
        };
        out.push((tok, t.at as usize));
        if t.k == K::Eof {
            return Ok(out);
        }
    }
}

// Codes of the punctuation made of several characters (the others are their character).
const ELLIPSIS: u8 = b'e';
const ASSIGN: u8 = b'A';
const ARROW: u8 = b'R';

fn punct_str(c: u8) -> &'static str {
    match c {
        ELLIPSIS => "...",
        ASSIGN => ":=",
        ARROW => "->",
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
        _ => "*",
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(u32)]
enum K {
    Ident,
    /// An integer whose value is `v`.
    Int,
    /// An integer too large for `v`: its value is read again from the text when needed.
    BigInt,
    /// A quoted string: the span holds the quotes, escapes are decoded when the value is used
    /// (`v` is [`PLAIN`] when there are none).
    Str,
    /// Punctuation: `v` is its code (see [`punct_str`]).
    P,
    Eof,
}

/// A token and its span in the text; small, so that it is passed around in registers.
#[derive(Clone, Copy, Debug)]
struct T {
    k: K,
    v: u32,
    at: u32,
    end: u32,
}

/// `v` of a string token without escapes.
const PLAIN: u32 = 1;

// Byte classes, for the lexer's inner loops.
const WS: u8 = 1;
const ID_START: u8 = 2;
const ID_CONT: u8 = 4;
/// Punctuation that is one character whatever follows.
const PUNCT1: u8 = 8;
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_whitespace() {
            t[c] |= WS;
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            t[c] |= ID_START | ID_CONT;
        }
        if b.is_ascii_digit() {
            t[c] |= ID_CONT;
        }
        if matches!(
            b,
            b'{' | b'}'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b';'
                | b','
                | b'='
                | b'+'
                | b'*'
        ) {
            t[c] |= PUNCT1;
        }
        c += 1;
    }
    t
};

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    /// The first lexical error; the lexer is at the end after it.
    err: Option<(usize, String)>,
}

impl<'a> Lexer<'a> {
    /// Offsets are kept in 32 bits.
    fn new(text: &'a str) -> Result<Self, (usize, String)> {
        if text.len() > u32::MAX as usize {
            return Err((0, "metadata larger than 4 GiB".into()));
        }
        Ok(Lexer {
            text,
            pos: 0,
            err: None,
        })
    }

    fn slice(&self, t: T) -> &'a str {
        &self.text[t.at as usize..t.end as usize]
    }

    fn eof(&self) -> T {
        let n = self.text.len() as u32;
        T {
            k: K::Eof,
            v: 0,
            at: n,
            end: n,
        }
    }

    /// The next token (`Eof` at the end, again and again; after an error, in `err`, too).
    fn scan(&mut self) -> T {
        let mut t = self.eof();
        self.pos = self.token(self.text.as_bytes(), self.pos, &mut t);
        t
    }

    /// Lexes tokens into `out`, stopping after `Eof` and after `integer` (the parser may have
    /// read that type already and skip its text); returns how many, and the offset of the
    /// last one that is not `Eof`.
    fn batch(&mut self, out: &mut [T]) -> (usize, Option<u32>) {
        // Each token is written in place: built elsewhere and copied, it would be written in
        // parts and read whole, which the processor does slowly.
        let mut i = self.pos;
        let mut last = None;
        let mut count = out.len();
        let b = self.text.as_bytes();
        for (m, t) in out.iter_mut().enumerate() {
            i = self.token(b, i, t);
            if t.k == K::Eof {
                count = m + 1;
                break;
            }
            last = Some(t.at);
            if t.k == K::Ident
                && t.end - t.at == 7
                && &b[t.at as usize..t.end as usize] == b"integer"
            {
                count = m + 1;
                break;
            }
        }
        self.pos = i;
        (count, last)
    }

    /// The token at `i` of `b` (the text), after blanks and comments, into `out`; returns the
    /// offset after it. Names, numbers, punctuation and plain strings here, the rest in
    /// [`Lexer::scan_other`].
    #[inline(always)]
    fn token(&mut self, b: &[u8], mut i: usize, out: &mut T) -> usize {
        loop {
            let Some(&c) = b.get(i) else {
                *out = self.eof();
                return i;
            };
            let cls = CLASS[c as usize];
            if cls & WS != 0 {
                i += 1;
                continue;
            }
            let start = i;
            let mut j = start + 1;
            let t = if cls & ID_START != 0 {
                while j < b.len() && CLASS[b[j] as usize] & ID_CONT != 0 {
                    j += 1;
                }
                T {
                    k: K::Ident,
                    v: 0,
                    at: start as u32,
                    end: j as u32,
                }
            } else if cls & PUNCT1 != 0 {
                T {
                    k: K::P,
                    v: c as u32,
                    at: start as u32,
                    end: j as u32,
                }
            } else if c.is_ascii_digit()
                && !(c == b'0'
                    && matches!(b.get(j), Some(&d) if d | 0x20 == b'x' || (b'0'..=b'7').contains(&d)))
            {
                // A decimal; hexadecimal, octal, suffixed or long ones in `scan_other`.
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j - start > 9 || matches!(b.get(j), Some(b'u' | b'U' | b'l' | b'L')) {
                    let (t, end) = self.scan_other(start);
                    *out = t;
                    return end;
                }
                let v = b[start..j]
                    .iter()
                    .fold(0u32, |v, &d| v * 10 + (d - b'0') as u32);
                T {
                    k: K::Int,
                    v,
                    at: start as u32,
                    end: j as u32,
                }
            } else if let Some(p) = match c {
                b':' if b.get(j) == Some(&b'=') => Some(ASSIGN),
                b'.' if b.get(j..j + 2) == Some(b"..") => Some(ELLIPSIS),
                b'-' if b.get(j) == Some(&b'>') => Some(ARROW),
                b':' | b'.' | b'-' => Some(c),
                _ => None,
            } {
                if p != c {
                    j += if p == ELLIPSIS { 2 } else { 1 };
                }
                T {
                    k: K::P,
                    v: p as u32,
                    at: start as u32,
                    end: j as u32,
                }
            } else if let Some(end) = (c == b'"').then(|| plain_string(b, j)).flatten() {
                j = end;
                T {
                    k: K::Str,
                    v: PLAIN,
                    at: start as u32,
                    end: j as u32,
                }
            } else {
                let (t, end) = self.scan_other(start);
                if t.k == K::Eof && self.err.is_none() && end < b.len() {
                    // A comment.
                    i = end;
                    continue;
                }
                *out = t;
                return end;
            };
            *out = t;
            return j;
        }
    }

    /// Tokens but names, punctuation, decimals and plain strings, and the offset after them;
    /// after a comment, `Eof` and the offset after the comment (`Eof` at the end of the text,
    /// too).
    #[inline(never)]
    fn scan_other(&mut self, start: usize) -> (T, usize) {
        match self.scan_other_inner(start) {
            Ok(Some(t)) => (t, t.end as usize),
            Ok(None) => (self.eof(), self.pos),
            Err(e) => {
                self.err.get_or_insert(e);
                (self.eof(), self.text.len())
            }
        }
    }

    fn scan_other_inner(&mut self, start: usize) -> Result<Option<T>, (usize, String)> {
        let text = self.text;
        let b = text.as_bytes();
        let c = b[start];
        let mut i = start;
        let tok = |k: K, v: u32, end: usize| {
            Ok(Some(T {
                k,
                v,
                at: start as u32,
                end: end as u32,
            }))
        };
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match text[i + 2..].find("*/") {
                Some(e) => self.pos = i + 2 + e + 2,
                None => return Err((i, "unterminated comment".into())),
            }
            return Ok(None);
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            self.pos = match b[i..].iter().position(|&x| x == b'\n') {
                Some(n) => i + n,
                None => b.len(),
            };
            return Ok(None);
        }
        if c.is_ascii_digit() {
            let (v, end) = number(text, start)?;
            return match u32::try_from(v) {
                Ok(v) => tok(K::Int, v, end),
                Err(_) => tok(K::BigInt, 0, end),
            };
        }
        if c == b'"' || c == b'\'' {
            let (mut n, mut first) = (0usize, 0u8);
            let end = quoted(text, start, &mut |v| {
                if n == 0 {
                    first = v;
                }
                n += 1;
            })?;
            if c == b'"' {
                return tok(K::Str, 0, end);
            }
            if n != 1 {
                return Err((start, "bad character literal".into()));
            }
            return tok(K::Int, first as u32, end);
        }
        let rest = &b[i..];
        let p = if rest.starts_with(b"...") {
            i += 3;
            ELLIPSIS
        } else if rest.starts_with(b":=") {
            i += 2;
            ASSIGN
        } else if rest.starts_with(b"->") {
            i += 2;
            ARROW
        } else if matches!(c, b'.' | b':' | b'-') || CLASS[c as usize] & PUNCT1 != 0 {
            i += 1;
            c
        } else {
            return Err((i, format!("unexpected character {:?}", c as char)));
        };
        tok(K::P, p as u32, i)
    }

    /// The value of an integer token.
    fn int(&self, t: T) -> i128 {
        match t.k {
            // The lexer has read the literal: it has a value.
            K::BigInt => number(self.text, t.at as usize).map_or(0, |(v, _)| v),
            _ => t.v as i128,
        }
    }
}

/// The end of a string without escapes whose text starts at `from` (after the quote).
#[inline]
fn plain_string(b: &[u8], from: usize) -> Option<usize> {
    let n = b
        .get(from..)?
        .iter()
        .position(|&x| x == b'"' || x == b'\\')?;
    (b[from + n] == b'"').then_some(from + n + 1)
}

/// Reads the integer literal (decimal, `0x` hexadecimal or `0` octal, with any `u`/`l`
/// suffixes) starting at `start`: its value and the offset after it.
fn number(text: &str, start: usize) -> Result<(i128, usize), (usize, String)> {
    let b = text.as_bytes();
    let c = b[start];
    let mut i = start;
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
    Ok((v, i))
}

/// Reads the quoted literal starting at `start` (its quote character), giving each byte of
/// its value to `out`; returns the offset just past the closing quote.
fn quoted(text: &str, start: usize, out: &mut dyn FnMut(u8)) -> Result<usize, (usize, String)> {
    let b = text.as_bytes();
    let quote = b[start];
    let mut i = start + 1;
    loop {
        match b.get(i) {
            None => return Err((start, "unterminated string".into())),
            Some(&q) if q == quote => return Ok(i + 1),
            Some(b'\\') => {
                let e = *b.get(i + 1).ok_or((i, "bad escape".to_string()))?;
                i += 2;
                match e {
                    b'n' => out(b'\n'),
                    b't' => out(b'\t'),
                    b'r' => out(b'\r'),
                    b'a' => out(7),
                    b'b' => out(8),
                    b'f' => out(12),
                    b'v' => out(11),
                    b'x' => {
                        let st = i;
                        while i < b.len() && i < st + 2 && b[i].is_ascii_hexdigit() {
                            i += 1;
                        }
                        let v = u8::from_str_radix(&text[st..i], 16)
                            .map_err(|_| (st, "bad \\x escape".to_string()))?;
                        out(v);
                    }
                    b'0'..=b'7' => {
                        let st = i - 1;
                        while i < b.len() && i < st + 3 && (b'0'..=b'7').contains(&b[i]) {
                            i += 1;
                        }
                        let v = u32::from_str_radix(&text[st..i], 8)
                            .map_err(|_| (st, "bad octal escape".to_string()))?;
                        out(v as u8);
                    }
                    b'\\' | b'\'' | b'"' | b'?' => out(e),
                    _ => return Err((i - 2, format!("unknown escape sequence \\{}", e as char))),
                }
            }
            Some(&ch) => {
                out(ch);
                i += 1;
            }
        }
    }
}

/// The value of a string token (its text, quotes included, as the lexer accepted it), which
/// the lexer found to have no escapes when `plain`.
fn string_value(raw: &str, plain: bool) -> String {
    match plain {
        true => raw
            .get(1..raw.len().saturating_sub(1))
            .unwrap_or("")
            .to_string(),
        false => unquote(raw),
    }
}

/// The value of a string token (its text, quotes included, as the lexer accepted it).
fn unquote(raw: &str) -> String {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
    if !inner.contains('\\') {
        return inner.to_string();
    }
    let mut s = Vec::with_capacity(inner.len());
    // The lexer has checked the literal; an error here cannot happen and would only cut it.
    let _ = quoted(raw, 0, &mut |v| s.push(v));
    String::from_utf8_lossy(&s).into_owned()
}

/// Dotted names of a value (`le`, `clock.monotonic.value`), borrowed from the text.
struct Parts<'a> {
    first: &'a str,
    rest: Vec<&'a str>,
}

impl<'a> Parts<'a> {
    fn len(&self) -> usize {
        1 + self.rest.len()
    }
    fn get(&self, i: usize) -> &'a str {
        if i == 0 {
            self.first
        } else {
            self.rest[i - 1]
        }
    }
    fn join(&self) -> String {
        let mut s = self.first.to_string();
        for p in &self.rest {
            s.push('.');
            s.push_str(p);
        }
        s
    }
    fn into_vec(self) -> Vec<String> {
        let mut v = Vec::with_capacity(self.len());
        v.push(self.first.to_string());
        v.extend(self.rest.iter().map(|s| s.to_string()));
        v
    }
}

enum Val<'a> {
    Int(i128),
    /// The string token's text, quotes included, and whether it has no escapes.
    Str(&'a str, bool),
    /// Identifier or dotted path.
    Path(Parts<'a>),
}

enum BlockItem<'a> {
    Val(Val<'a>),
    Type(Ty),
}

#[derive(Clone, Copy, PartialEq)]
enum NameKind {
    Alias = 0,
    Struct = 1,
    Variant = 2,
    Enum = 3,
}

/// Named types (typealias/typedef, struct, variant and enum names) in lexical scopes. Most
/// names are declared at the top level, which has hash maps; the scopes of blocks and
/// structure bodies rarely declare any and keep theirs in one list, innermost last.
#[derive(Default)]
struct Scopes {
    top: [HashMap<String, Ty>; 4],
    inner: Vec<(NameKind, String, Ty)>,
    /// Where each open inner scope starts in `inner`.
    marks: Vec<usize>,
    /// Most words in an alias name (`unsigned long`: 2), to bound the look-ahead.
    max_words: usize,
}

impl Scopes {
    fn push(&mut self) {
        self.marks.push(self.inner.len());
    }
    fn pop(&mut self) {
        if let Some(m) = self.marks.pop() {
            self.inner.truncate(m);
        }
    }
    fn insert(&mut self, k: NameKind, name: String, ty: Ty) {
        if k == NameKind::Alias {
            self.max_words = self.max_words.max(name.split(' ').count());
        }
        if self.marks.is_empty() {
            self.top[k as usize].insert(name, ty);
        } else {
            self.inner.push((k, name, ty));
        }
    }
    fn get(&self, k: NameKind, name: &str) -> Option<&Ty> {
        self.inner
            .iter()
            .rev()
            .find(|(kk, n, _)| *kk == k && n == name)
            .map(|(_, _, t)| t)
            .or_else(|| self.top[k as usize].get(name))
    }
}

struct Parser<'a> {
    text: &'a str,
    /// Its first error is the error of the whole text, wherever the parser is.
    lx: Lexer<'a>,
    /// The current token: `toks[i]`.
    cur: T,
    /// Tokens lexed a batch at a time, `toks[..n]`: the current one, the ones looked at
    /// beyond it, more.
    toks: Vec<T>,
    i: usize,
    n: usize,
    /// Offset of the last token before the end of the text.
    last_at: u32,
    file: &'a Path,
    scopes: Scopes,
    depth: u32,
    in_variant: bool,
    /// Members of the structures being parsed, innermost last (one vector for all of them,
    /// so that each structure gets its own at the right size).
    fields: Vec<(String, Ty)>,
    /// Items of the block being parsed.
    items: Vec<(Cow<'a, str>, BlockItem<'a>, u64)>,
    /// Multi-word type names being looked up.
    name_buf: String,
    /// Integer types read, with their text (`integer { … }`), most recently used first.
    int_cache: Vec<(&'a str, IntTy)>,
}

/// How many integer types [`Parser::int_cache`] keeps, and how long their texts may be (so
/// that looking one up stays cheap).
const INT_CACHE_LEN: usize = 16;
const INT_CACHE_TEXT: usize = 256;
/// How many tokens the lexer reads at a time.
const BATCH: usize = 32;

type PResult<T> = Result<T, TraceError>;

/// What the parser collects; [`build`] turns it into a [`TraceClass`].
#[derive(Default)]
struct Collected {
    bo: Option<ByteOrder>,
    packet_header: Option<Ty>,
    streams: Vec<(u64, Option<Ty>, Option<Ty>, Option<Ty>, u64)>,
    /// Event classes (and their stream class ids), in chunks of at most 256: a kernel trace
    /// has hundreds of these large values, which a single vector would copy each time it
    /// grows (and hold in one block large enough to be mapped and unmapped each time).
    events: Vec<Vec<(u64, EventClassDef)>>,
    clocks: Vec<Clock>,
    env: Vec<(String, String)>,
}

fn byte_order(v: &Val) -> Result<ByteOrder, String> {
    match v {
        Val::Path(p) if p.len() == 1 => match p.first {
            "le" | "little_endian" => Ok(ByteOrder::Le),
            "be" | "big_endian" | "network" => Ok(ByteOrder::Be),
            "native" => Ok(ByteOrder::Native),
            o => Err(format!("bad byte_order {o}")),
        },
        _ => Err("bad byte_order".into()),
    }
}

/// Array lengths to an element type: `[2][3]` is two arrays of three.
#[inline]
fn wrap_dims(elem: Ty, dims: Vec<Len>) -> Ty {
    if dims.is_empty() {
        return elem;
    }
    let mut ty = elem;
    for len in dims.into_iter().rev() {
        ty = match ty {
            Ty::Int(ref i) if i.encoded && i.size == 8 && i.align % 8 == 0 => Ty::Str(len, false),
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
    ty
}

impl<'a> Parser<'a> {
    fn new(mut lx: Lexer<'a>, file: &'a Path) -> Self {
        let cur = lx.scan();
        Parser {
            text: lx.text,
            lx,
            cur,
            toks: vec![cur; BATCH + 1],
            i: 0,
            n: 1,
            last_at: 0,
            file,
            scopes: Scopes::default(),
            depth: 0,
            in_variant: false,
            fields: Vec::new(),
            items: Vec::new(),
            name_buf: String::new(),
            int_cache: Vec::new(),
        }
    }

    /// The token `k` places after the current one.
    fn peek_at(&mut self, k: usize) -> T {
        if self.i + k >= self.n {
            self.refill(k);
        }
        self.toks[self.i + k]
    }
    /// Lexes tokens until there are `k` beyond the current one (`Eof` repeats at the end).
    #[inline(never)]
    fn refill(&mut self, k: usize) {
        if self.i < self.n {
            self.toks.copy_within(self.i..self.n, 0);
        }
        self.n -= self.i;
        self.i = 0;
        while self.n <= k {
            if self.toks.len() < self.n + BATCH {
                self.toks.resize(self.n + BATCH, self.cur);
            }
            let (count, last) = self.lx.batch(&mut self.toks[self.n..self.n + BATCH]);
            self.n += count;
            if let Some(at) = last {
                self.last_at = at;
            }
        }
    }
    fn peek_is_p(&mut self, k: usize, p: u8) -> bool {
        let t = self.peek_at(k);
        t.k == K::P && t.v == p as u32
    }
    /// Moves to the token after the one that ends at `end` (a token boundary).
    fn skip_to(&mut self, end: usize) {
        let last = (end - 1) as u32;
        if let Some(j) = self.toks[self.i..self.n].iter().position(|t| t.at == last) {
            // Already lexed.
            self.i += j;
            self.bump();
        } else {
            self.n = 0;
            self.i = 0;
            self.lx.pos = end;
            self.last_at = last;
            self.refill(0);
            self.cur = self.toks[0];
        }
    }
    /// Moves to the next token (at the end, to another `Eof`).
    #[inline]
    fn bump(&mut self) {
        self.i += 1;
        if self.i >= self.n {
            self.refill(0);
        }
        self.cur = self.toks[self.i];
    }
    #[inline]
    fn slice(&self, t: T) -> &'a str {
        &self.text[t.at as usize..t.end as usize]
    }
    fn off(&self) -> u64 {
        self.cur.at as u64
    }
    fn err<X>(&self, msg: impl Into<String>) -> PResult<X> {
        self.err_at(self.off(), msg)
    }
    fn err_at<X>(&self, off: u64, msg: impl Into<String>) -> PResult<X> {
        Err(self.error(off, msg.into()))
    }
    #[cold]
    #[inline(never)]
    fn error(&self, off: u64, msg: String) -> TraceError {
        TraceError::new(self.file, off, format!("TSDL: {msg}"))
    }
    /// An error about the current token, which was not consumed; at the end of the text it is
    /// placed at the last token (where the text stops making sense).
    fn err_tok<X>(&self, msg: impl Into<String>) -> PResult<X> {
        let off = if self.cur.k == K::Eof {
            self.last_at
        } else {
            self.cur.at
        };
        self.err_at(off as u64, msg)
    }
    /// A token as the messages show it.
    fn show(&self, t: T) -> String {
        match t.k {
            K::Ident => format!("Ident({:?})", self.slice(t)),
            K::Int | K::BigInt => format!("Int({})", self.lx.int(t)),
            K::Str => format!("Str({:?})", unquote(self.slice(t))),
            K::P => format!("P({:?})", punct_str(t.v as u8)),
            K::Eof => "Eof".into(),
        }
    }
    #[inline]
    fn is_p(&self, p: u8) -> bool {
        self.cur.k == K::P && self.cur.v == p as u32
    }
    fn is_ident(&self, s: &str) -> bool {
        self.cur.k == K::Ident && self.slice(self.cur) == s
    }
    /// The current token's text if it is an identifier.
    #[inline]
    fn cur_ident(&self) -> Option<&'a str> {
        (self.cur.k == K::Ident).then(|| self.slice(self.cur))
    }
    #[inline]
    fn expect_p(&mut self, p: u8) -> PResult<()> {
        if self.is_p(p) {
            self.bump();
            Ok(())
        } else {
            Err(self.expected(p))
        }
    }
    #[cold]
    #[inline(never)]
    fn expected(&self, p: u8) -> TraceError {
        let m = format!("expected `{}`, found {}", punct_str(p), self.show(self.cur));
        self.error(self.off(), m)
    }
    #[inline]
    fn ident(&mut self) -> PResult<&'a str> {
        match self.cur_ident() {
            Some(s) => {
                self.bump();
                Ok(s)
            }
            None => self.not_ident(),
        }
    }
    #[cold]
    #[inline(never)]
    fn not_ident<X>(&self) -> PResult<X> {
        self.err_tok(format!("expected a name, found {}", self.show(self.cur)))
    }
    /// An optional name after `struct`, `variant` or `enum`.
    fn opt_ident(&mut self) -> Option<&'a str> {
        let s = self.cur_ident();
        if s.is_some() {
            self.bump();
        }
        s
    }
    /// `a.b.c` after its first name.
    fn path_rest(&mut self) -> PResult<Vec<&'a str>> {
        let mut rest = Vec::new();
        while self.is_p(b'.') {
            self.bump();
            rest.push(self.ident()?);
        }
        Ok(rest)
    }

    fn parse_top(&mut self, c: &mut Collected) -> PResult<()> {
        loop {
            match self.cur.k {
                K::Eof => return Ok(()),
                K::P if self.is_p(b';') => self.bump(),
                K::Ident => {
                    let s = self.slice(self.cur);
                    match s {
                        "typealias" => self.parse_typealias()?,
                        "typedef" => self.parse_typedef()?,
                        "trace" | "stream" | "event" | "clock" | "env" | "callsite"
                            if self.peek_is_p(1, b'{') =>
                        {
                            let at = self.off();
                            self.bump();
                            self.bump();
                            let mut items = std::mem::take(&mut self.items);
                            items.clear();
                            let r = self
                                .parse_block(&mut items)
                                .and_then(|()| self.apply_block(s, &mut items, c, at));
                            items.clear();
                            self.items = items;
                            r?;
                            if self.is_p(b';') {
                                self.bump();
                            }
                        }
                        _ => self.parse_top_decl()?,
                    }
                }
                _ => self.parse_top_decl()?,
            }
        }
    }

    /// A declaration of a named struct/enum/variant at top level.
    fn parse_top_decl(&mut self) -> PResult<()> {
        self.parse_type_spec()?;
        if !self.is_p(b';') {
            return self.err("expected `;` after a type declaration");
        }
        self.bump();
        Ok(())
    }

    fn parse_typealias(&mut self) -> PResult<()> {
        self.bump();
        let ty = self.parse_type_spec()?;
        while self.is_p(b'*') {
            self.bump();
        }
        self.expect_p(ASSIGN)?;
        let mut name = String::new();
        while let Some(s) = self.cur_ident() {
            self.bump();
            if !name.is_empty() {
                name.push(' ');
            }
            name.push_str(s);
        }
        if name.is_empty() {
            return self.err("typealias without a name");
        }
        let dims = self.parse_dims()?;
        let ty = wrap_dims(ty, dims);
        self.expect_p(b';')?;
        self.scopes.insert(NameKind::Alias, name, ty);
        Ok(())
    }

    fn parse_typedef(&mut self) -> PResult<()> {
        self.bump();
        let ty = self.parse_type_spec()?;
        loop {
            let name = self.ident()?;
            let dims = self.parse_dims()?;
            let t = wrap_dims(ty.clone(), dims);
            self.scopes.insert(NameKind::Alias, name.to_string(), t);
            if self.is_p(b',') {
                self.bump();
                continue;
            }
            break;
        }
        self.expect_p(b';')
    }

    /// `[N]` / `[path]` suffixes of a declarator.
    fn parse_dims(&mut self) -> PResult<Vec<Len>> {
        let mut dims = Vec::new();
        while self.is_p(b'[') {
            self.bump();
            let t = self.cur;
            let len = match t.k {
                K::Int | K::BigInt if (0..=u32::MAX as i128 * 64).contains(&self.lx.int(t)) => {
                    self.bump();
                    Len::Static(self.lx.int(t) as u64)
                }
                K::Ident => {
                    self.bump();
                    let first = self.slice(t);
                    let rest = self.path_rest()?;
                    Len::Dyn(Loc::Path(path_of(Parts { first, rest }.into_vec())))
                }
                _ => return self.err_tok("bad array length"),
            };
            self.expect_p(b']')?;
            dims.push(len);
        }
        Ok(dims)
    }

    /// The `key = value;` attributes of an `integer`, `floating_point` or `string`, after the
    /// `{`, up to and with the `}`. `apply` gets each (a dotted key as `None`); its first
    /// complaint is the error, once the whole block has been read, at the offset after it.
    fn parse_attrs(
        &mut self,
        apply: &mut dyn FnMut(Option<&'a str>, &Val<'a>) -> Result<(), String>,
    ) -> PResult<u32> {
        let mut failed: Option<String> = None;
        while !self.is_p(b'}') {
            if self.cur.k == K::Eof {
                return self.err("unterminated attribute block");
            }
            let mut key = Some(self.ident()?);
            while self.is_p(b'.') {
                self.bump();
                self.ident()?;
                key = None;
            }
            self.expect_p(b'=')?;
            let v = self.parse_val()?;
            if failed.is_none() {
                if let Err(m) = apply(key, &v) {
                    failed = Some(m);
                }
            }
            self.expect_p(b';')?;
        }
        let close = self.cur.at;
        self.bump();
        match failed {
            Some(m) => self.err(m),
            None => Ok(close),
        }
    }

    #[inline]
    fn parse_val(&mut self) -> PResult<Val<'a>> {
        // The usual values: a number, a name.
        let t = self.cur;
        if t.k == K::Int || (t.k == K::Ident && !self.peek_is_p(1, b'.')) {
            self.bump();
            return Ok(match t.k {
                K::Int => Val::Int(t.v as i128),
                _ => Val::Path(Parts {
                    first: self.slice(t),
                    rest: Vec::new(),
                }),
            });
        }
        self.parse_val_other()
    }

    fn parse_val_other(&mut self) -> PResult<Val<'a>> {
        let neg = if self.is_p(b'-') {
            self.bump();
            true
        } else {
            if self.is_p(b'+') {
                self.bump();
            }
            false
        };
        let t = self.cur;
        match t.k {
            K::Int | K::BigInt => {
                self.bump();
                let v = self.lx.int(t);
                Ok(Val::Int(if neg { -v } else { v }))
            }
            K::Str if !neg => {
                self.bump();
                Ok(Val::Str(self.slice(t), t.v == PLAIN))
            }
            K::Ident if !neg => {
                self.bump();
                let first = self.slice(t);
                let rest = self.path_rest()?;
                Ok(Val::Path(Parts { first, rest }))
            }
            _ => self.err_tok(format!("bad value {}", self.show(t))),
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
            self.bump();
        }
        let Some(kw) = self.cur_ident() else {
            return self.err(format!("expected a type, found {}", self.show(self.cur)));
        };
        match kw {
            "integer" => {
                // Kernel traces declare thousands of integers with a handful of texts: one
                // read before is taken again. The same text gives the same tokens, and an
                // integer's attributes depend on nothing else.
                let start = self.cur.at as usize;
                let rest = &self.text.as_bytes()[start..];
                let cache = &mut self.int_cache;
                if let Some(k) = cache
                    .iter()
                    .position(|(s, _)| rest.starts_with(s.as_bytes()))
                {
                    cache[..=k].rotate_right(1);
                    let (s, it) = &cache[0];
                    let (end, it) = (start + s.len(), it.clone());
                    self.skip_to(end);
                    return Ok(Ty::Int(it));
                }
                self.bump();
                self.expect_p(b'{')?;
                let (it, close) = self.parse_int()?;
                let end = close as usize + 1;
                if end - start <= INT_CACHE_TEXT {
                    self.int_cache
                        .insert(0, (&self.text[start..end], it.clone()));
                    self.int_cache.truncate(INT_CACHE_LEN);
                }
                Ok(Ty::Int(it))
            }
            "floating_point" => {
                self.bump();
                self.expect_p(b'{')?;
                let (mut exp, mut mant, mut align, mut bo) = (8u32, 24u32, 0u32, ByteOrder::Native);
                self.parse_attrs(&mut |k, v| {
                    match (k, v) {
                        (Some("exp_dig"), Val::Int(n)) => exp = (*n).clamp(0, 64) as u32,
                        (Some("mant_dig"), Val::Int(n)) => mant = (*n).clamp(0, 64) as u32,
                        (Some("align"), Val::Int(n)) => align = (*n).clamp(0, 1 << 20) as u32,
                        (Some("byte_order"), v) => bo = byte_order(v)?,
                        _ => {}
                    }
                    Ok(())
                })?;
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
                self.bump();
                if self.is_p(b'{') {
                    self.bump();
                    self.parse_attrs(&mut |_, _| Ok(()))?;
                }
                Ok(Ty::Str(Len::Static(0), true))
            }
            "struct" => {
                self.bump();
                let name = self.opt_ident();
                if self.is_p(b'{') {
                    self.bump();
                    let saved = std::mem::replace(&mut self.in_variant, false);
                    let fields = self.parse_struct_body();
                    self.in_variant = saved;
                    let fields = fields?;
                    let mut min_align = 1;
                    if self.is_ident("align") && self.peek_is_p(1, b'(') {
                        self.bump();
                        self.bump();
                        let t = self.cur;
                        self.bump();
                        let n = self.lx.int(t);
                        match t.k {
                            K::Int | K::BigInt if n > 0 && n < 1 << 20 && (n & (n - 1)) == 0 => {
                                min_align = n as u32
                            }
                            _ => return self.err("bad align()"),
                        }
                        self.expect_p(b')')?;
                    }
                    let ty = Ty::Struct(Box::new(StructTy { min_align, fields }));
                    if let Some(n) = name {
                        self.scopes
                            .insert(NameKind::Struct, n.to_string(), ty.clone());
                    }
                    Ok(ty)
                } else if let Some(n) = name {
                    match self.scopes.get(NameKind::Struct, n) {
                        Some(t) => Ok(t.clone()),
                        None => self.err(format!("unknown struct {n}")),
                    }
                } else {
                    self.err("struct without name or body")
                }
            }
            "variant" => {
                self.bump();
                let name = self.opt_ident();
                let tag = if self.is_p(b'<') {
                    self.bump();
                    let first = self.ident()?;
                    let rest = self.path_rest()?;
                    self.expect_p(b'>')?;
                    Some(path_of(Parts { first, rest }.into_vec()))
                } else {
                    None
                };
                let mut ty = if self.is_p(b'{') {
                    self.bump();
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
                    if let Some(n) = name {
                        self.scopes
                            .insert(NameKind::Variant, n.to_string(), t.clone());
                    }
                    t
                } else if let Some(n) = name {
                    match self.scopes.get(NameKind::Variant, n) {
                        Some(t) => t.clone(),
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
                self.bump();
                let name = self.opt_ident();
                let container = if self.is_p(b':') {
                    self.bump();
                    Some(self.parse_type_spec()?)
                } else {
                    None
                };
                if self.is_p(b'{') {
                    self.bump();
                    let container = match container {
                        Some(t) => t,
                        None => match self.scopes.get(NameKind::Alias, "int") {
                            Some(t) => t.clone(),
                            None => return self.err("enum without container type and no `int`"),
                        },
                    };
                    let Ty::Int(mut it) = container else {
                        return self.err("enum container is not an integer");
                    };
                    it.mappings = Some(Rc::new(self.parse_enumerators()?));
                    let ty = Ty::Int(it);
                    if let Some(n) = name {
                        self.scopes
                            .insert(NameKind::Enum, n.to_string(), ty.clone());
                    }
                    Ok(ty)
                } else if let Some(n) = name {
                    match self.scopes.get(NameKind::Enum, n) {
                        Some(t) => Ok(t.clone()),
                        None => self.err(format!("unknown enum {n}")),
                    }
                } else {
                    self.err("enum without name or body")
                }
            }
            _ => {
                // Named type: the longest run of identifiers that names an alias (no alias
                // has more words than `max_words`).
                let mut k = 1;
                while k < self.scopes.max_words && self.peek_at(k).k == K::Ident {
                    k += 1;
                }
                for n in (1..=k).rev() {
                    let found = if n == 1 {
                        self.scopes.get(NameKind::Alias, kw)
                    } else {
                        self.name_buf.clear();
                        self.name_buf.push_str(kw);
                        for t in &self.toks[self.i + 1..self.i + n] {
                            self.name_buf.push(' ');
                            self.name_buf
                                .push_str(&self.text[t.at as usize..t.end as usize]);
                        }
                        self.scopes.get(NameKind::Alias, &self.name_buf)
                    };
                    if let Some(t) = found {
                        let t = t.clone();
                        for _ in 0..n {
                            self.bump();
                        }
                        return Ok(t);
                    }
                }
                self.err(format!("unknown type {kw}"))
            }
        }
    }

    /// The attributes of an `integer`, after its `{`; the type, and the offset of its `}`.
    fn parse_int(&mut self) -> PResult<(IntTy, u32)> {
        let mut it = IntTy::new(0, false);
        let mut align = None;
        let mut has_size = false;
        let close = self.parse_attrs(&mut |k, v| {
            let Some(k) = k else { return Ok(()) };
            match (k, v) {
                ("size", Val::Int(n)) => {
                    if *n < 1 || *n > 64 {
                        return Err(format!("unsupported integer size {n}"));
                    }
                    it.size = *n as u32;
                    has_size = true;
                }
                ("align", Val::Int(n)) => {
                    if *n < 1 || *n > 1 << 20 || (*n & (*n - 1)) != 0 {
                        return Err(format!("bad alignment {n}"));
                    }
                    align = Some(*n as u32)
                }
                ("signed", Val::Int(n)) => it.signed = *n != 0,
                ("signed", Val::Path(p)) => it.signed = p.first == "true" || p.first == "TRUE",
                ("byte_order", v) => it.bo = byte_order(v)?,
                ("base", Val::Int(n)) => it.base = *n as u32,
                ("base", Val::Path(p)) => {
                    it.base = match p.first {
                        "decimal" | "dec" | "d" | "i" | "u" => 10,
                        "hexadecimal" | "hex" | "x" | "X" | "p" => 16,
                        "octal" | "oct" | "o" => 8,
                        "binary" | "b" => 2,
                        _ => 10,
                    }
                }
                ("encoding", Val::Path(p)) => it.encoded = p.first != "none",
                ("map", Val::Path(p)) if p.len() >= 2 && p.first == "clock" => {
                    it.clock = Some(p.get(1).to_string());
                }
                _ => {}
            }
            Ok(())
        })?;
        if !has_size {
            return self.err("integer without size");
        }
        it.align = align.unwrap_or(if it.size % 8 == 0 { 8 } else { 1 });
        Ok((it, close))
    }

    /// The labels of an enumeration, after its `{`, up to and with the `}`.
    fn parse_enumerators(&mut self) -> PResult<Vec<Mapping>> {
        let mut maps: Vec<Mapping> = Vec::new();
        let mut next_v: i128 = 0;
        while !self.is_p(b'}') {
            let t = self.cur;
            let label = match t.k {
                K::Ident => self.slice(t).to_string(),
                K::Str => string_value(self.slice(t), t.v == PLAIN),
                _ => return self.err_tok(format!("bad enumerator {}", self.show(t))),
            };
            self.bump();
            let (lo, hi) = if self.is_p(b'=') {
                self.bump();
                let lo = self.enum_int()?;
                let hi = if self.is_p(ELLIPSIS) {
                    self.bump();
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
            if self.is_p(b',') {
                self.bump();
            } else if !self.is_p(b'}') {
                return self.err("expected `,` or `}` in enumeration");
            }
        }
        self.bump();
        Ok(maps)
    }

    fn enum_int(&mut self) -> PResult<i128> {
        match self.parse_val()? {
            Val::Int(v) => Ok(v),
            _ => self.err("enumerator value is not an integer"),
        }
    }

    fn parse_struct_body(&mut self) -> PResult<Vec<(String, Ty)>> {
        self.scopes.push();
        let start = self.fields.len();
        let r = self.parse_struct_body_inner(start);
        self.scopes.pop();
        let fields = self.fields.drain(start..);
        r.map(|()| fields.collect())
    }

    /// Members (or variant options) up to and with the `}`, onto `self.fields` from `start`.
    fn parse_struct_body_inner(&mut self, start: usize) -> PResult<()> {
        loop {
            match self.cur.k {
                K::P if self.is_p(b'}') => {
                    self.bump();
                    return Ok(());
                }
                K::P if self.is_p(b';') => self.bump(),
                K::Eof => return self.err("unterminated structure"),
                K::Ident if self.is_ident("typealias") => self.parse_typealias()?,
                K::Ident if self.is_ident("typedef") => self.parse_typedef()?,
                _ => {
                    let ty = self.parse_type_spec()?;
                    if self.is_p(b';') {
                        self.bump();
                        continue;
                    }
                    loop {
                        let name = self.ident()?;
                        let dims = self.parse_dims()?;
                        // TSDL: a leading underscore escapes a name; it is not part of it
                        // (variant options keep theirs: they are matched to enum labels).
                        let name = match (self.in_variant, name.strip_prefix('_')) {
                            (false, Some(n)) if !n.is_empty() => n,
                            _ => name,
                        };
                        if self.fields[start..].iter().any(|(n, _)| n == name) {
                            return self.err(format!("duplicate field {name}"));
                        }
                        if self.is_p(b',') {
                            self.fields
                                .push((name.to_string(), wrap_dims(ty.clone(), dims)));
                            self.bump();
                            continue;
                        }
                        self.fields.push((name.to_string(), wrap_dims(ty, dims)));
                        break;
                    }
                    self.expect_p(b';')?;
                }
            }
        }
    }

    /// The items of a top-level block, after its `{`, up to and with the `}`.
    fn parse_block(&mut self, items: &mut Vec<(Cow<'a, str>, BlockItem<'a>, u64)>) -> PResult<()> {
        self.scopes.push();
        let r = self.parse_block_inner(items);
        self.scopes.pop();
        r
    }

    fn parse_block_inner(
        &mut self,
        out: &mut Vec<(Cow<'a, str>, BlockItem<'a>, u64)>,
    ) -> PResult<()> {
        loop {
            match self.cur.k {
                K::P if self.is_p(b'}') => {
                    self.bump();
                    return Ok(());
                }
                K::P if self.is_p(b';') => self.bump(),
                K::Eof => return self.err("unterminated block"),
                K::Ident if self.is_ident("typealias") => self.parse_typealias()?,
                K::Ident if self.is_ident("typedef") => self.parse_typedef()?,
                K::Ident => {
                    let off = self.off();
                    let mut key = Cow::Borrowed(self.ident()?);
                    while self.is_p(b'.') {
                        self.bump();
                        let k = key.to_mut();
                        k.push('.');
                        k.push_str(self.ident()?);
                    }
                    if self.is_p(ASSIGN) {
                        self.bump();
                        let ty = self.parse_type_spec()?;
                        out.push((key, BlockItem::Type(ty), off));
                    } else {
                        self.expect_p(b'=')?;
                        let v = self.parse_val()?;
                        out.push((key, BlockItem::Val(v), off));
                    }
                    self.expect_p(b';')?;
                }
                _ => return self.err(format!("unexpected {} in block", self.show(self.cur))),
            }
        }
    }

    fn apply_block(
        &mut self,
        kind: &str,
        items: &mut Vec<(Cow<'a, str>, BlockItem<'a>, u64)>,
        c: &mut Collected,
        at: u64,
    ) -> PResult<()> {
        let int = |v: &BlockItem| match v {
            BlockItem::Val(Val::Int(n)) => Some(*n),
            _ => None,
        };
        let bad = |off: u64, k: &str| self.err_at(off, format!("bad value for `{k}`"));
        match kind {
            "trace" => {
                for (k, v, off) in items.drain(..) {
                    match (k.as_ref(), v) {
                        ("byte_order", BlockItem::Val(v)) => {
                            let bo = byte_order(&v).or_else(|m| self.err(m))?;
                            if bo == ByteOrder::Native {
                                return bad(off, &k);
                            }
                            c.bo = Some(bo);
                        }
                        ("packet.header", BlockItem::Type(t)) => c.packet_header = Some(t),
                        ("major", v) if int(&v) != Some(1) => {
                            return self.err_at(off, "unsupported major version");
                        }
                        ("minor", v) if int(&v) != Some(8) => {
                            return self.err_at(off, "unsupported minor version");
                        }
                        _ => {}
                    }
                }
            }
            "stream" => {
                let mut s = (0u64, None, None, None, at);
                for (k, v, off) in items.drain(..) {
                    match (k.as_ref(), v) {
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
                let (mut id, mut name, mut context, mut payload) = (0, String::new(), None, None);
                let mut sid = 0u64;
                for (k, v, off) in items.drain(..) {
                    match (k.as_ref(), v) {
                        ("name", BlockItem::Val(Val::Str(s, plain))) => {
                            name = string_value(s, plain)
                        }
                        ("name", BlockItem::Val(Val::Path(p))) => name = p.join(),
                        ("id", v) => match int(&v) {
                            Some(n) if n >= 0 && n <= u64::MAX as i128 => id = n as u64,
                            _ => return bad(off, &k),
                        },
                        ("stream_id", v) => match int(&v) {
                            Some(n) if n >= 0 && n <= u64::MAX as i128 => sid = n as u64,
                            _ => return bad(off, &k),
                        },
                        ("context", BlockItem::Type(t)) => context = Some(t),
                        ("fields", BlockItem::Type(t)) => payload = Some(t),
                        _ => {}
                    }
                }
                let e = EventClassDef {
                    meta_offset: at,
                    id,
                    name,
                    context: context.unwrap_or_else(Ty::empty_struct),
                    payload: payload.unwrap_or_else(Ty::empty_struct),
                };
                match c.events.last_mut() {
                    Some(v) if v.len() < v.capacity() => v.push((sid, e)),
                    _ => {
                        let mut v = Vec::with_capacity(64 << c.events.len().min(2));
                        v.push((sid, e));
                        c.events.push(v);
                    }
                }
            }
            "clock" => {
                let mut ck = Clock {
                    name: String::new(),
                    freq: 1_000_000_000,
                    offset_s: 0,
                    offset_cycles: 0,
                };
                for (k, v, off) in items.drain(..) {
                    match (k.as_ref(), &v) {
                        ("name", BlockItem::Val(Val::Path(p))) => ck.name = p.join(),
                        ("name", BlockItem::Val(Val::Str(s, plain))) => {
                            ck.name = string_value(s, *plain)
                        }
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
                for (k, v, _) in items.drain(..) {
                    let s = match v {
                        BlockItem::Val(Val::Int(n)) => n.to_string(),
                        BlockItem::Val(Val::Str(s, plain)) => string_value(s, plain),
                        BlockItem::Val(Val::Path(p)) => p.join(),
                        BlockItem::Type(_) => continue,
                    };
                    c.env.push((k.into_owned(), s));
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
    let mut parts = parts;
    parts.drain(..n);
    FieldPath { root, parts }
}

/// Parses TSDL text into a trace class. `file` names the metadata file in errors.
pub fn parse(text: &str, file: &Path) -> Result<TraceClass, TraceError> {
    let lex_err =
        |(off, m): (usize, String)| TraceError::new(file, off as u64, format!("TSDL: {m}"));
    let mut p = Parser::new(Lexer::new(text).map_err(lex_err)?, file);
    let mut c = Collected::default();
    let r = p.parse_top(&mut c);
    // A lexical error anywhere in the text is the error, even past a syntax error.
    if r.is_err() {
        while p.lx.err.is_none() && p.lx.scan().k != K::Eof {}
    }
    if let Some(e) = p.lx.err.take() {
        return Err(lex_err(e));
    }
    r?;
    drop(p);
    crate::resolve::build_from(
        file,
        c.bo,
        c.packet_header,
        c.streams,
        c.events.iter().map(Vec::len).sum(),
        c.events.into_iter().flatten(),
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

    /// The text is lexed as it is parsed, but a lexical error anywhere is still the error
    /// of the whole text, even after a syntax error.
    #[test]
    fn lexical_error_comes_first() {
        let text = "event { name = ; };\n#";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert_eq!(e.offset, text.find('#').unwrap() as u64, "{e}");
        assert!(e.to_string().contains("unexpected character"), "{e}");
    }

    /// A value missing at the end of the text is reported at the last token.
    #[test]
    fn missing_value_at_the_end() {
        let text = "event { name =";
        let e = parse(text, Path::new("m")).unwrap_err();
        assert_eq!(e.offset, text.find('=').unwrap() as u64, "{e}");
        assert!(e.to_string().contains("bad value Eof"), "{e}");
    }

    /// Duplicate event class ids are found whatever their size.
    #[test]
    fn duplicate_event_ids() {
        for id in [3u64, 70_000, 1 << 40] {
            let text =
                format!("event {{ name = a; id = {id}; }};\nevent {{ name = b; id = {id}; }};");
            let e = parse(&text, Path::new("m")).unwrap_err();
            assert_eq!(e.offset, text.rfind("event").unwrap() as u64, "{e}");
            assert!(
                e.to_string()
                    .contains(&format!("duplicate event class id {id}")),
                "{e}"
            );
        }
    }

    /// An `integer { … }` whose text was read before is taken from a cache: the same metadata
    /// with every integer written differently (other blanks at the same places, so that
    /// offsets do not move and nothing comes from the cache) gives the same trace class.
    #[test]
    fn cached_integers_are_the_integers_read() {
        const BLANKS: [&str; 5] = [" ", "\t", "\n", "\r", "\x0c"];
        let meta = |vary: bool| {
            let mut k = 0;
            let mut int = |attrs: &str| {
                let (a, b) = if vary {
                    (BLANKS[k % 5], BLANKS[k / 5 % 5])
                } else {
                    (" ", " ")
                };
                k += 1;
                format!("integer {{{a}{attrs}{b}}}")
            };
            let u8a = "size = 8; align = 8; signed = false;";
            let clk = "size = 64; align = 8; signed = false; map = clock.c.value;";
            let chr = "size = 8; align = 8; encoding = UTF8; s = \"}\";";
            let tag = "size = 5; align = 1; signed = false;";
            let mut t = String::from("trace { major = 1; minor = 8; byte_order = le; };\n");
            t += "clock { name = c; };\n";
            t += &format!("typealias {} := u8;\n", int(u8a));
            t += &format!("typealias {} := clk;\n", int(clk));
            t += &format!(
                "stream {{ event.header := struct {{ enum : {} {{ a = 0 ... 30, b = 31 }} id; \
                 {} timestamp; }}; packet.context := struct {{ {} content_size; \
                 {} packet_size; }}; }};\n",
                int(tag),
                int(clk),
                int(clk),
                int(clk)
            );
            for e in 0..4 {
                t += &format!(
                    "event {{ name = \"e{e}\"; id = {e}; fields := struct {{ {} len; {} s[len]; \
                     {} c[16]; u8 d; {} x; }}; }};\n",
                    int(u8a),
                    int(chr),
                    int(chr),
                    int(u8a)
                );
            }
            assert!(k <= 25, "blanks repeat");
            t
        };
        let (same, varied) = (meta(false), meta(true));
        assert_eq!(same.len(), varied.len());
        assert_ne!(same, varied);
        let a = parse(&same, Path::new("m")).unwrap();
        let b = parse(&varied, Path::new("m")).unwrap();
        assert_eq!(a.streams[0].events.len(), 4);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}

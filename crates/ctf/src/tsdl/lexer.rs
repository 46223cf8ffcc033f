//! The TSDL lexer: text to tokens, each a kind and a span of the text (names borrow the
//! text; numbers and strings are read again from their span when their value is needed).

use virtflow_trace::error::TsdlError;

/// A lexical error: the byte offset in the text, and what is wrong there.
pub type LexError = (usize, TsdlError);

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
pub fn lex(text: &str) -> Result<Vec<(Tok<'_>, usize)>, LexError> {
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
pub(super) const ELLIPSIS: u8 = b'e';
pub(super) const ASSIGN: u8 = b'A';
pub(super) const ARROW: u8 = b'R';

/// A punctuation token as errors quote it.
pub(super) fn punct_quoted(c: u8) -> &'static str {
    match c {
        ELLIPSIS => "`...`",
        ASSIGN => "`:=`",
        ARROW => "`->`",
        b'{' => "`{`",
        b'}' => "`}`",
        b'(' => "`(`",
        b')' => "`)`",
        b'[' => "`[`",
        b']' => "`]`",
        b'<' => "`<`",
        b'>' => "`>`",
        b';' => "`;`",
        b',' => "`,`",
        b'.' => "`.`",
        b'=' => "`=`",
        b':' => "`:`",
        b'+' => "`+`",
        b'-' => "`-`",
        _ => "`*`",
    }
}

pub(super) fn punct_str(c: u8) -> &'static str {
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
pub(super) enum K {
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
pub(super) struct T {
    pub(super) k: K,
    pub(super) v: u32,
    pub(super) at: u32,
    pub(super) end: u32,
}

/// `v` of a string token without escapes.
pub(super) const PLAIN: u32 = 1;

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

pub(super) struct Lexer<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
    /// The first lexical error; the lexer is at the end after it.
    pub(super) err: Option<LexError>,
}

impl<'a> Lexer<'a> {
    /// Offsets are kept in 32 bits.
    pub(super) fn new(text: &'a str) -> Result<Self, LexError> {
        if text.len() > u32::MAX as usize {
            return Err((
                0,
                TsdlError::TooLarge {
                    size: text.len() as u64,
                },
            ));
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
    pub(super) fn scan(&mut self) -> T {
        let mut t = self.eof();
        self.pos = self.token(self.text.as_bytes(), self.pos, &mut t);
        t
    }

    /// Lexes tokens into `out`, stopping after `Eof` and after `integer` (the parser may have
    /// read that type already and skip its text); returns how many, and the offset of the
    /// last one that is not `Eof`.
    pub(super) fn batch(&mut self, out: &mut [T]) -> (usize, Option<u32>) {
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

    fn scan_other_inner(&mut self, start: usize) -> Result<Option<T>, LexError> {
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
                None => return Err((i, TsdlError::UnterminatedComment)),
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
                return Err((start, TsdlError::BadCharacterLiteral));
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
            let found = text[i..].chars().next().unwrap_or(c as char);
            return Err((i, TsdlError::UnexpectedCharacter { found }));
        };
        tok(K::P, p as u32, i)
    }

    /// The value of an integer token.
    #[inline]
    pub(super) fn int(&self, t: T) -> i128 {
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
fn number(text: &str, start: usize) -> Result<(i128, usize), LexError> {
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
            .map_err(|_| (start, TsdlError::BadIntegerLiteral))?
    };
    while i < b.len() && matches!(b[i], b'u' | b'U' | b'l' | b'L') {
        i += 1;
    }
    Ok((v, i))
}

/// Reads the quoted literal starting at `start` (its quote character), giving each byte of
/// its value to `out`; returns the offset just past the closing quote.
fn quoted(text: &str, start: usize, out: &mut dyn FnMut(u8)) -> Result<usize, LexError> {
    let b = text.as_bytes();
    let quote = b[start];
    let mut i = start + 1;
    loop {
        match b.get(i) {
            None => return Err((start, TsdlError::UnterminatedString)),
            Some(&q) if q == quote => return Ok(i + 1),
            Some(b'\\') => {
                // A backslash ending the text: the string is not terminated.
                let e = *b.get(i + 1).ok_or((start, TsdlError::UnterminatedString))?;
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
                            .map_err(|_| (st, TsdlError::BadEscape))?;
                        out(v);
                    }
                    b'0'..=b'7' => {
                        let st = i - 1;
                        while i < b.len() && i < st + 3 && (b'0'..=b'7').contains(&b[i]) {
                            i += 1;
                        }
                        let v = u32::from_str_radix(&text[st..i], 8)
                            .map_err(|_| (st, TsdlError::BadEscape))?;
                        out(v as u8);
                    }
                    b'\\' | b'\'' | b'"' | b'?' => out(e),
                    _ => {
                        let found = text[i - 1..].chars().next().unwrap_or(e as char);
                        return Err((i - 2, TsdlError::UnknownEscape { found }));
                    }
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
#[inline]
pub(super) fn string_value(raw: &str, plain: bool) -> String {
    match plain {
        true => raw
            .get(1..raw.len().saturating_sub(1))
            .unwrap_or("")
            .to_string(),
        false => unquote(raw),
    }
}

/// The value of a string token (its text, quotes included, as the lexer accepted it).
pub(super) fn unquote(raw: &str) -> String {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
    if !inner.contains('\\') {
        return inner.to_string();
    }
    let mut s = Vec::with_capacity(inner.len());
    // The lexer has checked the literal; an error here cannot happen and would only cut it.
    let _ = quoted(raw, 0, &mut |v| s.push(v));
    String::from_utf8_lossy(&s).into_owned()
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
        assert_eq!(
            lex("/* unterminated").unwrap_err(),
            (0, TsdlError::UnterminatedComment)
        );
        assert_eq!(
            lex("a \"abc").unwrap_err(),
            (2, TsdlError::UnterminatedString)
        );
        assert_eq!(
            lex("a\n #").unwrap_err(),
            (3, TsdlError::UnexpectedCharacter { found: '#' })
        );
        assert_eq!(
            lex("\"a\\qb\"").unwrap_err(),
            (2, TsdlError::UnknownEscape { found: 'q' })
        );
        assert_eq!(
            lex("x = 0x;").unwrap_err(),
            (4, TsdlError::BadIntegerLiteral)
        );
        assert_eq!(
            lex("'ab'").unwrap_err(),
            (0, TsdlError::BadCharacterLiteral)
        );
    }
}

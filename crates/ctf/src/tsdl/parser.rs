//! The TSDL parser: tokens to types, read as they come — named types in lexical scopes,
//! attributes applied as they are read, integer types whose text was read before taken from
//! a cache — and top-level blocks gathered into a [`Collected`] ([`super::blocks`] applies
//! them).

use super::blocks::Collected;
use super::lexer::{punct_quoted, string_value, Lexer, ASSIGN, ELLIPSIS, K, PLAIN, T};
use super::scopes::{NameKind, Scopes};
use super::values::{byte_order, BlockItem, Parts, Val};
use crate::types::*;
use std::borrow::Cow;
use std::path::Path;
use std::rc::Rc;
use virtflow_trace::error::{CtfError, TsdlError};
use virtflow_trace::TraceError;

pub(super) struct Parser<'a> {
    text: &'a str,
    /// Its first error is the error of the whole text, wherever the parser is.
    pub(super) lx: Lexer<'a>,
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

pub(super) type PResult<T> = Result<T, TraceError>;

/// A literal out of 64 bits, saturated (for errors).
pub(super) fn saturate(n: i128) -> i64 {
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// Where `off` is in `text`: 1-based line and column (in characters).
pub(super) fn line_column(text: &str, off: usize) -> (u32, u32) {
    let before = &text.as_bytes()[..off.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line as u32, column as u32)
}

/// A TSDL error at byte `off` of `text`, with its line and column.
#[cold]
#[inline(never)]
pub(super) fn tsdl_error(file: &Path, text: &str, off: usize, error: TsdlError) -> TraceError {
    let (line, column) = line_column(text, off);
    TraceError::new(
        file,
        off as u64,
        CtfError::Tsdl {
            line,
            column,
            error,
        },
    )
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
    pub(super) fn new(mut lx: Lexer<'a>, file: &'a Path) -> Self {
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
    /// An error at the current token.
    pub(super) fn err<X>(&self, e: TsdlError) -> PResult<X> {
        self.err_at(self.off(), e)
    }
    pub(super) fn err_at<X>(&self, off: u64, e: TsdlError) -> PResult<X> {
        Err(self.error(off, e))
    }
    #[cold]
    #[inline(never)]
    fn error(&self, off: u64, e: TsdlError) -> TraceError {
        tsdl_error(self.file, self.text, off as usize, e)
    }
    /// An error of the trace the text describes (not of its syntax), at byte `off`.
    #[cold]
    pub(super) fn err_trace<X>(&self, off: u64, kind: CtfError) -> PResult<X> {
        Err(TraceError::new(self.file, off, kind))
    }
    /// An error about the current token, which was not consumed; at the end of the text it is
    /// placed at the last token (where the text stops making sense).
    fn err_tok<X>(&self, e: TsdlError) -> PResult<X> {
        let off = if self.cur.k == K::Eof {
            self.last_at
        } else {
            self.cur.at
        };
        self.err_at(off as u64, e)
    }
    /// `expected` was wanted where the current token is.
    #[cold]
    #[inline(never)]
    fn syntax<X>(&self, expected: &'static str) -> PResult<X> {
        self.err(TsdlError::Syntax {
            expected,
            found: self.show(self.cur),
        })
    }
    /// [`Self::syntax`], placed as [`Self::err_tok`] places it.
    #[cold]
    #[inline(never)]
    fn syntax_tok<X>(&self, expected: &'static str, t: T) -> PResult<X> {
        self.err_tok(TsdlError::Syntax {
            expected,
            found: self.show(t),
        })
    }
    /// A token as the errors show it: as written, or the end of the text.
    fn show(&self, t: T) -> String {
        match t.k {
            K::Eof => "the end of the text".into(),
            K::Str => self.slice(t).to_string(),
            _ => format!("`{}`", self.slice(t)),
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
        let e = TsdlError::Syntax {
            expected: punct_quoted(p),
            found: self.show(self.cur),
        };
        self.error(self.off(), e)
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
        self.syntax_tok("a name", self.cur)
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

    pub(super) fn parse_top(&mut self, c: &mut Collected) -> PResult<()> {
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
            return self.syntax("`;` after a type declaration");
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
            return self.syntax("the name the type alias declares");
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
                _ => return self.syntax_tok("an array length", t),
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
        apply: &mut dyn FnMut(Option<&'a str>, &Val<'a>) -> Result<(), TsdlError>,
    ) -> PResult<u32> {
        let mut failed: Option<TsdlError> = None;
        while !self.is_p(b'}') {
            if self.cur.k == K::Eof {
                return self.syntax("`}` closing the attributes");
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
            _ => self.syntax_tok("a value", t),
        }
    }

    fn parse_type_spec(&mut self) -> PResult<Ty> {
        self.depth += 1;
        if self.depth > 64 {
            return self.err(TsdlError::NestedTooDeeply);
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
            return self.syntax("a type");
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
                    return self.err(TsdlError::UnsupportedFloatSize { size });
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
                            K::Int | K::BigInt => {
                                return self.err(TsdlError::BadAlignment { align: saturate(n) })
                            }
                            _ => return self.syntax_tok("an alignment in bits", t),
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
                        None => self.err(TsdlError::UnknownType {
                            kind: "struct",
                            name: n.to_string(),
                        }),
                    }
                } else {
                    self.syntax("a struct name or body")
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
                        None => {
                            return self.err(TsdlError::UnknownType {
                                kind: "variant",
                                name: n.to_string(),
                            })
                        }
                    }
                } else {
                    return self.syntax("a variant name or body");
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
                            None => return self.err(TsdlError::EnumWithoutContainer),
                        },
                    };
                    let Ty::Int(mut it) = container else {
                        return self.err(TsdlError::EnumContainerNotInteger);
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
                        None => self.err(TsdlError::UnknownType {
                            kind: "enum",
                            name: n.to_string(),
                        }),
                    }
                } else {
                    self.syntax("an enum name or body")
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
                self.err(TsdlError::UnknownType {
                    kind: "type",
                    name: kw.to_string(),
                })
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
                        return Err(TsdlError::UnsupportedIntegerSize { size: saturate(*n) });
                    }
                    it.size = *n as u32;
                    has_size = true;
                }
                ("align", Val::Int(n)) => {
                    if *n < 1 || *n > 1 << 20 || (*n & (*n - 1)) != 0 {
                        return Err(TsdlError::BadAlignment {
                            align: saturate(*n),
                        });
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
            return self.err(TsdlError::IntegerWithoutSize);
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
                _ => return self.syntax_tok("an enumerator", t),
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
                return self.syntax("`,` or `}` in the enumeration");
            }
        }
        self.bump();
        Ok(maps)
    }

    fn enum_int(&mut self) -> PResult<i128> {
        let at = self.off();
        match self.parse_val()? {
            Val::Int(v) => Ok(v),
            v => self.err_at(
                at,
                TsdlError::Syntax {
                    expected: "an integer enumerator value",
                    found: v.text(),
                },
            ),
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
                K::Eof => return self.syntax("`}` closing the structure"),
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
                            return self.err(TsdlError::DuplicateField {
                                name: name.to_string(),
                            });
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
                K::Eof => return self.syntax("`}` closing the block"),
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
                _ => return self.syntax("an attribute or a type assignment"),
            }
        }
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

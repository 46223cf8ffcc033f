//! The values of attributes and block items as the parser reads them — numbers, strings and
//! dotted names, borrowed from the text — and the byte orders they name.

use crate::types::{ByteOrder, Ty};
use virtflow_trace::error::TsdlError;

/// Dotted names of a value (`le`, `clock.monotonic.value`), borrowed from the text.
pub(super) struct Parts<'a> {
    pub(super) first: &'a str,
    pub(super) rest: Vec<&'a str>,
}

impl<'a> Parts<'a> {
    pub(super) fn len(&self) -> usize {
        1 + self.rest.len()
    }
    pub(super) fn get(&self, i: usize) -> &'a str {
        if i == 0 {
            self.first
        } else {
            self.rest[i - 1]
        }
    }
    pub(super) fn join(&self) -> String {
        let mut s = self.first.to_string();
        for p in &self.rest {
            s.push('.');
            s.push_str(p);
        }
        s
    }
    pub(super) fn into_vec(self) -> Vec<String> {
        let mut v = Vec::with_capacity(self.len());
        v.push(self.first.to_string());
        v.extend(self.rest.iter().map(|s| s.to_string()));
        v
    }
}

pub(super) enum Val<'a> {
    Int(i128),
    /// The string token's text, quotes included, and whether it has no escapes.
    Str(&'a str, bool),
    /// Identifier or dotted path.
    Path(Parts<'a>),
}

impl Val<'_> {
    /// The value as the text writes it, for errors.
    pub(super) fn text(&self) -> String {
        match self {
            Val::Int(n) => format!("`{n}`"),
            Val::Str(raw, _) => raw.to_string(),
            Val::Path(p) => format!("`{}`", p.join()),
        }
    }
}

pub(super) enum BlockItem<'a> {
    Val(Val<'a>),
    Type(Ty),
}

impl BlockItem<'_> {
    /// The item's value as the text writes it, for errors.
    pub(super) fn text(&self) -> String {
        match self {
            BlockItem::Val(v) => v.text(),
            BlockItem::Type(_) => "a type".into(),
        }
    }
}

pub(super) fn byte_order(v: &Val) -> Result<ByteOrder, TsdlError> {
    match v {
        Val::Path(p) if p.len() == 1 => match p.first {
            "le" | "little_endian" => Ok(ByteOrder::Le),
            "be" | "big_endian" | "network" => Ok(ByteOrder::Be),
            "native" => Ok(ByteOrder::Native),
            _ => Err(TsdlError::BadByteOrder { found: v.text() }),
        },
        _ => Err(TsdlError::BadByteOrder { found: v.text() }),
    }
}

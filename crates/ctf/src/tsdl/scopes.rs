//! Named types — `typealias`/`typedef` names, and `struct`, `variant` and `enum` names — in
//! the lexical scopes of TSDL text.

use crate::types::Ty;
use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum NameKind {
    Alias = 0,
    Struct = 1,
    Variant = 2,
    Enum = 3,
}

/// Named types (typealias/typedef, struct, variant and enum names) in lexical scopes. Most
/// names are declared at the top level, which has hash maps; the scopes of blocks and
/// structure bodies rarely declare any and keep theirs in one list, innermost last.
#[derive(Default)]
pub(super) struct Scopes {
    top: [HashMap<String, Ty>; 4],
    inner: Vec<(NameKind, String, Ty)>,
    /// Where each open inner scope starts in `inner`.
    marks: Vec<usize>,
    /// Most words in an alias name (`unsigned long`: 2), to bound the look-ahead.
    pub(super) max_words: usize,
}

impl Scopes {
    pub(super) fn push(&mut self) {
        self.marks.push(self.inner.len());
    }
    pub(super) fn pop(&mut self) {
        if let Some(m) = self.marks.pop() {
            self.inner.truncate(m);
        }
    }
    pub(super) fn insert(&mut self, k: NameKind, name: String, ty: Ty) {
        if k == NameKind::Alias {
            self.max_words = self.max_words.max(name.split(' ').count());
        }
        if self.marks.is_empty() {
            self.top[k as usize].insert(name, ty);
        } else {
            self.inner.push((k, name, ty));
        }
    }
    pub(super) fn get(&self, k: NameKind, name: &str) -> Option<&Ty> {
        self.inner
            .iter()
            .rev()
            .find(|(kk, n, _)| *kk == k && n == name)
            .map(|(_, _, t)| t)
            .or_else(|| self.top[k as usize].get(name))
    }
}

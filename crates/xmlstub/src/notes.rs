//! Warnings gathered while reading, one per distinct problem with how often it occurred.
//!
//! A trace with a thousand events that each carry the same unknown element gets one warning
//! saying so a thousand times, not a thousand warnings; the first occurrence gives the offset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use virtflow_trace::error::XmlError;
use virtflow_trace::TraceError;

#[derive(Debug)]
pub(crate) struct Notes {
    path: PathBuf,
    /// In order of first occurrence: the first one, and how many there were.
    items: Vec<(TraceError, u64)>,
    /// The sentence of each problem, to find its item.
    index: HashMap<String, usize>,
}

impl Notes {
    pub fn new(path: &Path) -> Notes {
        Notes {
            path: path.to_path_buf(),
            items: Vec::new(),
            index: HashMap::new(),
        }
    }

    pub fn add(&mut self, offset: u64, kind: XmlError) {
        let key = kind.to_string();
        match self.index.get(&key) {
            Some(&i) => self.items[i].1 += 1,
            None => {
                self.index.insert(key, self.items.len());
                self.items
                    .push((TraceError::new(self.path.clone(), offset, kind), 1));
            }
        }
    }

    /// The warnings as `ReadStats` holds them: each problem's first occurrence as its
    /// `TraceError` reads, with the count when it happened more than once.
    pub fn into_warnings(self) -> Vec<String> {
        self.items
            .into_iter()
            .map(|(e, n)| {
                if n == 1 {
                    e.to_string()
                } else {
                    format!("{e} ({n} times, the first here)")
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_once() {
        let mut n = Notes::new(Path::new("t.xml"));
        for off in [10, 20, 30] {
            n.add(
                off,
                XmlError::UnknownElement {
                    element: "marker".into(),
                },
            );
        }
        n.add(
            40,
            XmlError::StrayText {
                element: "event".into(),
            },
        );
        assert_eq!(
            n.into_warnings(),
            [
                "t.xml: at byte 10: <marker> is no stub trace element; skipped \
                 (3 times, the first here)",
                "t.xml: at byte 40: text inside <event> ignored",
            ]
        );
    }
}

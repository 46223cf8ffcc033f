//! The attributes of one tag, each with the byte offset of its value in the file.
//!
//! quick-xml hands out attribute values as slices of the document it reads, so a value's
//! address within the document is its offset: an error about a timestamp or a number then
//! points at the value itself rather than at the start of its element.

use std::borrow::Cow;

use quick_xml::events::attributes::AttrError;
use quick_xml::events::BytesStart;
use quick_xml::XmlVersion;
use virtflow_trace::error::XmlError;

/// A problem and the byte offset where it is, before the file's path is added.
pub(crate) type Failure = (u64, XmlError);

/// The document being read: its text and the offset of that text in the file (3 when a
/// byte-order mark precedes it).
#[derive(Clone, Copy)]
pub(crate) struct Doc<'d> {
    pub text: &'d str,
    pub base: u64,
}

impl Doc<'_> {
    /// The file offset of `part`, a slice of this document; `fallback` when it is not one
    /// (a value quick-xml had to copy).
    pub fn offset_of(&self, part: &str, fallback: u64) -> u64 {
        let start = self.text.as_ptr() as usize;
        let at = part.as_ptr() as usize;
        if at >= start && at + part.len() <= start + self.text.len() {
            self.base + (at - start) as u64
        } else {
            fallback
        }
    }
}

/// An attribute's value, normalised as XML prescribes (entities replaced, tabs and line breaks
/// made spaces), and where its raw text starts in the file.
pub(crate) struct AttrValue<'t> {
    pub text: Cow<'t, str>,
    pub offset: u64,
}

/// The values of the attributes `names` of `tag` (which starts at file offset `tag_offset`),
/// in the order of `names`; other attributes are ignored. An attribute that is not well-formed
/// (unquoted, duplicated, an unknown entity) is an error.
pub(crate) fn read<'t, const N: usize>(
    doc: Doc<'_>,
    tag: &'t BytesStart<'_>,
    tag_offset: u64,
    names: [&str; N],
) -> Result<[Option<AttrValue<'t>>; N], Failure> {
    let mut found: [Option<AttrValue<'t>>; N] = std::array::from_fn(|_| None);
    for attr in tag.attributes() {
        // Positions in attribute errors count from the byte after the tag's `<`.
        let attr = attr.map_err(|e| {
            let pos = match &e {
                AttrError::ExpectedEq(p)
                | AttrError::ExpectedValue(p)
                | AttrError::UnquotedValue(p)
                | AttrError::ExpectedQuote(p, _)
                | AttrError::Duplicated(p, _) => *p,
            };
            (
                tag_offset + 1 + pos as u64,
                XmlError::Malformed {
                    message: e.to_string(),
                },
            )
        })?;
        let Some(slot) = names.iter().position(|n| *n == attr.key.as_ref()) else {
            continue;
        };
        let offset = doc.offset_of(&attr.value, tag_offset);
        let text = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| {
                (
                    offset,
                    XmlError::Malformed {
                        message: e.to_string(),
                    },
                )
            })?;
        found[slot] = Some(AttrValue { text, offset });
    }
    Ok(found)
}

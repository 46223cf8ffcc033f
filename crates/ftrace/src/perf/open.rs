//! Opening: what a perf.data says before its records — the events recorded, the features, the
//! tracepoint formats — read from the file header's sections (file mode) or from the records
//! that stand for them at the start of the stream (pipe mode).

use std::ops::Range;

use virtflow_trace::error::{PerfError, PerfRecordType, PerfSection};

use super::attrs::{Attr, Attrs, ATTR_SIZE_VER0};
use super::bytes::{u32_at, u64_at, Failure};
use super::features::{self, Features};
use super::header::{self, FileHeader, Header, Section};
use super::records::{self, Frame};
use super::tracing::{self, TracingData};

/// What opening found.
pub(super) struct Opened {
    /// The records: file mode's data section, pipe mode's stream after its header records.
    pub data: Range<usize>,
    pub attrs: Attrs,
    pub features: Features,
    pub tracing: TracingData,
    /// Said in a user's words.
    pub warnings: Vec<String>,
}

/// Reads everything before the records, checking each section against the file.
pub(super) fn open(bytes: &[u8]) -> Result<Opened, Failure> {
    let mut attrs = Attrs::default();
    let mut warnings = Vec::new();
    let (data, features, tracing, attrs_at) = match header::parse(bytes)? {
        Header::File(h) => {
            if h.data.size == 0 {
                return Err(Failure::new(header::DATA_AT, PerfError::UnfinishedFile));
            }
            let data = h
                .data
                .range(bytes.len(), PerfSection::Data, header::DATA_AT)?;
            read_attr_section(bytes, &h, &mut attrs, &mut warnings)?;
            let features = Features::from_table(bytes, &h)?;
            let Some(range) = features.tracing_data.clone() else {
                return Err(Failure::new(0, PerfError::NoTracingData));
            };
            let tracing = tracing::parse(&bytes[range.clone()], range.start as u64)?;
            (data, features, tracing, h.attrs.offset)
        }
        Header::Pipe => {
            let mut features = Features::default();
            let (start, tracing) = read_pipe_header_records(bytes, &mut attrs, &mut features)?;
            let Some(tracing) = tracing else {
                return Err(Failure::new(start as u64, PerfError::NoTracingData));
            };
            (
                start..bytes.len(),
                features,
                tracing,
                header::PIPE_HEADER_SIZE,
            )
        }
    };
    attrs.check().map_err(|k| Failure::new(attrs_at, k))?;
    warnings.extend(features.warnings.iter().cloned());
    Ok(Opened {
        data,
        attrs,
        features,
        tracing,
        warnings,
    })
}

/// The file-mode attribute section: `perf_file_attr` entries of `attr_size` bytes, each a
/// `perf_event_attr` and the `{offset, size}` of its sample ids.
fn read_attr_section(
    bytes: &[u8],
    h: &FileHeader,
    attrs: &mut Attrs,
    warnings: &mut Vec<String>,
) -> Result<(), Failure> {
    let attr_size = h.attr_size;
    if attr_size < (ATTR_SIZE_VER0 + 16) as u64 {
        return Err(Failure::new(16, PerfError::BadAttrSize { attr_size }));
    }
    let range = h
        .attrs
        .range(bytes.len(), PerfSection::Attrs, header::ATTRS_AT)?;
    if !h.attrs.size.is_multiple_of(attr_size) {
        return Err(Failure::new(
            header::ATTRS_AT,
            PerfError::AttrSectionNotMultiple {
                size: h.attrs.size,
                attr_size,
            },
        ));
    }
    let attr_size = attr_size as usize; // no larger than the section, which is in the file
                                        // Ids read in all, at most as many as the file has room for: attributes pointing at the
                                        // same ids again and again cannot make opening slow.
    let mut id_budget = bytes.len() / 8;
    for (i, entry) in range.clone().step_by(attr_size).enumerate() {
        let ids_at = entry + attr_size - 16;
        let attr = Attr::parse(&bytes[entry..ids_at]);
        let Some(ids) = Section::read(bytes, ids_at) else {
            break; // unreachable: the entry lies inside the section
        };
        let ids = ids.range(
            bytes.len(),
            PerfSection::AttrIds { attr: i as u32 },
            ids_at as u64,
        )?;
        let index = attrs.push(attr);
        let n = (ids.len() / 8).min(id_budget);
        if n < ids.len() / 8 {
            warnings.push(format!(
                "event {i}: its sample ids repeat ones already read; the rest are ignored"
            ));
        }
        id_budget -= n;
        for k in 0..n {
            if let Some(id) = u64_at(bytes, ids.start + 8 * k) {
                attrs.add_id(id, index);
            }
        }
    }
    Ok(())
}

/// A `HEADER_ATTR` record (`len` bytes): the attribute (`attr.size` bytes), then its ids.
pub(super) fn add_header_attr(rec: &[u8], attrs: &mut Attrs, len: usize) -> Result<u32, PerfError> {
    let size = u32_at(rec, 12).unwrap_or(0) as usize;
    let attr_len = size.max(ATTR_SIZE_VER0);
    let ids_at = 8 + attr_len;
    if ids_at > len {
        return Err(PerfError::RecordTooShort {
            record_type: PerfRecordType(records::HEADER_ATTR),
            size: len as u64,
            needed: ids_at as u64,
        });
    }
    let index = attrs.push(Attr::parse(&rec[8..ids_at]));
    for id in rec[ids_at..len].chunks_exact(8) {
        attrs.add_id(u64::from_le_bytes(id.try_into().unwrap_or([0; 8])), index);
    }
    Ok(index)
}

/// The records a pipe-mode file starts with, which stand for the file header's sections:
/// attributes, features, the tracing data. Returns where the other records start, and the
/// tracing data if it came.
fn read_pipe_header_records(
    bytes: &[u8],
    attrs: &mut Attrs,
    features: &mut Features,
) -> Result<(usize, Option<TracingData>), Failure> {
    let mut pos = header::PIPE_HEADER_SIZE as usize;
    let mut tracing = None;
    loop {
        let fail = |k| Failure::new(pos as u64, k);
        let f = match records::frame(bytes, pos).map_err(fail)? {
            Frame::Record(f) => f,
            Frame::End => break,
            Frame::Incomplete(kind) => return Err(fail(kind)),
        };
        let rec = &bytes[pos..pos + f.len];
        match f.kind {
            records::HEADER_ATTR => {
                add_header_attr(rec, attrs, f.len).map_err(fail)?;
            }
            records::HEADER_FEATURE => {
                if let Some((bit, payload)) = features::feature_record(rec) {
                    if bit == features::TRACING_DATA {
                        tracing = Some(tracing::parse(payload, pos as u64 + 16)?);
                    } else {
                        features.apply(bit, payload);
                    }
                }
            }
            records::HEADER_TRACING_DATA => {
                let blob = &bytes[pos + f.len..f.next];
                tracing = Some(tracing::parse(blob, (pos + f.len) as u64)?);
            }
            records::HEADER_EVENT_TYPE | records::HEADER_BUILD_ID => {}
            _ => break,
        }
        pos = f.next;
    }
    Ok((pos, tracing))
}

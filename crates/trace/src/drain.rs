//! Reading a whole source the two ways the benchmarks measure (`virtflow bench`, the CTF speed
//! test and its profiling example): every field of every event, or a few fields of a few
//! classes with the reader told to pass over the rest.

use crate::{ClassId, EventSource, FieldId, Step, TraceError};

/// Reads every field of every event, one pass per event ([`EventSource::for_each_value`]).
/// Returns the events read.
pub fn every_field(source: &mut dyn EventSource) -> Result<u64, TraceError> {
    let (mut events, mut sink) = (0u64, 0usize);
    loop {
        match source.advance()? {
            Step::End => break,
            Step::Lost(_) => {}
            Step::Event(h) => {
                events += 1;
                source.for_each_value(h.class, &mut |_, v| sink += std::mem::size_of_val(&v));
            }
        }
    }
    std::hint::black_box(sink);
    Ok(events)
}

/// Reads, as integers, the fields `wanted` names: per class (by its name without a `system:`
/// prefix), each field by its first name the class has (`&["tid", "pid"]`: `tid`, else `pid`).
/// The source is told which classes are read ([`EventSource::set_interest`]). Returns the
/// events the source counted, passed over or not.
pub fn some_fields(
    source: &mut dyn EventSource,
    wanted: &[(&str, &[&[&str]])],
) -> Result<u64, TraceError> {
    // Resolved once per class: the fields to read, or none for a class passed over.
    let plan: Vec<Vec<FieldId>> = source
        .classes()
        .iter()
        .map(|c| {
            let bare = c.name.rsplit(':').next().unwrap_or(&c.name);
            wanted
                .iter()
                .find(|(n, _)| *n == bare)
                .map(|(_, fields)| {
                    fields
                        .iter()
                        .filter_map(|alts| alts.iter().find_map(|a| c.field(a)))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let read: Vec<ClassId> = (0..plan.len())
        .filter(|&c| !plan[c].is_empty())
        .map(|c| ClassId(c as u32))
        .collect();
    source.set_interest(Some(&read));
    let mut acc = 0u64;
    loop {
        match source.advance()? {
            Step::End => break,
            Step::Lost(_) => {}
            Step::Event(h) => {
                for &f in &plan[h.class.0 as usize] {
                    acc = acc.wrapping_add(source.u64(f).unwrap_or(0));
                }
            }
        }
    }
    std::hint::black_box(acc);
    Ok(source.stats().events)
}

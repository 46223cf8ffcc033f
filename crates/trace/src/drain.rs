//! Reading a source outside the analysis pass, for what is not an analysis: the two ways the
//! benchmarks measure (`virtflow bench`, the CTF speed test and its profiling example) — every
//! field of every event, or a few fields of a few classes with the reader told to pass over
//! the rest —, the counts a reader keeps over a whole file without decoding an event (the
//! events perf lost while recording), and the time a recording starts at.

use crate::{ClassId, EventSource, FieldId, FieldVisitor, ReadStats, Step, Timestamp, TraceError};

/// Passes over every event, decoding none (the reader told no class is of interest), and
/// returns what the reader counted: events, lost events and their notices.
pub fn counts(source: &mut dyn EventSource) -> Result<ReadStats, TraceError> {
    source.set_interest(Some(&[]));
    while !matches!(source.advance()?, Step::End) {}
    Ok(source.stats())
}

/// The time of the source's first event (side-band records aside: perf writes those at time
/// 0), reading no further; `None` for a source without events, or damaged before its first.
pub fn first_time(source: &mut dyn EventSource) -> Option<Timestamp> {
    loop {
        match source.advance() {
            Ok(Step::Event(h)) if source.classes()[h.class.0 as usize].is_sideband() => {}
            Ok(Step::Event(h)) => return Some(h.ts),
            Ok(Step::Lost(_)) => continue,
            Ok(Step::End) | Err(_) => return None,
        }
    }
}

/// Reads every field of every event, one pass per event, each value handed over as decoded
/// ([`EventSource::visit_fields`]: integers as numbers, strings as their bytes, enumerations
/// with their labels, compounds member by member). Returns the events read.
pub fn every_field(source: &mut dyn EventSource) -> Result<u64, TraceError> {
    let mut events = 0u64;
    let mut sink = Sink(0);
    loop {
        match source.advance()? {
            Step::End => break,
            Step::Lost(_) => {}
            Step::Event(h) => {
                events += 1;
                source.visit_fields(h.class, &mut sink)?;
            }
        }
    }
    std::hint::black_box(sink.0);
    Ok(events)
}

/// Folds every value it is given into one number, so that none is optimised away.
struct Sink(u64);

impl FieldVisitor for Sink {
    fn field(&mut self, id: FieldId) {
        self.0 = self.0.wrapping_add(id.0 as u64);
    }
    fn bool(&mut self, v: bool) {
        self.0 = self.0.wrapping_add(v as u64);
    }
    fn uint(&mut self, v: u64) {
        self.0 = self.0.wrapping_add(v);
    }
    fn int(&mut self, v: i64) {
        self.0 = self.0.wrapping_add(v as u64);
    }
    fn float(&mut self, v: f64) {
        self.0 = self.0.wrapping_add(v.to_bits());
    }
    fn str(&mut self, v: &[u8]) {
        self.0 = self.0.wrapping_add(v.len() as u64);
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0 = self.0.wrapping_add(v.len() as u64);
    }
    fn none(&mut self) {}
    fn enumeration(&mut self, labels: &mut dyn Iterator<Item = &str>) {
        for l in labels {
            self.0 = self.0.wrapping_add(l.len() as u64);
        }
    }
    fn variant(&mut self, option: &str) {
        self.0 = self.0.wrapping_add(option.len() as u64);
    }
    fn begin_struct(&mut self) {}
    fn member(&mut self, name: &str) {
        self.0 = self.0.wrapping_add(name.len() as u64);
    }
    fn end_struct(&mut self) {}
    fn begin_array(&mut self, len: u64) {
        self.0 = self.0.wrapping_add(len);
    }
    fn end_array(&mut self) {}
    fn field_uint(&mut self, id: FieldId, v: u64) {
        self.0 = self.0.wrapping_add(id.0 as u64).wrapping_add(v);
    }
    fn field_int(&mut self, id: FieldId, v: i64) {
        self.0 = self.0.wrapping_add(id.0 as u64).wrapping_add(v as u64);
    }
    fn field_str(&mut self, id: FieldId, v: &[u8]) {
        self.0 = self
            .0
            .wrapping_add(id.0 as u64)
            .wrapping_add(v.len() as u64);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{VecEvent, VecSource};

    #[test]
    fn a_recording_starts_at_its_first_event_not_a_side_band_record() {
        let event = |ts, name: &str| VecEvent {
            ts,
            cpu: 0,
            name: name.into(),
            fields: vec![],
        };
        let mut source = VecSource::new(vec![
            event(0, "perf_comm"),
            event(500, "sched_switch"),
            event(600, "sched_switch"),
        ]);
        assert_eq!(first_time(&mut source), Some(500));
        assert_eq!(first_time(&mut VecSource::new(vec![])), None);
    }
}

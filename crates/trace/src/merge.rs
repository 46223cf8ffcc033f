//! Time-ordered merge of several sources into one.

use crate::{
    ClassId, EventClass, EventSource, FieldId, ReadStats, Step, Timestamp, TraceError, Value,
};

/// Merges several [`EventSource`]s by timestamp. Class ids of source `i` are shifted by the
/// number of classes of the sources before it, so every class stays distinct; field ids are
/// unchanged. Ties are broken by source order, so the merge is deterministic.
pub struct Merge {
    sources: Vec<Box<dyn EventSource>>,
    class_base: Vec<u32>,
    classes: Vec<EventClass>,
    /// The next step of each source, not yet delivered (`None`: must advance first).
    heads: Vec<Option<Step>>,
    current: Option<usize>,
    failed: bool,
}

impl Merge {
    pub fn new(sources: Vec<Box<dyn EventSource>>) -> Self {
        let mut classes = Vec::new();
        let mut class_base = Vec::with_capacity(sources.len());
        for s in &sources {
            class_base.push(classes.len() as u32);
            classes.extend(s.classes().iter().cloned());
        }
        let heads = vec![None; sources.len()];
        Merge {
            sources,
            class_base,
            classes,
            heads,
            current: None,
            failed: false,
        }
    }

    /// Which source (in the order given to [`Merge::new`]) a class belongs to.
    pub fn source_of(&self, class: ClassId) -> usize {
        self.class_base
            .partition_point(|&base| base <= class.0)
            .saturating_sub(1)
    }

    fn step_time(step: &Step) -> Timestamp {
        match step {
            Step::Event(h) => h.ts,
            Step::Lost(l) => l.begin,
            Step::End => Timestamp::MAX,
        }
    }
}

impl EventSource for Merge {
    fn classes(&self) -> &[EventClass] {
        &self.classes
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        if self.failed {
            return Ok(Step::End);
        }
        // The source delivered last must be refilled; the others keep their head.
        self.current = None;
        for i in 0..self.sources.len() {
            if self.heads[i].is_none() {
                match self.sources[i].advance() {
                    Ok(step) => self.heads[i] = Some(step),
                    Err(e) => {
                        self.failed = true;
                        return Err(e);
                    }
                }
            }
        }
        let best = (0..self.sources.len())
            .filter(|&i| !matches!(self.heads[i], Some(Step::End)))
            .min_by_key(|&i| (Self::step_time(self.heads[i].as_ref().unwrap()), i));
        let Some(i) = best else {
            return Ok(Step::End);
        };
        let step = self.heads[i].take().unwrap();
        self.current = Some(i);
        Ok(match step {
            Step::Event(mut h) => {
                h.class = ClassId(h.class.0 + self.class_base[i]);
                Step::Event(h)
            }
            other => other,
        })
    }

    fn u64(&self, field: FieldId) -> Option<u64> {
        self.sources[self.current?].u64(field)
    }
    fn i64(&self, field: FieldId) -> Option<i64> {
        self.sources[self.current?].i64(field)
    }
    fn str(&self, field: FieldId) -> Option<&str> {
        self.sources[self.current?].str(field)
    }
    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        self.sources[self.current?].value(field)
    }

    fn for_each_value(&self, class: ClassId, f: &mut dyn FnMut(FieldId, Value<'_>)) {
        if let Some(i) = self.current {
            let own = ClassId(class.0.wrapping_sub(self.class_base[i]));
            self.sources[i].for_each_value(own, f);
        }
    }

    fn visit_fields(
        &self,
        class: ClassId,
        to: &mut dyn crate::FieldVisitor,
    ) -> Result<(), TraceError> {
        match self.current {
            Some(i) => {
                let own = ClassId(class.0.wrapping_sub(self.class_base[i]));
                self.sources[i].visit_fields(own, to)
            }
            None => Ok(()),
        }
    }

    fn stats(&self) -> ReadStats {
        let mut total = ReadStats::default();
        for s in &self.sources {
            let st = s.stats();
            total.events += st.events;
            total.lost_events += st.lost_events;
            total.lost_notices += st.lost_notices;
            total.truncated_packets += st.truncated_packets;
            total.unknown_events += st.unknown_events;
            total.warnings.extend(st.warnings);
        }
        total
    }

    fn progress(&self) -> Option<(u64, u64)> {
        let mut done = 0;
        let mut total = 0;
        for s in &self.sources {
            let (d, t) = s.progress()?;
            done += d;
            total += t;
        }
        Some((done, total))
    }

    fn hostname(&self) -> Option<String> {
        self.sources.iter().find_map(|s| s.hostname())
    }

    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        for (i, s) in self.sources.iter_mut().enumerate() {
            let base = self.class_base[i];
            let n = s.classes().len() as u32;
            let own: Option<Vec<ClassId>> = classes.map(|cs| {
                cs.iter()
                    .filter(|c| c.0 >= base && c.0 - base < n)
                    .map(|c| ClassId(c.0 - base))
                    .collect()
            });
            s.set_interest(own.as_deref());
        }
    }
}

//! Time-ordered merge of several sources into one: several traces of one host, or an
//! experiment of several hosts on one synchronised clock.

use std::sync::Arc;

use crate::{
    ClassId, Clock, EventClass, EventSource, FieldId, PassedOver, ReadStats, Step, Timestamp,
    TraceError, Value,
};

/// One source of an experiment: which host it records, and how its clock maps to the
/// experiment's reference clock (`None`: it is on the reference clock).
pub struct Member {
    pub source: Box<dyn EventSource>,
    /// Index into the experiment's host names.
    pub host: usize,
    pub clock: Option<Arc<dyn Clock>>,
}

/// Merges several [`EventSource`]s by timestamp. Class ids of source `i` are shifted by the
/// number of classes of the sources before it, so every class stays distinct; field ids are
/// unchanged. Ties are broken by source order, so the merge is deterministic.
///
/// As an experiment ([`Merge::experiment`]), each source belongs to a host and may carry a
/// [`Clock`]: its timestamps (events, losses) are mapped to the reference clock before they
/// are ordered, and [`EventSource::host`] tells the host of each step.
pub struct Merge {
    sources: Vec<Box<dyn EventSource>>,
    host_of: Vec<usize>,
    clocks: Vec<Option<Arc<dyn Clock>>>,
    hosts: Vec<String>,
    class_base: Vec<u32>,
    classes: Vec<EventClass>,
    /// The next step of each source, not yet delivered (`None`: must advance first).
    heads: Vec<Option<Step>>,
    current: Option<usize>,
    failed: bool,
    /// Per source that could not seek: its steps before this time are skipped.
    skip_before: Vec<Option<Timestamp>>,
}

impl Merge {
    /// Several sources of one host, on one clock.
    pub fn new(sources: Vec<Box<dyn EventSource>>) -> Self {
        let hosts = vec![sources
            .iter()
            .find_map(|s| s.hostname())
            .unwrap_or_default()];
        let members = sources
            .into_iter()
            .map(|source| Member {
                source,
                host: 0,
                clock: None,
            })
            .collect();
        Self::experiment(members, hosts)
    }

    /// The sources of several hosts (`hosts` names them; each member gives its host's index).
    pub fn experiment(members: Vec<Member>, hosts: Vec<String>) -> Self {
        let mut sources = Vec::with_capacity(members.len());
        let mut host_of = Vec::with_capacity(members.len());
        let mut clocks = Vec::with_capacity(members.len());
        for m in members {
            sources.push(m.source);
            host_of.push(m.host);
            clocks.push(m.clock);
        }
        let mut classes = Vec::new();
        let mut class_base = Vec::with_capacity(sources.len());
        for s in &sources {
            class_base.push(classes.len() as u32);
            classes.extend(s.classes().iter().cloned());
        }
        let heads = vec![None; sources.len()];
        let skip_before = vec![None; sources.len()];
        Merge {
            sources,
            host_of,
            clocks,
            hosts,
            class_base,
            classes,
            heads,
            current: None,
            failed: false,
            skip_before,
        }
    }

    /// Which source (in the order given to [`Merge::new`]) a class belongs to.
    pub fn source_of(&self, class: ClassId) -> usize {
        self.class_base
            .partition_point(|&base| base <= class.0)
            .saturating_sub(1)
    }

    /// The step with its times on the reference clock.
    fn on_reference(clock: &Option<Arc<dyn Clock>>, step: Step) -> Step {
        let Some(c) = clock else { return step };
        match step {
            Step::Event(mut h) => {
                h.ts = c.to_reference(h.ts);
                Step::Event(h)
            }
            Step::Lost(mut l) => {
                l.begin = c.to_reference(l.begin);
                l.end = c.to_reference(l.end);
                Step::Lost(l)
            }
            Step::End => Step::End,
        }
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
            while self.heads[i].is_none() {
                match self.sources[i].advance() {
                    Ok(step) => {
                        let step = Self::on_reference(&self.clocks[i], step);
                        // As a seek would: events before `ts`, and losses that end before it.
                        let before = self.skip_before[i].is_some_and(|ts| match &step {
                            Step::Event(h) => h.ts < ts,
                            Step::Lost(l) => l.end < ts,
                            Step::End => false,
                        });
                        if !before {
                            self.heads[i] = Some(step);
                        }
                    }
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

    fn visit_field(
        &self,
        field: FieldId,
        to: &mut dyn crate::FieldVisitor,
    ) -> Result<(), TraceError> {
        match self.current {
            Some(i) => self.sources[i].visit_field(field, to),
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
        self.hosts.first().filter(|h| !h.is_empty()).cloned()
    }

    fn hosts(&self) -> Vec<String> {
        self.hosts.clone()
    }

    fn host(&self) -> usize {
        self.current.map_or(0, |i| self.host_of[i])
    }

    /// Seeks every source. A source that cannot seek goes on from where it is, its steps
    /// before `ts` skipped here; the merge reports true only when every source could seek.
    fn seek(&mut self, ts: Timestamp) -> Result<bool, TraceError> {
        self.current = None;
        let mut all = true;
        for (i, s) in self.sources.iter_mut().enumerate() {
            let own = self.clocks[i].as_ref().map_or(ts, |c| c.to_local(ts));
            let sought = s.seek(own)?;
            if sought {
                self.heads[i] = None;
                self.skip_before[i] = None;
            } else {
                all = false;
                if self.heads[i]
                    .as_ref()
                    .is_some_and(|h| Self::step_time(h) < ts)
                {
                    self.heads[i] = None;
                }
                self.skip_before[i] = Some(ts);
            }
        }
        Ok(all)
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

    fn passed_over(&self, host: usize) -> PassedOver {
        let mut all = PassedOver::default();
        for (i, s) in self.sources.iter().enumerate() {
            if self.host_of[i] != host {
                continue;
            }
            let mut own = s.passed_over(0);
            if let (Some(clock), Some(last)) = (&self.clocks[i], own.last) {
                own.last = Some(clock.to_reference(last));
            }
            all.merge(own);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Offset, VecEvent, VecSource};

    fn source(times: &[i64], name: &str) -> Box<dyn EventSource> {
        Box::new(VecSource::new(
            times
                .iter()
                .map(|&ts| VecEvent {
                    ts,
                    cpu: 0,
                    name: name.into(),
                    fields: vec![],
                })
                .collect(),
        ))
    }

    /// Two hosts, the second 1000 ns ahead of the reference: ordered on the reference clock,
    /// each step with its host, and a seek in reference time.
    #[test]
    fn an_experiment_orders_on_the_reference_clock_and_tells_hosts() {
        let make = || {
            Merge::experiment(
                vec![
                    Member {
                        source: source(&[100, 300, 500], "a"),
                        host: 0,
                        clock: None,
                    },
                    Member {
                        source: source(&[1_150, 1_250, 1_450], "b"),
                        host: 1,
                        clock: Some(Arc::new(Offset(-1_000))),
                    },
                ],
                vec!["ref".into(), "other".into()],
            )
        };
        let drain = |m: &mut Merge| {
            let mut seen = Vec::new();
            while let Step::Event(h) = m.advance().unwrap() {
                seen.push((h.ts, m.host(), m.classes()[h.class.0 as usize].name.clone()));
            }
            seen
        };
        let mut m = make();
        assert_eq!(m.hosts(), vec!["ref".to_string(), "other".to_string()]);
        let all = drain(&mut m);
        let expected: Vec<(i64, usize, String)> = [
            (100, 0, "a"),
            (150, 1, "b"),
            (250, 1, "b"),
            (300, 0, "a"),
            (450, 1, "b"),
            (500, 0, "a"),
        ]
        .iter()
        .map(|(t, h, n)| (*t, *h, n.to_string()))
        .collect();
        assert_eq!(all, expected);
        let mut m = make();
        // In-memory sources cannot seek: the merge skips for them, and says it could not seek.
        assert!(!m.seek(260).unwrap());
        assert_eq!(drain(&mut m), expected[3..].to_vec());
    }
}

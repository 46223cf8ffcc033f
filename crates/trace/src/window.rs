//! A time window over a source: only the events and loss notices whose time lies in
//! `[begin, end]`, for every command that takes `--begin`/`--end`.

use crate::{
    ClassId, EventClass, EventSource, FieldId, FieldVisitor, ReadStats, Step, Timestamp,
    TraceError, Value,
};

/// One end of a window: a timestamp on the trace's clock, or a duration after the trace's
/// first event (what a user reads off a report: "from 2.5 s to 4 s").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    At(Timestamp),
    AfterStart(i64),
}

impl std::str::FromStr for Bound {
    type Err = String;

    /// `1700000000123456789` (nanoseconds on the trace's clock), or a duration after the
    /// first event with its unit: `2.5s`, `300ms`, `40us`, `100ns`.
    fn from_str(s: &str) -> Result<Bound, String> {
        let s = s.trim();
        if let Ok(ns) = s.parse::<i64>() {
            return Ok(Bound::At(ns));
        }
        let (number, scale) = [("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9)]
            .iter()
            .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n, *scale)))
            .ok_or_else(|| {
                format!(
                    "{s:?} is neither a timestamp in ns nor a duration such as 2.5s, 300ms, 40us"
                )
            })?;
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {number:?} is not a number"))?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!("{s:?}: a duration after the start is positive"));
        }
        Ok(Bound::AfterStart((value * scale).round() as i64))
    }
}

/// Passes on only the steps of `inner` whose timestamp lies in `[begin, end]`, and ends at the
/// first one after `end` (sources are in time order, so nothing later can fall inside).
/// Bounds relative to the start are resolved at the first step that is no side-band record
/// ([`EventClass::is_sideband`]: perf writes those at time 0, long before the trace starts);
/// side-band records before it lie before any such bound.
pub struct Window<S> {
    inner: S,
    begin: Bound,
    end: Bound,
    resolved: Option<(Timestamp, Timestamp)>,
    done: bool,
}

impl<S: EventSource> Window<S> {
    /// A window over `inner`. An absolute `begin` is sought at once when the source can seek
    /// (an indexed CTF trace skips what lies before it unread); otherwise the window skips.
    pub fn new(mut inner: S, begin: Bound, end: Bound) -> Self {
        if let Bound::At(ts) = begin {
            // A failed seek is reported by the next advance, which reads from the start.
            let _ = inner.seek(ts);
        }
        // Absolute bounds need no start.
        let resolved = match (begin, end) {
            (Bound::At(b), Bound::At(e)) => Some((b, e)),
            _ => None,
        };
        Window {
            inner,
            begin,
            end,
            resolved,
            done: false,
        }
    }

    fn bounds(&mut self, first: Timestamp) -> (Timestamp, Timestamp) {
        let at = |b: Bound| match b {
            Bound::At(ts) => ts,
            Bound::AfterStart(ns) => first.saturating_add(ns),
        };
        *self
            .resolved
            .get_or_insert_with(|| (at(self.begin), at(self.end)))
    }
}

impl<S: EventSource> EventSource for Window<S> {
    fn classes(&self) -> &[EventClass] {
        self.inner.classes()
    }

    fn advance(&mut self) -> Result<Step, TraceError> {
        if self.done {
            return Ok(Step::End);
        }
        loop {
            let step = self.inner.advance()?;
            let ts = match &step {
                Step::Event(h) => h.ts,
                Step::Lost(l) => l.begin,
                Step::End => return Ok(Step::End),
            };
            let (begin, end) = match (self.resolved, &step) {
                (Some(bounds), _) => bounds,
                // Before the start a bound counts from: passed over.
                (None, Step::Event(h))
                    if self.inner.classes()[h.class.0 as usize].is_sideband() =>
                {
                    continue
                }
                (None, _) => self.bounds(ts),
            };
            if ts > end {
                self.done = true;
                return Ok(Step::End);
            }
            if ts >= begin {
                return Ok(step);
            }
        }
    }

    fn u64(&self, field: FieldId) -> Option<u64> {
        self.inner.u64(field)
    }
    fn i64(&self, field: FieldId) -> Option<i64> {
        self.inner.i64(field)
    }
    fn str(&self, field: FieldId) -> Option<&str> {
        self.inner.str(field)
    }
    fn value(&self, field: FieldId) -> Option<Value<'_>> {
        self.inner.value(field)
    }
    fn for_each_value(&self, class: ClassId, f: &mut dyn FnMut(FieldId, Value<'_>)) {
        self.inner.for_each_value(class, f)
    }
    fn visit_fields(&self, class: ClassId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        self.inner.visit_fields(class, to)
    }
    fn visit_field(&self, field: FieldId, to: &mut dyn FieldVisitor) -> Result<(), TraceError> {
        self.inner.visit_field(field, to)
    }
    fn stats(&self) -> ReadStats {
        self.inner.stats()
    }
    fn progress(&self) -> Option<(u64, u64)> {
        self.inner.progress()
    }
    fn hostname(&self) -> Option<String> {
        self.inner.hostname()
    }
    fn hosts(&self) -> Vec<String> {
        self.inner.hosts()
    }
    fn host(&self) -> usize {
        self.inner.host()
    }
    /// Ignored: how many of the events the inner source would pass over lie inside the
    /// window, and the latest of those, nobody could tell; the window announces them all.
    fn set_interest(&mut self, classes: Option<&[ClassId]>) {
        let _ = classes;
    }
    /// A seek inside the window; the window's own bounds still apply.
    fn seek(&mut self, ts: Timestamp) -> Result<bool, TraceError> {
        self.done = false;
        self.inner.seek(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{VecEvent, VecSource};

    #[test]
    fn keeps_only_the_range_and_stops_after_it() {
        let events: Vec<VecEvent> = (0..10)
            .map(|i| VecEvent {
                ts: 100 + i * 10,
                cpu: 0,
                name: "e".into(),
                fields: vec![],
            })
            .collect();
        let source = || VecSource::new(events.clone());
        let drain = |mut w: Window<VecSource>| {
            let mut seen = Vec::new();
            while let Step::Event(h) = w.advance().unwrap() {
                seen.push(h.ts);
            }
            assert_eq!(w.advance().unwrap(), Step::End);
            seen
        };
        let at = drain(Window::new(source(), Bound::At(125), Bound::At(160)));
        assert_eq!(at, vec![130, 140, 150, 160]);
        // The same window relative to the first event (100).
        let after = drain(Window::new(
            source(),
            "25ns".parse().unwrap(),
            "0.06us".parse().unwrap(),
        ));
        assert_eq!(after, at);
    }

    #[test]
    fn relative_bounds_start_at_the_first_event_not_a_side_band_record() {
        let event = |ts, name: &str| VecEvent {
            ts,
            cpu: 0,
            name: name.into(),
            fields: vec![],
        };
        let mut events = vec![event(0, "perf_comm"), event(0, "perf_fork")];
        events.extend((0..10).map(|i| event(1000 + i * 10, "e")));
        let mut w = Window::new(
            VecSource::new(events.clone()),
            "20ns".parse().unwrap(),
            "40ns".parse().unwrap(),
        );
        let mut seen = Vec::new();
        while let Step::Event(h) = w.advance().unwrap() {
            seen.push(h.ts);
        }
        assert_eq!(seen, vec![1020, 1030, 1040]);
        // Absolute bounds take side-band records by their time.
        let mut w = Window::new(VecSource::new(events), Bound::At(0), Bound::At(1000));
        let mut seen = Vec::new();
        while let Step::Event(h) = w.advance().unwrap() {
            seen.push(h.ts);
        }
        assert_eq!(seen, vec![0, 0, 1000]);
    }

    #[test]
    fn bounds_parse_timestamps_and_durations() {
        assert_eq!("17".parse::<Bound>(), Ok(Bound::At(17)));
        assert_eq!(
            "2.5s".parse::<Bound>(),
            Ok(Bound::AfterStart(2_500_000_000))
        );
        assert_eq!("300ms".parse::<Bound>(), Ok(Bound::AfterStart(300_000_000)));
        assert_eq!("40us".parse::<Bound>(), Ok(Bound::AfterStart(40_000)));
        assert!("2.5 parsecs".parse::<Bound>().is_err());
        assert!("-1s".parse::<Bound>().is_err());
    }
}

//! One worker's storage: its segments in time order and the links arriving at it.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::link::IncomingLink;
use crate::{GraphError, Segment, WorkerId};

/// A worker's line of the graph, two flat vectors sorted by time so that every question
/// about an instant or a window is a binary search:
///
/// - `segments`: non-overlapping, each of positive length, in time order; a hole between two
///   segments is time the graph knows nothing about;
/// - `links_in`: the links whose target is this worker, by target time (links of equal target
///   time in the order they were added). A link lives in its target's chain because both the
///   critical path and the queries ask "what arrived here, when", never "what left".
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Chain {
    segments: Vec<Segment>,
    links_in: Vec<IncomingLink>,
}

impl Chain {
    /// The same chain with every worker it names moved by `offset` (a graph absorbed into
    /// another, see [`crate::Graph::absorb`]).
    pub(crate) fn shifted(mut self, offset: u32) -> Chain {
        for s in &mut self.segments {
            *s = s.shifted(offset);
        }
        for l in &mut self.links_in {
            l.source_worker = WorkerId(l.source_worker.0 + offset);
        }
        self
    }

    /// Maps every time of the chain by `f`, which must never decrease (a clock onto another):
    /// the order stays; a segment that `f` shrinks to nothing is dropped.
    pub(crate) fn retime(&mut self, f: &impl Fn(i64) -> i64) {
        for s in &mut self.segments {
            *s = s.retimed(f);
        }
        self.segments.retain(|s| s.end() > s.start());
        for l in &mut self.links_in {
            l.source_time = f(l.source_time);
            l.target_time = f(l.target_time);
        }
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub(crate) fn links_in(&self) -> &[IncomingLink] {
        &self.links_in
    }

    /// Appends `segment` after the last one. A segment of length 0 is dropped: it would say
    /// nothing about any instant, and keeping every segment of positive length is what lets
    /// a backward walk always move back in time.
    pub(crate) fn push_segment(
        &mut self,
        worker: WorkerId,
        segment: Segment,
    ) -> Result<(), GraphError> {
        if segment.end() < segment.start() {
            return Err(GraphError::SegmentEndsBeforeStart {
                worker,
                start: segment.start(),
                end: segment.end(),
            });
        }
        if let Some(last) = self.segments.last() {
            if segment.start() < last.end() {
                return Err(GraphError::SegmentOverlaps {
                    worker,
                    start: segment.start(),
                    previous_end: last.end(),
                });
            }
        }
        if segment.end() > segment.start() {
            self.segments.push(segment);
        }
        Ok(())
    }

    /// Adds an arriving link at its place by target time: at the end when links come in time
    /// order (the builder's single pass), by insertion otherwise (a message matched late).
    pub(crate) fn insert_link(&mut self, link: IncomingLink) {
        match self.links_in.last() {
            Some(last) if last.target_time > link.target_time => {
                let at = self
                    .links_in
                    .partition_point(|l| l.target_time <= link.target_time);
                self.links_in.insert(at, link);
            }
            _ => self.links_in.push(link),
        }
    }

    /// The segment covering `time` (`start <= time < end`).
    pub(crate) fn index_covering(&self, time: i64) -> Option<usize> {
        let after = self.segments.partition_point(|s| s.start() <= time);
        let index = after.checked_sub(1)?;
        (self.segments[index].end() > time).then_some(index)
    }

    /// The segment the worker was in just before `time` (`start < time <= end`): the one a
    /// walk going back in time from `time` continues on. Searched from where the walk's last
    /// search ended (`hint`, updated): a walk moving along the chain pays for the distance it
    /// moved, not for the chain's length.
    pub(crate) fn index_reaching_near(&self, time: i64, hint: &mut usize) -> Option<usize> {
        let after = partition_point_near(&self.segments, *hint, |s| s.start() < time);
        *hint = after;
        let index = after.checked_sub(1)?;
        (self.segments[index].end() >= time).then_some(index)
    }

    /// [`Chain::links_arriving_at`] searched from `hint` (updated), as
    /// [`Chain::index_reaching_near`] is.
    pub(crate) fn links_arriving_at_near(&self, time: i64, hint: &mut usize) -> &[IncomingLink] {
        let first = partition_point_near(&self.links_in, *hint, |l| l.target_time < time);
        *hint = first;
        let count = self.links_in[first..]
            .iter()
            .take_while(|l| l.target_time == time)
            .count();
        &self.links_in[first..first + count]
    }

    /// The segments overlapping `[from, to)` (none if the window is empty).
    pub(crate) fn overlapping(&self, from: i64, to: i64) -> Range<usize> {
        let first = self.segments.partition_point(|s| s.end() <= from);
        if to <= from {
            return first..first;
        }
        let last = self.segments.partition_point(|s| s.start() < to);
        first..last.max(first)
    }

    /// The links arriving in `[from, to)`.
    pub(crate) fn links_arriving(&self, from: i64, to: i64) -> &[IncomingLink] {
        let first = self.links_in.partition_point(|l| l.target_time < from);
        let last = self.links_in.partition_point(|l| l.target_time < to);
        &self.links_in[first..last.max(first)]
    }

    /// The links arriving exactly at `time`.
    pub(crate) fn links_arriving_at(&self, time: i64) -> &[IncomingLink] {
        self.links_arriving(time, time.saturating_add(1))
    }

    /// Heap bytes held, counted from the vectors' capacities.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.segments.capacity() * std::mem::size_of::<Segment>()
            + self.links_in.capacity() * std::mem::size_of::<IncomingLink>()
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.segments.shrink_to_fit();
        self.links_in.shrink_to_fit();
    }
}

/// The first index of `items` whose item fails `passes` (all passing items come first, as for
/// `slice::partition_point`), searched from `hint` outwards by doubling steps, then by
/// bisection within the bracket found: O(log distance from the hint).
fn partition_point_near<T>(items: &[T], hint: usize, passes: impl Fn(&T) -> bool) -> usize {
    let hint = hint.min(items.len());
    // The answer is in `[low, high]` throughout.
    let (low, high) = if hint < items.len() && passes(&items[hint]) {
        let mut low = hint + 1;
        let mut step = 1;
        loop {
            let probe = low + step - 1;
            if probe >= items.len() {
                break (low, items.len());
            }
            if !passes(&items[probe]) {
                break (low, probe);
            }
            low = probe + 1;
            step *= 2;
        }
    } else {
        let mut high = hint;
        let mut step = 1;
        loop {
            if high == 0 {
                break (0, 0);
            }
            let probe = high.saturating_sub(step);
            if passes(&items[probe]) {
                break (probe + 1, high);
            }
            high = probe;
            step *= 2;
        }
    };
    low + items[low..high].partition_point(passes)
}

#[cfg(test)]
mod tests {
    use super::partition_point_near;

    #[test]
    fn searching_near_a_hint_finds_what_a_bisection_finds() {
        let items: Vec<i64> = vec![1, 3, 3, 3, 5, 8, 8, 13, 21, 21, 34];
        for value in -1..40 {
            let expected = items.partition_point(|&x| x < value);
            for hint in 0..=items.len() + 2 {
                let found = partition_point_near(&items, hint, |&x| x < value);
                assert_eq!(found, expected, "value {value} from hint {hint}");
            }
        }
        assert_eq!(partition_point_near(&[] as &[i64], 3, |&x| x < 1), 0);
    }
}

//! One reader case through every reading path, as ripgrep's `SearcherTester` runs one search
//! through every code path: a trace is opened once per path and the paths are advanced in
//! lockstep, so memory stays flat whatever the trace's size, and the first difference is
//! reported with the event where it happens.
//!
//! The paths:
//!
//! - **accessors**: `u64`, `i64` and `str` of every field;
//! - **values**: `value` of every field;
//! - **whole events**: `for_each_value`;
//! - **visits**: `visit_fields` into a [`ValueBuilder`], and each field's `visit_field`;
//! - **interest**: a source told to read only some classes (`set_interest`) announces exactly
//!   the events of those classes, with the same fields, and every loss notice; of the others,
//!   at least the first of each stream on each CPU, and it tells what it passed over;
//! - **seek**: a source sought to a time in the middle (`seek`, when the reader can) gives
//!   exactly the steps at and after it.
//!
//! Values, whole events and visits must be equal; each accessor must agree with the value
//! (`u64`/`i64` of an integer, enumeration or boolean; `str` of a string).

use std::collections::HashSet;

use virtflow_trace::{
    ClassId, EventSource, FieldId, LostEvents, PassedOver, Step, TraceError, Value, ValueBuilder,
};

/// Opens a fresh source on the same trace, each time it is called.
pub type Opener<'a> = dyn Fn() -> Result<Box<dyn EventSource>, TraceError> + 'a;

/// What a case read, for the test to check further.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    pub fields: u64,
    pub losses: u64,
    /// Events announced under the interest (every other class).
    pub interest_events: u64,
    /// Steps compared after the seek; `None` when the reader cannot seek.
    pub after_seek: Option<u64>,
}

/// Runs the case `name` through every path; panics at the first difference, naming the
/// trace, the path and the event.
pub fn check_every_path(name: &str, open: &Opener<'_>) -> Tally {
    let open = || open().unwrap_or_else(|e| panic!("{name}: cannot open: {e}"));
    let mut tally = Tally::default();
    let (mut by_value, mut whole, mut visits) = (open(), open(), open());
    let mut steps_total = 0u64;
    loop {
        let step = next(name, "values", &mut *by_value);
        assert_eq!(
            next(name, "whole events", &mut *whole),
            step,
            "{name}: whole-event path, step {steps_total}"
        );
        assert_eq!(
            next(name, "visits", &mut *visits),
            step,
            "{name}: visit path, step {steps_total}"
        );
        steps_total += 1;
        let header = match step {
            Step::End => break,
            Step::Lost(_) => {
                tally.losses += 1;
                continue;
            }
            Step::Event(h) => h,
        };
        tally.events += 1;
        let at = format!("{name}: event {} ({:?})", tally.events, header);
        let values = field_values(&*by_value, header.class);
        tally.fields += values.iter().filter(|v| v.is_some()).count() as u64;
        // Accessors agree with values.
        for (i, v) in values.iter().enumerate() {
            let f = FieldId(i as u32);
            check_accessors(&at, &*by_value, header.class, f, v.as_ref());
        }
        assert_eq!(
            whole_event(&*whole, header.class),
            values,
            "{at}: for_each_value"
        );
        assert_eq!(
            visited(&at, &*visits, header.class),
            values,
            "{at}: visit_fields"
        );
        assert_eq!(
            visited_one_by_one(&at, &*visits, header.class),
            values,
            "{at}: visit_field"
        );
    }
    tally.interest_events = check_interest(name, &open);
    tally.after_seek = check_seek(name, &open, tally.events);
    tally
}

fn next(name: &str, path: &str, s: &mut dyn EventSource) -> Step {
    s.advance()
        .unwrap_or_else(|e| panic!("{name}: {path} path: {e}"))
}

/// Every field's value (absent fields as `None`).
fn field_values(s: &dyn EventSource, class: ClassId) -> Vec<Option<Value<'static>>> {
    let n = s.classes()[class.0 as usize].fields.len();
    (0..n)
        .map(|i| s.value(FieldId(i as u32)).map(Value::into_owned))
        .collect()
}

fn whole_event(s: &dyn EventSource, class: ClassId) -> Vec<Option<Value<'static>>> {
    let n = s.classes()[class.0 as usize].fields.len();
    let mut out = vec![None; n];
    s.for_each_value(class, &mut |f, v| out[f.0 as usize] = Some(v.into_owned()));
    out
}

fn visited(at: &str, s: &dyn EventSource, class: ClassId) -> Vec<Option<Value<'static>>> {
    let n = s.classes()[class.0 as usize].fields.len();
    let mut out = vec![None; n];
    let mut builder = ValueBuilder::new(|f: FieldId, v| out[f.0 as usize] = Some(v));
    s.visit_fields(class, &mut builder)
        .unwrap_or_else(|e| panic!("{at}: visit_fields failed: {e}"));
    assert!(!builder.incomplete(), "{at}: visit left a field incomplete");
    drop(builder);
    out
}

/// Every field visited on its own (`visit_field`).
fn visited_one_by_one(
    at: &str,
    s: &dyn EventSource,
    class: ClassId,
) -> Vec<Option<Value<'static>>> {
    let n = s.classes()[class.0 as usize].fields.len();
    let mut out = vec![None; n];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut builder = ValueBuilder::new(|_, v| *slot = Some(v));
        s.visit_field(FieldId(i as u32), &mut builder)
            .unwrap_or_else(|e| panic!("{at}: visit_field {i} failed: {e}"));
        assert!(
            !builder.incomplete(),
            "{at}: visit left field {i} incomplete"
        );
    }
    out
}

fn check_accessors(
    at: &str,
    s: &dyn EventSource,
    class: ClassId,
    f: FieldId,
    v: Option<&Value<'_>>,
) {
    let name = &s.classes()[class.0 as usize].fields[f.0 as usize].name;
    assert_eq!(s.u64(f), v.and_then(Value::as_u64), "{at}: u64 of {name}");
    assert_eq!(s.i64(f), v.and_then(Value::as_i64), "{at}: i64 of {name}");
    match (v, s.str(f)) {
        (Some(Value::Str(text)), Some(got)) => assert_eq!(got, &**text, "{at}: str of {name}"),
        // Bytes that are not UTF-8: the value converts them lossily, the accessor gives none.
        (Some(Value::Str(text)), None) => assert!(
            text.contains(char::REPLACEMENT_CHARACTER),
            "{at}: str of {name} gives nothing for {text:?}"
        ),
        (_, got) => assert_eq!(got, None, "{at}: str of {name}, not a string"),
    }
}

/// Every other class (those of even id) under `set_interest`: the announced events of those
/// classes are the full run's, in the same order with the same values; loss notices all come
/// through; of the other classes, the first event of each stream on each CPU is announced
/// (a reader that cannot filter may announce them all) and what is not is what
/// `passed_over` tells, its number and latest time; the event count in the stats is every
/// event.
fn check_interest(name: &str, open: &dyn Fn() -> Box<dyn EventSource>) -> u64 {
    let mut full = open();
    let mut part = open();
    let wanted: Vec<ClassId> = (0..part.classes().len() as u32)
        .filter(|c| c % 2 == 0)
        .map(ClassId)
        .collect();
    part.set_interest(Some(&wanted));
    let mut announced = 0;
    // Streams and CPUs an event of another class was met on, and what was passed over.
    let mut met = HashSet::new();
    let mut passed = PassedOver::default();
    let mut got = next(name, "interest", &mut *part);
    loop {
        let expected = next(name, "values", &mut *full);
        if let Step::Event(h) = expected {
            if h.class.0 % 2 != 0 {
                let first = met.insert((h.stream, h.cpu));
                if got == expected {
                    got = next(name, "interest", &mut *part);
                } else {
                    assert!(
                        !first,
                        "{name}: interest path, the first event of another class of stream \
                         {} on CPU {} is not announced ({h:?})",
                        h.stream, h.cpu
                    );
                    passed.add(h.ts);
                }
                continue;
            }
        }
        assert_eq!(
            got, expected,
            "{name}: interest path, after {announced} events"
        );
        match got {
            Step::End => break,
            Step::Lost(_) => {}
            Step::Event(h) => {
                announced += 1;
                assert_eq!(
                    field_values(&*part, h.class),
                    field_values(&*full, h.class),
                    "{name}: interest path, event {announced} ({h:?})"
                );
            }
        }
        got = next(name, "interest", &mut *part);
    }
    assert_eq!(
        part.passed_over(0),
        passed,
        "{name}: what the interest passed over"
    );
    assert_eq!(
        part.stats().events,
        full.stats().events,
        "{name}: events passed over under the interest still count"
    );
    announced
}

/// Seeks to the time of the middle event and compares what follows with the full run from
/// there. `None` when the reader cannot seek.
fn check_seek(name: &str, open: &dyn Fn() -> Box<dyn EventSource>, events: u64) -> Option<u64> {
    if events < 2 {
        return None;
    }
    let mut full = open();
    let mut seen = 0;
    let target = loop {
        match next(name, "values", &mut *full) {
            Step::Event(h) => {
                seen += 1;
                if seen >= events / 2 {
                    break h.ts;
                }
            }
            Step::Lost(_) => {}
            Step::End => unreachable!("{name}: fewer events than the first reading"),
        }
    };
    let mut sought = open();
    if !sought
        .seek(target)
        .unwrap_or_else(|e| panic!("{name}: seek to {target}: {e}"))
    {
        return None;
    }
    // From a fresh full run: every step at or after the target (losses that end after it).
    let mut reference = open();
    let at_or_after = |s: &Step| match s {
        Step::Event(h) => h.ts >= target,
        Step::Lost(LostEvents { end, .. }) => *end >= target,
        Step::End => true,
    };
    let mut compared = 0;
    loop {
        let expected = loop {
            let s = next(name, "values", &mut *reference);
            if at_or_after(&s) {
                break s;
            }
        };
        let got = next(name, "seek", &mut *sought);
        assert_eq!(
            got, expected,
            "{name}: after seeking to {target}, step {compared}"
        );
        compared += 1;
        match got {
            Step::End => return Some(compared),
            Step::Event(h) => assert_eq!(
                field_values(&*sought, h.class),
                field_values(&*reference, h.class),
                "{name}: after seeking to {target}, event {h:?}"
            ),
            Step::Lost(_) => {}
        }
    }
}

//! Events written out of time order come out sorted — by timestamp, file order kept among
//! equal ones — with a warning that says how many were out of place and where the first is.

mod common;

use common::rows;
use virtflow_trace::error::XmlError;
use virtflow_trace::{EventSource, TraceError};
use virtflow_xmlstub::testing::{to_xml, StubEvent};
use virtflow_xmlstub::XmlSource;

#[test]
fn unsorted_events_are_sorted_with_a_warning() {
    let events = [
        StubEvent::new(30, "a").long("n", 0),
        StubEvent::new(10, "b").long("n", 1),
        StubEvent::new(20, "a").long("n", 2),
        StubEvent::new(10, "a").long("n", 3),
        StubEvent::new(40, "b").long("n", 4),
        StubEvent::new(20, "b").long("n", 5),
    ];
    let xml = to_xml(&events);
    let mut s = XmlSource::from_bytes("unsorted.xml", xml.as_bytes()).unwrap();
    let read: Vec<_> = rows(&mut s).iter().map(|r| (r.ts, r.int("n"))).collect();
    assert_eq!(read, [(10, 1), (10, 3), (20, 2), (20, 5), (30, 0), (40, 4)]);
    // Four events come earlier than one before them: 10, 20, 10 (after 30) and 20 (after 40).
    let first = xml.find("<event timestamp=\"10\"").unwrap() as u64;
    let expected = TraceError::new(
        "unsorted.xml",
        first,
        XmlError::EventsOutOfOrder { count: 4 },
    );
    assert_eq!(s.stats().warnings, [expected.to_string()]);
}

#[test]
fn equal_timestamps_are_in_order_and_keep_file_order() {
    let events: Vec<_> = (0..5)
        .map(|n| StubEvent::new(7, "same").long("n", n))
        .collect();
    let xml = to_xml(&events);
    let mut s = XmlSource::from_bytes("ties.xml", xml.as_bytes()).unwrap();
    let read: Vec<_> = rows(&mut s).iter().map(|r| r.int("n")).collect();
    assert_eq!(read, [0, 1, 2, 3, 4]);
    assert!(s.stats().warnings.is_empty());
}

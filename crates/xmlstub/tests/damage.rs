//! Damaged copies of a valid stub trace — cut short, bits flipped, bytes dropped or repeated —
//! each end in events then the end, or in a clear error: never a panic, never an error outside
//! the file, never a trace read as 0 events, and never a truncated trace read as if whole.

mod common;

use common::drain;
use virtflow_trace::{ErrorKind, EventSource};
use virtflow_xmlstub::testing::{to_xml, traces, StubEvent};
use virtflow_xmlstub::XmlSource;

/// A valid trace using every type, a comment, set_aspects and escapes.
fn original() -> Vec<u8> {
    let mut events = traces::simple_network_client().events;
    events.truncate(8);
    events.push(
        StubEvent::new(99, "all_types")
            .cpu(0)
            .int("i", -5)
            .long("l", 1 << 40)
            .string("s", "<&\"é\">")
            .double("d", 2.5)
            .int_array("ia", &[1, 2])
            .long_array("la", &[3]),
    );
    let xml = to_xml(&events).replace("<trace>\n", "<trace>\n<!-- damaged copies -->\n");
    xml.into_bytes()
}

/// A small deterministic generator (xorshift), so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Reads `bytes` as far as it goes and checks the outcome; returns whether it ended in error.
fn check(bytes: &[u8], what: &str) -> bool {
    let mut source = match XmlSource::from_bytes("damaged.xml", bytes) {
        Ok(source) => source,
        Err(e) => {
            assert!(e.offset <= bytes.len() as u64, "{what}: {e}");
            assert!(
                matches!(e.kind, ErrorKind::Xml(_)),
                "{what}: not an XML error: {e:?}"
            );
            assert!(!e.to_string().is_empty());
            return true;
        }
    };
    assert!(!source.is_empty(), "{what}: opened with 0 events");
    let (rows, error) = drain(&mut source);
    assert_eq!(rows.len(), source.len(), "{what}");
    assert!(rows.windows(2).all(|w| w[0].ts <= w[1].ts), "{what}");
    assert_eq!(source.stats().events, rows.len() as u64, "{what}");
    match error {
        Some(e) => {
            assert!(e.offset <= bytes.len() as u64, "{what}: {e}");
            assert!(matches!(e.kind, ErrorKind::Xml(_)), "{what}: {e:?}");
            true
        }
        None => false,
    }
}

#[test]
fn truncated_copies_end_in_an_error() {
    let original = original();
    let whole_until = original.len() - "</trace>\n".len() + "</trace>".len();
    assert!(!check(&original, "original"));
    let mut cut = 0;
    let mut tried = 0;
    while cut < original.len() {
        let errs = check(&original[..cut], &format!("cut at {cut}"));
        // Only the final line break may go: anything shorter lacks </trace>.
        assert_eq!(errs, cut < whole_until, "cut at {cut}");
        tried += 1;
        cut += 1 + cut / 64;
    }
    assert!(tried >= 100, "{tried}");
}

#[test]
fn flipped_dropped_and_repeated_bytes_never_panic() {
    let original = original();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut errors = 0;
    let runs = 400;
    for run in 0..runs {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, bytes[at]),
                // A byte that matters to XML.
                _ => {
                    let special = b"<>\"'&/= \x00\xff";
                    bytes[at] = special[rng.below(special.len())];
                }
            }
        }
        if check(&bytes, &format!("run {run}")) {
            errors += 1;
        }
    }
    // Most damage is seen; some (a flipped letter in a string) is not damage to the format.
    assert!(errors > runs / 4 && errors < runs, "{errors} of {runs}");
}

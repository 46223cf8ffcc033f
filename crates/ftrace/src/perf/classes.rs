//! The event classes the reader exposes, and what their fields are read from.
//!
//! One class per tracepoint recorded: its format's fields (decoded from the sample's raw
//! tracepoint record, integers through [`IntSlot`]s), then [`EXTRA_FIELDS`]. Then the
//! side-band classes, named and laid out as perf's CTF conversion does, which the analysis's
//! layout reads: `perf_comm`, `perf_fork`, `perf_exit`, a record's own fields.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use virtflow_trace::{EventClass, FieldDesc, FieldKind, Scope};

use crate::format::EventFormat;
use crate::record;

/// The fields every tracepoint class has after its format's: the thread's name (from `COMM`
/// records and the saved command lines), then the sample's `PERF_SAMPLE_TID` pid (its thread
/// group) under the name the `.dat` reader's vocabulary gives it, then the sample's tid and
/// pid as perf's CTF conversion names them.
pub(super) const EXTRA_FIELDS: [(&str, Scope, FieldKind); 4] = [
    ("common_comm", Scope::Common, FieldKind::Str),
    ("common_tgid", Scope::Common, FieldKind::Int),
    ("perf_tid", Scope::Context, FieldKind::Int),
    ("perf_pid", Scope::Context, FieldKind::Int),
];

/// Which side-band record a class stands for, in the order of the classes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum SideBand {
    Comm,
    Fork,
    Exit,
}

impl SideBand {
    pub const ALL: [SideBand; 3] = [SideBand::Comm, SideBand::Fork, SideBand::Exit];

    pub fn class(self) -> EventClass {
        let (name, fields): (&str, &[&str]) = match self {
            SideBand::Comm => ("perf_comm", &["pid", "tid", "comm"]),
            SideBand::Fork => ("perf_fork", &["pid", "ppid", "tid", "ptid", "time"]),
            SideBand::Exit => ("perf_exit", &["pid", "ppid", "tid", "ptid", "time"]),
        };
        EventClass {
            name: name.into(),
            system: String::new(),
            fields: fields
                .iter()
                .map(|&f| FieldDesc {
                    name: f.into(),
                    scope: Scope::Payload,
                    kind: if f == "comm" {
                        FieldKind::Str
                    } else {
                        FieldKind::UInt
                    },
                })
                .collect(),
        }
    }
}

/// The class of a tracepoint format: its fields, then [`EXTRA_FIELDS`].
pub(super) fn tracepoint_class(format: &EventFormat) -> EventClass {
    let mut class = record::event_class(format);
    class
        .fields
        .extend(EXTRA_FIELDS.iter().map(|&(name, scope, kind)| FieldDesc {
            name: name.into(),
            scope,
            kind,
        }));
    class
}

/// Thread names by tid. Looked up on every event whose name is read: hashed by one
/// multiplication rather than SipHash (tids are not chosen by an adversary who would gain
/// from collisions; a damaged file can at worst make its own reading slower).
pub(super) type Comms = HashMap<i32, String, BuildHasherDefault<TidHasher>>;

#[derive(Default)]
pub(super) struct TidHasher(u64);

impl Hasher for TidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i32(&mut self, v: i32) {
        self.0 = (v as u32 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

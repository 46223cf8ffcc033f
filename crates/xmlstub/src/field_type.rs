//! The stub schema's field types and what each becomes in virtflow's event model.

use virtflow_trace::FieldKind;

/// A `<field type="…">` of the stub trace schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `int`: a 32-bit signed integer.
    Int,
    /// `long`: a 64-bit signed integer.
    Long,
    /// `string`.
    String,
    /// `double`. Trace Compass keeps the text as a string; virtflow parses it as a float, so
    /// that a numeric field reads as a number.
    Double,
    /// `intArray`: comma-separated 32-bit integers.
    IntArray,
    /// `longArray`: comma-separated 64-bit integers.
    LongArray,
}

impl FieldType {
    pub const ALL: [FieldType; 6] = [
        FieldType::Int,
        FieldType::Long,
        FieldType::String,
        FieldType::Double,
        FieldType::IntArray,
        FieldType::LongArray,
    ];

    /// The type written in a `type` attribute; `None` for names outside the schema (matched
    /// exactly, as the schema's enumeration is).
    pub fn from_name(name: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The name as the schema writes it.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Long => "long",
            FieldType::String => "string",
            FieldType::Double => "double",
            FieldType::IntArray => "intArray",
            FieldType::LongArray => "longArray",
        }
    }

    /// The field kind a class declares for it: integers of both widths are `Int` (their values
    /// are `Value::Int`), arrays are `Compound` (`Value::Array` of `Value::Int`).
    pub fn kind(self) -> FieldKind {
        match self {
            FieldType::Int | FieldType::Long => FieldKind::Int,
            FieldType::String => FieldKind::Str,
            FieldType::Double => FieldKind::Float,
            FieldType::IntArray | FieldType::LongArray => FieldKind::Compound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_exact() {
        for t in FieldType::ALL {
            assert_eq!(FieldType::from_name(t.name()), Some(t));
        }
        assert_eq!(FieldType::from_name("Int"), None);
        assert_eq!(FieldType::from_name("float"), None);
        assert_eq!(FieldType::from_name(""), None);
    }
}

//! What can go wrong reading a dat trace. (Filled in as the reader is converted.)

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatError {
    /// Transitional: a failure not yet given its own kind.
    Other(String),
}

impl fmt::Display for DatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatError::Other(m) => f.write_str(m),
        }
    }
}

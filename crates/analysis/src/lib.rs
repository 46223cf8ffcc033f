//! Analyses (in progress).

//! Recording (in progress).

//! Web view (in progress).

//! Property tests for the time formats.

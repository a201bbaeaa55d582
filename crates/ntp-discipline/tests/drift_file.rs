//! The drift file's text round-trips, and no text panics the parser.

#![allow(clippy::unwrap_used, reason = "test code")]

use ntp_discipline::DriftFile;
use proptest::prelude::*;

proptest! {
    /// Any frequency within the range comes back from its own text to the
    /// printed precision (1e-12 s/s).
    #[test]
    fn written_frequencies_read_back(frequency in -0.1f64..=0.1) {
        let text = DriftFile { frequency, sd: None }.to_string();
        let read = DriftFile::parse(&text, 0.1).unwrap();
        prop_assert!((read.frequency - frequency).abs() <= 0.6e-12, "{text}");
        prop_assert_eq!(read.sd, None);
    }

    /// Any text is a drift file within the range or an error, never a
    /// panic, and what is accepted is finite and in range.
    #[test]
    fn any_text_is_refused_or_in_range(text in ".{0,40}", max_rate in 0.0f64..1.0) {
        if let Ok(drift) = DriftFile::parse(&text, max_rate) {
            prop_assert!(drift.frequency.is_finite() && drift.frequency.abs() <= max_rate);
            prop_assert!(drift.sd.is_none_or(|sd| sd.is_finite() && sd > 0.0));
        }
    }
}

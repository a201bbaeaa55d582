//! Any text through the drift file parser (`ntp_discipline::DriftFile`):
//! it never panics; what it accepts is finite and within the range it was
//! given (with a positive skew, if any), and writes back as text that
//! parses to the same frequency within the printed precision.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_discipline::DriftFile;

fuzz_target!(|data: &[u8]| {
    let Some((&range, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    // The clock's range: 0 to 0.255 s/s (the daemon's is 5e-4 or 0.1).
    let max_rate = f64::from(range) * 1e-3;
    if let Ok(drift) = DriftFile::parse(&text, max_rate) {
        assert!(drift.frequency.is_finite() && drift.frequency.abs() <= max_rate);
        assert!(drift.sd.is_none_or(|sd| sd.is_finite() && sd > 0.0));
        let written = DriftFile {
            frequency: drift.frequency,
            sd: None,
        }
        .to_string();
        // Rounding to six decimals of ppm may step just over the range's
        // edge: parse against a range that allows for it.
        let back = DriftFile::parse(&written, max_rate + 1e-12).expect("our own text");
        assert!(
            (back.frequency - drift.frequency).abs() <= 0.6e-12,
            "{written}"
        );
    }
});

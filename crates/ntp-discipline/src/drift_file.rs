//! The drift file's text: the frequency estimate a daemon keeps across
//! restarts, as ntpd and chronyd keep it (RFC 5905 leaves the file to
//! the implementation; its Appendix A.5.5's `rstclock` starts from it).
//!
//! - ntpd's form (and what [`DriftFile`]'s `Display` writes): one decimal
//!   number, the frequency correction in ppm.
//! - chronyd's form: two numbers, the clock's own frequency error in ppm
//!   (the correction with the opposite sign) and its skew, the error's
//!   uncertainty in ppm, which tells how far the number can be trusted.
//!
//! Parsing is `no_std`, bounded by the text and never panics; what it
//! accepts round-trips through `Display` (to the printed precision).

use core::fmt;

use thiserror::Error;

#[cfg(doc)]
use crate::DRIFT_FILE_FREQUENCY_SD;

/// What a drift file says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriftFile {
    /// The frequency correction, seconds per second (positive: the clock
    /// is made to run faster).
    pub frequency: f64,
    /// Its standard deviation, seconds per second, when the file gives
    /// one (chronyd's skew); without one, take it as known to
    /// [`DRIFT_FILE_FREQUENCY_SD`].
    pub sd: Option<f64>,
}

/// Why a drift file's text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DriftFileError {
    /// Not one number (ntpd's form) nor two (chronyd's).
    #[error("not one number (ntpd) or two (chronyd)")]
    Form,
    /// A field that is not a decimal number.
    #[error("not a number")]
    Number,
    /// The frequency is not finite or beyond the clock's range.
    #[error("frequency beyond the clock's range")]
    Range,
    /// chronyd's skew is not a positive finite number.
    #[error("skew not positive")]
    Skew,
}

impl DriftFile {
    /// Parses a drift file's `text`; `max_rate` is the clock's correction
    /// range, seconds per second (a frequency beyond it cannot have come
    /// from this clock).
    ///
    /// # Errors
    ///
    /// [`DriftFileError`]: the form, a field that is not a number, the
    /// range, or chronyd's skew.
    pub fn parse(text: &str, max_rate: f64) -> Result<Self, DriftFileError> {
        let mut fields = text.split_whitespace();
        let number = |field: &str| field.parse::<f64>().map_err(|_| DriftFileError::Number);
        let first = number(fields.next().ok_or(DriftFileError::Form)?)?;
        let drift = match fields.next() {
            None => Self {
                frequency: first * 1e-6,
                sd: None,
            },
            Some(skew) => {
                if fields.next().is_some() {
                    return Err(DriftFileError::Form);
                }
                let skew = number(skew)? * 1e-6;
                if !(skew.is_finite() && skew > 0.0) {
                    return Err(DriftFileError::Skew);
                }
                Self {
                    frequency: -first * 1e-6,
                    sd: Some(skew),
                }
            }
        };
        if drift.frequency.is_finite() && drift.frequency.abs() <= max_rate {
            Ok(drift)
        } else {
            Err(DriftFileError::Range)
        }
    }
}

/// ntpd's form, the correction in ppm to six decimals (a microhertz per
/// megahertz, far below any estimate's error), and a newline.
impl fmt::Display for DriftFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:.6}", self.frequency * 1e6)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    const RANGE: f64 = 0.1;

    #[test]
    fn reads_ntpd_and_chronyd_files() {
        let ntpd = DriftFile::parse("-12.345\n", RANGE).unwrap();
        assert!((ntpd.frequency + 12.345e-6).abs() < 1e-15);
        assert_eq!(ntpd.sd, None);
        // chronyd: the clock's error (the correction's opposite) and skew.
        let chrony = DriftFile::parse("  4.5 0.25\n", RANGE).unwrap();
        assert!((chrony.frequency + 4.5e-6).abs() < 1e-15);
        assert!((chrony.sd.unwrap() - 0.25e-6).abs() < 1e-15);
    }

    #[test]
    fn refuses_what_is_not_a_drift_file() {
        for (text, error) in [
            ("", DriftFileError::Form),
            ("1 2 3", DriftFileError::Form),
            ("ppm", DriftFileError::Number),
            ("1 x", DriftFileError::Number),
            ("NaN", DriftFileError::Range),
            ("inf", DriftFileError::Range),
            ("100001", DriftFileError::Range),
            ("1 0", DriftFileError::Skew),
            ("1 -2", DriftFileError::Skew),
        ] {
            assert_eq!(DriftFile::parse(text, RANGE), Err(error), "{text:?}");
        }
        // At the range's edge: accepted.
        assert!(DriftFile::parse("-100000", RANGE).is_ok());
    }

    #[test]
    fn display_round_trips() {
        let drift = DriftFile {
            frequency: 31.25e-6,
            sd: None,
        };
        let text = drift.to_string();
        assert_eq!(text, "31.250000\n");
        assert_eq!(DriftFile::parse(&text, RANGE), Ok(drift));
    }
}

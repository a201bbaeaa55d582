//! Every constant of the mitigation algorithms, with its unit and source,
//! and the configuration structs that carry them.
//!
//! RFC 5905 states some values twice: in the body (figure 6, section 7.2;
//! figure 23, section 11.1) and in the code skeleton of Appendix A.1.1,
//! where values marked `%` are "performance tuning" knobs. Where the two or
//! the reference implementation (ntpd) disagree, the doc comment of the
//! constant says which value we use and why. Every value can be changed
//! through [`FilterConfig`] or [`SelectConfig`].

use crate::error::{ConfigError, Quantity};

/// Frequency tolerance PHI, 15e-6 s/s (RFC 5905, section 7.2, figure 6;
/// Appendix A.1.1 agrees): the rate at which dispersion grows with the age
/// of a sample.
pub const PHI: f64 = 15e-6;

/// Maximum dispersion MAXDISP, 16 s (RFC 5905, section 7.2, figure 6;
/// Appendix A.1.1 agrees). The dispersion of an empty clock-filter stage,
/// and the ceiling of every sample dispersion.
pub const MAXDISP: f64 = 16.0;

/// Minimum dispersion increment MINDISP, 0.005 s (RFC 5905, section 7.2,
/// figure 6).
///
/// **Disputed.** Appendix A.1.1 sets MINDISP to 0.01 s and marks it as a
/// tuning knob (`%`). We use the body's 0.005 s: figure 6 is the normative
/// table of global parameters, the appendix is an example. It is the floor
/// of `root_delay + delay` in [`root_distance`](crate::PeerStats::root_distance)
/// (Appendix A.5.5.2 `root_dist`), so every root distance is at least
/// 2.5 ms, and the floor of the weights in
/// [`combine`](crate::combine::combine).
pub const MINDISP: f64 = 0.005;

/// Distance threshold MAXDIST, 1 s (RFC 5905, section 7.2, figure 6;
/// Appendix A.1.1 agrees).
///
/// **Disputed.** ntpd's default (`tos maxdist`) is 1.5 s. We use the RFC's
/// 1 s: body and appendix agree, and section 10 argues for 1 s (after four
/// valid samples the filter dispersion falls a little below 1 s). MAXDIST
/// is also the stratum weight of the cluster merit (section 11.2.2).
pub const MAXDIST: f64 = 1.0;

/// Maximum stratum MAXSTRAT, 16: "infinity", unsynchronized (RFC 5905,
/// section 7.2, figure 6).
pub const MAXSTRAT: u8 = 16;

/// Number of clock-filter stages NSTAGE, 8 (RFC 5905, section 10;
/// Appendix A.1.1).
pub const NSTAGE: usize = 8;

/// Minimum number of survivors of the cluster algorithm NMIN, 3
/// (RFC 5905, section 11.1, figure 23; Appendix A.1.1 agrees).
pub const NMIN: usize = 3;

/// Minimum number of truechimers CMIN, 1 (RFC 5905, section 11.1,
/// figure 23; called NSANE in Appendix A.1.1, same value). Section 11.2.1:
/// "for historic reasons the default value for CMIN is one".
pub const CMIN: usize = 1;

/// Maximum number of truechimers handed to the cluster algorithm, 10
/// (MAXCLOCK, RFC 5905 Appendix A.1.1; ntpd's `tos maxclock` default is
/// also 10). Truechimers beyond this many, in merit order, are tallied
/// [`Excess`](crate::Tally::Excess) (`.` in `ntpq -p`).
///
/// The RFC body has no such limit; we keep it because the `.` tally code
/// exists for exactly this cut and because it bounds the cost of the
/// cluster rounds.
pub const MAXCLOCK: usize = 10;

/// Maximum number of cluster survivors combined, 6.
///
/// **Not in RFC 5905.** The `ntpq` documentation of the reference
/// implementation describes tally `#` as "a survivor, but not among the
/// first six peers sorted by synchronization distance". Survivors beyond
/// this many, in merit order, are tallied [`Backup`](crate::Tally::Backup)
/// and left out of the combine algorithm.
pub const MAX_COMBINED: usize = 6;

/// Largest magnitude accepted for any offset, delay, dispersion, jitter,
/// distance or time, 2^31 s: the range of the NTP time difference
/// (RFC 5905, section 6; [`ntp_proto::NtpDuration`]). Bigger values cannot
/// come from NTP timestamps and are rejected as out of range; this also
/// keeps every square and sum the algorithms compute finite.
pub const MAX_MAGNITUDE: f64 = 2_147_483_648.0;

/// Default system precision for the jitter floor of the clock filter,
/// 2^-20 s (about 1 µs), the same default as
/// [`ntp_proto::SystemState::default`]. RFC 5905, section 10: the jitter
/// "is bounded from below by the system precision s.rho".
pub const DEFAULT_PRECISION: f64 = 1.0 / 1_048_576.0;

/// Checks a configuration value: finite, within `0..=MAX_MAGNITUDE`.
fn check_value(value: f64, quantity: Quantity) -> Result<(), ConfigError> {
    if !value.is_finite() {
        return Err(ConfigError::NotFinite(quantity));
    }
    if !(0.0..=MAX_MAGNITUDE).contains(&value) {
        return Err(ConfigError::OutOfRange(quantity));
    }
    Ok(())
}

/// Limits of the clock filter (RFC 5905, section 10). The [`Default`] holds
/// the RFC values.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FilterConfig {
    /// Frequency tolerance, s/s. Default [`PHI`].
    pub phi: f64,
    /// Maximum dispersion, s. Default [`MAXDISP`].
    pub max_dispersion: f64,
    /// System precision, s: the floor of the peer jitter. Default
    /// [`DEFAULT_PRECISION`].
    pub precision: f64,
}

impl FilterConfig {
    /// The RFC 5905 defaults.
    pub const RFC: Self = Self {
        phi: PHI,
        max_dispersion: MAXDISP,
        precision: DEFAULT_PRECISION,
    };

    /// The RFC defaults with the jitter floor taken from a precision in
    /// log2 seconds, as carried in the packet header and in
    /// [`ntp_proto::SystemState::precision`].
    #[must_use]
    pub fn with_precision_log2(precision: i8) -> Self {
        Self {
            precision: libm::exp2(f64::from(precision)),
            ..Self::RFC
        }
    }

    /// Checks every value: finite, not negative, at most [`MAX_MAGNITUDE`];
    /// `max_dispersion` positive.
    ///
    /// # Errors
    ///
    /// The first value that fails, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_value(self.phi, Quantity::Phi)?;
        check_value(self.max_dispersion, Quantity::MaxDispersion)?;
        check_value(self.precision, Quantity::Precision)?;
        if self.max_dispersion <= 0.0 {
            return Err(ConfigError::OutOfRange(Quantity::MaxDispersion));
        }
        Ok(())
    }
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self::RFC
    }
}

/// Limits of the fitness test and the selection, cluster and combine
/// algorithms (RFC 5905, sections 11.2.1-11.2.3, Appendix A.5.2 and
/// A.5.5). The [`Default`] holds the RFC values.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SelectConfig {
    /// Frequency tolerance, s/s. Default [`PHI`].
    pub phi: f64,
    /// Minimum of `root_delay + delay` in the root distance, s; also the
    /// weight floor of the combine algorithm. Default [`MINDISP`].
    pub min_dispersion: f64,
    /// Distance threshold of the fitness test and stratum weight of the
    /// cluster merit, s. Default [`MAXDIST`].
    pub max_distance: f64,
    /// Strata at or above this are unfit. Default [`MAXSTRAT`].
    pub max_stratum: u8,
    /// Minimum number of truechimers (CMIN). Default [`CMIN`]; at least 1.
    pub min_candidates: usize,
    /// The cluster algorithm stops pruning at this many survivors (NMIN).
    /// Default [`NMIN`]; at least 1.
    pub min_survivors: usize,
    /// At most this many truechimers enter the cluster algorithm.
    /// Default [`MAXCLOCK`]; at least 1.
    pub max_candidates: usize,
    /// At most this many survivors are combined. Default
    /// [`MAX_COMBINED`]; at least 1.
    pub max_combined: usize,
}

impl SelectConfig {
    /// The RFC 5905 defaults.
    pub const RFC: Self = Self {
        phi: PHI,
        min_dispersion: MINDISP,
        max_distance: MAXDIST,
        max_stratum: MAXSTRAT,
        min_candidates: CMIN,
        min_survivors: NMIN,
        max_candidates: MAXCLOCK,
        max_combined: MAX_COMBINED,
    };

    /// Checks every value: floats finite, not negative and at most
    /// [`MAX_MAGNITUDE`], `min_dispersion` positive, counts at least 1.
    ///
    /// # Errors
    ///
    /// The first value that fails, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_value(self.phi, Quantity::Phi)?;
        check_value(self.min_dispersion, Quantity::MinDispersion)?;
        check_value(self.max_distance, Quantity::MaxDistance)?;
        if self.min_dispersion <= 0.0 {
            return Err(ConfigError::OutOfRange(Quantity::MinDispersion));
        }
        if self.min_candidates == 0
            || self.min_survivors == 0
            || self.max_candidates == 0
            || self.max_combined == 0
        {
            return Err(ConfigError::ZeroCount);
        }
        Ok(())
    }
}

impl Default for SelectConfig {
    fn default() -> Self {
        Self::RFC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        assert_eq!(FilterConfig::default().validate(), Ok(()));
        assert_eq!(SelectConfig::default().validate(), Ok(()));
    }

    #[test]
    fn precision_log2_sets_floor() {
        let config = FilterConfig::with_precision_log2(-10);
        assert!((config.precision - 1.0 / 1024.0).abs() < 1e-18);
        assert!(
            (FilterConfig::with_precision_log2(-20).precision - DEFAULT_PRECISION).abs() < 1e-21
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let mut filter = FilterConfig::RFC;
        filter.phi = f64::NAN;
        assert_eq!(
            filter.validate(),
            Err(ConfigError::NotFinite(Quantity::Phi))
        );
        filter = FilterConfig::RFC;
        filter.max_dispersion = 0.0;
        assert_eq!(
            filter.validate(),
            Err(ConfigError::OutOfRange(Quantity::MaxDispersion))
        );
        filter = FilterConfig::RFC;
        filter.precision = -1.0;
        assert_eq!(
            filter.validate(),
            Err(ConfigError::OutOfRange(Quantity::Precision))
        );

        let mut select = SelectConfig::RFC;
        select.max_distance = f64::INFINITY;
        assert_eq!(
            select.validate(),
            Err(ConfigError::NotFinite(Quantity::MaxDistance))
        );
        select = SelectConfig::RFC;
        select.min_dispersion = 0.0;
        assert_eq!(
            select.validate(),
            Err(ConfigError::OutOfRange(Quantity::MinDispersion))
        );
        select = SelectConfig::RFC;
        select.min_survivors = 0;
        assert_eq!(select.validate(), Err(ConfigError::ZeroCount));
    }
}

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

/// Spike gate SGATE, 3 (RFC 5905, Appendix A.5, peer process parameters;
/// used by `clock_filter` in Appendix A.5.2; ntpd's `CLOCK_SGATE` is the
/// same): the popcorn spike suppressor holds back a new sample whose
/// offset differs from the last one used by more than SGATE times the
/// peer jitter.
///
/// **Not in the body.** Section 10 describes the clock filter without a
/// spike suppressor, so [`FilterConfig::RFC`] leaves it off; turn it on
/// with [`FilterConfig::with_popcorn_gate`]`(Some(SGATE))`. See
/// [`filter`](crate::filter) for how it works and where we differ from the
/// appendix.
pub const SGATE: f64 = 3.0;

/// The system poll exponent the clock filter assumes until it is told
/// one ([`ClockFilter::set_poll`](crate::ClockFilter::set_poll)), log2 s:
/// 6 (64 s). RFC 5905 starts `s.poll` at MINPOLL (Appendix A.2 `main`),
/// which Appendix A.1.1 sets to 6.
///
/// **Disputed.** The body's figure 6 (section 7.2) gives MINPOLL as 4
/// (16 s). We follow the appendix, whose code the popcorn spike suppressor
/// (the only user of this value) comes from, and the 64 s that client
/// implementations poll at first.
pub const DEFAULT_POLL: i8 = 6;

/// Valid samples the clock filter must hold before the popcorn spike
/// suppressor acts, 4: the jitter it gates on is the RMS of the offset
/// differences, and fewer samples give too rough an estimate (one sample
/// gives just the precision floor, so every second sample would be a
/// "spike").
///
/// **Not in RFC 5905.** Appendix A.5.2 has no such guard. ntpd's
/// `clock_filter` only suppresses a spike while the peer dispersion is
/// below the distance threshold, which with the RFC's empty stages at
/// MAXDISP happens at the fourth valid sample (section 10, remark c); we
/// count the samples instead, so the guard does not depend on
/// [`FilterConfig::count_empty_stages`].
pub const POPCORN_MIN_SAMPLES: usize = 4;

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

/// Limits and options of the clock filter (RFC 5905, section 10). The
/// [`Default`] holds the RFC values: [`FilterConfig::RFC`], the body's
/// algorithm exactly.
///
/// ```
/// use ntp_select::FilterConfig;
/// use ntp_select::constants::SGATE;
///
/// // The appendix's spike suppressor, and a dispersion from real samples only.
/// let config = FilterConfig::RFC
///     .with_popcorn_gate(Some(SGATE))
///     .with_count_empty_stages(false);
/// assert_eq!(config.validate(), Ok(()));
/// assert_eq!(FilterConfig::default(), FilterConfig::RFC);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct FilterConfig {
    /// Frequency tolerance, s/s. Default [`PHI`].
    pub phi: f64,
    /// Maximum dispersion, s. Default [`MAXDISP`].
    pub max_dispersion: f64,
    /// System precision, s: the floor of the peer jitter. Default
    /// [`DEFAULT_PRECISION`].
    pub precision: f64,
    /// The popcorn spike suppressor of Appendix A.5.2: `Some(gate)` holds
    /// back a new best sample whose offset differs from the last output's
    /// by more than `gate` times the last output's jitter, if it came less
    /// than two system poll intervals after the last sample used. [`SGATE`]
    /// (3) is the appendix's gate; it must be positive and finite. Default
    /// `None`: the body's clock filter (section 10) has no suppressor.
    /// Missing in serialized data means `None`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub popcorn_gate: Option<f64>,
    /// Whether empty stages (the dummy tuple, or a sample aged to
    /// MAXDISP) weigh in the filter dispersion (section 10: epsilon = sum
    /// epsilon_i / 2^(i+1) over all eight stages). Default `true`, the RFC:
    /// each empty stage counts MAXDISP / 2^(i+1).
    ///
    /// `false` counts only the valid samples; empty stages contribute 0.
    /// With the RFC's dummies a new association's dispersion is about
    /// 8 s after one sample and still about 1 s after four, so its root
    /// distance, and its interval in the selection algorithm, is too wide
    /// for the intersection algorithm to tell a falseticker 50 ms off from
    /// the truechimers until the register has filled. With `false` the root
    /// distance reflects the samples actually held. The weights of `n`
    /// valid samples sum to `1 - 2^-n`, so a lone sample counts half its
    /// dispersion; the root distance still adds half the delay, the root
    /// dispersion, the jitter and the aging since the sample. Missing in
    /// serialized data means `true`.
    #[cfg_attr(feature = "serde", serde(default = "count_empty_stages_default"))]
    pub count_empty_stages: bool,
}

/// Serde's default for [`FilterConfig::count_empty_stages`]: the RFC's.
#[cfg(feature = "serde")]
const fn count_empty_stages_default() -> bool {
    FilterConfig::RFC.count_empty_stages
}

impl FilterConfig {
    /// The RFC 5905 defaults: the body's clock filter (section 10), no
    /// popcorn spike suppressor, empty stages counted in the dispersion.
    pub const RFC: Self = Self {
        phi: PHI,
        max_dispersion: MAXDISP,
        precision: DEFAULT_PRECISION,
        popcorn_gate: None,
        count_empty_stages: true,
    };

    /// The same configuration with the popcorn spike suppressor gate
    /// ([`popcorn_gate`](Self::popcorn_gate)): `Some(`[`SGATE`]`)` for the
    /// appendix's, `None` for none.
    #[must_use]
    pub const fn with_popcorn_gate(self, popcorn_gate: Option<f64>) -> Self {
        Self {
            popcorn_gate,
            ..self
        }
    }

    /// The same configuration with
    /// [`count_empty_stages`](Self::count_empty_stages) set: `false` for a
    /// dispersion from the valid samples only.
    #[must_use]
    pub const fn with_count_empty_stages(self, count_empty_stages: bool) -> Self {
        Self {
            count_empty_stages,
            ..self
        }
    }

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
    /// `max_dispersion` and a `popcorn_gate` positive.
    ///
    /// # Errors
    ///
    /// The first value that fails, as a [`ConfigError`]. A bad
    /// `popcorn_gate` is reported as a [`Quantity::Jitter`]: the gate is a
    /// multiple of the peer jitter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_value(self.phi, Quantity::Phi)?;
        check_value(self.max_dispersion, Quantity::MaxDispersion)?;
        check_value(self.precision, Quantity::Precision)?;
        if self.max_dispersion <= 0.0 {
            return Err(ConfigError::OutOfRange(Quantity::MaxDispersion));
        }
        if let Some(gate) = self.popcorn_gate {
            check_value(gate, Quantity::Jitter)?;
            if gate <= 0.0 {
                return Err(ConfigError::OutOfRange(Quantity::Jitter));
            }
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
///
/// Non-exhaustive, so that new settings can come without breaking
/// callers: start from [`Default`] (or a preset) and set the fields or use
/// the `with_*` methods.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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
    /// Survivors whose root distance exceeds this many times the system
    /// peer's are not combined (tallied [`Backup`](crate::Tally::Backup)):
    /// chrony's `combinelimit`. Both distances are taken without the
    /// MINDISP floor ([`Candidate::own_distance`](crate::Candidate::own_distance)). `None` (RFC 5905, which weights every
    /// survivor by its distance, section 11.2.3) by default; see
    /// [`COMBINE_LIMIT`].
    pub combine_limit: Option<f64>,
    /// The cluster algorithm prunes the survivor whose selection jitter
    /// times root distance is largest, and never a trusted or preferred
    /// survivor: the reference implementation's rule (ntpd). `false`
    /// (the default): RFC 5905, section 11.2.2's body, the largest
    /// selection jitter whatever the survivor's distance. See
    /// [`cluster`](crate::cluster::cluster).
    #[cfg_attr(feature = "serde", serde(default))]
    pub distance_weighted_cluster: bool,
}

/// chrony's default `combinelimit`, 3: a survivor more than three times as
/// far (in root distance) as the system peer is not combined. Not in RFC
/// 5905. The distance-weighted average of section 11.2.3 still lets a
/// source with a large, consistent error pull the combined offset: two
/// servers 0.5 s off through a 1 s asymmetric path have root distances of
/// about 0.5 s, truechimers by their intervals, and beside one honest
/// server they are two of three votes wherever a majority matters (the
/// median of the combined offsets that weights the discipline's input).
pub const COMBINE_LIMIT: f64 = 3.0;

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
        combine_limit: None,
        distance_weighted_cluster: false,
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
        if let Some(limit) = self.combine_limit {
            check_value(limit, Quantity::CombineLimit)?;
            if limit < 1.0 {
                return Err(ConfigError::OutOfRange(Quantity::CombineLimit));
            }
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
    fn filter_options_default_to_the_rfc() {
        const { assert!(FilterConfig::RFC.popcorn_gate.is_none()) };
        const { assert!(FilterConfig::RFC.count_empty_stages) };
        assert_eq!(FilterConfig::default(), FilterConfig::RFC);
        let precise = FilterConfig::with_precision_log2(-10);
        assert_eq!(precise.popcorn_gate, None);
        assert!(precise.count_empty_stages);
        let config = precise
            .with_popcorn_gate(Some(SGATE))
            .with_count_empty_stages(false);
        assert_eq!(config.popcorn_gate, Some(3.0));
        assert!(!config.count_empty_stages);
        assert_eq!(config.precision.to_bits(), precise.precision.to_bits());
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(
            config.with_popcorn_gate(None).with_count_empty_stages(true),
            precise
        );
    }

    #[test]
    fn bad_popcorn_gates_are_rejected() {
        for (gate, error) in [
            (f64::NAN, ConfigError::NotFinite(Quantity::Jitter)),
            (f64::INFINITY, ConfigError::NotFinite(Quantity::Jitter)),
            (0.0, ConfigError::OutOfRange(Quantity::Jitter)),
            (-3.0, ConfigError::OutOfRange(Quantity::Jitter)),
            (3e9, ConfigError::OutOfRange(Quantity::Jitter)),
        ] {
            assert_eq!(
                FilterConfig::RFC.with_popcorn_gate(Some(gate)).validate(),
                Err(error),
                "{gate}"
            );
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn filter_config_serde_keeps_old_documents() {
        let config = FilterConfig::RFC
            .with_popcorn_gate(Some(SGATE))
            .with_count_empty_stages(false);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<FilterConfig>(&json).unwrap(), config);
        // A document from before the two options: the RFC behaviour.
        let old = r#"{"phi":1.5e-5,"max_dispersion":16.0,"precision":9.5367431640625e-7}"#;
        assert_eq!(
            serde_json::from_str::<FilterConfig>(old).unwrap(),
            FilterConfig::RFC
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

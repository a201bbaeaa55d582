//! Per-source tests and corrections by round-trip delay: see
//! [`DelayConfig`] and [`AsymmetryEstimator`].

use crate::ConfigError;

/// The delay tests and corrections of one source; the default tests
/// nothing and corrects offsets only by an estimated asymmetry that stands
/// out of its noise.
///
/// RFC 5905 trusts the clock filter to pick the sample with the least
/// delay out of the last eight (section 10) and has no other delay test
/// than the root distance threshold (section 11.2.1). chrony's users have
/// five more knobs per source, and a daemon built from these crates should
/// offer them:
///
/// - **`max_delay`**: a measurement whose round-trip delay exceeds it is
///   not used (chrony's `maxdelay`).
/// - **`max_delay_ratio`**: nor one whose delay is more than this many
///   times the minimum delay (chrony's `maxdelayratio`).
/// - **`max_delay_dev_ratio`**: nor one whose delay exceeds the minimum by
///   more than this many times the source's jitter (chrony's
///   `maxdelaydevratio`).
/// - **`min_delay`**: the path's true minimum round-trip delay, when it is
///   known, used instead of the measured minimum (chrony's `mindelay`).
/// - **`asymmetry`**: how the delay's variation splits between the two
///   paths (chrony's `asymmetry`), from -0.5 (all of it on the request's
///   way to the server) to +0.5 (all of it on the reply's way back); when
///   it is not configured it is estimated from the source's measurements
///   ([`AsymmetryEstimator`]), as chronyd does by default.
///
/// # The offset correction
///
/// With a queueing delay `e` above the minimum round trip, of which a part
/// `(1/2 + a) e` is on the way back and `(1/2 - a) e` on the way out, the
/// offset of RFC 5905 section 8, `((T2 - T1) + (T3 - T4)) / 2`, is off by
/// `-a e`: the correction adds `asymmetry * (delay - min_delay)`. With `a`
/// = 0 (a symmetric path, or one whose asymmetry the estimate cannot yet
/// tell from zero) the offset is RFC 5905's unchanged.
///
/// # The minimum delay
///
/// The measured minimum is the least delay among the samples in the
/// source's clock filter (its last eight accepted measurements, section
/// 10) and the new one; a new measurement with a smaller delay always
/// passes the ratio tests. A step empties the filter, and with it the
/// minimum. The tests are skipped while there is no minimum (no sample
/// yet and no `min_delay`); `max_delay_dev_ratio` also needs the filter's
/// jitter (RFC 5905 section 10, peer jitter), so a second sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct DelayConfig {
    /// Largest usable round-trip delay, s (chrony's `maxdelay`). `None`:
    /// no limit but the root distance threshold.
    pub max_delay: Option<f64>,
    /// Largest usable ratio of the delay to the minimum delay (chrony's
    /// `maxdelayratio`); at least 1.
    pub max_delay_ratio: Option<f64>,
    /// Largest usable excess of the delay over the minimum, in units of
    /// the source's jitter (chrony's `maxdelaydevratio`); positive.
    pub max_delay_dev_ratio: Option<f64>,
    /// The path's minimum round-trip delay, s, if known (chrony's
    /// `mindelay`); `None`: the least delay measured.
    pub min_delay: Option<f64>,
    /// Share of the delay's variation on the way back minus one half,
    /// within -0.5..=0.5 (chrony's `asymmetry`). `None` (the default):
    /// estimated from the measurements ([`AsymmetryEstimator`]); `Some(0.0)`
    /// is RFC 5905's offset.
    pub asymmetry: Option<f64>,
}

/// Which delay test refused a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum DelayTest {
    /// The delay is above [`DelayConfig::max_delay`].
    #[error("delay above max_delay")]
    MaxDelay,
    /// The delay is above [`DelayConfig::max_delay_ratio`] times the
    /// minimum.
    #[error("delay above max_delay_ratio times the minimum")]
    MaxDelayRatio,
    /// The delay's excess over the minimum is above
    /// [`DelayConfig::max_delay_dev_ratio`] jitters.
    #[error("delay excess above max_delay_dev_ratio jitters")]
    MaxDelayDevRatio,
}

impl DelayConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Delay`] when a limit is not a positive finite
    /// number, `max_delay_ratio` is below 1, `min_delay` is negative, or
    /// `asymmetry` is outside -0.5..=0.5.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
        let ok = positive(self.max_delay)
            && positive(self.max_delay_dev_ratio)
            && self
                .max_delay_ratio
                .is_none_or(|r| r.is_finite() && r >= 1.0)
            && self.min_delay.is_none_or(|d| d.is_finite() && d >= 0.0)
            && self.asymmetry.is_none_or(|a| (-0.5..=0.5).contains(&a));
        if ok { Ok(()) } else { Err(ConfigError::Delay) }
    }

    /// Whether any test is configured.
    #[must_use]
    pub const fn tests_anything(&self) -> bool {
        self.max_delay.is_some()
            || self.max_delay_ratio.is_some()
            || self.max_delay_dev_ratio.is_some()
    }

    /// The minimum delay the tests and the correction use: `min_delay` if
    /// configured, else the least of `measured` (the filter's delays) and
    /// `delay` (the new measurement's).
    #[must_use]
    pub fn reference_delay(&self, measured: Option<f64>, delay: f64) -> f64 {
        self.min_delay
            .unwrap_or_else(|| measured.map_or(delay, |m| m.min(delay)))
    }

    /// Applies the tests to a measurement of round-trip `delay`, given the
    /// minimum from [`reference_delay`](Self::reference_delay) and the
    /// source's jitter (`None` before its second sample).
    ///
    /// # Errors
    ///
    /// The first [`DelayTest`] that fails.
    pub fn check(&self, delay: f64, min_delay: f64, jitter: Option<f64>) -> Result<(), DelayTest> {
        if self.max_delay.is_some_and(|max| delay > max) {
            return Err(DelayTest::MaxDelay);
        }
        if self
            .max_delay_ratio
            .is_some_and(|ratio| min_delay > 0.0 && delay > ratio * min_delay)
        {
            return Err(DelayTest::MaxDelayRatio);
        }
        if let (Some(ratio), Some(jitter)) = (self.max_delay_dev_ratio, jitter)
            && delay - min_delay > ratio * jitter
        {
            return Err(DelayTest::MaxDelayDevRatio);
        }
        Ok(())
    }

    /// The asymmetry in use: the configured one, else `estimator`'s.
    #[must_use]
    pub fn asymmetry(&self, estimator: &AsymmetryEstimator) -> f64 {
        self.asymmetry.unwrap_or_else(|| estimator.estimate())
    }

    /// The offset corrected for an `asymmetry` of the delay above
    /// `min_delay` (see [`DelayConfig`](DelayConfig#the-offset-correction)).
    #[must_use]
    pub fn corrected_offset(offset: f64, delay: f64, min_delay: f64, asymmetry: f64) -> f64 {
        offset + asymmetry * (delay - min_delay).max(0.0)
    }
}

/// How many recent measurements of a source the asymmetry estimate
/// looks at: 32, [`DELAY_HISTORY`](crate::DELAY_HISTORY)'s span.
pub const ASYMMETRY_HISTORY: usize = 32;

/// Fewest measurements from which the asymmetry is estimated: 8.
pub const ASYMMETRY_MIN_SAMPLES: usize = 8;

/// The asymmetry of a source's path, estimated from its recent
/// measurements when [`DelayConfig::asymmetry`] is not configured (as
/// chronyd does by default).
///
/// With a share `1/2 + a` of the queueing on the way back, a measurement's
/// offset is off by `-a` times its delay above the minimum (see the
/// [`DelayConfig`](DelayConfig#the-offset-correction)): offsets fall as
/// delays rise.
/// The estimate is the least-squares slope of the offset on the delay,
/// taken over the differences of consecutive measurements so that the
/// clock's slow drift between them cancels, with its sign turned, and
/// shrunk by the share of the offsets' variance that the delays explain
/// (the fit's R^2), within -0.5..=0.5. Where nearly all the queueing is on
/// one path the fit is nearly exact and the slope is used whole (0.47
/// asymmetry: R^2 about 0.99); on a symmetric path the slope of 32
/// exponential queueing delays still scatters by about 0.17 around zero,
/// and explains little: shrunk, it scatters by about 0.05, so that the
/// correction adds back only a small share of each sample's queueing.
/// (A significance test on the slope does not serve: with exponential
/// queueing its residuals grow with the delay, and a three-standard-error
/// test still passes symmetric paths one time in eight.)
#[derive(Clone, Debug, PartialEq)]
pub struct AsymmetryEstimator {
    /// (offset on the source's timescale, delay), oldest overwritten.
    pairs: [(f64, f64); ASYMMETRY_HISTORY],
    len: usize,
    next: usize,
}

impl Default for AsymmetryEstimator {
    fn default() -> Self {
        Self::new()
    }
}

impl AsymmetryEstimator {
    /// No measurements.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            pairs: [(0.0, 0.0); ASYMMETRY_HISTORY],
            len: 0,
            next: 0,
        }
    }

    /// Forgets every measurement (after a step or a jump of the clocks).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Adds a measurement: its uncorrected `offset` on a timescale that
    /// the caller's own slews do not move, and its `delay`. Non-finite
    /// values are ignored.
    pub fn push(&mut self, offset: f64, delay: f64) {
        if !(offset.is_finite() && delay.is_finite()) {
            return;
        }
        if let Some(slot) = self.pairs.get_mut(self.next) {
            *slot = (offset, delay);
        }
        self.next = (self.next + 1) % ASYMMETRY_HISTORY;
        self.len = (self.len + 1).min(ASYMMETRY_HISTORY);
    }

    /// The estimated asymmetry (0 before [`ASYMMETRY_MIN_SAMPLES`]).
    #[must_use]
    pub fn estimate(&self) -> f64 {
        if self.len < ASYMMETRY_MIN_SAMPLES {
            return 0.0;
        }
        let start = (self.next + ASYMMETRY_HISTORY - self.len) % ASYMMETRY_HISTORY;
        let ordered = (0..self.len).filter_map(|i| self.pairs.get((start + i) % ASYMMETRY_HISTORY));
        let mut previous: Option<(f64, f64)> = None;
        let (mut sxx, mut sxy, mut syy, mut m) = (0.0, 0.0, 0.0, 0.0_f64);
        for &(offset, delay) in ordered {
            if let Some((last_offset, last_delay)) = previous {
                let dx = delay - last_delay;
                let dy = offset - last_offset;
                sxx += dx * dx;
                sxy += dx * dy;
                syy += dy * dy;
                m += 1.0;
            }
            previous = Some((offset, delay));
        }
        if sxx <= 0.0 || m < 2.0 {
            return 0.0;
        }
        if syy <= 0.0 {
            return 0.0;
        }
        let slope = sxy / sxx;
        let explained = sxy * sxy / (sxx * syy);
        (-slope * explained).clamp(-0.5, 0.5)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact values: copied inputs and minima")]
mod tests {
    use super::*;

    #[test]
    fn default_tests_and_corrects_nothing() {
        let config = DelayConfig::default();
        assert!(config.validate().is_ok());
        assert!(!config.tests_anything());
        assert_eq!(config.check(10.0, 1e-6, Some(1e-9)), Ok(()));
        assert_eq!(config.asymmetry(&AsymmetryEstimator::new()), 0.0);
    }

    #[test]
    fn bad_fields_are_refused() {
        let bad = [
            DelayConfig {
                max_delay: Some(0.0),
                ..DelayConfig::default()
            },
            DelayConfig {
                max_delay: Some(f64::NAN),
                ..DelayConfig::default()
            },
            DelayConfig {
                max_delay_ratio: Some(0.9),
                ..DelayConfig::default()
            },
            DelayConfig {
                max_delay_dev_ratio: Some(-1.0),
                ..DelayConfig::default()
            },
            DelayConfig {
                min_delay: Some(-1e-3),
                ..DelayConfig::default()
            },
            DelayConfig {
                asymmetry: Some(0.51),
                ..DelayConfig::default()
            },
            DelayConfig {
                asymmetry: Some(f64::NAN),
                ..DelayConfig::default()
            },
        ];
        for config in bad {
            assert_eq!(config.validate(), Err(ConfigError::Delay), "{config:?}");
        }
    }

    #[test]
    fn each_test_refuses_what_it_names() {
        let config = DelayConfig {
            max_delay: Some(3e-5),
            max_delay_ratio: Some(2.0),
            max_delay_dev_ratio: Some(2.0),
            ..DelayConfig::default()
        };
        assert_eq!(config.check(3.1e-5, 1e-5, None), Err(DelayTest::MaxDelay));
        assert_eq!(
            config.check(2.5e-5, 1.2e-5, None),
            Err(DelayTest::MaxDelayRatio)
        );
        assert_eq!(
            config.check(2.2e-5, 2e-5, Some(0.9e-6)),
            Err(DelayTest::MaxDelayDevRatio)
        );
        assert_eq!(config.check(2.2e-5, 2e-5, Some(1.1e-6)), Ok(()));
        // Without a jitter the deviation test waits.
        assert_eq!(config.check(2.9e-5, 2e-5, None), Ok(()));
        // The exact limits pass.
        assert_eq!(config.check(3e-5, 1.5e-5, Some(7.5e-6)), Ok(()));
    }

    #[test]
    fn reference_delay_prefers_the_configured_minimum() {
        let measured = DelayConfig::default();
        assert_eq!(measured.reference_delay(None, 4e-4), 4e-4);
        assert_eq!(measured.reference_delay(Some(3e-4), 4e-4), 3e-4);
        assert_eq!(measured.reference_delay(Some(3e-4), 2e-4), 2e-4);
        let fixed = DelayConfig {
            min_delay: Some(2e-4),
            ..DelayConfig::default()
        };
        assert_eq!(fixed.reference_delay(Some(1e-4), 5e-5), 2e-4);
    }

    #[test]
    fn correction_removes_the_reply_path_queueing() {
        // True offset 0; 1 ms of queueing, all of it on the way back: T4
        // is 1 ms late, the measured offset -0.5 ms, the delay 1 ms above
        // the 0.2 ms floor.
        let corrected = DelayConfig::corrected_offset(-5e-4, 1.2e-3, 2e-4, 0.5);
        assert!(corrected.abs() < 1e-15, "{corrected}");
        // The same queueing on the way out reads +0.5 ms.
        let corrected = DelayConfig::corrected_offset(5e-4, 1.2e-3, 2e-4, -0.5);
        assert!(corrected.abs() < 1e-15, "{corrected}");
        // A delay under the configured floor corrects nothing.
        assert_eq!(DelayConfig::corrected_offset(1e-4, 1e-4, 2e-4, -0.5), 1e-4);
        // A configured asymmetry wins over the estimate.
        let fixed = DelayConfig {
            asymmetry: Some(0.25),
            ..DelayConfig::default()
        };
        assert_eq!(fixed.asymmetry(&AsymmetryEstimator::new()), 0.25);
    }

    /// A deterministic stand-in for exponential queueing: -ln of a
    /// uniform from a small linear congruential generator.
    fn queueing(state: &mut u64, mean: f64) -> f64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let uniform = ((*state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -mean * libm::log(uniform)
    }

    /// An estimator fed 40 measurements from generator `seed`: queueing
    /// of mean `back` on the way back and `out` on the way out above a
    /// 0.2 ms floor, on a clock drifting by `drift` per measurement.
    fn fed(seed: u64, back: f64, out: f64, drift: f64) -> AsymmetryEstimator {
        let mut state = seed;
        let mut estimator = AsymmetryEstimator::new();
        for i in 0..40 {
            let back = queueing(&mut state, back);
            let out = queueing(&mut state, out);
            let offset = f64::from(i) * drift + (out - back) / 2.0;
            estimator.push(offset, 2e-4 + out + back);
        }
        estimator
    }

    #[test]
    fn the_estimate_finds_reply_path_queueing_and_ignores_symmetric_noise() {
        assert_eq!(AsymmetryEstimator::new().estimate(), 0.0);
        // 97 % of 1 ms of queueing on the way back (asymmetry 0.47), on a
        // clock drifting by 1 us per sample.
        let mut estimator = fed(7, 0.97e-3, 0.03e-3, 1e-6);
        let a = estimator.estimate();
        assert!((a - 0.47).abs() < 0.05, "{a}");
        // Symmetric queueing: the shrunk estimate stays near zero.
        let mut sum = 0.0;
        for seed in 1..50 {
            let a = fed(seed, 0.5e-3, 0.5e-3, 0.0).estimate();
            assert!(a.abs() < 0.4, "seed {seed}: {a}");
            sum += a.abs();
        }
        assert!(sum / 49.0 < 0.08, "mean |a| {}", sum / 49.0);
        // NaN ignored; forgotten on reset.
        let before = estimator.clone();
        estimator.push(f64::NAN, 1.0);
        assert_eq!(estimator, before);
        estimator.reset();
        assert_eq!(estimator, AsymmetryEstimator::new());
    }
}

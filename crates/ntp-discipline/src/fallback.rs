//! Fallback drifts: long-term averages of the frequency correction, over
//! intervals of 2^i seconds, that the clock falls back to when its
//! updates stop (chrony's `fallbackdrift`; RFC 5905 has no such rule: its
//! clock keeps the last frequency for as long as the sources are gone,
//! section 11.3).
//!
//! Why: an oscillator's frequency moves with the temperature, daily and
//! weekly. The frequency the discipline knows at the moment its sources
//! go away is the one of that moment; hours later, the average over the
//! last hours is the better guess, and days later the average over the
//! last days. Each average `i` (from [`FallbackDrift::min`] to
//! [`FallbackDrift::max`]) is a running mean of the settled frequency
//! estimates, each weighted by the interval it stood for, over the last
//! 2^i seconds: a plain mean until it has seen 2^i seconds of estimates,
//! then an exponential one whose time constant is 2^i seconds. Once the
//! last update is 2^i seconds old, the clock runs at average `i` (the
//! longest one due, at most [`FallbackDrift::max`]); the next accepted
//! update ends the fallback.

use crate::config::FallbackDrift;

/// Number of averages kept: exponents 0..=[`FALLBACK_DRIFT_MAX_EXPONENT`].
const SLOTS: usize = 31;

/// Largest exponent of a fallback interval: 2^30 s, 34 years.
pub const FALLBACK_DRIFT_MAX_EXPONENT: u8 = 30;

const _: () = assert!(SLOTS == FALLBACK_DRIFT_MAX_EXPONENT as usize + 1);

/// The exponents of `rule`'s averages, within the slots kept.
fn exponents(rule: FallbackDrift) -> core::ops::RangeInclusive<u8> {
    rule.min..=rule.max.min(FALLBACK_DRIFT_MAX_EXPONENT)
}

/// One running mean of the frequency.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Average {
    /// Mean frequency correction, s/s.
    frequency: f64,
    /// Seconds of estimates it holds, at most its interval.
    span: f64,
}

/// The averages of one discipline (fixed size: nothing is allocated).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FallbackDrifts {
    averages: [Average; SLOTS],
    /// The exponent whose average the clock runs at now, if any.
    active: Option<u8>,
}

impl FallbackDrifts {
    pub(crate) const fn new() -> Self {
        Self {
            averages: [Average {
                frequency: 0.0,
                span: 0.0,
            }; SLOTS],
            active: None,
        }
    }

    /// Adds a frequency estimate that stood for `interval` seconds to the
    /// averages of `rule`, and ends any fallback (an update came).
    pub(crate) fn record(&mut self, rule: FallbackDrift, frequency: f64, interval: f64) {
        self.active = None;
        if !(interval > 0.0 && interval.is_finite() && frequency.is_finite()) {
            return;
        }
        for exponent in exponents(rule) {
            let length = libm::exp2(f64::from(exponent));
            if let Some(average) = self.averages.get_mut(usize::from(exponent)) {
                average.span = (average.span + interval).min(length);
                let weight = (interval / average.span).min(1.0);
                average.frequency += weight * (frequency - average.frequency);
            }
        }
    }

    /// The fallback due `since` seconds after the last update: the
    /// exponent and the frequency of the longest interval that has passed
    /// (at most `rule.max`) whose average holds estimates, or of the
    /// longest shorter one that does. `None` before 2^`min` seconds or
    /// without any estimate.
    pub(crate) fn due(&self, rule: FallbackDrift, since: f64) -> Option<(u8, f64)> {
        exponents(rule)
            .rev()
            .filter(|exponent| since >= libm::exp2(f64::from(*exponent)))
            .find_map(|exponent| {
                let average = self.averages.get(usize::from(exponent))?;
                (average.span > 0.0).then_some((exponent, average.frequency))
            })
    }

    /// Seconds after the last update at which the next fallback interval
    /// begins, counted from `since`; `None` past the last one.
    pub(crate) fn next_due(rule: FallbackDrift, since: f64) -> Option<f64> {
        exponents(rule)
            .map(|exponent| libm::exp2(f64::from(exponent)))
            .find(|start| *start > since)
    }

    /// The exponent of the fallback in force.
    pub(crate) const fn active(&self) -> Option<u8> {
        self.active
    }

    /// Marks the fallback of `exponent` as in force.
    pub(crate) fn activate(&mut self, exponent: u8) {
        self.active = Some(exponent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: FallbackDrift = FallbackDrift { min: 2, max: 4 };

    #[test]
    fn a_plain_mean_until_full_then_exponential() {
        let mut drifts = FallbackDrifts::new();
        // 2 s at 10 ppm, then 2 s at 20 ppm: the 4 s average (exponent 2)
        // is their mean, the 16 s one too (not full yet).
        drifts.record(RULE, 10e-6, 2.0);
        drifts.record(RULE, 20e-6, 2.0);
        let (_, four) = drifts.due(RULE, 4.0).unwrap();
        assert!((four - 15e-6).abs() < 1e-12, "{four}");
        let (exponent, sixteen) = drifts.due(RULE, 16.0).unwrap();
        assert_eq!(exponent, 4);
        assert!((sixteen - 15e-6).abs() < 1e-12);
        // Full: 2 more seconds at 30 ppm weigh 2/4 in the 4 s average.
        drifts.record(RULE, 30e-6, 2.0);
        let (_, four) = drifts.due(RULE, 4.0).unwrap();
        assert!((four - 22.5e-6).abs() < 1e-12, "{four}");
    }

    #[test]
    fn the_longest_interval_passed_applies() {
        let mut drifts = FallbackDrifts::new();
        assert_eq!(drifts.due(RULE, 100.0), None, "no estimate yet");
        drifts.record(RULE, 1e-6, 1.0);
        assert_eq!(drifts.due(RULE, 3.9), None);
        assert_eq!(drifts.due(RULE, 4.0).map(|d| d.0), Some(2));
        assert_eq!(drifts.due(RULE, 15.0).map(|d| d.0), Some(3));
        assert_eq!(drifts.due(RULE, 1e6).map(|d| d.0), Some(4));
        assert_eq!(FallbackDrifts::next_due(RULE, 0.0), Some(4.0));
        assert_eq!(FallbackDrifts::next_due(RULE, 4.0), Some(8.0));
        assert_eq!(FallbackDrifts::next_due(RULE, 16.0), None);
    }

    #[test]
    fn an_update_ends_the_fallback_and_bad_input_changes_nothing() {
        let mut drifts = FallbackDrifts::new();
        drifts.record(RULE, 1e-6, 1.0);
        drifts.activate(3);
        assert_eq!(drifts.active(), Some(3));
        let before = drifts.averages;
        drifts.record(RULE, f64::NAN, 1.0);
        drifts.record(RULE, 1e-6, f64::INFINITY);
        drifts.record(RULE, 1e-6, -1.0);
        assert_eq!(drifts.active(), None);
        assert_eq!(drifts.averages, before);
    }
}

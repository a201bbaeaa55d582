//! How far a source's samples scatter about the line fitted through them:
//! the jitter that chrony's `maxjitter` limits
//! ([`SystemConfig::max_jitter`](crate::SystemConfig::max_jitter)).
//!
//! RFC 5905's peer jitter (section 10) is the RMS difference of the clock
//! filter's offsets from the chosen one. It cannot tell noise from drift:
//! an oscillator 5 % off (chrony's test 003) moves the offset 3 s between
//! two 64 s polls before the discipline has learnt it, which reads as 3 s
//! of jitter. chrony's sources are judged instead by the standard
//! deviation of their samples about the regression line of offset over
//! time. Here the offsets are first taken back to the free oscillator,
//! adding everything the discipline did to the clock by the sample's time
//! ([`ntp_discipline::Discipline::correction_at`]): its slews, frequency
//! corrections and steps then leave no bend in the line, which is the
//! oscillator's own frequency error, and what scatters about it is the
//! source's noise, its wander over the fit, or its lies.

/// chrony's default `maxjitter`, 1 s: a source whose samples scatter more
/// than this about their line is not selected
/// ([`SystemConfig::max_jitter`](crate::SystemConfig::max_jitter)). No
/// RFC 5905 counterpart; its distance threshold takes the peer jitter in
/// (Appendix A.5.5.2), which drift inflates (see the module's text).
pub const MAX_JITTER: f64 = 1.0;

/// Samples in the fit: the clock filter's register (RFC 5905, section 10,
/// eight stages), so that the fit and the filter describe the same span.
pub const FIT_SAMPLES: usize = 8;

/// Fewest samples from which the scatter is known: a line through two
/// points fits them exactly, the third is the first that can miss it
/// (chrony's regression wants three samples alike).
pub const MIN_FIT_SAMPLES: usize = 3;

/// The latest [`FIT_SAMPLES`] samples of one source: (epoch in seconds of
/// [`Instant`](crate::Instant), offset of the free oscillator).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SampleLine {
    points: [(f64, f64); FIT_SAMPLES],
    len: usize,
    next: usize,
}

impl SampleLine {
    pub(crate) const fn new() -> Self {
        Self {
            points: [(0.0, 0.0); FIT_SAMPLES],
            len: 0,
            next: 0,
        }
    }

    /// Adds a sample; the oldest goes when full. Non-finite values are
    /// dropped.
    pub(crate) fn push(&mut self, epoch: f64, offset: f64) {
        if !(epoch.is_finite() && offset.is_finite()) {
            return;
        }
        if let Some(slot) = self.points.get_mut(self.next) {
            *slot = (epoch, offset);
        }
        self.next = (self.next + 1) % FIT_SAMPLES;
        self.len = (self.len + 1).min(FIT_SAMPLES);
    }

    /// Forgets the samples before `epoch`.
    pub(crate) fn forget_before(&mut self, epoch: f64) {
        let mut kept = Self::new();
        for index in 0..self.len {
            // Oldest first, so that `kept` keeps the order.
            let at = (self.next + FIT_SAMPLES - self.len + index) % FIT_SAMPLES;
            if let Some(&(t, offset)) = self.points.get(at) {
                if t >= epoch {
                    kept.push(t, offset);
                }
            }
        }
        *self = kept;
    }

    /// Number of samples held.
    #[cfg(test)]
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// The standard deviation of the samples about their least-squares
    /// line of offset over epoch, with the two degrees of freedom the line
    /// takes (`sqrt(sum of squared residuals / (n - 2))`), seconds; `None`
    /// below [`MIN_FIT_SAMPLES`]. Samples at one epoch fit a level line.
    pub(crate) fn jitter(&self) -> Option<f64> {
        if self.len < MIN_FIT_SAMPLES {
            return None;
        }
        let points = self.points.get(..self.len)?;
        #[allow(clippy::cast_precision_loss, reason = "at most FIT_SAMPLES = 8")]
        let n = self.len as f64;
        let (sum_t, sum_y) = points
            .iter()
            .fold((0.0, 0.0), |(st, sy), &(t, y)| (st + t, sy + y));
        let (mean_t, mean_y) = (sum_t / n, sum_y / n);
        let (sxx, sxy) = points.iter().fold((0.0, 0.0), |(sxx, sxy), &(t, y)| {
            let dt = t - mean_t;
            (sxx + dt * dt, sxy + dt * (y - mean_y))
        });
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let squares: f64 = points
            .iter()
            .map(|&(t, y)| {
                let residual = y - mean_y - slope * (t - mean_t);
                residual * residual
            })
            .sum();
        let jitter = libm::sqrt(squares / (n - 2.0));
        jitter.is_finite().then_some(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn line(points: &[(f64, f64)]) -> SampleLine {
        let mut line = SampleLine::new();
        for &(t, y) in points {
            line.push(t, y);
        }
        line
    }

    #[test]
    fn a_drift_is_not_jitter() {
        // 5 % off, 64 s polls: 3.2 s a poll, and nothing scatters.
        let drift: Vec<_> = (0..8)
            .map(|i| (64.0 * f64::from(i), 0.05 * 64.0 * f64::from(i)))
            .collect();
        assert!(line(&drift).jitter().unwrap() < 1e-9);
    }

    #[test]
    fn known_residuals_give_the_textbook_deviation() {
        // y = t plus residuals +1, -2, +1 about the line (the fit keeps
        // them: they sum to zero and do not correlate with t).
        let fitted = line(&[(0.0, 1.0), (1.0, -1.0), (2.0, 3.0)]);
        // sqrt((1 + 4 + 1) / (3 - 2))
        assert!((fitted.jitter().unwrap() - 6.0_f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn two_samples_are_not_enough() {
        assert_eq!(line(&[(0.0, 5.0), (64.0, -5.0)]).jitter(), None);
        assert_eq!(line(&[(0.0, f64::NAN), (1.0, 0.0), (2.0, 0.0)]).len(), 2);
    }

    #[test]
    fn a_server_swinging_a_minute_is_all_jitter() {
        // chrony's 009 case 7: the server's clock climbs 1 s a second for
        // 64 s and falls back as fast; polled every 64 s plus a bit.
        let swing = |t: f64| {
            let phase = t % 128.0;
            if phase < 64.0 { phase } else { 128.0 - phase }
        };
        let samples: Vec<_> = (0..8)
            .map(|i| {
                let t = 67.0 * f64::from(i);
                (t, swing(t))
            })
            .collect();
        assert!(line(&samples).jitter().unwrap() > 1.0);
    }

    #[test]
    fn forgetting_keeps_the_newest_in_order() {
        let mut fitted = line(
            &(0..12)
                .map(|i| (f64::from(i), f64::from(i % 2)))
                .collect::<Vec<_>>(),
        );
        assert_eq!(fitted.len(), FIT_SAMPLES);
        fitted.forget_before(9.0);
        assert_eq!(fitted.len(), 3);
        let jitter = fitted.jitter().unwrap();
        // 9, 10, 11 -> 1, 0, 1: residuals 1/3, -2/3, 1/3 about y = 2/3.
        assert!((jitter - (6.0_f64 / 9.0).sqrt()).abs() < 1e-12, "{jitter}");
        fitted.forget_before(11.0);
        assert_eq!(fitted.jitter(), None);
    }

    proptest! {
        /// Any line plus noise bounded by `noise` scatters by at most
        /// what that noise allows, whatever its slope and offset.
        #[test]
        fn a_line_plus_bounded_noise_scatters_little(
            slope in -0.1_f64..0.1,
            start in -1e3_f64..1e3,
            noise in proptest::collection::vec(-1e-3_f64..1e-3, 3..20),
        ) {
            let mut fitted = SampleLine::new();
            for (i, e) in noise.iter().enumerate() {
                let t = 1e5 + 64.0 * i as f64;
                fitted.push(t, start + slope * t + e);
            }
            let jitter = fitted.jitter().unwrap();
            // The fitted line leaves no more squared residual than the
            // true one, whose residuals are the noise: at most
            // n (1e-3)^2 over n - 2 degrees of freedom.
            let n = fitted.len() as f64;
            prop_assert!(jitter <= 1e-3 * (n / (n - 2.0)).sqrt() + 1e-9, "{}", jitter);
        }
    }
}

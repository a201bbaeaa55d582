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
pub const FIT_SAMPLES: usize = 16;

/// Fewest samples from which the scatter is known: a line through two
/// points fits them exactly, the third is the first that can miss it
/// (chrony's regression wants three samples alike).
pub const MIN_FIT_SAMPLES: usize = 3;

/// The latest [`FIT_SAMPLES`] samples of one source: (epoch in seconds of
/// [`Instant`](crate::Instant), offset of the free oscillator), and the
/// epoch from which the server's clock is known to have jumped, if it
/// did within them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SampleLine {
    points: [(f64, f64); FIT_SAMPLES],
    len: usize,
    next: usize,
    jump_at: Option<f64>,
}

impl SampleLine {
    pub(crate) const fn new() -> Self {
        Self {
            points: [(0.0, 0.0); FIT_SAMPLES],
            len: 0,
            next: 0,
            jump_at: None,
        }
    }

    /// Adds a sample; the oldest goes when full. A sample at the newest
    /// one's epoch replaces it (a new measurement of the same exchange:
    /// see [`ClockFilter::remeasure`](ntp_select::ClockFilter::remeasure)).
    /// Non-finite values are dropped.
    pub(crate) fn push(&mut self, epoch: f64, offset: f64) {
        if !(epoch.is_finite() && offset.is_finite()) {
            return;
        }
        let newest = (self.next + FIT_SAMPLES - 1) % FIT_SAMPLES;
        if self.len > 0 {
            if let Some(point) = self
                .points
                .get_mut(newest)
                .filter(|point| point.0.total_cmp(&epoch).is_eq())
            {
                point.1 = offset;
                return;
            }
        }
        if let Some(slot) = self.points.get_mut(self.next) {
            *slot = (epoch, offset);
        }
        self.next = (self.next + 1) % FIT_SAMPLES;
        self.len = (self.len + 1).min(FIT_SAMPLES);
    }

    /// Notes that the server's clock jumped at `epoch` (the first sample
    /// of the new timescale, confirmed by the next): the fit then gives
    /// the samples from `epoch` on an intercept of their own, so that one
    /// jump is not scatter. The samples before it are kept, not
    /// forgotten: a clock that jumps back and forth (chrony's test 009,
    /// case 7) would otherwise pass for a steady one whenever two
    /// consecutive samples happen to agree, with nothing left to show its
    /// swings. Only the latest jump is noted: a second one within the fit
    /// is scatter.
    pub(crate) fn jumped_at(&mut self, epoch: f64) {
        if epoch.is_finite() {
            self.jump_at = Some(epoch);
        }
    }

    /// Number of samples held.
    #[cfg(test)]
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// The standard deviation of the samples about their least-squares
    /// line of offset over epoch (`sqrt(sum of squared residuals /
    /// degrees of freedom)`), seconds. After a jump ([`jumped_at`]) the
    /// samples before and from it share the slope, the oscillator's, and
    /// have an intercept each, which takes a third degree of freedom.
    /// `None` while no degree of freedom is left (below
    /// [`MIN_FIT_SAMPLES`] samples without a jump, or one more with one).
    /// Samples at one epoch fit a level line.
    ///
    /// [`jumped_at`]: Self::jumped_at
    pub(crate) fn jitter(&self) -> Option<f64> {
        let points = self.points.get(..self.len)?;
        let after = |t: f64| self.jump_at.is_some_and(|jump| t >= jump);
        // (count, sum of t, sum of y) before the jump and from it.
        let mut groups = [(0.0_f64, 0.0_f64, 0.0_f64); 2];
        for &(t, y) in points {
            if let Some(group) = groups.get_mut(usize::from(after(t))) {
                *group = (group.0 + 1.0, group.1 + t, group.2 + y);
            }
        }
        let means = groups.map(|(n, st, sy)| {
            if n > 0.0 {
                (st / n, sy / n)
            } else {
                (0.0, 0.0)
            }
        });
        let centred = |t: f64, y: f64| {
            let (mean_t, mean_y) = means
                .get(usize::from(after(t)))
                .copied()
                .unwrap_or_default();
            (t - mean_t, y - mean_y)
        };
        let (sxx, sxy) = points.iter().fold((0.0, 0.0), |(sxx, sxy), &(t, y)| {
            let (dt, dy) = centred(t, y);
            (sxx + dt * dt, sxy + dt * dy)
        });
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let squares: f64 = points
            .iter()
            .map(|&(t, y)| {
                let (dt, dy) = centred(t, y);
                let residual = dy - slope * dt;
                residual * residual
            })
            .sum();
        let intercepts = groups.iter().filter(|group| group.0 > 0.0).count();
        #[allow(clippy::cast_precision_loss, reason = "at most FIT_SAMPLES = 8")]
        let freedom = self.len as f64 - 1.0 - intercepts as f64;
        if freedom < 1.0 {
            return None;
        }
        let jitter = libm::sqrt(squares / freedom);
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
    fn a_second_sample_at_one_epoch_replaces_the_first() {
        let exact = line(&[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]);
        // The last point measured again, on the line this time: the same
        // three points, no scatter.
        let mut remeasured = line(&[(0.0, 0.0), (1.0, 1.0), (2.0, 2.5)]);
        remeasured.push(2.0, 2.0);
        assert_eq!(remeasured.len(), 3);
        assert_eq!(remeasured.jitter(), exact.jitter());
        assert!(remeasured.jitter().is_some_and(|jitter| jitter < 1e-12));
    }

    /// Eight samples from `start`, `interval` apart, of chrony's 009
    /// case 7 server: its clock climbs 1 s a second for 64 s and falls
    /// back as fast.
    fn swinging(start: f64, interval: f64) -> Vec<(f64, f64)> {
        (0..8)
            .map(|i| {
                let t = start + interval * f64::from(i);
                let phase = t % 128.0;
                (t, if phase < 64.0 { phase } else { 128.0 - phase })
            })
            .collect()
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
        let samples = swinging(0.0, 67.0);
        assert!(line(&samples).jitter().unwrap() > 1.0);
    }

    #[test]
    fn one_jump_is_not_scatter() {
        // A line, the server's clock stepped by 5 s from t = 5 on.
        let mut fitted = line(
            &(0..8)
                .map(|i| {
                    let t = f64::from(i);
                    (t, 0.01 * t + if i >= 5 { 5.0 } else { 0.0 })
                })
                .collect::<Vec<_>>(),
        );
        assert!(fitted.jitter().unwrap() > 1.0);
        fitted.jumped_at(5.0);
        assert!(fitted.jitter().unwrap() < 1e-9);
        // Known residuals after the jump: 9, 10, 11 -> 1, 0, 1 about
        // their own level, the level line before it fits exactly.
        let mut stepped = line(&[(0.0, 0.0), (1.0, 0.0), (9.0, 1.0), (10.0, 0.0), (11.0, 1.0)]);
        stepped.jumped_at(9.0);
        // Pooled slope 0; residuals 1/3, -2/3, 1/3 over 5 - 3 degrees.
        let jitter = stepped.jitter().unwrap();
        assert!(
            (jitter - (6.0_f64 / 9.0 / 2.0).sqrt()).abs() < 1e-12,
            "{jitter}"
        );
    }

    #[test]
    fn a_jump_takes_a_degree_of_freedom() {
        let mut fitted = line(&[(0.0, 0.0), (1.0, 0.0), (2.0, 3.0)]);
        assert!(fitted.jitter().is_some());
        fitted.jumped_at(2.0);
        assert_eq!(fitted.jitter(), None);
        // A jump older than every sample changes nothing.
        let mut old = line(&[(10.0, 1.0), (11.0, -1.0), (12.0, 1.0)]);
        let before = old.jitter().unwrap();
        old.jumped_at(3.0);
        assert!((old.jitter().unwrap() - before).abs() < 1e-12);
    }

    #[test]
    fn a_swinging_clock_stays_jittery_where_two_samples_agree() {
        // chrony's 009 case 7 polled every 64.5 s: the samples alternate
        // and close in on each other, then two agree and the filter
        // restarts on them. The fit still holds the swings before.
        let samples = swinging(7_068.75, 64.5);
        // 28.75, 34.75, 29.75, 33.75, 30.75, 32.75, then 31.75 twice.
        assert!((samples[6].1 - samples[7].1).abs() < 1e-9);
        assert!((samples[5].1 - samples[6].1).abs() > ntp_discipline::STEPT);
        let mut fitted = line(&samples);
        let (jump, _) = samples[6];
        fitted.jumped_at(jump);
        assert!(fitted.jitter().unwrap() > 1.0);
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

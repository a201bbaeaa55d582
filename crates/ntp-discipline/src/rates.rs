//! The rate corrections the caller applied, segment by segment, so that
//! the [`Algorithm::Kalman`](crate::Algorithm::Kalman) estimator can take
//! a sample measured several rate changes ago (a reference clock's poll
//! sample is timed by the mean epoch of its samples, seconds back; a
//! network sample chosen by the clock filter, minutes back) with the
//! corrections since then counted exactly.

use ntp_proto::NtpDuration;

/// Past segments kept: a rate changes at each update and at the end of
/// its slew, so sixteen cover eight updates, more than any sample's age
/// spans but the backlog before the first update (when the rate was
/// constant anyway).
const RATE_HISTORY: usize = 16;

/// The rate segments, oldest first, before the one in force.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateHistory {
    /// (process time the segment began, rate in s/s).
    segments: [(NtpDuration, f64); RATE_HISTORY],
    len: usize,
}

impl RateHistory {
    pub(crate) const fn new() -> Self {
        Self {
            segments: [(NtpDuration::ZERO, 0.0); RATE_HISTORY],
            len: 0,
        }
    }

    /// Records that `rate` held from `start` until the segment now
    /// beginning; the oldest segment goes when the history is full.
    pub(crate) fn push(&mut self, start: NtpDuration, rate: f64) {
        if self.len == RATE_HISTORY {
            self.segments.rotate_left(1);
            self.len -= 1;
        }
        if let Some(slot) = self.segments.get_mut(self.len) {
            *slot = (start, rate);
            self.len += 1;
        }
    }

    /// The rate-adjusted time (the integral of `1 / (1 + r)`) between
    /// process times `from` and `t`, and the correction applied over it
    /// (the integral of `r / (1 + r)`), given that `rate` has held since
    /// `current_start`. Before the oldest segment kept, its rate is taken
    /// to have held.
    pub(crate) fn adjusted_since(
        &self,
        from: NtpDuration,
        t: NtpDuration,
        current_start: NtpDuration,
        rate: f64,
    ) -> (f64, f64) {
        let mut tau = 0.0;
        let mut correction = 0.0;
        let mut add = |start: NtpDuration, end: NtpDuration, rate: f64| {
            // NtpDuration is signed: differences are clamped at zero.
            let seconds = end
                .saturating_sub(start.max(from))
                .to_seconds_f64()
                .max(0.0);
            let part = seconds / (1.0 + rate);
            tau += part;
            correction += rate * part;
        };
        add(current_start, t, rate);
        let mut end = current_start;
        let segments = self.segments.get(..self.len).unwrap_or(&[]);
        for &(start, rate) in segments.iter().rev() {
            if end <= from {
                break;
            }
            add(start, end, rate);
            end = start;
        }
        if end > from {
            let oldest = segments.first().map_or(rate, |&(_, rate)| rate);
            add(from, end, oldest);
        }
        (tau, correction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i32) -> NtpDuration {
        NtpDuration::from_seconds(seconds)
    }

    #[test]
    fn every_segment_since_the_sample_counts() {
        let mut history = RateHistory::new();
        // 10 ppm from 0 s, 1 % from 10 s, 20 ppm from 12 s; 30 ppm now,
        // since 20 s.
        history.push(at(0), 10e-6);
        history.push(at(10), 0.01);
        history.push(at(12), 20e-6);
        let (tau, correction) = history.adjusted_since(at(5), at(25), at(20), 30e-6);
        let expected_tau =
            5.0 / (1.0 + 10e-6) + 2.0 / 1.01 + 8.0 / (1.0 + 20e-6) + 5.0 / (1.0 + 30e-6);
        let expected_correction = 10e-6 * 5.0 / (1.0 + 10e-6)
            + 0.01 * 2.0 / 1.01
            + 20e-6 * 8.0 / (1.0 + 20e-6)
            + 30e-6 * 5.0 / (1.0 + 30e-6);
        assert!((tau - expected_tau).abs() < 1e-12, "{tau}");
        assert!(
            (correction - expected_correction).abs() < 1e-15,
            "{correction}"
        );
        // Within the current segment only.
        let (tau, correction) = history.adjusted_since(at(22), at(25), at(20), 30e-6);
        assert!((tau - 3.0 / (1.0 + 30e-6)).abs() < 1e-12);
        assert!((correction - 30e-6 * 3.0 / (1.0 + 30e-6)).abs() < 1e-15);
    }

    #[test]
    fn beyond_the_history_the_oldest_rate_holds() {
        let mut history = RateHistory::new();
        for i in 0..40 {
            history.push(at(i), 1e-6 * f64::from(i));
        }
        // Kept: the segments from 24 s to 40 s, one second each at i ppm;
        // before them the oldest, 24 ppm, holds.
        let (_, correction) = history.adjusted_since(at(20), at(40), at(40), 0.0);
        let kept: f64 = (24..40)
            .map(|i| {
                let rate = 1e-6 * f64::from(i);
                rate / (1.0 + rate)
            })
            .sum();
        let expected = kept + 24e-6 * 4.0 / (1.0 + 24e-6);
        assert!(
            (correction - expected).abs() < 1e-15,
            "{correction} {expected}"
        );
        // Without any history, the current rate.
        let empty = RateHistory::new();
        let (tau, correction) = empty.adjusted_since(at(0), at(10), at(5), 1e-3);
        assert!((tau - 10.0 / 1.001).abs() < 1e-12);
        assert!((correction - 1e-3 * 10.0 / 1.001).abs() < 1e-15);
    }
}

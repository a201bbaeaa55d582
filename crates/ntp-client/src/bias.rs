//! The steady offsets of sources from each other (`System::measure_biases`):
//! a source's bias, measured against the median of the surviving sources,
//! judged by the scatter of its recent measurements, and taken out of its
//! samples once it stands out of that scatter.

use crate::median::{Middle, middle};

/// How many surviving sources (tally `*`, `+`, `#` or `o`) a source's bias
/// is measured against: with fewer, the median is one of two sources or
/// the midpoint between them, which says nothing of which one is off.
pub(crate) const MIN_BIAS_SOURCES: usize = 3;

/// The weight of a new bias measurement in a source's [`BiasTrack`], once
/// it has seen eight: the memory of the clock filter's eight stages
/// (RFC 5905, section 10, NSTAGE).
pub(crate) const BIAS_TRACK_GAIN: f64 = 1.0 / 8.0;

/// How many bias measurements a source's [`BiasTrack`] needs before their
/// scatter is its bias's doubt: the spread of fewer is too unsure (the
/// same count as [`MIN_DELAY_SAMPLES`](crate::MIN_DELAY_SAMPLES) for
/// delays).
pub(crate) const MIN_BIAS_MEASUREMENTS: u32 = 4;

/// How many times its own doubt a source's bias must be before its samples
/// are corrected by it instead of merely doubted: three standard
/// deviations, the usual bound past which a difference is not noise.
pub(crate) const BIAS_SIGNIFICANCE: f64 = 3.0;

/// The history of a source's bias measurements: an exponentially weighted
/// mean and variance, each new measurement (a new filter output of the
/// source, or a new offset from the reference) weighted 1/n up to
/// [`BIAS_TRACK_GAIN`].
///
/// Their scatter is what the bias is judged by. The doubt of one
/// measurement is not: it holds the source's jitter (RFC 5905, section
/// 10), which holds the clock's own frequency error over the source's
/// poll, so that a frequency made wrong by uncorrected biases (hundreds
/// of ppm over 2 s polls: a millisecond of jitter) hides the very biases
/// that made it. Measured against each other every few hundred
/// milliseconds, the sources' offsets scatter by microseconds when they
/// are steady, and by as much as they are large when they are noise.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BiasTrack {
    /// The epoch of the source's filter output at the last measurement.
    epoch: f64,
    /// The last measurement, s.
    last: f64,
    /// How many measurements were recorded (saturating).
    count: u32,
    /// Their weighted mean, s.
    mean: f64,
    /// Their weighted variance, s².
    variance: f64,
}

impl BiasTrack {
    /// Records the bias `offset` measured on the filter output of `epoch`,
    /// unless it is the last measurement again (or not a finite number,
    /// which would spoil the mean for good).
    pub(crate) fn record(&mut self, epoch: f64, offset: f64) {
        if !offset.is_finite()
            || self.count > 0
                && self.epoch.to_bits() == epoch.to_bits()
                && self.last.to_bits() == offset.to_bits()
        {
            return;
        }
        self.epoch = epoch;
        self.last = offset;
        self.count = self.count.saturating_add(1);
        let gain = (1.0 / f64::from(self.count)).max(BIAS_TRACK_GAIN);
        let delta = offset - self.mean;
        self.mean += gain * delta;
        self.variance = (1.0 - gain) * (self.variance + gain * delta * delta);
    }

    /// The standard deviation of the recent measurements, once there are
    /// [`MIN_BIAS_MEASUREMENTS`].
    pub(crate) fn scatter(&self) -> Option<f64> {
        (self.count >= MIN_BIAS_MEASUREMENTS).then(|| libm::sqrt(self.variance.max(0.0)))
    }
}

/// A source's steady offset from the median of the surviving sources
/// (`System::measure_biases`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bias {
    /// The source's filter offset minus the survivors' median, s.
    pub(crate) offset: f64,
    /// Its standard uncertainty (`SourceSlot::measure_bias`), s.
    pub(crate) doubt: f64,
}

impl Bias {
    /// The bias of the reference itself: none, known exactly.
    pub(crate) const NONE: Self = Self {
        offset: 0.0,
        doubt: 0.0,
    };

    /// Whether the bias stands out of its doubt
    /// ([`BIAS_SIGNIFICANCE`]).
    pub(crate) fn significant(self) -> bool {
        self.offset.abs() > BIAS_SIGNIFICANCE * self.doubt
    }
}

/// A source compared in `System::measure_biases`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BiasEntry {
    /// Its filter offset, s.
    pub(crate) offset: f64,
    /// The offset's doubt (`SourceSlot::own_doubt`), s.
    pub(crate) doubt: f64,
    /// The epoch of the filter output the offset is from, s.
    pub(crate) epoch: f64,
    /// The source's root distance now (RFC 5905, section 11.2.1), s.
    pub(crate) distance: Option<f64>,
    /// Its index among the sources.
    pub(crate) index: usize,
    /// Whether it is marked prefer or trust.
    pub(crate) preferred: bool,
}

/// The median of entries sorted by offset: its offset, its doubt and the
/// index of the source it is. That is the middle entry, or for an even
/// count the mean of the middle two, with the doubt of that mean and no
/// source.
pub(crate) fn median_entry(sorted: &[BiasEntry]) -> Option<(f64, f64, Option<usize>)> {
    Some(match middle(sorted)? {
        Middle::One(only) => (only.offset, only.doubt, Some(only.index)),
        Middle::Two(lower, upper) => (
            (lower.offset + upper.offset) / 2.0,
            libm::sqrt(lower.doubt * lower.doubt + upper.doubt * upper.doubt) / 2.0,
            None,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: f64, doubt: f64, index: usize) -> BiasEntry {
        BiasEntry {
            offset,
            doubt,
            epoch: 0.0,
            distance: None,
            index,
            preferred: false,
        }
    }

    #[test]
    fn steady_biases_scatter_by_nothing_noise_by_its_size() {
        let mut steady = BiasTrack::default();
        let mut noise = BiasTrack::default();
        for i in 0..32 {
            assert_eq!(steady.scatter().is_some(), i >= MIN_BIAS_MEASUREMENTS);
            steady.record(f64::from(i), 0.002);
            noise.record(f64::from(i), if i % 2 == 0 { 1e-4 } else { -1e-4 });
        }
        assert!(steady.scatter().is_some_and(|s| s < 1e-12));
        let bias = Bias {
            offset: 0.002,
            doubt: steady.scatter().unwrap_or(f64::INFINITY),
        };
        assert!(bias.significant());
        // +-100 us alternating: a scatter of about 100 us, and no single
        // measurement three times that.
        let scatter = noise.scatter().unwrap_or(0.0);
        assert!((scatter - 1e-4).abs() < 2e-5, "{scatter}");
        assert!(
            !Bias {
                offset: 1e-4,
                doubt: scatter
            }
            .significant()
        );
    }

    #[test]
    fn the_same_measurement_is_recorded_once() {
        let mut track = BiasTrack::default();
        for _ in 0..10 {
            track.record(5.0, 0.001);
        }
        assert_eq!(track.count, 1);
        track.record(5.0, 0.0011);
        track.record(7.0, 0.0011);
        assert_eq!(track.count, 3);
    }

    #[test]
    fn the_median_is_a_source_for_an_odd_count_and_a_mean_for_an_even_one() {
        assert_eq!(median_entry(&[]), None);
        let odd = [entry(-1.0, 0.1, 4), entry(0.5, 0.2, 2), entry(2.0, 0.3, 0)];
        assert_eq!(median_entry(&odd), Some((0.5, 0.2, Some(2))));
        let even = [entry(-1.0, 0.3, 4), entry(1.0, 0.4, 2)];
        assert_eq!(median_entry(&even), Some((0.0, 0.25, None)));
    }
}

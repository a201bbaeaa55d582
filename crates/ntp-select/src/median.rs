//! A median filter that turns several measurements into one: chrony's
//! `filter` option for NTP sources, and the sample filter of a reference
//! clock's poll. Not in RFC 5905, whose clock filter (section 10) picks the
//! minimum-delay sample of the last eight instead of averaging.
//!
//! # What it computes
//!
//! The samples collected (at most `N`) are ranked by how far their level
//! lies from the median level, a sample's level being its offset with
//! the drift across the samples taken off (the median slope between
//! samples half the set apart, from [`MIN_DRIFT_SAMPLES`] on; 0 before).
//! The closest [`KEEP_FRACTION`] of them (at least one) are kept and the
//! rest discarded as outliers: about 40 %, as chrony's filter does. The
//! result is their mean offset, mean delay and mean epoch (the mean
//! offset lies on the drift's line at the mean epoch), with a dispersion
//! of the largest kept dispersion plus the error of that mean: the
//! standard deviation of the Winsorized levels (every level pulled in to
//! the range of the kept ones) over the kept share times the square root
//! of the count, Tukey and McLaughlin's estimate for a trimmed mean, so
//! that a noisy set says so, and a drifting one does not pass its drift
//! for noise.
//!
//! The kept samples' own standard error, used before, understated the
//! error: they are the central ones, so they scatter less than the noise.
//! For 16 samples of normal noise their mean scatters by 0.35 of the
//! noise; their own standard error said 0.15 (0.4 of it). The Winsorized
//! estimate says 0.24 (0.68 of it): it describes the mean of as many
//! central samples by rank, which scatters by 0.26, and the window
//! closest to the median moves with the median's own noise. Scaled by
//! that ratio ([`WINDOW_SCATTER`]) it says 0.32 (0.9 of it), and a
//! reference clock's samples are no longer trusted over twice their
//! variance. The discipline floored every update at 3.8 us before, which
//! hid the rest; with a precise clock the floor goes, and the error of
//! the poll's sample is what weighs it.
//!
//! The samples closest to the median, not the central ones by rank
//! (whose mean scatters by 0.26 for normal noise): the errors of a
//! reference clock are often one-sided (a receiver's late seconds,
//! samples read in a batch while the clock was slewed), and trimming as
//! many from either end averages a one-sided cluster in. Tried: a SOCK
//! source read once a second during the start's fast slew then followed
//! the cluster and missed the time by 6 ms.
//!
//! Why a trimmed mean around the median: the median alone is robust but
//! wastes the samples (its error falls slowly with their number); the mean
//! alone follows every outlier. Keeping the central 60 % and averaging
//! them is robust to up to 20 % of the samples on either side being
//! wild (a GPS receiver's bad second, a queue on a LAN) and still averages
//! most of the noise away.
//!
//! Nothing is allocated: the samples live in an array of `N`.

use crate::error::{InputError, Quantity, check_non_negative, check_signed};
use crate::filter::FilterSample;

/// Share of the collected samples kept around the median: 60 %.
pub const KEEP_FRACTION: f64 = 0.6;

/// How much more the mean of the samples closest to the median scatters
/// than the mean of as many central samples by rank, whose error Tukey
/// and McLaughlin's estimate describes: 4/3. The window closest to the
/// median moves with the noise of the median itself. Measured by Monte
/// Carlo for unit normal noise (20 000 sets each): 1.32, 1.29, 1.32, 1.34
/// and 1.34 for 5, 8, 16, 32 and 64 samples. Not from any RFC (RFC 5905's
/// clock filter does not average).
pub const WINDOW_SCATTER: f64 = 4.0 / 3.0;

/// Fewest samples whose drift is taken off before they are ranked: six,
/// three disjoint pairs, so that the median slope survives one wild
/// sample. Not from any RFC.
pub const MIN_DRIFT_SAMPLES: usize = 6;

/// One collected sample: a [`FilterSample`] and its epoch (seconds of the
/// caller's monotonic time).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    sample: FilterSample,
    epoch: f64,
}

impl Entry {
    const EMPTY: Self = Self {
        sample: FilterSample::ZERO,
        epoch: 0.0,
    };
}

/// What [`MedianFilter::take`] produces.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct MedianOutput {
    /// The filtered sample.
    pub sample: FilterSample,
    /// The mean epoch of the kept samples: the time the sample stands for.
    pub epoch: f64,
    /// How many samples were collected.
    pub collected: usize,
    /// How many of them were kept (averaged).
    pub kept: usize,
}

/// Up to `N` samples waiting to become one. `N` is at least 1.
#[derive(Clone, Debug, PartialEq)]
pub struct MedianFilter<const N: usize> {
    entries: [Entry; N],
    len: usize,
}

impl<const N: usize> Default for MedianFilter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MedianFilter<N> {
    /// An empty filter.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: [Entry::EMPTY; N],
            len: 0,
        }
    }

    /// Samples collected so far.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no sample is waiting.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `N` samples are waiting.
    #[must_use]
    pub const fn is_full(&self) -> bool {
        self.len >= N
    }

    /// Drops the oldest waiting sample; `false` when none waits. With it a
    /// caller keeps fewer than `N` (a configured length).
    pub fn drop_oldest(&mut self) -> bool {
        let len = self.len.min(N);
        if len == 0 {
            return false;
        }
        if let Some(waiting) = self.entries.get_mut(..len) {
            waiting.copy_within(1.., 0);
        }
        self.len = len - 1;
        true
    }

    /// Forgets every sample (after a clock step, for example).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Adds a sample taken at `epoch`. When the filter is full the oldest
    /// sample makes room.
    ///
    /// # Errors
    ///
    /// [`InputError`] when `epoch` is not finite or beyond 2^31 s; the
    /// filter is then unchanged.
    pub fn push(&mut self, sample: FilterSample, epoch: f64) -> Result<(), InputError> {
        let epoch = check_signed(epoch, Quantity::Time)?;
        if N == 0 {
            return Ok(());
        }
        if self.len >= N {
            self.entries.copy_within(1.., 0);
            self.len = N - 1;
        }
        if let Some(entry) = self.entries.get_mut(self.len) {
            *entry = Entry { sample, epoch };
            self.len += 1;
        }
        Ok(())
    }

    /// Turns the waiting samples into one and empties the filter; `None`
    /// when none is waiting.
    pub fn take(&mut self) -> Option<MedianOutput> {
        self.take_inner(None)
    }

    /// As [`take`](Self::take), but the result stands for time `at` (the
    /// end of the interval, typically): a straight line is fitted to the
    /// kept samples' offsets against their epochs and read at `at`, so
    /// that a clock drifting during the interval (a frequency not learnt
    /// yet) does not bias the result by half the interval's drift. The
    /// dispersion then carries the fitted value's standard error. With
    /// fewer than three kept samples, or all at one epoch, the mean as in
    /// [`take`](Self::take), at its mean epoch.
    pub fn take_at(&mut self, at: f64) -> Option<MedianOutput> {
        if at.is_finite() {
            self.take_inner(Some(at))
        } else {
            self.take_inner(None)
        }
    }

    fn take_inner(&mut self, at: Option<f64>) -> Option<MedianOutput> {
        let collected = self.len.min(N);
        let entries = self.entries.get_mut(..collected)?;
        if entries.is_empty() {
            return None;
        }
        self.len = 0;
        // Ranked by their level: the offset with the drift across the
        // samples taken off (see `drift`), so that a clock drifting
        // during the interval keeps the samples its noise puts closest
        // and declares the error of that noise, not of the drift.
        let (drift, reference) = drift::<N>(entries);
        let level = |e: &Entry| e.sample.offset() - drift * (e.epoch - reference);
        // The median level (the lower one of an even count).
        entries.sort_unstable_by(|a, b| level(a).total_cmp(&level(b)));
        let median = level(entries.get((collected - 1) / 2)?);
        // The closest KEEP_FRACTION to it, ties by epoch (then order) so
        // the result does not depend on the order of arrival.
        entries.sort_unstable_by(|a, b| {
            (level(a) - median)
                .abs()
                .total_cmp(&(level(b) - median).abs())
                .then(a.epoch.total_cmp(&b.epoch))
                .then(a.sample.delay().total_cmp(&b.sample.delay()))
        });
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "counts of at most N samples"
        )]
        let kept = (libm::round(collected as f64 * KEEP_FRACTION) as usize).clamp(1, collected);
        let kept_entries = entries.get(..kept)?;
        #[allow(clippy::cast_precision_loss, reason = "at most N samples")]
        let count = kept as f64;
        let mean =
            |value: &dyn Fn(&Entry) -> f64| kept_entries.iter().map(value).sum::<f64>() / count;
        let mean_offset = mean(&|e| e.sample.offset());
        let delay = mean(&|e| e.sample.delay());
        let mean_epoch = mean(&|e| e.epoch);
        let (trimmed_error, trimming) = trimmed_mean_error(entries, kept, &level);
        let spread_tt: f64 = kept_entries
            .iter()
            .map(|e| (e.epoch - mean_epoch) * (e.epoch - mean_epoch))
            .sum();
        let (offset, epoch, error) = match at {
            Some(at) if kept >= 3 && spread_tt > 0.0 => {
                let slope = kept_entries
                    .iter()
                    .map(|e| (e.epoch - mean_epoch) * (e.sample.offset() - mean_offset))
                    .sum::<f64>()
                    / spread_tt;
                let residual_sq: f64 = kept_entries
                    .iter()
                    .map(|e| {
                        let r = e.sample.offset() - mean_offset - slope * (e.epoch - mean_epoch);
                        r * r
                    })
                    .sum();
                let lever = at - mean_epoch;
                let error = libm::sqrt(
                    residual_sq / (count - 2.0) * (1.0 / count + lever * lever / spread_tt),
                );
                (mean_offset + slope * lever, at, error * trimming)
            }
            _ => (mean_offset, mean_epoch, trimmed_error),
        };
        let dispersion = kept_entries
            .iter()
            .map(|e| e.sample.dispersion())
            .fold(0.0, f64::max)
            + error;
        let sample = FilterSample::new(
            offset,
            check_non_negative(delay, Quantity::Delay).ok()?,
            dispersion,
        )
        .ok()?;
        Some(MedianOutput {
            sample,
            epoch,
            collected,
            kept,
        })
    }
}

/// The drift of the samples' offsets, seconds per second of epoch: the
/// median of the slopes between samples half the set apart in time (Sen's
/// slope over disjoint pairs, so that a wild sample spoils one slope at
/// most and as many wild samples as the trimming leaves out do not move
/// it), and the samples' mean epoch, about which the drift is taken off.
/// The drift is 0 with fewer than [`MIN_DRIFT_SAMPLES`], or when it would
/// not give every sample a finite level. Sorts `entries` by epoch from
/// [`MIN_DRIFT_SAMPLES`] on.
///
/// Why: the samples of a poll are read over its interval, and a clock
/// whose frequency is not learnt yet moves them along a line (a reference
/// clock's sixteen seconds at 100 ppm span 1.6 ms). Ranked by offset, the
/// middle of the poll in time was kept, which is right, but the drift was
/// declared as noise: chrony's 106-refclock-4 saw its second poll doubted
/// at 210 us when its noise made 15 us, so the discipline learnt the
/// frequency a poll later and 2 ppm further off.
fn drift<const N: usize>(entries: &mut [Entry]) -> (f64, f64) {
    #[allow(clippy::cast_precision_loss, reason = "at most N samples")]
    let mean_epoch = |entries: &[Entry]| {
        entries.iter().map(|e| e.epoch).sum::<f64>() / entries.len().max(1) as f64
    };
    if entries.len() < MIN_DRIFT_SAMPLES {
        return (0.0, mean_epoch(entries));
    }
    entries.sort_unstable_by(|a, b| a.epoch.total_cmp(&b.epoch));
    let reference = mean_epoch(entries);
    let half = entries.len().div_ceil(2);
    let mut slopes = [0.0_f64; N];
    let mut count = 0;
    for (early, late) in entries.iter().zip(entries.iter().skip(half)) {
        let span = late.epoch - early.epoch;
        if span > 0.0
            && let Some(slot) = slopes.get_mut(count)
        {
            *slot = (late.sample.offset() - early.sample.offset()) / span;
            count += 1;
        }
    }
    let Some(slopes) = slopes.get_mut(..count) else {
        return (0.0, reference);
    };
    if slopes.len() < MIN_DRIFT_SAMPLES / 2 {
        return (0.0, reference);
    }
    slopes.sort_unstable_by(f64::total_cmp);
    let middle = slopes.len() / 2;
    let drift = match (
        slopes.get(middle),
        middle.checked_sub(1).and_then(|i| slopes.get(i)),
    ) {
        (Some(&upper), Some(&lower)) if slopes.len() % 2 == 0 => (upper + lower) / 2.0,
        (Some(&median), _) => median,
        _ => return (0.0, reference),
    };
    let finite = entries
        .iter()
        .all(|e| (e.sample.offset() - drift * (e.epoch - reference)).is_finite());
    (if finite { drift } else { 0.0 }, reference)
}

/// The error of the mean of the first `kept` of `entries` (sorted by
/// distance from the median `level`; their mean level is taken here),
/// and its ratio to the naive standard error of that mean: Tukey and
/// McLaughlin's estimate, the standard deviation of the Winsorized levels
/// (each pulled in to the range of the kept levels) over the kept share
/// times the square root of all the samples, times [`WINDOW_SCATTER`]
/// (see the module's notes). Without trimming it is the plain standard
/// error.
fn trimmed_mean_error(entries: &[Entry], kept: usize, level: &dyn Fn(&Entry) -> f64) -> (f64, f64) {
    let Some(kept_entries) = entries.get(..kept) else {
        return (0.0, 1.0);
    };
    if kept < 2 {
        return (0.0, 1.0);
    }
    let (low, high) = kept_entries
        .iter()
        .map(level)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
    #[allow(clippy::cast_precision_loss, reason = "at most N samples")]
    let (n, k) = (entries.len() as f64, kept as f64);
    let mean = kept_entries.iter().map(level).sum::<f64>() / k;
    let winsorized = |e: &Entry| level(e).clamp(low, high);
    let winsorized_mean = entries.iter().map(winsorized).sum::<f64>() / n;
    let winsorized_sq: f64 = entries
        .iter()
        .map(|e| (winsorized(e) - winsorized_mean) * (winsorized(e) - winsorized_mean))
        .sum();
    let window = if kept < entries.len() {
        WINDOW_SCATTER
    } else {
        1.0
    };
    let error = window * libm::sqrt(winsorized_sq / (n - 1.0)) / (k / n) / libm::sqrt(n);
    let kept_sq: f64 = kept_entries
        .iter()
        .map(|e| (level(e) - mean) * (level(e) - mean))
        .sum();
    let naive = libm::sqrt(kept_sq / (k - 1.0) / k);
    let ratio = if naive > 0.0 { error / naive } else { 1.0 };
    (error, ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(offset: f64, delay: f64) -> FilterSample {
        FilterSample::new(offset, delay, 1e-6).unwrap()
    }

    #[test]
    fn outliers_on_either_side_are_left_out() {
        let mut filter = MedianFilter::<10>::new();
        assert!(filter.take().is_none());
        // Eight samples around 1 ms, two wild ones.
        let offsets = [
            1.0e-3, 1.1e-3, 0.9e-3, 5.0, 1.05e-3, 0.95e-3, -3.0, 1.0e-3, 1.02e-3, 0.98e-3,
        ];
        for (i, &offset) in offsets.iter().enumerate() {
            filter.push(sample(offset, 2e-3), i as f64).unwrap();
        }
        assert!(filter.is_full());
        let out = filter.take().unwrap();
        assert_eq!((out.collected, out.kept), (10, 6));
        assert!((out.sample.offset() - 1.0e-3).abs() < 2e-5, "{out:?}");
        assert!((out.sample.delay() - 2e-3).abs() < 1e-12);
        assert!(out.sample.dispersion() > 1e-6 && out.sample.dispersion() < 1e-4);
        assert!(out.epoch > 0.0 && out.epoch < 9.0);
        assert!(filter.is_empty());
    }

    #[test]
    fn the_order_of_arrival_does_not_matter_and_old_samples_make_room() {
        let offsets = [3.0, -1.0, 0.5, 0.25, 2.0];
        let mut forward = MedianFilter::<5>::new();
        let mut backward = MedianFilter::<5>::new();
        for (i, &offset) in offsets.iter().enumerate() {
            forward.push(sample(offset, 0.1), i as f64).unwrap();
        }
        for (i, &offset) in offsets.iter().enumerate().rev() {
            backward.push(sample(offset, 0.1), i as f64).unwrap();
        }
        assert_eq!(forward.take(), backward.take());
        // A sixth sample pushes the first out.
        let mut rolling = MedianFilter::<2>::new();
        for (i, offset) in [100.0, 1.0, 2.0].into_iter().enumerate() {
            rolling.push(sample(offset, 0.1), i as f64).unwrap();
        }
        let out = rolling.take().unwrap();
        assert_eq!(out.collected, 2);
        assert!(out.sample.offset() < 3.0);
        // One sample is itself.
        let mut one = MedianFilter::<4>::new();
        one.push(sample(0.5, 0.1), 7.0).unwrap();
        let out = one.take().unwrap();
        assert_eq!((out.sample.offset(), out.epoch, out.kept), (0.5, 7.0, 1));
        assert!(one.push(sample(0.5, 0.1), f64::NAN).is_err());
        assert!(one.is_empty());
        // Dropping the oldest keeps the newest.
        for (i, offset) in [100.0, 1.0, 2.0].into_iter().enumerate() {
            one.push(sample(offset, 0.1), i as f64).unwrap();
        }
        assert!(one.drop_oldest());
        assert_eq!(one.len(), 2);
        assert!(one.take().unwrap().sample.offset() < 3.0);
        assert!(!one.drop_oldest());
        // A drifting clock: read at the end of the interval, not its mean.
        let mut drifting = MedianFilter::<16>::new();
        for i in 0..16 {
            let t = f64::from(i);
            drifting.push(sample(1e-4 * t, 0.1), t).unwrap();
        }
        let out = drifting.take_at(16.0).unwrap();
        assert!((out.sample.offset() - 1.6e-3).abs() < 1e-9, "{out:?}");
        assert!((out.epoch - 16.0).abs() < f64::EPSILON);
    }

    /// Standard normal values from a fixed xorshift generator (Box-Muller).
    fn normals(count: usize) -> std::vec::Vec<f64> {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            #[allow(clippy::cast_precision_loss, reason = "53 bits")]
            let u = (state >> 11) as f64 / (1_u64 << 53) as f64;
            u.max(f64::MIN_POSITIVE)
        };
        (0..count)
            .map(|_| {
                let (u, v) = (uniform(), uniform());
                libm::sqrt(-2.0 * libm::log(u)) * libm::cos(2.0 * core::f64::consts::PI * v)
            })
            .collect()
    }

    #[test]
    fn the_error_of_the_kept_mean_is_not_that_of_the_kept_samples() {
        // 2000 polls of 16 samples of unit normal noise (a reference
        // clock's seconds): the mean of the ten closest to the median
        // scatters by about 0.35. The kept samples' own standard error
        // declared 0.4 of that; the Winsorized estimate declares 0.68,
        // 0.9 once scaled by WINDOW_SCATTER.
        let noise = normals(2000 * 16);
        let mut means = std::vec::Vec::new();
        let mut declared = 0.0;
        let mut naive = 0.0;
        for poll in noise.chunks(16) {
            let mut filter = MedianFilter::<16>::new();
            for (i, &x) in poll.iter().enumerate() {
                filter
                    .push(FilterSample::new(x, 0.0, 0.0).unwrap(), i as f64)
                    .unwrap();
            }
            let out = filter.take().unwrap();
            assert_eq!(out.kept, 10);
            means.push(out.sample.offset());
            declared += out.sample.dispersion() * out.sample.dispersion();
            let mut kept: std::vec::Vec<f64> = poll.to_vec();
            kept.sort_by(f64::total_cmp);
            let median = kept[7];
            kept.sort_by(|a, b| (a - median).abs().total_cmp(&(b - median).abs()));
            kept.truncate(10);
            let mean = kept.iter().sum::<f64>() / 10.0;
            naive += kept.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 9.0 / 10.0;
        }
        let n = means.len() as f64;
        let mean = means.iter().sum::<f64>() / n;
        let actual = means.iter().map(|m| (m - mean) * (m - mean)).sum::<f64>() / (n - 1.0);
        let declared = libm::sqrt(declared / n);
        let naive = libm::sqrt(naive / n);
        let actual = libm::sqrt(actual);
        assert!((actual - 0.355).abs() < 0.02, "{actual}");
        assert!(
            (declared / actual - 0.68 * WINDOW_SCATTER).abs() < 0.05,
            "{declared} {actual}"
        );
        assert!((naive / actual - 0.42).abs() < 0.05, "{naive} {actual}");
        // The same noise on a clock drifting 5 noise deviations a sample
        // (a frequency not learnt yet), with a wild sample in each poll:
        // ranked with the drift taken off, the kept samples are those the
        // noise puts closest, their mean lies on the drift's line at their
        // mean epoch and is as precise as without the drift, and the error
        // declared is that of the noise. Ranked by offset, the middle of
        // the poll in time was kept and the drift (about 9 deviations of
        // scatter) declared as their error.
        let (mut declared, mut actual) = (0.0, 0.0);
        for (poll, chunk) in noise.chunks(16).enumerate() {
            let mut filter = MedianFilter::<16>::new();
            for (i, &x) in chunk.iter().enumerate() {
                let t = i as f64;
                let wild = if i == poll % 16 { 1e3 } else { 0.0 };
                filter
                    .push(FilterSample::new(5.0 * t + x + wild, 0.0, 0.0).unwrap(), t)
                    .unwrap();
            }
            let out = filter.take().unwrap();
            let error = out.sample.offset() - 5.0 * out.epoch;
            actual += error * error;
            declared += out.sample.dispersion() * out.sample.dispersion();
        }
        let (declared, actual) = (libm::sqrt(declared / n), libm::sqrt(actual / n));
        assert!((actual - 0.355).abs() < 0.03, "{actual}");
        assert!(
            (declared / actual - 0.68 * WINDOW_SCATTER).abs() < 0.1,
            "{declared} {actual}"
        );
        // Without trimming (two samples), the plain standard error.
        let mut two = MedianFilter::<2>::new();
        two.push(FilterSample::new(1.0, 0.0, 0.0).unwrap(), 0.0)
            .unwrap();
        two.push(FilterSample::new(3.0, 0.0, 0.0).unwrap(), 1.0)
            .unwrap();
        let out = two.take().unwrap();
        assert_eq!(out.kept, 1);
        assert_eq!(out.sample.dispersion().to_bits(), 0.0_f64.to_bits());
        let mut three = MedianFilter::<3>::new();
        for (i, x) in [1.0, 2.0, 3.0].into_iter().enumerate() {
            three
                .push(FilterSample::new(x, 0.0, 0.0).unwrap(), i as f64)
                .unwrap();
        }
        let out = three.take().unwrap();
        assert_eq!(out.kept, 2);
    }
}

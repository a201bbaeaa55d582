//! The frequency wander over long spans, for the
//! [`Algorithm::Kalman`](crate::Algorithm::Kalman) estimator.
//!
//! The estimator learns its wander (the spectral density `q` of the
//! frequency's random walk, s²/s³) from each innovation, in proportion to
//! the share of the innovation's predicted variance the wander accounts
//! for. Over one poll interval that share is small wherever the poll is
//! right: at 512 s with 50 µs of noise, a wander of 1e-18 adds 0.6 % to
//! the variance of an offset's second difference. One interval cannot tell
//! 1e-17 from 1e-18, and the learnt value stays wherever it started, while
//! it is what sets how many intervals the frequency is averaged over.
//!
//! Over longer spans the wander's part grows with the cube of the span and
//! the noise's falls with its square. This module keeps the free
//! oscillator's phase (each measured offset plus every correction applied
//! until it was measured) and compares the mean frequencies of adjacent
//! spans of 1, 2, 4, 8 and 16 updates of one source, as the Allan variance
//! does. For spans `T1` and `T2` the difference of the mean frequencies
//! `D` has the variance
//!
//! ```text
//! E[D²] = r · (1/T2² + (1/T1 + 1/T2)² + 1/T1²) + q · (T1 + T2)/3
//! ```
//!
//! (`r` the variance of one measurement, taken the same for all of one
//! source's and fitted: the variances callers give are weights, often
//! floors far below a path's real noise; the second term is the random
//! walk's, as `σ_y(τ)² = q τ / 3`). The spans compared share no interior (for each
//! length, counted back from the newest phase). The wander is then the
//! posterior mean of its logarithm: the Gaussian likelihood of the
//! differences, at the best `r` for each wander, times a log-normal prior
//! of [`PRIOR_DECADES`] around the configured wander. Where the spans say
//! little (early on, fast polls whose spans are short, noise far above
//! the wander) the prior holds; over hours of long polls the data decide.
//! chronyd reaches the same end another way, keeping samples in its
//! regression until a runs test shows the wander (not an RFC rule: RFC
//! 5905 models the oscillator only through the Allan intercept, section
//! 11.3).
//!
//! A source's phases also hold its own bias (its path's asymmetry), so
//! only phases of one source form a span; a step of the clock, or a jump
//! the estimator had to follow, starts the history afresh. A burst's
//! samples seconds apart are not kept (their noise is not the poll's).
//!
//! The poll does not follow a wander judged below the configured one: it
//! is planned on the configured wander (see `kalman_poll`), since this
//! judgement lags a real change (a machine warming up) by hours, and a
//! poll planned on a quiet past would miss the change for as long.

use crate::config::{WANDER_MAX, WANDER_MIN};

/// Phases kept: 48 updates, 6.8 hours at a 512 s poll; spans up to 16
/// updates need 33.
pub(crate) const POINTS: usize = 48;

/// Adjacent-span lengths compared, in updates of one source.
const LAGS: [usize; 5] = [1, 2, 4, 8, 16];

/// Standard deviation of the prior on the wander's logarithm, decades:
/// oscillators differ by orders of magnitude (an oven-controlled one
/// walks at 1e-21 s²/s³, a crystal in a machine whose temperature
/// follows its load at 1e-16), so the prior only holds where the spans
/// say little (short spans, few phases), and a decisive history moves
/// the wander as far as it says.
const PRIOR_DECADES: f64 = 1.0;

/// The wander grid: five points a decade over [`WANDER_MIN`]..=[`WANDER_MAX`]
/// (1e-21..=1e-13, forty steps).
const WANDER_STEPS: usize = 41;

/// Range of `log2` of the measurement variance `r`, s²: from 1e-21
/// (30 ps of noise, below any timestamp's resolution) to 1 s².
const SCALE_LOG2_RANGE: (f64, f64) = (-70.0, 0.0);

/// Golden-section steps over [`SCALE_LOG2_RANGE`]: 28 narrow the 70 binary
/// orders to 1e-4, a variance known to 0.01 %.
const SCALE_SEARCH_STEPS: usize = 28;

/// One update's phase of the free oscillator.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Phase {
    /// Oscillator time of the measurement, seconds.
    time: f64,
    /// Measured offset plus every correction applied until then.
    phase: f64,
    /// The source it came from, when the caller says.
    source: Option<u64>,
}

/// One span pair: the squared difference of the mean frequencies, and the
/// coefficients of the measurement variance and of the wander in its
/// expectation.
#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    squared: f64,
    noise: f64,
    span: f64,
}

/// The last [`POINTS`] phases, oldest first, and the wander they say.
#[derive(Clone, Debug)]
pub(crate) struct WanderHistory {
    phases: [Phase; POINTS],
    len: usize,
    /// The last [`judge`](Self::judge)ment, and whether a phase came
    /// since (the judgement costs a few thousand logarithms: once per
    /// phase, not per update).
    judged: Option<f64>,
    stale: bool,
}

impl Default for WanderHistory {
    fn default() -> Self {
        Self {
            phases: [Phase::default(); POINTS],
            len: 0,
            judged: None,
            stale: false,
        }
    }
}

impl WanderHistory {
    /// Forgets every phase (after a step, whose size the free phase does
    /// not hold).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.judged = None;
        self.stale = false;
    }

    /// The wander the phases say around `prior` ([`judge`](Self::judge)),
    /// judged again only when a phase came since the last time.
    pub(crate) fn wander(&mut self, prior: f64) -> Option<f64> {
        if self.stale {
            self.judged = self.judge(prior);
            self.stale = false;
        }
        self.judged
    }

    /// Records an update's free-oscillator phase: `phase` seconds at
    /// `time`, from `source`. Dropped: non-finite values, times not after
    /// the last phase, and times within `min_spacing` of the source's
    /// last phase.
    pub(crate) fn push(&mut self, time: f64, phase: f64, source: Option<u64>, min_spacing: f64) {
        if !(time.is_finite() && phase.is_finite()) {
            return;
        }
        let phases = self.phases.get(..self.len).unwrap_or(&[]);
        if phases.last().is_some_and(|last| time <= last.time) {
            return;
        }
        // A burst's samples seconds apart (`iburst`) say little of the
        // wander, and their noise is not the poll's: the first phases of
        // a run, taken while the start's offset is slewed out fast, are
        // off by that slew's small errors.
        if phases
            .iter()
            .rev()
            .find(|last| last.source == source)
            .is_some_and(|last| time - last.time < min_spacing)
        {
            return;
        }
        if self.len == POINTS {
            self.phases.rotate_left(1);
            self.len -= 1;
        }
        if let Some(slot) = self.phases.get_mut(self.len) {
            *slot = Phase {
                time,
                phase,
                source,
            };
            self.len += 1;
            self.stale = true;
        }
    }

    /// The wander the phases say, given the `prior` the estimator
    /// starts from: the posterior mean of its logarithm over the grid,
    /// with the likelihood of the span pairs (the noise at its best for
    /// each wander) and a log-normal prior around `prior` of
    /// [`PRIOR_DECADES`]. `None` when there are too few span pairs.
    pub(crate) fn judge(&self, prior: f64) -> Option<f64> {
        let mut pairs = [Pair::default(); POINTS * LAGS.len()];
        let count = self.pairs(&mut pairs);
        let pairs = pairs.get(..count)?;
        // Two parameters are fitted: fewer than four pairs leave nothing
        // to weigh them with.
        if pairs.len() < 4 {
            return None;
        }
        let centre = libm::log10(prior.clamp(WANDER_MIN, WANDER_MAX));
        let mut log_posterior = [f64::NEG_INFINITY; WANDER_STEPS];
        for (k, slot) in log_posterior.iter_mut().enumerate() {
            let wander = grid_wander(k);
            let distance = (libm::log10(wander) - centre) / PRIOR_DECADES;
            *slot = best_over_scale(pairs, wander) - 0.5 * distance * distance;
        }
        let peak = log_posterior
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if !peak.is_finite() {
            return None;
        }
        let (mut weight, mut sum) = (0.0, 0.0);
        for (k, &log) in log_posterior.iter().enumerate() {
            let w = libm::exp(log - peak);
            weight += w;
            sum += w * libm::log10(grid_wander(k));
        }
        let wander = libm::pow(10.0, sum / weight);
        wander
            .is_finite()
            .then(|| wander.clamp(WANDER_MIN, WANDER_MAX))
    }

    /// Fills `out` with the span pairs that share no interior, per source
    /// and lag; returns how many.
    fn pairs(&self, out: &mut [Pair]) -> usize {
        let phases = self.phases.get(..self.len).unwrap_or(&[]);
        let mut count = 0;
        // Each source's phases in turn, copied out in order; `done` marks
        // the phases already taken with their source.
        let mut done = [false; POINTS];
        for first in 0..phases.len() {
            if done.get(first).copied().unwrap_or(true) {
                continue;
            }
            let source = phases.get(first).map(|p| p.source);
            let mut own = [Phase::default(); POINTS];
            let mut n = 0;
            for (i, phase) in phases.iter().enumerate().skip(first) {
                if Some(phase.source) == source {
                    if let (Some(slot), Some(seen)) = (own.get_mut(n), done.get_mut(i)) {
                        *slot = *phase;
                        *seen = true;
                        n += 1;
                    }
                }
            }
            let own = own.get(..n).unwrap_or(&[]);
            for lag in LAGS {
                // Middles at lag, 3 lag, 5 lag... counted back from the
                // newest phase, so the newest always takes part.
                let mut end = own.len();
                while end > 2 * lag {
                    let (Some(a), Some(b), Some(c)) = (
                        own.get(end - 1 - 2 * lag),
                        own.get(end - 1 - lag),
                        own.get(end - 1),
                    ) else {
                        break;
                    };
                    if let (Some(pair), Some(slot)) = (pair_of(a, b, c), out.get_mut(count)) {
                        *slot = pair;
                        count += 1;
                    }
                    end -= 2 * lag;
                }
            }
        }
        count
    }
}

/// The span pair of three phases of one source, oldest first.
fn pair_of(a: &Phase, b: &Phase, c: &Phase) -> Option<Pair> {
    let t1 = b.time - a.time;
    let t2 = c.time - b.time;
    if !(t1 > 0.0 && t2 > 0.0) {
        return None;
    }
    let d = (c.phase - b.phase) / t2 - (b.phase - a.phase) / t1;
    let middle = 1.0 / t1 + 1.0 / t2;
    let noise = 1.0 / (t2 * t2) + middle * middle + 1.0 / (t1 * t1);
    let pair = Pair {
        squared: d * d,
        noise,
        span: (t1 + t2) / 3.0,
    };
    (pair.squared.is_finite() && pair.noise.is_finite()).then_some(pair)
}

/// The `k`-th wander of the grid.
fn grid_wander(k: usize) -> f64 {
    let steps = (WANDER_STEPS - 1) as f64;
    let fraction = k as f64 / steps;
    WANDER_MIN * libm::pow(WANDER_MAX / WANDER_MIN, fraction)
}

/// The log-likelihood of `pairs` at `wander`, at its best measurement
/// variance: a golden-section search over `log2` of the variance in
/// [`SCALE_LOG2_RANGE`] (the likelihood is unimodal in it: one noise
/// level explains the pairs best). The range is wide, as the paths'
/// noise is: from timestamps' resolution to a second.
fn best_over_scale(pairs: &[Pair], wander: f64) -> f64 {
    let at = |log2: f64| log_likelihood(pairs, libm::exp2(log2), wander);
    let (mut low, mut high) = SCALE_LOG2_RANGE;
    let ratio = 0.5 * (libm::sqrt(5.0) - 1.0);
    let mut left = high - ratio * (high - low);
    let mut right = low + ratio * (high - low);
    let (mut at_left, mut at_right) = (at(left), at(right));
    for _ in 0..SCALE_SEARCH_STEPS {
        if at_left < at_right {
            low = left;
            left = right;
            at_left = at_right;
            right = low + ratio * (high - low);
            at_right = at(right);
        } else {
            high = right;
            right = left;
            at_right = at_left;
            left = high - ratio * (high - low);
            at_left = at(left);
        }
    }
    at_left.max(at_right)
}

/// The Gaussian log-likelihood (without its constant) of `pairs` with
/// measurement variance `scale` and wander `wander`.
fn log_likelihood(pairs: &[Pair], scale: f64, wander: f64) -> f64 {
    let mut sum = 0.0;
    for pair in pairs {
        let variance = scale * pair.noise + wander * pair.span;
        if variance <= 0.0 {
            return f64::NEG_INFINITY;
        }
        sum -= 0.5 * (libm::log(variance) + pair.squared / variance);
    }
    sum
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// A deterministic Gaussian source (Box-Muller over a linear
    /// congruential generator), so the tests are reproducible.
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn gaussian(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            libm::sqrt(-2.0 * libm::log(u)) * libm::cos(core::f64::consts::TAU * v)
        }
    }

    /// `n` phases every `interval` seconds of an oscillator whose
    /// frequency walks with density `wander`, measured with `sigma`.
    fn history(seed: u64, n: usize, interval: f64, wander: f64, sigma: f64) -> WanderHistory {
        let mut noise = Noise(seed);
        let mut history = WanderHistory::default();
        let (mut phase, mut frequency) = (0.0, 3e-6);
        for i in 0..n {
            // Exact for a random-walk frequency integrated over the step.
            let step = libm::sqrt(wander * interval) * noise.gaussian();
            let extra =
                libm::sqrt(wander * interval * interval * interval / 12.0) * noise.gaussian();
            phase += frequency * interval + step * interval / 2.0 + extra;
            frequency += step;
            history.push(
                i as f64 * interval,
                phase + sigma * noise.gaussian(),
                Some(7),
                0.0,
            );
        }
        history
    }

    #[test]
    fn too_little_data_judges_nothing() {
        let history = history(1, 4, 512.0, 1e-18, 50e-6);
        assert_eq!(history.judge(1e-17), None);
    }

    #[test]
    fn a_wander_ten_times_too_large_is_brought_down() {
        // The case that motivates the module: 50 µs of noise, a 512 s
        // poll, a true wander of 1e-18 and a prior of 1e-17.
        let mut lowered = 0;
        for seed in 1..=10 {
            let judged = history(seed, POINTS, 512.0, 1e-18, 50e-6)
                .judge(1e-17)
                .unwrap();
            assert!((1e-19..=1e-17).contains(&judged), "seed {seed}: {judged:e}");
            if judged < 4e-18 {
                lowered += 1;
            }
        }
        assert!(lowered >= 8, "lowered on {lowered} of 10 seeds");
    }

    #[test]
    fn a_wander_far_too_small_is_raised() {
        // chrony's large-wander test: 1e-14 against a prior of 1e-17.
        for seed in 1..=5 {
            let judged = history(seed, POINTS, 64.0, 1e-14, 50e-6)
                .judge(1e-17)
                .unwrap();
            assert!(judged >= 1e-15, "seed {seed}: {judged:e}");
        }
    }

    #[test]
    fn the_right_wander_stays() {
        // Over 48 phases the estimate scatters (a tenth of the time by
        // more than a decade low: few long spans, and a chi-squared of
        // few degrees has a long lower tail); its median holds.
        let mut judged: Vec<f64> = (1..=21)
            .map(|seed| {
                history(seed, POINTS, 256.0, 1e-17, 50e-6)
                    .judge(1e-17)
                    .unwrap()
            })
            .collect();
        judged.sort_by(f64::total_cmp);
        for value in &judged {
            assert!((3e-19..=5e-17).contains(value), "{judged:?}");
        }
        let median = judged[10];
        assert!((5e-18..=2e-17).contains(&median), "{judged:?}");
    }

    #[test]
    fn short_spans_leave_the_prior() {
        // 16 s polls, 1 ms of noise: over 48 updates a wander of 1e-17
        // is far below the noise, and the prior holds whatever it is.
        let history = history(3, POINTS, 16.0, 1e-17, 1e-3);
        for prior in [1e-19, 1e-17, 1e-15] {
            let judged = history.judge(prior).unwrap();
            assert!(
                judged > prior / 2.0 && judged < prior * 2.0,
                "{prior:e}: {judged:e}"
            );
        }
    }

    #[test]
    fn only_one_source_forms_a_span() {
        // Two sources 1 ms apart, alternating, no wander: the biases do
        // not count.
        let mut noise = Noise(5);
        let mut history = WanderHistory::default();
        for i in 0..POINTS {
            let source = (i % 2) as u64;
            let bias = if source == 0 { 0.0 } else { 1e-3 };
            let t = i as f64 * 256.0;
            history.push(t, bias + 20e-6 * noise.gaussian(), Some(source), 0.0);
        }
        let judged = history.judge(1e-17).unwrap();
        assert!(judged <= 1.5e-17, "{judged:e}");
    }

    #[test]
    fn bursts_and_bad_input_are_dropped() {
        let mut history = WanderHistory::default();
        history.push(f64::NAN, 0.0, None, 0.0);
        history.push(1.0, f64::INFINITY, None, 0.0);
        history.push(2.0, 0.0, None, 0.0);
        history.push(2.0, 0.0, None, 0.0);
        assert_eq!(history.len, 1);
        // A burst's next sample, 2 s on, against a 64 s minimum.
        history.push(4.0, 0.0, None, 64.0);
        assert_eq!(history.len, 1);
        history.push(70.0, 0.0, None, 64.0);
        assert_eq!(history.len, 2);
        history.clear();
        assert_eq!(history.len, 0);
        assert_eq!(history.judge(1e-17), None);
    }

    #[test]
    fn the_judgement_is_kept_until_a_phase_comes() {
        let mut history = history(2, POINTS, 512.0, 1e-18, 50e-6);
        let judged = history.wander(1e-17);
        assert!(judged.is_some());
        assert_eq!(judged, history.judge(1e-17));
        // Not judged again: the same answer for another prior.
        assert_eq!(history.wander(1e-15), judged);
        history.push(1e9, 0.0, Some(7), 0.0);
        assert_ne!(history.wander(1e-15), judged);
        history.clear();
        assert_eq!(history.wander(1e-17), None);
    }
}

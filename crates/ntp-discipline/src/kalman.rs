//! The default estimator: a two-state Kalman filter over the clock's phase
//! and frequency error.
//!
//! # Why not the RFC loop
//!
//! RFC 5905's hybrid PLL/FLL (section 11.3) estimates the frequency by
//! integrating the very offsets it slews away, with gains fixed by the
//! poll exponent. That couples three things that should be independent:
//! correcting an offset winds the frequency up, the gain ignores how good
//! each sample is, and the poll interval follows a jitter average instead
//! of what the loop actually knows. Measured under clknetsim against
//! chronyd, it kept time 12-24 times worse.
//!
//! This estimator keeps the RFC's frame (the same states, step threshold,
//! stepout and panic rules, the same [`Output`](crate::Output) contract)
//! and replaces the loop by the textbook model of a free-running
//! oscillator observed through noisy measurements:
//!
//! - State: `offset` θ, the reference time minus the clock now, and
//!   `frequency` ν, the rate correction the oscillator needs (seconds per
//!   second, the value that goes into a drift file). Between measurements
//!   θ changes by `ν - r` per second, where `r` is the rate correction the
//!   caller is applying: the discipline knows `r` exactly, since it told
//!   the caller, so its own corrections never enter the frequency
//!   estimate. That removes the wind-up by construction.
//! - Process noise: a random walk of the frequency with spectral density
//!   `wander` (s²/s³). Over an interval `dt` it adds `wander * dt³/3` to the
//!   phase variance, `wander * dt²/2` to the covariance and `wander * dt`
//!   to the frequency variance: the standard discretization of a
//!   random-walk frequency model (random-walk FM has an Allan variance
//!   `σ_y(τ)² = wander * τ / 3`). The density is learnt from the
//!   innovations, starting from [`WANDER`](crate::WANDER), and, once
//!   there are hours of phases, judged from the free oscillator's phase
//!   over long spans (`crate::wander`).
//! - Measurements: each offset with its own variance
//!   ([`Update::uncertainty`](crate::Update::uncertainty), floored at the
//!   clock precision). A caller that knows how much of a sample's round-trip
//!   delay is queueing (its excess over the path minimum) can bound the
//!   sample's error by half that excess and weight it accordingly; the
//!   filter then uses every reply, good ones heavily and bad ones a little,
//!   instead of keeping one of eight.
//!
//! The phase estimate is slewed out quickly (within the rate limit) rather
//! than through a loop time constant: the filter has already averaged the
//! noise, so what it believes the offset is, is the best correction there
//! is.

/// 1/3, the coefficient of the wander's phase variance `wander * dt³/3`:
/// multiplying by it spares a division on every prediction.
pub(crate) const ONE_THIRD: f64 = 1.0 / 3.0;

/// Most intervals [`Kalman::steady_phase_growth`] runs: the recursion
/// settles within a few times the number of intervals the frequency is
/// averaged over, about `(variance / (wander dt³))^(1/4)`: 70 for 1 ms of
/// noise and a wander of 1e-17 at 16 s, 220 at 1e-19.
const STEADY_ITERATIONS: usize = 2048;

/// Relative change of the frequency variance over one interval at which
/// [`Kalman::steady_phase_growth`] takes the recursion as settled (while
/// it still settles, the change is about three over the intervals run).
const STEADY_TOLERANCE: f64 = 1e-7;

/// Frequency standard deviation [`Kalman::steady_phase_growth`] starts
/// from, s/s: a frequency not known at all (one second per second).
const STEADY_START_FREQUENCY_SD: f64 = 1.0;

/// A two-state (phase, frequency) Kalman filter, in seconds and seconds
/// per second. Pure arithmetic: time keeping and the corrections applied
/// are the discipline's business.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Kalman {
    /// θ: reference minus clock, seconds, at the filter's time.
    pub(crate) offset: f64,
    /// ν: rate correction the oscillator needs, s/s.
    pub(crate) frequency: f64,
    /// Covariance: var θ, cov(θ, ν), var ν.
    pub(crate) p00: f64,
    pub(crate) p01: f64,
    pub(crate) p11: f64,
    /// Spectral density of the frequency random walk, s²/s³.
    pub(crate) wander: f64,
}

/// What one measurement did to the filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Innovation {
    /// Measured minus predicted offset, seconds.
    pub(crate) residual: f64,
    /// Its predicted variance (phase variance plus measurement variance).
    pub(crate) variance: f64,
    /// `1 / variance`, or 0 when the variance is not a positive finite
    /// number (computed once: the update, the outlier test and the wander
    /// learning all divide by it).
    pub(crate) inverse: f64,
}

impl Innovation {
    fn new(residual: f64, variance: f64) -> Self {
        let inverse = if variance > 0.0 && variance.is_finite() {
            1.0 / variance
        } else {
            0.0
        };
        Self {
            residual,
            variance,
            inverse,
        }
    }

    /// The squared residual in units of its predicted variance (the
    /// normalized innovation squared; 1 on average when the model holds).
    pub(crate) fn normalized_squared(&self) -> f64 {
        self.residual * self.residual * self.inverse
    }
}

impl Kalman {
    /// A filter that has seen one measurement `offset` with variance
    /// `variance`, and knows the frequency as `frequency` with standard
    /// deviation `frequency_sd`.
    pub(crate) fn new(
        offset: f64,
        variance: f64,
        frequency: f64,
        frequency_sd: f64,
        wander: f64,
    ) -> Self {
        Self {
            offset,
            frequency,
            p00: variance,
            p01: 0.0,
            p11: frequency_sd * frequency_sd,
            wander,
        }
    }

    /// Advances the filter by `dt` seconds during which the caller's
    /// corrections moved the clock by `correction` seconds (the integral of
    /// the applied rate correction).
    pub(crate) fn predict(&mut self, dt: f64, correction: f64) {
        let dt = dt.max(0.0);
        self.offset = self.projected_offset(dt, correction);
        let q = self.wander;
        let dt2 = dt * dt;
        // P = F P F' + Q with F = [[1, dt], [0, 1]].
        self.p00 += 2.0 * dt * self.p01 + dt2 * self.p11 + q * dt2 * dt * ONE_THIRD;
        self.p01 += dt * self.p11 + q * dt2 / 2.0;
        self.p11 += q * dt;
    }

    /// The phase [`predict`](Self::predict) would reach after `dt`
    /// seconds with `correction` applied, without touching the covariance.
    pub(crate) fn projected_offset(&self, dt: f64, correction: f64) -> f64 {
        self.offset + self.frequency * dt.max(0.0) - correction
    }

    /// The innovation a measurement `offset` with variance `variance`
    /// would have, without applying it.
    pub(crate) fn innovation(&self, offset: f64, variance: f64) -> Innovation {
        Innovation::new(offset - self.offset, self.p00 + variance)
    }

    /// Applies a measurement (the standard Kalman update, Joseph-free form:
    /// the covariance stays symmetric by construction and is kept
    /// positive by the floors below).
    pub(crate) fn update(&mut self, innovation: Innovation) {
        let inverse = innovation.inverse;
        if inverse == 0.0 {
            return;
        }
        let k0 = self.p00 * inverse;
        let k1 = self.p01 * inverse;
        self.offset += k0 * innovation.residual;
        self.frequency += k1 * innovation.residual;
        let (p00, p01, p11) = (self.p00, self.p01, self.p11);
        self.p00 = ((1.0 - k0) * p00).max(0.0);
        self.p01 = (1.0 - k0) * p01;
        self.p11 = (p11 - k1 * p01).max(0.0);
        // Keep the matrix positive semi-definite against rounding.
        let product = self.p00 * self.p11;
        if self.p01 * self.p01 > product {
            let limit = libm::sqrt(product);
            self.p01 = self.p01.clamp(-limit, limit);
        }
    }

    /// How much the phase variance grows over `dt` seconds without a
    /// measurement, from the frequency uncertainty and a wander `wander`
    /// (the filter's own, or another the caller assumes).
    pub(crate) fn phase_growth(&self, dt: f64, wander: f64) -> f64 {
        let dt2 = dt * dt;
        2.0 * dt * self.p01 + dt2 * self.p11 + wander * dt2 * dt * ONE_THIRD
    }

    /// The phase growth over `dt` seconds of a filter in its steady state
    /// when measuring every `dt` seconds with variance `variance` under a
    /// wander `wander`: the Riccati recursion, started from a frequency
    /// nobody knows, run until its frequency variance settles. It settles
    /// from above, so a recursion cut short at [`STEADY_ITERATIONS`]
    /// overstates the growth (a shorter poll), never understates it.
    pub(crate) fn steady_phase_growth(dt: f64, variance: f64, wander: f64) -> f64 {
        let mut filter = Self::new(0.0, variance, 0.0, STEADY_START_FREQUENCY_SD, wander);
        for _ in 0..STEADY_ITERATIONS {
            let before = filter.p11;
            filter.predict(dt, 0.0);
            let innovation = filter.innovation(0.0, variance);
            filter.update(innovation);
            if (before - filter.p11).abs() <= STEADY_TOLERANCE * filter.p11 {
                break;
            }
        }
        filter.phase_growth(dt, wander)
    }

    /// Widens the uncertainty so that an offset `residual` seen `dt` seconds
    /// after the last accepted measurement is plausible as a frequency
    /// error over that interval: used when consecutive measurements agree
    /// with each other but not with the prediction (the oscillator's
    /// frequency changed, or the first estimate was wrong). The added
    /// covariance is that of a frequency uncertainty `residual / dt` at the
    /// last measurement, carried forward over `dt`, so the next update
    /// moves the frequency as well as the phase.
    pub(crate) fn widen(&mut self, residual: f64, dt: f64) {
        let dt = dt.max(1.0);
        let rate = residual / dt;
        self.p00 += residual * residual;
        self.p01 += residual * rate;
        self.p11 += rate * rate;
    }

    /// Moves the phase by `by` seconds (a step of the clock by `by`
    /// makes reference-minus-clock smaller by `by`).
    pub(crate) fn shift(&mut self, by: f64) {
        self.offset -= by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_still_clock_measured_often_converges_on_phase_and_frequency() {
        // Truth: offset 1 ms, frequency correction needed +20 ppm; exact
        // measurements every 16 s, no correction applied.
        let mut filter = Kalman::new(0.001, 1e-8, 0.0, 1e-4, 1e-18);
        let mut truth = 0.001;
        for _ in 0..50 {
            filter.predict(16.0, 0.0);
            truth += 20e-6 * 16.0;
            let innovation = filter.innovation(truth, 1e-12);
            filter.update(innovation);
        }
        assert!((filter.offset - truth).abs() < 1e-7, "{filter:?}");
        assert!((filter.frequency - 20e-6).abs() < 1e-9, "{filter:?}");
        assert!(filter.p00 > 0.0 && filter.p11 > 0.0);
    }

    #[test]
    fn applied_corrections_do_not_enter_the_frequency() {
        // The clock needs no correction; the caller slews 1 ms away. The
        // prediction knows it, so a measurement showing exactly that moves
        // neither estimate.
        let mut filter = Kalman::new(0.001, 1e-10, 0.0, 1e-6, 1e-18);
        filter.predict(10.0, 0.001);
        let innovation = filter.innovation(0.0, 1e-10);
        assert!(innovation.residual.abs() < 1e-15);
        filter.update(innovation);
        assert!(filter.frequency.abs() < 1e-15);
    }

    /// A filter that started from an unknown frequency (250 ppm) after
    /// `intervals` measurements `dt` apart, each with variance `variance`.
    fn run(dt: f64, variance: f64, wander: f64, intervals: usize) -> Kalman {
        let mut filter = Kalman::new(0.0, variance, 0.0, 250e-6, wander);
        for _ in 0..intervals {
            filter.predict(dt, 0.0);
            let innovation = filter.innovation(0.0, variance);
            filter.update(innovation);
        }
        filter
    }

    #[test]
    fn the_steady_growth_is_what_a_running_filter_reaches() {
        for (dt, variance, wander) in [
            (64.0, 2.5e-9, 1e-17),
            (1024.0, 2.5e-9, 1e-18),
            (16.0, 1e-6, 1e-19),
            (1.0, 1e-14, 1e-17),
        ] {
            let running = run(dt, variance, wander, 5000).phase_growth(dt, wander);
            let steady = Kalman::steady_phase_growth(dt, variance, wander);
            assert!(
                (steady / running - 1.0).abs() < 1e-4,
                "{dt} {variance:e} {wander:e}: {steady:e} {running:e}"
            );
        }
        // Cut short (a million intervals' averaging), it overstates.
        let running = run(16.0, 1e-4, 1e-21, 20_000);
        assert!(
            Kalman::steady_phase_growth(16.0, 1e-4, 1e-21) >= running.phase_growth(16.0, 1e-21)
        );
        // More wander, more growth; a longer interval, more growth.
        let base = Kalman::steady_phase_growth(512.0, 2.5e-9, 1e-18);
        assert!(Kalman::steady_phase_growth(512.0, 2.5e-9, 1e-17) > base);
        assert!(Kalman::steady_phase_growth(1024.0, 2.5e-9, 1e-18) > base);
    }

    #[test]
    fn phase_growth_follows_the_frequency_uncertainty() {
        let filter = Kalman::new(0.0, 1e-10, 0.0, 1e-6, 0.0);
        assert!((filter.phase_growth(100.0, filter.wander) - 1e-8).abs() < 1e-20);
        let mut widened = filter;
        widened.widen(1e-3, 100.0);
        assert!(widened.p11 > filter.p11 && widened.p00 > filter.p00);
        // A confirmed jump of 1 ms after 100 s is mostly explained by a
        // frequency error of 10 ppm.
        let innovation = widened.innovation(1e-3, 1e-12);
        widened.update(innovation);
        assert!((widened.offset - 1e-3).abs() < 1e-5, "{widened:?}");
        assert!((widened.frequency - 1e-5).abs() < 1e-6, "{widened:?}");
        let innovation = Innovation::new(2.0, 4.0);
        assert!((innovation.normalized_squared() - 1.0).abs() < 1e-15);
    }
}

//! The clock discipline state machine and hybrid PLL/FLL (RFC 5905,
//! section 11.3 and appendix A.5.5.6), the clock-adjust process (section
//! 12 and appendix A.5.6.1) and poll-interval control (appendix A.5.5.6).

use ntp_proto::{Date, LeapIndicator, NtpDuration};

use crate::config::{
    AVG, Algorithm, DRIFT_FILE_FREQUENCY_SD, FLL, INITIAL_FREQUENCY_SD, LIMIT, MAX_OFFSET, MAXFREQ,
    MIN_PRECISION_LOG2, MIN_SLEW_TIME, OUTLIER_GATE, PGATE, POLL_DROP, WANDER_MAX, WANDER_MIN,
};
use crate::fallback::FallbackDrifts;
use crate::kalman::{Innovation, Kalman, ONE_THIRD};
use crate::rates::RateHistory;
use crate::wander::WanderHistory;
use crate::{
    ClockAdjustment, Config, ConfigError, IgnoreReason, LeapEvent, LeapSecond, Output, Update,
    UpdateError, UpdateOutcome,
};

// The geometric mean of `observe_variance` takes the eighth root by three
// square roots, which holds for AVG = 8 only.
const _: () = assert!(AVG == 8.0, "observe_variance assumes AVG = 8");

/// [`AVG`] as a count of updates: `observe_variance` takes the plain
/// mean of the first ones.
const AVG_COUNT: u8 = 8;

/// How often the [`Algorithm::Kalman`] estimator asks for a
/// [`Discipline::handle_timeout`] when it has no slew to end and no leap
/// second to apply: it only needs the call to keep its timeline current,
/// so once an hour.
const IDLE_TIMEOUT: NtpDuration = NtpDuration::from_seconds(3600);

/// Gain of the wander learning of the [`Algorithm::Kalman`] estimator: each
/// update moves the logarithm of the wander by (to first order) this share
/// of the squared normalized innovation's excess over one, times the share
/// of the predicted variance the wander explains (1/[`AVG`], the RFC's
/// averaging constant).
const WANDER_GAIN: f64 = 1.0 / AVG;

/// Largest average normalized squared innovation (the last [`AVG`]
/// updates) at which the poll may still climb (`kalman_poll`): 4, the
/// innovations twice as large as predicted, as [`POLL_GATE`](crate::POLL_GATE)
/// lets the clock drift by two measurement deviations between polls. The
/// climb is planned on the predicted phase growth, which holds only the
/// wander the estimator has learnt; that learning follows the wander's
/// share of each prediction, so a wander decades above the assumed one
/// (chrony's 007-largewander, 1e-14 s²/s³) is a vanishing share and is
/// hardly learnt. The innovations show it directly. Not an RFC constant;
/// RFC 5905's rule climbs only while the offsets stay within PGATE
/// jitters (section 11.3), this is the same test on the estimator's own
/// prediction. Only consecutive updates from one source count
/// ([`Update::source`]); a change of source starts the average afresh:
/// between sources the innovations also hold their biases, steady
/// differences no interval explains (four servers up to 0.5 ms apart on
/// a path without jitter held the poll at its minimum and the clock
/// 7 ms off). Measured: 007-largewander seeds 1-9, RMS offset 0.20-0.34
/// ms instead of 0.33-0.54 ms; no other run of the runner moves by more
/// than noise.
const POLL_SURPRISE: f64 = 4.0;

/// Cap of a normalized squared innovation in the wander learning, so that
/// one wild sample moves the wander by at most `WANDER_GAIN * 24`.
const NIS_CAP: f64 = 25.0;

/// Learns the filter's wander from how an innovation compares with its
/// prediction, in proportion to the share of the prediction the wander
/// accounts for (`wander_part`, its variance over the interval).
fn learn_wander(filter: &mut Kalman, innovation: &Innovation, wander_part: f64) {
    let share = (wander_part * innovation.inverse).clamp(0.0, 1.0);
    // exp(x) to first order: |x| <= WANDER_GAIN * (NIS_CAP - 1) = 3, so
    // the factor is clamped to [1/4, 4].
    let nis = innovation.normalized_squared();
    let x = WANDER_GAIN * share * (nis.min(NIS_CAP) - 1.0);
    let factor = if x >= 0.0 { 1.0 + x } else { 1.0 / (1.0 - x) };
    filter.wander = (filter.wander * factor).clamp(WANDER_MIN, WANDER_MAX);
}

#[cfg(test)]
mod tests;

/// The discipline states of RFC 5905, section 11.3, figure 28.
///
/// Exhaustive on purpose: the RFC's state machine has exactly these five,
/// and the Kalman estimator reuses them, so a `match` needs no wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum State {
    /// NSET: never set, no frequency known. The first update steps (above
    /// the step threshold) or starts frequency training.
    Nset,
    /// FSET: never set, frequency known from a drift file. The first
    /// update steps or slews and goes straight to SYNC.
    Fset,
    /// SPIK: an offset above the step threshold was seen in SYNC; further
    /// ones are suppressed until the stepout interval has passed.
    Spik,
    /// FREQ: measuring the frequency directly over the stepout interval.
    Freq,
    /// SYNC: normal operation, PLL/FLL updates.
    Sync,
}

/// Standard deviation of the frequency estimate from which the
/// [`Algorithm::Kalman`] estimator counts its frequency as known (1 ppm,
/// the tolerance chrony assumes of a disciplined clock, `maxclockerror`): from
/// then on an innovation times its own correction in full, before that in
/// proportion (see `kalman_update`).
const SETTLED_FREQUENCY_SD: f64 = 1e-6;

/// Weight 1/4 of a new update interval in the average that times the
/// corrections: the eight requests of an iburst bring it to their 2 s
/// spacing within a few updates, and one pair of sources answering a
/// second apart moves it by a quarter.
const UPDATE_INTERVAL_AVG: f64 = 4.0;

/// What a slew of `applied` seconds really moves the clock when
/// `remaining` is left of its offset: all of it, or the remainder when it
/// would overshoot (the slew ends there).
fn slewed_toward(applied: f64, remaining: f64) -> f64 {
    if (remaining - applied) * remaining > 0.0 {
        applied
    } else {
        remaining
    }
}

/// How long the [`Algorithm::Kalman`] estimator takes to slew out an
/// offset estimate `estimate` whose standard deviation is `sigma` (at
/// least the typical measurement's: see `Discipline::update_sigma`), with
/// updates every `interval` seconds: `ratio` ([`Config::correction_time_ratio`],
/// [`CORRECTION_TIME_RATIO`] by default) times half
/// the interval, scaled by how many standard deviations the estimate is
/// (inversely), at most the ratio times the interval. An estimate at its
/// own noise level is spread over one and a half intervals, so that noise
/// moves the clock's rate by about `sigma / interval`; a real phase error
/// (an initial offset, a frequency step) is many standard deviations out
/// and goes at once, within the rate limit. This is the rule of chrony's
/// `corrtimeratio` (its default, 3, here too); RFC 5905 amortizes every
/// offset over `PLL * 2^poll` instead (appendix A.5.6.1).
fn correction_time(estimate: f64, sigma: f64, interval: f64, ratio: f64) -> f64 {
    let longest = ratio * interval;
    let time = ratio * 0.5 * sigma * interval / estimate.abs();
    if time.is_finite() {
        time.min(longest)
    } else {
        longest
    }
}

/// Outputs waiting for [`Discipline::poll_output`]. Undrained outputs
/// coalesce: steps add up, newer adjustments and leap notices replace older
/// ones.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    panic: Option<f64>,
    step: Option<NtpDuration>,
    leap_apply: Option<LeapSecond>,
    leap_notice: Option<LeapEvent>,
    adjust: Option<ClockAdjustment>,
}

/// The RFC 5905 clock discipline as a sans-IO state machine.
///
/// It never reads or sets a clock. The caller feeds it the output of the
/// mitigation algorithms with [`handle_update`](Self::handle_update) after
/// each poll, calls [`handle_timeout`](Self::handle_timeout) about once a
/// second, and after each of those calls drains
/// [`poll_output`](Self::poll_output) until it returns
/// [`Output::Timeout`], applying every action to its clock at once.
///
/// # Contract
///
/// - `now` is always the current reading of the clock being disciplined,
///   taken *after* every earlier output was applied. Steps the discipline
///   asked for (including leap seconds) are accounted for: its internal
///   timeline stays continuous across them.
/// - [`Output::Adjust`] holds until the next one: run the clock at
///   [`ClockAdjustment::rate`] (seconds per second, positive = faster)
///   meanwhile. The phase part is recomputed every second
///   ([`handle_timeout`](Self::handle_timeout)), which is the
///   per-second amortization of `clock_adjust()` (RFC 5905, appendix
///   A.5.6.1); calling late lets the slew run longer, which the
///   discipline accounts for (without overshooting the residual offset).
/// - [`Output::Step`] and [`LeapEvent::Apply`] are applied at once, by
///   adding the offset to the clock.
/// - An extra [`handle_timeout`](Self::handle_timeout) before the
///   deadline is a no-op. A `now` earlier than the previous one means
///   somebody else stepped the clock back: the discipline keeps its own
///   timeline monotonic and lets the offsets show that step.
/// - Bad input never panics and never changes the state: it is refused
///   with an [`UpdateError`].
///
/// See the [crate docs](crate) for a complete run loop.
#[derive(Clone, Debug)]
pub struct Discipline {
    config: Config,
    /// (2^precision)^2, the floor of a squared jitter sample.
    precision_sq: f64,
    /// The clock reading at which the internal timeline (process time,
    /// `c.t`) is zero; moved by every step so that process time is
    /// continuous.
    epoch: Date,
    state: State,
    /// Process time of the latest input.
    now: NtpDuration,
    /// Process time of the last accepted update, `s.t`.
    update_time: NtpDuration,
    /// Residual offset still to slew, `c.offset`, seconds.
    residual: f64,
    /// Offset of the last accepted update, `c.last`, seconds.
    last_offset: f64,
    /// Frequency correction, `c.freq`, seconds per second.
    frequency: f64,
    /// Squared clock jitter, `c.jitter^2`.
    jitter_sq: f64,
    /// Squared clock wander, `c.wander^2`.
    wander_sq: f64,
    /// Poll-adjust hysteresis counter, `c.count`.
    count: i32,
    /// Poll exponent, `s.poll`.
    poll: i8,
    /// 2^poll, seconds.
    tau: f64,
    /// Phase slew rate the caller is applying now, seconds per second.
    phase_slew: f64,
    /// The part of the residual that is the leftover of an initial offset
    /// (first update, end of frequency training), slewed outside the loop:
    /// the PLL does not integrate it. Seconds.
    open_loop: f64,
    /// Slew rate of `open_loop`, seconds per second.
    open_loop_slew: f64,
    /// Phase slewed since the start, seconds.
    cumulative_slew: f64,
    /// Everything done to the clock since the start up to process time
    /// `now`, seconds: steps (not leap seconds), phase slews and the
    /// frequency correction (see [`Discipline::correction_at`]).
    total_correction: f64,
    /// Process time of the next clock-adjust second.
    next_tick: NtpDuration,
    leap: Option<LeapSecond>,
    /// The moment of the last leap second applied, never armed again.
    last_leap: Option<Date>,
    pending: Pending,
    /// [`Algorithm::Kalman`]: the estimator, once the first update came.
    kalman: Option<Kalman>,
    /// Process time the estimator's state refers to.
    kalman_time: NtpDuration,
    /// Rate-adjusted time since `kalman_time`, the estimator's time base:
    /// the integral of `1 / (1 + r)` over the clock's own seconds, where
    /// `r` is the rate correction in force. A clock running at `r` reads
    /// `1 + r` times the oscillator's time, so over this time base the
    /// offset changes by exactly `frequency - r` per unit, however far the
    /// correction is from the oscillator's need (RFC 5905's loop, in clock
    /// seconds, is off by the square of that difference: 94 ppm after 1 %).
    elapsed_tau: f64,
    /// Integral of the rate correction applied since `kalman_time` over
    /// the rate-adjusted time base, s.
    correction: f64,
    /// Process time at which the current phase slew ends.
    slew_end: Option<NtpDuration>,
    /// Consecutive outliers held back.
    outliers: u32,
    /// Standard deviation of the drift file's frequency (FSET), s/s.
    initial_frequency_sd: f64,
    /// Average seconds between the updates the [`Algorithm::Kalman`]
    /// estimator accepted (zero before the second; weight
    /// 1/[`UPDATE_INTERVAL_AVG`]): the interval its correction is spread
    /// over, at most the poll interval, and shorter during an iburst.
    update_interval: f64,
    /// Updates accepted by the [`Algorithm::Kalman`] estimator with the
    /// frequency known (see `counts_for_make_step`), for
    /// [`Config::make_step`]'s limit (saturating).
    accepted: u32,
    /// Updates that changed the clock (slewed or stepped it), for
    /// [`Config::max_change`]'s start (saturating).
    clock_updates: u32,
    /// Updates ignored so far by [`Config::max_change`].
    max_change_ignored: u32,
    /// Typical measurement variance of the poll gate: an exponential
    /// average of ln(variance) with weight 1/[`AVG`], kept as its
    /// exponential (a geometric mean, which a few samples with a long
    /// queueing delay do not dominate). Until [`AVG`] variances are seen,
    /// the plain geometric mean of those seen (see `observe_variance`).
    typical_variance: Option<f64>,
    /// The recent normalized squared innovations, averaged (`AVG`): 1
    /// while the estimator's predictions hold (`kalman_poll`). Only of
    /// updates from the same source as the one before ([`Update::source`]).
    surprise_avg: f64,
    /// The source of the last update the estimator took.
    last_source: Option<u64>,
    /// The free oscillator's phases, for the wander over long spans
    /// (`crate::wander`).
    wander_history: WanderHistory,
    /// Measurement variances averaged into `typical_variance` so far
    /// (saturating).
    variances_seen: u8,
    /// The variance of the last accepted measurement.
    measured_variance: f64,
    /// The measurement variance of the update that planned the slew in
    /// progress (see `slew_confidence`).
    slew_variance: f64,
    /// Process time of the last poll change.
    poll_changed: NtpDuration,
    /// Process time at which the caller's current rate took effect, and
    /// the rate before it: the correction applied since an aged sample.
    rate_changed: NtpDuration,
    /// The rates in force before it.
    rates: RateHistory,
    /// [`Config::fallback_drift`]'s averages.
    fallback: FallbackDrifts,
    /// Process time of the last estimate the averages took.
    fallback_recorded: Option<NtpDuration>,
}

impl Discipline {
    /// A discipline without a known frequency (state NSET) whose timeline
    /// starts at `now`.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of an invalid `config`.
    pub fn new(config: Config, now: Date) -> Result<Self, ConfigError> {
        config.validate()?;
        let precision = libm::exp2(f64::from(config.precision));
        let mut discipline = Self {
            config,
            precision_sq: precision * precision,
            epoch: now,
            state: State::Nset,
            now: NtpDuration::ZERO,
            update_time: NtpDuration::ZERO,
            residual: 0.0,
            last_offset: 0.0,
            frequency: 0.0,
            jitter_sq: 0.0,
            wander_sq: 0.0,
            count: 0,
            poll: config.min_poll,
            tau: 1.0,
            phase_slew: 0.0,
            open_loop: 0.0,
            open_loop_slew: 0.0,
            cumulative_slew: 0.0,
            total_correction: 0.0,
            next_tick: NtpDuration::ONE_SECOND,
            leap: None,
            last_leap: None,
            pending: Pending::default(),
            kalman: None,
            kalman_time: NtpDuration::ZERO,
            elapsed_tau: 0.0,
            correction: 0.0,
            slew_end: None,
            outliers: 0,
            initial_frequency_sd: DRIFT_FILE_FREQUENCY_SD,
            update_interval: 0.0,
            accepted: 0,
            clock_updates: 0,
            max_change_ignored: 0,
            typical_variance: None,
            surprise_avg: 1.0,
            last_source: None,
            wander_history: WanderHistory::default(),
            variances_seen: 0,
            measured_variance: 0.0,
            slew_variance: 0.0,
            poll_changed: NtpDuration::ZERO,
            rate_changed: NtpDuration::ZERO,
            rates: RateHistory::new(),
            fallback: FallbackDrifts::new(),
            fallback_recorded: None,
        };
        if config.algorithm == Algorithm::Kalman {
            discipline.next_tick = IDLE_TIMEOUT;
        }
        discipline.set_poll(config.min_poll);
        discipline.queue_adjust();
        Ok(discipline)
    }

    /// A discipline that starts from a known frequency correction (seconds
    /// per second, e.g. from a drift file), in state FSET: it skips
    /// frequency training (RFC 5905, section 11.3, figure 28). The first
    /// output is an [`Output::Adjust`] with this frequency.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of an invalid `config`, or
    /// [`ConfigError::InitialFrequency`] if `frequency` is not finite or
    /// exceeds [`Config::max_frequency`] ([`MAXFREQ`](crate::MAXFREQ) by default).
    pub fn with_frequency(config: Config, now: Date, frequency: f64) -> Result<Self, ConfigError> {
        Self::with_frequency_sd(config, now, frequency, DRIFT_FILE_FREQUENCY_SD)
    }

    /// As [`with_frequency`](Self::with_frequency), with the frequency's
    /// standard deviation, s/s ([`DRIFT_FILE_FREQUENCY_SD`] there): chrony
    /// writes it into its drift file as the skew, and a file written by a
    /// clock that had not settled says so. The [`Algorithm::Kalman`]
    /// estimator starts from it (at most the spread it assumes without a
    /// drift file); RFC 5905's loop has no use for it.
    ///
    /// # Errors
    ///
    /// As [`with_frequency`](Self::with_frequency), and
    /// [`ConfigError::InitialFrequency`] for an `sd` that is not positive
    /// and finite.
    pub fn with_frequency_sd(
        config: Config,
        now: Date,
        frequency: f64,
        sd: f64,
    ) -> Result<Self, ConfigError> {
        let mut discipline = Self::new(config, now)?;
        if !(frequency.is_finite() && frequency.abs() <= config.max_frequency) {
            return Err(ConfigError::InitialFrequency);
        }
        if !(sd.is_finite() && sd > 0.0) {
            return Err(ConfigError::InitialFrequency);
        }
        discipline.state = State::Fset;
        discipline.frequency = frequency;
        discipline.initial_frequency_sd = sd.min(discipline.unknown_frequency_sd());
        discipline.queue_adjust();
        Ok(discipline)
    }

    /// The frequency's standard deviation before any measurement without a
    /// drift file: two of them span the whole range, as
    /// [`INITIAL_FREQUENCY_SD`] does for [`MAXFREQ`](crate::MAXFREQ).
    fn unknown_frequency_sd(&self) -> f64 {
        INITIAL_FREQUENCY_SD * self.config.max_frequency / MAXFREQ
    }

    /// Processes one update from the mitigation algorithms at clock reading
    /// `now`: the `local_clock()` routine of RFC 5905, appendix A.5.5.6.
    ///
    /// The resulting actions are queued for [`poll_output`](Self::poll_output).
    ///
    /// # Errors
    ///
    /// An [`UpdateError`] for a non-finite or out-of-range offset or jitter,
    /// or a `now` outside the 68-year range of the timeline. The state is
    /// then unchanged.
    pub fn handle_update(
        &mut self,
        now: Date,
        update: Update,
    ) -> Result<UpdateOutcome, UpdateError> {
        let offset = update.offset;
        if !offset.is_finite() {
            return Err(UpdateError::NonFiniteOffset);
        }
        if offset.abs() > MAX_OFFSET {
            return Err(UpdateError::OffsetOutOfRange);
        }
        if !(update.jitter.is_finite() && (0.0..=MAX_OFFSET).contains(&update.jitter)) {
            return Err(UpdateError::InvalidJitter);
        }
        if !(update.age.is_finite() && (0.0..=MAX_OFFSET).contains(&update.age)) {
            return Err(UpdateError::InvalidAge);
        }
        if !(update.uncertainty.is_finite() && (0.0..=MAX_OFFSET).contains(&update.uncertainty)) {
            return Err(UpdateError::InvalidUncertainty);
        }
        if !(update.precision.is_finite() && (0.0..=MAX_OFFSET).contains(&update.precision)) {
            return Err(UpdateError::InvalidPrecision);
        }
        let age = if update.age > 0.0 {
            NtpDuration::from_seconds_f64(update.age).map_err(|_| UpdateError::InvalidAge)?
        } else {
            NtpDuration::ZERO
        };
        let (epoch, t) = self.timeline(now)?;
        // Time of the measurement, p->t.
        let sample_time = t.saturating_sub(age);

        let first = matches!(self.state, State::Nset | State::Fset);
        if let Some(panic) = self.config.panic_threshold {
            if offset.abs() > panic && (self.config.panic_on_first_update || !first) {
                self.commit(epoch, t);
                self.pending.panic = Some(offset);
                return Ok(UpdateOutcome::Panic(offset));
            }
        }

        if let Some(outcome) = self.max_change(epoch, t, offset) {
            return Ok(outcome);
        }
        let outcome = if self.config.algorithm == Algorithm::Kalman {
            let outcome = self.kalman_update(epoch, t, sample_time, update)?;
            self.schedule_leap(update.leap);
            outcome
        } else {
            self.rfc_update(epoch, t, sample_time, update)?
        };
        if matches!(outcome, UpdateOutcome::Slew | UpdateOutcome::Step(_)) {
            self.clock_updates = self.clock_updates.saturating_add(1);
        }
        Ok(outcome)
    }

    /// [`Config::max_change`]: `Some` outcome when the update is refused
    /// (ignored, or a panic once the ignores are used up).
    fn max_change(&mut self, epoch: Date, t: NtpDuration, offset: f64) -> Option<UpdateOutcome> {
        let rule = self.config.max_change?;
        if self.clock_updates < rule.start || offset.abs() <= rule.offset {
            return None;
        }
        self.commit(epoch, t);
        if rule
            .ignore
            .is_some_and(|ignore| self.max_change_ignored >= ignore)
        {
            self.pending.panic = Some(offset);
            return Some(UpdateOutcome::Panic(offset));
        }
        self.max_change_ignored = self.max_change_ignored.saturating_add(1);
        Some(UpdateOutcome::Ignored(IgnoreReason::MaxChange))
    }

    /// The RFC 5905 discipline ([`Algorithm::Rfc5905`]) for one update,
    /// after the checks common to both algorithms.
    fn rfc_update(
        &mut self,
        epoch: Date,
        t: NtpDuration,
        sample_time: NtpDuration,
        update: Update,
    ) -> Result<UpdateOutcome, UpdateError> {
        let offset = update.offset;
        let first = matches!(self.state, State::Nset | State::Fset);

        // Interval since the last accepted update, mu.
        let mu = sample_time
            .saturating_sub(self.update_time)
            .to_seconds_f64()
            .max(0.0);
        let outcome = if offset.abs() > self.config.step_threshold {
            match self.state {
                State::Sync => {
                    // The first outlier is suppressed.
                    self.commit(epoch, t);
                    self.state = State::Spik;
                    return Ok(UpdateOutcome::Ignored(IgnoreReason::Spike));
                }
                State::Freq | State::Spik if mu < self.config.stepout => {
                    self.commit(epoch, t);
                    return Ok(UpdateOutcome::Ignored(IgnoreReason::Spike));
                }
                _ => {}
            }
            // In FREQ the step also yields the frequency measured since
            // training started.
            let frequency = if self.state == State::Freq && mu > 0.0 {
                (offset - self.residual) / mu
            } else {
                0.0
            };
            // Validated before anything is touched.
            let step = self.queue_step(epoch, t, offset)?;
            self.count = 0;
            self.open_loop = 0.0;
            self.set_poll(self.config.min_poll);
            if self.state == State::Nset {
                self.reset_clock(State::Freq, sample_time, 0.0);
            } else {
                self.reset_clock(State::Sync, sample_time, 0.0);
                self.adjust_frequency(frequency);
                self.adjust_poll();
            }
            UpdateOutcome::Step(step)
        } else {
            self.commit(epoch, t);
            // Clock jitter: RMS of exponentially weighted offset
            // differences, seeded by the system jitter at the first update.
            if first {
                self.jitter_sq = (update.jitter * update.jitter).max(self.precision_sq);
            } else {
                let difference = offset - self.last_offset;
                let sample = (difference * difference).max(self.precision_sq);
                self.jitter_sq += (sample - self.jitter_sq) / AVG;
            }
            let frequency = match self.state {
                State::Nset => {
                    // Measure the frequency directly; slew the offset.
                    self.reset_clock(State::Freq, sample_time, offset);
                    self.queue_adjust();
                    self.schedule_leap(update.leap);
                    return Ok(UpdateOutcome::Ignored(
                        IgnoreReason::FrequencyTrainingStarted,
                    ));
                }
                State::Fset => 0.0,
                State::Freq => {
                    if mu < self.config.stepout || mu <= 0.0 {
                        self.schedule_leap(update.leap);
                        return Ok(UpdateOutcome::Ignored(IgnoreReason::FrequencyTraining));
                    }
                    (offset - self.residual) / mu
                }
                State::Spik | State::Sync => self.pll_fll(offset, mu),
            };
            self.reset_clock(State::Sync, sample_time, offset);
            self.adjust_frequency(frequency);
            self.adjust_poll();
            UpdateOutcome::Slew
        };
        self.queue_adjust();
        self.schedule_leap(update.leap);
        Ok(outcome)
    }

    /// The clock-adjust second of RFC 5905, appendix A.5.6.1: call when the
    /// clock reaches the last [`Output::Timeout`] (earlier calls do nothing
    /// but bookkeeping). Recomputes the phase slew and applies a due leap
    /// second.
    ///
    /// A `now` more than 68 years away from the timeline is ignored.
    pub fn handle_timeout(&mut self, now: Date) {
        let Ok((epoch, t)) = self.timeline(now) else {
            return;
        };
        self.commit(epoch, t);
        if let Some(leap) = self.leap {
            if now >= leap.at {
                self.leap = None;
                self.last_leap = Some(leap.at);
                self.pending.leap_apply = Some(leap);
                if let Some(stepped) = self.epoch.checked_add(leap.step()) {
                    self.epoch = stepped;
                }
            }
        }
        if self.config.algorithm == Algorithm::Kalman {
            if t >= self.next_tick {
                if self.slew_end.is_some_and(|end| t >= end) {
                    self.note_rate_change(t);
                    self.slew_end = None;
                    self.phase_slew = 0.0;
                    self.residual = 0.0;
                    // What the slew left over, or overshot: a caller's
                    // timer ends it a little late or early, by its
                    // granularity times the slew rate (a millisecond at
                    // 1/12 s/s is 83 us). The estimate counts what was
                    // really applied. No measurement came since the slew
                    // was planned, so what is left is that error of the
                    // actuation alone, known to the clock's precision: it
                    // is paced by that, not by the measurements' noise,
                    // which at a 1024 s poll would leave most of it for
                    // the next sample to find.
                    match self.kalman {
                        Some(filter) => {
                            let estimate =
                                filter.projected_offset(self.elapsed_tau, self.correction);
                            self.plan_slew(t, estimate, libm::sqrt(self.precision_sq));
                        }
                        None => self.queue_kalman_adjust(0.0),
                    }
                }
                self.next_tick = self.kalman_next_tick(t);
            }
            self.apply_fallback(t);
            return;
        }
        if t >= self.next_tick {
            self.queue_adjust();
            self.next_tick = t.saturating_add(NtpDuration::ONE_SECOND);
        }
    }

    /// Tells the discipline that somebody else (an operator, another
    /// program, a resumed virtual machine) stepped the clock by `by`, not
    /// the caller acting on an [`Output::Step`]. The timeline moves with
    /// the clock, so that the step is not counted as elapsed time (a
    /// forward step of hours would otherwise read as hours of slewing and
    /// frequency correction applied, and the discipline would slew back
    /// what it believed it had overshot); the offset it made is for the
    /// next measurements to show. Nothing else changes. A step that would
    /// take the timeline out of range is ignored.
    pub fn clock_stepped(&mut self, by: NtpDuration) {
        if let Some(epoch) = self.epoch.checked_add(by) {
            self.epoch = epoch;
            self.total_correction += by.to_seconds_f64();
        }
    }

    /// The next action for the caller. Drain until [`Output::Timeout`].
    ///
    /// Order: [`Output::Panic`], [`Output::Step`], [`Output::Leap`]
    /// (apply before notices), [`Output::Adjust`], then
    /// [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(offset) = self.pending.panic.take() {
            return Output::Panic { offset };
        }
        if let Some(step) = self.pending.step.take() {
            return Output::Step(step);
        }
        if let Some(leap) = self.pending.leap_apply.take() {
            return Output::Leap(LeapEvent::Apply(leap));
        }
        if let Some(event) = self.pending.leap_notice.take() {
            return Output::Leap(event);
        }
        if let Some(adjust) = self.pending.adjust.take() {
            return Output::Adjust(adjust);
        }
        Output::Timeout(self.next_timeout())
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due, as a
    /// clock reading: the next clock-adjust second, or the leap moment if
    /// that comes first.
    #[must_use]
    pub fn next_timeout(&self) -> Date {
        let tick = self.epoch.checked_add(self.next_tick).unwrap_or(Date::MAX);
        match self.leap {
            Some(leap) if leap.at < tick => leap.at,
            _ => tick,
        }
    }

    /// The exponent of the [`Config::fallback_drift`] average the clock
    /// runs at now (no update for 2^exponent seconds), or `None`.
    #[must_use]
    pub const fn fallback_drift(&self) -> Option<u8> {
        self.fallback.active()
    }

    /// The discipline state.
    #[must_use]
    pub const fn state(&self) -> State {
        self.state
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// The frequency correction `c.freq`, seconds per second (positive:
    /// the clock is made to run faster), within ±[`Config::max_frequency`]. Save it to a
    /// drift file and pass it to [`with_frequency`](Self::with_frequency)
    /// on the next start.
    #[must_use]
    pub const fn frequency(&self) -> f64 {
        self.frequency
    }

    /// The standard deviation of the [`frequency`](Self::frequency)
    /// estimate, seconds per second, as the [`Algorithm::Kalman`]
    /// estimator knows it at its last measurement; `None` before the first
    /// measurement and with RFC 5905's loop, which keeps no such figure
    /// (its wander is the RMS of frequency changes, section 11.3, not an
    /// uncertainty). A caller saving a drift file can wait until this is
    /// as small as what the file is assumed to be worth
    /// ([`DRIFT_FILE_FREQUENCY_SD`](crate::DRIFT_FILE_FREQUENCY_SD)).
    #[must_use]
    pub fn frequency_sd(&self) -> Option<f64> {
        self.kalman.map(|filter| libm::sqrt(filter.p11.max(0.0)))
    }

    /// The clock wander `c.wander`, seconds per second: the RMS of
    /// exponentially weighted frequency changes (RFC 5905, section 11.3).
    #[must_use]
    pub fn wander(&self) -> f64 {
        libm::sqrt(self.wander_sq)
    }

    /// The clock jitter `c.jitter`, seconds: the RMS of exponentially
    /// weighted offset differences (RFC 5905, section 11.3), at least the
    /// precision.
    #[must_use]
    pub fn jitter(&self) -> f64 {
        libm::sqrt(self.jitter_sq)
    }

    /// The residual offset `c.offset` not slewed yet, seconds.
    #[must_use]
    pub const fn residual_offset(&self) -> f64 {
        self.residual
    }

    /// The phase slewed since the start, seconds: the sum over time of
    /// every [`ClockAdjustment::phase_slew`] (not the frequency part, not
    /// steps).
    ///
    /// A caller whose clock filter may pick an older sample (RFC 5905,
    /// section 10) adds this to each measured offset before it goes into
    /// the filter and subtracts the then current value from the filter's
    /// output, with [`Update::age`] set to the sample's age: the chosen
    /// sample then describes the clock as it is now, not as it was before
    /// the slews in between.
    #[must_use]
    pub const fn cumulative_slew(&self) -> f64 {
        self.cumulative_slew
    }

    /// Everything done to the clock from the start until the clock read
    /// `now`, seconds: the steps (the discipline's and those reported to
    /// [`clock_stepped`](Self::clock_stepped); not leap seconds, which the
    /// sources' clocks make too), the phase slews and the frequency
    /// correction integrated over time, at the rates handed out so far and
    /// extrapolated at the current one past the latest input.
    ///
    /// An offset measured at `now` plus this is the offset of the
    /// oscillator left alone since the start: a line whose slope is its
    /// frequency error (plus wander and noise), whatever the discipline did
    /// in between. The caller fits such lines to judge how much a source's
    /// samples scatter (chrony's `maxjitter`).
    #[must_use]
    pub fn correction_at(&self, now: Date) -> f64 {
        let elapsed = match now.checked_duration_since(self.epoch) {
            Some(t) => t.to_seconds_f64() - self.now.to_seconds_f64(),
            None => 0.0,
        };
        self.total_correction + self.correction_over(elapsed)
    }

    /// The phase slewed from the start until the clock read `now`,
    /// seconds: [`cumulative_slew`](Self::cumulative_slew) and the slew in
    /// progress since the latest input, at its current rate (not the
    /// frequency correction, which makes the clock run true; not steps).
    ///
    /// The difference between two clock readings is what the discipline
    /// moved the clock by in between, beyond its rate: a caller that
    /// adds it to the earlier reading has both in the later one's frame
    /// (a request's T1 and its answer's T4, while a slew is in progress).
    #[must_use]
    pub fn slew_at(&self, now: Date) -> f64 {
        let elapsed = match now.checked_duration_since(self.epoch) {
            Some(t) => t.to_seconds_f64() - self.now.to_seconds_f64(),
            None => 0.0,
        };
        self.cumulative_slew + self.slew_over(elapsed.max(0.0))
    }

    /// The phase slew the caller applies over `elapsed` seconds of the
    /// clock from process time `now` at the current rates (see
    /// [`correction_over`](Self::correction_over)).
    fn slew_over(&self, elapsed: f64) -> f64 {
        if self.config.algorithm == Algorithm::Kalman {
            let rate = self.frequency + self.phase_slew;
            return self.phase_slew * elapsed / (1.0 + rate);
        }
        let tau = elapsed / (1.0 + self.frequency + self.phase_slew + self.open_loop_slew);
        slewed_toward(self.phase_slew * tau, self.residual)
    }

    /// The correction the caller applies over `elapsed` seconds of the
    /// clock from process time `now` at the current rates, each slew
    /// stopping at what is left of its offset.
    ///
    /// `elapsed` is read off the corrected clock: the oscillator ran
    /// `elapsed / (1 + rate)` of it.
    fn correction_over(&self, elapsed: f64) -> f64 {
        if self.config.algorithm == Algorithm::Kalman {
            let rate = self.frequency + self.phase_slew;
            return rate * elapsed / (1.0 + rate);
        }
        let tau = elapsed / (1.0 + self.frequency + self.phase_slew + self.open_loop_slew);
        self.frequency * tau
            + slewed_toward(self.phase_slew * tau, self.residual)
            + slewed_toward(self.open_loop_slew * tau, self.open_loop)
    }

    /// The poll exponent `s.poll`, log2 seconds, within the configured
    /// range; the caller polls its sources at this interval.
    #[must_use]
    pub const fn poll(&self) -> i8 {
        self.poll
    }

    /// The poll interval 2^[`poll`](Self::poll).
    #[must_use]
    pub const fn poll_interval(&self) -> NtpDuration {
        NtpDuration::from_log2_seconds(self.poll)
    }

    /// The poll-adjust hysteresis counter `c.count`, within ±[`LIMIT`].
    #[must_use]
    pub const fn poll_hysteresis(&self) -> i32 {
        self.count
    }

    /// The armed leap second, if any.
    #[must_use]
    pub const fn leap_second(&self) -> Option<LeapSecond> {
        self.leap
    }

    /// Maps `now` onto the internal timeline: `(epoch, t)` with
    /// `t = now - epoch` not before the latest input. If `now` went back,
    /// the epoch moves back with it.
    fn timeline(&self, now: Date) -> Result<(Date, NtpDuration), UpdateError> {
        let t = now
            .checked_duration_since(self.epoch)
            .ok_or(UpdateError::TimeOutOfRange)?;
        if t >= self.now {
            return Ok((self.epoch, t));
        }
        let back = self.now.checked_sub(t).ok_or(UpdateError::TimeOutOfRange)?;
        let epoch = self
            .epoch
            .checked_sub(back)
            .ok_or(UpdateError::TimeOutOfRange)?;
        Ok((epoch, self.now))
    }

    /// Moves to process time `t` (from [`timeline`](Self::timeline)),
    /// accounting for the phase slew the caller applied since the last
    /// input. The slew never overshoots the residual offset.
    fn commit(&mut self, epoch: Date, t: NtpDuration) {
        let elapsed = t.saturating_sub(self.now).to_seconds_f64();
        self.total_correction += self.correction_over(elapsed);
        if self.config.algorithm == Algorithm::Kalman {
            // The caller runs at the last adjustment until the next one,
            // slew included, even if it serves the end-of-slew timeout
            // late: count what it really applied.
            // `elapsed` is read off the clock being corrected, which runs
            // `1 + rate` times as fast as its oscillator meanwhile: at
            // 500 ppm the difference is 0.05 %, at FAST_SLEW 8 %.
            let tau = elapsed / (1.0 + self.frequency + self.phase_slew);
            let applied = self.phase_slew * tau;
            self.elapsed_tau += tau;
            self.correction += self.frequency * tau + applied;
            self.cumulative_slew += applied;
            self.residual -= slewed_toward(applied, self.residual);
            self.epoch = epoch;
            self.now = t;
            return;
        }
        let slewed = slewed_toward(self.phase_slew * elapsed, self.residual);
        self.cumulative_slew += slewed;
        self.residual -= slewed;
        self.open_loop -= slewed_toward(self.open_loop_slew * elapsed, self.open_loop);
        self.epoch = epoch;
        self.now = t;
    }

    /// `rstclock()` of RFC 5905, appendix A.5.5.7.
    fn reset_clock(&mut self, state: State, t: NtpDuration, offset: f64) {
        // Leaving NSET, FSET or FREQ: the offset handed over is the
        // initial one (zero after a step).
        if self.config.open_loop_initial_offset && !matches!(self.state, State::Sync | State::Spik)
        {
            self.open_loop = offset;
        }
        self.state = state;
        self.residual = offset;
        self.last_offset = offset;
        self.update_time = t;
    }

    /// The PLL and FLL frequency contributions of an update in SYNC or SPIK
    /// (RFC 5905, appendix A.5.5.6).
    fn pll_fll(&self, offset: f64, mu: f64) -> f64 {
        let mut frequency = 0.0;
        let allan = self.config.allan_intercept;
        // FLL: only above half the Allan intercept, weighted in steps up to
        // 1 / AVG as the poll interval grows.
        if self.tau > allan / 2.0 {
            let weight = f64::from(FLL.saturating_sub(self.poll)).max(AVG);
            frequency += (offset - self.residual) / (mu.max(allan) * weight);
        }
        // PLL: integrate over the update interval, at most one poll
        // interval (oversampling, never undersampling). The initial offset
        // still being slewed open loop is not integrated.
        let interval = mu.clamp(0.0, self.tau);
        let gain = 4.0 * self.config.pll_gain * self.tau;
        frequency + (offset - self.open_loop) * interval / (gain * gain)
    }

    /// Adds a frequency contribution, clamps to ±MAXFREQ and updates the
    /// wander (RFC 5905, appendix A.5.5.6).
    fn adjust_frequency(&mut self, contribution: f64) {
        let limit = self.config.max_frequency;
        let frequency = (self.frequency + contribution).clamp(-limit, limit);
        let change = frequency - self.frequency;
        self.wander_sq += (change * change - self.wander_sq) / AVG;
        self.frequency = frequency;
    }

    /// Poll-interval control with the hysteresis counter (RFC 5905, section
    /// 11.3 and appendix A.5.5.6): up by the poll exponent while the offset
    /// is within PGATE times the jitter, down by twice that otherwise; past
    /// ±LIMIT the poll exponent moves by one within the configured range.
    fn adjust_poll(&mut self) {
        let poll = i32::from(self.poll.max(1));
        if self.residual * self.residual < PGATE * PGATE * self.jitter_sq {
            self.count = self.count.saturating_add(poll);
            if self.count > LIMIT {
                self.count = LIMIT;
                if self.poll < self.config.max_poll {
                    self.count = 0;
                    self.set_poll(self.poll.saturating_add(1));
                }
            }
        } else {
            self.count = self.count.saturating_sub(poll.saturating_mul(2));
            if self.count < -LIMIT {
                self.count = -LIMIT;
                if self.poll > self.config.min_poll {
                    self.count = 0;
                    self.set_poll(self.poll.saturating_sub(1));
                }
            }
        }
    }

    fn set_poll(&mut self, poll: i8) {
        self.poll = poll.clamp(self.config.min_poll, self.config.max_poll);
        self.tau = libm::exp2(f64::from(self.poll));
    }

    /// Recomputes the phase slew of `clock_adjust()` (RFC 5905, appendix
    /// A.5.6.1): the residual over `PLL * min(2^poll, ALLAN)` per second,
    /// and queues the adjustment.
    fn queue_adjust(&mut self) {
        if self.config.algorithm == Algorithm::Kalman {
            let remaining = self
                .slew_end
                .map_or(0.0, |end| end.saturating_sub(self.now).to_seconds_f64());
            self.queue_kalman_adjust(remaining);
            return;
        }
        let divisor = self.config.pll_gain * self.tau.min(self.config.allan_intercept);
        let limit = self.config.max_slew;
        self.phase_slew = (self.residual / divisor).clamp(-limit, limit);
        self.open_loop_slew = (self.open_loop / divisor).clamp(-limit, limit);
        self.pending.adjust = Some(ClockAdjustment {
            frequency: self.frequency,
            phase_slew: self.phase_slew,
            duration: if self.phase_slew == 0.0 { 0.0 } else { 1.0 },
        });
    }

    fn queue_kalman_adjust(&mut self, duration: f64) {
        self.pending.adjust = Some(ClockAdjustment {
            frequency: self.frequency,
            phase_slew: self.phase_slew,
            duration: if self.phase_slew == 0.0 {
                0.0
            } else {
                duration
            },
        });
    }

    /// The next timeout of the Kalman estimator: the end of the slew, or
    /// an idle call an hour on.
    fn kalman_next_tick(&self, t: NtpDuration) -> NtpDuration {
        let tick = self
            .slew_end
            .unwrap_or_else(|| t.saturating_add(IDLE_TIMEOUT));
        match self.next_fallback(t) {
            Some(fallback) if fallback < tick => fallback,
            _ => tick,
        }
    }

    /// Process time at which the next fallback interval of
    /// [`Config::fallback_drift`] begins, if one is still to come.
    fn next_fallback(&self, t: NtpDuration) -> Option<NtpDuration> {
        let rule = self.config.fallback_drift?;
        self.kalman?;
        let since = t.saturating_sub(self.update_time).to_seconds_f64();
        let start = FallbackDrifts::next_due(rule, since)?;
        NtpDuration::from_seconds_f64(start)
            .ok()
            .map(|start| self.update_time.saturating_add(start))
    }

    /// [`Config::fallback_drift`]: once the last update is 2^min seconds
    /// old, runs the clock at the longest average due (see the `fallback`
    /// module). The estimator is brought to `t` first and then takes the
    /// average as its frequency, as uncertain as its distance from the
    /// estimate it replaces: the next measurement decides between them.
    fn apply_fallback(&mut self, t: NtpDuration) {
        let (Some(rule), Some(mut filter)) = (self.config.fallback_drift, self.kalman) else {
            return;
        };
        let since = t.saturating_sub(self.update_time).to_seconds_f64();
        let Some((exponent, frequency)) = self.fallback.due(rule, since) else {
            return;
        };
        if self.fallback.active() == Some(exponent) {
            return;
        }
        self.fallback.activate(exponent);
        filter.predict(self.elapsed_tau, self.correction);
        self.kalman_time = t;
        self.elapsed_tau = 0.0;
        self.correction = 0.0;
        let limit = self.config.max_frequency;
        let frequency = frequency.clamp(-limit, limit);
        let change = frequency - filter.frequency;
        filter.frequency = frequency;
        filter.p11 += change * change;
        self.kalman = Some(filter);
        self.note_rate_change(t);
        self.frequency = frequency;
        // `commit` in `handle_timeout` brought `self.now` to `t`.
        self.queue_adjust();
        self.next_tick = self.kalman_next_tick(t);
    }

    /// Feeds the fallback averages with the estimator's frequency after an
    /// accepted update at `sample_time`, once it is settled (the
    /// estimates of the start, still being learnt, would spoil averages
    /// meant to span days); it stands for the interval since the last
    /// one recorded.
    fn record_fallback(&mut self, filter: &Kalman, sample_time: NtpDuration) {
        let Some(rule) = self.config.fallback_drift else {
            return;
        };
        let settled = libm::sqrt(filter.p11.max(0.0)) <= SETTLED_FREQUENCY_SD;
        let interval = match self.fallback_recorded {
            Some(last) if settled => sample_time.saturating_sub(last).to_seconds_f64(),
            _ => 0.0,
        };
        self.fallback.record(rule, filter.frequency, interval);
        if settled {
            self.fallback_recorded = Some(sample_time);
        }
    }

    /// One update of the [`Algorithm::Kalman`] estimator (see the
    /// `kalman` module docs): the RFC 5905 state rules for steps, spikes
    /// and the stepout interval (section 11.3, figure 28) around a Kalman
    /// filter of phase and frequency.
    fn kalman_update(
        &mut self,
        epoch: Date,
        t: NtpDuration,
        sample_time: NtpDuration,
        update: Update,
    ) -> Result<UpdateOutcome, UpdateError> {
        let offset = update.offset;
        let sigma = if update.uncertainty > 0.0 {
            update.uncertainty
        } else {
            update.jitter
        };
        let floor_sq = self.floor_sq(&update);
        let variance = (sigma * sigma).max(floor_sq);
        let Some(mut filter) = self.kalman else {
            return self.kalman_first_update(
                epoch,
                (t, sample_time),
                (offset, variance),
                update.batched,
            );
        };
        if matches!(self.state, State::Nset | State::Fset) {
            // The first batch's later samples: still no clock action.
            return self.kalman_batch_update(
                epoch,
                (t, sample_time),
                filter,
                (offset, variance),
                update.batched,
            );
        }
        self.commit(epoch, t);
        let (offset, variance, sample_time) =
            self.carried_forward(&filter, offset, variance, sample_time, t);
        let wander_part = self.predict_to(&mut filter, sample_time, t);
        let mut innovation = filter.innovation(offset, variance);
        let mu = sample_time
            .saturating_sub(self.update_time)
            .to_seconds_f64()
            .max(0.0);

        // A jump beyond the step threshold that the filter's own
        // uncertainty explains (a frequency not learnt yet, far off the
        // nominal one) is a measurement like any other.
        let nis = innovation.normalized_squared();
        let explained = nis <= OUTLIER_GATE * OUTLIER_GATE;
        if innovation.residual.abs() > self.config.step_threshold && !explained {
            let measured = (offset, variance, innovation.residual);
            return self.kalman_jump(epoch, (t, sample_time, mu), filter, measured);
        }

        // How well the frequency was known before this sample: 1 once
        // within SETTLED_FREQUENCY_SD, less while it is still being learnt
        // from the first samples or after a widening.
        let settled = (SETTLED_FREQUENCY_SD / libm::sqrt(filter.p11.max(0.0))).min(1.0);
        if nis > OUTLIER_GATE * OUTLIER_GATE {
            if self.hold_outlier(t) {
                return Ok(UpdateOutcome::Ignored(IgnoreReason::Outlier));
            }
            // Confirmed: the clock or the reference moved. Follow; the
            // phases before the jump no longer tell the wander, which
            // starts again from at least the prior.
            filter.widen(innovation.residual, mu);
            filter.wander = filter.wander.max(self.config.wander);
            innovation = filter.innovation(offset, variance);
            self.wander_history.clear();
        } else {
            learn_wander(&mut filter, &innovation, wander_part);
        }
        if update.source == self.last_source {
            self.surprise_avg += (nis.min(NIS_CAP) - self.surprise_avg) / AVG;
        } else {
            self.surprise_avg = 1.0;
        }
        self.last_source = update.source;
        filter.update(innovation);
        self.judge_wander(&mut filter, sample_time, offset, update.source);
        self.observe_variance(variance);
        let sample = (innovation.residual * innovation.residual).max(floor_sq);
        self.jitter_sq += (sample - self.jitter_sq) / AVG;
        // chrony's `makestep`: the estimate now, stepped when above the
        // threshold within the first updates.
        let estimate = filter.projected_offset(self.elapsed_tau, self.correction);
        if self
            .make_step_threshold()
            .is_some_and(|limit| estimate.abs() > limit)
        {
            let step = self.queue_step(epoch, t, estimate)?;
            filter.shift(estimate);
            self.accept_kalman(filter, sample_time, offset, t, 0.0);
            return Ok(UpdateOutcome::Step(step));
        }
        // An unforeseen jump (beyond the outlier gate, confirmed) leaves
        // the posterior overconfident, and so does any innovation once
        // the frequency is known: it is then drift the model did not
        // foresee (wander over an outage), corrected at the pace of its
        // size. While the frequency is still being learnt, an innovation
        // is mostly the frequency error the prediction allowed for, and
        // the posterior knows the phase: it counts in proportion to how
        // well the frequency was known.
        let surprise = if nis > OUTLIER_GATE * OUTLIER_GATE {
            innovation.residual.abs()
        } else {
            innovation.residual.abs() * settled
        };
        self.average_update_interval(mu);
        self.accept_kalman(filter, sample_time, offset, t, surprise);
        self.kalman_poll(t);
        Ok(UpdateOutcome::Slew)
    }

    /// Predicts `filter` to `sample_time` (the time the sample was
    /// measured, `t` now) through the corrections made since, and keeps
    /// it as the estimator's state at that time. Returns the wander's
    /// share of the predicted phase variance, for `learn_wander`.
    fn predict_to(&mut self, filter: &mut Kalman, sample_time: NtpDuration, t: NtpDuration) -> f64 {
        let (tau_after, after) = self.adjusted_since(sample_time, t);
        let dt = (self.elapsed_tau - tau_after).max(0.0);
        filter.predict(dt, self.correction - after);
        self.correction = after;
        self.elapsed_tau = tau_after;
        self.kalman_time = sample_time;
        self.kalman = Some(*filter);
        filter.wander * dt * dt * dt * ONE_THIRD
    }

    /// Records the free oscillator's phase of an update measured at
    /// process time `sample_time` (its `offset`, already at that time,
    /// plus every correction applied until then: all of them now, less
    /// those since, which `predict_to` left in `correction`) and runs
    /// `filter` at the wander the phases over long spans say
    /// (`crate::wander`), once there are enough of them. The spans are
    /// timed on the process timeline, which runs at the corrected rate:
    /// at most 0.05 % off the oscillator's at ±500 ppm, nothing to a
    /// variance estimate. A burst's samples closer than the minimum poll
    /// are not kept.
    fn judge_wander(
        &mut self,
        filter: &mut Kalman,
        sample_time: NtpDuration,
        offset: f64,
        source: Option<u64>,
    ) {
        let phase = offset + self.total_correction - self.correction;
        let min_spacing = NtpDuration::from_log2_seconds(self.config.min_poll).to_seconds_f64();
        self.wander_history
            .push(sample_time.to_seconds_f64(), phase, source, min_spacing);
        if let Some(wander) = self.wander_history.wander(self.config.wander) {
            filter.wander = wander;
        }
    }

    /// Counts a measurement beyond the outlier gate; whether to hold it
    /// back: the first one is held, and the next sample asked for soon
    /// (the minimum poll); a second one in a row confirms that the clock
    /// or the reference moved.
    fn hold_outlier(&mut self, t: NtpDuration) -> bool {
        self.outliers = self.outliers.saturating_add(1);
        if self.outliers >= 2 {
            return false;
        }
        if self.poll > self.config.min_poll {
            self.set_poll(self.config.min_poll);
            self.poll_changed = t;
        }
        true
    }

    /// Averages the interval `mu` between updates into `update_interval`,
    /// so that two sources answering a second apart do not make the next
    /// correction a one-second one.
    fn average_update_interval(&mut self, mu: f64) {
        self.update_interval = if self.update_interval > 0.0 {
            self.update_interval + (mu - self.update_interval) / UPDATE_INTERVAL_AVG
        } else {
            mu
        };
    }

    /// The floor of `update`'s variance: the square of its own precision
    /// ([`Update::precision`], no finer than 2^[`MIN_PRECISION_LOG2`] s),
    /// or of the clock's when it gives none.
    fn floor_sq(&self, update: &Update) -> f64 {
        if update.precision > 0.0 {
            let precision = update
                .precision
                .max(libm::exp2(f64::from(MIN_PRECISION_LOG2)));
            precision * precision
        } else {
            self.precision_sq
        }
    }

    /// The first update of the [`Algorithm::Kalman`] estimator (NSET or
    /// FSET): a filter at `offset`, with the drift file's frequency or
    /// none; the clock is stepped if the offset is beyond the step
    /// threshold (or `make_step`'s), slewed otherwise. `t` is now,
    /// `sample_time` when the sample was measured.
    fn kalman_first_update(
        &mut self,
        epoch: Date,
        (t, sample_time): (NtpDuration, NtpDuration),
        (offset, variance): (f64, f64),
        batched: bool,
    ) -> Result<UpdateOutcome, UpdateError> {
        let (frequency, frequency_sd) = if self.state == State::Fset {
            (self.frequency, self.initial_frequency_sd)
        } else {
            (0.0, self.unknown_frequency_sd())
        };
        let mut filter = Kalman::new(
            offset,
            variance,
            frequency,
            frequency_sd,
            self.config.wander,
        );
        let outcome = if batched {
            self.commit(epoch, t);
            UpdateOutcome::Ignored(IgnoreReason::Batched)
        } else if self.first_update_steps(offset) {
            let step = self.queue_step(epoch, t, offset)?;
            filter.shift(offset);
            UpdateOutcome::Step(step)
        } else {
            self.commit(epoch, t);
            UpdateOutcome::Slew
        };
        // `variance` is floored already (`kalman_update`).
        self.jitter_sq = variance;
        self.kalman_time = sample_time.min(t);
        (self.elapsed_tau, self.correction) = self.adjusted_since(self.kalman_time, t);
        self.observe_variance(variance);
        if batched {
            // The rest of the batch follows (`kalman_batch_update`).
            self.kalman = Some(filter);
        } else {
            self.accept_kalman(filter, sample_time, offset, t, 0.0);
        }
        Ok(outcome)
    }

    /// Whether the first update steps the clock by `offset`: beyond the
    /// step threshold, or `make_step`'s while it applies.
    fn first_update_steps(&self, offset: f64) -> bool {
        offset.abs() > self.config.step_threshold
            || self
                .make_step_threshold()
                .is_some_and(|limit| offset.abs() > limit)
    }

    /// A later sample of the first batch ([`Update::batched`]): taken into
    /// `filter` as a measurement like any other (the wander learnt from
    /// it as from any), without the outlier and jump tests of a running
    /// estimator (the first samples are all it knows). At the batch's last
    /// sample the clock is stepped or slewed, as at a first update, by the
    /// offset the batch projects to now, with the frequency the batch
    /// measured. A step that cannot be expressed refuses the update and
    /// leaves the state as it was.
    fn kalman_batch_update(
        &mut self,
        epoch: Date,
        (t, sample_time): (NtpDuration, NtpDuration),
        filter: Kalman,
        (offset, variance): (f64, f64),
        batched: bool,
    ) -> Result<UpdateOutcome, UpdateError> {
        let before = self.clone();
        let outcome =
            self.batch_sample(epoch, (t, sample_time), filter, (offset, variance), batched);
        if outcome.is_err() {
            *self = before;
        }
        outcome
    }

    /// [`kalman_batch_update`](Self::kalman_batch_update)'s work.
    fn batch_sample(
        &mut self,
        epoch: Date,
        (t, sample_time): (NtpDuration, NtpDuration),
        mut filter: Kalman,
        (offset, variance): (f64, f64),
        batched: bool,
    ) -> Result<UpdateOutcome, UpdateError> {
        self.commit(epoch, t);
        let (offset, variance, sample_time) =
            self.carried_forward(&filter, offset, variance, sample_time, t);
        let wander_part = self.predict_to(&mut filter, sample_time, t);
        let innovation = filter.innovation(offset, variance);
        if innovation.normalized_squared() <= OUTLIER_GATE * OUTLIER_GATE {
            learn_wander(&mut filter, &innovation, wander_part);
        }
        filter.update(innovation);
        self.observe_variance(variance);
        self.jitter_sq = self.jitter_sq.min(variance);
        self.kalman = Some(filter);
        if batched {
            return Ok(UpdateOutcome::Ignored(IgnoreReason::Batched));
        }
        let estimate = filter.projected_offset(self.elapsed_tau, self.correction);
        let outcome = if self.first_update_steps(estimate) {
            let step = self.queue_step(epoch, t, estimate)?;
            filter.shift(estimate);
            UpdateOutcome::Step(step)
        } else {
            UpdateOutcome::Slew
        };
        self.accept_kalman(filter, sample_time, offset, t, 0.0);
        Ok(outcome)
    }

    /// A measurement whose `residual` is beyond the step threshold and
    /// the filter's own uncertainty: a spike or a step (RFC 5905 figure
    /// 28, from SYNC or SPIK). The first is held back; a second beyond
    /// the threshold confirms the jump, stepped at once under
    /// `make_step` (chrony's `makestep`), otherwise after the stepout
    /// interval. `mu` is the time since the last update.
    fn kalman_jump(
        &mut self,
        epoch: Date,
        (t, sample_time, mu): (NtpDuration, NtpDuration, f64),
        mut filter: Kalman,
        (offset, variance, residual): (f64, f64, f64),
    ) -> Result<UpdateOutcome, UpdateError> {
        if self.state == State::Sync {
            self.state = State::Spik;
            return Ok(UpdateOutcome::Ignored(IgnoreReason::Spike));
        }
        let confirmed = self
            .make_step_threshold()
            .is_some_and(|limit| residual.abs() > limit);
        if mu < self.config.stepout && !confirmed {
            return Ok(UpdateOutcome::Ignored(IgnoreReason::Spike));
        }
        let step = self.queue_step(epoch, t, offset)?;
        // After the step the clock is where the measurement says; the
        // frequency may be anything that explains the jump.
        filter.offset = offset;
        filter.p00 = variance;
        filter.p01 = 0.0;
        // At most as uncertain as a frequency never measured; and a jump
        // faster than any frequency the clock can have (hours in minutes:
        // a resumed virtual machine, an operator's `date`) is a step of a
        // clock, which says nothing of the oscillator: the frequency keeps
        // what it knew.
        let jump = residual / mu.max(1.0);
        if jump.abs() <= self.config.max_frequency {
            let unknown = self.unknown_frequency_sd();
            filter.p11 = (filter.p11 + jump * jump).min(unknown * unknown);
        }
        filter.shift(offset);
        self.set_poll(self.config.min_poll);
        self.poll_changed = t;
        self.accept_kalman(filter, sample_time, offset, t, 0.0);
        Ok(UpdateOutcome::Step(step))
    }

    /// A sample measured before the estimator's state (a reference
    /// clock's poll sample, timed by the mean epoch of its samples, after
    /// a network sample came), carried forward to the state's time: its
    /// offset moved by the drift the estimator's frequency predicts and
    /// by the corrections applied in between, its variance grown by the
    /// frequency's uncertainty over that time. A later sample is returned
    /// as it is.
    fn carried_forward(
        &self,
        filter: &Kalman,
        offset: f64,
        variance: f64,
        sample_time: NtpDuration,
        t: NtpDuration,
    ) -> (f64, f64, NtpDuration) {
        if sample_time >= self.kalman_time {
            return (offset, variance, sample_time);
        }
        let (tau, correction) = self.adjusted_since(sample_time, t);
        let gap = (tau - self.elapsed_tau).max(0.0);
        let applied = correction - self.correction;
        (
            offset + filter.frequency * gap - applied,
            variance + filter.p11.max(0.0) * gap * gap,
            self.kalman_time,
        )
    }

    /// Whether an update leaving `filter` counts toward
    /// [`Config::make_step`]'s limit: only once the frequency is known
    /// well enough that its standard deviation, over one poll interval,
    /// stays within the step threshold. chrony's `makestep` limit counts
    /// clock updates, and chronyd makes its first update only once a
    /// regression over several samples gives it the frequency; ours
    /// updates from the first sample, when the frequency may still be any
    /// value in the clock's range (or a drift file far off). Until it is
    /// known, an offset above the threshold is still the start's, the
    /// error that frequency piles up by the next sample (3.4 s at a 64 s
    /// poll with a drift file 5 % off), and is stepped as the start's was.
    fn counts_for_make_step(&self, filter: &Kalman) -> bool {
        self.config
            .make_step
            .is_none_or(|rule| libm::sqrt(filter.p11.max(0.0)) * self.tau <= rule.threshold)
    }

    /// The step threshold of [`Config::make_step`] while it applies (its
    /// update limit not reached yet).
    fn make_step_threshold(&self) -> Option<f64> {
        let rule = self.config.make_step?;
        match rule.limit {
            Some(limit) if self.accepted >= limit => None,
            _ => Some(rule.threshold),
        }
    }

    /// Queues a step by `offset` at process time `t` and moves the
    /// timeline with it; returns the step. Nothing changes when the step
    /// cannot be expressed.
    fn queue_step(
        &mut self,
        epoch: Date,
        t: NtpDuration,
        offset: f64,
    ) -> Result<NtpDuration, UpdateError> {
        let step =
            NtpDuration::from_seconds_f64(offset).map_err(|_| UpdateError::OffsetOutOfRange)?;
        let stepped_epoch = epoch.checked_add(step).ok_or(UpdateError::TimeOutOfRange)?;
        self.commit(stepped_epoch, t);
        self.total_correction += offset;
        self.wander_history.clear();
        self.pending.step = Some(match self.pending.step {
            Some(earlier) => earlier.saturating_add(step),
            None => step,
        });
        Ok(step)
    }

    /// Installs the estimator after an accepted update measured at
    /// `sample_time` (SYNC, no outliers pending) and plans the correction
    /// at `t`; `surprise` is how far the measurement surprised the
    /// estimator (see `plan_slew`), zero after a first update or a step.
    fn accept_kalman(
        &mut self,
        filter: Kalman,
        sample_time: NtpDuration,
        offset: f64,
        t: NtpDuration,
        surprise: f64,
    ) {
        self.kalman = Some(filter);
        self.outliers = 0;
        self.record_fallback(&filter, sample_time);
        if self.counts_for_make_step(&filter) {
            self.accepted = self.accepted.saturating_add(1);
        }
        self.state = State::Sync;
        self.update_time = sample_time;
        self.last_offset = offset;
        self.finish_kalman(t, surprise);
    }

    /// The rate-adjusted time (see `elapsed_tau`) between process times
    /// `from` and `t` (now), and the correction the caller applied over it,
    /// segment by segment ([`RateHistory`]).
    fn adjusted_since(&self, from: NtpDuration, t: NtpDuration) -> (f64, f64) {
        self.rates
            .adjusted_since(from, t, self.rate_changed, self.frequency + self.phase_slew)
    }

    /// Records that the caller's rate changes at process time `t`. Several
    /// changes at the same instant (a batch of updates) count as one.
    fn note_rate_change(&mut self, t: NtpDuration) {
        if t > self.rate_changed {
            self.rates
                .push(self.rate_changed, self.frequency + self.phase_slew);
            self.rate_changed = t;
        }
    }

    /// Remembers a measurement variance (already floored at the update's
    /// precision, `floor_sq`) for the poll gate and the pace of the
    /// corrections.
    ///
    /// The average starts as the plain geometric mean of the variances
    /// seen (weight 1/n for the n-th) and becomes the exponential one at
    /// the [`AVG`]-th. Started from the first variance with weight 1/8
    /// for each next, the first kept 7/8 of the weight at the second
    /// update and half of it at the sixth: a first sample doubted by its
    /// whole round trip (a source with fewer than four delays recorded,
    /// 1.2 s in chrony's 120-selectoptions) paced the corrections of the
    /// next minutes as if every sample were as doubtful, and the 0.1 s
    /// start offset was still being slewed at 330 s.
    fn observe_variance(&mut self, variance: f64) {
        self.measured_variance = variance;
        let count = self.variances_seen.saturating_add(1);
        self.typical_variance = Some(match self.typical_variance {
            Some(typical) if typical > 0.0 && count < AVG_COUNT => {
                typical * libm::pow(variance / typical, 1.0 / f64::from(count))
            }
            // exp(ln g + (ln v - ln g) / AVG) = g * (v / g)^(1/8): with
            // AVG = 8, three square roots instead of a logarithm and an
            // exponential per update (about 40 ns less).
            Some(typical) if typical > 0.0 => {
                typical * libm::sqrt(libm::sqrt(libm::sqrt(variance / typical)))
            }
            _ => variance,
        });
        self.variances_seen = count;
    }

    /// How much of the slew in progress still paces the next correction:
    /// all of it when the new measurement is no more precise than the one
    /// that planned the slew, less in proportion when it is (the ratio of
    /// their standard deviations). A measurement as doubtful as the last
    /// that merely confirms the slew must not hurry it; one far more
    /// precise (the fourth delay of a long path showing its floor, after
    /// samples doubted by their whole round trip) knows the offset better
    /// than the plan did.
    fn slew_confidence(&self) -> f64 {
        if self.slew_variance > 0.0 {
            libm::sqrt((self.measured_variance / self.slew_variance).min(1.0))
        } else {
            1.0
        }
    }

    /// Publishes the estimator's frequency and plans the slew of its offset
    /// estimate projected to process time `t`.
    fn finish_kalman(&mut self, t: NtpDuration, surprise: f64) {
        let Some(mut filter) = self.kalman else {
            return;
        };
        let limit = self.config.max_frequency;
        let frequency = filter.frequency.clamp(-limit, limit);
        filter.frequency = frequency;
        self.kalman = Some(filter);
        // The estimate now, from the state at the last sample's time (the
        // phase alone: the covariance is predicted at the next sample).
        let estimate = filter.projected_offset(self.elapsed_tau, self.correction);
        self.note_rate_change(t);
        let change = frequency - self.frequency;
        self.wander_sq += (change * change - self.wander_sq) / AVG;
        self.frequency = frequency;
        let sigma = self.update_sigma(&filter, surprise);
        self.plan_slew(t, estimate, sigma);
    }

    /// How uncertain the estimate of a new update is, for the pace of its
    /// slew: the filter's own uncertainty, but at least
    /// - the typical measurement's standard deviation (the geometric mean
    ///   of the recent measurement variances): chrony times its
    ///   corrections by the standard deviation of its samples' offsets
    ///   (`offset_sd`), not by that of the estimate, which averaging many
    ///   samples makes far smaller. With the estimate's own, an offset of a
    ///   few sample deviations stood out as many estimate deviations and
    ///   was slewed within seconds: rate excursions of 5-7 ppm on noisy
    ///   paths (chrony's 006, 009, 116 and 137 cases) that chronyd's rule
    ///   spreads over the update interval;
    /// - the surprise of the last measurement (right after an unexpected
    ///   jump, a frequency step or the end of an outage, the posterior is
    ///   confident again, yet the estimate is as uncertain as the jump was
    ///   unforeseen);
    /// - what is left of the slew in progress (that part was planned at
    ///   its own pace: a new update that merely confirms it must not hurry
    ///   it), scaled down when the new measurement is more precise than the
    ///   one that planned it (`slew_confidence`).
    fn update_sigma(&self, filter: &Kalman, surprise: f64) -> f64 {
        libm::sqrt(filter.p00.max(0.0))
            .max(surprise)
            .max(self.residual.abs() * self.slew_confidence())
            .max(libm::sqrt(self.typical_variance.unwrap_or(0.0)))
    }

    /// Plans the slew of `estimate`, whose uncertainty is `sigma`, at
    /// process time `t` and queues the adjustment.
    fn plan_slew(&mut self, t: NtpDuration, estimate: f64, sigma: f64) {
        let frequency = self.frequency;
        // Slew the whole estimate: within a time that shrinks as the
        // estimate stands out of its own uncertainty (CORRECTION_TIME_RATIO),
        // never faster than MIN_SLEW_TIME nor beyond the rate limit.
        let room = (self.config.max_rate - frequency.abs()).min(self.config.max_slew);
        if estimate == 0.0 || room <= 0.0 {
            self.phase_slew = 0.0;
            self.residual = 0.0;
            self.slew_end = None;
        } else {
            let interval = if self.update_interval > 0.0 {
                self.update_interval.min(self.tau)
            } else {
                self.tau
            };
            let duration =
                correction_time(estimate, sigma, interval, self.config.correction_time_ratio)
                    .max(MIN_SLEW_TIME)
                    .max(estimate.abs() / room);
            // Within the room exactly: `estimate / (estimate / room)` can
            // exceed `room` by a rounding.
            let rate = (estimate / duration).clamp(-room, room);
            self.phase_slew = rate;
            self.residual = estimate;
            self.slew_variance = self.measured_variance;
            // `duration` in the rate-adjusted time base; the clock,
            // running `1 + frequency + rate` times as fast as its
            // oscillator meanwhile, reads that much more.
            self.slew_end = NtpDuration::from_seconds_f64(duration * (1.0 + frequency + rate))
                .ok()
                .map(|d| t.saturating_add(d));
        }
        let remaining = self
            .slew_end
            .map_or(0.0, |end| end.saturating_sub(t).to_seconds_f64());
        self.queue_kalman_adjust(remaining);
        self.next_tick = self.kalman_next_tick(t);
    }

    /// Poll control of the Kalman estimator: the longest interval over
    /// which the predicted phase variance grows by at most
    /// [`Config::poll_gate`] ([`POLL_GATE`](crate::POLL_GATE) by default)
    /// typical measurement variances. Drops at once once the growth over
    /// the current interval passes [`POLL_DROP`] times that; climbs one
    /// step at a time, at most once per half the current interval, and
    /// only while the recent innovations are as large as predicted
    /// ([`POLL_SURPRISE`]).
    ///
    /// The growth is never planned on less wander than the configured
    /// one ([`Config::wander`]): where the long spans judge the wander
    /// lower (`crate::wander`), the growth is at least that of a filter
    /// in its steady state under the configured wander, measuring at the
    /// interval with the typical variance. The lower wander sharpens the
    /// frequency; the poll stays planned for the wander a clock may take
    /// on faster than hours of spans would show it.
    fn kalman_poll(&mut self, t: NtpDuration) {
        let (Some(filter), Some(typical)) = (self.kalman, self.typical_variance) else {
            return;
        };
        let budget = self.config.poll_gate * typical;
        let prior = self.config.wander;
        // Poll exponents are 0..=17: 2^poll is exact as a shift.
        let growth = |poll: i8| {
            let interval = f64::from(1u32 << u32::try_from(poll).unwrap_or(0).min(17));
            let own = filter.phase_growth(interval, filter.wander);
            if filter.wander >= prior {
                own
            } else {
                own.max(Kalman::steady_phase_growth(interval, typical, prior))
            }
        };
        let fits = |poll: i8| growth(poll) <= budget;
        // The phase growth is convex in the interval and zero at zero (the
        // covariance is positive semi-definite, the wander positive), so
        // the intervals that fit are all those up to the longest one: start
        // at the current poll instead of searching up from the minimum.
        let (min, max) = (self.config.min_poll, self.config.max_poll);
        let wanted = if growth(self.poll) <= POLL_DROP * budget {
            if self.poll < max && fits(self.poll.saturating_add(1)) {
                self.poll.saturating_add(1)
            } else {
                self.poll
            }
        } else {
            let mut wanted = self.poll.saturating_sub(1);
            while wanted > min && !fits(wanted) {
                wanted = wanted.saturating_sub(1);
            }
            wanted.max(min)
        };
        let since = t.saturating_sub(self.poll_changed).to_seconds_f64();
        if wanted < self.poll {
            self.set_poll(wanted);
            self.poll_changed = t;
        } else if wanted > self.poll
            && since >= 0.5 * self.tau
            && self.surprise_avg <= POLL_SURPRISE
        {
            self.set_poll(self.poll.saturating_add(1));
            self.poll_changed = t;
        }
    }

    /// Arms, replaces or cancels the leap second from the sources' leap
    /// indicator, at the current clock reading.
    fn schedule_leap(&mut self, leap: LeapIndicator) {
        match leap {
            LeapIndicator::Unsynchronized => {}
            LeapIndicator::NoWarning => {
                if self.leap.take().is_some() {
                    self.pending.leap_notice = Some(LeapEvent::Disarmed);
                }
            }
            LeapIndicator::InsertSecond | LeapIndicator::DeleteSecond => {
                let Some(now) = self.epoch.checked_add(self.now) else {
                    return;
                };
                let Some(scheduled) = LeapSecond::schedule(leap, now) else {
                    return;
                };
                if self.last_leap != Some(scheduled.at) && self.leap != Some(scheduled) {
                    self.leap = Some(scheduled);
                    self.pending.leap_notice = Some(LeapEvent::Armed(scheduled));
                }
            }
        }
    }
}

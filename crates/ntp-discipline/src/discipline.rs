//! The clock discipline state machine and hybrid PLL/FLL (RFC 5905,
//! section 11.3 and appendix A.5.5.6), the clock-adjust process (section
//! 12 and appendix A.5.6.1) and poll-interval control (appendix A.5.5.6).

use ntp_proto::{Date, LeapIndicator, NtpDuration};

use crate::config::{AVG, FLL, LIMIT, MAX_OFFSET, MAXFREQ, MAXSLEW, PGATE};
use crate::{
    ClockAdjustment, Config, ConfigError, IgnoreReason, LeapEvent, LeapSecond, Output, Update,
    UpdateError, UpdateOutcome,
};

#[cfg(test)]
mod tests;

/// The discipline states of RFC 5905, section 11.3, figure 28.
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
    /// Process time of the next clock-adjust second.
    next_tick: NtpDuration,
    leap: Option<LeapSecond>,
    /// The moment of the last leap second applied, never armed again.
    last_leap: Option<Date>,
    pending: Pending,
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
            next_tick: NtpDuration::ONE_SECOND,
            leap: None,
            last_leap: None,
            pending: Pending::default(),
        };
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
    /// exceeds [`MAXFREQ`].
    pub fn with_frequency(config: Config, now: Date, frequency: f64) -> Result<Self, ConfigError> {
        if !(frequency.is_finite() && frequency.abs() <= MAXFREQ) {
            return Err(ConfigError::InitialFrequency);
        }
        let mut discipline = Self::new(config, now)?;
        discipline.state = State::Fset;
        discipline.frequency = frequency;
        discipline.queue_adjust();
        Ok(discipline)
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
            // Step: validate before touching anything.
            let step =
                NtpDuration::from_seconds_f64(offset).map_err(|_| UpdateError::OffsetOutOfRange)?;
            let stepped_epoch = epoch.checked_add(step).ok_or(UpdateError::TimeOutOfRange)?;
            // In FREQ the step also yields the frequency measured since
            // training started.
            let frequency = if self.state == State::Freq && mu > 0.0 {
                (offset - self.residual) / mu
            } else {
                0.0
            };
            self.commit(stepped_epoch, t);
            self.pending.step = Some(match self.pending.step {
                Some(earlier) => earlier.saturating_add(step),
                None => step,
            });
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
        if t >= self.next_tick {
            self.queue_adjust();
            self.next_tick = t.saturating_add(NtpDuration::ONE_SECOND);
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
    /// the clock is made to run faster), within ±[`MAXFREQ`]. Save it to a
    /// drift file and pass it to [`with_frequency`](Self::with_frequency)
    /// on the next start.
    #[must_use]
    pub const fn frequency(&self) -> f64 {
        self.frequency
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
        let applied = self.phase_slew * elapsed;
        let rest = self.residual - applied;
        self.cumulative_slew += if rest * self.residual > 0.0 {
            applied
        } else {
            self.residual
        };
        self.residual = if rest * self.residual > 0.0 {
            rest
        } else {
            0.0
        };
        let rest = self.open_loop - self.open_loop_slew * elapsed;
        self.open_loop = if rest * self.open_loop > 0.0 {
            rest
        } else {
            0.0
        };
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
        let frequency = (self.frequency + contribution).clamp(-MAXFREQ, MAXFREQ);
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
        let divisor = self.config.pll_gain * self.tau.min(self.config.allan_intercept);
        self.phase_slew = (self.residual / divisor).clamp(-MAXSLEW, MAXSLEW);
        self.open_loop_slew = (self.open_loop / divisor).clamp(-MAXSLEW, MAXSLEW);
        self.pending.adjust = Some(ClockAdjustment {
            frequency: self.frequency,
            phase_slew: self.phase_slew,
        });
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

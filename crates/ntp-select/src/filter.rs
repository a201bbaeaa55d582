//! The clock filter of one source (RFC 5905, section 10; Appendix A.5.2
//! `clock_filter`).
//!
//! [`ClockFilter`] is an 8-stage shift register of `(offset, delay,
//! dispersion, epoch)` samples. Each new sample (or a missed poll, which
//! shifts in the dummy sample) produces the peer offset, delay, dispersion
//! and jitter from the sample with the smallest delay, unless that sample
//! is not newer than the last one used.
//!
//! Two options of [`FilterConfig`], both off in [`FilterConfig::RFC`] (the
//! body's algorithm), change this: the popcorn spike suppressor of
//! Appendix A.5.2 ([`FilterConfig::popcorn_gate`], see
//! [Popcorn spikes](#popcorn-spikes)) and a dispersion from the valid
//! samples only ([`FilterConfig::count_empty_stages`] `= false`).
//!
//! Times (`now`, epochs) are seconds on a monotonic timescale of the
//! caller's choosing (for example seconds since the process started): the
//! filter only ever subtracts them. Offsets, delays, dispersions and
//! jitters are seconds.
//!
//! ```
//! use ntp_select::filter::{ClockFilter, FilterSample};
//!
//! let mut filter = ClockFilter::new();
//! // Three polls, 64 s apart; the second sample had the shortest path.
//! let samples = [(0.010, 0.050), (0.002, 0.020), (0.015, 0.070)];
//! let mut last = None;
//! for (i, &(offset, delay)) in samples.iter().enumerate() {
//!     let now = 64.0 * i as f64;
//!     let sample = FilterSample::new(offset, delay, 0.0001)?;
//!     if let Some(output) = filter.update(sample, now)? {
//!         last = Some(output);
//!     }
//! }
//! let output = last.unwrap();
//! assert_eq!(output.offset, 0.002);
//! assert_eq!(output.delay, 0.020);
//! assert_eq!(output.epoch, 64.0);
//! # Ok::<(), ntp_select::InputError>(())
//! ```
//!
//! # Popcorn spikes
//!
//! With [`FilterConfig::popcorn_gate`] `= Some(gate)`
//! ([`SGATE`](crate::constants::SGATE) = 3 in Appendix A.5.2), a new best
//! sample is held back when
//!
//! 1. its offset differs from the offset of the last output by more than
//!    `gate` times the jitter of the last output,
//! 2. its epoch is less than twice the system poll interval
//!    ([`ClockFilter::set_poll`], default 2^[`DEFAULT_POLL`] s) after the
//!    epoch of the last sample used, and
//! 3. the last output's jitter came from at least [`POPCORN_MIN_SAMPLES`]
//!    valid samples.
//!
//! A held-back sample is not handed on, and the last output stays in
//! place, peer variables and all; [`ClockFilter::spikes_suppressed`]
//! counts these. The sample stays in the register: while it remains the
//! best one it is held back again at each shift (the last output and both
//! epochs stay the same; only a shorter poll could let it through).
//!
//! Where this differs from the appendix code, on purpose:
//!
//! - **The jitter of the last output.** A.5.2 (like ntpd's `clock_filter`)
//!   compares with the jitter just recomputed around the new sample. That
//!   jitter is the RMS distance of the other samples from the new one,
//!   which is at least the new sample's distance from their mean. After a
//!   steady run, with the last output near that mean, a lone spike can
//!   never differ by three times it: the suppressor would not fire on the
//!   spike it is named for. We compare with the jitter from before the
//!   spike entered the register.
//! - **The output is kept.** A.5.2 overwrites `p->offset` with the spike
//!   before it returns, so the next selection (run for another source)
//!   would use the spike, and the next sample would be compared with it.
//!   Here nothing of the spike leaves the filter. A lasting step in the
//!   server's offset still gets through: once a sample of the new level is
//!   the best one at least two poll intervals after the last sample used,
//!   or at worst once the held-back sample leaves the register.
//! - **The poll interval.** A.5.2 writes `2 * s.poll`, `s.poll` being a
//!   log2 exponent; its comment says "twice the system poll interval",
//!   which is what we use: `2 * 2^poll` s. ntpd uses the host poll
//!   `p->hpoll` instead.
//! - **The sample-count guard** (condition 3) is not in A.5.2; ntpd has
//!   the like (see [`POPCORN_MIN_SAMPLES`]).

use ntp_proto::NtpDuration;

use crate::constants::{DEFAULT_POLL, FilterConfig, NSTAGE, POPCORN_MIN_SAMPLES};
use crate::error::{ConfigError, InputError, Quantity, check_non_negative, check_signed};

/// One measurement from the on-wire protocol (RFC 5905, section 8): clock
/// offset theta, round-trip delay delta and dispersion epsilon, in seconds.
///
/// Built only through [`new`](Self::new) or
/// [`from_durations`](Self::from_durations), so its values are always
/// finite, the delay and dispersion non-negative, and every magnitude at
/// most [`MAX_MAGNITUDE`](crate::constants::MAX_MAGNITUDE).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FilterSample {
    offset: f64,
    delay: f64,
    dispersion: f64,
}

impl FilterSample {
    /// Zero offset, delay and dispersion.
    pub const ZERO: Self = Self {
        offset: 0.0,
        delay: 0.0,
        dispersion: 0.0,
    };

    /// A sample from seconds.
    ///
    /// The peer process clamps a negative delay to the system precision
    /// before it reaches the filter (RFC 5905, Appendix A.5.1.1); this
    /// constructor rejects it.
    ///
    /// # Errors
    ///
    /// [`InputError::NotFinite`] for NaN or infinity,
    /// [`InputError::Negative`] for a negative delay or dispersion,
    /// [`InputError::OutOfRange`] beyond 2^31 s.
    pub fn new(offset: f64, delay: f64, dispersion: f64) -> Result<Self, InputError> {
        Ok(Self {
            offset: check_signed(offset, Quantity::Offset)?,
            delay: check_non_negative(delay, Quantity::Delay)?,
            dispersion: check_non_negative(dispersion, Quantity::Dispersion)?,
        })
    }

    /// A sample from NTP durations (as computed from the four on-wire
    /// timestamps with [`ntp_proto::Timestamp`] subtraction).
    ///
    /// # Errors
    ///
    /// [`InputError::Negative`] for a negative delay or dispersion.
    pub fn from_durations(
        offset: NtpDuration,
        delay: NtpDuration,
        dispersion: NtpDuration,
    ) -> Result<Self, InputError> {
        Self::new(
            offset.to_seconds_f64(),
            delay.to_seconds_f64(),
            dispersion.to_seconds_f64(),
        )
    }

    /// Clock offset theta, s.
    #[must_use]
    pub const fn offset(&self) -> f64 {
        self.offset
    }

    /// Round-trip delay delta, s.
    #[must_use]
    pub const fn delay(&self) -> f64 {
        self.delay
    }

    /// Dispersion epsilon at arrival, s.
    #[must_use]
    pub const fn dispersion(&self) -> f64 {
        self.dispersion
    }
}

/// What the clock filter produces: the peer variables of RFC 5905,
/// section 10, figure 19 (theta, delta, epsilon, psi, t).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct FilterOutput {
    /// Peer offset theta: the offset of the chosen sample, s.
    pub offset: f64,
    /// Peer delay delta: the delay of the chosen sample, s.
    pub delay: f64,
    /// Peer dispersion epsilon: the weighted sum of the stage dispersions
    /// at the time of the update, s.
    pub dispersion: f64,
    /// Peer jitter psi: RMS of the offset differences to the chosen
    /// sample, at least the system precision, s.
    pub jitter: f64,
    /// Epoch t of the chosen sample: the `now` at which it was shifted in.
    pub epoch: f64,
}

/// One stage of the shift register holding a real sample.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stage {
    sample: FilterSample,
    epoch: f64,
}

/// The clock filter of one source: an 8-stage shift register
/// (RFC 5905, section 10; Appendix A.5.2).
///
/// # Contract
///
/// - Call [`update`](Self::update) with each valid sample and
///   [`missed_poll`](Self::missed_poll) when the poll process decides to
///   shift in the dummy tuple (section 10: three polls without a valid
///   packet). Both take `now`, which must never go backwards; a `now`
///   earlier than the last one is rejected and changes nothing.
/// - Every shift recomputes the peer variables (offset and delay of the
///   best stage, dispersion, jitter), as A.5.2 does, and
///   [`output`](Self::output) always holds the latest ones: a source's
///   dispersion keeps falling as samples arrive even while its best
///   sample stays the same.
/// - Both return `Some(output)` only when the best sample is newer than the
///   last one handed on, and `None` otherwise (the "prime directive" of
///   A.5.2: a sample is used at most once and never one older than the
///   last used) or when the register holds no valid sample.
/// - With [`FilterConfig::popcorn_gate`] set, a best sample that is a
///   popcorn spike (see the [module docs](self#popcorn-spikes)) also
///   returns `None` and leaves [`output`](Self::output) as it was. Tell
///   the filter the system poll with [`set_poll`](Self::set_poll).
///
/// # Choices
///
/// - The register starts as eight dummy tuples `(0, MAXDISP, MAXDISP)`.
///   Instead of adding `PHI * (now - last update)` to every stage on every
///   shift, as A.5.2 does, each stage keeps its arrival dispersion and
///   epoch and is aged on use: `min(MAXDISP, dispersion + PHI * (now -
///   epoch))`. The sums telescope to the same value, without accumulated
///   rounding. A stage aged to MAXDISP counts as a dummy.
/// - Stages are sorted by increasing delay (section 10); equal delays
///   prefer the newer sample.
/// - Jitter is the RMS `sqrt(sum (theta_0 - theta_j)^2 / (n - 1))` over
///   the `n` valid stages. **Disputed:** the body's formula prints the
///   `1/(n-1)` outside the square root, which is not an RMS; A.5.2 sums
///   over all eight stages (dummies included) without dividing. We follow
///   the body's words ("the RMS average") with `n` valid samples.
/// - The dispersion counts empty stages at MAXDISP, as section 10 does,
///   unless [`FilterConfig::count_empty_stages`] is `false`.
/// - The popcorn spike suppressor of A.5.2 (SGATE) is not part of the
///   body's algorithm; it is off unless [`FilterConfig::popcorn_gate`] is
///   set (see the [module docs](self#popcorn-spikes)).
#[derive(Clone, Debug, PartialEq)]
pub struct ClockFilter {
    /// Index 0 holds the newest stage; `None` is the dummy tuple.
    stages: [Option<Stage>; NSTAGE],
    /// Epoch of the last sample used (the peer variable `t`).
    last_used: Option<f64>,
    /// The latest `now` seen.
    last_now: Option<f64>,
    output: Option<FilterOutput>,
    /// Valid samples behind the jitter of `output`.
    output_samples: usize,
    /// The system poll exponent `s.poll`, log2 s, for the popcorn gate.
    poll: i8,
    /// Popcorn spikes held back so far.
    spikes_suppressed: u64,
    config: FilterConfig,
}

impl Default for ClockFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl ClockFilter {
    /// An empty filter (eight dummy stages) with the RFC defaults.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            stages: [None; NSTAGE],
            last_used: None,
            last_now: None,
            output: None,
            output_samples: 0,
            poll: DEFAULT_POLL,
            spikes_suppressed: 0,
            config: FilterConfig::RFC,
        }
    }

    /// An empty filter with the given limits.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of [`FilterConfig::validate`].
    pub fn with_config(config: FilterConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            ..Self::new()
        })
    }

    /// The limits in use.
    #[must_use]
    pub const fn config(&self) -> &FilterConfig {
        &self.config
    }

    /// Back to the initial state: eight dummy stages, no output, no spikes
    /// counted (A.5.2 `clear`). The configuration and the poll exponent
    /// are kept.
    pub fn reset(&mut self) {
        *self = Self {
            config: self.config,
            poll: self.poll,
            ..Self::new()
        };
    }

    /// Sets the system poll exponent `s.poll`, log2 s, used from the next
    /// shift on by the time condition of the popcorn spike suppressor: a
    /// spike is held back only if it came less than `2 * 2^poll` s after the
    /// last sample used (Appendix A.5.2). Default [`DEFAULT_POLL`] (64 s).
    /// Without [`FilterConfig::popcorn_gate`] it has no effect.
    pub fn set_poll(&mut self, poll: i8) {
        self.poll = poll;
    }

    /// The system poll exponent in use, log2 s.
    #[must_use]
    pub const fn poll(&self) -> i8 {
        self.poll
    }

    /// How many times the popcorn spike suppressor held back the best
    /// sample since the filter was made or [`reset`](Self::reset) (a
    /// spike that stays the best sample counts at every shift, as ntpd
    /// reports a `popcorn` event each time).
    #[must_use]
    pub const fn spikes_suppressed(&self) -> u64 {
        self.spikes_suppressed
    }

    /// The last peer variables produced, if any.
    #[must_use]
    pub const fn output(&self) -> Option<FilterOutput> {
        self.output
    }

    /// Epoch of the last sample used, if any.
    #[must_use]
    pub const fn last_used_epoch(&self) -> Option<f64> {
        self.last_used
    }

    /// The real samples in the register, newest first, with their epochs.
    pub fn samples(&self) -> impl Iterator<Item = (FilterSample, f64)> + '_ {
        self.stages
            .iter()
            .flatten()
            .map(|stage| (stage.sample, stage.epoch))
    }

    /// Shifts a new sample in and recomputes the peer variables
    /// (RFC 5905, section 10).
    ///
    /// # Errors
    ///
    /// [`InputError`] if `now` is not finite, beyond 2^31 s or earlier than
    /// a previous `now`; the filter is then unchanged.
    pub fn update(
        &mut self,
        sample: FilterSample,
        now: f64,
    ) -> Result<Option<FilterOutput>, InputError> {
        self.shift(Some(sample), now)
    }

    /// A new measurement of the exchange the newest sample measured: it
    /// replaces that sample when its epoch is `now` exactly, and is
    /// shifted in as by [`update`](Self::update) otherwise. The
    /// interleaved mode (RFC 9769, section 2) measures each exchange in
    /// the answer to the next one, with the server's true transmit time;
    /// its first interleaved answer measures the exchange that the basic
    /// answer before it measured already. Shifted in as well, that one
    /// exchange would hold two stages, its less precise measurement one
    /// of them.
    ///
    /// # Errors
    ///
    /// As for [`update`](Self::update).
    pub fn remeasure(
        &mut self,
        sample: FilterSample,
        now: f64,
    ) -> Result<Option<FilterOutput>, InputError> {
        let now = check_signed(now, Quantity::Time)?;
        // A real newest stage was shifted in at the latest `now` (a dummy
        // shifted in after it takes its place), so its epoch is all there
        // is to compare.
        match self.stages.first_mut() {
            Some(Some(newest)) if newest.epoch.total_cmp(&now).is_eq() => {
                newest.sample = sample;
                Ok(self.evaluate(now))
            }
            _ => self.shift(Some(sample), now),
        }
    }

    /// Shifts the dummy tuple in, as the poll process does after three
    /// poll intervals without a valid packet (RFC 5905, section 10).
    /// After eight of these the register is back to its initial state.
    ///
    /// # Errors
    ///
    /// As for [`update`](Self::update).
    pub fn missed_poll(&mut self, now: f64) -> Result<Option<FilterOutput>, InputError> {
        self.shift(None, now)
    }

    fn shift(
        &mut self,
        sample: Option<FilterSample>,
        now: f64,
    ) -> Result<Option<FilterOutput>, InputError> {
        let now = check_signed(now, Quantity::Time)?;
        if self.last_now.is_some_and(|last| now < last) {
            return Err(InputError::TimeWentBackwards);
        }
        self.last_now = Some(now);
        self.stages.rotate_right(1);
        if let Some(first) = self.stages.first_mut() {
            *first = sample.map(|sample| Stage { sample, epoch: now });
        }
        Ok(self.evaluate(now))
    }

    /// Dispersion of a stage aged to `now`, or `None` for a dummy or a
    /// stage aged to MAXDISP.
    fn aged(&self, stage: Option<&Stage>, now: f64) -> Option<f64> {
        let stage = stage?;
        let age = (now - stage.epoch).max(0.0);
        let dispersion = stage.sample.dispersion + self.config.phi * age;
        (dispersion < self.config.max_dispersion).then_some(dispersion)
    }

    fn evaluate(&mut self, now: f64) -> Option<FilterOutput> {
        // Per stage: aged dispersion and sort key. Dummies (and stages aged
        // to MAXDISP) get an infinite delay, which no real sample has, so
        // they sort last; equal delays prefer the lower index, the newer
        // sample.
        let mut dispersions = [self.config.max_dispersion; NSTAGE];
        let mut keys = [(f64::INFINITY, 0_u8); NSTAGE];
        for (index, ((stage, dispersion), key)) in self
            .stages
            .iter()
            .zip(&mut dispersions)
            .zip(&mut keys)
            .enumerate()
        {
            #[allow(clippy::cast_possible_truncation, reason = "index < NSTAGE = 8")]
            let index = index as u8;
            key.1 = index;
            if let (Some(aged), Some(stage)) = (self.aged(stage.as_ref(), now), stage) {
                *dispersion = aged;
                key.0 = stage.sample.delay;
            }
        }
        // Insertion sort: eight elements, no allocation.
        for i in 1..NSTAGE {
            let mut j = i;
            while j > 0 {
                let (Some(a), Some(b)) = (keys.get(j - 1), keys.get(j)) else {
                    break;
                };
                if a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).is_le() {
                    break;
                }
                keys.swap(j - 1, j);
                j -= 1;
            }
        }
        // The best stage: smallest delay. None valid: nothing to report.
        let &(best_delay, best_index) = keys.first()?;
        if !best_delay.is_finite() {
            return None;
        }
        let best = (*self.stages.get(usize::from(best_index))?)?;

        // Dispersion: sum of epsilon_i / 2^(i+1) over the sorted stages,
        // empty ones at MAXDISP unless configured out; jitter over the
        // valid ones.
        let mut dispersion = 0.0;
        let mut weight = 0.5;
        let mut squares = 0.0;
        let mut count = 0_u32;
        for &(delay, index) in &keys {
            let index = usize::from(index);
            if delay.is_finite() || self.config.count_empty_stages {
                dispersion += dispersions.get(index).copied().unwrap_or(0.0) * weight;
            }
            weight *= 0.5;
            if delay.is_finite() {
                if let Some(Some(stage)) = self.stages.get(index) {
                    let difference = best.sample.offset - stage.sample.offset;
                    squares += difference * difference;
                    count += 1;
                }
            }
        }
        let jitter = if count > 1 {
            libm::sqrt(squares / f64::from(count - 1))
        } else {
            0.0
        };
        let output = FilterOutput {
            offset: best.sample.offset,
            delay: best.sample.delay,
            dispersion,
            jitter: jitter.max(self.config.precision),
            epoch: best.epoch,
        };
        let samples = usize::try_from(count).unwrap_or(NSTAGE);
        // The peer variables follow every shift (A.5.2 updates offset,
        // delay, dispersion and jitter before its prime directive); only
        // handing the sample on is gated: never twice, never an older one.
        if self.last_used.is_some_and(|used| best.epoch <= used) {
            self.output = Some(output);
            self.output_samples = samples;
            return None;
        }
        // Then the popcorn spike suppressor, if configured: a spike leaves
        // the last output in place (see the module docs).
        if self.is_popcorn_spike(output.offset, best.epoch) {
            self.spikes_suppressed = self.spikes_suppressed.saturating_add(1);
            return None;
        }
        self.output = Some(output);
        self.output_samples = samples;
        self.last_used = Some(best.epoch);
        Some(output)
    }

    /// Whether a new best sample with this offset and epoch is a popcorn
    /// spike to hold back (Appendix A.5.2; the conditions are in the
    /// module docs).
    fn is_popcorn_spike(&self, offset: f64, epoch: f64) -> bool {
        let (Some(gate), Some(last), Some(used)) =
            (self.config.popcorn_gate, self.output, self.last_used)
        else {
            return false;
        };
        let poll_interval = libm::exp2(f64::from(self.poll));
        self.output_samples >= POPCORN_MIN_SAMPLES
            && (offset - last.offset).abs() > gate * last.jitter
            && epoch - used < 2.0 * poll_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::{DEFAULT_PRECISION, MAXDISP, PHI, SGATE};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    fn sample(offset: f64, delay: f64, dispersion: f64) -> FilterSample {
        FilterSample::new(offset, delay, dispersion).unwrap()
    }

    #[test]
    fn a_remeasured_exchange_replaces_its_sample() {
        let mut filter = ClockFilter::new();
        filter.update(sample(0.005, 0.002, 0.0), 10.0).unwrap();
        // The interleaved answer measures the exchange of epoch 10 again,
        // better: one stage, the peer variables from the new values (the
        // sample is not handed on twice: RFC 5905's prime directive).
        let handed_on = filter.remeasure(sample(0.001, 0.003, 0.0), 10.0).unwrap();
        assert_eq!(handed_on, None);
        assert_eq!(filter.samples().count(), 1);
        let output = filter.output().unwrap();
        assert!((output.offset - 0.001).abs() < 1e-12, "{output:?}");
        assert!((output.delay - 0.003).abs() < 1e-12, "{output:?}");
        // A later exchange is shifted in as by `update`.
        filter.remeasure(sample(0.002, 0.003, 0.0), 11.0).unwrap();
        assert_eq!(filter.samples().count(), 2);
        // An epoch before the newest is refused, the filter unchanged.
        let before = filter.clone();
        assert!(filter.remeasure(sample(0.0, 0.001, 0.0), 10.5).is_err());
        assert_eq!(filter, before);
    }

    #[test]
    fn first_sample_is_used_and_dummies_weigh_in() {
        let mut filter = ClockFilter::new();
        let output = filter
            .update(sample(0.01, 0.05, 0.001), 0.0)
            .unwrap()
            .unwrap();
        assert!(close(output.offset, 0.01));
        assert!(close(output.delay, 0.05));
        // 0.001 / 2 + MAXDISP * (1/4 + ... + 1/256) = 0.0005 + 16 * 127/256.
        assert!(
            close(output.dispersion, 0.0005 + 7.9375),
            "{}",
            output.dispersion
        );
        // One valid sample: jitter is the precision floor.
        assert!(close(output.jitter, DEFAULT_PRECISION));
        assert!(close(output.epoch, 0.0));
        assert_eq!(filter.output(), Some(output));
    }

    #[test]
    fn empty_filter_dispersion_is_a_little_less_than_maxdisp() {
        // Section 10, remark (a): all dummies give a little less than 16 s.
        let mut filter = ClockFilter::new();
        assert_eq!(filter.missed_poll(0.0).unwrap(), None);
        assert_eq!(filter.output(), None);
        let mut one = ClockFilter::new();
        let output = one
            .update(sample(0.0, 0.0, MAXDISP - 1e-9), 0.0)
            .unwrap()
            .unwrap();
        assert!(output.dispersion < MAXDISP && output.dispersion > 15.9);
    }

    #[test]
    fn four_good_samples_bring_dispersion_below_maxdist() {
        // Section 10, remark (c).
        let mut filter = ClockFilter::new();
        let mut dispersions = [0.0; 4];
        for (i, slot) in dispersions.iter_mut().enumerate() {
            let now = 64.0 * i as f64;
            // Newest sample has the smallest delay, so each one is used.
            let delay = 0.1 - 0.01 * i as f64;
            *slot = filter
                .update(sample(0.0, delay, 1e-4), now)
                .unwrap()
                .unwrap()
                .dispersion;
        }
        // Each valid sample roughly halves the dispersion.
        for pair in dispersions.windows(2) {
            assert!(pair[1] < pair[0] * 0.51 + 1e-3, "{dispersions:?}");
        }
        assert!(
            dispersions[2] > 1.0 && dispersions[3] < 1.0,
            "{dispersions:?}"
        );
    }

    #[test]
    fn minimum_delay_sample_wins_and_jitter_is_rms() {
        let mut filter = ClockFilter::new();
        // Decreasing delays: every new sample is the best one.
        filter.update(sample(0.0, 0.03, 0.0), 0.0).unwrap().unwrap();
        filter
            .update(sample(0.003, 0.02, 0.0), 1.0)
            .unwrap()
            .unwrap();
        let output = filter
            .update(sample(-0.004, 0.01, 0.0), 2.0)
            .unwrap()
            .unwrap();
        assert!(close(output.offset, -0.004));
        assert!(close(output.delay, 0.01));
        assert!(close(output.epoch, 2.0));
        // sqrt(((-0.004 - 0.003)^2 + (-0.004 - 0.0)^2) / 2) = sqrt(32.5e-6).
        assert!(
            close(output.jitter, libm::sqrt(32.5e-6)),
            "{}",
            output.jitter
        );
        // Sorted by delay: ages 0, 1, 2 s, then five dummies.
        let expected = PHI / 4.0 + 2.0 * PHI / 8.0 + MAXDISP * (1.0 / 8.0 - 1.0 / 256.0);
        assert!(close(output.dispersion, expected), "{}", output.dispersion);
    }

    #[test]
    fn older_best_sample_is_not_used_again() {
        let mut filter = ClockFilter::new();
        let first = filter
            .update(sample(0.001, 0.01, 0.0), 0.0)
            .unwrap()
            .unwrap();
        // A worse (longer delay) sample arrives: the best is still the old one.
        assert_eq!(filter.update(sample(0.5, 0.2, 0.0), 64.0).unwrap(), None);
        assert_eq!(filter.last_used_epoch(), Some(0.0));
        // The peer variables still follow the register (A.5.2): same best
        // sample, but one dummy fewer halves the dispersion, and the new
        // sample's offset enters the jitter.
        let peer = filter.output().unwrap();
        assert_eq!(
            (peer.offset, peer.delay, peer.epoch),
            (first.offset, first.delay, first.epoch)
        );
        let expected = (0.0 + PHI * 64.0) / 2.0 + MAXDISP * (63.0 / 256.0);
        assert!(close(peer.dispersion, expected), "{}", peer.dispersion);
        assert!(close(peer.jitter, 0.499), "{}", peer.jitter);
        // A better one is used.
        let third = filter
            .update(sample(0.002, 0.005, 0.0), 128.0)
            .unwrap()
            .unwrap();
        assert!(close(third.offset, 0.002));
        // Now the 0.5 s offset sample is part of the jitter.
        assert!(third.jitter > 0.2);
    }

    #[test]
    fn equal_delays_prefer_the_newer_sample() {
        let mut filter = ClockFilter::new();
        filter
            .update(sample(0.001, 0.01, 0.0), 0.0)
            .unwrap()
            .unwrap();
        let output = filter
            .update(sample(0.002, 0.01, 0.0), 1.0)
            .unwrap()
            .unwrap();
        assert!(close(output.offset, 0.002));
    }

    #[test]
    fn eight_missed_polls_return_to_the_initial_state() {
        let mut filter = ClockFilter::new();
        filter.update(sample(0.001, 0.01, 0.0), 0.0).unwrap();
        for poll in 1..=7 {
            assert_eq!(filter.missed_poll(f64::from(poll)).unwrap(), None);
            assert_eq!(filter.samples().count(), 1);
        }
        assert_eq!(filter.missed_poll(8.0).unwrap(), None);
        assert_eq!(filter.samples().count(), 0);
        // A new sample after that is used (its epoch is newer).
        assert!(
            filter
                .update(sample(0.0, 0.02, 0.0), 9.0)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn samples_aged_to_maxdisp_count_as_dummies() {
        let mut filter = ClockFilter::new();
        filter.update(sample(0.001, 0.01, 0.0), 0.0).unwrap();
        // 16 s / 15e-6 s/s is about 12.3 days.
        let late = 1.1e6;
        let output = filter
            .update(sample(0.003, 0.05, 0.0), late)
            .unwrap()
            .unwrap();
        assert!(close(output.offset, 0.003));
        // The old sample is no longer valid: jitter is the floor.
        assert!(close(output.jitter, DEFAULT_PRECISION));
    }

    #[test]
    fn time_going_backwards_changes_nothing() {
        let mut filter = ClockFilter::new();
        filter.update(sample(0.001, 0.01, 0.0), 10.0).unwrap();
        let before = filter.clone();
        assert_eq!(
            filter.update(sample(0.0, 0.001, 0.0), 9.0),
            Err(InputError::TimeWentBackwards)
        );
        assert_eq!(
            filter.missed_poll(f64::NAN),
            Err(InputError::NotFinite(Quantity::Time))
        );
        assert_eq!(filter, before);
    }

    #[test]
    fn bad_samples_are_rejected() {
        assert_eq!(
            FilterSample::new(f64::NAN, 0.0, 0.0),
            Err(InputError::NotFinite(Quantity::Offset))
        );
        assert_eq!(
            FilterSample::new(0.0, f64::INFINITY, 0.0),
            Err(InputError::NotFinite(Quantity::Delay))
        );
        assert_eq!(
            FilterSample::new(0.0, -1e-9, 0.0),
            Err(InputError::Negative(Quantity::Delay))
        );
        assert_eq!(
            FilterSample::new(0.0, 0.0, -1.0),
            Err(InputError::Negative(Quantity::Dispersion))
        );
        assert_eq!(
            FilterSample::new(3e9, 0.0, 0.0),
            Err(InputError::OutOfRange(Quantity::Offset))
        );
        let ok = FilterSample::from_durations(
            NtpDuration::from_nanos(-1_500_000),
            NtpDuration::from_nanos(20_000_000),
            NtpDuration::ZERO,
        )
        .unwrap();
        assert!((ok.offset() + 0.0015).abs() < 1e-9);
        assert!((ok.delay() - 0.02).abs() < 1e-9);
        assert!(
            FilterSample::from_durations(
                NtpDuration::ZERO,
                -NtpDuration::ONE_SECOND,
                NtpDuration::ZERO
            )
            .is_err()
        );
    }

    /// Six samples 64 s apart, offsets alternating around zero by 10 µs,
    /// each with a shorter delay than the last, so each is used. Returns
    /// the last output.
    fn steady(filter: &mut ClockFilter) -> FilterOutput {
        let mut last = None;
        for i in 0..6_u32 {
            let offset = if i % 2 == 0 { 10e-6 } else { -10e-6 };
            let delay = 0.030 - 0.001 * f64::from(i);
            last = filter
                .update(sample(offset, delay, 1e-5), 64.0 * f64::from(i))
                .unwrap();
            assert!(last.is_some());
        }
        last.unwrap()
    }

    fn popcorn_filter() -> ClockFilter {
        ClockFilter::with_config(FilterConfig::RFC.with_popcorn_gate(Some(SGATE))).unwrap()
    }

    #[test]
    fn a_popcorn_spike_is_held_back_only_when_enabled() {
        // Off: the RFC body's filter hands the spike on.
        let mut plain = ClockFilter::new();
        let last = steady(&mut plain);
        assert!(last.jitter < 20e-6 && close(last.epoch, 320.0), "{last:?}");
        let spike = plain.update(sample(0.005, 0.020, 1e-5), 384.0).unwrap();
        assert_eq!(spike.map(|o| o.epoch), Some(384.0));
        assert!(close(spike.unwrap().offset, 0.005));
        assert_eq!(plain.spikes_suppressed(), 0);

        // On: 5 ms is far beyond 3 x 14 µs, 64 s after the last sample used
        // (< 2 x 64 s): held back, the last output stays.
        let mut filter = popcorn_filter();
        assert_eq!(steady(&mut filter), last);
        assert_eq!(
            filter.update(sample(0.005, 0.020, 1e-5), 384.0).unwrap(),
            None
        );
        assert_eq!(filter.output(), Some(last));
        assert_eq!(filter.last_used_epoch(), Some(320.0));
        assert_eq!(filter.spikes_suppressed(), 1);
        // A longer-delay sample: the spike is still the best, still held.
        assert_eq!(
            filter.update(sample(1e-5, 0.026, 1e-5), 448.0).unwrap(),
            None
        );
        assert_eq!(filter.output(), Some(last));
        assert_eq!(filter.spikes_suppressed(), 2);
        // A shorter-delay sample at the old level is used; the spike was
        // never handed on, and it now weighs in the jitter.
        let next = filter
            .update(sample(-1e-5, 0.015, 1e-5), 512.0)
            .unwrap()
            .unwrap();
        assert!(close(next.offset, -1e-5));
        assert!(next.jitter > 1e-3, "{next:?}");
        assert_eq!(filter.spikes_suppressed(), 2);
        // The same stream through the plain filter differs only by the
        // spike.
        let mut plain = ClockFilter::new();
        steady(&mut plain);
        for (offset, delay, now) in [(0.005, 0.020, 384.0), (1e-5, 0.026, 448.0)] {
            plain.update(sample(offset, delay, 1e-5), now).unwrap();
        }
        let plain_next = plain.update(sample(-1e-5, 0.015, 1e-5), 512.0).unwrap();
        assert_eq!(plain_next, Some(next));
    }

    #[test]
    fn a_lasting_step_gets_through() {
        // Each sample of the new level is the best: the first is held back
        // (64 s after the last used), the second is not (128 s after).
        let mut filter = popcorn_filter();
        steady(&mut filter);
        assert_eq!(
            filter.update(sample(0.05, 0.020, 1e-5), 384.0).unwrap(),
            None
        );
        let output = filter
            .update(sample(0.05, 0.019, 1e-5), 448.0)
            .unwrap()
            .unwrap();
        assert!(close(output.offset, 0.05));
        assert_eq!(filter.spikes_suppressed(), 1);

        // The first sample of the new level has the shortest delay of all:
        // it blocks the filter until it leaves the register, then the next
        // best sample of the new level is used.
        let mut filter = popcorn_filter();
        steady(&mut filter);
        let mut now = 384.0;
        let mut shifts = 1;
        assert_eq!(filter.update(sample(0.05, 0.001, 1e-5), now).unwrap(), None);
        let output = loop {
            now += 64.0;
            shifts += 1;
            if let Some(output) = filter.update(sample(0.05, 0.040, 1e-5), now).unwrap() {
                break output;
            }
            assert!(shifts <= NSTAGE, "still blocked after {shifts} shifts");
        };
        assert_eq!(shifts, NSTAGE + 1);
        assert!(close(output.offset, 0.05));
        assert_eq!(filter.spikes_suppressed(), 8);
    }

    #[test]
    fn popcorn_needs_four_samples_and_the_poll() {
        // After one sample the jitter is the precision floor: the second
        // sample is not a spike, whatever its offset.
        let mut filter = popcorn_filter();
        filter
            .update(sample(0.0, 0.030, 1e-5), 0.0)
            .unwrap()
            .unwrap();
        for (i, offset) in [0.001, -0.002, 0.003].into_iter().enumerate() {
            let now = 64.0 * (i as f64 + 1.0);
            let output = filter
                .update(sample(offset, 0.020 - 0.001 * i as f64, 1e-5), now)
                .unwrap();
            assert!(output.is_some(), "sample {i}");
        }
        assert_eq!(filter.spikes_suppressed(), 0);
        // From the fifth sample on (four behind the jitter) it acts.
        assert_eq!(
            filter.update(sample(0.5, 0.010, 1e-5), 256.0).unwrap(),
            None
        );
        assert_eq!(filter.spikes_suppressed(), 1);

        // With a 16 s system poll, 64 s after the last sample used is more
        // than two poll intervals: the spike is handed on.
        let mut filter = popcorn_filter();
        assert_eq!(filter.poll(), DEFAULT_POLL);
        filter.set_poll(4);
        steady(&mut filter);
        let output = filter.update(sample(0.005, 0.020, 1e-5), 384.0).unwrap();
        assert!(close(output.unwrap().offset, 0.005));
        assert_eq!(filter.spikes_suppressed(), 0);
        // The poll survives a reset; the count does not.
        filter.set_poll(10);
        filter.reset();
        assert_eq!(filter.poll(), 10);
        assert_eq!(filter.spikes_suppressed(), 0);
    }

    #[test]
    fn empty_stages_can_be_left_out_of_the_dispersion() {
        let config = FilterConfig::RFC.with_count_empty_stages(false);
        let mut filter = ClockFilter::with_config(config).unwrap();
        // One sample: half its dispersion, instead of 0.0005 + 7.9375.
        let output = filter
            .update(sample(0.01, 0.05, 0.001), 0.0)
            .unwrap()
            .unwrap();
        assert!(close(output.dispersion, 0.0005), "{}", output.dispersion);
        // As in minimum_delay_sample_wins_and_jitter_is_rms, without the
        // five dummies.
        let mut filter = ClockFilter::with_config(config).unwrap();
        filter.update(sample(0.0, 0.03, 0.0), 0.0).unwrap();
        filter.update(sample(0.003, 0.02, 0.0), 1.0).unwrap();
        let output = filter
            .update(sample(-0.004, 0.01, 0.0), 2.0)
            .unwrap()
            .unwrap();
        assert!(close(output.dispersion, PHI / 4.0 + 2.0 * PHI / 8.0));
        assert!(close(output.jitter, libm::sqrt(32.5e-6)));
        // Missed polls shift in dummies that weigh nothing; the one sample
        // ages.
        let mut filter = ClockFilter::with_config(config).unwrap();
        filter.update(sample(0.001, 0.01, 0.002), 0.0).unwrap();
        for poll in 1..=7 {
            filter.missed_poll(64.0 * f64::from(poll)).unwrap();
            let expected = (0.002 + PHI * 64.0 * f64::from(poll)) / 2.0;
            assert!(close(filter.output().unwrap().dispersion, expected));
        }
        // A sample aged to MAXDISP counts as empty: nothing.
        let mut filter = ClockFilter::with_config(config).unwrap();
        filter.update(sample(0.001, 0.01, 0.0), 0.0).unwrap();
        let output = filter
            .update(sample(0.003, 0.05, 0.0), 1.1e6)
            .unwrap()
            .unwrap();
        assert!(close(output.dispersion, 0.0), "{}", output.dispersion);
        // Four samples: a few microseconds, where the RFC's is near 1 s.
        let mut filter = ClockFilter::with_config(config).unwrap();
        for i in 0..4_u32 {
            let output = filter
                .update(
                    sample(0.0, 0.1 - 0.01 * f64::from(i), 1e-4),
                    64.0 * f64::from(i),
                )
                .unwrap()
                .unwrap();
            assert!(output.dispersion < 2e-3, "{output:?}");
        }
    }

    proptest::proptest! {
        /// After a steady run, a best sample beyond SGATE times the last
        /// jitter is held back with the gate on and handed on with it off;
        /// one within the gate is handed on either way.
        #[test]
        fn a_spike_is_held_back_exactly_beyond_the_gate(
            offsets in proptest::collection::vec(-1e-3..1e-3_f64, 4..8),
            factor in 0.0..100.0_f64,
            negative: bool,
        ) {
            proptest::prop_assume!(!(0.99..=1.01).contains(&factor));
            let mut on = popcorn_filter();
            let mut off = ClockFilter::new();
            // A history at random offsets may have spikes of its own: keep
            // them out with a poll of 1 ms (64 s is far beyond two of
            // those), then poll at 64 s for the spike.
            on.set_poll(-10);
            let mut now = 0.0;
            let mut last = None;
            for (i, &offset) in offsets.iter().enumerate() {
                let delay = 0.030 - 0.001 * i as f64;
                now = 64.0 * i as f64;
                last = on.update(sample(offset, delay, 1e-5), now).unwrap();
                proptest::prop_assert_eq!(off.update(sample(offset, delay, 1e-5), now).unwrap(), last);
            }
            let last = last.unwrap();
            on.set_poll(DEFAULT_POLL);
            let step = SGATE * last.jitter * factor;
            let spike = last.offset + if negative { -step } else { step };
            let spike_sample = sample(spike, 0.001, 1e-5);
            let handed_on = off.update(spike_sample, now + 64.0).unwrap();
            proptest::prop_assert!(close(handed_on.unwrap().offset, spike));
            let gated = on.update(spike_sample, now + 64.0).unwrap();
            if factor > 1.0 {
                proptest::prop_assert_eq!(gated, None);
                proptest::prop_assert_eq!(on.output(), Some(last));
                proptest::prop_assert_eq!(on.spikes_suppressed(), 1);
            } else {
                proptest::prop_assert_eq!(gated, handed_on);
            }
        }

        /// Leaving empty stages out changes the dispersion by exactly their
        /// weight at MAXDISP, `MAXDISP * (2^-n - 2^-8)` for `n` valid
        /// samples, and nothing else.
        #[test]
        fn empty_stages_weigh_maxdisp_each(
            steps in proptest::collection::vec(
                (proptest::option::of((-1.0..1.0_f64, 0.0..0.5_f64, 0.0..0.01_f64)), 0.0..2000.0_f64),
                1..40,
            ),
        ) {
            let config = FilterConfig::RFC.with_count_empty_stages(false);
            let mut rfc = ClockFilter::new();
            let mut real = ClockFilter::with_config(config).unwrap();
            let mut now = 0.0;
            for (step, advance) in steps {
                now += advance;
                let (a, b) = match step {
                    Some((offset, delay, dispersion)) => {
                        let s = sample(offset, delay, dispersion);
                        (rfc.update(s, now).unwrap(), real.update(s, now).unwrap())
                    }
                    None => (rfc.missed_poll(now).unwrap(), real.missed_poll(now).unwrap()),
                };
                proptest::prop_assert_eq!(a.is_some(), b.is_some());
                let (Some(a), Some(b)) = (rfc.output(), real.output()) else {
                    proptest::prop_assert_eq!(rfc.output(), real.output());
                    continue;
                };
                proptest::prop_assert_eq!(
                    (a.offset, a.delay, a.jitter, a.epoch),
                    (b.offset, b.delay, b.jitter, b.epoch)
                );
                let valid = i32::try_from(rfc.samples().count()).unwrap();
                if valid == 0 {
                    // No valid sample: both keep their last output.
                    continue;
                }
                let empty = MAXDISP * (libm::exp2(-f64::from(valid)) - 1.0 / 256.0);
                proptest::prop_assert!(
                    (a.dispersion - b.dispersion - empty).abs() < 1e-12,
                    "{} {} {}", a.dispersion, b.dispersion, valid
                );
            }
        }
    }

    #[test]
    fn reset_keeps_config() {
        let config = FilterConfig::with_precision_log2(-10);
        let mut filter = ClockFilter::with_config(config).unwrap();
        filter.update(sample(0.0, 0.01, 0.0), 0.0).unwrap();
        filter.reset();
        assert_eq!(filter.output(), None);
        assert_eq!(filter.samples().count(), 0);
        assert_eq!(filter.config(), &config);
        let mut bad = FilterConfig::RFC;
        bad.phi = f64::NAN;
        assert!(ClockFilter::with_config(bad).is_err());
    }
}

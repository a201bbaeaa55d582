//! What goes into the discipline ([`Update`]) and what comes out of it
//! ([`UpdateOutcome`], [`Output`], [`ClockAdjustment`]).

use ntp_proto::{Date, LeapIndicator, NtpDuration};
use thiserror::Error;

use crate::LeapEvent;

/// One update from the mitigation algorithms (RFC 5905, section 11.2.3):
/// the combined offset, the system jitter and the leap indicator of the
/// selected sources.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Update {
    /// Combined offset θ in seconds: the reference time minus the local
    /// clock, so positive when the local clock is behind. Must be finite
    /// and within ±[`MAX_OFFSET`](crate::MAX_OFFSET).
    pub offset: f64,
    /// System jitter ψ in seconds (RFC 5905, section 11.2.3). Must be
    /// finite, non-negative and at most [`MAX_OFFSET`](crate::MAX_OFFSET).
    /// It seeds the clock jitter at the first update; RFC 5905 starts that
    /// average at zero, which keeps the poll gate shut until several
    /// updates have been averaged.
    pub jitter: f64,
    /// The leap indicator the selected sources agree on.
    pub leap: LeapIndicator,
    /// How long ago the offset was measured, seconds: `now` minus the
    /// epoch of the clock filter sample it comes from (RFC 5905 uses the
    /// sample time `p->t`, not the update time, for the interval μ between
    /// updates). Must be finite, non-negative and at most
    /// [`MAX_OFFSET`](crate::MAX_OFFSET); zero by default.
    pub age: f64,
    /// Standard deviation of this offset's measurement error, seconds,
    /// used by the [`Algorithm::Kalman`](crate::Algorithm::Kalman)
    /// estimator to weight it (the RFC loop ignores it). Zero means
    /// unknown: the jitter stands in. Floored at the clock precision. Must
    /// be finite, non-negative and at most
    /// [`MAX_OFFSET`](crate::MAX_OFFSET).
    ///
    /// A good value for one NTP sample: its error is at most half the
    /// part of its round-trip delay above the path's minimum (queueing is
    /// what makes the two directions differ), and with that excess `x`
    /// spread evenly between the directions the error is uniform within
    /// ±x/2, a standard deviation of `x / sqrt(12)`.
    pub uncertainty: f64,
    /// Precision of the measurement, seconds: the floor of its
    /// [`uncertainty`](Self::uncertainty) and of the clock jitter's
    /// samples in place of the clock's precision
    /// ([`Config::precision`](crate::Config::precision)), which RFC 5905
    /// sets at 2^-18 s (section 7.3, about 3.8 us) for the readings of a
    /// network exchange. A reference clock read by kernel timestamps (a
    /// PPS, a PHC) is read far more precisely; floored at 3.8 us its
    /// updates are weighted as a network sample's and the discipline
    /// follows it too slowly. Zero (the default) means the clock's
    /// precision; below 2^-30 s (the finest
    /// [`Config::precision`](crate::Config::precision)) it counts as
    /// 2^-30 s. Must be finite, non-negative and at most
    /// [`MAX_OFFSET`](crate::MAX_OFFSET).
    #[cfg_attr(feature = "serde", serde(default))]
    pub precision: f64,
    /// Which source the offset comes from, when the caller feeds the
    /// samples of several one by one (any identifier of its choosing);
    /// `None` (the default) for a combined offset. The
    /// [`Algorithm::Kalman`](crate::Algorithm::Kalman) estimator judges
    /// its predictions over a poll interval by consecutive updates from
    /// one source only: between two sources the difference also holds
    /// their biases, which no interval explains.
    #[cfg_attr(feature = "serde", serde(default))]
    pub source: Option<u64>,
    /// More samples of the same first batch follow (only before the
    /// first update, NSET or FSET, and only for the
    /// [`Algorithm::Kalman`](crate::Algorithm::Kalman) estimator; ignored
    /// otherwise). The estimator takes the sample in and waits for the
    /// rest ([`IgnoreReason::Batched`]): the decision to step or slew is
    /// made once, at the last sample of the batch, on the offset and the
    /// frequency that all of them give. A caller that gathers several
    /// samples before its first update (chrony's regression wants three)
    /// would otherwise have the first of them step the clock and the
    /// others, measured on the clock before the step, thrown away with
    /// the frequency they hold. `false` by default.
    #[cfg_attr(feature = "serde", serde(default))]
    pub batched: bool,
}

impl Update {
    /// An update without a leap warning.
    #[must_use]
    pub const fn new(offset: f64, jitter: f64) -> Self {
        Self {
            offset,
            jitter,
            leap: LeapIndicator::NoWarning,
            age: 0.0,
            uncertainty: 0.0,
            precision: 0.0,
            source: None,
            batched: false,
        }
    }

    /// The same update, with more of the first batch to follow when
    /// `batched` (see [`Update::batched`]).
    #[must_use]
    pub const fn with_batched(self, batched: bool) -> Self {
        Self { batched, ..self }
    }

    /// The same update, from source `source` (see [`Update::source`]).
    #[must_use]
    pub const fn with_source(self, source: u64) -> Self {
        Self {
            source: Some(source),
            ..self
        }
    }

    /// The same update with measurement precision `precision` seconds
    /// (see [`Update::precision`]).
    #[must_use]
    pub const fn with_precision(self, precision: f64) -> Self {
        Self { precision, ..self }
    }

    /// The same update with measurement standard deviation `uncertainty`
    /// seconds (see [`Update::uncertainty`]).
    #[must_use]
    pub const fn with_uncertainty(self, uncertainty: f64) -> Self {
        Self {
            uncertainty,
            ..self
        }
    }

    /// The same update with leap indicator `leap`.
    #[must_use]
    pub const fn with_leap(self, leap: LeapIndicator) -> Self {
        Self { leap, ..self }
    }

    /// The same update, measured `age` seconds before `now`.
    #[must_use]
    pub const fn with_age(self, age: f64) -> Self {
        Self { age, ..self }
    }
}

/// Why an update was refused. A refused update changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum UpdateError {
    /// The offset is NaN or infinite.
    #[error("offset is NaN or infinite")]
    NonFiniteOffset,
    /// The offset magnitude exceeds [`MAX_OFFSET`](crate::MAX_OFFSET)
    /// (2^31 s), beyond what a step can express.
    #[error("offset exceeds 2^31 s")]
    OffsetOutOfRange,
    /// The jitter is NaN, infinite, negative or above
    /// [`MAX_OFFSET`](crate::MAX_OFFSET).
    #[error("jitter is NaN, infinite, negative or above 2^31 s")]
    InvalidJitter,
    /// The age is NaN, infinite, negative or above
    /// [`MAX_OFFSET`](crate::MAX_OFFSET).
    #[error("age is NaN, infinite, negative or above 2^31 s")]
    InvalidAge,
    /// The uncertainty is NaN, infinite, negative or above
    /// [`MAX_OFFSET`](crate::MAX_OFFSET).
    #[error("uncertainty is NaN, infinite, negative or above 2^31 s")]
    InvalidUncertainty,
    /// The precision is NaN, infinite, negative or above
    /// [`MAX_OFFSET`](crate::MAX_OFFSET).
    #[error("precision is NaN, infinite, negative or above 2^31 s")]
    InvalidPrecision,
    /// `now` is more than 2^31 s (68 years) away from the discipline's own
    /// timeline, or a step would leave the date range.
    #[error("time is out of the discipline's 68-year range")]
    TimeOutOfRange,
}

/// Why an update was accepted but did not move the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum IgnoreReason {
    /// First update without a known frequency (NSET): the offset is
    /// recorded and slewed, and frequency training starts (-> FREQ).
    FrequencyTrainingStarted,
    /// Frequency training (FREQ) lasts until the stepout interval has
    /// passed since it started.
    FrequencyTraining,
    /// An offset above the step threshold within the stepout interval:
    /// suppressed as a spike (SYNC -> SPIK, or still SPIK / FREQ).
    Spike,
    /// [`Algorithm::Kalman`](crate::Algorithm::Kalman) only: the offset is
    /// more than [`OUTLIER_GATE`](crate::OUTLIER_GATE) standard deviations
    /// from the prediction. Held back until the next update: if that one
    /// agrees with it, the estimator widens its uncertainty and follows;
    /// meanwhile the poll interval drops to the minimum to find out soon.
    Outlier,
    /// Larger than [`Config::max_change`](crate::Config::max_change)
    /// allows (chrony's `maxchange`); after its `ignore` count the next one
    /// is a panic.
    MaxChange,
    /// [`Algorithm::Kalman`](crate::Algorithm::Kalman) only: a sample of
    /// the first batch with more to follow ([`Update::batched`]), taken
    /// into the estimator; the clock waits for the last one.
    Batched,
}

/// What [`Discipline::handle_update`](crate::Discipline::handle_update)
/// did. The clock actions themselves come out of
/// [`poll_output`](crate::Discipline::poll_output); this is for logging and
/// tests.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum UpdateOutcome {
    /// The offset is slewed away and, outside FSET, the frequency adjusted
    /// (RFC 5905 appendix A.5.5.6 return code SLEW).
    Slew,
    /// The clock is to be stepped by this offset (return code STEP).
    Step(NtpDuration),
    /// Nothing to do with the clock (return code IGNORE).
    Ignored(IgnoreReason),
    /// The offset exceeds the panic threshold: nothing was done (return
    /// code PANIC). The caller should alert an operator or exit, as ntpd
    /// does.
    Panic(f64),
}

/// How the caller's clock should run until the next adjustment: the
/// `adjust_time(c.freq + dtemp)` of RFC 5905, appendix A.5.6.1, split in
/// its two parts.
///
/// Both are rates in seconds per second, positive meaning "run faster".
/// A caller that can only trim its oscillator applies
/// [`rate`](Self::rate); a caller with a kernel that slews phase and trims
/// frequency separately applies each part on its own.
///
/// With the default [`Algorithm::Kalman`](crate::Algorithm::Kalman) an
/// adjustment is a one-shot order a kernel can take at once: run at
/// `frequency + phase_slew` for [`duration`](Self::duration) seconds, then
/// at `frequency` (the discipline's next [`Output::Adjust`] says so when
/// its [`Output::Timeout`] at the end of the slew is served). A caller
/// steering a kernel clock therefore wakes once per update and once at the
/// end of its slew, not once a second. The RFC 5905 loop
/// ([`Config::rfc5905`](crate::Config::rfc5905)) recomputes the phase part
/// every second (`duration` 1 s).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ClockAdjustment {
    /// Frequency correction, the discipline's frequency estimate, within
    /// ±[`MAXFREQ`](crate::MAXFREQ).
    pub frequency: f64,
    /// Phase slew: the share of the residual offset to remove per second
    /// (`c.offset / (PLL * min(2^poll, ALLAN))`), within
    /// ±[`MAXSLEW`](crate::MAXSLEW). With the Kalman estimator: the
    /// offset estimate divided by [`duration`](Self::duration), with
    /// `frequency + phase_slew` within ±[`MAXFREQ`](crate::MAXFREQ).
    pub phase_slew: f64,
    /// How long the phase slew lasts, seconds: the discipline asks for the
    /// next adjustment (via [`Output::Timeout`]) after this long. Zero when
    /// there is no phase slew.
    pub duration: f64,
}

impl ClockAdjustment {
    /// The total rate correction: `frequency + phase_slew`. With the
    /// default Kalman estimator it is within ±[`MAXFREQ`](crate::MAXFREQ)
    /// = ±500 ppm, what Linux's `ADJ_FREQUENCY` takes. The RFC 5905 loop
    /// can ask for up to ±([`MAXFREQ`](crate::MAXFREQ) +
    /// [`MAXSLEW`](crate::MAXSLEW)) = ±1000 ppm; a kernel caller clamps
    /// that to ±500 ppm, and the part cut off is not lost, since the
    /// offset it would have removed is measured again at the next update.
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.frequency + self.phase_slew
    }
}

/// An action for the caller, from
/// [`Discipline::poll_output`](crate::Discipline::poll_output).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Output {
    /// The offset exceeded the panic threshold and nothing was done. The
    /// caller should alert an operator (ntpd exits).
    Panic {
        /// The refused offset, in seconds.
        offset: f64,
    },
    /// Step the clock now: add this offset to it (set it to its current
    /// reading plus the offset).
    Step(NtpDuration),
    /// A leap second was armed, cancelled, or is due now.
    Leap(LeapEvent),
    /// From now on run the clock at this rate correction, until the next
    /// adjustment.
    Adjust(ClockAdjustment),
    /// Nothing more to do: call
    /// [`handle_timeout`](crate::Discipline::handle_timeout) when the clock
    /// reads this date (about once a second).
    Timeout(Date),
}

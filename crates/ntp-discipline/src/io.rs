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
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClockAdjustment {
    /// Frequency correction, the discipline's frequency estimate, within
    /// ±[`MAXFREQ`](crate::MAXFREQ).
    pub frequency: f64,
    /// Phase slew: the share of the residual offset to remove per second
    /// (`c.offset / (PLL * min(2^poll, ALLAN))`), within
    /// ±[`MAXSLEW`](crate::MAXSLEW).
    pub phase_slew: f64,
}

impl ClockAdjustment {
    /// The total rate correction: `frequency + phase_slew`, within
    /// ±([`MAXFREQ`](crate::MAXFREQ) + [`MAXSLEW`](crate::MAXSLEW)) =
    /// ±1000 ppm. The sum can exceed what a kernel takes: Linux clamps
    /// `ADJ_FREQUENCY` to ±500 ppm, so a caller steering a kernel clock
    /// clamps it there too; the part cut off is not lost, since the offset
    /// it would have removed is measured again at the next update.
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

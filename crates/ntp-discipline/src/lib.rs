//! The RFC 5905 clock discipline: a hybrid PLL/FLL with its state machine,
//! poll-interval control and leap second scheduling, sans-IO.
//!
//! [`Discipline`] never reads or sets a clock. The caller hands it the
//! combined offset, system jitter and leap indicator of its selected
//! sources ([`Update`]) with the current clock reading, and gets back
//! actions ([`Output`]) that need nothing but a clock whose frequency can
//! be trimmed and which can be stepped:
//!
//! - [`Output::Step`]: add this offset to the clock, once;
//! - [`Output::Adjust`]: run the clock at this rate correction (frequency
//!   correction plus the per-second phase slew of `clock_adjust()`) until
//!   the next adjustment;
//! - [`Output::Leap`]: a leap second armed, cancelled, or due now (then
//!   step by [`LeapSecond::step`]);
//! - [`Output::Panic`]: the offset exceeds the panic threshold, nothing
//!   was done;
//! - [`Output::Timeout`]: call [`Discipline::handle_timeout`] at this
//!   clock reading (about once a second).
//!
//! # States and thresholds
//!
//! RFC 5905, section 11.3, figure 28; θ is the update's offset, μ the
//! time since the last accepted update. Constants and the choices between
//! disagreeing sources are in [`config`](crate::Config) (see also the
//! [`STEPT`], [`WATCH`] and [`ALLAN`] docs).
//!
//! | State | \|θ\| ≤ STEPT (0.128 s) | \|θ\| > STEPT |
//! |---|---|---|
//! | NSET (no drift file) | slew, start frequency training → FREQ | step → FREQ |
//! | FSET (drift file) | slew → SYNC | step → SYNC |
//! | FREQ | ignore while μ < WATCH (900 s), then set frequency from the measured drift → SYNC | ignore while μ < WATCH, then set frequency, step → SYNC |
//! | SYNC | PLL/FLL update → SYNC | ignore (spike) → SPIK |
//! | SPIK | PLL/FLL update → SYNC | ignore while μ < WATCH, then step → SYNC |
//!
//! In every state \|θ\| > PANICT (1000 s) is refused with
//! [`Output::Panic`] ([`Config::panic_on_first_update`] can lift that for
//! the first update). The frequency is clamped to ±[`MAXFREQ`] (500 ppm).
//! The FLL joins the PLL when the poll interval exceeds half the Allan
//! intercept (ALLAN = 2048 s). The poll exponent moves within
//! [`Config::min_poll`]..=[`Config::max_poll`], driven by the hysteresis
//! counter (LIMIT = 30) and the gate PGATE = 4 times the clock jitter.
//!
//! # Offsets from a clock filter
//!
//! RFC 5905's clock filter (section 10) hands on the lowest-delay sample of
//! the last eight, which may be several polls old. Two things keep such an
//! offset accurate: set [`Update::age`] to the sample's age (RFC 5905 times
//! the loop by the sample, `p->t`), and keep the filter's offsets on an
//! unslewed scale — add [`Discipline::cumulative_slew`] to each measured
//! offset before it goes into the filter and subtract the current value from
//! the filter's output — so that the slews since the sample do not count
//! twice. Both are optional; the accuracy test does both.
//!
//! # Beyond the RFC
//!
//! [`Config::open_loop_initial_offset`] (off by default) slews the offset
//! left after frequency training outside the PLL, which otherwise winds the
//! frequency up and takes hours to settle; see its docs.
//!
//! # Example: a caller with its own clock
//!
//! ```
//! use ntp_discipline::{Config, Discipline, LeapEvent, Output, Update};
//! use ntp_proto::{Date, NtpDuration};
//!
//! /// A clock that can only be stepped and have its rate trimmed.
//! struct MyClock {
//!     reading: Date,
//!     rate: f64,
//! }
//!
//! impl MyClock {
//!     fn step(&mut self, by: NtpDuration) {
//!         self.reading = self.reading.checked_add(by).expect("in range");
//!     }
//!     fn run_for(&mut self, seconds: f64) {
//!         let elapsed = NtpDuration::from_seconds_f64(seconds * (1.0 + self.rate)).unwrap();
//!         self.reading = self.reading.checked_add(elapsed).expect("in range");
//!     }
//! }
//!
//! let start = Date::from_unix(1_700_000_000, 0)?;
//! let mut clock = MyClock { reading: start, rate: 0.0 };
//! // The frequency saved in the drift file at the last run (FSET).
//! let drift = 12.5e-6;
//! let mut discipline = Discipline::with_frequency(Config::default(), clock.reading, drift)?;
//!
//! // Applies every pending action; returns when the discipline wants to be
//! // called again.
//! fn drain(discipline: &mut Discipline, clock: &mut MyClock) -> Date {
//!     loop {
//!         match discipline.poll_output() {
//!             Output::Step(offset) => clock.step(offset),
//!             Output::Adjust(adjust) => clock.rate = adjust.rate(),
//!             Output::Leap(LeapEvent::Apply(leap)) => clock.step(leap.step()),
//!             Output::Leap(_) => {} // advance notice only
//!             Output::Panic { offset } => panic!("offset {offset} s: operator needed"),
//!             Output::Timeout(at) => return at,
//!             _ => {} // `Output` may grow
//!         }
//!     }
//! }
//!
//! // The mitigation algorithms say the clock is 0.5 s behind: beyond the
//! // step threshold, so the first update steps the clock.
//! discipline.handle_update(clock.reading, Update::new(0.5, 0.001))?;
//! let mut next = drain(&mut discipline, &mut clock);
//! assert_eq!(clock.reading, start.checked_add(NtpDuration::from_seconds_f64(0.5)?).unwrap());
//!
//! // Then run the once-a-second loop for a minute.
//! for _ in 0..60 {
//!     let wait = next.checked_duration_since(clock.reading).unwrap().to_seconds_f64();
//!     clock.run_for(wait.max(0.0));
//!     discipline.handle_timeout(clock.reading);
//!     next = drain(&mut discipline, &mut clock);
//! }
//! assert_eq!(clock.rate, drift);
//!
//! // A small offset is slewed away a little every second, on top of the
//! // frequency correction.
//! discipline.handle_update(clock.reading, Update::new(0.002, 0.001))?;
//! drain(&mut discipline, &mut clock);
//! assert!(clock.rate > drift);
//! // Save this to the drift file now and then.
//! let _drift = discipline.frequency();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `std` (default): implies `alloc`; nothing else yet.
//! - `alloc`: nothing yet; the crate allocates nothing.
//! - `serde`: `Serialize`/`Deserialize` for [`Config`], [`Update`],
//!   [`Output`] and the other plain types.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

// The crate README's snippet is compiled and run as a doctest here.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod config;
mod discipline;
pub mod drift_file;
mod fallback;
mod io;
mod kalman;
mod leap;
mod rates;
mod wander;

pub use config::{
    ALLAN, AVG, Algorithm, CORRECTION_TIME_RATIO, Config, ConfigError, DEFAULT_POLL_TARGET,
    DRIFT_FILE_FREQUENCY_SD, FAST_SLEW, FLL, FallbackDrift, INITIAL_FREQUENCY_SD, LIMIT,
    MAX_CORRECTION_TIME_RATIO, MAX_OFFSET, MAX_POLL_GATE, MAX_RATE_LIMIT, MAXFREQ, MAXPOLL,
    MAXSLEW, MIN_POLL_LIMIT, MIN_PRECISION_LOG2, MIN_SLEW_TIME, MINPOLL, MakeStep, MaxChange,
    OUTLIER_GATE, PANICT, PGATE, PLL, POLL_DROP, POLL_GATE, POLL_TARGET_RANGE, PRECISION, STEPT,
    WANDER, WANDER_MAX, WANDER_MIN, WATCH,
};
pub use discipline::{Discipline, State};
pub use drift_file::{DriftFile, DriftFileError};
pub use fallback::FALLBACK_DRIFT_MAX_EXPONENT;
pub use io::{ClockAdjustment, IgnoreReason, Output, Update, UpdateError, UpdateOutcome};
pub use leap::{LeapEvent, LeapKind, LeapSecond};

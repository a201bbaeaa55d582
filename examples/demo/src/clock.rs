//! The demo's clocks: the true time everything is measured against, and a
//! model of the client's own clock that the discipline steers. Nothing
//! here reads anything but `std::time::Instant` and (once)
//! `SystemTime`, and nothing ever sets a clock.

use core::time::Duration;
use std::time::SystemTime;

use ntp_proto::{Date, NtpDuration};

/// The demo's reference time: this machine's clock read once at start, then
/// carried forward by the monotonic clock. Servers serve it plus their
/// offsets; the model clock is judged against it. Tying all of them to one
/// monotonic clock keeps the comparison exact even if the host's own clock
/// is slewed (or stepped) while the demo runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TrueTime {
    anchor: std::time::Instant,
    date: Date,
}

impl TrueTime {
    /// True time starts as this machine's clock reads now.
    pub(crate) fn start() -> Self {
        let anchor = std::time::Instant::now();
        let date = Date::try_from(SystemTime::now()).unwrap_or(Date::UNIX_EPOCH);
        Self { anchor, date }
    }

    /// True time at monotonic instant `at`.
    pub(crate) fn at(self, at: std::time::Instant) -> Date {
        advance(self.date, at.saturating_duration_since(self.anchor), 0.0)
    }

    /// True time now.
    pub(crate) fn now(self) -> Date {
        self.at(std::time::Instant::now())
    }
}

/// `date` plus `elapsed` run at rate `1 + rate`.
fn advance(date: Date, elapsed: Duration, rate: f64) -> Date {
    let seconds = elapsed.as_secs_f64() * (1.0 + rate);
    NtpDuration::from_seconds_f64(seconds)
        .ok()
        .and_then(|d| date.checked_add(d))
        .unwrap_or(date)
}

/// The clock being disciplined, as a model: it starts `initial_error` off
/// true time, its oscillator runs `drift` fast (seconds per second), and it
/// obeys the discipline's steps and rate corrections. Reading it is pure
/// arithmetic on the monotonic clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ModelClock {
    truth: TrueTime,
    /// The monotonic instant of the last change.
    anchor: std::time::Instant,
    /// The reading at `anchor`.
    reading: Date,
    /// Own frequency error of the simulated oscillator.
    drift: f64,
    /// The discipline's rate correction in force.
    correction: f64,
    /// Steps taken.
    steps: u32,
}

impl ModelClock {
    /// A clock that reads `initial_error` ahead of true time now and runs
    /// `drift` fast.
    pub(crate) fn new(truth: TrueTime, initial_error: NtpDuration, drift: f64) -> Self {
        let anchor = std::time::Instant::now();
        let now = truth.at(anchor);
        Self {
            truth,
            anchor,
            reading: now.checked_add(initial_error).unwrap_or(now),
            drift,
            correction: 0.0,
            steps: 0,
        }
    }

    /// The reading at monotonic instant `at` (not before the last change).
    pub(crate) fn at(&self, at: std::time::Instant) -> Date {
        advance(
            self.reading,
            at.saturating_duration_since(self.anchor),
            self.drift + self.correction,
        )
    }

    /// The reading now.
    pub(crate) fn now(&self) -> Date {
        self.at(std::time::Instant::now())
    }

    /// Moves the anchor to now, so that a change applies from now on.
    fn rebase(&mut self) -> std::time::Instant {
        let now = std::time::Instant::now();
        self.reading = self.at(now);
        self.anchor = now;
        now
    }

    /// Steps the clock: adds `by` to its reading.
    pub(crate) fn step(&mut self, by: NtpDuration) {
        self.rebase();
        self.reading = self.reading.checked_add(by).unwrap_or(self.reading);
        self.steps = self.steps.saturating_add(1);
    }

    /// From now on run at rate correction `rate` (seconds per second,
    /// positive = faster), replacing the previous one.
    pub(crate) fn set_correction(&mut self, rate: f64) {
        self.rebase();
        self.correction = rate;
    }

    /// The rate correction in force.
    pub(crate) const fn correction(&self) -> f64 {
        self.correction
    }

    /// The simulated oscillator's own frequency error.
    pub(crate) const fn drift(&self) -> f64 {
        self.drift
    }

    /// How many steps the clock took.
    pub(crate) const fn steps(&self) -> u32 {
        self.steps
    }

    /// How far the clock is ahead of true time at `at`, in seconds.
    pub(crate) fn error_at(&self, at: std::time::Instant) -> f64 {
        seconds_between(self.truth.at(at), self.at(at))
    }
}

/// `later - earlier` in seconds (negative if `later` is earlier).
pub(crate) fn seconds_between(earlier: Date, later: Date) -> f64 {
    later
        .checked_duration_since(earlier)
        .map_or(f64::NAN, NtpDuration::to_seconds_f64)
}

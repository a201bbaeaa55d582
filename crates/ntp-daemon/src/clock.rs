//! The one seam between the daemon's loop and a clock: [`Clock`], with a
//! model clock that never touches the system and the kernel's
//! CLOCK_REALTIME steered through `clock-steering`.

use core::time::Duration;
use std::io;
use std::time::SystemTime;

use clock_steering::Clock as _;
use clock_steering::unix::UnixClock;
use ntp_client::ntp_proto::{Date, NtpDuration};

/// The kernel's frequency range, seconds per second: Linux clamps
/// `ADJ_FREQUENCY` to ±500 ppm (±32 768 000 in units of 2^-16 ppm). The
/// discipline's frequency stays within ±MAXFREQ (500 ppm, RFC 5905,
/// section 11.3) but its phase slew comes on top, so the sum is clamped
/// here; the part cut off is slewed later, since the discipline measures
/// the offset that is left.
pub(crate) const KERNEL_MAX_RATE: f64 = 500e-6;

/// What the daemon's loop needs from a clock.
pub(crate) trait Clock {
    /// The clock's reading now.
    fn now(&self) -> io::Result<Date>;
    /// A kernel receive timestamp (CLOCK_REALTIME) on this clock's scale.
    fn reading_at_realtime(&self, realtime: SystemTime) -> io::Result<Date>;
    /// Adds `by` to the clock's reading.
    fn step(&mut self, by: NtpDuration) -> io::Result<()>;
    /// Runs the clock at rate correction `rate` (seconds per second,
    /// positive = faster) until the next call.
    fn set_rate(&mut self, rate: f64) -> io::Result<()>;
    /// `model` or `kernel`.
    fn name(&self) -> &'static str;
}

/// `date` plus `seconds` (saturating at the date range, which a clock
/// reading never nears).
fn add_seconds(date: Date, seconds: f64) -> Date {
    NtpDuration::from_seconds_f64(seconds)
        .ok()
        .and_then(|by| date.checked_add(by))
        .unwrap_or(date)
}

/// The system clock as a [`Date`].
fn system_now() -> io::Result<Date> {
    Date::try_from(SystemTime::now())
        .map_err(|error| io::Error::other(format!("system clock out of range: {error}")))
}

/// A model clock: it starts `offset` seconds off the system clock, its
/// oscillator runs `drift` fast, and it obeys steps and rate corrections.
/// Reading it is arithmetic on the monotonic clock; nothing is ever set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ModelClock {
    /// The monotonic instant of the last change.
    anchor: std::time::Instant,
    /// The reading at `anchor`.
    reading: Date,
    /// The oscillator's own frequency error.
    drift: f64,
    /// The rate correction in force.
    correction: f64,
}

impl ModelClock {
    pub(crate) fn new(offset: f64, drift: f64) -> io::Result<Self> {
        Ok(Self {
            anchor: std::time::Instant::now(),
            reading: add_seconds(system_now()?, offset),
            drift,
            correction: 0.0,
        })
    }

    fn at(&self, at: std::time::Instant) -> Date {
        let elapsed = at.saturating_duration_since(self.anchor).as_secs_f64();
        add_seconds(self.reading, elapsed * (1.0 + self.drift + self.correction))
    }

    fn rebase(&mut self) {
        let now = std::time::Instant::now();
        self.reading = self.at(now);
        self.anchor = now;
    }
}

impl Clock for ModelClock {
    fn now(&self) -> io::Result<Date> {
        Ok(self.at(std::time::Instant::now()))
    }

    fn reading_at_realtime(&self, realtime: SystemTime) -> io::Result<Date> {
        // How long ago the kernel stamped it, by the system clock, carried
        // back on the model's scale.
        let ago = SystemTime::now()
            .duration_since(realtime)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        Ok(add_seconds(
            self.now()?,
            -ago * (1.0 + self.drift + self.correction),
        ))
    }

    fn step(&mut self, by: NtpDuration) -> io::Result<()> {
        self.rebase();
        self.reading = self
            .reading
            .checked_add(by)
            .ok_or_else(|| io::Error::other("step leaves the date range"))?;
        Ok(())
    }

    fn set_rate(&mut self, rate: f64) -> io::Result<()> {
        self.rebase();
        self.correction = rate;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "model"
    }
}

/// The kernel's CLOCK_REALTIME. Steps go in with `ADJ_SETOFFSET`, rates
/// as `ADJ_FREQUENCY` (clamped to ±[`KERNEL_MAX_RATE`]); the kernel's own
/// PLL and FLL are switched off at start, so that nothing but this daemon
/// moves the clock.
pub(crate) struct KernelClock {
    clock: UnixClock,
}

impl KernelClock {
    /// Takes control of the clock. Fails without CAP_SYS_TIME.
    pub(crate) fn new() -> io::Result<Self> {
        let clock = UnixClock::CLOCK_REALTIME;
        clock
            .disable_kernel_ntp_algorithm()
            .map_err(io::Error::from)?;
        let mut kernel = Self { clock };
        kernel.set_rate(0.0)?;
        Ok(kernel)
    }
}

impl Clock for KernelClock {
    fn now(&self) -> io::Result<Date> {
        system_now()
    }

    fn reading_at_realtime(&self, realtime: SystemTime) -> io::Result<Date> {
        Date::try_from(realtime)
            .map_err(|error| io::Error::other(format!("timestamp out of range: {error}")))
    }

    fn step(&mut self, by: NtpDuration) -> io::Result<()> {
        let (seconds, nanos) = by.to_secs_nanos();
        let offset = clock_steering::TimeOffset { seconds, nanos };
        self.clock.step_clock(offset).map_err(io::Error::from)?;
        Ok(())
    }

    fn set_rate(&mut self, rate: f64) -> io::Result<()> {
        let rate = rate.clamp(-KERNEL_MAX_RATE, KERNEL_MAX_RATE);
        if rate.is_finite() {
            self.clock
                .set_frequency(rate * 1e6)
                .map_err(io::Error::from)?;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "kernel"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_clock_steps_and_reads_realtime_on_its_scale() {
        let mut clock = ModelClock::new(0.25, 0.0).unwrap_or_else(|e| unreachable!("{e}"));
        let system = system_now().unwrap_or_else(|e| unreachable!("{e}"));
        let reading = clock.now().unwrap_or_else(|e| unreachable!("{e}"));
        let ahead = reading
            .checked_duration_since(system)
            .map(NtpDuration::to_seconds_f64);
        assert!(ahead.is_some_and(|s| (s - 0.25).abs() < 0.05), "{ahead:?}");
        clock
            .step(NtpDuration::from_seconds_f64(-0.25).unwrap_or(NtpDuration::ZERO))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let stamped = clock
            .reading_at_realtime(SystemTime::now())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let system = system_now().unwrap_or_else(|e| unreachable!("{e}"));
        let off = stamped
            .checked_duration_since(system)
            .map(NtpDuration::to_seconds_f64);
        assert!(off.is_some_and(|s| s.abs() < 0.05), "{off:?}");
    }
}

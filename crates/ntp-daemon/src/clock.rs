//! The one seam between the daemon's loop and a clock: [`Clock`], with a
//! model clock that never touches the system and the kernel's
//! CLOCK_REALTIME steered through `clock-steering`. The reading side,
//! [`ReadClock`], can be shared with `--serve`'s worker threads
//! ([`Clock::reader`]): they timestamp answers on the clock the loop
//! steers.

use core::time::Duration;
use std::io;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use clock_steering::Clock as _;
use clock_steering::unix::UnixClock;
use ntp_client::ntp_proto::{Date, NtpDuration};

/// The kernel's frequency range through `ADJ_FREQUENCY` alone, seconds per
/// second: Linux clamps it to ±500 ppm (±32 768 000 in units of 2^-16
/// ppm). Used when the tick length cannot be set.
pub(crate) const FREQUENCY_ONLY_MAX_RATE: f64 = 500e-6;

/// The range of the rate correction with the tick length, seconds per
/// second: Linux accepts a tick within ±10 % of its nominal length
/// (`ADJ_TICK`), and `ADJ_FREQUENCY` adds the fine part below one tick
/// microsecond (100 ppm at `USER_HZ` = 100). chronyd's range on Linux is
/// the same.
pub(crate) const TICK_MAX_RATE: f64 = 0.1;

/// `ADJ_FREQUENCY`'s unit: 2^-16 ppm, in seconds per second.
const SCALED_PPM: f64 = 1e-6 / 65_536.0;

/// Reading a clock: what the loop and `--serve`'s workers need to
/// timestamp packets.
pub(crate) trait ReadClock: Send + Sync {
    /// The clock's reading now.
    fn now(&self) -> io::Result<Date>;
    /// A kernel receive timestamp (CLOCK_REALTIME) on this clock's scale.
    fn reading_at_realtime(&self, realtime: SystemTime) -> io::Result<Date>;

    /// When a datagram arrived, on this clock's scale: the kernel's
    /// receive timestamp if it gave one, the clock's reading now (right
    /// after the wakeup) otherwise.
    fn received_at(&self, kernel_time: Option<SystemTime>) -> io::Result<Date> {
        match kernel_time {
            Some(time) => self.reading_at_realtime(time),
            None => self.now(),
        }
    }

    /// The clock as it is now, to read many times over a few
    /// microseconds (a batch of requests) without a lock, and to convert
    /// kernel timestamps without reading the system clock again.
    fn snapshot(&self) -> io::Result<Snapshot>;
}

/// A clock as it was at one moment ([`ReadClock::snapshot`]): a step or
/// a rate change made after it shows in the next snapshot. Reading it
/// costs one read of the monotonic clock (a model) or of CLOCK_REALTIME
/// (the system's), and converting a kernel timestamp costs none.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Snapshot {
    /// CLOCK_REALTIME itself: kernel timestamps are readings.
    System,
    /// A model clock, with the system clock's reading at the moment the
    /// model was read.
    Model {
        model: Model,
        realtime: SystemTime,
        instant: std::time::Instant,
    },
}

impl ReadClock for Snapshot {
    fn now(&self) -> io::Result<Date> {
        match self {
            Self::System => system_now(),
            Self::Model { model, .. } => Ok(model.at(std::time::Instant::now())),
        }
    }

    fn reading_at_realtime(&self, stamp: SystemTime) -> io::Result<Date> {
        match self {
            Self::System => Date::try_from(stamp)
                .map_err(|error| io::Error::other(format!("timestamp out of range: {error}"))),
            Self::Model {
                model,
                realtime,
                instant,
            } => {
                // How long before the snapshot the kernel stamped it, by
                // the system clock, carried back on the model's scale.
                let ago = realtime
                    .duration_since(stamp)
                    .unwrap_or(Duration::ZERO)
                    .as_secs_f64();
                Ok(add_seconds(
                    model.at(*instant),
                    -ago * (1.0 + model.drift + model.correction),
                ))
            }
        }
    }

    fn snapshot(&self) -> io::Result<Snapshot> {
        Ok(*self)
    }
}

/// What the daemon's loop needs from a clock.
pub(crate) trait Clock: ReadClock {
    /// A reader of this clock for other threads: it follows the steps
    /// and rate changes made here.
    fn reader(&self) -> Arc<dyn ReadClock>;
    /// Adds `by` to the clock's reading.
    fn step(&mut self, by: NtpDuration) -> io::Result<()>;
    /// Runs the clock at rate correction `rate` (seconds per second,
    /// positive = faster) until the next call.
    fn set_rate(&mut self, rate: f64) -> io::Result<()>;
    /// The largest rate correction [`set_rate`](Self::set_rate) applies,
    /// seconds per second (beyond it the rate is clamped).
    fn max_rate(&self) -> f64;
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
/// The model sits behind a lock that readers on other threads share (held
/// only to copy four fields, or to change them).
#[derive(Clone, Debug)]
pub(crate) struct ModelClock {
    model: Arc<RwLock<Model>>,
}

/// The model clock's state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Model {
    /// The monotonic instant of the last change.
    anchor: std::time::Instant,
    /// The reading at `anchor`.
    reading: Date,
    /// The oscillator's own frequency error.
    drift: f64,
    /// The rate correction in force.
    correction: f64,
}

impl Model {
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

impl ModelClock {
    pub(crate) fn new(offset: f64, drift: f64) -> io::Result<Self> {
        let model = Model {
            anchor: std::time::Instant::now(),
            reading: add_seconds(system_now()?, offset),
            drift,
            correction: 0.0,
        };
        Ok(Self {
            model: Arc::new(RwLock::new(model)),
        })
    }

    /// A copy of the model (a poisoned lock still holds a whole model:
    /// every change is a plain assignment of fields).
    fn model(&self) -> Model {
        *self.model.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the model under the lock.
    fn change<T>(&self, change: impl FnOnce(&mut Model) -> T) -> T {
        change(&mut self.model.write().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ReadClock for ModelClock {
    fn now(&self) -> io::Result<Date> {
        Ok(self.model().at(std::time::Instant::now()))
    }

    fn reading_at_realtime(&self, realtime: SystemTime) -> io::Result<Date> {
        self.snapshot()?.reading_at_realtime(realtime)
    }

    fn snapshot(&self) -> io::Result<Snapshot> {
        let model = self.model();
        Ok(Snapshot::Model {
            model,
            realtime: SystemTime::now(),
            instant: std::time::Instant::now(),
        })
    }
}

impl Clock for ModelClock {
    fn reader(&self) -> Arc<dyn ReadClock> {
        Arc::new(self.clone())
    }

    fn step(&mut self, by: NtpDuration) -> io::Result<()> {
        self.change(|model| {
            model.rebase();
            model.reading = model
                .reading
                .checked_add(by)
                .ok_or_else(|| io::Error::other("step leaves the date range"))?;
            Ok(())
        })
    }

    fn set_rate(&mut self, rate: f64) -> io::Result<()> {
        self.change(|model| {
            model.rebase();
            model.correction = rate.clamp(-TICK_MAX_RATE, TICK_MAX_RATE);
        });
        Ok(())
    }

    /// The kernel clock's range with the tick length, so that the model
    /// behaves as the kernel clock would.
    fn max_rate(&self) -> f64 {
        TICK_MAX_RATE
    }

    fn name(&self) -> &'static str {
        "model"
    }
}

/// The kernel's CLOCK_REALTIME. Steps go in with `ADJ_SETOFFSET`, rates
/// as the tick length plus `ADJ_FREQUENCY` (within ±[`TICK_MAX_RATE`]),
/// or as `ADJ_FREQUENCY` alone (±[`FREQUENCY_ONLY_MAX_RATE`]) where the
/// kernel refuses `ADJ_TICK`; the kernel's own PLL and FLL are switched
/// off at start, so that nothing but this daemon moves the clock.
pub(crate) struct KernelClock {
    clock: UnixClock,
    /// The nominal tick length in microseconds (10^6 / `USER_HZ`), or
    /// `None` when the tick cannot be set.
    nominal_tick: Option<libc::c_long>,
}

impl KernelClock {
    /// Takes control of the clock. Fails without CAP_SYS_TIME.
    pub(crate) fn new() -> io::Result<Self> {
        let clock = UnixClock::CLOCK_REALTIME;
        clock
            .disable_kernel_ntp_algorithm()
            .map_err(io::Error::from)?;
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|hz| *hz > 0);
        let nominal_tick = hz.map(|hz| (1_000_000 + hz / 2) / hz);
        let mut kernel = Self {
            clock,
            nominal_tick,
        };
        // Probe: the nominal tick and no frequency correction. Where the
        // tick cannot be set the frequency alone has to do.
        if kernel.set_rate(0.0).is_err() {
            kernel.nominal_tick = None;
            kernel.set_rate(0.0)?;
        }
        Ok(kernel)
    }
}

/// A rate correction as a tick length (microseconds, within ±10 % of
/// `nominal`) and the `ADJ_FREQUENCY` remainder (2^-16 ppm).
fn tick_and_frequency(rate: f64, nominal: libc::c_long) -> (libc::c_long, libc::c_long) {
    let rate = rate.clamp(-TICK_MAX_RATE, TICK_MAX_RATE);
    // |rate * nominal| <= nominal / 10 (1000 at USER_HZ = 100) and the
    // remainder is half a tick microsecond (under 3.3e6 in 2^-16 ppm), far
    // inside a c_long of 32 bits or more: the casts are exact after
    // rounding.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let bias = (rate * nominal as f64).round() as libc::c_long;
    #[allow(clippy::cast_precision_loss)]
    let rest = rate - bias as f64 / nominal as f64;
    #[allow(clippy::cast_possible_truncation)]
    let frequency = (rest / SCALED_PPM).round() as libc::c_long;
    (nominal.saturating_add(bias), frequency)
}

/// Reading CLOCK_REALTIME, which the kernel clock steers: shared by the
/// threads as it is, no lock.
#[derive(Clone, Copy, Debug)]
struct SystemClock;

impl ReadClock for SystemClock {
    fn now(&self) -> io::Result<Date> {
        system_now()
    }

    fn reading_at_realtime(&self, realtime: SystemTime) -> io::Result<Date> {
        Snapshot::System.reading_at_realtime(realtime)
    }

    fn snapshot(&self) -> io::Result<Snapshot> {
        Ok(Snapshot::System)
    }
}

impl ReadClock for KernelClock {
    fn now(&self) -> io::Result<Date> {
        SystemClock.now()
    }

    fn reading_at_realtime(&self, realtime: SystemTime) -> io::Result<Date> {
        SystemClock.reading_at_realtime(realtime)
    }

    fn snapshot(&self) -> io::Result<Snapshot> {
        Ok(Snapshot::System)
    }
}

impl Clock for KernelClock {
    fn reader(&self) -> Arc<dyn ReadClock> {
        Arc::new(SystemClock)
    }

    fn step(&mut self, by: NtpDuration) -> io::Result<()> {
        let (seconds, nanos) = by.to_secs_nanos();
        let offset = clock_steering::TimeOffset { seconds, nanos };
        self.clock.step_clock(offset).map_err(io::Error::from)?;
        Ok(())
    }

    fn set_rate(&mut self, rate: f64) -> io::Result<()> {
        if !rate.is_finite() {
            return Ok(());
        }
        match self.nominal_tick {
            Some(nominal) => {
                let (tick, frequency) = tick_and_frequency(rate, nominal);
                crate::timex::set_tick_and_frequency(tick, frequency)
            }
            None => {
                let rate = rate.clamp(-FREQUENCY_ONLY_MAX_RATE, FREQUENCY_ONLY_MAX_RATE);
                self.clock
                    .set_frequency(rate * 1e6)
                    .map_err(io::Error::from)?;
                Ok(())
            }
        }
    }

    fn max_rate(&self) -> f64 {
        if self.nominal_tick.is_some() {
            TICK_MAX_RATE
        } else {
            FREQUENCY_ONLY_MAX_RATE
        }
    }

    fn name(&self) -> &'static str {
        "kernel"
    }
}

/// Readings taken to measure a clock's precision
/// ([`reading_precision`]).
const PRECISION_READS: usize = 128;

/// The precision of `clock`'s readings, log2 seconds (-30 to 0): the
/// smallest step between two consecutive readings of
/// [`PRECISION_READS`], rounded up to a power of two. RFC 5905 (section
/// 7.3) measures the precision so, when the service starts, "as the
/// minimum time of several iterations to read the system clock"; chrony
/// defaults a reference clock's precision to this estimate. `None` when
/// no two readings differed (a clock coarser than the loop) or a read
/// failed.
pub(crate) fn reading_precision(clock: &dyn ReadClock) -> Option<i8> {
    let mut previous = clock.now().ok()?;
    let mut smallest = f64::INFINITY;
    for _ in 1..PRECISION_READS {
        let reading = clock.now().ok()?;
        if let Some(step) = reading.checked_duration_since(previous) {
            let step = step.to_seconds_f64();
            if step > 0.0 {
                smallest = smallest.min(step);
            }
        }
        previous = reading;
    }
    log2_ceiling(smallest)
}

/// `ceil(log2(seconds))` within -30 to 0; `None` for a value that is not
/// positive and finite.
fn log2_ceiling(seconds: f64) -> Option<i8> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "clamped to -30..=0 before the cast"
    )]
    Some(seconds.log2().ceil().clamp(-30.0, 0.0) as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_precision_rounds_the_smallest_step_up_to_a_power_of_two() {
        assert_eq!(log2_ceiling(1e-7), Some(-23));
        assert_eq!(log2_ceiling(2f64.powi(-20)), Some(-20));
        assert_eq!(log2_ceiling(3.0), Some(0));
        assert_eq!(log2_ceiling(1e-12), Some(-30));
        for bad in [0.0, -1e-6, f64::INFINITY, f64::NAN] {
            assert_eq!(log2_ceiling(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_system_clock_reads_within_a_millisecond() {
        let precision = reading_precision(&SystemClock);
        assert!(
            precision.is_some_and(|p| (-30..=-10).contains(&p)),
            "{precision:?}"
        );
    }

    #[test]
    fn tick_and_frequency_split_the_rate() {
        // USER_HZ = 100: a 10 000 us tick, one microsecond is 100 ppm.
        let nominal = 10_000;
        assert_eq!(tick_and_frequency(0.0, nominal), (10_000, 0));
        for rate in [1e-6, -3.3e-4, 5e-3, -5e-2, 0.0999, -0.1] {
            let (tick, frequency) = tick_and_frequency(rate, nominal);
            assert!((9_000..=11_000).contains(&tick), "{rate}: tick {tick}");
            // The fine part stays within half a tick microsecond, far
            // inside ADJ_FREQUENCY's ±500 ppm.
            #[allow(clippy::cast_precision_loss)]
            let fine = frequency as f64 * SCALED_PPM;
            assert!(fine.abs() <= 50e-6 + SCALED_PPM, "{rate}: {fine}");
            #[allow(clippy::cast_precision_loss)]
            let total = (tick - nominal) as f64 / nominal as f64 + fine;
            assert!((total - rate).abs() <= SCALED_PPM, "{rate}: {total}");
        }
        // Beyond the kernel's range: clamped to ±10 %.
        assert_eq!(tick_and_frequency(0.5, nominal).0, 11_000);
        assert_eq!(tick_and_frequency(-0.5, nominal).0, 9_000);
    }

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

    /// A snapshot converts kernel timestamps as the clock it was taken
    /// of, reads on from its moment, and does not follow a later step.
    #[test]
    fn a_snapshot_reads_as_its_clock_did() {
        let seconds = |a: Date, b: Date| {
            a.checked_duration_since(b)
                .map_or(f64::NAN, NtpDuration::to_seconds_f64)
        };
        let mut clock = ModelClock::new(1.5, 1e-3).unwrap_or_else(|e| unreachable!("{e}"));
        let earlier = SystemTime::now();
        let snapshot = clock.snapshot().unwrap_or_else(|e| unreachable!("{e}"));
        let from_clock = clock
            .reading_at_realtime(earlier)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let from_snapshot = snapshot
            .reading_at_realtime(earlier)
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(seconds(from_clock, from_snapshot).abs() < 1e-3);
        std::thread::sleep(Duration::from_millis(20));
        let read = |clock: &dyn ReadClock| clock.now().unwrap_or_else(|e| unreachable!("{e}"));
        // 20 ms on, at the model's rate.
        let later = seconds(read(&snapshot), from_snapshot);
        assert!((0.019..0.2).contains(&later), "{later}");
        assert!(seconds(read(&clock), read(&snapshot)).abs() < 1e-3);
        clock
            .step(NtpDuration::from_seconds_f64(10.0).unwrap_or(NtpDuration::ZERO))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!((seconds(read(&clock), read(&snapshot)) - 10.0).abs() < 1e-3);
        assert!(
            (seconds(
                read(&clock.snapshot().unwrap_or_else(|e| unreachable!("{e}"))),
                read(&snapshot)
            ) - 10.0)
                .abs()
                < 1e-3
        );

        // The system clock's snapshot: kernel timestamps are readings.
        let system = Snapshot::System;
        let stamp = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            system.reading_at_realtime(stamp).ok(),
            Date::try_from(stamp).ok()
        );
    }
}

//! The client's monotonic time.

use core::time::Duration;

/// A reading of the caller's monotonic clock, in nanoseconds since an
/// origin of the caller's choosing (for example process start).
///
/// The core never reads a clock: every entry point takes the current
/// `Instant`. It must never go backwards; if it does, the core keeps using
/// the latest value it has seen (see [`System`](crate::System)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Instant(u64);

impl Instant {
    /// The origin.
    pub const ZERO: Self = Self(0);

    /// The instant `nanos` nanoseconds after the origin.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// The instant `seconds` seconds after the origin (saturating).
    #[must_use]
    pub const fn from_secs(seconds: u64) -> Self {
        Self(seconds.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the origin.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the origin, the timescale given to the clock filter
    /// and the selection algorithms of `ntp-select`.
    #[must_use]
    pub fn as_secs_f64(self) -> f64 {
        #[allow(
            clippy::cast_precision_loss,
            reason = "f64 keeps nanoseconds exact for 104 days and 0.1 us for 30 years"
        )]
        let nanos = self.0 as f64;
        nanos / 1e9
    }

    /// `self + duration`, saturating at the end of time.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(nanos))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The instant of a std monotonic reading, relative to `origin`
    /// (zero if `now` is before `origin`).
    #[cfg(feature = "std")]
    #[must_use]
    pub fn from_std(origin: std::time::Instant, now: std::time::Instant) -> Self {
        let nanos = now.saturating_duration_since(origin).as_nanos();
        Self(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_secs(3);
        assert_eq!(t.as_nanos(), 3_000_000_000);
        assert_eq!(
            t.saturating_add(Duration::from_millis(500)),
            Instant::from_nanos(3_500_000_000)
        );
        assert_eq!(
            Instant::from_nanos(u64::MAX - 1).saturating_add(Duration::from_secs(1)),
            Instant::from_nanos(u64::MAX)
        );
        assert_eq!(
            Instant::from_secs(1).saturating_duration_since(t),
            Duration::ZERO
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_secs(1)),
            Duration::from_secs(2)
        );
        assert!((Instant::from_nanos(1_500_000_000).as_secs_f64() - 1.5).abs() < 1e-12);
        assert_eq!(Instant::from_secs(u64::MAX).as_nanos(), u64::MAX);
    }
}

//! The caller's monotonic clock, as the sans-IO cores see it.

use core::fmt;
use core::time::Duration;

/// A reading of the caller's monotonic clock, in nanoseconds from an
/// origin of the caller's choice (for example the start of the process).
///
/// The sans-IO cores of this workspace (`ntp-client`, `ntp-server`) never
/// read a clock: every entry point that needs the time takes an `Instant`.
/// Only differences between instants matter: they drive poll timers,
/// reply timeouts and rate limiting. Unlike [`Timestamp`](crate::Timestamp)
/// and [`Date`](crate::Date), which are wall-clock times and may be
/// stepped, an `Instant` must never go backwards; the cores keep the
/// latest value they have seen if it does. A `u64` of nanoseconds covers
/// 584 years from the origin; all arithmetic saturates.
///
/// `Debug` shows the time since the origin in seconds with all nine
/// decimals, which is the exact raw value: `Instant(1.500000000s)`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Instant(u64);

impl Instant {
    /// The origin.
    pub const ZERO: Self = Self(0);

    /// The instant `nanos` nanoseconds after the origin.
    #[inline]
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the origin.
    #[inline]
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The instant `seconds` seconds after the origin, saturating at the
    /// largest instant.
    #[inline]
    #[must_use]
    pub const fn from_secs(seconds: u64) -> Self {
        Self(seconds.saturating_mul(1_000_000_000))
    }

    /// Seconds since the origin, the timescale of the clock filter and the
    /// selection algorithms of `ntp-select`.
    #[inline]
    #[must_use]
    pub fn as_secs_f64(self) -> f64 {
        #[allow(
            clippy::cast_precision_loss,
            reason = "f64 keeps nanoseconds exact for 104 days and 0.1 us for 30 years"
        )]
        let nanos = self.0 as f64;
        nanos / 1e9
    }

    /// This instant moved `duration` later, saturating at the largest
    /// instant.
    #[inline]
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(nanos))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    #[inline]
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// The instant of `now` on a clock whose origin is `origin`, both read
    /// from [`std::time::Instant`]. Saturates at zero if `now` is before
    /// `origin`.
    #[cfg(feature = "std")]
    #[must_use]
    pub fn from_std(origin: std::time::Instant, now: std::time::Instant) -> Self {
        let nanos = now.saturating_duration_since(origin).as_nanos();
        Self(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl fmt::Debug for Instant {
    /// Seconds since the origin with nine decimals: `Instant(1.500000000s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Instant({}.{:09}s)",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_seconds() {
        extern crate alloc;
        use alloc::format;

        assert_eq!(format!("{:?}", Instant::ZERO), "Instant(0.000000000s)");
        assert_eq!(
            format!("{:?}", Instant::from_nanos(1_500_000_001)),
            "Instant(1.500000001s)"
        );
        assert_eq!(
            format!("{:?}", Instant::from_nanos(u64::MAX)),
            "Instant(18446744073.709551615s)"
        );
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_secs(3);
        assert_eq!(t.as_nanos(), 3_000_000_000);
        assert_eq!(Instant::from_secs(u64::MAX), Instant::from_nanos(u64::MAX));
        assert_eq!(
            t.saturating_add(Duration::from_millis(500)),
            Instant::from_nanos(3_500_000_000)
        );
        let late = Instant::from_nanos(u64::MAX - 1).saturating_add(Duration::from_secs(1));
        assert_eq!(late.as_nanos(), u64::MAX);
        assert_eq!(
            Instant::from_secs(1).saturating_duration_since(t),
            Duration::ZERO
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_secs(1)),
            Duration::from_secs(2)
        );
        assert!((Instant::from_nanos(1_500_000_000).as_secs_f64() - 1.5).abs() < 1e-12);
    }

    #[cfg(feature = "std")]
    #[test]
    fn from_std_counts_from_the_origin() {
        let origin = std::time::Instant::now();
        let later = origin + Duration::from_millis(3);
        assert_eq!(Instant::from_std(origin, later).as_nanos(), 3_000_000);
        assert_eq!(Instant::from_std(later, origin), Instant::ZERO);
    }
}

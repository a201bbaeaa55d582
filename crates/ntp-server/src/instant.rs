//! The caller's monotonic clock, as the core sees it.

use core::time::Duration;

/// A reading of the caller's monotonic clock, in nanoseconds from an
/// origin of the caller's choice (for example the start of the process).
///
/// The core never reads a clock: every call that needs the time takes an
/// `Instant`. Only differences between instants matter; they drive the
/// rate limiter (RFC 8633, section 5.4 asks servers to meter clients). A
/// `u64` of nanoseconds covers 584 years from the origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Instant(u64);

impl Instant {
    /// The origin.
    pub const ZERO: Self = Self(0);

    /// An instant `nanos` nanoseconds after the origin.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the origin.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// An instant `seconds` seconds after the origin, saturating at the
    /// largest instant.
    #[must_use]
    pub const fn from_secs(seconds: u64) -> Self {
        Self(seconds.saturating_mul(1_000_000_000))
    }

    /// This instant moved `duration` later, saturating at the largest
    /// instant.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant::from_secs(2).as_nanos(), 2_000_000_000);
        assert_eq!(Instant::from_secs(u64::MAX), Instant::from_nanos(u64::MAX));
        let late = Instant::from_nanos(u64::MAX - 1).saturating_add(Duration::from_secs(1));
        assert_eq!(late.as_nanos(), u64::MAX);
        let a = Instant::from_nanos(1_500);
        let b = a.saturating_add(Duration::from_nanos(250));
        assert_eq!(b.saturating_duration_since(a), Duration::from_nanos(250));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
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

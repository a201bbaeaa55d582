//! The 64-bit NTP timestamp format (RFC 5905, section 6).

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

use super::{Date, NtpDuration};

/// An NTP timestamp: 32 bits of seconds and 32 bits of fraction
/// (RFC 5905, section 6, figure 3), without an era number.
///
/// The seconds count from the start of the (unknown) era, so a timestamp
/// names one instant in every era, 2^32 s (about 136 years) apart. Era 0
/// starts at the prime epoch, 1900-01-01T00:00:00Z ([`Date::PRIME_EPOCH`]),
/// era 1 at 2036-02-07T06:28:16Z ([`Date::ERA_1`]). Use
/// [`Timestamp::to_date`] to place a timestamp in time.
///
/// The all-zero timestamp is reserved for "unknown or unsynchronized time"
/// (RFC 5905, section 6); see [`Timestamp::non_zero`].
///
/// Timestamps have no meaningful order, so they implement neither
/// [`PartialOrd`] nor [`Ord`]; subtract them to compare them.
///
/// # Display
///
/// A timestamp displays as its seconds and fraction in hexadecimal, eight
/// digits each, separated by a dot, as `ntpq` shows them:
///
/// ```
/// use ntp_proto::Timestamp;
///
/// let t = Timestamp::new(0xeeac_9dac, 0x4545_f0d4);
/// assert_eq!(t.to_string(), "eeac9dac.4545f0d4");
/// ```
///
/// # Debug
///
/// `Debug` shows the UTC civil time first and the raw value second. A
/// timestamp carries no era, so the date is read as RFC 4330 (section 3)
/// reads it: seconds with the top bit set lie in era 0 (1968-01-20 to
/// 2036-02-07), the others in era 1 (2036-02-07 to 2104-02-26). Use
/// [`Timestamp::to_date`] to place a timestamp near a known date instead.
/// The zero timestamp shows as `unknown`.
///
/// ```
/// use ntp_proto::Timestamp;
///
/// let t = Timestamp::new(0xeeac_9dac, 0x4545_f0d4);
/// assert_eq!(
///     format!("{t:?}"),
///     "Timestamp(2026-11-21T22:46:04.270598460Z, eeac9dac.4545f0d4)"
/// );
/// assert_eq!(format!("{:?}", Timestamp::ZERO), "Timestamp(unknown, 00000000.00000000)");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Timestamp(u64);

impl Timestamp {
    /// The zero timestamp, which RFC 5905 (section 6) reserves for "unknown".
    pub const ZERO: Self = Self(0);

    /// Builds a timestamp from its 64 wire bits.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The 64 wire bits.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// Builds a timestamp from whole seconds since the start of the era and
    /// a fraction of a second in units of 2^-32 s.
    #[inline]
    #[must_use]
    pub const fn new(seconds: u32, fraction: u32) -> Self {
        Self(((seconds as u64) << 32) | fraction as u64)
    }

    /// Whole seconds since the start of the era (the upper 32 bits).
    #[inline]
    #[must_use]
    pub const fn seconds(self) -> u32 {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the upper 32 bits fit after the shift"
        )]
        let seconds = (self.0 >> 32) as u32;
        seconds
    }

    /// Fraction of a second in units of 2^-32 s (the lower 32 bits).
    #[inline]
    #[must_use]
    pub const fn fraction(self) -> u32 {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "keeping the lower 32 bits is the intent"
        )]
        let fraction = self.0 as u32;
        fraction
    }

    /// Whether this is the zero timestamp, which means "unknown or
    /// unsynchronized time" (RFC 5905, section 6).
    #[inline]
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `None` for the zero timestamp, which means "unknown or unsynchronized
    /// time" (RFC 5905, section 6), `Some(self)` otherwise.
    ///
    /// ```
    /// use ntp_proto::Timestamp;
    ///
    /// assert_eq!(Timestamp::ZERO.non_zero(), None);
    /// let t = Timestamp::new(1, 0);
    /// assert_eq!(t.non_zero(), Some(t));
    /// ```
    #[inline]
    #[must_use]
    pub const fn non_zero(self) -> Option<Self> {
        if self.is_zero() { None } else { Some(self) }
    }

    /// Places this timestamp in the era given explicitly.
    ///
    /// The fraction becomes the upper 32 bits of the date's 64-bit fraction.
    #[inline]
    #[must_use]
    pub const fn with_era(self, era: i32) -> Date {
        Date::new(era, self.seconds(), (self.fraction() as u64) << 32)
    }

    /// Places this timestamp in the era that puts it nearest to `pivot`
    /// (RFC 5905, section 6).
    ///
    /// The result is the pivot plus the twos-complement difference
    /// `self - Timestamp::from(pivot)` read as a signed 32.32 value, so it
    /// lies within `[pivot - 2^31 s, pivot + 2^31 s)` and is the true time
    /// whenever the true time lies within about 68 years of the pivot. The
    /// bits of the pivot's fraction below 2^-32 s are ignored, so the
    /// result's fraction always has its lower 32 bits clear.
    ///
    /// Always `Timestamp::from(ts.to_date(pivot)) == ts`. At the very ends of
    /// the [`Date`] range (eras near [`i32::MIN`] or [`i32::MAX`]) the
    /// result wraps around the range instead of failing.
    ///
    /// ```
    /// use ntp_proto::{Date, Timestamp};
    ///
    /// // A timestamp from just after the era 1 rollover, read in 2035.
    /// let pivot = Date::from_unix(2_050_000_000, 0)?;
    /// let t = Timestamp::new(1000, 0);
    /// assert_eq!(t.to_date(pivot), Date::new(1, 1000, 0));
    /// # Ok::<(), ntp_proto::TimeError>(())
    /// ```
    #[inline]
    #[must_use]
    pub const fn to_date(self, pivot: Date) -> Date {
        let pivot_fixed = pivot.to_fixed() & !0xFFFF_FFFF;
        let pivot_timestamp = Timestamp::from_date(pivot);
        #[allow(
            clippy::cast_possible_wrap,
            reason = "reading the difference as twos-complement is the intent"
        )]
        let difference = self.0.wrapping_sub(pivot_timestamp.0) as i64;
        Date::from_fixed(pivot_fixed.wrapping_add((difference as i128) << 32))
    }

    /// The timestamp of a date: the era is dropped and the fraction is
    /// truncated to its upper 32 bits, which rounds toward the past.
    ///
    /// Same as `Timestamp::from(date)`, usable in `const` contexts.
    #[inline]
    #[must_use]
    pub const fn from_date(date: Date) -> Self {
        Self::new(date.era_offset(), (date.fraction() >> 32) as u32)
    }
}

impl From<Date> for Timestamp {
    /// Drops the era and truncates the fraction to its upper 32 bits, which
    /// rounds toward the past (RFC 5905, section 6).
    #[inline]
    fn from(date: Date) -> Self {
        Self::from_date(date)
    }
}

impl Sub for Timestamp {
    type Output = NtpDuration;

    /// The twos-complement difference of two timestamps (RFC 5905,
    /// section 6), read as a signed 32.32 value.
    ///
    /// This is the exact difference whenever the true difference lies in
    /// `[-2^31 s, 2^31 s)` (about 68 years), even if the two timestamps are
    /// in different eras.
    #[inline]
    fn sub(self, rhs: Self) -> NtpDuration {
        #[allow(
            clippy::cast_possible_wrap,
            reason = "reading the difference as twos-complement is the intent"
        )]
        let bits = self.0.wrapping_sub(rhs.0) as i64;
        NtpDuration::from_bits(bits)
    }
}

impl Add<NtpDuration> for Timestamp {
    type Output = Self;

    /// Adds a duration, wrapping modulo the era (2^32 s).
    #[inline]
    fn add(self, rhs: NtpDuration) -> Self {
        #[allow(
            clippy::cast_sign_loss,
            reason = "twos-complement addition modulo 2^64 is the intent"
        )]
        let bits = rhs.to_bits() as u64;
        Self(self.0.wrapping_add(bits))
    }
}

impl Sub<NtpDuration> for Timestamp {
    type Output = Self;

    /// Subtracts a duration, wrapping modulo the era (2^32 s).
    #[inline]
    fn sub(self, rhs: NtpDuration) -> Self {
        #[allow(
            clippy::cast_sign_loss,
            reason = "twos-complement subtraction modulo 2^64 is the intent"
        )]
        let bits = rhs.to_bits() as u64;
        Self(self.0.wrapping_sub(bits))
    }
}

impl AddAssign<NtpDuration> for Timestamp {
    /// Adds a duration, wrapping modulo the era (2^32 s).
    #[inline]
    fn add_assign(&mut self, rhs: NtpDuration) {
        *self = *self + rhs;
    }
}

impl SubAssign<NtpDuration> for Timestamp {
    /// Subtracts a duration, wrapping modulo the era (2^32 s).
    #[inline]
    fn sub_assign(&mut self, rhs: NtpDuration) {
        *self = *self - rhs;
    }
}

impl fmt::Display for Timestamp {
    /// Seconds and fraction in hexadecimal, `eeac9dac.4545f0d4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}.{:08x}", self.seconds(), self.fraction())
    }
}

impl fmt::Debug for Timestamp {
    /// The UTC civil time in the era RFC 4330 (section 3) gives it, then the
    /// raw value: `Timestamp(2026-11-21T22:46:04.270598460Z, eeac9dac.4545f0d4)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Timestamp(")?;
        if self.is_zero() {
            f.write_str("unknown")?;
        } else {
            // RFC 4330, section 3: "If bit 0 is set, the UTC time is in the
            // range 1968-2036 [...]. If bit 0 is not set, the time is in the
            // range 2036-2104".
            let era = if self.seconds() & 0x8000_0000 != 0 {
                0
            } else {
                1
            };
            fmt::Display::fmt(&self.with_era(era).to_utc(), f)?;
        }
        write!(f, ", {self})")
    }
}

#[cfg(feature = "std")]
impl From<std::time::SystemTime> for Timestamp {
    /// The timestamp of a system time, computed as through [`Date`] (the
    /// nanoseconds are rounded up to 2^-64 s, then truncated to 2^-32 s).
    ///
    /// Unlike the conversion to [`Date`] this never fails: system times too
    /// far from 1970 for a [`Date`] still wrap into the right timestamp.
    fn from(time: std::time::SystemTime) -> Self {
        Self::from_date(Date::from_system_time_wrapping(time))
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;

    use alloc::string::ToString;

    use super::*;

    #[test]
    fn fields() {
        let t = Timestamp::new(0xeeac_9dac, 0x4545_f0d4);
        assert_eq!(t.to_bits(), 0xeeac_9dac_4545_f0d4);
        assert_eq!(t.seconds(), 0xeeac_9dac);
        assert_eq!(t.fraction(), 0x4545_f0d4);
        assert_eq!(Timestamp::from_bits(t.to_bits()), t);
        assert_eq!(t.to_string(), "eeac9dac.4545f0d4");
        assert_eq!(Timestamp::ZERO.to_string(), "00000000.00000000");
    }

    #[test]
    fn zero_means_unknown() {
        assert!(Timestamp::ZERO.is_zero());
        assert_eq!(Timestamp::ZERO.non_zero(), None);
        assert_eq!(Timestamp::default(), Timestamp::ZERO);
        let t = Timestamp::new(0, 1);
        assert!(!t.is_zero());
        assert_eq!(t.non_zero(), Some(t));
    }

    #[test]
    fn from_date_truncates_fraction_and_drops_era() {
        let date = Date::new(-3, 17, 0x1234_5678_ffff_ffff);
        assert_eq!(Timestamp::from(date), Timestamp::new(17, 0x1234_5678));
        assert_eq!(Timestamp::from(Date::ERA_1), Timestamp::ZERO);
        assert_eq!(
            Timestamp::from(Date::UNIX_EPOCH),
            Timestamp::new(2_208_988_800, 0)
        );
    }

    #[test]
    fn to_date_picks_nearest_era() {
        let pivot = Date::ERA_1;
        assert_eq!(Timestamp::new(5, 0).to_date(pivot), Date::new(1, 5, 0));
        assert_eq!(
            Timestamp::new(u32::MAX, 0).to_date(pivot),
            Date::new(0, u32::MAX, 0)
        );
        // Exactly 2^31 s after the pivot is the far edge: it maps back.
        assert_eq!(
            Timestamp::new(1 << 31, 0).to_date(pivot),
            Date::new(0, 1 << 31, 0)
        );
        assert_eq!(
            Timestamp::new((1 << 31) - 1, 0xffff_ffff).to_date(pivot),
            Date::new(1, (1 << 31) - 1, 0xffff_ffff_0000_0000)
        );
        // The pivot's low fraction bits are ignored.
        let pivot = Date::new(7, 100, 0x0000_0001_ffff_ffff);
        assert_eq!(
            Timestamp::new(100, 1).to_date(pivot),
            Date::new(7, 100, 1 << 32)
        );
        // Negative eras.
        let pivot = Date::new(-1, u32::MAX - 10, 0);
        assert_eq!(Timestamp::new(3, 0).to_date(pivot), Date::new(0, 3, 0));
        // The ends of the date range wrap instead of panicking.
        assert_eq!(
            Timestamp::new(5, 0).to_date(Date::MAX),
            Date::new(i32::MIN, 5, 0)
        );
        assert_eq!(
            Timestamp::new(u32::MAX, 0).to_date(Date::MIN),
            Date::new(i32::MAX, u32::MAX, 0)
        );
    }

    #[test]
    fn subtraction_across_era_boundary() {
        let before = Timestamp::new(u32::MAX, 0x8000_0000);
        let after = Timestamp::new(1, 0);
        assert_eq!(after - before, NtpDuration::from_bits(0x1_8000_0000));
        assert_eq!(before - after, NtpDuration::from_bits(-0x1_8000_0000));
        assert_eq!(before + (after - before), after);
        let mut t = before;
        t += NtpDuration::from_seconds(2);
        assert_eq!(t, Timestamp::new(1, 0x8000_0000));
        t -= NtpDuration::from_seconds(2);
        assert_eq!(t, before);
        assert_eq!(after - NtpDuration::from_bits(0x1_8000_0000), before);
    }

    #[test]
    fn with_era() {
        let t = Timestamp::new(42, 0x8000_0000);
        assert_eq!(t.with_era(-2), Date::new(-2, 42, 1 << 63));
    }

    #[cfg(feature = "std")]
    #[test]
    fn from_system_time() {
        use core::time::Duration;
        use std::time::SystemTime;
        assert_eq!(
            Timestamp::from(SystemTime::UNIX_EPOCH),
            Timestamp::new(2_208_988_800, 0)
        );
        let t = SystemTime::UNIX_EPOCH + Duration::new(2_085_978_496, 500_000_000);
        assert_eq!(Timestamp::from(t), Timestamp::new(0, 0x8000_0000));
        let t = SystemTime::UNIX_EPOCH - Duration::from_secs(2_208_988_801);
        assert_eq!(Timestamp::from(t), Timestamp::new(u32::MAX, 0));
    }

    #[test]
    fn debug_shows_the_date_and_the_raw_value() {
        use alloc::format;

        let t = Timestamp::new(0xeeac_9dac, 0x4545_f0d4);
        assert_eq!(
            format!("{t:?}"),
            "Timestamp(2026-11-21T22:46:04.270598460Z, eeac9dac.4545f0d4)"
        );
        assert_eq!(
            format!("{:?}", Timestamp::ZERO),
            "Timestamp(unknown, 00000000.00000000)"
        );
        // The ends of the RFC 4330 window: era 0 from 1968-01-20T03:14:08Z,
        // era 1 up to 2104-02-26T09:42:23Z.
        assert_eq!(
            format!("{:?}", Timestamp::new(0x8000_0000, 0)),
            "Timestamp(1968-01-20T03:14:08.000000000Z, 80000000.00000000)"
        );
        assert_eq!(
            format!("{:?}", Timestamp::new(0x7fff_ffff, 0xffff_ffff)),
            "Timestamp(2104-02-26T09:42:23.999999999Z, 7fffffff.ffffffff)"
        );
        // Just after the era 1 rollover.
        assert_eq!(
            format!("{:?}", Timestamp::new(0, 1)),
            "Timestamp(2036-02-07T06:28:16.000000000Z, 00000000.00000001)"
        );
        assert_eq!(
            format!("{:?}", Timestamp::new(u32::MAX, 0x8000_0000)),
            "Timestamp(2036-02-07T06:28:15.500000000Z, ffffffff.80000000)"
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let t = Timestamp::new(0xeeac_9dac, 0x4545_f0d4);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }
}

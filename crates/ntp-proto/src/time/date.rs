//! The 128-bit NTP date format (RFC 5905, section 6).

use core::fmt;
use core::time::Duration;

use super::{
    NANOS_PER_SECOND, NtpDuration, TWO_POW_64_F64, TimeError, Timestamp, div_round_i128,
    fraction64_to_nanos_round, nanos_to_fraction64_ceil, round_f64_to_i128,
};

/// Seconds from the prime epoch (1900-01-01T00:00:00Z) to the Unix epoch
/// (1970-01-01T00:00:00Z): 70 years of which 17 are leap years (RFC 5905,
/// section 6, figure 4).
pub(super) const UNIX_EPOCH_SECONDS: i64 = 2_208_988_800;

/// The Unix epoch as a 64.64 fixed-point value (see [`Date::to_fixed`]), in
/// units of 2^-64 s since the prime epoch (RFC 5905, section 6).
const UNIX_EPOCH_FIXED: i128 = (UNIX_EPOCH_SECONDS as i128) << 64;

/// A point in time in the NTP date format (RFC 5905, section 6, figure 3):
/// a signed 32-bit era number, a 32-bit era offset in seconds and a 64-bit
/// fraction of a second in units of 2^-64 s.
///
/// Era 0 starts at the prime epoch, 1900-01-01T00:00:00Z; each era is
/// 2^32 s (about 136 years) long, and negative eras lie before 1900. The
/// era and era offset together are a signed 64-bit count of seconds since
/// the prime epoch ([`Date::seconds_since_prime_epoch`]), so a date spans
/// about 292 billion years either side of 1900 at a resolution of
/// 2^-64 s (0.05 attoseconds). Every combination of the three fields is a
/// valid date.
///
/// Dates are ordered chronologically (by era, then era offset, then
/// fraction). The timescale has no leap seconds: every day is 86 400 s
/// long, as in RFC 5905.
///
/// A date displays as its ISO 8601 UTC civil time with nanoseconds, see
/// [`UtcDateTime`](crate::UtcDateTime).
///
/// ```
/// use ntp_proto::Date;
///
/// let date = Date::from_unix(2_085_978_496, 0)?;
/// assert_eq!(date, Date::ERA_1);
/// assert_eq!(date.to_string(), "2036-02-07T06:28:16.000000000Z");
/// # Ok::<(), ntp_proto::TimeError>(())
/// ```
///
/// `Debug` adds the raw fields: the era, then the era offset and the
/// fraction in hexadecimal, as for [`Timestamp`] but with all 64 bits of
/// the fraction:
///
/// ```
/// use ntp_proto::Date;
///
/// assert_eq!(
///     format!("{:?}", Date::new(1, 1, 1 << 63)),
///     "Date(2036-02-07T06:28:17.500000000Z, era 1, 00000001.8000000000000000)"
/// );
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Date {
    // The field order makes the derived `Ord` chronological.
    era: i32,
    era_offset: u32,
    fraction: u64,
}

impl Date {
    /// The prime epoch, 1900-01-01T00:00:00Z: era 0, offset 0 (RFC 5905,
    /// section 6).
    pub const PRIME_EPOCH: Self = Self::new(0, 0, 0);

    /// The Unix epoch, 1970-01-01T00:00:00Z: era 0, offset 2 208 988 800 s
    /// (RFC 5905, section 6, figure 4).
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the constant fits a u32"
    )]
    pub const UNIX_EPOCH: Self = Self::new(0, UNIX_EPOCH_SECONDS as u32, 0);

    /// The start of era 1, 2036-02-07T06:28:16Z, when the 64-bit timestamp
    /// format first wraps around (RFC 5905, section 6).
    pub const ERA_1: Self = Self::new(1, 0, 0);

    /// The earliest date: era [`i32::MIN`], about 292 billion years before
    /// 1900.
    pub const MIN: Self = Self::new(i32::MIN, 0, 0);

    /// The latest date: the last 2^-64 s of era [`i32::MAX`], about 292
    /// billion years after 1900.
    pub const MAX: Self = Self::new(i32::MAX, u32::MAX, u64::MAX);

    /// Builds a date from its era number, era offset in seconds and fraction
    /// of a second in units of 2^-64 s.
    #[inline]
    #[must_use]
    pub const fn new(era: i32, era_offset: u32, fraction: u64) -> Self {
        Self {
            era,
            era_offset,
            fraction,
        }
    }

    /// The era number: 0 from 1900 to 2036, 1 from 2036 to 2172, negative
    /// before 1900.
    #[inline]
    #[must_use]
    pub const fn era(self) -> i32 {
        self.era
    }

    /// Whole seconds since the start of the era; the same as the seconds of
    /// the 64-bit timestamp format (RFC 5905, section 6).
    #[inline]
    #[must_use]
    pub const fn era_offset(self) -> u32 {
        self.era_offset
    }

    /// The fraction of a second, in units of 2^-64 s.
    #[inline]
    #[must_use]
    pub const fn fraction(self) -> u64 {
        self.fraction
    }

    /// Builds a date from whole seconds since the prime epoch (negative
    /// before 1900) and a fraction of a second in units of 2^-64 s. Every
    /// `i64` is a valid count of seconds.
    #[inline]
    #[must_use]
    pub const fn from_seconds_since_prime_epoch(seconds: i64, fraction: u64) -> Self {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the upper 32 bits of an i64 fit an i32"
        )]
        let era = (seconds >> 32) as i32;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "keeping the lower 32 bits is the intent"
        )]
        let era_offset = seconds as u32;
        Self::new(era, era_offset, fraction)
    }

    /// Whole seconds since the prime epoch, negative before 1900; `era *
    /// 2^32 + era_offset`, which covers exactly the `i64` range.
    #[inline]
    #[must_use]
    pub const fn seconds_since_prime_epoch(self) -> i64 {
        ((self.era as i64) << 32) | self.era_offset as i64
    }

    /// The date as a signed 64.64 fixed-point number of seconds since the
    /// prime epoch, in units of 2^-64 s. Every `i128` is a date and every
    /// date is an `i128`, which makes date arithmetic exact.
    #[inline]
    pub(crate) const fn to_fixed(self) -> i128 {
        ((self.seconds_since_prime_epoch() as i128) << 64) | self.fraction as i128
    }

    /// The inverse of [`Date::to_fixed`].
    #[inline]
    pub(crate) const fn from_fixed(fixed: i128) -> Self {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the upper 64 bits of an i128 fit an i64"
        )]
        let seconds = (fixed >> 64) as i64;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "keeping the lower 64 bits is the intent"
        )]
        let fraction = fixed as u64;
        Self::from_seconds_since_prime_epoch(seconds, fraction)
    }

    /// The date of a Unix time: `seconds` since 1970-01-01T00:00:00Z
    /// (negative before) plus `nanos` nanoseconds.
    ///
    /// The nanoseconds are rounded up to the next 2^-64 s, so that
    /// [`Date::to_unix`] gives the same values back.
    ///
    /// # Errors
    ///
    /// [`TimeError::InvalidNanoseconds`] if `nanos` is 10^9 or more,
    /// [`TimeError::OutOfRange`] if the time is outside the date range
    /// (only within 70 years of [`i64::MAX`] seconds).
    #[inline]
    pub const fn from_unix(seconds: i64, nanos: u32) -> Result<Self, TimeError> {
        if nanos >= NANOS_PER_SECOND {
            return Err(TimeError::InvalidNanoseconds(nanos));
        }
        match seconds.checked_add(UNIX_EPOCH_SECONDS) {
            Some(seconds) => Ok(Self::from_seconds_since_prime_epoch(
                seconds,
                nanos_to_fraction64_ceil(nanos),
            )),
            None => Err(TimeError::OutOfRange),
        }
    }

    /// The Unix time of this date: seconds since 1970-01-01T00:00:00Z
    /// (negative before) and nanoseconds (below 10^9), rounded to the
    /// nearest nanosecond (ties toward the future) with the carry into the
    /// seconds.
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the seconds do not fit an `i64` (only
    /// within 70 years of the start of the date range, or on a carry at its
    /// very end).
    #[inline]
    pub const fn to_unix(self) -> Result<(i64, u32), TimeError> {
        let Some(seconds) = self
            .seconds_since_prime_epoch()
            .checked_sub(UNIX_EPOCH_SECONDS)
        else {
            return Err(TimeError::OutOfRange);
        };
        let nanos = fraction64_to_nanos_round(self.fraction);
        if nanos < NANOS_PER_SECOND {
            Ok((seconds, nanos))
        } else {
            match seconds.checked_add(1) {
                Some(seconds) => Ok((seconds, 0)),
                None => Err(TimeError::OutOfRange),
            }
        }
    }

    /// The date a duration after the Unix epoch, as for [`Date::from_unix`].
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the seconds do not fit an `i64` or the
    /// result is outside the date range.
    #[inline]
    pub fn from_unix_duration(duration: Duration) -> Result<Self, TimeError> {
        let seconds = i64::try_from(duration.as_secs()).map_err(|_| TimeError::OutOfRange)?;
        Self::from_unix(seconds, duration.subsec_nanos())
    }

    /// The time since the Unix epoch, rounded as in [`Date::to_unix`].
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] for dates before 1970-01-01T00:00:00Z (or
    /// before the rounded nanosecond reaches it).
    #[inline]
    pub fn to_unix_duration(self) -> Result<Duration, TimeError> {
        let (seconds, nanos) = self.to_unix()?;
        let seconds = u64::try_from(seconds).map_err(|_| TimeError::OutOfRange)?;
        // `nanos` is below 10^9, so this cannot carry or panic.
        Ok(Duration::new(seconds, nanos))
    }

    /// The date of a Unix time given as float seconds, rounded to the
    /// nearest 2^-64 s (ties away from zero).
    ///
    /// # Errors
    ///
    /// [`TimeError::NotFinite`] for NaN and infinities,
    /// [`TimeError::OutOfRange`] if the result is outside the date range.
    #[inline]
    pub fn from_unix_seconds_f64(seconds: f64) -> Result<Self, TimeError> {
        if !seconds.is_finite() {
            return Err(TimeError::NotFinite);
        }
        round_f64_to_i128(seconds * TWO_POW_64_F64)
            .and_then(|fixed| fixed.checked_add(UNIX_EPOCH_FIXED))
            .map(Self::from_fixed)
            .ok_or(TimeError::OutOfRange)
    }

    /// The Unix time in float seconds, rounded to the nearest `f64`.
    #[inline]
    #[must_use]
    pub fn to_unix_seconds_f64(self) -> f64 {
        let fixed = self.to_fixed();
        match fixed.checked_sub(UNIX_EPOCH_FIXED) {
            Some(since_unix) => since_unix as f64 / TWO_POW_64_F64,
            // Only in the first 70 years of the date range, where the lowest
            // bit is far below the f64 resolution.
            None => ((fixed >> 1) - (UNIX_EPOCH_FIXED >> 1)) as f64 * 2.0 / TWO_POW_64_F64,
        }
    }

    /// `self + duration`, or `None` outside the date range.
    #[inline]
    #[must_use]
    pub const fn checked_add(self, duration: NtpDuration) -> Option<Self> {
        match self
            .to_fixed()
            .checked_add((duration.to_bits() as i128) << 32)
        {
            Some(fixed) => Some(Self::from_fixed(fixed)),
            None => None,
        }
    }

    /// `self - duration`, or `None` outside the date range.
    #[inline]
    #[must_use]
    pub const fn checked_sub(self, duration: NtpDuration) -> Option<Self> {
        match self
            .to_fixed()
            .checked_sub((duration.to_bits() as i128) << 32)
        {
            Some(fixed) => Some(Self::from_fixed(fixed)),
            None => None,
        }
    }

    /// `self - earlier`, rounded to the nearest 2^-32 s (ties away from
    /// zero), or `None` if that is outside the [`NtpDuration`] range of
    /// ±2^31 s. Negative if `earlier` is in fact later.
    #[inline]
    #[must_use]
    pub const fn checked_duration_since(self, earlier: Self) -> Option<NtpDuration> {
        let Some(difference) = self.to_fixed().checked_sub(earlier.to_fixed()) else {
            return None;
        };
        let bits = div_round_i128(difference, 1 << 32);
        if bits > i64::MAX as i128 || bits < i64::MIN as i128 {
            None
        } else {
            #[allow(clippy::cast_possible_truncation, reason = "checked just above to fit")]
            let bits = bits as i64;
            Some(NtpDuration::from_bits(bits))
        }
    }

    /// The 64-bit timestamp of this date: the era is dropped and the
    /// fraction truncated to its upper 32 bits, which rounds toward the past
    /// (RFC 5905, section 6). The same as `Timestamp::from(self)`.
    #[inline]
    #[must_use]
    pub const fn to_timestamp(self) -> Timestamp {
        Timestamp::from_date(self)
    }

    /// The date of a Unix time whose seconds are known to lie well inside
    /// the date range (as those of `chrono` and `time` do) and whose
    /// nanoseconds are below 10^9; rounds as [`Date::from_unix`].
    #[cfg(any(feature = "chrono", feature = "time"))]
    pub(super) const fn from_unix_in_range(seconds: i64, nanos: u32) -> Self {
        // Saturation is never reached for such seconds; it only keeps this
        // free of a panic path.
        Self::from_seconds_since_prime_epoch(
            seconds.saturating_add(UNIX_EPOCH_SECONDS),
            nanos_to_fraction64_ceil(nanos),
        )
    }

    /// The date of a system time, modulo the date range: always correct in
    /// its lower 96 bits, hence in its [`Timestamp`].
    #[cfg(feature = "std")]
    pub(crate) fn from_system_time_wrapping(time: std::time::SystemTime) -> Self {
        let (seconds, nanos) = system_time_to_unix(time);
        let seconds = seconds.wrapping_add(i128::from(UNIX_EPOCH_SECONDS));
        Self::from_fixed((seconds << 64) | i128::from(nanos_to_fraction64_ceil(nanos)))
    }
}

impl fmt::Debug for Date {
    /// The UTC civil time, then the era, era offset and fraction:
    /// `Date(2036-02-07T06:28:17.500000000Z, era 1, 00000001.8000000000000000)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Date({}, era {}, {:08x}.{:016x})",
            self.to_utc(),
            self.era,
            self.era_offset,
            self.fraction
        )
    }
}

/// A system time as Unix seconds (negative before 1970) and nanoseconds
/// (below 10^9). The seconds lie within ±2^64.
#[cfg(feature = "std")]
fn system_time_to_unix(time: std::time::SystemTime) -> (i128, u32) {
    match time.duration_since(std::time::SystemTime::UNIX_EPOCH) {
        Ok(after) => (i128::from(after.as_secs()), after.subsec_nanos()),
        Err(error) => {
            let before = error.duration();
            let seconds = -i128::from(before.as_secs());
            match before.subsec_nanos() {
                0 => (seconds, 0),
                nanos => (seconds - 1, NANOS_PER_SECOND - nanos),
            }
        }
    }
}

#[cfg(feature = "std")]
impl TryFrom<std::time::SystemTime> for Date {
    type Error = TimeError;

    /// The date of a system time; the nanoseconds are rounded up to the next
    /// 2^-64 s, as in [`Date::from_unix`].
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the system time is outside the date
    /// range (about ±292 billion years).
    fn try_from(time: std::time::SystemTime) -> Result<Self, TimeError> {
        let (seconds, nanos) = system_time_to_unix(time);
        let seconds = i64::try_from(seconds).map_err(|_| TimeError::OutOfRange)?;
        Self::from_unix(seconds, nanos)
    }
}

#[cfg(feature = "std")]
impl TryFrom<Date> for std::time::SystemTime {
    type Error = TimeError;

    /// The system time of a date, rounded to the nearest nanosecond as in
    /// [`Date::to_unix`].
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the date is outside the range of the
    /// platform's `SystemTime`.
    fn try_from(date: Date) -> Result<Self, TimeError> {
        let (seconds, nanos) = date.to_unix()?;
        let epoch = Self::UNIX_EPOCH;
        let whole = Duration::from_secs(seconds.unsigned_abs());
        let whole = if seconds < 0 {
            epoch.checked_sub(whole)
        } else {
            epoch.checked_add(whole)
        };
        whole
            .and_then(|time| time.checked_add(Duration::from_nanos(u64::from(nanos))))
            .ok_or(TimeError::OutOfRange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants() {
        assert_eq!(Date::PRIME_EPOCH.seconds_since_prime_epoch(), 0);
        assert_eq!(Date::UNIX_EPOCH.era(), 0);
        assert_eq!(Date::UNIX_EPOCH.era_offset(), 2_208_988_800);
        assert_eq!(Date::UNIX_EPOCH.to_unix(), Ok((0, 0)));
        assert_eq!(Date::ERA_1.seconds_since_prime_epoch(), 1 << 32);
        assert_eq!(Date::ERA_1.to_unix(), Ok((2_085_978_496, 0)));
        assert_eq!(Date::MIN.seconds_since_prime_epoch(), i64::MIN);
        assert_eq!(Date::MAX.seconds_since_prime_epoch(), i64::MAX);
        assert_eq!(Date::default(), Date::PRIME_EPOCH);
        assert!(Date::MIN < Date::PRIME_EPOCH && Date::PRIME_EPOCH < Date::MAX);
    }

    #[test]
    fn seconds_since_prime_epoch() {
        let before = Date::from_seconds_since_prime_epoch(-1, 7);
        assert_eq!(before, Date::new(-1, u32::MAX, 7));
        assert_eq!(before.seconds_since_prime_epoch(), -1);
        for seconds in [i64::MIN, -(1 << 32), -1, 0, 1, 1 << 32, i64::MAX] {
            let date = Date::from_seconds_since_prime_epoch(seconds, 0);
            assert_eq!(date.seconds_since_prime_epoch(), seconds);
        }
        assert!(Date::new(-1, u32::MAX, u64::MAX) < Date::PRIME_EPOCH);
        assert!(Date::new(-1, 5, 0) < Date::new(-1, 6, 0));
    }

    #[test]
    fn fixed_point() {
        for date in [
            Date::MIN,
            Date::MAX,
            Date::new(-1, u32::MAX, u64::MAX),
            Date::new(5, 6, 7),
        ] {
            assert_eq!(Date::from_fixed(date.to_fixed()), date);
        }
        assert_eq!(Date::new(-1, u32::MAX, u64::MAX).to_fixed(), -1);
        assert_eq!(Date::MIN.to_fixed(), i128::MIN);
        assert_eq!(Date::MAX.to_fixed(), i128::MAX);
    }

    #[test]
    fn unix() {
        assert_eq!(Date::from_unix(0, 0), Ok(Date::UNIX_EPOCH));
        assert_eq!(Date::from_unix(-2_208_988_800, 0), Ok(Date::PRIME_EPOCH));
        assert_eq!(
            Date::from_unix(-2_208_988_801, 0),
            Ok(Date::new(-1, u32::MAX, 0))
        );
        assert_eq!(
            Date::from_unix(0, 1_000_000_000),
            Err(TimeError::InvalidNanoseconds(1_000_000_000))
        );
        assert_eq!(Date::from_unix(i64::MAX, 0), Err(TimeError::OutOfRange));
        assert_eq!(Date::MIN.to_unix(), Err(TimeError::OutOfRange));
        assert_eq!(Date::MAX.to_unix(), Ok((i64::MAX - 2_208_988_799, 0)));
        assert_eq!(
            Date::from_unix(i64::MAX - 2_208_988_800, 999_999_999)
                .unwrap()
                .to_unix(),
            Ok((i64::MAX - 2_208_988_800, 999_999_999))
        );
        // A fraction of all ones rounds up into the next second.
        let date = Date::new(0, 2_208_988_800, u64::MAX);
        assert_eq!(date.to_unix(), Ok((1, 0)));
        let date = Date::new(0, 2_208_988_800, u32::MAX.into());
        assert_eq!(date.to_unix(), Ok((0, 0)));
        // One nanosecond round trips, before and after 1970.
        let date = Date::from_unix(0, 1).unwrap();
        assert_eq!(date.fraction(), 18_446_744_074);
        assert_eq!(date.to_unix(), Ok((0, 1)));
        let date = Date::from_unix(-1, 999_999_999).unwrap();
        assert_eq!(date.to_unix(), Ok((-1, 999_999_999)));
    }

    #[test]
    fn unix_duration() {
        let d = Duration::new(2_085_978_496, 250_000_000);
        let date = Date::from_unix_duration(d).unwrap();
        assert_eq!(date, Date::new(1, 0, 1 << 62));
        assert_eq!(date.to_unix_duration(), Ok(d));
        assert_eq!(
            Date::from_unix_duration(Duration::MAX),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            Date::PRIME_EPOCH.to_unix_duration(),
            Err(TimeError::OutOfRange)
        );
    }

    #[test]
    fn unix_float() {
        assert_eq!(Date::from_unix_seconds_f64(0.0), Ok(Date::UNIX_EPOCH));
        assert_eq!(
            Date::from_unix_seconds_f64(-0.5),
            Ok(Date::new(0, 2_208_988_799, 1 << 63))
        );
        assert_eq!(
            Date::from_unix_seconds_f64(2_085_978_496.75),
            Ok(Date::new(1, 0, 3 << 62))
        );
        assert_eq!(
            Date::from_unix_seconds_f64(f64::NAN),
            Err(TimeError::NotFinite)
        );
        assert_eq!(
            Date::from_unix_seconds_f64(f64::INFINITY),
            Err(TimeError::NotFinite)
        );
        assert_eq!(
            Date::from_unix_seconds_f64(1e19),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            Date::from_unix_seconds_f64(-1e19),
            Err(TimeError::OutOfRange)
        );
        assert!((Date::new(1, 0, 3 << 62).to_unix_seconds_f64() - 2_085_978_496.75).abs() < 1e-6);
        assert!((Date::UNIX_EPOCH.to_unix_seconds_f64()).abs() < f64::EPSILON);
        assert!((Date::MIN.to_unix_seconds_f64() + 9.223_372_039e18).abs() < 1e9);
        assert!((Date::MAX.to_unix_seconds_f64() - 9.223_372_034e18).abs() < 1e9);
    }

    #[test]
    fn arithmetic() {
        let one = NtpDuration::ONE_SECOND;
        let date = Date::new(0, u32::MAX, 1 << 63);
        assert_eq!(date.checked_add(one), Some(Date::new(1, 0, 1 << 63)));
        assert_eq!(Date::new(1, 0, 1 << 63).checked_sub(one), Some(date));
        assert_eq!(Date::MAX.checked_add(NtpDuration::from_bits(1)), None);
        assert_eq!(Date::MIN.checked_sub(NtpDuration::from_bits(1)), None);
        assert_eq!(
            Date::MIN.checked_add(NtpDuration::MIN.abs()),
            Some(Date::new(i32::MIN, (1 << 31) - 1, 0xffff_ffff_0000_0000))
        );
        assert_eq!(
            Date::ERA_1.checked_duration_since(date),
            Some(NtpDuration::from_bits(1 << 31))
        );
        assert_eq!(
            date.checked_duration_since(Date::ERA_1),
            Some(NtpDuration::from_bits(-(1 << 31)))
        );
        // Rounded to the nearest 2^-32 s, ties away from zero.
        let tiny = Date::new(0, 0, 1 << 31);
        assert_eq!(
            tiny.checked_duration_since(Date::PRIME_EPOCH),
            Some(NtpDuration::from_bits(1))
        );
        assert_eq!(
            Date::PRIME_EPOCH.checked_duration_since(tiny),
            Some(NtpDuration::from_bits(-1))
        );
        assert_eq!(
            Date::new(0, 0, (1 << 31) - 1).checked_duration_since(Date::PRIME_EPOCH),
            Some(NtpDuration::ZERO)
        );
        assert_eq!(
            Date::new(0, 1 << 31, 0).checked_duration_since(Date::PRIME_EPOCH),
            None
        );
        assert_eq!(
            Date::PRIME_EPOCH.checked_duration_since(Date::new(0, 1 << 31, 0)),
            Some(NtpDuration::MIN)
        );
        assert_eq!(Date::MAX.checked_duration_since(Date::MIN), None);
        assert_eq!(Date::ERA_1.to_timestamp(), Timestamp::ZERO);
    }

    #[cfg(feature = "std")]
    #[test]
    fn system_time() {
        use std::time::SystemTime;

        assert_eq!(Date::try_from(SystemTime::UNIX_EPOCH), Ok(Date::UNIX_EPOCH));
        let before = SystemTime::UNIX_EPOCH - Duration::new(1, 1);
        let date = Date::try_from(before).unwrap();
        assert_eq!(date.to_unix(), Ok((-2, 999_999_999)));
        assert_eq!(SystemTime::try_from(date), Ok(before));
        let after = SystemTime::UNIX_EPOCH + Duration::new(4_000_000_000, 123_456_789);
        let date = Date::try_from(after).unwrap();
        assert_eq!(date.to_unix(), Ok((4_000_000_000, 123_456_789)));
        assert_eq!(SystemTime::try_from(date), Ok(after));
        assert_eq!(Date::from_system_time_wrapping(after), date);
        assert_eq!(SystemTime::try_from(Date::MIN), Err(TimeError::OutOfRange));
        let now = SystemTime::now();
        assert_eq!(SystemTime::try_from(Date::try_from(now).unwrap()), Ok(now));
    }

    #[test]
    fn debug_shows_the_date_and_the_raw_fields() {
        extern crate alloc;
        use alloc::format;

        assert_eq!(
            format!("{:?}", Date::ERA_1),
            "Date(2036-02-07T06:28:16.000000000Z, era 1, 00000000.0000000000000000)"
        );
        assert_eq!(
            format!("{:?}", Date::new(-1, u32::MAX, u64::MAX)),
            "Date(1899-12-31T23:59:59.999999999Z, era -1, ffffffff.ffffffffffffffff)"
        );
        assert_eq!(
            format!("{:?}", Date::from_unix(1_735_689_600, 123_456_789).unwrap()),
            "Date(2025-01-01T00:00:00.123456789Z, era 0, eb1f0400.1f9add3739635f32)"
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let date = Date::new(-3, 123, 456);
        let json = serde_json::to_string(&date).unwrap();
        assert_eq!(json, r#"{"era":-3,"era_offset":123,"fraction":456}"#);
        assert_eq!(serde_json::from_str::<Date>(&json).unwrap(), date);
    }
}

//! Conversions to and from the `time` crate's date and time types (feature
//! `time`).
//!
//! Both sides count time without leap seconds, as NTP does (RFC 5905,
//! section 6), so the conversions go through Unix seconds and nanoseconds
//! and follow the rounding rules of [`Date::from_unix`] and
//! [`Date::to_unix`]: `time` → [`Date`] → `time` is exact.

use ::time::{OffsetDateTime, UtcDateTime};

use super::{Date, TimeError, Timestamp};

/// Nanoseconds per second, as an `i128` for `time`'s nanosecond counts.
const NANOS_PER_SECOND_I128: i128 = 1_000_000_000;

/// The Unix time in nanoseconds of a date, rounded as in [`Date::to_unix`].
fn unix_nanos(date: Date) -> Result<i128, TimeError> {
    let (seconds, nanos) = date.to_unix()?;
    Ok(i128::from(seconds) * NANOS_PER_SECOND_I128 + i128::from(nanos))
}

impl From<OffsetDateTime> for Date {
    /// The date of a `time` date and time at any UTC offset. The
    /// nanoseconds are rounded up to the next 2^-64 s as in
    /// [`Date::from_unix`], so the conversion back gives the same time.
    /// Every `OffsetDateTime` (years ±9999, or ±999 999 with `time`'s
    /// `large-dates` feature) is within the [`Date`] range.
    fn from(time: OffsetDateTime) -> Self {
        Self::from_unix_in_range(time.unix_timestamp(), time.nanosecond())
    }
}

impl From<UtcDateTime> for Date {
    /// The date of a `time` UTC date and time, as for `OffsetDateTime`.
    fn from(time: UtcDateTime) -> Self {
        Self::from_unix_in_range(time.unix_timestamp(), time.nanosecond())
    }
}

impl From<OffsetDateTime> for Timestamp {
    /// The timestamp of a `time` date and time: as through [`Date`], then
    /// the era dropped and the fraction truncated to 2^-32 s (RFC 5905,
    /// section 6).
    fn from(time: OffsetDateTime) -> Self {
        Date::from(time).to_timestamp()
    }
}

impl From<UtcDateTime> for Timestamp {
    /// The timestamp of a `time` UTC date and time, as for
    /// `OffsetDateTime`.
    fn from(time: UtcDateTime) -> Self {
        Date::from(time).to_timestamp()
    }
}

impl TryFrom<Date> for OffsetDateTime {
    type Error = TimeError;

    /// The `time` date and time of a date at UTC offset zero, rounded to
    /// the nearest nanosecond (ties toward the future) as in
    /// [`Date::to_unix`].
    ///
    /// A [`Timestamp`] has no era: place it with [`Timestamp::to_date`]
    /// first.
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the date is outside the range of
    /// `time` (years ±9999, or ±999 999 with its `large-dates` feature).
    fn try_from(date: Date) -> Result<Self, TimeError> {
        Self::from_unix_timestamp_nanos(unix_nanos(date)?).map_err(|_| TimeError::OutOfRange)
    }
}

impl TryFrom<Date> for UtcDateTime {
    type Error = TimeError;

    /// The `time` UTC date and time of a date, rounded as for
    /// `OffsetDateTime`.
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the date is outside the range of
    /// `time` (years ±9999, or ±999 999 with its `large-dates` feature).
    fn try_from(date: Date) -> Result<Self, TimeError> {
        Self::from_unix_timestamp_nanos(unix_nanos(date)?).map_err(|_| TimeError::OutOfRange)
    }
}

#[cfg(test)]
mod tests {
    use ::time::{Month, PrimitiveDateTime, UtcOffset};
    use proptest::prelude::*;

    use super::*;
    use crate::time::NANOS_PER_SECOND;

    fn utc(
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        nano: u32,
    ) -> UtcDateTime {
        let month = Month::try_from(month).unwrap();
        let date = ::time::Date::from_calendar_date(year, month, day).unwrap();
        let time = ::time::Time::from_hms_nano(hour, minute, second, nano).unwrap();
        UtcDateTime::new(date, time)
    }

    #[test]
    fn era_1_edge() {
        let rollover = utc(2036, 2, 7, 6, 28, 16, 0);
        assert_eq!(Date::from(rollover), Date::ERA_1);
        assert_eq!(UtcDateTime::try_from(Date::ERA_1), Ok(rollover));
        assert_eq!(
            OffsetDateTime::try_from(Date::ERA_1),
            Ok(rollover.to_offset(UtcOffset::UTC))
        );
        assert_eq!(Timestamp::from(rollover), Timestamp::ZERO);

        let before = utc(2036, 2, 7, 6, 28, 15, 999_999_999);
        let date = Date::from(before);
        assert_eq!((date.era(), date.era_offset()), (0, u32::MAX));
        assert_eq!(UtcDateTime::try_from(date), Ok(before));

        let after = utc(2036, 2, 7, 6, 28, 16, 1);
        let date = Date::from(after);
        assert_eq!((date.era(), date.era_offset()), (1, 0));
        assert_eq!(UtcDateTime::try_from(date), Ok(after));
        let timestamp = Timestamp::from(after.to_offset(UtcOffset::UTC));
        assert_eq!(
            UtcDateTime::try_from(timestamp.to_date(Date::ERA_1)),
            Ok(after)
        );
    }

    #[test]
    fn before_1970_and_1900() {
        let prime = utc(1900, 1, 1, 0, 0, 0, 0);
        assert_eq!(Date::from(prime), Date::PRIME_EPOCH);
        assert_eq!(UtcDateTime::try_from(Date::PRIME_EPOCH), Ok(prime));

        let last_of_era_minus_1 = utc(1899, 12, 31, 23, 59, 59, 999_999_999);
        let date = Date::from(last_of_era_minus_1);
        assert_eq!((date.era(), date.era_offset()), (-1, u32::MAX));
        assert_eq!(UtcDateTime::try_from(date), Ok(last_of_era_minus_1));

        let time = utc(1969, 12, 31, 23, 59, 59, 500_000_000);
        assert_eq!(Date::from(time), Date::from_unix(-1, 500_000_000).unwrap());

        let gregorian = utc(1582, 10, 15, 0, 0, 0, 0);
        assert_eq!(Date::from(gregorian), Date::new(-3, 2_874_597_888, 0));
        let year_one = utc(1, 1, 1, 0, 0, 0, 0);
        assert_eq!(Date::from(year_one), Date::new(-14, 202_934_144, 0));
    }

    #[test]
    fn offsets() {
        let east = UtcOffset::from_hms(2, 0, 0).unwrap();
        let local = PrimitiveDateTime::new(
            ::time::Date::from_calendar_date(2036, Month::February, 7).unwrap(),
            ::time::Time::from_hms(8, 28, 16).unwrap(),
        )
        .assume_offset(east);
        assert_eq!(Date::from(local), Date::ERA_1);
        // The conversion back is at offset zero, the same instant.
        let back = OffsetDateTime::try_from(Date::from(local)).unwrap();
        assert_eq!(back, local);
        assert_eq!(back.offset(), UtcOffset::UTC);
    }

    #[test]
    fn out_of_range() {
        for date in [Date::MIN, Date::MAX] {
            assert_eq!(UtcDateTime::try_from(date), Err(TimeError::OutOfRange));
            assert_eq!(OffsetDateTime::try_from(date), Err(TimeError::OutOfRange));
        }
        let max = UtcDateTime::MAX;
        assert_eq!(UtcDateTime::try_from(Date::from(max)), Ok(max));
        let min = UtcDateTime::MIN;
        assert_eq!(UtcDateTime::try_from(Date::from(min)), Ok(min));
        let past_max = Date::from(max)
            .checked_add(crate::NtpDuration::ONE_SECOND)
            .unwrap();
        assert_eq!(UtcDateTime::try_from(past_max), Err(TimeError::OutOfRange));
    }

    proptest! {
        #[test]
        fn time_to_date_and_back_is_exact(
            seconds in UtcDateTime::MIN.unix_timestamp()..=UtcDateTime::MAX.unix_timestamp(),
            nanos in 0..NANOS_PER_SECOND,
        ) {
            let nanos_since = i128::from(seconds) * NANOS_PER_SECOND_I128 + i128::from(nanos);
            let Ok(time) = UtcDateTime::from_unix_timestamp_nanos(nanos_since) else {
                return Ok(());
            };
            let date = Date::from(time);
            prop_assert_eq!(date.to_unix(), Ok((seconds, nanos)));
            prop_assert_eq!(UtcDateTime::try_from(date), Ok(time));
            prop_assert_eq!(OffsetDateTime::try_from(date), Ok(time.to_offset(UtcOffset::UTC)));
            prop_assert_eq!(date.to_utc().year, i64::from(time.year()));
        }

        #[test]
        fn date_to_time_rounds_to_the_nearest_nanosecond(
            seconds in -20_000_000_000_i64..20_000_000_000,
            fraction in any::<u64>(),
        ) {
            let date = Date::from_seconds_since_prime_epoch(seconds, fraction);
            let time = UtcDateTime::try_from(date).unwrap();
            prop_assert_eq!((time.unix_timestamp(), time.nanosecond()), date.to_unix().unwrap());
            let back = Date::from(time);
            let error = back.checked_duration_since(date).unwrap();
            prop_assert!(error.to_bits().unsigned_abs() <= 3, "{:?}", error);
        }
    }
}

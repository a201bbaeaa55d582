//! Conversions to and from `chrono`'s date and time types (feature
//! `chrono`).
//!
//! Both sides count time without leap seconds, as NTP does (RFC 5905,
//! section 6), so the conversions go through Unix seconds and nanoseconds
//! and follow the rounding rules of [`Date::from_unix`] and
//! [`Date::to_unix`]: `chrono` → [`Date`] → `chrono` is exact.

use chrono::{DateTime, TimeZone, Utc};

use super::{Date, NANOS_PER_SECOND, TimeError, Timestamp};

/// The Unix seconds and nanoseconds of a `chrono` time, a leap second
/// (which `chrono` shows as a nanosecond of 10^9 or more) held at the last
/// nanosecond of the second before it.
fn unix_of<Tz: TimeZone>(time: &DateTime<Tz>) -> (i64, u32) {
    let nanos = time.timestamp_subsec_nanos().min(NANOS_PER_SECOND - 1);
    (time.timestamp(), nanos)
}

impl<Tz: TimeZone> From<DateTime<Tz>> for Date {
    /// The date of a `chrono` time in any time zone. The nanoseconds are
    /// rounded up to the next 2^-64 s as in [`Date::from_unix`], so the
    /// conversion back gives the same time.
    ///
    /// NTP's timescale has no leap seconds: `chrono`'s representation of
    /// one (second 60, a nanosecond field of 10^9 or more) becomes the last
    /// nanosecond before it, 23:59:59.999999999, so the order of times is
    /// kept. Every `chrono` time (a few hundred thousand years either side
    /// of 1970) is within the [`Date`] range.
    fn from(time: DateTime<Tz>) -> Self {
        let (seconds, nanos) = unix_of(&time);
        // `chrono`'s years stay within ±2^18, far inside the date range.
        Self::from_unix_in_range(seconds, nanos)
    }
}

impl<Tz: TimeZone> From<DateTime<Tz>> for Timestamp {
    /// The timestamp of a `chrono` time: as through [`Date`], then the era
    /// dropped and the fraction truncated to 2^-32 s (RFC 5905, section 6).
    fn from(time: DateTime<Tz>) -> Self {
        Date::from(time).to_timestamp()
    }
}

impl TryFrom<Date> for DateTime<Utc> {
    type Error = TimeError;

    /// The `chrono` UTC time of a date, rounded to the nearest nanosecond
    /// (ties toward the future) as in [`Date::to_unix`].
    ///
    /// A [`Timestamp`] has no era: place it with [`Timestamp::to_date`]
    /// first.
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the date is outside `chrono`'s range
    /// ([`DateTime::<Utc>::MIN_UTC`] to [`DateTime::<Utc>::MAX_UTC`]).
    fn try_from(date: Date) -> Result<Self, TimeError> {
        let (seconds, nanos) = date.to_unix()?;
        Self::from_timestamp(seconds, nanos).ok_or(TimeError::OutOfRange)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{FixedOffset, NaiveDate};
    use proptest::prelude::*;

    use super::*;

    fn utc(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nano: u32,
    ) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|day| day.and_hms_nano_opt(hour, minute, second, nano))
            .map(|naive| naive.and_utc())
            .unwrap()
    }

    #[test]
    fn era_1_edge() {
        let rollover = utc(2036, 2, 7, 6, 28, 16, 0);
        assert_eq!(Date::from(rollover), Date::ERA_1);
        assert_eq!(DateTime::<Utc>::try_from(Date::ERA_1), Ok(rollover));
        assert_eq!(Timestamp::from(rollover), Timestamp::ZERO);

        let before = utc(2036, 2, 7, 6, 28, 15, 999_999_999);
        let date = Date::from(before);
        assert_eq!(date.era(), 0);
        assert_eq!(date.era_offset(), u32::MAX);
        assert_eq!(DateTime::<Utc>::try_from(date), Ok(before));
        assert_eq!(Timestamp::from(before).seconds(), u32::MAX);

        let after = utc(2036, 2, 7, 6, 28, 16, 1);
        let date = Date::from(after);
        assert_eq!((date.era(), date.era_offset()), (1, 0));
        assert_eq!(DateTime::<Utc>::try_from(date), Ok(after));
        // The timestamp of era 1 comes back with a pivot near it.
        let timestamp = Timestamp::from(after);
        assert_eq!(
            DateTime::<Utc>::try_from(timestamp.to_date(Date::ERA_1)),
            Ok(after)
        );
    }

    #[test]
    fn before_1970_and_1900() {
        let prime = utc(1900, 1, 1, 0, 0, 0, 0);
        assert_eq!(Date::from(prime), Date::PRIME_EPOCH);
        assert_eq!(DateTime::<Utc>::try_from(Date::PRIME_EPOCH), Ok(prime));

        let last_of_era_minus_1 = utc(1899, 12, 31, 23, 59, 59, 999_999_999);
        let date = Date::from(last_of_era_minus_1);
        assert_eq!((date.era(), date.era_offset()), (-1, u32::MAX));
        assert_eq!(DateTime::<Utc>::try_from(date), Ok(last_of_era_minus_1));

        // Half a second before the Unix epoch.
        let time = utc(1969, 12, 31, 23, 59, 59, 500_000_000);
        assert_eq!(Date::from(time).to_unix(), Ok((-1, 500_000_000)));
        assert_eq!(Date::from(time), Date::from_unix(-1, 500_000_000).unwrap());

        let gregorian = utc(1582, 10, 15, 0, 0, 0, 0);
        assert_eq!(Date::from(gregorian), Date::new(-3, 2_874_597_888, 0));
        let year_one = utc(1, 1, 1, 0, 0, 0, 0);
        assert_eq!(Date::from(year_one), Date::new(-14, 202_934_144, 0));
    }

    #[test]
    fn time_zones_and_rounding() {
        let east = FixedOffset::east_opt(2 * 3600).unwrap();
        let local = east.with_ymd_and_hms(2036, 2, 7, 8, 28, 16).unwrap();
        assert_eq!(Date::from(local), Date::ERA_1);

        // A fraction below half a nanosecond rounds down, from half up.
        let date = Date::new(0, 0, 1);
        assert_eq!(
            DateTime::<Utc>::try_from(date),
            Ok(utc(1900, 1, 1, 0, 0, 0, 0))
        );
        let date = Date::new(0, 0, u64::MAX);
        assert_eq!(
            DateTime::<Utc>::try_from(date),
            Ok(utc(1900, 1, 1, 0, 0, 1, 0))
        );
    }

    #[test]
    fn leap_second_is_held_at_the_end_of_the_second() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .unwrap()
            .and_utc();
        let last = utc(2016, 12, 31, 23, 59, 59, 999_999_999);
        assert_eq!(Date::from(leap), Date::from(last));
        assert!(Date::from(leap) < Date::from(utc(2017, 1, 1, 0, 0, 0, 0)));
    }

    #[test]
    fn out_of_range() {
        assert_eq!(
            DateTime::<Utc>::try_from(Date::MAX),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            DateTime::<Utc>::try_from(Date::MIN),
            Err(TimeError::OutOfRange)
        );
        let max = DateTime::<Utc>::MAX_UTC;
        assert_eq!(DateTime::<Utc>::try_from(Date::from(max)), Ok(max));
        let min = DateTime::<Utc>::MIN_UTC;
        assert_eq!(DateTime::<Utc>::try_from(Date::from(min)), Ok(min));
        let past_max = Date::from(max)
            .checked_add(crate::NtpDuration::ONE_SECOND)
            .unwrap();
        assert_eq!(
            DateTime::<Utc>::try_from(past_max),
            Err(TimeError::OutOfRange)
        );
    }

    proptest! {
        #[test]
        fn chrono_to_date_and_back_is_exact(
            seconds in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            nanos in 0..NANOS_PER_SECOND,
        ) {
            let Some(time) = DateTime::<Utc>::from_timestamp(seconds, nanos) else {
                return Ok(());
            };
            let date = Date::from(time);
            prop_assert_eq!(date.to_unix(), Ok((seconds, nanos)));
            prop_assert_eq!(DateTime::<Utc>::try_from(date), Ok(time));
            prop_assert_eq!(date.to_utc().year, i64::from(chrono::Datelike::year(&time)));
        }

        #[test]
        fn date_to_chrono_rounds_to_the_nearest_nanosecond(
            seconds in -20_000_000_000_i64..20_000_000_000,
            fraction in any::<u64>(),
        ) {
            let date = Date::from_seconds_since_prime_epoch(seconds, fraction);
            let time = DateTime::<Utc>::try_from(date).unwrap();
            let (unix_seconds, nanos) = date.to_unix().unwrap();
            prop_assert_eq!((time.timestamp(), time.timestamp_subsec_nanos()), (unix_seconds, nanos));
            // Within half a nanosecond of the date.
            let back = Date::from(time);
            let error = back.checked_duration_since(date).unwrap();
            prop_assert!(error.to_bits().unsigned_abs() <= 3, "{:?}", error);
        }
    }
}

//! Proleptic Gregorian UTC civil time for [`Date`]s.
//!
//! The conversion counts days with the usual "days from civil" arithmetic:
//! years are shifted to start on March 1st, so that the leap day is the last
//! day of the year, and split into 400-year cycles of 146 097 days.

use core::fmt;

use super::{
    Date, NANOS_PER_SECOND, TimeError, fraction64_to_nanos_floor, nanos_to_fraction64_ceil,
};

/// Seconds per day; NTP's timescale has no leap seconds, so every day has
/// exactly this many (RFC 5905, section 6).
const SECONDS_PER_DAY: i64 = 86_400;

/// Days per 400-year Gregorian cycle (97 leap years).
const DAYS_PER_CYCLE: i64 = 146_097;

/// Days from 0000-03-01, the start of the first March-based 400-year cycle,
/// to the prime epoch 1900-01-01 (RFC 5905, section 6).
const DAYS_BEFORE_PRIME_EPOCH: i64 = 693_901;

/// A civil date and time of day in UTC on the proleptic Gregorian calendar.
///
/// As in NTP (RFC 5905, section 6), every day has exactly 86 400 seconds:
/// a leap second (second 60) cannot be represented, and the Gregorian
/// calendar is assumed to extend back forever ("proleptic"). Year 0 is 1 BCE
/// and negative years lie before it, as in ISO 8601.
///
/// The fields are public, so a value may be invalid (month 13, February
/// 30th, ...). [`UtcDateTime::new`] and [`Date::from_utc`] validate them.
///
/// The derived order is chronological for valid values.
///
/// # Display
///
/// ISO 8601 with nanoseconds, `2036-02-07T06:28:16.000000000Z`. Years
/// outside 0..=9999 get a sign and at least four digits: `-0001`, `+10000`.
///
/// ```
/// use ntp_proto::{Date, UtcDateTime};
///
/// let utc = UtcDateTime::new(2036, 2, 7, 6, 28, 16, 0)?;
/// assert_eq!(Date::from_utc(utc)?, Date::ERA_1);
/// assert_eq!(Date::ERA_1.to_utc(), utc);
/// assert_eq!(utc.to_string(), "2036-02-07T06:28:16.000000000Z");
/// # Ok::<(), ntp_proto::TimeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct UtcDateTime {
    /// The year; 0 is 1 BCE, -1 is 2 BCE.
    pub year: i64,
    /// The month, 1 (January) to 12 (December).
    pub month: u8,
    /// The day of the month, from 1 to 28, 29, 30 or 31.
    pub day: u8,
    /// The hour, 0 to 23.
    pub hour: u8,
    /// The minute, 0 to 59.
    pub minute: u8,
    /// The second, 0 to 59 (no leap seconds).
    pub second: u8,
    /// The nanosecond within the second, 0 to 999 999 999.
    pub nanosecond: u32,
}

impl UtcDateTime {
    /// Builds a civil date and time, checking every field.
    ///
    /// # Errors
    ///
    /// [`TimeError::InvalidCivil`] if a field is out of range,
    /// [`TimeError::InvalidNanoseconds`] if `nanosecond` is 10^9 or more.
    #[inline]
    pub const fn new(
        year: i64,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        nanosecond: u32,
    ) -> Result<Self, TimeError> {
        let utc = Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanosecond,
        };
        match utc.validate() {
            Ok(()) => Ok(utc),
            Err(error) => Err(error),
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`TimeError::InvalidCivil`] if a field is out of range,
    /// [`TimeError::InvalidNanoseconds`] if `nanosecond` is 10^9 or more.
    #[inline]
    pub const fn validate(&self) -> Result<(), TimeError> {
        let Some(days_in_month) = Self::days_in_month(self.year, self.month) else {
            return Err(TimeError::InvalidCivil);
        };
        if self.day == 0 || self.day > days_in_month {
            return Err(TimeError::InvalidCivil);
        }
        if self.hour > 23 || self.minute > 59 || self.second > 59 {
            return Err(TimeError::InvalidCivil);
        }
        if self.nanosecond >= NANOS_PER_SECOND {
            return Err(TimeError::InvalidNanoseconds(self.nanosecond));
        }
        Ok(())
    }

    /// Whether `year` is a leap year on the proleptic Gregorian calendar:
    /// divisible by 4, except centuries not divisible by 400.
    #[inline]
    #[must_use]
    pub const fn is_leap_year(year: i64) -> bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// The number of days in a month (1 to 12) of a year, or `None` for an
    /// invalid month.
    #[inline]
    #[must_use]
    pub const fn days_in_month(year: i64, month: u8) -> Option<u8> {
        match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
            4 | 6 | 9 | 11 => Some(30),
            2 if Self::is_leap_year(year) => Some(29),
            2 => Some(28),
            _ => None,
        }
    }

    /// Whether this is the last day of its month, the only days at whose end
    /// a leap second may be inserted or deleted (in practice the last days
    /// of June and December).
    #[inline]
    #[must_use]
    pub const fn is_last_day_of_month(&self) -> bool {
        match Self::days_in_month(self.year, self.month) {
            Some(days) => self.day == days,
            None => false,
        }
    }
}

impl fmt::Display for UtcDateTime {
    /// ISO 8601, `2036-02-07T06:28:16.000000000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if (0..=9999).contains(&self.year) {
            write!(f, "{:04}", self.year)?;
        } else {
            write!(f, "{:+05}", self.year)?;
        }
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            self.month, self.day, self.hour, self.minute, self.second, self.nanosecond
        )
    }
}

/// The civil date `(year, month, day)` of a day number counted from the
/// prime epoch, 1900-01-01 (day 0).
///
/// Every day number of a [`Date`] (about ±1.07 * 10^14) is fine: all
/// intermediate values stay below 2^48.
const fn civil_from_days(days_since_prime_epoch: i64) -> (i64, u8, u8) {
    let days = days_since_prime_epoch + DAYS_BEFORE_PRIME_EPOCH;
    let cycle = days.div_euclid(DAYS_PER_CYCLE);
    // Day of the 400-year cycle, 0..=146_096.
    let day_of_cycle = days.rem_euclid(DAYS_PER_CYCLE);
    // Year of the cycle, 0..=399; leap days shift the year boundaries.
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    // Day of the March-based year, 0..=365.
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    // Month counted from March, 0..=11.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = cycle * 400 + year_of_cycle + if month <= 2 { 1 } else { 0 };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "month is in 1..=12 and day in 1..=31"
    )]
    let (month, day) = (month as u8, day as u8);
    (year, month, day)
}

/// The day number, counted from the prime epoch 1900-01-01 (day 0), of a
/// valid civil date. Any `i64` year is fine in `i128`.
const fn days_from_civil(year: i64, month: u8, day: u8) -> i128 {
    // Years start on March 1st, so January and February belong to the
    // previous one.
    let year = year as i128 - if month <= 2 { 1 } else { 0 };
    let cycle = year.div_euclid(400);
    let year_of_cycle = year.rem_euclid(400);
    // Month counted from March, 0..=11.
    let march_month = (month as i128 + 9) % 12;
    let day_of_year = (153 * march_month + 2) / 5 + day as i128 - 1;
    let day_of_cycle = 365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    cycle * DAYS_PER_CYCLE as i128 + day_of_cycle - DAYS_BEFORE_PRIME_EPOCH as i128
}

impl Date {
    /// The UTC civil date and time of this date, on the proleptic Gregorian
    /// calendar without leap seconds (RFC 5905, section 6).
    ///
    /// The nanosecond is truncated, never rounded up, so the civil time never
    /// shows a second (or day) that has not started yet. Every date has a
    /// civil time.
    #[must_use]
    pub const fn to_utc(self) -> UtcDateTime {
        let seconds = self.seconds_since_prime_epoch();
        let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the second of the day is in 0..86_400"
        )]
        let (hour, minute, second) = (
            (second_of_day / 3600) as u8,
            (second_of_day / 60 % 60) as u8,
            (second_of_day % 60) as u8,
        );
        UtcDateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanosecond: fraction64_to_nanos_floor(self.fraction()),
        }
    }

    /// The date of a UTC civil date and time on the proleptic Gregorian
    /// calendar without leap seconds (RFC 5905, section 6).
    ///
    /// The nanosecond is rounded up to the next 2^-64 s, so that
    /// [`Date::to_utc`] gives the same value back.
    ///
    /// # Errors
    ///
    /// [`TimeError::InvalidCivil`] or [`TimeError::InvalidNanoseconds`] if
    /// a field is out of range (see [`UtcDateTime::validate`]),
    /// [`TimeError::OutOfRange`] if the year is outside the date range
    /// (about ±292 billion years around 1900).
    pub const fn from_utc(utc: UtcDateTime) -> Result<Self, TimeError> {
        if let Err(error) = utc.validate() {
            return Err(error);
        }
        let days = days_from_civil(utc.year, utc.month, utc.day);
        let second_of_day = utc.hour as i128 * 3600 + utc.minute as i128 * 60 + utc.second as i128;
        // |days| < 2^64 * 366, so this fits an i128 easily.
        let seconds = days * SECONDS_PER_DAY as i128 + second_of_day;
        if seconds > i64::MAX as i128 || seconds < i64::MIN as i128 {
            return Err(TimeError::OutOfRange);
        }
        #[allow(clippy::cast_possible_truncation, reason = "checked just above to fit")]
        let seconds = seconds as i64;
        Ok(Self::from_seconds_since_prime_epoch(
            seconds,
            nanos_to_fraction64_ceil(utc.nanosecond),
        ))
    }
}

impl From<Date> for UtcDateTime {
    /// See [`Date::to_utc`].
    #[inline]
    fn from(date: Date) -> Self {
        date.to_utc()
    }
}

impl TryFrom<UtcDateTime> for Date {
    type Error = TimeError;

    /// See [`Date::from_utc`].
    #[inline]
    fn try_from(utc: UtcDateTime) -> Result<Self, TimeError> {
        Self::from_utc(utc)
    }
}

impl fmt::Display for Date {
    /// The UTC civil time, see [`Date::to_utc`] and [`UtcDateTime`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_utc(), f)
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;

    use alloc::string::ToString;

    use super::*;

    fn utc(year: i64, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> UtcDateTime {
        UtcDateTime::new(year, month, day, hour, minute, second, 0).unwrap()
    }

    fn seconds_of(utc: UtcDateTime) -> i64 {
        Date::from_utc(utc).unwrap().seconds_since_prime_epoch()
    }

    #[test]
    fn known_dates() {
        assert_eq!(Date::PRIME_EPOCH.to_utc(), utc(1900, 1, 1, 0, 0, 0));
        assert_eq!(seconds_of(utc(1900, 1, 1, 0, 0, 0)), 0);
        assert_eq!(seconds_of(utc(1970, 1, 1, 0, 0, 0)), 2_208_988_800);
        assert_eq!(Date::UNIX_EPOCH.to_utc(), utc(1970, 1, 1, 0, 0, 0));
        assert_eq!(Date::ERA_1.to_utc(), utc(2036, 2, 7, 6, 28, 16));
        assert_eq!(Date::from_utc(utc(2036, 2, 7, 6, 28, 16)), Ok(Date::ERA_1));
        // 1899-12-31T23:59:59Z is the last second of era -1.
        let last = Date::new(-1, u32::MAX, 0);
        assert_eq!(last.to_utc(), utc(1899, 12, 31, 23, 59, 59));
        assert_eq!(Date::from_utc(utc(1899, 12, 31, 23, 59, 59)), Ok(last));
        // RFC 5905, figure 4 (the rows that the RFC's table gets right).
        assert_eq!(seconds_of(utc(1899, 12, 31, 0, 0, 0)), -86_400);
        assert_eq!(seconds_of(utc(1972, 1, 1, 0, 0, 0)), 2_272_060_800);
        assert_eq!(seconds_of(utc(1999, 12, 31, 0, 0, 0)), 3_155_587_200);
        assert_eq!(seconds_of(utc(2036, 2, 8, 0, 0, 0)), (1 << 32) + 63_104);
        // The figure's "4 Oct 1582" is proleptic Gregorian, 11 days before
        // the first Gregorian day.
        assert_eq!(
            Date::from_utc(utc(1582, 10, 15, 0, 0, 0)),
            Ok(Date::new(-3, 2_874_597_888, 0))
        );
        assert_eq!(
            Date::new(-3, 2_873_647_488, 0).to_utc(),
            utc(1582, 10, 4, 0, 0, 0)
        );
        // 1 January of year 1 (the figure's era offset has a typo; this is
        // Unix time -62 135 596 800).
        assert_eq!(
            Date::from_utc(utc(1, 1, 1, 0, 0, 0)),
            Date::from_unix(-62_135_596_800, 0)
        );
        assert_eq!(
            Date::from_unix(-62_135_596_800, 0).unwrap(),
            Date::new(-14, 202_934_144, 0)
        );
        // Unix 2^31 s, the 32-bit time_t rollover.
        assert_eq!(
            Date::from_unix(1 << 31, 0).unwrap().to_utc(),
            utc(2038, 1, 19, 3, 14, 8)
        );
    }

    #[test]
    fn leap_years() {
        assert!(UtcDateTime::is_leap_year(2000));
        assert!(UtcDateTime::is_leap_year(2024));
        assert!(UtcDateTime::is_leap_year(0));
        assert!(UtcDateTime::is_leap_year(-4));
        assert!(UtcDateTime::is_leap_year(-400));
        assert!(!UtcDateTime::is_leap_year(1900));
        assert!(!UtcDateTime::is_leap_year(2100));
        assert!(!UtcDateTime::is_leap_year(-100));
        assert!(!UtcDateTime::is_leap_year(2023));
        assert_eq!(UtcDateTime::days_in_month(2000, 2), Some(29));
        assert_eq!(UtcDateTime::days_in_month(1900, 2), Some(28));
        assert_eq!(UtcDateTime::days_in_month(2100, 2), Some(28));
        assert_eq!(UtcDateTime::days_in_month(2023, 6), Some(30));
        assert_eq!(UtcDateTime::days_in_month(2023, 0), None);
        assert_eq!(UtcDateTime::days_in_month(2023, 13), None);

        let leap_day = utc(2000, 2, 29, 12, 0, 0);
        let date = Date::from_utc(leap_day).unwrap();
        assert_eq!(date.to_utc(), leap_day);
        assert_eq!(
            Date::from_utc(utc(2000, 3, 1, 12, 0, 0))
                .unwrap()
                .seconds_since_prime_epoch()
                - date.seconds_since_prime_epoch(),
            86_400
        );
        assert_eq!(
            UtcDateTime::new(1900, 2, 29, 0, 0, 0, 0),
            Err(TimeError::InvalidCivil)
        );
        assert_eq!(
            UtcDateTime::new(2100, 2, 29, 0, 0, 0, 0),
            Err(TimeError::InvalidCivil)
        );
        // The day after 1900-02-28 is 1900-03-01.
        let feb_28 = seconds_of(utc(1900, 2, 28, 0, 0, 0));
        assert_eq!(
            Date::from_seconds_since_prime_epoch(feb_28 + 86_400, 0).to_utc(),
            utc(1900, 3, 1, 0, 0, 0)
        );
    }

    #[test]
    fn last_day_of_month() {
        assert!(utc(2016, 12, 31, 23, 59, 59).is_last_day_of_month());
        assert!(utc(2015, 6, 30, 0, 0, 0).is_last_day_of_month());
        assert!(utc(2024, 2, 29, 0, 0, 0).is_last_day_of_month());
        assert!(utc(2023, 2, 28, 0, 0, 0).is_last_day_of_month());
        assert!(!utc(2024, 2, 28, 0, 0, 0).is_last_day_of_month());
        assert!(!utc(2015, 6, 29, 0, 0, 0).is_last_day_of_month());
        let invalid = UtcDateTime {
            month: 13,
            ..utc(2015, 6, 29, 0, 0, 0)
        };
        assert!(!invalid.is_last_day_of_month());
    }

    #[test]
    fn validation() {
        let valid = utc(2020, 5, 17, 1, 2, 3);
        let cases = [
            UtcDateTime { month: 0, ..valid },
            UtcDateTime { month: 13, ..valid },
            UtcDateTime { day: 0, ..valid },
            UtcDateTime { day: 32, ..valid },
            UtcDateTime {
                month: 4,
                day: 31,
                ..valid
            },
            UtcDateTime { hour: 24, ..valid },
            UtcDateTime {
                minute: 60,
                ..valid
            },
            UtcDateTime {
                second: 60,
                ..valid
            },
        ];
        for case in cases {
            assert_eq!(
                Date::from_utc(case),
                Err(TimeError::InvalidCivil),
                "{case:?}"
            );
        }
        assert_eq!(
            Date::from_utc(UtcDateTime {
                nanosecond: 1_000_000_000,
                ..valid
            }),
            Err(TimeError::InvalidNanoseconds(1_000_000_000))
        );
        assert_eq!(
            Date::from_utc(UtcDateTime {
                year: i64::MAX,
                ..valid
            }),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            Date::from_utc(UtcDateTime {
                year: i64::MIN,
                ..valid
            }),
            Err(TimeError::OutOfRange)
        );
    }

    #[test]
    fn extremes() {
        for date in [Date::MIN, Date::MAX] {
            let utc = date.to_utc();
            let back = Date::from_utc(utc).unwrap();
            assert!(back <= date);
            assert_eq!(
                back.seconds_since_prime_epoch(),
                date.seconds_since_prime_epoch()
            );
        }
        assert_eq!(Date::MAX.to_utc().nanosecond, 999_999_999);
        // One second past either end is out of range.
        let mut after_max = Date::MAX.to_utc();
        after_max.second += 1;
        assert_eq!(Date::from_utc(after_max), Err(TimeError::OutOfRange));
        let mut before_min = Date::MIN.to_utc();
        before_min.second -= 1;
        assert_eq!(Date::from_utc(before_min), Err(TimeError::OutOfRange));
    }

    #[test]
    fn nanoseconds() {
        let utc = UtcDateTime::new(2024, 6, 30, 23, 59, 59, 999_999_999).unwrap();
        let date = Date::from_utc(utc).unwrap();
        assert_eq!(date.to_utc(), utc);
        assert_eq!(date.to_unix().unwrap().1, 999_999_999);
        // A fraction of all ones is truncated, not rounded into 2024-07-01.
        let date = Date::new(date.era(), date.era_offset(), u64::MAX);
        assert_eq!(date.to_utc(), utc);
    }

    #[test]
    fn display() {
        assert_eq!(Date::ERA_1.to_string(), "2036-02-07T06:28:16.000000000Z");
        assert_eq!(
            Date::from_unix(0, 1).unwrap().to_string(),
            "1970-01-01T00:00:00.000000001Z"
        );
        assert_eq!(
            UtcDateTime::new(-1, 12, 31, 23, 59, 59, 5)
                .unwrap()
                .to_string(),
            "-0001-12-31T23:59:59.000000005Z"
        );
        assert_eq!(
            UtcDateTime::new(10_000, 1, 1, 0, 0, 0, 0)
                .unwrap()
                .to_string(),
            "+10000-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            UtcDateTime::new(0, 1, 1, 0, 0, 0, 0).unwrap().to_string(),
            "0000-01-01T00:00:00.000000000Z"
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let utc = UtcDateTime::new(2036, 2, 7, 6, 28, 16, 42).unwrap();
        let json = serde_json::to_string(&utc).unwrap();
        assert_eq!(serde_json::from_str::<UtcDateTime>(&json).unwrap(), utc);
    }
}

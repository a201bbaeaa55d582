//! Property tests for the time formats (RFC 5905, section 6).

use core::time::Duration;

use proptest::prelude::*;

use super::{Date, NtpDuration, ShortTime, TWO_POW_32_F64, Timestamp, UtcDateTime};

/// Seconds from the prime epoch to the Unix epoch.
const UNIX_EPOCH_SECONDS: i64 = 2_208_988_800;

/// The largest magnitude of nanoseconds that an [`NtpDuration`] holds
/// without saturating: 2^31 s.
const MAX_DURATION_NANOS: i64 = (1 << 31) * 1_000_000_000;

/// Any date at all: every `i128` is one.
fn any_date() -> impl Strategy<Value = Date> {
    any::<i128>().prop_map(Date::from_fixed)
}

/// Dates whose fraction has its lower 32 bits clear, i.e. dates that a
/// [`Timestamp`] represents exactly once its era is known.
fn timestamp_date() -> impl Strategy<Value = Date> {
    any::<i128>().prop_map(|fixed| Date::from_fixed(fixed & !0xffff_ffff))
}

/// Civil dates and times across many eras, before and after 1900.
fn any_utc() -> impl Strategy<Value = UtcDateTime> {
    (
        -10_000_000_000_i64..10_000_000_000,
        1_u8..=12,
        1_u8..=31,
        0_u8..24,
        0_u8..60,
        0_u8..60,
        0_u32..1_000_000_000,
    )
        .prop_map(|(year, month, day, hour, minute, second, nanosecond)| {
            let last_day = UtcDateTime::days_in_month(year, month).unwrap();
            UtcDateTime {
                year,
                month,
                day: day.min(last_day),
                hour,
                minute,
                second,
                nanosecond,
            }
        })
}

proptest! {
    #[test]
    fn unix_round_trip(
        seconds in i64::MIN..=i64::MAX - UNIX_EPOCH_SECONDS,
        nanos in 0_u32..1_000_000_000,
    ) {
        let date = Date::from_unix(seconds, nanos).unwrap();
        prop_assert_eq!(date.to_unix(), Ok((seconds, nanos)));
        let utc = date.to_utc();
        prop_assert_eq!(utc.nanosecond, nanos);
        prop_assert_eq!(Date::from_utc(utc), Ok(date));
    }

    #[test]
    fn unix_duration_round_trip(
        seconds in 0..=i64::MAX.unsigned_abs() - 2_208_988_800,
        nanos in 0_u32..1_000_000_000,
    ) {
        let duration = Duration::new(seconds, nanos);
        let date = Date::from_unix_duration(duration).unwrap();
        prop_assert_eq!(date.to_unix_duration(), Ok(duration));
    }

    #[test]
    fn date_to_utc_and_back(date in any_date()) {
        let utc = date.to_utc();
        prop_assert_eq!(utc.validate(), Ok(()));
        let back = Date::from_utc(utc).unwrap();
        prop_assert_eq!(back.seconds_since_prime_epoch(), date.seconds_since_prime_epoch());
        // Truncated to the nanosecond, then rounded up to 2^-64 s.
        prop_assert!(back <= date);
        prop_assert!(date.fraction() - back.fraction() < 18_446_744_074);
        prop_assert_eq!(back.to_utc(), utc);
    }

    #[test]
    fn utc_to_date_and_back(utc in any_utc()) {
        let date = Date::from_utc(utc).unwrap();
        prop_assert_eq!(date.to_utc(), utc);
    }

    #[test]
    fn civil_order_is_chronological(a in any_date(), b in any_date()) {
        let (earlier, later) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(earlier.to_utc() <= later.to_utc());
    }

    #[test]
    fn consecutive_days(seconds in any::<i64>()) {
        // Each day starts right after the previous one ends.
        let day_start = seconds.checked_sub(seconds.rem_euclid(86_400));
        prop_assume!(day_start.is_some_and(|start| start > i64::MIN));
        let day_start = day_start.unwrap();
        let today = Date::from_seconds_since_prime_epoch(day_start, 0).to_utc();
        let yesterday = Date::from_seconds_since_prime_epoch(day_start - 1, 0).to_utc();
        prop_assert_eq!((today.hour, today.minute, today.second), (0, 0, 0));
        prop_assert_eq!((yesterday.hour, yesterday.minute, yesterday.second), (23, 59, 59));
        prop_assert!(yesterday.is_last_day_of_month() == (today.day == 1));
        if today.day == 1 {
            prop_assert_eq!(today.month % 12, (yesterday.month + 1) % 12);
        } else {
            prop_assert_eq!(today.day, yesterday.day + 1);
            prop_assert_eq!((today.year, today.month), (yesterday.year, yesterday.month));
        }
    }

    #[test]
    fn timestamp_to_date_recovers_nearby_dates(
        date in timestamp_date(),
        pivot_fraction in any::<u32>(),
        offset in any::<i64>(),
    ) {
        // The pivot lies within [date - 2^31 s, date + 2^31 s).
        let pivot_fixed = date.to_fixed().checked_sub(i128::from(offset) << 32);
        prop_assume!(pivot_fixed.is_some());
        let pivot = Date::from_fixed(pivot_fixed.unwrap() | i128::from(pivot_fraction));
        prop_assert_eq!(Timestamp::from(date).to_date(pivot), date);
    }

    #[test]
    fn timestamp_to_date_keeps_the_timestamp(timestamp in any::<u64>(), pivot in any_date()) {
        let timestamp = Timestamp::from_bits(timestamp);
        let date = timestamp.to_date(pivot);
        prop_assert_eq!(Timestamp::from(date), timestamp);
        prop_assert_eq!(date.fraction() & 0xffff_ffff, 0);
        // Within [-2^31 s, 2^31 s) of the pivot without its ignored bits,
        // unless the result wrapped around the end of the date range.
        let pivot = Date::from_fixed(pivot.to_fixed() & !0xffff_ffff);
        prop_assert!(
            date.checked_duration_since(pivot).is_some()
                || pivot.era() == i32::MIN
                || pivot.era() == i32::MAX
        );
    }

    #[test]
    fn timestamp_difference_is_exact(a in timestamp_date(), bits in any::<i64>()) {
        let difference = NtpDuration::from_bits(bits);
        let b = a.checked_add(difference);
        prop_assume!(b.is_some());
        let b = b.unwrap();
        prop_assert_eq!(Timestamp::from(b) - Timestamp::from(a), difference);
        prop_assert_eq!(b.checked_duration_since(a), Some(difference));
        prop_assert_eq!(Timestamp::from(a) + difference, Timestamp::from(b));
        prop_assert_eq!(Timestamp::from(b) - difference, Timestamp::from(a));
    }

    #[test]
    fn timestamp_difference_of_truncated_dates(a in any_date(), bits in any::<i64>(), fraction in any::<u32>()) {
        let b = a.checked_add(NtpDuration::from_bits(bits));
        prop_assume!(b.is_some());
        let b = Date::from_fixed(b.unwrap().to_fixed() ^ i128::from(fraction));
        let truncate = |date: Date| Date::from_fixed(date.to_fixed() & !0xffff_ffff);
        let exact = truncate(b).checked_duration_since(truncate(a));
        if let Some(exact) = exact {
            prop_assert_eq!(Timestamp::from(b) - Timestamp::from(a), exact);
        }
    }

    #[test]
    fn timestamp_plus_duration(timestamp in any::<u64>(), bits in any::<i64>()) {
        let timestamp = Timestamp::from_bits(timestamp);
        let duration = NtpDuration::from_bits(bits);
        prop_assert_eq!((timestamp + duration) - timestamp, duration);
        prop_assert_eq!(timestamp - (timestamp - duration), duration);
    }

    #[test]
    fn duration_f64_round_trip(bits in -(1_i64 << 53)..(1_i64 << 53)) {
        let duration = NtpDuration::from_bits(bits);
        prop_assert_eq!(NtpDuration::from_seconds_f64(duration.to_seconds_f64()), Ok(duration));
    }

    #[test]
    fn f64_duration_within_half_a_unit(seconds in -2_147_483_648.0_f64..2_147_483_647.0) {
        let duration = NtpDuration::from_seconds_f64(seconds).unwrap();
        // Scaling by 2^32 is exact; beyond 2^53 units both sides are integers.
        let scaled = seconds * TWO_POW_32_F64;
        prop_assert!((scaled - duration.to_bits() as f64).abs() <= 0.5);
    }

    #[test]
    fn duration_core_round_trip(seconds in 0_u64..1 << 31, nanos in 0_u32..1_000_000_000) {
        let core = Duration::new(seconds, nanos);
        let duration = NtpDuration::try_from(core).unwrap();
        prop_assert_eq!(Duration::try_from(duration), Ok(core));
        prop_assert_eq!(duration, NtpDuration::from_nanos(i64::try_from(core.as_nanos()).unwrap()));
    }

    #[test]
    fn nanos_round_trip(nanos in -MAX_DURATION_NANOS + 1..MAX_DURATION_NANOS) {
        prop_assert_eq!(NtpDuration::from_nanos(nanos).to_nanos(), nanos);
    }

    #[test]
    fn nanos_are_monotonic_and_symmetric(a in any::<i64>(), b in any::<i64>()) {
        prop_assert!(a > b || NtpDuration::from_nanos(a) <= NtpDuration::from_nanos(b));
        if a.unsigned_abs() < MAX_DURATION_NANOS.unsigned_abs() {
            prop_assert_eq!(NtpDuration::from_nanos(-a), -NtpDuration::from_nanos(a));
        }
    }

    #[test]
    fn short_time_round_trips(bits in any::<u32>()) {
        let short = ShortTime::from_bits(bits);
        prop_assert_eq!(ShortTime::from_duration_saturating(short.to_duration()), short);
        prop_assert_eq!(ShortTime::from_seconds_f64(short.to_seconds_f64()), Ok(short));
    }

    #[test]
    fn unix_f64_matches_integer_unix(seconds in -(1_i64 << 52)..(1_i64 << 52)) {
        let date = Date::from_unix_seconds_f64(seconds as f64).unwrap();
        prop_assert_eq!(Ok(date), Date::from_unix(seconds, 0));
        prop_assert!((date.to_unix_seconds_f64() - seconds as f64).abs() < 1e-9);
    }
}

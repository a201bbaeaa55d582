//! Fuzzes every conversion between the NTP time formats (RFC 5905,
//! section 6): none may panic, and every round trip that the documentation
//! promises to be exact must be.
#![no_main]

use core::time::Duration;
use std::time::SystemTime;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ntp_proto::{Date, NtpDuration, ShortTime, TimeError, Timestamp, UtcDateTime};

/// Seconds from the prime epoch to the Unix epoch.
const UNIX_EPOCH_SECONDS: i64 = 2_208_988_800;

#[derive(Debug, Arbitrary)]
struct Input {
    timestamp: Timestamp,
    other_timestamp: Timestamp,
    short: ShortTime,
    date: Date,
    pivot: Date,
    duration: NtpDuration,
    other_duration: NtpDuration,
    utc: UtcDateTime,
    unix_seconds: i64,
    unix_nanos: u32,
    nanos: i64,
    log2_seconds: i8,
    float: f64,
    core_duration: Duration,
}

fuzz_target!(|input: Input| {
    timestamps(&input);
    short_times(&input);
    durations(&input);
    dates(&input);
    civil(&input);
    floats(input.float);
});

fn timestamps(input: &Input) {
    let Input {
        timestamp,
        other_timestamp,
        pivot,
        duration,
        ..
    } = *input;
    assert_eq!(
        Timestamp::new(timestamp.seconds(), timestamp.fraction()),
        timestamp
    );
    assert_eq!(timestamp.non_zero().is_none(), timestamp.is_zero());
    let _ = timestamp.to_string();

    // Era placement keeps the timestamp and lands within 2^31 s of the pivot.
    let date = timestamp.to_date(pivot);
    assert_eq!(Timestamp::from(date), timestamp);
    assert_eq!(date.fraction() & 0xffff_ffff, 0);
    let truncated_pivot = Date::new(
        pivot.era(),
        pivot.era_offset(),
        pivot.fraction() & !0xffff_ffff,
    );
    if pivot.era() != i32::MIN && pivot.era() != i32::MAX {
        let distance = date.checked_duration_since(truncated_pivot);
        assert_eq!(distance, Some(timestamp - Timestamp::from(pivot)));
    }
    assert_eq!(timestamp.with_era(date.era()), date);

    // Wrapping arithmetic.
    assert_eq!((timestamp + duration) - timestamp, duration);
    assert_eq!((timestamp - duration) + duration, timestamp);
    let difference = timestamp - other_timestamp;
    assert_eq!(other_timestamp + difference, timestamp);
    let mut moved = timestamp;
    moved += duration;
    moved -= duration;
    assert_eq!(moved, timestamp);

    // A timestamp read near a date recovers that date.
    if let Some(near) = truncated_pivot.checked_add(duration) {
        assert_eq!(Timestamp::from(near).to_date(pivot), near);
        assert_eq!(Timestamp::from(near) - Timestamp::from(pivot), duration);
    }
}

fn short_times(input: &Input) {
    let short = input.short;
    assert_eq!(ShortTime::new(short.seconds(), short.fraction()), short);
    assert_eq!(
        ShortTime::from_duration_saturating(short.to_duration()),
        short
    );
    assert_eq!(NtpDuration::from(short), short.to_duration());
    assert_eq!(
        ShortTime::from_seconds_f64(short.to_seconds_f64()),
        Ok(short)
    );
    let _ = short.to_string();

    let saturated = ShortTime::from_duration_saturating(input.duration);
    if input.duration.is_negative() {
        assert_eq!(saturated, ShortTime::ZERO);
    } else {
        // Within half a unit of 2^-16 s, unless saturated at the top.
        let error = input.duration.saturating_sub(saturated.to_duration()).abs();
        assert!(saturated == ShortTime::MAX || error <= NtpDuration::from_bits(1 << 15));
    }
    if let Ok(from_float) = ShortTime::from_seconds_f64(input.float) {
        assert!(input.float >= 0.0 && input.float < 65_536.0);
        assert!((from_float.to_seconds_f64() - input.float).abs() <= 1.0 / 131_072.0);
    }
}

fn durations(input: &Input) {
    let Input {
        duration,
        other_duration,
        nanos,
        log2_seconds,
        core_duration,
        ..
    } = *input;
    assert_eq!(NtpDuration::from_bits(duration.to_bits()), duration);
    let _ = duration.to_string();

    // Saturating and checked arithmetic agree.
    match duration.checked_add(other_duration) {
        Some(sum) => assert_eq!(duration + other_duration, sum),
        None => assert!(matches!(
            duration + other_duration,
            NtpDuration::MIN | NtpDuration::MAX
        )),
    }
    match duration.checked_sub(other_duration) {
        Some(difference) => assert_eq!(duration - other_duration, difference),
        None => assert!(matches!(
            duration - other_duration,
            NtpDuration::MIN | NtpDuration::MAX
        )),
    }
    assert!(!duration.abs().is_negative());
    if duration != NtpDuration::MIN {
        assert_eq!(-(-duration), duration);
    } else {
        assert_eq!(-duration, NtpDuration::MAX);
    }

    // Nanoseconds round trip exactly inside the range, saturate outside.
    let from_nanos = NtpDuration::from_nanos(nanos);
    let max_nanos = (1_i64 << 31) * 1_000_000_000;
    if nanos.unsigned_abs() < max_nanos.unsigned_abs() {
        assert_eq!(from_nanos.to_nanos(), nanos);
    } else if nanos > 0 {
        assert_eq!(from_nanos, NtpDuration::MAX);
    } else {
        assert!(from_nanos == NtpDuration::MIN || nanos == -max_nanos);
    }
    let back = NtpDuration::from_nanos(duration.to_nanos());
    assert!(back.saturating_sub(duration).abs() <= NtpDuration::from_bits(3));

    // core::time::Duration.
    match NtpDuration::try_from(core_duration) {
        Ok(converted) => {
            assert!(core_duration.as_secs() < 1 << 31);
            assert_eq!(Duration::try_from(converted), Ok(core_duration));
        }
        Err(error) => {
            assert_eq!(error, TimeError::OutOfRange);
            assert!(core_duration.as_secs() >= 1 << 31);
        }
    }
    match Duration::try_from(duration) {
        Ok(converted) => {
            assert!(NtpDuration::try_from(converted).is_ok() || converted.as_secs() == 1 << 31)
        }
        Err(_) => assert!(duration.is_negative()),
    }

    // Powers of two.
    let power = NtpDuration::from_log2_seconds(log2_seconds);
    assert!(!power.is_negative());
    if (-32..=30).contains(&log2_seconds) {
        assert_eq!(power.to_bits(), 1 << (log2_seconds + 32));
    }

    // Floats.
    if let Ok(from_float) = NtpDuration::from_seconds_f64(duration.to_seconds_f64()) {
        if duration.to_bits().unsigned_abs() < 1 << 53 {
            assert_eq!(from_float, duration);
        }
    }
}

fn dates(input: &Input) {
    let Input {
        date,
        pivot,
        duration,
        unix_seconds,
        unix_nanos,
        core_duration,
        ..
    } = *input;
    assert_eq!(
        Date::new(date.era(), date.era_offset(), date.fraction()),
        date
    );
    let seconds = date.seconds_since_prime_epoch();
    assert_eq!(
        Date::from_seconds_since_prime_epoch(seconds, date.fraction()),
        date
    );
    assert_eq!(date.to_timestamp(), Timestamp::from(date));

    // Unix time: exact from Unix and back, rounded from a date and back.
    match Date::from_unix(unix_seconds, unix_nanos) {
        Ok(from_unix) => {
            assert_eq!(from_unix.to_unix(), Ok((unix_seconds, unix_nanos)));
            assert_eq!(from_unix.to_utc().nanosecond, unix_nanos);
            assert_eq!(Date::from_utc(from_unix.to_utc()), Ok(from_unix));
        }
        Err(TimeError::InvalidNanoseconds(nanos)) => assert!(nanos >= 1_000_000_000),
        Err(error) => {
            assert_eq!(error, TimeError::OutOfRange);
            assert!(unix_seconds > i64::MAX - UNIX_EPOCH_SECONDS);
        }
    }
    // Rounding to the nanosecond may carry past the end of the date range.
    if let Ok((unix_seconds, nanos)) = date.to_unix() {
        match Date::from_unix(unix_seconds, nanos) {
            Ok(back) => assert_close(back, date),
            Err(_) => assert_eq!(date.seconds_since_prime_epoch(), i64::MAX),
        }
    }
    if let Ok(since_unix) = date.to_unix_duration() {
        match Date::from_unix_duration(since_unix) {
            Ok(back) => assert_close(back, date),
            Err(_) => assert_eq!(date.seconds_since_prime_epoch(), i64::MAX),
        }
    }
    if let Ok(from_duration) = Date::from_unix_duration(core_duration) {
        assert_eq!(from_duration.to_unix_duration(), Ok(core_duration));
    }
    let float = date.to_unix_seconds_f64();
    assert!(float.is_finite());
    assert!(Date::from_unix_seconds_f64(float).is_ok() || float.abs() > 9e18);

    // Checked arithmetic.
    if let Some(later) = date.checked_add(duration) {
        assert_eq!(later.checked_sub(duration), Some(date));
        let since = later.checked_duration_since(date);
        assert_eq!(since, Some(duration));
        // Adding whole units of 2^-32 s keeps the fraction bits below them.
        assert_eq!(Timestamp::from(later) - Timestamp::from(date), duration);
    }
    if let Some(since) = date.checked_duration_since(pivot) {
        let rebuilt = pivot.checked_add(since);
        if let Some(rebuilt) = rebuilt {
            let error = rebuilt.checked_duration_since(date);
            assert!(error.is_some_and(|error| error.abs() <= NtpDuration::from_bits(1)));
        }
    }
    assert_eq!(
        date.cmp(&pivot),
        date.seconds_since_prime_epoch()
            .cmp(&pivot.seconds_since_prime_epoch())
            .then(date.fraction().cmp(&pivot.fraction()))
    );

    // System time.
    if let Ok(system) = SystemTime::try_from(date) {
        match Date::try_from(system) {
            Ok(back) => {
                assert_close(back, date);
                assert_eq!(Timestamp::from(system), Timestamp::from(back));
            }
            Err(_) => assert_eq!(date.seconds_since_prime_epoch(), i64::MAX),
        }
    }
}

/// Asserts that two dates are within half a nanosecond (plus rounding) of
/// each other, as after a round trip through nanoseconds.
fn assert_close(a: Date, b: Date) {
    let error = a.checked_duration_since(b);
    assert!(
        error.is_some_and(|error| error.abs() <= NtpDuration::from_bits(3)),
        "{a:?} and {b:?} differ by {error:?}"
    );
}

fn civil(input: &Input) {
    let date = input.date;
    let utc = date.to_utc();
    assert_eq!(utc.validate(), Ok(()));
    let back = Date::from_utc(utc).unwrap();
    assert!(back <= date);
    assert_eq!(
        back.seconds_since_prime_epoch(),
        date.seconds_since_prime_epoch()
    );
    assert_eq!(back.to_utc(), utc);
    assert_eq!(UtcDateTime::from(date), utc);
    let _ = date.to_string();

    let utc = input.utc;
    let _ = utc.to_string();
    let _ = utc.is_last_day_of_month();
    match Date::from_utc(utc) {
        Ok(from_utc) => {
            assert_eq!(utc.validate(), Ok(()));
            assert_eq!(from_utc.to_utc(), utc);
            assert_eq!(Date::try_from(utc), Ok(from_utc));
        }
        Err(TimeError::OutOfRange) => assert_eq!(utc.validate(), Ok(())),
        Err(error) => assert_eq!(utc.validate(), Err(error)),
    }
    let new = UtcDateTime::new(
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        utc.nanosecond,
    );
    assert_eq!(new.map(|_| ()), utc.validate());
}

fn floats(float: f64) {
    match NtpDuration::from_seconds_f64(float) {
        Ok(duration) => {
            let error = (duration.to_seconds_f64() - float).abs();
            // Half a unit of 2^-32 s, plus the f64 rounding of large values.
            assert!(error <= 1.0 / 8_589_934_592.0 + float.abs() * f64::EPSILON);
        }
        Err(TimeError::NotFinite) => assert!(!float.is_finite()),
        Err(error) => {
            assert_eq!(error, TimeError::OutOfRange);
            assert!(float.abs() >= 2_147_483_647.0);
        }
    }
    match Date::from_unix_seconds_f64(float) {
        Ok(date) => {
            let back = date.to_unix_seconds_f64();
            assert!((back - float).abs() <= 1e-9 + float.abs() * f64::EPSILON);
        }
        Err(TimeError::NotFinite) => assert!(!float.is_finite()),
        Err(error) => assert_eq!(error, TimeError::OutOfRange),
    }
    match ShortTime::from_seconds_f64(float) {
        Ok(_) => {}
        Err(TimeError::NotFinite) => assert!(!float.is_finite()),
        Err(error) => {
            assert_eq!(error, TimeError::OutOfRange);
            assert!(!(0.0..65_535.999_99).contains(&float));
        }
    }
}

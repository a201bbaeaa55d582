//! NTP time formats and era arithmetic (RFC 5905, section 6).
//!
//! # Formats
//!
//! RFC 5905, section 6 defines three time formats, all counted from the
//! *prime epoch*, 1900-01-01T00:00:00Z:
//!
//! - [`Timestamp`]: the 64-bit timestamp format, 32 bits of unsigned
//!   seconds and 32 bits of fraction (resolution 2^-32 s, about 233 ps).
//!   It carries no era number: it wraps every 2^32 s (about 136 years), the
//!   first time on 2036-02-07T06:28:16Z ([`Date::ERA_1`]). A zero timestamp
//!   means "unknown or unsynchronized" ([`Timestamp::non_zero`]).
//! - [`ShortTime`]: the 32-bit short format, 16 bits of unsigned seconds
//!   and 16 bits of fraction, used for root delay and root dispersion.
//! - [`Date`]: the 128-bit date format, a signed 32-bit era number, a
//!   32-bit era offset and a 64-bit fraction. It spans about 292 billion
//!   years either side of the prime epoch at a resolution of 2^-64 s.
//!
//! Besides those wire formats this module offers [`NtpDuration`], a signed
//! 32.32 fixed-point difference (range ±2^31 s, about ±68 years), which is
//! what subtracting two timestamps yields (RFC 5905, section 6: "the only
//! arithmetic operation permitted on dates and timestamps is twos-complement
//! subtraction"), and [`UtcDateTime`], a proleptic Gregorian civil date and
//! time of day for display and for leap second scheduling.
//!
//! # Era arithmetic
//!
//! A [`Timestamp`] only becomes a point in time once its era is known.
//! [`Timestamp::to_date`] picks the era that puts the result nearest to a
//! pivot [`Date`] (typically "now" from the local clock), which is correct
//! whenever the true time lies within 2^31 s (about 68 years) of the pivot.
//! Likewise `timestamp_a - timestamp_b` is the exact difference whenever
//! that difference is below 2^31 s in magnitude, even across an era
//! boundary.
//!
//! # Rounding policy
//!
//! Conversions that cannot be exact round as follows; each function's
//! documentation repeats the rule that applies to it.
//!
//! - Floating point to fixed point (`from_seconds_f64` and friends): to
//!   nearest, ties away from zero. NaN and infinities give
//!   [`TimeError::NotFinite`].
//! - Nanoseconds to [`NtpDuration`] and back, [`core::time::Duration`] to
//!   [`NtpDuration`] and back, [`NtpDuration`] to [`ShortTime`]: to nearest,
//!   ties away from zero. Since 2^-32 s is finer than half a nanosecond,
//!   nanoseconds → [`NtpDuration`] → nanoseconds is exact.
//! - Nanoseconds to the 2^-64 s fraction of a [`Date`] (Unix times,
//!   [`core::time::Duration`], `SystemTime`, [`UtcDateTime`]): up, to the
//!   first fraction not earlier than the given nanosecond. Converting back
//!   then yields the same nanosecond whether the way back truncates or
//!   rounds, so such round trips are exact.
//! - [`Date`] to Unix seconds and nanoseconds ([`Date::to_unix`] and
//!   everything built on it): to nearest, ties toward the future, with the
//!   carry into the seconds.
//! - [`Date`] to [`UtcDateTime`]: the nanosecond is truncated, so the civil
//!   time never shows a second that has not started yet.
//! - [`Date`] to [`Timestamp`]: the lower 32 bits of the fraction are
//!   dropped, which rounds toward the past.
//! - Differences of [`Date`]s to [`NtpDuration`]: to nearest, ties away
//!   from zero.
//! - Arithmetic on [`NtpDuration`] saturates; arithmetic on [`Timestamp`]
//!   wraps modulo the era; arithmetic on [`Date`] is checked.

mod calendar;
mod date;
mod duration;
mod instant;
mod short;
mod timestamp;
#[cfg(feature = "chrono")]
mod with_chrono;
#[cfg(feature = "time")]
mod with_time;

#[cfg(test)]
mod proptests;

pub use calendar::UtcDateTime;
pub use date::Date;
pub use duration::NtpDuration;
pub use instant::Instant;
pub use short::ShortTime;
pub use timestamp::Timestamp;

/// Why a conversion between time formats failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The value does not fit the range of the target format.
    #[error("time value out of range for the target format")]
    OutOfRange,
    /// A floating-point input was NaN or infinite.
    #[error("floating-point time value is NaN or infinite")]
    NotFinite,
    /// A nanosecond field was not below 1 000 000 000.
    #[error("nanosecond field {0} is not below 1000000000")]
    InvalidNanoseconds(u32),
    /// A civil date or time field is out of its range (month not in 1..=12,
    /// day past the end of the month, hour, minute or second too large).
    #[error("invalid civil date or time field")]
    InvalidCivil,
}

/// Nanoseconds per second.
const NANOS_PER_SECOND: u32 = 1_000_000_000;

/// 2^32 as a float: one second in units of the 32.32 fixed-point formats
/// (RFC 5905, section 6).
const TWO_POW_32_F64: f64 = (1_u64 << 32) as f64;

/// 2^64 as a float: one second in units of the 2^-64 s fraction of the date
/// format (RFC 5905, section 6).
const TWO_POW_64_F64: f64 = (1_u128 << 64) as f64;

/// Rounds a float to the nearest integer, ties away from zero.
///
/// Returns `None` for NaN and for magnitudes of 2^127 and above. This is done
/// by hand because `f64::round` lives in `std`, not in `core`.
fn round_f64_to_i128(x: f64) -> Option<i128> {
    const LIMIT: f64 = (1_u128 << 127) as f64;
    // Below 2^62 the same rounding in 64-bit integers: one conversion
    // instruction each way instead of the 128-bit software routines.
    const FAST: f64 = (1_u64 << 62) as f64;
    if x.abs() < FAST {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "truncation toward zero is the intent; |x| < 2^62 fits"
        )]
        let truncated = x as i64;
        // Exact for the reasons given below.
        #[allow(
            clippy::cast_precision_loss,
            reason = "trunc(x) is an f64 value, the cast back is exact"
        )]
        let rest = x - truncated as f64;
        let rounded = if rest >= 0.5 {
            truncated + 1
        } else if rest <= -0.5 {
            truncated - 1
        } else {
            truncated
        };
        return Some(i128::from(rounded));
    }
    if x.is_nan() || x.abs() >= LIMIT {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "truncation toward zero is the intent; |x| < 2^127 fits"
    )]
    let truncated = x as i128;
    // x - trunc(x) is exact: for |x| >= 1 Sterbenz's lemma applies, for
    // |x| < 1 it is x itself, and for |x| >= 2^52 both are the same integer.
    // trunc(x) is an f64 value, so the cast back is exact.
    let rest = x - truncated as f64;
    if rest >= 0.5 {
        truncated.checked_add(1)
    } else if rest <= -0.5 {
        truncated.checked_sub(1)
    } else {
        Some(truncated)
    }
}

/// `numerator / denominator` rounded to nearest, ties away from zero.
///
/// `denominator` must be positive; a non-positive one gives `0`.
const fn div_round_i128(numerator: i128, denominator: i128) -> i128 {
    if denominator <= 0 {
        return 0;
    }
    let quotient = numerator / denominator;
    let remainder = (numerator % denominator).unsigned_abs();
    // 2 * |remainder| >= denominator, written so that it cannot overflow.
    if remainder >= denominator.unsigned_abs() - remainder {
        if numerator < 0 {
            quotient - 1
        } else {
            quotient + 1
        }
    } else {
        quotient
    }
}

/// Converts nanoseconds (below 10^9) to a 2^-64 s fraction, rounding up so
/// that [`fraction64_to_nanos_floor`] gives the nanoseconds back.
const fn nanos_to_fraction64_ceil(nanos: u32) -> u64 {
    let numerator = (nanos as u128) << 64;
    let denominator = NANOS_PER_SECOND as u128;
    let quotient = numerator.div_ceil(denominator);
    // nanos < 10^9 gives quotient < 2^64; saturate defensively otherwise.
    if quotient > u64::MAX as u128 {
        u64::MAX
    } else {
        #[allow(clippy::cast_possible_truncation, reason = "checked just above to fit")]
        let fraction = quotient as u64;
        fraction
    }
}

/// Converts a 2^-64 s fraction to nanoseconds, truncating. The result is
/// below 10^9.
const fn fraction64_to_nanos_floor(fraction: u64) -> u32 {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "fraction < 2^64 gives a result below 10^9"
    )]
    let nanos = ((fraction as u128 * NANOS_PER_SECOND as u128) >> 64) as u32;
    nanos
}

/// Converts a 2^-64 s fraction to nanoseconds, rounding to nearest with ties
/// up. The result is at most 10^9 (a carry into the seconds).
const fn fraction64_to_nanos_round(fraction: u64) -> u32 {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "fraction < 2^64 gives a result of at most 10^9"
    )]
    let nanos = ((fraction as u128 * NANOS_PER_SECOND as u128 + (1_u128 << 63)) >> 64) as u32;
    nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_f64_rounds_to_nearest_ties_away() {
        assert_eq!(round_f64_to_i128(0.0), Some(0));
        assert_eq!(round_f64_to_i128(-0.0), Some(0));
        assert_eq!(round_f64_to_i128(0.49), Some(0));
        assert_eq!(round_f64_to_i128(0.5), Some(1));
        assert_eq!(round_f64_to_i128(-0.5), Some(-1));
        assert_eq!(round_f64_to_i128(2.5), Some(3));
        assert_eq!(round_f64_to_i128(-2.4), Some(-2));
        assert_eq!(round_f64_to_i128(1e300), None);
        assert_eq!(round_f64_to_i128(f64::NAN), None);
        assert_eq!(round_f64_to_i128(f64::INFINITY), None);
        assert_eq!(
            round_f64_to_i128(-9.007_199_254_740_993e15),
            Some(-9_007_199_254_740_992)
        );
    }

    /// The 128-bit rounding alone, as before the 64-bit fast path.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "the reference rounding under test"
    )]
    fn round_wide(x: f64) -> Option<i128> {
        if x.is_nan() || x.abs() >= (1_u128 << 127) as f64 {
            return None;
        }
        let truncated = x as i128;
        let rest = x - truncated as f64;
        Some(if rest >= 0.5 {
            truncated + 1
        } else if rest <= -0.5 {
            truncated - 1
        } else {
            truncated
        })
    }

    #[test]
    #[allow(clippy::cast_precision_loss, reason = "2^62 is exact")]
    fn round_f64_fast_path_edges() {
        let fast = (1_u64 << 62) as f64;
        for x in [
            fast,
            -fast,
            fast * 2.0,
            -fast * 2.0,
            f64::from_bits(fast.to_bits() - 1),
            -f64::from_bits(fast.to_bits() - 1),
            4_503_599_627_370_495.5,
            -4_503_599_627_370_495.5,
            0.499_999_999_999_999_94,
        ] {
            assert_eq!(round_f64_to_i128(x), round_wide(x), "{x}");
        }
    }

    proptest::proptest! {
        #[test]
        fn round_f64_fast_path_matches_the_wide_rounding(bits in proptest::prelude::any::<u64>()) {
            let x = f64::from_bits(bits);
            proptest::prop_assert_eq!(round_f64_to_i128(x), round_wide(x));
        }
    }

    #[test]
    fn div_round_ties_away_from_zero() {
        assert_eq!(div_round_i128(5, 2), 3);
        assert_eq!(div_round_i128(-5, 2), -3);
        assert_eq!(div_round_i128(4, 3), 1);
        assert_eq!(div_round_i128(-5, 3), -2);
        assert_eq!(div_round_i128(i128::MIN, 1), i128::MIN);
        assert_eq!(div_round_i128(i128::MAX, i128::MAX), 1);
    }

    #[test]
    fn nanosecond_fraction_conversions() {
        for nanos in [0, 1, 2, 499_999_999, 500_000_000, 999_999_999] {
            let fraction = nanos_to_fraction64_ceil(nanos);
            assert_eq!(fraction64_to_nanos_floor(fraction), nanos);
            assert_eq!(fraction64_to_nanos_round(fraction), nanos);
        }
        assert_eq!(nanos_to_fraction64_ceil(500_000_000), 1 << 63);
        assert_eq!(fraction64_to_nanos_round(u64::MAX), NANOS_PER_SECOND);
        assert_eq!(fraction64_to_nanos_floor(u64::MAX), NANOS_PER_SECOND - 1);
    }

    #[test]
    fn errors_display() {
        extern crate alloc;
        use alloc::string::ToString;
        assert_eq!(
            TimeError::InvalidNanoseconds(1_000_000_000).to_string(),
            "nanosecond field 1000000000 is not below 1000000000"
        );
    }
}

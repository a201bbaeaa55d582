//! Signed 32.32 fixed-point time differences (RFC 5905, section 6).

use core::fmt;
use core::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use core::time::Duration;

use super::{NANOS_PER_SECOND, TWO_POW_32_F64, TimeError, div_round_i128, round_f64_to_i128};

/// A signed time difference in units of 2^-32 s (about 233 ps), stored as a
/// 32.32 fixed-point number in an [`i64`].
///
/// This is what subtracting two [`Timestamp`](crate::Timestamp)s yields
/// (RFC 5905, section 6: twos-complement subtraction "yielding a ... 63-bit
/// signed result"). The range is `[-2^31 s, 2^31 s - 2^-32 s]`, about ±68
/// years, far beyond the offsets and delays NTP deals with.
///
/// # Arithmetic saturates
///
/// The operators `+`, `-` (binary and unary) and [`abs`](Self::abs)
/// saturate at [`MIN`](Self::MIN) and [`MAX`](Self::MAX) instead of
/// panicking or wrapping; [`checked_add`](Self::checked_add) and
/// [`checked_sub`](Self::checked_sub) report overflow instead.
///
/// # Display
///
/// A duration displays as signed decimal seconds rounded to nine fractional
/// digits (nanoseconds) followed by `s`: `1.500000000s`, `-0.000123457s`.
/// `Debug` adds the raw twos-complement 32.32 value in hexadecimal, seconds
/// and fraction, as for [`Timestamp`](crate::Timestamp):
///
/// ```
/// use ntp_proto::NtpDuration;
///
/// let d = NtpDuration::from_seconds_f64(-1.5)?;
/// assert_eq!(d.to_string(), "-1.500000000s");
/// assert_eq!(format!("{d:?}"), "NtpDuration(-1.500000000s, fffffffe.80000000)");
/// # Ok::<(), ntp_proto::TimeError>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NtpDuration(i64);

impl NtpDuration {
    /// Zero seconds.
    pub const ZERO: Self = Self(0);

    /// The most negative duration, -2^31 s.
    pub const MIN: Self = Self(i64::MIN);

    /// The most positive duration, 2^31 s - 2^-32 s.
    pub const MAX: Self = Self(i64::MAX);

    /// One second.
    pub const ONE_SECOND: Self = Self(1 << 32);

    /// Builds a duration from its raw value in units of 2^-32 s.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: i64) -> Self {
        Self(bits)
    }

    /// The raw value in units of 2^-32 s.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> i64 {
        self.0
    }

    /// Whole seconds. Every `i32` fits exactly.
    #[inline]
    #[must_use]
    pub const fn from_seconds(seconds: i32) -> Self {
        Self((seconds as i64) << 32)
    }

    /// Converts seconds given as a float, rounding to the nearest 2^-32 s
    /// (ties away from zero).
    ///
    /// # Errors
    ///
    /// [`TimeError::NotFinite`] for NaN and infinities,
    /// [`TimeError::OutOfRange`] if the rounded value is outside
    /// [`MIN`](Self::MIN)..=[`MAX`](Self::MAX).
    #[inline]
    pub fn from_seconds_f64(seconds: f64) -> Result<Self, TimeError> {
        if !seconds.is_finite() {
            return Err(TimeError::NotFinite);
        }
        round_f64_to_i128(seconds * TWO_POW_32_F64)
            .and_then(|bits| i64::try_from(bits).ok())
            .map(Self)
            .ok_or(TimeError::OutOfRange)
    }

    /// The duration in seconds as a float, rounded to the nearest `f64`
    /// (exact whenever the magnitude is below 2^21 s, about 24 days).
    #[inline]
    #[must_use]
    pub fn to_seconds_f64(self) -> f64 {
        self.0 as f64 / TWO_POW_32_F64
    }

    /// Converts nanoseconds, rounding to the nearest 2^-32 s (ties away from
    /// zero; ties cannot actually occur) and saturating at
    /// [`MIN`](Self::MIN) and [`MAX`](Self::MAX) beyond ±2^31 s.
    ///
    /// For `|nanos| < 2^31 * 10^9`, `NtpDuration::from_nanos(n).to_nanos()`
    /// is `n` again.
    #[inline]
    #[must_use]
    pub const fn from_nanos(nanos: i64) -> Self {
        let bits = div_round_i128((nanos as i128) << 32, NANOS_PER_SECOND as i128);
        Self::saturate_i128(bits)
    }

    /// The duration in nanoseconds, rounded to nearest (ties away from
    /// zero). Every duration fits.
    #[inline]
    #[must_use]
    pub const fn to_nanos(self) -> i64 {
        let nanos = div_round_i128(self.0 as i128 * NANOS_PER_SECOND as i128, 1 << 32);
        // |nanos| <= 2^31 * 10^9 < 2^62, so this never saturates.
        if nanos > i64::MAX as i128 {
            i64::MAX
        } else if nanos < i64::MIN as i128 {
            i64::MIN
        } else {
            #[allow(clippy::cast_possible_truncation, reason = "checked just above to fit")]
            let nanos = nanos as i64;
            nanos
        }
    }

    /// The duration as whole seconds, rounded toward negative infinity,
    /// and nanoseconds in `0..1_000_000_000` (the nanoseconds rounded to
    /// nearest as [`to_nanos`](Self::to_nanos)): the form of a `timespec`
    /// that a kernel step (`ADJ_SETOFFSET`, `clock_settime`) takes, where a
    /// negative offset keeps a positive nanosecond part.
    ///
    /// ```
    /// use ntp_proto::NtpDuration;
    ///
    /// assert_eq!(NtpDuration::from_nanos(1_250_000_000).to_secs_nanos(), (1, 250_000_000));
    /// assert_eq!(NtpDuration::from_nanos(-1_250_000_000).to_secs_nanos(), (-2, 750_000_000));
    /// assert_eq!(NtpDuration::from_nanos(-1).to_secs_nanos(), (-1, 999_999_999));
    /// ```
    #[inline]
    #[must_use]
    pub const fn to_secs_nanos(self) -> (i64, u32) {
        let nanos = self.to_nanos();
        let seconds = nanos.div_euclid(NANOS_PER_SECOND as i64);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "rem_euclid is in 0..10^9"
        )]
        let subsec = nanos.rem_euclid(NANOS_PER_SECOND as i64) as u32;
        (seconds, subsec)
    }

    /// 2^`log2_seconds` seconds, the meaning of the poll and precision
    /// fields (RFC 5905, section 7.3).
    ///
    /// Saturates at [`MAX`](Self::MAX) for exponents of 31 and above and
    /// rounds to the nearest 2^-32 s below -32 (ties away from zero): -33
    /// gives 2^-32 s, anything smaller gives [`ZERO`](Self::ZERO).
    ///
    /// ```
    /// use ntp_proto::NtpDuration;
    ///
    /// assert_eq!(NtpDuration::from_log2_seconds(6), NtpDuration::from_seconds(64));
    /// assert_eq!(NtpDuration::from_log2_seconds(-1).to_seconds_f64(), 0.5);
    /// ```
    #[inline]
    #[must_use]
    pub const fn from_log2_seconds(log2_seconds: i8) -> Self {
        match log2_seconds {
            31.. => Self::MAX,
            -32..=30 => Self(1 << (log2_seconds + 32)),
            -33 => Self(1),
            _ => Self::ZERO,
        }
    }

    /// Whether the duration is below zero.
    #[inline]
    #[must_use]
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The magnitude, saturating: the absolute value of [`MIN`](Self::MIN)
    /// is [`MAX`](Self::MAX).
    #[inline]
    #[must_use]
    pub const fn abs(self) -> Self {
        Self(self.0.saturating_abs())
    }

    /// `self + rhs`, or `None` on overflow.
    #[inline]
    #[must_use]
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.0.checked_add(rhs.0) {
            Some(bits) => Some(Self(bits)),
            None => None,
        }
    }

    /// `self - rhs`, or `None` on overflow.
    #[inline]
    #[must_use]
    pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
        match self.0.checked_sub(rhs.0) {
            Some(bits) => Some(Self(bits)),
            None => None,
        }
    }

    /// `self + rhs`, saturating at [`MIN`](Self::MIN) and [`MAX`](Self::MAX).
    #[inline]
    #[must_use]
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, saturating at [`MIN`](Self::MIN) and [`MAX`](Self::MAX).
    #[inline]
    #[must_use]
    pub const fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// `-self`, saturating: the negation of [`MIN`](Self::MIN) is
    /// [`MAX`](Self::MAX).
    #[inline]
    #[must_use]
    pub const fn saturating_neg(self) -> Self {
        Self(self.0.saturating_neg())
    }

    /// Clamps a value in units of 2^-32 s into the representable range.
    const fn saturate_i128(bits: i128) -> Self {
        if bits > i64::MAX as i128 {
            Self::MAX
        } else if bits < i64::MIN as i128 {
            Self::MIN
        } else {
            #[allow(clippy::cast_possible_truncation, reason = "checked just above to fit")]
            let bits = bits as i64;
            Self(bits)
        }
    }
}

impl Add for NtpDuration {
    type Output = Self;

    /// Saturating addition, see [`NtpDuration::saturating_add`].
    #[inline]
    fn add(self, rhs: Self) -> Self {
        self.saturating_add(rhs)
    }
}

impl Sub for NtpDuration {
    type Output = Self;

    /// Saturating subtraction, see [`NtpDuration::saturating_sub`].
    #[inline]
    fn sub(self, rhs: Self) -> Self {
        self.saturating_sub(rhs)
    }
}

impl Neg for NtpDuration {
    type Output = Self;

    /// Saturating negation, see [`NtpDuration::saturating_neg`].
    #[inline]
    fn neg(self) -> Self {
        self.saturating_neg()
    }
}

impl AddAssign for NtpDuration {
    /// Saturating addition, see [`NtpDuration::saturating_add`].
    #[inline]
    fn add_assign(&mut self, rhs: Self) {
        *self = self.saturating_add(rhs);
    }
}

impl SubAssign for NtpDuration {
    /// Saturating subtraction, see [`NtpDuration::saturating_sub`].
    #[inline]
    fn sub_assign(&mut self, rhs: Self) {
        *self = self.saturating_sub(rhs);
    }
}

impl TryFrom<Duration> for NtpDuration {
    type Error = TimeError;

    /// Converts a `core` duration, rounding the nanoseconds to the nearest
    /// 2^-32 s.
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the duration is 2^31 s or longer.
    #[inline]
    fn try_from(duration: Duration) -> Result<Self, TimeError> {
        let seconds = i64::try_from(duration.as_secs()).map_err(|_| TimeError::OutOfRange)?;
        let fraction = div_round_i128(
            (duration.subsec_nanos() as i128) << 32,
            NANOS_PER_SECOND as i128,
        );
        // The fraction is below 2^32 and fits an i64.
        let fraction = i64::try_from(fraction).map_err(|_| TimeError::OutOfRange)?;
        seconds
            .checked_mul(1 << 32)
            .and_then(|bits| bits.checked_add(fraction))
            .map(Self)
            .ok_or(TimeError::OutOfRange)
    }
}

impl TryFrom<NtpDuration> for Duration {
    type Error = TimeError;

    /// Converts to a `core` duration, rounding to the nearest nanosecond
    /// (ties away from zero).
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] if the duration is negative (by half a
    /// nanosecond or more; less than that rounds to zero).
    #[inline]
    fn try_from(duration: NtpDuration) -> Result<Self, TimeError> {
        let nanos = u64::try_from(duration.to_nanos()).map_err(|_| TimeError::OutOfRange)?;
        Ok(Duration::from_nanos(nanos))
    }
}

impl fmt::Display for NtpDuration {
    /// Signed decimal seconds with nine fractional digits, `-0.000123457s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.to_nanos();
        let sign = if nanos < 0 { "-" } else { "" };
        let magnitude = nanos.unsigned_abs();
        let per_second = u64::from(NANOS_PER_SECOND);
        write!(
            f,
            "{sign}{}.{:09}s",
            magnitude / per_second,
            magnitude % per_second
        )
    }
}

impl fmt::Debug for NtpDuration {
    /// Decimal seconds, then the raw 32.32 bits in hexadecimal:
    /// `NtpDuration(-1.500000000s, fffffffe.80000000)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[allow(
            clippy::cast_sign_loss,
            reason = "the twos-complement bits are what is shown"
        )]
        let bits = self.0 as u64;
        write!(
            f,
            "NtpDuration({self}, {:08x}.{:08x})",
            bits >> 32,
            bits & 0xffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;

    use alloc::string::ToString;

    use super::*;

    #[test]
    fn debug_shows_seconds_and_raw_bits() {
        use alloc::format;

        assert_eq!(
            format!("{:?}", NtpDuration::ZERO),
            "NtpDuration(0.000000000s, 00000000.00000000)"
        );
        assert_eq!(
            format!("{:?}", NtpDuration::from_bits(0x1_8000_0000)),
            "NtpDuration(1.500000000s, 00000001.80000000)"
        );
        assert_eq!(
            format!("{:?}", NtpDuration::from_bits(-1)),
            "NtpDuration(0.000000000s, ffffffff.ffffffff)"
        );
        assert_eq!(
            format!("{:?}", NtpDuration::MIN),
            "NtpDuration(-2147483648.000000000s, 80000000.00000000)"
        );
    }

    #[test]
    fn constants() {
        assert_eq!(NtpDuration::ZERO.to_bits(), 0);
        assert_eq!(NtpDuration::ONE_SECOND, NtpDuration::from_seconds(1));
        assert_eq!(NtpDuration::MIN, NtpDuration::from_seconds(i32::MIN));
        assert_eq!(
            NtpDuration::MAX.to_bits(),
            NtpDuration::from_seconds(i32::MAX).to_bits() + 0xffff_ffff
        );
    }

    #[test]
    fn log2_seconds() {
        assert_eq!(NtpDuration::from_log2_seconds(0), NtpDuration::ONE_SECOND);
        assert_eq!(NtpDuration::from_log2_seconds(-1).to_bits(), 1 << 31);
        assert_eq!(
            NtpDuration::from_log2_seconds(6),
            NtpDuration::from_seconds(64)
        );
        assert_eq!(NtpDuration::from_log2_seconds(-20).to_bits(), 1 << 12);
        assert_eq!(NtpDuration::from_log2_seconds(-20).to_nanos(), 954);
        assert_eq!(
            NtpDuration::from_log2_seconds(30),
            NtpDuration::from_seconds(1 << 30)
        );
        assert_eq!(NtpDuration::from_log2_seconds(31), NtpDuration::MAX);
        assert_eq!(NtpDuration::from_log2_seconds(i8::MAX), NtpDuration::MAX);
        assert_eq!(NtpDuration::from_log2_seconds(-32).to_bits(), 1);
        assert_eq!(NtpDuration::from_log2_seconds(-33).to_bits(), 1);
        assert_eq!(NtpDuration::from_log2_seconds(-34), NtpDuration::ZERO);
        assert_eq!(NtpDuration::from_log2_seconds(i8::MIN), NtpDuration::ZERO);
    }

    #[test]
    fn float_conversions() {
        assert_eq!(
            NtpDuration::from_seconds_f64(1.5).unwrap().to_bits(),
            3 << 31
        );
        assert_eq!(
            NtpDuration::from_seconds_f64(-0.25).unwrap().to_bits(),
            -(1 << 30)
        );
        // Half a unit rounds away from zero.
        let half_unit = 1.0 / TWO_POW_32_F64 / 2.0;
        assert_eq!(
            NtpDuration::from_seconds_f64(half_unit).unwrap().to_bits(),
            1
        );
        assert_eq!(
            NtpDuration::from_seconds_f64(-half_unit).unwrap().to_bits(),
            -1
        );
        assert_eq!(
            NtpDuration::from_seconds_f64(-2_147_483_648.0),
            Ok(NtpDuration::MIN)
        );
        assert_eq!(
            NtpDuration::from_seconds_f64(2_147_483_648.0),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            NtpDuration::from_seconds_f64(-1e300),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            NtpDuration::from_seconds_f64(f64::NAN),
            Err(TimeError::NotFinite)
        );
        assert_eq!(
            NtpDuration::from_seconds_f64(f64::NEG_INFINITY),
            Err(TimeError::NotFinite)
        );
        assert!((NtpDuration::from_seconds(-7).to_seconds_f64() + 7.0).abs() < f64::EPSILON);
        assert!((NtpDuration::MIN.to_seconds_f64() + 2_147_483_648.0).abs() < f64::EPSILON);
    }

    #[test]
    fn nanos() {
        assert_eq!(NtpDuration::from_nanos(1).to_bits(), 4);
        assert_eq!(NtpDuration::from_nanos(1).to_nanos(), 1);
        assert_eq!(NtpDuration::from_nanos(-1).to_bits(), -4);
        assert_eq!(
            NtpDuration::from_nanos(1_000_000_000),
            NtpDuration::ONE_SECOND
        );
        assert_eq!(NtpDuration::from_nanos(i64::MAX), NtpDuration::MAX);
        assert_eq!(NtpDuration::from_nanos(i64::MIN), NtpDuration::MIN);
        assert_eq!(NtpDuration::MIN.to_nanos(), -2_147_483_648_000_000_000);
        assert_eq!(NtpDuration::MAX.to_nanos(), 2_147_483_648_000_000_000);
        // 2^-32 s is 0.23 ns; 2 units are 0.47 ns, 3 units 0.70 ns.
        assert_eq!(NtpDuration::from_bits(2).to_nanos(), 0);
        assert_eq!(NtpDuration::from_bits(3).to_nanos(), 1);
        assert_eq!(NtpDuration::from_bits(-3).to_nanos(), -1);
        // A fraction of all ones is 1 s minus 0.23 ns, so it rounds up.
        assert_eq!(
            NtpDuration::from_bits(0xffff_ffff).to_nanos(),
            1_000_000_000
        );
        // 2^-33 s times 10^9 is exactly 0.1164... no tie; 2^-1 s is exact.
        assert_eq!(NtpDuration::from_bits(1 << 31).to_nanos(), 500_000_000);
    }

    #[test]
    fn saturating_arithmetic() {
        let one = NtpDuration::ONE_SECOND;
        assert_eq!(NtpDuration::MAX + one, NtpDuration::MAX);
        assert_eq!(NtpDuration::MIN - one, NtpDuration::MIN);
        assert_eq!(-NtpDuration::MIN, NtpDuration::MAX);
        assert_eq!(NtpDuration::MIN.abs(), NtpDuration::MAX);
        assert_eq!((-one).abs(), one);
        assert!((-one).is_negative());
        assert!(!NtpDuration::ZERO.is_negative());
        assert_eq!(NtpDuration::MAX.checked_add(one), None);
        assert_eq!(NtpDuration::MIN.checked_sub(one), None);
        assert_eq!(one.checked_add(one), Some(NtpDuration::from_seconds(2)));
        assert_eq!(one.checked_sub(one), Some(NtpDuration::ZERO));
        let mut d = one;
        d += one;
        d -= NtpDuration::from_seconds(3);
        assert_eq!(d, -one);
        assert!(NtpDuration::MIN < -one && -one < NtpDuration::ZERO);
    }

    #[test]
    fn core_duration() {
        let d = NtpDuration::try_from(Duration::new(3, 500_000_000)).unwrap();
        assert_eq!(d.to_bits(), 7 << 31);
        assert_eq!(
            Duration::try_from(d).unwrap(),
            Duration::new(3, 500_000_000)
        );
        assert_eq!(
            NtpDuration::try_from(Duration::from_secs(1 << 31)),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            NtpDuration::try_from(Duration::new((1 << 31) - 1, 999_999_999)).unwrap(),
            NtpDuration::from_bits(i64::MAX - 3)
        );
        assert_eq!(
            NtpDuration::try_from(Duration::MAX),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(Duration::try_from(-d), Err(TimeError::OutOfRange));
        assert_eq!(
            Duration::try_from(NtpDuration::from_bits(0xffff_ffff)).unwrap(),
            Duration::from_secs(1)
        );
        assert_eq!(
            Duration::try_from(NtpDuration::MAX).unwrap(),
            Duration::from_secs(1 << 31)
        );
    }

    #[test]
    fn display() {
        assert_eq!(NtpDuration::ZERO.to_string(), "0.000000000s");
        assert_eq!(NtpDuration::from_bits(3 << 31).to_string(), "1.500000000s");
        assert_eq!(
            NtpDuration::from_nanos(-123_457).to_string(),
            "-0.000123457s"
        );
        assert_eq!(NtpDuration::MIN.to_string(), "-2147483648.000000000s");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let d = NtpDuration::from_nanos(-123_456_789);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, d.to_bits().to_string());
        assert_eq!(serde_json::from_str::<NtpDuration>(&json).unwrap(), d);
    }
}

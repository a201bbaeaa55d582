//! The 32-bit NTP short format (RFC 5905, section 6).

use core::fmt;

use super::{NtpDuration, TimeError, round_f64_to_i128};

/// 2^16 as a float: one second in units of the short format's fraction
/// (RFC 5905, section 6).
const TWO_POW_16_F64: f64 = 65_536.0;

/// The NTP short format: 16 bits of seconds and 16 bits of fraction
/// (RFC 5905, section 6, figure 3), used for root delay and root dispersion.
///
/// The value is unsigned, in units of 2^-16 s (about 15 µs), from zero to
/// [`ShortTime::MAX`], just under 65 536 s.
///
/// # Display
///
/// A short time displays as decimal seconds rounded to six fractional
/// digits (microseconds) followed by `s`: `0.015625s`. `Debug` adds the
/// raw 16.16 value in hexadecimal, seconds and fraction:
///
/// ```
/// use ntp_proto::ShortTime;
///
/// let s = ShortTime::new(0, 0x0400);
/// assert_eq!(s.to_string(), "0.015625s");
/// assert_eq!(format!("{s:?}"), "ShortTime(0.015625s, 0000.0400)");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ShortTime(u32);

impl ShortTime {
    /// Zero seconds.
    pub const ZERO: Self = Self(0);

    /// The largest value, 65 536 s - 2^-16 s.
    pub const MAX: Self = Self(u32::MAX);

    /// Builds a value from its 32 wire bits.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The 32 wire bits.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u32 {
        self.0
    }

    /// Builds a value from whole seconds and a fraction of a second in units
    /// of 2^-16 s.
    #[inline]
    #[must_use]
    pub const fn new(seconds: u16, fraction: u16) -> Self {
        Self(((seconds as u32) << 16) | fraction as u32)
    }

    /// Whole seconds (the upper 16 bits).
    #[inline]
    #[must_use]
    pub const fn seconds(self) -> u16 {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the upper 16 bits fit after the shift"
        )]
        let seconds = (self.0 >> 16) as u16;
        seconds
    }

    /// Fraction of a second in units of 2^-16 s (the lower 16 bits).
    #[inline]
    #[must_use]
    pub const fn fraction(self) -> u16 {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "keeping the lower 16 bits is the intent"
        )]
        let fraction = self.0 as u16;
        fraction
    }

    /// The value in seconds as a float (exact).
    #[inline]
    #[must_use]
    pub fn to_seconds_f64(self) -> f64 {
        f64::from(self.0) / TWO_POW_16_F64
    }

    /// Converts seconds given as a float, rounding to the nearest 2^-16 s
    /// (ties away from zero).
    ///
    /// # Errors
    ///
    /// [`TimeError::NotFinite`] for NaN and infinities,
    /// [`TimeError::OutOfRange`] for negative values and for values that
    /// round to 65 536 s or more.
    ///
    /// ```
    /// use ntp_proto::{ShortTime, TimeError};
    ///
    /// assert_eq!(ShortTime::from_seconds_f64(1.5), Ok(ShortTime::new(1, 0x8000)));
    /// assert_eq!(ShortTime::from_seconds_f64(-1.0), Err(TimeError::OutOfRange));
    /// ```
    #[inline]
    pub fn from_seconds_f64(seconds: f64) -> Result<Self, TimeError> {
        if !seconds.is_finite() {
            return Err(TimeError::NotFinite);
        }
        if seconds < 0.0 {
            return Err(TimeError::OutOfRange);
        }
        round_f64_to_i128(seconds * TWO_POW_16_F64)
            .and_then(|bits| u32::try_from(bits).ok())
            .map(Self)
            .ok_or(TimeError::OutOfRange)
    }

    /// Converts a duration, rounding to the nearest 2^-16 s (ties up) and
    /// saturating: negative durations give [`ZERO`](Self::ZERO), durations
    /// that round to 65 536 s or more give [`MAX`](Self::MAX).
    #[inline]
    #[must_use]
    pub const fn from_duration_saturating(duration: NtpDuration) -> Self {
        let bits = duration.to_bits();
        if bits < 0 {
            return Self::ZERO;
        }
        // bits >> 16 is below 2^47, so adding one cannot overflow.
        let rounded = (bits >> 16) + ((bits >> 15) & 1);
        if rounded > u32::MAX as i64 {
            Self::MAX
        } else {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked just above to be in 0..=u32::MAX"
            )]
            let bits = rounded as u32;
            Self(bits)
        }
    }

    /// The value as a duration (exact).
    #[inline]
    #[must_use]
    pub const fn to_duration(self) -> NtpDuration {
        NtpDuration::from_bits((self.0 as i64) << 16)
    }
}

impl From<ShortTime> for NtpDuration {
    /// Exact conversion, see [`ShortTime::to_duration`].
    #[inline]
    fn from(short: ShortTime) -> Self {
        short.to_duration()
    }
}

impl fmt::Display for ShortTime {
    /// Decimal seconds with six fractional digits, `0.015625s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Microseconds, rounded to nearest with ties up.
        let micros = (u64::from(self.0) * 1_000_000 + (1 << 15)) >> 16;
        write!(f, "{}.{:06}s", micros / 1_000_000, micros % 1_000_000)
    }
}

impl fmt::Debug for ShortTime {
    /// Decimal seconds, then the raw 16.16 bits in hexadecimal:
    /// `ShortTime(0.015625s, 0000.0400)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ShortTime({self}, {:04x}.{:04x})",
            self.seconds(),
            self.fraction()
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
            format!("{:?}", ShortTime::new(3, 0x8000)),
            "ShortTime(3.500000s, 0003.8000)"
        );
        assert_eq!(
            format!("{:?}", ShortTime::MAX),
            "ShortTime(65535.999985s, ffff.ffff)"
        );
    }

    #[test]
    fn fields() {
        let s = ShortTime::new(3, 0x8000);
        assert_eq!(s.to_bits(), 0x0003_8000);
        assert_eq!(s.seconds(), 3);
        assert_eq!(s.fraction(), 0x8000);
        assert_eq!(ShortTime::from_bits(0x0003_8000), s);
        assert_eq!(ShortTime::MAX, ShortTime::new(u16::MAX, u16::MAX));
        assert!(ShortTime::ZERO < s);
    }

    #[test]
    fn floats() {
        assert_eq!(ShortTime::from_seconds_f64(0.0), Ok(ShortTime::ZERO));
        assert_eq!(ShortTime::from_seconds_f64(-0.0), Ok(ShortTime::ZERO));
        assert_eq!(
            ShortTime::from_seconds_f64(3.5),
            Ok(ShortTime::new(3, 0x8000))
        );
        // Half a unit rounds up, just below half rounds down.
        let unit = 1.0 / TWO_POW_16_F64;
        assert_eq!(
            ShortTime::from_seconds_f64(unit / 2.0),
            Ok(ShortTime::from_bits(1))
        );
        assert_eq!(
            ShortTime::from_seconds_f64(unit * 0.499),
            Ok(ShortTime::ZERO)
        );
        assert_eq!(
            ShortTime::from_seconds_f64(65_536.0 - unit),
            Ok(ShortTime::MAX)
        );
        assert_eq!(
            ShortTime::from_seconds_f64(65_536.0 - unit * 0.75),
            Ok(ShortTime::MAX)
        );
        assert_eq!(
            ShortTime::from_seconds_f64(65_536.0 - unit / 2.0),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            ShortTime::from_seconds_f64(65_536.0),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            ShortTime::from_seconds_f64(-1e-10),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            ShortTime::from_seconds_f64(1e300),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            ShortTime::from_seconds_f64(f64::NAN),
            Err(TimeError::NotFinite)
        );
        assert_eq!(
            ShortTime::from_seconds_f64(f64::INFINITY),
            Err(TimeError::NotFinite)
        );
        assert!((ShortTime::new(2, 0x4000).to_seconds_f64() - 2.25).abs() < f64::EPSILON);
        for bits in [0, 1, 0x1234_5678, u32::MAX] {
            let s = ShortTime::from_bits(bits);
            assert_eq!(ShortTime::from_seconds_f64(s.to_seconds_f64()), Ok(s));
        }
    }

    #[test]
    fn durations() {
        let s = ShortTime::new(1, 0x8000);
        assert_eq!(s.to_duration(), NtpDuration::from_bits(3 << 31));
        assert_eq!(NtpDuration::from(s), s.to_duration());
        assert_eq!(ShortTime::from_duration_saturating(s.to_duration()), s);
        assert_eq!(
            ShortTime::from_duration_saturating(NtpDuration::from_bits(-1)),
            ShortTime::ZERO
        );
        assert_eq!(
            ShortTime::from_duration_saturating(NtpDuration::MIN),
            ShortTime::ZERO
        );
        assert_eq!(
            ShortTime::from_duration_saturating(NtpDuration::MAX),
            ShortTime::MAX
        );
        assert_eq!(
            ShortTime::from_duration_saturating(NtpDuration::from_seconds(65_536)),
            ShortTime::MAX
        );
        // Rounding to nearest, ties up.
        assert_eq!(
            ShortTime::from_duration_saturating(NtpDuration::from_bits(0x7fff)),
            ShortTime::ZERO
        );
        assert_eq!(
            ShortTime::from_duration_saturating(NtpDuration::from_bits(0x8000)),
            ShortTime::from_bits(1)
        );
        assert_eq!(
            ShortTime::from_duration_saturating(NtpDuration::from_bits(0xffff_ffff_7fff)),
            ShortTime::MAX
        );
        assert_eq!(
            ShortTime::from_duration_saturating(NtpDuration::from_bits(0xffff_ffff_8000)),
            ShortTime::MAX
        );
        assert_eq!(ShortTime::MAX.to_duration().to_bits(), 0xffff_ffff_0000);
    }

    #[test]
    fn display() {
        assert_eq!(ShortTime::ZERO.to_string(), "0.000000s");
        assert_eq!(ShortTime::from_bits(1 << 10).to_string(), "0.015625s");
        assert_eq!(ShortTime::from_bits(1).to_string(), "0.000015s");
        assert_eq!(ShortTime::MAX.to_string(), "65535.999985s");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let s = ShortTime::new(7, 0x1234);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<ShortTime>(&json).unwrap(), s);
    }
}

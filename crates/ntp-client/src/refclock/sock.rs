//! chrony's reference clock socket protocol (`refclock SOCK`), as gpsd
//! writes it to `/run/chrony.DEVICE.sock`: one datagram per sample, the C
//! structure
//!
//! ```text
//! struct sock_sample {
//!     struct timeval tv;  // when, on the system clock
//!     double offset;      // true time minus system time at tv, seconds
//!     int pulse;          // non-zero: a PPS edge (the second is unknown)
//!     int leap;           // 0 normal, 1 insert, 2 delete a leap second
//!     int _pad;
//!     int magic;          // 0x534f434b, "SOCK"
//! };
//! ```
//!
//! in the writer's byte order and layout, which on Linux is the reader's:
//! 40 octets where `time_t` and `long` are 64 bits, 32 where they are 32.
//! The datagram's length tells which. Anything else is refused with a
//! [`SockError`].

use ntp_proto::LeapIndicator;

/// The protocol identifier at the end of every record: "SOCK".
pub const SOCK_MAGIC: i32 = 0x534f_434b;

/// A record with 64-bit `time_t` and `suseconds_t` (LP64 Linux).
pub const SOCK_LEN_64: usize = 40;

/// A record with 32-bit `time_t` and `suseconds_t` (ILP32 Linux).
pub const SOCK_LEN_32: usize = 32;

/// One sample from the socket.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct SockSample {
    /// When it was measured: seconds of the Unix epoch on the system clock.
    pub seconds: i64,
    /// And microseconds, 0 to 999 999.
    pub micros: u32,
    /// True time minus system time at that moment, seconds.
    pub offset: f64,
    /// A PPS edge: the offset is only good within the second.
    pub pulse: bool,
    /// The leap second announced.
    pub leap: LeapIndicator,
}

/// Why a datagram is not a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SockError {
    /// Neither 40 nor 32 octets.
    #[error("{0} octets, not a sock_sample (40 or 32)")]
    Length(usize),
    /// The last field is not [`SOCK_MAGIC`].
    #[error("not the SOCK protocol (magic {0:#x})")]
    Magic(i32),
    /// The time is negative or its microseconds beyond a second.
    #[error("bad sample time")]
    Time,
    /// The offset is not finite or beyond 2^31 s.
    #[error("offset not finite or out of range")]
    Offset,
    /// A leap field other than 0, 1 or 2.
    #[error("unknown leap value {0}")]
    Leap(i32),
}

/// Reads `N` octets at `at`.
fn field<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    data.get(at..at + N)
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .unwrap_or([0; N])
}

impl SockSample {
    /// Parses one datagram.
    ///
    /// # Errors
    ///
    /// [`SockError`]: wrong length or magic, a bad time, offset or leap
    /// field.
    pub fn parse(data: &[u8]) -> Result<Self, SockError> {
        let (seconds, micros, rest) = match data.len() {
            SOCK_LEN_64 => (
                i64::from_ne_bytes(field(data, 0)),
                i64::from_ne_bytes(field(data, 8)),
                16,
            ),
            SOCK_LEN_32 => (
                i64::from(i32::from_ne_bytes(field(data, 0))),
                i64::from(i32::from_ne_bytes(field(data, 4))),
                8,
            ),
            other => return Err(SockError::Length(other)),
        };
        let int = |at: usize| i32::from_ne_bytes(field(data, rest + at));
        let magic = int(20);
        if magic != SOCK_MAGIC {
            return Err(SockError::Magic(magic));
        }
        let micros = u32::try_from(micros)
            .ok()
            .filter(|&us| us < 1_000_000 && seconds >= 0)
            .ok_or(SockError::Time)?;
        let offset = f64::from_ne_bytes(field(data, rest));
        if !(offset.is_finite() && offset.abs() <= 2_147_483_648.0) {
            return Err(SockError::Offset);
        }
        let leap = match int(12) {
            0 => LeapIndicator::NoWarning,
            1 => LeapIndicator::InsertSecond,
            2 => LeapIndicator::DeleteSecond,
            other => return Err(SockError::Leap(other)),
        };
        Ok(Self {
            seconds,
            micros,
            offset,
            pulse: int(8) != 0,
            leap,
        })
    }

    /// The record as a 64-bit writer sends it (for tests and simulators).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; SOCK_LEN_64] {
        let mut out = [0; SOCK_LEN_64];
        let leap = match self.leap {
            LeapIndicator::InsertSecond => 1_i32,
            LeapIndicator::DeleteSecond => 2,
            _ => 0,
        };
        let fields: [(usize, &[u8]); 6] = [
            (0, &self.seconds.to_ne_bytes()),
            (8, &i64::from(self.micros).to_ne_bytes()),
            (16, &self.offset.to_ne_bytes()),
            (24, &i32::from(self.pulse).to_ne_bytes()),
            (28, &leap.to_ne_bytes()),
            (36, &SOCK_MAGIC.to_ne_bytes()),
        ];
        for (at, bytes) in fields {
            if let Some(slot) = out.get_mut(at..at + bytes.len()) {
                slot.copy_from_slice(bytes);
            }
        }
        out
    }

    /// A sample at `seconds`.`micros` with `offset`, no pulse, no leap.
    #[must_use]
    pub const fn new(seconds: i64, micros: u32, offset: f64) -> Self {
        Self {
            seconds,
            micros,
            offset,
            pulse: false,
            leap: LeapIndicator::NoWarning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let mut sample = SockSample::new(1_764_547_200, 250_000, -0.012_5);
        sample.pulse = true;
        sample.leap = LeapIndicator::InsertSecond;
        let bytes = sample.to_bytes();
        assert_eq!(SockSample::parse(&bytes), Ok(sample));
        // The 32-bit layout: time_t and suseconds_t of 4 octets.
        let mut short = [0_u8; SOCK_LEN_32];
        short[0..4].copy_from_slice(&1_000_i32.to_ne_bytes());
        short[4..8].copy_from_slice(&5_i32.to_ne_bytes());
        short[8..16].copy_from_slice(&0.5_f64.to_ne_bytes());
        short[28..32].copy_from_slice(&SOCK_MAGIC.to_ne_bytes());
        let parsed = SockSample::parse(&short).unwrap();
        assert_eq!(
            (parsed.seconds, parsed.micros, parsed.offset),
            (1_000, 5, 0.5)
        );
        assert!(!parsed.pulse);
        // Refusals.
        assert_eq!(SockSample::parse(&bytes[..39]), Err(SockError::Length(39)));
        assert_eq!(SockSample::parse(&[]), Err(SockError::Length(0)));
        let mut bad = bytes;
        bad[36] ^= 1;
        assert!(matches!(SockSample::parse(&bad), Err(SockError::Magic(_))));
        let mut bad = bytes;
        bad[8..16].copy_from_slice(&1_000_000_i64.to_ne_bytes());
        assert_eq!(SockSample::parse(&bad), Err(SockError::Time));
        let mut bad = bytes;
        bad[16..24].copy_from_slice(&f64::NAN.to_ne_bytes());
        assert_eq!(SockSample::parse(&bad), Err(SockError::Offset));
        let mut bad = bytes;
        bad[28..32].copy_from_slice(&3_i32.to_ne_bytes());
        assert_eq!(SockSample::parse(&bad), Err(SockError::Leap(3)));
    }
}

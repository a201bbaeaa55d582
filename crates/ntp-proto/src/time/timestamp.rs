//! The 64-bit NTP timestamp format (RFC 5905, section 6).

/// An NTP timestamp: 32 bits of seconds and 32 bits of fraction
/// (RFC 5905, section 6, figure 3), without an era number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Timestamp(u64);

impl Timestamp {
    /// The zero timestamp, which RFC 5905 (section 6) reserves for "unknown".
    pub const ZERO: Self = Self(0);

    /// Builds a timestamp from its 64 wire bits.
    #[must_use]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The 64 wire bits.
    #[must_use]
    pub const fn to_bits(self) -> u64 {
        self.0
    }
}

//! The 32-bit NTP short format (RFC 5905, section 6).

/// The NTP short format: 16 bits of seconds and 16 bits of fraction
/// (RFC 5905, section 6, figure 3), used for root delay and root dispersion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ShortTime(u32);

impl ShortTime {
    /// Zero seconds.
    pub const ZERO: Self = Self(0);

    /// Builds a value from its 32 wire bits.
    #[must_use]
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The 32 wire bits.
    #[must_use]
    pub const fn to_bits(self) -> u32 {
        self.0
    }
}

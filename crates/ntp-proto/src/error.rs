//! The error type of the wire codec.

/// Why a buffer could not be read or written as an NTP packet.
///
/// Offsets count octets from the start of the packet (the first octet of
/// the header is offset 0), so an error can be reported against a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the structure that must fit in it.
    #[error("buffer of {len} octets is too short, {needed} needed")]
    Truncated {
        /// The length of the buffer.
        len: usize,
        /// The length that was needed.
        needed: usize,
    },
    /// The version number is outside the versions this codec accepts
    /// (1 to 4, see [`Version`](crate::Version)).
    #[error("unsupported NTP version {0}")]
    UnsupportedVersion(u8),
    /// An extension field's Length is below the minimum of 16 octets
    /// (RFC 7822, section 3).
    #[error("extension field at offset {offset} has length {length}, below the minimum of 16")]
    ExtensionTooShort {
        /// Where the field starts.
        offset: usize,
        /// The Length field's value.
        length: u16,
    },
    /// An extension field's Length is not a multiple of four octets
    /// (RFC 7822, section 3: fields are padded to a word boundary).
    #[error("extension field at offset {offset} has length {length}, not a multiple of 4")]
    ExtensionMisaligned {
        /// Where the field starts.
        offset: usize,
        /// The Length field's value.
        length: u16,
    },
    /// An extension field's Length runs past the end of the packet.
    #[error(
        "extension field at offset {offset} has length {length}, but only {available} octets remain"
    )]
    ExtensionOverrun {
        /// Where the field starts.
        offset: usize,
        /// The Length field's value.
        length: u16,
        /// How many octets remain from `offset` to the end of the packet.
        available: usize,
    },
    /// The octets after the header (or after the last extension field) are
    /// neither an extension field nor a MAC or crypto-NAK of a length this
    /// codec knows (RFC 5905 section 7.3, RFC 7822 section 3).
    #[error("{len} trailing octets at offset {offset} are neither an extension field nor a MAC")]
    InvalidTrailer {
        /// Where the unexplained octets start.
        offset: usize,
        /// How many octets there are.
        len: usize,
    },
}

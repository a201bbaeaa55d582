//! Extension fields and the legacy MAC trailer that may follow the header
//! (RFC 5905 section 7.5, RFC 7822, RFC 8915 section 5).
//!
//! See [`ExtensionFields`] for how the octets after the header are split.

use core::fmt;

use crate::Error;
use crate::debug::Hex;
use crate::packet::HEADER_LEN;

/// Minimum length of an extension field in octets, header included
/// (RFC 7822, section 3: "four words (16 octets)").
pub const EXTENSION_FIELD_MIN_LEN: usize = 16;

/// Minimum length of the last extension field of an NTPv4 packet that has
/// no MAC (RFC 7822, section 7.5.1.4: "at least 28 octets"). The walk
/// accepts a shorter last field when what is left cannot be a MAC (16
/// octets): it is unambiguous, and rejecting it would gain nothing.
pub const V4_LAST_FIELD_MIN_LEN: usize = 28;

/// Length of a crypto-NAK: a key identifier without a digest
/// (RFC 5905, section 7.3 and section 9.2 `crypto-NAK`).
pub const CRYPTO_NAK_LEN: usize = 4;

/// Lengths of an NTPv4 MAC, key identifier included: 4 + 16 (MD5,
/// AES-128-CMAC per RFC 8573) and 4 + 20 (SHA-1). RFC 7822,
/// section 7.5.1.3, caps a MAC without extension fields at 24 octets.
pub const V4_MAC_LENS: [usize; 2] = [20, 24];

/// Shortest digest accepted in an NTPv1 to NTPv3 MAC: the 64-bit DES-CBC
/// digest of RFC 1305, appendix C.
pub const LEGACY_MIN_DIGEST_LEN: usize = 8;

/// Longest digest accepted in an NTPv1 to NTPv3 MAC: 64 octets, the size
/// of a SHA-512 digest, the longest in use with symmetric keys. NTPv3
/// predates RFC 7822's 24-octet cap, and real NTPv3 peers send digests
/// longer than 20 octets.
pub const LEGACY_MAX_DIGEST_LEN: usize = 64;

/// The type of an extension field (IANA "NTP Extension Field Types"
/// registry). The NTS types of RFC 8915, section 5 are named; anything else
/// is [`ExtensionFieldType::Unknown`], which is data, not an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ExtensionFieldType {
    /// 0x0104: Unique Identifier (RFC 8915, section 5.3).
    UniqueIdentifier,
    /// 0x0204: NTS Cookie (RFC 8915, section 5.4).
    NtsCookie,
    /// 0x0304: NTS Cookie Placeholder (RFC 8915, section 5.5).
    NtsCookiePlaceholder,
    /// 0x0404: NTS Authenticator and Encrypted Extension Fields
    /// (RFC 8915, section 5.6).
    NtsAuthenticator,
    /// Any other type.
    Unknown(u16),
}

impl ExtensionFieldType {
    /// Decodes a 16-bit field type.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u16) -> Self {
        match bits {
            0x0104 => Self::UniqueIdentifier,
            0x0204 => Self::NtsCookie,
            0x0304 => Self::NtsCookiePlaceholder,
            0x0404 => Self::NtsAuthenticator,
            other => Self::Unknown(other),
        }
    }

    /// The 16-bit wire value.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u16 {
        match self {
            Self::UniqueIdentifier => 0x0104,
            Self::NtsCookie => 0x0204,
            Self::NtsCookiePlaceholder => 0x0304,
            Self::NtsAuthenticator => 0x0404,
            Self::Unknown(bits) => bits,
        }
    }
}

impl From<u16> for ExtensionFieldType {
    fn from(bits: u16) -> Self {
        Self::from_bits(bits)
    }
}

impl From<ExtensionFieldType> for u16 {
    fn from(field_type: ExtensionFieldType) -> Self {
        field_type.to_bits()
    }
}

impl fmt::Display for ExtensionFieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UniqueIdentifier => f.write_str("Unique Identifier"),
            Self::NtsCookie => f.write_str("NTS Cookie"),
            Self::NtsCookiePlaceholder => f.write_str("NTS Cookie Placeholder"),
            Self::NtsAuthenticator => {
                f.write_str("NTS Authenticator and Encrypted Extension Fields")
            }
            Self::Unknown(bits) => write!(f, "unknown type {bits:#06x}"),
        }
    }
}

/// One extension field, borrowed from the packet (RFC 7822, section 3,
/// figure 14).
///
/// `Debug` shows the offset, the type, the length and the value in
/// hexadecimal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtensionField<'a> {
    offset: usize,
    bytes: &'a [u8],
}

impl<'a> ExtensionField<'a> {
    /// The field type.
    #[inline]
    #[must_use]
    pub fn field_type(&self) -> ExtensionFieldType {
        ExtensionFieldType::from_bits(self.raw_type())
    }

    /// The raw 16-bit field type.
    #[inline]
    #[must_use]
    pub fn raw_type(&self) -> u16 {
        match self.bytes {
            [high, low, ..] => u16::from_be_bytes([*high, *low]),
            _ => 0,
        }
    }

    /// The whole field length in octets, header and padding included (the
    /// Length field).
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a field is at least 16 octets long.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The value after the 4-octet type and length, padding included.
    #[inline]
    #[must_use]
    pub fn value(&self) -> &'a [u8] {
        self.bytes.get(4..).unwrap_or(&[])
    }

    /// The whole field, header included.
    #[inline]
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Where the field starts, counted from the first octet of the packet.
    #[inline]
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// A legacy MAC: key identifier and message digest (RFC 5905, section 7.3,
/// figure 8, and section 7.5), borrowed from the packet.
///
/// `Debug` shows the digest in hexadecimal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac<'a> {
    /// Where the MAC starts, counted from the first octet of the packet.
    /// Everything before it is what the digest covers.
    pub offset: usize,
    /// The key identifier.
    pub key_id: u32,
    /// The digest.
    pub digest: &'a [u8],
}

impl fmt::Debug for ExtensionField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionField")
            .field("offset", &self.offset)
            .field("field_type", &self.field_type())
            .field("len", &self.len())
            .field("value", &Hex(self.value()))
            .finish()
    }
}

impl fmt::Debug for Mac<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mac")
            .field("offset", &self.offset)
            .field("key_id", &self.key_id)
            .field("digest", &Hex(self.digest))
            .finish()
    }
}

/// One item after the header: an extension field, a MAC or a crypto-NAK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrailerItem<'a> {
    /// An extension field.
    Field(ExtensionField<'a>),
    /// A MAC, always the last item.
    Mac(Mac<'a>),
    /// A crypto-NAK: a key identifier (normally zero) without a digest,
    /// sent when authentication failed (RFC 5905, section 7.3). Always the
    /// last item.
    CryptoNak {
        /// Where the crypto-NAK starts, counted from the first octet of the
        /// packet.
        offset: usize,
        /// The key identifier.
        key_id: u32,
    },
}

/// A zero-copy walk over the extension fields and the MAC that follow the
/// header.
///
/// # How the octets after the header are split
///
/// An NTPv4 packet may carry extension fields and then a MAC; the MAC has
/// no type or length of its own, so it is recognised by what is left
/// (RFC 7822, sections 3 and 7.5.1):
///
/// - nothing left: the packet ends;
/// - exactly 4, 20 or 24 octets left ([`CRYPTO_NAK_LEN`], [`V4_MAC_LENS`]):
///   a crypto-NAK (key id only) or a MAC (key id plus a 16-octet MD5 or
///   AES-CMAC digest, or a 20-octet SHA-1 digest). RFC 7822 section
///   7.5.1.4 requires the last extension field of a packet without a MAC to
///   be at least [`V4_LAST_FIELD_MIN_LEN`] octets, which is what makes this
///   unambiguous;
/// - anything else: an extension field, whose length must be at least
///   [`EXTENSION_FIELD_MIN_LEN`] octets, a multiple of four, and fit in
///   what is left.
///
/// Versions 1 to 3 have no extension fields: everything after the header
/// is a crypto-NAK or a MAC, and NTPv3 digests may be longer than 20 octets
/// (from [`LEGACY_MIN_DIGEST_LEN`] to [`LEGACY_MAX_DIGEST_LEN`]).
///
/// Each item is a `Result`: a malformed field ends the walk with an error,
/// after which the iterator returns `None`. The walk never panics and never
/// allocates.
#[derive(Clone, Debug)]
pub struct ExtensionFields<'a> {
    rest: &'a [u8],
    offset: usize,
    legacy: bool,
    done: bool,
}

impl<'a> ExtensionFields<'a> {
    /// Walks `payload`, the octets after the 48-octet header of a packet
    /// with version number `version` (versions 1 to 3 carry only a MAC;
    /// versions 0 and 4 to 7 are walked by the NTPv4 rules).
    #[inline]
    #[must_use]
    pub fn new(payload: &'a [u8], version: u8) -> Self {
        Self {
            rest: payload,
            offset: HEADER_LEN,
            legacy: matches!(version, 1..=3),
            done: false,
        }
    }

    /// Walks to the end and returns the MAC or crypto-NAK, if any.
    ///
    /// # Errors
    ///
    /// The first error met on the way.
    #[inline]
    pub fn trailer(self) -> Result<Option<TrailerItem<'a>>, Error> {
        let mut last = None;
        for item in self {
            match item? {
                TrailerItem::Field(_) => {}
                end => last = Some(end),
            }
        }
        Ok(last)
    }

    #[inline]
    fn mac(&mut self) -> Option<TrailerItem<'a>> {
        let (key_id, digest) = self.rest.split_first_chunk::<4>()?;
        let key_id = u32::from_be_bytes(*key_id);
        let offset = self.offset;
        self.done = true;
        Some(if digest.is_empty() {
            TrailerItem::CryptoNak { offset, key_id }
        } else {
            TrailerItem::Mac(Mac {
                offset,
                key_id,
                digest,
            })
        })
    }

    #[inline]
    fn fail(&mut self, error: Error) -> Option<Result<TrailerItem<'a>, Error>> {
        self.done = true;
        Some(Err(error))
    }

    #[inline]
    fn is_mac_len(&self, len: usize) -> bool {
        if self.legacy {
            len == CRYPTO_NAK_LEN
                || ((CRYPTO_NAK_LEN + LEGACY_MIN_DIGEST_LEN
                    ..=CRYPTO_NAK_LEN + LEGACY_MAX_DIGEST_LEN)
                    .contains(&len)
                    && len % 4 == 0)
        } else {
            len == CRYPTO_NAK_LEN || V4_MAC_LENS.contains(&len)
        }
    }
}

impl<'a> Iterator for ExtensionFields<'a> {
    type Item = Result<TrailerItem<'a>, Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            self.done = true;
            return None;
        }
        let available = self.rest.len();
        if self.is_mac_len(available) {
            return self.mac().map(Ok);
        }
        let offset = self.offset;
        let invalid = Error::InvalidTrailer {
            offset,
            len: available,
        };
        if self.legacy {
            return self.fail(invalid);
        }
        let Some(&[_, _, len_high, len_low]) = self.rest.first_chunk::<4>() else {
            return self.fail(invalid);
        };
        let length = u16::from_be_bytes([len_high, len_low]);
        let len = usize::from(length);
        if len < EXTENSION_FIELD_MIN_LEN {
            return self.fail(Error::ExtensionTooShort { offset, length });
        }
        if len % 4 != 0 {
            return self.fail(Error::ExtensionMisaligned { offset, length });
        }
        let Some((bytes, rest)) = self.rest.split_at_checked(len) else {
            return self.fail(Error::ExtensionOverrun {
                offset,
                length,
                available,
            });
        };
        self.rest = rest;
        self.offset = offset + len;
        Some(Ok(TrailerItem::Field(ExtensionField { offset, bytes })))
    }
}

impl core::iter::FusedIterator for ExtensionFields<'_> {}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use super::*;

    fn field(field_type: u16, len: usize) -> Vec<u8> {
        let mut bytes = vec![0x5a; len];
        bytes[..2].copy_from_slice(&field_type.to_be_bytes());
        bytes[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        bytes
    }

    fn walk(payload: &[u8], version: u8) -> Vec<Result<TrailerItem<'_>, Error>> {
        ExtensionFields::new(payload, version).collect()
    }

    #[test]
    fn empty_payload_has_no_items() {
        assert!(walk(&[], 4).is_empty());
        assert_eq!(ExtensionFields::new(&[], 4).trailer(), Ok(None));
    }

    #[test]
    fn fields_then_mac() {
        let mut payload = field(0x0104, 36);
        payload.extend(field(0x7777, 16));
        payload.extend([0, 0, 0, 9]);
        payload.extend([0xcc; 16]);
        let items = walk(&payload, 4);
        assert_eq!(items.len(), 3);
        let Ok(TrailerItem::Field(first)) = items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(first.field_type(), ExtensionFieldType::UniqueIdentifier);
        assert_eq!(
            (first.offset(), first.len(), first.value().len()),
            (48, 36, 32)
        );
        let Ok(TrailerItem::Field(second)) = items[1] else {
            panic!("{items:?}")
        };
        assert_eq!(second.field_type(), ExtensionFieldType::Unknown(0x7777));
        assert_eq!(second.offset(), 84);
        assert_eq!(
            items[2],
            Ok(TrailerItem::Mac(Mac {
                offset: 100,
                key_id: 9,
                digest: &[0xcc; 16]
            }))
        );
    }

    #[test]
    fn debug_shows_octets_in_hex() {
        use std::format;

        let mut payload = field(0x0104, 16);
        payload.extend_from_slice(&[0, 0, 0, 7]);
        payload.extend_from_slice(&[0xab; 20]);
        let mut walk = ExtensionFields::new(&payload, 4);
        let first = walk.next().unwrap().unwrap();
        let TrailerItem::Field(first) = first else {
            panic!("{first:?}");
        };
        assert_eq!(
            format!("{first:?}"),
            format!(
                "ExtensionField {{ offset: 48, field_type: {:?}, len: 16, value: {} }}",
                ExtensionFieldType::from_bits(0x0104),
                "5a".repeat(12)
            )
        );
        let mac = walk.next().unwrap().unwrap();
        assert_eq!(
            format!("{mac:?}"),
            format!(
                "Mac(Mac {{ offset: 64, key_id: 7, digest: {} }})",
                "ab".repeat(20)
            )
        );
    }

    #[test]
    fn mac_lengths_for_v4() {
        for digest in [16usize, 20] {
            let mut payload = vec![0, 0, 0, 1];
            payload.extend(vec![0xdd; digest]);
            let Ok(Some(TrailerItem::Mac(mac))) = ExtensionFields::new(&payload, 4).trailer()
            else {
                panic!("digest {digest}")
            };
            assert_eq!((mac.key_id, mac.digest.len(), mac.offset), (1, digest, 48));
        }
        assert_eq!(
            walk(&[0, 0, 0, 0], 4),
            vec![Ok(TrailerItem::CryptoNak {
                offset: 48,
                key_id: 0
            })]
        );
        // A 36-octet trailer is neither a v4 MAC nor a valid field here.
        let mut long = vec![0, 0, 0, 1];
        long.extend([0xdd; 32]);
        assert_eq!(
            walk(&long, 4),
            vec![Err(Error::ExtensionTooShort {
                offset: 48,
                length: 1
            })]
        );
    }

    #[test]
    fn legacy_versions_carry_only_a_mac_of_any_usual_length() {
        for version in 1..=3 {
            for digest in (8..=64).step_by(4) {
                let mut payload = vec![0, 0, 0, 5];
                payload.extend(vec![0xee; digest]);
                let trailer = ExtensionFields::new(&payload, version).trailer();
                let Ok(Some(TrailerItem::Mac(mac))) = trailer else {
                    panic!("v{version} digest {digest}: {trailer:?}")
                };
                assert_eq!(mac.digest.len(), digest);
            }
            for bad in [1usize, 2, 3, 5, 8, 10, 14, 19, 72, 100] {
                assert_eq!(
                    walk(&vec![0; bad], version),
                    vec![Err(Error::InvalidTrailer {
                        offset: 48,
                        len: bad
                    })],
                    "v{version} len {bad}"
                );
            }
        }
    }

    #[test]
    fn malformed_fields_are_errors_and_end_the_walk() {
        let mut too_short = field(0x0104, 16);
        too_short[2..4].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(
            walk(&too_short, 4),
            vec![Err(Error::ExtensionTooShort {
                offset: 48,
                length: 12
            })]
        );

        let mut misaligned = field(0x0104, 32);
        misaligned[2..4].copy_from_slice(&30u16.to_be_bytes());
        assert_eq!(
            walk(&misaligned, 4),
            vec![Err(Error::ExtensionMisaligned {
                offset: 48,
                length: 30
            })]
        );

        let mut overrun = field(0x0104, 32);
        overrun[2..4].copy_from_slice(&64u16.to_be_bytes());
        assert_eq!(
            walk(&overrun, 4),
            vec![Err(Error::ExtensionOverrun {
                offset: 48,
                length: 64,
                available: 32
            })]
        );

        let mut dangling = field(0x0204, 28);
        dangling.extend([1, 2]);
        let items = walk(&dangling, 4);
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(Error::InvalidTrailer { offset: 76, len: 2 }));

        let mut fused = ExtensionFields::new(&overrun, 4);
        assert!(fused.next().unwrap().is_err());
        assert!(fused.next().is_none());
        assert!(fused.next().is_none());
    }

    #[test]
    fn truncated_walks_never_panic() {
        let mut payload = field(0x0104, 36);
        payload.extend(field(0x0404, 40));
        payload.extend([0, 0, 0, 1]);
        payload.extend([0xaa; 20]);
        for len in 0..=payload.len() {
            for version in 0..=7 {
                let _ = walk(&payload[..len], version);
            }
        }
        assert_eq!(walk(&payload, 4).len(), 3);
    }

    #[test]
    fn a_short_last_field_without_mac_is_accepted() {
        let payload = field(0x2005, 16);
        let items = walk(&payload, 4);
        assert_eq!(items.len(), 1);
        assert!(matches!(items[0], Ok(TrailerItem::Field(f)) if f.raw_type() == 0x2005));
    }

    #[test]
    fn field_types_round_trip() {
        for bits in [0x0104u16, 0x0204, 0x0304, 0x0404, 0, 0x2005, 0xffff] {
            assert_eq!(ExtensionFieldType::from_bits(bits).to_bits(), bits);
        }
        assert_eq!(
            ExtensionFieldType::from(0x0404),
            ExtensionFieldType::NtsAuthenticator
        );
    }
}

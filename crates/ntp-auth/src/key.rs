//! Key identifiers, key types and keys (RFC 5905 section 7.3, RFC 8573).

use core::fmt;
use core::num::NonZeroU32;

use zeroize::Zeroize;

use crate::KeyError;

/// The largest key identifier this crate accepts: 2^32 - 1, the whole
/// 32-bit field of the MAC (RFC 5905, section 7.3, figure 8).
///
/// chrony accepts every 32-bit key id; ntpd and NTPsec stop at
/// [`NTPD_MAX_KEY_ID`]. A building block has to talk to both, so a
/// [`KeyStore`](crate::KeyStore) takes the wider range and only the ntpd
/// key-file parser applies ntpd's limit. Key id 0 is never a key: it is the
/// key id of a crypto-NAK (RFC 5905, section 7.3), hence [`KeyId`] wraps a
/// [`NonZeroU32`].
pub const MAX_KEY_ID: u32 = u32::MAX;

/// The largest key identifier in an ntpd or NTPsec key file (ntpd's
/// `NTP_MAXKEY`, `ntp.keys(5)`: "between 1 and 65535").
pub const NTPD_MAX_KEY_ID: u32 = 65_535;

/// The longest key material accepted for the hash key types, in octets:
/// 64 octets, 512 bits, the output size of SHA-512, the longest digest
/// here. A longer key adds no strength to any of these MACs, and the bound
/// keeps a [`Key`] a fixed size without allocation. A longer key in a key
/// file is an error, never silently cut.
pub const MAX_KEY_LEN: usize = 64;

/// The longest digest of any key type, in octets (SHA-512).
pub const MAX_DIGEST_LEN: usize = 64;

/// The longest digest carried in an NTPv4 MAC, in octets: 20.
///
/// RFC 7822, section 7.5.1.3, caps an NTPv4 MAC at 24 octets (the 4-octet
/// key id plus 20), and RFC 5905's MAC was sized for SHA-1. SHA-2 digests
/// are longer; chrony 4.3 (`generate_symmetric_auth` in `ntp_auth.c`,
/// `NTP_MAX_V4_MAC_LENGTH`) and NTPsec truncate them to their first 20
/// octets in NTPv4 packets, and check a received NTPv4 MAC truncated the
/// same way. chrony's client prefers NTPv3 for such keys
/// (`NAU_GetSuggestedNtpVersion`): NTPv1 to NTPv3 packets carry the full
/// digest (up to [`MAX_DIGEST_LEN`]), which is what
/// [`KeyType::mac_digest_len`] returns for those versions.
pub const MAX_V4_DIGEST_LEN: usize = 20;

/// Length of the key identifier that starts every MAC, in octets
/// (RFC 5905, section 7.3).
pub const KEY_ID_LEN: usize = 4;

/// A key identifier: 1 to [`MAX_KEY_ID`] (0 is the crypto-NAK's and never
/// names a key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(NonZeroU32);

impl KeyId {
    /// The key id `id`, or `None` for 0.
    #[inline]
    #[must_use]
    pub const fn new(id: u32) -> Option<Self> {
        match NonZeroU32::new(id) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The 32-bit wire value.
    #[inline]
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

impl From<KeyId> for u32 {
    fn from(id: KeyId) -> Self {
        id.get()
    }
}

impl TryFrom<u32> for KeyId {
    type Error = KeyError;

    fn try_from(id: u32) -> Result<Self, KeyError> {
        Self::new(id).ok_or(KeyError::ZeroKeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The MAC algorithm of a key.
///
/// The hash types compute `H(key || message)` (RFC 5905, section 7.3 and
/// appendix A.2's `md5`; chrony and ntpd use the same construction with
/// any digest); the AES types compute `AES-CMAC(key, message)` (RFC 8573,
/// section 4, RFC 4493).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// MD5 (RFC 1321), 16-octet digest.
    Md5,
    /// SHA-1 (FIPS 180-4), 20-octet digest.
    Sha1,
    /// SHA-256, 32-octet digest (truncated to 20 in NTPv4).
    Sha256,
    /// SHA-384, 48-octet digest (truncated to 20 in NTPv4).
    Sha384,
    /// SHA-512, 64-octet digest (truncated to 20 in NTPv4).
    Sha512,
    /// AES-128-CMAC (RFC 8573's recommendation), 16-octet key and digest.
    Aes128Cmac,
    /// AES-256-CMAC, 32-octet key, 16-octet digest.
    Aes256Cmac,
}

impl KeyType {
    /// Every key type, in declaration order.
    pub const ALL: [Self; 7] = [
        Self::Md5,
        Self::Sha1,
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
        Self::Aes128Cmac,
        Self::Aes256Cmac,
    ];

    /// The length of the full digest, in octets.
    #[inline]
    #[must_use]
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Md5 | Self::Aes128Cmac | Self::Aes256Cmac => 16,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The length of the digest carried in the MAC of a packet of NTP
    /// version `version`: the full digest in NTPv1 to NTPv3, at most
    /// [`MAX_V4_DIGEST_LEN`] otherwise (as chrony and NTPsec do; see
    /// there).
    #[inline]
    #[must_use]
    pub const fn mac_digest_len(self, version: u8) -> usize {
        let full = self.digest_len();
        if matches!(version, 1..=3) || full <= MAX_V4_DIGEST_LEN {
            full
        } else {
            MAX_V4_DIGEST_LEN
        }
    }

    /// The key length the type requires, if it requires one: 16 octets for
    /// AES-128-CMAC, 32 for AES-256-CMAC. Hash keys may be 1 to
    /// [`MAX_KEY_LEN`] octets long.
    #[inline]
    #[must_use]
    pub const fn required_key_len(self) -> Option<usize> {
        match self {
            Self::Aes128Cmac => Some(16),
            Self::Aes256Cmac => Some(32),
            Self::Md5 | Self::Sha1 | Self::Sha256 | Self::Sha384 | Self::Sha512 => None,
        }
    }

    /// chrony's name of the type in a key file (`MD5`, `SHA1`, `SHA256`,
    /// `SHA384`, `SHA512`, `AES128`, `AES256`).
    #[inline]
    #[must_use]
    pub const fn chrony_name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha384 => "SHA384",
            Self::Sha512 => "SHA512",
            Self::Aes128Cmac => "AES128",
            Self::Aes256Cmac => "AES256",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
            Self::Aes128Cmac => "AES-128-CMAC",
            Self::Aes256Cmac => "AES-256-CMAC",
        })
    }
}

/// The secret octets, typed so that each algorithm gets a key of the size
/// it needs without a runtime length check.
#[derive(Clone)]
pub(crate) enum Secret {
    Hash {
        bytes: [u8; MAX_KEY_LEN],
        len: usize,
    },
    Aes128([u8; 16]),
    Aes256([u8; 32]),
}

impl Secret {
    /// The key octets of a hash key (empty for the AES keys, which never
    /// ask).
    #[inline]
    pub(crate) fn hash_key(&self) -> &[u8] {
        match self {
            Self::Hash { bytes, len } => bytes.get(..*len).unwrap_or(&[]),
            Self::Aes128(_) | Self::Aes256(_) => &[],
        }
    }

    /// Whether `material` is a secret of type `key_type`: the errors of
    /// [`Key::new`], in its order.
    pub(crate) fn check(key_type: KeyType, material: &[u8]) -> Result<(), KeyError> {
        let len = material.len();
        if len == 0 {
            return Err(KeyError::Empty);
        }
        match key_type.required_key_len() {
            Some(required) if required != len => Err(KeyError::WrongLength { key_type, len }),
            Some(_) => Ok(()),
            None if len > MAX_KEY_LEN => Err(KeyError::TooLong { len }),
            None => Ok(()),
        }
    }

    /// An all-zero secret of type `key_type` and `len` octets (at most
    /// [`MAX_KEY_LEN`]; an AES key has its cipher's length whatever
    /// `len` says), to be filled in place.
    fn zeroed(key_type: KeyType, len: usize) -> Self {
        match key_type {
            KeyType::Aes128Cmac => Self::Aes128([0; 16]),
            KeyType::Aes256Cmac => Self::Aes256([0; 32]),
            KeyType::Md5 | KeyType::Sha1 | KeyType::Sha256 | KeyType::Sha384 | KeyType::Sha512 => {
                Self::Hash {
                    bytes: [0; MAX_KEY_LEN],
                    len: len.min(MAX_KEY_LEN),
                }
            }
        }
    }

    /// Every octet of the secret, to write.
    fn octets_mut(&mut self) -> &mut [u8] {
        match self {
            Self::Hash { bytes, len } => bytes.get_mut(..*len).unwrap_or(&mut []),
            Self::Aes128(bytes) => bytes,
            Self::Aes256(bytes) => bytes,
        }
    }
}

/// A symmetric key: id, type and secret.
///
/// The secret never appears in `Debug` output (it shows `<redacted>`) and
/// is overwritten with zeros when the key is dropped. Moves of a `Key`
/// (returning it by value, inserting it into a store) are plain memory
/// copies the compiler may leave behind, unwiped; keep keys in one place,
/// such as a [`KeyStore`](crate::KeyStore), to keep that window small.
/// [`KeyStore::insert_with`](crate::KeyStore::insert_with) builds a key
/// in its slot of the store, so the key is never moved at all, and the
/// key-file parsers
/// ([`KeyFileFormat::parse_into`](crate::KeyFileFormat::parse_into))
/// use it.
#[derive(Clone)]
pub struct Key {
    id: KeyId,
    key_type: KeyType,
    pub(crate) secret: Secret,
}

impl Key {
    /// A key of type `key_type` with secret `material`.
    ///
    /// # Errors
    ///
    /// [`KeyError::Empty`] for an empty secret, [`KeyError::TooLong`] for a
    /// hash key over [`MAX_KEY_LEN`] octets, [`KeyError::WrongLength`] for
    /// an AES key of the wrong size.
    pub fn new(id: KeyId, key_type: KeyType, material: &[u8]) -> Result<Self, KeyError> {
        Secret::check(key_type, material)?;
        // The key is made with a zero secret and filled in place: no
        // array of key octets is built on the side and moved in (which
        // would leave an unwiped copy behind).
        let mut key = Self::zeroed(id, key_type, material.len());
        key.fill(material);
        Ok(key)
    }

    /// A key of type `key_type` whose `len`-octet secret is all zeros,
    /// for [`fill`](Self::fill) once it is where it stays.
    pub(crate) fn zeroed(id: KeyId, key_type: KeyType, len: usize) -> Self {
        Self {
            id,
            key_type,
            secret: Secret::zeroed(key_type, len),
        }
    }

    /// Copies `material`, already [checked](Secret::check) for the key's
    /// type, over the secret of a [`zeroed`](Self::zeroed) key of its
    /// length, where the key lies.
    pub(crate) fn fill(&mut self, material: &[u8]) {
        for (octet, from) in self.secret.octets_mut().iter_mut().zip(material) {
            *octet = *from;
        }
    }

    /// The key id.
    #[inline]
    #[must_use]
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key type.
    #[inline]
    #[must_use]
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The length of the secret in octets.
    #[inline]
    #[must_use]
    pub fn secret_len(&self) -> usize {
        match &self.secret {
            Secret::Hash { len, .. } => *len,
            Secret::Aes128(bytes) => bytes.len(),
            Secret::Aes256(bytes) => bytes.len(),
        }
    }
}

impl Key {
    /// Every octet of the secret, whatever the type.
    fn secret_octets(&self) -> &[u8] {
        match &self.secret {
            Secret::Hash { bytes, len } => bytes.get(..*len).unwrap_or(&[]),
            Secret::Aes128(bytes) => bytes,
            Secret::Aes256(bytes) => bytes,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("key_type", &self.key_type)
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

impl PartialEq for Key {
    /// Same id, type and secret; the secrets are compared in constant
    /// time (`subtle`), so comparing keys reveals nothing of their octets
    /// through timing.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        let (ours, theirs) = (self.secret_octets(), other.secret_octets());
        self.id == other.id
            && self.key_type == other.key_type
            && ours.len() == theirs.len()
            && bool::from(ours.ct_eq(theirs))
    }
}

impl Eq for Key {}

impl Drop for Key {
    fn drop(&mut self) {
        match &mut self.secret {
            Secret::Hash { bytes, len } => {
                bytes.zeroize();
                len.zeroize();
            }
            Secret::Aes128(bytes) => bytes.zeroize(),
            Secret::Aes256(bytes) => bytes.zeroize(),
        }
    }
}

impl zeroize::ZeroizeOnDrop for Key {}

#[cfg(test)]
mod eq_tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        reason = "tests"
    )]

    use super::*;

    #[test]
    fn keys_are_equal_only_with_the_same_id_type_and_secret() {
        let id = |n| KeyId::new(n).unwrap();
        let md5 = Key::new(id(1), KeyType::Md5, b"secret").unwrap();
        assert_eq!(md5, md5.clone());
        assert_ne!(md5, Key::new(id(2), KeyType::Md5, b"secret").unwrap());
        assert_ne!(md5, Key::new(id(1), KeyType::Sha1, b"secret").unwrap());
        assert_ne!(md5, Key::new(id(1), KeyType::Md5, b"secreT").unwrap());
        assert_ne!(md5, Key::new(id(1), KeyType::Md5, b"secret2").unwrap());
        let aes = Key::new(id(1), KeyType::Aes128Cmac, &[7; 16]).unwrap();
        assert_eq!(aes, aes.clone());
        assert_ne!(aes, Key::new(id(1), KeyType::Aes128Cmac, &[8; 16]).unwrap());
    }

    #[test]
    fn new_checks_the_length_for_the_type_and_keeps_every_octet() {
        let id = KeyId::new(1).unwrap();
        for key_type in KeyType::ALL {
            assert_eq!(Key::new(id, key_type, &[]), Err(KeyError::Empty));
        }
        for (key_type, len) in [(KeyType::Aes128Cmac, 16), (KeyType::Aes256Cmac, 32)] {
            for wrong in [1, len - 1, len + 1, MAX_KEY_LEN] {
                assert_eq!(
                    Key::new(id, key_type, &[1; MAX_KEY_LEN][..wrong]),
                    Err(KeyError::WrongLength {
                        key_type,
                        len: wrong
                    })
                );
            }
        }
        assert_eq!(
            Key::new(id, KeyType::Sha512, &[1; MAX_KEY_LEN + 1]),
            Err(KeyError::TooLong {
                len: MAX_KEY_LEN + 1
            })
        );
        // Distinct octets, so a shifted or partial copy would show.
        let material: [u8; MAX_KEY_LEN] = core::array::from_fn(|i| i as u8 + 1);
        for (key_type, len) in [
            (KeyType::Md5, 1),
            (KeyType::Sha1, 20),
            (KeyType::Sha512, MAX_KEY_LEN),
            (KeyType::Aes128Cmac, 16),
            (KeyType::Aes256Cmac, 32),
        ] {
            let key = Key::new(id, key_type, &material[..len]).unwrap();
            assert_eq!(key.secret_octets(), &material[..len], "{key_type}");
            assert_eq!(key.secret_len(), len);
        }
    }
}

//! The types both halves of NTS share: the negotiated AEAD algorithm, the
//! session keys NTS-KE exports (RFC 8915 section 5.1) and the opaque
//! cookies (section 6).

use core::fmt;

use zeroize::Zeroize;

/// An AEAD algorithm from the IANA "AEAD Algorithms" registry (RFC 5116),
/// as NTS-KE negotiates it (RFC 8915 section 4.1.5).
///
/// [`AesSivCmac256`](Self::AesSivCmac256) is the one every implementation
/// must support (section 5.1); chrony, NTPsec and ntpd-rs all offer it,
/// and chrony 4.3 also offers AES-128-GCM-SIV (RFC 8452).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AeadAlgorithm {
    /// AEAD_AES_SIV_CMAC_256, IANA id 15 (RFC 5297): a 32-octet key.
    AesSivCmac256,
    /// AEAD_AES_SIV_CMAC_512, IANA id 17 (RFC 5297): a 64-octet key.
    AesSivCmac512,
    /// AEAD_AES_128_GCM_SIV, IANA id 30 (RFC 8452): a 16-octet key.
    Aes128GcmSiv,
}

impl AeadAlgorithm {
    /// Every algorithm this crate implements, in our order of preference
    /// (a server picks the first of these the client offers, section
    /// 4.1.5 leaves the choice to it).
    pub const ALL: [Self; 3] = [Self::AesSivCmac256, Self::Aes128GcmSiv, Self::AesSivCmac512];

    /// The IANA AEAD algorithm id.
    #[must_use]
    pub const fn id(self) -> u16 {
        match self {
            Self::AesSivCmac256 => 15,
            Self::AesSivCmac512 => 17,
            Self::Aes128GcmSiv => 30,
        }
    }

    /// The algorithm with IANA id `id`, if this crate implements it.
    #[must_use]
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            15 => Some(Self::AesSivCmac256),
            17 => Some(Self::AesSivCmac512),
            30 => Some(Self::Aes128GcmSiv),
            _ => None,
        }
    }

    /// The key length in octets (RFC 5297 section 6; RFC 8452 section 4).
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            Self::AesSivCmac256 => 32,
            Self::AesSivCmac512 => 64,
            Self::Aes128GcmSiv => 16,
        }
    }

    /// The nonce length this crate uses, in octets: 16 for the SIV modes
    /// (RFC 8915 section 5.6 asks for at least 16 random octets when the
    /// algorithm takes nonces of any length), 12 for AES-GCM-SIV (its only
    /// nonce length).
    #[must_use]
    pub const fn nonce_len(self) -> usize {
        match self {
            Self::AesSivCmac256 | Self::AesSivCmac512 => 16,
            Self::Aes128GcmSiv => 12,
        }
    }

    /// The length of the authentication tag the ciphertext carries.
    #[must_use]
    pub const fn tag_len(self) -> usize {
        16
    }
}

impl fmt::Display for AeadAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AesSivCmac256 => "AEAD_AES_SIV_CMAC_256",
            Self::AesSivCmac512 => "AEAD_AES_SIV_CMAC_512",
            Self::Aes128GcmSiv => "AEAD_AES_128_GCM_SIV",
        })
    }
}

/// The longest AEAD key, octets (AES-SIV-CMAC-512).
pub const MAX_KEY_LEN: usize = 64;

/// The NTS Next Protocol id of NTPv4 (RFC 8915 sections 4.1.2 and 7.7):
/// the only protocol this crate speaks.
pub const NEXT_PROTOCOL_NTPV4: u16 = 0;

/// One direction's key: the octets of the negotiated algorithm's key
/// length. Never printed, zeroed on drop, compared in constant time.
#[derive(Clone)]
pub struct AeadKey {
    bytes: [u8; MAX_KEY_LEN],
    len: usize,
}

impl AeadKey {
    /// A key from `bytes`; `None` if it is longer than [`MAX_KEY_LEN`].
    #[must_use]
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut key = Self {
            bytes: [0; MAX_KEY_LEN],
            len: bytes.len(),
        };
        key.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(key)
    }

    /// The key octets.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl PartialEq for AeadKey {
    /// Same length and same octets, compared in constant time (`subtle`):
    /// all [`MAX_KEY_LEN`] octets of both keys and both lengths are always
    /// looked at, so the time taken tells nothing of where two keys differ,
    /// nor of their lengths. The octets past a key's length are always
    /// zero ([`AeadKey::new`]), so they never make equal keys unequal.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        let same_len = self.len.ct_eq(&other.len);
        let same_octets = self.bytes.as_slice().ct_eq(other.bytes.as_slice());
        bool::from(same_len & same_octets)
    }
}

impl Eq for AeadKey {}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeadKey({} octets, <redacted>)", self.len)
    }
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for AeadKey {}

/// The keys of one NTS association, exported from the NTS-KE TLS session
/// (RFC 8915 section 5.1: label `EXPORTER-network-time-security`, context
/// = Next Protocol id, AEAD id, then 0x00 for client-to-server or 0x01 for
/// server-to-client) and sealed into every cookie. Equality compares the
/// keys in constant time ([`AeadKey`]'s `PartialEq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// The negotiated AEAD algorithm.
    pub algorithm: AeadAlgorithm,
    /// Client to server: the client seals its requests with it.
    pub c2s: AeadKey,
    /// Server to client: the server seals its responses with it.
    pub s2c: AeadKey,
}

/// The longest cookie this crate keeps or issues, octets. Cookies are
/// opaque to the client (RFC 8915 section 6); chrony's are 100 octets, ours
/// 72 to 168 depending on the AEAD ([`cookie_len`](crate::cookie::cookie_len),
/// 104 for AES-SIV-CMAC-256), and 256 leaves room for any server's.
pub const MAX_COOKIE_LEN: usize = 256;

/// One cookie: opaque octets from the server, at most
/// [`MAX_COOKIE_LEN`], kept without allocation. Its contents are not
/// secret (they travel in the clear) but are printed only by length.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie {
    bytes: [u8; MAX_COOKIE_LEN],
    len: usize,
}

impl Cookie {
    /// A cookie holding `bytes`; `None` if empty or longer than
    /// [`MAX_COOKIE_LEN`].
    #[must_use]
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return None;
        }
        let mut cookie = Self {
            bytes: [0; MAX_COOKIE_LEN],
            len: bytes.len(),
        };
        cookie.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(cookie)
    }

    /// The cookie's octets.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Its length in octets.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always false: a cookie is never empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie({} octets)", self.len)
    }
}

/// What an NTS-KE server uses to issue cookies (RFC 8915 section 6): given
/// the session keys of a new association, a cookie only the server can open
/// again. Implemented by [`cookie::CookieKeys`](crate::cookie); the trait
/// keeps the NTS-KE state machine apart from how cookies are sealed.
pub trait CookieIssuer {
    /// A new cookie holding `keys`, or `None` if none can be made (no
    /// current master key).
    fn issue(&mut self, keys: &SessionKeys) -> Option<Cookie>;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    #[test]
    fn algorithm_ids_round_trip() {
        for algorithm in AeadAlgorithm::ALL {
            assert_eq!(AeadAlgorithm::from_id(algorithm.id()), Some(algorithm));
        }
        assert_eq!(AeadAlgorithm::from_id(16), None);
    }

    #[test]
    fn keys_and_cookies_hold_their_octets_and_hide_keys() {
        let key = AeadKey::new(&[7; 32]).unwrap();
        assert_eq!(key.as_bytes(), &[7; 32]);
        assert!(!std::format!("{key:?}").contains('7'));
        assert!(AeadKey::new(&[0; 65]).is_none());
        let cookie = Cookie::new(&[1, 2, 3]).unwrap();
        assert_eq!(cookie.as_bytes(), &[1, 2, 3]);
        assert_eq!(cookie.len(), 3);
        assert!(Cookie::new(&[]).is_none());
        assert!(Cookie::new(&[0; MAX_COOKIE_LEN + 1]).is_none());
    }

    #[test]
    fn keys_are_equal_only_with_the_same_length_and_octets() {
        let key = AeadKey::new(&[7; 32]).unwrap();
        assert_eq!(key, key.clone());
        assert_eq!(key, AeadKey::new(&[7; 32]).unwrap());
        // Same length, one octet differs: first, middle, last.
        for at in [0, 15, 31] {
            let mut other = [7; 32];
            other[at] ^= 1;
            assert_ne!(key, AeadKey::new(&other).unwrap(), "octet {at}");
        }
        // A prefix, and a longer key that starts the same.
        assert_ne!(key, AeadKey::new(&[7; 16]).unwrap());
        assert_ne!(key, AeadKey::new(&[7; 64]).unwrap());
        // The padding is zero, so zero keys of two lengths differ only by
        // their lengths, and those count.
        assert_ne!(
            AeadKey::new(&[0; 16]).unwrap(),
            AeadKey::new(&[0; 32]).unwrap()
        );
        assert_eq!(AeadKey::new(&[]).unwrap(), AeadKey::new(&[]).unwrap());
        assert_ne!(AeadKey::new(&[]).unwrap(), AeadKey::new(&[0]).unwrap());

        let keys = |s2c: u8| SessionKeys {
            algorithm: AeadAlgorithm::AesSivCmac256,
            c2s: AeadKey::new(&[1; 32]).unwrap(),
            s2c: AeadKey::new(&[s2c; 32]).unwrap(),
        };
        assert_eq!(keys(2), keys(2));
        assert_ne!(keys(2), keys(3));
    }
}

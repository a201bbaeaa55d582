//! The server's cookies (RFC 8915 section 6): the session keys of an
//! association, sealed under a master key only the server holds, so the
//! server keeps no state per client.
//!
//! # Cookie format
//!
//! Our own (section 6 leaves it to the server; clients never look
//! inside, section 5.4), following the section's suggestion:
//!
//! ```text
//! key id (4) || nonce N (16) || AES-SIV-CMAC-256(K, N, P)
//! P = AEAD id (2) || reserved, zero (2) || C2S key || S2C key
//! ```
//!
//! - `key id`: the 32-bit identifier `I` of the master key `K`, big
//!   endian, in the clear, so the server finds the key.
//! - `N`: 16 random octets from the caller's generator.
//! - the ciphertext: the 16-octet synthetic IV (the tag), then `P`
//!   encrypted, with no associated data (RFC 5297 section 6, the layout of
//!   [`aead`](mod@crate::aead)).
//! - `P`: the IANA id of the negotiated AEAD (RFC 8915 section 4.1.5), two
//!   zero octets so that every cookie is a whole number of 4-octet words
//!   (an NTS Cookie field body is padded to a word, section 5.4 and RFC
//!   7822, so a cookie of any other length would not come back intact),
//!   then the two keys, C2S first.
//!
//! The length is [`COOKIE_OVERHEAD`] + 2 × the key length
//! ([`cookie_len`]): 104 octets for AEAD_AES_SIV_CMAC_256, 168 for
//! AEAD_AES_SIV_CMAC_512, 72 for AEAD_AES_128_GCM_SIV.
//!
//! # Master keys and rotation
//!
//! [`CookieKeys`] holds the current master key and up to `N - 1` previous
//! ones (section 6: rotate, say, daily; keep accepting cookies of keys not
//! yet erased, erase the rest for forward secrecy). [`CookieKeys::rotate`]
//! makes a new key current and drops the oldest beyond `N`; a dropped key
//! is zeroed, and its cookies are refused with
//! [`CookieError::UnknownKeyId`], which the NTP server answers with an
//! NTS NAK. Keys are never printed. Servers that share cookies (NTS-KE and
//! NTP servers, a cluster) must share the master keys and their ids; the
//! ratchet of section 6 (HKDF from the previous key) is left to the
//! caller, who passes the resulting octets to `rotate`.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use crate::aead::{self, TAG_LEN};
use crate::{AeadAlgorithm, AeadKey, Cookie, CookieIssuer, MAX_KEY_LEN, SessionKeys};

/// The AEAD sealing cookies (section 6 suggests one that resists nonce
/// reuse, such as this one).
pub const COOKIE_AEAD: AeadAlgorithm = AeadAlgorithm::AesSivCmac256;

/// The length of a master key, octets: an AES-SIV-CMAC-256 key.
pub const MASTER_KEY_LEN: usize = 32;

/// The length of a cookie's nonce, octets.
pub const COOKIE_NONCE_LEN: usize = 16;

/// How many master keys [`CookieKeys`] keeps unless told otherwise: the
/// current one and two previous ones, as chrony does.
pub const DEFAULT_KEPT_KEYS: usize = 3;

const KEY_ID_LEN: usize = 4;
const PLAINTEXT_HEADER_LEN: usize = 4;

/// The octets of a cookie beyond the two session keys: key id (4), nonce
/// (16), tag (16), AEAD id and reserved (4).
pub const COOKIE_OVERHEAD: usize = KEY_ID_LEN + COOKIE_NONCE_LEN + TAG_LEN + PLAINTEXT_HEADER_LEN;

/// The length of our cookies for an association using `algorithm`.
#[must_use]
pub const fn cookie_len(algorithm: AeadAlgorithm) -> usize {
    COOKIE_OVERHEAD + 2 * algorithm.key_len()
}

/// The longest of our cookies (AEAD_AES_SIV_CMAC_512), octets.
pub const MAX_OUR_COOKIE_LEN: usize = COOKIE_OVERHEAD + 2 * MAX_KEY_LEN;

const MAX_PLAINTEXT_LEN: usize = PLAINTEXT_HEADER_LEN + 2 * MAX_KEY_LEN;

/// Why a cookie could not be made or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// The cookie has none of the lengths of our cookies.
    #[error("a {len} octet cookie is none of ours")]
    Length {
        /// Its length.
        len: usize,
    },
    /// No master key with this id (never had, or erased by rotation).
    #[error("no master key with id {0:#010x}")]
    UnknownKeyId(u32),
    /// The cookie's tag does not match: forged, damaged, or sealed under
    /// another key with the same id.
    #[error("cookie authentication failed")]
    Authentication,
    /// The cookie is authentic but its contents are not what we seal: an
    /// AEAD id we do not know, non-zero reserved octets, keys of the wrong
    /// length for the algorithm.
    #[error("authentic cookie with contents we do not seal")]
    Contents,
    /// The session keys do not have their algorithm's key length.
    #[error("session keys of the wrong length for their algorithm")]
    SessionKeyLength,
    /// A master key with this id is already held.
    #[error("master key id {0:#010x} is already held")]
    DuplicateKeyId(u32),
    /// The output buffer is shorter than the cookie.
    #[error("no room for the cookie")]
    BufferTooShort,
}

/// One master key: id and secret, the secret zeroed on drop by
/// [`AeadKey`].
#[derive(Clone)]
struct MasterKey {
    id: u32,
    key: AeadKey,
}

/// The server's master keys for sealing and opening cookies (RFC 8915
/// section 6): the current key, which seals every new cookie, and up to
/// `N - 1` previous keys whose cookies are still accepted (`N` is at least
/// 1; [`DEFAULT_KEPT_KEYS`] unless written out: `let keys: CookieKeys =
/// ...` or `CookieKeys::<5>::new(...)`).
///
/// Secrets are never printed (`Debug` shows the key ids) and are zeroed
/// when dropped or rotated out. Cloning copies the secrets, for an NTS-KE
/// server and an NTP server that run apart.
#[derive(Clone)]
pub struct CookieKeys<const N: usize = DEFAULT_KEPT_KEYS> {
    /// Newest first: `keys[0]` is the current key.
    keys: [Option<MasterKey>; N],
}

impl<const N: usize> CookieKeys<N> {
    const AT_LEAST_ONE: () = assert!(N > 0, "CookieKeys must keep at least one key");

    /// Keys holding one master key, current, with id `key_id` and secret
    /// `material` (32 octets from a cryptographic generator, or derived).
    #[must_use]
    pub fn new(key_id: u32, material: &[u8; MASTER_KEY_LEN]) -> Self {
        let () = Self::AT_LEAST_ONE;
        let mut keys = Self {
            keys: core::array::from_fn(|_| None),
        };
        keys.push(key_id, material);
        keys
    }

    /// Keys holding one master key drawn from `rng`, with a random id.
    #[must_use]
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut material = [0; MASTER_KEY_LEN];
        rng.fill_bytes(&mut material);
        let keys = Self::new(rng.next_u32(), &material);
        material.zeroize();
        keys
    }

    fn push(&mut self, key_id: u32, material: &[u8; MASTER_KEY_LEN]) {
        self.keys.rotate_right(1);
        if let Some(first) = self.keys.first_mut() {
            // Replaces (and so zeroes) the oldest key, rotated to the front.
            *first = AeadKey::new(material).map(|key| MasterKey { id: key_id, key });
        }
    }

    /// Makes `material` the current master key, with id `key_id`; the key
    /// that was current stays accepted, and the oldest beyond `N` keys is
    /// dropped and zeroed (section 6).
    ///
    /// # Errors
    ///
    /// [`CookieError::DuplicateKeyId`] if a key with this id is held
    /// (cookies would be ambiguous); nothing changes then.
    pub fn rotate(
        &mut self,
        key_id: u32,
        material: &[u8; MASTER_KEY_LEN],
    ) -> Result<(), CookieError> {
        if self.contains(key_id) {
            return Err(CookieError::DuplicateKeyId(key_id));
        }
        self.push(key_id, material);
        Ok(())
    }

    /// [`rotate`](Self::rotate) to a key drawn from `rng`, with a random
    /// id none of the held keys has; returns the new key's id.
    pub fn rotate_random<R: RngCore + CryptoRng>(&mut self, rng: &mut R) -> u32 {
        let mut key_id = rng.next_u32();
        while self.contains(key_id) {
            key_id = rng.next_u32();
        }
        let mut material = [0; MASTER_KEY_LEN];
        rng.fill_bytes(&mut material);
        self.push(key_id, &material);
        material.zeroize();
        key_id
    }

    /// The id of the current key, the one sealing new cookies.
    #[must_use]
    pub fn current_key_id(&self) -> u32 {
        self.current().map_or(0, |key| key.id)
    }

    /// The ids of the keys held, newest (current) first.
    pub fn key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().flatten().map(|key| key.id)
    }

    /// Whether a key with id `key_id` is held.
    #[must_use]
    pub fn contains(&self, key_id: u32) -> bool {
        self.key(key_id).is_some()
    }

    fn current(&self) -> Option<&MasterKey> {
        self.keys.first().and_then(Option::as_ref)
    }

    fn key(&self, key_id: u32) -> Option<&MasterKey> {
        self.keys.iter().flatten().find(|key| key.id == key_id)
    }

    /// Seals `keys` into a new cookie under the current master key, with a
    /// nonce from `rng`, written to the start of `out`; returns its length,
    /// [`cookie_len`]`(keys.algorithm)`. No allocation.
    ///
    /// # Errors
    ///
    /// [`CookieError::BufferTooShort`], [`CookieError::SessionKeyLength`].
    pub fn seal_into<R: RngCore + CryptoRng>(
        &self,
        keys: &SessionKeys,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, CookieError> {
        let algorithm = keys.algorithm;
        let key_len = algorithm.key_len();
        if keys.c2s.as_bytes().len() != key_len || keys.s2c.as_bytes().len() != key_len {
            return Err(CookieError::SessionKeyLength);
        }
        let master = self.current().ok_or(CookieError::UnknownKeyId(0))?;
        let len = cookie_len(algorithm);
        let cookie = out.get_mut(..len).ok_or(CookieError::BufferTooShort)?;
        let (key_id, rest) = cookie
            .split_first_chunk_mut::<KEY_ID_LEN>()
            .ok_or(CookieError::BufferTooShort)?;
        *key_id = master.id.to_be_bytes();
        let (nonce, ciphertext) = rest
            .split_first_chunk_mut::<COOKIE_NONCE_LEN>()
            .ok_or(CookieError::BufferTooShort)?;
        rng.fill_bytes(nonce);
        let plaintext = ciphertext
            .get_mut(aead::plaintext_offset(COOKIE_AEAD)..)
            .ok_or(CookieError::BufferTooShort)?;
        let [id_high, id_low] = algorithm.id().to_be_bytes();
        let fields: [&[u8]; 3] = [
            &[id_high, id_low, 0, 0],
            keys.c2s.as_bytes(),
            keys.s2c.as_bytes(),
        ];
        let mut at = 0;
        for field in fields {
            plaintext
                .get_mut(at..at + field.len())
                .ok_or(CookieError::BufferTooShort)?
                .copy_from_slice(field);
            at += field.len();
        }
        aead::seal_in_place(COOKIE_AEAD, &master.key, nonce, &[], ciphertext)
            .map_err(|_| CookieError::BufferTooShort)?;
        Ok(len)
    }

    /// [`seal_into`](Self::seal_into) a [`Cookie`].
    ///
    /// # Errors
    ///
    /// [`CookieError::SessionKeyLength`].
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        keys: &SessionKeys,
        rng: &mut R,
    ) -> Result<Cookie, CookieError> {
        let mut out = [0; MAX_OUR_COOKIE_LEN];
        let len = self.seal_into(keys, rng, &mut out)?;
        out.get(..len)
            .and_then(Cookie::new)
            .ok_or(CookieError::BufferTooShort)
    }

    /// Opens a cookie a client sent (section 6): finds the master key by
    /// id, checks the tag and returns the session keys sealed inside.
    ///
    /// # Errors
    ///
    /// [`CookieError::Length`], [`CookieError::UnknownKeyId`],
    /// [`CookieError::Authentication`], [`CookieError::Contents`]. The NTP
    /// server answers each with an NTS NAK (section 5.7).
    pub fn open(&self, cookie: &[u8]) -> Result<SessionKeys, CookieError> {
        let len = cookie.len();
        if !AeadAlgorithm::ALL
            .iter()
            .any(|&algorithm| cookie_len(algorithm) == len)
        {
            return Err(CookieError::Length { len });
        }
        let (key_id, rest) = cookie
            .split_first_chunk::<KEY_ID_LEN>()
            .ok_or(CookieError::Length { len })?;
        let key_id = u32::from_be_bytes(*key_id);
        let master = self.key(key_id).ok_or(CookieError::UnknownKeyId(key_id))?;
        let (nonce, ciphertext) = rest
            .split_first_chunk::<COOKIE_NONCE_LEN>()
            .ok_or(CookieError::Length { len })?;
        let mut scratch = [0; TAG_LEN + MAX_PLAINTEXT_LEN];
        let result = aead::open(
            COOKIE_AEAD,
            &master.key,
            nonce,
            &[],
            ciphertext,
            &mut scratch,
        )
        .map_err(|_| CookieError::Authentication)
        .and_then(|plaintext| parse_plaintext(plaintext));
        scratch.zeroize();
        result
    }

    /// An issuer of cookies under these keys with nonces from `rng`, for
    /// the NTS-KE server ([`CookieIssuer`]).
    pub fn issuer<R: RngCore + CryptoRng>(&self, rng: R) -> Issuer<'_, R, N> {
        Issuer { keys: self, rng }
    }
}

fn parse_plaintext(plaintext: &[u8]) -> Result<SessionKeys, CookieError> {
    let Some((&[id_high, id_low, 0, 0], keys)) = plaintext.split_first_chunk() else {
        return Err(CookieError::Contents);
    };
    let algorithm = AeadAlgorithm::from_id(u16::from_be_bytes([id_high, id_low]))
        .ok_or(CookieError::Contents)?;
    if keys.len() != 2 * algorithm.key_len() {
        return Err(CookieError::Contents);
    }
    let (c2s, s2c) = keys
        .split_at_checked(algorithm.key_len())
        .ok_or(CookieError::Contents)?;
    Ok(SessionKeys {
        algorithm,
        c2s: AeadKey::new(c2s).ok_or(CookieError::Contents)?,
        s2c: AeadKey::new(s2c).ok_or(CookieError::Contents)?,
    })
}

impl<const N: usize> fmt::Debug for CookieKeys<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Id(u32);
        impl fmt::Debug for Id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#010x}", self.0)
            }
        }
        struct Ids<'a, const N: usize>(&'a CookieKeys<N>);
        impl<const N: usize> fmt::Debug for Ids<'_, N> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.key_ids().map(Id)).finish()
            }
        }
        f.debug_struct("CookieKeys")
            .field("key_ids", &Ids(self))
            .finish_non_exhaustive()
    }
}

/// [`CookieKeys`] and a random generator: what the NTS-KE server needs to
/// hand out cookies through the shared [`CookieIssuer`] trait (RFC 8915
/// section 4.1.6). Made by [`CookieKeys::issuer`]; `R` may be a
/// generator or `&mut` one.
pub struct Issuer<'a, R, const N: usize = DEFAULT_KEPT_KEYS> {
    keys: &'a CookieKeys<N>,
    rng: R,
}

impl<R, const N: usize> fmt::Debug for Issuer<'_, R, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("keys", self.keys)
            .finish_non_exhaustive()
    }
}

impl<R: RngCore + CryptoRng, const N: usize> CookieIssuer for Issuer<'_, R, N> {
    fn issue(&mut self, keys: &SessionKeys) -> Option<Cookie> {
        self.keys.seal(keys, &mut self.rng).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn session(algorithm: AeadAlgorithm) -> SessionKeys {
        SessionKeys {
            algorithm,
            c2s: AeadKey::new(&[0xc2; 64][..algorithm.key_len()]).unwrap(),
            s2c: AeadKey::new(&[0x5c; 64][..algorithm.key_len()]).unwrap(),
        }
    }

    #[test]
    fn cookies_have_the_documented_layout_and_open() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let keys: CookieKeys = CookieKeys::new(0x0102_0304, &[7; 32]);
        for (algorithm, len) in [
            (AeadAlgorithm::AesSivCmac256, 104),
            (AeadAlgorithm::AesSivCmac512, 168),
            (AeadAlgorithm::Aes128GcmSiv, 72),
        ] {
            assert_eq!(cookie_len(algorithm), len);
            let cookie = keys.seal(&session(algorithm), &mut rng).unwrap();
            assert_eq!(cookie.len(), len);
            assert_eq!(cookie.len() % 4, 0);
            assert_eq!(&cookie.as_bytes()[..4], &[1, 2, 3, 4]);
            assert_eq!(keys.open(cookie.as_bytes()).unwrap(), session(algorithm));
            // The keys are not in the clear.
            let bytes = cookie.as_bytes();
            assert!(!bytes.windows(8).any(|w| w == [0xc2; 8] || w == [0x5c; 8]));
        }
        // Fresh nonces: two cookies for the same keys differ.
        let a = keys
            .seal(&session(AeadAlgorithm::AesSivCmac256), &mut rng)
            .unwrap();
        let b = keys
            .seal(&session(AeadAlgorithm::AesSivCmac256), &mut rng)
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn rotation_keeps_the_last_n_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut keys = CookieKeys::<2>::new(1, &[1; 32]);
        let first = keys
            .seal(&session(AeadAlgorithm::AesSivCmac256), &mut rng)
            .unwrap();
        keys.rotate(2, &[2; 32]).unwrap();
        assert_eq!(keys.current_key_id(), 2);
        let second = keys
            .seal(&session(AeadAlgorithm::AesSivCmac256), &mut rng)
            .unwrap();
        assert_eq!(&second.as_bytes()[..4], &2u32.to_be_bytes());
        assert!(keys.open(first.as_bytes()).is_ok(), "previous key accepted");
        assert_eq!(
            keys.rotate(1, &[9; 32]),
            Err(CookieError::DuplicateKeyId(1))
        );
        keys.rotate(3, &[3; 32]).unwrap();
        assert_eq!(keys.key_ids().collect::<std::vec::Vec<_>>(), [3, 2]);
        assert_eq!(
            keys.open(first.as_bytes()),
            Err(CookieError::UnknownKeyId(1))
        );
        assert!(keys.open(second.as_bytes()).is_ok());
        let id = keys.rotate_random(&mut rng);
        assert_eq!(keys.current_key_id(), id);
        assert_eq!(
            keys.open(second.as_bytes()),
            Err(CookieError::UnknownKeyId(2))
        );
    }

    #[test]
    fn bad_cookies_are_typed_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let keys: CookieKeys = CookieKeys::random(&mut rng);
        let cookie = keys
            .seal(&session(AeadAlgorithm::AesSivCmac256), &mut rng)
            .unwrap();
        let bytes = cookie.as_bytes();
        assert_eq!(
            keys.open(&bytes[..100]),
            Err(CookieError::Length { len: 100 })
        );
        assert_eq!(keys.open(&[]), Err(CookieError::Length { len: 0 }));
        for index in 4..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[index] ^= 0x20;
            assert_eq!(
                keys.open(&changed),
                Err(CookieError::Authentication),
                "{index}"
            );
        }
        let mut other_id = bytes.to_vec();
        other_id[0] ^= 1;
        assert!(matches!(
            keys.open(&other_id),
            Err(CookieError::UnknownKeyId(_))
        ));
        // Same id, other secret: not authentic.
        let other: CookieKeys = CookieKeys::new(keys.current_key_id(), &[0; 32]);
        assert_eq!(other.open(bytes), Err(CookieError::Authentication));
        let mut short = session(AeadAlgorithm::AesSivCmac256);
        short.s2c = AeadKey::new(&[1; 16]).unwrap();
        assert_eq!(
            keys.seal(&short, &mut rng),
            Err(CookieError::SessionKeyLength)
        );
        assert_eq!(
            keys.seal_into(
                &session(AeadAlgorithm::AesSivCmac256),
                &mut rng,
                &mut [0; 103]
            ),
            Err(CookieError::BufferTooShort)
        );
    }

    #[test]
    fn keys_are_never_printed_and_the_issuer_issues() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let keys: CookieKeys = CookieKeys::new(0xabcd, &[0x99; 32]);
        let text = std::format!("{keys:?}");
        assert_eq!(text, "CookieKeys { key_ids: [0x0000abcd], .. }");
        let mut issuer = keys.issuer(&mut rng);
        let cookie = issuer.issue(&session(AeadAlgorithm::Aes128GcmSiv)).unwrap();
        assert!(!std::format!("{issuer:?}").contains("99"));
        assert_eq!(
            keys.open(cookie.as_bytes()).unwrap(),
            session(AeadAlgorithm::Aes128GcmSiv)
        );
    }
}

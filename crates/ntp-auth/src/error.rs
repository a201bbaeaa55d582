//! The error types. None of them ever holds key material.

use crate::key::{KeyId, KeyType, MAX_KEY_LEN};

/// Why a key could not be built from its secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Key id 0 names no key: it is the key id of a crypto-NAK
    /// (RFC 5905, section 7.3).
    #[error("key id 0 is reserved for the crypto-NAK")]
    ZeroKeyId,
    /// The secret is empty.
    #[error("the key is empty")]
    Empty,
    /// A hash key longer than [`MAX_KEY_LEN`] octets.
    #[error("the key is {len} octets long, at most {MAX_KEY_LEN} are accepted")]
    TooLong {
        /// The secret's length in octets.
        len: usize,
    },
    /// An AES key whose length is not the cipher's key size (16 octets
    /// for AES-128, 32 for AES-256; RFC 8573 section 4).
    #[error("a {key_type} key must be {} octets long, not {len}", key_type.required_key_len().unwrap_or(0))]
    WrongLength {
        /// The key type.
        key_type: KeyType,
        /// The secret's length in octets.
        len: usize,
    },
}

/// Why a key could not be added to a [`KeyStore`](crate::KeyStore).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store already holds a key with this id.
    #[error("key id {0} is already in the store")]
    Duplicate(KeyId),
    /// The store holds as many keys as it can.
    #[error("the key store is full ({capacity} keys)")]
    Full {
        /// The store's capacity.
        capacity: usize,
    },
}

/// Why [`KeyStore::insert_with`](crate::KeyStore::insert_with) added no
/// key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The secret does not suit the key type, as for
    /// [`Key::new`](crate::Key::new).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The key could not be stored, as for
    /// [`KeyStore::insert`](crate::KeyStore::insert).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a packet could not be signed or did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The packet is shorter than the header, or the octets after it do
    /// not parse as extension fields and a MAC.
    #[error("malformed packet: {0}")]
    Malformed(#[from] ntp_proto::Error),
    /// The packet carries no MAC.
    #[error("the packet carries no MAC")]
    NoMac,
    /// The packet carries a crypto-NAK (a key id without a digest,
    /// RFC 5905 section 7.3): it is not authentic, whatever it says.
    #[error("the packet carries a crypto-NAK (key id {key_id})")]
    CryptoNak {
        /// The crypto-NAK's key id, normally 0.
        key_id: u32,
    },
    /// No key with this id is known (0 never is).
    #[error("unknown key id {0}")]
    UnknownKey(u32),
    /// The MAC names another key than the one expected.
    #[error("the MAC uses key id {found}, expected {expected}")]
    WrongKey {
        /// The key id expected.
        expected: KeyId,
        /// The key id in the MAC.
        found: u32,
    },
    /// The digest's length is not that of the key's MAC in this NTP
    /// version.
    #[error("the MAC with key id {key_id} has a {found}-octet digest, expected {expected}")]
    BadLength {
        /// The key id.
        key_id: KeyId,
        /// The digest length the key type gives in this version.
        expected: usize,
        /// The digest length in the packet.
        found: usize,
    },
    /// The digest does not match.
    #[error("the MAC with key id {key_id} does not match")]
    BadMac {
        /// The key id.
        key_id: KeyId,
    },
    /// The output buffer cannot hold the MAC.
    #[error("the buffer holds {available} octets, {needed} are needed")]
    BufferTooSmall {
        /// Octets needed.
        needed: usize,
        /// Octets available.
        available: usize,
    },
}

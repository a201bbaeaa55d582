//! Symmetric-key authentication for NTP: the MAC of RFC 5905 section 7.3
//! with MD5, SHA-1 and SHA-2 keys, AES-CMAC keys (RFC 8573), key stores
//! and key files.
//!
//! - [`Key`] is one key: a [`KeyId`], a [`KeyType`] and a secret that
//!   never shows in `Debug` and is zeroed on drop. [`Key::sign`] writes a
//!   MAC, [`Key::verify`] checks one in constant time.
//! - [`KeyStore`] holds up to `N` keys by id without allocation;
//!   [`KeyStore::verify`] finds the key a packet's MAC names (what a
//!   server does), [`KeyStore::sign`] and [`KeyStore::sign_in_place`]
//!   append a MAC with a given key.
//! - [`KeyFileFormat`] parses chrony's and ntpd/NTPsec's key files into a
//!   [`KeyStore`], all or nothing, with the line number and reason of the
//!   first bad line.
//!
//! # Key material in memory
//!
//! Every secret is zeroed when its [`Key`] drops, but a Rust move is a
//! memory copy that may leave an unwiped copy behind, and nothing can
//! zero it. So the key files are parsed without moving a key: each
//! line's secret is decoded into a buffer that is zeroed after the line
//! and then copied into its slot of the store
//! ([`KeyStore::insert_with`]). The `_into` forms,
//! [`KeyFileFormat::parse_into`] and [`KeyStore::load_into`], fill a
//! store the caller holds (in a `Box`, say, or a `static`) and are what
//! to use to leave no copy of a secret on the stack;
//! [`KeyFileFormat::parse`], [`KeyStore::load`] and the `from_*_keys`
//! functions return the store by value, a move of all its keys (some 88
//! octets a key). A failed `_into` call leaves the store empty, its old
//! keys zeroed.
//!
//! # The MAC
//!
//! A MAC follows the header and any extension fields and covers all of
//! them: a 4-octet key id, then the digest (RFC 5905 section 7.3,
//! figure 8; RFC 7822 section 7.5). The hash types compute
//! `H(key || packet)`, the AES types `AES-CMAC(key, packet)` (RFC 8573,
//! section 4). The trailer is split from the packet by `ntp-proto`'s
//! [`ExtensionFields`](ntp_proto::ExtensionFields) walk, so this crate
//! reads packets exactly as the codec does.
//!
//! # Choices
//!
//! - Key ids: 1 to [`MAX_KEY_ID`] (2^32 - 1) as chrony, a superset of
//!   ntpd's 1 to [`NTPD_MAX_KEY_ID`] (65535), which the ntpd key-file
//!   parser enforces. Key id 0 is the crypto-NAK's.
//! - Digest lengths: MD5 16 octets, SHA-1 20, AES-CMAC 16. SHA-256,
//!   SHA-384 and SHA-512 digests are truncated to [`MAX_V4_DIGEST_LEN`]
//!   (20) octets in NTPv4 packets and carried whole in NTPv1 to NTPv3
//!   packets, as chrony 4.3 and NTPsec do; see [`MAX_V4_DIGEST_LEN`].
//!   NTPv4 MACs longer than 24 octets (which chrony also accepts when they
//!   cannot be an extension field) are not recognised: RFC 7822 caps them
//!   at 24, and the codec follows the RFC.
//! - Storage: a fixed capacity ([`DEFAULT_CAPACITY`] keys unless chosen),
//!   sorted by id; lookups are binary searches and nothing on the packet
//!   path allocates.
//!
//! # Features
//!
//! - `std` (default): [`KeyStore::load`] and [`KeyStore::load_into`]
//!   read a key file from a path (at most [`MAX_KEY_FILE_LEN`] octets,
//!   zeroed once parsed); implies `alloc`.
//! - `alloc`: nothing of its own; passed on to `ntp-proto` and `zeroize`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "std", test))]
extern crate std;

mod error;
mod key;
mod keyfile;
mod mac;
mod store;

pub use error::{AuthError, InsertError, KeyError, StoreError};
pub use key::{
    KEY_ID_LEN, Key, KeyId, KeyType, MAX_DIGEST_LEN, MAX_KEY_ID, MAX_KEY_LEN, MAX_V4_DIGEST_LEN,
    NTPD_MAX_KEY_ID,
};
pub use keyfile::{KeyFileError, KeyFileFormat, LineError, NTPD_MAX_ASCII_KEY_LEN};
pub use mac::{split_mac, write_crypto_nak};
pub use ntp_proto::CRYPTO_NAK_LEN;
pub use store::{DEFAULT_CAPACITY, KeyStore};

#[cfg(feature = "std")]
mod load;
#[cfg(feature = "std")]
pub use load::{LoadError, MAX_KEY_FILE_LEN};

// The README's snippet is compiled and run as a doctest here, so the
// crates.io page cannot drift from the API.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

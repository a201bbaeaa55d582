//! Network Time Security for NTP (RFC 8915), in the sans-IO shape of the
//! other NTP building blocks.
//!
//! - [`ke`]: the NTS-KE record codec (section 4), zero-copy and `no_std`.
//! - [`tls`] (feature `std`): NTS-KE client and server state machines over
//!   TLS 1.3 with ALPN `ntske/1`, using rustls sans-IO: the caller moves
//!   bytes between its TCP stream and the state machine.
//! - [`ef`]: the NTS extension fields of NTPv4 packets (section 5).
//! - [`aead`]: the AEAD algorithms ([`AeadAlgorithm`]).
//! - [`cookie`]: the server's cookies, sealed under rotating master keys;
//!   [`key_file`] (feature `alloc`): those keys as text, to keep them
//!   across restarts.
//! - [`client`]: the client's cookie jar, NTS requests and the checks of
//!   the server's answer.
//! - [`server`]: the server's side of NTS-protected NTP.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

// The README's snippet is compiled and run as a doctest here, so the
// crates.io page cannot drift from the API.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod aead;
pub mod client;
pub mod cookie;
pub mod ef;
pub mod ke;
#[cfg(feature = "alloc")]
pub mod key_file;
mod keys;
pub mod server;
#[cfg(feature = "std")]
pub mod tls;

/// The TLS library of [`tls`], so that callers can name its types
/// (`ClientConfig`, `RootCertStore`, ...) without a dependency of their own
/// that could drift to another version.
#[cfg(feature = "std")]
pub use rustls;

pub use keys::{
    AeadAlgorithm, AeadKey, Cookie, CookieIssuer, MAX_COOKIE_LEN, MAX_KEY_LEN, NEXT_PROTOCOL_NTPV4,
    SessionKeys,
};

//! Zero-copy NTP wire format, NTP time formats and era arithmetic.
//!
//! This crate is the foundation of the workspace: every other crate speaks
//! NTP through the types defined here.
//!
//! - [`Packet`] is a zero-copy view over the 48-octet NTP header
//!   (RFC 5905, section 7.3) in the style of smoltcp's `wire` module, and
//!   [`Repr`] is its validated, owned meaning.
//! - [`ExtensionFields`] walks the extension fields and the legacy MAC
//!   trailer that may follow the header (RFC 7822, RFC 5905 section 7.5,
//!   RFC 8915 section 5).
//! - [`RefId`] and [`KissCode`] interpret the reference identifier
//!   (RFC 5905, sections 7.3 and 7.4).
//! - [`Timestamp`], [`ShortTime`], [`Date`] and [`NtpDuration`] implement
//!   the NTP time formats and era arithmetic (RFC 5905, section 6).
//! - [`SystemState`] holds the system variables that a server copies into
//!   its responses.
//!
//! # Safety of accessors
//!
//! A [`Packet`] built with [`Packet::new_checked`] (or one for which
//! [`Packet::check_len`] returned `Ok`) has at least [`HEADER_LEN`] octets,
//! and every accessor returns the field's real value. Accessors never panic,
//! not even on a buffer built with [`Packet::new_unchecked`] that is too
//! short: missing octets then read as zero and writes to them are dropped.
//! Untrusted input must go through [`Packet::new_checked`].
//!
//! # Features
//!
//! - `std` (default): `std::time::SystemTime` conversions; implies `alloc`.
//! - `alloc`: nothing yet beyond what `core` offers; reserved for owned
//!   helpers.
//! - `serde`: `Serialize`/`Deserialize` for [`Repr`], the wire enums, the
//!   time types and [`SystemState`].
//! - `arbitrary`: `Arbitrary` for the same types, for fuzzing; implies
//!   `std`, which the `arbitrary` crate needs.
#![cfg_attr(
    feature = "bytes",
    doc = "- `bytes`: [`Repr::emit_buf`] writes a header into any `bytes::BufMut`."
)]
#![cfg_attr(
    not(feature = "bytes"),
    doc = "- `bytes`: `Repr::emit_buf` writes a header into any `bytes::BufMut`."
)]
//! - `chrono`: conversions between [`Date`] and `chrono::DateTime<Utc>`
//!   (`TryFrom<Date>`, out of range as [`TimeError::OutOfRange`]) and from
//!   any `chrono::DateTime<Tz>` to [`Date`] and [`Timestamp`] (`From`).
//!   `chrono` is used without its default features, so this works
//!   without `std`.
//! - `time`: the same for `time::OffsetDateTime` and `time::UtcDateTime`,
//!   also without `std`.
//!
//! # Example
//!
//! ```
//! use ntp_proto::{Mode, Packet, Repr};
//!
//! // chrony 4.3 answering a client request.
//! let bytes: [u8; 48] = [
//!     0x24, 0x03, 0x06, 0xe6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
//!     0x7f, 0x7f, 0x01, 0x01, 0xee, 0xac, 0x9d, 0xac, 0x45, 0x45, 0xf0, 0xd4,
//!     0x64, 0x19, 0x78, 0xe1, 0x08, 0x56, 0x40, 0x70, 0xee, 0xac, 0x9d, 0xae,
//!     0x00, 0x62, 0x41, 0x6b, 0xee, 0xac, 0x9d, 0xae, 0x00, 0x67, 0xa9, 0x74,
//! ];
//! let packet = Packet::new_checked(&bytes[..])?;
//! let repr = Repr::parse(&packet)?;
//! assert_eq!(repr.mode, Mode::Server);
//! assert_eq!(repr.stratum.get(), 3);
//!
//! let mut out = [0u8; 48];
//! repr.emit(&mut Packet::new_unchecked(&mut out[..]))?;
//! assert_eq!(out, bytes);
//! # Ok::<(), ntp_proto::Error>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod debug;
mod error;
mod extension;
mod kiss;
mod packet;
mod refid;
mod repr;
mod system;
mod time;

pub use error::Error;
pub use extension::{
    CRYPTO_NAK_LEN, EXTENSION_FIELD_MIN_LEN, ExtensionField, ExtensionFieldType, ExtensionFields,
    LEGACY_MAX_DIGEST_LEN, LEGACY_MIN_DIGEST_LEN, Mac, TrailerItem, V4_LAST_FIELD_MIN_LEN,
    V4_MAC_LENS,
};
pub use kiss::{KissAction, KissCode};
pub use packet::{HEADER_LEN, Packet};
pub use refid::{RefId, RefIdDisplay, RefIdKind};
pub use repr::{LeapIndicator, Mode, Repr, Stratum, StratumKind, Version};
pub use system::SystemState;
pub use time::*;

// The README's snippet is compiled and run as a doctest here, so the
// crates.io page cannot drift from the API.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

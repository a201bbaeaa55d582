//! A sans-IO NTP server core: answers client requests (RFC 5905, section
//! 9.2 `FXMIT` and appendix A.5.3), with access control, per-client rate
//! limiting and Kiss-o'-Death packets (RFC 5905, section 7.4; RFC 8633).
//!
//! The caller owns the sockets and the clocks; the core turns one received
//! datagram into one [`Action`], writing any response into the caller's
//! buffer. Apart from [`Server::new`] and [`Server::set_keys`] it never
//! allocates; it never reads a clock and never panics on input.
//!
//! - [`Server`] is the core; its documentation gives the contract, the
//!   order of checks and a complete run loop over a UDP socket.
//! - [`Acl`] holds the access-control rules ([`acl`] says which rule
//!   applies).
//! - [`RateLimiter`] meters clients in a fixed-size table
//!   ([`ratelimit`] gives the bucket and the eviction policy); with
//!   `std`, servers cloned after `Server::share_rate_limiter` share one
//!   (`SharedRateLimiter`), for threads that serve one address.
//! - [`Counters`] count every request once, by outcome.
//! - [`ServerConfig`] gathers the settings, among them the policies
//!   [`UnsynchronizedPolicy`], [`MacPolicy`] and [`SymmetricPolicy`].
//!
//! Requests with a MAC are authenticated with symmetric keys (RFC 5905,
//! section 7.3; RFC 8573's AES-CMAC): give the server keys with
//! [`Server::set_keys`] (a [`KeyStore`], loaded from a chrony or ntpd key
//! file with `std`) and a request whose MAC verifies is answered with a
//! MAC from the same key, written by [`Server::finish`] after the
//! transmit timestamp; one whose MAC does not verify gets a crypto-NAK by
//! default ([`MacPolicy`]). Access control and rate limits come first,
//! decided from the source address alone: a denied or over-limit request
//! costs no MAC and no AEAD ([`Counters::crypto_checks`]), and its
//! Kiss-o'-Death is never signed or sealed.
//!
//! Network Time Security (RFC 8915 section 5.7): give the server the
//! cookie master keys of its NTS-KE server and a seed with
//! [`Server::set_nts`], and an NTS request whose cookie and authenticator
//! verify is answered with the echoed Unique Identifier and an NTS
//! Authenticator encrypting fresh cookies, sealed by [`Server::finish`]
//! after the transmit timestamp as a MAC is; a cookie that does not open
//! gets an NTS NAK. `ntp-nts` (re-exported as [`ntp_nts`]) does the
//! cryptography and the NTS-KE side; `ntp-daemon --serve` runs both.
//!
//! Requests of NTP versions 1 to 4 are answered by default, each in its
//! own version (RFC 5905, section 9.2; RFC 4330, section 5), so that
//! NTPv2 clients such as Python's ntplib get time ([`Versions`]).
//!
//! Responses are 48 octets, plus the MAC or crypto-NAK answering an
//! authenticated request or the NTS fields answering an NTS one, and
//! never longer than the request: the server never amplifies. Symmetric-active requests (mode 1, as Windows' W32Time
//! sends them) are answered with a symmetric-passive response (mode 2)
//! without keeping state, under the same access control and rate limits
//! as client requests, unless [`SymmetricPolicy::Drop`] is configured (RFC
//! 5905, section 9.2 figure 20, `NEWPS`, without the association; as
//! chrony does). Control (mode 6) and private
//! (mode 7) requests, symmetric-passive, server and broadcast packets
//! (modes 2, 4 and 5) and mode 0 are never answered (RFC 8633, section
//! 3.4; RFC 5905, section 9.2 figure 20).
//!
//! # Features
//!
//! - `std` (default): [`Instant::from_std`], `KeyStore::load` (a key file
//!   from a path); implies `alloc`.
//! - `alloc`: the [`Server`], [`Acl`], [`RateLimiter`] and
//!   [`ServerConfig`], which allocate their tables once. Without it only
//!   the plain types (prefixes, counters, policies) are available.
//! - `serde`: `Serialize`/`Deserialize` for [`Counters`], [`DropReason`],
//!   [`AccessAction`] and [`Instant`].
//!
//! The `serve` example is the shortest UDP server over this core (one
//! thread, the local clock), and `loadgen` a bounded load generator. The
//! whole server program, with worker threads, access rules, rate limits
//! and NTS-KE, is `ntp-daemon --serve` in this workspace.
//!
//! # A server on tokio
//!
//! The core is synchronous and never blocks, so an async server is the
//! same turn around `await`ed socket calls:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::SystemTime;
//! use ntp_server::{
//!     Action, Instant, MAX_RESPONSE_LEN, RefId, Server, ServerConfig, SystemState, Timestamp,
//! };
//!
//! let clock = || Timestamp::from(SystemTime::now());
//! let state = SystemState::primary(RefId::LOCL, clock());
//! let mut server = Server::new(&ServerConfig::default(), state)?;
//! let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
//! # let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
//! # let mut request = [0u8; 48];
//! # request[0] = 0x23;
//! # request[40..].copy_from_slice(&7_u64.to_be_bytes());
//! # client.send_to(&request, socket.local_addr()?).await?;
//! let origin = std::time::Instant::now();
//! let (mut buf, mut out) = ([0u8; 1024], [0u8; MAX_RESPONSE_LEN]);
//! # for _ in 0..1 {
//! // loop {
//!     let (len, from) = socket.recv_from(&mut buf).await?;
//!     let (rx, now) = (clock(), Instant::from_std(origin, std::time::Instant::now()));
//!     if let Action::Respond(reply) = server.handle(&buf[..len], from, rx, now, &mut out) {
//!         socket.send_to(server.finish(&reply, &mut out, clock()), from).await?;
//!     }
//! // }
//! # }
//! # let (len, _) = client.recv_from(&mut buf).await?;
//! # assert_eq!(len, 48);
//! # Ok(())
//! # }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

// The crate README's snippet is compiled and run as a doctest here.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "alloc")]
pub mod acl;
#[cfg(feature = "alloc")]
mod auth;
mod config;
mod counters;
mod error;
#[cfg(feature = "alloc")]
mod nts;
mod prefix;
#[cfg(feature = "alloc")]
pub mod ratelimit;
#[cfg(feature = "alloc")]
mod server;
#[cfg(feature = "alloc")]
mod xleave;

#[cfg(feature = "alloc")]
pub use acl::{AccessAction, Acl, AclRule, MAX_ACL_RULES};
#[cfg(feature = "alloc")]
pub use config::ServerConfig;
#[cfg(feature = "alloc")]
pub use config::{DEFAULT_INTERLEAVE_CLIENTS, MAX_INTERLEAVE_CLIENTS};
pub use config::{MacPolicy, SymmetricPolicy, UnsynchronizedPolicy, Versions};
pub use counters::{Counters, DropCounters, DropReason, KissCounters};
pub use error::ConfigError;
#[doc(inline)]
pub use ntp_proto::Instant;
#[cfg(feature = "alloc")]
pub use nts::{MAX_NTS_RESPONSE_LEN, NTS_SEED_LEN};
pub use prefix::{IpPrefix, canonical_ip};
#[cfg(feature = "alloc")]
pub use ratelimit::{
    DEFAULT_IPV4_PREFIX, DEFAULT_IPV6_PREFIX, DEFAULT_RATE_BURST, DEFAULT_RATE_CAPACITY,
    DEFAULT_RATE_INTERVAL, DEFAULT_RATE_LEAK, MAX_RATE_CAPACITY, MAX_RATE_INTERVAL,
    MIN_RATE_INTERVAL, RATE_TABLE_WAYS, RateLimitConfig, RateLimiter, RateVerdict,
};
#[cfg(feature = "std")]
pub use ratelimit::{RATE_SHARDS, SharedRateLimiter, random_hash_key};
#[cfg(feature = "alloc")]
pub use server::{Action, MAX_MAC_RESPONSE_LEN, MAX_RESPONSE_LEN, RESPONSE_LEN, Reply, Server};

// What a server is built from and answers with, so that one dependency is
// enough (`ntp_server::SystemState::primary(...)`, `ntp_server::ntp_proto`,
// `ntp_server::KeyStore::load(...)`).
pub use ntp_auth;
pub use ntp_auth::{Key, KeyId, KeyStore, KeyType};
pub use ntp_nts;
pub use ntp_nts::cookie::CookieKeys;
pub use ntp_proto;
pub use ntp_proto::{
    Date, KissCode, LeapIndicator, RefId, ShortTime, Stratum, SystemState, Timestamp,
};

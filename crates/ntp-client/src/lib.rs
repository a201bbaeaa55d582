//! A sans-IO NTP client core in three layers, each usable on its own:
//!
//! 1. [`sntp`]: the one-shot exchange of RFC 4330. A data-minimized
//!    request (version, mode and a random 64-bit transmit nonce; the real
//!    T1 stays local), every check of a response as a typed
//!    [`ResponseError`], and the [`Measurement`]
//!    (offset, delay, dispersion and the server's header values).
//! 2. [`Source`]: one server's association (RFC 5905, section 13). Poll
//!    process with iburst and burst, the reach register, the clock filter,
//!    reply timeout, exponential back-off for a dead server (at most 44
//!    requests in its first day with the defaults), kiss-o'-death rules,
//!    and refusal of duplicated, replayed and spoofed replies.
//! 3. [`System`]: a set of sources, the mitigation algorithms of
//!    `ntp-select` and the discipline of `ntp-discipline`, with
//!    [`Event`]s for the caller's clock, the system variables as an
//!    ntp-proto [`SystemState`] (to serve with
//!    `ntp-server`), and an `ntpq -p` style [`PeerTable`].
//!
//! Each layer takes an optional symmetric key ([`SntpConfig::key`], from
//! a chrony or ntpd key file through [`ntp_auth`]): requests then carry
//! its MAC (RFC 5905 section 7.3; AES-CMAC of RFC 8573), and a reply is
//! used only with a valid MAC from the same key, so that forged replies,
//! kiss-o'-death packets and crypto-NAKs (CVE-2016-1547) change nothing.
//!
//! A [`System`] source may instead be an NTS source (Network Time
//! Security, RFC 8915; [`System::add_nts_source`]): the system asks the
//! caller to run NTS-KE ([`Output::NtsKe`]; `ntp_nts::tls::KeClient` does
//! it over the caller's TCP stream) and takes the keys, cookies and NTP
//! address with [`System::handle_nts_ke`]. Its requests then carry the NTS
//! fields (unique identifier, cookie, placeholders, authenticator), and an
//! answer is read only once its unique identifier and authenticator
//! verified ([`ReplyError::Nts`] otherwise; the cookies of an authentic
//! answer are kept even if it then fails an NTP check). An unauthenticated
//! kiss-o'-death `RATE`, `DENY` or `RSTR` that echoes the request's unique
//! identifier and nonce only backs the poll off (never stops the source);
//! an NTS NAK leads to NTS-KE at the next poll, an empty cookie
//! jar to NTS-KE before it, failed exchanges are retried after
//! [`NTS_KE_RETRY_MIN`] growing by half (section 4.2).
//!
//! The core never reads a clock, opens a socket or draws from a global
//! random generator: time, randomness and datagrams come from the caller,
//! in the quinn/str0m shape (see [`System`] for the contract and a
//! complete run loop over a UDP socket).
//!
//! # Quick start
//!
//! ```toml
//! [dependencies]
//! ntp-client = "0.1"
//! ```
//!
//! One query, with name resolution, every address tried and every check
//! of RFC 4330 and RFC 5905 applied ([`sntp::query`]; `sntp::query_async`
//! with the `tokio` feature):
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let m = ntp_client::sntp::query("pool.ntp.org:123", Duration::from_secs(5))?;
//! println!("offset {:+.6} s, delay {:.6} s, stratum {}", m.offset, m.delay, m.stratum);
//! # Ok::<(), ntp_client::sntp::QueryError>(())
//! ```
//!
//! To keep a clock synchronized, drive a [`System`] with your socket and
//! clock (its docs have a complete loop; [`StdClock`] and
//! [`OsSeededRng`] supply the time and the randomness from std).
//!
//! # What to expect in the first minutes
//!
//! With [`SystemConfig::default()`] and no drift file, each server gets an
//! iburst of eight requests spread over 36 s
//! ([`SourceConfig::spread_iburst`]); the first selection waits until
//! every server answered three times, so that its scatter is known (at
//! most [`STARTUP_WAIT`], 30 s, usually 4 s), hands those samples to the
//! discipline as one batch, and its Kalman filter corrects the clock from
//! then on, slewing at up to 500 ppm (an offset above 128 ms is stepped
//! once). Measured under clknetsim against chronyd (the README's accuracy
//! section) a client starting 10 ms and 20 ppm off is within 100 us of
//! true time after 5-8 s, and polls at 64 s rising to 1024 s as its
//! frequency estimate firms up. [`SystemConfig::rfc5905()`] instead
//! trains the frequency for 900 s before the first correction, as RFC
//! 5905 section 11.3 does.
//!
//! # Units
//!
//! Floating-point times are seconds and rates seconds per second
//! ([`Measurement::offset`], [`ClockAdjustment`], [`UpdateReport`]), unless
//! the name says otherwise ([`PeerRow::offset_ms`], as `ntpq -p` shows
//! it). Fixed-point NTP values keep their wire types ([`NtpDuration`] for
//! a step, [`ShortTime`] for root delay and dispersion), and the core's
//! monotonic time is [`Instant`] (nanoseconds since an origin of the
//! caller's choosing; [`StdClock`] makes one from std).
//!
//! # Features
//!
//! - `std` (default): [`sntp::query`], [`OsSeededRng`], [`StdClock`],
//!   [`Instant::from_std`]; implies `alloc`.
//! - `tokio`: `sntp::query_async` on tokio's sockets; implies `std`.
//! - `alloc`: [`System`] and the [`PeerTable`]. Without it the [`sntp`]
//!   and [`Source`] layers remain, which allocate nothing.
//! - `serde`: `Serialize`/`Deserialize` for the configurations, events,
//!   measurements and the peer table.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The README's Rust snippets are compiled and run as doctests here.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

// And the crate's own README.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod auth_select;
#[cfg(feature = "alloc")]
mod bias;
mod constants;
mod delay;
mod error;
#[cfg(feature = "alloc")]
mod median;
#[cfg(feature = "alloc")]
mod nts;
#[cfg(feature = "alloc")]
mod pool;
#[cfg(feature = "std")]
mod query;
pub mod refclock;
pub mod sntp;
mod source;
#[cfg(feature = "alloc")]
mod spread;
#[cfg(feature = "alloc")]
mod system;
#[cfg(feature = "alloc")]
mod table;

pub use auth_select::AuthSelectMode;
pub use constants::{
    BURST_COUNT, DEFAULT_BACKOFF_MAX_POLL, DEFAULT_MAX_POLL, DEFAULT_MIN_POLL,
    DEFAULT_REPLY_TIMEOUT, DISCIPLINED_PHI, MAX_POLL, MIN_POLL, MIN_REQUEST_SPACING,
    POLL_JITTER_SHIFT, REQUEST_LEN, REQUEST_PRECISION, RETRY_BURST_MAX, SPREAD_IBURST_GAPS,
    UNREACH, VERSION,
};
pub use delay::{
    ASYMMETRY_HISTORY, ASYMMETRY_MIN_SAMPLES, AsymmetryEstimator, DelayConfig, DelayTest,
};
pub use error::ConfigError;
#[doc(inline)]
pub use ntp_proto::Instant;
#[cfg(feature = "alloc")]
pub use nts::{MAX_NTS_REQUEST_LEN, NTS_KE_RETRY_MIN, NtsKeError, NtsKeFailed, NtsKeOutcome};
#[cfg(feature = "alloc")]
pub use pool::{
    POOL_BLOCK_LIST, POOL_BLOCK_TIME, POOL_FALSETICKER_HOLD, POOL_RESOLVE_MAX_INTERVAL,
    POOL_RESOLVE_MIN_INTERVAL, POOL_UNREACHABLE_POLLS, PoolError, PoolId, PoolRemoval,
};
#[cfg(feature = "std")]
pub use query::{OsSeededRng, StdClock};
pub use refclock::{RefclockConfig, RefclockConfigError, RefclockError};
pub use sntp::{Datagram, Exchange, Measurement, Request, ResponseError, SntpConfig};
pub use source::{ReplyError, ReplyOutcome, Source, SourceConfig, SourceEvent, SourceId, Transmit};
#[cfg(feature = "alloc")]
pub use spread::{FIT_SAMPLES, MAX_JITTER, MIN_FIT_SAMPLES};
#[cfg(feature = "alloc")]
pub use system::{
    DELAY_HISTORY, DatagramError, Event, Input, MIN_DELAY_SAMPLES, MIN_TRANSMIT_SEPARATION, Output,
    STARTUP_WAIT, System, SystemConfig, UpdateReport,
};
#[cfg(feature = "alloc")]
pub use table::{PeerRow, PeerTable};

// Re-exported so callers name the tally and discipline types, and the
// random generator trait, without depending on the crates themselves.
pub use ntp_discipline::{
    Algorithm, ClockAdjustment, Discipline, IgnoreReason, LeapEvent, LeapSecond,
    State as DisciplineState, UpdateError, UpdateOutcome,
};
pub use ntp_proto::{
    Date, KissCode, LeapIndicator, NtpDuration, RefId, ShortTime, Stratum, SystemState, Timestamp,
};
pub use ntp_select::{PeerStats, SelectConfig, SelectOptions, Tally};
pub use rand_core;
// The crates whose types the API hands out, so that one dependency is
// enough (`ntp_client::ntp_proto::Packet`, ...).
pub use ntp_auth;
pub use ntp_auth::{Key, KeyId, KeyStore, KeyType};
pub use ntp_discipline;
pub use ntp_nts;
pub use ntp_proto;
pub use ntp_select;

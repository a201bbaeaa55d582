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
//!    ntp-proto [`SystemState`](ntp_proto::SystemState) (to serve with
//!    `ntp-server`), and an `ntpq -p` style [`PeerTable`].
//!
//! The core never reads a clock, opens a socket or draws from a global
//! random generator: time, randomness and datagrams come from the caller,
//! in the quinn/str0m shape (see [`System`] for the contract and a
//! complete run loop over a UDP socket).
//!
//! # Features
//!
//! - `std` (default): [`Instant::from_std`]; implies `alloc`.
//! - `alloc`: [`System`] and the [`PeerTable`]. Without it the [`sntp`]
//!   and [`Source`] layers remain, which allocate nothing.
//! - `serde`: `Serialize`/`Deserialize` for the configurations, events,
//!   measurements and the peer table.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod constants;
mod error;
#[cfg(feature = "std")]
mod query;
pub mod sntp;
mod source;
#[cfg(feature = "alloc")]
mod system;
#[cfg(feature = "alloc")]
mod table;

pub use constants::{
    BURST_COUNT, DEFAULT_BACKOFF_MAX_POLL, DEFAULT_MAX_POLL, DEFAULT_MIN_POLL,
    DEFAULT_REPLY_TIMEOUT, MAX_POLL, MIN_POLL, MIN_REQUEST_SPACING, POLL_JITTER_SHIFT, REQUEST_LEN,
    REQUEST_PRECISION, SPREAD_IBURST_GAPS, UNREACH, VERSION,
};
pub use error::ConfigError;
#[doc(inline)]
pub use ntp_proto::Instant;
#[cfg(feature = "std")]
pub use query::{OsSeededRng, StdClock};
pub use sntp::{Measurement, Request, ResponseError, SntpConfig};
pub use source::{ReplyError, ReplyOutcome, Source, SourceConfig, SourceEvent, SourceId, Transmit};
#[cfg(feature = "alloc")]
pub use system::{
    DELAY_HISTORY, DatagramError, Event, Input, MIN_DELAY_SAMPLES, Output, STARTUP_WAIT, System,
    SystemConfig, UpdateReport,
};
#[cfg(feature = "alloc")]
pub use table::{PeerRow, PeerTable};

// Re-exported so callers name the tally and discipline types, and the
// random generator trait, without depending on the crates themselves.
pub use ntp_discipline::{
    Algorithm, ClockAdjustment, Discipline, LeapEvent, LeapSecond, State as DisciplineState,
    UpdateError, UpdateOutcome,
};
pub use ntp_proto::{
    Date, KissCode, LeapIndicator, NtpDuration, RefId, ShortTime, Stratum, SystemState, Timestamp,
};
pub use ntp_select::{PeerStats, SelectConfig, Tally};
pub use rand_core;
// The crates whose types the API hands out, so that one dependency is
// enough (`ntp_client::ntp_proto::Packet`, ...).
pub use ntp_discipline;
pub use ntp_proto;
pub use ntp_select;

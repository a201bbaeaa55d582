//! One server's association: the poll process (RFC 5905, section 13 and
//! Appendix A.5.7), the packet checks of [`sntp`](crate::sntp), the reach
//! register, the kiss-o'-death rules (section 7.4) and the clock filter of
//! `ntp-select` (section 10).

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use ntp_proto::{
    Date, KissAction, KissCode, LeapIndicator, Packet, RefId, ShortTime, Stratum, Timestamp,
};
use ntp_select::{
    ClockFilter, FilterConfig, FilterOutput, FilterSample, InputError, PeerStats, SelectOptions,
};
use rand_core::RngCore;

use crate::constants::{
    BURST_COUNT, DEFAULT_BACKOFF_MAX_POLL, DEFAULT_MAX_POLL, DEFAULT_MIN_POLL,
    DEFAULT_REPLY_TIMEOUT, MAX_POLL, MIN_POLL, MIN_REQUEST_SPACING, POLL_JITTER_SHIFT,
    RETRY_BURST_MAX, SPREAD_IBURST_GAPS, UNREACH, poll_interval,
};
use crate::delay::AsymmetryEstimator;
use crate::sntp::{Datagram, Exchange, Measurement, Request, ResponseError, SntpConfig};
use crate::{ConfigError, DelayConfig, DelayTest, Instant};

/// The identifier of a source within a [`System`](crate::System); also
/// its association id for the selection algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SourceId(u64);

impl SourceId {
    /// The id with this number.
    #[must_use]
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How one source polls. The [`Default`] holds RFC-safe values for public
/// servers: poll 64 s to 1024 s, iburst on, burst off.
///
/// Non-exhaustive, so that new settings can come without breaking
/// callers: start from [`Default`] (or a preset) and set the fields or use
/// the `with_*` methods.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SourceConfig {
    /// Lower bound of the poll exponent, log2 s; at least
    /// [`MIN_POLL`]. Default [`DEFAULT_MIN_POLL`] (64 s).
    pub min_poll: i8,
    /// Upper bound of the poll exponent while the server answers, log2 s;
    /// at most [`MAX_POLL`]. Default [`DEFAULT_MAX_POLL`] (1024 s).
    pub max_poll: i8,
    /// Send a burst of [`BURST_COUNT`] requests, [`MIN_REQUEST_SPACING`]
    /// apart, at the first poll (RFC 5905, section 13, IBURST). Default on.
    pub iburst: bool,
    /// Spread the iburst: its first five requests go 2 s apart as in RFC
    /// 5905, the last three after 4 s, 8 s and 16 s
    /// ([`SPREAD_IBURST_GAPS`], none longer than the poll interval), so
    /// that at polls of 16 s and more its eight samples span 36 s instead
    /// of 14 s. Default on; off in [`SourceConfig::rfc5905`]. The server
    /// gets the same eight requests, less densely, and the first
    /// selection still has five samples within 8 s. A frequency fitted to
    /// the burst has an error that falls with the span to the power 1.5,
    /// about 3.6 times less over 36 s than over 14 s: with the 14 s burst a
    /// clock started 20 ppm off could still be 15 ppm off after it, and
    /// drift 1 ms before the next poll at 64 s.
    pub spread_iburst: bool,
    /// Send a burst at every poll while the server is reachable (RFC 5905,
    /// section 13, BURST). Default off: it multiplies the load on the
    /// server by eight.
    pub burst: bool,
    /// Retry a poll that got no sample (chrony's `burst` option): while
    /// the server is reachable, a request that has brought no usable
    /// sample [`MIN_REQUEST_SPACING`] after it was sent is followed by
    /// another, up to [`RETRY_BURST_MAX`] requests in one poll, and never
    /// more than the poll interval over the minimum poll interval (none at
    /// `min_poll`, two at twice it, ...), so that the mean interval between
    /// requests stays at least the minimum poll interval. The first usable
    /// sample ends the retries. It helps on lossy paths, where one poll in
    /// several would otherwise bring nothing. A reply that arrives after
    /// the retry was sent is refused as unexpected, so on paths whose
    /// round trip is over 2 s it only adds load. Default off; ignored
    /// while [`burst`](Self::burst) is on, which sends a full burst at
    /// every poll anyway. Missing in serialized data means off.
    #[cfg_attr(feature = "serde", serde(default))]
    pub retry_burst: bool,
    /// Ask for the interleaved client/server mode (RFC 9769, section 2;
    /// chrony's `xleave`): after the first answer, each request names the
    /// server's receive timestamp of the previous one, and a server of the
    /// mode answers with the transmit time of its previous answer, taken
    /// once it had left; the measurement is then of the previous exchange
    /// ([`Measurement::interleaved`](crate::Measurement::interleaved)). A
    /// server without the mode answers in basic mode, which is used as
    /// ever. Best with the caller reporting its own transmit timestamps
    /// ([`Source::handle_transmitted`]). Default off. Missing in serialized
    /// data means off.
    #[cfg_attr(feature = "serde", serde(default))]
    pub xleave: bool,
    /// How long a request waits for its reply. Default
    /// [`DEFAULT_REPLY_TIMEOUT`].
    pub reply_timeout: Duration,
    /// Ceiling of the unreachable back-off, log2 s; from `max_poll` to
    /// [`MAX_POLL`]. Default [`DEFAULT_BACKOFF_MAX_POLL`] (4096 s).
    pub backoff_max_poll: i8,
    /// Checks applied to every response, and the symmetric key that
    /// authenticates the source, if any ([`SntpConfig::key`]: requests are
    /// signed, and only replies with a valid MAC from that key change the
    /// source, kiss-o'-death packets included).
    pub sntp: SntpConfig,
    /// Whether the empty stages of a new association's clock filter count
    /// at MAXDISP in its dispersion (RFC 5905, section 10; `true` in
    /// [`SourceConfig::rfc5905`]). `false` by default: a source's root
    /// distance then reflects the samples it has, so the intersection
    /// algorithm tells a falseticker from the truechimers from the first
    /// replies on, instead of letting every new source overlap every other
    /// with about a second of dummy dispersion. See
    /// [`FilterConfig::count_empty_stages`].
    pub count_empty_stages: bool,
    /// The popcorn spike suppressor of the clock filter (RFC 5905,
    /// appendix A.5.2): a new filter output farther than this many jitters
    /// from the last one is held back. `Some(SGATE)` (3) by default, `None`
    /// in [`SourceConfig::rfc5905`] (the body's filter). See
    /// [`FilterConfig::popcorn_gate`].
    pub popcorn_gate: Option<f64>,
    /// The rate at which the dispersion of the clock filter's samples
    /// grows with their age, s/s: [`DISCIPLINED_PHI`](crate::DISCIPLINED_PHI)
    /// (1 ppm) by default, RFC 5905's PHI (15 ppm) in
    /// [`SourceConfig::rfc5905`]. See [`FilterConfig::phi`].
    pub phi: f64,
    /// Delay tests and the asymmetry correction (chrony's `maxdelay`,
    /// `maxdelayratio`, `maxdelaydevratio`, `mindelay` and `asymmetry`).
    /// Default: none, RFC 5905's behaviour. See [`DelayConfig`]. Missing
    /// in serialized data means the default.
    #[cfg_attr(feature = "serde", serde(default))]
    pub delay: DelayConfig,
    /// chrony's selection options `prefer`, `trust` and `require` (see
    /// [`SelectOptions`]). Default: none. Missing in serialized data means
    /// none.
    #[cfg_attr(feature = "serde", serde(default))]
    pub select: SelectOptions,
    /// chrony's `noselect`: the source is polled and its statistics kept,
    /// but it is never a candidate of the selection, so it never steers
    /// the clock (for monitoring). Default off. Missing in serialized data
    /// means off.
    #[cfg_attr(feature = "serde", serde(default))]
    pub noselect: bool,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            min_poll: DEFAULT_MIN_POLL,
            max_poll: DEFAULT_MAX_POLL,
            iburst: true,
            spread_iburst: true,
            burst: false,
            retry_burst: false,
            xleave: false,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            backoff_max_poll: DEFAULT_BACKOFF_MAX_POLL,
            sntp: SntpConfig::default(),
            count_empty_stages: false,
            popcorn_gate: Some(ntp_select::constants::SGATE),
            phi: crate::DISCIPLINED_PHI,
            delay: DelayConfig::default(),
            select: SelectOptions::NONE,
            noselect: false,
        }
    }
}

impl SourceConfig {
    /// The RFC 5905 clock filter exactly (section 10): empty stages count
    /// at MAXDISP, no popcorn suppressor; and the iburst of section 13,
    /// eight requests 2 s apart. Otherwise as the default.
    #[must_use]
    pub fn rfc5905() -> Self {
        Self {
            spread_iburst: false,
            count_empty_stages: true,
            popcorn_gate: None,
            phi: ntp_select::constants::PHI,
            delay: DelayConfig {
                asymmetry: Some(0.0),
                ..DelayConfig::default()
            },
            ..Self::default()
        }
    }

    /// The same configuration with poll bounds `min_poll..=max_poll` (the
    /// back-off ceiling is raised to `max_poll` if it was below).
    #[must_use]
    pub fn with_poll_range(self, min_poll: i8, max_poll: i8) -> Self {
        Self {
            min_poll,
            max_poll,
            backoff_max_poll: self.backoff_max_poll.max(max_poll),
            ..self
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_poll < MIN_POLL || self.max_poll > MAX_POLL || self.min_poll > self.max_poll {
            return Err(ConfigError::PollRange {
                min_poll: self.min_poll,
                max_poll: self.max_poll,
            });
        }
        if self.backoff_max_poll < self.max_poll || self.backoff_max_poll > MAX_POLL {
            return Err(ConfigError::BackoffMaxPoll(self.backoff_max_poll));
        }
        if self.reply_timeout.is_zero() {
            return Err(ConfigError::ReplyTimeout);
        }
        if !(self.sntp.max_distance.is_finite() && self.sntp.max_distance > 0.0) {
            return Err(ConfigError::MaxDistance);
        }
        if !(-30..=0).contains(&self.sntp.precision) {
            return Err(ConfigError::Precision(self.sntp.precision));
        }
        if let Some(version) = self.sntp.version {
            if !(crate::sntp::MIN_REQUEST_VERSION..=crate::VERSION).contains(&version) {
                return Err(ConfigError::Version(version));
            }
        }
        self.delay.validate()
    }
}

/// Something that happened to one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum SourceEvent {
    /// A valid reply arrived while the reach register was zero.
    Reachable,
    /// The reach register dropped to zero: eight polls without a reply.
    Unreachable,
    /// A kiss-o'-death `RATE`: the poll exponent was raised to `poll`.
    /// Also an NTS source's answer to an unauthenticated `RATE`, `DENY` or
    /// `RSTR` that echoed its request (RFC 8915 section 5.7; see
    /// [`ReplyOutcome::RateReduced`]).
    RateReduced {
        /// The new minimum poll exponent, log2 s.
        poll: i8,
    },
    /// A kiss-o'-death `DENY` or `RSTR`: the source sends nothing, ever
    /// again (RFC 5905, section 7.4, rule a).
    Stopped(KissCode),
    /// The server answered with leap indicator 3 or stratum 16: it is not
    /// synchronized and is excluded from selection until it is again.
    ServerUnsynchronized,
    /// The selection algorithm found the source a falseticker (tally `x`).
    Falseticker,
    /// An NTS NAK (kiss code `NTSN` with our unique identifier, RFC 8915
    /// section 5.7) answered a request of this NTS source: unless an
    /// authentic answer comes first, NTS-KE runs again at the next poll.
    NtsNak,
    /// The source's samples scatter about their fitted line by more than
    /// [`SystemConfig::max_jitter`](crate::SystemConfig::max_jitter): it is
    /// not selected until they settle. Sent once a spell.
    JitterExceeded,
}

impl fmt::Display for SourceEvent {
    /// A short text for logs, e.g. `kiss-o'-death RATE, poll raised to 8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reachable => f.write_str("reachable"),
            Self::Unreachable => f.write_str("unreachable"),
            Self::RateReduced { poll } => write!(f, "kiss-o'-death RATE, poll raised to {poll}"),
            Self::Stopped(code) => write!(f, "kiss-o'-death {code}, stopped for good"),
            Self::ServerUnsynchronized => f.write_str("server says it is unsynchronized"),
            Self::Falseticker => f.write_str("falseticker (tally x)"),
            Self::NtsNak => f.write_str("NTS NAK: the server refused our cookie"),
            Self::JitterExceeded => f.write_str("jitter exceeds maxjitter, not selectable"),
        }
    }
}

/// What a reply that passed the checks did.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReplyOutcome {
    /// A new sample went into the clock filter.
    Sample {
        /// The measurement, its offset corrected for the path's asymmetry
        /// ([`DelayConfig::asymmetry`]; unchanged while none is known).
        measurement: Measurement,
        /// The filter produced new peer variables (RFC 5905, section 10:
        /// not every sample does).
        peer_updated: bool,
    },
    /// The reply was valid and counts in the reach register, but a delay
    /// test of [`SourceConfig::delay`] kept the measurement out of the
    /// clock filter.
    DelayRefused {
        /// The measurement, uncorrected.
        measurement: Measurement,
        /// The test that refused it.
        test: DelayTest,
    },
    /// The server says it is unsynchronized (leap 3 or stratum 16): the
    /// reply answers the request but does not count in the reach register
    /// (RFC 5905, Appendix A.5.1.1), and the source is unfit.
    ServerUnsynchronized,
    /// A kiss-o'-death `RATE` raised the poll exponent to `poll`.
    ///
    /// For an NTS source in a [`System`](crate::System), also an
    /// unauthenticated kiss-o'-death `RATE`, `DENY` or `RSTR` that echoes
    /// the unique identifier of the outstanding request and has its nonce
    /// as origin timestamp (RFC 8915 section 5.7): the poll backs off by
    /// one step and nothing else changes (cookies, keys, no NTS-KE); an
    /// NTS source is never stopped by a kiss that is not authenticated.
    RateReduced {
        /// The new minimum poll exponent, log2 s.
        poll: i8,
    },
    /// A kiss-o'-death `DENY` or `RSTR` stopped the source for good.
    Stopped(KissCode),
    /// An NTS NAK answered the outstanding request of an NTS source (RFC
    /// 8915 section 5.7): it is not authenticated, so the source keeps its
    /// request, cookies and keys, and runs NTS-KE again at the next poll
    /// unless an authentic answer comes first. See [`SourceEvent::NtsNak`].
    NtsNak,
}

/// Why a datagram was not used. The source's state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The source was stopped by a kiss-o'-death and takes nothing.
    #[error("source stopped by a kiss-o'-death")]
    Stopped,
    /// A copy of a reply already used (its origin is the nonce of the last
    /// request that was answered).
    #[error("duplicate reply")]
    Duplicate,
    /// No request is waiting for a reply: a late, replayed or unsolicited
    /// packet.
    #[error("no request outstanding")]
    Unexpected,
    /// The request's reply timeout has passed.
    #[error("reply after the reply timeout")]
    Late,
    /// The response failed a check (RFC 4330, section 5); includes
    /// kiss-o'-death codes without a protocol meaning, which are ignored
    /// (RFC 5905, section 7.4, rules c and d).
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The clock filter refused the sample.
    #[error("sample refused by the clock filter: {0}")]
    Sample(InputError),
    /// An NTS source's answer is not authentic (RFC 8915 section 5.7): not
    /// the unique identifier of the outstanding request, no authenticator
    /// (an unprotected answer or kiss-o'-death), an authenticator that
    /// does not verify with the S2C key, or a malformed NTS packet.
    /// Checked before anything else in the datagram is believed.
    #[error("NTS: {0}")]
    Nts(ntp_nts::client::NtsError),
}

/// A request to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The datagram: the 48-octet header, and its MAC for a keyed source
    /// (at most [`MAX_REQUEST_LEN`](crate::sntp::MAX_REQUEST_LEN) octets).
    pub payload: Datagram,
}

/// The header values of the last packet, the peer variables of RFC 5905,
/// figure 19 that do not come from the clock filter.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PeerHeader {
    leap: LeapIndicator,
    stratum: Stratum,
    reference_id: RefId,
    root_delay: ShortTime,
    root_dispersion: ShortTime,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Outstanding {
    request: Request,
    sent: Instant,
    /// The phase slewed when it was built ([`Source::set_slewed`]).
    slewed: f64,
}

/// The last exchange with a valid answer, for the interleaved mode
/// ([`SourceConfig::xleave`]).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Kept {
    exchange: Exchange,
    /// Its request's nonce, which a late transmit timestamp names
    /// ([`Source::handle_transmitted`]).
    nonce: Timestamp,
    /// What the clock was slewed by between its request and its answer,
    /// which its T1 carries (see [`Source::set_slewed`]).
    shift: f64,
    /// When it measured: the middle of its request and its answer (see
    /// [`Source::take_sample`]).
    at: Instant,
    /// The cumulative slew then (see
    /// [`set_cumulative_slew`](Source::set_cumulative_slew)): the frame of
    /// an interleaved measurement of it.
    slew: f64,
}

/// `t1` moved by `shift` seconds; `None` for no move (or one out of
/// range).
fn shifted(t1: Date, shift: f64) -> Option<Date> {
    if shift == 0.0 {
        return None;
    }
    let by = ntp_proto::NtpDuration::from_seconds_f64(shift).ok()?;
    t1.checked_add(by)
}

/// A tiny FIFO of source events, drained by [`Source::poll_event`].
const EVENT_CAPACITY: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EventQueue {
    slots: [Option<SourceEvent>; EVENT_CAPACITY],
}

impl EventQueue {
    const fn new() -> Self {
        Self {
            slots: [None; EVENT_CAPACITY],
        }
    }

    /// Appends; when full the oldest event is dropped.
    fn push(&mut self, event: SourceEvent) {
        if self.slots.iter().all(Option::is_some) {
            self.slots.rotate_left(1);
            if let Some(last) = self.slots.last_mut() {
                *last = None;
            }
        }
        if let Some(slot) = self.slots.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(event);
        }
    }

    fn pop(&mut self) -> Option<SourceEvent> {
        let first = self.slots.first_mut()?.take()?;
        self.slots.rotate_left(1);
        Some(first)
    }
}

/// One server's state machine (an association in RFC 5905's words), sans
/// IO: it says when to send a request and what to send, checks replies,
/// and keeps the reach register and the clock filter.
///
/// # Contract
///
/// - [`poll_transmit`](Self::poll_transmit) returns a request when one is
///   due; send it at once (its T1 is the `wall_now` given). Call it again
///   at [`next_timeout`](Self::next_timeout), and
///   [`handle_timeout`](Self::handle_timeout) there too.
/// - Give every datagram from the server's address to
///   [`handle_reply`](Self::handle_reply) with its receive time T4.
/// - Drain [`poll_event`](Self::poll_event) after each call (the queue
///   holds four events and drops the oldest beyond that).
/// - `now` never goes backwards; an earlier `now` is taken as the latest
///   one seen.
/// - A reply that is refused ([`ReplyError`]) changes nothing.
///
/// # Polling
///
/// The poll exponent follows the system poll
/// ([`set_system_poll`](Self::set_system_poll), the discipline's
/// `s.poll`) within `min_poll..=max_poll`, and each interval is lengthened
/// by a random 0 to 1.56 % ([`POLL_JITTER_SHIFT`]). With iburst the first
/// poll is a burst of 8 requests 2 s apart (spread over 36 s by
/// [`SourceConfig::spread_iburst`]). Requests are never closer than
/// 2 s ([`MIN_REQUEST_SPACING`]). At each poll the reach register shifts
/// left; a valid reply sets its low bit. A reply from an unsynchronized
/// server (leap 3 or stratum 16) answers the request but does not set it
/// (Appendix A.5.1.1), nor does a kiss-o'-death. After three polls without
/// a valid reply the clock filter shifts in a dummy sample (section 13).
///
/// # Unreachable servers
///
/// While the reach register is zero, the first [`UNREACH`] (12) polls keep
/// the normal interval; after that every poll doubles it, up to
/// `backoff_max_poll` ([`DEFAULT_BACKOFF_MAX_POLL`], 4096 s), as in RFC
/// 5905, Appendix A.5.7.1. A valid reply brings the poll back to the
/// system poll. A server that only ever answers unsynchronized is polled
/// exactly like a silent one. With the defaults, a server dead from the
/// start gets:
///
/// | polls | interval | requests | time at the end |
/// |---|---|---|---|
/// | iburst | 2 s to 16 s | 8 | 36 s |
/// | 1 to 12 | 64 s | 12 | 768 s |
/// | 13 to 17 | 128 s to 2048 s | 5 | 4736 s |
/// | 18 to 36 | 4096 s | 19 | 82 560 s |
///
/// that is at most **44 requests in the first 24 hours** and 21 a day
/// after that (86 400 / 4096). The random lengthening only lowers these
/// counts. Inside a [`System`](crate::System) with no source reachable the
/// back-off stops at `max_poll` instead
/// ([`SystemConfig::search_at_max_poll`](crate::SystemConfig::search_at_max_poll),
/// [`set_backoff_limited`](Self::set_backoff_limited)): about 84 requests
/// a day while nothing answers. A server that answers again is polled at
/// the normal interval from the next poll on.
///
/// # Kiss-o'-death (RFC 5905, section 7.4)
///
/// Only a kiss whose origin timestamp equals the outstanding nonce counts
/// (CVE-2015-7704). `RATE` raises the poll exponent by one above the
/// current one (at most [`MAX_POLL`]) for the rest of the association's
/// life and cancels a burst; `DENY` and `RSTR` stop the source for good;
/// every other code, including unknown and `X` codes, is ignored.
///
/// # Hostile replies
///
/// One nonce is outstanding at a time. It is cleared by the first reply
/// that passes the checks, by the reply timeout, and replaced by the next
/// request. A duplicate, a replay, a reply with the wrong origin and a
/// spoofed kiss-o'-death are all refused without any state change.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    id: SourceId,
    address: SocketAddr,
    config: SourceConfig,
    stopped: Option<KissCode>,
    reach: u8,
    unreach: u8,
    /// Host poll exponent `p.hpoll`.
    hpoll: i8,
    /// The system poll exponent `s.poll`.
    system_poll: i8,
    /// Floor raised by kiss-o'-death RATE.
    kiss_poll: i8,
    /// Requests left in the current burst.
    burst: u8,
    /// Whether the current burst is a spread iburst
    /// ([`SourceConfig::spread_iburst`]).
    spread: bool,
    /// Whether the current burst is a retry burst
    /// ([`SourceConfig::retry_burst`]), which a usable sample ends.
    retrying: bool,
    /// Whether the first poll happened.
    polled: bool,
    /// Whether the back-off stops at `max_poll`
    /// ([`set_backoff_limited`](Self::set_backoff_limited)).
    backoff_limited: bool,
    /// The random lengthening of the current poll interval, drawn when
    /// its request was sent: a fraction of `2^32`, scaled down by
    /// [`POLL_JITTER_SHIFT`].
    poll_jitter: u64,
    next_poll: Instant,
    poll_started: Instant,
    last_sent: Option<Instant>,
    outstanding: Option<Outstanding>,
    /// Nonce of the last request that got a reply.
    answered: Option<Timestamp>,
    /// The last exchange that got a valid answer, for the interleaved
    /// mode ([`SourceConfig::xleave`]), and when its answer came.
    exchange: Option<Kept>,
    filter: ClockFilter,
    /// The path's asymmetry, estimated unless configured.
    asymmetry: AsymmetryEstimator,
    header: Option<PeerHeader>,
    last_measurement: Option<Measurement>,
    last_received: Option<Instant>,
    cumulative_slew: f64,
    /// The phase the clock discipline slewed up to the latest clock
    /// reading handed in ([`set_slewed`](Self::set_slewed)).
    slewed: f64,
    /// Epoch of the sample kept when the filter last restarted after a
    /// jump of the server's clock (see `restart_after_jump`).
    jump_restart: Option<f64>,
    last_now: Instant,
    sent: u64,
    received: u64,
    changed: bool,
    events: EventQueue,
}

impl Source {
    /// A source polling `address`; its first request is due at once.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of [`SourceConfig::validate`].
    pub fn new(
        id: SourceId,
        address: SocketAddr,
        config: SourceConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut filter_config = FilterConfig::with_precision_log2(config.sntp.precision)
            .with_count_empty_stages(config.count_empty_stages)
            .with_popcorn_gate(config.popcorn_gate);
        filter_config.phi = config.phi;
        let filter = ClockFilter::with_config(filter_config)?;
        Ok(Self {
            id,
            address,
            stopped: None,
            reach: 0,
            unreach: 0,
            hpoll: config.min_poll,
            system_poll: config.min_poll,
            kiss_poll: MIN_POLL,
            burst: 0,
            spread: false,
            retrying: false,
            polled: false,
            backoff_limited: false,
            poll_jitter: 0,
            next_poll: Instant::ZERO,
            poll_started: Instant::ZERO,
            last_sent: None,
            outstanding: None,
            answered: None,
            exchange: None,
            filter,
            asymmetry: AsymmetryEstimator::new(),
            header: None,
            last_measurement: None,
            last_received: None,
            cumulative_slew: 0.0,
            slewed: 0.0,
            jump_restart: None,
            last_now: Instant::ZERO,
            sent: 0,
            received: 0,
            changed: false,
            events: EventQueue::new(),
            config,
        })
    }

    /// The id.
    #[must_use]
    pub const fn id(&self) -> SourceId {
        self.id
    }

    /// The server's address. An NTS source in a
    /// [`System`](crate::System) has the unspecified address `0.0.0.0:0`
    /// until its first NTS-KE tells it the NTP server's.
    #[must_use]
    pub const fn address(&self) -> SocketAddr {
        self.address
    }

    /// Points the source at `address` (an NTS source's NTP server, as
    /// NTS-KE gave it). A request in flight to another address is
    /// forgotten.
    #[cfg(feature = "alloc")]
    pub(crate) fn set_address(&mut self, address: SocketAddr) {
        if address != self.address {
            self.address = address;
            self.outstanding = None;
        }
    }

    /// What [`handle_reply`](Self::handle_reply) says of a datagram when no
    /// request awaits an answer.
    #[cfg(feature = "alloc")]
    pub(crate) const fn refusal(&self) -> ReplyError {
        if self.stopped.is_some() {
            ReplyError::Stopped
        } else {
            ReplyError::Unexpected
        }
    }

    /// Whether a datagram at `now` could still answer the outstanding
    /// request (not stopped, a request outstanding, within its reply
    /// timeout); the source is not changed.
    #[cfg(feature = "alloc")]
    pub(crate) fn check_in_time(&self, now: Instant) -> Result<(), ReplyError> {
        let now = self.last_now.max(now);
        let outstanding = self.outstanding.ok_or(self.refusal())?;
        if self.stopped.is_some() {
            return Err(ReplyError::Stopped);
        }
        if now >= outstanding.sent.saturating_add(self.config.reply_timeout) {
            return Err(ReplyError::Late);
        }
        Ok(())
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) would send a request
    /// at `now`.
    #[cfg(feature = "alloc")]
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        let now = self.last_now.max(now);
        self.stopped.is_none()
            && now >= self.next_poll
            && self
                .last_sent
                .is_none_or(|last| now >= last.saturating_add(self.request_spacing()))
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// The reach register: bit 0 is the latest poll (RFC 5905, section 13).
    #[must_use]
    pub const fn reach(&self) -> u8 {
        self.reach
    }

    /// Whether any of the last eight polls got a valid reply (not counting
    /// unsynchronized replies and kisses-o'-death).
    #[must_use]
    pub const fn is_reachable(&self) -> bool {
        self.reach != 0
    }

    /// The kiss code that stopped the source, if one did.
    #[must_use]
    pub const fn stopped_by(&self) -> Option<KissCode> {
        self.stopped
    }

    /// The poll exponent of the next interval, log2 s: the system poll
    /// within the configured range, raised by `RATE` kisses and by the
    /// unreachable back-off.
    #[must_use]
    pub fn poll(&self) -> i8 {
        self.hpoll.max(self.kiss_poll)
    }

    /// Polls in a row that got no valid reply while the reach register
    /// was zero (saturating); 0 once reachable.
    #[must_use]
    pub const fn unanswered_polls(&self) -> u8 {
        self.unreach
    }

    /// Requests sent so far.
    #[must_use]
    pub const fn requests_sent(&self) -> u64 {
        self.sent
    }

    /// Replies accepted so far (samples, unsynchronized reports and acted-on
    /// kisses).
    #[must_use]
    pub const fn replies_accepted(&self) -> u64 {
        self.received
    }

    /// When the last reply was accepted.
    #[must_use]
    pub const fn last_received(&self) -> Option<Instant> {
        self.last_received
    }

    /// The last measurement used, its offset corrected for the path's
    /// asymmetry ([`DelayConfig::asymmetry`]; unchanged while none is
    /// known).
    #[must_use]
    pub const fn last_measurement(&self) -> Option<&Measurement> {
        self.last_measurement.as_ref()
    }

    /// The clock filter.
    #[must_use]
    pub const fn filter(&self) -> &ClockFilter {
        &self.filter
    }

    /// The nonce of the request waiting for a reply, if any.
    #[must_use]
    pub fn outstanding_nonce(&self) -> Option<Timestamp> {
        self.outstanding
            .map(|outstanding| outstanding.request.nonce())
    }

    /// The peer variables for the fitness test and the selection
    /// algorithms (RFC 5905, figure 19): the clock filter's output with the
    /// header values of the last valid packet. `None` before the first
    /// filter output. The offset is corrected for the slews since each
    /// sample (see [`set_cumulative_slew`](Self::set_cumulative_slew)).
    #[must_use]
    pub fn peer_stats(&self) -> Option<PeerStats> {
        let output = self.filter.output()?;
        let header = self.header?;
        let mut stats = PeerStats::from_filter(
            &output,
            header.leap,
            header.stratum,
            header.reference_id,
            header.root_delay,
            header.root_dispersion,
            self.reach,
        );
        stats.offset = output.offset - self.cumulative_slew;
        if self.stopped.is_some() {
            stats.reach = 0;
        }
        Some(stats)
    }

    /// The latest filter output, as the clock filter gave it.
    #[must_use]
    pub fn filter_output(&self) -> Option<FilterOutput> {
        self.filter.output()
    }

    /// Sets the system poll exponent `s.poll` (the discipline's); used from
    /// the next poll on, and handed to the clock filter for the time
    /// condition of its popcorn spike suppressor
    /// ([`ClockFilter::set_poll`]; the suppressor is off unless the filter
    /// configuration turns it on).
    pub fn set_system_poll(&mut self, poll: i8) {
        self.system_poll = poll;
        self.filter.set_poll(poll);
    }

    /// Asks for the next sample at the minimum poll interval, counted from
    /// the start of the current poll, once (the poll after it is at the
    /// system poll again): the caller holds this source's latest sample
    /// back (a spike or an outlier to the clock discipline, RFC 5905
    /// section 11.3's SPIK state) and wants it confirmed or refuted soon,
    /// not a whole poll interval (up to 1024 s) later, when the stepout
    /// interval has long passed. Nothing changes while the source is
    /// unreachable or in a burst, and a kiss-o'-death `RATE` still holds
    /// the poll at its raised exponent.
    pub fn poll_soon(&mut self) {
        if self.reach != 0 && self.config.min_poll < self.hpoll {
            self.hpoll = self.config.min_poll;
            self.reschedule_sooner();
        }
    }

    /// Limits the unreachable back-off to `max_poll` instead of
    /// [`SourceConfig::backoff_max_poll`] while `limited` is true (the
    /// [`System`](crate::System) sets it while no source is reachable, see
    /// [`SystemConfig::search_at_max_poll`](crate::SystemConfig::search_at_max_poll)).
    /// A poll already scheduled beyond that is brought forward.
    pub fn set_backoff_limited(&mut self, limited: bool) {
        if self.backoff_limited == limited {
            return;
        }
        self.backoff_limited = limited;
        let ceiling = self.backoff_ceiling();
        if limited && self.hpoll > ceiling {
            self.hpoll = ceiling.max(self.base_poll());
            self.reschedule_sooner();
        }
    }

    /// The highest poll exponent of the unreachable back-off.
    fn backoff_ceiling(&self) -> i8 {
        if self.backoff_limited {
            self.config.max_poll
        } else {
            self.config.backoff_max_poll
        }
    }

    /// Sets the phase the clock discipline has slewed so far
    /// ([`ntp_discipline::Discipline::cumulative_slew`]): samples enter the
    /// filter with it added and leave it with the then current value
    /// subtracted, so a sample chosen several polls later is not off by the
    /// slews in between. Leave it at zero when no discipline runs.
    pub fn set_cumulative_slew(&mut self, slew: f64) {
        if slew.is_finite() {
            self.cumulative_slew = slew;
        }
    }

    /// Sets the phase the clock discipline has slewed up to the clock
    /// reading of the next call ([`ntp_discipline::Discipline::slew_at`]
    /// of `wall_now` before [`poll_transmit`](Self::poll_transmit), of
    /// `t4` before [`handle_reply`](Self::handle_reply)). A request keeps
    /// the value it was built with; its answer's T1 is moved by the
    /// difference, into the clock's frame at T4: a slew in progress while
    /// the request is out (up to 83 333 ppm at the start, 17 us over a
    /// 200 us round trip) then neither shortens the delay nor moves the
    /// offset by half of what it slewed meanwhile. The frequency
    /// correction is not counted: it makes the clock run true. Leave it
    /// at zero when no discipline runs.
    pub fn set_slewed(&mut self, slewed: f64) {
        if slewed.is_finite() {
            self.slewed = slewed;
        }
    }

    /// The value of the last [`set_slewed`](Self::set_slewed).
    #[must_use]
    pub const fn slewed(&self) -> f64 {
        self.slewed
    }

    /// Restarts the clock filter when the clocks jumped apart (either
    /// one was stepped by somebody else: a virtual machine resumed, an
    /// operator, the server): when the newest sample is more than
    /// [`STEPT`](ntp_discipline::STEPT) from the one before, and the new
    /// one (`offset`) confirms it, the older samples describe a clock that
    /// no longer exists. Kept, they would hold the peer jitter at the size
    /// of the jump, and the source unfit, for eight polls (RFC 5905,
    /// section 10, keeps them). A step of the discipline's own resets
    /// every filter anyway ([`reset_after_step`](Self::reset_after_step)).
    fn restart_after_jump(&mut self, offset: f64) -> Result<(), InputError> {
        let Some((newest, epoch)) = self.filter.samples().next() else {
            return Ok(());
        };
        let confirmed = (offset - newest.offset()).abs() <= ntp_discipline::STEPT;
        if self.jumped() && confirmed {
            self.filter.reset();
            self.asymmetry.reset();
            self.filter.update(newest, epoch)?;
            self.jump_restart = Some(epoch);
        }
        Ok(())
    }

    /// The epoch of the oldest sample kept when the clock filter last
    /// restarted after a jump of the server's clock, if it ever did: the
    /// samples before it describe a clock that no longer exists.
    #[must_use]
    #[cfg(feature = "alloc")]
    pub(crate) const fn jump_restart(&self) -> Option<f64> {
        self.jump_restart
    }

    /// Whether the newest sample in the clock filter lies more than
    /// [`STEPT`](ntp_discipline::STEPT) from the one before it.
    fn jumped(&self) -> bool {
        let mut samples = self.filter.samples();
        match (samples.next(), samples.next()) {
            (Some((newest, _)), Some((previous, _))) => {
                (newest.offset() - previous.offset()).abs() > ntp_discipline::STEPT
            }
            _ => false,
        }
    }

    /// Keeps only the newest sample of the clock filter. The others were
    /// taken before the clock's first update, on an oscillator whose
    /// frequency nobody knew: referred to now, their offsets still hold
    /// the drift of that frequency since (6.5 ms for a sample 65 s old
    /// at 100 ppm), and the filter's choice by the shortest delay can
    /// pick one of them for eight polls, long ones by then. The
    /// discipline has had all of them.
    pub fn keep_newest_sample(&mut self) {
        let Some((sample, epoch)) = self.filter.samples().next() else {
            return;
        };
        self.filter.reset();
        // Cannot fail: the filter took this epoch before. Were it to, the
        // filter stays empty until the next sample.
        if self.filter.update(sample, epoch).is_err() {
            self.filter.reset();
        }
        self.changed = true;
    }

    /// Forgets the samples in the clock filter and the request in flight:
    /// after the clock was stepped, both describe the old timescale (RFC
    /// 5905, section 11.3: all associations are reset on a step).
    pub fn reset_after_step(&mut self) {
        self.filter.reset();
        self.asymmetry.reset();
        self.outstanding = None;
        // Its T1 and T4 are readings of the clock before the step.
        self.exchange = None;
        self.changed = true;
    }

    /// When the source next wants [`poll_transmit`](Self::poll_transmit)
    /// or [`handle_timeout`](Self::handle_timeout): the next poll or the
    /// reply timeout. `None` once stopped.
    #[must_use]
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.stopped.is_some() {
            return None;
        }
        let expiry = self
            .outstanding
            .map(|o| o.sent.saturating_add(self.config.reply_timeout));
        Some(match expiry {
            Some(expiry) if expiry < self.next_poll => expiry,
            _ => self.next_poll,
        })
    }

    /// Expires a request whose reply timeout has passed. Anything else is
    /// done by [`poll_transmit`](Self::poll_transmit); an early call is a
    /// no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        if let Some(outstanding) = self.outstanding {
            if now >= outstanding.sent.saturating_add(self.config.reply_timeout) {
                self.outstanding = None;
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SourceEvent> {
        self.events.pop()
    }

    /// Whether the peer variables, the reach register or the fitness may
    /// have changed since the last call: the system process reruns the
    /// selection when this is true.
    pub fn take_changed(&mut self) -> bool {
        core::mem::take(&mut self.changed)
    }

    fn clamp(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    /// The poll exponent the discipline asks for, within the range.
    fn base_poll(&self) -> i8 {
        self.system_poll
            .clamp(self.config.min_poll, self.config.max_poll)
    }

    /// The request due at `now`, if any, with T1 = `wall_now` (RFC 5905,
    /// Appendix A.5.7.1 `poll()`); `rng` draws the nonce and the poll
    /// jitter.
    pub fn poll_transmit<R: RngCore + ?Sized>(
        &mut self,
        now: Instant,
        wall_now: Date,
        rng: &mut R,
    ) -> Option<Transmit> {
        let now = self.clamp(now);
        if self.stopped.is_some() || now < self.next_poll {
            return None;
        }
        if self
            .last_sent
            .is_some_and(|last| now < last.saturating_add(self.request_spacing()))
        {
            return None;
        }
        if self.burst == 0 {
            self.start_poll(now);
            if self.retrying {
                // A usable sample may end the retries before the last
                // request: draw the poll's random lengthening now.
                self.poll_jitter = rng.next_u64() >> (64 - 32);
            }
        } else {
            self.burst = self.burst.saturating_sub(1);
        }
        let request = match self.exchange {
            Some(kept) if self.config.xleave => Request::interleaved(rng, wall_now, kept.exchange),
            _ => Request::new(rng, wall_now),
        };
        self.outstanding = Some(Outstanding {
            request,
            sent: now,
            slewed: self.slewed,
        });
        self.last_sent = Some(now);
        self.sent = self.sent.saturating_add(1);
        self.next_poll = if self.burst > 0 {
            now.saturating_add(self.burst_gap())
        } else if self.retrying {
            self.retrying = false;
            self.scheduled_poll()
        } else {
            self.poll_jitter = rng.next_u64() >> (64 - 32);
            self.scheduled_poll()
        };
        Some(Transmit {
            destination: self.address,
            payload: request.encode(&self.config.sntp),
        })
    }

    /// The next poll after the one started at `poll_started`, at the
    /// current poll exponent, lengthened by the random fraction drawn when
    /// its request was sent, and never closer than
    /// [`MIN_REQUEST_SPACING`] to the last request.
    fn scheduled_poll(&self) -> Instant {
        let interval = poll_interval(self.poll());
        // interval * random / 2^(32 + shift): below interval / 64.
        let extra_nanos = (interval
            .as_nanos()
            .saturating_mul(u128::from(self.poll_jitter)))
            >> (32 + POLL_JITTER_SHIFT);
        let extra = Duration::from_nanos(u64::try_from(extra_nanos).unwrap_or(u64::MAX));
        let earliest = self
            .last_sent
            .unwrap_or(self.poll_started)
            .saturating_add(self.request_spacing());
        self.poll_started
            .saturating_add(interval)
            .saturating_add(extra)
            .max(earliest)
    }

    /// Brings the pending poll forward to [`scheduled_poll`](Self::scheduled_poll)
    /// after the poll exponent dropped (never later; a burst keeps its
    /// own spacing, and nothing is scheduled before the first poll).
    fn reschedule_sooner(&mut self) {
        if self.burst == 0 && self.polled {
            self.next_poll = self.next_poll.min(self.scheduled_poll());
        }
    }

    /// The least time between two requests: [`MIN_REQUEST_SPACING`], or
    /// the minimum poll interval when that is shorter (1 s at poll 0).
    fn request_spacing(&self) -> Duration {
        MIN_REQUEST_SPACING.min(poll_interval(self.config.min_poll))
    }

    /// The gap before the next request of the current burst, with
    /// `self.burst` requests left.
    fn burst_gap(&self) -> Duration {
        if self.retrying || !self.spread {
            return self.request_spacing();
        }
        let from_end = usize::from(self.burst).saturating_sub(1);
        // A burst hurries the first samples along: none of its gaps is
        // longer than the poll interval it runs ahead of (at a 2 s poll
        // the gaps of 8 s and 16 s left the source silent for 24 s).
        SPREAD_IBURST_GAPS
            .iter()
            .rev()
            .nth(from_end)
            .copied()
            .unwrap_or(MIN_REQUEST_SPACING)
            .min(poll_interval(self.poll()))
            .max(self.request_spacing())
    }

    /// The start of a poll (not a burst continuation): reach register,
    /// missed-poll filter update, unreachable back-off, bursts.
    fn start_poll(&mut self, now: Instant) {
        let first = !self.polled;
        self.polled = true;
        self.retrying = false;
        self.poll_started = now;
        let old_reach = self.reach;
        self.reach <<= 1;
        if self.reach != old_reach {
            self.changed = true;
        }
        if self.reach & 0x07 == 0 && self.filter.output().is_some() {
            // Section 13: not heard for three polls, age the filter.
            if let Ok(Some(_)) = self.filter.missed_poll(now.as_secs_f64()) {
                self.changed = true;
            }
        }
        if self.reach == 0 {
            if old_reach != 0 {
                self.events.push(SourceEvent::Unreachable);
            }
            if first && self.config.iburst {
                self.burst = BURST_COUNT.saturating_sub(1);
                self.spread = self.config.spread_iburst;
                self.hpoll = self.base_poll();
            } else if self.unreach >= UNREACH {
                self.hpoll = self
                    .hpoll
                    .max(self.base_poll())
                    .saturating_add(1)
                    .min(self.backoff_ceiling());
            } else {
                self.hpoll = self.hpoll.max(self.base_poll());
            }
            self.unreach = self.unreach.saturating_add(1);
        } else {
            self.unreach = 0;
            self.hpoll = self.base_poll();
            if self.config.burst && self.filter.output().is_some() {
                self.burst = BURST_COUNT.saturating_sub(1);
                self.spread = false;
            } else if self.config.retry_burst {
                self.burst = self.retry_budget().saturating_sub(1);
                self.retrying = self.burst > 0;
            }
        }
    }

    /// Requests a retry burst may send in one poll: [`RETRY_BURST_MAX`],
    /// and no more than the poll interval over the minimum poll interval.
    fn retry_budget(&self) -> u8 {
        let above_min = self.poll().saturating_sub(self.config.min_poll).clamp(0, 7);
        let by_interval = 1u8 << u32::try_from(above_min).unwrap_or(0);
        by_interval.min(RETRY_BURST_MAX)
    }

    /// Ends a retry burst once its poll got a usable sample: the next
    /// request waits for the next poll.
    fn end_retries(&mut self) {
        if self.retrying {
            self.retrying = false;
            self.burst = 0;
            self.next_poll = self.scheduled_poll();
        }
    }

    /// One poll of a reference clock (see
    /// [`System::add_refclock`](crate::System::add_refclock)), which sends
    /// no requests: the reach register shifts, and `sample`, the poll's
    /// filtered sample (its offset in the cumulative frame, as
    /// [`set_cumulative_slew`](Self::set_cumulative_slew) keeps it), goes
    /// into the clock filter with the reference's `leap`, `stratum` and
    /// `reference_id`. `None` is a missed poll. The next poll is one
    /// interval of the source's poll exponent later.
    #[cfg(feature = "alloc")]
    pub(crate) fn refclock_poll(
        &mut self,
        now: Instant,
        sample: Option<(FilterSample, f64)>,
        leap: LeapIndicator,
        stratum: Stratum,
        reference_id: RefId,
    ) -> Result<(), InputError> {
        let now = self.clamp(now);
        // No burst or retry starts: a reference clock's configuration
        // (`System::add_refclock`) has iburst, burst and retries off.
        self.start_poll(now);
        self.next_poll = now.saturating_add(poll_interval(self.poll()));
        let Some((sample, epoch)) = sample else {
            return Ok(());
        };
        self.restart_after_jump(sample.offset())?;
        // Timed by its epoch (the mean of its samples'), never later than
        // now; the clock filter keeps it in the cumulative frame.
        self.filter.update(sample, epoch.min(now.as_secs_f64()))?;
        if self.reach == 0 {
            self.events.push(SourceEvent::Reachable);
        }
        self.reach |= 1;
        self.unreach = 0;
        self.header = Some(PeerHeader {
            leap,
            stratum,
            reference_id,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
        });
        self.received = self.received.saturating_add(1);
        self.last_received = Some(now);
        self.changed = true;
        Ok(())
    }

    /// Checks a datagram from the server, received at `now` and at `t4` on
    /// the disciplined clock, and uses it.
    ///
    /// # Errors
    ///
    /// A [`ReplyError`] if the datagram is refused; the source is then
    /// unchanged (apart from remembering the latest `now`).
    pub fn handle_reply(
        &mut self,
        now: Instant,
        data: &[u8],
        t4: Date,
    ) -> Result<ReplyOutcome, ReplyError> {
        let now = self.last_now.max(now);
        if self.stopped.is_some() {
            return Err(ReplyError::Stopped);
        }
        let Some(outstanding) = self.outstanding else {
            let origin = data
                .first_chunk::<{ ntp_proto::HEADER_LEN }>()
                .map(|header| Packet::new_unchecked(&header[..]).origin_timestamp());
            return Err(match (origin, self.answered) {
                (Some(origin), Some(answered)) if origin == answered => ReplyError::Duplicate,
                _ => ReplyError::Unexpected,
            });
        };
        if now >= outstanding.sent.saturating_add(self.config.reply_timeout) {
            return Err(ReplyError::Late);
        }
        let nonce = outstanding.request.nonce();
        let shift = self.slewed - outstanding.slewed;
        let mut outstanding = outstanding;
        if let Some(t1) = shifted(outstanding.request.t1(), shift) {
            outstanding.request.set_t1(t1);
        }
        match outstanding
            .request
            .check_response(data, t4, &self.config.sntp)
        {
            Ok(measurement) => {
                let raw_offset = measurement.offset;
                let measurement = match self.delay_checked_offset(&measurement) {
                    Ok(offset) => Measurement {
                        offset,
                        ..measurement
                    },
                    Err(test) => {
                        self.accept(now, nonce);
                        return Ok(ReplyOutcome::DelayRefused { measurement, test });
                    }
                };
                self.take_sample(now, (outstanding, shift), measurement, raw_offset, data, t4)
            }
            Err(ResponseError::KissOfDeath(code)) => match code.action() {
                KissAction::Stop => {
                    self.accept_kiss(now, nonce);
                    self.stopped = Some(code);
                    self.reach = 0;
                    self.events.push(SourceEvent::Stopped(code));
                    Ok(ReplyOutcome::Stopped(code))
                }
                KissAction::ReduceRate => Ok(self.reduce_rate(now, nonce)),
                _ => Err(ReplyError::Response(ResponseError::KissOfDeath(code))),
            },
            Err(ResponseError::Stratum(_) | ResponseError::UnsynchronizedLeap) => {
                self.accept_unsynchronized(now, nonce);
                let was_synchronized = self
                    .header
                    .is_none_or(|h| h.leap != LeapIndicator::Unsynchronized);
                let header = self.header.get_or_insert(PeerHeader {
                    leap: LeapIndicator::Unsynchronized,
                    stratum: Stratum::UNSYNCHRONIZED,
                    reference_id: RefId::INIT,
                    root_delay: ShortTime::ZERO,
                    root_dispersion: ShortTime::ZERO,
                });
                header.leap = LeapIndicator::Unsynchronized;
                header.stratum = Stratum::UNSYNCHRONIZED;
                if was_synchronized {
                    self.events.push(SourceEvent::ServerUnsynchronized);
                }
                Ok(ReplyOutcome::ServerUnsynchronized)
            }
            Err(error) => Err(ReplyError::Response(error)),
        }
    }

    /// A measurement that passed the checks: into the clock filter (an
    /// interleaved one timed by the exchange it measures), and the source
    /// updated. `raw_offset` is its offset before the asymmetry
    /// correction; `data` and `t4` are the answer and its arrival.
    fn take_sample(
        &mut self,
        now: Instant,
        (outstanding, shift): (Outstanding, f64),
        measurement: Measurement,
        raw_offset: f64,
        data: &[u8],
        t4: Date,
    ) -> Result<ReplyOutcome, ReplyError> {
        let nonce = outstanding.request.nonce();
        // An exchange measures the offset at its middle, the mean of T1
        // and T4 (RFC 5905, section 8: the offset of a symmetric path is
        // the mean of the two one-way differences): timed by its answer,
        // a clock drifting at an unlearnt rate was credited with half
        // the round trip's drift more than it showed, 110 us at 100 ppm
        // on chrony's 2.2 s round trips (120-selectoptions), which put
        // the frequency learnt from the first samples 1.8 ppm off. The
        // T1 moved into T4's slew frame (see `set_slewed`) then moves
        // back by half: the middle's frame. An interleaved measurement is
        // of the previous exchange: timed by its middle, in its frames.
        let middle = outstanding
            .sent
            .saturating_add(now.saturating_duration_since(outstanding.sent) / 2);
        let (epoch, frame, back) = match self.exchange {
            Some(kept) if measurement.interleaved => (kept.at, kept.slew, kept.shift / 2.0),
            _ => (middle, self.cumulative_slew, shift / 2.0),
        };
        let measurement = Measurement {
            offset: measurement.offset + back,
            ..measurement
        };
        let raw_offset = raw_offset + back;
        let sample = FilterSample::new(
            measurement.offset + frame,
            measurement.delay,
            measurement.dispersion,
        )
        .map_err(ReplyError::Sample)?;
        self.restart_after_jump(sample.offset())
            .map_err(ReplyError::Sample)?;
        let output = if measurement.interleaved {
            self.filter.remeasure(sample, epoch.as_secs_f64())
        } else {
            self.filter.update(sample, epoch.as_secs_f64())
        }
        .map_err(ReplyError::Sample)?;
        self.exchange = Some(Kept {
            nonce,
            shift,
            exchange: Exchange {
                t1: outstanding.request.t1(),
                t2: Packet::new_unchecked(data).receive_timestamp(),
                t4,
            },
            at: middle,
            slew: self.cumulative_slew,
        });
        self.asymmetry.push(raw_offset + frame, measurement.delay);
        self.accept(now, nonce);
        self.end_retries();
        if self.jumped() {
            // Confirm or refute the jump at once: until then the
            // filter's jitter holds the source unfit.
            self.poll_soon();
        }
        self.header = Some(PeerHeader {
            leap: measurement.leap,
            stratum: measurement.stratum,
            reference_id: measurement.reference_id,
            root_delay: measurement.root_delay,
            root_dispersion: measurement.root_dispersion,
        });
        self.last_measurement = Some(measurement);
        Ok(ReplyOutcome::Sample {
            measurement,
            peer_updated: output.is_some(),
        })
    }

    /// Reports when the request with transmit nonce `nonce` really left:
    /// `t1` is our clock then, as the kernel or the network card stamped
    /// the datagram (read from the socket's error queue after sending).
    /// It replaces the T1 read before sending, in this exchange's
    /// measurement if the answer has not come yet and, with
    /// [`SourceConfig::xleave`], in the interleaved one that follows if
    /// the next request has not left yet (a hardware timestamp may come
    /// after the answer). Ignored otherwise.
    pub fn handle_transmitted(&mut self, nonce: Timestamp, t1: Date) {
        if let Some(outstanding) = self
            .outstanding
            .as_mut()
            .filter(|outstanding| outstanding.request.nonce() == nonce)
        {
            outstanding.request.set_t1(t1);
        } else if let Some(kept) = self.exchange.as_mut().filter(|kept| kept.nonce == nonce) {
            kept.exchange.t1 = shifted(t1, kept.shift).unwrap_or(t1);
        }
    }

    /// A kiss-o'-death `RATE` answered the outstanding request `nonce`
    /// (RFC 5905, section 7.4): the poll exponent goes up by one above the
    /// current one, at most [`MAX_POLL`], for the rest of the
    /// association's life, the burst is cancelled and the next request
    /// waits a whole interval at the new exponent from the last one.
    fn reduce_rate(&mut self, now: Instant, nonce: Timestamp) -> ReplyOutcome {
        self.accept_kiss(now, nonce);
        self.kiss_poll = self.poll().saturating_add(1).min(MAX_POLL);
        self.hpoll = self.hpoll.max(self.kiss_poll);
        let poll = self.poll();
        let earliest = self
            .last_sent
            .unwrap_or(now)
            .saturating_add(poll_interval(poll));
        self.next_poll = self.next_poll.max(earliest);
        self.events.push(SourceEvent::RateReduced { poll });
        ReplyOutcome::RateReduced { poll }
    }

    /// An unauthenticated kiss-o'-death to the request of an NTS source,
    /// which the [`System`](crate::System) hands over only once the NTS
    /// layer found the request's unique identifier in it (RFC 8915,
    /// section 5.7). A `RATE`, `DENY` or `RSTR` whose origin timestamp is
    /// the outstanding request's nonce (so that no off-path attacker can
    /// forge it), arriving within the reply timeout, backs the poll off as
    /// a `RATE` does ([`ReplyOutcome::RateReduced`]) and nothing else: the
    /// source is never stopped by a packet that is not authenticated.
    /// Anything else returns `None` and changes nothing.
    #[cfg(feature = "alloc")]
    pub(crate) fn handle_unauthenticated_kiss(
        &mut self,
        now: Instant,
        data: &[u8],
        t4: Date,
    ) -> Option<ReplyOutcome> {
        let now = self.last_now.max(now);
        let outstanding = self.outstanding?;
        if self.stopped.is_some()
            || now >= outstanding.sent.saturating_add(self.config.reply_timeout)
        {
            return None;
        }
        let nonce = outstanding.request.nonce();
        match outstanding
            .request
            .check_response(data, t4, &self.config.sntp)
        {
            Err(ResponseError::KissOfDeath(code))
                if matches!(code.action(), KissAction::ReduceRate | KissAction::Stop) =>
            {
                Some(self.reduce_rate(now, nonce))
            }
            _ => None,
        }
    }

    /// The measurement's offset corrected for the path's asymmetry, or
    /// the delay test it fails ([`SourceConfig::delay`]).
    fn delay_checked_offset(&self, measurement: &Measurement) -> Result<f64, DelayTest> {
        let config = &self.config.delay;
        let measured = self
            .filter
            .samples()
            .map(|(sample, _)| sample.delay())
            .reduce(f64::min);
        let min_delay = config.reference_delay(measured, measurement.delay);
        let jitter = self
            .filter
            .samples()
            .nth(1)
            .and(self.filter.output())
            .map(|output| output.jitter);
        config.check(measurement.delay, min_delay, jitter)?;
        let asymmetry = config.asymmetry(&self.asymmetry);
        Ok(DelayConfig::corrected_offset(
            measurement.offset,
            measurement.delay,
            min_delay,
            asymmetry,
        ))
    }

    /// Bookkeeping for a reply that answers our request.
    fn accept(&mut self, now: Instant, nonce: Timestamp) {
        self.last_now = now;
        self.outstanding = None;
        self.answered = Some(nonce);
        if self.reach == 0 {
            self.events.push(SourceEvent::Reachable);
            self.hpoll = self.base_poll();
            // The request was scheduled with the unreachable back-off (up
            // to `backoff_max_poll`); a server that answers again is polled
            // at the normal interval from this poll on, as the reference
            // implementation's poll_update() does on every reply
            // (Appendix A.5.7.1), not an hour later.
            self.reschedule_sooner();
        }
        self.reach |= 1;
        self.unreach = 0;
        self.last_received = Some(now);
        self.received = self.received.saturating_add(1);
        self.changed = true;
    }

    /// Bookkeeping for an unsynchronized reply (leap 3 or stratum 16) that
    /// answers our request: the request is answered (a copy is a
    /// duplicate) and the reply counted, but the reach register does not
    /// count it and the unreachable counter runs on. RFC 5905, Appendix
    /// A.5.1.1 `packet()` returns before `p->reach |= 1` when the server
    /// is unsynchronized, and ntpd's test 6 does the same: a server that
    /// only ever answers unsynchronized is unreachable for time purposes
    /// and its poll backs off like a silent server's (A.5.7.1).
    fn accept_unsynchronized(&mut self, now: Instant, nonce: Timestamp) {
        self.last_now = now;
        self.outstanding = None;
        self.answered = Some(nonce);
        // The server answers: retrying would not make it synchronized.
        self.end_retries();
        self.last_received = Some(now);
        self.received = self.received.saturating_add(1);
        self.changed = true;
    }

    /// Bookkeeping for a kiss-o'-death that answers our request: the
    /// request is answered, the burst cancelled; the reach register does
    /// not count it as a reply.
    fn accept_kiss(&mut self, now: Instant, nonce: Timestamp) {
        self.last_now = now;
        self.outstanding = None;
        self.answered = Some(nonce);
        self.burst = 0;
        self.retrying = false;
        self.received = self.received.saturating_add(1);
        self.changed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};
    use ntp_proto::{Mode, Repr, Version};

    #[test]
    fn source_events_display_for_logs() {
        use std::string::ToString;
        assert_eq!(
            SourceEvent::RateReduced { poll: 8 }.to_string(),
            "kiss-o'-death RATE, poll raised to 8"
        );
        assert_eq!(
            SourceEvent::Stopped(KissCode::Deny).to_string(),
            "kiss-o'-death DENY, stopped for good"
        );
        assert_eq!(
            SourceEvent::Falseticker.to_string(),
            "falseticker (tally x)"
        );
    }

    struct Step(u64);
    impl RngCore for Step {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
    }

    const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 123);

    fn wall(seconds: u64) -> Date {
        Date::from_unix(1_700_000_000, 0)
            .unwrap()
            .checked_add(NtpDuration::from_nanos(
                i64::try_from(seconds).unwrap() * 1_000_000_000,
            ))
            .unwrap()
    }

    use ntp_proto::NtpDuration;

    fn answer(request: &[u8], at: Date) -> [u8; 48] {
        let nonce = Packet::new_unchecked(request).transmit_timestamp();
        Repr {
            leap: LeapIndicator::NoWarning,
            version: Version::V4,
            mode: Mode::Server,
            stratum: Stratum::PRIMARY,
            poll: 0,
            precision: -20,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id: RefId::LOCL,
            reference_timestamp: Timestamp::from(at),
            origin_timestamp: nonce,
            receive_timestamp: Timestamp::from(at),
            transmit_timestamp: Timestamp::from(at),
        }
        .to_bytes()
    }

    #[test]
    fn configuration_is_checked() {
        let good = SourceConfig::default();
        assert_eq!(good.validate(), Ok(()));
        let bad = [
            (
                SourceConfig {
                    min_poll: -1,
                    ..good.clone()
                },
                ConfigError::PollRange {
                    min_poll: -1,
                    max_poll: 10,
                },
            ),
            (
                SourceConfig {
                    min_poll: 8,
                    max_poll: 7,
                    ..good.clone()
                },
                ConfigError::PollRange {
                    min_poll: 8,
                    max_poll: 7,
                },
            ),
            (
                SourceConfig {
                    max_poll: 18,
                    backoff_max_poll: 18,
                    ..good.clone()
                },
                ConfigError::PollRange {
                    min_poll: 6,
                    max_poll: 18,
                },
            ),
            (
                SourceConfig {
                    backoff_max_poll: 9,
                    ..good.clone()
                },
                ConfigError::BackoffMaxPoll(9),
            ),
            (
                SourceConfig {
                    reply_timeout: Duration::ZERO,
                    ..good.clone()
                },
                ConfigError::ReplyTimeout,
            ),
            (
                SourceConfig {
                    sntp: SntpConfig {
                        max_distance: f64::NAN,
                        ..good.sntp.clone()
                    },
                    ..good.clone()
                },
                ConfigError::MaxDistance,
            ),
            (
                SourceConfig {
                    sntp: SntpConfig {
                        precision: 1,
                        ..good.sntp.clone()
                    },
                    ..good.clone()
                },
                ConfigError::Precision(1),
            ),
        ];
        for (config, error) in bad {
            assert_eq!(config.validate(), Err(error));
            assert_eq!(
                Source::new(SourceId::new(1), SERVER, config).err(),
                Some(error)
            );
        }
        let short = good.clone().with_poll_range(1, 2);
        assert_eq!(
            (short.min_poll, short.max_poll, short.backoff_max_poll),
            (1, 2, 12)
        );
        assert_eq!(short.validate(), Ok(()));
        assert_eq!(good.with_poll_range(6, 14).backoff_max_poll, 14);
    }

    #[test]
    fn event_queue_keeps_the_newest_four() {
        let mut queue = EventQueue::new();
        for poll in 1..=6 {
            queue.push(SourceEvent::RateReduced { poll });
        }
        let drained: std::vec::Vec<_> = core::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(
            drained,
            (3..=6)
                .map(|poll| SourceEvent::RateReduced { poll })
                .collect::<std::vec::Vec<_>>()
        );
    }

    #[test]
    fn burst_option_sends_eight_per_poll_while_reachable() {
        let config = SourceConfig {
            iburst: false,
            burst: true,
            ..SourceConfig::default()
        };
        let mut source = Source::new(SourceId::new(1), SERVER, config).unwrap();
        let mut rng = Step(1);
        let mut sent = std::vec::Vec::new();
        let mut now = Instant::ZERO;
        while now < Instant::from_secs(150) {
            if let Some(transmit) =
                source.poll_transmit(now, wall(now.as_nanos() / 1_000_000_000), &mut rng)
            {
                sent.push(now.as_nanos() / 1_000_000_000);
                let reply_at = now.saturating_add(Duration::from_millis(10));
                let at = wall(now.as_nanos() / 1_000_000_000);
                source
                    .handle_reply(reply_at, &answer(&transmit.payload, at), at)
                    .unwrap();
            }
            now = now.saturating_add(Duration::from_millis(500));
        }
        // Without iburst the first poll is a single request; from the
        // second poll on the source is reachable (and has a filter output)
        // and each poll is a burst of eight, 2 s apart.
        assert_eq!(sent.first(), Some(&0));
        assert!((64..69).contains(&sent[1]), "{sent:?}");
        let burst: std::vec::Vec<u64> = sent[1..9].iter().map(|t| t - sent[1]).collect();
        assert_eq!(burst, [0, 2, 4, 6, 8, 10, 12, 14]);
        assert!(sent[9] >= sent[1] + 64, "{sent:?}");
        assert_eq!(source.reach(), 0b111);
    }

    /// A slew in progress while a request is out: T1 is moved into the
    /// answer's frame, so the delay does not carry it, and the offset is
    /// that of the middle of the exchange, in the middle's frame.
    #[test]
    fn a_slew_while_the_request_is_out_is_taken_out_of_the_measurement() {
        let config = SourceConfig {
            iburst: false,
            ..SourceConfig::default()
        };
        let mut source = Source::new(SourceId::new(1), SERVER, config).unwrap();
        let mut rng = Step(1);
        source.set_slewed(0.25);
        let t1 = wall(0);
        let transmit = source.poll_transmit(Instant::ZERO, t1, &mut rng).unwrap();
        // The server is 1 ms ahead of the true time and answers at once:
        // 0.1 ms out, 0.1 ms back. Meanwhile the discipline slewed the
        // clock back 20 us: the clock reads T4 20 us early.
        let server = t1
            .checked_add(NtpDuration::from_seconds_f64(0.001 + 0.000_1).unwrap())
            .unwrap();
        let t4 = t1
            .checked_add(NtpDuration::from_seconds_f64(0.000_2 - 0.000_02).unwrap())
            .unwrap();
        source.set_slewed(0.25 - 0.000_02);
        let outcome = source
            .handle_reply(
                Instant::from_nanos(200_000),
                &answer(&transmit.payload, server),
                t4,
            )
            .unwrap();
        let ReplyOutcome::Sample { measurement, .. } = outcome else {
            panic!("{outcome:?}");
        };
        // Unshifted: delay 0.18 ms, offset 1.01 ms.
        assert!(
            (measurement.delay - 0.000_2).abs() < 1e-9,
            "{measurement:?}"
        );
        // 1 ms, and the 10 us the clock was slewed back by the middle of
        // the exchange, the time the sample stands for.
        assert!(
            (measurement.offset - 0.001_01).abs() < 1e-9,
            "{measurement:?}"
        );
    }

    #[test]
    fn poll_zero_sends_every_second_and_its_bursts_a_second_apart() {
        for burst in [false, true] {
            let config = SourceConfig {
                iburst: false,
                burst,
                ..SourceConfig::default()
            }
            .with_poll_range(0, 0);
            let mut source = Source::new(SourceId::new(1), SERVER, config).unwrap();
            let mut rng = Step(1);
            let mut sent = std::vec::Vec::new();
            let mut now = Instant::ZERO;
            while now < Instant::from_secs(20) {
                if let Some(transmit) =
                    source.poll_transmit(now, wall(now.as_nanos() / 1_000_000_000), &mut rng)
                {
                    sent.push(now.as_nanos() / 100_000_000);
                    let reply_at = now.saturating_add(Duration::from_millis(10));
                    let at = wall(now.as_nanos() / 1_000_000_000);
                    source
                        .handle_reply(reply_at, &answer(&transmit.payload, at), at)
                        .unwrap();
                }
                now = now.saturating_add(Duration::from_millis(100));
            }
            // Tenths of a second: a request every 1 s (plus the poll's
            // random lengthening, under 1/64 s), never closer.
            let gaps: std::vec::Vec<u64> = sent.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(sent.len() >= 17, "{sent:?}");
            assert!(gaps.iter().all(|gap| (10..=11).contains(gap)), "{gaps:?}");
        }
    }

    #[test]
    fn delay_tests_keep_slow_replies_out_of_the_filter_but_count_them_reachable() {
        let config = SourceConfig {
            iburst: false,
            delay: DelayConfig {
                max_delay: Some(0.05),
                min_delay: Some(0.0),
                asymmetry: Some(0.5),
                ..DelayConfig::default()
            },
            ..SourceConfig::default()
        };
        let mut source = Source::new(SourceId::new(1), SERVER, config).unwrap();
        let mut outcomes = std::vec::Vec::new();
        // Round trips of 20 ms, 100 ms and 30 ms, all of the queueing on
        // the way back: the measured offsets are -10, -50 and -15 ms.
        let delays_ms = [20_u64, 100, 30];
        let (sent, _) = drive(&mut source, 3, 150, |source, now, transmit| {
            let seconds = now.as_nanos() / 1_000_000_000;
            let at = wall(seconds);
            let delay = Duration::from_millis(delays_ms[outcomes.len() % 3]);
            let t4 = at
                .checked_add(NtpDuration::from_nanos(
                    i64::try_from(delay.as_nanos()).unwrap(),
                ))
                .unwrap();
            outcomes.push(
                source
                    .handle_reply(
                        now.saturating_add(delay),
                        &answer(&transmit.payload, at),
                        t4,
                    )
                    .unwrap(),
            );
        });
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(matches!(outcomes[0], ReplyOutcome::Sample { .. }));
        assert!(matches!(
            outcomes[1],
            ReplyOutcome::DelayRefused { test: DelayTest::MaxDelay, measurement }
                if (measurement.delay - 0.1).abs() < 1e-6
        ));
        assert!(matches!(outcomes[2], ReplyOutcome::Sample { .. }));
        // The refused reply still counts as an answer.
        assert_eq!(source.reach(), 0b111);
        assert_eq!(source.replies_accepted(), 3);
        // Two samples in the filter, their offsets corrected to zero.
        let samples: std::vec::Vec<_> = source.filter().samples().collect();
        assert_eq!(samples.len(), 2);
        for (sample, _) in samples {
            assert!(sample.offset().abs() < 1e-6, "{sample:?}");
        }
    }

    /// A source without iburst, polls 64-1024 s, the system poll at 1024 s.
    fn polled_every_1024_s() -> Source {
        let config = SourceConfig {
            iburst: false,
            ..SourceConfig::default().with_poll_range(6, 10)
        };
        let mut source = Source::new(SourceId::new(1), SERVER, config).unwrap();
        source.set_system_poll(10);
        source
    }

    #[test]
    fn a_jump_is_confirmed_at_the_minimum_poll_then_polling_slows_again() {
        let mut source = polled_every_1024_s();
        let mut replies = 0;
        // The server's clock is 1000 s ahead from the third reply on.
        let (sent, _) = drive(&mut source, 5, 4000, |source, now, transmit| {
            let seconds = now.as_nanos() / 1_000_000_000;
            let ahead = if replies >= 2 { 1000 } else { 0 };
            replies += 1;
            let reply = answer(&transmit.payload, wall(seconds + ahead));
            source
                .handle_reply(
                    now.saturating_add(Duration::from_millis(1)),
                    &reply,
                    wall(seconds),
                )
                .unwrap();
        });
        let gaps: std::vec::Vec<u64> = sent.windows(2).map(|w| w[1] - w[0]).collect();
        // 1024 s polls; the first jumped sample asks for the next at 64 s;
        // the second confirms the jump (the filter restarts on it) and
        // the poll is the system's again.
        assert!(gaps.len() >= 3, "{sent:?}");
        assert!((1024..1100).contains(&gaps[0]), "{sent:?}");
        assert!((1024..1100).contains(&gaps[1]), "{sent:?}");
        assert!((64..70).contains(&gaps[2]), "{sent:?}");
        assert!(gaps.get(3).is_none_or(|gap| *gap >= 1024), "{sent:?}");
        // Only samples of the new timescale are left.
        assert!(
            source
                .filter()
                .samples()
                .all(|(sample, _)| (sample.offset() - 1000.0).abs() < 1e-3),
            "{:?}",
            source.filter()
        );
    }

    #[test]
    fn poll_soon_waits_for_reachability() {
        let mut source = polled_every_1024_s();
        // Not reachable yet: nothing to confirm, nothing changes.
        source.poll_soon();
        assert_eq!(source.poll(), 6);
        let mut rng = Step(9);
        let transmit = source
            .poll_transmit(Instant::ZERO, wall(0), &mut rng)
            .unwrap();
        source
            .handle_reply(
                Instant::from_secs(1),
                &answer(&transmit.payload, wall(0)),
                wall(0),
            )
            .unwrap();
        source.handle_timeout(Instant::from_secs(1));
        let scheduled = source.next_timeout().unwrap();
        source.poll_soon();
        assert!(source.next_timeout().unwrap() <= scheduled);
        assert_eq!(source.poll(), 6);
    }

    #[test]
    fn a_bad_delay_configuration_is_refused() {
        let config = SourceConfig {
            delay: DelayConfig {
                asymmetry: Some(0.6),
                ..DelayConfig::default()
            },
            ..SourceConfig::default()
        };
        assert_eq!(
            Source::new(SourceId::new(1), SERVER, config).err(),
            Some(ConfigError::Delay)
        );
    }

    /// A reply to `request` from a server that says it is unsynchronized:
    /// leap 3 (`by_leap`) or stratum 16.
    fn unsynchronized(request: &[u8], at: Date, by_leap: bool) -> [u8; 48] {
        let mut reply = answer(request, at);
        if by_leap {
            reply[0] |= 0b1100_0000;
        } else {
            reply[1] = 16;
        }
        reply
    }

    /// Runs `source` from time zero to `end`, jumping from timeout to
    /// timeout; `reply` sees each request as it is sent. Returns the send
    /// times, seconds, and every event.
    fn drive(
        source: &mut Source,
        seed: u64,
        end: u64,
        mut reply: impl FnMut(&mut Source, Instant, &Transmit),
    ) -> (std::vec::Vec<u64>, std::vec::Vec<SourceEvent>) {
        let mut rng = Step(seed);
        let mut sent = std::vec::Vec::new();
        let mut events = std::vec::Vec::new();
        let mut now = Instant::ZERO;
        while now < Instant::from_secs(end) {
            source.handle_timeout(now);
            let seconds = now.as_nanos() / 1_000_000_000;
            if let Some(transmit) = source.poll_transmit(now, wall(seconds), &mut rng) {
                sent.push(seconds);
                reply(source, now, &transmit);
            }
            events.extend(core::iter::from_fn(|| source.poll_event()));
            let next = source.next_timeout().unwrap();
            now = if next > now {
                next
            } else {
                now.saturating_add(Duration::from_millis(1))
            };
        }
        (sent, events)
    }

    /// A source with retry bursts at a fixed poll of `2^poll` s (minimum
    /// 64 s), without iburst.
    fn retrying_at(poll: i8) -> Source {
        let config = SourceConfig {
            iburst: false,
            retry_burst: true,
            ..SourceConfig::default().with_poll_range(6, 10)
        };
        let mut source = Source::new(SourceId::new(1), SERVER, config).unwrap();
        source.set_system_poll(poll);
        source
    }

    /// Drives `source` for `end` s; the requests whose 0-based index
    /// `answered` accepts get a reply 10 ms later. The send times, in s.
    fn drive_answering(
        source: &mut Source,
        end: u64,
        answered: impl Fn(usize) -> bool,
    ) -> std::vec::Vec<u64> {
        let mut index = 0;
        let (sent, _) = drive(source, 3, end, |source, now, transmit| {
            if answered(index) {
                let at = wall(now.as_nanos() / 1_000_000_000);
                let reply = answer(&transmit.payload, at);
                source
                    .handle_reply(now.saturating_add(Duration::from_millis(10)), &reply, at)
                    .unwrap();
            }
            index += 1;
        });
        sent
    }

    #[test]
    fn retry_bursts_retry_lost_polls_only_up_to_four_requests() {
        // Poll 256 s, four times the minimum: up to four requests a poll.
        // Only the first request (which makes the source reachable) is
        // answered; every later poll retries three times, 2 s apart.
        let mut source = retrying_at(8);
        let sent = drive_answering(&mut source, 1500, |index| index == 0);
        let starts: std::vec::Vec<u64> = sent.iter().map(|t| t - sent[0]).collect();
        assert!((256..273).contains(&starts[1]), "{starts:?}");
        let first: std::vec::Vec<u64> = starts[1..5].iter().map(|t| t - starts[1]).collect();
        assert_eq!(first, [0, 2, 4, 6]);
        assert!(starts[5] >= starts[1] + 256, "{starts:?}");
        // After eight silent polls the source is unreachable: no retries.
        assert!(source.reach() != 0);
        let mut silent = retrying_at(8);
        let sent = drive_answering(&mut silent, 4000, |_| false);
        let gaps: std::vec::Vec<u64> = sent.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|gap| *gap >= 64), "{sent:?}");
    }

    #[test]
    fn a_usable_sample_ends_the_retries() {
        // Requests 0 and 2 answered: the second poll stops after its
        // first retry, and the next poll comes a poll interval after the
        // start of the second.
        let mut source = retrying_at(8);
        let sent = drive_answering(&mut source, 600, |index| index == 0 || index == 2);
        assert!((256..273).contains(&sent[1]), "{sent:?}");
        assert_eq!(sent[2], sent[1] + 2, "{sent:?}");
        assert!(sent[3] >= sent[1] + 256, "{sent:?}");
        // Both answered polls count; the third, silent so far, does not.
        assert_eq!(source.reach(), 0b110);
    }

    #[test]
    fn retries_keep_the_mean_interval_at_the_minimum_poll() {
        // At the minimum poll there is no room for a retry; at twice it,
        // one.
        for (poll, per_poll) in [(6, 1), (7, 2), (9, 4), (10, 4)] {
            let mut source = retrying_at(poll);
            let sent = drive_answering(&mut source, 2100, |index| index == 0);
            let interval = 1u64 << poll;
            let second: std::vec::Vec<u64> = sent
                .iter()
                .filter(|t| (sent[1]..sent[1] + interval).contains(t))
                .copied()
                .collect();
            assert_eq!(second.len(), per_poll, "poll {poll}: {sent:?}");
        }
    }

    #[test]
    fn an_unsynchronized_server_is_polled_like_a_silent_one() {
        // RFC 5905, Appendix A.5.1.1: `packet()` returns before
        // `p->reach |= 1` for an unsynchronized server.
        let config = SourceConfig::default();
        let end = 24 * 3600;
        let mut silent = Source::new(SourceId::new(1), SERVER, config.clone()).unwrap();
        let (silent_sent, silent_events) = drive(&mut silent, 9, end, |_, _, _| {});
        assert_eq!(silent.reach(), 0);
        assert!(silent_events.is_empty(), "{silent_events:?}");
        for by_leap in [true, false] {
            let mut source = Source::new(SourceId::new(2), SERVER, config.clone()).unwrap();
            let (sent, events) = drive(&mut source, 9, end, |source, now, transmit| {
                let at = wall(now.as_nanos() / 1_000_000_000);
                let reply = unsynchronized(&transmit.payload, at, by_leap);
                let later = now.saturating_add(Duration::from_millis(10));
                assert_eq!(
                    source.handle_reply(later, &reply, at),
                    Ok(ReplyOutcome::ServerUnsynchronized)
                );
                // Answered: a copy is a duplicate, no request is waiting.
                assert_eq!(source.outstanding_nonce(), None);
                assert_eq!(
                    source.handle_reply(later, &reply, at),
                    Err(ReplyError::Duplicate)
                );
                // But not reachable.
                assert_eq!(source.reach(), 0);
                assert!(!source.is_reachable());
                assert!(source.take_changed());
            });
            // Same requests at the same times as the silent server: the
            // iburst, twelve polls at 64 s, then the back-off to 4096 s.
            assert_eq!(sent, silent_sent);
            assert_eq!(sent.len(), 44, "{sent:?}");
            assert_eq!(source.poll(), DEFAULT_BACKOFF_MAX_POLL);
            assert_eq!(events, [SourceEvent::ServerUnsynchronized]);
            assert_eq!(source.replies_accepted(), source.requests_sent());
            assert!(source.last_received().is_some());
            assert_eq!(source.peer_stats(), None);
        }
    }

    #[test]
    fn a_server_that_goes_unsynchronized_becomes_unreachable() {
        let mut source = Source::new(SourceId::new(1), SERVER, SourceConfig::default()).unwrap();
        let switch = 1_000;
        let mut reach_at_switch = None;
        let mut polls_after = 0_u32;
        let (sent, events) = drive(&mut source, 4, 6_000, |source, now, transmit| {
            let seconds = now.as_nanos() / 1_000_000_000;
            let at = wall(seconds);
            let later = now.saturating_add(Duration::from_millis(10));
            if seconds < switch {
                let reply = answer(&transmit.payload, at);
                assert!(matches!(
                    source.handle_reply(later, &reply, at),
                    Ok(ReplyOutcome::Sample { .. })
                ));
            } else {
                reach_at_switch.get_or_insert(source.reach());
                polls_after += 1;
                let reply = unsynchronized(&transmit.payload, at, true);
                source.handle_reply(later, &reply, at).unwrap();
                // Eight polls after the switch the register is empty.
                assert_eq!(source.reach() == 0, polls_after >= 8, "{polls_after}");
            }
        });
        assert_eq!(reach_at_switch, Some(0xfe));
        assert_eq!(
            events,
            [
                SourceEvent::Reachable,
                SourceEvent::ServerUnsynchronized,
                SourceEvent::Unreachable
            ]
        );
        // UNREACH polls after the register emptied, the poll backs off.
        let intervals: std::vec::Vec<u64> = sent
            .windows(2)
            .filter(|pair| pair[0] >= switch)
            .map(|pair| pair[1] - pair[0])
            .collect();
        let normal = usize::from(UNREACH) + 7;
        assert!(intervals.len() > normal + 2, "{intervals:?}");
        assert!(
            intervals[..normal].iter().all(|&i| (64..69).contains(&i)),
            "{intervals:?}"
        );
        assert!(
            intervals[normal..].windows(2).all(|pair| pair[1] > pair[0]),
            "{intervals:?}"
        );
        assert!(source.poll() > DEFAULT_MIN_POLL);
        // The filter output from the synchronized time is still there, but
        // the peer variables say unsynchronized and unreachable.
        let stats = source.peer_stats().unwrap();
        assert_eq!(stats.leap, LeapIndicator::Unsynchronized);
        assert_eq!(stats.reach, 0);
    }

    /// Whole seconds of `now`, for [`wall`].
    fn seconds(now: Instant) -> u64 {
        now.as_nanos() / 1_000_000_000
    }

    /// The source's next request, `now` moved on to it; the clock reads
    /// `wall(seconds(now))`.
    fn next_request(source: &mut Source, now: &mut Instant, rng: &mut Step) -> Transmit {
        loop {
            if let Some(transmit) = source.poll_transmit(*now, wall(seconds(*now)), rng) {
                return transmit;
            }
            *now = source.next_timeout().unwrap().max(*now);
        }
    }

    #[test]
    fn sample_dispersion_grows_at_the_configured_phi() {
        // Four polls answered at once, the same for both sources; only
        // the growth of the stages' dispersion with their age differs.
        let dispersion = |phi: f64| {
            let config = SourceConfig {
                phi,
                ..SourceConfig::default()
            };
            let mut source = Source::new(SourceId::new(1), SERVER, config).unwrap();
            let mut rng = Step(3);
            let mut now = Instant::ZERO;
            for _ in 0..4 {
                let transmit = next_request(&mut source, &mut now, &mut rng);
                let reply = answer(&transmit.payload, wall(seconds(now)));
                source
                    .handle_reply(now, &reply, wall(seconds(now)))
                    .unwrap();
            }
            source.peer_stats().unwrap().dispersion
        };
        let disciplined = dispersion(crate::DISCIPLINED_PHI);
        let rfc = dispersion(ntp_select::constants::PHI);
        assert!(disciplined < rfc, "{disciplined} {rfc}");
        // Nothing but the aging differs: the excess scales with PHI.
        let zero = dispersion(0.0);
        let ratio = (rfc - zero) / (disciplined - zero);
        assert!((ratio - 15.0).abs() < 1e-6, "{ratio}");
        assert!(
            Source::new(
                SourceId::new(1),
                SERVER,
                SourceConfig {
                    phi: f64::NAN,
                    ..SourceConfig::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn a_confirmed_jump_restarts_the_clock_filter() {
        let mut source = Source::new(SourceId::new(1), SERVER, SourceConfig::default()).unwrap();
        let mut rng = Step(3);
        let mut now = Instant::ZERO;
        let mut samples = std::vec::Vec::new();
        for poll in 0..7_u64 {
            let transmit = next_request(&mut source, &mut now, &mut rng);
            let ours = seconds(now);
            // From the fifth reply on the server is 1000 s ahead of us (or
            // we 1000 s behind it): somebody stepped a clock.
            let server = if poll >= 4 { ours + 1000 } else { ours };
            let reply = answer(&transmit.payload, wall(server));
            source.handle_reply(now, &reply, wall(ours)).unwrap();
            samples.push(source.filter().samples().count());
        }
        // The first jumped sample joins the old ones; the second confirms
        // the jump and the old ones are dropped.
        assert_eq!(samples, [1, 2, 3, 4, 5, 2, 3]);
        let stats = source.peer_stats().unwrap();
        assert!((stats.offset - 1000.0).abs() < 1e-3, "{stats:?}");
        assert!(stats.jitter < 1e-3, "{stats:?}");
    }

    #[test]
    fn rate_kisses_stop_raising_at_maxpoll() {
        let mut source = Source::new(SourceId::new(1), SERVER, SourceConfig::default()).unwrap();
        let mut rng = Step(3);
        let mut now = Instant::ZERO;
        for _ in 0..20 {
            let transmit = loop {
                if let Some(t) = source.poll_transmit(now, wall(0), &mut rng) {
                    break t;
                }
                now = source.next_timeout().unwrap().max(now);
            };
            let mut kiss = answer(&transmit.payload, wall(0));
            kiss[1] = 0;
            kiss[12..16].copy_from_slice(b"RATE");
            let outcome = source.handle_reply(now, &kiss, wall(0)).unwrap();
            assert!(matches!(outcome, ReplyOutcome::RateReduced { .. }));
        }
        assert_eq!(source.poll(), MAX_POLL);
        assert_eq!(source.reach(), 0);
    }

    /// The entry for unauthenticated kisses to NTS requests: only `RATE`,
    /// `DENY` and `RSTR` with our nonce as origin and within the reply
    /// timeout count, and each only backs off, once per request.
    #[cfg(feature = "alloc")]
    #[test]
    fn unauthenticated_kisses_only_back_off_and_only_when_they_answer_the_request() {
        let mut source = Source::new(SourceId::new(1), SERVER, SourceConfig::default()).unwrap();
        let transmit = source
            .poll_transmit(Instant::ZERO, wall(0), &mut Step(3))
            .unwrap();
        let kiss = |code: &[u8; 4]| {
            let mut kiss = answer(&transmit.payload, wall(0));
            kiss[0] = 0xe4; // leap 3, version 4, server
            kiss[1] = 0;
            kiss[12..16].copy_from_slice(code);
            kiss
        };
        let before = source.clone();
        let mut other_origin = kiss(b"RATE");
        other_origin[31] ^= 1;
        let late = Instant::ZERO.saturating_add(DEFAULT_REPLY_TIMEOUT);
        for (now, datagram) in [
            (Instant::ZERO, other_origin),
            (Instant::ZERO, kiss(b"XFOO")),
            (Instant::ZERO, kiss(b"NTSN")),
            (late, kiss(b"RATE")),
        ] {
            assert_eq!(
                source.handle_unauthenticated_kiss(now, &datagram, wall(0)),
                None
            );
            assert_eq!(source, before);
        }
        // A DENY backs off as a RATE does; nothing stops the source.
        assert_eq!(
            source.handle_unauthenticated_kiss(Instant::ZERO, &kiss(b"DENY"), wall(0)),
            Some(ReplyOutcome::RateReduced { poll: 7 })
        );
        assert!(source.stopped_by().is_none());
        assert_eq!(source.poll(), 7);
        assert_eq!(source.reach(), 0);
        assert_eq!(
            source.poll_event(),
            Some(SourceEvent::RateReduced { poll: 7 })
        );
        // The request is answered: a second kiss to it is not taken.
        assert_eq!(
            source.handle_unauthenticated_kiss(Instant::ZERO, &kiss(b"RATE"), wall(0)),
            None
        );
        assert_eq!(source.poll(), 7);
        assert!(source.next_timeout().is_some());
    }

    mod keyed {
        use super::*;
        use ntp_auth::{Key, KeyId, KeyType};
        use std::vec;
        use std::vec::Vec;

        fn key(id: u32, key_type: KeyType) -> Key {
            let secret: &[u8] = match key_type {
                KeyType::Aes128Cmac => &[0x5a; 16],
                KeyType::Aes256Cmac => &[0x5a; 32],
                _ => b"a shared secret",
            };
            Key::new(KeyId::new(id).unwrap(), key_type, secret).unwrap()
        }

        fn keyed_source(key: Key) -> Source {
            let mut config = SourceConfig::default();
            config.sntp = config.sntp.with_key(key);
            Source::new(SourceId::new(1), SERVER, config).unwrap()
        }

        /// The first request of `source`, at time zero.
        fn first_request(source: &mut Source) -> Transmit {
            source
                .poll_transmit(Instant::ZERO, wall(0), &mut Step(1))
                .unwrap()
        }

        /// `header` (48 octets) with `key`'s MAC appended.
        fn signed(header: &[u8], key: &Key) -> Vec<u8> {
            let mut out = vec![0u8; 48 + 4 + 64];
            out[..48].copy_from_slice(&header[..48]);
            let len = key.sign_in_place(&mut out, 48).unwrap();
            out.truncate(len);
            out
        }

        /// An answer to `request` in the request's version.
        fn answer_in_kind(request: &[u8], at: Date) -> [u8; 48] {
            let mut reply = answer(request, at);
            let version = Packet::new_unchecked(request).version();
            Packet::new_unchecked(&mut reply[..]).set_version(version);
            reply
        }

        #[test]
        fn requests_carry_the_mac_in_the_version_that_holds_the_whole_digest() {
            for key_type in KeyType::ALL {
                let k = key(7, key_type);
                let mut source = keyed_source(k.clone());
                let transmit = first_request(&mut source);
                let datagram: &[u8] = &transmit.payload;
                let version = Packet::new_unchecked(datagram).version();
                let expected = if key_type.digest_len() > 20 { 3 } else { 4 };
                assert_eq!(version, expected, "{key_type}");
                assert_eq!(datagram.len(), 48 + 4 + key_type.digest_len(), "{key_type}");
                assert_eq!(datagram[48..52], 7u32.to_be_bytes(), "{key_type}");
                k.verify(datagram).unwrap();
            }
            // Without a key: the bare 48-octet NTPv4 request.
            let mut plain = Source::new(SourceId::new(1), SERVER, SourceConfig::default()).unwrap();
            let transmit = first_request(&mut plain);
            assert_eq!(transmit.payload.len(), 48);
            assert_eq!(transmit.payload[0], 0x23);
        }

        #[test]
        fn only_replies_signed_with_the_key_are_used() {
            for key_type in KeyType::ALL {
                let k = key(7, key_type);
                let mut source = keyed_source(k.clone());
                let transmit = first_request(&mut source);
                let reply = answer_in_kind(&transmit.payload, wall(0));
                let before = source.clone();
                let refusals = [
                    reply.to_vec(),                    // no MAC
                    signed(&reply, &key(8, key_type)), // another key id
                    signed(
                        &reply,
                        &Key::new(KeyId::new(7).unwrap(), KeyType::Md5, b"other").unwrap(),
                    ),
                    {
                        let mut flipped = signed(&reply, &k); // one bit of the header
                        flipped[40] ^= 1;
                        flipped
                    },
                    {
                        let mut flipped = signed(&reply, &k); // one bit of the digest
                        let last = flipped.len() - 1;
                        flipped[last] ^= 0x80;
                        flipped
                    },
                    [&reply[..], &[0, 0, 0, 0]].concat(), // crypto-NAK
                ];
                for (i, refused) in refusals.iter().enumerate() {
                    let error = source
                        .handle_reply(Instant::ZERO, refused, wall(0))
                        .unwrap_err();
                    assert!(
                        matches!(error, ReplyError::Response(ResponseError::Auth(_))),
                        "{key_type} case {i}: {error:?}"
                    );
                    assert_eq!(source, before, "{key_type} case {i} changed the source");
                }
                let outcome = source
                    .handle_reply(Instant::ZERO, &signed(&reply, &k), wall(0))
                    .unwrap();
                assert!(matches!(outcome, ReplyOutcome::Sample { .. }), "{key_type}");
                assert_eq!(source.reach(), 1);
            }
        }

        /// CVE-2016-1547 and spoofed kisses: with a key, neither a
        /// crypto-NAK nor an unsigned kiss-o'-death stops or slows the
        /// source, even with our nonce as origin (an on-path attacker sees
        /// it); a signed kiss does.
        #[test]
        fn a_kiss_or_crypto_nak_without_a_valid_mac_changes_nothing() {
            let k = key(3, KeyType::Aes128Cmac);
            let mut source = keyed_source(k.clone());
            let transmit = first_request(&mut source);
            let before = source.clone();
            for code in [b"DENY", b"RSTR", b"RATE"] {
                let mut kiss = answer(&transmit.payload, wall(0));
                kiss[0] = 0xe4; // leap 3, version 4, server
                kiss[1] = 0;
                kiss[12..16].copy_from_slice(code);
                for forged in [kiss.to_vec(), [&kiss[..], &[0; 4]].concat()] {
                    let error = source
                        .handle_reply(Instant::ZERO, &forged, wall(0))
                        .unwrap_err();
                    assert!(matches!(
                        error,
                        ReplyError::Response(ResponseError::Auth(_))
                    ));
                    assert_eq!(source, before);
                    assert!(source.stopped_by().is_none());
                }
            }
            let mut kiss = answer(&transmit.payload, wall(0));
            kiss[1] = 0;
            kiss[12..16].copy_from_slice(b"DENY");
            let outcome = source
                .handle_reply(Instant::ZERO, &signed(&kiss, &k), wall(0))
                .unwrap();
            assert_eq!(outcome, ReplyOutcome::Stopped(KissCode::Deny));
        }

        #[test]
        fn a_keyed_source_refuses_an_answer_in_the_wrong_version() {
            // SHA-256 requests go out as NTPv3; an NTPv4 answer (digest
            // truncated to 20 octets) is not what we asked for.
            let k = key(9, KeyType::Sha256);
            let mut source = keyed_source(k.clone());
            let transmit = first_request(&mut source);
            let reply = answer(&transmit.payload, wall(0)); // version 4
            let error = source
                .handle_reply(Instant::ZERO, &signed(&reply, &k), wall(0))
                .unwrap_err();
            assert_eq!(error, ReplyError::Response(ResponseError::Version(4)));
        }
    }
}

//! The system process (RFC 5905, sections 11.2 and 11.3, Appendix A.5.5):
//! a set of sources, the mitigation algorithms of `ntp-select`, the clock
//! discipline of `ntp-discipline`, and the system variables.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use ntp_discipline::{
    Algorithm, ClockAdjustment, Discipline, IgnoreReason, LeapEvent, Update, UpdateError,
    UpdateOutcome,
};
use ntp_proto::{
    Date, LeapIndicator, NtpDuration, RefId, ShortTime, Stratum, SystemState, Timestamp,
};
use ntp_select::constants::MINDISP;
use ntp_select::{Candidate, FitContext, SLOTS_PER_CANDIDATE, SelectConfig, Tally, mitigate};
use rand_core::{CryptoRng, RngCore};

use crate::bias::{Bias, BiasEntry, BiasTrack, MIN_BIAS_SOURCES, median_entry};
use crate::constants::poll_interval;
use crate::median::median_by;
use crate::nts::{
    NtsKeError, NtsKeFailed, NtsKeOutcome, NtsRng, NtsState, Pending, echoes_unique_id,
};
use crate::pool::{
    POOL_FALSETICKER_HOLD, POOL_UNREACHABLE_POLLS, Pool, PoolError, PoolId, PoolRemoval,
    same_address,
};
use crate::refclock::{
    RefclockConfig, RefclockConfigError, RefclockError, RefclockState, pps_in_second,
};
use crate::sntp::log2_seconds;
use crate::source::{
    ReplyError, ReplyOutcome, Source, SourceConfig, SourceEvent, SourceId, Transmit,
};
use crate::spread::SampleLine;
use crate::{AuthSelectMode, ConfigError, Instant};

/// Configuration of a [`System`]. The [`Default`] is safe for public
/// servers and keeps time well: sources poll 64 s to 1024 s with iburst,
/// RFC 5905 selection limits, at least two agreeing sources once three or
/// more are configured, a first selection only once every source has
/// answered (or [`STARTUP_WAIT`] passed), and the discipline's Kalman
/// estimator fed every reply of every selected source with its own
/// uncertainty. [`SystemConfig::rfc5905`] is RFC 5905 throughout.
///
/// Non-exhaustive, so that new settings can come without breaking
/// callers: start from [`Default`] (or a preset) and set the fields or use
/// the `with_*` methods.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SystemConfig {
    /// The configuration of sources added with [`System::add_source`].
    /// Their precision ([`SntpConfig::precision`](crate::sntp::SntpConfig))
    /// is always taken from `discipline.precision`.
    pub source: SourceConfig,
    /// Limits of the fitness test and the selection, cluster and combine
    /// algorithms.
    pub select: SelectConfig,
    /// The clock discipline. Its poll range drives the sources' poll.
    pub discipline: ntp_discipline::Config,
    /// The frequency correction saved at the last run (a drift file),
    /// seconds per second. With it the discipline starts in FSET, trusting
    /// it to about 1 ppm. Without it the default estimator learns the
    /// frequency from the first replies; the RFC 5905 loop
    /// ([`SystemConfig::rfc5905`]) first trains it for the stepout interval
    /// (900 s) and the system stays unsynchronized meanwhile (RFC 5905,
    /// section 11.3).
    pub initial_frequency: Option<f64>,
    /// The standard deviation of [`initial_frequency`](Self::initial_frequency),
    /// s/s (chrony's drift files carry it as the skew); `None` trusts it
    /// to [`ntp_discipline::DRIFT_FILE_FREQUENCY_SD`] (1 ppm).
    pub initial_frequency_sd: Option<f64>,
    /// This host's address as the servers see it, for the loop test of the
    /// fitness check (RFC 5905, Appendix A.5.2: a server whose reference id
    /// is our address is synchronized to us). `None` skips that half.
    pub local_address: Option<IpAddr>,
    /// The fewest sources that must agree (whose correctness intervals
    /// share a point, the intersection's deepest clique) for the clock to
    /// be steered: chrony's `minsources`, ntpd's `minsane`.
    /// `None` (the default) chooses 2 once three or more sources that may
    /// be selected (not `noselect`, not excluded by
    /// [`auth_select`](Self::auth_select)) are configured and 1 otherwise, so that with three servers one liar
    /// can never be followed alone (1 also while a candidate has the
    /// `trust` option, [`SelectOptions`](crate::SelectOptions)). Raises
    /// [`SelectConfig::min_candidates`] when larger.
    pub min_sources: Option<usize>,
    /// Hold the first selection until every source has answered, for at
    /// most [`STARTUP_WAIT`] (`true` by default). With iburst every server
    /// answers within a few seconds; without the wait, falsetickers that
    /// happen to answer first can outvote the truechimers that have not
    /// answered yet, and the clock is slewed toward them. The first
    /// selection after a step of the clock waits likewise for every
    /// source's answer on the new timescale, for at most [`STARTUP_WAIT`]
    /// after the first: two liars 1 s apart that answer before the
    /// server between them would otherwise be combined, and the
    /// frequency learnt from their disagreement (chrony's
    /// 120-selectoptions case 2). RFC 5905 selects at once (`false` in
    /// [`SystemConfig::rfc5905`]).
    pub startup_wait: bool,
    /// While no source is reachable, the sources' unreachable back-off
    /// stops at their `max_poll` (1024 s by default) instead of
    /// [`SourceConfig::backoff_max_poll`] (4096 s): the client then has
    /// nothing to keep time with, and a server that comes back is found
    /// within `max_poll`, not up to an hour later while the clock drifts.
    /// That is the reference implementation's ceiling (about 84 requests a
    /// day to a dead server); as soon as one source answers, the others
    /// back off further again. `true` by default; `false` in
    /// [`SystemConfig::rfc5905`] (Appendix A.5.7.1 backs off alike
    /// whatever the other sources do).
    pub search_at_max_poll: bool,
    /// How authenticated and unauthenticated sources are selected
    /// together: chrony's `authselectmode`, [`AuthSelectMode::Mix`] by
    /// default (as in chrony); [`AuthSelectMode::Ignore`] in
    /// [`SystemConfig::rfc5905`]. Missing in serialized data means the
    /// default.
    #[cfg_attr(feature = "serde", serde(default))]
    pub auth_select: AuthSelectMode,
    /// The most a source's samples may scatter about the line fitted
    /// through its last [`FIT_SAMPLES`](crate::FIT_SAMPLES) offsets
    /// (taken back to the free oscillator, so that the discipline's own
    /// corrections and an unlearnt frequency do not count), seconds:
    /// chrony's `maxjitter`, [`MAX_JITTER`](crate::MAX_JITTER) (1 s) by
    /// default. A source above it is not selected. Below
    /// [`MIN_FIT_SAMPLES`](crate::MIN_FIT_SAMPLES) samples since it started
    /// (one more when its server's clock jumped within them: the samples
    /// from the jump get an intercept of their own), its scatter is not
    /// known, and a network source is not selectable yet, as chronyd
    /// selects no source before its regression has three samples: a
    /// server whose clock swings by seconds (the accuracy runner's
    /// `009-sourceselection-7`) would otherwise be followed from its first
    /// sample. The first selection waits for the scatter of every source
    /// that answered (at most [`STARTUP_WAIT`](crate::STARTUP_WAIT) from
    /// the first one known), and the discipline then takes the waiting
    /// samples as one batch. Reference clocks are judged from their first
    /// sample. `None` (in [`SystemConfig::rfc5905`]) judges sources by
    /// RFC 5905's tests alone, from their first sample. Missing in
    /// serialized data means the default.
    #[cfg_attr(feature = "serde", serde(default = "default_max_jitter"))]
    pub max_jitter: Option<f64>,
}

/// [`SystemConfig::max_jitter`]'s default, for serde.
#[cfg(feature = "serde")]
#[allow(
    clippy::unnecessary_wraps,
    reason = "serde's default wants the field's type"
)]
const fn default_max_jitter() -> Option<f64> {
    Some(crate::MAX_JITTER)
}

/// Longest wait for every source's first answer before the first
/// selection, when [`SystemConfig::startup_wait`] is on: an iburst sends
/// its first five requests within 8 s (all eight within 14 s without
/// [`SourceConfig::spread_iburst`]), and a reply may take up to the 4 s
/// reply timeout, so a live server that loses a few packets has still
/// answered; after 30 s the sources that answered are used.
pub const STARTUP_WAIT: core::time::Duration = core::time::Duration::from_secs(30);

/// Shortest time between two requests of the system, to any sources: 0.2 s.
/// Requests that leave together share the host's queues and the first
/// hops, so their delays are not independent, and a burst of them looks
/// like the traffic servers rate-limit; chronyd spaces its requests to
/// different sources alike, and chrony's own simulation tests require at
/// least 0.18 s between any two requests of a client with several servers.
/// Not in RFC 5905, whose sources poll independently (section 13).
pub const MIN_TRANSMIT_SEPARATION: core::time::Duration = core::time::Duration::from_millis(200);

/// How many recent round-trip delays of a source are kept to find the
/// path's minimum delay, whose excess is each sample's uncertainty (see
/// [`ntp_discipline::Update::uncertainty`]). 32 samples: the minimum of
/// 32 queueing delays is close to the path's floor, and at a 1024 s poll it
/// still forgets a route change after 9 hours.
pub const DELAY_HISTORY: usize = 32;

/// Fewest recorded delays from which a source's minimum delay is trusted
/// as the path's floor (see `floor_uncertainty`): four, the number of
/// samples RFC 5905's clock filter needs before its dispersion lets a new
/// source pass the distance threshold.
pub const MIN_DELAY_SAMPLES: usize = 4;

/// For 2 and 3 recorded delays, the 10 % quantiles of the gamma
/// distribution with shape 1 and 2: with exponential queueing of mean
/// `q`, the summed excess of n delays over their minimum is `q` times a
/// gamma variable of shape `n - 1`, so dividing the sum by the quantile
/// overestimates `q` nine times in ten. Until [`MIN_DELAY_SAMPLES`]
/// delays are recorded, that bound replaces the mean excess in
/// `floor_uncertainty`. Two delays 100 us apart then bound the floor's
/// doubt at 0.67 ms, two of 100 ms queueing (chrony's 006-largejitter)
/// leave the whole delay as the bound.
const SPREAD_QUANTILES: [f64; MIN_DELAY_SAMPLES - 2] = [0.1054, 0.5318];

/// RFC 5905's selection limits with [`DISCIPLINED_PHI`](crate::DISCIPLINED_PHI)
/// for PHI, chrony's combine limit
/// ([`COMBINE_LIMIT`](ntp_select::constants::COMBINE_LIMIT)) and the
/// reference implementation's distance-weighted cluster rule
/// ([`SelectConfig::distance_weighted_cluster`]: a reference clock that
/// network servers outvote on their common bias is not pruned): the
/// default [`SystemConfig::select`].
fn disciplined_select() -> SelectConfig {
    let mut select = SelectConfig::RFC;
    select.phi = crate::DISCIPLINED_PHI;
    select.combine_limit = Some(ntp_select::constants::COMBINE_LIMIT);
    select.distance_weighted_cluster = true;
    select
}

impl Default for SystemConfig {
    fn default() -> Self {
        let source = SourceConfig::default();
        Self {
            select: disciplined_select(),
            discipline: ntp_discipline::Config::default()
                .with_poll_range(source.min_poll, source.max_poll),
            source,
            initial_frequency: None,
            initial_frequency_sd: None,
            local_address: None,
            min_sources: None,
            startup_wait: true,
            search_at_max_poll: true,
            auth_select: AuthSelectMode::Mix,
            max_jitter: Some(crate::MAX_JITTER),
        }
    }
}

impl SystemConfig {
    /// RFC 5905 throughout: the default sources and selection, the RFC
    /// 5905 clock discipline ([`ntp_discipline::Config::rfc5905`]: PLL/FLL,
    /// 900 s frequency training without a drift file, fed the system
    /// peer's clock filter output), one source enough, selection at once.
    /// For conformance tests and comparisons.
    #[must_use]
    pub fn rfc5905() -> Self {
        let default = Self::default();
        Self {
            discipline: ntp_discipline::Config::rfc5905()
                .with_poll_range(default.discipline.min_poll, default.discipline.max_poll),
            source: SourceConfig::rfc5905(),
            select: SelectConfig::RFC,
            min_sources: Some(1),
            startup_wait: false,
            search_at_max_poll: false,
            auth_select: AuthSelectMode::Ignore,
            max_jitter: None,
            ..default
        }
    }

    /// The same configuration with poll exponents `min_poll..=max_poll`
    /// for the sources and the discipline alike (for example `1, 2` for a
    /// demo on a loopback; keep the defaults for public servers).
    #[must_use]
    pub fn with_poll_range(self, min_poll: i8, max_poll: i8) -> Self {
        Self {
            source: self.source.with_poll_range(min_poll, max_poll),
            discipline: self.discipline.with_poll_range(min_poll, max_poll),
            ..self
        }
    }

    /// The same configuration with the distance threshold MAXDIST at
    /// `seconds` everywhere it applies: the root distance of a response
    /// ([`SntpConfig::max_distance`](crate::SntpConfig::max_distance)) and
    /// the fitness test and cluster merit
    /// ([`SelectConfig::max_distance`]). chrony's `maxdistance` (3 s by
    /// default there); RFC 5905's MAXDIST is 1 s
    /// ([`ntp_select::constants::MAXDIST`]), which refuses paths slower
    /// than 2 s round trip.
    #[must_use]
    pub fn with_max_distance(mut self, seconds: f64) -> Self {
        self.source.sntp.max_distance = seconds;
        self.select.max_distance = seconds;
        self
    }

    /// The same configuration starting from a known frequency correction
    /// (a drift file's value, seconds per second; see
    /// [`initial_frequency`](Self::initial_frequency)).
    #[must_use]
    pub fn with_initial_frequency(mut self, frequency: f64) -> Self {
        self.initial_frequency = Some(frequency);
        self
    }

    /// Checks every part.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.source.validate()?;
        self.select.validate()?;
        self.discipline.validate()?;
        if self.discipline.min_poll < crate::MIN_POLL || self.discipline.max_poll > crate::MAX_POLL
        {
            return Err(ConfigError::DisciplineRange);
        }
        if self.min_sources == Some(0) {
            return Err(ConfigError::MinSources);
        }
        if self
            .max_jitter
            .is_some_and(|limit| !(limit.is_finite() && limit > 0.0))
        {
            return Err(ConfigError::MaxJitter);
        }
        if let Some(frequency) = self.initial_frequency {
            if !(frequency.is_finite() && frequency.abs() <= self.discipline.max_frequency) {
                return Err(ConfigError::DisciplineRange);
            }
        }
        if let Some(sd) = self.initial_frequency_sd {
            if !(sd.is_finite() && sd > 0.0) {
                return Err(ConfigError::DisciplineRange);
            }
        }
        Ok(())
    }
}

/// Something the caller hands to [`System::handle_input`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A datagram received on the client socket.
    Datagram {
        /// Its source address.
        from: SocketAddr,
        /// Its payload.
        data: &'a [u8],
        /// T4: the disciplined clock when it arrived, preferably a kernel
        /// receive timestamp.
        rx_wall: Date,
    },
}

/// What [`System::poll_output`] asks the caller to do.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// Send the first `len` octets of the buffer to `destination`, now.
    Transmit {
        /// The source the request is for.
        source: SourceId,
        /// The server's address.
        destination: SocketAddr,
        /// Octets written to the buffer: 48, and the MAC's length more for
        /// a keyed source (at most [`MAX_REQUEST_LEN`](crate::sntp::MAX_REQUEST_LEN));
        /// for an NTS source the header and its NTS extension fields
        /// (unique identifier, cookie, placeholders, authenticator; RFC
        /// 8915 section 5.7), at most
        /// [`MAX_NTS_REQUEST_LEN`](crate::MAX_NTS_REQUEST_LEN).
        len: usize,
    },
    /// Something happened; apply clock actions at once.
    Event(Event),
    /// Nothing more to do: call [`System::handle_timeout`] at this instant
    /// (or earlier, on input), then drain [`System::poll_output`] again.
    /// A caller that waits in whole milliseconds (`poll(2)`) rounds the
    /// wait up: woken before the instant, it would find nothing to do and
    /// wait again for a shorter time.
    Timeout(Instant),
    /// Resolve the name of this pool ([`System::pool_name`]) and hand the
    /// addresses, with their ports, to [`System::handle_resolved`]. Asked
    /// when a pool is added and while it has fewer members than its
    /// maximum, at a growing interval (see [`System::add_pool`]). A
    /// caller that cannot resolve now may answer later or not at all.
    Resolve {
        /// The pool.
        pool: PoolId,
    },
    /// Run NTS-KE (RFC 8915 section 4) for this NTS source with the server
    /// [`System::nts_ke_target`] names, resolve the NTPv4 server it
    /// advertises (its own host and port 123 without Server and Port
    /// Negotiation records), and report with [`System::handle_nts_ke`].
    /// Asked before the source's first request, when its cookies run out,
    /// and at the poll after an NTS NAK; never again within the retry
    /// interval ([`NTS_KE_RETRY_MIN`](crate::NTS_KE_RETRY_MIN)). The
    /// source sends nothing while it has no cookie; a caller that cannot
    /// run the exchange now may answer later (a late answer is used).
    NtsKe {
        /// The source.
        source: SourceId,
    },
}

/// What the system reports.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Event {
    /// Step the disciplined clock by this offset now
    /// ([`ntp_discipline::Output::Step`]). The sources' clock filters and
    /// requests in flight are reset (RFC 5905, section 11.3).
    ClockStep(NtpDuration),
    /// Run the disciplined clock at this rate correction until the next
    /// one ([`ntp_discipline::Output::Adjust`]).
    ClockAdjust(ClockAdjustment),
    /// A leap second armed, cancelled or due now (then step by
    /// [`LeapSecond::step`](ntp_discipline::LeapSecond::step)).
    Leap(LeapEvent),
    /// The offset exceeded the panic threshold; nothing was done. An
    /// operator is needed (ntpd exits).
    Panic {
        /// The refused offset, seconds.
        offset: f64,
    },
    /// The system became synchronized: the discipline accepted an update
    /// and the system variables now follow `system_peer`.
    Synchronized {
        /// The system peer.
        system_peer: SourceId,
        /// The new system stratum.
        stratum: Stratum,
    },
    /// The system lost synchronization: no source survived selection, or
    /// the clock was stepped.
    Unsynchronized,
    /// A different source became the system peer.
    SystemPeer(SourceId),
    /// The selection handed the discipline an update (RFC 5905, Appendix
    /// A.5.5.1 `clock_update`): one event per update, accepted or refused,
    /// with the discipline's variables after it. Clock actions that follow
    /// from it come as their own events right after.
    DisciplineUpdate(UpdateReport),
    /// Something happened to one source.
    Source {
        /// Which one.
        id: SourceId,
        /// What.
        event: SourceEvent,
    },
    /// A resolution of a pool's name added this source.
    PoolMemberAdded {
        /// The pool.
        pool: PoolId,
        /// The new source.
        id: SourceId,
        /// Its address.
        address: SocketAddr,
    },
    /// A pool member was removed (its source is gone); a replacement is
    /// asked for with [`Output::Resolve`].
    PoolMemberRemoved {
        /// The pool.
        pool: PoolId,
        /// The removed source.
        id: SourceId,
        /// Its address (not taken again for
        /// [`POOL_BLOCK_TIME`](crate::POOL_BLOCK_TIME)).
        address: SocketAddr,
        /// Why.
        reason: PoolRemoval,
    },
}

/// One discipline update as [`Event::DisciplineUpdate`] reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct UpdateReport {
    /// The combined offset handed over, seconds (positive: the clock is
    /// behind).
    pub offset: f64,
    /// The system jitter handed over, seconds.
    pub jitter: f64,
    /// The age of the sample the offset comes from, seconds.
    pub age: f64,
    /// What the discipline did with it; a refused update changed nothing.
    pub outcome: Result<UpdateOutcome, UpdateError>,
    /// The discipline's state after the update.
    pub state: ntp_discipline::State,
    /// The discipline's frequency correction after the update, seconds per
    /// second.
    pub frequency: f64,
    /// The discipline's clock jitter after the update, seconds.
    pub clock_jitter: f64,
    /// The discipline's poll exponent after the update, log2 s.
    pub poll: i8,
}

/// Why a datagram was not used. No source changed (an NTS source whose
/// answer authenticated has taken its cookies all the same, see
/// [`System::handle_input`]).
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DatagramError {
    /// No source has this address.
    #[error("no source has address {0}")]
    UnknownSource(SocketAddr),
    /// The source refused it.
    #[error("source {source_id}: {error}")]
    Reply {
        /// The source.
        source_id: SourceId,
        /// Why.
        error: ReplyError,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct SourceSlot {
    pub(crate) source: Source,
    pub(crate) tally: Tally,
    /// Epoch (seconds of [`Instant`]) of the newest sample handed to the
    /// discipline or passed over.
    fed_epoch: Option<f64>,
    /// Recent round-trip delays, a ring of [`DELAY_HISTORY`].
    delays: [f64; DELAY_HISTORY],
    /// Number of delays recorded so far (saturating).
    delay_count: usize,
    /// The pool the source belongs to, if any.
    pool: Option<PoolId>,
    /// Since when the source has been a falseticker without interruption.
    falseticker_since: Option<Instant>,
    /// The NTS state of an NTS source.
    nts: Option<Box<NtsState>>,
    /// The state of a reference clock ([`System::add_refclock`]).
    refclock: Option<Box<RefclockState>>,
    /// The latest samples as offsets of the free oscillator, for the
    /// jitter limit ([`SystemConfig::max_jitter`]).
    line: SampleLine,
    /// Whether the source was last held out by the jitter limit (its
    /// event is sent once a spell).
    too_jittery: bool,
    /// Whether the source polls at its maximum poll as a stand-by (see
    /// `System::drain_discipline`).
    standby: bool,
    /// The source's last measured bias ([`Bias`]), kept across steps.
    bias: Option<Bias>,
    /// The history of its bias measurements, kept across steps too.
    bias_track: BiasTrack,
}

impl SourceSlot {
    /// Whether the source's replies are authenticated: a symmetric key or
    /// NTS.
    fn authenticated(&self) -> bool {
        self.source.config().sntp.key.is_some() || self.nts.is_some()
    }

    fn new(source: Source) -> Self {
        Self {
            source,
            tally: Tally::Rejected,
            fed_epoch: None,
            delays: [f64::INFINITY; DELAY_HISTORY],
            delay_count: 0,
            pool: None,
            falseticker_since: None,
            nts: None,
            refclock: None,
            line: SampleLine::new(),
            too_jittery: false,
            standby: false,
            bias: None,
            bias_track: BiasTrack::default(),
        }
    }

    /// Whether the source passes the jitter limit `max_jitter`
    /// ([`SystemConfig::max_jitter`]): its scatter is within the limit or
    /// not known yet (always with no limit). A source newly over it sends
    /// [`SourceEvent::JitterExceeded`].
    fn within_jitter(&mut self, max_jitter: Option<f64>, events: &mut VecDeque<Event>) -> bool {
        let (Some(limit), Some(jitter)) = (max_jitter, self.line.jitter()) else {
            self.too_jittery = false;
            return true;
        };
        let over = jitter > limit;
        if over && !self.too_jittery {
            events.push_back(Event::Source {
                id: self.source.id(),
                event: SourceEvent::JitterExceeded,
            });
        }
        self.too_jittery = over;
        !over
    }

    /// Records the newest sample of the clock filter for the jitter
    /// limit: `free_offset` is its offset plus the discipline's
    /// correction by then ([`ntp_discipline::Discipline::correction_at`]).
    /// A jump of the clocks that the source restarted its filter for
    /// gives the samples from it an intercept of their own.
    fn record_line(&mut self, free_offset: f64) {
        let Some((_, epoch)) = self.source.filter().samples().next() else {
            return;
        };
        self.line.push(epoch, free_offset);
        if let Some(restart) = self.source.jump_restart() {
            self.line.jumped_at(restart);
        }
    }

    /// Whether a datagram from `from` (canonical form `canonical`) is for
    /// this source. An NTS source has no address before its first NTS-KE.
    fn receives_from(&self, from: SocketAddr, canonical: SocketAddr) -> bool {
        if self.refclock.is_some() || self.nts.as_ref().is_some_and(|nts| nts.address.is_none()) {
            return false;
        }
        let address = self.source.address();
        address == from || SocketAddr::new(address.ip().to_canonical(), address.port()) == canonical
    }

    /// The variance of one of the source's samples: from its delay above
    /// the path's floor, the floor's own doubt and the server's
    /// precision. A reference clock has no delays to judge its samples
    /// by: its median filter measured their scatter, which the sample's
    /// dispersion carries (the standard error plus the device's
    /// precision), at least the median of its last polls'
    /// ([`RefclockState::typical_dispersion`]).
    fn sample_variance(&self, sample: &ntp_select::FilterSample) -> f64 {
        if let Some(state) = self.refclock.as_deref() {
            let dispersion = sample.dispersion().max(state.typical_dispersion());
            return dispersion * dispersion;
        }
        let excess = (sample.delay() - self.min_delay()).max(0.0);
        let floor = self.floor_uncertainty();
        let server_precision = self
            .source
            .last_measurement()
            .map_or(0.0, |m| log2_seconds(m.precision));
        (excess * excess + floor * floor) / 12.0 + server_precision * server_precision
    }

    /// The filter's sample of `epoch` and the offset it feeds the
    /// discipline with, as the clock read when it was taken; `slew` is
    /// the discipline's cumulative slew now.
    fn fed_sample(&self, epoch: f64, slew: f64) -> Option<(ntp_select::FilterSample, f64)> {
        let same = |e: f64| e.to_bits() == epoch.to_bits();
        let newest = self.source.filter().samples().next().map(|(_, e)| e);
        let (sample, _) = self.source.filter().samples().find(|&(_, e)| same(e))?;
        let offset = match (newest.is_some_and(same), self.source.last_measurement()) {
            // A reference clock's sample, as the clock read at its epoch
            // (`RefclockState::take`); an older one as the clock is now.
            _ if self.refclock.is_some() => {
                let frame = self
                    .refclock
                    .as_deref()
                    .and_then(|state| state.frame_of(epoch));
                sample.offset() - frame.unwrap_or(slew)
            }
            // The newest sample's raw offset is the last measurement; an
            // older one (backlog before the first update) was stored when
            // nothing had been slewed yet, so its filter offset is raw.
            (true, Some(measurement)) => measurement.offset,
            _ => sample.offset(),
        };
        Some((sample, offset))
    }

    /// Records `offset` from the survivors' median as the source's bias.
    /// Its doubt is the scatter of the source's recent biases
    /// ([`BiasTrack`]) once there are
    /// [`MIN_BIAS_MEASUREMENTS`](crate::bias::MIN_BIAS_MEASUREMENTS) of
    /// them; before, the doubt of the source's filter offset
    /// ([`own_doubt`](Self::own_doubt)) and the median's,
    /// `reference_doubt`, together. Only an offset within the source's
    /// root distance (its correctness interval, RFC 5905 section
    /// 11.2.1) is a bias the source may carry: past it the median is not
    /// the source's time, and the bias is forgotten.
    fn measure_bias(&mut self, entry: &BiasEntry, offset: f64, reference_doubt: f64) {
        let within = entry
            .distance
            .is_some_and(|distance| offset.abs() <= distance);
        self.bias_track.record(entry.epoch, offset);
        let own = entry.doubt;
        let doubt = self
            .bias_track
            .scatter()
            .unwrap_or_else(|| libm::sqrt(own * own + reference_doubt * reference_doubt));
        self.bias = within.then_some(Bias { offset, doubt });
    }

    /// The doubt of the source's filter offset, s: its `jitter` (RFC 5905,
    /// section 10) and the smallest doubt of its filter's samples
    /// ([`sample_variance`](Self::sample_variance)).
    fn own_doubt(&self, jitter: f64) -> f64 {
        let sample = self
            .source
            .filter()
            .samples()
            .map(|(sample, _)| self.sample_variance(&sample))
            .fold(f64::INFINITY, f64::min);
        libm::sqrt(jitter * jitter + sample)
    }

    /// Whether the source is a network source whose scatter about its
    /// line is not known yet (fewer than
    /// [`MIN_FIT_SAMPLES`](crate::MIN_FIT_SAMPLES) samples): with a
    /// jitter limit it is not selectable until it is. A reference clock is
    /// judged from its first sample.
    fn awaits_scatter(&self) -> bool {
        self.refclock.is_none() && self.line.jitter().is_none()
    }

    /// The epoch of the newest sample in the source's clock filter.
    fn newest_epoch(&self) -> Option<f64> {
        self.source
            .filter()
            .samples()
            .next()
            .map(|(_, epoch)| epoch)
    }

    /// Records a sample's round-trip delay; `replacing` the newest one
    /// when the sample measured the same exchange again.
    fn record_delay(&mut self, delay: f64, replacing: bool) {
        let count = if replacing && self.delay_count > 0 {
            self.delay_count - 1
        } else {
            self.delay_count
        };
        if let Some(slot) = self.delays.get_mut(count % DELAY_HISTORY) {
            *slot = delay;
        }
        self.delay_count = count.saturating_add(1);
    }

    /// The smallest recent delay (infinite when none).
    fn min_delay(&self) -> f64 {
        self.delays.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// How far the smallest of the recorded delays may still lie above the
    /// path's floor: the mean excess over the minimum divided by the square
    /// root of the number of delays. The minimum of n queueing delays
    /// approaches the floor about that fast, and a sample whose delay
    /// equals the minimum still carries that much unknown queueing.
    ///
    /// With fewer than [`MIN_DELAY_SAMPLES`] delays the mean excess is too
    /// unsure to take as it comes, and an upper bound of it is taken
    /// instead ([`SPREAD_QUANTILES`]), but never more than the hard
    /// bound: the error of a sample is at most half its delay (RFC 5905,
    /// section 11.2.1's correctness interval), so the whole minimum delay
    /// counts, as it does with a single delay, which says nothing of the
    /// queueing. Without that bound from the second delay on, a long but
    /// steady path (1.2 s in chrony's 120-selectoptions) doubted each of
    /// its first three samples by its whole round trip and slewed the
    /// start offset for five minutes.
    fn floor_uncertainty(&self) -> f64 {
        let count = self.delay_count.min(DELAY_HISTORY);
        if count == 0 {
            return 0.0;
        }
        let min = self.min_delay();
        let excess: f64 = self
            .delays
            .iter()
            .filter(|d| d.is_finite())
            .map(|d| d - min)
            .sum();
        #[allow(clippy::cast_precision_loss, reason = "at most DELAY_HISTORY")]
        let n = count as f64;
        if count < MIN_DELAY_SAMPLES {
            // A single delay says nothing of the queueing.
            let quantile = count.checked_sub(2).and_then(|i| SPREAD_QUANTILES.get(i));
            return quantile.map_or(min, |quantile| (excess / quantile / libm::sqrt(n)).min(min));
        }
        excess / n / libm::sqrt(n)
    }
}

/// The NTP client: sources, mitigation, discipline and system variables,
/// sans IO.
///
/// # Contract
///
/// Time, randomness and the socket belong to the caller:
///
/// - `now` ([`Instant`]) is a monotonic clock for timers. It must not go
///   backwards; an earlier value is taken as the latest one seen.
/// - `wall_now` and `rx_wall` ([`Date`]) are readings of the clock being
///   disciplined: T1 when a request is built, T4 when a response arrived
///   (a kernel receive timestamp is best).
/// - The generator `R` ([`RngCore`]) draws the 64-bit request nonces and
///   the poll jitter; use a cryptographically secure one seeded from the
///   OS, since the nonce is what keeps off-path attackers out.
///
/// The run loop:
///
/// 1. Hand every datagram received on the client socket to
///    [`handle_input`](Self::handle_input), and call
///    [`handle_timeout`](Self::handle_timeout) when the last
///    [`Output::Timeout`] passes (an extra call is a no-op).
/// 2. After each of those, drain [`poll_output`](Self::poll_output) until
///    it returns [`Output::Timeout`]: send each [`Output::Transmit`] at
///    once, apply each [`Event::ClockStep`], [`Event::ClockAdjust`] and
///    [`Event::Leap`] to the clock at once (before the next call, whose
///    `wall_now` must show it).
///
/// Nothing is allocated per packet: the buffer is the caller's
/// `Vec<u8>` (48 octets of capacity are enough without NTS sources,
/// [`MAX_NTS_REQUEST_LEN`](crate::MAX_NTS_REQUEST_LEN) with them), and the
/// tables are sized when sources are added (and an NTS source's session
/// when NTS-KE brings it). With NTS sources, answer each
/// [`Output::NtsKe`] with [`handle_nts_ke`](Self::handle_nts_ke). Bad input never panics and never changes a
/// source: it is refused with a [`DatagramError`].
///
/// On every new sample the system runs the fitness test, select, cluster
/// and combine (`ntp-select`), and hands the combined offset to the
/// discipline when the system peer has a sample newer than the last one
/// used (RFC 5905, Appendix A.5.5.1). The system variables (section
/// 11.2.3, figure 25) are then exported by
/// [`system_state`](Self::system_state) for an `ntp-server` to serve.
///
/// The leap indicator handed to the discipline with each update, and
/// exported, is not the system peer's alone (figure 25's
/// `s.leap <-- p.leap`): a leap second is armed only when more than half
/// of the truechimers of the selection ([`Tally::is_truechimer`], every
/// source the intersection algorithm of section 11.2.1 found correct)
/// announce that same leap, so that one lying server cannot step the
/// clock by a second at the end of June or December. A lone truechimer
/// is its own majority: set [`SystemConfig::min_sources`] to have
/// several sources agree on the time and the leap alike.
///
/// # Example: a client of a local server over UDP
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::net::UdpSocket;
/// use std::time::{Duration, SystemTime};
///
/// use ntp_client::{Event, Input, OsSeededRng, Output, StdClock, System, SystemConfig};
/// use ntp_client::{RefId, Stratum, SystemState, Timestamp};
///
/// // A primary server on a thread, from ntp-server (a dev-dependency).
/// let server_socket = UdpSocket::bind("127.0.0.1:0")?;
/// let server_address = server_socket.local_addr()?;
/// std::thread::spawn(move || {
///     let state = SystemState::primary(RefId::LOCL, Timestamp::from(SystemTime::now()));
///     let mut config = ntp_server::ServerConfig::default();
///     config.acl_default = ntp_server::AccessAction::Allow; // a loopback demo polls fast
///     let mut server = ntp_server::Server::new(&config, state).unwrap();
///     let origin = std::time::Instant::now();
///     let (mut buf, mut out) = ([0u8; 1024], [0u8; 48]);
///     while let Ok((len, from)) = server_socket.recv_from(&mut buf) {
///         let rx = Timestamp::from(SystemTime::now());
///         let now = ntp_server::Instant::from_std(origin, std::time::Instant::now());
///         if let ntp_server::Action::Respond(reply) = server.handle(&buf[..len], from, rx, now, &mut out) {
///             let _ = server_socket.send_to(server.finish(&reply, &mut out, Timestamp::from(SystemTime::now())), from);
///         }
///     }
/// });
///
/// // The client: our own clock is the system clock, never touched here.
/// let clock = StdClock::new();
/// let config = SystemConfig::default()
///     .with_poll_range(1, 2) // a loopback demo; keep the defaults for real servers
///     .with_initial_frequency(0.0); // as if from a drift file: sync at once
/// let mut system = System::new(config, clock.now(), clock.wall(), OsSeededRng::new()?)?;
/// system.add_source(server_address)?;
///
/// let socket = UdpSocket::bind("127.0.0.1:0")?;
/// // Room for any answer: an NTS one is as long as its request, up to
/// // ntp_nts::client::MAX_RESPONSE_LEN (1283) octets.
/// let (mut buf, mut datagram) = (Vec::with_capacity(48), [0u8; 2048]);
/// let deadline = std::time::Instant::now() + Duration::from_secs(20);
/// let mut synchronized = false;
/// while !synchronized && std::time::Instant::now() < deadline {
///     // Drain the output.
///     let wake = loop {
///         match system.poll_output(clock.now(), clock.wall(), &mut buf) {
///             Output::Transmit { destination, len, .. } => {
///                 socket.send_to(&buf[..len], destination)?;
///             }
///             Output::Event(Event::Synchronized { stratum, .. }) => {
///                 assert_eq!(stratum, Stratum::new(2));
///                 synchronized = true;
///             }
///             Output::Event(_event) => {} // a real client applies steps and adjustments here
///             Output::Timeout(at) => break at,
///             _ => {}
///         }
///     };
///     // Wait for a datagram or the timeout.
///     let wait = wake.saturating_duration_since(clock.now()).max(Duration::from_millis(1));
///     socket.set_read_timeout(Some(wait))?;
///     match socket.recv_from(&mut datagram) {
///         Ok((len, from)) => {
///             let input = Input::Datagram { from, data: &datagram[..len], rx_wall: clock.wall() };
///             let _ = system.handle_input(clock.now(), input); // refused datagrams change nothing
///         }
///         Err(_) => system.handle_timeout(clock.now()),
///     }
/// }
/// assert!(synchronized);
/// let state = system.system_state();
/// assert_eq!(state.reference_id, RefId::from_ip(server_address.ip()));
/// println!("{}", system.peer_table(clock.now()));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct System<R> {
    config: SystemConfig,
    rng: R,
    sources: Vec<SourceSlot>,
    next_id: u64,
    discipline: Discipline,
    candidates: Vec<Candidate>,
    scratch: Vec<ntp_select::Slot>,
    events: VecDeque<Event>,
    system_peer: Option<SourceId>,
    state: SystemState,
    synchronized: bool,
    offset: f64,
    jitter: f64,
    /// Filter epoch of the last sample handed to the discipline, `s.t`.
    last_update_epoch: Option<f64>,
    last_now: Instant,
    /// The clock's reading at an instant: those of the latest
    /// [`poll_output`](Self::poll_output) (moved with a step reported
    /// since), to read the clock at a reference clock's sample.
    wall_anchor: (Instant, Date),
    reselect: bool,
    /// When the last request left, for [`MIN_TRANSMIT_SEPARATION`].
    last_transmit: Option<Instant>,
    /// How long the next selection waits for every source's answer
    /// ([`SystemConfig::startup_wait`]).
    selection_wait: SelectionWait,
    /// When a source's scatter was first known (see
    /// [`System::waits_for_sources`]).
    first_fit: Option<Instant>,
    /// Scratch for the samples handed to the discipline in one selection.
    feed: Vec<(f64, usize)>,
    /// Scratch for the combined sources' offsets, with their indices.
    offsets: Vec<(f64, usize)>,
    /// Scratch for the bias measurement ([`System::measure_biases`]): the
    /// sources it compares, and those of them marked prefer or trust.
    bias_entries: Vec<BiasEntry>,
    preferred_entries: Vec<BiasEntry>,
    /// The pools.
    pools: Vec<Pool>,
    next_pool_id: u64,
}

impl<R: RngCore + CryptoRng> System<R> {
    /// Adds an NTS source (RFC 8915) with the configured
    /// [`SystemConfig::source`]: `name` (a host name or an address) and
    /// `ke_port` ([`NTS_KE_PORT`](ntp_nts::ke::NTS_KE_PORT), 4460, is the
    /// standard one) locate its NTS-KE server. The source has no NTP
    /// address, keys or cookies yet: the next
    /// [`poll_output`](Self::poll_output) asks for NTS-KE
    /// ([`Output::NtsKe`]), and once [`handle_nts_ke`](Self::handle_nts_ke)
    /// brought them, its requests carry the NTS extension fields and only
    /// authentic answers are used (section 5.7). Only a system whose
    /// generator is cryptographic ([`CryptoRng`]) takes NTS sources: it
    /// draws the unique identifiers and AEAD nonces.
    ///
    /// # Errors
    ///
    /// As [`add_nts_source_with`](Self::add_nts_source_with). The
    /// system's source configuration is used without its
    /// [`SntpConfig::version`](crate::SntpConfig::version): NTS requests
    /// are NTPv4.
    pub fn add_nts_source(&mut self, name: &str, ke_port: u16) -> Result<SourceId, ConfigError> {
        let mut config = self.config.source.clone();
        config.sntp.version = None;
        self.add_nts_source_with(name, ke_port, config)
    }

    /// Adds an NTS source with its own configuration (its precision is
    /// still the system's); see [`add_nts_source`](Self::add_nts_source).
    ///
    /// # Errors
    ///
    /// [`ConfigError::NtsWithKey`] if `config` has a symmetric key,
    /// [`ConfigError::Version`] if it asks for a version other than 4
    /// (NTS protects NTPv4 requests with extension fields, RFC 8915
    /// section 5, which older versions cannot carry, RFC 7822), or the
    /// error of [`SourceConfig::validate`].
    pub fn add_nts_source_with(
        &mut self,
        name: &str,
        ke_port: u16,
        config: SourceConfig,
    ) -> Result<SourceId, ConfigError> {
        if config.sntp.key.is_some() {
            return Err(ConfigError::NtsWithKey);
        }
        if let Some(version) = config.sntp.version.filter(|v| *v != crate::VERSION) {
            return Err(ConfigError::Version(version));
        }
        let unspecified = SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0);
        let id = self.insert_source(unspecified, config)?;
        let state = NtsState::new(String::from(name), ke_port, self.last_now);
        if let Some(slot) = self.sources.last_mut() {
            slot.nts = Some(Box::new(state));
        }
        Ok(id)
    }
}

/// The NTS checks of a datagram for an NTS source (RFC 8915 section 5.7),
/// before the source's own: the answer must echo the unique identifier
/// of the outstanding request and verify with the S2C key, or nothing in
/// it is believed.
///
/// - An authentic answer confirms the session and its cookies go into the
///   jar whatever the source then says of it: they are authentic and
///   unused, and dropping them because the server is unsynchronized, too
///   far or its timestamps are odd would only spend the jar and send the
///   client back to NTS-KE, far costlier for the server, every eight
///   polls. The answer is then the source's to check like any other; a
///   refusal leaves the [`Source`] as it was.
/// - An NTS NAK with our unique identifier, answering a request still in
///   time, only marks the session for NTS-KE at the next poll.
/// - An unauthenticated kiss-o'-death `RATE`, `DENY` or `RSTR` that
///   echoes our unique identifier and whose origin timestamp is the
///   request's nonce backs the poll off, as a `RATE` does
///   ([`Source::handle_unauthenticated_kiss`]), and changes nothing else:
///   no stop, no cookie dropped, no NTS-KE. Section 5.7 has the client
///   "comply with Section 7.4 of RFC 5905" for a kiss-o'-death with our
///   unique identifier, "where required", but the kiss is not
///   authenticated: anyone on the path sees the identifier and the nonce.
///   Honouring `RATE` costs such an attacker's victim nothing it could not
///   already do by dropping packets, and spares a rate-limiting server
///   the NTS-KE handshakes that cookie-spending polls would end in. A
///   `DENY` or `RSTR` obeyed to the letter (stop for good) would let it
///   silence the source with one packet, so they back off as `RATE` does:
///   a server that keeps refusing us drives the poll up to
///   [`MAX_POLL`](crate::MAX_POLL), nearly silence, while a forged one
///   costs one poll step. The identifier is required even before the
///   server first answered authentically (section 5.7 requires it from
///   then on): an NTS server echoes it in every kiss-o'-death, and a
///   packet without it is an unprotected answer to a protected request,
///   to be discarded. An authenticated kiss-o'-death is the source's to
///   obey, as from a plain server.
fn nts_reply(
    source: &mut Source,
    nts: &mut NtsState,
    now: Instant,
    data: &[u8],
    rx_wall: Date,
) -> Result<ReplyOutcome, ReplyError> {
    let pending = nts
        .pending
        .as_ref()
        .filter(|pending| source.outstanding_nonce() == Some(pending.nonce));
    let (Some(pending), Some(session)) = (pending, nts.session.as_ref()) else {
        // Nothing awaited: let the source say why (stopped, duplicate,
        // unexpected), without reading the datagram further.
        return Err(source.refusal());
    };
    let mut session = session.clone();
    match session.read_response(data, &pending.state) {
        Ok(_) => {
            // Also forgets the request's unique identifier: a replay of
            // this answer cannot add its cookies twice.
            nts.confirmed(session);
            source.handle_reply(now, data, rx_wall)
        }
        Err(ntp_nts::client::NtsError::Nak) => {
            source.check_in_time(now)?;
            nts.nak = true;
            Ok(ReplyOutcome::NtsNak)
        }
        Err(error @ ntp_nts::client::NtsError::Unauthenticated)
            if echoes_unique_id(data, &pending.state) =>
        {
            source
                .handle_unauthenticated_kiss(now, data, rx_wall)
                .ok_or(ReplyError::Nts(error))
        }
        Err(error) => Err(ReplyError::Nts(error)),
    }
}

/// Writes an NTS source's request into `buf`: the header of `transmit`
/// with the NTS fields (RFC 8915 section 5.7), and remembers its unique
/// identifier. Returns its length, `None` if it could not be written.
fn nts_request<R: RngCore + ?Sized>(
    nts: &mut NtsState,
    transmit: &Transmit,
    nonce: Option<Timestamp>,
    rng: &mut R,
    buf: &mut Vec<u8>,
) -> Option<usize> {
    let header = transmit
        .payload
        .first_chunk::<{ ntp_proto::HEADER_LEN }>()?;
    let session = nts.session.as_mut()?;
    buf.resize(crate::MAX_NTS_REQUEST_LEN, 0);
    let (len, state) = session.write_request(header, &mut NtsRng(rng), buf).ok()?;
    buf.truncate(len);
    nts.pending = nonce.map(|nonce| Pending { state, nonce });
    Some(len)
}

/// Events the queue holds without growing, per source and in total.
const EVENTS_PER_SOURCE: usize = 8;
const EVENTS_BASE: usize = 16;

impl<R: RngCore> System<R> {
    /// A system without sources. `now` and `wall_now` start the timers and
    /// the discipline's timeline.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of [`SystemConfig::validate`].
    pub fn new(
        config: SystemConfig,
        now: Instant,
        wall_now: Date,
        rng: R,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let discipline = match config.initial_frequency {
            Some(frequency) => Discipline::with_frequency_sd(
                config.discipline,
                wall_now,
                frequency,
                config
                    .initial_frequency_sd
                    .unwrap_or(ntp_discipline::DRIFT_FILE_FREQUENCY_SD),
            )?,
            None => Discipline::new(config.discipline, wall_now)?,
        };
        let precision = config.discipline.precision;
        let mut system = Self {
            config,
            rng,
            sources: Vec::new(),
            next_id: 1,
            discipline,
            candidates: Vec::new(),
            scratch: Vec::new(),
            events: VecDeque::with_capacity(EVENTS_BASE),
            system_peer: None,
            state: SystemState::unsynchronized(precision),
            synchronized: false,
            offset: 0.0,
            jitter: 0.0,
            last_update_epoch: None,
            last_now: now,
            wall_anchor: (now, wall_now),
            reselect: false,
            last_transmit: None,
            selection_wait: SelectionWait::Until(now.saturating_add(STARTUP_WAIT)),
            first_fit: None,
            feed: Vec::new(),
            offsets: Vec::new(),
            bias_entries: Vec::new(),
            preferred_entries: Vec::new(),
            pools: Vec::new(),
            next_pool_id: 1,
        };
        system.drain_discipline();
        Ok(system)
    }

    /// Adds a source for `address` with the configured
    /// [`SystemConfig::source`]; its first request is due at once.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DuplicateSource`] if a source has this address.
    pub fn add_source(&mut self, address: SocketAddr) -> Result<SourceId, ConfigError> {
        self.add_source_with(address, self.config.source.clone())
    }

    /// Adds a source with its own configuration (its precision is still
    /// the system's).
    ///
    /// # Errors
    ///
    /// [`ConfigError::DuplicateSource`] if a source has this address, or
    /// the error of [`SourceConfig::validate`].
    pub fn add_source_with(
        &mut self,
        address: SocketAddr,
        config: SourceConfig,
    ) -> Result<SourceId, ConfigError> {
        if self
            .sources
            .iter()
            .any(|slot| slot.nts.is_none() && slot.source.address() == address)
        {
            return Err(ConfigError::DuplicateSource);
        }
        self.insert_source(address, config)
    }

    /// Adds a source without the duplicate check.
    fn insert_source(
        &mut self,
        address: SocketAddr,
        mut config: SourceConfig,
    ) -> Result<SourceId, ConfigError> {
        config.sntp.precision = self.config.discipline.precision;
        let id = SourceId::new(self.next_id);
        let mut source = Source::new(id, address, config)?;
        source.set_system_poll(self.discipline.poll());
        source.set_cumulative_slew(self.discipline.cumulative_slew());
        self.next_id = self.next_id.saturating_add(1);
        self.sources.push(SourceSlot::new(source));
        let count = self.sources.len();
        self.candidates
            .reserve(count.saturating_sub(self.candidates.len()));
        self.scratch.resize(
            count.saturating_mul(SLOTS_PER_CANDIDATE),
            ntp_select::Slot::EMPTY,
        );
        // Every stage of every source at most, in one batch.
        let feed = count.saturating_mul(8);
        self.feed.reserve(feed.saturating_sub(self.feed.len()));
        self.offsets
            .reserve(count.saturating_sub(self.offsets.len()));
        let events = EVENTS_BASE.saturating_add(count.saturating_mul(EVENTS_PER_SOURCE));
        self.events
            .reserve(events.saturating_sub(self.events.len()));
        Ok(id)
    }

    /// Adds a reference clock (see the [`refclock`](crate::refclock)
    /// module): a source that sends no requests and takes the samples the
    /// caller hands [`handle_refclock_sample`](Self::handle_refclock_sample).
    /// It has the unspecified address `0.0.0.0:0` (no datagram reaches
    /// it), the peer table shows its reference id, and it takes part in
    /// the selection like any source; while it is the system peer, the
    /// system is its stratum plus one (1 by default) with its reference id.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Refclock`] for a bad configuration or a lock that
    /// names no source.
    pub fn add_refclock(&mut self, config: RefclockConfig) -> Result<SourceId, ConfigError> {
        config.validate()?;
        if config.lock.is_some_and(|lock| self.slot(lock).is_none()) {
            return Err(RefclockConfigError::UnknownLock.into());
        }
        let mut source = SourceConfig::default().with_poll_range(config.poll, config.poll);
        source.backoff_max_poll = config.poll;
        source.iburst = false;
        source.select = config.select;
        source.noselect = config.noselect;
        let unspecified = SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0);
        let id = self.insert_source(unspecified, source)?;
        if let Some(slot) = self.slot_mut(id) {
            slot.refclock = Some(Box::new(RefclockState::new(config)));
        }
        Ok(id)
    }

    /// One sample of reference clock `id` at `now`: `offset` is the
    /// reference time minus the local clock, seconds (positive when the
    /// local clock is behind), as the driver measured it; `leap` the
    /// reference's leap indicator when it gives one. The sample waits for
    /// the clock's next poll. A PPS sample is put in its second first (see
    /// the module docs).
    ///
    /// # Errors
    ///
    /// [`RefclockError`]: no such reference clock, an offset that is not
    /// finite or beyond 2^31 s, or a PPS sample that no lock source or
    /// synchronized clock puts in a second. A refused sample changes
    /// nothing.
    pub fn handle_refclock_sample(
        &mut self,
        id: SourceId,
        now: Instant,
        offset: f64,
        leap: Option<LeapIndicator>,
    ) -> Result<(), RefclockError> {
        let now = self.clamp(now);
        if !(offset.is_finite() && offset.abs() <= 2_147_483_648.0) {
            return Err(RefclockError::Offset);
        }
        let (pps, lock, correction) = self
            .slot(id)
            .and_then(|slot| slot.refclock.as_deref())
            .map(|state| (state.config.pps, state.config.lock, state.config.offset))
            .ok_or(RefclockError::Unknown)?;
        let mut offset = offset + correction;
        if pps {
            let within = offset - libm::round(offset);
            let reference = match lock {
                Some(lock) => self
                    .slot(lock)
                    .filter(|slot| slot.source.is_reachable())
                    .and_then(|slot| slot.source.peer_stats())
                    .map(|stats| stats.offset),
                None => self.synchronized.then_some(0.0),
            };
            offset = pps_in_second(within, reference.ok_or(RefclockError::NoSecond)?);
        }
        // The slew done when the sample was read, the one in progress
        // included: the discipline counts a slew at its next input, and
        // a poll's samples framed in the slew of the last input were
        // scattered by what was slewed since (the start's 0.1 s, slewed
        // within a second, put one sample 90 ms off; the correction of
        // its overshoot moved five by 70 us).
        let slew = self.discipline.slew_at(self.wall_at(now));
        let state = self
            .slot_mut(id)
            .and_then(|slot| slot.refclock.as_deref_mut())
            .ok_or(RefclockError::Unknown)?;
        state.push(offset, now.as_secs_f64(), slew)?;
        if let Some(leap) = leap {
            state.leap = leap;
        }
        Ok(())
    }

    /// Polls the reference clocks that are due: their samples become one
    /// each, for the clock filter. Whether any changed. `wall_now` is the
    /// clock at `now`.
    fn poll_refclocks(&mut self, now: Instant, wall_now: Date) -> bool {
        let mut changed = false;
        for slot in &mut self.sources {
            let Some(state) = slot.refclock.as_deref_mut() else {
                continue;
            };
            if !slot.source.is_due(now) {
                continue;
            }
            let sample = state.take();
            let stratum = Stratum::new(state.config.stratum);
            let (leap, refid) = (state.leap, state.config.refid);
            // A sample the filter cannot take (not finite) is a missed
            // poll; the median of finite samples always is.
            if slot
                .source
                .refclock_poll(now, sample, leap, stratum, refid)
                .is_err()
            {
                state.clear();
            } else if let Some((sample, epoch)) = sample {
                // The sample's offset is in the cumulative-slew frame of
                // its epoch; taking today's slew off instead misses the
                // phase slewed within the poll, a tiny share of the
                // seconds the jitter limit is about.
                let age = NtpDuration::from_seconds_f64(now.as_secs_f64() - epoch)
                    .unwrap_or(NtpDuration::ZERO);
                let wall = wall_now.checked_sub(age).unwrap_or(wall_now);
                slot.record_line(
                    sample.offset() - self.discipline.cumulative_slew()
                        + self.discipline.correction_at(wall),
                );
            }
            changed |= slot.source.take_changed();
            let id = slot.source.id();
            while let Some(event) = slot.source.poll_event() {
                self.events.push_back(Event::Source { id, event });
            }
        }
        changed
    }

    /// Adds a pool: `name` stands for up to `max_sources` servers (chrony's
    /// `pool NAME maxsources N`, default 4 there; the NTP Pool Project's
    /// names return four addresses per lookup). The next
    /// [`poll_output`](Self::poll_output) asks for the name to be resolved
    /// ([`Output::Resolve`]); the addresses handed to
    /// [`handle_resolved`](Self::handle_resolved) become sources with
    /// [`SystemConfig::source`].
    ///
    /// A member is replaced when it has not answered for
    /// [`POOL_UNREACHABLE_POLLS`](crate::POOL_UNREACHABLE_POLLS) polls,
    /// has been a falseticker for
    /// [`POOL_FALSETICKER_HOLD`](crate::POOL_FALSETICKER_HOLD), or was
    /// stopped by a kiss-o'-death. While members are missing the name is
    /// resolved again, first after
    /// [`POOL_RESOLVE_MIN_INTERVAL`](crate::POOL_RESOLVE_MIN_INTERVAL)
    /// and then at intervals doubling up to
    /// [`POOL_RESOLVE_MAX_INTERVAL`](crate::POOL_RESOLVE_MAX_INTERVAL) as
    /// long as resolutions bring nothing new.
    ///
    /// # Errors
    ///
    /// [`ConfigError::PoolSize`] when `max_sources` is zero.
    pub fn add_pool(&mut self, name: &str, max_sources: usize) -> Result<PoolId, ConfigError> {
        self.add_pool_with(name, max_sources, self.config.source.clone())
    }

    /// Adds a pool whose members get their own configuration (their
    /// precision is still the system's); see [`add_pool`](Self::add_pool).
    ///
    /// # Errors
    ///
    /// [`ConfigError::PoolSize`] when `max_sources` is zero, or the error
    /// of [`SourceConfig::validate`].
    pub fn add_pool_with(
        &mut self,
        name: &str,
        max_sources: usize,
        config: SourceConfig,
    ) -> Result<PoolId, ConfigError> {
        if max_sources == 0 {
            return Err(ConfigError::PoolSize);
        }
        config.validate()?;
        let id = PoolId::new(self.next_pool_id);
        self.next_pool_id = self.next_pool_id.saturating_add(1);
        self.pools.push(Pool::new(
            id,
            name.into(),
            max_sources,
            config,
            self.last_now,
        ));
        Ok(id)
    }

    /// Removes a pool and its members; `false` if there is none with this
    /// id.
    pub fn remove_pool(&mut self, id: PoolId) -> bool {
        let before = self.pools.len();
        self.pools.retain(|pool| pool.id != id);
        if self.pools.len() == before {
            return false;
        }
        self.sources.retain(|slot| slot.pool != Some(id));
        self.reselect = true;
        true
    }

    /// The name of a pool, as given to [`add_pool`](Self::add_pool).
    #[must_use]
    pub fn pool_name(&self, id: PoolId) -> Option<&str> {
        self.pool(id).map(|pool| pool.name.as_str())
    }

    /// The pool a source belongs to.
    #[must_use]
    pub fn pool_of(&self, id: SourceId) -> Option<PoolId> {
        self.slot(id).and_then(|slot| slot.pool)
    }

    /// The current members of a pool.
    pub fn pool_members(&self, id: PoolId) -> impl Iterator<Item = &Source> + '_ {
        self.sources
            .iter()
            .filter(move |slot| slot.pool == Some(id))
            .map(|slot| &slot.source)
    }

    /// Takes the addresses a pool's name resolved to (an answer to
    /// [`Output::Resolve`]; an unasked answer is used too). Addresses that
    /// are already sources, or were removed from this pool less than
    /// [`POOL_BLOCK_TIME`](crate::POOL_BLOCK_TIME) ago, are skipped; the
    /// others become members, in order, until the pool is full. Returns how
    /// many were added.
    ///
    /// # Errors
    ///
    /// [`PoolError::UnknownPool`]; nothing changed then.
    pub fn handle_resolved(
        &mut self,
        now: Instant,
        pool: PoolId,
        addresses: &[SocketAddr],
    ) -> Result<usize, PoolError> {
        let now = self.clamp(now);
        let index = self
            .pools
            .iter()
            .position(|p| p.id == pool)
            .ok_or(PoolError::UnknownPool)?;
        let mut added = 0;
        for &address in addresses {
            let Some(entry) = self.pools.get(index) else {
                break;
            };
            if self.pool_members_count(pool) >= entry.max_sources {
                break;
            }
            if entry.is_blocked(address, now)
                || self
                    .sources
                    .iter()
                    .any(|slot| same_address(slot.source.address(), address))
            {
                continue;
            }
            let config = entry.config.clone();
            let Ok(id) = self.add_source_with(address, config) else {
                continue;
            };
            if let Some(slot) = self.sources.last_mut() {
                slot.pool = Some(pool);
            }
            self.events
                .push_back(Event::PoolMemberAdded { pool, id, address });
            added += 1;
        }
        if added > 0 {
            if let Some(entry) = self.pools.get_mut(index) {
                entry.filled(now);
            }
        }
        Ok(added)
    }

    fn pool(&self, id: PoolId) -> Option<&Pool> {
        self.pools.iter().find(|pool| pool.id == id)
    }

    /// Removes the pool members that have to go (see
    /// [`add_pool`](Self::add_pool)), one event each.
    fn prune_pools(&mut self, now: Instant) {
        while let Some((index, reason)) = self.sources.iter().enumerate().find_map(|(i, slot)| {
            slot.pool?;
            let source = &slot.source;
            let reason = if let Some(code) = source.stopped_by() {
                PoolRemoval::Kissed(code)
            } else if source.unanswered_polls() >= POOL_UNREACHABLE_POLLS {
                PoolRemoval::Unreachable
            } else if slot
                .falseticker_since
                .is_some_and(|since| now >= since.saturating_add(POOL_FALSETICKER_HOLD))
            {
                PoolRemoval::Falseticker
            } else {
                return None;
            };
            Some((i, reason))
        }) {
            if index >= self.sources.len() {
                break;
            }
            let slot = self.sources.remove(index);
            let (id, address) = (slot.source.id(), slot.source.address());
            if let Some(pool) = slot.pool {
                if let Some(entry) = self.pools.iter_mut().find(|p| p.id == pool) {
                    entry.removed(address, now);
                }
                self.events.push_back(Event::PoolMemberRemoved {
                    pool,
                    id,
                    address,
                    reason,
                });
            }
            if self.system_peer == Some(id) {
                self.system_peer = None;
            }
            self.reselect = true;
        }
    }

    /// The first pool whose name is due to be resolved.
    fn pool_to_resolve(&self, now: Instant) -> Option<usize> {
        self.pools.iter().position(|pool| {
            now >= pool.next_resolve && self.pool_members_count(pool.id) < pool.max_sources
        })
    }

    fn pool_members_count(&self, id: PoolId) -> usize {
        self.sources
            .iter()
            .filter(|slot| slot.pool == Some(id))
            .count()
    }

    /// Removes a source; `false` if there is none with this id.
    pub fn remove_source(&mut self, id: SourceId) -> bool {
        let before = self.sources.len();
        self.sources.retain(|slot| slot.source.id() != id);
        let removed = self.sources.len() != before;
        if removed {
            self.reselect = true;
        }
        removed
    }

    /// The NTS-KE server of an NTS source: its host name (or address) and
    /// TCP port, as given to [`add_nts_source`](Self::add_nts_source).
    /// `None` for other sources.
    #[must_use]
    pub fn nts_ke_target(&self, id: SourceId) -> Option<(&str, u16)> {
        let nts = self.slot(id)?.nts.as_deref()?;
        Some((nts.host.as_str(), nts.ke_port))
    }

    /// The unused cookies of an NTS source (none before its first
    /// NTS-KE); `None` for other sources.
    #[must_use]
    pub fn nts_cookies(&self, id: SourceId) -> Option<usize> {
        Some(self.slot(id)?.nts.as_deref()?.cookies())
    }

    /// Takes the result of an NTS-KE exchange for an NTS source (the answer
    /// to [`Output::NtsKe`]; an unasked or late answer is used too).
    ///
    /// On success the source drops its old keys and cookies (RFC 8915
    /// section 5.7), takes the new ones, and sends its requests to
    /// `outcome.ntp_address` from now on (a request in flight to another
    /// address is forgotten); its next poll goes out as scheduled (at once
    /// if it was waiting for the exchange). On failure nothing changes:
    /// the source keeps polling with the cookies it has, if any (section
    /// 5.7), and NTS-KE is asked again after the retry interval
    /// ([`NTS_KE_RETRY_MIN`](crate::NTS_KE_RETRY_MIN), growing by half at
    /// each attempt until an exchange is followed by an authentic answer,
    /// section 4.2).
    ///
    /// # Errors
    ///
    /// [`NtsKeError::UnknownSource`], [`NtsKeError::NotNts`]; nothing
    /// changed then. [`NtsKeError::NoCookie`] for an outcome without a
    /// cookie, which counts as a failure.
    pub fn handle_nts_ke(
        &mut self,
        now: Instant,
        id: SourceId,
        result: Result<NtsKeOutcome, NtsKeFailed>,
    ) -> Result<(), NtsKeError> {
        let now = self.clamp(now);
        let slot = self.slot_mut(id).ok_or(NtsKeError::UnknownSource)?;
        let nts = slot.nts.as_deref_mut().ok_or(NtsKeError::NotNts)?;
        let Ok(outcome) = result else {
            return Ok(());
        };
        if outcome.cookies.is_empty() {
            return Err(NtsKeError::NoCookie);
        }
        nts.established(outcome.keys, outcome.cookies, outcome.ntp_address);
        slot.source.set_address(outcome.ntp_address);
        slot.source.handle_timeout(now);
        Ok(())
    }

    /// The sources, in the order they were added.
    pub fn sources(&self) -> impl ExactSizeIterator<Item = &Source> + '_ {
        self.sources.iter().map(|slot| &slot.source)
    }

    /// The source with this id.
    #[must_use]
    pub fn source(&self, id: SourceId) -> Option<&Source> {
        self.slot(id).map(|slot| &slot.source)
    }

    /// The tally of a source after the last selection (`' '` before one).
    #[must_use]
    pub fn tally(&self, id: SourceId) -> Option<Tally> {
        self.slot(id).map(|slot| slot.tally)
    }

    /// The system peer, if the last selection found one.
    #[must_use]
    pub const fn system_peer(&self) -> Option<SourceId> {
        self.system_peer
    }

    /// Whether the system is synchronized (the discipline accepted an
    /// update from the current selection).
    #[must_use]
    pub const fn is_synchronized(&self) -> bool {
        self.synchronized
    }

    /// The system offset THETA of the last selection, seconds.
    #[must_use]
    pub const fn offset(&self) -> f64 {
        self.offset
    }

    /// The system jitter PSI of the last selection, seconds.
    #[must_use]
    pub const fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The system variables (RFC 5905, section 11.2.3, figure 25), to copy
    /// into an `ntp-server` ([`SystemState`]).
    #[must_use]
    pub const fn system_state(&self) -> SystemState {
        self.state
    }

    /// The clock discipline.
    #[must_use]
    pub const fn discipline(&self) -> &Discipline {
        &self.discipline
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &SystemConfig {
        &self.config
    }

    fn slot(&self, id: SourceId) -> Option<&SourceSlot> {
        self.sources.iter().find(|slot| slot.source.id() == id)
    }

    fn slot_mut(&mut self, id: SourceId) -> Option<&mut SourceSlot> {
        self.sources.iter_mut().find(|slot| slot.source.id() == id)
    }

    pub(crate) fn slots(&self) -> &[SourceSlot] {
        &self.sources
    }

    /// The clock's reading at `now` (not before the latest input), from
    /// [`wall_anchor`](Self::wall_anchor) and the time elapsed since.
    fn wall_at(&self, now: Instant) -> Date {
        let (anchor, wall) = self.wall_anchor;
        NtpDuration::from_seconds_f64(now.saturating_duration_since(anchor).as_secs_f64())
            .ok()
            .and_then(|elapsed| wall.checked_add(elapsed))
            .unwrap_or(wall)
    }

    fn clamp(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    /// Takes one input.
    ///
    /// For an NTS source (RFC 8915 section 5.7) only an answer that
    /// echoes the unique identifier of the outstanding request and whose
    /// authenticator verifies is read further; its cookies go into the jar
    /// even when the answer then fails an NTP check (they are authentic
    /// and unused). An unauthenticated kiss-o'-death `RATE`, `DENY` or
    /// `RSTR` with the request's unique identifier and nonce backs the
    /// poll off ([`ReplyOutcome::RateReduced`]) and changes nothing else.
    ///
    /// # Errors
    ///
    /// A [`DatagramError`] if the datagram is not used; no source changed
    /// then (the cookies of an authentic NTS answer are kept all the
    /// same).
    pub fn handle_input(
        &mut self,
        now: Instant,
        input: Input<'_>,
    ) -> Result<ReplyOutcome, DatagramError> {
        let now = self.clamp(now);
        match input {
            Input::Datagram {
                from,
                data,
                rx_wall,
            } => {
                // A dual-stack socket reports an IPv4 server as
                // [::ffff:a.b.c.d]: compare canonical addresses.
                let canonical = SocketAddr::new(from.ip().to_canonical(), from.port());
                let slot = self
                    .sources
                    .iter_mut()
                    .find(|slot| slot.receives_from(from, canonical))
                    .ok_or(DatagramError::UnknownSource(from))?;
                let id = slot.source.id();
                // T4's frame for the answer; a refused datagram leaves
                // the source as it was.
                let newest = slot.newest_epoch();
                let slewed = slot.source.slewed();
                slot.source.set_slewed(self.discipline.slew_at(rx_wall));
                let outcome = match slot.nts.as_deref_mut() {
                    None => slot.source.handle_reply(now, data, rx_wall),
                    Some(nts) => nts_reply(&mut slot.source, nts, now, data, rx_wall),
                }
                .map_err(|error| {
                    slot.source.set_slewed(slewed);
                    DatagramError::Reply {
                        source_id: id,
                        error,
                    }
                })?;
                if outcome == ReplyOutcome::NtsNak {
                    self.events.push_back(Event::Source {
                        id,
                        event: SourceEvent::NtsNak,
                    });
                }
                if let ReplyOutcome::Sample { measurement, .. } = outcome {
                    // An interleaved measurement of the exchange the newest
                    // sample measured replaced it ([`ClockFilter::remeasure`]):
                    // one exchange, one delay.
                    let remeasured = measurement.interleaved
                        && newest.is_some()
                        && slot.newest_epoch() == newest;
                    slot.record_delay(measurement.delay, remeasured);
                    // T4 is the exchange's: an interleaved answer
                    // measures the previous one.
                    let at = measurement.t4;
                    slot.record_line(measurement.offset + self.discipline.correction_at(at));
                }
                let changed = slot.source.take_changed();
                while let Some(event) = slot.source.poll_event() {
                    self.events.push_back(Event::Source { id, event });
                }
                if changed {
                    self.clock_select(now, rx_wall);
                }
                Ok(outcome)
            }
        }
    }

    /// Reports when a request of source `id` really left: `nonce` is the
    /// transmit timestamp field of the datagram sent (octets 40 to 47 of
    /// the [`Output::Transmit`] payload), `t1` our clock when it left, as
    /// the kernel or the network card stamped it (the socket's error
    /// queue with `SO_TIMESTAMPING`). The measurement then uses it instead
    /// of the clock read before sending ([`Source::handle_transmitted`]).
    /// Returns whether a source with that id exists; a report for a
    /// request no longer awaited changes nothing.
    pub fn handle_transmitted(&mut self, id: SourceId, nonce: Timestamp, t1: Date) -> bool {
        let Some(slot) = self.slot_mut(id) else {
            return false;
        };
        slot.source.handle_transmitted(nonce, t1);
        true
    }

    /// Tells the system that somebody else stepped the clock by `by` (an
    /// operator, another program, a resumed virtual machine), as the
    /// caller can tell from a monotonic clock: not a step the caller made
    /// on [`Event::ClockStep`] or a leap second. The discipline does not
    /// count the step as elapsed time ([`Discipline::clock_stepped`]);
    /// every source forgets its samples and its request in flight, which
    /// describe the old timescale, as after a step of the system's own
    /// (RFC 5905, section 11.3), and polls again at its minimum poll
    /// ([`Source::poll_soon`]); and the system is unsynchronized until the
    /// discipline has dealt with the offset the step made. A zero step
    /// changes nothing.
    pub fn handle_clock_stepped(&mut self, by: NtpDuration) {
        if by == NtpDuration::ZERO {
            return;
        }
        self.discipline.clock_stepped(by);
        if let Some(wall) = self.wall_anchor.1.checked_add(by) {
            self.wall_anchor.1 = wall;
        }
        self.restart_after_step();
        // The offset the step made is to be measured soon.
        for slot in &mut self.sources {
            slot.source.poll_soon();
        }
    }

    /// Expires requests whose reply timeout passed. Polls are sent from
    /// [`poll_output`](Self::poll_output); an early or extra call is a
    /// no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        for slot in &mut self.sources {
            slot.source.handle_timeout(now);
        }
    }

    /// The next thing to do; call until it returns [`Output::Timeout`].
    /// `wall_now` is the disciplined clock now (T1 of a request sent now;
    /// it also drives the discipline's once-a-second adjustments). A
    /// request is written into `buf` (cleared first; 48 octets of capacity
    /// mean no allocation).
    pub fn poll_output(&mut self, now: Instant, wall_now: Date, buf: &mut Vec<u8>) -> Output {
        let now = self.clamp(now);
        self.wall_anchor = (now, wall_now);
        for slot in &mut self.sources {
            slot.source.handle_timeout(now);
        }
        // The discipline reads `wall_now` as the clock after every action
        // it asked for: while events (a step among them) wait for the
        // caller, `wall_now` may predate them, so the discipline waits too.
        let applied = self.events.is_empty();
        if applied && wall_now >= self.discipline.next_timeout() {
            self.discipline.handle_timeout(wall_now);
            self.drain_discipline();
        }
        if self.events.is_empty() && core::mem::take(&mut self.reselect) {
            self.clock_select(now, wall_now);
        }
        if !self.pools.is_empty() {
            self.prune_pools(now);
            if let Some(index) = self.pool_to_resolve(now) {
                if let Some(pool) = self.pools.get_mut(index) {
                    pool.asked(now);
                    return Output::Resolve { pool: pool.id };
                }
            }
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        if self.poll_refclocks(now, wall_now) {
            self.clock_select(now, wall_now);
            if let Some(event) = self.events.pop_front() {
                return Output::Event(event);
            }
        }
        let searching = self.config.search_at_max_poll
            && !self.sources.iter().any(|slot| slot.source.is_reachable());
        // Requests wait until MIN_TRANSMIT_SEPARATION after the last one.
        let sources_not_before = self
            .last_transmit
            .map_or(now, |last| last.saturating_add(MIN_TRANSMIT_SEPARATION))
            .max(now);
        for slot in &mut self.sources {
            if slot.refclock.is_some() || (sources_not_before > now && slot.source.is_due(now)) {
                continue;
            }
            slot.source.set_backoff_limited(searching);
            let id = slot.source.id();
            if let Some(nts) = slot.nts.as_deref_mut() {
                if !slot.source.is_due(now) {
                    continue;
                }
                if nts.wants_ke() && now >= nts.next_ke {
                    nts.asked(now, poll_interval(slot.source.config().backoff_max_poll));
                    return Output::NtsKe { source: id };
                }
                if nts.cookies() == 0 {
                    // Waiting for NTS-KE: nothing to send with.
                    continue;
                }
            }
            slot.source.set_slewed(self.discipline.slew_at(wall_now));
            if let Some(transmit) = slot.source.poll_transmit(now, wall_now, &mut self.rng) {
                if slot.source.take_changed() {
                    self.reselect = true;
                }
                while let Some(event) = slot.source.poll_event() {
                    self.events.push_back(Event::Source { id, event });
                }
                buf.clear();
                let len = match slot.nts.as_deref_mut() {
                    None => {
                        buf.extend_from_slice(&transmit.payload);
                        transmit.payload.len()
                    }
                    Some(nts) => {
                        let nonce = slot.source.outstanding_nonce();
                        match nts_request(nts, &transmit, nonce, &mut self.rng, buf) {
                            Some(len) => len,
                            // Cannot happen with a cookie in the jar; the
                            // request then times out like a lost one.
                            None => continue,
                        }
                    }
                };
                self.last_transmit = Some(now);
                return Output::Transmit {
                    source: id,
                    destination: transmit.destination,
                    len,
                };
            }
        }
        if self.reselect {
            return Output::Timeout(now);
        }
        Output::Timeout(self.next_timeout(now, wall_now, sources_not_before))
    }

    /// The earliest source timer (not before `sources_not_before`) or
    /// discipline second.
    fn next_timeout(&self, now: Instant, wall_now: Date, sources_not_before: Instant) -> Instant {
        let discipline = self
            .discipline
            .next_timeout()
            .checked_duration_since(wall_now)
            .map_or(now, |wait| {
                // Rounded up, so that the clock has reached the deadline
                // when the caller comes back (a wait below 1 ns would
                // otherwise round to zero and spin).
                let nanos = u64::try_from(wait.to_nanos().max(0))
                    .unwrap_or(u64::MAX)
                    .saturating_add(1);
                now.saturating_add(core::time::Duration::from_nanos(nanos))
            });
        let pools = self
            .pools
            .iter()
            .filter(|pool| self.pool_members_count(pool.id) < pool.max_sources)
            .map(|pool| pool.next_resolve);
        let falsetickers = self
            .sources
            .iter()
            .filter(|slot| slot.pool.is_some())
            .filter_map(|slot| slot.falseticker_since)
            .map(|since| since.saturating_add(POOL_FALSETICKER_HOLD));
        self.sources
            .iter()
            .filter_map(|slot| {
                let timeout = slot.source.next_timeout()?;
                if slot.refclock.is_some() {
                    return Some(timeout);
                }
                let timeout = timeout.max(sources_not_before);
                match slot.nts.as_deref() {
                    // A source without cookies waits until it may ask for
                    // NTS-KE again.
                    Some(nts) if nts.cookies() == 0 => Some(timeout.max(nts.next_ke)),
                    _ => Some(timeout),
                }
            })
            .chain(pools)
            .chain(falsetickers)
            .fold(discipline, Instant::min)
            .max(now)
    }

    /// Moves the discipline's outputs into the event queue.
    fn drain_discipline(&mut self) {
        loop {
            let event = match self.discipline.poll_output() {
                ntp_discipline::Output::Step(offset) => Event::ClockStep(offset),
                ntp_discipline::Output::Adjust(adjust) => Event::ClockAdjust(adjust),
                ntp_discipline::Output::Leap(leap) => Event::Leap(leap),
                ntp_discipline::Output::Panic { offset } => Event::Panic { offset },
                _ => break,
            };
            self.events.push_back(event);
        }
        let slew = self.discipline.cumulative_slew();
        let poll = self.discipline.poll();
        let refclock_leads = self
            .sources
            .iter()
            .any(|slot| slot.refclock.is_some() && Some(slot.source.id()) == self.system_peer);
        for slot in &mut self.sources {
            slot.source.set_cumulative_slew(slew);
            // While a reference clock leads, the system poll follows its
            // samples (16 s apart, a fraction of a microsecond each), and
            // a network server that is not combined with it is a stand-by:
            // it is polled at its maximum poll, as chrony's servers climb
            // to theirs when their samples are steady, instead of at the
            // pulse's pace (four to six times chronyd's packets beside a
            // PPS or a PHC). It is asked again soon once it is needed.
            let standby = refclock_leads && slot.refclock.is_none() && !combined(slot.tally);
            if slot.standby && !standby {
                slot.source.poll_soon();
            }
            slot.standby = standby;
            let source_poll = if standby {
                slot.source.config().max_poll
            } else {
                poll
            };
            slot.source.set_system_poll(source_poll);
        }
    }

    /// Fills the candidate list for the selection: every source that may
    /// be selected (see [`SystemConfig::auth_select`] and `noselect`), has
    /// peer variables and passes the fitness test, with its selection
    /// options. Returns how many sources may be selected at all, fit or
    /// not (for the default minsources), and whether one of those has the
    /// `require` option.
    fn gather_candidates(&mut self, now_s: f64, select: &SelectConfig) -> (usize, bool) {
        let local = self
            .config
            .local_address
            .map_or(self.state.reference_id, RefId::from_ip);
        let context = FitContext {
            local_reference_id: local,
            system_reference_id: self.state.reference_id,
            system_poll: self.discipline.poll(),
        };
        self.candidates.clear();
        let any_authenticated = self.sources.iter().any(SourceSlot::authenticated);
        let any_unauthenticated = !self.sources.iter().all(SourceSlot::authenticated);
        let mut selectable = 0_usize;
        let mut required = false;
        for slot in &mut self.sources {
            let config = slot.source.config();
            let Some(options) = self
                .config
                .auth_select
                .effective(
                    config.select,
                    slot.authenticated(),
                    any_authenticated,
                    any_unauthenticated,
                )
                .filter(|_| !config.noselect)
            else {
                continue;
            };
            selectable += 1;
            required |= options.require;
            let Some(stats) = slot.source.peer_stats() else {
                continue;
            };
            // A reference clock is stratum 0 (or the stratum configured),
            // which the fitness test takes for a kiss-o'-death when it
            // comes in a packet; and its reference id is its own, which
            // the loop test would take for ours once it is the system
            // peer. Neither test means anything for it.
            let mut fit_stats = stats;
            if slot.refclock.is_some() {
                fit_stats.stratum = Stratum::PRIMARY;
            }
            // The distance test judges the source's own scatter. RFC 5905's
            // peer jitter also holds the drift of our clock between the
            // filter's samples, which a clock running far off its
            // frequency (a wrong drift file, a wrong estimate) makes
            // seconds wide in every source alike: all of them would then
            // fail the test, no update would reach the discipline, and the
            // frequency could never be corrected. The scatter about the
            // line through the free oscillator's offsets is the source's
            // jitter without that drift.
            if let Some(scatter) = slot.line.jitter() {
                fit_stats.jitter = fit_stats.jitter.min(scatter);
            }
            if fit_stats.fit(now_s, &context, select).is_err() {
                continue;
            }
            if !slot.within_jitter(self.config.max_jitter, &mut self.events) {
                continue;
            }
            if self.config.max_jitter.is_some() && slot.awaits_scatter() {
                continue;
            }
            if let Ok(candidate) = stats.candidate(slot.source.id().get(), now_s, select) {
                self.candidates.push(candidate.with_options(options));
            }
        }
        (selectable, required)
    }

    /// Fitness, select, cluster, combine, and the discipline update
    /// (RFC 5905, Appendix A.5.5.1 `clock_select` and `clock_update`).
    fn clock_select(&mut self, now: Instant, wall: Date) {
        let now_s = now.as_secs_f64();
        let mut select = self.config.select;
        if self.config.startup_wait && self.waits_for_sources(now) {
            return;
        }
        let (selectable, required) = self.gather_candidates(now_s, &select);
        let trusted = self.candidates.iter().any(|c| c.options().trust);
        select.min_candidates = select
            .min_candidates
            .max(self.min_sources(selectable, trusted));
        let needed = self.candidates.len().saturating_mul(SLOTS_PER_CANDIDATE);
        if self.scratch.len() < needed {
            self.scratch.resize(needed, ntp_select::Slot::EMPTY);
        }
        let result = mitigate(
            &mut self.candidates,
            &mut self.scratch,
            &select,
            self.system_peer.map(SourceId::get),
        );
        // chrony's `require`: the clock is updated only while one of the
        // required sources is selectable. One that is not a candidate at
        // all (no sample since a step, unreachable, unfit) is not, which
        // the selection, seeing only the candidates, cannot tell.
        let result = if required && !self.candidates.iter().any(|c| c.options().require) {
            // The others keep what the mitigation made of them, but none
            // is the system peer.
            for candidate in &mut self.candidates {
                if matches!(candidate.tally(), Tally::SystemPeer | Tally::PpsPeer) {
                    candidate.set_tally(Tally::Candidate);
                }
            }
            Err(ntp_select::SelectError::RequiredNotSelectable)
        } else {
            result
        };
        for slot in &mut self.sources {
            let id = slot.source.id();
            let tally = self
                .candidates
                .iter()
                .find(|candidate| candidate.id() == id.get())
                .map_or(Tally::Rejected, Candidate::tally);
            if tally == Tally::Falseticker && slot.tally != Tally::Falseticker {
                self.events.push_back(Event::Source {
                    id,
                    event: SourceEvent::Falseticker,
                });
            }
            if tally == Tally::Falseticker {
                slot.falseticker_since.get_or_insert(now);
            } else {
                slot.falseticker_since = None;
            }
            slot.tally = tally;
        }
        let Ok(mitigation) = result else {
            self.system_peer = None;
            if self.discipline.state() != ntp_discipline::State::Nset
                && self.discipline.state() != ntp_discipline::State::Fset
            {
                // Samples measured while nothing is selected are passed
                // over; before the first update they wait (the clock has
                // not been slewed, so they stay valid).
                self.pass_over_samples(false);
            }
            self.lose_synchronization();
            return;
        };
        self.selection_wait = SelectionWait::Over;
        let peer_id = SourceId::new(mitigation.system_peer_id);
        if self.system_peer != Some(peer_id) {
            self.events.push_back(Event::SystemPeer(peer_id));
        }
        self.system_peer = Some(peer_id);
        self.offset = mitigation.combined.offset;
        self.jitter = mitigation.combined.jitter;
        if self.config.discipline.algorithm == Algorithm::Rfc5905 {
            self.update_from_filter(now_s, wall, peer_id);
        } else {
            self.update_from_samples(now_s, wall, peer_id);
        }
    }

    /// Whether the first selection waits ([`SystemConfig::startup_wait`]):
    /// for every live source's first answer, at most [`STARTUP_WAIT`] from
    /// the start; and, with a jitter limit, for every source that answered
    /// to have its scatter known ([`MIN_FIT_SAMPLES`](crate::MIN_FIT_SAMPLES)
    /// samples), at most [`STARTUP_WAIT`] from the first source's. Without
    /// that second wait the source whose third sample happens to come
    /// first (a falseticker as well as any) is the only one selectable
    /// and is followed alone.
    fn waits_for_sources(&mut self, now: Instant) -> bool {
        if self.waits_for_answers(now) {
            return true;
        }
        if matches!(self.selection_wait, SelectionWait::Over) || self.config.max_jitter.is_none() {
            return false;
        }
        if self.first_fit.is_none() && self.sources.iter().any(|slot| !slot.awaits_scatter()) {
            self.first_fit = Some(now);
        }
        self.first_fit
            .is_some_and(|first| now < first.saturating_add(STARTUP_WAIT))
            && self.sources.iter().any(|slot| {
                slot.source.stopped_by().is_none()
                    && slot.source.filter_output().is_some()
                    && slot.awaits_scatter()
            })
    }

    /// Whether the selection waits for more sources' answers: until every
    /// source that is not stopped has a filter output, for at most
    /// [`STARTUP_WAIT`] after the start or, after a step of the clock,
    /// after the first source's answer on the new timescale (the sources
    /// answer at their polls then, which may be far apart).
    fn waits_for_answers(&mut self, now: Instant) -> bool {
        let mut answered = self
            .sources
            .iter()
            .filter(|slot| slot.source.stopped_by().is_none())
            .map(|slot| slot.source.filter_output().is_some());
        if answered.clone().all(|a| a) {
            return false;
        }
        match self.selection_wait {
            SelectionWait::Over => false,
            SelectionWait::Until(until) => now < until,
            SelectionWait::FromFirstAnswer => {
                // The wait's clock starts at the first answer.
                if answered.any(|a| a) {
                    self.selection_wait = SelectionWait::Until(now.saturating_add(STARTUP_WAIT));
                }
                true
            }
        }
    }

    /// The effective [`SystemConfig::min_sources`], given how many
    /// sources may be selected at all (not `noselect`, not excluded by
    /// [`SystemConfig::auth_select`]). The default of 2 is 1 while a
    /// candidate is trusted: its time is taken as true, so it need not be
    /// confirmed.
    fn min_sources(&self, selectable: usize, trusted: bool) -> usize {
        self.config
            .min_sources
            .unwrap_or(if selectable >= 3 && !trusted { 2 } else { 1 })
    }

    /// The leap indicator the discipline is handed and the system state
    /// announces, given the system peer's `peer_leap`: a leap second
    /// (insert or delete) only when more than half of the truechimers
    /// announce that same leap, [`LeapIndicator::NoWarning`] otherwise;
    /// an unsynchronized system peer stays
    /// [`LeapIndicator::Unsynchronized`] (the discipline ignores it).
    ///
    /// RFC 5905 takes the leap indicator from the system peer alone
    /// (section 11.2.3, figure 25, `s.leap <-- p.leap`; Appendix A.5.5.4
    /// `clock_update`), so that one server lying about the leap, with
    /// otherwise good time, steps the clock by a second at the end of June
    /// or December when it happens to be the system peer. The leap is
    /// voted on instead, as the reference implementation counts the
    /// survivors' leap bits in its `clock_select` and chronyd takes a
    /// majority of its sources. The voters are the truechimers of the last
    /// selection ([`Tally::is_truechimer`]: every source whose correctness
    /// interval contains the intersection of section 11.2.1, tallied `*`,
    /// `+`, `#`, `-` or `.`), not only the combined ones (`*` and `+`):
    /// the selection algorithm vouches for their time, while the cluster
    /// and combine algorithms then prune by jitter and root distance, which
    /// say nothing of a leap announcement, and could leave the liar alone
    /// in the combination (a combine limit can keep every source but the
    /// system peer out). Falsetickers and sources that failed the fitness
    /// test do not vote. A lone truechimer is its own majority and is
    /// followed, as before: a selection has at least
    /// [`SystemConfig::min_sources`] truechimers, so with the default (two
    /// once three sources are configured) one liar is always outvoted,
    /// while with `min_sources` 1 a source that is alone in the selection
    /// (the first to answer, at the start of RFC 5905's configuration) is
    /// followed for its leap as it is for its time. With every source
    /// announcing no leap, the result is the system peer's `NoWarning`, as
    /// in RFC 5905.
    fn voted_leap(&self, peer_leap: LeapIndicator) -> LeapIndicator {
        if peer_leap == LeapIndicator::Unsynchronized {
            return peer_leap;
        }
        leap_majority(
            self.sources
                .iter()
                .filter(|slot| slot.tally.is_truechimer())
                .filter_map(|slot| slot.source.peer_stats())
                .map(|stats| stats.leap),
        )
    }

    /// Marks every sample so far as used, except those of the sources
    /// whose tally makes them part of the combination when
    /// `keep_combined`.
    fn pass_over_samples(&mut self, keep_combined: bool) {
        for slot in &mut self.sources {
            if keep_combined && combined(slot.tally) {
                continue;
            }
            if let Some((_, epoch)) = slot.source.filter().samples().next() {
                slot.fed_epoch = Some(slot.fed_epoch.map_or(epoch, |fed| fed.max(epoch)));
            }
        }
    }

    /// RFC 5905 (appendix A.5.5.1 `clock_update`): one discipline update
    /// per new clock filter sample of the system peer, with the combined
    /// offset.
    fn update_from_filter(&mut self, now_s: f64, wall: Date, peer_id: SourceId) {
        let Some(peer) = self.slot(peer_id).and_then(|slot| slot.source.peer_stats()) else {
            return;
        };
        if self
            .last_update_epoch
            .is_some_and(|epoch| peer.epoch <= epoch)
        {
            return;
        }
        self.last_update_epoch = Some(peer.epoch);
        let age = (now_s - peer.epoch).max(0.0);
        let update = Update::new(self.offset, self.jitter)
            .with_leap(self.voted_leap(peer.leap))
            .with_age(age);
        self.apply_update(now_s, wall, update, Some(peer_id));
    }

    /// The default: every new sample of every combined source (tally `*`
    /// or `+`) goes to the discipline's estimator, oldest first, each with
    /// its own uncertainty from its delay excess over the source's recent
    /// minimum and its distance from the median of the combined sources,
    /// or less the source's bias where that is known
    /// ([`measure_biases`](Self::measure_biases)). Before the first
    /// update, the samples the sources collected while the selection was
    /// not possible yet are used too.
    fn update_from_samples(&mut self, now_s: f64, wall: Date, peer_id: SourceId) {
        let Some(leap) = self
            .slot(peer_id)
            .and_then(|slot| slot.source.peer_stats())
            .map(|peer| self.voted_leap(peer.leap))
        else {
            return;
        };
        let backlog = matches!(
            self.discipline.state(),
            ntp_discipline::State::Nset | ntp_discipline::State::Fset
        );
        let slew = self.discipline.cumulative_slew();
        let mut feed = core::mem::take(&mut self.feed);
        self.gather_feed(&mut feed, backlog);
        self.pass_over_samples(true);
        // Each combined source's filter offset, by source index, sorted by
        // offset: their median is the reference of the distance that
        // counts as noise below (the system peer's offset when it is
        // alone).
        let mut offsets = core::mem::take(&mut self.offsets);
        offsets.clear();
        offsets.extend(self.sources.iter().enumerate().filter_map(|(index, slot)| {
            combined(slot.tally)
                .then(|| slot.source.peer_stats())
                .flatten()
                .map(|stats| (stats.offset, index))
        }));
        offsets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let reference = median(&offsets).unwrap_or(self.offset);
        self.measure_biases(now_s);
        let correct = self
            .sources
            .iter()
            .any(|slot| slot.tally.is_survivor() && slot.bias.is_some_and(Bias::significant));
        let last = feed.len().saturating_sub(1);
        for (position, &(epoch, index)) in feed.iter().enumerate() {
            let Some(slot) = self.sources.get_mut(index) else {
                continue;
            };
            slot.fed_epoch = Some(slot.fed_epoch.map_or(epoch, |fed| fed.max(epoch)));
            let id = slot.source.id();
            let Some((sample, offset)) = slot.fed_sample(epoch, slew) else {
                continue;
            };
            // A source whose filter output sits away from the others' is
            // off by a path asymmetry or its own error, which no delay
            // shows. Once a survivor's bias is measured well beyond its
            // doubt ([`Bias::significant`]), every source's measured bias
            // is taken out of its samples: a bias is the same in every
            // sample of the source, and left in, the estimator reads the
            // difference between two sources' samples taken seconds apart
            // as a frequency (hundreds of ppm between servers a
            // millisecond apart, polled every 2 s). All of them, not only
            // the significant ones: a source corrected and another not
            // are in two frames, as far apart as the uncorrected one's
            // bias. Otherwise the distance from the median of the
            // combined sources counts as noise, so that sources with
            // different biases are weighted toward their middle instead of
            // being followed alternately. The median, not the combined
            // offset: at long polls the root distances grow by PHI per
            // second until a falseticker can overlap the truechimers and
            // join the combination, and its pull on the combined offset
            // must not discredit the truechimers, which stay the majority.
            let (offset, doubt) = match slot.bias {
                Some(bias) if correct => (offset - bias.offset, bias.doubt),
                _ => (
                    offset,
                    offsets
                        .iter()
                        .find(|&&(_, i)| i == index)
                        .map_or(0.0, |&(source_offset, _)| source_offset - reference),
                ),
            };
            let doubt = if backlog { 0.0 } else { doubt };
            let uncertainty = libm::sqrt(slot.sample_variance(&sample) + doubt * doubt);
            let mut update = Update::new(offset, self.jitter)
                .with_leap(leap)
                .with_age((now_s - epoch).max(0.0))
                .with_uncertainty(uncertainty)
                .with_source(id.get())
                .with_batched(backlog && position < last);
            // A reference clock's sample is as precise as the device; a
            // network sample keeps the clock's precision as its floor.
            if let Some(state) = slot.refclock.as_deref() {
                update = update.with_precision(log2_seconds(state.config.precision));
            }
            if self.apply_update(now_s, wall, update, Some(id)) {
                break;
            }
        }
        let decided = !matches!(
            self.discipline.state(),
            ntp_discipline::State::Nset | ntp_discipline::State::Fset
        );
        if backlog && decided {
            for slot in self
                .sources
                .iter_mut()
                .filter(|slot| slot.refclock.is_none())
            {
                slot.source.keep_newest_sample();
            }
        }
        self.feed = feed;
        self.offsets = offsets;
    }

    /// The combined sources' samples not yet handed to the discipline,
    /// as (epoch, source index) in the order of their epochs: the newest
    /// of each, or, with a `backlog` (before the first update), all those
    /// in its filter.
    fn gather_feed(&self, feed: &mut Vec<(f64, usize)>, backlog: bool) {
        feed.clear();
        for (index, slot) in self.sources.iter().enumerate() {
            if !combined(slot.tally) {
                continue;
            }
            let fed = slot.fed_epoch.unwrap_or(f64::NEG_INFINITY);
            if backlog {
                for (_, epoch) in slot.source.filter().samples() {
                    if epoch > fed {
                        feed.push((epoch, index));
                    }
                }
            } else if let Some((_, epoch)) = slot.source.filter().samples().next() {
                if epoch > fed {
                    feed.push((epoch, index));
                }
            }
        }
        feed.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// Measures each surviving network source's bias ([`Bias`]) from the
    /// median of the survivors' filter offsets (tally `*`, `+`, `#` or
    /// `o`: a set that the combine limit does not change from one sample
    /// to the next, as it changes the combined one), when at least
    /// [`MIN_BIAS_SOURCES`] survive with a filter output. A surviving
    /// source marked `prefer` or `trust` is the reference instead (the
    /// median of them, when several): the clock follows its time, not the
    /// others' (RFC 5905, section 11.2.3, the prefer peer's offset
    /// replaces the combined one). Otherwise the sources keep the biases
    /// last measured: after a step the filters are empty, while the
    /// sources' offsets from each other are what they were.
    ///
    /// Reference clocks take no part: their samples are as precise as
    /// the device, and a network median is no reference for them.
    fn measure_biases(&mut self, now_s: f64) {
        let mut entries = core::mem::take(&mut self.bias_entries);
        entries.clear();
        entries.extend(self.sources.iter().enumerate().filter_map(|(index, slot)| {
            (slot.tally.is_survivor() && slot.refclock.is_none())
                .then(|| slot.source.peer_stats())
                .flatten()
                .map(|stats| BiasEntry {
                    offset: stats.offset,
                    doubt: slot.own_doubt(stats.jitter),
                    epoch: stats.epoch,
                    distance: stats.root_distance(now_s, &self.config.select).ok(),
                    index,
                    preferred: {
                        let options = slot.source.config().select;
                        options.prefer || options.trust
                    },
                })
        }));
        entries.sort_by(|a, b| a.offset.total_cmp(&b.offset));
        let mut preferred = core::mem::take(&mut self.preferred_entries);
        preferred.clear();
        preferred.extend(entries.iter().filter(|entry| entry.preferred).copied());
        let reference = if preferred.is_empty() {
            median_entry(&entries)
        } else {
            median_entry(&preferred)
        };
        if let (Some((reference, reference_doubt, reference_index)), true) =
            (reference, entries.len() >= MIN_BIAS_SOURCES)
        {
            for entry in &entries {
                if let Some(slot) = self.sources.get_mut(entry.index) {
                    if Some(entry.index) == reference_index {
                        // The reference has no bias from itself.
                        slot.bias = Some(Bias::NONE);
                        continue;
                    }
                    slot.measure_bias(entry, entry.offset - reference, reference_doubt);
                }
            }
        }
        self.bias_entries = entries;
        self.preferred_entries = preferred;
    }

    /// Hands one update to the discipline, reports it and follows its
    /// outcome. Returns whether the clock was stepped (the remaining
    /// samples of the batch are then stale).
    /// `from` is the source whose sample this is (the system peer for a
    /// combined update): when the discipline holds it back, that source is
    /// asked for its next sample soon ([`Source::poll_soon`]).
    fn apply_update(
        &mut self,
        now_s: f64,
        wall: Date,
        update: Update,
        from: Option<SourceId>,
    ) -> bool {
        let outcome = self.discipline.handle_update(wall, update);
        self.events.push_back(Event::DisciplineUpdate(UpdateReport {
            offset: update.offset,
            jitter: self.jitter,
            age: update.age,
            outcome,
            state: self.discipline.state(),
            frequency: self.discipline.frequency(),
            clock_jitter: self.discipline.jitter(),
            poll: self.discipline.poll(),
        }));
        let stepped = match outcome {
            Ok(UpdateOutcome::Slew) => {
                self.synchronize(now_s, wall);
                false
            }
            Ok(UpdateOutcome::Step(_)) => {
                self.restart_after_step();
                true
            }
            Ok(UpdateOutcome::Ignored(IgnoreReason::Spike | IgnoreReason::Outlier)) => {
                if let Some(slot) = self
                    .sources
                    .iter_mut()
                    .find(|slot| Some(slot.source.id()) == from)
                {
                    slot.source.poll_soon();
                }
                false
            }
            Ok(_) | Err(_) => false,
        };
        self.drain_discipline();
        stepped
    }

    /// The system variables after a slew (figure 25 / Appendix A.5.5.1
    /// `clock_update`, case SLEW), from the system peer.
    fn synchronize(&mut self, now_s: f64, wall: Date) {
        let Some(peer_id) = self.system_peer else {
            return;
        };
        let Some(slot) = self.slot(peer_id) else {
            return;
        };
        let address = slot.source.address();
        let Some(peer) = slot.source.peer_stats() else {
            return;
        };
        let increment = (peer.dispersion
            + self.config.select.phi * (now_s - peer.epoch).max(0.0)
            + peer.offset.abs())
        .max(MINDISP);
        let root_dispersion = peer.root_dispersion
            + libm::sqrt(peer.jitter * peer.jitter + self.jitter * self.jitter)
            + increment;
        self.state = SystemState {
            leap: self.voted_leap(peer.leap),
            stratum: Stratum::new(peer.stratum.get().saturating_add(1).min(16)),
            precision: self.config.discipline.precision,
            root_delay: short(peer.root_delay + peer.delay),
            root_dispersion: short(root_dispersion),
            reference_id: match slot.refclock.as_deref() {
                Some(state) => state.config.refid,
                None => RefId::from_ip(address.ip()),
            },
            reference_time: Timestamp::from(wall),
        };
        if !self.synchronized {
            self.synchronized = true;
            self.events.push_back(Event::Synchronized {
                system_peer: peer_id,
                stratum: self.state.stratum,
            });
        }
    }

    /// After a step of the clock, by the discipline or by somebody else,
    /// every association restarts (RFC 5905, section 11.3): the sources'
    /// samples and requests describe the old timescale, and the system is
    /// unsynchronized, with no system peer, until an update on the new
    /// one.
    fn restart_after_step(&mut self) {
        for slot in &mut self.sources {
            slot.source.reset_after_step();
            slot.fed_epoch = None;
            if let Some(state) = slot.refclock.as_deref_mut() {
                state.clear();
            }
        }
        self.last_update_epoch = None;
        // Nothing is selected on the new timescale before every source
        // has answered on it (or the wait is over).
        self.system_peer = None;
        self.selection_wait = SelectionWait::FromFirstAnswer;
        self.lose_synchronization();
    }

    fn lose_synchronization(&mut self) {
        self.state = SystemState {
            leap: LeapIndicator::Unsynchronized,
            stratum: Stratum::UNSYNCHRONIZED,
            ..self.state
        };
        if self.synchronized {
            self.synchronized = false;
            self.events.push_back(Event::Unsynchronized);
        }
    }
}

/// The wait of the first selection after the start or a step of the
/// clock for every source's answer ([`SystemConfig::startup_wait`]).
#[derive(Clone, Copy, Debug)]
enum SelectionWait {
    /// Until every source has answered or this instant passed.
    Until(Instant),
    /// Until every source has answered or [`STARTUP_WAIT`] passed since
    /// the first answer.
    FromFirstAnswer,
    /// A selection succeeded since: no wait.
    Over,
}

/// The median of values sorted by their first field (the mean of the
/// middle two for an even count).
fn median(sorted: &[(f64, usize)]) -> Option<f64> {
    median_by(sorted, |&(value, _)| value)
}

/// The leap second that more than half of `votes` announce, or
/// [`LeapIndicator::NoWarning`] (see `System::voted_leap`).
fn leap_majority(votes: impl Iterator<Item = LeapIndicator>) -> LeapIndicator {
    let (mut voters, mut insert, mut delete) = (0_usize, 0_usize, 0_usize);
    for leap in votes {
        voters += 1;
        match leap {
            LeapIndicator::InsertSecond => insert += 1,
            LeapIndicator::DeleteSecond => delete += 1,
            _ => {}
        }
    }
    if insert.saturating_mul(2) > voters {
        LeapIndicator::InsertSecond
    } else if delete.saturating_mul(2) > voters {
        LeapIndicator::DeleteSecond
    } else {
        LeapIndicator::NoWarning
    }
}

/// Whether a tally puts the source into the combination (RFC 5905,
/// section 11.2.3): the system peer `*` and the candidates `+`.
const fn combined(tally: Tally) -> bool {
    matches!(tally, Tally::SystemPeer | Tally::Candidate)
}

/// Seconds to the NTP short format, saturating.
fn short(seconds: f64) -> ShortTime {
    ShortTime::from_seconds_f64(seconds.max(0.0)).unwrap_or(ShortTime::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leap_second_needs_more_than_half_of_the_votes() {
        use LeapIndicator::{DeleteSecond as Del, InsertSecond as Ins, NoWarning as No};
        let cases: [(&[LeapIndicator], LeapIndicator); 9] = [
            (&[], No),
            (&[Ins], Ins),
            (&[Del], Del),
            (&[Ins, No], No),
            (&[Ins, Ins, No], Ins),
            (&[Ins, No, No], No),
            (&[Ins, Ins, No, No], No),
            (&[Ins, Ins, Del], Ins),
            // Split between insertion and deletion: no majority for either.
            (&[Ins, Del, No, Del, Ins], No),
        ];
        for (votes, expected) in cases {
            assert_eq!(leap_majority(votes.iter().copied()), expected, "{votes:?}");
        }
        // An unsynchronized voter announces nothing but counts.
        assert_eq!(
            leap_majority([Ins, LeapIndicator::Unsynchronized].into_iter()),
            No
        );
    }

    fn slot_with_delays(delays: &[f64]) -> SourceSlot {
        let address = SocketAddr::from(([192, 0, 2, 1], 123));
        let source = Source::new(SourceId::new(1), address, SourceConfig::default()).unwrap();
        let mut slot = SourceSlot::new(source);
        for &delay in delays {
            slot.record_delay(delay, false);
        }
        slot
    }

    #[test]
    fn a_single_delay_is_doubted_whole() {
        assert_eq!(
            slot_with_delays(&[]).floor_uncertainty().to_bits(),
            0.0_f64.to_bits()
        );
        assert_eq!(
            slot_with_delays(&[1.2]).floor_uncertainty().to_bits(),
            1.2_f64.to_bits()
        );
    }

    #[test]
    fn two_or_three_steady_delays_bound_the_floor_by_their_spread() {
        // A long but steady path (chrony's 120-selectoptions): 1.2 s
        // round trips 100 us apart leave 0.67 ms of doubt, not 1.2 s.
        let two = slot_with_delays(&[1.2001, 1.2]).floor_uncertainty();
        assert!((two - 100e-6 / 0.1054 / 2_f64.sqrt()).abs() < 1e-9, "{two}");
        let three = slot_with_delays(&[1.2, 1.2001, 1.2002]).floor_uncertainty();
        assert!(
            (three - 300e-6 / 0.5318 / 3_f64.sqrt()).abs() < 1e-9,
            "{three}"
        );
        // Identical delays: nothing queues.
        assert_eq!(
            slot_with_delays(&[0.5, 0.5]).floor_uncertainty().to_bits(),
            0.0_f64.to_bits()
        );
    }

    #[test]
    fn scattered_early_delays_keep_the_hard_bound() {
        // 100 ms of queueing (chrony's 006-largejitter): the bound from
        // the spread exceeds the delay, and the delay bounds it.
        let doubt = slot_with_delays(&[0.15, 0.32]).floor_uncertainty();
        assert_eq!(doubt.to_bits(), 0.15_f64.to_bits());
        let doubt = slot_with_delays(&[0.15, 0.32, 0.21]).floor_uncertainty();
        assert_eq!(doubt.to_bits(), 0.15_f64.to_bits());
    }

    #[test]
    fn from_four_delays_the_mean_excess_counts() {
        let doubt = slot_with_delays(&[0.010, 0.012, 0.014, 0.016]).floor_uncertainty();
        // Mean excess 3 ms, over the square root of 4.
        assert!((doubt - 0.0015).abs() < 1e-12, "{doubt}");
    }
}

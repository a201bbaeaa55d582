//! Configuration errors.

/// Why a configuration was refused. Nothing is built from a refused
/// configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A reference clock's configuration is unusable.
    #[error(transparent)]
    Refclock(#[from] crate::refclock::RefclockConfigError),
    /// The poll bounds are out of order or outside
    /// [`MIN_POLL`](crate::MIN_POLL)..=[`MAX_POLL`](crate::MAX_POLL).
    #[error("poll range {min_poll}..={max_poll} is not within 1..=17 or is reversed")]
    PollRange {
        /// The lower bound given.
        min_poll: i8,
        /// The upper bound given.
        max_poll: i8,
    },
    /// The back-off ceiling is below the maximum poll or above
    /// [`MAX_POLL`](crate::MAX_POLL).
    #[error("back-off ceiling {0} is below max_poll or above 17")]
    BackoffMaxPoll(i8),
    /// The reply timeout is zero.
    #[error("reply timeout must be positive")]
    ReplyTimeout,
    /// The maximum root distance is not a positive finite number.
    #[error("maximum root distance must be positive and finite")]
    MaxDistance,
    /// The jitter limit
    /// ([`SystemConfig::max_jitter`](crate::SystemConfig::max_jitter)) is
    /// not a positive finite number.
    #[error("maximum jitter must be positive and finite")]
    MaxJitter,
    /// A delay limit is not a positive finite number, the delay ratio is
    /// below 1, the minimum delay is negative or the asymmetry is outside
    /// -0.5..=0.5 ([`DelayConfig`](crate::DelayConfig)).
    #[error("delay limits: positive limits, a ratio of at least 1, asymmetry within -0.5..=0.5")]
    Delay,
    /// The local precision is outside -30..=0.
    #[error("precision {0} is outside -30..=0")]
    Precision(i8),
    /// The requested NTP version is outside
    /// [`MIN_REQUEST_VERSION`](crate::sntp::MIN_REQUEST_VERSION)..=4
    /// ([`SntpConfig::version`](crate::SntpConfig::version)), or is not 4
    /// for an NTS source.
    #[error("NTP version {0}: 2 to 4, and 4 for NTS")]
    Version(u8),
    /// The mitigation limits were refused by `ntp-select`.
    #[error("selection configuration: {0}")]
    Select(#[from] ntp_select::ConfigError),
    /// The discipline configuration was refused by `ntp-discipline`.
    #[error("discipline configuration: {0}")]
    Discipline(#[from] ntp_discipline::ConfigError),
    /// The discipline's poll range does not lie within 1..=17, or the
    /// initial frequency is not a finite value within ±500 ppm.
    #[error("discipline poll range or initial frequency out of range")]
    DisciplineRange,
    /// `min_sources` is `Some(0)`: at least one source must agree.
    #[error("min_sources must be at least 1")]
    MinSources,
    /// A source with this address already exists.
    #[error("a source with this address already exists")]
    DuplicateSource,
    /// An NTS source's configuration has a symmetric key
    /// ([`SntpConfig::key`](crate::SntpConfig::key)): NTS authenticates
    /// the source, the two are not combined.
    #[error("an NTS source cannot also have a symmetric key")]
    NtsWithKey,
    /// A pool's `max_sources` is zero.
    #[error("a pool needs room for at least one source")]
    PoolSize,
}

//! Protocol constants of the client, with their sources.
//!
//! Where RFC 5905's body, its Appendix A and the reference implementation
//! disagree, the doc of the constant says which value was chosen and why.
//! Constants of the mitigation algorithms (`MAXDIST`, `MINDISP`, `PHI`,
//! ...) live in [`ntp_select::constants`] and are used from there.

use core::time::Duration;

/// The rate at which a sample's dispersion grows with its age in the
/// default [`SystemConfig`](crate::SystemConfig), s/s: 1 ppm, chrony's
/// default `maxclockerror`, instead of RFC 5905's PHI = 15 ppm (section
/// 7.2, Appendix A.1.1), which [`SystemConfig::rfc5905`](crate::SystemConfig::rfc5905)
/// keeps.
///
/// PHI is the frequency tolerance of an undisciplined clock. A disciplined
/// clock's frequency is known far better (the default estimator tracks it
/// to hundredths of a ppm), and with 15 ppm the intervals of the
/// intersection algorithm grow to 20-30 ms at a 1024 s poll, so that a
/// falseticker 50 ms off can share a point with a truechimer and outvote
/// the others (measured under clknetsim: five servers, two 50 ms off,
/// after the poll had climbed to 1024 s). At 1 ppm a sample a poll old
/// adds about 1 ms.
pub const DISCIPLINED_PHI: f64 = 1e-6;

/// Length of a client request: the bare 48-octet header, no extension
/// fields, no MAC (RFC 5905, section 7.3).
pub const REQUEST_LEN: usize = ntp_proto::HEADER_LEN;

/// The protocol version of our requests (RFC 5905: NTPv4). A response must
/// carry the same version.
pub const VERSION: u8 = 4;

/// The precision field of a request, `0x20` (data-minimization draft,
/// section 3: "The Precision field SHOULD be set to 0x20"). Every client
/// following the draft sends the same value, so it identifies nothing.
pub const REQUEST_PRECISION: i8 = 0x20;

/// Packets in a burst, BCOUNT (RFC 5905, section 13 and Appendix A.5.7.1).
pub const BURST_COUNT: u8 = 8;

/// Most requests in one poll of a retry burst
/// ([`SourceConfig::retry_burst`](crate::SourceConfig::retry_burst)): the
/// first and up to three retries, as chrony's `burst` option ("up to four
/// requests"). Not an RFC constant; RFC 5905's BURST (section 13) always
/// sends [`BURST_COUNT`].
pub const RETRY_BURST_MAX: u8 = 4;

/// Interval between the packets of a burst, and the minimum interval
/// between any two requests to one server: 2 s (RFC 5905, section 13:
/// "The interval between packets in the burst is two seconds"); 1 s for
/// a source whose minimum poll is 0 ([`MIN_POLL`]).
pub const MIN_REQUEST_SPACING: Duration = Duration::from_secs(2);

/// The gaps between the eight requests of a spread iburst
/// ([`SourceConfig::spread_iburst`](crate::SourceConfig::spread_iburst)):
/// four of 2 s as in RFC 5905's burst (section 13, BTIME), then 4 s, 8 s
/// and 16 s, so the burst spans 36 s instead of 14 s and its last request
/// still goes well before the first regular poll at 64 s. No gap is taken
/// longer than the source's poll interval.
pub const SPREAD_IBURST_GAPS: [Duration; BURST_COUNT as usize - 1] = [
    Duration::from_secs(2),
    Duration::from_secs(2),
    Duration::from_secs(2),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// Default lower bound of the poll exponent: 6, 64 s (RFC 5905, section
/// 7.2 and Appendix A.1.1, MINPOLL).
pub const DEFAULT_MIN_POLL: i8 = 6;

/// Default upper bound of the poll exponent while the server answers: 10,
/// 1024 s (RFC 5905, section 7.2: "the default maximum poll is 10").
pub const DEFAULT_MAX_POLL: i8 = 10;

/// Largest poll exponent anywhere: 17, 36.4 h (RFC 5905, Appendix A.1.1,
/// MAXPOLL). A KoD `RATE` or the unreachable back-off may push the poll
/// above the configured maximum, never above this.
pub const MAX_POLL: i8 = 17;

/// Smallest configurable poll exponent: 0 (1 s), for a server on the
/// same LAN with hardware timestamps (chrony's `minpoll 0`, as in its
/// `133-hwtimestamp` test), demos and tests on a loopback. Two requests
/// are never closer than [`MIN_REQUEST_SPACING`], or the minimum poll
/// interval when that is shorter. RFC 4330, section 10 forbids intervals
/// below 15 s towards servers one does not run; keep the default
/// ([`DEFAULT_MIN_POLL`]) for those.
pub const MIN_POLL: i8 = 0;

/// Polls at the normal interval before the unreachable back-off starts
/// doubling it, UNREACH.
///
/// **Disputed:** RFC 5905's body (section 13, figure 29) gives 24, its
/// Appendix A.5.7.1 12. We take **12**: the server gets fewer packets, and
/// the 12 polls already span 12 minutes at the default poll of 64 s, long
/// enough to ride out a short outage without backing off.
pub const UNREACH: u8 = 12;

/// Default ceiling of the unreachable back-off: 12, 4096 s (68 min).
///
/// **Choice:** Appendix A.5.7.2 clamps the doubled poll at MAXPOLL (17,
/// 36 h): a server back after a long outage would then wait up to 36 h to
/// be used again. The reference implementation clamps at the association's
/// `maxpoll` (10), which keeps a dead server at about 84 packets a day
/// forever. 12 sits between: a dead server costs 44 packets on the first
/// day and 21 a day after that (see [`Source`](crate::Source) for the
/// arithmetic), and a returning server is found within about an hour.
pub const DEFAULT_BACKOFF_MAX_POLL: i8 = 12;

/// How long an unanswered request stays valid: 4 s by default. A reply
/// after that is rejected like any other unexpected packet. Within a burst
/// the next request, 2 s later, supersedes the previous one anyway (one
/// outstanding request per source). RFC 5905 has no reply timeout (a
/// request stays valid until the next one); we bound it so that a stale
/// reply cannot be matched long after its request.
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_secs(4);

/// The poll interval is lengthened by a random fraction below
/// `1 / 2^POLL_JITTER_SHIFT` (1.56 %), so that clients started together
/// do not stay in step. RFC 5905 only asks for "randomized" polls
/// (section 13); the reference implementation lengthens by up to 1/16,
/// chronyd 4.3 by up to 2 % (measured under clknetsim: 64.2 to 65.3 s at a
/// 64 s poll). We follow chronyd's order: a client that waits for three
/// samples before its first selection, as chronyd does, would otherwise
/// come out of its start a poll's 6 % of two intervals later, 8 s at a
/// 64 s poll. Lengthening, never shortening, keeps the packet budgets
/// stated in these docs upper bounds.
pub const POLL_JITTER_SHIFT: u32 = 6;

/// The most a poll exponent can be; 2^MAX_POLL s as a [`Duration`].
#[must_use]
pub(crate) const fn poll_interval(poll: i8) -> Duration {
    let exponent = if poll < 0 {
        0
    } else if poll > MAX_POLL {
        MAX_POLL
    } else {
        poll
    };
    #[allow(clippy::cast_sign_loss, reason = "clamped to 0..=17 above")]
    let shift = exponent as u32;
    Duration::from_secs(1 << shift)
}

//! Counters for metrics.

use core::fmt;
use core::ops::AddAssign;

/// Why a request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than the 48-octet header, or extension fields / MAC that do
    /// not parse (RFC 5905, section 9.2 format checks; RFC 7822). Also,
    /// should it ever happen, a request whose response would be longer
    /// than the request itself: the server never amplifies (RFC 8633,
    /// section 3.4), and a signed response is only as long as the
    /// request's header and MAC.
    BadPacket,
    /// A version number the configuration does not serve.
    Version,
    /// Neither a client request (mode 3) nor, where answered, a
    /// symmetric-active one (mode 1, [`SymmetricPolicy`](crate::SymmetricPolicy)):
    /// control and private requests (modes 6 and 7, RFC 8633 section 3.4),
    /// server, symmetric-passive and broadcast packets (modes 4, 2 and 5,
    /// which must never be answered or two servers could be made to bounce
    /// packets forever), mode 0 (but a version-1 request's from a source
    /// port other than 123, a client's: version 1 had no mode field, RFC
    /// 1305 appendix D), and mode 1 under
    /// [`SymmetricPolicy::Drop`](crate::SymmetricPolicy::Drop).
    Mode,
    /// The access-control list says `ignore`.
    Acl,
    /// The request carries a crypto-NAK (never answered: RFC 5905,
    /// appendix A.5.1), or a MAC that does not verify with the server's
    /// keys while [`MacPolicy::Drop`](crate::MacPolicy::Drop) is
    /// configured.
    Authenticated,
    /// The server is unsynchronized and
    /// [`UnsynchronizedPolicy::Drop`](crate::UnsynchronizedPolicy::Drop)
    /// is configured.
    Unsynchronized,
    /// Over the client's rate limit, and not the 1 in `leak` that gets a
    /// KoD `RATE`.
    RateLimited,
    /// The caller's output buffer is shorter than the response: 48 octets,
    /// plus the MAC or crypto-NAK of an authenticated request, or the NTS
    /// fields (without cookies, if need be) of an NTS one
    /// ([`MAX_RESPONSE_LEN`](crate::MAX_RESPONSE_LEN) always suffices).
    BufferTooSmall,
    /// An NTS request (RFC 8915 section 5.7: it carries an NTS Cookie or
    /// an NTS Authenticator) that is not answered: malformed by section
    /// 5.7's rules (not exactly one Unique Identifier of 32 to 64 octets
    /// and one cookie before the authenticator, an authenticator that does
    /// not parse or lacks nonce padding, section 5.6), sent in symmetric
    /// mode, or sent while the server has no NTS
    /// ([`Server::set_nts`](crate::Server::set_nts)). A request whose
    /// cookie does not open or whose authenticator does not verify is not
    /// dropped: it gets an NTS NAK ([`KissCounters::ntsn`]).
    Nts,
}

/// Requests dropped, by [`DropReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(
    missing_docs,
    reason = "one field per DropReason variant, documented there"
)]
#[non_exhaustive]
pub struct DropCounters {
    pub bad_packet: u64,
    pub version: u64,
    pub mode: u64,
    pub acl: u64,
    pub authenticated: u64,
    pub unsynchronized: u64,
    pub rate_limited: u64,
    pub buffer_too_small: u64,
    pub nts: u64,
}

impl DropCounters {
    /// The counter of `reason`.
    #[must_use]
    pub const fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::BadPacket => self.bad_packet,
            DropReason::Version => self.version,
            DropReason::Mode => self.mode,
            DropReason::Acl => self.acl,
            DropReason::Authenticated => self.authenticated,
            DropReason::Unsynchronized => self.unsynchronized,
            DropReason::RateLimited => self.rate_limited,
            DropReason::BufferTooSmall => self.buffer_too_small,
            DropReason::Nts => self.nts,
        }
    }

    #[cfg(feature = "alloc")]
    fn slot(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::BadPacket => &mut self.bad_packet,
            DropReason::Version => &mut self.version,
            DropReason::Mode => &mut self.mode,
            DropReason::Acl => &mut self.acl,
            DropReason::Authenticated => &mut self.authenticated,
            DropReason::Unsynchronized => &mut self.unsynchronized,
            DropReason::RateLimited => &mut self.rate_limited,
            DropReason::BufferTooSmall => &mut self.buffer_too_small,
            DropReason::Nts => &mut self.nts,
        }
    }

    /// All drops.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.bad_packet
            .wrapping_add(self.version)
            .wrapping_add(self.mode)
            .wrapping_add(self.acl)
            .wrapping_add(self.authenticated)
            .wrapping_add(self.unsynchronized)
            .wrapping_add(self.rate_limited)
            .wrapping_add(self.buffer_too_small)
            .wrapping_add(self.nts)
    }
}

/// Kiss-o'-Death packets sent, by kiss code (RFC 5905, section 7.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct KissCounters {
    /// `DENY`, for [`AccessAction::Deny`](crate::AccessAction::Deny).
    pub deny: u64,
    /// `RSTR`, for [`AccessAction::Restrict`](crate::AccessAction::Restrict).
    pub rstr: u64,
    /// `RATE`, for rate-limited clients.
    pub rate: u64,
    /// `NTSN`, the NTS NAK (RFC 8915 section 5.7): to an NTS request whose
    /// cookie did not open or whose authenticator did not verify.
    pub ntsn: u64,
}

impl KissCounters {
    /// All kiss-o'-death packets.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.deny
            .wrapping_add(self.rstr)
            .wrapping_add(self.rate)
            .wrapping_add(self.ntsn)
    }
}

/// What the server core has done since it was built (or since
/// [`Server::take_counters`](crate::Server::take_counters)).
///
/// Every request counts once in `received` and once in exactly one of
/// `answered`, `kiss` or `dropped`, so
/// `received == answered + kiss.total() + dropped.total()`; `symmetric`,
/// `authenticated`, `crypto_nak`, `bad_mac`, `crypto_checks` and `nts`
/// count again, apart, some of those requests. For NTS (RFC 8915): answers sealed with NTS
/// count in `answered` and again in `nts`, NTS NAKs in `kiss.ntsn`, other
/// Kiss-o'-Death answers to NTS requests in `kiss` as any, and NTS
/// requests dropped as malformed or for want of NTS in `dropped.nts`.
/// Counters wrap at 2^64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Counters {
    /// Datagrams handed to the core.
    pub received: u64,
    /// Ordinary server responses.
    pub answered: u64,
    /// Responses in mode 2 to symmetric-active requests (mode 1), ordinary
    /// and Kiss-o'-Death alike; each is also counted in `answered` or
    /// `kiss`.
    pub symmetric: u64,
    /// Responses signed with a MAC, to requests whose MAC verified with
    /// one of the server's keys; each is also counted in `answered`.
    /// Kiss-o'-Death answers are never signed: they are decided before
    /// the MAC is checked.
    pub authenticated: u64,
    /// Responses that carried a crypto-NAK (RFC 5905, section 7.3) under
    /// [`MacPolicy::CryptoNak`](crate::MacPolicy::CryptoNak); each is also
    /// counted in `answered`.
    pub crypto_nak: u64,
    /// Requests whose MAC did not verify (unknown key id, wrong digest
    /// length or wrong digest), whatever the
    /// [`MacPolicy`](crate::MacPolicy) then did with them; each is also
    /// counted in `answered` or `dropped`. Only requests that access
    /// control and the rate limiter let through have their MAC checked.
    /// Requests carrying a crypto-NAK are not counted here, only in
    /// `dropped.authenticated`.
    pub bad_mac: u64,
    /// Requests the server spent cryptography on: a MAC checked with a
    /// key of the id it names (RFC 5905, section 7.3: one digest; a MAC
    /// naming no key held costs nothing and is not counted), or an NTS
    /// request's cookie opened (RFC 8915 section 5.7: one AEAD opening,
    /// and one more for the authenticator if the cookie opens). Access
    /// control and the rate limiter come first, so requests from denied,
    /// restricted or ignored addresses and requests over the rate limit
    /// never count here; nor do the MACs and NTS fields `finish` writes.
    pub crypto_checks: u64,
    /// Responses protected with NTS (RFC 8915 section 5.7: the request's
    /// cookie and authenticator verified, the answer carries an NTS
    /// Authenticator and fresh cookies); each is also counted in
    /// `answered`. NTS NAKs count in `kiss.ntsn`.
    pub nts: u64,
    /// Kiss-o'-Death responses.
    pub kiss: KissCounters,
    /// Requests left unanswered.
    pub dropped: DropCounters,
}

impl Counters {
    #[cfg(feature = "alloc")]
    #[inline]
    pub(crate) fn drop(&mut self, reason: DropReason) {
        let slot = self.dropped.slot(reason);
        *slot = slot.wrapping_add(1);
    }
}

impl AddAssign<&Self> for Counters {
    /// Adds another core's counters (one per worker thread).
    fn add_assign(&mut self, other: &Self) {
        let add = |a: &mut u64, b: u64| *a = a.wrapping_add(b);
        add(&mut self.received, other.received);
        add(&mut self.answered, other.answered);
        add(&mut self.symmetric, other.symmetric);
        add(&mut self.authenticated, other.authenticated);
        add(&mut self.crypto_nak, other.crypto_nak);
        add(&mut self.bad_mac, other.bad_mac);
        add(&mut self.crypto_checks, other.crypto_checks);
        add(&mut self.nts, other.nts);
        add(&mut self.kiss.deny, other.kiss.deny);
        add(&mut self.kiss.rstr, other.kiss.rstr);
        add(&mut self.kiss.rate, other.kiss.rate);
        add(&mut self.kiss.ntsn, other.kiss.ntsn);
        let d = &mut self.dropped;
        let o = &other.dropped;
        add(&mut d.bad_packet, o.bad_packet);
        add(&mut d.version, o.version);
        add(&mut d.mode, o.mode);
        add(&mut d.acl, o.acl);
        add(&mut d.authenticated, o.authenticated);
        add(&mut d.unsynchronized, o.unsynchronized);
        add(&mut d.rate_limited, o.rate_limited);
        add(&mut d.buffer_too_small, o.buffer_too_small);
        add(&mut d.nts, o.nts);
    }
}

impl fmt::Display for Counters {
    /// One line: `received=.. answered=.. symmetric=.. authenticated=..
    /// crypto_nak=.. bad_mac=.. crypto_checks=.. nts=.. kod(deny=.. rstr=..
    /// rate=.. ntsn=..) dropped(bad_packet=.. ... nts=..)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.dropped;
        write!(
            f,
            "received={} answered={} symmetric={} authenticated={} crypto_nak={} bad_mac={} \
             crypto_checks={} nts={} kod(deny={} rstr={} rate={} ntsn={}) \
             dropped(bad_packet={} \
             version={} mode={} acl={} authenticated={} unsynchronized={} rate_limited={} \
             buffer_too_small={} nts={})",
            self.received,
            self.answered,
            self.symmetric,
            self.authenticated,
            self.crypto_nak,
            self.bad_mac,
            self.crypto_checks,
            self.nts,
            self.kiss.deny,
            self.kiss.rstr,
            self.kiss.rate,
            self.kiss.ntsn,
            d.bad_packet,
            d.version,
            d.mode,
            d.acl,
            d.authenticated,
            d.unsynchronized,
            d.rate_limited,
            d.buffer_too_small,
            d.nts
        )
    }
}

//! Server configuration.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use crate::ConfigError;
#[cfg(feature = "alloc")]
use crate::{AccessAction, AclRule, RateLimitConfig};

/// The set of NTP versions answered (RFC 5905, section 9.2: "acceptable
/// version number (1-4)"). A request in another version is dropped; an
/// accepted one is answered in its own version (RFC 5905, appendix A.5.3,
/// `x.version = r->version`; RFC 4330, section 5: "Servers reply with the
/// same version as the request"). Version 0 was never this protocol and
/// versions 5 to 7 have another header (the NTPv5 draft), so no set holds
/// them.
///
/// Versions 1 to 3 share NTPv4's 48-octet header; what they may carry
/// after it differs: at most a MAC (RFC 1305, appendix C), whose digest
/// may be longer than NTPv4's, and no extension fields, which are NTPv4's
/// (RFC 7822), so no NTS either (RFC 8915 section 5.7). A version-1
/// request's mode bits are zero (RFC 1305, appendix D, item 1); see the
/// server's order of checks for how it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Versions(u8);

impl Versions {
    /// Versions 1 to 4, the default, as RFC 5905 (section 9.2) accepts
    /// them and chronyd and NTPsec answer them: Python's ntplib sends
    /// NTPv2 unless told otherwise, old SNTP clients NTPv3 (RFC 4330,
    /// section 5: a client may ask in the earliest version it accepts).
    /// The same set as [`ALL`](Self::ALL).
    pub const DEFAULT: Self = Self::ALL;

    /// Versions 1 to 4.
    pub const ALL: Self = Self(1 << 1 | 1 << 2 | 1 << 3 | 1 << 4);

    /// The versions listed in `versions`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Version`] for a version outside 1 to 4, or an empty
    /// list (reported as version 0).
    pub fn new(versions: &[u8]) -> Result<Self, ConfigError> {
        let mut bits = 0u8;
        for &version in versions {
            if !(1..=4).contains(&version) {
                return Err(ConfigError::Version(version));
            }
            bits |= 1 << version;
        }
        if bits == 0 {
            return Err(ConfigError::Version(0));
        }
        Ok(Self(bits))
    }

    /// Whether `version` (the 3-bit field, 0 to 7) is answered.
    #[inline]
    #[must_use]
    pub const fn contains(self, version: u8) -> bool {
        version < 8 && self.0 & (1 << version) != 0
    }
}

impl Default for Versions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether an unsynchronized server (leap indicator 3 or stratum 16, RFC
/// 5905 section 7.3) answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnsynchronizedPolicy {
    /// Answer, saying so: leap indicator, stratum and the rest come from the
    /// [`SystemState`](ntp_proto::SystemState) unchanged, so clients see an
    /// unsynchronized server and do not use it (RFC 5905, section 8:
    /// "leap indicator 3 ... unsynchronized"). The default, as ntpd and
    /// chrony do: a client learns the server is alive.
    #[default]
    Answer,
    /// Drop the request.
    Drop,
}

/// What to do with a request whose MAC (RFC 5905, section 7.3) does not
/// verify with the server's keys: its key id is unknown (every key id is
/// while the server holds no keys,
/// [`Server::set_keys`](crate::Server::set_keys)), its digest is not as
/// long as the key's MAC in the request's version, or the digest is wrong.
///
/// A request whose MAC verifies is always answered with a MAC from the
/// same key; a request without a MAC always gets a plain answer; a request
/// that carries a crypto-NAK is never answered, whatever the policy (RFC
/// 5905, appendix A.5.1: only `A_ERROR` gets a crypto-NAK, `A_CRYPTO`
/// gets nothing). Every request whose MAC fails is counted in
/// [`Counters::bad_mac`](crate::Counters::bad_mac).
///
/// The policy applies to requests that access control and the rate
/// limiter let through, the only ones whose MAC is checked: a request
/// from a `deny` or `restrict` address, or over its rate limit, gets its
/// Kiss-o'-Death (48 octets, unsigned) or nothing, whatever its MAC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MacPolicy {
    /// Answer with the ordinary response followed by a crypto-NAK, a MAC
    /// of 4 zero octets (key id 0, no digest): 52 octets, shorter than
    /// the request. The default, as RFC 5905 prescribes (section 9.2: "if
    /// authentication fails, the server returns a special message called
    /// a crypto-NAK"; appendix A.5.1, `FXMIT`: `A_ERROR` ->
    /// `fast_xmit(r, M_SERV, A_CRYPTO)`) and ntpd does: the client learns
    /// that its key is not ours rather than timing out. Kiss-o'-Death
    /// answers never carry it: they are decided, from the source address,
    /// before the MAC is checked.
    #[default]
    CryptoNak,
    /// Drop the request
    /// ([`DropReason::Authenticated`](crate::DropReason::Authenticated)),
    /// as chrony does: a client that authenticates rejects anything but a
    /// signed answer, so any answer only costs traffic.
    Drop,
    /// Answer with an ordinary, unauthenticated 48-octet response, as if
    /// the request carried no MAC (for clients that sign but do not check).
    AnswerUnauthenticated,
}

/// Whether a symmetric-active request (mode 1) is answered with a
/// symmetric-passive response (mode 2), without keeping any state for
/// the peer.
///
/// RFC 5905 (section 9.2, figure 20) has a server without an association
/// for the sender answer a symmetric-active packet by mobilizing a
/// symmetric-passive one (`NEWPS`); chrony answers mode 1 with a mode-2
/// packet without mobilizing anything, and so do we. (NTPsec 1.2.2 does
/// not answer mode 1 at all.) Windows' W32Time sends mode 1 unless its
/// client flag (0x8) is set, so a server that drops mode 1 leaves such a
/// peer without time.
///
/// The answer is built exactly as for a client request (the same access
/// control, rate limiting, unsynchronized and MAC policies, the same
/// fields), only its mode is 2; a Kiss-o'-Death to a mode-1 request is a
/// mode-2 packet too. Mode 2 requests are never answered: two servers
/// could otherwise bounce packets between them forever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SymmetricPolicy {
    /// Answer mode 1 with mode 2, statelessly. The default, as chrony.
    #[default]
    Answer,
    /// Drop mode 1 requests ([`DropReason::Mode`](crate::DropReason::Mode)).
    Drop,
}

/// Everything a [`Server`](crate::Server) is built from.
///
/// Non-exhaustive, so that settings can be added without breaking callers:
/// start from [`Default`] and set the fields.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Versions answered.
    pub versions: Versions,
    /// Access-control rules; see [`acl`](crate::acl) for which one applies.
    pub acl_rules: Vec<AclRule>,
    /// The action for addresses that no rule covers.
    pub acl_default: AccessAction,
    /// The rate limiter, used for [`AccessAction::Limited`] clients and to
    /// meter the `DENY` and `RSTR` kiss-o'-death packets.
    pub rate_limit: RateLimitConfig,
    /// Whether to answer while unsynchronized.
    pub unsynchronized: UnsynchronizedPolicy,
    /// What to do with requests whose MAC does not verify with the
    /// server's keys ([`Server::set_keys`](crate::Server::set_keys)).
    pub mac: MacPolicy,
    /// Whether symmetric-active (mode 1) requests are answered.
    pub symmetric: SymmetricPolicy,
    /// How many clients the interleaved client/server mode (RFC 9769,
    /// section 2) is remembered for: slots of a table allocated at
    /// construction, [`DEFAULT_INTERLEAVE_CLIENTS`] by default, at most
    /// [`MAX_INTERLEAVE_CLIENTS`]; 0 answers every request in basic mode.
    /// See [`Server::transmitted`](crate::Server::transmitted).
    pub interleave_clients: usize,
}

/// [`ServerConfig::interleave_clients`] by default: 4096 slots of 40
/// octets, 160 KiB (chronyd's client log takes 512 KiB by default). A
/// busy public server meets more clients than that within a poll
/// interval; those that share a slot are answered in basic mode.
#[cfg(feature = "alloc")]
pub const DEFAULT_INTERLEAVE_CLIENTS: usize = 4096;

/// The largest [`ServerConfig::interleave_clients`]: 2^20 slots, 40 MiB.
#[cfg(feature = "alloc")]
pub const MAX_INTERLEAVE_CLIENTS: usize = 1 << 20;

#[cfg(feature = "alloc")]
impl Default for ServerConfig {
    /// Versions 1 to 4, no rules, every client
    /// [`Limited`](AccessAction::Limited) by the default rate limiter
    /// (RFC 8633, section 5.4 expects servers to meter clients; ntpd's
    /// recommended `restrict default limited kod`), unsynchronized state
    /// answered, requests whose MAC does not verify (all of them until
    /// the server is given keys) answered with a crypto-NAK
    /// ([`MacPolicy::CryptoNak`]), symmetric-active requests answered with
    /// mode 2, the interleaved mode for [`DEFAULT_INTERLEAVE_CLIENTS`]
    /// clients.
    fn default() -> Self {
        Self {
            versions: Versions::DEFAULT,
            acl_rules: Vec::new(),
            acl_default: AccessAction::Limited,
            rate_limit: RateLimitConfig::default(),
            unsynchronized: UnsynchronizedPolicy::Answer,
            mac: MacPolicy::CryptoNak,
            symmetric: SymmetricPolicy::Answer,
            interleave_clients: DEFAULT_INTERLEAVE_CLIENTS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        // RFC 5905 section 9.2's "acceptable version number (1-4)", by
        // default; never 0 nor 5 to 7 (another header).
        for v in 1..=4 {
            assert!(Versions::DEFAULT.contains(v), "{v}");
        }
        for v in [0, 5, 6, 7, 8, 255] {
            assert!(!Versions::DEFAULT.contains(v), "{v}");
        }
        assert_eq!(Versions::DEFAULT, Versions::default());
        assert_eq!(Versions::new(&[1, 2, 3, 4]), Ok(Versions::ALL));
        assert_eq!(Versions::new(&[4, 3, 2, 1]), Ok(Versions::DEFAULT));
        let modern = Versions::new(&[4, 3]).unwrap();
        assert!(modern.contains(3) && modern.contains(4) && !modern.contains(2));
        assert_eq!(Versions::new(&[5]), Err(ConfigError::Version(5)));
        assert_eq!(Versions::new(&[0]), Err(ConfigError::Version(0)));
        assert_eq!(Versions::new(&[]), Err(ConfigError::Version(0)));
        let only_two = Versions::new(&[2]).unwrap();
        assert!(only_two.contains(2) && !only_two.contains(3));
    }
}

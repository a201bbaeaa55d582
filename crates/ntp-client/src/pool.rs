//! Pools: one name that stands for several servers, as chrony's `pool`
//! directive and ntpd's `pool` command (RFC 5905 has no pools; the NTP
//! Pool Project's DNS names return a few random servers per lookup).
//!
//! The core stays sans-IO: it asks for the name to be resolved with
//! [`Output::Resolve`](crate::Output::Resolve), the caller resolves it
//! (DNS, a static list, anything) and hands the addresses back with
//! [`System::handle_resolved`](crate::System::handle_resolved). The
//! system keeps up to `max_sources` members, replaces a member that stops
//! answering, is a falseticker for a while, or sends a kiss-o'-death that
//! stops it, and asks again, with a growing interval while resolutions
//! bring nothing new.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use ntp_proto::KissCode;

use crate::{Instant, SourceConfig};

/// The first interval between two resolutions of a pool's name, and the
/// interval after a resolution that added a member: 64 s (one default
/// poll). A resolution is asked for only while the pool has fewer members
/// than its maximum.
pub const POOL_RESOLVE_MIN_INTERVAL: Duration = Duration::from_secs(64);

/// The longest interval between two resolutions: 4096 s. Each resolution
/// that adds no member doubles the interval up to this, so that a name
/// that keeps returning the same few addresses costs one lookup an hour.
pub const POOL_RESOLVE_MAX_INTERVAL: Duration = Duration::from_secs(4096);

/// A member whose reach register has been zero for this many of its polls
/// in a row is replaced: 8, the length of the reach register (RFC 5905,
/// section 13), so about 8 minutes at the default poll.
pub const POOL_UNREACHABLE_POLLS: u8 = 8;

/// A member that has been a falseticker without interruption for this long
/// is replaced: 900 s, the RFC 5905 stepout interval (section 11.3), long
/// enough not to drop a truechimer over one noisy selection.
pub const POOL_FALSETICKER_HOLD: Duration = Duration::from_secs(900);

/// A removed member's address is not taken again from a resolution for
/// this long: one day, so that a falseticker that the name keeps returning
/// does not come straight back.
pub const POOL_BLOCK_TIME: Duration = Duration::from_secs(86_400);

/// How many removed addresses a pool remembers (the oldest is forgotten
/// first).
pub const POOL_BLOCK_LIST: usize = 32;

/// Identifies a pool of a [`System`](crate::System).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PoolId(u64);

impl PoolId {
    pub(crate) const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number, unique within its system.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pool#{}", self.0)
    }
}

/// Why a member left its pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum PoolRemoval {
    /// No valid reply for [`POOL_UNREACHABLE_POLLS`] polls.
    Unreachable,
    /// A falseticker for [`POOL_FALSETICKER_HOLD`] without interruption.
    Falseticker,
    /// A kiss-o'-death (`DENY`, `RSTR`) stopped it.
    Kissed(KissCode),
}

impl fmt::Display for PoolRemoval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable => f.write_str("unreachable"),
            Self::Falseticker => f.write_str("falseticker"),
            Self::Kissed(code) => write!(f, "kiss-o'-death {code}"),
        }
    }
}

/// Why [`System::handle_resolved`](crate::System::handle_resolved)
/// refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// No pool has this id (it was removed, or belongs to another system).
    #[error("no such pool")]
    UnknownPool,
}

/// One pool's bookkeeping.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    pub(crate) id: PoolId,
    pub(crate) name: String,
    pub(crate) max_sources: usize,
    pub(crate) config: SourceConfig,
    /// When the next resolution is due (if members are missing).
    pub(crate) next_resolve: Instant,
    /// The interval that follows the next resolution.
    pub(crate) interval: Duration,
    /// When a resolution was last asked for.
    last_asked: Option<Instant>,
    /// Recently removed members' addresses, and when.
    blocked: Vec<(SocketAddr, Instant)>,
}

impl Pool {
    pub(crate) fn new(
        id: PoolId,
        name: String,
        max_sources: usize,
        config: SourceConfig,
        now: Instant,
    ) -> Self {
        Self {
            id,
            name,
            max_sources,
            config,
            next_resolve: now,
            interval: POOL_RESOLVE_MIN_INTERVAL,
            last_asked: None,
            blocked: Vec::new(),
        }
    }

    /// A resolution is asked for at `now`: the next one waits the current
    /// interval, which then doubles (up to the maximum) until a resolution
    /// adds a member.
    pub(crate) fn asked(&mut self, now: Instant) {
        self.last_asked = Some(now);
        self.next_resolve = now.saturating_add(self.interval);
        self.interval = self
            .interval
            .saturating_mul(2)
            .min(POOL_RESOLVE_MAX_INTERVAL);
    }

    /// A resolution added members: back to the shortest interval.
    pub(crate) fn filled(&mut self, now: Instant) {
        self.interval = POOL_RESOLVE_MIN_INTERVAL;
        self.next_resolve = now.saturating_add(POOL_RESOLVE_MIN_INTERVAL);
    }

    /// A member was removed at `now`: its address is blocked, and the pool
    /// may ask for a replacement at once unless it asked within the
    /// shortest interval.
    pub(crate) fn removed(&mut self, address: SocketAddr, now: Instant) {
        if self.blocked.len() >= POOL_BLOCK_LIST {
            self.blocked.remove(0);
        }
        self.blocked.push((address, now));
        self.interval = POOL_RESOLVE_MIN_INTERVAL;
        let earliest = self
            .last_asked
            .map_or(now, |at| at.saturating_add(POOL_RESOLVE_MIN_INTERVAL));
        self.next_resolve = now.max(earliest);
    }

    /// Whether `address` was removed less than [`POOL_BLOCK_TIME`] ago.
    pub(crate) fn is_blocked(&self, address: SocketAddr, now: Instant) -> bool {
        self.blocked.iter().any(|&(blocked, at)| {
            same_address(blocked, address) && now < at.saturating_add(POOL_BLOCK_TIME)
        })
    }
}

/// Two socket addresses that name the same server (an IPv4 address and
/// its IPv4-mapped IPv6 form are the same).
pub(crate) fn same_address(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use core::net::{IpAddr, Ipv4Addr};

    #[test]
    fn resolution_interval_doubles_until_filled_and_removal_asks_soon() {
        let mut pool = Pool::new(
            PoolId::new(1),
            String::from("pool.example"),
            4,
            SourceConfig::default(),
            Instant::ZERO,
        );
        assert_eq!(pool.next_resolve, Instant::ZERO);
        pool.asked(Instant::ZERO);
        assert_eq!(pool.next_resolve, Instant::from_secs(64));
        pool.asked(Instant::from_secs(64));
        assert_eq!(pool.next_resolve, Instant::from_secs(64 + 128));
        for _ in 0..20 {
            pool.asked(Instant::from_secs(1000));
        }
        assert_eq!(pool.interval, POOL_RESOLVE_MAX_INTERVAL);
        pool.filled(Instant::from_secs(2000));
        assert_eq!(pool.interval, POOL_RESOLVE_MIN_INTERVAL);
        assert_eq!(pool.next_resolve, Instant::from_secs(2064));
        // A removal 10 s after the last resolution was asked for asks
        // 64 s after that one; a removal later asks at once.
        pool.asked(Instant::from_secs(2000));
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 123);
        pool.removed(address, Instant::from_secs(2010));
        assert_eq!(pool.next_resolve, Instant::from_secs(2064));
        assert_eq!(pool.interval, POOL_RESOLVE_MIN_INTERVAL);
        pool.removed(address, Instant::from_secs(2100));
        assert_eq!(pool.next_resolve, Instant::from_secs(2100));
        assert!(pool.is_blocked(address, Instant::from_secs(2011)));
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:123".parse().unwrap();
        assert!(pool.is_blocked(mapped, Instant::from_secs(2011)));
        assert!(pool.is_blocked(address, Instant::from_secs(2010 + 86_400)));
        assert!(!pool.is_blocked(address, Instant::from_secs(2100 + 86_400)));
        // The block list is bounded.
        for i in 0..100u8 {
            let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)), 123);
            pool.removed(other, Instant::from_secs(3000));
        }
        assert_eq!(pool.blocked.len(), POOL_BLOCK_LIST);
        assert_eq!(PoolId::new(3).to_string(), "pool#3");
        assert_eq!(
            PoolRemoval::Kissed(KissCode::Deny).to_string(),
            "kiss-o'-death DENY"
        );
    }
}

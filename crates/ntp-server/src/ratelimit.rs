//! Per-client rate limiting (RFC 8633, section 5.4; RFC 5905, section 7.4
//! kiss code `RATE`).
//!
//! # The bucket
//!
//! Each client prefix (by default an IPv4 /32 or an IPv6 /64) has a token
//! bucket of `burst` tokens refilled at one token per `2^interval` seconds,
//! kept in the equivalent GCRA form: one "theoretical arrival time" (TAT)
//! per client. A request at `now` is within the limit when
//! `max(TAT, now) - now <= (burst - 1) * T`, where `T = 2^interval` s;
//! it then moves the TAT to `max(TAT, now) + T`. A request over the limit
//! leaves the TAT alone, so a client that never stops sending still gets
//! one answer per `T` and never more than `burst` back to back.
//!
//! Over-limit requests are counted per client: the 1st, the `leak + 1`-th,
//! the `2 * leak + 1`-th... get a Kiss-o'-Death `RATE`, all others are
//! dropped, so at most 1 in `leak` over-limit requests gets any answer and
//! the server cannot be used as a reflector (`leak = 0`: never a KoD).
//!
//! # The table and its eviction policy
//!
//! The table is allocated once from
//! [`RateLimitConfig::capacity`]: `capacity` rounded up to a power of two
//! sets of [`RATE_TABLE_WAYS`] entries; a set is one 64-octet cache line
//! (plus 16 octets of over-limit counters read only for clients over their
//! limit). It never grows. A client prefix is hashed with SipHash-1-3
//! under the caller's 128-bit key ([`RateLimitConfig::hash_key`]): the
//! high bits pick the set, the 64-bit hash is the entry's tag. A lookup
//! reads that one set, so it costs O(1) whatever the load.
//!
//! A prefix not in its set takes the way with the **earliest TAT** (empty
//! ways first, then the lowest way on ties). This gives three guarantees,
//! each tested:
//!
//! 1. **Memory is constant**: a flood from any number of addresses reuses
//!    the same entries.
//! 2. **A conforming client is never limited by other clients' traffic.**
//!    An entry whose TAT is not after `now` is exactly a fresh entry, and a
//!    client that keeps to the limit (at most `burst` back to back, mean
//!    spacing at least `T`) is within the limit both with its own entry and
//!    with a fresh one. So evicting it, however often, changes none of its
//!    answers.
//! 3. **A limited client cannot be freed cheaply.** An entry is evicted
//!    only when every other way of its set holds a TAT at least as late,
//!    i.e. when [`RATE_TABLE_WAYS`]` - 1` other prefixes hashed to the same
//!    set have each used at least as much of their budget. A new prefix
//!    that sends one request gets `TAT = now + T`, while a client over its
//!    limit has `TAT > now + (burst - 1) * T`; so with `burst >= 2` a flood
//!    of single requests from any number of addresses never evicts a
//!    client that is over its limit. The keyed hash keeps an attacker from
//!    aiming many busy prefixes at one set.
//! 4. **What eviction can give away.** A client within its limit may be
//!    evicted; it then gets back the budget it had used,
//!    `TAT - now <= (burst - 1) * T`, at most one request's worth (`T`)
//!    when it is evicted by single-request newcomers. Under a flood of `F`
//!    new prefixes per second into a table of `C` entries, such an entry
//!    lasts about `C / F` seconds; a client that sends faster than that
//!    builds up a TAT beyond `now + T` and is then held by guarantee 3.
//!    Size the table so that `C / F` exceeds the gap between an abuser's
//!    requests you care about (the default 16384 entries hold a one-shot
//!    entry for 8 s under a flood of 2000 new addresses per second).
//!
//! Prefixes that share an entry (two hosts of one /64) share a bucket; that
//! is the meaning of the prefix length, not a collision.

use alloc::vec;
use alloc::vec::Vec;
use core::hash::Hasher;
use core::net::IpAddr;

use siphasher::sip::SipHasher13;

use crate::prefix::{V4_BITS, V6_BITS, canonical_ip, v4_mask, v6_mask};
use crate::{ConfigError, Instant};

/// Ways per set of the client table: 4 entries of 16 octets, one cache
/// line per lookup.
pub const RATE_TABLE_WAYS: usize = 4;

/// Smallest rate-limit interval, log2 s (2^-10 s, about 1 ms). Shorter
/// intervals would make the limiter pointless.
pub const MIN_RATE_INTERVAL: i8 = -10;

/// Largest rate-limit interval, log2 s: MAXPOLL = 17 (36.4 h),
/// RFC 5905, section 7.2.
pub const MAX_RATE_INTERVAL: i8 = 17;

/// Largest client table: 2^22 entries (80 MiB).
pub const MAX_RATE_CAPACITY: usize = 1 << 22;

/// Default interval, log2 s: 3 (8 s). RFC 5905 and RFC 8633 set no value;
/// this is ntpd's `discard average 3` and chrony's `ratelimit interval 3`.
pub const DEFAULT_RATE_INTERVAL: i8 = 3;

/// Default burst: 8 requests back to back, chrony's `ratelimit burst 8`.
/// It lets a client's `iburst` start (RFC 5905, section 13: eight packets)
/// through.
pub const DEFAULT_RATE_BURST: u16 = 8;

/// Default leak: one over-limit request in 4 gets a KoD `RATE`. chrony's
/// `ratelimit leak 2` answers 1 in 2^2 = 4 (at random); we count instead,
/// so the behaviour is deterministic and needs no random source.
pub const DEFAULT_RATE_LEAK: u16 = 4;

/// Default client table capacity: 16384 clients (320 KiB).
pub const DEFAULT_RATE_CAPACITY: usize = 16_384;

/// Default IPv4 client prefix: one address.
pub const DEFAULT_IPV4_PREFIX: u8 = 32;

/// Default IPv6 client prefix: /64, one subnet, since a single host can
/// draw addresses from its whole /64 (RFC 4291, RFC 8981).
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The rate limiter's settings; see the [module documentation](self).
/// Non-exhaustive: start from [`Default`] and set the fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Minimum mean spacing between requests of one client, log2 s
    /// ([`MIN_RATE_INTERVAL`] to [`MAX_RATE_INTERVAL`]). Responses to
    /// limited clients carry a poll of at least this value.
    pub interval: i8,
    /// Requests a client may send back to back (at least 1).
    pub burst: u16,
    /// One over-limit request in `leak` gets a KoD `RATE`; 0 for none.
    pub leak: u16,
    /// IPv4 clients sharing the first `ipv4_prefix` bits share a bucket
    /// (0 to 32).
    pub ipv4_prefix: u8,
    /// IPv6 clients sharing the first `ipv6_prefix` bits share a bucket
    /// (0 to 128).
    pub ipv6_prefix: u8,
    /// Number of clients the table holds (1 to [`MAX_RATE_CAPACITY`]),
    /// rounded up to a power of two sets of [`RATE_TABLE_WAYS`].
    pub capacity: usize,
    /// Secret key of the table's hash: an attacker who knows it can aim
    /// addresses at one set of the table and evict a victim's bucket. With
    /// the `std` feature [`Default`] draws it at random (see
    /// [`random_hash_key`]); without `std` the core has no randomness and
    /// the default is all zeros, so set it from the platform's generator.
    pub hash_key: [u8; 16],
}

impl Default for RateLimitConfig {
    /// The `DEFAULT_*` constants; the hash key random with `std`, all zeros
    /// without (replace it then).
    fn default() -> Self {
        Self {
            interval: DEFAULT_RATE_INTERVAL,
            burst: DEFAULT_RATE_BURST,
            leak: DEFAULT_RATE_LEAK,
            ipv4_prefix: DEFAULT_IPV4_PREFIX,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
            capacity: DEFAULT_RATE_CAPACITY,
            hash_key: default_hash_key(),
        }
    }
}

/// A random 128-bit key for [`RateLimitConfig::hash_key`], from std's
/// per-process hasher keys (`RandomState`, seeded from the operating
/// system's generator): two SipHash outputs under fresh `RandomState`s.
/// Infallible, and unpredictable without the process's secret keys.
#[cfg(feature = "std")]
#[must_use]
pub fn random_hash_key() -> [u8; 16] {
    use core::hash::BuildHasher;
    let state = std::hash::RandomState::new();
    let low = state.hash_one(0x6e74_705f_7261_7465_u64);
    let high = std::hash::RandomState::new().hash_one(low);
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&low.to_le_bytes());
    key[8..].copy_from_slice(&high.to_le_bytes());
    key
}

#[cfg(feature = "std")]
fn default_hash_key() -> [u8; 16] {
    random_hash_key()
}

#[cfg(not(feature = "std"))]
const fn default_hash_key() -> [u8; 16] {
    [0; 16]
}

impl RateLimitConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// The first field out of range.
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.interval < MIN_RATE_INTERVAL || self.interval > MAX_RATE_INTERVAL {
            return Err(ConfigError::RateInterval(self.interval));
        }
        if self.burst == 0 {
            return Err(ConfigError::RateBurst);
        }
        if self.ipv4_prefix > V4_BITS {
            return Err(ConfigError::PrefixLength {
                len: self.ipv4_prefix,
                max: V4_BITS,
            });
        }
        if self.ipv6_prefix > V6_BITS {
            return Err(ConfigError::PrefixLength {
                len: self.ipv6_prefix,
                max: V6_BITS,
            });
        }
        if self.capacity == 0 || self.capacity > MAX_RATE_CAPACITY {
            return Err(ConfigError::RateCapacity(self.capacity));
        }
        Ok(())
    }

    /// `T = 2^interval` seconds in nanoseconds (rounded down, at least 1).
    const fn interval_nanos(&self) -> u64 {
        const NANOS: u64 = 1_000_000_000;
        let shift = self.interval.unsigned_abs() as u32;
        let nanos = if self.interval >= 0 {
            NANOS << shift
        } else {
            NANOS >> shift
        };
        if nanos == 0 { 1 } else { nanos }
    }
}

/// The limiter's decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateVerdict {
    /// Within the limit.
    Allow,
    /// Over the limit; `kiss` is true for the 1 in `leak` that gets a KoD
    /// `RATE`.
    Limit {
        /// Whether to send a KoD `RATE`.
        kiss: bool,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entry {
    /// The client's 64-bit tag: half of the keyed 128-bit hash of its
    /// prefix (the other half picks the set).
    tag: u64,
    /// Theoretical arrival time, ns on the caller's clock; 0 = empty way
    /// (an entry in use always has `TAT >= T > 0`).
    tat: u64,
}

/// The IPv4-mapped range `::ffff:0:0/96` that IPv4 keys live in.
const V4_KEY_TAG: u128 = 0xffff_u128 << 32;
const V4_KEY_MASK: u128 = u32::MAX as u128;

/// One set: four 16-octet entries, one cache line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(64))]
struct Set([Entry; RATE_TABLE_WAYS]);

/// Over-limit requests per way since the entry was created (wrapping),
/// apart from the sets so that the common path reads one cache line.
type OverCounts = [u32; RATE_TABLE_WAYS];

/// How a client is hashed: its prefix, under the secret key.
#[derive(Clone, Copy, Debug)]
struct ClientHash {
    v4_mask: u32,
    v6_mask: u128,
    hasher: SipHasher13,
}

impl ClientHash {
    /// The table key of a client: its prefix, IPv4 in the mapped range.
    #[inline]
    fn key(&self, ip: IpAddr) -> u128 {
        match canonical_ip(ip) {
            IpAddr::V4(v4) => V4_KEY_TAG | u128::from(u32::from(v4) & self.v4_mask),
            IpAddr::V6(v6) => u128::from(v6) & self.v6_mask,
        }
    }

    /// SipHash-1-3 under the secret key, over the 4 octets of an IPv4
    /// prefix or the 16 of an IPv6 one (SipHash mixes in the length, so
    /// the families never meet).
    #[inline]
    fn hash(&self, ip: IpAddr) -> u64 {
        let key = self.key(ip);
        let mut hasher = self.hasher;
        if key & !V4_KEY_MASK == V4_KEY_TAG {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "the low 32 bits: the IPv4 prefix"
            )]
            hasher.write_u32(key as u32);
        } else {
            #[allow(clippy::cast_possible_truncation, reason = "the two 64-bit halves")]
            {
                hasher.write_u64((key >> 64) as u64);
                hasher.write_u64(key as u64);
            }
        }
        hasher.finish()
    }
}

/// The per-client rate limiter; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct RateLimiter {
    sets: Vec<Set>,
    over: Vec<OverCounts>,
    /// 64 - log2(number of sets): the hash's high bits index the set.
    set_shift: u32,
    interval: u64,
    tolerance: u64,
    leak: u32,
    client_hash: ClientHash,
    interval_log2: i8,
}

impl RateLimiter {
    /// Allocates the table.
    ///
    /// # Errors
    ///
    /// A field of `config` out of range (see [`RateLimitConfig::validate`]).
    pub fn new(config: &RateLimitConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let sets = config
            .capacity
            .div_ceil(RATE_TABLE_WAYS)
            .next_power_of_two();
        let interval = config.interval_nanos();
        Ok(Self {
            sets: vec![Set::default(); sets],
            over: vec![[0; RATE_TABLE_WAYS]; sets],
            set_shift: 64 - sets.trailing_zeros(),
            interval,
            tolerance: interval.saturating_mul(u64::from(config.burst - 1)),
            leak: u32::from(config.leak),
            client_hash: ClientHash {
                v4_mask: v4_mask(config.ipv4_prefix),
                v6_mask: v6_mask(config.ipv6_prefix),
                hasher: SipHasher13::new_with_key(&config.hash_key),
            },
            interval_log2: config.interval,
        })
    }

    /// An empty limiter with the same settings and a table of `sets`
    /// sets (rounded up to a power of two).
    #[cfg(feature = "std")]
    fn empty_like(&self, sets: usize) -> Self {
        let sets = sets.max(1).next_power_of_two();
        Self {
            sets: vec![Set::default(); sets],
            over: vec![[0; RATE_TABLE_WAYS]; sets],
            set_shift: 64 - sets.trailing_zeros(),
            ..*self
        }
    }

    /// The configured interval, log2 s.
    #[must_use]
    pub const fn interval(&self) -> i8 {
        self.interval_log2
    }

    /// How many clients the table holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.sets.len().saturating_mul(RATE_TABLE_WAYS)
    }

    /// Heap bytes held by the table (fixed after construction).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.sets
            .capacity()
            .saturating_mul(size_of::<Set>())
            .saturating_add(self.over.capacity().saturating_mul(size_of::<OverCounts>()))
    }

    /// How many entries hold a client.
    #[must_use]
    pub fn occupied(&self) -> usize {
        self.sets
            .iter()
            .flat_map(|set| set.0.iter())
            .filter(|entry| entry.tat != 0)
            .count()
    }

    /// The set index and tag of a client's hash ([`ClientHash::hash`]).
    /// The high bits of the 64-bit hash pick the set and the whole hash
    /// is the tag, so two prefixes in one set share an entry only if the
    /// other `64 - log2(sets)` bits (at least 44) collide: without the
    /// key, a probability of at most `3 * 2^-44` per request.
    #[inline]
    fn locate(&self, hash: u64) -> (usize, u64) {
        let index = usize::try_from(hash.checked_shr(self.set_shift).unwrap_or(0)).unwrap_or(0);
        (index, hash)
    }

    /// Meters one request from `ip` at `now`. The caller must not let
    /// `now` go backwards ([`Server`](crate::Server) clamps it); an earlier
    /// `now` only makes the limiter stricter.
    #[inline]
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> RateVerdict {
        self.check_hash(self.client_hash.hash(ip), now)
    }

    /// [`check`](Self::check) of the client whose hash is `hash`.
    #[inline]
    fn check_hash(&mut self, hash: u64, now: Instant) -> RateVerdict {
        let (index, tag) = self.locate(hash);
        let now = now.as_nanos();
        let Some(set) = self.sets.get_mut(index) else {
            // Unreachable: the index is masked to the table size.
            return RateVerdict::Allow;
        };
        let way = match set.0.iter().position(|e| e.tat != 0 && e.tag == tag) {
            Some(way) => way,
            None => {
                // The earliest TAT; empty ways (TAT 0) first, lowest way on ties.
                let mut victim = 0;
                let mut earliest = u64::MAX;
                for (way, entry) in set.0.iter().enumerate() {
                    if entry.tat < earliest {
                        earliest = entry.tat;
                        victim = way;
                    }
                }
                if let Some(entry) = set.0.get_mut(victim) {
                    *entry = Entry { tag, tat: 0 };
                }
                if let Some(count) = self.over.get_mut(index).and_then(|c| c.get_mut(victim)) {
                    *count = 0;
                }
                victim
            }
        };
        let Some(entry) = set.0.get_mut(way) else {
            return RateVerdict::Allow;
        };
        let tat = entry.tat.max(now);
        if tat.wrapping_sub(now) > self.tolerance {
            let Some(count) = self.over.get_mut(index).and_then(|c| c.get_mut(way)) else {
                return RateVerdict::Limit { kiss: false };
            };
            let previous = *count;
            *count = previous.wrapping_add(1);
            let kiss = self.leak != 0 && previous % self.leak == 0;
            RateVerdict::Limit { kiss }
        } else {
            entry.tat = tat.saturating_add(self.interval);
            RateVerdict::Allow
        }
    }

    /// Whether `ip`'s prefix has an entry (for tests and diagnostics).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_hash(self.client_hash.hash(ip))
    }

    /// [`contains`](Self::contains) for the client whose hash is `hash`.
    fn contains_hash(&self, hash: u64) -> bool {
        let (index, tag) = self.locate(hash);
        self.sets
            .get(index)
            .is_some_and(|set| set.0.iter().any(|e| e.tat != 0 && e.tag == tag))
    }

    /// Forgets every client.
    pub fn clear(&mut self) {
        self.sets.fill(Set::default());
        self.over.fill([0; RATE_TABLE_WAYS]);
    }
}

/// Shards of a [`SharedRateLimiter`], each behind its own lock: enough
/// that threads serving at full speed rarely wait for one another.
#[cfg(feature = "std")]
pub const RATE_SHARDS: usize = 16;

/// One rate limit for several threads: the threads that serve one
/// address (one socket each, `SO_REUSEPORT`) share it, so that a client
/// that changes its source port, and so reaches another thread, gets no
/// more than its limit. [`Server::share_rate_limiter`](crate::Server::share_rate_limiter)
/// makes one.
///
/// The table is a [`RateLimiter`]'s, cut into [`RATE_SHARDS`] shards of
/// `capacity / RATE_SHARDS` clients (rounded up as a limiter's table is),
/// each behind a `Mutex`: a client's hash picks the shard by its low bits
/// and, within it, the set by its high bits. The bucket, the eviction
/// policy and its guarantees are the [module's](self), per shard; memory
/// is fixed at construction, as before.
///
/// Threads meter with their own readings of `now`: a thread whose `now`
/// was read a little earlier than another's only makes the limiter
/// stricter for that request.
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct SharedRateLimiter {
    shards: Vec<std::sync::Mutex<RateLimiter>>,
    client_hash: ClientHash,
    interval_log2: i8,
}

#[cfg(feature = "std")]
impl SharedRateLimiter {
    /// A shared limiter with `like`'s settings and as many clients, all
    /// forgotten.
    #[must_use]
    pub fn like(like: &RateLimiter) -> Self {
        let sets = like.sets.len().div_ceil(RATE_SHARDS);
        Self {
            shards: (0..RATE_SHARDS)
                .map(|_| std::sync::Mutex::new(like.empty_like(sets)))
                .collect(),
            client_hash: like.client_hash,
            interval_log2: like.interval_log2,
        }
    }

    /// The configured interval, log2 s.
    #[must_use]
    pub const fn interval(&self) -> i8 {
        self.interval_log2
    }

    /// How many clients the table holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.sum_of(RateLimiter::capacity)
    }

    /// How many entries hold a client.
    #[must_use]
    pub fn occupied(&self) -> usize {
        self.sum_of(RateLimiter::occupied)
    }

    /// Heap bytes held by the tables (fixed after construction).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        let locks = self.shards.capacity() * size_of::<std::sync::Mutex<RateLimiter>>();
        self.sum_of(RateLimiter::heap_bytes).saturating_add(locks)
    }

    /// Meters one request from `ip` at `now`, as [`RateLimiter::check`].
    #[inline]
    pub fn check(&self, ip: IpAddr, now: Instant) -> RateVerdict {
        self.with_shard_of(ip, |shard, hash| shard.check_hash(hash, now))
            .unwrap_or(RateVerdict::Allow)
    }

    /// Whether `ip`'s prefix has an entry (for tests and diagnostics).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.with_shard_of(ip, |shard, hash| shard.contains_hash(hash))
            .unwrap_or(false)
    }

    /// `what` on `ip`'s shard, locked, with `ip`'s hash. A thread that
    /// panicked while holding the lock left a whole table (an entry is
    /// written in one piece), so a poisoned lock is taken as it is.
    #[inline]
    fn with_shard_of<T>(
        &self,
        ip: IpAddr,
        what: impl FnOnce(&mut RateLimiter, u64) -> T,
    ) -> Option<T> {
        let hash = self.client_hash.hash(ip);
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the low bits pick the shard"
        )]
        let shard = self.shards.get((hash as usize) % RATE_SHARDS)?;
        let mut shard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(what(&mut shard, hash))
    }

    /// `what` of every shard, summed.
    fn sum_of(&self, what: impl Fn(&RateLimiter) -> usize) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                what(
                    &shard
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                )
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "std")]
    #[test]
    fn the_default_hash_key_is_random_with_std() {
        let (a, b) = (RateLimitConfig::default(), RateLimitConfig::default());
        assert_ne!(a.hash_key, [0; 16]);
        assert_ne!(a.hash_key, b.hash_key);
        assert_ne!(random_hash_key(), random_hash_key());
    }

    use super::*;

    fn limiter(interval: i8, burst: u16, leak: u16, capacity: usize) -> RateLimiter {
        RateLimiter::new(&RateLimitConfig {
            interval,
            burst,
            leak,
            capacity,
            hash_key: [3; 16],
            ..RateLimitConfig::default()
        })
        .unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn burst_then_one_per_interval() {
        let mut l = limiter(4, 4, 1, 64);
        let a = ip("192.0.2.66");
        let ms = |m: u64| Instant::from_nanos(m * 1_000_000);
        let allowed: Vec<u64> = (0..700)
            .map(|i| i * 100)
            .filter(|&m| l.check(a, ms(m)) == RateVerdict::Allow)
            .collect();
        // tat = 64 s after the burst; then one each time tat - now <= 48 s.
        assert_eq!(allowed, [0, 100, 200, 300, 16_000, 32_000, 48_000, 64_000]);
    }

    #[test]
    fn newcomers_never_evict_a_client_over_its_limit() {
        let mut l = limiter(4, 2, 1, 64);
        let client = ip("198.51.100.1");
        let set = l.locate(l.client_hash.hash(client)).0;
        let now = Instant::from_secs(1);
        assert_eq!(l.check(client, now), RateVerdict::Allow);
        assert_eq!(l.check(client, now), RateVerdict::Allow);
        assert_eq!(l.check(client, now), RateVerdict::Limit { kiss: true });
        // 1000 one-shot addresses aimed at the client's own set (a test
        // knows the hash key), spread over the next 15 s.
        let mut aimed = 0u64;
        for n in 0..u32::MAX {
            let other = IpAddr::V4(core::net::Ipv4Addr::from(0x0a00_0000 + n));
            if l.locate(l.client_hash.hash(other)).0 != set {
                continue;
            }
            let t = Instant::from_nanos(now.as_nanos() + aimed * 15_000_000);
            assert_eq!(l.check(other, t), RateVerdict::Allow);
            assert!(l.contains(client), "evicted by newcomer {aimed}");
            assert_eq!(l.check(client, t), RateVerdict::Limit { kiss: true });
            aimed += 1;
            if aimed == 1000 {
                break;
            }
        }
        assert_eq!(l.occupied(), RATE_TABLE_WAYS);
    }

    #[test]
    fn victim_is_the_earliest_tat() {
        let mut l = limiter(0, 8, 1, 4);
        assert_eq!(l.capacity(), RATE_TABLE_WAYS);
        let ips = [
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            ip("192.0.2.3"),
            ip("192.0.2.4"),
        ];
        // Requests used: 3, 1, 2, 4 -> 192.0.2.2 has the earliest TAT.
        for (addr, count) in ips.iter().zip([3, 1, 2, 4]) {
            for _ in 0..count {
                assert_eq!(l.check(*addr, Instant::ZERO), RateVerdict::Allow);
            }
        }
        assert_eq!(l.check(ip("192.0.2.5"), Instant::ZERO), RateVerdict::Allow);
        assert!(!l.contains(ips[1]));
        assert!(l.contains(ips[0]) && l.contains(ips[2]) && l.contains(ips[3]));
        l.clear();
        assert_eq!(l.occupied(), 0);
    }

    #[test]
    fn prefixes_group_clients() {
        let mut l = RateLimiter::new(&RateLimitConfig {
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            burst: 1,
            ..RateLimitConfig::default()
        })
        .unwrap();
        assert_eq!(l.check(ip("192.0.2.1"), Instant::ZERO), RateVerdict::Allow);
        assert!(matches!(
            l.check(ip("192.0.2.254"), Instant::ZERO),
            RateVerdict::Limit { .. }
        ));
        assert!(matches!(
            l.check(ip("::ffff:192.0.2.7"), Instant::ZERO),
            RateVerdict::Limit { .. }
        ));
        assert_eq!(l.check(ip("192.0.3.1"), Instant::ZERO), RateVerdict::Allow);
        assert_eq!(
            l.check(ip("2001:db8:1::1"), Instant::ZERO),
            RateVerdict::Allow
        );
        assert!(matches!(
            l.check(ip("2001:db8:1:ffff::1"), Instant::ZERO),
            RateVerdict::Limit { .. }
        ));
        assert_eq!(
            l.check(ip("2001:db8:2::1"), Instant::ZERO),
            RateVerdict::Allow
        );
    }

    #[test]
    fn interval_in_nanoseconds() {
        let at = |interval| RateLimitConfig {
            interval,
            ..RateLimitConfig::default()
        };
        assert_eq!(at(0).interval_nanos(), 1_000_000_000);
        assert_eq!(at(3).interval_nanos(), 8_000_000_000);
        assert_eq!(at(17).interval_nanos(), 131_072_000_000_000);
        assert_eq!(at(-10).interval_nanos(), 976_562);
    }
}

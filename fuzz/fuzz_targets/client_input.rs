//! The client system (three sources) on arbitrary datagrams interleaved
//! with timeouts and polls. Datagrams may copy the nonce of the request in
//! flight into their origin field, and may be built from a valid response
//! template, so that the checks after the origin test are reached too.
//!
//! Invariants: no panic; a datagram that is refused (`Err`) leaves every
//! source exactly as it was; time never goes backwards in the outputs
//! (every timeout is at or after `now`); a drain ends within a bounded
//! number of outputs; every transmit is a 48-octet data-minimized request;
//! the system offset, jitter and exported state hold no NaN. With `keyed`,
//! source 2 authenticates with an MD5 key: its requests are 68 octets and
//! carry a valid MAC, and datagrams may be signed with that key (`sign`)
//! so that the checks after the MAC are reached for it as well. With
//! `nts`, a fourth source is an NTS source: its NTS-KE is answered by
//! `Step::NtsKe` (keys and cookies from a fixed cookie key, or a failure),
//! and a datagram to it may be the genuine NTS answer to its last request
//! (`nts_answer`), patched like the template, so that both the authentic
//! path and every refusal of a tampered answer are fuzzed, or an
//! unauthenticated kiss-o'-death echoing the request (`nts_kiss`): it may
//! back the source off but never stops it or costs it a cookie. With
//! `refclock`, a GPS and a PPS reference clock take arbitrary or truthful
//! samples: a refused sample leaves every source as it was. With
//! `xleave`, the sources ask for the interleaved mode, and a datagram may
//! echo the second nonce of the last request (`echo_receive`); the caller
//! may report transmit times (`Step::Transmitted`), right or wrong.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ntp_client::ntp_nts::cookie::CookieKeys;
use ntp_client::ntp_nts::server::{RequestError, verify_request};
use ntp_client::ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys};
use ntp_client::rand_core::RngCore;
use ntp_client::{
    DelayConfig, Input, Instant, Key, KeyId, KeyType, NtsKeFailed, NtsKeOutcome, Output,
    RefclockConfig, ReplyOutcome, Source, SourceId, System, SystemConfig,
};
use ntp_proto::{Date, LeapIndicator, NtpDuration, Packet, RefId, Timestamp};

#[derive(Arbitrary, Debug)]
enum Step {
    /// A datagram from source `source % 4` (3 is a stranger).
    Datagram {
        source: u8,
        /// Copy the outstanding nonce of that source into the origin.
        echo_nonce: bool,
        /// Then copy the receive field of the last request to that source
        /// (an interleaved request's second nonce) into the origin.
        echo_receive: bool,
        /// Start from a plausible response instead of raw bytes: bytes
        /// then overwrite the header from `patch_at` on.
        template: bool,
        patch_at: u8,
        data: Vec<u8>,
        /// How late it arrives, ms.
        advance_ms: u16,
        /// The receive timestamp's error against the clock, ms.
        rx_error_ms: i16,
        /// Append a MAC of the datagram's first 48 octets with the key.
        sign: bool,
        /// To the NTS source: the genuine NTS answer to its last request
        /// (the template's header), before the patch.
        nts_answer: bool,
        /// To the NTS source, without `nts_answer`: an unauthenticated
        /// kiss-o'-death answering its last request (origin and echoed
        /// Unique Identifier), code `RATE`, `DENY`, `RSTR`, `NTSN` or
        /// `XFOO` by `n % 5`, before the patch.
        nts_kiss: Option<u8>,
    },
    /// Answers a pending NTS-KE: `cookies % 9` cookies (none is a failed
    /// exchange for the system), or a failure.
    NtsKe { fail: bool, cookies: u8 },
    /// A reference clock sample (to refclock `which % 3`: the GPS, the
    /// PPS, or an id that is no reference clock) after `advance_ms`:
    /// `offset` seconds, or the true offset plus `error_us` when
    /// `truthful`; leap indicator `n % 4` when given.
    Refclock {
        which: u8,
        truthful: bool,
        offset: f64,
        error_us: i32,
        leap: Option<u8>,
        advance_ms: u16,
    },
    /// Time passes, ms, then `handle_timeout`.
    Timeout { advance_ms: u32 },
    /// The caller reports when a request of source `source % 4` left
    /// (`handle_transmitted`): its outstanding nonce (or a wrong one), at
    /// the clock now plus `offset_us`.
    Transmitted {
        source: u8,
        echo_nonce: bool,
        offset_us: i32,
    },
    /// The caller's clock jumps by `ms` (stepped by somebody else).
    ClockJump {
        ms: i32,
        /// The caller tells the system (`handle_clock_stepped`), as a
        /// daemon that watches its monotonic clock does.
        told: bool,
    },
    /// Addresses for the pool (or for a pool that does not exist):
    /// `198.51.100.(n + 1)` with the port given (123 when `port` is 0).
    Resolved {
        known_pool: bool,
        addresses: Vec<(u8, u16)>,
    },
}

#[derive(Arbitrary, Debug)]
struct Run {
    seed: u64,
    short_polls: bool,
    /// Also a pool of at most `pool_size % 4 + 1` members.
    pool: bool,
    pool_size: u8,
    /// Source 2 authenticates with [`key`].
    keyed: bool,
    /// A fourth source, over NTS.
    nts: bool,
    /// Delay tests and an asymmetry correction for every source:
    /// `max_delay` (n + 1) ms, `max_delay_ratio` 1 + n / 16,
    /// `max_delay_dev_ratio` (n + 1) / 8, `asymmetry` n / 256 (estimated
    /// when n is 0), and
    /// `min_delay` n / 8 ms unless n is 0.
    delay: Option<[u8; 5]>,
    /// chrony's burst for every source.
    retry_burst: bool,
    /// The interleaved mode for every source.
    xleave: bool,
    /// The NTP version of every source's requests, `2 + n % 3`.
    version: Option<u8>,
    /// chrony's polltarget, `n % 60 + 1`.
    poll_target: Option<u8>,
    /// Reference clocks: a GPS (poll `n % 6 + 1`, filter `n % 64 + 1`),
    /// and a PPS locked to it (or to nothing when `n` is odd).
    refclock: Option<u8>,
    steps: Vec<Step>,
}

/// The key of source 2 when the run is keyed.
fn key() -> Key {
    Key::new(KeyId::new(1).unwrap(), KeyType::Md5, b"fuzz key").unwrap()
}

struct Rng(u64);

/// The harness's generator stands in for a cryptographic one (the System
/// asks for `CryptoRng` to draw NTS identifiers and nonces).
impl ntp_client::rand_core::CryptoRng for Rng {}

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

fn address(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, n + 1)), 123)
}

struct World {
    system: System<Rng>,
    now: u64,
    /// Client clock minus true time, ns.
    phase: i64,
    epoch: Date,
    buf: Vec<u8>,
    keyed: bool,
    /// The configured request version of the plain sources.
    version: Option<u8>,
    /// The NTS source waiting for its NTS-KE.
    ke_pending: Option<SourceId>,
    /// The NTS source's last request.
    nts_request: Option<Vec<u8>>,
    cookie_keys: CookieKeys,
    server_rng: Rng,
    /// The NTS source, when the run has one.
    nts_id: Option<SourceId>,
    /// Whether the sources ask for the interleaved mode.
    xleave: bool,
    /// The last request to each address.
    requests: std::collections::HashMap<SocketAddr, Vec<u8>>,
}

/// The NTP address an NTS-KE hands out: outside the other sources' range.
fn nts_address() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), 123)
}

impl World {
    fn wall(&self) -> Date {
        let nanos = i64::try_from(self.now)
            .unwrap_or(i64::MAX)
            .saturating_add(self.phase);
        self.epoch
            .checked_add(NtpDuration::from_nanos(nanos))
            .unwrap_or(self.epoch)
    }

    fn drain(&mut self) {
        for _ in 0..10_000 {
            match self
                .system
                .poll_output(Instant::from_nanos(self.now), self.wall(), &mut self.buf)
            {
                Output::Transmit {
                    destination, len, ..
                } => {
                    assert_eq!(self.buf.len(), len);
                    if destination == nts_address() {
                        assert!(len > 48 && len <= ntp_client::MAX_NTS_REQUEST_LEN);
                        // Our own request always verifies at the server.
                        assert!(verify_request(&self.buf, &self.cookie_keys).is_ok());
                        self.nts_request = Some(self.buf.clone());
                    } else if self.keyed && destination == address(2) {
                        assert_eq!(len, 48 + 4 + 16);
                        key().verify(&self.buf).unwrap();
                    } else {
                        assert_eq!(len, 48);
                    }
                    // LI 0, mode 3, version 4 (always for NTS) or the
                    // configured one.
                    let version = match self.version {
                        Some(version) if destination != nts_address() => version,
                        _ => 4,
                    };
                    assert_eq!(self.buf[0], (version << 3) | 3);
                    // Data-minimized; an interleaved request names the
                    // server's receive timestamp and a nonce.
                    let zero_until = if self.xleave { 24 } else { 40 };
                    assert!(
                        self.buf[1..zero_until]
                            .iter()
                            .enumerate()
                            .all(|(i, &b)| b == 0 || i == 2)
                    );
                    self.requests.insert(destination, self.buf.clone());
                }
                Output::Event(_) => {}
                Output::NtsKe { source } => self.ke_pending = Some(source),
                Output::Timeout(at) => {
                    assert!(at.as_nanos() >= self.now, "timeout in the past");
                    return;
                }
                _ => {}
            }
        }
        panic!("poll_output never returned a timeout");
    }

    fn sources(&self) -> Vec<Source> {
        self.system.sources().cloned().collect()
    }
}

fuzz_target!(|run: Run| {
    let epoch = Date::from_unix(1_764_547_200, 0).unwrap();
    let mut config = if run.short_polls {
        SystemConfig::default()
            .with_poll_range(1, 3)
            .with_initial_frequency(0.0)
    } else {
        SystemConfig::default()
    };
    if let Some([max, ratio, dev, asym, min]) = run.delay {
        let mut delay = DelayConfig::default();
        delay.max_delay = Some(f64::from(max) * 1e-3 + 1e-3);
        delay.max_delay_ratio = Some(1.0 + f64::from(ratio) / 16.0);
        delay.max_delay_dev_ratio = Some((f64::from(dev) + 1.0) / 8.0);
        delay.asymmetry = (asym != 0).then(|| f64::from(asym as i8) / 256.0);
        delay.min_delay = (min != 0).then(|| f64::from(min) / 8e3);
        config.source.delay = delay;
    }
    config.source.retry_burst = run.retry_burst;
    config.source.xleave = run.xleave;
    config.source.sntp.version = run.version.map(|n| 2 + n % 3);
    if let Some(n) = run.poll_target {
        config.discipline = config
            .discipline
            .with_poll_target(u32::from(n % 60) + 1)
            .unwrap();
    }
    let system = System::new(config, Instant::ZERO, epoch, Rng(run.seed)).unwrap();
    let mut world = World {
        system,
        now: 0,
        phase: 0,
        epoch,
        buf: Vec::with_capacity(48),
        keyed: run.keyed,
        version: run.version.map(|n| 2 + n % 3),
        ke_pending: None,
        nts_request: None,
        cookie_keys: CookieKeys::new(1, &[0x42; 32]),
        server_rng: Rng(run.seed ^ 0x5eed),
        nts_id: None,
        xleave: run.xleave,
        requests: std::collections::HashMap::new(),
    };
    for n in 0..3 {
        if run.keyed && n == 2 {
            let mut config = world.system.config().source.clone();
            config.sntp.key = Some(key());
            world.system.add_source_with(address(n), config).unwrap();
        } else {
            world.system.add_source(address(n)).unwrap();
        }
    }
    if run.nts {
        world.nts_id = Some(world.system.add_nts_source("nts.example", 4460).unwrap());
    }
    let refclocks = run.refclock.map(|n| {
        let mut gps = RefclockConfig::new(RefId::from_ascii(b"GPS").unwrap());
        gps.poll = i8::try_from(n % 6).unwrap() + 1;
        gps.filter = usize::from(n % 64) + 1;
        let gps = world.system.add_refclock(gps).unwrap();
        let mut pps = RefclockConfig::new(RefId::from_ascii(b"PPS").unwrap());
        pps.pps = true;
        pps.lock = (n % 2 == 0).then_some(gps);
        let pps = world.system.add_refclock(pps).unwrap();
        [gps, pps, SourceId::new(u64::MAX)]
    });
    let pool_size = usize::from(run.pool_size % 4) + 1;
    let pool = if run.pool {
        world.system.add_pool("pool.example", pool_size).ok()
    } else {
        None
    };
    world.drain();
    for step in run.steps.iter().take(256) {
        match step {
            Step::Datagram {
                source,
                echo_nonce,
                echo_receive,
                template,
                patch_at,
                data,
                advance_ms,
                rx_error_ms,
                sign,
                nts_answer,
                nts_kiss,
            } => {
                world.now = world
                    .now
                    .saturating_add(u64::from(*advance_ms).saturating_mul(1_000_000));
                let n = source % 5;
                let from = if n == 4 { nts_address() } else { address(n) };
                let mut datagram = if *template {
                    // A plausible synchronized stratum-2 response.
                    let now = Timestamp::from(world.wall());
                    let mut bytes = vec![0u8; 48];
                    let mut packet = Packet::new_unchecked(&mut bytes[..]);
                    packet.set_version(4);
                    packet.set_mode(ntp_proto::Mode::Server);
                    packet.set_stratum(ntp_proto::Stratum::new(2));
                    packet.set_precision(-20);
                    packet.set_reference_id(ntp_proto::RefId::new([192, 0, 2, 1]));
                    packet.set_receive_timestamp(now);
                    packet.set_transmit_timestamp(now);
                    if n == 4 && *nts_answer {
                        if let Some(request) = &world.nts_request {
                            packet_answers(&mut bytes, request);
                            bytes = nts_answer_to(
                                &world.cookie_keys,
                                &mut world.server_rng,
                                request,
                                &bytes,
                            );
                        }
                    } else if let (4, Some(code)) = (n, nts_kiss) {
                        if let Some(request) = &world.nts_request {
                            packet_answers(&mut bytes, request);
                            bytes = nts_kiss_to(request, &bytes, *code);
                        }
                    }
                    let start = usize::from(*patch_at) % bytes.len().max(1);
                    for (byte, new) in bytes[start..].iter_mut().zip(data) {
                        *byte = *new;
                    }
                    bytes
                } else {
                    data.clone()
                };
                if *echo_nonce && datagram.len() >= 48 {
                    let nonce = world
                        .system
                        .sources()
                        .find(|s| s.address() == from)
                        .and_then(Source::outstanding_nonce);
                    if let Some(nonce) = nonce {
                        datagram[24..32].copy_from_slice(&nonce.to_bits().to_be_bytes());
                    }
                }
                if let (true, true, Some(request)) = (
                    *echo_receive,
                    datagram.len() >= 48,
                    world.requests.get(&from),
                ) {
                    if request.len() >= 48 {
                        datagram[24..32].copy_from_slice(&request[32..40]);
                    }
                }
                if *sign && datagram.len() >= 48 {
                    datagram.truncate(48);
                    datagram.resize(48 + 4 + 16, 0);
                    key().sign_in_place(&mut datagram, 48).unwrap();
                }
                let rx_wall = world
                    .wall()
                    .checked_add(NtpDuration::from_nanos(i64::from(*rx_error_ms) * 1_000_000))
                    .unwrap_or(world.wall());
                let before = world.sources();
                let nts_id = world.nts_id;
                let cookies_before = nts_id.and_then(|id| world.system.nts_cookies(id));
                let result = world.system.handle_input(
                    Instant::from_nanos(world.now),
                    Input::Datagram {
                        from,
                        data: &datagram,
                        rx_wall,
                    },
                );
                if result.is_err() {
                    assert!(
                        world.sources() == before,
                        "a refused datagram changed a source: {result:?}"
                    );
                }
                if let Some(id) = nts_id {
                    // Only an authenticated kiss-o'-death could stop the NTS
                    // source, and none can be made here; an unauthenticated
                    // one backs off and keeps the cookies.
                    let source = world.system.source(id).unwrap();
                    assert!(source.stopped_by().is_none());
                    if n == 4 && matches!(result, Ok(ReplyOutcome::RateReduced { .. })) {
                        assert_eq!(world.system.nts_cookies(id), cookies_before);
                    }
                }
                world.drain();
            }
            Step::NtsKe { fail, cookies } => {
                let Some(source) = world.ke_pending.take() else {
                    continue;
                };
                let result = if *fail {
                    Err(NtsKeFailed)
                } else {
                    let keys = SessionKeys {
                        algorithm: AeadAlgorithm::AesSivCmac256,
                        c2s: AeadKey::new(&[0x11; 32]).unwrap(),
                        s2c: AeadKey::new(&[0x22; 32]).unwrap(),
                    };
                    let cookies: Vec<_> = (0..cookies % 9)
                        .map(|_| {
                            world
                                .cookie_keys
                                .seal(&keys, &mut world.server_rng)
                                .unwrap()
                        })
                        .collect();
                    Ok(NtsKeOutcome::new(keys, cookies, nts_address()))
                };
                let before = world.sources();
                let outcome =
                    world
                        .system
                        .handle_nts_ke(Instant::from_nanos(world.now), source, result);
                if outcome.is_err() {
                    // Only the NTS state may change; the NTP sources not.
                    assert!(world.sources().len() == before.len());
                }
                world.drain();
            }
            Step::Resolved {
                known_pool,
                addresses,
            } => {
                let target = match (known_pool, pool) {
                    (true, Some(pool)) => pool,
                    // A pool id this system never handed out.
                    _ => {
                        let Ok(other) = world.system.add_pool("other.example", 1) else {
                            continue;
                        };
                        world.system.remove_pool(other);
                        other
                    }
                };
                let resolved: Vec<SocketAddr> = addresses
                    .iter()
                    .take(16)
                    .map(|&(n, port)| {
                        let port = if port == 0 { 123 } else { port };
                        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)), port)
                    })
                    .collect();
                let before = world.sources();
                let result =
                    world
                        .system
                        .handle_resolved(Instant::from_nanos(world.now), target, &resolved);
                match result {
                    Ok(added) => assert!(added <= resolved.len()),
                    Err(_) => assert!(
                        world.sources() == before,
                        "a refused resolution changed the sources"
                    ),
                }
                if let Some(pool) = pool {
                    assert!(world.system.pool_members(pool).count() <= pool_size);
                }
                world.drain();
            }
            Step::Refclock {
                which,
                truthful,
                offset,
                error_us,
                leap,
                advance_ms,
            } => {
                let Some(ids) = refclocks else {
                    continue;
                };
                world.now = world
                    .now
                    .saturating_add(u64::from(*advance_ms).saturating_mul(1_000_000));
                let id = ids[usize::from(*which % 3)];
                let offset = if *truthful {
                    -(world.phase as f64) * 1e-9 + f64::from(*error_us) * 1e-6
                } else {
                    *offset
                };
                let leap = leap.map(|n| LeapIndicator::from_bits(n % 4));
                let before = world.sources();
                let result = world.system.handle_refclock_sample(
                    id,
                    Instant::from_nanos(world.now),
                    offset,
                    leap,
                );
                match result {
                    // A refused sample changes nothing.
                    Err(_) => assert_eq!(world.sources(), before),
                    Ok(()) => assert!(offset.is_finite() && id != ids[2]),
                }
                world.drain();
            }
            Step::Transmitted {
                source,
                echo_nonce,
                offset_us,
            } => {
                let n = source % 4;
                let from = address(n);
                let found = world
                    .system
                    .sources()
                    .find(|s| s.address() == from)
                    .map(|s| (s.id(), s.outstanding_nonce()));
                let t1 = world
                    .wall()
                    .checked_add(NtpDuration::from_nanos(i64::from(*offset_us) * 1_000))
                    .unwrap_or(world.wall());
                let before = world.sources();
                match found {
                    Some((id, nonce)) => {
                        let nonce = nonce
                            .filter(|_| *echo_nonce)
                            .unwrap_or(Timestamp::from_bits(7));
                        assert!(world.system.handle_transmitted(id, nonce, t1));
                    }
                    None => {
                        let stranger = SourceId::new(1_000);
                        assert!(
                            !world
                                .system
                                .handle_transmitted(stranger, Timestamp::ZERO, t1)
                        );
                        assert_eq!(world.sources(), before);
                    }
                }
                world.drain();
            }
            Step::Timeout { advance_ms } => {
                world.now = world
                    .now
                    .saturating_add(u64::from(*advance_ms % 100_000_000).saturating_mul(1_000_000));
                world.system.handle_timeout(Instant::from_nanos(world.now));
                world.drain();
            }
            Step::ClockJump { ms, told } => {
                world.phase = world.phase.saturating_add(i64::from(*ms) * 1_000_000);
                if *told {
                    world
                        .system
                        .handle_clock_stepped(NtpDuration::from_nanos(i64::from(*ms) * 1_000_000));
                }
                world.drain();
            }
        }
        assert!(world.system.offset().is_finite());
        assert!(world.system.jitter().is_finite());
        let state = world.system.system_state();
        assert!(state.root_delay.to_seconds_f64().is_finite());
        for source in world.system.sources() {
            if let Some(stats) = source.peer_stats() {
                assert!(stats.offset.is_finite() && stats.jitter.is_finite());
            }
        }
    }
});

/// Makes the template `bytes` answer `request`: its transmit timestamp as
/// origin.
fn packet_answers(bytes: &mut [u8], request: &[u8]) {
    if let (Some(origin), Some(xmt)) = (bytes.get_mut(24..32), request.get(40..48)) {
        origin.copy_from_slice(xmt);
    }
}

/// An unauthenticated kiss-o'-death around the 48-octet `header` (its
/// origin already set), code by `code % 5`, echoing the Unique Identifier
/// field of `request` as an NTS server does (RFC 8915 section 5.7).
fn nts_kiss_to(request: &[u8], header: &[u8], code: u8) -> Vec<u8> {
    let codes = [*b"RATE", *b"DENY", *b"RSTR", *b"NTSN", *b"XFOO"];
    let mut out = header[..48].to_vec();
    let mut packet = Packet::new_unchecked(&mut out[..]);
    packet.set_leap_indicator(ntp_proto::LeapIndicator::Unsynchronized);
    packet.set_stratum(ntp_proto::Stratum::UNSPECIFIED);
    packet.set_reference_id(ntp_proto::RefId::new(codes[usize::from(code % 5)]));
    if let Ok(request) = Packet::new_checked(request) {
        for item in request.extension_fields() {
            if let Ok(ntp_proto::TrailerItem::Field(field)) = item {
                if field.field_type() == ntp_proto::ExtensionFieldType::UniqueIdentifier {
                    out.extend_from_slice(field.as_bytes());
                    break;
                }
            }
        }
    }
    out
}

/// The genuine NTS answer (or NAK) to `request` around the 48-octet
/// `header`, as our server core writes it.
fn nts_answer_to(keys: &CookieKeys, rng: &mut Rng, request: &[u8], header: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; request.len().max(48)];
    out[..48].copy_from_slice(&header[..48]);
    let len = match verify_request(request, keys) {
        Ok(nts) => nts.write_response(keys, rng, &mut out).unwrap_or(48),
        Err(RequestError::Nak(nak)) => nak.write(&mut out).unwrap_or(48),
        Err(_) => 48,
    };
    out.truncate(len);
    out
}

//! The server core on arbitrary datagrams, source addresses, times and
//! configurations, with an MD5 and an AES-128-CMAC key and any MAC policy;
//! requests may be signed (correctly or not) with either key.
//! Invariants: no panic; a response is never longer than its request nor
//! than the output buffer, is a mode-4 packet to a client request or,
//! when the symmetric policy answers, a mode-2 packet to a
//! symmetric-active one, in the request's version, whose origin is the
//! request's transmit timestamp, or, in the interleaved mode (RFC 9769;
//! only to a client request whose origin is the receive timestamp of the
//! last answer to its address, whose transmit time was reported), the
//! request's receive timestamp, with the reported time as transmit; a signed response verifies with the key
//! of the request, whose MAC verifies too; a crypto-NAK is 4 zero octets
//! and only under `MacPolicy::CryptoNak`; a drop writes nothing; every
//! request is counted exactly once, and every mode-2 answer once more in
//! `symmetric`. Versions 1 to 4 may be served, a version-1 request
//! without a mode is answered only from a port other than 123; a KoD is
//! never signed, and a request refused by access control, the
//! unsynchronized policy or the rate limiter costs no cryptography
//! (`crypto_checks` unchanged).
//! NTS (RFC 8915): the server may hold cookie keys; a request may be our
//! client's NTS request (cookie under the server's keys, or under other
//! keys), then patched (one octet XORed, cut, or extended). An NTS answer
//! comes only to one of our requests and our client accepts it; an NTS
//! NAK or other KoD to an NTS request echoes its Unique Identifier and
//! carries nothing else; every NTS answer is counted in `nts`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ntp_nts::client::{NtsClientSession, RequestState};
use ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys};
use ntp_proto::{Packet, SystemState, Timestamp};
use ntp_server::{
    AccessAction, AclRule, Action, CookieKeys, DropReason, Instant, IpPrefix, Key, KeyId, KeyStore,
    KeyType, KissCode, MacPolicy, RateLimitConfig, Server, ServerConfig, SymmetricPolicy,
    UnsynchronizedPolicy, Versions,
};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

#[derive(Arbitrary, Debug)]
enum Addr {
    V4(u32),
    V6(u128),
    /// One of four addresses, to reach the rate limiter's repeat paths.
    Few(u8),
}

impl Addr {
    fn ip(&self) -> IpAddr {
        match *self {
            Self::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
            Self::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
            Self::Few(a) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, a & 3)),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Request {
    bytes: Vec<u8>,
    from: Addr,
    port: u16,
    rx: u64,
    /// Nanoseconds since the previous request (may be huge).
    step: u64,
    /// Go backwards instead.
    backwards: bool,
    out_len: u16,
    /// 0: the bytes as they are; 1: the header signed with the MD5 key,
    /// 2: with the AES-128-CMAC key (replacing the tail); 3: signed with
    /// the MD5 key, then one digest bit flipped.
    sign: u8,
    /// NTS, before signing: 0 none; 1 our client's request with a cookie
    /// of the server's keys, 2 with a cookie of other keys; the AEAD is
    /// `nts / 4 % 3`, the placeholders asked `nts / 16 % 8`.
    nts: u8,
    /// Then: 0 as it is, 1 octet `at` XORed with `value`, 2 cut to `at`
    /// octets, 3 `value` octets of `value` appended.
    patch: u8,
    at: u16,
    value: u8,
    /// Ask for the interleaved mode: the origin timestamp is set to the
    /// receive timestamp of the last answer to this address (before
    /// signing).
    xleave: bool,
    /// Report the transmit time after finishing.
    report: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    rules: Vec<(Addr, u8, u8)>,
    default: u8,
    interval: i8,
    burst: u16,
    leak: u16,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    capacity: u8,
    /// Bits 1 to 4: the versions served (none set: the default, 1 to 4).
    versions: u8,
    drop_unsynchronized: bool,
    mac_policy: u8,
    drop_symmetric: bool,
    /// The server holds NTS cookie keys.
    nts: bool,
    state: SystemState,
    requests: Vec<Request>,
}

fn action(bits: u8) -> AccessAction {
    match bits % 5 {
        0 => AccessAction::Allow,
        1 => AccessAction::Ignore,
        2 => AccessAction::Deny,
        3 => AccessAction::Restrict,
        _ => AccessAction::Limited,
    }
}

fuzz_target!(|input: Input| {
    let rules: Vec<AclRule> = input
        .rules
        .iter()
        .take(64)
        .filter_map(|(addr, len, act)| {
            IpPrefix::new(addr.ip(), *len)
                .ok()
                .map(|p| AclRule::new(p, action(*act)))
        })
        .collect();
    let config = {
        let mut config = ServerConfig::default();
        let served: Vec<u8> = (1..=4u8)
            .filter(|v| input.versions & (1 << v) != 0)
            .collect();
        config.versions = Versions::new(&served).unwrap_or(Versions::DEFAULT);
        config.acl_rules = rules;
        config.acl_default = action(input.default);
        config.rate_limit = {
            let mut config = RateLimitConfig::default();
            config.interval = input.interval;
            config.burst = input.burst;
            config.leak = input.leak;
            config.ipv4_prefix = input.ipv4_prefix;
            config.ipv6_prefix = input.ipv6_prefix;
            config.capacity = usize::from(input.capacity);
            config.hash_key = [0x42; 16];
            config
        };
        config.unsynchronized = if input.drop_unsynchronized {
            UnsynchronizedPolicy::Drop
        } else {
            UnsynchronizedPolicy::Answer
        };
        config.mac = match input.mac_policy % 3 {
            0 => MacPolicy::CryptoNak,
            1 => MacPolicy::Drop,
            _ => MacPolicy::AnswerUnauthenticated,
        };
        config.symmetric = if input.drop_symmetric {
            SymmetricPolicy::Drop
        } else {
            SymmetricPolicy::Answer
        };
        config
    };
    let Ok(mut server) = Server::new(&config, input.state) else {
        // Only out-of-range rate-limit settings are refused.
        assert!(config.rate_limit.validate().is_err());
        return;
    };
    let keys = [
        Key::new(KeyId::new(1).unwrap(), KeyType::Md5, b"fuzz md5 key").unwrap(),
        Key::new(KeyId::new(2).unwrap(), KeyType::Aes128Cmac, &[0x24; 16]).unwrap(),
    ];
    let mut store = KeyStore::<2>::new();
    for key in &keys {
        store.insert(key.clone()).unwrap();
    }
    server.set_keys(&store);
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(input.default));
    let cookie_keys = CookieKeys::new(1, &[0x31; 32]);
    let other_keys = CookieKeys::new(2, &[0x32; 32]);
    if input.nts {
        server.set_nts(cookie_keys.clone(), [0x33; 32]);
    }
    let mut nts_answers = 0u64;
    let mut now = 0u64;
    let mut handled = 0u64;
    let mut symmetric = 0u64;
    // Per address: the receive timestamp of the last request the server
    // took for the interleaved mode, and the transmit time reported.
    let mut exchanges: std::collections::HashMap<IpAddr, (Timestamp, Option<Timestamp>)> =
        std::collections::HashMap::new();
    for request in input.requests.iter().take(256) {
        now = if request.backwards {
            now.saturating_sub(request.step)
        } else {
            now.saturating_add(request.step)
        };
        let mut out = vec![0x5a; usize::from(request.out_len % 2048)];
        let from = SocketAddr::new(request.from.ip(), request.port);
        let rx = Timestamp::from_bits(request.rx);
        let mut bytes = request.bytes.clone();
        let ip = ntp_server::canonical_ip(from.ip());
        if let (true, Some(origin), true) = (
            request.xleave,
            exchanges.get(&ip).map(|e| e.0),
            bytes.len() >= 48,
        ) {
            bytes[24..32].copy_from_slice(&origin.to_bits().to_be_bytes());
        }
        // Our client's NTS request, and what it needs to check the answer.
        let mut nts: Option<(NtsClientSession, RequestState, bool)> = None;
        if bytes.len() >= 48 && request.nts % 4 != 0 && request.nts % 4 != 3 {
            let algorithm = AeadAlgorithm::ALL[usize::from(request.nts / 4 % 3)];
            let session_keys = SessionKeys {
                algorithm,
                c2s: AeadKey::new(&[0xc2; 64][..algorithm.key_len()]).unwrap(),
                s2c: AeadKey::new(&[0x2c; 64][..algorithm.key_len()]).unwrap(),
            };
            let ours = request.nts % 4 == 1;
            let sealer = if ours { &cookie_keys } else { &other_keys };
            let held = 8 - usize::from(request.nts / 16 % 8);
            let cookies: Vec<_> = (0..held)
                .map(|_| sealer.seal(&session_keys, &mut rng).unwrap())
                .collect();
            let mut session = NtsClientSession::new(session_keys, cookies);
            let header: [u8; 48] = bytes[..48].try_into().unwrap();
            let mut out = [0u8; 1280];
            let (len, state) = session.write_request(&header, &mut rng, &mut out).unwrap();
            bytes = out[..len].to_vec();
            let at = usize::from(request.at) % bytes.len();
            let intact = match request.patch % 4 {
                1 => {
                    bytes[at] ^= request.value;
                    request.value == 0
                }
                2 => {
                    bytes.truncate(at);
                    false
                }
                3 => {
                    bytes.extend(std::iter::repeat_n(
                        request.value,
                        usize::from(request.value),
                    ));
                    true
                }
                _ => true,
            };
            nts = Some((session, state, ours && intact));
        }
        if bytes.len() >= 48 && request.sign % 4 != 0 && nts.is_none() {
            let key = &keys[usize::from(request.sign % 4 == 2)];
            bytes.truncate(48);
            bytes.resize(48 + 4 + 16, 0);
            let len = key.sign_in_place(&mut bytes, 48).unwrap();
            bytes.truncate(len);
            if request.sign % 4 == 3 {
                bytes[52 + usize::from(request.sign / 4) % 16] ^= 1;
            }
        }
        let checks = server.counters().crypto_checks;
        let result = server.handle(&bytes, from, rx, Instant::from_nanos(now), &mut out);
        handled += 1;
        // Access control, the unsynchronized policy and the rate limiter
        // come before any MAC or cookie is checked: what they refuse cost
        // no cryptography.
        let refused = match result {
            Action::Respond(reply) => matches!(
                reply.kiss(),
                Some(KissCode::Deny | KissCode::Rstr | KissCode::Rate)
            ),
            Action::Drop(reason) => matches!(
                reason,
                DropReason::Acl
                    | DropReason::RateLimited
                    | DropReason::Unsynchronized
                    | DropReason::Mode
                    | DropReason::Version
            ),
            _ => false,
        };
        if refused {
            assert_eq!(server.counters().crypto_checks, checks, "{result:?}");
        }
        match result {
            Action::Respond(reply) => {
                assert!(reply.len() <= bytes.len(), "amplification");
                if reply.kiss().is_some() {
                    assert!(
                        reply.key_id().is_none() && !reply.crypto_nak() && !reply.nts(),
                        "a KoD is never signed"
                    );
                }
                assert!(reply.len() <= out.len());
                let tx = Timestamp::from_bits(request.rx.wrapping_add(1));
                let sent = server.finish(&reply, &mut out, tx);
                assert_eq!(sent.len(), reply.len());
                let reported = Timestamp::from_bits(request.rx.wrapping_add(2));
                if request.report {
                    server.transmitted(from, &reply, reported);
                }
                if reply.nts() {
                    nts_answers += 1;
                    let (session, state, _) = nts.as_mut().expect("an NTS answer to our request");
                    assert!(input.nts, "NTS answer without NTS keys");
                    session
                        .read_response(sent, state)
                        .expect("our client accepts it");
                    assert!(reply.kiss().is_none());
                } else if let (Some((_, state, intact)), Some(code), true, None, false) = (
                    &nts,
                    reply.kiss(),
                    sent.len() > 48,
                    reply.key_id(),
                    reply.crypto_nak(),
                ) {
                    // A KoD to an NTS request: the header and the echo
                    // of the request's identifier (patched, maybe);
                    // never a NAK to our intact request with our cookie.
                    assert_eq!(sent.len(), 48 + 36);
                    assert_eq!(sent[48..84], bytes[48..84]);
                    if *intact {
                        assert_eq!(sent[52..84], state.unique_id);
                    }
                    assert!(
                        !(*intact && code == KissCode::Ntsn),
                        "NAK to a valid request"
                    );
                } else if reply.kiss() == Some(KissCode::Ntsn) {
                    panic!("an NTS NAK without an echo");
                }
                match (reply.key_id(), reply.crypto_nak()) {
                    (None, false) if reply.nts() || sent.len() == 48 + 36 => {}
                    (None, false) => assert_eq!(sent.len(), 48),
                    (None, true) => {
                        assert_eq!(config.mac, MacPolicy::CryptoNak);
                        assert_eq!(sent[48..], [0; 4]);
                    }
                    (Some(id), false) => {
                        let key = keys.iter().find(|k| k.id() == id).expect("our key");
                        key.verify(sent).expect("signed answer verifies");
                        key.verify(&bytes)
                            .expect("only an authentic request is signed");
                    }
                    (Some(_), true) => panic!("signed and crypto-NAK"),
                }
                let req = Packet::new_checked(&bytes[..]).expect("answered => 48 octets");
                let resp = Packet::new_checked(sent).expect("48 octets");
                let mode = match req.mode() {
                    ntp_proto::Mode::Client => ntp_proto::Mode::Server,
                    ntp_proto::Mode::SymmetricActive if !input.drop_symmetric => {
                        symmetric += 1;
                        ntp_proto::Mode::SymmetricPassive
                    }
                    // Version 1 had no mode: a client's from a port other
                    // than 123 (RFC 1305 appendix D).
                    ntp_proto::Mode::Reserved if req.version() == 1 && request.port != 123 => {
                        ntp_proto::Mode::Server
                    }
                    other => panic!("answered a mode {other:?} request"),
                };
                assert_eq!(resp.mode(), mode);
                assert_eq!(reply.mode(), mode);
                assert_eq!(resp.version(), req.version());
                let previous = exchanges.get(&ip).copied();
                if reply.interleaved() {
                    // Only to a client request that named our last
                    // receive timestamp to it, whose answer was reported.
                    assert_eq!(mode, ntp_proto::Mode::Server);
                    assert!(reply.kiss().is_none() && !reply.nts() && !reply.crypto_nak());
                    let (last_rx, last_tx) = previous.expect("an earlier exchange");
                    assert_eq!(req.origin_timestamp(), last_rx);
                    assert_ne!(last_rx, Timestamp::ZERO);
                    assert_eq!(resp.origin_timestamp(), req.receive_timestamp());
                    assert_eq!(Some(resp.transmit_timestamp()), last_tx);
                } else {
                    assert_eq!(resp.origin_timestamp(), req.transmit_timestamp());
                }
                if mode == ntp_proto::Mode::Server
                    && reply.kiss().is_none()
                    && !reply.nts()
                    && !reply.crypto_nak()
                {
                    let tx = request.report.then_some(reported);
                    exchanges.insert(ip, (rx, tx));
                }
                match reply.kiss() {
                    None if reply.interleaved() => {
                        assert_eq!(resp.receive_timestamp(), rx);
                        assert_eq!(resp.stratum(), server.system_state().stratum);
                    }
                    None => {
                        assert_eq!(resp.receive_timestamp(), rx);
                        assert_eq!(resp.transmit_timestamp(), tx);
                        assert_eq!(resp.stratum(), server.system_state().stratum);
                    }
                    Some(_) => {
                        assert_eq!(resp.stratum().get(), 0);
                        assert_eq!(resp.transmit_timestamp(), req.transmit_timestamp());
                    }
                }
            }
            Action::Drop(_) => assert!(out.iter().all(|&b| b == 0x5a), "drop wrote"),
            _ => panic!("Action grew"),
        }
    }
    let c = server.counters();
    assert_eq!(c.received, handled);
    assert_eq!(c.received, c.answered + c.kiss.total() + c.dropped.total());
    assert_eq!(c.symmetric, symmetric);
    assert_eq!(c.nts, nts_answers);
});

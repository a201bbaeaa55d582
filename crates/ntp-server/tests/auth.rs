//! Symmetric-key authentication (RFC 5905 sections 7.3 and 9.2, RFC 8573):
//! signed requests get signed answers, failed MACs follow the MAC policy,
//! crypto-NAK requests are dropped, and `finish` signs only with a key the
//! server still holds.

#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

mod common;

use common::*;
use ntp_proto::{KissCode, Mode, Stratum};
use ntp_server::{
    AccessAction, AclRule, Action, Counters, DropReason, Instant, Key, KeyId, KeyStore, KeyType,
    MAX_MAC_RESPONSE_LEN, MAX_RESPONSE_LEN, MacPolicy, RateLimitConfig, Server, ServerConfig,
};

const XMT: u64 = 0x0123_4567_89ab_cdef;

fn id(n: u32) -> KeyId {
    KeyId::new(n).unwrap()
}

/// One key of each type, ids 1 to 7 in `KeyType::ALL` order, secrets of
/// the sizes the AES types need and arbitrary lengths for the hashes.
fn all_keys() -> Vec<Key> {
    KeyType::ALL
        .iter()
        .zip(1u32..)
        .map(|(&key_type, n)| {
            let len = key_type
                .required_key_len()
                .unwrap_or(20 + usize::try_from(n).unwrap());
            let secret: Vec<u8> = (0..len)
                .map(|i| i.to_le_bytes()[0].wrapping_mul(31) ^ n.to_le_bytes()[0])
                .collect();
            Key::new(id(n), key_type, &secret).unwrap()
        })
        .collect()
}

fn store(keys: &[Key]) -> KeyStore<16> {
    let mut store = KeyStore::new();
    for key in keys {
        store.insert(key.clone()).unwrap();
    }
    store
}

fn keyed(config: &ServerConfig, keys: &[Key]) -> Server {
    let mut server = Server::new(config, primary()).unwrap();
    server.set_keys(&store(keys));
    server
}

fn allow(mac: MacPolicy) -> ServerConfig {
    let mut config = config(AccessAction::Allow, RateLimitConfig::default());
    config.mac = mac;
    config
}

/// A client request (`first` octet: version and mode) signed with `key`.
fn signed(key: &Key, first: u8, xmt: u64) -> Vec<u8> {
    let mut buffer = [0u8; 128];
    buffer[..48].copy_from_slice(&request(first, 6, xmt));
    let len = key.sign_in_place(&mut buffer, 48).unwrap();
    buffer[..len].to_vec()
}

/// A rate limiter with a burst of 3, then one request per 16 s and one
/// KoD RATE in 2 over the limit, hashing with a fixed key.
fn burst_of_three() -> RateLimitConfig {
    let mut config = RateLimitConfig::default();
    config.interval = 4;
    config.burst = 3;
    config.leak = 2;
    config.hash_key = *b"0123456789abcdef";
    config
}

fn key_of(keys: &[Key], key_type: KeyType) -> &Key {
    keys.iter().find(|k| k.key_type() == key_type).unwrap()
}

fn assert_partition(c: &Counters) {
    assert_eq!(
        c.received,
        c.answered + c.kiss.total() + c.dropped.total(),
        "{c}"
    );
}

#[test]
fn signed_requests_get_an_answer_signed_with_the_same_key() {
    let keys = all_keys();
    let cases = [
        (KeyType::Md5, 0x23, 16),
        (KeyType::Sha1, 0x23, 20),
        (KeyType::Sha256, 0x23, 20), // NTPv4: truncated to 20
        (KeyType::Sha256, 0x1b, 32), // NTPv3: the whole digest
        (KeyType::Sha384, 0x1b, 48),
        (KeyType::Sha512, 0x1b, 64),
        (KeyType::Sha512, 0x23, 20),
        (KeyType::Aes128Cmac, 0x23, 16),
        (KeyType::Aes256Cmac, 0x23, 16),
        (KeyType::Aes128Cmac, 0x1b, 16),
    ];
    let mut server = keyed(&allow(MacPolicy::default()), &keys);
    for (key_type, first, digest_len) in cases {
        let key = key_of(&keys, key_type);
        let version = first >> 3;
        let req = signed(key, first, XMT);
        assert_eq!(req.len(), 48 + 4 + digest_len, "{key_type} v{version}");
        let (action, out) = run(&mut server, &req, client("192.0.2.1:123"), Instant::ZERO);
        let Action::Respond(reply) = action else {
            panic!("{key_type} v{version}: {action:?}");
        };
        assert_eq!(reply.key_id(), Some(key.id()), "{key_type}");
        assert!(!reply.crypto_nak());
        assert_eq!(reply.len(), 48 + key.mac_len(version), "{key_type}");
        assert_eq!(out.len(), reply.len());
        assert!(out.len() <= req.len(), "{key_type}: amplification");
        assert!(out.len() <= MAX_MAC_RESPONSE_LEN);
        assert_eq!(out[48..52], key.id().get().to_be_bytes());
        key.verify(&out)
            .unwrap_or_else(|e| panic!("{key_type} v{version}: {e}"));
        // The MAC covers the transmit timestamp `finish` wrote.
        assert_fast_xmit(&parse(&out), &primary(), version, Mode::Server, 6, XMT);
        let mut tampered = out.clone();
        tampered[47] ^= 1;
        assert!(key.verify(&tampered).is_err());
    }
    let c = server.counters();
    let n = u64::try_from(cases.len()).unwrap();
    assert_eq!(
        (c.answered, c.authenticated, c.bad_mac, c.crypto_nak),
        (n, n, 0, 0)
    );
    assert_partition(c);
}

/// The MAC covers extension fields too; the answer carries none, so it is
/// shorter than the request.
#[test]
fn a_mac_after_extension_fields_is_verified_and_the_answer_is_header_and_mac() {
    let keys = all_keys();
    let key = key_of(&keys, KeyType::Aes128Cmac);
    let mut buffer = [0u8; 160];
    buffer[..48].copy_from_slice(&request(0x23, 6, XMT));
    // A Unique Identifier field (type 0x0104), 36 octets.
    buffer[48..52].copy_from_slice(&[0x01, 0x04, 0x00, 36]);
    buffer[52..84].fill(0x77);
    let len = key.sign_in_place(&mut buffer, 84).unwrap();
    let req = &buffer[..len];
    let mut server = keyed(&allow(MacPolicy::default()), &keys);
    let (action, out) = run(&mut server, req, client("192.0.2.1:123"), Instant::ZERO);
    assert!(matches!(action, Action::Respond(r) if r.key_id() == Some(key.id())));
    assert_eq!(out.len(), 48 + 20);
    assert!(out.len() < req.len());
    key.verify(&out).unwrap();
    // The same field changed after signing: the MAC no longer verifies.
    let mut changed = req.to_vec();
    changed[60] ^= 1;
    let (action, out) = run(
        &mut server,
        &changed,
        client("192.0.2.1:123"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(r) if r.crypto_nak()));
    assert_eq!(out.len(), 52);
}

/// The three ways a MAC fails, under each policy.
#[test]
fn failed_macs_follow_the_policy() {
    let keys = all_keys();
    let md5 = key_of(&keys, KeyType::Md5);
    let sha1 = key_of(&keys, KeyType::Sha1);
    let good = signed(md5, 0x23, XMT);
    let unknown_id = {
        let mut req = good.clone();
        req[48..52].copy_from_slice(&99u32.to_be_bytes());
        req
    };
    let flipped = {
        let mut req = good.clone();
        req[60] ^= 0x10;
        req
    };
    // A 16-octet digest under the SHA-1 key, whose MAC has 20.
    let wrong_length = {
        let mut req = good.clone();
        req[48..52].copy_from_slice(&sha1.id().get().to_be_bytes());
        req
    };
    let failures = [
        ("unknown key id", unknown_id),
        ("flipped digest bit", flipped),
        ("wrong digest length", wrong_length),
    ];
    assert_eq!(ServerConfig::default().mac, MacPolicy::CryptoNak);
    for (what, req) in &failures {
        // Default: the answer, then a crypto-NAK.
        let mut server = keyed(&allow(MacPolicy::default()), &keys);
        let (action, out) = run(&mut server, req, client("192.0.2.1:123"), Instant::ZERO);
        let Action::Respond(reply) = action else {
            panic!("{what}: {action:?}")
        };
        assert!(reply.crypto_nak() && reply.key_id().is_none(), "{what}");
        assert_eq!((reply.len(), out.len()), (52, 52), "{what}");
        assert_eq!(out[48..], [0; 4], "{what}");
        assert_fast_xmit(&parse(&out), &primary(), 4, Mode::Server, 6, XMT);
        let c = server.counters();
        assert_eq!(
            (c.answered, c.crypto_nak, c.bad_mac, c.authenticated),
            (1, 1, 1, 0),
            "{what}"
        );

        // Drop.
        let mut server = keyed(&allow(MacPolicy::Drop), &keys);
        let mut out = [0x5au8; 256];
        let action = server.handle(req, client("192.0.2.1:123"), RX, Instant::ZERO, &mut out);
        assert_eq!(action, Action::Drop(DropReason::Authenticated), "{what}");
        assert!(
            out.iter().all(|&b| b == 0x5a),
            "{what}: a drop writes nothing"
        );
        let c = server.counters();
        assert_eq!(
            (c.dropped.authenticated, c.bad_mac, c.crypto_nak),
            (1, 1, 0),
            "{what}"
        );

        // Answer unauthenticated: a plain 48-octet answer.
        let mut server = keyed(&allow(MacPolicy::AnswerUnauthenticated), &keys);
        let (action, out) = run(&mut server, req, client("192.0.2.1:123"), Instant::ZERO);
        assert!(
            matches!(action, Action::Respond(r) if r.len() == 48 && !r.crypto_nak() && r.key_id().is_none()),
            "{what}"
        );
        assert_eq!(out.len(), 48);
        assert_fast_xmit(&parse(&out), &primary(), 4, Mode::Server, 6, XMT);
        let c = server.counters();
        assert_eq!((c.answered, c.bad_mac, c.crypto_nak), (1, 1, 0), "{what}");
        assert_partition(c);
    }
}

#[test]
fn a_server_without_keys_answers_every_mac_with_a_crypto_nak() {
    let keys = all_keys();
    let mut server = open_server();
    assert_eq!(server.keys().len(), 0);
    for key in &keys {
        let (action, out) = run(
            &mut server,
            &signed(key, 0x23, XMT),
            client("192.0.2.1:123"),
            Instant::ZERO,
        );
        assert!(matches!(action, Action::Respond(r) if r.crypto_nak()));
        assert_eq!(out.len(), 52);
        assert_eq!(out[48..], [0; 4]);
    }
    let c = server.counters();
    let n = u64::try_from(keys.len()).unwrap();
    assert_eq!((c.crypto_nak, c.bad_mac, c.authenticated), (n, n, 0));
    // A request without a MAC is answered as ever.
    let (_, out) = run(
        &mut server,
        &request(0x23, 6, XMT),
        client("192.0.2.1:123"),
        Instant::ZERO,
    );
    assert_eq!(out.len(), 48);
}

/// RFC 5905, appendix A.5.1: a crypto-NAK (`A_CRYPTO`) is never answered,
/// whatever the policy and whatever keys the server holds.
#[test]
fn a_crypto_nak_request_is_never_answered() {
    let keys = all_keys();
    for mac in [
        MacPolicy::CryptoNak,
        MacPolicy::Drop,
        MacPolicy::AnswerUnauthenticated,
    ] {
        for (first, key_id) in [(0x23, 0u32), (0x1b, 0), (0x23, 1)] {
            let mut req = request(first, 6, XMT).to_vec();
            req.extend_from_slice(&key_id.to_be_bytes());
            let mut server = keyed(&allow(mac), &keys);
            let (action, out) = run(&mut server, &req, client("192.0.2.1:123"), Instant::ZERO);
            assert_eq!(action, Action::Drop(DropReason::Authenticated), "{mac:?}");
            assert!(out.is_empty());
            let c = server.counters();
            assert_eq!((c.dropped.authenticated, c.bad_mac), (1, 0));
        }
    }
}

/// `deny` and `restrict` are decided from the address before the MAC is
/// checked: the KoD is the bare 48-octet header, never signed and never a
/// crypto-NAK, whatever the MAC and the MAC policy, and no MAC is computed
/// (RFC 5905 appendix A.5.1 checks access before authentication).
#[test]
fn kiss_o_death_answers_cost_no_mac_and_are_never_signed() {
    let keys = all_keys();
    let key = key_of(&keys, KeyType::Aes128Cmac);
    let good = signed(key, 0x23, XMT);
    let mut bad = good.clone();
    bad[60] ^= 1;
    let deny = |mac: MacPolicy| {
        let mut config = allow(mac);
        config.acl_rules = vec![
            AclRule::new("192.0.2.0/24".parse().unwrap(), AccessAction::Deny),
            AclRule::new("198.51.100.0/24".parse().unwrap(), AccessAction::Restrict),
        ];
        keyed(&config, &keys)
    };
    for (from, code) in [
        ("192.0.2.1:123", KissCode::Deny),
        ("198.51.100.1:123", KissCode::Rstr),
    ] {
        for policy in [
            MacPolicy::CryptoNak,
            MacPolicy::Drop,
            MacPolicy::AnswerUnauthenticated,
        ] {
            let mut server = deny(policy);
            for req in [&good, &bad] {
                let (action, out) = run(&mut server, req, client(from), Instant::ZERO);
                assert!(
                    matches!(action, Action::Respond(r) if r.kiss() == Some(code)
                        && r.key_id().is_none() && !r.crypto_nak() && r.len() == 48),
                    "{policy:?}: {action:?}"
                );
                assert_eq!(out.len(), 48);
                let r = parse(&out);
                assert_eq!(r.stratum, Stratum::UNSPECIFIED);
                assert_eq!(r.reference_id.kiss_code(), code);
                assert_eq!(
                    r.transmit_timestamp.to_bits(),
                    XMT,
                    "a KoD keeps the request's"
                );
                assert_eq!(
                    r.origin_timestamp.to_bits(),
                    XMT,
                    "what the client checks (RFC 8633 section 5.4)"
                );
            }
            let c = server.counters();
            assert_eq!(c.crypto_checks, 0, "{policy:?}: no MAC computed");
            assert_eq!((c.authenticated, c.crypto_nak, c.bad_mac), (0, 0, 0));
            assert_eq!(c.kiss.total(), 2);
            assert_partition(c);
        }
    }
}

/// Access control and rate limiting come before any MAC is computed:
/// requests from a denied address and requests over the limit cost no
/// cryptography (`crypto_checks` stays 0 for them), while a good client's
/// requests are each verified and signed.
#[test]
fn denied_and_over_limit_requests_cost_no_mac() {
    let keys = all_keys();
    let aes = key_of(&keys, KeyType::Aes128Cmac);
    let md5 = key_of(&keys, KeyType::Md5);
    let rate = burst_of_three();
    let mut config = config(AccessAction::Limited, rate);
    config.acl_rules = vec![
        AclRule::new("192.0.2.0/24".parse().unwrap(), AccessAction::Deny),
        AclRule::new("198.51.100.0/24".parse().unwrap(), AccessAction::Restrict),
        AclRule::new("203.0.113.0/24".parse().unwrap(), AccessAction::Allow),
    ];
    let mut server = keyed(&config, &keys);
    // Good and bad MACs, with both keys, from every kind of sender.
    let requests: Vec<Vec<u8>> = (0..8u64)
        .map(|i| {
            let mut req = signed(if i % 2 == 0 { aes } else { md5 }, 0x23, XMT + i);
            if i % 4 >= 2 {
                let last = req.len() - 1;
                req[last] ^= 1;
            }
            req
        })
        .collect();

    // 200 requests from denied and restricted addresses, all at once: a
    // metered KoD or nothing, and not one MAC computed.
    for (i, req) in requests.iter().cycle().take(200).enumerate() {
        let from = if i % 2 == 0 {
            "192.0.2.1:123"
        } else {
            "198.51.100.1:123"
        };
        let (action, _) = run(&mut server, req, client(from), Instant::from_secs(1));
        match action {
            Action::Respond(r) => assert!(r.kiss().is_some() && r.key_id().is_none()),
            Action::Drop(reason) => assert_eq!(reason, DropReason::RateLimited),
            _ => panic!("Action grew"),
        }
    }
    let c = *server.counters();
    assert_eq!(c.crypto_checks, 0, "{c}");
    assert!(
        c.kiss.deny > 0 && c.kiss.rstr > 0 && c.dropped.rate_limited > 0,
        "{c}"
    );
    assert_eq!(c.kiss.deny + c.kiss.rstr + c.dropped.rate_limited, 200);

    // A limited client (no rule: the default) sends 200 at once: its
    // burst of 3 is verified (2 good MACs, 1 bad: a crypto-NAK), the 197
    // over the limit are not.
    let before = *server.counters();
    let mut over_limit = 0;
    for req in requests.iter().cycle().take(200) {
        let (action, _) = run(
            &mut server,
            req,
            client("100.64.0.1:4123"),
            Instant::from_secs(1),
        );
        match action {
            Action::Respond(r) if r.kiss().is_none() => {}
            _ => over_limit += 1,
        }
    }
    let c = *server.counters();
    assert_eq!(over_limit, 197);
    assert_eq!(c.crypto_checks - before.crypto_checks, 3, "{c}");
    assert_eq!(c.answered - before.answered, 3);
    assert_eq!(c.authenticated - before.authenticated, 2);
    assert_eq!(c.crypto_nak - before.crypto_nak, 1);
    assert_eq!(c.bad_mac - before.bad_mac, 1);
    assert_eq!(
        c.kiss.rate - before.kiss.rate,
        99,
        "1 in 2 of the 197 (leak 2)"
    );

    // A good client, allowed, is verified every time: 200 MACs checked,
    // the 100 good ones answered signed, the 100 bad ones with a
    // crypto-NAK.
    let before = *server.counters();
    for req in requests.iter().cycle().take(200) {
        let (action, out) = run(
            &mut server,
            req,
            client("203.0.113.5:4123"),
            Instant::from_secs(1),
        );
        let reply = match action {
            Action::Respond(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(reply.kiss(), None);
        if let Some(id) = reply.key_id() {
            keys.iter()
                .find(|k| k.id() == id)
                .unwrap()
                .verify(&out)
                .unwrap();
        } else {
            assert!(reply.crypto_nak());
        }
    }
    let c = *server.counters();
    assert_eq!(c.crypto_checks - before.crypto_checks, 200, "{c}");
    assert_eq!(c.authenticated - before.authenticated, 100);
    assert_eq!(c.crypto_nak - before.crypto_nak, 100);
    assert_partition(&c);

    // An unsynchronized server that drops costs no MAC either; a MAC
    // naming no key held costs none and is not counted.
    let mut unsynchronized = {
        let mut config = allow(MacPolicy::default());
        config.unsynchronized = ntp_server::UnsynchronizedPolicy::Drop;
        let mut server = Server::new(&config, ntp_proto::SystemState::default()).unwrap();
        server.set_keys(&store(&keys));
        server
    };
    let (action, _) = run(
        &mut unsynchronized,
        &requests[0],
        client("203.0.113.5:1"),
        Instant::ZERO,
    );
    assert_eq!(action, Action::Drop(DropReason::Unsynchronized));
    let mut unknown = request(0x23, 6, XMT).to_vec();
    unknown.extend_from_slice(&99u32.to_be_bytes());
    unknown.extend_from_slice(&[0x55; 16]);
    let mut open = keyed(&allow(MacPolicy::default()), &keys);
    let (action, _) = run(&mut open, &unknown, client("203.0.113.5:1"), Instant::ZERO);
    assert!(matches!(action, Action::Respond(r) if r.crypto_nak()));
    assert_eq!(unsynchronized.counters().crypto_checks, 0);
    assert_eq!(
        (open.counters().crypto_checks, open.counters().bad_mac),
        (0, 1)
    );
}

/// Authenticated requests are metered exactly like the others: the burst,
/// then 1 in `leak` KoD RATE, the rest dropped. Only the answers within
/// the limit cost a MAC check and are signed; the KoDs are unsigned.
#[test]
fn the_rate_limiter_meters_authenticated_requests() {
    let keys = all_keys();
    let key = key_of(&keys, KeyType::Md5);
    let rate = burst_of_three();
    let mut config = config(AccessAction::Limited, rate);
    config.mac = MacPolicy::default();
    let mut server = keyed(&config, &keys);
    let from = client("192.0.2.9:123");
    let mut outcomes = Vec::new();
    for i in 0..9 {
        let (action, out) = run(
            &mut server,
            &signed(key, 0x23, XMT + i),
            from,
            Instant::from_secs(10),
        );
        if let Action::Respond(reply) = action {
            if reply.kiss().is_some() {
                assert_eq!((reply.key_id(), reply.crypto_nak()), (None, false));
                assert_eq!(out.len(), 48, "no MAC on a KoD");
            } else {
                assert_eq!(reply.key_id(), Some(key.id()));
                key.verify(&out).unwrap();
            }
            assert_eq!(parse(&out).poll, 6, "poll at least the interval (4)");
        }
        outcomes.push(action);
    }
    let kind = |a: &Action| match a {
        Action::Respond(r) => r.kiss().map_or("answer", |_| "kod"),
        Action::Drop(DropReason::RateLimited) => "limited",
        _ => "other",
    };
    let kinds: Vec<&str> = outcomes.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "answer", "answer", "answer", "kod", "limited", "kod", "limited", "kod", "limited"
        ]
    );
    let c = server.counters();
    assert_eq!((c.answered, c.kiss.rate, c.dropped.rate_limited), (3, 3, 3));
    assert_eq!(c.authenticated, 3, "the answers only");
    assert_eq!(c.crypto_checks, 3, "a MAC computed for the answers only");
    assert_partition(c);
}

#[test]
fn finish_returns_nothing_without_room_or_without_the_key() {
    let keys = all_keys();
    let md5 = key_of(&keys, KeyType::Md5);
    let req = signed(md5, 0x23, XMT);
    let mut server = keyed(&allow(MacPolicy::default()), &keys);
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let handle = |server: &mut Server, out: &mut [u8]| match server.handle(
        &req,
        client("192.0.2.1:123"),
        RX,
        Instant::ZERO,
        out,
    ) {
        Action::Respond(reply) => reply,
        other => panic!("{other:?}"),
    };

    // Too short a buffer for `finish`.
    let reply = handle(&mut server, &mut out);
    assert_eq!(reply.len(), 68);
    assert!(server.finish(&reply, &mut out[..67], TX).is_empty());
    assert_eq!(server.finish(&reply, &mut out, TX).len(), 68);

    // The key replaced by one of another type: the MAC would not have the
    // announced length, so nothing is sent.
    let reply = handle(&mut server, &mut out);
    let mut other = KeyStore::<2>::new();
    other
        .insert(Key::new(md5.id(), KeyType::Sha1, b"another secret").unwrap())
        .unwrap();
    server.set_keys(&other);
    assert!(server.finish(&reply, &mut out, TX).is_empty());

    // All keys gone.
    server.set_keys(&store(&keys));
    let reply = handle(&mut server, &mut out);
    server.set_keys(&KeyStore::<1>::new());
    assert!(server.finish(&reply, &mut out, TX).is_empty());
    assert_eq!(server.keys().len(), 0);

    // A plain reply needs no key.
    let plain = match server.handle(
        &request(0x23, 6, XMT),
        client("192.0.2.1:123"),
        RX,
        Instant::ZERO,
        &mut out,
    ) {
        Action::Respond(reply) => reply,
        other => panic!("{other:?}"),
    };
    assert_eq!(server.finish(&plain, &mut out, TX).len(), 48);
}

#[test]
fn an_output_buffer_too_short_for_the_mac_drops_and_writes_nothing() {
    let keys = all_keys();
    let sha512 = key_of(&keys, KeyType::Sha512);
    let req = signed(sha512, 0x1b, XMT); // NTPv3: 48 + 4 + 64 = the maximum
    assert_eq!(req.len(), MAX_MAC_RESPONSE_LEN);
    for mac in [MacPolicy::CryptoNak, MacPolicy::AnswerUnauthenticated] {
        let mut server = keyed(&allow(mac), &keys);
        let mut out = [0x5au8; MAX_RESPONSE_LEN];
        let action = server.handle(
            &req,
            client("192.0.2.1:1"),
            RX,
            Instant::ZERO,
            &mut out[..115],
        );
        assert_eq!(action, Action::Drop(DropReason::BufferTooSmall));
        assert!(out.iter().all(|&b| b == 0x5a));
        let Action::Respond(reply) =
            server.handle(&req, client("192.0.2.1:1"), RX, Instant::ZERO, &mut out)
        else {
            panic!()
        };
        sha512.verify(server.finish(&reply, &mut out, TX)).unwrap();
    }
    // A failed MAC under CryptoNak needs 52 octets.
    let mut bad = req.clone();
    bad[70] ^= 1;
    let mut server = keyed(&allow(MacPolicy::CryptoNak), &keys);
    let mut out = [0x5au8; 51];
    let action = server.handle(&bad, client("192.0.2.1:1"), RX, Instant::ZERO, &mut out);
    assert_eq!(action, Action::Drop(DropReason::BufferTooSmall));
    assert!(out.iter().all(|&b| b == 0x5a));
    assert_eq!(server.counters().dropped.buffer_too_small, 1);
}

#[test]
fn symmetric_active_requests_are_signed_in_mode_2() {
    let keys = all_keys();
    let key = key_of(&keys, KeyType::Sha1);
    let req = signed(key, 0x19, XMT); // NTPv3, mode 1
    let mut server = keyed(&allow(MacPolicy::default()), &keys);
    let (action, out) = run(&mut server, &req, client("192.0.2.1:123"), Instant::ZERO);
    assert!(
        matches!(action, Action::Respond(r) if r.mode() == Mode::SymmetricPassive && r.key_id() == Some(key.id()))
    );
    key.verify(&out).unwrap();
    assert_eq!(parse(&out).mode, Mode::SymmetricPassive);
    let c = server.counters();
    assert_eq!((c.symmetric, c.authenticated), (1, 1));
}

#[test]
fn keys_are_held_sorted_cloned_with_the_server_and_never_shown() {
    let keys = all_keys();
    let mut server = open_server();
    server.set_keys(&store(&keys));
    let ids: Vec<u32> = server.keys().map(KeyId::get).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7]);
    let text = format!("{server:?}");
    assert_eq!(
        text.matches("secret: <redacted>").count(),
        keys.len(),
        "{text}"
    );
    // Each worker thread's clone signs with the same keys.
    for key in &keys {
        let req = signed(key, 0x23, XMT);
        let mut clone = server.clone();
        let (_, out) = run(&mut clone, &req, client("192.0.2.1:1"), Instant::ZERO);
        key.verify(&out).unwrap();
    }
}

#[test]
fn counters_add_and_show_the_authentication_counts() {
    let keys = all_keys();
    let md5 = key_of(&keys, KeyType::Md5);
    let mut server = keyed(&allow(MacPolicy::default()), &keys);
    let good = signed(md5, 0x23, XMT);
    let mut bad = good.clone();
    bad[50] ^= 1;
    for req in [&good, &good, &bad] {
        run(&mut server, req, client("192.0.2.1:1"), Instant::ZERO);
    }
    let mut total = *server.counters();
    total += server.counters();
    assert_eq!(
        (total.authenticated, total.crypto_nak, total.bad_mac),
        (4, 2, 2)
    );
    let line = total.to_string();
    assert!(
        line.contains(" authenticated=4 crypto_nak=2 bad_mac=2 "),
        "{line}"
    );
    assert!(
        line.contains(" authenticated=0 unsynchronized=0 "),
        "{line}"
    );
}

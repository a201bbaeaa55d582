//! Real client requests from `shared/vectors/packets.txt` (chrony 4.3,
//! ntpdig and NTPsec 1.2.2 captures) answered field by field as the real
//! servers answered them.

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
use ntp_proto::{KissCode, Packet, Repr, SystemState};
use ntp_server::{
    AccessAction, Action, DropReason, Instant, KeyId, KeyStore, MacPolicy, RateLimitConfig, Server,
    ServerConfig,
};

/// Compares two 48-octet headers field by field, naming the first field
/// that differs.
fn assert_same_header(ours: &[u8], theirs: &[u8], what: &str) {
    let a = Packet::new_checked(ours).unwrap();
    let b = Packet::new_checked(theirs).unwrap();
    assert_eq!(a.leap_indicator(), b.leap_indicator(), "{what}: leap");
    assert_eq!(a.version(), b.version(), "{what}: version");
    assert_eq!(a.mode(), b.mode(), "{what}: mode");
    assert_eq!(a.stratum(), b.stratum(), "{what}: stratum");
    assert_eq!(a.poll(), b.poll(), "{what}: poll");
    assert_eq!(a.precision(), b.precision(), "{what}: precision");
    assert_eq!(a.root_delay(), b.root_delay(), "{what}: root delay");
    assert_eq!(
        a.root_dispersion(),
        b.root_dispersion(),
        "{what}: root dispersion"
    );
    assert_eq!(a.reference_id(), b.reference_id(), "{what}: reference id");
    assert_eq!(
        a.reference_timestamp(),
        b.reference_timestamp(),
        "{what}: reference time"
    );
    assert_eq!(a.origin_timestamp(), b.origin_timestamp(), "{what}: origin");
    assert_eq!(
        a.receive_timestamp(),
        b.receive_timestamp(),
        "{what}: receive"
    );
    assert_eq!(
        a.transmit_timestamp(),
        b.transmit_timestamp(),
        "{what}: transmit"
    );
    assert_eq!(&ours[..48], &theirs[..48], "{what}: octets");
}

/// Answers `request` the way the server of `response` did: same system
/// state, receive and transmit times; the result must be `response`'s
/// header.
fn answer_like(config: &ServerConfig, request: &[u8], response: &[u8], what: &str) {
    let ours = answer_like_with(config, KeyStore::<1>::new(), request, response, what);
    assert_eq!(ours.len(), 48, "{what}");
}

/// [`answer_like`] by a server holding `keys`; returns the datagram sent.
fn answer_like_with<const N: usize>(
    config: &ServerConfig,
    keys: KeyStore<N>,
    request: &[u8],
    response: &[u8],
    what: &str,
) -> Vec<u8> {
    let theirs = Repr::parse(&Packet::new_checked(response).unwrap()).unwrap();
    let mut server = Server::new(config, SystemState::from_repr(&theirs)).unwrap();
    server.set_keys(&keys);
    let mut out = [0xa5u8; 1024];
    let action = server.handle(
        request,
        client("127.0.0.1:40000"),
        theirs.receive_timestamp,
        Instant::from_secs(100),
        &mut out,
    );
    let Action::Respond(reply) = action else {
        panic!("{what}: {action:?}");
    };
    assert_eq!(reply.kiss(), None, "{what}");
    assert!(reply.len() <= request.len(), "{what}: amplification");
    let ours = server.finish(&reply, &mut out, theirs.transmit_timestamp);
    assert_eq!(ours.len(), reply.len(), "{what}");
    assert_same_header(ours, response, what);
    assert_eq!(server.counters().answered, 1);
    ours.to_vec()
}

fn allow_all() -> ServerConfig {
    config(AccessAction::Allow, RateLimitConfig::default())
}

#[test]
fn chrony_and_ntpdig_requests_are_answered_like_chrony() {
    let all = vectors();
    let pairs = [
        (
            "chrony 4.3 client request (chronyd -Q",
            "chrony 4.3 server response to it (",
        ),
        (
            "ntpsec 1.2.2 ntpdig request (mode3",
            "chrony 4.3 server response to ntpdig",
        ),
    ];
    for (req, resp) in pairs {
        answer_like(&allow_all(), &vector(&all, req), &vector(&all, resp), req);
    }
}

#[test]
fn requests_are_answered_like_ntpsec() {
    let all = vectors();
    let pairs = [
        (
            "ntpdig request to ntpsec ntpd",
            "ntpsec 1.2.2 ntpd response (orphan",
        ),
        (
            "chrony 4.3 client request to ntpsec ntpd",
            "ntpsec 1.2.2 ntpd response to chrony request",
        ),
    ];
    for (req, resp) in pairs {
        answer_like(&allow_all(), &vector(&all, req), &vector(&all, resp), req);
    }
}

#[test]
fn rate_limited_poll_is_raised_like_chrony() {
    // chrony with 'ratelimit interval 1 burst 1' answered poll 0 with 1.
    let all = vectors();
    let rate = {
        let mut config = RateLimitConfig::default();
        config.interval = 1;
        config.burst = 1;
        config
    };
    answer_like(
        &config(AccessAction::Limited, rate),
        &vector(&all, "python3 minimal request sent to chrony"),
        &vector(&all, "poll = max(request poll 0"),
        "ratelimit interval 1",
    );
}

#[test]
fn kod_rate_is_octet_for_octet_ntpsec() {
    let all = vectors();
    let request = vector(&all, "python3 request from 127.0.0.5");
    let ntpsec_kod = vector(&all, "ntpsec 1.2.2 ntpd Kiss-o'-Death RATE reply");
    let rate = {
        let mut config = RateLimitConfig::default();
        config.interval = 3;
        config.burst = 1;
        config.leak = 1;
        config
    };
    let mut server = Server::new(&config(AccessAction::Limited, rate), primary()).unwrap();
    let from = client("127.0.0.5:40000");
    let now = Instant::from_secs(5);
    let (first, _) = run(&mut server, &request, from, now);
    assert!(matches!(first, Action::Respond(r) if r.kiss().is_none()));
    let (second, kod) = run(&mut server, &request, from, now);
    let Action::Respond(reply) = second else {
        panic!("{second:?}")
    };
    assert_eq!(reply.kiss(), Some(KissCode::Rate));
    assert_same_header(&kod, &ntpsec_kod, "KoD RATE");
    assert_eq!(server.counters().kiss.rate, 1);
}

/// The keys of the chrony captures, as `crates/ntp-auth/tests/vectors.rs`
/// has them, in chrony's key-file format.
const CHRONY_KEYS: &str = "\
1 MD5 HEX:00112233445566778899AABBCCDDEEFF
2 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233
3 AES128 HEX:000102030405060708090A0B0C0D0E0F
";

const MAC_CAPTURES: [&str; 3] = ["key id 1 = MD5", "key id 2 = SHA1", "key id 3 = AES128"];

/// A server without keys: the MAC of every signed request fails.
#[test]
fn mac_requests_without_keys_follow_the_policy() {
    let all = vectors();
    for key in MAC_CAPTURES {
        let request = vector(&all, &format!("chrony 4.3 client request, symmetric {key}"));
        assert!(request.len() > 48);
        let response = vector(
            &all,
            &format!("chrony 4.3 server response, key id {}", &key[7..8]),
        );
        // Default: chrony's header, then a crypto-NAK.
        assert_eq!(ServerConfig::default().mac, MacPolicy::CryptoNak);
        let ours = answer_like_with(
            &allow_all(),
            KeyStore::<1>::new(),
            &request,
            &response[..48],
            key,
        );
        assert_eq!(ours.len(), 52, "{key}");
        assert_eq!(ours[48..], [0; 4], "{key}");
        // Drop: nothing.
        let mut config = allow_all();
        config.mac = MacPolicy::Drop;
        let mut server = Server::new(&config, primary()).unwrap();
        let (action, _) = run(&mut server, &request, client("127.0.0.1:1"), Instant::ZERO);
        assert_eq!(action, Action::Drop(DropReason::Authenticated), "{key}");
        let c = server.counters();
        assert_eq!(
            (c.dropped.authenticated, c.bad_mac, c.crypto_nak),
            (1, 1, 0)
        );
        // Answer unauthenticated: a header like chrony's, without MAC.
        config.mac = MacPolicy::AnswerUnauthenticated;
        answer_like(&config, &request, &response[..48], key);
    }
}

/// chrony 4.3 signed requests to a server with chrony's keys: the answer
/// is chrony's own answer, octet for octet, MAC included (same header,
/// same key, so the same digest).
#[test]
fn chrony_signed_requests_get_chronys_signed_answer() {
    let all = vectors();
    for key in MAC_CAPTURES {
        let request = vector(&all, &format!("chrony 4.3 client request, symmetric {key}"));
        let response = vector(
            &all,
            &format!("chrony 4.3 server response, key id {}", &key[7..8]),
        );
        let keys: KeyStore<4> = KeyStore::from_chrony_keys(CHRONY_KEYS).unwrap();
        let key_id = KeyId::new(key[7..8].parse().unwrap()).unwrap();
        let ours = answer_like_with(&allow_all(), keys.clone(), &request, &response, key);
        assert_eq!(ours, response, "{key}");
        assert_eq!(ours.len(), request.len(), "{key}: the same MAC length");
        keys.get(key_id).unwrap().verify(&ours).unwrap();
    }
}

/// chrony 4.3's NTS request: dropped by a server without NTS (an
/// unauthenticated answer would be discarded, RFC 8915 section 5.7), and
/// NTS-NAKed by a server with NTS whose master keys did not seal its
/// cookie (the NAK echoes chrony's Unique Identifier and is shorter than
/// the request).
#[test]
fn chrony_nts_request_is_dropped_without_nts_and_naked_with_other_keys() {
    let all = vectors();
    let request = vector(&all, "chrony 4.3 NTS client request");
    assert_eq!(request.len(), 228);
    let mut server = open_server();
    let (action, out) = run(
        &mut server,
        &request,
        client("127.0.0.1:123"),
        Instant::ZERO,
    );
    assert_eq!(action, Action::Drop(DropReason::Nts));
    assert!(out.is_empty());
    assert_eq!(server.counters().dropped.nts, 1);

    server.set_nts(ntp_server::CookieKeys::new(7, &[7; 32]), [1; 32]);
    let (action, out) = run(
        &mut server,
        &request,
        client("127.0.0.1:123"),
        Instant::ZERO,
    );
    let Action::Respond(reply) = action else {
        panic!("{action:?}")
    };
    assert_eq!(reply.kiss(), Some(KissCode::Ntsn));
    assert!(!reply.nts());
    // Header and the 32-octet Unique Identifier echoed (fields from 48:
    // chrony's comes first).
    assert_eq!(out.len(), 48 + 36);
    assert_eq!(out[48..84], request[48..84]);
    assert_eq!(out[1], 0, "stratum 0");
    assert_eq!(&out[12..16], b"NTSN");
    assert_eq!(server.counters().kiss.ntsn, 1);
    assert_counters_balance(&server);
}

#[test]
fn responses_and_kod_packets_are_never_answered() {
    let all = vectors();
    let mut server = open_server();
    let mut seen = 0;
    for v in &all {
        let packet = Packet::new_checked(&v.bytes[..]);
        let (action, out) = run(
            &mut server,
            &v.bytes,
            client("127.0.0.1:123"),
            Instant::ZERO,
        );
        match packet.map(|p| p.mode()) {
            Ok(ntp_proto::Mode::Client) => {}
            Ok(_) => {
                seen += 1;
                assert_eq!(action, Action::Drop(DropReason::Mode), "{}", v.comment);
                assert!(out.is_empty());
            }
            Err(_) => assert_eq!(action, Action::Drop(DropReason::BadPacket), "{}", v.comment),
        }
    }
    assert!(seen >= 10, "server, KoD and NTS-KE vectors: {seen}");
    assert_counters_balance(&server);
}

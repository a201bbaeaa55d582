//! NTS-protected NTP (RFC 8915 section 5.7) through the server core, with
//! `ntp-nts`'s client session on the other side: authentic answers with
//! fresh cookies for every AEAD, NAKs, drops, rotation, limits, counters.

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
use ntp_nts::client::{self as nts_client, NtsClientSession, NtsError, RequestState};
use ntp_nts::server::{MAX_COOKIES_PER_RESPONSE, MAX_UNIQUE_ID_LEN};
use ntp_nts::{AeadAlgorithm, AeadKey, SessionKeys, ef};
use ntp_proto::{ExtensionFieldType, KissCode, Mode, Packet};
use ntp_server::{
    AccessAction, Action, CookieKeys, DropReason, Instant, MAX_MAC_RESPONSE_LEN,
    MAX_NTS_RESPONSE_LEN, MAX_RESPONSE_LEN, RateLimitConfig, Reply, Server,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const XMT: u64 = 0x1234_5678_9abc_def0;

fn session_keys(algorithm: AeadAlgorithm) -> SessionKeys {
    SessionKeys {
        algorithm,
        c2s: AeadKey::new(&[0xc2; 64][..algorithm.key_len()]).unwrap(),
        s2c: AeadKey::new(&[0x2c; 64][..algorithm.key_len()]).unwrap(),
    }
}

/// A client session holding `cookies` cookies sealed under `keys`.
fn session(
    keys: &CookieKeys,
    algorithm: AeadAlgorithm,
    cookies: usize,
    rng: &mut ChaCha20Rng,
) -> NtsClientSession {
    let session_keys = session_keys(algorithm);
    let cookies: Vec<_> = (0..cookies)
        .map(|_| keys.seal(&session_keys, rng).unwrap())
        .collect();
    NtsClientSession::new(session_keys, cookies)
}

/// The client's next NTS request.
fn nts_request(client: &mut NtsClientSession, rng: &mut ChaCha20Rng) -> (Vec<u8>, RequestState) {
    let mut out = [0u8; 1280];
    let (len, state) = client
        .write_request(&request(0x23, 6, XMT), rng, &mut out)
        .unwrap();
    (out[..len].to_vec(), state)
}

fn nts_server(default: AccessAction, rate: RateLimitConfig, keys: &CookieKeys) -> Server {
    let mut server = Server::new(&config(default, rate), primary()).unwrap();
    server.set_nts(keys.clone(), [9; 32]);
    server
}

/// A generator seeded with `seed`, cookie master keys drawn from it, and
/// an NTS server that allows everyone (default rate limits) with them.
fn allowing_server(seed: u64) -> (ChaCha20Rng, CookieKeys, Server) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys = CookieKeys::random(&mut rng);
    let server = nts_server(AccessAction::Allow, RateLimitConfig::default(), &keys);
    (rng, keys, server)
}

/// A rate limit that allows one request per 2^10 s, kisses every excess
/// one, with a fixed hash key (reproducible buckets).
fn strict_rate() -> RateLimitConfig {
    let mut rate = RateLimitConfig::default();
    rate.burst = 1;
    rate.interval = 10;
    rate.leak = 1;
    rate.hash_key = [1; 16];
    rate
}

fn reply_of(action: Action) -> Reply {
    match action {
        Action::Respond(reply) => reply,
        Action::Drop(reason) => panic!("dropped: {reason:?}"),
        _ => panic!("Action grew"),
    }
}

#[test]
fn authentic_answers_with_fresh_cookies_for_every_aead() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let keys = CookieKeys::random(&mut rng);
    for algorithm in AeadAlgorithm::ALL {
        let mut server = nts_server(AccessAction::Allow, RateLimitConfig::default(), &keys);
        // One cookie left: the request asks for 7 more with placeholders.
        let mut client = session(&keys, algorithm, 1, &mut rng);
        let (request, state) = nts_request(&mut client, &mut rng);
        assert_eq!(client.cookies().len(), 0);
        let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
        let reply = reply_of(action);
        assert!(reply.nts(), "{algorithm}");
        assert_eq!(reply.kiss(), None);
        assert_eq!(reply.len(), response.len());
        assert!(
            response.len() <= request.len(),
            "{algorithm}: amplification"
        );
        assert!(response.len() <= MAX_RESPONSE_LEN);
        // Eight, but for AES-SIV-CMAC-512's cookies, of which only 5
        // placeholders fit in our client's 1280-octet requests.
        let asked = if algorithm == AeadAlgorithm::AesSivCmac512 {
            6
        } else {
            8
        };
        assert_eq!(
            client.read_response(&response, &state),
            Ok(asked),
            "{algorithm}"
        );
        assert_eq!(client.cookies().len(), asked);
        // The header is the ordinary answer, transmit timestamp included
        // (the authenticator covers it).
        assert_fast_xmit(&parse(&response), &primary(), 4, Mode::Server, 6, XMT);

        // The fresh cookies work: the next request is answered too, with
        // a cookie per placeholder and one for the cookie spent.
        let asked = client.placeholders_wanted() + 1;
        let (request, state) = nts_request(&mut client, &mut rng);
        let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
        assert!(reply_of(action).nts());
        assert_eq!(
            client.read_response(&response, &state),
            Ok(asked),
            "{algorithm}"
        );
        let c = server.counters();
        assert_eq!((c.answered, c.nts, c.received), (2, 2, 2), "{c}");
        assert_counters_balance(&server);
    }
}

fn client_addr() -> core::net::SocketAddr {
    client("192.0.2.7:123")
}

#[test]
fn the_authenticator_covers_the_transmit_timestamp() {
    let (mut rng, keys, mut server) = allowing_server(2);
    let mut client = session(&keys, AeadAlgorithm::AesSivCmac256, 2, &mut rng);
    let (request, state) = nts_request(&mut client, &mut rng);
    let (_, mut response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert_eq!(parse(&response).transmit_timestamp, TX);
    response[47] ^= 1;
    assert_eq!(
        client.read_response(&response, &state),
        Err(NtsError::Authentication)
    );
    assert_eq!(client.cookies().len(), 1, "nothing taken from a forgery");
}

#[test]
fn tampered_requests_are_naked_or_dropped() {
    let (mut rng, keys, mut server) = allowing_server(3);
    let mut client = session(&keys, AeadAlgorithm::AesSivCmac256, 8, &mut rng);

    // A flipped header bit: the authenticator does not verify. NAK,
    // echoing the Unique Identifier, no cookie, no authenticator.
    let (mut request, state) = nts_request(&mut client, &mut rng);
    request[40] ^= 1;
    let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    let reply = reply_of(action);
    assert_eq!(reply.kiss(), Some(KissCode::Ntsn));
    assert!(!reply.nts());
    assert_eq!(response.len(), 48 + 36);
    assert_eq!(response[52..84], state.unique_id);
    assert_eq!(client.read_response(&response, &state), Err(NtsError::Nak));
    let packet = Packet::new_checked(&response[..]).unwrap();
    assert!(packet.stratum().is_unspecified());
    assert_eq!(packet.mode(), Mode::Server);

    // A flipped cookie bit (the cookie follows the 36-octet Unique
    // Identifier and its own 4-octet header): the cookie does not open.
    let (mut request, state) = nts_request(&mut client, &mut rng);
    request[48 + 36 + 4 + 30] ^= 1;
    let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert_eq!(reply_of(action).kiss(), Some(KissCode::Ntsn));
    assert_eq!(client.read_response(&response, &state), Err(NtsError::Nak));

    // No authenticator (cut off): malformed, dropped.
    let (request, _) = nts_request(&mut client, &mut rng);
    let cut = &request[..request.len() - 40];
    let (action, response) = run(&mut server, cut, client_addr(), Instant::ZERO);
    assert_eq!(action, Action::Drop(DropReason::Nts));
    assert!(response.is_empty());

    // A Unique Identifier too short (16 octets, rewritten in place with
    // the rest shifted): malformed, dropped.
    let (request, _) = nts_request(&mut client, &mut rng);
    let mut short = request[..48].to_vec();
    short.extend_from_slice(&[0x01, 0x04, 0x00, 0x14]);
    short.extend_from_slice(&[7; 16]);
    short.extend_from_slice(&request[48 + 36..]);
    let (action, _) = run(&mut server, &short, client_addr(), Instant::ZERO);
    assert_eq!(action, Action::Drop(DropReason::Nts));

    let c = server.counters();
    assert_eq!((c.kiss.ntsn, c.dropped.nts, c.nts), (2, 2, 0), "{c}");
    assert_counters_balance(&server);
}

#[test]
fn unknown_cookie_keys_get_a_nak_and_rotation_keeps_recent_ones() {
    let (mut rng, mut keys, mut server) = allowing_server(4);
    let mut client = session(&keys, AeadAlgorithm::Aes128GcmSiv, 8, &mut rng);

    // Keys of another server: NAK.
    let stranger = CookieKeys::random(&mut rng);
    let mut other = session(&stranger, AeadAlgorithm::AesSivCmac256, 1, &mut rng);
    let (request, state) = nts_request(&mut other, &mut rng);
    let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert_eq!(reply_of(action).kiss(), Some(KissCode::Ntsn));
    assert_eq!(other.read_response(&response, &state), Err(NtsError::Nak));

    // One rotation: the old key is still accepted, the new cookies are
    // sealed under the new current key.
    keys.rotate_random(&mut rng);
    assert!(server.set_cookie_keys(keys.clone()));
    let (request, state) = nts_request(&mut client, &mut rng);
    let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert!(reply_of(action).nts());
    assert_eq!(client.read_response(&response, &state), Ok(1));
    let newest = client.cookies().iter().last().unwrap();
    assert_eq!(
        u32::from_be_bytes(newest.as_bytes()[..4].try_into().unwrap()),
        keys.current_key_id()
    );

    // Three more: the key the old cookies were sealed under is erased.
    for _ in 0..3 {
        keys.rotate_random(&mut rng);
    }
    assert!(server.set_cookie_keys(keys.clone()));
    let (request, state) = nts_request(&mut client, &mut rng);
    let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert_eq!(reply_of(action).kiss(), Some(KissCode::Ntsn));
    assert_eq!(client.read_response(&response, &state), Err(NtsError::Nak));
    assert_eq!(server.counters().kiss.ntsn, 2);
    assert_counters_balance(&server);
}

#[test]
fn responses_never_outgrow_the_request_or_the_buffer() {
    let (mut rng, keys, mut server) = allowing_server(5);
    let mut client = session(&keys, AeadAlgorithm::AesSivCmac512, 1, &mut rng);
    let (request, state) = nts_request(&mut client, &mut rng);
    // Cookie and the 5 placeholders of 168 octets that fit in 1280:
    // asks for 6 cookies.
    assert_eq!(request.len(), 1156);

    // A buffer of the signed-response size holds no cookie at all: too
    // small even for the authenticator alone? 48 + 36 + 40 = 124 > 116.
    let mut out = [0u8; MAX_MAC_RESPONSE_LEN];
    let action = server.handle(&request, client_addr(), RX, Instant::ZERO, &mut out);
    assert_eq!(action, Action::Drop(DropReason::BufferTooSmall));

    // A buffer of 600 octets: fewer cookies, still authentic.
    let mut out = [0u8; 600];
    let reply = reply_of(server.handle(&request, client_addr(), RX, Instant::ZERO, &mut out));
    let response = server.finish(&reply, &mut out, TX).to_vec();
    assert!(response.len() <= 600);
    let got = client.clone().read_response(&response, &state).unwrap();
    assert!((1..8).contains(&got), "{got}");

    // A whole buffer: every cookie asked for, within the request's length.
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let reply = reply_of(server.handle(&request, client_addr(), RX, Instant::ZERO, &mut out));
    let response = server.finish(&reply, &mut out, TX).to_vec();
    assert!(response.len() <= request.len());
    assert_eq!(client.read_response(&response, &state), Ok(6));
}

/// Our server's answer to a request, with an output buffer of
/// [`MAX_RESPONSE_LEN`]: never short of room.
fn answer(server: &mut Server, request: &[u8]) -> Vec<u8> {
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let reply = reply_of(server.handle(request, client_addr(), RX, Instant::ZERO, &mut out));
    assert!(reply.nts());
    server.finish(&reply, &mut out, TX).to_vec()
}

#[test]
fn the_largest_answer_to_our_clients_largest_request_is_accepted() {
    // The rule (RFC 8915 sections 5.5 and 8.4): the server never answers
    // longer than the request, and our client opens every answer as long
    // as its longest request, `nts_client::MAX_RESPONSE_LEN`. Every
    // request our client makes to our server (each AEAD, each number of
    // cookies left, so each number of placeholders), with all the room it
    // could want: the largest is AES-SIV-CMAC-512's cookie and the 5
    // placeholders of 168 octets that fit in 1280, answered with 6
    // cookies at exactly its length.
    let (mut rng, keys, mut server) = allowing_server(15);
    let mut largest = (0, 0);
    for algorithm in AeadAlgorithm::ALL {
        for cookies in 1..=nts_client::COOKIE_JAR_CAPACITY {
            let mut client = session(&keys, algorithm, cookies, &mut rng);
            let asked = client.placeholders_wanted() + 1;
            let mut out = [0u8; 2 * nts_client::MAX_REQUEST_LEN];
            let (len, state) = client
                .write_request(&request(0x23, 6, XMT), &mut rng, &mut out)
                .unwrap();
            let request = &out[..len];
            assert!(request.len() <= nts_client::MAX_REQUEST_LEN);
            let response = answer(&mut server, request);
            assert!(response.len() <= request.len(), "{algorithm}, {cookies}");
            assert!(response.len() <= nts_client::MAX_RESPONSE_LEN);
            let got = client.read_response(&response, &state).unwrap();
            // Every cookie asked for, unless the request had no room for
            // all the placeholders.
            assert!(got <= asked, "{algorithm}, {cookies}");
            if algorithm != AeadAlgorithm::AesSivCmac512 {
                assert_eq!(got, asked, "{algorithm}, {cookies}");
            }
            largest = largest.max((request.len(), response.len()));
        }
    }
    assert_eq!(largest, (1156, 1156));
    assert_counters_balance(&server);
}

#[test]
fn the_longest_answer_is_only_for_a_request_as_long() {
    // MAX_NTS_RESPONSE_LEN is reached by a request from another client
    // that asks for every cookie with the longest cookies (AES-SIV-CMAC-512)
    // and the longest unique identifier: 1532 octets, as long as the
    // request, and longer than anything our own client sends.
    let (mut rng, keys, mut server) = allowing_server(16);
    let algorithm = AeadAlgorithm::AesSivCmac512;
    let session_keys = session_keys(algorithm);
    let cookie = keys.seal(&session_keys, &mut rng).unwrap();
    let mut request = vec![0u8; 2048];
    request[..48].copy_from_slice(&self::request(0x23, 6, XMT));
    let mut at = 48;
    at += ef::emit_field(
        &mut request[at..],
        ExtensionFieldType::UniqueIdentifier,
        &[0x11; MAX_UNIQUE_ID_LEN],
    )
    .unwrap();
    at += ef::emit_field(
        &mut request[at..],
        ExtensionFieldType::NtsCookie,
        cookie.as_bytes(),
    )
    .unwrap();
    for _ in 1..MAX_COOKIES_PER_RESPONSE {
        at += ef::emit_placeholder(&mut request[at..], cookie.len()).unwrap();
    }
    at += ef::seal_authenticator(
        &mut request,
        at,
        algorithm,
        &session_keys.c2s,
        &[0x22; 16],
        0,
    )
    .unwrap();
    request.truncate(at);
    assert_eq!(request.len(), MAX_NTS_RESPONSE_LEN);
    const { assert!(MAX_NTS_RESPONSE_LEN > nts_client::MAX_RESPONSE_LEN) };
    let response = answer(&mut server, &request);
    assert_eq!(response.len(), MAX_NTS_RESPONSE_LEN);

    // The same request padded by one more (ignored) placeholder gets no
    // more: the maximum holds whatever the request's length.
    let mut longer = request[..at - ef::authenticator_len(16, 0)].to_vec();
    let mut placeholder = vec![0; ef::field_len(cookie.len())];
    ef::emit_placeholder(&mut placeholder, cookie.len()).unwrap();
    longer.extend_from_slice(&placeholder);
    let authenticator_at = longer.len();
    longer.resize(authenticator_at + ef::authenticator_len(16, 0), 0);
    ef::seal_authenticator(
        &mut longer,
        authenticator_at,
        algorithm,
        &session_keys.c2s,
        &[0x22; 16],
        0,
    )
    .unwrap();
    let response = answer(&mut server, &longer);
    assert_eq!(response.len(), MAX_NTS_RESPONSE_LEN);
}

#[test]
fn rate_limits_and_access_control_apply_to_nts_requests() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let keys = CookieKeys::random(&mut rng);
    let rate = strict_rate();
    let mut server = nts_server(AccessAction::Limited, rate, &keys);
    let mut client = session(&keys, AeadAlgorithm::AesSivCmac256, 8, &mut rng);
    let (request, state) = nts_request(&mut client, &mut rng);
    let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert!(reply_of(action).nts());
    client.read_response(&response, &state).unwrap();
    // Over the limit: KoD RATE (leak 1: every time), echoing the Unique
    // Identifier, unauthenticated, no cookies.
    let (request, state) = nts_request(&mut client, &mut rng);
    let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    let reply = reply_of(action);
    assert_eq!(reply.kiss(), Some(KissCode::Rate));
    assert!(!reply.nts());
    assert_eq!(response.len(), 48 + 36);
    assert_eq!(response[52..84], state.unique_id);
    assert_eq!(&response[12..16], b"RATE");
    assert_eq!(
        client.read_response(&response, &state),
        Err(NtsError::Unauthenticated)
    );
    // A NAK is metered the same way: a garbled request over the limit
    // gets a RATE, not an NTSN.
    let (mut request, _) = nts_request(&mut client, &mut rng);
    request[40] ^= 1;
    let (action, _) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert_eq!(reply_of(action).kiss(), Some(KissCode::Rate));
    assert_eq!(server.counters().kiss.rate, 2);
    assert_eq!(server.counters().nts, 1);

    // Denied: KoD DENY echoing the Unique Identifier.
    let mut server = nts_server(AccessAction::Deny, RateLimitConfig::default(), &keys);
    let (request, state) = nts_request(&mut client, &mut rng);
    let (action, response) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert_eq!(reply_of(action).kiss(), Some(KissCode::Deny));
    assert_eq!(response[52..84], state.unique_id);
    // Ignored: nothing.
    let mut server = nts_server(AccessAction::Ignore, RateLimitConfig::default(), &keys);
    let (request, _) = nts_request(&mut client, &mut rng);
    let (action, _) = run(&mut server, &request, client_addr(), Instant::ZERO);
    assert_eq!(action, Action::Drop(DropReason::Acl));
    assert_counters_balance(&server);
}

/// Access control and rate limiting come before any cookie is opened: an
/// NTS request from a denied address, or over the limit, costs no AEAD
/// (`crypto_checks` stays 0 for it) and gets an unauthenticated KoD that
/// echoes its Unique Identifier (RFC 8915 section 5.7), even when its
/// cookie would not open; a good client's requests are each verified.
#[test]
fn denied_and_over_limit_nts_requests_open_no_cookie() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let keys = CookieKeys::random(&mut rng);
    let stranger = CookieKeys::random(&mut rng);
    let rate = strict_rate();
    let mut server = {
        let mut config = config(AccessAction::Limited, rate);
        config.acl_rules = vec![
            ntp_server::AclRule::new("192.0.2.0/24".parse().unwrap(), AccessAction::Deny),
            ntp_server::AclRule::new("203.0.113.0/24".parse().unwrap(), AccessAction::Allow),
        ];
        let mut server = Server::new(&config, primary()).unwrap();
        server.set_nts(keys.clone(), [9; 32]);
        server
    };
    // A request with a cookie of ours (even `i`) or of a stranger's keys,
    // which would get a NAK.
    let either = |i: usize, rng: &mut ChaCha20Rng| {
        let sealer = if i % 2 == 0 { &keys } else { &stranger };
        nts_request(
            &mut session(sealer, AeadAlgorithm::AesSivCmac256, 1, rng),
            rng,
        )
    };

    // Denied: DENY echoing the identifier, for our cookies and for
    // cookies that would get a NAK alike; no cookie opened. (The limiter
    // meters DENY: leak 1 lets one in two through, the rest are dropped.)
    let denied = client("192.0.2.1:4123");
    for i in 0..20 {
        let (request, state) = either(i, &mut rng);
        match run(&mut server, &request, denied, Instant::from_secs(1)) {
            (Action::Respond(reply), response) => {
                assert_eq!(reply.kiss(), Some(KissCode::Deny));
                assert!(!reply.nts());
                assert_eq!(response.len(), 48 + 36);
                assert_eq!(response[52..84], state.unique_id);
            }
            (action, _) => assert_eq!(action, Action::Drop(DropReason::RateLimited)),
        }
    }
    assert_eq!(server.counters().crypto_checks, 0);
    assert!(server.counters().kiss.deny > 0);

    // Limited: the first request is verified and answered; the next 20,
    // over the limit, get RATE (leak 1) without a cookie opened, a
    // stranger's cookie too (RATE, not NTSN).
    let limited = client("100.64.0.1:4123");
    let (request, _) = either(0, &mut rng);
    let (action, _) = run(&mut server, &request, limited, Instant::from_secs(1));
    assert!(reply_of(action).nts());
    assert_eq!(server.counters().crypto_checks, 1);
    for i in 0..20 {
        let (request, state) = either(i, &mut rng);
        let (action, response) = run(&mut server, &request, limited, Instant::from_secs(1));
        assert_eq!(reply_of(action).kiss(), Some(KissCode::Rate));
        assert_eq!(response[52..84], state.unique_id);
    }
    assert_eq!(server.counters().crypto_checks, 1, "{}", server.counters());
    assert_eq!(server.counters().kiss.ntsn, 0);

    // Allowed: every request verified; a stranger's cookie gets its NAK.
    let good = client("203.0.113.5:4123");
    let mut ours = session(&keys, AeadAlgorithm::AesSivCmac256, 8, &mut rng);
    for _ in 0..5 {
        let (request, state) = nts_request(&mut ours, &mut rng);
        let (action, response) = run(&mut server, &request, good, Instant::from_secs(1));
        assert!(reply_of(action).nts());
        ours.read_response(&response, &state).unwrap();
    }
    let (request, _) = either(1, &mut rng);
    let (action, _) = run(&mut server, &request, good, Instant::from_secs(1));
    assert_eq!(reply_of(action).kiss(), Some(KissCode::Ntsn));
    let c = server.counters();
    assert_eq!(c.crypto_checks, 1 + 5 + 1, "{c}");
    assert_eq!((c.nts, c.kiss.ntsn), (1 + 5, 1));
    assert_counters_balance(&server);
}

#[test]
fn without_nts_nts_requests_are_dropped_and_plain_ones_answered() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let keys = CookieKeys::random(&mut rng);
    let mut server = open_server();
    assert!(server.cookie_keys().is_none());
    assert!(!server.set_cookie_keys(keys.clone()));
    let mut client = session(&keys, AeadAlgorithm::AesSivCmac256, 8, &mut rng);
    let (nts, _) = nts_request(&mut client, &mut rng);
    let (action, _) = run(&mut server, &nts, client_addr(), Instant::ZERO);
    assert_eq!(action, Action::Drop(DropReason::Nts));

    server.set_nts(keys, [3; 32]);
    assert!(server.cookie_keys().is_some());
    let (action, response) = run(&mut server, &nts, client_addr(), Instant::ZERO);
    assert!(reply_of(action).nts());
    assert!(response.len() > 48);
    // Plain requests, and a Unique Identifier alone (section 5.3: usable
    // without NTS), are answered as ever.
    let plain = request(0x23, 6, XMT);
    let (action, response) = run(&mut server, &plain, client_addr(), Instant::ZERO);
    assert!(!reply_of(action).nts());
    assert_eq!(response.len(), 48);
    let mut with_id = plain.to_vec();
    with_id.extend_from_slice(&[0x01, 0x04, 0x00, 0x24]);
    with_id.extend_from_slice(&[5; 32]);
    let (action, response) = run(&mut server, &with_id, client_addr(), Instant::ZERO);
    assert!(!reply_of(action).nts());
    assert_eq!(response.len(), 48);

    server.clear_nts();
    let (action, _) = run(&mut server, &nts, client_addr(), Instant::ZERO);
    assert_eq!(action, Action::Drop(DropReason::Nts));
    let c = server.counters();
    assert_eq!((c.dropped.nts, c.nts, c.answered), (2, 1, 3), "{c}");
    assert_counters_balance(&server);
}

#[test]
fn a_reply_is_finished_before_the_next_nts_request_or_not_at_all() {
    let (mut rng, keys, mut server) = allowing_server(8);
    let mut client = session(&keys, AeadAlgorithm::AesSivCmac256, 8, &mut rng);
    let (first, _) = nts_request(&mut client, &mut rng);
    let (second, state) = nts_request(&mut client, &mut rng);
    let mut out1 = [0u8; 1500];
    let mut out2 = [0u8; 1500];
    let reply1 = reply_of(server.handle(&first, client_addr(), RX, Instant::ZERO, &mut out1));
    let reply2 = reply_of(server.handle(&second, client_addr(), RX, Instant::ZERO, &mut out2));
    assert!(server.finish(&reply1, &mut out1, TX).is_empty());
    let response = server.finish(&reply2, &mut out2, TX).to_vec();
    assert_eq!(client.read_response(&response, &state), Ok(2));
    // A plain reply in between does not disturb a pending NTS one.
    let (third, state) = nts_request(&mut client, &mut rng);
    let reply3 = reply_of(server.handle(&third, client_addr(), RX, Instant::ZERO, &mut out1));
    let plain = request(0x23, 6, XMT);
    let mut out3 = [0u8; 48];
    let plain_reply = reply_of(server.handle(&plain, client_addr(), RX, Instant::ZERO, &mut out3));
    assert_eq!(server.finish(&plain_reply, &mut out3, TX).len(), 48);
    let response = server.finish(&reply3, &mut out1, TX).to_vec();
    assert_eq!(client.read_response(&response, &state), Ok(1));
}

#[test]
fn symmetric_nts_requests_are_dropped() {
    let (mut rng, keys, mut server) = allowing_server(9);
    let mut client = session(&keys, AeadAlgorithm::AesSivCmac256, 8, &mut rng);
    let mut out = [0u8; 1280];
    let (len, _) = client
        .write_request(&request(0x21, 6, XMT), &mut rng, &mut out)
        .unwrap();
    let (action, _) = run(&mut server, &out[..len], client_addr(), Instant::ZERO);
    assert_eq!(action, Action::Drop(DropReason::Nts));
}

#[test]
fn debug_shows_no_secrets() {
    let keys = CookieKeys::new(0x0102_0304, &[0xab; 32]);
    let mut server = open_server();
    server.set_nts(keys, [0xcd; 32]);
    let text = format!("{server:?}");
    assert!(text.contains("0x01020304"), "{text}");
    for secret in ["171, 171", "205, 205", "ab, ab", "cd, cd", "abab", "cdcd"] {
        assert!(!text.contains(secret), "{text}");
    }
}

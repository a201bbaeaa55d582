//! Symmetric-active (mode 1) requests, as Windows' W32Time sends them
//! without its client flag (0x8): answered statelessly in mode 2 under the
//! same checks as client requests, or dropped when configured so.

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
use ntp_proto::{KissCode, LeapIndicator, Mode, Packet, RefId, ShortTime, Stratum, Timestamp};
use ntp_server::{
    AccessAction, AclRule, Action, DropReason, Instant, MacPolicy, RateLimitConfig, Server,
    ServerConfig, SymmetricPolicy, UnsynchronizedPolicy,
};

/// The W32Time peer's transmit timestamp (our origin timestamp).
const W32_XMT: u64 = 0xeeac_9dad_f5c2_8f5c;

/// A symmetric-active request in the form W32Time sends at start, field
/// by field (RFC 5905, section 7.3): every header field is filled, unlike
/// the data-minimised client requests of chrony and ntpdig.
fn w32time_request(mode: u8) -> [u8; 48] {
    let mut bytes = [0u8; 48];
    // LI 3 (not yet synchronized), VN 3, mode 1 (or 3 with the client flag).
    bytes[0] = 3 << 6 | 3 << 3 | mode;
    // Stratum 2: W32Time advertises its own, non-zero, stratum.
    bytes[1] = 2;
    // Poll 10 (1024 s), W32Time's usual domain-member poll.
    bytes[2] = 10;
    // Precision -23 (0xe9).
    bytes[3] = 0xe9;
    // Root delay 0.0314 s and root dispersion 7.75 s (16.16 fixed point).
    bytes[4..8].copy_from_slice(&0x0000_080a_u32.to_be_bytes());
    bytes[8..12].copy_from_slice(&0x0007_c000_u32.to_be_bytes());
    // Reference id: the IPv4 address of its own source.
    bytes[12..16].copy_from_slice(&[192, 0, 2, 10]);
    // Reference timestamp: when it last set its clock.
    bytes[16..24].copy_from_slice(&0xeeac_9c00_1234_5678_u64.to_be_bytes());
    // Origin timestamp: filled (a symmetric peer echoes the last transmit
    // timestamp it received), never all zeros as in a client request.
    bytes[24..32].copy_from_slice(&0xeeac_9d80_0000_0001_u64.to_be_bytes());
    // Receive timestamp: filled too.
    bytes[32..40].copy_from_slice(&0xeeac_9d80_0100_0000_u64.to_be_bytes());
    // Transmit timestamp.
    bytes[40..48].copy_from_slice(&W32_XMT.to_be_bytes());
    bytes
}

fn with_symmetric(symmetric: SymmetricPolicy, default: AccessAction) -> Server {
    let config = {
        let mut config = config(default, RateLimitConfig::default());
        config.symmetric = symmetric;
        config
    };
    Server::new(&config, primary()).unwrap()
}

#[test]
fn the_request_is_what_w32time_sends() {
    let req = w32time_request(1);
    let p = Packet::new_checked(&req[..]).unwrap();
    assert_eq!(p.leap_indicator(), LeapIndicator::Unsynchronized);
    assert_eq!(p.version(), 3);
    assert_eq!(p.mode(), Mode::SymmetricActive);
    assert_eq!(p.stratum(), Stratum::new(2));
    assert_eq!(p.poll(), 10);
    assert_eq!(p.precision(), -23);
    assert_eq!(p.root_delay(), ShortTime::from_bits(0x0000_080a));
    assert_eq!(p.root_dispersion(), ShortTime::from_bits(0x0007_c000));
    assert_eq!(p.reference_id(), RefId::new([192, 0, 2, 10]));
    assert_ne!(p.reference_timestamp(), Timestamp::ZERO);
    assert_ne!(p.origin_timestamp(), Timestamp::ZERO);
    assert_ne!(p.receive_timestamp(), Timestamp::ZERO);
    assert_eq!(p.transmit_timestamp(), Timestamp::from_bits(W32_XMT));
    assert_eq!(
        Packet::new_checked(&w32time_request(3)[..]).unwrap().mode(),
        Mode::Client
    );
}

#[test]
fn symmetric_active_is_answered_in_mode_2_like_a_client() {
    let mut server = open_server();
    let (action, out) = run(
        &mut server,
        &w32time_request(1),
        client("192.0.2.77:123"),
        Instant::ZERO,
    );
    let Action::Respond(reply) = action else {
        panic!("{action:?}")
    };
    assert_eq!((reply.len(), reply.kiss()), (48, None));
    assert_eq!(reply.mode(), Mode::SymmetricPassive);
    // Only the mode differs from the answer to a client request: every
    // field comes from our state or from the request's version, poll and
    // transmit timestamp; its leap, stratum, root values, reference id and
    // timestamps are ignored.
    assert_fast_xmit(
        &parse(&out),
        &primary(),
        3,
        Mode::SymmetricPassive,
        10,
        W32_XMT,
    );

    // The same packet with W32Time's client flag is a client request: the
    // same answer in mode 4.
    let (action, client_out) = run(
        &mut server,
        &w32time_request(3),
        client("192.0.2.77:123"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(r) if r.mode() == Mode::Server));
    let mut expected = out.clone();
    expected[0] = out[0] & !0x07 | 4;
    assert_eq!(client_out, expected);

    let c = server.counters();
    assert_eq!((c.received, c.answered, c.symmetric), (2, 2, 1));
    assert_counters_balance(&server);
}

#[test]
fn the_switch_drops_symmetric_active_as_a_mode_error() {
    let mut server = with_symmetric(SymmetricPolicy::Drop, AccessAction::Allow);
    let mut out = [0xa5u8; 48];
    let action = server.handle(
        &w32time_request(1),
        client("192.0.2.77:123"),
        RX,
        Instant::ZERO,
        &mut out,
    );
    assert_eq!(action, Action::Drop(DropReason::Mode));
    assert!(out.iter().all(|&b| b == 0xa5), "a drop writes nothing");
    // Client requests are unaffected.
    let (action, _) = run(
        &mut server,
        &w32time_request(3),
        client("192.0.2.77:123"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(r) if r.kiss().is_none()));
    let c = server.counters();
    assert_eq!(
        (c.received, c.answered, c.symmetric, c.dropped.mode),
        (2, 1, 0, 1)
    );
    assert_counters_balance(&server);
}

#[test]
fn symmetric_passive_is_never_answered() {
    // Answering mode 2 could make two servers bounce packets forever.
    for symmetric in [SymmetricPolicy::Answer, SymmetricPolicy::Drop] {
        let mut server = with_symmetric(symmetric, AccessAction::Allow);
        let (action, out) = run(
            &mut server,
            &w32time_request(2),
            client("192.0.2.77:123"),
            Instant::ZERO,
        );
        assert_eq!(action, Action::Drop(DropReason::Mode));
        assert!(out.is_empty());
        assert_eq!(server.counters().symmetric, 0);
    }
    assert_eq!(ServerConfig::default().symmetric, SymmetricPolicy::Answer);
}

#[test]
fn access_control_applies_with_kiss_codes_in_mode_2() {
    use AccessAction::*;
    let config = {
        let mut config = config(Allow, RateLimitConfig::default());
        config.acl_rules = vec![
            AclRule::new("192.0.2.0/24".parse().unwrap(), Deny),
            AclRule::new("198.51.100.0/24".parse().unwrap(), Restrict),
            AclRule::new("203.0.113.0/24".parse().unwrap(), Ignore),
        ];
        config
    };
    let mut server = Server::new(&config, primary()).unwrap();
    for (from, code) in [
        ("192.0.2.1:123", KissCode::Deny),
        ("198.51.100.1:123", KissCode::Rstr),
    ] {
        let (action, out) = run(
            &mut server,
            &w32time_request(1),
            client(from),
            Instant::ZERO,
        );
        let Action::Respond(reply) = action else {
            panic!("{from}: {action:?}")
        };
        assert_eq!(
            (reply.kiss(), reply.mode()),
            (Some(code), Mode::SymmetricPassive)
        );
        let r = parse(&out);
        assert_eq!(r.mode, Mode::SymmetricPassive);
        assert_eq!(r.leap, LeapIndicator::Unsynchronized);
        assert_eq!(r.version.to_bits(), 3);
        assert_eq!(r.stratum, Stratum::UNSPECIFIED);
        assert_eq!(r.reference_id, RefId::from_kiss_code(code));
        // A KoD reveals nothing of our clock: all three timestamps are the
        // request's transmit timestamp.
        for ts in [
            r.origin_timestamp,
            r.receive_timestamp,
            r.transmit_timestamp,
        ] {
            assert_eq!(ts, Timestamp::from_bits(W32_XMT));
        }
    }
    let (action, out) = run(
        &mut server,
        &w32time_request(1),
        client("203.0.113.1:123"),
        Instant::ZERO,
    );
    assert_eq!(action, Action::Drop(DropReason::Acl));
    assert!(out.is_empty());
    let c = server.counters();
    assert_eq!((c.kiss.deny, c.kiss.rstr, c.dropped.acl), (1, 1, 1));
    assert_eq!((c.answered, c.symmetric), (0, 2));
    assert_counters_balance(&server);
}

#[test]
fn rate_limit_is_shared_with_client_requests() {
    let rate = {
        let mut config = RateLimitConfig::default();
        config.interval = 4;
        config.burst = 3;
        config.leak = 2;
        config.capacity = 64;
        config.hash_key = *b"0123456789abcdef";
        config
    };
    let mut server = Server::new(&config(AccessAction::Limited, rate), primary()).unwrap();
    let from = client("198.51.100.7:123");
    let now = Instant::from_secs(1000);
    // Mode 3, mode 1, mode 3 use up the burst of 3 for this address.
    for mode in [3, 1, 3] {
        let (action, out) = run(&mut server, &w32time_request(mode), from, now);
        assert!(
            matches!(action, Action::Respond(r) if r.kiss().is_none()),
            "mode {mode}"
        );
        assert_eq!(parse(&out).poll, 10, "poll 10 is above the interval");
    }
    // Over the limit: 1 in 2 gets a KoD RATE, in mode 2 for mode 1.
    let mut kods = 0;
    for _ in 0..6 {
        let (action, out) = run(&mut server, &w32time_request(1), from, now);
        match action {
            Action::Respond(reply) => {
                assert_eq!(reply.kiss(), Some(KissCode::Rate));
                let r = parse(&out);
                assert_eq!(r.mode, Mode::SymmetricPassive);
                assert_eq!(r.stratum, Stratum::UNSPECIFIED);
                assert_eq!(r.poll, 10);
                kods += 1;
            }
            Action::Drop(reason) => assert_eq!(reason, DropReason::RateLimited),
            _ => panic!("Action grew"),
        }
    }
    assert_eq!(kods, 3);
    let c = server.counters();
    assert_eq!(
        (c.answered, c.kiss.rate, c.dropped.rate_limited, c.symmetric),
        (3, 3, 3, 4)
    );
    assert_counters_balance(&server);
}

#[test]
fn versions_policies_and_mac_apply_as_to_clients() {
    // NTPv2 is served by default, in mode 2 and version 2; a server
    // limited to versions 3 and 4 drops it.
    let mut server = open_server();
    let mut v2 = w32time_request(1);
    v2[0] = 3 << 6 | 2 << 3 | 1;
    let (action, out) = run(&mut server, &v2, client("192.0.2.1:123"), Instant::ZERO);
    assert!(matches!(action, Action::Respond(r) if r.mode() == Mode::SymmetricPassive));
    assert_eq!(out[0] & 0x3f, 2 << 3 | 2, "version 2, mode 2");
    let mut modern = {
        let mut config = config(AccessAction::Allow, RateLimitConfig::default());
        config.versions = ntp_server::Versions::new(&[3, 4]).unwrap();
        Server::new(&config, primary()).unwrap()
    };
    assert_eq!(
        run(&mut modern, &v2, client("192.0.2.1:123"), Instant::ZERO).0,
        Action::Drop(DropReason::Version)
    );
    // A MAC (key id + 16-octet digest) that no key verifies: a mode-2
    // answer with a crypto-NAK under the default MacPolicy::CryptoNak,
    // nothing under MacPolicy::Drop.
    let mut with_mac = w32time_request(1).to_vec();
    with_mac.extend_from_slice(&[0, 0, 0, 1]);
    with_mac.extend_from_slice(&[0x55; 16]);
    let (action, out) = run(
        &mut open_server(),
        &with_mac,
        client("192.0.2.1:123"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(r) if r.len() == 52 && r.crypto_nak()));
    assert_eq!(parse(&out).mode, Mode::SymmetricPassive);
    assert_eq!(out[48..], [0; 4]);
    let dropping_mac = {
        let mut config = config(AccessAction::Allow, RateLimitConfig::default());
        config.mac = MacPolicy::Drop;
        config
    };
    assert_eq!(
        run(
            &mut Server::new(&dropping_mac, primary()).unwrap(),
            &with_mac,
            client("192.0.2.1:123"),
            Instant::ZERO
        )
        .0,
        Action::Drop(DropReason::Authenticated)
    );
    let answering = {
        let mut config = config(AccessAction::Allow, RateLimitConfig::default());
        config.mac = MacPolicy::AnswerUnauthenticated;
        config
    };
    let mut server_mac = Server::new(&answering, primary()).unwrap();
    let (action, out) = run(
        &mut server_mac,
        &with_mac,
        client("192.0.2.1:123"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(r) if r.len() == 48));
    assert_eq!(parse(&out).mode, Mode::SymmetricPassive);

    // An unsynchronized server drops it under UnsynchronizedPolicy::Drop,
    // and answers it as unsynchronized otherwise.
    let mut unsynchronized = primary();
    unsynchronized.leap = LeapIndicator::Unsynchronized;
    unsynchronized.stratum = Stratum::UNSYNCHRONIZED;
    let dropping = {
        let mut config = config(AccessAction::Allow, RateLimitConfig::default());
        config.unsynchronized = UnsynchronizedPolicy::Drop;
        config
    };
    let mut server_drop = Server::new(&dropping, unsynchronized).unwrap();
    assert_eq!(
        run(
            &mut server_drop,
            &w32time_request(1),
            client("192.0.2.1:123"),
            Instant::ZERO
        )
        .0,
        Action::Drop(DropReason::Unsynchronized)
    );
    server.set_system_state(unsynchronized);
    let (_, out) = run(
        &mut server,
        &w32time_request(1),
        client("192.0.2.1:123"),
        Instant::ZERO,
    );
    let r = parse(&out);
    assert_eq!(
        (r.mode, r.leap, r.stratum),
        (
            Mode::SymmetricPassive,
            LeapIndicator::Unsynchronized,
            Stratum::UNSYNCHRONIZED
        )
    );
    assert_counters_balance(&server);
    assert_counters_balance(&server_drop);
    assert_eq!(server.counters().symmetric, 2, "the NTPv2 one and this one");
}

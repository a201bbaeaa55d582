//! Behaviour of the server core: modes and versions, response fields, KoD
//! format, access control, rate limiting, policies and counters.

#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

mod common;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use common::*;
use ntp_proto::{KissCode, LeapIndicator, Mode, RefId, Stratum, SystemState, Timestamp};
use ntp_server::{
    AccessAction, AclRule, Action, DropReason, Instant, RateLimitConfig, Server, ServerConfig,
    UnsynchronizedPolicy, Versions,
};

const XMT: u64 = 0x0123_4567_89ab_cdef;

fn rules(list: &[(&str, AccessAction)]) -> Vec<AclRule> {
    list.iter()
        .map(|(p, a)| AclRule::new(p.parse().unwrap(), *a))
        .collect()
}

fn acl_server(default: AccessAction, list: &[(&str, AccessAction)]) -> Server {
    let config = {
        let mut config = config(default, RateLimitConfig::default());
        config.acl_rules = rules(list);
        config
    };
    Server::new(&config, primary()).unwrap()
}

/// What happens to one request from `ip`: None for a normal answer,
/// Some(code) for a KoD, or the drop reason.
fn outcome(server: &mut Server, ip: &str) -> Result<Option<KissCode>, DropReason> {
    let from = SocketAddr::new(ip.parse().unwrap(), 123);
    match run(server, &request(0x23, 6, XMT), from, Instant::ZERO).0 {
        Action::Respond(reply) => Ok(reply.kiss()),
        Action::Drop(reason) => Err(reason),
        _ => panic!("Action grew"),
    }
}

#[test]
fn response_fields_follow_fast_xmit() {
    let mut server = open_server();
    let req = request(0x1b, 10, XMT); // NTPv3, poll 10
    let (action, out) = run(&mut server, &req, client("192.0.2.1:123"), Instant::ZERO);
    assert!(matches!(action, Action::Respond(r) if r.len() == 48 && r.kiss().is_none()));
    assert_fast_xmit(&parse(&out), &primary(), 3, Mode::Server, 10, XMT);
}

#[test]
fn transmit_holds_receive_time_until_finished() {
    let mut server = open_server();
    let mut out = [0u8; 48];
    let req = request(0x23, 6, XMT);
    let Action::Respond(reply) =
        server.handle(&req, client("192.0.2.1:123"), RX, Instant::ZERO, &mut out)
    else {
        panic!()
    };
    assert_eq!(parse(&out).transmit_timestamp, RX);
    let later = Timestamp::from_bits(RX.to_bits() + 1000);
    assert_eq!(
        parse(server.finish(&reply, &mut out, later)).transmit_timestamp,
        later
    );
    // A buffer shorter than the reply gets nothing written.
    assert!(server.finish(&reply, &mut [0u8; 47], later).is_empty());
}

#[test]
fn mode_and_version_matrix() {
    for versions in [
        Versions::DEFAULT,
        Versions::new(&[3, 4]).unwrap(),
        Versions::new(&[2]).unwrap(),
    ] {
        let config = {
            let mut config = config(AccessAction::Allow, RateLimitConfig::default());
            config.versions = versions;
            config
        };
        let mut server = Server::new(&config, primary()).unwrap();
        for port in [123, 50123] {
            for version in 0..8u8 {
                for mode in 0..8u8 {
                    for leap in [0u8, 3] {
                        let first = leap << 6 | version << 3 | mode;
                        let req = request(first, 4, XMT);
                        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), port);
                        let (action, out) = run(&mut server, &req, from, Instant::ZERO);
                        // Client requests are answered in mode 4, symmetric
                        // active ones in mode 2 (the default
                        // SymmetricPolicy), and version 1's mode 0 from a
                        // port other than 123 in mode 4 (RFC 1305
                        // appendix D).
                        let v1_client = version == 1 && mode == 0 && port != 123;
                        let expected = if mode != 3 && mode != 1 && !v1_client {
                            Action::Drop(DropReason::Mode)
                        } else if !versions.contains(version) {
                            Action::Drop(DropReason::Version)
                        } else {
                            let answer_mode = if mode == 1 { 2 } else { 4 };
                            assert_eq!(
                                out[0] & 0x3f,
                                version << 3 | answer_mode,
                                "answer in own version"
                            );
                            assert_eq!(out[0] >> 6, 0, "leap from the state, not the request");
                            continue;
                        };
                        assert_eq!(
                            action, expected,
                            "version {version} mode {mode} port {port}"
                        );
                        assert!(out.is_empty());
                    }
                }
            }
        }
        assert!(versions.contains(2) || !versions.contains(1));
        assert_counters_balance(&server);
        let c = server.counters();
        let v1 = u64::from(versions.contains(1));
        // Version 1's mode 0 from port 50123 (twice: two leap values) is
        // no mode drop: answered, or a version drop.
        assert_eq!(c.dropped.mode, 2 * 8 * 6 * 2 - 2);
        let versions_served = (0..8u8).filter(|&v| versions.contains(v)).count() as u64;
        assert_eq!(c.symmetric, 2 * versions_served * 2);
        assert_eq!(c.answered, 2 * versions_served * 2 * 2 + 2 * v1);
    }
}

/// RFC 5905 section 9.2 accepts versions 1 to 4 and RFC 4330 section 5
/// has the server answer in the request's version: by default every one
/// of them is answered so, and versions 0 and 5 to 7 are dropped.
#[test]
fn versions_1_to_4_are_answered_by_default_in_their_own_version() {
    let mut server = Server::new(&ServerConfig::default(), primary()).unwrap();
    for version in 0..8u8 {
        let req = request(version << 3 | 3, 6, XMT);
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, version)), 40000);
        let (action, out) = run(&mut server, &req, from, Instant::ZERO);
        if (1..=4).contains(&version) {
            assert!(
                matches!(action, Action::Respond(r) if r.kiss().is_none() && r.len() == 48),
                "version {version}: {action:?}"
            );
            assert_fast_xmit(&parse(&out), &primary(), version, Mode::Server, 6, XMT);
        } else {
            assert_eq!(
                action,
                Action::Drop(DropReason::Version),
                "version {version}"
            );
        }
    }
    let c = server.counters();
    assert_eq!((c.answered, c.dropped.version), (4, 4));
}

/// Python's ntplib asks in NTPv2 by default: a 48-octet packet whose first
/// octet is 0x13 (LI 0, VN 2, mode 3), every other field zero but the
/// transmit timestamp. The default server answers it in version 2.
#[test]
fn ntplib_default_request_is_answered_in_version_2() {
    let mut ntplib = [0u8; 48];
    ntplib[0] = 0x13;
    ntplib[40..48].copy_from_slice(&XMT.to_be_bytes());
    let mut server = Server::new(&ServerConfig::default(), primary()).unwrap();
    let (action, out) = run(
        &mut server,
        &ntplib,
        client("192.0.2.80:51234"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(r) if r.kiss().is_none() && r.mode() == Mode::Server));
    assert_eq!(out.len(), 48);
    assert_eq!(out[0], 0x14, "LI 0, VN 2, mode 4");
    // Poll 0 in the request, raised to the rate limiter's interval for
    // a limited (default) client.
    assert_fast_xmit(
        &parse(&out),
        &primary(),
        2,
        Mode::Server,
        ntp_server::DEFAULT_RATE_INTERVAL,
        XMT,
    );
    assert_eq!(server.counters().dropped.version, 0);
}

/// Version 1 had no mode field (RFC 1305, appendix D, item 1): a mode-0
/// version-1 packet is a client's when it comes from a port other than
/// 123, and is answered in mode 4; from port 123 it could be symmetric
/// active or passive and is dropped, so two servers never bounce. A
/// version-1 request that does set mode 3 is a client's from any port; a
/// mode-0 request of another version is never answered.
#[test]
fn version_1_without_a_mode_is_told_by_its_source_port() {
    let mut server = Server::new(&ServerConfig::default(), primary()).unwrap();
    let v1_no_mode = request(1 << 3, 6, XMT);
    let (action, out) = run(
        &mut server,
        &v1_no_mode,
        client("192.0.2.1:1024"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(r) if r.mode() == Mode::Server && r.kiss().is_none()));
    assert_eq!(out[0] & 0x3f, 1 << 3 | 4, "version 1, mode 4");
    assert_fast_xmit(&parse(&out), &primary(), 1, Mode::Server, 6, XMT);
    let (action, out) = run(
        &mut server,
        &v1_no_mode,
        client("192.0.2.2:123"),
        Instant::ZERO,
    );
    assert_eq!(action, Action::Drop(DropReason::Mode));
    assert!(out.is_empty());
    let v1_client = request(1 << 3 | 3, 6, XMT);
    let (action, _) = run(
        &mut server,
        &v1_client,
        client("192.0.2.3:123"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(r) if r.mode() == Mode::Server));
    for version in [0, 2, 3, 4] {
        let (action, _) = run(
            &mut server,
            &request(version << 3, 6, XMT),
            client("192.0.2.4:1024"),
            Instant::ZERO,
        );
        assert_eq!(action, Action::Drop(DropReason::Mode), "version {version}");
    }
    // Under a version set without 1, the client-by-port request is a
    // version drop.
    let mut modern = {
        let mut config = ServerConfig::default();
        config.versions = Versions::new(&[3, 4]).unwrap();
        Server::new(&config, primary()).unwrap()
    };
    let (action, _) = run(
        &mut modern,
        &v1_no_mode,
        client("192.0.2.1:1024"),
        Instant::ZERO,
    );
    assert_eq!(action, Action::Drop(DropReason::Version));
}

/// Versions 1 to 3 carry at most a MAC after the header (RFC 1305,
/// appendix C): extension fields are NTPv4's (RFC 7822), so an old-version
/// request with one does not parse and is dropped as a bad packet, and an
/// NTPv4 layout that happens to be as long as a MAC is taken as one.
#[test]
fn old_versions_carry_no_extension_fields() {
    let mut server = open_server();
    // A 72-octet extension field (a Unique Identifier): in versions 1 to
    // 3 the 72 octets after the header are no MAC (4, or 12 to 68 octets
    // in steps of 4) and nothing else is allowed there.
    for version in 1..=3u8 {
        let mut req = request(version << 3 | 3, 6, XMT).to_vec();
        req.extend_from_slice(&[0x01, 0x04, 0x00, 0x48]);
        req.extend_from_slice(&[0x5a; 68]);
        let (action, _) = run(&mut server, &req, client("192.0.2.1:1024"), Instant::ZERO);
        assert_eq!(
            action,
            Action::Drop(DropReason::BadPacket),
            "version {version}"
        );
        // The same octets in NTPv4 are an unknown extension field, ignored.
        req[0] = 4 << 3 | 3;
        let (action, out) = run(&mut server, &req, client("192.0.2.1:1024"), Instant::ZERO);
        assert!(
            matches!(action, Action::Respond(r) if r.len() == 48),
            "{action:?}"
        );
        assert_eq!(out[0] & 0x3f, 4 << 3 | 4);
    }
}

#[test]
fn short_and_malformed_requests_are_bad_packets() {
    let mut server = open_server();
    let from = client("192.0.2.1:123");
    let full = request(0x23, 6, XMT);
    for len in 0..48 {
        let (action, _) = run(&mut server, &full[..len], from, Instant::ZERO);
        assert_eq!(action, Action::Drop(DropReason::BadPacket), "len {len}");
    }
    // 48 + 7 octets: neither an extension field nor a MAC.
    let mut bad = full.to_vec();
    bad.extend_from_slice(&[0; 7]);
    assert_eq!(
        run(&mut server, &bad, from, Instant::ZERO).0,
        Action::Drop(DropReason::BadPacket)
    );
    // An extension field whose length runs past the end.
    let mut overrun = full.to_vec();
    overrun.extend_from_slice(&[0x12, 0x34, 0x00, 0x40]);
    overrun.extend_from_slice(&[0; 28]);
    assert_eq!(
        run(&mut server, &overrun, from, Instant::ZERO).0,
        Action::Drop(DropReason::BadPacket)
    );
    assert_counters_balance(&server);
}

#[test]
fn unknown_extension_fields_are_ignored() {
    let mut server = open_server();
    let mut req = request(0x23, 6, XMT).to_vec();
    // Two unknown fields, 16 and 32 octets.
    req.extend_from_slice(&[0xab, 0xcd, 0x00, 0x10]);
    req.extend_from_slice(&[7; 12]);
    req.extend_from_slice(&[0x7f, 0x01, 0x00, 0x20]);
    req.extend_from_slice(&[9; 28]);
    let (action, out) = run(&mut server, &req, client("192.0.2.1:123"), Instant::ZERO);
    assert!(matches!(action, Action::Respond(r) if r.kiss().is_none()));
    assert_eq!(out.len(), 48);
    assert_eq!(parse(&out).origin_timestamp, Timestamp::from_bits(XMT));
}

#[test]
fn output_buffer_too_small_is_a_counted_drop() {
    let mut server = open_server();
    let mut out = [0u8; 47];
    let action = server.handle(
        &request(0x23, 6, XMT),
        client("192.0.2.1:123"),
        RX,
        Instant::ZERO,
        &mut out,
    );
    assert_eq!(action, Action::Drop(DropReason::BufferTooSmall));
    assert_eq!(out, [0; 47]);
    assert_eq!(server.counters().dropped.buffer_too_small, 1);
}

#[test]
fn kod_format_for_deny_and_restrict() {
    for (action, code) in [
        (AccessAction::Deny, KissCode::Deny),
        (AccessAction::Restrict, KissCode::Rstr),
    ] {
        let mut server = acl_server(action, &[]);
        let mut req = request(0x1b, 9, XMT); // NTPv3, poll 9
        req[3] = 0xec; // precision -20
        let (result, out) = run(&mut server, &req, client("192.0.2.1:123"), Instant::ZERO);
        assert!(matches!(result, Action::Respond(r) if r.kiss() == Some(code)));
        let r = parse(&out);
        assert_eq!(r.leap, LeapIndicator::Unsynchronized);
        assert_eq!(r.version.to_bits(), 3);
        assert_eq!(r.mode, Mode::Server);
        assert_eq!(r.stratum, Stratum::UNSPECIFIED);
        assert_eq!(r.poll, 9);
        assert_eq!(r.precision, -20);
        assert_eq!(r.root_delay.to_bits(), 0);
        assert_eq!(r.root_dispersion.to_bits(), 0);
        assert_eq!(r.reference_id, RefId::from_kiss_code(code));
        assert_eq!(r.reference_id.kiss_code(), code);
        assert!(r.reference_timestamp.is_zero());
        // finish() leaves the KoD's timestamps alone.
        for ts in [
            r.origin_timestamp,
            r.receive_timestamp,
            r.transmit_timestamp,
        ] {
            assert_eq!(ts, Timestamp::from_bits(XMT));
        }
    }
}

#[test]
fn acl_most_specific_prefix_wins_ipv4() {
    use AccessAction::*;
    let list = [
        ("10.1.2.0/24", Restrict),
        ("10.0.0.0/8", Deny),
        ("10.1.0.0/16", Allow),
        ("10.1.2.3", Ignore),
        ("192.0.2.128/25", Deny),
    ];
    // The same list in reverse gives the same answers.
    for order in [list.to_vec(), list.iter().rev().copied().collect()] {
        let mut server = acl_server(Limited, &order);
        assert_eq!(outcome(&mut server, "10.9.9.9"), Ok(Some(KissCode::Deny)));
        assert_eq!(outcome(&mut server, "10.1.9.9"), Ok(None));
        assert_eq!(outcome(&mut server, "10.1.2.4"), Ok(Some(KissCode::Rstr)));
        assert_eq!(outcome(&mut server, "10.1.2.3"), Err(DropReason::Acl));
        assert_eq!(outcome(&mut server, "192.0.2.127"), Ok(None)); // default
        assert_eq!(
            outcome(&mut server, "192.0.2.128"),
            Ok(Some(KissCode::Deny))
        );
        assert_eq!(outcome(&mut server, "11.0.0.1"), Ok(None));
        // IPv4-mapped IPv6 sources are IPv4 clients.
        assert_eq!(
            outcome(&mut server, "::ffff:10.1.2.3"),
            Err(DropReason::Acl)
        );
        assert_eq!(server.acl().lookup("10.1.2.3".parse().unwrap()), Ignore);
        assert_eq!(server.acl().lookup("11.0.0.1".parse().unwrap()), Limited);
    }
}

#[test]
fn acl_most_specific_prefix_wins_ipv6() {
    use AccessAction::*;
    let list = [
        ("2001:db8::/32", Deny),
        ("2001:db8:1::/48", Allow),
        ("2001:db8:1:2::/64", Restrict),
        ("2001:db8:1:2::7", Ignore),
        ("::/0", Limited),
        ("fe80::/10", Ignore),
    ];
    for order in [list.to_vec(), list.iter().rev().copied().collect()] {
        let mut server = acl_server(Ignore, &order);
        assert_eq!(
            outcome(&mut server, "2001:db8:9::1"),
            Ok(Some(KissCode::Deny))
        );
        assert_eq!(outcome(&mut server, "2001:db8:1:9::1"), Ok(None));
        assert_eq!(
            outcome(&mut server, "2001:db8:1:2::8"),
            Ok(Some(KissCode::Rstr))
        );
        assert_eq!(
            outcome(&mut server, "2001:db8:1:2::7"),
            Err(DropReason::Acl)
        );
        assert_eq!(outcome(&mut server, "fe80::1"), Err(DropReason::Acl));
        assert_eq!(outcome(&mut server, "febf::1"), Err(DropReason::Acl));
        assert_eq!(outcome(&mut server, "fec0::1"), Ok(None)); // ::/0 limited
        // IPv6 rules do not reach IPv4 clients: the default applies.
        assert_eq!(outcome(&mut server, "192.0.2.1"), Err(DropReason::Acl));
    }
}

#[test]
fn acl_same_prefix_later_rule_wins() {
    use AccessAction::*;
    let mut server = acl_server(Allow, &[("192.0.2.0/24", Deny), ("192.0.2.0/24", Ignore)]);
    assert_eq!(outcome(&mut server, "192.0.2.1"), Err(DropReason::Acl));
    let mut server = acl_server(Allow, &[("192.0.2.9/24", Ignore), ("192.0.2.0/24", Deny)]);
    assert_eq!(outcome(&mut server, "192.0.2.1"), Ok(Some(KissCode::Deny)));
    // A /0 rule replaces the default for its family only.
    let mut server = acl_server(Ignore, &[("0.0.0.0/0", Allow)]);
    assert_eq!(outcome(&mut server, "198.51.100.1"), Ok(None));
    assert_eq!(outcome(&mut server, "2001:db8::1"), Err(DropReason::Acl));
}

fn limited(interval: i8, burst: u16, leak: u16) -> Server {
    let rate = {
        let mut config = RateLimitConfig::default();
        config.interval = interval;
        config.burst = burst;
        config.leak = leak;
        config.capacity = 1024;
        config.hash_key = *b"0123456789abcdef";
        config
    };
    Server::new(&config(AccessAction::Limited, rate), primary()).unwrap()
}

/// Answers (not Kiss-o'-Death) that `servers` give a client at
/// 192.0.2.7 sending `requests` requests within one second, each from a
/// new source port, request `i` to server `i % servers.len()` (as the
/// kernel spreads a client that changes its port over the sockets of
/// one address).
fn answers_to_a_port_rotating_client(servers: &mut [Server], requests: u16) -> usize {
    let count = servers.len();
    (0..requests)
        .filter(|&i| {
            let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 1024 + i);
            let now = Instant::from_nanos(1_000_000_000 + u64::from(i) * 1_000_000);
            let server = &mut servers[usize::from(i) % count];
            let (action, _) = run(server, &request(0x23, 0, u64::from(i)), from, now);
            matches!(action, Action::Respond(r) if r.kiss().is_none())
        })
        .count()
}

#[test]
fn servers_sharing_a_rate_limiter_meter_a_client_once_whatever_its_port() {
    // Each with its own table, four servers give four bursts.
    let template = limited(4, 4, 0);
    let mut apart: Vec<Server> = (0..4).map(|_| template.clone()).collect();
    assert_eq!(answers_to_a_port_rotating_client(&mut apart, 40), 16);

    let mut template = limited(4, 4, 0);
    template.share_rate_limiter();
    assert!(template.rate_limiter().is_none());
    let shared = template.shared_rate_limiter().unwrap();
    assert_eq!(shared.capacity(), 1024);
    assert_eq!(shared.interval(), 4);
    let mut servers: Vec<Server> = (0..4).map(|_| template.clone()).collect();
    assert_eq!(answers_to_a_port_rotating_client(&mut servers, 40), 4);
    assert!(
        servers[3]
            .shared_rate_limiter()
            .unwrap()
            .contains("192.0.2.7".parse().unwrap())
    );
    assert_eq!(template.shared_rate_limiter().unwrap().occupied(), 1);
    for server in &servers {
        assert_counters_balance(server);
    }
}

/// Four threads, each with its clone of a server, 1000 requests each
/// from one client at the same instant: exactly one burst is answered
/// among them.
#[test]
fn a_shared_rate_limiter_holds_under_concurrent_threads() {
    let mut template = limited(4, 8, 0);
    template.share_rate_limiter();
    let from = client("198.51.100.9:4000");
    let answered: usize = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let mut server = template.clone();
                scope.spawn(move || {
                    (0..1000_u64)
                        .filter(|&i| {
                            let now = Instant::from_nanos(5_000_000_000);
                            let (action, _) = run(&mut server, &request(0x23, 0, i), from, now);
                            matches!(action, Action::Respond(r) if r.kiss().is_none())
                        })
                        .count()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert_eq!(answered, 8);
}

#[test]
fn bursty_client_gets_kod_rate_after_its_burst_one_in_leak() {
    let (burst, leak) = (5u16, 4u16);
    let mut server = limited(4, burst, leak);
    let from = client("198.51.100.7:123");
    let now = Instant::from_secs(1000);
    let mut outcomes = Vec::new();
    for i in 0..45u64 {
        let (action, out) = run(&mut server, &request(0x23, 2, XMT + i), from, now);
        if let Action::Respond(reply) = action {
            let r = parse(&out);
            assert_eq!(r.poll, 4, "poll raised to the interval");
            if reply.kiss() == Some(KissCode::Rate) {
                assert_eq!(r.stratum, Stratum::UNSPECIFIED);
                assert_eq!(r.transmit_timestamp, Timestamp::from_bits(XMT + i));
            }
        }
        outcomes.push(action);
    }
    let answered = outcomes
        .iter()
        .take_while(|a| matches!(a, Action::Respond(r) if r.kiss().is_none()))
        .count();
    assert_eq!(answered, usize::from(burst));
    let over = &outcomes[usize::from(burst)..];
    let kods: Vec<usize> = over
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::Respond(r) if r.kiss() == Some(KissCode::Rate)))
        .map(|(i, _)| i)
        .collect();
    // The 1st, 5th, 9th... over-limit requests: 1 in leak.
    assert_eq!(kods, (0..40).step_by(usize::from(leak)).collect::<Vec<_>>());
    assert!(over.iter().all(|a| matches!(
        a,
        Action::Respond(r) if r.kiss() == Some(KissCode::Rate)
    ) || *a == Action::Drop(DropReason::RateLimited)));
    let c = server.counters();
    assert_eq!(c.kiss.rate, 10);
    assert_eq!(c.dropped.rate_limited, 30);
    assert_counters_balance(&server);

    // One interval later, exactly one more request is allowed.
    let later = now.saturating_add(core::time::Duration::from_secs(16));
    assert!(matches!(
        run(&mut server, &request(0x23, 2, XMT), from, later).0,
        Action::Respond(r) if r.kiss().is_none()
    ));
    assert!(!matches!(
        run(&mut server, &request(0x23, 2, XMT), from, later).0,
        Action::Respond(r) if r.kiss().is_none()
    ));
}

#[test]
fn leak_zero_never_sends_kod() {
    let mut server = limited(0, 1, 0);
    let from = client("198.51.100.7:123");
    for _ in 0..100 {
        run(&mut server, &request(0x23, 0, XMT), from, Instant::ZERO);
    }
    assert_eq!(server.counters().answered, 1);
    assert_eq!(server.counters().kiss.rate, 0);
    assert_eq!(server.counters().dropped.rate_limited, 99);
}

#[test]
fn allowed_clients_are_not_limited_and_poll_is_echoed() {
    let mut server = acl_server(
        AccessAction::Limited,
        &[("203.0.113.0/24", AccessAction::Allow)],
    );
    for i in 0..1000 {
        let (action, out) = run(
            &mut server,
            &request(0x23, 0, XMT + i),
            client("203.0.113.5:123"),
            Instant::ZERO,
        );
        assert!(matches!(action, Action::Respond(r) if r.kiss().is_none()));
        assert_eq!(parse(&out).poll, 0);
    }
}

#[test]
fn ipv6_clients_share_a_bucket_per_64() {
    let mut server = limited(4, 2, 1);
    let now = Instant::from_secs(10);
    let a = client("[2001:db8:1:2::1]:123");
    let b = client("[2001:db8:1:2:ffff::9]:123");
    let other = client("[2001:db8:1:3::1]:123");
    let answered = |action: Action| matches!(action, Action::Respond(r) if r.kiss().is_none());
    assert!(answered(run(&mut server, &request(0x23, 0, 1), a, now).0));
    assert!(answered(run(&mut server, &request(0x23, 0, 2), b, now).0));
    assert!(!answered(run(&mut server, &request(0x23, 0, 3), a, now).0));
    assert!(answered(
        run(&mut server, &request(0x23, 0, 4), other, now).0
    ));
}

#[test]
fn well_behaved_client_is_unaffected_by_a_flood() {
    // Small table (64 entries) so the flood cycles through it many times.
    let rate = {
        let mut config = RateLimitConfig::default();
        config.interval = 4;
        config.burst = 4;
        config.leak = 2;
        config.capacity = 64;
        config.hash_key = [7; 16];
        config
    };
    let mut server = Server::new(&config(AccessAction::Limited, rate), primary()).unwrap();
    let good = client("192.0.2.200:123");
    let abuser = client("192.0.2.66:123");
    let mut good_answers = 0;
    let mut abuser_answers = 0;
    let mut over_limit_since = None;
    // 600 s of virtual time, one flood packet every 0.5 ms from a fresh
    // address (1.2 million addresses), the good client every 16 s (the
    // interval), an abuser every 10 ms.
    let step_ns = 500_000u64;
    for i in 0..1_200_000u64 {
        let now = Instant::from_nanos(i * step_ns);
        let spoofed = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + u32::try_from(i).unwrap()));
        run(
            &mut server,
            &request(0x23, 0, i),
            SocketAddr::new(spoofed, 123),
            now,
        );
        if i % 32_000 == 0 {
            let (action, _) = run(&mut server, &request(0x23, 4, i), good, now);
            assert!(
                matches!(action, Action::Respond(r) if r.kiss().is_none()),
                "good client refused at step {i}: {action:?}"
            );
            good_answers += 1;
        }
        if i % 20 == 0 {
            if over_limit_since.is_some() {
                // Once over its limit the abuser is never evicted.
                assert!(
                    server.rate_limiter().unwrap().contains(abuser.ip()),
                    "evicted at {i}"
                );
            }
            let (action, _) = run(&mut server, &request(0x23, 0, i), abuser, now);
            if matches!(action, Action::Respond(r) if r.kiss().is_none()) {
                if over_limit_since.is_some() {
                    abuser_answers += 1;
                }
            } else if over_limit_since.is_none() {
                over_limit_since = Some(i);
            }
        }
    }
    assert_eq!(good_answers, 38);
    // The abuser stays limited: after its burst, one answer per 16 s.
    let since = over_limit_since.unwrap() * step_ns / 1_000_000_000;
    assert!(since < 2, "over its limit after {since} s");
    assert!(
        abuser_answers <= (600 - since) / 16 + 1,
        "abuser got {abuser_answers}"
    );
    assert!(server.rate_limiter().unwrap().capacity() == 64);
    assert_counters_balance(&server);
}

#[test]
fn unsynchronized_state_is_answered_as_such_or_dropped() {
    let unsync = SystemState::unsynchronized(-22);
    let mut server = open_server();
    server.set_system_state(unsync);
    let (action, out) = run(
        &mut server,
        &request(0x23, 6, XMT),
        client("192.0.2.1:123"),
        Instant::ZERO,
    );
    assert!(matches!(action, Action::Respond(_)));
    let r = parse(&out);
    assert_eq!(r.leap, LeapIndicator::Unsynchronized);
    assert_eq!(r.stratum, Stratum::UNSYNCHRONIZED);
    assert_eq!(r.reference_id, RefId::INIT);
    assert_eq!(r.precision, -22);

    let config = {
        let mut config = config(AccessAction::Allow, RateLimitConfig::default());
        config.unsynchronized = UnsynchronizedPolicy::Drop;
        config
    };
    let mut server = Server::new(&config, unsync).unwrap();
    let req = request(0x23, 6, XMT);
    let from = client("192.0.2.1:123");
    assert_eq!(
        run(&mut server, &req, from, Instant::ZERO).0,
        Action::Drop(DropReason::Unsynchronized)
    );
    // Leap 3 alone is unsynchronized too.
    server.set_system_state(SystemState {
        leap: LeapIndicator::Unsynchronized,
        ..primary()
    });
    assert_eq!(
        run(&mut server, &req, from, Instant::ZERO).0,
        Action::Drop(DropReason::Unsynchronized)
    );
    // Replacing the state takes effect on the next request.
    server.set_system_state(primary());
    assert!(matches!(
        run(&mut server, &req, from, Instant::ZERO).0,
        Action::Respond(_)
    ));
    assert_eq!(server.system_state(), &primary());
}

#[test]
fn time_going_backwards_does_not_reset_the_limiter() {
    let mut server = limited(4, 1, 1);
    let from = client("192.0.2.1:123");
    let req = request(0x23, 0, XMT);
    assert!(
        matches!(run(&mut server, &req, from, Instant::from_secs(100)).0, Action::Respond(r) if r.kiss().is_none())
    );
    // An earlier `now` is read as the latest one seen.
    assert!(
        matches!(run(&mut server, &req, from, Instant::ZERO).0, Action::Respond(r) if r.kiss() == Some(KissCode::Rate))
    );
    assert!(
        matches!(run(&mut server, &req, from, Instant::from_secs(116)).0, Action::Respond(r) if r.kiss().is_none())
    );
}

#[test]
fn denied_clients_kod_is_metered() {
    let rate = {
        let mut config = RateLimitConfig::default();
        config.interval = 4;
        config.burst = 2;
        config
    };
    let mut server = Server::new(&config(AccessAction::Deny, rate), primary()).unwrap();
    let from = client("[2001:db8::1]:123");
    for _ in 0..10 {
        run(&mut server, &request(0x23, 0, XMT), from, Instant::ZERO);
    }
    assert_eq!(server.counters().kiss.deny, 2);
    assert_eq!(server.counters().dropped.rate_limited, 8);
}

#[test]
fn counters_take_and_merge() {
    let mut a = open_server();
    let mut b = open_server();
    run(
        &mut a,
        &request(0x23, 0, 1),
        client("192.0.2.1:1"),
        Instant::ZERO,
    );
    run(
        &mut b,
        &request(0x26, 0, 1),
        client("192.0.2.1:1"),
        Instant::ZERO,
    );
    let mut total = a.take_counters();
    total += b.counters();
    assert_eq!(total.received, 2);
    assert_eq!(total.answered, 1);
    assert_eq!(total.dropped.mode, 1);
    assert_eq!(total.dropped.get(DropReason::Mode), 1);
    assert_eq!(a.counters().received, 0);
    let line = total.to_string();
    assert!(line.starts_with("received=2 answered=1 "), "{line}");
}

#[test]
fn config_errors() {
    use ntp_server::ConfigError;
    let bad = |rate: RateLimitConfig| {
        Server::new(&config(AccessAction::Allow, rate), primary()).unwrap_err()
    };
    let base = RateLimitConfig::default();
    assert_eq!(
        bad({
            let mut config = base;
            config.interval = 18;
            config
        }),
        ConfigError::RateInterval(18)
    );
    assert_eq!(
        bad({
            let mut config = base;
            config.interval = -11;
            config
        }),
        ConfigError::RateInterval(-11)
    );
    assert_eq!(
        bad({
            let mut config = base;
            config.burst = 0;
            config
        }),
        ConfigError::RateBurst
    );
    assert_eq!(
        bad({
            let mut config = base;
            config.capacity = 0;
            config
        }),
        ConfigError::RateCapacity(0)
    );
    assert_eq!(
        bad({
            let mut config = base;
            config.ipv6_prefix = 129;
            config
        }),
        ConfigError::PrefixLength { len: 129, max: 128 }
    );
    let many = {
        let mut config = ServerConfig::default();
        config.acl_rules =
            vec![AclRule::new("10.0.0.0/8".parse().unwrap(), AccessAction::Deny); 1025];
        config
    };
    assert_eq!(
        Server::new(&many, primary()).unwrap_err(),
        ConfigError::TooManyRules(1025)
    );
    let v6: Ipv6Addr = "2001:db8::".parse().unwrap();
    assert!(ntp_server::IpPrefix::new(IpAddr::V6(v6), 200).is_err());
}

#[cfg(feature = "serde")]
#[test]
fn counters_serialize() {
    let mut server = acl_server(AccessAction::Deny, &[]);
    run(
        &mut server,
        &request(0x23, 0, 1),
        client("192.0.2.1:1"),
        Instant::ZERO,
    );
    run(&mut server, &[0u8; 3], client("192.0.2.1:1"), Instant::ZERO);
    let json = serde_json::to_value(server.counters()).unwrap();
    assert_eq!(json["received"], 2);
    assert_eq!(json["kiss"]["deny"], 1);
    assert_eq!(json["dropped"]["bad_packet"], 1);
    let back: ntp_server::Counters = serde_json::from_value(json).unwrap();
    assert_eq!(&back, server.counters());
}

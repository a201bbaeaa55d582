//! Property tests: any input, signed or not, is handled without panic and
//! never answered with more octets than it had, under every MAC policy;
//! signed answers verify; the ACL trie agrees with a plain scan.

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
use ntp_proto::{Packet, Timestamp};
use ntp_server::{
    AccessAction, Acl, AclRule, Action, DropReason, Instant, IpPrefix, Key, KeyId, KeyStore,
    KeyType, MacPolicy, RateLimitConfig, Server, ServerConfig, Versions,
};
use proptest::prelude::*;

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        // Few distinct addresses, so the rate limiter gets repeat visitors.
        (0u8..4).prop_map(|a| IpAddr::V4(Ipv4Addr::new(192, 0, 2, a))),
        any::<u32>().prop_map(|a| IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped())),
    ]
}

fn any_action() -> impl Strategy<Value = AccessAction> {
    prop_oneof![
        Just(AccessAction::Allow),
        Just(AccessAction::Ignore),
        Just(AccessAction::Deny),
        Just(AccessAction::Restrict),
        Just(AccessAction::Limited),
    ]
}

/// The keys signed requests use: the server holds the first three (MD5,
/// AES-128-CMAC, SHA-256) or none; the fourth (id 9) it never holds.
fn keys() -> [Key; 4] {
    let key =
        |id, key_type, secret: &[u8]| Key::new(KeyId::new(id).unwrap(), key_type, secret).unwrap();
    [
        key(1, KeyType::Md5, b"md5 secret"),
        key(2, KeyType::Aes128Cmac, &[7; 16]),
        key(3, KeyType::Sha256, b"sha-256 secret"),
        key(9, KeyType::Sha1, b"a key the server lacks"),
    ]
}

/// Requests that are mostly well-formed client packets with random
/// fields and random tails, signed client and symmetric-active packets
/// (some with a digest bit flipped), plus arbitrary bytes.
fn any_request() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        (
            proptest::collection::vec(any::<u8>(), 48),
            0u8..8,
            proptest::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(mut head, version, tail)| {
                head[0] = (head[0] & 0xc0) | version << 3 | 3;
                head.extend_from_slice(&tail);
                head
            }),
        (
            proptest::collection::vec(any::<u8>(), 48),
            1u8..8,
            // Client, symmetric active, or no mode (version 1's form).
            prop_oneof![Just(3u8), Just(1), Just(0)],
            0usize..4,
            proptest::option::of(any::<u8>()),
        )
            .prop_map(|(mut head, version, mode, key, flip)| {
                head[0] = (head[0] & 0xc0) | version << 3 | mode;
                let mut buffer = [0u8; 160];
                buffer[..48].copy_from_slice(&head);
                let len = keys()[key].sign_in_place(&mut buffer, 48).unwrap();
                if let Some(at) = flip {
                    buffer[52 + usize::from(at) % (len - 52)] ^= 1 << (at % 8);
                }
                buffer[..len].to_vec()
            }),
    ]
}

fn any_mac_policy() -> impl Strategy<Value = MacPolicy> {
    prop_oneof![
        Just(MacPolicy::CryptoNak),
        Just(MacPolicy::Drop),
        Just(MacPolicy::AnswerUnauthenticated),
    ]
}

fn any_rule() -> impl Strategy<Value = AclRule> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, l)| (IpAddr::V4(Ipv4Addr::from(a)), l)),
        // Prefixes clustered in 10.0.0.0/14 so that rules nest and overlap.
        (0u32..(1 << 18), 8u8..=32)
            .prop_map(|(a, l)| (IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | a)), l)),
        (any::<u128>(), 0u8..=128).prop_map(|(a, l)| (IpAddr::V6(Ipv6Addr::from(a)), l)),
        (0u128..(1 << 20), 16u8..=128).prop_map(|(a, l)| (
            IpAddr::V6(Ipv6Addr::from((0x2001_0db8 << 96) | (a << 100) | a)),
            l
        )),
    ]
    .prop_flat_map(|(addr, len)| {
        any_action().prop_map(move |action| AclRule::new(IpPrefix::new(addr, len).unwrap(), action))
    })
}

/// The specification of the ACL order: the longest matching prefix, the
/// last one listed among equals, else the default.
fn reference_lookup(default: AccessAction, rules: &[AclRule], ip: IpAddr) -> AccessAction {
    let mut best: Option<&AclRule> = None;
    for rule in rules {
        if rule.prefix.contains(ip) && best.is_none_or(|b| rule.prefix.len() >= b.prefix.len()) {
            best = Some(rule);
        }
    }
    best.map_or(default, |rule| rule.action)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn responses_are_never_longer_than_requests(
        requests in proptest::collection::vec((any_request(), any_ip(), prop_oneof![Just(123u16), any::<u16>()], any::<u64>(), 0u64..2_000_000_000), 1..40),
        default in any_action(),
        rules in proptest::collection::vec(any_rule(), 0..8),
        mac in any_mac_policy(),
        with_keys in any::<bool>(),
        out_len in prop_oneof![Just(1500usize), 0usize..120],
    ) {
        let config = {
            let mut config = ServerConfig::default();
            config.versions = Versions::ALL;
            config.acl_rules = rules;
            config.acl_default = default;
            config.rate_limit = {
                let mut config = RateLimitConfig::default();
                config.interval = 0;
                config.burst = 2;
                config.leak = 2;
                config.capacity = 16;
                config
            };
            config.mac = mac;
            config
        };
        let mut server = Server::new(&config, primary()).unwrap();
        let keys = keys();
        if with_keys {
            let mut store = KeyStore::<4>::new();
            for key in &keys[..3] {
                store.insert(key.clone()).unwrap();
            }
            server.set_keys(&store);
        }
        let mut now = 0u64;
        for (request, ip, port, rx, step) in requests {
            now += step;
            let mut out = vec![0x5au8; out_len];
            let checks = server.counters().crypto_checks;
            let action = server.handle(&request, SocketAddr::new(ip, port), Timestamp::from_bits(rx), Instant::from_nanos(now), &mut out);
            // Access control and the rate limiter come before any
            // cryptography: what they refuse cost none.
            let refused = match action {
                Action::Respond(reply) => reply.kiss().is_some(),
                Action::Drop(reason) => !matches!(reason, DropReason::Authenticated | DropReason::BufferTooSmall | DropReason::BadPacket),
                _ => false,
            };
            if refused {
                prop_assert_eq!(server.counters().crypto_checks, checks, "{:?}", action);
            }
            if let Action::Respond(reply) = action {
                if reply.kiss().is_some() {
                    prop_assert!(reply.key_id().is_none() && !reply.crypto_nak(), "a KoD is never signed");
                }
                prop_assert!(reply.len() <= request.len());
                prop_assert!(reply.len() <= out.len());
                let sent = server.finish(&reply, &mut out, Timestamp::from_bits(rx ^ 1)).to_vec();
                prop_assert_eq!(sent.len(), reply.len());
                match (reply.key_id(), reply.crypto_nak()) {
                    (None, false) => prop_assert_eq!(sent.len(), 48),
                    (None, true) => {
                        prop_assert_eq!(mac, MacPolicy::CryptoNak);
                        prop_assert_eq!(&sent[48..], &[0u8; 4][..]);
                    }
                    (Some(id), false) => {
                        prop_assert!(with_keys);
                        let key = keys.iter().find(|k| k.id() == id).unwrap();
                        prop_assert!(key.verify(&sent).is_ok(), "signed answer does not verify");
                        prop_assert!(key.verify(&request).is_ok(), "signed answer to a bad MAC");
                    }
                    (Some(_), true) => prop_assert!(false, "signed and crypto-NAK"),
                }
                let (req, resp) = (Packet::new_checked(&request[..]).unwrap(), Packet::new_checked(&sent[..]).unwrap());
                // Mode 3 is answered in mode 4, mode 1 (symmetric active,
                // answered by default) in mode 2, and a version-1 mode-0
                // request from a port other than 123 (RFC 1305 appendix
                // D) in mode 4; nothing else.
                let mode = match req.mode() {
                    ntp_proto::Mode::Client => ntp_proto::Mode::Server,
                    ntp_proto::Mode::Reserved => {
                        prop_assert_eq!(req.version(), 1);
                        prop_assert_ne!(port, 123);
                        ntp_proto::Mode::Server
                    }
                    other => {
                        prop_assert_eq!(other, ntp_proto::Mode::SymmetricActive);
                        ntp_proto::Mode::SymmetricPassive
                    }
                };
                prop_assert_eq!(resp.mode(), mode);
                prop_assert_eq!(reply.mode(), mode);
                prop_assert_eq!(resp.version(), req.version());
                prop_assert_eq!(resp.origin_timestamp(), req.transmit_timestamp());
                if reply.kiss().is_none() {
                    prop_assert_eq!(resp.receive_timestamp(), Timestamp::from_bits(rx));
                    prop_assert_eq!(resp.transmit_timestamp(), Timestamp::from_bits(rx ^ 1));
                } else {
                    prop_assert_eq!(resp.stratum().get(), 0);
                    prop_assert_eq!(resp.transmit_timestamp(), req.transmit_timestamp());
                }
            } else {
                prop_assert!(out.iter().all(|&b| b == 0x5a), "a drop writes nothing");
            }
        }
        let c = server.counters();
        prop_assert_eq!(c.received, c.answered + c.kiss.total() + c.dropped.total());
    }

    #[test]
    fn acl_trie_matches_the_reference(
        default in any_action(),
        rules in proptest::collection::vec(any_rule(), 0..60),
        probes in proptest::collection::vec(any_ip(), 0..60),
    ) {
        let acl = Acl::new(default, &rules).unwrap();
        // Probe random addresses, and each rule's first, last and
        // neighbouring addresses.
        let mut all = probes;
        for rule in &rules {
            let (first, len) = (rule.prefix.addr(), rule.prefix.len());
            all.push(first);
            match first {
                IpAddr::V4(a) => {
                    let a = u32::from(a);
                    let last = a | (u32::MAX.checked_shr(u32::from(len)).unwrap_or(0));
                    all.extend([last, last.wrapping_add(1), a.wrapping_sub(1)].map(|x| IpAddr::V4(x.into())));
                }
                IpAddr::V6(a) => {
                    let a = u128::from(a);
                    let last = a | (u128::MAX.checked_shr(u32::from(len)).unwrap_or(0));
                    all.extend([last, last.wrapping_add(1), a.wrapping_sub(1)].map(|x| IpAddr::V6(x.into())));
                }
            }
        }
        for ip in all {
            prop_assert_eq!(acl.lookup(ip), reference_lookup(default, &rules, ip), "{}", ip);
        }
    }
}

//! Heap checks with dhat's counting allocator: `handle`, `finish` and
//! `transmitted` allocate nothing, signed, NTS (answered and NAKed) and
//! interleaved requests included, and the rate-limit table
//! does not grow for a million distinct clients.
//! Alone in its own test binary because it installs a global allocator,
//! and without the libtest harness (`harness = false`), whose threads would
//! allocate while we count.

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
use ntp_server::{
    AccessAction, AclRule, Action, Instant, Key, KeyId, KeyStore, KeyType, RateLimitConfig, Server,
    ServerConfig,
};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn hundred_rules() -> Vec<AclRule> {
    (0..100u32)
        .map(|i| {
            let action = [
                AccessAction::Deny,
                AccessAction::Allow,
                AccessAction::Limited,
            ][usize::try_from(i % 3).unwrap()];
            let addr = if i % 2 == 0 {
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i << 16)))
            } else {
                IpAddr::V6(Ipv6Addr::from(
                    (0x2001_0db8_u128 << 96) | (u128::from(i) << 80),
                ))
            };
            AclRule::new(
                ntp_server::IpPrefix::new(addr, 16 + u8::try_from(i % 16).unwrap()).unwrap(),
                action,
            )
        })
        .collect()
}

fn main() {
    no_allocation_per_request_and_constant_table();
    println!("alloc: no allocation in 3 million requests, table constant: ok");
}

// One test function: dhat's profiler is global and may exist only once.
fn no_allocation_per_request_and_constant_table() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let config = {
        let mut config = ServerConfig::default();
        config.acl_rules = hundred_rules();
        config.acl_rules.push(AclRule::new(
            ntp_server::IpPrefix::host(IpAddr::V4(Ipv4Addr::new(172, 16, 0, 2))),
            AccessAction::Allow,
        ));
        config.acl_default = AccessAction::Limited;
        config.rate_limit = {
            let mut config = RateLimitConfig::default();
            config.capacity = 4096;
            config.interval = 0;
            config.burst = 4;
            config
        };
        config
    };
    let mut server = Server::new(&config, primary()).unwrap();
    let md5 = Key::new(KeyId::new(1).unwrap(), KeyType::Md5, b"md5 key").unwrap();
    let aes = Key::new(KeyId::new(2).unwrap(), KeyType::Aes128Cmac, &[9; 16]).unwrap();
    let mut keys = KeyStore::<2>::new();
    keys.insert(md5.clone()).unwrap();
    keys.insert(aes.clone()).unwrap();
    server.set_keys(&keys);
    let signed = |key: &Key| {
        let mut buffer = [0u8; 68];
        buffer[..48].copy_from_slice(&request(0x23, 6, 0x1234));
        key.sign_in_place(&mut buffer, 48).unwrap();
        buffer
    };
    let (md5_req, aes_req) = (signed(&md5), signed(&aes));
    let mut bad_mac = md5_req;
    bad_mac[60] ^= 1;
    let table_bytes = server.rate_limiter().unwrap().heap_bytes();
    let mut out = [0u8; 1500];
    let req = request(0x23, 6, 0x1234);
    // chrony's NTS request: its cookie is not ours, so an NTS NAK.
    let mut nts_nak = vectors()
        .into_iter()
        .find(|v| v.comment.contains("NTS client request"))
        .unwrap()
        .bytes;
    nts_nak[0] = 0x23;
    // Our client's NTS request with a cookie of the server's keys and 7
    // placeholders: an NTS answer with 8 fresh cookies.
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(13);
    let cookie_keys = ntp_server::CookieKeys::random(&mut rng);
    let session_keys = ntp_nts::SessionKeys {
        algorithm: ntp_nts::AeadAlgorithm::AesSivCmac256,
        c2s: ntp_nts::AeadKey::new(&[1; 32]).unwrap(),
        s2c: ntp_nts::AeadKey::new(&[2; 32]).unwrap(),
    };
    let cookie = cookie_keys.seal(&session_keys, &mut rng).unwrap();
    let mut session = ntp_nts::client::NtsClientSession::new(session_keys, [cookie]);
    let mut nts_buf = [0u8; 1280];
    let (nts_len, _) = session
        .write_request(&request(0x23, 6, 0x1234), &mut rng, &mut nts_buf)
        .unwrap();
    let nts = nts_buf[..nts_len].to_vec();
    server.set_nts(cookie_keys, [5; 32]);

    let mut xleave_req = req;
    xleave_req[24..32].copy_from_slice(&RX.to_bits().to_be_bytes());
    let xleave_bytes = server.interleave_heap_bytes();
    let mut xleaved = 0u64;
    let before = dhat::HeapStats::get();
    let mut answered = 0u64;
    // A million distinct addresses (IPv4 and IPv6), plus repeat visitors
    // that hit the limiter, KoD paths, a request with extension fields,
    // MD5- and AES-CMAC-signed requests and one whose MAC fails.
    for i in 0..1_000_000u32 {
        let ip = if i % 2 == 0 {
            IpAddr::V4(Ipv4Addr::from(0xc000_0000 | i))
        } else {
            IpAddr::V6(Ipv6Addr::from(
                (0x2001_0db9_u128 << 96) | (u128::from(i) << 64),
            ))
        };
        let now = Instant::from_nanos(u64::from(i) * 1000);
        let packet: &[u8] = match i % 7 {
            0 if i % 2 == 0 => &nts,
            0 => &nts_nak,
            1 => &md5_req,
            2 => &aes_req,
            3 => &bad_mac,
            _ => &req,
        };
        if let Action::Respond(reply) =
            server.handle(packet, SocketAddr::new(ip, 123), RX, now, &mut out)
        {
            core::hint::black_box(server.finish(&reply, &mut out, TX));
            server.transmitted(SocketAddr::new(ip, 123), &reply, TX);
            answered += 1;
        }
        let repeat = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 123);
        core::hint::black_box(server.handle(&req, repeat, RX, now, &mut out));
        // A client in the interleaved mode: its origin is our last
        // receive timestamp (RX), and the transmit time was reported.
        let interleaved = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(172, 16, 0, 2)), 123);
        if let Action::Respond(reply) = server.handle(&xleave_req, interleaved, RX, now, &mut out) {
            core::hint::black_box(server.finish(&reply, &mut out, TX));
            server.transmitted(interleaved, &reply, TX);
            xleaved += u64::from(reply.interleaved());
        }
    }
    let after = dhat::HeapStats::get();

    assert_eq!(
        after.total_blocks, before.total_blocks,
        "allocations during handle"
    );
    assert_eq!(after.curr_bytes, before.curr_bytes, "heap grew");
    assert_eq!(server.rate_limiter().unwrap().heap_bytes(), table_bytes);
    assert_eq!(server.rate_limiter().unwrap().capacity(), 4096);
    assert_eq!(
        server.rate_limiter().unwrap().occupied(),
        4096,
        "table full, not grown"
    );
    assert!(answered > 900_000);
    assert!(xleaved > 900_000, "interleaved answers: {xleaved}");
    assert_eq!(server.interleave_heap_bytes(), xleave_bytes);
    assert!(server.counters().kiss.deny > 0, "the deny rules were hit");
    assert!(server.counters().authenticated > 200_000, "signed answers");
    assert!(server.counters().crypto_nak > 100_000, "crypto-NAK answers");
    assert!(server.counters().nts > 50_000, "NTS answers");
    assert!(server.counters().kiss.ntsn > 50_000, "NTS NAKs");
    assert_counters_balance(&server);
}

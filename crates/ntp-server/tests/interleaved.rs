//! The interleaved client/server mode (RFC 9769, section 2) as chronyd's
//! `xleave` client drives it: a first request in basic mode, then requests
//! whose origin timestamp is the receive timestamp of our last answer and
//! whose receive timestamp is the client's receive time of it.

#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

mod common;

use core::net::SocketAddr;

use common::*;
use ntp_proto::{Mode, Packet, Timestamp};
use ntp_server::{
    AccessAction, Action, ConfigError, Instant, Key, KeyId, KeyStore, KeyType,
    MAX_INTERLEAVE_CLIENTS, RateLimitConfig, Reply, Server, ServerConfig,
};

const CLIENT_T1: u64 = 0xeeac_9dad_1000_0000;

fn ts(seconds_after: u32) -> Timestamp {
    Timestamp::from_bits(0xeeac_9dae_0000_0000 + (u64::from(seconds_after) << 32))
}

/// A client request in the interleaved form: origin `origin` (our last
/// receive timestamp), receive `receive` (its receive time of our last
/// answer), transmit `CLIENT_T1`.
fn xleave_request(origin: Timestamp, receive: Timestamp) -> [u8; 48] {
    let mut bytes = request(0x23, 6, CLIENT_T1);
    bytes[24..32].copy_from_slice(&origin.to_bits().to_be_bytes());
    bytes[32..40].copy_from_slice(&receive.to_bits().to_be_bytes());
    bytes
}

/// Handles `request` received at `ts(at)`, finishes it with transmit
/// timestamp `ts(at + 1)`; returns the reply and the datagram's header
/// fields (origin, receive, transmit), and the datagram.
fn exchange(
    server: &mut Server,
    request: &[u8],
    from: SocketAddr,
    at: u32,
) -> (Reply, [Timestamp; 3], Vec<u8>) {
    let mut out = [0u8; 1500];
    let Action::Respond(reply) = server.handle(request, from, ts(at), Instant::ZERO, &mut out)
    else {
        panic!("dropped");
    };
    let datagram = server.finish(&reply, &mut out, ts(at + 1)).to_vec();
    let packet = Packet::new_checked(&datagram[..48]).unwrap();
    let fields = [
        packet.origin_timestamp(),
        packet.receive_timestamp(),
        packet.transmit_timestamp(),
    ];
    (reply, fields, datagram)
}

/// [`exchange`], then the answer is reported to have left at its stamp.
fn reported(server: &mut Server, request: &[u8], from: SocketAddr, at: u32) -> Reply {
    let (reply, _, _) = exchange(server, request, from, at);
    server.transmitted(from, &reply, ts(at + 1));
    reply
}

#[test]
fn a_client_asking_for_it_gets_the_transmit_time_of_the_previous_answer() {
    let mut server = open_server();
    let from = client("192.0.2.7:40000");
    // First exchange: basic.
    let first = request(0x23, 6, CLIENT_T1);
    let (reply, [origin, receive, transmit], _) = exchange(&mut server, &first, from, 0);
    assert!(!reply.interleaved());
    assert_eq!(origin, Timestamp::from_bits(CLIENT_T1));
    assert_eq!((receive, transmit), (ts(0), ts(1)));
    // The kernel says the answer left 20 us after it was stamped.
    let kernel_tx = Timestamp::from_bits(ts(1).to_bits() + 85_899);
    server.transmitted(from, &reply, kernel_tx);
    // Second exchange, from another port (chronyd changes it): origin is
    // our receive timestamp, receive the client's T4.
    let client_t4 = ts(2);
    let second = xleave_request(ts(0), client_t4);
    let later = client("192.0.2.7:40001");
    let (reply, [origin, receive, transmit], _) = exchange(&mut server, &second, later, 64);
    assert!(reply.interleaved());
    assert_eq!(reply.mode(), Mode::Server);
    // The client recognises the interleaved answer by its origin.
    assert_eq!(origin, client_t4);
    assert_eq!(receive, ts(64));
    // `finish` left the previous answer's transmit time in place.
    assert_eq!(transmit, kernel_tx);
    // Unreported, the next one is basic; then interleaved again.
    let third = xleave_request(ts(64), ts(66));
    let (reply, [origin, _, transmit], _) = exchange(&mut server, &third, from, 128);
    assert!(!reply.interleaved());
    assert_eq!(
        (origin, transmit),
        (Timestamp::from_bits(CLIENT_T1), ts(129))
    );
    server.transmitted(from, &reply, ts(129));
    let fourth = xleave_request(ts(128), ts(130));
    let (reply, [_, _, transmit], _) = exchange(&mut server, &fourth, from, 192);
    assert!(reply.interleaved());
    assert_eq!(transmit, ts(129));
}

#[test]
fn other_clients_stale_origins_and_basic_clients_get_basic_answers() {
    let mut server = open_server();
    let from = client("192.0.2.7:40000");
    reported(&mut server, &request(0x23, 6, CLIENT_T1), from, 0);
    // Another address with the same origin: not its exchange.
    let other = client("198.51.100.9:123");
    let (reply, [origin, ..], _) = exchange(&mut server, &xleave_request(ts(0), ts(2)), other, 3);
    assert!(!reply.interleaved());
    assert_eq!(origin, Timestamp::from_bits(CLIENT_T1));
    // An RFC 5905 client puts our transmit timestamp in its origin.
    let (reply, _, _) = exchange(&mut server, &xleave_request(ts(1), ts(2)), from, 5);
    assert!(!reply.interleaved());
    server.transmitted(from, &reply, ts(6));
    // A stale origin (an older receive timestamp).
    let (reply, _, _) = exchange(&mut server, &xleave_request(ts(0), ts(7)), from, 8);
    assert!(!reply.interleaved());
}

#[test]
fn signed_interleaved_answers_verify() {
    let mut server = open_server();
    let key = Key::new(KeyId::new(1).unwrap(), KeyType::Aes128Cmac, &[3; 16]).unwrap();
    let mut keys = KeyStore::<1>::new();
    keys.insert(key.clone()).unwrap();
    server.set_keys(&keys);
    let signed = |header: [u8; 48]| {
        let mut buffer = [0u8; 68];
        buffer[..48].copy_from_slice(&header);
        key.sign_in_place(&mut buffer, 48).unwrap();
        buffer
    };
    let from = client("192.0.2.7:40000");
    reported(&mut server, &signed(request(0x23, 6, CLIENT_T1)), from, 0);
    let (reply, [_, _, transmit], datagram) =
        exchange(&mut server, &signed(xleave_request(ts(0), ts(2))), from, 64);
    assert!(reply.interleaved() && reply.key_id().is_some());
    assert_eq!(transmit, ts(1));
    let mut check = [0u8; 20];
    let len = key
        .sign(datagram[..48].try_into().unwrap(), &mut check)
        .unwrap();
    assert_eq!(&datagram[48..48 + len], &check[..len]);
    // A request whose MAC fails gets a crypto-NAK and leaves the state.
    let mut forged = signed(xleave_request(ts(64), ts(66)));
    forged[60] ^= 1;
    let (reply, _, _) = exchange(&mut server, &forged, from, 100);
    assert!(reply.crypto_nak() && !reply.interleaved());
    server.transmitted(from, &reply, ts(101));
    let (reply, [_, _, transmit], _) = exchange(
        &mut server,
        &signed(xleave_request(ts(64), ts(66))),
        from,
        128,
    );
    assert!(
        !reply.interleaved(),
        "the report of the refused request was not kept"
    );
    assert_eq!(transmit, ts(129));
}

#[test]
fn symmetric_requests_kisses_and_a_server_without_the_table_are_basic() {
    let from = client("192.0.2.7:40000");
    // Symmetric active: never interleaved.
    let mut server = open_server();
    reported(&mut server, &request(0x21, 6, CLIENT_T1), from, 0);
    let mut symmetric = xleave_request(ts(0), ts(2));
    symmetric[0] = 0x21;
    let (reply, _, _) = exchange(&mut server, &symmetric, from, 64);
    assert!(!reply.interleaved() && !reply.keeps_transmit_time());
    // A client request's answer is kept for the next.
    let (reply, _, _) = exchange(&mut server, &request(0x23, 6, CLIENT_T1), from, 128);
    assert!(reply.keeps_transmit_time());
    // No table.
    let mut config = config(AccessAction::Allow, RateLimitConfig::default());
    config.interleave_clients = 0;
    let mut server = Server::new(&config, primary()).unwrap();
    assert_eq!(server.interleave_heap_bytes(), 0);
    reported(&mut server, &request(0x23, 6, CLIENT_T1), from, 0);
    let (reply, _, _) = exchange(&mut server, &xleave_request(ts(0), ts(2)), from, 64);
    assert!(!reply.interleaved() && !reply.keeps_transmit_time());
    // Too large.
    let mut config = ServerConfig::default();
    config.interleave_clients = MAX_INTERLEAVE_CLIENTS + 1;
    assert_eq!(
        Server::new(&config, primary()).err(),
        Some(ConfigError::InterleaveClients(MAX_INTERLEAVE_CLIENTS + 1))
    );
    // Denied clients get a kiss, which is never interleaved.
    let mut server = Server::new(
        &common::config(AccessAction::Deny, RateLimitConfig::default()),
        primary(),
    )
    .unwrap();
    let (reply, _, _) = exchange(&mut server, &request(0x23, 6, CLIENT_T1), from, 0);
    assert!(reply.kiss().is_some() && !reply.interleaved() && !reply.keeps_transmit_time());
}

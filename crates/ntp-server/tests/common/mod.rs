//! Helpers shared by the integration tests (`mod common;`).

#![allow(dead_code, reason = "each test file uses a subset")]

use core::net::SocketAddr;

use ntp_proto::{LeapIndicator, RefId, ShortTime, Stratum, SystemState, Timestamp};
use ntp_server::{AccessAction, Action, Instant, RateLimitConfig, Server, ServerConfig};

#[allow(unused_imports, reason = "each test file uses a subset")]
pub(crate) use ntp_vectors::{Vector, all as vectors};

/// The one vector whose comment contains `needle`.
pub(crate) fn vector(all: &[Vector], needle: &str) -> Vec<u8> {
    let found: Vec<_> = all.iter().filter(|v| v.comment.contains(needle)).collect();
    assert_eq!(found.len(), 1, "exactly one vector matches {needle:?}");
    found[0].bytes.clone()
}

/// A synchronized primary server state.
pub(crate) fn primary() -> SystemState {
    SystemState {
        leap: LeapIndicator::NoWarning,
        stratum: Stratum::PRIMARY,
        precision: -20,
        root_delay: ShortTime::ZERO,
        root_dispersion: ShortTime::from_bits(0x0000_0010),
        reference_id: RefId::LOCL,
        reference_time: Timestamp::from_bits(0xeeac_9d00_0000_0000),
    }
}

/// A configuration with `default` for everyone and the given limiter.
pub(crate) fn config(default: AccessAction, rate: RateLimitConfig) -> ServerConfig {
    {
        let mut config = ServerConfig::default();
        config.acl_default = default;
        config.rate_limit = rate;
        config
    }
}

/// A server answering everyone without limits.
pub(crate) fn open_server() -> Server {
    Server::new(
        &config(AccessAction::Allow, RateLimitConfig::default()),
        primary(),
    )
    .unwrap()
}

/// A minimal NTPv4 client request (the data-minimization draft's form)
/// with transmit timestamp `xmt` and poll `poll`.
pub(crate) fn request(first_octet: u8, poll: i8, xmt: u64) -> [u8; 48] {
    let mut bytes = [0u8; 48];
    bytes[0] = first_octet;
    bytes[2] = poll.to_be_bytes()[0];
    bytes[3] = 0x20;
    bytes[40..].copy_from_slice(&xmt.to_be_bytes());
    bytes
}

pub(crate) const RX: Timestamp = Timestamp::from_bits(0xeeac_9dae_0062_416b);
pub(crate) const TX: Timestamp = Timestamp::from_bits(0xeeac_9dae_0067_a974);

pub(crate) fn client(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Runs one request; returns the action and the finished datagram.
pub(crate) fn run(
    server: &mut Server,
    request: &[u8],
    from: SocketAddr,
    now: Instant,
) -> (Action, Vec<u8>) {
    let mut out = [0xa5u8; 1500];
    let action = server.handle(request, from, RX, now, &mut out);
    let datagram = match action {
        Action::Respond(reply) => reply.finish(&mut out, TX).to_vec(),
        _ => Vec::new(),
    };
    (action, datagram)
}

/// The counters add up: every request counted once.
pub(crate) fn assert_counters_balance(server: &Server) {
    let c = server.counters();
    assert_eq!(
        c.received,
        c.answered + c.kiss.total() + c.dropped.total(),
        "{c}"
    );
}

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

/// The header of a response.
pub(crate) fn parse(datagram: &[u8]) -> ntp_proto::Repr {
    ntp_proto::Repr::parse(&ntp_proto::Packet::new_checked(datagram).unwrap()).unwrap()
}

/// Checks every field of an answer against RFC 5905's `fast_xmit()`
/// (appendix A.5.3): the version and poll of the request, `mode`, the
/// system variables of `state`, origin = the request's transmit timestamp
/// `xmt`, receive and transmit = [`RX`] and [`TX`].
pub(crate) fn assert_fast_xmit(
    r: &ntp_proto::Repr,
    state: &SystemState,
    version: u8,
    mode: ntp_proto::Mode,
    poll: i8,
    xmt: u64,
) {
    assert_eq!(r.leap, state.leap);
    assert_eq!(r.version.to_bits(), version);
    assert_eq!(r.mode, mode);
    assert_eq!(r.stratum, state.stratum);
    assert_eq!(r.poll, poll);
    assert_eq!(r.precision, state.precision);
    assert_eq!(r.root_delay, state.root_delay);
    assert_eq!(r.root_dispersion, state.root_dispersion);
    assert_eq!(r.reference_id, state.reference_id);
    assert_eq!(r.reference_timestamp, state.reference_time);
    assert_eq!(r.origin_timestamp, Timestamp::from_bits(xmt));
    assert_eq!(r.receive_timestamp, RX);
    assert_eq!(r.transmit_timestamp, TX);
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
        Action::Respond(reply) => server.finish(&reply, &mut out, TX).to_vec(),
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

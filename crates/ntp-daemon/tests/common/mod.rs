//! Helpers shared by the daemon's integration tests: a free port and an
//! SNTP query of the daemon's server.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test code; each test file uses a subset"
)]

use core::time::Duration;
use std::net::UdpSocket;
use std::time::SystemTime;

use ntp_client::ntp_proto::Date;
use rand_core::SeedableRng;

/// A free UDP port on 127.0.0.1 (released just before the daemon binds
/// it).
pub(crate) fn free_udp() -> core::net::SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One SNTP query of `to`, at most three tries of a second each.
pub(crate) fn query(to: core::net::SocketAddr) -> Option<ntp_client::Measurement> {
    query_with(to, &ntp_client::SntpConfig::default())
}

/// [`query`] under `config` (with its key, if any).
pub(crate) fn query_with(
    to: core::net::SocketAddr,
    config: &ntp_client::SntpConfig,
) -> Option<ntp_client::Measurement> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let wall = || Date::try_from(SystemTime::now()).unwrap();
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(5);
    for _ in 0..3 {
        let request = ntp_client::Request::new(&mut rng, wall());
        socket.send_to(&request.encode(config), to).unwrap();
        let mut buf = [0u8; 1024];
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            if let Ok(measurement) = request.check_response(&buf[..len], wall(), config) {
                return Some(measurement);
            }
        }
    }
    None
}

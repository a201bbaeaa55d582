//! `sntp::query` and `sntp::query_async` over real UDP on the loopback,
//! against `ntp-server` instances on their own threads and hand-made
//! servers that misbehave. Every wait is bounded; every socket is on the
//! loopback; the system clock is only read.

#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

#[allow(dead_code, reason = "shared with the demo, which uses all of it")]
#[path = "../../../examples/demo/src/clock.rs"]
mod clock;
#[allow(dead_code, reason = "shared with the demo, which uses all of it")]
#[path = "../../../examples/demo/src/servers.rs"]
mod servers;

use core::net::SocketAddr;
use core::time::Duration;
use std::net::UdpSocket;
use std::thread;

use ntp_client::sntp::{QueryError, ResponseError, query};
use ntp_client::{KissCode, Stratum};
use ntp_proto::{Packet, Repr};
use ntp_server::AccessAction;

use crate::clock::TrueTime;
use crate::servers::{RunningServer, ServerSpec};

/// Longest any query may take here; a passing query takes milliseconds.
const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn query_measures_a_server_on_the_loopback() {
    let truth = TrueTime::start();
    let ahead = RunningServer::start(ServerSpec::primary("ahead", b"GPS", 25.0), truth).unwrap();
    let m = query(ahead.addr(), TIMEOUT).unwrap();
    // The server's clock is 25 ms ahead of true time, ours is true time
    // (the system clock read by both): the offset is 25 ms within half
    // the loopback delay.
    assert!(
        (m.offset - 0.025).abs() <= m.delay / 2.0 + 1e-4,
        "offset {} s, delay {} s",
        m.offset,
        m.delay
    );
    assert_eq!(m.stratum, Stratum::PRIMARY);
    assert_eq!(ahead.stop().unwrap().answered, 1);
}

#[test]
fn query_resolves_a_name_and_tries_every_address() {
    // "localhost" may resolve to ::1 before 127.0.0.1; the server listens
    // on 127.0.0.1 only, so the ::1 attempt fails (port unreachable) and
    // the next address answers.
    let truth = TrueTime::start();
    let server = RunningServer::start(ServerSpec::primary("local", b"GPS", 0.0), truth).unwrap();
    let port = server.addr().port();
    let m = query(("localhost", port), TIMEOUT).unwrap();
    assert!(m.offset.abs() < 0.01, "offset {} s", m.offset);
    let m = query(format!("localhost:{port}").as_str(), TIMEOUT).unwrap();
    assert!(m.offset.abs() < 0.01, "offset {} s", m.offset);
    server.stop();
    assert!(matches!(
        query("no-such-host.invalid:123", TIMEOUT),
        Err(QueryError::Resolve(_))
    ));
}

#[test]
fn query_reports_a_kiss_of_death_as_refused() {
    let truth = TrueTime::start();
    let mut spec = ServerSpec::primary("denies", b"GPS", 0.0);
    spec.config.acl_default = AccessAction::Deny;
    let denies = RunningServer::start(spec, truth).unwrap();
    let error = query(denies.addr(), TIMEOUT).unwrap_err();
    assert!(
        matches!(
            error,
            QueryError::Refused(ResponseError::KissOfDeath(KissCode::Deny))
        ),
        "{error}"
    );
    assert_eq!(denies.stop().unwrap().kiss.deny, 1);
}

#[test]
fn query_keeps_waiting_past_a_stray_datagram_then_times_out() {
    // A server that answers every request with a packet whose origin is
    // wrong (a replay or a spoof): not the answer, so the query waits for
    // the real one and gives up at the timeout, naming what it ignored.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    let server = thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 512];
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        let request = Repr::parse(&Packet::new_checked(&buf[..len]).unwrap()).unwrap();
        let mut reply = request;
        reply.mode = ntp_proto::Mode::Server;
        reply.stratum = Stratum::new(2);
        // Wrong origin: not our nonce.
        reply.origin_timestamp =
            ntp_proto::Timestamp::from_bits(request.transmit_timestamp.to_bits().wrapping_add(1));
        socket.send_to(&reply.to_bytes(), from).unwrap();
    });
    let started = std::time::Instant::now();
    let error = query(address, Duration::from_millis(700)).unwrap_err();
    assert!(
        matches!(
            error,
            QueryError::Timeout {
                ignored: Some(ResponseError::OriginMismatch)
            }
        ),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert!(started.elapsed() < Duration::from_secs(5));
    server.join().unwrap();
}

#[test]
fn query_to_a_closed_port_says_nothing_listens() {
    // Bind then drop: the port is very probably closed now.
    let address: SocketAddr = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = query(address, TIMEOUT).unwrap_err();
    assert!(
        matches!(
            error,
            QueryError::PortUnreachable | QueryError::Timeout { .. }
        ),
        "{error}"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn query_async_measures_a_server_on_the_loopback() {
    let truth = TrueTime::start();
    let behind = RunningServer::start(ServerSpec::primary("behind", b"PPS", -40.0), truth).unwrap();
    let m = ntp_client::sntp::query_async(behind.addr(), TIMEOUT)
        .await
        .unwrap();
    assert!(
        (m.offset + 0.040).abs() <= m.delay / 2.0 + 1e-4,
        "offset {} s, delay {} s",
        m.offset,
        m.delay
    );
    let port = behind.addr().port();
    let m = ntp_client::sntp::query_async(("localhost", port), TIMEOUT)
        .await
        .unwrap();
    assert!((m.offset + 0.040).abs() < 0.01, "offset {} s", m.offset);
    behind.stop();
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn query_async_times_out_on_a_silent_server() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    let started = std::time::Instant::now();
    let error = ntp_client::sntp::query_async(address, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(error, QueryError::Timeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(socket);
}

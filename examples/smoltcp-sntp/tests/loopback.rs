//! The `no_std` SNTP client of this crate against `ntp-server`'s core, both
//! on one smoltcp interface over its `Loopback` device (127.0.0.1/8): no
//! OS socket, virtual time, bounded loops.
//!
//! Time advances in ticks of 250 µs. Each tick polls the interface once
//! (ingress, then egress) and then lets the client and the server read
//! their sockets. A datagram queued in one tick leaves at the next poll and
//! arrives at the one after: two ticks (500 µs) each way, so the round
//! trip is 1 ms and the paths are symmetric, and the measured offset is
//! exactly the server's lead over the client's clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use core::net::{IpAddr, SocketAddr};

use ntp_client::sntp::{Measurement, Request, ResponseError};
use ntp_client::{
    Date, KissCode, LeapIndicator, NtpDuration, RefId, ShortTime, Stratum, SystemState, Timestamp,
};
use ntp_server::{AccessAction, Action, Server, ServerConfig};
use ntp_smoltcp_example::{SntpError, SntpOverSmoltcp};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::udp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint};

const LOCALHOST: IpAddress = IpAddress::v4(127, 0, 0, 1);
const SERVER: IpEndpoint = IpEndpoint::new(LOCALHOST, 123);
const CLIENT_PORT: u16 = 49_123;
/// A third party on the same host, for stray datagrams.
const STRANGER_PORT: u16 = 49_999;
const NONCE: u64 = 0x0123_4567_89ab_cdef;
const TICK: Duration = Duration::from_micros(250);
/// The server's clock runs this far ahead of the client's model clock.
const SERVER_AHEAD_NANOS: i64 = 25_000_000;
/// 5 s of virtual time: past the client's 4 s reply timeout.
const MAX_TICKS: u32 = 20_000;

/// The client's wall clock at smoltcp's `now`.
fn client_date(now: Instant) -> Date {
    Date::from_unix(1_800_000_000, 0)
        .unwrap()
        .checked_add(NtpDuration::from_nanos(now.total_micros() * 1_000))
        .unwrap()
}

/// The server's wall clock at smoltcp's `now`.
fn server_date(now: Instant) -> Date {
    client_date(now)
        .checked_add(NtpDuration::from_nanos(SERVER_AHEAD_NANOS))
        .unwrap()
}

/// A synchronized stratum-1 server, its clock set a minute ago.
fn server_state(now: Instant) -> SystemState {
    SystemState {
        leap: LeapIndicator::NoWarning,
        stratum: Stratum::new(1),
        precision: -20,
        root_delay: ShortTime::ZERO,
        root_dispersion: ShortTime::from_seconds_f64(0.001).unwrap(),
        reference_id: RefId::new(*b"GPS\0"),
        reference_time: Timestamp::from(
            server_date(now)
                .checked_sub(NtpDuration::from_nanos(60_000_000_000))
                .unwrap(),
        ),
    }
}

/// The default server configuration, but `action` for every client.
// Field by field: the struct-update syntax would break the day
// `ServerConfig` becomes `#[non_exhaustive]` like the client's configs.
#[allow(
    clippy::field_reassign_with_default,
    reason = "robust to a non-exhaustive ServerConfig"
)]
fn acl_default(action: AccessAction) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.acl_default = action;
    config
}

fn udp_socket() -> udp::Socket<'static> {
    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4 * 64]);
    udp::Socket::new(buffer(), buffer())
}

/// What the server side does with each answer of its core.
#[derive(Clone, Copy, PartialEq)]
enum Serve {
    /// Send it.
    Honest,
    /// Before the request arrives, send two strays to the client's port:
    /// an answer to another nonce from the server's port, and an answer
    /// to our nonce from another port. Then answer honestly.
    StraysFirst,
}

/// One interface on the loopback device with three sockets: the client,
/// the server and a stranger.
struct Rig {
    device: Loopback,
    iface: Interface,
    sockets: SocketSet<'static>,
    client: SocketHandle,
    server: SocketHandle,
    stranger: SocketHandle,
    core: Server,
    serve: Serve,
}

impl Rig {
    fn new(config: &ServerConfig, serve: Serve) -> Self {
        let mut device = Loopback::new(Medium::Ip);
        let mut iface =
            Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
        iface.update_ip_addrs(|addrs| addrs.push(IpCidr::new(LOCALHOST, 8)).unwrap());
        let mut sockets = SocketSet::new(Vec::new());
        let client = sockets.add(udp_socket());
        let mut server_socket = udp_socket();
        server_socket.bind(SERVER.port).unwrap();
        let server = sockets.add(server_socket);
        let mut stranger_socket = udp_socket();
        stranger_socket.bind(STRANGER_PORT).unwrap();
        let stranger = sockets.add(stranger_socket);
        let core = Server::new(config, server_state(Instant::ZERO)).unwrap();
        Self {
            device,
            iface,
            sockets,
            client,
            server,
            stranger,
            core,
            serve,
        }
    }

    fn client_socket(&mut self) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket>(self.client)
    }

    /// The server's turn: answer every waiting request through the core.
    fn serve(&mut self, now: Instant) {
        let core_now = ntp_server::Instant::from_nanos(now.total_micros().unsigned_abs() * 1_000);
        let mut out = [0u8; 48];
        let mut replies = Vec::new();
        let socket = self.sockets.get_mut::<udp::Socket>(self.server);
        while let Ok((data, meta)) = socket.recv() {
            let from = SocketAddr::new(IpAddr::from(meta.endpoint.addr), meta.endpoint.port);
            let rx_time = Timestamp::from(server_date(now));
            if let Action::Respond(reply) =
                self.core.handle(data, from, rx_time, core_now, &mut out)
            {
                // No time passes inside the server: T3 = T2.
                let tx_time = Timestamp::from(server_date(now));
                let datagram = self.core.finish(&reply, &mut out, tx_time);
                replies.push((datagram.to_vec(), meta.endpoint));
            }
        }
        if self.serve == Serve::StraysFirst && replies.is_empty() {
            self.serve = Serve::Honest;
            let client = IpEndpoint::new(LOCALHOST, CLIENT_PORT);
            let stray = |core: &mut Server, nonce: u64| {
                let request = Request::with_nonce(nonce, client_date(now)).to_bytes();
                let from = SocketAddr::new(IpAddr::from(LOCALHOST), CLIENT_PORT);
                let rx_time = Timestamp::from(server_date(now));
                let mut out = [0u8; 48];
                let Action::Respond(reply) =
                    core.handle(&request, from, rx_time, core_now, &mut out)
                else {
                    panic!("the server core must answer");
                };
                core.finish(&reply, &mut out, rx_time).to_vec()
            };
            let other_origin = stray(&mut self.core, NONCE ^ 1);
            let from_elsewhere = stray(&mut self.core, NONCE);
            self.sockets
                .get_mut::<udp::Socket>(self.server)
                .send_slice(&other_origin, client)
                .unwrap();
            self.sockets
                .get_mut::<udp::Socket>(self.stranger)
                .send_slice(&from_elsewhere, client)
                .unwrap();
        }
        let server = self.sockets.get_mut::<udp::Socket>(self.server);
        for (datagram, to) in replies {
            server.send_slice(&datagram, to).unwrap();
        }
    }

    /// Runs one exchange from `start` on, at most `MAX_TICKS` ticks.
    /// Returns the result and the instant it came.
    fn exchange(
        &mut self,
        sntp: &mut SntpOverSmoltcp,
        start: Instant,
    ) -> (Result<Measurement, SntpError>, Instant) {
        let request = sntp
            .start(self.client_socket(), NONCE, client_date(start), start)
            .unwrap();
        assert_eq!(request.t1(), client_date(start));
        let mut now = start;
        for _ in 0..MAX_TICKS {
            now += TICK;
            self.iface.poll(now, &mut self.device, &mut self.sockets);
            let polled = sntp.poll(self.client_socket(), client_date(now), now);
            match polled {
                Ok(None) => {}
                Ok(Some(measurement)) => return (Ok(measurement), now),
                Err(error) => return (Err(error), now),
            }
            self.serve(now);
        }
        panic!("no outcome in {MAX_TICKS} ticks");
    }
}

#[test]
fn measures_the_offset_and_delay_of_the_server() {
    let mut rig = Rig::new(&ServerConfig::default(), Serve::Honest);
    let mut sntp = SntpOverSmoltcp::new(SERVER, CLIENT_PORT);
    let start = Instant::from_millis(10);
    let (result, end) = rig.exchange(&mut sntp, start);
    let m = result.unwrap();
    // Two ticks each way.
    assert_eq!(end - start, TICK * 4);
    assert!((m.offset - 0.025).abs() < 1e-9, "offset {}", m.offset);
    assert!((m.delay - 0.001).abs() < 1e-9, "delay {}", m.delay);
    assert_eq!((m.t1, m.t4), (client_date(start), client_date(end)));
    let t2 = Timestamp::from(server_date(start + TICK * 2));
    assert_eq!((m.t2, m.t3), (t2, t2));
    assert_eq!(m.stratum, Stratum::new(1));
    assert_eq!(m.reference_id, RefId::new(*b"GPS\0"));
    assert!(m.root_distance() < 0.01);
    assert_eq!(sntp.ignored(), 0);
    assert!(!sntp.is_pending());
    assert_eq!(rig.core.counters().answered, 1);
    // The exchange is over; a second one on the same socket works too.
    assert_eq!(
        sntp.poll(rig.client_socket(), client_date(end), end),
        Err(SntpError::Idle)
    );
    let (again, _) = rig.exchange(&mut sntp, end + Duration::from_secs(16));
    assert!((again.unwrap().offset - 0.025).abs() < 1e-9);
}

#[test]
fn a_denying_server_is_a_kiss_of_death() {
    let mut rig = Rig::new(&acl_default(AccessAction::Deny), Serve::Honest);
    let mut sntp = SntpOverSmoltcp::new(SERVER, CLIENT_PORT);
    let (result, _) = rig.exchange(&mut sntp, Instant::ZERO);
    assert_eq!(
        result,
        Err(SntpError::Response(ResponseError::KissOfDeath(
            KissCode::Deny
        )))
    );
    assert_eq!(rig.core.counters().kiss.deny, 1);
    assert!(!sntp.is_pending());
}

#[test]
fn wrong_origin_and_strangers_are_ignored() {
    let mut rig = Rig::new(&ServerConfig::default(), Serve::StraysFirst);
    let mut sntp = SntpOverSmoltcp::new(SERVER, CLIENT_PORT);
    let (result, end) = rig.exchange(&mut sntp, Instant::ZERO);
    let m = result.unwrap();
    assert_eq!(end - Instant::ZERO, TICK * 4);
    assert!((m.offset - 0.025).abs() < 1e-9, "offset {}", m.offset);
    assert!((m.delay - 0.001).abs() < 1e-9, "delay {}", m.delay);
    // Both strays came a tick before the answer.
    assert_eq!(sntp.ignored(), 2);
    assert_eq!(rig.core.counters().answered, 3);
}

#[test]
fn a_silent_server_times_out() {
    let mut rig = Rig::new(&acl_default(AccessAction::Ignore), Serve::Honest);
    let mut sntp = SntpOverSmoltcp::new(SERVER, CLIENT_PORT).with_timeout(Duration::from_secs(1));
    let start = Instant::from_millis(3);
    let (result, end) = rig.exchange(&mut sntp, start);
    assert_eq!(result, Err(SntpError::Timeout));
    assert_eq!(end - start, Duration::from_secs(1));
    assert_eq!(rig.core.counters().received, 1);
    assert_eq!(sntp.ignored(), 0);
}

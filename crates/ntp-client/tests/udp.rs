//! The client core over real UDP on 127.0.0.1, against `ntp-server`
//! instances on their own threads (the demo's server module): the SNTP
//! one-shot layer, and the full `System` with its sources, selection and
//! discipline steering a model clock. Every loop is bounded by a deadline;
//! every socket is on 127.0.0.1; the system clock is only read.

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
use std::io;
use std::net::UdpSocket;

use ntp_client::sntp::{Measurement, Request, ResponseError, SntpConfig};
use ntp_client::{
    Event, Input, Instant, Output, SourceEvent, SourceId, System, SystemConfig, Tally,
};
use ntp_proto::{KissCode, LeapIndicator, NtpDuration, RefId, Stratum};
use ntp_server::AccessAction;
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;

use crate::clock::{ModelClock, TrueTime};
use crate::servers::{RunningServer, ServerSpec};

/// How long any single wait may last before the test gives up. Generous:
/// the machine may be loaded; a passing run takes far less.
const GENEROUS: Duration = Duration::from_secs(10);

fn ms(seconds: f64) -> f64 {
    seconds * 1e3
}

/// One SNTP exchange from `socket` to `server`, with T1 and T4 read from
/// `clock`; datagrams from elsewhere, or failing the origin check, are
/// skipped until the deadline (RFC 4330: one request, no resend).
fn sntp_query(
    socket: &UdpSocket,
    server: SocketAddr,
    clock: &ModelClock,
    seed: u64,
) -> Result<Measurement, ResponseError> {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let request = Request::new(&mut rng, clock.now());
    socket.send_to(&request.to_bytes(), server).unwrap();
    let deadline = std::time::Instant::now() + GENEROUS;
    let mut buf = [0u8; 1024];
    let mut last = ResponseError::Truncated { len: 0 };
    while let Some(left) = deadline
        .checked_duration_since(std::time::Instant::now())
        .filter(|d| !d.is_zero())
    {
        socket.set_read_timeout(Some(left)).unwrap();
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            // A signal interrupted the wait: keep waiting.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let t4 = clock.now();
        if from != server {
            continue;
        }
        match request.check_response(&buf[..len], t4, &SntpConfig::default()) {
            Err(ResponseError::OriginMismatch) => last = ResponseError::OriginMismatch,
            result => return result,
        }
    }
    panic!("no answer from {server} within {GENEROUS:?} (last refusal: {last:?})");
}

#[test]
fn sntp_measures_the_offset_of_servers_ahead_and_behind() {
    let truth = TrueTime::start();
    let ahead = RunningServer::start(ServerSpec::primary("ahead", b"GPS", 37.0), truth).unwrap();
    let behind =
        RunningServer::start(ServerSpec::primary("behind", b"PPS", -120.0), truth).unwrap();
    // Our clock is true time, so the offsets are the servers' own.
    let clock = ModelClock::new(truth, NtpDuration::ZERO, 0.0);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (seed, server, expected_ms, refid) in
        [(1, &ahead, 37.0, b"GPS"), (2, &behind, -120.0, b"PPS")]
    {
        let m = sntp_query(&socket, server.addr(), &clock, seed).unwrap();
        // On the loopback the path is symmetric, so the error of the
        // offset is below half the delay, which is well under 5 ms even on
        // a loaded machine.
        assert!(m.delay >= 0.0 && m.delay < 0.5, "delay {} s", m.delay);
        let error = ms(m.offset) - expected_ms;
        assert!(
            error.abs() <= ms(m.delay) / 2.0 + 0.1,
            "offset {} ms, expected {expected_ms} ms (delay {} ms)",
            ms(m.offset),
            ms(m.delay)
        );
        assert_eq!(m.stratum, Stratum::PRIMARY);
        assert_eq!(m.reference_id, RefId::from_ascii(refid).unwrap());
        assert_eq!(m.leap, LeapIndicator::NoWarning);
        assert_eq!(m.precision, -20);
        // The server's timestamps are on its own (offset) clock, in order.
        assert!(!(m.t3 - m.t2).is_negative());
    }
    assert_eq!(ahead.stop().unwrap().answered, 1);
    assert_eq!(behind.stop().unwrap().answered, 1);
}

#[test]
fn sntp_reports_a_kiss_of_death_and_refuses_a_spoofed_answer() {
    let truth = TrueTime::start();
    let mut spec = ServerSpec::primary("denies", b"GPS", 0.0);
    spec.config.acl_default = AccessAction::Deny;
    let denies = RunningServer::start(spec, truth).unwrap();
    let clock = ModelClock::new(truth, NtpDuration::ZERO, 0.0);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        sntp_query(&socket, denies.addr(), &clock, 3).unwrap_err(),
        ResponseError::KissOfDeath(KissCode::Deny)
    );
    assert_eq!(denies.stop().unwrap().kiss.deny, 1);

    // An honest server's answer replayed to a later request does not match
    // that request's nonce.
    let honest = RunningServer::start(ServerSpec::primary("honest", b"GPS", 0.0), truth).unwrap();
    let mut rng = ChaCha12Rng::seed_from_u64(4);
    let first = Request::new(&mut rng, clock.now());
    socket.send_to(&first.to_bytes(), honest.addr()).unwrap();
    socket.set_read_timeout(Some(GENEROUS)).unwrap();
    let mut answer = [0u8; 1024];
    let (len, _) = loop {
        match socket.recv_from(&mut answer) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            received => break received.unwrap(),
        }
    };
    let second = Request::new(&mut rng, clock.now());
    assert_ne!(first.nonce(), second.nonce());
    let config = SntpConfig::default();
    assert_eq!(
        second.check_response(&answer[..len], clock.now(), &config),
        Err(ResponseError::OriginMismatch)
    );
    assert!(
        first
            .check_response(&answer[..len], clock.now(), &config)
            .is_ok()
    );
    honest.stop();
}

/// A client `System` on its own 127.0.0.1 socket, steering a model clock.
struct Client {
    system: System<ChaCha12Rng>,
    socket: UdpSocket,
    clock: ModelClock,
    origin: std::time::Instant,
    buf: Vec<u8>,
    events: Vec<Event>,
    sent: Vec<(std::time::Instant, SocketAddr)>,
}

impl Client {
    fn new(config: SystemConfig, clock: ModelClock, seed: u64) -> Self {
        let origin = std::time::Instant::now();
        let system = System::new(
            config,
            Instant::ZERO,
            clock.now(),
            ChaCha12Rng::seed_from_u64(seed),
        )
        .unwrap();
        Self {
            system,
            socket: UdpSocket::bind("127.0.0.1:0").unwrap(),
            clock,
            origin,
            buf: Vec::with_capacity(48),
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn mono(&self) -> Instant {
        Instant::from_std(self.origin, std::time::Instant::now())
    }

    /// Drains the output: sends requests, applies clock actions, records
    /// events. Returns the core's next timeout.
    fn drain(&mut self) -> Instant {
        loop {
            match self
                .system
                .poll_output(self.mono(), self.clock.now(), &mut self.buf)
            {
                Output::Transmit {
                    destination, len, ..
                } => {
                    self.socket.send_to(&self.buf[..len], destination).unwrap();
                    self.sent.push((std::time::Instant::now(), destination));
                }
                Output::Event(event) => {
                    match event {
                        Event::ClockStep(offset) => self.clock.step(offset),
                        Event::ClockAdjust(adjust) => self.clock.set_correction(adjust.rate()),
                        _ => {}
                    }
                    self.events.push(event);
                }
                Output::Timeout(at) => return at,
                _ => {}
            }
        }
    }

    /// Runs the loop until `done` holds (checked after every drain) or
    /// `limit` passes; returns whether `done` held.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut datagram = [0u8; 1024];
        loop {
            let wake = self.drain();
            if done(self) {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = wake
                .saturating_duration_since(self.mono())
                .min(deadline - now)
                .max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(wait)).unwrap();
            match self.socket.recv_from(&mut datagram) {
                Ok((len, from)) => {
                    let input = Input::Datagram {
                        from,
                        data: &datagram[..len],
                        rx_wall: self.clock.now(),
                    };
                    // Refused datagrams change nothing; the tests look at
                    // the outcome through the system's state.
                    let _ = self.system.handle_input(self.mono(), input);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    self.system.handle_timeout(self.mono());
                }
                Err(e) => panic!("receive failed: {e}"),
            }
        }
    }
}

/// The demo's configuration: poll 2 s, as if the frequency came from a
/// drift file (synchronize at the first update), fit only under 100 ms of
/// root distance (so that a liar 250 ms off never intersects an honest
/// server), at least two agreeing sources (so that it cannot win alone).
fn loopback_config() -> SystemConfig {
    let mut config = SystemConfig::default()
        .with_poll_range(1, 1)
        .with_initial_frequency(0.0);
    config.select.max_distance = 0.1;
    config.select.min_dispersion = 0.010;
    config.select.min_candidates = 2;
    config
}

#[test]
fn system_follows_three_honest_servers_and_marks_the_liar() {
    let truth = TrueTime::start();
    let honest_ms = [1.0, -1.0, 2.0];
    let mut servers: Vec<RunningServer> = honest_ms
        .iter()
        .zip(["alpha", "bravo", "charlie"])
        .map(|(&offset, name)| {
            RunningServer::start(ServerSpec::primary(name, b"GPS", offset), truth).unwrap()
        })
        .collect();
    servers.push(RunningServer::start(ServerSpec::primary("liar", b"GPS", 250.0), truth).unwrap());

    // Our clock starts on true time, so the combined offset should land
    // among the honest servers' offsets, far from the liar's 250 ms.
    let mut client = Client::new(
        loopback_config(),
        ModelClock::new(truth, NtpDuration::ZERO, 0.0),
        5,
    );
    let ids: Vec<SourceId> = servers
        .iter()
        .map(|s| client.system.add_source(s.addr()).unwrap())
        .collect();
    let liar = ids[3];
    // The default clock filter counts only real samples in a source's
    // dispersion, so every server is fit from its first answer and the
    // first selection (held until all four answered) already marks the
    // liar. The limit is generous for slow machines.
    let settled = client.run_until(Duration::from_secs(60), |c| {
        let honest_ok = ids[..3]
            .iter()
            .all(|&id| c.system.tally(id) != Some(Tally::Falseticker));
        c.system.is_synchronized()
            && c.system.tally(liar) == Some(Tally::Falseticker)
            && c.system.system_peer().is_some_and(|peer| peer != liar)
            && honest_ok
    });
    let table = client.system.peer_table(client.mono());
    assert!(
        settled,
        "not settled:\n{table}\nevents: {:?}",
        client.events
    );

    let peer = client.system.system_peer().unwrap();
    assert_ne!(peer, liar);
    let offset = client.system.offset();
    assert!(
        (-0.0015..=0.0025).contains(&offset),
        "combined offset {} ms, not among the honest servers'\n{table}",
        ms(offset)
    );
    // The table says the same: the liar `x` about 250 ms off, one `*`.
    let text = table.to_string();
    let liar_row = &table.rows[3];
    assert_eq!(liar_row.tally, Tally::Falseticker);
    assert!((liar_row.offset_ms.unwrap() - 250.0).abs() < 5.0, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with('*')).count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with('x')).count(),
        1,
        "{text}"
    );
    assert!(client.events.iter().any(|e| matches!(
        e,
        Event::Source { id, event: SourceEvent::Falseticker } if *id == liar
    )));
    assert!(
        client
            .events
            .iter()
            .any(|e| matches!(e, Event::Synchronized { .. }))
    );
    // No step: the clock started within the step threshold.
    assert!(
        !client
            .events
            .iter()
            .any(|e| matches!(e, Event::ClockStep(_)))
    );

    // The exported system variables: one stratum below the servers, the
    // system peer's address as reference id, its delay as root delay.
    let state = client.system.system_state();
    assert!(state.is_synchronized());
    assert_eq!(state.stratum, Stratum::new(2));
    assert_eq!(state.reference_id, RefId::from_ip(servers[0].addr().ip()));
    assert_eq!(state.leap, LeapIndicator::NoWarning);
    let root_delay = state.root_delay.to_seconds_f64();
    assert!(
        root_delay > 0.0 && root_delay < 0.1,
        "root delay {root_delay}"
    );

    // Served by an ntp-server, that state makes a secondary server: an
    // SNTP query reads stratum 2 and our reference id from it.
    let mut spec = ServerSpec::primary("secondary", b"GPS", 0.0);
    spec.state = state;
    let secondary = RunningServer::start(spec, truth).unwrap();
    let reader = ModelClock::new(truth, NtpDuration::ZERO, 0.0);
    let m = sntp_query(&client.socket, secondary.addr(), &reader, 6).unwrap();
    assert_eq!(m.stratum, Stratum::new(2));
    assert_eq!(m.reference_id, state.reference_id);
    assert_eq!(m.root_delay, state.root_delay);
    secondary.stop();

    for (server, id) in servers.into_iter().zip(ids) {
        let counters = server.stop().unwrap();
        let accepted = client.system.source(id).unwrap().replies_accepted();
        assert!(
            counters.answered >= 1 && accepted <= counters.answered,
            "{counters:?}, {accepted} accepted"
        );
    }
}

#[test]
fn system_stops_polling_a_server_that_denies_it() {
    let truth = TrueTime::start();
    let mut spec = ServerSpec::primary("denies", b"GPS", 0.0);
    spec.config.acl_default = AccessAction::Deny;
    let denies = RunningServer::start(spec, truth).unwrap();
    let mut client = Client::new(
        loopback_config(),
        ModelClock::new(truth, NtpDuration::ZERO, 0.0),
        7,
    );
    let id = client.system.add_source(denies.addr()).unwrap();
    let stopped = |c: &Client| {
        c.events.iter().any(|e| {
            matches!(e, Event::Source { id: i, event: SourceEvent::Stopped(KissCode::Deny) } if *i == id)
        })
    };
    assert!(client.run_until(GENEROUS, stopped), "{:?}", client.events);
    assert_eq!(
        client.system.source(id).unwrap().stopped_by(),
        Some(KissCode::Deny)
    );
    // Three more iburst intervals: nothing more goes out.
    let sent = client.sent.len();
    assert!(!client.run_until(Duration::from_secs(6), |c| c.sent.len() > sent));
    assert_eq!(client.sent.len(), 1, "{:?}", client.sent);
    let counters = denies.stop().unwrap();
    assert_eq!((counters.received, counters.kiss.deny), (1, 1));
    let table = client.system.peer_table(client.mono());
    assert_eq!(table.rows[0].refid, ".DENY.");
}

#[test]
fn system_spaces_requests_to_a_silent_server_by_two_seconds() {
    // A socket that never answers, recording when requests arrive.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    let listener = std::thread::spawn(move || {
        let mut arrivals = Vec::new();
        let mut buf = [0u8; 1024];
        let end = std::time::Instant::now() + Duration::from_secs(9);
        while let Some(left) = end
            .checked_duration_since(std::time::Instant::now())
            .filter(|d| !d.is_zero())
        {
            silent.set_read_timeout(Some(left)).unwrap();
            if let Ok((len, _)) = silent.recv_from(&mut buf) {
                arrivals.push((std::time::Instant::now(), len, buf[0]));
            }
        }
        arrivals
    });
    let truth = TrueTime::start();
    let mut client = Client::new(
        loopback_config(),
        ModelClock::new(truth, NtpDuration::ZERO, 0.0),
        8,
    );
    let id = client.system.add_source(address).unwrap();
    assert!(!client.run_until(
        Duration::from_secs(7),
        |c| c.system.source(id).unwrap().reach() != 0
    ));
    let arrivals = listener.join().unwrap();
    // iburst: one request at once, then one every 2 s: 4 in 7 s.
    assert_eq!(arrivals.len(), 4, "{arrivals:?}");
    for (_, len, first_octet) in &arrivals {
        assert_eq!((*len, *first_octet), (48, 0x23));
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1].0.duration_since(pair[0].0);
        // Never closer than 2 s; scheduling may add, never subtract, much.
        assert!(gap >= Duration::from_millis(1950), "gap {gap:?}");
    }
    assert_eq!(client.system.source(id).unwrap().requests_sent(), 4);
}

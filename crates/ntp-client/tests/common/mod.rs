//! A two-sided harness on virtual time (quinn's `Pair` shape): the client
//! [`System`] against simulated servers, with a simulated client clock that
//! the client's events steer, and a network with a fixed one-way delay.
//! Time jumps straight to the next timeout or delivery.

#![allow(dead_code, reason = "each test file uses a subset")]

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use ntp_client::{
    DatagramError, Event, Input, Instant, NtsKeFailed, NtsKeOutcome, Output, PoolId, ReplyOutcome,
    SourceId, System, SystemConfig,
};
use ntp_proto::{
    Date, LeapIndicator, Mode, NtpDuration, Packet, RefId, Repr, ShortTime, Stratum, SystemState,
    Timestamp, Version,
};
use ntp_server::{AccessAction, Action, RateLimitConfig, Server, ServerConfig};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;

/// 2025-12-01T00:00:00Z: true time zero of every simulation.
pub(crate) fn epoch() -> Date {
    Date::from_unix(1_764_547_200, 0).unwrap()
}

/// The client's address.
pub(crate) const CLIENT: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)), 40_123);

/// The address of simulated server `n`.
pub(crate) fn server_addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)), 123)
}

/// Seconds as a duration on the wire clock.
pub(crate) fn secs(seconds: f64) -> NtpDuration {
    NtpDuration::from_seconds_f64(seconds).unwrap()
}

/// A synchronized primary server state.
pub(crate) fn primary() -> SystemState {
    SystemState {
        leap: LeapIndicator::NoWarning,
        stratum: Stratum::PRIMARY,
        precision: -20,
        root_delay: ShortTime::ZERO,
        root_dispersion: ShortTime::from_seconds_f64(0.000_5).unwrap(),
        reference_id: RefId::from_ascii(b"GPS").unwrap(),
        reference_time: Timestamp::from(epoch()),
    }
}

/// A server core answering everyone.
pub(crate) fn open_server(state: SystemState) -> Server {
    server_with(AccessAction::Allow, state)
}

/// A server core with `action` for everyone.
pub(crate) fn server_with(action: AccessAction, state: SystemState) -> Server {
    let config = {
        let mut config = ServerConfig::default();
        config.acl_default = action;
        config.rate_limit = RateLimitConfig::default();
        config
    };
    Server::new(&config, state).unwrap()
}

/// A scripted server: request octets, server receive and transmit
/// timestamps in, response octets out.
pub(crate) type Script = Box<dyn FnMut(&[u8], Timestamp, Timestamp) -> Option<Vec<u8>>>;

/// Answers [`Output::NtsKe`]: the source, and the NTS-KE host and port it
/// names, in; the exchange's result out.
pub(crate) type KeScript = Box<dyn FnMut(SourceId, &str, u16) -> Result<NtsKeOutcome, NtsKeFailed>>;

/// How a simulated server behaves.
#[allow(clippy::large_enum_variant, reason = "a handful per test")]
pub(crate) enum Behaviour {
    /// An ntp-server core.
    Ntp(Server),
    /// Never answers.
    Dead,
    /// Answers as the script says.
    Script(Script),
}

/// One simulated server.
pub(crate) struct SimServer {
    pub(crate) address: SocketAddr,
    pub(crate) behaviour: Behaviour,
    /// How far its clock is ahead of true time, seconds.
    pub(crate) offset: f64,
    /// Requests it received.
    pub(crate) requests: Vec<Duration>,
}

/// A datagram on the wire.
struct InFlight {
    deliver_at: u64,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

/// The client's clock: true time plus a phase, which steps and runs at the
/// rate the discipline asks for.
pub(crate) struct SimClock {
    /// Phase (client clock minus true time) at `since`, seconds.
    phase: f64,
    since: u64,
    rate: f64,
    /// The oscillator's own frequency error (1e-6: 1 ppm fast).
    pub(crate) drift: f64,
}

impl SimClock {
    pub(crate) fn phase_at(&self, now: u64) -> f64 {
        let elapsed = nanos_to_secs(now.saturating_sub(self.since));
        self.phase + (self.rate + self.drift) * elapsed
    }

    fn settle(&mut self, now: u64) {
        self.phase = self.phase_at(now);
        self.since = now;
    }
}

pub(crate) fn nanos_to_secs(nanos: u64) -> f64 {
    Duration::from_nanos(nanos).as_secs_f64()
}

/// The world.
pub(crate) struct Harness {
    /// True time, nanoseconds since [`epoch`].
    pub(crate) now: u64,
    pub(crate) client: System<ChaCha12Rng>,
    pub(crate) clock: SimClock,
    pub(crate) servers: Vec<SimServer>,
    in_flight: Vec<InFlight>,
    /// One-way network delay.
    pub(crate) delay: Duration,
    /// How long a server's answer waits between its transmit timestamp
    /// and leaving (queues, the kernel, the card): what only a timestamp
    /// taken after sending sees, and the interleaved mode passes on. The
    /// servers report the real departure to their core
    /// ([`Server::transmitted`]).
    pub(crate) server_queue: Duration,
    /// Every event, with its true time.
    pub(crate) events: Vec<(Duration, Event)>,
    /// Every request the client sent: time and destination.
    pub(crate) transmits: Vec<(Duration, SocketAddr)>,
    /// Every datagram delivered to the client, with the result.
    pub(crate) deliveries: Vec<(SocketAddr, Vec<u8>, Result<ReplyOutcome, DatagramError>)>,
    /// Whether to apply clock events to the simulated clock.
    pub(crate) apply_clock: bool,
    /// Times the world woke the client up.
    pub(crate) wakeups: u64,
    /// Answers [`Output::Resolve`]: called with the number of resolutions
    /// asked so far (1 for the first), returns the addresses.
    pub(crate) resolver: Option<Box<dyn FnMut(usize) -> Vec<SocketAddr>>>,
    /// Every resolution asked for: time and pool.
    pub(crate) resolves: Vec<(Duration, PoolId)>,
    /// Answers [`Output::NtsKe`]; without it the requests are all plain
    /// 48-octet ones.
    pub(crate) ke: Option<KeScript>,
    /// Every NTS-KE asked for: time and source.
    pub(crate) ke_asked: Vec<(Duration, SourceId)>,
    stuck: u64,
    buf: Vec<u8>,
}

impl Harness {
    /// A client with `config` whose clock is `phase` seconds off true time.
    pub(crate) fn new(config: SystemConfig, phase: f64, seed: u64) -> Self {
        let clock = SimClock {
            phase,
            since: 0,
            rate: 0.0,
            drift: 0.0,
        };
        let wall = epoch().checked_add(secs(phase)).unwrap();
        let client = System::new(
            config,
            Instant::ZERO,
            wall,
            ChaCha12Rng::seed_from_u64(seed),
        )
        .unwrap();
        Self {
            now: 0,
            client,
            clock,
            servers: Vec::new(),
            in_flight: Vec::new(),
            delay: Duration::from_millis(10),
            server_queue: Duration::ZERO,
            events: Vec::new(),
            transmits: Vec::new(),
            deliveries: Vec::new(),
            apply_clock: true,
            wakeups: 0,
            resolver: None,
            resolves: Vec::new(),
            ke: None,
            ke_asked: Vec::new(),
            stuck: 0,
            buf: Vec::with_capacity(64),
        }
    }

    /// Adds a server without a client source (a pool member to be, found
    /// by resolution); returns its index.
    pub(crate) fn add_server_only(&mut self, behaviour: Behaviour, offset: f64) -> usize {
        let n = u8::try_from(self.servers.len() + 1).unwrap();
        self.servers.push(SimServer {
            address: server_addr(n),
            behaviour,
            offset,
            requests: Vec::new(),
        });
        self.servers.len() - 1
    }

    /// Adds a server and an NTS client source whose NTS-KE server is
    /// `ke-N.example` port 4460 (the KE script maps it to the server's
    /// address); returns its index.
    pub(crate) fn add_nts_server(&mut self, behaviour: Behaviour, offset: f64) -> usize {
        let index = self.add_server_only(behaviour, offset);
        let name = format!("ke-{}.example", index + 1);
        self.client.add_nts_source(&name, 4460).unwrap();
        index
    }

    /// Adds a server and a client source for it; returns its index.
    pub(crate) fn add_server(&mut self, behaviour: Behaviour, offset: f64) -> usize {
        let n = u8::try_from(self.servers.len() + 1).unwrap();
        let address = server_addr(n);
        self.servers.push(SimServer {
            address,
            behaviour,
            offset,
            requests: Vec::new(),
        });
        self.client.add_source(address).unwrap();
        self.servers.len() - 1
    }

    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    pub(crate) fn instant(&self) -> Instant {
        Instant::from_nanos(self.now)
    }

    /// The client's clock now.
    pub(crate) fn wall(&self) -> Date {
        let phase = self.clock.phase_at(self.now);
        epoch()
            .checked_add(NtpDuration::from_nanos(i64::try_from(self.now).unwrap()))
            .and_then(|d| d.checked_add(secs(phase)))
            .unwrap()
    }

    /// Server `index`'s clock now.
    fn server_wall(&self, index: usize) -> Timestamp {
        let offset = self.servers[index].offset;
        let date = epoch()
            .checked_add(NtpDuration::from_nanos(i64::try_from(self.now).unwrap()))
            .and_then(|d| d.checked_add(secs(offset)))
            .unwrap();
        Timestamp::from(date)
    }

    /// Drains the client's output; returns its next timeout.
    fn drain(&mut self) -> u64 {
        loop {
            let wall = self.wall();
            match self.client.poll_output(self.instant(), wall, &mut self.buf) {
                Output::Transmit {
                    destination, len, ..
                } => {
                    if self.ke.is_none() {
                        assert_eq!(len, 48);
                    }
                    self.transmits.push((self.elapsed(), destination));
                    self.in_flight.push(InFlight {
                        deliver_at: self.now + u64::try_from(self.delay.as_nanos()).unwrap(),
                        from: CLIENT,
                        to: destination,
                        data: self.buf[..len].to_vec(),
                    });
                }
                Output::Event(event) => {
                    if self.apply_clock {
                        match event {
                            Event::ClockStep(offset) => {
                                self.clock.settle(self.now);
                                self.clock.phase += offset.to_seconds_f64();
                            }
                            Event::ClockAdjust(adjust) => {
                                self.clock.settle(self.now);
                                self.clock.rate = adjust.rate();
                            }
                            Event::Leap(ntp_client::LeapEvent::Apply(leap)) => {
                                self.clock.settle(self.now);
                                self.clock.phase += leap.step().to_seconds_f64();
                            }
                            _ => {}
                        }
                    }
                    self.events.push((self.elapsed(), event));
                }
                Output::Timeout(at) => return at.as_nanos(),
                Output::Resolve { pool } => {
                    self.resolves.push((self.elapsed(), pool));
                    let count = self.resolves.len();
                    if let Some(resolver) = self.resolver.as_mut() {
                        let addresses = resolver(count);
                        let now = self.instant();
                        self.client.handle_resolved(now, pool, &addresses).unwrap();
                    }
                }
                Output::NtsKe { source } => {
                    self.ke_asked.push((self.elapsed(), source));
                    let (host, port) = self.client.nts_ke_target(source).unwrap();
                    let host = host.to_owned();
                    if let Some(ke) = self.ke.as_mut() {
                        let result = ke(source, &host, port);
                        let now = self.instant();
                        let _ = self.client.handle_nts_ke(now, source, result);
                    }
                }
                _ => unreachable!("Output grew"),
            }
        }
    }

    /// Delivers a datagram to the client now, as if from `from`.
    pub(crate) fn inject(
        &mut self,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<ReplyOutcome, DatagramError> {
        let input = Input::Datagram {
            from,
            data,
            rx_wall: self.wall(),
        };
        let result = self.client.handle_input(self.instant(), input);
        self.deliveries.push((from, data.to_vec(), result));
        self.drain();
        result
    }

    /// Runs the world until `seconds` of true time have passed in total.
    pub(crate) fn run_until(&mut self, seconds: f64) {
        let end = u64::try_from(Duration::from_secs_f64(seconds).as_nanos()).unwrap();
        loop {
            let next_client = self.drain();
            let next_packet = self.in_flight.iter().map(|p| p.deliver_at).min();
            let next = next_packet.map_or(next_client, |p| p.min(next_client));
            if next > end {
                self.now = end;
                self.drain();
                return;
            }
            self.wakeups += 1;
            if next <= self.now {
                self.stuck += 1;
                assert!(
                    self.stuck < 10_000,
                    "time stopped at {} ns: next client {next_client} packet {next_packet:?}, wall {:?}, discipline {:?}",
                    self.now,
                    self.wall(),
                    self.client.discipline().next_timeout()
                );
            } else {
                self.stuck = 0;
            }
            self.now = self.now.max(next);
            if next_packet.is_some_and(|p| p <= self.now) {
                let index = self
                    .in_flight
                    .iter()
                    .position(|p| p.deliver_at <= self.now)
                    .unwrap();
                let packet = self.in_flight.swap_remove(index);
                if packet.to == CLIENT {
                    self.inject(packet.from, &packet.data).ok();
                } else {
                    self.serve(packet);
                }
            } else {
                self.client.handle_timeout(self.instant());
            }
        }
    }

    /// Somebody else steps the client's clock by `by` seconds; `tell`
    /// reports it to the system, as a daemon watching its monotonic clock
    /// does.
    pub(crate) fn step_clock_externally(&mut self, by: f64, tell: bool) {
        self.clock.settle(self.now);
        self.clock.phase += by;
        if tell {
            self.client.handle_clock_stepped(secs(by));
        }
    }

    /// Runs for `seconds` more.
    pub(crate) fn run_for(&mut self, seconds: f64) {
        let target = nanos_to_secs(self.now) + seconds;
        self.run_until(target);
    }

    fn serve(&mut self, packet: InFlight) {
        let Some(index) = self.servers.iter().position(|s| s.address == packet.to) else {
            return;
        };
        let elapsed = self.elapsed();
        self.servers[index].requests.push(elapsed);
        let rx = self.server_wall(index);
        let tx = rx + NtpDuration::from_nanos(20_000);
        let queue = u64::try_from(self.server_queue.as_nanos()).unwrap();
        let now = Instant::from_nanos(self.now);
        let response = match &mut self.servers[index].behaviour {
            Behaviour::Dead => None,
            Behaviour::Ntp(server) => {
                let mut out = [0u8; 48];
                match server.handle(&packet.data, packet.from, rx, now, &mut out) {
                    Action::Respond(reply) => {
                        let datagram = server.finish(&reply, &mut out, tx).to_vec();
                        let left = tx + NtpDuration::from_nanos(i64::try_from(queue).unwrap());
                        server.transmitted(packet.from, &reply, left);
                        Some(datagram)
                    }
                    _ => None,
                }
            }
            Behaviour::Script(script) => script(&packet.data, rx, tx),
        };
        if let Some(data) = response {
            self.in_flight.push(InFlight {
                deliver_at: self.now + queue + u64::try_from(self.delay.as_nanos()).unwrap(),
                from: packet.to,
                to: packet.from,
                data,
            });
        }
    }

    /// The events of one source.
    pub(crate) fn source_events(&self, n: usize) -> Vec<ntp_client::SourceEvent> {
        let id = self.client.sources().nth(n).unwrap().id();
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Source { id: i, event } if *i == id => Some(*event),
                _ => None,
            })
            .collect()
    }

    /// Requests sent to server `n` within `[from, to)` seconds.
    pub(crate) fn requests_between(&self, n: usize, from: f64, to: f64) -> usize {
        let address = self.servers[n].address;
        self.transmits
            .iter()
            .filter(|(t, d)| *d == address && t.as_secs_f64() >= from && t.as_secs_f64() < to)
            .count()
    }
}

/// A server response to `request` built by hand with ntp-proto.
pub(crate) fn response(
    request: &[u8],
    state: SystemState,
    rx: Timestamp,
    tx: Timestamp,
) -> Vec<u8> {
    let request = Packet::new_checked(request).unwrap();
    let mut repr = Repr {
        leap: LeapIndicator::NoWarning,
        version: Version::V4,
        mode: Mode::Server,
        stratum: Stratum::PRIMARY,
        poll: request.poll(),
        precision: -20,
        root_delay: ShortTime::ZERO,
        root_dispersion: ShortTime::ZERO,
        reference_id: RefId::ZERO,
        reference_timestamp: Timestamp::ZERO,
        origin_timestamp: request.transmit_timestamp(),
        receive_timestamp: rx,
        transmit_timestamp: tx,
    };
    state.apply_to(&mut repr);
    repr.to_bytes().to_vec()
}

/// A kiss-o'-death answering `request` with `code`.
pub(crate) fn kiss(request: &[u8], code: &[u8; 4], origin: Option<Timestamp>) -> Vec<u8> {
    let request = Packet::new_checked(request).unwrap();
    let repr = Repr {
        leap: LeapIndicator::Unsynchronized,
        version: Version::V4,
        mode: Mode::Server,
        stratum: Stratum::UNSPECIFIED,
        poll: request.poll(),
        precision: -20,
        root_delay: ShortTime::ZERO,
        root_dispersion: ShortTime::ZERO,
        reference_id: RefId::new(*code),
        reference_timestamp: Timestamp::ZERO,
        origin_timestamp: origin.unwrap_or(request.transmit_timestamp()),
        receive_timestamp: Timestamp::ZERO,
        transmit_timestamp: request.transmit_timestamp(),
    };
    repr.to_bytes().to_vec()
}

/// A configuration that synchronizes on the first update (as with a drift
/// file) with the default RFC poll range.
pub(crate) fn fset() -> SystemConfig {
    SystemConfig::default().with_initial_frequency(0.0)
}

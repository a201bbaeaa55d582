//! Heap check with dhat's counting allocator: once its sources are added,
//! the client system allocates nothing in steady state (requests,
//! responses through filter, select, combine and discipline, timeouts),
//! over a simulated day with four servers. Alone in its own test binary
//! because it installs a global allocator, and without the libtest harness
//! (`harness = false`), whose threads would allocate while we count.

#![cfg(feature = "std")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use ntp_client::{Event, Input, Instant, Output, System, SystemConfig};
use ntp_proto::{
    Date, LeapIndicator, NtpDuration, RefId, ShortTime, Stratum, SystemState, Timestamp,
};
use ntp_server::{AccessAction, Action, Server, ServerConfig};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)), 40_000);
const DELAY: u64 = 5_000_000;

/// A request or response on its way, in a fixed-size table.
#[derive(Clone, Copy)]
struct InFlight {
    at: u64,
    from: SocketAddr,
    to: SocketAddr,
    data: [u8; 48],
}

struct World {
    now: u64,
    epoch: Date,
    phase: f64,
    rate: f64,
    since: u64,
    client: System<ChaCha12Rng>,
    servers: Vec<(SocketAddr, Server, f64)>,
    flight: [Option<InFlight>; 32],
    buf: Vec<u8>,
    steps: u64,
    samples: u64,
}

impl World {
    fn wall_at(&self, offset: f64) -> Date {
        let true_time = self
            .epoch
            .checked_add(NtpDuration::from_nanos(i64::try_from(self.now).unwrap()))
            .unwrap();
        true_time
            .checked_add(NtpDuration::from_seconds_f64(offset).unwrap())
            .unwrap()
    }

    fn client_phase(&self) -> f64 {
        self.phase + self.rate * Duration::from_nanos(self.now - self.since).as_secs_f64()
    }

    fn send(&mut self, packet: InFlight) {
        let slot = self.flight.iter_mut().find(|slot| slot.is_none()).unwrap();
        *slot = Some(packet);
    }

    fn drain(&mut self) -> u64 {
        loop {
            let wall = self.wall_at(self.client_phase());
            match self
                .client
                .poll_output(Instant::from_nanos(self.now), wall, &mut self.buf)
            {
                Output::Transmit {
                    destination, len, ..
                } => {
                    let mut data = [0u8; 48];
                    data.copy_from_slice(&self.buf[..len]);
                    self.send(InFlight {
                        at: self.now + DELAY,
                        from: CLIENT,
                        to: destination,
                        data,
                    });
                }
                Output::Event(Event::ClockStep(step)) => {
                    self.phase = self.client_phase() + step.to_seconds_f64();
                    self.since = self.now;
                    self.steps += 1;
                }
                Output::Event(Event::ClockAdjust(adjust)) => {
                    self.phase = self.client_phase();
                    self.since = self.now;
                    self.rate = adjust.rate();
                }
                Output::Event(_) => {}
                Output::Timeout(at) => return at.as_nanos(),
                _ => unreachable!(),
            }
        }
    }

    fn run_until(&mut self, end: u64) {
        loop {
            let next_client = self.drain();
            let next_packet = self.flight.iter().flatten().map(|p| p.at).min();
            let next = next_packet.map_or(next_client, |p| p.min(next_client));
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            let due = self
                .flight
                .iter_mut()
                .find(|slot| slot.is_some_and(|p| p.at <= self.now));
            if let Some(slot) = due {
                let packet = slot.take().unwrap();
                if packet.to == CLIENT {
                    let rx_wall = self.wall_at(self.client_phase());
                    let input = Input::Datagram {
                        from: packet.from,
                        data: &packet.data,
                        rx_wall,
                    };
                    if self
                        .client
                        .handle_input(Instant::from_nanos(self.now), input)
                        .is_ok()
                    {
                        self.samples += 1;
                    }
                } else {
                    let index = self.servers.iter().position(|s| s.0 == packet.to).unwrap();
                    let rx = Timestamp::from(self.wall_at(self.servers[index].2));
                    let now = Instant::from_nanos(self.now);
                    let mut out = [0u8; 48];
                    if let Action::Respond(reply) =
                        self.servers[index]
                            .1
                            .handle(&packet.data, packet.from, rx, now, &mut out)
                    {
                        self.servers[index].1.finish(&reply, &mut out, rx);
                        self.send(InFlight {
                            at: self.now + DELAY,
                            from: packet.to,
                            to: CLIENT,
                            data: out,
                        });
                    }
                }
            } else {
                self.client.handle_timeout(Instant::from_nanos(self.now));
            }
        }
    }
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let epoch = Date::from_unix(1_764_547_200, 0).unwrap();
    let config = SystemConfig::default()
        .with_poll_range(4, 6)
        .with_initial_frequency(0.0);
    let client = System::new(config, Instant::ZERO, epoch, ChaCha12Rng::seed_from_u64(1)).unwrap();
    let state = SystemState {
        leap: LeapIndicator::NoWarning,
        stratum: Stratum::PRIMARY,
        precision: -20,
        root_delay: ShortTime::ZERO,
        root_dispersion: ShortTime::from_bits(0x20),
        reference_id: RefId::LOCL,
        reference_time: Timestamp::from(epoch),
    };
    let server_config = {
        let mut config = ServerConfig::default();
        config.acl_default = AccessAction::Allow;
        config
    };
    let mut world = World {
        now: 0,
        epoch,
        phase: 0.2,
        rate: 0.0,
        since: 0,
        client,
        servers: Vec::new(),
        flight: [None; 32],
        buf: Vec::with_capacity(48),
        steps: 0,
        samples: 0,
    };
    for (n, offset) in [(1u8, 0.0), (2, 0.0003), (3, -0.0002), (4, 0.0001)] {
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)), 123);
        world
            .servers
            .push((address, Server::new(&server_config, state).unwrap(), offset));
        world.client.add_source(address).unwrap();
    }
    // Warm up: iburst, the step of 0.2 s, synchronization.
    world.run_until(3_600 * 1_000_000_000);
    assert!(world.client.is_synchronized());
    assert_eq!(world.steps, 1);
    let samples_before = world.samples;

    let before = dhat::HeapStats::get();
    world.run_until(25 * 3_600 * 1_000_000_000);
    let after = dhat::HeapStats::get();

    let samples = world.samples - samples_before;
    // Four servers polled every 64 s (plus up to 1/16) for a day.
    assert!(samples > 4 * 86_400 / 68, "only {samples} samples");
    assert!(world.client.is_synchronized());
    assert!(
        world.client_phase().abs() < 0.001,
        "phase {}",
        world.client_phase()
    );
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "allocations in steady state"
    );
    assert_eq!(after.curr_bytes, before.curr_bytes, "heap grew");
    println!("alloc: {samples} samples over a simulated day, no allocation: ok");
}

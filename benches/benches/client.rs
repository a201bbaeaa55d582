//! ntp-client core speed: one server response through the whole client,
//! `System::handle_input` with four synchronized sources: packet checks,
//! clock filter, fitness, select, cluster, combine and the discipline
//! update (the worst case: the sample is the filter's best, so every stage
//! runs).
//!
//! Target (issue 6): at most 1 µs per response, no allocation in steady
//! state (checked in `crates/ntp-client/tests/alloc.rs`).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::float_cmp,
    clippy::cast_possible_truncation,
    reason = "benchmark set-up on constant inputs; criterion_group! makes undocumented items"
)]

use core::hint::black_box;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ntp_client::rand_core::RngCore;
use ntp_client::{Input, Instant, Output, ReplyOutcome, System, SystemConfig};
use ntp_proto::{
    Date, LeapIndicator, NtpDuration, RefId, ShortTime, Stratum, SystemState, Timestamp,
};
use ntp_server::{AccessAction, Action, Server, ServerConfig};

/// SplitMix64: a small deterministic generator for the benchmark.
#[derive(Clone)]
struct SplitMix(u64);

impl RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)), 40_000);
const DELAY: u64 = 5_000_000;

fn at(epoch: Date, nanos: u64) -> Date {
    epoch
        .checked_add(NtpDuration::from_nanos(i64::try_from(nanos).unwrap()))
        .unwrap()
}

/// A synchronized client of four servers, stopped right after it sent a
/// request to the first one; with the response to give it and the time.
fn synchronized_client() -> (System<SplitMix>, SocketAddr, [u8; 48], Instant, Date) {
    let epoch = Date::from_unix(1_764_547_200, 0).unwrap();
    let config = SystemConfig::default()
        .with_poll_range(4, 6)
        .with_initial_frequency(0.0);
    let mut client = System::new(config, Instant::ZERO, epoch, SplitMix(7)).unwrap();
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
    let mut servers = Vec::new();
    for n in 1..=4u8 {
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, n)), 123);
        servers.push((address, Server::new(&server_config, state).unwrap()));
        client.add_source(address).unwrap();
    }
    // Virtual time; the client's clock is true time (no events applied:
    // the offsets stay near zero and every update is a slew).
    let mut now = 0u64;
    let mut flight: Vec<(u64, SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
    let mut buf = Vec::with_capacity(48);
    loop {
        let next_client = loop {
            match client.poll_output(Instant::from_nanos(now), at(epoch, now), &mut buf) {
                Output::Transmit { destination, .. } => {
                    if now > 3_600_000_000_000 && destination == servers[0].0 {
                        // The response, 1 µs faster than any before: the
                        // filter's new best sample.
                        let rx = Timestamp::from(at(epoch, now + DELAY));
                        let mut out = [0u8; 48];
                        let Action::Respond(reply) = servers[0].1.handle(
                            &buf,
                            CLIENT,
                            rx,
                            Instant::from_nanos(now),
                            &mut out,
                        ) else {
                            panic!("not answered")
                        };
                        let tx = rx + NtpDuration::from_nanos(1_000);
                        servers[0].1.finish(&reply, &mut out, tx);
                        let arrival = now + 2 * DELAY;
                        return (
                            client,
                            servers[0].0,
                            out,
                            Instant::from_nanos(arrival),
                            at(epoch, arrival),
                        );
                    }
                    flight.push((now + DELAY, CLIENT, destination, buf.clone()));
                }
                Output::Event(_) => {}
                Output::Timeout(t) => break t.as_nanos(),
                _ => unreachable!(),
            }
        };
        let next_packet = flight.iter().map(|p| p.0).min().unwrap_or(u64::MAX);
        now = now.max(next_client.min(next_packet));
        if let Some(i) = flight.iter().position(|p| p.0 <= now) {
            let (_, from, to, data) = flight.swap_remove(i);
            if to == CLIENT {
                let input = Input::Datagram {
                    from,
                    data: &data,
                    rx_wall: at(epoch, now),
                };
                let _ = client.handle_input(Instant::from_nanos(now), input);
            } else {
                let server = &mut servers.iter_mut().find(|s| s.0 == to).unwrap().1;
                let rx = Timestamp::from(at(epoch, now));
                let mut out = [0u8; 48];
                if let Action::Respond(reply) =
                    server.handle(&data, from, rx, Instant::from_nanos(now), &mut out)
                {
                    server.finish(&reply, &mut out, rx);
                    flight.push((now + DELAY, to, CLIENT, out.to_vec()));
                }
            }
        } else {
            client.handle_timeout(Instant::from_nanos(now));
        }
    }
}

fn response(c: &mut Criterion) {
    let (system, from, data, now, rx_wall) = synchronized_client();
    assert!(system.is_synchronized());
    assert_eq!(system.sources().count(), 4);
    // The measured path really runs every stage.
    let mut check = system.clone();
    let outcome = check
        .handle_input(
            now,
            Input::Datagram {
                from,
                data: &data,
                rx_wall,
            },
        )
        .unwrap();
    assert!(matches!(
        outcome,
        ReplyOutcome::Sample {
            peer_updated: true,
            ..
        }
    ));
    assert!(
        check.discipline().residual_offset() != system.discipline().residual_offset()
            || check.discipline().frequency() != system.discipline().frequency()
    );

    c.bench_function("client/response_4_sources", |b| {
        b.iter_batched_ref(
            || system.clone(),
            |system| {
                black_box(system.handle_input(
                    black_box(now),
                    Input::Datagram {
                        from,
                        data: black_box(&data),
                        rx_wall,
                    },
                ))
            },
            BatchSize::SmallInput,
        );
    });

    // A refused reply (replay of the same response after it was used).
    let mut used = system.clone();
    used.handle_input(
        now,
        Input::Datagram {
            from,
            data: &data,
            rx_wall,
        },
    )
    .unwrap();
    c.bench_function("client/duplicate_refused", |b| {
        b.iter(|| {
            black_box(used.handle_input(
                black_box(now),
                Input::Datagram {
                    from,
                    data: black_box(&data),
                    rx_wall,
                },
            ))
        });
    });
}

criterion_group!(benches, response);
criterion_main!(benches);

//! Reference clocks on virtual time: a GPS alone, a GPS among servers, a
//! GPS that is wrong, a PPS locked to a slow NMEA time, and the refusals.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_precision_loss,
    reason = "test code"
)]

mod common;

use common::*;
use ntp_client::{RefclockConfig, RefclockError, SourceId, Tally};
use ntp_proto::{RefId, Stratum};

fn refid(text: &[u8]) -> RefId {
    RefId::from_ascii(text).unwrap()
}

/// Deterministic noise in [-1, 1): a 64-bit LCG's high bits.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
    }
}

/// A device that reads the true time with `error` seconds of constant
/// error and `jitter` seconds of uniform noise, once a second.
#[derive(Clone, Copy)]
struct Device {
    id: SourceId,
    error: f64,
    jitter: f64,
    pps: bool,
}

/// Runs to `seconds`, feeding every device one sample a second: the true
/// time minus the client clock (so positive when the clock is behind),
/// plus the device's error and noise; a PPS sends only the fraction.
fn run(h: &mut Harness, devices: &[Device], seconds: u32, noise: &mut Noise) -> Vec<RefclockError> {
    let mut refused = Vec::new();
    let start = u32::try_from(h.now / 1_000_000_000).unwrap();
    for second in start + 1..=seconds {
        h.run_until(f64::from(second));
        let truth = -h.clock.phase_at(h.now);
        for device in devices {
            let mut offset = truth + device.error + device.jitter * noise.next();
            if device.pps {
                offset -= offset.round();
            }
            if let Err(error) =
                h.client
                    .handle_refclock_sample(device.id, h.instant(), offset, None)
            {
                refused.push(error);
            }
        }
    }
    refused
}

fn gps() -> RefclockConfig {
    RefclockConfig::new(refid(b"GPS"))
}

/// `config` changed by `change` (the configuration is non-exhaustive).
fn with(mut config: RefclockConfig, change: impl FnOnce(&mut RefclockConfig)) -> RefclockConfig {
    change(&mut config);
    config
}

#[test]
fn a_gps_alone_makes_a_stratum_1_clock() {
    let mut h = Harness::new(fset(), 0.05, 3);
    h.clock.drift = 20e-6;
    let id = h.client.add_refclock(gps()).unwrap();
    let device = Device {
        id,
        error: 0.0,
        jitter: 1e-4,
        pps: false,
    };
    let refused = run(&mut h, &[device], 3600, &mut Noise(1));
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(h.client.system_peer(), Some(id));
    assert_eq!(h.client.tally(id), Some(Tally::SystemPeer));
    let state = h.client.system_state();
    assert_eq!(state.stratum, Stratum::PRIMARY);
    assert_eq!(state.reference_id, refid(b"GPS"));
    assert!(state.root_delay.to_seconds_f64() < 1e-3, "{state:?}");
    let phase = h.clock.phase_at(h.now);
    assert!(phase.abs() < 50e-6, "clock {phase} s off");
    // No request ever left for it, and the peer table names it by refid.
    assert!(h.servers.is_empty());
    let table = h.client.peer_table(h.instant()).to_string();
    assert!(table.contains(".GPS."), "{table}");
}

#[test]
fn a_gps_among_servers_is_the_system_peer_and_a_wrong_one_is_outvoted() {
    // Two servers: with three the cluster algorithm would prune whichever
    // survivor sits farthest from the others, and the simulated servers
    // agree to the nanosecond while the GPS has microseconds of noise.
    for (error, gps_wins) in [(0.0, true), (0.5, false)] {
        let mut h = Harness::new(fset(), 0.01, 5);
        for _ in 0..2 {
            h.add_server(Behaviour::Ntp(open_server(primary())), 0.0);
        }
        let config = with(gps(), |c| c.stratum = 0);
        let id = h.client.add_refclock(config).unwrap();
        let device = Device {
            id,
            error,
            jitter: 1e-5,
            pps: false,
        };
        run(&mut h, &[device], 2400, &mut Noise(2));
        let phase = h.clock.phase_at(h.now);
        if gps_wins {
            assert_eq!(h.client.system_peer(), Some(id));
            assert_eq!(h.client.system_state().stratum, Stratum::PRIMARY);
            // The servers, not combined with the GPS (1 ms of delay
            // against its microseconds), stand by at their maximum poll.
            for source in h.client.sources().filter(|s| s.id() != id) {
                assert_eq!(h.client.tally(source.id()), Some(Tally::Backup));
                assert_eq!(source.poll(), source.config().max_poll);
            }
        } else {
            assert_eq!(h.client.tally(id), Some(Tally::Falseticker));
            assert_ne!(h.client.system_peer(), Some(id));
            assert_eq!(h.client.system_state().stratum, Stratum::new(2));
            // The servers lead: polled at the system poll.
            for source in h.client.sources().filter(|s| s.id() != id) {
                assert_eq!(source.poll(), h.client.discipline().poll());
                assert!(source.poll() < source.config().max_poll);
            }
        }
        assert!(phase.abs() < 1e-3, "error {error}: clock {phase} s off");
    }
}

#[test]
fn a_pps_locked_to_slow_nmea_time_keeps_the_clock_within_microseconds() {
    // chrony's 106-refclock PPS case: the NMEA time is 0.35 s late with
    // 50 ms of jitter, and never selected; the pulse is precise.
    let mut h = Harness::new(fset(), 0.8, 7);
    h.clock.drift = -30e-6;
    let nmea = h
        .client
        .add_refclock(with(RefclockConfig::new(refid(b"NMEA")), |c| {
            c.noselect = true;
        }))
        .unwrap();
    let pps = h
        .client
        .add_refclock(with(RefclockConfig::new(refid(b"PPS")), |c| {
            c.pps = true;
            c.lock = Some(nmea);
        }))
        .unwrap();
    let devices = [
        Device {
            id: nmea,
            error: -0.35,
            jitter: 0.05,
            pps: false,
        },
        Device {
            id: pps,
            error: 0.0,
            jitter: 1e-6,
            pps: true,
        },
    ];
    let refused = run(&mut h, &devices, 3600, &mut Noise(3));
    // Until the NMEA time has a poll's sample (its first poll, at the
    // start, finds none) the pulses have no second.
    assert!(
        refused.iter().all(|e| *e == RefclockError::NoSecond),
        "{refused:?}"
    );
    assert!(refused.len() <= 2 * 16, "{}", refused.len());
    assert_eq!(h.client.system_peer(), Some(pps));
    assert_eq!(h.client.system_state().reference_id, refid(b"PPS"));
    let phase = h.clock.phase_at(h.now);
    assert!(phase.abs() < 10e-6, "clock {phase} s off");
}

#[test]
fn bad_samples_are_refused_and_change_nothing() {
    let mut h = Harness::new(fset(), 0.0, 9);
    let server = h.add_server(Behaviour::Ntp(open_server(primary())), 0.0);
    let id = h.client.add_refclock(gps()).unwrap();
    let now = h.instant();
    for bad in [f64::NAN, f64::INFINITY, 3e9] {
        assert_eq!(
            h.client.handle_refclock_sample(id, now, bad, None),
            Err(RefclockError::Offset)
        );
    }
    let ntp_source = h.client.sources().nth(server).unwrap().id();
    assert_eq!(
        h.client.handle_refclock_sample(ntp_source, now, 0.0, None),
        Err(RefclockError::Unknown)
    );
    // A PPS without a lock needs a synchronized clock.
    let pps = h
        .client
        .add_refclock(with(RefclockConfig::new(refid(b"PPS")), |c| c.pps = true))
        .unwrap();
    assert_eq!(
        h.client.handle_refclock_sample(pps, now, 0.1, None),
        Err(RefclockError::NoSecond)
    );
    // Bad configurations.
    assert!(
        h.client
            .add_refclock(with(gps(), |c| {
                c.lock = Some(SourceId::new(999));
                c.pps = true;
            }))
            .is_err()
    );
    assert!(
        h.client
            .add_refclock(with(gps(), |c| c.filter = 0))
            .is_err()
    );
    // A silent reference clock becomes unreachable and never the peer.
    h.run_until(600.0);
    assert_eq!(h.client.source(id).unwrap().reach(), 0);
    assert_ne!(h.client.system_peer(), Some(id));
}

#[test]
fn a_slew_in_progress_does_not_scatter_a_poll() {
    // 5 ms off and slews of at most 500 ppm: the first poll's update
    // (16 s) starts a slew of 10 s that ends within the second poll. The
    // second poll's samples, each framed in the slew done when it was
    // read, lie on one line; framed in the slew counted at the
    // discipline's last input, those read during the slew moved with it
    // and the poll's sample was doubted by a millisecond.
    let mut config = fset();
    config.discipline.max_slew = 500e-6;
    let mut h = Harness::new(config, 0.005, 9);
    let id = h.client.add_refclock(gps()).unwrap();
    let device = Device {
        id,
        error: 0.0,
        jitter: 1e-6,
        pps: false,
    };
    let mut noise = Noise(3);
    let refused = run(&mut h, &[device], 20, &mut noise);
    assert!(refused.is_empty(), "{refused:?}");
    let phase = h.clock.phase_at(h.now);
    assert!(phase.abs() > 1e-3, "the slew is in progress: {phase} s");
    let refused = run(&mut h, &[device], 33, &mut noise);
    assert!(refused.is_empty(), "{refused:?}");
    let samples: Vec<_> = h.client.source(id).unwrap().filter().samples().collect();
    assert!(samples.len() >= 2, "{samples:?}");
    let (newest, _) = samples[0];
    assert!(newest.dispersion() < 20e-6, "{newest:?}");
}

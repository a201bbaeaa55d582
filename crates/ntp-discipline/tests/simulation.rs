//! The discipline against a simulated oscillator and network (see
//! `sim/mod.rs`): one scenario per required behaviour, and the accuracy
//! scenario.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    unreachable_pub,
    missing_docs,
    reason = "test harness"
)]

mod sim;

use ntp_discipline::{Config, IgnoreReason, LeapKind, MAXFREQ, State, UpdateOutcome};
use ntp_proto::{Date, LeapIndicator, NtpDuration, UtcDateTime};
use sim::{Applied, Oscillator, Scenario, Sim, Stats};

fn date(year: i64, month: u8, day: u8, hour: u8, minute: u8) -> Date {
    Date::from_utc(UtcDateTime::new(year, month, day, hour, minute, 0, 0).unwrap()).unwrap()
}

fn oscillator(frequency: f64) -> Oscillator {
    Oscillator {
        frequency,
        wander: 1e-10,
    }
}

/// A clock synchronized from a drift file: FSET with the right frequency,
/// run for `seconds`.
fn synchronized(config: Config, seconds: f64, seed: u64) -> Sim {
    let mut scenario = Scenario::new(date(2024, 5, 1, 0, 0), 0.0, oscillator(10e-6));
    scenario.config = config;
    scenario.initial_frequency = Some(-10e-6);
    scenario.seed = seed;
    let mut sim = Sim::new(scenario);
    sim.run_until(seconds, |_| {});
    assert_eq!(sim.discipline.state(), State::Sync);
    assert!(sim.time_error().abs() < 200e-6, "{}", sim.time_error());
    sim
}

/// Local clock 100 ms ahead and 50 ppm fast, no drift file: both push the
/// same way while the frequency is trained. Returns the simulation after
/// `hours`, the worst time error and the time error after 6 h.
fn hundred_ms_and_50_ppm(open_loop_initial_offset: bool, hours: f64) -> (Sim, f64, f64) {
    let mut scenario = Scenario::new(date(2024, 5, 1, 0, 0), 0.100, oscillator(50e-6));
    scenario.config = Config::rfc5905().with_poll_range(6, 10);
    scenario.config.open_loop_initial_offset = open_loop_initial_offset;
    let mut sim = Sim::new(scenario);
    let mut worst = 0.0_f64;
    sim.run_until(6.0 * 3600.0, |sim| {
        worst = worst.max(sim.time_error().abs())
    });
    let at_six_hours = sim.time_error();
    sim.run_until(hours * 3600.0, |sim| {
        worst = worst.max(sim.time_error().abs())
    });
    assert_eq!(sim.steps(), 0);
    assert_eq!(
        sim.outcomes[0].1,
        UpdateOutcome::Ignored(IgnoreReason::FrequencyTrainingStarted)
    );
    assert!(worst < 0.128, "stayed below the step threshold: {worst}");
    assert_eq!(sim.discipline.state(), State::Sync);
    assert!(sim.max_adjust_frequency <= MAXFREQ);
    (sim, worst, at_six_hours)
}

#[test]
fn hundred_ms_and_50_ppm_converge_by_slewing_alone() {
    // RFC 5905 as written: the 87 ms left after frequency training winds
    // the PLL's frequency up by about 4.5 ppm, which takes hours to unwind
    // (measured: -1.7 ms after 6 h, -0.6 ms after 24 h).
    let (sim, _, at_six_hours) = hundred_ms_and_50_ppm(false, 24.0);
    assert!(sim.time_error().abs() < 1e-3, "{}", sim.time_error());
    assert!(sim.time_error().abs() < at_six_hours.abs() / 2.0);
    assert!(
        sim.frequency_error().abs() < 0.2e-6,
        "{}",
        sim.frequency_error()
    );

    // With the initial offset slewed outside the loop the frequency stays
    // where training put it (measured: 85 µs after 6 h).
    let (sim, _, at_six_hours) = hundred_ms_and_50_ppm(true, 6.0);
    assert!(at_six_hours.abs() < 300e-6, "{at_six_hours}");
    assert!(
        sim.frequency_error().abs() < 0.05e-6,
        "{}",
        sim.frequency_error()
    );
}

#[test]
fn half_a_second_off_steps_once_at_start() {
    let mut sim = Sim::new(Scenario::new(
        date(2024, 5, 1, 0, 0),
        -0.5,
        oscillator(5e-6),
    ));
    sim.run_until(3.0 * 3600.0, |_| {});
    assert_eq!(sim.steps(), 1);
    let Applied::Step { offset, .. } = sim.applied[0] else {
        panic!("expected a step");
    };
    assert!((offset.to_seconds_f64() - 0.5).abs() < 1e-3);
    assert!(sim.time_error().abs() < 1e-3);
}

#[test]
fn half_a_second_jump_in_sync_steps_once_after_the_stepout() {
    let mut sim = synchronized(Config::rfc5905(), 4000.0, 2);
    let last_accepted = sim
        .outcomes
        .iter()
        .rev()
        .find(|(_, outcome)| *outcome == UpdateOutcome::Slew)
        .unwrap()
        .0;
    // Something knocks the clock 0.5 s back.
    sim.phase -= 0.5;
    let knocked = sim.elapsed;
    sim.run_until(knocked + 4.0 * 3600.0, |_| {});
    assert_eq!(sim.steps(), 1, "{:?}", sim.applied);
    let stepped_at = sim
        .outcomes
        .iter()
        .find(|(_, outcome)| matches!(outcome, UpdateOutcome::Step(_)))
        .unwrap()
        .0;
    assert!(stepped_at - last_accepted >= 900.0);
    assert!(stepped_at - knocked <= 900.0 + 64.0 * 2.0);
    // Offsets were suppressed as spikes in between.
    assert!(sim.outcomes.iter().any(|(t, outcome)| {
        *t > knocked && *outcome == UpdateOutcome::Ignored(IgnoreReason::Spike)
    }));
    assert!(sim.time_error().abs() < 1e-3);
}

#[test]
fn two_thousand_seconds_off_panics_and_does_nothing() {
    let mut sim = Sim::new(Scenario::new(
        date(2024, 5, 1, 0, 0),
        2000.0,
        oscillator(0.0),
    ));
    sim.run_until(3600.0, |_| {});
    let updates = sim.outcomes.len();
    assert!(updates >= 50);
    assert!(
        sim.outcomes
            .iter()
            .all(|(_, outcome)| matches!(outcome, UpdateOutcome::Panic(_)))
    );
    assert_eq!(sim.panics, updates);
    assert!(sim.applied.is_empty());
    assert_eq!(sim.discipline.state(), State::Nset);
    assert!((sim.rate).abs() < 1e-15);
    // Only the oscillator's random walk moved it.
    assert!((sim.time_error() - 2000.0).abs() < 1e-3);
}

#[test]
fn a_single_300_ms_spike_is_ignored() {
    let mut sim = synchronized(Config::rfc5905(), 6000.0, 3);
    let frequency = sim.discipline.frequency();
    let before = sim.outcomes.len();
    sim.inject = Some(0.3);
    while sim.outcomes.len() == before {
        sim.run_until(sim.elapsed + 1.0, |_| {});
    }
    assert_eq!(
        sim.outcomes[before].1,
        UpdateOutcome::Ignored(IgnoreReason::Spike)
    );
    assert!((sim.discipline.frequency() - frequency).abs() < 1e-15);
    sim.run_until(sim.elapsed + 3600.0, |sim| {
        assert!(sim.time_error().abs() < 300e-6);
    });
    assert_eq!(sim.steps(), 0);
    assert_eq!(sim.discipline.state(), State::Sync);
}

#[test]
fn frequency_never_exceeds_the_clamp() {
    // An oscillator 800 ppm fast, beyond what the discipline may correct.
    let mut sim = Sim::new(Scenario::new(
        date(2024, 5, 1, 0, 0),
        0.0,
        Oscillator {
            frequency: 800e-6,
            wander: 1e-8,
        },
    ));
    let mut clamped = false;
    sim.run_until(4.0 * 3600.0, |sim| {
        let frequency = sim.discipline.frequency();
        assert!(frequency.abs() <= MAXFREQ);
        clamped |= (frequency + MAXFREQ).abs() < 1e-12;
    });
    assert!(clamped, "the frequency reached -MAXFREQ");
    assert!(sim.max_adjust_frequency <= MAXFREQ);
}

#[test]
fn poll_climbs_to_maxpoll_when_quiet_and_drops_after_a_frequency_jump() {
    let config = Config::rfc5905().with_poll_range(6, 10);
    let mut scenario = Scenario::new(date(2024, 5, 1, 0, 0), 0.0, oscillator(10e-6));
    scenario.config = config;
    scenario.network.jitter_mean = 20e-6;
    let mut sim = Sim::new(scenario);
    while sim.discipline.poll() < 10 {
        assert!(
            sim.elapsed < 6.0 * 3600.0,
            "poll {} after 6 h",
            sim.discipline.poll()
        );
        sim.run_until(sim.elapsed + 60.0, |_| {});
    }

    // A 5 ppm frequency jump (a temperature step).
    sim.oscillator_frequency += 5e-6;
    let jump = sim.elapsed;
    let mut lowest = 10;
    sim.run_until(jump + 6.0 * 3600.0, |sim| {
        lowest = lowest.min(sim.discipline.poll());
    });
    assert!(lowest < 10, "poll came down, to {lowest}");
    assert_eq!(sim.steps(), 0);
}

/// The mean interval between updates, s, of the Kalman estimator from
/// 1 h to `hours` with `config`, and the worst time error of the last
/// half, read every minute.
fn kalman_mean_poll(config: Config, hours: f64) -> (f64, f64) {
    let mut sim = synchronized(config.with_poll_range(6, 12), 3600.0, 7);
    let before = sim.outcomes.len();
    let end = hours * 3600.0;
    let mut worst = 0.0_f64;
    let mut t = 3600.0;
    while t < end {
        t += 60.0;
        sim.run_until(t, |_| {});
        if t > end / 2.0 {
            worst = worst.max(sim.time_error().abs());
        }
    }
    let updates = sim.outcomes.len().saturating_sub(before).max(1);
    ((end - 3600.0) / updates as f64, worst)
}

#[test]
fn a_lower_poll_target_polls_less_often() {
    // chrony's polltarget: fewer measurements wanted, longer polls, and
    // the clock still kept (at a cost in accuracy).
    let default = Config::default();
    let (sparse, sparse_error) = kalman_mean_poll(default.with_poll_target(1).unwrap(), 24.0);
    let (normal, normal_error) = kalman_mean_poll(default, 24.0);
    let (dense, _) = kalman_mean_poll(default.with_poll_target(60).unwrap(), 24.0);
    assert!(sparse > 2.0 * normal, "{sparse} vs {normal}");
    assert!(normal > 2.0 * dense, "{normal} vs {dense}");
    assert!(sparse_error < 1e-3, "{sparse_error}");
    assert!(normal_error < 1e-3, "{normal_error}");
}

#[test]
fn leap_second_is_applied_once_at_23_59_60() {
    for (year, month, day) in [(2016, 12, 31), (2015, 6, 30)] {
        let start = date(year, month, day, 22, 0);
        let mut scenario = Scenario::new(start, 0.0, oscillator(3e-6));
        scenario.initial_frequency = Some(-3e-6);
        let mut sim = Sim::new(scenario);
        sim.leap_indicator = LeapIndicator::InsertSecond;
        // The reference (UTC on the NTP timescale) goes back one second at
        // the end of the day: 2 h after the start.
        sim.reference_leap = Some((7200.0, -1.0));
        sim.run_until(7100.0, |_| {});
        let leap = sim.discipline.leap_second().expect("armed");
        assert_eq!(leap.kind, LeapKind::Insert);
        // Servers keep the indicator on for a while after the leap.
        sim.run_until(7200.0 + 1800.0, |_| {});
        sim.leap_indicator = LeapIndicator::NoWarning;
        sim.run_until(7200.0 + 3600.0, |sim| {
            assert!(sim.time_error().abs() < 1e-3, "at {}", sim.elapsed);
        });

        let leaps: Vec<_> = sim
            .applied
            .iter()
            .filter_map(|applied| match applied {
                Applied::Leap { local, leap } => Some((*local, *leap)),
                Applied::Step { .. } => None,
            })
            .collect();
        assert_eq!(leaps.len(), 1, "{:?}", sim.applied);
        let (local, leap) = leaps[0];
        let midnight = start.checked_add(NtpDuration::from_seconds(7200)).unwrap();
        assert_eq!(leap.at, midnight);
        let expected = std::format!("insert {year}-{month:02}-{day}T23:59:60Z");
        assert_eq!(leap.to_string(), expected);
        // Applied at that clock reading (within the simulation's 1 ns).
        let late = local.checked_duration_since(leap.at).unwrap();
        assert!(!late.is_negative() && late < NtpDuration::from_nanos(1000));
        assert_eq!(sim.steps(), 0);
        assert_eq!(sim.discipline.leap_second(), None);
    }
}

#[test]
fn leap_indicator_in_march_is_never_applied() {
    let start = date(2017, 3, 31, 22, 0);
    let mut scenario = Scenario::new(start, 0.0, oscillator(3e-6));
    scenario.initial_frequency = Some(-3e-6);
    let mut sim = Sim::new(scenario);
    sim.leap_indicator = LeapIndicator::InsertSecond;
    sim.run_until(4.0 * 3600.0, |sim| {
        assert_eq!(sim.discipline.leap_second(), None);
    });
    assert!(sim.applied.is_empty());
    assert!(sim.time_error().abs() < 1e-3);
}

/// The accuracy scenario of the issue: one-way delays 500 µs plus
/// exponential jitter (mean 100 µs) each way, +20 ppm oscillator with a
/// 1e-9 /s random walk, start 10 ms off without a drift file, poll fixed at
/// 16 s, 20 000 s simulated, statistics after 2000 s, offsets through
/// ntp-select's clock filter.
///
/// Tuned within RFC 5905's design: the PLL time constant scale is 8
/// instead of 16 (figure 27's TC), and the offset left after frequency
/// training is slewed outside the loop
/// ([`Config::open_loop_initial_offset`]).
#[test]
fn accuracy_scenario() {
    let mut scenario = Scenario::new(
        date(2024, 5, 1, 0, 0),
        0.010,
        Oscillator {
            frequency: 20e-6,
            wander: 1e-9,
        },
    );
    scenario.config = Config::rfc5905().with_poll_range(4, 4);
    scenario.config.pll_gain = 8.0;
    scenario.config.open_loop_initial_offset = true;
    scenario.filter = true;
    let mut sim = Sim::new(scenario);
    let mut time = Stats::default();
    let mut frequency = Stats::default();
    sim.run_until(20_000.0, |sim| {
        if sim.elapsed >= 2000.0 {
            time.add(sim.time_error());
            frequency.add(sim.frequency_error());
        }
    });
    std::println!(
        "accuracy: time error RMS {:.2} us, max {:.2} us; frequency error RMS {:.4} ppm",
        time.rms() * 1e6,
        time.max_abs * 1e6,
        frequency.rms() * 1e6,
    );
    assert_eq!(sim.steps(), 0);
    assert!(time.count > 17_000);
    // Measured (seed 1): 9.40 µs RMS, 25.4 µs max, 0.0357 ppm RMS.
    assert!(time.rms() < 11e-6, "time error RMS {}", time.rms());
    assert!(time.max_abs < 32e-6, "time error max {}", time.max_abs);
    assert!(
        frequency.rms() < 0.045e-6,
        "frequency RMS {}",
        frequency.rms()
    );
}

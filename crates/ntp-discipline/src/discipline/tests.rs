//! Hand-worked examples of single transitions and loop updates.

use std::format;
use std::vec::Vec;

use ntp_proto::UtcDateTime;
use proptest::prelude::*;

use super::*;
use crate::{CORRECTION_TIME_RATIO, FallbackDrift, MaxChange};
use crate::{
    DEFAULT_POLL_TARGET, LeapKind, MAX_POLL_GATE, MAXFREQ, MAXSLEW, MakeStep, POLL_GATE,
    POLL_TARGET_RANGE, STEPT,
};

fn base() -> Date {
    Date::from_utc(UtcDateTime::new(2024, 3, 10, 0, 0, 0, 0).unwrap()).unwrap()
}

fn at(seconds: f64) -> Date {
    base()
        .checked_add(NtpDuration::from_seconds_f64(seconds).unwrap())
        .unwrap()
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-12 * expected.abs().max(1e-12)
}

fn drain(discipline: &mut Discipline) -> Vec<Output> {
    let mut outputs = Vec::new();
    loop {
        let output = discipline.poll_output();
        let done = matches!(output, Output::Timeout(_));
        outputs.push(output);
        if done {
            return outputs;
        }
    }
}

/// The tick length's ±10 % range for the frequency and the total rate
/// (the daemon's kernel clock), RFC 5905's MAXSLEW for the phase slew.
fn wide_rate() -> Config {
    Config {
        max_rate: 0.1,
        max_frequency: 0.1,
        ..Config::default()
    }
}

/// [`wide_rate`] with slews of up to [`FAST_SLEW`](crate::FAST_SLEW), as
/// the daemon runs it.
fn wide_slew() -> Config {
    Config {
        max_slew: crate::FAST_SLEW,
        ..wide_rate()
    }
}

/// The first clock adjustment among the outputs drained.
fn first_adjust(discipline: &mut Discipline) -> ClockAdjustment {
    drain(discipline)
        .into_iter()
        .find_map(|output| match output {
            Output::Adjust(adjust) => Some(adjust),
            _ => None,
        })
        .unwrap()
}

fn synced(config: Config, frequency: f64) -> Discipline {
    let mut discipline = Discipline::with_frequency(config, base(), frequency).unwrap();
    assert_eq!(
        discipline.handle_update(base(), Update::new(0.0, 1e-3)),
        Ok(UpdateOutcome::Slew)
    );
    assert_eq!(discipline.state(), State::Sync);
    drain(&mut discipline);
    discipline
}

#[test]
fn a_new_discipline_asks_for_no_correction_and_a_tick_in_one_second() {
    let mut discipline = Discipline::new(Config::rfc5905(), base()).unwrap();
    assert_eq!(discipline.state(), State::Nset);
    assert_eq!(
        drain(&mut discipline),
        [
            Output::Adjust(ClockAdjustment::default()),
            Output::Timeout(at(1.0))
        ]
    );
    assert_eq!(discipline.poll(), 6);
}

#[test]
fn drift_file_frequency_starts_in_fset_and_is_applied_at_once() {
    let mut discipline = Discipline::with_frequency(Config::rfc5905(), base(), -12e-6).unwrap();
    assert_eq!(discipline.state(), State::Fset);
    assert_eq!(
        drain(&mut discipline)[0],
        Output::Adjust(ClockAdjustment {
            frequency: -12e-6,
            phase_slew: 0.0,
            duration: 0.0,
        })
    );
    for bad in [f64::NAN, f64::INFINITY, 501e-6, -0.01] {
        assert_eq!(
            Discipline::with_frequency(Config::rfc5905(), base(), bad).unwrap_err(),
            ConfigError::InitialFrequency
        );
    }
}

#[test]
fn fset_inlier_slews_and_keeps_the_frequency() {
    let mut discipline = Discipline::with_frequency(Config::rfc5905(), base(), 10e-6).unwrap();
    drain(&mut discipline);
    let outcome = discipline.handle_update(base(), Update::new(0.05, 1e-3));
    assert_eq!(outcome, Ok(UpdateOutcome::Slew));
    assert_eq!(discipline.state(), State::Sync);
    assert!(close(discipline.residual_offset(), 0.05));
    assert!(close(discipline.frequency(), 10e-6));
    // clock_adjust: c.offset / (PLL * 2^6) per second.
    let Output::Adjust(adjust) = discipline.poll_output() else {
        panic!("expected an adjustment");
    };
    assert!(close(adjust.frequency, 10e-6));
    assert!(close(adjust.phase_slew, 0.05 / 1024.0));
}

#[test]
fn clock_adjust_amortizes_the_residual_every_second() {
    let mut discipline = Discipline::with_frequency(Config::rfc5905(), base(), 0.0).unwrap();
    discipline
        .handle_update(base(), Update::new(0.05, 1e-3))
        .unwrap();
    drain(&mut discipline);
    let mut expected = 0.05;
    for second in 1..=10 {
        // An early call is a no-op: no adjustment, same deadline.
        discipline.handle_timeout(at(f64::from(second) - 0.5));
        assert_eq!(
            drain(&mut discipline),
            [Output::Timeout(at(f64::from(second)))]
        );
        discipline.handle_timeout(at(f64::from(second)));
        expected -= expected / 1024.0;
        let outputs = drain(&mut discipline);
        let [Output::Adjust(adjust), Output::Timeout(next)] = outputs[..] else {
            panic!("unexpected outputs {outputs:?}");
        };
        assert!(close(discipline.residual_offset(), expected));
        assert!(close(adjust.phase_slew, expected / 1024.0));
        assert_eq!(next, at(f64::from(second + 1)));
    }
    // 0.05 * (1 - 1/1024)^10
    assert!(close(expected, 0.049_513_858_938_814_98));
}

#[test]
fn pll_frequency_gain_is_offset_times_mu_over_4_pll_tau_squared() {
    let mut discipline = synced(Config::rfc5905(), 0.0);
    assert_eq!(
        discipline.handle_update(at(64.0), Update::new(1e-3, 1e-3)),
        Ok(UpdateOutcome::Slew)
    );
    // 1e-3 * 64 / (4 * 16 * 64)^2; no FLL at poll 6.
    assert!(close(discipline.frequency(), 3.814_697_265_625e-9));
}

#[test]
fn the_loop_is_timed_by_the_sample_not_the_update() {
    let mut discipline = synced(Config::rfc5905(), 0.0);
    // Measured 32 s before it is handed over: mu = 32 s, not 64 s.
    discipline
        .handle_update(at(64.0), Update::new(1e-3, 1e-3).with_age(32.0))
        .unwrap();
    // 1e-3 * 32 / (4 * 16 * 64)^2
    assert!(close(discipline.frequency(), 1.907_348_632_812_5e-9));
    // The next interval counts from the sample too: 128 - 32 = 96 s,
    // capped at the 64 s poll interval.
    let before = discipline.frequency();
    discipline
        .handle_update(at(128.0), Update::new(1e-3, 1e-3))
        .unwrap();
    assert!(close(discipline.frequency() - before, 3.814_697_265_625e-9));
    for bad in [-1.0, f64::NAN, f64::INFINITY, 3e9] {
        assert_eq!(
            discipline.handle_update(at(192.0), Update::new(0.0, 0.0).with_age(bad)),
            Err(UpdateError::InvalidAge)
        );
    }
}

#[test]
fn cumulative_slew_sums_what_the_caller_slewed() {
    let mut discipline = Discipline::with_frequency(Config::rfc5905(), base(), 5e-6).unwrap();
    discipline
        .handle_update(base(), Update::new(0.05, 1e-3))
        .unwrap();
    for second in 1..=3 {
        discipline.handle_timeout(at(f64::from(second)));
    }
    // 0.05 * (1 - (1 - 1/1024)^3); the frequency part does not count.
    let remaining = 0.05 * (1023.0_f64 / 1024.0).powi(3);
    assert!(close(discipline.cumulative_slew(), 0.05 - remaining));
    assert!(close(discipline.residual_offset(), remaining));
}

#[test]
fn open_loop_initial_offset_is_slewed_but_not_integrated() {
    let run = |open_loop_initial_offset| {
        let config = Config {
            open_loop_initial_offset,
            ..Config::rfc5905()
        };
        let mut discipline = Discipline::with_frequency(config, base(), 0.0).unwrap();
        discipline
            .handle_update(base(), Update::new(0.01, 1e-3))
            .unwrap();
        // No ticks: the caller slewed 0.01 / 1024 s per second for 64 s,
        // and the clock shows exactly the rest.
        let rest = 0.01 * (1.0 - 64.0 / 1024.0);
        discipline
            .handle_update(at(64.0), Update::new(rest, 1e-3))
            .unwrap();
        (discipline.frequency(), rest)
    };
    let (frequency, _) = run(true);
    assert!(frequency.abs() < 1e-20, "{frequency}");
    // RFC 5905: the PLL integrates the whole offset.
    let (frequency, rest) = run(false);
    assert!(close(
        frequency,
        rest * 64.0 / (4.0 * 16.0 * 64.0_f64).powi(2)
    ));
}

#[test]
fn fll_joins_above_half_the_allan_intercept() {
    let poll = |p| Config {
        min_poll: p,
        max_poll: p,
        ..Config::rfc5905()
    };
    // Poll 11: 2048 s > ALLAN / 2.
    let mut discipline = synced(poll(11), 0.0);
    discipline
        .handle_update(at(2048.0), Update::new(2e-3, 1e-3))
        .unwrap();
    let fll = 2e-3 / (2048.0 * 8.0);
    let pll = 2e-3 * 2048.0 / (4.0 * 16.0 * 2048.0_f64).powi(2);
    assert!(close(discipline.frequency(), fll + pll));
    // Poll 10: 1024 s is not above ALLAN / 2, PLL only.
    let mut discipline = synced(poll(10), 0.0);
    discipline
        .handle_update(at(1024.0), Update::new(2e-3, 1e-3))
        .unwrap();
    let pll = 2e-3 * 1024.0 / (4.0 * 16.0 * 1024.0_f64).powi(2);
    assert!(close(discipline.frequency(), pll));
}

#[test]
fn nset_inlier_trains_the_frequency_over_the_stepout() {
    let mut discipline = Discipline::new(Config::rfc5905(), base()).unwrap();
    assert_eq!(
        discipline.handle_update(base(), Update::new(0.01, 1e-3)),
        Ok(UpdateOutcome::Ignored(
            IgnoreReason::FrequencyTrainingStarted
        ))
    );
    assert_eq!(discipline.state(), State::Freq);
    drain(&mut discipline);
    assert_eq!(
        discipline.handle_update(at(450.0), Update::new(0.008, 1e-3)),
        Ok(UpdateOutcome::Ignored(IgnoreReason::FrequencyTraining))
    );
    // The caller has been slewing 0.01 / 1024 s per second (no ticks, so
    // one constant rate for all 900 s).
    let residual = 0.01 - 0.01 / 1024.0 * 900.0;
    assert_eq!(
        discipline.handle_update(at(900.0), Update::new(0.02, 1e-3)),
        Ok(UpdateOutcome::Slew)
    );
    assert_eq!(discipline.state(), State::Sync);
    assert!(close(discipline.frequency(), (0.02 - residual) / 900.0));
    assert!(close(discipline.residual_offset(), 0.02));
}

#[test]
fn nset_outlier_steps_at_once_and_trains_the_frequency() {
    let mut discipline = Discipline::new(Config::rfc5905(), base()).unwrap();
    drain(&mut discipline);
    let step = NtpDuration::from_seconds_f64(0.5).unwrap();
    assert_eq!(
        discipline.handle_update(at(0.2), Update::new(0.5, 1e-3)),
        Ok(UpdateOutcome::Step(step))
    );
    assert_eq!(discipline.state(), State::Freq);
    assert_eq!(
        drain(&mut discipline),
        [
            Output::Step(step),
            Output::Adjust(ClockAdjustment::default()),
            // The tick due one second after start, on the stepped clock.
            Output::Timeout(at(1.5)),
        ]
    );
}

#[test]
fn a_spike_in_sync_is_suppressed_until_the_stepout() {
    let mut discipline = synced(Config::rfc5905(), 0.0);
    let spike = Ok(UpdateOutcome::Ignored(IgnoreReason::Spike));
    assert_eq!(
        discipline.handle_update(at(64.0), Update::new(0.3, 1e-3)),
        spike
    );
    assert_eq!(discipline.state(), State::Spik);
    assert_eq!(
        discipline.handle_update(at(128.0), Update::new(0.3, 1e-3)),
        spike
    );
    // An inlier ends the spike.
    assert_eq!(
        discipline.handle_update(at(192.0), Update::new(1e-3, 1e-3)),
        Ok(UpdateOutcome::Slew)
    );
    assert_eq!(discipline.state(), State::Sync);
    // Persistent outliers: stepped once WATCH has passed since 192 s.
    let mut steps = 0;
    let mut t = 256.0;
    while t < 2000.0 {
        let outcome = discipline.handle_update(at(t), Update::new(0.3, 1e-3));
        if t - 192.0 < 900.0 {
            assert_eq!(outcome, spike, "at {t}");
        }
        for output in drain(&mut discipline) {
            if let Output::Step(step) = output {
                assert_eq!(step, NtpDuration::from_seconds_f64(0.3).unwrap());
                assert!(t - 192.0 >= 900.0);
                steps += 1;
                t = f64::INFINITY;
            }
        }
        t += 64.0;
    }
    assert_eq!(steps, 1);
    assert_eq!(discipline.state(), State::Sync);
    assert_eq!(discipline.poll(), 6);
}

#[test]
fn panic_threshold_refuses_and_changes_nothing() {
    let mut discipline = Discipline::new(Config::rfc5905(), base()).unwrap();
    drain(&mut discipline);
    assert_eq!(
        discipline.handle_update(base(), Update::new(-2000.0, 1e-3)),
        Ok(UpdateOutcome::Panic(-2000.0))
    );
    assert_eq!(discipline.state(), State::Nset);
    assert!(close(discipline.residual_offset(), 0.0) && close(discipline.frequency(), 0.0));
    assert_eq!(
        drain(&mut discipline),
        [Output::Panic { offset: -2000.0 }, Output::Timeout(at(1.0))]
    );

    // Lifted for the first update only.
    let first_sync = Config {
        panic_on_first_update: false,
        ..Config::rfc5905()
    };
    let mut discipline = Discipline::new(first_sync, base()).unwrap();
    let step = NtpDuration::from_seconds(2000);
    assert_eq!(
        discipline.handle_update(base(), Update::new(2000.0, 1e-3)),
        Ok(UpdateOutcome::Step(step))
    );
    assert_eq!(
        discipline.handle_update(at(2064.0), Update::new(2000.0, 1e-3)),
        Ok(UpdateOutcome::Panic(2000.0))
    );

    // Disabled altogether.
    let never = Config {
        panic_threshold: None,
        ..Config::rfc5905()
    };
    let mut discipline = synced(never, 0.0);
    discipline
        .handle_update(at(64.0), Update::new(1e6, 0.0))
        .unwrap();
    assert_eq!(discipline.state(), State::Spik);
}

#[test]
fn frequency_training_result_is_clamped_to_maxfreq() {
    let mut discipline = Discipline::new(Config::rfc5905(), base()).unwrap();
    discipline
        .handle_update(base(), Update::new(0.0, 1e-3))
        .unwrap();
    // 100 s after 900 s: 0.11 s/s, clamped.
    assert!(matches!(
        discipline.handle_update(at(900.0), Update::new(100.0, 1e-3)),
        Ok(UpdateOutcome::Step(_))
    ));
    assert!(close(discipline.frequency(), MAXFREQ));
    let outputs = drain(&mut discipline);
    assert!(outputs.contains(&Output::Adjust(ClockAdjustment {
        frequency: MAXFREQ,
        phase_slew: 0.0,
        duration: 0.0,
    })));
    assert!(discipline.wander() > 0.0);
}

#[test]
fn poll_hysteresis_climbs_by_poll_and_falls_by_twice_poll() {
    let config = Config {
        min_poll: 6,
        max_poll: 8,
        ..Config::rfc5905()
    };
    // `synced` made one quiet update: +6.
    let mut discipline = synced(config, 0.0);
    assert_eq!(discipline.poll_hysteresis(), 6);
    for (n, count) in [12, 18, 24, 30].into_iter().enumerate() {
        let t = 64.0 * (n as f64 + 1.0);
        discipline
            .handle_update(at(t), Update::new(0.0, 0.0))
            .unwrap();
        assert_eq!(
            (discipline.poll(), discipline.poll_hysteresis()),
            (6, count)
        );
    }
    discipline
        .handle_update(at(320.0), Update::new(0.0, 0.0))
        .unwrap();
    assert_eq!((discipline.poll(), discipline.poll_hysteresis()), (7, 0));
    // A persistent 0.1 s offset: the jump inflates the jitter (sample 0.1^2,
    // weight 1/8), so the gate 4 * jitter first lets it pass; with no
    // further change the jitter decays by 7/8 per update until
    // 16 * jitter^2 < 0.1^2 after the sixth one. Then -2 * poll per update.
    let expected = [
        (7, 7),
        (7, 14),
        (7, 21),
        (7, 28),
        (8, 0),
        (8, 8),
        (8, -8),
        (8, -24),
        (7, 0),
        (7, -14),
        (7, -28),
        (6, 0),
    ];
    for (n, expected) in expected.into_iter().enumerate() {
        let t = 320.0 + 128.0 * (n as f64 + 1.0);
        discipline
            .handle_update(at(t), Update::new(0.1, 0.0))
            .unwrap();
        assert_eq!(
            (discipline.poll(), discipline.poll_hysteresis()),
            expected,
            "update {n}"
        );
    }
    assert!(discipline.jitter() > 0.0);
}

#[test]
fn bad_input_is_refused_without_a_trace() {
    let mut discipline = synced(Config::rfc5905(), 3e-6);
    let before = format!("{discipline:?}");
    let cases = [
        (Update::new(f64::NAN, 0.0), UpdateError::NonFiniteOffset),
        (
            Update::new(f64::NEG_INFINITY, 0.0),
            UpdateError::NonFiniteOffset,
        ),
        (Update::new(3e9, 0.0), UpdateError::OffsetOutOfRange),
        (Update::new(0.0, -1e-3), UpdateError::InvalidJitter),
        (Update::new(0.0, f64::NAN), UpdateError::InvalidJitter),
        (Update::new(0.0, f64::INFINITY), UpdateError::InvalidJitter),
        (
            Update::new(0.0, 0.0).with_precision(-1e-9),
            UpdateError::InvalidPrecision,
        ),
        (
            Update::new(0.0, 0.0).with_precision(f64::NAN),
            UpdateError::InvalidPrecision,
        ),
    ];
    for (update, error) in cases {
        assert_eq!(discipline.handle_update(at(64.0), update), Err(error));
    }
    let far = Date::from_utc(UtcDateTime::new(2124, 1, 1, 0, 0, 0, 0).unwrap()).unwrap();
    assert_eq!(
        discipline.handle_update(far, Update::new(0.0, 0.0)),
        Err(UpdateError::TimeOutOfRange)
    );
    discipline.handle_timeout(far);
    assert_eq!(format!("{discipline:?}"), before);
}

#[test]
fn time_going_back_keeps_the_timeline_monotonic() {
    let mut discipline = synced(Config::rfc5905(), 0.0);
    discipline
        .handle_update(at(100.0), Update::new(0.0, 1e-3))
        .unwrap();
    drain(&mut discipline);
    // Somebody set the clock back by 60 s: the offsets now show +60 s.
    assert_eq!(
        discipline.handle_update(at(40.0), Update::new(60.0, 1e-3)),
        Ok(UpdateOutcome::Ignored(IgnoreReason::Spike))
    );
    // The discipline's next second is one second after the new reading...
    discipline.handle_timeout(at(40.0));
    assert_eq!(
        drain(&mut discipline).last(),
        Some(&Output::Timeout(at(41.0)))
    );
    // ...and the stepout counts on its own timeline: 900 s after the update
    // at 100 s is 940 s on the set-back clock.
    assert_eq!(
        discipline.handle_update(at(939.0), Update::new(60.0, 1e-3)),
        Ok(UpdateOutcome::Ignored(IgnoreReason::Spike))
    );
    assert_eq!(
        discipline.handle_update(at(941.0), Update::new(60.0, 1e-3)),
        Ok(UpdateOutcome::Step(NtpDuration::from_seconds(60)))
    );
}

fn june_30(hour: u8, minute: u8, second: u8) -> Date {
    Date::from_utc(UtcDateTime::new(2015, 6, 30, hour, minute, second, 0).unwrap()).unwrap()
}

#[test]
fn leap_indicator_arms_disarms_and_applies_once() {
    let start = june_30(23, 0, 0);
    let mut discipline = Discipline::with_frequency(Config::rfc5905(), start, 0.0).unwrap();
    let insert = Update::new(0.0, 1e-3).with_leap(LeapIndicator::InsertSecond);
    discipline.handle_update(start, insert).unwrap();
    let leap = LeapSecond {
        kind: LeapKind::Insert,
        at: june_30(23, 59, 59)
            .checked_add(NtpDuration::ONE_SECOND)
            .unwrap(),
    };
    assert_eq!(discipline.leap_second(), Some(leap));
    let outputs = drain(&mut discipline);
    assert_eq!(outputs[0], Output::Leap(LeapEvent::Armed(leap)));
    // Seen again: no new notice.
    discipline.handle_update(start, insert).unwrap();
    assert_eq!(drain(&mut discipline).len(), 2);
    // Withdrawn, then announced again.
    discipline
        .handle_update(start, Update::new(0.0, 1e-3))
        .unwrap();
    assert_eq!(drain(&mut discipline)[0], Output::Leap(LeapEvent::Disarmed));
    discipline.handle_update(start, insert).unwrap();
    drain(&mut discipline);

    // Half a second before: the deadline is the leap moment itself.
    let before = leap
        .at
        .checked_sub(NtpDuration::from_seconds_f64(0.5).unwrap())
        .unwrap();
    discipline.handle_timeout(before);
    assert_eq!(
        drain(&mut discipline).last(),
        Some(&Output::Timeout(leap.at))
    );
    discipline.handle_timeout(leap.at);
    assert_eq!(
        discipline.poll_output(),
        Output::Leap(LeapEvent::Apply(leap))
    );
    assert_eq!(discipline.leap_second(), None);
    drain(&mut discipline);
    // The caller stepped back 1 s; crossing the same reading again and
    // another announcement for the same moment do nothing.
    let repeated = leap.at.checked_sub(NtpDuration::ONE_SECOND).unwrap();
    discipline.handle_update(repeated, insert).unwrap();
    discipline.handle_timeout(leap.at);
    assert!(
        drain(&mut discipline)
            .iter()
            .all(|output| !matches!(output, Output::Leap(_)))
    );
}

#[test]
fn leap_indicator_in_march_is_ignored() {
    let mut discipline = synced(Config::rfc5905(), 0.0);
    discipline
        .handle_update(
            at(64.0),
            Update::new(0.0, 1e-3).with_leap(LeapIndicator::DeleteSecond),
        )
        .unwrap();
    assert_eq!(discipline.leap_second(), None);
    assert!(
        drain(&mut discipline)
            .iter()
            .all(|output| !matches!(output, Output::Leap(_)))
    );
}

#[derive(Clone, Debug)]
enum Op {
    Update {
        dt: f64,
        offset: f64,
        jitter: f64,
        leap: u8,
    },
    Timeout {
        dt: f64,
    },
}

fn special() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -0.2..0.2f64,
        1 => -3000.0..3000.0f64,
        1 => prop::num::f64::ANY,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-1e300),
        1 => Just(STEPT),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let dt = prop_oneof![4 => 0.0..70.0f64, 1 => -100.0..100.0f64, 1 => special()];
    prop_oneof![
        (dt.clone(), special(), special(), 0..4u8).prop_map(|(dt, offset, jitter, leap)| {
            Op::Update {
                dt,
                offset,
                jitter,
                leap,
            }
        }),
        dt.prop_map(|dt| Op::Timeout { dt }),
    ]
}

proptest! {
    #[test]
    fn any_input_sequence_keeps_the_state_sane(
        fset in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let config = Config { min_poll: 4, max_poll: 12, ..Config::rfc5905() };
        let mut now = june_30(12, 0, 0);
        let mut discipline = if fset {
            Discipline::with_frequency(config, now, 1e-5).unwrap()
        } else {
            Discipline::new(config, now).unwrap()
        };
        for op in ops {
            let dt = match op { Op::Update { dt, .. } | Op::Timeout { dt } => dt };
            if let Ok(duration) = NtpDuration::from_seconds_f64(dt) {
                if let Some(next) = now.checked_add(duration) {
                    now = next;
                }
            }
            match op {
                Op::Update { offset, jitter, leap, .. } => {
                    let update = Update::new(offset, jitter).with_leap(LeapIndicator::from_bits(leap));
                    let _ = discipline.handle_update(now, update);
                }
                Op::Timeout { .. } => discipline.handle_timeout(now),
            }
            for output in drain(&mut discipline) {
                match output {
                    Output::Adjust(adjust) => {
                        prop_assert!(adjust.frequency.abs() <= MAXFREQ);
                        prop_assert!(adjust.phase_slew.abs() <= MAXSLEW);
                    }
                    Output::Step(step) => {
                        now = now.checked_add(step).unwrap_or(now);
                    }
                    Output::Panic { offset } => prop_assert!(offset.is_finite()),
                    _ => {}
                }
            }
            prop_assert!(discipline.frequency().abs() <= MAXFREQ);
            prop_assert!(discipline.jitter().is_finite());
            prop_assert!(discipline.wander().is_finite());
            prop_assert!(discipline.residual_offset().is_finite());
            prop_assert!((4..=12).contains(&discipline.poll()));
            prop_assert!(discipline.poll_hysteresis().abs() <= LIMIT);
        }
    }
}

/// A model clock disciplined by the default estimator: the discipline,
/// the offset of the reference from the clock, the rate correction in
/// force, the clock's reading (seconds since `base`) and true time.
struct ModelClock {
    discipline: Discipline,
    true_offset: f64,
    rate: f64,
    clock: f64,
    truth: f64,
}

impl ModelClock {
    fn new(config: Config, start_offset: f64) -> Self {
        Self {
            discipline: Discipline::new(config, base()).unwrap(),
            true_offset: start_offset,
            rate: 0.0,
            clock: 0.0,
            truth: 0.0,
        }
    }

    /// Hands the discipline an exact measurement said to be within
    /// `uncertainty`.
    fn measure(&mut self, uncertainty: f64) {
        let update = Update::new(self.true_offset, 1e-5).with_uncertainty(uncertainty);
        self.discipline
            .handle_update(at(self.clock), update)
            .unwrap();
    }

    /// Serves a due timeout, applies the outputs and runs the oscillator,
    /// `skew` fast, for `step` seconds.
    fn advance(&mut self, step: f64, skew: f64) {
        if at(self.clock) >= self.discipline.next_timeout() {
            self.discipline.handle_timeout(at(self.clock));
        }
        loop {
            match self.discipline.poll_output() {
                Output::Adjust(adjust) => self.rate = adjust.rate(),
                Output::Step(by) => {
                    self.clock += by.to_seconds_f64();
                    self.true_offset -= by.to_seconds_f64();
                }
                Output::Timeout(_) => break,
                _ => {}
            }
        }
        self.truth += step;
        self.clock += step * (1.0 + skew + self.rate);
        self.true_offset -= step * (skew + self.rate);
    }
}

/// A model clock running `skew` fast, disciplined by the default estimator
/// with exact offsets every `poll` seconds, a timeout served whenever due.
fn kalman_run(skew: f64, start_offset: f64, poll: f64, duration: f64) -> (Discipline, f64) {
    let mut model = ModelClock::new(Config::default(), start_offset);
    let mut next_update = 0.0;
    while model.truth < duration {
        if model.truth >= next_update {
            model.measure(1e-6);
            next_update += poll;
        }
        model.advance(0.25, skew);
    }
    (model.discipline, model.true_offset)
}

#[test]
fn an_update_s_own_precision_replaces_the_clock_s_as_its_floor() {
    // Exact offsets doubted by 10 ns, every 16 s: the clock jitter
    // settles at the floor, 2^-18 s for the clock, 20 ns for a
    // reference clock that says it is that precise.
    let jitter_after = |precision: f64| {
        let mut discipline = Discipline::new(Config::default(), base()).unwrap();
        for i in 0..64 {
            let update = Update::new(0.0, 1e-8)
                .with_uncertainty(1e-8)
                .with_precision(precision);
            discipline
                .handle_update(at(16.0 * f64::from(i)), update)
                .unwrap();
        }
        discipline.jitter()
    };
    let clock_floor = libm::exp2(f64::from(crate::PRECISION));
    assert!(
        close(jitter_after(0.0), clock_floor),
        "{}",
        jitter_after(0.0)
    );
    assert!(close(jitter_after(20e-9), 20e-9), "{}", jitter_after(20e-9));
}

#[test]
fn kalman_learns_the_frequency_and_removes_the_offset() {
    let (discipline, offset) = kalman_run(20e-6, 0.01, 16.0, 2000.0);
    assert!(offset.abs() < 1e-6, "offset {offset}");
    assert!(
        (discipline.frequency() + 20e-6).abs() < 1e-8,
        "{}",
        discipline.frequency()
    );
}

/// Runs a Kalman discipline against a clock that needs `needed` rate
/// correction (a clock `needed` slow), polling every `poll` seconds from a
/// zero offset for `seconds`; returns the discipline, the offset left and
/// the outcomes.
fn run_against(
    config: Config,
    needed: f64,
    poll: u32,
    seconds: u32,
) -> (Discipline, f64, Vec<UpdateOutcome>) {
    run_from(
        Discipline::new(config, base()).unwrap(),
        needed,
        poll,
        seconds,
    )
}

/// As [`run_against`], from a given discipline (at `base()`).
fn run_from(
    mut discipline: Discipline,
    needed: f64,
    poll: u32,
    seconds: u32,
) -> (Discipline, f64, Vec<UpdateOutcome>) {
    let mut rate = 0.0;
    let mut offset = 0.0;
    let mut outcomes = Vec::new();
    for second in 0..=seconds {
        let now = at(f64::from(second));
        if second % poll == 0 {
            outcomes.push(
                discipline
                    .handle_update(now, Update::new(offset, 1e-4))
                    .unwrap(),
            );
        }
        discipline.handle_timeout(now);
        for output in drain(&mut discipline) {
            match output {
                Output::Adjust(adjust) => rate = adjust.rate(),
                Output::Step(step) => offset -= step.to_seconds_f64(),
                _ => {}
            }
        }
        // The clock falls behind by what it lacks, the correction helps.
        offset += needed - rate;
    }
    (discipline, offset, outcomes)
}

#[test]
fn a_wide_rate_range_follows_an_oscillator_five_percent_off() {
    let wide = wide_rate();
    let (discipline, offset, outcomes) = run_against(wide, 0.05, 2, 600);
    assert!(
        (discipline.frequency() - 0.05).abs() < 1e-6,
        "{}",
        discipline.frequency()
    );
    assert!(offset.abs() < 1e-3, "{offset}");
    assert!(
        !outcomes
            .iter()
            .any(|o| matches!(o, UpdateOutcome::Ignored(IgnoreReason::Spike))),
        "{outcomes:?}"
    );
    // RFC 5905's 500 ppm cannot: the frequency stays clamped.
    let (narrow, _, _) = run_against(Config::default(), 0.05, 2, 600);
    assert!(narrow.frequency() <= MAXFREQ);
}

#[test]
fn rate_limits_are_validated() {
    for (max_rate, max_frequency, max_slew) in [
        (0.6, 0.1, 0.01),
        (0.1, 0.2, 0.01),
        (0.1, 0.1, 0.2),
        (0.0, 0.0, 0.0),
        (f64::NAN, 0.1, 0.1),
    ] {
        let config = Config {
            max_rate,
            max_frequency,
            max_slew,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::RateLimits));
    }
    let wide = wide_slew();
    assert_eq!(wide.validate(), Ok(()));
    // A drift file frequency beyond the configured range is refused.
    assert_eq!(
        Discipline::with_frequency(Config::default(), base(), 0.01).unwrap_err(),
        ConfigError::InitialFrequency
    );
    assert!(Discipline::with_frequency(wide, base(), 0.01).is_ok());
}

#[test]
fn the_frequency_sd_falls_as_measurements_come() {
    let fresh = Discipline::new(Config::default(), base()).unwrap();
    assert_eq!(fresh.frequency_sd(), None);
    let (short, _) = kalman_run(20e-6, 0.01, 16.0, 3.0);
    let (long, _) = kalman_run(20e-6, 0.01, 16.0, 2000.0);
    let short = short.frequency_sd().unwrap();
    let long = long.frequency_sd().unwrap();
    // One measurement knows nothing of the frequency (the prior); 2000 s
    // of 1 us measurements know it to far better than a drift file.
    assert!(short > 100e-6, "{short}");
    assert!(long < DRIFT_FILE_FREQUENCY_SD / 10.0, "{long}");
    let rfc = Discipline::new(Config::rfc5905(), base()).unwrap();
    assert_eq!(rfc.frequency_sd(), None);
}

#[test]
#[allow(clippy::float_cmp, reason = "powers of two: the gates are exact")]
fn poll_targets_map_to_poll_gates_by_the_cube_rule() {
    let default = Config::default();
    assert_eq!(default.poll_gate, POLL_GATE);
    let target = |n| default.with_poll_target(n).map(|c| c.poll_gate);
    // chrony's default target is our default gate; 1 is 8^3 times wider.
    assert_eq!(target(DEFAULT_POLL_TARGET), Some(POLL_GATE));
    assert_eq!(target(1), Some(POLL_GATE * 512.0));
    assert_eq!(target(16), Some(POLL_GATE / 8.0));
    assert_eq!(target(0), None);
    assert_eq!(target(61), None);
    for poll_gate in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_POLL_GATE * 2.0] {
        let config = Config {
            poll_gate,
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::PollGate), "{poll_gate}");
    }
    for n in POLL_TARGET_RANGE {
        assert_eq!(default.with_poll_target(n).unwrap().validate(), Ok(()));
    }
}

#[test]
fn make_step_steps_small_offsets_within_its_update_limit() {
    let config = Config {
        make_step: Some(MakeStep {
            threshold: 0.01,
            limit: Some(1),
        }),
        ..Config::default()
    };
    // The frequency from a drift file: known from the first update on,
    // which counts toward the limit.
    let mut discipline = Discipline::with_frequency(config, base(), 0.0).unwrap();
    // Below STEPT, above the makestep threshold, first update: stepped.
    assert!(matches!(
        discipline.handle_update(base(), Update::new(0.05, 1e-4)),
        Ok(UpdateOutcome::Step(_))
    ));
    drain(&mut discipline);
    // The limit is reached: the same offset, once confirmed (the first
    // sample is an outlier to the filter), is slewed.
    assert_eq!(
        discipline.handle_update(at(16.0), Update::new(0.05, 1e-4)),
        Ok(UpdateOutcome::Ignored(IgnoreReason::Outlier))
    );
    assert_eq!(
        discipline.handle_update(at(32.0), Update::new(0.05, 1e-4)),
        Ok(UpdateOutcome::Slew)
    );

    // Without a drift file the frequency is unknown at the first update
    // (INITIAL_FREQUENCY_SD, 250 ppm, over a 64 s poll is 16 ms, above
    // the 10 ms threshold), so
    // that update does not use up the limit: 50 ms that a frequency 780
    // ppm off piles up by the second sample is stepped as well. From
    // then on the frequency is known and the limit is used up.
    let mut discipline = Discipline::new(config, base()).unwrap();
    assert!(matches!(
        discipline.handle_update(base(), Update::new(0.05, 1e-4)),
        Ok(UpdateOutcome::Step(_))
    ));
    drain(&mut discipline);
    assert!(matches!(
        discipline.handle_update(at(64.0), Update::new(0.05, 1e-4)),
        Ok(UpdateOutcome::Step(_))
    ));
    drain(&mut discipline);
    assert!(matches!(
        discipline.handle_update(at(128.0), Update::new(0.02, 1e-4)),
        Ok(UpdateOutcome::Ignored(_) | UpdateOutcome::Slew)
    ));
    let bad = Config {
        make_step: Some(MakeStep {
            threshold: -1.0,
            limit: None,
        }),
        ..Config::default()
    };
    assert_eq!(bad.validate(), Err(ConfigError::MakeStep));
}

#[test]
fn make_step_without_limit_steps_a_confirmed_jump_before_the_stepout() {
    let config = Config {
        make_step: Some(MakeStep {
            threshold: 1.0,
            limit: None,
        }),
        ..Config::default()
    };
    let mut discipline = Discipline::new(config, base()).unwrap();
    for second in 0..10 {
        let now = at(f64::from(second) * 16.0);
        discipline
            .handle_update(now, Update::new(0.0, 1e-4))
            .unwrap();
        drain(&mut discipline);
    }
    // The clock jumps by 100 s: the first sample is a spike, the second
    // confirms it and is stepped at once, long before WATCH (900 s).
    assert_eq!(
        discipline.handle_update(at(160.0), Update::new(100.0, 1e-4)),
        Ok(UpdateOutcome::Ignored(IgnoreReason::Spike))
    );
    assert!(matches!(
        discipline.handle_update(at(176.0), Update::new(100.0, 1e-4)),
        Ok(UpdateOutcome::Step(_))
    ));
    // Without makestep the same jump waits for the stepout.
    let mut plain = Discipline::new(Config::default(), base()).unwrap();
    for second in 0..10 {
        plain
            .handle_update(at(f64::from(second) * 16.0), Update::new(0.0, 1e-4))
            .unwrap();
        drain(&mut plain);
    }
    plain
        .handle_update(at(160.0), Update::new(100.0, 1e-4))
        .unwrap();
    assert_eq!(
        plain.handle_update(at(176.0), Update::new(100.0, 1e-4)),
        Ok(UpdateOutcome::Ignored(IgnoreReason::Spike))
    );
}

#[test]
fn corrections_take_longer_the_closer_they_are_to_their_noise() {
    // At its own noise level: one and a half update intervals.
    assert!(close(
        correction_time(1e-4, 1e-4, 64.0, CORRECTION_TIME_RATIO),
        96.0
    ));
    assert!(close(
        correction_time(-1e-4, 1e-4, 64.0, CORRECTION_TIME_RATIO),
        96.0
    ));
    // Ten standard deviations out: ten times faster.
    assert!(close(
        correction_time(1e-3, 1e-4, 64.0, CORRECTION_TIME_RATIO),
        9.6
    ));
    // Far below the noise, or nothing at all: three intervals at most.
    assert!(close(
        correction_time(1e-7, 1e-4, 64.0, CORRECTION_TIME_RATIO),
        192.0
    ));
    assert!(close(
        correction_time(0.0, 1e-4, 64.0, CORRECTION_TIME_RATIO),
        192.0
    ));
}

#[test]
fn an_initial_offset_is_slewed_at_once_and_noise_slowly() {
    let wide = wide_slew();
    let mut discipline = Discipline::new(wide, base()).unwrap();
    // 0.1 s, a thousand standard deviations: within 1.2 true seconds at
    // the 1/12 s/s limit, which the slewed clock, running 1/12 fast,
    // reads as 1.3.
    discipline
        .handle_update(base(), Update::new(0.1, 1e-4))
        .unwrap();
    let adjust = first_adjust(&mut discipline);
    assert!(close(adjust.phase_slew, crate::FAST_SLEW), "{adjust:?}");
    assert!((adjust.duration - 1.3).abs() < 1e-9, "{adjust:?}");
}

#[test]
fn a_drift_file_is_trusted_as_far_as_its_sd_says() {
    let wide = wide_rate();
    // The file says 200 ppm; the clock needs 300 ppm.
    let doubtful = Discipline::with_frequency_sd(wide, base(), 200e-6, 1e-3).unwrap();
    let (learnt, _, _) = run_from(doubtful, 300e-6, 16, 20);
    assert!(
        (learnt.frequency() - 300e-6).abs() < 1e-6,
        "{}",
        learnt.frequency()
    );
    // Trusted to 1 ppm, the second sample is an outlier, held until a
    // third confirms it: the estimate is still the file's.
    let trusted = Discipline::with_frequency(wide, base(), 200e-6).unwrap();
    let (slow, _, _) = run_from(trusted, 300e-6, 16, 20);
    assert!(
        (slow.frequency() - 300e-6).abs() > 1e-6,
        "{}",
        slow.frequency()
    );
    for bad in [0.0, -1e-6, f64::NAN, f64::INFINITY] {
        assert_eq!(
            Discipline::with_frequency_sd(wide, base(), 0.0, bad).unwrap_err(),
            ConfigError::InitialFrequency
        );
    }
}

#[test]
fn a_slew_ended_late_has_its_overshoot_taken_back_at_once() {
    let wide = wide_slew();
    let mut discipline = Discipline::new(wide, base()).unwrap();
    // 0.1 s measured with 60 us of uncertainty: slewed within 1.3 s at
    // 1/12 s/s, as above.
    discipline
        .handle_update(base(), Update::new(0.1, 1e-4).with_uncertainty(60e-6))
        .unwrap();
    drain(&mut discipline);
    let Some(end) = discipline.slew_end else {
        panic!("no slew planned");
    };
    // The caller's timer fires 1 ms late on the slewed clock (1/12 fast):
    // the slew ran on for 1 / (1 + 1/12) ms and overshot by 77 us.
    let late = base()
        .checked_add(end.saturating_add(NtpDuration::from_nanos(1_000_000)))
        .unwrap();
    discipline.handle_timeout(late);
    let adjust = first_adjust(&mut discipline);
    // Known to the clock's precision (2^-18 s), the overshoot goes back
    // within seconds, not at the pace of the measurement's 60 us of
    // noise (over a minute at the 64 s poll).
    let taken_back = adjust.phase_slew * adjust.duration;
    let overshoot = crate::FAST_SLEW * 1e-3 / (1.0 + crate::FAST_SLEW);
    assert!(adjust.duration < 10.0, "{adjust:?}");
    assert!(
        (taken_back + overshoot).abs() < 1e-6,
        "{adjust:?}: {taken_back}"
    );
}

#[test]
fn a_jump_faster_than_any_frequency_keeps_what_the_frequency_knew() {
    let config = Config {
        make_step: Some(MakeStep {
            threshold: 0.1,
            limit: None,
        }),
        ..Config::default()
    };
    let learnt = || {
        let mut discipline = Discipline::new(config, base()).unwrap();
        for second in 0..20 {
            discipline
                .handle_update(at(f64::from(second) * 16.0), Update::new(0.0, 1e-4))
                .unwrap();
            drain(&mut discipline);
        }
        discipline
    };
    let p11 = |discipline: &Discipline| discipline.kalman.unwrap().p11;
    // 100 s within 16 s: no oscillator does that (500 ppm at most here),
    // the clock was stepped. The frequency's variance stays as it was.
    let mut stepped = learnt();
    let before = p11(&stepped);
    stepped
        .handle_update(at(320.0), Update::new(100.0, 1e-4))
        .unwrap();
    assert!(matches!(
        stepped.handle_update(at(336.0), Update::new(100.0, 1e-4)),
        Ok(UpdateOutcome::Step(_))
    ));
    assert!(p11(&stepped) <= before * 1.01, "{} {before}", p11(&stepped));
    // 0.2 s in 16 s (12 500 ppm) is also beyond the range, but 4 ms
    // seen 16 s after the last sample (250 ppm) could be the oscillator:
    // that widens the frequency's uncertainty.
    let mut drifted = learnt();
    let before = p11(&drifted);
    let config_small = Config {
        make_step: Some(MakeStep {
            threshold: 1e-3,
            limit: None,
        }),
        step_threshold: 1e-3,
        ..config
    };
    drifted.config = config_small;
    drifted
        .handle_update(at(320.0), Update::new(4e-3, 1e-4))
        .unwrap();
    drain(&mut drifted);
    drifted
        .handle_update(at(336.0), Update::new(4e-3, 1e-4))
        .unwrap();
    assert!(p11(&drifted) > before * 100.0, "{} {before}", p11(&drifted));
}

#[test]
fn a_step_by_somebody_else_is_not_elapsed_time() {
    let wide = wide_slew();
    let run = |told: bool| {
        let mut discipline = Discipline::new(wide, base()).unwrap();
        // 0.1 s to slew, within 1.3 s at 1/12 s/s.
        discipline
            .handle_update(base(), Update::new(0.1, 1e-4))
            .unwrap();
        drain(&mut discipline);
        // Half a second later somebody steps the clock 10 000 s ahead.
        let by = NtpDuration::from_seconds_f64(10_000.0).unwrap();
        if told {
            discipline.clock_stepped(by);
        }
        discipline.handle_timeout(at(10_000.5));
        drain(&mut discipline);
        discipline
    };
    let told = run(true);
    // Half a second of slewing at 1/12 s/s, read off the slewed clock.
    let expected = 0.5 * crate::FAST_SLEW / (1.0 + crate::FAST_SLEW);
    assert!(
        (told.cumulative_slew() - expected).abs() < 1e-9,
        "{}",
        told.cumulative_slew()
    );
    assert!(told.slew_end.is_some(), "the slew goes on");
    // Untold, the 10 000 s read as elapsed: the whole slew counts as done,
    // and whatever the rate did over them as applied.
    let untold = run(false);
    assert!(
        untold.cumulative_slew() > 0.09,
        "{}",
        untold.cumulative_slew()
    );
}

#[test]
fn corrections_are_timed_by_the_noise_of_a_sample_not_of_the_estimate() {
    // Forty samples of 1 ms noise at poll 64 s, the frequency known: the
    // estimate's own deviation is a fraction of a sample's. An update that
    // agrees with the prediction (no surprise, no slew left) is timed as
    // chrony times it, by the samples' deviation (its offset_sd): an
    // estimate of half a sample's noise is spread over the longest
    // correction time, not slewed as if it stood several deviations out.
    let mut discipline = synced(wide_slew(), 0.0);
    for n in 1..=40 {
        discipline
            .handle_update(at(f64::from(n) * 64.0), Update::new(0.0, 1e-3))
            .unwrap();
        drain(&mut discipline);
    }
    let filter = discipline.kalman.unwrap();
    let own = libm::sqrt(filter.p00);
    assert!(own < 0.5e-3, "{own}");
    let sigma = discipline.update_sigma(&filter, 0.0);
    assert!((sigma - 1e-3).abs() < 1e-9, "{sigma}");
    // So half a millisecond takes three half intervals, not a third of
    // that.
    assert!(close(
        correction_time(0.5e-3, sigma, 64.0, CORRECTION_TIME_RATIO),
        192.0
    ));
}

#[test]
fn max_change_ignores_large_offsets_after_its_start_then_panics() {
    // chrony's 131-maxchange: maxchange 0.1 1 3.
    let config = Config {
        max_change: Some(MaxChange {
            offset: 0.1,
            start: 1,
            ignore: Some(3),
        }),
        ..Config::default()
    };
    let mut discipline = Discipline::with_frequency(config, base(), 0.0).unwrap();
    // The first update is not checked: a 0.5 s start offset is corrected.
    assert!(matches!(
        discipline.handle_update(base(), Update::new(0.5, 1e-4)),
        Ok(UpdateOutcome::Step(_))
    ));
    drain(&mut discipline);
    for second in 1..5 {
        let now = at(f64::from(second) * 16.0);
        assert_eq!(
            discipline.handle_update(now, Update::new(0.0, 1e-4)),
            Ok(UpdateOutcome::Slew)
        );
        drain(&mut discipline);
    }
    let frequency = discipline.frequency();
    // A jump of 1 s: ignored three times, with the state untouched...
    for second in 5..8 {
        assert_eq!(
            discipline.handle_update(at(f64::from(second) * 16.0), Update::new(1.0, 1e-4)),
            Ok(UpdateOutcome::Ignored(IgnoreReason::MaxChange))
        );
        assert_eq!(
            discipline.poll_output(),
            Output::Timeout(discipline.next_timeout())
        );
    }
    assert_eq!(discipline.frequency().to_bits(), frequency.to_bits());
    // ... small offsets still pass ...
    assert_eq!(
        discipline.handle_update(at(8.0 * 16.0), Update::new(0.05, 1e-4)),
        Ok(UpdateOutcome::Ignored(IgnoreReason::Outlier))
    );
    // ... and the fourth large one is a panic.
    assert_eq!(
        discipline.handle_update(at(9.0 * 16.0), Update::new(1.0, 1e-4)),
        Ok(UpdateOutcome::Panic(1.0))
    );
    assert_eq!(discipline.poll_output(), Output::Panic { offset: 1.0 });

    // Without an ignore count it never panics.
    let forever = Config {
        max_change: Some(MaxChange {
            offset: 0.1,
            start: 0,
            ignore: None,
        }),
        ..Config::default()
    };
    let mut discipline = Discipline::with_frequency(forever, base(), 0.0).unwrap();
    for second in 0..20 {
        assert_eq!(
            discipline.handle_update(at(f64::from(second) * 16.0), Update::new(0.5, 1e-4)),
            Ok(UpdateOutcome::Ignored(IgnoreReason::MaxChange))
        );
    }
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let config = Config {
            max_change: Some(MaxChange {
                offset: bad,
                start: 0,
                ignore: None,
            }),
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::MaxChange), "{bad}");
    }
}

#[test]
fn the_correction_time_ratio_paces_the_slew() {
    // chrony's corrtimeratio 1e10: every offset that does not stand out
    // by 1e10 deviations is slewed over ages (up to ratio x interval).
    assert!(close(correction_time(1e-3, 1e-4, 64.0, 1e10), 3.2e10));
    assert!(close(correction_time(1e-9, 1e-4, 64.0, 1e10), 64e10));
    assert!(close(correction_time(1e-3, 1e-4, 64.0, 1.0), 3.2));
    for bad in [0.5, f64::NAN, 1e13] {
        let config = Config {
            correction_time_ratio: bad,
            ..Config::default()
        };
        assert_eq!(
            config.validate(),
            Err(ConfigError::CorrectionTimeRatio),
            "{bad}"
        );
    }
}

/// A clock that needs 10 ppm for 8000 s, then 30 ppm, polled every 16 s
/// until `stop`; then no update up to `seconds`. Returns the discipline
/// and the frequency correction in force at each second.
fn run_with_fallback(config: Config, stop: u32, seconds: u32) -> (Discipline, Vec<f64>) {
    let mut discipline = Discipline::with_frequency(config, base(), 10e-6).unwrap();
    let (mut rate, mut frequency, mut offset) = (0.0, 0.0, 0.0);
    let mut frequencies = Vec::new();
    for second in 0..=seconds {
        let now = at(f64::from(second));
        if second < stop && second % 16 == 0 {
            discipline
                .handle_update(now, Update::new(offset, 1e-5).with_uncertainty(1e-6))
                .unwrap();
        }
        if now >= discipline.next_timeout() {
            discipline.handle_timeout(now);
        }
        for output in drain(&mut discipline) {
            if let Output::Adjust(adjust) = output {
                rate = adjust.rate();
                frequency = adjust.frequency;
            }
        }
        frequencies.push(frequency);
        let needed = if second < 8000 { 10e-6 } else { 30e-6 };
        offset += needed - rate;
    }
    (discipline, frequencies)
}

#[test]
fn fallback_drift_runs_the_clock_at_long_term_averages_once_updates_stop() {
    let config = Config {
        fallback_drift: Some(FallbackDrift { min: 6, max: 12 }),
        ..Config::default()
    };
    let stop = 8300;
    let (mut discipline, rates) = run_with_fallback(config, stop, stop + 5000);
    let rate_at = |second: u32| {
        rates
            .get(usize::try_from(second).unwrap())
            .copied()
            .unwrap()
    };
    // Before 2^6 s without an update: the frequency of the last one, the
    // 30 ppm of the last 300 s.
    let last = rate_at(stop + 50);
    assert!((last - 30e-6).abs() < 3e-6, "{last}");
    // Then the short averages, which the 300 s at 30 ppm dominate ...
    let short = rate_at(stop + 70);
    assert!(short > 20e-6, "{short}");
    // ... and from 2^12 s on, the last 4096 s: 3800 s at 10 ppm, 300 s
    // at 30 ppm (an exponential mean weighs the recent more).
    let long = rate_at(stop + 4200);
    assert!(long > 10e-6 && long < 17e-6, "{long}");
    assert_eq!(discipline.fallback_drift(), Some(12));
    // Each switch came at its interval: nothing between 2^11 and 2^12 s.
    assert_eq!(
        rate_at(stop + 2100).to_bits(),
        rate_at(stop + 4000).to_bits()
    );
    // The next update ends the fallback.
    let now = at(f64::from(stop + 5001));
    discipline
        .handle_update(now, Update::new(0.0, 1e-5))
        .unwrap();
    assert_eq!(discipline.fallback_drift(), None);
    // Without the rule, the last frequency stays.
    let (plain, rates) = run_with_fallback(Config::default(), stop, stop + 5000);
    assert_eq!(plain.fallback_drift(), None);
    let kept = rates.last().copied().unwrap();
    assert!((kept - 30e-6).abs() < 3e-6, "{kept}");
    // Exponents out of range are refused.
    for (min, max) in [(0, 4), (5, 4), (6, 31)] {
        let config = Config {
            fallback_drift: Some(FallbackDrift { min, max }),
            ..Config::default()
        };
        assert_eq!(config.validate(), Err(ConfigError::FallbackDrift));
    }
}

#[test]
fn a_sample_older_than_the_last_is_carried_forward_by_the_corrections_since() {
    // The clock is 1 ms behind and does not drift; the discipline slews
    // it. `offsets[s]` is what a sample taken at second s reads.
    let mut discipline = synced(Config::default(), 0.0);
    discipline
        .handle_update(at(16.0), Update::new(0.001, 1e-4).with_uncertainty(5e-4))
        .unwrap();
    let mut rate = first_adjust(&mut discipline).rate();
    assert!(rate > 0.0 && rate < 2e-4, "slewed over seconds: {rate}");
    let mut offsets = std::vec![0.001];
    for second in 17..=20 {
        let last = offsets.last().copied().unwrap_or(0.0);
        offsets.push(last - rate);
        discipline.handle_timeout(at(f64::from(second)));
        for output in drain(&mut discipline) {
            if let Output::Adjust(adjust) = output {
                rate = adjust.rate();
            }
        }
    }
    let (taken_at_17, taken_at_20) = (offsets[1], offsets[4]);
    let fresh = Update::new(taken_at_20, 1e-4).with_uncertainty(5e-4);
    discipline.handle_update(at(20.0), fresh).unwrap();
    drain(&mut discipline);
    // The same news twice: once as of now, once 3 s old, after the slew
    // of those 3 s. Both must leave the estimate in the same place.
    let mut again = discipline.clone();
    again.handle_update(at(20.0), fresh).unwrap();
    drain(&mut again);
    discipline
        .handle_update(
            at(20.0),
            Update::new(taken_at_17, 1e-4)
                .with_uncertainty(5e-4)
                .with_age(3.0),
        )
        .unwrap();
    drain(&mut discipline);
    let (late, now) = (discipline.residual_offset(), again.residual_offset());
    assert!((late - now).abs() < 1e-7, "aged {late} against fresh {now}");
}

/// `correction_at` undoes everything the discipline did to a model clock
/// (its own steps, an operator's step, slews, the frequency): an offset
/// plus it stays the free oscillator's, a line of the clock's skew.
#[test]
fn correction_at_recovers_the_free_oscillator() {
    for algorithm in [Algorithm::Kalman, Algorithm::Rfc5905] {
        let config = Config {
            algorithm,
            ..wide_rate()
        };
        let mut discipline = Discipline::new(config, base()).unwrap();
        let (skew, start) = (300e-6, 0.5);
        let mut true_offset = start; // reference - clock
        let (mut rate, mut clock, mut truth) = (0.0, 0.0, 0.0);
        let mut worst = 0.0_f64;
        let mut stepped = 0.0;
        for tick in 0..16_000_u32 {
            let now = at(clock);
            if tick % 64 == 0 {
                let free = true_offset + discipline.correction_at(now);
                worst = worst.max((free - (start - skew * truth)).abs());
                // Offsets the discipline takes, refused ones included.
                let _ = discipline.handle_update(now, Update::new(true_offset, 1e-4));
            }
            if tick == 8_000 {
                // Somebody else steps the clock 2 s forward.
                clock += 2.0;
                true_offset -= 2.0;
                discipline.clock_stepped(NtpDuration::from_seconds_f64(2.0).unwrap());
            }
            if at(clock) >= discipline.next_timeout() {
                discipline.handle_timeout(at(clock));
            }
            for output in drain(&mut discipline) {
                match output {
                    Output::Adjust(adjust) => rate = adjust.rate(),
                    Output::Step(by) => {
                        stepped += by.to_seconds_f64();
                        clock += by.to_seconds_f64();
                        true_offset -= by.to_seconds_f64();
                    }
                    _ => {}
                }
            }
            // A kernel corrects the oscillator's rate by `rate`.
            let gained = 0.25 * ((1.0 + skew) * (1.0 + rate) - 1.0);
            truth += 0.25;
            clock += 0.25 + gained;
            true_offset -= gained;
        }
        assert!(stepped != 0.0, "{algorithm:?}: the run should step");
        assert!(worst < 1e-6, "{algorithm:?}: {worst}");
    }
}

/// `slew_at` counts the phase slew in progress between two clock readings
/// (what a request's T1 must be moved by to sit in its answer's frame),
/// and not the frequency correction, which makes the clock run true.
#[test]
fn slew_at_is_the_phase_slewed_between_two_readings() {
    for algorithm in [Algorithm::Kalman, Algorithm::Rfc5905] {
        let config = Config {
            algorithm,
            ..Config::default()
        };
        let mut discipline = synced(config, 50e-6);
        discipline
            .handle_update(at(16.0), Update::new(0.001, 1e-4).with_uncertainty(5e-4))
            .unwrap();
        let adjust = first_adjust(&mut discipline);
        assert!(adjust.phase_slew > 0.0, "{algorithm:?}: {adjust:?}");
        // A 0.2 s round trip from 16.0 s: the phase slewed meanwhile, on
        // the clock's own time base.
        let slewed = discipline.slew_at(at(16.2)) - discipline.slew_at(at(16.0));
        let expected = adjust.phase_slew * 0.2 / (1.0 + adjust.rate());
        assert!(
            (slewed - expected).abs() < 1e-12 + expected.abs() * 1e-3,
            "{algorithm:?}: {slewed} against {expected}"
        );
        // Before the latest input counts as at it.
        assert!(
            (discipline.slew_at(at(10.0)) - discipline.cumulative_slew()).abs() < 1e-15,
            "{algorithm:?}"
        );
    }
}

#[test]
fn the_typical_variance_starts_as_the_plain_geometric_mean() {
    // A first sample doubted by a whole 1.2 s round trip, then precise
    // ones (chrony's 120-selectoptions): the typical variance is the
    // geometric mean of those seen, so the first weighs 1/n, not 7/8 at
    // the second update and half at the sixth.
    let mut discipline = Discipline::with_frequency(wide_slew(), base(), 0.0).unwrap();
    let first = 0.35_f64;
    let precise = 20e-6_f64;
    discipline
        .handle_update(base(), Update::new(-0.1, first).with_uncertainty(first))
        .unwrap();
    drain(&mut discipline);
    let typical = discipline.typical_variance.unwrap();
    assert!(close(typical, first * first), "{typical}");
    for n in 1..12_u8 {
        discipline
            .handle_update(
                at(f64::from(n) * 64.0),
                Update::new(0.0, precise).with_uncertainty(precise),
            )
            .unwrap();
        drain(&mut discipline);
        let seen = f64::from(n) + 1.0;
        let typical = discipline.typical_variance.unwrap();
        let expected = if seen <= 8.0 {
            // exp((ln v1 + (n - 1) ln v) / n)
            libm::exp(
                (libm::log(first * first) + (seen - 1.0) * libm::log(precise * precise)) / seen,
            )
        } else {
            typical
        };
        assert!(
            (typical / expected - 1.0).abs() < 1e-9,
            "{n}: {typical} {expected}"
        );
    }
    // From the eighth on, the exponential average: the first's share
    // keeps shrinking by 7/8 per update.
    let ratio = libm::log(discipline.typical_variance.unwrap() / (precise * precise))
        / libm::log(first * first / (precise * precise));
    assert!(
        (ratio - 0.125 * 0.875 * 0.875 * 0.875 * 0.875).abs() < 1e-9,
        "{ratio}"
    );
}

#[test]
fn a_more_precise_measurement_may_hurry_the_slew_in_progress() {
    // A slew planned on a doubtful measurement paces a confirming update
    // only as far as that update is no more precise.
    let mut discipline = synced(wide_slew(), 0.0);
    discipline.residual = 0.05;
    discipline.slew_variance = 0.1 * 0.1;
    discipline.measured_variance = 0.1 * 0.1;
    assert!(close(discipline.slew_confidence(), 1.0));
    discipline.measured_variance = 1e-3 * 1e-3;
    assert!(close(discipline.slew_confidence(), 0.01));
    // Less precise: the whole residual still paces it.
    discipline.measured_variance = 1.0;
    assert!(close(discipline.slew_confidence(), 1.0));
    // No slew planned yet.
    discipline.slew_variance = 0.0;
    assert!(close(discipline.slew_confidence(), 1.0));
    let filter = discipline.kalman.unwrap();
    discipline.typical_variance = Some(1e-12);
    discipline.measured_variance = 1e-3 * 1e-3;
    discipline.slew_variance = 0.1 * 0.1;
    // The residual's share (0.5 ms) or the filter's own doubt, not the
    // whole 50 ms left.
    let sigma = discipline.update_sigma(&filter, 0.0);
    let own = libm::sqrt(filter.p00);
    assert!(close(sigma, own.max(0.05 * 0.01)), "{sigma} {own}");
    discipline.measured_variance = 0.1 * 0.1;
    let sigma = discipline.update_sigma(&filter, 0.0);
    assert!(close(sigma, 0.05), "{sigma}");
}

/// The poll exponents the default estimator chose over `duration` seconds
/// of a model clock whose frequency error starts at 20 ppm and changes
/// by `ramp` per second, measured exactly and said to be within 100 us at
/// every poll, and the largest offset of the clock over the second half.
fn polls_under_ramp(config: Config, ramp: f64, duration: f64) -> (Vec<i8>, f64) {
    let mut model = ModelClock::new(config, 0.0);
    let mut next_update = 0.0;
    let mut polls = Vec::new();
    let mut worst: f64 = 0.0;
    while model.truth < duration {
        if model.truth >= next_update {
            model.measure(1e-4);
            polls.push(model.discipline.poll());
            next_update += model.discipline.poll_interval().to_seconds_f64();
        }
        model.advance(0.5, 20e-6 + ramp * model.truth);
        if model.truth > duration / 2.0 {
            worst = worst.max(model.true_offset.abs());
        }
    }
    (polls, worst)
}

#[test]
fn the_poll_does_not_climb_while_the_predictions_fail() {
    // A steady oscillator: the predictions hold, the poll climbs as far
    // as the assumed wander lets it and stays there.
    let (steady, _) = polls_under_ramp(Config::default(), 0.0, 40_000.0);
    let top = steady.iter().max().copied().unwrap();
    let reached = steady.iter().position(|&poll| poll == top).unwrap();
    assert!(reached < steady.len() / 2, "{steady:?}");
    assert!(
        steady[reached..].iter().all(|&poll| poll == top),
        "{steady:?}"
    );
    // One whose frequency runs away by 5 ppm an hour, far beyond the
    // wander the estimator assumes: every long interval ends far off the
    // prediction, and the poll climbs again only once the innovations
    // are back within twice their predicted size. The clock then stays
    // within three times the error of polling at the minimum throughout
    // (climbing on the predicted growth alone, 4.2 times: 2.1 ms).
    let ramp = 5e-6 / 3600.0;
    let (_, worst) = polls_under_ramp(Config::default(), ramp, 40_000.0);
    let (_, fixed) = polls_under_ramp(Config::default().with_poll_range(6, 6), ramp, 40_000.0);
    assert!(
        worst < 3.0 * fixed,
        "clock {worst} s off, {fixed} s at poll 6"
    );
}

#[test]
fn a_first_batch_steps_once_with_the_frequency_its_samples_measured() {
    // A clock 100 s behind and 500 ppm slow (chrony's 201, case 10 without
    // the drift file), measured exactly at 0, 64 and 128 s and handed over
    // at 128 s as one batch, with makestep 1 1.
    let config = Config {
        make_step: Some(MakeStep {
            threshold: 1.0,
            limit: Some(1),
        }),
        ..wide_slew()
    };
    let mut discipline = Discipline::new(config, base()).unwrap();
    drain(&mut discipline);
    let now = at(128.0);
    let offset = |t: f64| 100.0 + 500e-6 * t;
    for (index, t) in [0.0, 64.0, 128.0].into_iter().enumerate() {
        let update = Update::new(offset(t), 1e-6)
            .with_uncertainty(1e-6)
            .with_age(128.0 - t)
            .with_batched(index < 2);
        let outcome = discipline.handle_update(now, update).unwrap();
        if index < 2 {
            assert_eq!(outcome, UpdateOutcome::Ignored(IgnoreReason::Batched));
            assert_eq!(discipline.state(), State::Nset);
        } else {
            let UpdateOutcome::Step(step) = outcome else {
                panic!("{outcome:?}");
            };
            assert!(
                (step.to_seconds_f64() - offset(128.0)).abs() < 1e-5,
                "{step:?}"
            );
        }
    }
    // The first two samples moved nothing: one step, and the frequency
    // from all three.
    let outputs = drain(&mut discipline);
    assert_eq!(
        outputs
            .iter()
            .filter(|output| matches!(output, Output::Step(_)))
            .count(),
        1,
        "{outputs:?}"
    );
    assert!(
        (discipline.frequency() - 500e-6).abs() < 1e-8,
        "{}",
        discipline.frequency()
    );
}

#[test]
fn a_batch_without_its_last_sample_leaves_the_clock_alone() {
    let mut discipline = Discipline::new(wide_slew(), base()).unwrap();
    drain(&mut discipline);
    let update = Update::new(5.0, 1e-6)
        .with_uncertainty(1e-6)
        .with_batched(true);
    assert_eq!(
        discipline.handle_update(at(10.0), update),
        Ok(UpdateOutcome::Ignored(IgnoreReason::Batched))
    );
    assert!(
        drain(&mut discipline)
            .iter()
            .all(|output| !matches!(output, Output::Step(_)))
    );
    // The next update, not batched, decides: 5 s and a little drift are
    // stepped.
    let outcome = discipline
        .handle_update(at(12.0), Update::new(5.0, 1e-6).with_uncertainty(1e-6))
        .unwrap();
    assert!(matches!(outcome, UpdateOutcome::Step(_)), "{outcome:?}");
}

//! Arbitrary sequences of updates and timeouts against the clock
//! discipline: NaN, infinities, huge and negative offsets, jitters and
//! ages and uncertainties, time jumping forward and backward, steps of
//! the clock reported by the caller (`clock_stepped`), any configuration
//! (rate limits up to the tick length's 10 % and `make_step` included),
//! both estimators.
//!
//! Invariants: no panic; a refused update changes nothing; nothing inside
//! the state or coming out of it is NaN or infinite; the frequency stays
//! within the configured `max_frequency` (MAXFREQ by default) and the
//! phase slew within `max_slew` (MAXSLEW), the Kalman estimator's total
//! rate within `max_rate`; the poll exponent stays within the configured
//! range and the hysteresis within ±LIMIT.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ntp_discipline::{
    Algorithm, Config, Discipline, FallbackDrift, LIMIT, LeapEvent, MakeStep, Output, Update,
};
use ntp_proto::{Date, LeapIndicator, NtpDuration};

#[derive(Arbitrary, Debug)]
enum Op {
    Update {
        /// Clock movement before the update, raw 2^-32 s (any sign).
        advance: i64,
        offset: f64,
        jitter: f64,
        age: f64,
        uncertainty: f64,
        precision: f64,
        leap: u8,
        /// More of the first batch follows (`Update::batched`).
        batched: bool,
    },
    Timeout {
        advance: i64,
    },
    /// Somebody else steps the clock by this many 2^-32 s, and the
    /// caller says so.
    ExternalStep {
        by: i64,
    },
    /// A plausible update: small offset, a poll interval later.
    Quiet {
        offset_us: i16,
        poll: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    start: Date,
    initial_frequency: Option<f64>,
    step_threshold: f64,
    stepout: f64,
    panic_threshold: Option<f64>,
    panic_on_first_update: bool,
    allan_intercept: f64,
    pll_gain: f64,
    min_poll: i8,
    max_poll: i8,
    precision: i8,
    open_loop_initial_offset: bool,
    rfc5905: bool,
    wander: f64,
    /// max_rate, max_frequency and max_slew, s/s.
    rate_limits: Option<(f64, f64, f64)>,
    /// make_step's threshold, s, and its limit.
    make_step: Option<(f64, Option<u32>)>,
    /// The Kalman estimator's poll gate.
    poll_gate: Option<f64>,
    /// fallback_drift's exponents (min, max).
    fallback_drift: Option<(u8, u8)>,
    ops: Vec<Op>,
}

fn check(discipline: &Discipline) {
    let config = discipline.config();
    assert!(discipline.frequency().is_finite());
    assert!(discipline.frequency().abs() <= config.max_frequency);
    assert!(discipline.jitter().is_finite());
    assert!(discipline.wander().is_finite());
    assert!(discipline.residual_offset().is_finite());
    assert!(discipline.cumulative_slew().is_finite());
    assert!((config.min_poll..=config.max_poll).contains(&discipline.poll()));
    assert!(discipline.poll_hysteresis().abs() <= LIMIT);
}

/// Drains the outputs, applying steps to the clock; returns the new clock.
fn drain(discipline: &mut Discipline, mut now: Date) -> Date {
    for _ in 0..16 {
        match discipline.poll_output() {
            Output::Adjust(adjust) => {
                let config = discipline.config();
                assert!(
                    adjust.frequency.is_finite() && adjust.frequency.abs() <= config.max_frequency
                );
                assert!(
                    adjust.phase_slew.is_finite() && adjust.phase_slew.abs() <= config.max_slew
                );
                assert!(adjust.duration.is_finite() && adjust.duration >= 0.0);
                if config.algorithm == Algorithm::Kalman {
                    // The Kalman estimator keeps the total within what the
                    // caller's clock takes.
                    assert!(adjust.rate().abs() <= config.max_rate * (1.0 + 1e-12));
                }
            }
            Output::Step(step) => now = now.checked_add(step).unwrap_or(now),
            Output::Leap(LeapEvent::Apply(leap)) => {
                now = now.checked_add(leap.step()).unwrap_or(now);
            }
            Output::Panic { offset } => assert!(offset.is_finite()),
            Output::Timeout(_) => return now,
            _ => {}
        }
    }
    panic!("poll_output never returned Timeout");
}

fuzz_target!(|input: Input| {
    let algorithm = if input.rfc5905 {
        Algorithm::Rfc5905
    } else {
        Algorithm::Kalman
    };
    let mut config = Config::default()
        .with_poll_range(input.min_poll, input.max_poll)
        .with_algorithm(algorithm);
    config.step_threshold = input.step_threshold;
    config.stepout = input.stepout;
    config.panic_threshold = input.panic_threshold;
    config.panic_on_first_update = input.panic_on_first_update;
    config.allan_intercept = input.allan_intercept;
    config.pll_gain = input.pll_gain;
    config.precision = input.precision;
    config.open_loop_initial_offset = input.open_loop_initial_offset;
    config.wander = input.wander;
    if let Some((max_rate, max_frequency, max_slew)) = input.rate_limits {
        config.max_rate = max_rate;
        config.max_frequency = max_frequency;
        config.max_slew = max_slew;
    }
    config.make_step = input
        .make_step
        .map(|(threshold, limit)| MakeStep { threshold, limit });
    if let Some(poll_gate) = input.poll_gate {
        config.poll_gate = poll_gate;
    }
    config.fallback_drift = input
        .fallback_drift
        .map(|(min, max)| FallbackDrift { min, max });
    let config = if config.validate().is_ok() {
        config
    } else {
        let mut fallback = Config::default().with_algorithm(algorithm);
        fallback.open_loop_initial_offset = input.open_loop_initial_offset;
        fallback
    };
    let mut now = input.start;
    let built = match input.initial_frequency {
        Some(frequency) => Discipline::with_frequency(config, now, frequency),
        None => Discipline::new(config, now),
    };
    let Ok(mut discipline) = built else {
        return;
    };
    now = drain(&mut discipline, now);
    for op in input.ops.into_iter().take(256) {
        match op {
            Op::Update {
                advance,
                offset,
                jitter,
                age,
                uncertainty,
                precision,
                leap,
                batched,
            } => {
                now = now
                    .checked_add(NtpDuration::from_bits(advance))
                    .unwrap_or(now);
                let update = Update::new(offset, jitter)
                    .with_leap(LeapIndicator::from_bits(leap))
                    .with_age(age)
                    .with_uncertainty(uncertainty)
                    .with_precision(precision)
                    .with_batched(batched);
                let before = discipline.clone();
                if discipline.handle_update(now, update).is_err() {
                    assert_eq!(format!("{before:?}"), format!("{discipline:?}"));
                }
            }
            Op::Timeout { advance } => {
                now = now
                    .checked_add(NtpDuration::from_bits(advance))
                    .unwrap_or(now);
                discipline.handle_timeout(now);
            }
            Op::ExternalStep { by } => {
                let by = NtpDuration::from_bits(by);
                if let Some(stepped) = now.checked_add(by) {
                    now = stepped;
                    discipline.clock_stepped(by);
                }
            }
            Op::Quiet { offset_us, poll } => {
                let interval = NtpDuration::from_log2_seconds(i8::try_from(poll % 18).unwrap_or(6));
                now = now.checked_add(interval).unwrap_or(now);
                let update = Update::new(f64::from(offset_us) * 1e-6, 1e-5);
                // Refused only when the clock has left the 68-year range.
                let _ = discipline.handle_update(now, update);
            }
        }
        now = drain(&mut discipline, now);
        check(&discipline);
        // What a client asks of the clock's corrections at any reading.
        assert!(discipline.slew_at(now).is_finite());
        assert!(discipline.correction_at(now).is_finite());
    }
});

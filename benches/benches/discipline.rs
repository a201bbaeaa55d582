//! ntp-discipline speed: one `handle_update` of a synchronized discipline,
//! drained with `poll_output`, with the default Kalman estimator (predict,
//! update, wander learning, poll choice, slew plan) and with the RFC 5905
//! PLL (`Config::rfc5905()`), and one RFC clock-adjust second; and the
//! Kalman update that keeps a phase and judges the wander again (updates
//! a minimum poll apart), which runs once a poll.
//!
//! Target (issue 4): one update <= 100 ns.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    reason = "benchmark set-up on constant inputs; criterion_group! makes undocumented items"
)]

use core::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ntp_discipline::{Config, Discipline, Output, Update};
use ntp_proto::{Date, NtpDuration};

/// A discipline in SYNC, started from a drift file.
fn synchronized(config: Config, start: Date) -> Discipline {
    let mut discipline = Discipline::with_frequency(config, start, 12e-6).unwrap();
    discipline
        .handle_update(start, Update::new(1e-4, 1e-4))
        .unwrap();
    while !matches!(discipline.poll_output(), Output::Timeout(_)) {}
    discipline
}

fn drain(discipline: &mut Discipline) -> Date {
    loop {
        if let Output::Timeout(at) = discipline.poll_output() {
            return at;
        }
    }
}

/// Benchmarks updates `step` apart of a discipline synchronized at
/// `start`, alternating +-30 us, each with its outputs drained.
fn kalman_updates(c: &mut Criterion, name: &str, config: Config, start: Date, step: NtpDuration) {
    let mut discipline = synchronized(config, start);
    let mut now = start;
    let mut sign = 1.0;
    c.bench_function(name, |b| {
        b.iter(|| {
            now = now.checked_add(step).unwrap();
            sign = -sign;
            let update =
                Update::new(black_box(sign * 3e-5), black_box(2e-5)).with_uncertainty(2e-5);
            let outcome = discipline.handle_update(now, update).unwrap();
            black_box(outcome);
            black_box(drain(&mut discipline))
        });
    });
}

fn discipline(c: &mut Criterion) {
    let start = Date::from_unix(1_700_000_000, 0).unwrap();
    // Time advances by 2^-10 s per iteration: a few hours over a run, well
    // inside the 68-year timeline.
    let step = NtpDuration::from_bits(1 << 22);

    kalman_updates(
        c,
        "discipline update (Kalman, default) + drain",
        Config::default(),
        start,
        step,
    );
    // Updates a minimum poll apart: each keeps a phase of the free
    // oscillator, and the wander is judged again from up to 46 span pairs
    // (the `wander` module), the discipline's most expensive update.
    kalman_updates(
        c,
        "discipline update a poll apart (Kalman, wander judged) + drain",
        Config::default(),
        start,
        NtpDuration::from_seconds(64),
    );

    let mut disciplined = synchronized(Config::rfc5905(), start);
    let mut now = start;
    let mut sign = 1.0;
    c.bench_function("discipline update (SYNC, RFC 5905 PLL) + drain", |b| {
        b.iter(|| {
            now = now.checked_add(step).unwrap();
            sign = -sign;
            let update = Update::new(black_box(sign * 3e-5), black_box(2e-5));
            let outcome = disciplined.handle_update(now, update).unwrap();
            black_box(outcome);
            black_box(drain(&mut disciplined))
        });
    });

    let mut ticking = synchronized(Config::rfc5905(), start);
    let mut now = start;
    c.bench_function("discipline clock-adjust second (RFC 5905) + drain", |b| {
        b.iter(|| {
            now = now.checked_add(NtpDuration::ONE_SECOND).unwrap();
            ticking.handle_timeout(black_box(now));
            black_box(drain(&mut ticking))
        });
    });
}

criterion_group!(benches, discipline);
criterion_main!(benches);

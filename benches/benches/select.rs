//! ntp-select: the select + cluster + combine pipeline for 4 to 1000
//! candidates, and one clock-filter update.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    missing_docs,
    reason = "benchmark code: setup failures should panic, counts are small"
)]

use core::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ntp_proto::Stratum;
use ntp_select::{
    Candidate, ClockFilter, FilterSample, SLOTS_PER_CANDIDATE, SelectConfig, Slot, mitigate,
};

/// `n` sources: about a fifth lie (disjoint intervals far away), the rest
/// scatter a few milliseconds around 0 with varied distances and strata.
fn candidates(n: usize) -> Vec<Candidate> {
    // A fixed linear congruential sequence: deterministic, no rand needed.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1_u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let liar = i % 5 == 4;
            let offset = if liar {
                1.0 + 10.0 * next()
            } else {
                0.004 * (next() - 0.5)
            };
            let distance = 0.005 + 0.05 * next();
            let jitter = 0.0001 + 0.001 * next();
            let stratum = Stratum::new([1, 2, 3][i % 3]);
            Candidate::new(i as u64, offset, distance, jitter, stratum).unwrap()
        })
        .collect()
}

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("select/pipeline");
    for n in [4_usize, 16, 64, 1000] {
        let mut list = candidates(n);
        let mut scratch = vec![Slot::EMPTY; n * SLOTS_PER_CANDIDATE];
        let config = SelectConfig::default();
        assert!(mitigate(&mut list, &mut scratch, &config, None).is_ok());
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| mitigate(black_box(&mut list), &mut scratch, &config, None).unwrap());
        });
    }
    group.finish();

    // Without the MAXCLOCK cut: all 1000 truechimers go through the
    // cluster rounds.
    let mut group = c.benchmark_group("select/pipeline_unlimited");
    let n = 1000;
    let mut list = candidates(n);
    let mut scratch = vec![Slot::EMPTY; n * SLOTS_PER_CANDIDATE];
    let mut config = SelectConfig::default();
    config.max_candidates = usize::MAX;
    config.max_combined = usize::MAX;
    group.throughput(Throughput::Elements(n as u64));
    group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
        b.iter(|| mitigate(black_box(&mut list), &mut scratch, &config, None).unwrap());
    });
    group.finish();
}

fn filter_update(c: &mut Criterion) {
    let mut filter = ClockFilter::new();
    let samples: Vec<FilterSample> = (0..8)
        .map(|i| {
            FilterSample::new(0.001 * f64::from(i), 0.01 + 0.003 * f64::from(i % 3), 1e-5).unwrap()
        })
        .collect();
    let mut now = 0.0;
    let mut i = 0_usize;
    c.bench_function("select/filter_update", |b| {
        b.iter(|| {
            now += 64.0;
            i = (i + 1) % samples.len();
            filter.update(black_box(samples[i % samples.len()]), now)
        });
    });
}

criterion_group!(benches, pipeline, filter_update);
criterion_main!(benches);

//! ntp-select: arbitrary candidate sets through select, cluster, system
//! peer choice and combine, and arbitrary sample streams through the clock
//! filter. Asserts the invariants of the pipeline, not just "no panic".
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ntp_proto::Stratum;
use ntp_select::{
    Candidate, ClockFilter, FilterSample, MedianFilter, SLOTS_PER_CANDIDATE, SelectConfig,
    SelectError, SelectOptions, Slot, Tally, mitigate, select,
};

#[derive(Debug, Arbitrary)]
struct RawCandidate {
    offset: f64,
    root_distance: f64,
    jitter: f64,
    stratum: u8,
    /// Bits 0-2: prefer, trust, require.
    options: u8,
}

#[derive(Debug, Arbitrary)]
enum FilterStep {
    Sample {
        offset: f64,
        delay: f64,
        dispersion: f64,
        advance: f64,
        /// Through `ClockFilter::remeasure` (a re-measured exchange when
        /// `advance` is zero).
        remeasure: bool,
    },
    Missed {
        advance: f64,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    candidates: Vec<RawCandidate>,
    previous: Option<u8>,
    min_survivors: u8,
    max_candidates: u8,
    max_combined: u8,
    distance_weighted_cluster: bool,
    steps: Vec<FilterStep>,
}

fuzz_target!(|input: Input| {
    check_pipeline(&input);
    check_filter(&input.steps);
    check_median(&input.steps);
});

fn check_pipeline(input: &Input) {
    // Invalid numbers must be refused, valid ones accepted.
    let mut candidates = Vec::new();
    for (id, raw) in input.candidates.iter().take(200).enumerate() {
        let built = Candidate::new(
            id as u64,
            raw.offset,
            raw.root_distance,
            raw.jitter,
            Stratum::new(raw.stratum),
        );
        let valid = raw.offset.is_finite()
            && raw.offset.abs() <= 2_147_483_648.0
            && (0.0..=2_147_483_648.0).contains(&raw.root_distance)
            && (0.0..=2_147_483_648.0).contains(&raw.jitter);
        assert_eq!(built.is_ok(), valid, "{raw:?}");
        if let Ok(candidate) = built {
            candidates.push(candidate.with_options(SelectOptions {
                prefer: raw.options & 1 != 0,
                trust: raw.options & 2 != 0,
                require: raw.options & 4 != 0,
            }));
        }
    }
    let mut config = SelectConfig::default();
    config.min_survivors = usize::from(input.min_survivors.max(1));
    config.max_candidates = usize::from(input.max_candidates.max(1));
    config.max_combined = usize::from(input.max_combined.max(1));
    config.distance_weighted_cluster = input.distance_weighted_cluster;
    let mut scratch = vec![Slot::EMPTY; candidates.len() * SLOTS_PER_CANDIDATE];

    let mut selected = candidates.clone();
    let intersection = select(&mut selected, &mut scratch, &config);
    let previous = input.previous.map(u64::from);
    let result = mitigate(&mut candidates, &mut scratch, &config, previous);

    match result {
        Ok(result) => {
            let intersection = intersection.expect("mitigate succeeded, select must too");
            assert_eq!(intersection, result.intersection);
            assert!(intersection.low() <= intersection.high());
            let trusted = candidates.iter().any(|c| c.options().trust);
            let ranked = |c: &Candidate| c.options().prefer || c.options().trust;
            assert!(trusted || 2 * intersection.allowed_falsetickers() < candidates.len());
            assert_eq!(
                intersection.truechimers() + intersection.falsetickers(),
                candidates.len()
            );
            // Survivors are truechimers are candidates.
            let mut survivors = 0;
            let mut combined = 0;
            for (before, after) in selected.iter().zip(&candidates) {
                assert_eq!(
                    before.tally().is_truechimer(),
                    after.tally().is_truechimer()
                );
                if after.tally().is_survivor() {
                    survivors += 1;
                }
                if after.tally().is_combined() {
                    combined += 1;
                }
                // The truechimers are the intervals holding [low, high].
                let (low, high) = after.interval();
                assert_eq!(
                    after.tally().is_truechimer(),
                    low <= intersection.low() && high >= intersection.high()
                );
            }
            assert_eq!(survivors, result.cluster.survivors);
            assert!(survivors >= 1 && survivors <= intersection.truechimers());
            assert_eq!(combined, result.combined.combined);
            assert!(combined <= config.max_combined);
            assert_eq!(
                candidates
                    .iter()
                    .filter(|c| c.tally() == Tally::SystemPeer)
                    .count(),
                1
            );
            assert_eq!(candidates[result.system_peer].tally(), Tally::SystemPeer);
            // The combined offset lies in the intersection (widened to the
            // offset of a preferred or trusted system peer); nothing is NaN.
            let peer = candidates[result.system_peer];
            let offset = result.combined.offset;
            assert!(
                intersection.contains(offset)
                    || (ranked(&peer)
                        && offset >= intersection.low().min(peer.offset())
                        && offset <= intersection.high().max(peer.offset()))
            );
            if candidates
                .iter()
                .any(|c| c.tally().is_survivor() && c.options().prefer)
            {
                assert!(peer.options().prefer);
            }
            for value in [
                result.combined.jitter,
                result.combined.selection_jitter,
                result.combined.peer_jitter,
                result.cluster.selection_jitter,
            ] {
                assert!(value.is_finite() && value >= 0.0, "{result:?}");
            }
            // Hysteresis: a surviving previous system peer at the best
            // survivor's stratum is kept.
            if let (Some(previous), false) = (previous, candidates.iter().any(ranked)) {
                let best = candidates
                    .iter()
                    .filter(|c| c.tally().is_survivor())
                    .min_by(|a, b| {
                        let merit = |c: &Candidate| {
                            f64::from(c.stratum().get()) * config.max_distance + c.root_distance()
                        };
                        merit(a)
                            .total_cmp(&merit(b))
                            .then(a.root_distance().total_cmp(&b.root_distance()))
                            .then(a.offset().total_cmp(&b.offset()))
                            .then(a.jitter().total_cmp(&b.jitter()))
                            .then(a.stratum().get().cmp(&b.stratum().get()))
                            .then(a.id().cmp(&b.id()))
                    })
                    .expect("survivors exist");
                let kept = candidates
                    .iter()
                    .find(|c| c.id() == previous && c.tally().is_survivor());
                match kept {
                    Some(kept) if kept.stratum() == best.stratum() => {
                        assert_eq!(result.system_peer_id, previous);
                    }
                    _ => assert_eq!(result.system_peer_id, best.id()),
                }
            }
            // Same candidates reversed: same outcome.
            let mut reversed: Vec<Candidate> = candidates.iter().rev().copied().collect();
            let again = mitigate(&mut reversed, &mut scratch, &config, previous)
                .expect("same candidates, reversed");
            assert_eq!(again.intersection, result.intersection);
            assert_eq!(again.system_peer_id, result.system_peer_id);
            assert_eq!(
                again.combined.offset.to_bits(),
                result.combined.offset.to_bits()
            );
            for (a, b) in reversed.iter().rev().zip(&candidates) {
                assert_eq!(a.tally(), b.tally());
            }
        }
        Err(SelectError::NoCandidates) => assert!(candidates.is_empty()),
        Err(SelectError::RequiredNotSelectable) => {
            assert!(candidates.iter().any(|c| c.options().require));
            assert!(
                candidates
                    .iter()
                    .all(|c| !c.options().require || !c.tally().is_truechimer())
            );
        }
        Err(SelectError::NoMajority { candidates: m }) => {
            // Trusted candidates need no majority, but trusted intervals
            // apart leave no interval holding the intersection.
            assert_eq!(m, candidates.len());
            assert!(candidates.iter().all(|c| c.tally() == Tally::Falseticker));
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn check_filter(steps: &[FilterStep]) {
    let mut filter = ClockFilter::new();
    let mut now = 0.0_f64;
    let mut last_epoch = f64::NEG_INFINITY;
    for step in steps.iter().take(64) {
        let advance = match step {
            FilterStep::Sample { advance, .. } | FilterStep::Missed { advance } => *advance,
        };
        let next = now + advance;
        let before = filter.clone();
        let result = match step {
            FilterStep::Sample {
                offset,
                delay,
                dispersion,
                remeasure,
                ..
            } => match FilterSample::new(*offset, *delay, *dispersion) {
                Ok(sample) if *remeasure => filter.remeasure(sample, next),
                Ok(sample) => filter.update(sample, next),
                Err(_) => continue,
            },
            FilterStep::Missed { .. } => filter.missed_poll(next),
        };
        match result {
            Ok(output) => {
                now = next;
                if let Some(output) = output {
                    assert!(output.epoch > last_epoch, "sample used twice");
                    last_epoch = output.epoch;
                    assert!(output.dispersion.is_finite() && output.dispersion >= 0.0);
                    assert!(output.dispersion < 16.0);
                    assert!(output.jitter.is_finite() && output.jitter > 0.0);
                    assert!(output.offset.is_finite() && output.delay.is_finite());
                }
            }
            // Bad time: refused, nothing changed.
            Err(_) => {
                assert!(!next.is_finite() || next < now || next.abs() > 2_147_483_648.0);
                assert_eq!(filter, before);
            }
        }
    }
}

/// The median filter over the same samples: the result lies within the
/// offsets pushed, keeps at least one and at most all, and empties it.
fn check_median(steps: &[FilterStep]) {
    let mut filter = MedianFilter::<8>::new();
    let mut pushed: Vec<(f64, f64)> = Vec::new();
    for step in steps.iter().take(64) {
        let FilterStep::Sample {
            offset,
            delay,
            dispersion,
            advance,
            ..
        } = step
        else {
            if let Some(out) = filter.take() {
                let window = &pushed[pushed.len().saturating_sub(8)..];
                let low = window.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
                let high = window.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
                let offset = out.sample.offset();
                assert!(offset >= low - 1e-9 * low.abs() && offset <= high + 1e-9 * high.abs());
                assert!(out.kept >= 1 && out.kept <= out.collected && out.collected <= 8);
                assert!(out.sample.dispersion().is_finite() && out.sample.delay() >= 0.0);
                assert!(filter.is_empty());
                pushed.clear();
            }
            continue;
        };
        let Ok(sample) = FilterSample::new(*offset, *delay, *dispersion) else {
            continue;
        };
        let before = filter.len();
        match filter.push(sample, *advance) {
            Ok(()) => {
                assert_eq!(filter.len(), (before + 1).min(8));
                pushed.push((*offset, *advance));
            }
            Err(_) => assert_eq!(filter.len(), before),
        }
    }
}

//! Property tests of the mitigation pipeline and the clock filter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::float_cmp,
    reason = "test code: failures should panic, counts are small, exact float equality is meant"
)]

use std::collections::BTreeMap;

use ntp_proto::Stratum;
use ntp_select::{
    Candidate, ClockFilter, FilterConfig, FilterSample, SLOTS_PER_CANDIDATE, SelectConfig,
    SelectError, SelectOptions, Slot, Tally, constants::MAXDISP, mitigate, select,
};
use proptest::prelude::*;

/// A correctness interval that contains 0: `(offset, distance)` with
/// `|offset| <= distance`.
fn truechimer() -> impl Strategy<Value = (f64, f64)> {
    (1e-6..1.0_f64, -1.0..=1.0_f64).prop_map(|(distance, side)| (distance * side, distance))
}

/// An interval that misses 0 (but may overlap the truechimers).
fn liar() -> impl Strategy<Value = (f64, f64)> {
    (1e-6..1.0_f64, 1e-9..2.0_f64, any::<bool>()).prop_map(|(distance, gap, negative)| {
        let offset = distance + gap;
        (if negative { -offset } else { offset }, distance)
    })
}

fn build(intervals: &[(f64, f64)], jitters: &[f64], strata: &[u8]) -> Vec<Candidate> {
    intervals
        .iter()
        .enumerate()
        .map(|(i, &(offset, distance))| {
            let jitter = jitters[i % jitters.len()];
            let stratum = Stratum::new(strata[i % strata.len()]);
            Candidate::new(i as u64, offset, distance, jitter, stratum).unwrap()
        })
        .collect()
}

/// Any candidate set: offsets and distances over many magnitudes.
fn any_candidates() -> impl Strategy<Value = Vec<Candidate>> {
    let magnitude = prop_oneof![-1.0..1.0_f64, -1e-6..1e-6_f64, -2e9..2e9_f64, Just(0.0),];
    let distance = prop_oneof![0.0..1.0_f64, 0.0..1e-9_f64, 0.0..2e9_f64, Just(0.0)];
    // Mostly no options (the RFC's pipeline), sometimes chrony's.
    let options = prop_oneof![
        8 => Just(SelectOptions::NONE),
        1 => (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(prefer, trust, require)| {
            SelectOptions { prefer, trust, require }
        }),
    ];
    prop::collection::vec(
        (magnitude, distance, 0.0..0.1_f64, 1_u8..16, options),
        1..40,
    )
    .prop_map(|rows| {
        rows.iter()
            .enumerate()
            .map(|(i, &(offset, distance, jitter, stratum, options))| {
                Candidate::new(i as u64, offset, distance, jitter, Stratum::new(stratum))
                    .unwrap()
                    .with_options(options)
            })
            .collect()
    })
}

fn scratch_for(candidates: &[Candidate]) -> Vec<Slot> {
    vec![Slot::EMPTY; candidates.len() * SLOTS_PER_CANDIDATE]
}

proptest! {
    /// A strict majority of truechimers and liars disjoint from all of
    /// them: the intersection contains 0, every truechimer survives
    /// selection and every liar is caught.
    #[test]
    fn majority_of_truechimers_is_found(
        truechimers in prop::collection::vec(truechimer(), 1..20),
        liar_count in 0_usize..20,
        liar_seeds in prop::collection::vec((0.0..1.0_f64, 1e-9..3.0_f64, any::<bool>()), 20),
        jitters in prop::collection::vec(0.0..0.01_f64, 1..4),
    ) {
        let liars = liar_count.min(truechimers.len() - 1);
        // Liars sit beyond the hull of the truechimers' intervals.
        let hull_high = truechimers.iter().map(|&(o, d)| o + d).fold(f64::MIN, f64::max);
        let hull_low = truechimers.iter().map(|&(o, d)| o - d).fold(f64::MAX, f64::min);
        let mut intervals: Vec<(f64, f64)> = liar_seeds[..liars]
            .iter()
            .map(|&(distance, gap, above)| {
                if above {
                    (hull_high + gap + distance, distance)
                } else {
                    (hull_low - gap - distance, distance)
                }
            })
            .collect();
        intervals.extend(&truechimers);
        let mut candidates = build(&intervals, &jitters, &[2]);
        let mut scratch = scratch_for(&candidates);
        let found = select(&mut candidates, &mut scratch, &SelectConfig::RFC).unwrap();
        prop_assert!(found.contains(0.0), "{found:?}");
        prop_assert_eq!(found.allowed_falsetickers(), liars);
        for (i, candidate) in candidates.iter().enumerate() {
            let expected = if i < liars { Tally::Falseticker } else { Tally::Candidate };
            prop_assert_eq!(candidate.tally(), expected);
        }
    }

    /// Liars that may overlap the truechimers: with a strict majority of
    /// truechimers a majority clique always exists, at most `liars`
    /// falsetickers are allowed, and whenever exactly that many are, the
    /// interval holds 0 and every candidate tallied a truechimer holds
    /// 0 (Marzullo's guarantee, with truechimers holding the interval).
    #[test]
    fn marzullo_guarantee(
        truechimers in prop::collection::vec(truechimer(), 1..15),
        liars in prop::collection::vec(liar(), 0..14),
    ) {
        let liars = &liars[..liars.len().min(truechimers.len() - 1)];
        let mut intervals = liars.to_vec();
        intervals.extend(&truechimers);
        let mut candidates = build(&intervals, &[0.001], &[2]);
        let mut scratch = scratch_for(&candidates);
        let found = select(&mut candidates, &mut scratch, &SelectConfig::RFC).unwrap();
        prop_assert!(found.allowed_falsetickers() <= liars.len());
        if found.allowed_falsetickers() == liars.len() {
            prop_assert!(found.contains(0.0));
            // Every truechimer holds the truth; there is one at least.
            prop_assert!(found.truechimers() >= 1);
            for candidate in &candidates {
                if candidate.tally() == Tally::Candidate {
                    let (low, high) = candidate.interval();
                    prop_assert!(low <= 0.0 && 0.0 <= high);
                }
            }
        }
        // The truechimers hold the whole interval; where the deepest
        // points form one stretch (only its own clique reaches it), every
        // interval reaching it is a truechimer, as in ntpd.
        let reaching = |c: &Candidate| {
            let (low, high) = c.interval();
            high >= found.low() && low <= found.high()
        };
        let holding = |c: &Candidate| {
            let (low, high) = c.interval();
            low <= found.low() && high >= found.high()
        };
        let one_stretch = candidates.iter().filter(|c| reaching(c)).count()
            == candidates.len() - found.allowed_falsetickers();
        for candidate in &candidates {
            prop_assert_eq!(candidate.tally() == Tally::Candidate, holding(candidate));
            if one_stretch {
                prop_assert_eq!(candidate.tally() == Tally::Candidate, reaching(candidate));
            }
        }
        // With no liars at all, every candidate is a truechimer.
        if liars.is_empty() {
            prop_assert_eq!(found.truechimers(), candidates.len());
        }
        // In every case both ends of the interval lie inside at least
        // `m - allowed` correctness intervals, and no point lies in more.
        let covering = |point: f64| {
            candidates
                .iter()
                .filter(|c| {
                    let (low, high) = c.interval();
                    low <= point && point <= high
                })
                .count()
        };
        let most = candidates.len() - found.allowed_falsetickers();
        prop_assert_eq!(covering(found.low()), most);
        prop_assert_eq!(covering(found.high()), most);
        for candidate in &candidates {
            let (low, high) = candidate.interval();
            prop_assert!(covering(low) <= most && covering(high) <= most);
        }
    }

    /// Survivors are truechimers are candidates; the combined offset lies in
    /// the intersection interval; nothing is NaN.
    #[test]
    fn pipeline_invariants(mut candidates in any_candidates(), weighted in any::<bool>()) {
        let mut scratch = scratch_for(&candidates);
        let mut after_select = candidates.clone();
        let mut config = SelectConfig::RFC;
        config.distance_weighted_cluster = weighted;
        let selected = select(&mut after_select, &mut scratch, &config);
        match mitigate(&mut candidates, &mut scratch, &config, None) {
            Ok(result) => {
                let selected = selected.unwrap();
                prop_assert_eq!(selected, result.intersection);
                let mut survivors = 0;
                for (before, after) in after_select.iter().zip(&candidates) {
                    if after.tally().is_survivor() {
                        survivors += 1;
                        prop_assert!(before.tally().is_truechimer());
                    }
                    prop_assert_eq!(before.tally().is_truechimer(), after.tally().is_truechimer());
                }
                prop_assert_eq!(survivors, result.cluster.survivors);
                prop_assert!(survivors <= result.intersection.truechimers());
                prop_assert!(result.intersection.truechimers() <= candidates.len());
                prop_assert!(survivors >= 1);
                let combined = result.combined;
                let peer = candidates[result.system_peer];
                let ranked = peer.options().prefer || peer.options().trust;
                prop_assert!(
                    result.intersection.contains(combined.offset)
                        || (ranked
                            && combined.offset >= result.intersection.low().min(peer.offset())
                            && combined.offset <= result.intersection.high().max(peer.offset()))
                );
                // Preferred survivors: the peer is one, and only they are combined.
                if candidates.iter().any(|c| c.tally().is_survivor() && c.options().prefer) {
                    prop_assert!(peer.options().prefer);
                    prop_assert!(candidates
                        .iter()
                        .filter(|c| c.tally().is_combined())
                        .all(|c| c.options().prefer));
                }
                if candidates.iter().any(|c| c.options().require) {
                    prop_assert!(candidates
                        .iter()
                        .any(|c| c.options().require && c.tally().is_truechimer()));
                }
                prop_assert!(combined.jitter.is_finite() && combined.jitter >= 0.0);
                prop_assert!(result.cluster.selection_jitter.is_finite());
                prop_assert_eq!(candidates[result.system_peer].tally(), Tally::SystemPeer);
                prop_assert_eq!(
                    candidates.iter().filter(|c| c.tally() == Tally::SystemPeer).count(),
                    1
                );
                prop_assert!(
                    candidates.iter().filter(|c| c.tally().is_combined()).count()
                        <= SelectConfig::RFC.max_combined
                );
            }
            Err(SelectError::RequiredNotSelectable) => {
                prop_assert!(candidates
                    .iter()
                    .all(|c| !c.options().require || !c.tally().is_truechimer()));
            }
            Err(SelectError::NoMajority { candidates: m }) => {
                // A trusted candidate needs no majority; only two trusted
                // intervals apart leave none (no interval holds both).
                let trusted: Vec<(f64, f64)> = candidates
                    .iter()
                    .filter(|c| c.options().trust)
                    .map(Candidate::interval)
                    .collect();
                prop_assert!(
                    trusted.is_empty()
                        || trusted
                            .iter()
                            .any(|a| trusted.iter().any(|b| a.1 < b.0))
                );
                prop_assert_eq!(m, candidates.len());
                prop_assert!(candidates.iter().all(|c| c.tally() == Tally::Falseticker));
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    /// The outcome does not depend on the order of the candidates, to the
    /// last bit.
    #[test]
    fn order_does_not_matter(
        (original, shuffled) in any_candidates()
            .prop_flat_map(|c| (Just(c.clone()), Just(c).prop_shuffle())),
        previous in prop::option::of(0_u64..40),
        weighted in any::<bool>(),
    ) {
        let mut a = original;
        let mut b = shuffled;
        let mut scratch = scratch_for(&a);
        let mut config = SelectConfig::RFC;
        config.distance_weighted_cluster = weighted;
        let result_a = mitigate(&mut a, &mut scratch, &config, previous);
        let result_b = mitigate(&mut b, &mut scratch, &config, previous);
        let by_id = |list: &[Candidate]| -> BTreeMap<u64, Tally> {
            list.iter().map(|c| (c.id(), c.tally())).collect()
        };
        prop_assert_eq!(by_id(&a), by_id(&b));
        match (result_a, result_b) {
            (Ok(x), Ok(y)) => {
                prop_assert_eq!(x.intersection, y.intersection);
                prop_assert_eq!(x.cluster, y.cluster);
                prop_assert_eq!(x.system_peer_id, y.system_peer_id);
                prop_assert_eq!(x.combined.offset.to_bits(), y.combined.offset.to_bits());
                prop_assert_eq!(x.combined.jitter.to_bits(), y.combined.jitter.to_bits());
            }
            (x, y) => prop_assert_eq!(x.err(), y.err()),
        }
    }

    /// Filter outputs stay in range, come from the minimum-delay valid
    /// sample and are never NaN.
    #[test]
    fn clock_filter_outputs(
        steps in prop::collection::vec(
            (prop::option::of((-1.0..1.0_f64, 0.0..0.5_f64, 0.0..0.01_f64)), 0.0..2000.0_f64),
            1..40,
        ),
        precision in -24_i8..-5,
    ) {
        let config = FilterConfig::with_precision_log2(precision);
        let mut filter = ClockFilter::with_config(config).unwrap();
        let mut now = 0.0;
        let mut last_epoch = f64::NEG_INFINITY;
        for (sample, step) in steps {
            now += step;
            let output = match sample {
                Some((offset, delay, dispersion)) => {
                    filter.update(FilterSample::new(offset, delay, dispersion).unwrap(), now).unwrap()
                }
                None => filter.missed_poll(now).unwrap(),
            };
            if let Some(output) = output {
                prop_assert!(output.epoch > last_epoch, "a sample was used twice");
                last_epoch = output.epoch;
                prop_assert!(output.dispersion >= 0.0 && output.dispersion < MAXDISP);
                prop_assert!(output.jitter >= config.precision && output.jitter.is_finite());
                let min_delay = filter
                    .samples()
                    .filter(|(s, epoch)| s.dispersion() + 15e-6 * (now - epoch) < MAXDISP)
                    .map(|(s, _)| s.delay())
                    .fold(f64::INFINITY, f64::min);
                prop_assert_eq!(output.delay, min_delay);
                prop_assert!(filter.samples().any(|(s, e)| s.offset() == output.offset && e == output.epoch));
            }
        }
    }
}

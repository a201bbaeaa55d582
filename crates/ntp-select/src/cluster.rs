//! The cluster algorithm (RFC 5905, section 11.2.2; Appendix A.5.5.1,
//! second half of `clock_select`).
//!
//! The truechimers are ranked by merit `stratum * MAXDIST + lambda`. In
//! rounds, the survivor with the largest selection jitter
//!
//! `psi_s = sqrt( sum_j (theta_s - theta_j)^2 / (n - 1) )`
//!
//! is pruned, until at most NMIN survivors remain or the largest selection
//! jitter is below the smallest peer jitter of the survivors.
//!
//! # Choices
//!
//! - The selection jitter follows the body's formula (sum over the other
//!   survivors, divided by `n - 1`); A.5.5.1 omits the division and loops
//!   over the wrong bound.
//! - `sum_j (theta_s - theta_j)^2 = n (theta_s - mean)^2 + sum_j (theta_j -
//!   mean)^2`, so the survivor with the largest selection jitter is always
//!   the one with the lowest or the highest offset. Each round compares
//!   just those two, with running sums; a round costs `O(1)` and the
//!   algorithm `O(n log n)`. Sums are kept relative to the median offset
//!   and recomputed whenever a pruned offset dominated them, so one huge
//!   outlier does not leave rounding noise behind.
//! - Ties: among survivors with the same selection jitter the one with
//!   the worse merit is pruned. (A.5.5.1's strict `>` would prune the
//!   first one met, in merit order the better one.)
//! - [`SelectConfig::distance_weighted_cluster`] switches to the reference
//!   implementation's rule, which RFC 5905's body does not have: the
//!   victim is the survivor with the largest selection jitter *times its
//!   root distance*, without the MINDISP floor
//!   ([`Candidate::own_distance`](crate::Candidate::own_distance): with
//!   it a PPS is as far as a LAN server), and a trusted or preferred
//!   survivor is never pruned
//!   (the rounds stop instead). Under the body's rule a precise source
//!   (a PPS or a PHC, microseconds of distance) that three network
//!   servers outvote on their common bias of a few tens of microseconds
//!   is pruned as the outlier, and the worse sources steer the clock;
//!   weighted by distance, the servers go first. The stopping rule stays
//!   the body's (the victim's selection jitter below the smallest peer
//!   jitter, or NMIN survivors). The victim is then not always at an end
//!   of the offsets: each round costs `O(n)`, the algorithm `O(n^2)` in
//!   the at most [`max_candidates`](SelectConfig::max_candidates).
//! - Before the rounds, truechimers beyond
//!   [`max_candidates`](SelectConfig::max_candidates) in merit order are
//!   tallied [`Tally::Excess`]; after them, survivors beyond
//!   [`max_combined`](SelectConfig::max_combined) are tallied
//!   [`Tally::Backup`]. Both limits come from the reference
//!   implementation, see [`crate::constants`].

use core::cmp::Ordering;

use crate::candidate::{Candidate, SLOTS_PER_CANDIDATE, Slot, check_scratch, slot_index};
use crate::constants::SelectConfig;
use crate::error::SelectError;
use crate::tally::Tally;

/// Result of the cluster algorithm.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ClusterResult {
    /// Survivors: tallied [`Tally::Candidate`] or [`Tally::Backup`].
    pub survivors: usize,
    /// Pruned as [`Tally::Outlier`].
    pub outliers: usize,
    /// Left out as [`Tally::Excess`].
    pub excess: usize,
    /// The largest selection jitter among the survivors when the rounds
    /// stopped (`psi_max`, saved as PSI_s by section 11.2.2), s.
    pub selection_jitter: f64,
}

/// Runs the cluster algorithm over the truechimers among `candidates`
/// (tallies for which [`Tally::is_truechimer`] holds, as left by
/// [`select`](crate::intersect::select)) and rewrites their tallies:
/// [`Tally::Excess`], [`Tally::Outlier`], [`Tally::Candidate`] or
/// [`Tally::Backup`]. Other candidates are not touched.
///
/// `scratch` needs [`SLOTS_PER_CANDIDATE`] slots per candidate. Nothing is
/// allocated. The outcome does not depend on the order of the candidates.
///
/// # Errors
///
/// [`SelectError::Config`], [`SelectError::ScratchTooSmall`],
/// [`SelectError::TooManyCandidates`], and [`SelectError::NoSurvivors`]
/// when there is no truechimer. Tallies are untouched on error.
pub fn cluster(
    candidates: &mut [Candidate],
    scratch: &mut [Slot],
    config: &SelectConfig,
) -> Result<ClusterResult, SelectError> {
    config.validate()?;
    let count = candidates.len();
    check_scratch(count, scratch, SLOTS_PER_CANDIDATE)?;
    let scratch = scratch
        .get_mut(..count.saturating_mul(SLOTS_PER_CANDIDATE))
        .unwrap_or_default();

    // Truechimers, then sorted by merit.
    let mut truechimers = 0_usize;
    for (index, candidate) in candidates.iter().enumerate() {
        if candidate.tally().is_truechimer() {
            if let Some(slot) = scratch.get_mut(truechimers) {
                *slot = Slot {
                    value: candidate.merit(config.max_distance),
                    index: slot_index(index),
                    aux: 0,
                };
            }
            truechimers += 1;
        }
    }
    if truechimers == 0 {
        return Err(SelectError::NoSurvivors);
    }
    let max_distance = config.max_distance;
    let n = truechimers.min(config.max_candidates);
    {
        // The merit is precomputed in `value`; the full comparison only
        // breaks ties. Only the best `n` need sorting.
        let compare = |a: &Slot, b: &Slot| {
            a.value.total_cmp(&b.value).then_with(|| {
                match (candidates.get(a.candidate()), candidates.get(b.candidate())) {
                    (Some(a), Some(b)) => a.cmp_merit(b, max_distance),
                    _ => Ordering::Equal,
                }
            })
        };
        let by_merit = scratch.get_mut(..truechimers).unwrap_or_default();
        if n < truechimers {
            by_merit.select_nth_unstable_by(n, compare);
        }
        by_merit
            .get_mut(..n)
            .unwrap_or_default()
            .sort_unstable_by(compare);
    }
    for slot in scratch.get(n..truechimers).unwrap_or_default() {
        if let Some(candidate) = candidates.get_mut(slot.candidate()) {
            candidate.set_tally(Tally::Excess);
        }
    }

    // Three lists of the `n` candidates, each slot carrying the merit rank
    // in `aux`: by offset with the worse rank last (`by_offset`), by offset
    // with the worse rank first (`low_end`), by jitter (`by_jitter`).
    let (by_offset, rest) = scratch.split_at_mut(n);
    let (low_end, rest) = rest.split_at_mut(n);
    let by_jitter = rest.get_mut(..n).unwrap_or_default();
    for (rank, (slot, jitter)) in by_offset.iter_mut().zip(by_jitter.iter_mut()).enumerate() {
        let rank = slot_index(rank);
        if let Some(candidate) = candidates.get_mut(slot.candidate()) {
            candidate.set_tally(Tally::Candidate);
            slot.value = candidate.offset();
            slot.aux = rank;
            *jitter = Slot {
                value: candidate.jitter(),
                index: slot.index,
                aux: rank,
            };
        }
    }
    by_offset.sort_unstable_by(|a, b| a.value.total_cmp(&b.value).then(a.aux.cmp(&b.aux)));
    by_jitter.sort_unstable_by(|a, b| a.value.total_cmp(&b.value).then(a.aux.cmp(&b.aux)));
    // `low_end` is `by_offset` with every run of equal offsets reversed.
    low_end.copy_from_slice(by_offset);
    for run in low_end.chunk_by_mut(|a, b| a.value.total_cmp(&b.value).is_eq()) {
        run.reverse();
    }

    let mut rounds = Rounds {
        pivot: by_offset.get(n / 2).map_or(0.0, |slot| slot.value),
        sum: 0.0,
        sum_squares: 0.0,
        removed_low: 0,
        removed_high: 0,
    };
    rounds.recompute(by_offset);

    let is_survivor = |slot: &Slot, candidates: &[Candidate]| {
        candidates
            .get(slot.candidate())
            .is_some_and(|candidate| candidate.tally() == Tally::Candidate)
    };
    if config.distance_weighted_cluster {
        let (pruned, selection_jitter) = weighted_rounds(candidates, by_offset, config);
        let survivors = tally_survivors(candidates, by_offset, by_jitter, config);
        return Ok(ClusterResult {
            survivors,
            outliers: pruned,
            excess: truechimers - n,
            selection_jitter,
        });
    }
    let mut remaining = n;
    let mut low_position = 0_usize;
    let mut high_position = n;
    let mut jitter_position = 0_usize;
    let mut selection_jitter = 0.0;
    while remaining > 1 {
        while low_end
            .get(low_position)
            .is_some_and(|slot| !is_survivor(slot, candidates))
        {
            low_position += 1;
        }
        while high_position > 0
            && by_offset
                .get(high_position - 1)
                .is_some_and(|slot| !is_survivor(slot, candidates))
        {
            high_position -= 1;
        }
        while by_jitter
            .get(jitter_position)
            .is_some_and(|slot| !is_survivor(slot, candidates))
        {
            jitter_position += 1;
        }
        let (Some(&lowest), Some(&highest), Some(min_jitter)) = (
            low_end.get(low_position),
            high_position.checked_sub(1).and_then(|i| by_offset.get(i)),
            by_jitter.get(jitter_position).map(|slot| slot.value),
        ) else {
            break;
        };
        let psi_low = rounds.selection_jitter(lowest.value, remaining);
        let psi_high = rounds.selection_jitter(highest.value, remaining);
        let from_low = match psi_low.total_cmp(&psi_high) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => lowest.aux > highest.aux,
        };
        let (victim, psi_max) = if from_low {
            (lowest, psi_low)
        } else {
            (highest, psi_high)
        };
        selection_jitter = psi_max;
        if remaining <= config.min_survivors || psi_max < min_jitter {
            break;
        }
        if let Some(candidate) = candidates.get_mut(victim.candidate()) {
            candidate.set_tally(Tally::Outlier);
        }
        remaining -= 1;
        rounds.remove(victim.value, from_low, by_offset);
    }

    let survivors = tally_survivors(candidates, by_offset, by_jitter, config);
    Ok(ClusterResult {
        survivors,
        outliers: n - remaining,
        excess: truechimers - n,
        selection_jitter,
    })
}

/// Tallies the survivors in merit order: `+` for the first
/// `max_combined`, `#` for the rest; returns how many survive.
/// `by_jitter` is free scratch by now; it is indexed by merit rank.
fn tally_survivors(
    candidates: &mut [Candidate],
    by_offset: &[Slot],
    by_jitter: &mut [Slot],
    config: &SelectConfig,
) -> usize {
    for slot in by_offset {
        let rank = usize::try_from(slot.aux).unwrap_or(usize::MAX);
        if let Some(target) = by_jitter.get_mut(rank) {
            target.index = slot.index;
        }
    }
    let mut survivors = 0_usize;
    for slot in by_jitter.iter() {
        if let Some(candidate) = candidates.get_mut(slot.candidate()) {
            if candidate.tally() == Tally::Candidate {
                survivors += 1;
                if survivors > config.max_combined {
                    candidate.set_tally(Tally::Backup);
                }
            }
        }
    }
    survivors
}

/// The rounds under [`SelectConfig::distance_weighted_cluster`] over the
/// survivors in `by_offset` (offsets in `value`, merit rank in `aux`):
/// returns how many were pruned and the largest selection jitter of the
/// survivors when the rounds stopped. Sums are taken afresh each round,
/// relative to the first survivor's offset.
fn weighted_rounds(
    candidates: &mut [Candidate],
    by_offset: &[Slot],
    config: &SelectConfig,
) -> (usize, f64) {
    let survivor = |slot: &Slot, candidates: &[Candidate]| {
        candidates
            .get(slot.candidate())
            .filter(|candidate| candidate.tally() == Tally::Candidate)
            .copied()
    };
    let mut pruned = 0_usize;
    loop {
        let mut count = 0_usize;
        let (mut sum, mut sum_squares, mut min_jitter) = (0.0, 0.0, f64::INFINITY);
        let mut pivot = None;
        for slot in by_offset {
            if let Some(candidate) = survivor(slot, candidates) {
                let pivot = *pivot.get_or_insert(slot.value);
                let deviation = slot.value - pivot;
                sum += deviation;
                sum_squares += deviation * deviation;
                min_jitter = min_jitter.min(candidate.jitter());
                count += 1;
            }
        }
        let pivot = pivot.unwrap_or(0.0);
        let rounds = Rounds {
            pivot,
            sum,
            sum_squares,
            removed_low: 0,
            removed_high: 0,
        };
        // (weight, selection jitter, merit rank, slot) of the worst.
        let mut worst: Option<(f64, f64, u32, Slot)> = None;
        let mut selection_jitter = 0.0_f64;
        for slot in by_offset {
            let Some(candidate) = survivor(slot, candidates) else {
                continue;
            };
            let psi = rounds.selection_jitter(slot.value, count);
            selection_jitter = selection_jitter.max(psi);
            let weight = psi * candidate.own_distance();
            let key = (weight, psi, slot.aux);
            let worse = worst.is_none_or(|(w, p, rank, _)| {
                key.0
                    .total_cmp(&w)
                    .then(key.1.total_cmp(&p))
                    .then(key.2.cmp(&rank))
                    .is_gt()
            });
            if worse {
                worst = Some((weight, psi, slot.aux, *slot));
            }
        }
        let Some((_, psi, _, victim)) = worst else {
            return (pruned, selection_jitter);
        };
        let immune = survivor(&victim, candidates)
            .is_some_and(|candidate| candidate.options().trust || candidate.options().prefer);
        if count <= config.min_survivors || psi < min_jitter || immune {
            return (pruned, selection_jitter);
        }
        if let Some(candidate) = candidates.get_mut(victim.candidate()) {
            candidate.set_tally(Tally::Outlier);
        }
        pruned += 1;
    }
}

/// Running sums over the remaining survivors' offsets, relative to
/// `pivot`. The remaining offsets, as values, are always
/// `by_offset[removed_low..n - removed_high]`: every round prunes a lowest
/// or a highest offset.
struct Rounds {
    pivot: f64,
    sum: f64,
    sum_squares: f64,
    removed_low: usize,
    removed_high: usize,
}

impl Rounds {
    fn recompute(&mut self, by_offset: &[Slot]) {
        let end = by_offset.len().saturating_sub(self.removed_high);
        let remaining = by_offset.get(self.removed_low..end).unwrap_or_default();
        self.sum = 0.0;
        self.sum_squares = 0.0;
        for slot in remaining {
            let deviation = slot.value - self.pivot;
            self.sum += deviation;
            self.sum_squares += deviation * deviation;
        }
    }

    fn remove(&mut self, offset: f64, from_low: bool, by_offset: &[Slot]) {
        if from_low {
            self.removed_low += 1;
        } else {
            self.removed_high += 1;
        }
        let deviation = offset - self.pivot;
        let square = deviation * deviation;
        if square > 0.5 * self.sum_squares {
            self.recompute(by_offset);
        } else {
            self.sum -= deviation;
            self.sum_squares -= square;
        }
    }

    /// `sqrt( sum_j (offset - theta_j)^2 / (n - 1) )` over the `n`
    /// remaining survivors.
    fn selection_jitter(&self, offset: f64, remaining: usize) -> f64 {
        if remaining < 2 {
            return 0.0;
        }
        #[allow(
            clippy::cast_precision_loss,
            reason = "counts are far below 2^52, exact as floats"
        )]
        let n = remaining as f64;
        let mean = self.sum / n;
        let spread = (self.sum_squares - self.sum * mean).max(0.0);
        let deviation = offset - self.pivot - mean;
        libm::sqrt(((n * deviation * deviation + spread) / (n - 1.0)).max(0.0))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact values: zeros and copied inputs")]
mod tests {
    use super::*;
    use crate::candidate::SelectOptions;
    use ntp_proto::Stratum;
    use std::vec::Vec;

    /// A truechimer (as if `select` had passed it).
    fn truechimer(id: u64, offset: f64, distance: f64, jitter: f64) -> Candidate {
        let mut c = Candidate::new(id, offset, distance, jitter, Stratum::new(2)).unwrap();
        c.set_tally(Tally::Candidate);
        c
    }

    fn run(list: &mut [Candidate], config: &SelectConfig) -> ClusterResult {
        let mut scratch = std::vec![Slot::EMPTY; list.len() * SLOTS_PER_CANDIDATE];
        cluster(list, &mut scratch, config).unwrap()
    }

    fn tallies(list: &[Candidate]) -> Vec<Tally> {
        list.iter().map(Candidate::tally).collect()
    }

    #[test]
    fn prunes_the_farthest_until_nmin() {
        let offsets = [0.0, 0.001, 0.002, 0.004, 0.1];
        let mut list: Vec<Candidate> = offsets
            .iter()
            .enumerate()
            .map(|(i, &o)| truechimer(i as u64, o, 0.01 * (i + 1) as f64, 0.0001))
            .collect();
        let result = run(&mut list, &SelectConfig::RFC);
        // Round 1 prunes 0.1, round 2 prunes 0.004, then n = NMIN.
        assert_eq!(
            tallies(&list),
            [
                Tally::Candidate,
                Tally::Candidate,
                Tally::Candidate,
                Tally::Outlier,
                Tally::Outlier
            ]
        );
        assert_eq!(
            (result.survivors, result.outliers, result.excess),
            (3, 2, 0)
        );
        // psi_max of {0, 0.001, 0.002}: sqrt((0.001^2 + 0.002^2) / 2).
        assert!((result.selection_jitter - libm::sqrt(2.5e-6)).abs() < 1e-15);
    }

    #[test]
    fn stops_when_selection_jitter_is_below_peer_jitter() {
        let offsets = [0.0, 0.001, 0.002, 0.004, 0.1];
        let mut list: Vec<Candidate> = offsets
            .iter()
            .enumerate()
            .map(|(i, &o)| truechimer(i as u64, o, 0.01, 0.2))
            .collect();
        let result = run(&mut list, &SelectConfig::RFC);
        assert_eq!(result.survivors, 5);
        assert_eq!(result.outliers, 0);
        // First-round psi_max: sqrt((0.1^2 + 0.099^2 + 0.098^2 + 0.096^2) / 4).
        let expected = libm::sqrt((0.01 + 0.099 * 0.099 + 0.098 * 0.098 + 0.096 * 0.096) / 4.0);
        assert!((result.selection_jitter - expected).abs() < 1e-12);
    }

    #[test]
    fn equal_selection_jitter_prunes_the_worse_merit() {
        // All offsets equal: psi_s = 0 everywhere and 0 < 0 is false, so the
        // rounds prune down to NMIN, worst merit first.
        // The same under the distance-weighted rule: every weight is 0.
        let mut weighted = SelectConfig::RFC;
        weighted.distance_weighted_cluster = true;
        for config in [SelectConfig::RFC, weighted] {
            equal_selection_jitter_under(&config);
        }
    }

    fn equal_selection_jitter_under(config: &SelectConfig) {
        let mut list: Vec<Candidate> = (0..6)
            .map(|i| truechimer(i, 0.5, 0.01 * (6 - i) as f64, 0.0))
            .collect();
        let result = run(&mut list, config);
        assert_eq!(result.survivors, 3);
        assert_eq!(result.selection_jitter, 0.0);
        // Ids 3, 4, 5 have the smallest distances.
        assert_eq!(
            tallies(&list),
            [
                Tally::Outlier,
                Tally::Outlier,
                Tally::Outlier,
                Tally::Candidate,
                Tally::Candidate,
                Tally::Candidate
            ]
        );
    }

    #[test]
    fn excess_and_backup_limits() {
        // Twelve identical-offset truechimers with large peer jitter: no
        // pruning. Merit order is by distance (id 0 best).
        let mut list: Vec<Candidate> = (0..12)
            .map(|i| truechimer(i, 0.0, 0.01 * (i + 1) as f64, 1.0))
            .collect();
        let result = run(&mut list, &SelectConfig::RFC);
        assert_eq!(
            (result.survivors, result.outliers, result.excess),
            (10, 0, 2)
        );
        let t = tallies(&list);
        assert_eq!(t[..6], [Tally::Candidate; 6]);
        assert_eq!(t[6..10], [Tally::Backup; 4]);
        assert_eq!(t[10..], [Tally::Excess; 2]);
    }

    #[test]
    fn stratum_dominates_merit() {
        let mut list = [truechimer(1, 0.0, 0.9, 1.0), truechimer(2, 0.0, 0.01, 1.0)];
        list[1] = Candidate::new(2, 0.0, 0.01, 1.0, Stratum::new(3)).unwrap();
        list[1].set_tally(Tally::Candidate);
        let mut config = SelectConfig::RFC;
        config.max_combined = 1;
        run(&mut list, &config);
        // 2 * 1 + 0.9 < 3 * 1 + 0.01.
        assert_eq!(tallies(&list), [Tally::Candidate, Tally::Backup]);
    }

    /// Three network servers that agree on a bias of -14 us and a PPS at
    /// true time, far more precise.
    fn servers_and_a_pps() -> [Candidate; 4] {
        [
            truechimer(1, -14e-6, 6e-4, 3e-5),
            truechimer(2, -15e-6, 6e-4, 3e-5),
            truechimer(3, -13e-6, 6e-4, 3e-5),
            truechimer(4, 0.0, 2.5e-4, 3.8e-6),
        ]
    }

    #[test]
    fn weighted_by_distance_a_precise_source_outvoted_on_a_bias_survives() {
        // RFC 5905's body prunes the PPS: its offset is the odd one out.
        let mut rfc = servers_and_a_pps();
        let result = run(&mut rfc, &SelectConfig::RFC);
        assert_eq!(result.outliers, 1);
        assert_eq!(rfc[3].tally(), Tally::Outlier);
        // Selection jitter times distance: the server farthest from the
        // rest (-15 us) goes instead.
        let mut config = SelectConfig::RFC;
        config.distance_weighted_cluster = true;
        let mut weighted = servers_and_a_pps();
        let result = run(&mut weighted, &config);
        assert_eq!(
            tallies(&weighted),
            [
                Tally::Candidate,
                Tally::Outlier,
                Tally::Candidate,
                Tally::Candidate
            ]
        );
        assert_eq!((result.survivors, result.outliers), (3, 1));
        // psi of the survivors {-14, -13, 0} us: the largest is the PPS's,
        // sqrt((14^2 + 13^2) / 2) us.
        let expected = libm::sqrt((14e-6 * 14e-6 + 13e-6 * 13e-6) / 2.0);
        assert!((result.selection_jitter - expected).abs() < 1e-15);
    }

    #[test]
    fn weighted_rounds_never_prune_a_trusted_or_preferred_survivor() {
        let mut config = SelectConfig::RFC;
        config.distance_weighted_cluster = true;
        for options in [
            SelectOptions {
                trust: true,
                ..SelectOptions::NONE
            },
            SelectOptions {
                prefer: true,
                ..SelectOptions::NONE
            },
        ] {
            let mut list = servers_and_a_pps();
            list[1] = list[1].with_options(options);
            let result = run(&mut list, &config);
            assert_eq!(result.outliers, 0, "{options:?}");
            assert!(list.iter().all(|c| c.tally() == Tally::Candidate));
        }
    }

    #[test]
    fn weighted_rounds_at_equal_distances_prune_as_the_rfc() {
        let mut config = SelectConfig::RFC;
        config.distance_weighted_cluster = true;
        let offsets = [0.0, 0.001, 0.002, 0.004, 0.1];
        let make = || -> Vec<Candidate> {
            offsets
                .iter()
                .enumerate()
                .map(|(i, &o)| truechimer(i as u64, o, 0.01, 0.0001))
                .collect()
        };
        let (mut rfc, mut weighted) = (make(), make());
        let a = run(&mut rfc, &SelectConfig::RFC);
        let b = run(&mut weighted, &config);
        assert_eq!(tallies(&rfc), tallies(&weighted));
        assert_eq!((a.survivors, a.outliers), (b.survivors, b.outliers));
        assert!((a.selection_jitter - b.selection_jitter).abs() < 1e-15);
    }

    #[test]
    fn one_survivor_and_none() {
        let mut one = [truechimer(1, 0.3, 0.1, 0.0)];
        let result = run(&mut one, &SelectConfig::RFC);
        assert_eq!((result.survivors, result.selection_jitter), (1, 0.0));
        let mut none = [Candidate::new(1, 0.0, 0.1, 0.0, Stratum::new(1)).unwrap()];
        let mut scratch = [Slot::EMPTY; 3];
        assert_eq!(
            cluster(&mut none, &mut scratch, &SelectConfig::RFC),
            Err(SelectError::NoSurvivors)
        );
        assert_eq!(none[0].tally(), Tally::Rejected);
    }

    #[test]
    fn falsetickers_are_left_alone() {
        let mut list = [truechimer(1, 0.0, 0.1, 0.0), truechimer(2, 0.0, 0.1, 0.0)];
        list[1].set_tally(Tally::Falseticker);
        run(&mut list, &SelectConfig::RFC);
        assert_eq!(tallies(&list), [Tally::Candidate, Tally::Falseticker]);
    }

    #[test]
    fn a_huge_outlier_leaves_no_rounding_noise() {
        let mut config = SelectConfig::RFC;
        config.min_survivors = 2;
        let mut list = [
            truechimer(1, 1.0e9, 0.1, 0.0),
            truechimer(2, 1.0e-6, 0.1, 0.0),
            truechimer(3, 2.0e-6, 0.1, 0.0),
            truechimer(4, 4.0e-6, 0.1, 0.0),
        ];
        let result = run(&mut list, &config);
        assert_eq!(tallies(&list)[0], Tally::Outlier);
        assert_eq!(result.survivors, 2);
        // Last round: {1, 2, 4} us, 4 us pruned; then {1, 2}: psi = 1 us.
        assert_eq!(list[3].tally(), Tally::Outlier);
        assert!(
            (result.selection_jitter - 1.0e-6).abs() < 1e-15,
            "{}",
            result.selection_jitter
        );
    }

    #[test]
    fn rerunning_gives_the_same_result() {
        let mut list: Vec<Candidate> = (0..8)
            .map(|i| truechimer(i, 0.001 * (i * i) as f64, 0.05, 0.0001))
            .collect();
        let first = run(&mut list, &SelectConfig::RFC);
        let tallies_first = tallies(&list);
        let second = run(&mut list, &SelectConfig::RFC);
        assert_eq!(first, second);
        assert_eq!(tallies(&list), tallies_first);
    }

    #[test]
    fn small_scratch_is_an_error() {
        let mut list = [truechimer(1, 0.0, 0.1, 0.0)];
        let mut scratch = [Slot::EMPTY; 2];
        assert_eq!(
            cluster(&mut list, &mut scratch, &SelectConfig::RFC),
            Err(SelectError::ScratchTooSmall { needed: 3, got: 2 })
        );
    }
}

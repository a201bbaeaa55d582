//! System peer choice (RFC 5905, section 11.2.2 step 6A; Appendix A.5.5.1,
//! end of `clock_select`) and the combine algorithm (section 11.2.3;
//! Appendix A.5.5.5 `clock_combine` and A.5.5.4 `clock_update`).

use core::cmp::Ordering;

use crate::candidate::{Candidate, Slot, check_scratch, slot_index};
use crate::constants::SelectConfig;
use crate::error::SelectError;
use crate::intersect::Intersection;
use crate::tally::Tally;

/// Chooses the system peer among the cluster survivors and tallies it
/// [`Tally::SystemPeer`]; a previous system peer elsewhere in the list
/// falls back to its survivor tally.
///
/// Preferred survivors ([`SelectOptions::prefer`](crate::SelectOptions))
/// come first, then trusted ones, then the rest: the system peer is the
/// best of the first of these groups that is not empty.
///
/// The best survivor in merit order is chosen, with clock-hop hysteresis
/// as in A.5.5.1: if the `previous` system peer (by id) is still a
/// survivor and has the same stratum as the best survivor, it stays, so
/// the system does not flap between near-equal sources. A previous peer
/// tallied [`Tally::Backup`] that stays becomes the system peer and so is
/// combined.
///
/// Returns the index of the system peer, or `None` if no candidate is a
/// survivor ([`Tally::is_survivor`]).
pub fn choose_system_peer(
    candidates: &mut [Candidate],
    previous: Option<u64>,
    config: &SelectConfig,
) -> Option<usize> {
    let max_distance = config.max_distance;
    let better = |a: &Candidate, b: &Candidate| a.cmp_merit(b, max_distance) == Ordering::Less;
    let rank = candidates
        .iter()
        .filter(|candidate| candidate.tally().is_survivor())
        .map(|candidate| candidate.options().rank())
        .max()?;
    let mut best: Option<usize> = None;
    let mut kept: Option<usize> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        if !candidate.tally().is_survivor() || candidate.options().rank() < rank {
            continue;
        }
        let beats = |current: Option<usize>| {
            current
                .and_then(|i| candidates.get(i))
                .is_none_or(|current| better(candidate, current))
        };
        if beats(best) {
            best = Some(index);
        }
        if previous == Some(candidate.id()) && beats(kept) {
            kept = Some(index);
        }
    }
    let best_index = best?;
    let chosen = match (kept, candidates.get(best_index)) {
        (Some(kept_index), Some(best_candidate))
            if candidates
                .get(kept_index)
                .is_some_and(|kept| kept.stratum() == best_candidate.stratum()) =>
        {
            kept_index
        }
        _ => best_index,
    };
    // Demote a stale system peer tally, then crown the chosen one.
    for candidate in candidates.iter_mut() {
        if candidate.tally() == Tally::SystemPeer {
            candidate.set_tally(Tally::Candidate);
        }
    }
    if let Some(candidate) = candidates.get_mut(chosen) {
        candidate.set_tally(Tally::SystemPeer);
    }
    Some(chosen)
}

/// Result of the combine algorithm: the system offset and jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Combined {
    /// Combined offset THETA, s. Inside the intersection interval.
    pub offset: f64,
    /// System jitter `PSI = sqrt(PSI_s^2 + PSI_p^2)` (section 11.2.3), s.
    pub jitter: f64,
    /// Selection jitter PSI_s: RMS of the survivors' offsets about the
    /// system peer's, weighted by 1 / lambda (A.5.5.5), s.
    pub selection_jitter: f64,
    /// Peer jitter PSI_p: the system peer's jitter (A.5.5.4), s.
    pub peer_jitter: f64,
    /// Index of the system peer (the reference of the jitter).
    pub system_peer: usize,
    /// Number of candidates combined.
    pub combined: usize,
}

/// Combines the offsets of the candidates that
/// [`Tally::is_combined`] (survivors tallied `+`, `*` or `o`), weighting
/// each by `1 / lambda` (RFC 5905, section 11.2.3; A.5.5.5).
///
/// The reference for the selection jitter is the candidate tallied
/// [`Tally::SystemPeer`], or, without one, the best combined candidate in
/// merit order.
///
/// # Choices
///
/// - Weights use `max(lambda, MINDISP / 2)`, the floor of
///   [`root_distance`](crate::PeerStats::root_distance), so a zero-width
///   candidate cannot produce an infinite weight.
/// - **The combined offset is clamped to the intersection interval.** A
///   truechimer's interval holds `[low, high]` but its offset may lie
///   outside it, and so may the weighted mean. When at most
///   `allowed_falsetickers` sources are wrong the true offset lies in
///   `[low, high]`, and moving an estimate onto an interval that holds the
///   truth never moves it away from the truth. Neither the RFC nor ntpd
///   clamps.
/// - System jitter: the body (11.2.3) combines PSI_s and PSI_p as a root
///   sum of squares but names PSI_s the cluster's final `psi_max`; A.5.5.5
///   and A.5.5.4 take the weighted RMS about the system peer and the
///   system peer's own jitter. We follow the appendix, which measures
///   the sources actually combined; the cluster's `psi_max` stays
///   available as [`ClusterResult::selection_jitter`](crate::ClusterResult::selection_jitter).
///
/// - The sums run over the combined candidates in merit order, not input
///   order, so the result is bit-for-bit the same for any order of the
///   input. `scratch` needs one [`Slot`] per candidate for that sort.
///
/// # Errors
///
/// [`SelectError::Config`], [`SelectError::ScratchTooSmall`],
/// [`SelectError::TooManyCandidates`], and [`SelectError::NoSurvivors`] if
/// no candidate is to be combined.
pub fn combine(
    candidates: &[Candidate],
    intersection: &Intersection,
    scratch: &mut [Slot],
    config: &SelectConfig,
) -> Result<Combined, SelectError> {
    config.validate()?;
    check_scratch(candidates.len(), scratch, 1)?;
    let max_distance = config.max_distance;
    let mut reference: Option<usize> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        if !candidate.tally().is_combined() {
            continue;
        }
        let replace = match reference.and_then(|i| candidates.get(i)) {
            None => true,
            Some(current) => {
                let current_is_peer = current.tally() == Tally::SystemPeer;
                let is_peer = candidate.tally() == Tally::SystemPeer;
                (is_peer && !current_is_peer)
                    || (is_peer == current_is_peer
                        && candidate.cmp_merit(current, max_distance) == Ordering::Less)
            }
        };
        if replace {
            reference = Some(index);
        }
    }
    let system_peer = reference.ok_or(SelectError::NoSurvivors)?;
    let peer = candidates
        .get(system_peer)
        .ok_or(SelectError::NoSurvivors)?;

    let floor = config.min_dispersion / 2.0;
    let mut weights = 0.0;
    let mut weighted_deviation = 0.0;
    let mut weighted_square = 0.0;
    let mut combined = 0_usize;
    for (index, candidate) in candidates.iter().enumerate() {
        if candidate.tally().is_combined() {
            if let Some(slot) = scratch.get_mut(combined) {
                slot.index = slot_index(index);
                slot.value = candidate.merit(max_distance);
            }
            combined += 1;
        }
    }
    let order = scratch.get_mut(..combined).unwrap_or_default();
    order.sort_unstable_by(|a, b| {
        a.value.total_cmp(&b.value).then_with(|| {
            match (candidates.get(a.candidate()), candidates.get(b.candidate())) {
                (Some(a), Some(b)) => a.cmp_merit(b, max_distance),
                _ => Ordering::Equal,
            }
        })
    });
    for candidate in order
        .iter()
        .filter_map(|slot| candidates.get(slot.candidate()))
    {
        let weight = 1.0 / candidate.root_distance().max(floor);
        let deviation = candidate.offset() - peer.offset();
        weights += weight;
        weighted_deviation += weight * deviation;
        weighted_square += weight * deviation * deviation;
    }
    // `max`/`min` rather than `clamp`, which panics on a reversed range.
    let offset = (peer.offset() + weighted_deviation / weights)
        .max(intersection.low())
        .min(intersection.high());
    let selection_jitter = libm::sqrt((weighted_square / weights).max(0.0));
    let peer_jitter = peer.jitter();
    let jitter = libm::sqrt(selection_jitter * selection_jitter + peer_jitter * peer_jitter);
    Ok(Combined {
        offset,
        jitter,
        selection_jitter,
        peer_jitter,
        system_peer,
        combined,
    })
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "exact values: zeros and copied inputs")]
mod tests {
    use super::*;
    use crate::candidate::Slot;
    use crate::intersect::select;
    use ntp_proto::Stratum;

    fn survivor(id: u64, offset: f64, distance: f64, jitter: f64, stratum: u8) -> Candidate {
        let mut c = Candidate::new(id, offset, distance, jitter, Stratum::new(stratum)).unwrap();
        c.set_tally(Tally::Candidate);
        c
    }

    fn intersection_of(list: &[Candidate]) -> Intersection {
        let mut copy = list.to_vec();
        let mut scratch = [Slot::EMPTY; 32];
        select(&mut copy, &mut scratch, &SelectConfig::RFC).unwrap()
    }

    #[test]
    fn weighted_by_inverse_distance() {
        let mut list = [
            survivor(1, 0.01, 0.1, 0.003, 2),
            survivor(2, 0.04, 0.2, 0.001, 2),
        ];
        let intersection = intersection_of(&list);
        assert_eq!(
            choose_system_peer(&mut list, None, &SelectConfig::RFC),
            Some(0)
        );
        let combined = combine(
            &list,
            &intersection,
            &mut [Slot::EMPTY; 8],
            &SelectConfig::RFC,
        )
        .unwrap();
        // (0.01 * 10 + 0.04 * 5) / 15 = 0.02.
        assert!((combined.offset - 0.02).abs() < 1e-15);
        // sqrt(5 * 0.03^2 / 15) about the system peer.
        assert!((combined.selection_jitter - libm::sqrt(0.0003)).abs() < 1e-15);
        assert_eq!(combined.peer_jitter, 0.003);
        let expected = libm::sqrt(0.0003 + 0.003 * 0.003);
        assert!((combined.jitter - expected).abs() < 1e-15);
        assert_eq!((combined.system_peer, combined.combined), (0, 2));
    }

    #[test]
    fn zero_distance_weights_are_floored() {
        let mut list = [survivor(1, 0.0, 0.0, 0.0, 1), survivor(2, 0.0, 0.0, 0.0, 1)];
        let intersection = intersection_of(&list);
        choose_system_peer(&mut list, None, &SelectConfig::RFC);
        let combined = combine(
            &list,
            &intersection,
            &mut [Slot::EMPTY; 8],
            &SelectConfig::RFC,
        )
        .unwrap();
        assert_eq!(combined.offset, 0.0);
        assert_eq!(combined.jitter, 0.0);
    }

    #[test]
    fn offset_is_clamped_to_the_intersection() {
        // Intervals [-0.1, 1.9] and [-0.2, 0.2]: intersection [-0.1, 0.2],
        // weighted mean (0.9 / 1 + 0 / 0.2) / 6 = 0.15; a third source pulls
        // it above 0.2.
        let mut list = [
            survivor(1, 0.9, 1.0, 0.0, 1),
            survivor(2, 0.0, 0.2, 0.0, 1),
            survivor(3, 0.95, 0.75, 0.0, 1),
        ];
        let intersection = intersection_of(&list);
        assert!((intersection.high() - 0.2).abs() < 1e-15);
        choose_system_peer(&mut list, None, &SelectConfig::RFC);
        let combined = combine(
            &list,
            &intersection,
            &mut [Slot::EMPTY; 8],
            &SelectConfig::RFC,
        )
        .unwrap();
        assert!((combined.offset - 0.2).abs() < 1e-15, "{}", combined.offset);
    }

    #[test]
    fn backups_are_not_combined() {
        let mut list = [
            survivor(1, 0.0, 0.1, 0.0, 1),
            survivor(2, 0.05, 0.1, 0.0, 1),
        ];
        list[1].set_tally(Tally::Backup);
        let intersection = intersection_of(&list);
        let combined = combine(
            &list,
            &intersection,
            &mut [Slot::EMPTY; 8],
            &SelectConfig::RFC,
        )
        .unwrap();
        assert_eq!(combined.combined, 1);
        assert_eq!(combined.offset, 0.0);
    }

    #[test]
    fn no_survivors() {
        let mut list = [survivor(1, 0.0, 0.1, 0.0, 1)];
        let intersection = intersection_of(&list);
        list[0].set_tally(Tally::Outlier);
        assert_eq!(
            combine(
                &list,
                &intersection,
                &mut [Slot::EMPTY; 8],
                &SelectConfig::RFC
            ),
            Err(SelectError::NoSurvivors)
        );
        assert_eq!(
            choose_system_peer(&mut list, None, &SelectConfig::RFC),
            None
        );
    }

    #[test]
    fn hysteresis_keeps_a_surviving_system_peer() {
        let config = SelectConfig::RFC;
        let mut list = [
            survivor(10, 0.0, 0.05, 0.0, 2),
            survivor(20, 0.001, 0.04, 0.0, 2),
        ];
        // Without history the better merit (id 20) wins.
        assert_eq!(choose_system_peer(&mut list, None, &config), Some(1));
        // With id 10 as the previous system peer, same stratum: keep it.
        assert_eq!(choose_system_peer(&mut list, Some(10), &config), Some(0));
        assert_eq!(list[0].tally(), Tally::SystemPeer);
        assert_eq!(list[1].tally(), Tally::Candidate);
        // A backup survivor is kept too.
        list[0].set_tally(Tally::Backup);
        assert_eq!(choose_system_peer(&mut list, Some(10), &config), Some(0));
        // Not a survivor any more: hop.
        list[0].set_tally(Tally::Outlier);
        assert_eq!(choose_system_peer(&mut list, Some(10), &config), Some(1));
        // Unknown previous id: best.
        list[0].set_tally(Tally::Candidate);
        assert_eq!(choose_system_peer(&mut list, Some(99), &config), Some(1));
    }

    #[test]
    fn hysteresis_yields_to_a_better_stratum() {
        let config = SelectConfig::RFC;
        let mut list = [
            survivor(10, 0.0, 0.05, 0.0, 3),
            survivor(20, 0.001, 0.05, 0.0, 2),
        ];
        assert_eq!(choose_system_peer(&mut list, Some(10), &config), Some(1));
    }
}

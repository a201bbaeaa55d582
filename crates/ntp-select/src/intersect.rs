//! The selection (intersection) algorithm (RFC 5905, section 11.2.1;
//! Appendix A.5.5.1, first half of `clock_select`).
//!
//! Each candidate brings a correctness interval `[theta - lambda, theta +
//! lambda]`. The algorithm looks for the interval `[low, high]` contained
//! in the correctness intervals of as many candidates as possible, at
//! least a majority, and splits the candidates into truechimers (their
//! interval reaches `[low, high]`) and falsetickers (it does not).
//!
//! # Choices where RFC 5905 disagrees with itself or with ntpd
//!
//! - **Midpoints are not counted.** The body (steps 3-5) and A.5.5.1 also
//!   count midpoints and require at most `f` of them outside the interval.
//!   That rule rejects honest configurations: two truechimers `0.0 ± 1.0`
//!   and `1.9 ± 1.0` agree on `[0.9, 1.0]`, yet each midpoint lies outside
//!   it, so the RFC finds no majority. We use Marzullo's endpoint-only form,
//!   as ntpd 4.2.8 does: with `f` allowed falsetickers, `[low, high]` runs
//!   from the first to the last point covered by `m - f` intervals. This is
//!   what makes the central guarantee hold: if at most `f` candidates are
//!   wrong, the true offset lies in `[low, high]`.
//! - **One pass instead of a loop over `f`.** The smallest `f` that
//!   succeeds is `m - c`, where `c` is the largest number of intervals
//!   sharing a point, so the algorithm sweeps once to find `c`, then
//!   scans from both ends. Same result as trying `f = 0, 1, ...`, in
//!   `O(m log m)`.
//! - **Closed intervals.** Intervals that touch share the touching point
//!   (lowpoints sort before highpoints at the same edge), and a zero-width
//!   intersection `low == high` is a success. The RFC's `l < u` test would
//!   reject three sources that all say exactly `0 ± 0`.
//! - **Truechimers are the candidates whose interval overlaps `[low,
//!   high]`**, as in ntpd. The body says truechimers are the candidates
//!   whose midpoint lies inside; that drops honest sources whose
//!   interval contains the truth but whose midpoint lies outside the
//!   (often narrow) intersection. A.5.5.1 tests the chime-list edges,
//!   which is ambiguous.
//! - **No majority** (`2 f >= m`) is [`SelectError::NoMajority`]; every
//!   candidate is then tallied [`Tally::Falseticker`], since none belongs to
//!   a majority clique.

use crate::candidate::{Candidate, SELECT_SLOTS_PER_CANDIDATE, Slot, check_scratch};
use crate::constants::SelectConfig;
use crate::error::SelectError;
use crate::tally::Tally;

/// Result of the selection algorithm.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Intersection {
    low: f64,
    high: f64,
    allowed_falsetickers: usize,
    truechimers: usize,
    falsetickers: usize,
}

impl Intersection {
    /// Lower end `l` of the intersection interval, s.
    #[must_use]
    pub const fn low(&self) -> f64 {
        self.low
    }

    /// Upper end `u` of the intersection interval, s. Never below
    /// [`low`](Self::low).
    #[must_use]
    pub const fn high(&self) -> f64 {
        self.high
    }

    /// Whether `offset` lies in `[low, high]`.
    #[must_use]
    pub fn contains(&self, offset: f64) -> bool {
        (self.low..=self.high).contains(&offset)
    }

    /// The number `f` of falsetickers the algorithm had to allow: the
    /// candidates minus the most correctness intervals sharing a point.
    /// Always below half the candidates.
    #[must_use]
    pub const fn allowed_falsetickers(&self) -> usize {
        self.allowed_falsetickers
    }

    /// Number of truechimers.
    #[must_use]
    pub const fn truechimers(&self) -> usize {
        self.truechimers
    }

    /// Number of falsetickers.
    #[must_use]
    pub const fn falsetickers(&self) -> usize {
        self.falsetickers
    }
}

/// Runs the selection algorithm over all `candidates` and writes each
/// one's tally: [`Tally::Candidate`] for a truechimer,
/// [`Tally::Falseticker`] otherwise. Call it with the candidates that
/// passed the fitness test only.
///
/// `scratch` needs [`SELECT_SLOTS_PER_CANDIDATE`] slots per candidate;
/// its contents are overwritten. Nothing is allocated. The outcome does
/// not depend on the order of the candidates.
///
/// # Errors
///
/// - [`SelectError::Config`], [`SelectError::ScratchTooSmall`],
///   [`SelectError::TooManyCandidates`], [`SelectError::NoCandidates`]:
///   tallies untouched.
/// - [`SelectError::NoMajority`]: every tally set to
///   [`Tally::Falseticker`].
/// - [`SelectError::TooFewTruechimers`] (fewer than CMIN): tallies
///   written as on success.
pub fn select(
    candidates: &mut [Candidate],
    scratch: &mut [Slot],
    config: &SelectConfig,
) -> Result<Intersection, SelectError> {
    config.validate()?;
    let count = candidates.len();
    if count == 0 {
        return Err(SelectError::NoCandidates);
    }
    check_scratch(count, scratch, SELECT_SLOTS_PER_CANDIDATE)?;
    let (lowpoints, rest) = scratch.split_at_mut(count);
    let highpoints = rest.get_mut(..count).unwrap_or_default();

    // Step 1: the chime list, as two lists: lowpoints and highpoints. The
    // sweeps below only need the edges, not which candidate they belong to.
    // `+ 0.0` turns -0.0 into +0.0, so `total_cmp` sorts equal edges as
    // equal.
    for ((candidate, lowpoint), highpoint) in candidates
        .iter()
        .zip(lowpoints.iter_mut())
        .zip(highpoints.iter_mut())
    {
        let (low, high) = candidate.interval();
        lowpoint.value = low + 0.0;
        highpoint.value = high + 0.0;
    }
    // Step 2: sort by edge. Merging the two lists below puts lowpoints
    // before highpoints at equal edges (closed intervals).
    lowpoints.sort_unstable_by(|a, b| a.value.total_cmp(&b.value));
    highpoints.sort_unstable_by(|a, b| a.value.total_cmp(&b.value));

    // The largest number of intervals sharing a point: sweep upwards; the
    // count only peaks right after a lowpoint.
    let mut most = 0_usize;
    let mut passed_highpoints = 0_usize;
    for (opened, lowpoint) in lowpoints.iter().enumerate() {
        while highpoints
            .get(passed_highpoints)
            .is_some_and(|high| high.value.total_cmp(&lowpoint.value).is_lt())
        {
            passed_highpoints += 1;
        }
        most = most.max(opened + 1 - passed_highpoints.min(opened + 1));
    }
    let allowed = count - most;
    if allowed.saturating_mul(2) >= count {
        for candidate in candidates.iter_mut() {
            candidate.set_tally(Tally::Falseticker);
        }
        return Err(SelectError::NoMajority { candidates: count });
    }

    // Step 3: the lowest point covered by `most` intervals (a lowpoint).
    let mut low = f64::NAN;
    let mut passed_highpoints = 0_usize;
    for (opened, lowpoint) in lowpoints.iter().enumerate() {
        while highpoints
            .get(passed_highpoints)
            .is_some_and(|high| high.value.total_cmp(&lowpoint.value).is_lt())
        {
            passed_highpoints += 1;
        }
        if opened + 1 - passed_highpoints.min(opened + 1) >= most {
            low = lowpoint.value;
            break;
        }
    }
    // Step 4: the highest point covered by `most` intervals (a highpoint),
    // sweeping downwards.
    let mut high = f64::NAN;
    let mut passed_lowpoints = 0_usize;
    for (opened, highpoint) in highpoints.iter().rev().enumerate() {
        while lowpoints
            .iter()
            .rev()
            .nth(passed_lowpoints)
            .is_some_and(|low| low.value.total_cmp(&highpoint.value).is_gt())
        {
            passed_lowpoints += 1;
        }
        if opened + 1 - passed_lowpoints.min(opened + 1) >= most {
            high = highpoint.value;
            break;
        }
    }
    // Both scans stop at a point covered by `most` intervals, and the
    // lowest such point is never above the highest. Stay defensive: a
    // broken invariant must not let a NaN out.
    if low.is_nan() || high.is_nan() || low > high {
        return Err(SelectError::NoMajority { candidates: count });
    }

    let mut truechimers = 0_usize;
    for candidate in candidates.iter_mut() {
        let (lowpoint, highpoint) = candidate.interval();
        if highpoint >= low && lowpoint <= high {
            candidate.set_tally(Tally::Candidate);
            truechimers += 1;
        } else {
            candidate.set_tally(Tally::Falseticker);
        }
    }
    if truechimers < config.min_candidates {
        return Err(SelectError::TooFewTruechimers {
            truechimers,
            required: config.min_candidates,
        });
    }
    Ok(Intersection {
        low,
        high,
        allowed_falsetickers: allowed,
        truechimers,
        falsetickers: count - truechimers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::SELECT_SLOTS_PER_CANDIDATE;
    use ntp_proto::Stratum;
    use std::vec::Vec;

    fn candidate(id: u64, offset: f64, distance: f64) -> Candidate {
        Candidate::new(id, offset, distance, 0.001, Stratum::new(2)).unwrap()
    }

    fn run(candidates: &mut [Candidate]) -> Result<Intersection, SelectError> {
        let mut scratch = [Slot::EMPTY; 64];
        select(candidates, &mut scratch, &SelectConfig::RFC)
    }

    fn tallies(candidates: &[Candidate]) -> Vec<Tally> {
        candidates.iter().map(Candidate::tally).collect()
    }

    #[test]
    fn three_overlapping_intervals() {
        // [-1, 1], [0, 2], [0.5, 1.5]: all three share [0.5, 1].
        let mut list = [
            candidate(1, 0.0, 1.0),
            candidate(2, 1.0, 1.0),
            candidate(3, 1.0, 0.5),
        ];
        let found = run(&mut list).unwrap();
        assert_eq!((found.low(), found.high()), (0.5, 1.0));
        assert_eq!(found.allowed_falsetickers(), 0);
        assert_eq!(found.truechimers(), 3);
        assert_eq!(tallies(&list), [Tally::Candidate; 3]);
    }

    #[test]
    fn one_liar_among_three() {
        let mut list = [
            candidate(1, 0.0, 0.1),
            candidate(2, 0.05, 0.1),
            candidate(3, 5.0, 0.1),
        ];
        let found = run(&mut list).unwrap();
        assert!((found.low() + 0.05).abs() < 1e-15 && (found.high() - 0.1).abs() < 1e-15);
        assert_eq!(found.allowed_falsetickers(), 1);
        assert_eq!(found.falsetickers(), 1);
        assert_eq!(
            tallies(&list),
            [Tally::Candidate, Tally::Candidate, Tally::Falseticker]
        );
    }

    /// The seed example of the issue: n sources of which `liars` are
    /// disjoint from the truth and from each other.
    fn seed(n: usize, liars: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| {
                let id = i as u64;
                if i < liars {
                    candidate(id, 10.0 + 5.0 * i as f64, 0.01)
                } else {
                    candidate(id, 0.001 * i as f64, 0.02)
                }
            })
            .collect()
    }

    #[test]
    fn seed_example_finds_up_to_half_minus_one_liars() {
        for (n, liars) in [
            (3, 1),
            (4, 1),
            (5, 2),
            (6, 2),
            (7, 3),
            (8, 3),
            (9, 4),
            (10, 4),
        ] {
            let mut list = seed(n, liars);
            let found = run(&mut list).unwrap();
            assert_eq!(found.allowed_falsetickers(), liars, "n = {n}");
            assert_eq!(found.falsetickers(), liars, "n = {n}");
            for (i, c) in list.iter().enumerate() {
                let expected = if i < liars {
                    Tally::Falseticker
                } else {
                    Tally::Candidate
                };
                assert_eq!(c.tally(), expected, "n = {n}, source {i}");
            }
            assert!(found.contains(0.0) || found.low() >= 0.0, "n = {n}");
            // One liar more and no majority is left.
            let mut list = seed(n, liars + 1);
            assert_eq!(
                run(&mut list),
                Err(SelectError::NoMajority { candidates: n }),
                "n = {n}"
            );
        }
    }

    #[test]
    fn colluding_liars_lose_to_a_larger_clique() {
        // Two liars agree with each other at +5 s, three honest sources at 0.
        let mut list = [
            candidate(1, 5.0, 0.1),
            candidate(2, 5.05, 0.1),
            candidate(3, 0.0, 0.1),
            candidate(4, 0.01, 0.1),
            candidate(5, -0.01, 0.1),
        ];
        let found = run(&mut list).unwrap();
        assert!(found.contains(0.0));
        assert_eq!(found.allowed_falsetickers(), 2);
        assert_eq!(tallies(&list)[..2], [Tally::Falseticker; 2]);
    }

    #[test]
    fn two_disagreeing_sources_have_no_majority() {
        let mut list = [candidate(1, 0.0, 0.1), candidate(2, 1.0, 0.1)];
        assert_eq!(
            run(&mut list),
            Err(SelectError::NoMajority { candidates: 2 })
        );
        assert_eq!(tallies(&list), [Tally::Falseticker; 2]);
    }

    #[test]
    fn zero_and_one_candidate() {
        assert_eq!(run(&mut []), Err(SelectError::NoCandidates));
        let mut one = [candidate(1, 0.25, 0.5)];
        let found = run(&mut one).unwrap();
        assert_eq!((found.low(), found.high()), (-0.25, 0.75));
        assert_eq!(one[0].tally(), Tally::Candidate);
    }

    #[test]
    fn identical_candidates() {
        let mut list = [candidate(1, 0.1, 0.2); 5];
        let found = run(&mut list).unwrap();
        assert!((found.low() + 0.1).abs() < 1e-15 && (found.high() - 0.3).abs() < 1e-15);
        assert_eq!(found.truechimers(), 5);
    }

    #[test]
    fn zero_width_intervals() {
        let mut list = [
            candidate(1, 0.0, 0.0),
            candidate(2, 0.0, 0.0),
            candidate(3, 0.0, 0.0),
        ];
        let found = run(&mut list).unwrap();
        assert_eq!((found.low(), found.high()), (0.0, 0.0));
        assert_eq!(found.truechimers(), 3);
        // Intervals that only touch share the touching point.
        let mut list = [
            candidate(1, 0.0, 1.0),
            candidate(2, 2.0, 1.0),
            candidate(3, 1.0, 0.0),
        ];
        let found = run(&mut list).unwrap();
        assert_eq!((found.low(), found.high()), (1.0, 1.0));
        assert_eq!(found.truechimers(), 3);
        // -0.0 and +0.0 are the same point.
        let mut list = [candidate(1, -0.0, 0.0), candidate(2, 0.0, 0.0)];
        assert_eq!(run(&mut list).unwrap().truechimers(), 2);
    }

    #[test]
    fn midpoints_outside_the_intersection_are_fine() {
        // The RFC's midpoint rule would find no majority here.
        let mut list = [candidate(1, 0.0, 1.0), candidate(2, 1.9, 1.0)];
        let found = run(&mut list).unwrap();
        assert!((found.low() - 0.9).abs() < 1e-15 && (found.high() - 1.0).abs() < 1e-15);
        assert_eq!(found.truechimers(), 2);
    }

    #[test]
    fn disjoint_intervals_have_no_majority() {
        let mut list: Vec<Candidate> = (0..6).map(|i| candidate(i, i as f64, 0.1)).collect();
        assert_eq!(
            run(&mut list),
            Err(SelectError::NoMajority { candidates: 6 })
        );
    }

    #[test]
    fn huge_and_tiny_values() {
        let big = crate::constants::MAX_MAGNITUDE;
        let mut list = [
            candidate(1, big, 1e-300),
            candidate(2, big, 5e-324),
            candidate(3, 0.0, big),
        ];
        let found = run(&mut list).unwrap();
        assert!(found.low().is_finite() && found.high().is_finite());
        assert!(found.contains(big));
        assert_eq!(found.truechimers(), 3);
    }

    #[test]
    fn too_few_truechimers_for_cmin() {
        let mut list = [
            candidate(1, 0.0, 0.1),
            candidate(2, 0.0, 0.1),
            candidate(3, 9.0, 0.1),
        ];
        let mut config = SelectConfig::RFC;
        config.min_candidates = 3;
        let mut scratch = [Slot::EMPTY; 6];
        assert_eq!(
            select(&mut list, &mut scratch, &config),
            Err(SelectError::TooFewTruechimers {
                truechimers: 2,
                required: 3
            })
        );
    }

    #[test]
    fn small_scratch_and_bad_config_touch_nothing() {
        let mut list = [candidate(1, 0.0, 0.1), candidate(2, 0.0, 0.1)];
        let mut scratch = [Slot::EMPTY; 3];
        assert_eq!(
            select(&mut list, &mut scratch, &SelectConfig::RFC),
            Err(SelectError::ScratchTooSmall {
                needed: 2 * SELECT_SLOTS_PER_CANDIDATE,
                got: 3
            })
        );
        let mut config = SelectConfig::RFC;
        config.phi = f64::NAN;
        let mut scratch = [Slot::EMPTY; 4];
        assert!(matches!(
            select(&mut list, &mut scratch, &config),
            Err(SelectError::Config(_))
        ));
        assert_eq!(tallies(&list), [Tally::Rejected; 2]);
    }
}

//! The selection (intersection) algorithm (RFC 5905, section 11.2.1;
//! Appendix A.5.5.1, first half of `clock_select`).
//!
//! Each candidate brings a correctness interval `[theta - lambda, theta +
//! lambda]`. The algorithm looks for the interval `[low, high]` contained
//! in the correctness intervals of as many candidates as possible, at
//! least a majority, and splits the candidates into truechimers (their
//! interval holds `[low, high]`) and falsetickers (it does not).
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
//! - **Truechimers are the candidates whose interval holds the whole of
//!   `[low, high]`**, as in chronyd. The body says truechimers are the
//!   candidates whose midpoint lies inside, which drops honest sources
//!   whose interval contains the truth but whose midpoint lies outside
//!   the (often narrow) intersection; A.5.5.1 tests the chime-list edges,
//!   which is ambiguous; ntpd takes every candidate whose interval
//!   overlaps `[low, high]`. Where the deepest points form one stretch,
//!   holding and overlapping are the same: the same intervals cover every
//!   point of it (an interval opening or closing inside would change the
//!   depth), and any other interval reaching it would make it deeper.
//!   They differ where several stretches are equally deep, apart, and
//!   `[low, high]` runs from the first to the last: two liars at +1 s and
//!   +2 s and an honest server at 0 s, each `± 0.6 s`, make the cliques
//!   `[0.4, 0.6]` and `[1.4, 1.6]`. Overlapping, all three are
//!   truechimers, and a `prefer` or the cluster algorithm may then follow
//!   either end. Holding, only the +1 s server is: with at most `f`
//!   candidates wrong the truth lies in one of the stretches, so a
//!   candidate whose interval holds them all is right whichever it is,
//!   and one that reaches only some may be a liar. Such candidates always
//!   exist: the first and the last stretch are each covered by more than
//!   half of the intervals, so at least one interval covers both; not so
//!   with trusted candidates, which need no majority: two trusted
//!   intervals apart leave none, which is [`SelectError::NoMajority`].
//!   The midpoint rule also picks the +1 s server alone here. chronyd
//!   accepts an interval lying inside `[low, high]` as well, which can
//!   only be one between the stretches, and is not right whichever
//!   stretch holds the truth; we do not.
//! - **CMIN counts the deepest clique**: the most intervals sharing a
//!   point, which is the number of truechimers where the deepest points
//!   form one stretch and more than that where they form several (each of
//!   their cliques that large agrees, on a different time). The
//!   truechimers are then right under the assumption CMIN protects, that
//!   no more than `m - CMIN` candidates are wrong.
//! - **Trusted candidates** ([`SelectOptions::trust`](crate::SelectOptions),
//!   chrony's `trust`) count first: the sweep looks for the points
//!   covered by the most trusted intervals, and among those by the most
//!   intervals in all. A trusted candidate is so outvoted only by other
//!   trusted candidates, and when the chosen point lies in a trusted
//!   interval no majority of all candidates is needed.
//! - **Required candidates** (chrony's `require`): when some exist and none
//!   is a truechimer, the selection fails with
//!   [`SelectError::RequiredNotSelectable`].
//! - **No majority** (`2 f >= m`, or no interval holding `[low, high]`)
//!   is [`SelectError::NoMajority`]; every
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

    /// The interval widened to hold `offset`.
    pub(crate) fn holding(self, offset: f64) -> Self {
        Self {
            low: self.low.min(offset),
            high: self.high.max(offset),
            ..self
        }
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
        let trusted = u32::from(candidate.options().trust);
        lowpoint.value = low + 0.0;
        lowpoint.aux = trusted;
        highpoint.value = high + 0.0;
        highpoint.aux = trusted;
    }
    // Step 2: sort by edge. Merging the two lists below puts lowpoints
    // before highpoints at equal edges (closed intervals).
    lowpoints.sort_unstable_by(|a, b| a.value.total_cmp(&b.value));
    highpoints.sort_unstable_by(|a, b| a.value.total_cmp(&b.value));

    // The deepest point: the most trusted intervals, then the most
    // intervals (without trusted candidates, simply the most intervals).
    // Depth only peaks right after a lowpoint.
    let mut best = Depth::default();
    sweep(lowpoints, highpoints, |edge| {
        if edge.opening {
            best = best.max(edge.depth);
        }
    });
    let most = best.all;
    let allowed = count - most.min(count);
    if best.trusted == 0 && allowed.saturating_mul(2) >= count {
        for candidate in candidates.iter_mut() {
            candidate.set_tally(Tally::Falseticker);
        }
        return Err(SelectError::NoMajority { candidates: count });
    }

    // Steps 3 and 4: the lowest point of that depth (a lowpoint) and the
    // highest (the highpoint that leaves the last stretch of it).
    let mut low = f64::NAN;
    let mut high = f64::NAN;
    sweep(lowpoints, highpoints, |edge| {
        if edge.depth == best {
            if edge.opening && low.is_nan() {
                low = edge.value;
            } else if !edge.opening {
                high = edge.value;
            }
        }
    });
    // Both points exist, and the lowest is never above the highest. Stay
    // defensive: a broken invariant must not let a NaN out.
    if low.is_nan() || high.is_nan() || low > high {
        return Err(SelectError::NoMajority { candidates: count });
    }

    let mut truechimers = 0_usize;
    for candidate in candidates.iter_mut() {
        let (lowpoint, highpoint) = candidate.interval();
        // Holds the whole of `[low, high]` (see the module's notes).
        if lowpoint <= low && highpoint >= high {
            candidate.set_tally(Tally::Candidate);
            truechimers += 1;
        } else {
            candidate.set_tally(Tally::Falseticker);
        }
    }
    if truechimers == 0 {
        // Only trusted intervals apart from each other (see the module's
        // notes): every tally is already Falseticker.
        return Err(SelectError::NoMajority { candidates: count });
    }
    let required = candidates.iter().filter(|c| c.options().require);
    if required.clone().next().is_some()
        && !required.into_iter().any(|c| c.tally() == Tally::Candidate)
    {
        return Err(SelectError::RequiredNotSelectable);
    }
    // CMIN counts the deepest clique (see the module's notes).
    if most < config.min_candidates {
        return Err(SelectError::TooFewTruechimers {
            truechimers: most,
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

/// How many correctness intervals cover a point: the trusted ones
/// ([`SelectOptions::trust`](crate::SelectOptions)) first, then all.
/// Compared in that order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Depth {
    trusted: usize,
    all: usize,
}

/// One edge of the merged chime list.
#[derive(Clone, Copy, Debug)]
struct Edge {
    value: f64,
    /// A lowpoint (an interval opens) or a highpoint (one closes).
    opening: bool,
    /// The depth just after a lowpoint, or just before a highpoint: the
    /// depth of the point itself, as the intervals are closed.
    depth: Depth,
}

/// Walks the sorted lowpoints and highpoints upwards as one list,
/// lowpoints first at equal values, and shows `visit` every edge. A
/// slot's `aux` is 1 for a trusted interval.
fn sweep(lowpoints: &[Slot], highpoints: &[Slot], mut visit: impl FnMut(Edge)) {
    let mut depth = Depth::default();
    let (mut opened, mut closed) = (0_usize, 0_usize);
    loop {
        let (low, high) = (lowpoints.get(opened), highpoints.get(closed));
        let opening = match (low, high) {
            (Some(low), Some(high)) => low.value.total_cmp(&high.value).is_le(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return,
        };
        let (edge, trusted) = if opening {
            opened += 1;
            let Some(edge) = low else { return };
            depth.all += 1;
            depth.trusted += usize::from(edge.aux != 0);
            (edge, false)
        } else {
            closed += 1;
            let Some(edge) = high else { return };
            (edge, edge.aux != 0)
        };
        visit(Edge {
            value: edge.value,
            opening,
            depth,
        });
        if !opening {
            depth.all = depth.all.saturating_sub(1);
            depth.trusted = depth.trusted.saturating_sub(usize::from(trusted));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::SELECT_SLOTS_PER_CANDIDATE;
    use crate::candidate::SelectOptions;
    use ntp_proto::Stratum;
    use std::vec::Vec;

    fn candidate(id: u64, offset: f64, distance: f64) -> Candidate {
        Candidate::new(id, offset, distance, 0.001, Stratum::new(2)).unwrap()
    }

    fn run(candidates: &mut [Candidate]) -> Result<Intersection, SelectError> {
        run_with_cmin(candidates, SelectConfig::RFC.min_candidates)
    }

    /// [`run`] with CMIN at `min_candidates`.
    fn run_with_cmin(
        candidates: &mut [Candidate],
        min_candidates: usize,
    ) -> Result<Intersection, SelectError> {
        let mut config = SelectConfig::RFC;
        config.min_candidates = min_candidates;
        let mut scratch = [Slot::EMPTY; 64];
        select(candidates, &mut scratch, &config)
    }

    /// chrony's 120-selectoptions case 2: liars at +1 s and +2 s and an
    /// honest server at 0 s, all +-0.6 s: two equally deep cliques,
    /// [0.4, 0.6] and [1.4, 1.6].
    fn two_cliques() -> [Candidate; 3] {
        [
            candidate(1, 1.0, 0.6),
            candidate(2, 2.0, 0.6),
            candidate(3, 0.0, 0.6),
        ]
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
    fn two_cliques_leave_only_the_interval_holding_both() {
        // Only the +1 s interval holds both cliques.
        let mut list = two_cliques();
        let found = run_with_cmin(&mut list, 2).unwrap();
        assert!((found.low() - 0.4).abs() < 1e-12 && (found.high() - 1.6).abs() < 1e-12);
        assert_eq!(found.allowed_falsetickers(), 1);
        assert_eq!((found.truechimers(), found.falsetickers()), (1, 2));
        assert_eq!(
            tallies(&list),
            [Tally::Candidate, Tally::Falseticker, Tally::Falseticker]
        );
    }

    #[test]
    fn trusted_intervals_apart_have_no_majority() {
        let trusted = SelectOptions {
            trust: true,
            ..SelectOptions::NONE
        };
        let mut list = [
            candidate(1, 0.0, 0.1).with_options(trusted),
            candidate(2, 5.0, 0.1).with_options(trusted),
            candidate(3, 2.5, 0.1),
        ];
        assert_eq!(
            run(&mut list),
            Err(SelectError::NoMajority { candidates: 3 })
        );
        assert_eq!(tallies(&list), [Tally::Falseticker; 3]);
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
        // Two agree, one does not; and two cliques of two, which a CMIN of
        // 2 accepts with one truechimer
        // (`two_cliques_leave_only_the_interval_holding_both`).
        let agreeing = [
            candidate(1, 0.0, 0.1),
            candidate(2, 0.0, 0.1),
            candidate(3, 9.0, 0.1),
        ];
        for mut list in [agreeing, two_cliques()] {
            assert_eq!(
                run_with_cmin(&mut list, 3),
                Err(SelectError::TooFewTruechimers {
                    truechimers: 2,
                    required: 3
                })
            );
        }
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

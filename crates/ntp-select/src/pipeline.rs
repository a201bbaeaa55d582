//! The whole mitigation pipeline: select, cluster, system peer, combine
//! (RFC 5905, section 11.2, figure 24).

use crate::candidate::{Candidate, Slot};
use crate::cluster::{ClusterResult, cluster};
use crate::combine::{Combined, choose_system_peer, combine};
use crate::constants::SelectConfig;
use crate::error::SelectError;
use crate::intersect::{Intersection, select};
use crate::tally::Tally;

/// Everything the pipeline found.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Mitigation {
    /// Result of the selection algorithm.
    pub intersection: Intersection,
    /// Result of the cluster algorithm.
    pub cluster: ClusterResult,
    /// Index of the system peer in the candidate slice.
    pub system_peer: usize,
    /// Id of the system peer.
    pub system_peer_id: u64,
    /// Result of the combine algorithm.
    pub combined: Combined,
}

/// Runs [`select`], [`cluster()`], [`choose_system_peer`] and [`combine()`]
/// over `candidates` (the sources that passed the fitness test), writing
/// every tally. `previous` is the id of the current system peer, for the
/// clock-hop hysteresis.
///
/// `scratch` needs [`SLOTS_PER_CANDIDATE`](crate::SLOTS_PER_CANDIDATE)
/// slots per candidate. Nothing is allocated; the outcome does not depend
/// on the order of the candidates (for distinct ids).
///
/// # Errors
///
/// The [`SelectError`] of the first step that fails; the tallies are then
/// as that step documents. On an error the system has no system peer
/// (figure 24: `s.p = NULL`) and must not discipline the clock.
pub fn mitigate(
    candidates: &mut [Candidate],
    scratch: &mut [Slot],
    config: &SelectConfig,
    previous: Option<u64>,
) -> Result<Mitigation, SelectError> {
    let intersection = select(candidates, scratch, config)?;
    let cluster = cluster(candidates, scratch, config)?;
    let system_peer =
        choose_system_peer(candidates, previous, config).ok_or(SelectError::NoSurvivors)?;
    let system_peer_id = candidates
        .get(system_peer)
        .map(Candidate::id)
        .ok_or(SelectError::NoSurvivors)?;
    keep_preferred(candidates, system_peer);
    hold_combined_count(candidates, config);
    limit_combination(candidates, system_peer, config);
    // A preferred or trusted system peer is taken as right even where the
    // intersection of all truechimers says otherwise, so the combined
    // offset may reach its offset.
    let bounds = match candidates.get(system_peer) {
        Some(peer) if peer.options().rank() > 0 => intersection.holding(peer.offset()),
        _ => intersection,
    };
    let combined = combine(candidates, &bounds, scratch, config)?;
    Ok(Mitigation {
        intersection,
        cluster,
        system_peer,
        system_peer_id,
        combined,
    })
}

/// A system peer chosen from the cluster's backups (by its preference,
/// trust or the clock-hop hysteresis) is combined: the worst combined
/// candidates in merit order then become [`Tally::Backup`], so that no more
/// than [`SelectConfig::max_combined`] are combined.
fn hold_combined_count(candidates: &mut [Candidate], config: &SelectConfig) {
    let combined = candidates
        .iter()
        .filter(|candidate| candidate.tally().is_combined())
        .count();
    for _ in config.max_combined..combined {
        let worst = candidates
            .iter()
            .enumerate()
            .filter(|(_, candidate)| candidate.tally() == Tally::Candidate)
            .max_by(|(_, a), (_, b)| a.cmp_merit(b, config.max_distance))
            .map(|(index, _)| index);
        if let Some(candidate) = worst.and_then(|index| candidates.get_mut(index)) {
            candidate.set_tally(Tally::Backup);
        }
    }
}

/// The prefer peer (RFC 5905, section 11.2.3; chrony's `prefer`): when
/// the system peer is preferred, the survivors that are not become
/// [`Tally::Backup`], so that only preferred sources are combined.
fn keep_preferred(candidates: &mut [Candidate], system_peer: usize) {
    if !candidates
        .get(system_peer)
        .is_some_and(|peer| peer.options().prefer)
    {
        return;
    }
    for candidate in candidates.iter_mut() {
        if candidate.tally() == Tally::Candidate && !candidate.options().prefer {
            candidate.set_tally(Tally::Backup);
        }
    }
}

/// [`SelectConfig::combine_limit`]: survivors farther than the limit times
/// the system peer's (both by [`Candidate::own_distance`], without the
/// MINDISP floor, as chrony's distances: a PPS a microsecond off then
/// leaves network servers out, as chrony does, where the floor made them
/// all 2.5 ms far), or whose correctness interval does
/// not hold the system peer's offset, become [`Tally::Backup`], so that
/// [`combine`] leaves them out.
///
/// The second rule is ours. The selection algorithm keeps every
/// candidate whose interval holds the intersection, but the system
/// peer's offset may lie outside the intersection, so the survivors
/// can include a source that says the system peer is wrong: one whose
/// own interval, its own bound on its error, leaves the system peer out.
/// Combining the two would move the clock to a time that one of them
/// rules out. It matters most when a trusted source outweighs a majority
/// (chrony's `trust`), where the intersection holds both; with three
/// servers and a falseticker (chrony's 120-selectoptions cases 4 and 9)
/// it also kept a truechimer caught in a queue from pulling the clock:
/// max rate error 1.1 ppm instead of 5.1 ppm on one seed.
fn limit_combination(candidates: &mut [Candidate], system_peer: usize, config: &SelectConfig) {
    let Some(limit) = config.combine_limit else {
        return;
    };
    let Some(peer) = candidates.get(system_peer).copied() else {
        return;
    };
    for candidate in candidates.iter_mut() {
        let (low, high) = candidate.interval();
        if candidate.tally() == Tally::Candidate
            && (candidate.own_distance() > limit * peer.own_distance()
                || !(low..=high).contains(&peer.offset()))
        {
            candidate.set_tally(Tally::Backup);
        }
    }
}

/// An allocating convenience around [`mitigate`]: owns its scratch space
/// and remembers the system peer between runs (for the hysteresis).
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    config: SelectConfig,
    scratch: alloc::vec::Vec<Slot>,
    system_peer: Option<u64>,
}

#[cfg(feature = "alloc")]
impl Pipeline {
    /// A pipeline with the given limits and no system peer yet.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`](crate::ConfigError) of
    /// [`SelectConfig::validate`].
    pub fn new(config: SelectConfig) -> Result<Self, crate::ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            scratch: alloc::vec::Vec::new(),
            system_peer: None,
        })
    }

    /// The limits in use.
    #[must_use]
    pub const fn config(&self) -> &SelectConfig {
        &self.config
    }

    /// Id of the current system peer, if any.
    #[must_use]
    pub const fn system_peer(&self) -> Option<u64> {
        self.system_peer
    }

    /// Runs [`mitigate`], growing the scratch space as needed. On success
    /// the system peer is remembered; on error it is forgotten (no system
    /// peer, RFC 5905 figure 24).
    ///
    /// # Errors
    ///
    /// As for [`mitigate`].
    pub fn run(&mut self, candidates: &mut [Candidate]) -> Result<Mitigation, SelectError> {
        let needed = candidates
            .len()
            .saturating_mul(crate::candidate::SLOTS_PER_CANDIDATE);
        if self.scratch.len() < needed {
            self.scratch.resize(needed, Slot::EMPTY);
        }
        let result = mitigate(
            candidates,
            &mut self.scratch,
            &self.config,
            self.system_peer,
        );
        self.system_peer = result.as_ref().ok().map(|m| m.system_peer_id);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::SelectOptions;
    use crate::tally::Tally;
    use ntp_proto::Stratum;
    use std::vec::Vec;

    fn sources(offsets: &[(u64, f64, f64)]) -> Vec<Candidate> {
        offsets
            .iter()
            .map(|&(id, offset, distance)| {
                Candidate::new(id, offset, distance, 0.0005, Stratum::new(2)).unwrap()
            })
            .collect()
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn pipeline_keeps_its_system_peer_until_it_fails() {
        let mut pipeline = Pipeline::new(SelectConfig::RFC).unwrap();
        assert_eq!(pipeline.system_peer(), None);
        let mut round1 = sources(&[(1, 0.001, 0.02), (2, 0.002, 0.03), (3, 0.0, 0.04)]);
        assert_eq!(pipeline.run(&mut round1).unwrap().system_peer_id, 1);
        // Source 2 is now slightly better, but 1 survives: no clock hop.
        let mut round2 = sources(&[(1, 0.001, 0.021), (2, 0.002, 0.02), (3, 0.0, 0.04)]);
        let result = pipeline.run(&mut round2).unwrap();
        assert_eq!(result.system_peer_id, 1);
        assert_eq!(round2[0].tally(), Tally::SystemPeer);
        // Source 1 turns falseticker: hop to the best survivor.
        let mut round3 = sources(&[(1, 0.5, 0.021), (2, 0.002, 0.02), (3, 0.0, 0.04)]);
        assert_eq!(pipeline.run(&mut round3).unwrap().system_peer_id, 2);
        assert_eq!(round3[0].tally(), Tally::Falseticker);
        // No majority: no system peer.
        let mut round4 = sources(&[(1, 0.5, 0.02), (2, 0.0, 0.02)]);
        assert_eq!(
            pipeline.run(&mut round4),
            Err(SelectError::NoMajority { candidates: 2 })
        );
        assert_eq!(pipeline.system_peer(), None);
    }

    #[test]
    fn the_combine_limit_leaves_far_survivors_out() {
        // One server 100 us away, two 0.5 s off behind a 1 s asymmetric
        // path: their intervals contain the truth, all three survive.
        let set = || sources(&[(1, 0.0, 0.000_1), (2, -0.5, 0.51), (3, -0.5, 0.51)]);
        let mut scratch = [Slot::EMPTY; 18];
        let mut rfc = set();
        let combined = mitigate(&mut rfc, &mut scratch, &SelectConfig::RFC, None)
            .unwrap()
            .combined;
        assert_eq!(rfc[0].tally(), crate::tally::Tally::SystemPeer);
        assert_eq!(rfc[1].tally(), crate::tally::Tally::Candidate);
        // RFC 5905 weights them by distance, but they still move it.
        assert!(combined.offset < -5e-5, "{combined:?}");
        let mut limited_config = SelectConfig::RFC;
        limited_config.combine_limit = Some(crate::constants::COMBINE_LIMIT);
        let mut limited = set();
        let combined = mitigate(&mut limited, &mut scratch, &limited_config, None)
            .unwrap()
            .combined;
        assert_eq!(limited[1].tally(), crate::tally::Tally::Backup);
        assert_eq!(limited[2].tally(), crate::tally::Tally::Backup);
        assert!(combined.offset.abs() < 1e-12, "{combined:?}");
        for bad in [0.5, f64::NAN, -1.0] {
            limited_config.combine_limit = Some(bad);
            assert!(limited_config.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_combine_limit_compares_distances_without_the_mindisp_floor() {
        // A PPS: no delay, 20 us of dispersion and jitter. Two LAN
        // servers: 1 ms of delay, 50 us of jitter. With MINDISP all three
        // are 2.5 ms far, within three times each other.
        let config = SelectConfig {
            combine_limit: Some(crate::constants::COMBINE_LIMIT),
            ..SelectConfig::RFC
        };
        let floor = config.min_dispersion / 2.0;
        let pps = Candidate::new(1, 0.0, floor + 20e-6, 1e-6, Stratum::new(1))
            .unwrap()
            .with_own_distance(20e-6);
        let server = |id, offset| {
            Candidate::new(id, offset, floor + 50e-6, 50e-6, Stratum::new(1))
                .unwrap()
                .with_own_distance(550e-6)
        };
        let mut set = [pps, server(2, 30e-6), server(3, 40e-6)];
        let mut scratch = [Slot::EMPTY; 18];
        let combined = mitigate(&mut set, &mut scratch, &config, None)
            .unwrap()
            .combined;
        assert_eq!(set[0].tally(), crate::tally::Tally::SystemPeer);
        assert_eq!(set[1].tally(), crate::tally::Tally::Backup);
        assert_eq!(set[2].tally(), crate::tally::Tally::Backup);
        assert!(combined.offset.abs() < 1e-12, "{combined:?}");
        // Without the own distances (the floored ones), the servers join.
        let mut floored = [
            Candidate::new(1, 0.0, floor + 20e-6, 1e-6, Stratum::new(1)).unwrap(),
            Candidate::new(2, 30e-6, floor + 50e-6, 50e-6, Stratum::new(1)).unwrap(),
            Candidate::new(3, 40e-6, floor + 50e-6, 50e-6, Stratum::new(1)).unwrap(),
        ];
        let combined = mitigate(&mut floored, &mut scratch, &config, None)
            .unwrap()
            .combined;
        assert_eq!(floored[1].tally(), crate::tally::Tally::Candidate);
        assert!(combined.offset > 10e-6, "{combined:?}");
    }

    #[test]
    fn an_own_distance_beyond_the_root_distance_is_ignored() {
        let candidate = Candidate::new(1, 0.0, 1e-3, 0.0, Stratum::new(1)).unwrap();
        assert!((candidate.own_distance() - 1e-3).abs() < 1e-15);
        for bad in [2e-3, -1.0, f64::NAN, f64::INFINITY] {
            assert!((candidate.with_own_distance(bad).own_distance() - 1e-3).abs() < 1e-15);
        }
        assert!((candidate.with_own_distance(0.0).own_distance()).abs() < 1e-15);
    }

    fn with(mut list: Vec<Candidate>, id: u64, options: SelectOptions) -> Vec<Candidate> {
        for candidate in &mut list {
            if candidate.id() == id {
                *candidate = candidate.with_options(options);
            }
        }
        list
    }

    const TRUST: SelectOptions = SelectOptions {
        trust: true,
        ..SelectOptions::NONE
    };
    const PREFER: SelectOptions = SelectOptions {
        prefer: true,
        ..SelectOptions::NONE
    };
    const REQUIRE: SelectOptions = SelectOptions {
        require: true,
        ..SelectOptions::NONE
    };

    fn run(list: &mut [Candidate]) -> Result<Mitigation, SelectError> {
        let mut scratch = [Slot::EMPTY; 30];
        let mut config = SelectConfig::RFC;
        config.combine_limit = Some(crate::constants::COMBINE_LIMIT);
        mitigate(list, &mut scratch, &config, None)
    }

    fn tallies(list: &[Candidate]) -> Vec<Tally> {
        list.iter().map(Candidate::tally).collect()
    }

    #[test]
    fn a_trusted_source_outweighs_a_majority_of_untrusted_ones() {
        // chrony's 120-selectoptions, first case: servers 1 s and 2 s
        // ahead, 0.6 s of distance each. [0.4, 0.6] (1 and 3) and
        // [1.4, 1.6] (1 and 2) tie.
        let set = || sources(&[(1, 1.0, 0.6), (2, 2.0, 0.6), (3, 0.0, 0.6)]);
        let mut trusted = with(set(), 3, TRUST);
        let result = run(&mut trusted).unwrap();
        assert_eq!(result.system_peer_id, 3);
        assert_eq!(
            tallies(&trusted),
            [Tally::Backup, Tally::Falseticker, Tally::SystemPeer]
        );
        assert!(result.combined.offset.abs() < 1e-12, "{result:?}");
        // Alone and outvoted, it still wins: no majority is needed.
        let mut alone = with(
            sources(&[(1, 1.0, 0.01), (2, 1.0, 0.01), (3, 0.0, 0.01)]),
            3,
            TRUST,
        );
        assert_eq!(run(&mut alone).unwrap().system_peer_id, 3);
        assert_eq!(
            run(&mut sources(&[
                (1, 1.0, 0.01),
                (2, 1.0, 0.01),
                (3, 0.0, 0.01)
            ]))
            .unwrap()
            .system_peer_id,
            1
        );
        // Two trusted sources that disagree: the untrusted majority picks.
        let mut split = with(with(alone, 1, TRUST), 3, TRUST);
        let result = run(&mut split).unwrap();
        assert_eq!(result.system_peer_id, 1);
        assert_eq!(split[2].tally(), Tally::Falseticker);
    }

    #[test]
    fn the_prefer_peer_is_combined_alone_unless_it_is_a_falseticker() {
        // 120-selectoptions, third case: 1.1 s of distance, all three
        // agree on [0.9, 1.1]; the preferred third is combined alone.
        let mut wide = with(
            sources(&[(1, 1.0, 1.1), (2, 2.0, 1.1), (3, 0.0, 1.1)]),
            3,
            PREFER,
        );
        let result = run(&mut wide).unwrap();
        assert_eq!(result.system_peer_id, 3);
        assert_eq!(
            tallies(&wide),
            [Tally::Backup, Tally::Backup, Tally::SystemPeer]
        );
        assert!(result.combined.offset.abs() < 1e-12, "{result:?}");
        // Preferring a falseticker changes nothing.
        let mut liar = with(
            sources(&[(1, 0.0, 0.01), (2, 0.001, 0.01), (3, 1.0, 0.01)]),
            3,
            PREFER,
        );
        let result = run(&mut liar).unwrap();
        assert_eq!(result.system_peer_id, 1);
        assert_eq!(liar[2].tally(), Tally::Falseticker);
        assert_eq!(result.combined.combined, 2);
    }

    #[test]
    fn a_required_source_must_be_a_truechimer() {
        let set = || sources(&[(1, 1.0, 0.01), (2, 0.0, 0.01), (3, 0.0, 0.01)]);
        assert_eq!(
            run(&mut with(set(), 1, REQUIRE)),
            Err(SelectError::RequiredNotSelectable)
        );
        let mut good = with(set(), 3, REQUIRE);
        assert_eq!(run(&mut good).unwrap().combined.combined, 2);
        // One required truechimer is enough.
        let mut either = with(with(set(), 1, REQUIRE), 2, REQUIRE);
        assert!(run(&mut either).is_ok());
    }

    #[test]
    fn mitigate_reports_errors_of_each_step() {
        let mut scratch = [Slot::EMPTY; 6];
        assert_eq!(
            mitigate(&mut [], &mut scratch, &SelectConfig::RFC, None),
            Err(SelectError::NoCandidates)
        );
        let mut two = sources(&[(1, 0.0, 0.1), (2, 0.0, 0.1)]);
        assert_eq!(
            mitigate(&mut two, &mut scratch[..4], &SelectConfig::RFC, None),
            Err(SelectError::ScratchTooSmall { needed: 6, got: 4 })
        );
        let result = mitigate(&mut two, &mut scratch, &SelectConfig::RFC, None).unwrap();
        assert_eq!(result.combined.combined, 2);
        assert!(result.combined.offset.abs() < 1e-18);
    }
}

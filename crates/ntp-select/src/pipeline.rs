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
    limit_combination(candidates, system_peer, config);
    let combined = combine(candidates, &intersection, scratch, config)?;
    Ok(Mitigation {
        intersection,
        cluster,
        system_peer,
        system_peer_id,
        combined,
    })
}

/// [`SelectConfig::combine_limit`]: survivors farther than the limit times
/// the system peer's root distance become [`Tally::Backup`], so that
/// [`combine`] leaves them out.
fn limit_combination(candidates: &mut [Candidate], system_peer: usize, config: &SelectConfig) {
    let Some(limit) = config.combine_limit else {
        return;
    };
    let Some(peer_distance) = candidates.get(system_peer).map(Candidate::root_distance) else {
        return;
    };
    for candidate in candidates.iter_mut() {
        if candidate.tally() == Tally::Candidate
            && candidate.root_distance() > limit * peer_distance
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
    #[cfg(feature = "alloc")]
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

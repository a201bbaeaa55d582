//! Peer statistics: root synchronization distance (RFC 5905, Appendix
//! A.5.5.2 `root_dist`) and the fitness test (Appendix A.5.2 `fit`,
//! repeated as A.5.5.3 `accept`).

use ntp_proto::{LeapIndicator, RefId, ShortTime, Stratum};

use crate::candidate::Candidate;
use crate::constants::SelectConfig;
use crate::error::{InputError, Quantity, check_non_negative, check_signed};
use crate::filter::FilterOutput;

/// What the system process knows about one source: the clock-filter
/// output plus the header variables of its last packet (RFC 5905, section
/// 9.1, figure 19 and section 7.3). All times in seconds; `epoch` and the
/// `now` given to the methods are on the caller's monotonic timescale, as
/// for the [`ClockFilter`](crate::ClockFilter).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct PeerStats {
    /// Leap indicator of the last packet.
    pub leap: LeapIndicator,
    /// Stratum of the last packet.
    pub stratum: Stratum,
    /// Reference id of the last packet.
    pub reference_id: RefId,
    /// Root delay delta_r of the last packet, s.
    pub root_delay: f64,
    /// Root dispersion epsilon_r of the last packet, s.
    pub root_dispersion: f64,
    /// Peer offset theta, s.
    pub offset: f64,
    /// Peer delay delta, s.
    pub delay: f64,
    /// Peer dispersion epsilon, s.
    pub dispersion: f64,
    /// Peer jitter psi, s.
    pub jitter: f64,
    /// Epoch t of the peer variables (the time of the sample used).
    pub epoch: f64,
    /// Reach register: bit 0 is the latest poll.
    pub reach: u8,
}

/// What the fitness test compares a source with: the local side of the
/// loop test and the system poll interval (RFC 5905, Appendix A.5.2 `fit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FitContext {
    /// The reference id a server synchronized to us would carry: our own
    /// address as seen by that source (`p.dstaddr`; see
    /// [`RefId::from_ip`]).
    pub local_reference_id: RefId,
    /// The system reference id `s.refid`.
    pub system_reference_id: RefId,
    /// The system poll exponent `s.poll`, log2 s.
    pub system_poll: i8,
}

/// Why a source failed the fitness test (RFC 5905, Appendix A.5.2 `fit`).
/// The tests run in the order of the variants; the first failure is
/// reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Unfit {
    /// The statistics hold a NaN, infinite, negative or out-of-range value,
    /// or `now` is before the epoch.
    #[error("unusable statistics: {0}")]
    Invalid(#[from] InputError),
    /// Stratum error: leap indicator 3, stratum 0 or at least MAXSTRAT.
    #[error("stratum error: unsynchronized or invalid stratum")]
    Stratum,
    /// Distance error: root distance above MAXDIST plus one poll interval
    /// of dispersion growth.
    #[error("distance error: root distance above the threshold")]
    Distance,
    /// Loop error: the source is synchronized to us or to our system peer.
    #[error("loop error: the source is synchronized to this host")]
    Loop,
    /// Unreachable: the reach register is zero.
    #[error("unreachable")]
    Unreachable,
}

impl PeerStats {
    /// Statistics from a clock-filter output and the header values of the
    /// last packet (root delay and dispersion in the NTP short format).
    #[must_use]
    pub fn from_filter(
        output: &FilterOutput,
        leap: LeapIndicator,
        stratum: Stratum,
        reference_id: RefId,
        root_delay: ShortTime,
        root_dispersion: ShortTime,
        reach: u8,
    ) -> Self {
        Self {
            leap,
            stratum,
            reference_id,
            root_delay: root_delay.to_seconds_f64(),
            root_dispersion: root_dispersion.to_seconds_f64(),
            offset: output.offset,
            delay: output.delay,
            dispersion: output.dispersion,
            jitter: output.jitter,
            epoch: output.epoch,
            reach,
        }
    }

    /// Root synchronization distance lambda at `now` (RFC 5905, Appendix
    /// A.5.5.2 `root_dist`):
    ///
    /// `max(MINDISP, root_delay + delay) / 2 + root_dispersion + dispersion
    /// + PHI * (now - epoch) + jitter`
    ///
    /// The section 10 form `delta / 2 + epsilon` is the peer part of it;
    /// we follow the appendix, which adds the root terms, the aging and
    /// the jitter, and the MINDISP floor that keeps lambda positive.
    ///
    /// # Errors
    ///
    /// [`InputError`] for a non-finite or out-of-range value, a negative
    /// delay, dispersion or jitter, and [`InputError::TimeWentBackwards`]
    /// if `now` is before `epoch`.
    pub fn root_distance(&self, now: f64, config: &SelectConfig) -> Result<f64, InputError> {
        self.distance(now, config, config.min_dispersion)
    }

    /// The root distance without the MINDISP floor of its delay term:
    /// `(root_delay + delay) / 2 + root_dispersion + dispersion + PHI *
    /// (now - epoch) + jitter`. The floor keeps the correctness intervals
    /// of the selection wide enough to overlap (section 11.2.1); it also
    /// makes a reference clock a microsecond off (no delay at all) look
    /// as far as a network server with milliseconds of delay. The combine
    /// limit ([`SelectConfig::combine_limit`], chrony's `combinelimit`,
    /// whose distances have no such floor) and the distance-weighted
    /// cluster rule ([`SelectConfig::distance_weighted_cluster`]) compare
    /// this one.
    ///
    /// # Errors
    ///
    /// As [`root_distance`](Self::root_distance).
    pub fn own_distance(&self, now: f64, config: &SelectConfig) -> Result<f64, InputError> {
        self.distance(now, config, 0.0)
    }

    /// [`root_distance`](Self::root_distance) with `floor` for MINDISP.
    fn distance(&self, now: f64, config: &SelectConfig, floor: f64) -> Result<f64, InputError> {
        let root_delay = check_non_negative(self.root_delay, Quantity::RootDelay)?;
        let root_dispersion = check_non_negative(self.root_dispersion, Quantity::RootDispersion)?;
        check_signed(self.offset, Quantity::Offset)?;
        let delay = check_non_negative(self.delay, Quantity::Delay)?;
        let dispersion = check_non_negative(self.dispersion, Quantity::Dispersion)?;
        let jitter = check_non_negative(self.jitter, Quantity::Jitter)?;
        let epoch = check_signed(self.epoch, Quantity::Time)?;
        let now = check_signed(now, Quantity::Time)?;
        if now < epoch {
            return Err(InputError::TimeWentBackwards);
        }
        let distance = (root_delay + delay).max(floor) / 2.0
            + root_dispersion
            + dispersion
            + config.phi * (now - epoch)
            + jitter;
        check_non_negative(distance, Quantity::RootDistance)
    }

    /// The fitness test (RFC 5905, Appendix A.5.2 `fit`).
    ///
    /// Choices:
    /// - Stratum 0 is unfit as well as MAXSTRAT and above: a stratum-0
    ///   packet is a kiss-o'-death or unsynchronized (section 7.3).
    /// - The distance threshold is `MAXDIST + PHI * 2^poll`, as in A.5.2.
    /// - The loop test applies to stratum 2 and above only: a stratum-1
    ///   reference id names a reference clock (`GPS`), not an upstream
    ///   server, and can equal our own `s.refid` without any loop.
    ///
    /// # Errors
    ///
    /// The first test that fails, as an [`Unfit`].
    pub fn fit(&self, now: f64, context: &FitContext, config: &SelectConfig) -> Result<(), Unfit> {
        let distance = self.root_distance(now, config)?;
        let stratum = self.stratum.get();
        if self.leap == LeapIndicator::Unsynchronized
            || stratum == 0
            || stratum >= config.max_stratum
        {
            return Err(Unfit::Stratum);
        }
        let poll = libm::exp2(f64::from(context.system_poll));
        if distance > config.max_distance + config.phi * poll {
            return Err(Unfit::Distance);
        }
        if stratum > 1
            && (self.reference_id == context.local_reference_id
                || self.reference_id == context.system_reference_id)
        {
            return Err(Unfit::Loop);
        }
        if self.reach == 0 {
            return Err(Unfit::Unreachable);
        }
        Ok(())
    }

    /// The candidate for the selection algorithm: offset, root distance at
    /// `now` (and [`own_distance`](Self::own_distance)), jitter and
    /// stratum.
    ///
    /// # Errors
    ///
    /// As for [`root_distance`](Self::root_distance).
    pub fn candidate(
        &self,
        id: u64,
        now: f64,
        config: &SelectConfig,
    ) -> Result<Candidate, InputError> {
        let distance = self.root_distance(now, config)?;
        let own = self.own_distance(now, config)?;
        Ok(
            Candidate::new(id, self.offset, distance, self.jitter, self.stratum)?
                .with_own_distance(own),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::{MINDISP, PHI};
    use core::net::Ipv4Addr;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    fn stats() -> PeerStats {
        PeerStats {
            leap: LeapIndicator::NoWarning,
            stratum: Stratum::new(2),
            reference_id: RefId::from_ipv4(Ipv4Addr::new(192, 0, 2, 1)),
            root_delay: 0.020,
            root_dispersion: 0.010,
            offset: 0.001,
            delay: 0.030,
            dispersion: 0.002,
            jitter: 0.0005,
            epoch: 100.0,
            reach: 0xff,
        }
    }

    fn context() -> FitContext {
        FitContext {
            local_reference_id: RefId::from_ipv4(Ipv4Addr::new(198, 51, 100, 7)),
            system_reference_id: RefId::from_ipv4(Ipv4Addr::new(203, 0, 113, 9)),
            system_poll: 6,
        }
    }

    #[test]
    fn root_distance_hand_worked() {
        let config = SelectConfig::RFC;
        // (0.020 + 0.030) / 2 + 0.010 + 0.002 + 15e-6 * 10 + 0.0005
        let expected = 0.025 + 0.010 + 0.002 + 0.000_15 + 0.0005;
        assert!(close(
            stats().root_distance(110.0, &config).unwrap(),
            expected
        ));
    }

    #[test]
    fn root_distance_has_the_mindisp_floor() {
        let mut tiny = stats();
        tiny.root_delay = 0.0;
        tiny.delay = 0.0;
        tiny.root_dispersion = 0.0;
        tiny.dispersion = 0.0;
        tiny.jitter = 0.0;
        let distance = tiny.root_distance(100.0, &SelectConfig::RFC).unwrap();
        assert!(close(distance, MINDISP / 2.0));
        assert!(close(
            tiny.root_distance(200.0, &SelectConfig::RFC).unwrap(),
            MINDISP / 2.0 + PHI * 100.0
        ));
    }

    #[test]
    fn own_distance_has_no_mindisp_floor() {
        let config = SelectConfig::RFC;
        let mut refclock = stats();
        refclock.root_delay = 0.0;
        refclock.root_dispersion = 0.0;
        refclock.delay = 1e-6;
        let own = refclock.own_distance(100.0, &config).unwrap();
        // 1 us / 2 + 2 ms + 0.5 ms.
        assert!(close(own, 0.5e-6 + 0.002 + 0.0005), "{own}");
        let floored = refclock.root_distance(100.0, &config).unwrap();
        assert!(close(floored, MINDISP / 2.0 + 0.002 + 0.0005), "{floored}");
        let candidate = refclock.candidate(1, 100.0, &config).unwrap();
        assert!(close(candidate.own_distance(), own));
        assert!(close(candidate.root_distance(), floored));
        // Above the floor both agree.
        let server = stats();
        assert!(close(
            server.own_distance(100.0, &config).unwrap(),
            server.root_distance(100.0, &config).unwrap()
        ));
    }

    #[test]
    fn root_distance_rejects_bad_input() {
        let config = SelectConfig::RFC;
        let mut bad = stats();
        bad.jitter = f64::NAN;
        assert_eq!(
            bad.root_distance(110.0, &config),
            Err(InputError::NotFinite(Quantity::Jitter))
        );
        bad = stats();
        bad.root_delay = -0.1;
        assert_eq!(
            bad.root_distance(110.0, &config),
            Err(InputError::Negative(Quantity::RootDelay))
        );
        assert_eq!(
            stats().root_distance(99.0, &config),
            Err(InputError::TimeWentBackwards)
        );
        assert_eq!(
            stats().root_distance(f64::INFINITY, &config),
            Err(InputError::NotFinite(Quantity::Time))
        );
    }

    #[test]
    fn fit_accepts_a_good_source() {
        assert_eq!(stats().fit(110.0, &context(), &SelectConfig::RFC), Ok(()));
    }

    #[test]
    fn fit_stratum_errors() {
        let config = SelectConfig::RFC;
        for (leap, stratum) in [
            (LeapIndicator::Unsynchronized, 2),
            (LeapIndicator::NoWarning, 0),
            (LeapIndicator::NoWarning, 16),
            (LeapIndicator::NoWarning, 200),
        ] {
            let mut peer = stats();
            peer.leap = leap;
            peer.stratum = Stratum::new(stratum);
            assert_eq!(peer.fit(110.0, &context(), &config), Err(Unfit::Stratum));
        }
    }

    #[test]
    fn fit_distance_threshold_includes_one_poll() {
        let config = SelectConfig::RFC;
        let mut peer = stats();
        // Distance 0.0275 + root_dispersion; poll 2^6 s adds 64 * 15e-6.
        peer.root_dispersion = 1.0 + 64.0 * PHI - 0.0275 - 1e-6;
        assert_eq!(peer.fit(100.0, &context(), &config), Ok(()));
        peer.root_dispersion += 2e-6;
        assert_eq!(peer.fit(100.0, &context(), &config), Err(Unfit::Distance));
        // Aging alone pushes a source past the threshold.
        let peer = stats();
        assert_eq!(
            peer.fit(100.0 + 70_000.0, &context(), &config),
            Err(Unfit::Distance)
        );
    }

    #[test]
    fn fit_loop_errors() {
        let config = SelectConfig::RFC;
        let mut peer = stats();
        peer.reference_id = context().local_reference_id;
        assert_eq!(peer.fit(110.0, &context(), &config), Err(Unfit::Loop));
        peer.reference_id = context().system_reference_id;
        assert_eq!(peer.fit(110.0, &context(), &config), Err(Unfit::Loop));
        // Stratum 1 with a clock name equal to ours is no loop.
        peer.stratum = Stratum::PRIMARY;
        peer.reference_id = RefId::new(*b"GPS\0");
        let mut ctx = context();
        ctx.system_reference_id = RefId::new(*b"GPS\0");
        assert_eq!(peer.fit(110.0, &ctx, &config), Ok(()));
    }

    #[test]
    fn fit_unreachable_and_invalid() {
        let config = SelectConfig::RFC;
        let mut peer = stats();
        peer.reach = 0;
        assert_eq!(
            peer.fit(110.0, &context(), &config),
            Err(Unfit::Unreachable)
        );
        peer = stats();
        peer.offset = f64::NEG_INFINITY;
        assert_eq!(
            peer.fit(110.0, &context(), &config),
            Err(Unfit::Invalid(InputError::NotFinite(Quantity::Offset)))
        );
    }

    #[test]
    fn candidate_from_filter_output() {
        let output = FilterOutput {
            offset: -0.002,
            delay: 0.010,
            dispersion: 0.001,
            jitter: 0.0002,
            epoch: 5.0,
        };
        let peer = PeerStats::from_filter(
            &output,
            LeapIndicator::NoWarning,
            Stratum::PRIMARY,
            RefId::new(*b"PPS\0"),
            ShortTime::ZERO,
            ShortTime::ZERO,
            1,
        );
        let candidate = peer.candidate(7, 5.0, &SelectConfig::RFC).unwrap();
        assert_eq!(candidate.id(), 7);
        assert!(close(candidate.offset(), -0.002));
        assert!(close(candidate.root_distance(), 0.005 + 0.001 + 0.0002));
        assert_eq!(candidate.stratum(), Stratum::PRIMARY);
    }
}

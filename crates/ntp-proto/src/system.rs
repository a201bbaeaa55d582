//! The system variables a server writes into its responses
//! (RFC 5905, section 11.2.3 and appendix A.5.5).

use crate::{LeapIndicator, RefId, Repr, ShortTime, Stratum, Timestamp};

/// What a server says about its own clock in every response: the system
/// variables of RFC 5905, section 11.2.3 (`s.leap`, `s.stratum`,
/// `s.precision`, `s.rootdelay`, `s.rootdisp`, `s.refid`, `s.reftime`).
///
/// A client builds one from its system peer (the `ntp-client` crate), and a
/// server (the `ntp-server` crate) copies it into each response: that is how
/// a secondary server is made.
///
/// The [`Default`] is an unsynchronized clock: leap indicator 3, stratum 16,
/// reference id `INIT`, zero reference time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SystemState {
    /// Leap indicator.
    pub leap: LeapIndicator,
    /// Stratum.
    pub stratum: Stratum,
    /// Precision of the system clock, log2 seconds.
    pub precision: i8,
    /// Total round-trip delay to the primary reference clock.
    pub root_delay: ShortTime,
    /// Total dispersion to the primary reference clock.
    pub root_dispersion: ShortTime,
    /// Reference identifier of the system peer or reference clock.
    pub reference_id: RefId,
    /// When the system clock was last set or corrected.
    pub reference_time: Timestamp,
}

impl SystemState {
    /// An unsynchronized clock (RFC 5905, section 7.3: leap 3, stratum 16
    /// = MAXSTRAT; `INIT` as in figure 13), with precision `precision`.
    #[must_use]
    pub const fn unsynchronized(precision: i8) -> Self {
        Self {
            leap: LeapIndicator::Unsynchronized,
            stratum: Stratum::UNSYNCHRONIZED,
            precision,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id: RefId::INIT,
            reference_time: Timestamp::ZERO,
        }
    }

    /// A primary server (stratum 1) whose reference clock is named by
    /// `reference_id` (a kiss-code-like ASCII name such as `GPS`, `PPS`,
    /// or `LOCL` for an undisciplined local clock, RFC 5905 section 7.3,
    /// figure 12) and was last set at `reference_time`: no leap warning,
    /// zero root delay and dispersion, precision 2^-20 s. Set `precision`
    /// and `root_dispersion` afterwards if the clock is worse than that.
    ///
    /// ```
    /// use ntp_proto::{RefId, SystemState, Timestamp};
    ///
    /// let state = SystemState::primary(RefId::LOCL, Timestamp::from_bits(0xeeac_9dac_0000_0000));
    /// assert!(state.is_synchronized());
    /// assert_eq!(state.stratum.get(), 1);
    /// ```
    #[must_use]
    pub const fn primary(reference_id: RefId, reference_time: Timestamp) -> Self {
        Self {
            leap: LeapIndicator::NoWarning,
            stratum: Stratum::PRIMARY,
            precision: -20,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id,
            reference_time,
        }
    }

    /// Whether the state claims synchronization: leap indicator not 3 and
    /// stratum 1 to 15 (RFC 5905, section 7.3).
    #[must_use]
    pub const fn is_synchronized(&self) -> bool {
        !matches!(self.leap, LeapIndicator::Unsynchronized) && self.stratum.is_synchronized()
    }

    /// Copies the state into the matching fields of a header.
    pub fn apply_to(&self, repr: &mut Repr) {
        repr.leap = self.leap;
        repr.stratum = self.stratum;
        repr.precision = self.precision;
        repr.root_delay = self.root_delay;
        repr.root_dispersion = self.root_dispersion;
        repr.reference_id = self.reference_id;
        repr.reference_timestamp = self.reference_time;
    }

    /// Reads the state that a server advertised in a header.
    #[must_use]
    pub const fn from_repr(repr: &Repr) -> Self {
        Self {
            leap: repr.leap,
            stratum: repr.stratum,
            precision: repr.precision,
            root_delay: repr.root_delay,
            root_dispersion: repr.root_dispersion,
            reference_id: repr.reference_id,
            reference_time: repr.reference_timestamp,
        }
    }
}

impl Default for SystemState {
    /// An unsynchronized clock with a precision of 2^-20 s (about 1 µs).
    fn default() -> Self {
        Self::unsynchronized(-20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mode, Version};

    #[test]
    fn default_is_unsynchronized() {
        let state = SystemState::default();
        assert!(!state.is_synchronized());
        assert_eq!(state.leap, LeapIndicator::Unsynchronized);
        assert_eq!(state.stratum, Stratum::UNSYNCHRONIZED);
        assert_eq!(state.reference_id, RefId::INIT);
        assert!(state.reference_time.is_zero());
    }

    #[test]
    fn applies_to_a_header_and_reads_back() {
        let state = SystemState {
            leap: LeapIndicator::InsertSecond,
            stratum: Stratum::new(2),
            precision: -23,
            root_delay: ShortTime::from_bits(0x0000_1234),
            root_dispersion: ShortTime::from_bits(0x0000_5678),
            reference_id: RefId::new([192, 0, 2, 1]),
            reference_time: Timestamp::from_bits(0xeeac_9dac_4545_f0d4),
        };
        assert!(state.is_synchronized());
        let mut repr = Repr {
            leap: LeapIndicator::NoWarning,
            version: Version::V3,
            mode: Mode::Server,
            stratum: Stratum::new(9),
            poll: 6,
            precision: 0,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id: RefId::ZERO,
            reference_timestamp: Timestamp::ZERO,
            origin_timestamp: Timestamp::from_bits(1),
            receive_timestamp: Timestamp::from_bits(2),
            transmit_timestamp: Timestamp::from_bits(3),
        };
        state.apply_to(&mut repr);
        assert_eq!(SystemState::from_repr(&repr), state);
        // Fields that are not system variables are left alone.
        assert_eq!(repr.version, Version::V3);
        assert_eq!(repr.poll, 6);
        assert_eq!(repr.origin_timestamp, Timestamp::from_bits(1));
        assert_eq!(repr.transmit_timestamp, Timestamp::from_bits(3));
    }

    #[test]
    fn a_primary_server_with_leap_3_is_not_synchronized() {
        let state = SystemState {
            stratum: Stratum::PRIMARY,
            ..SystemState::default()
        };
        assert!(!state.is_synchronized());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let state = SystemState::default();
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<SystemState>(&json).unwrap(), state);
    }
}

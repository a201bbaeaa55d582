//! Tally codes: the outcome of the mitigation algorithms for one
//! candidate, as the one-character code `ntpq -p` prints before each
//! source.

use core::fmt;

/// What the mitigation algorithms decided about one source, in the order
/// they decide it.
///
/// [`Display`](fmt::Display) prints the `ntpq -p` character; with the
/// `serde` feature the value serializes as its variant name in
/// `snake_case` (`"system_peer"`).
///
/// Exhaustive on purpose: the tally codes of `ntpq -p` are a closed set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Tally {
    /// `' '`: failed the fitness test (RFC 5905, Appendix A.5.2 `fit`) or
    /// not yet judged.
    #[default]
    Rejected,
    /// `'x'`: falseticker, its correctness interval misses the
    /// intersection interval (section 11.2.1).
    Falseticker,
    /// `'.'`: a truechimer beyond the maximum number of cluster
    /// candidates, in merit order.
    Excess,
    /// `'-'`: outlier, pruned by the cluster algorithm (section 11.2.2).
    Outlier,
    /// `'+'`: survivor of the cluster algorithm, combined (section 11.2.3).
    Candidate,
    /// `'#'`: survivor beyond the maximum number combined; a backup.
    Backup,
    /// `'*'`: the system peer.
    SystemPeer,
    /// `'o'`: the PPS peer. This crate never assigns it (PPS mitigation is
    /// out of its scope); the variant lets a caller that does report it.
    PpsPeer,
}

impl Tally {
    /// All codes, in the order above.
    pub const ALL: [Self; 8] = [
        Self::Rejected,
        Self::Falseticker,
        Self::Excess,
        Self::Outlier,
        Self::Candidate,
        Self::Backup,
        Self::SystemPeer,
        Self::PpsPeer,
    ];

    /// The `ntpq -p` character.
    #[must_use]
    pub const fn code(self) -> char {
        match self {
            Self::Rejected => ' ',
            Self::Falseticker => 'x',
            Self::Excess => '.',
            Self::Outlier => '-',
            Self::Candidate => '+',
            Self::Backup => '#',
            Self::SystemPeer => '*',
            Self::PpsPeer => 'o',
        }
    }

    /// The tally for an `ntpq -p` character.
    #[must_use]
    pub const fn from_code(code: char) -> Option<Self> {
        Some(match code {
            ' ' => Self::Rejected,
            'x' => Self::Falseticker,
            '.' => Self::Excess,
            '-' => Self::Outlier,
            '+' => Self::Candidate,
            '#' => Self::Backup,
            '*' => Self::SystemPeer,
            'o' => Self::PpsPeer,
            _ => return None,
        })
    }

    /// Whether the source is a truechimer: it passed the selection
    /// algorithm.
    #[must_use]
    pub const fn is_truechimer(self) -> bool {
        matches!(
            self,
            Self::Excess
                | Self::Outlier
                | Self::Candidate
                | Self::Backup
                | Self::SystemPeer
                | Self::PpsPeer
        )
    }

    /// Whether the source survived the cluster algorithm.
    #[must_use]
    pub const fn is_survivor(self) -> bool {
        matches!(
            self,
            Self::Candidate | Self::Backup | Self::SystemPeer | Self::PpsPeer
        )
    }

    /// Whether the combine algorithm uses the source.
    #[must_use]
    pub const fn is_combined(self) -> bool {
        matches!(self, Self::Candidate | Self::SystemPeer | Self::PpsPeer)
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.code(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn codes_match_ntpq() {
        let codes: std::string::String = Tally::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(codes, " x.-+#*o");
    }

    #[test]
    fn codes_round_trip() {
        for tally in Tally::ALL {
            assert_eq!(Tally::from_code(tally.code()), Some(tally));
        }
        assert_eq!(Tally::from_code('?'), None);
    }

    #[test]
    fn stages_nest() {
        for tally in Tally::ALL {
            if tally.is_combined() {
                assert!(tally.is_survivor());
            }
            if tally.is_survivor() {
                assert!(tally.is_truechimer());
            }
        }
        assert!(!Tally::Falseticker.is_truechimer());
        assert!(!Tally::Rejected.is_truechimer());
        assert!(!Tally::Backup.is_combined());
        assert!(!Tally::Outlier.is_survivor());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_names() {
        assert_eq!(
            serde_json::to_string(&Tally::SystemPeer).unwrap(),
            "\"system_peer\""
        );
        for tally in Tally::ALL {
            let json = serde_json::to_string(&tally).unwrap();
            assert_eq!(serde_json::from_str::<Tally>(&json).unwrap(), tally);
        }
    }
}

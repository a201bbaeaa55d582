//! Error types. Bad input is reported here, never by a panic, and an
//! error leaves the caller's state as it was (unless a function documents
//! otherwise).

use core::fmt;

/// Which quantity an input or configuration error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Quantity {
    /// A clock offset (theta).
    Offset,
    /// A round-trip delay (delta).
    Delay,
    /// A dispersion (epsilon).
    Dispersion,
    /// A jitter (psi).
    Jitter,
    /// A root delay (delta_r).
    RootDelay,
    /// A root dispersion (epsilon_r).
    RootDispersion,
    /// A root synchronization distance (lambda).
    RootDistance,
    /// A time on the caller's timescale (`now`, an epoch).
    Time,
    /// The frequency tolerance PHI.
    Phi,
    /// The maximum dispersion MAXDISP.
    MaxDispersion,
    /// The minimum dispersion MINDISP.
    MinDispersion,
    /// The distance threshold MAXDIST.
    MaxDistance,
    /// The system precision.
    Precision,
    /// The combine limit ([`SelectConfig::combine_limit`](crate::SelectConfig::combine_limit)).
    CombineLimit,
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Offset => "offset",
            Self::Delay => "delay",
            Self::Dispersion => "dispersion",
            Self::Jitter => "jitter",
            Self::RootDelay => "root delay",
            Self::RootDispersion => "root dispersion",
            Self::RootDistance => "root distance",
            Self::Time => "time",
            Self::Phi => "frequency tolerance",
            Self::MaxDispersion => "maximum dispersion",
            Self::MinDispersion => "minimum dispersion",
            Self::MaxDistance => "distance threshold",
            Self::Precision => "precision",
            Self::CombineLimit => "combine limit",
        };
        f.write_str(name)
    }
}

/// A number handed to the crate is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// NaN or infinite.
    #[error("{0} is NaN or infinite")]
    NotFinite(Quantity),
    /// Negative where only non-negative values make sense (delay,
    /// dispersion, jitter, distance).
    #[error("{0} is negative")]
    Negative(Quantity),
    /// Magnitude above [`MAX_MAGNITUDE`](crate::constants::MAX_MAGNITUDE).
    #[error("{0} is out of range")]
    OutOfRange(Quantity),
    /// `now` is earlier than a time the caller gave before (time must not
    /// go backwards).
    #[error("time went backwards")]
    TimeWentBackwards,
}

/// A configuration value is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// NaN or infinite.
    #[error("configured {0} is NaN or infinite")]
    NotFinite(Quantity),
    /// Negative, zero where a positive value is needed, or too large.
    #[error("configured {0} is out of range")]
    OutOfRange(Quantity),
    /// A count (CMIN, NMIN, maximum candidates, maximum combined) is zero.
    #[error("a configured count is zero")]
    ZeroCount,
}

/// Why the selection, cluster or combine algorithm produced no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// No candidates were given.
    #[error("no candidates")]
    NoCandidates,
    /// No majority clique exists: no point is inside the correctness
    /// intervals of more than half of the candidates (RFC 5905, section
    /// 11.2.1, step 6).
    #[error("no majority clique among {candidates} candidates")]
    NoMajority {
        /// Number of candidates.
        candidates: usize,
    },
    /// Fewer truechimers than CMIN (RFC 5905, section 11.2.1): the deepest
    /// clique, the most correctness intervals sharing a point, is smaller
    /// than CMIN.
    #[error("at most {truechimers} candidates agree, fewer than the {required} required")]
    TooFewTruechimers {
        /// The most correctness intervals sharing a point.
        truechimers: usize,
        /// The configured minimum (CMIN).
        required: usize,
    },
    /// Some candidates have [`SelectOptions::require`](crate::SelectOptions)
    /// and none of them is a truechimer (chrony's `require`).
    #[error("no source with the require option is a truechimer")]
    RequiredNotSelectable,
    /// The candidate list holds no candidate tallied
    /// [`Candidate`](crate::Tally::Candidate): run
    /// [`select`](crate::intersect::select) first, or nothing survived.
    #[error("no survivors to cluster or combine")]
    NoSurvivors,
    /// The scratch slice is shorter than needed.
    #[error("scratch space of {got} slots, {needed} needed")]
    ScratchTooSmall {
        /// Slots needed.
        needed: usize,
        /// Slots given.
        got: usize,
    },
    /// More candidates than the crate can index (above `u32::MAX`).
    #[error("too many candidates")]
    TooManyCandidates,
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Checks a signed quantity: finite, magnitude at most
/// [`MAX_MAGNITUDE`](crate::constants::MAX_MAGNITUDE).
pub(crate) fn check_signed(value: f64, quantity: Quantity) -> Result<f64, InputError> {
    if !value.is_finite() {
        return Err(InputError::NotFinite(quantity));
    }
    if value.abs() > crate::constants::MAX_MAGNITUDE {
        return Err(InputError::OutOfRange(quantity));
    }
    Ok(value)
}

/// Checks a non-negative quantity: finite, `0..=MAX_MAGNITUDE`.
pub(crate) fn check_non_negative(value: f64, quantity: Quantity) -> Result<f64, InputError> {
    let value = check_signed(value, quantity)?;
    if value < 0.0 {
        return Err(InputError::Negative(quantity));
    }
    Ok(value)
}

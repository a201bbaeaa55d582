//! The input of the selection, cluster and combine algorithms, and the
//! caller-provided scratch space they work in.

use core::cmp::Ordering;

use ntp_proto::Stratum;

use crate::error::{InputError, Quantity, check_non_negative, check_signed};
use crate::tally::Tally;

/// The selection options of a source, as chrony's `server` directive
/// names them. RFC 5905 knows only `prefer` (section 11.2.3: the system
/// peer is the prefer peer when it survives); `trust` and `require` are
/// chrony's. A fourth option, `noselect`, needs no flag here: such a
/// source is simply never made a candidate.
///
/// - `prefer`: when a preferred candidate survives the selection and
///   cluster algorithms, the system peer is chosen among the preferred
///   survivors and only they are combined. A preferred falseticker is
///   still a falseticker.
/// - `trust`: the source's time is taken as true. The selection algorithm
///   ([`select`](crate::select)) looks first for the point covered by the
///   most trusted correctness intervals, and only then by the most
///   intervals in all, so a trusted source is outvoted only by other
///   trusted sources; with a trusted source in the intersection no
///   majority of all candidates is needed. Among the survivors a trusted
///   one is chosen as system peer before an untrusted one.
/// - `require`: the selection fails
///   ([`SelectError::RequiredNotSelectable`](crate::SelectError::RequiredNotSelectable))
///   unless at least one candidate with this option is a truechimer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SelectOptions {
    /// chrony's and RFC 5905's `prefer`.
    pub prefer: bool,
    /// chrony's `trust`.
    pub trust: bool,
    /// chrony's `require`.
    pub require: bool,
}

impl SelectOptions {
    /// No option: the source is selected on its merits alone.
    pub const NONE: Self = Self {
        prefer: false,
        trust: false,
        require: false,
    };

    /// The rank of the source in the choice of the system peer: preferred
    /// before trusted before the rest.
    pub(crate) const fn rank(self) -> u8 {
        if self.prefer {
            2
        } else if self.trust {
            1
        } else {
            0
        }
    }
}

/// One source as the mitigation algorithms see it: the survivor tuple
/// `(p, theta_p, psi_p, lambda_p, stratum_p)` of RFC 5905, section 11.2.2,
/// plus its [`SelectOptions`] and its [`Tally`], which the algorithms
/// write.
///
/// Built through [`new`](Self::new) (or
/// [`PeerStats::candidate`](crate::PeerStats::candidate)), so its numbers
/// are always finite and in range. `id` is the association identifier;
/// give every source its own, since ties are broken by it last.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Candidate {
    id: u64,
    offset: f64,
    root_distance: f64,
    own_distance: f64,
    jitter: f64,
    stratum: Stratum,
    options: SelectOptions,
    tally: Tally,
}

impl Candidate {
    /// A candidate with tally [`Tally::Rejected`] (not yet judged).
    ///
    /// `offset` is theta, `root_distance` lambda (see
    /// [`PeerStats::root_distance`](crate::PeerStats::root_distance)) and
    /// `jitter` the peer jitter psi, all in seconds.
    ///
    /// # Errors
    ///
    /// [`InputError`] for a NaN or infinite value, a negative distance or
    /// jitter, or a magnitude beyond 2^31 s.
    pub fn new(
        id: u64,
        offset: f64,
        root_distance: f64,
        jitter: f64,
        stratum: Stratum,
    ) -> Result<Self, InputError> {
        Ok(Self {
            id,
            offset: check_signed(offset, Quantity::Offset)?,
            root_distance: check_non_negative(root_distance, Quantity::RootDistance)?,
            own_distance: root_distance,
            jitter: check_non_negative(jitter, Quantity::Jitter)?,
            stratum,
            options: SelectOptions::NONE,
            tally: Tally::Rejected,
        })
    }

    /// The same candidate with the given selection options.
    #[must_use]
    pub const fn with_options(mut self, options: SelectOptions) -> Self {
        self.options = options;
        self
    }

    /// The same candidate with `own_distance` as the root distance
    /// without the MINDISP floor (see [`own_distance`](Self::own_distance)).
    /// A value above the root distance, or not finite, keeps the root
    /// distance.
    #[must_use]
    pub fn with_own_distance(mut self, own_distance: f64) -> Self {
        if own_distance.is_finite() && (0.0..=self.root_distance).contains(&own_distance) {
            self.own_distance = own_distance;
        }
        self
    }

    /// The root distance without the MINDISP floor of the delay term
    /// ([`PeerStats::own_distance`](crate::PeerStats::own_distance)), s:
    /// what the source itself says of its error. The root distance
    /// unless set by [`with_own_distance`](Self::with_own_distance).
    #[must_use]
    pub const fn own_distance(&self) -> f64 {
        self.own_distance
    }

    /// The selection options.
    #[must_use]
    pub const fn options(&self) -> SelectOptions {
        self.options
    }

    /// Association identifier.
    #[must_use]
    pub const fn id(&self) -> u64 {
        self.id
    }

    /// Offset theta, s.
    #[must_use]
    pub const fn offset(&self) -> f64 {
        self.offset
    }

    /// Root synchronization distance lambda, s.
    #[must_use]
    pub const fn root_distance(&self) -> f64 {
        self.root_distance
    }

    /// Peer jitter psi, s.
    #[must_use]
    pub const fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Stratum.
    #[must_use]
    pub const fn stratum(&self) -> Stratum {
        self.stratum
    }

    /// The outcome so far.
    #[must_use]
    pub const fn tally(&self) -> Tally {
        self.tally
    }

    /// Sets the outcome, for example [`Tally::PpsPeer`] by a caller that
    /// mitigates a PPS source itself.
    pub fn set_tally(&mut self, tally: Tally) {
        self.tally = tally;
    }

    /// The correctness interval `[theta - lambda, theta + lambda]`
    /// (RFC 5905, section 11.2.1).
    #[must_use]
    pub fn interval(&self) -> (f64, f64) {
        (
            self.offset - self.root_distance,
            self.offset + self.root_distance,
        )
    }

    /// The cluster merit `stratum * MAXDIST + lambda` (RFC 5905, section
    /// 11.2.2), with `max_distance` as MAXDIST. Smaller is better.
    #[must_use]
    pub fn merit(&self, max_distance: f64) -> f64 {
        f64::from(self.stratum.get()) * max_distance + self.root_distance
    }

    /// Total preference order: merit, then root distance, offset, jitter,
    /// stratum and id. Two candidates compare equal only when they are
    /// identical in every field but the tally.
    pub(crate) fn cmp_merit(&self, other: &Self, max_distance: f64) -> Ordering {
        self.merit(max_distance)
            .total_cmp(&other.merit(max_distance))
            .then(self.root_distance.total_cmp(&other.root_distance))
            .then(self.offset.total_cmp(&other.offset))
            .then(self.jitter.total_cmp(&other.jitter))
            .then(self.stratum.get().cmp(&other.stratum.get()))
            .then(self.id.cmp(&other.id))
    }
}

/// Slots of scratch space the selection algorithm needs per candidate.
pub const SELECT_SLOTS_PER_CANDIDATE: usize = 2;

/// Slots of scratch space the cluster algorithm (and so the whole
/// pipeline) needs per candidate.
pub const SLOTS_PER_CANDIDATE: usize = 3;

/// One cell of the caller-provided working memory of the selection and
/// cluster algorithms: an endpoint of a correctness interval, or an entry
/// of a sorted list. Its contents mean nothing to the caller.
///
/// ```
/// use ntp_select::{Slot, SLOTS_PER_CANDIDATE};
/// // Room for up to 64 candidates, on the stack.
/// let scratch = [Slot::EMPTY; 64 * SLOTS_PER_CANDIDATE];
/// # let _ = scratch;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slot {
    pub(crate) value: f64,
    pub(crate) index: u32,
    pub(crate) aux: u32,
}

impl Slot {
    /// An unused slot.
    pub const EMPTY: Self = Self {
        value: 0.0,
        index: 0,
        aux: 0,
    };

    /// The candidate index stored in the slot.
    pub(crate) fn candidate(self) -> usize {
        // u32 -> usize never truncates on the targets we support (16-bit
        // targets are refused by `check_count`).
        usize::try_from(self.index).unwrap_or(usize::MAX)
    }
}

/// Checks that `count` candidates can be indexed by `u32` and that the
/// scratch space holds `per_candidate` slots for each.
pub(crate) fn check_scratch(
    count: usize,
    scratch: &[Slot],
    per_candidate: usize,
) -> Result<(), crate::SelectError> {
    if u32::try_from(count).is_err() {
        return Err(crate::SelectError::TooManyCandidates);
    }
    let needed = count.saturating_mul(per_candidate);
    if scratch.len() < needed {
        return Err(crate::SelectError::ScratchTooSmall {
            needed,
            got: scratch.len(),
        });
    }
    Ok(())
}

/// Index as stored in a slot; callers checked the count with
/// [`check_scratch`] first.
pub(crate) fn slot_index(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

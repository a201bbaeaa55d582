//! RFC 5905 mitigation algorithms as pure functions: the clock filter and
//! the selection, cluster and combine algorithms that turn the statistics
//! of many time sources into one system offset.
//!
//! # The pipeline
//!
//! 1. **Clock filter** ([`ClockFilter`], RFC 5905 section 10). Per source,
//!    an 8-stage shift register of `(offset, delay, dispersion, epoch)`
//!    samples picks the sample with the smallest delay and yields the peer
//!    offset, delay, dispersion and jitter ([`FilterOutput`]).
//! 2. **Fitness and root distance** ([`PeerStats::fit`],
//!    [`PeerStats::root_distance`], Appendix A.5.2 and A.5.5.2). A source
//!    that is unsynchronized, too far away, in a timing loop or unreachable
//!    is rejected (tally `' '`). The others become [`Candidate`]s: offset
//!    theta, root distance lambda, jitter, stratum.
//! 3. **Selection** ([`select`], section 11.2.1). Each candidate claims the
//!    true offset lies in `theta ± lambda`. The largest majority that agrees
//!    marks out an interval; the candidates whose intervals hold all of it
//!    are the truechimers, the rest are falsetickers (`x`).
//! 4. **Cluster** ([`cluster()`], section 11.2.2). Truechimers are ranked by
//!    merit `stratum * MAXDIST + lambda`; those beyond the first ten are
//!    excess (`.`). The survivor whose offset is farthest from the others
//!    is pruned as an outlier (`-`), round after round, while more than
//!    NMIN = 3 remain and pruning can still help.
//! 5. **System peer** ([`choose_system_peer`]): the best survivor (`*`),
//!    except that the current system peer stays while it survives at the
//!    same stratum, so the system does not hop between near-equal sources.
//! 6. **Combine** ([`combine()`], section 11.2.3). The offsets of the first
//!    six survivors (`+`, `*`; later ones are backups, `#`) are averaged,
//!    each weighted by `1 / lambda`, giving the system offset and jitter.
//!
//! [`mitigate`] runs steps 3 to 6. Nothing allocates: the caller hands in
//! the candidates and [`SLOTS_PER_CANDIDATE`] [`Slot`]s of scratch space
//! per candidate; [`Pipeline`] (feature `alloc`) owns its scratch and
//! remembers the system peer. Every function is deterministic, does no I/O
//! and reads no clock: time is an argument, in seconds on a monotonic
//! timescale of the caller's choosing. Results do not depend on the order
//! of the candidates. NaN and infinities are refused where they enter
//! ([`InputError`]), so none ever comes out.
//!
//! Constants and the choices made where RFC 5905's body, its Appendix A
//! and the reference implementation disagree are in [`constants`] and in
//! the docs of each module.
//!
//! # Example: five sources, one of them lying
//!
//! ```
//! use ntp_proto::Stratum;
//! use ntp_select::{Candidate, SLOTS_PER_CANDIDATE, SelectConfig, Slot, Tally, mitigate};
//!
//! // (id, offset s, root distance s, jitter s, stratum)
//! let sources = [
//!     (1, 0.0012, 0.020, 0.0004, 2),
//!     (2, 0.0020, 0.030, 0.0006, 2),
//!     (3, 0.0008, 0.025, 0.0005, 2),
//!     (4, 0.0800, 0.015, 0.0003, 1), // 80 ms off: disagrees with the rest
//!     (5, -0.0040, 0.050, 0.0020, 3),
//! ];
//! let mut candidates = sources
//!     .iter()
//!     .map(|&(id, offset, distance, jitter, stratum)| {
//!         Candidate::new(id, offset, distance, jitter, Stratum::new(stratum))
//!     })
//!     .collect::<Result<Vec<_>, _>>()?;
//!
//! let mut scratch = [Slot::EMPTY; 5 * SLOTS_PER_CANDIDATE];
//! let result = mitigate(&mut candidates, &mut scratch, &SelectConfig::default(), None)?;
//!
//! let tallies: String = candidates.iter().map(|c| c.tally().code()).collect();
//! // Source 4 is the falseticker. Of the four truechimers the cluster
//! // algorithm prunes source 5, farthest from the others; source 1 has the
//! // best merit and becomes the system peer.
//! assert_eq!(tallies, "*++x-");
//! assert_eq!(result.system_peer_id, 1);
//! assert_eq!(candidates[3].tally(), Tally::Falseticker);
//!
//! // The offset combines sources 1 to 3, weighted by 1 / root distance.
//! let expected = (0.0012 / 0.020 + 0.0020 / 0.030 + 0.0008 / 0.025)
//!     / (1.0 / 0.020 + 1.0 / 0.030 + 1.0 / 0.025);
//! assert!((result.combined.offset - expected).abs() < 1e-12);
//! assert!(result.intersection.contains(result.combined.offset));
//! println!("offset {:.6} s, jitter {:.6} s", result.combined.offset, result.combined.jitter);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `std` (default): implies `alloc`.
//! - `alloc`: [`Pipeline`], which owns its scratch space.
//! - `serde`: `Serialize` for the results, the tallies, the configs and
//!   [`PeerStats`]; `Deserialize` for the plain data among them.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

// The crate README's snippet is compiled and run as a doctest here.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod candidate;
pub mod cluster;
pub mod combine;
pub mod constants;
mod error;
pub mod filter;
pub mod intersect;
pub mod median;
mod peer;
mod pipeline;
mod tally;

pub use candidate::{
    Candidate, SELECT_SLOTS_PER_CANDIDATE, SLOTS_PER_CANDIDATE, SelectOptions, Slot,
};
pub use cluster::{ClusterResult, cluster};
pub use combine::{Combined, choose_system_peer, combine};
pub use constants::{FilterConfig, SelectConfig};
pub use error::{ConfigError, InputError, Quantity, SelectError};
pub use filter::{ClockFilter, FilterOutput, FilterSample};
pub use intersect::{Intersection, select};
pub use median::{MedianFilter, MedianOutput};
pub use peer::{FitContext, PeerStats, Unfit};
#[cfg(feature = "alloc")]
pub use pipeline::Pipeline;
pub use pipeline::{Mitigation, mitigate};
pub use tally::Tally;

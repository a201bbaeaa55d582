//! Configuration errors.

/// Why a configuration was refused by [`Server::new`](crate::Server::new)
/// or one of the builders. Requests never produce errors: a bad request is
/// a counted [`DropReason`](crate::DropReason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A prefix length longer than the address (32 for IPv4, 128 for
    /// IPv6).
    #[error("prefix length /{len} is longer than the {max}-bit address")]
    PrefixLength {
        /// The length given.
        len: u8,
        /// The address length in bits.
        max: u8,
    },
    /// Text that is not `ADDRESS` or `ADDRESS/LENGTH`.
    #[error("not an address prefix (expected ADDRESS or ADDRESS/LENGTH)")]
    PrefixSyntax,
    /// More access-control rules than [`MAX_ACL_RULES`](crate::MAX_ACL_RULES).
    #[error("{0} access-control rules, more than the limit")]
    TooManyRules(usize),
    /// A version number outside 1 to 4, or an empty version set.
    #[error("NTP version {0} cannot be served (1 to 4 only)")]
    Version(u8),
    /// A rate-limit interval outside
    /// [`MIN_RATE_INTERVAL`](crate::MIN_RATE_INTERVAL) to
    /// [`MAX_RATE_INTERVAL`](crate::MAX_RATE_INTERVAL).
    #[error("rate-limit interval {0} (log2 s) is out of range")]
    RateInterval(i8),
    /// A burst of zero.
    #[error("rate-limit burst must be at least 1")]
    RateBurst,
    /// A client table capacity of zero or above
    /// [`MAX_RATE_CAPACITY`](crate::MAX_RATE_CAPACITY).
    #[error("rate-limit table capacity {0} is out of range")]
    RateCapacity(usize),
    /// An interleaved-mode table above
    /// [`MAX_INTERLEAVE_CLIENTS`](crate::MAX_INTERLEAVE_CLIENTS) slots.
    #[error("interleaved-mode table of {0} clients is too large")]
    InterleaveClients(usize),
}

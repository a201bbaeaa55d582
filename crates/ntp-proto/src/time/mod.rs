//! NTP time formats and era arithmetic (RFC 5905, section 6).

mod short;
mod timestamp;

pub use short::ShortTime;
pub use timestamp::Timestamp;

//! IPv4 and IPv6 address prefixes (CIDR blocks), for access control and
//! for grouping clients in the rate limiter.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

use crate::ConfigError;

/// Bits in an IPv4 address.
pub(crate) const V4_BITS: u8 = 32;
/// Bits in an IPv6 address.
pub(crate) const V6_BITS: u8 = 128;

/// The address a request is treated as coming from: an IPv4-mapped IPv6
/// address (`::ffff:a.b.c.d`, RFC 4291 section 2.5.5.2), which a
/// dual-stack socket reports for an IPv4 client, is that IPv4 address.
#[inline]
#[must_use]
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        IpAddr::V4(_) => ip,
    }
}

/// The network mask of an IPv4 prefix of `len` bits (`len` ≤ 32).
#[inline]
pub(crate) const fn v4_mask(len: u8) -> u32 {
    match u32::MAX.checked_shl(V4_BITS.saturating_sub(len) as u32) {
        Some(mask) => mask,
        None => 0,
    }
}

/// The network mask of an IPv6 prefix of `len` bits (`len` ≤ 128).
#[inline]
pub(crate) const fn v6_mask(len: u8) -> u128 {
    match u128::MAX.checked_shl(V6_BITS.saturating_sub(len) as u32) {
        Some(mask) => mask,
        None => 0,
    }
}

/// An address prefix such as `192.0.2.0/24` or `2001:db8::/32`.
///
/// The address is stored with its host bits cleared, so `10.1.2.3/8` and
/// `10.0.0.0/8` are the same prefix. A prefix inside the IPv4-mapped range
/// `::ffff:0:0/96` is stored as the IPv4 prefix it maps, because clients
/// with such addresses are IPv4 clients (see [`canonical_ip`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// The prefix of the first `len` bits of `addr`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::PrefixLength`] if `len` exceeds the address length.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, ConfigError> {
        match addr {
            IpAddr::V4(v4) => {
                if len > V4_BITS {
                    return Err(ConfigError::PrefixLength { len, max: V4_BITS });
                }
                let bits = u32::from(v4) & v4_mask(len);
                Ok(Self {
                    addr: IpAddr::V4(Ipv4Addr::from(bits)),
                    len,
                })
            }
            IpAddr::V6(v6) => {
                if len > V6_BITS {
                    return Err(ConfigError::PrefixLength { len, max: V6_BITS });
                }
                let mapped_bits = V6_BITS - V4_BITS;
                if len >= mapped_bits {
                    if let Some(v4) = v6.to_ipv4_mapped() {
                        return Self::new(IpAddr::V4(v4), len - mapped_bits);
                    }
                }
                let bits = u128::from(v6) & v6_mask(len);
                Ok(Self {
                    addr: IpAddr::V6(Ipv6Addr::from(bits)),
                    len,
                })
            }
        }
    }

    /// The prefix that holds exactly `addr` (/32 or /128).
    #[must_use]
    pub fn host(addr: IpAddr) -> Self {
        let addr = canonical_ip(addr);
        let len = if addr.is_ipv4() { V4_BITS } else { V6_BITS };
        Self { addr, len }
    }

    /// The network address (host bits zero).
    #[must_use]
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[must_use]
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// Whether the prefix is `/0`, covering every address of its family.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `ip` lies in this prefix. IPv4-mapped IPv6 addresses are
    /// compared as IPv4 addresses.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & v4_mask(self.len) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & v6_mask(self.len) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = ConfigError;

    /// Parses `ADDRESS/LENGTH`, or a bare `ADDRESS` meaning that one host.
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr = IpAddr::from_str(addr).map_err(|_| ConfigError::PrefixSyntax)?;
        match len {
            None => Ok(Self::host(addr)),
            Some(len) => {
                let len = len.parse::<u8>().map_err(|_| ConfigError::PrefixSyntax)?;
                Self::new(addr, len)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::string::ToString;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn host_bits_are_cleared() {
        let prefix = IpPrefix::new(ip("10.1.2.3"), 8).unwrap();
        assert_eq!(prefix.addr(), ip("10.0.0.0"));
        assert_eq!(prefix, "10.0.0.0/8".parse().unwrap());
        assert_eq!(prefix.to_string(), "10.0.0.0/8");
        let prefix: IpPrefix = "2001:db8:ffff::1/33".parse().unwrap();
        assert_eq!(prefix.addr(), ip("2001:db8:8000::"));
        assert_eq!(prefix.len(), 33);
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(
            IpPrefix::new(ip("10.0.0.0"), 33),
            Err(ConfigError::PrefixLength { len: 33, max: 32 })
        );
        assert_eq!(
            "::/129".parse::<IpPrefix>(),
            Err(ConfigError::PrefixLength { len: 129, max: 128 })
        );
        assert_eq!(
            "10.0.0.0/".parse::<IpPrefix>(),
            Err(ConfigError::PrefixSyntax)
        );
        assert_eq!(
            "10.0.0/8".parse::<IpPrefix>(),
            Err(ConfigError::PrefixSyntax)
        );
        assert_eq!("".parse::<IpPrefix>(), Err(ConfigError::PrefixSyntax));
    }

    #[test]
    fn zero_length_covers_its_family_only() {
        let all4: IpPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all4.is_empty());
        assert!(all4.contains(ip("203.0.113.9")));
        assert!(!all4.contains(ip("2001:db8::1")));
        let all6: IpPrefix = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
        assert!(!all6.contains(ip("203.0.113.9")));
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let prefix: IpPrefix = "::ffff:192.0.2.0/120".parse().unwrap();
        assert_eq!(prefix, "192.0.2.0/24".parse().unwrap());
        assert!(prefix.contains(ip("::ffff:192.0.2.77")));
        assert!(prefix.contains(ip("192.0.2.77")));
        assert_eq!(canonical_ip(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(canonical_ip(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(IpPrefix::host(ip("::ffff:192.0.2.1")).len(), 32);
        assert_eq!(IpPrefix::host(ip("::1")).len(), 128);
    }

    #[test]
    fn masks() {
        assert_eq!(v4_mask(0), 0);
        assert_eq!(v4_mask(8), 0xff00_0000);
        assert_eq!(v4_mask(32), u32::MAX);
        assert_eq!(v6_mask(0), 0);
        assert_eq!(v6_mask(64), u128::MAX << 64);
        assert_eq!(v6_mask(128), u128::MAX);
    }
}

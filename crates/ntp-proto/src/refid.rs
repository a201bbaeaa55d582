//! Reference identifiers (RFC 5905, section 7.3).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use md5::{Digest, Md5};

use crate::debug::Octets;
use crate::{KissCode, Stratum};

/// The 32-bit reference identifier of an NTP header (RFC 5905,
/// section 7.3). Its meaning depends on the stratum; see [`RefId::kind`].
///
/// `Debug` shows the octets as a dotted quad (an IPv4 address or the hash
/// of an IPv6 one) and, when they look like text, as that text too (a
/// kiss code or a reference clock name), since without the stratum either
/// may be meant:
///
/// ```
/// use ntp_proto::RefId;
///
/// assert_eq!(format!("{:?}", RefId::new([127, 0, 0, 1])), "RefId(127.0.0.1)");
/// assert_eq!(format!("{:?}", RefId::new(*b"GPS\0")), r#"RefId(71.80.83.0 / "GPS")"#);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct RefId([u8; 4]);

/// The meaning of a reference identifier at a given stratum
/// (RFC 5905, section 7.3).
///
/// `Debug` shows the octets of [`Source`](Self::Source) and
/// [`Unsynchronized`](Self::Unsynchronized) as text when they look like
/// text (`Source("GPS")`), in hexadecimal otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RefIdKind {
    /// Stratum 0: a kiss code (RFC 5905, section 7.4).
    Kiss(KissCode),
    /// Stratum 1: a left-justified, zero-padded ASCII name of the reference
    /// clock, such as `GPS`, `PPS` or `DCF` (RFC 5905, figure 12).
    Source([u8; 4]),
    /// Strata 2 to 15: the upstream server, as its IPv4 address or as the
    /// first four octets of the MD5 hash of its IPv6 address. The two
    /// cannot be told apart from the octets alone; compare with
    /// [`RefId::from_ip`] to detect a timing loop.
    Upstream(RefId),
    /// Stratum 16 and above: unsynchronized (or reserved); the octets are
    /// usually an ASCII status such as `INIT`.
    Unsynchronized([u8; 4]),
}

impl RefId {
    /// The all-zero identifier.
    pub const ZERO: Self = Self([0; 4]);
    /// `INIT`, the identifier of an association that has not synchronized
    /// yet (RFC 5905, figure 13).
    pub const INIT: Self = Self(*b"INIT");
    /// `LOCL`, the identifier conventionally used by a server that serves
    /// its own undisciplined clock.
    pub const LOCL: Self = Self(*b"LOCL");

    /// Wraps four octets.
    #[inline]
    #[must_use]
    pub const fn new(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }

    /// The four octets.
    #[inline]
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }

    /// A left-justified, zero-padded ASCII identifier (a kiss code or a
    /// stratum-1 source name). Returns `None` if `name` is empty, longer
    /// than four octets, or not printable ASCII.
    #[must_use]
    pub fn from_ascii(name: &[u8]) -> Option<Self> {
        if name.is_empty() || name.len() > 4 || !name.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut bytes = [0; 4];
        for (out, octet) in bytes.iter_mut().zip(name) {
            *out = *octet;
        }
        Some(Self(bytes))
    }

    /// The identifier of an upstream IPv4 server: its address
    /// (RFC 5905, section 7.3).
    #[inline]
    #[must_use]
    pub const fn from_ipv4(addr: Ipv4Addr) -> Self {
        Self(addr.octets())
    }

    /// The identifier of an upstream IPv6 server: the first four octets of
    /// the MD5 hash of its address (RFC 5905, section 7.3).
    #[must_use]
    pub fn from_ipv6(addr: Ipv6Addr) -> Self {
        let digest = Md5::digest(addr.octets());
        let mut bytes = [0; 4];
        for (out, octet) in bytes.iter_mut().zip(digest.iter()) {
            *out = *octet;
        }
        Self(bytes)
    }

    /// The identifier of an upstream server at `addr`. An IPv4-mapped IPv6
    /// address is hashed like any IPv6 address: it is what the socket saw.
    #[must_use]
    pub fn from_ip(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => Self::from_ipv4(v4),
            IpAddr::V6(v6) => Self::from_ipv6(v6),
        }
    }

    /// A kiss code built from a [`KissCode`].
    #[inline]
    #[must_use]
    pub const fn from_kiss_code(code: KissCode) -> Self {
        Self(code.to_bytes())
    }

    /// The octets read as a kiss code (meaningful at stratum 0).
    #[inline]
    #[must_use]
    pub const fn kiss_code(self) -> KissCode {
        KissCode::from_bytes(self.0)
    }

    /// The meaning of the identifier at `stratum` (RFC 5905, section 7.3).
    #[must_use]
    pub const fn kind(self, stratum: Stratum) -> RefIdKind {
        match stratum.get() {
            0 => RefIdKind::Kiss(KissCode::from_bytes(self.0)),
            1 => RefIdKind::Source(self.0),
            2..=15 => RefIdKind::Upstream(self),
            _ => RefIdKind::Unsynchronized(self.0),
        }
    }

    /// Formats the identifier the way `ntpq -p` does at `stratum`: as
    /// `.TEXT.` at strata 0, 1 and 16 and above, and as a dotted quad at
    /// strata 2 to 15 (where an IPv6 hash looks like an IPv4 address too).
    #[inline]
    #[must_use]
    pub const fn display(self, stratum: Stratum) -> RefIdDisplay {
        RefIdDisplay {
            refid: self,
            stratum,
        }
    }

    /// The octets as an IPv4 address (meaningful at strata 2 to 15).
    #[inline]
    #[must_use]
    pub const fn to_ipv4(self) -> Ipv4Addr {
        let [a, b, c, d] = self.0;
        Ipv4Addr::new(a, b, c, d)
    }

    /// Whether this identifier names the server at `addr` (RFC 5905,
    /// section 7.3): the check behind timing-loop detection.
    #[must_use]
    pub fn names(self, addr: IpAddr) -> bool {
        self == Self::from_ip(addr)
    }

    /// Whether the octets look like text: one to four printable ASCII
    /// characters followed by zero padding.
    #[must_use]
    pub fn is_ascii_text(self) -> bool {
        let used = self
            .0
            .iter()
            .rposition(|&octet| octet != 0)
            .map_or(0, |i| i + 1);
        let (text, _) = self.0.split_at(used);
        used > 0 && text.iter().all(u8::is_ascii_graphic)
    }
}

impl From<[u8; 4]> for RefId {
    fn from(bytes: [u8; 4]) -> Self {
        Self(bytes)
    }
}

impl From<RefId> for [u8; 4] {
    fn from(refid: RefId) -> Self {
        refid.0
    }
}

impl From<Ipv4Addr> for RefId {
    fn from(addr: Ipv4Addr) -> Self {
        Self::from_ipv4(addr)
    }
}

impl From<KissCode> for RefId {
    fn from(code: KissCode) -> Self {
        Self::from_kiss_code(code)
    }
}

impl fmt::Display for RefId {
    /// Without a stratum the meaning is a guess: one to four printable ASCII
    /// characters followed by zero padding print as `.TEXT.`, anything else
    /// as a dotted quad. Prefer [`RefId::display`] when the stratum is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ascii_text() {
            f.write_str(".")?;
            write_ascii(f, &self.0)?;
            f.write_str(".")
        } else {
            fmt::Display::fmt(&self.to_ipv4(), f)
        }
    }
}

impl fmt::Debug for RefId {
    /// The dotted quad, then the text if the octets look like text:
    /// `RefId(127.0.0.1)`, `RefId(71.80.83.0 / "GPS")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefId({}", self.to_ipv4())?;
        if self.is_ascii_text() {
            write!(f, " / {:?}", Octets(&self.0))?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for RefIdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kiss(code) => f.debug_tuple("Kiss").field(code).finish(),
            Self::Source(octets) => f.debug_tuple("Source").field(&Octets(octets)).finish(),
            Self::Upstream(refid) => f.debug_tuple("Upstream").field(refid).finish(),
            Self::Unsynchronized(octets) => f
                .debug_tuple("Unsynchronized")
                .field(&Octets(octets))
                .finish(),
        }
    }
}

/// Formats a [`RefId`] at a known stratum, as `ntpq -p` does; made by
/// [`RefId::display`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefIdDisplay {
    refid: RefId,
    stratum: Stratum,
}

impl fmt::Display for RefIdDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.refid.kind(self.stratum) {
            RefIdKind::Upstream(refid) => fmt::Display::fmt(&refid.to_ipv4(), f),
            _ => {
                f.write_str(".")?;
                write_ascii(f, &self.refid.0)?;
                f.write_str(".")
            }
        }
    }
}

/// Writes ASCII text from `bytes`, dropping trailing NULs and showing any
/// octet that is not printable ASCII as `?`.
pub(crate) fn write_ascii(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let used = bytes
        .iter()
        .rposition(|&octet| octet != 0)
        .map_or(0, |i| i + 1);
    for &octet in bytes.iter().take(used) {
        let shown = if octet.is_ascii_graphic() || octet == b' ' {
            char::from(octet)
        } else {
            '?'
        };
        fmt::Write::write_char(f, shown)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::string::ToString;

    use super::*;

    #[test]
    fn kinds_follow_the_stratum() {
        let gps = RefId::from_ascii(b"GPS").unwrap();
        assert_eq!(gps.to_bytes(), *b"GPS\0");
        assert_eq!(gps.kind(Stratum::PRIMARY), RefIdKind::Source(*b"GPS\0"));
        assert_eq!(
            RefId::new(*b"RATE").kind(Stratum::UNSPECIFIED),
            RefIdKind::Kiss(KissCode::Rate)
        );
        let upstream = RefId::from_ipv4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            upstream.kind(Stratum::new(2)),
            RefIdKind::Upstream(upstream)
        );
        assert_eq!(
            upstream.kind(Stratum::new(15)),
            RefIdKind::Upstream(upstream)
        );
        assert_eq!(
            RefId::INIT.kind(Stratum::UNSYNCHRONIZED),
            RefIdKind::Unsynchronized(*b"INIT")
        );
    }

    #[test]
    fn displays_like_ntpq() {
        let refid = RefId::new([0x7f, 0x7f, 0x01, 0x01]);
        assert_eq!(refid.display(Stratum::new(3)).to_string(), "127.127.1.1");
        assert_eq!(
            RefId::new(*b"GPS\0").display(Stratum::PRIMARY).to_string(),
            ".GPS."
        );
        assert_eq!(
            RefId::new(*b"RATE")
                .display(Stratum::UNSPECIFIED)
                .to_string(),
            ".RATE."
        );
        assert_eq!(
            RefId::INIT.display(Stratum::UNSYNCHRONIZED).to_string(),
            ".INIT."
        );
        assert_eq!(RefId::new(*b"PPS\0").to_string(), ".PPS.");
        assert_eq!(RefId::new([10, 0, 0, 1]).to_string(), "10.0.0.1");
        assert_eq!(RefId::ZERO.to_string(), "0.0.0.0");
        assert_eq!(
            RefId::new([b'A', 0x01, 0, 0])
                .display(Stratum::PRIMARY)
                .to_string(),
            ".A?."
        );
    }

    #[test]
    fn debug_shows_address_and_text() {
        use std::format;

        assert_eq!(
            format!("{:?}", RefId::new([127, 0, 0, 1])),
            "RefId(127.0.0.1)"
        );
        assert_eq!(
            format!("{:?}", RefId::INIT),
            r#"RefId(73.78.73.84 / "INIT")"#
        );
        assert_eq!(
            format!("{:?}", RefId::new(*b"GPS\0")),
            r#"RefId(71.80.83.0 / "GPS")"#
        );
        assert_eq!(format!("{:?}", RefId::ZERO), "RefId(0.0.0.0)");
        // A quote is printable ASCII: escaped, not taken for the end.
        assert_eq!(
            format!("{:?}", RefId::new(*b"A\"\0\0")),
            r#"RefId(65.34.0.0 / "A\"")"#
        );
        let gps = RefId::new(*b"GPS\0");
        assert_eq!(
            format!("{:?}", gps.kind(Stratum::PRIMARY)),
            r#"Source("GPS")"#
        );
        assert_eq!(
            format!(
                "{:?}",
                RefId::new([1, 2, 3, 4]).kind(Stratum::UNSYNCHRONIZED)
            ),
            "Unsynchronized(0x01020304)"
        );
        assert_eq!(
            format!("{:?}", RefId::new([10, 0, 0, 1]).kind(Stratum::new(2))),
            "Upstream(RefId(10.0.0.1))"
        );
        assert_eq!(
            format!("{:?}", RefId::new(*b"RATE").kind(Stratum::UNSPECIFIED)),
            "Kiss(Rate)"
        );
    }

    #[test]
    fn ascii_constructor_rejects_bad_names() {
        assert_eq!(RefId::from_ascii(b""), None);
        assert_eq!(RefId::from_ascii(b"TOOLONG"), None);
        assert_eq!(RefId::from_ascii(b"a\x00"), None);
        assert_eq!(RefId::from_ascii(b"DCF"), Some(RefId::new(*b"DCF\0")));
    }

    #[test]
    fn ipv6_refid_is_md5_prefix() {
        // MD5 of the 16 octets of ::1 is cf404dc8 06178c24 5b5b4fe2
        // 531e6d8c (computed independently with coreutils' md5sum).
        let refid = RefId::from_ipv6(Ipv6Addr::LOCALHOST);
        assert_eq!(refid, RefId::new([0xcf, 0x40, 0x4d, 0xc8]));
        assert_eq!(refid, RefId::from_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(refid.names(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(!refid.names(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
        let v4 = Ipv4Addr::new(127, 0, 0, 1);
        assert!(RefId::new([127, 0, 0, 1]).names(IpAddr::V4(v4)));
    }
}

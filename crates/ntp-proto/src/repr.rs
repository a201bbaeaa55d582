//! The validated meaning of an NTP header (RFC 5905, section 7.3).

use core::fmt;

use crate::packet::{HEADER_LEN, Packet, field};
use crate::{Error, RefId, ShortTime, Timestamp};

/// The leap indicator: a warning of an impending leap second
/// (RFC 5905, section 7.3, figure 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum LeapIndicator {
    /// 0: no warning.
    NoWarning,
    /// 1: the last minute of the day has 61 seconds.
    InsertSecond,
    /// 2: the last minute of the day has 59 seconds.
    DeleteSecond,
    /// 3: unknown, the clock is unsynchronized (the "alarm condition").
    Unsynchronized,
}

impl LeapIndicator {
    /// Decodes the low two bits of `bits`.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0 => Self::NoWarning,
            1 => Self::InsertSecond,
            2 => Self::DeleteSecond,
            _ => Self::Unsynchronized,
        }
    }

    /// The 2-bit wire value.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::NoWarning => 0,
            Self::InsertSecond => 1,
            Self::DeleteSecond => 2,
            Self::Unsynchronized => 3,
        }
    }
}

impl From<u8> for LeapIndicator {
    /// Decodes the low two bits.
    fn from(bits: u8) -> Self {
        Self::from_bits(bits)
    }
}

impl From<LeapIndicator> for u8 {
    fn from(leap: LeapIndicator) -> Self {
        leap.to_bits()
    }
}

/// The NTP versions whose 48-octet header this codec reads and writes.
///
/// # Version policy
///
/// Versions 1 to 4 share the header layout of RFC 5905, section 7.3
/// (RFC 1059, RFC 1119, RFC 1305 and RFC 5905), so [`Repr::parse`]
/// accepts all four and keeps the number, leaving the decision to answer
/// to the caller (servers answer in the request's version). Version 0 was
/// never defined and versions 5 to 7 are not this layout (NTPv5 has its
/// own header), so [`Repr::parse`] rejects them with
/// [`Error::UnsupportedVersion`]. The [`Packet`] view itself reports any
/// 3-bit value. Version 1 had no mode field: its mode bits are zero and
/// read as [`Mode::Reserved`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Version {
    /// NTP version 1 (RFC 1059).
    V1,
    /// NTP version 2 (RFC 1119).
    V2,
    /// NTP version 3 (RFC 1305).
    V3,
    /// NTP version 4 (RFC 5905).
    V4,
}

impl Version {
    /// Decodes a version number: `Some` for 1 to 4.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            3 => Some(Self::V3),
            4 => Some(Self::V4),
            _ => None,
        }
    }

    /// The version number.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
            Self::V3 => 3,
            Self::V4 => 4,
        }
    }
}

impl TryFrom<u8> for Version {
    type Error = Error;

    fn try_from(bits: u8) -> Result<Self, Error> {
        Self::from_bits(bits).ok_or(Error::UnsupportedVersion(bits))
    }
}

impl From<Version> for u8 {
    fn from(version: Version) -> Self {
        version.to_bits()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NTPv{}", self.to_bits())
    }
}

/// The association mode (RFC 5905, section 7.3, figure 10). All eight
/// 3-bit values are named, so every mode is data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Mode {
    /// 0: reserved.
    Reserved,
    /// 1: symmetric active.
    SymmetricActive,
    /// 2: symmetric passive.
    SymmetricPassive,
    /// 3: client.
    Client,
    /// 4: server.
    Server,
    /// 5: broadcast.
    Broadcast,
    /// 6: NTP control message (RFC 1305 appendix B, RFC 9327).
    Control,
    /// 7: reserved for private use (`ntpdc` / monlist).
    Private,
}

impl Mode {
    /// Decodes the low three bits of `bits`.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0b111 {
            0 => Self::Reserved,
            1 => Self::SymmetricActive,
            2 => Self::SymmetricPassive,
            3 => Self::Client,
            4 => Self::Server,
            5 => Self::Broadcast,
            6 => Self::Control,
            _ => Self::Private,
        }
    }

    /// The 3-bit wire value.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u8 {
        match self {
            Self::Reserved => 0,
            Self::SymmetricActive => 1,
            Self::SymmetricPassive => 2,
            Self::Client => 3,
            Self::Server => 4,
            Self::Broadcast => 5,
            Self::Control => 6,
            Self::Private => 7,
        }
    }
}

impl From<u8> for Mode {
    /// Decodes the low three bits.
    fn from(bits: u8) -> Self {
        Self::from_bits(bits)
    }
}

impl From<Mode> for u8 {
    fn from(mode: Mode) -> Self {
        mode.to_bits()
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reserved => "reserved",
            Self::SymmetricActive => "symmetric active",
            Self::SymmetricPassive => "symmetric passive",
            Self::Client => "client",
            Self::Server => "server",
            Self::Broadcast => "broadcast",
            Self::Control => "control",
            Self::Private => "private",
        })
    }
}

/// The stratum octet (RFC 5905, section 7.3, figure 11). Any value is
/// data; [`Stratum::kind`] gives its meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Stratum(u8);

/// What a stratum value means (RFC 5905, section 7.3, figure 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StratumKind {
    /// 0: unspecified or invalid; in a response, a kiss-o'-death.
    Unspecified,
    /// 1: primary server, synchronized to a reference clock.
    Primary,
    /// 2 to 15: secondary server, synchronized over NTP.
    Secondary(u8),
    /// 16: unsynchronized.
    Unsynchronized,
    /// 17 to 255: reserved.
    Reserved(u8),
}

impl Stratum {
    /// Stratum 0: unspecified or invalid, or a kiss-o'-death.
    pub const UNSPECIFIED: Self = Self(0);
    /// Stratum 1: a primary server.
    pub const PRIMARY: Self = Self(1);
    /// Stratum 16 (MAXSTRAT, RFC 5905 section 7.2): unsynchronized.
    pub const UNSYNCHRONIZED: Self = Self(16);

    /// Wraps a raw stratum octet.
    #[inline]
    #[must_use]
    pub const fn new(value: u8) -> Self {
        Self(value)
    }

    /// The raw octet.
    #[inline]
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The meaning of the value.
    #[inline]
    #[must_use]
    pub const fn kind(self) -> StratumKind {
        match self.0 {
            0 => StratumKind::Unspecified,
            1 => StratumKind::Primary,
            n @ 2..=15 => StratumKind::Secondary(n),
            16 => StratumKind::Unsynchronized,
            n => StratumKind::Reserved(n),
        }
    }

    /// True for stratum 0, the stratum of a kiss-o'-death packet.
    #[inline]
    #[must_use]
    pub const fn is_unspecified(self) -> bool {
        self.0 == 0
    }

    /// True for strata 1 to 15, the strata of a synchronized server.
    #[inline]
    #[must_use]
    pub const fn is_synchronized(self) -> bool {
        matches!(self.0, 1..=15)
    }
}

impl From<u8> for Stratum {
    fn from(value: u8) -> Self {
        Self(value)
    }
}

impl From<Stratum> for u8 {
    fn from(stratum: Stratum) -> Self {
        stratum.0
    }
}

impl fmt::Display for Stratum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The validated, owned meaning of an NTP header (RFC 5905, section 7.3).
///
/// [`Repr::parse`] reads it from a [`Packet`]; [`Repr::emit`] writes it
/// back bit for bit. Extension fields and the MAC are not part of the
/// `Repr`: walk them with [`Packet::extension_fields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Repr {
    /// Leap indicator.
    pub leap: LeapIndicator,
    /// Version number (see [`Version`] for the policy).
    pub version: Version,
    /// Association mode.
    pub mode: Mode,
    /// Stratum.
    pub stratum: Stratum,
    /// Poll exponent, log2 seconds.
    pub poll: i8,
    /// Precision exponent, log2 seconds.
    pub precision: i8,
    /// Root delay.
    pub root_delay: ShortTime,
    /// Root dispersion.
    pub root_dispersion: ShortTime,
    /// Reference identifier.
    pub reference_id: RefId,
    /// Reference timestamp.
    pub reference_timestamp: Timestamp,
    /// Origin timestamp (T1).
    pub origin_timestamp: Timestamp,
    /// Receive timestamp (T2).
    pub receive_timestamp: Timestamp,
    /// Transmit timestamp (T3).
    pub transmit_timestamp: Timestamp,
}

impl Repr {
    /// Reads the header of a packet.
    ///
    /// Any leap indicator, mode and stratum is accepted; the version must be
    /// 1 to 4 (see [`Version`]). Octets after the header are not looked at.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`],
    /// [`Error::UnsupportedVersion`] for versions 0 and 5 to 7.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, Error> {
        Self::from_bytes(packet.header()?)
    }

    /// Reads a header from exactly 48 octets.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedVersion`] for versions 0 and 5 to 7.
    #[inline]
    pub fn from_bytes(header: &[u8; HEADER_LEN]) -> Result<Self, Error> {
        let bytes: &[u8] = header;
        let first = field::read_u8(bytes, field::LI_VN_MODE);
        let version_bits = (first >> 3) & 0b111;
        let version =
            Version::from_bits(version_bits).ok_or(Error::UnsupportedVersion(version_bits))?;
        let u32_at = |start| u32::from_be_bytes(field::read(bytes, start));
        let ts_at = |start| Timestamp::from_bits(u64::from_be_bytes(field::read(bytes, start)));
        Ok(Self {
            leap: LeapIndicator::from_bits(first >> 6),
            version,
            mode: Mode::from_bits(first),
            stratum: Stratum(field::read_u8(bytes, field::STRATUM)),
            poll: i8::from_be_bytes([field::read_u8(bytes, field::POLL)]),
            precision: i8::from_be_bytes([field::read_u8(bytes, field::PRECISION)]),
            root_delay: ShortTime::from_bits(u32_at(field::ROOT_DELAY.start)),
            root_dispersion: ShortTime::from_bits(u32_at(field::ROOT_DISPERSION.start)),
            reference_id: RefId::new(field::read(bytes, field::REFERENCE_ID.start)),
            reference_timestamp: ts_at(field::REFERENCE_TS.start),
            origin_timestamp: ts_at(field::ORIGIN_TS.start),
            receive_timestamp: ts_at(field::RECEIVE_TS.start),
            transmit_timestamp: ts_at(field::TRANSMIT_TS.start),
        })
    }

    /// The length of the emitted header: always [`HEADER_LEN`].
    #[inline]
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The 48 header octets.
    #[inline]
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        let bytes: &mut [u8] = &mut out;
        let first =
            (self.leap.to_bits() << 6) | (self.version.to_bits() << 3) | self.mode.to_bits();
        field::write_u8(bytes, field::LI_VN_MODE, first);
        field::write_u8(bytes, field::STRATUM, self.stratum.0);
        field::write(bytes, field::POLL, self.poll.to_be_bytes());
        field::write(bytes, field::PRECISION, self.precision.to_be_bytes());
        field::write(
            bytes,
            field::ROOT_DELAY.start,
            self.root_delay.to_bits().to_be_bytes(),
        );
        field::write(
            bytes,
            field::ROOT_DISPERSION.start,
            self.root_dispersion.to_bits().to_be_bytes(),
        );
        field::write(
            bytes,
            field::REFERENCE_ID.start,
            self.reference_id.to_bytes(),
        );
        for (start, ts) in [
            (field::REFERENCE_TS.start, self.reference_timestamp),
            (field::ORIGIN_TS.start, self.origin_timestamp),
            (field::RECEIVE_TS.start, self.receive_timestamp),
            (field::TRANSMIT_TS.start, self.transmit_timestamp),
        ] {
            field::write(bytes, start, ts.to_bits().to_be_bytes());
        }
        out
    }

    /// Writes the header into the first [`HEADER_LEN`] octets of a packet
    /// buffer. Octets after the header are left as they are.
    ///
    /// # Errors
    ///
    /// Cannot fail on a buffer of at least [`Repr::buffer_len`] octets; on a
    /// shorter one returns [`Error::Truncated`] and writes nothing.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        *packet.header_mut()? = self.to_bytes();
        Ok(())
    }

    /// Appends the 48 header octets to any `bytes::BufMut`.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] (and nothing written) if the buffer cannot take
    /// [`HEADER_LEN`] more octets; a `BytesMut` or `Vec` always can.
    #[cfg(feature = "bytes")]
    #[inline]
    pub fn emit_buf<B: bytes::BufMut>(&self, buf: &mut B) -> Result<(), Error> {
        let room = buf.remaining_mut();
        if room < HEADER_LEN {
            return Err(Error::Truncated {
                len: room,
                needed: HEADER_LEN,
            });
        }
        buf.put_slice(&self.to_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// chrony 4.3's answer to a client request (`shared/vectors`).
    static PACKET_BYTES: [u8; 48] = [
        0x24, 0x03, 0x06, 0xe6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7f, 0x7f, 0x01,
        0x01, 0xee, 0xac, 0x9d, 0xac, 0x45, 0x45, 0xf0, 0xd4, 0x64, 0x19, 0x78, 0xe1, 0x08, 0x56,
        0x40, 0x70, 0xee, 0xac, 0x9d, 0xae, 0x00, 0x62, 0x41, 0x6b, 0xee, 0xac, 0x9d, 0xae, 0x00,
        0x67, 0xa9, 0x74,
    ];

    fn packet_repr() -> Repr {
        Repr {
            leap: LeapIndicator::NoWarning,
            version: Version::V4,
            mode: Mode::Server,
            stratum: Stratum::new(3),
            poll: 6,
            precision: -26,
            root_delay: ShortTime::ZERO,
            root_dispersion: ShortTime::ZERO,
            reference_id: RefId::new([127, 127, 1, 1]),
            reference_timestamp: Timestamp::from_bits(0xeeac_9dac_4545_f0d4),
            origin_timestamp: Timestamp::from_bits(0x6419_78e1_0856_4070),
            receive_timestamp: Timestamp::from_bits(0xeeac_9dae_0062_416b),
            transmit_timestamp: Timestamp::from_bits(0xeeac_9dae_0067_a974),
        }
    }

    #[test]
    fn parse() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap(), packet_repr());
    }

    #[test]
    fn emit() {
        let repr = packet_repr();
        let mut bytes = [0xa5; 48];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, PACKET_BYTES);
        assert_eq!(repr.buffer_len(), 48);
        assert_eq!(repr.to_bytes(), PACKET_BYTES);
    }

    #[test]
    fn emit_leaves_the_payload_alone() {
        let mut bytes = [0xa5; 60];
        packet_repr()
            .emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes[..48], PACKET_BYTES);
        assert_eq!(bytes[48..], [0xa5; 12]);
    }

    #[test]
    fn emit_into_a_short_buffer_fails_and_writes_nothing() {
        let mut bytes = [0xa5; 47];
        let result = packet_repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(
            result,
            Err(Error::Truncated {
                len: 47,
                needed: 48
            })
        );
        assert_eq!(bytes, [0xa5; 47]);
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn emit_buf_appends_to_bytes_mut() {
        let mut buf = bytes::BytesMut::new();
        packet_repr().emit_buf(&mut buf).unwrap();
        assert_eq!(buf[..], PACKET_BYTES);
        let mut small = [0u8; 10];
        let mut cursor: &mut [u8] = &mut small;
        assert!(packet_repr().emit_buf(&mut cursor).is_err());
        assert_eq!(small, [0; 10]);
    }

    #[test]
    fn version_policy() {
        for version in 0..=7u8 {
            let mut bytes = PACKET_BYTES;
            bytes[0] = (bytes[0] & 0b1100_0111) | (version << 3);
            let result = Repr::parse(&Packet::new_unchecked(&bytes));
            match version {
                1..=4 => {
                    let repr = result.unwrap();
                    assert_eq!(repr.version.to_bits(), version);
                    assert_eq!(repr.to_bytes(), bytes);
                }
                _ => assert_eq!(result, Err(Error::UnsupportedVersion(version))),
            }
        }
        assert_eq!(Version::try_from(4), Ok(Version::V4));
        assert_eq!(Version::try_from(5), Err(Error::UnsupportedVersion(5)));
        assert_eq!(std::format!("{}", Version::V3), "NTPv3");
    }

    #[test]
    fn every_mode_and_leap_round_trips() {
        for bits in 0..8u8 {
            let mode = Mode::from_bits(bits);
            assert_eq!(mode.to_bits(), bits);
            assert_eq!(Mode::from(bits | 0xf8), mode);
            let mut repr = packet_repr();
            repr.mode = mode;
            let reparsed = Repr::from_bytes(&repr.to_bytes()).unwrap();
            assert_eq!(reparsed.mode, mode);
        }
        for bits in 0..4u8 {
            let leap = LeapIndicator::from_bits(bits);
            assert_eq!(leap.to_bits(), bits);
            assert_eq!(u8::from(leap), bits);
        }
    }

    #[test]
    fn stratum_meanings() {
        assert_eq!(Stratum::new(0).kind(), StratumKind::Unspecified);
        assert_eq!(Stratum::new(1).kind(), StratumKind::Primary);
        assert_eq!(Stratum::new(2).kind(), StratumKind::Secondary(2));
        assert_eq!(Stratum::new(15).kind(), StratumKind::Secondary(15));
        assert_eq!(Stratum::new(16).kind(), StratumKind::Unsynchronized);
        assert_eq!(Stratum::new(17).kind(), StratumKind::Reserved(17));
        assert_eq!(Stratum::new(255).kind(), StratumKind::Reserved(255));
        assert!(Stratum::new(0).is_unspecified());
        assert!(!Stratum::new(16).is_synchronized());
        assert!(Stratum::new(15).is_synchronized());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trip() {
        let repr = packet_repr();
        let json = serde_json::to_string(&repr).unwrap();
        assert_eq!(serde_json::from_str::<Repr>(&json).unwrap(), repr);
    }

    fn header_with_valid_version() -> impl Strategy<Value = [u8; 48]> {
        (any::<[u8; 48]>(), 1..=4u8).prop_map(|(mut bytes, version)| {
            bytes[0] = (bytes[0] & 0b1100_0111) | (version << 3);
            bytes
        })
    }

    proptest! {
        #[test]
        fn bytes_parse_then_emit_identically(bytes in header_with_valid_version()) {
            let repr = Repr::from_bytes(&bytes).unwrap();
            prop_assert_eq!(repr.to_bytes(), bytes);
            let mut out = [0xa5; 48];
            repr.emit(&mut Packet::new_unchecked(&mut out)).unwrap();
            prop_assert_eq!(out, bytes);
        }

        #[test]
        fn repr_emit_then_parse_identically(
            bytes in header_with_valid_version(),
            version in 1..=4u8,
            mode in 0..8u8,
            leap in 0..4u8,
        ) {
            let mut repr = Repr::from_bytes(&bytes).unwrap();
            repr.version = Version::from_bits(version).unwrap();
            repr.mode = Mode::from_bits(mode);
            repr.leap = LeapIndicator::from_bits(leap);
            let packet = Packet::new_checked(repr.to_bytes()).unwrap();
            prop_assert_eq!(Repr::parse(&packet).unwrap(), repr);
        }

        #[test]
        fn any_input_parses_or_errors_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                match Repr::parse(&packet) {
                    Ok(repr) => prop_assert_eq!(&repr.to_bytes()[..], &bytes[..48]),
                    Err(error) => prop_assert!(matches!(error, Error::UnsupportedVersion(0 | 5..=7))),
                }
                for item in packet.extension_fields() {
                    let _ = item;
                }
            } else {
                prop_assert!(bytes.len() < 48);
            }
        }
    }
}

//! A zero-copy view of the NTP packet header (RFC 5905, section 7.3).

use core::fmt;

use crate::debug::Hex;
use crate::extension::ExtensionFields;
use crate::{Error, LeapIndicator, Mode, RefId, ShortTime, Stratum, Timestamp};

/// Octet offsets of the header fields (RFC 5905, section 7.3, figure 8).
pub(crate) mod field {
    use core::ops::Range;

    /// Leap indicator (2 bits), version (3 bits) and mode (3 bits).
    pub(crate) const LI_VN_MODE: usize = 0;
    /// Stratum, 8-bit unsigned.
    pub(crate) const STRATUM: usize = 1;
    /// Poll exponent, 8-bit signed log2 seconds.
    pub(crate) const POLL: usize = 2;
    /// Precision exponent, 8-bit signed log2 seconds.
    pub(crate) const PRECISION: usize = 3;
    /// Root delay, NTP short format.
    pub(crate) const ROOT_DELAY: Range<usize> = 4..8;
    /// Root dispersion, NTP short format.
    pub(crate) const ROOT_DISPERSION: Range<usize> = 8..12;
    /// Reference identifier.
    pub(crate) const REFERENCE_ID: Range<usize> = 12..16;
    /// Reference timestamp.
    pub(crate) const REFERENCE_TS: Range<usize> = 16..24;
    /// Origin timestamp.
    pub(crate) const ORIGIN_TS: Range<usize> = 24..32;
    /// Receive timestamp.
    pub(crate) const RECEIVE_TS: Range<usize> = 32..40;
    /// Transmit timestamp.
    pub(crate) const TRANSMIT_TS: Range<usize> = 40..48;

    /// Reads `N` octets at `start`; octets beyond the end of `bytes` read
    /// as zero. With a constant `start` and a buffer whose length the
    /// compiler knows, the check folds away.
    #[inline(always)]
    pub(crate) fn read<const N: usize>(bytes: &[u8], start: usize) -> [u8; N] {
        match bytes.get(start..start + N) {
            Some(slice) => {
                let mut out = [0; N];
                out.copy_from_slice(slice);
                out
            }
            None => [0; N],
        }
    }

    /// Reads one octet at `at`, zero beyond the end of `bytes`.
    #[inline(always)]
    pub(crate) fn read_u8(bytes: &[u8], at: usize) -> u8 {
        bytes.get(at).copied().unwrap_or(0)
    }

    /// Writes `value` at `start`; a write that does not fit is dropped.
    #[inline(always)]
    pub(crate) fn write<const N: usize>(bytes: &mut [u8], start: usize, value: [u8; N]) {
        if let Some(slice) = bytes.get_mut(start..start + N) {
            slice.copy_from_slice(&value);
        }
    }

    /// Writes one octet at `at`; a write past the end is dropped.
    #[inline(always)]
    pub(crate) fn write_u8(bytes: &mut [u8], at: usize, value: u8) {
        if let Some(octet) = bytes.get_mut(at) {
            *octet = value;
        }
    }
}

/// Length of the NTP header in octets (RFC 5905, section 7.3): everything
/// up to and including the transmit timestamp.
pub const HEADER_LEN: usize = field::TRANSMIT_TS.end;

/// A zero-copy view of an NTP packet: the 48-octet header of RFC 5905,
/// section 7.3, followed by optional extension fields and a MAC.
///
/// The view works over any container of octets: `&[u8]`, `[u8; 48]`,
/// `Vec<u8>`, `bytes::Bytes` or `bytes::BytesMut`. Getters need
/// `T: AsRef<[u8]>`, setters also `AsMut<[u8]>`. Getters return the raw
/// field: a version of 0 or 7 and a reserved mode are data here, judged only
/// by [`Repr::parse`](crate::Repr::parse).
///
/// Build the view of untrusted input with [`Packet::new_checked`]. On a view
/// built with [`Packet::new_unchecked`] over a buffer shorter than
/// [`HEADER_LEN`], accessors still never panic: missing octets read as zero
/// and writes to them are dropped.
///
/// `Debug` shows the header fields as their getters read them (with the
/// readable `Debug` of [`Timestamp`], [`RefId`] and the others) and the
/// octets after the header in hexadecimal; a buffer too short for a header
/// shows as its octets.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer and checks that it holds a whole header.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds a whole header. Once this returns `Ok`,
    /// every getter returns the real field.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(Error::Truncated {
                len,
                needed: HEADER_LEN,
            })
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole buffer: header, extension fields and MAC.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The 48 header octets, or [`Error::Truncated`].
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn header(&self) -> Result<&[u8; HEADER_LEN], Error> {
        let bytes = self.buffer.as_ref();
        bytes.first_chunk().ok_or(Error::Truncated {
            len: bytes.len(),
            needed: HEADER_LEN,
        })
    }

    /// The octets after the header: extension fields and MAC, if any.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Walks the extension fields and the MAC after the header, following
    /// the rules for this packet's version (see [`ExtensionFields`]).
    #[inline]
    pub fn extension_fields(&self) -> ExtensionFields<'_> {
        ExtensionFields::new(self.payload(), self.version())
    }

    #[inline]
    fn first_octet(&self) -> u8 {
        field::read_u8(self.buffer.as_ref(), field::LI_VN_MODE)
    }

    /// The leap indicator (RFC 5905, section 7.3, figure 9).
    #[inline]
    pub fn leap_indicator(&self) -> LeapIndicator {
        LeapIndicator::from_bits(self.first_octet() >> 6)
    }

    /// The raw 3-bit version number.
    #[inline]
    pub fn version(&self) -> u8 {
        (self.first_octet() >> 3) & 0b111
    }

    /// The association mode (RFC 5905, section 7.3, figure 10).
    #[inline]
    pub fn mode(&self) -> Mode {
        Mode::from_bits(self.first_octet())
    }

    /// The stratum (RFC 5905, section 7.3, figure 11).
    #[inline]
    pub fn stratum(&self) -> Stratum {
        Stratum::new(field::read_u8(self.buffer.as_ref(), field::STRATUM))
    }

    /// The poll exponent: log2 of the maximum interval between messages,
    /// in seconds.
    #[inline]
    pub fn poll(&self) -> i8 {
        i8::from_be_bytes([field::read_u8(self.buffer.as_ref(), field::POLL)])
    }

    /// The precision exponent: log2 of the system clock's precision, in
    /// seconds.
    #[inline]
    pub fn precision(&self) -> i8 {
        i8::from_be_bytes([field::read_u8(self.buffer.as_ref(), field::PRECISION)])
    }

    /// The root delay: total round-trip delay to the reference clock.
    #[inline]
    pub fn root_delay(&self) -> ShortTime {
        let raw = field::read(self.buffer.as_ref(), field::ROOT_DELAY.start);
        ShortTime::from_bits(u32::from_be_bytes(raw))
    }

    /// The root dispersion: total dispersion to the reference clock.
    #[inline]
    pub fn root_dispersion(&self) -> ShortTime {
        let raw = field::read(self.buffer.as_ref(), field::ROOT_DISPERSION.start);
        ShortTime::from_bits(u32::from_be_bytes(raw))
    }

    /// The reference identifier (RFC 5905, section 7.3).
    #[inline]
    pub fn reference_id(&self) -> RefId {
        RefId::new(field::read(self.buffer.as_ref(), field::REFERENCE_ID.start))
    }

    #[inline]
    fn timestamp(&self, start: usize) -> Timestamp {
        Timestamp::from_bits(u64::from_be_bytes(field::read(self.buffer.as_ref(), start)))
    }

    /// The reference timestamp: when the system clock was last set or
    /// corrected.
    #[inline]
    pub fn reference_timestamp(&self) -> Timestamp {
        self.timestamp(field::REFERENCE_TS.start)
    }

    /// The origin timestamp (T1 of the exchange, as the peer saw it).
    #[inline]
    pub fn origin_timestamp(&self) -> Timestamp {
        self.timestamp(field::ORIGIN_TS.start)
    }

    /// The receive timestamp (T2).
    #[inline]
    pub fn receive_timestamp(&self) -> Timestamp {
        self.timestamp(field::RECEIVE_TS.start)
    }

    /// The transmit timestamp (T3).
    #[inline]
    pub fn transmit_timestamp(&self) -> Timestamp {
        self.timestamp(field::TRANSMIT_TS.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The 48 header octets, writable, or [`Error::Truncated`].
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn header_mut(&mut self) -> Result<&mut [u8; HEADER_LEN], Error> {
        let bytes = self.buffer.as_mut();
        let len = bytes.len();
        bytes.first_chunk_mut().ok_or(Error::Truncated {
            len,
            needed: HEADER_LEN,
        })
    }

    /// The octets after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or(&mut [])
    }

    #[inline]
    fn set_first_octet(&mut self, mask: u8, bits: u8) {
        let old = self.first_octet();
        field::write_u8(
            self.buffer.as_mut(),
            field::LI_VN_MODE,
            (old & !mask) | (bits & mask),
        );
    }

    /// Sets the leap indicator.
    #[inline]
    pub fn set_leap_indicator(&mut self, leap: LeapIndicator) {
        self.set_first_octet(0b1100_0000, leap.to_bits() << 6);
    }

    /// Sets the version number; only its low three bits are used.
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        self.set_first_octet(0b0011_1000, version << 3);
    }

    /// Sets the association mode.
    #[inline]
    pub fn set_mode(&mut self, mode: Mode) {
        self.set_first_octet(0b0000_0111, mode.to_bits());
    }

    /// Sets the stratum.
    #[inline]
    pub fn set_stratum(&mut self, stratum: Stratum) {
        field::write_u8(self.buffer.as_mut(), field::STRATUM, stratum.get());
    }

    /// Sets the poll exponent (log2 seconds).
    #[inline]
    pub fn set_poll(&mut self, poll: i8) {
        let [octet] = poll.to_be_bytes();
        field::write_u8(self.buffer.as_mut(), field::POLL, octet);
    }

    /// Sets the precision exponent (log2 seconds).
    #[inline]
    pub fn set_precision(&mut self, precision: i8) {
        let [octet] = precision.to_be_bytes();
        field::write_u8(self.buffer.as_mut(), field::PRECISION, octet);
    }

    /// Sets the root delay.
    #[inline]
    pub fn set_root_delay(&mut self, value: ShortTime) {
        let raw = value.to_bits().to_be_bytes();
        field::write(self.buffer.as_mut(), field::ROOT_DELAY.start, raw);
    }

    /// Sets the root dispersion.
    #[inline]
    pub fn set_root_dispersion(&mut self, value: ShortTime) {
        let raw = value.to_bits().to_be_bytes();
        field::write(self.buffer.as_mut(), field::ROOT_DISPERSION.start, raw);
    }

    /// Sets the reference identifier.
    #[inline]
    pub fn set_reference_id(&mut self, value: RefId) {
        field::write(
            self.buffer.as_mut(),
            field::REFERENCE_ID.start,
            value.to_bytes(),
        );
    }

    #[inline]
    fn set_timestamp(&mut self, start: usize, value: Timestamp) {
        field::write(self.buffer.as_mut(), start, value.to_bits().to_be_bytes());
    }

    /// Sets the reference timestamp.
    #[inline]
    pub fn set_reference_timestamp(&mut self, value: Timestamp) {
        self.set_timestamp(field::REFERENCE_TS.start, value);
    }

    /// Sets the origin timestamp.
    #[inline]
    pub fn set_origin_timestamp(&mut self, value: Timestamp) {
        self.set_timestamp(field::ORIGIN_TS.start, value);
    }

    /// Sets the receive timestamp.
    #[inline]
    pub fn set_receive_timestamp(&mut self, value: Timestamp) {
        self.set_timestamp(field::RECEIVE_TS.start, value);
    }

    /// Sets the transmit timestamp. A server calls this as late as possible
    /// before the packet leaves.
    #[inline]
    pub fn set_transmit_timestamp(&mut self, value: Timestamp) {
        self.set_timestamp(field::TRANSMIT_TS.start, value);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl<T: AsRef<[u8]>> fmt::Debug for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.check_len().is_err() {
            return f
                .debug_struct("Packet")
                .field("truncated", &Hex(self.as_bytes()))
                .finish();
        }
        f.debug_struct("Packet")
            .field("leap", &self.leap_indicator())
            .field("version", &self.version())
            .field("mode", &self.mode())
            .field("stratum", &self.stratum())
            .field("poll", &self.poll())
            .field("precision", &self.precision())
            .field("root_delay", &self.root_delay())
            .field("root_dispersion", &self.root_dispersion())
            .field("reference_id", &self.reference_id())
            .field("reference_timestamp", &self.reference_timestamp())
            .field("origin_timestamp", &self.origin_timestamp())
            .field("receive_timestamp", &self.receive_timestamp())
            .field("transmit_timestamp", &self.transmit_timestamp())
            .field("payload", &Hex(self.payload()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;

    /// chrony 4.3's answer to a client request, from
    /// `shared/vectors/packets.txt`: LI 0, VN 4, mode 4, stratum 3, poll 6,
    /// precision -26, refid 127.127.1.1.
    static PACKET_BYTES: [u8; 48] = [
        0x24, 0x03, 0x06, 0xe6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7f, 0x7f, 0x01,
        0x01, 0xee, 0xac, 0x9d, 0xac, 0x45, 0x45, 0xf0, 0xd4, 0x64, 0x19, 0x78, 0xe1, 0x08, 0x56,
        0x40, 0x70, 0xee, 0xac, 0x9d, 0xae, 0x00, 0x62, 0x41, 0x6b, 0xee, 0xac, 0x9d, 0xae, 0x00,
        0x67, 0xa9, 0x74,
    ];

    #[test]
    fn debug_reads_the_fields() {
        use std::format;

        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(
            format!("{packet:?}"),
            "Packet { leap: NoWarning, version: 4, mode: Server, stratum: Stratum(3), \
             poll: 6, precision: -26, root_delay: ShortTime(0.000000s, 0000.0000), \
             root_dispersion: ShortTime(0.000000s, 0000.0000), \
             reference_id: RefId(127.127.1.1), \
             reference_timestamp: Timestamp(2026-11-21T22:46:04.270598460Z, eeac9dac.4545f0d4), \
             origin_timestamp: Timestamp(2089-04-26T15:57:21.032566096Z, 641978e1.08564070), \
             receive_timestamp: Timestamp(2026-11-21T22:46:06.001499260Z, eeac9dae.0062416b), \
             transmit_timestamp: Timestamp(2026-11-21T22:46:06.001581755Z, eeac9dae.0067a974), \
             payload: \"\" }"
        );
        let short = Packet::new_unchecked(&PACKET_BYTES[..3]);
        assert_eq!(format!("{short:?}"), "Packet { truncated: 240306 }");
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.leap_indicator(), LeapIndicator::NoWarning);
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.mode(), Mode::Server);
        assert_eq!(packet.stratum(), Stratum::new(3));
        assert_eq!(packet.poll(), 6);
        assert_eq!(packet.precision(), -26);
        assert_eq!(packet.root_delay(), ShortTime::ZERO);
        assert_eq!(packet.root_dispersion(), ShortTime::ZERO);
        assert_eq!(packet.reference_id(), RefId::new([127, 127, 1, 1]));
        assert_eq!(
            packet.reference_timestamp(),
            Timestamp::from_bits(0xeeac_9dac_4545_f0d4)
        );
        assert_eq!(
            packet.origin_timestamp(),
            Timestamp::from_bits(0x6419_78e1_0856_4070)
        );
        assert_eq!(
            packet.receive_timestamp(),
            Timestamp::from_bits(0xeeac_9dae_0062_416b)
        );
        assert_eq!(
            packet.transmit_timestamp(),
            Timestamp::from_bits(0xeeac_9dae_0067_a974)
        );
        assert!(packet.payload().is_empty());
        assert_eq!(packet.extension_fields().count(), 0);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5; 48];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_leap_indicator(LeapIndicator::NoWarning);
        packet.set_version(4);
        packet.set_mode(Mode::Server);
        packet.set_stratum(Stratum::new(3));
        packet.set_poll(6);
        packet.set_precision(-26);
        packet.set_root_delay(ShortTime::ZERO);
        packet.set_root_dispersion(ShortTime::ZERO);
        packet.set_reference_id(RefId::new([127, 127, 1, 1]));
        packet.set_reference_timestamp(Timestamp::from_bits(0xeeac_9dac_4545_f0d4));
        packet.set_origin_timestamp(Timestamp::from_bits(0x6419_78e1_0856_4070));
        packet.set_receive_timestamp(Timestamp::from_bits(0xeeac_9dae_0062_416b));
        packet.set_transmit_timestamp(Timestamp::from_bits(0xeeac_9dae_0067_a974));
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn first_octet_setters_touch_only_their_bits() {
        let mut bytes = [0u8; 48];
        let mut packet = Packet::new_unchecked(&mut bytes);
        packet.set_leap_indicator(LeapIndicator::Unsynchronized);
        packet.set_version(0xff);
        packet.set_mode(Mode::Private);
        assert_eq!(packet.as_bytes()[0], 0xff);
        packet.set_version(4);
        assert_eq!(packet.as_bytes()[0], 0b1110_0111);
        packet.set_mode(Mode::Client);
        packet.set_leap_indicator(LeapIndicator::NoWarning);
        assert_eq!(packet.as_bytes()[0], 0x23);
    }

    #[test]
    fn every_version_and_mode_is_data() {
        for first in 0..=u8::MAX {
            let mut bytes = PACKET_BYTES;
            bytes[0] = first;
            let packet = Packet::new_checked(bytes).unwrap();
            assert_eq!(packet.version(), (first >> 3) & 7);
            assert_eq!(packet.mode().to_bits(), first & 7);
            assert_eq!(packet.leap_indicator().to_bits(), first >> 6);
        }
    }

    #[test]
    fn truncated_buffers_are_rejected_and_never_panic() {
        for len in 0..HEADER_LEN {
            let short = PACKET_BYTES.get(..len).unwrap();
            assert_eq!(
                Packet::new_checked(short).unwrap_err(),
                Error::Truncated {
                    len,
                    needed: HEADER_LEN
                }
            );
            // An unchecked view of a short buffer reads zeros where octets
            // are missing and drops writes that do not fit.
            let packet = Packet::new_unchecked(short);
            let _ = (packet.mode(), packet.stratum(), packet.transmit_timestamp());
            assert!(packet.payload().is_empty());
            assert!(packet.header().is_err());
            let mut copy = short.to_vec();
            let mut packet = Packet::new_unchecked(&mut copy[..]);
            packet.set_transmit_timestamp(Timestamp::from_bits(u64::MAX));
            packet.set_stratum(Stratum::new(9));
            assert!(packet.header_mut().is_err());
            assert!(packet.payload_mut().is_empty());
        }
        let half = Packet::new_unchecked(PACKET_BYTES.get(..44).unwrap());
        assert_eq!(
            half.receive_timestamp(),
            Timestamp::from_bits(0xeeac_9dae_0062_416b)
        );
        assert_eq!(half.transmit_timestamp(), Timestamp::ZERO);
    }

    #[test]
    fn oversized_buffer_keeps_the_rest_as_payload() {
        let mut long = PACKET_BYTES.to_vec();
        long.extend_from_slice(&[0; 24]);
        let packet = Packet::new_checked(long).unwrap();
        assert_eq!(packet.payload().len(), 24);
        assert_eq!(packet.stratum(), Stratum::new(3));
    }

    #[test]
    fn works_over_common_containers() {
        let array = Packet::new_checked(PACKET_BYTES).unwrap();
        let vec = Packet::new_checked(PACKET_BYTES.to_vec()).unwrap();
        let frozen = Packet::new_checked(bytes::Bytes::from_static(&PACKET_BYTES)).unwrap();
        let mut growable = bytes::BytesMut::from(&PACKET_BYTES[..]);
        let mut writable = Packet::new_checked(&mut growable).unwrap();
        writable.set_stratum(Stratum::new(2));
        assert_eq!(writable.stratum(), Stratum::new(2));
        for transmit in [
            array.transmit_timestamp(),
            vec.transmit_timestamp(),
            frozen.transmit_timestamp(),
        ] {
            assert_eq!(transmit, Timestamp::from_bits(0xeeac_9dae_0067_a974));
        }
        let collected: Vec<u8> = frozen.into_inner().to_vec();
        assert_eq!(collected, PACKET_BYTES);
    }
}

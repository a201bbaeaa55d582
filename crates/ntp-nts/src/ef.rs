//! The NTS extension fields of NTPv4 packets (RFC 8915 section 5; IANA
//! "NTP Extension Field Types"): views and writers.
//!
//! | Type     | Field                                   | RFC 8915 |
//! |----------|-----------------------------------------|----------|
//! | `0x0104` | Unique Identifier                       | 5.3      |
//! | `0x0204` | NTS Cookie                              | 5.4      |
//! | `0x0304` | NTS Cookie Placeholder                  | 5.5      |
//! | `0x0404` | NTS Authenticator and Encrypted EFs     | 5.6      |
//!
//! They are ordinary RFC 7822 extension fields: a 4-octet header (type,
//! then the length of the whole field, header and padding included, a
//! multiple of 4) and a body padded with zeros. In a packet they are found
//! with [`ntp_proto::ExtensionFields`]; inside the encrypted plaintext of
//! an authenticator, where fields may be as short as 4 octets (section
//! 5.6), with [`PlaintextFields`].
//!
//! [`Authenticator`] is a zero-copy view over a whole `0x0404` field in
//! the shape of `ntp_proto::Packet`: `new_unchecked`, `new_checked`,
//! getters that never panic once `check_len` is `Ok` (and never panic at
//! all: missing octets read as empty), setters on mutable buffers.
//! [`seal_authenticator`] writes one in place after the fields it
//! authenticates.

use core::ops::Range;

use ntp_proto::ExtensionFieldType;

use crate::aead::{self, AeadError};
use crate::{AeadAlgorithm, AeadKey};

/// Length of an extension field header: type (2) and length (2) octets
/// (RFC 7822 section 3).
pub const FIELD_HEADER_LEN: usize = 4;

/// The shortest extension field outside the encrypted plaintext, header
/// included (RFC 7822 section 3). The writers here pad every field to at
/// least this length.
pub const FIELD_MIN_LEN: usize = 16;

/// The shortest Unique Identifier body, octets (RFC 8915 section 5.3:
/// "at least 32 octets long"), which is also the length clients here send.
pub const UNIQUE_ID_LEN: usize = 32;

/// Why an NTS extension field could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum EfError {
    /// The output buffer has no room for the field.
    #[error("no room for the extension field")]
    BufferTooShort,
    /// The field would be longer than its 16-bit length field can say.
    #[error("extension field too long")]
    TooLong,
    /// The field is shorter than its header, its length field disagrees
    /// with its size, or its nonce and ciphertext do not fit in it.
    #[error("malformed NTS extension field")]
    Malformed,
    /// A field of the encrypted plaintext has a bad length (RFC 8915
    /// section 5.6: at least the header, a multiple of 4, within the
    /// plaintext).
    #[error("malformed encrypted extension field at plaintext offset {offset}")]
    MalformedPlaintext {
        /// Where the field starts, counted from the start of the plaintext.
        offset: usize,
    },
    /// The nonce and its padding are shorter than RFC 8915 section 5.6
    /// requires of a client (16 octets, or 12 for AES-GCM-SIV), or the
    /// nonce is empty.
    #[error("nonce field plus additional padding shorter than RFC 8915 section 5.6 requires")]
    NoncePadding,
    /// Sealing or opening failed.
    #[error(transparent)]
    Aead(#[from] AeadError),
}

/// `len` rounded up to a multiple of 4 (RFC 7822's word boundary).
#[must_use]
pub const fn padded(len: usize) -> usize {
    len.div_ceil(4).saturating_mul(4)
}

/// The length of a field with a body of `body_len` octets as the writers
/// here emit it: header, body, zero padding to a word boundary and to at
/// least [`FIELD_MIN_LEN`] octets.
#[must_use]
pub const fn field_len(body_len: usize) -> usize {
    let len = FIELD_HEADER_LEN + padded(body_len);
    if len < FIELD_MIN_LEN {
        FIELD_MIN_LEN
    } else {
        len
    }
}

/// Writes a field header and zero padding: `field_type`, then the field
/// length [`field_len`]`(body_len)`, with every octet after the header
/// zeroed, so the caller writes the body at [`FIELD_HEADER_LEN`]. Returns
/// the field length.
///
/// # Errors
///
/// [`EfError::BufferTooShort`] or [`EfError::TooLong`].
pub fn emit_empty_field(
    out: &mut [u8],
    field_type: ExtensionFieldType,
    body_len: usize,
) -> Result<usize, EfError> {
    let len = field_len(body_len);
    let length = u16::try_from(len).map_err(|_| EfError::TooLong)?;
    let field = out.get_mut(..len).ok_or(EfError::BufferTooShort)?;
    let (header, body) = field
        .split_first_chunk_mut::<FIELD_HEADER_LEN>()
        .ok_or(EfError::BufferTooShort)?;
    let [type_high, type_low] = field_type.to_bits().to_be_bytes();
    let [len_high, len_low] = length.to_be_bytes();
    *header = [type_high, type_low, len_high, len_low];
    body.fill(0);
    Ok(len)
}

/// Writes a whole field: header, `body`, zero padding (see
/// [`field_len`]). Returns the field length.
///
/// Used for the Unique Identifier (section 5.3: `body` is the 32 random
/// octets, or the client's octets echoed), the NTS Cookie (section 5.4:
/// `body` is the cookie) and, with a zero body, the NTS Cookie
/// Placeholder (section 5.5, see [`emit_placeholder`]).
///
/// # Errors
///
/// [`EfError::BufferTooShort`] or [`EfError::TooLong`].
pub fn emit_field(
    out: &mut [u8],
    field_type: ExtensionFieldType,
    body: &[u8],
) -> Result<usize, EfError> {
    let len = emit_empty_field(out, field_type, body.len())?;
    out.get_mut(FIELD_HEADER_LEN..FIELD_HEADER_LEN + body.len())
        .ok_or(EfError::BufferTooShort)?
        .copy_from_slice(body);
    Ok(len)
}

/// Writes an NTS Cookie Placeholder (RFC 8915 section 5.5): a body of
/// `cookie_len` zeros, the length of the cookie sent with it. Returns the
/// field length.
///
/// # Errors
///
/// [`EfError::BufferTooShort`] or [`EfError::TooLong`].
pub fn emit_placeholder(out: &mut [u8], cookie_len: usize) -> Result<usize, EfError> {
    emit_empty_field(out, ExtensionFieldType::NtsCookiePlaceholder, cookie_len)
}

/// A walk over the extension fields of an authenticator's decrypted
/// plaintext (RFC 8915 section 5.6): RFC 7822 fields, except that they
/// may be as short as their 4-octet header. Unlike
/// [`ntp_proto::ExtensionFields`] there is no MAC to guess at the end.
///
/// Yields `(field type, body)`, padding included in the body; a malformed
/// field yields [`EfError::MalformedPlaintext`] and ends the walk.
#[derive(Clone, Debug)]
pub struct PlaintextFields<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> PlaintextFields<'a> {
    /// Walks `plaintext`.
    #[must_use]
    pub const fn new(plaintext: &'a [u8]) -> Self {
        Self {
            rest: plaintext,
            offset: 0,
        }
    }
}

impl<'a> Iterator for PlaintextFields<'a> {
    type Item = Result<(ExtensionFieldType, &'a [u8]), EfError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let error = EfError::MalformedPlaintext {
            offset: self.offset,
        };
        let parsed = self
            .rest
            .first_chunk::<FIELD_HEADER_LEN>()
            .and_then(|header| {
                let [type_high, type_low, len_high, len_low] = *header;
                let len = usize::from(u16::from_be_bytes([len_high, len_low]));
                if len < FIELD_HEADER_LEN || len % 4 != 0 {
                    return None;
                }
                let (field, rest) = self.rest.split_at_checked(len)?;
                let body = field.get(FIELD_HEADER_LEN..)?;
                Some((u16::from_be_bytes([type_high, type_low]), len, body, rest))
            });
        match parsed {
            Some((field_type, len, body, rest)) => {
                self.rest = rest;
                self.offset += len;
                Some(Ok((ExtensionFieldType::from_bits(field_type), body)))
            }
            None => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

impl core::iter::FusedIterator for PlaintextFields<'_> {}

/// Offsets inside an NTS Authenticator field (RFC 8915 section 5.6,
/// figure 4), counted from the start of the field header.
mod field {
    use core::ops::Range;

    pub(super) const LENGTH: Range<usize> = 2..4;
    pub(super) const NONCE_LEN: Range<usize> = 4..6;
    pub(super) const CIPHERTEXT_LEN: Range<usize> = 6..8;
    pub(super) const NONCE: usize = 8;
}

/// The nonce space a client must leave, octets (RFC 8915 section 5.6:
/// N_REQ, the lesser of 16 and the algorithm's N_MAX, rounded up to a
/// multiple of 4): 16 for the SIV modes (no N_MAX, RFC 5297 section 6),
/// 12 for AES-GCM-SIV (RFC 8452 section 4).
#[must_use]
pub const fn required_nonce_space(algorithm: AeadAlgorithm) -> usize {
    match algorithm {
        AeadAlgorithm::AesSivCmac256 | AeadAlgorithm::AesSivCmac512 => 16,
        AeadAlgorithm::Aes128GcmSiv => 12,
    }
}

/// The length of an NTS Authenticator field with a `nonce_len` nonce
/// sealing `plaintext_len` octets, without additional padding.
#[must_use]
pub const fn authenticator_len(nonce_len: usize, plaintext_len: usize) -> usize {
    field::NONCE + padded(nonce_len) + padded(aead::ciphertext_len(plaintext_len))
}

/// Where the plaintext goes inside an NTS Authenticator field written by
/// [`seal_authenticator`], counted from the start of the field.
#[must_use]
pub const fn authenticator_plaintext_offset(algorithm: AeadAlgorithm, nonce_len: usize) -> usize {
    field::NONCE + padded(nonce_len) + aead::plaintext_offset(algorithm)
}

/// A view over a whole NTS Authenticator and Encrypted Extension Fields
/// field (type `0x0404`, RFC 8915 section 5.6), header included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authenticator<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Authenticator<T> {
    /// Wraps `buffer` without checks: accessors of a short buffer return
    /// zeros and empty slices.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` and [checks](Self::check_len) it.
    ///
    /// # Errors
    ///
    /// [`EfError::Malformed`].
    pub fn new_checked(buffer: T) -> Result<Self, EfError> {
        let field = Self::new_unchecked(buffer);
        field.check_len()?;
        Ok(field)
    }

    /// Checks that the length field is the buffer's length and that the
    /// padded nonce and ciphertext fit in the body.
    ///
    /// # Errors
    ///
    /// [`EfError::Malformed`].
    pub fn check_len(&self) -> Result<(), EfError> {
        let len = self.buffer.as_ref().len();
        if len < field::NONCE || usize::from(self.length()) != len {
            return Err(EfError::Malformed);
        }
        if self.ciphertext_range().end > len {
            return Err(EfError::Malformed);
        }
        Ok(())
    }

    fn read_u16(&self, range: Range<usize>) -> u16 {
        match self.buffer.as_ref().get(range) {
            Some(&[high, low]) => u16::from_be_bytes([high, low]),
            _ => 0,
        }
    }

    /// The Length field: the whole field's length in octets.
    pub fn length(&self) -> u16 {
        self.read_u16(field::LENGTH)
    }

    /// The Nonce Length field: octets of nonce, padding excluded.
    pub fn nonce_len(&self) -> u16 {
        self.read_u16(field::NONCE_LEN)
    }

    /// The Ciphertext Length field: octets of ciphertext, padding
    /// excluded.
    pub fn ciphertext_len(&self) -> u16 {
        self.read_u16(field::CIPHERTEXT_LEN)
    }

    fn nonce_range(&self) -> Range<usize> {
        field::NONCE..field::NONCE + usize::from(self.nonce_len())
    }

    fn ciphertext_range(&self) -> Range<usize> {
        let start = field::NONCE + padded(usize::from(self.nonce_len()));
        start..start + padded(usize::from(self.ciphertext_len()))
    }

    /// The nonce.
    pub fn nonce(&self) -> &[u8] {
        self.buffer.as_ref().get(self.nonce_range()).unwrap_or(&[])
    }

    /// The ciphertext, padding excluded.
    pub fn ciphertext(&self) -> &[u8] {
        let range = self.ciphertext_range();
        let unpadded = range.start..range.start + usize::from(self.ciphertext_len());
        self.buffer.as_ref().get(unpadded).unwrap_or(&[])
    }

    /// The octets of the Additional Padding field (section 5.6).
    pub fn additional_padding_len(&self) -> usize {
        self.buffer
            .as_ref()
            .len()
            .saturating_sub(self.ciphertext_range().end)
    }

    /// Checks the rule a server enforces on client packets (RFC 8915
    /// section 5.6): the padded nonce plus the Additional Padding is at
    /// least [`required_nonce_space`] octets; and the nonce is not empty
    /// (RFC 5297 section 6: N_MIN is 1).
    ///
    /// # Errors
    ///
    /// [`EfError::NoncePadding`].
    pub fn check_client_padding(&self, algorithm: AeadAlgorithm) -> Result<(), EfError> {
        let space = padded(usize::from(self.nonce_len())) + self.additional_padding_len();
        if self.nonce_len() == 0 || space < required_nonce_space(algorithm) {
            Err(EfError::NoncePadding)
        } else {
            Ok(())
        }
    }

    /// Checks the tag and decrypts into `scratch` (at least as long as the
    /// ciphertext), with `associated_data` = the packet up to this field
    /// (section 5.6, "A"); returns the plaintext, a part of `scratch`.
    ///
    /// # Errors
    ///
    /// [`EfError::Aead`]: [`AeadError::Authentication`] if the packet is
    /// not authentic under `key`.
    pub fn open<'s>(
        &self,
        algorithm: AeadAlgorithm,
        key: &AeadKey,
        associated_data: &[u8],
        scratch: &'s mut [u8],
    ) -> Result<&'s mut [u8], EfError> {
        Ok(aead::open(
            algorithm,
            key,
            self.nonce(),
            associated_data,
            self.ciphertext(),
            scratch,
        )?)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Authenticator<T> {
    fn write_u16(&mut self, range: Range<usize>, value: u16) {
        if let Some(out) = self.buffer.as_mut().get_mut(range) {
            out.copy_from_slice(&value.to_be_bytes());
        }
    }

    /// Sets the Length field.
    pub fn set_length(&mut self, value: u16) {
        self.write_u16(field::LENGTH, value);
    }

    /// Sets the Nonce Length field.
    pub fn set_nonce_len(&mut self, value: u16) {
        self.write_u16(field::NONCE_LEN, value);
    }

    /// Sets the Ciphertext Length field.
    pub fn set_ciphertext_len(&mut self, value: u16) {
        self.write_u16(field::CIPHERTEXT_LEN, value);
    }

    /// The nonce, to be written (after [`set_nonce_len`](Self::set_nonce_len)).
    pub fn nonce_mut(&mut self) -> &mut [u8] {
        let range = self.nonce_range();
        self.buffer.as_mut().get_mut(range).unwrap_or(&mut [])
    }

    /// The ciphertext, to be written (after the two length setters).
    pub fn ciphertext_mut(&mut self) -> &mut [u8] {
        let range = self.ciphertext_range();
        let unpadded = range.start..range.start + usize::from(self.ciphertext_len());
        self.buffer.as_mut().get_mut(unpadded).unwrap_or(&mut [])
    }
}

/// Writes an NTS Authenticator and Encrypted Extension Fields field at
/// `packet[at..]` and seals it (RFC 8915 section 5.6): associated data
/// `packet[..at]` (the header and every field before this one), the given
/// key and nonce, and as plaintext the `plaintext_len` octets the caller
/// has already put at `at +`
/// [`authenticator_plaintext_offset`]`(algorithm, nonce.len())` (the
/// encrypted extension fields, or nothing). Returns the field length,
/// [`authenticator_len`]`(nonce.len(), plaintext_len)`; no Additional
/// Padding is written, none being needed with the nonce lengths of
/// [`AeadAlgorithm::nonce_len`].
///
/// # Errors
///
/// [`EfError::BufferTooShort`], [`EfError::TooLong`], [`EfError::Aead`]
/// (wrong key or nonce length for `algorithm`).
pub fn seal_authenticator(
    packet: &mut [u8],
    at: usize,
    algorithm: AeadAlgorithm,
    key: &AeadKey,
    nonce: &[u8],
    plaintext_len: usize,
) -> Result<usize, EfError> {
    let len = authenticator_len(nonce.len(), plaintext_len);
    let length = u16::try_from(len).map_err(|_| EfError::TooLong)?;
    let (associated_data, rest) = packet
        .split_at_mut_checked(at)
        .ok_or(EfError::BufferTooShort)?;
    let buffer = rest.get_mut(..len).ok_or(EfError::BufferTooShort)?;
    let ciphertext_len =
        u16::try_from(aead::ciphertext_len(plaintext_len)).map_err(|_| EfError::TooLong)?;
    let nonce_len = u16::try_from(nonce.len()).map_err(|_| EfError::TooLong)?;
    // Zero the padding after the nonce and after the ciphertext, leaving
    // the plaintext where the caller put it.
    let nonce_end = field::NONCE + nonce.len();
    let nonce_padding = nonce_end..field::NONCE + padded(nonce.len());
    let ciphertext_end = len - (padded(ciphertext_len.into()) - usize::from(ciphertext_len));
    for range in [nonce_padding, ciphertext_end..len] {
        if let Some(padding) = buffer.get_mut(range) {
            padding.fill(0);
        }
    }
    let mut field = Authenticator::new_unchecked(buffer);
    let [type_high, type_low] = ExtensionFieldType::NtsAuthenticator.to_bits().to_be_bytes();
    if let Some(field_type) = field.buffer.get_mut(..2) {
        field_type.copy_from_slice(&[type_high, type_low]);
    }
    field.set_length(length);
    field.set_nonce_len(nonce_len);
    field.set_ciphertext_len(ciphertext_len);
    field.nonce_mut().copy_from_slice(nonce);
    aead::seal_in_place(
        algorithm,
        key,
        nonce,
        associated_data,
        field.ciphertext_mut(),
    )?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use std::vec::Vec;

    use super::*;

    #[test]
    fn fields_are_padded_to_words_and_sixteen_octets() {
        let mut out = [0xa5; 64];
        assert_eq!(
            emit_field(&mut out, ExtensionFieldType::NtsCookie, &[1, 2, 3, 4, 5]).unwrap(),
            16
        );
        assert_eq!(
            &out[..16],
            &[2, 4, 0, 16, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(out[16], 0xa5);
        let mut out = [0xa5; 64];
        assert_eq!(
            emit_field(&mut out, ExtensionFieldType::UniqueIdentifier, &[9; 33]).unwrap(),
            40
        );
        assert_eq!(&out[..4], &[1, 4, 0, 40]);
        assert_eq!(&out[37..40], &[0, 0, 0]);
        assert_eq!(
            emit_placeholder(&mut out, 100),
            Err(EfError::BufferTooShort)
        );
        let mut out = [0xa5; 104];
        assert_eq!(emit_placeholder(&mut out, 100).unwrap(), 104);
        assert_eq!(&out[..4], &[3, 4, 0, 104]);
        assert!(out[4..].iter().all(|&b| b == 0));
        let mut big = std::vec![0; 70_000];
        assert_eq!(
            emit_field(&mut big, ExtensionFieldType::NtsCookie, &[0; 65_532]),
            Err(EfError::TooLong)
        );
    }

    #[test]
    fn plaintext_fields_may_be_short_but_must_be_words() {
        let plaintext = [2, 4, 0, 8, 1, 2, 3, 4, 0x77, 0x77, 0, 4];
        let fields: Vec<_> = PlaintextFields::new(&plaintext).collect();
        assert_eq!(
            fields,
            [
                Ok((ExtensionFieldType::NtsCookie, &[1, 2, 3, 4][..])),
                Ok((ExtensionFieldType::Unknown(0x7777), &[][..])),
            ]
        );
        for bad in [
            &[2, 4, 0, 6, 1, 2][..],
            &[2, 4, 0, 12, 0, 0, 0, 0],
            &[2, 4, 0, 0],
            &[2, 4],
        ] {
            let fields: Vec<_> = PlaintextFields::new(bad).collect();
            assert_eq!(
                fields,
                [Err(EfError::MalformedPlaintext { offset: 0 })],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn authenticator_round_trip_for_every_algorithm() {
        for algorithm in AeadAlgorithm::ALL {
            let key = AeadKey::new(&[0x11; 64][..algorithm.key_len()]).unwrap();
            let nonce = &[0x22; 16][..algorithm.nonce_len()];
            let mut packet = [0xa5; 48 + 8 + 16 + 16 + 8];
            packet[..48].fill(0x23);
            let at = 48;
            let offset = at + authenticator_plaintext_offset(algorithm, nonce.len());
            packet[offset..offset + 8].copy_from_slice(&[0, 0x99, 0, 8, 1, 2, 3, 4]);
            let len = seal_authenticator(&mut packet, at, algorithm, &key, nonce, 8).unwrap();
            assert_eq!(len, authenticator_len(nonce.len(), 8));
            let packet = &packet[..at + len];
            let field = Authenticator::new_checked(&packet[at..]).unwrap();
            assert_eq!(usize::from(field.nonce_len()), nonce.len());
            assert_eq!(field.ciphertext_len(), 24);
            assert_eq!(field.nonce(), nonce);
            assert_eq!(field.additional_padding_len(), 0);
            field.check_client_padding(algorithm).unwrap();
            let mut scratch = [0; 64];
            let plaintext = field
                .open(algorithm, &key, &packet[..at], &mut scratch)
                .unwrap();
            assert_eq!(plaintext, &[0, 0x99, 0, 8, 1, 2, 3, 4]);
            let mut header = packet[..at].to_vec();
            header[40] ^= 1;
            assert_eq!(
                field.open(algorithm, &key, &header, &mut scratch),
                Err(EfError::Aead(AeadError::Authentication))
            );
        }
    }

    #[test]
    fn short_nonces_need_additional_padding() {
        // Nonce of 4 octets, ciphertext of 16, no padding: too little
        // nonce space for SIV (16) and GCM-SIV (12).
        let mut field = [0; 8 + 4 + 16];
        field[..4].copy_from_slice(&[4, 4, 0, 28]);
        field[4..8].copy_from_slice(&[0, 4, 0, 16]);
        let view = Authenticator::new_checked(&field[..]).unwrap();
        assert_eq!(
            view.check_client_padding(AeadAlgorithm::AesSivCmac256),
            Err(EfError::NoncePadding)
        );
        // With 12 octets of additional padding: 16 octets of nonce space.
        let mut padded_field = [0; 8 + 4 + 16 + 12];
        padded_field[..4].copy_from_slice(&[4, 4, 0, 40]);
        padded_field[4..8].copy_from_slice(&[0, 4, 0, 16]);
        let view = Authenticator::new_checked(&padded_field[..]).unwrap();
        assert_eq!(view.additional_padding_len(), 12);
        view.check_client_padding(AeadAlgorithm::AesSivCmac256)
            .unwrap();
        // An empty nonce is refused whatever the padding.
        padded_field[4..6].copy_from_slice(&[0, 0]);
        let view = Authenticator::new_checked(&padded_field[..]).unwrap();
        assert_eq!(
            view.check_client_padding(AeadAlgorithm::AesSivCmac256),
            Err(EfError::NoncePadding)
        );
    }

    #[test]
    fn malformed_authenticators_are_refused_and_never_panic() {
        let good = {
            let mut field = [0; 40];
            field[..8].copy_from_slice(&[4, 4, 0, 40, 0, 16, 0, 16]);
            field
        };
        Authenticator::new_checked(&good[..]).unwrap();
        for (index, value) in [(3, 44), (3, 36), (5, 17), (7, 17), (5, 40), (7, 200)] {
            let mut field = good;
            field[index] = value;
            assert_eq!(
                Authenticator::new_checked(&field[..]),
                Err(EfError::Malformed),
                "octet {index} = {value}"
            );
        }
        for len in 0..good.len() {
            let view = Authenticator::new_unchecked(&good[..len]);
            assert!(view.check_len().is_err());
            let _ = (
                view.nonce(),
                view.ciphertext(),
                view.additional_padding_len(),
            );
        }
    }
}

//! The AEAD algorithms of NTS (RFC 8915 section 5.1 and 5.6), sealing and
//! opening in place on the caller's buffers.
//!
//! # Ciphertext layout
//!
//! The Ciphertext field of an NTS Authenticator (RFC 8915 section 5.6) is
//! "the output of the negotiated AEAD algorithm", so its layout is the
//! algorithm's own:
//!
//! - AEAD_AES_SIV_CMAC_256 and _512 (RFC 5297 section 6): the 16-octet
//!   synthetic IV, which is the tag, *then* the encrypted plaintext. The
//!   associated data and the nonce are the two components of the S2V
//!   vector, in that order (RFC 5297 section 3: the nonce is the last
//!   component before the plaintext).
//! - AEAD_AES_128_GCM_SIV (RFC 8452 section 4): the encrypted plaintext
//!   *then* the 16-octet tag.
//!
//! [`plaintext_offset`] says where the plaintext sits inside a ciphertext,
//! so a writer can place the plaintext there and seal without moving it.
//!
//! The SIV modes use RustCrypto's `aes_siv::siv::Siv` with the header
//! vector `[associated data, nonce]`: exactly what
//! `aes_siv::Aes128SivAead` does, but with nonces of any length, so a
//! server accepts whatever nonce length a client picked (RFC 5116 section
//! 5.2 puts no upper bound on it; RFC 8915 section 5.6 only a lower one).
//! `Siv` is instantiated with the encryption-only AES types
//! (`aes::Aes128Enc`, as `Aes128Siv` is with `aes::Aes128`): SIV and
//! GCM-SIV never decrypt a block, so the inverse key schedule, which every
//! packet would otherwise compute for each of its fresh keys, is skipped;
//! the output is the same (checked against `Aes128Siv` in the tests). The
//! tag is compared in constant time by the crates.

use aes::{Aes128Enc, Aes256Enc};
use aes_gcm_siv::AesGcmSiv;
use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_siv::siv::Siv;
use cmac::Cmac;

use crate::{AeadAlgorithm, AeadKey};

/// AES-SIV-CMAC-256 (RFC 5297), as `aes_siv::siv::Aes128Siv` but with
/// encryption-only key schedules.
type Aes128Siv = Siv<Aes128Enc, Cmac<Aes128Enc>>;
/// AES-SIV-CMAC-512 (RFC 5297), as `aes_siv::siv::Aes256Siv` likewise.
type Aes256Siv = Siv<Aes256Enc, Cmac<Aes256Enc>>;
/// AEAD_AES_128_GCM_SIV (RFC 8452), as `aes_gcm_siv::Aes128GcmSiv` likewise.
type Aes128GcmSiv = AesGcmSiv<Aes128Enc>;

/// The length of every tag here, in octets (RFC 5297 section 2.6; RFC 8452
/// section 4).
pub const TAG_LEN: usize = 16;

/// Why sealing or opening failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AeadError {
    /// The key does not have the algorithm's key length.
    #[error("{algorithm} takes a {} octet key, not {len}", algorithm.key_len())]
    KeyLength {
        /// The algorithm.
        algorithm: AeadAlgorithm,
        /// The length of the key given.
        len: usize,
    },
    /// The nonce has a length the algorithm does not take: AES-GCM-SIV
    /// takes only 12 octets (RFC 8452 section 4).
    #[error("{algorithm} does not take a {len} octet nonce")]
    NonceLength {
        /// The algorithm.
        algorithm: AeadAlgorithm,
        /// The length of the nonce given.
        len: usize,
    },
    /// The ciphertext is shorter than a tag, or the plaintext does not fit.
    #[error("the ciphertext buffer is shorter than the {TAG_LEN} octet tag")]
    TooShort,
    /// The tag does not match: the key, the nonce, the associated data or
    /// the ciphertext is not what was sealed.
    #[error("authentication failed")]
    Authentication,
}

/// Where the plaintext starts inside a ciphertext of `algorithm`: after
/// the synthetic IV for the SIV modes, at the start for AES-GCM-SIV (see
/// the [module docs](self)).
#[must_use]
pub const fn plaintext_offset(algorithm: AeadAlgorithm) -> usize {
    match algorithm {
        AeadAlgorithm::AesSivCmac256 | AeadAlgorithm::AesSivCmac512 => TAG_LEN,
        AeadAlgorithm::Aes128GcmSiv => 0,
    }
}

/// The ciphertext length for a plaintext of `plaintext_len` octets.
#[must_use]
pub const fn ciphertext_len(plaintext_len: usize) -> usize {
    plaintext_len + TAG_LEN
}

/// The error for a key of the wrong length, if `key` is one.
fn check_key(algorithm: AeadAlgorithm, key: &AeadKey) -> Result<AeadError, AeadError> {
    let len = key.as_bytes().len();
    let error = AeadError::KeyLength { algorithm, len };
    if len == algorithm.key_len() {
        Ok(error)
    } else {
        Err(error)
    }
}

/// Seals in place: `ciphertext` is the whole ciphertext buffer,
/// [`TAG_LEN`] octets longer than the plaintext, which the caller has put
/// at [`plaintext_offset`]; the tag is written where `algorithm` puts it.
///
/// # Errors
///
/// [`AeadError::KeyLength`], [`AeadError::NonceLength`], or
/// [`AeadError::TooShort`] if `ciphertext` has no room for the tag.
pub fn seal_in_place(
    algorithm: AeadAlgorithm,
    key: &AeadKey,
    nonce: &[u8],
    associated_data: &[u8],
    ciphertext: &mut [u8],
) -> Result<(), AeadError> {
    let key_error = check_key(algorithm, key)?;
    match algorithm {
        AeadAlgorithm::AesSivCmac256 | AeadAlgorithm::AesSivCmac512 => {
            let (tag_out, plaintext) = ciphertext
                .split_first_chunk_mut::<TAG_LEN>()
                .ok_or(AeadError::TooShort)?;
            let headers = [associated_data, nonce];
            let tag = if algorithm == AeadAlgorithm::AesSivCmac256 {
                Aes128Siv::new_from_slice(key.as_bytes())
                    .map_err(|_| key_error)?
                    .encrypt_in_place_detached(headers, plaintext)
            } else {
                Aes256Siv::new_from_slice(key.as_bytes())
                    .map_err(|_| key_error)?
                    .encrypt_in_place_detached(headers, plaintext)
            };
            // S2V fails only with more than 126 header components.
            let tag = tag.map_err(|_| AeadError::TooShort)?;
            tag_out.copy_from_slice(&tag);
        }
        AeadAlgorithm::Aes128GcmSiv => {
            let nonce = gcm_siv_nonce(algorithm, nonce)?;
            let (plaintext, tag_out) = ciphertext
                .split_last_chunk_mut::<TAG_LEN>()
                .ok_or(AeadError::TooShort)?;
            let cipher = Aes128GcmSiv::new_from_slice(key.as_bytes()).map_err(|_| key_error)?;
            let tag = cipher
                .encrypt_in_place_detached((&nonce).into(), associated_data, plaintext)
                // Only for plaintexts of 2^36 octets or more.
                .map_err(|_| AeadError::TooShort)?;
            tag_out.copy_from_slice(&tag);
        }
    }
    Ok(())
}

/// Opens in place: checks the tag of `ciphertext` and decrypts it where
/// it lies, returning the plaintext, a part of `ciphertext` (at
/// [`plaintext_offset`]).
///
/// # Errors
///
/// [`AeadError::Authentication`] if the tag does not match (the buffer
/// then holds no plaintext), [`AeadError::TooShort`] if `ciphertext` is
/// shorter than a tag, [`AeadError::KeyLength`], [`AeadError::NonceLength`].
pub fn open_in_place<'b>(
    algorithm: AeadAlgorithm,
    key: &AeadKey,
    nonce: &[u8],
    associated_data: &[u8],
    ciphertext: &'b mut [u8],
) -> Result<&'b mut [u8], AeadError> {
    let key_error = check_key(algorithm, key)?;
    match algorithm {
        AeadAlgorithm::AesSivCmac256 | AeadAlgorithm::AesSivCmac512 => {
            let (tag, plaintext) = ciphertext
                .split_first_chunk_mut::<TAG_LEN>()
                .ok_or(AeadError::TooShort)?;
            let tag = (*tag).into();
            let headers = [associated_data, nonce];
            let opened = if algorithm == AeadAlgorithm::AesSivCmac256 {
                Aes128Siv::new_from_slice(key.as_bytes())
                    .map_err(|_| key_error)?
                    .decrypt_in_place_detached(headers, plaintext, &tag)
            } else {
                Aes256Siv::new_from_slice(key.as_bytes())
                    .map_err(|_| key_error)?
                    .decrypt_in_place_detached(headers, plaintext, &tag)
            };
            opened.map_err(|_| AeadError::Authentication)?;
            Ok(plaintext)
        }
        AeadAlgorithm::Aes128GcmSiv => {
            let nonce = gcm_siv_nonce(algorithm, nonce)?;
            let (plaintext, tag) = ciphertext
                .split_last_chunk_mut::<TAG_LEN>()
                .ok_or(AeadError::TooShort)?;
            let tag = (*tag).into();
            let cipher = Aes128GcmSiv::new_from_slice(key.as_bytes()).map_err(|_| key_error)?;
            cipher
                .decrypt_in_place_detached((&nonce).into(), associated_data, plaintext, &tag)
                .map_err(|_| AeadError::Authentication)?;
            Ok(plaintext)
        }
    }
}

/// Seals `plaintext` into `out`, which must hold at least
/// [`ciphertext_len`]`(plaintext.len())` octets; returns the ciphertext
/// length. A copy plus [`seal_in_place`].
///
/// # Errors
///
/// As [`seal_in_place`]; [`AeadError::TooShort`] if `out` is too short.
pub fn seal(
    algorithm: AeadAlgorithm,
    key: &AeadKey,
    nonce: &[u8],
    associated_data: &[u8],
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, AeadError> {
    let len = ciphertext_len(plaintext.len());
    let ciphertext = out.get_mut(..len).ok_or(AeadError::TooShort)?;
    let offset = plaintext_offset(algorithm);
    ciphertext
        .get_mut(offset..offset + plaintext.len())
        .ok_or(AeadError::TooShort)?
        .copy_from_slice(plaintext);
    seal_in_place(algorithm, key, nonce, associated_data, ciphertext)?;
    Ok(len)
}

/// Opens `ciphertext` into `scratch` (which must be at least as long),
/// returning the plaintext, a part of `scratch`. A copy plus
/// [`open_in_place`], for packets the caller cannot change.
///
/// # Errors
///
/// As [`open_in_place`]; [`AeadError::TooShort`] if `scratch` is too short.
pub fn open<'b>(
    algorithm: AeadAlgorithm,
    key: &AeadKey,
    nonce: &[u8],
    associated_data: &[u8],
    ciphertext: &[u8],
    scratch: &'b mut [u8],
) -> Result<&'b mut [u8], AeadError> {
    let buffer = scratch
        .get_mut(..ciphertext.len())
        .ok_or(AeadError::TooShort)?;
    buffer.copy_from_slice(ciphertext);
    open_in_place(algorithm, key, nonce, associated_data, buffer)
}

fn gcm_siv_nonce(algorithm: AeadAlgorithm, nonce: &[u8]) -> Result<[u8; 12], AeadError> {
    nonce.try_into().map_err(|_| AeadError::NonceLength {
        algorithm,
        len: nonce.len(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    fn key(algorithm: AeadAlgorithm) -> AeadKey {
        AeadKey::new(&[0x42; 64][..algorithm.key_len()]).unwrap()
    }

    /// RFC 5297 appendix A.1 (deterministic, one AD component and no
    /// nonce, so through the crate directly): the tag V, then C.
    #[test]
    fn rfc5297_a1_layout_is_tag_then_ciphertext() {
        let key_bytes =
            hex_decode("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let ad = hex_decode("101112131415161718191a1b1c1d1e1f2021222324252627");
        let mut plaintext = hex_decode("112233445566778899aabbccddee");
        let tag = Aes128Siv::new_from_slice(&key_bytes)
            .unwrap()
            .encrypt_in_place_detached([&ad[..]], &mut plaintext)
            .unwrap();
        assert_eq!(
            tag.as_slice(),
            &hex_decode("85632d07c6e8f37f950acd320a2ecc93")[..]
        );
        assert_eq!(plaintext, hex_decode("40c02b9690c4dc04daef7f6afe5c"));
    }

    fn hex_decode(text: &str) -> std::vec::Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The encryption-only instantiations give what the crates' own
    /// types give.
    #[test]
    fn same_output_as_the_crates_default_types() {
        let key = [0x3c; 64];
        let nonce = [0x77; 16];
        for len in [0, 1, 15, 16, 17, 66, 104] {
            let plaintext = std::vec![0xa7; len];
            let ad = std::vec![0x15; len + 3];
            let mut ours = std::vec![0; len + TAG_LEN];
            let mut theirs = plaintext.clone();
            for algorithm in AeadAlgorithm::ALL {
                let aead_key = AeadKey::new(&key[..algorithm.key_len()]).unwrap();
                let nonce = &nonce[..algorithm.nonce_len()];
                seal(algorithm, &aead_key, nonce, &ad, &plaintext, &mut ours).unwrap();
                theirs.copy_from_slice(&plaintext);
                let tag = match algorithm {
                    AeadAlgorithm::AesSivCmac256 => {
                        aes_siv::siv::Aes128Siv::new_from_slice(&key[..32])
                            .unwrap()
                            .encrypt_in_place_detached([&ad[..], nonce], &mut theirs)
                            .unwrap()
                    }
                    AeadAlgorithm::AesSivCmac512 => aes_siv::siv::Aes256Siv::new_from_slice(&key)
                        .unwrap()
                        .encrypt_in_place_detached([&ad[..], nonce], &mut theirs)
                        .unwrap(),
                    AeadAlgorithm::Aes128GcmSiv => {
                        aes_gcm_siv::Aes128GcmSiv::new_from_slice(&key[..16])
                            .unwrap()
                            .encrypt_in_place_detached(nonce.into(), &ad, &mut theirs)
                            .unwrap()
                    }
                };
                let offset = plaintext_offset(algorithm);
                assert_eq!(
                    &ours[offset..offset + len],
                    &theirs[..],
                    "{algorithm} {len}"
                );
                let tag_at = if offset == 0 { len } else { 0 };
                assert_eq!(
                    &ours[tag_at..tag_at + TAG_LEN],
                    tag.as_slice(),
                    "{algorithm} {len}"
                );
            }
        }
    }

    #[test]
    fn seal_then_open_for_every_algorithm() {
        for algorithm in AeadAlgorithm::ALL {
            let key = key(algorithm);
            let nonce = &[7; 16][..algorithm.nonce_len()];
            let plaintext = b"extension fields";
            let mut buffer = [0; 64];
            let len = seal(algorithm, &key, nonce, b"header", plaintext, &mut buffer).unwrap();
            assert_eq!(len, plaintext.len() + TAG_LEN);
            let offset = plaintext_offset(algorithm);
            assert_ne!(&buffer[offset..offset + plaintext.len()], plaintext);
            let mut scratch = [0; 64];
            let opened = open(
                algorithm,
                &key,
                nonce,
                b"header",
                &buffer[..len],
                &mut scratch,
            )
            .unwrap();
            assert_eq!(opened, plaintext);
            // Empty plaintext: the tag alone authenticates the AD.
            let mut tag_only = [0; TAG_LEN];
            seal_in_place(algorithm, &key, nonce, b"header", &mut tag_only).unwrap();
            assert_eq!(
                open_in_place(algorithm, &key, nonce, b"header", &mut tag_only.clone()).unwrap(),
                &[] as &[u8]
            );
            assert_eq!(
                open_in_place(algorithm, &key, nonce, b"heaDer", &mut tag_only),
                Err(AeadError::Authentication)
            );
        }
    }

    #[test]
    fn any_changed_octet_fails() {
        for algorithm in AeadAlgorithm::ALL {
            let key = key(algorithm);
            let nonce = &[9; 16][..algorithm.nonce_len()];
            let mut sealed = [0; 20 + TAG_LEN];
            seal(algorithm, &key, nonce, b"ad", &[3; 20], &mut sealed).unwrap();
            for index in 0..sealed.len() {
                let mut changed = sealed;
                changed[index] ^= 0x01;
                assert_eq!(
                    open_in_place(algorithm, &key, nonce, b"ad", &mut changed),
                    Err(AeadError::Authentication),
                    "{algorithm} octet {index}"
                );
            }
            let mut other_nonce = [9; 16];
            other_nonce[0] = 8;
            assert_eq!(
                open_in_place(
                    algorithm,
                    &key,
                    &other_nonce[..algorithm.nonce_len()],
                    b"ad",
                    &mut sealed.clone()
                ),
                Err(AeadError::Authentication)
            );
        }
    }

    #[test]
    fn wrong_lengths_are_typed_errors() {
        let short = AeadKey::new(&[1; 16]).unwrap();
        assert_eq!(
            seal_in_place(
                AeadAlgorithm::AesSivCmac256,
                &short,
                &[0; 16],
                &[],
                &mut [0; 16]
            ),
            Err(AeadError::KeyLength {
                algorithm: AeadAlgorithm::AesSivCmac256,
                len: 16
            })
        );
        let gcm = key(AeadAlgorithm::Aes128GcmSiv);
        assert_eq!(
            seal_in_place(
                AeadAlgorithm::Aes128GcmSiv,
                &gcm,
                &[0; 16],
                &[],
                &mut [0; 16]
            ),
            Err(AeadError::NonceLength {
                algorithm: AeadAlgorithm::Aes128GcmSiv,
                len: 16
            })
        );
        for algorithm in AeadAlgorithm::ALL {
            let nonce = &[0; 16][..algorithm.nonce_len()];
            assert_eq!(
                open_in_place(algorithm, &key(algorithm), nonce, &[], &mut [0; 15]),
                Err(AeadError::TooShort)
            );
            assert_eq!(
                seal(
                    algorithm,
                    &key(algorithm),
                    nonce,
                    &[],
                    &[0; 10],
                    &mut [0; 25]
                ),
                Err(AeadError::TooShort)
            );
        }
    }

    #[test]
    fn siv_takes_nonces_of_any_length() {
        let key = key(AeadAlgorithm::AesSivCmac256);
        for len in [0, 1, 12, 16, 24, 32] {
            let nonce = &[5; 32][..len];
            let mut sealed = [0; 4 + TAG_LEN];
            seal(
                AeadAlgorithm::AesSivCmac256,
                &key,
                nonce,
                &[],
                b"abcd",
                &mut sealed,
            )
            .unwrap();
            let mut scratch = [0; 4 + TAG_LEN];
            assert_eq!(
                open(
                    AeadAlgorithm::AesSivCmac256,
                    &key,
                    nonce,
                    &[],
                    &sealed,
                    &mut scratch
                )
                .unwrap(),
                b"abcd"
            );
        }
    }
}

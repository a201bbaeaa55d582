//! Key files: chrony's `chrony.keys` and ntpd/NTPsec's `ntp.keys`.
//!
//! Both are parsed from text into a [`KeyStore`] all at once: the first
//! bad line is reported with its number and reason, and then no key at all
//! is returned (unlike chrony and ntpd, which log and skip bad lines: a
//! building block leaves that policy to its caller, and a half-loaded key
//! file is a surprise). Parsing needs no allocation.
//!
//! No key is moved while a file is parsed: each line's secret is decoded
//! into one buffer of the line's stack frame (zeroed when the line is
//! done), and from there copied into its slot of the store
//! ([`KeyStore::insert_with`]). What [`KeyFileFormat::parse`] returns is
//! moved, and a move can leave an unwiped copy of every secret behind;
//! [`KeyFileFormat::parse_into`] fills a store the caller holds instead.

use zeroize::Zeroize;

use crate::key::{KeyId, KeyType, MAX_KEY_LEN, NTPD_MAX_KEY_ID};
use crate::{InsertError, KeyError, KeyStore, StoreError};

/// Longest key that ntpd and NTPsec read as ASCII text; a longer one is
/// hexadecimal (`ntp.keys(5)`: "an ASCII string of up to 20 characters or
/// a hex string of 40 characters").
pub const NTPD_MAX_ASCII_KEY_LEN: usize = 20;

/// The format of a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFileFormat {
    /// chrony (`chrony.conf(5)`, `keyfile`): one key per line,
    /// `ID [TYPE] KEY`. `ID` is 1 to 2^32 - 1; `TYPE` is `MD5` (the
    /// default), `SHA1`, `SHA256`, `SHA384`, `SHA512`, `AES128` or
    /// `AES256` (any case); `KEY` is `HEX:` and hexadecimal digits,
    /// `ASCII:` and text, or text alone (the prefixes in capitals, as
    /// chrony reads them). A line whose first non-blank
    /// character is `#`, `!`, `;` or `%` is a comment, as in chrony's
    /// configuration parser; blank lines are skipped.
    Chrony,
    /// ntpd and NTPsec (`ntp.keys(5)`): `ID TYPE KEY`. `ID` is 1 to
    /// 65535 ([`NTPD_MAX_KEY_ID`]); `TYPE` is `M` or `MD5`, `SHA1`,
    /// `SHA256`, `SHA384`, `SHA512`, `AES`, `AES128`, `AES128CMAC`,
    /// `AES256` or `AES256CMAC` as ntpd names them, or NTPsec's (OpenSSL's)
    /// `SHA-1`, `SHA-256`, `SHA-384`, `SHA-512`, `AES-128` or `AES-256`
    /// (any case; `AES-128` and `AES-256` are AES-CMAC keys, RFC 8573,
    /// as NTPsec uses them); `KEY` is printable ASCII of up
    /// to [`NTPD_MAX_ASCII_KEY_LEN`] characters, or else an even number of
    /// hexadecimal digits. `#` starts a comment anywhere. ntpd's optional
    /// fourth field, a list of addresses allowed to use the key, is
    /// refused ([`LineError::ExtraField`]) rather than ignored: ignoring
    /// it would widen what the operator allowed.
    Ntpd,
}

/// A bad line in a key file: where and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("key file line {line}: {reason}")]
pub struct KeyFileError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: LineError,
}

/// What is wrong with a key file line. Never holds key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Fewer fields than the format needs (an id, a type where the format
    /// requires one, a key).
    #[error("missing field: expected an id, a type and a key")]
    MissingField,
    /// More fields than the format has.
    #[error("unexpected field after the key")]
    ExtraField,
    /// The id is not a decimal number from 0 to 2^32 - 1.
    #[error("the key id is not a number from 1 to 4294967295")]
    BadKeyId,
    /// The id is above the format's limit ([`NTPD_MAX_KEY_ID`] for ntpd).
    #[error("key id {id} is above the maximum of {max}")]
    KeyIdOutOfRange {
        /// The id read.
        id: u32,
        /// The format's maximum.
        max: u32,
    },
    /// The type is not one this crate implements.
    #[error("unsupported key type")]
    UnsupportedType,
    /// A hexadecimal key with an odd number of digits or a non-digit.
    #[error("the key is not an even number of hexadecimal digits")]
    BadHex,
    /// An ntpd ASCII key with a character outside printable ASCII.
    #[error("the key has a character outside printable ASCII")]
    NotPrintable,
    /// The key does not suit its type (including key id 0).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The key could not be stored (a duplicate id, a full store).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<InsertError> for LineError {
    fn from(error: InsertError) -> Self {
        match error {
            InsertError::Key(error) => Self::Key(error),
            InsertError::Store(error) => Self::Store(error),
        }
    }
}

/// A decoded secret on the stack, zeroed when dropped.
///
/// The caller makes one and the decoders write into it through `&mut`:
/// returning it by value would be a move, which can leave an unwiped copy
/// of its octets in the decoder's frame.
struct SecretBuf {
    bytes: [u8; MAX_KEY_LEN],
    len: usize,
}

impl SecretBuf {
    fn new() -> Self {
        Self {
            bytes: [0; MAX_KEY_LEN],
            len: 0,
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Copies `text` as the secret.
    fn text(&mut self, text: &str) -> Result<(), LineError> {
        self.zeroize();
        let Some(dest) = self.bytes.get_mut(..text.len()) else {
            return Err(KeyError::TooLong { len: text.len() }.into());
        };
        dest.copy_from_slice(text.as_bytes());
        self.len = text.len();
        Ok(())
    }

    /// Decodes hexadecimal digits (either case) as the secret. On error
    /// the octets decoded so far stay until the buffer is zeroed or
    /// dropped.
    fn hex(&mut self, digits: &str) -> Result<(), LineError> {
        self.zeroize();
        let digits = digits.as_bytes();
        if digits.is_empty() {
            return Err(KeyError::Empty.into());
        }
        if digits.len() % 2 != 0 {
            return Err(LineError::BadHex);
        }
        let len = digits.len() / 2;
        if len > MAX_KEY_LEN {
            return Err(KeyError::TooLong { len }.into());
        }
        for (byte, pair) in self.bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let &[high, low] = pair else {
                return Err(LineError::BadHex);
            };
            let (Some(high), Some(low)) = (hex_value(high), hex_value(low)) else {
                return Err(LineError::BadHex);
            };
            *byte = (high << 4) | low;
        }
        self.len = len;
        Ok(())
    }
}

impl Zeroize for SecretBuf {
    fn zeroize(&mut self) {
        self.bytes.zeroize();
        self.len.zeroize();
    }
}

impl Drop for SecretBuf {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for SecretBuf {}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn parse_id(word: &str, max: u32) -> Result<KeyId, LineError> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineError::BadKeyId);
    }
    let id: u32 = word.parse().map_err(|_| LineError::BadKeyId)?;
    if id > max {
        return Err(LineError::KeyIdOutOfRange { id, max });
    }
    KeyId::new(id).ok_or(LineError::Key(KeyError::ZeroKeyId))
}

fn chrony_type(name: &str) -> Option<KeyType> {
    KeyType::ALL
        .into_iter()
        .find(|t| t.chrony_name().eq_ignore_ascii_case(name))
}

/// The key type an ntpd or NTPsec key file names, any case: ntpd's names
/// (`M`, `MD5`, `SHA1`, ..., `AES128CMAC`) and NTPsec's, which are
/// OpenSSL's digest and cipher names (`ntp.keys(5)` of NTPsec: `sha1`,
/// `sha256`, ..., `aes-128`, `aes-256`; "AES is an alias for AES-128",
/// "SHA-1 is an alias for SHA1"; OpenSSL also knows the SHA-2 digests as
/// `SHA-256`, `SHA-384` and `SHA-512`). NTPsec's `aes-128` and `aes-256`
/// are AES-CMAC keys (RFC 8573 section 4: AES-CMAC with a 128-bit key,
/// the cipher named by its key length), the same [`KeyType`] as ntpd's
/// `AES128CMAC` and `AES256CMAC`.
fn ntpd_type(name: &str) -> Option<KeyType> {
    const NAMES: [(&str, KeyType); 17] = [
        ("M", KeyType::Md5),
        ("MD5", KeyType::Md5),
        ("SHA1", KeyType::Sha1),
        ("SHA-1", KeyType::Sha1),
        ("SHA256", KeyType::Sha256),
        ("SHA-256", KeyType::Sha256),
        ("SHA384", KeyType::Sha384),
        ("SHA-384", KeyType::Sha384),
        ("SHA512", KeyType::Sha512),
        ("SHA-512", KeyType::Sha512),
        ("AES", KeyType::Aes128Cmac),
        ("AES128", KeyType::Aes128Cmac),
        ("AES-128", KeyType::Aes128Cmac),
        ("AES128CMAC", KeyType::Aes128Cmac),
        ("AES256", KeyType::Aes256Cmac),
        ("AES-256", KeyType::Aes256Cmac),
        ("AES256CMAC", KeyType::Aes256Cmac),
    ];
    NAMES
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t)| t)
}

/// Adds the key of one chrony line to `store`; nothing for a blank line
/// or a comment.
fn chrony_line<const N: usize>(line: &str, store: &mut KeyStore<N>) -> Result<(), LineError> {
    let line = line.trim_ascii();
    if line.is_empty() || line.starts_with(['#', '!', ';', '%']) {
        return Ok(());
    }
    let mut words = line.split_ascii_whitespace();
    let id = words.next().ok_or(LineError::MissingField)?;
    let second = words.next().ok_or(LineError::MissingField)?;
    let (type_name, key) = match words.next() {
        Some(key) => (Some(second), key),
        None => (None, second),
    };
    if words.next().is_some() {
        return Err(LineError::ExtraField);
    }
    let id = parse_id(id, u32::MAX)?;
    let key_type = match type_name {
        Some(name) => chrony_type(name).ok_or(LineError::UnsupportedType)?,
        None => KeyType::Md5,
    };
    let mut secret = SecretBuf::new();
    // The prefixes are case-sensitive, as in chrony: `hex:00` is the
    // six-character ASCII key it would be there.
    if let Some(hex) = key.strip_prefix("HEX:") {
        secret.hex(hex)?;
    } else if let Some(text) = key.strip_prefix("ASCII:") {
        secret.text(text)?;
    } else {
        secret.text(key)?;
    }
    Ok(store.insert_with(id, key_type, secret.as_slice())?)
}

/// Adds the key of one ntpd line to `store`; nothing for a blank line or
/// a comment.
fn ntpd_line<const N: usize>(line: &str, store: &mut KeyStore<N>) -> Result<(), LineError> {
    let line = line.split_once('#').map_or(line, |(before, _)| before);
    let mut words = line.split_ascii_whitespace();
    let Some(id) = words.next() else {
        return Ok(());
    };
    let type_name = words.next().ok_or(LineError::MissingField)?;
    let key = words.next().ok_or(LineError::MissingField)?;
    if words.next().is_some() {
        return Err(LineError::ExtraField);
    }
    let id = parse_id(id, NTPD_MAX_KEY_ID)?;
    let key_type = ntpd_type(type_name).ok_or(LineError::UnsupportedType)?;
    let mut secret = SecretBuf::new();
    if key.len() <= NTPD_MAX_ASCII_KEY_LEN {
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(LineError::NotPrintable);
        }
        secret.text(key)?;
    } else {
        secret.hex(key)?;
    }
    Ok(store.insert_with(id, key_type, secret.as_slice())?)
}

impl KeyFileFormat {
    /// Parses `text`, a whole key file, into a new store.
    ///
    /// The store is returned by value, and a move can leave an unwiped
    /// copy of every secret in it behind (a `KeyStore<N>` is some 88
    /// octets a key, all of them moved); to keep the keys in one place,
    /// use [`parse_into`](Self::parse_into) with a store that stays put
    /// (in a `Box` or a `static`, say, when it is large).
    ///
    /// # Errors
    ///
    /// The first bad line: its number and what is wrong. No key is
    /// returned then.
    pub fn parse<const N: usize>(self, text: &str) -> Result<KeyStore<N>, KeyFileError> {
        let mut store = KeyStore::new();
        self.parse_into(text, &mut store)?;
        Ok(store)
    }

    /// Parses `text`, a whole key file, into `store`, replacing the keys
    /// it held: on success `store` holds the file's keys and nothing
    /// else, exactly what [`parse`](Self::parse) returns.
    ///
    /// Each key is built in its slot of `store`
    /// ([`KeyStore::insert_with`]), from a buffer zeroed after each line:
    /// no key and no store is moved, so no copy of a secret is left
    /// behind.
    ///
    /// # Errors
    ///
    /// The first bad line, as [`parse`](Self::parse). `store` is then
    /// empty: the keys read before the bad line and those it held before
    /// are removed and zeroed, so that a half-read file is never used.
    pub fn parse_into<const N: usize>(
        self,
        text: &str,
        store: &mut KeyStore<N>,
    ) -> Result<(), KeyFileError> {
        store.clear();
        for (index, line) in text.lines().enumerate() {
            let parsed = match self {
                Self::Chrony => chrony_line(line, store),
                Self::Ntpd => ntpd_line(line, store),
            };
            if let Err(reason) = parsed {
                store.clear();
                return Err(KeyFileError {
                    line: index + 1,
                    reason,
                });
            }
        }
        Ok(())
    }
}

impl<const N: usize> KeyStore<N> {
    /// Parses a chrony key file; see [`KeyFileFormat::Chrony`]. The store
    /// is returned by value; see [`KeyFileFormat::parse_into`] to fill one
    /// in place.
    ///
    /// # Errors
    ///
    /// As [`KeyFileFormat::parse`].
    pub fn from_chrony_keys(text: &str) -> Result<Self, KeyFileError> {
        KeyFileFormat::Chrony.parse(text)
    }

    /// Parses an ntpd or NTPsec key file; see [`KeyFileFormat::Ntpd`]. The
    /// store is returned by value; see [`KeyFileFormat::parse_into`] to
    /// fill one in place.
    ///
    /// # Errors
    ///
    /// As [`KeyFileFormat::parse`].
    pub fn from_ntpd_keys(text: &str) -> Result<Self, KeyFileError> {
        KeyFileFormat::Ntpd.parse(text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use std::string::ToString;

    use super::*;

    fn id(id: u32) -> KeyId {
        KeyId::new(id).unwrap()
    }

    fn chrony(text: &str) -> Result<KeyStore<4>, KeyFileError> {
        KeyStore::from_chrony_keys(text)
    }

    fn ntpd(text: &str) -> Result<KeyStore<4>, KeyFileError> {
        KeyStore::from_ntpd_keys(text)
    }

    fn err(line: usize, reason: LineError) -> KeyFileError {
        KeyFileError { line, reason }
    }

    fn bad_chrony(text: &str) -> KeyFileError {
        chrony(text).unwrap_err()
    }

    fn bad_ntpd(text: &str) -> KeyFileError {
        ntpd(text).unwrap_err()
    }

    fn secret_of<const N: usize>(store: &KeyStore<N>, key_id: u32) -> ([u8; MAX_KEY_LEN], usize) {
        let key = store.get(id(key_id)).unwrap();
        let mut out = [0; MAX_KEY_LEN];
        let bytes: &[u8] = match &key.secret {
            crate::key::Secret::Hash { bytes, len } => &bytes[..*len],
            crate::key::Secret::Aes128(bytes) => bytes,
            crate::key::Secret::Aes256(bytes) => bytes,
        };
        out[..bytes.len()].copy_from_slice(bytes);
        (out, bytes.len())
    }

    fn assert_secret(store: &KeyStore<4>, key_id: u32, expected: &[u8]) {
        let (bytes, len) = secret_of(store, key_id);
        assert_eq!(&bytes[..len], expected, "key {key_id}");
    }

    #[test]
    fn chrony_format_reads_every_key_form_and_skips_comments() {
        let store = chrony(
            "# chrony.keys\n\
             \n\
             ! bang comment\n\
             ; semicolon comment\n\
             \t% percent comment\n\
             1 plainkey\n\
             2 SHA1 HEX:0a0B0c\n\
             3 sha256 ASCII:with#hash\n\
             4294967295 AES256 HEX:000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\r\n",
        )
        .unwrap();
        assert_eq!(store.len(), 4);
        let types: [KeyType; 4] = core::array::from_fn(|i| store.iter().nth(i).unwrap().key_type());
        assert_eq!(
            types,
            [
                KeyType::Md5,
                KeyType::Sha1,
                KeyType::Sha256,
                KeyType::Aes256Cmac
            ]
        );
        assert_secret(&store, 1, b"plainkey");
        assert_secret(&store, 2, &[0x0a, 0x0b, 0x0c]);
        assert_secret(&store, 3, b"with#hash");
        assert_eq!(store.get(id(u32::MAX)).unwrap().secret_len(), 32);
    }

    #[test]
    fn chrony_prefixes_are_case_sensitive_as_in_chrony() {
        let store = chrony("1 MD5 hex:00").unwrap();
        assert_secret(&store, 1, b"hex:00");
    }

    #[test]
    fn ntpd_format_reads_ascii_and_hex_keys_and_comments() {
        let store = ntpd(
            "# ntp.keys\n\
             1 M abcdefghijklmnopqrst   # 20 characters: ASCII\n\
             2 SHA1 0123456789abcdef0123456789abcdef01234567\n\
             3 aes128cmac 000102030405060708090A0B0C0D0E0F\n\
             65535 SHA512 x\n",
        )
        .unwrap();
        assert_eq!(store.len(), 4);
        assert_secret(&store, 1, b"abcdefghijklmnopqrst");
        assert_eq!(store.get(id(2)).unwrap().secret_len(), 20);
        assert_eq!(store.get(id(3)).unwrap().key_type(), KeyType::Aes128Cmac);
        assert_eq!(store.get(id(65535)).unwrap().key_type(), KeyType::Sha512);
    }

    #[test]
    fn ntpd_format_reads_ntpsec_type_names() {
        // NTPsec's ntp.keys(5) names the types as OpenSSL does: `aes-128`
        // (its recommended type), `aes-256`, `sha1`, and OpenSSL also reads
        // the hyphenated SHA names. Each is the type of ntpd's spelling.
        let store: KeyStore<8> = KeyStore::from_ntpd_keys(
            "# written by ntpkeygen for NTPsec\n\
             1 aes-128 000102030405060708090a0b0c0d0e0f\n\
             2 AES-256 000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n\
             3 sha-256 abcdefghijklmnopqrst\n\
             4 SHA-1 0123456789abcdef0123456789abcdef01234567\n\
             5 Sha-384 k384\n\
             6 sha-512 k512\n",
        )
        .unwrap();
        let types: std::vec::Vec<(u32, KeyType)> = store
            .iter()
            .map(|key| (key.id().get(), key.key_type()))
            .collect();
        assert_eq!(
            types,
            [
                (1, KeyType::Aes128Cmac),
                (2, KeyType::Aes256Cmac),
                (3, KeyType::Sha256),
                (4, KeyType::Sha1),
                (5, KeyType::Sha384),
                (6, KeyType::Sha512),
            ]
        );
        let (aes128, len) = secret_of(&store, 1);
        assert_eq!(
            aes128[..len],
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        // Each NTPsec name is the same type as ntpd's name for it.
        for (ntpsec, ntpd) in [
            ("aes-128", "AES128CMAC"),
            ("aes-256", "AES256CMAC"),
            ("sha-256", "SHA256"),
            ("sha-1", "SHA1"),
            ("sha-384", "SHA384"),
            ("sha-512", "SHA512"),
        ] {
            assert_eq!(ntpd_type(ntpsec), ntpd_type(ntpd), "{ntpsec}");
            assert!(ntpd_type(ntpsec).is_some(), "{ntpsec}");
        }
        // The names are whole words: no prefix, no other spelling of a
        // length we do not implement.
        for name in [
            "aes-",
            "aes-192",
            "sha-",
            "sha-224",
            "aes-128-cbc",
            "sha2-256",
        ] {
            assert_eq!(
                bad_ntpd(&std::format!("1 {name} 000102030405060708090a0b0c0d0e0f")),
                err(1, LineError::UnsupportedType),
                "{name}"
            );
        }
        // chrony's format keeps chrony's names only.
        assert_eq!(
            bad_chrony("1 aes-128 HEX:000102030405060708090a0b0c0d0e0f"),
            err(1, LineError::UnsupportedType)
        );
    }

    #[test]
    fn every_chrony_error_names_its_line() {
        assert_eq!(bad_chrony("1"), err(1, LineError::MissingField));
        assert_eq!(bad_chrony("\n1 MD5 k extra"), err(2, LineError::ExtraField));
        assert_eq!(bad_chrony("x MD5 k"), err(1, LineError::BadKeyId));
        assert_eq!(bad_chrony("-1 MD5 k"), err(1, LineError::BadKeyId));
        assert_eq!(bad_chrony("4294967296 MD5 k"), err(1, LineError::BadKeyId));
        assert_eq!(
            bad_chrony("0 MD5 k"),
            err(1, LineError::Key(KeyError::ZeroKeyId))
        );
        assert_eq!(bad_chrony("1 TIGER k"), err(1, LineError::UnsupportedType));
        assert_eq!(bad_chrony("1 MD5 HEX:abc"), err(1, LineError::BadHex));
        assert_eq!(bad_chrony("1 MD5 HEX:zz"), err(1, LineError::BadHex));
        assert_eq!(
            bad_chrony("1 MD5 HEX:"),
            err(1, LineError::Key(KeyError::Empty))
        );
        assert_eq!(
            bad_chrony("1 MD5 ASCII:"),
            err(1, LineError::Key(KeyError::Empty))
        );
        let long_hex = std::format!("1 SHA1 HEX:{}", "00".to_string().repeat(MAX_KEY_LEN + 1));
        assert_eq!(
            bad_chrony(&long_hex),
            err(
                1,
                LineError::Key(KeyError::TooLong {
                    len: MAX_KEY_LEN + 1
                })
            )
        );
        let long_text = std::format!("1 SHA1 {}", "k".to_string().repeat(MAX_KEY_LEN + 1));
        assert_eq!(
            bad_chrony(&long_text),
            err(
                1,
                LineError::Key(KeyError::TooLong {
                    len: MAX_KEY_LEN + 1
                })
            )
        );
        assert_eq!(
            bad_chrony("1 AES128 HEX:00"),
            err(
                1,
                LineError::Key(KeyError::WrongLength {
                    key_type: KeyType::Aes128Cmac,
                    len: 1
                })
            )
        );
        assert_eq!(
            bad_chrony("1 MD5 a\n1 SHA1 b"),
            err(2, LineError::Store(StoreError::Duplicate(id(1))))
        );
        assert_eq!(
            bad_chrony("1 a\n2 b\n3 c\n4 d\n5 e"),
            err(5, LineError::Store(StoreError::Full { capacity: 4 }))
        );
    }

    #[test]
    fn every_ntpd_error_names_its_line() {
        assert_eq!(bad_ntpd("1"), err(1, LineError::MissingField));
        assert_eq!(bad_ntpd("1 MD5"), err(1, LineError::MissingField));
        assert_eq!(
            bad_ntpd("1 MD5 key 192.0.2.1"),
            err(1, LineError::ExtraField)
        );
        assert_eq!(bad_ntpd("one MD5 key"), err(1, LineError::BadKeyId));
        assert_eq!(
            bad_ntpd("65536 MD5 key"),
            err(
                1,
                LineError::KeyIdOutOfRange {
                    id: 65536,
                    max: NTPD_MAX_KEY_ID
                }
            )
        );
        assert_eq!(
            bad_ntpd("0 MD5 key"),
            err(1, LineError::Key(KeyError::ZeroKeyId))
        );
        assert_eq!(bad_ntpd("1 SHA key"), err(1, LineError::UnsupportedType));
        assert_eq!(bad_ntpd("1 MD5 ké"), err(1, LineError::NotPrintable));
        // Longer than 20 characters: hexadecimal, which this is not.
        assert_eq!(
            bad_ntpd("1 MD5 abcdefghijklmnopqrstu"),
            err(1, LineError::BadHex)
        );
        assert_eq!(
            bad_ntpd("1 MD5 0123456789abcdef0123456789abcdef012"),
            err(1, LineError::BadHex)
        );
        assert_eq!(
            bad_ntpd("1 AES abcdefghijklmnopqrst"),
            err(
                1,
                LineError::Key(KeyError::WrongLength {
                    key_type: KeyType::Aes128Cmac,
                    len: 20
                })
            )
        );
        assert_eq!(
            bad_ntpd("# keys\n7 MD5 a\n7 MD5 b\n"),
            err(3, LineError::Store(StoreError::Duplicate(id(7))))
        );
    }

    #[test]
    fn errors_say_where_and_why_without_the_key() {
        let error = chrony("1 MD5 secretsecret\n2 AES128 secretsecret").unwrap_err();
        let text = std::format!("{error} {error:?}");
        assert!(text.contains("line 2"), "{text}");
        assert!(
            text.contains("AES-128-CMAC key must be 16 octets long, not 12"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }

    const CHRONY_FILE: &str = "# chrony.keys, ids out of order\n\
         30 SHA256 HEX:000102030405060708090a0b0c0d0e0f\n\
         1 plainkey\n\
         4294967295 AES256 HEX:000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n\
         ; comment\n\
         2 sha1 ASCII:with#hash\n\
         7 AES128 HEX:ffeeddccbbaa99887766554433221100\n";

    const NTPD_FILE: &str = "# NTPsec and ntpd names\n\
         9 aes-128 000102030405060708090a0b0c0d0e0f\n\
         2 AES-256 000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n\
         3 sha-256 abcdefghijklmnopqrst   # ASCII\n\
         65535 SHA-1 0123456789abcdef0123456789abcdef01234567\n\
         5 Sha-384 k384\n\
         1 M md5key\n";

    /// A store holding keys the files do not have, to see them replaced.
    fn stale<const N: usize>() -> KeyStore<N> {
        let mut store = KeyStore::new();
        store.insert_with(id(8), KeyType::Md5, b"old").unwrap();
        store.insert_with(id(1), KeyType::Sha1, b"older").unwrap();
        store
    }

    #[test]
    fn parse_into_gives_the_same_store_as_parse() {
        for (format, text, len) in [
            (KeyFileFormat::Chrony, CHRONY_FILE, 5),
            (KeyFileFormat::Ntpd, NTPD_FILE, 6),
        ] {
            let parsed: KeyStore<8> = format.parse(text).unwrap();
            assert_eq!(parsed.len(), len, "{format:?}");
            let mut into: KeyStore<8> = stale();
            format.parse_into(text, &mut into).unwrap();
            assert_eq!(into, parsed, "{format:?}");
            // The stale key 8 is gone; key 1 is the file's.
            assert!(into.get(id(8)).is_none());
            assert_ne!(into.get(id(1)), stale::<8>().get(id(1)), "{format:?}");
            // A store of the file's capacity exactly.
            let mut exact: KeyStore<6> = stale();
            let result = format.parse_into(text, &mut exact);
            assert_eq!(result, format.parse::<6>(text).map(drop));
            assert_eq!(exact.len(), len, "{format:?}");
        }
        let ntpsec: KeyStore<8> = KeyStore::from_ntpd_keys(NTPD_FILE).unwrap();
        let types: std::vec::Vec<(u32, KeyType)> = ntpsec
            .iter()
            .map(|key| (key.id().get(), key.key_type()))
            .collect();
        assert_eq!(
            types,
            [
                (1, KeyType::Md5),
                (2, KeyType::Aes256Cmac),
                (3, KeyType::Sha256),
                (5, KeyType::Sha384),
                (9, KeyType::Aes128Cmac),
                (65535, KeyType::Sha1),
            ]
        );
    }

    #[test]
    fn a_failed_parse_into_leaves_the_store_empty() {
        for (format, text, expected) in [
            // A bad line after good ones.
            (
                KeyFileFormat::Chrony,
                "1 MD5 a\n2 MD5 b\n\n3 BOGUS c\n4 MD5 d",
                err(4, LineError::UnsupportedType),
            ),
            (
                KeyFileFormat::Chrony,
                "1 MD5 a\n2 AES128 HEX:00\n",
                err(
                    2,
                    LineError::Key(KeyError::WrongLength {
                        key_type: KeyType::Aes128Cmac,
                        len: 1,
                    }),
                ),
            ),
            (
                KeyFileFormat::Ntpd,
                "# keys\n7 MD5 a\n3 sha-256 b\n7 MD5 c\n",
                err(4, LineError::Store(StoreError::Duplicate(id(7)))),
            ),
            (
                KeyFileFormat::Ntpd,
                // 24 hexadecimal digits: 12 octets.
                "1 aes-128 000102030405060708090a0b\n",
                err(
                    1,
                    LineError::Key(KeyError::WrongLength {
                        key_type: KeyType::Aes128Cmac,
                        len: 12,
                    }),
                ),
            ),
            // One key more than the store holds.
            (
                KeyFileFormat::Chrony,
                "5 a\n4 b\n3 c\n2 d\n1 e",
                err(5, LineError::Store(StoreError::Full { capacity: 4 })),
            ),
        ] {
            assert_eq!(format.parse::<4>(text), Err(expected), "{text}");
            let mut store: KeyStore<4> = stale();
            assert_eq!(format.parse_into(text, &mut store), Err(expected), "{text}");
            assert!(store.is_empty(), "{text}");
            assert_eq!(store, KeyStore::new(), "{text}");
            // The emptied store takes a good file.
            format.parse_into("1 MD5 k", &mut store).unwrap();
            assert_eq!(store.len(), 1);
        }
    }

    #[test]
    fn decoding_overwrites_the_whole_buffer() {
        let mut secret = SecretBuf::new();
        secret.text("abcdefghijklmnopqrstuvwxyz").unwrap();
        secret.hex("0102").unwrap();
        assert_eq!(secret.as_slice(), [1, 2]);
        assert!(secret.bytes[2..].iter().all(|&b| b == 0));
        // A failed decode leaves no secret to read.
        assert_eq!(secret.hex("01zz"), Err(LineError::BadHex));
        assert_eq!(secret.as_slice(), [] as [u8; 0]);
        secret.text("key").unwrap();
        secret.zeroize();
        assert_eq!((secret.bytes, secret.len), ([0; MAX_KEY_LEN], 0));
    }

    #[test]
    fn nothing_is_loaded_from_a_file_with_a_bad_line() {
        // The API returns either a whole store or an error: a bad last line
        // leaves no partial store to use.
        assert!(chrony("1 MD5 a\n2 MD5 b\n3 BOGUS c").is_err());
    }
}

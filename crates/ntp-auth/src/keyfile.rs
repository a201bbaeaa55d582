//! Key files: chrony's `chrony.keys` and ntpd/NTPsec's `ntp.keys`.
//!
//! Both are parsed from text into a [`KeyStore`] all at once: the first
//! bad line is reported with its number and reason, and then no key at all
//! is returned (unlike chrony and ntpd, which log and skip bad lines: a
//! building block leaves that policy to its caller, and a half-loaded key
//! file is a surprise). Parsing needs no allocation; decoded secrets on
//! the stack are zeroed before the parser returns.

use zeroize::Zeroize;

use crate::key::{Key, KeyId, KeyType, MAX_KEY_LEN, NTPD_MAX_KEY_ID};
use crate::{KeyError, KeyStore, StoreError};

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
    /// `AES256` or `AES256CMAC` (any case); `KEY` is printable ASCII of up
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

/// A decoded secret on the stack, zeroed when dropped.
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
    fn text(text: &str) -> Result<Self, LineError> {
        let mut out = Self::new();
        let Some(dest) = out.bytes.get_mut(..text.len()) else {
            return Err(KeyError::TooLong { len: text.len() }.into());
        };
        dest.copy_from_slice(text.as_bytes());
        out.len = text.len();
        Ok(out)
    }

    /// Decodes hexadecimal digits (either case).
    fn hex(digits: &str) -> Result<Self, LineError> {
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
        let mut out = Self::new();
        for (byte, pair) in out.bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let &[high, low] = pair else {
                return Err(LineError::BadHex);
            };
            let (Some(high), Some(low)) = (hex_value(high), hex_value(low)) else {
                return Err(LineError::BadHex);
            };
            *byte = (high << 4) | low;
            out.len += 1;
        }
        Ok(out)
    }
}

impl Drop for SecretBuf {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

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

fn ntpd_type(name: &str) -> Option<KeyType> {
    const NAMES: [(&str, KeyType); 11] = [
        ("M", KeyType::Md5),
        ("MD5", KeyType::Md5),
        ("SHA1", KeyType::Sha1),
        ("SHA256", KeyType::Sha256),
        ("SHA384", KeyType::Sha384),
        ("SHA512", KeyType::Sha512),
        ("AES", KeyType::Aes128Cmac),
        ("AES128", KeyType::Aes128Cmac),
        ("AES128CMAC", KeyType::Aes128Cmac),
        ("AES256", KeyType::Aes256Cmac),
        ("AES256CMAC", KeyType::Aes256Cmac),
    ];
    NAMES
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, t)| t)
}

/// One chrony line without its comment; `None` for a blank or comment.
fn chrony_line(line: &str) -> Result<Option<Key>, LineError> {
    let line = line.trim_ascii();
    if line.is_empty() || line.starts_with(['#', '!', ';', '%']) {
        return Ok(None);
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
    // The prefixes are case-sensitive, as in chrony: `hex:00` is the
    // six-character ASCII key it would be there.
    let secret = if let Some(hex) = key.strip_prefix("HEX:") {
        SecretBuf::hex(hex)?
    } else if let Some(text) = key.strip_prefix("ASCII:") {
        SecretBuf::text(text)?
    } else {
        SecretBuf::text(key)?
    };
    Ok(Some(Key::new(id, key_type, secret.as_slice())?))
}

/// One ntpd line; `None` for a blank or comment.
fn ntpd_line(line: &str) -> Result<Option<Key>, LineError> {
    let line = line.split_once('#').map_or(line, |(before, _)| before);
    let mut words = line.split_ascii_whitespace();
    let Some(id) = words.next() else {
        return Ok(None);
    };
    let type_name = words.next().ok_or(LineError::MissingField)?;
    let key = words.next().ok_or(LineError::MissingField)?;
    if words.next().is_some() {
        return Err(LineError::ExtraField);
    }
    let id = parse_id(id, NTPD_MAX_KEY_ID)?;
    let key_type = ntpd_type(type_name).ok_or(LineError::UnsupportedType)?;
    let secret = if key.len() <= NTPD_MAX_ASCII_KEY_LEN {
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(LineError::NotPrintable);
        }
        SecretBuf::text(key)?
    } else {
        SecretBuf::hex(key)?
    };
    Ok(Some(Key::new(id, key_type, secret.as_slice())?))
}

impl KeyFileFormat {
    /// Parses `text`, a whole key file, into a new store.
    ///
    /// # Errors
    ///
    /// The first bad line: its number and what is wrong. No key is
    /// returned then.
    pub fn parse<const N: usize>(self, text: &str) -> Result<KeyStore<N>, KeyFileError> {
        let mut store = KeyStore::new();
        for (index, line) in text.lines().enumerate() {
            let parsed = match self {
                Self::Chrony => chrony_line(line),
                Self::Ntpd => ntpd_line(line),
            };
            let error = |reason| KeyFileError {
                line: index + 1,
                reason,
            };
            if let Some(key) = parsed.map_err(error)? {
                store.insert(key).map_err(|e| error(e.into()))?;
            }
        }
        Ok(store)
    }
}

impl<const N: usize> KeyStore<N> {
    /// Parses a chrony key file; see [`KeyFileFormat::Chrony`].
    ///
    /// # Errors
    ///
    /// As [`KeyFileFormat::parse`].
    pub fn from_chrony_keys(text: &str) -> Result<Self, KeyFileError> {
        KeyFileFormat::Chrony.parse(text)
    }

    /// Parses an ntpd or NTPsec key file; see [`KeyFileFormat::Ntpd`].
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

    fn secret_of(store: &KeyStore<4>, key_id: u32) -> ([u8; MAX_KEY_LEN], usize) {
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

    #[test]
    fn nothing_is_loaded_from_a_file_with_a_bad_line() {
        // The API returns either a whole store or an error: a bad last line
        // leaves no partial store to use.
        assert!(chrony("1 MD5 a\n2 MD5 b\n3 BOGUS c").is_err());
    }
}

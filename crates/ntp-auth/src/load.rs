//! Reading a key file from a path (feature `std`).

use std::io::Read;
use std::path::Path;
use std::vec::Vec;

use zeroize::Zeroizing;

use crate::{KeyFileError, KeyFileFormat, KeyStore};

/// The longest key file [`KeyStore::load`] reads: 1 MiB.
///
/// No RFC specifies key files (RFC 5905 section 7.3 only names a key by
/// its key id), so the limit is ours. The longest key line either format accepts is 151 octets with
/// its newline (`4294967295 SHA512 HEX:` and 128 hexadecimal digits, a
/// [`MAX_KEY_LEN`](crate::MAX_KEY_LEN)-octet key), so 1 MiB holds some
/// 6900 of them: a `KeyStore<1024>` (what `ntp-daemon` loads) full of
/// the longest keys is a 155 KiB file, with room left for five times as
/// much comment, and the [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY)
/// of 64 keys needs under 10 KiB. A longer file is not a key file: it is
/// refused ([`LoadError::TooLarge`]) after reading at most one octet past
/// the limit, never read whole.
pub const MAX_KEY_FILE_LEN: usize = 1 << 20;

/// Why [`KeyStore::load`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read the key file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is longer than [`MAX_KEY_FILE_LEN`] octets.
    #[error("the key file is longer than {limit} octets")]
    TooLarge {
        /// The limit, [`MAX_KEY_FILE_LEN`].
        limit: usize,
    },
    /// The file is not UTF-8 text.
    #[error("the key file is not UTF-8 text")]
    NotUtf8,
    /// A line is bad.
    #[error(transparent)]
    Parse(#[from] KeyFileError),
}

/// Reads all of `reader` if it holds at most `limit` octets.
///
/// The buffer is allocated once with room for `limit + 1` octets and the
/// reads stop there, so it never grows: no reallocation leaves a copy of
/// the text in freed memory, and the one buffer is zeroed (all of its
/// capacity) when dropped, on every path.
fn read_capped(reader: impl Read, limit: usize) -> Result<Zeroizing<Vec<u8>>, LoadError> {
    let room = limit.saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(room));
    reader
        .take(u64::try_from(room).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(LoadError::TooLarge { limit });
    }
    Ok(bytes)
}

impl<const N: usize> KeyStore<N> {
    /// Reads and parses the key file at `path` in `format` into a new
    /// store.
    ///
    /// At most [`MAX_KEY_FILE_LEN`] octets (and one more to tell a longer
    /// file) are read, into one buffer that is zeroed when this returns,
    /// whether the file loaded or not.
    ///
    /// The store is returned by value, and a move can leave an unwiped
    /// copy of every secret in it behind (a `KeyStore<1024>` is some
    /// 90 KiB, moved whole); to keep the keys in one place, use
    /// [`load_into`](Self::load_into) with a store that stays put (in a
    /// `Box`, say).
    ///
    /// # Errors
    ///
    /// [`LoadError::Io`] if the file cannot be read,
    /// [`LoadError::TooLarge`] if it is longer than [`MAX_KEY_FILE_LEN`],
    /// [`LoadError::NotUtf8`] if it is not UTF-8, [`LoadError::Parse`] for
    /// the first bad line; no key is returned then.
    pub fn load(path: impl AsRef<Path>, format: KeyFileFormat) -> Result<Self, LoadError> {
        let mut store = Self::new();
        store.load_into(path, format)?;
        Ok(store)
    }

    /// Reads and parses the key file at `path` in `format` into this
    /// store, replacing the keys it held: on success it holds the file's
    /// keys and nothing else, exactly what [`load`](Self::load) returns.
    ///
    /// The file is read as by [`load`](Self::load), and parsed by
    /// [`KeyFileFormat::parse_into`]: each key is built in its slot of
    /// this store, and neither a key nor the store is moved, so no copy
    /// of a secret is left behind.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load). On every error the store is empty: the
    /// keys it held are removed and zeroed whatever failed (the file
    /// could not be read, or a line is bad), so that neither an old key
    /// set nor a half-read file is used by mistake.
    pub fn load_into(
        &mut self,
        path: impl AsRef<Path>,
        format: KeyFileFormat,
    ) -> Result<(), LoadError> {
        self.clear();
        let bytes = read_capped(std::fs::File::open(path)?, MAX_KEY_FILE_LEN)?;
        // Borrowed, not copied: the only copy of the text is `bytes`.
        let text = core::str::from_utf8(&bytes).map_err(|_| LoadError::NotUtf8)?;
        Ok(format.parse_into(text, self)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use std::string::ToString;

    use super::*;
    use crate::{Key, KeyId, KeyType, LineError};

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(std::format!(
            "ntp-auth-load-{name}-{}.keys",
            std::process::id()
        ))
    }

    #[test]
    fn load_reads_a_file_and_reports_io_and_line_errors() {
        let path = temp_path("errors");
        std::fs::write(&path, "1 MD5 HEX:0011\n2 SHA1 ASCII:two\n").unwrap();
        let store: KeyStore<4> = KeyStore::load(&path, KeyFileFormat::Chrony).unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.get(KeyId::new(2).unwrap()).is_some());

        // ntpd refuses the chrony-only HEX: form (23 characters: not hex).
        std::fs::write(&path, "1 MD5 HEX:00112233445566778899\n").unwrap();
        let error = KeyStore::<4>::load(&path, KeyFileFormat::Ntpd).unwrap_err();
        assert!(matches!(
            error,
            LoadError::Parse(KeyFileError {
                line: 1,
                reason: LineError::BadHex
            })
        ));
        // An NTPsec key file, with the type names NTPsec's ntp.keys(5)
        // documents (`--keys-format ntpd` reads it).
        std::fs::write(
            &path,
            "1 aes-128 000102030405060708090a0b0c0d0e0f\n\
             2 aes-256 000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n\
             3 sha-256 abcdefghijklmnopqrst\n",
        )
        .unwrap();
        let store = KeyStore::<4>::load(&path, KeyFileFormat::Ntpd).unwrap();
        let types: Vec<KeyType> = store.iter().map(Key::key_type).collect();
        assert_eq!(
            types,
            [KeyType::Aes128Cmac, KeyType::Aes256Cmac, KeyType::Sha256]
        );

        std::fs::write(&path, b"1 MD5 \xff\n").unwrap();
        let error = KeyStore::<4>::load(&path, KeyFileFormat::Chrony).unwrap_err();
        assert!(matches!(error, LoadError::NotUtf8), "{error}");
        std::fs::remove_file(&path).unwrap();

        let error = KeyStore::<4>::load(&path, KeyFileFormat::Chrony).unwrap_err();
        assert!(matches!(error, LoadError::Io(_)), "{error}");
    }

    /// A store holding a key the files do not have, to see it replaced.
    fn stale() -> KeyStore<8> {
        let mut store = KeyStore::new();
        store
            .insert_with(KeyId::new(8).unwrap(), KeyType::Md5, b"old")
            .unwrap();
        store
    }

    #[test]
    fn load_into_gives_the_same_store_as_load() {
        let path = temp_path("into");
        for (format, text, len) in [
            (
                KeyFileFormat::Chrony,
                "3 SHA512 HEX:00112233\n1 AES128 HEX:000102030405060708090a0b0c0d0e0f\n2 text\n",
                3,
            ),
            (
                KeyFileFormat::Ntpd,
                "1 aes-128 000102030405060708090a0b0c0d0e0f\n\
                 2 aes-256 000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n\
                 4 sha-256 abcdefghijklmnopqrst\n\
                 3 SHA1 0123456789abcdef0123456789abcdef01234567\n",
                4,
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let loaded = KeyStore::<8>::load(&path, format).unwrap();
            assert_eq!(loaded.len(), len);
            let mut into = stale();
            into.load_into(&path, format).unwrap();
            assert_eq!(into, loaded, "{format:?}");
            assert_eq!(into, format.parse::<8>(text).unwrap(), "{format:?}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_failed_load_into_leaves_the_store_empty() {
        let path = temp_path("into-errors");
        std::fs::write(&path, "1 MD5 a\n2 MD5 b\n3 MD5 HEX:0\n4 MD5 d\n").unwrap();
        let mut store = stale();
        let error = store.load_into(&path, KeyFileFormat::Chrony).unwrap_err();
        assert!(
            matches!(
                error,
                LoadError::Parse(KeyFileError {
                    line: 3,
                    reason: LineError::BadHex
                })
            ),
            "{error}"
        );
        assert!(store.is_empty());

        std::fs::write(&path, b"1 MD5 a\n2 MD5 \xff\n").unwrap();
        let mut store = stale();
        let error = store.load_into(&path, KeyFileFormat::Chrony).unwrap_err();
        assert!(matches!(error, LoadError::NotUtf8), "{error}");
        assert!(store.is_empty());

        std::fs::remove_file(&path).unwrap();
        let mut store = stale();
        let error = store.load_into(&path, KeyFileFormat::Ntpd).unwrap_err();
        assert!(matches!(error, LoadError::Io(_)), "{error}");
        assert!(store.is_empty());
    }

    #[test]
    fn a_file_of_the_limit_loads_and_one_octet_more_is_refused() {
        let path = temp_path("limit");
        let key = "1 AES128 HEX:000102030405060708090a0b0c0d0e0f\n";
        let mut text = std::string::String::from(key);
        // A comment line fills the file up to the limit exactly.
        let fill = MAX_KEY_FILE_LEN - key.len() - 2;
        text.push('#');
        text.extend(core::iter::repeat_n('x', fill));
        text.push('\n');
        assert_eq!(text.len(), MAX_KEY_FILE_LEN);
        std::fs::write(&path, &text).unwrap();
        let store: KeyStore<4> = KeyStore::load(&path, KeyFileFormat::Chrony).unwrap();
        assert_eq!(store.len(), 1);

        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        let error = KeyStore::<4>::load(&path, KeyFileFormat::Chrony).unwrap_err();
        assert!(
            matches!(error, LoadError::TooLarge { limit } if limit == MAX_KEY_FILE_LEN),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "the key file is longer than 1048576 octets"
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// An endless file is refused after the limit, not read until memory
    /// runs out.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_endless_file_is_refused_after_the_limit() {
        let error = KeyStore::<4>::load("/dev/zero", KeyFileFormat::Chrony).unwrap_err();
        assert!(matches!(error, LoadError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn the_buffer_is_allocated_once_and_never_grows() {
        // Whatever the length, the reads fit in the first allocation, so no
        // reallocation leaves an unzeroed copy of the text behind.
        for len in [0, 1, 15, 16, 17, 1000] {
            let input = std::vec![b'k'; len];
            let result = read_capped(input.as_slice(), 16);
            match result {
                Ok(bytes) => {
                    assert!(len <= 16);
                    assert_eq!(bytes.as_slice(), input.as_slice());
                    assert_eq!(bytes.capacity(), 17, "{len} octets");
                }
                Err(LoadError::TooLarge { limit: 16 }) => assert!(len > 16),
                Err(error) => panic!("{error}"),
            }
        }
    }
}

//! Reading a key file from a path (feature `std`).

use std::path::Path;

use zeroize::Zeroize;

use crate::{KeyFileError, KeyFileFormat, KeyStore};

/// Why [`KeyStore::load`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read the key file: {0}")]
    Io(#[from] std::io::Error),
    /// A line is bad.
    #[error(transparent)]
    Parse(#[from] KeyFileError),
}

impl<const N: usize> KeyStore<N> {
    /// Reads and parses the key file at `path` in `format`. The file's text
    /// is zeroed once parsed.
    ///
    /// # Errors
    ///
    /// [`LoadError::Io`] if the file cannot be read (or is not UTF-8),
    /// [`LoadError::Parse`] for the first bad line; no key is returned then.
    pub fn load(path: impl AsRef<Path>, format: KeyFileFormat) -> Result<Self, LoadError> {
        let mut text = std::fs::read_to_string(path)?;
        let parsed = format.parse(&text);
        text.zeroize();
        Ok(parsed?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::{KeyId, LineError};

    #[test]
    fn load_reads_a_file_and_reports_io_and_line_errors() {
        let dir = std::env::temp_dir();
        let path = dir.join(std::format!("ntp-auth-load-{}.keys", std::process::id()));
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
        std::fs::remove_file(&path).unwrap();

        let error = KeyStore::<4>::load(&path, KeyFileFormat::Chrony).unwrap_err();
        assert!(matches!(error, LoadError::Io(_)), "{error}");
    }
}

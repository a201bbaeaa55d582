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

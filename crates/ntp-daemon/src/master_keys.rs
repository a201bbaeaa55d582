//! `--nts-key-file PATH`: the cookie master keys of `--nts-ke-listen`
//! (RFC 8915 section 6) kept across restarts, so that the clients'
//! cookies stay good. The keys and their text are `ntp-nts`'s
//! [`MasterKeyFile`] (fuzzed there); this module is the file: written with
//! mode 0600 through a fresh temporary file (never through a planted
//! link, as the drift file) and a rename, and refused when anyone but its
//! owner may read or write it (its keys may be known, and cookies sealed
//! under them could be forged).

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use ntp_nts::key_file::MasterKeyFile;
use zeroize::Zeroizing;

use crate::files::write_atomically;

/// Reads `path`; `Ok(None)` when there is no such file.
///
/// # Errors
///
/// An unreadable file, one that group or others may access, or one that
/// does not parse.
pub(crate) fn load(path: &Path) -> io::Result<Option<MasterKeyFile>> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: group or others may access it (mode {:o}); its keys may be known",
                path.display(),
                metadata.permissions().mode() & 0o777
            ),
        ));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    MasterKeyFile::parse(&text).map(Some).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a master key file: {error}", path.display()),
        )
    })
}

/// Writes `keys` to `path`, mode 0600, with [`write_atomically`].
///
/// # Errors
///
/// The file system's.
pub(crate) fn save(keys: &MasterKeyFile, path: &Path) -> io::Result<()> {
    write_atomically(path, keys.to_text().as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn a_saved_file_loads_the_same_keys_and_opens_old_cookies() {
        let dir = std::env::temp_dir().join(format!("ntp-daemon-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.join("nts-keys");
        assert!(matches!(load(&path), Ok(None)));
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut keys = MasterKeyFile::fresh(&mut rng, 1_000);
        keys.rotate(&mut rng, 2_000);
        save(&keys, &path).unwrap_or_else(|e| unreachable!("{e}"));
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let loaded = load(&path).ok().flatten().unwrap_or_else(|| unreachable!());
        assert_eq!(loaded.current_age(2_010), 10);
        let (before, after) = (keys.cookie_keys(), loaded.cookie_keys());
        assert_eq!(
            before.key_ids().collect::<Vec<_>>(),
            after.key_ids().collect::<Vec<_>>()
        );
        // A cookie sealed before the restart opens after it.
        let key = |octet| ntp_nts::AeadKey::new(&[octet; 32]).unwrap_or_else(|| unreachable!());
        let session = ntp_nts::SessionKeys {
            algorithm: ntp_nts::AeadAlgorithm::AesSivCmac256,
            c2s: key(7),
            s2c: key(9),
        };
        let cookie = before
            .seal(&session, &mut rng)
            .unwrap_or_else(|_| unreachable!());
        assert!(after.open(cookie.as_bytes()).is_ok());
        // Readable by others: refused.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(load(&path).is_err());
        // Not a key file: refused, with the reason.
        std::fs::write(&path, "garbage\n").unwrap_or_else(|e| unreachable!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let error = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("line 1"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

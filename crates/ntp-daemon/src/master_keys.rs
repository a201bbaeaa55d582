//! The cookie master keys of `--nts-ke-listen` (RFC 8915 section 6), and
//! `--nts-key-file PATH`, which keeps them across restarts: without it a
//! restart makes every cookie the clients hold worthless, and every client
//! comes back to NTS-KE after an NTS NAK at once. Section 6 leaves where
//! the keys live to the server; chronyd keeps them in a file too
//! (`ntsdumpdir`).
//!
//! The file has one line per key, newest (current) first:
//! `KEY_ID CREATED MATERIAL`, the key id as 8 hex digits, the creation time
//! in Unix seconds and the 32 octets of key material as 64 hex digits. It
//! is written with mode 0600 through a fresh temporary file (never through
//! a planted link, as the drift file) and a rename. A file that anyone
//! but its owner may read or write is refused: its keys may be known, and
//! cookies sealed under them could be forged.

use core::fmt::Write as _;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use ntp_nts::cookie::{DEFAULT_KEPT_KEYS, MASTER_KEY_LEN};
use ntp_server::CookieKeys;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::files::write_atomically;

/// One master key with its creation time.
struct StoredKey {
    id: u32,
    /// Unix seconds.
    created: u64,
    material: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

/// The master keys, newest first, at most [`DEFAULT_KEPT_KEYS`] (the
/// current key and the previous ones whose cookies are still accepted).
pub(crate) struct MasterKeys {
    keys: Vec<StoredKey>,
}

impl MasterKeys {
    /// One fresh key from `rng`, created at `now` (Unix seconds).
    pub(crate) fn fresh<R: RngCore + CryptoRng>(rng: &mut R, now: u64) -> Self {
        let mut keys = Self { keys: Vec::new() };
        keys.rotate(rng, now);
        keys
    }

    /// A fresh current key from `rng`, created at `now`, with an id none of
    /// the kept keys has; the oldest beyond [`DEFAULT_KEPT_KEYS`] is
    /// dropped (and zeroed). Returns the new key's id.
    pub(crate) fn rotate<R: RngCore + CryptoRng>(&mut self, rng: &mut R, now: u64) -> u32 {
        let mut id = rng.next_u32();
        while self.keys.iter().any(|key| key.id == id) {
            id = rng.next_u32();
        }
        let mut material = Zeroizing::new([0; MASTER_KEY_LEN]);
        rng.fill_bytes(material.as_mut());
        self.keys.insert(
            0,
            StoredKey {
                id,
                created: now,
                material,
            },
        );
        self.keys.truncate(DEFAULT_KEPT_KEYS);
        id
    }

    /// Seconds since the current key was made, at `now`.
    pub(crate) fn current_age(&self, now: u64) -> u64 {
        self.keys
            .first()
            .map_or(u64::MAX, |key| now.saturating_sub(key.created))
    }

    /// The keys as `ntp-server` seals and opens cookies with them.
    pub(crate) fn cookie_keys(&self) -> Option<CookieKeys> {
        let mut oldest_first = self.keys.iter().rev();
        let first = oldest_first.next()?;
        let mut keys = CookieKeys::new(first.id, &first.material);
        for key in oldest_first {
            // Ids are distinct by construction and by `parse`.
            keys.rotate(key.id, &key.material).ok()?;
        }
        Some(keys)
    }

    /// Reads `path`; `Ok(None)` when there is no such file.
    ///
    /// # Errors
    ///
    /// An unreadable file, one that group or others may access, or one
    /// that does not parse.
    pub(crate) fn load(path: &Path) -> io::Result<Option<Self>> {
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
        Self::parse(&text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a master key file", path.display()),
            )
        })
    }

    /// The keys of a file's text: 1 to [`DEFAULT_KEPT_KEYS`] lines of
    /// `KEY_ID CREATED MATERIAL`, distinct ids.
    fn parse(text: &str) -> Option<Self> {
        let mut keys = Vec::new();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let mut fields = line.split_whitespace();
            let id = fields.next().filter(|f| f.len() == 8)?;
            let id = u32::from_str_radix(id, 16).ok()?;
            let created = fields.next()?.parse().ok()?;
            let mut material = Zeroizing::new([0; MASTER_KEY_LEN]);
            hex::decode_to_slice(fields.next()?, material.as_mut()).ok()?;
            if fields.next().is_some() || keys.iter().any(|key: &StoredKey| key.id == id) {
                return None;
            }
            keys.push(StoredKey {
                id,
                created,
                material,
            });
        }
        (!keys.is_empty() && keys.len() <= DEFAULT_KEPT_KEYS).then_some(Self { keys })
    }

    /// Writes the keys to `path`, mode 0600, with
    /// [`write_atomically`]. The text is built in one buffer sized for
    /// it up front (no reallocation leaves a copy behind) and wiped
    /// afterwards.
    ///
    /// # Errors
    ///
    /// The file system's.
    pub(crate) fn save(&self, path: &Path) -> io::Result<()> {
        // "KEY_ID CREATED MATERIAL\n": 8 + 1 + at most 20 + 1 + 64 + 1.
        let line = 8 + 1 + 20 + 1 + 2 * MASTER_KEY_LEN + 1;
        let mut text = Zeroizing::new(String::with_capacity(line * self.keys.len()));
        for key in &self.keys {
            let material = Zeroizing::new(hex::encode(key.material.as_ref()));
            writeln!(text, "{:08x} {} {}", key.id, key.created, *material)
                .map_err(io::Error::other)?;
        }
        write_atomically(path, text.as_bytes(), 0o600)
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(3)
    }

    #[test]
    fn keys_rotate_and_keep_the_last_three() {
        let mut rng = rng();
        let mut keys = MasterKeys::fresh(&mut rng, 100);
        let first = keys.cookie_keys().map(|k| k.current_key_id());
        let mut ids = vec![first];
        for day in 1..=4 {
            let id = keys.rotate(&mut rng, 100 + day * 86_400);
            ids.push(Some(id));
        }
        assert_eq!(keys.current_age(100 + 4 * 86_400 + 5), 5);
        let cookie_keys = keys.cookie_keys().unwrap_or_else(|| unreachable!());
        let held: Vec<Option<u32>> = cookie_keys.key_ids().map(Some).collect();
        // Newest first, the three last.
        let want: Vec<Option<u32>> = ids.iter().rev().take(3).copied().collect();
        assert_eq!(held, want);
    }

    #[test]
    fn a_saved_file_loads_the_same_keys_and_opens_old_cookies() {
        let dir = std::env::temp_dir().join(format!("ntp-daemon-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
        let path = dir.join("nts-keys");
        let mut rng = rng();
        let mut keys = MasterKeys::fresh(&mut rng, 1_000);
        keys.rotate(&mut rng, 2_000);
        keys.save(&path).unwrap_or_else(|e| unreachable!("{e}"));
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        let loaded = MasterKeys::load(&path)
            .ok()
            .flatten()
            .unwrap_or_else(|| unreachable!());
        assert_eq!(loaded.current_age(2_010), 10);
        let (before, after) = (keys.cookie_keys(), loaded.cookie_keys());
        let (Some(before), Some(after)) = (before, after) else {
            unreachable!()
        };
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
        assert!(MasterKeys::load(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_are_refused() {
        let good = format!("{:08x} 5 {}", 7, "ab".repeat(32));
        assert!(MasterKeys::parse(&good).is_some());
        for bad in [
            String::new(),
            format!("{:07x} 5 {}", 7, "ab".repeat(32)),
            format!("{:08x} x {}", 7, "ab".repeat(32)),
            format!("{:08x} 5 {}", 7, "ab".repeat(31)),
            format!("{:08x} 5 {}", 7, "zz".repeat(32)),
            format!("{good} extra"),
            format!("{good}\n{good}"),
            (1..=4)
                .map(|id| format!("{id:08x} 5 {}", "ab".repeat(32)))
                .collect::<Vec<_>>()
                .join("\n"),
        ] {
            assert!(MasterKeys::parse(&bad).is_none(), "{bad}");
        }
    }
}

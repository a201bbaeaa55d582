//! The cookie master keys of an NTS-KE server (RFC 8915 section 6) as
//! text, so that a server can keep them across restarts: without that a
//! restart makes every cookie the clients hold worthless, and every client
//! comes back to NTS-KE after an NTS NAK at once. Section 6 leaves where
//! the keys live to the server; chronyd keeps them in a file too
//! (`ntsdumpdir`).
//!
//! [`MasterKeyFile`] holds the keys with their creation times, rotates
//! them, hands them to the NTP side as [`CookieKeys`], and reads and
//! writes their text. Where the text goes (a file of mode 0600, written
//! atomically, refused when others may read it) is the program's job.
//!
//! The text has one line per key, newest (current) first:
//! `KEY_ID CREATED MATERIAL`, the key id as 8 hex digits, the creation time
//! in Unix seconds and the 32 octets of key material as 64 hex digits;
//! 1 to [`DEFAULT_KEPT_KEYS`] lines with distinct ids, blank lines
//! ignored. Key material never lingers: it is zeroed when dropped, and
//! [`MasterKeyFile::to_text`] returns a string zeroed when dropped.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::cookie::{CookieKeys, DEFAULT_KEPT_KEYS, MASTER_KEY_LEN};

/// One master key with its creation time.
struct StoredKey {
    id: u32,
    /// Unix seconds.
    created: u64,
    material: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

/// The master keys, newest first, at most [`DEFAULT_KEPT_KEYS`] (the
/// current key and the previous ones whose cookies are still accepted).
pub struct MasterKeyFile {
    keys: Vec<StoredKey>,
}

/// Why a master key text was refused (no key of it is kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MasterKeyFileError {
    /// No key at all.
    #[error("no key")]
    Empty,
    /// More than [`DEFAULT_KEPT_KEYS`] keys.
    #[error("more than {DEFAULT_KEPT_KEYS} keys")]
    TooMany,
    /// Line `line` (from 1) is not `KEY_ID CREATED MATERIAL`.
    #[error("line {line}: not KEY_ID CREATED MATERIAL")]
    Line {
        /// The line, counted from 1.
        line: usize,
    },
    /// Line `line` repeats an earlier key id.
    #[error("line {line}: a key id seen before")]
    DuplicateId {
        /// The line, counted from 1.
        line: usize,
    },
}

impl MasterKeyFile {
    /// One fresh key from `rng`, created at `now` (Unix seconds).
    pub fn fresh<R: RngCore + CryptoRng>(rng: &mut R, now: u64) -> Self {
        let mut keys = Self { keys: Vec::new() };
        keys.rotate(rng, now);
        keys
    }

    /// A fresh current key from `rng`, created at `now`, with an id none of
    /// the kept keys has; the oldest beyond [`DEFAULT_KEPT_KEYS`] is
    /// dropped (and zeroed). Returns the new key's id.
    pub fn rotate<R: RngCore + CryptoRng>(&mut self, rng: &mut R, now: u64) -> u32 {
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

    /// Seconds since the current key was made, at `now` (0 if it was made
    /// later, by a clock that has since gone back).
    pub fn current_age(&self, now: u64) -> u64 {
        self.keys
            .first()
            .map_or(u64::MAX, |key| now.saturating_sub(key.created))
    }

    /// The ids of the keys, newest first.
    pub fn key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|key| key.id)
    }

    /// The keys as the NTP server seals and opens cookies with them.
    pub fn cookie_keys(&self) -> CookieKeys {
        let mut oldest_first = self.keys.iter().rev();
        let mut keys = match oldest_first.next() {
            Some(first) => CookieKeys::new(first.id, &first.material),
            // Not reached: every constructor leaves at least one key.
            None => CookieKeys::new(0, &[0; MASTER_KEY_LEN]),
        };
        for key in oldest_first {
            // Distinct ids, by construction and by `parse`: never refused.
            let _ = keys.rotate(key.id, &key.material);
        }
        keys
    }

    /// The keys of a text written by [`to_text`](Self::to_text).
    ///
    /// # Errors
    ///
    /// [`MasterKeyFileError`]: a line that is not `KEY_ID CREATED
    /// MATERIAL`, a repeated id, no key, or too many.
    pub fn parse(text: &str) -> Result<Self, MasterKeyFileError> {
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let line_number = index.saturating_add(1);
            let key = parse_line(line).ok_or(MasterKeyFileError::Line { line: line_number })?;
            if keys.iter().any(|kept: &StoredKey| kept.id == key.id) {
                return Err(MasterKeyFileError::DuplicateId { line: line_number });
            }
            if keys.len() == DEFAULT_KEPT_KEYS {
                return Err(MasterKeyFileError::TooMany);
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(MasterKeyFileError::Empty);
        }
        Ok(Self { keys })
    }

    /// The text of the keys, in one buffer sized for it up front (no
    /// reallocation leaves a copy of a secret behind) and zeroed when
    /// dropped.
    pub fn to_text(&self) -> Zeroizing<String> {
        // "KEY_ID CREATED MATERIAL\n": 8 + 1 + at most 20 + 1 + 64 + 1.
        let line = 8 + 1 + 20 + 1 + 2 * MASTER_KEY_LEN + 1;
        let mut text = Zeroizing::new(String::with_capacity(line * self.keys.len()));
        let mut material = Zeroizing::new([0u8; 2 * MASTER_KEY_LEN]);
        for key in &self.keys {
            // Encoding into a slice of the right length cannot fail.
            let _ = hex::encode_to_slice(key.material.as_ref(), material.as_mut());
            let hex = core::str::from_utf8(material.as_ref()).unwrap_or_default();
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{:08x} {} {hex}", key.id, key.created);
        }
        text
    }
}

/// One line, `KEY_ID CREATED MATERIAL`.
fn parse_line(line: &str) -> Option<StoredKey> {
    let mut fields = line.split_whitespace();
    let id = fields.next().filter(|field| field.len() == 8)?;
    let id = u32::from_str_radix(id, 16).ok()?;
    let created = fields.next()?.parse().ok()?;
    let mut material = Zeroizing::new([0; MASTER_KEY_LEN]);
    hex::decode_to_slice(fields.next()?, material.as_mut()).ok()?;
    if fields.next().is_some() {
        return None;
    }
    Some(StoredKey {
        id,
        created,
        material,
    })
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::vec;

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(3)
    }

    #[test]
    fn keys_rotate_and_keep_the_last_three() {
        let mut rng = rng();
        let mut keys = MasterKeyFile::fresh(&mut rng, 100);
        let mut ids = vec![keys.cookie_keys().current_key_id()];
        for day in 1..=4 {
            ids.push(keys.rotate(&mut rng, 100 + day * 86_400));
        }
        assert_eq!(keys.current_age(100 + 4 * 86_400 + 5), 5);
        assert_eq!(keys.current_age(0), 0);
        let held: Vec<u32> = keys.cookie_keys().key_ids().collect();
        // Newest first, the three last.
        let want: Vec<u32> = ids.iter().rev().take(3).copied().collect();
        assert_eq!(held, want);
        assert_eq!(keys.key_ids().collect::<Vec<_>>(), want);
    }

    #[test]
    fn the_text_reads_back_as_the_same_keys() {
        let mut rng = rng();
        let mut keys = MasterKeyFile::fresh(&mut rng, 1_000);
        keys.rotate(&mut rng, 2_000);
        let text = keys.to_text();
        let back = MasterKeyFile::parse(&text).unwrap();
        assert_eq!(back.current_age(2_010), 10);
        assert_eq!(
            back.key_ids().collect::<Vec<_>>(),
            keys.key_ids().collect::<Vec<_>>()
        );
        assert_eq!(*back.to_text(), *text);
    }

    #[test]
    fn bad_texts_are_refused() {
        let good = format!("{:08x} 5 {}", 7, "ab".repeat(32));
        assert!(MasterKeyFile::parse(&good).is_ok());
        assert!(MasterKeyFile::parse(&format!("\n{good}\n\n")).is_ok());
        let four = (1..=4)
            .map(|id| format!("{id:08x} 5 {}", "ab".repeat(32)))
            .collect::<Vec<_>>()
            .join("\n");
        for (bad, error) in [
            (String::new(), MasterKeyFileError::Empty),
            (
                format!("{:07x} 5 {}", 7, "ab".repeat(32)),
                MasterKeyFileError::Line { line: 1 },
            ),
            (
                format!("{:08x} x {}", 7, "ab".repeat(32)),
                MasterKeyFileError::Line { line: 1 },
            ),
            (
                format!("{:08x} 5 {}", 7, "ab".repeat(31)),
                MasterKeyFileError::Line { line: 1 },
            ),
            (
                format!("{:08x} 5 {}", 7, "zz".repeat(32)),
                MasterKeyFileError::Line { line: 1 },
            ),
            (
                format!("{good} extra"),
                MasterKeyFileError::Line { line: 1 },
            ),
            (
                format!("{good}\n{good}"),
                MasterKeyFileError::DuplicateId { line: 2 },
            ),
            (four, MasterKeyFileError::TooMany),
        ] {
            assert_eq!(MasterKeyFile::parse(&bad).err(), Some(error), "{bad}");
        }
    }
}

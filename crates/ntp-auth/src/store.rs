//! A fixed-capacity key store keyed by key id.

use crate::key::{Key, KeyId, KeyType, Secret};
use crate::mac::split_mac;
use crate::{AuthError, InsertError, StoreError};

/// The default capacity of a [`KeyStore`]: 64 keys. Deployments
/// authenticate with a handful of keys (one per server or client group);
/// 64 leaves room while keeping the store a few kilobytes on the stack or
/// in a `static`. Pick another capacity with `KeyStore::<N>`.
pub const DEFAULT_CAPACITY: usize = 64;

/// Keys by key id, at most `N` of them, with no allocation.
///
/// The keys are kept sorted by id, so a lookup is a binary search
/// (O(log N), no allocation): the packet path ([`KeyStore::sign`],
/// [`KeyStore::verify`]) never allocates. Inserting is O(N), done when
/// keys are loaded. Dropping the store zeroes every key's secret.
///
/// # Example
///
/// ```
/// use ntp_auth::{Key, KeyId, KeyStore, KeyType};
///
/// # fn main() -> Result<(), Box<dyn core::error::Error>> {
/// let id = KeyId::new(1).ok_or("zero")?;
/// let mut keys: KeyStore = KeyStore::new();
/// keys.insert(Key::new(id, KeyType::Aes128Cmac, &[7; 16])?)?;
///
/// // A client request: header, then the MAC appended in place.
/// let mut buffer = [0_u8; 68];
/// buffer[0] = 0x23; // LI 0, version 4, mode 3
/// let len = keys.sign_in_place(id, &mut buffer, 48)?;
/// assert_eq!(len, 48 + 4 + 16);
///
/// // The server finds the key id in the MAC and checks the digest.
/// assert_eq!(keys.verify(&buffer[..len])?, id);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStore<const N: usize = DEFAULT_CAPACITY> {
    /// `slots[..len]` are `Some`, sorted by key id; the rest are `None`.
    slots: [Option<Key>; N],
    len: usize,
}

impl<const N: usize> Default for KeyStore<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> KeyStore<N> {
    /// An empty store.
    #[inline]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            slots: [const { None }; N],
            len: 0,
        }
    }

    /// The number of keys.
    #[inline]
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the store holds no key.
    #[inline]
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most keys the store can hold, `N`.
    #[inline]
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    fn used(&self) -> &[Option<Key>] {
        self.slots.get(..self.len).unwrap_or(&[])
    }

    fn search(&self, id: KeyId) -> Result<usize, usize> {
        self.used()
            .binary_search_by_key(&Some(id), |slot| slot.as_ref().map(Key::id))
    }

    /// Adds `key`.
    ///
    /// `key` is moved in, and a move can leave an unwiped copy of its
    /// secret behind (see [`Key`]); [`insert_with`](Self::insert_with)
    /// builds the key in the store instead.
    ///
    /// # Errors
    ///
    /// [`StoreError::Duplicate`] if a key with the same id is there (the
    /// store is unchanged), [`StoreError::Full`] if the store is full.
    pub fn insert(&mut self, key: Key) -> Result<(), StoreError> {
        let slot = self.free_slot(key.id())?;
        *slot = Some(key);
        self.len += 1;
        Ok(())
    }

    /// Adds the key `id` of type `key_type` with secret `material`, as
    /// [`insert`](Self::insert) of [`Key::new`] would, but builds the key
    /// where it stays in the store: its secret is copied once, from
    /// `material` into the store, and never moved (a move can leave an
    /// unwiped copy behind; see [`Key`]). The key-file parsers add their
    /// keys this way.
    ///
    /// # Errors
    ///
    /// As [`Key::new`] ([`InsertError::Key`]), checked first, then as
    /// [`insert`](Self::insert) ([`InsertError::Store`]). The store is
    /// unchanged on error.
    pub fn insert_with(
        &mut self,
        id: KeyId,
        key_type: KeyType,
        material: &[u8],
    ) -> Result<(), InsertError> {
        Secret::check(key_type, material)?;
        let slot = self.free_slot(id)?;
        // A zero secret is moved into the slot, then filled there.
        slot.insert(Key::zeroed(id, key_type, material.len()))
            .fill(material);
        self.len += 1;
        Ok(())
    }

    /// Makes room for the key `id` at its place in id order and returns
    /// that slot, empty. The caller fills it and counts it in `len`.
    fn free_slot(&mut self, id: KeyId) -> Result<&mut Option<Key>, StoreError> {
        let at = match self.search(id) {
            Ok(_) => return Err(StoreError::Duplicate(id)),
            Err(at) => at,
        };
        let full = StoreError::Full { capacity: N };
        let tail = self.slots.get_mut(at..=self.len).ok_or(full)?;
        // The free slot at `len` moves to `at`.
        tail.rotate_right(1);
        tail.first_mut().ok_or(full)
    }

    /// Removes every key; their secrets are zeroed where they lie.
    pub fn clear(&mut self) {
        for slot in &mut self.slots {
            // Assigning drops the key in place, which zeroes its secret.
            *slot = None;
        }
        self.len = 0;
    }

    /// Removes the key `id` and returns whether it was there. Its secret
    /// is zeroed.
    pub fn remove(&mut self, id: KeyId) -> bool {
        let Ok(at) = self.search(id) else {
            return false;
        };
        if let Some(tail) = self.slots.get_mut(at..self.len) {
            if let Some(slot) = tail.first_mut() {
                *slot = None;
            }
            tail.rotate_left(1);
        }
        self.len -= 1;
        true
    }

    /// The key `id`, if present.
    #[inline]
    #[must_use]
    pub fn get(&self, id: KeyId) -> Option<&Key> {
        let at = self.search(id).ok()?;
        self.used().get(at)?.as_ref()
    }

    /// The key with wire key id `id` (0 never matches).
    #[inline]
    #[must_use]
    pub fn get_raw(&self, id: u32) -> Option<&Key> {
        self.get(KeyId::new(id)?)
    }

    /// The keys in ascending key id order.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.used().iter().filter_map(Option::as_ref)
    }

    /// Writes the MAC of `packet` with key `key_id` into the front of
    /// `out` and returns its length; see [`Key::sign`].
    ///
    /// # Errors
    ///
    /// [`AuthError::UnknownKey`], or as [`Key::sign`].
    #[inline]
    pub fn sign(&self, key_id: KeyId, packet: &[u8], out: &mut [u8]) -> Result<usize, AuthError> {
        self.key(key_id)?.sign(packet, out)
    }

    /// Appends the MAC with key `key_id` to the packet in
    /// `buffer[..packet_len]` and returns the new length; see
    /// [`Key::sign_in_place`].
    ///
    /// # Errors
    ///
    /// [`AuthError::UnknownKey`], or as [`Key::sign_in_place`].
    #[inline]
    pub fn sign_in_place(
        &self,
        key_id: KeyId,
        buffer: &mut [u8],
        packet_len: usize,
    ) -> Result<usize, AuthError> {
        self.key(key_id)?.sign_in_place(buffer, packet_len)
    }

    /// Checks the MAC at the end of `packet` with the key its key id names
    /// and returns that key id: what a server does with a request before
    /// answering it with the same key (RFC 5905, section 9.2).
    ///
    /// # Errors
    ///
    /// As [`split_mac`](crate::split_mac), then [`AuthError::UnknownKey`],
    /// then as [`Key::verify_mac`].
    pub fn verify(&self, packet: &[u8]) -> Result<KeyId, AuthError> {
        let (covered, version, mac) = split_mac(packet)?;
        let key = self
            .get_raw(mac.key_id)
            .ok_or(AuthError::UnknownKey(mac.key_id))?;
        key.verify_mac(covered, version, &mac)?;
        Ok(key.id())
    }

    fn key(&self, id: KeyId) -> Result<&Key, AuthError> {
        self.get(id).ok_or(AuthError::UnknownKey(id.get()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::{KeyError, KeyType};

    fn key(id: u32) -> Key {
        Key::new(KeyId::new(id).unwrap(), KeyType::Md5, b"k").unwrap()
    }

    #[test]
    fn keys_stay_sorted_through_inserts_and_removes() {
        let mut store: KeyStore<4> = KeyStore::new();
        for id in [30, 10, 40, 20] {
            store.insert(key(id)).unwrap();
        }
        assert_eq!(store.insert(key(50)), Err(StoreError::Full { capacity: 4 }));
        let ids: std::vec::Vec<u32> = store.iter().map(|k| k.id().get()).collect();
        assert_eq!(ids, [10, 20, 30, 40]);
        assert!(store.remove(KeyId::new(20).unwrap()));
        assert!(!store.remove(KeyId::new(20).unwrap()));
        assert_eq!(
            store.insert(key(10)),
            Err(StoreError::Duplicate(KeyId::new(10).unwrap()))
        );
        store.insert(key(25)).unwrap();
        let ids: std::vec::Vec<u32> = store.iter().map(|k| k.id().get()).collect();
        assert_eq!(ids, [10, 25, 30, 40]);
        assert!(store.get_raw(0).is_none());
        assert!(store.get_raw(25).is_some());
        assert_eq!(store.len(), 4);
        assert_eq!(store.capacity(), 4);
        assert!(!store.is_empty());
    }

    #[test]
    fn insert_with_builds_the_key_insert_of_key_new_would() {
        let materials: [&[u8]; 4] = [b"k", &[0xa5; 16], &[0x5a; 32], &[7; crate::MAX_KEY_LEN]];
        let mut by_value: KeyStore<32> = KeyStore::new();
        let mut in_place: KeyStore<32> = KeyStore::new();
        let mut id = 0;
        // Ids out of order, so that keys already in the store are shifted.
        for key_type in KeyType::ALL.into_iter().rev() {
            for material in materials {
                id += 1;
                let key_id = KeyId::new(100 - id).unwrap();
                let by_new = Key::new(key_id, key_type, material);
                let added = in_place.insert_with(key_id, key_type, material);
                match by_new {
                    Ok(key) => {
                        by_value.insert(key).unwrap();
                        assert_eq!(added, Ok(()), "{key_type} {}", material.len());
                    }
                    Err(error) => assert_eq!(added, Err(InsertError::Key(error))),
                }
            }
        }
        // Every length suits the five hash types; one each the AES types.
        assert_eq!(in_place.len(), 5 * 4 + 2);
        assert_eq!(in_place, by_value);
        // AES-256 came first: ids 99 to 96, only the 32-octet key (97).
        assert!(in_place.get_raw(99).is_none());
        let aes = in_place.get_raw(97).unwrap();
        assert_eq!(
            (aes.key_type(), aes.secret_len()),
            (KeyType::Aes256Cmac, 32)
        );
    }

    #[test]
    fn insert_with_checks_the_key_before_the_store_and_changes_nothing_on_error() {
        let id = |n| KeyId::new(n).unwrap();
        let mut store: KeyStore<2> = KeyStore::new();
        store.insert_with(id(2), KeyType::Sha1, b"two").unwrap();
        store.insert_with(id(1), KeyType::Md5, b"one").unwrap();
        let before = store.clone();
        let cases: [(u32, KeyType, &[u8], InsertError); 5] = [
            // A bad key on a duplicate id of a full store: the key first.
            (
                1,
                KeyType::Aes128Cmac,
                &[0; 3],
                InsertError::Key(KeyError::WrongLength {
                    key_type: KeyType::Aes128Cmac,
                    len: 3,
                }),
            ),
            (3, KeyType::Md5, b"", InsertError::Key(KeyError::Empty)),
            (
                3,
                KeyType::Sha512,
                &[1; crate::MAX_KEY_LEN + 1],
                InsertError::Key(KeyError::TooLong {
                    len: crate::MAX_KEY_LEN + 1,
                }),
            ),
            // A duplicate of a full store: the duplicate first, as insert.
            (
                1,
                KeyType::Md5,
                b"k",
                InsertError::Store(StoreError::Duplicate(id(1))),
            ),
            (
                3,
                KeyType::Md5,
                b"k",
                InsertError::Store(StoreError::Full { capacity: 2 }),
            ),
        ];
        for (key_id, key_type, material, error) in cases {
            assert_eq!(
                store.insert_with(id(key_id), key_type, material),
                Err(error)
            );
            assert_eq!(store, before);
        }
        assert_eq!(
            std::string::ToString::to_string(&InsertError::Store(StoreError::Full { capacity: 2 })),
            "the key store is full (2 keys)"
        );
    }

    #[test]
    fn clear_removes_every_key_and_the_store_is_usable_again() {
        let mut store: KeyStore<3> = KeyStore::new();
        for n in [3, 1, 2] {
            store.insert(key(n)).unwrap();
        }
        store.clear();
        assert!(store.is_empty());
        assert_eq!(store.iter().count(), 0);
        assert!(store.get_raw(1).is_none());
        assert_eq!(store, KeyStore::new());
        for n in [6, 4, 5] {
            store.insert(key(n)).unwrap();
        }
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn a_zero_capacity_store_is_always_full() {
        let mut store: KeyStore<0> = KeyStore::new();
        assert_eq!(store.insert(key(1)), Err(StoreError::Full { capacity: 0 }));
        assert!(store.get_raw(1).is_none());
    }

    #[test]
    fn unknown_keys_are_refused_when_signing() {
        let store: KeyStore<1> = KeyStore::default();
        assert_eq!(
            store.sign(KeyId::new(9).unwrap(), &[0x23; 48], &mut [0; 24]),
            Err(AuthError::UnknownKey(9))
        );
    }
}

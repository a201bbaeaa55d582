//! The server's symmetric keys and how a response is sealed: plain, with
//! a MAC, or with a crypto-NAK (RFC 5905, sections 7.3 and 9.2).

use alloc::boxed::Box;
use alloc::vec::Vec;

use ntp_auth::{CRYPTO_NAK_LEN, KEY_ID_LEN, Key, KeyId, KeyStore};
use ntp_proto::{HEADER_LEN, Mac};

/// The keys a server signs and verifies with, sorted by key id and looked
/// up by binary search: nothing on the packet path allocates.
#[derive(Clone, Debug, Default)]
pub(crate) struct Keys(Box<[Key]>);

impl Keys {
    /// A copy of `store`'s keys (the caller's store keeps and zeroes its
    /// own).
    ///
    /// The table is allocated at its final size, so no reallocation leaves
    /// a copy of a secret behind in freed memory.
    pub(crate) fn from_store<const N: usize>(store: &KeyStore<N>) -> Self {
        let mut keys = Vec::with_capacity(store.len());
        keys.extend(store.iter().cloned());
        // `KeyStore::iter` yields the keys sorted by id, so this never
        // sorts (sorting would leave copies of secrets on the stack); it
        // keeps the binary search right should that promise ever change.
        if !keys.is_sorted_by_key(Key::id) {
            keys.sort_unstable_by_key(Key::id);
        }
        Self(keys.into_boxed_slice())
    }

    /// The key with wire key id `id`, if held (key id 0, a crypto-NAK's,
    /// never is).
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<&Key> {
        let Self(keys) = self;
        let at = keys.binary_search_by_key(&id, |key| key.id().get()).ok()?;
        keys.get(at)
    }

    /// The key ids, in ascending order.
    pub(crate) fn ids(&self) -> impl ExactSizeIterator<Item = KeyId> + '_ {
        self.0.iter().map(Key::id)
    }

    /// Checks a request's MAC `mac`, `covered` being the octets it
    /// covers: [`MacCheck::Verified`] with the seal of the answer (a MAC
    /// with the same key) if it verifies, [`MacCheck::Failed`] if the
    /// digest has the wrong length for the key in this version or does
    /// not match, [`MacCheck::NoKey`], without any cryptography, if the
    /// key id is not held (RFC 5905, section 9.2: the server answers with
    /// the key the request named; appendix A.5.1: `A_ERROR` otherwise).
    #[inline]
    pub(crate) fn verify(&self, covered: &[u8], version: u8, mac: &Mac<'_>) -> MacCheck {
        let Some(key) = self.get(mac.key_id) else {
            return MacCheck::NoKey;
        };
        match key.verify_mac(covered, version, mac) {
            Ok(()) => MacCheck::Verified(Seal::Mac {
                key_id: key.id(),
                len: key.mac_len(version),
            }),
            Err(_) => MacCheck::Failed,
        }
    }
}

/// The outcome of [`Keys::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MacCheck {
    /// The MAC verifies: the answer is sealed so.
    Verified(Seal),
    /// A key of that id is held and the MAC does not verify with it.
    Failed,
    /// No key of that id: nothing was computed.
    NoKey,
}

/// What follows the 48-octet header of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seal {
    /// Nothing: an unauthenticated response.
    Plain,
    /// A MAC (key id and digest, `len` octets) with key `key_id`, written
    /// by [`Server::finish`](crate::Server::finish) once the transmit
    /// timestamp it covers is known.
    Mac {
        /// The key the request was signed with.
        key_id: KeyId,
        /// Key id and digest, in octets.
        len: usize,
    },
    /// A crypto-NAK: 4 zero octets (RFC 5905, section 7.3).
    CryptoNak,
}

impl Seal {
    /// The length of what follows the header.
    #[inline]
    pub(crate) const fn trailer_len(self) -> usize {
        match self {
            Self::Plain => 0,
            Self::Mac { len, .. } => len,
            Self::CryptoNak => CRYPTO_NAK_LEN,
        }
    }

    /// The length of the whole response, header included.
    #[inline]
    pub(crate) const fn response_len(self) -> usize {
        HEADER_LEN + self.trailer_len()
    }

    /// The key that signs the response, if any.
    #[inline]
    pub(crate) const fn key_id(self) -> Option<KeyId> {
        match self {
            Self::Mac { key_id, .. } => Some(key_id),
            Self::Plain | Self::CryptoNak => None,
        }
    }

    /// Writes the octets after the header into `trailer` (exactly
    /// `response_len() - 48` octets long): the crypto-NAK, or the key id
    /// followed by zeros in place of the digest, which
    /// [`Server::finish`](crate::Server::finish) computes. A response sent
    /// without `finish` thus never carries stale buffer contents.
    #[inline]
    pub(crate) fn write(self, trailer: &mut [u8]) {
        match self {
            // The common case: nothing to write, no call.
            Self::Plain => {}
            Self::CryptoNak => trailer.fill(0),
            Self::Mac { key_id, .. } => {
                if let Some((id, digest)) = trailer.split_first_chunk_mut::<KEY_ID_LEN>() {
                    *id = key_id.get().to_be_bytes();
                    digest.fill(0);
                }
            }
        }
    }
}

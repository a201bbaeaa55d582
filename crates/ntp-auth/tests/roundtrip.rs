//! Sign then verify for every key type and NTP version, and any single bit
//! flip in the signed packet makes verification fail.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "tests"
)]

use ntp_auth::{Key, KeyId, KeyStore, KeyType, MAX_KEY_LEN};
use proptest::prelude::*;

fn key_type() -> impl Strategy<Value = KeyType> {
    prop::sample::select(KeyType::ALL.to_vec())
}

/// A key of `key_type` with a secret of a length it accepts.
fn key_strategy() -> impl Strategy<Value = (KeyType, u32, Vec<u8>)> {
    (key_type(), 1..=u32::MAX).prop_flat_map(|(key_type, id)| {
        let len = key_type
            .required_key_len()
            .map_or(1..=MAX_KEY_LEN, |len| len..=len);
        (
            Just(key_type),
            Just(id),
            prop::collection::vec(any::<u8>(), len),
        )
    })
}

/// A 48-octet header with version 1 to 4, and for NTPv4 optionally one
/// extension field before the MAC (RFC 7822).
fn packet_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::array::uniform32(any::<u8>()),
        prop::array::uniform16(any::<u8>()),
        1_u8..=4,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 12..=28),
    )
        .prop_map(|(a, b, version, with_field, value)| {
            let mut packet = Vec::with_capacity(128);
            packet.extend_from_slice(&a);
            packet.extend_from_slice(&b);
            packet[0] = (packet[0] & 0b1100_0111) | (version << 3);
            if version == 4 && with_field {
                let len = (4 + value.len()).div_ceil(4) * 4;
                packet.extend_from_slice(&0x7777_u16.to_be_bytes());
                packet.extend_from_slice(&(len as u16).to_be_bytes());
                packet.extend_from_slice(&value);
                packet.resize(48 + len, 0);
            }
            packet
        })
}

fn sign(key: &Key, packet: &[u8]) -> Vec<u8> {
    let mut buffer = packet.to_vec();
    buffer.resize(packet.len() + 4 + 64, 0);
    let len = key.sign_in_place(&mut buffer, packet.len()).unwrap();
    buffer.truncate(len);
    buffer
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips((key_type, id, secret) in key_strategy(), packet in packet_strategy()) {
        let id = KeyId::new(id).unwrap();
        let mut store: KeyStore<2> = KeyStore::new();
        store.insert(Key::new(id, key_type, &secret).unwrap()).unwrap();
        let key = store.get(id).unwrap();
        let signed = sign(key, &packet);
        let version = (packet[0] >> 3) & 7;
        prop_assert_eq!(signed.len(), packet.len() + key.mac_len(version));
        prop_assert_eq!(&signed[..packet.len()], &packet[..]);
        prop_assert_eq!(store.verify(&signed), Ok(id));
        prop_assert_eq!(key.verify(&signed), Ok(()));
    }

    #[test]
    fn any_single_bit_flip_fails(
        (key_type, id, secret) in key_strategy(),
        packet in packet_strategy(),
        bit in any::<prop::sample::Index>(),
    ) {
        let id = KeyId::new(id).unwrap();
        let mut store: KeyStore<1> = KeyStore::new();
        store.insert(Key::new(id, key_type, &secret).unwrap()).unwrap();
        let mut signed = sign(store.get(id).unwrap(), &packet);
        let bit = bit.index(signed.len() * 8);
        signed[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(store.verify(&signed).is_err(), "bit {} of {:?}", bit, key_type);
    }

    #[test]
    fn any_single_bit_flip_of_the_key_fails(
        (key_type, id, secret) in key_strategy(),
        packet in packet_strategy(),
        bit in any::<prop::sample::Index>(),
    ) {
        let id = KeyId::new(id).unwrap();
        let signed = sign(&Key::new(id, key_type, &secret).unwrap(), &packet);
        let mut changed = secret.clone();
        let bit = bit.index(changed.len() * 8);
        changed[bit / 8] ^= 1 << (bit % 8);
        let other = Key::new(id, key_type, &changed).unwrap();
        prop_assert!(other.verify(&signed).is_err());
    }

    /// Verification never panics on arbitrary input.
    #[test]
    fn verify_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let store: KeyStore = KeyStore::from_chrony_keys("1 MD5 k\n2 AES128 HEX:000102030405060708090a0b0c0d0e0f").unwrap();
        let _ = store.verify(&bytes);
    }
}

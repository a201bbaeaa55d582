//! Any octets through `KeyStore::verify` with one key of every type: it
//! never panics, and a packet it accepts carries exactly the MAC that
//! signing its covered octets again produces. Then the first 48 octets,
//! signed with a key the input picks, verify, and stop verifying once any
//! one bit the input picks is flipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_auth::{Key, KeyId, KeyStore, KeyType, split_mac};

fn store() -> KeyStore<8> {
    let mut store = KeyStore::new();
    for (index, key_type) in KeyType::ALL.into_iter().enumerate() {
        let id = KeyId::new(u32::try_from(index).expect("small") + 1).expect("non-zero");
        let secret = [u8::try_from(index).expect("small"); 32];
        let len = key_type.required_key_len().unwrap_or(20);
        store
            .insert(Key::new(id, key_type, &secret[..len]).expect("valid key"))
            .expect("room");
    }
    store
}

fuzz_target!(|data: &[u8]| {
    let store = store();

    if let Ok(id) = store.verify(data) {
        let (covered, _, mac) = split_mac(data).expect("verified, so it splits");
        assert_eq!(mac.key_id, id.get());
        let mut out = [0; 68];
        let len = store.sign(id, covered, &mut out).expect("sign");
        assert_eq!(out[..len], data[covered.len()..]);
    }

    let Some((header, rest)) = data.split_first_chunk::<48>() else {
        return;
    };
    let pick = rest.first().copied().unwrap_or(0);
    let id = KeyId::new(u32::from(pick) % 7 + 1).expect("non-zero");
    let mut buffer = [0; 48 + 68];
    buffer[..48].copy_from_slice(header);
    let len = store.sign_in_place(id, &mut buffer, 48).expect("room");
    assert_eq!(store.verify(&buffer[..len]), Ok(id));

    let bit = rest
        .get(1..3)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        % (len * 8);
    buffer[bit / 8] ^= 1 << (bit % 8);
    assert!(store.verify(&buffer[..len]).is_err(), "bit {bit} flipped");
});

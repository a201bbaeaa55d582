//! The MAC'd packets chrony 4.3 exchanged in `shared/vectors/packets.txt`
//! verify with the keys written beside them, and stop verifying when any
//! octet of the packet or of the key changes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use ntp_auth::{AuthError, Key, KeyId, KeyStore, KeyType};

/// The keys of the captures, in chrony's key-file format.
const CHRONY_KEYS: &str = "\
1 MD5 HEX:00112233445566778899AABBCCDDEEFF
2 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233
3 AES128 HEX:000102030405060708090A0B0C0D0E0F
";

/// (comment to find the packet, key id, key type, secret)
const CASES: [(&str, u32, KeyType, &str); 6] = [
    (
        "client request, symmetric key id 1 = MD5",
        1,
        KeyType::Md5,
        "00112233445566778899AABBCCDDEEFF",
    ),
    (
        "server response, key id 1 ",
        1,
        KeyType::Md5,
        "00112233445566778899AABBCCDDEEFF",
    ),
    (
        "client request, symmetric key id 2 = SHA1",
        2,
        KeyType::Sha1,
        "00112233445566778899AABBCCDDEEFF00112233",
    ),
    (
        "server response, key id 2 ",
        2,
        KeyType::Sha1,
        "00112233445566778899AABBCCDDEEFF00112233",
    ),
    (
        "client request, symmetric key id 3 = AES128",
        3,
        KeyType::Aes128Cmac,
        "000102030405060708090A0B0C0D0E0F",
    ),
    (
        "server response, key id 3 ",
        3,
        KeyType::Aes128Cmac,
        "000102030405060708090A0B0C0D0E0F",
    ),
];

fn id(id: u32) -> KeyId {
    KeyId::new(id).unwrap()
}

fn store() -> KeyStore {
    KeyStore::from_chrony_keys(CHRONY_KEYS).unwrap()
}

#[test]
fn every_capture_verifies_with_its_key() {
    let keys = store();
    for (needle, key_id, key_type, _) in CASES {
        let packet = ntp_vectors::find(needle);
        assert_eq!(keys.verify(&packet), Ok(id(key_id)), "{needle}");
        let key = keys.get(id(key_id)).unwrap();
        assert_eq!(key.key_type(), key_type);
        assert_eq!(key.verify(&packet), Ok(()), "{needle}");
    }
}

#[test]
fn signing_the_header_reproduces_chronys_mac() {
    let keys = store();
    for (needle, key_id, _, _) in CASES {
        let packet = ntp_vectors::find(needle);
        let mut mac = [0xa5; 64];
        let len = keys.sign(id(key_id), &packet[..48], &mut mac).unwrap();
        assert_eq!(&mac[..len], &packet[48..], "{needle}");

        let mut buffer = [0xa5; 128];
        buffer[..48].copy_from_slice(&packet[..48]);
        let total = keys.sign_in_place(id(key_id), &mut buffer, 48).unwrap();
        assert_eq!(&buffer[..total], &packet[..], "{needle}");
    }
}

#[test]
fn any_changed_octet_of_the_packet_fails() {
    let keys = store();
    for (needle, _, _, _) in CASES {
        let packet = ntp_vectors::find(needle);
        for at in 0..packet.len() {
            for delta in [0x01, 0x80, 0xff] {
                let mut changed = packet.clone();
                changed[at] ^= delta;
                assert!(
                    keys.verify(&changed).is_err(),
                    "{needle}: octet {at} ^ {delta:#x} still verifies"
                );
            }
        }
    }
}

#[test]
fn any_changed_octet_of_the_key_fails() {
    for (needle, key_id, key_type, secret) in CASES {
        let packet = ntp_vectors::find(needle);
        let secret = hex::decode(secret).unwrap();
        for at in 0..secret.len() {
            let mut changed = secret.clone();
            changed[at] ^= 0x01;
            let key = Key::new(id(key_id), key_type, &changed).unwrap();
            assert_eq!(
                key.verify(&packet),
                Err(AuthError::BadMac { key_id: id(key_id) }),
                "{needle}: key octet {at}"
            );
        }
    }
}

#[test]
fn a_truncated_mac_or_a_missing_key_fails_with_its_reason() {
    let keys = store();
    let packet = ntp_vectors::find("client request, symmetric key id 2 = SHA1");
    // Cut the SHA-1 MAC to 16 octets: it parses as a MAC, of the wrong length.
    assert_eq!(
        keys.verify(&packet[..packet.len() - 4]),
        Err(AuthError::BadLength {
            key_id: id(2),
            expected: 20,
            found: 16
        })
    );
    assert_eq!(keys.verify(&packet[..48]), Err(AuthError::NoMac));
    assert!(matches!(
        keys.verify(&packet[..40]),
        Err(AuthError::Malformed(_))
    ));
    let only_md5: KeyStore =
        KeyStore::from_chrony_keys(CHRONY_KEYS.lines().next().unwrap()).unwrap();
    assert_eq!(only_md5.verify(&packet), Err(AuthError::UnknownKey(2)));
    // A client that configured key 1 refuses a reply MAC'd with key 2.
    assert_eq!(
        keys.get(id(1)).unwrap().verify(&packet),
        Err(AuthError::WrongKey {
            expected: id(1),
            found: 2
        })
    );
}

#[test]
fn the_same_keys_in_ntpds_format_verify_too() {
    let keys: KeyStore = KeyStore::from_ntpd_keys(
        "1 MD5 00112233445566778899AABBCCDDEEFF  # hex: longer than 20 characters\n\
         2 SHA1 00112233445566778899AABBCCDDEEFF00112233\n\
         3 AES128CMAC 000102030405060708090A0B0C0D0E0F\n",
    )
    .unwrap();
    for (needle, key_id, _, _) in CASES {
        assert_eq!(keys.verify(&ntp_vectors::find(needle)), Ok(id(key_id)));
    }
}

//! Any octets: the view, `Repr::parse`, the extension-field and MAC walk.
//! A parsed header emits back to the same 48 octets and re-parses to an
//! equal `Repr`; the walk never panics and accounts for every octet it
//! accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp_proto::{HEADER_LEN, Packet, Repr, TrailerItem};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        assert!(data.len() < HEADER_LEN);
        return;
    };
    // Getters are total on a checked view.
    let _ = (
        packet.leap_indicator(),
        packet.mode(),
        packet.stratum().kind(),
        packet.reference_id().kind(packet.stratum()),
        packet.reference_id().display(packet.stratum()).to_string(),
    );

    match Repr::parse(&packet) {
        Ok(repr) => {
            let mut out = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]))
                .expect("emit into buffer_len() octets");
            assert_eq!(out[..], data[..HEADER_LEN]);
            let again = Repr::parse(&Packet::new_checked(&out[..]).expect("48 octets"))
                .expect("re-parse of emitted header");
            assert_eq!(again, repr);
        }
        Err(_) => assert!(!matches!(packet.version(), 1..=4)),
    }

    let mut end = HEADER_LEN;
    let mut finished = false;
    for item in packet.extension_fields() {
        assert!(!finished, "an item after the MAC");
        match item {
            Ok(TrailerItem::Field(field)) => {
                assert_eq!(field.offset(), end);
                assert!(field.len() >= 16 && field.len() % 4 == 0);
                end += field.len();
            }
            Ok(TrailerItem::Mac(mac)) => {
                assert_eq!(mac.offset, end);
                end += 4 + mac.digest.len();
                finished = true;
            }
            Ok(TrailerItem::CryptoNak { offset, .. }) => {
                assert_eq!(offset, end);
                end += 4;
                finished = true;
            }
            Err(_) => {
                end = data.len();
                finished = true;
            }
            Ok(other) => panic!("unknown trailer item {other:?}"),
        }
        assert!(end <= data.len());
    }
    assert_eq!(end, data.len(), "the walk must account for every octet");
});
